#!/bin/sh
# test_audit_crash.sh: kill -9 of the server while promotions and rollbacks
# run, several rounds on the same data dir. After every restart the audit
# log verifies, and the log and the stage pointers agree: every stage holds
# what replaying the log's passed promote/rollback entries gives, every
# stage history record has its entry and every entry its record (in the
# same order), the promotions log (passed and refused) matches the entries
# one to one, every passed entry has its attestation (same seq), also as an
# OCI referrer whose envelope blob is there, and no attestation lacks its
# entry; every promotion acknowledged to a client before the kill is still
# there, and the log only grew since the round before (a remembered
# checkpoint and its consistency proof).
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
ROUNDS=4

RC=0
expect_rc() {
    if [ "$RC" -eq "$2" ]; then ok "$1"; else
        not_ok "$1 (want exit $2, got $RC: $(tail -n 3 "$TMP/err" | tr '\n' ' '))"; fi
}

# Gates that pass for most releases: staging refuses accuracy below 0.85, so
# refused entries are in the mix too.
cat >"$W/config.json" <<EOF
{
  "stages": ["dev", "staging", "production"],
  "gates": { "staging": [ { "metric": "accuracy", "min": 0.85 } ] }
}
EOF
start_server --config "$W/config.json" || finish
if [ "$(http_status GET /api/v1/audit)" != 200 ]; then
    not_ok "the registry serves GET /api/v1/audit ($(head -c 200 "$TMP/body"))"
    finish
fi
LOGPUB=$W/log.pub
cp "$DATA/audit/log.pub" "$LOGPUB"

head -c 2000 /dev/urandom >"$W/w.bin"
for m in m/a m/b; do
    for v in 1 2 3 4; do
        acc=0.9$v
        [ $v = 3 ] && acc=0.80
        printf '{"metrics":{"accuracy":%s}}' "$acc" >"$W/e$v.json"
        run "$MLREG" push "$m@$v.0" --weights "$W/w.bin" --eval-report "$W/e$v.json"
        [ "$RC" -eq 0 ] || not_ok "push $m@$v.0 ($(tail -n 2 "$TMP/err"))"
    done
done
ok "pushed m/a and m/b, versions 1.0 .. 4.0"

# churn ID SEED: promotions and rollbacks against $MLREG_URL until
# $W/stop exists; the promotion seq of every 200 answer goes to
# $W/acked.ID as "MODEL SEQ".
churn() {
    id=$1; x=$2
    : >"$W/acked.$id"
    while [ ! -e "$W/stop" ]; do
        x=$(( (x * 1103515245 + 12345) % 2147483648 ))
        case $(( x / 7 % 2 )) in 0) m=m/a ;; *) m=m/b ;; esac
        v=$(( x / 31 % 4 + 1 )).0
        case $(( x / 131 % 3 )) in 0) s=dev ;; 1) s=staging ;; *) s=production ;; esac
        if [ $(( x / 1031 % 4 )) -eq 0 ]; then
            path=/api/v1/models/$m/stages/$s/rollback
            body='{"reason":"churn"}'
        else
            path=/api/v1/models/$m/promotions
            body="{\"version\":\"$v\",\"to\":\"$s\"}"
        fi
        code=$(curl -s --max-time 5 -o "$W/churn.$id.body" -w '%{http_code}' -X POST \
            -H 'Content-Type: application/json' --data-binary "$body" "$MLREG_URL$path")
        if [ "$code" = 200 ]; then
            seq=$(jq -r '.promotion.seq // empty' "$W/churn.$id.body" 2>/dev/null)
            [ -n "$seq" ] && echo "$m $seq" >>"$W/acked.$id"
        fi
    done
}

# The consistency check: python3 reads the API and compares.
cat >"$W/agree.py" <<'EOF'
import json, sys, urllib.error, urllib.request
url, acked_files = sys.argv[1], sys.argv[2:]
def get(path):
    with urllib.request.urlopen(url + path, timeout=10) as r:
        return json.load(r)
entries, since = [], 0
while since is not None:
    page = get("/api/v1/audit?limit=1000&since=%d" % since)
    entries += [json.loads(t) for t in page["entries"]]
    since = page["next"]
