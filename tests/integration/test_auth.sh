#!/bin/sh
# test_auth.sh: tokens and roles on the real server (docs/promotions-api.md,
# "Identity and roles"), driven with curl and skopeo: without tokens only
# loopback is served; with tokens a missing or wrong token is 401 (with a
# Basic challenge, so OCI clients retry), a valid token without the role is
# 403 and nothing changes: a push-only token cannot promote or approve, a
# promote:staging token cannot promote to production, a prefix-limited role
# stays inside its prefix; Basic credentials (user:token) work for skopeo;
# tokens never reach the log.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W" "$TMP/conf"
jqt() { jq -e "$@" >/dev/null; }
err_code() { jq -r '.errors[0].code' "$TMP/body"; }
T_PUSH=$(tok)
T_READ=$(tok)
T_STAGE=$(tok)
T_VISION=$(tok)
T_ADMIN=$(tok)
cat >"$TMP/conf/mlreg.json" <<EOF
{ "tokens": [
    { "name": "pusher", "sha256": "$(hash "$T_PUSH")", "roles": ["push"] },
    { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] },
    { "name": "stager", "sha256": "$(hash "$T_STAGE")", "roles": ["read", "promote:staging"] },
    { "name": "vision", "sha256": "$(hash "$T_VISION")",
      "roles": ["read", "promote:staging@vision", "approve:staging@vision"] },
    { "name": "root", "sha256": "$(hash "$T_ADMIN")", "roles": ["admin"] } ] }
EOF

# ---- listening: loopback without tokens, anything with them ----------------------------
timeout 10 "$MLREG" serve --listen 0.0.0.0:0 --data "$TMP/refused" >/dev/null 2>"$TMP/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "no tokens are configured" "$TMP/err"; then
    ok "without tokens a non-loopback listen is refused"
else not_ok "without tokens a non-loopback listen is refused (exit $rc: $(cat "$TMP/err"))"; fi
check "the refused start created no data dir" [ ! -e "$TMP/refused" ]
"$MLREG" serve --config "$TMP/conf/mlreg.json" --listen 0.0.0.0:0 --data "$TMP/any" \
    --insecure-http --ready-file "$TMP/any.ready" 2>"$TMP/any.log" &
APID=$!
i=0
while [ ! -s "$TMP/any.ready" ] && [ $i -lt 100 ] && kill -0 $APID 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
check "with tokens (and --insecure-http, no TLS) the server listens on 0.0.0.0" \
    [ -s "$TMP/any.ready" ]
kill -TERM $APID 2>/dev/null
wait $APID

start_server --config "$TMP/conf/mlreg.json" || finish
A_PUSH="Authorization: Bearer $T_PUSH"
A_READ="Authorization: Bearer $T_READ"
A_STAGE="Authorization: Bearer $T_STAGE"
A_VISION="Authorization: Bearer $T_VISION"
A_ADMIN="Authorization: Bearer $T_ADMIN"

# ---- 401 --------------------------------------------------------------------------------
expect_status "GET /v2/ without a token is 401" 401 GET /v2/
check "... with a Basic challenge for OCI clients" [ "$(header WWW-Authenticate)" = 'Basic realm="mlreg"' ]
expect_status "GET /v2/ with a token is 200" 200 GET /v2/ -H "$A_READ"
expect_status "GET /v2/ with a wrong token is 401" 401 GET /v2/ -H "Authorization: Bearer nope"
expect_status "the health check needs no token" 200 GET /api/v1/health
expect_status "the API without a token is 401" 401 GET /api/v1/models
check "... UNAUTHORIZED" [ "$(err_code)" = UNAUTHORIZED ]
expect_status "the API with a wrong token is 401" 401 GET /api/v1/models -H "Authorization: Bearer x$T_READ"
expect_status "an unknown scheme is 401" 401 GET /api/v1/models -H "Authorization: Token $T_READ"
expect_status "the reader lists models" 200 GET /api/v1/models -H "$A_READ"

