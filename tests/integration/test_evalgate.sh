#!/bin/sh
# test_evalgate.sh: gate rules on evaluators' numbers and comparable
# evaluations with a real server (docs/promotions-api.md, "Evaluator
# numbers and comparable evaluations"): a rule with "source": "evaluator" is
# refused without an attestation by a trusted evaluator key, whatever the
# pusher's report says; an attestation by a key of another role is ignored;
# a forged one is refused at POST and the gate still fails; the newest
# evaluator attestation decides and the table names it. A max_drop rule on
# a candidate evaluated on dataset D2 against a baseline evaluated on D1 is
# HELD (409 GATE_HELD, recorded as a refusal with held: true, the CLI prints
# HOLD and exits 1, `mlreg diff --stage` shows it), the table shows both
# digests; `mlreg attest` of the baseline with D2 numbers unblocks it. A
# break-glass override of a held promotion is flagged as usual. The records
# survive a restart and `mlreg audit verify`.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

if ! command -v jq >/dev/null 2>&1; then
    ok "jq is not installed: skipped"
    finish
fi
W=$TMP/work
mkdir -p "$W"
unset MLREG_KEY_PASSWORD
T_CI=$(tok)    # admin: pushes, trusts keys, promotes
T_ALICE=$(tok) # promotes into production, with override:production
T_BOB=$(tok)   # approves overrides only
cat >"$W/config.json" <<EOF
{
  "stages": ["dev", "staging", "production"],
  "gates": {
    "staging": [ { "metric": "accuracy", "min": 0.9, "source": "evaluator" } ],
    "production": [ { "metric": "accuracy", "max_drop": 0.02 } ]
  },
  "tokens": [
    { "name": "ci", "sha256": "$(hash "$T_CI")", "roles": ["admin"] },
    { "name": "alice", "sha256": "$(hash "$T_ALICE")",
      "roles": ["read", "promote:production", "override:production"] },
    { "name": "bob", "sha256": "$(hash "$T_BOB")", "roles": ["read", "override:production"] }
  ]
}
EOF
start_server --config "$W/config.json" || finish
export MLREG_TOKEN="$T_CI"
AUTH="Authorization: Bearer $T_CI"

out_has() {
    if grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in:)"; sed 's/^/  | /' "$TMP/out"; fi
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
jqb() { # NAME FILTER: the last body ($TMP/body) satisfies the jq FILTER
    if jq -e "$2" "$TMP/body" >/dev/null 2>&1; then ok "$1"; else
        not_ok "$1 (jq '$2' on: $(head -c 900 "$TMP/body"))"; fi
}
as() { # TOKEN CMD...
    t=$1; shift
    run env MLREG_TOKEN="$t" "$MLREG" "$@"
}
expect_promote() { # NAME WANT MODEL VERSION STAGE [TOKEN]: a dry run through the API
    expect_status "$1" "$2" POST "/api/v1/models/$3/promotions" \
        -H "Authorization: Bearer ${6:-$T_CI}" -H 'Content-Type: application/json' \
        --data-binary "{\"version\":\"$4\",\"to\":\"$5\",\"dry_run\":true}"
}
holder() { # MODEL STAGE: the version it holds, or "empty"
    v=$("$MLREG" resolve "$1:$2" 2>/dev/null | cut -d' ' -f1)
    echo "${v:-empty}"
}
report() { # FILE ACCURACY DATASET_DIGEST
    printf '{"metrics":{"accuracy":%s},"dataset_digest":"%s","eval_code_digest":"%s"}' \
        "$2" "$3" "$CODE" >"$1"
}

D1=sha256:$(printf 'holdout-2025' | sha256sum | cut -c1-64)
D2=sha256:$(printf 'holdout-2026' | sha256sum | cut -c1-64)
CODE=sha256:$(printf 'eval.py v3' | sha256sum | cut -c1-64)
head -c 50000 /dev/urandom >"$W/model.bin"
report "$W/push-1.json" 0.95 "$D1"
report "$W/push-2.json" 0.94 "$D2"

