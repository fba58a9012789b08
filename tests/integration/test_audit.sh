#!/bin/sh
# test_audit.sh: the tamper-evident audit log end to end (docs/audit-api.md).
# A history of pushes, a signature, promotions (one refused by a gate), an
# approval, a rollback, an image binding, a key trust and a revoke; then
#   - `mlreg audit log` shows it, --model and --json work;
#   - `mlreg audit verify` passes with the log key and with the server's
#     own (saying so), remembers a checkpoint, and after more promotions
#     passes against the remembered one (consistency) and updates it;
#   - `mlreg bundle` of the promoted, signed release checks out in a
#     directory with no registry running: `sha256sum -c`, the stock
#     `minisign -V -H`, `mlreg audit verify --bundle`; a flipped byte in a
#     file or in an entry makes the bundle fail;
#   - tampering done directly on the LMDB file of a stopped server's data
#     dir (tests/tools/audit_tamper.c: edit, delete, reorder, truncate and
#     re-sign with another key) makes `audit verify` fail naming the right
#     entry; the untampered copy still verifies.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
unset MLREG_KEY_PASSWORD

RC=0
# run CMD...: stdout in $TMP/out, stderr in $TMP/err, status in $RC.
expect_rc() {
    if [ "$RC" -eq "$2" ]; then ok "$1"; else
        not_ok "$1 (want exit $2, got $RC: $(tail -n 3 "$TMP/err" | tr '\n' ' ') $(tail -n 3 "$TMP/out" | tr '\n' ' '))"; fi
}
out_has() {
    if grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stdout:)"; head -n 40 "$TMP/out" | sed 's/^/  | /'; fi
}
out_lacks() {
    if ! grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (a line matches '$2':)"; grep -E -- "$2" "$TMP/out" | head -n 5 | sed 's/^/  | /'; fi
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; head -n 20 "$TMP/err" | sed 's/^/  | /'; fi
}
# said NAME ERE: stdout or stderr of the last run has a line matching ERE.
said() {
    if cat "$TMP/out" "$TMP/err" | grep -Eq -- "$2"; then ok "$1"; else
        not_ok "$1 (nothing matches '$2' in:)"; cat "$TMP/out" "$TMP/err" | head -n 20 | sed 's/^/  | /'; fi
}
jqt() { jq -e "$@" >/dev/null; }

command -v minisign >/dev/null 2>&1 || { not_ok "minisign is installed (make deps)"; finish; }

# ---- the attacker's tool (make test builds it next to the mlreg binary) --------
TAMPER=$(dirname "$MLREG")/tests/tools/audit_tamper
if [ ! -x "$TAMPER" ]; then
    TAMPER=$TMP/audit_tamper
    cc -std=c11 -D_GNU_SOURCE -o "$TAMPER" "$MLREG_ROOT/tests/tools/audit_tamper.c" -llmdb ||
        { not_ok "audit_tamper builds"; finish; }
fi

# ---- keys and config ----------------------------------------------------------------
"$MLREG" key generate --out "$W/bot" --no-password >/dev/null 2>&1 || not_ok "key generate bot"
"$MLREG" key generate --out "$W/ops" --no-password >/dev/null 2>&1 || not_ok "key generate ops"
keyid_of() { # PUBFILE: the key id as minisign prints it
    sed -n 2p "$1" | base64 -d | od -An -tx1 -j2 -N8 |
        awk '{ for (i = NF; i >= 1; i--) printf "%s", toupper($i) } END { print "" }'
}
OPS_ID=$(keyid_of "$W/ops.pub")
cat >"$W/config.json" <<EOF
{
  "stages": ["dev", "staging", "production"],
  "gates": {
    "staging": [ { "metric": "accuracy", "min": 0.85 } ],
    "production": [ { "require": "signed", "min": 1 },
                    { "require": "previous_stage" } ]
  },
  "trusted_keys": [ { "name": "release-bot", "file": "$W/bot.pub", "role": "release" } ]
}
EOF
start_server --config "$W/config.json" || finish
if [ "$(http_status GET /api/v1/audit)" != 200 ]; then
    not_ok "the registry serves GET /api/v1/audit ($(head -c 200 "$TMP/body"))"
    finish
fi
check "the server made its log key at first start" \
    sh -c "test -s '$DATA/audit/log.key' && test -s '$DATA/audit/log.pub'"
