#!/bin/sh
# Hostile input against the real `mlreg serve`: each case checks the status
# AND that nothing was stored (no blob under a final name, no stray temp file,
# no manifest or tag), and that the server keeps answering afterwards.
. "$(dirname "$0")/lib.sh"

start_server || finish

code_is() { [ "$(jq -r '.errors[0].code' "$TMP/body" 2>/dev/null)" = "$1" ]; }
expect_error() {
    name=$1; want=$2; code=$3; shift 3
    got=$(http_status "$@")
    if [ "$got" = "$want" ] && code_is "$code"; then ok "$name"; else
        not_ok "$name (want $want $code, got $got: $(head -c 300 "$TMP/body"))"; fi
}
blob_count() { find "$DATA/blobs/sha256" -type f 2>/dev/null | wc -l | tr -d ' '; }
tmp_count() { find "$DATA/blobs/tmp" -type f 2>/dev/null | wc -l | tr -d ' '; }
# wait_tmp_empty: temp files of aborted writes disappear (the server cleans up
# in its completion callback, which may run a moment after the client left).
wait_tmp_empty() {
    i=0
    while [ "$(tmp_count)" != 0 ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
    [ "$(tmp_count)" = 0 ]
}
upload_path() { header Location | sed 's|^https\?://[^/]*||'; }
# raw_request FILE: sends FILE's bytes on a fresh TCP connection, then closes
# the sending side and collects the answer into $TMP/raw_reply (bash /dev/tcp).
raw_request() {
    port=${MLREG_URL##*:}
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"'; cat "$1" >&3; sleep 0.3; exec 3>&-' \
        _ "$1" >"$TMP/raw_reply" 2>/dev/null
}

printf 'payload bytes' >"$TMP/p"
D_P=sha256:$(sha256_of "$TMP/p")
BASE_BLOBS=$(blob_count)

# ---- bad names ---------------------------------------------------------------
for n in UPPER a//b -leading trailing- 'a/../b' 'x/.hidden'; do
    expect_error "POST upload with name '$n': 400 NAME_INVALID" 400 NAME_INVALID POST \
        "/v2/$n/blobs/uploads/?digest=$D_P" --path-as-is --data-binary @"$TMP/p"
done
expect_error "path with ../ is refused" 400 NAME_INVALID POST \
    "/v2/../x/blobs/uploads/?digest=$D_P" --path-as-is --data-binary @"$TMP/p"
expect_error "percent-encoded dots are refused" 400 NAME_INVALID POST \
    "/v2/%2e%2e/x/blobs/uploads/?digest=$D_P" --path-as-is --data-binary @"$TMP/p"
expect_error "percent-encoded slash is refused" 400 NAME_INVALID GET \
    "/v2/a%2fb/tags/list" --path-as-is
expect_error "over-long name is refused" 400 NAME_INVALID GET \
    "/v2/$(head -c 300 /dev/zero | tr '\0' a)/tags/list"
check "bad names stored no blob" [ "$(blob_count)" = "$BASE_BLOBS" ]
check "bad names left no temp file" wait_tmp_empty
expect_error "bad name in a manifest PUT: 400 NAME_INVALID" 400 NAME_INVALID PUT \
    /v2/BAD/manifests/v1 -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary '{}'

# ---- bad digests -------------------------------------------------------------
UPPER_D=$(echo "$D_P" | tr 'a-f' 'A-F' | sed 's/^SHA256/sha256/')
for d in "$UPPER_D" "sha512:$(printf x | sha512sum | cut -d' ' -f1)" "sha256:abc" \
    "sha256:$(sha256_of "$TMP/p") " "$(sha256_of "$TMP/p")"; do
    expect_error "POST ?digest='$d': 400 DIGEST_INVALID" 400 DIGEST_INVALID POST \
        "/v2/team/app/blobs/uploads/?digest=$(printf '%s' "$d" | jq -sRr @uri)" \
        --data-binary @"$TMP/p"
done
expect_error "blob GET with an uppercase digest: 400" 400 DIGEST_INVALID GET \
    "/v2/team/app/blobs/$UPPER_D"
expect_error "blob GET with a short digest: 400" 400 DIGEST_INVALID GET \
    /v2/team/app/blobs/sha256:1234
check "bad digests stored no blob" [ "$(blob_count)" = "$BASE_BLOBS" ]

# ---- digest mismatch -----------------------------------------------------------
printf 'other bytes' >"$TMP/o"
D_O=sha256:$(sha256_of "$TMP/o")
expect_error "monolithic POST with the wrong digest: 400 DIGEST_INVALID" 400 DIGEST_INVALID \
    POST "/v2/team/app/blobs/uploads/?digest=$D_O" --data-binary @"$TMP/p"
expect_status "mismatched blob is not under the declared digest" 404 HEAD \
    "/v2/team/app/blobs/$D_O" -I
expect_status "mismatched blob is not under its real digest" 404 HEAD \
    "/v2/team/app/blobs/$D_P" -I
check "digest mismatch stored nothing" [ "$(blob_count)" = "$BASE_BLOBS" ]
check "digest mismatch left no temp file" wait_tmp_empty

expect_status "POST for a mismatching PUT" 202 POST /v2/team/app/blobs/uploads/
LOC=$(upload_path)
expect_status "PATCH before the mismatching PUT" 202 PATCH "$LOC" --data-binary @"$TMP/p"
expect_error "PUT with the wrong digest: 400 DIGEST_INVALID" 400 DIGEST_INVALID PUT \
    "$LOC?digest=$D_O"
expect_error "session is gone after the mismatching PUT" 404 BLOB_UPLOAD_UNKNOWN GET "$LOC"
expect_status "blob absent after the mismatching PUT" 404 HEAD "/v2/team/app/blobs/$D_O" -I
check "mismatching PUT stored nothing" [ "$(blob_count)" = "$BASE_BLOBS" ]
check "mismatching PUT left no temp file" wait_tmp_empty

expect_status "POST for a PUT without digest" 202 POST /v2/team/app/blobs/uploads/
LOC=$(upload_path)
expect_error "PUT without ?digest=: 400 DIGEST_INVALID" 400 DIGEST_INVALID PUT "$LOC"
expect_status "session survives a PUT without digest" 204 GET "$LOC"
expect_status "DELETE that session" 204 DELETE "$LOC"

# ---- Content-Length larger than the body ---------------------------------------
# curl sends the short body and waits; --max-time makes it give up and close.
curl -s -o /dev/null --max-time 1 -X POST -H 'Content-Length: 100000' --data-binary @"$TMP/p" \
    "$MLREG_URL/v2/team/app/blobs/uploads/?digest=$D_P"
check "server alive after a lying (larger) Content-Length" alive
expect_status "short body with a larger Content-Length is not stored" 404 HEAD \
    "/v2/team/app/blobs/$D_P" -I
check "larger Content-Length left no temp file" wait_tmp_empty
check "larger Content-Length stored nothing" [ "$(blob_count)" = "$BASE_BLOBS" ]

# same with a PUT that ends an upload session: nothing committed; the
# session keeps what arrived, as a PATCH cut short does (a client resumes
# from its offset), until it is cancelled
expect_status "POST for a lying PUT" 202 POST /v2/team/app/blobs/uploads/
LOC=$(upload_path)
curl -s -o /dev/null --max-time 1 -X PUT -H 'Content-Length: 100000' --data-binary @"$TMP/p" \
    "$MLREG_URL$LOC?digest=$D_P"
check "server alive after a lying PUT" alive
expect_status "lying PUT committed nothing" 404 HEAD "/v2/team/app/blobs/$D_P" -I
sleep 0.2
expect_status "lying PUT kept its session" 204 GET "$LOC"
check "... holding the bytes that arrived (Range: $(header Range))" \
    [ "$(header Range)" = "0-$(($(wc -c <"$TMP/p") - 1))" ]
expect_status "... which DELETE cancels" 204 DELETE "$LOC"
check "lying PUT left no temp file" wait_tmp_empty

# ---- Content-Length smaller than the body ----------------------------------------
expect_error "smaller Content-Length: the prefix does not match, 400 DIGEST_INVALID" 400 \
    DIGEST_INVALID POST "/v2/team/app/blobs/uploads/?digest=$D_P" -H 'Content-Length: 4' \
    --data-binary @"$TMP/p"
check "server alive after a smaller Content-Length" alive
expect_status "smaller Content-Length stored nothing" 404 HEAD "/v2/team/app/blobs/$D_P" -I
check "smaller Content-Length stored no blob" [ "$(blob_count)" = "$BASE_BLOBS" ]

# ---- truncated chunked upload (raw HTTP, connection closed mid-body) ------------------
{
    printf 'POST /v2/team/app/blobs/uploads/?digest=%s HTTP/1.1\r\n' "$D_P"
    printf 'Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n'
    printf '5\r\npaylo\r\n'
} >"$TMP/trunc.req"
raw_request "$TMP/trunc.req"
check "server alive after a truncated chunked POST" alive
expect_status "truncated chunked POST stored nothing" 404 HEAD "/v2/team/app/blobs/$D_P" -I
check "truncated chunked POST left no temp file" wait_tmp_empty

# a truncated streamed PATCH keeps what arrived; the client resumes from the offset
expect_status "POST for a truncated PATCH" 202 POST /v2/team/app/blobs/uploads/
LOC=$(upload_path)
{
    printf 'PATCH %s HTTP/1.1\r\n' "$LOC"
    printf 'Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n'
    printf '5\r\npaylo\r\n3\r\nad'
} >"$TMP/trunc2.req"
raw_request "$TMP/trunc2.req"
sleep 0.2
expect_status "status after the truncated PATCH" 204 GET "$LOC"
RANGE=$(header Range)
case $RANGE in
0-4) ok "truncated PATCH kept the whole chunks that arrived (Range 0-4)" ;;
0-6) ok "truncated PATCH kept the bytes that arrived (Range 0-6)" ;;
*) not_ok "truncated PATCH offset (Range $RANGE)" ;;
esac
LAST=${RANGE#0-}
tail -c +$((LAST + 2)) "$TMP/p" >"$TMP/rest"
expect_status "upload resumes at the reported offset" 202 PATCH "$LOC" \
    --data-binary @"$TMP/rest" -H "Content-Range: $((LAST + 1))-12"
expect_status "resumed upload completes with the right digest" 201 PUT "$LOC?digest=$D_P"
expect_status "resumed blob readable" 200 GET "/v2/team/app/blobs/$D_P"
check "resumed blob has the right bytes" cmp -s "$TMP/body" "$TMP/p"
expect_status "DELETE the resumed blob" 202 DELETE "/v2/team/app/blobs/$D_P"

# ---- one request at a time per session --------------------------------------------------
expect_status "POST for the busy-session test" 202 POST /v2/team/app/blobs/uploads/
LOC=$(upload_path)
curl -s -o /dev/null --max-time 2 -X PATCH -H 'Content-Length: 100000' \
    --data-binary @"$TMP/p" "$MLREG_URL$LOC" &
HOLDER=$!
sleep 0.5
expect_error "second request on a busy session: 416" 416 BLOB_UPLOAD_INVALID PATCH "$LOC" \
    --data-binary @"$TMP/o" -H 'Content-Range: 0-10'
wait "$HOLDER"
sleep 0.2
expect_status "session usable once the first request is gone" 204 GET "$LOC"
expect_status "DELETE the busy-test session" 204 DELETE "$LOC"

# ---- malformed and hostile manifests ----------------------------------------------------
MT=application/vnd.oci.image.manifest.v1+json
expect_error "malformed JSON manifest: 400 MANIFEST_INVALID" 400 MANIFEST_INVALID PUT \
    /v2/team/app/manifests/broken -H "Content-Type: $MT" --data-binary '{"schemaVersion":2,'
expect_status "malformed manifest was not stored" 404 GET /v2/team/app/manifests/broken
expect_error "manifest that is not an object: 400" 400 MANIFEST_INVALID PUT \
    /v2/team/app/manifests/broken -H "Content-Type: $MT" --data-binary '[1,2]'
expect_error "empty manifest body: 400" 400 MANIFEST_INVALID PUT \
    /v2/team/app/manifests/broken -H "Content-Type: $MT" --data-binary ''
expect_error "invalid tag: 400" 400 MANIFEST_INVALID PUT \
    /v2/team/app/manifests/.bad -H "Content-Type: $MT" --data-binary '{}'
expect_error "manifest PUT by a digest that differs from the body: 400" 400 DIGEST_INVALID PUT \
    "/v2/team/app/manifests/$D_O" -H "Content-Type: $MT" --data-binary '{"schemaVersion":2}'

# A reference that is neither a tag nor a digest cannot exist: reads get 404
# MANIFEST_UNKNOWN (as docker-registry, Harbor and the distribution-spec
# conformance suite expect), writes keep their 400.
LONG_TAG=$(head -c 129 /dev/zero | tr '\0' a)
for ref in .INVALID_MANIFEST_NAME -dash "$LONG_TAG" sha256:abc "sha256:$(printf '%064d' 0 | tr 0 A)" \
    md5:d41d8cd98f00b204e9800998ecf8427e; do
    expect_error "GET of invalid reference '$(printf %.24s "$ref")': 404 MANIFEST_UNKNOWN" 404 \
        MANIFEST_UNKNOWN GET "/v2/team/app/manifests/$ref"
    expect_status "HEAD of invalid reference '$(printf %.24s "$ref")': 404" 404 HEAD \
        "/v2/team/app/manifests/$ref"
done
expect_error "GET of an invalid reference in an unknown repository: 404 MANIFEST_UNKNOWN" 404 \
    MANIFEST_UNKNOWN GET /v2/team/nothing-here/manifests/.INVALID_MANIFEST_NAME
expect_error "PUT of .INVALID_MANIFEST_NAME: 400 MANIFEST_INVALID" 400 MANIFEST_INVALID PUT \
    /v2/team/app/manifests/.INVALID_MANIFEST_NAME -H "Content-Type: $MT" --data-binary '{}'
expect_error "DELETE of .INVALID_MANIFEST_NAME: 400 MANIFEST_INVALID" 400 MANIFEST_INVALID \
    DELETE /v2/team/app/manifests/.INVALID_MANIFEST_NAME
expect_error "DELETE of a malformed digest: 400 DIGEST_INVALID" 400 DIGEST_INVALID DELETE \
    /v2/team/app/manifests/sha256:abc

# Error messages quote what the client sent (here the reference): the reply
# is still valid JSON when those bytes are not UTF-8, and holds no control
# characters when they are (a terminal showing it must not act on a CSI).
port=${MLREG_URL##*:}
for ref in "$(printf 'v\377x')" "$(printf '\302\23331mred')" "$(printf 'a%.0s' $(seq 1 99))é"; do
    printf 'GET /v2/team/app/manifests/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
        "$ref" >"$TMP/ref.req"
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"'; cat "$1" >&3; timeout 5 cat <&3' _ "$TMP/ref.req" \
        >"$TMP/ref.reply" 2>/dev/null
    sed -n '/^\r$/,$p' "$TMP/ref.reply" | tail -n +2 >"$TMP/ref.body"
    what="GET of reference$(printf '%s' "$ref" | od -An -c | tr -s ' ' | head -c 40)"
    check "$what: answered 404" grep -q '^HTTP/1.1 404' "$TMP/ref.reply"
    check "$what: the error body is JSON" test "$(jq -r '.errors[0].code' "$TMP/ref.body")" = \
        MANIFEST_UNKNOWN
    check "$what: no C1 or ESC in the reply" \
        sh -c "! LC_ALL=C grep -q \"\$(printf '\\302[\\200-\\237]\\|\\033')\" '$TMP/ref.reply'"
done

# ---- referrers come in pages (Link rel="next"); bad n or last is 400 ------------------------
printf '{}' >"$TMP/rcfg"
D_RCFG=$(post_blob team/refs "$TMP/rcfg")
jq -cn --arg c "$D_RCFG" '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
    config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2}, layers:[]}' \
    >"$TMP/subj.json"
