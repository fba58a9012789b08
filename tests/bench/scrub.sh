#!/bin/sh
# make bench-scrub: the throughput of a scrub against sha256sum of the same
# files. BENCH_SCRUB_FILES files of BENCH_SCRUB_MIB MiB each (default 64 x
# 32 MiB = 2 GiB) are uploaded to a fresh `mlreg serve` (fs backend); then,
# REPS times each, `mlreg scrub --json` (the report's "seconds": the
# server's reading and hashing, without the HTTP exchange) and `sha256sum`
# of the blob files in the data dir. Both read the same files, after one
# untimed pass of each, so both read from the page cache when it holds
# them: this measures hashing and reading overhead, not the disk. Prints
# the median MB/s (10^6 bytes per second) of both and their ratio, and of
# `openssl dgst -sha256` when installed (coreutils' sha256sum does not use
# the CPU's SHA extensions; OpenSSL, which the scrub hashes with, does).
NAME=scrub
. "$(dirname "$0")/lib_bench.sh"
FILES=${BENCH_SCRUB_FILES:-64}
MIB=${BENCH_SCRUB_MIB:-32}
REPS=${BENCH_REPS:-3}
bench_serve
bench_upload bench/scrub "$FILES" "$MIB"
BYTES=$((FILES * MIB * 1024 * 1024))

"$MLREG" scrub --json >/dev/null
find "$W/data/blobs/sha256" -type f -exec sha256sum {} + >/dev/null
: >"$W/scrub.t"
: >"$W/sum.t"
: >"$W/ossl.t"
r=0
while [ $r -lt "$REPS" ]; do
    "$MLREG" scrub --json >"$W/rep.json"
    jq -e --argjson b "$BYTES" '.bytes == $b and (.corrupt | length) == 0' "$W/rep.json" >/dev/null ||
        { echo "bench: unexpected scrub report" >&2; cat "$W/rep.json" >&2; exit 1; }
    jq -r .seconds "$W/rep.json" >>"$W/scrub.t"
    t0=$(now)
    find "$W/data/blobs/sha256" -type f -exec sha256sum {} + >/dev/null
    t1=$(now)
    echo "$t1 - $t0" | bc -l >>"$W/sum.t"
    if command -v openssl >/dev/null; then
        t0=$(now)
        find "$W/data/blobs/sha256" -type f -exec openssl dgst -sha256 {} + >/dev/null
        t1=$(now)
        echo "$t1 - $t0" | bc -l >>"$W/ossl.t"
    fi
    r=$((r + 1))
done
ts=$(median <"$W/scrub.t")
tc=$(median <"$W/sum.t")
ms=$(echo "$BYTES / $ts / 1000000" | bc -l)
mc=$(echo "$BYTES / $tc / 1000000" | bc -l)
printf 'scrub of %d files, %d MiB (page cache warm), median of %d:\n' "$FILES" "$((FILES * MIB))" "$REPS"
printf '  mlreg scrub  %8.3f s  %8.1f MB/s\n' "$ts" "$ms"
printf '  sha256sum    %8.3f s  %8.1f MB/s\n' "$tc" "$mc"
printf '  ratio (scrub / sha256sum throughput) %.2f\n' "$(echo "$ms / $mc" | bc -l)"
if [ -s "$W/ossl.t" ]; then
    to=$(median <"$W/ossl.t")
    mo=$(echo "$BYTES / $to / 1000000" | bc -l)
    printf '  openssl dgst %8.3f s  %8.1f MB/s  (scrub / openssl %.2f)\n' "$to" "$mo" \
        "$(echo "$ms / $mo" | bc -l)"
fi
