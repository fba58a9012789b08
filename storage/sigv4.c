/* sigv4.c: AWS Signature Version 4, header and presigned query forms.
 *
 * Everything is built in growable string buffers that remember an allocation
 * failure (sb.oom) instead of checking every append: one check at the end.
 * The traps, all covered by the vectors in tests/vectors/sigv4:
 * - S3 encodes the path exactly once and never normalises it ("//a/../b" is
 *   signed as is); other services normalise (normalize_path, tests only).
 * - Query keys and values are encoded, then sorted by key, then by value.
 * - Header values are trimmed and inner whitespace runs (folded lines too)
 *   become one space; repeated headers join with ',' in the order given.
 * - The session token is part of the signature unless told otherwise (STS
 *   "header after" style), and is then sent unsigned.
 */
#include "mlreg/sigv4.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void sb_encode(sbuf *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            sb_putn(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_putn(b, e, 3);
        }
    }
}

int mlreg_sigv4_uri_encode(char **out, const char *s, size_t len, int keep_slash)
{
    sbuf b = {0};

    sb_putn(&b, "", 0);
    sb_encode(&b, s, len, keep_slash);
    if (b.oom) {
        free(b.p);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory encoding a uri");
    }
    *out = b.p;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends @p v trimmed, with each inner whitespace run as one space. */
static void sb_put_header_value(sbuf *b, const char *v)
{
    int pending = 0, started = 0;

    for (; *v; v++) {
        if (is_space(*v)) {
            pending = started;
            continue;
        }
        if (pending) sb_putn(b, " ", 1);
        pending = 0;
        started = 1;
        sb_putn(b, v, 1);
    }
}

/* RFC 3986 style normalisation for non-S3 services: drops empty and "."
 * segments, resolves "..", keeps a trailing slash. */
static void sb_put_normalized_path(sbuf *b, const char *path)
{
    size_t n = strlen(path), i = 0, nseg = 0, *starts = NULL, *lens = NULL, k;
    int trailing = n > 0 && path[n - 1] == '/';

    starts = malloc((n + 1) * sizeof(*starts));
    lens = malloc((n + 1) * sizeof(*lens));
    if (starts == NULL || lens == NULL) {
        b->oom = 1;
        goto done;
    }
    while (i < n) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        if (j - i == 0 || (j - i == 1 && path[i] == '.')) {
            /* skip */
        } else if (j - i == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg > 0) nseg--;
        } else {
            starts[nseg] = i;
            lens[nseg] = j - i;
            nseg++;
        }
        i = j + 1;
    }
    for (k = 0; k < nseg; k++) {
        sb_putn(b, "/", 1);
        sb_encode(b, path + starts[k], lens[k], 0);
    }
    if (nseg == 0 || trailing) sb_putn(b, "/", 1);

done:
    free(starts);
    free(lens);
}

typedef struct {
    char *name; /* lowercased, malloc'd */
    const char *value;
    size_t order;
} hdr;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

typedef struct {
    char *key; /* encoded, malloc'd */
    char *value;
} qparam;

static int qparam_cmp(const void *a, const void *b)
{
    const qparam *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c != 0 ? c : strcmp(x->value, y->value);
}

static void hmac(unsigned char out[32], const void *key, size_t keylen, const char *data,
                 size_t len, int *failed)
{
    unsigned int outlen = 0;

    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, len, out, &outlen) ==
            NULL ||
        outlen != 32)
        *failed = 1;
}

static void hex32(char out[65], const unsigned char in[32])
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < 32; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[64] = '\0';
}

