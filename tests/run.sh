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
# Lanes: the unit suites run in UNIT_JOBS lanes (default 2, one per core);
# the parts integration, s3 and cluster given together (as `make test` does)
# are one queue of scripts (and check_s3_* suites) in SCRIPT_JOBS lanes
# (default 1, `make test` sets 2; with 2 the RGW starts in the background
# meanwhile), longest first; each
# item's output is in $BUILD/test-logs/NAME.log and its wall time in
# NAME.secs, and all are reported part by part in name order once every
# one has run. UNIT_JOBS=1 SCRIPT_JOBS=1 runs one thing at a time.
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
    # a start in the background (rgw_start_bg) ends first (on INT it got the signal too)
    [ -n "${RGW_BG_PID:-}" ] && wait "$RGW_BG_PID" 2>/dev/null
    RGW_BG_PID=""
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

# rgw_start_bg PART: starts the memstore RGW in the background (the lanes
# run what does not need it meanwhile); its exit code goes to RGW_RC.
# rgw_start_end then waits for it and exports its env, or reports one failed
# check for PART as rgw_up does; false when it did not come up.
RGW_RC=""
RGW_BG_PID=""
rgw_start_bg() {
    rgw_down
    RGW_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-rgw.XXXXXX")
    RGW_RC=$LOG_DIR/.rgw-start.rc.$$
    RGW_BG_PART=$1
    rm -f "$RGW_RC"
    (
        RGW_STORE=memstore sh "$RGW_SH" start "$RGW_DIR" 2>"$LOG_DIR/rgw-$1.log"
        echo $? >"$RGW_RC.tmp" && mv "$RGW_RC.tmp" "$RGW_RC"
    ) &
    RGW_BG_PID=$!
}
rgw_start_end() {
    [ -n "$RGW_BG_PID" ] || return 0
    wait "$RGW_BG_PID"
    RGW_BG_PID=""
    _rc=$(cat "$RGW_RC" 2>/dev/null || echo 1)
    rm -f "$RGW_RC"
    RGW_RC=""
    if [ "$_rc" = 0 ]; then
        tail -n 1 "$LOG_DIR/rgw-$RGW_BG_PART.log" | sed 's/^rgw.sh: /  # rgw: /'
        set -a
        . "$RGW_DIR/env"
        set +a
        export RGW_DIR
        RGW_STORE_UP=memstore
        return 0
    fi
    echo "not ok - $RGW_BG_PART: RGW starts (tests/s3/rgw.sh start; full log $LOG_DIR/rgw-$RGW_BG_PART.log)"
    tail -n 60 "$LOG_DIR/rgw-$RGW_BG_PART.log" | sed 's/^/  | /'
    failed=$((failed + 1))
    failed_names="$failed_names $RGW_BG_PART-rgw-start"
    rgw_down
    return 1
}

# exec_check_suite BIN: runs one Check suite, its output in $LOG_DIR/NAME.log
# and its exit code in $LOG_DIR/NAME.rc (report_check_suite reads them).
# Its wall time in seconds goes to $LOG_DIR/NAME.secs (printed with the summary).
exec_check_suite() {
    _t0=$(date +%s)
    CK_VERBOSITY=normal "$1" >"$LOG_DIR/$(basename "$1").log" 2>&1
    echo $? >"$LOG_DIR/$(basename "$1").rc"
    echo $(($(date +%s) - _t0)) >"$LOG_DIR/$(basename "$1").secs"
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
    echo "$line  [$name] ($(cat "$LOG_DIR/$name.secs" 2>/dev/null || echo '?')s)"
    if [ "$bad" -gt 0 ] || [ "$rc" -ne 0 ]; then
        grep -E ':[EF]:' "$out"
        [ "$bad" -eq 0 ] && { failed=$((failed + 1)); echo "not ok - $name exited $rc"; tail -n 30 "$out"; }
        failed_names="$failed_names $name"
    fi
}

# exec_script SCRIPT: runs one script, its output in $LOG_DIR/NAME.log, its
# exit code in NAME.rc and its wall time in NAME.secs (report_script reads them).
exec_script() {
    _name=$(basename "$1" .sh)
    _t0=$(date +%s)
    sh "$1" >"$LOG_DIR/$_name.log" 2>&1
    echo $? >"$LOG_DIR/$_name.rc"
    echo $(($(date +%s) - _t0)) >"$LOG_DIR/$_name.secs"
}

report_script() {
    script=$1
    name=$(basename "$script" .sh)
    out="$LOG_DIR/$name.log"
    echo "# $name"
    if [ ! -f "$out" ]; then
        # listed but never run (e.g. a script that appeared during the run)
        failed=$((failed + 1))
        failed_names="$failed_names $name"
        echo "  not ok - $name did not run (no $out)"
        return
    fi
    rc=$(cat "$LOG_DIR/$name.rc" 2>/dev/null || echo 1)
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
    echo "  ($(cat "$LOG_DIR/$name.secs" 2>/dev/null || echo '?')s)"
}

