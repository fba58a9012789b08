#!/bin/sh
# test_purge.sh: purging a release (docs/lifecycle.md, "Purge") with the real
# server and CLI: admin only (401/403, usage errors, hostile bodies); a
# release a stage holds is refused naming the stage; the purge deletes the
# files no other release shares (gone from the data directory) and keeps the
# shared ones, the manifest's own bytes and the eval report; reads of the
# release and of its manifest (by tag and by digest) answer 410 naming the
# purge's audit entry; pull, promote, a second purge and a push of the same
# version are refused; the other releases pull; the state survives a
# restart; the audit log shows release.purge, gc.collect and gc.done and
# `mlreg audit verify` passes.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
out_has() {
    if grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in:)"; sed 's/^/  | /' "$TMP/out"; fi
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
blob_path() { h=$(sha256sum "$1" | cut -c1-64); echo "$DATA/blobs/sha256/$(echo "$h" | cut -c1-2)/$h"; }
stored() { [ -f "$(blob_path "$1")" ]; }

for who in ci rel admin reader; do tok >"$W/$who.tok"; done
h() { hash "$(cat "$W/$1.tok")"; }
cat >"$W/config.json" <<EOF
{
  "tokens": [
    { "name": "ci", "sha256": "$(h ci)", "roles": ["read", "push"] },
    { "name": "release-mgr", "sha256": "$(h rel)",
      "roles": ["read", "promote:dev", "promote:staging", "promote:production"] },
    { "name": "root", "sha256": "$(h admin)", "roles": ["admin"] },
    { "name": "reader", "sha256": "$(h reader)", "roles": ["read"] }
  ]
}
EOF
start_server --config "$W/config.json" || finish
as() { echo "Authorization: Bearer $(cat "$W/$1.tok")"; }

# 1.0 and 2.0 share the tokenizer; each has its own weights and eval report
head -c 4096 /dev/urandom >"$W/tokenizer.json"
for v in 1.0 2.0 3.0; do
    head -c 3000 /dev/urandom >"$W/weights-$v.bin"
    printf '{"dataset":"val","metrics":{"accuracy":0.9%s}}\n' "$(echo $v | tr -d .)" \
        >"$W/eval-$v.json"
    run "$MLREG" push --token-file "$W/ci.tok" "m/clf@$v" --weights "$W/weights-$v.bin" \
        --tokenizer "$W/tokenizer.json" --eval-report "$W/eval-$v.json"
    expect_rc "push m/clf@$v" 0
done
D10=$(curl -s -H "$(as reader)" "$MLREG_URL/api/v1/models/m/clf/versions/1.0" | jq -r .digest)
run "$MLREG" promote --token-file "$W/rel.tok" m/clf@2.0 --to staging
expect_rc "promote 2.0 to staging" 0

# ---- roles, usage and hostile bodies --------------------------------------------
PURL=$MLREG_URL/api/v1/models/m/clf/versions/1.0/purge
run "$MLREG" purge --token-file "$W/admin.tok" m/clf@1.0
expect_rc "purge without --reason: exit 2" 2
err_has "... asking for a reason" 'reason TEXT is required'
run "$MLREG" purge --token-file "$W/rel.tok" m/clf@1.0 --reason "takedown"
expect_rc "purge by a promote token: exit 1" 1
err_has "... forbidden, naming admin" 'forbidden.*admin'
expect_status "purge without a token: 401" 401 POST /api/v1/models/m/clf/versions/1.0/purge \
    --data '{"reason":"x"}'
expect_status "purge by a reader: 403" 403 POST /api/v1/models/m/clf/versions/1.0/purge \
    -H "$(as reader)" --data '{"reason":"x"}'
expect_status "a body without reason: 400" 400 POST /api/v1/models/m/clf/versions/1.0/purge \
    -H "$(as admin)" --data '{}'
expect_status "an unknown member: 400" 400 POST /api/v1/models/m/clf/versions/1.0/purge \
    -H "$(as admin)" --data '{"reason":"x","rollback":true}'
expect_status "a body that is not JSON: 400" 400 POST /api/v1/models/m/clf/versions/1.0/purge \
    -H "$(as admin)" --data '{"reason":'
expect_status "a reason with control characters: 400" 400 POST \
    /api/v1/models/m/clf/versions/1.0/purge -H "$(as admin)" --data '{"reason":"a\u0007b"}'
head -c 3000 /dev/zero | tr '\0' a >"$W/long"
expect_status "a reason over 1024 bytes: 400" 400 POST /api/v1/models/m/clf/versions/1.0/purge \
    -H "$(as admin)" --data "{\"reason\":\"$(cat "$W/long")\"}"
expect_status "an unknown release: 404" 404 POST /api/v1/models/m/clf/versions/9.9/purge \
    -H "$(as admin)" --data '{"reason":"x"}'
expect_status "a traversal in the version: 400, nothing purged" 400 POST \
    "/api/v1/models/m/clf/versions/..%2F1.0/purge" -H "$(as admin)" --data '{"reason":"x"}'
check "nothing was purged so far" sh -c \
    "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H '$(as reader)' '$MLREG_URL/api/v1/models/m/clf/versions/1.0')\" = 200 ]"

run "$MLREG" purge --token-file "$W/admin.tok" m/clf@2.0 --reason "takedown"
expect_rc "purge of a release staging holds: exit 1" 1
err_has "... naming the stage and the way out" 'holds stage staging.*withdraw --rollback'

