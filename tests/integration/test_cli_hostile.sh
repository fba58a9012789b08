#!/bin/sh
# test_cli_hostile.sh: hostile input against the CLI and the server — path
# traversal in titles (refused by the server on push AND by the client on
# pull, the latter against a fake registry that serves whatever it is told),
# a blob corrupted on disk after push, lying registries, bad REF syntax.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

start_server || finish

W=$TMP/work
mkdir -p "$W"
head -c 65536 /dev/urandom >"$W/model.bin"
printf 'tok' >"$W/tok.txt"
OCI=application/vnd.oci.image.manifest.v1+json
EMPTY=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a

jqt() { jq -e "$@" >/dev/null; }
# listing DIR: its entries, hidden ones included, on one line.
listing() { ls -A "$1" 2>/dev/null | tr '\n' ' '; }

# release_manifest MODEL VERSION TITLE DIGEST SIZE [TITLE2 DIGEST2 SIZE2]:
# a compact release manifest with one or two weights layers.
release_manifest() {
    layers=$(jq -cn --arg t "$3" --arg d "$4" --argjson s "$5" \
        '[{mediaType:"application/vnd.mlreg.weights.v1",digest:$d,size:$s,
           annotations:{"org.opencontainers.image.title":$t,"org.mlreg.kind":"weights"}}]')
    if [ $# -ge 8 ]; then
        layers=$(echo "$layers" | jq -c --arg t "$6" --arg d "$7" --argjson s "$8" \
            '. + [{mediaType:"application/vnd.mlreg.weights.v1",digest:$d,size:$s,
                   annotations:{"org.opencontainers.image.title":$t,"org.mlreg.kind":"weights"}}]')
    fi
    jq -cn --arg m "$1" --arg v "$2" --argjson l "$layers" --arg e "$EMPTY" \
        '{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json",digest:$e,size:2},
          layers:$l,
          annotations:{"org.mlreg.model":$m,"org.mlreg.version":$v,
                       "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}'
}

# ---- the server refuses unsafe titles (pushed with curl) -------------------
MD="sha256:$(sha256_of "$W/model.bin")"
expect_status "upload the config blob with curl" 201 POST \
    "/v2/evil/model/blobs/uploads/?digest=$EMPTY" --data-binary '{}' \
    -H 'Content-Type: application/octet-stream'
expect_status "upload a weights blob with curl" 201 POST \
    "/v2/evil/model/blobs/uploads/?digest=$MD" --data-binary "@$W/model.bin" \
    -H 'Content-Type: application/octet-stream'
i=0
for title in "../evil" "a//b" "a/../b" ".." "." "/etc/passwd" ".bashrc" ".ssh" ".mlreg-tmp-x" \
    "MLREG.LOCK.JSON"; do
    i=$((i + 1))
    release_manifest evil/model "1.0.$i" "$title" "$MD" 65536 >"$TMP/hm.json"
    expect_status "server refuses a release with title '$title' (400)" 400 PUT \
        "/v2/evil/model/manifests/1.0.$i" -H "Content-Type: $OCI" --data-binary "@$TMP/hm.json"
    check "... as MANIFEST_INVALID" jqt '.errors[0].code == "MANIFEST_INVALID"' "$TMP/body"
    case $title in .[!.]*)
        check "... saying a title may not start with '.'" \
            jqt '.errors[0].message | test("may not start with")' "$TMP/body" ;;
    esac
    expect_status "nothing stored under 1.0.$i" 404 GET "/v2/evil/model/manifests/1.0.$i" \
        -H "Accept: $OCI"
done
release_manifest evil/model 1.0.20 same.bin "$MD" 65536 same.bin "$MD" 65536 >"$TMP/hm.json"
expect_status "server refuses a release with duplicate titles (400)" 400 PUT \
    "/v2/evil/model/manifests/1.0.20" -H "Content-Type: $OCI" --data-binary "@$TMP/hm.json"
# A.bin and a.bin are one file on a case-insensitive filesystem (macOS, SMB, casefold)
release_manifest evil/model 1.0.21 A.bin "$MD" 65536 a.bin "$MD" 65536 >"$TMP/hm.json"
expect_status "server refuses a release with titles A.bin and a.bin (400)" 400 PUT \
    "/v2/evil/model/manifests/1.0.21" -H "Content-Type: $OCI" --data-binary "@$TMP/hm.json"
check "... as MANIFEST_INVALID, saying they differ only in case" \
    jqt '.errors[0].code == "MANIFEST_INVALID" and
         (.errors[0].message | test("differ only in letter case"))' "$TMP/body"
