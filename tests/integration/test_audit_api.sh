#!/bin/sh
# test_audit_api.sh: the audit log's HTTP API on the real server
# (docs/audit-api.md), checked by an independent client: after pushes,
# promotions (passed and refused) and a rollback through the CLI, and a
# thousand blob uploads with curl, the entry pages hold canonical JSON
# entries whose seq is their position and whose prev is the SHA-256 of the
# entry before; paging follows next, limit is clamped to 1000, since past
# the end is an empty page; the log key is a minisign public key whose key
# id names the origin; the checkpoint is a signed note (verified here with
# openssl) over the root this script computes itself, byte-identical on two
# calls without a change in between; inclusion and consistency proofs verify
# with a small RFC 9162 verifier written here in python3; hostile query
# numbers are 400 and the server stays up; other methods are 405 with
# Allow; a promoted release lists its DSSE promotion statements (signature
# verified, subject = the release digest, audit.seq = its entry), an unknown
# release is 404; with tokens the log needs a token with an unlimited read
# role.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

command -v python3 >/dev/null 2>&1 || { not_ok "python3 is installed"; finish; }
command -v openssl >/dev/null 2>&1 || { not_ok "openssl is installed"; finish; }
W=$TMP/work
mkdir -p "$W"
jqt() { jq -e "$@" >/dev/null; }
err_code() { jq -r '.errors[0].code' "$TMP/body" 2>/dev/null; }
RC=0
# py NAME ARGS...: runs the verifier below; ok when it exits 0, else its
# message is shown.
py() {
    name=$1; shift
    if python3 "$TMP/audit.py" "$@" >"$TMP/py.out" 2>&1; then ok "$name"; else
        not_ok "$name ($(tail -n 3 "$TMP/py.out"))"; fi
}

# ---- the independent verifier ----------------------------------------------------
# RFC 9162 trees (leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || l || r)),
# the entry chain, the signed-note checkpoint and DSSE envelopes. Ed25519 is
# checked by openssl, so nothing here shares code with the server.
cat >"$TMP/audit.py" <<'EOF'
import base64, hashlib, json, os, subprocess, sys, tempfile

def H(b): return hashlib.sha256(b).digest()
def leaf(e): return H(b"\x00" + e)
def node(l, r): return H(b"\x01" + l + r)
def mth(lv):
    if not lv: return H(b"")
    if len(lv) == 1: return lv[0]
    k = 1
    while 2 * k < len(lv): k *= 2
    return node(mth(lv[:k]), mth(lv[k:]))
def b64(s):
    v = base64.b64decode(s, validate=True)
    assert len(v) == 32, "hash of %d bytes" % len(v)
    return v
def load(path): return json.load(open(path, encoding="utf-8"))
def entries(path): return [e.encode("utf-8") for e in load(path)]

def verify_inclusion(idx, size, lh, proof, root):   # RFC 9162 2.1.3.2
    assert idx < size, "seq >= size"
    fn, sn, r = idx, size - 1, lh
    for p in proof:
        assert sn != 0, "proof too long"
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0: fn >>= 1; sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1; sn >>= 1
    assert sn == 0 and r == root, "inclusion proof does not reach the root"

def verify_consistency(m, n, h1, h2, proof):        # RFC 9162 2.1.4.2
    assert 0 < m <= n, "bad sizes %d %d" % (m, n)
    if m == n: assert not proof and h1 == h2, "equal sizes"; return
    assert proof, "empty proof"
    if m & (m - 1) == 0: proof = [h1] + proof
    fn, sn = m - 1, n - 1
    while fn & 1: fn >>= 1; sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        assert sn != 0, "proof too long"
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0: fn >>= 1; sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1; sn >>= 1
    assert fr == h1 and sr == h2 and sn == 0, "consistency proof does not verify"

