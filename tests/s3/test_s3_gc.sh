#!/bin/sh
# test_s3_gc.sh: garbage collection on the s3 backend (docs/lifecycle.md),
# two `mlreg serve` nodes A and B on one bucket prefix of the RGW of the s3
# part (env from tests/run.sh), checked with the CLI, curl and the AWS CLI:
# - the blobs a refused push left are kept within gc.grace and
#   collected after it (head-object: gone); a release's blobs and its
#   signature are never collected; --dry-run lists exactly what the real
#   run deletes; B answers 404 for a collected blob too;
# - multipart uploads and temp objects under <prefix>uploads/ begun longer
#   ago than gc.stale_upload_age are aborted / deleted and counted in
#   stale_uploads; a younger one is left alone;
# - collections on A race pushes through B that reuse old unreferenced
#   blobs: every push that succeeded pulls and verifies through both nodes,
#   and B agrees with A (cluster head, blob HEADs, release listings).
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

need_s3_env s3
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"
AWS="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region ${S3_REGION:-us-east-1}"
W=$TMP/work
mkdir -p "$W"
# the checks that a blob younger than GRACE or a write younger than STALE
# is left alone run a few AWS CLI and mlreg calls after it was made: both
# leave room for a busy machine
GRACE=8
STALE=10
GIT=0123456789abcdef0123456789abcdef01234567

