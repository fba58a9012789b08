/* server_tls.c: the server's TLS material (tls.cert_file, tls.key_file,
 * tls.client_ca_file) and the client-certificate check of mutual TLS.
 *
 * libmicrohttpd takes the certificate and key as PEM in memory and hands
 * them to GnuTLS, which says little when they are wrong ("cannot set up
 * TLS"). So the files are read and parsed here first, with GnuTLS, and every
 * fault stops the start naming the file and the fault: a file that holds no
 * PEM certificate, a key that is not a private key (or is encrypted), a key
 * whose public half is not the certificate's, a key file other users may
 * read. The key bytes live in sodium_malloc memory and are wiped as soon as
 * libmicrohttpd has parsed them (mlreg_server_tls_wipe_key(), called by
 * mlreg_server_start()). An expired or not yet valid certificate is not
 * refused: clients refuse it, and the operator sees a warning at start.
 *
 * Mutual TLS: libmicrohttpd 0.9.75 with a trust list asks every client for
 * a certificate (GNUTLS_CERT_REQUEST) but lets the handshake complete
 * without one and never verifies one it got. mlreg_server__tls_peer_check()
 * does both, once per connection: the verdict is cached in the
 * connection's state (server_limits.c) on its first request.
 *
 * Reload: libmicrohttpd is given no certificate; GnuTLS asks
 * mlreg_server__tls_cert_callback() at every handshake, which answers with
 * the credentials of the config in force (server_reload.c), so a reload
 * that read new files serves them from the next handshake on. The session
 * pointer libmicrohttpd 0.9.75 sets is its connection, which leads to our
 * connection state and so to the server. The client CA of mutual TLS is
 * given to libmicrohttpd at start and cannot change without a restart.
 */
#include "server_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlreg/common.h"
#include "mlreg/digest.h"

/* Largest PEM file read: a long chain or a CA bundle fits easily. */
#define TLS_FILE_MAX (1024u * 1024)

struct mlreg_server_tls {
    char *cert;      /* PEM, NUL-terminated (sodium_malloc) */
    char *key;       /* PEM, NUL-terminated (sodium_malloc); NULL once wiped */
    size_t key_len;  /* bytes of the key buffer */
    char *client_ca; /* PEM or NULL (sodium_malloc) */
    int64_t not_before, not_after;
    unsigned int chain_len;     /* certificates in cert_file */
    unsigned int client_ca_len; /* certificates in client_ca_file */
};

static void pem_free(char *p, size_t len)
{
    if (!p) return;
    sodium_memzero(p, len);
    sodium_free(p);
}

/* Reads the PEM file @p path (named @p key in messages, "tls.cert_file")
 * into sodium_malloc memory. With @p private set the file must not be
 * open to the group or to other users. The open is non-blocking so a FIFO
 * cannot hang the start; fstat then refuses anything but a regular file. */