def ed25519_ok(pk, sig, msg):
    d = tempfile.mkdtemp()
    for n, v in (("pk", bytes.fromhex("302a300506032b6570032100") + pk), ("sig", sig), ("m", msg)):
        open(os.path.join(d, n), "wb").write(v)
    r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey",
                        d + "/pk", "-rawin", "-in", d + "/m", "-sigfile", d + "/sig"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0

def logkey(path):  # minisign .pub -> (key id, raw public key)
    text = open(path, "rb").read().decode("ascii")
    lines = text.split("\n")
    assert len(lines) == 3 and lines[2] == "", "key is not two lines: %r" % text
    assert lines[0].startswith("untrusted comment: ") and "mlreg-audit/" in lines[0], lines[0]
    k = base64.b64decode(lines[1], validate=True)
    assert len(k) == 42 and k[:2] == b"Ed", "not a minisign Ed25519 key"
    kid = "%016X" % int.from_bytes(k[2:10], "little")
    assert lines[0].endswith("mlreg-audit/" + kid), "comment does not name the key id " + kid
    return kid, k[10:]

def cmd_entries(page_all):
    es = entries(page_all)
    for i, e in enumerate(es):
        o = json.loads(e)
        assert type(o["seq"]) is int and o["seq"] == i, "entry %d has seq %r" % (i, o.get("seq"))
        want = None if i == 0 else "sha256:" + hashlib.sha256(es[i - 1]).hexdigest()
        assert o["prev"] == want, "entry %d: prev %r, want %r" % (i, o["prev"], want)
        for m in ("time", "actor", "action", "result", "subject"):
            assert m in o, "entry %d lacks %s" % (i, m)
        assert isinstance(o["subject"], dict) and o["result"] in ("ok", "refused")
        canon = json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canon.encode("utf-8") == e, "entry %d is not canonical JSON" % i
    print(len(es))

def cmd_checkpoint(cp, key, page_all, want_size):
    kid, pk = logkey(key)
    raw = open(cp, "rb").read()
    text = raw.decode("utf-8")
    body, sep, sigs = text.partition("\n\n")
    assert sep, "no blank line"
    origin, size, root = body.split("\n")
    assert origin == "mlreg-audit/" + kid, "origin %r" % origin
    assert size.isdigit() and str(int(size)) == size and int(size) == int(want_size), \
        "size %r, want %s" % (size, want_size)
    es = entries(page_all)
    assert int(size) == len(es)
    assert b64(root) == mth([leaf(e) for e in es]), "root differs from the entries' tree"
    assert sigs.endswith("\n") and sigs.count("\n") == 1, "want one signature line"
    dash, name, s = sigs[:-1].split(" ")
    assert dash == "\u2014" and name == origin, "signature line %r" % sigs
    s = base64.b64decode(s, validate=True)
    assert len(s) == 68 and s[:4] == H(origin.encode() + b"\n\x01" + pk)[:4], "key hash"
    assert ed25519_ok(pk, s[4:], (body + "\n").encode()), "checkpoint signature does not verify"

def cmd_inclusion(proof_file, page_all, cp_root):
    p = load(proof_file)
    es = entries(page_all)
    seq, size = p["seq"], p["size"]
    assert leaf(es[seq]) == b64(p["leaf_hash"]), "leaf_hash"
    root = b64(p["root"])
    assert root == mth([leaf(e) for e in es[:size]]), "root is not the tree of %d entries" % size
    if cp_root != "-": assert root == b64(cp_root), "root differs from the checkpoint"
    verify_inclusion(seq, size, leaf(es[seq]), [b64(x) for x in p["proof"]], root)

def cmd_consistency(proof_file, page_all, cp_root):
    p = load(proof_file)
    es = [leaf(e) for e in entries(page_all)]
    m, n = p["from"], p["to"]
    h1, h2 = b64(p["from_root"]), b64(p["to_root"])
    assert h1 == mth(es[:m]) and h2 == mth(es[:n]), "from_root/to_root"
    if cp_root != "-": assert h2 == b64(cp_root), "to_root differs from the checkpoint"
    verify_consistency(m, n, h1, h2, [b64(x) for x in p["proof"]])

