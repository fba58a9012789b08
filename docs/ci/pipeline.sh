#!/bin/sh
# pipeline.sh: the release pipeline of a model, one step per call, for CI.
#
#   sh docs/ci/pipeline.sh STEP
#
# STEP, in pipeline order (github-actions.yml and gitlab-ci.yml call them so;
# tests/integration/test_pipeline.sh runs the commands it finds in them):
#   export      run the training export ($MLREG_EXPORT_CMD) into $EXPORT_DIR
#   push        push the release with its signature (signing key from the secret store)
#   gate        verify the pushed release and show the gate table of staging (dry run)
#   promote     promote the release to dev, then to staging (gates checked by the registry)
#   approve     approve it for production, as a second identity (the approver's token)
#   production  promote it to production (gates: signature, previous stage, approvals)
#   image-tag   build the serving image ($IMAGE_BUILD_CMD) and record it on the release
#   deploy      pull the release verified by the trusted key into $DEPLOY_ROOT, switch 'current'
#   smoke       run the smoke check ($SMOKE_CMD) on the deployed directory
#   rollback    (after a failure) move production back and deploy what it holds then
#
# Settings (CI variables): MLREG_URL, MLREG_MODEL (e.g. vision/classifier),
# MLREG_VERSION (unique per pipeline run), MLREG_GIT_SHA (the commit built),
# MLREG_TRUSTED_KEY (the release key's .pub, committed to the repository),
# EXPORT_DIR (default export), DEPLOY_ROOT (default deploy), IMAGE_REPO,
# and the commands MLREG_EXPORT_CMD, IMAGE_BUILD_CMD, SMOKE_CMD.
#
# Secrets (the CI's secret store; each job is given only the one it needs):
# MLREG_CI_TOKEN (push, promote, image tag), MLREG_SIGNING_KEY (the text
# of the release secret key), MLREG_KEY_PASSWORD (if that key is
# encrypted), MLREG_APPROVER_TOKEN (approve only), MLREG_DEPLOY_TOKEN (pull,
# and rollback of production). Nothing here prints them: there is no
# `set -x`; they leave the environment as the script starts, so no command
# it runs inherits them (git under mlreg push, the export, the image build,
# the smoke check); a token reaches mlreg only as MLREG_TOKEN, which mlreg
# wipes; the signing key is written to a mode-0600 temp file removed when
# the step ends, however it ends.
set -eu

MLREG=${MLREG:-mlreg}
EXPORT_DIR=${EXPORT_DIR:-export}
DEPLOY_ROOT=${DEPLOY_ROOT:-deploy}
STEP=${1:-}

ci_token=${MLREG_CI_TOKEN:-}
approver_token=${MLREG_APPROVER_TOKEN:-}
deploy_token=${MLREG_DEPLOY_TOKEN:-}
signing_key=${MLREG_SIGNING_KEY:-}
key_password=${MLREG_KEY_PASSWORD:-}
unset MLREG_CI_TOKEN MLREG_APPROVER_TOKEN MLREG_DEPLOY_TOKEN MLREG_SIGNING_KEY MLREG_KEY_PASSWORD \
    MLREG_TOKEN

die() {
    echo "pipeline: $*" >&2
    exit 1
}
need() {
    for v in "$@"; do
        eval "val=\${$v:-}"
        [ -n "$val" ] || die "$STEP: $v is not set"
    done
}
# as SECRET CMD...: runs mlreg with the token of the secret SECRET.
as() {
    case $1 in
    MLREG_CI_TOKEN) tok=$ci_token ;;
    MLREG_APPROVER_TOKEN) tok=$approver_token ;;
    MLREG_DEPLOY_TOKEN) tok=$deploy_token ;;
    *) die "$STEP: no secret $1" ;;
    esac
    [ -n "$tok" ] || die "$STEP: the secret $1 is not set"
    shift
    MLREG_TOKEN=$tok "$MLREG" "$@"
}

REL="${MLREG_MODEL:-}@${MLREG_VERSION:-}"

step_export() {
    need MLREG_EXPORT_CMD
    mkdir -p "$EXPORT_DIR"
    EXPORT_DIR=$EXPORT_DIR sh -c "$MLREG_EXPORT_CMD"
    [ -f "$EXPORT_DIR/eval.json" ] || die "export: $EXPORT_DIR/eval.json (the eval report) is missing"
}

# The export directory is the release: push infers each file's kind from
# its name (weights and shard indexes, tokenizer, config, seeds, the eval
# report), and EXPORT_DIR/mlreg.json, when the export writes one, maps or
# excludes the rest. A file no rule knows stops the push before anything is
# sent, so nothing is left out silently.
step_push() {
    need MLREG_URL MLREG_MODEL MLREG_VERSION MLREG_GIT_SHA
    [ -n "$signing_key" ] || die "push: the secret MLREG_SIGNING_KEY is not set"
    key=$(umask 077 && mktemp "${TMPDIR:-/tmp}/mlreg-sign.XXXXXX")
    trap 'rm -f "$key"' EXIT
    trap 'exit 130' INT TERM
    printf '%s\n' "$signing_key" >"$key"
    [ -n "$ci_token" ] || die "push: the secret MLREG_CI_TOKEN is not set"
    # an unencrypted key needs no password; mlreg reads one only for an encrypted key
    MLREG_KEY_PASSWORD=$key_password MLREG_TOKEN=$ci_token "$MLREG" push "$REL" "$EXPORT_DIR/" \
        --git-sha "$MLREG_GIT_SHA" --sign-key "$key"
}

