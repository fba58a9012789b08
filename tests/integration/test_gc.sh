#!/bin/sh
# test_gc.sh: garbage collection end to end (docs/lifecycle.md) against the
# real server: the blobs a refused push left behind are collected only after
# the grace period, nothing referenced is collected, --dry-run lists exactly
# what the real run deletes, a collected blob is uploaded again by the next
# push, the entries are in the audit log and it still verifies, roles are
# enforced; and a collection racing pushes that reuse old unreferenced blobs
# never leaves a release naming a blob whose bytes are gone.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
GRACE=3

newtok() { # NAME ROLE...: the token in $W/NAME.tok, the config entry in $W/NAME.entry
    name=$1; shift
    roles=""
    for r in "$@"; do roles="$roles --role $r"; done
    # shellcheck disable=SC2086
    "$MLREG" token new --name "$name" $roles >"$W/$name.out" 2>"$W/$name.err" ||
        { not_ok "token new $name"; cat "$W/$name.err"; }
    sed -n 1p "$W/$name.out" >"$W/$name.tok"
    sed -n 2p "$W/$name.out" >"$W/$name.entry"
}
newtok ops admin
newtok ci push read
cat >"$W/config.json" <<EOF
{
  "gc": { "grace": $GRACE, "stale_upload_age": "1h" },
  "tokens": [ $(cat "$W/ops.entry"), $(cat "$W/ci.entry") ]
}
EOF
start_server --config "$W/config.json" || finish
ADMIN=$(cat "$W/ops.tok")
CI=$(cat "$W/ci.tok")
as() { # TOKEN CMD...: runs mlreg CMD with TOKEN, output in $TMP/out and $TMP/err
    t=$1; shift
    (cd "$TMP" && MLREG_TOKEN=$t "$MLREG" "$@") >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
blob_file() { echo "$DATA/blobs/sha256/$(echo "$1" | cut -c8-9)/$(echo "$1" | cut -c8-)"; }
# the digests a gc report lists under "deleted", sorted, one per line
deleted_of() { jq -r '.deleted[].digest' "$1" | sort; }

printf '{"metrics":{"accuracy":0.9}}\n' >"$W/report.json"
head -c 300000 /dev/urandom >"$W/w1.bin"
head -c 200000 /dev/urandom >"$W/w2.bin"
W1=sha256:$(sha256_of "$W/w1.bin")
W2=sha256:$(sha256_of "$W/w2.bin")

as "$CI" push m/gc@1.0 --weights "$W/w1.bin" --eval-report "$W/report.json" --git-sha abc1234
expect_rc "push 1.0" 0
# a push that never got its manifest in: its weights are in the store,
# referenced by nothing (mlreg push now refuses a bad eval report before
# any upload, so the weights go up by hand)
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $CI" \
    --data-binary @"$W/w2.bin" "$MLREG_URL/v2/m/gc/blobs/uploads/?digest=$W2")
check "an upload without a manifest is stored ($st)" [ "$st" = 201 ]
printf '{"metrics":{"accuracy":"high"}}\n' >"$W/bad.json"
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $CI" \
    --data-binary @"$W/bad.json" \
    "$MLREG_URL/v2/m/gc/blobs/uploads/?digest=sha256:$(sha256_of "$W/bad.json")")
check "... and so is its eval report ($st)" [ "$st" = 201 ]
as "$CI" push m/gc@1.1 --weights "$W/w2.bin" --eval-report "$W/bad.json" --git-sha abc1234
expect_rc "mlreg push refuses an eval report without a metric (exit 2, bad input)" 2
check "... before any upload, saying so" grep -q "refused before any upload" "$TMP/err"
check "the unfinished push left its weights in the store" test -f "$(blob_file "$W2")"

# ---- roles and bad input ----------------------------------------------------
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $CI" \
    -H 'Content-Type: application/json' -d '{}' "$MLREG_URL/api/v1/admin/gc")
check "a push token may not run gc: 403 ($st)" [ "$st" = 403 ]
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' \
    "$MLREG_URL/api/v1/admin/gc")
check "no token: 401 ($st)" [ "$st" = 401 ]
for body in '{"dry_run":"yes"}' '[1,2]' '{"dry_run":' 'not json'; do
    st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' -d "$body" "$MLREG_URL/api/v1/admin/gc")
    check "body '$body' is refused with 400 ($st)" [ "$st" = 400 ]
done
as "$CI" gc
expect_rc "mlreg gc with a push token exits 1" 1
as "$ADMIN" gc --bogus
expect_rc "mlreg gc --bogus is a usage error" 2

# ---- inside the grace period nothing goes -----------------------------------
as "$ADMIN" gc --json
expect_rc "gc inside the grace period" 0
check "... deletes nothing" [ "$(jq '.deleted_blobs' "$TMP/out")" = 0 ]
check "... counts the young blobs" [ "$(jq '.blobs_young' "$TMP/out")" -ge 2 ]

sleep $((GRACE + 1))
as "$ADMIN" gc --dry-run --json
expect_rc "gc --dry-run after the grace period" 0
cp "$TMP/out" "$W/dry.json"
deleted_of "$W/dry.json" >"$W/dry.list"
check "the dry run lists the refused push's weights" grep -qx "$W2" "$W/dry.list"
check "the dry run lists the refused push's eval report too" \
    grep -qx "sha256:$(sha256_of "$W/bad.json")" "$W/dry.list"
check "the dry run keeps the release's weights" sh -c "! grep -qx '$W1' '$W/dry.list'"
check "the dry run deletes nothing" test -f "$(blob_file "$W2")"
as "$ADMIN" gc --dry-run
check "the dry run's text names the blob" grep -q "would delete $W2" "$TMP/out"

as "$ADMIN" gc --json
expect_rc "gc after the grace period" 0
cp "$TMP/out" "$W/real.json"
deleted_of "$W/real.json" >"$W/real.list"
check "the real run deletes exactly what the dry run listed" cmp -s "$W/dry.list" "$W/real.list"
check "bytes reclaimed add up ($(jq .bytes_reclaimed "$W/real.json"))" \
    [ "$(jq .bytes_reclaimed "$W/real.json")" -ge 200000 ]
check "the orphan's file is gone" test ! -e "$(blob_file "$W2")"
check "the release's weights are still there" test -f "$(blob_file "$W1")"
check "two entries recorded (gc.collect, gc.done)" [ "$(jq '.entries | length' "$W/real.json")" = 2 ]
st=$(curl -s -o /dev/null -w '%{http_code}' -I -H "Authorization: Bearer $CI" \
    "$MLREG_URL/v2/m/gc/blobs/$W2")
check "HEAD of the collected blob answers 404 ($st)" [ "$st" = 404 ]
as "$ADMIN" gc --json
check "a second run finds nothing to delete" [ "$(jq '.deleted_blobs' "$TMP/out")" = 0 ]

as "$CI" pull m/gc@1.0 -o "$W/pull10"
expect_rc "the release still pulls and verifies" 0
as "$CI" push m/gc@1.1 --weights "$W/w2.bin" --eval-report "$W/report.json" --git-sha abc1234
expect_rc "pushing the collected file again as 1.1" 0
check "... uploaded it again" test -f "$(blob_file "$W2")"
as "$CI" pull m/gc@1.1 -o "$W/pull11"
expect_rc "1.1 pulls and verifies" 0

as "$ADMIN" audit log --json
check "the audit log has a gc.collect entry naming the blob" \
    sh -c "grep -q 'gc.collect' '$TMP/out' && grep -q '$W2' '$TMP/out'"
check "the audit log has a gc.done entry" grep -q 'gc.done' "$TMP/out"
as "$ADMIN" audit verify
expect_rc "mlreg audit verify passes after collections" 0

# ---- a collection racing pushes ---------------------------------------------
# A pool of blobs is uploaded and left unreferenced until it is past the
# grace period; then pushes that reuse them (the CLI's HEAD finds them and
# skips the upload) run while collections run back to back. A push whose
# blob was collected between its HEAD and its manifest is told so by the
# registry (MANIFEST_BLOB_UNKNOWN, or 503 for a blob being deleted) and
# uploads it again: every push succeeds, and pulls with every byte.
POOL=6
i=1
while [ $i -le $POOL ]; do
    head -c 50000 /dev/urandom >"$W/pool$i.bin"
    MLREG_TOKEN=$CI post_blob m/race "$W/pool$i.bin" >/dev/null 2>&1 ||
        curl -s -o /dev/null -X POST -H "Authorization: Bearer $CI" --data-binary @"$W/pool$i.bin" \
            "$MLREG_URL/v2/m/race/blobs/uploads/?digest=sha256:$(sha256_of "$W/pool$i.bin")"
    i=$((i + 1))
done
sleep $((GRACE + 1))
(
    n=0
    while [ ! -f "$W/race.stop" ]; do
        MLREG_TOKEN=$ADMIN "$MLREG" gc --json >"$W/race.gc.$n" 2>&1
        n=$((n + 1))
    done
    echo "$n" >"$W/race.gcs"
) &
GC_PID=$!
ok_pushes=""
v=1
while [ $v -le 24 ]; do
    a=$(( (v % POOL) + 1 )); b=$(( ((v + 2) % POOL) + 1 ))
    head -c 1000 /dev/urandom >"$W/own$v.bin"
    if (cd "$TMP" && MLREG_TOKEN=$CI "$MLREG" push "m/race@$v" --weights "$W/pool$a.bin" \
        --weights "$W/pool$b.bin" --config "$W/own$v.bin" --eval-report "$W/report.json" \
        --git-sha abc1234) >"$W/race.push.$v" 2>&1; then
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
echo "# race: $(cat "$W/race.gcs") collections deleted $deleted_total blob(s); pushes that succeeded:$ok_pushes; files found already present: $reused"
retried=$(cat "$W"/race.push.* | grep -c 'uploading what it lacks again\|trying again in' || true)
echo "# race: $retried push step(s) met a collected or collecting blob and sent it again"
check "every push succeeded during the race (24: $(echo $ok_pushes | wc -w))" \
    [ "$(echo $ok_pushes | wc -w)" = 24 ]
bad=""
for v in $ok_pushes; do
    (cd "$TMP" && MLREG_TOKEN=$CI "$MLREG" pull "m/race@$v" -o "$W/rpull$v") >"$W/rpull.$v.out" 2>&1 ||
        { bad="$bad $v"; cat "$W/rpull.$v.out"; }
done
check "every release pushed during the race pulls and verifies (bad:$bad)" [ -z "$bad" ]
for v in $(seq 1 24); do
    case " $ok_pushes " in *" $v "*) ;; *)
        grep -q 'mlreg push' "$W/race.push.$v" ||
            { not_ok "failed push $v says why"; cat "$W/race.push.$v"; } ;;
    esac
