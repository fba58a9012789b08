#!/bin/sh
# test_hf.sh: the Hugging Face-compatible read API (docs/huggingface.md)
# against the real server: the Hub client @huggingface/hub from npm
# (tests/hf, `make deps` installs it) reads releases whose titles are
# nested paths, one of them a few MiB: modelInfo, listFiles, downloadFile of
# every file checked against its sha256, a Range read; a stage resolves to
# what it holds at that moment; a withdrawn release and missing or wrong
# tokens are refused; a token made at runtime is taken as hf_mlreg_... by
# the client itself (no custom fetch), on the Hub routes only. curl checks
# the raw answers: headers, hostile paths (refused before routing in the
# Hub's shape, /v2/ keeping its own), unknown model/revision/file, HEAD, a
# Range past the end, paths that belong to the other routes.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

HFDIR=$MLREG_ROOT/tests/hf
jqt() { jq -e "$@" >/dev/null; }
W=$TMP/work
mkdir -p "$W"
# the Hub client refuses a token that does not start with hf_
for who in ci rel reader other admin; do echo "hf_$(tok)" >"$W/$who.tok"; done
h() { hash "$(cat "$W/$1.tok")"; }
cat >"$W/config.json" <<EOF
{
  "tokens": [
    { "name": "ci", "sha256": "$(h ci)", "roles": ["read", "push"] },
    { "name": "rel", "sha256": "$(h rel)",
      "roles": ["read", "promote:dev", "promote:staging", "promote:production"] },
    { "name": "reader", "sha256": "$(h reader)", "roles": ["read"] },
    { "name": "other", "sha256": "$(h other)", "roles": ["read@other"] },
    { "name": "admin", "sha256": "$(h admin)", "roles": ["admin"] }
  ]
}
EOF
start_server --config "$W/config.json" || finish
AUTH="Authorization: Bearer $(cat "$W/reader.tok")"
CI="Authorization: Bearer $(cat "$W/ci.tok")"
MODEL=demo/llm

# ---- seed: releases pushed through /v2/ with nested titles -------------------
. "$HFDIR/seed.sh"
hf_seed_three || { not_ok "seeding three releases with nested titles"; finish; }
ok "seeded demo/llm@1.0, 2.0, 3.0 with nested titles and a 3 MiB file"

# ---- the Hub client --------------------------------------------------------------
hf_client_ready || finish
hub reader release 1.0 "$W/1.0.json"
hub reader release "$D2" "$W/2.0.json"
# the clients encode the ':' of sha256:HEX (encodeURIComponent)
hub reader release "sha256:$D1" "$W/1.0.json"

# a stage resolves to what it holds at that moment
promote() {
    st=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$W/rel.tok")" \
        -H 'Content-Type: application/json' -d "{\"version\":\"$1\",\"to\":\"$2\"}" \
        "$MLREG_URL/api/v1/models/$MODEL/promotions")
    [ "$st" = 200 ] || [ "$st" = 201 ] || { echo "promote $1 to $2: $st $(head -c 300 "$TMP/body")"; return 1; }
}
hub reader refused production 404
for s in dev staging production; do promote 1.0 $s || not_ok "promote 1.0 to $s"; done
hub reader release production "$W/1.0.json"
hub reader release main "$W/1.0.json"
for s in dev staging production; do promote 2.0 $s || not_ok "promote 2.0 to $s"; done
hub reader release production "$W/2.0.json"
hub reader release main "$W/2.0.json"

# a withdrawn release is refused, by version and by digest
st=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$W/rel.tok")" \
    -H 'Content-Type: application/json' -d '{"reason":"bad merges"}' \
    "$MLREG_URL/api/v1/models/$MODEL/versions/3.0/withdraw")
[ "$st" = 200 ] || not_ok "withdraw 3.0 ($st: $(head -c 300 "$TMP/body"))"
hub reader refused 3.0 403
hub reader refused "$D3" 403
# tokens: none, a wrong one, one that may not read the model
hub "" refused 1.0 401
echo "hf_$(tok)" >"$W/wrong.tok"
hub wrong refused 1.0 401
hub other refused 1.0 403

