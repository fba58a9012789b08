#!/bin/sh
# test_check.sh: `mlreg check DIR` verifies a pulled directory against its
# lock, offline (the server is stopped first): all good, a tampered byte,
# a missing file, an extra file (reported; fails with --strict), a
# leftover of the previous release, nested files and a symlinked
# subdirectory (a failure, not followed), the lock edited by hand (a digest
# changed, the manifest changed), signatures with the right key, a wrong
# key, a lock without signatures, --json, and usage errors.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
D=$W/deploy
mkdir -p "$W"
out_has() {
    if grep -Eq -- "$2" "$TMP/out"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in:)"; sed 's/^/  | /' "$TMP/out"; fi
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}

"$MLREG" key generate --out "$W/bot" --no-password >/dev/null 2>&1 || not_ok "key generate"
"$MLREG" key generate --out "$W/other" --no-password >/dev/null 2>&1 || not_ok "key generate"
cat >"$W/config.json" <<EOF2
{ "stages": ["dev"],
  "trusted_keys": [ { "name": "release-bot", "file": "$W/bot.pub", "role": "release" } ] }
EOF2
start_server --config "$W/config.json" || finish
printf '{"metrics":{"accuracy":0.9}}\n' >"$W/eval.json"
head -c 4000 /dev/urandom >"$W/model.safetensors"
printf '{"v":1}\n' >"$W/config.json.in"
cp "$W/config.json.in" "$W/cfg.json"
run sh -c "cd '$TMP' && '$MLREG' push m/clf@1 --weights '$W/model.safetensors' --config '$W/cfg.json' \
    --eval-report '$W/eval.json' --sign-key '$W/bot.key'"
expect_rc "push m/clf@1 (signed)" 0
run "$MLREG" pull m/clf@1 -o "$D" --trusted-key "$W/bot.pub"
expect_rc "pull with --trusted-key" 0
run "$MLREG" pull m/clf@1 -o "$W/unsigned"
expect_rc "pull without --trusted-key" 0
# a release with subdirectory titles (a hand-made manifest: push titles by base name)
mkdir -p "$W/s"
printf '{"vocab":1}\n' >"$W/s/vocab.json"
printf '{"deep":1}\n' >"$W/s/deep.json"
put_release m/sub 1 model.safetensors=weights="$W/model.safetensors" \
    tokenizer/vocab.json=tokenizer="$W/s/vocab.json" extra/a/deep.json=config="$W/s/deep.json" \
    eval.json=eval-report="$W/eval.json" && ok "push of a release with subdirectories" ||
    not_ok "push of a release with subdirectories"
SD=$W/subdeploy
run "$MLREG" pull m/sub@1 -o "$SD"
expect_rc "pull of a release with subdirectories" 0
stop_server

# ---- offline from here -----------------------------------------------------------
cp -a "$D" "$W/pristine"
reset() { rm -rf "$D"; cp -a "$W/pristine" "$D"; }

run "$MLREG" check "$D"
expect_rc "check of an intact pull: exit 0 (registry stopped)" 0
out_has "one ok line per file" "^  ok .*model.safetensors"
out_has "a summary line" "all 3 files match the lock"
run "$MLREG" check "$D" --trusted-key "$W/bot.pub"
expect_rc "check --trusted-key with the release key: exit 0" 0
out_has "it names the signature that verified" "signature +[0-9A-F]{16} .* valid"
run "$MLREG" check "$D" --trusted-key "$W/other.pub"
expect_rc "check with a wrong key: exit 1" 1
err_has "the wrong key is named as the reason" "no signature by a trusted key"
run "$MLREG" check "$W/unsigned" --trusted-key "$W/bot.pub"
expect_rc "check --trusted-key of a lock pulled without: exit 1" 1
err_has "it says to pull with --trusted-key" "pull with --trusted-key"