run_script() {
    exec_script "$1"
    report_script "$1"
}

# exec_item / report_item ITEM: a Check suite (check_*) or a script.
exec_item() {
    case $(basename "$1") in check_*) exec_check_suite "$1" ;; *) exec_script "$1" ;; esac
}
report_item() {
    case $(basename "$1") in check_*) report_check_suite "$1" ;; *) report_script "$1" ;; esac
}

# Lanes: JOBS background shells take the items of a queue one at a time
# (an item is claimed by creating its claim directory, which only one lane
# can), so JOBS of them run at once; the caller reports them afterwards in
# a fixed order. The queue is longest first: an item's wall time of the last
# run ($LOG_DIR/NAME.secs), else SLOW_HINTS' guess for the few known slow
# ones (a clean clone has no last run), so no long item starts last.
SLOW_HINTS="check_sign:50 test_cluster:60 test_gc:60 test_reload:45 test_s3_gc:40 test_events:40"

# longest_first ITEM...: the items, one a line, longest expected first.
longest_first() {
    for _it in "$@"; do
        _n=$(basename "$_it" .sh)
        _s=$(cat "$LOG_DIR/$_n.secs" 2>/dev/null) || _s=""
        if [ -z "$_s" ]; then
            _s=0
            for _h in $SLOW_HINTS; do [ "${_h%%:*}" = "$_n" ] && _s=${_h#*:}; done
        fi
        echo "$_s $_it"
    done | sort -s -k1,1nr | cut -d' ' -f2-
}

# needs_rgw ITEM: true for the items of the s3 and cluster parts.
needs_rgw() {
    case $1 in "$ROOT"/tests/s3/* | "$ROOT"/tests/cluster/* | */check_s3_*) return 0 ;; esac
    return 1
}

# lane_item ITEM: exec_item, with the RGW env for the items that need it
# (RGW_RC: the file holding the exit code of the RGW start, when one was
# started in the background for these lanes). Nothing runs when that start
# failed: script_parts reports it once.
lane_item() {
    if [ -n "$RGW_RC" ] && needs_rgw "$1"; then
        [ "$(cat "$RGW_RC")" = 0 ] || return 0
        (
            set -a
            . "$RGW_DIR/env"
            set +a
            export RGW_DIR
            exec_item "$1"
        )
        return 0
    fi
    exec_item "$1"
}

# in_lanes JOBS ITEM...: exec_item of every ITEM in JOBS lanes, longest
# first; returns once all have run. Each item's .rc is removed first, so a
# lane that died leaves a failure behind, not the last run's result. While
# an RGW start (RGW_RC) is still running, a lane takes the first item that
# does not need it, and waits for the start only when those are all taken.
in_lanes() {
    _jobs=$1
    shift
    [ $# -gt 0 ] || return 0
    for _it in "$@"; do rm -f "$LOG_DIR/$(basename "$_it" .sh).rc"; done
    _queue=$(longest_first "$@")
    _claims=$LOG_DIR/.claims.$$
    rm -rf "$_claims" && mkdir -p "$_claims"
    _lane=0
    _lane_pids=""
    while [ $_lane -lt "$_jobs" ]; do
        (
            while :; do
                _took=0
                _waiting=0
                for _it in $_queue; do
                    [ -d "$_claims/$(basename "$_it")" ] && continue
                    if [ -n "$RGW_RC" ] && [ ! -s "$RGW_RC" ] && needs_rgw "$_it"; then
                        _waiting=1
                        continue
                    fi
                    if mkdir "$_claims/$(basename "$_it")" 2>/dev/null; then
                        lane_item "$_it"
                        _took=1
                        break
                    fi
                done
                [ $_took -eq 1 ] && continue
                [ $_waiting -eq 1 ] || break
                sleep 0.2 # until the RGW start ends (rgw.sh gives up after RGW_TIMEOUT)
            done
        ) &
        _lane_pids="$_lane_pids $!"
        _lane=$((_lane + 1))
    done
    for _pid in $_lane_pids; do wait "$_pid"; done
    rm -rf "$_claims"
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
# part_items PART: the scripts (and, for s3, the Check suites check_s3_*,
# which need S3 too) of a part that ONLY selects, one a line, name order.
part_items() {
    case $1 in
    integration) set -- "$ROOT"/tests/integration/test_*.sh ;;
    s3) set -- "$ROOT"/tests/s3/test_*.sh "$B"/tests/check_s3_* ;;
    cluster) set -- "$ROOT"/tests/cluster/test_*.sh ;;
    esac
    for _x in "$@"; do
        selected "$(basename "$_x")" || continue
        case $_x in *.sh) [ -f "$_x" ] && echo "$_x" ;; *) [ -x "$_x" ] && echo "$_x" ;; esac
    done
}