# a token made at runtime ("mlreg_..."): the Hub client wants "hf_...", and
# the Hub routes take "hf_" + the token; elsewhere it is no token
run env MLREG_TOKEN="$(cat "$W/admin.tok")" "$MLREG" token create --name hfreader --role read --hf
expect_rc "token create --hf exits 0" 0
sed -n 1p "$TMP/out" >"$W/rt.tok"
check "... prints hf_mlreg_ and the token" grep -Eq '^hf_mlreg_[A-Za-z0-9_-]{43}$' "$W/rt.tok"
check "... and says where that form is taken" grep -q 'HF_TOKEN.*Hub routes only' "$TMP/err"
RT=$(cat "$W/rt.tok")
hub rt release 1.0 "$W/1.0.json"
expect_status "the runtime token as is (huggingface_hub sends HF_TOKEN as is): 200" 200 GET \
    "/$MODEL/resolve/1.0/config.json" -H "Authorization: Bearer ${RT#hf_}"
expect_status "hf_ + the runtime token on model info: 200" 200 GET "/api/models/$MODEL" \
    -H "Authorization: Bearer $RT"
expect_status "hf_ + the runtime token on /v2/: 401 (the Hub routes only)" 401 GET \
    "/v2/$MODEL/manifests/1.0" -H "Authorization: Bearer $RT"
expect_status "hf_ + the runtime token on /api/v1/: 401" 401 GET "/api/v1/models/$MODEL" \
    -H "Authorization: Bearer $RT"
expect_status "the runtime token as is on /v2/: 200" 200 GET "/v2/$MODEL/manifests/1.0" \
    -H "Authorization: Bearer ${RT#hf_}"
expect_status "hf_hf_ + the token: 401" 401 GET "/$MODEL/resolve/1.0/config.json" \
    -H "Authorization: Bearer hf_$RT"
expect_status "hf_ + a token made of the prefix alone: 401" 401 GET "/$MODEL/resolve/1.0/config.json" \
    -H "Authorization: Bearer hf_mlreg_"
expect_status "hf_ + the token with a byte changed: 401" 401 GET "/$MODEL/resolve/1.0/config.json" \
    -H "Authorization: Bearer ${RT%?}$(case $RT in *A) echo B ;; *) echo A ;; esac)"
check "... X-Error-Code GatedRepo" [ "$(header X-Error-Code)" = GatedRepo ]
expect_status "hf_ + the token over Basic: 200" 200 GET "/$MODEL/resolve/1.0/config.json" \
    -u "x:$RT"
run env MLREG_TOKEN="$(cat "$W/admin.tok")" "$MLREG" token revoke hfreader
expect_rc "token revoke hfreader exits 0" 0
hub rt refused 1.0 401
check "the server log holds neither form of the token" \
    sh -c "! grep -qF '${RT#hf_}' '$TMP/server.log'"

# ---- curl: the raw answers -------------------------------------------------------
R=/$MODEL/resolve
expect_status "HEAD of a file: 200" 200 HEAD "$R/1.0/tokenizer/vocab.json" -H "$AUTH"
check "... Content-Length is the file's size" [ "$(header Content-Length)" = "$(wc -c <"$W/r1/tokenizer/vocab.json")" ]
check "... ETag is its sha256, quoted" [ "$(header ETag)" = "\"$(sha256_of "$W/r1/tokenizer/vocab.json")\"" ]
check "... X-Repo-Commit is the release digest" [ "$(header X-Repo-Commit)" = "$D1" ]
check "... no body" [ "$(curl -s -I -o /dev/null -w '%{size_download}' -H "$AUTH" "$MLREG_URL$R/1.0/tokenizer/vocab.json")" = 0 ]
expect_status "GET of a file: 200" 200 GET "$R/1.0/resolve/main/notes.txt" -H "$AUTH"
check "... a title with a 'resolve' segment is found and served" cmp -s "$TMP/body" "$W/r1/resolve/main/notes.txt"
expect_status "GET by sha256:HEX written as is: 200" 200 GET "$R/sha256:$D1/config.json" -H "$AUTH"
check "... the file of that release" cmp -s "$TMP/body" "$W/r1/config.json"
expect_status "a Range read: 206" 206 GET "$R/1.0/onnx/fp16/model.onnx" -H "$AUTH" -H 'Range: bytes=10-19'
check "... Content-Range names the size" [ "$(header Content-Range)" = "bytes 10-19/3145739" ]
check "... the bytes" sh -c "tail -c +11 '$W/r1/onnx/fp16/model.onnx' | head -c 10 | cmp -s - '$TMP/body'"
expect_status "a Range past the end: 416" 416 GET "$R/1.0/config.json" -H "$AUTH" -H 'Range: bytes=99999-'
check "... with Content-Range bytes */SIZE" [ "$(header Content-Range)" = "bytes */$(wc -c <"$W/r1/config.json")" ]
check "... and a Hub error body" jqt '.error | test("not satisfiable")' "$TMP/body"

