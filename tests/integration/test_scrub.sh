#!/bin/sh
# test_scrub.sh: a blob damaged on disk, found and repaired, end to end on
# the fs backend (real `mlreg serve`, the CLI, curl). A byte of a pushed
# release's weights is flipped in the data dir: `mlreg pull` refuses the
# file and names `mlreg scrub`; `mlreg scrub` exits 1 naming the blob and
# the release and moves it to quarantine, so HEAD answers 404; pushing the
# same files again uploads it (not "skipped") and pull works; a second
# scrub exits 0. `push --reupload` repairs a damaged copy no scrub found.
# POST /api/v1/admin/scrub: admin only, hostile bodies 400, a dry run moves
# nothing, one audit entry per finding, and a scrub that runs longer than
# limits.body_timeout_seconds still gets its answer.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
T_ADMIN=$(tok)
T_PUSH=$(tok)
T_READ=$(tok)
cat >"$W/config.json" <<EOF
{ "limits": { "body_timeout_seconds": 1 },
  "tokens": [
    { "name": "ops", "sha256": "$(hash "$T_ADMIN")", "roles": ["admin"] },
    { "name": "ci", "sha256": "$(hash "$T_PUSH")", "roles": ["push", "read"] },
    { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] } ] }
EOF
start_server --config "$W/config.json" || finish

err_has() {
    if grep -q -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
out_has() {
    if grep -q -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no '$2' in stdout:)"; sed 's/^/  | /' "$TMP/out"; fi
}
# flip FILE OFFSET: changes one byte of FILE in place, as a bad disk would
flip() {
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\$(printf '%03o' $(((b + 1) % 256)))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

head -c 262144 /dev/urandom >"$W/weights.bin"
printf '{"metrics":{"accuracy":0.93}}\n' >"$W/eval.json"
WD=$(sha256_of "$W/weights.bin")
BLOB=$DATA/blobs/sha256/$(echo "$WD" | cut -c1-2)/$WD
push() { run env MLREG_TOKEN="$T_PUSH" "$MLREG" push vision/clf@1.0 --weights "$W/weights.bin" \
    --eval-report "$W/eval.json" --git-sha 0123456789abcdef "$@"; }
pull() { rm -rf "$W/out"; run env MLREG_TOKEN="$T_READ" "$MLREG" pull vision/clf@1.0 -o "$W/out"; }
scrub() { run env MLREG_TOKEN="$T_ADMIN" "$MLREG" scrub "$@"; }
audit_scrubs() {
    curl -s -H "Authorization: Bearer $T_READ" "$MLREG_URL/api/v1/audit?limit=1000" |
        jq '[.entries[] | if type == "string" then fromjson else . end
             | select(.action == "scrub")] | length'
}
jqt() { jq -e "$@" >/dev/null; }
alive_auth() { [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T_READ" \
    "$MLREG_URL/v2/")" = 200 ]; }

push
expect_rc "push vision/clf@1.0 exits 0" 0
check "the weights are stored where the fs backend keeps them" test -f "$BLOB"
scrub
expect_rc "a scrub of a healthy store exits 0" 0
out_has "... and says 0 corrupt, 0 missing" "0 corrupt, 0 missing"
check "a clean scrub records no audit entry" test "$(audit_scrubs)" = 0

# ---- a flipped byte ------------------------------------------------------------------
flip "$BLOB" 1000
pull
expect_rc "pull of a release with a damaged blob exits 1" 1
err_has "the refusal names the digest mismatch" "digest mismatch"
err_has "... and the scrub command" "mlreg scrub --model vision/clf"
err_has "... and the repair" "pushing the file again repairs it"

scrub --model vision/clf
expect_rc "mlreg scrub --model exits 1 on a damaged blob" 1
out_has "it names the damaged blob" "corrupt   sha256:$WD"
out_has "... and the release using it" "used by vision/clf@1.0"
out_has "... and says it was quarantined" "quarantined: blobs/quarantine/$WD"
check "the blob left the store" test ! -e "$BLOB"
check "its bytes are in the quarantine directory, private" \
    sh -c "ls '$DATA'/blobs/quarantine/$WD.* >/dev/null && test \"\$(stat -c %a '$DATA'/blobs/quarantine/$WD.*)\" = 600"
