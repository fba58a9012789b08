#!/bin/sh
# test_s3_hf.sh: the Hugging Face-compatible downloads (docs/huggingface.md)
# on the s3 backend with redirect_downloads: GET .../resolve/... answers 307
# to the presigned object URL with X-Linked-Etag, X-Linked-Size and
# X-Repo-Commit, as the Hub answers for its LFS files, and the Hub client
# (@huggingface/hub) follows it: every file of a release with nested titles
# downloaded and hashed, a Range read through the redirect. HEAD and a
# small range (the clients' probe of a file, "bytes=0-0") are answered by
# the server itself, so fileDownloadInfo reads the sha256 as ETag; a runtime
# token as hf_mlreg_... drives the client.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_s3_env s3
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
PREFIX="hf-$$-$(date +%s)/"
HFDIR=$MLREG_ROOT/tests/hf
W=$TMP/work
mkdir -p "$W"
LOG_KEY=$TMP/log.key
"$MLREG" key generate --no-password --out "$TMP/log" >/dev/null 2>&1 || not_ok "mlreg key generate makes the log key"
for who in ci reader admin; do echo "hf_$(tok)" >"$W/$who.tok"; done
printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s",
  "prefix":"%s","path_style":true,"retry_base_ms":20,"retry_max_ms":200,
  "redirect_downloads":true,"presign_seconds":60},
  "audit":{"log_key_file":"%s"},
  "tokens":[{"name":"ci","sha256":"%s","roles":["read","push"]},
            {"name":"reader","sha256":"%s","roles":["read"]},
            {"name":"admin","sha256":"%s","roles":["admin"]}]}\n' \
    "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$PREFIX" "$LOG_KEY" \
    "$(hash "$(cat "$W/ci.tok")")" "$(hash "$(cat "$W/reader.tok")")" \
    "$(hash "$(cat "$W/admin.tok")")" >"$W/config.json"
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

# a small range is served here, with the file's headers; a larger one, or
# an open one, is redirected
small() { # NAME RANGE OFFSET LENGTH
    expect_status "$1: 206 from the server" 206 GET "/$MODEL/resolve/1.0/$F" -H "$AUTH" -H "Range: $2"
    check "... Content-Range bytes $3-$(($3 + $4 - 1))/3145739" \
        [ "$(header Content-Range)" = "bytes $3-$(($3 + $4 - 1))/3145739" ]
    check "... ETag is the sha256, X-Repo-Commit the release" \
        [ "$(header ETag)" = "\"$SHA\"" ] && [ "$(header X-Repo-Commit)" = "$D1" ]
    check "... the bytes" sh -c "tail -c +$(($3 + 1)) '$W/r1/$F' | head -c $4 | cmp -s - '$TMP/body'"
}
small "a probe of one byte (bytes=0-0)" "bytes=0-0" 0 1
small "64 KiB (bytes=0-65535)" "bytes=0-65535" 0 65536
small "the last 64 KiB (bytes=-65536)" "bytes=-65536" 3080203 65536
small "a small range over the end (bytes=3145738-3145800)" "bytes=3145738-3145800" 3145738 1
expect_status "64 KiB and a byte (bytes=0-65536): 307" 307 GET "/$MODEL/resolve/1.0/$F" -H "$AUTH" \
    -H "Range: bytes=0-65536"
expect_status "an open range (bytes=100-): 307" 307 GET "/$MODEL/resolve/1.0/$F" -H "$AUTH" \
    -H "Range: bytes=100-"
expect_status "a range list (bytes=0-0,5-5): 307" 307 GET "/$MODEL/resolve/1.0/$F" -H "$AUTH" \
    -H "Range: bytes=0-0,5-5"
expect_status "a malformed range (bytes=5-1): 307" 307 GET "/$MODEL/resolve/1.0/$F" -H "$AUTH" \
    -H "Range: bytes=5-1"
expect_status "a small range past the end: 416" 416 GET "/$MODEL/resolve/1.0/$F" -H "$AUTH" \
    -H "Range: bytes=3145739-3145740"
check "... a Hub error" sh -c "jq -e '.error | test(\"not satisfiable\")' '$TMP/body' >/dev/null"
expect_status "no token and a small range: 401" 401 GET "/$MODEL/resolve/1.0/$F" -H "Range: bytes=0-0"

hf_client_ready || finish
export HF_REDIRECTED=1
hub reader release 1.0 "$W/1.0.json"
hub reader release 2.0 "$W/2.0.json"
# a token made at runtime, given to the client as hf_mlreg_...
run env MLREG_TOKEN="$(cat "$W/admin.tok")" "$MLREG" token create --name hf --role read --hf
expect_rc "token create --hf exits 0" 0
sed -n 1p "$TMP/out" >"$W/rt.tok"
hub rt release 1.0 "$W/1.0.json"

stop_server
$AWS s3 rm --recursive "s3://$S3_BUCKET/$PREFIX" >/dev/null 2>&1
finish
