#!/bin/sh
# test_stage_tags.sh: stage names in GET /v2/<name>/tags/list
# (docs/promotions-api.md, "Stages"): a stage that holds a release answers
# as a tag, so tags/list names it once it is promoted into, merged with the
# tags in lexical order and paged as one list (n/last and the Link header
# across the boundary between tags and stage names); an empty stage is not
# listed; a rollback keeps the stage listed; a tag that is also a stage name
# (pushed before the config had the stage) is listed once; a stage the
# config no longer has is not listed; `skopeo list-tags` shows the stages.
# No tokens: the server runs as the local identity.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

for t in jq skopeo; do
    command -v $t >/dev/null 2>&1 || { not_ok "$t is installed (make deps installs it)"; finish; }
done
W=$TMP/work
mkdir -p "$W"
# tags [QUERY]: the tags of m/clf as one comma-separated line (body and
# headers kept for header()).
tags() {
    st=$(http_status GET "/v2/m/clf/tags/list$1")
    [ "$st" = 200 ] || { echo "HTTP $st: $(head -c 200 "$TMP/body")"; return; }
    jq -r '.tags | join(",")' "$TMP/body"
}
# expect_tags NAME QUERY WANT [LINK]: the page and its Link header ("" none).
expect_tags() {
    got=$(tags "$2")
    link=$(header Link)
    if [ "$got" = "$3" ] && [ "$link" = "${4:-}" ]; then ok "$1"; else
        not_ok "$1 (want '$3' link '${4:-}', got '$got' link '$link')"; fi
}
cat >"$W/config.json" <<EOF
{ "stages": ["dev", "staging", "production"] }
EOF
start_server --config "$W/config.json" || finish

head -c 2048 /dev/urandom >"$W/weights.bin"
printf '{"metrics":{"accuracy":0.9}}\n' >"$W/eval.json"
for v in 1.0 2.0 qa; do
    run "$MLREG" push "m/clf@$v" --weights "$W/weights.bin" --eval-report "$W/eval.json" \
        --git-sha 0123456789abcdef0123456789abcdef01234567
    expect_rc "push m/clf@$v" 0
done
D1=$(curl -s -o /dev/null -D - "$MLREG_URL/v2/m/clf/manifests/1.0" |
    sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p' | tr -d '\r')
D2=$(curl -s -o /dev/null -D - "$MLREG_URL/v2/m/clf/manifests/2.0" |
    sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p' | tr -d '\r')

# ---- before and after promotions -----------------------------------------------------
expect_tags "before any promotion: the version tags only" "" "1.0,2.0,qa"
run "$MLREG" promote m/clf@1.0 --to staging --reason first
expect_rc "promote 1.0 to staging" 0
expect_tags "after a promotion the stage is listed" "" "1.0,2.0,qa,staging"
run "$MLREG" promote m/clf@2.0 --to production --reason first
expect_rc "promote 2.0 to production" 0
expect_tags "both stages listed, merged in lexical order; dev (empty) is not" "" \
    "1.0,2.0,production,qa,staging"
check "the answer names the repository" [ "$(jq -r .name "$TMP/body")" = m/clf ]
expect_status "HEAD tags/list answers" 200 HEAD /v2/m/clf/tags/list
expect_status "a listed stage is pullable" 200 GET /v2/m/clf/manifests/production
check "... the release production holds" [ "$(header Docker-Content-Digest)" = "$D2" ]
expect_status "the empty stage is not (404)" 404 GET /v2/m/clf/manifests/dev

# ---- pages across the boundary between tags and stage names ----------------------------
expect_tags "n=2: the first two tags, Link to the next page" "?n=2" "1.0,2.0" \
    '</v2/m/clf/tags/list?n=2&last=2.0>; rel="next"'
expect_tags "n=2&last=2.0: a stage, then a tag" "?n=2&last=2.0" "production,qa" \
    '</v2/m/clf/tags/list?n=2&last=qa>; rel="next"'
expect_tags "n=2&last=qa: the last stage, no Link" "?n=2&last=qa" "staging"
expect_tags "n=3 ends on a stage name" "?n=3" "1.0,2.0,production" \
    '</v2/m/clf/tags/list?n=3&last=production>; rel="next"'
expect_tags "last=production continues after the stage name" "?n=3&last=production" "qa,staging"
expect_tags "n=5 is the whole list, no Link" "?n=5" "1.0,2.0,production,qa,staging"
expect_tags "last between names: the names after it" "?last=p" "production,qa,staging"
expect_tags "last after every name: empty" "?last=zzz" ""
# a walk following the Link headers sees each name once
walk=""
q="?n=1"
i=0
while [ -n "$q" ] && [ $i -lt 20 ]; do
    page=$(tags "$q")
    walk="$walk${walk:+,}$page"
    q=$(header Link | sed -n 's|^</v2/m/clf/tags/list\(?[^>]*\)>; rel="next"$|\1|p')
    i=$((i + 1))
done
check "a walk of pages of one following Link sees every name once, in order" \
    [ "$walk" = "1.0,2.0,production,qa,staging" ]
expect_status "n=abc is refused" 400 GET '/v2/m/clf/tags/list?n=abc'
expect_status "n=100001 is refused" 400 GET '/v2/m/clf/tags/list?n=100001'
expect_status "a last that is no tag is refused" 400 GET '/v2/m/clf/tags/list?last=a%2Fb'

# ---- a rollback keeps the stage listed ------------------------------------------------
run "$MLREG" promote m/clf@2.0 --to staging --reason second
expect_rc "promote 2.0 to staging" 0
run "$MLREG" rollback m/clf --stage staging
expect_rc "roll staging back" 0
expect_tags "after the rollback staging is still listed once" "" "1.0,2.0,production,qa,staging"
expect_status "staging answers the rolled-back release" 200 GET /v2/m/clf/manifests/staging
check "... 1.0" [ "$(header Docker-Content-Digest)" = "$D1" ]

# ---- skopeo list-tags --------------------------------------------------------------------
HOSTPORT=${MLREG_URL#http://}
if skopeo list-tags --tls-verify=false "docker://$HOSTPORT/m/clf" >"$TMP/sk.json" 2>"$TMP/sk.err"
then
    check "skopeo list-tags shows the stages with the tags" \
        [ "$(jq -r '.Tags | join(",")' "$TMP/sk.json")" = "1.0,2.0,production,qa,staging" ]
else
    not_ok "skopeo list-tags answers ($(head -c 300 "$TMP/sk.err"))"
fi

# ---- another config: a stage named like a tag, a stage dropped -------------------------
stop_server
cat >"$W/config.json" <<EOF
{ "stages": ["qa", "production"] }
EOF
start_server --config "$W/config.json" || finish
expect_tags "staging, no longer a stage, is not listed; qa (a tag) is listed once" "" \
    "1.0,2.0,production,qa"
expect_status "... and staging is no tag to pull any more" 404 GET /v2/m/clf/manifests/staging
run "$MLREG" promote m/clf@1.0 --to qa --reason "qa is a stage now"
expect_rc "promote 1.0 to the new stage qa" 0
expect_tags "qa, both a tag and a stage holding a release, is listed once" "" \
    "1.0,2.0,production,qa"
expect_tags "... and pages once" "?n=3&last=2.0" "production,qa"
expect_status "qa answers what the stage holds" 200 GET /v2/m/clf/manifests/qa
check "... 1.0" [ "$(header Docker-Content-Digest)" = "$D1" ]
stop_server
finish