step_gate() {
    need MLREG_URL MLREG_MODEL MLREG_VERSION MLREG_TRUSTED_KEY
    as MLREG_CI_TOKEN verify "$REL" --trusted-key "$MLREG_TRUSTED_KEY"
    as MLREG_CI_TOKEN promote "$REL" --to staging --dry-run
}

step_promote() {
    need MLREG_URL MLREG_MODEL MLREG_VERSION
    as MLREG_CI_TOKEN promote "$REL" --to dev --reason "pipeline ${CI_RUN:-}"
    as MLREG_CI_TOKEN promote "$REL" --to staging --reason "pipeline ${CI_RUN:-}"
}

step_approve() {
    need MLREG_URL MLREG_MODEL MLREG_VERSION
    as MLREG_APPROVER_TOKEN approve "$REL" --for production \
        --comment "approved in pipeline ${CI_RUN:-}"
}

step_production() {
    need MLREG_URL MLREG_MODEL MLREG_VERSION
    as MLREG_CI_TOKEN promote "$REL" --to production --reason "pipeline ${CI_RUN:-}"
}

# IMAGE_BUILD_CMD builds and pushes the serving image tagged $IMAGE_TAG and
# prints its digest (sha256:...) as the last line of its stdout.
step_image_tag() {
    need MLREG_URL MLREG_MODEL MLREG_VERSION IMAGE_REPO IMAGE_BUILD_CMD
    IMAGE_TAG=$(as MLREG_CI_TOKEN image-tag "$REL" --repo "$IMAGE_REPO")
    export IMAGE_TAG
    digest=$(sh -c "$IMAGE_BUILD_CMD" | tail -n 1)
    case $digest in
    sha256:*) ;;
    *) die "image-tag: IMAGE_BUILD_CMD printed no image digest (sha256:...) last" ;;
    esac
    as MLREG_CI_TOKEN image-tag "$REL" --repo "$IMAGE_REPO" --record --digest "$digest"
}

# deploy_ref REF: pulls REF, verified by the trusted key, into a directory
# of its own under DEPLOY_ROOT, then points DEPLOY_ROOT/current at it (a
# rename: a reader sees the old release or the new one, never a mix).
deploy_ref() {
    dir=$DEPLOY_ROOT/releases/$2
    mkdir -p "$DEPLOY_ROOT/releases"
    as MLREG_DEPLOY_TOKEN pull "$1" -o "$dir" --trusted-key "$MLREG_TRUSTED_KEY"
    ln -sfn "releases/$2" "$DEPLOY_ROOT/current.new"
    mv -T "$DEPLOY_ROOT/current.new" "$DEPLOY_ROOT/current"
    echo "deployed $1 into $DEPLOY_ROOT/current"
}

step_deploy() {
    need MLREG_URL MLREG_MODEL MLREG_VERSION MLREG_TRUSTED_KEY
    deploy_ref "$REL" "$MLREG_VERSION"
}

step_smoke() {
    need SMOKE_CMD
    [ -f "$DEPLOY_ROOT/current/mlreg.lock.json" ] || die "smoke: nothing deployed in $DEPLOY_ROOT/current"
    MODEL_DIR=$DEPLOY_ROOT/current sh -c "$SMOKE_CMD" || die "smoke check failed"
}

# Rolls production back only when it still holds this pipeline's release
# (another run may have moved it since), then deploys what it holds now.
step_rollback() {
    need MLREG_URL MLREG_MODEL MLREG_VERSION MLREG_TRUSTED_KEY
    held=$(as MLREG_DEPLOY_TOKEN resolve "$MLREG_MODEL:production" | cut -d' ' -f1)
    if [ "$held" != "$MLREG_VERSION" ]; then
        echo "pipeline: production holds '$held', not $MLREG_VERSION: nothing to roll back" >&2
    else
        as MLREG_DEPLOY_TOKEN rollback "$MLREG_MODEL" --stage production \
            --reason "smoke check of $MLREG_VERSION failed in pipeline ${CI_RUN:-}"
    fi
    held=$(as MLREG_DEPLOY_TOKEN resolve "$MLREG_MODEL:production" | cut -d' ' -f1)
    deploy_ref "$MLREG_MODEL:production" "$held"
}

case $STEP in
export) step_export ;;
push) step_push ;;
gate) step_gate ;;
promote) step_promote ;;
approve) step_approve ;;
production) step_production ;;
image-tag) step_image_tag ;;
deploy) step_deploy ;;
smoke) step_smoke ;;
rollback) step_rollback ;;
*)
    echo "usage: sh docs/ci/pipeline.sh export|push|gate|promote|approve|production|image-tag|deploy|smoke|rollback" >&2
    exit 2
    ;;
esac