# errors as the Hub answers them
hub_error() { # NAME STATUS CODE PATH
    expect_status "$1: $2" "$2" GET "$4" -H "$AUTH"
    got=$(header X-Error-Code)
    if [ "$got" = "$3" ] && jqt '.error | type == "string"' "$TMP/body" >/dev/null; then
        ok "... X-Error-Code $3 and {\"error\"}"
    else not_ok "... X-Error-Code $3 and {\"error\"} (got '$got': $(head -c 200 "$TMP/body"))"; fi
}
hub_error "an unknown model" 404 RepoNotFound "/no/such/resolve/1.0/config.json"
hub_error "an unknown model at a stage" 404 RepoNotFound "/no/such/resolve/production/config.json"
hub_error "an unknown model at a digest" 404 RepoNotFound "/no/such/resolve/$D1/config.json"
hub_error "an unknown model at no revision form" 404 RepoNotFound "/no/such/resolve/no~tag/config.json"
hub_error "an unknown version" 404 RevisionNotFound "$R/9.9/config.json"
hub_error "an unknown digest" 404 RevisionNotFound "$R/$(printf '%064d' 0)/config.json"
hub_error "a revision that is no version" 404 RevisionNotFound "$R/no~tag/config.json"
hub_error "an oversized revision" 404 RevisionNotFound "$R/$(head -c 300 /dev/zero | tr '\0' a)/config.json"
hub_error "an unknown file" 404 EntryNotFound "$R/1.0/tokenizer/nope.json"
hub_error "a directory is no file" 404 EntryNotFound "$R/1.0/tokenizer"
hub_error "a file path with an empty segment" 404 EntryNotFound "$R/1.0/tokenizer//vocab.json"
hub_error "a file path with a dot segment" 404 EntryNotFound "$R/1.0/.hidden/x"
hub_error "an oversized file path" 404 EntryNotFound "$R/1.0/$(head -c 5000 /dev/zero | tr '\0' a)"
hub_error "a withdrawn release" 403 DisabledRepo "$R/3.0/config.json"
check "... X-Error-Message as huggingface_hub reads a disabled repo" \
    [ "$(header X-Error-Message)" = "Access to this resource is disabled." ]
check "... the body says who withdrew it and why" jqt '.error | test("withdrawn by rel.*bad merges")' "$TMP/body"
hub_error "a tree under a file" 404 EntryNotFound "/api/models/$MODEL/tree/1.0/config.json"
hub_error "a tree of an unknown directory" 404 EntryNotFound "/api/models/$MODEL/tree/1.0/nope"
hub_error "model info of an unknown model" 404 RepoNotFound "/api/models/no/such"
expect_status "no token: 401" 401 GET "$R/1.0/config.json"
check "... X-Error-Code GatedRepo" [ "$(header X-Error-Code)" = GatedRepo ]
expect_status "a token limited to other/: 403" 403 GET "$R/1.0/config.json" \
    -H "Authorization: Bearer $(cat "$W/other.tok")"
check "... X-Error-Code GatedRepo" [ "$(header X-Error-Code)" = GatedRepo ]

