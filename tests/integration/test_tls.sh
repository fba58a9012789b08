#!/bin/sh
# test_tls.sh: HTTPS (tls.cert_file, tls.key_file) and mutual TLS
# (tls.client_ca_file) on the real server, with certificates made here by
# openssl: the CLI pushes and pulls over HTTPS with --cacert (and
# MLREG_CACERT), curl and skopeo (--cert-dir) read and copy over it, a
# wrong CA and plain HTTP to the TLS port fail closed, keep-alive holds over
# TLS, bad TLS files stop the start naming the file, mutual TLS refuses a
# client without a certificate; off loopback plain HTTP needs
# --insecure-http (server) and the CLI never sends a token over plain
# http:// to a host that is not loopback.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

for t in openssl skopeo jq; do
    command -v $t >/dev/null 2>&1 || { not_ok "$t is installed (make deps installs it)"; finish; }
done

# ---- a CA, a server certificate for 127.0.0.1/localhost, a client CA and
# client certificate, another CA, an expired server certificate ------------
P=$TMP/pki
mkdir -p "$P"
ca() { # NAME
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=mlreg test $1" -keyout "$P/$1.key" -out "$P/$1.crt" 2>>"$TMP/openssl.log"
}
leaf() { # NAME CA DAYS EXT
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$P/$1.key" -out "$P/$1.csr" 2>>"$TMP/openssl.log" &&
        printf '%s\n' "$4" >"$P/$1.ext" &&
        openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.crt" -CAkey "$P/$2.key" -CAcreateserial \
            -days "$3" -extfile "$P/$1.ext" -out "$P/$1.crt" 2>>"$TMP/openssl.log" &&
        chmod 600 "$P/$1.key"
}
SAN='subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth'
if ! { ca ca && ca clientca && ca other &&
    leaf server ca 2 "$SAN" && leaf expired ca -1 "$SAN" &&
    leaf client clientca 2 'extendedKeyUsage=clientAuth' &&
    leaf stranger other 2 'extendedKeyUsage=clientAuth'; }; then
    not_ok "openssl makes the test certificates"; cat "$TMP/openssl.log"; finish
fi

T=$(tok)
tls_conf() { # FILE [client_ca]
    printf '{"tokens":[{"name":"ci","sha256":"%s","roles":["admin"]}],
  "tls":{"cert_file":"pki/server.crt","key_file":"pki/server.key"%s}}\n' "$(hash "$T")" \
        "${2:+,\"client_ca_file\":\"pki/$2.crt\"}" >"$1"
}
tls_conf "$TMP/tls.json"
# refused NAME CONFIG NEEDLE: serve with CONFIG exits 2 before listening, naming NEEDLE
refused() {
    timeout 10 "$MLREG" serve --config "$2" --listen 127.0.0.1:0 --data "$TMP/refused" \
        >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$3" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (exit $rc: $(head -c 400 "$TMP/err"))"; fi
}

# ---- bad TLS files stop the start, naming the file and the fault ----------
cfg_with() { # FILE CERT KEY
    printf '{"tls":{"cert_file":"%s","key_file":"%s"}}\n' "$2" "$3" >"$1"
}
chmod 644 "$P/server.key"
cfg_with "$TMP/b1.json" pki/server.crt pki/server.key
refused "a key file other users may read is refused, naming the chmod" "$TMP/b1.json" \
    "tls.key_file $P/server.key has mode 0644: other users may read the private key; chmod 600 $P/server.key"
chmod 600 "$P/server.key"
cfg_with "$TMP/b2.json" pki/server.crt pki/client.key
refused "a key that is not the certificate's is refused, naming both files" "$TMP/b2.json" \
    "tls.key_file $P/client.key does not belong to the certificate in tls.cert_file $P/server.crt"
printf -- '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' \
    >"$P/garbage.crt"
cfg_with "$TMP/b3.json" pki/garbage.crt pki/server.key
refused "a garbage PEM certificate is refused, naming the file" "$TMP/b3.json" \
    "tls.cert_file $P/garbage.crt: not a valid PEM certificate"
printf 'hello\n' >"$P/garbage.key"
chmod 600 "$P/garbage.key"
cfg_with "$TMP/b4.json" pki/server.crt pki/garbage.key
refused "a key file without a PEM key is refused, naming the file" "$TMP/b4.json" \
    "tls.key_file $P/garbage.key holds no PEM private key"