"$MLREG" key generate --out "$W/ev" --no-password >/dev/null 2>&1
"$MLREG" key generate --out "$W/appr" --no-password >/dev/null 2>&1
run "$MLREG" key trust "$W/ev.pub" --name nightly-eval --role evaluator
expect_rc "the keyring trusts an evaluator key" 0
run "$MLREG" key trust "$W/appr.pub" --name approver-1 --role approver
expect_rc "... and a key of role approver" 0

run "$MLREG" push m/clf@1.0 --weights "$W/model.bin" --eval-report "$W/push-1.json"
expect_rc "push m/clf@1.0, its own report claiming accuracy 0.95 on D1" 0
DIG1=$(cat "$TMP/out")

# ---- source evaluator -------------------------------------------------------------
run "$MLREG" promote m/clf@1.0 --to staging
expect_rc "a rule with source evaluator refuses a release without an attestation: exit 1" 1
out_has "... the row fails saying no trusted evaluator evaluated it" \
    "FAIL +no evaluation by a trusted evaluator key"
out_has "... the rule column says whose numbers it reads" "accuracy >= 0.9 \\(evaluator\\)"
check "... and staging stays empty" test "$(holder m/clf staging)" = empty
expect_promote "the API answers 409" 409 m/clf 1.0 staging
jqb "... GATE_FAILED, the row with outcome fail, source evaluator and no evaluation" \
    '.errors[0].code == "GATE_FAILED" and .held == false and
     (.rules[0] | .outcome == "fail" and .source == "evaluator" and .evaluation == null
      and .candidate == null)'

run "$MLREG" attest m/clf@1.0 --eval-report "$W/push-1.json" --key "$W/appr.key"
expect_rc "an approver key attests 0.95" 0
expect_promote "an attestation by a key that is not an evaluator is ignored: still 409" 409 \
    m/clf 1.0 staging
jqb "... still no evaluation" '.rules[0].evaluation == null and .rules[0].outcome == "fail"'

