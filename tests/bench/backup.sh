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
NAME=backup
. "$(dirname "$0")/lib_bench.sh"
FILES=${BENCH_BACKUP_FILES:-32}
MIB=${BENCH_BACKUP_MIB:-32}
REPS=${BENCH_REPS:-3}
bench_serve
bench_upload bench/backup "$FILES" "$MIB"

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
