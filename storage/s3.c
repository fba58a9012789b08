/* s3.c: a small, strict S3 client over libcurl.
 *
 * One request engine serves everything: a request description (s3_req) is
 * turned into a signed easy handle (xfer_setup), run blocking
 * (run_request, with the retry loop) or on a multi handle (multipart parts,
 * the pull reader). Responses are classified once (xfer_outcome): success,
 * retryable failure, or final failure with a message naming method, key,
 * status, S3 code and request id.
 *
 * Traps:
 * - CompleteMultipartUpload and CopyObject can answer 200 with an <Error>
 *   body; such responses are failures (check_200_error).
 * - A retried Complete whose first attempt succeeded gets NoSuchUpload; the
 *   object is then checked with HEAD instead of reporting a failure.
 * - A resumed GET must answer 206: a 200 would repeat bytes already given.
 * - No redirects are followed, so an Authorization header never leaves the
 *   configured endpoint.
 * - Credentials are never put in messages; the secret is wiped on free.
 */
#include "mlreg/s3.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/sigv4.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAX_PARAMS     6
#define MAX_HDRS       4
#define ERROR_BODY_MAX (64u << 10)
#define LIST_BODY_MAX  (16u << 20)
#define S3_PAUSE       0x7fff0001
#define READER_BUF     (256u << 10)
#define POOL_MAX       16
#define EMPTY_SHA256   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct mlreg_s3 {
    char *scheme_host; /* "http://127.0.0.1:7480" or "https://bucket.s3.amazonaws.com" */
    char *host;        /* Host header value */
    char *base_path;   /* "/bucket" (path style) or "" */
    char *bucket, *region, *prefix, *access_key, *secret_key, *session_token, *ca_file;
    size_t secret_len;
    int insecure, global_init;
    unsigned int parts_in_flight, max_attempts, retry_base_ms, retry_max_ms, retry_total_ms;
    unsigned int connect_timeout_ms, low_speed_seconds, presign_seconds;
    uint64_t part_size, copy_threshold;
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    /* Idle easy handles for blocking requests. A handle keeps its open
     * connections across curl_easy_reset, so taking one from here reuses a
     * connection; one thread uses a handle at a time. The share handle only
     * carries DNS and TLS sessions: curl does not support one connection
     * cache used by concurrent threads. */
    pthread_mutex_t pool_lock;
    CURL *pool[POOL_MAX];
    unsigned int npool;
};

/* What to send. Everything is borrowed for the duration of the request. */
typedef struct {
    const char *method;
    const char *key; /* NULL: the bucket itself */
    mlreg_sigv4_param params[MAX_PARAMS];
    size_t nparams;
    const char *hdr_name[MAX_HDRS], *hdr_value[MAX_HDRS];
    size_t nhdrs;
    const unsigned char *body;
    size_t body_len;
    int has_body;
    const char *payload_hash; /* NULL: computed (or the empty hash) */
    int head;
    int check_200_error;
    mlreg_s3_data_cb on_data; /* 2xx bodies; NULL: collected (up to collect_max) */
    void *payload;
    size_t collect_max;
} s3_req;

typedef struct {
    char *p;
    size_t len, cap;
} membuf;

/* One attempt of one request. */
typedef struct {
    CURL *easy;
    mlreg_s3 *pool_owner; /* non-NULL: easy goes back to this client's pool */
    struct curl_slist *hl;
    char *url;
    char errbuf[CURL_ERROR_SIZE];
    const s3_req *rq;
    size_t body_off;
    long status;
    int headers_done;
    membuf body;
    int overflow;
    int cb_rc;
    int paused;
    uint64_t delivered;
    uint64_t content_length;
    int has_length;
    char request_id[128];
    char etag[160];
    char range_hdr[80];
} xfer;

/* ---- small helpers ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static uint32_t rnd32(void)
{
    uint32_t r = 0;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint32_t)now_ms() * 2654435761u;
    return r;
}

static int membuf_add(membuf *b, const void *data, size_t len, size_t max)
{
    if (b->len + len > max) return -1;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *p;
        while (cap < b->len + len + 1)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- pure policy ---- */

uint64_t mlreg_s3_part_size(int64_t size_hint, uint64_t written, unsigned int part_number,
                            uint64_t first)
{
    uint64_t size;
    unsigned int shift;

    if (first < MLREG_S3_MIN_PART_SIZE) first = MLREG_S3_DEFAULT_PART_SIZE;
    if (size_hint >= 0 && written <= (uint64_t)size_hint) {
        uint64_t need = ((uint64_t)size_hint + MLREG_S3_MAX_PARTS - 1) / MLREG_S3_MAX_PARTS;
        size = need > first ? need : first;
    } else {
        /* 1000 parts at each of first, 2x, 4x ... 512x: with 8 MiB that is
         * 8 MiB x 1000 x 1023, about 8 TiB, in 10,000 parts of at most 4 GiB. */
        shift = part_number > 0 ? (part_number - 1) / 1000 : 0;
        if (shift > 9) shift = 9;
        size = first << shift;
        if (size_hint >= 0) {
            uint64_t need = ((uint64_t)size_hint + MLREG_S3_MAX_PARTS - 1) / MLREG_S3_MAX_PARTS;
            if (need > size) size = need;
        }
    }
    if (size > MLREG_S3_MAX_PART_SIZE) size = MLREG_S3_MAX_PART_SIZE;
    return size;
}

int mlreg_s3_status_is_retryable(long status, const char *code)
{
    /* 501 NotImplemented is an answer, not a hiccup */
    if ((status >= 500 && status != 501) || status == 429) return 1;
    if (code != NULL &&
        (strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
         strcmp(code, "InternalError") == 0 || strcmp(code, "ServiceUnavailable") == 0))
        return 1;
    return 0;
}

int mlreg_s3_curl_is_retryable(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return 1;
    default: return 0;
    }
}

unsigned int mlreg_s3_backoff_ms(unsigned int attempt, unsigned int base_ms, unsigned int max_ms,
                                 uint32_t rnd)
{
    uint64_t ceil = base_ms;
    unsigned int i;

    for (i = 1; i < attempt && ceil < max_ms; i++)
        ceil *= 2;
    if (ceil > max_ms) ceil = max_ms;
    return (unsigned int)(rnd % (ceil + 1));
}

int mlreg_s3_blob_key(char **out, const char *prefix, const mlreg_digest *digest)
{
    char hex[MLREG_DIGEST_HEXLEN + 1];

    mlreg_digest_hex(hex, digest);
    if (asprintf(out, "%sblobs/sha256/%s", prefix ? prefix : "", hex) < 0) {
        *out = NULL;
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- strict XML text extraction ---- */

static const char *find_n(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle));
}

int mlreg_s3_xml_next(const char **inner, size_t *inner_len, size_t *pos, const char *xml,
                      size_t len, const char *tag)
{
    char open[96], close[96];
    const char *o, *c;

    if (snprintf(open, sizeof(open), "<%s>", tag) >= (int)sizeof(open) ||
        snprintf(close, sizeof(close), "</%s>", tag) >= (int)sizeof(close))
        return mlreg_error_set(MLREG_EINVALID, "xml tag name too long");
    if (*pos > len) return 0;
    if ((o = find_n(xml + *pos, len - *pos, open)) == NULL) return 0;
    o += strlen(open);
    if ((c = find_n(o, len - (size_t)(o - xml), close)) == NULL)
        return mlreg_error_set(MLREG_EINVALID, "malformed s3 response: <%s> not closed", tag);
    *inner = o;
    *inner_len = (size_t)(c - o);
    *pos = (size_t)(c - xml) + strlen(close);
    return 1;
}

