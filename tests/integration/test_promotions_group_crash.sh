#!/bin/sh
# test_promotions_group_crash.sh: promotions made at the same time share
# one commit (registry/mutate.c). N promotions from 8 keep-alive clients
# at once, the server killed with SIGKILL as soon as the last answer came:
# after a restart on the same data dir every acknowledged promotion is
# there, with its audit entry (same seq), its staging history record, its
# attestation and the envelope blob of its OCI referrer; the seqs of the
# entries are consecutive and each belongs to one promotion. Then a
# second round on the same data dir, and a gate refusal in the mix.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
N=40

cat >"$W/config.json" <<EOF
{
  "server": { "threads": 8 },
  "gates": { "staging": [ { "metric": "accuracy", "min": 0.85 } ] }
}
EOF

cat >"$W/promote.py" <<'EOF'
# promote.py URL FROM TO ACKED: pushes g/m@vFROM..vTO-1 (every 10th below the
# gate), then promotes them to staging from 8 threads at once; writes
# "VERSION SEQ PASSED" of every answered promotion to ACKED.
import hashlib, http.client, json, sys, threading, urllib.parse
u = urllib.parse.urlparse(sys.argv[1]); lo, hi = int(sys.argv[2]), int(sys.argv[3])
def conn(): return http.client.HTTPConnection(u.hostname, u.port, timeout=30)
c = conn()
def put_blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    c.request("POST", "/v2/g/m/blobs/uploads/?digest=" + d, body=data)
    r = c.getresponse(); r.read(); assert r.status == 201, r.status
    return d
