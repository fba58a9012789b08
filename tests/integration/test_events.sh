#!/bin/sh
# test_events.sh: events and webhooks (docs/operations.md "Events and
# webhooks", docs/events-api.md) on the real server, against receivers
# written in Python (tests/integration/webhook_receiver.py) on loopback:
# - the config: bad webhooks entries stop the start naming the key;
# - every committed push, promotion and refused promotion reaches the
#   receiver as a CloudEvent whose X-Mlreg-Signature verifies (Python hmac
#   and openssl dgst -hmac), in log order, with the right fields;
# - the models prefix and events filters of a second webhook hold;
# - a receiver down for a while gets every event once it is back; a restart
#   of mlreg in between loses none (duplicates allowed, same ids);
# - an event refused with a 4xx is dropped after give_up_after attempts;
# - a push while the receiver hangs is not slowed;
# - GET /api/v1/events: the batch after ?since=, the long-poll answering on
#   a push or at its timeout, the filters, roles, hostile parameters, the
#   bound on waiting long-polls (503), other requests served meanwhile.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

RECV="$MLREG_ROOT/tests/integration/webhook_receiver.py"
W=$TMP/work
mkdir -p "$W" "$TMP/conf" "$TMP/a" "$TMP/b"
jqt() { jq -e "$@" >/dev/null; }
RPIDS=""

