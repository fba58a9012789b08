#!/bin/sh
# test_push_dir.sh: `mlreg push MODEL@VERSION DIR/` against the real server
# with a realistic export directory (sharded safetensors and their index,
# tokenizer files, generation config, seeds, an eval report with slices, a
# DP epsilon and a confusion matrix): kinds from names, mlreg.json mapping
# and excludes, --dry-run, refusals that list every offender and send
# nothing, subdirectories kept as relative titles (tokenizer/, onnx/, a
# 3-level tree; subtree excludes, linked directories, depth and case
# clashes refused before any upload), flags mixed with DIR, open kinds (--file KIND=PATH) both sides,
# eval-report layouts checked before any upload, and the git state
# (warnings, --allow-dirty, the dirty mark, --git-sha).
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

start_server || finish

jqt() { jq -e "$@" >/dev/null; }
last_line() { tail -n 1 "$TMP/out"; }
log_mark() { MARK=$(wc -l <"$TMP/server.log"); }
# requests the server logged since the mark, "METHOD PATH" lines
requests_since() { tail -n +"$((MARK + 1))" "$TMP/server.log" | grep -o 'mlreg: [A-Z]* /v2/[^ ]*' || true; }
no_request_since() { [ -z "$(requests_since)" ]; }
api() { curl -s -f -o "$TMP/body" "$MLREG_URL$1"; }
manifest_get() { # MODEL REF OUT
    curl -s -f -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -o "$3" "$MLREG_URL/v2/$1/manifests/$2"
}
# a directory without git above it, to run the CLI in
NOGIT=$TMP/nogit
mkdir -p "$NOGIT"
push() { (cd "$NOGIT" && "$MLREG" push "$@") >"$TMP/out" 2>"$TMP/err"; RC=$?; }
GIT=0123456789abcdef0123456789abcdef01234567

# ---- a realistic export directory ------------------------------------------------------------
E=$TMP/export
mkdir -p "$E"
head -c 3000000 /dev/urandom >"$E/model-00001-of-00002.safetensors"
head -c 2000000 /dev/urandom >"$E/model-00002-of-00002.safetensors"
cat >"$E/model.safetensors.index.json" <<'EOF'
{"metadata":{"total_size":5000000},"weight_map":{"a.weight":"model-00001-of-00002.safetensors","b.weight":"model-00002-of-00002.safetensors"}}
EOF
printf '{"version":"1.0","model":{"type":"BPE"}}' >"$E/tokenizer.json"
printf '{"model_max_length":4096}' >"$E/tokenizer_config.json"
printf '{"bos_token":"<s>"}' >"$E/special_tokens_map.json"
head -c 5000 /dev/urandom >"$E/tokenizer.model"
printf '{"architectures":["LlamaForCausalLM"]}' >"$E/config.json"
printf '{"temperature":0.7,"top_p":0.9}' >"$E/generation_config.json"
printf '{"torch":42,"numpy":7,"data_order":1234}' >"$E/seeds.json"
cat >"$E/eval.json" <<'EOF'
{"dataset":"holdout-2026-11","metrics":{"accuracy":0.912,"f1":0.88,
 "slices":{"lang":{"en":{"accuracy":0.93},"de":{"accuracy":0.89}}},
 "privacy":{"dp_epsilon":8.0,"dp_delta":1e-6},
 "confusion_matrix":[[90,10],[12,88]],"notes":"seed sweep 3 runs","calibration":null}}
EOF

# ---- --dry-run: the plan, nothing sent -----------------------------------------------------
log_mark
push team/llm@1.0.0 "$E/" --dry-run
expect_rc "push DIR --dry-run exits 0" 0
check "... lists every file with its kind, in kind order" sh -c "
    awk 'NR>1 && NF>=4 {print \$1\" \"\$4}' '$TMP/out' | head -n 10 | tr '\n' ';' | grep -qx '\
weights model-00001-of-00002.safetensors;weights model-00002-of-00002.safetensors;\
weights model.safetensors.index.json;tokenizer special_tokens_map.json;tokenizer tokenizer.json;\
tokenizer tokenizer.model;tokenizer tokenizer_config.json;config config.json;\
config generation_config.json;seeds seeds.json;'"
check "... the eval report too" grep -q "^eval-report .* eval.json" "$TMP/out"
check "... and says nothing was uploaded" grep -q "11 files, .*nothing uploaded (--dry-run)" "$TMP/out"
check "... with the sizes" grep -q "^weights .*2\.9 MiB  model-00001-of-00002.safetensors" "$TMP/out"
check "... checks the eval report (warning names the matrix)" \
    grep -q "'confusion_matrix' is an array: kept in the report, not a metric" "$TMP/err"