LOGPUB=$W/log.pub
cp "$DATA/audit/log.pub" "$LOGPUB"
check "GET /api/v1/audit/key serves DATA/audit/log.pub" \
    sh -c "curl -sf '$MLREG_URL/api/v1/audit/key' | cmp -s - '$LOGPUB'"

# ---- the history ----------------------------------------------------------------------
report() { printf '{"dataset":"val-v1","metrics":{"accuracy":%s}}\n' "$2" >"$W/$1.json"; }
report e10 0.90
report e11 0.80
report e20 0.92
head -c 3000 /dev/urandom >"$W/weights.bin"
GIT=abc1234def5678abc1234def5678abc1234def56
push() { # MODEL@VERSION REPORT [push args...]; the digest in $DIGEST
    ref=$1; r=$2; shift 2
    (cd "$TMP" && "$MLREG" push "$ref" --weights "$W/weights.bin" --eval-report "$W/$r.json" \
        --git-sha $GIT "$@") >"$TMP/out" 2>"$TMP/err"
    RC=$?
    DIGEST=$(tail -n 1 "$TMP/out")
}
push m/clf@1.0 e10 --sign-key "$W/bot.key"
expect_rc "push m/clf@1.0 (signed)" 0
D10=$DIGEST
push m/clf@1.1 e11
expect_rc "push m/clf@1.1" 0
D11=$DIGEST
push m/clf@2.0 e20 --sign-key "$W/bot.key"
expect_rc "push m/clf@2.0 (signed)" 0
D20=$DIGEST
push other/x@0.1 e10
expect_rc "push other/x@0.1" 0

run "$MLREG" promote m/clf@1.0 --to dev
expect_rc "promote 1.0 to dev" 0
run "$MLREG" promote m/clf@1.0 --to staging
expect_rc "promote 1.0 to staging" 0
run "$MLREG" promote m/clf@1.1 --to staging
expect_rc "promote 1.1 (accuracy 0.80) to staging is refused" 1
run "$MLREG" promote m/clf@1.0 --to production --reason "first release"
expect_rc "promote 1.0 to production" 0
# open mode: every change is by the same actor, who pushed 2.0, and the
# pusher's own approval is refused (it would never count) and recorded nowhere
run "$MLREG" approve m/clf@2.0 --for production --comment "looks good"
expect_rc "approving a release you pushed is refused: exit 1" 1
err_has "... saying why" 'you pushed m/clf@2.0; an approval must come from someone else'
run "$MLREG" promote m/clf@2.0 --to staging
expect_rc "promote 2.0 to staging" 0
run "$MLREG" rollback m/clf --stage staging --reason "incident 42"
expect_rc "rollback staging to 1.0" 0
IMGD=sha256:$(printf 'image' | sha256sum | cut -d' ' -f1)
run "$MLREG" image-tag m/clf@1.0 --repo localhost:5000/team/clf --record --digest "$IMGD"
expect_rc "image-tag --record binds an image to 1.0" 0
run "$MLREG" key trust "$W/ops.pub" --name ops --role release
expect_rc "key trust ops" 0
run "$MLREG" sign m/clf@2.0 --key "$W/ops.key"
expect_rc "sign 2.0 with the ops key too" 0
run "$MLREG" key revoke "$OPS_ID" --kind retired --reason "rotated"
expect_rc "key revoke ops" 0
run "$MLREG" promote m/clf@1.1 --to staging --dry-run
expect_rc "a dry run (refused) changes nothing" 1

# ---- audit log ----------------------------------------------------------------------------
curl -sf "$MLREG_URL/api/v1/audit?limit=1000" >"$W/page.json" || not_ok "GET /api/v1/audit"
N1=$(jq '.size' "$W/page.json")
jq -r '.entries[]' "$W/page.json" >"$W/entries.jsonl"
check "the log holds entries 0 .. size-1 in order" \
    jqt '.size == (.entries | length) and .since == 0 and .next == null and
         ([.entries[] | fromjson | .seq] == [range(0; .size)])' "$W/page.json"
check "each entry is canonical, chained and names its action" python3 - "$W/entries.jsonl" <<'EOF'
import hashlib, json, sys
prev = None
for i, line in enumerate(open(sys.argv[1], encoding="utf-8")):
    b = line.rstrip("\n").encode()
    e = json.loads(b)
    assert json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == b, i
    assert e["seq"] == i and e["prev"] == prev, (i, e["prev"], prev)
    assert e["result"] in ("ok", "refused") and e["actor"] and e["action"] and "subject" in e, i
    prev = "sha256:" + hashlib.sha256(b).hexdigest()
