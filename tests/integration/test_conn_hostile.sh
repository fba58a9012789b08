#!/bin/sh
# Hostile connections against the real `mlreg serve` (conf/README.md,
# limits.*): clients that open many connections and trickle request heads
# a line at a time, a keep-alive connection that never finishes its next
# request, and requests whose length two parsers would read differently.
# The server must keep answering everyone else, close the tricklers at
# their deadline, and never let a body hide a second request.
. "$(dirname "$0")/lib.sh"

FLOOD="python3 $MLREG_ROOT/tests/integration/conn_flood.py"
HEADER_S=2
IDLE_S=3
cat >"$TMP/cfg.json" <<EOF
{ "server": { "threads": 2 },
  "limits": { "max_connections": 24, "max_connections_per_address": 8,
              "header_timeout_seconds": $HEADER_S, "idle_timeout_seconds": $IDLE_S } }
EOF
start_server --config "$TMP/cfg.json" || finish
PORT=${MLREG_URL##*:}
kv() { sed -n "s/^$1=//p" "$TMP/out"; }
# le A B: A <= B for decimals
le() { [ "$(echo "$1 <= $2" | bc)" = 1 ]; }

check "the start-up line states the limits in force" \
    grep -q "at most 24 connections, 8 per client address; request heads within ${HEADER_S}s" \
    "$TMP/server.log"

# ---- one address, past its limit, trickling headers ----------------------------
# 20 connections from 127.0.0.1 (limit 8 per address), each sending a request
# line and then a header line every 0.4 s, never the blank line; a second
# client on 127.0.0.2 asks /api/v1/health every 0.2 s meanwhile.
$FLOOD trickle 127.0.0.1 "$PORT" 20 127.0.0.1 --probe-src 127.0.0.2 --for 4.5 >"$TMP/out" 2>&1
cat "$TMP/out"
check "all 20 trickling connections were opened" [ "$(kv connections)" = 20 ]
check "the 12 over the per-address limit are closed at once" [ "$(kv closed_within_1s)" -ge 12 ]
check "every trickling connection is closed by the header deadline" [ "$(kv open_at_end)" = 0 ]
check "the last one goes within ${HEADER_S}s + 1s" le "$(kv last_closed_at)" "$((HEADER_S + 1))"
check "meanwhile another address got every health answer" [ "$(kv probe_fails)" = 0 ] &&
    [ "$(kv probes)" -ge 15 ]
check "and each within 1 s" le "$(kv probe_worst)" 1.0
check "the server logs the connections it closed" \
    wait_log "connections\? that sent no complete request head in time"

# connections over the per-address limit never run a request, even one that
# arrived complete with the connection
$FLOOD overlimit 127.0.0.1 "$PORT" 127.0.0.5 8 >"$TMP/out" 2>&1
cat "$TMP/out"
check "complete requests on connections over the per-address limit get no reply" \
    [ "$(kv over_limit_replies)" = 0 ]
check "  and never run" sh -c "! grep -q over-limit '$TMP/server.log'"

# ---- IPv6: a client is counted by its /64 ---------------------------------------
# In a network namespace of its own (root only): addresses in two /64s on its
# loopback, a server on one of them, a limit of 3 per address.
NS=mlreg-conn-$$
if ip netns add "$NS" 2>/dev/null; then
    ip -n "$NS" link set lo up
    for a in fd00:1::1 fd00:1::2 fd00:1::3 fd00:1::4 fd00:1::5 fd00:2::1; do
        ip -n "$NS" -6 addr add "$a/64" dev lo nodad
    done
    printf '{ "tokens": [ { "name": "r", "sha256": "%s", "roles": ["read"] } ],\n' \
        "$(hash "$(tok)")" >"$TMP/v6.json"
    echo '  "limits": { "max_connections_per_address": 3 } }' >>"$TMP/v6.json"
    ip netns exec "$NS" "$MLREG" serve --config "$TMP/v6.json" --listen '[fd00:1::1]:0' \
        --insecure-http --data "$TMP/v6-data" --ready-file "$TMP/v6-ready" 2>"$TMP/v6.log" &
    V6_PID=$!
    i=0
    while [ ! -s "$TMP/v6-ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    V6_PORT=$(sed 's/.*://' "$TMP/v6-ready")
    ip netns exec "$NS" $FLOOD v6hold fd00:1::1 "$V6_PORT" fd00:1::2 fd00:1::3 fd00:1::4 \
        fd00:1::5 fd00:2::1 >"$TMP/out" 2>&1
    cat "$TMP/out"
    check "IPv6: the 4th address of one /64 is over the limit of 3, another /64 is not" \
        [ "$(kv closed)" = "fd00:1::5" ]
    kill "$V6_PID"
    wait "$V6_PID"
    ip netns del "$NS"
else
    echo "# ip netns unavailable (not root?): the IPv6 /64 case did not run"
    not_ok "the IPv6 /64 case needs a network namespace (root and iproute2)"
fi

# ---- many addresses, past the server's limit ------------------------------------
# 48 trickling connections from 8 addresses (6 each, under the per-address
# limit) against a limit of 24: the deadlines free the slots in two waves.
$FLOOD trickle 127.0.0.1 "$PORT" 6 127.0.0.10 127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14 \
    127.0.0.15 127.0.0.16 127.0.0.17 --for $((2 * HEADER_S + 2)) >"$TMP/out" 2>&1
cat "$TMP/out"
check "48 connections over the server limit are all closed by their deadlines" \
    [ "$(kv open_at_end)" = 0 ]
check "within two deadlines + 1s" le "$(kv last_closed_at)" "$((2 * HEADER_S + 1))"
check "afterwards the server answers at once" \
    [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "$MLREG_URL/api/v1/health")" = 200 ]

# ---- keep-alive: the next request's head is due within the idle timeout -----------
$FLOOD idle 127.0.0.1 "$PORT" 127.0.0.3 >"$TMP/out" 2>&1
cat "$TMP/out"
check "a kept-alive connection is answered first" [ "$(kv first_status)" = 200 ]
check "then closed ${IDLE_S}s after the reply although it trickles a head" \
    le "$(kv idle_closed_at)" "$((IDLE_S + 1))"
check "not before" le "$IDLE_S" "$(kv idle_closed_at)"

# ---- a slow body is not a slow head ------------------------------------------------
$FLOOD slowbody 127.0.0.1 "$PORT" 127.0.0.4 $((HEADER_S + 2)) >"$TMP/out" 2>&1
cat "$TMP/out"
check "a body trickling for longer than the header deadline still uploads (201)" \
    [ "$(kv slowbody_status)" = 201 ]

# ---- ambiguous framing: 400, connection closed, nothing smuggled -----------------
for c in two-lengths length-and-chunked two-encodings; do
    $FLOOD frame 127.0.0.1 "$PORT" "$c" >"$TMP/out" 2>&1
    cat "$TMP/out"
    check "$c: one reply, 400" [ "$(kv statuses)" = 400 ]
    check "$c: the server closed the connection" [ "$(kv closed)" = 1 ]
done
check "the smuggled request never ran" sh -c "! grep -q smuggled '$TMP/server.log'"

# ---- the limits are checked at start ------------------------------------------------
limits_refused '"max_connections": 8' '"max_connections_per_address": 0' \
    '"header_timeout_seconds": 0' '"idle_timeout_seconds": 7200' '"body_timeout_seconds": -1' \
    '"max_connections": "many"'
echo '{ "limits": { "max_connections": 1000000 } }' >"$TMP/bad.json"
(ulimit -n 1024 && "$MLREG" serve --config "$TMP/bad.json" --listen 127.0.0.1:0 \
    --data "$TMP/bad-data" >"$TMP/bad.out" 2>&1)
rc=$?
cat "$TMP/bad.out"
check "max_connections over what the open-file limit allows stops the start" \
    sh -c "[ $rc = 2 ] && grep -q 'open-file limit' '$TMP/bad.out'"

finish
