#!/bin/sh
# test_push_resume.sh: `mlreg push` reads a file once and never again while
# it is unchanged, lists a chunk index for large files, and resumes a push
# that was killed:
#   - a file of 64 MiB (the threshold) gets a chunk-index layer whose chunk
#     digests are those python's hashlib computes, one byte less gets none;
#   - a second push of unchanged files does not read them (strace shows no
#     read of the file), the first push does;
#   - a file rewritten in place with its size and mtime put back (touch -d)
#     but a new ctime is read again, and its new digest is pushed;
#   - a file changed in the push's clock tick (racily clean) is not trusted
#     by the next push, which reads it again but uploads nothing;
#   - a corrupt digest cache is ignored (said on stderr) and replaced;
#   - a push killed (kill -9) after a 64 MiB piece of a 160 MiB file resumes
#     from the registry's offset and sends only the rest (the server's
#     mlreg_http_received_bytes_total counts it); a session the server no
#     longer knows makes the push start over;
#   - --limit-rate refuses nonsense;
#   - a registry that wants the digest first (Mlreg-Digest-First: true, the
#     s3 backend) gets the file hashed, a HEAD, and the body in the closing
#     PUT; bytes it holds already are not sent;
#   - the release with a chunk index is signed and `mlreg verify` accepts it.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

command -v strace >/dev/null 2>&1 || { not_ok "strace is installed (make deps)"; finish; }
command -v python3 >/dev/null 2>&1 || { not_ok "python3 is installed"; finish; }
start_server || finish

W=$TMP/work
mkdir -p "$W"
MIB=1048576
head -c $((64 * MIB)) /dev/urandom >"$W/big.bin"
head -c $((64 * MIB - 1)) /dev/urandom >"$W/under.bin"
printf '{"metrics":{"accuracy":0.9}}\n' >"$W/eval.json"
# digests are cached only for files older than the moment they are read
sleep 0.1

manifest_get() { # MODEL REF OUT
    curl -s -f -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -o "$3" "$MLREG_URL/v2/$1/manifests/$2"
}
received() { curl -s "$MLREG_URL/metrics" | awk '$1 == "mlreg_http_received_bytes_total" {print $2}'; }
# traced CMD...: CMD under strace, logging reads; LeakSanitizer cannot run
# under ptrace, so a sanitizer build runs without it here
traced() {
    out=$1; shift
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        strace -f -y -e trace=read,pread64 -o "$out" "$@"
}
# reads_of FILE TRACE: read/pread calls on FILE in an strace -y log
reads_of() { grep -E "^([0-9]+ +)?(read|pread64)\([0-9]+<[^>]*$1>" "$2" | wc -l; }
# jqt ARGS...: jq -e quietly
jqt() { jq -e "$@" >/dev/null; }

# ---- first push: chunk index layers ------------------------------------------------
"$MLREG" key generate --out "$W/k" --no-password >/dev/null 2>&1
traced "$TMP/trace1" "$MLREG" push m/fast@1 --weights "$W/big.bin" --file "other=$W/under.bin" \
    --eval-report "$W/eval.json" --sign-key "$W/k.key" >"$TMP/out" 2>"$TMP/err"
