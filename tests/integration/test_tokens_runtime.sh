#!/bin/sh
# test_tokens_runtime.sh: API tokens made at runtime (docs/promotions-api.md,
# "Tokens made at runtime"; include/mlreg/tokens.h) on the real server,
# driven with the CLI and curl. An admin creates tokens (`mlreg token
# create`); a token works within its roles and gets 403 outside them;
# `token list` shows its last use and never a token or a hash; a revoked
# token is 401 at once; an expired one is 401 naming the expiry; a non-admin
# gets 403 on create, list and revoke; config tokens keep working, and their
# names cannot be taken or revoked; hostile bodies and names are refused
# with 400; the tokens survive a restart; no token reaches the audit log,
# the server log or the data directory; --token-file carries a created
# token, and so does MLREG_TOKEN_FILE; a server without config tokens
# refuses to make any.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W" "$TMP/conf"
jqt() { jq -e "$@" >/dev/null; }
run() { # as lib.sh's, and every stderr kept for the leak check at the end
    "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
    cat "$TMP/err" >>"$W/all-err"
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
body_has() {
    if grep -Eq -- "$2" "$TMP/body"; then ok "$1"; else
        not_ok "$1 (body: $(head -c 300 "$TMP/body"))"; fi
}
T_ADMIN=$(tok)
T_READ=$(tok)
T_VADMIN=$(tok)
cat >"$TMP/conf/mlreg.json" <<EOF
{ "tokens": [
    { "name": "root", "sha256": "$(hash "$T_ADMIN")", "roles": ["admin"] },
    { "name": "vision-admin", "sha256": "$(hash "$T_VADMIN")", "roles": ["admin@vision"] },
    { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] } ] }
EOF
SECRETS=$W/secrets # every token made here, for the leak checks
: >"$SECRETS"

start_server --config "$TMP/conf/mlreg.json" || finish
A_ADMIN="Authorization: Bearer $T_ADMIN"
A_READ="Authorization: Bearer $T_READ"

printf '{"metrics":{"accuracy":0.93}}\n' >"$W/eval.json"
head -c 2048 /dev/urandom >"$W/weights.bin"
push() { # TOKEN MODEL@VERSION
    MLREG_TOKEN=$1 "$MLREG" push "$2" --weights "$W/weights.bin" --eval-report "$W/eval.json" \
        --git-sha 0123456789abcdef
}

# ---- create -------------------------------------------------------------------------------
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token create --name ci --role push --role read \
    --model-prefix vision --expires 1h
expect_rc "token create (admin) exits 0" 0
T_CI=$(sed -n 1p "$TMP/out")
echo "$T_CI" >>"$SECRETS"
check "the token is mlreg_ and 43 base64url characters, alone on stdout" \
    sh -c "[ \$(wc -l <'$TMP/out') -eq 1 ] && grep -Eq '^mlreg_[A-Za-z0-9_-]{43}\$' '$TMP/out'"
err_has "stderr names the roles with the prefix and the expiry" \
    'push@vision.*read@vision.*expires 20[0-9-]+T[0-9:]+Z'

run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token create --name ci2 --role push@x --model-prefix vision
expect_rc "--model-prefix with a role that has its own @PREFIX is a usage error" 2
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token create --name ci2 --role push --expires 3x
expect_rc "--expires with a bad duration is a usage error" 2
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token create --name ci2 --role push --expires 0s
expect_rc "--expires 0s is a usage error" 2
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token create --name ci --role read
expect_rc "a second token named ci is refused (exit 1)" 1
err_has "... saying the name exists" "named 'ci' exists already"
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token create --name reader --role read
expect_rc "a runtime token may not take a config token's name (exit 1)" 1
err_has "... saying it is the config's" "taken by a token of the server's config"

# ---- use within the roles, 403 outside -----------------------------------------------------
run push "$T_CI" vision/clf@1.0
expect_rc "the runtime token pushes inside its prefix" 0
run push "$T_CI" other/clf@1.0
expect_rc "... and is refused outside it (exit 1)" 1
err_has "... with 403 naming the token and the role" "forbidden: token 'ci' lacks role (read|push) for model 'other/clf'"
run env MLREG_TOKEN="$T_CI" "$MLREG" promote vision/clf@1.0 --to dev
expect_rc "... it cannot promote (exit 1)" 1
expect_status "it reads what it may" 200 GET /api/v1/models/vision/clf -H "Authorization: Bearer $T_CI"
expect_status "a changed token is 401" 401 GET /api/v1/models/vision/clf \
    -H "Authorization: Bearer ${T_CI}x"