empty = put_blob(b"{}")
for i in range(lo, hi):
    ev = json.dumps({"metrics": {"accuracy": 0.5 if i % 10 == 3 else 0.9}}).encode()
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "artifactType": "application/vnd.mlreg.release.v1+json",
         "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
         "layers": [{"mediaType": "application/vnd.mlreg.eval-report.v1+json",
                     "digest": put_blob(ev), "size": len(ev),
                     "annotations": {"org.opencontainers.image.title": "eval.json",
                                     "org.mlreg.kind": "eval-report"}}],
         "annotations": {"org.mlreg.model": "g/m", "org.mlreg.version": "v%d" % i,
                         "org.opencontainers.image.created": "2026-12-04T00:00:00Z"}}
    c.request("PUT", "/v2/g/m/manifests/v%d" % i, body=json.dumps(m),
              headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    r = c.getresponse(); b = r.read(); assert r.status == 201, (r.status, b)
acked, lock = [], threading.Lock()
def worker(k):
    cc = conn()
    for i in range(lo + k, hi, 8):
        cc.request("POST", "/api/v1/models/g/m/promotions",
                   body=json.dumps({"version": "v%d" % i, "to": "staging"}),
                   headers={"Content-Type": "application/json"})
        r = cc.getresponse(); b = json.loads(r.read())
        if r.status in (200, 409):
            seq = (b.get("promotion") or {}).get("seq", -1)
            with lock: acked.append("v%d %d %d" % (i, seq, r.status == 200))
ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
open(sys.argv[4], "w").write("\n".join(acked) + "\n")
EOF

cat >"$W/agree.py" <<'EOF'
# agree.py URL ACKED...: every acknowledged promotion survived, whole.
import json, sys, urllib.error, urllib.request
url = sys.argv[1]
def get(path):
    with urllib.request.urlopen(url + path, timeout=10) as r:
        return json.load(r)
entries, since = [], 0
while since is not None:
    page = get("/api/v1/audit?limit=1000&since=%d" % since)
    entries += [json.loads(t) for t in page["entries"]]
    since = page["next"]
bad = []
if [e["seq"] for e in entries] != list(range(len(entries))):
    bad.append("entries out of order")
proms = get("/api/v1/models/g/m/promotions?limit=1000")["promotions"]
by_pseq = {r["seq"]: r for r in proms}
hist = {r["version"] for r in get("/api/v1/models/g/m/stages/staging/history?limit=1000")["history"]}
acked = [l.split() for f in sys.argv[2:] for l in open(f) if l.strip()]
for v, pseq, passed in acked:
    pseq, passed = int(pseq), passed == "1"
    mine = [e for e in entries if e["action"] == "promote" and e["subject"].get("version") == v]
    recs = [r for r in proms if r["version"] == v]
    if len(mine) != 1 or len(recs) != 1:
        bad.append("%s: %d promote entries, %d promotion records" % (v, len(mine), len(recs)))
        continue
    e, p = mine[0], recs[0]
    if pseq >= 0 and by_pseq.get(pseq) is not p:
        bad.append("%s: answered as promotion %d, recorded as %s" % (v, pseq, p["seq"]))
    if (e["result"] == "ok") != passed or bool(p["passed"]) != passed:
        bad.append("%s: entry %d result %s, record %s, answer passed=%s"
                   % (v, e["seq"], e["result"], p["passed"], passed))
    if not passed:
        continue
    seq = e["seq"]
    if v not in hist: bad.append("%s: not in the staging history" % v)
    att = get("/api/v1/models/g/m/versions/%s/attestations" % v)["attestations"]
    if [a["seq"] for a in att] != [seq]: bad.append("%s: attestations %s, want [%d]" % (v, [a["seq"] for a in att], seq))
    d = get("/api/v1/models/g/m/versions/%s" % v)["digest"]
    refs = [r for r in get("/v2/g/m/referrers/%s" % d).get("manifests") or []
            if r["annotations"].get("org.mlreg.audit.seq") == str(seq)]
    if len(refs) != 1:
        bad.append("%s: %d referrers for entry %d" % (v, len(refs), seq)); continue
    req = urllib.request.Request(url + "/v2/g/m/manifests/%s" % refs[0]["digest"],
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        layer = json.load(resp)["layers"][0]["digest"]
    try:
        urllib.request.urlopen(urllib.request.Request(url + "/v2/g/m/blobs/%s" % layer,
                                                      method="HEAD"), timeout=10)
    except urllib.error.HTTPError as err:
        bad.append("%s: envelope blob of entry %d: HTTP %d" % (v, seq, err.code))
print("%d acknowledged, %d entries" % (len(acked), len(entries)))
for b in bad[:10]: print(b)
sys.exit(1 if bad else 0)
EOF

for r in 1 2; do
    start_server --config "$W/config.json" || finish
    lo=$(( (r - 1) * N )); hi=$(( r * N ))
    if python3 "$W/promote.py" "$MLREG_URL" $lo $hi "$W/acked.$r" >"$TMP/err" 2>&1; then
        kill_server
        ok "round $r: $N promotions at once answered, server killed with SIGKILL"
    else
        kill_server
        not_ok "round $r: promotions at once ($(tail -n 3 "$TMP/err" | tr '\n' ' '))"
        finish
    fi
    n=$(grep -c . "$W/acked.$r")
    if [ "$n" -eq $N ]; then ok "round $r: every promotion answered ($n)"; else
        not_ok "round $r: $n of $N promotions answered"; fi
    start_server --config "$W/config.json" || finish
    if python3 "$W/agree.py" "$MLREG_URL" "$W"/acked.* >"$TMP/err" 2>&1; then
        ok "round $r: after the restart every acknowledged promotion is there, whole"
    else
        not_ok "round $r: acknowledged promotions after the restart: $(head -n 6 "$TMP/err" | tr '\n' ' ')"
    fi
    run "$MLREG" audit verify --log-key "$DATA/audit/log.pub" --registry "$MLREG_URL"
    if [ "$RC" -eq 0 ]; then ok "round $r: the audit log verifies"; else
        not_ok "round $r: audit verify ($(tail -n 2 "$TMP/err" | tr '\n' ' '))"; fi
    stop_server
done
finish
