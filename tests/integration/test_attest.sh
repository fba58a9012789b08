#!/bin/sh
# test_attest.sh: independent evaluations end to end with a real server:
#   `mlreg key generate` makes an evaluator key, `mlreg key trust --role
#   evaluator` puts it in the keyring, `mlreg attest` signs and stores an
#   evaluation; the listing shows it counting, with the report's digests; the
#   OCI referrers API lists it and its envelope verifies offline with openssl
#   over the DSSE PAE; the same envelope sent twice stores nothing new; a key
#   of another role is stored but does not count; a key outside the keyring,
#   a forged payload, a statement about another release, another predicate
#   type, a truncated and an oversized body are refused with nothing stored;
#   a report with a malformed dataset_digest is refused before anything is
#   sent; an evaluation referrer cannot be pushed or deleted through the OCI
#   API; a token without push is refused; the evaluations survive a restart.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

for t in jq openssl; do
    command -v $t >/dev/null 2>&1 || { not_ok "$t is installed (make deps installs it)"; finish; }
done
W=$TMP/work
mkdir -p "$W"
unset MLREG_KEY_PASSWORD
PUSH=$(tok)
READ=$(tok)
cat >"$TMP/config.json" <<EOF
{"tokens": [{"name": "ci", "sha256": "$(hash "$PUSH")", "roles": ["admin"]},
            {"name": "viewer", "sha256": "$(hash "$READ")", "roles": ["read"]}]}
EOF
start_server --config "$TMP/config.json" || finish
export MLREG_TOKEN="$PUSH"
AUTH="Authorization: Bearer $PUSH"

says() {
    if grep -qF -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (stderr lacks '$2': $(tail -n 3 "$TMP/err"))"; fi
}
body_says() {
    if grep -qF -- "$2" "$TMP/body"; then ok "$1"; else
        not_ok "$1 (body lacks '$2': $(head -c 400 "$TMP/body"))"; fi
}
evals() { # MODEL VERSION: the evaluations listing
    curl -sf -H "$AUTH" "$MLREG_URL/api/v1/models/$1/versions/$2/evaluations"
}
nevals() { evals "$1" "$2" | jq '.evaluations | length'; }
jqt() { jq -e "$@" >/dev/null; }

DS=sha256:$(printf 'holdout-v2' | sha256sum | cut -c1-64)
CODE=sha256:$(printf 'eval.py' | sha256sum | cut -c1-64)
head -c 100000 /dev/urandom >"$W/model.bin"
printf '{"metrics":{"accuracy":0.88}}' >"$W/push-eval.json"
printf '{"metrics":{"accuracy":0.912,"f1":0.9},"dataset":"holdout-v2","dataset_digest":"%s","eval_code_digest":"%s"}' \
    "$DS" "$CODE" >"$W/nightly.json"

run "$MLREG" push team/a@1.0.0 --weights "$W/model.bin" --eval-report "$W/push-eval.json" --git-sha abcdef1
expect_rc "push release A" 0
DA=$(cat "$TMP/out")
run "$MLREG" push team/a@2.0.0 --weights "$W/model.bin" --eval-report "$W/nightly.json" --git-sha abcdef2
expect_rc "push release B, whose own report names the digests" 0
DB=$(cat "$TMP/out")
expect_status "the release JSON shows the report's dataset digest" 200 GET \
    /api/v1/models/team/a/versions/2.0.0 -H "$AUTH"
check "... eval_dataset_digest and eval_code_digest" \
    jqt --arg d "$DS" --arg c "$CODE" '.eval_dataset_digest == $d and .eval_code_digest == $c' "$TMP/body"

# ---- keys ------------------------------------------------------------------------
"$MLREG" key generate --out "$W/ev" --no-password >/dev/null 2>&1
"$MLREG" key generate --out "$W/appr" --no-password >/dev/null 2>&1
"$MLREG" key generate --out "$W/stranger" --no-password >/dev/null 2>&1
check "mlreg key generate makes the evaluator key" test -s "$W/ev.key" -a -s "$W/ev.pub"
run "$MLREG" key trust "$W/ev.pub" --name nightly-eval --role evaluator
expect_rc "the keyring trusts it with role evaluator" 0
run "$MLREG" key trust "$W/appr.pub" --name approver-1 --role approver
expect_rc "another key with role approver" 0

