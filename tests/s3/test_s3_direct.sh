#!/bin/sh
# test_s3_direct.sh: uploads whose digest comes before the bytes go straight
# to the blob's key on s3 (storage/blob_s3.c, docs/s3.md "Writes"), and
# ranged blob GETs are ranged S3 GETs. Two `mlreg serve` nodes on one prefix
# of the RGW of the s3 part (env from tests/run.sh); node A talks to RGW
# through nginx, whose access log shows every S3 request A sends (method,
# key, Range, x-amz-copy-source, bytes sent):
# - the upload POST answers Mlreg-Digest-First: true;
# - a monolithic POST ?digest= and a session's PUT ?digest= carrying the
#   whole body: one multipart upload to <prefix>blobs/sha256/<hex>, no temp
#   object under uploads/, no server-side copy; the bytes read back equal;
# - a wrong digest: 400, nothing under either digest's key, the multipart
#   upload aborted, none left open;
# - a dedup upload of a stored digest succeeds and keeps the right bytes; a
#   wrong body announced under that digest leaves the stored blob as it was;
# - the same digest uploaded through A and B at once: both 201, one object
#   with the right bytes, no upload left open;
# - ranged GETs answer the right bytes and each is one ranged S3 GET of
#   exactly that range (never a read from the start);
# - gc aborts a direct multipart upload older than gc.stale_upload_age and
#   leaves a younger one alone;
# - a PATCH whose connection drops keeps what arrived: the status GET
#   reports it and the next PATCH continues from there.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_s3_env s3
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
W=$TMP/work
mkdir -p "$W"
STALE=5

blob_key() { echo "${PREFIX}blobs/sha256/${1#sha256:}"; }
obj_exists() { $AWS s3api head-object --bucket "$S3_BUCKET" --key "$1" >/dev/null 2>&1; }
# open_uploads: the keys of the multipart uploads open under the prefix
open_uploads() {
    $AWS s3api list-multipart-uploads --bucket "$S3_BUCKET" --prefix "$PREFIX" \
        --query 'Uploads[].Key' --output text 2>/dev/null | tr '\t' '\n' | grep -v '^None$'
}
temp_objects() {
    $AWS s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${PREFIX}uploads/" \
        --query 'length(Contents || `[]`)' --output text
}
# post N FILE DIGEST: monolithic upload through node N; the status in ST,
# headers in $TMP/headers
post() {
    ST=$(curl -s -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/octet-stream' --data-binary @"$2" \
        "$(node_url "$1")/v2/m/direct/blobs/uploads/?digest=$3")
}
# ngx_since MARK: the nginx log lines after line MARK
ngx_since() { tail -n +$(($1 + 1)) "$NGX/logs/s3.log"; }
ngx_mark() { wc -l <"$NGX/logs/s3.log"; }
# cut_request METHOD PATH FILE: METHOD of FILE's 20 MiB to node 1 with the
# whole Content-Length, of which 9 MiB are sent before the connection drops
cut_request() {
    python3 - "$(node_url 1)" "$1" "$2" "$3" <<'PY' >"$W/cut.out" 2>&1
import socket, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
data = open(sys.argv[4], "rb").read()
s = socket.create_connection((u.hostname, u.port))
s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
           "Content-Length: %d\r\n\r\n" % (sys.argv[2], sys.argv[3], u.netloc, len(data))).encode())
s.sendall(data[:9437184])
time.sleep(0.5)
s.close()
PY
}

# ---- nginx in front of RGW for node A ---------------------------------------
NGX=$TMP/nginx
mkdir -p "$NGX/logs"
NGX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$NGX/nginx.conf" <<NGINX
daemon off;
master_process off;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log;
events { worker_connections 256; }
http {
    log_format s3 '\$request_method \$request_uri range=\$http_range copy=\$http_x_amz_copy_source sent=\$body_bytes_sent status=\$status';
    access_log $NGX/logs/s3.log s3;
    client_body_temp_path $NGX/body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;
    server {
        listen 127.0.0.1:$NGX_PORT;
        client_max_body_size 0;
        location / {
            proxy_pass http://${S3_ENDPOINT#http://};
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_request_buffering off;
            proxy_buffering off;
        }
    }
}
NGINX
# one process (no master): cluster_finish's SIGKILL leaves no worker behind
nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" 2>"$NGX/start.err" &
track_pid $!
k=0
until curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/" || [ $k -gt 100 ]; do sleep 0.05; k=$((k + 1)); done
curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/" ||
    { not_ok "nginx starts in front of RGW ($(tail -n 3 "$NGX/logs/error.log" 2>/dev/null))"; cluster_finish; }

