#!/bin/sh
# test_gates_noise.sh: the noise-aware gate rules against the real server
# (docs/promotions-api.md, docs/eval-report.md): min_improvement and
# min_improvement_pct with lower_is_better, rules on confidence-interval
# bounds (eval reports with {"value","ci_low","ci_high"}), slice rules with
# one table row per slice, and the min_interval cooldown; for each a refused
# and a passing `mlreg promote` with the gate table's text. Each model has
# its own rules (the config's "models" key). Also: the release API shows the
# intervals, a malformed interval is a push warning, and a bad rule stops
# `mlreg serve` naming its key.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"

out_has() {
    if grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in:)"; sed 's/^/  | /' "$TMP/out"; fi
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
jqt() { jq -e "$@" >/dev/null; }

# ---- a bad rule stops the server, naming the key ------------------------------
printf '%s\n' '{"gates":{"staging":[{"metric":"a","max_drop":0.1,"bound":"ci_low"}]}}' >"$W/bad.json"
run "$MLREG" serve --listen 127.0.0.1:0 --data "$TMP/bad-data" --config "$W/bad.json"
expect_rc "a bound that does not go with its rule stops serve: exit 2" 2
err_has "the message names the key and the bound it takes" \
    "gates\.staging\[0\]\.bound': max_drop takes \"bound\": \"ci\""
printf '%s\n' '{"gates":{"staging":[{"metric":"slices.*","min":0.1}]}}' >"$W/bad.json"
run "$MLREG" serve --listen 127.0.0.1:0 --data "$TMP/bad-data" --config "$W/bad.json"
expect_rc "a wildcard as the last segment stops serve: exit 2" 2
err_has "the message names the metric key" "gates\.staging\[0\]\.metric': a wildcard is one whole segment"

cat >"$W/config.json" <<'EOF'
{
  "stages": ["dev", "staging", "production"],
  "models": {
    "m/imp": { "gates": { "staging": [
        { "metric": "accuracy", "min_improvement": 0.01 },
        { "metric": "loss", "min_improvement_pct": 5, "lower_is_better": true } ] } },
    "m/ci": { "gates": { "staging": [
        { "metric": "accuracy", "min": 0.9, "bound": "ci_low" },
        { "metric": "accuracy", "max_drop": 0.02, "bound": "ci" } ] } },
    "m/sl": { "gates": { "staging": [
        { "metric": "slices.*.accuracy", "max_drop": 0.01 } ] } },
    "m/cool": { "gates": { "staging": [
        { "require": "min_interval", "seconds": 3 } ] } }
  }
}
EOF
start_server --config "$W/config.json" || finish

