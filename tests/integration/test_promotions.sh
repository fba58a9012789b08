#!/bin/sh
# test_promotions.sh: stages, gates and promotions enforced by the real server
# (docs/promotions-api.md), driven with curl and the stock minisign: a
# release failing the staging gates is refused (409) and the stage does not
# move; one that passes moves; production with max_drop, signed,
# previous_stage and approvals (the pusher's own approval does not count);
# GET /v2/<name>/manifests/<stage>; resolve ?at=; rollback; image bindings;
# two promotions racing on one stage; hostile requests (unknown version,
# unknown stage, no eval report, already in stage, PUT to a stage tag) each a
# clear error with nothing moved; the example gate configs of conf/ start,
# and a gate config with a typo stops the start naming the key.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

command -v minisign >/dev/null 2>&1 || { not_ok "minisign is installed"; finish; }
W=$TMP/work
K=$TMP/conf/keys
mkdir -p "$W" "$K"
jqt() { jq -e "$@" >/dev/null; }
err_code() { jq -r '.errors[0].code' "$TMP/body"; }

# ---- config: the example gate configs start, typos stop the start ------------------
# start_cfg CONFIG: starts a throw-away server; 0 when it came up and answered.
start_cfg() {
    rm -f "$TMP/ex.ready"
    "$MLREG" serve --config "$1" --listen 127.0.0.1:0 --data "$TMP/exdata" \
        --ready-file "$TMP/ex.ready" 2>"$TMP/ex.log" &
    EXPID=$!
    i=0
    while [ ! -s "$TMP/ex.ready" ] && [ $i -lt 100 ] && kill -0 $EXPID 2>/dev/null; do
        sleep 0.05
        i=$((i + 1))
    done
    up=1
    [ -s "$TMP/ex.ready" ] && curl -s "$(cat "$TMP/ex.ready")/api/v1/models/demo/stages" |
        jq -e '.stages | map(.stage) == ["dev","staging","production"]' >/dev/null && up=0
    kill -TERM $EXPID 2>/dev/null
    wait $EXPID
    return $up
}
for ex in classifier rag dp; do
    if start_cfg "$MLREG_ROOT/conf/gates.$ex.json"; then ok "conf/gates.$ex.json starts the server"
    else not_ok "conf/gates.$ex.json starts the server ($(cat "$TMP/ex.log"))"; fi
done
refuse_start() { # NAME CONFIG_JSON NEEDLE
    printf '%s\n' "$2" >"$TMP/bad.json"
    timeout 10 "$MLREG" serve --config "$TMP/bad.json" --listen 127.0.0.1:0 \
        --data "$TMP/refused" >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -qF "$3" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (exit $rc: $(head -c 300 "$TMP/err"))"; fi
}
refuse_start "a gate rule with a typo stops the start naming the key" \
    '{"gates":{"production":[{"metric":"accuracy","min":0.8},{"metric":"f1","mni":0.5}]}}' \
    "config key 'gates.production[1].mni': unknown rule key"
refuse_start "gates for an unknown stage stop the start" \
    '{"gates":{"prod":[{"metric":"accuracy","min":0.8}]}}' "'gates.prod'"
refuse_start "previous_stage on the first stage stops the start" \
    '{"gates":{"dev":[{"require":"previous_stage"}]}}' "previous_stage on the first stage"
refuse_start "a per-model gate typo names the model key" \
    '{"models":{"rag":{"gates":{"staging":[{"metric":"f1","maxdrop":1}]}}}}' \
    "config key 'models.rag.gates.staging[0].maxdrop'"
refuse_start "a token role naming an unknown stage stops the start" \
    "{\"tokens\":[{\"name\":\"a\",\"sha256\":\"$(printf x | sha256sum | cut -c1-64)\",\"roles\":[\"promote:prod\"]}]}" \
    "config key 'tokens[0].roles[0]'"
check "refused starts created no data dir" [ ! -e "$TMP/refused" ]

