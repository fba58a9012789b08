#!/bin/sh
# test_cli_promote.sh: the stage commands of the CLI against the real server
# (docs/promotions-api.md): promote (pass, refuse, dry run, baseline and
# delta in the table, exit codes), resolve now and --at a past time,
# rollback, image-tag derivation and --record then resolve --image,
# pull MODEL:STAGE pinning the digest in the lock file, status with stages
# and promotions. No tokens here: the server runs as the local identity.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"

RC=0
# run CMD...: stdout in $TMP/out, stderr in $TMP/err, status in $RC.
# out_has NAME ERE: the last stdout has a line matching ERE.
out_has() {
    if grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in:)"; sed 's/^/  | /' "$TMP/out"; fi
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
jqt() { jq -e "$@" >/dev/null; }
# stage_is NAME STAGE WANT: `mlreg resolve m/clf:STAGE` prints WANT (a
# version, or "empty" for exit 1).
stage_is() {
    got=$("$MLREG" resolve "m/clf:$2" 2>/dev/null | cut -d' ' -f1)
    [ -n "$got" ] || got=empty
    if [ "$got" = "$3" ]; then ok "$1"; else not_ok "$1 (want $3, got $got)"; fi
}

# ---- a signing key the server trusts, and the config -------------------------
"$MLREG" key generate --out "$W/bot" --no-password >/dev/null 2>&1 ||
    not_ok "key generate for the test"
cat >"$W/config.json" <<EOF
{
  "stages": ["dev", "staging", "production"],
  "gates": {
    "staging": [ { "metric": "accuracy", "min": 0.85 },
                 { "metric": "f1", "max_drop": 0.02 } ],
    "production": [ { "metric": "accuracy", "max_drop": 0.005 },
                    { "require": "signed", "min": 1 },
                    { "require": "previous_stage" } ]
  },
  "trusted_keys": [ { "name": "release-bot", "file": "$W/bot.pub", "role": "release" } ]
}
EOF
start_server --config "$W/config.json" || finish

# ---- releases (pushed from $TMP, not a git checkout: git sha only when given)
report() { printf '{"dataset":"val-v1","metrics":{"accuracy":%s,"f1":%s}}\n' "$2" "$3" >"$W/$1.json"; }
report e10 0.90 0.88
report e11 0.80 0.87
report e12 0.91 0.85
report e20 0.92 0.89
head -c 4096 /dev/urandom >"$W/weights.bin"
GIT=abc1234def5678abc1234def5678abc1234def56
push() { # VERSION REPORT [push args...]; the digest in $DIGEST
    v=$1; r=$2; shift 2
    (cd "$TMP" && "$MLREG" push "m/clf@$v" --weights "$W/weights.bin" --eval-report "$W/$r.json" "$@") \
        >"$TMP/out" 2>"$TMP/err"
    RC=$?
    DIGEST=$(tail -n 1 "$TMP/out")
}
push 1.0 e10 --git-sha $GIT --sign-key "$W/bot.key"
expect_rc "push 1.0 (signed)" 0
D10=$DIGEST
push 1.1 e11 --git-sha $GIT
expect_rc "push 1.1" 0
push 1.2 e12
expect_rc "push 1.2 (no git sha)" 0
push 2.0 e20 --git-sha $GIT --sign-key "$W/bot.key"
expect_rc "push 2.0 (signed)" 0
D20=$DIGEST

# ---- promote: pass, refuse, dry run ------------------------------------------
stage_is "staging starts empty" staging empty
run "$MLREG" promote m/clf@1.0 --to staging --reason "first"
expect_rc "promote 1.0 to staging passes: exit 0" 0
out_has "the header says PROMOTED" '^promote m/clf@1\.0 → staging: PROMOTED'
out_has "the table has the accuracy rule with PASS" '^  accuracy >= 0\.85 +0\.9 .* PASS '
out_has "no baseline when the stage was empty" '^baseline: none'
stage_is "staging holds 1.0" staging 1.0

