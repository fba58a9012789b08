#!/bin/sh
# The data directory stays the server's own: no other local user can read
# it (directories 0700, files 0600, whatever the umask; older data
# directories are fixed at start), and error answers never show a client
# where it lives (5xx messages go to the server log only).
. "$(dirname "$0")/lib.sh"

MT=application/vnd.oci.image.manifest.v1+json
code_is() { [ "$(jq -r '.errors[0].code' "$TMP/body" 2>/dev/null)" = "$1" ]; }
body_has_no_path() { ! grep -q -e "$DATA" -e "/blobs/" -e "/meta" "$TMP/body"; }

# ---- 507: the metadata map is full (1 MiB map, a 1.5 MiB manifest) ----------------
printf '{"limits":{"map_size":1048576}}\n' >"$TMP/small-map.json"
start_server --config "$TMP/small-map.json" || finish
printf '{}' >"$TMP/cfg"
D_CFG=$(post_blob team/app "$TMP/cfg")
head -c 1500000 /dev/zero | tr '\0' ' ' >"$TMP/pad"
jq -cn --rawfile pad "$TMP/pad" --arg c "$D_CFG" '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
    config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2},
    layers:[], annotations:{pad:$pad}}' >"$TMP/big.json"
st=$(http_status PUT /v2/team/app/manifests/big -H "Content-Type: $MT" --data-binary @"$TMP/big.json")
if [ "$st" = 507 ] && code_is UNKNOWN; then ok "manifest over the map size: 507"; else
    not_ok "manifest over the map size: 507 (got $st: $(head -c 300 "$TMP/body"))"; fi
check "the 507 body names no path of the server" body_has_no_path
check "the 507 body says where the details are" grep -q "server log" "$TMP/body"
check "the server log has the map-full detail" \
    wait_log "error: PUT /v2/team/app/manifests/big: 507 UNKNOWN: metadata map full"
expect_status "the refused manifest was not stored" 404 GET /v2/team/app/manifests/big
check "server alive after the 507" alive
stop_server

# ---- 500: a blob file that is no longer a regular file ------------------------------
start_server || finish
printf 'blob that will be broken' >"$TMP/b"
D_B=$(post_blob team/app "$TMP/b")
HEX=${D_B#sha256:}
BLOB_FILE="$DATA/blobs/sha256/$(printf %.2s "$HEX")/$HEX"
rm -f "$BLOB_FILE" && mkdir "$BLOB_FILE"
for m in GET HEAD; do
    expect_status "$m of a blob whose file became a directory: 500" 500 $m "/v2/team/app/blobs/$D_B"
done
http_status GET "/v2/team/app/blobs/$D_B" >/dev/null
check "the 500 body names no path of the server" body_has_no_path
check "the 500 body is the generic internal error" code_is UNKNOWN
check "the server log names the broken blob file" \
    wait_log "error: GET /v2/team/app/blobs/$D_B: 500 UNKNOWN: blob $BLOB_FILE is not a regular file"
check "server alive after the 500" alive
stop_server

# ---- a fresh data directory is private, even under umask 000 ----------------------------
DATA=$TMP/fresh
: >"$TMP/server.log"
umask 000
start_server || finish
umask 022
for i in 1 2 3; do
    head -c 2000 /dev/urandom >"$TMP/w$i"
    eval "D_W$i=\$(post_blob team/model \"\$TMP/w\$i\")"
done
D_CFG=$(post_blob team/model "$TMP/cfg")
jq -cn --arg c "$D_CFG" --arg w "$D_W1" '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
    config:{mediaType:"application/vnd.oci.empty.v1+json", digest:$c, size:2},
    layers:[{mediaType:"application/octet-stream", digest:$w, size:2000}]}' >"$TMP/m.json"
expect_status "manifest PUT into the fresh data directory" 201 PUT /v2/team/model/manifests/v1 \
    -H "Content-Type: $MT" --data-binary @"$TMP/m.json"
open_entries() { find "$DATA" ! -type l -perm /077 | sort; }
OPEN=$(open_entries)
if [ -z "$OPEN" ]; then ok "no group or other permission anywhere in a fresh data directory"; else
    not_ok "no group or other permission anywhere in a fresh data directory: $(echo "$OPEN" | head -5)"
fi
check "a fresh data directory needed no fixing at start" sh -c "! grep -q 'private' '$TMP/server.log'"
stop_server

# ---- an old data directory with 0755 directories and 0644 files is fixed at start ---------
HEX=${D_W2#sha256:}
SUB="$DATA/blobs/sha256/$(printf %.2s "$HEX")"
chmod 0755 "$DATA" "$DATA/blobs" "$DATA/blobs/sha256" "$DATA/blobs/tmp" "$SUB"
chmod 0644 "$SUB/$HEX" "$DATA/audit/log.pub" "$DATA/meta/data.mdb"
mkdir -m 0750 "$DATA/audit/extra" && printf x >"$DATA/audit/extra/note" &&
    chmod 0604 "$DATA/audit/extra/note"
printf 'not mlreg data' >"$TMP/outside" && chmod 0644 "$TMP/outside"
ln -s "$TMP/outside" "$DATA/blobs/link-out"
ln -s "$TMP" "$DATA/audit/extra/link-dir"
# the operator's own file beside what mlreg keeps: not mlreg's to change
printf 'notes' >"$DATA/operator-notes.txt" && chmod 0644 "$DATA/operator-notes.txt"
start_server || finish
check "the start logs how many entries it made private" \
    wait_log "data directory $DATA: made 10 entries private"
check "a file of the operator's beside blobs/, meta/ and audit/ is left alone" \
    [ "$(stat -c %a "$DATA/operator-notes.txt")" = 644 ]
rm -f "$DATA/operator-notes.txt"
OPEN=$(open_entries)
if [ -z "$OPEN" ]; then ok "no group or other permission left after the start"; else
    not_ok "no group or other permission left after the start: $(echo "$OPEN" | head -5)"; fi
check "a symlink's target outside the data directory is left alone" \
    [ "$(stat -c %a "$TMP/outside")" = 644 ]
check "a symlinked directory outside the data directory is left alone" \
    [ "$(stat -c %a "$TMP/cfg")" = 644 ]
check "file modes are otherwise kept (0604 -> 0600, 0750 -> 0700)" \
    [ "$(stat -c %a "$DATA/audit/extra/note") $(stat -c %a "$DATA/audit/extra")" = "600 700" ]
curl -s -o "$TMP/got" "$MLREG_URL/v2/team/model/blobs/$D_W2"
check "blobs are served after the fix" cmp -s "$TMP/got" "$TMP/w2"
stop_server
: >"$TMP/server.log"
start_server || finish
check "the next start has nothing to fix" sh -c "! grep -q 'private' '$TMP/server.log'"

finish