check "... sends no request to the registry" no_request_since

# ---- the push --------------------------------------------------------------------------------
push team/llm@1.0.0 "$E/" --git-sha $GIT
expect_rc "push team/llm@1.0.0 export/ exits 0" 0
D1=$(last_line)
check "... prints the release digest" sh -c "echo '$D1' | grep -Eq '^sha256:[0-9a-f]{64}\$'"
for w in "'notes' is a string" "'calibration' is null"; do
    check "... warns: $w" grep -q "$w: kept in the report, not a metric" "$TMP/err"
done
manifest_get team/llm 1.0.0 "$TMP/m1.json"
check "the manifest lists the 11 files, titled by name, with their kinds" \
    jqt '[.layers[] | select(.annotations["org.mlreg.kind"] != "chunk-index")
          | .annotations["org.opencontainers.image.title"] + "=" + .annotations["org.mlreg.kind"]]
         | sort == ["config.json=config","eval.json=eval-report","generation_config.json=config",
                    "model-00001-of-00002.safetensors=weights","model-00002-of-00002.safetensors=weights",
                    "model.safetensors.index.json=weights","seeds.json=seeds",
                    "special_tokens_map.json=tokenizer","tokenizer.json=tokenizer",
                    "tokenizer.model=tokenizer","tokenizer_config.json=tokenizer"]' "$TMP/m1.json"
check "... and no git-dirty mark (--git-sha given)" \
    jqt '.annotations["org.mlreg.git-dirty"] == null and .annotations["org.mlreg.git-sha"] == "'$GIT'"' "$TMP/m1.json"
api /api/v1/models/team/llm/versions/1.0.0
check "the release's metrics: numbers flattened, slices and DP epsilon included" \
    jqt '.metrics["slices.lang.en.accuracy"] == 0.93 and .metrics["slices.lang.de.accuracy"] == 0.89
         and .metrics["privacy.dp_epsilon"] == 8 and .metrics["privacy.dp_delta"] == 0.000001
         and .metrics.accuracy == 0.912 and (.metrics | length) == 6' "$TMP/body"
check "... the matrix, the note and null are not metrics" \
    jqt '.metrics.confusion_matrix == null and .metrics.notes == null and .metrics.calibration == null' "$TMP/body"
check "... the dataset is recorded, git_dirty is false" \
    jqt '.eval_dataset == "holdout-2026-11" and .git_dirty == false' "$TMP/body"

run "$MLREG" pull team/llm@1.0.0 -o "$TMP/pulled"
expect_rc "pull team/llm@1.0.0 exits 0" 0
for f in $(ls "$E"); do
    check "pulled $f is byte-identical" cmp "$E/$f" "$TMP/pulled/$f"
done
check "the stored eval report is byte-identical (matrix kept)" cmp "$E/eval.json" "$TMP/pulled/eval.json"

# ---- refusals list every offender and send nothing ---------------------------------------------
B=$TMP/bad
cp -r "$E" "$B"
printf 'hello\n' >"$B/README.md"
mkdir "$B/checkpoint-500"
printf 'state\n' >"$B/checkpoint-500/trainer_state.state"
ln -s /etc/passwd "$B/leak"
mkfifo "$B/pipe"
log_mark
push team/llm@2.0.0 "$B"
expect_rc "a DIR with unknown names (one in a subdirectory), an escaping link and a FIFO is refused (2)" 2
for n in "README.md: no kind for this name" "checkpoint-500/trainer_state.state: no kind for this name" \
    "leak: a symbolic link that leads out of the directory" "pipe: not a regular file"; do
    check "... names $n" grep -qF "cannot push: $n" "$TMP/err"
done
check "... says 4 entries and nothing sent" grep -q "4 entries cannot be pushed (listed above); nothing sent" "$TMP/err"
check "... sends no request" no_request_since