done
sleep $((GRACE + 1))
as "$ADMIN" gc --json
expect_rc "a collection after the race" 0
for v in $ok_pushes; do
    (cd "$TMP" && MLREG_TOKEN=$CI "$MLREG" pull "m/race@$v" -o "$W/rpull2$v") >/dev/null 2>&1 ||
        bad="$bad $v"
done
check "... and after a last collection every release still pulls (bad:$bad)" [ -z "$bad" ]
# ---- a push whose file is collected before its manifest lands -------------------
# The push finds X in the registry (an old unreferenced upload) and skips it;
# while it uploads a large second file it is stopped, a collection deletes
# X, and it goes on: the registry refuses the manifest (MANIFEST_BLOB_UNKNOWN)
# and the push uploads X again and succeeds.
head -c 30000 /dev/urandom >"$W/lost-x.bin"
head -c 200000000 /dev/zero >"$W/lost-y.bin"
XD=$(sha256_of "$W/lost-x.bin")
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $CI" \
    --data-binary @"$W/lost-x.bin" "$MLREG_URL/v2/m/lost/blobs/uploads/?digest=sha256:$XD")
check "upload of the file the push will find: 201 (got $code)" [ "$code" = 201 ]
sleep $((GRACE + 1))
(cd "$TMP" && MLREG_TOKEN=$CI exec "$MLREG" push m/lost@1 --weights "$W/lost-x.bin" \
    --file "other=$W/lost-y.bin" --eval-report "$W/report.json" --git-sha abc1234) \
    >"$W/lost.out" 2>"$W/lost.err" &