# ---- tokens, a trusted key, the gates --------------------------------------------------
T_CI=$(tok)
T_REL=$(tok)
T_ALICE=$(tok)
minisign -G -W -p "$K/T.pub" -s "$K/T.key" >/dev/null 2>&1 || not_ok "minisign -G"
cat >"$TMP/conf/mlreg.json" <<EOF
{
  "tokens": [
    { "name": "ci", "sha256": "$(hash "$T_CI")", "roles": ["read", "push", "approve:production"] },
    { "name": "release-mgr", "sha256": "$(hash "$T_REL")",
      "roles": ["read", "promote:dev", "promote:staging", "promote:production"] },
    { "name": "alice", "sha256": "$(hash "$T_ALICE")", "roles": ["read", "approve:production"] }
  ],
  "gates": {
    "staging":    [ { "metric": "accuracy", "min": 0.85 } ],
    "production": [ { "metric": "accuracy", "max_drop": 0.01 },
                    { "require": "signed", "min": 1 },
                    { "require": "previous_stage" },
                    { "require": "approvals", "min": 1 } ]
  },
  "trusted_keys": [ { "name": "release-bot", "file": "keys/T.pub", "role": "release" } ]
}
EOF
start_server --config "$TMP/conf/mlreg.json" || finish
CI="Authorization: Bearer $T_CI"
REL="Authorization: Bearer $T_REL"
ALICE="Authorization: Bearer $T_ALICE"

# ---- push releases with curl (monolithic blob uploads, manifest PUT) ----------------------
blob() { # FILE: uploads it into demo with the ci token
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$CI" --data-binary @"$1" \
        "$MLREG_URL/v2/demo/blobs/uploads/?digest=sha256:$(sha256_of "$1")")
    [ "$code" = 201 ] || not_ok "upload $1 (got $code)"
}
push() { # VERSION ACCURACY|none -> $W/m$VERSION.json, D_<version> digest
    printf '{}' >"$W/cfg"
    printf 'weights of %s' "$1" >"$W/w$1"
    blob "$W/cfg"
    blob "$W/w$1"
    layers=$(jq -cn --arg w "sha256:$(sha256_of "$W/w$1")" --argjson ws "$(wc -c <"$W/w$1")" \
        '[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:$ws,
           annotations:{"org.opencontainers.image.title":"w.bin","org.mlreg.kind":"weights"}}]')
    if [ "$2" != none ]; then
        printf '{"dataset":"val-v1","metrics":{"accuracy":%s}}' "$2" >"$W/e$1"
        blob "$W/e$1"
        layers=$(echo "$layers" | jq -c --arg e "sha256:$(sha256_of "$W/e$1")" \
            --argjson es "$(wc -c <"$W/e$1")" '. + [{mediaType:"application/vnd.mlreg.eval-report.v1+json",
              digest:$e, size:$es, annotations:{"org.opencontainers.image.title":"eval.json",
              "org.mlreg.kind":"eval-report"}}]')
    fi
    jq -cn --argjson l "$layers" --arg v "$1" '{schemaVersion:2,
        mediaType:"application/vnd.oci.image.manifest.v1+json",
        artifactType:"application/vnd.mlreg.release.v1+json",
        config:{mediaType:"application/vnd.oci.empty.v1+json",
                digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
        layers:$l, annotations:{"org.mlreg.model":"demo","org.mlreg.version":$v,
                                "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$W/m$1.json"
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H "$CI" \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @"$W/m$1.json" "$MLREG_URL/v2/demo/manifests/$1")
    [ "$code" = 201 ] || not_ok "push demo@$1 (got $code: $(head -c 200 "$TMP/body"))"
}
push 1.0 0.90
push 2.0 0.80
push 3.0 0.905
push 4.0 none
push 5.0 0.95
push 6.0 0.96
check "the release record names its pusher" sh -c \
    "curl -s -H '$CI' $MLREG_URL/api/v1/models/demo/versions/1.0 | jq -e '.pushed_by == \"ci\"' >/dev/null"

# promote NAME WANT VERSION STAGE [extra JSON fields] as release-mgr
promote() {
    jq -cn --arg v "$3" --arg s "$4" "{version:\$v, to:\$s, reason:\"test\"} + (${5:-{\}})" >"$TMP/req.json"
    expect_status "$1" "$2" POST /api/v1/models/demo/promotions -H "$REL" \
        --data-binary @"$TMP/req.json"
}
holds() { # STAGE -> version or "empty"
    curl -s -H "$REL" "$MLREG_URL/api/v1/models/demo/stages/$1" | jq -r '.version // "empty"'
}
stages_json() { curl -s -H "$REL" "$MLREG_URL/api/v1/models/demo/stages"; }
n_promotions() { curl -s -H "$REL" "$MLREG_URL/api/v1/models/demo/promotions" | jq '.promotions | length'; }

