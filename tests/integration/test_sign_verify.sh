#!/bin/sh
# test_sign_verify.sh: release signing end to end, with the stock minisign
# 0.11 as the independent client:
#   (a) a key made by `minisign -G -W` signs a release's manifest bytes with
#       `minisign -S`, the .minisig is attached with curl, and `mlreg verify`
#       and `mlreg pull --trusted-key` accept it; `mlreg sign` works with a
#       minisign-made key too (a second signer);
#   (b) releases signed by `mlreg push --sign-key` (an unencrypted key and a
#       password-encrypted one) verify with `minisign -V -H`;
#   a wrong password fails before anything is uploaded; an idempotent re-push
#   with a new key still attaches its signature; `mlreg key trust|revoke|list`
#   round trip.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

start_server || finish

W=$TMP/work
mkdir -p "$W"
head -c 200000 /dev/urandom >"$W/model.bin"
printf '{"metrics":{"accuracy":0.91}}' >"$W/eval.json"
printf 'tok' >"$W/tok.txt"
OCI=application/vnd.oci.image.manifest.v1+json
unset MLREG_KEY_PASSWORD

says() {
    if grep -qF -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (stderr lacks '$2': $(tail -n 3 "$TMP/err"))"; fi
}
jqt() { jq -e "$@" >/dev/null; }
prints() {
    if grep -qF -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (stdout lacks '$2': $(head -c 600 "$TMP/out"))"; fi
}
# fetch_manifest MODEL VERSION FILE: the manifest bytes exactly as served.
fetch_manifest() {
    curl -sf -H "Accept: $OCI" -o "$3" "$MLREG_URL/v2/$1/manifests/$2"
}
# fetch_sig MODEL VERSION KEYID FILE: the .minisig text of that key's signature.
fetch_sig() {
    curl -sf "$MLREG_URL/api/v1/models/$1/versions/$2/signatures" |
        jq -j --arg k "$3" '.signatures[] | select(.key_id == $k) | .signature' >"$4"
}
nsigs() {
    curl -sf "$MLREG_URL/api/v1/models/$1/versions/$2/signatures" | jq '.signatures | length'
}
keyid_of() { # PUBFILE: the key id as minisign prints it
    sed -n 2p "$1" | base64 -d | od -An -tx1 -j2 -N8 |
        awk '{ for (i = NF; i >= 1; i--) printf "%s", toupper($i) } END { print "" }'
}

if ! command -v minisign >/dev/null 2>&1; then
    not_ok "minisign is installed (make deps)"
    finish
fi
if [ "$(http_status GET /api/v1/keys)" != 200 ]; then
    not_ok "the registry serves the signature and keyring endpoints (GET /api/v1/keys: $(head -c 200 "$TMP/body"))"
    finish
fi

# ---- (a) a key made by minisign; the signature attached with curl ------------
minisign -G -W -p "$W/ms.pub" -s "$W/ms.key" >/dev/null 2>&1
check "minisign -G -W makes a key pair" test -s "$W/ms.key"
run "$MLREG" push team/a@1.0.0 --weights "$W/model.bin" --eval-report "$W/eval.json" \
    --git-sha abcdef1
expect_rc "push an unsigned release" 0
DA=$(cat "$TMP/out")
fetch_manifest team/a 1.0.0 "$W/a.json"
check "the manifest bytes hash to the release digest" test "sha256:$(sha256_of "$W/a.json")" = "$DA"
minisign -S -s "$W/ms.key" -m "$W/a.json" -x "$W/a.json.minisig" \
    -t "mlreg release model=team/a version=1.0.0 digest=$DA timestamp=$(date +%s)" </dev/null \
    >/dev/null 2>&1
check "minisign -S signs the manifest bytes" test -s "$W/a.json.minisig"
jq -cn --rawfile s "$W/a.json.minisig" --rawfile p "$W/ms.pub" '{signature:$s, public_key:$p}' \
    >"$W/attach.json"
