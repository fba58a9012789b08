#!/bin/sh
# The data directory stays the server's own: error answers never show a
# client where it lives (5xx messages go to the server log only).
. "$(dirname "$0")/lib.sh"

MT=application/vnd.oci.image.manifest.v1+json
code_is() { [ "$(jq -r '.errors[0].code' "$TMP/body" 2>/dev/null)" = "$1" ]; }
body_has_no_path() { ! grep -q -e "$DATA" -e "/blobs/" -e "/meta" "$TMP/body"; }
alive() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$MLREG_URL/v2/")" = 200 ]; }
post_blob() {
    d=sha256:$(sha256_of "$2")
    st=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$2" \
        "$MLREG_URL/v2/$1/blobs/uploads/?digest=$d")
    [ "$st" = 201 ] || { echo "post_blob $1 $2: $st" >&2; return 1; }
    echo "$d"
}

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

finish