# ---- list ------------------------------------------------------------------------------------
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token list --json
expect_rc "token list --json exits 0" 0
jq . "$TMP/out" >"$W/list.json" 2>/dev/null
check "list shows ci with its roles, creator and expiry" jqt \
    '.tokens[] | select(.name=="ci" and .source=="runtime" and .roles==["push@vision","read@vision"]
      and .created_by=="root" and (.expires|test("Z$")) and .expired==false)' "$W/list.json"
check "list shows ci's last use" jqt '.tokens[] | select(.name=="ci") | .last_used | test("Z$")' \
    "$W/list.json"
check "list shows the config tokens as such" jqt \
    '[.tokens[] | select(.source=="config") | .name] == ["root","vision-admin","reader"]' "$W/list.json"
check "list holds no token and no hash" sh -c "! grep -q -e mlreg_ -e sha256 -e '$(hash "$T_CI")' '$TMP/out'"
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token list
expect_rc "token list (table) exits 0" 0
check "the table has a row for ci" grep -q '^ci ' "$TMP/out"

# ---- non-admin: 403 on create, list, revoke ----------------------------------------------
# an admin limited to a model prefix could otherwise mint a global admin
for who in "$T_READ" "$T_CI" "$T_VADMIN"; do
    expect_status "a non-admin token cannot list (403)" 403 GET /api/v1/tokens -H "Authorization: Bearer $who"
    expect_status "a non-admin token cannot create (403)" 403 POST /api/v1/tokens \
        -H "Authorization: Bearer $who" -H 'Content-Type: application/json' \
        -d '{"name":"x","roles":["admin"]}'
    expect_status "a non-admin token cannot revoke (403)" 403 DELETE /api/v1/tokens/ci \
        -H "Authorization: Bearer $who"
done
expect_status "no token: 401 on list" 401 GET /api/v1/tokens

# ---- hostile input -----------------------------------------------------------------------
post() { # NAME WANT BODY
    expect_status "$1" "$2" POST /api/v1/tokens -H "$A_ADMIN" -H 'Content-Type: application/json' \
        --data-binary "$3"
}
post "a name with a slash is 400" 400 '{"name":"a/b","roles":["read"]}'
post "a name with a space is 400" 400 '{"name":"a b","roles":["read"]}'
post "an empty name is 400" 400 '{"name":"","roles":["read"]}'
post "a name starting with a dot is 400" 400 '{"name":"..","roles":["read"]}'
post "a 65-character name is 400" 400 "{\"name\":\"$(head -c 65 /dev/zero | tr '\0' a)\",\"roles\":[\"read\"]}"
post "a name that is not a string is 400" 400 '{"name":7,"roles":["read"]}'
post "a NUL in the name is 400" 400 '{"name":"a\u0000b","roles":["read"]}'
post "an unknown role is 400" 400 '{"name":"x","roles":["root"]}'
body_has "... naming it" "unknown role 'root'"
post "an unknown stage is 400" 400 '{"name":"x","roles":["promote:prod"]}'
body_has "... naming it" "unknown stage 'prod'"
post "a bad prefix is 400" 400 '{"name":"x","roles":["push@Vision/"]}'
post "no roles is 400" 400 '{"name":"x","roles":[]}'
post "roles not an array is 400" 400 '{"name":"x","roles":"admin"}'
post "a role that is not a string is 400" 400 '{"name":"x","roles":[1]}'
post "a negative expires_in is 400" 400 '{"name":"x","roles":["read"],"expires_in":-5}'
post "a zero expires_in is 400" 400 '{"name":"x","roles":["read"],"expires_in":0}'
post "a fractional expires_in is 400" 400 '{"name":"x","roles":["read"],"expires_in":1.5}'
post "a string expires_in is 400" 400 '{"name":"x","roles":["read"],"expires_in":"1h"}'
post "an expires_in past ten years is 400" 400 '{"name":"x","roles":["read"],"expires_in":999999999999}'
post "a garbage expires_at is 400" 400 '{"name":"x","roles":["read"],"expires_at":"tomorrow"}'
post "an expires_at in the past is 400" 400 '{"name":"x","roles":["read"],"expires_at":"2001-01-01T00:00:00Z"}'
post "expires_in and expires_at together is 400" 400 \
    '{"name":"x","roles":["read"],"expires_in":60,"expires_at":"2099-01-01T00:00:00Z"}'
