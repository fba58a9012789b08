#!/bin/sh
# test_catalog.sh: GET /v2/_catalog (docs/promotions-api.md, "OCI
# listings") on a server with tokens, listening on every address so it is
# asked from off loopback too: the repositories in lexical order, paged with
# n/last and Link like tags/list (a walk following Link sees each once); a
# read role sees them all, a role limited to prefixes only the names under
# them (whole name components: not visionary, not vision-x); no token or a
# wrong one is 401, a token without read 403; a bad n or last is a 400
# naming the parameter, and the server keeps answering.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

command -v jq >/dev/null 2>&1 || { not_ok "jq is installed"; finish; }
W=$TMP/work
mkdir -p "$W"
T_PUSH=$(tok)
T_READ=$(tok)
T_VISION=$(tok)
T_TWO=$(tok)
T_ADMIN=$(tok)
cat >"$W/config.json" <<EOF
{ "tokens": [
    { "name": "pusher", "sha256": "$(hash "$T_PUSH")", "roles": ["push", "promote:staging"] },
    { "name": "reader", "sha256": "$(hash "$T_READ")", "roles": ["read"] },
    { "name": "vision", "sha256": "$(hash "$T_VISION")", "roles": ["read@vision", "push"] },
    { "name": "two", "sha256": "$(hash "$T_TWO")", "roles": ["read@vision/det", "read@nlp"] },
    { "name": "root", "sha256": "$(hash "$T_ADMIN")", "roles": ["admin"] } ] }
EOF
A_PUSH="Authorization: Bearer $T_PUSH"
A_READ="Authorization: Bearer $T_READ"
A_VISION="Authorization: Bearer $T_VISION"
A_TWO="Authorization: Bearer $T_TWO"
A_ADMIN="Authorization: Bearer $T_ADMIN"

# The server listens on every address (tokens make that allowed); the
# tests ask through this host's first non-loopback IPv4 address when it has
# one, so "off loopback" is what is exercised, else through loopback.
rm -f "$TMP/ready"
"$MLREG" serve --config "$W/config.json" --listen 0.0.0.0:0 --insecure-http --data "$TMP/data" \
    --ready-file "$TMP/ready" 2>>"$TMP/server.log" &
SERVER_PID=$!
i=0
while [ ! -s "$TMP/ready" ] && [ $i -lt 200 ] && kill -0 "$SERVER_PID" 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
[ -s "$TMP/ready" ] || { not_ok "server starts ($(cat "$TMP/server.log"))"; finish; }
PORT=$(sed 's|.*:||' "$TMP/ready")
HOST=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' |
    grep -v '^127\.' | head -n 1)
if [ -n "$HOST" ]; then ok "asking from off loopback through $HOST"; else
    HOST=127.0.0.1; ok "no non-loopback address: asking through loopback"; fi
# the pushes go through loopback: the CLI sends a token over http:// only there
export MLREG_URL="http://127.0.0.1:$PORT"
export MLREG_TOKEN="$T_ADMIN"
head -c 1024 /dev/urandom >"$W/weights.bin"
for m in vision/det nlp vision visionary vision-x a/b/c; do
    run "$MLREG" push "$m@1.0" --weights "$W/weights.bin" --git-sha 0123456789abcdef0123456789abcdef01234567
    expect_rc "push $m@1.0" 0
done
unset MLREG_TOKEN
MLREG_URL="http://$HOST:$PORT"
ALL="a/b/c,nlp,vision,vision-x,vision/det,visionary"

# catalog AUTH [QUERY]: the names of a page, comma-separated (body and
# headers kept for header()); "HTTP n" when not 200.
catalog() {
    st=$(http_status GET "/v2/_catalog$2" -H "$1")
    [ "$st" = 200 ] || { echo "HTTP $st: $(head -c 200 "$TMP/body")"; return; }
    jq -r '.repositories | join(",")' "$TMP/body"
}
# expect_catalog NAME AUTH QUERY WANT [LINK]
expect_catalog() {
    got=$(catalog "$2" "$3")
    link=$(header Link)
    if [ "$got" = "$4" ] && [ "$link" = "${5:-}" ]; then ok "$1"; else
        not_ok "$1 (want '$4' link '${5:-}', got '$got' link '$link')"; fi
}
# walk AUTH N: follows Link from ?n=N to the end; the names seen, comma-separated.
walk() {
    seen=""
    q="?n=$2"
    i=0
    while [ -n "$q" ] && [ $i -lt 50 ]; do
        page=$(catalog "$1" "$q")
        seen="$seen${seen:+${page:+,}}$page"
        q=$(header Link | sed -n 's|^</v2/_catalog\(?[^>]*\)>; rel="next"$|\1|p')
        i=$((i + 1))
    done
    echo "$seen"
}
err_code() { jq -r '.errors[0].code' "$TMP/body"; }
err_msg() { jq -r '.errors[0].message' "$TMP/body"; }

