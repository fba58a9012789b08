#!/bin/sh
# test_cluster.sh: three `mlreg serve` nodes on one bucket prefix of the RGW
# of the cluster part (tests/run.sh cluster). A release pushed through one
# node is seen by the others; promotions, signatures, approvals and image
# bindings made through any node are the same everywhere; the cluster
# status, checkpoints and `audit verify --remember` agree across nodes;
# concurrent promotions to one stage serialise with the right baselines;
# a node killed mid-write loses no acknowledged write; a wiped node and a
# `reindex --from-store` rebuild answer byte for byte like the others; an
# edited or planted log object stops the nodes; a store path that drops
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
cli 3 approve vis/m@1.0 --for production
expect_rc "approve vis/m@1.0 for production through node 3 exits 0" 0
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
check "node 1 lists the approval made through node 3" jqt '.approvals | length == 1' "$TMP/ap1"
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
check "the three nodes have three different ids" \
    test "$(cat "$TMP/cl1" "$TMP/cl2" "$TMP/cl3" | jq -r .node | sort -u | wc -l)" = 3
same_answers "GET /api/v1/audit/checkpoint is byte-identical on nodes 1 and 2" 1 2 /api/v1/audit/checkpoint
same_answers "GET /api/v1/audit/checkpoint is byte-identical on nodes 1 and 3" 1 3 /api/v1/audit/checkpoint
for n in 1 2 3; do
    cli $n audit verify --log-key "$TMP/log.pub" --remember "$TMP/remembered"
    expect_rc "audit verify --remember (one file for all nodes) passes against node $n" 0
done
