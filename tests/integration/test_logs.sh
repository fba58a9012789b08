#!/bin/sh
# test_logs.sh: the access log (docs/operations.md, "Logs"). With
# --log-format json every request is one JSON object on stderr with its
# time, request id, client address, actor, method, route pattern, path,
# status, bytes, duration, and for 401 and 403 the reason; every response
# carries X-Request-Id, the client's when it is safe, a new one otherwise;
# no line holds a query string, a token or an Authorization header. The
# text format keeps its line, with the request id and the same omissions.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

mkdir -p "$TMP/conf" "$TMP/w"
T_READ=$(tok)
T_PUSH=$(tok)
T_WRONG=$(tok)
cat >"$TMP/conf/mlreg.json" <<EOF
{ "tokens": [
    { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] },
    { "name": "pusher", "sha256": "$(hash "$T_PUSH")", "roles": ["push"] } ] }
EOF
A_READ="Authorization: Bearer $T_READ"
A_PUSH="Authorization: Bearer $T_PUSH"
SECRET=querysecret$(tok)

# request_line ID: the JSON log line of request ID (waits for it: a line is
# written when the request completes, maybe just after the client has its answer).
request_line() {
    wait_log "\"request_id\":\"$1\"" && grep -F "\"request_id\":\"$1\"" "$TMP/server.log" | tail -n 1
}
# jfield ID FILTER: FILTER (jq) applied to the log line of request ID.
jfield() { request_line "$1" | jq -r "$2"; }
# is_new_id ID: ID is one the server made (16 hex digits).
is_new_id() { expr "$1" : '[0-9a-f]\{16\}$' >/dev/null; }
# logged ID: the log has a line of request ID.
logged() { request_line "$1" >/dev/null; }
# jq_all FILTER FILE: FILTER (over the slurped lines) is true.
jq_all() { jq -e -s "$1" "$2" >/dev/null; }

# ---- bad flags ------------------------------------------------------------------------------
run "$MLREG" serve --listen 127.0.0.1:0 --data "$TMP/never" --log-format xml
expect_rc "--log-format xml is a usage error" 2
check "... naming the choices" grep -q "text or json" "$TMP/err"
check "... and nothing was created" [ ! -e "$TMP/never" ]

# ---- JSON lines -----------------------------------------------------------------------------
start_server --config "$TMP/conf/mlreg.json" --log-format json || finish

expect_status "GET /v2/ with a token" 200 GET /v2/ -H "$A_READ" -H "X-Request-Id: client-id.42_A"
check "an acceptable X-Request-Id is echoed" [ "$(header X-Request-Id)" = client-id.42_A ]
check "the log line has the client's id, the actor and the route" \
    [ "$(jfield client-id.42_A '[.actor, .method, .route, .path, .status] | @tsv')" = \
        "$(printf 'reader\tGET\t/v2/\t/v2/\t200')" ]

expect_status "GET /healthz without an id" 200 GET /healthz
ID=$(header X-Request-Id)
check "a response without a client id gets 16 hex digits ($ID)" is_new_id "$ID"
check "... and the log line has the same id, the actor '-' and the remote address" \
    [ "$(jfield "$ID" '[.actor, .remote] | @tsv')" = "$(printf -- '-\t127.0.0.1')" ]
expect_status "a second request" 200 GET /healthz
check "... gets another id" [ "$(header X-Request-Id)" != "$ID" ]

# hostile ids: replaced, never logged, never echoed
LONG=$(printf '%0200d' 0)
CTRL=$(printf 'ab\001cd')
for bad in "has space" "$LONG" "$CTRL" 'quote"d' "semi;colon" "a/b"; do
    expect_status "GET /healthz with X-Request-Id '$(printf '%s' "$bad" | head -c 20 | tr -c '[:print:]' '?')'" \
        200 GET /healthz -H "X-Request-Id: $bad"
    got=$(header X-Request-Id)
    check "... is replaced by a new id ($got)" is_new_id "$got"
    check "... which the log has" logged "$got"
done
check "no hostile id reached the log" \
    sh -c "! grep -qF -e 'has space' -e '$LONG' -e 'semi;colon' -e 'quote' -e 'a/b' '$TMP/server.log'"
check "no control character reached the log" sh -c "! LC_ALL=C grep -q '[[:cntrl:]]' '$TMP/server.log'"
# 64 safe characters are kept, 65 are not
ID64=$(printf '%064d' 7)
expect_status "a 64-character id" 200 GET /healthz -H "X-Request-Id: $ID64"
check "... is kept" [ "$(header X-Request-Id)" = "$ID64" ]
expect_status "a 65-character id" 200 GET /healthz -H "X-Request-Id: x$ID64"
check "... is replaced" [ "$(header X-Request-Id)" != "x$ID64" ]

# a query string is never logged (presigned URLs, upload state, tokens in links)
printf 'weights' >"$TMP/w/w"
D=sha256:$(sha256sum "$TMP/w/w" | cut -c1-64)
st=$(curl -s -o /dev/null -D "$TMP/headers" -w '%{http_code}' -X POST -H "$A_PUSH" \
    --data-binary @"$TMP/w/w" "$MLREG_URL/v2/demo/blobs/uploads/?digest=$D&token=$SECRET")
