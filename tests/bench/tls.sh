#!/bin/sh
# make bench (tls part): manifest GETs per second over HTTPS against the same
# over plain HTTP, both on loopback with keep-alive. curl fetches the one
# release manifest BENCH_TLS_REQUESTS times from a config file (one process,
# so process start-up is paid once), first over one connection, then over
# BENCH_TLS_PARALLEL connections (--parallel); each figure is the median of
# BENCH_REPS runs, and the ratio TLS / plain is printed. The certificate is
# an ECDSA P-256 one made here by openssl.
# Environment: BENCH_TLS_REQUESTS (default 2000), BENCH_TLS_PARALLEL
# (default 4), BENCH_REPS (default 3).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) MLREG=$BUILD/mlreg ;; *) MLREG=$ROOT/$BUILD/mlreg ;; esac
N=${BENCH_TLS_REQUESTS:-2000}
PAR=${BENCH_TLS_PARALLEL:-4}
REPS=${BENCH_REPS:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-bench-tls.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }
command -v bc >/dev/null || { echo "bench: needs bc (make deps installs it)" >&2; exit 2; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=mlreg bench CA" -keyout "$W/ca.key" -out "$W/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$W/srv.key" -out "$W/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$W/ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.crt" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
    -extfile "$W/ext" -out "$W/srv.crt" 2>/dev/null
chmod 600 "$W/srv.key"
printf '{"tls":{"cert_file":"srv.crt","key_file":"srv.key"}}\n' >"$W/tls.json"
printf '{}\n' >"$W/plain.json"
head -c 4096 /dev/urandom >"$W/weights"

# start NAME: mlreg serve with $W/NAME.json on its own data dir, one release
# pushed; sets URL.
start() {
    "$MLREG" serve --config "$W/$1.json" --listen 127.0.0.1:0 --data "$W/$1-data" \
        --ready-file "$W/$1.ready" 2>"$W/$1.log" &
    PIDS="$PIDS $!"
    i=0
    until [ -s "$W/$1.ready" ]; do
        i=$((i + 1)); [ $i -gt 200 ] && { cat "$W/$1.log" >&2; exit 1; }; sleep 0.05
    done
    URL=$(cat "$W/$1.ready")
    MLREG_CACERT="$W/ca.crt" "$MLREG" push --registry "$URL" bench/tls@1.0.0 \
        --weights "$W/weights" >/dev/null 2>"$W/push.log" || { cat "$W/push.log" >&2; exit 1; }
}

# run_curl URL PARALLEL: prints requests per second of N manifest GETs.
run_curl() {
    : >"$W/urls"
    i=0
    while [ $i -lt "$N" ]; do
        printf 'url = "%s/v2/bench/tls/manifests/1.0.0"\noutput = "/dev/null"\n' "$1" >>"$W/urls"
        i=$((i + 1))
    done
    if [ "$2" -gt 1 ]; then par="--parallel --parallel-max $2"; else par=""; fi
    t0=$(now)
    # shellcheck disable=SC2086
    curl -sf --no-progress-meter $par --cacert "$W/ca.crt" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -w '%{http_code}\n' -K "$W/urls" >"$W/codes"
    t1=$(now)
    ok=$(grep -c '^200$' "$W/codes" || true)
    [ "$ok" -eq "$N" ] || { echo "bench: $ok of $N GETs answered 200" >&2; exit 1; }
    echo "$N / ($t1 - $t0)" | bc -l
}

start plain
PLAIN=$URL
start tls
TLS=$URL
: >"$W/p1"; : >"$W/t1"; : >"$W/pn"; : >"$W/tn"
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    run_curl "$PLAIN" 1 >>"$W/p1"
    run_curl "$TLS" 1 >>"$W/t1"
    run_curl "$PLAIN" "$PAR" >>"$W/pn"
    run_curl "$TLS" "$PAR" >>"$W/tn"
done
P1=$(median <"$W/p1"); T1=$(median <"$W/t1"); PN=$(median <"$W/pn"); TN=$(median <"$W/tn")
echo "== manifest GETs per second, keep-alive on loopback, $N requests, median of $REPS (this machine: $(nproc) cores) =="
printf '%-34s %9s req/s\n' "plain HTTP, 1 connection" "$P1"
printf '%-34s %9s req/s  (%.2fx plain)\n' "HTTPS, 1 connection" "$T1" "$(echo "$T1 / $P1" | bc -l)"
printf '%-34s %9s req/s\n' "plain HTTP, $PAR connections" "$PN"
printf '%-34s %9s req/s  (%.2fx plain)\n' "HTTPS, $PAR connections" "$TN" "$(echo "$TN / $PN" | bc -l)"