expect_status "the minisign signature attaches with curl (201)" 201 POST \
    /api/v1/models/team/a/versions/1.0.0/signatures -H 'Content-Type: application/json' \
    --data-binary "@$W/attach.json"
MS_ID=$(keyid_of "$W/ms.pub")
run "$MLREG" verify team/a@1.0.0 --trusted-key "$W/ms.pub"
expect_rc "mlreg verify --trusted-key accepts minisign's signature" 0
prints "verify lists the signing key id" "$MS_ID"
prints "verify lists the file" "model.bin"
prints "verify's verdict" "verified"
run "$MLREG" verify team/a@1.0.0 --trusted-key "$W/ms.pub" --json
expect_rc "verify --json exits 0" 0
check "verify --json says verified, one valid signature, every file ok" \
    jqt '.verified == true and .signatures[0].status == "valid" and
           .signatures[0].key_id == "'"$MS_ID"'" and (.files | length) == 2 and
           all(.files[]; .ok)' "$TMP/out"
run "$MLREG" verify "team/a@$DA" --trusted-key "$W/ms.pub"
expect_rc "verify by pinned digest" 0
run "$MLREG" pull team/a@1.0.0 -o "$W/pulled-a" --trusted-key "$W/ms.pub"
expect_rc "pull --trusted-key accepts it" 0
check "the pulled weights are the pushed ones" cmp "$W/model.bin" "$W/pulled-a/model.bin"
check "the lock file names the digest" grep -q "$DA" "$W/pulled-a/mlreg.lock.json"

# ---- mlreg sign with a minisign-made key: a second signer ----------------------
minisign -G -W -p "$W/ms2.pub" -s "$W/ms2.key" >/dev/null 2>&1
run "$MLREG" sign team/a@1.0.0 --key "$W/ms2.key"
expect_rc "mlreg sign with a minisign-made unencrypted key" 0
MS2_ID=$(keyid_of "$W/ms2.pub")
prints "sign prints the key id" "$MS2_ID"
check "the release now has two signatures" test "$(nsigs team/a 1.0.0)" = 2
run "$MLREG" verify team/a@1.0.0 --trusted-key "$W/ms2.pub"
expect_rc "the second signer's key alone verifies it" 0
run "$MLREG" verify team/a@1.0.0 --trusted-key "$W/ms.pub" --trusted-key "$W/ms2.pub"
expect_rc "both keys trusted" 0
check "the table lists both signers" sh -c "grep -q '$MS_ID' '$TMP/out' && grep -q '$MS2_ID' '$TMP/out'"
fetch_sig team/a 1.0.0 "$MS2_ID" "$W/a.json.minisig2"
check "minisign -V checks the signature mlreg sign made" \
    minisign -V -H -p "$W/ms2.pub" -m "$W/a.json" -x "$W/a.json.minisig2" -q
run "$MLREG" sign team/a@1.0.0 --key "$W/ms2.key"
expect_rc "signing again with the same key is a no-op" 0
says "... and says so" "already signed"
check "still two signatures" test "$(nsigs team/a 1.0.0)" = 2
"$MLREG" key generate --out "$W/k3" --no-password >/dev/null 2>&1
run "$MLREG" sign "team/a@$DA" --key "$W/k3.key"
expect_rc "mlreg sign by pinned digest" 0
check "three signatures" test "$(nsigs team/a 1.0.0)" = 3
run "$MLREG" sign team/a@9.9.9 --key "$W/k3.key"
expect_rc "signing a release that does not exist exits 1" 1
run "$MLREG" sign team/a@1.0.0 --key "$W/missing.key"
expect_rc "signing with a missing key file is a local error" 2
run "$MLREG" sign team/a@1.0.0
expect_rc "sign without --key is a usage error" 2

# ---- (b) push --sign-key; the stock minisign verifies ------------------------------
run "$MLREG" key generate --out "$W/k" --no-password
expect_rc "mlreg key generate --no-password" 0
K_ID=$(keyid_of "$W/k.pub")
run "$MLREG" push team/b@1.0.0 --weights "$W/model.bin" --tokenizer "$W/tok.txt" \
    --git-sha abcdef1 --sign-key "$W/k.key"
