#!/bin/sh
# large_rgw_harness.sh: proves that tests/s3/rgw.sh brings up a real S3 that
# checks SigV4: object round trip, AWS CLI multipart upload, a wrong secret
# refused with 403 SignatureDoesNotMatch, ListMultipartUploads, data kept
# across kill-rgw/restart-rgw, and nothing left running after stop.
# Runs its own throw-away cluster (it kills radosgw), not the runner's.
# Never matches the AWS CLI's error text (radosgw sends an empty <Message>,
# which makes the CLI crash while printing errors): exit codes and raw
# responses only.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

RGW_SH=$MLREG_ROOT/tests/s3/rgw.sh
AWS=/usr/bin/aws
RD=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-rgw.XXXXXX")
trap 'sh "$RGW_SH" stop "$RD" >/dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM HUP

if ! sh "$RGW_SH" start "$RD" 2>"$TMP/start.log"; then
    cat "$TMP/start.log"
    not_ok "rgw.sh start brings up mon, osd and radosgw"
    finish
fi
ok "rgw.sh start: $(tail -n 1 "$TMP/start.log" | sed 's/^rgw.sh: //')"

# ---- DIR/env ----------------------------------------------------------------
keys=$(sed 's/=.*//' "$RD/env" | tr '\n' ' ')
check "env has exactly S3_ENDPOINT S3_REGION S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY RGW_PID" \
    test "$keys" = "S3_ENDPOINT S3_REGION S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY RGW_PID "
