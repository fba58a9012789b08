#!/bin/sh
# test_large.sh (make test-large): a generated 1 GiB file pushed and pulled
# back byte-identical, with the memory of the server and of the CLI staying
# small while they stream it. The file lives under $TMP and is removed.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

LIMIT_KB=65536 # 64 MiB
W=$TMP/work
mkdir -p "$W"
dd if=/dev/urandom of="$W/big.bin" bs=1048576 count=1024 2>/dev/null
check "generated a 1 GiB file" test "$(stat -c %s "$W/big.bin")" -eq 1073741824
printf '{"metrics":{"accuracy":0.5}}' >"$W/eval.json"

start_server || finish

# hwm_kb PID: the process's peak resident set (VmHWM) in KiB, or 0.
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# watch CMD...: runs CMD in the background, sampling its VmHWM until it exits;
# sets RC and PEAK_KB (the last sample is taken just before exit).
watch() {
    "$@" >"$TMP/out" 2>"$TMP/err" &
    pid=$!
    PEAK_KB=0
    while kill -0 "$pid" 2>/dev/null; do
        k=$(hwm_kb "$pid")
        [ -n "$k" ] && [ "$k" -gt "$PEAK_KB" ] && PEAK_KB=$k
        sleep 0.1
    done
    wait "$pid"
    RC=$?
}

S0=$(hwm_kb "$SERVER_PID")
start=$(date +%s)
watch "$MLREG" push team/big@1.0.0 --weights "$W/big.bin" --eval-report "$W/eval.json" \
    --git-sha 0123456
echo "# push of 1 GiB: $(($(date +%s) - start)) s, client peak RSS ${PEAK_KB} KiB"
if [ "$RC" -eq 0 ]; then ok "push of 1 GiB exits 0"; else
    not_ok "push of 1 GiB exits 0 (got $RC: $(tail -n 3 "$TMP/err"))"; fi
D=$(tail -n 1 "$TMP/out")
check "the client's peak RSS during the push stays below 64 MiB (${PEAK_KB} KiB)" \
    test "$PEAK_KB" -lt "$LIMIT_KB"
S1=$(hwm_kb "$SERVER_PID")
echo "# server VmHWM before the push ${S0} KiB, after ${S1} KiB"
check "the server's peak RSS after the push stays below 64 MiB (${S1} KiB)" \
    test "$S1" -gt 0 -a "$S1" -lt "$LIMIT_KB"

start=$(date +%s)
watch "$MLREG" pull team/big@1.0.0 -o "$TMP/pulled"
echo "# pull of 1 GiB: $(($(date +%s) - start)) s, client peak RSS ${PEAK_KB} KiB"
if [ "$RC" -eq 0 ]; then ok "pull of 1 GiB exits 0"; else
    not_ok "pull of 1 GiB exits 0 (got $RC: $(tail -n 3 "$TMP/err"))"; fi
check "the pull names the pushed digest" test "$(tail -n 1 "$TMP/out")" = "$D"
check "the client's peak RSS during the pull stays below 64 MiB (${PEAK_KB} KiB)" \
    test "$PEAK_KB" -lt "$LIMIT_KB"
check "the 1 GiB file comes back byte-identical" cmp "$W/big.bin" "$TMP/pulled/big.bin"
S2=$(hwm_kb "$SERVER_PID")
check "the server's peak RSS after the pull stays below 64 MiB (${S2} KiB)" \
    test "$S2" -gt 0 -a "$S2" -lt "$LIMIT_KB"

rm -f "$W/big.bin" "$TMP/pulled/big.bin"
finish