# ---- pushing needs push ------------------------------------------------------------------
printf '{}' >"$W/cfg"
printf 'weights' >"$W/w"
printf '{"metrics":{"accuracy":0.9}}' >"$W/e"
up() { # FILE AUTH MODEL -> status
    curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "$2" --data-binary @"$1" \
        "$MLREG_URL/v2/$3/blobs/uploads/?digest=sha256:$(sha256_of "$1")"
}
check "the reader cannot upload a blob (403)" [ "$(up "$W/w" "$A_READ" demo)" = 403 ]
check "... DENIED" [ "$(err_code)" = DENIED ]
check "an upload without a token is 401" [ "$(up "$W/w" "X-None: 1" demo)" = 401 ]
expect_status "... and the blob was not stored" 401 HEAD "/v2/demo/blobs/sha256:$(sha256_of "$W/w")"
for f in cfg w e; do
    check "the pusher uploads $f to demo" [ "$(up "$W/$f" "$A_PUSH" demo)" = 201 ]
    check "the pusher uploads $f to vision/det" [ "$(up "$W/$f" "$A_PUSH" vision/det)" = 201 ]
done
manifest() { # MODEL
    jq -cn --arg m "$1" --arg w "sha256:$(sha256_of "$W/w")" --arg e "sha256:$(sha256_of "$W/e")" \
        --argjson es "$(wc -c <"$W/e")" '{schemaVersion:2,
        mediaType:"application/vnd.oci.image.manifest.v1+json",
        artifactType:"application/vnd.mlreg.release.v1+json",
        config:{mediaType:"application/vnd.oci.empty.v1+json",
                digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
        layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:7,
                 annotations:{"org.opencontainers.image.title":"w.bin","org.mlreg.kind":"weights"}},
                {mediaType:"application/vnd.mlreg.eval-report.v1+json", digest:$e, size:$es,
                 annotations:{"org.opencontainers.image.title":"eval.json","org.mlreg.kind":"eval-report"}}],
        annotations:{"org.mlreg.model":$m,"org.mlreg.version":"1.0",
                     "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$W/m.json"
}
manifest demo
MT='Content-Type: application/vnd.oci.image.manifest.v1+json'
expect_status "the reader cannot PUT a manifest" 403 PUT /v2/demo/manifests/1.0 -H "$A_READ" \
    -H "$MT" --data-binary @"$W/m.json"
expect_status "... so the release does not exist" 404 GET /api/v1/models/demo/versions/1.0 -H "$A_READ"
expect_status "the pusher pushes demo@1.0" 201 PUT /v2/demo/manifests/1.0 -H "$A_PUSH" -H "$MT" \
    --data-binary @"$W/m.json"
manifest vision/det
expect_status "the pusher pushes vision/det@1.0" 201 PUT /v2/vision/det/manifests/1.0 -H "$A_PUSH" \
    -H "$MT" --data-binary @"$W/m.json"
expect_status "the push-only token cannot read" 403 GET /api/v1/models/demo/versions/1.0 -H "$A_PUSH"

# ---- promote / approve need their stage role; nothing changes on 403 ------------------------
stages() { curl -s -H "$A_READ" "$MLREG_URL/api/v1/models/$1/stages"; }
promote() { # NAME WANT AUTH MODEL STAGE
    expect_status "$1" "$2" POST "/api/v1/models/$4/promotions" -H "$3" \
        --data-binary "{\"version\":\"1.0\",\"to\":\"$5\"}"
}
BEFORE=$(stages demo)
promote "a push-only token cannot promote (403)" 403 "$A_PUSH" demo staging
check "... DENIED naming the missing role" sh -c \
    "[ \"\$(jq -r '.errors[0].code' $TMP/body)\" = DENIED ] && jq -r '.errors[0].message' $TMP/body | grep -q 'promote:staging'"
promote "a dry run needs the role too" 403 "$A_PUSH" demo staging
expect_status "a push-only token cannot approve (403)" 403 POST \
    /api/v1/models/demo/versions/1.0/approvals -H "$A_PUSH" --data-binary '{"stage":"staging"}'
check "nothing moved and no approval was recorded" sh -c \
    "[ \"\$(curl -s -H '$A_READ' $MLREG_URL/api/v1/models/demo/versions/1.0/approvals | jq '.approvals | length')\" = 0 ]"
