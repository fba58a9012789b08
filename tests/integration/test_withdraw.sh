#!/bin/sh
# test_withdraw.sh: withdrawing (yanking) a release and taking it back, with
# the real server and CLI (docs/promotions-api.md, "Withdrawn releases"):
# a release that stages hold is refused naming them, and with --rollback
# every such stage goes back to its previous release; the roles (promote for
# every stage holding it, admin to take it back) and 401/403; hostile bodies
# get 400/413 with clear messages; pull refuses it (exit 1, reason, actor)
# unless --allow-withdrawn; verify still works; promotion is refused;
# show/status/API/bundle show it; the OCI manifest bytes are unchanged;
# unwithdraw restores promotion; the audit log shows the entries and
# `mlreg audit verify` passes.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
jqt() { jq -e "$@" >/dev/null; }
out_has() {
    if grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in:)"; sed 's/^/  | /' "$TMP/out"; fi
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
stage_is() { # NAME STAGE WANT
    got=$("$MLREG" resolve --token-file "$W/reader.tok" "m/clf:$2" 2>/dev/null | cut -d' ' -f1)
    [ -n "$got" ] || got=empty
    if [ "$got" = "$3" ]; then ok "$1"; else not_ok "$1 (want $3, got $got)"; fi
}

# ---- tokens and config ----------------------------------------------------------
for who in ci rel stager admin reader; do tok >"$W/$who.tok"; done
h() { hash "$(cat "$W/$1.tok")"; }
"$MLREG" key generate --out "$W/bot" --no-password >/dev/null 2>&1 ||
    not_ok "key generate for the test"
cat >"$W/config.json" <<EOF
{
  "tokens": [
    { "name": "ci", "sha256": "$(h ci)", "roles": ["read", "push"] },
    { "name": "release-mgr", "sha256": "$(h rel)",
      "roles": ["read", "promote:dev", "promote:staging", "promote:production"] },
    { "name": "stager", "sha256": "$(h stager)", "roles": ["read", "promote:staging"] },
    { "name": "root", "sha256": "$(h admin)", "roles": ["admin"] },
    { "name": "reader", "sha256": "$(h reader)", "roles": ["read"] }
  ],
  "trusted_keys": [ { "name": "release-bot", "file": "$W/bot.pub", "role": "release" } ]
}
EOF
start_server --config "$W/config.json" || finish
as() { # WHO: the token header for curl
    echo "Authorization: Bearer $(cat "$W/$1.tok")"
}

printf '{"dataset":"val","metrics":{"accuracy":0.9}}\n' >"$W/eval.json"
head -c 2048 /dev/urandom >"$W/weights.bin"
for v in 1.0 2.0; do
    run "$MLREG" push --token-file "$W/ci.tok" "m/clf@$v" --weights "$W/weights.bin" \
        --eval-report "$W/eval.json" --sign-key "$W/bot.key"
    expect_rc "push m/clf@$v (signed)" 0
done
D20=$(tail -n 1 "$TMP/out")
for v in 1.0 2.0; do
    for s in staging production; do
        run "$MLREG" promote --token-file "$W/rel.tok" "m/clf@$v" --to $s
        expect_rc "promote $v to $s" 0
    done
done
curl -s -D "$W/h.before" -o "$W/manifest.before" -H "$(as reader)" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$MLREG_URL/v2/m/clf/manifests/2.0"

# ---- a held release: refused naming its stages; the roles -----------------------
run "$MLREG" withdraw --token-file "$W/rel.tok" m/clf@2.0 --reason "labels leaked into train"
expect_rc "withdraw of a release two stages hold, without --rollback: exit 1" 1
err_has "... naming both stages" 'holds stages staging, production'
run "$MLREG" withdraw --token-file "$W/stager.tok" m/clf@2.0 --reason "x" --rollback
expect_rc "a token with promote:staging only may not withdraw it: exit 1" 1
err_has "... told it needs promote:production" 'promote:production'
run "$MLREG" withdraw --token-file "$W/ci.tok" m/clf@2.0 --reason "x" --rollback
expect_rc "a push token may not withdraw: exit 1" 1
WURL=$MLREG_URL/api/v1/models/m/clf/versions/2.0/withdraw
UURL=$MLREG_URL/api/v1/models/m/clf/versions/2.0/unwithdraw
expect_status "withdraw without a token: 401" 401 POST /api/v1/models/m/clf/versions/2.0/withdraw \
    -H 'Content-Type: application/json' --data '{"reason":"x"}'
