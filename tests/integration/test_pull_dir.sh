#!/bin/sh
# test_pull_dir.sh: `mlreg pull` into a directory that holds an earlier pull:
# the previous release's files the new one does not have are removed (a
# stale model.safetensors.index.json), a file no lock lists that is in the
# way is refused with the directory untouched (or replaced with --force),
# other files are left alone, a lock that is not one mlreg wrote is
# refused, and the lock records the signer key ids after --trusted-key.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
D=$W/deploy
mkdir -p "$W"
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
# snapshot DIR: names, sizes and hashes of everything in DIR, sorted.
snapshot() { (cd "$1" && find . -type f | sort | xargs sha256sum); }

"$MLREG" key generate --out "$W/bot" --no-password >/dev/null 2>&1 || not_ok "key generate"
"$MLREG" key generate --out "$W/other" --no-password >/dev/null 2>&1 || not_ok "key generate"
cat >"$W/config.json" <<EOF2
{ "stages": ["dev", "production"],
  "trusted_keys": [ { "name": "release-bot", "file": "$W/bot.pub", "role": "release" } ] }
EOF2
start_server --config "$W/config.json" || finish

mkdir -p "$W/v1" "$W/v2"
printf '{"metrics":{"accuracy":0.9}}\n' >"$W/eval.json"
head -c 3000 /dev/urandom >"$W/v1/model-00001-of-00002.safetensors"
head -c 3000 /dev/urandom >"$W/v1/model-00002-of-00002.safetensors"
printf '{"weight_map":{}}\n' >"$W/v1/model.safetensors.index.json"
printf '{"v":1}\n' >"$W/v1/config.json"
head -c 5000 /dev/urandom >"$W/v2/model.safetensors"
printf '{"v":2}\n' >"$W/v2/config.json"
run sh -c "cd '$TMP' && '$MLREG' push m/llm@1 --weights '$W/v1/model-00001-of-00002.safetensors' \
    --weights '$W/v1/model-00002-of-00002.safetensors' --weights '$W/v1/model.safetensors.index.json' \
    --config '$W/v1/config.json' --eval-report '$W/eval.json' --sign-key '$W/bot.key'"
expect_rc "push m/llm@1 (sharded, with an index)" 0
run sh -c "cd '$TMP' && '$MLREG' push m/llm@2 --weights '$W/v2/model.safetensors' \
    --config '$W/v2/config.json' --eval-report '$W/eval.json' --sign-key '$W/bot.key'"
expect_rc "push m/llm@2 (one file)" 0

run "$MLREG" pull m/llm@1 -o "$D" --trusted-key "$W/bot.pub"
expect_rc "pull 1 into an empty dir" 0
[ -f "$D/model.safetensors.index.json" ] && ok "1 has its index" || not_ok "1 has its index"
jq -e '.verified_by | length == 1' "$D/mlreg.lock.json" >/dev/null &&
    ok "the lock records the key id that verified" || not_ok "the lock records the key id that verified"
BOTID=$("$MLREG" key list --json 2>/dev/null | jq -r '.keys[0].key_id' 2>/dev/null)
jq -e --arg id "$BOTID" '.verified_by == [$id] and (.signatures[0].signature | startswith("untrusted comment"))' \
    "$D/mlreg.lock.json" >/dev/null && ok "verified_by is the release key's id, with its signature" ||
    not_ok "verified_by is the release key's id, with its signature ($BOTID)"
echo "keep me" >"$D/notes.txt"

run "$MLREG" pull m/llm@2 -o "$D"
expect_rc "pull 2 over 1" 0
[ ! -e "$D/model.safetensors.index.json" ] && ok "the stale index of 1 is gone" ||
    not_ok "the stale index of 1 is gone"
[ ! -e "$D/model-00001-of-00002.safetensors" ] && [ ! -e "$D/model-00002-of-00002.safetensors" ] &&
    ok "the shards of 1 are gone" || not_ok "the shards of 1 are gone"
cmp -s "$D/model.safetensors" "$W/v2/model.safetensors" && cmp -s "$D/config.json" "$W/v2/config.json" &&
    ok "2's files are in place" || not_ok "2's files are in place"