# mlreg.json maps README.md, excludes the rest; a link inside DIR is pushed under its own name
rm "$B/leak" "$B/pipe"
ln -s seeds.json "$B/seeds-link.json"
cat >"$B/mlreg.json" <<'EOF'
{"files": {"README*": "docs", "seeds-link.json": "seeds-copy"}, "exclude": ["checkpoint-*", "*.tmp"]}
EOF
: >"$B/scratch.tmp"
: >"$B/.DS_Store"
push team/llm@2.0.0 "$B" --git-sha $GIT
expect_rc "with mlreg.json mapping and excluding, the push succeeds" 0
check "... says mlreg.json is not pushed" grep -q "mlreg.json: directory push settings (not pushed)" "$TMP/err"
check "... names the excluded subdirectory" grep -q "not pushed: checkpoint-500/ and everything in it (excluded by mlreg.json 'checkpoint-\*')" "$TMP/err"
check "... names the excluded temp file" grep -q "not pushed: scratch.tmp (excluded by mlreg.json" "$TMP/err"
check "... names the hidden file" grep -q "not pushed: .DS_Store (hidden" "$TMP/err"
manifest_get team/llm 2.0.0 "$TMP/m2.json"
check "... README.md is kind docs with the generic media type" \
    jqt '.layers[] | select(.annotations["org.opencontainers.image.title"] == "README.md")
         | .annotations["org.mlreg.kind"] == "docs" and .mediaType == "application/vnd.mlreg.docs.v1"' "$TMP/m2.json"
check "... the link inside DIR is pushed under its own name, with the target's bytes" \
    jqt --arg d "sha256:$(sha256_of "$E/seeds.json")" '.layers[] | select(.annotations["org.opencontainers.image.title"] == "seeds-link.json")
         | .annotations["org.mlreg.kind"] == "seeds-copy" and .digest == $d' "$TMP/m2.json"
check "... mlreg.json and the excluded files are not in the release" \
    jqt '[.layers[].annotations["org.opencontainers.image.title"]] | index("mlreg.json") == null
         and index("scratch.tmp") == null' "$TMP/m2.json"

for cfg in 'not json' '[1]' '{"files":{"*":"Bad_Kind"}}' '{"files":{"*":"chunk-index"}}' \
    '{"exclude":"x"}' '{"include":[]}' '{"files":{"a":"x","a":"y"}}'; do
    printf '%s' "$cfg" >"$B/mlreg.json"
    push team/llm@2.0.1 "$B" --dry-run
    expect_rc "mlreg.json '$cfg' is refused (2)" 2
    check "... naming mlreg.json" grep -q "mlreg.json" "$TMP/err"
done
head -c 70000 /dev/zero | tr '\0' ' ' >"$B/mlreg.json"
push team/llm@2.0.1 "$B" --dry-run
expect_rc "a mlreg.json over 64 KiB is refused (2)" 2
check "... naming it" grep -q "mlreg.json.*larger than" "$TMP/err"
rm "$B/mlreg.json"
H=$TMP/hostile
mkdir -p "$H"
: >"$H/$(printf 'evil\033[2J.bin')"
push team/llm@2.0.1 "$H" --dry-run
expect_rc "a file name with an escape sequence is refused (2)" 2
check "... and the terminal never sees the raw escape" sh -c "! grep -q \"$(printf '\033')\" '$TMP/err' '$TMP/out'"
push team/llm@2.0.1 "$TMP/missing-dir"
expect_rc "a DIR that does not exist is refused" 2
check "... saying so" grep -q "missing-dir: no such directory" "$TMP/err"
push team/llm@2.0.1 "$E/config.json"
expect_rc "a DIR that is a file is refused" 2
check "... saying so" grep -q "config.json: not a directory" "$TMP/err"

# ---- flags mixed with DIR --------------------------------------------------------------------
push team/llm@3.0.0 "$E" --file "generation-config=$E/generation_config.json" --git-sha $GIT
expect_rc "DIR with --file generation-config=DIR/generation_config.json exits 0" 0
manifest_get team/llm 3.0.0 "$TMP/m3.json"
check "... the flag's kind wins, the file is listed once" \
    jqt '[.layers[] | select(.annotations["org.opencontainers.image.title"] == "generation_config.json")
          | .annotations["org.mlreg.kind"]] == ["generation-config"]' "$TMP/m3.json"
head -c 100 /dev/urandom >"$TMP/extra.onnx"
push team/llm@3.0.1 "$E" --weights "$TMP/extra.onnx" --git-sha $GIT
expect_rc "DIR plus a file from elsewhere exits 0" 0
manifest_get team/llm 3.0.1 "$TMP/m31.json"
check "... both are in the release" \
    jqt '[.layers[].annotations["org.opencontainers.image.title"]] | index("extra.onnx") != null and index("tokenizer.json") != null' "$TMP/m31.json"