def cmd_attestations(att, key, page_all, model, version, digest):
    kid, pk = logkey(key)
    es = entries(page_all)
    items = load(att)["attestations"]
    seqs = [it["seq"] for it in items]
    assert seqs == sorted(seqs), "not oldest first"
    for it in items:
        env = it["envelope"]
        assert env["payloadType"] == "application/vnd.in-toto+json", env["payloadType"]
        payload = base64.b64decode(env["payload"], validate=True)
        pae = b"DSSEv1 %d %s %d " % (len(env["payloadType"]), env["payloadType"].encode(),
                                     len(payload)) + payload
        assert any(s.get("keyid") == kid and ed25519_ok(pk, base64.b64decode(s["sig"]), pae)
                   for s in env["signatures"]), "no signature by the log key verifies"
        st = json.loads(payload)
        assert st["_type"] == "https://in-toto.io/Statement/v1", st["_type"]
        assert st["predicateType"] == "urn:mlreg:promotion:v1"
        assert st["subject"] == [{"name": model + "@" + version,
                                  "digest": {"sha256": digest.split(":", 1)[1]}}], st["subject"]
        pr = st["predicate"]
        assert pr["audit"] == {"origin": "mlreg-audit/" + kid, "seq": it["seq"]}, pr["audit"]
        assert pr["action"] == it["action"] and pr["stage"] == it["stage"]
        e = json.loads(es[it["seq"]])
        assert e["action"] == it["action"] and e["result"] == "ok", "entry %d" % it["seq"]
        assert e["subject"].get("digest") == digest, "entry %d names another digest" % it["seq"]
    print(" ".join("%s:%s" % (it["action"], it["stage"]) for it in items))

cmds = {"entries": cmd_entries, "checkpoint": cmd_checkpoint, "inclusion": cmd_inclusion,
        "consistency": cmd_consistency, "attestations": cmd_attestations}
try:
    cmds[sys.argv[1]](*sys.argv[2:])
except (AssertionError, KeyError, ValueError, TypeError, IndexError) as e:
    print("%s: %s: %s" % (sys.argv[1], type(e).__name__, e))
    sys.exit(1)
EOF

# fetch_all: every entry, paged with limit=1000 following next, into
# $TMP/all.json (a JSON array of the entry strings).
fetch_all() {
    since=0
    : >"$TMP/pages"
    while :; do
        curl -s "$MLREG_URL/api/v1/audit?since=$since&limit=1000" >"$TMP/pg" || return 1
        jq -c '.entries[]' "$TMP/pg" >>"$TMP/pages" || return 1
        since=$(jq -r '.next // empty' "$TMP/pg")
        [ -n "$since" ] || break
    done
    jq -s . "$TMP/pages" >"$TMP/all.json"
}
log_size() { curl -s "$MLREG_URL/api/v1/audit?limit=1" | jq -r .size; }

# ---- a server without tokens; releases, promotions and a rollback via the CLI ---------
cat >"$W/config.json" <<EOF
{
  "stages": ["dev", "staging", "production"],
  "gates": { "staging": [ { "metric": "accuracy", "min": 0.85 } ] }
}
EOF
start_server --config "$W/config.json" || finish

expect_status "a new log has an empty page" 200 GET /api/v1/audit
check "... with size 0, since 0, no entries and next null" \
    jqt '.size == 0 and .since == 0 and .entries == [] and .next == null' "$TMP/body"
expect_status "the checkpoint of an empty log is 200" 200 GET /api/v1/audit/checkpoint