int mlreg_s3_xml_text(char *out, size_t outlen, const char *xml, size_t len, const char *tag)
{
    const char *in;
    size_t in_len, pos = 0, i, w = 0;
    int rc = mlreg_s3_xml_next(&in, &in_len, &pos, xml, len, tag);

    if (rc < 0) return rc;
    if (rc == 0) return MLREG_ENOTFOUND;
    for (i = 0; i < in_len; i++) {
        char ch = in[i];
        if (ch == '<') return mlreg_error_set(MLREG_EINVALID, "markup inside s3 <%s>", tag);
        if (ch == '&') {
            const char *semi = memchr(in + i, ';', in_len - i);
            size_t n;
            if (semi == NULL) return mlreg_error_set(MLREG_EINVALID, "bad entity in s3 <%s>", tag);
            n = (size_t)(semi - (in + i)) + 1;
            if (n == 5 && memcmp(in + i, "&amp;", 5) == 0)
                ch = '&';
            else if (n == 4 && memcmp(in + i, "&lt;", 4) == 0)
                ch = '<';
            else if (n == 4 && memcmp(in + i, "&gt;", 4) == 0)
                ch = '>';
            else if (n == 6 && memcmp(in + i, "&quot;", 6) == 0)
                ch = '"';
            else if (n == 6 && memcmp(in + i, "&apos;", 6) == 0)
                ch = '\'';
            else if (n >= 4 && n <= 8 && in[i + 1] == '#') {
                /* numeric, ASCII only: anything else never appears in what we parse */
                char num[8] = {0};
                char *end;
                long v;
                memcpy(num, in + i + 2, n - 3);
                v = num[0] == 'x' ? strtol(num + 1, &end, 16) : strtol(num, &end, 10);
                if (*end != '\0' || v <= 0 || v > 127)
                    return mlreg_error_set(MLREG_EINVALID, "bad entity in s3 <%s>", tag);
                ch = (char)v;
            } else {
                return mlreg_error_set(MLREG_EINVALID, "bad entity in s3 <%s>", tag);
            }
            i += n - 1;
        }
        if (w + 1 >= outlen) return mlreg_error_set(MLREG_EINVALID, "s3 <%s> too long", tag);
        out[w++] = ch;
    }
    out[w] = '\0';
    return (int)w;
}

int mlreg_s3_error_from_response(char *out, size_t outlen, const char *method, const char *key,
                                 long status, const char *body, size_t body_len,
                                 const char *header_request_id)
{
    char code[128] = "", msg[256] = "", rid[128] = "";
    int err;

    if (body != NULL && body_len > 0) {
        if (mlreg_s3_xml_text(code, sizeof(code), body, body_len, "Code") < 0) code[0] = '\0';
        if (mlreg_s3_xml_text(msg, sizeof(msg), body, body_len, "Message") < 0) msg[0] = '\0';
        if (mlreg_s3_xml_text(rid, sizeof(rid), body, body_len, "RequestId") < 0) rid[0] = '\0';
    }
    if (rid[0] == '\0' && header_request_id != NULL)
        snprintf(rid, sizeof(rid), "%s", header_request_id);
    snprintf(out, outlen, "s3 %s %s: %ld %s%s%s (request id %s)", method, key ? key : "/", status,
             code[0] ? code : "(no error code)", msg[0] ? ": " : "", msg, rid[0] ? rid : "none");

    if (status == 404) {
        /* a missing bucket is a configuration error, not a missing blob */
        err = strcmp(code, "NoSuchBucket") == 0 ? MLREG_EIO : MLREG_ENOTFOUND;
    } else if (status == 401 || status == 403) {
        err = strcmp(code, "AccessDenied") == 0 || strcmp(code, "AllAccessDisabled") == 0
                  ? MLREG_EFORBIDDEN
                  : MLREG_EAUTH;
    } else if (status == 416) {
        err = MLREG_ERANGE;
    } else if (mlreg_s3_status_is_retryable(status, code) || status / 100 == 2) {
        err = MLREG_ESERVER;
    } else {
        err = MLREG_EIO;
    }
    return err;
}

/* ---- transfer setup ---- */

