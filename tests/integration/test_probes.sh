#!/bin/sh
# test_probes.sh: what a node says about itself (docs/operations.md,
# "Health and readiness probes"): `mlreg --version`, the version and commit
# in GET /api/v1/health, GET|HEAD /healthz (the process answers) and
# GET|HEAD /readyz (the node can serve: metadata, blob directories) without
# a token even when tokens are configured; a node whose blob directory was
# removed or replaced by a file answers 503 naming it, and stays alive.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

mkdir -p "$TMP/conf"
T_READ=$(tok)
cat >"$TMP/conf/mlreg.json" <<EOF
{ "tokens": [ { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] } ] }
EOF
jq_is() { jq -e "$1" "$TMP/body" >/dev/null; }

# ---- the version ----------------------------------------------------------------------------
run "$MLREG" --version
expect_rc "mlreg --version" 0
check "... prints 'mlreg VERSION (commit SHA)'" \
    grep -qE '^mlreg [0-9A-Za-z.+~_-]+ \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)$' "$TMP/out"
check "... with the version of the VERSION file" \
    grep -qF "mlreg $(sed -n 1p "$MLREG_ROOT/VERSION") (commit " "$TMP/out"
cp "$TMP/out" "$TMP/version"
run "$MLREG" version
expect_rc "mlreg version" 0
check "... prints the same" cmp -s "$TMP/out" "$TMP/version"
run "$MLREG" version --bogus
expect_rc "mlreg version with an argument is a usage error" 2
run "$MLREG" help
check "the command list names version" grep -q "^  version " "$TMP/out"
VERSION=$(sed 's/^mlreg \([^ ]*\) .*/\1/' "$TMP/version")
COMMIT=$(sed 's/.*(commit \(.*\))$/\1/' "$TMP/version")

# ---- cluster.ready_max_lag ------------------------------------------------------------------
for bad in 0 -1 '"10"' 1.5 1000000001; do
    printf '{"cluster":{"ready_max_lag":%s}}\n' "$bad" >"$TMP/bad.json"
    run "$MLREG" serve --config "$TMP/bad.json" --listen 127.0.0.1:0 --data "$TMP/never"
    if [ "$RC" -eq 2 ] && grep -q "cluster.ready_max_lag" "$TMP/err"; then
        ok "cluster.ready_max_lag $bad stops the start, naming the key"
    else not_ok "cluster.ready_max_lag $bad stops the start (exit $RC: $(head -c 200 "$TMP/err"))"; fi
done
check "... and nothing was created" [ ! -e "$TMP/never" ]

# ---- health and probes ----------------------------------------------------------------------
start_server --config "$TMP/conf/mlreg.json" || finish
expect_status "GET /api/v1/health without a token" 200 GET /api/v1/health
check "... has the version and commit of the binary" \
    jq_is ".status == \"ok\" and .version == \"$VERSION\" and .commit == \"$COMMIT\""
expect_status "GET /healthz without a token" 200 GET /healthz
check "... is {\"status\":\"ok\"}" [ "$(cat "$TMP/body")" = '{"status":"ok"}' ]
check "... as JSON" [ "$(header Content-Type)" = application/json ]
expect_status "HEAD /healthz" 200 HEAD /healthz
expect_status "GET /readyz without a token" 200 GET /readyz
check "... is {\"status\":\"ready\"}" [ "$(cat "$TMP/body")" = '{"status":"ready"}' ]
expect_status "HEAD /readyz" 200 HEAD /readyz
expect_status "a token does not hurt" 200 GET /readyz -H "Authorization: Bearer $T_READ"
expect_status "even a wrong one: the probes ignore tokens" 200 GET /readyz \
    -H "Authorization: Bearer nope"
expect_status "POST /readyz is 405" 405 POST /readyz
check "... with Allow: GET, HEAD" [ "$(header Allow)" = "GET, HEAD" ]
expect_status "DELETE /healthz is 405" 405 DELETE /healthz
expect_status "a body on GET /readyz is refused" 400 GET /readyz --data-binary x
expect_status "/readyz/anything is no route" 404 GET /readyz/x
expect_status "/healthz/ is no route" 404 GET /healthz/

# ---- not ready: the blob directories go from under the node ---------------------------------
rm -rf "$DATA/blobs/tmp"
expect_status "with blobs/tmp removed, /readyz is 503" 503 GET /readyz
check "... not ready, naming blobs/tmp" \
    jq_is '.status == "not ready" and (.reason | test("blobs/tmp"))'
check "... without the data directory's path" sh -c "! grep -qF '$DATA' '$TMP/body'"
expect_status "... HEAD /readyz too" 503 HEAD /readyz
expect_status "... /healthz stays 200: the process answers" 200 GET /healthz
check "the log says why, once, with the path" wait_log "^mlreg: not ready: blob directory $DATA/blobs/tmp"
expect_status "again" 503 GET /readyz
check "... not logged twice" [ "$(grep -c '^mlreg: not ready' "$TMP/server.log")" = 1 ]
mkdir -m 0700 "$DATA/blobs/tmp"
expect_status "a new blobs/tmp is not the one the node writes into: still 503" 503 GET /readyz
check "... it says a restart is needed" jq_is '.reason | test("restart")'
stop_server
start_server --config "$TMP/conf/mlreg.json" || finish
expect_status "after a restart the node is ready again" 200 GET /readyz

mv "$DATA/blobs/sha256" "$TMP/sha256.away"
printf 'not a directory' >"$DATA/blobs/sha256"
expect_status "with blobs/sha256 replaced by a file, /readyz is 503" 503 GET /readyz
check "... naming blobs/sha256" jq_is '.reason | test("blobs/sha256 is not a directory")'
rm -f "$DATA/blobs/sha256"
mv "$TMP/sha256.away" "$DATA/blobs/sha256"
expect_status "the same directory put back: ready again" 200 GET /readyz
check "the log says it is ready again" wait_log "^mlreg: ready again"
expect_status "the server still serves" 200 GET /v2/ -H "Authorization: Bearer $T_READ"

finish