head -c 4096 /dev/urandom >"$W/weights.bin"
push() { # VERSION ACCURACY -> digest in $DIGEST
    printf '{"dataset":"val","metrics":{"accuracy":%s}}\n' "$2" >"$W/e$1.json"
    (cd "$TMP" && "$MLREG" push "m/clf@$1" --weights "$W/weights.bin" \
        --eval-report "$W/e$1.json") >"$TMP/out" 2>"$TMP/err"
    RC=$?
    DIGEST=$(tail -n 1 "$TMP/out")
}
push 1.0 0.90
expect_rc "push 1.0" 0
D10=$DIGEST
push 1.1 0.80
expect_rc "push 1.1" 0
D11=$DIGEST
push 2.0 0.92
expect_rc "push 2.0" 0
D20=$DIGEST
run "$MLREG" promote m/clf@1.0 --to staging --reason first
expect_rc "promote 1.0 to staging" 0
run "$MLREG" promote m/clf@1.1 --to staging
expect_rc "promote 1.1 to staging is refused" 1
run "$MLREG" promote m/clf@2.0 --to staging --dry-run
expect_rc "a dry run of 2.0 passes" 0
run "$MLREG" promote m/clf@2.0 --to staging
expect_rc "promote 2.0 to staging" 0
run "$MLREG" rollback m/clf --stage staging --reason "incident 7"
expect_rc "roll staging back" 0

# ---- entries: shape, exact strings, chain ---------------------------------------------
expect_status "GET /api/v1/audit is 200" 200 GET /api/v1/audit
check "... as application/json" test "$(header Content-Type)" = application/json
cp "$TMP/body" "$TMP/page0.json"
check "the page has exactly size, since, entries and next" \
    jqt 'keys == ["entries","next","since","size"] and .since == 0 and
         (.entries | all(type == "string")) and (.entries | length) == .size and .next == null' \
    "$TMP/page0.json"
N=$(jq .size "$TMP/page0.json")
jq .entries "$TMP/page0.json" >"$TMP/all.json"
py "every entry is canonical JSON with seq = position and prev = sha256 of the one before" \
    entries "$TMP/all.json"
check "the pushes, the refused and passed promotions and the rollback are entries" \
    jqt '[.entries[] | fromjson | .action + "/" + .result] as $a |
         ($a | index("push/ok")) != null and ($a | index("promote/refused")) != null and
         ($a | index("promote/ok")) != null and ($a | index("rollback/ok")) != null and
         ([$a[] | select(. == "push/ok")] | length) == 3 and
         ([$a[] | select(startswith("promote/"))] | length) == 3' "$TMP/page0.json"
check "the refused promotion names 1.1's digest and the actor local" \
    jqt --arg d "$D11" '[.entries[] | fromjson | select(.action == "promote" and .result == "refused")]
         | length == 1 and .[0].subject.digest == $d and .[0].actor == "local"' "$TMP/page0.json"

# ---- paging ----------------------------------------------------------------------------
expect_status "since=2&limit=3 is 200" 200 GET "/api/v1/audit?since=2&limit=3"
check "... holds entries 2..4 and next 5" \
    jqt --slurpfile all "$TMP/all.json" \
    '.since == 2 and .next == 5 and .entries == $all[0][2:5]' "$TMP/body"
since=0
: >"$TMP/walk"
pages=0
while [ -n "$since" ] && [ $pages -lt 100 ]; do
    curl -s "$MLREG_URL/api/v1/audit?since=$since&limit=4" >"$TMP/pg"
    jq -c '.entries[]' "$TMP/pg" >>"$TMP/walk"
    since=$(jq -r '.next // empty' "$TMP/pg")
    pages=$((pages + 1))
done
check "walking pages of 4 by next gives every entry once, in order" \
    jqt -s --slurpfile all "$TMP/all.json" '. == $all[0]' "$TMP/walk"
check "... in ceil(size/4) pages" test $pages -eq $(((N + 3) / 4))
expect_status "since at the end is 200" 200 GET "/api/v1/audit?since=$N"
check "... an empty page with next null" \
    jqt --argjson n "$N" '.entries == [] and .next == null and .size == $n and .since == $n' "$TMP/body"
