#!/bin/sh
# make bench-gc: a garbage collection of many small unreferenced blobs on
# the fs backend. BENCH_GC_BLOBS blobs (default 100000) of BENCH_GC_BYTES
# bytes (default 64) are written straight into the data dir of a fresh
# `mlreg serve`, as a store left with orphans would hold them (named by
# their digest, linked nowhere, written two days ago), next to one pushed
# release. Then, each on a server just started on that data dir,
# `mlreg gc --dry-run --json` and `mlreg gc --json`: wall time of the
# command, the server's own "seconds", the size of the report, and the
# server's peak RSS (VmHWM of /proc/PID/status) when it was ready and after
# the run, and the longest any of its changes held the write lock other
# writers wait on (the report's write_lock_ms_max). Checks that both runs count every orphan and that the real run
# left none of their files and the release still pulls.
NAME=gc
. "$(dirname "$0")/lib_bench.sh"
N=${BENCH_GC_BLOBS:-100000}
BYTES=${BENCH_GC_BYTES:-64}
die() { echo "bench-gc: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "needs python3"
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$PID/status"; }
# rss_parts: "anon X MB, file Y MB" of the server now
rss_parts() {
    awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} END {printf "anon %.1f MB, file %.1f MB", a/1024, f/1024}' \
        "/proc/$PID/status"
}

start() {
    rm -f "$W/ready"
    "$MLREG" serve --listen 127.0.0.1:0 --data "$W/data" --ready-file "$W/ready" \
        2>>"$W/server.log" &
    PID=$!
    i=0
    until [ -s "$W/ready" ]; do
        i=$((i + 1)); [ $i -gt 400 ] && { cat "$W/server.log" >&2; die "server did not start"; }
        sleep 0.05
    done
    MLREG_URL=$(cat "$W/ready")
    export MLREG_URL
}
stop() {
    kill -TERM "$PID"
    wait "$PID" || die "server exited $? on SIGTERM (log $W/server.log)"
    PID=""
}

start
head -c 100000 /dev/urandom >"$W/weights.bin"
printf '{"metrics":{"accuracy":0.9}}\n' >"$W/report.json"
(cd "$W" && "$MLREG" push bench/gc@1.0 --weights weights.bin --eval-report report.json \
    --git-sha 0123456789abcdef) >/dev/null 2>&1 || die "push of the release failed"
KEEP=$(find "$W/data/blobs/sha256" -type f | wc -l)
echo "bench-gc: writing $N orphan blobs of $BYTES bytes"
python3 "$ROOT/tests/tools/orphans.py" "$W/data/blobs/sha256" "$N" bench "$BYTES"
stop

# run NAME ARGS...: one collection on a fresh server; prints its line
run() {
    name=$1; shift
    start
    h0=$(hwm_kib)
    t0=$(now)
    "$MLREG" gc "$@" --json >"$W/$name.json" || die "mlreg gc $* failed"
    t1=$(now)
    h1=$(hwm_kib)
    parts=$(rss_parts)
    stop
    n=$(jq .deleted_blobs "$W/$name.json")
    [ "$n" = "$N" ] || die "$name: deleted_blobs $n, want $N"
    printf '  %-8s %7.2f s wall, %7.2f s in the server, report %9d bytes, server VmHWM %6.1f MB ready -> %6.1f MB after (RSS now: %s), write lock held at most %.1f ms\n' \
        "$name" "$(echo "$t1 - $t0" | bc -l)" "$(jq .seconds "$W/$name.json")" \
        "$(wc -c <"$W/$name.json")" "$(echo "$h0 / 1024" | bc -l)" "$(echo "$h1 / 1024" | bc -l)" "$parts" \
        "$(jq .write_lock_ms_max "$W/$name.json")"
}
echo "bench-gc: $N orphans, fs backend, each run on a server just started:"
run dry-run --dry-run
run real
left=$(find "$W/data/blobs/sha256" -type f | wc -l)
[ "$left" = "$KEEP" ] || die "$left blob files left after the real run (want the release's $KEEP)"
start
(cd "$W" && "$MLREG" pull bench/gc@1.0 -o out) >/dev/null 2>&1 || die "the release does not pull after gc"
stop
echo "bench-gc: the release still pulls; $left blob file(s) left"
