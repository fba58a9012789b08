# seed.sh: seeding and the Hub client for the Hugging Face-compatible API tests (test_hf.sh,
# tests/s3/test_s3_hf.sh); sourced after lib.sh and start_server, with W (a
# work dir), MODEL and CI (an Authorization header with push) set.
#
#   blob FILE               uploads FILE to MODEL, prints its digest
#   release VERSION DIR     pushes every file under DIR as MODEL@VERSION
#                           (titles: paths in DIR, so nested), writes
#                           $W/VERSION.json for hf.test.mjs, sets DIGEST (hex)
#   hf_seed_three           releases 1.0, 2.0, 3.0 (D1, D2, D3): nested titles,
#                           a 3 MiB file, a title with a "resolve" segment
#   hf_client_ready         node, npm and @huggingface/hub are there (npm ci),
#                           or a failed check and 1
#   hub TOKEN-NAME ARGS...  runs hf.test.mjs ARGS with token $W/TOKEN-NAME.tok
#                           (empty: none); its ok / not ok lines count here

# blob FILE: uploads FILE to MODEL, prints its digest
blob() {
    d=sha256:$(sha256_of "$1")
    st=$(curl -s -o /dev/null -w '%{http_code}' -H "$CI" -X POST --data-binary @"$1" \
        "$MLREG_URL/v2/$MODEL/blobs/uploads/?digest=$d")
    [ "$st" = 201 ] || { echo "upload of $1: $st" >&2; return 1; }
    echo "$d"
}
# release VERSION DIR: pushes every file under DIR (title: its path in DIR;
# kind from the file's extension) as MODEL@VERSION; writes $W/VERSION.json
# (the expectations of hf.test.mjs) and sets DIGEST
release() {
    v=$1; dir=$2
    printf '{}' >"$W/cfg"
    cfg=$(blob "$W/cfg") || return 1
    layers="[]"; files="[]"
    # titles may hold spaces: one per line
    (cd "$dir" && find . -type f | sed 's|^\./||' | sort) >"$W/titles"
    while IFS= read -r f; do
        case $f in
        *.onnx) kind=weights ;; eval.json) kind=eval-report ;; *.json) kind=config ;;
        *) kind=docs ;;
        esac
        mt=application/vnd.mlreg.$kind.v1
        [ $kind = eval-report ] && mt=application/vnd.mlreg.eval-report.v1+json
        d=$(blob "$dir/$f") || return 1
        s=$(wc -c <"$dir/$f")
        layers=$(echo "$layers" | jq -c --arg d "$d" --argjson s "$s" --arg t "$f" --arg k "$kind" \
            --arg mt "$mt" '. + [{mediaType:$mt, digest:$d, size:$s,
              annotations:{"org.opencontainers.image.title":$t, "org.mlreg.kind":$k}}]')
        files=$(echo "$files" | jq -c --arg d "${d#sha256:}" --argjson s "$s" --arg t "$f" \
            '. + [{path:$t, sha256:$d, size:$s}]')
    done <"$W/titles"
    jq -cn --arg c "$cfg" --argjson l "$layers" --arg model "$MODEL" --arg v "$v" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2},
          layers:$l,
          annotations:{"org.mlreg.model":$model,"org.mlreg.version":$v,
                       "org.opencontainers.image.created":"2026-01-02T03:04:05.678Z"}}' \
        >"$W/m-$v.json"
    st=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "$CI" -X PUT \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @"$W/m-$v.json" "$MLREG_URL/v2/$MODEL/manifests/$v")
    [ "$st" = 201 ] || { echo "manifest $v: $st $(cat "$TMP/body")" >&2; return 1; }
    DIGEST=$(sha256_of "$W/m-$v.json")
    jq -cn --arg sha "$DIGEST" --arg v "$v" --argjson f "$files" \
        '{sha:$sha, version:$v, files:$f}' >"$W/$v.json"
}

hf_seed_three() {
    mkdir -p "$W/r1/tokenizer" "$W/r1/onnx/fp16" "$W/r1/resolve/main"
    printf '{"model_type":"demo","hidden":64}\n' >"$W/r1/config.json"
    printf '{"metrics":{"accuracy":0.91}}\n' >"$W/r1/eval.json"
    printf '{"a":1,"b":2}\n' >"$W/r1/tokenizer/vocab.json"
    printf 'a b\n' >"$W/r1/tokenizer/merges.txt"
    head -c 3145739 /dev/urandom >"$W/r1/onnx/fp16/model.onnx" # 3 MiB and a bit
    # a title whose segments are the route's words: the split is on the first
    # "/resolve/", so the file is still found
    printf 'tricky\n' >"$W/r1/resolve/main/notes.txt"
    # a name the clients percent-encode (the server decodes it for these routes)
    mkdir -p "$W/r1/docs" && printf 'spaced\n' >"$W/r1/docs/read me.txt"
    cp -R "$W/r1" "$W/r2"
    printf '{"model_type":"demo","hidden":128}\n' >"$W/r2/config.json"
    head -c 2097152 /dev/urandom >"$W/r2/onnx/fp16/model.onnx"
    cp -R "$W/r2" "$W/r3"
    printf 'bad\n' >"$W/r3/tokenizer/merges.txt"
    release 1.0 "$W/r1" && D1=$DIGEST && release 2.0 "$W/r2" && D2=$DIGEST &&
        release 3.0 "$W/r3" && D3=$DIGEST
}

hf_client_ready() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        not_ok "node and npm are installed (make deps installs them)"
        return 1
    fi
    if [ ! -f "$HFDIR/node_modules/@huggingface/hub/package.json" ]; then
        (cd "$HFDIR" && npm ci --no-audit --no-fund --ignore-scripts) >"$TMP/npm.log" 2>&1 ||
            { not_ok "npm ci in tests/hf (@huggingface/hub)"; sed 's/^/  | /' "$TMP/npm.log"; return 1; }
    fi
}
# hub TOKEN-NAME ARGS...: runs hf.test.mjs, its ok/not ok lines counted here
hub() {
    t=$1; shift
    tokv=""; [ -n "$t" ] && tokv=$(cat "$W/$t.tok")
    HF_TOKEN=$tokv MODEL=$MODEL timeout 120 node "$HFDIR/hf.test.mjs" "$@" >"$TMP/hub.out" 2>&1
    rc=$?
    grep -E '^(ok|not ok) - ' "$TMP/hub.out"
    grep -Ev '^(ok|not ok) - ' "$TMP/hub.out" | sed 's/^/# /'
    FAILS=$((FAILS + $(grep -c '^not ok - ' "$TMP/hub.out")))
    if [ $rc -ne 0 ] && ! grep -q '^not ok - ' "$TMP/hub.out"; then
        not_ok "hf.test.mjs $* exited $rc"
    fi
    grep -q '^ok - ' "$TMP/hub.out" || not_ok "hf.test.mjs $* ran its checks"
}