cp "$E/config.json" "$TMP/config.json"
push team/llm@3.0.2 "$E" --config "$TMP/config.json" --git-sha $GIT
expect_rc "a flag's file with the title of a DIR file is refused (2)" 2
check "... naming the duplicate title" grep -q "same title 'config.json'" "$TMP/err"

# ---- kinds: the grammar on both sides --------------------------------------------------------
for k in Bad_Kind 9lives -x chunk-index abcdefghijklmnopqrstuvwxyz0123456; do
    push team/llm@4.0.0 --file "$k=$E/config.json"
    expect_rc "--file $k=... is refused (2)" 2
done
# the server: a layer whose kind is outside the grammar, or whose media type
# is not the one its kind derives, is refused
jq -c '.annotations["org.mlreg.version"] = "4.0.0" | .layers[0].annotations["org.mlreg.kind"] = "Bad"' \
    "$TMP/m3.json" >"$TMP/bad-kind.json"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$TMP/bad-kind.json" "$MLREG_URL/v2/team/llm/manifests/4.0.0")
check "the server refuses kind 'Bad' ($st)" [ "$st" = 400 ]
check "... saying it is not a kind" grep -q "is not a kind" "$TMP/body"
jq -c '.annotations["org.mlreg.version"] = "4.0.0"
       | (.layers[] | select(.annotations["org.mlreg.kind"] == "generation-config") | .mediaType) = "application/vnd.mlreg.other.v1"' \
    "$TMP/m3.json" >"$TMP/bad-mt.json"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$TMP/bad-mt.json" "$MLREG_URL/v2/team/llm/manifests/4.0.0")
check "the server refuses a generic kind with another media type ($st)" [ "$st" = 400 ]
check "... naming the expected one" grep -q "application/vnd.mlreg.generation-config.v1" "$TMP/body"
jq -c '.annotations["org.mlreg.version"] = "4.0.0" | .annotations["org.mlreg.git-dirty"] = "maybe"' \
    "$TMP/m3.json" >"$TMP/bad-dirty.json"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$TMP/bad-dirty.json" "$MLREG_URL/v2/team/llm/manifests/4.0.0")
check "the server refuses org.mlreg.git-dirty 'maybe' ($st)" [ "$st" = 400 ]

# ---- eval reports: checked before any upload -------------------------------------------------
R=$TMP/rep
mkdir -p "$R"
head -c 9000000 /dev/urandom >"$R/big.bin"
BIG=sha256:$(sha256_of "$R/big.bin")
for body in 'not json' '{"metrics":{"accuracy":"high"}}' '{"model":"x","cm":[[1,2]]}' \
    '{"metrics":{"a":NaN}}' '{"a":1e400}' '{"a":1,"a":2}' '{"a":{"b":1},"a.b":2}'; do
    printf '%s' "$body" >"$R/eval.json"
    log_mark
    push team/rep@1.0.0 --weights "$R/big.bin" --eval-report "$R/eval.json" --git-sha $GIT
    expect_rc "eval report '$body' is refused (2)" 2
    check "... before any upload, saying so" grep -q "refused before any upload" "$TMP/err"
    check "... no request reached the registry" no_request_since
done
st=$(curl -s -o /dev/null -w '%{http_code}' -I "$MLREG_URL/v2/team/rep/blobs/$BIG")
check "the weights of the refused pushes are not in the registry ($st)" [ "$st" = 404 ]
head -c 1100000 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 1100000 >"$R/huge.txt"
printf '{"a":1,"pad":"%s"}' "$(cat "$R/huge.txt")" >"$R/eval.json"
push team/rep@1.0.0 --weights "$R/big.bin" --eval-report "$R/eval.json" --git-sha $GIT
expect_rc "an eval report over 1 MiB is refused" 2
check "... saying the limit" grep -q "at most 1048576" "$TMP/err"

cat >"$R/results_2026-12-05.json" <<'EOF'
{"results":{"hellaswag":{"alias":"hellaswag","acc,none":0.5716,"acc_stderr,none":0.0049,
  "acc_norm,none":0.7547,"acc_norm_stderr,none":0.0043},
 "gsm8k":{"alias":"gsm8k","exact_match,strict-match":0.41,"exact_match_stderr,strict-match":0.0135,
  "exact_match,flexible-extract":0.43,"exact_match_stderr,flexible-extract":"N/A"}},
 "versions":{"hellaswag":1.0,"gsm8k":3.0},"n-shot":{"hellaswag":0,"gsm8k":5},
 "config":{"model":"hf","model_args":"pretrained=x","batch_size":"auto"},"date":1733370000.5}
