#!/bin/sh
# make bench, row 7: small GETs per second, `mlreg serve` against nginx
# serving the same bytes, driven by wrk (2 threads, 32 keep-alive
# connections, BENCH_WRK_SECONDS each run), plain HTTP and TLS.
#   - manifest GET: GET /v2/bench/model/manifests/1.0.0 (OCI accept header);
#   - stage resolve: GET /api/v1/models/bench/model/stages/dev, the endpoint
#     `mlreg resolve` and `mlreg pull MODEL:STAGE` use (docs/promotions-api.md,
#     "Stages");
#   - the peer: the Debian nginx-light, 2 worker processes, Debian's stock
#     http settings (sendfile, tcp_nopush, default keep-alive), serving each
#     answer as a static file holding exactly mlreg's response body, with
#     mlreg's content type;
#   - TLS: mlreg's `tls` config and an nginx `ssl` listener, one ECDSA P-256
#     certificate made here by openssl (as tests/bench/tls.sh does).
# The TLS server is a copy of the plain server's data dir, so all four
# answer the same bytes (checked with curl before the runs). Every run's
# requests per second and p99 latency (wrk's Lua done() hook) become samples
# http.<plain|tls>.<mlreg|nginx>.<manifest|stage>.<rps|p99_ms>; a run with a
# non-2xx answer stops the bench.
# Environment: BENCH_REPS (default 5), BENCH_WRK_SECONDS (default 3),
# BENCH_SAMPLES, BUILD.
NAME=http
. "$(dirname "$0")/lib_bench.sh"
REPS=${BENCH_REPS:-5}
SECS=${BENCH_WRK_SECONDS:-3}
die() { echo "bench http: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "needs wrk (make deps installs it)"
command -v nginx >/dev/null || die "needs nginx (nginx-light; make deps installs it)"
MANIFEST_TYPE=application/vnd.oci.image.manifest.v1+json
MPATH=/v2/bench/model/manifests/1.0.0
SPATH=/api/v1/models/bench/model/stages/dev

# ---- certificate, one release in stage dev, its answers as files --------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=mlreg bench CA" -keyout "$W/ca.key" -out "$W/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$W/srv.key" -out "$W/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$W/ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.crt" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
    -extfile "$W/ext" -out "$W/srv.crt" 2>/dev/null
chmod 600 "$W/srv.key"
printf '{"tls":{"cert_file":"%s","key_file":"%s"}}\n' "$W/srv.crt" "$W/srv.key" >"$W/tls.json"

bench_start plain
head -c 4096 /dev/urandom >"$W/weights"
printf '{"metrics":{"accuracy":0.91}}\n' >"$W/eval.json"
cli push --registry "$URL" bench/model@1.0.0 --weights "$W/weights" \
    --eval-report "$W/eval.json" >/dev/null 2>"$W/cli.log" || { cat "$W/cli.log" >&2; die "push"; }
cli promote --registry "$URL" bench/model@1.0.0 --to dev >/dev/null 2>"$W/cli.log" ||
    { cat "$W/cli.log" >&2; die "promote"; }
mkdir -p "$W/www/v2/bench/model/manifests" "$W/www/api/v1/models/bench/model/stages"
curl -sf -H "Accept: $MANIFEST_TYPE" -o "$W/www$MPATH" "$URL$MPATH" || die "manifest GET"
curl -sf -o "$W/www$SPATH" "$URL$SPATH" || die "stage GET"
bench_stop "$SPID"
cp -a "$W/plain-data" "$W/tls-data"
bench_start plain
PLAIN=$URL
PLAIN_PID=$SPID
bench_start tls "$W/tls.json"
TLS=$URL
TLS_PID=$SPID

# ---- nginx ---------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
NPORT=$(free_port)
NTPORT=$(free_port)
mkdir -p "$W/nginx"
USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root root;"
locations="location /v2/ { types { } default_type $MANIFEST_TYPE; }
        location /api/ { types { } default_type application/json; }"
cat >"$W/nginx.conf" <<EOF
$USER_LINE
worker_processes 2;
pid $W/nginx/nginx.pid;
daemon off;
error_log $W/nginx/error.log error;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $W/nginx/body;
    proxy_temp_path $W/nginx/proxy;
    fastcgi_temp_path $W/nginx/fastcgi;
    uwsgi_temp_path $W/nginx/uwsgi;
    scgi_temp_path $W/nginx/scgi;
    server {
        listen 127.0.0.1:$NPORT;
        root $W/www;
        $locations
    }
    server {
        listen 127.0.0.1:$NTPORT ssl;
        ssl_certificate $W/srv.crt;
        ssl_certificate_key $W/srv.key;
        root $W/www;
        $locations
    }
}
EOF
nginx -p "$W/nginx" -c "$W/nginx.conf" -e "$W/nginx/error.log" 2>"$W/nginx/stderr.log" &
NGINX_PID=$!
PIDS="$PIDS $NGINX_PID"
NPLAIN=http://127.0.0.1:$NPORT
NTLS=https://127.0.0.1:$NTPORT
_i=0
until curl -s -o /dev/null "$NPLAIN/"; do
    _i=$((_i + 1))
    if [ $_i -gt 200 ] || ! kill -0 "$NGINX_PID" 2>/dev/null; then
        cat "$W/nginx/stderr.log" "$W/nginx/error.log" >&2 2>/dev/null
        die "nginx did not start"
    fi
    sleep 0.05