# ---- attest ----------------------------------------------------------------------
run "$MLREG" attest team/a@1.0.0 --eval-report "$W/nightly.json" --key "$W/ev.key"
expect_rc "mlreg attest stores an evaluation" 0
says "... and says gates may use it" "gates may use it"
REF=$(cat "$TMP/out")
check "... printing the referrer digest" expr "$REF" : 'sha256:[0-9a-f]\{64\}$' >/dev/null
evals team/a 1.0.0 >"$W/list.json"
check "the listing has one evaluation that counts, by nightly-eval with role evaluator" \
    jqt '.evaluations | length == 1 and (.[0] | .counts and .role == "evaluator"
        and .key_name == "nightly-eval" and .status == "trusted" and .trusted_at_attach)' "$W/list.json"
check "... with its metrics and digests" \
    jqt --arg d "$DS" --arg c "$CODE" '.evaluations[0] | .metrics.accuracy == 0.912
        and .dataset_digest == $d and .eval_code_digest == $c and .dataset == "holdout-v2"' "$W/list.json"
check "... naming the release digest" jqt --arg d "$DA" '.digest == $d' "$W/list.json"
run "$MLREG" attest team/a@1.0.0 --eval-report "$W/nightly.json" --key "$W/ev.key" --json
expect_rc "mlreg attest --json" 0
check "... a new statement (new evaluated_at) is a second evaluation" test "$(nevals team/a 1.0.0)" = 2

# ---- the OCI referrer and offline verification --------------------------------------
HEX=${DA#sha256:}
expect_status "the OCI referrers API answers" 200 GET "/v2/team/a/referrers/$DA" -H "$AUTH"
check "... listing the evaluation referrers by artifactType" \
    jqt --arg r "$REF" '[.manifests[] | select(.artifactType ==
        "application/vnd.mlreg.evaluation.v1+dsse")] | length == 2 and any(.digest == $r)' "$TMP/body"
expect_status "the referrer manifest is served" 200 GET "/v2/team/a/manifests/$REF" \
    -H "$AUTH" -H 'Accept: application/vnd.oci.image.manifest.v1+json'
ENVD=$(jq -r '.layers[0].digest' "$TMP/body")
check "... its layer is a DSSE envelope" \
    jqt '.layers[0].mediaType == "application/vnd.dsse.envelope.v1+json"' "$TMP/body"
check "... whose subject is the release" jqt --arg d "$DA" '.subject.digest == $d' "$TMP/body"
curl -sf -H "$AUTH" -o "$W/env.json" "$MLREG_URL/v2/team/a/blobs/$ENVD"
check "the envelope blob is served and hashes to its digest" \
    test "sha256:$(sha256_of "$W/env.json")" = "$ENVD"
jq -r .payload "$W/env.json" | base64 -d >"$W/payload.json"
check "the payload is the in-toto statement about the release" \
    jqt --arg h "$HEX" '._type == "https://in-toto.io/Statement/v1" and
        .predicateType == "urn:mlreg:evaluation:v1" and .subject[0].digest.sha256 == $h and
        .subject[0].name == "team/a@1.0.0" and .predicate.report.metrics.accuracy == 0.912' "$W/payload.json"
# PAE = "DSSEv1 <len type> <type> <len body> <body>", verified with openssl
T=application/vnd.in-toto+json
{ printf 'DSSEv1 %s %s %s ' "${#T}" "$T" "$(wc -c <"$W/payload.json" | tr -d ' ')"
  cat "$W/payload.json"; } >"$W/pae.bin"
jq -r '.signatures[0].sig' "$W/env.json" | base64 -d >"$W/sig.bin"
{ printf '302a300506032b6570032100' | xxd -r -p
  sed -n 2p "$W/ev.pub" | base64 -d | tail -c 32; } >"$W/ev.der"