expect_status "since = 2^63-1 is an empty page" 200 GET "/api/v1/audit?since=9223372036854775807"
check "... with next null" jqt '.entries == [] and .next == null' "$TMP/body"
# the page echoes since as a JSON integer, which jansson keeps signed
expect_status "since = 2^64-1 (beyond a JSON integer) is 400" 400 GET "/api/v1/audit?since=18446744073709551615"
expect_status "since with leading zeros is decimal" 200 GET "/api/v1/audit?since=002&limit=1"
check "... entry 2" jqt '.since == 2 and (.entries[0] | fromjson | .seq) == 2' "$TMP/body"

# a thousand blob uploads over one connection, so limits can be clamped
OLD_N=$N
python3 - "$MLREG_URL" >"$TMP/bulk.curl" <<'EOF'
import hashlib, sys
for i in range(1001):
    d = "bulk blob %d" % i
    print('url = "%s/v2/m/bulk/blobs/uploads/?digest=sha256:%s"' % (sys.argv[1], hashlib.sha256(d.encode()).hexdigest()))
    print('request = "POST"\ndata-binary = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"' % d)
    if i < 1000: print("next")
EOF
curl -s -K "$TMP/bulk.curl" >"$TMP/bulk.out"
check "1001 blob uploads are 201" test "$(grep -c '^201$' "$TMP/bulk.out")" -eq 1001
N=$(log_size)
check "... and 1001 entries more" test "$N" -eq $((OLD_N + 1001))
expect_status "without limit a page is 100 entries" 200 GET /api/v1/audit
check "... with next 100" jqt '(.entries | length) == 100 and .next == 100' "$TMP/body"
expect_status "limit=5000 is 200" 200 GET "/api/v1/audit?limit=5000"
check "... clamped to 1000 entries, next 1000" \
    jqt '(.entries | length) == 1000 and .next == 1000' "$TMP/body"
expect_status "limit=99999999999999999 is clamped too" 200 GET "/api/v1/audit?since=10&limit=99999999999999999"
check "... 1000 entries from 10" jqt '(.entries | length) == 1000 and .next == 1010' "$TMP/body"
fetch_all
check "fetching by pages of 1000 gives size entries" \
    jqt --argjson n "$N" 'length == $n' "$TMP/all.json"
py "all $N entries chain and are canonical" entries "$TMP/all.json"

# ---- the key and the checkpoint ---------------------------------------------------------
expect_status "GET /api/v1/audit/key is 200" 200 GET /api/v1/audit/key
check "... text/plain" test "$(header Content-Type)" = text/plain
cp "$TMP/body" "$TMP/log.pub"
check "... two lines, comment naming mlreg-audit/" sh -c \
    "[ \$(wc -l <'$TMP/log.pub') -eq 2 ] && head -n 1 '$TMP/log.pub' | grep -q '^untrusted comment: .*mlreg-audit/[0-9A-F]\{16\}\$'"
check "the key is the data dir's audit/log.pub" cmp -s "$TMP/log.pub" "$DATA/audit/log.pub"

expect_status "GET /api/v1/audit/checkpoint is 200" 200 GET /api/v1/audit/checkpoint
check "... text/plain; charset=utf-8" test "$(header Content-Type)" = "text/plain; charset=utf-8"
cp "$TMP/body" "$TMP/cp1"
py "the checkpoint is a signed note of the log's size and root (signature checked by openssl)" \
    checkpoint "$TMP/cp1" "$TMP/log.pub" "$TMP/all.json" "$N"
ROOT=$(sed -n 3p "$TMP/cp1")
expect_status "a second checkpoint is 200" 200 GET /api/v1/audit/checkpoint
check "... with the same bytes (no change in between)" cmp -s "$TMP/cp1" "$TMP/body"
expect_status "HEAD of the checkpoint is 200" 200 HEAD /api/v1/audit/checkpoint
check "... with its Content-Length" test "$(header Content-Length)" = "$(wc -c <"$TMP/cp1")"

