#!/bin/sh
# test_progress.sh: transfer progress when stderr is a file (a CI log):
# `mlreg push` and `mlreg pull` (the parallel chunked pull of a 64 MiB file
# and the one-GET pull of a smaller one) print plain progress lines with
# bytes, rate and ETA, never a carriage return or an escape sequence, at
# most one per tenth; nothing for a file under 1 MiB; nothing at all with
# --quiet or MLREG_QUIET=1, whose results are otherwise the same.
# --limit-rate stretches each transfer over a couple of seconds so the
# lines have a rate to show.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

start_server || finish
W=$TMP/work
mkdir -p "$W"
GIT=0123456789abcdef0123456789abcdef01234567
head -c $((64 << 20)) /dev/urandom >"$W/model.safetensors"
head -c $((3 << 20)) /dev/urandom >"$W/tokenizer.json"
printf '{"layers":2}' >"$W/config.json"
RATE=32M

# lines_of FILE TITLE: the progress lines of TITLE in FILE.
lines_of() { grep -E "^$2: [0-9]+% " "$1"; }
# has_rate_lines NAME FILE TITLE TOTAL: at least one line of TITLE with a
# rate and an ETA, every one of them well formed, at most 10.
has_rate_lines() {
    n=$(lines_of "$2" "$3" | wc -l)
    bad=$(lines_of "$2" "$3" | grep -Evc "^$3: [0-9]+% [0-9.]+ (B|KiB|MiB) / $4(, [0-9.]+ (B|KiB|MiB|GiB)/s(, ETA [0-9]+s)?)?$")
    if [ "$n" -ge 1 ] && [ "$n" -le 10 ] && [ "$bad" = 0 ] &&
        lines_of "$2" "$3" | grep -Eq ", [0-9.]+ (KiB|MiB|GiB)/s, ETA [0-9]+s$"; then
        ok "$1"
    else
        not_ok "$1 ($n lines, $bad malformed:)"
        sed 's/^/  | /' "$2" | head -n 30
    fi
}
plain() { ! grep -q "$(printf '\r')" "$1" && ! grep -q "$(printf '\033')" "$1"; }

# ---- push -----------------------------------------------------------------
run "$MLREG" push team/prog@1.0 --weights "$W/model.safetensors" --tokenizer "$W/tokenizer.json" \
    --config "$W/config.json" --git-sha $GIT --limit-rate $RATE
expect_rc "push with stderr to a file exits 0" 0
cp "$TMP/err" "$W/push.err"
has_rate_lines "push prints progress lines with a rate and an ETA for the 64 MiB file" \
    "$W/push.err" model.safetensors "64.0 MiB"
check "push prints progress lines for the 3 MiB file" sh -c "grep -Eq '^tokenizer.json: 100% 3.0 MiB / 3.0 MiB, ' '$W/push.err'"
check "no progress line for a file under 1 MiB" sh -c "! grep -q '^config.json:' '$W/push.err'"
check "the push's log has no carriage return or escape sequence" plain "$W/push.err"
check "the push still reports each file" grep -q "^  weights     model.safetensors" "$W/push.err"

# ---- pull: parallel chunks (64 MiB) and one GET (3 MiB) ---------------------
run "$MLREG" pull team/prog@1.0 -o "$W/d1" --limit-rate $RATE
expect_rc "pull with stderr to a file exits 0" 0
cp "$TMP/err" "$W/pull.err"
check "the 64 MiB file came in chunks" grep -q "model.safetensors .*verified (8 chunks" "$W/pull.err"
has_rate_lines "the chunked pull prints progress lines summed over its ranges" \
    "$W/pull.err" model.safetensors "64.0 MiB"
check "the chunked pull reaches 100%" grep -Eq "^model.safetensors: 100% 64.0 MiB / 64.0 MiB, " "$W/pull.err"
check "the one-GET pull prints progress lines" \
    sh -c "grep -Eq '^tokenizer.json: 100% 3.0 MiB / 3.0 MiB, ' '$W/pull.err'"
check "the pull's log has no carriage return or escape sequence" plain "$W/pull.err"
check "the pulled file is the pushed one" cmp -s "$W/model.safetensors" "$W/d1/model.safetensors"

# ---- quiet ------------------------------------------------------------------
head -c $((64 << 20)) /dev/urandom >"$W/model2.safetensors"
run "$MLREG" push team/prog@2.0 --quiet --weights "$W/model2.safetensors" --git-sha $GIT \
    --limit-rate $RATE
expect_rc "push --quiet exits 0" 0
check "push --quiet prints no progress" sh -c "! grep -q '%' '$TMP/err'"
check "push --quiet prints no per-file or summary line" sh -c "! grep -qE 'uploaded|^pushed ' '$TMP/err'"
check "push --quiet still prints the release digest on stdout" grep -q '^sha256:[0-9a-f]\{64\}$' "$TMP/out"
run env MLREG_QUIET=1 "$MLREG" pull team/prog@2.0 -o "$W/d2" --limit-rate $RATE
expect_rc "pull with MLREG_QUIET=1 exits 0" 0
check "MLREG_QUIET=1 pull prints no progress" sh -c "! grep -q '%' '$TMP/err'"
check "the quiet pull placed the file" cmp -s "$W/model2.safetensors" "$W/d2/model2.safetensors"
run "$MLREG" --quiet pull team/prog@2.0 -o "$W/d5" --limit-rate $RATE
expect_rc "mlreg --quiet pull (the option before the command) exits 0" 0
check "mlreg --quiet pull prints no progress" sh -c "! grep -q '%' '$TMP/err'"
check "mlreg --quiet pull prints no per-file or summary line" sh -c "! grep -qE 'verified|^pulled ' '$TMP/err'"
run "$MLREG" pull team/prog@2.0 -o "$W/d3" --quiet --registry "http://127.0.0.1:1"
check "--quiet keeps the error of an unreachable registry" grep -q "unreachable" "$TMP/err"
run env MLREG_QUIET=0 "$MLREG" pull team/prog@1.0 -o "$W/d4" --limit-rate $RATE
check "MLREG_QUIET=0 is not quiet" grep -q "^model.safetensors: [0-9]*% " "$TMP/err"

finish