# percent-encoding: decoded in the revision and the file path only
expect_status "a revision sha256%3AHEX: 200" 200 GET "$R/sha256%3A$D1/config.json" -H "$AUTH"
check "... the file of that release" cmp -s "$TMP/body" "$W/r1/config.json"
expect_status "a file name with %20: 200" 200 GET "$R/1.0/docs/read%20me.txt" -H "$AUTH"
check "... that file" cmp -s "$TMP/body" "$W/r1/docs/read me.txt"
hub_error "an encoded dot segment in the file path" 404 EntryNotFound "$R/1.0/tokenizer/%2e%2e/config.json"
hub_error "an encoded dot segment as the file path" 404 EntryNotFound "$R/1.0/%2E%2E"
expect_status "an encoded '/' in the file path: 400" 400 GET "$R/1.0/tokenizer%2Fvocab.json" -H "$AUTH"
check "... a Hub error" jqt '.error | test("encoded NUL or")' "$TMP/body"
expect_status "an encoded NUL: 400" 400 GET "$R/1.0/config.json%00.txt" -H "$AUTH"
expect_status "a malformed escape: 400" 400 GET "$R/1.0/config%zz.json" -H "$AUTH"
expect_status "a truncated escape: 400" 400 GET "$R/1.0/config.json%4" -H "$AUTH"
hub_error "an encoded model name" 404 RepoNotFound "/demo%2Fllm/resolve/1.0/config.json"
hub_error "an encoded model name in model info" 404 RepoNotFound "/api/models/demo%2Fllm"
expect_status "an encoded path on another route: 400" 400 GET "/v2/demo/llm/manifests/1%2E0" -H "$AUTH"
check "... the OCI error body, no Hub code" \
    sh -c "jq -e '.errors[0].code == \"NAME_INVALID\"' '$TMP/body' >/dev/null && [ -z \"\$(grep -i '^X-Error-Code' '$TMP/headers')\" ]"

# refused before routing, in the Hub's shape on the Hub's paths (the code
# names the part at fault), in the OCI shape on /v2/
hub_early() { # NAME CODE PATH
    expect_status "$1: 404" 404 GET "$3" -H "$AUTH" --path-as-is
    got=$(header X-Error-Code)
    if [ "$got" = "$2" ] && jqt '.error | type == "string"' "$TMP/body"; then
        ok "... X-Error-Code $2 and {\"error\"}"
    else not_ok "... X-Error-Code $2 and {\"error\"} (got '$got': $(head -c 200 "$TMP/body"))"; fi
}
hub_early "a dot segment in the file path" EntryNotFound "$R/1.0/tokenizer/../config.json"
hub_early "a file path of dot segments" EntryNotFound "$R/1.0/../../../etc/passwd"
hub_early "a final dot segment" EntryNotFound "$R/1.0/tokenizer/."
hub_early "a dot segment as the revision" RevisionNotFound "$R/../config.json"
hub_early "a dot segment in the model name" RepoNotFound "/demo/../resolve/1.0/config.json"
hub_early "a dot segment in a tree path" EntryNotFound "/api/models/$MODEL/tree/1.0/../x"
hub_early "a dot segment in model info's name" RepoNotFound "/api/models/demo/.."
hub_early "an invalid model name" RepoNotFound "/Demo/LLM/resolve/1.0/config.json"
hub_early "an invalid model name in model info" RepoNotFound "/api/models/demo/ll~m"
hub_early "an invalid model name in a tree" RepoNotFound "/api/models/-demo/tree/main"
hub_early "an oversized model name" RepoNotFound "/$(head -c 300 /dev/zero | tr '\0' a)/resolve/1.0/x"
expect_status "a dot segment on /v2/: 400" 400 GET "/v2/demo/../llm/manifests/1.0" -H "$AUTH" --path-as-is
check "... the OCI error body, no Hub code" \
    sh -c "jq -e '.errors[0].code == \"NAME_INVALID\"' '$TMP/body' >/dev/null && [ -z \"\$(grep -i '^X-Error-Code' '$TMP/headers')\" ]"
expect_status "an invalid name on /v2/: 400" 400 GET "/v2/Demo/LLM/manifests/1.0" -H "$AUTH"
check "... the OCI error body" jqt '.errors[0].code == "NAME_INVALID"' "$TMP/body"
expect_status "a dot segment on /api/v1/: 400" 400 GET "/api/v1/models/demo/../llm" -H "$AUTH" --path-as-is
check "... no Hub code" [ -z "$(header X-Error-Code)" ]

