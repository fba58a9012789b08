#!/bin/sh
# Resumable chunked uploads (what a resumed `mlreg push` relies on): a PATCH whose
# connection drops in the middle of its body keeps the bytes that arrived,
# the status GET reports them in Range, the next PATCH with Content-Range
# continues from there, and the closing PUT ?digest= stores exactly the
# original bytes. The blob is large enough (24 MiB) for the server's
# pipelined writer to be running when the connection drops. Also: a resumed
# chunk at the wrong offset is refused without touching the session, a drop
# in a chunked (Content-Range-less) PATCH resumes the same way, and nothing
# is left in blobs/tmp afterwards.
. "$(dirname "$0")/lib.sh"

T=$(tok)
cat >"$TMP/cfg.json" <<EOF
{ "tokens": [ { "name": "ci", "sha256": "$(hash "$T")", "roles": ["push", "read"] } ] }
EOF
start_server --config "$TMP/cfg.json" || finish

AUTH="Authorization: Bearer $T"
SIZE=$((24 * 1024 * 1024))
CUT=$((9 * 1024 * 1024 + 12345)) # not on any buffer or page boundary
head -c "$SIZE" /dev/urandom >"$TMP/blob"
D=sha256:$(sha256_of "$TMP/blob")
tmp_count() { find "$DATA/blobs/tmp" -type f 2>/dev/null | wc -l | tr -d ' '; }
upload_path() { header Location | sed 's|^https\?://[^/]*||'; }
range_end() { header Range | sed -n 's/^0-\([0-9]*\)$/\1/p'; }

# cut_patch PATH TOTAL SEND FROM [content-range]: a PATCH announcing TOTAL
# body bytes that sends only SEND of them (the file's bytes from offset
# FROM) and closes the connection, like a client killed mid-push.
cut_patch() {
    python3 - "$MLREG_URL" "$1" "$2" "$3" "$4" "$TMP/blob" "$T" "${5:-}" <<'PY'
import socket, sys, time
url, path, total, send, start, name, token, crange = sys.argv[1:9]
host, port = url.split("//")[1].split(":")
total, send, start = int(total), int(send), int(start)
head = ("PATCH %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n"
        "Content-Type: application/octet-stream\r\n" % (path, host, port, token))
if crange == "chunked":
    head += "Transfer-Encoding: chunked\r\n\r\n"
else:
    head += "Content-Range: %s\r\nContent-Length: %d\r\n\r\n" % (crange, total)
with open(name, "rb") as f:
    f.seek(start)
    data = f.read(send)
s = socket.create_connection((host, int(port)))
s.sendall(head.encode())
if crange == "chunked":
    s.sendall(b"%x\r\n" % len(data) + data + b"\r\n")  # no final 0-chunk
else:
    s.sendall(data)
time.sleep(0.3)
s.close()
PY
}

# ---- a PATCH with Content-Range, cut after CUT bytes ------------------------
st=$(http_status POST "/v2/m/blobs/uploads/" -H "$AUTH")
U=$(upload_path)
check "a session opens (202)" [ "$st" = 202 ]
cut_patch "$U" "$SIZE" "$CUT" 0 "0-$((SIZE - 1))"
check "the server logs the cut PATCH as the client going away" \
    wait_log "PATCH /v2/m/blobs/uploads/.* (client went away)"
expect_status "the session survives the drop: status GET 204" 204 GET "$U" -H "$AUTH"
END=$(range_end)
check "Range reports every byte that arrived: 0-$((CUT - 1)) (got 0-$END)" \
    [ "$END" = $((CUT - 1)) ]
check "the access log counts the bytes received (in=$CUT)" grep -q "PATCH .* in=$CUT " "$TMP/server.log"
check "one temp file holds the session" [ "$(tmp_count)" = 1 ]

# a chunk that does not start at the reported offset changes nothing
printf 'x' >"$TMP/one"
expect_status "a chunk at another offset is refused: 416" 416 PATCH "$U" -H "$AUTH" \
    -H "Content-Type: application/octet-stream" -H "Content-Range: 0-0" --data-binary @"$TMP/one"
check "with the session's Range in the refusal" [ "$(range_end)" = $((CUT - 1)) ]

# the rest, continued from the reported offset
NEXT=$((END + 1))
tail -c +"$((NEXT + 1))" "$TMP/blob" >"$TMP/rest"
expect_status "PATCH Content-Range $NEXT-$((SIZE - 1)) continues the upload: 202" 202 PATCH "$U" \
    -H "$AUTH" -H "Content-Type: application/octet-stream" \
    -H "Content-Range: $NEXT-$((SIZE - 1))" --data-binary @"$TMP/rest"