EOF
rm "$R/eval.json" "$R/huge.txt"
push team/rep@1.0.0 "$R" --git-sha $GIT
expect_rc "a DIR with lm-evaluation-harness results_*.json pushes" 0
check "... recognised as lm-evaluation-harness" grep -q "lm-evaluation-harness layout, 7 metrics" "$TMP/err"
check "... the N/A stderr is named in a warning" \
    grep -q "'gsm8k.exact_match_stderr.flexible-extract' is a string" "$TMP/err"
api /api/v1/models/team/rep/versions/1.0.0
check "... metrics task.metric, ',none' dropped, other filters dotted, stderr kept" \
    jqt '.metrics["hellaswag.acc_norm"] == 0.7547 and .metrics["hellaswag.acc_norm_stderr"] == 0.0043
         and .metrics["gsm8k.exact_match.strict-match"] == 0.41 and (.metrics | length) == 7' "$TMP/body"
printf '{"accuracy":0.9,"latency_ms":{"p50":12,"p99":40}}' >"$R/flat.json"
push team/rep@1.0.1 --weights "$R/big.bin" --eval "$R/flat.json" --git-sha $GIT
expect_rc "a flat report of numbers pushes (--eval, short for --eval-report)" 0
api /api/v1/models/team/rep/versions/1.0.1
check "... its metrics" jqt '.metrics == {"accuracy":0.9,"latency_ms.p50":12,"latency_ms.p99":40}' "$TMP/body"

# ---- subdirectories: each file's title is its path relative to DIR -------------------------------
S=$TMP/subexport
mkdir -p "$S/tokenizer" "$S/onnx" "$S/adapters/lora/r16" "$S/checkpoints/step-100/optim" "$S/.cache/hf"
printf '{"architectures":["LlamaForCausalLM"]}' >"$S/config.json"
printf '{"hello":0,"world":1}' >"$S/tokenizer/vocab.json"
printf '#version: 0.2\nh e\n' >"$S/tokenizer/merges.txt"
printf '{"model_max_length":4096}' >"$S/tokenizer/tokenizer_config.json"
head -c 6000 /dev/urandom >"$S/onnx/model.onnx"
head -c 4000 /dev/urandom >"$S/adapters/lora/r16/adapter_model.safetensors"
printf '{"r":16}' >"$S/adapters/lora/r16/adapter_config.json"
head -c 3000 /dev/urandom >"$S/checkpoints/step-100/model.bin"
head -c 1000 /dev/urandom >"$S/checkpoints/step-100/optim/optimizer.pt"
printf 'cached\n' >"$S/.cache/hf/model.bin"
cat >"$S/mlreg.json" <<'JSON'
{"files": {"adapters/*/*/adapter_config.json": "adapter-config"}, "exclude": ["checkpoints"]}
JSON
SUB_TITLES='adapters/lora/r16/adapter_model.safetensors=weights;onnx/model.onnx=weights;tokenizer/merges.txt=tokenizer;tokenizer/tokenizer_config.json=tokenizer;tokenizer/vocab.json=tokenizer;config.json=config;adapters/lora/r16/adapter_config.json=adapter-config;'

log_mark
push team/sub@1.0.0 "$S/" --dry-run
expect_rc "push DIR with subdirectories --dry-run exits 0" 0
check "... the plan titles each file by its path in DIR, kinds from the base name, in kind order" sh -c "
    awk 'NR>1 && NF==5 {print \$4\"=\"\$1}' '$TMP/out' | tr '\n' ';' | grep -qx '$SUB_TITLES'"
check "... and shows each file's path" grep -q "^tokenizer .* tokenizer/vocab.json  *$S/tokenizer/vocab.json\$" "$TMP/out"
check "... 7 files, nothing uploaded" grep -q "^7 files, .*nothing uploaded (--dry-run)" "$TMP/out"
check "... names the excluded subtree" \
    grep -q "not pushed: checkpoints/ and everything in it (excluded by mlreg.json 'checkpoints')" "$TMP/err"
check "... names the hidden subtree" grep -q "not pushed: .cache/ and everything in it (hidden" "$TMP/err"
check "... sends no request to the registry" no_request_since
push team/sub@1.0.0 "$S/" --dry-run
cp "$TMP/out" "$TMP/plan1"
push team/sub@1.0.0 "$S/" --dry-run
check "... the same plan on every run" cmp "$TMP/plan1" "$TMP/out"

