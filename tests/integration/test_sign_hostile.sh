#!/bin/sh
# test_sign_hostile.sh: release signatures that must be refused, by
# `mlreg verify` (exit 1, a message naming the cause) and by
# `mlreg pull --trusted-key` (exit 1, nothing placed in DIR):
#   against the real server: a signature by an untrusted key, by a key
#   revoked as compromised, by a retired key attached after the retirement
#   (and one attached before, which still counts), a signature replayed onto
#   another release (the server refuses it with 400), a blob changed on disk;
#   against a fake registry (python3) that serves whatever it is told, so the
#   client's own checks are exercised: a replayed signature, a comment naming
#   another release, an edited trusted comment, truncated base64, wrong
#   algorithm bytes, a manifest changed by one byte, a swapped blob, no
#   signature, a registry that reports the key revoked, a signature list for
#   another digest.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

start_server || finish

W=$TMP/work
mkdir -p "$W"
head -c 65536 /dev/urandom >"$W/model.bin"
printf 'tok' >"$W/tok.txt"
unset MLREG_KEY_PASSWORD

# says NAME TEXT: the last command's stderr contains TEXT.
says() {
    if grep -qF -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (stderr lacks '$2': $(tail -n 3 "$TMP/err"))"; fi
}
listing() { ls -A "$1" 2>/dev/null | tr '\n' ' '; }

# refused NAME REF MESSAGE [mlreg args...]: verify and pull --trusted-key
# both exit 1 naming MESSAGE, and pull adds nothing to its DIR (which holds
# a marker file beforehand) and nothing beside it.
refused() {
    name=$1; ref=$2; msg=$3; shift 3
    run "$MLREG" verify "$ref" "$@"
    expect_rc "$name: verify exits 1" 1
    says "$name: verify names the cause" "$msg"
    rm -rf "$TMP/jail"
    mkdir -p "$TMP/jail/out"
    echo keep >"$TMP/jail/out/marker"
    run "$MLREG" pull "$ref" -o "$TMP/jail/out" "$@"
    expect_rc "$name: pull exits 1" 1
    says "$name: pull names the cause" "$msg"
    check "$name: pull places nothing in DIR" test "$(listing "$TMP/jail/out")" = "marker "
    check "$name: pull writes nothing beside DIR" test "$(listing "$TMP/jail")" = "out "
}

for k in trusted other retired comp; do
    "$MLREG" key generate --out "$W/$k" --no-password >/dev/null 2>&1 ||
        not_ok "generate key $k"
done

if [ "$(http_status GET /api/v1/keys)" != 200 ]; then
    not_ok "the registry serves the signature and keyring endpoints (GET /api/v1/keys: $(cat "$TMP/body" | head -c 200))"
