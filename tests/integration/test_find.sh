#!/bin/sh
# test_find.sh: the commands that find things, against the real server:
# `mlreg ls` (models under a prefix with what their stages hold), `mlreg
# versions` (newest first, paged through GET /api/v1/models/M?order=&n=&last=
# with its Link header, signatures that count, stages, withdrawn), `mlreg
# diff` (files by title, metrics with deltas, gates from the promotion dry
# run; every reference form) and `mlreg search` (metric conditions, stage,
# prefix; hostile conditions). Tokens: a missing or wrong token is refused,
# a read token reads but gets the gates "not evaluated", a promote token
# gets them evaluated. Hostile model and metric names never reach the
# terminal as escape sequences.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
out_has() {
    if grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in:)"; sed 's/^/  | /' "$TMP/out"; fi
}
out_lacks() {
    if grep -Eq -- "$2" "$TMP/out"; then not_ok "$1 (a line matches '$2')"; sed 's/^/  | /' "$TMP/out"; else
        ok "$1"; fi
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
jqt() { jq -e "$@" >/dev/null; }

T_ADMIN=$(tok); T_READ=$(tok); T_STAGE=$(tok); T_VIS=$(tok)
"$MLREG" key generate --out "$W/bot" --no-password >/dev/null 2>&1 || not_ok "key generate"
cat >"$W/config.json" <<EOF2
{
  "stages": ["dev", "staging", "production"],
  "gates": { "staging": [ { "metric": "accuracy", "min": 0.85 } ] },
  "trusted_keys": [ { "name": "release-bot", "file": "$W/bot.pub", "role": "release" } ],
  "tokens": [
    { "name": "root", "sha256": "$(hash "$T_ADMIN")", "roles": ["admin"] },
    { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] },
    { "name": "stager", "sha256": "$(hash "$T_STAGE")", "roles": ["read", "promote:staging"] },
    { "name": "vis", "sha256": "$(hash "$T_VIS")", "roles": ["read@vision"] } ]
}
EOF2
start_server --config "$W/config.json" || finish
export MLREG_TOKEN="$T_ADMIN"

