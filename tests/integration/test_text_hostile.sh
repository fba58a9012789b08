#!/bin/sh
# test_text_hostile.sh: free text a terminal would act on, sent to the real
# server with curl. Promotion and rollback reasons, approval comments and
# revocation reasons holding a C1 control (U+009B, CSI, both as the JSON
# escape \u009b and as raw UTF-8 bytes C2 9B), a C0 control (newline, ESC) or
# DEL are refused with 400 naming the field, and nothing moves or is
# recorded; text with é and CJK is kept.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

command -v minisign >/dev/null 2>&1 || { not_ok "minisign is installed"; finish; }
start_server || finish

W=$TMP/work
mkdir -p "$W"
jqt() { jq -e "$@" >/dev/null; }
JSON="Content-Type: application/json"
API=/api/v1/models/demo

head -c 4096 /dev/urandom >"$W/w.bin"
for v in 1.0 2.0; do
    run "$MLREG" push "demo@$v" --weights "$W/w.bin" --git-sha abcdef1
    [ "$RC" -eq 0 ] || not_ok "push demo@$v ($(cat "$TMP/err"))"
done

# Raw UTF-8 C2 9B inside a JSON string is legal JSON (unlike a raw ESC);
# the cases below write it as RAWC1, so that no test name carries it, and
# test names show a JSON escape \uXXXX as %uXXXX (echo would act on it).
C1=$(printf '\302\233')
# A C1 control as UTF-8 (C2 80..C2 9F), ESC or DEL anywhere in a file.
BAD_BYTES=$(printf '\302[\200-\237]\\|\033\\|\177')
no_bad_bytes() { ! LC_ALL=C grep -q "$BAD_BYTES" "$1"; }
audit_size() { curl -s "$MLREG_URL/api/v1/audit/checkpoint" | sed -n 2p; }

# refused NAME METHOD PATH BODY FIELD: 400, the message names FIELD, the
# answer does not echo the control character back, the log did not grow.
refused() {
    before=$(audit_size)
    set -- "$(printf '%s' "$1" | sed 's/\\/%/g')" "$2" "$3" "$4" "$5"
    body=$(printf '%s' "$4" | sed "s/RAWC1/$C1/g")
    expect_status "$1 is refused (400)" 400 "$2" "$3" -H "$JSON" --data-binary "$body"
    check "... the message names the field '$5'" \
        jqt --arg f "$5" '.errors[0].message | startswith($f)' "$TMP/body"
    check "... the answer holds no C1, ESC or DEL byte" no_bad_bytes "$TMP/body"
    check "... and nothing was recorded" test "$(audit_size)" = "$before"
}

# ---- promotion reasons ------------------------------------------------------------------
for bad in '\u009b31m' 'RAWC1 2J' 'line one\nline two' 'tab\there' '\u001b[31m' 'del\u007f'; do
    refused "a promotion reason '$bad'" POST "$API/promotions" \
        "{\"version\":\"1.0\",\"to\":\"dev\",\"reason\":\"$bad\"}" reason
done
expect_status "dev is still empty" 404 GET "$API/stages/dev"
expect_status "the promotions log" 200 GET "$API/promotions"
check "... holds no promotion" jqt '.promotions == []' "$TMP/body"
expect_status "a reason in French and Chinese is fine" 200 POST "$API/promotions" -H "$JSON" \
    --data-binary '{"version":"1.0","to":"dev","reason":"d\u00e9ploy\u00e9 \u6a21\u578b"}'
expect_status "the promotions log" 200 GET "$API/promotions"
check "... keeps the reason as sent" jqt '.promotions[0].reason == "déployé 模型"' "$TMP/body"
expect_status "promote 2.0 to dev" 200 POST "$API/promotions" -H "$JSON" \
    --data-binary '{"version":"2.0","to":"dev"}'

# ---- approval comments ------------------------------------------------------------------
for bad in '\u009b31m' 'okRAWC1' 'two\nlines'; do
    refused "an approval comment '$bad'" POST "$API/versions/1.0/approvals" \
        "{\"stage\":\"production\",\"comment\":\"$bad\"}" comment
done
expect_status "the approvals of 1.0" 200 GET "$API/versions/1.0/approvals"
check "... are none" jqt '.approvals == []' "$TMP/body"
# on this server without tokens the approver is the pusher, so a comment the
# text rule takes gets as far as the pusher's refusal (409), not a 400
expect_status "an approval with a plain comment passes the text rule" 409 POST \
    "$API/versions/1.0/approvals" -H "$JSON" \
    --data-binary '{"stage":"production","comment":"looks good \u2713"}'
check "... and is refused only as the pusher's own" \
    jqt '.errors[0].code == "DENIED" and (.errors[0].message | startswith("you pushed demo@1.0"))' \
    "$TMP/body"

# ---- rollback reasons -------------------------------------------------------------------
for bad in '\u009b31m' RAWC1 'a\rb'; do
    refused "a rollback reason '$bad'" POST "$API/stages/dev/rollback" "{\"reason\":\"$bad\"}" \
        reason
done
expect_status "dev" 200 GET "$API/stages/dev"
check "... still holds 2.0" jqt '.version == "2.0"' "$TMP/body"
expect_status "a rollback with a plain reason is fine" 200 POST "$API/stages/dev/rollback" \
    -H "$JSON" --data-binary '{"reason":"bad canary"}'

# ---- revocation reasons -----------------------------------------------------------------
minisign -G -W -p "$W/k.pub" -s "$W/k.key" >/dev/null 2>&1 || not_ok "minisign -G"
jq -n --rawfile p "$W/k.pub" '{name: "signer", role: "release", public_key: $p}' >"$W/trust.json"
expect_status "trust a key" 201 POST /api/v1/keys -H "$JSON" --data-binary @"$W/trust.json"
KID=$(jq -r .key_id "$TMP/body")
for bad in '\u009b31m' RAWC1 'x\u007f' 'a\nb'; do
    refused "a revocation reason '$bad'" POST "/api/v1/keys/$KID/revoke" \
        "{\"kind\":\"retired\",\"reason\":\"$bad\"}" "revocation reason"
done
expect_status "the keyring" 200 GET /api/v1/keys
check "... the key is not revoked" jqt '.keys[0].revocation == null' "$TMP/body"
expect_status "a revocation with a plain reason is fine" 200 POST "/api/v1/keys/$KID/revoke" \
    -H "$JSON" --data-binary '{"kind":"retired","reason":"rotation (Schl\u00fcssel)"}'

finish