# start_receiver DIR [PORT]: a receiver recording into DIR; RPORT its port.
start_receiver() {
    rm -f "$1/port"
    python3 "$RECV" "$1" ${2:-0} 2>>"$TMP/receiver.log" &
    echo $! >"$1/pid"
    i=0
    while [ ! -s "$1/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    RPORT=$(cat "$1/port")
}
stop_receiver() { kill "$(cat "$1/pid")" 2>/dev/null; wait "$(cat "$1/pid")" 2>/dev/null; }
cleanup() {
    for d in "$TMP/a" "$TMP/b"; do [ -f "$d/pid" ] && stop_receiver "$d"; done
    finish
}
# received DIR: how many events DIR holds.
received() { ls "$1" | grep -c '\.body$'; }
# wait_received DIR N [SECONDS]: true once DIR holds at least N events.
wait_received() {
    i=0
    while [ "$(received "$1")" -lt "$2" ]; do
        i=$((i + 1))
        [ $i -gt $((${3:-15} * 10)) ] && return 1
        sleep 0.1
    done
}
# types DIR: the event types DIR holds, one line each, in arrival order.
types() { for f in "$1"/*.body; do jq -r .type "$f"; done; }

# ---- the config: bad entries stop the start ----------------------------------------
openssl rand -hex 32 >"$TMP/conf/secret"
chmod 600 "$TMP/conf/secret"
cp "$TMP/conf/secret" "$TMP/conf/open"
chmod 644 "$TMP/conf/open"
refuse_start() { # NAME WEBHOOKS_JSON NEEDLE
    printf '{"webhooks": %s}\n' "$2" >"$TMP/conf/bad.json"
    timeout 10 "$MLREG" serve --config "$TMP/conf/bad.json" --listen 127.0.0.1:0 \
        --data "$TMP/refused" >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -qF "$3" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (exit $rc: $(head -c 300 "$TMP/err"))"; fi
}
refuse_start "an unknown webhook key stops the start" \
    '[{"url":"http://127.0.0.1:9/","secret_file":"secret","model":"x"}]' \
    "unknown config key 'webhooks[0].model'"
refuse_start "a webhook URL that is not http(s) stops the start" \
    '[{"url":"file:///etc/passwd","secret_file":"secret"}]' "config key 'webhooks[0].url'"
refuse_start "an unknown event name stops the start" \
    '[{"url":"http://127.0.0.1:9/","secret_file":"secret","events":["deploy"]}]' \
    "config key 'webhooks[0].events[0]': unknown event"
refuse_start "a secret file other users may read stops the start" \
    '[{"url":"http://127.0.0.1:9/","secret_file":"open"}]' "has mode 0644; want 0600"
refuse_start "a missing secret file stops the start" \
    '[{"url":"http://127.0.0.1:9/","secret_file":"missing"}]' "config key 'webhooks[0].secret_file'"
refuse_start "a webhook without secret_file stops the start" \
    '[{"url":"http://127.0.0.1:9/"}]' "lacks \"secret_file\""
refuse_start "the same URL twice stops the start" \
    '[{"url":"http://127.0.0.1:9/","secret_file":"secret"},{"url":"http://127.0.0.1:9/","secret_file":"secret"}]' \
    "the same URL as webhooks[0]"
check "refused starts created no data dir" [ ! -e "$TMP/refused" ]

# ---- the server with two webhooks ----------------------------------------------------
start_receiver "$TMP/a"
PORT_A=$RPORT
start_receiver "$TMP/b"
PORT_B=$RPORT
T_CI=$(tok)
T_REL=$(tok)
T_READ=$(tok)
T_VISION=$(tok)
T_PUSH=$(tok)
T_R2=$(tok)
T_R3=$(tok)
T_R4=$(tok)
T_R5=$(tok)
cat >"$TMP/conf/mlreg.json" <<EOF
{
  "tokens": [
    { "name": "ci", "sha256": "$(hash "$T_CI")", "roles": ["read", "push"] },
    { "name": "rel", "sha256": "$(hash "$T_REL")", "roles": ["read", "promote:dev", "promote:staging"] },
    { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] },
    { "name": "vision", "sha256": "$(hash "$T_VISION")", "roles": ["read@vision"] },
    { "name": "pusher", "sha256": "$(hash "$T_PUSH")", "roles": ["push"] },
    { "name": "r2", "sha256": "$(hash "$T_R2")", "roles": ["read"] },
    { "name": "r3", "sha256": "$(hash "$T_R3")", "roles": ["read"] },
    { "name": "r4", "sha256": "$(hash "$T_R4")", "roles": ["read"] },
    { "name": "r5", "sha256": "$(hash "$T_R5")", "roles": ["read"] }
  ],
  "gates": { "staging": [ { "metric": "accuracy", "min": 0.85 } ] },
  "limits": { "max_connections_per_address": 500 },
  "webhooks": [
    { "url": "http://127.0.0.1:$PORT_A/all?token=not-for-logs", "secret_file": "secret",
      "retry_max_seconds": 1, "timeout_seconds": 2, "give_up_after": 2 },
    { "url": "http://127.0.0.1:$PORT_B/demo", "secret_file": "secret",
      "events": ["promote", "refuse"], "models": "demo" }
  ]
}
EOF
start_server --config "$TMP/conf/mlreg.json" || cleanup
CI="Authorization: Bearer $T_CI"
REL="Authorization: Bearer $T_REL"
READ="Authorization: Bearer $T_READ"

blob() { # MODEL FILE
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$CI" --data-binary @"$2" \
        "$MLREG_URL/v2/$1/blobs/uploads/?digest=sha256:$(sha256_of "$2")")
    [ "$code" = 201 ] || not_ok "upload $2 into $1 (got $code)"
}
push() { # MODEL VERSION ACCURACY: pushes MODEL@VERSION; its manifest is $W/<model>-<version>.json
    f=$W/$(echo "$1" | tr / _)-$2
    printf '{}' >"$W/cfg"
    printf 'weights of %s %s' "$1" "$2" >"$f.w"
    printf '{"metrics":{"accuracy":%s}}' "$3" >"$f.e"
    blob "$1" "$W/cfg"
    blob "$1" "$f.w"
    blob "$1" "$f.e"
    jq -cn --arg w "sha256:$(sha256_of "$f.w")" --argjson ws "$(wc -c <"$f.w")" \
        --arg e "sha256:$(sha256_of "$f.e")" --argjson es "$(wc -c <"$f.e")" \
        --arg m "$1" --arg v "$2" '{schemaVersion:2,
        mediaType:"application/vnd.oci.image.manifest.v1+json",
        artifactType:"application/vnd.mlreg.release.v1+json",
        config:{mediaType:"application/vnd.oci.empty.v1+json",
                digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
        layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:$ws,
                 annotations:{"org.opencontainers.image.title":"w.bin","org.mlreg.kind":"weights"}},
                {mediaType:"application/vnd.mlreg.eval-report.v1+json", digest:$e, size:$es,
                 annotations:{"org.opencontainers.image.title":"eval.json","org.mlreg.kind":"eval-report"}}],
        annotations:{"org.mlreg.model":$m,"org.mlreg.version":$v,
                     "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$f.json"
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H "$CI" \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @"$f.json" "$MLREG_URL/v2/$1/manifests/$2")
    [ "$code" = 201 ] || not_ok "push $1@$2 (got $code: $(head -c 200 "$TMP/body"))"
}
promote() { # MODEL VERSION STAGE WANT_STATUS
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "$REL" \
        --data-binary "{\"version\":\"$2\",\"to\":\"$3\",\"reason\":\"test\"}" \
        "$MLREG_URL/api/v1/models/$1/promotions")
    [ "$code" = "$4" ] || not_ok "promote $1@$2 to $3 (want $4, got $code: $(head -c 200 "$TMP/body"))"
}

push demo 1.0 0.90
push demo 2.0 0.80
push other 1.0 0.95
promote demo 2.0 staging 409
promote demo 1.0 staging 200
promote other 1.0 staging 200
check "the receiver of every event got six" wait_received "$TMP/a" 6
check "... in commit order: three pushes, a refusal, two promotions" \
    [ "$(types "$TMP/a" | tr '\n' ' ')" = "dev.mlreg.push dev.mlreg.push dev.mlreg.push dev.mlreg.refuse dev.mlreg.promote dev.mlreg.promote " ]

# signatures: Python's hmac and openssl dgst -hmac over the exact body bytes
cat >"$TMP/verify.py" <<'EOF'
import hmac, hashlib, json, sys
key = open(sys.argv[1], "rb").read().rstrip(b"\n")
bad = 0
for base in sys.argv[2:]:
    body = open(base + ".body", "rb").read()
    sig = json.load(open(base + ".headers"))["x-mlreg-signature"]
    want = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sig, want):
        print("bad signature on", base); bad += 1
sys.exit(1 if bad else 0)
EOF
bases() { for f in "$1"/*.body; do echo "${f%.body}"; done; }
# shellcheck disable=SC2046
check "every signature verifies with Python's hmac" python3 "$TMP/verify.py" "$TMP/conf/secret" $(bases "$TMP/a")
openssl_ok=0
for b in $(bases "$TMP/a"); do
    have=$(jq -r '."x-mlreg-signature"' "$b.headers")
    want="sha256=$(openssl dgst -sha256 -hmac "$(cat "$TMP/conf/secret")" <"$b.body" | sed 's/^.*= *//')"
    [ "$have" = "$want" ] || openssl_ok=1
done
check "every signature verifies with openssl dgst -sha256 -hmac \"\$(cat secret)\"" [ $openssl_ok = 0 ]
printf 'x' >>"$TMP/a/000001.body"
check "a changed body no longer verifies" sh -c "! python3 '$TMP/verify.py' '$TMP/conf/secret' '$TMP/a/000001' >/dev/null"
truncate -s -1 "$TMP/a/000001.body"
check "the content type is structured-mode CloudEvents" \
    jqt '."content-type" | startswith("application/cloudevents+json")' "$TMP/a/000001.headers"
check "the event id header matches the body" sh -c \
    "[ \"\$(jq -r '.\"x-mlreg-event-id\"' $TMP/a/000004.headers)\" = \"\$(jq -r .id $TMP/a/000004.body)\" ]"

# fields
LOGID=$(jq -r .id "$TMP/a/000001.body" | sed 's/-[0-9]*$//')
D1=sha256:$(sha256_of "$W/demo-1.0.json")
check "a push event has the CloudEvents attributes and the release" jqt --arg d "$D1" --arg l "$LOGID" '
    .specversion == "1.0" and .type == "dev.mlreg.push" and .subject == "demo@1.0"
    and (.source | startswith("mlreg://")) and .datacontenttype == "application/json"
    and (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z$")) and .id == ($l + "-" + (.data.seq | tostring))
    and .data.model == "demo" and .data.version == "1.0" and .data.digest == $d
    and .data.actor == "ci" and .data.stage == null and .data.action == "push"' "$TMP/a/000001.body"
check "a refused promotion event has the stage and the failed gate table" jqt '
    .type == "dev.mlreg.refuse" and .subject == "demo@2.0" and .data.stage == "staging"
    and .data.result == "refused" and .data.actor == "rel" and has("data") and (.data | has("from_stage"))
    and .data.gates[0].rule == "accuracy >= 0.85" and .data.gates[0].passed == false' "$TMP/a/000004.body"
check "a promotion event has the stage, the gate table and the digest" jqt --arg d "$D1" '
    .type == "dev.mlreg.promote" and .subject == "demo@1.0" and .data.stage == "staging"
    and .data.digest == $d and .data.result == "ok" and .data.gates[0].passed == true
    and .data.reason == "test"' "$TMP/a/000005.body"
check "event ids are unique and their seqs increase" sh -c \
    "for f in $TMP/a/*.body; do jq -r .data.seq \$f; done | awk 'NR>1 && \$1<=p {exit 1} {p=\$1}'"
check "the audit entry of a promotion has the event's seq" sh -c \
    "curl -s -H '$READ' '$MLREG_URL/api/v1/audit?since=$(jq .data.seq "$TMP/a/000005.body")&limit=1' | jq -e '.entries[0] | fromjson | .action == \"promote\" and .subject.version == \"1.0\"' >/dev/null"

# filters: webhook b takes promote and refuse of demo only
sleep 1
check "the filtered receiver got the demo refusal and promotion only" [ "$(received "$TMP/b")" = 2 ]
check "... a refuse then a promote, both of demo" sh -c \
    "[ \"\$(for f in $TMP/b/*.body; do jq -r '.type + \" \" + .data.model' \$f; done | tr '\n' ,)\" = 'dev.mlreg.refuse demo,dev.mlreg.promote demo,' ]"
check "the access log and server log never show the webhook URL's query" sh -c \
    "! grep -q 'not-for-logs' '$TMP/server.log'"

# ---- the receiver down for a while -----------------------------------------------------
stop_receiver "$TMP/a"
push demo 3.0 0.91
promote demo 3.0 staging 200
push demo 4.0 0.70
sleep 2
check "nothing arrives while the receiver is down" [ "$(received "$TMP/a")" = 6 ]
start_receiver "$TMP/a" "$PORT_A"
check "once back, the receiver gets the three events made meanwhile" wait_received "$TMP/a" 9 20
check "... in order" [ "$(types "$TMP/a" | tail -n 3 | tr '\n' ' ')" = "dev.mlreg.push dev.mlreg.promote dev.mlreg.push " ]
check "... and the server log says it retried" grep -q "not delivered.*retrying" "$TMP/server.log"

# ---- a restart of mlreg in between ------------------------------------------------------
stop_receiver "$TMP/a"
push demo 5.0 0.92
push demo 6.0 0.93
stop_server
start_server --config "$TMP/conf/mlreg.json" || cleanup
push demo 7.0 0.94
start_receiver "$TMP/a" "$PORT_A"
check "after a restart the receiver gets the events of before and after it" wait_received "$TMP/a" 12 20
curl -s -H "$READ" "$MLREG_URL/api/v1/events?since=0&timeout=0" >"$TMP/all.json"
check "every event the log holds reached the receiver (by id, duplicates allowed)" sh -c \
    "jq -r '.[].id' $TMP/all.json | sort -u >$TMP/want; for f in $TMP/a/*.body; do jq -r .id \$f; done | sort -u >$TMP/have; [ -s $TMP/want ] && cmp -s $TMP/want $TMP/have"
check "ids are stable across the restart (the same release, the same id)" sh -c \
    "[ \"\$(jq -r '.[] | select(.subject == \"demo@5.0\") | .id' $TMP/all.json)\" = \"\$(for f in $TMP/a/*.body; do jq -r 'select(.subject == \"demo@5.0\") | .id' \$f; done | sort -u)\" ]"

# ---- an event a 4xx refuses is dropped after give_up_after attempts -----------------
N=$(received "$TMP/a")
echo 400 >"$TMP/a/status"
push demo 8.0 0.9
i=0
while [ "$(grep -c 400 "$TMP/a/refused.log" 2>/dev/null || echo 0)" -lt 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
rm -f "$TMP/a/status"
push demo 9.0 0.9
check "an event answered 400 twice is dropped and the next one delivered" wait_received "$TMP/a" $((N + 1))
sleep 1.5
check "... the dropped one is not sent again" [ "$(received "$TMP/a")" = $((N + 1)) ]
check "... the one delivered is the next push" jqt '.subject == "demo@9.0"' "$(ls "$TMP"/a/*.body | tail -n 1)"
check "... and the server log says it was dropped" grep -q "refused with HTTP 400 2 times; dropped" "$TMP/server.log"
curl -s -H "$READ" "$MLREG_URL/metrics" >"$TMP/metrics.txt"
check "/metrics counts the first webhook's deliveries" \
    grep -Eq '^mlreg_webhook_delivered_total\{webhook="0"\} [1-9][0-9]*$' "$TMP/metrics.txt"
check "... its failed attempts (the receiver was down, then said 400)" \
    grep -Eq '^mlreg_webhook_failed_attempts_total\{webhook="0"\} [1-9][0-9]*$' "$TMP/metrics.txt"
check "... the event it dropped" grep -qx 'mlreg_webhook_dropped_total{webhook="0"} 1' "$TMP/metrics.txt"
check "... and its lag, for both webhooks" \
    sh -c "[ \$(grep -c '^mlreg_webhook_lag_entries{webhook=\"[01]\"} ' '$TMP/metrics.txt') = 2 ]"
check "... never a webhook URL" sh -c "! grep -q '127.0.0.1:$PORT_A' '$TMP/metrics.txt'"

# ---- a hanging receiver does not slow a mutation ----------------------------------------
touch "$TMP/a/hang"
push demo 10.0 0.9 # the delivery of this one now hangs
t0=$(date +%s.%N)
push demo 11.0 0.9
t1=$(date +%s.%N)
# a mutation waiting for the delivery would hang until the file goes (30 s)
check "a push while the receiver hangs is not held up by it (under 5 s)" \
    awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 5) }'
rm -f "$TMP/a/hang"
check "... and both arrive once it answers again" sh -c \
    "i=0; while ! for f in $TMP/a/*.body; do jq -r .subject \$f; done | grep -q 'demo@11.0'; do i=\$((i+1)); [ \$i -gt 100 ] && exit 1; sleep 0.1; done"

# ---- GET /api/v1/events -----------------------------------------------------------------
SIZE=$(curl -s -H "$READ" "$MLREG_URL/api/v1/audit?limit=1" | jq .size)
expect_status "events since 0 answer at once" 200 GET "/api/v1/events?since=0&timeout=0" -H "$READ"
check "... as a CloudEvents batch" [ "$(header Content-Type)" = "application/cloudevents-batch+json" ]
check "... with X-Mlreg-Next the log size" [ "$(header X-Mlreg-Next)" = "$SIZE" ]
check "... the events of the log, the pushes among them" jqt 'length == 16 and
    (map(select(.type == "dev.mlreg.push")) | length) == 12 and .[0].specversion == "1.0"' "$TMP/body"
expect_status "?limit=2 answers two" 200 GET "/api/v1/events?since=0&limit=2" -H "$READ"
check "... and X-Mlreg-Next is past the second" sh -c \
    "[ \"\$(jq length $TMP/body)\" = 2 ] && [ \"\$(grep -i '^x-mlreg-next:' $TMP/headers | tr -dc 0-9)\" = \$((\$(jq '.[1].data.seq' $TMP/body) + 1)) ]"
expect_status "?types=promote,refuse filters" 200 GET "/api/v1/events?since=0&types=promote,refuse" -H "$READ"
check "... to promotions and refusals" jqt 'length == 4 and all(.[]; .type == "dev.mlreg.promote" or .type == "dev.mlreg.refuse")' "$TMP/body"
t0=$(date +%s.%N)
expect_status "a long-poll with nothing new answers at its timeout" 200 GET "/api/v1/events?since=$SIZE&timeout=1" -H "$READ"
t1=$(date +%s.%N)
check "... with [] after about a second" sh -c "[ \"\$(cat $TMP/body)\" = '[]' ] && awk -v a=$t0 -v b=$t1 'BEGIN { exit !(b - a >= 0.9 && b - a < 5) }'"
(sleep 1; push demo 12.0 0.9) &
PUSHER=$!
t0=$(date +%s.%N)
expect_status "a long-poll answers when a push comes" 200 GET "/api/v1/events?since=$SIZE&timeout=20" -H "$READ"
t1=$(date +%s.%N)
wait $PUSHER
check "... with the push, well before its timeout" sh -c "jq -e '.[0].subject == \"demo@12.0\"' $TMP/body >/dev/null && awk -v a=$t0 -v b=$t1 'BEGIN { exit !(b - a < 10) }'"

# roles
expect_status "events without a token are 401" 401 GET "/api/v1/events?since=0"
expect_status "events with a wrong token are 401" 401 GET "/api/v1/events?since=0" -H "Authorization: Bearer x$T_READ"
expect_status "events with a push-only token are 403" 403 GET "/api/v1/events?since=0" -H "Authorization: Bearer $T_PUSH"
expect_status "events with a read role limited to a model prefix are 403" 403 GET "/api/v1/events?since=0" -H "Authorization: Bearer $T_VISION"
expect_status "POST /api/v1/events is 405" 405 POST "/api/v1/events" -H "$READ"

# hostile parameters
for q in "since=abc" "since=-1" "since=1e3" "since=" "since=99999999999999999999999" \
    "since=$((SIZE + 1000))" "timeout=61" "timeout=abc" "timeout=-5" "limit=0" "limit=101" \
    "types=deploy" "types=" "types=push,,promote" "types=push%00" "since=1%20"; do
    expect_status "?$q is 400" 400 GET "/api/v1/events?$q" -H "$READ"
done

# long-polls are bounded and hold no worker thread
NOW=$(curl -s -H "$READ" "$MLREG_URL/api/v1/audit?limit=1" | jq .size)
for t in "$T_READ" "$T_R2" "$T_R3" "$T_R4"; do
    i=0
    while [ $i -lt 16 ]; do
        curl -s -o /dev/null -H "Authorization: Bearer $t" "$MLREG_URL/api/v1/events?since=$NOW&timeout=8" &
        i=$((i + 1))
    done
done
sleep 2
t0=$(date +%s.%N)
check "with 64 long-polls waiting (16 of each of 4 tokens), other requests are served at once" \
    [ "$(http_status GET /v2/ -H "$READ")" = 200 ]
t1=$(date +%s.%N)
check "... quickly" awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 2) }'
expect_status "a 17th long-poll of one token is 429" 429 GET "/api/v1/events?since=$NOW&timeout=8" -H "$READ"
check "... with Retry-After" [ -n "$(header Retry-After)" ]
expect_status "a 65th long-poll (of another token) is 503" 503 GET "/api/v1/events?since=$NOW&timeout=8" -H "Authorization: Bearer $T_R5"
check "... with Retry-After" [ -n "$(header Retry-After)" ]
expect_status "... but an answer at once (timeout=0) is still served" 200 GET "/api/v1/events?since=$NOW&timeout=0" -H "$READ"
(curl -s -o "$TMP/poll-at-stop" -w '%{http_code}' -H "$READ" "$MLREG_URL/api/v1/events?since=$NOW&timeout=60" >"$TMP/poll-code") 2>/dev/null &
POLLER=$!
sleep 0.5
wait_stop_t0=$(date +%s)
stop_server
wait_stop_t1=$(date +%s)
wait $POLLER
check "stopping the server answers waiting long-polls instead of waiting for them" \
    sh -c "[ \$(($wait_stop_t1 - $wait_stop_t0)) -lt 10 ]"

