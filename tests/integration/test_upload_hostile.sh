#!/bin/sh
# Upload sessions under abuse (conf/README.md, limits.upload_*,
# limits.max_upload_bytes): one token opening sessions must not lock other
# tokens out of chunked uploads, a session belongs to the token that opened
# it, no upload grows past the size limit, and idle sessions are dropped
# with their temp files.
. "$(dirname "$0")/lib.sh"

T_A=$(tok)
T_B=$(tok)
IDLE_S=5
MAX=65536
cat >"$TMP/cfg.json" <<EOF
{ "tokens": [ { "name": "ci-a", "sha256": "$(hash "$T_A")", "roles": ["push", "read"] },
              { "name": "ci-b", "sha256": "$(hash "$T_B")", "roles": ["push", "read"] } ],
  "limits": { "upload_sessions_per_identity": 3, "upload_sessions_per_repository": 4,
              "upload_idle_seconds": $IDLE_S, "max_upload_bytes": $MAX } }
EOF
start_server --config "$TMP/cfg.json" || finish

code_is() { [ "$(jq -r '.errors[0].code' "$TMP/body" 2>/dev/null)" = "$1" ]; }
tmp_count() { find "$DATA/blobs/tmp" -type f 2>/dev/null | wc -l | tr -d ' '; }
blob_count() { find "$DATA/blobs/sha256" -type f 2>/dev/null | wc -l | tr -d ' '; }
upload_path() { header Location | sed 's|^https\?://[^/]*||'; }
# start_session TOKEN REPO: opens a session, prints its path (or the status on failure)
start_session() {
    st=$(http_status POST "/v2/$2/blobs/uploads/" -H "Authorization: Bearer $1")
    if [ "$st" = 202 ]; then upload_path; else echo "status-$st"; fi
}
as_a() { echo "-H"; echo "Authorization: Bearer $T_A"; }

# ---- quotas: the one over its quota gets 429, nobody else ------------------------
A1=$(start_session "$T_A" r)
A2=$(start_session "$T_A" r)
A3=$(start_session "$T_A" r)
check "ci-a opens 3 sessions in r" sh -c "case '$A1$A2$A3' in *status*) exit 1;; esac"
st=$(http_status POST "/v2/other/blobs/uploads/" -H "Authorization: Bearer $T_A")
retry=$(header Retry-After)
check "ci-a's 4th session is refused: 429 TOOMANYREQUESTS" sh -c "[ $st = 429 ]" && code_is TOOMANYREQUESTS
check "with Retry-After of at most the idle timeout ($retry)" \
    sh -c "[ -n '$retry' ] && [ '$retry' -ge 1 ] && [ '$retry' -le $IDLE_S ]"
check "the refusal names the quota" grep -q "most one identity may" "$TMP/body"
check "the refused request opened no temp file" [ "$(tmp_count)" = 3 ]
B1=$(start_session "$T_B" r)
check "ci-b still opens a session in r (4th of the repository)" sh -c "case '$B1' in status*) exit 1;; esac"
st=$(http_status POST "/v2/r/blobs/uploads/" -H "Authorization: Bearer $T_B")
check "r is at its repository quota: ci-b's next one there is 429" sh -c "[ $st = 429 ]" &&
    grep -q "repository r has 4 upload sessions" "$TMP/body"
B2=$(start_session "$T_B" s)
check "ci-b opens a session in another repository" sh -c "case '$B2' in status*) exit 1;; esac"

# ci-b completes a chunked upload while ci-a sits at its quota
printf 'chunk one|' >"$TMP/c1"
printf 'chunk two' >"$TMP/c2"
cat "$TMP/c1" "$TMP/c2" >"$TMP/whole"
D_WHOLE=sha256:$(sha256_of "$TMP/whole")
n1=$(wc -c <"$TMP/c1" | tr -d ' ')
n2=$(wc -c <"$TMP/c2" | tr -d ' ')
expect_status "ci-b PATCHes a first chunk" 202 PATCH "$B2" -H "Authorization: Bearer $T_B" \
    -H "Content-Type: application/octet-stream" -H "Content-Range: 0-$((n1 - 1))" \
    --data-binary @"$TMP/c1"
expect_status "and PUTs the last one: 201" 201 PUT "$B2?digest=$D_WHOLE" \
    -H "Authorization: Bearer $T_B" -H "Content-Type: application/octet-stream" \
    -H "Content-Range: $n1-$((n1 + n2 - 1))" --data-binary @"$TMP/c2"