part_title() {
    case $1 in
    s3) echo "# s3: Ceph RGW on loopback" ;;
    cluster) echo "# cluster: mlreg nodes sharing one bucket prefix of a Ceph RGW on loopback" ;;
    esac
}

# script_parts PART...: the consecutive parts integration, s3 and cluster as
# one queue in SCRIPT_JOBS lanes: every script has its own temp dir, server
# ports chosen by the OS and (s3, cluster) its own bucket prefix, and much of
# a script's time is spent waiting on servers, so two can run side by side
# (SCRIPT_JOBS=2; the RGW then starts in the background). The runner's
# default is 1, one script at a time; `make test` asks for 2 (1 under
# SAN=1: on a machine loaded far beyond its cores, timing-window checks of
# some scripts, gc grace and long-poll limits, lose their margins).
# The memstore RGW is started when s3 or cluster has something to run
# (not at all when ONLY selects none of theirs) and stays up when a later
# part wants it too. Reported part by part, in name order.
SCRIPT_JOBS=${SCRIPT_JOBS:-1}
# Items that kill and restart the shared RGW (check_s3_backend's tests of an
# endpoint killed mid-upload): beside them, every item on the RGW would
# fail, so they run after the lanes, one at a time, with nothing beside them.
RGW_ALONE="check_s3_backend"
runs_alone() {
    for _a in $RGW_ALONE; do [ "$(basename "$1")" = "$_a" ] && return 0; done
    return 1
}
script_parts() {
    _all=""
    _alone=""
    _ran=""
    _bg=0
    for _p in "$@"; do
        _its=$(part_items "$_p")
        [ -n "$_its" ] || continue
        case $_p in
        s3 | cluster)
            if [ "$SCRIPT_JOBS" -le 1 ]; then
                # one at a time: RGW first, nothing runs beside its start
                if ! rgw_up memstore "$_p"; then
                    part_title "$_p"
                    continue
                fi
            elif [ $_bg -eq 0 ] && { [ -z "$RGW_DIR" ] || [ "$RGW_STORE_UP" != memstore ]; }; then
                rgw_start_bg "$_p"
                _bg=1
            fi ;;
        esac
        for _it in $_its; do
            if runs_alone "$_it"; then _alone="$_alone $_it"; else _all="$_all $_it"; fi
        done
        _ran="$_ran $_p"
    done
    # shellcheck disable=SC2086
    in_lanes "$SCRIPT_JOBS" $_all
    _rgw_ok=1
    [ $_bg -eq 0 ] || rgw_start_end || _rgw_ok=0
    # shellcheck disable=SC2086
    [ $_rgw_ok -eq 0 ] || in_lanes 1 $_alone
    for _p in $_ran; do
        part_title "$_p"
        case $_p in s3 | cluster) [ $_rgw_ok -eq 1 ] || continue ;; esac
        for _it in $(part_items "$_p"); do report_item "$_it"; done
    done
    rgw_wanted_later || rgw_down
}

SCRIPT_GROUP=""
flush_script_group() {
    [ -n "$SCRIPT_GROUP" ] || return 0
    # shellcheck disable=SC2086
    script_parts $SCRIPT_GROUP
    SCRIPT_GROUP=""
}

for part in "$@"; do
    REST=${REST#"$part"}
    REST=${REST# }
    case $part in
    integration | s3 | cluster)
        SCRIPT_GROUP="$SCRIPT_GROUP $part"
        continue ;;
    esac
    flush_script_group
    case $part in
    unit)
        # The suites are CPU-bound and share nothing (each has its own temp
        # dirs): UNIT_JOBS lanes (default 2, one per core here), longest
        # first (check_sign: scrypt at minisign's 1 GiB work factor);
        # reported in name order once all have run.
        suites=""
        for bin in "$B"/tests/check_*; do
            case $(basename "$bin") in check_s3_*) continue ;; esac  # s3 part
            selected "$(basename "$bin")" || continue
            [ -x "$bin" ] || continue
            suites="$suites $bin"
        done
        # shellcheck disable=SC2086
        in_lanes "${UNIT_JOBS:-2}" $suites
        for bin in $suites; do report_check_suite "$bin"; done ;;
    fuzz-replay)
        echo "# fuzz-replay"
        for bin in "$B"/tests/fuzz/replay_*; do
            selected "$(basename "$bin")" || continue
            [ -x "$bin" ] && run_replay "$bin"
        done ;;
    large)
        for s in "$ROOT"/tests/large/test_*.sh; do
            [ -f "$s" ] && run_script "$s"
        done ;;
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
flush_script_group

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
