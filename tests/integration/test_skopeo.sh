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
mkdir -p "$L/blobs/sha256"
printf '{}' >"$TMP/cfg"
head -c 3145728 /dev/urandom >"$TMP/weights.bin"
printf '{"metrics":{"accuracy":0.9}}' >"$TMP/eval.json"
for f in cfg weights.bin eval.json; do cp "$TMP/$f" "$L/blobs/sha256/$(sha256_of "$TMP/$f")"; done
jq -cn --arg c "sha256:$(sha256_of "$TMP/cfg")" --arg w "sha256:$(sha256_of "$TMP/weights.bin")" \
    --arg e "sha256:$(sha256_of "$TMP/eval.json")" --argjson es "$(wc -c <"$TMP/eval.json")" \
    '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
      artifactType:"application/vnd.mlreg.release.v1+json",
      config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2},
      layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:3145728,
               annotations:{"org.opencontainers.image.title":"weights.bin",
                            "org.mlreg.kind":"weights"}},
              {mediaType:"application/vnd.mlreg.eval-report.v1+json", digest:$e, size:$es,
               annotations:{"org.opencontainers.image.title":"eval.json",
                            "org.mlreg.kind":"eval-report"}}],
      annotations:{"org.mlreg.model":"team/skopeo","org.mlreg.version":"1.0.0",
                   "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$TMP/m.json"
M=$(sha256_of "$TMP/m.json")
cp "$TMP/m.json" "$L/blobs/sha256/$M"
printf '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
jq -cn --arg m "sha256:$M" --argjson s "$(wc -c <"$TMP/m.json")" \
    '{schemaVersion:2, manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json",
      digest:$m, size:$s, annotations:{"org.opencontainers.image.ref.name":"1.0.0"}}]}' \
    >"$L/index.json"

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