# ---- a reload changes the webhooks --------------------------------------------------------
start_server --config "$TMP/conf/mlreg.json" || cleanup
NA=$(received "$TMP/a")
NB=$(received "$TMP/b")
push demo 20.0 0.9
wait_received "$TMP/a" $((NA + 1)) >/dev/null
sleep 0.5
check "before the reload webhook b (promote, refuse) gets no push" [ "$(received "$TMP/b")" = "$NB" ]
jq '.webhooks[1].events = ["push"]' "$TMP/conf/mlreg.json" >"$TMP/conf/new.json" &&
    mv "$TMP/conf/new.json" "$TMP/conf/mlreg.json"
kill -HUP "$SERVER_PID"
check "SIGHUP reloads the config, naming webhooks as changed" wait_log "SIGHUP: reloaded .*changed.*webhooks"
push demo 21.0 0.9
check "after the reload webhook b gets pushes" wait_received "$TMP/b" $((NB + 1))
check "... the push of demo@21.0" \
    jqt '.subject == "demo@21.0" and .type == "dev.mlreg.push"' "$(ls "$TMP"/b/*.body | tail -n 1)"
check "webhook a, restarted with it, still gets every event" wait_received "$TMP/a" $((NA + 2))
jq '.webhooks[1].secret_file = "no-such-secret"' "$TMP/conf/mlreg.json" >"$TMP/conf/new.json" &&
    mv "$TMP/conf/new.json" "$TMP/conf/mlreg.json"
kill -HUP "$SERVER_PID"
check "a reload naming a missing secret file is refused" wait_log "SIGHUP: reload of .* refused.*no-such-secret"
push demo 22.0 0.9
check "... and the webhooks in force still deliver (b gets demo@22.0)" wait_received "$TMP/b" $((NB + 2))
curl -s -H "$READ" "$MLREG_URL/metrics" >"$TMP/metrics2.txt"
check "/metrics counts the deliveries of the restarted webhooks" \
    grep -Eq '^mlreg_webhook_delivered_total\{webhook="1"\} [1-9][0-9]*$' "$TMP/metrics2.txt"
stop_server
cleanup