run "$MLREG" promote m/clf@1.1 --to staging
expect_rc "promote 1.1 (accuracy 0.80) to staging is refused: exit 1" 1
out_has "the header says REFUSED with the count" '^promote m/clf@1\.1 → staging: REFUSED \(1 of 2 rules failed\)'
out_has "the accuracy rule line shows 0.8 and FAIL" '^  accuracy >= 0\.85 +0\.8 .* FAIL '
out_has "the f1 line compares against the 1.0 baseline and passes" '^  f1 .* 0\.87 +0\.88 \(1\.0\) +-0\.01 +PASS '
out_has "the baseline line names 1.0 and its digest" "^baseline: m/clf@1\.0 \($D10\)"
stage_is "a refused promotion leaves staging at 1.0" staging 1.0

run "$MLREG" promote m/clf@1.2 --to staging --dry-run
expect_rc "dry run of 1.2 (f1 drop 0.03 > 0.02) exits 1" 1
out_has "a refused dry run says so" 'staging: WOULD BE REFUSED \(dry run: 1 of 2 rules failed\)'
out_has "the f1 drop line shows baseline, delta and FAIL" '^  f1 .* 0\.85 +0\.88 \(1\.0\) +-0\.03 +FAIL '

run "$MLREG" promote m/clf@2.0 --to staging --dry-run
expect_rc "dry run of 2.0 passes: exit 0" 0
out_has "a passing dry run says nothing moved" 'staging: WOULD PASS \(dry run: .*nothing moved\)'
stage_is "a dry run moves nothing" staging 1.0

run "$MLREG" promote m/clf@2.0 --to staging --dry-run --json
check "promote --json prints the server's answer" \
    jqt '.dry_run == true and .passed == true and .moved == false and (.rules | length) == 2' "$TMP/out"
run "$MLREG" promote m/clf@1.1 --to staging --json
expect_rc "a refused promotion with --json exits 1" 1
check "promote --json of a refusal has passed false and the failing rule" \
    jqt '.passed == false and ([.rules[] | select(.passed == false) | .metric] == ["accuracy"])' "$TMP/out"

# Times around the move of staging from 1.0 to 2.0, for resolve --at.
sleep 1
T1=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T1_PLUS2=$(TZ=UTC-2 date -d "$T1" +%Y-%m-%dT%H:%M:%S+02:00)
sleep 1
run "$MLREG" promote m/clf@2.0 --to staging --reason "better f1"
expect_rc "promote 2.0 to staging passes" 0
out_has "the promotion is recorded" '^recorded as promotion #[0-9]+ by '
stage_is "staging holds 2.0" staging 2.0
run "$MLREG" promote m/clf@2.0 --to staging
expect_rc "promoting into the stage it already holds exits 1" 1

# ---- resolve -------------------------------------------------------------------
run "$MLREG" resolve m/clf:staging
expect_rc "resolve exits 0" 0
check "resolve prints VERSION DIGEST" test "$(cat "$TMP/out")" = "2.0 $D20"
run "$MLREG" resolve m/clf:staging --at "$T1"
expect_rc "resolve --at a past time exits 0" 0
check "resolve --at returns what held the stage then (1.0)" test "$(cat "$TMP/out")" = "1.0 $D10"
run "$MLREG" resolve m/clf:staging --at "$T1_PLUS2"
check "resolve --at with a +02:00 offset names the same instant" test "$(cat "$TMP/out")" = "1.0 $D10"
run "$MLREG" resolve m/clf:staging --at 2000-01-01T00:00:00Z
expect_rc "resolve --at before any promotion: empty, exit 1" 1
err_has "the message says the stage was empty then" 'm/clf:staging is empty at 2000-01-01T00:00:00Z'
run "$MLREG" resolve m/clf:production
expect_rc "resolve of an empty stage exits 1" 1
err_has "the message says the stage is empty" 'm/clf:production is empty'
run "$MLREG" resolve m/clf:staging --json
check "resolve --json has version, digest, since and by" \
    jqt --arg d "$D20" '.version == "2.0" and .digest == $d and (.since | type) == "string" and (.by | type) == "string"' "$TMP/out"
run "$MLREG" resolve m/clf:staging --at 2026-02-30T00:00:00Z
expect_rc "resolve --at with February 30 is a usage error" 2
run "$MLREG" resolve m/clf:staging --at "2026-01-01 10:00"
expect_rc "resolve --at without seconds and zone is a usage error" 2
run "$MLREG" resolve m/clf@2.0
expect_rc "resolve of MODEL@VERSION is a usage error" 2