# a forged attestation: refused at POST; the gate still fails
report "$W/ev-low.json" 0.85 "$D1"
run "$MLREG" attest m/clf@1.0 --eval-report "$W/ev-low.json" --key "$W/ev.key" --json
expect_rc "the evaluator attests 0.85 (the pusher claimed 0.95)" 0
curl -sf -H "$AUTH" "$MLREG_URL/v2/m/clf/referrers/$DIG1" >"$W/refs.json"
REF=$(jq -r '[.manifests[] | select(.artifactType == "application/vnd.mlreg.evaluation.v1+dsse")]
    | .[-1].digest' "$W/refs.json")
ENVD=$(curl -sf -H "$AUTH" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$MLREG_URL/v2/m/clf/manifests/$REF" | jq -r '.layers[0].digest')
curl -sf -H "$AUTH" -o "$W/env.json" "$MLREG_URL/v2/m/clf/blobs/$ENVD"
jq -r .payload "$W/env.json" | base64 -d >"$W/payload.json"
jq '.predicate.report.metrics.accuracy = 0.99 | .predicate.evaluated_at = "2030-01-01T00:00:00Z"' \
    "$W/payload.json" >"$W/forged-payload.json"
jq --arg p "$(base64 -w0 "$W/forged-payload.json")" '.payload = $p' "$W/env.json" >"$W/forged.json"
expect_status "a forged attestation (accuracy raised to 0.99) is refused at POST" 400 POST \
    /api/v1/models/m/clf/versions/1.0/evaluations -H "$AUTH" --data-binary "@$W/forged.json"
check "... it was a whole envelope, signed, its payload changed" \
    jq -e '.signatures | length == 1' "$W/forged.json"
if grep -qF "no valid signature by key" "$TMP/body"; then ok "... refused for its signature"; else
    not_ok "... refused for its signature ($(head -c 300 "$TMP/body"))"; fi
run "$MLREG" promote m/clf@1.0 --to staging
expect_rc "the gate still fails, on the evaluator's 0.85: exit 1" 1
out_has "... the row judges 0.85" "FAIL +0.85 < 0.9 \\(fails\\)"
out_has "... and names the evaluation it read" \
    "candidate numbers from the evaluation by key nightly-eval \\([0-9A-F]{16}\\) #[0-9]+, evaluated at "

report "$W/ev-ok.json" 0.93 "$D1"
run "$MLREG" attest m/clf@1.0 --eval-report "$W/ev-ok.json" --key "$W/ev.key"
expect_rc "the evaluator attests 0.93 later" 0
expect_promote "the newest evaluator attestation counts: the dry run passes" 200 m/clf 1.0 staging
jqb "... naming the evaluation (key, seq, time)" \
    '.rules[0] | .outcome == "pass" and .passed and .candidate == 0.93 and .source == "evaluator"
     and .evaluation.key_name == "nightly-eval" and (.evaluation.key_id | length) == 16
     and (.evaluation.seq | type) == "number" and (.evaluation.evaluated_at | type) == "string"'
run "$MLREG" promote m/clf@1.0 --to staging
expect_rc "promote m/clf@1.0 to staging" 0
run "$MLREG" promote m/clf@1.0 --to production
expect_rc "promote m/clf@1.0 to production (no baseline)" 0
out_has "... the max_drop row passes: no baseline" "PASS +no baseline"

# ---- comparable evaluations: HOLD ---------------------------------------------------
run "$MLREG" push m/clf@2.0 --weights "$W/model.bin" --eval-report "$W/push-2.json"
expect_rc "push m/clf@2.0, evaluated on D2" 0
run "$MLREG" promote m/clf@2.0 --to production --reason "new holdout"
expect_rc "the candidate on D2 against the baseline on D1 is held: exit 1" 1
out_has "... the verdict says HELD" "HELD: re-evaluate the baseline \\(1 of 1 rule hold\\)"
out_has "... the row is HOLD with the reason" \
    "HOLD +baseline evaluated on another dataset: re-evaluate the baseline"
out_has "... the table shows the digests compared" \
    "digests: candidate dataset $D2, eval code $CODE; baseline dataset $D1"
err_has "... stderr says it is held" "held by the gates: re-evaluate the baseline"
check "... production still holds 1.0" test "$(holder m/clf production)" = 1.0
expect_promote "the API answers 409 GATE_HELD" 409 m/clf 2.0 production
if jq -e --arg d1 "$D1" --arg d2 "$D2" --arg c "$CODE" '.errors[0].code == "GATE_HELD" and
    .held == true and .passed == false and .moved == false and (.rules[0] | .outcome == "hold"
    and .passed == false and .source == "pusher" and .baseline == null
    and .digests.candidate.dataset == $d2 and .digests.baseline.dataset == $d1
    and .digests.candidate.eval_code == $c and .baseline_evaluation == null
    and (.detail | test("sha256:[0-9a-f]{12}")))' "$TMP/body" >/dev/null; then
    ok "... GATE_HELD, held: true, the hold row naming both digests"
else
    not_ok "... GATE_HELD, held: true, the hold row naming both digests ($(head -c 900 "$TMP/body"))"
fi
run "$MLREG" promote m/clf@2.0 --to production --dry-run
expect_rc "mlreg promote --dry-run of the held promotion: exit 1" 1
out_has "... WOULD BE HELD" "WOULD BE HELD: re-evaluate the baseline \\(dry run: 1 of 1 rule hold\\)"
run "$MLREG" diff m/clf@1.0 m/clf@2.0 --stage production
expect_rc "mlreg diff --stage production" 0
out_has "... shows the dry run would be held" "WOULD BE HELD: re-evaluate the baseline"
out_has "... with the HOLD row" "HOLD +accuracy drop <= 0.02"
expect_status "the promotions log records it" 200 GET /api/v1/models/m/clf/promotions -H "$AUTH"
jqb "... as a refusal with held: true and the table" \
    '.promotions[-1] | .version == "2.0" and .passed == false and .held == true
     and .rules[0].outcome == "hold"'
expect_status "the audit log has the entry" 200 GET "/api/v1/audit?model=m/clf" -H "$AUTH"
if jq -e '[.entries[] | (if type == "string" then fromjson else . end)
    | select(.action == "promote" and .subject.version == "2.0")] | .[-1]
    | .result == "refused" and .details.held == true and .gates[0].outcome == "hold"' \
    "$TMP/body" >/dev/null; then ok "... result refused, details.held true"; else
    not_ok "... result refused, details.held true ($(head -c 900 "$TMP/body"))"; fi

# the baseline re-evaluated on D2 decides; the newest counts
report "$W/base-d2-high.json" 0.99 "$D2"
run "$MLREG" attest m/clf@1.0 --eval-report "$W/base-d2-high.json" --key "$W/ev.key"
expect_rc "the evaluator attests the baseline on D2: 0.99" 0
expect_promote "now comparable, the drop 0.99 -> 0.94 fails: 409 GATE_FAILED" 409 m/clf 2.0 production
jqb "... the row fails on the baseline evaluation's numbers" \
    '.errors[0].code == "GATE_FAILED" and .held == false and (.rules[0] | .outcome == "fail"
     and .baseline == 0.99 and .baseline_evaluation.key_name == "nightly-eval")'