check "openssl verifies the envelope with the evaluator's public key (offline)" \
    openssl pkeyutl -verify -pubin -keyform DER -inkey "$W/ev.der" -rawin -in "$W/pae.bin" \
    -sigfile "$W/sig.bin" >/dev/null

# ---- idempotent; other roles; refusals -------------------------------------------
expect_status "the same envelope again is 200, nothing new" 200 POST \
    /api/v1/models/team/a/versions/1.0.0/evaluations -H "$AUTH" --data-binary "@$W/env.json"
check "... still two evaluations" test "$(nevals team/a 1.0.0)" = 2
run "$MLREG" attest team/a@1.0.0 --eval-report "$W/nightly.json" --key "$W/appr.key"
expect_rc "an approver key's evaluation is stored" 0
says "... saying gates do not use it" "gates do not use it"
check "... listed with role approver, not counting" \
    jqt '.evaluations[-1] | (.counts | not) and .role == "approver" and .trusted_at_attach' \
    "$(evals team/a 1.0.0 >"$W/l2.json"; echo "$W/l2.json")"
run "$MLREG" attest team/a@1.0.0 --eval-report "$W/nightly.json" --key "$W/stranger.key"
check "a key outside the keyring is refused (exit $RC)" test "$RC" -ne 0
says "... naming the keyring" "not in the registry's keyring"
check "... nothing stored" test "$(nevals team/a 1.0.0)" = 3

post_env() { # NAME WANT FILE MESSAGE [VERSION]
    expect_status "$1" "$2" POST "/api/v1/models/team/a/versions/${5:-1.0.0}/evaluations" \
        -H "$AUTH" --data-binary "@$3"
    body_says "... saying '$4'" "$4"
}
# a forged payload: the report's accuracy raised, the signature kept
jq '.predicate.report.metrics.accuracy = 0.99' "$W/payload.json" >"$W/forged-payload.json"
jq --arg p "$(base64 -w0 "$W/forged-payload.json")" '.payload = $p' "$W/env.json" >"$W/forged.json"
post_env "a forged payload is refused (400)" 400 "$W/forged.json" "no valid signature by key"
# the envelope of release A sent for release B
post_env "an evaluation of A sent as one of B is refused" 400 "$W/env.json" "not release team/a@2.0.0" 2.0.0
check "... nothing stored on B" test "$(nevals team/a 2.0.0)" = 0
head -c 100 "$W/env.json" >"$W/trunc.json"
post_env "a truncated envelope is refused" 400 "$W/trunc.json" "malformed"
{ printf '{"payload":"'; head -c 2200000 /dev/zero | tr '\0' 'A'; printf '","payloadType":"x","signatures":[]}'; } >"$W/big.json"
post_env "an oversized envelope is refused (413)" 413 "$W/big.json" "at most"
printf '' >"$W/empty.json"
expect_status "an empty body is refused (400)" 400 POST \
    /api/v1/models/team/a/versions/1.0.0/evaluations -H "$AUTH" --data-binary "@$W/empty.json"
check "nothing of the refusals was stored" test "$(nevals team/a 1.0.0)" = 3
expect_status "a read-only token may not attest (403)" 403 POST \
    /api/v1/models/team/a/versions/1.0.0/evaluations -H "Authorization: Bearer $READ" \
    --data-binary "@$W/env.json"
expect_status "no token: 401" 401 POST /api/v1/models/team/a/versions/1.0.0/evaluations \
    --data-binary "@$W/env.json"
expect_status "a read-only token may list" 200 GET \
    /api/v1/models/team/a/versions/1.0.0/evaluations -H "Authorization: Bearer $READ"
expect_status "an unknown release is 404" 404 POST \
    /api/v1/models/team/a/versions/9.9.9/evaluations -H "$AUTH" --data-binary "@$W/env.json"