# ---- proofs ------------------------------------------------------------------------------
incl() { # SEQ SIZE(or empty) ROOT(or -)
    q="seq=$1"
    [ -n "$2" ] && q="$q&size=$2"
    expect_status "inclusion proof of $1 in ${2:-the current tree} is 200" 200 GET \
        "/api/v1/audit/proof/inclusion?$q"
    cp "$TMP/body" "$TMP/proof.json"
    py "... verifies" inclusion "$TMP/proof.json" "$TMP/all.json" "$3"
}
incl 0 "" "$ROOT"
incl 5 "" "$ROOT"
incl $((N - 1)) "" "$ROOT"
incl $((N / 2)) "$N" "$ROOT"
incl 0 1 -
incl 6 7 -
incl 12 1000 -
check "an inclusion proof has seq, size, leaf_hash, root, proof" \
    jqt 'keys == ["leaf_hash","proof","root","seq","size"]' "$TMP/proof.json"
cons() { # FROM TO(or empty) ROOT(or -)
    q="from=$1"
    [ -n "$2" ] && q="$q&to=$2"
    expect_status "consistency proof $1 -> ${2:-now} is 200" 200 GET \
        "/api/v1/audit/proof/consistency?$q"
    cp "$TMP/body" "$TMP/proof.json"
    py "... verifies" consistency "$TMP/proof.json" "$TMP/all.json" "$3"
}
cons 1 "" "$ROOT"
cons 7 "" "$ROOT"
cons 8 "" "$ROOT"
cons 1000 "" "$ROOT"
cons $((N - 1)) "" "$ROOT"
cons "$N" "" "$ROOT"
cons 3 17 -
cons 16 1001 -
check "a consistency proof has from, to, from_root, to_root, proof" \
    jqt 'keys == ["from","from_root","proof","to","to_root"]' "$TMP/proof.json"

# a change: the checkpoint moves, the old tree is a prefix of the new one
OLD_N=$N
run "$MLREG" promote m/clf@2.0 --to dev
expect_rc "promote 2.0 to dev" 0
fetch_all
N=$(jq length "$TMP/all.json")
check "the promotion added one entry" test "$N" -eq $((OLD_N + 1))
curl -s "$MLREG_URL/api/v1/audit/checkpoint" >"$TMP/cp2"
check "the checkpoint changed" sh -c "! cmp -s '$TMP/cp1' '$TMP/cp2'"
py "the new checkpoint verifies at the new size" checkpoint "$TMP/cp2" "$TMP/log.pub" "$TMP/all.json" "$N"
cons "$OLD_N" "" "$(sed -n 3p "$TMP/cp2")"
check "... from the old checkpoint's root" \
    jqt --arg r "$ROOT" '.from_root == $r' "$TMP/proof.json"
ROOT=$(sed -n 3p "$TMP/cp2")

# ---- HEAD and methods -------------------------------------------------------------------------
curl -s -o "$TMP/get.body" "$MLREG_URL/api/v1/audit?since=3&limit=2"
expect_status "HEAD /api/v1/audit is 200" 200 HEAD "/api/v1/audit?since=3&limit=2"
check "... application/json with the GET's Content-Length" sh -c \
    "[ '$(header Content-Type)' = application/json ] && [ '$(header Content-Length)' = $(wc -c <"$TMP/get.body") ]"
for p in /api/v1/audit /api/v1/audit/key /api/v1/audit/checkpoint \
    "/api/v1/audit/proof/inclusion?seq=0" "/api/v1/audit/proof/consistency?from=1" \
    /api/v1/models/m/clf/versions/1.0/attestations; do
    for m in POST DELETE PUT; do
        expect_status "$m $p is 405" 405 "$m" "$p"
        check "... with Allow: GET, HEAD" test "$(header Allow)" = "GET, HEAD"
    done
done
expect_status "an unknown audit path is 404" 404 GET /api/v1/audit/proof
expect_status "a trailing segment is 404" 404 GET /api/v1/audit/key/x

