# lib_cluster.sh: helpers for tests/cluster/test_*.sh, several `mlreg serve`
# nodes on one bucket prefix of the RGW that tests/run.sh starts (env
# S3_ENDPOINT S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY). Source it
# after tests/integration/lib.sh:
#
#   make_log_key NAME               # $TMP/NAME.key and $TMP/NAME.pub (no password)
#   new_prefix VAR                  # VAR = a fresh prefix, removed by cluster_finish
#   write_node_config FILE PREFIX KEYFILE [extra top-level members]
#   start_node N CONFIG [DATA]      # node N on DATA (default $TMP/nodeN); NODE_URL_N, NODE_PID_N
#   node_url N / node_pid N / node_log N
#   stop_node N / kill_node N       # SIGTERM (expects exit 0) / SIGKILL
#   start_refused N CONFIG [DATA]   # a start expected to fail: exit code in RC, log in node_log N
#   cluster_json N                  # GET /api/v1/cluster of node N
#   wait_applied N COUNT [SECONDS]  # until node N's `applied` >= COUNT (default 10 s)
#   store_head PREFIX               # the number of log/ objects under PREFIX
#   same_answers NAME A B PATH...   # every PATH answers byte-identical on nodes A and B
#   track_pid PID                   # another process (a proxy) that cluster_finish kills
#   cluster_finish                  # stops every node, removes the prefixes, then finish
need_s3_env cluster
AWS="aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
CLUSTER_PREFIXES=""
CLUSTER_NODES=""
CLUSTER_PIDS=""

# make_log_key NAME: the log key every node of one prefix shares.
make_log_key() {
    "$MLREG" key generate --no-password --out "$TMP/$1" >"$TMP/keygen.out" 2>&1 ||
        { not_ok "mlreg key generate --no-password --out $TMP/$1: $(cat "$TMP/keygen.out")"; return 1; }
}

# new_prefix VAR: sets VAR to a prefix no other run uses; cluster_finish
# removes it (not in a subshell: the list of prefixes is this shell's).
new_prefix() {
    _p="cluster-$$-$(date +%s)-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')/"
    CLUSTER_PREFIXES="$CLUSTER_PREFIXES $_p"
    eval "$1=\$_p"
}

# write_node_config FILE PREFIX KEYFILE [extra]: s3 storage on PREFIX, the
# log key, a fast follower (poll 100 ms, heartbeat 500 ms). EXTRA is
# inserted as further top-level members (",\"stages\":[...]").
write_node_config() {
    printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s",
  "prefix":"%s","path_style":true,"retry_base_ms":20,"retry_max_ms":200},
  "audit":{"log_key_file":"%s"},
  "cluster":{"poll_ms":100,"heartbeat_ms":500}%s}\n' \
        "$S3_ENDPOINT" "$S3_BUCKET" "${S3_REGION:-us-east-1}" "$2" "$3" "${4:-}" >"$1"
}

node_url() { eval "echo \${NODE_URL_$1:-}"; }
node_pid() { eval "echo \${NODE_PID_$1:-}"; }
node_log() { echo "$TMP/node$1.log"; }

# start_node N CONFIG [DATA]: starts node N and waits (up to 60 s: a node
# builds its index from the store first) for its ready file.
start_node() {
    _n=$1; _data=${3:-$TMP/node$1}
    rm -f "$TMP/ready$_n"
    echo "--- start node $_n: $2 $_data" >>"$(node_log "$_n")"
    "$MLREG" serve --config "$2" --data "$_data" --listen 127.0.0.1:0 \
        --ready-file "$TMP/ready$_n" 2>>"$(node_log "$_n")" &
    eval "NODE_PID_$_n=$!"
    CLUSTER_NODES="$CLUSTER_NODES $_n"
    _i=0
    while [ ! -s "$TMP/ready$_n" ]; do
        _i=$((_i + 1))
        if [ $_i -gt 1200 ] || ! kill -0 "$(node_pid "$_n")" 2>/dev/null; then
            kill -KILL "$(node_pid "$_n")" 2>/dev/null
            wait "$(node_pid "$_n")"
            not_ok "node $_n starts on $_data (exit $?, log:)"
            tail -n 20 "$(node_log "$_n")" | sed 's/^/  | /'
            eval "NODE_PID_$_n="
            return 1
        fi
        sleep 0.05
    done
    eval "NODE_URL_$_n=$(cat "$TMP/ready$_n")"
}

# stop_node N: SIGTERM; 0 when the node exits 0 within 10 s.
stop_node() {
    _pid=$(node_pid "$1")
    [ -n "$_pid" ] || return 0
    kill -TERM "$_pid" 2>/dev/null
    _i=0
    while kill -0 "$_pid" 2>/dev/null; do
        _i=$((_i + 1))
        [ $_i -gt 200 ] && { kill -KILL "$_pid"; break; }
        sleep 0.05
    done
    wait "$_pid"
    _rc=$?
    eval "NODE_PID_$1="
    [ $_rc -eq 0 ] || { echo "# node $1 exited $_rc on SIGTERM"; tail -n 5 "$(node_log "$1")"; }
    return $_rc
}

# kill_node N: SIGKILL, as a crash.
kill_node() {
    _pid=$(node_pid "$1")
    [ -n "$_pid" ] || return 0
    kill -KILL "$_pid" 2>/dev/null
    wait "$_pid" 2>/dev/null
    eval "NODE_PID_$1="
}