push team/sub@1.0.0 "$S/" --git-sha $GIT
expect_rc "push team/sub@1.0.0 with subdirectories exits 0" 0
manifest_get team/sub 1.0.0 "$TMP/s1.json"
check "the manifest holds the relative titles with their kinds" \
    jqt --arg want "$SUB_TITLES" '[.layers[] | .annotations["org.opencontainers.image.title"] + "="
          + .annotations["org.mlreg.kind"] + ";"] | add == $want' "$TMP/s1.json"
check "... each layer holds its file's bytes" \
    jqt --arg d "sha256:$(sha256_of "$S/onnx/model.onnx")" '.layers[]
         | select(.annotations["org.opencontainers.image.title"] == "onnx/model.onnx") | .digest == $d' "$TMP/s1.json"
check "... nothing of the excluded or hidden subtrees" \
    jqt '[.layers[].annotations["org.opencontainers.image.title"] | select(test("checkpoints|cache"))] == []' "$TMP/s1.json"
run "$MLREG" show team/sub@1.0.0
expect_rc "mlreg show team/sub@1.0.0 exits 0" 0
for t in tokenizer/vocab.json onnx/model.onnx adapters/lora/r16/adapter_model.safetensors; do
    check "... lists $t" grep -q " $t\$" "$TMP/out"
done
api /api/v1/models/team/sub/versions/1.0.0
check "the API lists the 7 files by their titles" \
    jqt '[.files[].title] | sort == ["adapters/lora/r16/adapter_config.json",
         "adapters/lora/r16/adapter_model.safetensors","config.json","onnx/model.onnx",
         "tokenizer/merges.txt","tokenizer/tokenizer_config.json","tokenizer/vocab.json"]' "$TMP/body"

push team/sub@1.0.0 "$S" --git-sha $GIT
expect_rc "pushing the same tree again exits 0" 0
check "... it is the same release" grep -q "team/sub@1.0.0 already exists with the same files" "$TMP/err"

# a path glob excludes below a directory; a bare glob matches base names at any depth
cat >"$S/mlreg.json" <<'JSON'
{"files": {"adapters/*/*/adapter_config.json": "adapter-config", "checkpoints/*/model.bin": "checkpoint"},
 "exclude": ["checkpoints/*/optim", "*.onnx"]}
JSON
push team/sub@1.1.0 "$S" --dry-run
expect_rc "exclude 'checkpoints/*/optim' and '*.onnx' --dry-run exits 0" 0
check "... checkpoints/step-100/model.bin gets its kind from a path glob" \
    grep -q "^checkpoint .* checkpoints/step-100/model.bin " "$TMP/out"
check "... the optimizer subtree is excluded" \
    grep -q "not pushed: checkpoints/step-100/optim/ and everything in it (excluded by mlreg.json 'checkpoints/\*/optim')" "$TMP/err"
check "... '*.onnx' excludes onnx/model.onnx" grep -q "not pushed: onnx/model.onnx (excluded by mlreg.json '\*.onnx')" "$TMP/err"
check "... and neither is in the plan" sh -c "! grep -q 'optimizer.pt\|model.onnx' '$TMP/out'"
cat >"$S/mlreg.json" <<'JSON'
{"files": {"adapters/*/*/adapter_config.json": "adapter-config"}, "exclude": ["checkpoints"]}
JSON

# a linked subdirectory is refused (today's rule: a link must lead to a regular file in DIR);
# a link to a file in another subdirectory is pushed under its own path
L=$TMP/linked
cp -r "$S" "$L"
ln -s tokenizer "$L/tok2"
log_mark
push team/sub@2.0.0 "$L" --git-sha $GIT
expect_rc "a symbolic link to a subdirectory is refused (2)" 2
check "... naming it" grep -q "cannot push: tok2: a symbolic link to something not a file" "$TMP/err"
check "... nothing sent" no_request_since
rm "$L/tok2"
ln -s "$TMP/export" "$L/outside"
push team/sub@2.0.0 "$L" --git-sha $GIT
expect_rc "a symbolic link to a directory outside DIR is refused (2)" 2
check "... naming it" grep -q "cannot push: outside: a symbolic link that leads out of the directory" "$TMP/err"
rm "$L/outside"
ln -s ../onnx/model.onnx "$L/adapters/base.onnx"
push team/sub@2.0.0 "$L" --git-sha $GIT
expect_rc "a link to a file in another subdirectory is pushed" 0
manifest_get team/sub 2.0.0 "$TMP/s2.json"
check "... under its own path, with its target's bytes" \
    jqt --arg d "sha256:$(sha256_of "$L/onnx/model.onnx")" '.layers[]
         | select(.annotations["org.opencontainers.image.title"] == "adapters/base.onnx") | .digest == $d' "$TMP/s2.json"