T0=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
# ---- staging: refused, then passed ---------------------------------------------------------
promote "a release failing the staging gates is refused with 409" 409 2.0 staging
check "the refusal is GATE_FAILED with the rule table" jqt '.errors[0].code == "GATE_FAILED"
    and .passed == false and .moved == false and .rules[0].rule == "accuracy >= 0.85"
    and .rules[0].candidate == 0.8 and .rules[0].passed == false' "$TMP/body"
check "the refused promotion did not move staging" [ "$(holds staging)" = empty ]
expect_status "an empty stage is 404 STAGE_EMPTY" 404 GET /api/v1/models/demo/stages/staging -H "$REL"
check "... with the STAGE_EMPTY code" [ "$(err_code)" = STAGE_EMPTY ]
check "the refusal is recorded in the promotions log" sh -c \
    "curl -s -H '$REL' $MLREG_URL/api/v1/models/demo/promotions | jq -e '.promotions[0].passed == false and .promotions[0].actor == \"release-mgr\" and (.promotions[0].rules | length) == 1' >/dev/null"
promote "a release passing the staging gates is promoted" 200 1.0 staging
check "the answer says passed and moved" jqt '.passed and .moved and .baseline == null
    and .promotion.actor == "release-mgr" and .promotion.reason == "test"' "$TMP/body"
check "staging now holds 1.0" [ "$(holds staging)" = 1.0 ]
promote "a dry run that passes answers 200" 200 3.0 staging '{dry_run:true}'
check "the dry run shows the baseline and moved nothing" jqt '.dry_run and .passed and
    (.moved | not) and .baseline.version == "1.0" and .rules[0].baseline_version == "1.0"' "$TMP/body"
check "staging still holds 1.0 after the dry run" [ "$(holds staging)" = 1.0 ]

# ---- hostile promotions: a clear error each, nothing moved ---------------------------------
BEFORE=$(stages_json)
NP=$(n_promotions)
promote "promoting an unknown version is 404" 404 9.9 staging
check "... MANIFEST_UNKNOWN" [ "$(err_code)" = MANIFEST_UNKNOWN ]
promote "promoting to an unknown stage is 400" 400 1.0 prod
check "... STAGE_UNKNOWN" [ "$(err_code)" = STAGE_UNKNOWN ]
promote "promoting into the stage a release already holds is 409" 409 1.0 staging
check "... DENIED, already in stage" sh -c "[ \"\$(jq -r '.errors[0].code' $TMP/body)\" = DENIED ] && jq -r '.errors[0].message' $TMP/body | grep -q 'already in stage'"
expect_status "a promotion body without version is 400" 400 POST /api/v1/models/demo/promotions \
    -H "$REL" --data-binary '{"to":"staging"}'
expect_status "a malformed promotion body is 400" 400 POST /api/v1/models/demo/promotions \
    -H "$REL" --data-binary '{"version":'
check "hostile requests moved no stage" [ "$(stages_json)" = "$BEFORE" ]
check "hostile requests recorded no promotion" [ "$(n_promotions)" = "$NP" ]
promote "a release without eval report fails its metric rule (409)" 409 4.0 staging
check "... the table says release has no eval report" \
    jqt '.rules[0].detail == "release has no eval report" and .rules[0].passed == false' "$TMP/body"
check "... and nothing moved" [ "$(stages_json)" = "$BEFORE" ]

# ---- production: max_drop, signed, previous_stage, approvals -----------------------------
promote "production without signature and approvals is refused" 409 1.0 production
check "signed and approvals fail, previous_stage and max_drop pass" jqt '
    (.rules | map({(.type): .passed}) | add) == {"max_drop":true,"signed":false,
     "previous_stage":true,"approvals":false} and .rules[0].detail == "no baseline"' "$TMP/body"
