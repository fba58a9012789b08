#!/bin/sh
# test_cluster.sh: three `mlreg serve` nodes on one bucket prefix of the RGW
# of the cluster part (tests/run.sh cluster). A release pushed through one
# node is seen by the others; promotions, signatures and image bindings
# made through any node are the same everywhere, and an approval of the
# pusher's own release is refused through another node too (approvals by
# others across nodes: test_cluster_lb.sh, with tokens); the cluster
# status, checkpoints and `audit verify --remember` agree across nodes;
# concurrent promotions to one stage serialise with the right baselines;
# a node killed mid-write loses no acknowledged write; a wiped node and a
# `reindex --from-store` rebuild answer byte for byte like the others; an
# edited or planted log object stops the nodes (health and /readyz 503,
# /healthz 200); a store path that drops
# `If-None-Match` and a second log key stop the start.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"

W=$TMP/work
mkdir -p "$W"
GIT=0123456789abcdef0123456789abcdef01234567
T0=$(date +%s)

# cli N CMD...: `mlreg CMD...` against node N; output in $TMP/out, $TMP/err, RC.
cli() {
    _node=$1; shift
    MLREG_URL=$(node_url "$_node") "$MLREG" "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
# report NAME ACC: an eval report with metric acc on dataset val.
report() { printf '{"dataset":"val","metrics":{"acc":%s}}\n' "$2" >"$W/$1.json"; }
head -c 2048 /dev/urandom >"$W/weights.bin"
# push_rel N MODEL@VERSION REPORT [args]: a push through node N.
push_rel() {
    _n2=$1; _ref=$2; _rep=$3; shift 3
    cli "$_n2" push "$_ref" --weights "$W/weights.bin" --eval-report "$W/$_rep.json" \
        --git-sha $GIT "$@"
}
jqt() { jq -e "$@" >/dev/null 2>&1; }
# now_ms: milliseconds since the epoch.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# wait_unhealthy N SINCE_MS LIMIT_MS: polls node N's health into $TMP/healthN
# until it answers 503 or LIMIT_MS passed since SINCE_MS; the last status in ST.
wait_unhealthy() {
    ST=""
    while [ $(( $(now_ms) - $2 )) -lt "$3" ]; do
        ST=$(curl -s -o "$TMP/health$1" -w '%{http_code}' "$(node_url "$1")/api/v1/health")
        [ "$ST" = 503 ] && break
        sleep 0.1
    done
}

# ---- three nodes on one prefix ------------------------------------------------------
make_log_key log || cluster_finish
"$MLREG" key generate --no-password --out "$W/bot" >/dev/null 2>&1 || not_ok "key generate (release key)"
new_prefix PREFIX
GATES=',"stages":["dev","staging","production"],
  "gates":{"staging":[{"metric":"acc","max_drop":0.05}],
           "production":[{"require":"signed","min":1}]},
  "trusted_keys":[{"name":"release-bot","file":"'"$W/bot.pub"'","role":"release"}]'
write_node_config "$TMP/c.json" "$PREFIX" "$TMP/log.key" "$GATES"
for n in 1 2 3; do start_node $n "$TMP/c.json" || cluster_finish; done
echo "# nodes: $(node_url 1) $(node_url 2) $(node_url 3), prefix $PREFIX"

# ---- a push through node 1 is visible on nodes 2 and 3 within 2 s ---------------
report r90 0.90
push_rel 1 vis/m@1.0 r90
expect_rc "push vis/m@1.0 through node 1 exits 0" 0
t0=$(now_ms)
for n in 2 3; do
    seen=""
    while [ $(( $(now_ms) - t0 )) -lt 2000 ]; do
        st=$(curl -s -o /dev/null -w '%{http_code}' "$(node_url $n)/api/v1/models/vis/m/versions/1.0")
        [ "$st" = 200 ] && { seen=$(( $(now_ms) - t0 )); break; }
        sleep 0.02
    done
    if [ -n "$seen" ]; then
        ok "the release pushed through node 1 is visible on node $n within 2 s"
        echo "# lag node 1 -> node $n: $seen ms"
    else
        not_ok "the release pushed through node 1 is visible on node $n within 2 s (still $st)"
    fi
done

# ---- promote, sign, approve, bind through different nodes -------------------------
# stage_on N MODEL:STAGE WANT: `mlreg resolve` through node N prints version WANT.
stage_on() {
    MLREG_URL=$(node_url "$1") "$MLREG" resolve "$2" >"$TMP/res" 2>&1
    got=$(cut -d' ' -f1 "$TMP/res")
    if [ "$got" = "$3" ]; then ok "resolve $2 through node $1 is $3"; else
        not_ok "resolve $2 through node $1 is $3 (got: $(head -c 200 "$TMP/res"))"; fi
}
# settle [SECONDS]: every running node has applied as many entries as the
# one furthest ahead (a node answers a write once it applied its entry).
settle() {
    _head=0
    for _s in 1 2 3; do
        [ -n "$(node_pid $_s)" ] || continue
        _x=$(cluster_json $_s | jq -r '.applied // 0')
        [ "$_x" -gt "$_head" ] && _head=$_x
    done
    for _s in 1 2 3; do
        [ -n "$(node_pid $_s)" ] || continue
        wait_applied $_s "$_head" "${1:-10}" || { not_ok "node $_s applies the $_head entries the others have"; return 1; }
    done
}
cli 2 promote vis/m@1.0 --to dev
expect_rc "promote vis/m@1.0 to dev through node 2 exits 0" 0
settle
stage_on 3 vis/m:dev 1.0
cli 2 sign vis/m@1.0 --key "$W/bot.key"
expect_rc "sign vis/m@1.0 through node 2 exits 0" 0
# the nodes serve loopback without tokens: every request is the local
# identity, the one that pushed through node 1, and node 3 knows it
cli 3 approve vis/m@1.0 --for production
expect_rc "approve vis/m@1.0 through node 3 is refused as the pusher's own (exit 1)" 1
check "... naming why" grep -q "you pushed vis/m@1.0; an approval must come from someone else" "$TMP/err"
cli 1 promote vis/m@1.0 --to staging
expect_rc "promote vis/m@1.0 to staging through node 1 exits 0" 0
settle
cli 3 promote vis/m@1.0 --to production
expect_rc "promote vis/m@1.0 to production through node 3 exits 0 (signed through node 2)" 0
cli 2 image-tag vis/m@1.0 --repo registry.example/vis --record
expect_rc "image-tag --record through node 2 exits 0" 0
settle
stage_on 1 vis/m:production 1.0
MLREG_URL=$(node_url 1) "$MLREG" resolve vis/m:production --image >"$TMP/res" 2>&1
check "resolve --image through node 1 names the image bound through node 2 ($(cat "$TMP/res"))" \
    grep -q '^registry.example/vis:1.0-0123456' "$TMP/res"
for n in 1 2 3; do
    curl -s "$(node_url $n)/api/v1/models/vis/m/versions/1.0/approvals" >"$TMP/ap$n"
    curl -s "$(node_url $n)/api/v1/models/vis/m/versions/1.0/signatures" >"$TMP/sg$n"
done
check "node 1 lists no approval (the refused one recorded nothing)" jqt '.approvals | length == 0' "$TMP/ap1"
check "node 1 lists the signature attached through node 2" jqt '.signatures | length == 1' "$TMP/sg1"

# ---- the cluster status, checkpoints and audit verify agree ----------------------
settle
for n in 1 2 3; do
    cluster_json $n >"$TMP/cl$n"
    id=$(jq -r .node "$TMP/cl$n")
    check "node $n: GET /api/v1/cluster lists 3 live nodes ($(jq -c '[.nodes[].node]' "$TMP/cl$n"))" \
        jqt '[.nodes[].node] | unique | length == 3' "$TMP/cl$n"
    check "node $n: its own id $id is one of them, with its URL" \
        jqt --arg u "$(node_url $n)" '.node as $me | .url == $u and ([.nodes[] | select(.node == $me and .url == $u)] | length == 1)' "$TMP/cl$n"
    check "node $n: healthy, lag 0, applied = head ($(jq -c '{applied,head,lag,healthy}' "$TMP/cl$n"))" \
        jqt '.healthy == true and .lag == 0 and .applied == .head and .applied > 0' "$TMP/cl$n"
done
for n in 1 2 3; do
    st=$(curl -s -o "$TMP/ready$n" -w '%{http_code}' "$(node_url $n)/readyz")
    check "node $n: GET /readyz is 200 ready (got $st: $(cat "$TMP/ready$n"))" \
        jqt '.status == "ready"' "$TMP/ready$n"
done
check "the three nodes have three different ids" \
    test "$(cat "$TMP/cl1" "$TMP/cl2" "$TMP/cl3" | jq -r .node | sort -u | wc -l)" = 3
same_answers "GET /api/v1/audit/checkpoint is byte-identical on nodes 1 and 2" 1 2 /api/v1/audit/checkpoint
same_answers "GET /api/v1/audit/checkpoint is byte-identical on nodes 1 and 3" 1 3 /api/v1/audit/checkpoint
for n in 1 2 3; do
    cli $n audit verify --log-key "$TMP/log.pub" --remember "$TMP/remembered"
    expect_rc "audit verify --remember (one file for all nodes) passes against node $n" 0
done

# ---- race: two nodes promote different releases to one stage, 50 rounds ----------
# staging's gate is max_drop 0.05 on acc, so whether a promotion passes depends
# on the release it would replace. Round r promotes v(2r mod 6) and
# v(2r+1 mod 6) at once through two different nodes. v0, v2, v4 (acc 0.95)
# pass against any baseline, so after round r the stage holds a release of
# round r's pair and never one the next round promotes again.
ACC="0.95 0.92 0.95 0.85 0.95 0.89"
k=0
for a in $ACC; do
    report race$k "$a"
    push_rel $((k % 3 + 1)) race/m@v$k race$k
    expect_rc "push race/m@v$k (acc $a) through node $((k % 3 + 1))" 0
    k=$((k + 1))
done
settle
ROUNDS=${CLUSTER_RACE_ROUNDS:-50}
r=0
race_start=$(date +%s)
while [ $r -lt $ROUNDS ]; do
    va=$(( (2 * r) % 6 )); vb=$((va + 1))
    na=$(( r % 3 + 1 )); nb=$(( (r + 1) % 3 + 1 ))
    MLREG_URL=$(node_url $na) "$MLREG" promote race/m@v$va --to staging >"$W/race.$r.a" 2>&1 &
    pa=$!
    MLREG_URL=$(node_url $nb) "$MLREG" promote race/m@v$vb --to staging >"$W/race.$r.b" 2>&1 &
    pb=$!
    wait $pa; echo $? >>"$W/race.rc"
    wait $pb; echo $? >>"$W/race.rc"
    r=$((r + 1))
done
echo "# race: $ROUNDS rounds in $(( $(date +%s) - race_start )) s"
n_ok=$(grep -c '^0$' "$W/race.rc")
n_refused=$(grep -c '^1$' "$W/race.rc")
if [ $((n_ok + n_refused)) -eq $((2 * ROUNDS)) ]; then
    ok "every one of the $((2 * ROUNDS)) racing promotions answered passed (exit 0: $n_ok) or gate refused (exit 1: $n_refused)"
else
    not_ok "every racing promotion answered passed or gate refused (exit codes: $(sort "$W/race.rc" | uniq -c | tr '\n' ' '))"
    grep -L 'PASS\|FAIL' "$W"/race.* 2>/dev/null | head -3 | while read -r f; do sed 's/^/  | /' "$f"; done
fi
check "... some passed and some were refused (the gate depended on the baseline)" \
    test "$n_ok" -gt 0 -a "$n_refused" -gt 0
settle

# all_pages N PATH KEY: the KEY arrays of every page of PATH on node N, one
# JSON document per page on stdout; the page paths in $TMP/pages.
all_pages() {
    _since=0
    : >"$TMP/pages"
    while [ -n "$_since" ]; do
        _sep='?'; case $2 in *\?*) _sep='&' ;; esac
        echo "$2${_sep}since=$_since" >>"$TMP/pages"
        curl -s "$(node_url "$1")$2${_sep}since=$_since" >"$TMP/page"
        jq -c ".$3" "$TMP/page"
        _since=$(jq -r '.next // empty' "$TMP/page")
    done
}
all_pages 1 "/api/v1/audit?limit=40" entries | jq -c '.[] | fromjson' >"$W/audit.jsonl"
cp "$TMP/pages" "$W/audit.pages"
all_pages 1 "/api/v1/models/race/m/promotions?limit=30" promotions | jq -c '.[]' >"$W/promotions.jsonl"
cp "$TMP/pages" "$W/promotions.pages"
all_pages 1 "/api/v1/models/race/m/stages/staging/history?limit=20" history | jq -c '.[]' >"$W/history.jsonl"
cp "$TMP/pages" "$W/history.pages"
n_entries=$(jq -c 'select(.action == "promote" and .subject.model == "race/m" and .subject.stage == "staging")' \
    "$W/audit.jsonl" | wc -l)