report "$W/base-d2.json" 0.93 "$D2"
run "$MLREG" attest m/clf@1.0 --eval-report "$W/base-d2.json" --key "$W/ev.key"
expect_rc "the evaluator attests the baseline on D2 again: 0.93" 0
run "$MLREG" promote m/clf@2.0 --to production --reason "baseline re-evaluated"
expect_rc "mlreg attest on the baseline with D2 numbers unblocks it" 0
out_has "... PROMOTED" "PROMOTED \\(1 rule passed\\)"
out_has "... the row names the baseline's evaluation" \
    "baseline numbers from the evaluation by key nightly-eval"
out_has "... and the digests, now the same" "digests: candidate dataset $D2, eval code $CODE; baseline dataset $D2"
check "... production holds 2.0" test "$(holder m/clf production)" = 2.0

# ---- a break-glass override of a held promotion -------------------------------------
run "$MLREG" push m/two@1.0 --weights "$W/model.bin" --eval-report "$W/push-1.json"
run "$MLREG" promote m/two@1.0 --to production
expect_rc "m/two@1.0 (D1) in production" 0
run "$MLREG" push m/two@2.0 --weights "$W/model.bin" --eval-report "$W/push-2.json"
as "$T_ALICE" promote m/two@2.0 --to production --override --reason "holdout moved"
expect_rc "an override of a held promotion without an approval is refused: exit 1" 1
out_has "... the row is HOLD" "HOLD +baseline evaluated on another dataset"
err_has "... the override's condition is named" "needs an approval of the override"
as "$T_BOB" approve m/two@2.0 --for production --override --reason "holdout moved, checked"
expect_rc "bob approves the override" 0
as "$T_ALICE" promote m/two@2.0 --to production --override --reason "holdout moved"
expect_rc "the override moves the held promotion" 0
out_has "... PROMOTED BY OVERRIDE" "PROMOTED BY OVERRIDE \\(0 of 1 rule failed, 1 held\\)"
check "... m/two production holds 2.0" test "$(holder m/two production)" = 2.0
expect_status "the promotions log" 200 GET /api/v1/models/m/two/promotions -H "$AUTH"
jqb "... flags the move as an override, not held" \
    '.promotions[-1] | .override == true and .passed == true and (.held // false) == false
     and .rules[0].outcome == "hold"'
run "$MLREG" audit log --overrides
out_has "mlreg audit log --overrides lists it" "m/two"

# ---- restart and verify: the records replay ------------------------------------------
curl -sf -H "$AUTH" "$MLREG_URL/api/v1/models/m/clf/promotions" >"$W/before.json"
stop_server
start_server --config "$W/config.json" || finish
curl -sf -H "$AUTH" "$MLREG_URL/api/v1/models/m/clf/promotions" >"$W/after.json"
check "after a restart the promotions log is the same" cmp -s "$W/before.json" "$W/after.json"
run "$MLREG" audit verify
expect_rc "mlreg audit verify passes" 0

finish
