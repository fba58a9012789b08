#!/bin/sh
# test_retention.sh: retention rules run by garbage collection
# (docs/lifecycle.md, "Retention") with the real server and CLI: 20
# versions of a model, some promoted through dev/staging/production, one
# withdrawn; `mlreg gc --dry-run` lists exactly the releases the real run
# then purges, with the reasons, and changes nothing; the real run purges
# them (release.purge entries, their weights deleted by the same run);
# pulls of purged versions fail and the kept ones pull; a model no rule
# matches is untouched; a second run purges nothing; the scheduled
# collection purges too; bad rules stop the server naming the key; `mlreg
# audit verify` passes.
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
blob_path() { h=$(sha256sum "$1" | cut -c1-64); echo "$DATA/blobs/sha256/$(echo "$h" | cut -c1-2)/$h"; }
same() { # NAME WANT GOT
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (want '$2', got '$3')"; fi
}

# ---- bad rules stop the server ----------------------------------------------------
bad_config() { # NAME JSON NEEDLE
    printf '%s\n' "$2" >"$W/bad.json"
    "$MLREG" serve --config "$W/bad.json" --listen 127.0.0.1:0 --data "$TMP/bad-data" \
        >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$3" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (exit $rc)"; sed 's/^/  | /' "$TMP/err"; fi
}
bad_config "an unknown rule key stops the server" \
    '{"retention":[{"models":"m/*","keep_last":2,"keep_first":1}]}' \
    "unknown config key 'retention\[0\].keep_first'"
bad_config "a negative keep_last stops the server" \
    '{"retention":[{"models":"m/*","keep_last":-2}]}' \
    "'retention\[0\].keep_last' must be between 0 and"
bad_config "an unknown protected stage stops the server" \
    '{"retention":[{"models":"m/*","keep_last":2,"protected_stages":["prod"]}]}' \
    "unknown stage 'prod'"
bad_config "a bad pattern stops the server" \
    '{"retention":[{"models":"m/[ab","keep_last":2}]}' "without its ']'"

# ---- 20 versions, stage moves --------------------------------------------------------
# keep the 5 newest, what a stage held within a day, what production ever held
cat >"$W/config.json" <<EOF
{
  "gc": { "grace": 0 },
  "retention": [
    { "models": "m/*", "keep_last": 5, "held_within": "1d", "protected_stages": ["production"] }
  ]
}
EOF
start_server --config "$W/config.json" || finish

printf '{"dataset":"val","metrics":{"accuracy":0.9}}\n' >"$W/eval.json"
n=1
while [ $n -le 20 ]; do
    head -c 1500 /dev/urandom >"$W/weights-1.$n.bin"
    SOURCE_DATE_EPOCH=$((1767225600 + n * 60)) \
        "$MLREG" push "m/clf@1.$n" --weights "$W/weights-1.$n.bin" --eval-report "$W/eval.json" \
        >/dev/null 2>"$TMP/err" || { not_ok "push m/clf@1.$n"; sed 's/^/  | /' "$TMP/err"; }
    n=$((n + 1))
done
head -c 1500 /dev/urandom >"$W/weights-other.bin"
run "$MLREG" push "other/x@1.0" --weights "$W/weights-other.bin" --eval-report "$W/eval.json"
expect_rc "push other/x@1.0 (no rule matches it)" 0
promote() { # VERSION STAGE...
    v=$1; shift
    for s in "$@"; do
        "$MLREG" promote "m/clf@$v" --to "$s" >/dev/null 2>"$TMP/err" ||
            { not_ok "promote $v to $s"; sed 's/^/  | /' "$TMP/err"; }
    done
}
promote 1.3 dev staging production
promote 1.8 dev staging production
promote 1.10 dev
promote 1.12 dev staging
promote 1.14 dev
run "$MLREG" withdraw m/clf@1.19 --reason "bad weights"
expect_rc "withdraw 1.19" 0
# now: production 1.8 (held 1.3 before), staging 1.12, dev 1.14 (held 1.10 a moment ago)
WANT="1.19 1.13 1.11 1.9 1.7 1.6 1.5 1.4 1.2 1.1"
WANT_KEPT="1.20 1.18 1.17 1.16 1.15 1.14 1.12 1.10 1.8 1.3"
blobs_before=$(find "$DATA/blobs/sha256" -type f | wc -l)
# gc.grace is 0, but a blob written in the current second still counts as
# just written (a write time has whole seconds): let the last pushes age
sleep 2

# ---- the dry run ------------------------------------------------------------------------
run "$MLREG" gc --dry-run --json
expect_rc "gc --dry-run --json" 0
cp "$TMP/out" "$W/dry.json"
same "the dry run plans to purge exactly the releases no rule keeps" "$WANT" \
    "$(jq -r '[.retention.purge[].version] | join(" ")' "$W/dry.json")"
same "... and keeps the others" "$WANT_KEPT" \
    "$(jq -r '[.retention.kept[].version] | join(" ")' "$W/dry.json")"
same "... each kept one with its reason" \
    "newest 5|newest 5|newest 5|newest 5|newest 5|held by dev|held by staging|held by dev within 1d|held by production|held by production within 1d" \
    "$(jq -r '[.retention.kept[].why] | join("|")' "$W/dry.json")"
same "... other/x is not looked at" "0" \
    "$(jq '[.retention.purge[], .retention.kept[] | select(.model != "m/clf")] | length' "$W/dry.json")"