printf '{"metrics":{"accuracy":0.9},"dataset_digest":"sha256:ABC"}' >"$W/bad-digest.json"
run "$MLREG" attest team/a@1.0.0 --eval-report "$W/bad-digest.json" --key "$W/ev.key"
check "a malformed dataset_digest is refused before sending (exit $RC)" test "$RC" -ne 0
says "... naming the member" "'dataset_digest' must be"
run "$MLREG" push team/a@3.0.0 --weights "$W/model.bin" --eval-report "$W/bad-digest.json"
check "... and by push (exit $RC)" test "$RC" -ne 0

# ---- the referrer is the registry's ----------------------------------------------
expect_status "an evaluation referrer cannot be deleted through the OCI API" 409 DELETE \
    "/v2/team/a/manifests/$REF" -H "$AUTH"
curl -sf -H "$AUTH" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$MLREG_URL/v2/team/a/manifests/$REF" | jq -c '.annotations["org.mlreg.evaluation.key-id"] = "0000000000000000"' \
    >"$W/fake-ref.json"
expect_status "nor one pushed" 409 PUT "/v2/team/a/manifests/sha256:$(sha256_of "$W/fake-ref.json")" \
    -H "$AUTH" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$W/fake-ref.json"
body_says "... saying the registry makes them" "made by the registry when an evaluation is attested"

expect_status "its envelope blob cannot be unlinked from the repository" 409 DELETE \
    "/v2/team/a/blobs/$ENVD" -H "$AUTH"
body_says "... naming the evaluation" "an evaluation envelope of release team/a@1.0.0"

# ---- an audit bundle of a release with evaluations still verifies ------------------
run "$MLREG" bundle team/a@1.0.0 -o "$W/bundle"
expect_rc "mlreg bundle of a release with evaluations" 0
run "$MLREG" audit verify --bundle "$W/bundle"
expect_rc "... and the bundle verifies" 0
check "... saying it checked the three evaluations" \
    grep -q '^3 evaluations in evaluations/: each the envelope its evaluation.attest entry names' "$TMP/out"
SEQS=$(jq -r '.evaluations[].seq' "$W/l2.json" | tr '\n' ' ')
S1=$(jq -r '.evaluations[0].seq' "$W/l2.json")
S3=$(jq -r '.evaluations[2].seq' "$W/l2.json")
for s in $SEQS; do
    check "evaluations/$s.dsse.json is in the bundle, listed in SHA256SUMS" \
        grep -q "  evaluations/$s.dsse.json\$" "$W/bundle/SHA256SUMS"
done
check "... holding exactly the stored envelope bytes" \
    test "sha256:$(sha256_of "$W/bundle/evaluations/$S1.dsse.json")" = "$(jq -r '.evaluations[0].envelope' "$W/l2.json")"
check "sha256sum -c SHA256SUMS passes in the bundle" sh -c "cd '$W/bundle' && sha256sum -c --quiet SHA256SUMS"
check "the bundle's evaluation.attest entries name those envelopes" \
    sh -c "jq -e --arg e \"\$(jq -r '.evaluations[0].envelope' '$W/l2.json')\" \
        '.action == \"evaluation.attest\" and .details.envelope == \$e' '$W/bundle/audit/entries/$S1.json' >/dev/null"
jq -r .payload "$W/bundle/evaluations/$S1.dsse.json" | base64 -d >"$W/bpayload.json"
{ printf 'DSSEv1 %s %s %s ' "${#T}" "$T" "$(wc -c <"$W/bpayload.json" | tr -d ' ')"
  cat "$W/bpayload.json"; } >"$W/bpae.bin"
jq -r '.signatures[0].sig' "$W/bundle/evaluations/$S1.dsse.json" | base64 -d >"$W/bsig.bin"
# the key as docs/audit-api.md takes it: the entry's details.public_key
{ printf '302a300506032b6570032100' | xxd -r -p
  jq -r .details.public_key "$W/bundle/audit/entries/$S1.json" | base64 -d | tail -c 32; } >"$W/bev.der"
