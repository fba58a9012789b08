#!/bin/sh
# Test runner for `make test` / `make test-large`.
#   tests/run.sh unit integration   -> Check suites, then tests/integration/test_*.sh
#   tests/run.sh fuzz-replay        -> each fuzz target's seed corpus
#                                      (tests/fuzz/corpus/<name>) through
#                                      $B/tests/fuzz/replay_<name>: one check each
#   tests/run.sh large              -> tests/large/test_*.sh
#   tests/run.sh s3                 -> starts a throw-away Ceph RGW (tests/s3/rgw.sh,
#                                      memstore), exports its env (S3_ENDPOINT S3_REGION
#                                      S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
#                                      RGW_PID, and RGW_DIR for rgw.sh kill-rgw/restart-rgw),
#                                      runs tests/s3/test_*.sh and the Check suites
#                                      $B/tests/check_s3_* (the ones that need S3; the unit
#                                      part skips them), then stops RGW
#   tests/run.sh cluster            -> tests/cluster/test_*.sh (several `mlreg serve`
#                                      nodes on one bucket prefix) against a
#                                      throw-away RGW with the same env; `s3 cluster`
#                                      in one invocation shares one RGW (started by
#                                      the first of the two, stopped after the last)
#   tests/run.sh s3large            -> the same with bluestore on a sparse file, for
#                                      tests/s3/large_*.sh
# ONLY=WORD (optional) keeps the unit suites, fuzz targets and scripts whose
# name contains WORD: `ONLY=registry sh tests/run.sh unit` runs check_registry
# alone (`make test-unit ONLY=registry` does the same).
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
ONLY=${ONLY:-}
passed=0
failed=0
failed_names=""

# selected NAME: true when ONLY is unset or NAME contains it.
selected() {
    case $1 in *"$ONLY"*) return 0 ;; esac
    return 1
}

# ---- the RGW of the s3 / cluster / s3large parts: always stopped. s3 and
# cluster share one memstore RGW when both are asked for: it stays up after
# the first of them while the other is still to come.
RGW_SH=$ROOT/tests/s3/rgw.sh
RGW_DIR=""
RGW_STORE_UP=""
rgw_down() {
    [ -n "${RGW_DIR:-}" ] || return 0
    sh "$RGW_SH" stop "$RGW_DIR" 2>&1 | sed 's/^rgw.sh: /  # rgw: /'
    RGW_DIR=""
    RGW_STORE_UP=""
    unset S3_ENDPOINT S3_REGION S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY RGW_PID
}
trap 'rgw_down' EXIT
trap 'rgw_down; exit 130' INT TERM HUP

# rgw_up STORE PART: starts RGW, exports DIR/env; one failed check when it
# does not come up (rgw.sh has then printed the daemon logs and stopped them).
rgw_up() {
    [ -n "$RGW_DIR" ] && [ "$RGW_STORE_UP" = "$1" ] && return 0  # still up for this part
    rgw_down
    RGW_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-rgw.XXXXXX")
    if RGW_STORE=$1 sh "$RGW_SH" start "$RGW_DIR" 2>"$LOG_DIR/rgw-$2.log"; then
        tail -n 1 "$LOG_DIR/rgw-$2.log" | sed 's/^rgw.sh: /  # rgw: /'
        set -a
        . "$RGW_DIR/env"
        set +a
        export RGW_DIR
        RGW_STORE_UP=$1
        return 0
    fi
    echo "not ok - $2: RGW starts (tests/s3/rgw.sh start; full log $LOG_DIR/rgw-$2.log)"
    tail -n 60 "$LOG_DIR/rgw-$2.log" | sed 's/^/  | /'
    failed=$((failed + 1))
    failed_names="$failed_names $2-rgw-start"
    rgw_down
    return 1
}

# exec_check_suite BIN: runs one Check suite, its output in $LOG_DIR/NAME.log
# and its exit code in $LOG_DIR/NAME.rc (report_check_suite reads them).
exec_check_suite() {
    CK_VERBOSITY=normal "$1" >"$LOG_DIR/$(basename "$1").log" 2>&1
    echo $? >"$LOG_DIR/$(basename "$1").rc"
}

run_check_suite() {
    exec_check_suite "$1"
    report_check_suite "$1"
}