D_SUBJ=sha256:$(sha256_of "$TMP/subj.json")
expect_status "subject manifest PUT" 201 PUT /v2/team/refs/manifests/base -H "Content-Type: $MT" \
    --data-binary @"$TMP/subj.json"
i=0
while [ $i -lt 7 ]; do
    if [ $((i % 2)) = 1 ]; then at=application/vnd.test.sig+json; else at=application/vnd.test.sbom; fi
    jq -cn --arg c "$D_RCFG" --arg s "$D_SUBJ" --arg at "$at" --arg n "$i" \
        --argjson ss "$(wc -c <"$TMP/subj.json")" '{schemaVersion:2,
        mediaType:"application/vnd.oci.image.manifest.v1+json", artifactType:$at,
        config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2}, layers:[],
        subject:{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$s, size:$ss},
        annotations:{n:$n}}' >"$TMP/ref$i.json"
    st=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $MT" \
        --data-binary @"$TMP/ref$i.json" \
        "$MLREG_URL/v2/team/refs/manifests/sha256:$(sha256_of "$TMP/ref$i.json")")
    [ "$st" = 201 ] || not_ok "referrer $i PUT (got $st)"
    i=$((i + 1))
done
expect_status "all referrers in one page" 200 GET "/v2/team/refs/referrers/$D_SUBJ"
jq -c '[.manifests[].digest]' "$TMP/body" >"$TMP/ref.all"
check "one page holds all 7 referrers, without Link" \
    [ "$(jq length "$TMP/ref.all")" = 7 ] && [ -z "$(header Link)" ]
