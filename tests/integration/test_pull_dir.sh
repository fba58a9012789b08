#!/bin/sh
# test_pull_dir.sh: `mlreg pull` into a directory that holds an earlier pull:
# the previous release's files the new one does not have are removed (a
# stale model.safetensors.index.json), a file no lock lists that is in the
# way is refused with the directory untouched (or replaced with --force),
# other files are left alone, a lock that is not one mlreg wrote is
# refused, and the lock records the signer key ids after --trusted-key.
# Titles with subdirectories: files land in them, a symbolic link or file
# where a directory must be is refused before any download and never
# followed (--force replaces it with a directory), directories a later
# release no longer needs are removed once empty.
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


# ---- titles with subdirectories ----------------------------------------------
S=$W/sub
mkdir -p "$S"
head -c 4000 /dev/urandom >"$S/model.safetensors"
printf '{"vocab":1}\n' >"$S/vocab.json"
printf 'a b\n' >"$S/merges.txt"
printf '{"deep":1}\n' >"$S/deep.json"
printf '{"v":3}\n' >"$S/config.json"
put_release m/sub 1 model.safetensors=weights="$S/model.safetensors" \
    tokenizer/vocab.json=tokenizer="$S/vocab.json" tokenizer/merges.txt=tokenizer="$S/merges.txt" \
    extra/a/b/deep.json=config="$S/deep.json" eval.json=eval-report="$W/eval.json" &&
    ok "a release with subdirectory titles is pushed (hand-made manifest)" ||
    not_ok "a release with subdirectory titles is pushed (hand-made manifest)"
put_release m/sub 2 model.safetensors=weights="$S/model.safetensors" \
    config.json=config="$S/config.json" eval.json=eval-report="$W/eval.json" &&
    ok "a release without the subdirectories is pushed" ||
    not_ok "a release without the subdirectories is pushed"

P=$W/subpull
run "$MLREG" pull m/sub@1 -o "$P"
expect_rc "pull of a release with subdirectories" 0
cmp -s "$P/tokenizer/vocab.json" "$S/vocab.json" && cmp -s "$P/tokenizer/merges.txt" "$S/merges.txt" &&
    cmp -s "$P/extra/a/b/deep.json" "$S/deep.json" && ok "the files land in their subdirectories" ||
    not_ok "the files land in their subdirectories"
[ "$(sha256_of "$P/tokenizer/vocab.json")" = "$(sha256_of "$S/vocab.json")" ] &&
    ok "a nested file's digest matches" || not_ok "a nested file's digest matches"
jq -e '[.files[].title] | sort == ["eval.json","extra/a/b/deep.json","model.safetensors","tokenizer/merges.txt","tokenizer/vocab.json"]' \
    "$P/mlreg.lock.json" >/dev/null && ok "the lock lists the titles with '/'" ||
    not_ok "the lock lists the titles with '/' ($(jq -c '[.files[].title]' "$P/mlreg.lock.json"))"
[ -z "$(find "$P" -name '.mlreg-tmp*')" ] && ok "no temp file is left" || not_ok "no temp file is left"
run "$MLREG" pull m/sub@1 -o "$P"
expect_rc "the same pull again over itself" 0

# a symbolic link where a directory of a title must be: refused, never followed
E=$W/elsewhere
rm -rf "$P" "$E"
mkdir -p "$P" "$E"
ln -s "$E" "$P/tokenizer"
snapshot "$P" >"$W/before"
run "$MLREG" pull m/sub@1 -o "$P"
expect_rc "a symlink in the way of tokenizer/: refused (exit 1)" 1
err_has "the refusal names the link" "tokenizer is a symbolic link.*in the way"
grep -q "downloading\|verified" "$TMP/err" && not_ok "refused before any download" ||
    ok "refused before any download"
[ -z "$(ls -A "$E")" ] && ok "nothing written where the link points" ||
    not_ok "nothing written where the link points ($(ls -A "$E"))"
[ -L "$P/tokenizer" ] && [ ! -e "$P/mlreg.lock.json" ] && [ ! -e "$P/extra" ] &&
    ok "the refused dir is untouched" || not_ok "the refused dir is untouched"
