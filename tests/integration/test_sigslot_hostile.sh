#!/bin/sh
# test_sigslot_hostile.sh: a push token tries to occupy a release's signature
# slot with a key of its own that carries the real signer's key id (a key id
# is 8 bytes anyone can put on a fresh key: tests/tools/forge_key.c makes
# one with libsodium), while that id is not in the keyring yet, as during a
# key rotation. The forged signature goes first; then the real signer's own
# attach must still succeed, `mlreg verify` and `mlreg pull --trusted-key`
# must pick the real signature, the `signed` gate must count the real key
# once and the forged key never, the audit log must say which key each
# attach used, and once the real key is trusted the forger is refused.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W" "$TMP/conf"
unset MLREG_KEY_PASSWORD MLREG_TOKEN
jqt() { jq -e "$@" >/dev/null; }
says() {
    if grep -qF -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (stderr lacks '$2': $(tail -n 3 "$TMP/err"))"; fi
}

# ---- the attacker's tool (make test builds it next to the mlreg binary) --------
FORGE=$(dirname "$MLREG")/tests/tools/forge_key
if [ ! -x "$FORGE" ]; then
    FORGE=$TMP/forge_key
    cc -std=c11 -D_GNU_SOURCE -o "$FORGE" "$MLREG_ROOT/tests/tools/forge_key.c" -lsodium ||
        { not_ok "forge_key builds"; finish; }
fi

# ---- keys: the new release key (not trusted yet) and a forgery of its id -------
"$MLREG" key generate --out "$W/new" --no-password >/dev/null 2>&1 || not_ok "generate the new key"
"$FORGE" "$W/new.pub" "$W/forged" || not_ok "forge_key makes a key pair with the new key's id"
keyid() { sed -n 2p "$1" | base64 -d | od -An -tx1 -j2 -N8 |
    awk '{ for (i = NF; i >= 1; i--) printf "%s", toupper($i) } END { print "" }'; }
NEW_ID=$(keyid "$W/new.pub")
NEW64=$(sed -n 2p "$W/new.pub")
FORGED64=$(sed -n 2p "$W/forged.pub")
check "the forged key carries the new key's id with another public key" \
    sh -c "[ '$(keyid "$W/forged.pub")' = '$NEW_ID' ] && [ '$NEW64' != '$FORGED64' ]"

# ---- a server with tokens and signed gates ---------------------------------------
T_CI=$(tok)
T_MALLORY=$(tok)
T_PROMOTE=$(tok)
T_ADMIN=$(tok)
cat >"$TMP/conf/mlreg.json" <<EOF
{ "tokens": [
    { "name": "ci-export", "sha256": "$(hash "$T_CI")", "roles": ["read", "push"] },
    { "name": "mallory", "sha256": "$(hash "$T_MALLORY")", "roles": ["read", "push"] },
    { "name": "promoter", "sha256": "$(hash "$T_PROMOTE")",
      "roles": ["read", "promote:staging", "promote:production"] },
    { "name": "root", "sha256": "$(hash "$T_ADMIN")", "roles": ["admin"] } ],
  "gates": {
    "staging": [ { "require": "signed", "min": 1 } ],
    "production": [ { "require": "signed", "min": 2 } ] } }
EOF
start_server --config "$TMP/conf/mlreg.json" || finish
CI="--token $T_CI"
MALLORY="--token $T_MALLORY"
ADMIN="--token $T_ADMIN"
PROMOTE="--token $T_PROMOTE"
A_READ="Authorization: Bearer $T_ADMIN"