# ---- production: previous_stage, signed, baseline drop ------------------------
run "$MLREG" promote m/clf@1.2 --to production
expect_rc "1.2 (never in staging, unsigned) is refused for production" 1
out_has "the previous_stage rule fails" '^  previous.stage.* FAIL '
out_has "the signed rule fails" '^  [^ ]*sign.* FAIL '
out_has "the header counts 2 of 3 failed" 'production: REFUSED \(2 of 3 rules failed\)'
run "$MLREG" promote m/clf@2.0 --to production
expect_rc "2.0 (signed, through staging) is promoted to production" 0
stage_is "production holds 2.0" production 2.0

# ---- rollback --------------------------------------------------------------------
run "$MLREG" rollback m/clf --stage staging --reason "incident 42"
expect_rc "rollback of staging exits 0" 0
out_has "rollback says from and to" '^rolled back m/clf:staging from 2\.0 to 1\.0 '
stage_is "staging is back at 1.0" staging 1.0
run "$MLREG" rollback m/clf --stage staging --to 1.1
expect_rc "rollback to a version that never held the stage exits 1" 1
stage_is "the refused rollback moved nothing" staging 1.0
run "$MLREG" rollback m/clf --stage staging --to 2.0
expect_rc "rollback --to a named earlier holder exits 0" 0
stage_is "staging holds 2.0 again" staging 2.0
run "$MLREG" rollback m/clf
expect_rc "rollback without --stage is a usage error" 2

# ---- image-tag ------------------------------------------------------------------
run "$MLREG" image-tag m/clf@2.0 --repo localhost:5000/team/clf
expect_rc "image-tag exits 0" 0
check "image-tag prints REPO:VERSION-GITSHA7" \
    test "$(cat "$TMP/out")" = "localhost:5000/team/clf:2.0-abc1234"
run "$MLREG" image-tag m/clf@1.2 --repo team/clf
expect_rc "image-tag of a release without a git sha exits 1" 1
err_has "the message says the release has no git sha" 'no git sha'
run "$MLREG" image-tag m/clf@2.0 --repo Team/CLF
expect_rc "image-tag with an uppercase repository is a usage error" 2
run "$MLREG" image-tag m/clf@2.0 --repo team/clf:latest
expect_rc "image-tag with a tag in REPO is a usage error" 2
run "$MLREG" resolve m/clf:production --image
expect_rc "resolve --image without a recorded image exits 1" 1
sleep 0.1
T_NOIMG=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 0.1
IMGD=sha256:$(printf 'image' | sha256sum | cut -d' ' -f1)
run "$MLREG" image-tag m/clf@2.0 --repo localhost:5000/team/clf --record --digest "$IMGD"
expect_rc "image-tag --record exits 0" 0
check "image-tag --record still prints the reference" \
    test "$(cat "$TMP/out")" = "localhost:5000/team/clf:2.0-abc1234"
run "$MLREG" resolve m/clf:production --image
expect_rc "resolve --image exits 0" 0
check "resolve --image prints the recorded image with its digest" \
    test "$(cat "$TMP/out")" = "localhost:5000/team/clf:2.0-abc1234@$IMGD"
run "$MLREG" image-tag m/clf@2.0 --repo team/clf --digest "$IMGD"
expect_rc "--digest without --record is a usage error" 2

# resolve --at answers the image binding in force then, not today's
sleep 0.1
T_IMG1=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 0.1
IMGD2=sha256:$(printf 'image2' | sha256sum | cut -d' ' -f1)
run "$MLREG" image-tag m/clf@2.0 --repo localhost:5000/team/clf --record --digest "$IMGD2"
expect_rc "a second image-tag --record (a rebuilt image) exits 0" 0
run "$MLREG" resolve m/clf:production --image
check "resolve --image now prints the second binding" \
    test "$(cat "$TMP/out")" = "localhost:5000/team/clf:2.0-abc1234@$IMGD2"
run "$MLREG" resolve m/clf:production --at "$T_IMG1" --json
expect_rc "resolve --at between the two bindings exits 0" 0
check "resolve --at --json between the bindings answers the first image" \
    jqt --arg i "localhost:5000/team/clf:2.0-abc1234@$IMGD" '.version == "2.0" and .image == $i' "$TMP/out"
