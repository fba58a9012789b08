#!/bin/sh
# test_s3_serve.sh: `mlreg serve` with storage.backend "s3" against the RGW
# of the s3 part (env from tests/run.sh): push/pull of 0 B, 1 B, 5 MiB and
# 100 MiB (multipart) files, dedup, the objects' layout seen by the AWS CLI,
# redirect mode, a wrong secret key stopping the start, and no multipart
# upload left open.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_s3_env s3
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
PREFIX="serve-$$-$(date +%s)/"

# the log key the s3 backend needs (audit.log_key_file)
LOG_KEY=$TMP/log.key
"$MLREG" key generate --no-password --out "$TMP/log" >/dev/null 2>&1 || not_ok "mlreg key generate makes the log key"

# write_config FILE [extra json members]: an s3 config for this test's prefix.
write_config() {
    printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s",
  "prefix":"%s","path_style":true,"retry_base_ms":20,"retry_max_ms":200%s},
  "audit":{"log_key_file":"%s"}}\n' \
        "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$PREFIX" "${2:-}" "$LOG_KEY" >"$1"
}

open_uploads() {
    $AWS s3api list-multipart-uploads --bucket "$S3_BUCKET" --prefix "$PREFIX" \
        --query 'length(Uploads || `[]`)' --output text 2>/dev/null
}

# ---- a wrong secret key: the start fails fast, naming status and code -------
write_config "$TMP/bad.json" ',"access_key":"'"$AWS_ACCESS_KEY_ID"'","secret_key":"wrong-secret-key-0000000000000000000000"'
start=$(date +%s)
"$MLREG" serve --config "$TMP/bad.json" --listen 127.0.0.1:0 --data "$TMP/bad-data" \
    >"$TMP/bad.out" 2>"$TMP/bad.err" &
BAD=$!
i=0
while kill -0 $BAD 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
if kill -0 $BAD 2>/dev/null; then
    kill -KILL $BAD
    not_ok "serve with a wrong secret key exits within 10 s"
else
    wait $BAD
    rc=$?
    check "serve with a wrong secret key exits non-zero (got $rc)" [ "$rc" -ne 0 ]
    check "... within a few seconds" [ $(($(date +%s) - start)) -le 5 ]
    check "... naming 403 SignatureDoesNotMatch" grep -q "403 SignatureDoesNotMatch" "$TMP/bad.err"
    check "... and never the secret" sh -c "! grep -q wrong-secret-key '$TMP/bad.err'"
fi
check "... and writes no object" \
    test "$($AWS s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "$PREFIX" \
        --query 'length(Contents || `[]`)' --output text)" = 0

# ---- push and pull through the s3 backend -----------------------------------
write_config "$TMP/s3.json"
start_server --config "$TMP/s3.json" || finish
W=$TMP/work
mkdir -p "$W"
: >"$W/empty.cfg"
head -c 1 /dev/urandom >"$W/one.bin"
head -c 5242880 /dev/urandom >"$W/five.bin"
head -c 104857600 /dev/urandom >"$W/model.bin"
GIT=0123456789abcdef0123456789abcdef01234567

run "$MLREG" push team/s3@1.0.0 --weights "$W/model.bin" --config "$W/five.bin" \
    --seeds "$W/one.bin" --git-sha $GIT
expect_rc "push of 100 MiB + 5 MiB + 1 B files to s3 exits 0" 0
run "$MLREG" push team/s3@0.0.1 --weights "$W/empty.cfg" --git-sha $GIT
expect_rc "push of a 0 B file to s3 exits 0" 0
run "$MLREG" pull team/s3@1.0.0 -o "$TMP/p1"
expect_rc "pull exits 0" 0
for f in model.bin one.bin five.bin; do
    check "pulled $f is byte-identical" cmp -s "$W/$f" "$TMP/p1/$f"
