#!/bin/sh
# test_refs.sh: one reference grammar for every command that takes a
# release (MODEL@VERSION, MODEL@sha256:HEX, MODEL:STAGE, --at TIME), and the
# hints a mistyped form gets: M@STAGE -> "did you mean M:STAGE?", M:VERSION
# -> "did you mean M@VERSION?", a bare M -> the forms. Runs the real server
# on loopback as the local identity.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
out_has() {
    if grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in:)"; sed 's/^/  | /' "$TMP/out"; fi
}

"$MLREG" key generate --out "$W/bot" --no-password >/dev/null 2>&1 || not_ok "key generate"
"$MLREG" key generate --out "$W/other" --no-password >/dev/null 2>&1 || not_ok "key generate"
cat >"$W/config.json" <<EOF2
{
  "stages": ["dev", "staging", "production"],
  "trusted_keys": [ { "name": "release-bot", "file": "$W/bot.pub", "role": "release" } ]
}
EOF2
start_server --config "$W/config.json" || finish

printf '{"metrics":{"accuracy":0.9}}\n' >"$W/eval.json"
head -c 2048 /dev/urandom >"$W/weights.bin"
GIT=abc1234def5678abc1234def5678abc1234def56
push() {
    (cd "$TMP" && "$MLREG" push "m/clf@$1" --weights "$W/weights.bin" --eval-report "$W/eval.json" \
        --git-sha $GIT --sign-key "$W/bot.key") >"$TMP/out" 2>"$TMP/err"
    RC=$?
    DIGEST=$(tail -n 1 "$TMP/out")
}
push 1.0; expect_rc "push 1.0" 0; D10=$DIGEST
push 2024-02-09-01; expect_rc "push 2024-02-09-01" 0; D24=$DIGEST

# ---- promote takes all three forms; M:STAGE is the release the stage holds ---
run "$MLREG" promote m/clf@1.0 --to dev
expect_rc "promote M@VERSION" 0
run "$MLREG" promote m/clf:dev --to staging
expect_rc "promote M:STAGE (the release dev holds) --to staging" 0
err_has "promote M:STAGE says which release it is" "m/clf:dev is m/clf@1.0 \($D10\)"
out_has "the table names version 1.0" "1\.0"
[ "$("$MLREG" resolve m/clf:staging | cut -d' ' -f1)" = 1.0 ] && ok "staging holds 1.0" ||
    not_ok "staging holds 1.0"
sleep 1.1
T1=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1.1
run "$MLREG" promote "m/clf@$D24" --to dev
expect_rc "promote M@sha256:HEX" 0
[ "$("$MLREG" resolve m/clf:dev | cut -d' ' -f1)" = 2024-02-09-01 ] &&
    ok "dev holds the release the digest named" || not_ok "dev holds the release the digest named"

# ---- show, verify, sign, image-tag, bundle, pull, withdraw -----------------------
run "$MLREG" show m/clf:dev --json
expect_rc "show M:STAGE" 0
jq -e '.version == "2024-02-09-01"' "$TMP/out" >/dev/null && ok "show M:STAGE shows what dev holds" ||
    not_ok "show M:STAGE shows what dev holds"
run "$MLREG" show m/clf:dev --at "$T1" --json
expect_rc "show M:STAGE --at TIME" 0
jq -e '.version == "1.0"' "$TMP/out" >/dev/null && ok "show --at shows what dev held then" ||
    not_ok "show --at shows what dev held then ($(head -c 200 "$TMP/out"))"
run "$MLREG" show m/clf@1.0 --at "$T1"
expect_rc "show M@VERSION --at is a usage error" 2
err_has "--at with a version says why" "--at goes with MODEL:STAGE"
run "$MLREG" show "m/clf@$D10" --json
expect_rc "show M@sha256:HEX" 0
run "$MLREG" verify m/clf:staging --trusted-key "$W/bot.pub"
expect_rc "verify M:STAGE" 0
run "$MLREG" verify m/clf:staging --trusted-key "$W/other.pub"
expect_rc "verify M:STAGE with an untrusted key fails" 1
run "$MLREG" sign m/clf:staging --key "$W/other.key"
expect_rc "sign M:STAGE" 0
err_has "sign M:STAGE signs the release staging holds" "signed m/clf@1.0"
run "$MLREG" image-tag m/clf:staging --repo reg.example/serve/clf
expect_rc "image-tag M:STAGE" 0
out_has "image-tag M:STAGE derives from version 1.0" "^reg.example/serve/clf:1.0-abc1234$"
run "$MLREG" bundle m/clf:dev --at "$T1" -o "$W/bundle"
expect_rc "bundle M:STAGE --at TIME" 0
jq -e '.annotations["org.mlreg.version"] == "1.0"' "$W/bundle/manifest.json" >/dev/null &&
    ok "bundle --at bundles the release dev held then" || not_ok "bundle --at bundles the release dev held then"
