#!/bin/sh
# test_s3_hf.sh: the Hugging Face-compatible downloads (docs/huggingface.md)
# on the s3 backend with redirect_downloads: GET .../resolve/... answers 307
# to the presigned object URL with X-Linked-Etag, X-Linked-Size and
# X-Repo-Commit, as the Hub answers for its LFS files, and the Hub client
# (@huggingface/hub) follows it: every file of a release with nested titles
# downloaded and hashed, a Range read through the redirect. HEAD is answered
# by the server itself.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_s3_env s3
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
PREFIX="hf-$$-$(date +%s)/"
HFDIR=$MLREG_ROOT/tests/hf
W=$TMP/work
mkdir -p "$W"
LOG_KEY=$TMP/log.key
"$MLREG" key generate --no-password --out "$TMP/log" >/dev/null 2>&1 || not_ok "mlreg key generate makes the log key"
for who in ci reader; do echo "hf_$(tok)" >"$W/$who.tok"; done
printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s",
  "prefix":"%s","path_style":true,"retry_base_ms":20,"retry_max_ms":200,
  "redirect_downloads":true,"presign_seconds":60},
  "audit":{"log_key_file":"%s"},
  "tokens":[{"name":"ci","sha256":"%s","roles":["read","push"]},
            {"name":"reader","sha256":"%s","roles":["read"]}]}\n' \
    "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$PREFIX" "$LOG_KEY" \
    "$(hash "$(cat "$W/ci.tok")")" "$(hash "$(cat "$W/reader.tok")")" >"$W/config.json"
start_server --config "$W/config.json" || finish
AUTH="Authorization: Bearer $(cat "$W/reader.tok")"
CI="Authorization: Bearer $(cat "$W/ci.tok")"
MODEL=demo/llm
. "$HFDIR/seed.sh"
hf_seed_three || { not_ok "seeding three releases with nested titles"; finish; }
ok "seeded demo/llm@1.0, 2.0, 3.0 on the s3 backend"

F=onnx/fp16/model.onnx
SHA=$(sha256_of "$W/r1/$F")
expect_status "GET of a file answers 307" 307 GET "/$MODEL/resolve/1.0/$F" -H "$AUTH"
loc=$(header Location)
check "... to a presigned URL of the object" \
    sh -c "echo '$loc' | grep -q '^$S3_ENDPOINT/$S3_BUCKET/${PREFIX}blobs/sha256/$SHA?.*X-Amz-Expires=60&'"
check "... X-Linked-Etag is the file's sha256, quoted" [ "$(header X-Linked-Etag)" = "\"$SHA\"" ]
check "... X-Linked-Size is its size" [ "$(header X-Linked-Size)" = 3145739 ]
check "... X-Repo-Commit is the release digest" [ "$(header X-Repo-Commit)" = "$D1" ]
check "... the presigned URL gives the bytes" sh -c "curl -sf '$loc' | cmp -s - '$W/r1/$F'"
expect_status "a HEAD is answered by the server: 200" 200 HEAD "/$MODEL/resolve/1.0/$F" -H "$AUTH"
check "... with the size and ETag" \
    [ "$(header Content-Length)" = 3145739 ] && [ "$(header ETag)" = "\"$SHA\"" ]
expect_status "no token: 401, no redirect" 401 GET "/$MODEL/resolve/1.0/$F"

hf_client_ready || finish
export HF_REDIRECTED=1
hub reader release 1.0 "$W/1.0.json"
hub reader release 2.0 "$W/2.0.json"

stop_server
$AWS s3 rm --recursive "s3://$S3_BUCKET/$PREFIX" >/dev/null 2>&1
finish