run "$MLREG" resolve m/clf:production --at "$T_IMG1" --image
check "resolve --at --image between the bindings prints the first image" \
    test "$(cat "$TMP/out")" = "localhost:5000/team/clf:2.0-abc1234@$IMGD"
run "$MLREG" resolve m/clf:production --at "$T_NOIMG" --json
check "resolve --at before any binding answers image null (2.0 held production then)" \
    jqt '.version == "2.0" and .image == null' "$TMP/out"
run "$MLREG" resolve m/clf:production --at "$T_NOIMG" --image
expect_rc "resolve --at --image before any binding exits 1" 1

# ---- pull MODEL:STAGE -------------------------------------------------------------
run "$MLREG" pull m/clf:production -o "$TMP/deploy"
expect_rc "pull MODEL:STAGE exits 0" 0
check "pull MODEL:STAGE prints the pinned digest" test "$(tail -n 1 "$TMP/out")" = "$D20"
check "the lock file pins the digest, version and stage" \
    jqt --arg d "$D20" '.digest == $d and .version == "2.0" and .stage == "production" and .model == "m/clf"' \
    "$TMP/deploy/mlreg.lock.json"
check "the pulled weights are the pushed bytes" cmp "$W/weights.bin" "$TMP/deploy/weights.bin"
run "$MLREG" pull m/clf:staging -o "$TMP/deploy-s" --trusted-key "$W/bot.pub"
expect_rc "pull MODEL:STAGE with --trusted-key verifies the signature" 0
run "$MLREG" pull m/clf:dev -o "$TMP/deploy-dev"
expect_rc "pull of an empty stage exits 1" 1
check "pull of an empty stage wrote nothing" test ! -e "$TMP/deploy-dev"
run "$MLREG" pull m/clf@1.0 -o "$TMP/deploy-v"
check "a pull by version has no stage in the lock file" \
    jqt 'has("stage") | not' "$TMP/deploy-v/mlreg.lock.json"

# ---- status ---------------------------------------------------------------------
run "$MLREG" status m/clf
expect_rc "status exits 0" 0
out_has "status lists production holding 2.0" '^  production +2\.0 +sha256:'
out_has "status lists staging holding 2.0" '^  staging +2\.0 '
out_has "status lists dev as empty" '^  dev +- '
out_has "status shows the recorded image" 'localhost:5000/team/clf:2\.0-abc1234'
out_has "status shows a refused promotion" ' refused '
out_has "status shows a rollback" ' rollback '
out_has "the releases table still follows" '^1\.0 +sha256:'
run "$MLREG" status m/clf --json
check "status --json merges model, stages, promotions and releases" \
    jqt '.model == "m/clf" and ([.stages[].stage] == ["dev","staging","production"])
         and ([.stages[] | select(.stage == "production") | .version] == ["2.0"])
         and ([.promotions[] | select(.passed == false)] | length) >= 3
         and ([.releases[].version] | sort) == ["1.0","1.1","1.2","2.0"]' "$TMP/out"
check "dry runs are not in the promotion history (2.0 entered staging once, 1.2 never tried it)" \
    jqt '([.promotions[] | select(.action == "promote" and .to == "staging" and .version == "2.0" and .passed)] | length) == 1
         and ([.promotions[] | select(.to == "staging" and .version == "1.2")] | length) == 0' "$TMP/out"

# ---- hostile and usage ----------------------------------------------------------------
run "$MLREG" promote m/clf@9.9 --to staging
expect_rc "promoting an unknown version exits 1" 1
run "$MLREG" promote m/clf@1.0 --to qa
expect_rc "promoting to an unknown stage exits 1" 1
stage_is "nothing moved" staging 2.0
run "$MLREG" promote m/clf@1.0
expect_rc "promote without --to is a usage error" 2
run "$MLREG" promote m/clf:staging --to production
expect_rc "promote of MODEL:STAGE promotes what the stage holds (here already there): exit 1" 1
grep -q "m/clf:staging is m/clf@2.0" "$TMP/err" && ok "promote MODEL:STAGE names the release" ||
    not_ok "promote MODEL:STAGE names the release"
run "$MLREG" approve m/clf@2.0
expect_rc "approve without --for is a usage error" 2
run env MLREG_URL=http://127.0.0.1:1 "$MLREG" promote m/clf@1.0 --to staging
expect_rc "promote against a closed port exits 3" 3

finish