# ---- releases: each from its own directory, so titles match across them ---
rel() { # DIR WEIGHTS-BYTES-FROM TOKENIZER-TEXT ACCURACY F1
    mkdir -p "$W/$1"
    cp "$W/$2" "$W/$1/weights.bin"
    printf '%s' "$3" >"$W/$1/tokenizer.json"
    printf '{"metrics":{"accuracy":%s,"f1":%s}}\n' "$4" "$5" >"$W/$1/eval.json"
}
head -c 3000 /dev/urandom >"$W/w1.bin"
head -c 5000 /dev/urandom >"$W/w2.bin"
rel r10 w1.bin '{"vocab":1}' 0.9 0.8
rel r11 w2.bin '{"vocab":1}' 0.95 0.85
rel r12 w1.bin '{"vocab":2}' 0.7 0.6
rel s01 w1.bin '{"vocab":1}' 0.95 0.85
GIT=abc1234def5678abc1234def5678abc1234def56
push() { # REF DIR [push args...]
    r=$1; d=$W/$2; shift 2
    (cd "$TMP" && "$MLREG" push "$r" --weights "$d/weights.bin" --tokenizer "$d/tokenizer.json" \
        --eval-report "$d/eval.json" "$@") >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
push vision/det@1.0 r10 --git-sha $GIT
expect_rc "push vision/det@1.0" 0
push vision/det@1.1 r11 --sign-key "$W/bot.key"
expect_rc "push vision/det@1.1 (signed)" 0
D11=$(tail -n 1 "$TMP/out")
for v in 1.2 1.3 1.4; do
    push vision/det@$v r12
    expect_rc "push vision/det@$v" 0
done
rm "$W/s01/tokenizer.json"
(cd "$TMP" && "$MLREG" push vision/seg@0.1 --weights "$W/s01/weights.bin" --eval-report "$W/s01/eval.json") \
    >"$TMP/out" 2>"$TMP/err"
RC=$?
expect_rc "push vision/seg@0.1" 0
(cd "$TMP" && "$MLREG" push visionary@1.0 --weights "$W/w1.bin") >"$TMP/out" 2>"$TMP/err"
RC=$?
expect_rc "push visionary@1.0" 0
run "$MLREG" promote vision/det@1.0 --to dev
expect_rc "promote 1.0 to dev" 0
run "$MLREG" promote vision/det@1.1 --to staging
expect_rc "promote 1.1 to staging" 0
run "$MLREG" withdraw vision/det@1.3 --reason "bad labels"
expect_rc "withdraw 1.3" 0

# ---- ls ----------------------------------------------------------------------
run "$MLREG" ls
expect_rc "ls exits 0" 0
out_has "ls has a header" '^MODEL +RELEASES +LATEST +STAGES'
out_has "ls shows vision/det with 5 releases and its stages" '^vision/det +5 +1\.4 +dev=1\.0 staging=1\.1 production=-$'
out_has "ls shows visionary" '^visionary +1 '
run "$MLREG" ls vision
out_has "ls vision lists vision/seg" '^vision/seg '
out_lacks "ls vision does not list visionary (prefix is a model name)" '^visionary'
run "$MLREG" ls vision/ --json
check "ls --json lists the two models under vision with their stages" \
    jqt '[.models[].name] == ["vision/det","vision/seg"] and (.models[0].stages[1].version == "1.1")' "$TMP/out"
MLREG_TOKEN="$T_VIS" run "$MLREG" ls
expect_rc "ls with a token limited to vision exits 0" 0
out_has "it lists vision/det with its count, latest and stages" '^vision/det +5 +1\.4 +dev=1\.0 staging=1\.1 production=-$'
out_lacks "it does not list visionary, which it may not read" '^visionary'
MLREG_TOKEN="$T_VIS" run "$MLREG" search --metric 'accuracy>0.9' --json
check "search with the limited token finds vision/det@1.1 and vision/seg@0.1 only" \
    jqt '[.results[] | .model + "@" + .version] == ["vision/det@1.1","vision/seg@0.1"]' "$TMP/out"
run "$MLREG" ls nothing/here
expect_rc "ls of an empty prefix exits 0" 0
err_has "ls of an empty prefix says so" 'no models under nothing/here'
run "$MLREG" ls 'Bad..Name'
expect_rc "ls of a malformed prefix is a usage error" 2
run "$MLREG" ls a b
expect_rc "ls with two prefixes is a usage error" 2

# ---- the paged endpoint ------------------------------------------------------
AUTH="Authorization: Bearer $T_READ"
expect_status "the model list pages: n=2 newest first" 200 GET "/api/v1/models/vision/det?order=newest&n=2" -H "$AUTH"
check "the page holds 1.4 and 1.3 with stages and signatures" \
    jqt '[.releases[].version] == ["1.4","1.3"] and (.releases[0] | has("stages") and has("signed") and has("signatures"))' "$TMP/body"
check "the page has a Link to the next one" \
    test "$(header Link)" = '</api/v1/models/vision/det?order=newest&n=2&last=1.3>; rel="next"'
expect_status "the next page follows last=1.3" 200 GET "/api/v1/models/vision/det?order=newest&n=2&last=1.3" -H "$AUTH"
check "the next page holds 1.2 and 1.1; 1.1 counts one signature" \
    jqt '[.releases[].version] == ["1.2","1.1"] and .releases[1].signed == 1 and .releases[1].stages == ["staging"]' "$TMP/body"
check "... and names 1.1's signer with its status; 1.2 has none" \
    jqt '(.releases[1].signers | length) == 1 and (.releases[1].signers[0] | (.key_id | test("^[0-9A-F]{16}$")) and .status == "trusted" and .counts == true) and .releases[0].signers == []' "$TMP/body"
expect_status "the last page" 200 GET "/api/v1/models/vision/det?order=newest&n=2&last=1.1" -H "$AUTH"
check "the last page holds 1.0 and no Link" sh -c "jq -e '[.releases[].version] == [\"1.0\"]' '$TMP/body' >/dev/null && ! grep -qi '^link:' '$TMP/headers'"
expect_status "without paging the list is whole, oldest first" 200 GET "/api/v1/models/vision/det" -H "$AUTH"
check "whole list in push order" jqt '[.releases[].version] == ["1.0","1.1","1.2","1.3","1.4"]' "$TMP/body"
expect_status "n=0 is refused" 400 GET "/api/v1/models/vision/det?n=0" -H "$AUTH"
expect_status "n=1001 is refused" 400 GET "/api/v1/models/vision/det?n=1001" -H "$AUTH"
expect_status "n=-1 is refused" 400 GET "/api/v1/models/vision/det?n=-1" -H "$AUTH"
expect_status "n=99999999999999999999999 is refused" 400 GET "/api/v1/models/vision/det?n=99999999999999999999999" -H "$AUTH"
expect_status "order=sideways is refused" 400 GET "/api/v1/models/vision/det?order=sideways" -H "$AUTH"
expect_status "last naming no release is refused" 400 GET "/api/v1/models/vision/det?last=9.9" -H "$AUTH"
expect_status "last with a hostile value is refused" 400 GET "/api/v1/models/vision/det?last=%3Cscript%3E" -H "$AUTH"
expect_status "the paged list without a token is 401" 401 GET "/api/v1/models/vision/det?n=1"
expect_status "the paged list with a wrong token is 401" 401 GET "/api/v1/models/vision/det?n=1" -H "Authorization: Bearer $(tok)"

# ---- versions ----------------------------------------------------------------
run "$MLREG" versions vision/det
expect_rc "versions exits 0" 0
out_has "versions has the header" '^VERSION +PUSHED +GIT +SIZE +SIGNED +STAGES +WITHDRAWN'
check "versions lists newest first" test "$(sed -n '2,6p' "$TMP/out" | cut -d' ' -f1 | tr '\n' ' ')" = "1.4 1.3 1.2 1.1 1.0 "
out_has "1.3 is withdrawn" '^1\.3 .* yes$'
out_has "1.1 is signed (one signature counts) and in staging" '^1\.1 .*yes \(1\) +staging +-$'
out_has "1.0 has its git sha and is in dev" '^1\.0 .* abc1234 .* no +dev +-$'
run "$MLREG" versions vision/det --limit 2
out_has "--limit 2 prints 1.4" '^1\.4 '
out_lacks "--limit 2 stops before 1.2" '^1\.2 '
err_has "--limit says how to ask for more" 'more releases: mlreg versions vision/det --limit 2 --after 1\.3'
run "$MLREG" versions vision/det --limit 2 --after 1.3
check "--after 1.3 continues with 1.2 and 1.1" test "$(sed -n '2,3p' "$TMP/out" | cut -d' ' -f1 | tr '\n' ' ')" = "1.2 1.1 "
run "$MLREG" versions vision/det --oldest-first --json --limit 3
check "--oldest-first --json: 1.0 1.1 1.2 and more" \
    jqt '[.releases[].version] == ["1.0","1.1","1.2"] and .more == true and .model == "vision/det"' "$TMP/out"
run "$MLREG" versions vision/det --limit 0
expect_rc "--limit 0 is a usage error" 2
run "$MLREG" versions vision/det --limit 12abc
expect_rc "--limit 12abc is a usage error" 2
run "$MLREG" versions vision/det --limit 99999999999999999999999
expect_rc "a huge --limit is a usage error" 2
run "$MLREG" versions vision/det --after '../x'
expect_rc "a malformed --after is a usage error" 2
run "$MLREG" versions vision/det --after 7.7
expect_rc "--after naming no release is refused (exit 1)" 1
run "$MLREG" versions no/such
expect_rc "versions of an unknown model exits 1" 1
run "$MLREG" versions
expect_rc "versions without a model is a usage error" 2
MLREG_TOKEN=$(tok) run "$MLREG" versions vision/det
expect_rc "versions with a wrong token exits 1" 1
err_has "the wrong token is named as the reason" 'authentication'
MLREG_TOKEN="$T_READ" run "$MLREG" versions vision/det
expect_rc "a read token may list versions" 0

# versions reads the list in pages of 100: 101 releases take two, in order
i=1
while [ $i -le 101 ]; do
    (cd "$TMP" && "$MLREG" push many/m@0.$i --weights "$W/w1.bin") >/dev/null 2>&1 || not_ok "push many/m@0.$i"
    i=$((i + 1))
done
run "$MLREG" versions many/m --json
check "versions pages past 100 releases: 101, each once, newest first" \
    jqt '(.releases | length) == 101 and ([.releases[].version] | unique | length) == 101 and .releases[0].version == "0.101" and .releases[100].version == "0.1" and .more == false' "$TMP/out"
run "$MLREG" versions many/m --limit 100
err_has "--limit 100 of 101 says there is more" 'more releases: mlreg versions many/m --limit 100 --after 0\.2$'

# ---- diff --------------------------------------------------------------------
run "$MLREG" diff vision/det@1.0 vision/det@1.2
expect_rc "diff exits 0" 0
out_has "diff header names both releases" '^diff vision/det@1\.0 \(sha256:[0-9a-f]{12}\) -> vision/det@1\.2 '
out_has "tokenizer and report changed, weights unchanged" '^files: 0 added, 0 removed, 2 changed, 1 unchanged'
out_has "the changed file is the tokenizer, both sides" '^  < tokenizer +tokenizer\.json'
out_has "its new side too" '^  > tokenizer +tokenizer\.json'
out_has "accuracy side by side with the delta" '^  accuracy +0\.9 +0\.7 +-0\.2$'
out_has "f1 delta is exact, not float noise" '^  f1 +0\.8 +0\.6 +-0\.2$'
out_has "gates of dev (1.2 is in no stage: the first) are evaluated" '^gates of dev for vision/det@1\.2 .*WOULD PASS'
MLREG_TOKEN="$T_STAGE" run "$MLREG" diff vision/det:dev vision/det@1.2 --stage staging
expect_rc "diff with a stage reference exits 0" 0
err_has "the stage reference is resolved and said" 'vision/det:dev is vision/det@1\.0'
out_has "staging gates would refuse 1.2 (accuracy 0.7 < 0.85)" '^gates of staging for vision/det@1\.2 \(dry run against what staging holds now: 1\.1\): WOULD BE REFUSED'
out_has "the failing rule is listed" '^  FAIL +accuracy >= 0\.85 '
MLREG_TOKEN="$T_STAGE" run "$MLREG" diff "vision/det@$D11" vision/det:staging --json
expect_rc "diff of a digest reference and a stage exits 0" 0
check "diff --json of a release with itself: nothing changed, deltas 0" \
    jqt '.files.unchanged == 3 and (.files.changed|length) == 0 and ([.metrics[].delta] == [0,0]) and .from.version == "1.1" and .to.version == "1.1"' "$TMP/out"
MLREG_TOKEN="$T_STAGE" run "$MLREG" diff "vision/det@$D11" vision/det:staging --stage staging
out_has "diff of a release with itself prints a zero delta as 0 (not 0.0)" '^  accuracy +[0-9.]+ +[0-9.]+ +0$'
out_lacks "... and no -0 or 0.0 delta" ' (-?0\.0|-0)$'
MLREG_TOKEN="$T_STAGE" run "$MLREG" diff "vision/det@$D11" vision/det:staging --json
check "diff --json: the gates of production are not evaluated without the role" \
    jqt '.gates.stage == "production" and .gates.evaluated == false and (.gates.error | test("forbidden|promote"))' "$TMP/out"
MLREG_TOKEN="$T_READ" run "$MLREG" diff vision/det@1.0 vision/det@1.1 --stage staging
expect_rc "a read token diffs (exit 0)" 0
out_has "a read token gets the gates not evaluated, with the reason" '^gates of staging: not evaluated: .*(forbidden|promote)'
MLREG_TOKEN="$T_STAGE" run "$MLREG" diff vision/det@1.0 vision/seg@0.1 --json
check "diff across models: weights unchanged (same bytes), tokenizer removed, report changed" \
    jqt '(.files.removed | map(.title)) == ["tokenizer.json"] and .files.unchanged == 1 and (.files.changed | map(.title)) == ["eval.json"]' "$TMP/out"
run "$MLREG" diff vision/det@1.0
expect_rc "diff with one reference is a usage error" 2
run "$MLREG" diff vision/det@1.0 vision/det@1.1 vision/det@1.2
expect_rc "diff with three references is a usage error" 2
run "$MLREG" diff vision/det@1.0 'vision/det@../../etc'
expect_rc "a malformed reference is a usage error" 2
run "$MLREG" diff vision/det@1.0 "$(printf 'vision/det@\033[2Jx')"
expect_rc "a reference with an escape sequence is a usage error" 2
check "the usage error does not echo the escape sequence" sh -c "! grep -q \"$(printf '\033')\" '$TMP/err'"
run "$MLREG" versions "$(printf 'm\033[2J')"
check "versions does not echo an escape sequence either" sh -c "! grep -q \"$(printf '\033')\" '$TMP/err'"
run "$MLREG" diff vision/det@1.0 vision/det@1.1 --stage 'a b'
expect_rc "a malformed --stage is a usage error" 2
run "$MLREG" diff vision/det@1.0 vision/det:production
expect_rc "an empty stage is refused (exit 1)" 1
err_has "the empty stage is named" 'vision/det:production is empty'
run "$MLREG" diff vision/det@1.0 vision/det@9.9
expect_rc "an unknown release is refused (exit 1)" 1
run "$MLREG" diff vision/det@1.0 vision/det@1.1 --bogus
expect_rc "an unknown option is a usage error" 2
MLREG_TOKEN= run "$MLREG" diff vision/det@1.0 vision/det@1.1
expect_rc "diff without a token exits 1" 1

# ---- search ------------------------------------------------------------------
run "$MLREG" search --metric 'accuracy>0.85'
expect_rc "search with matches exits 0" 0
out_has "1.1 (0.95) matches" '^vision/det@1\.1 .* accuracy=0\.95$'
out_has "vision/seg 0.1 (0.95) matches" '^vision/seg@0\.1 '
out_has "1.0 (0.9) matches" '^vision/det@1\.0 '
out_lacks "1.2 (0.7) does not match" '^vision/det@1\.2 '
run "$MLREG" search --metric 'accuracy>=0.9' --metric 'f1<0.85'
out_has "both conditions: 1.0 only" '^vision/det@1\.0 '
out_lacks "both conditions: not 1.1 (f1 0.85)" '^vision/det@1\.1 '
run "$MLREG" search --metric 'accuracy>0.5' --stage staging --json
check "--stage staging: only 1.1" jqt '[.results[] | .model + "@" + .version] == ["vision/det@1.1"]' "$TMP/out"
run "$MLREG" search --model vision/seg --json
check "--model vision/seg without conditions: its one release" jqt '[.results[].version] == ["0.1"] and .models == 1' "$TMP/out"
run "$MLREG" search --metric 'accuracy<0.8'
out_has "a withdrawn release is marked" '^vision/det@1\.3 .*\(withdrawn\)$'
run "$MLREG" search --metric 'accuracy=0.95' --model vision/det
out_has "= compares exactly" '^vision/det@1\.1 '
run "$MLREG" search --metric 'accuracy>0.99'
expect_rc "search without matches exits 1" 1
err_has "search without matches says what it searched" 'no release matches \([0-9]+ models, [0-9]+ releases searched\)'
for bad in 'accuracy' 'accuracy==0.9' 'accuracy=>0.9' 'accuracy>nan' 'accuracy>inf' 'accuracy>1e999' \
    'accuracy>' '>0.9' 'accuracy>0.9abc' "$(head -c 600 /dev/zero | tr '\0' a)>1"; do
    run "$MLREG" search --metric "$bad"
    expect_rc "search --metric '$(printf '%.40s' "$bad")' is a usage error" 2
done
run "$MLREG" search --metric "$(printf 'acc\033[31m>1')"
expect_rc "a condition with an escape sequence is a usage error" 2
check "the escape sequence is not echoed" sh -c "! grep -q \"$(printf '\033')\" '$TMP/err'"
run "$MLREG" search --stage '../x'
expect_rc "a malformed --stage is a usage error" 2
run "$MLREG" search --model 'UPPER'
expect_rc "a malformed --model is a usage error" 2
run "$MLREG" search stray
expect_rc "a stray argument is a usage error" 2
i=0; set --; while [ $i -lt 33 ]; do set -- "$@" --metric 'a>1'; i=$((i + 1)); done
run "$MLREG" search "$@"
expect_rc "33 conditions are a usage error" 2
MLREG_TOKEN=$(tok) run "$MLREG" search --metric 'accuracy>0'
expect_rc "search with a wrong token exits 1" 1

# ---- hostile names stay off the terminal -------------------------------------
printf '{"metrics":{"acc\\u001b[2J":0.5,"f1":0.5}}' >"$W/evil.json"
(cd "$TMP" && "$MLREG" push vision/evil@1.0 --weights "$W/w1.bin" --eval-report "$W/evil.json") \
    >"$TMP/out" 2>"$TMP/err"
RC=$?
if [ "$RC" = 0 ]; then
    run "$MLREG" search --model vision/evil
    check "a metric name with ESC is not printed raw by search" sh -c "! grep -q \"$(printf '\033')\" '$TMP/out'"
    run "$MLREG" diff vision/evil@1.0 vision/det@1.0 --stage dev
    check "nor by diff" sh -c "! grep -q \"$(printf '\033')\" '$TMP/out'"
else
    ok "a metric name with ESC is refused at push ($(head -n1 "$TMP/err" | head -c 80))"
fi

finish