check "the entry's public_key is the evaluator's key" cmp -s "$W/bev.der" "$W/ev.der"
ed_verify() { # DER PAE SIG: openssl's Ed25519 check, quietly (check's line must show)
    openssl pkeyutl -verify -pubin -keyform DER -inkey "$1" -rawin -in "$2" -sigfile "$3" >/dev/null
}
check "openssl verifies a bundled envelope with the key its audit entry names" \
    ed_verify "$W/bev.der" "$W/bpae.bin" "$W/bsig.bin"
check "... and its subject is the bundled manifest" \
    jqt --arg h "$(sha256_of "$W/bundle/manifest.json")" '.subject[0].digest.sha256 == $h' "$W/bpayload.json"

# tampered copies of the bundle: each must fail the offline check
tampered() { # NAME: a fresh copy of the bundle in $W/t-NAME
    rm -rf "$W/t-$1"
    cp -R "$W/bundle" "$W/t-$1"
}
resum() { # DIR PATH: SHA256SUMS line of PATH recomputed (or dropped when PATH is gone)
    grep -v "  $2\$" "$1/SHA256SUMS" >"$1/SHA256SUMS.new"
    [ -f "$1/$2" ] && printf '%s  %s\n' "$(sha256_of "$1/$2")" "$2" >>"$1/SHA256SUMS.new"
    mv "$1/SHA256SUMS.new" "$1/SHA256SUMS"
}
refuses() { # NAME MESSAGE
    run "$MLREG" audit verify --bundle "$W/t-$1"
    expect_rc "a bundle with $1 is refused" 1
    says "... saying '$2'" "$2"
}
tampered forged-evaluation
cp "$W/forged.json" "$W/t-forged-evaluation/evaluations/$S1.dsse.json"
resum "$W/t-forged-evaluation" "evaluations/$S1.dsse.json"
refuses forged-evaluation "is not the envelope audit entry $S1 names"
tampered swapped-evaluations
cp "$W/bundle/evaluations/$S3.dsse.json" "$W/t-swapped-evaluations/evaluations/$S1.dsse.json"
resum "$W/t-swapped-evaluations" "evaluations/$S1.dsse.json"
refuses swapped-evaluations "is not the envelope audit entry $S1 names"
tampered dropped-evaluation
rm "$W/t-dropped-evaluation/evaluations/$S3.dsse.json"
resum "$W/t-dropped-evaluation" "evaluations/$S3.dsse.json"
refuses dropped-evaluation "audit entry $S3 records an evaluation whose envelope evaluations/$S3.dsse.json is not in the bundle"
tampered unlisted-evaluation
resum "$W/t-unlisted-evaluation" "evaluations/$S1.dsse.json.none"
grep -v "evaluations/$S1.dsse.json" "$W/t-unlisted-evaluation/SHA256SUMS" >"$W/sums" &&
    cp "$W/sums" "$W/t-unlisted-evaluation/SHA256SUMS"
refuses unlisted-evaluation "SHA256SUMS does not list evaluations/$S1.dsse.json"
tampered extra-evaluation
SP=$(jq -r '[.entries[] | (if type == "string" then fromjson else . end)] | map(select(.action == "push"))[0].seq' \
    "$(curl -sf -H "$AUTH" "$MLREG_URL/api/v1/audit?model=team/a" >"$W/a.json"; echo "$W/a.json")")
cp "$W/bundle/evaluations/$S1.dsse.json" "$W/t-extra-evaluation/evaluations/$SP.dsse.json"
resum "$W/t-extra-evaluation" "evaluations/$SP.dsse.json"
refuses extra-evaluation "audit entry $SP in the bundle is not an evaluation.attest entry"
tampered odd-name
cp "$W/bundle/evaluations/$S1.dsse.json" "$W/t-odd-name/evaluations/x.json"
refuses odd-name "evaluations/x.json: not an evaluation <seq>.dsse.json"

