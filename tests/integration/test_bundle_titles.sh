#!/bin/sh
# test_bundle_titles.sh: audit bundles of a release whose titles are paths
# ("tokenizer/vocab.json"; docs/audit-api.md).
#   - a release pushed with a hand-made manifest holding nested titles is
#     bundled: files/ holds them in their directories, SHA256SUMS lists them
#     by their paths from the bundle's root, and with no registry running
#     `sha256sum -c SHA256SUMS`, the stock `minisign -V -H` and
#     `mlreg audit verify --bundle` all pass;
#   - a bundle of a purged release keeps the directory of a purged nested
#     file, empty, and verifies;
#   - show, diff and verify list the nested titles and match them by title;
#   - in a copy of the bundle, a symlink planted in files/ (to a file of the
#     bundle, or in place of a nested directory), a stray directory, or a
#     traversal title edited into manifest.json makes the check fail;
#   - a registry serving titles that break the set rule ("a" and "a/b", a
#     directory in two letter cases) or a traversal inside a path gets
#     bundle refused, with nothing written.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
unset MLREG_KEY_PASSWORD
EMPTY=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a

said() {
    if cat "$TMP/out" "$TMP/err" | grep -Eq -- "$2"; then ok "$1"; else
        not_ok "$1 (nothing matches '$2' in:)"; cat "$TMP/out" "$TMP/err" | head -n 20 | sed 's/^/  | /'; fi
}
listing() { ls -A "$1" 2>/dev/null | tr '\n' ' '; }

command -v minisign >/dev/null 2>&1 || { not_ok "minisign is installed (make deps)"; finish; }
"$MLREG" key generate --out "$W/bot" --no-password >/dev/null 2>&1 || not_ok "key generate bot"
start_server || finish
LOGPUB=$W/log.pub
cp "$DATA/audit/log.pub" "$LOGPUB"

# ---- a release with nested titles, pushed by hand ----------------------------------------
# layer TITLE KIND FILE: one layer of the manifest being built ($LAYERS)
LAYERS='[]'
layer() {
    LAYERS=$(echo "$LAYERS" | jq -c --arg t "$1" --arg k "$2" --arg d "sha256:$(sha256_of "$3")" \
        --argjson s "$(wc -c <"$3")" \
        '. + [{mediaType:("application/vnd.mlreg." + $k + ".v1"), digest:$d, size:$s,
               annotations:{"org.opencontainers.image.title":$t, "org.mlreg.kind":$k}}]')
    post_blob m/tok "$3" >/dev/null || not_ok "upload $1"
}
# put_release VERSION: PUTs the manifest of $LAYERS as m/tok@VERSION
put_release() {
    jq -cn --arg v "$1" --argjson l "$LAYERS" --arg e "$EMPTY" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$e, size:2},
          layers:$l,
          annotations:{"org.mlreg.model":"m/tok", "org.mlreg.version":$v,
                       "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$W/m-$1.json"
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @"$W/m-$1.json" "$MLREG_URL/v2/m/tok/manifests/$1")
    if [ "$code" = 201 ]; then ok "PUT m/tok@$1 with nested titles"; else
        not_ok "PUT m/tok@$1 with nested titles (got $code: $(head -c 300 "$TMP/body"))"; fi
}
printf '{}' >"$W/cfg"
post_blob m/tok "$W/cfg" >/dev/null || not_ok "upload the empty config"
head -c 3000 /dev/urandom >"$W/model.safetensors"
printf '{"a":1,"b":2}' >"$W/vocab.json"
printf '#version: 0.2\na b\n' >"$W/merges.txt"
printf '{"pad":"<pad>"}' >"$W/special.json"
printf '{"pad":"<unk>"}' >"$W/special2.json"
layer model.safetensors weights "$W/model.safetensors"
layer tokenizer/vocab.json tokenizer "$W/vocab.json"
layer tokenizer/merges.txt tokenizer "$W/merges.txt"
layer 'tokenizer/extra dir/special_tokens_map.json' tokenizer "$W/special.json"
put_release 1.0
LAYERS='[]'
layer model.safetensors weights "$W/model.safetensors"
layer tokenizer/vocab.json tokenizer "$W/vocab.json"
layer 'tokenizer/extra dir/special_tokens_map.json' tokenizer "$W/special2.json"
put_release 1.1
run "$MLREG" sign m/tok@1.0 --key "$W/bot.key"
expect_rc "sign m/tok@1.0" 0