# ---- a session belongs to the token that opened it --------------------------------
expect_status "ci-b cannot PATCH ci-a's session: 404" 404 PATCH "$A1" \
    -H "Authorization: Bearer $T_B" -H "Content-Type: application/octet-stream" \
    --data-binary @"$TMP/c1"
check "  BLOB_UPLOAD_UNKNOWN" code_is BLOB_UPLOAD_UNKNOWN
expect_status "nor read its status: 404" 404 GET "$A1" -H "Authorization: Bearer $T_B"
expect_status "nor cancel it: 404" 404 DELETE "$A1" -H "Authorization: Bearer $T_B"
expect_status "ci-a still can: 204 at offset 0" 204 GET "$A1" -H "Authorization: Bearer $T_A"

# ---- the size limit ----------------------------------------------------------------
head -c $((MAX + 1)) /dev/zero >"$TMP/big"
D_BIG=sha256:$(sha256_of "$TMP/big")
blobs_before=$(blob_count)
expect_status "a PATCH declaring more than max_upload_bytes: 413" 413 PATCH "$A1" \
    -H "Authorization: Bearer $T_A" -H "Content-Type: application/octet-stream" \
    --data-binary @"$TMP/big"
check "  SIZE_INVALID, naming the limit" code_is SIZE_INVALID && grep -q "$MAX bytes" "$TMP/body"
expect_status "  and the session is untouched (offset 0)" 204 GET "$A1" \
    -H "Authorization: Bearer $T_A"
check "  Range 0-0 after it" [ "$(header Range)" = "0-0" ]
expect_status "a chunked PATCH growing past the limit: 413" 413 PATCH "$A2" \
    -H "Authorization: Bearer $T_A" -H "Content-Type: application/octet-stream" \
    -H "Transfer-Encoding: chunked" --data-binary @"$TMP/big"
expect_status "  and that session is gone" 404 GET "$A2" -H "Authorization: Bearer $T_A"
expect_status "a monolithic POST over the limit: 413 before its body is read" 413 POST \
    "/v2/s/blobs/uploads/?digest=$D_BIG" -H "Authorization: Bearer $T_B" \
    -H "Content-Type: application/octet-stream" --data-binary @"$TMP/big"
expect_status "a chunked monolithic POST over the limit: 413" 413 POST \
    "/v2/s/blobs/uploads/?digest=$D_BIG" -H "Authorization: Bearer $T_B" \
    -H "Content-Type: application/octet-stream" -H "Transfer-Encoding: chunked" \
    --data-binary @"$TMP/big"
check "nothing over the limit was stored" [ "$(blob_count)" = "$blobs_before" ]
head -c "$MAX" /dev/zero >"$TMP/max"
D_MAX=sha256:$(sha256_of "$TMP/max")
expect_status "exactly max_upload_bytes is accepted: 201" 201 POST \
    "/v2/s/blobs/uploads/?digest=$D_MAX" -H "Authorization: Bearer $T_B" \
    -H "Content-Type: application/octet-stream" --data-binary @"$TMP/max"

# ---- idle sessions expire, temp files and all --------------------------------------
B3=$(start_session "$T_B" s)
expect_status "ci-b writes a chunk into a new session" 202 PATCH "$B3" \
    -H "Authorization: Bearer $T_B" -H "Content-Type: application/octet-stream" \
    --data-binary @"$TMP/c1"
check "open sessions hold temp files" [ "$(tmp_count)" -ge 3 ]
i=0
while [ "$(tmp_count)" != 0 ] && [ $i -lt $(((IDLE_S + 3) * 10)) ]; do sleep 0.1; i=$((i + 1)); done
check "within the idle timeout + 2s every idle session's temp file is gone" [ "$(tmp_count)" = 0 ]
check "the server logs what it dropped" wait_log "dropped [0-9]* idle upload sessions\?"
expect_status "an expired session is unknown: 404" 404 GET "$B3" -H "Authorization: Bearer $T_B"
A4=$(start_session "$T_A" r)
check "ci-a can open sessions again" sh -c "case '$A4' in status*) exit 1;; esac"

# ---- config ------------------------------------------------------------------------
limits_refused '"upload_sessions_per_identity": 0' '"upload_idle_seconds": 100000' \
    '"max_upload_bytes": 0' '"upload_sessions_per_repository": 5000'

finish
