# lib_bench.sh: what the fs benchmarks (scrub.sh, backup.sh, gc.sh) share. Source
# it with NAME set; it sets ROOT, MLREG (from BUILD), W (a work dir removed
# at exit, with the server started by bench_serve), and defines:
#   now                    # seconds since the epoch, with nanoseconds
#   median                 # the median of the numbers on stdin, 3 decimals
#   bench_serve            # starts `mlreg serve` on W/data, exports MLREG_URL
#   bench_upload REPO N MIB  # N random blobs of MIB MiB into REPO
# and, for the scripts behind the table of make bench (run.sh):
#   bench_sample KEY VALUE   # one measurement into $BENCH_SAMPLES (report.py)
#   bench_start TAG [CONFIG] # another `mlreg serve` on W/TAG-data, its URL in
#                            # URL and its pid in SPID (stopped at exit)
#   bench_stop PID           # stops it
#   bench_hwm PID            # the peak RSS (VmHWM) of PID, KiB
#   cli ARGS...              # the mlreg CLI with HOME and XDG_CACHE_HOME in W,
#                            # so a digest cache starts empty and stays here
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) MLREG=$BUILD/mlreg ;; *) MLREG=$ROOT/$BUILD/mlreg ;; esac
W=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-bench-$NAME.XXXXXX")
PID=""
PIDS=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    for _p in $PIDS; do kill "$_p" 2>/dev/null && wait "$_p" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
command -v bc >/dev/null || { echo "bench: needs bc (make deps installs it)" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench: needs jq" >&2; exit 2; }

bench_serve() {
    "$MLREG" serve --listen 127.0.0.1:0 --data "$W/data" --ready-file "$W/ready" 2>"$W/server.log" &
    PID=$!
    _i=0
    until [ -s "$W/ready" ]; do
        _i=$((_i + 1))
        [ $_i -gt 200 ] && { echo "bench: server did not start" >&2; cat "$W/server.log"; exit 1; }
        sleep 0.05
    done
    MLREG_URL=$(cat "$W/ready")
    export MLREG_URL
}

bench_upload() {
    echo "bench: uploading $2 files of $3 MiB"
    _n=0
    while [ $_n -lt "$2" ]; do
        head -c "$(($3 * 1024 * 1024))" /dev/urandom >"$W/f"
        _d=sha256:$(sha256sum "$W/f" | cut -d' ' -f1)
        _st=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$W/f" \
            "$MLREG_URL/v2/$1/blobs/uploads/?digest=$_d")
        [ "$_st" = 201 ] || { echo "bench: upload $_n answered $_st" >&2; exit 1; }
        _n=$((_n + 1))
    done
    rm -f "$W/f"
}

bench_sample() {
    [ -z "${BENCH_SAMPLES:-}" ] || printf '%s\t%s\n' "$1" "$2" >>"$BENCH_SAMPLES"
}

bench_start() {
    _tag=$1
    rm -f "$W/$_tag.ready"
    if [ -n "${2:-}" ]; then
        "$MLREG" serve --config "$2" --listen 127.0.0.1:0 --data "$W/$_tag-data" \
            --ready-file "$W/$_tag.ready" 2>>"$W/$_tag.log" &
    else
        "$MLREG" serve --listen 127.0.0.1:0 --data "$W/$_tag-data" \
            --ready-file "$W/$_tag.ready" 2>>"$W/$_tag.log" &
    fi
    SPID=$!
    PIDS="$PIDS $SPID"
    _i=0
    until [ -s "$W/$_tag.ready" ]; do
        _i=$((_i + 1))
        if [ $_i -gt 600 ] || ! kill -0 "$SPID" 2>/dev/null; then
            cat "$W/$_tag.log" >&2
            echo "bench: mlreg serve ($_tag) did not start" >&2
            exit 1
        fi
        sleep 0.05
    done
    URL=$(cat "$W/$_tag.ready")
}

# bench_stop PID: stops a server bench_start started.
bench_stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

bench_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

cli() {
    mkdir -p "$W/home/.cache"
    HOME=$W/home XDG_CACHE_HOME=$W/home/.cache "$MLREG" "$@"
}