# cli N CMD...: `mlreg CMD...` against node N; output in $TMP/out, $TMP/err, RC.
cli() {
    _node=$1; shift
    (cd "$TMP" && MLREG_URL=$(node_url "$_node") "$MLREG" "$@") >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
obj_exists() { $AWS s3api head-object --bucket "$S3_BUCKET" --key "$1" >/dev/null 2>&1; }
blob_key() { echo "${PREFIX}blobs/sha256/${1#sha256:}"; }
# blob_status N DIGEST: the status of HEAD of the blob in repo m/keep on node N
blob_status() {
    curl -s -o /dev/null -w '%{http_code}' -I "$(node_url "$1")/v2/${3:-m/keep}/blobs/$2"
}
# uploads: the keys of the open multipart uploads under the prefix, one a line
uploads() {
    $AWS s3api list-multipart-uploads --bucket "$S3_BUCKET" --prefix "${PREFIX}uploads/" \
        --query 'Uploads[].Key' --output text 2>/dev/null | tr '\t' '\n' | grep -v '^None$'
}
# temp_name: a name for an in-progress write begun now (storage/blob_s3.c)
temp_name() {
    printf '%s%012d-%s' "${PREFIX}uploads/" "$(date +%s)" \
        "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}
# open_upload KEY: a multipart upload on KEY with one part; its id in UPLOAD_ID
open_upload() {
    UPLOAD_ID=$($AWS s3api create-multipart-upload --bucket "$S3_BUCKET" --key "$1" \
        --query UploadId --output text 2>/dev/null) || return 1
    head -c 1024 /dev/urandom >"$W/part"
    $AWS s3api upload-part --bucket "$S3_BUCKET" --key "$1" --upload-id "$UPLOAD_ID" \
        --part-number 1 --body "$W/part" >/dev/null 2>&1
}
deleted_of() { jq -r '.deleted[].digest' "$1" | sort; }
T0=$(date +%s)

make_log_key log || cluster_finish
"$MLREG" key generate --no-password --out "$W/bot" >/dev/null 2>&1 || not_ok "key generate (release key)"
new_prefix PREFIX
write_node_config "$W/c.json" "$PREFIX" "$TMP/log.key" \
    ',"gc":{"grace":'$GRACE',"stale_upload_age":'$STALE'},
  "trusted_keys":[{"name":"release-bot","file":"'"$W/bot.pub"'","role":"release"}]'
for n in 1 2; do start_node $n "$W/c.json" || cluster_finish; done
echo "# node A $(node_url 1), node B $(node_url 2), prefix $PREFIX"

# ---- a release, its signature, and a refused push ---------------------------
printf '{"metrics":{"accuracy":0.9}}\n' >"$W/report.json"
head -c 300000 /dev/urandom >"$W/w1.bin"
head -c 200000 /dev/urandom >"$W/w2.bin"
W1=sha256:$(sha256_of "$W/w1.bin")
W2=sha256:$(sha256_of "$W/w2.bin")
cli 1 push m/keep@1.0 --weights "$W/w1.bin" --eval-report "$W/report.json" --git-sha $GIT
expect_rc "push m/keep@1.0 through A" 0
$AWS s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${PREFIX}blobs/" \
    --query 'Contents[].Key' --output text | tr '\t' '\n' | sort >"$W/before-sign"
cli 1 sign m/keep@1.0 --key "$W/bot.key"
expect_rc "sign m/keep@1.0 through A" 0
$AWS s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${PREFIX}blobs/" \
    --query 'Contents[].Key' --output text | tr '\t' '\n' | sort >"$W/after-sign"
comm -13 "$W/before-sign" "$W/after-sign" >"$W/sig-keys"
check "the signature added objects to the store ($(wc -l <"$W/sig-keys"))" test -s "$W/sig-keys"

# ---- a refused push, then writes a node left behind in <prefix>uploads/ -----
# Each collection that must see something young runs right after it was
# made: the grace period and the stale age are a few seconds.
printf '{"metrics":{"accuracy":"high"}}\n' >"$W/bad.json"
BAD=sha256:$(sha256_of "$W/bad.json")
cli 1 push m/keep@1.1 --weights "$W/w2.bin" --eval-report "$W/bad.json" --git-sha $GIT
expect_rc "mlreg push refuses an eval report without a metric before any upload" 2
# what a push that never got its manifest in leaves: its blobs, by hand
for f in w2.bin bad.json; do
    st=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$W/$f" \
        "$(node_url 1)/v2/m/keep/blobs/uploads/?digest=sha256:$(sha256_of "$W/$f")")
    check "an upload of $f without a manifest is stored ($st)" [ "$st" = 201 ]
done
check "the refused push left its weights as an object" obj_exists "$(blob_key "$W2")"
cli 1 gc --json
expect_rc "gc inside the grace period" 0
cp "$TMP/out" "$W/young.json"
check "... deletes nothing" [ "$(jq .deleted_blobs "$W/young.json")" = 0 ]
check "... counts the refused push's blobs young ($(jq .blobs_young "$W/young.json"))" \
    [ "$(jq .blobs_young "$W/young.json")" -ge 2 ]
check "... the orphan object is still there" obj_exists "$(blob_key "$W2")"

OLD_BEGIN=$(date +%s)
OLD_KEY=$(temp_name)
check "a multipart upload with one part under uploads/" open_upload "$OLD_KEY"
OLD_TEMP=$(temp_name)
$AWS s3api put-object --bucket "$S3_BUCKET" --key "$OLD_TEMP" --body "$W/report.json" >/dev/null 2>&1 ||
    not_ok "put a temp object under uploads/"
OLD_MADE=$(date +%s)
# (a dry run: the refused push's blobs may be past their grace by now)
cli 1 gc --dry-run --json
expect_rc "gc --dry-run before gc.stale_upload_age" 0
# Only meaningful while the upload is younger than STALE when the dry run
# ends: on a machine so busy that setting up took longer, skip, do not guess.
if [ "$(date +%s)" -lt $((OLD_BEGIN + STALE)) ]; then
    check "... would remove no write younger than it ($(jq .stale_uploads "$TMP/out"))" \
        [ "$(jq .stale_uploads "$TMP/out")" = 0 ]
else
    ok "... would remove no write younger than it # SKIP the setup took $(($(date +%s) - OLD_BEGIN)) s, more than gc.stale_upload_age"
fi

# until both are older than STALE (a second more for the clocks' rounding)
while [ "$(date +%s)" -lt $((OLD_MADE + STALE + 2)) ]; do sleep 0.2; done
cli 1 gc --dry-run --json
expect_rc "gc --dry-run after the grace period" 0
cp "$TMP/out" "$W/dry.json"
deleted_of "$W/dry.json" >"$W/dry.list"
check "the dry run lists the refused push's weights" grep -qx "$W2" "$W/dry.list"
check "... and its eval report" grep -qx "$BAD" "$W/dry.list"
check "... not the release's weights" sh -c "! grep -qx '$W1' '$W/dry.list'"
check "... counts the stale upload and temp object ($(jq .stale_uploads "$W/dry.json"))" \
    [ "$(jq .stale_uploads "$W/dry.json")" = 2 ]
check "... deletes nothing" obj_exists "$(blob_key "$W2")"
uploads >"$W/uploads1"
check "... aborts nothing" grep -qx "$OLD_KEY" "$W/uploads1"

NEW_KEY=$(temp_name)
check "a second, fresh multipart upload" open_upload "$NEW_KEY"
NEW_ID=$UPLOAD_ID
cli 1 gc --json
expect_rc "gc after the grace period" 0
cp "$TMP/out" "$W/real.json"
deleted_of "$W/real.json" >"$W/real.list"
check "the real run deletes exactly what the dry run listed" cmp -s "$W/dry.list" "$W/real.list"
check "... counts the same stale writes ($(jq .stale_uploads "$W/real.json"))" \
    [ "$(jq .stale_uploads "$W/real.json")" = 2 ]
check "head-object: the orphan weights are gone" sh -c "! $AWS s3api head-object --bucket '$S3_BUCKET' --key '$(blob_key "$W2")' >/dev/null 2>&1"
check "head-object: the orphan eval report is gone" sh -c "! $AWS s3api head-object --bucket '$S3_BUCKET' --key '$(blob_key "$BAD")' >/dev/null 2>&1"
# one listing, not a head-object per key (each AWS CLI start costs a second)
$AWS s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${PREFIX}blobs/" \
    --query 'Contents[].Key' --output text | tr '\t' '\n' | sort >"$W/after-gc"
missing=$(comm -23 "$W/after-sign" "$W/after-gc" | grep -vxF -e "$(blob_key "$W2")" -e "$(blob_key "$BAD")" | tr '\n' ' ')
check "every object of the release and its signature is still there (missing:$missing)" \
    [ -z "$missing" ]
uploads >"$W/uploads2"
check "list-multipart-uploads: the stale upload was aborted" sh -c "! grep -qx '$OLD_KEY' '$W/uploads2'"
check "list-multipart-uploads: the fresh upload is left alone" grep -qx "$NEW_KEY" "$W/uploads2"
check "head-object: the stale temp object is gone" sh -c "! $AWS s3api head-object --bucket '$S3_BUCKET' --key '$OLD_TEMP' >/dev/null 2>&1"
check "HEAD of the collected blob on A answers 404" [ "$(blob_status 1 "$W2")" = 404 ]
wait_applied 2 "$(cluster_json 1 | jq -r .applied)" 10
check "HEAD of the collected blob on B answers 404" [ "$(blob_status 2 "$W2")" = 404 ]
check "HEAD of the release's weights on B answers 200" [ "$(blob_status 2 "$W1")" = 200 ]
cli 2 verify m/keep@1.0 --trusted-key "$W/bot.pub"
expect_rc "m/keep@1.0 and its signature verify through B" 0
cli 1 pull m/keep@1.0 -o "$W/pull-keep"
expect_rc "m/keep@1.0 pulls through A" 0
cli 1 gc --json
check "a second run finds nothing to delete" [ "$(jq .deleted_blobs "$TMP/out")" = 0 ]

# ---- collections on A racing pushes through B -------------------------------
# A pool of blobs is uploaded through B and left unreferenced until it is
# past the grace period; pushes through B then reuse them (the CLI's HEAD
# finds them and skips the upload) while A collects back to back. A push
# may fail (its blob was condemned between its HEAD and its manifest) and
# then says why; every push that succeeded must pull through both nodes.
POOL=5
i=1
while [ $i -le $POOL ]; do
    head -c 40000 /dev/urandom >"$W/pool$i.bin"
    MLREG_URL=$(node_url 2) post_blob m/race "$W/pool$i.bin" >/dev/null ||
        not_ok "upload pool blob $i through B"
    i=$((i + 1))
done
sleep $((GRACE + 1))
(
    n=0
    while [ ! -f "$W/race.stop" ]; do
        MLREG_URL=$(node_url 1) "$MLREG" gc --json >"$W/race.gc.$n" 2>&1 || echo "gc $n failed" >>"$W/race.gcfail"
        n=$((n + 1))
    done
    echo "$n" >"$W/race.gcs"
) &
GC_PID=$!
ok_pushes=""
v=1
while [ $v -le 8 ]; do
    a=$(( (v % POOL) + 1 )); b=$(( ((v + 2) % POOL) + 1 ))
    head -c 1000 /dev/urandom >"$W/own$v.bin"
    if (cd "$TMP" && MLREG_URL=$(node_url 2) "$MLREG" push "m/race@$v" --weights "$W/pool$a.bin" \
        --weights "$W/pool$b.bin" --config "$W/own$v.bin" --eval-report "$W/report.json" \
        --git-sha $GIT) >"$W/race.push.$v" 2>&1; then
        ok_pushes="$ok_pushes $v"
    fi
    v=$((v + 1))
done
touch "$W/race.stop"
wait "$GC_PID"
deleted_total=0
for f in "$W"/race.gc.*; do
    d=$(jq -r '.deleted_blobs // 0' "$f" 2>/dev/null || echo 0)
    deleted_total=$((deleted_total + d))
done
reused=$(cat "$W"/race.push.* | grep -c 'already present' || true)
echo "# race: $(cat "$W/race.gcs") collections on A deleted $deleted_total blob(s); pushes through B that succeeded:$ok_pushes; files found already present: $reused"
check "no collection failed during the race" test ! -e "$W/race.gcfail"
check "some pushes succeeded during the race" [ -n "$ok_pushes" ]
for v in $(seq 1 8); do
    case " $ok_pushes " in *" $v "*) ;; *)
        grep -q 'mlreg push' "$W/race.push.$v" ||
            { not_ok "failed push $v says why"; cat "$W/race.push.$v"; } ;;
    esac
