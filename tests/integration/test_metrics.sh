#!/bin/sh
# test_metrics.sh: GET /metrics (docs/operations.md, "Metrics") on the real
# server: who may read it (the read role on every model when tokens are
# set; nobody's token with metrics.public), the Prometheus text format
# checked by an independent parser (prometheus_client, metrics_check.py)
# and strict rules (HELP and TYPE for every family, cumulative histogram
# buckets with +Inf equal to the count), counters moving after a push, a
# pull and promotions passed and refused, route labels that are patterns
# (never a path, a model name, a query string or a token), and config
# errors of the metrics section.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

# Debian's python3-prometheus-client is for Debian's python3, which may not
# be the first python3 on PATH (a pyenv shim, a venv)
PY=""
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import prometheus_client' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { not_ok "python3-prometheus-client is installed (make deps)"; finish; }
CHECK="$PY $MLREG_ROOT/tests/integration/metrics_check.py"
W=$TMP/work
mkdir -p "$W" "$TMP/conf"

# ---- config errors ----------------------------------------------------------------------------
for bad in '{"metrics":{"public":"yes"}}' '{"metrics":{"public":1}}' '{"metrics":true}' \
    '{"metrics":{"publik":true}}'; do
    printf '%s\n' "$bad" >"$TMP/bad.json"
    run "$MLREG" serve --config "$TMP/bad.json" --listen 127.0.0.1:0 --data "$TMP/never"
    if [ "$RC" -eq 2 ] && grep -q "metrics" "$TMP/err"; then ok "config $bad stops the start"
    else not_ok "config $bad stops the start (exit $RC: $(head -c 200 "$TMP/err"))"; fi
done
check "... and nothing was created" [ ! -e "$TMP/never" ]

# ---- a server with tokens ---------------------------------------------------------------------
T_READ=$(tok)
T_CI=$(tok)
T_REL=$(tok)
T_DEMO=$(tok)
cat >"$TMP/conf/mlreg.json" <<EOF
{
  "tokens": [
    { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] },
    { "name": "ci", "sha256": "$(hash "$T_CI")", "roles": ["read", "push"] },
    { "name": "release-mgr", "sha256": "$(hash "$T_REL")", "roles": ["read", "promote:staging"] },
    { "name": "demo-reader", "sha256": "$(hash "$T_DEMO")", "roles": ["read@demo"] }
  ],
  "gates": { "staging": [ { "metric": "accuracy", "min": 0.85 } ] }
}
EOF
start_server --config "$TMP/conf/mlreg.json" || finish
READ="Authorization: Bearer $T_READ"
CI="Authorization: Bearer $T_CI"
REL="Authorization: Bearer $T_REL"

# scrape FILE: GET /metrics with the reader's token into FILE.
scrape() {
    code=$(curl -s -o "$1" -w '%{http_code}' -H "$READ" "$MLREG_URL/metrics")
    [ "$code" = 200 ] || not_ok "scrape (got $code: $(head -c 200 "$1"))"
}
# value FILE NAME [LABEL=VALUE...]
value() { $CHECK value "$@"; }

# ---- access -----------------------------------------------------------------------------------
expect_status "GET /metrics without a token is 401" 401 GET /metrics
check "... asking for credentials" [ -n "$(header WWW-Authenticate)" ]
expect_status "... with an unknown token 401" 401 GET /metrics -H "Authorization: Bearer nope"
expect_status "... with a read role limited to one model 403" 403 GET /metrics \
    -H "Authorization: Bearer $T_DEMO"
expect_status "... with read 200" 200 GET /metrics -H "$READ"
check "... as text/plain; version=0.0.4" \
    [ "$(header Content-Type)" = "text/plain; version=0.0.4; charset=utf-8" ]
check "... never cached" [ "$(header Cache-Control)" = no-store ]
expect_status "HEAD /metrics 200" 200 HEAD /metrics -H "$READ"
expect_status "POST /metrics is 405" 405 POST /metrics -H "$READ"
check "... with Allow: GET, HEAD" [ "$(header Allow)" = "GET, HEAD" ]
expect_status "a body on GET /metrics is refused" 400 GET /metrics -H "$READ" --data-binary x
expect_status "/metrics/x is no route" 404 GET /metrics/x -H "$READ"
expect_status "a query string on /metrics is ignored" 200 GET '/metrics?name[]=x&debug=1' -H "$READ"
check "... the same format" $CHECK format "$TMP/body"

