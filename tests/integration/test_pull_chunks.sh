#!/bin/sh
# test_pull_chunks.sh: `mlreg pull` of a file with a chunk index: parallel
# ranges, each chunk verified (one corrupted range fetched again, and only
# it), a pull killed halfway resumed from the chunks it kept (bytes counted
# by a proxy), a corrupted or hostile index refused with nothing placed,
# --parallel and --limit-rate, a release without an index as before, and
# a chunked file in a subdirectory.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

start_server || finish
TOOLS=$MLREG_ROOT/tests/tools
W=$TMP/work
mkdir -p "$W"
GIT=0123456789abcdef0123456789abcdef01234567
CS=524288                       # the tests' chunk size: 512 KiB
SIZE=$((12 * CS + 1234))        # 13 chunks, the last one short
head -c $SIZE /dev/urandom >"$W/big.bin"
printf '{"layers":2}' >"$W/cfg.json"
HEX=$(sha256_of "$W/big.bin")
PROXY_PID=""

says() {
    if grep -qF -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (stderr lacks '$2': $(tail -n 3 "$TMP/err"))"; fi
}
# proxy_start [range_proxy options]: a fresh proxy (and log) in front of the server.
proxy_start() {
    proxy_stop
    rm -f "$TMP/proxy.ready" "$TMP/proxy.log"
    : >"$TMP/proxy.log"
    python3 "$TOOLS/range_proxy.py" "$MLREG_URL" "$TMP/proxy.ready" "$TMP/proxy.log" "$@" &
    PROXY_PID=$!
    i=0
    while [ ! -s "$TMP/proxy.ready" ]; do
        i=$((i + 1))
        [ $i -gt 100 ] && { not_ok "proxy starts"; return 1; }
        sleep 0.05
    done
    PROXY=$(cat "$TMP/proxy.ready")
}
# proxy_reset: the running proxy, a fresh log.
proxy_reset() { : >"$TMP/proxy.log"; }
proxy_stop() {
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
    PROXY_PID=""
}
# Counts from the proxy log, for GETs of the big file's blob.
blob_q() { jq -s "[.[] | select(.method == \"GET\" and (.path | endswith(\"$HEX\")))] | $1" "$TMP/proxy.log"; }
range_of() { echo "$(($1 * CS))-$(($1 * CS + CS - 1))"; }
nothing_placed() { [ ! -e "$1/big.bin" ] && [ ! -e "$1/mlreg.lock.json" ] && [ ! -e "$1/cfg.json" ]; }
jqt() { jq -e "$@" >/dev/null; }
kept_of() { sed -n 's/.* \([0-9]*\) kept from an earlier pull.*/\1/p' "$TMP/err"; }

# ---- releases: 1.0 pushed plainly, 2.0 the same files plus a chunk index ----
run "$MLREG" push team/big@1.0 --weights "$W/big.bin" --config "$W/cfg.json" --git-sha $GIT
expect_rc "push 1.0 (no chunk index)" 0
run python3 "$TOOLS/chunked_release.py" "$MLREG_URL" team/big 1.0 2.0 "$W/big.bin" $CS
expect_rc "a release with a chunk index (2.0) is accepted by the registry" 0
D2=$(cat "$TMP/out")

# ---- a parallel pull through the proxy -----------------------------------
proxy_start || finish
run "$MLREG" pull team/big@2.0 -o "$W/o1" --registry "$PROXY"
expect_rc "pull of a release with a chunk index exits 0" 0
check "the file is the pushed bytes" cmp -s "$W/big.bin" "$W/o1/big.bin"
check "the chunk index is not written as a file" test ! -e "$W/o1/big.bin.chunks"
check "the lock file lists the two files only, not the index" \
    jqt --arg d "$D2" '.digest == $d and ([.files[].title] == ["big.bin", "cfg.json"])
        and ([.files[].kind] | index("chunk-index") == null)' "$W/o1/mlreg.lock.json"
check "the output lists no chunk index" sh -c "! grep -q 'chunk-index' '$TMP/err'"
says "the output says how many chunks were fetched" "13 chunks: 13 fetched, 0 kept"
check "the staging dir is removed after a complete pull" test ! -e "$W/o1/.mlreg-pull"
check "the file came in 13 ranged GETs of one chunk each, $SIZE bytes in all" \
    test "$(blob_q '[length, (map(.bytes) | add), (map(select(.status == 206)) | length)]' | tr -d ' \n')" = "[13,$SIZE,13]"
check "the ranges asked for are exactly the chunks" \
    test "$(blob_q '[.[].range] | sort | unique | length')" = 13