[ "$(cat "$D/notes.txt")" = "keep me" ] && ok "a file no lock lists is left alone" ||
    not_ok "a file no lock lists is left alone"
jq -e '.version == "2" and (.removed | sort) == ["model-00001-of-00002.safetensors","model-00002-of-00002.safetensors","model.safetensors.index.json"]' \
    "$D/mlreg.lock.json" >/dev/null && ok "the new lock lists what it removed" ||
    not_ok "the new lock lists what it removed ($(jq -c .removed "$D/mlreg.lock.json"))"
jq -e 'has("verified_by") | not' "$D/mlreg.lock.json" >/dev/null &&
    ok "no verified_by without --trusted-key" || not_ok "no verified_by without --trusted-key"

# a crash after the renames: the leftover is named by the lock's "removed",
# and the next pull removes it
printf '{"weight_map":{}}\n' >"$D/model.safetensors.index.json"
run "$MLREG" pull m/llm@2 -o "$D"
expect_rc "pull 2 again over a leftover the lock names as removed" 0
[ ! -e "$D/model.safetensors.index.json" ] && ok "the leftover named under removed is removed" ||
    not_ok "the leftover named under removed is removed"

# an unknown file in the way: refused before anything is downloaded
rm -rf "$D"
mkdir -p "$D"
echo '{"handmade":true}' >"$D/config.json"
snapshot "$D" >"$W/before"
run "$MLREG" pull m/llm@2 -o "$D"
expect_rc "an unknown file in the way: refused (exit 1)" 1
err_has "the refusal names the file and --force" "config.json is in the way.*--force"
snapshot "$D" >"$W/after"
cmp -s "$W/before" "$W/after" && [ "$(ls -A "$D" | wc -l)" = 1 ] && ok "the refused dir is untouched" ||
    not_ok "the refused dir is untouched"
run "$MLREG" pull m/llm@2 -o "$D" --force
expect_rc "--force replaces it" 0
err_has "--force warns about the file it replaces" "warning: replacing .*config.json"
cmp -s "$D/config.json" "$W/v2/config.json" && ok "--force put the release's file in place" ||
    not_ok "--force put the release's file in place"

# a copy of the release's own file is not in the way
rm -rf "$D"
mkdir -p "$D"
cp "$W/v2/config.json" "$D/config.json"
run "$MLREG" pull m/llm@2 -o "$D"
expect_rc "a file that already holds the release's bytes is not in the way" 0

# a lock mlreg did not write: refused; --force replaces and removes nothing
echo "junk" >"$W/junk"
cp "$W/junk" "$D/model.safetensors.index.json"
echo '{"files":[{"title":"../../etc/passwd"}],"removed":["../x"]}' >"$D/mlreg.lock.json"
snapshot "$D" >"$W/before"
run "$MLREG" pull m/llm@1 -o "$D"
expect_rc "a hostile lock is refused (exit 1)" 1
err_has "the refusal says the lock is not mlreg's" "not a lock file mlreg can read"
snapshot "$D" >"$W/after"
cmp -s "$W/before" "$W/after" && ok "a hostile lock: dir untouched" || not_ok "a hostile lock: dir untouched"
echo 'not json' >"$D/mlreg.lock.json"
run "$MLREG" pull m/llm@1 -o "$D"
expect_rc "a lock that is not JSON is refused" 1
run "$MLREG" pull m/llm@1 -o "$D" --force
expect_rc "--force over an unreadable lock" 0
[ -e "$D/model.safetensors" ] && ok "--force over an unreadable lock removes nothing" ||
    not_ok "--force over an unreadable lock removes nothing"

# a directory where a removed file was is left alone
rm -rf "$D"
run "$MLREG" pull m/llm@1 -o "$D"
rm "$D/model.safetensors.index.json" && mkdir "$D/model.safetensors.index.json"
run "$MLREG" pull m/llm@2 -o "$D"
expect_rc "a leftover that became a directory does not stop the pull" 0
[ -d "$D/model.safetensors.index.json" ] && ok "that directory is left alone" ||
    not_ok "that directory is left alone"

run "$MLREG" pull --help
grep -q -- "--force" "$TMP/out" && ok "pull --help lists --force" || not_ok "pull --help lists --force"

finish
