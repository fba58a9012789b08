#!/bin/sh
# test_signatures_api.sh: release signatures and the trusted keyring over the
# real server (docs/signatures-api.md), driven with curl and the STOCK
# minisign binary: releases pushed with `mlreg push`, manifests signed with
# `minisign -S`, signatures attached and listed, the OCI referrer and its
# layer blob, keys trusted and revoked at runtime and the effect on `counts`,
# a restart that keeps the revocation, and hostile attaches that must answer
# 400/404/409/413 with nothing stored.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

command -v minisign >/dev/null 2>&1 || { not_ok "minisign is installed"; finish; }

K=$TMP/conf/keys
W=$TMP/work
mkdir -p "$K" "$W"
# unencrypted minisign keys: T is in the config, U is trusted at runtime, V never
for k in T U V; do
    minisign -G -W -p "$K/$k.pub" -s "$K/$k.key" >/dev/null 2>&1 || not_ok "minisign -G $k"
done
# keyid PUBFILE: the key id in mlreg's form (16 hex digits) from the key bytes;
# minisign's comment line drops leading zeros ("%" PRIX64), 1 key in 16.
keyid() {
    sed -n 2p "$1" | base64 -d | od -An -tx1 -j2 -N8 |
        awk '{ for (i = NF; i >= 1; i--) printf "%s", toupper($i) } END { print "" }'
}
T_ID=$(keyid "$K/T.pub")
U_ID=$(keyid "$K/U.pub")
check "minisign printed key ids" sh -c "echo '$T_ID $U_ID' | grep -Eq '^[0-9A-F]{16} [0-9A-F]{16}\$'"

# ---- config: trusted_keys, strict ----------------------------------------------
refuse_start() { # NAME CONFIG_JSON NEEDLE
    printf '%s\n' "$2" >"$TMP/conf/bad.json"
    timeout 10 "$MLREG" serve --config "$TMP/conf/bad.json" --listen 127.0.0.1:0 \
        --data "$TMP/refused" >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -qF "$3" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (exit $rc: $(head -c 300 "$TMP/err"))"; fi
}
refuse_start "duplicate key ids in trusted_keys stop the start naming the key" \
    '{"trusted_keys":[{"name":"a","file":"keys/T.pub","role":"release"},
                      {"name":"b","file":"keys/T.pub","role":"release"}]}' "key 'b'"
refuse_start "duplicate names in trusted_keys stop the start" \
    '{"trusted_keys":[{"name":"a","file":"keys/T.pub","role":"release"},
                      {"name":"a","file":"keys/U.pub","role":"release"}]}' "duplicate key name 'a'"
refuse_start "a secret key file as trusted key stops the start naming key and file" \
    '{"trusted_keys":[{"name":"oops","file":"keys/T.key","role":"release"}]}' \
    "trusted key 'oops': cannot load public key file $K/T.key"

# conf/trusted-keys.example.json starts once its key file exists next to it
mkdir -p "$TMP/ex/keys"
cp "$MLREG_ROOT/conf/trusted-keys.example.json" "$TMP/ex/"
cp "$K/T.pub" "$TMP/ex/keys/release.pub"
"$MLREG" serve --config "$TMP/ex/trusted-keys.example.json" --listen 127.0.0.1:0 \
    --data "$TMP/exdata" --ready-file "$TMP/ex/ready" 2>"$TMP/ex/log" &
EXPID=$!
i=0
while [ ! -s "$TMP/ex/ready" ] && [ $i -lt 100 ] && kill -0 $EXPID 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
if [ -s "$TMP/ex/ready" ] &&
    curl -s "$(cat "$TMP/ex/ready")/api/v1/keys" | jq -e --arg id "$T_ID" \
        '.keys[0].key_id == $id and .keys[0].name == "release-bot"' >/dev/null; then
    ok "conf/trusted-keys.example.json loads its key"
else
    not_ok "conf/trusted-keys.example.json loads its key ($(cat "$TMP/ex/log"))"