# hostile paths: refused before any route (400), or no file (404)
for p in "$R/1.0/../../../etc/passwd" "$R/1.0/tokenizer/%2e%2e/config.json" \
    "$R/1.0/tokenizer%2Fvocab.json" "/demo%2Fllm/resolve/1.0/config.json" "$R/%2e%2e/config.json"; do
    st=$(curl -s --path-as-is -o "$TMP/body" -w '%{http_code}' -H "$AUTH" "$MLREG_URL$p")
    case $st in 400|404) ok "hostile $p: $st" ;; *) not_ok "hostile $p: $st ($(head -c 200 "$TMP/body"))" ;; esac
    grep -q 'root:' "$TMP/body" && not_ok "hostile $p served a file of the host"
done
expect_status "a PUT to a download path: 405" 405 PUT "$R/1.0/config.json" -H "$AUTH"
check "... in the Hub's shape, with Allow" \
    sh -c "jq -e '.error | type == \"string\"' '$TMP/body' >/dev/null && grep -qi '^Allow: GET, HEAD' '$TMP/headers'"
expect_status "a POST of a commit (uploads are not served): 405" 405 POST \
    "/api/models/$MODEL/commit/main" -H "$AUTH"

# the model info and the tree, raw
expect_status "model info without a revision (main): 200" 200 GET "/api/models/$MODEL" -H "$AUTH"
check "... sha is what production holds (2.0)" jqt --arg d "$D2" '.sha == $d and .id == "demo/llm"' "$TMP/body"
check "... lastModified in the Hub's format" jqt '.lastModified == "2026-01-02T03:04:05.678Z"' "$TMP/body"
expect_status "model info at 1.0: 200" 200 GET "/api/models/$MODEL/revision/1.0" -H "$AUTH"
check "... siblings name the nested titles" jqt '[.siblings[].rfilename] | index("tokenizer/vocab.json") != null' "$TMP/body"
expect_status "a tree with ?recursive=maybe: 400" 400 GET "/api/models/$MODEL/tree/1.0?recursive=maybe" -H "$AUTH"
expect_status "a tree with a trailing slash: 200" 200 GET "/api/models/$MODEL/tree/1.0/tokenizer/" -H "$AUTH"
check "... its two files" jqt '[.[].path] == ["tokenizer/merges.txt","tokenizer/vocab.json"]' "$TMP/body"
expect_status "a tree with ?expand=true: 200" 200 GET "/api/models/$MODEL/tree/1.0?expand=true" -H "$AUTH"
check "... entries carry lastCommit (the release)" jqt --arg d "$D1" 'all(.[]; .lastCommit.id == $d)' "$TMP/body"

# paths-info: POST, the paths as a form (huggingface_hub's get_paths_info)
# or JSON (@huggingface/hub's pathsInfo); the entries known, in that order
P=/api/models/$MODEL/paths-info/1.0
FORM='Content-Type: application/x-www-form-urlencoded'
expect_status "paths-info, a form: 200" 200 POST "$P" -H "$AUTH" -H "$FORM" \
    --data 'paths=tokenizer%2Fvocab.json&paths=nope&paths=tokenizer&paths=docs/read+me.txt&expand=False'
check "... the file, the directory and the spaced name, nothing for nope" \
    jqt '[.[].path] == ["tokenizer/vocab.json","tokenizer","docs/read me.txt"]' "$TMP/body"
check "... in the tree's shape, no lastCommit" \
    jqt '.[0].type == "file" and .[0].size == 14 and (.[0].oid | length) == 64 and .[1].type == "directory" and all(.[]; .lastCommit == null)' "$TMP/body"
expect_status "paths-info with expand=True: 200" 200 POST "$P" -H "$AUTH" -H "$FORM" \
    --data 'paths=config.json&expand=True'
