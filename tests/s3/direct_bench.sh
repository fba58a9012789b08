#!/bin/sh
# direct_bench.sh: a small harness for the s3 row (6) of docs/performance.md (not part of any
# test run; `make bench` is tests/bench/). Times, against the RGW whose env
# is loaded (`RGW_STORE=bluestore sh tests/s3/rgw.sh start DIR`, then
# `set -a; . DIR/env; set +a`):
#   push: curl POST ?digest= of FILE (streamed, -T) to `mlreg serve` (s3)
#         vs `aws s3 cp FILE s3://bucket/...`
#   pull: curl GET of the blob to /dev/null vs `aws s3 cp s3://... -`
# REPS runs each (median printed), and the server's peak RSS (VmHWM).
#
#   sh tests/s3/direct_bench.sh MLREG_BIN [SIZE_MIB=256] [REPS=3] [PARTS_IN_FLIGHT=4] [PART_MIB=8]
set -u
BIN=$1
SIZE=${2:-256}
REPS=${3:-3}
PIF=${4:-4}
PART=${5:-8}
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
T=$(mktemp -d /tmp/direct-bench.XXXXXX)
PREFIX="bench-$$-$(date +%s)/"
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; $AWS s3 rm --recursive --quiet "s3://$S3_BUCKET/$PREFIX" >/dev/null 2>&1; rm -rf "$T"' EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

head -c $((SIZE << 20)) /dev/urandom >"$T/file"
D=sha256:$(sha256sum "$T/file" | cut -c1-64)
"$BIN" key generate --no-password --out "$T/log" >/dev/null 2>&1
EXTRA=""
[ "$PART" != 8 ] && EXTRA=",\"part_size_mib\":$PART"
printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s","prefix":"%s",
  "path_style":true,"parts_in_flight":%s%s},"audit":{"log_key_file":"%s"}}\n' \
    "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$PREFIX" "$PIF" "$EXTRA" "$T/log.key" >"$T/c.json"
"$BIN" serve --config "$T/c.json" --listen 127.0.0.1:0 --data "$T/data" --ready-file "$T/ready" 2>"$T/serve.log" &
PID=$!
i=0
while [ ! -s "$T/ready" ]; do
    i=$((i + 1)); [ $i -gt 600 ] && { echo "serve did not start"; cat "$T/serve.log"; exit 1; }
    sleep 0.05
done
URL=$(cat "$T/ready")
for r in $(seq "$REPS"); do
    $AWS s3api delete-object --bucket "$S3_BUCKET" --key "${PREFIX}blobs/sha256/${D#sha256:}" >/dev/null 2>&1
    t0=$(now)
    st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -T "$T/file" \
        -H 'Content-Type: application/octet-stream' "$URL/v2/b/m/blobs/uploads?digest=$D")
    t1=$(now)
    [ "$st" = 201 ] || echo "push answered $st" >&2
    echo "$t1 - $t0" | bc >>"$T/push"
    t0=$(now)
    $AWS s3 cp --quiet "$T/file" "s3://$S3_BUCKET/${PREFIX}aws$r" || echo "aws s3 cp failed" >&2
    t1=$(now)
    echo "$t1 - $t0" | bc >>"$T/awsput"
    t0=$(now)
    st=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/b/m/blobs/$D")
    t1=$(now)
    [ "$st" = 200 ] || echo "pull answered $st" >&2
    echo "$t1 - $t0" | bc >>"$T/pull"
    t0=$(now)
    $AWS s3 cp --quiet "s3://$S3_BUCKET/${PREFIX}aws$r" - >/dev/null || echo "aws s3 cp (get) failed" >&2
    t1=$(now)
    echo "$t1 - $t0" | bc >>"$T/awsget"
done
HWM=$(awk '/VmHWM/ { print $2 }' /proc/$PID/status)
P=$(median <"$T/push"); A=$(median <"$T/awsput"); G=$(median <"$T/pull"); AG=$(median <"$T/awsget")
printf 'size %s MiB, %s reps, parts_in_flight %s, part %s MiB: push %.2f s (all: %s) vs aws s3 cp %.2f s (all: %s) = %.2fx; pull %.2f s (all: %s) vs aws %.2f s (all: %s) = %.2fx; server VmHWM %s kB\n' \
    "$SIZE" "$REPS" "$PIF" "$PART" "$P" "$(tr '\n' ' ' <"$T/push")" "$A" "$(tr '\n' ' ' <"$T/awsput")" \
    "$(echo "$P / $A" | bc -l)" "$G" "$(tr '\n' ' ' <"$T/pull")" "$AG" "$(tr '\n' ' ' <"$T/awsget")" \
    "$(echo "$G / $AG" | bc -l)" "$HWM"