expect_status "withdraw with an unknown token: 401" 401 \
    POST /api/v1/models/m/clf/versions/2.0/withdraw -H 'Authorization: Bearer nope' \
    --data '{"reason":"x"}'
expect_status "withdraw with a read token: 403" 403 POST /api/v1/models/m/clf/versions/2.0/withdraw \
    -H "$(as reader)" --data '{"reason":"x"}'
expect_status "unwithdraw with a promote token: 403" 403 \
    POST /api/v1/models/m/clf/versions/2.0/unwithdraw -H "$(as rel)" --data '{"reason":"x"}'
stage_is "staging still holds 2.0" staging 2.0

# ---- hostile bodies: 400/413 with clear messages, nothing changed ---------------
bad() { # NAME WANT_STATUS NEEDLE CURL_BODY_ARGS...
    name=$1; want=$2; needle=$3; shift 3
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "$(as rel)" \
        -H 'Content-Type: application/json' "$@" "$WURL")
    if [ "$code" = "$want" ] && grep -qF -- "$needle" "$TMP/body"; then ok "$name"; else
        not_ok "$name (got $code: $(head -c 300 "$TMP/body"))"; fi
}
bad "a missing reason: 400" 400 'lacks \"reason\"' --data '{"rollback":true}'
bad "an empty reason: 400" 400 'reason is required' --data '{"reason":""}'
bad "a reason of spaces: 400" 400 'reason is required' --data '{"reason":"   "}'
head -c 2000 /dev/zero | tr '\0' a >"$W/long"
jq -cn --rawfile r "$W/long" '{reason:$r}' >"$W/long.json"
bad "a 2000-byte reason: 400" 400 'longer than 1024 bytes' --data-binary @"$W/long.json"
bad "a reason with an escape character: 400" 400 'control character' \
    --data '{"reason":"red \u001b[31m"}'
bad "a reason with a NUL: 400" 400 'is not allowed' --data '{"reason":"a\u0000b"}'
bad "a reason that is a number: 400" 400 '"reason\" must be a string' --data '{"reason":7}'
bad "rollback that is a string: 400" 400 '"rollback\" must be true or false' \
    --data '{"reason":"x","rollback":"yes"}'
bad "an unknown member: 400" 400 'unknown member' --data '{"reason":"x","force":true}'
bad "malformed JSON: 400" 400 'malformed JSON' --data '{"reason":'
bad "a JSON array: 400" 400 'must be a JSON object' --data '["x"]'
bad "no body: 400" 400 'request body required' --data ''
head -c 70000 /dev/zero | tr '\0' a >"$W/huge"
jq -cn --rawfile r "$W/huge" '{reason:$r}' >"$W/huge.json"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "$(as rel)" \
    -H 'Content-Type: application/json' --data-binary @"$W/huge.json" "$WURL")
check "a 70 kB body: 413 (got $code)" [ "$code" = 413 ]
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "$(as rel)" \
    --data '{"reason":"x"}' "$MLREG_URL/api/v1/models/m/clf/versions/9.9/withdraw")
check "an unknown release: 404 (got $code)" [ "$code" = 404 ]
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X GET -H "$(as rel)" "$WURL")
check "GET on withdraw: 405 (got $code)" [ "$code" = 405 ]
run "$MLREG" withdraw --token-file "$W/rel.tok" m/clf@2.0
expect_rc "the CLI without --reason: exit 2" 2
run "$MLREG" withdraw --token-file "$W/rel.tok" m/clf@2.0 --reason "$(printf 'two\nlines')"
expect_rc "the CLI with a newline in --reason: exit 2" 2
check "nothing was withdrawn so far" sh -c \
    "curl -s -H '$(as reader)' $MLREG_URL/api/v1/models/m/clf/versions/2.0 | jq -e '.withdrawn == null' >/dev/null"

# ---- withdraw with --rollback ------------------------------------------------------
run "$MLREG" withdraw --token-file "$W/rel.tok" m/clf@2.0 --reason "labels leaked into train" \
    --rollback
expect_rc "withdraw --rollback: exit 0" 0
out_has "it says it withdrew 2.0 as release-mgr" '^withdrew m/clf@2\.0 .* as release-mgr at .*: labels leaked into train$'
out_has "... and rolled staging back to 1.0" '^  rolled back staging from 2\.0 to 1\.0 \(audit entry [0-9]+\)'
out_has "... and production too" '^  rolled back production from 2\.0 to 1\.0'
stage_is "staging holds 1.0 again" staging 1.0
stage_is "production holds 1.0 again" production 1.0
run "$MLREG" withdraw --token-file "$W/admin.tok" m/clf@2.0 --reason "again"
expect_rc "withdrawing it again: exit 1" 1
err_has "... already withdrawn, naming who" 'already withdrawn: m/clf@2\.0 was withdrawn by release-mgr'

