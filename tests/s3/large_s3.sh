#!/bin/sh
# large_s3.sh (make test-large, part s3large: RGW on bluestore, env from
# tests/run.sh): `mlreg serve` on the s3 backend with
#   - a generated 1 GiB file pushed and pulled back byte-identical, the
#     server's peak RSS (VmHWM) during the push bounded (parts in flight x
#     part size: 4 x 8 MiB by default),
#   - one object over 5 GiB (5.5 GiB, streamed from AES-CTR of zeros with a
#     fixed key) pushed with `mlreg push` and pulled back, compared by
#     SHA-256 (one copy on disk at a time); the AWS CLI lists it with the
#     right size and no multipart upload is left open in the bucket,
#   - redirect mode (redirect_downloads: true): a pull of the 1 GiB release
#     through the presigned URLs verifies.
# Generated files live under $TMP and are removed; the objects are removed
# from the bucket at the end. Prints the time of each step and the total.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

T_START=$(date +%s)
need_s3_env s3large
# the AWS CLI: no config files of the user, no instance-metadata look-ups
AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
export AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_EC2_METADATA_DISABLED AWS_PAGER
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
PREFIX="large-$$-$(date +%s)/"
GIT=0123456789abcdef0123456789abcdef01234567
RSS_LIMIT_KB=131072            # 128 MiB
GIB=1073741824
HUGE=$((GIB * 11 / 2))         # 5.5 GiB: over the 5 GiB single PUT / CopyObject limit

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | awk '{ printf "%.1f", $1 }'; }
mibps() { echo "$1 / 1048576 / $2" | bc -l | awk '{ printf "%.0f", $1 }'; }

# the log key the s3 backend needs (audit.log_key_file)
LOG_KEY=$TMP/log.key
"$MLREG" key generate --no-password --out "$TMP/log" >/dev/null 2>&1 || not_ok "mlreg key generate makes the log key"

write_config() {
    printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s",
  "prefix":"%s","path_style":true%s},
  "audit":{"log_key_file":"%s"}}\n' \
        "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$PREFIX" "${2:-}" "$LOG_KEY" >"$1"
}

# gen FILE BYTES SEED: BYTES pseudo-random bytes (AES-128-CTR of zeros under a
# key derived from SEED), streamed; prints their SHA-256.
gen() {
    k=$(printf '%s' "$3" | sha256sum | cut -c1-32)
    openssl enc -aes-128-ctr -nosalt -K "$k" -iv 00000000000000000000000000000000 \
        </dev/zero 2>/dev/null | head -c "$2" | tee "$1" | sha256sum | cut -d' ' -f1
}

hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# run CMD...: RC, and the command's output in $TMP/out, $TMP/err.
expect_rc0() {
    if [ "$RC" -eq 0 ]; then ok "$1"; else not_ok "$1 (exit $RC: $(tail -n 3 "$TMP/err"))"; fi
}
open_uploads() {
    $AWS s3api list-multipart-uploads --bucket "$S3_BUCKET" \
        --query 'length(Uploads || `[]`)' --output text 2>/dev/null
}
object_size() {
    $AWS s3api head-object --bucket "$S3_BUCKET" --key "$1" --query ContentLength \
        --output text 2>/dev/null
}
listed_size() { # the size `aws s3 ls` shows for KEY
    $AWS s3 ls "s3://$S3_BUCKET/$1" 2>/dev/null | awk -v k="${1##*/}" '$4 == k { print $3 }'
}
cleanup_bucket() { $AWS s3 rm --recursive --quiet "s3://$S3_BUCKET/$PREFIX" >/dev/null 2>&1; }

W=$TMP/work
mkdir -p "$W"
write_config "$TMP/s3.json"
start_server --config "$TMP/s3.json" || { cleanup_bucket; finish; }
echo "# server pid $SERVER_PID at $MLREG_URL, blobs in s3://$S3_BUCKET/$PREFIX"

# ---- 1 GiB: push, pull, peak RSS -------------------------------------------
t0=$(now)
H1=$(gen "$W/big.bin" $GIB one-gib)
echo "# generated 1 GiB in $(secs "$t0" "$(now)") s (sha256 $H1)"
check "generated a 1 GiB file" test "$(stat -c %s "$W/big.bin")" -eq $GIB

S0=$(hwm_kb "$SERVER_PID")
t0=$(now)
run "$MLREG" push team/large@1.0.0 --weights "$W/big.bin" --git-sha $GIT
t1=$(now)
S1=$(hwm_kb "$SERVER_PID")
echo "# push of 1 GiB: $(secs "$t0" "$t1") s ($(mibps $GIB "$(secs "$t0" "$t1")") MiB/s); server VmHWM ${S0} KiB before, ${S1} KiB after"
expect_rc0 "push of 1 GiB to s3 exits 0"
check "server peak RSS (VmHWM) during the 1 GiB push stays below 128 MiB (${S1} KiB)" \
    test "${S1:-0}" -gt 0 -a "${S1:-0}" -lt $RSS_LIMIT_KB