RC=$?
expect_rc "first push exits 0" 0
check "... and reads big.bin" [ "$(reads_of big.bin "$TMP/trace1")" -gt 0 ]
manifest_get m/fast 1 "$W/m1.json"
python3 - "$W/m1.json" "$W/big.bin" "$W/under.bin" "$MLREG_URL" >"$TMP/py" 2>&1 <<'EOF'
import hashlib, json, sys, urllib.request
m = json.load(open(sys.argv[1]))
files = {l["annotations"]["org.opencontainers.image.title"]: l for l in m["layers"]}
big, under = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
fb = files["big.bin"]
assert fb["digest"] == "sha256:" + hashlib.sha256(big).hexdigest(), "big.bin digest"
ix = files["big.bin.chunks"]
assert ix["annotations"]["org.mlreg.kind"] == "chunk-index"
assert ix["mediaType"] == "application/vnd.mlreg.chunk-index.v1+json"
assert ix["annotations"]["org.mlreg.chunks-of"] == fb["digest"]
assert fb["annotations"]["org.mlreg.chunk-index"] == ix["digest"]
body = urllib.request.urlopen(sys.argv[4] + "/v2/m/fast/blobs/" + ix["digest"]).read()
assert "sha256:" + hashlib.sha256(body).hexdigest() == ix["digest"] and len(body) == ix["size"]
doc = json.loads(body)
cs = doc["chunkSize"]
want = [hashlib.sha256(big[i:i + cs]).hexdigest() for i in range(0, len(big), cs)]
assert doc["chunks"] == want, "chunk digests"
assert doc["digest"] == fb["digest"] and doc["size"] == len(big)
assert "under.bin.chunks" not in files, "no index under the threshold"
assert "org.mlreg.chunk-index" not in files["under.bin"]["annotations"]
assert files["under.bin"]["digest"] == "sha256:" + hashlib.sha256(under).hexdigest()
assert len(m["layers"]) == 4
print("ok")
EOF
check "a 64 MiB file has a chunk index with hashlib's chunk digests; 64 MiB - 1 has none ($(tail -n 1 "$TMP/py"))" \
    grep -qx ok "$TMP/py"
run "$MLREG" verify m/fast@1 --trusted-key "$W/k.pub"
expect_rc "mlreg verify accepts the signed release with its chunk index" 0

# ---- second push of unchanged files: nothing read ---------------------------------
traced "$TMP/trace2" "$MLREG" push m/fast@2 --weights "$W/big.bin" --file "other=$W/under.bin" \
    --eval-report "$W/eval.json" >"$TMP/out" 2>"$TMP/err"
RC=$?
expect_rc "second push of the same files exits 0" 0
check "... reads neither big.bin nor under.bin" \
    [ "$(reads_of big.bin "$TMP/trace2")" = 0 -a "$(reads_of under.bin "$TMP/trace2")" = 0 ]
check "... and uploads nothing" grep -q "(0 uploaded, 3 already present)" "$TMP/err"
manifest_get m/fast 2 "$W/m2.json"
check "... with the same layers (chunk index included)" \
    sh -c "[ \"\$(jq -c .layers '$W/m1.json')\" = \"\$(jq -c .layers '$W/m2.json')\" ]"

# ---- same size, mtime put back, new ctime: read again ----------------------------------
mt=$(stat -c %y "$W/under.bin")
printf 'X' | dd of="$W/under.bin" bs=1 seek=1000 conv=notrunc 2>/dev/null
touch -d "$mt" "$W/under.bin"
check "the rewritten file has its old mtime back" [ "$(stat -c %y "$W/under.bin")" = "$mt" ]
sleep 0.1
traced "$TMP/trace3" "$MLREG" push m/fast@3 --file "other=$W/under.bin" >"$TMP/out" 2>"$TMP/err"
RC=$?
expect_rc "push of the file rewritten in place exits 0" 0
check "... reads it again" [ "$(reads_of under.bin "$TMP/trace3")" -gt 0 ]
manifest_get m/fast 3 "$W/m3.json"
check "... and pushes its new digest" \
    jqt --arg d "sha256:$(sha256_of "$W/under.bin")" '.layers[0].digest == $d' "$W/m3.json"

# ---- a file changed just before the push (racily clean) -----------------------------
# its stat cannot vouch for its bytes, so the cache keeps it as unverified;
# the next push hashes it before uploading (a streamed upload would send it
# again) and HEAD finds it. An mtime in the future stands for "changed in
# the clock tick of the push" without racing the clock.
head -c $((9 * MIB)) /dev/urandom >"$W/fresh.bin"
touch -d "@$(($(date +%s) + 30))" "$W/fresh.bin"
run "$MLREG" push m/fresh@1 --weights "$W/fresh.bin"
expect_rc "push of a file changed in the push's clock tick exits 0" 0
check "... and uploads it" grep -q "(1 uploaded, 0 already present)" "$TMP/err"
traced "$TMP/trace4" "$MLREG" push m/fresh@2 --weights "$W/fresh.bin" >"$TMP/out" 2>"$TMP/err"
RC=$?
expect_rc "a second push of it exits 0" 0
check "... reads it again (the cache did not vouch for it)" [ "$(reads_of fresh.bin "$TMP/trace4")" -gt 0 ]
check "... but uploads nothing (hashed first, HEAD found it)" \
    grep -q "(0 uploaded, 1 already present)" "$TMP/err"