EOF
# acts ACTION RESULT: how many entries have that action and result
acts() { jq -r '.entries[] | fromjson | select(.action == $a and .result == $r) | .seq' \
    --arg a "$1" --arg r "$2" "$W/page.json" | wc -l; }
check "one push entry per release (4)" test "$(acts push ok)" = 4
check "three signature.attach entries" test "$(acts signature.attach ok)" = 3
check "four promotions passed (dev, staging, production, staging)" test "$(acts promote ok)" = 4
check "one refused promotion (the dry run appends nothing)" test "$(acts promote refused)" = 1
check "one rollback, no approval (the refused one records nothing), one image binding" \
    test "$(acts rollback ok)$(acts approve ok)$(acts approve refused)$(acts image.bind ok)" = 1001
check "key.trust entries for the config key and the API key" test "$(acts key.trust ok)" -ge 2
check "one key.revoke entry" test "$(acts key.revoke ok)" = 1
check "the refused promotion names 1.1, staging and a reason" \
    jqt '[.entries[] | fromjson | select(.action == "promote" and .result == "refused")][0] |
         .subject.version == "1.1" and .subject.stage == "staging" and (.reason | length) > 0
         and (.gates | length) == 1' "$W/page.json"
check "the rollback has its reason and the previous holder" \
    jqt --arg d "$D10" '[.entries[] | fromjson | select(.action == "rollback")][0] |
         .subject.digest == $d and .reason == "incident 42" and .details.previous.version == "2.0"' \
    "$W/page.json"
check "the revocation says retired" \
    jqt --arg k "$OPS_ID" '[.entries[] | fromjson | select(.action == "key.revoke")][0] |
         .subject.key_id == $k and .details.kind == "retired"' "$W/page.json"

run "$MLREG" audit log
expect_rc "mlreg audit log exits 0" 0
out_has "audit log shows the pushes" ' push '
out_has "audit log shows a refused promotion" 'promote.*refused'
out_has "audit log shows the rollback with its reason" 'rollback.*incident 42'
out_has "audit log shows the image binding" 'image\.bind'
out_has "audit log shows the key revocation" 'key\.revoke'
NLINK=$(acts blob.link ok)
check "the pushes recorded blob.link entries (one per uploaded file)" test "$NLINK" -gt 4
check "audit log starts with a header line" \
    sh -c "head -n 1 '$TMP/out' | grep -Eq '^SEQ +TIME +ACTOR +ACTION +SUBJECT +RESULT +REASON\$'"
check "audit log hides the blob.link rows by default" \
    sh -c "! sed '\$d' '$TMP/out' | grep -q ' blob\.link '"
check "... and its last line says how many and how to see them" \
    test "$(tail -n 1 "$TMP/out")" = "$NLINK blob.link rows hidden; --all shows them"
check "... one line per other entry between them" \
    test "$(wc -l <"$TMP/out")" -eq $((N1 - NLINK + 2))