check "an upload with ?digest=...&token=... is stored (201)" [ "$st" = 201 ]
ID=$(header X-Request-Id)
check "... its line has the route pattern, the path without the query, the bytes" \
    [ "$(jfield "$ID" '[.actor, .route, .path, .status, .bytes_in] | @tsv')" = \
        "$(printf 'pusher\t/v2/{name}/blobs/uploads/\t/v2/demo/blobs/uploads/\t201\t7')" ]
check "... and the query appears nowhere in the log" \
    sh -c "! grep -qF -e '$SECRET' -e 'digest=' -e '?' '$TMP/server.log'"
expect_status "a manifest GET with a query" 404 GET "/v2/demo/manifests/v1?x=$SECRET" -H "$A_READ"
check "... logs the manifest route pattern" \
    [ "$(jfield "$(header X-Request-Id)" .route)" = "/v2/{name}/manifests/{reference}" ]

# 401 and 403 say why, never with the token
expect_status "a wrong token is 401" 401 GET /api/v1/models -H "Authorization: Bearer $T_WRONG"
check "... the line gives the reason" \
    [ "$(jfield "$(header X-Request-Id)" '[.status, .actor, .reason] | @tsv')" = \
        "$(printf '401\t-\tinvalid token')" ]
BASIC=$(printf 'user:%s' "$T_WRONG" | base64 | tr -d '\n')
expect_status "a wrong token in Basic credentials is 401" 401 GET /v2/ -H "Authorization: Basic $BASIC"
check "... with the reason" [ "$(jfield "$(header X-Request-Id)" .reason)" = "invalid token" ]
expect_status "no token is 401" 401 GET /api/v1/models
check "... the reason says a token is needed" \
    jfield "$(header X-Request-Id)" .reason | grep -q "send a bearer token"
st=$(curl -s -o /dev/null -D "$TMP/headers" -w '%{http_code}' -X POST -H "$A_READ" \
    --data-binary @"$TMP/w/w" "$MLREG_URL/v2/demo/blobs/uploads/?digest=$D")
check "the reader uploading is 403" [ "$st" = 403 ]
check "... the line names the actor and the role it lacks" \
    [ "$(jfield "$(header X-Request-Id)" '[.status, .actor, (.reason | test("lacks role push"))] | @tsv')" = \
        "$(printf '403\treader\ttrue')" ]
check "no token, and no Basic credentials, appear in the log" \
    sh -c "! grep -qF -e '$T_WRONG' -e '$T_READ' -e '$T_PUSH' -e '$BASIC' -e 'Bearer' -e 'Authorization' '$TMP/server.log'"
expect_status "a 200 line has no reason" 200 GET /v2/ -H "$A_READ"
check "... (the member is absent)" [ "$(jfield "$(header X-Request-Id)" 'has("reason")')" = false ]

# every request line is JSON with every field
stop_server
grep '^{' "$TMP/server.log" >"$TMP/json.log"
n=$(wc -l <"$TMP/json.log")
check "the server wrote JSON lines ($n)" [ "$n" -ge 15 ]
check "every JSON line parses" jq_all 'length > 0' "$TMP/json.log"
check "every line has every field, typed" jq_all 'all(.[];
    (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")) and
    (.request_id | type == "string") and (.remote | type == "string") and
    (.actor | type == "string") and (.method | type == "string") and
    (has("route")) and (.path | startswith("/")) and (.status | type == "number") and
    (.bytes_in | type == "number") and (.bytes_out | type == "number") and
    (.duration_ms | type == "number" and . >= 0))' "$TMP/json.log"
check "every 401 and 403 line has a reason" \
    jq_all 'all(.[] | select(.status == 401 or .status == 403); .reason | length > 0)' "$TMP/json.log"
check "no request was logged in the text format" \
    sh -c "! grep -qE '^mlreg: (GET|HEAD|POST|PUT|PATCH|DELETE) ' '$TMP/server.log'"

# ---- the text format ------------------------------------------------------------------------
mv "$TMP/server.log" "$TMP/json-server.log"
start_server --config "$TMP/conf/mlreg.json" || finish
expect_status "text: GET /v2/" 200 GET /v2/ -H "$A_READ" -H "X-Request-Id: text-1"
check "text: the line keeps its shape and adds the id" \
    wait_log '^mlreg: GET /v2/ 200 in=0 out=[0-9]* [0-9.]*ms id=text-1$'
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$A_PUSH" -H "X-Request-Id: text-2" \
    --data-binary @"$TMP/w/w" "$MLREG_URL/v2/demo/blobs/uploads/?digest=$D&token=$SECRET")
check "text: an upload with a query" [ "$st" = 201 ]
check "text: is logged without the query" \
    wait_log '^mlreg: POST /v2/demo/blobs/uploads/ 201 in=7 .* id=text-2$'
expect_status "text: a wrong token" 401 GET /v2/ -H "Authorization: Bearer $T_WRONG" \
    -H "X-Request-Id: text-3"
check "text: the 401 line says why" wait_log '^mlreg: GET /v2/ 401 .* id=text-3 refused: invalid token$'
expect_status "text: a hostile id" 200 GET /v2/ -H "$A_READ" -H "X-Request-Id: a b"
check "text: ... is replaced" is_new_id "$(header X-Request-Id)"
stop_server
check "text: no query, token or hostile id in the log" \
    sh -c "! grep -qF -e '$SECRET' -e 'digest=' -e '$T_WRONG' -e '$T_READ' -e '$T_PUSH' -e 'id=a b' '$TMP/server.log'"
check "text: no JSON request lines" sh -c "! grep -q '^{' '$TMP/server.log'"

finish