else
    # ---- untrusted key ------------------------------------------------------
    run "$MLREG" push team/clf@1.0.0 --weights "$W/model.bin" --tokenizer "$W/tok.txt" \
        --git-sha abcdef1 --sign-key "$W/other.key"
    expect_rc "push a release signed by a key nobody trusts" 0
    refused "untrusted key" team/clf@1.0.0 "no signature by a trusted key" \
        --trusted-key "$W/trusted.pub"
    run "$MLREG" verify team/clf@1.0.0 --trusted-key "$W/other.pub"
    expect_rc "the same release verifies with its signer's key (the check can pass)" 0

    # ---- compromised key ----------------------------------------------------
    run "$MLREG" push team/clf@1.1.0 --weights "$W/model.bin" --git-sha abcdef1 \
        --sign-key "$W/comp.key"
    expect_rc "push a release signed by a key that will be compromised" 0
    run "$MLREG" key trust "$W/comp.pub" --name comp-bot --role release
    expect_rc "trust the key" 0
    "$MLREG" key list --json >"$W/ring-before.json"
    run "$MLREG" verify team/clf@1.1.0 --keyring "$W/ring-before.json"
    expect_rc "before the revocation the keyring accepts the release" 0
    COMP_ID=$(jq -r '.keys[] | select(.name == "comp-bot") | .key_id' "$W/ring-before.json")
    run "$MLREG" key revoke "$COMP_ID" --kind compromised --reason "laptop stolen"
    expect_rc "revoke the key as compromised" 0
    "$MLREG" key list --json >"$W/ring-comp.json"
    refused "compromised key (keyring file)" team/clf@1.1.0 "compromised" \
        --keyring "$W/ring-comp.json"
    refused "compromised key (registry reports it, --trusted-key)" team/clf@1.1.0 "compromised" \
        --trusted-key "$W/comp.pub"

    # ---- retired key: before counts, after does not ---------------------------
    run "$MLREG" push team/clf@1.2.0 --weights "$W/model.bin" --git-sha abcdef1 \
        --sign-key "$W/retired.key"
    expect_rc "push a release signed by a key that will be retired" 0
    run "$MLREG" key trust "$W/retired.pub" --name old-bot --role release
    expect_rc "trust the key to be retired" 0
    RET_ID=$("$MLREG" key list --json | jq -r '.keys[] | select(.name == "old-bot") | .key_id')
    # (the server stamps attaches and revocations with strictly increasing ns times)
    run "$MLREG" key revoke "$RET_ID" --kind retired --reason rotated
    expect_rc "retire the key" 0
    "$MLREG" key list --json >"$W/ring-ret.json"
    run "$MLREG" verify team/clf@1.2.0 --keyring "$W/ring-ret.json"
    expect_rc "a signature attached before the retirement still counts" 0
    run "$MLREG" pull team/clf@1.2.0 -o "$TMP/ret-ok" --keyring "$W/ring-ret.json"
    expect_rc "and pull --keyring accepts it" 0
    run "$MLREG" push team/clf@1.3.0 --weights "$W/model.bin" --git-sha abcdef1
    expect_rc "push an unsigned release" 0
    run "$MLREG" sign team/clf@1.3.0 --key "$W/retired.key"
    expect_rc "a retired key can still attach a signature (it just does not count)" 0
    refused "retired key, attached after the retirement" team/clf@1.3.0 "after the retirement" \
        --keyring "$W/ring-ret.json"

    # ---- replay: the server refuses release A's signature on release B ---------
    run "$MLREG" push team/clf@2.0.0 --weights "$W/model.bin" --git-sha abcdef1 \
        --sign-key "$W/trusted.key"
    expect_rc "push release A signed by the trusted key" 0
    run "$MLREG" push team/clf@2.0.1 --weights "$W/model.bin" --git-sha abcdef1
    expect_rc "push release B unsigned" 0
    curl -s "$MLREG_URL/api/v1/models/team/clf/versions/2.0.0/signatures" |
        jq -c '{signature: .signatures[0].signature, public_key: .signatures[0].public_key}' \
            >"$W/replay.json"
    expect_status "the server refuses A's signature attached to B (400)" 400 POST \
        /api/v1/models/team/clf/versions/2.0.1/signatures -H 'Content-Type: application/json' \
        --data-binary "@$W/replay.json"
    refused "release B after the replay attempt" team/clf@2.0.1 "no signature by a trusted key" \
        --trusted-key "$W/trusted.pub"

    # ---- a blob changed on disk after push -------------------------------------
    run "$MLREG" verify team/clf@2.0.0 --trusted-key "$W/trusted.pub"
    expect_rc "release A verifies before the corruption" 0
    HEX=$(sha256_of "$W/model.bin")
    BLOB=$DATA/blobs/sha256/$(echo "$HEX" | cut -c1-2)/$HEX
    head -c 65536 /dev/urandom >"$BLOB"
    refused "blob changed on disk" team/clf@2.0.0 "model.bin: digest mismatch" \
        --trusted-key "$W/trusted.pub"
    run "$MLREG" verify team/clf@2.0.0 --trusted-key "$W/trusted.pub"
    check "verify still reports the signature as valid" grep -q "valid" "$TMP/out"
    check "verify's table marks the file" grep -q "model.bin.*digest mismatch" "$TMP/out"
    cp "$W/model.bin" "$BLOB"
fi

# ---- the client's own checks, against a fake registry ------------------------
if ! command -v python3 >/dev/null 2>&1; then
    not_ok "python3 is needed for the fake registry"
    finish
fi
F=$TMP/fake
mkdir -p "$F"
EMPTY=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
printf 'weights of the fake release' >"$F/w.bin"
WD="sha256:$(sha256_of "$F/w.bin")"
printf 'other bytes of equal size!!' >"$F/w-swapped.bin"
PUB64=$(sed -n 2p "$W/trusted.pub")
OTHER64=$(sed -n 2p "$W/other.pub")