# ---- a corrupt cache is ignored -----------------------------------------------------
check "the digest cache exists" [ -s "$MLREG_CACHE_DIR/digests" ]
head -c 700 /dev/urandom >"$MLREG_CACHE_DIR/digests"
run "$MLREG" push m/fast@4 --weights "$W/big.bin"
expect_rc "push with a corrupt digest cache exits 0" 0
check "... saying it ignores the cache" grep -q "ignoring the digest cache" "$TMP/err"
manifest_get m/fast 4 "$W/m4.json"
check "... with big.bin's true digest" \
    jqt --arg d "sha256:$(sha256_of "$W/big.bin")" '.layers[0].digest == $d' "$W/m4.json"
run "$MLREG" push m/fast@5 --weights "$W/big.bin"
check "... and the next push finds a good cache again" \
    sh -c "[ $RC = 0 ] && ! grep -q 'ignoring the digest cache' '$TMP/err'"

# ---- --limit-rate ---------------------------------------------------------------------
for bad in 0 -5 12Q K 99999999999999999999G; do
    run "$MLREG" push m/fast@9 --weights "$W/big.bin" --limit-rate "$bad"
    expect_rc "--limit-rate $bad is a usage error" 2
done

# ---- a killed push resumes ------------------------------------------------------------
head -c $((160 * MIB)) /dev/urandom >"$W/huge.bin"
sleep 0.1
SIZE=$((160 * MIB))
# kill_halfway REF: starts a rate-limited push of huge.bin and kills it
# (SIGKILL) once the registry holds at least one 64 MiB piece; HAVE is
# then the registry's offset, LOC the session.
kill_halfway() {
    "$MLREG" push "$1" --weights "$W/huge.bin" --limit-rate 30M >"$TMP/kout" 2>"$TMP/kerr" &
    kp=$!
    HAVE=0
    LOC=""
    i=0
    while [ $i -lt 200 ]; do
        f=$(ls "$MLREG_CACHE_DIR"/uploads 2>/dev/null | grep -E '^[0-9a-f]{64}$' | head -n 1)
        if [ -n "$f" ]; then
            LOC=$(tail -n 1 "$MLREG_CACHE_DIR/uploads/$f")
            HAVE=$(curl -s -o /dev/null -D - "$LOC" | tr -d '\r' | sed -n 's/^Range: 0-//ip')
            HAVE=${HAVE:-0}
            [ "$HAVE" -ge $((64 * MIB - 1)) ] && break
        fi
        sleep 0.05
        i=$((i + 1))
    done
    kill -KILL $kp 2>/dev/null
    wait $kp 2>/dev/null
    HAVE=$(curl -s -o /dev/null -D - "$LOC" | tr -d '\r' | sed -n 's/^Range: 0-//ip')
    HAVE=$((${HAVE:-0} + 1))
}
# settle: the server may still be taking in what the killed push had in
# the socket; wait until the session's offset stays put (HAVE updated)
settle() {
    i=0
    while [ $i -lt 40 ]; do
        sleep 0.25
        now=$(curl -s -o /dev/null -D - "$LOC" | tr -d '\r' | sed -n 's/^Range: 0-//ip')
        now=$((${now:-0} + 1))
        [ "$now" = "$HAVE" ] && return 0
        HAVE=$now
        i=$((i + 1))
    done
}
kill_halfway m/resume@1
settle
check "the killed push left 64 MiB or more, not all, in the session (have $HAVE)" \
    [ "$HAVE" -ge $((64 * MIB)) -a "$HAVE" -lt $SIZE ]
before=$(received)
run "$MLREG" push m/resume@1 --weights "$W/huge.bin"
after=$(received)
sent=$((after - before))
expect_rc "the push again exits 0" 0
check "... resuming the upload" grep -q "resuming the upload of huge.bin" "$TMP/err"
check "... sending only the rest ($sent bytes for $((SIZE - HAVE)) missing)" \
    [ $sent -ge $((SIZE - HAVE)) -a $sent -lt $((SIZE - HAVE + MIB)) ]