check "the audit log records each of the $((2 * ROUNDS)) racing promotions exactly once (got $n_entries)" \
    test "$n_entries" = $((2 * ROUNDS))
n_aok=$(jq -c 'select(.action == "promote" and .subject.model == "race/m" and .result == "ok")' "$W/audit.jsonl" | wc -l)
check "... with result ok exactly for the $n_ok that exited 0 (got $n_aok)" test "$n_aok" = "$n_ok"
check "the audit seqs are 0..size-1, each once" \
    sh -c "jq -r .seq '$W/audit.jsonl' | awk '\$1 != NR - 1 { exit 1 }'"
for n in 2 3; do
    same_answers "the promotions of race/m are byte-identical on nodes 1 and $n" 1 $n $(cat "$W/promotions.pages")
    same_answers "the staging history of race/m is byte-identical on nodes 1 and $n" 1 $n $(cat "$W/history.pages")
done
# Every recorded promotion, in order: its baseline (the gate table's, the
# audit entry's) is the release staging held just before it, and it passed
# exactly when acc(baseline) - acc(candidate) <= 0.05; the stage history's
# previous_version agrees.
python3 - "$W" "$ACC" >"$TMP/baseline.out" 2>&1 <<'PY'
import json, sys
w, acc = sys.argv[1], [float(a) for a in sys.argv[2].split()]
acc = {"v%d" % i: a for i, a in enumerate(acc)}
proms = [json.loads(l) for l in open(w + "/promotions.jsonl")]
hist = [json.loads(l) for l in open(w + "/history.jsonl")]
# a promotion's seq counts promotions, not audit entries: the k-th promote
# entry of race/m in the log is the k-th promotion of race/m
audit = [e for e in map(json.loads, open(w + "/audit.jsonl"))
         if e["action"] == "promote" and e["subject"]["model"] == "race/m"]
