#!/bin/sh
# make bench, row 9: peak memory of `mlreg serve` and of the CLI pushing and
# pulling one large file (BENCH_BIG_MIB, default 4096 MiB).
#   - server: VmHWM (/proc/PID/status) once it is ready and has answered one
#     request, then again after the push; the server is restarted on the
#     same data dir before the pull, so the pull's figure is its own;
#   - CLI: peak RSS from /usr/bin/time -f %M of `mlreg push` / `mlreg pull`
#     of the large release, against the same commands for a 4 KiB release
#     (the CLI's baseline: its libraries, buffers, TLS and HTTP state).
# The pulled file is compared with the pushed one. With BENCH_RSS_CONFIG
# the server runs with that config (tests/bench/s3.sh passes its s3 one,
# with a fresh prefix); BENCH_RSS_LABEL (fs, s3) names the samples
# rss.<label>.<server|cli>_<push|pull>_<growth|base>_kib.
# BENCH_BIG_FILE: use that file instead of generating one (run.sh makes it
# once for the fs and s3 parts; it is touched first, so no digest cache
# knows it). BENCH_BIG_REPS rounds (default 1).
NAME=rss
. "$(dirname "$0")/lib_bench.sh"
BIG_MIB=${BENCH_BIG_MIB:-4096}
LABEL=${BENCH_RSS_LABEL:-fs}
CONFIG=${BENCH_RSS_CONFIG:-}
BIG=${BENCH_BIG_FILE:-}
REPS=${BENCH_BIG_REPS:-1}
die() { echo "bench rss ($LABEL): $*" >&2; exit 1; }
[ -x /usr/bin/time ] || die "needs /usr/bin/time (Debian package time; make deps installs it)"

if [ -z "$BIG" ]; then
    echo "bench rss ($LABEL): generating ${BIG_MIB} MiB test file"
    BIG=$W/big
    head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom >"$BIG"
fi
head -c 4096 /dev/urandom >"$W/tiny"

# peak RSS in KiB of the CLI running ARGS..., which must succeed
cli_peak() {
    /usr/bin/time -f %M -o "$W/time.out" env HOME="$W/home" XDG_CACHE_HOME="$W/home/.cache" \
        "$MLREG" "$@" >"$W/cli.log" 2>&1 || { cat "$W/cli.log" >&2; die "mlreg $1 failed"; }
    tail -n 1 "$W/time.out"
}
# the server's VmHWM once it is ready and has answered a request
idle_hwm() {
    curl -sf -o /dev/null "$URL/api/v1/health" || die "server not answering"
    bench_hwm "$SPID"
}

mkdir -p "$W/home/.cache"
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    rm -rf "$W/srv-data" "$W/pulled" "$W/tiny-pulled"
    touch "$BIG"
    bench_start srv "$CONFIG"
    idle=$(idle_hwm)
    base=$(cli_peak push --registry "$URL" bench/rss@0.0.$r --weights "$W/tiny")
    big=$(cli_peak push --registry "$URL" bench/rss@1.0.$r --weights "$BIG")
    peak=$(bench_hwm "$SPID")
    bench_sample "rss.$LABEL.server_push_base_kib" "$idle"
    bench_sample "rss.$LABEL.server_push_growth_kib" "$((peak - idle))"
    bench_sample "rss.$LABEL.cli_push_base_kib" "$base"
    bench_sample "rss.$LABEL.cli_push_growth_kib" "$((big - base))"
    echo "bench rss ($LABEL): push ${BIG_MIB} MiB: server VmHWM $idle -> $peak KiB; CLI $base KiB (4 KiB file), $big KiB"
    bench_stop "$SPID"

    bench_start srv "$CONFIG"
    idle=$(idle_hwm)
    base=$(cli_peak pull --registry "$URL" bench/rss@0.0.$r -o "$W/tiny-pulled")
    big=$(cli_peak pull --registry "$URL" bench/rss@1.0.$r -o "$W/pulled")
    peak=$(bench_hwm "$SPID")
    cmp -s "$BIG" "$W/pulled/$(basename "$BIG")" || die "mlreg pull returned different bytes"
    bench_sample "rss.$LABEL.server_pull_base_kib" "$idle"
    bench_sample "rss.$LABEL.server_pull_growth_kib" "$((peak - idle))"
    bench_sample "rss.$LABEL.cli_pull_base_kib" "$base"
    bench_sample "rss.$LABEL.cli_pull_growth_kib" "$((big - base))"
    echo "bench rss ($LABEL): pull ${BIG_MIB} MiB: server VmHWM $idle -> $peak KiB; CLI $base KiB (4 KiB file), $big KiB"
    bench_stop "$SPID"
    rm -rf "$W/pulled" "$W/tiny-pulled"
done
