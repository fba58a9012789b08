#!/bin/sh
# test_cluster_attest.sh: independent evaluations on the s3 backend, two
# nodes on one bucket prefix (docs/evaluations.md). An evaluation attested
# through node 1 is listed by node 2 (which applies the evaluation.attest
# entry from the shared log, re-verifying the envelope from the store), the
# OCI referrers API of node 2 lists its referrer, and a data directory
# rebuilt from the log (`mlreg reindex --from-store`) lists the same
# evaluations byte for byte.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"

T_ADMIN=$(tok)
CLUSTER_TOKEN=$T_ADMIN
cli() {
    _node=$1; shift
    MLREG_URL=$(node_url "$_node") MLREG_TOKEN=$T_ADMIN "$MLREG" "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
evals_on() { # NODE: the evaluations listing of team/a@1.0.0
    curl -sf -H "Authorization: Bearer $T_ADMIN" \
        "$(node_url "$1")/api/v1/models/team/a/versions/1.0.0/evaluations"
}
unset MLREG_KEY_PASSWORD

make_log_key log || cluster_finish
new_prefix PREFIX
write_node_config "$TMP/c.json" "$PREFIX" "$TMP/log.key" \
    ",\"tokens\":[{\"name\":\"root\",\"sha256\":\"$(hash "$T_ADMIN")\",\"roles\":[\"admin\"]}]"
for n in 1 2; do start_node $n "$TMP/c.json" || cluster_finish; done

head -c 50000 /dev/urandom >"$TMP/model.bin"
printf '{"metrics":{"accuracy":0.9}}' >"$TMP/eval.json"
printf '{"metrics":{"accuracy":0.93},"dataset_digest":"sha256:%s"}' \
    "$(printf holdout | sha256sum | cut -c1-64)" >"$TMP/nightly.json"
"$MLREG" key generate --out "$TMP/ev" --no-password >/dev/null 2>&1
cli 1 push team/a@1.0.0 --weights "$TMP/model.bin" --eval-report "$TMP/eval.json" --git-sha abcdef1
check "push through node 1" [ "$RC" = 0 ]
D=$(cat "$TMP/out")
cli 1 key trust "$TMP/ev.pub" --name nightly --role evaluator
check "the evaluator key trusted through node 1" [ "$RC" = 0 ]
cli 1 attest team/a@1.0.0 --eval-report "$TMP/nightly.json" --key "$TMP/ev.key"
check "mlreg attest through node 1 ($(tail -n 1 "$TMP/err"))" [ "$RC" = 0 ]
REF=$(cat "$TMP/out")

i=0
until [ "$(evals_on 2 | jq '.evaluations | length')" = 1 ] || [ $i -gt 100 ]; do
    i=$((i + 1)); sleep 0.1
done
evals_on 1 >"$TMP/e1.json"
evals_on 2 >"$TMP/e2.json"
check "node 2 lists the evaluation, counting" jq -e '.evaluations[0].counts' "$TMP/e2.json" >/dev/null
check "... the same answer as node 1" cmp -s "$TMP/e1.json" "$TMP/e2.json"
check "node 2's referrers API lists the evaluation referrer" sh -c \
    "curl -sf -H 'Authorization: Bearer $T_ADMIN' '$(node_url 2)/v2/team/a/referrers/$D' |
     jq -e --arg r '$REF' 'any(.manifests[]; .digest == \$r)' >/dev/null"

run "$MLREG" reindex --from-store --config "$TMP/c.json" --data "$TMP/reindexed"
expect_rc "reindex --from-store replays evaluation.attest: exit 0" 0
if [ $RC -eq 0 ] && start_node 3 "$TMP/c.json" "$TMP/reindexed"; then
    evals_on 3 >"$TMP/e3.json"
    check "the rebuilt node lists the same evaluations" cmp -s "$TMP/e1.json" "$TMP/e3.json"
fi
cluster_finish