post "an unknown field is 400" 400 '{"name":"x","roles":["read"],"sha256":"00"}'
post "a duplicate key is 400" 400 '{"name":"x","name":"y","roles":["read"]}'
post "malformed JSON is 400" 400 '{"name":'
post "the name of a runtime token is 409" 409 '{"name":"ci","roles":["read"]}'
post "the name of a config token is 409" 409 '{"name":"root","roles":["read"]}'
post "a JSON array body is 400" 400 '[]'
post "an empty body is 400" 400 ''
head -c 70000 /dev/zero | tr '\0' ' ' >"$W/huge.json"
expect_status "a 70 kB body is 413" 413 POST /api/v1/tokens -H "$A_ADMIN" \
    -H 'Content-Type: application/json' --data-binary @"$W/huge.json"
expect_status "DELETE of an unknown token is 404" 404 DELETE /api/v1/tokens/nobody -H "$A_ADMIN"
expect_status "DELETE of a config token is 409" 409 DELETE /api/v1/tokens/reader -H "$A_ADMIN"
body_has "... saying it lives in the config" "lives in the server's config"
expect_status "DELETE with a dot-dot path is 400" 400 DELETE /api/v1/tokens/../models -H "$A_ADMIN" \
    --path-as-is
expect_status "DELETE with a percent-encoded path is 400" 400 DELETE /api/v1/tokens/%2e%2e%2fx \
    -H "$A_ADMIN"
expect_status "DELETE of a name with a bad character is 400" 400 DELETE "/api/v1/tokens/a;b" -H "$A_ADMIN"
expect_status "DELETE of a nested path is no route (404)" 404 DELETE /api/v1/tokens/a/b -H "$A_ADMIN"
expect_status "DELETE with a body is 400" 400 DELETE /api/v1/tokens/ci -H "$A_ADMIN" -d 'x'
expect_status "the server still answers" 200 GET /api/v1/health

# ---- expiry ------------------------------------------------------------------------------------
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token create --name short --role read --expires 2s
expect_rc "a token for 2 seconds is made" 0
T_SHORT=$(sed -n 1p "$TMP/out")
echo "$T_SHORT" >>"$SECRETS"
expect_status "it works at first" 200 GET /api/v1/models/vision/clf -H "Authorization: Bearer $T_SHORT"
sleep 3
expect_status "after 3 seconds it is 401" 401 GET /api/v1/models/vision/clf -H "Authorization: Bearer $T_SHORT"
body_has "... naming the expiry" "token 'short' expired at 20[0-9-]+T[0-9:]+Z"
run env MLREG_TOKEN="$T_SHORT" "$MLREG" status vision/clf
expect_rc "the CLI with the expired token exits 1" 1
err_has "... and shows the expiry" "expired at"
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token list --json
check "list marks it expired" jqt '.tokens[] | select(.name=="short") | .expired==true' "$TMP/out"
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token list
check "... and so does the table, in whole seconds" \
    grep -Eq '^short +runtime +20[0-9-]+T[0-9:]+Z .*Z \(expired\) +read$' "$TMP/out"

# ---- --token-file ------------------------------------------------------------------------------
(umask 077; printf '%s\n' "$T_CI" >"$W/ci.token")
run "$MLREG" status vision/clf --token-file "$W/ci.token"
expect_rc "--token-file with a created token works" 0
check "... with no warning for a private file" sh -c "! grep -q warning '$TMP/err'"
chmod 644 "$W/ci.token"
run "$MLREG" status vision/clf --token-file "$W/ci.token"
expect_rc "a token file readable by everyone still works" 0
err_has "... with a warning" "readable by every user"