t0=$(now)
run "$MLREG" pull team/large@1.0.0 -o "$TMP/p1"
t1=$(now)
echo "# pull of 1 GiB: $(secs "$t0" "$t1") s ($(mibps $GIB "$(secs "$t0" "$t1")") MiB/s)"
expect_rc0 "pull of 1 GiB from s3 exits 0"
check "the 1 GiB file comes back byte-identical (cmp)" cmp "$W/big.bin" "$TMP/p1/big.bin"
rm -rf "$TMP/p1"
check "the AWS CLI lists the 1 GiB blob at <prefix>blobs/sha256/<hex> with its size" \
    test "$(listed_size "${PREFIX}blobs/sha256/$H1")" = $GIB

# ---- 5.5 GiB: one object over 5 GiB ----------------------------------------
t0=$(now)
H2=$(gen "$W/huge.bin" $HUGE over-five-gib)
echo "# generated 5.5 GiB in $(secs "$t0" "$(now)") s (sha256 $H2)"
check "generated a 5.5 GiB file" test "$(stat -c %s "$W/huge.bin")" -eq $HUGE

t0=$(now)
run "$MLREG" push team/huge@1.0.0 --weights "$W/huge.bin" --git-sha $GIT
t1=$(now)
S2=$(hwm_kb "$SERVER_PID")
echo "# push of 5.5 GiB: $(secs "$t0" "$t1") s ($(mibps $HUGE "$(secs "$t0" "$t1")") MiB/s, incl. the client's hashing and RGW's server-side copy); server VmHWM ${S2} KiB after"
expect_rc0 "push of 5.5 GiB (one object over 5 GiB) exits 0"
check "server peak RSS after the 5.5 GiB push still below 128 MiB (${S2} KiB)" \
    test "${S2:-0}" -gt 0 -a "${S2:-0}" -lt $RSS_LIMIT_KB
rm -f "$W/huge.bin" # one copy on disk at a time: the pull is checked by its SHA-256

check "the AWS CLI lists the 5.5 GiB object with size $HUGE (head-object)" \
    test "$(object_size "${PREFIX}blobs/sha256/$H2")" = $HUGE
check "... and in the listing (aws s3 ls)" \
    test "$(listed_size "${PREFIX}blobs/sha256/$H2")" = $HUGE
check "no multipart upload open in the bucket (list-multipart-uploads)" test "$(open_uploads)" = 0
check "no temp object left under <prefix>uploads/" \
    test "$($AWS s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${PREFIX}uploads/" \
        --query 'length(Contents || `[]`)' --output text 2>/dev/null)" = 0

t0=$(now)
run "$MLREG" pull team/huge@1.0.0 -o "$TMP/p2"
t1=$(now)
echo "# pull of 5.5 GiB: $(secs "$t0" "$t1") s ($(mibps $HUGE "$(secs "$t0" "$t1")") MiB/s)"
expect_rc0 "pull of 5.5 GiB exits 0"
check "the pulled 5.5 GiB file has the generated SHA-256" \
    test "$(sha256_of "$TMP/p2/huge.bin" 2>/dev/null)" = "$H2"
rm -rf "$TMP/p2"
stop_server

# ---- redirect mode: the 1 GiB release through presigned URLs ---------------
write_config "$TMP/redir.json" ',"redirect_downloads":true,"presign_seconds":120'
start_server --config "$TMP/redir.json" || { cleanup_bucket; finish; }
st=$(curl -s -o /dev/null -w '%{http_code}' "$MLREG_URL/v2/team/large/blobs/sha256:$H1")
check "redirect mode: blob GET answers 307 (got $st)" [ "$st" = 307 ]
t0=$(now)
run "$MLREG" pull team/large@1.0.0 -o "$TMP/p3"
t1=$(now)
echo "# pull of 1 GiB in redirect mode: $(secs "$t0" "$t1") s ($(mibps $GIB "$(secs "$t0" "$t1")") MiB/s)"
expect_rc0 "redirect-mode pull of 1 GiB exits 0"
check "redirect-mode pulled 1 GiB file is byte-identical (cmp)" cmp "$W/big.bin" "$TMP/p3/big.bin"
rm -rf "$TMP/p3" "$W/big.bin"
stop_server

check "still no multipart upload open in the bucket" test "$(open_uploads)" = 0
cleanup_bucket
echo "# large_s3.sh took $(($(date +%s) - T_START)) s"
finish
