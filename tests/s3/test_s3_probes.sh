#!/bin/sh
# test_s3_probes.sh: GET /readyz of a node on the s3 backend (docs/operations.md,
# "Health and readiness probes"), against the RGW of the s3 part: ready
# while the bucket answers; on a bucket of its own that is then removed,
# 503 within the check's cache time, with a reason that names neither the
# endpoint nor the bucket (the log has the detail), while /healthz stays
# 200.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_s3_env s3
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
BUCKET="mlreg-probes-$$-$(date +%s)"
"$MLREG" key generate --no-password --out "$TMP/log" >/dev/null 2>&1 || not_ok "mlreg key generate makes the log key"
jq_is() { jq -e "$1" "$TMP/body" >/dev/null; }
# readyz_until WANT SECONDS: polls GET /readyz until it answers WANT; the
# last status in ST.
readyz_until() {
    _end=$(($(date +%s) + $2))
    while :; do
        ST=$(http_status GET /readyz)
        [ "$ST" = "$1" ] && return 0
        [ "$(date +%s)" -ge "$_end" ] && return 1
        sleep 0.2
    done
}

# The follower polls once a minute here: it would otherwise find the log
# gone first and stop at it (the shared-log reason, test_cluster.sh's
# part), and this test is about the object store check.
if ! $AWS s3 mb "s3://$BUCKET" >/dev/null 2>&1; then
    not_ok "aws s3 mb makes a bucket of this test's own"
    finish
fi
printf '{"storage":{"backend":"s3","endpoint":"%s","bucket":"%s","region":"%s",
  "prefix":"probes/","path_style":true,"retry_base_ms":20,"retry_max_ms":200},
  "cluster":{"ready_max_lag":50,"poll_ms":60000},
  "audit":{"log_key_file":"%s"}}\n' \
    "$S3_ENDPOINT" "$BUCKET" "${S3_REGION:-us-east-1}" "$TMP/log.key" >"$TMP/s3.json"
start_server --config "$TMP/s3.json" || { $AWS s3 rb --force "s3://$BUCKET" >/dev/null 2>&1; finish; }

expect_status "GET /readyz on the s3 backend" 200 GET /readyz
check "... is ready" jq_is '.status == "ready"'
# a burst of probes (the cache of the check: check_s3_backend counts its requests)
i=0
n200=0
while [ $i -lt 20 ]; do
    [ "$(http_status GET /readyz)" = 200 ] && n200=$((n200 + 1))
    i=$((i + 1))
done
check "20 probes in a row all answer 200 (got $n200)" [ "$n200" = 20 ]
run "$MLREG" push probes/m@1.0 --weights "$TMP/log.pub" --git-sha 0123456789abcdef0123456789abcdef01234567
expect_rc "a push through the node works" 0
expect_status "the node is still ready after the push" 200 GET /readyz

# the bucket goes away under the node
$AWS s3 rb --force "s3://$BUCKET" >/dev/null 2>&1 || not_ok "aws s3 rb removes the test's bucket"
if readyz_until 503 12; then ok "with its bucket removed, /readyz answers 503 within 12 s"; else
    not_ok "with its bucket removed, /readyz answers 503 within 12 s (last $ST: $(cat "$TMP/body"))"; fi
check "... not ready, saying the object store refuses ($(cat "$TMP/body"))" \
    jq_is '.status == "not ready" and (.reason | test("object store"))'
check "... naming neither the endpoint nor the bucket" \
    sh -c "! grep -qF -e '$BUCKET' -e '$S3_ENDPOINT' '$TMP/body'"
expect_status "... while /healthz stays 200" 200 GET /healthz
check "the server log has the detail" wait_log "^mlreg: not ready: object store check: "
stop_server

finish