# a link deeper down, inside a real directory
rm "$P/tokenizer"
mkdir -p "$P/extra/a"
ln -s "$E" "$P/extra/a/b"
run "$MLREG" pull m/sub@1 -o "$P"
expect_rc "a symlink two levels down: refused" 1
err_has "the refusal names the deep link" "extra/a/b is a symbolic link"
[ -z "$(ls -A "$E")" ] && ok "nothing written through the deep link" ||
    not_ok "nothing written through the deep link"
# --force: the link is removed (never followed) and replaced by a directory
run "$MLREG" pull m/sub@1 -o "$P" --force
expect_rc "--force replaces a symlink in the way with a directory" 0
err_has "--force warns about the link it replaces" "extra/a/b is no directory; replacing"
[ -d "$P/extra/a/b" ] && [ ! -L "$P/extra/a/b" ] && cmp -s "$P/extra/a/b/deep.json" "$S/deep.json" &&
    ok "--force: a real directory with the file in it" || not_ok "--force: a real directory with the file in it"
[ -z "$(ls -A "$E")" ] && ok "--force wrote nothing where the link pointed" ||
    not_ok "--force wrote nothing where the link pointed"

# a file where a directory of a title must be: refused; --force replaces it
rm -rf "$P"
mkdir -p "$P"
echo "user's notes" >"$P/tokenizer"
run "$MLREG" pull m/sub@1 -o "$P"
expect_rc "a file named tokenizer in the way: refused" 1
err_has "the refusal names the file and --force" "tokenizer is a file.*--force"
[ "$(cat "$P/tokenizer")" = "user's notes" ] && [ "$(ls -A "$P")" = tokenizer ] &&
    ok "the file in the way is untouched" || not_ok "the file in the way is untouched"
run "$MLREG" pull m/sub@1 -o "$P" --force
expect_rc "--force replaces the file with a directory" 0
[ -d "$P/tokenizer" ] && cmp -s "$P/tokenizer/vocab.json" "$S/vocab.json" &&
    ok "--force: tokenizer/ holds the release's files" || not_ok "--force: tokenizer/ holds the release's files"
[ "$(grep -c "is no directory; replacing" "$TMP/err")" = 1 ] &&
    ok "--force warns once for an entry in the way of two titles" ||
    not_ok "--force warns once for an entry in the way of two titles"
# a refused pull makes no directory (they are made only after every file is
# verified, right before the renames)
rm -rf "$P"
mkdir -p "$P"
echo x >"$P/eval.json"
chmod a-w "$P/eval.json"
run "$MLREG" pull m/sub@1 -o "$P" --force
expect_rc "a read-only target stops the pull" 2
[ ! -e "$P/tokenizer" ] && [ ! -e "$P/extra" ] && ok "a refused pull leaves no directory behind" ||
    not_ok "a refused pull leaves no directory behind ($(ls -A "$P"))"
rm -f "$P/eval.json"

# v2 without the subdirectories: the old files and emptied directories go,
# a directory holding a user's file stays
rm -rf "$P"
run "$MLREG" pull m/sub@1 -o "$P"
expect_rc "pull 1 with subdirectories" 0
echo "mine" >"$P/extra/a/mine.txt"
run "$MLREG" pull m/sub@2 -o "$P"
expect_rc "pull 2 (no subdirectories) over 1" 0
[ ! -e "$P/tokenizer" ] && ok "the emptied tokenizer/ is removed" || not_ok "the emptied tokenizer/ is removed"
[ ! -e "$P/extra/a/b" ] && ok "the emptied extra/a/b/ is removed" || not_ok "the emptied extra/a/b/ is removed"
[ "$(cat "$P/extra/a/mine.txt" 2>/dev/null)" = mine ] && ok "a directory holding a user's file stays" ||
    not_ok "a directory holding a user's file stays"
jq -e '(.removed | sort) == ["extra/a/b/deep.json","tokenizer/merges.txt","tokenizer/vocab.json"]' \
    "$P/mlreg.lock.json" >/dev/null && ok "the lock lists the removed titles with '/'" ||
    not_ok "the lock lists the removed titles with '/' ($(jq -c .removed "$P/mlreg.lock.json"))"
