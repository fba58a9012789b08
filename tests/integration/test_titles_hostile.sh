#!/bin/sh
# test_titles_hostile.sh: hand-made release manifests whose file titles are
# hostile paths, PUT with curl straight to the real `mlreg serve` (the blobs
# uploaded first, so the title is the only thing wrong). Each is refused with
# 400 MANIFEST_INVALID and the reason in the OCI error body, and nothing is
# stored: the tag answers 404 afterwards, the model is not listed. One valid
# manifest with subdirectory titles is accepted (201) and listed as sent.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

start_server || finish

MT=application/vnd.oci.image.manifest.v1+json
jqt() { jq -e "$@" >/dev/null; }
MODEL=team/titles
# three blobs: the empty config and two files
printf '{}' >"$TMP/cfg"
head -c 3000 /dev/urandom >"$TMP/b1"
head -c 2000 /dev/urandom >"$TMP/b2"
CFG=$(post_blob $MODEL "$TMP/cfg") && B1=$(post_blob $MODEL "$TMP/b1") && B2=$(post_blob $MODEL "$TMP/b2")
check "the blobs are uploaded first" [ -n "${B2:-}" ]

# manifest VERSION TITLE [TITLE2]: a release whose files carry these titles
# (kind "other"), in $TMP/m.json.
manifest() {
    jq -cn --arg v "$1" --arg t1 "$2" --arg t2 "${3:-}" --arg c "$CFG" --arg b1 "$B1" --arg b2 "$B2" \
        --arg model $MODEL '
        def layer($d; $s; $t): {mediaType: "application/vnd.mlreg.other.v1", digest: $d, size: $s,
            annotations: {"org.opencontainers.image.title": $t, "org.mlreg.kind": "other"}};
        {schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
         artifactType: "application/vnd.mlreg.release.v1+json",
         config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $c, size: 2},
         layers: ([layer($b1; 3000; $t1)] + (if $t2 == "" then [] else [layer($b2; 2000; $t2)] end)),
         annotations: {"org.mlreg.model": $model, "org.mlreg.version": $v,
                       "org.opencontainers.image.created": "2026-12-05T00:00:00Z"}}' >"$TMP/m.json"
}
put_manifest() { # VERSION
    curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H "Content-Type: $MT" \
        --data-binary @"$TMP/m.json" "$MLREG_URL/v2/$MODEL/manifests/$1"
}
# refused NAME REASON TITLE [TITLE2]: 400 MANIFEST_INVALID naming REASON
# (a fixed string), and GET of the tag is 404 afterwards.
N=0
refused() {
    name=$1; reason=$2; shift 2
    N=$((N + 1))
    v=0.$N.0
    manifest "$v" "$@"
    st=$(put_manifest "$v")
    if [ "$st" = 400 ] && [ "$(jq -r '.errors[0].code' "$TMP/body")" = MANIFEST_INVALID ] &&
        jq -r '.errors[0].message' "$TMP/body" | grep -qF -- "$reason"; then
        ok "title $name is refused (400 MANIFEST_INVALID: $reason)"
    else
        not_ok "title $name is refused (want 400 '$reason', got $st: $(head -c 300 "$TMP/body"))"
    fi
    st=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $MT" "$MLREG_URL/v2/$MODEL/manifests/$v")
    check "... and $MODEL:$v is not stored ($st)" [ "$st" = 404 ]
}

refused "'../x'" "path segment '..' may not start with '.'" "../x"
refused "'..'" "may not start with '.'" ".."
refused "'/etc/x'" "empty path segment" "/etc/x"
refused "'a//b'" "empty path segment" "a//b"
refused "'a/'" "empty path segment" "a/"
refused "'a/./b'" "path segment '.' may not start with '.'" "a/./b"
refused "'a/../b'" "path segment '..' may not start with '.'" "a/../b"
refused "'.git/config'" "path segment '.git' may not start with '.'" ".git/config"
refused "'a/.ssh/k'" "path segment '.ssh' may not start with '.'" "a/.ssh/k"
refused "'.bashrc'" "may not start with '.'" ".bashrc"
refused "of 9 segments" "more than 8 path segments deep" "a/b/c/d/e/f/g/h/i"
refused "of 256 bytes" "longer than 255 bytes" "$(printf '%0252d' 0)/x.b"
refused "with a newline" "title contains a control character" "$(printf 'a/b\nc')"
refused "with an escape sequence" "title contains a control character" "$(printf 'a/\033[2Jb')"
refused "'mlreg.lock.json/x'" "reserved for the lock file" "mlreg.lock.json/x"
refused "'MLREG.LOCK.JSON'" "reserved for the lock file" "MLREG.LOCK.JSON"
refused "'onnx' beside 'onnx/m'" "title 'onnx' is a file, but 'onnx/m' needs a directory" onnx onnx/m
refused "'ONNX' beside 'onnx/m'" "is a file, but 'onnx/m' needs a directory" ONNX onnx/m
refused "'Tok/a' beside 'tok/b'" "name one directory in two letter cases" Tok/a tok/b
refused "'a/B.bin' beside 'a/b.bin'" "differ only in letter case" a/B.bin a/b.bin
refused "'x/y' twice" "appears twice" x/y x/y

api_models() { curl -s -o "$TMP/body" -w '%{http_code}' "$MLREG_URL/api/v1/models/$MODEL/versions"; }
st=$(api_models)
check "after the refusals the model has no release ($st)" \
    sh -c "[ '$st' = 404 ] || jq -e '(.versions // .releases // []) | length == 0' '$TMP/body' >/dev/null"

# the valid one: subdirectory titles, 8 segments at most
manifest 1.0.0 "tokenizer/vocab.json" "onnx/deep/er/than/that/x/y/model.onnx"
st=$(put_manifest 1.0.0)
check "a release with subdirectory titles is accepted ($st)" [ "$st" = 201 ]
st=$(curl -s -o "$TMP/got.json" -w '%{http_code}' -H "Accept: $MT" "$MLREG_URL/v2/$MODEL/manifests/1.0.0")
check "... GET answers it ($st)" [ "$st" = 200 ]
check "... with the titles as sent" jqt '[.layers[].annotations["org.opencontainers.image.title"]]
    == ["tokenizer/vocab.json","onnx/deep/er/than/that/x/y/model.onnx"]' "$TMP/got.json"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' "$MLREG_URL/api/v1/models/$MODEL/versions/1.0.0")
check "... the API lists its files by title ($st)" jqt '[.files[].title] | sort
    == ["onnx/deep/er/than/that/x/y/model.onnx","tokenizer/vocab.json"]' "$TMP/body"
check "the server still answers" alive

finish