make_log_key log || cluster_finish
new_prefix PREFIX
write_node_config "$W/b.json" "$PREFIX" "$TMP/log.key" ',"gc":{"grace":3600,"stale_upload_age":'$STALE'}'
sed "s#\"endpoint\":\"$S3_ENDPOINT\"#\"endpoint\":\"http://127.0.0.1:$NGX_PORT\"#" "$W/b.json" >"$W/a.json"
start_node 1 "$W/a.json" || cluster_finish
start_node 2 "$W/b.json" || cluster_finish
echo "# node A $(node_url 1) (through nginx :$NGX_PORT), node B $(node_url 2), prefix $PREFIX"

head -c 20971520 /dev/urandom >"$W/big.bin" # 20 MiB: three 8 MiB parts
BIG=sha256:$(sha256_of "$W/big.bin")

# ---- the capability header ---------------------------------------------------
ST=$(curl -s -D "$TMP/headers" -o /dev/null -w '%{http_code}' -X POST \
    "$(node_url 1)/v2/m/direct/blobs/uploads/")
check "an empty upload POST answers 202 (got $ST)" [ "$ST" = 202 ]
check "... with Mlreg-Digest-First: true" [ "$(header Mlreg-Digest-First)" = true ]
SESSION=$(header Location)

# ---- a monolithic upload with its digest goes straight to the blob's key -----
M=$(ngx_mark)
post 1 "$W/big.bin" "$BIG"
check "a monolithic POST ?digest= of 20 MiB answers 201 (got $ST: $(head -c 200 "$TMP/body"))" [ "$ST" = 201 ]
check "... with Mlreg-Digest-First: true" [ "$(header Mlreg-Digest-First)" = true ]
ngx_since "$M" >"$W/mono.log"
KEY=$(blob_key "$BIG")
check "... one multipart upload started at the blob's own key" \
    [ "$(grep -c "^POST /$S3_BUCKET/$KEY?uploads" "$W/mono.log")" = 1 ]
check "... its 3 parts sent to that key" \
    [ "$(grep -c "^PUT /$S3_BUCKET/$KEY?partNumber=[0-9]*&uploadId=" "$W/mono.log")" = 3 ]
check "... completed there" grep -q "^POST /$S3_BUCKET/$KEY?uploadId=.* status=200" "$W/mono.log"
check "... nothing written under uploads/ (no temp object)" sh -c "! grep -q '${PREFIX}uploads/' '$W/mono.log'"
check "... no server-side copy" sh -c "! grep -v 'copy=-' '$W/mono.log' | grep -q ."
check "list-objects: nothing under uploads/" [ "$(temp_objects)" = 0 ]
check "list-multipart-uploads: none open" [ -z "$(open_uploads)" ]
$AWS s3api get-object --bucket "$S3_BUCKET" --key "$KEY" "$W/back.bin" >/dev/null 2>&1
check "get-object: the blob's key holds the uploaded bytes" cmp -s "$W/big.bin" "$W/back.bin"

# ---- a session whose PUT carries the whole body -------------------------------
head -c 12582912 /dev/urandom >"$W/sess.bin" # 12 MiB: two parts
SESS=sha256:$(sha256_of "$W/sess.bin")
M=$(ngx_mark)
ST=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT --data-binary @"$W/sess.bin" \
    -H 'Content-Type: application/octet-stream' "$(node_url 1)$SESSION?digest=$SESS")
check "PUT <session>?digest= with the whole body after an empty POST answers 201 (got $ST)" [ "$ST" = 201 ]
ngx_since "$M" >"$W/sess.log"
KEY=$(blob_key "$SESS")
check "... one multipart upload at the blob's key, 2 parts" \
    sh -c "[ \$(grep -c '^POST /$S3_BUCKET/$KEY?uploads' '$W/sess.log') = 1 ] &&
        [ \$(grep -c '^PUT /$S3_BUCKET/$KEY?partNumber=' '$W/sess.log') = 2 ]"