check "one scrub entry is in the audit log" test "$(audit_scrubs)" = 1
expect_status "HEAD of the quarantined blob answers 404" 404 HEAD "/v2/vision/clf/blobs/sha256:$WD" \
    -H "Authorization: Bearer $T_READ"

# ---- repair by pushing the same files -------------------------------------------------
push
expect_rc "pushing the same release again exits 0" 0
err_has "the damaged file is uploaded again" "weights.bin.*uploaded"
check "... not skipped" sh -c "! grep -q 'weights.bin.*skipped' '$TMP/err'"
err_has "the eval report, intact, is skipped" "eval.json.*skipped"
pull
expect_rc "pull works again" 0
check "the pulled weights are the original bytes" cmp -s "$W/weights.bin" "$W/out/weights.bin"
scrub
expect_rc "a second scrub exits 0" 0
check "a clean scrub after the repair records nothing more" test "$(audit_scrubs)" = 1

# ---- --reupload repairs what no scrub has found yet -----------------------------------
flip "$BLOB" 7
push
expect_rc "a plain push of the same files exits 0" 0
err_has "... but skips the damaged file, which the registry says it has" "weights.bin.*skipped"
pull
expect_rc "so pull still refuses it" 1
push --reupload
expect_rc "push --reupload exits 0" 0
err_has "--reupload uploads every file" "weights.bin.*uploaded"
err_has "... the eval report too" "eval.json.*uploaded"
pull
expect_rc "pull works after --reupload, without a scrub" 0
scrub --json
expect_rc "and the store is clean" 0
check "--json prints the report" jqt '.checked >= 4 and (.corrupt | length) == 0' "$TMP/out"

# ---- a lost blob is missing, not quarantined -------------------------------------------
mv "$BLOB" "$W/lost"
scrub
expect_rc "a lost blob makes scrub exit 1" 1
out_has "it is reported missing" "missing   sha256:$WD"
out_has "... with its release" "used by vision/clf@1.0"
mv "$W/lost" "$BLOB"

# ---- the endpoint: roles, bodies, dry run ----------------------------------------------
P=/api/v1/admin/scrub
A="Authorization: Bearer $T_ADMIN"
expect_status "no token: 401" 401 POST $P -d '{}'
expect_status "a read token: 403" 403 POST $P -H "Authorization: Bearer $T_READ" -d '{}'
expect_status "a push token: 403" 403 POST $P -H "Authorization: Bearer $T_PUSH" -d '{}'
run env MLREG_TOKEN="$T_PUSH" "$MLREG" scrub
expect_rc "mlreg scrub with a push token exits 1" 1
err_has "... saying it is forbidden" "forbidden"
expect_status "malformed JSON: 400" 400 POST $P -H "$A" -d '{"model":'
expect_status "an array: 400" 400 POST $P -H "$A" -d '[]'
expect_status "an unknown member: 400" 400 POST $P -H "$A" -d '{"modle":"vision/clf"}'
expect_status "a negative rate: 400" 400 POST $P -H "$A" -d '{"rate_bytes_per_second":-1}'
expect_status "a fractional rate: 400" 400 POST $P -H "$A" -d '{"rate_bytes_per_second":1.5}'
expect_status "a rate as a string: 400" 400 POST $P -H "$A" -d '{"rate_bytes_per_second":"fast"}'
expect_status "a huge rate: 400" 400 POST $P -H "$A" -d '{"rate_bytes_per_second":1e300}'
expect_status "dry_run not a boolean: 400" 400 POST $P -H "$A" -d '{"dry_run":"yes"}'
expect_status "a model that is no name: 400" 400 POST $P -H "$A" -d '{"model":"Bad Name"}'
expect_status "a model with a NUL: 400" 400 POST $P -H "$A" -d '{"model":"a\u0000b"}'
expect_status "an unknown model: 404" 404 POST $P -H "$A" -d '{"model":"no/such"}'
head -c 300000 /dev/zero | tr '\0' ' ' >"$W/big"
expect_status "an oversized body: 413" 413 POST $P -H "$A" --data-binary @"$W/big"
check "the server is alive after the hostile bodies" alive_auth
expect_status "no body: every blob" 200 POST $P -H "$A"
check "... answering the report" jqt '.dry_run == false and .model == null and .checked >= 4' "$TMP/body"

