#!/bin/sh
# test_dashboard.sh: the read-only web dashboard (registry/server_dashboard.c,
# web/) against the real server. With curl: / and /ui/<asset> need no token,
# carry the right Content-Type, ETag (304 on If-None-Match), Cache-Control,
# the strict CSP and nosniff; HEAD works; an unknown asset is 404; the API
# behind the page still wants the token. Then the page itself in Debian's
# chromium driven by playwright-core (tests/browser/dashboard.test.mjs)
# against a server seeded with several versions with metrics, a refused
# promotion, promotions, a rollback, a withdrawn release, a recorded image
# and hostile metric names, reasons and titles carrying <script> and
# <img onerror>: pages render, numbers match the API, the refusal shows its
# failing rule, no script from the data runs, every request stays on
# 127.0.0.1 and the token is kept in sessionStorage. Screenshots go to
# $MLREG_ARTIFACTS (default build/artifacts/dashboard). Without chromium or
# node the test fails: `make deps` installs them.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
jqt() { jq -e "$@" >/dev/null; }

# ---- tokens, keys, config -------------------------------------------------------
for who in ci rel reader alice visionreader; do tok >"$W/$who.tok"; done
h() { hash "$(cat "$W/$1.tok")"; }
"$MLREG" key generate --out "$W/bot" --no-password >/dev/null 2>&1 ||
    not_ok "key generate for the test"
"$MLREG" key generate --out "$W/ev" --no-password >/dev/null 2>&1 ||
    not_ok "key generate for the evaluator"
cat >"$W/config.json" <<CONF
{
  "tokens": [
    { "name": "ci", "sha256": "$(h ci)", "roles": ["read", "push"] },
    { "name": "release-mgr", "sha256": "$(h rel)",
      "roles": ["read", "promote:dev", "promote:staging", "promote:production",
                "override:staging"] },
    { "name": "reader", "sha256": "$(h reader)", "roles": ["read"] },
    { "name": "alice", "sha256": "$(h alice)",
      "roles": ["read", "approve:production", "override:staging"] },
    { "name": "visionreader", "sha256": "$(h visionreader)", "roles": ["read@vision"] }
  ],
  "stages": ["dev", "staging", "production"],
  "gates": {
    "staging": [ { "metric": "accuracy", "min": 0.85 },
                 { "metric": "f1", "max_drop": 0.02 } ],
    "production": [ { "metric": "accuracy", "max_drop": 0.005 },
                    { "require": "signed", "min": 1 },
                    { "require": "previous_stage" } ]
  },
  "trusted_keys": [ { "name": "release-bot", "file": "$W/bot.pub", "role": "release" },
                    { "name": "nightly-eval", "file": "$W/ev.pub", "role": "evaluator" } ]
}
CONF
start_server --config "$W/config.json" || finish
READ_TOKEN=$(cat "$W/reader.tok")

# ---- the static files: no token, headers -------------------------------------------
CSP="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
expect_status "GET / needs no token: 200" 200 GET /
check "/ is text/html" test "$(header Content-Type)" = "text/html; charset=utf-8"
check "/ is the dashboard page" grep -q '<script src="/ui/app.js" defer></script>' "$TMP/body"
case $(header Content-Security-Policy) in
"$CSP"*) ok "/ carries the strict CSP" ;;
*) not_ok "/ carries the strict CSP (got '$(header Content-Security-Policy)')" ;;
esac
check "/ has X-Content-Type-Options nosniff" test "$(header X-Content-Type-Options)" = nosniff
check "/ has Cache-Control no-cache" test "$(header Cache-Control)" = no-cache
ETAG=$(header ETag)
case $ETAG in
'"sha256-'*'"') ok "/ has a strong sha256 ETag" ;;
*) not_ok "/ has a strong sha256 ETag (got '$ETAG')" ;;
esac
LEN=$(wc -c <"$TMP/body")
rm -f "$TMP/body" # curl leaves the file alone when no body comes
expect_status "If-None-Match with the ETag: 304" 304 GET / -H "If-None-Match: $ETAG"
check "the 304 has no body" test ! -s "$TMP/body"
check "the 304 repeats the ETag" test "$(header ETag)" = "$ETAG"
expect_status "If-None-Match in a list, weak form: 304" 304 GET / -H "If-None-Match: \"x\", W/$ETAG"
expect_status "If-None-Match of another ETag: 200" 200 GET / -H 'If-None-Match: "sha256-00"'
rm -f "$TMP/body"
expect_status "HEAD / is 200" 200 HEAD /
check "HEAD / gives the length of the page" test "$(header Content-Length)" = "$LEN"
check "HEAD / sends no body" sh -c "! grep -qi doctype '$TMP/body'"
expect_status "GET /ui/app.js: 200" 200 GET /ui/app.js
check "app.js is text/javascript" test "$(header Content-Type)" = "text/javascript; charset=utf-8"
check "app.js carries the CSP too" test -n "$(header Content-Security-Policy)"
expect_status "an unknown asset is 404" 404 GET /ui/no-such.js
check "... and the error answer carries a CSP that allows nothing" \
    test "$(header Content-Security-Policy)" = "default-src 'none'; frame-ancestors 'none'; sandbox"