head -c 4096 /dev/urandom >"$W/w1.bin"
head -c 4096 /dev/urandom >"$W/w2.bin"
# shellcheck disable=SC2086
{
    run "$MLREG" push demo@1.0 --weights "$W/w1.bin" --git-sha abcdef1 $CI
    expect_rc "ci-export pushes demo@1.0 unsigned" 0
    run "$MLREG" push demo@2.0 --weights "$W/w2.bin" --git-sha abcdef1 $CI
    expect_rc "ci-export pushes demo@2.0 unsigned" 0

    # ---- the attack: the forged signature goes first --------------------------------
    run "$MLREG" sign demo@1.0 --key "$W/forged.key" $MALLORY
    expect_rc "mallory's push token attaches a signature by the forged key to demo@1.0" 0
    run "$MLREG" sign demo@2.0 --key "$W/forged.key" $MALLORY
    expect_rc "... and to demo@2.0" 0

    # ---- the real signer is not locked out --------------------------------------------
    run "$MLREG" sign demo@1.0 --key "$W/new.key" $CI
    expect_rc "the real signer's attach to demo@1.0 still succeeds" 0
    says "... as an attach of its own, not 'already signed'" "with key $NEW_ID: attached"
    run "$MLREG" sign demo@1.0 --key "$W/new.key" $CI
    expect_rc "signing again with the real key is a no-op" 0
    says "... that finds its own signature" "nothing to do"
    expect_status "list demo@1.0" 200 GET /api/v1/models/demo/versions/1.0/signatures -H "$A_READ"
    check "... two signatures under the one key id, one per public key" \
        jqt --arg id "$NEW_ID" --arg n "$NEW64" --arg f "$FORGED64" \
        '[.signatures[] | select(.key_id == $id) | .public_key] | sort == ([$n, $f] | sort)' \
        "$TMP/body"
    jq -j --arg n "$NEW64" '.signatures[] | select(.public_key == $n) | .signature' "$TMP/body" \
        >"$W/real.minisig"
    curl -s -f -H "$A_READ" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -o "$W/m1.json" "$MLREG_URL/v2/demo/manifests/1.0"
    check "stock minisign -V verifies the real signature with new.pub" \
        minisign -V -q -p "$W/new.pub" -m "$W/m1.json" -x "$W/real.minisig"
    expect_status "the referrers of demo@1.0" 200 GET \
        "/v2/demo/referrers/sha256:$(sha256_of "$W/m1.json")" -H "$A_READ"
    check "... name both public keys" jqt --arg n "$NEW64" --arg f "$FORGED64" \
        '[.manifests[].annotations["org.mlreg.public-key"]] | sort == ([$n, $f] | sort)' "$TMP/body"

    # ---- the audit log says which key each attach used ---------------------------------
    expect_status "read the audit log" 200 GET "/api/v1/audit?limit=1000" -H "$A_READ"
    check "signature.attach entries: mallory with the forged key, ci-export with the real one" \
        jqt --arg id "$NEW_ID" --arg n "$NEW64" --arg f "$FORGED64" \
        '[.entries[] | fromjson | select(.action == "signature.attach" and .subject.key_id == $id
          and .subject.version == "1.0") | [.actor, .details.public_key]]
         == [["mallory", $f], ["ci-export", $n]]' "$TMP/body"

    # ---- the rotation completes: the real key enters the keyring ------------------------
    run "$MLREG" key trust "$W/new.pub" --name release-2026 --role release $ADMIN
    expect_rc "the admin trusts the new key" 0
    expect_status "list demo@1.0 again" 200 GET /api/v1/models/demo/versions/1.0/signatures \
        -H "$A_READ"
    check "... the real signature counts, the forged one is untrusted and never counts" \
        jqt --arg n "$NEW64" --arg f "$FORGED64" \
        '(.signatures | map({(.public_key): [.status, .counts, .key_name]}) | add) ==
         {($n): ["trusted", true, "release-2026"], ($f): ["untrusted", false, null]}' "$TMP/body"

    run "$MLREG" verify demo@1.0 --trusted-key "$W/new.pub" $CI
    expect_rc "mlreg verify --trusted-key new.pub passes beside the forged signature" 0
    check "... and reports the forged one as untrusted, by another key" \
        grep -q "untrusted.*another key" "$TMP/out"
    run "$MLREG" pull demo@1.0 -o "$W/pulled" --trusted-key "$W/new.pub" $CI
    expect_rc "mlreg pull --trusted-key new.pub places the release" 0
    check "... with its file" cmp -s "$W/w1.bin" "$W/pulled/w1.bin"
    run "$MLREG" verify demo@2.0 --trusted-key "$W/new.pub" $CI
    expect_rc "demo@2.0, signed only by the forged key, does not verify with new.pub" 1
    says "... for want of a signature by a trusted key" "no signature by a trusted key"

    # ---- the audit bundle keeps both, the real one under the plain name --------------------
    run "$MLREG" bundle demo@1.0 -o "$W/bundle" $CI
    expect_rc "mlreg bundle demo@1.0 beside the forged signature" 0
    FHEX=$(printf '%s' "$FORGED64" | base64 -d | od -An -tx1 -j10 -N32 | tr -d ' \n')
    check "... signatures/ holds the real one as $NEW_ID.minisig and the forged one beside it" \
        sh -c "cd '$W/bundle/signatures' && [ \$(ls | wc -l) -eq 2 ] &&
               cmp -s '$NEW_ID.minisig' '$W/real.minisig' &&
               minisign -V -q -p '$W/forged.pub' -m ../manifest.json -x '$NEW_ID-$FHEX.minisig'"
    check "... and stock minisign -V -H verifies manifest.json.minisig with new.pub" \
        sh -c "cd '$W/bundle' && minisign -V -q -H -p '$W/new.pub' -m manifest.json"

    # ---- the signed gate counts keyring keys by their full public key --------------------
    run "$MLREG" promote demo@2.0 --to staging $PROMOTE
    expect_rc "demo@2.0 (forged signature only) is refused for staging (signed >= 1)" 1
    run "$MLREG" promote demo@1.0 --to staging $PROMOTE
    expect_rc "demo@1.0 (real + forged) passes the staging gate (signed >= 1)" 0
    run "$MLREG" promote demo@1.0 --to production --json $PROMOTE
    expect_rc "... but not production's (signed >= 2): the forged key is no second key" 1
    check "... its signed rule saw exactly 1 trusted key" \
        jqt '[.rules[] | select(.type == "signed") | [.candidate, .passed]] == [[1, false]]' "$TMP/out"

    # ---- once the key id is in the keyring, the forger is refused --------------------------
    run "$MLREG" push demo@3.0 --weights "$W/w1.bin" --git-sha abcdef1 $CI
    expect_rc "ci-export pushes demo@3.0" 0
    run "$MLREG" sign demo@3.0 --key "$W/forged.key" $MALLORY
    expect_rc "the forged key can no longer attach under the trusted id" 1
    says "... because its public key differs from the trusted key" \
        "public key differs from the trusted key $NEW_ID"
    expect_status "demo@3.0 has no signature" 200 GET \
        /api/v1/models/demo/versions/3.0/signatures -H "$A_READ"
    check "... nothing was stored" jqt '.signatures == []' "$TMP/body"
}

finish