promote "promote:staging cannot promote to production (403)" 403 "$A_STAGE" demo production
check "nothing moved after the refusals" [ "$(stages demo)" = "$BEFORE" ]
check "no promotion was recorded for refused tokens" sh -c \
    "[ \"\$(curl -s -H '$A_READ' $MLREG_URL/api/v1/models/demo/promotions | jq '.promotions | length')\" = 0 ]"
promote "promote:staging promotes to staging" 200 "$A_STAGE" demo staging
check "... recorded with the token's name as actor" jqt '.promotion.actor == "stager"' "$TMP/body"
expect_status "rollback needs promote:<stage> (push-only: 403)" 403 POST \
    /api/v1/models/demo/stages/staging/rollback -H "$A_PUSH" --data-binary '{}'
promote "a role limited to @vision cannot promote demo" 403 "$A_VISION" demo staging
promote "a role limited to @vision promotes vision/det" 200 "$A_VISION" vision/det staging
expect_status "approve:staging@vision approves vision/det" 201 POST \
    /api/v1/models/vision/det/versions/1.0/approvals -H "$A_VISION" --data-binary '{"stage":"staging"}'
expect_status "an unknown approval stage is 400 STAGE_UNKNOWN" 400 POST \
    /api/v1/models/vision/det/versions/1.0/approvals -H "$A_VISION" --data-binary '{"stage":"qa"}'
check "... STAGE_UNKNOWN" [ "$(err_code)" = STAGE_UNKNOWN ]

# ---- keys need admin ---------------------------------------------------------------------
if command -v minisign >/dev/null 2>&1; then
    minisign -G -W -p "$W/k.pub" -s "$W/k.key" >/dev/null 2>&1
    jq -n --rawfile p "$W/k.pub" '{name:"k", role:"release", public_key:$p}' >"$TMP/req.json"
    expect_status "trusting a key needs admin (stager: 403)" 403 POST /api/v1/keys -H "$A_STAGE" \
        --data-binary @"$TMP/req.json"
    check "... and no key was added" sh -c \
        "[ \"\$(curl -s -H '$A_READ' $MLREG_URL/api/v1/keys | jq '.keys | length')\" = 0 ]"
    expect_status "admin trusts a key" 201 POST /api/v1/keys -H "$A_ADMIN" --data-binary @"$TMP/req.json"
else
    not_ok "minisign is installed"
fi

# ---- Basic credentials: curl -u and skopeo ----------------------------------------------------
expect_status "Basic credentials (user:token) read a stage tag" 200 GET /v2/demo/manifests/staging \
    -u "anyone:$T_READ"
check "... the manifest of the release in staging" jqt '.annotations["org.mlreg.model"] == "demo"' "$TMP/body"
expect_status "Basic with a wrong token is 401" 401 GET /v2/demo/manifests/staging -u "anyone:nope"
if command -v skopeo >/dev/null 2>&1; then
    HOSTPORT=${MLREG_URL#http://}
    if skopeo inspect --raw --tls-verify=false --creds "ci:$T_READ" \
        "docker://$HOSTPORT/demo:staging" >"$TMP/sk.json" 2>"$TMP/sk.err" &&
        jqt '.annotations["org.mlreg.model"] == "demo"' "$TMP/sk.json"; then
        ok "skopeo with --creds reads demo:staging"
    else
        not_ok "skopeo with --creds reads demo:staging ($(cat "$TMP/sk.err"))"
    fi
    if skopeo inspect --raw --tls-verify=false "docker://$HOSTPORT/demo:staging" \
        >/dev/null 2>"$TMP/sk.err"; then
        not_ok "skopeo without credentials is refused"
    else
        ok "skopeo without credentials is refused"
    fi
else
    not_ok "skopeo is installed"
fi

check "the access log never holds a token" sh -c \
    "! grep -qF -e '$T_PUSH' -e '$T_READ' -e '$T_STAGE' -e '$T_VISION' -e '$T_ADMIN' '$TMP/server.log'"
finish
