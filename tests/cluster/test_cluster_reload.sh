#!/bin/sh
# test_cluster_reload.sh: a config reload on one node of two sharing a bucket
# prefix (docs/operations.md "Reload", "Several nodes"): its config.reload
# entry and the key.trust entry of a key its new file adds go through the
# shared log and reach the other node; both nodes' logs verify; the other
# node's gates stay those of its own file until it reloads too.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"

W=$TMP/work
mkdir -p "$W"
make_log_key log || cluster_finish
"$MLREG" key generate --no-password --out "$W/bot" >/dev/null 2>&1 || not_ok "key generate"
new_prefix PREFIX
# node_conf FILE MIN [EXTRA]: the staging gate acc >= MIN
node_conf() {
    write_node_config "$1.tmp" "$PREFIX" "$TMP/log.key" \
        ",\"gates\":{\"staging\":[{\"metric\":\"acc\",\"min\":$2}]}${3:-}"
    mv "$1.tmp" "$1"
}
node_conf "$TMP/c1.json" 0.95
node_conf "$TMP/c2.json" 0.95
for n in 1 2; do start_node $n "$TMP/c$n.json" || cluster_finish; done

printf '{"dataset":"val","metrics":{"acc":0.90}}\n' >"$W/r.json"
head -c 1024 /dev/urandom >"$W/w.bin"
MLREG_URL=$(node_url 1) "$MLREG" push demo@1.0 --weights "$W/w.bin" --eval-report "$W/r.json" \
    --git-sha 0123456789abcdef0123456789abcdef01234567 >"$TMP/out" 2>"$TMP/err" ||
    not_ok "push through node 1 ($(tail -n 2 "$TMP/err"))"
dry() { # N: the status of a dry-run promotion of demo@1.0 to staging on node N
    curl -s -o /dev/null -w '%{http_code}' -X POST \
        --data-binary '{"version":"1.0","to":"staging","dry_run":true}' \
        "$(node_url "$1")/api/v1/models/demo/promotions"
}
wait_applied 2 "$(cluster_json 1 | jq -r .applied)" 10 || not_ok "node 2 applies the push"
check "both nodes refuse the promotion under min 0.95" test "$(dry 1)$(dry 2)" = 409409

node_conf "$TMP/c1.json" 0.85 \
    ",\"trusted_keys\":[{\"name\":\"release-bot\",\"file\":\"$W/bot.pub\",\"role\":\"release\"}]"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST "$(node_url 1)/api/v1/admin/reload")
check "node 1 reloads (200)" test "$st" = 200
check "... gates and trusted_keys changed" \
    sh -c "jq -e '.changed == [\"gates\",\"trusted_keys\"]' '$TMP/body' >/dev/null"
N=$(cluster_json 1 | jq -r .applied)
wait_applied 2 "$N" 10 && ok "node 2 applies the reload's entries" ||
    not_ok "node 2 applies the reload's entries (node 1 at $N: $(cluster_json 2))"
check "node 2's log holds key.trust then config.reload" sh -c \
    "curl -s '$(node_url 2)/api/v1/audit?limit=1000' |
     jq -e '[.entries[] | fromjson | .action] | .[-2:] == [\"key.trust\",\"config.reload\"]' >/dev/null"
check "node 1 promotes under its new gate, node 2 keeps its own file's" \
    test "$(dry 1)$(dry 2)" = 200409
cp "$TMP/c1.json" "$TMP/c2.json"
kill -HUP "$(node_pid 2)"
i=0
until grep -q "SIGHUP: reloaded" "$(node_log 2)" || [ $i -gt 100 ]; do sleep 0.05; i=$((i + 1)); done
check "after node 2 reloads the same file, it promotes too" test "$(dry 2)" = 200
for n in 1 2; do
    MLREG_URL=$(node_url $n) "$MLREG" audit verify --log-key "$TMP/log.pub" >"$TMP/out" 2>"$TMP/err"
    check "audit verify passes on node $n" test $? = 0
done
cluster_finish