check "... lastCommit is the release" jqt --arg d "$D1" '.[0].lastCommit.id == $d' "$TMP/body"
expect_status "paths-info, JSON: 200" 200 POST "$P" -H "$AUTH" -H 'Content-Type: application/json' \
    -d '{"paths":["onnx/fp16/model.onnx","onnx","onnx"]}'
check "... each once, lfs on the big file" \
    jqt '[.[].path] == ["onnx/fp16/model.onnx","onnx"] and .[0].lfs.size == 3145739' "$TMP/body"
expect_status "paths-info at a stage: 200" 200 POST "/api/models/$MODEL/paths-info/production" \
    -H "$AUTH" -H "$FORM" --data 'paths=config.json'
check "... what the stage holds (2.0)" jqt --arg s "$(sha256_of "$W/r2/config.json")" '.[0].oid == $s' "$TMP/body"
expect_status "paths-info at sha256%3AHEX: 200" 200 POST "/api/models/$MODEL/paths-info/sha256%3A$D1" \
    -H "$AUTH" -H "$FORM" --data 'paths=config.json'
expect_status "paths-info of hostile paths: 200" 200 POST "$P" -H "$AUTH" -H "$FORM" \
    --data 'paths=..%2F..%2Fetc%2Fpasswd&paths=%2Fconfig.json&paths=tokenizer%2F&paths='
check "... none of them" jqt 'length == 0' "$TMP/body"
paths_bad() { # NAME CONTENT-TYPE BODY
    expect_status "paths-info, $1: 400" 400 POST "$P" -H "$AUTH" -H "Content-Type: $2" --data-binary "$3"
    check "... a Hub error" jqt '.error | test("paths-info")' "$TMP/body"
}
paths_bad "no path" "application/x-www-form-urlencoded" 'expand=True'
paths_bad "an empty body" "application/x-www-form-urlencoded" ''
paths_bad "a bad expand" "application/x-www-form-urlencoded" 'paths=a&expand=maybe'
paths_bad "a malformed escape" "application/x-www-form-urlencoded" 'paths=a%zz'
paths_bad "an encoded NUL" "application/x-www-form-urlencoded" 'paths=config.json%00x'
paths_bad "a path that is not UTF-8" "application/x-www-form-urlencoded" 'paths=config.json%FF'
paths_bad "another content type" "text/plain" 'paths=a'
paths_bad "JSON that is no object" "application/json" '["a"]'
paths_bad "JSON paths not an array" "application/json" '{"paths":"a"}'
paths_bad "JSON paths not strings" "application/json" '{"paths":[1]}'
paths_bad "JSON with a NUL in a path" "application/json" '{"paths":["config.json\u0000x"]}'
paths_bad "JSON expand not a bool" "application/json" '{"paths":["a"],"expand":"yes"}'
paths_bad "broken JSON" "application/json" '{"paths":['
seq 1001 | sed 's/^/paths=a/' | paste -sd'&' >"$W/many"
paths_bad "1001 paths" "application/x-www-form-urlencoded" "$(cat "$W/many")"
head -c 70000 /dev/zero | tr '\0' a | sed 's/^/paths=/' >"$W/huge"
expect_status "paths-info, a body over 64 KiB: 413" 413 POST "$P" -H "$AUTH" -H "$FORM" --data-binary @"$W/huge"
expect_status "paths-info without a token: 401" 401 POST "$P" -H "$FORM" --data 'paths=config.json'
expect_status "paths-info with a token limited to other/: 403" 403 POST "$P" -H "$FORM" \
    -H "Authorization: Bearer $(cat "$W/other.tok")" --data 'paths=config.json'
hub_post() { # NAME STATUS CODE PATH
    expect_status "$1: $2" "$2" POST "$4" -H "$AUTH" -H "$FORM" --data 'paths=config.json'
    check "... X-Error-Code $3" [ "$(header X-Error-Code)" = "$3" ]
}
hub_post "paths-info of an unknown model" 404 RepoNotFound "/api/models/no/such/paths-info/1.0"
hub_post "paths-info of an unknown version" 404 RevisionNotFound "/api/models/$MODEL/paths-info/9.9"
hub_post "paths-info of a withdrawn release" 403 DisabledRepo "/api/models/$MODEL/paths-info/3.0"
expect_status "a GET of paths-info: 405" 405 GET "$P" -H "$AUTH"

