#!/bin/sh
# test_cluster_tokens.sh: API tokens made at runtime on the s3 backend, two
# nodes on one bucket prefix (docs/operations.md, "Tokens"). A token made
# through node 1 works on node 2 at once (a node that does not know a
# presented token reads the log once more); a revocation through node 2
# stops it on node 1 within the replication lag; both nodes list the same
# tokens; a data directory rebuilt from the log (`mlreg reindex
# --from-store`) knows the live token and not the revoked one.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"

T_ADMIN=$(tok)
CLUSTER_TOKEN=$T_ADMIN
status_on() { # NODE TOKEN PATH: the HTTP status
    curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $2" "$(node_url "$1")$3"
}
cli() {
    _node=$1; shift
    MLREG_URL=$(node_url "$_node") MLREG_TOKEN=$T_ADMIN "$MLREG" "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}

make_log_key log || cluster_finish
new_prefix PREFIX
write_node_config "$TMP/c.json" "$PREFIX" "$TMP/log.key" \
    ",\"tokens\":[{\"name\":\"root\",\"sha256\":\"$(hash "$T_ADMIN")\",\"roles\":[\"admin\"]}]"
for n in 1 2; do start_node $n "$TMP/c.json" || cluster_finish; done

cli 1 token create --name ci --role read
check "token create through node 1" [ "$RC" = 0 ]
T_CI=$(sed -n 1p "$TMP/out")
cli 1 token create --name gone --role read
check "a second token through node 1" [ "$RC" = 0 ]
T_GONE=$(sed -n 1p "$TMP/out")

st=$(status_on 2 "$T_CI" /api/v1/models)
check "the token made on node 1 works on node 2 at once ($st)" [ "$st" = 200 ]
st=$(status_on 2 "$T_GONE" /api/v1/models)
check "so does the second ($st)" [ "$st" = 200 ]

cli 2 token revoke gone
check "token revoke through node 2" [ "$RC" = 0 ]
i=0
while [ "$(status_on 1 "$T_GONE" /api/v1/models)" != 401 ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
done
check "node 1 refuses the revoked token within the replication lag ($((i * 50)) ms)" [ $i -lt 100 ]
st=$(status_on 1 "$T_CI" /api/v1/models)
check "the other token still works on node 1 ($st)" [ "$st" = 200 ]

cli 1 token list --json
jq -c '[.tokens[] | {name, roles, created, created_by, expires}]' "$TMP/out" >"$TMP/l1"
cli 2 token list --json
jq -c '[.tokens[] | {name, roles, created, created_by, expires}]' "$TMP/out" >"$TMP/l2"
check "both nodes list the same tokens" cmp -s "$TMP/l1" "$TMP/l2"
check "... ci and root, not the revoked one" \
    sh -c "jq -e '[.[].name] == [\"ci\",\"root\"]' '$TMP/l1' >/dev/null"
check "no node's data directory or log holds a token" \
    sh -c "! grep -rqF -e '$T_CI' -e '$T_GONE' '$TMP/node1' '$TMP/node2' '$TMP'/node*.log"
check "... nor the bucket's log (only the tokens' hashes)" \
    sh -c "$AWS s3 cp --recursive --quiet 's3://$S3_BUCKET/${PREFIX}log/' '$TMP/bucketlog' &&
           grep -rq '$(hash "$T_CI")' '$TMP/bucketlog' && ! grep -rqF -e '$T_CI' -e '$T_GONE' '$TMP/bucketlog'"

run "$MLREG" reindex --from-store --config "$TMP/c.json" --data "$TMP/reindexed"
expect_rc "reindex --from-store replays token.create and token.revoke: exit 0" 0
if [ $RC -eq 0 ] && start_node 3 "$TMP/c.json" "$TMP/reindexed"; then
    st=$(status_on 3 "$T_CI" /api/v1/models)
    check "the rebuilt node admits the live token ($st)" [ "$st" = 200 ]
    st=$(status_on 3 "$T_GONE" /api/v1/models)
    check "... and refuses the revoked one ($st)" [ "$st" = 401 ]
fi
cluster_finish