expect_status "... nothing stored under 1.0.21" 404 GET "/v2/evil/model/manifests/1.0.21" \
    -H "Accept: $OCI"

# ---- push refuses a title the server would refuse, before uploading -----------
cp "$W/model.bin" "$W/.hidden"
run "$MLREG" push team/hidden@1.0.0 --weights "$W/.hidden"
expect_rc "push of a file named .hidden is a usage error" 2
check "... saying why" grep -q "may not start with '.'" "$TMP/err"
check "... and nothing reached the registry" sh -c "! grep -q 'team/hidden' '$TMP/server.log'"
expect_status "... no such release" 404 GET /v2/team/hidden/manifests/1.0.0 -H "Accept: $OCI"

mkdir -p "$W/upper" "$W/lower"
cp "$W/model.bin" "$W/upper/A.bin"
printf 'other' >"$W/lower/a.bin"
run "$MLREG" push team/case@1.0.0 --weights "$W/upper/A.bin" --weights "$W/lower/a.bin"
expect_rc "push of A.bin and a.bin is a usage error" 2
check "... saying their names differ only in case" grep -q "same title 'a.bin' but for letter case" \
    "$TMP/err"
check "... and nothing reached the registry" sh -c "! grep -q 'team/case' '$TMP/server.log'"

# ---- a blob corrupted on disk after push -----------------------------------
run "$MLREG" push team/clf@1.0.0 --weights "$W/model.bin" --tokenizer "$W/tok.txt" --git-sha abcdef1
expect_rc "push a release" 0
HEX=$(sha256_of "$W/model.bin")
BLOB=$DATA/blobs/sha256/$(echo "$HEX" | cut -c1-2)/$HEX
check "the blob is stored at blobs/sha256/<2>/<hex>" test -f "$BLOB"
run "$MLREG" pull team/clf@1.0.0 -o "$TMP/good"
expect_rc "pull before the corruption succeeds" 0
head -c 65536 /dev/urandom >"$TMP/garbage"
cat "$TMP/garbage" >"$BLOB"
mkdir -p "$TMP/dest"
echo keep >"$TMP/dest/marker"
run "$MLREG" pull team/clf@1.0.0 -o "$TMP/dest"
expect_rc "pull of a corrupted blob exits 1" 1
check "the failure names the file" grep -q "model.bin" "$TMP/err"
check "the failure says the digest did not match" grep -qi "digest" "$TMP/err"
check "nothing new in DIR after the failed pull (not even a temp file)" \
    test "$(listing "$TMP/dest")" = "marker "
run "$MLREG" pull team/clf@1.0.0 -o "$TMP/dest2"
expect_rc "pull of a corrupted blob into a new DIR exits 1" 1
check "the new DIR stays empty" test -z "$(listing "$TMP/dest2")"

# ---- a pull that cannot replace every target changes nothing ------------------
mkdir -p "$W/v1" "$W/v2"
for f in a b; do
    printf 'first %s' "$f" >"$W/v1/$f.bin"
    printf 'second %s' "$f" >"$W/v2/$f.bin"
done
run "$MLREG" push team/two@1.0.0 --weights "$W/v1/a.bin" --weights "$W/v1/b.bin"
expect_rc "push a release of a.bin and b.bin" 0
run "$MLREG" push team/two@2.0.0 --weights "$W/v2/a.bin" --weights "$W/v2/b.bin"
expect_rc "push its next version" 0
DEP=$TMP/deploy
run "$MLREG" pull team/two@1.0.0 -o "$DEP"
expect_rc "pull 1.0.0 into a deploy directory" 0
cp "$DEP/mlreg.lock.json" "$TMP/lock-1.0.0"
# unchanged WHAT: DEP still holds 1.0.0 and nothing else.
unchanged() {
    check "... $1: a.bin keeps its previous content" cmp -s "$W/v1/a.bin" "$DEP/a.bin"
    check "... $1: the previous mlreg.lock.json is untouched" cmp -s "$TMP/lock-1.0.0" \
        "$DEP/mlreg.lock.json"
    check "... $1: no temp file is left behind" \
        test "$(listing "$DEP")" = "a.bin b.bin mlreg.lock.json "
}
rm "$DEP/b.bin"
mkdir "$DEP/b.bin"
echo keep >"$DEP/b.bin/inside"
run "$MLREG" pull team/two@2.0.0 -o "$DEP"
expect_rc "pull over a directory named b.bin fails (exit 2)" 2
check "... saying b.bin is a directory and nothing changed" \
    grep -q "b.bin exists and is a directory; nothing in .* was changed" "$TMP/err"