static size_t on_header(char *data, size_t size, size_t n, void *p)
{
    xfer *x = p;
    size_t len = size * n, nl;
    char line[512];

    nl = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
    memcpy(line, data, nl);
    line[nl] = '\0';
    while (nl > 0 && (line[nl - 1] == '\n' || line[nl - 1] == '\r'))
        line[--nl] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = strchr(line, ' ');
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->headers_done = 0;
        x->has_length = 0;
        x->request_id[0] = x->etag[0] = '\0';
    } else if (nl == 0) {
        if (x->status >= 200) x->headers_done = 1;
    } else {
        char *colon = strchr(line, ':'), *v;
        if (colon == NULL) return len;
        *colon = '\0';
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcasecmp(line, "x-amz-request-id") == 0)
            snprintf(x->request_id, sizeof(x->request_id), "%s", v);
        else if (strcasecmp(line, "etag") == 0)
            snprintf(x->etag, sizeof(x->etag), "%s", v);
        else if (strcasecmp(line, "content-length") == 0) {
            char *end;
            errno = 0;
            x->content_length = strtoull(v, &end, 10);
            x->has_length = errno == 0 && end != v && *end == '\0';
        }
    }
    return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *p)
{
    xfer *x = p;
    size_t len = size * n;

    if (x->status / 100 == 2 && x->rq->on_data != NULL) {
        int rc = x->rq->on_data(data, len, x->rq->payload);
        if (rc == S3_PAUSE) {
            x->paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
        if (rc != 0) {
            x->cb_rc = rc;
            return 0;
        }
        x->delivered += len;
        return len;
    }
    if (x->status / 100 == 2) {
        if (membuf_add(&x->body, data, len, x->rq->collect_max) < 0) {
            x->overflow = 1;
            return 0;
        }
        return len;
    }
    /* error bodies: keep the start, which holds the code */
    if (x->body.len < ERROR_BODY_MAX) {
        size_t take = ERROR_BODY_MAX - x->body.len < len ? ERROR_BODY_MAX - x->body.len : len;
        if (membuf_add(&x->body, data, take, ERROR_BODY_MAX) < 0) x->overflow = 1;
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *p)
{
    xfer *x = p;
    size_t room = size * n, left = x->rq->body_len - x->body_off;
    size_t take = room < left ? room : left;

    if (take > 0) memcpy(buf, x->rq->body + x->body_off, take);
    x->body_off += take;
    return take;
}

static int on_seek(void *p, curl_off_t offset, int origin)
{
    xfer *x = p;

    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->rq->body_len)
        return CURL_SEEKFUNC_FAIL;
    x->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static CURL *pool_take(mlreg_s3 *s3)
{
    CURL *e = NULL;

    pthread_mutex_lock(&s3->pool_lock);
    if (s3->npool > 0) e = s3->pool[--s3->npool];
    pthread_mutex_unlock(&s3->pool_lock);
    if (e != NULL) {
        curl_easy_reset(e);
        return e;
    }
    return curl_easy_init();
}

static void pool_give(mlreg_s3 *s3, CURL *e)
{
    pthread_mutex_lock(&s3->pool_lock);
    if (s3->npool < POOL_MAX) {
        s3->pool[s3->npool++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&s3->pool_lock);
    if (e != NULL) curl_easy_cleanup(e);
}

static void xfer_cleanup(xfer *x)
{
    if (x->easy && x->pool_owner)
        pool_give(x->pool_owner, x->easy);
    else if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hl);
    free(x->url);
    free(x->body.p);
    memset(x, 0, sizeof(*x));
}

static void lock_cb(CURL *h, curl_lock_data data, curl_lock_access access, void *p)
{
    (void)h;
    (void)access;
    pthread_mutex_lock(&((mlreg_s3 *)p)->locks[data]);
}

static void unlock_cb(CURL *h, curl_lock_data data, void *p)
{
    (void)h;
    pthread_mutex_unlock(&((mlreg_s3 *)p)->locks[data]);
}

static int add_header(struct curl_slist **hl, const char *name, const char *value)
{
    char *line;
    struct curl_slist *n;

    if (asprintf(&line, "%s: %s", name, value) < 0) return -1;
    n = curl_slist_append(*hl, line);
    free(line);
    if (n == NULL) return -1;
    *hl = n;
    return 0;
}

/* The path as signed (raw) and the URL (encoded once, the same way). */
static int build_path(char **raw_out, mlreg_s3 *s3, const char *key)
{
    if (asprintf(raw_out, "%s/%s", s3->base_path, key ? key : "") < 0) {
        *raw_out = NULL;
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    return 0;
}

/* Prepares one attempt of @p rq. @p range overrides the request's Range
 * header (resumed GETs). @p pooled: take the easy handle from the client's
 * pool (blocking requests only; multi transfers use fresh handles). */
static int xfer_setup(xfer *x, mlreg_s3 *s3, const s3_req *rq, const char *range, int pooled)
{
    int error = 0;
    char *raw_path = NULL, *enc_path = NULL, hash_hex[MLREG_DIGEST_HEXLEN + 1];
    const char *payload_hash = rq->payload_hash;
    mlreg_sigv4_header hs[MAX_HDRS + 2];
    size_t nh = 0, i;
    mlreg_sigv4_credentials cred = {s3->access_key, s3->secret_key, s3->session_token, s3->region,
                                    "s3"};
    mlreg_sigv4_request sreq = {0};
    mlreg_sigv4_result res = {0};
    char *query = NULL;

    memset(x, 0, sizeof(*x));
    x->rq = rq;
    if (payload_hash == NULL) {
        mlreg_digest d;
        if (rq->has_body && rq->body_len > 0) {
            if ((error = mlreg_digest_buffer(&d, rq->body, rq->body_len)) < 0) goto done;
            mlreg_digest_hex(hash_hex, &d);
            payload_hash = hash_hex;
        } else {
            payload_hash = EMPTY_SHA256;
        }
    }
    if ((error = build_path(&raw_path, s3, rq->key)) < 0) goto done;
    if ((error = mlreg_sigv4_uri_encode(&enc_path, raw_path, strlen(raw_path), 1)) < 0) goto done;

    hs[nh].name = "host";
    hs[nh++].value = s3->host;
    for (i = 0; i < rq->nhdrs; i++) {
        hs[nh].name = rq->hdr_name[i];
        hs[nh++].value = rq->hdr_value[i];
    }
    if (range != NULL) {
        snprintf(x->range_hdr, sizeof(x->range_hdr), "%s", range);
        hs[nh].name = "range";
        hs[nh++].value = x->range_hdr;
    }
    sreq.method = rq->method;
    sreq.path = raw_path;
    sreq.query = rq->params;
    sreq.nquery = rq->nparams;
    sreq.headers = hs;
    sreq.nheaders = nh;
    sreq.payload_hash = payload_hash;
    sreq.when = time(NULL);
    sreq.sign_content_sha256 = 1;
    if ((error = mlreg_sigv4_sign_header(&res, &cred, &sreq)) < 0) goto done;

    /* the URL query is the canonical one: encoded and sorted, always valid */
    {
        const char *cq = strchr(res.canonical_request, '\n');
        const char *eq;
        cq = cq ? strchr(cq + 1, '\n') : NULL;
        eq = cq ? strchr(cq + 1, '\n') : NULL;
        if (cq == NULL || eq == NULL) {
            error = mlreg_error_set(MLREG_EIO, "sigv4: malformed canonical request");
            goto done;
        }
        if ((query = strndup(cq + 1, (size_t)(eq - cq - 1))) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (asprintf(&x->url, "%s%s%s%s", s3->scheme_host, enc_path, query[0] ? "?" : "", query) < 0) {
        x->url = NULL;
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }

    for (i = 1; i < nh; i++) /* host is set by curl from the URL */
        if (add_header(&x->hl, hs[i].name, hs[i].value) < 0) goto oom;
    if (add_header(&x->hl, "x-amz-date", res.amz_date) < 0 ||
        add_header(&x->hl, "x-amz-content-sha256", payload_hash) < 0 ||
        (s3->session_token && add_header(&x->hl, "x-amz-security-token", s3->session_token) < 0) ||
        add_header(&x->hl, "Authorization", res.authorization) < 0)
        goto oom;
    {
        struct curl_slist *n = curl_slist_append(x->hl, "Expect:");
        if (n == NULL) goto oom;
        x->hl = n;
        if ((n = curl_slist_append(x->hl, "Content-Type:")) == NULL) goto oom;
        x->hl = n;
    }

    if ((x->easy = pooled ? pool_take(s3) : curl_easy_init()) == NULL) goto oom;
    if (pooled) x->pool_owner = s3;
    curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hl);
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(x->easy, CURLOPT_SHARE, s3->share);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)s3->connect_timeout_ms);
    curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_TIME, (long)s3->low_speed_seconds);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYPEER, s3->insecure ? 0L : 1L);
    curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYHOST, s3->insecure ? 0L : 2L);
    if (s3->ca_file) curl_easy_setopt(x->easy, CURLOPT_CAINFO, s3->ca_file);
    if (rq->head) {
        curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "PUT") == 0) {
        curl_easy_setopt(x->easy, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(x->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
        curl_easy_setopt(x->easy, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(x->easy, CURLOPT_READDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(x->easy, CURLOPT_SEEKDATA, x);
    } else if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, rq->body_len ? (const char *)rq->body : "");
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    goto done;

oom:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory preparing an s3 request");
done:
    mlreg_sigv4_result_free(&res);
    free(raw_path);
    free(enc_path);
    free(query);
    if (error < 0) xfer_cleanup(x);
    return error;
}

enum { OUT_OK = 0, OUT_RETRY = 1, OUT_FAIL = 2 };

/* Classifies a finished attempt; sets the message and *error unless OK. */
static int xfer_outcome(int *error, xfer *x, CURLcode rc, unsigned int attempt)
{
    char msg[768];
    const char *what = x->rq->key ? x->rq->key : "/";

    *error = 0;
    if (x->cb_rc != 0) {
        *error = x->cb_rc; /* the callback's own message stands */
        return OUT_FAIL;
    }
    if (x->overflow && x->status / 100 == 2) {
        *error = mlreg_error_set(MLREG_EIO, "s3 %s %s: response body over %zu bytes", x->rq->method,
                                 what, x->rq->collect_max);
        return OUT_FAIL;
    }
    if (rc != CURLE_OK) {
        *error = mlreg_error_set(MLREG_EUNREACHABLE, "s3 %s %s: %s (attempt %u)", x->rq->method,
                                 what, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc), attempt);
        return mlreg_s3_curl_is_retryable((int)rc) ? OUT_RETRY : OUT_FAIL;
    }
    if (x->status / 100 == 2 &&
        !(x->rq->check_200_error && x->body.p && strstr(x->body.p, "<Error>") != NULL))
        return OUT_OK;
    *error = mlreg_s3_error_from_response(msg, sizeof(msg), x->rq->method, what, x->status,
                                          x->body.p, x->body.len, x->request_id);
    mlreg_error_set(*error, "%s", msg);
    {
        char code[128] = "";
        if (x->body.p != NULL &&
            mlreg_s3_xml_text(code, sizeof(code), x->body.p, x->body.len, "Code") < 0)
            code[0] = '\0';
        if (x->status / 100 == 2) return OUT_RETRY; /* an error inside a 200 */
        return mlreg_s3_status_is_retryable(x->status, code) ? OUT_RETRY : OUT_FAIL;
    }
}

/* Waits before retry @p attempt when the budget allows; 0 when out of budget. */
static int backoff(mlreg_s3 *s3, unsigned int attempt, uint64_t started)
{
    unsigned int ms;

    if (attempt >= s3->max_attempts) return 0;
    ms = mlreg_s3_backoff_ms(attempt, s3->retry_base_ms, s3->retry_max_ms, rnd32());
    if (now_ms() + ms > started + s3->retry_total_ms) return 0;
    sleep_ms(ms);
    return 1;
}

/* The range to ask for on a resumed GET: the original one moved on by
 * @p delivered, or NULL when it cannot be expressed (suffix, multi-range). */
static int resume_range(char *out, size_t outlen, const char *orig, uint64_t delivered)
{
    unsigned long long a, b;
    int n = 0;

    if (orig == NULL) {
        snprintf(out, outlen, "bytes=%llu-", (unsigned long long)delivered);
        return 1;
    }
    if (sscanf(orig, "bytes=%llu-%llu%n", &a, &b, &n) == 2 && orig[n] == '\0') {
        snprintf(out, outlen, "bytes=%llu-%llu", a + delivered, b);
        return 1;
    }
    n = 0;
    if (sscanf(orig, "bytes=%llu-%n", &a, &n) == 1 && n > 0 && orig[n] == '\0') {
        snprintf(out, outlen, "bytes=%llu-", a + delivered);
        return 1;
    }
    return 0;
}

/* Runs @p rq with retries. On success *x_out (when non-NULL) keeps the last
 * attempt (status, headers, collected body) for the caller to clean up. */
static int run_request(xfer *x_out, mlreg_s3 *s3, const s3_req *rq, const char *range)
{
    int error = 0, outcome;
    unsigned int attempt;
    uint64_t started = now_ms(), delivered = 0;
    char rbuf[80];
    const char *use_range = range;
    xfer x;

    for (attempt = 1;; attempt++) {
        if ((error = xfer_setup(&x, s3, rq, use_range, 1)) < 0) return error;
        outcome = xfer_outcome(&error, &x, curl_easy_perform(x.easy), attempt);
        if (outcome == OUT_OK && delivered > 0 && x.status != 206) {
            error = mlreg_error_set(MLREG_EIO, "s3 GET %s: resumed transfer answered %ld, not 206",
                                    rq->key, x.status);
            outcome = OUT_FAIL;
        }
        if (outcome == OUT_OK) {
            if (x_out)
                *x_out = x;
            else
                xfer_cleanup(&x);
            return 0;
        }
        delivered += x.delivered;
        xfer_cleanup(&x);
        if (outcome == OUT_FAIL) return error;
        if (delivered > 0) {
            if (!resume_range(rbuf, sizeof(rbuf), range, delivered)) return error;
            use_range = rbuf;
        }
        if (!backoff(s3, attempt, started)) return error;
    }
}

/* ---- client ---- */

int mlreg_s3_new(mlreg_s3 **out, const mlreg_s3_config *cfg)
{
    int error = 0, i;
    mlreg_s3 *s3 = NULL;
    const char *ep, *hostpart, *ak, *sk, *tok;
    size_t schemelen;

    if (cfg == NULL || cfg->endpoint == NULL || cfg->bucket == NULL || cfg->bucket[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "s3: endpoint and bucket are required");
    ep = cfg->endpoint;
    if (strncmp(ep, "https://", 8) == 0)
        schemelen = 8;
    else if (strncmp(ep, "http://", 7) == 0)
        schemelen = 7;
    else
        return mlreg_error_set(MLREG_EINVALID,
                               "s3: endpoint %s: must start with http:// or https://", ep);
    hostpart = ep + schemelen;
    if (hostpart[0] == '\0' || strcspn(hostpart, "/?#@ ") != strlen(hostpart))
        return mlreg_error_set(MLREG_EINVALID, "s3: endpoint %s: expected scheme://host[:port]",
                               ep);
    if (cfg->part_size != 0 &&
        (cfg->part_size < MLREG_S3_MIN_PART_SIZE || cfg->part_size > MLREG_S3_MAX_PART_SIZE))
        return mlreg_error_set(MLREG_EINVALID, "s3: part_size must be between 5 MiB and 5 GiB");
    ak = cfg->access_key ? cfg->access_key : getenv("AWS_ACCESS_KEY_ID");
    sk = cfg->secret_key ? cfg->secret_key : getenv("AWS_SECRET_ACCESS_KEY");
    tok = cfg->session_token ? cfg->session_token : getenv("AWS_SESSION_TOKEN");
    if (ak == NULL || ak[0] == '\0' || sk == NULL || sk[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "s3: no credentials (set access_key/secret_key or "
                                               "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)");

    if ((s3 = calloc(1, sizeof(*s3))) == NULL) goto oom;
    /* reference counted, and thread-safe in this libcurl (threadsafe feature) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(s3);
        return mlreg_error_set(MLREG_EIO, "s3: curl_global_init failed");
    }
    s3->global_init = 1;
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s3->locks[i], NULL);
    pthread_mutex_init(&s3->pool_lock, NULL);
    s3->bucket = strdup(cfg->bucket);
    s3->region = strdup(cfg->region && cfg->region[0] ? cfg->region : "us-east-1");
    s3->prefix = strdup(cfg->prefix ? cfg->prefix : "");
    s3->access_key = strdup(ak);
    s3->secret_len = strlen(sk);
    s3->secret_key = strdup(sk);
    s3->session_token = tok && tok[0] ? strdup(tok) : NULL;
    s3->ca_file = dup_or_null(cfg->ca_file);
    if (!s3->bucket || !s3->region || !s3->prefix || !s3->access_key || !s3->secret_key ||
        (tok && tok[0] && !s3->session_token) || (cfg->ca_file && !s3->ca_file))
        goto oom;
    if (cfg->path_style) {
        if (asprintf(&s3->scheme_host, "%s", ep) < 0 || asprintf(&s3->host, "%s", hostpart) < 0 ||
            asprintf(&s3->base_path, "/%s", cfg->bucket) < 0)
            goto oom;
    } else {
        if (asprintf(&s3->scheme_host, "%.*s%s.%s", (int)schemelen, ep, cfg->bucket, hostpart) <
                0 ||
            asprintf(&s3->host, "%s.%s", cfg->bucket, hostpart) < 0 ||
            (s3->base_path = strdup("")) == NULL)
            goto oom;
    }
    s3->insecure = cfg->insecure_skip_verify;
    s3->parts_in_flight = cfg->parts_in_flight ? cfg->parts_in_flight : 4;
    s3->max_attempts = cfg->max_attempts ? cfg->max_attempts : 5;
    s3->retry_base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : 100;
    s3->retry_max_ms = cfg->retry_max_ms ? cfg->retry_max_ms : 5000;
    s3->retry_total_ms = cfg->retry_total_ms ? cfg->retry_total_ms : 120000;
    s3->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000;
    s3->low_speed_seconds = cfg->low_speed_seconds ? cfg->low_speed_seconds : 60;
    s3->presign_seconds = cfg->presign_seconds ? cfg->presign_seconds : 300;
    s3->part_size = cfg->part_size ? cfg->part_size : MLREG_S3_DEFAULT_PART_SIZE;
    s3->copy_threshold =
        cfg->copy_multipart_threshold ? cfg->copy_multipart_threshold : MLREG_S3_MAX_SINGLE_PUT;
    if (s3->presign_seconds > MLREG_SIGV4_MAX_EXPIRES) {
        error = mlreg_error_set(MLREG_EINVALID, "s3: presign lifetime over %d seconds",
                                MLREG_SIGV4_MAX_EXPIRES);
        goto done;
    }
    if ((s3->share = curl_share_init()) == NULL) goto oom;
    curl_share_setopt(s3->share, CURLSHOPT_LOCKFUNC, lock_cb);
    curl_share_setopt(s3->share, CURLSHOPT_UNLOCKFUNC, unlock_cb);
    curl_share_setopt(s3->share, CURLSHOPT_USERDATA, s3);
    curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    goto done;

oom:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory creating the s3 client");
done:
    if (error < 0) {
        mlreg_s3_free(s3);
        return error;
    }
    *out = s3;
    return 0;
}

void mlreg_s3_free(mlreg_s3 *s3)
{
    int i;

    if (s3 == NULL) return;
    while (s3->npool > 0)
        curl_easy_cleanup(s3->pool[--s3->npool]);
    if (s3->share) curl_share_cleanup(s3->share);
    if (s3->secret_key) OPENSSL_cleanse(s3->secret_key, s3->secret_len);
    if (s3->session_token) OPENSSL_cleanse(s3->session_token, strlen(s3->session_token));
    free(s3->secret_key);
    free(s3->session_token);
    free(s3->access_key);
    free(s3->scheme_host);
    free(s3->host);
    free(s3->base_path);
    free(s3->bucket);
    free(s3->region);
    free(s3->prefix);
    free(s3->ca_file);
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s3->locks[i]);
    pthread_mutex_destroy(&s3->pool_lock);
    if (s3->global_init) curl_global_cleanup();
    free(s3);
}

const char *mlreg_s3_prefix(const mlreg_s3 *s3)
{
    return s3->prefix;
}

unsigned int mlreg_s3_parts_in_flight(const mlreg_s3 *s3)
{
    return s3->parts_in_flight;
}

uint64_t mlreg_s3_first_part_size(const mlreg_s3 *s3)
{
    return s3->part_size;
}

unsigned int mlreg_s3_presign_seconds(const mlreg_s3 *s3)
{
    return s3->presign_seconds;
}

/* ---- simple requests ---- */

int mlreg_s3_head(uint64_t *size_out, mlreg_s3 *s3, const char *key)
{
    int error;
    s3_req rq = {0};
    xfer x;

    rq.method = "HEAD";
    rq.key = key;
    rq.head = 1;
    if ((error = run_request(&x, s3, &rq, NULL)) < 0) return error;
    if (!x.has_length) {
        xfer_cleanup(&x);
        return mlreg_error_set(MLREG_EIO, "s3 HEAD %s: no Content-Length (request id %s)", key,
                               x.request_id[0] ? x.request_id : "none");
    }
    if (size_out) *size_out = x.content_length;
    xfer_cleanup(&x);
    return 0;
}

int mlreg_s3_get(mlreg_s3 *s3, const char *key, const char *range, mlreg_s3_data_cb cb,
                 void *payload)
{
    s3_req rq = {0};

    rq.method = "GET";
    rq.key = key;
    rq.on_data = cb;
    rq.payload = payload;
    return run_request(NULL, s3, &rq, range);
}

int mlreg_s3_put(mlreg_s3 *s3, const char *key, const void *data, size_t len,
                 const char *payload_hash)
{
    s3_req rq = {0};

    if ((uint64_t)len > MLREG_S3_MAX_SINGLE_PUT)
        return mlreg_error_set(MLREG_EINVALID, "s3 PUT %s: %zu bytes is over the 5 GiB limit", key,
                               len);
    rq.method = "PUT";
    rq.key = key;
    rq.body = data;
    rq.body_len = len;
    rq.has_body = 1;
    rq.payload_hash = payload_hash;
    rq.collect_max = ERROR_BODY_MAX;
    return run_request(NULL, s3, &rq, NULL);
}

int mlreg_s3_delete(mlreg_s3 *s3, const char *key)
{
    s3_req rq = {0};

    rq.method = "DELETE";
    rq.key = key;
    rq.collect_max = ERROR_BODY_MAX;
    return run_request(NULL, s3, &rq, NULL);
}

int mlreg_s3_presign_get(char **out, mlreg_s3 *s3, const char *key, unsigned int expires)
{
    int error = 0;
    char *raw = NULL, *enc = NULL;
    mlreg_sigv4_header h[] = {{"host", s3->host}};
    mlreg_sigv4_credentials cred = {s3->access_key, s3->secret_key, s3->session_token, s3->region,
                                    "s3"};
    mlreg_sigv4_request rq = {0};
    mlreg_sigv4_result res = {0};

    if ((error = build_path(&raw, s3, key)) < 0) goto done;
    if ((error = mlreg_sigv4_uri_encode(&enc, raw, strlen(raw), 1)) < 0) goto done;
    rq.method = "GET";
    rq.path = raw;
    rq.headers = h;
    rq.nheaders = 1;
    rq.payload_hash = MLREG_SIGV4_UNSIGNED_PAYLOAD;
    rq.when = time(NULL);
    if ((error = mlreg_sigv4_presign(&res, &cred, &rq, expires)) < 0) goto done;
    if (asprintf(out, "%s%s?%s", s3->scheme_host, enc, res.query) < 0) {
        *out = NULL;
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }

done:
    mlreg_sigv4_result_free(&res);
    free(raw);
    free(enc);
    return error;
}

/* ---- listings ---- */

static int parse_u64(uint64_t *out, const char *s)
{
    char *end;

    if (s[0] < '0' || s[0] > '9') return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0' ? 0 : -1;
}

int mlreg_s3_list(mlreg_s3 *s3, const char *prefix, mlreg_s3_list_cb cb, void *payload)
{
    int error = 0;
    char *token = NULL, truncated[16];
    xfer x = {0};

    for (;;) {
        s3_req rq = {0};
        const char *in;
        size_t in_len, pos = 0;
        int rc;

        rq.method = "GET";
        rq.collect_max = LIST_BODY_MAX;
        rq.params[rq.nparams++] = (mlreg_sigv4_param){"list-type", "2"};
        rq.params[rq.nparams++] = (mlreg_sigv4_param){"prefix", prefix};
        if (token) rq.params[rq.nparams++] = (mlreg_sigv4_param){"continuation-token", token};
        if ((error = run_request(&x, s3, &rq, NULL)) < 0) goto done;
        if (x.body.p == NULL) {
            error = mlreg_error_set(MLREG_EIO, "s3 list %s: empty response", prefix);
            goto done;
        }
        while ((rc = mlreg_s3_xml_next(&in, &in_len, &pos, x.body.p, x.body.len, "Contents")) > 0) {
            char key[1024], size_str[32];
            uint64_t size;
            if (mlreg_s3_xml_text(key, sizeof(key), in, in_len, "Key") < 0 ||
                mlreg_s3_xml_text(size_str, sizeof(size_str), in, in_len, "Size") < 0 ||
                parse_u64(&size, size_str) < 0) {
                error = mlreg_error_set(MLREG_EIO, "s3 list %s: malformed <Contents>", prefix);
                goto done;
            }
            if ((error = cb(key, size, payload)) != 0) goto done;
        }
        if (rc < 0) {
            error = rc;
            goto done;
        }
        if (mlreg_s3_xml_text(truncated, sizeof(truncated), x.body.p, x.body.len, "IsTruncated") <
            0) {
            error = mlreg_error_set(MLREG_EIO, "s3 list %s: no <IsTruncated>", prefix);
            goto done;
        }
        if (strcmp(truncated, "true") != 0) break;
        free(token);
        if ((token = malloc(4096)) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        if (mlreg_s3_xml_text(token, 4096, x.body.p, x.body.len, "NextContinuationToken") <= 0) {
            error = mlreg_error_set(MLREG_EIO, "s3 list %s: truncated without a token", prefix);
            goto done;
        }
        xfer_cleanup(&x);
    }

done:
    xfer_cleanup(&x);
    free(token);
    return error;
}

int mlreg_s3_list_uploads(mlreg_s3 *s3, const char *prefix, mlreg_s3_upload_cb cb, void *payload)
{
    int error = 0;
    char key_marker[1024] = "", id_marker[1024] = "", truncated[16];
    xfer x = {0};

    for (;;) {
        s3_req rq = {0};
        const char *in;
        size_t in_len, pos = 0;
        int rc;

        rq.method = "GET";
        rq.collect_max = LIST_BODY_MAX;
        rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploads", ""};
        rq.params[rq.nparams++] = (mlreg_sigv4_param){"prefix", prefix};
        if (key_marker[0]) {
            rq.params[rq.nparams++] = (mlreg_sigv4_param){"key-marker", key_marker};
            rq.params[rq.nparams++] = (mlreg_sigv4_param){"upload-id-marker", id_marker};
        }
        if ((error = run_request(&x, s3, &rq, NULL)) < 0) goto done;
        if (x.body.p == NULL) {
            error = mlreg_error_set(MLREG_EIO, "s3 list uploads %s: empty response", prefix);
            goto done;
        }
        while ((rc = mlreg_s3_xml_next(&in, &in_len, &pos, x.body.p, x.body.len, "Upload")) > 0) {
            char key[1024], id[1024];
            if (mlreg_s3_xml_text(key, sizeof(key), in, in_len, "Key") < 0 ||
                mlreg_s3_xml_text(id, sizeof(id), in, in_len, "UploadId") <= 0) {
                error =
                    mlreg_error_set(MLREG_EIO, "s3 list uploads %s: malformed <Upload>", prefix);
                goto done;
            }
            if ((error = cb(key, id, payload)) != 0) goto done;
        }
        if (rc < 0) {
            error = rc;
            goto done;
        }
        if (mlreg_s3_xml_text(truncated, sizeof(truncated), x.body.p, x.body.len, "IsTruncated") <
            0) {
            error = mlreg_error_set(MLREG_EIO, "s3 list uploads %s: no <IsTruncated>", prefix);
            goto done;
        }
        if (strcmp(truncated, "true") != 0) break;
        if (mlreg_s3_xml_text(key_marker, sizeof(key_marker), x.body.p, x.body.len,
                              "NextKeyMarker") <= 0 ||
            mlreg_s3_xml_text(id_marker, sizeof(id_marker), x.body.p, x.body.len,
                              "NextUploadIdMarker") <= 0) {
            error =
                mlreg_error_set(MLREG_EIO, "s3 list uploads %s: truncated without markers", prefix);
            goto done;
        }
        xfer_cleanup(&x);
    }

done:
    xfer_cleanup(&x);
    return error;
}

static int abort_upload_id(mlreg_s3 *s3, const char *key, const char *upload_id)
{
    s3_req rq = {0};
    int error;

    rq.method = "DELETE";
    rq.key = key;
    rq.collect_max = ERROR_BODY_MAX;
    rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploadId", upload_id};
    error = run_request(NULL, s3, &rq, NULL);
    return error == MLREG_ENOTFOUND ? 0 : error; /* already gone */
}

struct abort_ctx {
    mlreg_s3 *s3;
    unsigned int n;
};

static int abort_one(const char *key, const char *upload_id, void *p)
{
    struct abort_ctx *c = p;
    int error = abort_upload_id(c->s3, key, upload_id);

    if (error == 0) c->n++;
    return error;
}

int mlreg_s3_abort_uploads(unsigned int *count_out, mlreg_s3 *s3, const char *prefix)
{
    struct abort_ctx c = {s3, 0};
    int error = mlreg_s3_list_uploads(s3, prefix, abort_one, &c);

    if (count_out) *count_out = c.n;
    return error;
}

/* ---- multipart upload ---- */

enum { SLOT_FREE, SLOT_FILLING, SLOT_INFLIGHT, SLOT_WAITING };

typedef struct {
    unsigned char *buf;
    size_t cap, len;
    int state;
    unsigned int part_number, attempts;
    uint64_t retry_at, started;
    char hash[MLREG_DIGEST_HEXLEN + 1];
    char part_str[16];
    s3_req rq;
    xfer x;
} slot;

struct mlreg_s3_upload {
    mlreg_s3 *s3;
    char *key;
    char upload_id[1024];
    CURLM *multi;
    slot *slots;
    unsigned int nslots, parts;
    char **etags; /* [part_number - 1], malloc'd strings */
    unsigned int etags_cap;
    int error; /* first fatal error, 0 while healthy */
};

static int set_etag(mlreg_s3_upload *u, unsigned int part, const char *etag)
{
    if (part > u->etags_cap) {
        unsigned int cap = u->etags_cap ? u->etags_cap * 2 : 64;
        char **p;
        while (cap < part)
            cap *= 2;
        if ((p = realloc(u->etags, cap * sizeof(*p))) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        memset(p + u->etags_cap, 0, (cap - u->etags_cap) * sizeof(*p));
        u->etags = p;
        u->etags_cap = cap;
    }
    free(u->etags[part - 1]);
    if ((u->etags[part - 1] = strdup(etag)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

int mlreg_s3_upload_begin(mlreg_s3_upload **out, mlreg_s3 *s3, const char *key)
{
    int error = 0;
    mlreg_s3_upload *u = NULL;
    s3_req rq = {0};
    xfer x = {0};

    if ((u = calloc(1, sizeof(*u))) == NULL || (u->key = strdup(key)) == NULL ||
        (u->slots = calloc(s3->parts_in_flight, sizeof(*u->slots))) == NULL ||
        (u->multi = curl_multi_init()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory starting a multipart upload");
        goto done;
    }
    u->s3 = s3;
    u->nslots = s3->parts_in_flight;
    rq.method = "POST";
    rq.key = key;
    rq.collect_max = ERROR_BODY_MAX;
    rq.check_200_error = 1;
    rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploads", ""};
    if ((error = run_request(&x, s3, &rq, NULL)) < 0) goto done;
    if (x.body.p == NULL || mlreg_s3_xml_text(u->upload_id, sizeof(u->upload_id), x.body.p,
                                              x.body.len, "UploadId") <= 0) {
        error = mlreg_error_set(MLREG_EIO, "s3 POST %s?uploads: no <UploadId> (request id %s)", key,
                                x.request_id[0] ? x.request_id : "none");
        goto done;
    }

done:
    xfer_cleanup(&x);
    if (error < 0) {
        if (u) {
            if (u->multi) curl_multi_cleanup(u->multi);
            free(u->slots);
            free(u->key);
            free(u);
        }
        return error;
    }
    *out = u;
    return 0;
}

static int slot_start(mlreg_s3_upload *u, slot *s)
{
    int error;

    if ((error = xfer_setup(&s->x, u->s3, &s->rq, NULL, 0)) < 0) return error;
    if (curl_multi_add_handle(u->multi, s->x.easy) != CURLM_OK) {
        xfer_cleanup(&s->x);
        return mlreg_error_set(MLREG_EIO, "s3: curl_multi_add_handle failed");
    }
    s->attempts++;
    s->state = SLOT_INFLIGHT;
    return 0;
}

/* Moves the upload forward: finished parts are recorded or scheduled for a
 * retry, waiting retries whose time has come are re-sent. With @p block it
 * first waits (up to a second, or until the next retry is due) for activity. */
static int pump(mlreg_s3_upload *u, int block)
{
    int running = 0, left = 0, error;
    unsigned int i;
    CURLMsg *m;
    uint64_t now;

    if (block) {
        int timeout = 1000;
        now = now_ms();
        for (i = 0; i < u->nslots; i++)
            if (u->slots[i].state == SLOT_WAITING) {
                int64_t d = (int64_t)u->slots[i].retry_at - (int64_t)now;
                if (d < timeout) timeout = d < 0 ? 0 : (int)d;
            }
        curl_multi_poll(u->multi, NULL, 0, timeout, NULL);
    }
    if (curl_multi_perform(u->multi, &running) != CURLM_OK)
        return u->error = mlreg_error_set(MLREG_EIO, "s3: curl_multi_perform failed");
    while ((m = curl_multi_info_read(u->multi, &left)) != NULL) {
        char *priv = NULL;
        xfer *x;
        slot *s = NULL;
        int outcome;

        if (m->msg != CURLMSG_DONE) continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        x = (xfer *)(void *)priv;
        for (i = 0; i < u->nslots; i++)
            if (&u->slots[i].x == x) s = &u->slots[i];
        if (s == NULL) continue;
        curl_multi_remove_handle(u->multi, s->x.easy);
        outcome = xfer_outcome(&error, &s->x, m->data.result, s->attempts);
        if (outcome == OUT_OK && s->x.etag[0] == '\0') {
            error = mlreg_error_set(MLREG_EIO, "s3 PUT %s part %u: no ETag (request id %s)", u->key,
                                    s->part_number, s->x.request_id);
            outcome = OUT_FAIL;
        }
        if (outcome == OUT_OK) {
            error = set_etag(u, s->part_number, s->x.etag);
            xfer_cleanup(&s->x);
            s->state = SLOT_FREE;
            if (error < 0 && u->error == 0) u->error = error;
            continue;
        }
        xfer_cleanup(&s->x);
        if (outcome == OUT_RETRY && s->attempts < u->s3->max_attempts) {
            unsigned int ms = mlreg_s3_backoff_ms(s->attempts, u->s3->retry_base_ms,
                                                  u->s3->retry_max_ms, rnd32());
            if (now_ms() + ms <= s->started + u->s3->retry_total_ms) {
                s->state = SLOT_WAITING;
                s->retry_at = now_ms() + ms;
                continue;
            }
        }
        s->state = SLOT_FREE;
        if (u->error == 0) u->error = error;
    }
    if (u->error) return u->error;
    now = now_ms();
    for (i = 0; i < u->nslots; i++) {
        slot *s = &u->slots[i];
        if (s->state == SLOT_WAITING && s->retry_at <= now) {
            if ((error = slot_start(u, s)) < 0) {
                s->state = SLOT_FREE;
                return u->error = error;
            }
        }
    }
    return 0;
}

int mlreg_s3_upload_buffer(unsigned char **out, mlreg_s3_upload *u, size_t size)
{
    int error;
    unsigned int i;

    for (;;) {
        if (u->error) return u->error;
        for (i = 0; i < u->nslots; i++) {
            slot *s = &u->slots[i];
            if (s->state != SLOT_FREE) continue;
            if (s->cap < size) {
                unsigned char *p;
                free(s->buf); /* nothing to keep: contents were sent */
                s->buf = NULL;
                s->cap = 0;
                if ((p = malloc(size)) == NULL)
                    return mlreg_error_set(MLREG_ENOMEM, "out of memory for a %zu-byte part", size);
                s->buf = p;
                s->cap = size;
            }
            s->state = SLOT_FILLING;
            s->len = 0;
            *out = s->buf;
            return 0;
        }
        if ((error = pump(u, 1)) < 0) return error;
    }
}

int mlreg_s3_upload_send(mlreg_s3_upload *u, size_t len)
{
    int error;
    unsigned int i;
    slot *s = NULL;
    mlreg_digest d;

    for (i = 0; i < u->nslots; i++)
        if (u->slots[i].state == SLOT_FILLING) s = &u->slots[i];
    if (s == NULL) return mlreg_error_set(MLREG_EINVALID, "s3 upload: no part buffer to send");
    if (u->error) return u->error;
    if (u->parts >= MLREG_S3_MAX_PARTS) {
        s->state = SLOT_FREE;
        return mlreg_error_set(MLREG_ETOOBIG, "s3 upload %s: over %u parts", u->key,
                               MLREG_S3_MAX_PARTS);
    }
    s->len = len;
    s->part_number = ++u->parts;
    /* the part's own SHA-256 is signed, so S3 rejects a part damaged on the way */
    if ((error = mlreg_digest_buffer(&d, s->buf, len)) < 0) {
        s->state = SLOT_FREE;
        return u->error = error;
    }
    mlreg_digest_hex(s->hash, &d);
    snprintf(s->part_str, sizeof(s->part_str), "%u", s->part_number);
    memset(&s->rq, 0, sizeof(s->rq));
    s->rq.method = "PUT";
    s->rq.key = u->key;
    s->rq.body = s->buf;
    s->rq.body_len = len;
    s->rq.has_body = 1;
    s->rq.payload_hash = s->hash;
    s->rq.collect_max = ERROR_BODY_MAX;
    s->rq.params[s->rq.nparams++] = (mlreg_sigv4_param){"partNumber", s->part_str};
    s->rq.params[s->rq.nparams++] = (mlreg_sigv4_param){"uploadId", u->upload_id};
    s->attempts = 0;
    s->started = now_ms();
    if ((error = slot_start(u, s)) < 0) {
        s->state = SLOT_FREE;
        return u->error = error;
    }
    return pump(u, 0);
}

unsigned int mlreg_s3_upload_parts(const mlreg_s3_upload *u)
{
    return u->parts;
}

static void upload_free(mlreg_s3_upload *u)
{
    unsigned int i;

    for (i = 0; i < u->nslots; i++) {
        if (u->slots[i].x.easy) {
            curl_multi_remove_handle(u->multi, u->slots[i].x.easy);
            xfer_cleanup(&u->slots[i].x);
        }
        free(u->slots[i].buf);
    }
    for (i = 0; i < u->etags_cap; i++)
        free(u->etags[i]);
    free(u->etags);
    free(u->slots);
    curl_multi_cleanup(u->multi);
    free(u->key);
    free(u);
}

void mlreg_s3_upload_abort(mlreg_s3_upload *u)
{
    unsigned int i;

    if (u == NULL) return;
    /* stop sending first: a part that lands after the abort would re-create
     * nothing (the upload id is gone) but would waste the bandwidth */
    for (i = 0; i < u->nslots; i++)
        if (u->slots[i].x.easy) {
            curl_multi_remove_handle(u->multi, u->slots[i].x.easy);
            xfer_cleanup(&u->slots[i].x);
        }
    abort_upload_id(u->s3, u->key, u->upload_id);
    upload_free(u);
}

static int busy(const mlreg_s3_upload *u)
{
    unsigned int i;

    for (i = 0; i < u->nslots; i++)
        if (u->slots[i].state == SLOT_INFLIGHT || u->slots[i].state == SLOT_WAITING) return 1;
    return 0;
}

static int xml_escape_add(membuf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (membuf_add(b, e ? e : s, e ? strlen(e) : 1, SIZE_MAX) < 0) return -1;
    }
    return 0;
}

/* CompleteMultipartUpload with the recorded ETags. */
static int complete_upload(mlreg_s3_upload *u)
{
    int error = 0;
    membuf body = {0};
    unsigned int i;
    s3_req rq = {0};
    char num[32];

    if (membuf_add(&body, "<CompleteMultipartUpload>", 25, SIZE_MAX) < 0) goto oom;
    for (i = 0; i < u->parts; i++) {
        if (i >= u->etags_cap || u->etags[i] == NULL) {
            error = mlreg_error_set(MLREG_EIO, "s3 upload %s: part %u has no ETag", u->key, i + 1);
            goto done;
        }
        snprintf(num, sizeof(num), "%u", i + 1);
        if (membuf_add(&body, "<Part><PartNumber>", 18, SIZE_MAX) < 0 ||
            membuf_add(&body, num, strlen(num), SIZE_MAX) < 0 ||
            membuf_add(&body, "</PartNumber><ETag>", 19, SIZE_MAX) < 0 ||
            xml_escape_add(&body, u->etags[i]) < 0 ||
            membuf_add(&body, "</ETag></Part>", 14, SIZE_MAX) < 0)
            goto oom;
    }
    if (membuf_add(&body, "</CompleteMultipartUpload>", 26, SIZE_MAX) < 0) goto oom;
    rq.method = "POST";
    rq.key = u->key;
    rq.body = (const unsigned char *)body.p;
    rq.body_len = body.len;
    rq.has_body = 1;
    rq.collect_max = ERROR_BODY_MAX;
    rq.check_200_error = 1;
    rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploadId", u->upload_id};
    error = run_request(NULL, u->s3, &rq, NULL);
    if (error == MLREG_ENOTFOUND) {
        /* NoSuchUpload: an earlier attempt may have completed it */
        char saved[512];
        snprintf(saved, sizeof(saved), "%s", mlreg_error_last());
        if (mlreg_s3_head(NULL, u->s3, u->key) == 0)
            error = 0;
        else
            error = mlreg_error_set(MLREG_EIO, "%s", saved);
    }
    goto done;

oom:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory completing an upload");
done:
    free(body.p);
    return error;
}

int mlreg_s3_upload_complete(mlreg_s3_upload *u)
{
    int error = 0;

    while (busy(u) && u->error == 0)
        pump(u, 1);
    if ((error = u->error) < 0) goto fail;
    if (u->parts == 0) {
        error = mlreg_error_set(MLREG_EINVALID, "s3 upload %s: no parts", u->key);
        goto fail;
    }
    if ((error = complete_upload(u)) < 0) goto fail;
    upload_free(u);
    return 0;

fail : {
    /* keep the first message: the abort may overwrite it */
    char saved[512];
    snprintf(saved, sizeof(saved), "%s", mlreg_error_last());
    mlreg_s3_upload_abort(u);
    mlreg_error_set(error, "%s", saved);
    return error;
}
}

/* ---- copy ---- */

int mlreg_s3_copy(mlreg_s3 *s3, const char *dst_key, const char *src_key, uint64_t size)
{
    int error = 0;
    char *src_raw = NULL, *src = NULL;
    mlreg_s3_upload *u = NULL;
    s3_req rq = {0};
    xfer x = {0};

    if (asprintf(&src_raw, "/%s/%s", s3->bucket, src_key) < 0) {
        src_raw = NULL;
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = mlreg_sigv4_uri_encode(&src, src_raw, strlen(src_raw), 1)) < 0) goto done;
    if (size <= s3->copy_threshold) {
        rq.method = "PUT";
        rq.key = dst_key;
        rq.has_body = 1;
        rq.collect_max = ERROR_BODY_MAX;
        rq.check_200_error = 1;
        rq.hdr_name[rq.nhdrs] = "x-amz-copy-source";
        rq.hdr_value[rq.nhdrs++] = src;
        error = run_request(NULL, s3, &rq, NULL);
        goto done;
    } else {
        uint64_t part = (size + MLREG_S3_MAX_PARTS - 1) / MLREG_S3_MAX_PARTS, off;
        uint64_t want = s3->copy_threshold < (1ull << 30) ? s3->copy_threshold : (1ull << 30);
        unsigned int n = 0;
        if (part < want) part = want;
        if ((error = mlreg_s3_upload_begin(&u, s3, dst_key)) < 0) goto done;
        for (off = 0; off < size; off += part) {
            char range[96], num[16], etag[160];
            uint64_t end = off + part < size ? off + part - 1 : size - 1;
            memset(&rq, 0, sizeof(rq));
            snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
                     (unsigned long long)end);
            snprintf(num, sizeof(num), "%u", ++n);
            rq.method = "PUT";
            rq.key = dst_key;
            rq.has_body = 1;
            rq.collect_max = ERROR_BODY_MAX;
            rq.check_200_error = 1;
            rq.hdr_name[rq.nhdrs] = "x-amz-copy-source";
            rq.hdr_value[rq.nhdrs++] = src;
            rq.hdr_name[rq.nhdrs] = "x-amz-copy-source-range";
            rq.hdr_value[rq.nhdrs++] = range;
            rq.params[rq.nparams++] = (mlreg_sigv4_param){"partNumber", num};
            rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploadId", u->upload_id};
            if ((error = run_request(&x, s3, &rq, NULL)) < 0) goto done;
            if (x.body.p == NULL ||
                mlreg_s3_xml_text(etag, sizeof(etag), x.body.p, x.body.len, "ETag") <= 0) {
                error = mlreg_error_set(MLREG_EIO, "s3 copy %s part %u: no <ETag>", dst_key, n);
                goto done;
            }
            xfer_cleanup(&x);
            u->parts = n;
            if ((error = set_etag(u, n, etag)) < 0) goto done;
        }
        error = mlreg_s3_upload_complete(u);
        u = NULL;
    }

done:
    xfer_cleanup(&x);
    if (u) mlreg_s3_upload_abort(u);
    free(src_raw);
    free(src);
    return error;
}

/* ---- pull reader ---- */

struct mlreg_s3_reader {
    mlreg_s3 *s3;
    char *key;
    CURLM *multi;
    xfer x;
    s3_req rq;
    int active; /* x is on the multi handle */
    int done;
    CURLcode result;
    unsigned char *buf;
    size_t cap, off, len;
    uint64_t size, consumed; /* consumed: bytes handed to the caller */
    unsigned int attempts;
    uint64_t started;
};

static int reader_on_data(const void *data, size_t len, void *p)
{
    mlreg_s3_reader *r = p;

    if (r->off > 0 && r->len > 0) {
        memmove(r->buf, r->buf + r->off, r->len);
    }
    if (r->len == 0 || r->off > 0) r->off = 0;
    if (r->len + len > r->cap) {
        unsigned char *nb;
        if (r->len > 0) return S3_PAUSE; /* caller has not read yet: hold the stream */
        if ((nb = realloc(r->buf, len)) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory reading from s3");
        r->buf = nb;
        r->cap = len;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

static int reader_start(mlreg_s3_reader *r)
{
    int error;
    char range[80] = "";

    if (r->consumed > 0)
        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)r->consumed);
    if ((error = xfer_setup(&r->x, r->s3, &r->rq, r->consumed ? range : NULL, 0)) < 0) return error;
    if (curl_multi_add_handle(r->multi, r->x.easy) != CURLM_OK) {
        xfer_cleanup(&r->x);
        return mlreg_error_set(MLREG_EIO, "s3: curl_multi_add_handle failed");
    }
    r->attempts++;
    r->active = 1;
    r->done = 0;
    return 0;
}

static void reader_stop(mlreg_s3_reader *r)
{
    if (r->active) curl_multi_remove_handle(r->multi, r->x.easy);
    r->active = 0;
    xfer_cleanup(&r->x);
}

/* Runs the transfer until data is buffered, the headers are in (when
 * @p want_headers), or it ends. */
static int reader_drive(mlreg_s3_reader *r, int want_headers)
{
    int running = 0, left;
    CURLMsg *m;

    for (;;) {
        if (curl_multi_perform(r->multi, &running) != CURLM_OK)
            return mlreg_error_set(MLREG_EIO, "s3: curl_multi_perform failed");
        while ((m = curl_multi_info_read(r->multi, &left)) != NULL)
            if (m->msg == CURLMSG_DONE) {
                r->done = 1;
                r->result = m->data.result;
            }
        if (r->done || r->len > 0 || (want_headers && r->x.headers_done)) return 0;
        if (r->x.paused) return 0;
        curl_multi_poll(r->multi, NULL, 0, 1000, NULL);
    }
}

/* Handles a finished transfer: 0 when it completed the object, 1 when a
 * retry was started, or an error. */
static int reader_finish(mlreg_s3_reader *r)
{
    int error = 0, outcome = xfer_outcome(&error, &r->x, r->result, r->attempts);

    if (outcome == OUT_OK && r->consumed + r->len == r->size) return 0;
    if (outcome == OUT_OK) {
        error = mlreg_error_set(MLREG_EIO, "s3 GET %s: body ended at %llu of %llu bytes", r->key,
                                (unsigned long long)(r->consumed + r->len),
                                (unsigned long long)r->size);
        outcome = OUT_RETRY;
    }
    if (outcome == OUT_FAIL || r->len > 0) return error;
    reader_stop(r);
    if (!backoff(r->s3, r->attempts, r->started)) return error;
    if ((error = reader_start(r)) < 0) return error;
    return 1;
}

int mlreg_s3_reader_open(mlreg_s3_reader **out, uint64_t *size_out, mlreg_s3 *s3, const char *key)
{
    int error = 0;
    mlreg_s3_reader *r = NULL;

    if ((r = calloc(1, sizeof(*r))) == NULL || (r->key = strdup(key)) == NULL ||
        (r->multi = curl_multi_init()) == NULL || (r->buf = malloc(READER_BUF)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory opening an s3 reader");
        goto done;
    }
    r->cap = READER_BUF;
    r->s3 = s3;
    r->rq.method = "GET";
    r->rq.key = r->key;
    r->rq.on_data = reader_on_data;
    r->rq.payload = r;
    r->started = now_ms();
    for (;;) {
        if ((error = reader_start(r)) < 0) goto done;
        if ((error = reader_drive(r, 1)) < 0) goto done;
        if (r->x.headers_done && r->x.status / 100 == 2) break;
        if (!r->done) {
            /* an error status: wait for its body, which holds the code */
            while (!r->done)
                if ((error = reader_drive(r, 0)) < 0) goto done;
        }
        {
            int outcome = xfer_outcome(&error, &r->x, r->result, r->attempts);
            if (outcome == OUT_OK) break; /* whole body already here (small object) */
            reader_stop(r);
            r->len = 0;
            if (outcome == OUT_FAIL || !backoff(s3, r->attempts, r->started)) goto done;
        }
    }
    if (!r->x.has_length) {
        error = mlreg_error_set(MLREG_EIO, "s3 GET %s: no Content-Length (request id %s)", key,
                                r->x.request_id[0] ? r->x.request_id : "none");
        goto done;
    }
    r->size = r->x.content_length;

done:
    if (error < 0) {
        mlreg_s3_reader_free(r);
        return error;
    }
    if (size_out) *size_out = r->size;
    *out = r;
    return 0;
}

long mlreg_s3_reader_read(mlreg_s3_reader *r, void *buf, size_t len)
{
    int error;

    for (;;) {
        if (r->len > 0) {
            size_t n = len < r->len ? len : r->len;
            memcpy(buf, r->buf + r->off, n);
            r->off += n;
            r->len -= n;
            r->consumed += n;
            if (r->len == 0) r->off = 0;
            return (long)n;
        }
        if (r->consumed == r->size && (r->done || !r->active)) return 0;
        if (r->done) {
            if ((error = reader_finish(r)) < 0) return error;
            if (error == 0) {
                reader_stop(r);
                return 0;
            }
            continue;
        }
        if (r->x.paused) {
            r->x.paused = 0;
            curl_easy_pause(r->x.easy, CURLPAUSE_CONT);
        }
        if ((error = reader_drive(r, 0)) < 0) return error;
    }
}

void mlreg_s3_reader_free(mlreg_s3_reader *r)
{
    if (r == NULL) return;
    reader_stop(r);
    if (r->multi) curl_multi_cleanup(r->multi);
    free(r->buf);
    free(r->key);
    free(r);
}
