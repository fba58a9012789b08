#!/bin/sh
# test_backup.sh: `mlreg backup` (docs/operations.md, "Backup and restore")
# against a running server on the fs backend: a backup taken while pushes go
# on is complete and private; a server started on it serves the same log
# (same log key, `mlreg audit verify` passes, same head), every release it
# holds pulls and verifies, and stage pointers are the same; a damaged or
# missing blob in the source is reported (exit 1) and never copied as good;
# --link hard-links; usage errors and hostile destinations are refused
# without touching the data directory.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
jqt() { jq -e "$@" >/dev/null; }
blob_path() { echo "$DATA/blobs/sha256/$(echo "$1" | cut -c1-2)/$1"; }

start_server || finish
head -c 4096 /dev/urandom >"$W/tokenizer.json"
for v in 1.0 2.0 3.0; do
    head -c 200000 /dev/urandom >"$W/weights-$v.bin"
    printf '{"dataset":"val","metrics":{"accuracy":0.9%s}}\n' "$(echo $v | tr -d .)" \
        >"$W/eval-$v.json"
    run "$MLREG" push "m/a@$v" --weights "$W/weights-$v.bin" --tokenizer "$W/tokenizer.json" \
        --eval-report "$W/eval-$v.json"
    expect_rc "push m/a@$v" 0
done
run "$MLREG" promote m/a@2.0 --to staging
expect_rc "promote m/a@2.0 to staging" 0