# a tree in pages: Link headers (absolute, as the clients follow them) until the last
T=/api/models/$MODEL/tree/1.0
expect_status "the whole recursive tree: 200" 200 GET "$T?recursive=true" -H "$AUTH"
check "... has no Link (one page)" [ -z "$(header Link)" ]
jq -c '[.[].path]' "$TMP/body" >"$W/all.json"
url="$MLREG_URL$T?recursive=true&limit=2"; pages=0; : >"$W/paged"
while [ -n "$url" ] && [ $pages -lt 20 ]; do
    curl -s -D "$TMP/headers" -o "$TMP/body" -H "$AUTH" "$url"
    jq -c '.[].path' "$TMP/body" >>"$W/paged"
    url=$(header Link | sed -n 's/^<\(http[^>]*\)>; rel="next"$/\1/p')
    pages=$((pages + 1))
done
check "pages of 2 entries: $pages pages hold the whole tree, in order" \
    [ "$(jq -sc . "$W/paged")" = "$(cat "$W/all.json")" ] && [ $pages -gt 2 ]
expect_status "?limit=0: 400" 400 GET "$T?limit=0" -H "$AUTH"
expect_status "?limit=1001: 400" 400 GET "$T?limit=1001" -H "$AUTH"
expect_status "?cursor=x: 400" 400 GET "$T?cursor=x" -H "$AUTH"
expect_status "a cursor past the end: 200" 200 GET "$T?cursor=999999" -H "$AUTH"
check "... an empty page" jqt 'length == 0' "$TMP/body"

# a file large enough to carry a chunk index (mlreg pull's own layer): the Hub
# answers list the file alone, and serve it whole
head -c 67108864 /dev/zero >"$W/big.bin"
printf 'tail' >>"$W/big.bin"
run "$MLREG" push --token-file "$W/ci.tok" demo/big@1.0 --weights "$W/big.bin" --git-sha 0123456
expect_rc "push of a 64 MiB file (with its chunk index)" 0
expect_status "its OCI manifest: 200" 200 GET "/v2/demo/big/manifests/1.0" -H "$AUTH"
check "... holds a chunk index layer" \
    jqt '[.layers[].annotations["org.mlreg.kind"]] | index("chunk-index") != null' "$TMP/body"
expect_status "its tree: 200" 200 GET "/api/models/demo/big/tree/1.0?recursive=true" -H "$AUTH"
check "... lists the file alone, no chunk index" jqt '[.[].path] == ["big.bin"]' "$TMP/body"
expect_status "its model info: 200" 200 GET "/api/models/demo/big/revision/1.0" -H "$AUTH"
check "... one sibling" jqt '[.siblings[].rfilename] == ["big.bin"]' "$TMP/body"
expect_status "a Range of its last bytes: 206" 206 GET "/demo/big/resolve/1.0/big.bin" -H "$AUTH" \
    -H 'Range: bytes=-4'
check "... the bytes" [ "$(cat "$TMP/body")" = tail ]
expect_status "its .chunks title is no file here" 404 GET "/demo/big/resolve/1.0/big.bin.chunks" -H "$AUTH"

# the other routes keep their paths; names that start like them are not models here
expect_status "/v2/ is still the OCI base" 200 GET "/v2/" -H "$AUTH"
expect_status "/healthz is still the probe" 200 GET "/healthz"
expect_status "/v2/x/resolve/1.0/f is no route" 404 GET "/v2/x/resolve/1.0/f" -H "$AUTH"
expect_status "/api/v1/x/resolve/1.0/f is no route" 404 GET "/api/v1/x/resolve/1.0/f" -H "$AUTH"
expect_status "/datasets/x/y/resolve/main/f is no route" 404 GET "/datasets/x/y/resolve/main/f" -H "$AUTH"
expect_status "/ui/x/resolve/1.0/f is no route" 404 GET "/ui/x/resolve/1.0/f" -H "$AUTH"
expect_status "the OCI manifest of the release still reads" 200 GET "/v2/$MODEL/manifests/1.0" -H "$AUTH"

finish