# manifest MODEL VERSION CREATED: a compact release manifest with w.bin.
manifest() {
    jq -cjn --arg m "$1" --arg v "$2" --arg c "$3" --arg d "$WD" --arg e "$EMPTY" \
        '{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json",digest:$e,size:2},
          layers:[{mediaType:"application/vnd.mlreg.weights.v1",digest:$d,size:27,
                   annotations:{"org.opencontainers.image.title":"w.bin",
                                "org.mlreg.kind":"weights"}}],
          annotations:{"org.mlreg.model":$m,"org.mlreg.version":$v,
                       "org.opencontainers.image.created":$c}}'
}
# minisign_sign KEYBASE FILE COMMENT: FILE.minisig by the stock tool.
minisign_sign() {
    rm -f "$2.minisig"
    minisign -S -s "$1.key" -m "$2" -x "$2.minisig" -t "$3" </dev/null >/dev/null 2>&1 ||
        not_ok "minisign signs $2"
}
comment_for() { # MODEL VERSION MANIFESTFILE
    echo "mlreg release model=$1 version=$2 digest=sha256:$(sha256_of "$3") timestamp=1700000000"
}
# sigs_json DIGEST PUB64 SIGFILE [status counts]: a signatures answer.
sigs_json() {
    jq -cn --arg d "$1" --arg p "$2" --rawfile s "$3" --arg st "${4:-trusted}" \
        --argjson c "${5:-true}" \
        '{model:"fake/m",version:"1.0.0",digest:$d,
          signatures:[{key_id:"X",public_key:$p,signature:$s,attached_at:"2026-01-01T00:00:00Z",
                       attached_by:"ci",trusted_at_attach:true,key_name:"bot",role:"release",
                       status:$st,counts:$c}]}'
}
routes="{}"
# release NAME MANIFESTFILE SIGSFILE [BLOBFILE]: route one fake release 1.0.0.
release() {
    routes=$(echo "$routes" | jq -c --arg n "$1" --arg mf "$2" --arg sf "$3" \
        --arg bf "${4:-$F/w.bin}" --arg d "sha256:$(sha256_of "$2")" --arg wd "$WD" \
        '.["/v2/\($n)/manifests/1.0.0"] = {file:$mf, headers:{"Content-Type":
             "application/vnd.oci.image.manifest.v1+json","Docker-Content-Digest":$d}}
         | .["/api/v1/models/\($n)/versions/1.0.0/signatures"] = {file:$sf,
             headers:{"Content-Type":"application/json"}}
         | .["/v2/\($n)/blobs/\($wd)"] = {file:$bf, headers:{"Content-Type":
             "application/octet-stream"}}')
}
# genuine NAME: a manifest of fake/NAME signed by the trusted key (minisign).
genuine() {
    manifest "fake/$1" 1.0.0 2026-01-01T00:00:00Z >"$F/$1.json"
    minisign_sign "$W/trusted" "$F/$1.json" "$(comment_for "fake/$1" 1.0.0 "$F/$1.json")"
}

genuine good
sigs_json "sha256:$(sha256_of "$F/good.json")" "$PUB64" "$F/good.json.minisig" >"$F/good.sigs"
release fake/good "$F/good.json" "$F/good.sigs"

# Replay: release A's genuine signature served for release B.
genuine a
manifest fake/replay 1.0.0 2026-01-01T00:00:00Z >"$F/replay.json"
sigs_json "sha256:$(sha256_of "$F/replay.json")" "$PUB64" "$F/a.json.minisig" >"$F/replay.sigs"
release fake/replay "$F/replay.json" "$F/replay.sigs"

# A genuine signature over these bytes whose comment names another version.
manifest fake/wrongver 1.0.0 2026-01-01T00:00:00Z >"$F/wrongver.json"
minisign_sign "$W/trusted" "$F/wrongver.json" "$(comment_for fake/wrongver 0.9.0 "$F/wrongver.json")"
sigs_json "sha256:$(sha256_of "$F/wrongver.json")" "$PUB64" "$F/wrongver.json.minisig" \
    >"$F/wrongver.sigs"
release fake/wrongver "$F/wrongver.json" "$F/wrongver.sigs"

# Edited trusted comment (timestamp changed after signing).
genuine edited
sed 's/timestamp=1700000000/timestamp=1700000001/' "$F/edited.json.minisig" >"$F/edited.minisig"
sigs_json "sha256:$(sha256_of "$F/edited.json")" "$PUB64" "$F/edited.minisig" >"$F/edited.sigs"
release fake/edited "$F/edited.json" "$F/edited.sigs"

# Truncated base64 in the signature line.
genuine trunc
awk 'NR == 2 { print substr($0, 1, length($0) - 4); next } { print }' \
    "$F/trunc.json.minisig" >"$F/trunc.minisig"
sigs_json "sha256:$(sha256_of "$F/trunc.json")" "$PUB64" "$F/trunc.minisig" >"$F/trunc.sigs"
release fake/trunc "$F/trunc.json" "$F/trunc.sigs"