cfg_with "$TMP/b5.json" pki/server.key pki/server.key
refused "a certificate file holding a key is refused" "$TMP/b5.json" \
    "tls.cert_file $P/server.key holds no PEM certificate"
check "refused starts created no data dir" [ ! -e "$TMP/refused" ]

# ---- the CLI over HTTPS ---------------------------------------------------
start_server --config "$TMP/tls.json" || finish
case $MLREG_URL in
https://127.0.0.1:[1-9]*) ok "the ready file holds the https:// URL" ;;
*) not_ok "the ready file holds the https:// URL (got $MLREG_URL)" ;;
esac
check "the log says it listens on the https:// URL" \
    grep -q "listening on $MLREG_URL" "$TMP/server.log"
HOSTPORT=${MLREG_URL#https://}
export MLREG_TOKEN="$T"
W=$TMP/work
mkdir -p "$W"
head -c 300000 /dev/urandom >"$W/model.bin"
printf '{"metrics":{"accuracy":0.9}}' >"$W/eval.json"
run "$MLREG" push team/tls@1.0.0 --weights "$W/model.bin" --eval-report "$W/eval.json" --cacert "$P/ca.crt"
expect_rc "mlreg push over HTTPS with --cacert" 0
export MLREG_TOKEN="$T"
run env MLREG_CACERT="$P/ca.crt" "$MLREG" pull team/tls@1.0.0 -o "$W/out"
expect_rc "mlreg pull over HTTPS with MLREG_CACERT" 0
check "... the weights arrive byte for byte" cmp -s "$W/model.bin" "$W/out/model.bin"

export MLREG_TOKEN="$T"
run "$MLREG" show team/tls@1.0.0 --cacert "$P/other.crt"
expect_rc "a wrong CA fails closed with the unreachable exit code" 3
check "... naming the certificate problem and --cacert" \
    grep -q "certificate.*--cacert FILE or MLREG_CACERT" "$TMP/err"
export MLREG_TOKEN="$T"
run "$MLREG" show team/tls@1.0.0
expect_rc "without --cacert the system CAs do not trust the test CA (exit 3)" 3
export MLREG_TOKEN="$T"
run "$MLREG" show team/tls@1.0.0 --registry "http://$HOSTPORT" --cacert "$P/ca.crt"
expect_rc "the CLI speaking plain HTTP to the TLS port fails (exit 3)" 3
check "... suggesting the https:// URL" grep -q "use its https:// URL" "$TMP/err"
run "$MLREG" show team/tls@1.0.0 --key "$P/client.key" --cacert "$P/ca.crt"
expect_rc "a client key without its certificate is a usage error" 2

# ---- curl: /v2/, a manifest, keep-alive, plain HTTP refused ---------------
AUTH="Authorization: Bearer $T"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' --cacert "$P/ca.crt" -H "$AUTH" "$MLREG_URL/v2/")
check "curl --cacert reads /v2/ over HTTPS (got $st)" [ "$st" = 200 ]
st=$(curl -s -o "$TMP/body" -w '%{http_code}' --cacert "$P/ca.crt" -H "$AUTH" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$MLREG_URL/v2/team/tls/manifests/1.0.0")
check "curl --cacert reads the manifest over HTTPS (got $st)" \
    [ "$st" = 200 ] && jq -e '.annotations["org.mlreg.version"] == "1.0.0"' "$TMP/body" >/dev/null
n=$(curl -s -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects}\n' --cacert "$P/ca.crt" \
    -H "$AUTH" "$MLREG_URL/v2/" "$MLREG_URL/v2/team/tls/tags/list" "$MLREG_URL/v2/" |
    tr '\n' ' ')
check "keep-alive over TLS: three requests on one connection (connects: $n)" [ "$n" = "1 0 0 " ]
curl -s -o /dev/null -H "$AUTH" "http://$HOSTPORT/v2/"
rc=$?
check "plain HTTP to the TLS port gets no answer (curl exit $rc)" [ $rc -ne 0 ]
check "the server still answers over HTTPS" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" "$MLREG_URL/api/v1/health")" = 200 ]
curl -s --cacert "$P/ca.crt" "$MLREG_URL/api/v1/health" >"$TMP/health"
check "health says tls: true, insecure_http: false" \
    jq -e '.tls == true and .insecure_http == false' "$TMP/health" >/dev/null