check "referrers are in digest order" [ "$(jq -c 'sort' "$TMP/ref.all")" = "$(cat "$TMP/ref.all")" ]
# walk_links PATH: follows Link rel="next" from PATH; the digests of every page,
# concatenated, into $TMP/ref.walk, the number of pages into PAGES.
walk_links() {
    next=$1
    PAGES=0
    echo '[]' >"$TMP/ref.walk"
    while [ -n "$next" ] && [ $PAGES -lt 20 ]; do
        st=$(http_status GET "$next")
        [ "$st" = 200 ] || { not_ok "referrers page $next (got $st)"; return 1; }
        jq -c --slurpfile w "$TMP/ref.walk" '$w[0] + [.manifests[].digest]' "$TMP/body" \
            >"$TMP/ref.walk.new" && mv "$TMP/ref.walk.new" "$TMP/ref.walk"
        PAGES=$((PAGES + 1))
        next=$(header Link | sed -n 's/^<\([^>]*\)>; rel="next"$/\1/p')
        if [ -n "$(header Link)" ] && [ -z "$next" ]; then not_ok "Link header shape: $(header Link)"; fi
    done
}
walk_links "/v2/team/refs/referrers/$D_SUBJ?n=3"
check "pages of n=3: 3 pages" [ "$PAGES" = 3 ]
check "walking the Link pages yields every referrer exactly once, in order" \
    [ "$(cat "$TMP/ref.walk")" = "$(cat "$TMP/ref.all")" ]