run "$MLREG" audit log --all
expect_rc "audit log --all exits 0" 0
check "audit log --all prints the header and one line per entry, blob.link included" \
    sh -c "[ \"\$(wc -l <'$TMP/out')\" -eq $((N1 + 1)) ] &&
        [ \"\$(grep -c ' blob\.link ' '$TMP/out')\" -eq $NLINK ]"
out_lacks "... and hides nothing" 'hidden'
check "the rows keep their seq: the last row is entry size-1" \
    sh -c "tail -n 1 '$TMP/out' | grep -q '^$((N1 - 1)) '"
NLINK_M=$(jq -r '.entries[] | fromjson | select(.action == "blob.link" and .subject.model == "m/clf")
    | .seq' "$W/page.json" | wc -l)
run "$MLREG" audit log --model m/clf
expect_rc "audit log --model m/clf exits 0" 0
check "--model counts only that model's hidden blob.link rows" \
    test "$(tail -n 1 "$TMP/out")" = "$NLINK_M blob.link rows hidden; --all shows them"
run "$MLREG" audit log --all --model m/clf
check "--all --model m/clf shows those rows" test "$(grep -c ' blob\.link ' "$TMP/out")" -eq "$NLINK_M"
run "$MLREG" audit log --since 2100-01-01T00:00:00Z
expect_rc "audit log with nothing to show exits 0" 0
check "... and prints the header alone (nothing hidden)" test "$(wc -l <"$TMP/out")" -eq 1
run "$MLREG" audit log --all=yes
expect_rc "audit log --all=yes is a usage error (exit 2)" 2
run "$MLREG" audit log --model '<script>' --all
expect_rc "audit log --model with a hostile name is a usage error (exit 2)" 2
run "$MLREG" audit log --model other/x
expect_rc "audit log --model exits 0" 0
out_has "--model other/x shows its push" 'push.*other/x'
out_lacks "--model other/x leaves m/clf out" 'm/clf'
run "$MLREG" audit log --model m/clf --json
expect_rc "audit log --model --json exits 0" 0
check "--json gives the entries as JSON (an array or one object a line), m/clf only" \
    python3 - "$TMP/out" <<'EOF'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
try:
    doc = json.loads(text)
except ValueError:
    doc = [json.loads(l) for l in text.splitlines() if l.strip()]
if isinstance(doc, dict):
    doc = doc.get("entries", [])
doc = [json.loads(e) if isinstance(e, str) else e for e in doc]
acts = [e["action"] for e in doc]
assert doc and all(e["subject"].get("model") == "m/clf" for e in doc), doc[:3]
assert "rollback" in acts and "promote" in acts and "push" in acts, acts
EOF
run "$MLREG" audit log --json
expect_rc "audit log --json exits 0" 0
check "audit log --json has every entry, the exact ones the API serves (blob.link included)" \
    python3 - "$TMP/out" "$W/entries.jsonl" <<'EOF'
import json, sys
got = json.load(open(sys.argv[1], encoding="utf-8"))
want = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert got == want, (len(got), len(want))
assert any(e["action"] == "blob.link" for e in got)
EOF
cp "$TMP/out" "$W/log.json"
run "$MLREG" audit log --json --all
check "audit log --json --all is the same array (--json never hides)" cmp "$TMP/out" "$W/log.json"
RB_TIME=$(jq -r '[.entries[] | fromjson | select(.action == "rollback")][0].time' "$W/page.json")
RB_SEQ=$(jq -r '[.entries[] | fromjson | select(.action == "rollback")][0].seq' "$W/page.json")
run "$MLREG" audit log --since "$RB_TIME" --json
expect_rc "audit log --since the rollback's time exits 0" 0
check "--since keeps the entries from the rollback on" \
    jqt --argjson s "$RB_SEQ" --argjson n "$N1" '.[0].seq == $s and length == $n - $s' "$TMP/out"
run "$MLREG" audit log --since 2100-01-01T00:00:00Z --json
check "--since a future time gives no entries" jqt 'length == 0' "$TMP/out"

# ---- audit verify -------------------------------------------------------------------------
R1=$W/R1
run "$MLREG" audit verify --log-key "$LOGPUB" --remember "$R1"
expect_rc "audit verify --log-key --remember passes" 0
check "the remembered checkpoint is a note of the whole log" \
    sh -c "head -n 1 '$R1' | grep -q '^mlreg-audit/' && test \"\$(sed -n 2p '$R1')\" = '$N1'"
cp "$R1" "$W/R1.first"
run "$MLREG" audit verify
expect_rc "audit verify without --log-key passes" 0
err_has "... and says it trusts the server's key" '[Tt]rust.*server'

run "$MLREG" promote m/clf@2.0 --to staging --reason "fixed"
expect_rc "more: promote 2.0 to staging again" 0
run "$MLREG" promote m/clf@2.0 --to production
expect_rc "more: promote 2.0 to production" 0
run "$MLREG" audit verify --remember "$R1"
expect_rc "audit verify --remember R1 passes after more promotions (consistency)" 0
N2=$(curl -sf "$MLREG_URL/api/v1/audit/checkpoint" | sed -n 2p)
check "R1 now holds the newer checkpoint ($N1 -> $N2 entries)" \
    sh -c "test '$N2' -gt '$N1' && test \"\$(sed -n 2p '$R1')\" = '$N2'"
cp "$W/R1.first" "$W/R1.again"
run "$MLREG" audit verify --log-key "$LOGPUB" --remember "$W/R1.again"
expect_rc "the first checkpoint is still consistent with the grown log" 0
expect_status "a consistency proof between the two checkpoints" 200 \
    GET "/api/v1/audit/proof/consistency?from=$N1&to=$N2"
check "... from_root is the first checkpoint's root" \
    jqt --arg r "$(sed -n 3p "$W/R1.first")" '.from_root == $r and .to == '"$N2" "$TMP/body"

# A registry that refuses consistency proofs (HTTP 500) cannot decide the
# outcome: once every entry is checked, the remembered checkpoint is
# compared with the verified entries themselves.
python3 - "$MLREG_URL" "$TMP/proxy.port" <<'EOF' &
import http.server, sys, urllib.error, urllib.request
up = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/api/v1/audit/proof/consistency"):
            code, body = 500, b'{"errors":[{"code":"INTERNAL","message":"no"}]}'
        else:
            try:
                r = urllib.request.urlopen(up + self.path)
                code, body = r.status, r.read()
            except urllib.error.HTTPError as e:
                code, body = e.code, e.read()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(srv.server_address[1]))
srv.serve_forever()
EOF
PROXY_PID=$!
i=0
while [ ! -s "$TMP/proxy.port" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.05; done
cp "$W/R1.first" "$W/R1.proxy"
run "$MLREG" audit verify --log-key "$LOGPUB" --remember "$W/R1.proxy" \
    --registry "http://127.0.0.1:$(cat "$TMP/proxy.port")"
expect_rc "--remember needs no consistency proof from the registry (it refuses them)" 0
kill "$PROXY_PID" 2>/dev/null
wait "$PROXY_PID" 2>/dev/null

# ---- bundle -----------------------------------------------------------------------------------
B=$W/bundle
run "$MLREG" bundle m/clf@2.0 -o "$B"
expect_rc "mlreg bundle m/clf@2.0 -o B" 0
run "$MLREG" bundle m/clf@2.0 -o "$B"
expect_rc "bundle into a non-empty directory is a usage error" 2
run "$MLREG" bundle m/clf:production -o "$W/bundle-stage"
expect_rc "bundle MODEL:STAGE" 0
check "bundle MODEL:STAGE wrote the same manifest" cmp "$B/manifest.json" "$W/bundle-stage/manifest.json"
stop_server

MLREG_URL=http://127.0.0.1:1
export MLREG_URL
check "the bundle's manifest.json hashes to the release digest" \
    test "sha256:$(sha256_of "$B/manifest.json")" = "$D20"
run sh -c "cd '$B' && sha256sum -c SHA256SUMS"
expect_rc "sha256sum -c SHA256SUMS succeeds in the bundle" 0
check "SHA256SUMS covers manifest.json and the weights" \
    sh -c "grep -q ' manifest.json\$' '$B/SHA256SUMS' && grep -q ' files/weights.bin\$' '$B/SHA256SUMS'"
run sh -c "cd '$B' && minisign -V -H -p '$W/bot.pub' -m manifest.json"
expect_rc "the stock minisign -V -H verifies manifest.json.minisig" 0
check "the bundle holds promotion attestations" sh -c "ls '$B'/attestations/*.dsse.json >/dev/null"
check "the bundle holds audit entries and proofs" \
    sh -c "ls '$B'/audit/entries/*.json >/dev/null && ls '$B'/audit/entries/*.proof.json >/dev/null"
check "the bundle holds both signatures of 2.0" \
    sh -c "test \$(ls '$B'/signatures/*.minisig | wc -l) = 2 && test -s '$B/signatures/$OPS_ID.minisig'"
check "the bundle's log key is the server's" cmp "$B/audit/log.pub" "$LOGPUB"
check "an attestation is a DSSE promotion statement signed by the log" python3 - "$B" <<'EOF'
import base64, glob, json, sys
found = set()
for f in glob.glob(sys.argv[1] + "/attestations/*.dsse.json"):
    env = json.load(open(f))
    assert env["payloadType"] == "application/vnd.in-toto+json" and env["signatures"], f
    st = json.loads(base64.b64decode(env["payload"]))
    assert st["predicateType"] == "urn:mlreg:promotion:v1", st
    p = st["predicate"]
    assert p["model"] == "m/clf" and p["version"] == "2.0", p
    found.add((p["action"], p["stage"]))
assert ("promote", "staging") in found and ("promote", "production") in found, found
EOF
run "$MLREG" audit verify --bundle "$B"
expect_rc "audit verify --bundle succeeds with no registry running" 0
run "$MLREG" audit verify --bundle "$B" --log-key "$LOGPUB"
expect_rc "audit verify --bundle --log-key succeeds" 0
flip() { # FILE OFFSET: xor one byte
    python3 -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read()); b[o] ^= 1; open(p, "wb").write(b)' "$1" "$2"
}
cp -a "$B" "$W/bad-file"
flip "$W/bad-file/files/weights.bin" 100
run "$MLREG" audit verify --bundle "$W/bad-file"
expect_rc "a flipped byte in files/weights.bin fails the bundle" 1
said "... naming the file" 'weights\.bin'
cp -a "$B" "$W/bad-entry"
EF=$(ls "$W/bad-entry"/audit/entries/*.json | grep -v '\.proof\.json$' | head -n 1)
sed -i 's/"actor":"local"/"actor":"lOcal"/' "$EF"
check "the entry file was edited" sh -c "! cmp -s '$EF' '$B/audit/entries/$(basename "$EF")'"
run "$MLREG" audit verify --bundle "$W/bad-entry"
expect_rc "a flipped byte in an audit entry fails the bundle" 1
said "... naming the entry" "entry $(basename "$EF" .json)([^0-9]|\$)|entries/$(basename "$EF")"
cp -a "$B" "$W/bad-att"
AF=$(ls "$W/bad-att"/attestations/*.dsse.json | head -n 1)
python3 - "$AF" <<'EOF'
import base64, json, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
st["predicate"]["stage"] = "dev"
env["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
json.dump(env, open(sys.argv[1], "w"))
EOF
run "$MLREG" audit verify --bundle "$W/bad-att"
expect_rc "an attestation with an edited payload fails the bundle" 1
# SHA256SUMS is no proof by itself: whoever swaps a file rewrites it too.
cp -a "$B" "$W/bad-swap"
head -c 3000 /dev/urandom >"$W/bad-swap/files/weights.bin"
(cd "$W/bad-swap" && sed -i "s/^[0-9a-f]*  files\/weights.bin\$/$(sha256_of files/weights.bin)  files\/weights.bin/" SHA256SUMS)
run sh -c "cd '$W/bad-swap' && sha256sum -c SHA256SUMS"
expect_rc "swapped weights with SHA256SUMS rewritten: sha256sum -c is fooled" 0
run "$MLREG" audit verify --bundle "$W/bad-swap"
expect_rc "... but audit verify --bundle fails (the file is not the manifest's)" 1
said "... naming the file and manifest.json" 'files/weights\.bin does not match manifest\.json'
cp -a "$B" "$W/bad-link"
cp "$B/files/weights.bin" "$W/weights.outside"
ln -sf "$W/weights.outside" "$W/bad-link/files/weights.bin"
run "$MLREG" audit verify --bundle "$W/bad-link"
expect_rc "a file of the bundle that is a symlink out of it fails the bundle" 1
said "... naming it" 'files/weights\.bin: a symbolic link'

# ---- tampering with the LMDB file -------------------------------------------------------
# The data dir of the stopped server is copied for every kind of tampering;
# a server starts on the copy and `audit verify` with the original log key
# must name the first bad entry.
ORIG=$DATA
check "audit_tamper reads the size the server wrote" test "$("$TAMPER" "$ORIG/meta" size)" = "$N2"
REFUSED=$(jq -r '.entries[] | fromjson | select(.action == "promote" and .result == "refused") | .seq' \
    "$W/page.json" | head -n 1)
LAST=$((N2 - 1))

on_copy() { # KIND: a fresh copy of the original data dir in $W/t-KIND
    rm -rf "$W/t-$1"
    cp -a "$ORIG" "$W/t-$1"
}
# verify_copy KIND [verify args...]: starts a server on $W/t-KIND (already
# tampered), runs `mlreg audit verify ARGS` (output in $TMP/out, $TMP/err,
# status in $RC) and stops the server.
verify_copy() {
    kind=$1; shift
    DATA=$W/t-$kind
    RC=99
    start_server --config "$W/config.json" || return 1
    run "$MLREG" audit verify "$@"
    cat "$TMP/out" "$TMP/err" | sed 's/^/  # /'
    stop_server
}

on_copy control
verify_copy control --log-key "$LOGPUB"
expect_rc "control: the untampered copy verifies" 0

on_copy edit
"$TAMPER" "$W/t-edit/meta" edit "$REFUSED" '"result":"refused"' '"result":"ok"' ||
    not_ok "audit_tamper edit"
verify_copy edit --log-key "$LOGPUB"
expect_rc "edit: refused -> ok in entry $REFUSED fails verify" 1
said "edit: the message names audit entry $REFUSED" "audit entry $REFUSED([^0-9]|\$)"

on_copy edit-last
"$TAMPER" "$W/t-edit-last/meta" edit "$LAST" '"time":"20' '"time":"19' ||
    not_ok "audit_tamper edit last"
verify_copy edit-last --log-key "$LOGPUB"
expect_rc "edit: the time of the last entry ($LAST) fails verify" 1
said "edit last: the message names audit entry $LAST" "audit entry $LAST([^0-9]|\$)"

K=$((N2 / 2))
on_copy delete
"$TAMPER" "$W/t-delete/meta" delete "$K" || not_ok "audit_tamper delete"
verify_copy delete --log-key "$LOGPUB"
expect_rc "delete: removing entry $K fails verify" 1
said "delete: the message names audit entry $K" "audit entry $K([^0-9]|\$)"

SA=3
SB=$((N2 - 3))
on_copy swap
"$TAMPER" "$W/t-swap/meta" swap "$SA" "$SB" || not_ok "audit_tamper swap"
verify_copy swap --log-key "$LOGPUB"
expect_rc "swap: exchanging entries $SA and $SB fails verify" 1
said "swap: the message names audit entry $SA" "audit entry $SA([^0-9]|\$)"

# A registry that hides an entry about a release from its bundle by
# serving it with another subject: the bundle checks the whole log first.
on_copy hide
"$TAMPER" "$W/t-hide/meta" edit "$REFUSED" "\"digest\":\"$D11\"" "\"digest\":\"$D10\"" ||
    not_ok "audit_tamper edit (hide)"
DATA=$W/t-hide
if start_server --config "$W/config.json"; then
    run "$MLREG" bundle m/clf@1.1 -o "$W/bundle-hide"
    cat "$TMP/out" "$TMP/err" | sed 's/^/  # /'
    expect_rc "hide: bundle of 1.1 from a log whose entry $REFUSED was re-aimed fails" 1
    said "hide: the message names audit entry $REFUSED" "audit entry $REFUSED([^0-9]|\$)"
    check "hide: no bundle directory and no temp directory are left" \
        sh -c "! ls -d '$W'/bundle-hide* 2>/dev/null | grep -q ."
    stop_server
fi

# Truncate below the first remembered checkpoint, keeping the key: the
# server signs a smaller log with the same key.
T=$((N1 - 3))
on_copy truncate
"$TAMPER" "$W/t-truncate/meta" truncate "$T" 2>/dev/null || not_ok "audit_tamper truncate"
check "audit_tamper truncate sets the size" test "$("$TAMPER" "$W/t-truncate/meta" size)" = "$T"
cp "$W/R1.first" "$W/R1.trunc"
verify_copy truncate --log-key "$LOGPUB" --remember "$W/R1.trunc"
expect_rc "truncate to $T (same key): verify --remember fails" 1
said "truncate: the log shrank from $N1 to $T, entry $T is gone" "shrank from $N1 to $T entries: entry $T is gone"
check "a failed verify leaves the remembered checkpoint as it was" cmp "$W/R1.first" "$W/R1.trunc"

# Truncate and re-sign with another key: the server makes a new key at start.
on_copy resign
"$TAMPER" "$W/t-resign/meta" truncate "$T" 2>/dev/null || not_ok "audit_tamper truncate (resign)"
rm -f "$W/t-resign/audit/log.key" "$W/t-resign/audit/log.pub"
DATA=$W/t-resign
if start_server --config "$W/config.json"; then
    check "the server made a new log key" sh -c "! cmp -s '$W/t-resign/audit/log.pub' '$LOGPUB'"
    run "$MLREG" audit verify --log-key "$LOGPUB"
    cat "$TMP/out" "$TMP/err" | sed 's/^/  # /'
    expect_rc "re-signed: verify with the original log key fails" 1
    said "... on the checkpoint signature" 'checkpoint.*(not signed|signature)'
    cp "$W/R1.first" "$W/R1.resign"
    run "$MLREG" audit verify --remember "$W/R1.resign"
    expect_rc "re-signed: verify --remember R1 with the server's new key fails" 1
    said "... saying the log shrank and entry $T is gone" "shrank.*entry $T([^0-9]|\$)"
    stop_server
fi

DATA=$ORIG
finish