if len(audit) != len(proms):
    print("%d promote entries in the audit log, %d promotions" % (len(audit), len(proms)))
    sys.exit(1)
bad, holder, moves = [], None, []
for p, e in zip(proms, audit):
    if p["to"] != "staging":
        continue
    rule = p["rules"][0] if p["rules"] else {}
    base = ((e.get("details") or {}).get("baseline") or {}).get("version")
    if e["subject"].get("version") != p["version"] or e["subject"].get("digest") != p["digest"]:
        bad.append("seq %d %s: the audit entry is of %s" % (p["seq"], p["version"], e["subject"].get("version")))
    want = holder is None or acc[holder] - acc[p["version"]] <= 0.05
    if rule.get("baseline_version") != holder:
        bad.append("seq %d %s: gate baseline_version %s, stage held %s" % (p["seq"], p["version"], rule.get("baseline_version"), holder))
    if base != holder:
        bad.append("seq %d %s: audit entry baseline %s, stage held %s" % (p["seq"], p["version"], base, holder))
    if p["passed"] != want or rule.get("passed") != want:
        bad.append("seq %d %s: passed %s (rule %s) against %s, want %s" % (p["seq"], p["version"], p["passed"], rule.get("passed"), holder, want))
    if p["passed"]:
        moves.append((p["seq"], p["version"], holder))
        holder = p["version"]