# ---- who may ask ---------------------------------------------------------------------
expect_status "no token: 401" 401 GET /v2/_catalog
check "... UNAUTHORIZED with a Basic challenge" \
    [ "$(err_code)" = UNAUTHORIZED ] && [ "$(header WWW-Authenticate)" = 'Basic realm="mlreg"' ]
expect_status "a wrong token: 401" 401 GET /v2/_catalog -H "Authorization: Bearer x$T_READ"
expect_status "a malformed Authorization header: 401" 401 GET /v2/_catalog \
    -H "Authorization: Bearer"
expect_status "a token without read (push, promote): 403" 403 GET /v2/_catalog -H "$A_PUSH"
check "... DENIED, saying which role is missing" \
    [ "$(err_code)" = DENIED ] && err_msg | grep -q "lacks role read"
expect_status "a POST is 405" 405 POST /v2/_catalog -H "$A_READ"
expect_status "a DELETE is 405" 405 DELETE /v2/_catalog -H "$A_ADMIN"

# ---- read: everything, paged ----------------------------------------------------------
expect_catalog "read lists every repository in lexical order, no Link" "$A_READ" "" "$ALL"
expect_catalog "admin lists them all too" "$A_ADMIN" "" "$ALL"
expect_status "HEAD answers" 200 HEAD /v2/_catalog -H "$A_READ"
check "... with a JSON Content-Type" sh -c "grep -qi '^content-type: application/json' '$TMP/headers'"
expect_catalog "n=2: the first page and a Link to the next" "$A_READ" "?n=2" "a/b/c,nlp" \
    '</v2/_catalog?n=2&last=nlp>; rel="next"'
expect_catalog "n=2&last=nlp: the next page" "$A_READ" "?n=2&last=nlp" "vision,vision-x" \
    '</v2/_catalog?n=2&last=vision-x>; rel="next"'
expect_catalog "the last page has no Link" "$A_READ" "?n=2&last=vision-x" "vision/det,visionary"
expect_catalog "n=6 is everything, no Link" "$A_READ" "?n=6" "$ALL"
expect_catalog "n=0: an empty page" "$A_READ" "?n=0" ""
expect_catalog "last need not be a repository" "$A_READ" "?last=o" "vision,vision-x,vision/det,visionary"
expect_catalog "last after every name: empty" "$A_READ" "?last=zzz" ""
expect_catalog "an empty last is no last" "$A_READ" "?last=" "$ALL"
check "a walk with pages of 1 following Link sees each repository once" [ "$(walk "$A_READ" 1)" = "$ALL" ]
check "... and with pages of 4" [ "$(walk "$A_READ" 4)" = "$ALL" ]

# ---- prefixes -----------------------------------------------------------------------------
expect_catalog "read@vision sees vision and vision/det, not visionary or vision-x" "$A_VISION" "" \
    "vision,vision/det"
expect_catalog "... and pages what it sees" "$A_VISION" "?n=1" "vision" \
    '</v2/_catalog?n=1&last=vision>; rel="next"'
expect_catalog "... to the end" "$A_VISION" "?n=1&last=vision" "vision/det"
expect_catalog "two prefixes: the names under either" "$A_TWO" "" "nlp,vision/det"
check "... a walk with pages of 1 sees each once" [ "$(walk "$A_TWO" 1)" = "nlp,vision/det" ]
expect_status "a prefix token still cannot read outside it" 403 GET /v2/visionary/tags/list \
    -H "$A_VISION"

# ---- hostile n and last --------------------------------------------------------------------
for q in 'n=abc' 'n=-1' 'n=1.5' 'n=' 'n=100001' 'n=99999999999999999999999' 'n=0x10' 'n=%201'; do
    expect_status "?$q is 400" 400 GET "/v2/_catalog?$q" -H "$A_READ"
    check "... naming n" sh -c "jq -r '.errors[0].message' '$TMP/body' | grep -q '^n must be'"
done
expect_catalog "n=100000 (the most) is accepted" "$A_READ" "?n=100000" "$ALL"
LONG=$(head -c 5000 /dev/zero | tr '\0' a)
for q in 'last=Bad%20Name' 'last=a%2F' 'last=..%2Fetc' 'last=a%0Ab' 'last=-x' \
    "last=$LONG" 'last=%3Cscript%3E'; do
    expect_status "?$(echo "$q" | cut -c1-40) is 400" 400 GET "/v2/_catalog?$q" -H "$A_READ"
    check "... naming last" sh -c "jq -r '.errors[0].message' '$TMP/body' | grep -q 'last= must be'"
done
# the query value ends at a NUL (libmicrohttpd), as for tags/list: an empty last
expect_catalog "?last=%00 is an empty last: the whole list" "$A_READ" "?last=%00" "$ALL"
check "the server still answers" [ "$(catalog "$A_READ" "")" = "$ALL" ]
check "no token reached the log" sh -c "! grep -qF -e '$T_READ' -e '$T_PUSH' -e '$T_TWO' '$TMP/server.log'"
stop_server
finish
