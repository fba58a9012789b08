#!/bin/sh
# OCI distribution API flows against the real `mlreg serve`, driven by curl:
# /v2/ check, monolithic and chunked uploads (416 on out-of-order and
# overlapping chunks, upload still completes), streamed PATCH, upload status,
# cross-repo mount, blob Range, manifests by tag and digest, unknown blobs,
# tag pagination, referrers, the JSON API and error body shapes.
. "$(dirname "$0")/lib.sh"

start_server || finish

# code_is WANT: the OCI error code of the last body equals WANT.
code_is() { [ "$(jq -r '.errors[0].code' "$TMP/body" 2>/dev/null)" = "$1" ]; }
# expect_error NAME STATUS CODE METHOD PATH [curl args...]
expect_error() {
    name=$1; want=$2; code=$3; shift 3
    got=$(http_status "$@")
    if [ "$got" = "$want" ] && code_is "$code" &&
        [ "$(jq -r '.errors[0].message | type' "$TMP/body")" = string ]; then ok "$name"; else
        not_ok "$name (want $want $code, got $got: $(head -c 300 "$TMP/body"))"; fi
}
same_bytes() { cmp -s "$1" "$2"; }
# upload_path: the path part of the last Location header.
upload_path() { header Location | sed 's|^https\?://[^/]*||'; }

# ---- base ------------------------------------------------------------------
expect_status "GET /v2/ answers 200" 200 GET /v2/
check "GET /v2/ sends Docker-Distribution-API-Version" \
    [ "$(header Docker-Distribution-API-Version)" = "registry/2.0" ]
check "GET /v2/ body is {}" [ "$(cat "$TMP/body")" = "{}" ]
expect_status "GET /api/v1/health answers 200" 200 GET /api/v1/health
check "health says ok" [ "$(jq -r .status "$TMP/body")" = ok ]

# ---- monolithic POST ?digest= ----------------------------------------------
printf 'hello, registry' >"$TMP/small"
D_SMALL=sha256:$(sha256_of "$TMP/small")
expect_status "monolithic POST ?digest= answers 201" 201 POST \
    "/v2/team/app/blobs/uploads/?digest=$D_SMALL" --data-binary @"$TMP/small"
check "monolithic POST Location names the blob" \
    [ "$(upload_path)" = "/v2/team/app/blobs/$D_SMALL" ]
check "monolithic POST Docker-Content-Digest" [ "$(header Docker-Content-Digest)" = "$D_SMALL" ]
expect_status "HEAD blob answers 200" 200 HEAD "/v2/team/app/blobs/$D_SMALL" -I
check "HEAD blob Content-Length is the size" [ "$(header Content-Length)" = 15 ]
check "HEAD blob Docker-Content-Digest" [ "$(header Docker-Content-Digest)" = "$D_SMALL" ]
expect_status "GET blob answers 200" 200 GET "/v2/team/app/blobs/$D_SMALL"
check "GET blob returns the bytes" same_bytes "$TMP/body" "$TMP/small"
check "GET blob Content-Type octet-stream" \
    [ "$(header Content-Type)" = application/octet-stream ]
check "GET blob Accept-Ranges bytes" [ "$(header Accept-Ranges)" = bytes ]
expect_error "blob unknown in another repo: 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN GET \
    "/v2/other/blobs/$D_SMALL"

# zero-byte blob
: >"$TMP/empty"
D_EMPTY=sha256:$(sha256_of "$TMP/empty")
expect_status "zero-byte monolithic upload answers 201" 201 POST \
    "/v2/team/app/blobs/uploads/?digest=$D_EMPTY" --data-binary @"$TMP/empty"
expect_status "zero-byte blob GET answers 200" 200 GET "/v2/team/app/blobs/$D_EMPTY"
check "zero-byte blob is empty" [ ! -s "$TMP/body" ]

# ---- POST then PUT with the whole body ---------------------------------------
head -c 300000 /dev/urandom >"$TMP/mid"
D_MID=sha256:$(sha256_of "$TMP/mid")
expect_status "POST starts an upload (202)" 202 POST /v2/team/app/blobs/uploads/
LOC=$(upload_path)
UUID=$(header Docker-Upload-UUID)
check "upload Location names the session" \
    [ "$LOC" = "/v2/team/app/blobs/uploads/$UUID" ]