D1=sha256:$(sha256_of "$W/m1.0.json")
sign_attach() { # VERSION DIGEST
    rm -f "$W/m$1.json.minisig"
    minisign -S -s "$K/T.key" -m "$W/m$1.json" \
        -t "mlreg release model=demo version=$1 digest=$2" >/dev/null 2>&1 || not_ok "minisign -S $1"
    jq -n --rawfile s "$W/m$1.json.minisig" --rawfile p "$K/T.pub" \
        '{signature: $s, public_key: $p}' >"$TMP/req.json"
    expect_status "attach the minisign signature of $1" 201 POST \
        "/api/v1/models/demo/versions/$1/signatures" -H "$CI" --data-binary @"$TMP/req.json"
}
sign_attach 1.0 "$D1"
approve() { # NAME WANT VERSION AUTH_HEADER
    expect_status "$1" "$2" POST "/api/v1/models/demo/versions/$3/approvals" -H "$4" \
        --data-binary '{"stage":"production","comment":"ok"}'
}
approve "the pusher's own approval is refused (409: it would never count)" 409 1.0 "$CI"
check "... with DENIED and the reason" jqt '.errors[0].code == "DENIED" and
    (.errors[0].message | contains("you pushed demo@1.0; an approval must come from someone else"))' \
    "$TMP/body"
check "... and nothing is recorded" sh -c \
    "[ \"\$(curl -s -H '$CI' $MLREG_URL/api/v1/models/demo/versions/1.0/approvals | jq '.approvals | length')\" = 0 ]"
promote "without another's approval production is refused" 409 1.0 production
check "... the table says approvals fail" jqt '.rules[] | select(.type == "approvals") |
    .passed == false and .detail == "approvals: 0 of 1"' "$TMP/body"
check "... signed passes now" jqt '.rules[] | select(.type == "signed") | .passed' "$TMP/body"
approve "another approver approves" 201 1.0 "$ALICE"
approve "approving again answers 200" 200 1.0 "$ALICE"
check "the approval names its approver" jqt '.approver == "alice" and .stage == "production"
    and .digest == "'"$D1"'"' "$TMP/body"
promote "with a trusted signature and an approval production moves" 200 1.0 production
check "production now holds 1.0" [ "$(holds production)" = 1.0 ]
sleep 0.1
T1=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 0.1

# 3.0: through staging, signed, approved: replaces 1.0 in production
promote "3.0 passes staging" 200 3.0 staging
D3=sha256:$(sha256_of "$W/m3.0.json")
sign_attach 3.0 "$D3"
approve "alice approves 3.0" 201 3.0 "$ALICE"
promote "3.0 replaces 1.0 in production" 200 3.0 production
check "the baseline was 1.0 and the delta is candidate minus baseline" jqt '.baseline.version == "1.0"
    and (.rules[0].delta - 0.005 | fabs) < 1e-9' "$TMP/body"
expect_status "GET /v2/demo/manifests/production answers" 200 GET /v2/demo/manifests/production -H "$CI"
check "... with the production release's bytes" cmp -s "$TMP/body" "$W/m3.0.json"
check "... and its digest" [ "$(header Docker-Content-Digest)" = "$D3" ]
expect_status "HEAD of a stage tag answers" 200 HEAD /v2/demo/manifests/staging -H "$CI"
check "... with the staging release's digest" [ "$(header Docker-Content-Digest)" = "$D3" ]
expect_status "an empty stage tag is 404 on /v2" 404 GET /v2/demo/manifests/dev -H "$CI"
check "... MANIFEST_UNKNOWN" [ "$(err_code)" = MANIFEST_UNKNOWN ]
expect_status "a manifest PUT to a stage tag is refused" 409 PUT /v2/demo/manifests/production \
    -H "$CI" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$W/m2.0.json"
check "... with DENIED" [ "$(err_code)" = DENIED ]
check "... and production still holds 3.0" [ "$(holds production)" = 3.0 ]
check "tags/list names the stages holding a release once, not the empty dev" sh -c \
    "curl -s -H '$CI' $MLREG_URL/v2/demo/tags/list | jq -e '[.tags[] | select(. == \"production\" or . == \"staging\" or . == \"dev\")] == [\"production\",\"staging\"]' >/dev/null"

# ---- resolve at a time -------------------------------------------------------------------
at() { curl -s -o "$TMP/body" -w '%{http_code}' -H "$REL" "$MLREG_URL/api/v1/models/demo/stages/production?at=$1"; }
check "resolve ?at= before the first promotion is 404" [ "$(at "$T0")" = 404 ]
check "resolve ?at= T1 returns what held production then (1.0)" sh -c \
    "[ \"\$(curl -s -H '$REL' '$MLREG_URL/api/v1/models/demo/stages/production?at=$T1' | jq -r .version)\" = 1.0 ]"
check "resolve now returns 3.0" [ "$(holds production)" = 3.0 ]
check "a malformed ?at= is 400" [ "$(at yesterday)" = 400 ]