check "its Range is the whole blob" [ "$(range_end)" = $((SIZE - 1)) ]
expect_status "PUT ?digest= closes it: 201" 201 PUT "$U?digest=$D" -H "$AUTH" \
    -H "Content-Length: 0"
check "Docker-Content-Digest is the original's" [ "$(header Docker-Content-Digest)" = "$D" ]
curl -sf -H "$AUTH" -o "$TMP/got" "$MLREG_URL/v2/m/blobs/$D"
check "GET returns exactly the original bytes" cmp -s "$TMP/got" "$TMP/blob"
check "no temp file is left" [ "$(tmp_count)" = 0 ]

# ---- a chunked PATCH (no Content-Range, as skopeo sends), cut twice --------
st=$(http_status POST "/v2/m2/blobs/uploads/" -H "$AUTH")
U2=$(upload_path)
check "a second session opens (202)" [ "$st" = 202 ]
FIRST=$((5 * 1024 * 1024 + 7))
cut_patch "$U2" 0 "$FIRST" 0 chunked
wait_log "PATCH /v2/m2/blobs/uploads/.* in=$FIRST .*(client went away)" ||
    wait_log "PATCH /v2/m2/blobs/uploads/.*(client went away)"
expect_status "after a cut chunked PATCH the status GET answers 204" 204 GET "$U2" -H "$AUTH"
E2=$(range_end)
check "and reports what arrived (0-$E2, at most $FIRST bytes)" \
    sh -c "[ -n '$E2' ] && [ '$E2' -lt $FIRST ] && [ '$E2' -gt 0 ]"
N2=$((E2 + 1))
SECOND=$((7 * 1024 * 1024 + 3))
cut_patch "$U2" 0 "$SECOND" "$N2" chunked
sleep 0.5
expect_status "after the second cut, status GET 204" 204 GET "$U2" -H "$AUTH"
E3=$(range_end)
check "the offset moved on from $N2 (0-$E3)" sh -c "[ '$E3' -ge $N2 ] && [ '$E3' -lt $((N2 + SECOND)) ]"
tail -c +"$((E3 + 2))" "$TMP/blob" >"$TMP/rest2"
expect_status "PATCH the rest with Content-Range $((E3 + 1))-$((SIZE - 1)): 202" 202 PATCH "$U2" \
    -H "$AUTH" -H "Content-Type: application/octet-stream" \
    -H "Content-Range: $((E3 + 1))-$((SIZE - 1))" --data-binary @"$TMP/rest2"
expect_status "PUT ?digest= closes it: 201" 201 PUT "$U2?digest=$D" -H "$AUTH" \
    -H "Content-Length: 0"
curl -sf -H "$AUTH" -o "$TMP/got2" "$MLREG_URL/v2/m2/blobs/$D"
check "GET returns exactly the original bytes" cmp -s "$TMP/got2" "$TMP/blob"

# ---- a wrong digest after a resume stores nothing ---------------------------
st=$(http_status POST "/v2/m3/blobs/uploads/" -H "$AUTH")
U3=$(upload_path)
cut_patch "$U3" "$SIZE" "$CUT" 0 "0-$((SIZE - 1))"
wait_log "PATCH /v2/m3/blobs/uploads/.*(client went away)"
http_status GET "$U3" -H "$AUTH" >/dev/null
N3=$(($(range_end) + 1))
tail -c +"$((N3 + 2))" "$TMP/blob" >"$TMP/rest3" # skips one byte: the digest cannot match
expect_status "a resumed upload missing a byte: the PATCH is taken (202)" 202 PATCH "$U3" \
    -H "$AUTH" -H "Content-Type: application/octet-stream" \
    -H "Content-Range: $N3-$((SIZE - 2))" --data-binary @"$TMP/rest3"
expect_status "and its PUT ?digest= is refused: 400 DIGEST_INVALID" 400 PUT "$U3?digest=$D" \
    -H "$AUTH" -H "Content-Length: 0"
check "the refusal names the mismatch" grep -q "digest mismatch" "$TMP/body"
expect_status "the session is gone afterwards: 404" 404 GET "$U3" -H "$AUTH"
check "no temp file is left" [ "$(tmp_count)" = 0 ]
expect_status "the server still answers" 200 GET /v2/ -H "$AUTH"

finish