check "new upload Range is 0-0" [ "$(header Range)" = 0-0 ]
expect_status "PUT ?digest= with the whole body answers 201" 201 PUT "$LOC?digest=$D_MID" \
    --data-binary @"$TMP/mid"
check "PUT Location names the blob" [ "$(upload_path)" = "/v2/team/app/blobs/$D_MID" ]
expect_status "blob from POST+PUT is readable" 200 GET "/v2/team/app/blobs/$D_MID"
check "blob from POST+PUT has the right bytes" same_bytes "$TMP/body" "$TMP/mid"
expect_error "finished upload session is gone" 404 BLOB_UPLOAD_UNKNOWN GET "$LOC"

# ---- chunked PATCH with Content-Range ----------------------------------------
head -c 250000 /dev/urandom >"$TMP/big"
D_BIG=sha256:$(sha256_of "$TMP/big")
dd if="$TMP/big" of="$TMP/c1" bs=1000 count=100 2>/dev/null           # 0-99999
dd if="$TMP/big" of="$TMP/c2" bs=1000 skip=100 count=100 2>/dev/null  # 100000-199999
dd if="$TMP/big" of="$TMP/c3" bs=1000 skip=200 2>/dev/null            # 200000-249999
expect_status "POST starts a chunked upload" 202 POST /v2/team/app/blobs/uploads/
LOC=$(upload_path)
expect_status "first chunk answers 202" 202 PATCH "$LOC" --data-binary @"$TMP/c1" \
    -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-99999'
check "first chunk Range is 0-99999" [ "$(header Range)" = 0-99999 ]
expect_error "out-of-order chunk answers 416" 416 BLOB_UPLOAD_INVALID PATCH "$LOC" \
    --data-binary @"$TMP/c3" -H 'Content-Range: 200000-249999'
check "416 reply carries the current Range" [ "$(header Range)" = 0-99999 ]
expect_status "upload status answers 204" 204 GET "$LOC"
check "offset unchanged after the out-of-order chunk" [ "$(header Range)" = 0-99999 ]
head -c 100 "$TMP/c1" >"$TMP/c1_head"
expect_error "overlapping chunk answers 416" 416 BLOB_UPLOAD_INVALID PATCH "$LOC" \
    --data-binary @"$TMP/c1_head" -H 'Content-Range: 99950-100049'
expect_error "Content-Length shorter than Content-Range answers 416" 416 BLOB_UPLOAD_INVALID \
    PATCH "$LOC" --data-binary @"$TMP/c1_head" -H 'Content-Range: 100000-199999'
expect_status "status after refused chunks" 204 GET "$LOC"
check "offset unchanged after the refused chunks" [ "$(header Range)" = 0-99999 ]
expect_status "second chunk answers 202" 202 PATCH "$LOC" --data-binary @"$TMP/c2" \
    -H 'Content-Range: 100000-199999'
check "second chunk Range is 0-199999" [ "$(header Range)" = 0-199999 ]
expect_status "third chunk answers 202" 202 PATCH "$LOC" --data-binary @"$TMP/c3" \
    -H 'Content-Range: bytes 200000-249999/250000'
expect_status "PUT ?digest= without a body completes the chunked upload" 201 PUT \
    "$LOC?digest=$D_BIG"
expect_status "chunked blob is readable" 200 GET "/v2/team/app/blobs/$D_BIG"
check "chunked blob has the right bytes" same_bytes "$TMP/body" "$TMP/big"

# ---- PATCH without Content-Range (streamed, chunked transfer encoding) -------
expect_status "POST starts a streamed upload" 202 POST /v2/team/app/blobs/uploads/
LOC=$(upload_path)
st=$(curl -s -o /dev/null -D "$TMP/headers" -w '%{http_code}' -X PATCH -T - \
    "$MLREG_URL$LOC" <"$TMP/c1")
