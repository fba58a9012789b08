# lib.sh: shared helpers for integration tests (POSIX sh; source it).
#
#   . "$MLREG_ROOT/tests/integration/lib.sh"
#   start_server            # real `mlreg serve` on a free loopback port, temp data dir
#   ok "name" / not_ok "name" / check "name" CMD...  (TAP lines the runner counts)
#   http_status METHOD PATH [curl args...]           # prints the HTTP status code
#   run CMD... / expect_rc "name" CODE               # a command's output and exit code
#   tok / hash TOKEN                                 # a random token and its config hash
#   limits_refused ENTRY...                          # each limits entry stops serve at start
#   post_blob REPO FILE / alive                      # a curl upload; the server still answers
#   put_release MODEL VERSION TITLE=KIND=FILE...     # a release with any titles ("a/b.json")
#   finish                  # stops servers, removes temp dirs, exits 1 if anything failed
#
# Variables after start_server: MLREG_URL (http://127.0.0.1:PORT), SERVER_PID,
# DATA (the server's data dir), TMP (a scratch dir removed by finish).
set -u
MLREG_ROOT=${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
MLREG=${MLREG_BIN:-$MLREG_ROOT/build/mlreg}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-test.XXXXXX")
# mlreg push's digest cache and upload sessions: one per test, removed with TMP
export MLREG_CACHE_DIR="$TMP/cache"
FAILS=0
SERVER_PID=""
export MLREG_URL=""

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; FAILS=$((FAILS + 1)); }

# check NAME CMD...: runs CMD, ok when it exits 0.
check() {
    name=$1; shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# start_server [extra serve args...]: starts mlreg serve on 127.0.0.1 with an
# OS-chosen port (--listen 127.0.0.1:0) and waits for its ready file.
start_server() {
    DATA=${DATA:-$TMP/data}
    rm -f "$TMP/ready"
    "$MLREG" serve --listen 127.0.0.1:0 --data "$DATA" --ready-file "$TMP/ready" "$@" \
        2>>"$TMP/server.log" &
    SERVER_PID=$!
    i=0
    while [ ! -s "$TMP/ready" ]; do
        i=$((i + 1))
        if [ $i -gt 200 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server did not start; log:"; cat "$TMP/server.log"
            not_ok "server starts"
            return 1
        fi
        sleep 0.05
    done
    MLREG_URL=$(cat "$TMP/ready")
    export MLREG_URL
}

# stop_server: SIGTERM, expects a clean exit (0) within a few seconds; under
# sanitizers a leak report makes the exit status non-zero and the check fail.
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    i=0
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then kill -KILL "$SERVER_PID"; break; fi
        sleep 0.05
    done
    wait "$SERVER_PID"
    rc=$?
    SERVER_PID=""
    if [ $rc -eq 0 ]; then ok "server exits 0 on SIGTERM"; else
        not_ok "server exits 0 on SIGTERM (got $rc)"; tail -n 40 "$TMP/server.log"; fi
}

# kill_server: SIGKILL, no checks (crash simulation).
kill_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}

# http_status METHOD PATH [curl args...]: prints the status code only; the
# body goes to $TMP/body and headers to $TMP/headers.
http_status() {
    m=$1; p=$2; shift 2
    # HEAD needs -I: with -X HEAD curl waits for a body that never comes.
    if [ "$m" = HEAD ]; then set -- -I "$@"; else set -- -X "$m" "$@"; fi
    curl -s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$@" "$MLREG_URL$p"
}

# expect_status NAME WANT METHOD PATH [curl args...]
expect_status() {
    name=$1; want=$2; shift 2
    got=$(http_status "$@")
    if [ "$got" = "$want" ]; then ok "$name"; else
        not_ok "$name (want $want, got $got: $(head -c 300 "$TMP/body"))"; fi
}

# header NAME: value of a response header from the last http_status call.
header() {
    grep -i "^$1:" "$TMP/headers" | tail -n 1 | sed 's/^[^:]*: *//' | tr -d '\r'
}

# wait_log PATTERN: true once the server log has a line matching the grep
# PATTERN, polling up to 3 s. The access log line is written when the
# request completes, which may be just after the client has its answer.
wait_log() {
    i=0
    until grep -q "$1" "$TMP/server.log" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 60 ] && return 1
        sleep 0.05
    done
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# post_blob REPO FILE: monolithic upload with curl, prints the digest.
post_blob() {
    d=sha256:$(sha256_of "$2")
    st=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$2" \
        "$MLREG_URL/v2/$1/blobs/uploads/?digest=$d")
    [ "$st" = 201 ] || { echo "post_blob $1 $2: $st" >&2; return 1; }
    echo "$d"
}
# alive: the server still answers GET /v2/.
alive() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$MLREG_URL/v2/")" = 200 ]; }

