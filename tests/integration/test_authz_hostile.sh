#!/bin/sh
# test_authz_hostile.sh: what a token may do, attacked over HTTP on the real
# server (docs/promotions-api.md, "Identity and roles", "Image bindings").
#
#   - Model prefixes match whole name components: tokens limited to @a/b
#     read, push, promote and approve on a/b and a/b/c, and get 403 on
#     a/bc, a/b-x and a; a config with @a/b/ does not start and says what
#     to write instead.
#   - A push token cannot redirect what a stage deploys: binding an image to
#     a release that production holds needs promote:production, so
#     `mlreg resolve M:production --image` keeps answering the owner's image;
#     a release no stage has held still takes push; the owner re-binding the
#     older good image makes it current again, with an audit entry.
#   - Only keys of role release count toward a `signed` gate: a release
#     signed only by a trusted approver key is refused saying why; signed by
#     the release key it passes.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W" "$TMP/conf"
jqt() { jq -e "$@" >/dev/null; }
# body_has NAME TEXT: the last response body contains TEXT.
body_has() {
    if grep -qF -- "$2" "$TMP/body"; then ok "$1"; else
        not_ok "$1 (body lacks '$2': $(head -c 300 "$TMP/body"))"; fi
}

# ---- a prefix that is not a model name stops the start ---------------------------------
printf '{"tokens":[{"name":"t","sha256":"%s","roles":["read","push@a/b/"]}]}\n' \
    "$(hash x)" >"$TMP/bad.json"
timeout 10 "$MLREG" serve --config "$TMP/bad.json" --listen 127.0.0.1:0 \
    --data "$TMP/refused" >/dev/null 2>"$TMP/err"
rc=$?
if [ $rc -eq 2 ] && grep -qF "config key 'tokens[0].roles[1]': role 'push@a/b/': model prefix 'a/b/' is not a model name; write 'a/b': a prefix grants the model a/b and every model under a/b/" "$TMP/err"; then
    ok "a role prefix with a trailing '/' stops the start, naming the key and what to write"
else not_ok "a role prefix with a trailing '/' stops the start (exit $rc: $(head -c 300 "$TMP/err"))"; fi
check "... and the refused start created no data dir" [ ! -e "$TMP/refused" ]

# ---- the server and its tokens -----------------------------------------------------------
T_ADMIN=$(tok)
T_AB_READ=$(tok)
T_AB_PUSH=$(tok)
T_AB_PROMOTE=$(tok)
T_AB_APPROVE=$(tok)
T_OWNER=$(tok)
T_PROD=$(tok)
T_STAGER=$(tok)
T_ATTACK=$(tok)
T_READER=$(tok)
mkdir -p "$TMP/conf/keys"
for k in rel appr; do
    "$MLREG" key generate --out "$TMP/conf/keys/$k" --no-password >/dev/null 2>&1 ||
        not_ok "key generate $k"
done
cat >"$TMP/conf/mlreg.json" <<EOF
{ "trusted_keys": [ { "name": "release-bot", "file": "keys/rel.pub", "role": "release" },
                    { "name": "alice", "file": "keys/appr.pub", "role": "approver" } ],
  "models": { "signed/clf": { "gates": { "production": [ { "require": "signed", "min": 1 } ] } } },
  "tokens": [
    { "name": "root", "sha256": "$(hash "$T_ADMIN")", "roles": ["admin"] },
    { "name": "ab-read", "sha256": "$(hash "$T_AB_READ")", "roles": ["read@a/b"] },
    { "name": "ab-push", "sha256": "$(hash "$T_AB_PUSH")", "roles": ["push@a/b"] },
    { "name": "ab-promote", "sha256": "$(hash "$T_AB_PROMOTE")", "roles": ["promote:production@a/b"] },
    { "name": "ab-approve", "sha256": "$(hash "$T_AB_APPROVE")", "roles": ["approve:production@a/b"] },
    { "name": "owner", "sha256": "$(hash "$T_OWNER")", "roles": ["read", "push"] },
    { "name": "prod", "sha256": "$(hash "$T_PROD")", "roles": ["read", "promote:production"] },
    { "name": "stager", "sha256": "$(hash "$T_STAGER")", "roles": ["read", "promote:staging"] },
    { "name": "attacker", "sha256": "$(hash "$T_ATTACK")", "roles": ["read@m/clf", "push@m/clf"] },
    { "name": "reader", "sha256": "$(hash "$T_READER")", "roles": ["read"] } ] }
