#!/bin/sh
# make bench, s3 part: push and pull of one generated file through
# `mlreg serve` on the s3 backend, against `aws s3 cp` of the same file to
# and from the same bucket, in one run, on a fresh throw-away Ceph RGW
# (tests/s3/rgw.sh, bluestore on a sparse file; started and stopped here).
#   - mlreg push (CLI: hash the file, upload; server: multipart upload of
#     8 MiB parts, 4 in flight, to a temp key, then a server-side copy to
#     <prefix>blobs/sha256/<hex>), on a fresh server and prefix each round so
#     nothing is deduplicated;
#   - curl POST .../blobs/uploads?digest= with the body -> mlreg serve (the same monolithic
#     upload mlreg push makes, without the CLI's hashing of the file first);
#   - mlreg pull (CLI: download through the server, verify, fsync);
#   - aws s3 cp up and down (the Debian AWS CLI, its defaults: 8 MiB parts,
#     10 concurrent requests; no fsync).
# Each runs BENCH_REPS times; prints medians, MiB/s, the ratio mlreg/aws
# (time), and the server's peak RSS (VmHWM) during the push.
# Environment: BENCH_SIZE_MIB (default 1024), BENCH_REPS (default 3), BUILD.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) MLREG=$BUILD/mlreg ;; *) MLREG=$ROOT/$BUILD/mlreg ;; esac
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
REPS=${BENCH_REPS:-3}
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

echo "bench s3: generating ${SIZE_MIB} MiB test file"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$W/file"
sync

# start_mlreg PREFIX: a fresh server (data dir and key prefix) on the bucket.
start_mlreg() {
    rm -rf "$W/mdata" "$W/ready"
    [ -f "$W/log.key" ] || "$MLREG" key generate --no-password --out "$W/log" >/dev/null 2>&1
    printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s","prefix":"%s"},"audit":{"log_key_file":"%s"}}\n' \
        "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$1" "$W/log.key" >"$W/s3.json"
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

: >"$W/t.mpush"; : >"$W/t.mpull"; : >"$W/t.cpush"; : >"$W/t.apush"; : >"$W/t.apull"; : >"$W/rss"
HEX=$(sha256sum "$W/file" | cut -d' ' -f1)
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    echo "bench s3: round $r/$REPS"
    start_mlreg "bench-r$r/"
    t0=$(now)
    "$MLREG" push --registry "$MURL" bench/model@r$r --weights "$W/file" >"$W/cli.log" 2>&1 ||
        { cat "$W/cli.log" "$W/mlreg.log" >&2; die "mlreg push failed"; }
    t1=$(now)
    elapsed "$t0" "$t1" >>"$W/t.mpush"
    awk '/^VmHWM:/ { print $2 }' "/proc/$MPID/status" >>"$W/rss"
    rm -rf "$W/pulled"
    t0=$(now)
    "$MLREG" pull --registry "$MURL" bench/model@r$r -o "$W/pulled" >"$W/cli.log" 2>&1 ||
        { cat "$W/cli.log" "$W/mlreg.log" >&2; die "mlreg pull failed"; }
    t1=$(now)
    elapsed "$t0" "$t1" >>"$W/t.mpull"
    cmp -s "$W/file" "$W/pulled/file" || die "mlreg pull returned different bytes"
    rm -rf "$W/pulled"
    stop_mlreg

    start_mlreg "bench-c$r/"
    t0=$(now)
    curl -sf -X POST -H 'Content-Type: application/octet-stream' -T "$W/file" \
        -o /dev/null "$MURL/v2/bench/curl/blobs/uploads?digest=sha256:$HEX" ||
        { cat "$W/mlreg.log" >&2; die "curl POST to mlreg failed"; }
    t1=$(now)
    elapsed "$t0" "$t1" >>"$W/t.cpush"
    stop_mlreg

    t0=$(now)
    $AWS s3 cp --only-show-errors "$W/file" "s3://$S3_BUCKET/aws-r$r/file" || die "aws s3 cp up failed"
    t1=$(now)
    elapsed "$t0" "$t1" >>"$W/t.apush"
    t0=$(now)
    $AWS s3 cp --only-show-errors "s3://$S3_BUCKET/aws-r$r/file" "$W/out" || die "aws s3 cp down failed"
    t1=$(now)
    elapsed "$t0" "$t1" >>"$W/t.apull"
    cmp -s "$W/file" "$W/out" || die "aws s3 cp returned different bytes"
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
row "mlreg push -> mlreg serve -> RGW" "$W/t.mpush"
row "curl POST ?digest= -> mlreg serve -> RGW" "$W/t.cpush"
row "mlreg pull <- mlreg serve <- RGW" "$W/t.mpull"
row "aws s3 cp file -> RGW" "$W/t.apush"
row "aws s3 cp RGW -> file" "$W/t.apull"
ratio "push: mlreg / aws s3 cp" "$W/t.mpush" "$W/t.apush"
ratio "push: curl -> mlreg serve / aws s3 cp" "$W/t.cpush" "$W/t.apush"
ratio "pull: mlreg / aws s3 cp" "$W/t.mpull" "$W/t.apull"
printf 'mlreg serve (s3) peak RSS during push (VmHWM), median: %s KiB\n' "$(median <"$W/rss" | cut -d. -f1)"