fi
kill -TERM $EXPID 2>/dev/null
wait $EXPID
check "the example server exits 0" [ $? -eq 0 ]

cat >"$TMP/conf/mlreg.json" <<EOF
{ "trusted_keys": [ { "name": "release-bot", "file": "keys/T.pub", "role": "release" } ] }
EOF
start_server --config "$TMP/conf/mlreg.json" || finish

API=/api/v1/models/demo/versions
jqt() { jq -e "$@" >/dev/null; }
# body SIGFILE PUBFILE: the attach request body
body() { jq -n --rawfile s "$1" --rawfile p "$2" '{signature: $s, public_key: $p}' >"$TMP/req.json"; }
# attach NAME WANT VERSION SIGFILE PUBFILE
attach() {
    body "$4" "$5"
    expect_status "$1" "$2" POST "$API/$3/signatures" --data-binary @"$TMP/req.json"
}
n_sigs() { curl -s "$MLREG_URL$API/$1/signatures" | jq '.signatures | length'; }
n_refs() { curl -s "$MLREG_URL/v2/demo/referrers/$1" | jq '.manifests | length'; }
err_code() { jq -r '.errors[0].code' "$TMP/body"; }
err_msg() { jq -r '.errors[0].message' "$TMP/body"; }
# refused NAME WANT_STATUS WANT_CODE NEEDLE VERSION SIGFILE PUBFILE: refused with
# that code and message, and the release's signatures and referrers unchanged
refused() {
    before_s=$(n_sigs "$5")
    before_r=$(n_refs "$(eval echo \$D_"$(echo "$5" | tr . _)")")
    body "$6" "$7"
    got=$(http_status POST "$API/$5/signatures" --data-binary @"$TMP/req.json")
    if [ "$got" = "$2" ] && [ "$(err_code)" = "$3" ] && err_msg | grep -qF "$4"; then
        ok "$1"
    else
        not_ok "$1 (want $2 $3 '$4', got $got $(head -c 300 "$TMP/body"))"
    fi
    after_s=$(n_sigs "$5")
    after_r=$(n_refs "$(eval echo \$D_"$(echo "$5" | tr . _)")")
    if [ "$before_s" = "$after_s" ] && [ "$before_r" = "$after_r" ]; then
        ok "$1: nothing stored"
    else
        not_ok "$1: nothing stored (signatures $before_s -> $after_s, referrers $before_r -> $after_r)"
    fi
}
comment() { echo "mlreg release model=demo version=$1 digest=$2 timestamp=${3:-1700000000}"; }
sign() { # KEY FILE COMMENT -> FILE.minisig
    rm -f "$2.minisig"
    minisign -S -s "$K/$1.key" -m "$2" -t "$3" >/dev/null 2>&1 || not_ok "minisign -S $2"
}

# ---- push two releases, fetch their manifest bytes ------------------------------
head -c 4096 /dev/urandom >"$W/w1.bin"
head -c 4096 /dev/urandom >"$W/w2.bin"
"$MLREG" push --registry "$MLREG_URL" demo@1.0 --weights "$W/w1.bin" >/dev/null 2>"$TMP/err" ||
    not_ok "push demo@1.0 ($(cat "$TMP/err"))"
"$MLREG" push --registry "$MLREG_URL" demo@2.0 --weights "$W/w2.bin" >/dev/null 2>"$TMP/err" ||
    not_ok "push demo@2.0 ($(cat "$TMP/err"))"
for v in 1.0 2.0; do
    curl -s -f -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -o "$W/m$v.json" "$MLREG_URL/v2/demo/manifests/$v"
done
D_1_0=sha256:$(sha256_of "$W/m1.0.json")
D_2_0=sha256:$(sha256_of "$W/m2.0.json")
check "both manifests fetched" [ -s "$W/m1.0.json" -a -s "$W/m2.0.json" ]