check "streamed PATCH (curl -T -) answers 202" [ "$st" = 202 ]
check "streamed PATCH Range is 0-99999" [ "$(header Range)" = 0-99999 ]
st=$(curl -s -o /dev/null -D "$TMP/headers" -w '%{http_code}' -X PATCH \
    -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/c2" "$MLREG_URL$LOC")
check "second streamed PATCH appends (202)" [ "$st" = 202 ]
check "second streamed PATCH Range is 0-199999" [ "$(header Range)" = 0-199999 ]
expect_status "PUT with the final chunk completes the streamed upload" 201 PUT \
    "$LOC?digest=$D_BIG" --data-binary @"$TMP/c3"
expect_status "streamed blob is readable" 200 GET "/v2/team/app/blobs/$D_BIG"
check "streamed blob has the right bytes" same_bytes "$TMP/body" "$TMP/big"

# ---- upload cancel -------------------------------------------------------------
expect_status "POST for a cancelled upload" 202 POST /v2/team/app/blobs/uploads/
LOC=$(upload_path)
expect_status "DELETE upload answers 204" 204 DELETE "$LOC"
expect_error "cancelled upload is unknown" 404 BLOB_UPLOAD_UNKNOWN GET "$LOC"
expect_error "PATCH on a cancelled upload is 404" 404 BLOB_UPLOAD_UNKNOWN PATCH "$LOC" \
    --data-binary @"$TMP/small"
expect_error "upload of another repository is unknown" 404 BLOB_UPLOAD_UNKNOWN GET \
    "/v2/other/blobs/uploads/$UUID"

# ---- cross-repository mount ------------------------------------------------------
expect_status "blob not yet visible in team/other" 404 HEAD "/v2/team/other/blobs/$D_SMALL" -I
expect_status "mount from a repo that has the blob answers 201" 201 POST \
    "/v2/team/other/blobs/uploads/?mount=$D_SMALL&from=team/app"
check "mount Location names the blob" [ "$(upload_path)" = "/v2/team/other/blobs/$D_SMALL" ]
expect_status "mounted blob is visible" 200 HEAD "/v2/team/other/blobs/$D_SMALL" -I
expect_status "mount from a repo lacking the blob falls back to an upload (202)" 202 POST \
    "/v2/team/third/blobs/uploads/?mount=$D_SMALL&from=nothing/here"
check "fallback upload has a session Location" \
    expr "$(upload_path)" : '/v2/team/third/blobs/uploads/[0-9a-f-]\{36\}$' >/dev/null
expect_status "blob still not visible in the repo of the failed mount" 404 HEAD \
    "/v2/team/third/blobs/$D_SMALL" -I

# ---- Range on blob GET ------------------------------------------------------------
expect_status "Range bytes=1-4 answers 206" 206 GET "/v2/team/app/blobs/$D_SMALL" \
    -H 'Range: bytes=1-4'
check "Range bytes=1-4 returns the right bytes" [ "$(cat "$TMP/body")" = "ello" ]
check "206 Content-Range" [ "$(header Content-Range)" = "bytes 1-4/15" ]
expect_status "Range bytes=7- answers 206" 206 GET "/v2/team/app/blobs/$D_SMALL" \
    -H 'Range: bytes=7-'
check "Range bytes=7- returns the tail" [ "$(cat "$TMP/body")" = "registry" ]
expect_status "Range bytes=-3 answers 206" 206 GET "/v2/team/app/blobs/$D_SMALL" \
    -H 'Range: bytes=-3'
check "Range bytes=-3 returns the last 3 bytes" [ "$(cat "$TMP/body")" = "try" ]
expect_status "Range in a big blob answers 206" 206 GET "/v2/team/app/blobs/$D_BIG" \
    -H 'Range: bytes=100000-199999'
check "Range in a big blob returns exactly that slice" same_bytes "$TMP/body" "$TMP/c2"
expect_status "Range past the end answers 416" 416 GET "/v2/team/app/blobs/$D_SMALL" \
    -H 'Range: bytes=100-200'
check "416 Content-Range names the size" [ "$(header Content-Range)" = "bytes */15" ]

# ---- manifests ---------------------------------------------------------------------
printf '{}' >"$TMP/cfg"
D_CFG=$(post_blob team/app "$TMP/cfg")
check "empty config blob has the well-known digest" \
    [ "$D_CFG" = sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a ]
MT=application/vnd.oci.image.manifest.v1+json
jq -cn --arg c "$D_CFG" --arg l "$D_SMALL" --arg mt "$MT" \
    '{schemaVersion:2, mediaType:$mt,
      config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:2},
      layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar", digest:$l, size:15}]}' \
    >"$TMP/m1.json"
