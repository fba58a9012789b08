#!/bin/sh
# make bench-backup: `mlreg backup` of a running fs-backend registry against
# what an operator would script by hand: `cp -a` of the data directory and
# then `sha256sum` of every blob (the backup re-hashes each blob as it
# copies it). BENCH_BACKUP_FILES files of BENCH_BACKUP_MIB MiB each (default
# 32 x 32 MiB = 1 GiB) are uploaded to a fresh `mlreg serve`; then, REPS
# times each into a new directory on the same filesystem, `mlreg backup`,
# `cp -a` + `sha256sum`, and `mlreg backup --link`. Page cache warm (one
# untimed pass first): this measures copying and hashing, not the disk.
# Prints the medians and the ratios.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) MLREG=$BUILD/mlreg ;; *) MLREG=$ROOT/$BUILD/mlreg ;; esac
FILES=${BENCH_BACKUP_FILES:-32}
MIB=${BENCH_BACKUP_MIB:-32}
REPS=${BENCH_REPS:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-bench-backup.XXXXXX")
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
command -v bc >/dev/null || { echo "bench: needs bc (make deps installs it)" >&2; exit 2; }

"$MLREG" serve --listen 127.0.0.1:0 --data "$W/data" --ready-file "$W/ready" 2>"$W/server.log" &
PID=$!
i=0
until [ -s "$W/ready" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "bench: server did not start" >&2; cat "$W/server.log"; exit 1; }
    sleep 0.05
done
MLREG_URL=$(cat "$W/ready")

echo "bench: uploading $FILES files of $MIB MiB"
n=0
while [ $n -lt "$FILES" ]; do
    head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$W/f"
    d=sha256:$(sha256sum "$W/f" | cut -d' ' -f1)
    st=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$W/f" \
        "$MLREG_URL/v2/bench/backup/blobs/uploads/?digest=$d")
    [ "$st" = 201 ] || { echo "bench: upload $n answered $st" >&2; exit 1; }
    n=$((n + 1))
done
rm -f "$W/f"

# one untimed pass of each, so all read from the page cache
"$MLREG" backup --data "$W/data" --to "$W/warm" 2>/dev/null
rm -rf "$W/warm"
find "$W/data/blobs/sha256" -type f -exec cat {} + >/dev/null
: >"$W/backup.t"
: >"$W/cp.t"
: >"$W/link.t"
r=0
while [ $r -lt "$REPS" ]; do
    t0=$(now)
    "$MLREG" backup --data "$W/data" --to "$W/bk$r" 2>"$W/bk.err" ||
        { echo "bench: mlreg backup failed" >&2; cat "$W/bk.err" >&2; exit 1; }
    t1=$(now)
    echo "$t1 - $t0" | bc -l >>"$W/backup.t"
    rm -rf "$W/bk$r"
    t0=$(now)
    cp -a "$W/data" "$W/cp$r"
    find "$W/cp$r/blobs/sha256" -type f -exec sha256sum {} + >/dev/null
    t1=$(now)
    echo "$t1 - $t0" | bc -l >>"$W/cp.t"
    rm -rf "$W/cp$r"
    t0=$(now)
    "$MLREG" backup --data "$W/data" --to "$W/ln$r" --link 2>/dev/null
    t1=$(now)
    echo "$t1 - $t0" | bc -l >>"$W/link.t"
    rm -rf "$W/ln$r"
    r=$((r + 1))
done
tb=$(median <"$W/backup.t")
tc=$(median <"$W/cp.t")
tl=$(median <"$W/link.t")
printf 'backup of %d blobs, %d MiB, median of %d (page cache warm):\n' "$FILES" "$((FILES * MIB))" "$REPS"
printf '  mlreg backup            %8.3f s\n' "$tb"
printf '  cp -a + sha256sum       %8.3f s\n' "$tc"
printf '  mlreg backup --link     %8.3f s\n' "$tl"
printf '  ratio (cp -a + sha256sum time / mlreg backup time) %.2f\n' "$(echo "$tc / $tb" | bc -l)"