# ---- skopeo with --cert-dir (ca.crt) copies the release out and in --------
mkdir -p "$TMP/certs"
cp "$P/ca.crt" "$TMP/certs/ca.crt"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$TMP/policy.json"
sk() { skopeo --policy "$TMP/policy.json" copy --quiet "$@" 2>>"$TMP/skopeo.log"; }
check "skopeo copies the release out over HTTPS (--src-cert-dir)" \
    sk --src-cert-dir "$TMP/certs" --src-creds "ci:$T" \
    "docker://$HOSTPORT/team/tls:1.0.0" "oci:$TMP/layout:1.0.0"
M_TLS=$(curl -s --cacert "$P/ca.crt" -H "$AUTH" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$MLREG_URL/v2/team/tls/manifests/1.0.0" | sha256sum | cut -c1-64)
check "... the manifest byte for byte" [ -s "$TMP/layout/blobs/sha256/$M_TLS" ]
oci_release_layout "$TMP/sklayout" team/sk 200000
check "skopeo copies an OCI layout in over HTTPS (--dest-cert-dir)" \
    sk --dest-cert-dir "$TMP/certs" --dest-creds "ci:$T" \
    "oci:$TMP/sklayout:1.0.0" "docker://$HOSTPORT/team/sk:1.0.0"
export MLREG_TOKEN="$T"
run "$MLREG" pull team/sk@1.0.0 -o "$W/sk" --cacert "$P/ca.crt"
check "... and the CLI pulls it with the same weights" cmp -s "$TMP/weights.bin" "$W/sk/weights.bin"
mkdir -p "$TMP/nocerts"
cp "$P/other.crt" "$TMP/nocerts/ca.crt"
if sk --src-cert-dir "$TMP/nocerts" --src-creds "ci:$T" \
    "docker://$HOSTPORT/team/tls:1.0.0" "oci:$TMP/layout2:1.0.0"; then
    not_ok "skopeo with the wrong CA fails"
else ok "skopeo with the wrong CA fails"; fi
stop_server

# ---- an expired certificate is served, with a warning; clients refuse it --
printf '{"tls":{"cert_file":"pki/expired.crt","key_file":"pki/expired.key"}}\n' >"$TMP/exp.json"
start_server --config "$TMP/exp.json" || finish
check "an expired certificate starts with a warning naming it" \
    grep -q "tls.cert_file $P/expired.crt expired" "$TMP/server.log"
run "$MLREG" show team/tls@1.0.0 --cacert "$P/ca.crt"
expect_rc "the CLI refuses the expired certificate (exit 3)" 3
check "... saying it expired" grep -qi "expired" "$TMP/err"
stop_server

# ---- mutual TLS -----------------------------------------------------------
tls_conf "$TMP/mtls.json" clientca
DATA=$TMP/mdata
start_server --config "$TMP/mtls.json" || finish
HOSTPORT=${MLREG_URL#https://}
check "the log names the client CA" grep -q "must present a certificate signed by $P/clientca.crt" \
    "$TMP/server.log"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' --cacert "$P/ca.crt" -H "$AUTH" "$MLREG_URL/v2/")
check "mutual TLS: without a client certificate the request is refused (got $st)" \
    [ "$st" = 403 ] && grep -q "the client sent no certificate" "$TMP/body"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' --cacert "$P/ca.crt" --cert "$P/stranger.crt" \
    --key "$P/stranger.key" -H "$AUTH" "$MLREG_URL/v2/")
check "mutual TLS: a certificate of another CA is refused (got $st)" \
    [ "$st" = 403 ] && grep -q "does not verify" "$TMP/body"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' --cacert "$P/ca.crt" --cert "$P/client.crt" \
    --key "$P/client.key" -H "$AUTH" "$MLREG_URL/v2/")
check "mutual TLS: with the client certificate curl is served (got $st)" [ "$st" = 200 ]
export MLREG_TOKEN="$T"
run "$MLREG" push team/mtls@1.0.0 --weights "$W/model.bin" --cacert "$P/ca.crt"
expect_rc "mutual TLS: the CLI without a client certificate is refused (exit 1)" 1
check "... saying a client certificate is required" grep -q "client certificate" "$TMP/err"
export MLREG_TOKEN="$T"
run env MLREG_CLIENT_CERT="$P/client.crt" MLREG_CLIENT_KEY="$P/client.key" \
    "$MLREG" push team/mtls@1.0.0 --weights "$W/model.bin" --cacert "$P/ca.crt"
expect_rc "mutual TLS: the CLI with MLREG_CLIENT_CERT/MLREG_CLIENT_KEY pushes" 0
export MLREG_TOKEN="$T"
run "$MLREG" pull team/mtls@1.0.0 -o "$W/mout" --cacert "$P/ca.crt" --cert "$P/client.crt" \
    --key "$P/client.key"
expect_rc "mutual TLS: the CLI with --cert/--key pulls" 0
mkdir -p "$TMP/mcerts"
cp "$P/ca.crt" "$TMP/mcerts/ca.crt"
cp "$P/client.crt" "$TMP/mcerts/client.cert"
cp "$P/client.key" "$TMP/mcerts/client.key"
check "mutual TLS: skopeo with client.cert/client.key in --cert-dir copies" \
    sk --src-cert-dir "$TMP/mcerts" --src-creds "ci:$T" \
    "docker://$HOSTPORT/team/mtls:1.0.0" "oci:$TMP/mlayout:1.0.0"
stop_server
DATA=$TMP/data

# ---- off loopback: TLS or --insecure-http; the CLI keeps tokens off plain HTTP
printf '{"tokens":[{"name":"ci","sha256":"%s","roles":["admin"]}]}\n' "$(hash "$T")" \
    >"$TMP/plain.json"
timeout 10 "$MLREG" serve --config "$TMP/plain.json" --listen 0.0.0.0:0 --data "$TMP/refused" \
    >/dev/null 2>"$TMP/err"
rc=$?
check "0.0.0.0 with tokens but without TLS is refused (exit $rc), naming --insecure-http" \
    [ $rc -eq 2 ] && grep -q "refusing to listen on 0.0.0.0 without TLS.*--insecure-http" "$TMP/err"
"$MLREG" serve --config "$TMP/plain.json" --listen 0.0.0.0:0 --data "$TMP/open" --insecure-http \
    --ready-file "$TMP/open.ready" 2>"$TMP/open.log" &
OPID=$!
i=0
while [ ! -s "$TMP/open.ready" ] && [ $i -lt 100 ] && kill -0 $OPID 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
check "with --insecure-http it starts on 0.0.0.0" [ -s "$TMP/open.ready" ]
check "... and warns on stderr" grep -q "warning: --insecure-http: serving plain HTTP" "$TMP/open.log"
OURL=$(cat "$TMP/open.ready" 2>/dev/null)
OPORT=${OURL##*:}
curl -s "http://127.0.0.1:$OPORT/api/v1/health" >"$TMP/health"
check "health says insecure_http: true, tls: false" \
    jq -e '.insecure_http == true and .tls == false' "$TMP/health" >/dev/null
export MLREG_TOKEN="$T"
run "$MLREG" show team/none@1.0.0 --registry "http://127.0.0.1:$OPORT" --insecure-http
expect_rc "the CLI takes --insecure-http (a missing release: exit 1)" 1
export MLREG_TOKEN="$T"
run env MLREG_INSECURE_HTTP=yes "$MLREG" show team/none@1.0.0 --registry "http://127.0.0.1:$OPORT"
expect_rc "MLREG_INSECURE_HTTP other than 1 or 0 is a usage error" 2
# A non-loopback address of this machine: the CLI must refuse before it
# connects, so nothing is sent to it.
IP=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -v '^127\.' | grep -v ':' | grep . | head -n 1)
if [ -n "$IP" ]; then
    export MLREG_TOKEN="$T"
    run "$MLREG" show team/tls@1.0.0 --registry "http://$IP:$OPORT"
    expect_rc "the CLI refuses to send a token over plain http:// to $IP (exit 2)" 2
    check "... naming the host and --insecure-http" \
        grep -q "refusing to send the API token over plain http:// to $IP.*--insecure-http" "$TMP/err"
    check "... before connecting: the server saw no request for it" \
        sh -c "! grep -q 'team/tls' '$TMP/open.log'"
else
    echo "# skip the CLI's token rule off loopback: this machine has no non-loopback IPv4 address"
fi
kill -TERM $OPID 2>/dev/null
wait $OPID
check "the --insecure-http server stops cleanly" [ $? -eq 0 ]
[ "$FAILS" -eq 0 ] || cat "$TMP/skopeo.log" 2>/dev/null
finish
