#!/bin/sh
# test_skopeo_cli.sh: interop between the mlreg CLI and an independent OCI
# client. A release pushed by `mlreg push` is copied by skopeo from mlreg into
# an OCI layout directory, then from the layout into a second, fresh mlreg;
# the manifest keeps its digest (byte-identical manifest) and `mlreg pull`
# from the second registry gives the same files, verified.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
head -c 1048576 /dev/urandom >"$W/model.bin"
printf '{"vocab":["a","b"]}' >"$W/tokenizer.json"
printf '{"metrics":{"accuracy":0.93}}' >"$W/eval.json"
: >"$W/empty.seeds"
OCI=application/vnd.oci.image.manifest.v1+json
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$TMP/policy.json"

expect_rc() {
    if [ "$RC" -eq "$2" ]; then ok "$1"; else
        not_ok "$1 (want exit $2, got $RC: $(tail -n 5 "$TMP/err"))"; fi
}
sk() { skopeo --policy "$TMP/policy.json" "$@"; }

# ---- first registry: push with mlreg, copy out with skopeo ------------------
DATA=$TMP/data1
start_server || finish
run "$MLREG" push team/clf@1.0.0 --weights "$W/model.bin" --tokenizer "$W/tokenizer.json" \
    --seeds "$W/empty.seeds" --eval-report "$W/eval.json" --git-sha 1234567
expect_rc "mlreg push to the first registry" 0
D=$(tail -n 1 "$TMP/out")
curl -s -f -H "Accept: $OCI" -o "$TMP/m1.json" "$MLREG_URL/v2/team/clf/manifests/1.0.0"
HOSTPORT1=${MLREG_URL#http://}

run sk copy --src-tls-verify=false "docker://$HOSTPORT1/team/clf:1.0.0" "oci:$TMP/layout:1.0.0"
expect_rc "skopeo copies the release from mlreg into an OCI layout" 0
check "the layout's index names the release digest" \
    sh -c "jq -e --arg d '$D' '.manifests[0].digest == \$d' '$TMP/layout/index.json' >/dev/null"
check "the layout holds the manifest bytes unchanged" \
    cmp "$TMP/m1.json" "$TMP/layout/blobs/sha256/${D#sha256:}"
check "the layout holds the weights blob" \
    cmp "$W/model.bin" "$TMP/layout/blobs/sha256/$(sha256_of "$W/model.bin")"
run sk inspect --raw --tls-verify=false "docker://$HOSTPORT1/team/clf:1.0.0"
check "skopeo inspect --raw returns the manifest bytes" cmp "$TMP/m1.json" "$TMP/out"
stop_server

# ---- second, fresh registry: copy in with skopeo, pull with mlreg ----------
DATA=$TMP/data2
start_server || finish
run sk copy --preserve-digests --dest-tls-verify=false "oci:$TMP/layout:1.0.0" \
    "docker://${MLREG_URL#http://}/team/clf:1.0.0"
expect_rc "skopeo copies the release from the layout into a fresh mlreg" 0
curl -s -f -D "$TMP/h2" -H "Accept: $OCI" -o "$TMP/m2.json" \
    "$MLREG_URL/v2/team/clf/manifests/1.0.0"
check "the second registry stores the manifest byte for byte" cmp "$TMP/m1.json" "$TMP/m2.json"
check "the second registry reports the same digest" \
    sh -c "grep -i '^docker-content-digest:' '$TMP/h2' | tr -d '\r' | grep -q '$D\$'"
run "$MLREG" pull team/clf@1.0.0 -o "$TMP/pulled"
expect_rc "mlreg pull from the second registry" 0
check "the pull names the same release digest" test "$(tail -n 1 "$TMP/out")" = "$D"
for f in model.bin tokenizer.json eval.json empty.seeds; do
    check "$f from the second registry is identical" cmp "$W/$f" "$TMP/pulled/$f"
done
run "$MLREG" pull "team/clf@$D" -o "$TMP/pulled-by-digest"
expect_rc "pull by digest from the second registry" 0
run "$MLREG" show team/clf@1.0.0 --json
check "the second registry indexed the release (metrics, git sha)" \
    sh -c "jq -e '.metrics.accuracy == 0.93 and .git_sha == \"1234567\"' '$TMP/out' >/dev/null"
run "$MLREG" push team/clf@1.0.0 --weights "$W/model.bin" --tokenizer "$W/tokenizer.json" \
    --seeds "$W/empty.seeds" --eval-report "$W/eval.json" --git-sha 1234567
expect_rc "mlreg push of the same files to the copy is a no-op" 0
check "and names the copied digest" test "$(tail -n 1 "$TMP/out")" = "$D"

finish
