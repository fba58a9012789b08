#!/bin/sh
# make bench, cluster part: three `mlreg serve` nodes sharing one log in a
# throw-away Ceph RGW (tests/s3/rgw.sh, memstore; started and stopped here).
#   - promotions per second with the same total load (BENCH_PROMOTIONS,
#     default 2000, from BENCH_WORKERS concurrent clients, default 6) sent
#     through one node, then spread over the three (tests/bench/cluster_load.py);
#   - replication lag under that load: for each log entry, from the first
#     node showing it to the last (p50, p99);
#   - the object-store requests of the log per promotion, read from the
#     nodes' GET /api/v1/cluster counters (commits, lost seqs, GET/PUT/...)
#     against an idle interval of the same length (followers' polling);
#   - the time `mlreg reindex --from-store` takes to rebuild an index from
#     a log of BENCH_ENTRIES entries (default 10000), against `aws s3 sync`
#     of the same log objects (the floor: just reading them).
# Each figure is one run (the load is long enough to average itself).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) MLREG=$BUILD/mlreg ;; *) MLREG=$ROOT/$BUILD/mlreg ;; esac
PROMOTIONS=${BENCH_PROMOTIONS:-2000}
WORKERS=${BENCH_WORKERS:-6}
ENTRIES=${BENCH_ENTRIES:-10000}
RGW_SH=$ROOT/tests/s3/rgw.sh
W=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-bench-cluster.XXXXXX")
RGW_DIR=$W/rgw
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    [ -d "$RGW_DIR" ] && sh "$RGW_SH" stop "$RGW_DIR" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
die() { echo "bench cluster: $*" >&2; exit 1; }

mkdir -p "$RGW_DIR"
RGW_STORE=memstore sh "$RGW_SH" start "$RGW_DIR" 2>"$W/rgw.log" || { cat "$W/rgw.log" >&2; die "RGW did not start"; }
tail -n 1 "$W/rgw.log"
set -a
. "$RGW_DIR/env"
set +a
AWS="aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
"$MLREG" key generate --no-password --out "$W/log" >/dev/null 2>&1 || die "mlreg key generate"

# start_nodes PREFIX [N [DATA]]: N (default 3) nodes on PREFIX, data dirs
# DATA<n> (default $W/<prefix>-n<n>); their URLs in $URLS.
start_nodes() {
    tag=$(echo "$1" | tr -d /)
    cfg=$W/$tag.json
    printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s","prefix":"%s"},
 "audit":{"log_key_file":"%s"},"limits":{"map_size":4294967296}}\n' \
        "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$1" "$W/log.key" >"$cfg"
    URLS=""
    for n in $(seq 1 "${2:-3}"); do
        rm -f "$W/ready$n"
        "$MLREG" serve --config "$cfg" --listen 127.0.0.1:0 --data "${3:-$W/$tag-n}$n" \
            --ready-file "$W/ready$n" 2>"$W/$tag-n$n.log" &
        PIDS="$PIDS $!"
        i=0
        while [ ! -s "$W/ready$n" ]; do
            i=$((i + 1)); [ $i -gt 6000 ] && { cat "$W/$tag-n$n.log" >&2; die "node $n did not start"; }
            sleep 0.05
        done
        URLS="$URLS $(cat "$W/ready$n")"
    done
}

stop_nodes() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    PIDS=""
}

# setup_models URL: two releases of bench/m<w> for every worker.
setup_models() {
    head -c 4096 /dev/urandom >"$W/weights.bin"
    w=0
    while [ $w -lt "$WORKERS" ]; do
        for v in 0 1; do
            printf '{"metrics":{"accuracy":0.9%d}}\n' "$v" >"$W/eval.json"
            MLREG_URL=$1 "$MLREG" push "bench/m$w@1.0.$v" --weights "$W/weights.bin" \
                --eval-report "$W/eval.json" --git-sha 0123456789abcdef0123456789abcdef01234567 \
                >/dev/null || die "push bench/m$w@1.0.$v"
        done
        w=$((w + 1))
    done
}