unchanged "b.bin a directory"
check "... the directory b.bin is untouched" test "$(cat "$DEP/b.bin/inside")" = keep
rm -r "$DEP/b.bin"
cp "$W/v1/b.bin" "$DEP/b.bin"
chmod 0444 "$DEP/b.bin"
run "$MLREG" pull team/two@2.0.0 -o "$DEP"
expect_rc "pull over a read-only b.bin fails (exit 2)" 2
check "... saying b.bin is read-only" grep -q "b.bin exists and is read-only" "$TMP/err"
unchanged "b.bin read-only"
check "... b.bin keeps its previous content" cmp -s "$W/v1/b.bin" "$DEP/b.bin"
chmod 0644 "$DEP/b.bin"
rm "$DEP/mlreg.lock.json"
mkdir "$DEP/mlreg.lock.json"
run "$MLREG" pull team/two@2.0.0 -o "$DEP"
expect_rc "pull over a directory named mlreg.lock.json fails (exit 2)" 2
check "... a.bin keeps its previous content" cmp -s "$W/v1/a.bin" "$DEP/a.bin"
check "... no temp file is left behind" test "$(listing "$DEP")" = "a.bin b.bin mlreg.lock.json "
rmdir "$DEP/mlreg.lock.json"
cp "$TMP/lock-1.0.0" "$DEP/mlreg.lock.json"
run "$MLREG" pull team/two@2.0.0 -o "$DEP"
expect_rc "with the targets fixed, pull 2.0.0 succeeds" 0
check "... and replaces both files and the lock" sh -c "cmp -s '$W/v2/a.bin' '$DEP/a.bin' &&
    cmp -s '$W/v2/b.bin' '$DEP/b.bin' && grep -q '\"version\": \"2.0.0\"' '$DEP/mlreg.lock.json'"

# ---- a sticky directory (like /tmp) that is not ours ----------------------------
# There rename() over an entry another user owns fails with EPERM, whatever
# its mode (root passes by CAP_FOWNER alone): pull refuses such a target,
# a 0666 file or a symbolic link, before the first rename.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    ST=$TMP/sticky
    # sticky_refused NAME B-BIN CMD...: ST, a sticky directory of nobody's,
    # holds our a.bin of 1.0.0 and nobody's b.bin (B-BIN: "file", a 0666 file
    # of 1.0.0, or "link", a symbolic link to one); CMD, a pull of 2.0.0 into
    # ST, is refused and changes nothing.
    sticky_refused() {
        name=$1 kind=$2
        shift 2
        rm -rf "$ST"
        mkdir "$ST"
        chown nobody:nogroup "$ST"
        chmod 1777 "$ST"
        cp "$W/v1/a.bin" "$ST/a.bin"
        if [ "$kind" = link ]; then
            ln -s "$W/v1/b.bin" "$ST/b.bin"
        else
            cp "$W/v1/b.bin" "$ST/b.bin"
            chmod 0666 "$ST/b.bin"
        fi
        chown -h nobody:nogroup "$ST/b.bin"
        run "$@"
        expect_rc "$name: pull is refused (exit 2)" 2
        check "... naming b.bin and the sticky directory" \
            grep -q "sticky/b.bin belongs to another user in the sticky directory" "$TMP/err"
        check "... a.bin keeps its previous content" cmp -s "$W/v1/a.bin" "$ST/a.bin"
        check "... b.bin is untouched" sh -c "[ '$kind' = link ] && test -L '$ST/b.bin' ||
            { test ! -L '$ST/b.bin' && cmp -s '$W/v1/b.bin' '$ST/b.bin'; }"
        check "... no lock file and no temp file" test "$(listing "$ST")" = "a.bin b.bin "
    }
    sticky_refused "nobody's 0666 b.bin in a sticky dir of nobody's" file \
        "$MLREG" pull team/two@2.0.0 -o "$ST"
    if command -v setpriv >/dev/null 2>&1; then
        sticky_refused "the same without CAP_FOWNER, where the rename would fail" file \
            setpriv --bounding-set=-fowner "$MLREG" pull team/two@2.0.0 -o "$ST"
    fi
    sticky_refused "nobody's symbolic link b.bin in the sticky dir" link \
        "$MLREG" pull team/two@2.0.0 -o "$ST"
else
    echo "# not root or no user nobody: the sticky-directory case did not run"
fi