done
run "$MLREG" pull team/s3@0.0.1 -o "$TMP/p0"
expect_rc "pull of the 0 B release exits 0" 0
check "pulled 0 B file is there and empty" sh -c "[ -f '$TMP/p0/empty.cfg' ] && [ ! -s '$TMP/p0/empty.cfg' ]"
H=$(sha256_of "$W/model.bin")
check "the 100 MiB blob is an object at <prefix>blobs/sha256/<hex>" \
    sh -c "$AWS s3api head-object --bucket '$S3_BUCKET' --key '${PREFIX}blobs/sha256/$H' >/dev/null"
$AWS s3 cp "s3://$S3_BUCKET/${PREFIX}blobs/sha256/$H" "$TMP/viacli" >/dev/null 2>&1
check "... which the AWS CLI downloads byte-identical" cmp -s "$W/model.bin" "$TMP/viacli"
check "no multipart upload left open" test "$(open_uploads)" = 0

# ---- dedup: a second push of the same files sends no blob bytes -------------
MARK=$(wc -l <"$TMP/server.log")
run "$MLREG" push team/s3@1.0.1 --weights "$W/model.bin" --config "$W/five.bin" --git-sha $GIT
expect_rc "second push of the same weights exits 0" 0
check "... and starts no blob upload" \
    sh -c "! tail -n +$((MARK + 1)) '$TMP/server.log' | grep -q '/v2/team/s3/blobs/uploads'"
check "... (the first push did)" grep -q 'POST /v2/team/s3/blobs/uploads' "$TMP/server.log"

# ---- a promotion on the s3 backend: its attestation envelope is an object ----
run "$MLREG" promote team/s3@1.0.0 --to dev
expect_rc "promotion to dev on the s3 backend exits 0" 0
REL=$(curl -sf "$MLREG_URL/api/v1/models/team/s3/versions/1.0.0" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
REF=$(curl -sf "$MLREG_URL/v2/team/s3/referrers/$REL?artifactType=application/vnd.in-toto%2Bjson" |
    python3 -c 'import json,sys; m=json.load(sys.stdin)["manifests"]; print(m[0]["digest"] if len(m)==1 else "")')
check "the release has one attestation referrer ($REF)" [ -n "$REF" ]
ENV=$(curl -sf "$MLREG_URL/v2/team/s3/manifests/$REF" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"].split(":")[1])')
check "... whose envelope blob is an object at <prefix>blobs/sha256/<hex>" \
    sh -c "$AWS s3api head-object --bucket '$S3_BUCKET' --key '${PREFIX}blobs/sha256/$ENV' >/dev/null"
run "$MLREG" audit verify --log-key "$TMP/log.pub"
expect_rc "audit verify of the s3-backed registry's log exits 0" 0
stop_server

# ---- redirect mode: blob GETs answer 307 to a presigned URL -----------------
write_config "$TMP/redir.json" ',"redirect_downloads":true,"presign_seconds":60'
DATA=$TMP/data start_server --config "$TMP/redir.json" || finish
st=$(curl -s -o /dev/null -w '%{http_code}' "$MLREG_URL/v2/team/s3/blobs/sha256:$H")
check "blob GET answers 307 (got $st)" [ "$st" = 307 ]
loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$MLREG_URL/v2/team/s3/blobs/sha256:$H")
check "... to a presigned URL of the object" \
    sh -c "echo '$loc' | grep -q '^$S3_ENDPOINT/$S3_BUCKET/${PREFIX}blobs/sha256/$H?.*X-Amz-Expires=60&'"
check "... which plain curl fetches byte-identical" \
    sh -c "curl -sf '$loc' | cmp -s - '$W/model.bin'"
st=$(curl -s -o /dev/null -w '%{http_code}' "$MLREG_URL/v2/other/repo/blobs/sha256:$H")
check "a blob not in the repository is still 404, not a redirect (got $st)" [ "$st" = 404 ]
run "$MLREG" pull team/s3@1.0.0 -o "$TMP/p2"
expect_rc "pull in redirect mode exits 0" 0
for f in model.bin five.bin one.bin; do
    check "redirect-mode pulled $f is byte-identical" cmp -s "$W/$f" "$TMP/p2/$f"
done
stop_server

$AWS s3 rm --recursive "s3://$S3_BUCKET/$PREFIX" >/dev/null 2>&1
finish
