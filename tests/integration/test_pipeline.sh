#!/bin/sh
# test_pipeline.sh: the CI example of docs/ci/ against a real `mlreg serve`,
# so the example cannot rot. The commands are taken from the two workflow
# files themselves (every `sh docs/ci/pipeline.sh STEP` line, in file
# order): both must list the same steps, in pipeline order, and the test
# runs exactly those lines, with the tokens of three identities (the CI
# pusher, a release approver, the deployer). Release 1.0 goes all the way
# to production and is deployed; release 2.0 fails its smoke check, and the
# rollback moves production back to 1.0 and deploys it again. Also: the
# pusher cannot approve its own release, production refuses a release
# without an approval, and no token or signing key text reaches the output.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W/keys" "$W/t"
CI_TOK=$(tok)
APPROVER_TOK=$(tok)
DEPLOY_TOK=$(tok)
ADMIN_TOK=$(tok)
"$MLREG" key generate --out "$W/keys/release" --no-password >/dev/null 2>&1 ||
    not_ok "key generate for the test"
cat >"$W/config.json" <<EOF
{
  "stages": ["dev", "staging", "production"],
  "gates": {
    "staging": [ { "metric": "accuracy", "min": 0.85 } ],
    "production": [ { "metric": "accuracy", "max_drop": 0.05 },
                    { "require": "signed", "min": 1 },
                    { "require": "previous_stage" },
                    { "require": "approvals", "min": 1 } ]
  },
  "trusted_keys": [ { "name": "release-bot", "file": "$W/keys/release.pub", "role": "release" } ],
  "tokens": [
    { "name": "ci", "sha256": "$(hash "$CI_TOK")",
      "roles": ["read", "push", "promote:dev", "promote:staging", "promote:production"] },
    { "name": "release-manager", "sha256": "$(hash "$APPROVER_TOK")",
      "roles": ["read", "approve:production"] },
    { "name": "deployer", "sha256": "$(hash "$DEPLOY_TOK")",
      "roles": ["read", "promote:production"] },
    { "name": "admin", "sha256": "$(hash "$ADMIN_TOK")", "roles": ["admin"] }
  ]
}
EOF
start_server --config "$W/config.json" || finish

# ---- the steps, from the workflow files --------------------------------------
WANT="export push gate promote approve production image-tag deploy smoke rollback"
steps_of() { grep -o 'sh docs/ci/pipeline\.sh [a-z-]*' "$1" | sed 's/.* //' | tr '\n' ' ' | sed 's/ $//'; }
GH=$(steps_of "$MLREG_ROOT/docs/ci/github-actions.yml")
GL=$(steps_of "$MLREG_ROOT/docs/ci/gitlab-ci.yml")
check "github-actions.yml runs every step of the pipeline, in order" test "$GH" = "$WANT"
check "gitlab-ci.yml runs the same steps in the same order" test "$GL" = "$WANT"
# step_of FILE STEP: the lines of the workflow step (from its "- ") that runs STEP
step_of() { awk -v s="pipeline.sh $2" '/^ *- /{b=""} {b=b $0 "\n"} index($0, s){printf "%s", b; exit}' "$1"; }
ROLLBACK_STEP=$(step_of "$MLREG_ROOT/docs/ci/github-actions.yml" rollback)
check "github-actions.yml rolls back only after a failure" \
    sh -c "printf '%s' \"\$1\" | grep -q '^ *if: failure()$'" - "$ROLLBACK_STEP"
for st in deploy smoke; do
    check "github-actions.yml runs its $st step unconditionally" \
        sh -c "! printf '%s' \"\$1\" | grep -q 'if:'" - "$(step_of "$MLREG_ROOT/docs/ci/github-actions.yml" $st)"
done
check "gitlab-ci.yml rolls back only after a failure" \
    sh -c "grep -A12 '^rollback:' '$MLREG_ROOT/docs/ci/gitlab-ci.yml' | grep -q 'when: on_failure'"
for f in github-actions.yml gitlab-ci.yml; do
    for s in MLREG_CI_TOKEN MLREG_SIGNING_KEY MLREG_APPROVER_TOKEN MLREG_DEPLOY_TOKEN; do
        check "$f names the secret $s" grep -q "$s" "$MLREG_ROOT/docs/ci/$f"
    done
done

