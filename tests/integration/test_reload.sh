#!/bin/sh
# test_reload.sh: the config reload of a running `mlreg serve`
# (docs/operations.md "Reload"): SIGHUP and POST /api/v1/admin/reload.
#   - a gate threshold lowered, then raised: the same promotion is refused,
#     then passes (dry run), then is refused again;
#   - a token added works after the reload; removed, it gets 401;
#   - invalid JSON, an unknown key, a bad value: refused with the message the
#     start prints, over SIGHUP (stderr) and POST (400); the old gates and
#     tokens stay in force and the server stays up;
#   - a changed key that needs a restart (listen, data_dir, storage) is
#     refused naming it;
#   - POST as non-admin 403, without a token 401, with a body 400;
#   - an upload session opened before a reload is completed after it; a slow
#     blob GET running across a reload finishes with every byte;
#   - the config.reload audit entry holds the sha256 of the file and the
#     changed parts, a trusted key added or dropped by a reload leaves its
#     key.* entry, `mlreg audit verify` passes, the log replays
#     (mlreg audit verify checks the chain);
#   - TLS: the certificate files replaced on disk and a reload: new
#     handshakes get the new certificate, a connection open across the
#     reload keeps working.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

for t in jq openssl minisign; do
    command -v $t >/dev/null 2>&1 || { not_ok "$t is installed (make deps installs it)"; finish; }
done
W=$TMP/work
C=$TMP/conf
mkdir -p "$W" "$C/keys"
T_ADMIN=$(tok)
T_CI=$(tok)
T_NEW=$(tok)
T_PADMIN=$(tok)
ADMIN="Authorization: Bearer $T_ADMIN"
CI="Authorization: Bearer $T_CI"
NEW="Authorization: Bearer $T_NEW"
minisign -G -W -p "$C/keys/a.pub" -s "$C/keys/a.key" >/dev/null 2>&1 || not_ok "minisign -G"

# conf MIN [EXTRA_TOKEN_JSON] [EXTRA_TOP_LEVEL_JSON]: writes the config with
# the staging gate accuracy >= MIN.
conf() {
    cat >"$C/mlreg.json.tmp" <<EOF
{
  "tokens": [
    { "name": "admin", "sha256": "$(hash "$T_ADMIN")", "roles": ["admin"] },
    { "name": "ci", "sha256": "$(hash "$T_CI")", "roles": ["read", "push", "promote:staging"] },
    { "name": "demo-admin", "sha256": "$(hash "$T_PADMIN")", "roles": ["admin@demo"] }
    ${2:-}
  ],
  "gates": { "staging": [ { "metric": "accuracy", "min": $1 } ] }
  ${3:-}
}
EOF
    mv "$C/mlreg.json.tmp" "$C/mlreg.json"
}
# hup PATTERN: sends SIGHUP and waits for a log line matching PATTERN.
NLOG=0
hup() {
    NLOG=$(wc -l <"$TMP/server.log")
    kill -HUP "$SERVER_PID"
    i=0
    until tail -n +"$((NLOG + 1))" "$TMP/server.log" | grep -q "$1"; do
        i=$((i + 1))
        [ $i -gt 100 ] && return 1
        sleep 0.05
    done
}
# reload_post NAME WANT: POST /api/v1/admin/reload as admin.
reload_post() { expect_status "$1" "$2" POST /api/v1/admin/reload -H "$ADMIN"; }

conf 0.95
start_server --config "$C/mlreg.json" || finish