check "... and nosniff" test "$(header X-Content-Type-Options)" = nosniff
check "app.js builds no markup from strings" \
    sh -c "! grep -Eq '\\.(innerHTML|outerHTML)|insertAdjacentHTML|document\\.write|eval\\(|new Function' '$TMP/body'"
expect_status "GET /ui/app.css: 200" 200 GET /ui/app.css
check "app.css is text/css" test "$(header Content-Type)" = "text/css; charset=utf-8"
expect_status "HEAD /ui/app.css: 200" 200 HEAD /ui/app.css
expect_status "an unknown asset is 404" 404 GET /ui/nope.js
expect_status "index.html has one address (/): /ui/index.html is 404" 404 GET /ui/index.html
expect_status "a path below an asset is 404" 404 GET /ui/app.js/x
expect_status "/ui/ without a name is 404" 404 GET /ui/
expect_status "an encoded traversal is refused: 400" 400 GET /ui/..%2fMakefile
expect_status "POST / is 405" 405 POST /
check "the 405 says GET, HEAD" test "$(header Allow)" = "GET, HEAD"
expect_status "a query string on / is the same page: 200" 200 GET "/?x=%3Cscript%3E"
LONG=$(head -c 6000 /dev/zero | tr '\0' a)
expect_status "a 6000-byte asset name is 404" 404 GET "/ui/$LONG.js"
expect_status "a body on GET / is refused: 400" 400 GET / --data-binary 'x'
expect_status "dot segments are refused: 400" 400 GET /ui/../ui/app.js --path-as-is
expect_status "a wrong token does not matter for /: 200" 200 GET / -H "Authorization: Bearer nope"
expect_status "the API behind the page still wants a token: 401" 401 GET /api/v1/models
expect_status "the API with the read token: 200" 200 GET /api/v1/models -H "Authorization: Bearer $READ_TOKEN"

# ---- seed: versions, promotions (one refused), a rollback, a withdrawal ------------
# Model names follow the OCI grammar, so the hostile text goes where text is
# free: metric names, reasons, the eval dataset, file titles.
XSS_S='<script>window.__mlreg_xss=1</script>'
XSS_I='<img src=x onerror="window.__mlreg_xss=2">'
# Every report names the same dataset and evaluation code, so the drop rules
# compare them (a report without them beside one with them is a HOLD).
DS=sha256:$(printf 'holdout-v2' | sha256sum | cut -c1-64)
CODE=sha256:$(printf 'eval.py' | sha256sum | cut -c1-64)
report() { # FILE ACCURACY F1 [EXTRA_METRICS_JSON]
    printf '{"dataset":"val-v1 %s","dataset_digest":"%s","eval_code_digest":"%s","metrics":{"accuracy":%s,"f1":%s%s}}\n' \
        "$(printf '%s' "$XSS_S" | sed 's/"/\\"/g')" "$DS" "$CODE" "$2" "$3" "${4:-}" >"$W/$1"
}
report e10.json 0.90 0.88 ',"latency_p95_ms":41.5'
report e11.json 0.80 0.87 ',"latency_p95_ms":39'
report e12.json 0.93 0.9 ",\"$(printf '%s' "$XSS_I" | sed 's/"/\\"/g')\":0.5,\"latency_p95_ms\":44.25"
report e20.json 0.92 0.89 ',"latency_p95_ms":40'
# 2.0's report gives an interval for accuracy
jq -c '.metrics.accuracy = {"value":0.92,"ci_low":0.9,"ci_high":0.94}' "$W/e20.json" >"$W/e20ci.json" &&
    mv "$W/e20ci.json" "$W/e20.json"
head -c 4096 /dev/urandom >"$W/weights.bin"
printf '{"vocab":1}' >"$W/tok.json"
GIT=abc1234def5678abc1234def5678abc1234def56
push() { # MODEL@VERSION REPORT [push args...]
    r=$2; ref=$1; shift 2
    run "$MLREG" push --token-file "$W/ci.tok" "$ref" --weights "$W/weights.bin" \
        --eval-report "$W/$r" "$@"
    expect_rc "push $ref" 0
}
push vision/clf@1.0 e10.json --git-sha $GIT --sign-key "$W/bot.key" --tokenizer "$W/tok.json"
push vision/clf@1.1 e11.json --git-sha $GIT
push vision/clf@1.2 e12.json --git-sha $GIT
push vision/clf@2.0 e20.json --git-sha $GIT --sign-key "$W/bot.key"
push nlp/tagger@0.1 e10.json
promote() { # REF STAGE WANT_RC [args...]
    ref=$1; st=$2; want=$3; shift 3
    run "$MLREG" promote --token-file "$W/rel.tok" "$ref" --to "$st" "$@"
    expect_rc "promote $ref to $st: exit $want" "$want"
}
promote vision/clf@1.0 staging 0 --reason "first $XSS_S"
promote vision/clf@1.1 staging 1 --reason "try $XSS_I"
promote vision/clf@2.0 staging 0 --reason "better f1"
promote vision/clf@2.0 production 0
run "$MLREG" rollback --token-file "$W/rel.tok" vision/clf --stage staging --reason "incident $XSS_S"
expect_rc "rollback of staging to 1.0" 0
run "$MLREG" withdraw --token-file "$W/rel.tok" vision/clf@1.2 --reason "leak $XSS_I $XSS_S"
expect_rc "withdraw 1.2 with a hostile reason" 0
IMGD=sha256:$(printf 'image' | sha256sum | cut -d' ' -f1)
run "$MLREG" image-tag --token-file "$W/rel.tok" vision/clf@2.0 --repo localhost:5000/team/clf \
    --record --digest "$IMGD"
