#!/bin/sh
# `mlreg serve`: config file rules (strict keys, tls keys in pairs,
# bad values named), flags overriding the config, loopback-only listening,
# the ready file, IPv6 loopback, and a clean stop on SIGTERM / SIGINT with an
# upload in flight.
. "$(dirname "$0")/lib.sh"

# refuse NAME CONFIG_JSON EXPECTED_MESSAGE: serve must exit 2 naming the problem.
refuse() {
    name=$1
    printf '%s\n' "$2" >"$TMP/cfg.json"
    timeout 10 "$MLREG" serve --config "$TMP/cfg.json" --listen 127.0.0.1:0 \
        --data "$TMP/refused" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -qF "$3" "$TMP/err"; then ok "$name"; else
        not_ok "$name (exit $rc, stderr: $(head -c 300 "$TMP/err"))"; fi
}

# ---- the s3 backend's log key and the cluster keys ---------------------------
refuse "storage backend s3 without audit.log_key_file is refused, saying how to make one" \
    '{"storage":{"backend":"s3","endpoint":"http://127.0.0.1:9","bucket":"m"}}' \
    "mlreg key generate --no-password"
refuse "an unknown audit key is refused by name" '{"audit":{"log_key":"x"}}' \
    "unknown config key 'audit.log_key'"
refuse "an empty audit.log_key_file is refused" '{"audit":{"log_key_file":""}}' \
    "config key 'audit.log_key_file' must be a non-empty string"
refuse "an unknown cluster key is refused by name" '{"cluster":{"pol_ms":10}}' \
    "unknown config key 'cluster.pol_ms'"
refuse "cluster.poll_ms out of range is refused" '{"cluster":{"poll_ms":0}}' "cluster.poll_ms"
refuse "cluster.url that is not http(s)://HOST[:PORT] is refused" \
    '{"cluster":{"url":"ftp://node1/"}}' "config key 'cluster.url'"
printf '{}\n' >"$TMP/fs.json"
run "$MLREG" reindex --from-store --config "$TMP/fs.json" --data "$TMP/reindexed"
check "reindex --from-store of an fs config exits 2 (got $RC)" test "$RC" = 2
check "... saying only the s3 backend keeps its log in the store" grep -q "only the s3 backend" "$TMP/err"
run "$MLREG" reindex --config "$TMP/fs.json"
check "reindex without --from-store is a usage error (exit $RC)" test "$RC" = 2
check "... naming what is required" grep -q -- "--from-store and --config are required" "$TMP/err"

refuse "tls.cert_file without tls.key_file is refused by name" '{"tls":{"cert_file":"x.crt"}}' \
    "config key 'tls.key_file' is missing"
refuse "a missing tls.cert_file is named" \
    '{"tls":{"cert_file":"nope.crt","key_file":"nope.key"}}' "tls.cert_file $TMP/nope.crt"
# trusted_keys: files relative to the config's directory, strict entries
printf 'untrusted comment: x\nnot a key\n' >"$TMP/bad.pub"
refuse "trusted_keys must be an array" '{"trusted_keys": {}}' \
    "config key 'trusted_keys' must be an array"
refuse "a missing trusted key file names key and file" \
    '{"trusted_keys":[{"name":"rel","file":"nope.pub","role":"release"}]}' \
    "trusted key 'rel': cannot load public key file $TMP/nope.pub"
refuse "a malformed trusted key file names key and file" \
    '{"trusted_keys":[{"name":"rel","file":"bad.pub","role":"release"}]}' \
    "trusted key 'rel': cannot load public key file $TMP/bad.pub"
refuse "an unknown key inside a trusted_keys entry is named" \
    '{"trusted_keys":[{"name":"rel","file":"bad.pub","role":"release","until":1}]}' \
    "unknown config key 'trusted_keys[0].until'"
refuse "a trusted_keys entry without a role is named" \
    '{"trusted_keys":[{"name":"rel","file":"bad.pub"}]}' "(key 'rel') lacks \"role\""
refuse "storage backend s3 without an endpoint is refused clearly" \
    '{"storage":{"backend":"s3","bucket":"m"}}' \
    "config key 'storage.endpoint' is required for the s3 backend"
refuse "unknown storage backend is named" '{"storage":{"backend":"tape"}}' "storage.backend"
refuse "unknown top-level key is named" '{"listen":"127.0.0.1:0","colour":"blue"}' \
    "unknown config key 'colour'"
refuse "unknown limits key is named" '{"limits":{"max_blob":1}}' \
    "unknown config key 'limits.max_blob'"
refuse "bad max_manifest_bytes type is named" '{"limits":{"max_manifest_bytes":"big"}}' \
    "limits.max_manifest_bytes"
refuse "max_manifest_bytes out of range is named" '{"limits":{"max_manifest_bytes":10}}' \
    "limits.max_manifest_bytes"
refuse "bad map_size is named" '{"limits":{"map_size":-1}}' "limits.map_size"
refuse "zero threads are named" '{"server":{"threads":0}}' "server.threads"
refuse "bad listen value is named" '{"listen":"nowhere"}' "listen"
refuse "data_dir of the wrong type is named" '{"data_dir":5}' "data_dir"
refuse "malformed JSON is refused with its line" '{"listen": }' "cfg.json:1"
refuse "duplicate keys are refused" '{"listen":"127.0.0.1:0","listen":"127.0.0.1:1"}' "listen"
refuse "a config that is not an object is refused" '[]' "JSON object"