# a tampered byte
printf 'X' | dd of="$D/model.safetensors" bs=1 seek=100 conv=notrunc 2>/dev/null
run "$MLREG" check "$D"
expect_rc "a tampered byte: exit 1" 1
out_has "the tampered file is FAIL with its sha256" "^  FAIL .*model.safetensors .*sha256 is"
out_has "the other files are still ok" "^  ok .*cfg.json"
reset
# a missing file
rm "$D/cfg.json"
run "$MLREG" check "$D"
expect_rc "a missing file: exit 1" 1
out_has "the missing file is named" "^  FAIL .*cfg.json.*no such file"
reset
# a truncated file
: >"$D/eval.json"
run "$MLREG" check "$D"
expect_rc "a truncated file: exit 1" 1
out_has "the size is named" "0 bytes, want"
reset
# an extra file: reported, passes; --strict fails
echo hi >"$D/README.txt"
mkdir "$D/.cache"
run "$MLREG" check "$D"
expect_rc "an extra file alone: exit 0" 0
out_has "the extra file is reported" "^  extra .*README.txt"
if grep -q ".cache" "$TMP/out"; then not_ok "dot entries are not reported"; else ok "dot entries are not reported"; fi
run "$MLREG" check "$D" --strict
expect_rc "an extra file with --strict: exit 1" 1
reset
# a leftover of the previous release fails
jq '.removed = ["model.safetensors.index.json"]' "$D/mlreg.lock.json" >"$W/l" && cp "$W/l" "$D/mlreg.lock.json"
echo '{}' >"$D/model.safetensors.index.json"
run "$MLREG" check "$D"
expect_rc "a leftover of the previous release: exit 1" 1
out_has "the leftover is named" "FAIL .*leftover .*model.safetensors.index.json"
reset
# the lock edited by hand: a file's digest changed to match a changed file
printf 'X' | dd of="$D/model.safetensors" bs=1 seek=5 conv=notrunc 2>/dev/null
NEW="sha256:$(sha256sum "$D/model.safetensors" | cut -c1-64)"
jq --arg d "$NEW" '(.files[] | select(.title == "model.safetensors") | .digest) = $d' \
    "$D/mlreg.lock.json" >"$W/l" && cp "$W/l" "$D/mlreg.lock.json"
run "$MLREG" check "$D"
expect_rc "a lock edited to match a changed file: exit 1" 1
err_has "it says the lock was edited" "does not match its manifest: the lock was edited"
reset
# the manifest in the lock edited (digest no longer matches)
jq '.manifest |= sub("schemaVersion"; "schemaVersion ")' "$D/mlreg.lock.json" >"$W/l" &&
    cp "$W/l" "$D/mlreg.lock.json"
run "$MLREG" check "$D"
expect_rc "an edited manifest in the lock: exit 1" 1
err_has "the manifest digest mismatch is named" "manifest bytes hash to sha256:[0-9a-f]+, not"
reset
# everything rewritten consistently (manifest, digest, files) without the
# key: passes without --trusted-key, fails with it
python3 - "$D/mlreg.lock.json" <<'PY'
import hashlib, json, sys
p = sys.argv[1]
lock = json.load(open(p))
m = json.loads(lock["manifest"])
m["annotations"]["org.mlreg.git_sha"] = "f" * 40
text = json.dumps(m)
lock["manifest"] = text
lock["digest"] = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
json.dump(lock, open(p, "w"))
PY
run "$MLREG" check "$D" --trusted-key "$W/bot.pub"
expect_rc "a consistently forged lock fails with --trusted-key" 1
reset
# hostile locks
echo 'not json' >"$D/mlreg.lock.json"
run "$MLREG" check "$D"
expect_rc "a lock that is not JSON: exit 1" 1
echo '{"model":"m/clf","version":"1","digest":"sha256:'$(printf '%064d' 0)'","files":[]}' >"$D/mlreg.lock.json"
run "$MLREG" check "$D"
expect_rc "a lock without a manifest: exit 1" 1
err_has "it says the lock keeps no manifest" "keeps no manifest"
rm "$D/mlreg.lock.json"
run "$MLREG" check "$D"
expect_rc "no lock: exit 1" 1
reset
# --json
run "$MLREG" check "$D" --json --trusted-key "$W/bot.pub"
expect_rc "check --json" 0
jq -e '.passed == true and (.files | length) == 3 and all(.files[]; .status == "ok") and .signatures[0].status == "valid"' \
    "$TMP/out" >/dev/null && ok "--json reports every file and the signature" || not_ok "--json reports every file and the signature"