chmod 600 "$W/ci.token"
run env -u MLREG_TOKEN MLREG_TOKEN_FILE="$W/ci.token" "$MLREG" status vision/clf
expect_rc "MLREG_TOKEN_FILE works like --token-file" 0
run env MLREG_TOKEN="$T_CI" MLREG_TOKEN_FILE="$W/ci.token" "$MLREG" status vision/clf
expect_rc "MLREG_TOKEN and MLREG_TOKEN_FILE both set is a usage error" 2
err_has "... saying so" "both set"
run env -u MLREG_TOKEN MLREG_TOKEN_FILE="$W/missing" "$MLREG" status vision/clf
expect_rc "a missing MLREG_TOKEN_FILE is a usage error" 2
err_has "... naming the variable" "MLREG_TOKEN_FILE: --token-file .*/missing"
run env MLREG_TOKEN_FILE="$W/missing" "$MLREG" status vision/clf --token-file "$W/ci.token"
expect_rc "--token-file wins over MLREG_TOKEN_FILE" 0

# ---- restart keeps them ------------------------------------------------------------------------
stop_server
start_server --config "$TMP/conf/mlreg.json" || finish
expect_status "after a restart the runtime token still works" 200 GET /api/v1/models/vision/clf \
    -H "Authorization: Bearer $T_CI"
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token list --json
check "... and list still shows its last use (written at shutdown)" jqt \
    '.tokens[] | select(.name=="ci") | .last_used | test("Z$")' "$TMP/out"

# ---- revoke -------------------------------------------------------------------------------------
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token revoke ci
expect_rc "token revoke ci exits 0" 0
expect_status "the revoked token is 401 at once" 401 GET /api/v1/models/vision/clf \
    -H "Authorization: Bearer $T_CI"
body_has "... as an invalid token, like one never made" '"invalid token"'
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token revoke ci
expect_rc "revoking it again exits 1 (404)" 1
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token revoke reader
expect_rc "revoking a config token exits 1 (409)" 1
err_has "... saying it lives in the config" "lives in the server's config"
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token revoke ../x
expect_rc "revoking a name with a slash is a usage error" 2
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token list --json
check "list no longer shows ci" jqt '[.tokens[] | select(.name=="ci")] == []' "$TMP/out"
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" token create --name ci --role read
expect_rc "the name may be used again after the revocation" 0
sed -n 1p "$TMP/out" >>"$SECRETS"

# ---- the audit log ------------------------------------------------------------------------------
expect_status "the audit log is readable" 200 GET "/api/v1/audit?limit=1000" -H "$A_ADMIN"
jq -r '.entries[]' "$TMP/body" >"$W/audit.jsonl"
check "token.create entries name the token, its roles, expiry, hash and actor" jqt -s \
    'map(select(.action=="token.create" and .details.name=="ci" and .actor=="root"
         and (.details.sha256|test("^[0-9a-f]{64}$")))) | length == 2' "$W/audit.jsonl"
check "a token.revoke entry names the token and the actor" jqt -s \
    'map(select(.action=="token.revoke" and .details.name=="ci" and .actor=="root")) | length == 1' \
    "$W/audit.jsonl"
check "the push made with the token is recorded under its name" jqt -s \
    'map(select(.action=="push" and .actor=="ci")) | length == 1' "$W/audit.jsonl"
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" audit verify
expect_rc "mlreg audit verify passes over the token entries" 0
leaks=0
while read -r s; do
    [ -n "$s" ] || continue
    if grep -rqF -- "$s" "$DATA" "$TMP/server.log" "$W/audit.jsonl" "$W/all-err"; then
        leaks=$((leaks + 1))
    fi
done <"$SECRETS"
check "no created token is in the data dir, the audit log, the server log or the CLI's stderr" \
    [ "$leaks" -eq 0 ]
check "the secrets file is not empty (the check above checked something)" \
    [ "$(wc -l <"$SECRETS")" -eq 3 ]

# ---- a server without config tokens --------------------------------------------------------------
stop_server
DATA=$TMP/local
start_server || finish
run "$MLREG" token create --name x --role read
expect_rc "without config tokens, token create is refused (exit 1)" 1
err_has "... saying why" "no tokens in its config"
expect_status "... with 409 over the API" 409 POST /api/v1/tokens -H 'Content-Type: application/json' \
    -d '{"name":"x","roles":["read"]}'
finish