done
check "B applied every entry A has" wait_applied 2 "$(cluster_json 1 | jq -r .applied)" 10
check "A applied every entry B has" wait_applied 1 "$(cluster_json 2 | jq -r .applied)" 10
bad=""
for v in $ok_pushes; do
    for n in 1 2; do
        cli $n pull "m/race@$v" -o "$W/rpull$v.$n"
        [ "$RC" = 0 ] || { bad="$bad $v@node$n"; cat "$TMP/err"; }
    done
done
check "every release pushed during the race pulls and verifies through A and B (bad:$bad)" [ -z "$bad" ]
ja=$(cluster_json 1 | jq -c '{applied, head}')
jb=$(cluster_json 2 | jq -c '{applied, head}')
check "GET /api/v1/cluster: A and B are at the same entry ($ja / $jb)" [ "$ja" = "$jb" ]
paths="/v2/m/race/tags/list /api/v1/models/m/race /v2/m/keep/tags/list"
for d in $W1 $W2 $BAD; do paths="$paths /v2/m/keep/blobs/$d"; done
i=1
while [ $i -le $POOL ]; do
    paths="$paths /v2/m/race/blobs/sha256:$(sha256_of "$W/pool$i.bin")"
    i=$((i + 1))
done
heads=""
for p in $paths; do
    case $p in */blobs/*)
        sa=$(curl -s -o /dev/null -w '%{http_code}' -I "$(node_url 1)$p")
        sb=$(curl -s -o /dev/null -w '%{http_code}' -I "$(node_url 2)$p")
        [ "$sa" = "$sb" ] || heads="$heads $p:$sa/$sb" ;;
    esac
done
check "blob HEADs answer the same on A and B (differ:$heads)" [ -z "$heads" ]
same_answers "A and B list the same releases" 1 2 /v2/m/race/tags/list /api/v1/models/m/race \
    /v2/m/keep/tags/list
$AWS s3api abort-multipart-upload --bucket "$S3_BUCKET" --key "$NEW_KEY" --upload-id "$NEW_ID" \
    >/dev/null 2>&1
echo "# test_s3_gc: $(( $(date +%s) - T0 )) s"
cluster_finish