# ---- what shows it -----------------------------------------------------------------
curl -s -H "$(as reader)" "$MLREG_URL/api/v1/models/m/clf/versions/2.0" >"$W/rel.json"
check "the release JSON has withdrawn.reason, .by, .time, .seq" jqt \
    '.withdrawn.reason == "labels leaked into train" and .withdrawn.by == "release-mgr"
     and (.withdrawn.time | type) == "string" and (.withdrawn.seq | type) == "number"' "$W/rel.json"
check "the model listing shows it on 2.0 only" sh -c \
    "curl -s -H '$(as reader)' $MLREG_URL/api/v1/models/m/clf |
     jq -e '[.releases[] | {(.version): (.withdrawn != null)}] | add == {\"1.0\":false,\"2.0\":true}' >/dev/null"
check "the stage answers say the release they hold is not withdrawn" sh -c \
    "curl -s -H '$(as reader)' $MLREG_URL/api/v1/models/m/clf/stages |
     jq -e '[.stages[] | select(.version != null) | .withdrawn] | all(. == null)' >/dev/null"
run "$MLREG" show --token-file "$W/reader.tok" m/clf@2.0
expect_rc "show of the withdrawn release: exit 0" 0
out_has "show prints WITHDRAWN with actor and reason" '^WITHDRAWN +by release-mgr at .*: labels leaked into train$'
run "$MLREG" status --token-file "$W/reader.tok" m/clf
expect_rc "status: exit 0" 0
out_has "status lists it as withdrawn" '^  2\.0  WITHDRAWN by release-mgr at .*: labels leaked into train$'
curl -s -D "$W/h.after" -o "$W/manifest.after" -H "$(as reader)" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$MLREG_URL/v2/m/clf/manifests/2.0"
check "the OCI manifest GET serves the very same bytes" cmp -s "$W/manifest.before" "$W/manifest.after"
check "... with the same Docker-Content-Digest" sh -c \
    "test \"\$(grep -i docker-content-digest '$W/h.before')\" = \"\$(grep -i docker-content-digest '$W/h.after')\""

# ---- pull, verify, promote ---------------------------------------------------------
run "$MLREG" pull --token-file "$W/reader.tok" m/clf@2.0 -o "$W/dep"
expect_rc "pull of the withdrawn release: exit 1" 1
err_has "... naming who, and the reason" 'm/clf@2\.0 was withdrawn by release-mgr at .*: labels leaked into train'
err_has "... and how to pull it anyway" 'allow-withdrawn'
check "... and wrote nothing" [ ! -e "$W/dep" ]
run "$MLREG" pull --token-file "$W/reader.tok" "m/clf@$D20" -o "$W/dep"
expect_rc "pull by digest: exit 1 too" 1
err_has "... with the same reason" 'labels leaked into train'
run "$MLREG" pull --token-file "$W/reader.tok" m/clf@2.0 -o "$W/dep" --allow-withdrawn
expect_rc "pull --allow-withdrawn: exit 0" 0
err_has "... warns on stderr" 'warning: m/clf@2\.0 was withdrawn by release-mgr'
check "... and wrote the files and lock file" sh -c \
    "test -s '$W/dep/weights.bin' && jq -e '.version == \"2.0\"' '$W/dep/mlreg.lock.json' >/dev/null"
run "$MLREG" pull --token-file "$W/reader.tok" m/clf:staging -o "$W/dep2"
expect_rc "pull of the stage (now 1.0) is not affected: exit 0" 0
run "$MLREG" verify --token-file "$W/reader.tok" m/clf@2.0 --trusted-key "$W/bot.pub"
expect_rc "verify of the withdrawn release still works: exit 0" 0
run "$MLREG" promote --token-file "$W/rel.tok" m/clf@2.0 --to staging --dry-run
expect_rc "a dry run of promoting it: exit 1" 1
out_has "... says it would be refused because it is withdrawn" 'WOULD BE REFUSED \(the release is withdrawn; dry run\)'
run "$MLREG" promote --token-file "$W/rel.tok" m/clf@2.0 --to staging
expect_rc "promoting it: exit 1" 1
out_has "... REFUSED, with who and why" '^withdrawn by release-mgr at .*: labels leaked into train$'
stage_is "staging still holds 1.0" staging 1.0
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "$(as admin)" \
    --data '{"stage":"production"}' "$MLREG_URL/api/v1/models/m/clf/versions/2.0/approvals")