static int read_pem(char **out, size_t *len_out, const char *path, const char *key, int private)
{
    int error = 0, fd = -1;
    struct stat st;
    char *buf = NULL;
    size_t cap = 0, got = 0;

    *out = NULL;
    *len_out = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0 || fstat(fd, &st) < 0) {
        error = mlreg_error_set(MLREG_EIO, "%s %s: %s", key, path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        error = mlreg_error_set(MLREG_EINVALID, "%s %s is not a regular file", key, path);
        goto done;
    }
    if (private && (st.st_mode & (S_IRWXG | S_IRWXO))) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "%s %s has mode %04o: other users may read the private key; "
                                "chmod 600 %s",
                                key, path, (unsigned int)(st.st_mode & 07777), path);
        goto done;
    }
    if ((uint64_t)st.st_size > TLS_FILE_MAX || st.st_size == 0) {
        error = mlreg_error_set(MLREG_EINVALID, "%s %s is %s", key, path,
                                st.st_size == 0 ? "empty" : "larger than 1 MiB");
        goto done;
    }
    cap = (size_t)st.st_size + 1;
    if (sodium_init() < 0 || !(buf = sodium_malloc(cap))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = mlreg_error_set(MLREG_EIO, "%s %s: %s", key, path, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    if (memchr(buf, '\0', got)) {
        error =
            mlreg_error_set(MLREG_EINVALID, "%s %s holds a NUL byte: not a PEM file", key, path);
        goto done;
    }
    *out = buf;
    *len_out = cap;
    buf = NULL;
done:
    if (fd >= 0) close(fd);
    pem_free(buf, cap);
    return error;
}

/* The certificates of a PEM file: at least one, every one parsed. */
static int parse_certs(gnutls_x509_crt_t **crts, unsigned int *n, const char *pem, const char *key,
                       const char *path)
{
    gnutls_datum_t d = {(unsigned char *)(uintptr_t)pem, (unsigned int)strlen(pem)};
    int rc;

    *crts = NULL;
    *n = 0;
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----"))
        return mlreg_error_set(MLREG_EINVALID,
                               "%s %s holds no PEM certificate (no \"-----BEGIN "
                               "CERTIFICATE-----\" line)",
                               key, path);
    if ((rc = gnutls_x509_crt_list_import2(crts, n, &d, GNUTLS_X509_FMT_PEM, 0)) < 0 || *n == 0) {
        *crts = NULL;
        *n = 0;
        return mlreg_error_set(MLREG_EINVALID, "%s %s: not a valid PEM certificate (%s)", key, path,
                               rc < 0 ? gnutls_strerror(rc) : "none found");
    }
    return 0;
}

static void free_certs(gnutls_x509_crt_t *crts, unsigned int n)
{
    for (unsigned int i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
}

/* The key parses as an unencrypted private key, and its public key is the
 * one of the first certificate of the chain. */
static int check_key(const mlreg_server_tls *t, gnutls_x509_crt_t leaf, const char *cert_file,
                     const char *key_file)
{
    gnutls_x509_privkey_t pk = NULL;
    gnutls_datum_t d = {(unsigned char *)t->key, (unsigned int)strlen(t->key)};
    unsigned char kid[64], cid[64];
    size_t klen = sizeof(kid), clen = sizeof(cid);
    int rc, error = 0;

    if (!strstr(t->key, "PRIVATE KEY-----"))
        return mlreg_error_set(MLREG_EINVALID,
                               "tls.key_file %s holds no PEM private key (no \"-----BEGIN ... "
                               "PRIVATE KEY-----\" line)",
                               key_file);
    if (strstr(t->key, "ENCRYPTED PRIVATE KEY") || strstr(t->key, "Proc-Type: 4,ENCRYPTED"))
        return mlreg_error_set(MLREG_EINVALID,
                               "tls.key_file %s is encrypted; mlreg needs the key without a "
                               "passphrase (openssl pkey -in KEY -out KEY.plain), kept mode 0600",
                               key_file);
    if ((rc = gnutls_x509_privkey_init(&pk)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if ((rc = gnutls_x509_privkey_import2(pk, &d, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        error = mlreg_error_set(MLREG_EINVALID, "tls.key_file %s: not a valid PEM private key (%s)",
                                key_file, gnutls_strerror(rc));
        goto done;
    }
    if ((rc = gnutls_x509_privkey_get_key_id(pk, GNUTLS_KEYID_USE_SHA256, kid, &klen)) < 0 ||
        (rc = gnutls_x509_crt_get_key_id(leaf, GNUTLS_KEYID_USE_SHA256, cid, &clen)) < 0) {
        error = mlreg_error_set(MLREG_EINVALID, "tls.key_file %s: cannot read its public key (%s)",
                                key_file, gnutls_strerror(rc));
        goto done;
    }
    if (klen != clen || memcmp(kid, cid, klen))
        error = mlreg_error_set(MLREG_EINVALID,
                                "tls.key_file %s does not belong to the certificate in "
                                "tls.cert_file %s (the key's public half is not the "
                                "certificate's)",
                                key_file, cert_file);
done:
    gnutls_x509_privkey_deinit(pk);
    return error;
}

int mlreg_server_tls_load(mlreg_server_tls **out, const char *cert_file, const char *key_file,
                          const char *client_ca_file)
{
    int error = 0;
    mlreg_server_tls *t = NULL;
    gnutls_x509_crt_t *chain = NULL, *cas = NULL;
    unsigned int n_chain = 0, n_cas = 0;
    size_t cert_len = 0, ca_len = 0;

    *out = NULL;
    if (!cert_file || !key_file)
        return mlreg_error_set(MLREG_EINVALID,
                               "TLS needs both tls.cert_file and tls.key_file (or neither)");
    if (gnutls_check_version("3.0.0") == NULL)
        return mlreg_error_set(MLREG_EUNSUPPORTED, "GnuTLS 3 or later is needed for TLS");
    if (!(t = calloc(1, sizeof(*t)))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if ((error = read_pem(&t->cert, &cert_len, cert_file, "tls.cert_file", 0)) < 0 ||
        (error = read_pem(&t->key, &t->key_len, key_file, "tls.key_file", 1)) < 0 ||
        (client_ca_file &&
         (error = read_pem(&t->client_ca, &ca_len, client_ca_file, "tls.client_ca_file", 0)) < 0))
        goto done;
    if ((error = parse_certs(&chain, &n_chain, t->cert, "tls.cert_file", cert_file)) < 0 ||
        (error = check_key(t, chain[0], cert_file, key_file)) < 0)
        goto done;
    if (client_ca_file &&
        (error = parse_certs(&cas, &n_cas, t->client_ca, "tls.client_ca_file", client_ca_file)) < 0)
        goto done;
    t->not_before = (int64_t)gnutls_x509_crt_get_activation_time(chain[0]);
    t->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(chain[0]);
    t->chain_len = n_chain;
    t->client_ca_len = n_cas;
    *out = t;
    t = NULL;
done:
    free_certs(chain, n_chain);
    free_certs(cas, n_cas);
    if (t) {
        pem_free(t->cert, cert_len);
        pem_free(t->key, t->key_len);
        pem_free(t->client_ca, ca_len);
        free(t);
    }
    return error;
}

void mlreg_server_tls_free(mlreg_server_tls *t)
{
    if (!t) return;
    pem_free(t->cert, strlen(t->cert) + 1);
    mlreg_server_tls_wipe_key(t);
    if (t->client_ca) pem_free(t->client_ca, strlen(t->client_ca) + 1);
    free(t);
}

void mlreg_server_tls_wipe_key(mlreg_server_tls *t)
{
    if (!t || !t->key) return;
    pem_free(t->key, t->key_len);
    t->key = NULL;
}

void mlreg_server_tls_validity(int64_t *not_before, int64_t *not_after, const mlreg_server_tls *t)
{
    *not_before = t->not_before;
    *not_after = t->not_after;
}

int mlreg_server_tls_mutual(const mlreg_server_tls *t)
{
    return t->client_ca != NULL;
}

const char *mlreg_server__tls_cert(const mlreg_server_tls *t)
{
    return t->cert;
}

const char *mlreg_server__tls_key(const mlreg_server_tls *t)
{
    return t->key;
}

const char *mlreg_server__tls_client_ca(const mlreg_server_tls *t)
{
    return t->client_ca;
}

/* The verdict on the connection's client certificate: NULL when it was
 * given and verifies against tls.client_ca_file, else why not. GnuTLS
 * checks the signature chain, the validity dates and the key usage. */
static const char *peer_verdict(struct MHD_Connection *conn, char *why, size_t len)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t s;
    const gnutls_datum_t *peers;
    unsigned int n = 0, status = 0;
    gnutls_datum_t text = {NULL, 0};
    int rc;

    if (!info || !info->tls_session) return "the connection has no TLS session";
    s = (gnutls_session_t)info->tls_session;
    if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509 ||
        !(peers = gnutls_certificate_get_peers(s, &n)) || n == 0)
        return "the client sent no certificate";
    if ((rc = gnutls_certificate_verify_peers2(s, &status)) < 0) {
        snprintf(why, len, "its certificate could not be checked: %s", gnutls_strerror(rc));
        return why;
    }
    if (status == 0) return NULL;
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0 &&
        text.data) {
        snprintf(why, len, "its certificate does not verify: %s", (const char *)text.data);
        gnutls_free(text.data);
    } else {
        snprintf(why, len, "its certificate does not verify (status 0x%x)", status);
    }
    return why;
}

int mlreg_server__tls_peer_check(struct MHD_Connection *conn)
{
    char why[256];
    const char *verdict;
    int cached = mlreg_server__conns_peer_verdict(conn);

    if (cached > 0) return 0;
    if (cached < 0)
        return mlreg_error_set(MLREG_EFORBIDDEN,
                               "a client certificate signed by the registry's client CA is "
                               "required (the connection's certificate was refused)");
    verdict = peer_verdict(conn, why, sizeof(why));
    mlreg_server__conns_set_peer_verdict(conn, verdict == NULL ? 1 : -1);
    if (verdict == NULL) return 0;
    return mlreg_error_set(MLREG_EFORBIDDEN,
                           "a client certificate signed by the registry's client CA is required: "
                           "%s",
                           verdict);
}

/* ---- credentials served by the handshake callback -------------------------- */

struct tls_creds {
    tls_creds *next;
    gnutls_pcert_st *pcerts;
    unsigned int n;
    gnutls_privkey_t key;
    mlreg_digest digest; /* of the certificate PEM, then the key PEM */
};

int mlreg_server__tls_creds_new(tls_creds **out, const mlreg_server_tls *t)
{
    tls_creds *c = NULL;
    gnutls_datum_t cert = {(unsigned char *)t->cert, (unsigned int)strlen(t->cert)};
    gnutls_datum_t key = {NULL, 0};
    mlreg_hasher *h = NULL;
    int error = 0, rc;

    if (t->key == NULL)
        return mlreg_error_set(MLREG_EINVALID, "the TLS key was wiped already; read it again");
    key.data = (unsigned char *)t->key;
    key.size = (unsigned int)strlen(t->key);
    if (!(c = calloc(1, sizeof(*c))) || !(c->pcerts = calloc(t->chain_len, sizeof(*c->pcerts)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    c->n = t->chain_len;
    if ((rc = gnutls_pcert_list_import_x509_raw(c->pcerts, &c->n, &cert, GNUTLS_X509_FMT_PEM, 0)) <
        0) {
        c->n = 0;
        error = mlreg_error_set(MLREG_EINVALID, "tls.cert_file: GnuTLS refused the chain (%s)",
                                gnutls_strerror(rc));
        goto done;
    }
    if ((rc = gnutls_privkey_init(&c->key)) < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        error = mlreg_error_set(MLREG_EINVALID, "tls.key_file: GnuTLS refused the key (%s)",
                                gnutls_strerror(rc));
        goto done;
    }
    if ((error = mlreg_hasher_new(&h)) < 0 ||
        (error = mlreg_hasher_update(h, cert.data, cert.size)) < 0 ||
        (error = mlreg_hasher_update(h, key.data, key.size)) < 0 ||
        (error = mlreg_hasher_final(&c->digest, h)) < 0)
        goto done;
    *out = c;
    c = NULL;
done:
    mlreg_hasher_free(h);
    mlreg_server__tls_creds_free(c);
    return error;
}

int mlreg_server__tls_creds_same(const tls_creds *a, const tls_creds *b)
{
    return a != NULL && b != NULL && mlreg_digest_equal(&a->digest, &b->digest);
}

void mlreg_server__tls_creds_link(tls_creds **list, tls_creds *c)
{
    c->next = *list;
    *list = c;
}

void mlreg_server__tls_creds_free(tls_creds *c)
{
    while (c != NULL) {
        tls_creds *next = c->next;
        for (unsigned int i = 0; i < c->n; i++)
            gnutls_pcert_deinit(&c->pcerts[i]);
        free(c->pcerts);
        if (c->key) gnutls_privkey_deinit(c->key);
        free(c);
        c = next;
    }
}

int mlreg_server__tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn,
                                    int nreqs, const gnutls_pk_algorithm_t *pk_algos,
                                    int pk_algos_length, gnutls_pcert_st **pcert,
                                    unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    struct MHD_Connection *conn = gnutls_session_get_ptr(session);
    mlreg_server *srv = conn != NULL ? mlreg_server__conns_owner(conn) : NULL;
    server_conf *conf;
    const tls_creds *c;

    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    /* a connection without our state (refused, or no memory) gets no
     * certificate: the handshake fails and the connection closes */
    if (srv == NULL) return -1;
    conf = mlreg_server__conf_acquire(srv);
    c = conf->tls;
    mlreg_server__conf_release(conf);
    if (c == NULL) return -1;
    /* the set stays allocated until the server stops (srv->tls_all) */
    *pcert = c->pcerts;
    *pcert_length = c->n;
    *pkey = c->key;
    return 0;
}