http_status GET "/v2/team/refs/referrers/$D_SUBJ?n=3" >/dev/null
check "the first Link continues after the page's last digest" [ "$(header Link)" = \
    "</v2/team/refs/referrers/$D_SUBJ?n=3&last=$(jq -r '.[2]' "$TMP/ref.all")>; rel=\"next\"" ]
walk_links "/v2/team/refs/referrers/$D_SUBJ?n=1&artifactType=application/vnd.test.sig%2Bjson"
check "filtered pages of n=1: one per matching referrer" [ "$PAGES" = 3 ]
check "filtered pages hold only the matching referrers, each once" [ "$(cat "$TMP/ref.walk")" = \
    "$(curl -s "$MLREG_URL/v2/team/refs/referrers/$D_SUBJ?artifactType=application/vnd.test.sig%2Bjson" |
        jq -c '[.manifests[].digest]')" ]
check "the filter's Link keeps the encoded artifactType" sh -c \
    "curl -s -D - -o /dev/null '$MLREG_URL/v2/team/refs/referrers/$D_SUBJ?n=1&artifactType=application/vnd.test.sig%2Bjson' |
        grep -q 'artifactType=application%2Fvnd.test.sig%2Bjson>; rel=\"next\"'"
expect_status "n=0 is the default page" 200 GET "/v2/team/refs/referrers/$D_SUBJ?n=0"
check "n=0 holds all 7" [ "$(jq '.manifests | length' "$TMP/body")" = 7 ]
expect_status "n=99999999 is clamped to the page cap" 200 GET \
    "/v2/team/refs/referrers/$D_SUBJ?n=99999999"