set -a
. "$RD/env"
set +a
AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
AWS_DEFAULT_REGION=$S3_REGION
export AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_EC2_METADATA_DISABLED AWS_DEFAULT_REGION
case $S3_ENDPOINT in
http://127.0.0.1:[0-9]*) ok "endpoint on loopback ($S3_ENDPOINT)" ;;
*) not_ok "endpoint on loopback (got $S3_ENDPOINT)" ;;
esac
check "RGW_PID is a running radosgw" sh -c "tr '\\0' ' ' </proc/$RGW_PID/cmdline | grep -q '^radosgw '"
# every listening socket of the cluster's daemons is on 127.0.0.1
pids=$(cat "$RD"/pids/* | tr '\n' '|' | sed 's/|$//')
nonlo=$(ss -Htlnp 2>/dev/null | grep -E "pid=($pids)," | awk '{print $4}' | grep -v '^127\.0\.0\.1:')
check "every daemon listens on 127.0.0.1 only" test -z "$nonlo"

s3() { "$AWS" --endpoint-url "$S3_ENDPOINT" "$@"; }

# ---- PutObject / GetObject round trip ---------------------------------------
head -c 3145728 /dev/urandom >"$TMP/obj.bin"
check "put-object" sh -c "$AWS --endpoint-url $S3_ENDPOINT s3api put-object --bucket $S3_BUCKET \
    --key harness/obj.bin --body $TMP/obj.bin >$TMP/put.json"
check "get-object" sh -c "$AWS --endpoint-url $S3_ENDPOINT s3api get-object --bucket $S3_BUCKET \
    --key harness/obj.bin $TMP/obj.out >/dev/null"
check "get-object is byte-identical" cmp -s "$TMP/obj.bin" "$TMP/obj.out"
s3 s3api head-object --bucket "$S3_BUCKET" --key harness/missing >/dev/null 2>&1
rc=$?
check "head-object of a missing key fails (exit $rc)" test "$rc" -ne 0

# ---- multipart upload through aws s3 cp (threshold 8 MiB) -------------------
head -c 20971520 /dev/urandom >"$TMP/big.bin"
check "aws s3 cp of 20 MiB" sh -c "$AWS --endpoint-url $S3_ENDPOINT s3 cp --only-show-errors \
    $TMP/big.bin s3://$S3_BUCKET/harness/big.bin"
etag=$(s3 s3api head-object --bucket "$S3_BUCKET" --key harness/big.bin --query ETag --output text 2>/dev/null)
case $etag in
*-[0-9]*) ok "20 MiB object was a multipart upload (ETag $etag)" ;;
*) not_ok "20 MiB object was a multipart upload (ETag '$etag' has no -N part count)" ;;
esac
check "aws s3 cp back" sh -c "$AWS --endpoint-url $S3_ENDPOINT s3 cp --only-show-errors \
    s3://$S3_BUCKET/harness/big.bin $TMP/big.out"
check "multipart object is byte-identical" cmp -s "$TMP/big.bin" "$TMP/big.out"

# ---- SigV4 is checked: a wrong secret key is refused -----------------------
# curl 7.88 signs a GET correctly when x-amz-content-sha256 is set; the same
# request with the right key is the control.
sig() {
    curl -s -o "$TMP/sig.body" -w '%{http_code}' --aws-sigv4 "aws:amz:$S3_REGION:s3" \
        -u "$AWS_ACCESS_KEY_ID:$1" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "$S3_ENDPOINT/$S3_BUCKET/harness/obj.bin"
}
code=$(sig "$AWS_SECRET_ACCESS_KEY")
if [ "$code" = 200 ] && cmp -s "$TMP/sig.body" "$TMP/obj.bin"; then
    ok "signed GET with the right secret: 200"
else
    not_ok "signed GET with the right secret: 200 (got $code: $(head -c 300 "$TMP/sig.body"))"
fi
code=$(sig "x$AWS_SECRET_ACCESS_KEY")
if [ "$code" = 403 ] && grep -q '<Code>SignatureDoesNotMatch</Code>' "$TMP/sig.body"; then
    ok "wrong secret: 403 SignatureDoesNotMatch"
else
    not_ok "wrong secret: 403 SignatureDoesNotMatch (got $code: $(head -c 300 "$TMP/sig.body"))"
fi
code=$(curl -s -o "$TMP/sig.body" -w '%{http_code}' "$S3_ENDPOINT/$S3_BUCKET/harness/obj.bin")
check "unsigned GET: 403 (got $code)" test "$code" = 403
AWS_SECRET_ACCESS_KEY=wrong-secret "$AWS" --endpoint-url "$S3_ENDPOINT" s3api put-object \
    --bucket "$S3_BUCKET" --key harness/forged --body "$TMP/obj.bin" >/dev/null 2>&1
rc=$?
check "aws put-object with a wrong secret fails (exit $rc)" test "$rc" -ne 0
check "and wrote nothing" sh -c "! $AWS --endpoint-url $S3_ENDPOINT s3api head-object \
    --bucket $S3_BUCKET --key harness/forged >/dev/null 2>&1"

# ---- ListMultipartUploads ---------------------------------------------------
uid=$(s3 s3api create-multipart-upload --bucket "$S3_BUCKET" --key harness/open.bin \
    --query UploadId --output text 2>"$TMP/err")
check "create-multipart-upload" test -n "$uid"
listed=$(s3 s3api list-multipart-uploads --bucket "$S3_BUCKET" \
    --query 'Uploads[].UploadId' --output text 2>"$TMP/err")
check "list-multipart-uploads shows the open upload" sh -c "echo '$listed' | grep -qF -- '$uid'"
check "abort-multipart-upload" s3 s3api abort-multipart-upload --bucket "$S3_BUCKET" \
    --key harness/open.bin --upload-id "$uid"
listed=$(s3 s3api list-multipart-uploads --bucket "$S3_BUCKET" \
    --query 'Uploads[].UploadId' --output text 2>"$TMP/err")
rc=$?
check "list-multipart-uploads: none open after abort" test "$rc" -eq 0 -a \( "$listed" = None -o -z "$listed" \)

# ---- kill-rgw / restart-rgw keeps the data ----------------------------------
old_pid=$RGW_PID
check "kill-rgw" sh "$RGW_SH" kill-rgw "$RD"
check "radosgw pid $old_pid is gone" sh -c "! tr '\\0' ' ' </proc/$old_pid/cmdline 2>/dev/null | grep -q radosgw"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$S3_ENDPOINT/")
check "endpoint refuses connections while down (got $code)" test "$code" = 000
check "restart-rgw" sh -c "sh '$RGW_SH' restart-rgw '$RD' 2>>'$TMP/start.log'"
tail -n 1 "$TMP/start.log" | sed 's/^rgw.sh: /# /'
new_ep=$(sed -n 's/^S3_ENDPOINT=//p' "$RD/env")
new_pid=$(sed -n 's/^RGW_PID=//p' "$RD/env")
check "same endpoint after restart" test "$new_ep" = "$S3_ENDPOINT"
check "env RGW_PID updated ($old_pid -> $new_pid)" test "$new_pid" != "$old_pid"
rm -f "$TMP/obj.out" "$TMP/big.out"
check "object readable after restart" sh -c "$AWS --endpoint-url $S3_ENDPOINT s3api get-object \
    --bucket $S3_BUCKET --key harness/obj.bin $TMP/obj.out >/dev/null"
check "object byte-identical after restart" cmp -s "$TMP/obj.bin" "$TMP/obj.out"
check "multipart object byte-identical after restart" sh -c "$AWS --endpoint-url $S3_ENDPOINT s3 cp \
    --only-show-errors s3://$S3_BUCKET/harness/big.bin $TMP/big.out && cmp -s $TMP/big.bin $TMP/big.out"

# ---- stop leaves nothing behind ---------------------------------------------
all_pids=$(cat "$RD"/pids/* 2>/dev/null | tr '\n' ' ')
check "rgw.sh stop" sh -c "sh '$RGW_SH' stop '$RD' 2>>'$TMP/start.log'"
tail -n 1 "$TMP/start.log" | sed 's/^rgw.sh: /# /'
left=""
for p in $all_pids; do
    [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF "$RD/" && left="$left $p"
done
check "no daemon left running (pids: $all_pids)" test -z "$left"
check "DIR removed" test ! -e "$RD"
finish