# run CMD...: runs CMD with stdout in $TMP/out, stderr in $TMP/err, exit code in RC.
run() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
# expect_rc NAME CODE: the last run exited CODE.
expect_rc() {
    if [ "$RC" -eq "$2" ]; then ok "$1"; else
        not_ok "$1 (want exit $2, got $RC: $(tail -n 3 "$TMP/err"))"; fi
}
# limits_refused ENTRY...: each `"key": value` ENTRY as the only key of
# "limits" stops `mlreg serve` at start: exit 2, naming limits.<key>.
limits_refused() {
    for entry in "$@"; do
        key=$(echo "$entry" | sed 's/"\([a-z_]*\)".*/\1/')
        echo "{ \"limits\": { $entry } }" >"$TMP/bad.json"
        "$MLREG" serve --config "$TMP/bad.json" --listen 127.0.0.1:0 --data "$TMP/bad-data" \
            >"$TMP/bad.out" 2>&1
        rc=$?
        if [ $rc = 2 ] && grep -q "limits.$key" "$TMP/bad.out"; then
            ok "limits.$key: $entry stops the start (exit 2, naming the key)"
        else
            not_ok "limits.$key: $entry stops the start (exit $rc: $(head -c 200 "$TMP/bad.out"))"
        fi
    done
}
# tok: a fresh random token; hash TOKEN: its SHA-256, as the config's tokens[].sha256.
tok() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
hash() { printf '%s' "$1" | sha256sum | cut -c1-64; }

# oci_release_layout DIR MODEL BYTES: an OCI image layout in DIR holding one
# release MODEL@1.0.0 (ref name 1.0.0): the empty config, BYTES random bytes
# of weights ($TMP/weights.bin) and an eval report ($TMP/eval.json); its
# manifest is $TMP/m.json, its digest hex in M.
oci_release_layout() {
    mkdir -p "$1/blobs/sha256"
    printf '{}' >"$TMP/cfg"
    head -c "$3" /dev/urandom >"$TMP/weights.bin"
    printf '{"metrics":{"accuracy":0.9}}' >"$TMP/eval.json"
    for _f in cfg weights.bin eval.json; do cp "$TMP/$_f" "$1/blobs/sha256/$(sha256_of "$TMP/$_f")"; done
    jq -cn --arg c "sha256:$(sha256_of "$TMP/cfg")" --arg w "sha256:$(sha256_of "$TMP/weights.bin")" \
        --arg e "sha256:$(sha256_of "$TMP/eval.json")" --argjson es "$(wc -c <"$TMP/eval.json")" \
        --argjson ws "$3" --arg model "$2" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2},
          layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:$ws,
                   annotations:{"org.opencontainers.image.title":"weights.bin",
                                "org.mlreg.kind":"weights"}},
                  {mediaType:"application/vnd.mlreg.eval-report.v1+json", digest:$e, size:$es,
                   annotations:{"org.opencontainers.image.title":"eval.json",
                                "org.mlreg.kind":"eval-report"}}],
          annotations:{"org.mlreg.model":$model,"org.mlreg.version":"1.0.0",
                       "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$TMP/m.json"
    M=$(sha256_of "$TMP/m.json")
    cp "$TMP/m.json" "$1/blobs/sha256/$M"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
    jq -cn --arg m "sha256:$M" --argjson s "$(wc -c <"$TMP/m.json")" \
        '{schemaVersion:2, manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json",
          digest:$m, size:$s, annotations:{"org.opencontainers.image.ref.name":"1.0.0"}}]}' \
        >"$1/index.json"
}

# put_release MODEL VERSION TITLE=KIND=FILE...: uploads each FILE with curl and
# PUTs the release MODEL@VERSION whose titles are the given relative paths
# ("tokenizer/vocab.json"; mlreg push titles a file by its base name). Its
# manifest is left in $TMP/m.json.
put_release() {
    _m=$1; _v=$2; shift 2
    _layers='[]'
    for _spec in "$@"; do
        _t=${_spec%%=*}; _rest=${_spec#*=}; _k=${_rest%%=*}; _f=${_rest#*=}
        _d=$(post_blob "$_m" "$_f") || return 1
        _mt="application/vnd.mlreg.$_k.v1"
        [ "$_k" = eval-report ] && _mt="application/vnd.mlreg.eval-report.v1+json"
        _layers=$(printf '%s' "$_layers" | jq -c --arg t "$_t" --arg k "$_k" --arg d "$_d" \
            --arg mt "$_mt" --argjson s "$(wc -c <"$_f")" \
            '. + [{mediaType:$mt, digest:$d, size:$s,
                   annotations:{"org.opencontainers.image.title":$t, "org.mlreg.kind":$k}}]')
    done
    printf '{}' >"$TMP/empty.cfg"
    _c=$(post_blob "$_m" "$TMP/empty.cfg") || return 1
    jq -cn --argjson layers "$_layers" --arg c "$_c" --arg model "$_m" --arg v "$_v" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2},
          layers:$layers,
          annotations:{"org.mlreg.model":$model,"org.mlreg.version":$v,
                       "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$TMP/m.json"
    _st=$(curl -s -o "$TMP/put.out" -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @"$TMP/m.json" "$MLREG_URL/v2/$_m/manifests/$_v")
    [ "$_st" = 201 ] || { echo "put_release $_m@$_v: $_st $(cat "$TMP/put.out")" >&2; return 1; }
}
# need_s3_env PART: the RGW env tests/run.sh exports for PART (s3, cluster,
# s3large) is set, or one failed check and the script ends.
need_s3_env() {
    for _v in S3_ENDPOINT S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
        eval "_val=\${$_v:-}"
        [ -n "$_val" ] || { not_ok "$_v is set (run by tests/run.sh $1)"; finish; }
    done
}

finish() {
    stop_server
    [ -f "$TMP/server.log" ] && grep -q "ERROR: AddressSanitizer\|runtime error:" "$TMP/server.log" &&
        { not_ok "no sanitizer reports in server log"; grep -A20 "Sanitizer\|runtime error" "$TMP/server.log" | head -60; }
    rm -rf "$TMP"
    [ "$FAILS" -eq 0 ]
    exit $?
}
