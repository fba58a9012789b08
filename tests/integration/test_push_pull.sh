#!/bin/sh
# test_push_pull.sh: `mlreg push` → `mlreg pull` round trips through the real
# server, re-push rules, pull by digest, show/status, exit codes.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

start_server || finish

W=$TMP/work
mkdir -p "$W/a" "$W/b"
head -c 5242880 /dev/urandom >"$W/model.bin"
: >"$W/empty.cfg"
head -c 1 /dev/urandom >"$W/seed.bin"
printf '{"metrics":{"accuracy":0.91,"f1":0.88}}\n' >"$W/eval.json"
head -c 3000 /dev/urandom >"$W/tok.json"
GIT=0123456789abcdef0123456789abcdef01234567

# run CMD...: runs CMD with stdout in $TMP/out and stderr in $TMP/err; $RC is its status.
# expect_rc NAME WANT: checks $RC.
jqt() { jq -e "$@" >/dev/null; }
last_line() { tail -n 1 "$TMP/out"; }
# log_mark / log_since: server access-log lines written after the mark.
log_mark() { MARK=$(wc -l <"$TMP/server.log"); }
log_since() { tail -n +"$((MARK + 1))" "$TMP/server.log"; }
manifest_get() { # MODEL REF OUT
    curl -s -f -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -o "$3" "$MLREG_URL/v2/$1/manifests/$2"
}

# ---- push 1.0.0: files of 5 MiB, 0 bytes, 1 byte, plus an eval report -------
log_mark
run "$MLREG" push team/clf@1.0.0 --weights "$W/model.bin" --config "$W/empty.cfg" \
    --seeds "$W/seed.bin" --eval-report "$W/eval.json" --git-sha $GIT
expect_rc "push 1.0.0 exits 0" 0
D1=$(last_line)
check "push prints the release digest as the last stdout line" \
    sh -c "echo '$D1' | grep -Eq '^sha256:[0-9a-f]{64}\$'"
check "push uploaded the files (server saw blob uploads)" \
    sh -c "[ \$(tail -n +$((MARK + 1)) '$TMP/server.log' | grep -c 'POST /v2/team/clf/blobs/uploads') -ge 4 ]"

manifest_get team/clf 1.0.0 "$TMP/m1.json"
check "manifest fetched with curl hashes to the printed digest" \
    test "sha256:$(sha256_of "$TMP/m1.json")" = "$D1"
check "manifest is a release: artifactType, empty config, media type" \
    jqt '.schemaVersion == 2 and .mediaType == "application/vnd.oci.image.manifest.v1+json"
        and .artifactType == "application/vnd.mlreg.release.v1+json"
        and .config.mediaType == "application/vnd.oci.empty.v1+json" and .config.size == 2
        and .config.digest == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"' \
    "$TMP/m1.json"
check "layers in kind order with titles, kinds and media types" \
    jqt '[.layers[] | [.annotations["org.mlreg.kind"], .annotations["org.opencontainers.image.title"], .mediaType]]
        == [["weights","model.bin","application/vnd.mlreg.weights.v1"],
            ["config","empty.cfg","application/vnd.mlreg.config.v1"],
            ["seeds","seed.bin","application/vnd.mlreg.seeds.v1"],
            ["eval-report","eval.json","application/vnd.mlreg.eval-report.v1+json"]]' "$TMP/m1.json"
check "layer digests and sizes are those of the files" \
    jqt --arg w "sha256:$(sha256_of "$W/model.bin")" --arg s "sha256:$(sha256_of "$W/seed.bin")" \
    '.layers[0].digest == $w and .layers[0].size == 5242880 and .layers[1].size == 0
     and .layers[1].digest == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
     and .layers[2].digest == $s and .layers[2].size == 1' "$TMP/m1.json"
check "manifest annotations: model, version, git sha, created (RFC 3339 UTC)" \
    jqt --arg g $GIT '.annotations["org.mlreg.model"] == "team/clf"
        and .annotations["org.mlreg.version"] == "1.0.0"
        and .annotations["org.mlreg.git-sha"] == $g
        and (.annotations["org.opencontainers.image.created"] | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))' \
    "$TMP/m1.json"
check "manifest bytes are compact with sorted keys" \
    sh -c "jq -cS . '$TMP/m1.json' | tr -d '\n' | cmp -s - '$TMP/m1.json'"

# ---- pull by version into a directory that does not exist yet ---------------
run "$MLREG" pull team/clf@1.0.0 -o "$TMP/p1/nested"
expect_rc "pull 1.0.0 exits 0" 0
for f in model.bin empty.cfg seed.bin eval.json; do
    check "pulled $f is byte-identical" cmp "$W/$f" "$TMP/p1/nested/$f"