got = [(h["version"], h["previous_version"]) for h in hist]
moves = [(v, prev) for _, v, prev in moves]
if got != moves:
    bad.append("stage history %s != moves of the promotions %s" % (got[:5], moves[:5]))
print("%d promotions, %d moves checked" % (len([p for p in proms if p["to"] == "staging"]), len(moves)))
for b in bad[:10]:
    print(b)
sys.exit(1 if bad else 0)
PY
rc=$?
if [ $rc -eq 0 ]; then ok "each recorded promotion's baseline is the release staging held before it, and its gate result follows from it ($(cat "$TMP/baseline.out"))"
else not_ok "each recorded promotion's baseline is the release staging held before it:"; sed 's/^/  | /' "$TMP/baseline.out"; fi

# ---- kill -9 of a node in the middle of writes: no acknowledged write is lost -----
# Writes through nodes 2 and 3 run in the background (pushes, and promotions
# to dev) while node 1 takes pushes until it is killed 1.5 s in. An exit 0 of
# the CLI is an acknowledged write, listed in $W/acked.
: >"$W/acked"
(
    j=1
    while [ $j -le 14 ]; do
        nw=$((j % 2 + 2)); np=$(( (j + 1) % 2 + 2 ))
        MLREG_URL=$(node_url $nw) "$MLREG" push crash/m@a$j --weights "$W/weights.bin" \
            --eval-report "$W/r90.json" --git-sha $GIT >/dev/null 2>&1 && echo "push a$j node$nw" >>"$W/acked"
        if [ $((j % 3)) = 0 ]; then
            MLREG_URL=$(node_url $np) "$MLREG" promote crash/m@a$j --to dev >/dev/null 2>&1 &&
                echo "promote a$j node$np" >>"$W/acked"
        fi
        j=$((j + 1))
    done
) &
WRITER=$!
KILL1=$(node_pid 1)
( sleep 1.5; kill -KILL "$KILL1" ) &
KILLER=$!
j=1
while [ $j -le 60 ]; do
    push_rel 1 crash/m@b$j r90
    [ $RC -eq 0 ] || break
    echo "push b$j node1" >>"$W/acked"
    j=$((j + 1))
