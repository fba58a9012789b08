#!/bin/sh
# test_numbers.sh: numbers come out as their shortest round-trip decimal
# (include/mlreg/json_out.h): an eval report with accuracy 0.912 reads
# 0.912 in the model, release and promotion answers of /api/v1 (the
# listing GET /api/v1/models and the stage answer carry no metrics), and
# in `mlreg show`, `mlreg status` (text and --json) and the promote table
# (whose DELTA is the decimal difference of the two numbers beside it),
# never jansson's 0.91200000000000003; 0.1 + 0.2 stays
# 0.30000000000000004 (another double); 100.0 stays a real; every value
# reads back as the same double.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
cat >"$W/config.json" <<EOF
{
  "stages": ["staging"],
  "gates": { "staging": [ { "metric": "accuracy", "min": 0.9 },
                          { "metric": "f1", "max_drop": 0.6 } ] }
}
EOF
start_server --config "$W/config.json" || finish

jqt() { jq -e "$@" >/dev/null; }
# has NAME FILE TEXT / lacks NAME FILE TEXT: FILE holds (does not hold) TEXT;
# has_re NAME FILE ERE: a line of FILE matches ERE.
has() {
    if grep -qF -- "$3" "$2"; then ok "$1"; else
        not_ok "$1 (no '$3' in:)"; head -c 2000 "$2" | sed 's/^/  | /'; echo; fi
}
has_re() {
    if grep -Eq -- "$3" "$2"; then ok "$1"; else
        not_ok "$1 (nothing matches '$3' in:)"; head -c 2000 "$2" | sed 's/^/  | /'; echo; fi
}
lacks() {
    if grep -qF -- "$3" "$2"; then not_ok "$1 ('$3' found)"; else ok "$1"; fi
}
noisy=0.91200000000000003

printf '{"metrics":{"accuracy":0.912,"f1":0.30000000000000004,"loss":100.0,"ppl":1e21}}\n' \
    >"$W/eval1.json"
printf '{"metrics":{"accuracy":0.9,"f1":0.88,"loss":0.5,"ppl":2.5e-7}}\n' >"$W/eval0.json"
head -c 4096 /dev/urandom >"$W/weights.bin"
run "$MLREG" push m/num@0.9 --weights "$W/weights.bin" --eval-report "$W/eval0.json"
expect_rc "push 0.9 (accuracy 0.9)" 0
run "$MLREG" push m/num@1.0 --weights "$W/weights.bin" --eval-report "$W/eval1.json"
expect_rc "push 1.0 (accuracy 0.912)" 0

# ---- the API -----------------------------------------------------------------------------------
expect_status "GET /api/v1/models" 200 GET /api/v1/models
lacks "... never $noisy" "$TMP/body" "$noisy"
for path in /api/v1/models/m/num /api/v1/models/m/num/versions/1.0; do
    expect_status "GET $path" 200 GET "$path"
    cp "$TMP/body" "$W/api.json"
    has_re "$path writes accuracy 0.912" "$W/api.json" '"accuracy":0\.912[,}]'
    lacks "... never $noisy" "$W/api.json" "$noisy"
done
has "... 0.1 + 0.2 stays 0.30000000000000004" "$W/api.json" '"f1":0.30000000000000004'
has_re "... 100.0 stays a real" "$W/api.json" '"loss":100\.0[,}]'
has "... 1e21 as jansson writes it" "$W/api.json" '"ppl":1e21'
check "... each reads back as the same number" \
    jqt '.metrics.accuracy == 0.912 and .metrics.f1 == 0.30000000000000004
         and .metrics.loss == 100 and .metrics.ppl == 1e21' "$W/api.json"

# ---- the CLI -----------------------------------------------------------------------------------
run "$MLREG" show m/num@1.0
expect_rc "mlreg show m/num@1.0" 0
if grep -Eq '^(metrics)? +accuracy +0\.912$' "$TMP/out"; then ok "show prints accuracy 0.912"; else
    not_ok "show prints accuracy 0.912"; sed 's/^/  | /' "$TMP/out"; fi
has "... f1 0.30000000000000004 (no %g rounding to 0.3)" "$TMP/out" "0.30000000000000004"
if grep -Eq '^ +loss +100\.0$' "$TMP/out"; then ok "... loss 100.0"; else
    not_ok "... loss 100.0"; sed 's/^/  | /' "$TMP/out"; fi
run "$MLREG" show m/num@0.9
if grep -Eq '^ +ppl +2\.5e-7$' "$TMP/out"; then ok "show prints ppl 2.5e-7"; else
    not_ok "show prints ppl 2.5e-7"; sed 's/^/  | /' "$TMP/out"; fi
run "$MLREG" show m/num@1.0 --json
expect_rc "mlreg show --json" 0
has_re "... writes 0.912" "$TMP/out" '"accuracy":0\.912[,}]'
lacks "... never $noisy" "$TMP/out" "$noisy"

# ---- promote: the table, the stage answer, status -------------------------------------------
run "$MLREG" promote m/num@0.9 --to staging
expect_rc "promote 0.9 to staging" 0
run "$MLREG" promote m/num@1.0 --to staging
expect_rc "promote 1.0 to staging" 0
if grep -Eq '^  accuracy >= 0\.9 +0\.912 +0\.9 \(0\.9\) +\+0\.012 +PASS ' "$TMP/out"; then
    ok "the promote table shows 0.912, baseline 0.9 and delta +0.012"
else not_ok "the promote table shows 0.912, baseline 0.9 and delta +0.012"; sed 's/^/  | /' "$TMP/out"; fi
lacks "... never $noisy" "$TMP/out" "$noisy"
lacks "... nor the double's delta 0.012000000000000011" "$TMP/out" "0.01200000000000"
expect_status "GET /api/v1/models/m/num/stages/staging" 200 GET /api/v1/models/m/num/stages/staging
cp "$TMP/body" "$W/stage.json"
lacks "... never $noisy" "$W/stage.json" "$noisy"
check "... holds 1.0" jqt '.version == "1.0"' "$W/stage.json"
expect_status "GET /api/v1/models/m/num/promotions" 200 GET /api/v1/models/m/num/promotions
cp "$TMP/body" "$W/prom.json"
has_re "the promotion's gate table has candidate 0.912" "$W/prom.json" '"candidate":0\.912[,}]'
lacks "... never $noisy" "$W/prom.json" "$noisy"
run "$MLREG" status m/num
expect_rc "mlreg status m/num" 0
has_re "status lists accuracy=0.912" "$TMP/out" 'accuracy=0\.912( |$)'
lacks "... never $noisy" "$TMP/out" "$noisy"
run "$MLREG" status m/num --json
expect_rc "mlreg status --json" 0
has_re "status --json writes 0.912 (re-serialised by the CLI)" "$TMP/out" '"accuracy": 0\.912[,}]?$'
lacks "... never $noisy" "$TMP/out" "$noisy"
check "... and is JSON that reads back the same numbers" \
    jqt '[.releases[] | select(.version == "1.0") | .metrics.accuracy] == [0.912]' "$TMP/out"

finish