# start_refused N CONFIG [DATA]: a start that must fail; RC is its exit code
# (124 when it was still running after 20 s, then it is killed).
start_refused() {
    _n=$1; _data=${3:-$TMP/node$1}
    _log=$(node_log "$_n")
    : >"$_log"
    "$MLREG" serve --config "$2" --data "$_data" --listen 127.0.0.1:0 \
        --ready-file "$TMP/ready$_n" 2>"$_log" &
    _pid=$!
    _i=0
    while kill -0 $_pid 2>/dev/null && [ $_i -lt 400 ]; do sleep 0.05; _i=$((_i + 1)); done
    if kill -0 $_pid 2>/dev/null; then
        kill -KILL $_pid
        wait $_pid 2>/dev/null
        RC=124
    else
        wait $_pid
        RC=$?
    fi
}

# CLUSTER_TOKEN (optional): the bearer token node requests of these helpers carry
cluster_curl() {
    if [ -n "${CLUSTER_TOKEN:-}" ]; then curl -H "Authorization: Bearer $CLUSTER_TOKEN" "$@"; else curl "$@"; fi
}

cluster_json() { cluster_curl -s "$(node_url "$1")/api/v1/cluster"; }

# wait_applied N COUNT [SECONDS]: true once node N has applied COUNT entries.
wait_applied() {
    _deadline=$(( $(date +%s) + ${3:-10} ))
    while :; do
        _a=$(cluster_json "$1" | jq -r '.applied // -1' 2>/dev/null)
        [ -n "$_a" ] && [ "$_a" -ge "$2" ] && return 0
        [ "$(date +%s)" -ge "$_deadline" ] && { echo "# node $1: applied $_a, want $2"; return 1; }
        sleep 0.05
    done
}

# store_head PREFIX: how many entry objects PREFIX/log/ holds.
store_head() {
    $AWS s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${1}log/" \
        --query 'length(Contents || `[]`)' --output text
}

# same_answers NAME A B PATH...: one check; every PATH answers the same status
# and body bytes on nodes A and B (the first difference is shown).
same_answers() {
    _name=$1; _a=$2; _b=$3; shift 3
    # One python3 process on two keep-alive connections: a curl per path and
    # node made this the slowest part of the cluster tests.
    printf '%s\n' "$@" >"$TMP/ans.paths"
    _bad=$(CLUSTER_TOKEN="${CLUSTER_TOKEN:-}" python3 - "$(node_url "$_a")" "$(node_url "$_b")" "$_a" "$_b" "$TMP/ans.paths" <<'PY'
import http.client, os, sys, urllib.parse
ua, ub, na, nb, paths = sys.argv[1:6]
tok = os.environ.get("CLUSTER_TOKEN", "")
hdrs = {"Authorization": "Bearer " + tok} if tok else {}
def conn(u):
    p = urllib.parse.urlsplit(u)
    return http.client.HTTPConnection(p.hostname, p.port, timeout=30)
ca, cb = conn(ua), conn(ub)
def get(c, path):
    c.request("GET", path, headers=hdrs)
    r = c.getresponse()
    return r.status, r.read()
for path in open(paths).read().split("\n"):
    if not path:
        continue
    sa, ba = get(ca, path)
    sb, bb = get(cb, path)
    if sa in (401, 403):
        print("%s: node %s answers %d (a token missing?)" % (path, na, sa))
        break
    if sa != sb or ba != bb:
        print("%s: node %s %d %s / node %s %d %s" % (path, na, sa, ba[:200].decode("utf-8", "replace"),
                                                    nb, sb, bb[:200].decode("utf-8", "replace")))
        break
PY
) || _bad="comparing the answers failed"
    if [ -z "$_bad" ]; then ok "$_name ($# answers)"; else not_ok "$_name (first difference $_bad)"; fi
}

track_pid() { CLUSTER_PIDS="$CLUSTER_PIDS $1"; }

cluster_stop_all() {
    for _pid in $CLUSTER_PIDS; do
        kill -KILL "$_pid" 2>/dev/null && wait "$_pid" 2>/dev/null
    done
    CLUSTER_PIDS=""
    for _n in $CLUSTER_NODES; do
        _pid=$(node_pid "$_n")
        [ -n "$_pid" ] && { kill -KILL "$_pid" 2>/dev/null; wait "$_pid" 2>/dev/null; eval "NODE_PID_$_n="; }
    done
    CLUSTER_NODES=""
    for _p in $CLUSTER_PREFIXES; do
        $AWS s3 rm --recursive --quiet "s3://$S3_BUCKET/$_p" >/dev/null 2>&1
    done
    CLUSTER_PREFIXES=""
}

cluster_finish() {
    for _n in $CLUSTER_NODES; do
        [ -n "$(node_pid "$_n")" ] && ! stop_node "$_n" && not_ok "node $_n exits 0 on SIGTERM"
    done
    cat "$TMP"/node*.log 2>/dev/null | grep -q "ERROR: AddressSanitizer\|runtime error:" &&
        not_ok "no sanitizer reports in the node logs"
    cluster_stop_all
    trap - EXIT INT TERM HUP
    finish
}
trap 'cluster_stop_all' EXIT
trap 'cluster_stop_all; exit 130' INT TERM HUP