run "$MLREG" pull m/clf:dev --at "$T1" -o "$W/pull-at"
expect_rc "pull M:STAGE --at TIME" 0
jq -e --arg t "$T1" '.version == "1.0" and .stage == "dev" and .at == $t' "$W/pull-at/mlreg.lock.json" >/dev/null &&
    ok "pull --at pulls what dev held then" || not_ok "pull --at pulls what dev held then"
run "$MLREG" approve m/clf:staging --for production
err_has "approve M:STAGE resolves the stage first" "m/clf:staging is m/clf@1.0"

# ---- hints --------------------------------------------------------------------
for cmd in show verify promote approve image-tag withdraw pull; do
    case $cmd in
    verify) extra="--trusted-key $W/bot.pub" ;;
    promote) extra="--to production" ;;
    approve) extra="--for production" ;;
    image-tag) extra="--repo reg.example/x" ;;
    withdraw) extra="--reason test" ;;
    pull) extra="-o $W/hint-pull" ;;
    *) extra= ;;
    esac
    run "$MLREG" $cmd m/clf@production $extra
    expect_rc "$cmd M@production fails with 1" 1
    err_has "$cmd M@production hints M:production" "did you mean m/clf:production\?"
    run "$MLREG" $cmd m/clf:2024-02-09-01 $extra
    expect_rc "$cmd M:2024-02-09-01 fails with 1" 1
    err_has "$cmd M:VERSION hints M@VERSION" "did you mean m/clf@2024-02-09-01\?"
    run "$MLREG" $cmd m/clf $extra
    expect_rc "$cmd M alone is a usage error" 2
    err_has "$cmd M alone lists the forms" "MODEL@VERSION \(team/clf@1.4\), MODEL@sha256:HEX or MODEL:STAGE"
done
[ ! -e "$W/hint-pull" ] && ok "a pull refused by a hint writes nothing" ||
    not_ok "a pull refused by a hint writes nothing"
run "$MLREG" show m/clf@nosuchversion
expect_rc "show of a version that does not exist fails with 1" 1
if grep -q "did you mean" "$TMP/err"; then not_ok "no hint for a word that is no stage"; else
    ok "no hint for a word that is no stage"; fi
run "$MLREG" resolve m/clf@production
expect_rc "resolve M@STAGE is a usage error" 2
err_has "resolve M@STAGE hints M:STAGE" "did you mean m/clf:production\?"
run "$MLREG" resolve m/clf:2024-02-09-01
expect_rc "resolve M:VERSION fails with 1" 1
err_has "resolve M:VERSION hints M@VERSION" "did you mean m/clf@2024-02-09-01\?"
run "$MLREG" show 'm/clf@sha256:zz'
expect_rc "a malformed digest is a usage error" 2
run "$MLREG" show "m/clf@$(head -c 600 /dev/zero | tr '\0' a)"
expect_rc "an oversized reference is a usage error" 2
run "$MLREG" show "$(printf 'm/clf:dev\033[31m')"
expect_rc "a control byte in a stage is a usage error" 2

# ---- withdraw by stage (last: it changes the release) ---------------------------
run "$MLREG" withdraw m/clf:dev --reason "ref grammar test" --rollback
expect_rc "withdraw M:STAGE --rollback" 0
out_has "withdraw M:STAGE withdrew the release dev held" "withdrew m/clf@2024-02-09-01"
for cmd in show verify sign promote approve image-tag withdraw unwithdraw pull bundle resolve; do
    "$MLREG" $cmd --help >"$TMP/out" 2>&1
    if [ $? = 0 ] && grep -q "e\.g\." "$TMP/out"; then ok "$cmd --help has examples"; else
        not_ok "$cmd --help has examples"; fi
done

finish