manifest_get m/resume 1 "$W/r1.json"
check "... and the release names huge.bin's digest" \
    jqt --arg d "sha256:$(sha256_of "$W/huge.bin")" '.layers[0].digest == $d' "$W/r1.json"
check "... and forgets the session" sh -c "[ -z \"\$(ls '$MLREG_CACHE_DIR/uploads')\" ]"

# a session the registry no longer knows: start over
rm -f "$MLREG_CACHE_DIR/digests" # huge.bin's digest must not be known
touch "$W/huge.bin"              # nor cached under its old identity
sleep 0.1
kill_halfway m/resume@2
settle
check "a second killed push left a session ($HAVE bytes)" [ "$HAVE" -ge $((64 * MIB)) ]
# the session stays busy until the server is done with the killed request
# (at worst its body timeout, 60 s)
i=0
until code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$LOC") && [ "$code" != 416 ] ||
    [ $i -gt 280 ]; do
    sleep 0.25
    i=$((i + 1))
done
check "the session is cancelled on the registry (DELETE: $code)" [ "$code" = 204 ]
before=$(received)
run "$MLREG" push m/resume@2 --weights "$W/huge.bin"
after=$(received)
sent=$((after - before))
expect_rc "the push again exits 0" 0
check "... starting over: every byte sent ($sent)" [ $sent -ge $SIZE ]
check "... without claiming to resume" sh -c "! grep -q 'resuming' '$TMP/err'"
manifest_get m/resume 2 "$W/r2.json"
check "... and the release names huge.bin's digest" \
    jqt --arg d "sha256:$(sha256_of "$W/huge.bin")" '.layers[0].digest == $d' "$W/r2.json"

# ---- a registry that wants the digest first (the s3 backend) ---------------------------
python3 "$MLREG_ROOT/tests/integration/digest_first_registry.py" "$TMP/df.log" "$TMP/df-port" &
DF_PID=$!
i=0
while [ ! -s "$TMP/df-port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
DF="http://127.0.0.1:$(cat "$TMP/df-port")"
head -c $((70 * MIB)) /dev/urandom >"$W/df.bin"
sleep 0.1
DFD=sha256:$(sha256_of "$W/df.bin")
run env MLREG_CACHE_DIR="$TMP/dfcache" "$MLREG" push df/m@1 --weights "$W/df.bin" \
    --git-sha abc1234 --registry "$DF"
expect_rc "push to a digest-first registry exits 0" 0
# the file's requests, in order: a session, HEAD once hashed, the body in the closing PUT
grep -v "/manifests/" "$TMP/df.log" | grep -E "blobs/uploads/ 0|$DFD|uploads/s|PATCH" |
    head -n 3 >"$TMP/df.seq"
printf 'POST /v2/df/m/blobs/uploads/ 0\nHEAD /v2/df/m/blobs/%s 0\nPUT /v2/df/m/blobs/uploads/s0 %s\n' \
    "$DFD" $((70 * MIB)) >"$TMP/df.want"
check "... opens a session, hashes, HEADs, then sends the body in the closing PUT ($(tr '\n' ';' <"$TMP/df.seq"))" \
    cmp -s "$TMP/df.seq" "$TMP/df.want"
check "... and no PATCH" sh -c "! grep -q '^PATCH' '$TMP/df.log'"
cp "$W/df.bin" "$W/df-copy.bin"
sleep 0.1
: >"$TMP/df.log"
run env MLREG_CACHE_DIR="$TMP/dfcache2" "$MLREG" push df/m@2 --weights "$W/df-copy.bin" \
    --git-sha abc1234 --registry "$DF"
expect_rc "push of the same bytes under another name exits 0" 0
check "... the registry had them: skipped" grep -q "df-copy.bin.*already in the registry, skipped" "$TMP/err"
check "... the session was cancelled, no body sent" \
    sh -c "grep -q '^DELETE /v2/df/m/blobs/uploads/s1 0' '$TMP/df.log' &&
           ! grep -q '^PUT /v2/df/m/blobs/uploads/' '$TMP/df.log'"
kill "$DF_PID" 2>/dev/null
wait "$DF_PID" 2>/dev/null

rm -f "$W"/*.bin
finish