# ---- what the CI provides: settings, secrets, and the project's own commands
export MLREG_MODEL=vision/classifier
export MLREG_GIT_SHA=0123456789abcdef0123456789abcdef01234567
export MLREG_TRUSTED_KEY="$W/keys/release.pub"
export DEPLOY_ROOT="$W/srv"
export IMAGE_REPO=registry.example/team/classifier-server
export MLREG="$MLREG"
export TMPDIR="$W/t"
export MLREG_CI_TOKEN="$CI_TOK" MLREG_APPROVER_TOKEN="$APPROVER_TOK" MLREG_DEPLOY_TOKEN="$DEPLOY_TOK"
MLREG_SIGNING_KEY=$(cat "$W/keys/release.key")
export MLREG_SIGNING_KEY
# The training export: sharded weights with their index, tokenizer, config
# (its "healthy" flag is what the smoke check looks at), seeds, eval report.
cat >"$W/export.sh" <<'EOF'
set -e
env >"$EXPORT_DIR.env"
head -c 1500000 /dev/urandom >"$EXPORT_DIR/model-00001-of-00002.safetensors"
head -c 700000 /dev/urandom >"$EXPORT_DIR/model-00002-of-00002.safetensors"
printf '{"weight_map":{}}' >"$EXPORT_DIR/model.safetensors.index.json"
printf '{"model":{"type":"BPE"}}' >"$EXPORT_DIR/tokenizer.json"
printf '{"layers":12,"healthy":%s}' "$HEALTHY" >"$EXPORT_DIR/config.json"
printf '{"torch":42}' >"$EXPORT_DIR/seeds.json"
printf 'scratch notes\n' >"$EXPORT_DIR/notes.txt"
printf '{"exclude":["notes.txt"]}' >"$EXPORT_DIR/mlreg.json"
printf '{"dataset":"val-v1","metrics":{"accuracy":%s}}' "$ACCURACY" >"$EXPORT_DIR/eval.json"
EOF
export MLREG_EXPORT_CMD="sh $W/export.sh"
# The image build prints the pushed image's digest last.
export IMAGE_BUILD_CMD='echo "building $IMAGE_TAG"; printf "%s" "$IMAGE_TAG" | sha256sum | sed "s/^/sha256:/; s/ .*//"'
export SMOKE_CMD='env >"$MODEL_DIR/../../smoke.env"; grep -q "\"healthy\":true" "$MODEL_DIR/config.json"'

# pipeline VERSION [FIRST]: runs the workflow's steps for VERSION as a CI
# would (from step FIRST on, when given: a run resumed after its manual
# approval): in order, stopping at the first failure; rollback only when
# the deploy or the smoke check failed. FAILED is the step that failed ("" for none),
# ROLLED 1 when the rollback ran; all output in $W/log-VERSION.
pipeline() {
    export MLREG_VERSION=$1 EXPORT_DIR=$W/export-$1 CI_RUN="run-$1"
    FAILED=""
    ROLLED=0
    log=$W/log-$1
    skip=${2:+1}
    : >"$log"
    for s in $GH; do
        [ "$s" = rollback ] && continue
        [ "$s" = "${2:-}" ] && skip=""
        [ -n "$skip" ] && continue
        echo "== $s" >>"$log"
        if ! (cd "$MLREG_ROOT" && sh docs/ci/pipeline.sh "$s") >>"$log" 2>&1; then
            FAILED=$s
            break
        fi
    done
    case $FAILED in
    deploy | smoke)
        echo "== rollback" >>"$log"
        (cd "$MLREG_ROOT" && sh docs/ci/pipeline.sh rollback) >>"$log" 2>&1 && ROLLED=1
        ;;
    esac
}
# stage_is NAME STAGE WANT: what STAGE holds (version, or "empty").
stage_is() {
    got=$(MLREG_TOKEN=$DEPLOY_TOK "$MLREG" resolve "$MLREG_MODEL:$2" 2>/dev/null | cut -d' ' -f1)
    [ -n "$got" ] || got=empty
    if [ "$got" = "$3" ]; then ok "$1"; else not_ok "$1 (want $3, got $got)"; fi
}
show_log() { sed 's/^/  | /' "$1" | tail -n 30; }
no_secrets_in() {
    for s in "$CI_TOK" "$APPROVER_TOK" "$DEPLOY_TOK" "$(sed -n 2p "$W/keys/release.key")"; do
        if grep -qF -- "$s" "$1"; then return 1; fi
    done
}

# ---- release 1.0: all the way to production ---------------------------------
HEALTHY=true ACCURACY=0.91
export HEALTHY ACCURACY
pipeline 1.0
if [ -z "$FAILED" ]; then ok "pipeline 1.0 runs every step"; else
    not_ok "pipeline 1.0 runs every step (failed at $FAILED)"; show_log "$W/log-1.0"; fi
check "the rollback did not run for 1.0" test $ROLLED = 0
stage_is "1.0 is in production" production 1.0
stage_is "1.0 is in staging" staging 1.0
stage_is "1.0 is in dev" dev 1.0
check "the push step names the export's file it does not push" \
    grep -q "^not pushed: notes.txt (excluded by mlreg.json 'notes.txt')" "$W/log-1.0"
