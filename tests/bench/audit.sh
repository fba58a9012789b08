#!/bin/sh
# The audit-log part of make bench (also runnable alone:
# BUILD=... sh tests/bench/audit.sh). Every figure is a median with its ratio
# to a reference measured in the same run:
#   1. append: N durable commits of one mlreg_audit_append_txn (a promote
#      entry with gates) against N durable commits of one plain LMDB put of
#      the same size (tests/bench/audit_append.c, a fresh env for each);
#   2. `mlreg audit verify` of an N-entry log against what any client must
#      do anyway: curl the same entries (pages of 1000) and sha256sum them;
#   3. per-request latency of inclusion and consistency proofs against
#      GET /api/v1/health, all through one keep-alive curl process (same
#      client, so the ratio is the server's cost);
#   4. the inclusion proof on a 100-entry log against the N-entry log (the
#      proof reads O(log n) stored hashes, so this should stay near 1).
# Environment: BENCH_AUDIT_N (default 20000), BENCH_REPS (default 3).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
MLREG=$B/mlreg
APPEND=$B/tests/bench/audit_append
N=${BENCH_AUDIT_N:-20000}
REPS=${BENCH_REPS:-3}
SMALL=100
REQS=200
W=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-bench-audit.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v bc >/dev/null || { echo "bench: needs bc (make deps installs it)" >&2; exit 2; }
[ -x "$APPEND" ] || { echo "bench: $APPEND missing (make BUILD=$BUILD bench builds it)" >&2; exit 2; }
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.6f", m}'; }
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }

# start_mlreg NAME: mlreg serve on $W/NAME (already holding meta/), URL in $URL.
start_mlreg() {
    rm -f "$W/$1.ready"
    "$MLREG" serve --listen 127.0.0.1:0 --data "$W/$1" --ready-file "$W/$1.ready" 2>"$W/$1.log" &
    PIDS="$PIDS $!"
    i=0
    until [ -s "$W/$1.ready" ]; do
        i=$((i + 1)); [ $i -gt 200 ] && { cat "$W/$1.log" >&2; exit 1; }
        sleep 0.05
    done
    URL=$(cat "$W/$1.ready")
}

# rand_urls BASE PATH PARAM LO HI: a curl config of $REQS GETs of
# BASE/PATH?PARAM=x, x uniform in [LO, HI), each answer thrown away.
rand_urls() {
    awk -v base="$1" -v path="$2" -v p="$3" -v lo="$4" -v hi="$5" -v n="$REQS" -v seed="$$" \
        'BEGIN { srand(seed); for (i = 0; i < n; i++) {
            x = lo + int(rand() * (hi - lo)); if (x >= hi) x = hi - 1
            printf "url = \"%s%s?%s=%d\"\noutput = \"/dev/null\"\n", base, path, p, x } }'
}
same_urls() { # BASE PATH
    i=0
    while [ $i -lt "$REQS" ]; do printf 'url = "%s%s"\noutput = "/dev/null"\n' "$1" "$2"; i=$((i + 1)); done
}
# latency CFG OUT: runs the $REQS GETs of CFG in one curl process (one
# keep-alive connection), appends each request's time in seconds to OUT;
# fails unless every answer is 200.
latency() {
    curl -s -K "$1" -w '%{http_code} %{time_total}\n' >"$W/lat.raw"
    if awk '$1 != 200 { bad = 1 } END { exit !bad }' "$W/lat.raw"; then
        echo "bench: a request in $1 did not answer 200:" >&2; grep -v '^200 ' "$W/lat.raw" | head -3 >&2
        exit 1
    fi
    awk '{ print $2 }' "$W/lat.raw" >>"$2"
}

# ---- 1. append throughput --------------------------------------------------------------------
echo "bench: audit append, $N commits per phase, $REPS rounds"
: >"$W/t.plain"; : >"$W/t.append"
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    rm -rf "$W/plain" "$W/append"
    out=$("$APPEND" commit "$W/plain" "$W/append" "$N")
    read -r tplain tappend ENTRY_BYTES <<EOF
$out
EOF
    echo "$tplain" >>"$W/t.plain"; echo "$tappend" >>"$W/t.append"
done
rm -rf "$W/plain" "$W/append"