assert [e["seq"] for e in entries] == list(range(len(entries))), "entries out of order"
bad = []
moves = nref = 0
for m in ("m/a", "m/b"):
    mine = [e for e in entries if e["subject"].get("model") == m
            and e["action"] in ("promote", "rollback")]
    ok = [e for e in mine if e["result"] == "ok"]
    moves += len(ok)
    # the pointers: what replaying the log gives
    for st in get("/api/v1/models/%s/stages" % m)["stages"]:
        s = st["stage"]
        here = [e for e in ok if e["subject"]["stage"] == s]
        want = here[-1]["subject"]["digest"] if here else None
        if st["digest"] != want:
            bad.append("%s:%s holds %s, the log says %s" % (m, s, st["digest"], want))
        hist = get("/api/v1/models/%s/stages/%s/history" % (m, s))["history"]
        h = [(r["action"], r["digest"]) for r in hist]
        a = [(e["action"], e["subject"]["digest"]) for e in here]
        if h != a:
            bad.append("%s:%s history %d records, log %d ok entries (differ: %s vs %s)"
                       % (m, s, len(h), len(a), h[-3:], a[-3:]))
    # the promotions log, passed and refused, one to one and in order
    proms = get("/api/v1/models/%s/promotions" % m)["promotions"]
    p = [(r["action"], r["version"], r["to"], bool(r["passed"])) for r in proms]
    a = [(e["action"], e["subject"]["version"], e["subject"]["stage"], e["result"] == "ok")
         for e in mine]
    if p != a:
        bad.append("%s: %d promotion records vs %d promote/rollback entries (last: %s vs %s)"
                   % (m, len(p), len(a), p[-3:], a[-3:]))
    # acknowledged before a kill => still there
    seqs = {r["seq"] for r in proms}
    for f in acked_files:
        for line in open(f):
            mm, sq = line.split()
            if mm == m and int(sq) not in seqs:
                bad.append("%s: promotion #%s was acknowledged but is gone" % (m, sq))
    # attestations: one per passed entry, same seq, action and stage
    att = {}
    for v in ("1.0", "2.0", "3.0", "4.0"):
        for x in get("/api/v1/models/%s/versions/%s/attestations" % (m, v))["attestations"]:
            att[x["seq"]] = (x["action"], x["stage"], v)
    want = {e["seq"]: (e["action"], e["subject"]["stage"], e["subject"]["version"]) for e in ok}
    # ... and each is an OCI referrer of its release whose envelope blob
    # survived the crash (written before the transaction committed)
    for v in ("1.0", "2.0", "3.0", "4.0"):
        d = get("/api/v1/models/%s/versions/%s" % (m, v))["digest"]
        refs = get("/v2/%s/referrers/%s" % (m, d)).get("manifests") or []
        rs = set()
        for r in refs:
            if r.get("artifactType") != "application/vnd.in-toto+json":
                continue
            rs.add(int(r["annotations"]["org.mlreg.audit.seq"]))
            nref += 1
            req = urllib.request.Request(url + "/v2/%s/manifests/%s" % (m, r["digest"]),
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                layer = json.load(resp)["layers"][0]["digest"]
            try:
                urllib.request.urlopen(urllib.request.Request(
                    url + "/v2/%s/blobs/%s" % (m, layer), method="HEAD"), timeout=10)
            except urllib.error.HTTPError as err:
                bad.append("%s@%s: envelope blob of entry %s: HTTP %d" % (m, v, rs, err.code))
        mine_v = {k for k, x in want.items() if x[2] == v}
        if rs != mine_v:
            bad.append("%s@%s: referrer statements for entries %s, passed entries %s"
                       % (m, v, sorted(rs)[:8], sorted(mine_v)[:8]))
    if att != want:
        missing = sorted(set(want) - set(att))
        extra = sorted(set(att) - set(want))
        wrong = sorted(k for k in set(att) & set(want) if att[k] != want[k])
        bad.append("%s: attestations missing for entries %s, without entry %s, differing %s"
                   % (m, missing[:5], extra[:5], wrong[:5]))
print("# %d entries, %d passed promote/rollback entries, %d referrer statements"
      % (len(entries), moves, nref))
for b in bad:
    print("# " + b)
sys.exit(1 if bad else 0)
EOF

r=1
while [ $r -le $ROUNDS ]; do
    rm -f "$W/stop"
    churn "$r-1" $((r * 7919)) &
    C1=$!
    churn "$r-2" $((r * 104729 + 1)) &
    C2=$!
    sleep "$(awk -v s="$$$r" 'BEGIN { srand(s); printf "%.2f", 0.4 + rand() * 0.8 }')"
    kill_server
    touch "$W/stop"
    wait $C1 $C2
    start_server --config "$W/config.json" || finish
    run "$MLREG" audit verify --log-key "$LOGPUB" --remember "$W/remembered"
    expect_rc "round $r: audit verify passes after kill -9 and restart, consistent with the last round" 0
    check "round $r: the server kept its log key" cmp -s "$DATA/audit/log.pub" "$LOGPUB"
    if python3 "$W/agree.py" "$MLREG_URL" "$W"/acked.* >"$TMP/agree" 2>&1; then
        ok "round $r: stage pointers, history, promotions and attestations agree with the log"
    else
        not_ok "round $r: stage pointers, history, promotions and attestations agree with the log"
    fi
    cat "$TMP/agree"
    r=$((r + 1))
done
moves=$(sed -n 's/^# [0-9]* entries, \([0-9]*\) passed.*/\1/p' "$TMP/agree")
check "the churn moved stages (${moves:-0} passed promote/rollback entries)" \
    test "${moves:-0}" -ge $ROUNDS

finish