check "the push was signed by the release key" grep -q "^signed vision/classifier@1.0 with key" "$W/log-1.0"
check "the gate step showed the staging gate table" grep -q "accuracy >= 0.85" "$W/log-1.0"
check "the deploy verified the signature" grep -q "^pulled vision/classifier@1.0 " "$W/log-1.0"
check "current points at the 1.0 deployment" test "$(readlink "$DEPLOY_ROOT/current")" = releases/1.0
D10=$(MLREG_TOKEN=$DEPLOY_TOK "$MLREG" resolve "$MLREG_MODEL:production" 2>/dev/null | cut -d' ' -f2)
check "the deployed lock pins the release production holds" \
    jq -e --arg d "$D10" '.digest == $d and .version == "1.0"' "$DEPLOY_ROOT/current/mlreg.lock.json" >/dev/null
for f in model-00001-of-00002.safetensors model-00002-of-00002.safetensors \
    model.safetensors.index.json tokenizer.json config.json seeds.json eval.json; do
    check "deployed $f is the exported one" cmp -s "$W/export-1.0/$f" "$DEPLOY_ROOT/current/$f"
done
run env MLREG_TOKEN=$DEPLOY_TOK "$MLREG" resolve "$MLREG_MODEL:production" --image
check "the image tag was recorded with its digest" \
    grep -q "^$IMAGE_REPO:1.0-0123456@sha256:[0-9a-f]\{64\}$" "$TMP/out"
check "no token or signing key text in the 1.0 log" no_secrets_in "$W/log-1.0"
check "the temp signing key file was removed" test -z "$(ls -A "$W/t")"
check "the export command inherits no secret" no_secrets_in "$W/export-1.0.env"
check "the smoke check inherits no secret" no_secrets_in "$DEPLOY_ROOT/smoke.env"

# ---- the gates hold: no self-approval, no production without approval ------
HEALTHY=false ACCURACY=0.90
export HEALTHY ACCURACY
export MLREG_VERSION=2.0 EXPORT_DIR=$W/export-2.0 CI_RUN=run-2.0
for s in export push gate promote; do
    (cd "$MLREG_ROOT" && sh docs/ci/pipeline.sh "$s") >>"$W/log-2.0-pre" 2>&1 ||
        not_ok "step $s of 2.0 before the approval"
done
run env MLREG_APPROVER_TOKEN=$CI_TOK sh "$MLREG_ROOT/docs/ci/pipeline.sh" approve
check "the pusher's token cannot approve its own release" test $RC -ne 0
run sh "$MLREG_ROOT/docs/ci/pipeline.sh" production
check "production refuses 2.0 without an approval" test $RC -ne 0
check "the refusal names the approvals rule" grep -qi "approv" "$TMP/out" "$TMP/err"
stage_is "production still holds 1.0" production 1.0
run env MLREG_CI_TOKEN= sh "$MLREG_ROOT/docs/ci/pipeline.sh" production
check "a step without its secret stops, naming it" grep -q "the secret MLREG_CI_TOKEN is not set" "$TMP/err"
run env MLREG_CI_TOKEN=mlreg_not_a_known_token MLREG_VERSION=2.1 sh "$MLREG_ROOT/docs/ci/pipeline.sh" push
check "a push refused by the registry fails the step" test $RC -ne 0
check "  and removes the temp signing key file all the same" test -z "$(ls -A "$W/t")"

# ---- release 2.0: the smoke check fails, the rollback moves production back -
pipeline 2.0 approve
check "pipeline 2.0 fails at the smoke check" test "$FAILED" = smoke
check "the rollback ran" test $ROLLED = 1
stage_is "production was moved back to 1.0" production 1.0
stage_is "staging keeps 2.0" staging 2.0
check "current points at the 1.0 deployment again" \
    test "$(readlink "$DEPLOY_ROOT/current")" = releases/1.0
check "the 1.0 files are deployed again" cmp -s "$W/export-1.0/config.json" "$DEPLOY_ROOT/current/config.json"
run env MLREG_TOKEN=$ADMIN_TOK "$MLREG" status "$MLREG_MODEL" --json
check "the registry recorded the rollback with the smoke check as its reason" \
    grep -q "smoke check of 2.0 failed in pipeline run-2.0" "$TMP/out"
check "no token or signing key text in the 2.0 log" no_secrets_in "$W/log-2.0"

# a second rollback of the same run does not move someone else's release
(cd "$MLREG_ROOT" && sh docs/ci/pipeline.sh rollback) >"$W/log-again" 2>&1
check "a repeated rollback leaves production alone (it no longer holds 2.0)" \
    grep -q "production holds '1.0', not 2.0: nothing to roll back" "$W/log-again"
stage_is "production still holds 1.0 after the repeated rollback" production 1.0

run sh "$MLREG_ROOT/docs/ci/pipeline.sh" nosuchstep
expect_rc "an unknown step is a usage error" 2

finish