cmp -s "$P/config.json" "$S/config.json" && ok "2's files are in place" || not_ok "2's files are in place"
# and back: 1 over 2 recreates the directories
run "$MLREG" pull m/sub@1 -o "$P"
expect_rc "pull 1 over 2 again" 0
[ ! -e "$P/config.json" ] && cmp -s "$P/tokenizer/vocab.json" "$S/vocab.json" &&
    ok "1 over 2: directories back, 2's file gone" || not_ok "1 over 2: directories back, 2's file gone"


# leftovers are removed through no link: tokenizer/ swapped for a link to a
# directory holding a vocab.json, then a pull of 2 removes nothing there
rm -rf "$P" "$E"
mkdir -p "$E"
run "$MLREG" pull m/sub@1 -o "$P"
expect_rc "pull 1 again" 0
mv "$P/tokenizer" "$W/tokenizer.moved"
cp "$S/vocab.json" "$E/vocab.json"
ln -s "$E" "$P/tokenizer"
run "$MLREG" pull m/sub@2 -o "$P"
expect_rc "pull 2 over 1 whose tokenizer/ is now a link" 0
cmp -s "$E/vocab.json" "$S/vocab.json" && ok "nothing removed through the link" ||
    not_ok "nothing removed through the link"
[ -L "$P/tokenizer" ] && ok "the link itself is left alone" || not_ok "the link itself is left alone"

# the previous release's file where the new one needs a directory: replaced
# without --force (it is no user's file)
printf 'flat\n' >"$S/tokenizer"
put_release m/sub 3 tokenizer=tokenizer="$S/tokenizer" eval.json=eval-report="$W/eval.json" &&
    ok "a release with a file named tokenizer is pushed" ||
    not_ok "a release with a file named tokenizer is pushed"
rm -rf "$P"
run "$MLREG" pull m/sub@3 -o "$P"
expect_rc "pull 3 (a file tokenizer)" 0
run "$MLREG" pull m/sub@1 -o "$P"
expect_rc "pull 1 over 3: the previous release's file becomes a directory" 0
[ -d "$P/tokenizer" ] && cmp -s "$P/tokenizer/vocab.json" "$S/vocab.json" &&
    ok "tokenizer/ replaced the previous release's file" ||
    not_ok "tokenizer/ replaced the previous release's file"
grep -q "warning" "$TMP/err" && not_ok "no warning for the previous release's file" ||
    ok "no warning for the previous release's file"
# the other way round is refused (a known limit, documented): a file where
# the previous release left a directory
run "$MLREG" pull m/sub@3 -o "$P"
expect_rc "pull 3 over 1: a directory where the file must go is refused" 2
err_has "the refusal names the directory" "tokenizer exists and is a directory"

# On a case-sensitive filesystem (this one) Notes.txt and notes.txt are two
# files: a lock that lists Notes.txt does not own the user's notes.txt
printf 'OLD' >"$W/notes-old.txt"
printf 'NEW' >"$W/notes-new.txt"
printf 'USERDATA' >"$W/notes-user.txt"
put_release m/case 1 Notes.txt=config="$W/notes-old.txt" eval.json=eval-report="$W/eval.json" &&
    put_release m/case 2 notes.txt=config="$W/notes-new.txt" eval.json=eval-report="$W/eval.json" &&
    ok "releases with Notes.txt (1) and notes.txt (2)" || not_ok "releases with Notes.txt (1) and notes.txt (2)"
C=$TMP/case
run "$MLREG" pull m/case@1 -o "$C"
expect_rc "pull 1 (Notes.txt)" 0
cp "$W/notes-user.txt" "$C/notes.txt"
run "$MLREG" pull m/case@2 -o "$C"
expect_rc "pull 2 over the user's own notes.txt is refused" 1
err_has "... naming it as in the way" "notes.txt is in the way"
check "... the user's file is untouched" cmp -s "$C/notes.txt" "$W/notes-user.txt"
rm "$C/notes.txt"
run "$MLREG" pull m/case@2 -o "$C"
expect_rc "pull 2 once the user's file is gone" 0
check "... notes.txt is the release's" cmp -s "$C/notes.txt" "$W/notes-new.txt"
check "... and the old release's Notes.txt, a file of its own here, was removed" test ! -e "$C/Notes.txt"

run "$MLREG" pull --help
grep -q -- "--force" "$TMP/out" && ok "pull --help lists --force" || not_ok "pull --help lists --force"

finish