rm "$D/cfg.json"
run "$MLREG" check "$D" --json
expect_rc "check --json of a broken dir: exit 1" 1
jq -e '.passed == false and any(.files[]; .title == "cfg.json" and .status == "missing")' "$TMP/out" >/dev/null &&
    ok "--json marks the missing file" || not_ok "--json marks the missing file"
# usage
run "$MLREG" check
expect_rc "check without DIR: exit 2" 2
run "$MLREG" check "$W/nodir"
expect_rc "check of no directory: exit 2" 2
run "$MLREG" check "$D" --trusted-key "$W/nokey.pub"
expect_rc "check with an unreadable key file: exit 2" 2
run "$MLREG" check "$D" --bogus
expect_rc "check with an unknown option: exit 2" 2
# subdirectories: nested files are checked, reached one directory at a time
cp -a "$SD" "$W/subpristine"
subreset() { rm -rf "$SD"; cp -a "$W/subpristine" "$SD"; }
run "$MLREG" check "$SD" --strict
expect_rc "check of a pull with subdirectories: exit 0" 0
out_has "the nested file has its ok line" "^  ok .*tokenizer/vocab.json"
out_has "the summary counts the nested files" "all 4 files match the lock"
printf 'X' >>"$SD/extra/a/deep.json"
run "$MLREG" check "$SD"
expect_rc "an edited nested file: exit 1" 1
out_has "the edited nested file is named" "FAIL .*extra/a/deep.json"
subreset
printf '{"vocab":2}\n' >"$SD/tokenizer/vocab.json"
run "$MLREG" check "$SD"
expect_rc "a nested file edited to the same size: exit 1" 1
out_has "its digest is named" "FAIL .*tokenizer/vocab.json .*sha256 is"
subreset
# a symlinked subdirectory holding the right files: a failure, not followed
mkdir -p "$W/linked"
cp -a "$SD/tokenizer/." "$W/linked/"
rm -rf "$SD/tokenizer"
ln -s "$W/linked" "$SD/tokenizer"
run "$MLREG" check "$SD"
expect_rc "a symlinked subdirectory: exit 1" 1
out_has "the link is named as in the way" "FAIL .*tokenizer/vocab.json .*tokenizer is a symbolic link"
err_has "the reason says it was not followed" "not followed"
subreset
# extra files: looked for in every directory of the release, recursively
echo x >"$SD/tokenizer/stale-vocab.json"
mkdir -p "$SD/extra/a/cache"
echo x >"$SD/extra/a/cache/blob"
mkdir -p "$SD/unrelated"
echo x >"$SD/unrelated/f"
run "$MLREG" check "$SD"
expect_rc "extra nested files without --strict: exit 0" 0
out_has "an extra file in a release directory is reported" "^  extra .*tokenizer/stale-vocab.json"
out_has "an extra directory in a release directory is reported once" "^  extra .*extra/a/cache/"
out_has "an extra top-level directory is reported once" "^  extra .*unrelated/"
grep -q "unrelated/f\|cache/blob" "$TMP/out" && not_ok "extra directories are not looked into" ||
    ok "extra directories are not looked into"
run "$MLREG" check "$SD" --strict
expect_rc "extra nested files with --strict: exit 1" 1
subreset
# a leftover with '/' named by the lock's "removed"
jq '.removed = ["tokenizer/old.json"]' "$SD/mlreg.lock.json" >"$W/l" && cp "$W/l" "$SD/mlreg.lock.json"
echo '{}' >"$SD/tokenizer/old.json"
run "$MLREG" check "$SD"
expect_rc "a nested leftover of the previous release: exit 1" 1
out_has "the nested leftover is named" "FAIL .*leftover .*tokenizer/old.json"

run "$MLREG" check --help
expect_rc "check --help" 0
out_has "check --help has an example" "e\.g\. mlreg check"

finish