D_M1=sha256:$(sha256_of "$TMP/m1.json")
expect_status "manifest PUT by tag answers 201" 201 PUT /v2/team/app/manifests/v1 \
    -H "Content-Type: $MT" --data-binary @"$TMP/m1.json"
check "manifest PUT Docker-Content-Digest is sha256 of the bytes" \
    [ "$(header Docker-Content-Digest)" = "$D_M1" ]
check "manifest PUT Location" [ "$(upload_path)" = "/v2/team/app/manifests/$D_M1" ]
expect_status "manifest GET by tag answers 200" 200 GET /v2/team/app/manifests/v1
check "manifest GET returns the bytes as pushed" same_bytes "$TMP/body" "$TMP/m1.json"
check "manifest GET Content-Type is the pushed one" [ "$(header Content-Type)" = "$MT" ]
check "manifest GET Docker-Content-Digest" [ "$(header Docker-Content-Digest)" = "$D_M1" ]
expect_status "manifest HEAD by digest answers 200" 200 HEAD "/v2/team/app/manifests/$D_M1" -I
check "manifest HEAD Content-Length" \
    [ "$(header Content-Length)" = "$(wc -c <"$TMP/m1.json" | tr -d ' ')" ]
check "manifest HEAD Docker-Content-Digest" [ "$(header Docker-Content-Digest)" = "$D_M1" ]
check "manifest HEAD Content-Type" [ "$(header Content-Type)" = "$MT" ]
expect_status "manifest GET by digest answers 200" 200 GET "/v2/team/app/manifests/$D_M1"
check "manifest GET by digest returns the bytes" same_bytes "$TMP/body" "$TMP/m1.json"
expect_status "manifest PUT by digest answers 201" 201 PUT "/v2/team/app/manifests/$D_M1" \
    -H "Content-Type: $MT" --data-binary @"$TMP/m1.json"
expect_error "unknown tag: 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN GET \
    /v2/team/app/manifests/nope
expect_error "unknown digest: 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN GET \
    /v2/team/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000

# manifest naming a blob the repository lacks
jq -cn --arg c "$D_CFG" --arg mt "$MT" \
    '{schemaVersion:2, mediaType:$mt,
      config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:2},
      layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar",
               digest:"sha256:1111111111111111111111111111111111111111111111111111111111111111",
               size:3}]}' >"$TMP/m_unknown.json"
expect_error "manifest with an unknown layer: 400 MANIFEST_BLOB_UNKNOWN" 400 \
    MANIFEST_BLOB_UNKNOWN PUT /v2/team/app/manifests/bad -H "Content-Type: $MT" \
    --data-binary @"$TMP/m_unknown.json"
expect_status "refused manifest was not stored" 404 GET /v2/team/app/manifests/bad

# ---- tags list -----------------------------------------------------------------------
for t in v3 v1 v5 v2 v4; do
    curl -s -o /dev/null -X PUT -H "Content-Type: $MT" --data-binary @"$TMP/m1.json" \
        "$MLREG_URL/v2/team/app/manifests/$t"
done
expect_status "tags list answers 200" 200 GET /v2/team/app/tags/list
check "tags list is sorted" [ "$(jq -c .tags "$TMP/body")" = '["v1","v2","v3","v4","v5"]' ]
check "tags list names the repository" [ "$(jq -r .name "$TMP/body")" = team/app ]
check "full tags list has no Link" [ -z "$(header Link)" ]
expect_status "tags list n=2" 200 GET '/v2/team/app/tags/list?n=2'
check "n=2 gives the first two tags" [ "$(jq -c .tags "$TMP/body")" = '["v1","v2"]' ]
check "n=2 Link points at the next page" \
    [ "$(header Link)" = '</v2/team/app/tags/list?n=2&last=v2>; rel="next"' ]
