#!/bin/sh
# test_crash.sh: kill -9 of the server in the middle of pushes, then restart
# on the same data dir. Nothing partial may sit under a final blob name, no
# temp file survives the restart, every push acknowledged before the kill
# pulls back verified, and the interrupted pushes succeed when retried.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
head -c 1048576 /dev/urandom >"$W/small.bin"
printf '{"metrics":{"accuracy":0.8}}' >"$W/eval.json"
head -c 209715200 /dev/urandom >"$W/big.bin"     # 200 MiB: monolithic POST, throttled
head -c 67108864 /dev/urandom >"$W/chunked.bin"  # 64 MiB: streamed PATCH, throttled
head -c 33554432 /dev/urandom >"$W/medium.bin"   # 32 MiB: mlreg push, full speed
BIG="sha256:$(sha256_of "$W/big.bin")"

expect_rc() {
    if [ "$RC" -eq "$2" ]; then ok "$1"; else
        not_ok "$1 (want exit $2, got $RC: $(tail -n 5 "$TMP/err"))"; fi
}

start_server || finish

# ---- an acknowledged release -------------------------------------------------
run "$MLREG" push team/clf@1.0.0 --weights "$W/small.bin" --eval-report "$W/eval.json" \
    --git-sha abcdef0
expect_rc "push acknowledged before the crash" 0
D1=$(tail -n 1 "$TMP/out")

# ---- pushes in flight when the server dies -----------------------------------
# (-T - with an explicit Content-Length: curl appends the file name to a URL
# ending in '/' when given -T FILE; 'Transfer-Encoding:' stops curl from also
# announcing chunked, which the server refuses as ambiguous framing)
curl -s -o /dev/null -X POST -T - -H 'Transfer-Encoding:' -H 'Content-Length: 209715200' \
    --limit-rate 20M \
    -H 'Content-Type: application/octet-stream' \
    "$MLREG_URL/v2/team/clf/blobs/uploads/?digest=$BIG" <"$W/big.bin" 2>/dev/null &
P1=$!
http_status POST /v2/team/clf/blobs/uploads/ >/dev/null
LOC=$(header Location)
case $LOC in http*) ;; *) LOC=$MLREG_URL$LOC ;; esac
curl -s -o /dev/null -X PATCH -T "$W/chunked.bin" --limit-rate 10M \
    -H 'Content-Type: application/octet-stream' "$LOC" 2>/dev/null &
P2=$!
"$MLREG" push team/clf@3.0.0 --weights "$W/medium.bin" >"$TMP/bg.out" 2>"$TMP/bg.err" &
P3=$!
sleep 2
check "the throttled uploads are still running when the server is killed" \
    sh -c "kill -0 $P1 && kill -0 $P2"
kill_server
wait "$P1" 2>/dev/null
wait "$P2" 2>/dev/null
wait "$P3"
BG_RC=$?
echo "# background mlreg push exited $BG_RC"
check "the background mlreg push either finished or reported the registry as gone" \
    sh -c "[ $BG_RC -eq 0 ] || [ $BG_RC -eq 3 ]"

# ---- restart on the same data dir -------------------------------------------
start_server || finish
check "no temp files left under blobs/tmp after the restart" \
    test -z "$(find "$DATA/blobs" -path "$DATA/blobs/sha256" -prune -o -type f -print)"
check "nothing but <2 hex>/<64 hex> files under blobs/sha256" \
    test -z "$(find "$DATA/blobs/sha256" -type f | grep -Ev '/sha256/[0-9a-f]{2}/[0-9a-f]{64}$')"
bad=""
for f in $(find "$DATA/blobs/sha256" -type f); do
    [ "$(sha256_of "$f")" = "$(basename "$f")" ] || bad="$bad $f"
done
check "every stored blob's sha256 equals its name${bad:+ (bad:$bad)}" test -z "$bad"
check "the stored blobs include the acknowledged ones" \
    test -f "$DATA/blobs/sha256/$(sha256_of "$W/small.bin" | cut -c1-2)/$(sha256_of "$W/small.bin")"
expect_status "the interrupted monolithic upload left no blob" 404 HEAD "/v2/team/clf/blobs/$BIG" -I

run "$MLREG" pull team/clf@1.0.0 -o "$TMP/p1"
expect_rc "the acknowledged release pulls back after the crash" 0
check "its digest is the acknowledged one" test "$(tail -n 1 "$TMP/out")" = "$D1"
check "its weights are byte-identical" cmp "$W/small.bin" "$TMP/p1/small.bin"
check "its eval report is byte-identical" cmp "$W/eval.json" "$TMP/p1/eval.json"

if [ "$BG_RC" -eq 0 ]; then
    run "$MLREG" pull team/clf@3.0.0 -o "$TMP/p3"
    expect_rc "the background push, acknowledged before the kill, pulls back" 0
else
    run "$MLREG" push team/clf@3.0.0 --weights "$W/medium.bin"
    expect_rc "the interrupted background push succeeds when retried" 0
    run "$MLREG" pull team/clf@3.0.0 -o "$TMP/p3"
    expect_rc "and pulls back" 0
fi
check "the 32 MiB file is byte-identical" cmp "$W/medium.bin" "$TMP/p3/medium.bin"

run "$MLREG" push team/clf@2.0.0 --weights "$W/big.bin" --file other="$W/chunked.bin"
expect_rc "the interrupted 200 MiB push succeeds when retried" 0
run "$MLREG" pull team/clf@2.0.0 -o "$TMP/p2"
expect_rc "the retried release pulls back" 0
check "the 200 MiB file is byte-identical" cmp "$W/big.bin" "$TMP/p2/big.bin"
check "the 64 MiB file is byte-identical" cmp "$W/chunked.bin" "$TMP/p2/chunked.bin"
check "no temp files in the pull directory" test -z "$(find "$TMP/p2" -name '.mlreg-tmp-*')"

finish