# ---- mlreg show: evaluations, intervals, digests ------------------------------------
run "$MLREG" show team/a@1.0.0
expect_rc "mlreg show of a release with evaluations" 0
NEWEST=$(jq -r '[.evaluations[] | select(.counts)] | max_by(.seq) | "\(.seq) \(.key_id)"' "$W/l2.json")
check "... counts them and names the newest by a trusted evaluator" \
    grep -q "^evaluations   3, newest by a trusted evaluator: nightly-eval (${NEWEST#* }) evaluated at .*, audit entry ${NEWEST% *}\$" "$TMP/out"
check "... with its dataset and code digests" grep -qF "on dataset $DS, eval code $CODE" "$TMP/out"
check "... and its metrics" grep -q '^              metrics accuracy=0.912 f1=0.9$' "$TMP/out"
run "$MLREG" show team/a@1.0.0 --json
expect_rc "mlreg show --json" 0
check "... carries the evaluations as the registry lists them" \
    jqt --slurpfile l "$W/l2.json" '.evaluations == $l[0].evaluations and .version == "1.0.0"' "$TMP/out"
run "$MLREG" show team/a@2.0.0
check "show of a release without evaluations says none" grep -q '^evaluations   none$' "$TMP/out"
check "... and prints the report's dataset digest" grep -qF "  digest      $DS" "$TMP/out"
check "... and eval code digest" grep -qF "eval code     $CODE" "$TMP/out"
printf '{"metrics":{"accuracy":{"value":0.9,"ci_low":0.885,"ci_high":0.915},"f1":0.8}}' >"$W/ci.json"
run "$MLREG" push team/a@4.0.0 --weights "$W/model.bin" --eval-report "$W/ci.json"
expect_rc "push a release whose report gives an interval" 0
run "$MLREG" show team/a@4.0.0
check "show prints the metric with its interval" grep -Eq '^metrics +accuracy +0\.9 \[0\.885, 0\.915\]$' "$TMP/out"
check "... and a metric without one plainly" grep -Eq '^ +f1 +0\.8$' "$TMP/out"
run "$MLREG" show team/a@4.0.0 --json
check "show --json keeps metric_intervals" \
    jqt '.metric_intervals.accuracy == {"ci_low":0.885,"ci_high":0.915} and .evaluations == []' "$TMP/out"

expect_status "the evaluations are CloudEvents of type dev.mlreg.evaluate" 200 GET \
    "/api/v1/events?types=evaluate" -H "$AUTH"
check "... three of them, naming the key" jq -e '[.[] | select(.type == "dev.mlreg.evaluate"
    and .data.action == "evaluation.attest" and (.data.key_id | length) == 16)] | length == 3' "$TMP/body" >/dev/null

# ---- restart: the evaluations stay ------------------------------------------------
evals team/a 1.0.0 >"$W/before.json"
stop_server
start_server --config "$TMP/config.json" || finish
evals team/a 1.0.0 >"$W/after.json"
check "after a restart the listing is the same" cmp -s "$W/before.json" "$W/after.json"
run "$MLREG" audit verify
check "mlreg audit verify passes with evaluation entries (exit $RC)" test "$RC" = 0
expect_status "the audit log names the evaluation.attest entries" 200 GET \
    "/api/v1/audit?model=team/a" -H "$AUTH"
check "... three of them" test "$(jq '[.entries[] | (if type == "string" then fromjson else . end)
    | select(.action == "evaluation.attest")] | length' "$TMP/body")" = 3

# ---- a purged release keeps its evaluations in its bundle -------------------------
run "$MLREG" attest team/a@4.0.0 --eval-report "$W/nightly.json" --key "$W/ev.key"
expect_rc "attest 4.0.0" 0
run "$MLREG" purge team/a@4.0.0 --reason "takedown"
expect_rc "purge 4.0.0" 0
run "$MLREG" bundle team/a@4.0.0 -o "$W/purged-bundle"
expect_rc "mlreg bundle of the purged release" 0
check "... holds its evaluation" test "$(ls "$W/purged-bundle/evaluations" | wc -l)" = 1
run "$MLREG" audit verify --bundle "$W/purged-bundle"
expect_rc "... and verifies" 0
check "... with the evaluation checked" grep -q '^1 evaluation in evaluations/' "$TMP/out"

finish