timeout 10 "$MLREG" serve --config "$TMP/does-not-exist.json" >/dev/null 2>"$TMP/err"
check "missing config file exits 2" [ $? -eq 2 ]
timeout 10 "$MLREG" serve --bogus >/dev/null 2>"$TMP/err"
check "unknown flag exits 2" [ $? -eq 2 ]
timeout 10 "$MLREG" serve --listen >/dev/null 2>"$TMP/err"
check "flag without its value exits 2" [ $? -eq 2 ]

for addr in 0.0.0.0:0 10.1.2.3:5080 '[::]:0' example.com:80; do
    timeout 10 "$MLREG" serve --listen "$addr" --data "$TMP/refused" >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q "no tokens are configured" "$TMP/err"; then
        ok "non-loopback listen $addr is refused without tokens"
    else
        not_ok "non-loopback listen $addr is refused without tokens (exit $rc: $(cat "$TMP/err"))"
    fi
done
check "refused starts created no data dir" [ ! -e "$TMP/refused" ]

# conf/mlreg.json is the default config and loads as is (flags override it)
start_server --config "$MLREG_ROOT/conf/mlreg.json" || finish
check "ready file holds the URL with the real port" \
    expr "$MLREG_URL" : 'http://127\.0\.0\.1:[1-9][0-9]*$' >/dev/null
expect_status "server with conf/mlreg.json answers" 200 GET /v2/
check "--data overrides data_dir" [ -d "$DATA/blobs" ]
check "the log says where it listens" grep -q "mlreg: listening on $MLREG_URL" "$TMP/server.log"
check "requests are logged with method, path and status" wait_log "^mlreg: GET /v2/ 200 "
stop_server

# listen and data_dir taken from the config file when no flag is given
printf '{"listen":"127.0.0.1:0","data_dir":"%s","server":{"threads":2}}\n' "$TMP/cfgdata" \
    >"$TMP/own.json"
"$MLREG" serve --config "$TMP/own.json" --ready-file "$TMP/ready2" 2>>"$TMP/server.log" &
PID=$!
i=0
while [ ! -s "$TMP/ready2" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
check "config listen and data_dir are used" \
    [ "$(curl -s "$(cat "$TMP/ready2")/v2/")" = "{}" ] && [ -d "$TMP/cfgdata/blobs" ]
kill -INT $PID
wait $PID
check "SIGINT stops the server with exit 0" [ $? -eq 0 ]

# IPv6 loopback
"$MLREG" serve --listen '[::1]:0' --data "$TMP/v6" --ready-file "$TMP/ready6" \
    2>>"$TMP/server.log" &
PID=$!
i=0
while [ ! -s "$TMP/ready6" ] && kill -0 $PID 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.05; i=$((i + 1)); done
if [ -s "$TMP/ready6" ]; then
    check "IPv6 loopback serves" [ "$(curl -sg "$(cat "$TMP/ready6")/v2/")" = "{}" ]
    kill -TERM $PID
    wait $PID
    check "IPv6 server exits 0" [ $? -eq 0 ]
else
    # no IPv6 on this machine: the server must have said why and exited 2
    wait $PID
    check "without IPv6, [::1] fails cleanly with exit 2" [ $? -eq 2 ]
fi

# SIGTERM with an upload in flight: exits 0 within a second, commits nothing
DATA=$TMP/inflight
start_server || finish
printf 'in flight' >"$TMP/f"
D_F=sha256:$(sha256_of "$TMP/f")
curl -s -o /dev/null --max-time 5 -X POST -H 'Content-Length: 100000' --data-binary @"$TMP/f" \
    "$MLREG_URL/v2/team/app/blobs/uploads/?digest=$D_F" &
CURL=$!
sleep 0.5
START=$(date +%s%N)
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
RC=$?
END=$(date +%s%N)
SERVER_PID=""
check "SIGTERM during an upload exits 0" [ $RC -eq 0 ]
check "SIGTERM exits within a second" [ $(((END - START) / 1000000)) -lt 1000 ]
wait $CURL 2>/dev/null
check "the interrupted upload committed nothing" \
    [ "$(find "$DATA/blobs/sha256" -type f | wc -l)" -eq 0 ]
check "the interrupted upload left no temp file" \
    [ "$(find "$DATA/blobs/tmp" -type f | wc -l)" -eq 0 ]

# upload sessions are bounded by a quarter of the descriptor limit: with
# `ulimit -n 128`, 32 sessions, then 429 TOOMANYREQUESTS, never EMFILE
DATA=$TMP/limited
ulimit -n 128
start_server || finish
i=0
n202=0
while [ $i -lt 32 ]; do
    st=$(http_status POST /v2/team/app/blobs/uploads/)
    [ "$st" = 202 ] && n202=$((n202 + 1))
    i=$((i + 1))
done
LOC=$(header Location | sed 's|^https\?://[^/]*||')
check "32 upload sessions fit under ulimit -n 128" [ "$n202" = 32 ]
st=$(http_status POST /v2/team/app/blobs/uploads/)
check "the 33rd session is refused with 429" [ "$st" = 429 ]
check "429 carries TOOMANYREQUESTS" [ "$(jq -r '.errors[0].code' "$TMP/body")" = TOOMANYREQUESTS ]
expect_status "the server still serves reads" 200 GET /v2/
expect_status "cancelling a session frees a slot" 204 DELETE "$LOC"
expect_status "a new session fits again" 202 POST /v2/team/app/blobs/uploads/

finish