done

# same bytes and content type from all four
for base in "$PLAIN" "$TLS" "$NPLAIN" "$NTLS"; do
    for p in "$MPATH" "$SPATH"; do
        ct=$(curl -sf --cacert "$W/ca.crt" -H "Accept: $MANIFEST_TYPE" -o "$W/got" \
            -w '%{content_type}' "$base$p") || die "GET $base$p failed"
        cmp -s "$W/got" "$W/www$p" || die "$base$p answered other bytes"
        case $p in "$MPATH") want=$MANIFEST_TYPE ;; *) want=application/json ;; esac
        [ "$ct" = "$want" ] || die "$base$p answered Content-Type $ct, not $want"
    done
done

cat >"$W/report.lua" <<'EOF'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("wrk: rps=%.1f p99_ms=%.3f requests=%d non2xx=%d errors=%d\n",
        summary.requests / summary.duration * 1e6, latency:percentile(99) / 1000,
        summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
EOF

# run PROTO SERVER PATHNAME URL: one wrk run, two samples.
run() {
    wrk -t2 -c32 -d"${SECS}s" -s "$W/report.lua" -H "Accept: $MANIFEST_TYPE" "$4" >"$W/wrk.out" 2>&1 ||
        { cat "$W/wrk.out" >&2; die "wrk $4 failed"; }
    line=$(grep '^wrk: ' "$W/wrk.out") || { cat "$W/wrk.out" >&2; die "wrk printed no summary"; }
    # shellcheck disable=SC2046 # five numbers, split on purpose
    set -- "$@" $(echo "$line" | sed 's/^wrk: //; s/[a-z0-9_]*=//g')
    # $5 rps, $6 p99 ms, $7 requests, $8 non-2xx, $9 socket errors
    [ "$8" -eq 0 ] || die "$4: $8 of $7 answers were not 2xx"
    bench_sample "http.$1.$2.$3.rps" "$5"
    bench_sample "http.$1.$2.$3.p99_ms" "$6"
    bench_sample "http.$1.$2.$3.errors" "$9"
    printf '  %-5s %-6s %-9s %9.0f req/s  p99 %6.2f ms  socket errors %s\n' "$1" "$2" "$3" "$5" "$6" "$9"
}

r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    echo "bench http: round $r/$REPS (wrk -t2 -c32 -d${SECS}s)"
    run plain mlreg manifest "$PLAIN$MPATH"
    run plain nginx manifest "$NPLAIN$MPATH"
    run plain mlreg stage "$PLAIN$SPATH"
    run plain nginx stage "$NPLAIN$SPATH"
    run tls mlreg manifest "$TLS$MPATH"
    run tls nginx manifest "$NTLS$MPATH"
    run tls mlreg stage "$TLS$SPATH"
    run tls nginx stage "$NTLS$SPATH"
done
if ! kill -0 "$PLAIN_PID" || ! kill -0 "$TLS_PID"; then die "an mlreg server died during the runs"; fi