/* Builds and signs. @p presign_expires 0 means header form. */
static int sign(mlreg_sigv4_result *out, const mlreg_sigv4_credentials *cred,
                const mlreg_sigv4_request *req, unsigned int presign_expires)
{
    int error = 0, crypto_failed = 0;
    hdr *hs = NULL;
    qparam *qs = NULL;
    size_t nh = 0, nq = 0, i;
    sbuf creq = {0}, sts = {0}, signed_hdrs = {0}, scope = {0}, query = {0}, auth = {0};
    sbuf secret = {0};
    struct tm tm;
    char date8[9], expires_str[16];
    unsigned char k[32], digest_raw[32];
    mlreg_digest d;
    int with_token = cred->session_token != NULL && cred->session_token[0] != '\0';
    int sign_token = with_token && !req->omit_session_token;

    memset(out, 0, sizeof(*out));
    if (cred->access_key == NULL || cred->secret_key == NULL || cred->region == NULL ||
        cred->service == NULL || req->method == NULL || req->path == NULL ||
        req->payload_hash == NULL || req->path[0] != '/')
        return mlreg_error_set(MLREG_EINVALID, "sigv4: incomplete request or credentials");
    if (gmtime_r(&req->when, &tm) == NULL ||
        strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16)
        return mlreg_error_set(MLREG_EINVALID, "sigv4: time out of range");
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';
    snprintf(expires_str, sizeof(expires_str), "%u", presign_expires);

    sb_puts(&scope, date8);
    sb_puts(&scope, "/");
    sb_puts(&scope, cred->region);
    sb_puts(&scope, "/");
    sb_puts(&scope, cred->service);
    sb_puts(&scope, "/aws4_request");

    /* headers: the caller's plus the ones the signature itself defines */
    if ((hs = calloc(req->nheaders + 3, sizeof(*hs))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory signing a request");
        goto done;
    }
    for (i = 0; i < req->nheaders + 3; i++) {
        const char *name, *value;
        size_t j;
        if (i < req->nheaders) {
            name = req->headers[i].name;
            value = req->headers[i].value;
        } else if (i == req->nheaders && !presign_expires) {
            name = "x-amz-date";
            value = out->amz_date;
        } else if (i == req->nheaders + 1 && !presign_expires && req->sign_content_sha256) {
            name = "x-amz-content-sha256";
            value = req->payload_hash;
        } else if (i == req->nheaders + 2 && !presign_expires && sign_token) {
            name = "x-amz-security-token";
            value = cred->session_token;
        } else {
            continue;
        }
        if ((hs[nh].name = strdup(name)) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory signing a request");
            goto done;
        }
        for (j = 0; hs[nh].name[j]; j++)
            if (hs[nh].name[j] >= 'A' && hs[nh].name[j] <= 'Z') hs[nh].name[j] += 'a' - 'A';
        hs[nh].value = value;
        hs[nh].order = nh;
        nh++;
    }
    qsort(hs, nh, sizeof(*hs), hdr_cmp);
    sb_putn(&signed_hdrs, "", 0);
    for (i = 0; i < nh; i++) {
        if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0) continue;
        if (signed_hdrs.len > 0) sb_puts(&signed_hdrs, ";");
        sb_puts(&signed_hdrs, hs[i].name);
    }

    /* query: the caller's plus, presigned, the X-Amz-* ones */
    if ((qs = calloc(req->nquery + 6, sizeof(*qs))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory signing a request");
        goto done;
    }
    for (i = 0; i < req->nquery + 6; i++) {
        const char *key, *value;
        sbuf kb = {0}, vb = {0};
        if (i < req->nquery) {
            key = req->query[i].key;
            value = req->query[i].value ? req->query[i].value : "";
        } else if (!presign_expires) {
            break;
        } else {
            switch (i - req->nquery) {
            case 0: key = "X-Amz-Algorithm", value = "AWS4-HMAC-SHA256"; break;
            case 1: key = "X-Amz-Date", value = out->amz_date; break;
            case 2: key = "X-Amz-Expires", value = expires_str; break;
            case 3: key = "X-Amz-SignedHeaders", value = signed_hdrs.p; break;
            case 4: key = "X-Amz-Security-Token", value = cred->session_token; break;
            default: key = "X-Amz-Credential", value = NULL; break;
            }
            if (i - req->nquery == 4 && !sign_token) continue;
        }
        sb_putn(&kb, "", 0);
        sb_encode(&kb, key, strlen(key), 0);
        sb_putn(&vb, "", 0);
        if (value != NULL) {
            sb_encode(&vb, value, strlen(value), 0);
        } else { /* credential: access key / scope */
            sb_encode(&vb, cred->access_key, strlen(cred->access_key), 0);
            sb_puts(&vb, "%2F");
            if (scope.p) sb_encode(&vb, scope.p, scope.len, 0);
        }
        qs[nq].key = kb.p;
        qs[nq].value = vb.p;
        nq++;
        if (kb.oom || vb.oom) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory signing a request");
            goto done;
        }
    }
    qsort(qs, nq, sizeof(*qs), qparam_cmp);
    sb_putn(&query, "", 0);
    for (i = 0; i < nq; i++) {
        if (i > 0) sb_puts(&query, "&");
        sb_puts(&query, qs[i].key);
        sb_puts(&query, "=");
        sb_puts(&query, qs[i].value);
    }

    /* canonical request */
    sb_puts(&creq, req->method);
    sb_puts(&creq, "\n");
    if (req->normalize_path)
        sb_put_normalized_path(&creq, req->path);
    else
        sb_encode(&creq, req->path, strlen(req->path), 1);
    sb_puts(&creq, "\n");
    if (query.p) sb_puts(&creq, query.p);
    sb_puts(&creq, "\n");
    for (i = 0; i < nh; i++) {
        if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0) {
            sb_puts(&creq, ",");
        } else {
            if (i > 0) sb_puts(&creq, "\n");
            sb_puts(&creq, hs[i].name);
            sb_puts(&creq, ":");
        }
        sb_put_header_value(&creq, hs[i].value);
    }
    sb_puts(&creq, "\n\n");
    if (signed_hdrs.p) sb_puts(&creq, signed_hdrs.p);
    sb_puts(&creq, "\n");
    sb_puts(&creq, req->payload_hash);
    if (creq.oom || scope.oom || signed_hdrs.oom || query.oom) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory signing a request");
        goto done;
    }

    /* string to sign */
    if ((error = mlreg_digest_buffer(&d, creq.p, creq.len)) < 0) goto done;
    memcpy(digest_raw, d.raw, 32);
    {
        char h[65];
        hex32(h, digest_raw);
        sb_puts(&sts, "AWS4-HMAC-SHA256\n");
        sb_puts(&sts, out->amz_date);
        sb_puts(&sts, "\n");
        sb_puts(&sts, scope.p);
        sb_puts(&sts, "\n");
        sb_puts(&sts, h);
    }

    /* signing key: HMAC chain from "AWS4" + secret */
    sb_puts(&secret, "AWS4");
    sb_puts(&secret, cred->secret_key);
    if (sts.oom || secret.oom) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory signing a request");
        goto done;
    }
    hmac(k, secret.p, secret.len, date8, 8, &crypto_failed);
    hmac(k, k, 32, cred->region, strlen(cred->region), &crypto_failed);
    hmac(k, k, 32, cred->service, strlen(cred->service), &crypto_failed);
    hmac(k, k, 32, "aws4_request", 12, &crypto_failed);
    hmac(digest_raw, k, 32, sts.p, sts.len, &crypto_failed);
    if (crypto_failed) {
        error = mlreg_error_set(MLREG_EIO, "sigv4: hmac-sha256 failed");
        goto done;
    }
    hex32(out->signature, digest_raw);

    if (presign_expires) {
        sb_puts(&query, nq ? "&X-Amz-Signature=" : "X-Amz-Signature=");
        sb_puts(&query, out->signature);
        if (with_token && !sign_token) {
            sb_puts(&query, "&X-Amz-Security-Token=");
            sb_encode(&query, cred->session_token, strlen(cred->session_token), 0);
        }
    } else {
        sb_puts(&auth, "AWS4-HMAC-SHA256 Credential=");
        sb_puts(&auth, cred->access_key);
        sb_puts(&auth, "/");
        sb_puts(&auth, scope.p);
        sb_puts(&auth, ", SignedHeaders=");
        sb_puts(&auth, signed_hdrs.p);
        sb_puts(&auth, ", Signature=");
        sb_puts(&auth, out->signature);
    }
    if (query.oom || auth.oom) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory signing a request");
        goto done;
    }
    out->canonical_request = creq.p;
    out->string_to_sign = sts.p;
    creq.p = sts.p = NULL;
    if (presign_expires) {
        out->query = query.p;
        query.p = NULL;
    } else {
        out->authorization = auth.p;
        auth.p = NULL;
    }

