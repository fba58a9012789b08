#!/bin/sh
# test_s3_scrub.sh: scrub and repair on the s3 backend, against the RGW of
# the s3 part (env from tests/run.sh). A blob object is overwritten through
# the AWS CLI with one byte changed: pull refuses it naming `mlreg scrub`;
# the scrub finds it, names its release and moves it (server-side copy,
# then delete) to <prefix>quarantine/<hex>.<unix time>; pushing the files
# again uploads it and pull works; a second scrub is clean. A damaged copy
# no scrub found is replaced by `push --reupload` (the backend's commit
# overwrites an existing object).
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_s3_env s3
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
PREFIX="scrub-$$-$(date +%s)/"
W=$TMP/work
mkdir -p "$W"

"$MLREG" key generate --no-password --out "$TMP/log" >/dev/null 2>&1 ||
    not_ok "mlreg key generate makes the log key"
printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s",
  "prefix":"%s","path_style":true,"retry_base_ms":20,"retry_max_ms":200},
  "audit":{"log_key_file":"%s"}}\n' \
    "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$PREFIX" "$TMP/log.key" >"$W/s3.json"
start_server --config "$W/s3.json" || finish

err_has() {
    if grep -q -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
# damage KEY OFFSET: the object KEY downloaded, one byte changed, uploaded again
damage() {
    $AWS s3 cp "s3://$S3_BUCKET/$1" "$W/obj" >/dev/null 2>&1 || return 1
    b=$(od -An -tu1 -j "$2" -N1 "$W/obj" | tr -d ' ')
    printf "\\$(printf '%03o' $(((b + 1) % 256)))" |
        dd of="$W/obj" bs=1 seek="$2" conv=notrunc 2>/dev/null
    $AWS s3 cp "$W/obj" "s3://$S3_BUCKET/$1" >/dev/null 2>&1
}
exists() { $AWS s3api head-object --bucket "$S3_BUCKET" --key "$1" >/dev/null 2>&1; }

head -c 3000000 /dev/urandom >"$W/weights.bin"
printf '{"metrics":{"accuracy":0.9}}\n' >"$W/eval.json"
WD=$(sha256_of "$W/weights.bin")
KEY=${PREFIX}blobs/sha256/$WD
push() { run "$MLREG" push team/s3@1.0 --weights "$W/weights.bin" --eval-report "$W/eval.json" \
    --git-sha 0123456789abcdef "$@"; }
pull() { rm -rf "$W/out"; run "$MLREG" pull team/s3@1.0 -o "$W/out"; }

push
expect_rc "push to the s3 backend exits 0" 0
check "the weights are an object under blobs/sha256/" exists "$KEY"
check "the AWS CLI changes one byte of the object" damage "$KEY" 123456
pull
expect_rc "pull of the damaged file exits 1" 1
err_has "... naming the scrub" "mlreg scrub --model team/s3"

run "$MLREG" scrub
expect_rc "mlreg scrub exits 1" 1
check "it names the blob" grep -q "corrupt   sha256:$WD" "$TMP/out"
check "... and the release" grep -q "used by team/s3@1.0" "$TMP/out"
check "the blob object is gone" sh -c "! $AWS s3api head-object --bucket '$S3_BUCKET' --key '$KEY' >/dev/null 2>&1"
QKEY=$($AWS s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${PREFIX}quarantine/$WD." \
    --query 'Contents[0].Key' --output text 2>/dev/null)
check "a copy is under quarantine/<hex>.<unix time> ($QKEY)" \
    sh -c "echo '$QKEY' | grep -Eq '^${PREFIX}quarantine/$WD\\.[0-9]{10}\$'"
$AWS s3 cp "s3://$S3_BUCKET/$QKEY" "$W/quarantined" >/dev/null 2>&1
check "... holding the damaged bytes" cmp -s "$W/obj" "$W/quarantined"
check "HEAD of the blob answers 404" \
    test "$(curl -s -o /dev/null -w '%{http_code}' -I "$MLREG_URL/v2/team/s3/blobs/sha256:$WD")" = 404

push
expect_rc "pushing the same files again exits 0" 0
err_has "... uploading the quarantined file" "weights.bin.*uploaded"
pull
expect_rc "pull works again" 0
check "the pulled file is the original" cmp -s "$W/weights.bin" "$W/out/weights.bin"
run "$MLREG" scrub --model team/s3
expect_rc "a second scrub exits 0" 0

check "the AWS CLI damages the object again" damage "$KEY" 17
push --reupload
expect_rc "push --reupload exits 0" 0
err_has "... uploading the file the registry says it has" "weights.bin.*uploaded"
pull
expect_rc "pull works after --reupload: the s3 commit replaced the damaged object" 0
run "$MLREG" scrub
expect_rc "and the store is clean" 0

finish