check "a clamped n holds all 7" [ "$(jq '.manifests | length' "$TMP/body")" = 7 ]
expect_status "last= a digest that is no referrer continues after it" 200 GET \
    "/v2/team/refs/referrers/$D_SUBJ?last=sha256:$(printf '%064d' 0)"
check "... which is every referrer" [ "$(jq '.manifests | length' "$TMP/body")" = 7 ]
for bad in "n=abc" "n=-1" "n=" "n=1.5" "n=%2B2" "n=1%00" "n=99999999999999999999999"; do
    expect_error "referrers with ?$bad: 400 UNSUPPORTED" 400 UNSUPPORTED GET \
        "/v2/team/refs/referrers/$D_SUBJ?$bad"
done
check "... and the message names n" grep -q '?n=' "$TMP/body"
for bad in "last=v1" "last=sha256:abc" "last=sha512:$(printf '%0128d' 0)" \
    "last=sha256:$(printf '%064d' 0 | tr 0 A)"; do
    expect_error "referrers with ?$(printf %.24s "$bad"): 400 UNSUPPORTED" 400 UNSUPPORTED GET \
        "/v2/team/refs/referrers/$D_SUBJ?$bad"
done
check "... and the message names last" grep -q '?last=' "$TMP/body"

# ---- releases are immutable --------------------------------------------------------------
printf '{}' >"$TMP/cfg"
D_CFG=$(post_blob team/model "$TMP/cfg")
head -c 1000 /dev/urandom >"$TMP/w1"
head -c 1000 /dev/urandom >"$TMP/w2"
D_W1=$(post_blob team/model "$TMP/w1")
D_W2=$(post_blob team/model "$TMP/w2")
release() { # release WEIGHTS_DIGEST > manifest
    jq -cn --arg c "$D_CFG" --arg w "$1" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2},
          layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:1000,
                   annotations:{"org.opencontainers.image.title":"model.bin",
                                "org.mlreg.kind":"weights"}}],
          annotations:{"org.mlreg.model":"team/model","org.mlreg.version":"2.0.0",
                       "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}'
}
release "$D_W1" >"$TMP/r1.json"
release "$D_W2" >"$TMP/r2.json"
D_R1=sha256:$(sha256_of "$TMP/r1.json")
expect_status "release 2.0.0 PUT" 201 PUT /v2/team/model/manifests/2.0.0 \
    -H "Content-Type: $MT" --data-binary @"$TMP/r1.json"