check "... no temp object, no copy" \
    sh -c "! grep -q '${PREFIX}uploads/' '$W/sess.log' && ! grep -v 'copy=-' '$W/sess.log' | grep -q ."
wait_applied 2 "$(cluster_json 1 | jq -r .applied)" 10
ST=$(curl -s -o "$W/via2" -w '%{http_code}' "$(node_url 2)/v2/m/direct/blobs/$SESS")
check "GET of the blob through B answers the bytes (got $ST, $(wc -c <"$W/via2") bytes)" cmp -s "$W/via2" "$W/sess.bin"

# ---- a wrong digest leaves nothing -------------------------------------------
head -c 16777216 /dev/urandom >"$W/bad.bin"
BAD=sha256:$(sha256_of "$W/bad.bin")
WRONG=sha256:$(printf 'not these bytes' | sha256sum | cut -c1-64)
M=$(ngx_mark)
post 1 "$W/bad.bin" "$WRONG"
check "a POST whose body does not hash to ?digest= answers 400 (got $ST)" [ "$ST" = 400 ]
check "... DIGEST_INVALID" grep -q DIGEST_INVALID "$TMP/body"
ngx_since "$M" >"$W/bad.log"
check "... its multipart upload went to the announced digest's key" \
    grep -q "^POST /$S3_BUCKET/$(blob_key "$WRONG")?uploads" "$W/bad.log"
check "... and was aborted (DELETE ?uploadId=)" \
    grep -q "^DELETE /$S3_BUCKET/$(blob_key "$WRONG")?uploadId=.* status=204" "$W/bad.log"
check "... never completed" sh -c "! grep -q '^POST /$S3_BUCKET/$(blob_key "$WRONG")?uploadId=' '$W/bad.log'"
check "head-object: nothing under the announced digest" sh -c "! $AWS s3api head-object --bucket '$S3_BUCKET' --key '$(blob_key "$WRONG")' >/dev/null 2>&1"
check "head-object: nothing under the body's own digest" sh -c "! $AWS s3api head-object --bucket '$S3_BUCKET' --key '$(blob_key "$BAD")' >/dev/null 2>&1"
check "list-multipart-uploads: none open" [ -z "$(open_uploads)" ]
check "HEAD of the announced digest answers 404" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' -I "$(node_url 1)/v2/m/direct/blobs/$WRONG")" = 404 ]

# ---- dedup: a stored digest uploaded again -----------------------------------
ETAG0=$($AWS s3api head-object --bucket "$S3_BUCKET" --key "$(blob_key "$BIG")" --query ETag --output text)
post 2 "$W/big.bin" "$BIG"
check "uploading a stored digest again answers 201 (got $ST)" [ "$ST" = 201 ]
$AWS s3api get-object --bucket "$S3_BUCKET" --key "$(blob_key "$BIG")" "$W/back.bin" >/dev/null 2>&1
check "... the blob still holds the right bytes" cmp -s "$W/big.bin" "$W/back.bin"
head -c 20971520 /dev/urandom >"$W/other.bin" # same size, other bytes
ETAG1=$($AWS s3api head-object --bucket "$S3_BUCKET" --key "$(blob_key "$BIG")" --query ETag --output text)
post 1 "$W/other.bin" "$BIG"
check "other bytes announced under a stored digest: 400 (got $ST)" [ "$ST" = 400 ]
check "... the stored object is untouched (ETag $ETAG1)" [ "$($AWS s3api head-object --bucket "$S3_BUCKET" \
    --key "$(blob_key "$BIG")" --query ETag --output text)" = "$ETAG1" ]
$AWS s3api get-object --bucket "$S3_BUCKET" --key "$(blob_key "$BIG")" "$W/back.bin" >/dev/null 2>&1
check "... and holds the right bytes" cmp -s "$W/big.bin" "$W/back.bin"
check "... no upload left open" [ -z "$(open_uploads)" ]
echo "# ETag before the dedup uploads $ETAG0, after $ETAG1"

# ---- the same digest through both nodes at once ------------------------------
head -c 25165824 /dev/urandom >"$W/both.bin" # 24 MiB
BOTH=sha256:$(sha256_of "$W/both.bin")
PIDS=""
for n in 1 2; do
    curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$W/both.bin" \
        -H 'Content-Type: application/octet-stream' \
        "$(node_url $n)/v2/m/both$n/blobs/uploads/?digest=$BOTH" >"$W/both$n.st" &
    PIDS="$PIDS $!"
