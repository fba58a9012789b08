#!/bin/sh
# Interop with an independent OCI client: skopeo copies a release from an OCI
# layout into mlreg (twice: a retried push is a no-op) and back out
# to an OCI layout, byte for byte.
. "$(dirname "$0")/lib.sh"

if ! command -v skopeo >/dev/null 2>&1; then
    not_ok "skopeo is installed (make deps installs it)"
    finish
fi
start_server || finish
HOSTPORT=${MLREG_URL#http://}
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$TMP/policy.json"
sk() { skopeo --policy "$TMP/policy.json" --insecure-policy copy --quiet "$@" 2>>"$TMP/skopeo.log"; }

# an OCI layout holding one release: empty config, 3 MiB of weights, eval report
L=$TMP/layout
oci_release_layout "$L" team/skopeo 3145728

check "skopeo copies an OCI layout into mlreg" \
    sk --dest-tls-verify=false "oci:$L:1.0.0" "docker://$HOSTPORT/team/skopeo:1.0.0"
expect_status "the pushed release resolves" 200 GET /v2/team/skopeo/manifests/1.0.0
check "mlreg stored the manifest byte for byte" cmp -s "$TMP/body" "$TMP/m.json"
expect_status "the release is in the JSON API" 200 GET \
    /api/v1/models/team/skopeo/versions/1.0.0

# a retried export: the same release pushed again is a no-op (blobs exist,
# identical manifest), and the tag still resolves to the same bytes
check "skopeo pushing the same release again succeeds" \
    sk --dest-tls-verify=false "oci:$L:1.0.0" "docker://$HOSTPORT/team/skopeo:1.0.0"
expect_status "the release still resolves after the retry" 200 GET \
    /v2/team/skopeo/manifests/1.0.0
check "the retry kept the same manifest" cmp -s "$TMP/body" "$TMP/m.json"

check "skopeo copies from mlreg back to an OCI layout" \
    sk --src-tls-verify=false "docker://$HOSTPORT/team/skopeo:1.0.0" "oci:$TMP/out:1.0.0"
for f in cfg weights.bin eval.json m.json; do
    check "round trip keeps $f byte for byte" \
        cmp -s "$TMP/out/blobs/sha256/$(sha256_of "$TMP/$f")" "$TMP/$f"
done
[ "$FAILS" -eq 0 ] || cat "$TMP/skopeo.log"
finish