EOF
start_server --config "$TMP/conf/mlreg.json" || finish

printf '{"metrics":{"accuracy":0.9}}\n' >"$W/eval.json"
head -c 512 /dev/urandom >"$W/weights.bin"
push() { # MODEL@VERSION TOKEN
    run env MLREG_TOKEN="$2" "$MLREG" push "$1" --weights "$W/weights.bin" \
        --eval-report "$W/eval.json" --git-sha 0123456789abcdef
    [ "$RC" -eq 0 ] || not_ok "push $1 ($(tail -n 2 "$TMP/err"))"
}

# ---- A: tokens limited to @a/b -------------------------------------------------------------
for m in a/b a/b/c a/bc a/b-x a; do push "$m@1.0" "$T_ADMIN"; done
printf 'a blob for the prefix checks' >"$W/blob"
BLOB="sha256:$(sha256_of "$W/blob")"
# try ROLE MODEL: the status the @a/b token of ROLE gets for that action on MODEL
try() {
    case $1 in
    read) http_status GET "/api/v1/models/$2/versions/1.0" -H "Authorization: Bearer $T_AB_READ" ;;
    push) http_status POST "/v2/$2/blobs/uploads/?digest=$BLOB" -H "Authorization: Bearer $T_AB_PUSH" \
        --data-binary @"$W/blob" ;;
    promote) http_status POST "/api/v1/models/$2/promotions" -H "Authorization: Bearer $T_AB_PROMOTE" \
        --data-binary '{"version":"1.0","to":"production","dry_run":true}' ;;
    approve) http_status POST "/api/v1/models/$2/versions/1.0/approvals" \
        -H "Authorization: Bearer $T_AB_APPROVE" --data-binary '{"stage":"production"}' ;;
    esac
}
for role in read push promote approve; do
    case $role in read | promote) yes=200 ;; *) yes=201 ;; esac
    case $role in promote | approve) r="$role:production@a/b" ;; *) r="$role@a/b" ;; esac
    for m in a/b a/b/c; do
        got=$(try $role $m)
        if [ "$got" = $yes ]; then ok "$r may $role $m ($yes)"; else
            not_ok "$r may $role $m (want $yes, got $got: $(head -c 200 "$TMP/body"))"; fi
    done
    for m in a/bc a/b-x a; do
        got=$(try $role $m)
        if [ "$got" = 403 ] && grep -q "for model '$m'" "$TMP/body"; then
            ok "$r may not $role $m (403 naming the model)"
        else not_ok "$r may not $role $m (want 403, got $got: $(head -c 200 "$TMP/body"))"; fi
    done
done
expect_status "a/bc has no approval from the refused attempt" 200 GET \
    /api/v1/models/a/bc/versions/1.0/approvals -H "Authorization: Bearer $T_ADMIN"
check "... none at all" jqt '.approvals == []' "$TMP/body"
expect_status "a/bc did not get the blob" 404 HEAD "/v2/a/bc/blobs/$BLOB" \
    -H "Authorization: Bearer $T_ADMIN"
expect_status "read@a/b cannot list every model (403)" 403 GET /api/v1/models \
    -H "Authorization: Bearer $T_AB_READ"