done
for p in $PIDS; do wait "$p"; done
check "concurrent uploads of one digest: A answers 201 ($(cat "$W/both1.st"))" [ "$(cat "$W/both1.st")" = 201 ]
check "... B answers 201 ($(cat "$W/both2.st"))" [ "$(cat "$W/both2.st")" = 201 ]
check "... one object under the digest" [ "$($AWS s3api list-objects-v2 --bucket "$S3_BUCKET" \
    --prefix "$(blob_key "$BOTH")" --query 'length(Contents || `[]`)' --output text)" = 1 ]
$AWS s3api get-object --bucket "$S3_BUCKET" --key "$(blob_key "$BOTH")" "$W/back.bin" >/dev/null 2>&1
check "... holding the right bytes" cmp -s "$W/both.bin" "$W/back.bin"
check "... no upload left open" [ -z "$(open_uploads)" ]
check "... no temp object" [ "$(temp_objects)" = 0 ]
wait_applied 1 "$(cluster_json 2 | jq -r .applied)" 10
wait_applied 2 "$(cluster_json 1 | jq -r .applied)" 10
curl -s -o "$W/via1" "$(node_url 1)/v2/m/both1/blobs/$BOTH"
curl -s -o "$W/via2" "$(node_url 2)/v2/m/both2/blobs/$BOTH"
check "... each node serves it" sh -c "cmp -s '$W/via1' '$W/both.bin' && cmp -s '$W/via2' '$W/both.bin'"

# ---- ranged GETs are ranged S3 GETs -------------------------------------------
# range: the Range header; first, length: the bytes expected
for spec in "bytes=0-0 0 1" "bytes=9000000-9999999 9000000 1000000" \
    "bytes=8388600-8388615 8388600 16" "bytes=20000000- 20000000 971520" \
    "bytes=-1000 20970520 1000" "bytes=20971000-99999999 20971000 520"; do
    set -- $spec
    M=$(ngx_mark)
    ST=$(curl -s -D "$TMP/headers" -o "$W/range.out" -w '%{http_code}' -H "Range: $1" \
        "$(node_url 1)/v2/m/direct/blobs/$BIG")
    dd if="$W/big.bin" of="$W/range.want" bs=4096 iflag=skip_bytes,count_bytes skip=$2 count=$3 2>/dev/null
    check "GET Range: $1 answers 206 with bytes $2+$3 (got $ST, $(wc -c <"$W/range.out") bytes)" \
        sh -c "[ $ST = 206 ] && cmp -s '$W/range.want' '$W/range.out'"
    check "... Content-Range bytes $2-$(($2 + $3 - 1))/20971520" \
        [ "$(header Content-Range)" = "bytes $2-$(($2 + $3 - 1))/20971520" ]
    ngx_since "$M" | grep "^GET /$S3_BUCKET/$(blob_key "$BIG") " >"$W/get.log"
    check "... one S3 GET of exactly that range, $3 bytes sent ($(cat "$W/get.log"))" \
        sh -c "[ \$(wc -l <'$W/get.log') = 1 ] && grep -q 'range=bytes=$2-$(($2 + $3 - 1)) .*sent=$3 status=206' '$W/get.log'"
done
ST=$(curl -s -o /dev/null -w '%{http_code}' -H 'Range: bytes=20971520-' "$(node_url 1)/v2/m/direct/blobs/$BIG")
check "GET Range past the end answers 416 (got $ST)" [ "$ST" = 416 ]

# ---- gc: a stale direct multipart upload is aborted, a young one kept ---------
FAKE1=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
FAKE2=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
OLD_ID=$($AWS s3api create-multipart-upload --bucket "$S3_BUCKET" --key "${PREFIX}blobs/sha256/$FAKE1" \
    --query UploadId --output text 2>/dev/null)
check "a multipart upload at a blob key (a crash's leftover)" [ -n "$OLD_ID" ]
sleep $((STALE + 2))
NEW_ID=$($AWS s3api create-multipart-upload --bucket "$S3_BUCKET" --key "${PREFIX}blobs/sha256/$FAKE2" \
    --query UploadId --output text 2>/dev/null)