# Wrong algorithm bytes ("EX" instead of "ED").
genuine alg
python3 - "$F/alg.json.minisig" "$F/alg.minisig" <<'EOF'
import base64, sys
lines = open(sys.argv[1]).read().split("\n")
raw = bytearray(base64.b64decode(lines[1]))
raw[1] = ord("X")
lines[1] = base64.b64encode(bytes(raw)).decode()
open(sys.argv[2], "w").write("\n".join(lines))
EOF
sigs_json "sha256:$(sha256_of "$F/alg.json")" "$PUB64" "$F/alg.minisig" >"$F/alg.sigs"
release fake/alg "$F/alg.json" "$F/alg.sigs"

# The manifest changed by one byte after signing (the registry serves the
# changed bytes with their own, consistent digest).
genuine onebyte
sed 's/2026-01-01T00:00:00Z/2026-01-01T00:00:01Z/' "$F/onebyte.json" | tr -d '\n' \
    >"$F/onebyte-changed.json"
check "the changed manifest differs in exactly one byte" \
    test "$(cmp -l "$F/onebyte.json" "$F/onebyte-changed.json" | wc -l)" -eq 1
sigs_json "sha256:$(sha256_of "$F/onebyte-changed.json")" "$PUB64" "$F/onebyte.json.minisig" \
    >"$F/onebyte.sigs"
release fake/onebyte "$F/onebyte-changed.json" "$F/onebyte.sigs"
routes=$(echo "$routes" | jq -c --arg p "/v2/fake/onebyte/manifests/sha256:$(sha256_of "$F/onebyte.json")" \
    --arg f "$F/onebyte-changed.json" \
    '.[$p] = {file:$f, headers:{"Content-Type":"application/vnd.oci.image.manifest.v1+json"}}')

# A genuinely signed release whose blob the registry swaps.
genuine swapped
sigs_json "sha256:$(sha256_of "$F/swapped.json")" "$PUB64" "$F/swapped.json.minisig" \
    >"$F/swapped.sigs"
release fake/swapped "$F/swapped.json" "$F/swapped.sigs" "$F/w-swapped.bin"

# No signatures at all.
manifest fake/unsigned 1.0.0 2026-01-01T00:00:00Z >"$F/unsigned.json"
jq -cn --arg d "sha256:$(sha256_of "$F/unsigned.json")" \
    '{model:"fake/unsigned",version:"1.0.0",digest:$d,signatures:[]}' >"$F/unsigned.sigs"
release fake/unsigned "$F/unsigned.json" "$F/unsigned.sigs"

# Signed only by a key the user does not trust.
manifest fake/untrusted 1.0.0 2026-01-01T00:00:00Z >"$F/untrusted.json"
minisign_sign "$W/other" "$F/untrusted.json" \
    "$(comment_for fake/untrusted 1.0.0 "$F/untrusted.json")"
sigs_json "sha256:$(sha256_of "$F/untrusted.json")" "$OTHER64" "$F/untrusted.json.minisig" \
    >"$F/untrusted.sigs"
release fake/untrusted "$F/untrusted.json" "$F/untrusted.sigs"

# The registry itself reports the key compromised: it may withhold trust.
genuine regrevoked
sigs_json "sha256:$(sha256_of "$F/regrevoked.json")" "$PUB64" "$F/regrevoked.json.minisig" \
    compromised false >"$F/regrevoked.sigs"
release fake/regrevoked "$F/regrevoked.json" "$F/regrevoked.sigs"

# A signature list that belongs to another digest.
genuine otherdigest
sigs_json "sha256:$(printf '%064d' 5)" "$PUB64" "$F/otherdigest.json.minisig" \
    >"$F/otherdigest.sigs"
release fake/otherdigest "$F/otherdigest.json" "$F/otherdigest.sigs"

