#!/bin/sh
# test_cluster_events.sh: events on the s3 backend with two nodes on one
# bucket prefix (docs/operations.md, "Events and webhooks"). Only node 2
# has a webhook: a push through node 1 reaches the receiver once, from
# node 2, after node 2 applied the entry; its event id is the one node 1's
# GET /api/v1/events gives (one log, one id on every node); a long-poll
# waiting on node 2 answers when the change made through node 1 arrives.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"

W=$TMP/work
mkdir -p "$W" "$TMP/recv"
jqt() { jq -e "$@" >/dev/null; }
cli() {
    _node=$1; shift
    MLREG_URL=$(node_url "$_node") "$MLREG" "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}

python3 "$MLREG_ROOT/tests/integration/webhook_receiver.py" "$TMP/recv" 2>>"$TMP/receiver.log" &
track_pid $!
i=0
while [ ! -s "$TMP/recv/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
openssl rand -hex 32 >"$TMP/hook.secret"
chmod 600 "$TMP/hook.secret"

make_log_key log || cluster_finish
new_prefix PREFIX
write_node_config "$TMP/c1.json" "$PREFIX" "$TMP/log.key"
write_node_config "$TMP/c2.json" "$PREFIX" "$TMP/log.key" \
    ",\"webhooks\":[{\"url\":\"http://127.0.0.1:$(cat "$TMP/recv/port")/\",\"secret_file\":\"hook.secret\"}]"
start_node 1 "$TMP/c1.json" || cluster_finish
start_node 2 "$TMP/c2.json" || cluster_finish

NEXT=$(curl -s -D - -o /dev/null "$(node_url 2)/api/v1/events?timeout=0" | tr -d '\r' |
    sed -n 's/^[Xx]-[Mm]lreg-[Nn]ext: //p')
check "node 2 answers X-Mlreg-Next ($NEXT)" [ -n "$NEXT" ]
curl -s -o "$TMP/poll.json" "$(node_url 2)/api/v1/events?since=$NEXT&timeout=30&types=push" &
POLL=$!
sleep 0.5
head -c 2000 /dev/urandom >"$W/weights.bin"
printf '{"metrics":{"acc":0.9}}\n' >"$W/eval.json"
t0=$(date +%s)
cli 1 push "p/m@1.0" --weights "$W/weights.bin" --eval-report "$W/eval.json"
check "push p/m@1.0 through node 1" [ "$RC" = 0 ]
wait $POLL
t1=$(date +%s)
check "a long-poll waiting on node 2 answers with the push made through node 1" \
    jqt 'length == 1 and .[0].subject == "p/m@1.0" and .[0].type == "dev.mlreg.push"' "$TMP/poll.json"
check "... within a few seconds, not at its timeout" [ $((t1 - t0)) -lt 15 ]

i=0
while [ "$(ls "$TMP/recv" | grep -c '\.body$')" -lt 1 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
check "node 2's webhook delivered the push made through node 1" \
    jqt '.subject == "p/m@1.0" and .type == "dev.mlreg.push"' "$TMP/recv/000001.body"
ID1=$(curl -s "$(node_url 1)/api/v1/events?since=$NEXT&types=push&timeout=0" | jq -r '.[0].id')
check "... with the id node 1 gives the same event ($ID1)" \
    [ "$(jq -r .id "$TMP/recv/000001.body")" = "$ID1" ]
check "... and a signature that verifies" sh -c \
    "[ \"\$(jq -r '.\"x-mlreg-signature\"' $TMP/recv/000001.headers)\" = \"sha256=\$(openssl dgst -sha256 -hmac \"\$(cat $TMP/hook.secret)\" <$TMP/recv/000001.body | sed 's/^.*= *//')\" ]"
sleep 1
check "node 1, without webhooks, delivered nothing: one event received" \
    [ "$(ls "$TMP/recv" | grep -c '\.body$')" = 1 ]
cluster_finish