(cd "$TMP" && MLREG_URL=$(node_url 2) "$MLREG" gc --json) >"$W/gc.json" 2>"$W/gc.err"
check "gc exits 0 ($(cat "$W/gc.err"))" [ $? = 0 ]
check "... counts one stale upload ($(jq .stale_uploads "$W/gc.json"))" [ "$(jq .stale_uploads "$W/gc.json")" = 1 ]
open_uploads >"$W/open"
check "... aborted the old one" sh -c "! grep -q '$FAKE1' '$W/open'"
check "... left the young one alone" grep -q "$FAKE2" "$W/open"
$AWS s3api abort-multipart-upload --bucket "$S3_BUCKET" --key "${PREFIX}blobs/sha256/$FAKE2" \
    --upload-id "$NEW_ID" >/dev/null 2>&1

# ---- a PATCH cut short keeps what arrived -------------------------------------
head -c 20971520 /dev/urandom >"$W/cut.bin"
CUT=sha256:$(sha256_of "$W/cut.bin")
ST=$(curl -s -D "$TMP/headers" -o /dev/null -w '%{http_code}' -X POST "$(node_url 1)/v2/m/direct/blobs/uploads/")
LOC=$(header Location)
cut_request PATCH "$LOC" "$W/cut.bin"
sleep 0.5
ST=$(curl -s -D "$TMP/headers" -o /dev/null -w '%{http_code}' "$(node_url 1)$LOC")
RANGE=$(header Range)
GOT=$((${RANGE#0-} + 1))
check "after a PATCH cut at 9 MiB the status GET answers 204 (got $ST)" [ "$ST" = 204 ]
check "... reporting the bytes that arrived (Range: $RANGE)" sh -c "[ $GOT -gt 0 ] && [ $GOT -le 9437184 ]"
tail -c +$((GOT + 1)) "$W/cut.bin" >"$W/cut.rest"
ST=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PATCH --data-binary @"$W/cut.rest" \
    -H 'Content-Type: application/octet-stream' -H "Content-Range: $GOT-20971519" "$(node_url 1)$LOC")
check "... a PATCH from there answers 202 (got $ST)" [ "$ST" = 202 ]
ST=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT "$(node_url 1)$LOC?digest=$CUT")
check "... and the closing PUT ?digest= answers 201 (got $ST: $(head -c 200 "$TMP/body"))" [ "$ST" = 201 ]
$AWS s3api get-object --bucket "$S3_BUCKET" --key "$(blob_key "$CUT")" "$W/back.bin" >/dev/null 2>&1
check "... the blob holds the whole file" cmp -s "$W/cut.bin" "$W/back.bin"
check "... no upload left open" [ -z "$(open_uploads)" ]

# ---- a session's PUT with the whole body, cut short, keeps what arrived ------------
head -c 20971520 /dev/urandom >"$W/cutput.bin"
CP=sha256:$(sha256_of "$W/cutput.bin")
ST=$(curl -s -D "$TMP/headers" -o /dev/null -w '%{http_code}' -X POST "$(node_url 1)/v2/m/direct/blobs/uploads/")
LOC=$(header Location)
cut_request PUT "$LOC?digest=$CP" "$W/cutput.bin"
sleep 0.5
ST=$(curl -s -D "$TMP/headers" -o /dev/null -w '%{http_code}' "$(node_url 1)$LOC")
RANGE=$(header Range)
GOT=$((${RANGE#0-} + 1))
check "after a closing PUT cut at 9 MiB the status GET answers 204 (got $ST)" [ "$ST" = 204 ]
check "... reporting the bytes that arrived (Range: $RANGE)" sh -c "[ $GOT -gt 0 ] && [ $GOT -le 9437184 ]"
check "... and Mlreg-Digest-First: true, for a client resuming it" \
    sh -c "[ \"\$(tr -d '\r' <'$TMP/headers' | sed -n 's/^Mlreg-Digest-First: //ip')\" = true ]"
if obj_exists "$(blob_key "$CP")"; then not_ok "... nothing is visible at the blob's key yet"
else ok "... nothing is visible at the blob's key yet"; fi
if open_uploads | grep -qx "$(blob_key "$CP")"; then ok "... its multipart upload is open at the blob's own key"
else not_ok "... its multipart upload is open at the blob's own key ($(open_uploads | tr '\n' ' '))"; fi
tail -c +$((GOT + 1)) "$W/cutput.bin" >"$W/cutput.rest"
ST=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PATCH --data-binary @"$W/cutput.rest" \
    -H 'Content-Type: application/octet-stream' -H "Content-Range: $GOT-20971519" "$(node_url 1)$LOC")
check "... a PATCH of the rest answers 202 (got $ST)" [ "$ST" = 202 ]
ST=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT "$(node_url 1)$LOC?digest=$CP")
check "... and the closing PUT ?digest= answers 201 (got $ST: $(head -c 200 "$TMP/body"))" [ "$ST" = 201 ]
$AWS s3api get-object --bucket "$S3_BUCKET" --key "$(blob_key "$CP")" "$W/back.bin" >/dev/null 2>&1
check "... the blob holds the whole file" cmp -s "$W/cutput.bin" "$W/back.bin"
check "... written once, straight to its key: no temp object" [ "$(temp_objects)" = 0 ]
check "... and no upload left open" [ -z "$(open_uploads)" ]

# ---- mlreg push killed during its closing PUT resumes ----------------------------
MIB=1048576
head -c $((48 * MIB)) /dev/urandom >"$W/killed.bin"
KD=sha256:$(sha256_of "$W/killed.bin")
env MLREG_URL="$(node_url 1)" "$MLREG" push m/resumed@1 --weights "$W/killed.bin" --limit-rate 12M \
    >"$TMP/kout" 2>"$TMP/kerr" &
kp=$!
HAVE=0
LOC=""
i=0
while [ $i -lt 300 ]; do
    f=$(ls "$MLREG_CACHE_DIR"/uploads 2>/dev/null | grep -E '^[0-9a-f]{64}$' | head -n 1)
    if [ -n "$f" ]; then
        LOC=$(tail -n 1 "$MLREG_CACHE_DIR/uploads/$f")
        HAVE=$(curl -s -o /dev/null -D - "$LOC" | tr -d '\r' | sed -n 's/^Range: 0-//ip')
        HAVE=${HAVE:-0}
        [ "$HAVE" -ge $((16 * MIB)) ] && break
    fi
    sleep 0.05
    i=$((i + 1))
done
kill -KILL $kp 2>/dev/null
wait $kp 2>/dev/null
check "a push killed during its closing PUT left a remembered session ($LOC)" [ -n "$LOC" ]
# the server holds the session until it sees the connection gone
i=0
while [ $i -lt 40 ]; do
    sleep 0.25
    now=$(curl -s -o /dev/null -D - "$LOC" | tr -d '\r' | sed -n 's/^Range: 0-//ip')
    [ "${now:-0}" = "$HAVE" ] && break
    HAVE=${now:-0}
    i=$((i + 1))
done
HAVE=$((HAVE + 1))
check "... with 16 MiB or more of 48 in it (have $HAVE)" [ "$HAVE" -ge $((16 * MIB)) -a "$HAVE" -lt $((48 * MIB)) ]
before=$(curl -s "$(node_url 1)/metrics" | awk '$1 == "mlreg_http_received_bytes_total" {print $2}')
run env MLREG_URL="$(node_url 1)" "$MLREG" push m/resumed@1 --weights "$W/killed.bin"
after=$(curl -s "$(node_url 1)/metrics" | awk '$1 == "mlreg_http_received_bytes_total" {print $2}')
sent=$((after - before))
expect_rc "the push again exits 0" 0
check "... resuming the upload" grep -q "resuming the upload of killed.bin" "$TMP/err"
check "... sending only the rest ($sent bytes for $((48 * MIB - HAVE)) missing)" \
    [ $sent -ge $((48 * MIB - HAVE)) -a $sent -lt $((48 * MIB - HAVE + MIB)) ]
$AWS s3api get-object --bucket "$S3_BUCKET" --key "$(blob_key "$KD")" "$W/back.bin" >/dev/null 2>&1
check "... the blob holds the whole file" cmp -s "$W/killed.bin" "$W/back.bin"
check "... no upload left open" [ -z "$(open_uploads)" ]
check "... and the session is forgotten" sh -c "[ -z \"\$(ls '$MLREG_CACHE_DIR/uploads')\" ]"

cluster_finish