expect_rc "image-tag --record of 2.0" 0
run "$MLREG" approve --token-file "$W/alice.tok" vision/clf@2.0 --for production --comment "ok $XSS_I"
expect_rc "alice approves 2.0 for production" 0
# a break-glass move: nlp/tagger@0.2 fails staging's accuracy rule
push nlp/tagger@0.2 e11.json
run "$MLREG" approve --token-file "$W/alice.tok" nlp/tagger@0.2 --for staging --override \
    --reason "hotfix $XSS_I"
expect_rc "alice approves the override of nlp/tagger@0.2 into staging" 0
promote nlp/tagger@0.2 staging 0 --override --reason "incident $XSS_S"
# a held promotion: nlp/tagger@0.3 was evaluated on another dataset than
# 0.2, which staging holds, so staging's f1 drop rule cannot compare them
jq -c '.dataset_digest = "sha256:'"$(printf 'holdout-v3' | sha256sum | cut -c1-64)"'"' \
    "$W/e10.json" >"$W/e30.json"
push nlp/tagger@0.3 e30.json
promote nlp/tagger@0.3 staging 1

# an evaluator's evaluation of 2.0, with an interval and a hostile metric name
jq -nc --arg ds "$DS" --arg code "$CODE" --arg bad "$XSS_I" '{"dataset":"nightly", "dataset_digest":$ds,
    "eval_code_digest":$code, "metrics":{"accuracy":{"value":0.925,"ci_low":0.915,"ci_high":0.935},
    ($bad):0.25}}' >"$W/nightly.json"
run "$MLREG" attest --token-file "$W/ci.tok" vision/clf@2.0 --eval-report "$W/nightly.json" --key "$W/ev.key"
expect_rc "an evaluator attests 2.0" 0

# ---- the configured gates the charts draw ------------------------------------------
expect_status "the stages of vision/clf: 200" 200 GET /api/v1/models/vision/clf/stages \
    -H "Authorization: Bearer $READ_TOKEN"
check "the stages answer carries each stage's rules as configured" jqt \
    '[.stages[] | {stage, gates}] == [{"stage":"dev","gates":[]},
     {"stage":"staging","gates":[{"type":"min","metric":"accuracy","threshold":0.85},
                                 {"type":"max_drop","metric":"f1","threshold":0.02}]},
     {"stage":"production","gates":[{"type":"max_drop","metric":"accuracy","threshold":0.005},
                                    {"type":"signed","min":1},{"type":"previous_stage"}]}]' "$TMP/body"
check "... with thresholds as their shortest decimals" grep -q '"threshold":0.005' "$TMP/body"

# ---- the page in chromium --------------------------------------------------------
ART=${MLREG_ARTIFACTS:-$MLREG_ROOT/build/artifacts}/dashboard
BROWSER=$MLREG_ROOT/tests/browser
if [ ! -x /usr/bin/chromium ]; then
    not_ok "chromium is installed at /usr/bin/chromium (make deps installs it)"
    finish
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    not_ok "node and npm are installed (make deps installs them)"
    finish
fi
if [ ! -f "$BROWSER/node_modules/playwright-core/package.json" ]; then
    (cd "$BROWSER" && npm ci --no-audit --no-fund --ignore-scripts) >"$TMP/npm.log" 2>&1 ||
        { not_ok "npm ci in tests/browser (playwright-core)"; sed 's/^/  | /' "$TMP/npm.log"; finish; }
fi
MLREG_URL=$MLREG_URL DASH_TOKEN=$READ_TOKEN DASH_ARTIFACTS=$ART \
    DASH_PREFIX_TOKEN=$(cat "$W/visionreader.tok") \
    timeout 80 node "$BROWSER/dashboard.test.mjs" >"$TMP/browser.out" 2>&1
rc=$?
grep -E '^(ok|not ok) - ' "$TMP/browser.out"
grep -Ev '^(ok|not ok) - ' "$TMP/browser.out" | sed 's/^/# /'
bad=$(grep -c '^not ok - ' "$TMP/browser.out")
FAILS=$((FAILS + bad))
if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then not_ok "the browser test exited $rc"; fi
check "the browser test ran its checks" grep -q '^ok - every request went to 127.0.0.1' "$TMP/browser.out"
for f in models model dashboard release held audit; do
    check "screenshot $f.png saved in $ART" test -s "$ART/$f.png"
done
grep -q "$READ_TOKEN" "$TMP/server.log" && not_ok "the token never reaches the server log"
finish