# ---- an output directory so long that DIR/<temp file name> is no valid path -------
# Pull names its temp files relative to DIR's descriptor, never as one path
# string, so nothing is cut short: the pull works, and the file at what
# would have been the cut name ("DIR/.mlreg") is a user's, left alone.
LONG=$TMP/long
while [ ${#LONG} -lt 3833 ]; do LONG=$LONG/$(printf '%0200d' 0); done
LONG=$LONG/$(printf "%0$((4088 - ${#LONG} - 1))d" 0)
mkdir -p "$LONG"
echo keep >"$LONG/.mlreg"
check "the long DIR is 4088 bytes, so DIR/.mlreg-tmp-XXXXXX is longer than PATH_MAX" \
    test ${#LONG} -eq 4088
run "$MLREG" pull team/two@2.0.0 -o "$LONG"
expect_rc "pull into a DIR too long to join with a temp file name works" 0
check "... the file at the cut name is still there" test "$(cat "$LONG/.mlreg" 2>/dev/null)" = keep
check "... and DIR holds the release and its lock, no temp file" \
    test "$(listing "$LONG")" = ".mlreg a.bin b.bin mlreg.lock.json "

# ---- bad REF syntax: exit 2 -------------------------------------------------
for ref in "team/clf" "@1.0.0" "team/clf@" "Team/Clf@1" "../etc@1" "team/clf@sha256:1234" \
    "team/clf@md5:0123456789abcdef0123456789abcdef" "team/clf@.hidden" "team clf@1"; do
    run "$MLREG" pull "$ref" -o "$TMP/bad"
    expect_rc "pull '$ref' is a usage error" 2
done
check "usage errors create no directory" test ! -e "$TMP/bad"
run "$MLREG" pull team/clf@1.0.0 -o "$TMP/bad" --bogus
expect_rc "an unknown option is a usage error" 2

# ---- the client's own checks, against a fake registry ------------------------
# The real server refuses all of the manifests below, so the client's checks
# (titles, digests, sizes, model) can only be exercised by a registry that
# lies: a tiny Python HTTP server that serves files from a route table.
if command -v python3 >/dev/null 2>&1; then
    F=$TMP/fake
    mkdir -p "$F"
    printf 'pwned' >"$F/pwned"
    PD="sha256:$(sha256_of "$F/pwned")"
    cp "$F/pwned" "$F/pwned-and-more"
    printf 'and then some more bytes' >>"$F/pwned-and-more"
    printf 'PWNED' >"$F/pwned-other"
    routes="{}"
    # add_manifest NAME REF FILE [DIGEST-HEADER]: route a manifest.
    add_manifest() {
        dh=${4:-"sha256:$(sha256_of "$3")"}
        routes=$(echo "$routes" | jq -c --arg p "/v2/$1/manifests/$2" --arg f "$3" --arg d "$dh" \
            '.[$p] = {file:$f, headers:{"Content-Type":"application/vnd.oci.image.manifest.v1+json",
                                         "Docker-Content-Digest":$d}}')
    }
    add_blob() { # NAME DIGEST FILE
        routes=$(echo "$routes" | jq -c --arg p "/v2/$1/blobs/$2" --arg f "$3" \
            '.[$p] = {file:$f, headers:{"Content-Type":"application/octet-stream"}}')
    }
    release_manifest evil/traversal 1.0.0 ../evil "$PD" 5 >"$F/traversal.json"
    add_manifest evil/traversal 1.0.0 "$F/traversal.json"
    add_blob evil/traversal "$PD" "$F/pwned"
    release_manifest evil/abs 1.0.0 /tmp/evil "$PD" 5 >"$F/abs.json"
    add_manifest evil/abs 1.0.0 "$F/abs.json"
    add_blob evil/abs "$PD" "$F/pwned"
    release_manifest evil/dotdot 1.0.0 .. "$PD" 5 >"$F/dotdot.json"
    add_manifest evil/dotdot 1.0.0 "$F/dotdot.json"
    add_blob evil/dotdot "$PD" "$F/pwned"
    release_manifest evil/dotfile 1.0.0 .bashrc "$PD" 5 >"$F/dotfile.json"
    add_manifest evil/dotfile 1.0.0 "$F/dotfile.json"
    add_blob evil/dotfile "$PD" "$F/pwned"
    release_manifest evil/lock 1.0.0 mlreg.lock.json "$PD" 5 >"$F/lock.json"
    add_manifest evil/lock 1.0.0 "$F/lock.json"
    add_blob evil/lock "$PD" "$F/pwned"
    release_manifest evil/dup 1.0.0 a.bin "$PD" 5 a.bin "$PD" 5 >"$F/dup.json"
    add_manifest evil/dup 1.0.0 "$F/dup.json"
    add_blob evil/dup "$PD" "$F/pwned"
    release_manifest evil/case 1.0.0 A.bin "$PD" 5 a.bin "$PD" 5 >"$F/case.json"
    add_manifest evil/case 1.0.0 "$F/case.json"
    add_blob evil/case "$PD" "$F/pwned"
    release_manifest evil/lockcase 1.0.0 MLREG.LOCK.JSON "$PD" 5 >"$F/lockcase.json"
    add_manifest evil/lockcase 1.0.0 "$F/lockcase.json"
    add_blob evil/lockcase "$PD" "$F/pwned"
    release_manifest evil/liar 1.0.0 a.bin "$PD" 5 >"$F/liar.json"
    add_manifest evil/liar 1.0.0 "$F/liar.json" "sha256:$(printf '%064d' 7)"
    add_blob evil/liar "$PD" "$F/pwned"
    release_manifest evil/bigger 1.0.0 a.bin "$PD" 5 >"$F/bigger.json"
    add_manifest evil/bigger 1.0.0 "$F/bigger.json"
    add_blob evil/bigger "$PD" "$F/pwned-and-more"
    release_manifest evil/swapped 1.0.0 a.bin "$PD" 5 >"$F/swapped.json"
    add_manifest evil/swapped 1.0.0 "$F/swapped.json"
    add_blob evil/swapped "$PD" "$F/pwned-other"
    release_manifest team/clf 1.0.0 a.bin "$PD" 5 >"$F/othermodel.json"
    add_manifest evil/othermodel 1.0.0 "$F/othermodel.json"
    add_blob evil/othermodel "$PD" "$F/pwned"
    release_manifest evil/good 1.0.0 a.bin "$PD" 5 >"$F/good.json"
    add_manifest evil/good 1.0.0 "$F/good.json"
    add_manifest evil/good "sha256:$(printf '%064d' 9)" "$F/good.json"
    add_blob evil/good "$PD" "$F/pwned"
    jq 'del(.artifactType)' -c "$F/good.json" | tr -d '\n' >"$F/notrelease.json"
    add_manifest evil/notrelease 1.0.0 "$F/notrelease.json"

    # ---- every field the CLI prints holds control characters -------------------
    # X: U+009B (CSI, raw UTF-8 C2 9B in the file, as jq writes it), ESC
    # (escaped, as JSON requires) and DEL; each JSON file is the answer of one
    # /api/v1 route of the model evil/c1.
    X='"\u009b31mX\u001b[2J\u007f"'
    add_api() { # "METHOD PATH" or PATH, FILE, [STATUS]
        routes=$(echo "$routes" | jq -c --arg p "$1" --arg f "$2" --argjson s "${3:-200}" \
            '.[$p] = {file:$f, status:$s, headers:{"Content-Type":"application/json"}}')
    }
    A=/api/v1/models/evil/c1
    GOOD_D="sha256:$(printf '%064d' 1)"
    jq -n "{name:$X, releases:[{version:$X, digest:$X, created:$X, git_sha:$X, files:1, size:5,
             metrics:{($X):0.9}}]}" >"$F/c1-model.json"
    add_api "$A" "$F/c1-model.json"
    jq -n "{model:$X, stages:[{stage:$X, version:$X, digest:$X, since:$X, by:$X, image:$X}]}" \
        >"$F/c1-stages.json"
    add_api "$A/stages" "$F/c1-stages.json"
    jq -n "{promotions:[{seq:1, time:$X, action:$X, to:$X, version:$X, actor:$X, passed:true,
             reason:$X}]}" >"$F/c1-promotions.json"
    add_api "GET $A/promotions" "$F/c1-promotions.json"
    jq -n "{model:$X, version:$X, digest:$X, created:$X, git_sha:$X, eval_dataset:$X,
            metrics:{($X):0.5}, metric_intervals:{($X):{ci_low:0.4, ci_high:0.6}},
            eval_dataset_digest:$X, eval_code_digest:$X,
            files:[{kind:$X, size:5, digest:$X, title:$X}]}" >"$F/c1-show.json"
    add_api "$A/versions/1.0" "$F/c1-show.json"
    jq -n "{evaluations:[{seq:5, key_id:$X, key_name:$X, role:$X, status:$X, counts:true,
            evaluated_at:$X, dataset_digest:$X, eval_code_digest:$X, metrics:{($X):0.7}}]}" \
        >"$F/c1-evals.json"
    add_api "$A/versions/1.0/evaluations" "$F/c1-evals.json"
    jq -n --arg d "$GOOD_D" "{model:\"evil/c1\", stage:\"prod\", version:\"1.0\", digest:\$d,
            since:$X, by:$X, image:$X}" >"$F/c1-resolve.json"
    add_api "$A/stages/prod" "$F/c1-resolve.json"
    jq -n "{passed:false, moved:false, dry_run:false,
            rules:[{rule:$X, type:$X, candidate:1, baseline:0.5, baseline_version:$X, delta:0.5,
                    detail:$X, passed:false}],
            baseline:{version:$X, digest:$X}, promotion:{seq:3, actor:$X, time:$X}}" \
        >"$F/c1-promote.json"
    add_api "POST $A/promotions" "$F/c1-promote.json" 409
    jq -n "{digest:$X, approver:$X, stage:$X, comment:$X}" >"$F/c1-approve.json"
    add_api "POST $A/versions/1.0/approvals" "$F/c1-approve.json" 201
    jq -n "{previous_version:$X, version:$X, digest:$X}" >"$F/c1-rollback.json"
    add_api "POST $A/stages/prod/rollback" "$F/c1-rollback.json"
    # ... and CR and TAB as whitespace between its tokens (legal JSON, same value)
    CRTAB=$(printf '\r\t')
    jq -n "{keys:[{key_id:$X, name:$X, role:$X, source:$X, revocation:$X, added_at:$X,
                   revoked_at:$X, reason:$X}]}" | sed "s/\": /\":$CRTAB/" >"$F/c1-keys.json"
    add_api "GET /api/v1/keys" "$F/c1-keys.json"
    add_api "POST /api/v1/keys" "$F/c1-keys.json" 201
    jq -n "{key_id:$X, name:$X, role:$X, revocation:$X, added_at:$X, revoked_at:$X, reason:$X}" \
        >"$F/c1-key.json"
    add_api "POST /api/v1/keys/0123456789ABCDEF/revoke" "$F/c1-key.json"
    jq -n "{since:0, entries:[{seq:0, time:$X, actor:$X, action:$X, result:$X, reason:$X,
            subject:{model:$X, version:$X, stage:$X, image:$X}} | tojson]}" >"$F/c1-audit.json"
    add_api "GET /api/v1/audit" "$F/c1-audit.json"
    # error answers whose code and message hold X: 400 (any 4xx), 401, 403, 500
    jq -n "{errors:[{code:$X, message:$X}]}" >"$F/c1-error.json"
    for st in 400 401 403 500; do
        add_api "/api/v1/models/evil/e$st" "$F/c1-error.json" "$st"
        add_api "POST /api/v1/models/evil/e$st/promotions" "$F/c1-error.json" "$st"
    done
    jq -n "{message:$X}" >"$F/c1-plain-error.json"
    add_api "/api/v1/models/evil/plain" "$F/c1-plain-error.json" 409
    # a release whose title holds X: refused by pull, and the refusal quotes it safely
    release_manifest evil/c1title 1.0.0 "$(printf 'a\302\233b.bin')" "$PD" 5 >"$F/c1title.json"
    add_manifest evil/c1title 1.0.0 "$F/c1title.json"
    add_blob evil/c1title "$PD" "$F/pwned"
    # a promotions list whose pages never end: empty, always pointing further
    jq -n '{name:"evil/loop", releases:[]}' >"$F/loop-model.json"
    add_api /api/v1/models/evil/loop "$F/loop-model.json"
    jq -n '{promotions:[], next:7}' >"$F/loop-promotions.json"
    add_api "GET /api/v1/models/evil/loop/promotions" "$F/loop-promotions.json"
    echo "$routes" >"$F/routes.json"

    python3 "$MLREG_ROOT/tests/integration/fake_registry.py" "$F/routes.json" "$F/port" 2>"$F/log" &
    FAKE_PID=$!
    i=0
    while [ ! -s "$F/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    FAKE="http://127.0.0.1:$(cat "$F/port")"

    run "$MLREG" pull evil/good@1.0.0 -o "$F/out-good" --registry "$FAKE"
    expect_rc "fake registry: an honest release pulls (the fake works)" 0
    check "fake registry: the honest file arrives" cmp "$F/pwned" "$F/out-good/a.bin"

    mkdir -p "$F/jail/out"
    for m in traversal abs dotdot dotfile lock lockcase dup case liar bigger swapped othermodel \
        notrelease; do
        run "$MLREG" pull "evil/$m@1.0.0" -o "$F/jail/out" --registry "$FAKE"
        expect_rc "fake registry: pull of the '$m' manifest exits 1" 1
        check "fake registry: '$m' leaves DIR empty" test -z "$(listing "$F/jail/out")"
        check "fake registry: '$m' writes nothing beside DIR" test "$(listing "$F/jail")" = "out "
    done
    run "$MLREG" pull "evil/dotfile@1.0.0" -o "$F/jail/out" --registry "$FAKE"
    check "fake registry: the .bashrc refusal says why" grep -q "may not start with '.'" "$TMP/err"
    run "$MLREG" bundle "evil/dotfile@1.0.0" -o "$F/jail/bundle" --registry "$FAKE"
    expect_rc "fake registry: bundle of the '.bashrc' release exits 1" 1
    check "fake registry: bundle wrote nothing" test "$(listing "$F/jail")" = "out "
    run "$MLREG" pull "evil/case@1.0.0" -o "$F/jail/out" --registry "$FAKE"
    check "fake registry: the A.bin/a.bin refusal says why" grep -q "differ only in letter case" \
        "$TMP/err"
    run "$MLREG" bundle "evil/case@1.0.0" -o "$F/jail/bundle" --registry "$FAKE"
    expect_rc "fake registry: bundle of the A.bin/a.bin release exits 1" 1
    check "... refused for its titles" grep -q "differ only in letter case" "$TMP/err"
    check "fake registry: that bundle wrote nothing" test "$(listing "$F/jail")" = "out "
    check "no .bashrc was written anywhere" sh -c "! find '$TMP' -name .bashrc | grep -q ."
    check "the traversal wrote no file named evil anywhere" \
        sh -c "! find '$TMP' -name evil | grep -q ."
    check "the absolute title wrote nothing at /tmp/evil" test ! -e /tmp/evil
    run "$MLREG" pull "evil/swapped@1.0.0" -o "$F/jail/out" --registry "$FAKE"
    check "a swapped blob is reported by file name" grep -q "a.bin" "$TMP/err"
    run "$MLREG" pull "evil/good@sha256:$(printf '%064d' 9)" -o "$F/jail/out" --registry "$FAKE"
    expect_rc "fake registry: manifest bytes that do not hash to the pinned digest exit 1" 1
    check "fake registry: the pinned-digest failure leaves DIR empty" \
        test -z "$(listing "$F/jail/out")"

    # Every command that shows registry text, for people and with --json:
    # not one C1 control (C2 80..C2 9F), ESC or DEL byte reaches the output,
    # the fields are replaced by "(unprintable)", and --json prints the same
    # JSON value with those characters escaped.
    BAD_BYTES=$(printf '\302[\200-\237]\\|\033\\|\177')
    no_bad_bytes() { ! LC_ALL=C grep -q "$BAD_BYTES" "$@"; }
    check "the fake's answers do hold raw C1 and DEL bytes (the test can fail)" \
        sh -c "LC_ALL=C grep -q '$BAD_BYTES' '$F/c1-model.json'"
    # shown NAME WANT-RC CMD...: runs mlreg CMD against the fake
    shown() {
        name=$1 want=$2
        shift 2
        run "$MLREG" "$@" --registry "$FAKE"
        expect_rc "C1 fake: $name exits $want" "$want"
        check "C1 fake: $name prints no C1, ESC or DEL" no_bad_bytes "$TMP/out" "$TMP/err"
    }
    shown "show" 0 show evil/c1@1.0
    check "C1 fake: show replaces the fields (title, metric, dataset...)" \
        test "$(grep -o 'unprintable' "$TMP/out" | wc -l)" -ge 10
    check "C1 fake: show replaces the evaluation's key name, key id and time" \
        grep -q '^evaluations   1, newest by a trusted evaluator: (unprintable) ((unprintable)) evaluated at (unprintable), audit entry 5$' "$TMP/out"
    shown "status" 0 status evil/c1
    check "C1 fake: status replaces reason, actor, image..." \
        test "$(grep -o 'unprintable' "$TMP/out" | wc -l)" -ge 15
    shown "resolve --image" 0 resolve evil/c1:prod --image
    grep -q '^(unprintable)$' "$TMP/out" && ok "C1 fake: the image is replaced" ||
        not_ok "C1 fake: the image is replaced ($(cat "$TMP/out"))"
    shown "promote (refused, with a rule table)" 1 promote evil/c1@1.0 --to prod
    check "C1 fake: promote replaces rule, detail, baseline, actor" \
        test "$(grep -o 'unprintable' "$TMP/out" | wc -l)" -ge 6
    shown "approve" 0 approve evil/c1@1.0 --for prod
    shown "rollback" 0 rollback evil/c1 --stage prod
    shown "key list" 0 key list
    shown "key revoke" 0 key revoke 0123456789abcdef --kind retired
    shown "audit log" 0 audit log
    check "C1 fake: audit log replaces actor, action, subject and reason" \
        test "$(grep -o 'unprintable' "$TMP/out" | wc -l)" -ge 4
    for cmd in "show evil/c1@1.0" "status evil/c1" "resolve evil/c1:prod" "approve evil/c1@1.0 --for prod" \
        "rollback evil/c1 --stage prod" "key list" "key revoke 0123456789abcdef --kind retired" \
        "audit log" "promote evil/c1@1.0 --to prod"; do
        # shellcheck disable=SC2086
        run "$MLREG" $cmd --json --registry "$FAKE"
        check "C1 fake: $cmd --json prints no C1, ESC or DEL" no_bad_bytes "$TMP/out" "$TMP/err"
        check "C1 fake: $cmd --json is valid JSON" jqt . "$TMP/out"
    done
    run "$MLREG" show evil/c1@1.0 --json --registry "$FAKE"
    check "C1 fake: show --json is the registry's JSON value, escaped" \
        test "$(jq -cS 'del(.evaluations)' "$TMP/out")" = "$(jq -cS . "$F/c1-show.json")"
    check "C1 fake: ... with the registry's evaluations, escaped" \
        test "$(jq -cS .evaluations "$TMP/out")" = "$(jq -cS .evaluations "$F/c1-evals.json")"
    run "$MLREG" key list --json --registry "$FAKE"
    check "C1 fake: key list --json is the registry's JSON value, escaped" \
        test "$(jq -cS . "$TMP/out")" = "$(jq -cS . "$F/c1-keys.json")"
    check "the fake's key list holds raw CR and TAB between tokens (the test can fail)" \
        sh -c "grep -q '$(printf '\r')' '$F/c1-keys.json' && grep -q '$(printf '\t')' '$F/c1-keys.json'"
    check "C1 fake: key list --json prints no CR or TAB" \
        sh -c "! grep -q '$(printf '\r')' '$TMP/out' && ! grep -q '$(printf '\t')' '$TMP/out'"
    for st in 400 401 403 500; do
        shown "an HTTP $st with a hostile message (status)" "$( [ $st = 500 ] && echo 3 || echo 1)" \
            status "evil/e$st"
        shown "an HTTP $st with a hostile message (promote)" "$( [ $st = 500 ] && echo 3 || echo 1)" \
            promote "evil/e$st@1.0" --to prod
    done
    check "C1 fake: the error message shows the replacement" grep -q 'unprintable' "$TMP/err"
    shown "an error with a hostile plain message" 1 status evil/plain
    run timeout 20 "$MLREG" status evil/loop --registry "$FAKE"
    expect_rc "fake registry: status on endless empty promotion pages stops (exit 3)" 3
    check "  naming the bad page" grep -q 'bad "next" page' "$TMP/err"
    shown "pull of a release with a hostile title" 1 pull evil/c1title@1.0.0 -o "$F/jail/out"
    check "C1 fake: the hostile title left DIR empty" test -z "$(listing "$F/jail/out")"

    kill "$FAKE_PID" 2>/dev/null
    wait "$FAKE_PID" 2>/dev/null

    # ---- the stall watch: a registry silent for too long is gone, but one
    # storing a large body gets time to answer in proportion to its size
    python3 "$MLREG_ROOT/tests/integration/slow_registry.py" 3 "$F/slow-port" 2>"$F/slow-log" &
    SLOW_PID=$!
    i=0
    while [ ! -s "$F/slow-port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    SLOW="http://127.0.0.1:$(cat "$F/slow-port")"
    head -c 1048576 /dev/urandom >"$F/one-mib.bin"
    head -c 16777216 /dev/urandom >"$F/sixteen-mib.bin"
    run env MLREG_STALL_SECONDS=2 "$MLREG" push slow/m@1.0 --weights "$F/one-mib.bin" \
        --git-sha abc1234 --registry "$SLOW"
    expect_rc "a registry silent 3 s after a 1 MiB upload is gone with MLREG_STALL_SECONDS=2 (exit 3)" 3
    check "  naming the stall" grep -q "nothing moved for 2 seconds" "$TMP/err"
    run env MLREG_STALL_SECONDS=2 "$MLREG" push slow/m@2.0 --weights "$F/sixteen-mib.bin" \
        --git-sha abc1234 --registry "$SLOW"
    expect_rc "after 16 MiB it may take 2 + 16/8 s to store the blob: the push succeeds" 0
    run env MLREG_STALL_SECONDS=0 "$MLREG" status slow/m --registry "$SLOW"
    expect_rc "MLREG_STALL_SECONDS=0 is a usage error" 2
    check "  naming the variable" grep -q "MLREG_STALL_SECONDS must be" "$TMP/err"
    kill "$SLOW_PID" 2>/dev/null
    wait "$SLOW_PID" 2>/dev/null
else
    echo "# python3 not installed: the fake-registry cases (client-side title, digest and"
    echo "# size checks against a lying registry) did not run"
    not_ok "python3 is needed for the fake registry"
fi

finish