# ---- 2.-4. the logs the server reads ---------------------------------------------------------
echo "bench: writing a $N-entry and a $SMALL-entry log"
"$APPEND" fill "$W/big/meta" "$N"
"$APPEND" fill "$W/small/meta" "$SMALL"
start_mlreg small; SURL=$URL
start_mlreg big; BURL=$URL
size=$(curl -sf "$BURL/api/v1/audit?limit=1" | sed -n 's/.*"size": *\([0-9]*\).*/\1/p')
[ "$size" = "$N" ] || { echo "bench: the server sees $size entries, not $N" >&2; exit 1; }

echo "bench: audit verify against curl + sha256sum, $REPS rounds"
: >"$W/t.verify"; : >"$W/t.curl"
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    t0=$(now)
    curl -sf "$BURL/api/v1/audit?since=[0-$((N - 1)):1000]&limit=1000" | sha256sum >/dev/null
    t1=$(now); elapsed "$t0" "$t1" >>"$W/t.curl"
    t0=$(now)
    MLREG_URL=$BURL "$MLREG" audit verify >"$W/verify.out" 2>&1 ||
        { echo "bench: audit verify failed:" >&2; cat "$W/verify.out" >&2; exit 1; }
    t1=$(now); elapsed "$t0" "$t1" >>"$W/t.verify"
done

echo "bench: proof latency, $REQS requests per kind, $REPS rounds"
: >"$W/l.health"; : >"$W/l.incl"; : >"$W/l.cons"; : >"$W/l.sincl"
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    same_urls "$BURL" /api/v1/health >"$W/health.cfg"
    rand_urls "$BURL" /api/v1/audit/proof/inclusion seq 0 "$N" >"$W/incl.cfg"
    rand_urls "$BURL" /api/v1/audit/proof/consistency from 1 "$((N + 1))" >"$W/cons.cfg"
    rand_urls "$SURL" /api/v1/audit/proof/inclusion seq 0 "$SMALL" >"$W/sincl.cfg"
    latency "$W/health.cfg" "$W/l.health"
    latency "$W/incl.cfg" "$W/l.incl"
    latency "$W/cons.cfg" "$W/l.cons"
    latency "$W/sincl.cfg" "$W/l.sincl"
done

# ---- the table ---------------------------------------------------------------------------------
PLAIN=$(median <"$W/t.plain"); APP=$(median <"$W/t.append")
CURL=$(median <"$W/t.curl"); VER=$(median <"$W/t.verify")
H=$(median <"$W/l.health"); I=$(median <"$W/l.incl"); C=$(median <"$W/l.cons")
SI=$(median <"$W/l.sincl")
us() { printf '%.0f' "$(echo "$1 * 1000000" | bc -l)"; }
echo
echo "== audit log, N=$N entries of $ENTRY_BYTES bytes, median of $REPS runs (this machine: $(nproc) cores) =="
printf '%-50s %9.0f ops/s\n' "plain LMDB put ($ENTRY_BYTES B) + commit" "$(echo "$N / $PLAIN" | bc -l)"
printf '%-50s %9.0f ops/s  %5.2fx plain put time\n' "mlreg_audit_append_txn (promote) + commit" \
    "$(echo "$N / $APP" | bc -l)" "$(ratio "$APP" "$PLAIN")"
printf '%-50s %9.3f s\n' "curl $N entries (pages of 1000) | sha256sum" "$CURL"
printf '%-50s %9.3f s      %5.2fx curl+sha256sum\n' "mlreg audit verify ($N entries)" "$VER" \
    "$(ratio "$VER" "$CURL")"
printf '%-50s %9s us/req\n' "GET /api/v1/health" "$(us "$H")"
printf '%-50s %9s us/req %5.2fx health\n' "GET audit/proof/inclusion (n=$N)" "$(us "$I")" \
    "$(ratio "$I" "$H")"
printf '%-50s %9s us/req %5.2fx health\n' "GET audit/proof/consistency (n=$N)" "$(us "$C")" \
    "$(ratio "$C" "$H")"
printf '%-50s %9s us/req %5.2fx health\n' "GET audit/proof/inclusion (n=$SMALL)" "$(us "$SI")" \
    "$(ratio "$SI" "$H")"
printf 'inclusion proof n=%s vs n=%s: %.2fx time (O(log n): %s vs %s hashes)\n' "$N" "$SMALL" \
    "$(ratio "$I" "$SI")" "$(awk -v n="$N" 'BEGIN { printf "%d", log(n) / log(2) + 0.999 }')" \
    "$(awk -v n="$SMALL" 'BEGIN { printf "%d", log(n) / log(2) + 0.999 }')"