# ---- the purge -----------------------------------------------------------------
run "$MLREG" purge --token-file "$W/admin.tok" m/clf@1.0 --reason "licence takedown #42"
expect_rc "purge m/clf@1.0 by admin: exit 0" 0
out_has "it says what it purged and the audit entry" \
    '^purged m/clf@1\.0 \(sha256:[0-9a-f]{64}\) as root at .* \(audit entry [0-9]+\): licence takedown #42$'
out_has "it lists the deleted weights" "deleted sha256:$(sha256sum "$W/weights-1.0.bin" | cut -c1-64) \\(3000 bytes\\)"
out_has "one file deleted, 3000 bytes" '^1 files deleted, 3000 bytes reclaimed'
SEQ=$(sed -n 's/.*(audit entry \([0-9]*\)).*/\1/p' "$TMP/out" | head -n 1)
check "the weights of 1.0 are gone from the store" sh -c "! [ -e '$(blob_path "$W/weights-1.0.bin")' ]"
check "the shared tokenizer stays" stored "$W/tokenizer.json"
check "the eval report of 1.0 stays (the record's metrics)" stored "$W/eval-1.0.json"
check "the weights of 2.0 stay" stored "$W/weights-2.0.bin"

# ---- 410 Gone everywhere -------------------------------------------------------
expect_status "GET the release: 410" 410 GET /api/v1/models/m/clf/versions/1.0 -H "$(as reader)"
check "... naming the purge's audit entry and reason" sh -c \
    "grep -q 'RELEASE_PURGED' '$TMP/body' && grep -q 'audit entry $SEQ' '$TMP/body' && grep -q 'licence takedown' '$TMP/body'"
expect_status "GET its manifest by tag: 410" 410 GET /v2/m/clf/manifests/1.0 -H "$(as reader)" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json'
check "... with an OCI error body naming the entry" sh -c \
    "grep -q 'MANIFEST_UNKNOWN' '$TMP/body' && grep -q 'audit entry $SEQ' '$TMP/body'"
expect_status "GET its manifest by digest: 410" 410 GET "/v2/m/clf/manifests/$D10" \
    -H "$(as reader)" -H 'Accept: application/vnd.oci.image.manifest.v1+json'
expect_status "HEAD its manifest: 410" 410 HEAD /v2/m/clf/manifests/1.0 -H "$(as reader)"
expect_status "an unknown tag stays 404" 404 GET /v2/m/clf/manifests/7.7 -H "$(as reader)"
expect_status "GET its deleted weights: 404" 404 GET \
    "/v2/m/clf/blobs/sha256:$(sha256sum "$W/weights-1.0.bin" | cut -c1-64)" -H "$(as reader)"
run "$MLREG" pull --token-file "$W/reader.tok" m/clf@1.0 -o "$W/dep1"
expect_rc "pull of the purged release: exit 1" 1
err_has "... saying it was purged, by whom and why" 'purged by root at .*licence takedown #42'
check "... and wrote nothing" sh -c "! [ -e '$W/dep1/weights-1.0.bin' ]"
run "$MLREG" promote --token-file "$W/rel.tok" m/clf@1.0 --to dev
expect_rc "promote of the purged release: exit 1" 1
err_has "... saying it was purged" 'was purged'
run "$MLREG" purge --token-file "$W/admin.tok" m/clf@1.0 --reason "again"
expect_rc "purging it again: exit 1" 1
err_has "... purged already (410)" 'was purged.*HTTP 410'
run "$MLREG" push --token-file "$W/ci.tok" "m/clf@1.0" --weights "$W/weights-1.0.bin" \
    --tokenizer "$W/tokenizer.json" --eval-report "$W/eval-1.0.json"
expect_rc "pushing the purged version again: refused" 1
err_has "... saying it was purged" 'was purged'

# ---- what stays -----------------------------------------------------------------
for v in 2.0 3.0; do
    run "$MLREG" pull --token-file "$W/reader.tok" "m/clf@$v" -o "$W/dep-$v"
    expect_rc "pull m/clf@$v (shares the tokenizer): exit 0" 0
done
check "the pulled tokenizer is intact" cmp -s "$W/tokenizer.json" "$W/dep-2.0/tokenizer.json"
run "$MLREG" status --token-file "$W/reader.tok" m/clf
out_has "status lists it as purged" '^  1\.0  PURGED by root at .* \(audit entry [0-9]+\): licence takedown #42$'

# ---- restart, audit ------------------------------------------------------------------
stop_server
start_server --config "$W/config.json" || finish
expect_status "after a restart: still 410" 410 GET /api/v1/models/m/clf/versions/1.0 \
    -H "$(as reader)"
run "$MLREG" audit log --token-file "$W/reader.tok" --model m/clf
out_has "the audit log shows the purge with its reason" 'root +release\.purge +.*m/clf@1\.0.* ok +licence takedown #42'
run "$MLREG" audit log --token-file "$W/reader.tok"
out_has "... and the deletion of its files" 'root +gc\.collect '
out_has "... done" 'root +gc\.done '
curl -s "$MLREG_URL/api/v1/audit/key" -H "$(as reader)" >"$W/log.pub"
run "$MLREG" audit verify --token-file "$W/reader.tok" --log-key "$W/log.pub"
expect_rc "audit verify passes" 0
finish