check "approving it: 409 naming the withdrawal (got $code)" sh -c \
    "[ '$code' = 409 ] && grep -q 'cannot be approved' '$TMP/body'"
run "$MLREG" rollback --token-file "$W/rel.tok" m/clf --stage staging --to 2.0
expect_rc "rolling a stage back to it: exit 1" 1
err_has "... naming the withdrawal" 'cannot roll back to m/clf@2\.0'

# ---- the audit bundle --------------------------------------------------------------
run "$MLREG" bundle --token-file "$W/reader.tok" m/clf@2.0 -o "$W/bundle"
expect_rc "bundle of the withdrawn release: exit 0" 0
out_has "the bundle says it is withdrawn" '^WITHDRAWN: audit entry [0-9]+ by release-mgr at .*: labels leaked into train$'
curl -s "$MLREG_URL/api/v1/audit/key" -H "$(as reader)" >"$W/log.pub"
run "$MLREG" audit verify --bundle "$W/bundle" --log-key "$W/log.pub"
expect_rc "audit verify --bundle passes" 0
out_has "... and reports the withdrawal" 'the release is WITHDRAWN: audit entry [0-9]+ by release-mgr'
check "the bundle holds the release.withdraw entry" sh -c \
    "cat '$W'/bundle/audit/entries/*.json | grep -q '\"action\":\"release.withdraw\"'"

# ---- unwithdraw -------------------------------------------------------------------
run "$MLREG" unwithdraw --token-file "$W/rel.tok" m/clf@2.0 --reason "relabelled"
expect_rc "unwithdraw by a promote token: exit 1" 1
err_has "... needs admin" 'admin'
run "$MLREG" unwithdraw --token-file "$W/admin.tok" m/clf@2.0
expect_rc "unwithdraw without --reason: exit 2" 2
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "$(as admin)" \
    --data '{"reason":"x","rollback":true}' "$UURL")
check "unwithdraw does not take rollback: 400 (got $code)" [ "$code" = 400 ]
run "$MLREG" unwithdraw --token-file "$W/admin.tok" m/clf@2.0 --reason "relabelled, eval rerun"
expect_rc "unwithdraw by admin: exit 0" 0
out_has "it says so" '^m/clf@2\.0 \(sha256:[0-9a-f]+\) is no longer withdrawn$'
run "$MLREG" unwithdraw --token-file "$W/admin.tok" m/clf@2.0 --reason "again"
expect_rc "unwithdrawing again: exit 1" 1
err_has "... is not withdrawn" 'is not withdrawn'
run "$MLREG" show --token-file "$W/reader.tok" m/clf@2.0
check "show no longer says WITHDRAWN" sh -c "! grep -q WITHDRAWN '$TMP/out'"
run "$MLREG" promote --token-file "$W/rel.tok" m/clf@2.0 --to staging
expect_rc "promotion works again: exit 0" 0
stage_is "staging holds 2.0" staging 2.0
run "$MLREG" pull --token-file "$W/reader.tok" m/clf@2.0 -o "$W/dep3"
expect_rc "pull works again: exit 0" 0
# a release no stage holds: some promote role is enough
run "$MLREG" withdraw --token-file "$W/stager.tok" m/clf@1.0 --reason "old" --rollback
expect_rc "withdraw of 1.0 (production holds it, stager lacks promote:production): exit 1" 1
run "$MLREG" withdraw --token-file "$W/rel.tok" m/clf@1.0 --reason "old"
expect_rc "... and without --rollback it is refused: exit 1" 1
err_has "... naming production" 'holds stage production'

# ---- the audit log -----------------------------------------------------------------
run "$MLREG" audit log --token-file "$W/reader.tok" --model m/clf
expect_rc "audit log: exit 0" 0
out_has "it shows the withdrawal with its reason" 'release-mgr +release\.withdraw +.*m/clf@2\.0.* ok +labels leaked into train'
out_has "it shows the rollbacks made by it" 'release-mgr +rollback +.* ok +labels leaked into train'
out_has "it shows the refused promotion" 'promote .* refused .*withdrawn by release-mgr'
out_has "it shows the unwithdrawal" 'root +release\.unwithdraw +.* ok +relabelled, eval rerun'
run "$MLREG" audit verify --token-file "$W/reader.tok" --log-key "$W/log.pub"
expect_rc "audit verify passes" 0
check "the server is alive" sh -c \
    "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$MLREG_URL/api/v1/health')\" = 200 ]"
finish