report_check_suite() {
    bin=$1
    name=$(basename "$bin")
    out="$LOG_DIR/$name.log"
    rc=$(cat "$LOG_DIR/$name.rc" 2>/dev/null || echo 1)
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

# One fuzz target's seed corpus replayed (tests/fuzz/replay.c): one check,
# failed when the replay crashes, trips a sanitizer or a property, or when
# the target has no corpus.
run_replay() {
    bin=$1
    name=${bin##*/replay_}
    out="$LOG_DIR/replay_$name.log"
    corpus="$ROOT/tests/fuzz/corpus/$name"
    [ -d "$corpus" ] || echo "no seed corpus $corpus" >"$out"
    if [ -d "$corpus" ] && "$bin" "$corpus" >"$out" 2>&1; then
        passed=$((passed + 1))
        echo "  ok - fuzz-replay $name ($(tail -n 1 "$out"))"
    else
        failed=$((failed + 1))
        failed_names="$failed_names replay_$name"
        echo "  not ok - fuzz-replay $name (corpus $corpus; log $out)"
        tail -n 40 "$out" | sed 's/^/  | /'
    fi
}

# rgw_wanted_later: true when a part still to run needs the memstore RGW.
rgw_wanted_later() {
    for later in $REST; do
        case $later in s3 | cluster) return 0 ;; esac
    done
    return 1
}

REST="$*"
# rgw_part PART TITLE DIR [SUITES]: the scripts DIR/test_*.sh and the Check
# suites whose path starts with SUITES (none when absent) against the memstore RGW,
# which stays up when a later part wants it too. Nothing runs, and RGW is
# not started, when ONLY selects none of them.
rgw_part() {
    _want=0
    for _x in "$3"/test_*.sh ${4:+"$4"*}; do
        [ -e "$_x" ] && selected "$(basename "$_x")" && _want=1
    done
    [ "$_want" -eq 1 ] || return 0
    echo "# $1: $2"
    rgw_up memstore "$1" || return 0
    for _s in "$3"/test_*.sh; do
        selected "$(basename "$_s")" || continue
        [ -f "$_s" ] && run_script "$_s"
    done
    for _bin in ${4:+"$4"*}; do
        selected "$(basename "$_bin")" || continue
        [ -x "$_bin" ] && run_check_suite "$_bin"
    done
    rgw_wanted_later || rgw_down
}

for part in "$@"; do
    REST=${REST#"$part"}
    REST=${REST# }
    case $part in
    unit)
        # The suites are CPU-bound and share nothing (each has its own temp
        # dirs): UNIT_JOBS lanes (default 2, one per core here) take them
        # one at a time from a queue (a suite is claimed by creating its
        # claim directory, which only one lane can), the slow check_sign
        # (scrypt at minisign's 1 GiB work factor, most of the unit time)
        # first; they are reported in name order once all have run.
        suites=""
        slow=""
        for bin in "$B"/tests/check_*; do
            case $(basename "$bin") in check_s3_*) continue ;; esac  # s3 part
            selected "$(basename "$bin")" || continue
            [ -x "$bin" ] || continue
            case $(basename "$bin") in
                check_sign) slow="$slow $bin" ;;
                *) suites="$suites $bin" ;;
            esac
        done
        claims=$LOG_DIR/.claims.$$
        rm -rf "$claims" && mkdir -p "$claims"
        lane=0
        lane_pids=""
        while [ $lane -lt "${UNIT_JOBS:-2}" ]; do
            (
                for bin in $slow $suites; do
                    mkdir "$claims/$(basename "$bin")" 2>/dev/null && exec_check_suite "$bin"
                done
            ) &
            lane_pids="$lane_pids $!"
            lane=$((lane + 1))
        done
        for pid in $lane_pids; do wait "$pid"; done
        rm -rf "$claims"
        suites=$(for bin in $slow $suites; do echo "$bin"; done | sort)
        for bin in $suites; do report_check_suite "$bin"; done ;;
    fuzz-replay)
        echo "# fuzz-replay"
        for bin in "$B"/tests/fuzz/replay_*; do
            selected "$(basename "$bin")" || continue
            [ -x "$bin" ] && run_replay "$bin"
        done ;;
    integration)
        for s in "$ROOT"/tests/integration/test_*.sh; do
            selected "$(basename "$s")" || continue
            [ -f "$s" ] && run_script "$s"
        done ;;
    large)
        for s in "$ROOT"/tests/large/test_*.sh; do
            [ -f "$s" ] && run_script "$s"
        done ;;
    s3) rgw_part s3 "Ceph RGW on loopback" "$ROOT/tests/s3" "$B/tests/check_s3_" ;;
    cluster)
        rgw_part cluster "mlreg nodes sharing one bucket prefix of a Ceph RGW on loopback" \
            "$ROOT/tests/cluster" ;;
    s3large)
        if ls "$ROOT"/tests/s3/large_*.sh >/dev/null 2>&1; then
            echo "# s3large: Ceph RGW on loopback, bluestore"
            if rgw_up bluestore s3large; then
                for s in "$ROOT"/tests/s3/large_*.sh; do
                    [ -f "$s" ] && run_script "$s"
                done
                rgw_down
            fi
        else
            echo "# s3large: no tests/s3/large_*.sh"
        fi ;;
    *) echo "run.sh: unknown part $part" >&2; exit 2 ;;
    esac
done

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