# a link does not publish what the rules keep out: an excluded or a hidden target
mkdir -p "$L/checkpoints" "$L/.git"
printf 'SECRET' >"$L/checkpoints/key"
printf 'GITCRED' >"$L/.git/credentials"
ln -s checkpoints/key "$L/vocab.txt"
log_mark
push team/sub@2.0.1 "$L" --git-sha $GIT
expect_rc "a link to a file mlreg.json excludes is refused (2)" 2
check "... naming it" grep -q "cannot push: vocab.txt: a symbolic link to a file that is hidden or excluded" "$TMP/err"
check "... nothing sent" no_request_since
rm "$L/vocab.txt"
ln -s .git/credentials "$L/merges.txt"
push team/sub@2.0.1 "$L" --git-sha $GIT
expect_rc "a link to a hidden file is refused (2)" 2
check "... naming it" grep -q "cannot push: merges.txt: a symbolic link to a file that is hidden or excluded" "$TMP/err"
rm -r "$L/merges.txt" "$L/.git" "$L/checkpoints/key"

# more files than the soft limit on open files: push raises it to the hard limit
M=$TMP/many
mkdir -p "$M/tokenizer"
i=0
while [ $i -lt 300 ]; do echo $i >"$M/tokenizer/vocab$i.txt"; i=$((i + 1)); done
printf '{"metrics":{"accuracy":0.9}}' >"$M/eval.json"
run sh -c "ulimit -Sn 256 && exec \"\$0\" push team/many@1.0.0 \"\$1\" --dry-run --git-sha $GIT" "$MLREG" "$M"
expect_rc "a plan of 301 files under a soft limit of 256 open files" 0
check "... lists them all" grep -q "^301 files" "$TMP/out"

# depth: 8 path segments are a title, 9 are refused before any upload, naming the path
D=$TMP/deep
mkdir -p "$D/a/b/c/d/e/f/g/h"
head -c 2000 /dev/urandom >"$D/a/b/c/d/e/f/g/model.bin"
push team/sub@3.0.0 "$D" --dry-run
expect_rc "a file 8 segments deep is planned" 0
check "... titled a/b/c/d/e/f/g/model.bin" grep -q " a/b/c/d/e/f/g/model.bin " "$TMP/out"
head -c 2000 /dev/urandom >"$D/a/b/c/d/e/f/g/h/model.bin"
log_mark
push team/sub@3.0.0 "$D" --git-sha $GIT
expect_rc "a file 9 segments deep is refused (2)" 2
check "... naming its path" \
    grep -q "cannot push: a/b/c/d/e/f/g/h/model.bin: more than 8 path segments deep" "$TMP/err"
check "... before any upload" no_request_since
st=$(curl -s -o /dev/null -w '%{http_code}' -I "$MLREG_URL/v2/team/sub/blobs/sha256:$(sha256_of "$D/a/b/c/d/e/f/g/model.bin")")
check "... the other file of the tree was not uploaded either ($st)" [ "$st" = 404 ]
rm -r "$D/a/b/c/d/e/f/g/h"
long=$(printf '%0125d' 0 | tr 0 x)
mkdir -p "$D/$long/$long"
printf '{}' >"$D/$long/$long/config.json"
push team/sub@3.0.0 "$D" --dry-run
expect_rc "a path over 255 bytes is refused (2)" 2
check "... naming it" grep -q "cannot push: $long/$long/config.json: its path is longer than 255 bytes" "$TMP/err"
rm -r "$D/${long:?}"

# the title set: case twins and a file where a directory is needed, refused before any upload
C=$TMP/cases
mkdir -p "$C/Tok" "$C/tok"
printf '{"a":1}' >"$C/Tok/vocab.json"
printf 'a b\n' >"$C/tok/merges.txt"
log_mark
push team/sub@4.0.0 "$C" --git-sha $GIT
expect_rc "Tok/ and tok/ in one DIR are refused (2)" 2
check "... one directory in two letter cases" \
    grep -q "titles 'tok/merges.txt' and 'Tok/vocab.json' name one directory in two letter cases" "$TMP/err"