done
wait $KILLER
kill_node 1
wait $WRITER
n1=$(grep -c 'node1$' "$W/acked"); n23=$(grep -vc 'node1$' "$W/acked")
echo "# kill -9: $n1 pushes acknowledged by node 1 before it died, $n23 writes by nodes 2 and 3"
check "node 1 acknowledged writes before it was killed ($n1) and nodes 2 and 3 took writes ($n23)" \
    test "$n1" -gt 0 -a "$n23" -ge 14
check "... and node 1 was killed in the middle of its loop (a push failed: exit $RC)" test "$RC" -ne 0
# acked_present N: every acknowledged write is visible on node N.
acked_present() {
    _miss=""
    curl -s "$(node_url "$1")/api/v1/models/crash/m/stages/dev/history?limit=1000" >"$TMP/devh"
    while read -r what v via; do
        case $what in
        push) [ "$(curl -s -o /dev/null -w '%{http_code}' "$(node_url "$1")/api/v1/models/crash/m/versions/$v")" = 200 ] ||
            _miss="$_miss $what:$v($via)" ;;
        promote) jq -e --arg v "$v" '[.history[] | select(.version == $v)] | length == 1' "$TMP/devh" >/dev/null ||
            _miss="$_miss $what:$v($via)" ;;
        esac
    done <"$W/acked"
    if [ -z "$_miss" ]; then ok "node $1 has every one of the $(wc -l <"$W/acked") acknowledged writes"
    else not_ok "node $1 has every acknowledged write (missing:$_miss)"; fi
}
settle
acked_present 2
acked_present 3
start_node 1 "$TMP/c.json" || cluster_finish
settle
acked_present 1
same_answers "after the restart of node 1, its checkpoint equals node 2's" 1 2 /api/v1/audit/checkpoint