# ---- readers of titles ---------------------------------------------------------------------
run "$MLREG" show m/tok@1.0
expect_rc "show m/tok@1.0" 0
said "show lists a nested title" 'tokenizer  .*tokenizer/vocab\.json$'
said "show lists a title with a space in a directory" 'tokenizer/extra dir/special_tokens_map\.json$'
run "$MLREG" diff m/tok@1.0 m/tok@1.1 --json
expect_rc "diff 1.0 1.1 --json" 0
check "diff matches nested titles: merges removed, special changed, vocab unchanged" sh -c \
    "jq -e '(.files.removed | map(.title)) == [\"tokenizer/merges.txt\"] and
     (.files.changed | map(.title)) == [\"tokenizer/extra dir/special_tokens_map.json\"] and
     (.files.added | length) == 0 and .files.unchanged == 2' '$TMP/out' >/dev/null"
run "$MLREG" diff m/tok@1.0 m/tok@1.1
said "diff (text) names the removed nested file" '^  - .*tokenizer/merges\.txt'
run "$MLREG" verify m/tok@1.0 --trusted-key "$W/bot.pub"
expect_rc "verify m/tok@1.0" 0
said "verify lists the nested files as ok" 'tokenizer/vocab\.json +[0-9.]+ [A-Za-z]* +ok'

# ---- the bundle ----------------------------------------------------------------------------
B=$W/bundle
run "$MLREG" bundle m/tok@1.0 -o "$B"
expect_rc "mlreg bundle m/tok@1.0 (nested titles)" 0
# 1.1 purged: its only file of its own is the one in "tokenizer/extra dir/"
run "$MLREG" purge m/tok@1.1 --reason "takedown"
expect_rc "purge m/tok@1.1" 0
BP=$W/bundle-purged
run "$MLREG" bundle m/tok@1.1 -o "$BP"
expect_rc "bundle of the purged m/tok@1.1" 0
said "... saying it is purged" '^PURGED: audit entry'
check "the purged file is not in the bundle, its directory is, empty" \
    sh -c "test -d '$BP/files/tokenizer/extra dir' && test -z \"\$(ls -A '$BP/files/tokenizer/extra dir')\""
check "the files 1.0 shares are in it" cmp "$BP/files/tokenizer/vocab.json" "$W/vocab.json"
stop_server
MLREG_URL=http://127.0.0.1:1
export MLREG_URL
check "files/tokenizer/vocab.json holds the vocab" cmp "$B/files/tokenizer/vocab.json" "$W/vocab.json"
check "files/tokenizer/extra dir/special_tokens_map.json holds its file" \
    cmp "$B/files/tokenizer/extra dir/special_tokens_map.json" "$W/special.json"
check "files/model.safetensors holds the weights" cmp "$B/files/model.safetensors" "$W/model.safetensors"
check "SHA256SUMS lists the nested files by their paths from the bundle's root" \
    sh -c "grep -qx '$(sha256_of "$W/vocab.json")  files/tokenizer/vocab.json' '$B/SHA256SUMS' &&
           grep -qx '$(sha256_of "$W/special.json")  files/tokenizer/extra dir/special_tokens_map.json' '$B/SHA256SUMS'"
check "SHA256SUMS has manifest.json and the four files" test "$(wc -l <"$B/SHA256SUMS")" = 5
run sh -c "cd '$B' && sha256sum -c SHA256SUMS"
expect_rc "sha256sum -c SHA256SUMS succeeds in the bundle" 0
said "... checking a nested file" '^files/tokenizer/merges\.txt: OK$'
run sh -c "cd '$B' && minisign -V -H -p '$W/bot.pub' -m manifest.json"
expect_rc "the stock minisign -V -H verifies manifest.json.minisig" 0
run "$MLREG" audit verify --bundle "$B" --log-key "$LOGPUB"
expect_rc "audit verify --bundle passes offline" 0

run "$MLREG" audit verify --bundle "$BP" --log-key "$LOGPUB"
expect_rc "audit verify --bundle passes for the purged release's bundle" 0
run sh -c "cd '$BP' && sha256sum -c SHA256SUMS"
expect_rc "sha256sum -c passes there too" 0

# copy NAME: a fresh copy of the bundle in $C
copy() { C=$W/$1; rm -rf "$C"; cp -a "$B" "$C"; }
copy link-in
ln -s ../model.safetensors "$C/files/tokenizer/planted"
run "$MLREG" audit verify --bundle "$C" --log-key "$LOGPUB"
expect_rc "a symlink planted in files/tokenizer/ fails the bundle" 1
said "... naming it" 'files/tokenizer/planted: a symbolic link'
copy link-same
cp "$C/files/tokenizer/vocab.json" "$W/vocab.outside"
ln -sf "$W/vocab.outside" "$C/files/tokenizer/vocab.json"
run sh -c "cd '$C' && sha256sum -c SHA256SUMS"
expect_rc "a nested file replaced by a symlink to the same bytes fools sha256sum -c" 0
run "$MLREG" audit verify --bundle "$C" --log-key "$LOGPUB"
expect_rc "... but not audit verify --bundle" 1
said "... naming it" 'files/tokenizer/vocab\.json: a symbolic link'
copy link-dir
mv "$C/files/tokenizer" "$W/tokenizer.outside"
ln -s "$W/tokenizer.outside" "$C/files/tokenizer"
run "$MLREG" audit verify --bundle "$C" --log-key "$LOGPUB"
expect_rc "files/tokenizer as a symlink to a directory outside fails the bundle" 1
said "... naming it" 'files/tokenizer.*a symbolic link'
copy stray-dir
mkdir "$C/files/tokenizer/empty"
run "$MLREG" audit verify --bundle "$C" --log-key "$LOGPUB"
expect_rc "a stray directory in files/ fails the bundle" 1
said "... naming it" 'files/tokenizer/empty/ is not a directory'
copy traversal
sed -i 's|"tokenizer/vocab.json"|"../vocab.json"|' "$C/manifest.json"
check "the title was edited in manifest.json" grep -q '"\.\./vocab\.json"' "$C/manifest.json"
run "$MLREG" audit verify --bundle "$C" --log-key "$LOGPUB"
expect_rc "a traversal title edited into manifest.json fails the bundle" 1
said "... which the signed log no longer vouches for" "not the manifest's"

# ---- a registry serving titles that break the set rule ----------------------------------
F=$W/fake
mkdir -p "$F/jail/out"
printf 'pwned' >"$F/pwned"
PD=sha256:$(sha256_of "$F/pwned")
routes='{}'
# evil NAME TITLE1 TITLE2: a release evil/NAME@1.0.0 with two files
evil() {
    jq -cn --arg m "evil/$1" --arg e "$EMPTY" --arg d "$PD" --arg t1 "$2" --arg t2 "$3" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$e, size:2},
          layers:[$t1, $t2] | map({mediaType:"application/vnd.mlreg.weights.v1", digest:$d,
                  size:5, annotations:{"org.opencontainers.image.title":.,
                                       "org.mlreg.kind":"weights"}}),
          annotations:{"org.mlreg.model":$m, "org.mlreg.version":"1.0.0",
                       "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$F/$1.json"
    routes=$(echo "$routes" | jq -c --arg p "/v2/evil/$1/manifests/1.0.0" --arg f "$F/$1.json" \
        --arg d "sha256:$(sha256_of "$F/$1.json")" --arg b "/v2/evil/$1/blobs/$PD" --arg pf "$F/pwned" \
        '.[$p] = {file:$f, headers:{"Content-Type":"application/vnd.oci.image.manifest.v1+json",
                                    "Docker-Content-Digest":$d}} |
         .[$b] = {file:$pf, headers:{"Content-Type":"application/octet-stream"}}')
}
evil good a/x.bin a/y.bin
printf '{"signatures":[]}' >"$F/none-sigs.json"
printf '{"attestations":[]}' >"$F/none-atts.json"
routes=$(echo "$routes" | jq -c --arg s "$F/none-sigs.json" --arg a "$F/none-atts.json" \
    '.["/api/v1/models/evil/good/versions/1.0.0/signatures"] = {file:$s} |
     .["/api/v1/models/evil/good/versions/1.0.0/attestations"] = {file:$a}')
evil filedir a a/b
evil dircase A/x.bin a/y.bin
evil deeptrav a/x.bin 'a/../../evil'
echo "$routes" >"$F/routes.json"
python3 "$MLREG_ROOT/tests/integration/fake_registry.py" "$F/routes.json" "$F/port" 2>"$F/log" &
FAKE_PID=$!
i=0
while [ ! -s "$F/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
FAKE="http://127.0.0.1:$(cat "$F/port")"
run "$MLREG" bundle evil/good@1.0.0 -o "$F/jail/good" --registry "$FAKE"
said "fake registry: bundle writes an honest nested title (the fake works)" '^  weights +a/y\.bin .* verified$'
said "... and stops only at the audit log key the fake lacks" 'fetching the audit log key'
check "fake registry: ... and leaves nothing behind" test "$(listing "$F/jail")" = "out "
for m in filedir dircase deeptrav; do
    run "$MLREG" bundle "evil/$m@1.0.0" -o "$F/jail/bundle" --registry "$FAKE"
    expect_rc "fake registry: bundle of the '$m' release exits 1" 1
    check "fake registry: '$m' writes nothing" test "$(listing "$F/jail")" = "out "
done
run "$MLREG" bundle evil/filedir@1.0.0 -o "$F/jail/bundle" --registry "$FAKE"
said "fake registry: the a and a/b refusal says why" "'a' is a file, but 'a/b' needs a directory"
run "$MLREG" bundle evil/dircase@1.0.0 -o "$F/jail/bundle" --registry "$FAKE"
said "fake registry: the A/ and a/ refusal says why" 'one directory in two letter cases'
check "the traversal wrote no file named evil anywhere" sh -c "! find '$TMP' -name evil | grep -q ."
kill "$FAKE_PID" 2>/dev/null
wait "$FAKE_PID" 2>/dev/null
finish