echo "$routes" >"$F/routes.json"
python3 "$MLREG_ROOT/tests/integration/fake_registry.py" "$F/routes.json" "$F/port" 2>"$F/log" &
FAKE_PID=$!
i=0
while [ ! -s "$F/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
FAKE="http://127.0.0.1:$(cat "$F/port")"
T="--trusted-key $W/trusted.pub --registry $FAKE"

# shellcheck disable=SC2086
{
    run "$MLREG" verify fake/good@1.0.0 $T
    expect_rc "fake registry: a genuine minisign signature verifies (the fake works)" 0
    run "$MLREG" pull fake/good@1.0.0 -o "$F/good-out" $T
    expect_rc "fake registry: and pulls" 0
    check "fake registry: the file arrives" cmp "$F/w.bin" "$F/good-out/w.bin"

    refused "fake: release A's signature replayed on B" fake/replay@1.0.0 \
        "does not match the manifest" $T
    refused "fake: a comment naming another version" fake/wrongver@1.0.0 \
        "trusted comment names version 0.9.0, not 1.0.0" $T
    refused "fake: an edited trusted comment" fake/edited@1.0.0 "trusted comment was altered" $T
    refused "fake: truncated base64" fake/trunc@1.0.0 "malformed signature" $T
    refused "fake: wrong algorithm bytes" fake/alg@1.0.0 "unsupported algorithm" $T
    refused "fake: a manifest changed by one byte" fake/onebyte@1.0.0 \
        "does not match the manifest" $T
    refused "fake: a swapped blob" fake/swapped@1.0.0 "w.bin: digest mismatch" $T
    refused "fake: no signatures" fake/unsigned@1.0.0 "no signature by a trusted key" $T
    refused "fake: only an untrusted key" fake/untrusted@1.0.0 "no signature by a trusted key" $T
    refused "fake: the registry reports the key compromised" fake/regrevoked@1.0.0 \
        "compromised" $T
    refused "fake: signatures of another digest" fake/otherdigest@1.0.0 "signatures of" $T

    # A manifest changed by one byte, pinned by the digest that was signed.
    run "$MLREG" verify "fake/onebyte@sha256:$(sha256_of "$F/onebyte.json")" $T
    expect_rc "fake: pinned digest of the signed manifest, changed bytes served: exit 1" 1
    says "fake: ... naming the pinned digest" "not the pinned"

    # Keyring files: malformed ones are usage errors (exit 2), before any request.
    n=0
    for ring in '{"keys":[{"name":"x","public_key":"AAAA"}]}' 'not json' '{"nokeys":[]}' \
        '{"keys":["x"]}' '{"keys":[{"name":7,"public_key":"'"$PUB64"'"}]}' \
        '{"keys":[{"public_key":"'"$PUB64"'","revocation":"lost","revoked_at":"2026-01-01T00:00:00Z"}]}' \
        '{"keys":[{"public_key":"'"$PUB64"'","revoked_at":"2026-01-01T00:00:00Z"}]}' \
        '{"keys":[{"public_key":"'"$PUB64"'","key_id":"0000000000000000"}]}' '{"keys":[]}'; do
        n=$((n + 1))
        printf '%s' "$ring" >"$F/bad-ring-$n.json"
        run "$MLREG" verify fake/good@1.0.0 --keyring "$F/bad-ring-$n.json" --registry "$FAKE"
        expect_rc "malformed keyring file $n is a usage error" 2
        says "... naming the keyring file" "bad-ring-$n.json"
    done
    run "$MLREG" verify fake/good@1.0.0 --registry "$FAKE"
    expect_rc "verify without a trusted key is a usage error" 2
    run "$MLREG" pull fake/good@1.0.0 -o "$F/x" --trusted-key "$F/missing.pub" --registry "$FAKE"
    expect_rc "pull with a missing --trusted-key file is a usage error" 2
    check "... and creates no DIR" test ! -e "$F/x"
    jq -cn --arg p "$PUB64" '{keys:[{name:"hand",public_key:$p}]}' >"$F/hand-ring.json"
    run "$MLREG" verify fake/good@1.0.0 --keyring "$F/hand-ring.json" --registry "$FAKE"
    expect_rc "a hand-written keyring file works" 0
    jq -cn --arg p "$PUB64" \
        '{keys:[{name:"hand",public_key:$p,revocation:"compromised",
                 revoked_at:"2026-01-02T00:00:00Z"}]}' >"$F/comp-ring.json"
    run "$MLREG" verify fake/good@1.0.0 --keyring "$F/comp-ring.json" --registry "$FAKE"
    expect_rc "a keyring file revoking the key as compromised refuses" 1
    says "... naming the revocation" "compromised"
    jq -cn --arg p "$PUB64" \
        '{keys:[{name:"hand",public_key:$p,revocation:"retired",
                 revoked_at:"2026-01-02T00:00:00Z"}]}' >"$F/ret-ring.json"
    run "$MLREG" verify fake/good@1.0.0 --keyring "$F/ret-ring.json" --registry "$FAKE"
    expect_rc "a key retired after the attach time still counts" 0
    jq -cn --arg p "$PUB64" \
        '{keys:[{name:"hand",public_key:$p,revocation:"retired",
                 revoked_at:"2025-12-31T00:00:00Z"}]}' >"$F/ret-early-ring.json"
    run "$MLREG" verify fake/good@1.0.0 --keyring "$F/ret-early-ring.json" --registry "$FAKE"
    expect_rc "a key retired before the attach time does not" 1
    says "... naming the retirement" "after the retirement"
}

kill "$FAKE_PID" 2>/dev/null
wait "$FAKE_PID" 2>/dev/null
finish