# ---- a wiped node, and reindex --from-store, answer byte for byte ------------------
# read_paths N: every read-API path of the registry on node N, one a line.
read_paths() {
    _u=$(node_url "$1")
    echo /api/v1/models
    echo /api/v1/keys
    echo /api/v1/audit/key
    echo /api/v1/audit/checkpoint
    all_pages "$1" "/api/v1/audit?limit=50" entries >/dev/null
    cat "$TMP/pages"
    for _m in $(curl -s "$_u/api/v1/models" | jq -r '.models[].name'); do
        echo "/api/v1/models/$_m"
        echo "/api/v1/models/$_m/stages"
        echo "/v2/$_m/tags/list"
        all_pages "$1" "/api/v1/models/$_m/promotions?limit=25" promotions >/dev/null
        cat "$TMP/pages"
        for _st in dev staging production; do
            echo "/api/v1/models/$_m/stages/$_st"
            all_pages "$1" "/api/v1/models/$_m/stages/$_st/history?limit=25" history >/dev/null
            cat "$TMP/pages"
        done
        for _v in $(curl -s "$_u/api/v1/models/$_m" | jq -r '.releases[].version'); do
            for _sub in "" /signatures /approvals /images /attestations; do
                echo "/api/v1/models/$_m/versions/$_v$_sub"
            done
        done
    done
}
read_paths 1 >"$W/paths"
echo "# $(wc -l <"$W/paths") read-API paths compared"
check "the read paths cover the models vis/m, race/m, crash/m" \
    test "$(grep -c '^/api/v1/models/[a-z]*/m$' "$W/paths")" = 3
if stop_node 3; then ok "node 3 exits 0 on SIGTERM"; else not_ok "node 3 exits 0 on SIGTERM"; fi
rm -rf "$TMP/node3"
# (a failed start is one failed check; the later parts need nodes 1 and 2 only)
if start_node 3 "$TMP/c.json"; then
    settle 30
    same_answers "node 3, restarted on a wiped data dir, answers every read byte-identical to node 1" \
        1 3 $(cat "$W/paths")
fi
run "$MLREG" reindex --from-store --config "$TMP/c.json" --data "$TMP/reindexed"
expect_rc "mlreg reindex --from-store into a new data dir exits 0" 0
check "... and says how many entries the index holds ($(tail -n 1 "$TMP/err"))" \
    grep -q "index in $TMP/reindexed holds [0-9]* log entries" "$TMP/err"
if [ $RC -eq 0 ] && start_node 4 "$TMP/c.json" "$TMP/reindexed"; then
    wait_applied 4 "$(cluster_json 1 | jq -r .applied)" 10
    same_answers "node 4, started on the reindexed data dir, answers every read byte-identical to node 1" \
        1 4 $(cat "$W/paths")
    stop_node 4 || not_ok "node 4 exits 0 on SIGTERM"
fi

# ---- a node with another log key on the prefix refuses to start -------------------
make_log_key other || cluster_finish
write_node_config "$TMP/other.json" "$PREFIX" "$TMP/other.key" "$GATES"
keyid_of() { sed -n 's/^untrusted comment: .* \([0-9A-F]\{16\}\)$/\1/p' "$1"; }
start_refused 8 "$TMP/other.json"
check "a node with another log key on the prefix refuses to start (exit $RC)" test "$RC" = 2
check "... saying the log is signed with another key ($(grep -o 'signed with another key.*' "$(node_log 8)" | head -c 300))" \
    grep -q "the log in this bucket is signed with another key" "$(node_log 8)"
check "... naming the bucket's key $(keyid_of "$TMP/log.pub") and its own $(keyid_of "$TMP/other.pub")" \
    sh -c "grep 'another key' '$(node_log 8)' | grep '$(keyid_of "$TMP/log.pub")' | grep -q '$(keyid_of "$TMP/other.pub")'"
check "... before it listens (no ready file)" test ! -s "$TMP/ready8"

