#!/bin/sh
# Test runner for `make test` / `make test-large`.
#   tests/run.sh unit integration   -> Check suites, then tests/integration/test_*.sh
#   tests/run.sh large              -> tests/large/test_*.sh
# Every integration script prints TAP-style "ok - ..." / "not ok - ..." lines
# (tests/integration/lib.sh) and exits non-zero when anything failed.
# The runner ends with "N passed, N failed" and exits 1 when N failed > 0.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
export MLREG_ROOT="$ROOT" MLREG_BIN="$B/mlreg"
LOG_DIR="$B/test-logs"
mkdir -p "$LOG_DIR"
passed=0
failed=0
failed_names=""

run_check_suite() {
    bin=$1
    name=$(basename "$bin")
    out="$LOG_DIR/$name.log"
    CK_VERBOSITY=normal "$bin" >"$out" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+%: Checks: ' "$out" | tail -n 1)
    n=$(echo "$line" | sed -n 's/.*Checks: \([0-9]*\).*/\1/p')
    f=$(echo "$line" | sed -n 's/.*Failures: \([0-9]*\).*/\1/p')
    e=$(echo "$line" | sed -n 's/.*Errors: \([0-9]*\).*/\1/p')
    if [ -z "$n" ]; then
        echo "not ok - $name (no Check summary; see $out)"
        cat "$out"
        failed=$((failed + 1))
        failed_names="$failed_names $name"
        return
    fi
    bad=$((f + e))
    passed=$((passed + n - bad))
    failed=$((failed + bad))
    echo "$line  [$name]"
    if [ "$bad" -gt 0 ] || [ "$rc" -ne 0 ]; then
        grep -E ':[EF]:' "$out"
        [ "$bad" -eq 0 ] && { failed=$((failed + 1)); echo "not ok - $name exited $rc"; tail -n 30 "$out"; }
        failed_names="$failed_names $name"
    fi
}

run_script() {
    script=$1
    name=$(basename "$script" .sh)
    out="$LOG_DIR/$name.log"
    echo "# $name"
    start=$(date +%s)
    sh "$script" >"$out" 2>&1
    rc=$?
    p=$(grep -c '^ok - ' "$out")
    f=$(grep -c '^not ok - ' "$out")
    grep -E '^(ok|not ok) - ' "$out" | sed 's/^/  /'
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        failed=$((failed + 1))
        echo "  not ok - $name exited $rc without naming a failed check"
    fi
    if [ "$rc" -ne 0 ] || [ "$f" -gt 0 ]; then
        failed_names="$failed_names $name"
        echo "  --- last lines of $out:"
        tail -n 40 "$out" | sed 's/^/  | /'
    fi
    echo "  ($(( $(date +%s) - start ))s)"
}

for part in "$@"; do
    case $part in
    unit)
        for bin in "$B"/tests/check_*; do
            [ -x "$bin" ] && run_check_suite "$bin"
        done ;;
    integration)
        for s in "$ROOT"/tests/integration/test_*.sh; do
            [ -f "$s" ] && run_script "$s"
        done ;;
    large)
        for s in "$ROOT"/tests/large/test_*.sh; do
            [ -f "$s" ] && run_script "$s"
        done ;;
    *) echo "run.sh: unknown part $part" >&2; exit 2 ;;
    esac
done

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