expect_status "tags list n=2&last=v2" 200 GET '/v2/team/app/tags/list?n=2&last=v2'
check "last=v2 continues after v2" [ "$(jq -c .tags "$TMP/body")" = '["v3","v4"]' ]
expect_status "tags list n=2&last=v4" 200 GET '/v2/team/app/tags/list?n=2&last=v4'
check "last page has the rest" [ "$(jq -c .tags "$TMP/body")" = '["v5"]' ]
check "last page has no Link" [ -z "$(header Link)" ]
expect_error "tags of an unknown repository: 404 NAME_UNKNOWN" 404 NAME_UNKNOWN GET \
    /v2/no/such/repo/tags/list
expect_error "tags list with a bad n: 400" 400 UNSUPPORTED GET '/v2/team/app/tags/list?n=abc'

# ---- referrers ---------------------------------------------------------------------------
jq -cn --arg c "$D_CFG" --arg l "$D_SMALL" --arg s "$D_M1" --arg mt "$MT" \
    --argjson ss "$(wc -c <"$TMP/m1.json")" \
    '{schemaVersion:2, mediaType:$mt, artifactType:"application/vnd.example.sbom",
      config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2},
      layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar", digest:$l, size:15}],
      subject:{mediaType:$mt, digest:$s, size:$ss},
      annotations:{"org.example.note":"sbom"}}' >"$TMP/ref.json"
D_REF=sha256:$(sha256_of "$TMP/ref.json")
expect_status "referrer PUT answers 201" 201 PUT "/v2/team/app/manifests/$D_REF" \
    -H "Content-Type: $MT" --data-binary @"$TMP/ref.json"
check "referrer PUT answers OCI-Subject" [ "$(header OCI-Subject)" = "$D_M1" ]
expect_status "referrers answers 200" 200 GET "/v2/team/app/referrers/$D_M1"
check "referrers Content-Type is an OCI index" \
    [ "$(header Content-Type)" = application/vnd.oci.image.index.v1+json ]
check "referrers lists the referrer" \
    [ "$(jq -r '.manifests[0].digest' "$TMP/body")" = "$D_REF" ]
check "referrers descriptor carries artifactType" \
    [ "$(jq -r '.manifests[0].artifactType' "$TMP/body")" = application/vnd.example.sbom ]
expect_status "referrers with a matching artifactType" 200 GET \
    "/v2/team/app/referrers/$D_M1?artifactType=application/vnd.example.sbom"
check "filtered referrers keep the match" [ "$(jq '.manifests | length' "$TMP/body")" = 1 ]
check "filtered referrers answer OCI-Filters-Applied" \
    [ "$(header OCI-Filters-Applied)" = artifactType ]
expect_status "referrers with another artifactType" 200 GET \
    "/v2/team/app/referrers/$D_M1?artifactType=application/vnd.example.other"
check "filtered referrers drop the others" [ "$(jq '.manifests | length' "$TMP/body")" = 0 ]
expect_status "referrers of an unknown subject answer 200" 200 GET \
    /v2/team/app/referrers/sha256:2222222222222222222222222222222222222222222222222222222222222222
check "referrers of an unknown subject are empty" \
    [ "$(jq '.manifests | length' "$TMP/body")" = 0 ]
expect_error "referrers with a bad digest: 400 DIGEST_INVALID" 400 DIGEST_INVALID GET \
    /v2/team/app/referrers/sha256:abc