done
check "pull leaves only the files and the lock file" \
    test "$(ls -A "$TMP/p1/nested" | sort | tr '\n' ' ')" = "empty.cfg eval.json mlreg.lock.json model.bin seed.bin "
check "lock file: model, version, manifest digest" \
    jqt --arg d "$D1" '.model == "team/clf" and .version == "1.0.0" and .digest == $d' \
    "$TMP/p1/nested/mlreg.lock.json"
check "lock file: every file with title, kind, digest, size" \
    jqt --arg w "sha256:$(sha256_of "$W/model.bin")" --arg e "sha256:$(sha256_of "$W/eval.json")" \
    '[.files[] | [.title, .kind, .size]] == [["model.bin","weights",5242880],["empty.cfg","config",0],
        ["seed.bin","seeds",1],["eval.json","eval-report",40]]
     and .files[0].digest == $w and .files[3].digest == $e' "$TMP/p1/nested/mlreg.lock.json"

# ---- a release whose only file is empty, and one of a single byte -----------
run "$MLREG" push team/tiny@0 --weights "$W/empty.cfg" --git-sha $GIT
expect_rc "push a release of one 0-byte file" 0
run "$MLREG" pull team/tiny@0 -o "$TMP/p0"
expect_rc "pull the 0-byte release" 0
check "0-byte file pulled back empty" cmp "$W/empty.cfg" "$TMP/p0/empty.cfg"
run "$MLREG" push team/tiny@1 --file other="$W/seed.bin" --git-sha $GIT
expect_rc "push a release of one 1-byte file via --file other=" 0
run "$MLREG" pull team/tiny@1 -o "$TMP/p1b"
check "1-byte file pulled back identical" cmp "$W/seed.bin" "$TMP/p1b/seed.bin"

# ---- re-push identical: same digest, exit 0, nothing uploaded ---------------
log_mark
run "$MLREG" push team/clf@1.0.0 --weights "$W/model.bin" --config "$W/empty.cfg" \
    --seeds "$W/seed.bin" --eval-report "$W/eval.json" --git-sha $GIT
expect_rc "re-push of the identical release exits 0" 0
check "re-push prints the same digest" test "$(last_line)" = "$D1"
check "re-push uploads no blob and stores no manifest" \
    sh -c "! tail -n +$((MARK + 1)) '$TMP/server.log' | grep -E '(POST|PATCH|PUT) /v2/'"

# ---- a new version sharing the weights: only the new file is uploaded ------
log_mark
# (run from the checkout, so that the git sha defaults to its HEAD)
run sh -c 'cd "$1" && shift && exec "$@"' - "$MLREG_ROOT" "$MLREG" push team/clf@1.0.1 \
    --weights "$W/model.bin" --tokenizer "$W/tok.json" --eval-report "$W/eval.json"
expect_rc "push 1.0.1 sharing blobs exits 0" 0
D2=$(last_line)
check "1.0.1 uploads only the new tokenizer blob" \
    test "$(log_since | grep -c 'POST /v2/team/clf/blobs/uploads')" -eq 1
check "push says which files were already there" grep -q "model.bin.*already" "$TMP/err"
check "1.0.1 has another digest" test "$D2" != "$D1"
if git -C "$MLREG_ROOT" rev-parse HEAD >/dev/null 2>&1; then
    manifest_get team/clf 1.0.1 "$TMP/m2.json"
    check "--git-sha defaults to git rev-parse HEAD inside a checkout" \
        jqt --arg g "$(cd "$MLREG_ROOT" && git rev-parse HEAD)" \
        '.annotations["org.mlreg.git-sha"] == $g' "$TMP/m2.json"
fi

# ---- same version, other files: exit 1 and the registry unchanged ----------
head -c 4096 /dev/urandom >"$W/other.bin"
log_mark
run "$MLREG" push team/clf@1.0.0 --weights "$W/other.bin" --git-sha $GIT
expect_rc "push of 1.0.0 with other files exits 1" 1
check "the refusal says the version exists" grep -q "already exists" "$TMP/err"
check "nothing was uploaded for the refused push" \
    sh -c "! tail -n +$((MARK + 1)) '$TMP/server.log' | grep -E '(POST|PATCH|PUT) /v2/'"
manifest_get team/clf 1.0.0 "$TMP/m1b.json"
check "1.0.0 still points at the same manifest bytes" cmp "$TMP/m1.json" "$TMP/m1b.json"
expect_status "the refused file's blob is not in the registry" 404 HEAD \
    "/v2/team/clf/blobs/sha256:$(sha256_of "$W/other.bin")" -I

# ---- concurrent pushes of one version with the same files ------------------
# Different creation times (SOURCE_DATE_EPOCH) make the two manifests differ:
# whichever loses the race must see the winner's release, same files, exit 0.
for n in 1 2 3; do
    env SOURCE_DATE_EPOCH=$n "$MLREG" push team/race@1.0.0 --weights "$W/tok.json" \
        --seeds "$W/seed.bin" >"$TMP/race$n.out" 2>"$TMP/race$n.err" &
    eval "RP$n=\$!"