expect_rc "push --sign-key (unencrypted key)" 0
DB=$(cat "$TMP/out")
says "push reports the signature" "signed team/b@1.0.0 with key $K_ID"
fetch_manifest team/b 1.0.0 "$W/manifest.json"
fetch_sig team/b 1.0.0 "$K_ID" "$W/manifest.json.minisig"
run minisign -V -H -p "$W/k.pub" -m "$W/manifest.json" -x "$W/manifest.json.minisig"
expect_rc "minisign -V -H verifies what push --sign-key signed" 0
check "minisign shows the release trusted comment" \
    grep -q "Trusted comment: mlreg release model=team/b version=1.0.0 digest=$DB timestamp=[0-9]*$" \
    "$TMP/out"
run "$MLREG" verify team/b@1.0.0 --trusted-key "$W/k.pub"
expect_rc "mlreg verify accepts it" 0

run "$MLREG" pull team/b@1.0.0 -o "$W/pulled-b" --trusted-key "$W/ms.pub"
expect_rc "pull with only another key trusted exits 1" 1
check "... and creates nothing" test ! -e "$W/pulled-b"

# A password-encrypted key (scrypt as minisign does it).
MLREG_KEY_PASSWORD=s3cret-pw "$MLREG" key generate --out "$W/kp" >/dev/null 2>&1
check "generate a password-encrypted key" test -s "$W/kp.key"
run env MLREG_KEY_PASSWORD=s3cret-pw "$MLREG" push team/c@1.0.0 --weights "$W/model.bin" \
    --git-sha abcdef1 --sign-key "$W/kp.key"
expect_rc "push --sign-key with MLREG_KEY_PASSWORD" 0
fetch_manifest team/c 1.0.0 "$W/c.json"
fetch_sig team/c 1.0.0 "$(keyid_of "$W/kp.pub")" "$W/c.json.minisig"
check "minisign -V -H verifies what the encrypted key signed" \
    minisign -V -H -p "$W/kp.pub" -m "$W/c.json" -x "$W/c.json.minisig" -q

# A wrong password fails before anything is uploaded.
head -c 4096 /dev/urandom >"$W/fresh.bin"
FRESH=$(sha256_of "$W/fresh.bin")
run env MLREG_KEY_PASSWORD=wrong "$MLREG" push team/c@2.0.0 --weights "$W/fresh.bin" \
    --git-sha abcdef1 --sign-key "$W/kp.key"
expect_rc "push with a wrong key password exits 1" 1
says "... saying the password is wrong" "wrong password"
expect_status "no manifest was stored" 404 GET /v2/team/c/manifests/2.0.0 -H "Accept: $OCI"
expect_status "no blob was uploaded" 404 HEAD "/v2/team/c/blobs/sha256:$FRESH"
run "$MLREG" push team/c@2.0.0 --weights "$W/fresh.bin" --sign-key "$W/nokey.key"
expect_rc "push with a missing key file is a local error" 2
expect_status "... and uploads nothing either" 404 HEAD "/v2/team/c/blobs/sha256:$FRESH"

# The idempotent re-push: the release exists with the same files.
"$MLREG" key generate --out "$W/k2" --no-password >/dev/null 2>&1
run "$MLREG" push team/b@1.0.0 --weights "$W/model.bin" --tokenizer "$W/tok.txt" \
    --git-sha abcdef1 --sign-key "$W/k2.key"
expect_rc "re-push of the same files with a new key" 0
check "... prints the existing digest" test "$(cat "$TMP/out")" = "$DB"
check "... and attaches the new key's signature" test "$(nsigs team/b 1.0.0)" = 2
run "$MLREG" verify team/b@1.0.0 --trusted-key "$W/k2.pub"
expect_rc "the signature over the existing manifest verifies" 0
run "$MLREG" push team/b@1.0.0 --weights "$W/model.bin" --tokenizer "$W/tok.txt" \
    --git-sha abcdef1 --sign-key "$W/k2.key"