# ---- a backup while pushes go on ---------------------------------------------------
(
    n=1
    while [ ! -f "$W/busy.stop" ] && [ $n -le 40 ]; do
        head -c 50000 /dev/urandom >"$W/busy-$n.bin"
        (cd "$W" && "$MLREG" push "m/busy@$n" --weights "$W/busy-$n.bin") >/dev/null 2>&1 &&
            echo "$n" >>"$W/busy.pushed"
        n=$((n + 1))
    done
) &
BUSY=$!
i=0
while [ ! -s "$W/busy.pushed" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
run "$MLREG" backup --data "$DATA" --to "$W/bk" --json
expect_rc "mlreg backup while pushes go on exits 0" 0
err_has "... and says what it copied" "^mlreg backup: $W/bk: [0-9]+ log entries, [0-9]+ blobs"
cp "$TMP/out" "$W/bk.report"
touch "$W/busy.stop"
wait "$BUSY"
check "the report lists nothing missing or damaged" \
    jqt '.missing == [] and .damaged == [] and .format == 1 and .blobs > 0' "$W/bk.report"
check "... and is written beside the copy" cmp -s "$W/bk.report" "$W/bk/backup.json"
check "the backup directory is private (0700)" [ "$(stat -c %a "$W/bk")" = 700 ]
check "... and so is every file in it" \
    [ -z "$(find "$W/bk" -type f ! -perm 0600)" ]
check "... and every directory" [ -z "$(find "$W/bk" -type d ! -perm 0700)" ]
BK_ENTRIES=$(jq .log_entries "$W/bk.report")
ORIG_KEY=$(curl -s "$MLREG_URL/api/v1/audit/key")
pushed_during=$(wc -l <"$W/busy.pushed")
echo "# backup: $BK_ENTRIES log entries, $(jq .blobs "$W/bk.report") blobs; $pushed_during pushes ran beside it"

# ---- hostile destinations and usage ------------------------------------------------
run "$MLREG" backup --data "$DATA" --to "$W/bk"
expect_rc "a backup into a non-empty directory: exit 1" 1
err_has "... saying it is not empty" "is not empty"
run "$MLREG" backup --data "$DATA" --to "$DATA/blobs/bk"
expect_rc "a backup inside the data directory: exit 1" 1
err_has "... saying so" "inside the data directory"
check "... leaving nothing there" [ ! -e "$DATA/blobs/bk" ]
run "$MLREG" backup --data "$W/nodata" --to "$W/bk-x"
expect_rc "a backup of a directory without an index: exit 1" 1
err_has "... saying it is not a data directory" "not an mlreg data directory"
check "... creating neither directory" sh -c "[ ! -e '$W/nodata' ] && [ ! -e '$W/bk-x' ]"
printf 'x' >"$W/afile"
run "$MLREG" backup --data "$DATA" --to "$W/afile"
expect_rc "a backup onto a file: exit 1" 1
run "$MLREG" backup --data "$DATA"
expect_rc "backup without --to: exit 2" 2
run "$MLREG" backup --data "$DATA" --to "$W/bk-y" --bogus
expect_rc "backup with an unknown flag: exit 2" 2
cat >"$W/s3.json" <<EOF
{"storage": {"backend": "s3", "endpoint": "http://127.0.0.1:9", "bucket": "b"}}
EOF
run "$MLREG" backup --config "$W/s3.json" --to "$W/bk-s3"
check "a backup of an s3-backend config is refused, pointing at the bucket (exit $RC)" \
    sh -c "[ $RC -ne 0 ] && grep -q 'back up the bucket' '$TMP/err'"

# ---- damaged and missing blobs in the source ----------------------------------------
W3=$(sha256sum "$W/weights-3.0.bin" | cut -c1-64)
W1=$(sha256sum "$W/weights-1.0.bin" | cut -c1-64)
cp "$(blob_path "$W3")" "$W/w3.saved"
printf 'rot' | dd of="$(blob_path "$W3")" bs=1 seek=100 conv=notrunc 2>/dev/null
run "$MLREG" backup --data "$DATA" --to "$W/bk-damaged" --json
expect_rc "a backup of a store with a damaged blob: exit 1" 1
err_has "... naming it DAMAGED" "DAMAGED sha256:$W3"
check "... listing it in the report" jqt --arg h "$W3" '.damaged == [$h]' "$TMP/out"
check "... and not copying it" [ ! -e "$W/bk-damaged/blobs/sha256/$(echo "$W3" | cut -c1-2)/$W3" ]
cp "$W/w3.saved" "$(blob_path "$W3")"
mv "$(blob_path "$W1")" "$W/w1.saved"
run "$MLREG" backup --data "$DATA" --to "$W/bk-missing" --json
expect_rc "a backup of a store that lost a blob: exit 1" 1
err_has "... naming it MISSING" "MISSING sha256:$W1"
check "... after copying the index 3 times" jqt --arg h "$W1" '.missing == [$h] and .attempts == 3' "$TMP/out"
mv "$W/w1.saved" "$(blob_path "$W1")"

# ---- --link ------------------------------------------------------------------------
run "$MLREG" backup --data "$DATA" --to "$W/bk-link" --link --json
expect_rc "mlreg backup --link exits 0" 0
check "... hard-linking the blobs (same inode)" [ "$(stat -c %i "$(blob_path "$W3")")" = \
    "$(stat -c %i "$W/bk-link/blobs/sha256/$(echo "$W3" | cut -c1-2)/$W3")" ]
check "... and says so in the report" jqt '.linked == .blobs and .linked > 0' "$TMP/out"
stop_server

# ---- restore: a server on the copy -----------------------------------------------------
DATA=$W/bk
start_server || finish
check "the restored server signs its log with the same key" \
    [ "$(curl -s "$MLREG_URL/api/v1/audit/key")" = "$ORIG_KEY" ]
curl -s "$MLREG_URL/api/v1/audit/key" >"$W/log.pub"
run "$MLREG" audit verify --log-key "$W/log.pub"
expect_rc "mlreg audit verify passes on the restored registry" 0
head_seq=$(curl -s "$MLREG_URL/api/v1/audit/checkpoint" | sed -n 2p)
check "its log holds the $BK_ENTRIES entries of the copy (checkpoint: $head_seq)" \
    [ "$head_seq" = "$BK_ENTRIES" ]
for v in 1.0 2.0 3.0; do
    run "$MLREG" pull "m/a@$v" -o "$W/pull-$v"
    expect_rc "m/a@$v pulls and verifies from the restored registry" 0
done
check "... with the same bytes" cmp -s "$W/weights-3.0.bin" "$W/pull-3.0/weights-3.0.bin"
run "$MLREG" resolve m/a:staging
check "m/a:staging is 2.0 on the restored registry ($(cat "$TMP/out"))" grep -q '2.0' "$TMP/out"
bad=""
for n in $(curl -s "$MLREG_URL/api/v1/models/m/busy" | jq -r '.releases[].version'); do
    (cd "$W" && "$MLREG" pull "m/busy@$n" -o "$W/pb-$n") >/dev/null 2>&1 || bad="$bad $n"
done
check "every m/busy release the copy holds pulls and verifies (bad:$bad)" [ -z "$bad" ]
run "$MLREG" push m/a@4.0 --weights "$W/weights-1.0.bin"
expect_rc "the restored registry takes a new push" 0
finish