head -c 1024 /dev/urandom >"$W/weights.bin"
# push MODEL VERSION REPORT-JSON
push() {
    printf '%s\n' "$3" >"$W/eval.json"
    (cd "$TMP" && "$MLREG" push "$1@$2" --weights "$W/weights.bin" --eval-report "$W/eval.json") \
        >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
promote() { run "$MLREG" promote "$1" --to staging; }

# ---- min_improvement, min_improvement_pct with lower_is_better ------------------
push m/imp 1.0 '{"dataset":"val","metrics":{"accuracy":0.90,"loss":0.50}}'
expect_rc "push m/imp@1.0" 0
push m/imp 1.1 '{"dataset":"val","metrics":{"accuracy":0.905,"loss":0.49}}'
expect_rc "push m/imp@1.1" 0
push m/imp 1.2 '{"dataset":"val","metrics":{"accuracy":0.92,"loss":0.45}}'
expect_rc "push m/imp@1.2" 0
promote m/imp@1.0
expect_rc "the first release passes improvement rules without a baseline" 0
out_has "its rows say no baseline" '^  accuracy improvement >= 0\.01 +0\.9 .* PASS +no baseline$'
promote m/imp@1.1
expect_rc "1.1 ties the champion within the margin: refused, exit 1" 1
out_has "the header counts both rules failed" 'staging: REFUSED \(2 of 2 rules failed\)'
out_has "the accuracy row shows candidate, baseline, delta and the margin" \
    '^  accuracy improvement >= 0\.01 +0\.905 +0\.9 \(1\.0\) +\+0\.005 +FAIL +0\.905 vs baseline 0\.9 \(1\.0\): improvement 0\.005 < 0\.01; margin -0\.005$'
out_has "the loss row reads lower as better, in percent" \
    '^  loss improvement \(lower is better\) >= 5% +0\.49 +0\.5 \(1\.0\) +-0\.01 +FAIL +.*improvement 2% < 5%; margin -3%$'
promote m/imp@1.2
expect_rc "1.2 beats the champion by the margins: promoted" 0
out_has "accuracy improvement 0.02 passes with margin 0.01" 'improvement 0\.02 >= 0\.01; margin 0\.01$'
out_has "loss improvement 10% passes" '^  loss improvement .* PASS .*improvement 10% >= 5%; margin 5%$'
run "$MLREG" promote m/imp@1.1 --to staging --dry-run --json
check "the rows carry margin as a number and no bound" \
    jqt '.rules[0].type == "min_improvement" and (.rules[0].margin | type) == "number" and .rules[0].bound == null' "$TMP/out"

# ---- confidence intervals --------------------------------------------------------
push m/ci 1.0 '{"dataset":"val","metrics":{"accuracy":{"value":0.93,"ci_low":0.91,"ci_high":0.95}}}'
expect_rc "push of a report with an interval" 0
err_has "push counts the interval metric as one metric" 'metrics layout, 1 metric$'
push m/ci 1.1 '{"dataset":"val","metrics":{"accuracy":{"value":0.92,"ci_low":0.89,"ci_high":0.95}}}'
expect_rc "push m/ci@1.1" 0
push m/ci 1.2 '{"dataset":"val","metrics":{"accuracy":{"value":0.94,"ci_low":0.935,"ci_high":0.945}}}'
expect_rc "push m/ci@1.2" 0
push m/ci 1.3 '{"dataset":"val","metrics":{"accuracy":0.99,"odd":{"value":0.9,"ci_low":0.95,"ci_high":0.99}}}'
expect_rc "a malformed interval is not a refusal" 0
err_has "push warns about the malformed interval by name" \
    "warning: eval report: 'odd' is an interval object without ci_low <= value <= ci_high: kept in the report, not a metric"
run curl -sf "$MLREG_URL/api/v1/models/m/ci/versions/1.0"
check "the release API shows the value as the metric and the interval beside it" \
    jqt '.metrics.accuracy == 0.93 and .metric_intervals.accuracy == {"ci_low":0.91,"ci_high":0.95}' "$TMP/out"
run curl -sf "$MLREG_URL/api/v1/models/m/ci"
check "the model's release list carries the intervals too" \
    jqt '.releases[0].metric_intervals.accuracy.ci_low == 0.91 and .releases[3].metric_intervals == {}' "$TMP/out"
promote m/ci@1.0
expect_rc "ci_low 0.91 >= 0.9 without a baseline: promoted" 0
out_has "the ci_low row shows the bound and the interval" \
    '^  accuracy ci_low >= 0\.9 +0\.93 .* PASS +ci_low 0\.91 >= 0\.9 \(value 0\.93, ci \[0\.91, 0\.95\]\)$'
promote m/ci@1.1
expect_rc "1.1: value 0.92 passes but ci_low 0.89 does not; worst drop 0.06: refused" 1
out_has "the ci_low row fails on the bound" '^  accuracy ci_low >= 0\.9 +0\.92 .* FAIL +ci_low 0\.89 < 0\.9 '
out_has "the drop row compares the intervals' worst case" \
    '^  accuracy drop \(ci\) <= 0\.02 +0\.92 +0\.93 \(1\.0\) +-0\.01 +FAIL +ci \[0\.89, 0\.95\] vs baseline ci \[0\.91, 0\.95\] \(1\.0\): worst drop 0\.06 > 0\.02; margin -0\.04$'
promote m/ci@1.3
expect_rc "a release without an interval fails the bound rules" 1
out_has "the row says the interval is missing" 'FAIL +metric accuracy has no confidence interval in the eval report \(the rule reads ci_low\)$'
promote m/ci@1.2
expect_rc "1.2: narrow interval, worst drop 0.015 <= 0.02: promoted" 0
out_has "the drop row passes on the worst case" 'PASS +ci \[0\.935, 0\.945\] vs baseline ci \[0\.91, 0\.95\] \(1\.0\): worst drop 0\.015 <= 0\.02'

# ---- slices -----------------------------------------------------------------------
sl() { printf '{"dataset":"val","metrics":{"slices":{%s}}}' "$1"; }
push m/sl 1.0 "$(sl '"en":{"accuracy":0.90},"de":{"accuracy":0.80}')"
expect_rc "push m/sl@1.0" 0
push m/sl 1.1 "$(sl '"en":{"accuracy":0.91},"de":{"accuracy":0.75}')"
expect_rc "push m/sl@1.1" 0
push m/sl 1.2 "$(sl '"en":{"accuracy":0.95}')"
expect_rc "push m/sl@1.2" 0
push m/sl 1.3 "$(sl '"en":{"accuracy":0.90},"de":{"accuracy":0.795},"fr":{"accuracy":0.5}')"
expect_rc "push m/sl@1.3" 0
push m/sl 1.4 '{"dataset":"val","metrics":{"accuracy":0.99}}'
expect_rc "push m/sl@1.4 (no slices)" 0
promote m/sl@1.0
expect_rc "slices without a baseline: promoted" 0
out_has "one row per slice, named concretely" '^  slices\.de\.accuracy drop <= 0\.01 +0\.8 .* PASS +no baseline$'
out_has "the en slice has its row" '^  slices\.en\.accuracy drop <= 0\.01 +0\.9 .* PASS +no baseline$'
promote m/sl@1.1
expect_rc "the de slice drops 0.05: refused" 1
out_has "the header counts rows" 'staging: REFUSED \(1 of 2 rules failed\)'
out_has "the de row fails with its drop" '^  slices\.de\.accuracy drop <= 0\.01 +0\.75 +0\.8 \(1\.0\) +-0\.05 +FAIL '
out_has "the en row passes" '^  slices\.en\.accuracy drop <= 0\.01 +0\.91 +0\.9 \(1\.0\) +\+0\.01 +PASS '
promote m/sl@1.2
expect_rc "a slice missing from the candidate: refused" 1
out_has "the missing slice has a failing row" '^  slices\.de\.accuracy drop <= 0\.01 +- +0\.8 \(1\.0\) .*FAIL +slice missing from the candidate \(baseline 1\.0 has it\)$'
promote m/sl@1.4
expect_rc "no slice at all: refused" 1
out_has "one row says nothing matched" '^  slices\.\*\.accuracy drop <= 0\.01 .* FAIL +no metric matches slices\.\*\.accuracy in the eval report$'
promote m/sl@1.3
expect_rc "every shared slice within the limit, a new one: promoted" 0
out_has "the new slice passes and says so" '^  slices\.fr\.accuracy drop <= 0\.01 +0\.5 .* PASS +new slice: baseline 1\.0 does not have it$'
run curl -sf "$MLREG_URL/api/v1/models/m/sl/stages"
check "the stages answer lists the configured slice rule" \
    jqt '[.stages[] | select(.stage == "staging") | .gates[0].metric] == ["slices.*.accuracy"]' "$TMP/out"

# ---- cooldown ------------------------------------------------------------------------
push m/cool 1.0 '{"metrics":{"accuracy":0.9}}'
expect_rc "push m/cool@1.0" 0
push m/cool 1.1 '{"metrics":{"accuracy":0.9}}'
expect_rc "push m/cool@1.1" 0
promote m/cool@1.0
expect_rc "the first promotion into the stage has no cooldown" 0
out_has "its row says so" '^  min interval 3 s since the last promotion .* PASS +no earlier promotion into the stage$'
promote m/cool@1.1
expect_rc "a promotion right after it is refused" 1
out_has "the row says when it may be retried" \
    'FAIL +last promotion into the stage at [0-9T:-]+Z, [0-2] s ago \(< 3 s\): may be retried at [0-9T:-]+Z \(in [1-3] s\)$'
run "$MLREG" promote m/cool@1.1 --to staging --dry-run --json
check "the row is a min_interval with its seconds as threshold" \
    jqt '.rules[0].type == "min_interval" and .rules[0].threshold == 3 and .rules[0].passed == false' "$TMP/out"
sleep 4
promote m/cool@1.1
expect_rc "after the cooldown the promotion passes" 0
out_has "the row shows the time since" 'PASS +last promotion into the stage at [0-9T:-]+Z, [3-9] s ago \(>= 3 s\)$'
sleep 4
run "$MLREG" rollback m/cool --stage staging --to 1.0 --reason "bad"
expect_rc "rollback of staging to 1.0" 0
run "$MLREG" promote m/cool@1.1 --to staging --dry-run --json
check "a rollback is not a promotion: the cooldown counts from the last promotion" \
    jqt '.rules[0].passed == true' "$TMP/out"

finish