# ---- a store path that drops If-None-Match: the start is refused ------------------
# nginx in front of RGW, removing the header; the node must notice with its
# conditional-create probe before it writes a log entry.
NGX=$TMP/nginx
mkdir -p "$NGX/logs"
NGX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RGW_HOSTPORT=${S3_ENDPOINT#http://}
cat >"$NGX/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log;
events { worker_connections 64; }
http {
    access_log $NGX/logs/access.log;
    client_body_temp_path $NGX/body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;
    server {
        listen 127.0.0.1:$NGX_PORT;
        client_max_body_size 0;
        location / {
            proxy_pass http://$RGW_HOSTPORT;
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_set_header If-None-Match "";
            proxy_request_buffering off;
            proxy_buffering off;
        }
    }
}
NGINX
nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" 2>"$NGX/start.err" &
NGINX_PID=$!
track_pid $NGINX_PID
k=0
until curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/" || [ $k -gt 100 ]; do sleep 0.05; k=$((k + 1)); done
if kill -0 $NGINX_PID 2>/dev/null; then
    new_prefix PROBE_PREFIX
    sed "s#\"endpoint\":\"$S3_ENDPOINT\"#\"endpoint\":\"http://127.0.0.1:$NGX_PORT\"#" "$TMP/c.json" |
        sed "s#\"prefix\":\"$PREFIX\"#\"prefix\":\"$PROBE_PREFIX\"#" >"$TMP/proxy.json"
    check "the proxy passes signed requests (aws s3 ls through it)" \
        sh -c "aws --endpoint-url http://127.0.0.1:$NGX_PORT --region ${S3_REGION:-us-east-1} s3 ls 's3://$S3_BUCKET/' >/dev/null"
    start_refused 9 "$TMP/proxy.json"
    check "a node whose store path drops If-None-Match refuses to start (exit $RC)" test "$RC" = 2
    check "... saying the store does not honour If-None-Match ($(grep -o 'does not honour.\{0,60\}' "$(node_log 9)"))" \
        grep -q 'the object store does not honour `If-None-Match: \*`' "$(node_log 9)"
    check "... and writes no log entry and no log key" test "$(store_head "$PROBE_PREFIX")" = 0
    check "... (its requests went through the proxy)" grep -q "PUT /$S3_BUCKET/${PROBE_PREFIX}probe/" "$NGX/logs/access.log"
else
    not_ok "nginx starts as a proxy on 127.0.0.1:$NGX_PORT ($(cat "$NGX/start.err" "$NGX/logs/error.log" 2>/dev/null | tail -n 3))"
fi
kill -TERM $NGINX_PID 2>/dev/null
wait $NGINX_PID 2>/dev/null

# ---- an edited log object stops the nodes ------------------------------------------
# Nodes 1 and 2 restart with a faster scrub (40 applied entries read again
# per poll) so they find the edit within a few polls wherever it is.
stop_node 3 || not_ok "node 3 exits 0 on SIGTERM"
sed 's/"heartbeat_ms":500}/"heartbeat_ms":500,"scrub_entries_per_poll":40}/' "$TMP/c.json" >"$TMP/scrub.json"
for n in 1 2; do
    stop_node $n || not_ok "node $n exits 0 on SIGTERM"
    start_node $n "$TMP/scrub.json" || cluster_finish
done
settle
SIZE=$(cluster_json 1 | jq -r .applied)
K=$((SIZE / 2))
KEY=$(printf '%slog/%020d' "$PREFIX" $K)
$AWS s3 cp "s3://$S3_BUCKET/$KEY" "$W/entry" >/dev/null 2>&1 || not_ok "aws s3 cp downloads $KEY"
sed 's/"actor":"local"/"actor":"mallory"/' "$W/entry" >"$W/entry.edited"
check "entry $K of $SIZE is edited (actor local -> mallory)" sh -c "! cmp -s '$W/entry' '$W/entry.edited'"
$AWS s3 cp "$W/entry.edited" "s3://$S3_BUCKET/$KEY" >/dev/null 2>&1 || not_ok "aws s3 cp overwrites $KEY"
t0=$(now_ms)
for n in 1 2; do
    wait_unhealthy $n "$t0" 8000
    st=$ST
    check "node $n: GET /api/v1/health answers 503 within 8 s of the edit (got $st after $(( $(now_ms) - t0 )) ms)" test "$st" = 503
    check "... naming entry $K and the difference ($(cat "$TMP/health$n"))" \
        jqt --arg r "stopped at log entry $K: the entry in the store differs from the one this node applied" \
        '.status == "unhealthy" and .reason == $r' "$TMP/health$n"
    check "node $n: GET /api/v1/cluster says unhealthy, stopped_at seq $K" \
        sh -c "curl -s '$(node_url $n)/api/v1/cluster' | jq -e '.healthy == false and .stopped_at.seq == $K' >/dev/null"
    st=$(curl -s -o "$TMP/ready$n" -w '%{http_code}' "$(node_url $n)/readyz")
    check "node $n: GET /readyz is 503 (got $st)" test "$st" = 503
    check "... not ready, the shared log stopped at entry $K ($(cat "$TMP/ready$n"))" \
        jqt --arg p "shared log: stopped at log entry $K: " \
        '.status == "not ready" and (.reason | startswith($p))' "$TMP/ready$n"
    st=$(curl -s -o /dev/null -w '%{http_code}' "$(node_url $n)/healthz")
    check "node $n: GET /healthz stays 200: the process answers (got $st)" test "$st" = 200
done
# refused_write NAME NODE ENTRY: the last CLI run failed (not a gate refusal),
# telling the user that the node stopped at ENTRY; the node's log says so.
refused_write() {
    check "$1 fails (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 1
    check "... the node logs that it stopped at log entry $3 and refuses writes" \
        grep -q "log entry $3 in the store cannot be applied.*refuses writes" "$(node_log "$2")"
    check "... and the user's message names the stopped log entry $3 (got: $(tail -n 1 "$TMP/err"))" \
        grep -q "log entry $3" "$TMP/err"
}
push_rel 1 tamper/m@1.0 r90
refused_write "a push through node 1 after the edit" 1 $K
cli 2 promote race/m@v3 --to production
refused_write "a promotion through node 2 after the edit" 2 $K
for n in 1 2; do
    st=$(curl -s -o /dev/null -w '%{http_code}' "$(node_url $n)/api/v1/models/vis/m/versions/1.0")
    check "node $n still serves reads after the edit (release 200, got $st)" test "$st" = 200
done
stage_on 2 vis/m:production 1.0
# A node started on an empty data dir replays the log from entry 0 and
# stops at the edited entry itself: the object lost the log key's signature
# of its bytes. It starts all the same, serving what it verified.
start_node 5 "$TMP/c.json" "$TMP/fresh5" || cluster_finish
st=$(curl -s -o "$TMP/health5" -w '%{http_code}' "$(node_url 5)/api/v1/health")
check "a node started fresh on the edited prefix reports unhealthy (health $st: $(cat "$TMP/health5"))" \
    jqt --arg p "stopped at log entry $K: " '.status == "unhealthy" and (.reason | startswith($p))' "$TMP/health5"
check "... because the entry object is not signed by the log key" grep -q "signature" "$TMP/health5"
check "... and holds the $K entries before it" test "$(cluster_json 5 | jq -r .applied)" = "$K"

# ---- an invalid object planted at the next seq stops the nodes ----------------------
new_prefix PLANT_PREFIX
write_node_config "$TMP/plant.json" "$PLANT_PREFIX" "$TMP/log.key"
start_node 6 "$TMP/plant.json" || cluster_finish
start_node 7 "$TMP/plant.json" || cluster_finish
push_rel 6 plant/m@1.0 r90
expect_rc "push plant/m@1.0 through node 6 exits 0" 0
NEXT=$(cluster_json 6 | jq -r .applied)
wait_applied 7 "$NEXT" || not_ok "node 7 applies the $NEXT entries of node 6"
printf '{"not":"an entry"}' >"$W/planted"
$AWS s3 cp "$W/planted" "s3://$S3_BUCKET/$(printf '%slog/%020d' "$PLANT_PREFIX" "$NEXT")" >/dev/null 2>&1 ||
    not_ok "aws s3 cp plants log/$NEXT"
t0=$(now_ms)
for n in 6 7; do
    wait_unhealthy $n "$t0" 5000
    st=$ST
    check "node $n: health answers 503 within 5 s of the planted log/$NEXT (got $st: $(cat "$TMP/health$n"))" test "$st" = 503
    check "... stopped at log entry $NEXT" jqt --arg p "stopped at log entry $NEXT: " '.reason | startswith($p)' "$TMP/health$n"
    check "... and still at $NEXT applied entries" test "$(cluster_json $n | jq -r .applied)" = "$NEXT"
done
push_rel 7 plant/m@2.0 r90
refused_write "a push through node 7 after the planted entry" 7 $NEXT
start_node 10 "$TMP/plant.json" "$TMP/fresh10" || cluster_finish
st=$(curl -s -o "$TMP/health10" -w '%{http_code}' "$(node_url 10)/api/v1/health")
check "a node started fresh on that prefix reports unhealthy at entry $NEXT (health $st)" \
    jqt --arg p "stopped at log entry $NEXT: " '.reason | startswith($p)' "$TMP/health10"

echo "# test_cluster: $(( $(date +%s) - T0 )) s"
cluster_finish
