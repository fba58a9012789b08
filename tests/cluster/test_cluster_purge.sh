#!/bin/sh
# test_cluster_purge.sh: a purge on the s3 backend with two nodes on one
# bucket prefix (docs/lifecycle.md, "Purge"). A purge through node 2 of a
# release pushed through node 1 deletes its unshared files from the bucket
# and keeps the shared ones, the manifest and the eval report; node 1
# answers 410 for it once it applied the entries; a data directory rebuilt
# from the log (`mlreg reindex --from-store`, which replays the purged
# release's push with its files gone) serves the same answers as node 1,
# and `mlreg audit verify` passes through it.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"

W=$TMP/work
mkdir -p "$W"
cli() {
    _node=$1; shift
    MLREG_URL=$(node_url "$_node") "$MLREG" "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
hex_of() { sha256sum "$1" | cut -c1-64; }
in_bucket() { $AWS s3api head-object --bucket "$S3_BUCKET" --key "${PREFIX}blobs/sha256/$1" >/dev/null 2>&1; }

make_log_key log || cluster_finish
new_prefix PREFIX
write_node_config "$TMP/c.json" "$PREFIX" "$TMP/log.key"
for n in 1 2; do start_node $n "$TMP/c.json" || cluster_finish; done

head -c 4096 /dev/urandom >"$W/tokenizer.json"
for v in 1.0 2.0; do
    head -c 3000 /dev/urandom >"$W/weights-$v.bin"
    printf '{"dataset":"val","metrics":{"acc":0.9%s}}\n' "$(echo $v | tr -d .)" >"$W/eval-$v.json"
    cli 1 push "p/m@$v" --weights "$W/weights-$v.bin" --tokenizer "$W/tokenizer.json" \
        --eval-report "$W/eval-$v.json"
    check "push p/m@$v through node 1" [ "$RC" = 0 ]
done
cli 1 promote p/m@2.0 --to dev
check "promote p/m@2.0 to dev through node 1" [ "$RC" = 0 ]
check "the weights of 1.0 are in the bucket" in_bucket "$(hex_of "$W/weights-1.0.bin")"

cli 2 purge p/m@2.0 --reason "held"
check "purge through node 2 of a release dev holds (pushed and promoted through node 1): exit 1" \
    [ "$RC" = 1 ]
check "... naming the stage" grep -q 'holds stage dev' "$TMP/err"
cli 2 purge p/m@1.0 --reason "licence takedown"
check "purge p/m@1.0 through node 2: exit 0 ($(head -c 300 "$TMP/err"))" [ "$RC" = 0 ]
check "... deleting one file" grep -q '^1 files deleted, 3000 bytes reclaimed' "$TMP/out"
check "the weights of 1.0 left the bucket" sh -c "! $AWS s3api head-object --bucket '$S3_BUCKET' --key '${PREFIX}blobs/sha256/$(hex_of "$W/weights-1.0.bin")' >/dev/null 2>&1"
check "the shared tokenizer stays" in_bucket "$(hex_of "$W/tokenizer.json")"
check "the eval report of 1.0 stays" in_bucket "$(hex_of "$W/eval-1.0.json")"

wait_applied 1 "$(cluster_json 2 | jq -r .applied)" 10
st=$(curl -s -o "$TMP/body" -w '%{http_code}' "$(node_url 1)/api/v1/models/p/m/versions/1.0")
check "node 1 answers 410 for it (got $st)" sh -c "[ '$st' = 410 ] && grep -q 'licence takedown' '$TMP/body'"
st=$(curl -s -o /dev/null -w '%{http_code}' "$(node_url 1)/v2/p/m/manifests/1.0")
check "... and for its manifest (got $st)" [ "$st" = 410 ]
cli 1 pull p/m@2.0 -o "$W/dep"
check "p/m@2.0, sharing the tokenizer, pulls through node 1" [ "$RC" = 0 ]

run "$MLREG" reindex --from-store --config "$TMP/c.json" --data "$TMP/reindexed"
expect_rc "reindex --from-store replays the purged release's push without its files: exit 0" 0
if [ $RC -eq 0 ] && start_node 3 "$TMP/c.json" "$TMP/reindexed"; then
    wait_applied 3 "$(cluster_json 1 | jq -r .applied)" 10
    same_answers "node 3 on the rebuilt index answers like node 1" 1 3 \
        /api/v1/models /api/v1/models/p/m /api/v1/models/p/m/versions/1.0 \
        /api/v1/models/p/m/versions/1.0/manifest /api/v1/models/p/m/versions/2.0 \
        /v2/p/m/manifests/1.0 /api/v1/audit/checkpoint
    cli 3 audit verify
    check "audit verify through node 3 passes ($(tail -n 1 "$TMP/err"))" [ "$RC" = 0 ]
fi
cluster_finish
