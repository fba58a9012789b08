#!/bin/sh
# test_cluster_mtls.sh: nodes of one bucket prefix serving HTTPS with mutual
# TLS (docs/operations.md, "Several nodes"): an upload session opened on
# node 1 is continued and completed through node 2, which forwards the
# requests to node 1 over TLS, checking node 1's certificate against
# cluster.ca_file and showing its own, which node 1's tls.client_ca_file
# must have signed. A node without cluster.ca_file cannot verify node 1 and
# forwards nothing; a client without a certificate is refused by every node.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"

command -v openssl >/dev/null 2>&1 || { not_ok "openssl is installed (make deps installs it)"; finish; }
W=$TMP/work
P=$TMP/pki
mkdir -p "$W" "$P"
leaf() { # NAME EXT: a key and a certificate signed by the test CA
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$P/$1.key" -out "$P/$1.csr" 2>>"$TMP/openssl.log" &&
        printf '%s\n' "$2" >"$P/$1.ext" &&
        openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
            -days 2 -extfile "$P/$1.ext" -out "$P/$1.crt" 2>>"$TMP/openssl.log" &&
        chmod 600 "$P/$1.key"
}
if ! { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=mlreg test nodes" -keyout "$P/ca.key" -out "$P/ca.crt" 2>>"$TMP/openssl.log" &&
    leaf node 'subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth' &&
    leaf client 'extendedKeyUsage=clientAuth'; }; then
    not_ok "openssl makes the test certificates"; cat "$TMP/openssl.log"; finish
fi

make_log_key logkey || finish
new_prefix PREFIX
cluster_finish() { cluster_stop_all; finish; }
# node_conf FILE [ca]: TLS with the node certificate, mutual TLS with the
# test CA, and with "ca" the CA that verifies the other nodes
node_conf() {
    write_node_config "$1.base" "$PREFIX" "$TMP/logkey.key"
    jq --arg cert "$P/node.crt" --arg key "$P/node.key" --arg ca "$P/ca.crt" --arg peer "${2:-}" \
        '.tls = {cert_file: $cert, key_file: $key, client_ca_file: $ca}
         | if $peer != "" then .cluster.ca_file = $ca else . end' "$1.base" >"$1"
}
node_conf "$W/c.json" ca
node_conf "$W/c-noca.json"
for n in 1 2; do start_node $n "$W/c.json" || cluster_finish; done
start_node 3 "$W/c-noca.json" || cluster_finish
check "the nodes serve https ($(node_url 1))" sh -c "case '$(node_url 1)' in https://*) true ;; *) false ;; esac"
mcurl() { curl -s --cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key" "$@"; }

st=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" "$(node_url 2)/v2/")
check "a client without a certificate gets no answer from a node (got $st)" [ "$st" != 200 ]
st=$(mcurl -o /dev/null -w '%{http_code}' "$(node_url 2)/v2/")
check "a client with one signed by the CA does (got $st)" [ "$st" = 200 ]

# every node must know the others' https URLs (heartbeats) before forwarding
i=0
until [ "$(mcurl "$(node_url 2)/api/v1/cluster" | jq '[.nodes[] | select(.url | startswith("https://"))] | length')" -ge 3 ] ||
    [ $i -gt 100 ]; do sleep 0.1; i=$((i + 1)); done

head -c 2000000 /dev/urandom >"$W/chunk.bin"
D=$(sha256_of "$W/chunk.bin")
loc=$(mcurl -D - -o /dev/null -X POST "$(node_url 1)/v2/m/tls/blobs/uploads/" | tr -d '\r' |
    sed -n 's/^Location: //p')
check "a session opened on node 1 has a Location" [ -n "$loc" ]
st=$(mcurl -o /dev/null -w '%{http_code}' -X PATCH -H 'X-Request-Id: mtls-forward-1' \
    -H 'Content-Type: application/octet-stream' --data-binary @"$W/chunk.bin" "$(node_url 2)$loc")
check "... takes a PATCH through node 2, forwarded over mutual TLS (got $st)" [ "$st" = 202 ]
check "... which node 1 served (its log has the request id)" \
    sh -c "i=0; until grep -q 'id=mtls-forward-1' '$(node_log 1)' || [ \$i -gt 40 ]; do sleep 0.05; i=\$((i+1)); done; grep -q 'PATCH .* 202 .*id=mtls-forward-1' '$(node_log 1)'"
st=$(mcurl -o "$TMP/body" -w '%{http_code}' -X PUT "$(node_url 3)$loc?digest=sha256:$D")
check "node 3, without cluster.ca_file, cannot verify node 1 and forwards nothing (got $st)" \
    [ "$st" -ge 500 ]
check "... its log names the certificate it could not verify" \
    grep -q "forwarding PUT .* to the node holding the upload: SSL certificate problem" "$(node_log 3)"
st=$(mcurl -o /dev/null -w '%{http_code}' -X PUT "$(node_url 2)$loc?digest=sha256:$D")
check "the session is completed by a PUT through node 2 (got $st)" [ "$st" = 201 ]
mcurl -o "$W/chunk.back" "$(node_url 2)/v2/m/tls/blobs/sha256:$D"
check "... the blob reads back byte-identical through node 2" cmp -s "$W/chunk.bin" "$W/chunk.back"
for n in 1 2 3; do stop_node $n || not_ok "node $n exits 0 on SIGTERM"; done
cluster_finish