PUSH_PID=$!
i=0
until grep -q "HEAD /v2/m/lost/blobs/sha256:$XD 200" "$TMP/server.log" || [ $i -gt 1500 ]; do
    sleep 0.01; i=$((i + 1))
done
kill -STOP "$PUSH_PID"
as "$ADMIN" gc --json
jq -e --arg d "sha256:$XD" '[.deleted[].digest] | index($d) != null' "$TMP/out" >/dev/null
lost_collected=$?
kill -CONT "$PUSH_PID"
wait "$PUSH_PID"
lost_rc=$?
check "the collection took the file the stopped push had found" [ "$lost_collected" = 0 ]
check "the push goes on and succeeds (exit $lost_rc: $(tail -n 1 "$W/lost.err"))" [ "$lost_rc" = 0 ]
check "... after the registry named the lost file and it was uploaded again" sh -c \
    "grep -q 'MANIFEST_BLOB_UNKNOWN' '$W/lost.err' && grep -q 'uploading what it lacks again' '$W/lost.err'"
(cd "$TMP" && MLREG_TOKEN=$CI "$MLREG" pull m/lost@1 -o "$W/lostpull") >/dev/null 2>&1
check "the release pulls with every byte" cmp -s "$W/lost-x.bin" "$W/lostpull/lost-x.bin"
rm -f "$W/lost-y.bin" "$W/lostpull/lost-y.bin"