run "$MLREG" gc --dry-run
expect_rc "gc --dry-run" 0
out_has "the text says what would be purged and why" \
    '^retention would purge m/clf@1\.13: older than the newest 5, never held by a stage$'
out_has "... the withdrawn one too" '^retention would purge m/clf@1\.19: withdrawn [0-9]+[smh] ago, never held by a stage$'
out_has "... and counts what it keeps" \
    '^retention would purge 10 release\(s\), kept 10 \(5 newest, 3 held by a stage, 2 held recently\)$'
same "the dry run deleted no blob" "$blobs_before" "$(find "$DATA/blobs/sha256" -type f | wc -l)"
run "$MLREG" pull "m/clf@1.1" -o "$W/before"
expect_rc "after the dry run m/clf@1.1 still pulls" 0

# ---- the real run ------------------------------------------------------------------------
run "$MLREG" gc --json
expect_rc "gc --json" 0
cp "$TMP/out" "$W/real.json"
same "the real run purged exactly what the dry run listed" "$WANT" \
    "$(jq -r '[.retention.purged[].version] | join(" ")' "$W/real.json")"
same "... nothing refused" "0" "$(jq '.retention.not_purged | length' "$W/real.json")"
same "... each with its entry" "10" \
    "$(jq '[.retention.purged[] | select(.seq > 0)] | length' "$W/real.json")"
same "... the entries are in the report's entries" "true" \
    "$(jq '[.retention.purged[].seq] - .entries | length == 0' "$W/real.json")"
# a withdrawal's age may tick between the two runs ("withdrawn 2s ago")
why_of() { jq -c "[.retention.$1[].why]" "$2" | sed 's/withdrawn [0-9]*s ago/withdrawn Ns ago/g'; }
same "... and the same reasons (the age of a withdrawal aside)" "$(why_of purge "$W/dry.json")" \
    "$(why_of purged "$W/real.json")"
gone=0
for v in $WANT; do
    [ -f "$(blob_path "$W/weights-$v.bin")" ] && gone=$((gone + 1))
done
same "the purged releases' weights were deleted by the same run" 0 "$gone"
for v in 1.1 1.13 1.19; do
    run "$MLREG" pull "m/clf@$v" -o "$W/dep-$v"
    expect_rc "pull of purged m/clf@$v: exit 1" 1
done
err_has "... saying it was purged by retention" 'purged by local at .*retention: '
for v in $WANT_KEPT; do
    "$MLREG" pull "m/clf@$v" -o "$W/dep-$v" >/dev/null 2>"$TMP/err" ||
        { not_ok "pull of kept m/clf@$v"; sed 's/^/  | /' "$TMP/err"; }
done
check "every kept release pulls, its weights intact" cmp -s "$W/weights-1.3.bin" "$W/dep-1.3/weights-1.3.bin"
run "$MLREG" pull "other/x@1.0" -o "$W/dep-other"
expect_rc "other/x@1.0 still pulls" 0
run "$MLREG" withdraw m/clf@1.15 --reason "leaked data"
expect_rc "withdraw 1.15, one of the newest" 0
run "$MLREG" gc
expect_rc "a second gc" 0
out_has "... purges it, naming its entry" \
    '^purged m/clf@1\.15 \(entry [0-9]+\): withdrawn [0-9]+[smh] ago, never held by a stage$'
out_has "... and nothing else" '^retention purged 1 release\(s\), kept 9 '

# ---- the scheduled collection ---------------------------------------------------------------
stop_server
cat >"$W/config2.json" <<EOF
{
  "gc": { "grace": 0, "interval": "1s" },
  "retention": [ { "models": "m/*", "keep_last": 4, "protected_stages": ["production"] } ]
}
EOF
start_server --config "$W/config2.json" || finish
i=0
until grep -q 'retention purged m/clf@1.10' "$TMP/server.log" || [ $i -gt 100 ]; do
    sleep 0.1; i=$((i + 1))
done
check "the scheduled collection purges what the rules no longer keep, and logs it" \
    grep -q 'mlreg: retention purged m/clf@1.10 (entry [0-9]*): older than the newest 4, last held by dev' \
    "$TMP/server.log"
run "$MLREG" pull "m/clf@1.10" -o "$W/dep-late"
expect_rc "... m/clf@1.10 no longer pulls" 1
# the scheduled collection runs every second: one at a time, so try again on a 409
i=0
until "$MLREG" gc --dry-run --json >"$TMP/out" 2>"$TMP/err" || [ $i -gt 20 ]; do
    sleep 0.2; i=$((i + 1))
done
same "without held_within, what production held before is kept as protected" \
    "1.3: protected stage production" \
    "$(jq -r '.retention.kept[] | select(.version == "1.3") | "\(.version): \(.why)"' "$TMP/out")"
run "$MLREG" audit log --model m/clf
out_has "the audit log shows the scheduled purge's actor and reason" \
    'scheduled-gc +release\.purge +.*m/clf@1\.10 .* ok +retention: older than the newest 4'
stop_server
start_server --config "$W/config.json" || finish

# ---- audit ------------------------------------------------------------------------------------
run "$MLREG" audit log --model m/clf
out_has "the audit log shows the purges with their reasons" \
    'local +release\.purge +.*m/clf@1\.1 .* ok +retention: older than the newest 5, never held by a stage'
curl -s "$MLREG_URL/api/v1/audit/key" >"$W/log.pub"
run "$MLREG" audit verify --log-key "$W/log.pub"
expect_rc "audit verify passes" 0
finish
