#!/bin/sh
# make bench, row 8: durable gated promotions per second on the fs backend.
# One `mlreg serve` with two gate rules on stage dev (accuracy >= 0.5 and a
# max_drop of 0.05 against the release the stage holds); BENCH_PROMO_WORKERS
# models (default 16) with two releases each (eval reports 0.91 and 0.92).
# Each round, tests/bench/promote_load.py runs that many threads, each with
# one keep-alive connection, promoting its model's two releases alternately
# for BENCH_PROMO_SECONDS; every answer must be 200, and the audit log must
# have grown by exactly the number of promotions (each one an audit entry,
# committed with fsync before the answer). The peer, for reference: how
# many 4 KiB write + fdatasync pairs one thread makes per second in the same
# directory (the floor for commits made one at a time).
# Samples: promo.per_second, promo.p99_ms, promo.fsync_per_second.
# Environment: BENCH_REPS (default 5), BENCH_PROMO_WORKERS (16),
# BENCH_PROMO_SECONDS (3), BENCH_SAMPLES, BUILD.
NAME=promote
. "$(dirname "$0")/lib_bench.sh"
REPS=${BENCH_REPS:-5}
WORKERS=${BENCH_PROMO_WORKERS:-16}
SECS=${BENCH_PROMO_SECONDS:-3}
LOAD=$ROOT/tests/bench/promote_load.py
die() { echo "bench promote: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "needs python3"

printf '{"gates":{"dev":[{"metric":"accuracy","min":0.5},{"metric":"accuracy","max_drop":0.05}]}}\n' \
    >"$W/gates.json"
bench_start promo "$W/gates.json"
echo "bench promote: pushing 2 releases of $WORKERS models"
head -c 4096 /dev/urandom >"$W/weights"
w=0
while [ $w -lt "$WORKERS" ]; do
    for v in 0 1; do
        printf '{"metrics":{"accuracy":0.9%d}}\n' "$((v + 1))" >"$W/eval.json"
        cli push --registry "$URL" "bench/p$w@1.0.$v" --weights "$W/weights" \
            --eval-report "$W/eval.json" >/dev/null 2>"$W/cli.log" ||
            { cat "$W/cli.log" >&2; die "push bench/p$w@1.0.$v"; }
    done
    w=$((w + 1))
done

audit_size() { curl -sf "$URL/api/v1/audit?limit=1" | jq -e .size; }
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    before=$(audit_size) || die "audit size"
    out=$(python3 "$LOAD" "$URL" "$WORKERS" "$SECS") || die "promotions failed: $out"
    after=$(audit_size) || die "audit size"
    n=$(echo "$out" | sed -n 's/^promotions=\([0-9]*\) .*/\1/p')
    [ $((after - before)) -eq "$n" ] ||
        die "$n promotions answered 200 but the audit log grew by $((after - before))"
    f=$(python3 "$LOAD" --fsync "$W/promo-data" 1 | sed 's/per_second=//')
    echo "bench promote: round $r/$REPS: $out; fdatasync/s $f"
    bench_sample promo.per_second "$(echo "$out" | sed 's/.*per_second=\([0-9.]*\).*/\1/')"
    bench_sample promo.p99_ms "$(echo "$out" | sed 's/.*p99_ms=\([0-9.]*\).*/\1/')"
    bench_sample promo.fsync_per_second "$f"
done