# ---- hostile query numbers ---------------------------------------------------------------------
bad() { # NAME QUERY-PATH [NEEDLE in the message]
    expect_status "$1 is 400" 400 GET "$2"
    c=$(err_code)
    if [ "$c" = UNSUPPORTED ] && { [ -z "${3:-}" ] || jq -r '.errors[0].message' "$TMP/body" | grep -qF -- "$3"; }; then
        ok "... with an error body${3:+ naming $3}"
    else not_ok "... with an error body${3:+ naming $3} ($(head -c 300 "$TMP/body"))"; fi
}
bad "since=-1" "/api/v1/audit?since=-1" since
bad "since=abc" "/api/v1/audit?since=abc" since
bad "since=2^64+ (overflow)" "/api/v1/audit?since=99999999999999999999999" since
bad "since=2^64" "/api/v1/audit?since=18446744073709551616" since
bad "since=+1" "/api/v1/audit?since=%2B1" since
bad "since=' 1'" "/api/v1/audit?since=%201" since
bad "since='1 '" "/api/v1/audit?since=1%20" since
bad "since=0x10" "/api/v1/audit?since=0x10" since
bad "since=1e3" "/api/v1/audit?since=1e3" since
bad "since=1.0" "/api/v1/audit?since=1.0" since
bad "since= (empty)" "/api/v1/audit?since=" since
bad "since without =" "/api/v1/audit?since" since
bad "since=%00" "/api/v1/audit?since=%00" since
bad "since=1%00" "/api/v1/audit?since=1%00" since
bad "limit=-5" "/api/v1/audit?limit=-5" limit
bad "limit= (empty)" "/api/v1/audit?limit=" limit
bad "seq missing" "/api/v1/audit/proof/inclusion" seq
bad "seq= (empty)" "/api/v1/audit/proof/inclusion?seq=" seq
bad "seq=abc" "/api/v1/audit/proof/inclusion?seq=abc" seq
bad "seq = size" "/api/v1/audit/proof/inclusion?seq=$N"
bad "seq >= size given" "/api/v1/audit/proof/inclusion?seq=5&size=5"
bad "size beyond the log" "/api/v1/audit/proof/inclusion?seq=0&size=$((N + 1))"
bad "size=-1" "/api/v1/audit/proof/inclusion?seq=0&size=-1" size
bad "size=%00" "/api/v1/audit/proof/inclusion?seq=0&size=%00" size
bad "from missing" "/api/v1/audit/proof/consistency" from
bad "from missing with to" "/api/v1/audit/proof/consistency?to=3" from
bad "from= (empty)" "/api/v1/audit/proof/consistency?from=" from
bad "from > to" "/api/v1/audit/proof/consistency?from=5&to=4"
# an explicit 0 is the empty tree, not "the current size"
bad "seq=0&size=0 (no entry is in the empty tree)" "/api/v1/audit/proof/inclusion?seq=0&size=0"
bad "from=5&to=0 (from > to)" "/api/v1/audit/proof/consistency?from=5&to=0"
expect_status "from=0&to=0 is 200" 200 GET "/api/v1/audit/proof/consistency?from=0&to=0"
check "... between two empty trees, with an empty proof" \
    jqt '.from == 0 and .to == 0 and .proof == [] and
         .from_root == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" and .to_root == .from_root' "$TMP/body"
bad "to beyond the log" "/api/v1/audit/proof/consistency?from=1&to=$((N + 1))"
bad "to=2^64 overflow" "/api/v1/audit/proof/consistency?from=1&to=18446744073709551616" to
bad "to=abc" "/api/v1/audit/proof/consistency?from=1&to=abc" to
expect_status "HEAD with a bad number is 400 too" 400 HEAD "/api/v1/audit?since=x"
expect_status "the server is still up" 200 GET /api/v1/health
check "... and the log did not change" test "$(log_size)" -eq "$N"