# ---- B: a push token cannot redirect what production deploys --------------------------------
M=m/clf
push "$M@1.0" "$T_OWNER"
push "$M@2.0" "$T_OWNER"
GOOD=good.example/team/clf:1.0-0123456
run env MLREG_TOKEN="$T_OWNER" "$MLREG" image-tag "$M@1.0" --repo good.example/team/clf --record
expect_rc "the owner records the image of 1.0 with push (no stage has held it)" 0
run env MLREG_TOKEN="$T_PROD" "$MLREG" promote "$M@1.0" --to production
expect_rc "promote:production promotes 1.0 to production" 0
resolve_image() { MLREG_TOKEN="$T_OWNER" "$MLREG" resolve "$M:production" --image 2>"$TMP/err"; }
check "resolve --image answers the owner's image" [ "$(resolve_image)" = "$GOOD" ]

bind() { # TOKEN VERSION IMAGE -> status
    http_status POST "/api/v1/models/$M/versions/$2/images" -H "Authorization: Bearer $1" \
        --data-binary "{\"image\":\"$3\"}"
}
got=$(bind "$T_ATTACK" 1.0 evil.example/x:1)
if [ "$got" = 403 ]; then ok "a push-only token binding an image to what production holds is 403"; else
    not_ok "a push-only token binding an image to what production holds is 403 (got $got: $(head -c 200 "$TMP/body"))"; fi
body_has "... DENIED naming the stage and the role needed" \
    "token 'attacker' may not bind an image to m/clf@1.0: the release holds or has held stage production, so binding needs role promote:production (or admin)"
check "... and resolve --image still answers the owner's image" [ "$(resolve_image)" = "$GOOD" ]
run env MLREG_TOKEN="$T_ATTACK" "$MLREG" image-tag "$M@1.0" --repo evil.example/x --record
expect_rc "mlreg image-tag --record with the push-only token exits 1" 1
check "... saying which role it needs" grep -q "forbidden: .*promote:production" "$TMP/err"
check "... and production's image is unchanged" [ "$(resolve_image)" = "$GOOD" ]
expect_status "... nor is a binding listed" 200 GET "/api/v1/models/$M/versions/1.0/images" \
    -H "Authorization: Bearer $T_OWNER"
check "... (one binding: the owner's)" jqt '.images | length == 1 and .[0].actor == "owner"' "$TMP/body"

got=$(bind "$T_READER" 1.0 evil.example/x:2)
if [ "$got" = 403 ]; then ok "a read-only token cannot bind (403)"; else
    not_ok "a read-only token cannot bind (got $got)"; fi
check "... and is not told which stages hold the release" \
    sh -c "grep -q 'lacks role push' '$TMP/body' && ! grep -q production '$TMP/body'"
got=$(bind "$T_STAGER" 1.0 evil.example/x:2)
if [ "$got" = 403 ]; then ok "promote:staging alone cannot bind to what production holds (403)"; else
    not_ok "promote:staging alone cannot bind to what production holds (got $got)"; fi
body_has "... naming promote:production" "needs role promote:production"
got=$(bind "$T_ATTACK" 2.0 evil.example/x:3)
if [ "$got" = 201 ]; then ok "a release no stage has held can still be bound with push (201)"; else
    not_ok "a release no stage has held can still be bound with push (got $got: $(head -c 200 "$TMP/body"))"; fi
got=$(bind "$T_ATTACK" 9.9 evil.example/x:4)
[ "$got" = 404 ] && ok "binding to a missing release with push is 404" ||
    not_ok "binding to a missing release with push is 404 (got $got)"
got=$(bind "$T_STAGER" 9.9 evil.example/x:4)
[ "$got" = 403 ] && ok "... and 403 without push, so it does not tell what exists" ||
    not_ok "... and 403 without push (got $got)"

# the production owner binds a new image, then takes the older good one back
got=$(bind "$T_PROD" 1.0 good.example/team/clf:hotfix)
[ "$got" = 201 ] && ok "promote:production binds another image to 1.0 (201)" ||
    not_ok "promote:production binds another image to 1.0 (got $got: $(head -c 200 "$TMP/body"))"