done
wait "$RP1"; R1=$?
wait "$RP2"; R2=$?
wait "$RP3"; R3=$?
check "three concurrent pushes of the same release all exit 0 ($R1 $R2 $R3)" \
    test "$R1$R2$R3" = 000
check "and all print the one stored digest" \
    test "$(tail -qn 1 "$TMP/race1.out" "$TMP/race2.out" "$TMP/race3.out" | sort -u | wc -l)" -eq 1
manifest_get team/race 1.0.0 "$TMP/race.json"
check "the printed digest is the stored one" \
    test "sha256:$(sha256_of "$TMP/race.json")" = "$(tail -n 1 "$TMP/race1.out")"
check "SOURCE_DATE_EPOCH sets the created time" \
    jqt '.annotations["org.opencontainers.image.created"] | test("^1970-01-01T00:00:0[123]Z$")' \
    "$TMP/race.json"

# ---- pull by digest --------------------------------------------------------
run "$MLREG" pull "team/clf@$D1" -o "$TMP/pd"
expect_rc "pull by digest exits 0" 0
check "pull by digest gives identical weights" cmp "$W/model.bin" "$TMP/pd/model.bin"
check "lock file of a pull by digest names the version" \
    jqt --arg d "$D1" '.version == "1.0.0" and .digest == $d' "$TMP/pd/mlreg.lock.json"
check "pull prints the manifest digest as the last stdout line" test "$(last_line)" = "$D1"

# ---- unknown things --------------------------------------------------------
run "$MLREG" pull team/clf@9.9.9 -o "$TMP/pu"
expect_rc "pull of an unknown version exits 1" 1
check "a failed pull creates nothing" test ! -e "$TMP/pu"
run "$MLREG" pull "team/clf@sha256:$(printf '%064d' 0)" -o "$TMP/pu"
expect_rc "pull of an unknown digest exits 1" 1
run "$MLREG" pull nobody/here@1.0.0 -o "$TMP/pu"
expect_rc "pull from an unknown model exits 1" 1

# ---- show / status ---------------------------------------------------------
run "$MLREG" show team/clf@1.0.0
expect_rc "show exits 0" 0
check "show prints the digest, git sha, metrics and files" \
    sh -c "grep -q '$D1' '$TMP/out' && grep -q '$GIT' '$TMP/out' && grep -q 'accuracy' '$TMP/out' && grep -q 'model.bin' '$TMP/out'"
run "$MLREG" show team/clf@1.0.0 --json
check "show --json is the release as JSON" \
    jqt --arg d "$D1" '.digest == $d and .version == "1.0.0" and .metrics.accuracy == 0.91
        and (.files | length) == 4' "$TMP/out"
run "$MLREG" show "team/clf@$D2" --json
expect_rc "show by digest exits 0" 0
check "show by digest finds the version" jqt '.version == "1.0.1"' "$TMP/out"
run "$MLREG" status team/clf
expect_rc "status exits 0" 0
check "status lists both versions with short digests" \
    sh -c "grep -q '^1.0.0 ' '$TMP/out' && grep -q '^1.0.1 ' '$TMP/out' && grep -q '$(echo "$D1" | cut -c1-19)' '$TMP/out'"
run "$MLREG" status team/clf --json
check "status --json lists the releases" \
    jqt '.name == "team/clf" and ([.releases[].version] | sort) == ["1.0.0","1.0.1"]' "$TMP/out"
run "$MLREG" show team/clf@7.7.7
expect_rc "show of an unknown version exits 1" 1
run "$MLREG" status nobody/here
expect_rc "status of an unknown model exits 1" 1

# ---- --registry wins over MLREG_URL ----------------------------------------
REAL=$MLREG_URL
run env MLREG_URL=http://127.0.0.1:1 "$MLREG" status team/clf --registry "$REAL"
expect_rc "--registry overrides MLREG_URL" 0

# ---- unreachable registry: exit 3 ------------------------------------------
run env MLREG_URL=http://127.0.0.1:1 "$MLREG" pull team/clf@1.0.0 -o "$TMP/pz"
expect_rc "pull from a closed port exits 3" 3
check "a pull from a closed port creates nothing" test ! -e "$TMP/pz"
run env MLREG_URL=http://127.0.0.1:1 "$MLREG" push team/clf@3.0.0 --weights "$W/seed.bin"
expect_rc "push to a closed port exits 3" 3
run env MLREG_URL=http://127.0.0.1:1 "$MLREG" status team/clf
expect_rc "status from a closed port exits 3" 3
run env MLREG_URL=http://127.0.0.1:1 "$MLREG" show team/clf@1.0.0
expect_rc "show from a closed port exits 3" 3

