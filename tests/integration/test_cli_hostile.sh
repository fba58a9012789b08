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

run() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
jqt() { jq -e "$@" >/dev/null; }
expect_rc() {
    if [ "$RC" -eq "$2" ]; then ok "$1"; else
        not_ok "$1 (want exit $2, got $RC: $(tail -n 3 "$TMP/err"))"; fi
}
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
for title in "../evil" "a/b" ".." "." "/etc/passwd"; do
    i=$((i + 1))
    release_manifest evil/model "1.0.$i" "$title" "$MD" 65536 >"$TMP/hm.json"
    expect_status "server refuses a release with title '$title' (400)" 400 PUT \
        "/v2/evil/model/manifests/1.0.$i" -H "Content-Type: $OCI" --data-binary "@$TMP/hm.json"
    expect_status "nothing stored under 1.0.$i" 404 GET "/v2/evil/model/manifests/1.0.$i" \
        -H "Accept: $OCI"
done
release_manifest evil/model 1.0.9 same.bin "$MD" 65536 same.bin "$MD" 65536 >"$TMP/hm.json"
expect_status "server refuses a release with duplicate titles (400)" 400 PUT \
    "/v2/evil/model/manifests/1.0.9" -H "Content-Type: $OCI" --data-binary "@$TMP/hm.json"

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
    release_manifest evil/lock 1.0.0 mlreg.lock.json "$PD" 5 >"$F/lock.json"
    add_manifest evil/lock 1.0.0 "$F/lock.json"
    add_blob evil/lock "$PD" "$F/pwned"
    release_manifest evil/dup 1.0.0 a.bin "$PD" 5 a.bin "$PD" 5 >"$F/dup.json"
    add_manifest evil/dup 1.0.0 "$F/dup.json"
    add_blob evil/dup "$PD" "$F/pwned"
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
    for m in traversal abs dotdot lock dup liar bigger swapped othermodel notrelease; do
        run "$MLREG" pull "evil/$m@1.0.0" -o "$F/jail/out" --registry "$FAKE"
        expect_rc "fake registry: pull of the '$m' manifest exits 1" 1
        check "fake registry: '$m' leaves DIR empty" test -z "$(listing "$F/jail/out")"
        check "fake registry: '$m' writes nothing beside DIR" test "$(listing "$F/jail")" = "out "
    done
    check "the traversal wrote no file named evil anywhere" \
        sh -c "! find '$TMP' -name evil | grep -q ."
    check "the absolute title wrote nothing at /tmp/evil" test ! -e /tmp/evil
    run "$MLREG" pull "evil/swapped@1.0.0" -o "$F/jail/out" --registry "$FAKE"
    check "a swapped blob is reported by file name" grep -q "a.bin" "$TMP/err"
    run "$MLREG" pull "evil/good@sha256:$(printf '%064d' 9)" -o "$F/jail/out" --registry "$FAKE"
    expect_rc "fake registry: manifest bytes that do not hash to the pinned digest exit 1" 1
    check "fake registry: the pinned-digest failure leaves DIR empty" \
        test -z "$(listing "$F/jail/out")"

    kill "$FAKE_PID" 2>/dev/null
    wait "$FAKE_PID" 2>/dev/null
else
    echo "# python3 not installed: the fake-registry cases (client-side title, digest and"
    echo "# size checks against a lying registry) did not run"
    not_ok "python3 is needed for the fake registry"
fi

finish