check "... which production now answers" [ "$(resolve_image)" = good.example/team/clf:hotfix ]
SIZE=$(curl -s -H "Authorization: Bearer $T_OWNER" "$MLREG_URL/api/v1/audit?limit=1" | jq .size)
run env MLREG_TOKEN="$T_PROD" "$MLREG" image-tag "$M@1.0" --repo good.example/team/clf --record
expect_rc "re-binding the older good image with promote:production exits 0" 0
check "... reported as recorded" grep -q "^recorded $GOOD for $M@1.0" "$TMP/err"
check "... and makes it current again" [ "$(resolve_image)" = "$GOOD" ]
curl -s -H "Authorization: Bearer $T_OWNER" "$MLREG_URL/api/v1/audit?since=$SIZE" >"$TMP/audit"
check "... with one image.bind audit entry by prod marked as a re-bind" \
    jqt --arg img "$GOOD" '.entries | length == 1 and (.[0] | fromjson |
        .action == "image.bind" and .actor == "prod" and .subject.image == $img
        and .subject.version == "1.0" and .details.rebind == true)' "$TMP/audit"
run env MLREG_TOKEN="$T_PROD" "$MLREG" image-tag "$M@1.0" --repo good.example/team/clf --record
expect_rc "re-binding the image that is current already exits 0" 0
check "... reported as already recorded" grep -q "^already recorded $GOOD" "$TMP/err"
check "... and appends no audit entry" [ "$(curl -s -H "Authorization: Bearer $T_OWNER" \
    "$MLREG_URL/api/v1/audit?limit=1" | jq .size)" = $((SIZE + 1)) ]

# ---- C: only release keys count toward a signed gate ------------------------------------------
S=signed/clf
run env MLREG_TOKEN="$T_OWNER" "$MLREG" push "$S@1.0" --weights "$W/weights.bin" \
    --eval-report "$W/eval.json" --sign-key "$TMP/conf/keys/appr.key"
expect_rc "a release signed with the approver's key is pushed" 0
check "... and the CLI says the signature does not count" \
    grep -q "not a trusted release key of the registry: the signature does not count" "$TMP/err"
expect_status "its signature is listed" 200 GET "/api/v1/models/$S/versions/1.0/signatures" \
    -H "Authorization: Bearer $T_OWNER"
check "... trusted, role approver, and it does not count" jqt '.signatures | length == 1 and
    (.[0] | .status == "trusted" and .role == "approver" and .key_name == "alice" and .counts == false)' \
    "$TMP/body"
promote_signed() {
    http_status POST "/api/v1/models/$S/promotions" -H "Authorization: Bearer $T_PROD" \
        --data-binary '{"version":"1.0","to":"production"}'
}
got=$(promote_signed)
if [ "$got" = 409 ]; then ok "a release signed only by an approver key fails the signed gate (409)"; else
    not_ok "a release signed only by an approver key fails the signed gate (got $got: $(head -c 300 "$TMP/body"))"; fi
check "... GATE_FAILED with a detail that says why" jqt '.errors[0].code == "GATE_FAILED" and
    .rules[0].type == "signed" and .rules[0].passed == false and .rules[0].detail ==
    "0 signatures by trusted release keys (not enough); 1 more by trusted key of role approver, which does not count: only keys of role release sign releases"' \
    "$TMP/body"
run env MLREG_TOKEN="$T_OWNER" "$MLREG" sign "$S@1.0" --key "$TMP/conf/keys/rel.key"
expect_rc "the release key signs it too" 0
check "... a trusted release key" grep -q "a trusted release key of the registry" "$TMP/err"
got=$(promote_signed)
if [ "$got" = 200 ]; then ok "signed by the release key, it passes the signed gate"; else
    not_ok "signed by the release key, it passes the signed gate (got $got: $(head -c 300 "$TMP/body"))"; fi
check "... counting one release key" jqt '.passed == true and (.rules[0].detail | startswith(
    "1 signature by trusted release keys; 1 more by trusted key of role approver"))' "$TMP/body"

finish