# wait_converged URL...: until every node has applied what the first one has.
wait_converged() {
    want=$(curl -s "$1/api/v1/cluster?nodes=false" | jq .applied)
    i=0
    for u in "$@"; do
        while [ "$(curl -s "$u/api/v1/cluster?nodes=false" | jq .applied)" -lt "$want" ]; do
            i=$((i + 1)); [ $i -gt 3000 ] && die "nodes did not converge"
            sleep 0.02
        done
    done
}

# log_counts URL...: the sum over the nodes of "commits lost get put head list"
log_counts() {
    for u in "$@"; do curl -s "$u/api/v1/cluster?nodes=false"; echo; done |
        jq -s '[map(.log_requests) | (map(.commits)|add), (map(.lost)|add), (map(.get)|add),
                (map(.put)|add), (map(.head)|add), (map(.list)|add)] | @tsv' -r
}

# ---- promotions through one node, then through three -------------------------
for mode in one three; do
    start_nodes "p-$mode/"
    set -- $URLS
    setup_models "$1"
    wait_converged "$@"
    # the followers' own traffic over an idle interval, to subtract below
    c0=$(log_counts "$@"); sleep 5; c1=$(log_counts "$@")
    if [ $mode = one ]; then ntargets=1; else ntargets=3; fi
    out=$(python3 "$ROOT/tests/bench/cluster_load.py" "$PROMOTIONS" "$WORKERS" $ntargets "$@")
    c2=$(log_counts "$@")
    echo "cluster bench, promotions through $mode node(s): $out"
    secs=$(echo "$out" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')
    n=$(echo "$out" | sed -n 's/^promotions=\([0-9]*\).*/\1/p')
    echo "$c0 $c1 $c2 $secs $n" | awk '{
        # idle rate per second over 5 s, per field (get put head list)
        for (f = 3; f <= 6; f++) idle[f] = ($(f + 6) - $f) / 5
        printf "  log requests per promotion (all nodes, idle polling over %.1f s subtracted): ", $19
        split("get put head list", name, " ")
        for (f = 3; f <= 6; f++) {
            load = $(f + 12) - $(f + 6) - idle[f] * $19
            printf "%s=%.2f ", name[f - 2], load / $20
        }
        printf "lost seqs=%d of %d commits\n", $14 - $8, $13 - $7
        printf "  idle polling, 3 nodes: %.1f GET/s, %.1f HEAD/s, %.1f PUT/s (heartbeats)\n",
            idle[3], idle[5], idle[4]
    }'
    if [ $mode = three ]; then
        # grow the log to ENTRIES for the rebuild below
        have=$(curl -s "$1/api/v1/cluster?nodes=false" | jq .applied)
        if [ "$have" -lt "$ENTRIES" ]; then
            python3 "$ROOT/tests/bench/cluster_load.py" "$((ENTRIES - have + WORKERS))" "$WORKERS" \
                3 "$@" >/dev/null
        fi
        entries=$(curl -s "$1/api/v1/cluster?nodes=false" | jq .applied)
        root1=$(curl -s "$1/api/v1/audit/checkpoint")
    fi
    stop_nodes
done

# ---- rebuild from the store ----------------------------------------------------
t0=$(now)
"$MLREG" reindex --from-store --config "$W/p-three.json" --data "$W/rebuilt" 2>"$W/reindex.log" ||
    { cat "$W/reindex.log" >&2; die "reindex failed"; }
t1=$(now)
t2=$(now)
$AWS s3 sync "s3://$S3_BUCKET/p-three/log/" "$W/logcopy/" >/dev/null 2>&1 || die "aws s3 sync"
t3=$(now)
rebuild=$(elapsed "$t0" "$t1")
sync_s=$(elapsed "$t2" "$t3")
echo "$rebuild $sync_s $entries" | awk '{ printf "cluster bench, rebuild of %d log entries: mlreg reindex --from-store %.1f s (%.0f entries/s); aws s3 sync of the same objects %.1f s; ratio %.2f\n", $3, $1, $3 / $1, $2, $1 / $2 }'
start_nodes "p-three/" 1 "$W/rebuilt"
set -- $URLS
root2=$(curl -s "$1/api/v1/audit/checkpoint")
[ "$root1" = "$root2" ] || die "the checkpoint after the rebuild differs"
stop_nodes
echo "cluster bench: checkpoint of the rebuilt log is identical"
