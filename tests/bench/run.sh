#!/bin/sh
# make bench: the nine performance targets, each measured against its peer in the
# same run, then printed as one table and written as JSON
# (docs/performance.md says what each row measures and how to read both):
#   rows 1-5  tests/bench/fs.sh       push, pull, PUT, GET of one file on fs,
#                                     against cp + sync and docker-registry
#   row 6     tests/bench/s3.sh       the same through the s3 backend into a
#                                     throw-away Ceph RGW, against aws s3 cp
#   row 7     tests/bench/http.sh     manifest GET and stage resolve with wrk,
#                                     against nginx, plain and TLS
#   row 8     tests/bench/promote.sh  durable gated promotions per second
#   row 9     tests/bench/rss.sh      peak RSS of server and CLI on a large
#                                     file, fs here and s3 inside s3.sh
# then the audit and cluster parts (tests/bench/audit.sh, cluster.sh, which
# print their own figures), and last the table (tests/bench/report.py) and
# the total time. A missed target prints MISS and is no failure; wrong bytes,
# a server that does not start or a failed command stop the bench (exit 1).
# Environment:
#   BENCH_SIZE_MIB  file size of rows 1-6 (default 1024)
#   BENCH_REPS      rounds of rows 1-8, medians of these (default 5)
#   BENCH_BIG_MIB   file size of row 9 (default 4 x BENCH_SIZE_MIB: 4096)
#   BENCH_BIG_REPS  rounds of row 9 (default 1)
#   BENCH_PARTS     the parts to run (default "fs s3 http promote rss audit
#                   cluster"); rows of a part left out say n/a
#   BENCH_OUT       where samples.tsv, results.json and results.txt go
#                   (default $BUILD/bench)
# and the knobs of each script (BENCH_WRK_SECONDS, BENCH_PROMO_WORKERS, ...).
# The audit and cluster parts keep their own sizes (BENCH_AUDIT_N,
# BENCH_PROMOTIONS, BENCH_ENTRIES) when set; otherwise their defaults shrink
# with BENCH_SIZE_MIB below 1024 (in proportion, at most 16 times), so that
# a quick check of the harness stays quick:
#   BENCH_SIZE_MIB=64 BENCH_REPS=3 make bench
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
REPS=${BENCH_REPS:-5}
BIG_MIB=${BENCH_BIG_MIB:-$((4 * SIZE_MIB))}
BIG_REPS=${BENCH_BIG_REPS:-1}
PARTS=${BENCH_PARTS:-fs s3 http promote rss audit cluster}
OUT=${BENCH_OUT:-$B/bench}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
export BENCH_SIZE_MIB="$SIZE_MIB" BENCH_REPS="$REPS" BENCH_BIG_MIB="$BIG_MIB" \
    BENCH_BIG_REPS="$BIG_REPS" BENCH_PARTS="$PARTS" BUILD="$B"
die() { echo "bench: $*" >&2; exit 1; }
for t in bc jq python3 curl; do
    command -v $t >/dev/null || die "needs $t (make deps installs it)"
done
[ -x "$B/mlreg" ] || die "$B/mlreg not built"
W=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM HUP
has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
T0=$(date +%s.%N)

mkdir -p "$OUT"
BENCH_SAMPLES=$OUT/samples.tsv
export BENCH_SAMPLES
: >"$BENCH_SAMPLES"
meta() { printf 'meta.%s\t%s\n' "$1" "$2" >>"$BENCH_SAMPLES"; }
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta size_mib "$SIZE_MIB"
meta reps "$REPS"
meta big_mib "$BIG_MIB"
meta big_reps "$BIG_REPS"
meta parts "$PARTS"
meta commit "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
meta mlreg_version "$("$B/mlreg" version 2>/dev/null | head -n 1)"
meta cpus "$(nproc)"
meta cpu_model "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)"
meta mem_gib "$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
meta kernel "$(uname -r)"
meta filesystem "$(df -T "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $2 " on " $1 }')"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"

# the test files, made once for every part (fresh copies or touched before
# each push, so no digest cache knows them)
if has fs || has s3; then
    echo "bench: generating ${SIZE_MIB} MiB test file"
    head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$W/file"
    sync "$W/file"
    export BENCH_FILE="$W/file"
fi
if has rss; then
    echo "bench: generating ${BIG_MIB} MiB test file (row 9)"
    head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom >"$W/big"
    sync "$W/big"
    export BENCH_BIG_FILE="$W/big"
fi

part() { # NAME SCRIPT [VAR=VALUE...]: runs one part with those variables, times it
    _name=$1
    _script=$2
    shift 2
    _t0=$(date +%s.%N)
    echo
    echo "== bench part: $_name =="
    env "$@" sh "$ROOT/tests/bench/$_script" || die "part $_name ($_script) failed"
    meta "seconds_$_name" "$(echo "$(date +%s.%N) - $_t0" | bc -l | xargs printf '%.1f')"
}
if has fs; then part fs fs.sh; fi
if has rss; then part rss-fs rss.sh; fi
if has s3; then part s3 s3.sh; fi
rm -f "$W/file" "$W/big"
if has http; then part http http.sh; fi
if has promote; then part promote promote.sh; fi
# audit.sh and cluster.sh: their default sizes at 1024 MiB, scaled down below
scaled() { awk -v n="$1" -v s="$SIZE_MIB" 'BEGIN { f = s / 1024; if (f > 1) f = 1;
    if (f < 1 / 16) f = 1 / 16; printf "%d", n * f }'; }
if has audit; then
    part audit audit.sh BENCH_AUDIT_N="${BENCH_AUDIT_N:-$(scaled 20000)}" \
        BENCH_REPS=$((REPS < 3 ? REPS : 3))
fi
if has cluster; then
    part cluster cluster.sh BENCH_PROMOTIONS="${BENCH_PROMOTIONS:-$(scaled 2000)}" \
        BENCH_ENTRIES="${BENCH_ENTRIES:-$(scaled 10000)}"
fi

TOTAL=$(echo "$(date +%s.%N) - $T0" | bc -l | xargs printf '%.0f')
meta total_seconds "$TOTAL"
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 "$ROOT/tests/bench/report.py" "$BENCH_SAMPLES" "$OUT/results.json" "$OUT/results.txt" ||
    die "report.py failed"
printf 'bench: total %d s (%d min %d s) on %s cores; JSON: %s; table: %s; samples: %s\n' \
    "$TOTAL" "$((TOTAL / 60))" "$((TOTAL % 60))" "$(nproc)" "$OUT/results.json" \
    "$OUT/results.txt" "$BENCH_SAMPLES"