# ---- a release with accuracy 0.90 -------------------------------------------------
blob() {
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$CI" --data-binary @"$1" \
        "$MLREG_URL/v2/demo/blobs/uploads/?digest=sha256:$(sha256_of "$1")")
    [ "$code" = 201 ] || not_ok "upload $1 (got $code)"
}
printf '{}' >"$W/cfg"
printf 'weights' >"$W/w"
printf '{"metrics":{"accuracy":0.90}}' >"$W/e"
for f in cfg w e; do blob "$W/$f"; done
jq -cn --arg w "sha256:$(sha256_of "$W/w")" --arg e "sha256:$(sha256_of "$W/e")" \
    --argjson es "$(wc -c <"$W/e")" '{schemaVersion:2,
    mediaType:"application/vnd.oci.image.manifest.v1+json",
    artifactType:"application/vnd.mlreg.release.v1+json",
    config:{mediaType:"application/vnd.oci.empty.v1+json",
            digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
    layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:7,
             annotations:{"org.opencontainers.image.title":"w.bin","org.mlreg.kind":"weights"}},
            {mediaType:"application/vnd.mlreg.eval-report.v1+json", digest:$e, size:$es,
             annotations:{"org.opencontainers.image.title":"eval.json","org.mlreg.kind":"eval-report"}}],
    annotations:{"org.mlreg.model":"demo","org.mlreg.version":"1.0",
                 "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$W/m.json"
expect_status "push demo@1.0 (accuracy 0.90)" 201 PUT /v2/demo/manifests/1.0 -H "$CI" \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$W/m.json"
# promote_dry NAME WANT: a dry-run promotion of demo@1.0 to staging as ci.
promote_dry() {
    expect_status "$1" "$2" POST /api/v1/models/demo/promotions -H "$CI" \
        --data-binary '{"version":"1.0","to":"staging","reason":"t","dry_run":true}'
}
promote_dry "with staging min 0.95 the promotion is refused" 409

# ---- gates: SIGHUP ------------------------------------------------------------------
conf 0.85
if hup "SIGHUP: reloaded"; then ok "SIGHUP reloads and says so on stderr"; else
    not_ok "SIGHUP reloads ($(tail -n 3 "$TMP/server.log"))"; fi
check "... one line naming the changed part and the digest" sh -c \
    "tail -n +$((NLOG + 1)) '$TMP/server.log' | grep -q 'sha256 $(sha256_of "$C/mlreg.json")): changed gates\$'"
check "the server is still the same process" kill -0 "$SERVER_PID"
promote_dry "with staging min 0.85 the same promotion passes" 200
conf 0.95
hup "SIGHUP: reloaded" || not_ok "second SIGHUP"
promote_dry "raised back to 0.95 it is refused again" 409

# ---- the audit entry ----------------------------------------------------------------
last_reload() {
    curl -s -H "$ADMIN" "$MLREG_URL/api/v1/audit?limit=1000" |
        jq -c '[.entries[] | fromjson | select(.action == "config.reload")] | last'
}
E=$(last_reload)
check "config.reload is audited with the file's sha256" \
    test "$(echo "$E" | jq -r .details.digest)" = "sha256:$(sha256_of "$C/mlreg.json")"
check "... the changed parts and the actor" \
    test "$(echo "$E" | jq -c '[.details.changed, .actor]')" = '[["gates"],"sighup"]'
check "... and no token hash or secret" sh -c "! echo '$E' | grep -q '$(hash "$T_CI")'"

# ---- tokens: POST ---------------------------------------------------------------------
expect_status "an unknown token gets 401" 401 GET /v2/ -H "$NEW"
conf 0.95 ", { \"name\": \"new\", \"sha256\": \"$(hash "$T_NEW")\", \"roles\": [\"read\"] }"
reload_post "POST /api/v1/admin/reload as admin: 200" 200
check "... says reloaded, changed tokens, and the digest" test "$(jq -c . "$TMP/body")" = \
    "{\"reloaded\":true,\"changed\":[\"tokens\"],\"config_sha256\":\"$(sha256_of "$C/mlreg.json")\"}"
expect_status "the added token works" 200 GET /v2/ -H "$NEW"
E=$(last_reload)
check "the POST's reload is audited with the admin as actor" \
    test "$(echo "$E" | jq -c '[.details.changed, .actor]')" = '[["tokens"],"admin"]'
reload_post "a reload of an unchanged file answers 200" 200
check "... with nothing changed and no new audit entry" sh -c \
    "jq -e '.changed == []' '$TMP/body' >/dev/null && [ '$(last_reload)' = '$E' ]"
conf 0.95
hup "SIGHUP: reloaded" || not_ok "SIGHUP removing the token"
expect_status "the removed token gets 401" 401 GET /v2/ -H "$NEW"

# ---- roles of the endpoint ------------------------------------------------------------------
expect_status "POST reload as non-admin: 403" 403 POST /api/v1/admin/reload -H "$CI"
expect_status "POST reload as an admin limited to a model prefix: 403" 403 \
    POST /api/v1/admin/reload -H "Authorization: Bearer $T_PADMIN"
expect_status "POST reload without a token: 401" 401 POST /api/v1/admin/reload
expect_status "POST reload with a wrong token: 401" 401 POST /api/v1/admin/reload -H "$NEW"
expect_status "POST reload with a body: 400" 400 POST /api/v1/admin/reload -H "$ADMIN" \
    --data-binary '{"x":1}'
expect_status "GET reload: 405" 405 GET /api/v1/admin/reload -H "$ADMIN"

# ---- invalid configs: refused with the start's message, the old config stays -----------
start_msg() { # the message `mlreg serve` prints for the config now on disk
    timeout 10 "$MLREG" serve --config "$C/mlreg.json" --listen 127.0.0.1:0 \
        --data "$TMP/refused" 2>&1 >/dev/null | head -n 1 | sed 's/^mlreg: //'
}
cp "$C/mlreg.json" "$C/good.json"
E=$(last_reload)
# refused NAME: the file on disk is refused by SIGHUP and POST, with the
# message the start prints; the gate and tokens of the good config hold.
refused() {
    msg=$(start_msg)
    [ -n "$msg" ] || not_ok "$1: the start refuses it too"
    if hup "SIGHUP: reload of .* refused"; then ok "$1: SIGHUP refuses it"; else
        not_ok "$1: SIGHUP refuses it ($(tail -n 2 "$TMP/server.log"))"; fi
    check "$1: ... on stderr with the start's message" sh -c \
        "tail -n +$((NLOG + 1)) '$TMP/server.log' | grep -qF \"the running config stays: \$1\"" \
        _ "$msg"
    expect_status "$1: POST answers 400" 400 POST /api/v1/admin/reload -H "$ADMIN"
    check "$1: ... with the start's message" test "$(jq -r '.errors[0].message' "$TMP/body")" = "$msg"
    check "$1: the server is up" alive_tok
    promote_dry "$1: the running gate (min 0.95) still refuses" 409
    expect_status "$1: the running tokens still hold" 401 GET /v2/ -H "$NEW"
}
alive_tok() { [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$CI" "$MLREG_URL/v2/")" = 200 ]; }
printf '{ "gates": { "staging": [ { "metric": "accuracy", "min": 0.5 } ] ' >"$C/mlreg.json"
refused "invalid JSON"
conf 0.5 "" ', "bogus": 1'
refused "an unknown key"
conf 0.5 ", { \"name\": \"new\", \"sha256\": \"$(hash "$T_NEW")\", \"roles\": [\"promote:prod\"] }"
refused "a token role naming an unknown stage"
conf '"high"'
refused "a gate threshold that is not a number"
rm -f "$C/mlreg.json"
hup "SIGHUP: reload of .* refused" && ok "a missing file: SIGHUP refuses it" ||
    not_ok "a missing file: SIGHUP refuses it"
expect_status "a missing file: POST answers 400" 400 POST /api/v1/admin/reload -H "$ADMIN"
check "... naming the file" sh -c "jq -r '.errors[0].message' '$TMP/body' | grep -qF 'cannot read config $C/mlreg.json'"
check "nothing of the refused reloads was audited" test "$(last_reload)" = "$E"

# ---- keys that need a restart -------------------------------------------------------------
restart_refused() { # NAME EXTRA_TOP_LEVEL_JSON NEEDLE
    conf 0.5 "" "$2"
    expect_status "$1: POST answers 400" 400 POST /api/v1/admin/reload -H "$ADMIN"
    check "$1: ... naming the key" sh -c \
        "jq -r '.errors[0].message' '$TMP/body' | grep -qF 'restart needed for: $3'"
    promote_dry "$1: the gate change in the same file is not in force" 409
}
restart_refused "listen" ', "listen": "127.0.0.1:1"' "listen"
restart_refused "data_dir" ", \"data_dir\": \"$TMP/other\"" "data_dir"
restart_refused "storage" ', "storage": { "backend": "fs" }' "storage.backend"
restart_refused "limits.max_connections" ', "limits": { "max_connections": 100 }' \
    "limits.max_connections"
restart_refused "tls turned on" \
    ', "tls": { "cert_file": "none.crt", "key_file": "none.key" }' "tls"
cp "$C/good.json" "$C/mlreg.json"
reload_post "the good file reloads again" 200

# ---- limits that may change -------------------------------------------------------------------
conf 0.95 "" ', "limits": { "max_upload_bytes": 1000 }'
reload_post "limits.max_upload_bytes is reloaded" 200
check "... reported as limits" sh -c "jq -e '.changed == [\"limits\"]' '$TMP/body' >/dev/null"
head -c 2000 /dev/urandom >"$W/big"
expect_status "an upload over the new limit is refused" 413 POST \
    "/v2/demo/blobs/uploads/?digest=sha256:$(sha256_of "$W/big")" -H "$CI" --data-binary @"$W/big"
cp "$C/good.json" "$C/mlreg.json"
reload_post "... and back" 200
expect_status "... then it is accepted" 201 POST \
    "/v2/demo/blobs/uploads/?digest=sha256:$(sha256_of "$W/big")" -H "$CI" --data-binary @"$W/big"

# ---- an upload session and a slow GET across reloads -------------------------------------
head -c 12000000 /dev/urandom >"$W/part1"
head -c 12000000 /dev/urandom >"$W/part2"
cat "$W/part1" "$W/part2" >"$W/whole"
expect_status "an upload session opens" 202 POST /v2/demo/blobs/uploads/ -H "$CI"
LOC=$(header Location)
expect_status "... takes a first chunk" 202 PATCH "$LOC" -H "$CI" \
    -H 'Content-Type: application/octet-stream' -H "Content-Range: 0-11999999" \
    --data-binary @"$W/part1"
conf 0.85 ", { \"name\": \"new\", \"sha256\": \"$(hash "$T_NEW")\", \"roles\": [\"read\"] }"
hup "SIGHUP: reloaded" || not_ok "SIGHUP between the chunks"
expect_status "after the reload it takes the second chunk" 202 PATCH "$LOC" -H "$CI" \
    -H 'Content-Type: application/octet-stream' -H "Content-Range: 12000000-23999999" \
    --data-binary @"$W/part2"
expect_status "... and completes" 201 PUT "$LOC?digest=sha256:$(sha256_of "$W/whole")" -H "$CI"
# a GET at 4 MB/s of the 24 MB blob (socket buffers take a few MB at
# once), with two reloads while it runs
curl -s -H "$CI" --limit-rate 4000000 -o "$W/got" \
    "$MLREG_URL/v2/demo/blobs/sha256:$(sha256_of "$W/whole")" &
GETPID=$!
sleep 1
conf 0.95
hup "SIGHUP: reloaded" || not_ok "SIGHUP during the GET"
reload_post "a POST reload during the GET" 200
check "the GET was still running during the reloads" kill -0 $GETPID
wait $GETPID
check "the slow GET finished with every byte" cmp -s "$W/got" "$W/whole"
# keep-alive: a connection made before a reload carries a request after it
curl -s -o /dev/null -H "$CI" -w '%{num_connects}\n' "$MLREG_URL/v2/" \
    -: -o /dev/null -H "$CI" -w '%{num_connects}\n' "$MLREG_URL/v2/" >"$W/conns" &
wait $!
check "keep-alive still works after reloads (one connection, two requests)" \
    test "$(tr '\n' ' ' <"$W/conns")" = "1 0 "

# ---- requests racing reloads -----------------------------------------------------------------
# four clients authenticate and read gates while 20 reloads swap the tokens
# and gates under them (under ASan a snapshot freed too early is a report)
for n in 1 2 3 4; do
    (
        i=0
        while [ $i -lt 60 ]; do
            curl -s -o /dev/null -w '%{http_code}\n' -H "$CI" "$MLREG_URL/api/v1/models/demo/stages"
            i=$((i + 1))
        done >"$W/race$n"
    ) &
    RACERS="${RACERS:-} $!"
done
i=0
while [ $i -lt 20 ]; do
    if [ $((i % 2)) = 0 ]; then conf 0.85; else conf 0.95 ", { \"name\": \"new\", \"sha256\": \"$(hash "$T_NEW")\", \"roles\": [\"read\"] }"; fi
    curl -s -o /dev/null -X POST -H "$ADMIN" "$MLREG_URL/api/v1/admin/reload"
    i=$((i + 1))
done
for p in $RACERS; do wait "$p"; done
check "requests racing 20 reloads were all served (240 x 200)" \
    test "$(cat "$W"/race? | grep -c '^200$')" = 240
check "... and the server is up" alive_tok
cp "$C/good.json" "$C/mlreg.json"
reload_post "back to the good file" 200

# ---- trusted keys --------------------------------------------------------------------------
conf 0.95 "" ', "trusted_keys": [ { "name": "release-bot", "file": "keys/a.pub", "role": "release" } ]'
reload_post "a trusted key added by a reload" 200
check "... is reported as trusted_keys" sh -c "jq -e '.changed == [\"trusted_keys\"]' '$TMP/body' >/dev/null"
check "... and listed in the keyring" sh -c \
    "curl -s -H '$CI' '$MLREG_URL/api/v1/keys' | jq -e '[.keys[].name] == [\"release-bot\"]' >/dev/null"
check "... with its key.trust entry before the config.reload one" sh -c \
    "curl -s -H '$ADMIN' '$MLREG_URL/api/v1/audit?limit=1000' |
     jq -e '[.entries[] | fromjson | .action] | .[-2:] == [\"key.trust\", \"config.reload\"]' >/dev/null"
minisign -G -W -p "$C/keys/a.pub" -s "$C/keys/a2.key" -f >/dev/null 2>&1 || not_ok "minisign -G again"
reload_post "the key file replaced under the same name: a reload" 200
check "... is reported as trusted_keys" sh -c "jq -e '.changed == [\"trusted_keys\"]' '$TMP/body' >/dev/null"
cp "$C/good.json" "$C/mlreg.json"
reload_post "the key dropped from the config" 200
check "... leaves the keyring" sh -c \
    "curl -s -H '$CI' '$MLREG_URL/api/v1/keys' | jq -e '.keys == []' >/dev/null"

# ---- the log verifies ---------------------------------------------------------------------
MLREG_TOKEN=$T_ADMIN run "$MLREG" audit verify --log-key "$DATA/audit/log.pub"
expect_rc "mlreg audit verify passes over a log with config.reload entries" 0
stop_server

# ---- without --config: nothing to reload ----------------------------------------------------
DATA=$TMP/data2 start_server || finish
expect_status "a server started without --config refuses a reload (400)" 400 POST \
    /api/v1/admin/reload
check "... saying there is no config file" sh -c \
    "jq -r '.errors[0].message' '$TMP/body' | grep -qF 'without --config'"
hup "SIGHUP: reload of the config refused" && ok "... and SIGHUP too" || not_ok "... and SIGHUP too"
stop_server

# ---- TLS: the certificate replaced on disk -------------------------------------------------
P=$C/pki
mkdir -p "$P"
ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=mlreg reload test $1" -keyout "$P/$1.key" -out "$P/$1.crt" 2>>"$TMP/openssl.log"; }
leaf() { # NAME CA
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$P/$1.key" -out "$P/$1.csr" 2>>"$TMP/openssl.log" &&
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$P/$1.ext" &&
        openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.crt" -CAkey "$P/$2.key" -CAcreateserial \
            -days 2 -extfile "$P/$1.ext" -out "$P/$1.crt" 2>>"$TMP/openssl.log" &&
        chmod 600 "$P/$1.key"
}
{ ca ca1 && ca ca2 && leaf one ca1 && leaf two ca2; } || {
    not_ok "openssl makes the test certificates"; cat "$TMP/openssl.log"; finish; }
cp "$P/one.crt" "$P/server.crt"
cp "$P/one.key" "$P/server.key"
conf 0.95 "" ', "tls": { "cert_file": "pki/server.crt", "key_file": "pki/server.key" }'
DATA=$TMP/data3 start_server --config "$C/mlreg.json" || finish
tls_get() { # CA: the status of GET /v2/ trusting CA only
    curl -s -o /dev/null -w '%{http_code}' --cacert "$P/$1.crt" -H "$CI" "$MLREG_URL/v2/"
}
check "HTTPS with the first certificate" test "$(tls_get ca1)" = 200
check "... which the second CA does not trust" test "$(tls_get ca2)" != 200
# a connection opened before the reload: two requests, the reload between
{
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n' "$CI"
    sleep 1.5
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n%s\r\nConnection: close\r\n\r\n' "$CI"
} | openssl s_client -quiet -connect "127.0.0.1:${MLREG_URL##*:}" -CAfile "$P/ca1.crt" \
    >"$W/sclient" 2>"$W/sclient.err" &
SPID=$!
sleep 0.5
cp "$P/two.crt" "$P/server.crt"
cp "$P/two.key" "$P/server.key"
if hup "SIGHUP: reloaded"; then ok "SIGHUP with new certificate files"; else
    not_ok "SIGHUP with new certificate files ($(tail -n 2 "$TMP/server.log"))"; fi
check "... reported as tls" sh -c \
    "tail -n +$((NLOG + 1)) '$TMP/server.log' | grep -q 'changed tls\$'"
check "new handshakes get the new certificate" test "$(tls_get ca2)" = 200
check "... and not the old one" test "$(tls_get ca1)" != 200
check "openssl s_client sees the new issuer" sh -c \
    "openssl s_client -connect 127.0.0.1:${MLREG_URL##*:} -CAfile '$P/ca2.crt' </dev/null 2>/dev/null |
     grep -q 'issuer=CN = mlreg reload test ca2'"
wait $SPID
if [ "$(grep -o 'HTTP/1.1 200' "$W/sclient" | wc -l)" = 2 ]; then
    ok "a TLS connection open across the reload carried both requests"
else
    not_ok "a TLS connection open across the reload carried both requests ($(head -c 300 "$W/sclient"))"
fi
chmod 644 "$P/server.key"
expect_status "a key file other users may read: POST refused (400)" 400 POST \
    /api/v1/admin/reload -H "$ADMIN" --cacert "$P/ca2.crt"
check "... naming the file" sh -c "jq -r '.errors[0].message' '$TMP/body' | grep -qF 'chmod 600'"
check "... and the running certificate is still served" test "$(tls_get ca2)" = 200
finish