# ---- the format, before any traffic of note ---------------------------------------------------
scrape "$W/m0"
check "the first scrape is valid text format (independent parser and strict checks)" \
    $CHECK format "$W/m0"
check "mlreg_build_info names this binary's version and commit" grep -qx \
    "mlreg_build_info{version=\"$(sed -n 1p "$MLREG_ROOT/VERSION")\",commit=\"$("$MLREG" --version |
        sed 's/.*(commit \(.*\))$/\1/')\"} 1" "$W/m0"
start=$(value "$W/m0" mlreg_process_start_time_seconds)
now=$(date +%s)
check "mlreg_process_start_time_seconds is about now" \
    awk -v s="$start" -v n="$now" 'BEGIN { exit !(s > n - 60 && s <= n + 1) }'
for fam in mlreg_http_requests_total mlreg_http_request_duration_seconds \
    mlreg_http_received_bytes_total mlreg_http_sent_bytes_total mlreg_http_connections_open \
    mlreg_upload_sessions mlreg_upload_sessions_max mlreg_meta_map_used_bytes \
    mlreg_meta_map_size_bytes mlreg_audit_log_entries mlreg_blobstore_operations_total \
    mlreg_blobstore_errors_total; do
    check "family $fam has HELP and TYPE" sh -c \
        "grep -q '^# HELP $fam ' '$W/m0' && grep -q '^# TYPE $fam ' '$W/m0'"
done
check "mlreg_ready is 1 on a ready node" grep -qx 'mlreg_ready 1' "$W/m0"
check "the fs blob backend is labelled" \
    grep -q '^mlreg_blobstore_operations_total{backend="fs",op="write"} 0$' "$W/m0"
check "a single node has no cluster metrics" sh -c "! grep -q mlreg_cluster_ '$W/m0'"
used=$(value "$W/m0" mlreg_meta_map_used_bytes)
size=$(value "$W/m0" mlreg_meta_map_size_bytes)
check "LMDB map use is within the map" [ "$used" -gt 0 ] && [ "$used" -le "$size" ]
check "at least this connection is open" [ "$(value "$W/m0" mlreg_http_connections_open)" -ge 1 ]

# ---- push, pull, promotions -------------------------------------------------------------------
blob() { # FILE: uploads it into demo with the ci token
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$CI" --data-binary @"$1" \
        "$MLREG_URL/v2/demo/blobs/uploads/?digest=sha256:$(sha256_of "$1")")
    [ "$code" = 201 ] || not_ok "upload $1 (got $code)"
}
push() { # VERSION ACCURACY
    printf '{}' >"$W/cfg"
    printf 'weights of %s' "$1" >"$W/w$1"
    printf '{"dataset":"val-v1","metrics":{"accuracy":%s}}' "$2" >"$W/e$1"
    blob "$W/cfg"
    blob "$W/w$1"
    blob "$W/e$1"
    jq -cn --arg w "sha256:$(sha256_of "$W/w$1")" --argjson ws "$(wc -c <"$W/w$1")" \
        --arg e "sha256:$(sha256_of "$W/e$1")" --argjson es "$(wc -c <"$W/e$1")" --arg v "$1" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json",
                  digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
          layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:$ws,
                   annotations:{"org.opencontainers.image.title":"w.bin","org.mlreg.kind":"weights"}},
                  {mediaType:"application/vnd.mlreg.eval-report.v1+json", digest:$e, size:$es,
                   annotations:{"org.opencontainers.image.title":"eval.json",
                                "org.mlreg.kind":"eval-report"}}],
          annotations:{"org.mlreg.model":"demo","org.mlreg.version":$v,
                       "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$W/m$1.json"
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H "$CI" \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @"$W/m$1.json" "$MLREG_URL/v2/demo/manifests/$1")
    [ "$code" = 201 ] || not_ok "push demo@$1 (got $code: $(head -c 200 "$TMP/body"))"
}
promote() { # WANT VERSION
    expect_status "promote demo@$2 to staging: $1" "$1" POST /api/v1/models/demo/promotions \
        -H "$REL" -H 'Content-Type: application/json' \
        --data "{\"version\":\"$2\",\"to\":\"staging\",\"reason\":\"metrics test\"}"
}
push 1.0 0.80
push 2.0 0.90
expect_status "pull the manifest" 200 GET /v2/demo/manifests/2.0 -H "$READ" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json'
expect_status "pull the weights" 200 GET "/v2/demo/blobs/sha256:$(sha256_of "$W/w2.0")" -H "$READ"
expect_status "a query string with a marker" 200 GET '/v2/demo/tags/list?n=5&last=QUERYMARKER' \
    -H "$READ"
