/* s3_transfer.c: one S3 request, from description to outcome.
 *
 * A request description (mlreg_s3__req) is turned into a signed easy handle
 * (mlreg_s3__xfer_setup), run blocking (mlreg_s3__run_request, with the
 * retry loop) or by its caller on a multi handle (multipart parts, the pull
 * reader). Responses are classified once (mlreg_s3__xfer_outcome): success,
 * retryable failure, or final failure with a message naming method, key,
 * status, S3 code and request id. Retries wait a full-jitter exponential
 * backoff, bounded in attempts and in total time.
 *
 * Traps:
 * - CompleteMultipartUpload and CopyObject can answer 200 with an <Error>
 *   body; such responses are failures (check_200_error).
 * - A resumed GET must answer 206: a 200 would repeat bytes already given.
 * - No redirects are followed, so an Authorization header never leaves the
 *   configured endpoint.
 * - Credentials are never put in messages.
 */
#include "s3_internal.h"

#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/metrics.h"
#include "mlreg/sigv4.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- small helpers ---- */

uint64_t mlreg_s3__now_ms(void)
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

uint32_t mlreg_s3__rnd32(void)
{
    uint32_t r = 0;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint32_t)mlreg_s3__now_ms() * 2654435761u;
    return r;
}

int mlreg_s3__membuf_add(mlreg_buf *b, const void *data, size_t len, size_t max)
{
    if (b->len + len > max) return -1;
    return mlreg_buf_add(b, data, len) < 0 ? -1 : 0;
}

/* ---- retry policy and error classification ---- */

int mlreg_s3__status_is_retryable(long status, const char *code)
{
    /* 501 NotImplemented is an answer, not a hiccup */
    if ((status >= 500 && status != 501) || status == 429) return 1;
    if (code != NULL &&
        (strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
         strcmp(code, "InternalError") == 0 || strcmp(code, "ServiceUnavailable") == 0))
        return 1;
    return 0;
}

int mlreg_s3__curl_is_retryable(int curl_code)
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

unsigned int mlreg_s3__backoff_ms(unsigned int attempt, unsigned int base_ms, unsigned int max_ms,
                                  uint32_t rnd)
{
    uint64_t ceil = base_ms;
    unsigned int i;

    for (i = 1; i < attempt && ceil < max_ms; i++)
        ceil *= 2;
    if (ceil > max_ms) ceil = max_ms;
    return (unsigned int)(rnd % (ceil + 1));
}

int mlreg_s3__error_from_response(char *out, size_t outlen, const char *method, const char *key,
                                  long status, const char *body, size_t body_len,
                                  const char *header_request_id)
{
    mlreg_s3__error_body eb;
    const char *code = eb.code;
    int err;

    mlreg_s3__xml_error(&eb, body, body_len);
    if (eb.request_id[0] == '\0' && header_request_id != NULL)
        snprintf(eb.request_id, sizeof(eb.request_id), "%s", header_request_id);
    snprintf(out, outlen, "s3 %s %s: %ld %s%s%s (request id %s)", method, key ? key : "/", status,
             code[0] ? code : "(no error code)", eb.message[0] ? ": " : "", eb.message,
             eb.request_id[0] ? eb.request_id : "none");

    if (status == 404) {
        /* a missing bucket is a configuration error, not a missing blob */
        err = strcmp(code, "NoSuchBucket") == 0 ? MLREG_EIO : MLREG_ENOTFOUND;
    } else if (status == 401 || status == 403) {
        err = strcmp(code, "AccessDenied") == 0 || strcmp(code, "AllAccessDisabled") == 0
                  ? MLREG_EFORBIDDEN
                  : MLREG_EAUTH;
    } else if (status == 416) {
        err = MLREG_ERANGE;
    } else if (status == 412 ||
               (status == 409 && strcmp(code, "ConditionalRequestConflict") == 0)) {
        /* a conditional write lost: the key exists, or another conditional
         * write of it is in flight (AWS answers 409 then) */
        err = MLREG_EEXISTS;
    } else if (mlreg_s3__status_is_retryable(status, code) || status / 100 == 2) {
        err = MLREG_ESERVER;
    } else {
        err = MLREG_EIO;
    }
    return err;
}

/* ---- transfer setup ---- */