# ---- a large collection: the report lists 1000 blobs --------------------------
# 1003 orphans written straight into the store two days ago: the report
# lists 1000 of them and the CLI points at the audit entries for the rest.
# orphans N TAG: N blobs written into the store two days ago, linked nowhere
orphans() { python3 "$MLREG_ROOT/tests/tools/orphans.py" "$DATA/blobs/sha256" "$1" "$2"; }
orphans 1003 first
as "$ADMIN" gc --dry-run
expect_rc "gc --dry-run of 1003 orphans" 0
check "it prints 1000 of them ($(grep -c '^would delete sha256:' "$TMP/out"))" \
    [ "$(grep -c '^would delete sha256:' "$TMP/out")" = 1000 ]
check "... and says how many more" grep -qx '\.\.\. and 3 more' "$TMP/out"
as "$ADMIN" gc --json
expect_rc "gc of 1003 orphans" 0
cp "$TMP/out" "$W/large.json"
check "the report lists 1000 and says it is truncated" \
    jq -e '.deleted_blobs == 1003 and (.deleted | length) == 1000 and .deleted_listed == 1000
        and .deleted_truncated == true and .not_deleted_blobs == 0' "$W/large.json" >/dev/null
first=$(jq '.entries[0]' "$W/large.json")
last=$(jq '.entries[-1]' "$W/large.json")
curl -s -H "Authorization: Bearer $ADMIN" \
    "$MLREG_URL/api/v1/audit?since=$first&limit=$((last - first + 1))" >"$W/large.audit"
named=$(jq -r '.entries[] | fromjson | select(.action == "gc.collect") | .details.blobs[].digest' \
    "$W/large.audit" | sort -u | wc -l)
check "its gc.collect entries $first..$last name all 1003 ($named)" [ "$named" = 1003 ]
jq -r '.deleted[].digest' "$W/large.json" | sort >"$W/large.listed"
jq -r '.entries[] | fromjson | select(.action == "gc.collect") | .details.blobs[].digest' \
    "$W/large.audit" | sort >"$W/large.named"
check "... every listed one among them" sh -c "[ -z \"\$(comm -23 '$W/large.listed' '$W/large.named')\" ]"
for v in $ok_pushes; do
    (cd "$TMP" && MLREG_TOKEN=$CI "$MLREG" pull "m/race@$v" -o "$W/rpull3$v") >/dev/null 2>&1 ||
        bad="$bad $v"
done
check "every release still pulls (bad:$bad)" [ -z "$bad" ]
# the text form of the same: written again, collected again
orphans 1002 second
as "$ADMIN" gc
expect_rc "gc of 1002 orphans (text)" 0
check "it prints 1000 deleted ($(grep -c '^deleted sha256:' "$TMP/out"))" \
    [ "$(grep -c '^deleted sha256:' "$TMP/out")" = 1000 ]
check "... and 2 more, naming the audit entries" \
    grep -Eqx '\.\.\. and 2 more \(audit entries [0-9]+\.\.[0-9]+\)' "$TMP/out"

st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CI" "$MLREG_URL/v2/")
check "the server survived ($st)" [ "$st" = 200 ]

finish
