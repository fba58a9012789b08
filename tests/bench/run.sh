#!/bin/sh
# make bench: push and pull of one generated file through mlreg, against
#   - cp of the same file (the floor: one local copy),
#   - the Debian docker-registry 2.8 (distribution, fs backend, loopback), driven
#     by curl with the same monolithic upload (POST, then PUT ?digest= with the
#     body) and a plain blob GET,
#   - curl driving mlreg the same way (same client, so server against server),
#   - the mlreg CLI (push hashes the file first; pull hashes while it streams
#     and fsyncs before placing the file).
# Then the s3, audit and cluster parts, and manifest GETs over HTTPS against
# plain HTTP (tests/bench/tls.sh).
# Each measurement runs REPS times on a fresh data dir; the median is printed
# with its ratio to cp. Also prints mlreg's peak RSS (VmHWM) during the push.
# Environment: BENCH_SIZE_MIB (default 1024), BENCH_REPS (default 3).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) MLREG=$BUILD/mlreg ;; *) MLREG=$ROOT/$BUILD/mlreg ;; esac
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
REPS=${BENCH_REPS:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-bench.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
free_port() {
    while :; do
        p=$(( (($(od -An -N2 -tu2 /dev/urandom)) % 20000) + 30000 ))
        ss -ltn "sport = :$p" | grep -q ":$p" || { echo "$p"; return; }
    done
}
wait_http() {
    i=0
    until curl -s -o /dev/null "$1"; do
        i=$((i + 1)); [ $i -gt 200 ] && { echo "bench: $1 did not come up" >&2; exit 1; }
        sleep 0.05
    done
}

command -v bc >/dev/null || { echo "bench: needs bc (make deps installs it)" >&2; exit 2; }
echo "bench: generating ${SIZE_MIB} MiB test file"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$W/file"
HEX=$(sha256sum "$W/file" | cut -d' ' -f1)
DIGEST="sha256:$HEX"
sync

# curl monolithic upload: POST to open a session, PUT ?digest= with the body.
curl_push() { # URL REPO
    loc=$(curl -sf -X POST -D - -o /dev/null "$1/v2/$2/blobs/uploads/" | tr -d '\r' |
        sed -n 's/^[Ll]ocation: *//p')
    case $loc in http*) ;; *) loc="$1$loc" ;; esac
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$W/file" \
        "$loc${sep}digest=$DIGEST" -o /dev/null
}
curl_pull() { curl -sf -o "$W/out" "$1/v2/$2/blobs/$DIGEST"; }