# ---- --parallel 1 and a release without an index ----------------------------
run "$MLREG" pull team/big@2.0 -o "$W/o2" --parallel 1
expect_rc "--parallel 1 works" 0
check "--parallel 1: the file is the pushed bytes" cmp -s "$W/big.bin" "$W/o2/big.bin"
proxy_reset
run "$MLREG" pull team/big@1.0 -o "$W/o3" --registry "$PROXY"
expect_rc "a release without a chunk index pulls as before" 0
check "no index: the file is the pushed bytes" cmp -s "$W/big.bin" "$W/o3/big.bin"
check "no index: one plain GET of the whole file" \
    test "$(blob_q '[length, .[0].range, .[0].status]' | tr -d ' \n')" = '[1,null,200]'
check "no index: no staging dir" test ! -e "$W/o3/.mlreg-pull"
check "no index: the output line is unchanged" grep -q '^  weights     big.bin  *6.0 MiB  verified$' "$TMP/err"

# ---- one corrupted range is fetched again, and only it ------------------------
proxy_start --corrupt "$(range_of 5)" || finish
run "$MLREG" pull team/big@2.0 -o "$W/o4" --registry "$PROXY"
expect_rc "a pull whose chunk 5 arrives corrupted once still succeeds" 0
check "corrupted once: the file is the pushed bytes" cmp -s "$W/big.bin" "$W/o4/big.bin"
check "corrupted once: chunk 5 was asked for twice, every other chunk once" \
    test "$(blob_q "[length, (map(select(.range == \"bytes=$(range_of 5)\")) | length)]" | tr -d ' \n')" = "[14,2]"
check "corrupted once: bytes served are the file plus one chunk" \
    test "$(blob_q 'map(.bytes) | add')" = $((SIZE + CS))
says "corrupted once: the output says one chunk was fetched again" "1 fetched again"

proxy_start --corrupt "$(range_of 7)" --corrupt-times 100 || finish
run "$MLREG" pull team/big@2.0 -o "$W/o5" --registry "$PROXY" --parallel 1
expect_rc "a chunk that never verifies fails the pull (exit 1)" 1
says "the error names the chunk and its bytes" "chunk 7 (bytes $(range_of 7)) did not match the chunk index in 3 fetches"
check "a failed pull places nothing" nothing_placed "$W/o5"
check "a failed pull keeps its partial file for the next one" test -f "$W/o5/.mlreg-pull/$HEX.part"
check "the failing chunk was tried 3 times" \
    test "$(blob_q "map(select(.range == \"bytes=$(range_of 7)\")) | length")" = 3

# ---- a pull killed halfway resumes and fetches only the rest -------------------
proxy_start || finish
"$MLREG" pull team/big@2.0 -o "$W/o6" --registry "$PROXY" --parallel 2 --limit-rate 1M \
    >/dev/null 2>"$TMP/killed.err" &
PULL_PID=$!
i=0
# a range thread asks for its next chunk only once the last one is verified and
# written: 6 answers sent to 2 threads mean at least 4 chunks are on disk
while [ "$(blob_q 'length')" -lt 6 ] && [ $i -lt 300 ]; do
    i=$((i + 1)); sleep 0.05
done
kill -9 $PULL_PID 2>/dev/null
wait $PULL_PID 2>/dev/null
FIRST=$(blob_q 'map(.bytes) | add')
check "the killed pull had fetched part of the file ($FIRST bytes)" test "$FIRST" -lt $SIZE
check "the killed pull placed nothing" nothing_placed "$W/o6"
check "the killed pull left its partial file" test -f "$W/o6/.mlreg-pull/$HEX.part"
sleep 0.2
proxy_reset
run "$MLREG" pull team/big@2.0 -o "$W/o6" --registry "$PROXY"
expect_rc "the pull run again succeeds" 0
check "resumed: the file is the pushed bytes" cmp -s "$W/big.bin" "$W/o6/big.bin"
KEPT=$(kept_of)
SECOND=$(blob_q 'map(.bytes) | add')
check "resumed: it kept the chunks already verified (${KEPT:-none} kept)" test "${KEPT:-0}" -ge 4
check "resumed: it fetched only the rest ($SECOND bytes = file - $KEPT chunks)" \
    test "$SECOND" = $((SIZE - KEPT * CS))
check "resumed: the staging dir is gone" test ! -e "$W/o6/.mlreg-pull"
# SIGTERM: the temp files go, the partial file stays for the next pull
proxy_reset
"$MLREG" pull team/big@2.0 -o "$W/o14" --registry "$PROXY" --parallel 1 --limit-rate 1M \
    >/dev/null 2>&1 &
PULL_PID=$!
i=0
while [ "$(blob_q 'length')" -lt 2 ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.05; done
kill -TERM $PULL_PID
wait $PULL_PID
check "SIGTERM ends the pull by the signal" test $? = 143
check "SIGTERM: no temp file left in DIR" sh -c "! ls -A '$W/o14' | grep -q '^.mlreg-tmp-'"
check "SIGTERM: nothing placed, the partial file kept" \
    sh -c "[ ! -e '$W/o14/big.bin' ] && [ -f '$W/o14/.mlreg-pull/$HEX.part' ]"
proxy_start --no-range || finish
run "$MLREG" pull team/big@2.0 -o "$W/o15" --registry "$PROXY"
expect_rc "a registry that ignores Range: the pull fails (exit 1)" 1
says "and says the registry may not serve byte ranges" "does it serve byte ranges?"
check "ignored Range: nothing placed" nothing_placed "$W/o15"
proxy_stop
# the pull that failed on chunk 7 resumes too, without the proxy's damage
run "$MLREG" pull team/big@2.0 -o "$W/o5"
expect_rc "the pull that failed on a chunk succeeds once the chunk is served right" 0
says "it kept the 7 chunks before it that had verified (--parallel 1)" "13 chunks: 6 fetched, 7 kept"
check "and the file is right" cmp -s "$W/big.bin" "$W/o5/big.bin"
proxy_stop

# ---- signed: --trusted-key with a chunk index ----------------------------------
"$MLREG" key generate --out "$W/k" --no-password >/dev/null 2>&1
run "$MLREG" sign team/big@2.0 --key "$W/k.key"
expect_rc "sign the release with its chunk index" 0
run "$MLREG" pull team/big@2.0 -o "$W/o7" --trusted-key "$W/k.pub"
expect_rc "pull --trusted-key of a signed release with a chunk index" 0
check "signed: the file is the pushed bytes" cmp -s "$W/big.bin" "$W/o7/big.bin"

# ---- a corrupted chunk index is refused ------------------------------------------
run python3 "$TOOLS/chunked_release.py" "$MLREG_URL" team/big 1.0 3.0 "$W/big.bin" 1048576
expect_rc "release 3.0 (1 MiB chunks)" 0
IX3=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$MLREG_URL/v2/team/big/manifests/3.0" | jq -r '.layers[] | select(.annotations["org.mlreg.kind"] == "chunk-index") | .digest' | cut -d: -f2)
BLOB=$(find "$DATA" -type f -name "$IX3" | head -n 1)
check "the index blob is in the store" test -f "$BLOB"
chmod u+w "$BLOB" 2>/dev/null
sed -i 's/"chunkSize":1048576/"chunkSize":1048577/' "$BLOB"
run "$MLREG" pull team/big@3.0 -o "$W/o8"
expect_rc "an index whose bytes do not match the manifest's digest is refused (exit 1)" 1
says "the error says the chunk index does not match the release" "big.bin.chunks: chunk index does not match the release"
check "a refused index: nothing placed, no partial file" \
    sh -c "[ ! -e '$W/o8/big.bin' ] && [ ! -e '$W/o8/mlreg.lock.json' ] && [ ! -e '$W/o8/.mlreg-pull/$HEX.part' ]"

# ---- hostile index contents (the manifest names them by their true digest) ------
for mode in count chunksize oddsize size; do
    run python3 "$TOOLS/chunked_release.py" "$MLREG_URL" team/big 1.0 "h-$mode" "$W/big.bin" $CS $mode
    if [ "$RC" != 0 ]; then ok "hostile index $mode: refused by the registry already"; continue; fi
    run "$MLREG" pull "team/big@h-$mode" -o "$W/o-$mode"
    expect_rc "hostile index ($mode) is refused (exit 1)" 1
    says "hostile index ($mode): the error names the index" "big.bin.chunks: chunk index"
    check "hostile index ($mode): nothing placed" nothing_placed "$W/o-$mode"
done

# chunk digests of other bytes: no chunk ever verifies
head -c $SIZE /dev/urandom >"$W/other.bin"
run python3 "$TOOLS/chunked_release.py" "$MLREG_URL" team/big 1.0 lie "$W/big.bin" $CS "lie:$W/other.bin"
expect_rc "release 'lie' (chunk digests of other bytes)" 0
run "$MLREG" pull team/big@lie -o "$W/o9" --parallel 1
expect_rc "an index whose chunks lie fails the pull (exit 1)" 1
says "lying chunks: the error names chunk 0" "chunk 0 (bytes $(range_of 0)) did not match the chunk index"
check "lying chunks: nothing placed" nothing_placed "$W/o9"

# chunks that verify but do not make up the file: the registry's stored copy is
# damaged, and the index describes the damaged bytes. Only the whole-file
# digest can tell; it is checked before anything is placed.
head -c $SIZE /dev/urandom >"$W/big2.bin"
run "$MLREG" push team/big2@1.0 --weights "$W/big2.bin" --git-sha $GIT
expect_rc "push big2" 0
cp "$W/big2.bin" "$W/big2.bad"
printf 'X' | dd of="$W/big2.bad" bs=1 seek=$((3 * CS + 17)) conv=notrunc 2>/dev/null
BLOB2=$(find "$DATA" -type f -name "$(sha256_of "$W/big2.bin")" | head -n 1)
chmod u+w "$BLOB2" 2>/dev/null
cp "$W/big2.bad" "$BLOB2"
run python3 "$TOOLS/chunked_release.py" "$MLREG_URL" team/big2 1.0 2.0 "$W/big2.bin" $CS "lie:$W/big2.bad"
expect_rc "release big2@2.0 (an index of the damaged bytes)" 0
run "$MLREG" pull team/big2@2.0 -o "$W/o10"
expect_rc "chunks that verify but a whole file that does not: refused (exit 1)" 1
says "the whole-file check names the file" "big2.bin: digest mismatch: every chunk matched the chunk index"
check "whole-file mismatch: nothing placed, the useless partial file removed" \
    sh -c "[ ! -e '$W/o10/big2.bin' ] && [ ! -e '$W/o10/mlreg.lock.json' ] && [ -z \"\$(ls -A '$W/o10/.mlreg-pull' 2>/dev/null)\" ]"

# ---- usage ----------------------------------------------------------------------
for bad in "--parallel 0" "--parallel 33" "--parallel x" "--limit-rate 0" "--limit-rate 5X" "--limit-rate -1"; do
    run "$MLREG" pull team/big@2.0 -o "$W/ou" $bad
    expect_rc "pull $bad is a usage error (exit 2)" 2
done
run "$MLREG" pull team/big@2.0 -o "$W/o11" --limit-rate 64M --parallel 3
expect_rc "--limit-rate 64M --parallel 3 works" 0
check "and the file is right" cmp -s "$W/big.bin" "$W/o11/big.bin"

# ---- the staging dir is ours or nothing is written ------------------------------------
mkdir -p "$W/o12"
ln -s "$W/elsewhere" "$W/o12/.mlreg-pull"
run "$MLREG" pull team/big@2.0 -o "$W/o12"
expect_rc "a staging dir that is a symbolic link stops the pull" 2
check "nothing was written through the link" test ! -e "$W/elsewhere"
mkdir -p "$W/elsewhere2" "$W/o13"
: >"$W/elsewhere2/$HEX.part"
ln -s "$W/elsewhere2" "$W/o13/.mlreg-pull"
run "$MLREG" pull team/big@1.0 -o "$W/o13"
expect_rc "a pull without an index ignores a staging dir link" 0
check "and removes nothing through it" test -e "$W/elsewhere2/$HEX.part"

# ---- a file with a chunk index in a subdirectory -------------------------------------
# 2.0's manifest with the file and its index titled shards/big.bin(.chunks)
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$MLREG_URL/v2/team/big/manifests/2.0" |
    jq -c '.annotations["org.mlreg.version"] = "sub1" |
        .layers |= map(.annotations["org.opencontainers.image.title"] |=
            (if startswith("big.bin") then "shards/" + . else . end))' >"$W/m3.json"
st=$(curl -s -o "$W/m3.out" -w '%{http_code}' -X PUT \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$W/m3.json" \
    "$MLREG_URL/v2/team/big/manifests/sub1")
check "a release with the chunked file in shards/ is accepted (sub1)" test "$st" = 201
run "$MLREG" pull team/big@sub1 -o "$W/o14" --parallel 2
expect_rc "pull of a chunked file into a subdirectory" 0
check "the file is in shards/" cmp -s "$W/big.bin" "$W/o14/shards/big.bin"
check "no index file and no staging dir are left" \
    test ! -e "$W/o14/shards/big.bin.chunks" -a ! -e "$W/o14/.mlreg-pull"
check "the lock lists shards/big.bin" jqt '[.files[].title] | index("shards/big.bin")' \
    "$W/o14/mlreg.lock.json"

proxy_stop
finish
