#!/bin/sh
# make bench, row 6 and the s3 half of row 9: push and pull of one generated
# file through `mlreg serve` on the s3 backend, against `aws s3 cp` of the
# same file to and from the same bucket, in one run, on a fresh throw-away
# Ceph RGW (tests/s3/rgw.sh, bluestore on a sparse file; started and stopped
# here).
#   - mlreg push (the CLI end to end, whatever the server then does with
#     the store: multipart upload, copy or not), on a fresh server and
#     prefix each round so nothing is deduplicated; the file is touched
#     first, so no digest cache of the CLI knows it;
#   - curl POST .../blobs/uploads?digest= with the body -> mlreg serve (the
#     same monolithic upload without the CLI; reported, no target);
#   - mlreg pull (CLI: download through the server, verify, fsync);
#   - mlreg pull again with storage.redirect_downloads (the server answers
#     each blob GET with a presigned URL: the CLI's parallel ranges go to
#     RGW; reported, no target);
#   - aws s3 cp up and down (the Debian AWS CLI, its defaults: 8 MiB parts,
#     10 concurrent requests; no fsync).
# Each runs BENCH_REPS times (default 5). Then row 9 on s3:
# tests/bench/rss.sh with the s3 config (BENCH_BIG_MIB, BENCH_BIG_REPS
# rounds, each on a fresh prefix). The bound of row 9 needs the server's
# parts in flight and part size: read from storage/s3.c and
# include/mlreg/s3.h (the defaults the server uses when the config sets
# none), or pinned in the config with BENCH_S3_PARTS_IN_FLIGHT and
# BENCH_S3_PART_MIB; when the source no longer shows them, the defaults
# of today (4 and 8 MiB) are pinned in the config instead.
# Samples: s3.push_s s3.curl_post_s s3.pull_s s3.pull_redirect_s
# s3.aws_up_s s3.aws_down_s,
# s3.parts_in_flight, s3.part_size_kib (for a BENCH_BIG_MIB blob) and the
# rss.s3.* of rss.sh; the table is printed by report.py. The old summary
# lines are still printed here.
# Environment: BENCH_SIZE_MIB (default 1024), BENCH_REPS, BENCH_FILE and
# BENCH_BIG_FILE (use these files instead of generating them), BENCH_PARTS
# (without "rss", row 9 is skipped), BENCH_SAMPLES, BUILD.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) MLREG=$BUILD/mlreg ;; *) MLREG=$ROOT/$BUILD/mlreg ;; esac
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
REPS=${BENCH_REPS:-5}
BIG_MIB=${BENCH_BIG_MIB:-4096}
FILE=${BENCH_FILE:-}
RGW_SH=$ROOT/tests/s3/rgw.sh
W=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-bench-s3.XXXXXX")
RGW_DIR=$W/rgw
MPID=""
cleanup() {
    if [ -n "$MPID" ]; then kill "$MPID" 2>/dev/null || true; wait "$MPID" 2>/dev/null || true; fi
    [ -d "$RGW_DIR" ] && sh "$RGW_SH" stop "$RGW_DIR" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
bench_sample() {
    [ -z "${BENCH_SAMPLES:-}" ] || printf '%s\t%s\n' "$1" "$2" >>"$BENCH_SAMPLES"
}
# timed KEY: the wall time since t0 as sample KEY, and into W/t.KEY
timed() {
    _t1=$(now)
    _e=$(elapsed "$t0" "$_t1")
    bench_sample "s3.$1" "$_e"
    echo "$_e" >>"$W/t.$1"
}
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
die() { echo "bench s3: $*" >&2; exit 1; }

command -v bc >/dev/null || { echo "bench s3: needs bc (make deps installs it)" >&2; exit 2; }
[ -x "$MLREG" ] || die "$MLREG not built"

echo "bench s3: starting Ceph RGW (bluestore)"
RGW_STORE=bluestore sh "$RGW_SH" start "$RGW_DIR" 2>"$W/rgw.log" || { cat "$W/rgw.log" >&2; die "RGW did not start"; }
tail -n 1 "$W/rgw.log"
set -a
. "$RGW_DIR/env"
set +a
AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
export AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_EC2_METADATA_DISABLED AWS_PAGER
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"

if [ -z "$FILE" ]; then
    echo "bench s3: generating ${SIZE_MIB} MiB test file"
    FILE=$W/file
    head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$FILE"
    sync "$FILE"
fi

# parts in flight and first part size: the server's defaults, from the source
PIF=${BENCH_S3_PARTS_IN_FLIGHT:-}
PART_MIB=${BENCH_S3_PART_MIB:-}
EXTRA=""
if [ -z "$PIF" ]; then
    PIF=$(sed -n 's/.*parts_in_flight = cfg->parts_in_flight ? cfg->parts_in_flight : \([0-9][0-9]*\);.*/\1/p' \
        "$ROOT/storage/s3.c")
    [ -n "$PIF" ] || { PIF=4; EXTRA="$EXTRA,\"parts_in_flight\":4"; echo "bench s3: parts in flight not found in storage/s3.c; pinned to 4"; }
else
    EXTRA="$EXTRA,\"parts_in_flight\":$PIF"
fi
if [ -z "$PART_MIB" ]; then
    PART_MIB=$(sed -n 's/^#define MLREG_S3_DEFAULT_PART_SIZE (\([0-9][0-9]*\)ull << 20).*/\1/p' \
        "$ROOT/include/mlreg/s3.h")
    [ -n "$PART_MIB" ] || { PART_MIB=8; EXTRA="$EXTRA,\"part_size\":8388608"; echo "bench s3: part size not found in include/mlreg/s3.h; pinned to 8 MiB"; }
else
    EXTRA="$EXTRA,\"part_size\":$((PART_MIB * 1048576))"
fi

# s3_config PREFIX [MEMBERS]: the server config on the bucket, under PREFIX,
# with more storage MEMBERS (",\"k\":v")
s3_config() {
    printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s","prefix":"%s"%s%s},"audit":{"log_key_file":"%s"}}\n' \
        "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$1" "$EXTRA" "${2:-}" "$W/log.key"
}

# start_mlreg PREFIX [MEMBERS]: a fresh server (data dir and key prefix) on
# the bucket; restart_mlreg PREFIX [MEMBERS]: the same data dir again.
start_mlreg() {
    rm -rf "$W/mdata"
    restart_mlreg "$@"
}
restart_mlreg() {
    rm -f "$W/ready"
    [ -f "$W/log.key" ] || "$MLREG" key generate --no-password --out "$W/log" >/dev/null 2>&1
    s3_config "$1" "${2:-}" >"$W/s3.json"
    "$MLREG" serve --config "$W/s3.json" --listen 127.0.0.1:0 --data "$W/mdata" \
        --ready-file "$W/ready" 2>"$W/mlreg.log" &
    MPID=$!
    i=0
    until [ -s "$W/ready" ]; do
        i=$((i + 1))
        { [ $i -gt 200 ] || ! kill -0 "$MPID" 2>/dev/null; } && { cat "$W/mlreg.log" >&2; die "mlreg serve did not start"; }
        sleep 0.05
    done
    MURL=$(cat "$W/ready")
}
stop_mlreg() { kill "$MPID" 2>/dev/null || true; wait "$MPID" 2>/dev/null || true; MPID=""; }

: >"$W/t.push_s"; : >"$W/t.pull_s"; : >"$W/t.curl_post_s"; : >"$W/t.aws_up_s"; : >"$W/t.aws_down_s"
: >"$W/t.pull_redirect_s"
HEX=$(sha256sum "$FILE" | cut -d' ' -f1)
BASE=$(basename "$FILE")
# the CLI with its own HOME, so a digest cache starts empty and stays in W
cli() {
    mkdir -p "$W/home/.cache"
    HOME=$W/home XDG_CACHE_HOME=$W/home/.cache "$MLREG" "$@"
}
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    echo "bench s3: round $r/$REPS"
    start_mlreg "bench-r$r/"
    touch "$FILE"
    t0=$(now)
    cli push --registry "$MURL" bench/model@r$r --weights "$FILE" >"$W/cli.log" 2>&1 ||
        { cat "$W/cli.log" "$W/mlreg.log" >&2; die "mlreg push failed"; }
    timed push_s
    rm -rf "$W/pulled"
    t0=$(now)
    cli pull --registry "$MURL" bench/model@r$r -o "$W/pulled" >"$W/cli.log" 2>&1 ||
        { cat "$W/cli.log" "$W/mlreg.log" >&2; die "mlreg pull failed"; }
    timed pull_s
    cmp -s "$FILE" "$W/pulled/$BASE" || die "mlreg pull returned different bytes"
    rm -rf "$W/pulled"
    stop_mlreg
    # the same release with blob GETs answered by a redirect to a presigned
    # URL: the CLI's ranges go to RGW, not through the server
    restart_mlreg "bench-r$r/" ',"redirect_downloads":true,"presign_seconds":600'
    t0=$(now)
    cli pull --registry "$MURL" bench/model@r$r -o "$W/pulled" >"$W/cli.log" 2>&1 ||
        { cat "$W/cli.log" "$W/mlreg.log" >&2; die "mlreg pull (redirect_downloads) failed"; }
    timed pull_redirect_s
    cmp -s "$FILE" "$W/pulled/$BASE" || die "mlreg pull (redirect_downloads) returned different bytes"
    rm -rf "$W/pulled"
    stop_mlreg

    start_mlreg "bench-c$r/"
    t0=$(now)
    curl -sf -X POST -H 'Content-Type: application/octet-stream' -T "$FILE" \
        -o /dev/null "$MURL/v2/bench/curl/blobs/uploads?digest=sha256:$HEX" ||
        { cat "$W/mlreg.log" >&2; die "curl POST to mlreg failed"; }
    timed curl_post_s
    stop_mlreg

    t0=$(now)
    $AWS s3 cp --only-show-errors "$FILE" "s3://$S3_BUCKET/aws-r$r/file" || die "aws s3 cp up failed"
    timed aws_up_s
    t0=$(now)
    $AWS s3 cp --only-show-errors "s3://$S3_BUCKET/aws-r$r/file" "$W/out" || die "aws s3 cp down failed"
    timed aws_down_s
    cmp -s "$FILE" "$W/out" || die "aws s3 cp returned different bytes"
    rm -f "$W/out"
    # keep the OSD small: this round's objects go
    $AWS s3 rm --recursive --quiet "s3://$S3_BUCKET/bench-r$r/" >/dev/null 2>&1 || true
    $AWS s3 rm --recursive --quiet "s3://$S3_BUCKET/bench-c$r/" >/dev/null 2>&1 || true
    $AWS s3 rm --recursive --quiet "s3://$S3_BUCKET/aws-r$r/" >/dev/null 2>&1 || true
done

row() { # label file
    m=$(median <"$2")
    printf '%-48s %8.3f s  %6.0f MiB/s\n' "$1" "$m" "$(echo "$SIZE_MIB / $m" | bc -l)"
}
ratio() { printf '%-48s %5.2fx time\n' "$1" "$(echo "$(median <"$2") / $(median <"$3")" | bc -l)"; }
echo
echo "== s3 (Ceph RGW, bluestore, loopback): ${SIZE_MIB} MiB, median of $REPS runs (this machine: $(nproc) cores) =="
row "mlreg push -> mlreg serve -> RGW" "$W/t.push_s"
row "curl POST ?digest= -> mlreg serve -> RGW" "$W/t.curl_post_s"
row "mlreg pull <- mlreg serve <- RGW" "$W/t.pull_s"
row "mlreg pull <- RGW (redirect_downloads)" "$W/t.pull_redirect_s"
row "aws s3 cp file -> RGW" "$W/t.aws_up_s"
row "aws s3 cp RGW -> file" "$W/t.aws_down_s"
ratio "push: mlreg / aws s3 cp" "$W/t.push_s" "$W/t.aws_up_s"
ratio "push: curl -> mlreg serve / aws s3 cp" "$W/t.curl_post_s" "$W/t.aws_up_s"
ratio "pull: mlreg / aws s3 cp" "$W/t.pull_s" "$W/t.aws_down_s"
ratio "pull, redirect_downloads: mlreg / aws s3 cp" "$W/t.pull_redirect_s" "$W/t.aws_down_s"

# ---- row 9 on s3: peak RSS pushing and pulling BENCH_BIG_MIB -------------------
case " ${BENCH_PARTS:-rss} " in *" rss "*) ;; *) exit 0 ;; esac
# the part size the server picks for a blob of known size (storage/s3.c,
# mlreg_s3_part_size): the first part size, or size / 10000 when larger
BIG_BYTES=$((BIG_MIB * 1048576))
PART=$((PART_MIB * 1048576))
NEED=$(((BIG_BYTES + 9999) / 10000))
[ "$NEED" -gt "$PART" ] && PART=$NEED
bench_sample s3.parts_in_flight "$PIF"
bench_sample s3.part_size_kib "$((PART / 1024))"
echo "bench s3: parts in flight $PIF, part size $((PART / 1024)) KiB for a ${BIG_MIB} MiB blob"
b=0
while [ $b -lt "${BENCH_BIG_REPS:-1}" ]; do
    b=$((b + 1))
    s3_config "rss-$b/" >"$W/rss.json"
    BENCH_RSS_CONFIG=$W/rss.json BENCH_RSS_LABEL=s3 BENCH_BIG_REPS=1 BUILD="$BUILD" \
        sh "$ROOT/tests/bench/rss.sh" || die "row 9 on s3 failed"
    $AWS s3 rm --recursive --quiet "s3://$S3_BUCKET/rss-$b/" >/dev/null 2>&1 || true
done