start_mlreg() {
    rm -rf "$W/mdata" "$W/ready"
    "$MLREG" serve --listen 127.0.0.1:0 --data "$W/mdata" --ready-file "$W/ready" 2>"$W/mlreg.log" &
    MPID=$!; PIDS="$PIDS $MPID"
    i=0; until [ -s "$W/ready" ]; do i=$((i+1)); [ $i -gt 200 ] && { cat "$W/mlreg.log" >&2; exit 1; }; sleep 0.05; done
    MURL=$(cat "$W/ready")
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

start_distribution() {
    rm -rf "$W/ddata"; mkdir -p "$W/ddata"
    port=$(free_port)
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
    DPID=$!; PIDS="$PIDS $DPID"
    DURL="http://127.0.0.1:$port"
    wait_http "$DURL/v2/"
}

: >"$W/t.cp"; : >"$W/t.mpush"; : >"$W/t.mpull"; : >"$W/t.cmpush"; : >"$W/t.cmpull"
: >"$W/t.dpush"; : >"$W/t.dpull"; : >"$W/rss"
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    echo "bench: round $r/$REPS"
    rm -f "$W/copy"; t0=$(now); cp "$W/file" "$W/copy"; sync "$W/copy"; t1=$(now)
    elapsed "$t0" "$t1" >>"$W/t.cp"; rm -f "$W/copy"

    start_mlreg
    t0=$(now); "$MLREG" push --registry "$MURL" bench/model@r$r --weights "$W/file" >/dev/null 2>&1; t1=$(now)
    elapsed "$t0" "$t1" >>"$W/t.mpush"
    grep VmHWM "/proc/$MPID/status" | awk '{print $2}' >>"$W/rss"
    rm -rf "$W/pulled"
    t0=$(now); "$MLREG" pull --registry "$MURL" bench/model@r$r -o "$W/pulled" >/dev/null 2>&1; t1=$(now)
    elapsed "$t0" "$t1" >>"$W/t.mpull"
    cmp -s "$W/file" "$W/pulled/file" || { echo "bench: mlreg pull returned different bytes" >&2; exit 1; }
    rm -rf "$W/pulled"
    stop_pid "$MPID"

    start_mlreg
    t0=$(now); curl_push "$MURL" bench/curl; t1=$(now); elapsed "$t0" "$t1" >>"$W/t.cmpush"
    t0=$(now); curl_pull "$MURL" bench/curl; t1=$(now); elapsed "$t0" "$t1" >>"$W/t.cmpull"
    cmp -s "$W/file" "$W/out" || { echo "bench: mlreg GET returned different bytes" >&2; exit 1; }
    rm -f "$W/out"
    stop_pid "$MPID"

    start_distribution
    t0=$(now); curl_push "$DURL" bench/curl; t1=$(now); elapsed "$t0" "$t1" >>"$W/t.dpush"
    t0=$(now); curl_pull "$DURL" bench/curl; t1=$(now); elapsed "$t0" "$t1" >>"$W/t.dpull"
    cmp -s "$W/file" "$W/out" || { echo "bench: docker-registry GET returned different bytes" >&2; exit 1; }
    rm -f "$W/out"
    stop_pid "$DPID"
done

CP=$(median <"$W/t.cp")
row() { # label file
    m=$(median <"$2")
    printf '%-44s %8.3f s  %6.0f MiB/s  %5.2fx cp\n' "$1" "$m" "$(echo "$SIZE_MIB / $m" | bc -l)" \
        "$(echo "$m / $CP" | bc -l)"
}
echo
echo "== ${SIZE_MIB} MiB, median of $REPS runs (this machine: $(nproc) cores) =="
row "cp (+sync)" "$W/t.cp"
row "mlreg push (CLI: hash + upload + manifest)" "$W/t.mpush"
row "mlreg pull (CLI: download + verify + fsync)" "$W/t.mpull"
row "curl PUT -> mlreg serve" "$W/t.cmpush"
row "curl GET <- mlreg serve" "$W/t.cmpull"
row "curl PUT -> docker-registry 2.8" "$W/t.dpush"
row "curl GET <- docker-registry 2.8" "$W/t.dpull"
printf 'mlreg serve push vs docker-registry push: %.2fx time\n' "$(echo "$(median <"$W/t.cmpush") / $(median <"$W/t.dpush")" | bc -l)"
printf 'mlreg serve GET vs docker-registry GET:   %.2fx time\n' "$(echo "$(median <"$W/t.cmpull") / $(median <"$W/t.dpull")" | bc -l)"
printf 'mlreg serve peak RSS during push (VmHWM), median: %s KiB\n' "$(median <"$W/rss")"

# The s3 part: mlreg serve on the s3 backend against `aws s3 cp`, on its own
# throw-away Ceph RGW (tests/bench/s3.sh starts and stops it).
rm -f "$W/file"
echo
BUILD="$BUILD" BENCH_SIZE_MIB="$SIZE_MIB" BENCH_REPS="$REPS" sh "$ROOT/tests/bench/s3.sh"

# The audit log: append cost, verify and proof latency (tests/bench/audit.sh).
echo
BUILD="$BUILD" BENCH_REPS="$REPS" sh "$ROOT/tests/bench/audit.sh"

# The cluster: three nodes sharing one log on their own throw-away Ceph RGW
# (tests/bench/cluster.sh starts and stops it).
echo
BUILD="$BUILD" sh "$ROOT/tests/bench/cluster.sh"

# Manifest GETs per second over HTTPS against plain HTTP, keep-alive on
# loopback (tests/bench/tls.sh).
echo
BUILD="$BUILD" BENCH_REPS="$REPS" sh "$ROOT/tests/bench/tls.sh"