promote 409 1.0
promote 200 2.0
expect_status "an upload session left open" 202 POST /v2/demo/blobs/uploads/ -H "$CI"
for i in 1 2 3; do
    curl -s -o /dev/null -H "$READ" "$MLREG_URL/no/such/path/$i-$(tok)"
done
scrape "$W/m1"
check "the second scrape is valid text format" $CHECK format "$W/m1"

# more_than NAME BEFORE_FILE AFTER_FILE [LABEL=VALUE...]: the series grew.
more_than() {
    name=$1; a=$2; b=$3; shift 3
    before=$(value "$a" "$name" "$@")
    after=$(value "$b" "$name" "$@")
    if [ "$after" -gt "$before" ]; then ok "$name $* grew ($before -> $after)"; else
        not_ok "$name $* grew (before $before, after $after)"; fi
}
more_than mlreg_http_requests_total "$W/m0" "$W/m1" \
    route=/v2/{name}/manifests/{reference} method=PUT status=2xx
more_than mlreg_http_requests_total "$W/m0" "$W/m1" \
    route=/v2/{name}/blobs/{digest} method=GET status=2xx
more_than mlreg_http_requests_total "$W/m0" "$W/m1" \
    route=/api/v1/models/{name}/promotions method=POST status=4xx
more_than mlreg_http_request_duration_seconds_count "$W/m0" "$W/m1" \
    route=/v2/{name}/manifests/{reference}
more_than mlreg_http_received_bytes_total "$W/m0" "$W/m1"
more_than mlreg_http_sent_bytes_total "$W/m0" "$W/m1"
more_than mlreg_blobstore_operations_total "$W/m0" "$W/m1" backend=fs op=write
more_than mlreg_blobstore_operations_total "$W/m0" "$W/m1" backend=fs op=read
more_than mlreg_audit_log_entries "$W/m0" "$W/m1"
check "one promotion refused at staging" \
    [ "$(value "$W/m1" mlreg_promotions_total stage=staging result=refused)" = 1 ]
check "one promotion passed at staging" \
    [ "$(value "$W/m1" mlreg_promotions_total stage=staging result=passed)" = 1 ]
check "the upload session left open is counted" [ "$(value "$W/m1" mlreg_upload_sessions)" = 1 ]
check "no blob store errors" sh -c "! grep -q '^mlreg_blobstore_errors_total{.*} [1-9]' '$W/m1'"
check "the unknown paths count under route=\"unmatched\"" \
    [ "$(value "$W/m1" mlreg_http_requests_total route=unmatched method=GET status=4xx)" -ge 3 ]
check "no route label is a path: no model name, no random segment" \
    sh -c "! grep -E 'route=\"[^\"]*(demo|no/such)' '$W/m1'"
check "no query string" sh -c "! grep -q 'QUERYMARKER' '$W/m1'"
for t in "$T_READ" "$T_CI" "$T_REL" "$T_DEMO" "$(hash "$T_READ")" "$(hash "$T_CI")"; do
    check "no token or token hash in the output (${t%"${t#??????}"}...)" \
        sh -c "! grep -qF '$t' '$W/m1'"
done
check "no token name in the output" sh -c "! grep -qE 'release-mgr|demo-reader' '$W/m1'"
check "no data directory path in the output" sh -c "! grep -qF '$DATA' '$W/m1'"
routes=$(grep -o 'route="[^"]*"' "$W/m1" | sort -u | wc -l)
check "route labels are bounded by the route table ($routes distinct)" [ "$routes" -le 40 ]

# ---- metrics.public ---------------------------------------------------------------------------
stop_server
jq '. + {metrics: {public: true}}' "$TMP/conf/mlreg.json" >"$TMP/conf/public.json"
start_server --config "$TMP/conf/public.json" || finish
expect_status "with metrics.public, GET /metrics without a token is 200" 200 GET /metrics
check "... valid text format" $CHECK format "$TMP/body"
expect_status "... even with a wrong token (it is not looked at)" 200 GET /metrics \
    -H "Authorization: Bearer nope"
expect_status "... while the rest still needs a token" 401 GET /v2/
expect_status "... and the API too" 401 GET /api/v1/models
stop_server

# ---- no tokens at all: everyone is the local identity -----------------------------------------
DATA=$TMP/data2 start_server || finish
expect_status "without tokens GET /metrics is 200" 200 GET /metrics
finish
