#!/bin/sh
# make bench, rows 1 to 5: one BENCH_SIZE_MIB file (default 1024) through
# mlreg on the fs backend, against a durable copy and the Debian
# docker-registry 2.8, BENCH_REPS rounds (default 5), each on fresh data dirs:
#   - durable copy: `cp` of the file, then `sync` of the copy (fsync); the
#     copy is the "new file" this round's `mlreg push` sends (a new inode,
#     so no digest cache knows it);
#   - `mlreg push` of that new file to a fresh `mlreg serve` (fs), end to end,
#     then the same command again, files unchanged;
#   - `mlreg pull` of the release (download, verify, fsync), compared with
#     the file;
#   - curl monolithic upload (POST to open a session, PUT ?digest= with the
#     body) and curl GET of the blob to /dev/null, against a fresh
#     `mlreg serve` and then against docker-registry (fs backend, loopback,
#     the config below), the same client for both; the GETs of round 1 are
#     hashed once more, untimed, to check the bytes.
# Samples (seconds): fs.cp_s fs.push_s fs.push_again_s fs.pull_s
# fs.curl_put_s fs.curl_get_s fs.docker_put_s fs.docker_get_s.
# BENCH_FILE: use that file instead of generating one. BENCH_SAMPLES, BUILD.
NAME=fs
. "$(dirname "$0")/lib_bench.sh"
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
REPS=${BENCH_REPS:-5}
FILE=${BENCH_FILE:-}
die() { echo "bench fs: $*" >&2; exit 1; }
command -v docker-registry >/dev/null || die "needs docker-registry (make deps installs it)"
elapsed() { echo "$2 - $1" | bc -l; }

if [ -z "$FILE" ]; then
    echo "bench fs: generating ${SIZE_MIB} MiB test file"
    FILE=$W/file
    head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$FILE"
    sync "$FILE"
fi
DIGEST=sha256:$(sha256sum "$FILE" | cut -d' ' -f1)

# curl_push URL REPO: monolithic upload, POST to open a session, PUT ?digest=
curl_push() {
    loc=$(curl -sf -X POST -D - -o /dev/null "$1/v2/$2/blobs/uploads/" | tr -d '\r' |
        sed -n 's/^[Ll]ocation: *//p')
    case $loc in http*) ;; *) loc="$1$loc" ;; esac
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$FILE" \
        "$loc${sep}digest=$DIGEST" -o /dev/null || die "curl PUT to $1 failed"
}
curl_get() { curl -sf -o /dev/null "$1/v2/$2/blobs/$DIGEST" || die "curl GET from $1 failed"; }
check_get() {
    got=sha256:$(curl -sf "$1/v2/$2/blobs/$DIGEST" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$DIGEST" ] || die "GET from $1 returned different bytes"
}
# timed KEY CMD...: runs CMD, records its wall time as sample KEY
timed() {
    _k=$1
    shift
    _t0=$(now)
    "$@"
    _t1=$(now)
    bench_sample "$_k" "$(elapsed "$_t0" "$_t1")"
}

start_distribution() {
    rm -rf "$W/ddata"
    mkdir -p "$W/ddata"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$W/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/ddata
http:
  addr: 127.0.0.1:$port
YML
    docker-registry serve "$W/registry.yml" 2>"$W/dist.log" &
    DPID=$!
    PIDS="$PIDS $DPID"
    DURL=http://127.0.0.1:$port
    _i=0
    until curl -s -o /dev/null "$DURL/v2/"; do
        _i=$((_i + 1))
        [ $_i -gt 200 ] && { cat "$W/dist.log" >&2; die "docker-registry did not start"; }
        sleep 0.05
    done
}

push() { cli push --registry "$URL" "bench/model@1.0.$r" --weights "$W/new" >"$W/cli.log" 2>&1 ||
    { cat "$W/cli.log" >&2; die "mlreg push failed"; }; }
pull() { cli pull --registry "$URL" "bench/model@1.0.$r" -o "$W/pulled" >"$W/cli.log" 2>&1 ||
    { cat "$W/cli.log" >&2; die "mlreg pull failed"; }; }

r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    echo "bench fs: round $r/$REPS"
    rm -f "$W/new"
    timed fs.cp_s sh -c 'cp "$1" "$2" && sync "$2"' sh "$FILE" "$W/new"

    rm -rf "$W/m-data" "$W/pulled"
    bench_start m
    timed fs.push_s push
    timed fs.push_again_s push
    timed fs.pull_s pull
    cmp -s "$FILE" "$W/pulled/new" || die "mlreg pull returned different bytes"
    rm -rf "$W/pulled" "$W/new"
    bench_stop "$SPID"

    rm -rf "$W/m-data"
    bench_start m
    timed fs.curl_put_s curl_push "$URL" bench/curl
    timed fs.curl_get_s curl_get "$URL" bench/curl
    if [ $r -eq 1 ]; then check_get "$URL" bench/curl; fi
    bench_stop "$SPID"
    rm -rf "$W/m-data"

    start_distribution
    timed fs.docker_put_s curl_push "$DURL" bench/curl
    timed fs.docker_get_s curl_get "$DURL" bench/curl
    if [ $r -eq 1 ]; then check_get "$DURL" bench/curl; fi
    bench_stop "$DPID"
    rm -rf "$W/ddata"
done