# ---- a release and the JSON API ------------------------------------------------------------
head -c 5000 /dev/urandom >"$TMP/weights.bin"
printf '{"metrics":{"accuracy":0.91,"retrieval":{"hit_rate":0.5}}}' >"$TMP/eval.json"
D_CFG2=$(post_blob team/classifier "$TMP/cfg")
D_W=$(post_blob team/classifier "$TMP/weights.bin")
D_E=$(post_blob team/classifier "$TMP/eval.json")
jq -cn --arg c "$D_CFG2" --arg w "$D_W" --arg e "$D_E" \
    --argjson ew "$(wc -c <"$TMP/eval.json")" \
    '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
      artifactType:"application/vnd.mlreg.release.v1+json",
      config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2},
      layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:5000,
               annotations:{"org.opencontainers.image.title":"weights.bin",
                            "org.mlreg.kind":"weights"}},
              {mediaType:"application/vnd.mlreg.eval-report.v1+json", digest:$e, size:$ew,
               annotations:{"org.opencontainers.image.title":"eval.json",
                            "org.mlreg.kind":"eval-report"}}],
      annotations:{"org.mlreg.model":"team/classifier","org.mlreg.version":"1.0.0",
                   "org.mlreg.git-sha":"0123456789abcdef0123456789abcdef01234567",
                   "org.opencontainers.image.created":"2026-01-02T03:04:05Z"}}' >"$TMP/rel.json"
D_REL=sha256:$(sha256_of "$TMP/rel.json")
expect_status "release manifest PUT answers 201" 201 PUT /v2/team/classifier/manifests/1.0.0 \
    -H "Content-Type: $MT" --data-binary @"$TMP/rel.json"
check "release PUT digest" [ "$(header Docker-Content-Digest)" = "$D_REL" ]
expect_status "identical release PUT again is a no-op (201)" 201 PUT \
    /v2/team/classifier/manifests/1.0.0 -H "Content-Type: $MT" --data-binary @"$TMP/rel.json"
expect_status "GET /api/v1/models" 200 GET /api/v1/models
check "models list has team/classifier" \
    jq -e '.models | map(.name) | index("team/classifier") != null' "$TMP/body" >/dev/null
expect_status "GET /api/v1/models/team/classifier" 200 GET /api/v1/models/team/classifier
check "model lists release 1.0.0 with its digest" \
    [ "$(jq -r '.releases[0].version + " " + .releases[0].digest' "$TMP/body")" = "1.0.0 $D_REL" ]
expect_status "GET /api/v1/models/team/classifier/versions/1.0.0" 200 GET \
    /api/v1/models/team/classifier/versions/1.0.0
check "release has its metrics" [ "$(jq -r '.metrics.accuracy' "$TMP/body")" = 0.91 ]
check "release has nested metrics flattened" \
    [ "$(jq -r '.metrics["retrieval.hit_rate"]' "$TMP/body")" = 0.5 ]
check "release lists its files" [ "$(jq -r '.files | length' "$TMP/body")" = 2 ]
expect_error "unknown model: 404" 404 NAME_UNKNOWN GET /api/v1/models/no/such
expect_error "unknown version: 404" 404 MANIFEST_UNKNOWN GET \
    /api/v1/models/team/classifier/versions/9.9.9
expect_error "bad model name in the API: 400" 400 NAME_INVALID GET /api/v1/models/Bad

# ---- deletes -------------------------------------------------------------------------------------
expect_status "DELETE a plain tag answers 202" 202 DELETE /v2/team/app/manifests/v5
expect_status "deleted tag is gone" 404 GET /v2/team/app/manifests/v5
expect_status "DELETE blob answers 202" 202 DELETE "/v2/team/other/blobs/$D_SMALL"
expect_status "deleted blob is gone from that repo" 404 HEAD "/v2/team/other/blobs/$D_SMALL" -I
expect_status "blob stays in the repo that still links it" 200 HEAD \
    "/v2/team/app/blobs/$D_SMALL" -I
expect_error "DELETE an unknown blob: 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN DELETE \
    /v2/team/other/blobs/sha256:3333333333333333333333333333333333333333333333333333333333333333

# ---- routing errors -----------------------------------------------------------------------------
expect_error "unknown route: 404" 404 NAME_UNKNOWN GET /nope
expect_error "wrong method: 405" 405 UNSUPPORTED POST /v2/team/app/tags/list
check "405 names the allowed methods" [ "$(header Allow)" = "GET, HEAD" ]

# keep-alive: two requests on one connection reuse it
curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "$MLREG_URL/v2/" "$MLREG_URL/v2/" \
    >"$TMP/conns"
check "bodiless GETs keep the connection alive" [ "$(tr -d '\n' <"$TMP/conns")" = 10 ]

finish