# ---- usage errors: exit 2, nothing sent -------------------------------------
cp "$W/seed.bin" "$W/a/dup.bin"
cp "$W/seed.bin" "$W/b/dup.bin"
log_mark
for args in "team/clf" "Team/clf@1.0.0" "team/clf@-bad" "team//clf@1" "team/clf@1.0.0 extra"; do
    # shellcheck disable=SC2086
    run "$MLREG" push $args --weights "$W/seed.bin"
    expect_rc "push '$args' is a usage error" 2
done
run "$MLREG" push team/clf@4.0.0
expect_rc "push without files is a usage error" 2
run "$MLREG" push team/clf@4.0.0 --file Bogus="$W/seed.bin"
expect_rc "push with a kind outside the grammar is a usage error" 2
run "$MLREG" push team/clf@4.0.0 --file "$W/seed.bin"
expect_rc "push with --file lacking KIND= is a usage error" 2
run "$MLREG" push team/clf@4.0.0 --weights "$W/a/dup.bin" --config "$W/b/dup.bin"
expect_rc "push with duplicate base names is a usage error" 2
check "the duplicate message names the base name" grep -q "dup.bin" "$TMP/err"
run "$MLREG" push team/clf@4.0.0 --weights "$W/missing.bin"
expect_rc "push of a missing file exits 2" 2
run "$MLREG" push team/clf@4.0.0 --weights "$W/a"
expect_rc "push of a directory exits 2" 2
run "$MLREG" push team/clf@4.0.0 --weights "$W/seed.bin" --git-sha XYZ
expect_rc "push with a bad --git-sha exits 2" 2
run "$MLREG" push team/clf@4.0.0 --eval-report "$W/eval.json" --file eval-report="$W/a/dup.bin"
expect_rc "push with two eval reports exits 2" 2
run "$MLREG" pull team/clf@1.0.0
expect_rc "pull without -o is a usage error" 2
run "$MLREG" pull "team/clf@sha256:abc" -o "$TMP/px"
expect_rc "pull with a malformed digest is a usage error" 2
run "$MLREG" show "team/clf"
expect_rc "show without @ is a usage error" 2
check "usage errors sent nothing to the registry" \
    sh -c "! tail -n +$((MARK + 1)) '$TMP/server.log' | grep -E ' /v2/| /api/'"

# ---- the CLI against another OCI registry: Debian's docker-registry 2.8 ----
# It answers the monolithic POST with 202 and a session, so push takes the
# POST-then-PUT path there; pull verifies what it serves.
if command -v docker-registry >/dev/null 2>&1; then
    DREG_PID=""
    for try in 1 2 3 4 5; do
        port=$((20000 + ($$ * 7 + try * 7919) % 40000))
        mkdir -p "$TMP/dreg"
        printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
            "$TMP/dreg/data" "$port" >"$TMP/dreg/config.yml"
        docker-registry serve "$TMP/dreg/config.yml" >"$TMP/dreg/log" 2>&1 &
        DREG_PID=$!
        i=0
        while [ $i -lt 100 ] && kill -0 "$DREG_PID" 2>/dev/null &&
            ! curl -sf -o /dev/null "http://127.0.0.1:$port/v2/"; do
            sleep 0.05
            i=$((i + 1))
        done
        curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break
        kill "$DREG_PID" 2>/dev/null
        wait "$DREG_PID" 2>/dev/null
        DREG_PID=""
    done
    if [ -n "$DREG_PID" ]; then
        DREG=http://127.0.0.1:$port
        run "$MLREG" push team/clf@1.0.0 --weights "$W/model.bin" --config "$W/empty.cfg" \
            --seeds "$W/seed.bin" --eval-report "$W/eval.json" --git-sha $GIT --registry "$DREG"
        expect_rc "push to docker-registry 2.8 (202 + PUT upload path)" 0
        check "docker-registry stores the release under its digest" \
            sh -c "curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' '$DREG/v2/team/clf/manifests/$(last_line)' | sha256sum | grep -q '^$(last_line | cut -c8-) '"
        run "$MLREG" pull team/clf@1.0.0 -o "$TMP/pdreg" --registry "$DREG"
        expect_rc "pull from docker-registry 2.8" 0
        check "the 5 MiB file from docker-registry is identical" cmp "$W/model.bin" "$TMP/pdreg/model.bin"
        check "the 0-byte file from docker-registry is identical" cmp "$W/empty.cfg" "$TMP/pdreg/empty.cfg"
        kill "$DREG_PID" 2>/dev/null
        wait "$DREG_PID" 2>/dev/null
    else
        not_ok "docker-registry starts (log: $(tail -n 3 "$TMP/dreg/log"))"
    fi
else
    not_ok "docker-registry is installed (make deps installs it)"
fi

finish