expect_rc "re-push with a key that signed already" 0
says "... says so" "already signed"
check "... and attaches nothing more" test "$(nsigs team/b 1.0.0)" = 2

# ---- the keyring: trust, list, revoke ----------------------------------------------
run "$MLREG" key list
expect_rc "key list on an empty keyring" 0
prints "... says so" "no trusted keys"
run "$MLREG" key trust "$W/k.pub" --name release-bot --role release
expect_rc "key trust" 0
prints "key trust prints the key id" "$K_ID"
run "$MLREG" key trust "$W/k.pub" --name release-bot --role release
expect_rc "trusting the same key again is a no-op" 0
run "$MLREG" key trust "$W/k2.pub" --name approver-1 --role approver --json
expect_rc "key trust --json" 0
check "... prints the key object" jqt '.name == "approver-1" and .role == "approver"' "$TMP/out"
run "$MLREG" key trust "$W/ms.pub" --name x --role "Bad Role"
expect_rc "a role outside [a-z][a-z0-9_-]* is a usage error" 2
run "$MLREG" key trust "$W/ms.pub"
expect_rc "key trust without --name is a usage error" 2
run "$MLREG" key list
expect_rc "key list" 0
prints "key list shows the first key" "release-bot"
prints "key list shows the second key" "approver-1"
"$MLREG" key list --json >"$W/ring.json"
check "key list --json lists two keys" jqt '.keys | length == 2' "$W/ring.json"
check "the registry now counts the push signature as trusted" sh -c \
    "curl -sf '$MLREG_URL/api/v1/models/team/b/versions/1.0.0/signatures' |
     jq -e '[.signatures[] | select(.key_id == \"$K_ID\")][0] | .status == \"trusted\" and .counts' >/dev/null"
run "$MLREG" verify team/b@1.0.0 --keyring "$W/ring.json"
expect_rc "verify --keyring with the saved keyring" 0
run "$MLREG" key revoke "$K_ID" --kind retired --reason "rotated to k2"
expect_rc "key revoke --kind retired" 0
prints "... shows the new state" "retired"
run "$MLREG" key list
prints "key list shows the retirement" "retired"
run "$MLREG" key revoke "$K_ID" --kind compromised --reason "leaked"
expect_rc "escalating retired to compromised" 0
run "$MLREG" key revoke "$K_ID" --kind retired
expect_rc "de-escalating compromised to retired is refused (exit 1)" 1
run "$MLREG" key revoke 0000000000000000 --kind retired
expect_rc "revoking an unknown key id exits 1" 1
run "$MLREG" key revoke 1a --kind retired
expect_rc "a short key id (as minisign prints ids with leading zeros) is padded, not refused" 1
check "... and reaches the registry as the padded id" grep -q "000000000000001A" "$TMP/err"
run "$MLREG" key revoke 0123456789ABCDEF0 --kind retired
expect_rc "a key id of 17 digits is a usage error" 2
run "$MLREG" key revoke nothex --kind retired
expect_rc "a malformed key id is a usage error" 2
run "$MLREG" key revoke "$K_ID" --kind lost
expect_rc "an unknown --kind is a usage error" 2
"$MLREG" key list --json >"$W/ring2.json"
check "the saved keyring records the compromise" \
    jqt '.keys[] | select(.key_id == "'"$K_ID"'") | .revocation == "compromised"' "$W/ring2.json"
run "$MLREG" verify team/b@1.0.0 --keyring "$W/ring2.json"
expect_rc "with k revoked as compromised, k2's signature still verifies team/b" 0
run "$MLREG" verify team/c@1.0.0 --keyring "$W/ring2.json"
expect_rc "team/c is signed by no key in the keyring (exit 1)" 1
says "... and verify says so" "no signature by a trusted key"
run "$MLREG" key bogus
expect_rc "an unknown key subcommand is a usage error" 2

finish