flip "$BLOB" 3
expect_status "a dry run answers 200" 200 POST $P -H "$A" -d '{"model":"vision/clf","dry_run":true}'
check "... reporting the damaged blob" \
    jqt --arg d "sha256:$WD" '.corrupt[0].digest == $d and .corrupt[0].releases == ["vision/clf@1.0"] and .quarantined == 0 and .dry_run' "$TMP/body"
check "... and moving nothing" test -f "$BLOB"
scrub --dry-run
expect_rc "mlreg scrub --dry-run exits 1 on the finding" 1
out_has "... and says it was a dry run" "(dry run)"
check "still nothing moved" test -f "$BLOB"
push --reupload
expect_rc "repaired again with --reupload" 0

# ---- a scrub longer than the body timeout gets its answer -------------------------------
T0=$(date +%s)
scrub --rate 100000 --json
T1=$(date +%s)
expect_rc "a rate-limited scrub exits 0" 0
check "it took longer than limits.body_timeout_seconds (1 s)" test $((T1 - T0)) -ge 2
check "... and its report arrived whole" jqt '.seconds >= 2 and .bytes > 262144' "$TMP/out"
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" scrub --rate fast
expect_rc "--rate that is no number is a usage error" 2
run env MLREG_TOKEN="$T_ADMIN" "$MLREG" scrub --model "Bad Name"
expect_rc "--model that is no name is a usage error" 2

# ---- the scheduled scrub in serve ---------------------------------------------------------
stop_server
sed 's/"limits"/"scrub": { "interval": "1s", "rate_bytes_per_second": 131072 },\n  "limits"/' \
    "$W/config.json" >"$W/config-scrub.json"
# wait_for PATTERN SECONDS: the server log has a line matching PATTERN
wait_for() {
    _i=0
    until grep -q -- "$1" "$TMP/server.log"; do
        _i=$((_i + 1)); [ $_i -gt $(($2 * 20)) ] && return 1; sleep 0.05
    done
}
summaries() { grep -c '^mlreg: scrub: [0-9]* blobs' "$TMP/server.log"; }
flip "$BLOB" 11
start_server --config "$W/config-scrub.json" || finish
check "serve says it scrubs on its own" wait_for "scrubbing the blob store every 1 s, rate limited" 2
check "the scheduled scrub finds the damaged blob" wait_for "mlreg: scrub: corrupt sha256:$WD (1 release), quarantined" 15
check "... and logs its summary" wait_for "^mlreg: scrub: .* 1 corrupt, 0 missing, 1 quarantined" 2
check "... which names no token" sh -c "! grep -q -e '$T_ADMIN' -e '$T_PUSH' -e '$T_READ' '$TMP/server.log'"
check "the blob left the store" test ! -e "$BLOB"
push
expect_rc "a push repairs what the scheduled scrub quarantined" 0
err_has "... uploading the file again" "weights.bin.*uploaded"
# the scrub after the push's next one reads the whole 256 KiB at 128 KiB/s:
# stop the server in the middle of it
N=$(summaries)
i=0
while [ "$(summaries)" -le "$N" ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.05; done
sleep 1.5
T0=$(date +%s%N)
stop_server
T1=$(date +%s%N)
check "SIGTERM in the middle of a scrub stops the server within a second" \
    test $(((T1 - T0) / 1000000)) -lt 1000
check "... the scrub saying it stopped early" grep -q "^mlreg: scrub: .*(stopped)" "$TMP/server.log"

finish