# ---- image bindings ------------------------------------------------------------------------
# 3.0 holds production and has held staging: binding takes the promote roles
expect_status "the release manager binds an image to 3.0" 201 POST \
    /api/v1/models/demo/versions/3.0/images -H "$REL" \
    --data-binary '{"image":"ghcr.io/acme/demo:3.0-abcdef1"}'
expect_status "binding the same image again is 200" 200 POST /api/v1/models/demo/versions/3.0/images \
    -H "$REL" --data-binary '{"image":"ghcr.io/acme/demo:3.0-abcdef1"}'
expect_status "the push token cannot bind to what production holds (403)" 403 POST \
    /api/v1/models/demo/versions/3.0/images -H "$CI" --data-binary '{"image":"ghcr.io/acme/demo:x"}'
expect_status "an image tag outside the OCI grammar is 400" 400 POST \
    /api/v1/models/demo/versions/3.0/images -H "$REL" --data-binary '{"image":"ghcr.io/acme/demo:-bad"}'
check "the production stage shows its image" sh -c \
    "[ \"\$(curl -s -H '$REL' $MLREG_URL/api/v1/models/demo/stages/production | jq -r .image)\" = ghcr.io/acme/demo:3.0-abcdef1 ]"

# ---- rollback -----------------------------------------------------------------------------
expect_status "rollback of production answers 200" 200 POST \
    /api/v1/models/demo/stages/production/rollback -H "$REL" --data-binary '{"reason":"bad canary"}'
check "the rollback restored 1.0" jqt '.version == "1.0" and .previous_version == "3.0"' "$TMP/body"
check "production holds 1.0 again" [ "$(holds production)" = 1.0 ]
expect_status "rollback to a version that never held the stage is 409" 409 POST \
    /api/v1/models/demo/stages/production/rollback -H "$REL" --data-binary '{"to_version":"2.0"}'
check "... and nothing moved" [ "$(holds production)" = 1.0 ]
expect_status "rollback of an empty stage is 404" 404 POST /api/v1/models/demo/stages/dev/rollback \
    -H "$REL" --data-binary '{}'
check "the history records the rollback" sh -c \
    "curl -s -H '$REL' $MLREG_URL/api/v1/models/demo/stages/production/history | jq -e '.history | map(.action) == [\"promote\",\"promote\",\"rollback\"]' >/dev/null"

# ---- two promotions racing on one stage ------------------------------------------------------
NP=$(n_promotions)
for v in 5.0 6.0; do
    jq -cn --arg v "$v" '{version:$v, to:"staging"}' >"$TMP/race$v.json"
    curl -s -o "$TMP/race$v.out" -w '%{http_code}' -X POST -H "$REL" \
        --data-binary @"$TMP/race$v.json" "$MLREG_URL/api/v1/models/demo/promotions" >"$TMP/race$v.code" &
done
wait_races() { for v in 5.0 6.0; do while [ ! -s "$TMP/race$v.code" ]; do sleep 0.05; done; done; }
wait_races
check "both racing promotions answered 200" sh -c "[ \"\$(cat $TMP/race5.0.code $TMP/race6.0.code)\" = 200200 ]"
check "both racing promotions are recorded" [ "$(n_promotions)" = $((NP + 2)) ]
curl -s -H "$REL" "$MLREG_URL/api/v1/models/demo/stages/staging/history" >"$TMP/hist.json"
check "the staging history chains: each entry replaced the one before it" jqt '
    .history as $h | [range(1; $h | length)] | all(. as $i | $h[$i].previous_version == $h[$i - 1].version)' \
    "$TMP/hist.json"
check "the stage holds the last entry of its history" \
    [ "$(holds staging)" = "$(jq -r '.history[-1].version' "$TMP/hist.json")" ]
B5=$(jq -r '.baseline.version' "$TMP/race5.0.out")
B6=$(jq -r '.baseline.version' "$TMP/race6.0.out")
if { [ "$B5" = 6.0 ] && [ "$B6" = 3.0 ]; } || { [ "$B6" = 5.0 ] && [ "$B5" = 3.0 ]; }; then
    ok "the second racer's baseline is the release the first moved in"
else
    not_ok "the second racer's baseline is the release the first moved in (5.0 saw $B5, 6.0 saw $B6)"
fi

check "the access log never holds a token" sh -c "! grep -qF -e '$T_CI' -e '$T_REL' -e '$T_ALICE' '$TMP/server.log'"
finish