expect_error "re-pointing release 2.0.0: 409 DENIED" 409 DENIED PUT \
    /v2/team/model/manifests/2.0.0 -H "Content-Type: $MT" --data-binary @"$TMP/r2.json"
expect_status "release 2.0.0 still resolves" 200 GET /v2/team/model/manifests/2.0.0
check "release 2.0.0 still points at the first manifest" \
    [ "$(header Docker-Content-Digest)" = "$D_R1" ]
expect_error "DELETE of a release version tag: 409 DENIED" 409 DENIED DELETE \
    /v2/team/model/manifests/2.0.0
expect_error "DELETE of a release manifest by digest: 409 DENIED" 409 DENIED DELETE \
    "/v2/team/model/manifests/$D_R1"
expect_status "release still there after the refused deletes" 200 HEAD \
    "/v2/team/model/manifests/$D_R1" -I
sed 's/"org.opencontainers.image.title":"model.bin"/"org.opencontainers.image.title":"..\/etc"/' \
    "$TMP/r2.json" | sed 's/"2.0.0"/"2.0.1"/' >"$TMP/r3.json"
expect_error "release with a traversal title: 400 MANIFEST_INVALID" 400 MANIFEST_INVALID PUT \
    /v2/team/model/manifests/2.0.1 -H "Content-Type: $MT" --data-binary @"$TMP/r3.json"
expect_status "traversal release not stored" 404 GET /v2/team/model/manifests/2.0.1

# ---- junk on the wire ---------------------------------------------------------------------
printf 'GARBAGE\r\n\r\n' >"$TMP/junk.req"
raw_request "$TMP/junk.req"
check "server alive after a garbage request line" alive
{
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n'
    i=0
    while [ $i -lt 200 ]; do printf 'X-Pad-%d: %0500d\r\n' $i 0; i=$((i + 1)); done
    printf '\r\n'
} >"$TMP/huge.req"
raw_request "$TMP/huge.req"
check "server alive after oversized headers" alive
expect_error "body on a GET is refused" 400 UNSUPPORTED GET /v2/team/app/tags/list \
    --data-binary @"$TMP/p"

# ---- manifest over the size limit (server restarted with a small limit) ---------------------
stop_server
printf '{"limits":{"max_manifest_bytes":1024}}\n' >"$TMP/small.json"
start_server --config "$TMP/small.json" || finish
head -c 3000 /dev/zero | tr '\0' ' ' >"$TMP/pad"
jq -cn --rawfile pad "$TMP/pad" '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
    config:{mediaType:"application/vnd.oci.empty.v1+json",
            digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            size:2}, layers:[], annotations:{pad:$pad}}' >"$TMP/bigm.json"
expect_error "manifest over the limit: 413 SIZE_INVALID" 413 SIZE_INVALID PUT \
    /v2/team/app/manifests/big -H "Content-Type: $MT" --data-binary @"$TMP/bigm.json"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H "Content-Type: $MT" \
    -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/bigm.json" \
    "$MLREG_URL/v2/team/app/manifests/big")
if [ "$st" = 413 ] && code_is SIZE_INVALID; then ok "chunked manifest over the limit: 413"; else
    not_ok "chunked manifest over the limit: 413 (got $st)"; fi
expect_status "oversized manifest not stored" 404 GET /v2/team/app/manifests/big
check "server alive after oversized manifests" alive

finish