static size_t on_header(char *data, size_t size, size_t n, void *p)
{
    mlreg_s3__xfer *x = p;
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
        x->has_range = 0;
        x->request_id[0] = x->etag[0] = x->meta_sig[0] = '\0';
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
        else if (strcasecmp(line, MLREG_S3_META_SIG_HEADER) == 0 &&
                 strlen(v) <= MLREG_S3_META_SIG_MAX)
            snprintf(x->meta_sig, sizeof(x->meta_sig), "%s", v);
        else if (strcasecmp(line, "content-range") == 0) {
            unsigned long long a, b, total;
            int used = 0;
            x->has_range = sscanf(v, "bytes %llu-%llu/%llu%n", &a, &b, &total, &used) == 3 &&
                           v[used] == '\0' && a <= b && b < total;
            x->range_first = x->has_range ? a : 0;
            x->range_total = x->has_range ? total : 0;
        } else if (strcasecmp(line, "content-length") == 0) {
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
    mlreg_s3__xfer *x = p;
    size_t len = size * n;

    if (x->status / 100 == 2 && x->rq->on_data != NULL) {
        int rc = x->rq->on_data(data, len, x->rq->payload);
        if (rc == MLREG_S3__PAUSE) {
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
        if (mlreg_s3__membuf_add(&x->body, data, len, x->rq->collect_max) < 0) {
            x->overflow = 1;
            return 0;
        }
        return len;
    }
    /* error bodies: keep the start, which holds the code */
    if (x->body.len < MLREG_S3__ERROR_BODY_MAX) {
        size_t take = MLREG_S3__ERROR_BODY_MAX - x->body.len < len
                          ? MLREG_S3__ERROR_BODY_MAX - x->body.len
                          : len;
        if (mlreg_s3__membuf_add(&x->body, data, take, MLREG_S3__ERROR_BODY_MAX) < 0)
            x->overflow = 1;
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *p)
{
    mlreg_s3__xfer *x = p;
    size_t room = size * n, left = x->rq->body_len - x->body_off;
    size_t take = room < left ? room : left;

    if (take > 0) memcpy(buf, x->rq->body + x->body_off, take);
    x->body_off += take;
    return take;
}

static int on_seek(void *p, curl_off_t offset, int origin)
{
    mlreg_s3__xfer *x = p;

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
    if (s3->npool < MLREG_S3__POOL_MAX) {
        s3->pool[s3->npool++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&s3->pool_lock);
    if (e != NULL) curl_easy_cleanup(e);
}

void mlreg_s3__xfer_cleanup(mlreg_s3__xfer *x)
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
int mlreg_s3__build_path(char **raw_out, mlreg_s3 *s3, const char *key)
{
    if (asprintf(raw_out, "%s/%s", s3->base_path, key ? key : "") < 0) {
        *raw_out = NULL;
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    return 0;
}

/* Counts one attempt of @p rq by kind (listings are GETs of the bucket). */
static void count_request(mlreg_s3 *s3, const mlreg_s3__req *rq)
{
    uint64_t *c = &s3->sent_other;

    if (rq->head)
        c = &s3->sent_head;
    else if (!strcmp(rq->method, "GET"))
        c = rq->key == NULL ? &s3->sent_list : &s3->sent_get;
    else if (!strcmp(rq->method, "PUT"))
        c = &s3->sent_put;
    else if (!strcmp(rq->method, "DELETE"))
        c = &s3->sent_delete;
    __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

void mlreg_s3_counts_get(mlreg_s3_counts *out, const mlreg_s3 *s3)
{
    out->get = __atomic_load_n(&s3->sent_get, __ATOMIC_RELAXED);
    out->put = __atomic_load_n(&s3->sent_put, __ATOMIC_RELAXED);
    out->head = __atomic_load_n(&s3->sent_head, __ATOMIC_RELAXED);
    out->del = __atomic_load_n(&s3->sent_delete, __ATOMIC_RELAXED);
    out->list = __atomic_load_n(&s3->sent_list, __ATOMIC_RELAXED);
    out->other = __atomic_load_n(&s3->sent_other, __ATOMIC_RELAXED);
}

/* Prepares one attempt of @p rq. @p range overrides the request's Range
 * header (resumed GETs). @p pooled: take the easy handle from the client's
 * pool (blocking requests only; multi transfers use fresh handles). */
int mlreg_s3__xfer_setup(mlreg_s3__xfer *x, mlreg_s3 *s3, const mlreg_s3__req *rq,
                         const char *range, int pooled)
{
    int error = 0;
    char *raw_path = NULL, *enc_path = NULL, hash_hex[MLREG_DIGEST_HEXLEN + 1];
    const char *payload_hash = rq->payload_hash;
    mlreg_sigv4_header hs[MLREG_S3__MAX_HDRS + 2];
    size_t nh = 0, i;
    mlreg_sigv4_credentials cred = {s3->access_key, s3->secret_key, s3->session_token, s3->region,
                                    "s3"};
    mlreg_sigv4_request sreq = {0};
    mlreg_sigv4_result res = {0};
    char *query = NULL;

    memset(x, 0, sizeof(*x));
    x->rq = rq;
    count_request(s3, rq);
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
    if ((error = mlreg_s3__build_path(&raw_path, s3, rq->key)) < 0) goto done;
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
        add_header(&x->hl, "Authorization", res.authorization) < 0 ||
        (rq->if_none_match && add_header(&x->hl, "If-None-Match", rq->if_none_match) < 0))
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
    if (error < 0) mlreg_s3__xfer_cleanup(x);
    return error;
}

/* Classifies a finished attempt; sets the message and *error unless OK. */
int mlreg_s3__xfer_outcome(int *error, mlreg_s3__xfer *x, CURLcode rc, unsigned int attempt)
{
    char msg[768];
    const char *what = x->rq->key ? x->rq->key : "/";
    mlreg_s3__error_body eb;

    *error = 0;
    if (x->cb_rc != 0) {
        *error = x->cb_rc; /* the callback's own message stands */
        return MLREG_S3__OUT_FAIL;
    }
    if (x->overflow && x->status / 100 == 2) {
        *error = mlreg_error_set(MLREG_EIO, "s3 %s %s: response body over %zu bytes", x->rq->method,
                                 what, x->rq->collect_max);
        return MLREG_S3__OUT_FAIL;
    }
    if (rc != CURLE_OK) {
        *error = mlreg_error_set(MLREG_EUNREACHABLE, "s3 %s %s: %s (attempt %u)", x->rq->method,
                                 what, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc), attempt);
        return mlreg_s3__curl_is_retryable((int)rc) ? MLREG_S3__OUT_RETRY : MLREG_S3__OUT_FAIL;
    }
    if (x->status / 100 == 2 &&
        !(x->rq->check_200_error && mlreg_s3__xml_is_error(x->body.p, x->body.len)))
        return MLREG_S3__OUT_OK;
    /* the code is parsed before the message is set: a malformed <Code>
     * sets a message of its own, which must not replace the response's */
    mlreg_s3__xml_error(&eb, x->body.p, x->body.len);
    *error = mlreg_s3__error_from_response(msg, sizeof(msg), x->rq->method, what, x->status,
                                           x->body.p, x->body.len, x->request_id);
    mlreg_error_set(*error, "%s", msg);
    if (x->status / 100 == 2) return MLREG_S3__OUT_RETRY; /* an error inside a 200 */
    return mlreg_s3__status_is_retryable(x->status, eb.code) ? MLREG_S3__OUT_RETRY
                                                             : MLREG_S3__OUT_FAIL;
}

/* Waits before retry @p attempt when the budget allows; 0 when out of budget. */
int mlreg_s3__backoff(mlreg_s3 *s3, unsigned int attempt, uint64_t started)
{
    unsigned int ms;

    if (attempt >= s3->max_attempts) return 0;
    ms = mlreg_s3__backoff_ms(attempt, s3->retry_base_ms, s3->retry_max_ms, mlreg_s3__rnd32());
    if (mlreg_s3__now_ms() + ms > started + s3->retry_total_ms) return 0;
    mlreg_metrics_add(s3->retries, 1);
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
int mlreg_s3__run_request(mlreg_s3__xfer *x_out, mlreg_s3 *s3, const mlreg_s3__req *rq,
                          const char *range)
{
    int error = 0, outcome;
    unsigned int attempt;
    uint64_t started = mlreg_s3__now_ms(), delivered = 0;
    char rbuf[80];
    const char *use_range = range;
    mlreg_s3__xfer x;

    for (attempt = 1;; attempt++) {
        if ((error = mlreg_s3__xfer_setup(&x, s3, rq, use_range, 1)) < 0) return error;
        outcome = mlreg_s3__xfer_outcome(&error, &x, curl_easy_perform(x.easy), attempt);
        if (outcome == MLREG_S3__OUT_OK && delivered > 0 && x.status != 206) {
            error = mlreg_error_set(MLREG_EIO, "s3 GET %s: resumed transfer answered %ld, not 206",
                                    rq->key, x.status);
            outcome = MLREG_S3__OUT_FAIL;
        }
        if (outcome == MLREG_S3__OUT_OK) {
            if (x_out)
                *x_out = x;
            else
                mlreg_s3__xfer_cleanup(&x);
            return 0;
        }
        delivered += x.delivered;
        mlreg_s3__xfer_cleanup(&x);
        if (outcome == MLREG_S3__OUT_FAIL) return error;
        if (delivered > 0) {
            if (!resume_range(rbuf, sizeof(rbuf), range, delivered)) return error;
            use_range = rbuf;
        }
        if (!mlreg_s3__backoff(s3, attempt, started)) return error;
    }
}