# ---- a valid attach by the config key -----------------------------------------
sign T "$W/m1.0.json" "$(comment 1.0 "$D_1_0")"
cp "$W/m1.0.json.minisig" "$W/t1.minisig"
attach "attach a minisign signature by the trusted config key" 201 1.0 "$W/t1.minisig" "$K/T.pub"
check "the attach answer names key, digest, trust and referrer" \
    jqt --arg id "$T_ID" --arg d "$D_1_0" '.key_id == $id and .digest == $d and .trusted == true
        and .key_name == "release-bot" and .model == "demo" and .version == "1.0"
        and (.referrer | test("^sha256:[0-9a-f]{64}$"))' "$TMP/body"
REF1=$(jq -r .referrer "$TMP/body")
attach "the identical attach again is a no-op (200)" 200 1.0 "$W/t1.minisig" "$K/T.pub"
check "the retried attach names the same referrer" jqt --arg r "$REF1" '.referrer == $r' "$TMP/body"
# the bare base64 line works as the public key too
tail -n 1 "$K/T.pub" >"$W/T.b64"
attach "the public key may be the bare base64 line" 200 1.0 "$W/t1.minisig" "$W/T.b64"

expect_status "list the signatures of demo@1.0" 200 GET "$API/1.0/signatures"
check "the listing shows one trusted, counting signature with its .minisig text" \
    jqt --arg id "$T_ID" --rawfile s "$W/t1.minisig" --arg d "$D_1_0" \
    '.digest == $d and (.signatures | length) == 1 and .signatures[0].key_id == $id
     and .signatures[0].signature == $s and .signatures[0].status == "trusted"
     and .signatures[0].counts == true and .signatures[0].trusted_at_attach == true
     and .signatures[0].key_name == "release-bot" and .signatures[0].role == "release"
     and .signatures[0].attached_by == "local"
     and (.signatures[0].attached_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T"))' "$TMP/body"
jq -j '.signatures[0].signature' "$TMP/body" >"$W/listed.minisig"
check "stock minisign -V verifies the listed signature over the manifest" \
    minisign -V -q -p "$K/T.pub" -m "$W/m1.0.json" -x "$W/listed.minisig"

# ---- the OCI referrer ----------------------------------------------------------
expect_status "the release has an OCI referrer" 200 GET "/v2/demo/referrers/$D_1_0"
check "the referrer is the signature manifest" \
    jqt --arg r "$REF1" --arg id "$T_ID" '.manifests | length == 1 and .[0].digest == $r
        and .[0].artifactType == "application/vnd.mlreg.signature.v1+minisign"
        and .[0].annotations["org.mlreg.key-id"] == $id' "$TMP/body"
expect_status "filtered by artifactType too" 200 GET \
    "/v2/demo/referrers/$D_1_0?artifactType=application/vnd.mlreg.signature.v1%2Bminisign"
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -o "$W/ref.json" "$MLREG_URL/v2/demo/manifests/$REF1"
check "the referrer manifest hashes to its digest" test "sha256:$(sha256_of "$W/ref.json")" = "$REF1"
check "the referrer manifest: empty config, one minisig layer, subject = release" \
    jqt --arg d "$D_1_0" --arg t "$T_ID.minisig" \
    '.artifactType == "application/vnd.mlreg.signature.v1+minisign"
     and .config.mediaType == "application/vnd.oci.empty.v1+json"
     and (.layers | length) == 1
     and .layers[0].mediaType == "application/vnd.mlreg.signature.v1+minisign"
     and .layers[0].annotations["org.opencontainers.image.title"] == $t
     and .subject.digest == $d' "$W/ref.json"
expect_status "the signature referrer cannot be deleted on its own (409)" 409 DELETE \
    "/v2/demo/manifests/$REF1"
LAYER=$(jq -r '.layers[0].digest' "$W/ref.json")
curl -s -f -o "$W/layer.minisig" "$MLREG_URL/v2/demo/blobs/$LAYER"
check "the referrer's layer blob is the .minisig bytes" cmp -s "$W/layer.minisig" "$W/t1.minisig"

# ---- hostile attaches: refused, nothing stored ---------------------------------
# a signature over other bytes with the right comment
printf 'not the manifest' >"$W/other.txt"
sign T "$W/other.txt" "$(comment 1.0 "$D_1_0")"
refused "a forged signature is refused" 400 SIGNATURE_INVALID \
    "signature does not match the manifest" 2.0 "$W/other.txt.minisig" "$K/T.pub"
# signed by U, offered with T's public key
cp "$W/m2.0.json" "$W/u2.json"
sign U "$W/u2.json" "$(comment 2.0 "$D_2_0")"
refused "a public key with another key id is refused" 400 SIGNATURE_INVALID \
    "signature made by key ID $U_ID" 2.0 "$W/u2.json.minisig" "$K/T.pub"
# 1.0's valid signature replayed onto 2.0
refused "a signature of another release is refused" 400 SIGNATURE_INVALID \
    "signature does not match the manifest" 2.0 "$W/t1.minisig" "$K/T.pub"
# 2.0's bytes, but the comment names 1.0
cp "$W/m2.0.json" "$W/x2.json"
sign T "$W/x2.json" "$(comment 1.0 "$D_2_0")"
refused "a trusted comment naming another version is refused" 400 SIGNATURE_INVALID \
    "trusted comment names version 1.0, not 2.0" 2.0 "$W/x2.json.minisig" "$K/T.pub"
sign T "$W/x2.json" "$(comment 2.0 "$D_1_0")"
refused "a trusted comment naming another digest is refused" 400 SIGNATURE_INVALID \
    "trusted comment names digest $D_1_0" 2.0 "$W/x2.json.minisig" "$K/T.pub"
# an edited trusted comment
cp "$W/m2.0.json" "$W/e2.json"
sign T "$W/e2.json" "$(comment 2.0 "$D_2_0")"
sed 's/timestamp=1700000000/timestamp=1800000000/' "$W/e2.json.minisig" >"$W/edited.minisig"
refused "an edited trusted comment is refused" 400 SIGNATURE_INVALID \
    "trusted comment was altered" 2.0 "$W/edited.minisig" "$K/T.pub"
# truncated base64 on the signature line
awk 'NR == 2 { print substr($0, 1, length($0) - 8); next } { print }' "$W/e2.json.minisig" \
    >"$W/truncated.minisig"
refused "truncated base64 is refused" 400 SIGNATURE_INVALID "malformed signature" 2.0 \
    "$W/truncated.minisig" "$K/T.pub"
# wrong algorithm bytes: "XD" instead of "ED"
line2=$(sed -n 2p "$W/e2.json.minisig")
alg=$({ printf 'XD'; printf '%s' "$line2" | base64 -d | tail -c +3; } | base64 -w0)
{ sed -n 1p "$W/e2.json.minisig"; echo "$alg"; sed -n '3,4p' "$W/e2.json.minisig"; } \
    >"$W/alg.minisig"
refused "wrong algorithm bytes are refused" 400 SIGNATURE_INVALID "malformed signature" 2.0 \
    "$W/alg.minisig" "$K/T.pub"
refused "a malformed public key is refused" 400 SIGNATURE_INVALID "malformed public key" 2.0 \
    "$W/e2.json.minisig" "$W/other.txt"
# the same key, another signature on 1.0 (a new timestamp)
cp "$W/m1.0.json" "$W/t1b.json"
sign T "$W/t1b.json" "$(comment 1.0 "$D_1_0" 1700000099)"
refused "a second, different signature by the same key is refused (409)" 409 DENIED \
    "already has a different signature by key $T_ID" 1.0 "$W/t1b.json.minisig" "$K/T.pub"
# unknown version / model
body "$W/t1.minisig" "$K/T.pub"
expect_status "attach to an unknown version is 404" 404 POST "$API/9.9/signatures" \
    --data-binary @"$TMP/req.json"
check "... with MANIFEST_UNKNOWN" test "$(err_code)" = MANIFEST_UNKNOWN
expect_status "attach to an unknown model is 404" 404 POST \
    /api/v1/models/nobody/versions/1.0/signatures --data-binary @"$TMP/req.json"
expect_status "listing an unknown version is 404" 404 GET "$API/9.9/signatures"
# malformed bodies
expect_status "a malformed JSON body is 400" 400 POST "$API/2.0/signatures" --data-binary '{"signature":'
check "... with a message saying so" sh -c "jq -r '.errors[0].message' '$TMP/body' | grep -q 'malformed JSON body'"
expect_status "a body without public_key is 400" 400 POST "$API/2.0/signatures" \
    --data-binary '{"signature":"x"}'
check "... naming the missing field" sh -c "jq -r '.errors[0].message' '$TMP/body' | grep -q public_key"
expect_status "a JSON array body is 400" 400 POST "$API/2.0/signatures" --data-binary '[]'
expect_status "an empty body is 400" 400 POST "$API/2.0/signatures"
head -c 70000 /dev/zero | tr '\0' ' ' >"$W/big.json"
expect_status "a body over 64 KiB is 413" 413 POST "$API/2.0/signatures" --data-binary @"$W/big.json"
expect_status "a chunked body over 64 KiB is 413" 413 POST "$API/2.0/signatures" \
    -H 'Transfer-Encoding: chunked' --data-binary @"$W/big.json"
expect_status "DELETE on signatures is 405" 405 DELETE "$API/2.0/signatures"
check "after all that, demo@2.0 has no signature and no referrer" \
    test "$(n_sigs 2.0) $(n_refs "$D_2_0")" = "0 0"

# ---- an untrusted key, then runtime trust --------------------------------------
attach "a signature by a key outside the keyring is stored" 201 2.0 "$W/u2.json.minisig" "$K/U.pub"
check "... with trusted=false and no key name" jqt '.trusted == false and .key_name == null' "$TMP/body"
expect_status "list 2.0" 200 GET "$API/2.0/signatures"
check "... status untrusted, counts false" \
    jqt '.signatures[0].status == "untrusted" and .signatures[0].counts == false' "$TMP/body"

expect_status "GET /api/v1/keys" 200 GET /api/v1/keys
check "the config key is listed with source config" \
    jqt --arg id "$T_ID" '.keys | length == 1 and .[0].key_id == $id and .[0].name == "release-bot"
        and .[0].role == "release" and .[0].source == "config" and .[0].revoked_at == null
        and .[0].revocation == null' "$TMP/body"
jq -n --rawfile p "$K/U.pub" '{name: "second-signer", role: "release", public_key: $p}' >"$W/trust.json"
expect_status "trust U at runtime (201)" 201 POST /api/v1/keys --data-binary @"$W/trust.json"
check "... the key object" jqt --arg id "$U_ID" \
    '.key_id == $id and .source == "runtime" and .name == "second-signer" and .role == "release"' "$TMP/body"
expect_status "trusting the same key again is a no-op (200)" 200 POST /api/v1/keys \
    --data-binary @"$W/trust.json"
expect_status "trusting a malformed key is 400" 400 POST /api/v1/keys \
    --data-binary '{"name":"x","role":"approver","public_key":"RWQ not a key"}'
jq -n --rawfile p "$K/V.pub" '{name: "second-signer", role: "approver", public_key: $p}' >"$W/trust-v.json"
expect_status "trusting another key under a taken name is 409" 409 POST /api/v1/keys \
    --data-binary @"$W/trust-v.json"
expect_status "list 2.0 after trusting U" 200 GET "$API/2.0/signatures"
check "... U's signature now counts" \
    jqt '.signatures[0].status == "trusted" and .signatures[0].counts == true
         and .signatures[0].trusted_at_attach == false and .signatures[0].key_name == "second-signer"' "$TMP/body"

# ---- revocations and counts ----------------------------------------------------
expect_status "retire T" 200 POST "/api/v1/keys/$T_ID/revoke" \
    --data-binary '{"kind":"retired","reason":"rotation"}'
check "... revocation retired with time and reason" \
    jqt '.revocation == "retired" and .reason == "rotation" and (.revoked_at | type) == "string"' "$TMP/body"
expect_status "list 1.0 after retiring T" 200 GET "$API/1.0/signatures"
check "... T's earlier signature keeps counting" \
    jqt '.signatures[0].status == "retired" and .signatures[0].counts == true' "$TMP/body"
sign T "$W/e2.json" "$(comment 2.0 "$D_2_0")"
attach "T signs 2.0 after its retirement: stored" 201 2.0 "$W/e2.json.minisig" "$K/T.pub"
check "... but not trusted" jqt '.trusted == false' "$TMP/body"
expect_status "list 2.0" 200 GET "$API/2.0/signatures"
check "... T's later signature does not count, U's does" \
    jqt --arg t "$T_ID" --arg u "$U_ID" \
    '(.signatures | map({(.key_id): .counts}) | add) == {($t): false, ($u): true}' "$TMP/body"
expect_status "revoke U as compromised" 200 POST "/api/v1/keys/$U_ID/revoke" \
    --data-binary '{"kind":"compromised","reason":"key leaked"}'
expect_status "list 2.0 again" 200 GET "$API/2.0/signatures"
check "... no signature of 2.0 counts" jqt '[.signatures[].counts] == [false, false]' "$TMP/body"
expect_status "revoking an unknown key is 404" 404 POST /api/v1/keys/0000000000000000/revoke \
    --data-binary '{"kind":"retired"}'
check "... KEY_UNKNOWN" test "$(err_code)" = KEY_UNKNOWN
expect_status "a bad revocation kind is 400" 400 POST "/api/v1/keys/$T_ID/revoke" \
    --data-binary '{"kind":"lost"}'
expect_status "compromised cannot become retired (409)" 409 POST "/api/v1/keys/$U_ID/revoke" \
    --data-binary '{"kind":"retired"}'
expect_status "a revoked key cannot be trusted again (409)" 409 POST /api/v1/keys \
    --data-binary @"$W/trust.json"
expect_status "escalate T to compromised" 200 POST "/api/v1/keys/$T_ID/revoke" \
    --data-binary '{"kind":"compromised","reason":"stolen"}'
expect_status "list 1.0 after compromise" 200 GET "$API/1.0/signatures"
check "... T's earlier signature no longer counts" \
    jqt '.signatures[0].status == "compromised" and .signatures[0].counts == false' "$TMP/body"
expect_status "GET /api/v1/keys/events" 200 GET /api/v1/keys/events
check "key events oldest first: config trust, runtime trust, three revocations" \
    jqt --arg t "$T_ID" --arg u "$U_ID" \
    '[.events[] | [.action, .key_id, .kind, .actor]] ==
     [["trust", $t, null, "config"], ["trust", $u, null, "local"], ["revoke", $t, "retired", "local"],
      ["revoke", $u, "compromised", "local"], ["revoke", $t, "compromised", "local"]]' "$TMP/body"

# ---- restart with the config still listing T -----------------------------------
stop_server
start_server --config "$TMP/conf/mlreg.json" || finish
check "the server warns that a config key stays revoked" \
    grep -q "warning: trusted key 'release-bot'.*revocation stays in force" "$TMP/server.log"
expect_status "GET /api/v1/keys after restart" 200 GET /api/v1/keys
check "... T is still compromised, U still trusted at runtime and compromised" \
    jqt --arg t "$T_ID" --arg u "$U_ID" \
    '(.keys | map({(.key_id): [.source, .revocation]}) | add) ==
     {($t): ["config", "compromised"], ($u): ["runtime", "compromised"]}' "$TMP/body"
expect_status "list 1.0 after restart" 200 GET "$API/1.0/signatures"
check "... the signature is still there and still does not count" \
    jqt '(.signatures | length) == 1 and .signatures[0].counts == false' "$TMP/body"
check "the referrer survived the restart" test "$(n_refs "$D_1_0")" = 1

# ---- a key id squatted by another key ------------------------------------------
# Anyone may attach a signature under a key id that is not in the keyring, made
# with another key. `mlreg sign` with the real key must then not report the
# release as "already signed": the signature there is not its own. It attaches
# its own beside it (signatures are stored per public key, not per key id).
if command -v python3 >/dev/null 2>&1; then
    for k in A B; do
        minisign -G -W -p "$K/$k.pub" -s "$K/$k.key" >/dev/null 2>&1 || not_ok "minisign -G $k"
    done
    head -c 4096 /dev/urandom >"$W/w3.bin"
    "$MLREG" push --registry "$MLREG_URL" demo@3.0 --weights "$W/w3.bin" >/dev/null 2>"$TMP/err" ||
        not_ok "push demo@3.0 ($(cat "$TMP/err"))"
    curl -s -f -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -o "$W/m3.0.json" "$MLREG_URL/v2/demo/manifests/3.0"
    D_3_0=sha256:$(sha256_of "$W/m3.0.json")
    sign B "$W/m3.0.json" "$(comment 3.0 "$D_3_0")"
    # B's signature and public key, relabelled with A's key id
    python3 - "$K/A.pub" "$K/B.pub" "$W/m3.0.json.minisig" "$W/squat.pub" "$W/squat.minisig" <<'PY'
import base64, sys
a_pub, b_pub, b_sig, out_pub, out_sig = sys.argv[1:]
def lines(p): return open(p).read().split("\n")
a_id = base64.b64decode(lines(a_pub)[1])[2:10]
def relabel(src, dst, i):
    ls = lines(src)
    raw = bytearray(base64.b64decode(ls[i]))
    raw[2:10] = a_id
    ls[i] = base64.b64encode(bytes(raw)).decode()
    open(dst, "w").write("\n".join(ls))
relabel(b_pub, out_pub, 1)
relabel(b_sig, out_sig, 1)
PY
    A_ID=$(keyid "$K/A.pub")
    attach "a signature under A's key id made with key B is stored (A is not in the keyring)" \
        201 3.0 "$W/squat.minisig" "$W/squat.pub"
    "$MLREG" sign demo@3.0 --key "$K/A.key" --registry "$MLREG_URL" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    check "mlreg sign with the real key A does not claim the squatted signature as its own" \
        sh -c "[ $rc -eq 0 ] && ! grep -q 'nothing to do' '$TMP/err'"
    check "... and attaches A's own signature beside it" grep -q "with key $A_ID: attached" "$TMP/err"
    expect_status "list 3.0" 200 GET "$API/3.0/signatures"
    check "... two signatures under A's key id, one per public key" \
        jqt --arg id "$A_ID" --arg a "$(sed -n 2p "$K/A.pub")" --arg b "$(sed -n 2p "$W/squat.pub")" \
        '[.signatures[] | select(.key_id == $id) | .public_key] | sort == ([$a, $b] | sort)' \
        "$TMP/body"
    jq -j --arg a "$(sed -n 2p "$K/A.pub")" \
        '.signatures[] | select(.public_key == $a) | .signature' "$TMP/body" >"$W/a3.minisig"
    check "stock minisign -V verifies A's listed signature with A.pub" \
        minisign -V -q -p "$K/A.pub" -m "$W/m3.0.json" -x "$W/a3.minisig"
    "$MLREG" verify demo@3.0 --trusted-key "$K/A.pub" --registry "$MLREG_URL" >"$TMP/out" \
        2>"$TMP/err"
    check "mlreg verify --trusted-key A.pub passes (the squatted one is ignored)" [ $? -eq 0 ]
else
    not_ok "python3 is needed for the key id squatting test"
fi

finish