done:
    OPENSSL_cleanse(k, sizeof(k));
    if (secret.p) OPENSSL_cleanse(secret.p, secret.cap);
    free(secret.p);
    for (i = 0; hs && i < nh; i++)
        free(hs[i].name);
    free(hs);
    for (i = 0; qs && i < nq; i++) {
        free(qs[i].key);
        free(qs[i].value);
    }
    free(qs);
    free(creq.p);
    free(sts.p);
    free(signed_hdrs.p);
    free(scope.p);
    free(query.p);
    free(auth.p);
    if (error < 0) memset(out, 0, sizeof(*out));
    return error;
}

int mlreg_sigv4_sign_header(mlreg_sigv4_result *out, const mlreg_sigv4_credentials *cred,
                            const mlreg_sigv4_request *req)
{
    return sign(out, cred, req, 0);
}

int mlreg_sigv4_presign(mlreg_sigv4_result *out, const mlreg_sigv4_credentials *cred,
                        const mlreg_sigv4_request *req, unsigned int expires)
{
    memset(out, 0, sizeof(*out));
    if (expires == 0 || expires > MLREG_SIGV4_MAX_EXPIRES)
        return mlreg_error_set(MLREG_EINVALID, "sigv4: presign expiry %u out of range 1..%d",
                               expires, MLREG_SIGV4_MAX_EXPIRES);
    return sign(out, cred, req, expires);
}

void mlreg_sigv4_result_free(mlreg_sigv4_result *r)
{
    if (r == NULL) return;
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->authorization);
    free(r->query);
    memset(r, 0, sizeof(*r));
}