check "... nothing sent" no_request_since
rm -r "$C/Tok"
head -c 100 /dev/urandom >"$C/tok/Model.bin"
head -c 100 /dev/urandom >"$C/tok/model.bin"
push team/sub@4.0.0 "$C" --git-sha $GIT
expect_rc "tok/Model.bin and tok/model.bin are refused (2)" 2
check "... naming both paths" grep -q "tok/Model.bin' and '.*tok/model.bin' have the same title 'tok/model.bin' but for letter case" "$TMP/err"
rm "$C/tok/Model.bin" "$C/tok/model.bin"
head -c 100 /dev/urandom >"$TMP/tok"
log_mark
push team/sub@4.0.0 "$C" --file "other=$TMP/tok" --git-sha $GIT
expect_rc "a flag's file titled 'tok' beside DIR's tok/ is refused (2)" 2
check "... a file where a directory is needed" \
    grep -q "title 'tok' is a file, but 'tok/merges.txt' needs a directory of that name" "$TMP/err"
check "... nothing sent" no_request_since
mkdir -p "$C/sub"
printf '{"files":{"*":"other"}}' >"$C/sub/mlreg.json"
push team/sub@4.0.0 "$C" --dry-run
expect_rc "a mlreg.json below the top is refused (2)" 2
check "... saying only the top one is read" grep -q "cannot push: sub/mlreg.json: only mlreg.json at the top" "$TMP/err"

# ---- git -------------------------------------------------------------------------------------
G=$TMP/repo
mkdir -p "$G"
git -C "$G" init -q
printf 'train.py v1\n' >"$G/train.py"
git -C "$G" add train.py
git -C "$G" -c user.name=t -c user.email=t@example.com commit -qm init
HEAD_SHA=$(git -C "$G" rev-parse HEAD)
gpush() { (cd "$G" && "$MLREG" push "$@") >"$TMP/out" 2>"$TMP/err"; RC=$?; }
gpush team/git@1.0 --weights "$E/tokenizer.model"
expect_rc "push from a clean checkout" 0
check "... no git warning" sh -c "! grep -q 'warning: .*git' '$TMP/err'"
api /api/v1/models/team/git/versions/1.0
check "... records HEAD, not dirty" jqt --arg s "$HEAD_SHA" '.git_sha == $s and .git_dirty == false' "$TMP/body"
printf 'untracked\n' >"$G/export.bin"
gpush team/git@1.1 --weights "$E/tokenizer.model"
expect_rc "an untracked file (an export inside the checkout) is not dirt" 0
check "... no git warning" sh -c "! grep -q 'warning: .*git' '$TMP/err'"
printf 'train.py v2\n' >"$G/train.py"
gpush team/git@2.0 --weights "$E/tokenizer.model"
expect_rc "push from a dirty tree still succeeds" 0
check "... warns about uncommitted changes" grep -q "warning: the git tree has uncommitted changes" "$TMP/err"
api /api/v1/models/team/git/versions/2.0
check "... the release says git_dirty true" jqt '.git_dirty == true' "$TMP/body"
manifest_get team/git 2.0 "$TMP/g2.json"
check "... as the manifest annotation org.mlreg.git-dirty" \
    jqt '.annotations["org.mlreg.git-dirty"] == "true"' "$TMP/g2.json"
run "$MLREG" show team/git@2.0
check "mlreg show prints it" grep -q "^git sha       $HEAD_SHA (dirty: uncommitted changes)" "$TMP/out"
gpush team/git@2.1 --weights "$E/tokenizer.model" --allow-dirty
expect_rc "--allow-dirty" 0
check "... silences the warning" sh -c "! grep -q 'uncommitted' '$TMP/err'"
api /api/v1/models/team/git/versions/2.1
check "... and the release is still marked dirty" jqt '.git_dirty == true' "$TMP/body"
push team/git@3.0 --weights "$E/tokenizer.model"
expect_rc "push outside a git checkout succeeds" 0
check "... warns that no git sha is recorded" grep -q "warning: not in a git checkout" "$TMP/err"
api /api/v1/models/team/git/versions/3.0
check "... and records none" jqt '.git_sha == null' "$TMP/body"
push team/git@3.1 --weights "$E/tokenizer.model" --git-sha abcdef1
expect_rc "--git-sha outside a checkout" 0
check "... no warning" sh -c "! grep -q 'warning' '$TMP/err'"
for bad in abcdef ABCDEF1 xyz1234 "$GIT$GIT" ''; do
    push team/git@3.2 --weights "$E/tokenizer.model" --git-sha "$bad"
    expect_rc "--git-sha '$bad' is refused (2)" 2
done

finish