# ---- attestations -------------------------------------------------------------------------------
attest() { # VERSION DIGEST WANT("action:stage ...")
    expect_status "attestations of m/clf@$1 is 200" 200 GET "/api/v1/models/m/clf/versions/$1/attestations"
    cp "$TMP/body" "$TMP/att.json"
    if python3 "$TMP/audit.py" attestations "$TMP/att.json" "$TMP/log.pub" "$TMP/all.json" \
        m/clf "$1" "$2" >"$TMP/py.out" 2>&1; then
        ok "... each a DSSE in-toto statement signed by the log key for m/clf@$1 and its entry"
        ATT=$(cat "$TMP/py.out")
    else
        not_ok "... verify ($(tail -n 3 "$TMP/py.out"))"
        ATT=""
    fi
}
attest 1.0 "$D10"
ATT10=$ATT
check "1.0 has its promotion to staging first" sh -c "case '$ATT10' in 'promote:staging'*) true;; *) false;; esac"
attest 2.0 "$D20"
ATT20=$ATT
check "2.0 has its promotions to staging and dev" sh -c \
    "echo '$ATT20' | grep -q 'promote:staging' && echo '$ATT20' | grep -q 'promote:dev'"
attest 1.1 "$D11"
check "the refused 1.1 has no attestation" test -z "$ATT"
check "the rollback produced one attestation" sh -c "echo '$ATT10 $ATT20' | grep -o 'rollback:staging' | wc -l | grep -qx 1"
check "every attestation has seq, stage, action, envelope" \
    jqt '.attestations | all(keys == ["action","envelope","seq","stage"])' "$TMP/att.json"
expect_status "attestations of an unknown version is 404" 404 GET /api/v1/models/m/clf/versions/9.9/attestations
check "... MANIFEST_UNKNOWN" test "$(err_code)" = MANIFEST_UNKNOWN
expect_status "attestations of an unknown model is 404" 404 GET /api/v1/models/m/nope/versions/1.0/attestations
expect_status "attestations of a bad version is 400" 400 GET "/api/v1/models/m/clf/versions/-x/attestations"
expect_status "HEAD of attestations is 200" 200 HEAD /api/v1/models/m/clf/versions/1.0/attestations
stop_server

# ---- tokens: the log needs an unlimited read role -------------------------------------------------
T_READ=$(tok)
T_PUSH=$(tok)
T_PFX=$(tok)
cat >"$W/tokens.json" <<EOF
{ "tokens": [
    { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] },
    { "name": "pusher", "sha256": "$(hash "$T_PUSH")", "roles": ["push"] },
    { "name": "vision-reader", "sha256": "$(hash "$T_PFX")", "roles": ["read@vision"] }
] }
EOF
DATA=$TMP/data2
start_server --config "$W/tokens.json" || finish
for p in /api/v1/audit /api/v1/audit/key /api/v1/audit/checkpoint \
    "/api/v1/audit/proof/consistency?from=0" /api/v1/models/m/clf/versions/1.0/attestations; do
    expect_status "GET $p without a token is 401" 401 GET "$p"
done
expect_status "a wrong token is 401" 401 GET /api/v1/audit -H "Authorization: Bearer x$T_READ"
expect_status "a read token reads the log" 200 GET /api/v1/audit -H "Authorization: Bearer $T_READ"
expect_status "a read token reads the checkpoint" 200 GET /api/v1/audit/checkpoint -H "Authorization: Bearer $T_READ"
expect_status "a read token reads the key" 200 GET /api/v1/audit/key -H "Authorization: Bearer $T_READ"
expect_status "a read token reads attestations (unknown release: 404)" 404 GET \
    /api/v1/models/m/clf/versions/1.0/attestations -H "Authorization: Bearer $T_READ"
expect_status "a push-only token cannot read the log (403)" 403 GET /api/v1/audit -H "Authorization: Bearer $T_PUSH"
expect_status "a read role limited to @vision cannot read the whole log (403)" 403 GET \
    /api/v1/audit/checkpoint -H "Authorization: Bearer $T_PFX"
expect_status "... but reaches vision/ attestations (404: none there)" 404 GET \
    /api/v1/models/vision/x/versions/1.0/attestations -H "Authorization: Bearer $T_PFX"
finish
