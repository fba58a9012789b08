/* s3.c: a small, strict S3 client over libcurl: the client object, the
 * single-object operations (HEAD, GET, PUT, DELETE, copy, presigned GET),
 * ListObjectsV2 and the pull reader.
 *
 * The request engine is s3_transfer.c, multipart uploads are s3_multipart.c
 * and the response parsers s3_xml.c; s3_internal.h is what they share.
 *
 * Traps:
 * - A resumed GET must answer 206: a 200 would repeat bytes already given
 *   (the blocking GET in mlreg_s3__run_request, the reader here).
 * - Credentials are never put in messages; the secret is wiped on free.
 */
#include "s3_internal.h"

#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/metrics.h"
#include "mlreg/s3.h"
#include "mlreg/sigv4.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READER_BUF (256u << 10)

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- key layout and part sizes ---- */

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
    s3->retries = mlreg_metrics_counter(
        "mlreg_s3_retries_total",
        "Requests to the object store sent again after a retryable failure.", NULL, 0);
    s3->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000;
    s3->low_speed_seconds = cfg->low_speed_seconds ? cfg->low_speed_seconds : 60;
    s3->presign_seconds = cfg->presign_seconds ? cfg->presign_seconds : 300;
    s3->part_size = cfg->part_size ? cfg->part_size : MLREG_S3_DEFAULT_PART_SIZE;
    s3->copy_threshold = MLREG_S3_MAX_SINGLE_PUT;
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
    mlreg_s3__req rq = {0};
    mlreg_s3__xfer x;

    rq.method = "HEAD";
    rq.key = key;
    rq.head = 1;
    if ((error = mlreg_s3__run_request(&x, s3, &rq, NULL)) < 0) return error;
    if (!x.has_length) {
        mlreg_s3__xfer_cleanup(&x);
        return mlreg_error_set(MLREG_EIO, "s3 HEAD %s: no Content-Length (request id %s)", key,
                               x.request_id[0] ? x.request_id : "none");
    }
    if (size_out) *size_out = x.content_length;
    mlreg_s3__xfer_cleanup(&x);
    return 0;
}

int mlreg_s3_get(mlreg_s3 *s3, const char *key, const char *range, mlreg_s3_data_cb cb,
                 void *payload)
{
    mlreg_s3__req rq = {0};

    rq.method = "GET";
    rq.key = key;
    rq.on_data = cb;
    rq.payload = payload;
    return mlreg_s3__run_request(NULL, s3, &rq, range);
}

/* One PUT of @p len bytes; @p if_none_match and @p meta_sig may be NULL. */
static int put_object(mlreg_s3 *s3, const char *key, const void *data, size_t len,
                      const char *payload_hash, const char *if_none_match, const char *meta_sig)
{
    mlreg_s3__req rq = {0};

    if ((uint64_t)len > MLREG_S3_MAX_SINGLE_PUT)
        return mlreg_error_set(MLREG_EINVALID, "s3 PUT %s: %zu bytes is over the 5 GiB limit", key,
                               len);
    if (meta_sig != NULL) {
        if (strlen(meta_sig) > MLREG_S3_META_SIG_MAX || strpbrk(meta_sig, "\r\n") != NULL)
            return mlreg_error_set(MLREG_EINVALID, "s3 PUT %s: metadata value too long", key);
        rq.hdr_name[rq.nhdrs] = MLREG_S3_META_SIG_HEADER;
        rq.hdr_value[rq.nhdrs++] = meta_sig;
    }
    rq.method = "PUT";
    rq.key = key;
    rq.body = data;
    rq.body_len = len;
    rq.has_body = 1;
    rq.payload_hash = payload_hash;
    rq.if_none_match = if_none_match;
    rq.collect_max = MLREG_S3__ERROR_BODY_MAX;
    return mlreg_s3__run_request(NULL, s3, &rq, NULL);
}

int mlreg_s3_put(mlreg_s3 *s3, const char *key, const void *data, size_t len,
                 const char *payload_hash)
{
    return put_object(s3, key, data, len, payload_hash, NULL, NULL);
}

int mlreg_s3_put_meta(mlreg_s3 *s3, const char *key, const void *data, size_t len,
                      const char *meta_sig)
{
    return put_object(s3, key, data, len, NULL, NULL, meta_sig);
}

int mlreg_s3_put_new(mlreg_s3 *s3, const char *key, const void *data, size_t len,
                     const char *meta_sig)
{
    return put_object(s3, key, data, len, NULL, "*", meta_sig);
}

typedef struct {
    mlreg_buf buf;
    size_t max;
    const char *key;
} small_get;

static int small_get_cb(const void *data, size_t len, void *payload)
{
    small_get *g = payload;

    if (g->buf.len + len > g->max)
        return mlreg_error_set(MLREG_ETOOBIG, "s3 GET %s: the object is over %zu bytes", g->key,
                               g->max);
    return mlreg_buf_add(&g->buf, data, len);
}

int mlreg_s3_get_small(char **out, size_t *len_out, char *meta_sig_out, mlreg_s3 *s3,
                       const char *key, size_t max)
{
    small_get g = {{NULL, 0, 0}, max, key};
    mlreg_s3__req rq = {0};
    mlreg_s3__xfer x;
    int error;

    rq.method = "GET";
    rq.key = key;
    rq.on_data = small_get_cb;
    rq.payload = &g;
    /* an empty object still gets a buffer, so *out is never NULL on success */
    if ((error = mlreg_buf_add(&g.buf, "", 0)) < 0 ||
        (error = mlreg_s3__run_request(&x, s3, &rq, NULL)) < 0) {
        free(g.buf.p);
        return error;
    }
    if (meta_sig_out != NULL) memcpy(meta_sig_out, x.meta_sig, sizeof(x.meta_sig));
    mlreg_s3__xfer_cleanup(&x);
    *out = g.buf.p;
    *len_out = g.buf.len;
    return 0;
}

int mlreg_s3_delete(mlreg_s3 *s3, const char *key)
{
    mlreg_s3__req rq = {0};

    rq.method = "DELETE";
    rq.key = key;
    rq.collect_max = MLREG_S3__ERROR_BODY_MAX;
    return mlreg_s3__run_request(NULL, s3, &rq, NULL);
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

    if ((error = mlreg_s3__build_path(&raw, s3, key)) < 0) goto done;
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

int mlreg_s3_list(mlreg_s3 *s3, const char *prefix, mlreg_s3_list_cb cb, void *payload)
{
    int error = 0;
    mlreg_s3__objects_page page = {0};
    mlreg_s3__xfer x = {0};

    for (;;) {
        mlreg_s3__req rq = {0};

        rq.method = "GET";
        rq.collect_max = MLREG_S3__LIST_BODY_MAX;
        rq.params[rq.nparams++] = (mlreg_sigv4_param){"list-type", "2"};
        rq.params[rq.nparams++] = (mlreg_sigv4_param){"prefix", prefix};
        if (page.truncated)
            rq.params[rq.nparams++] = (mlreg_sigv4_param){"continuation-token", page.next_token};
        if ((error = mlreg_s3__run_request(&x, s3, &rq, NULL)) < 0) goto done;
        if (x.body.p == NULL) {
            error = mlreg_error_set(MLREG_EIO, "s3 list %s: empty response", prefix);
            goto done;
        }
        if ((error =
                 mlreg_s3__xml_list_objects(&page, x.body.p, x.body.len, prefix, cb, payload)) != 0)
            goto done;
        if (!page.truncated) break;
        mlreg_s3__xfer_cleanup(&x);
    }

done:
    mlreg_s3__xfer_cleanup(&x);
    return error;
}

/* ---- copy ---- */

int mlreg_s3_copy(mlreg_s3 *s3, const char *dst_key, const char *src_key, uint64_t size)
{
    int error = 0;
    char *src_raw = NULL, *src = NULL;
    mlreg_s3_upload *u = NULL;
    mlreg_s3__req rq = {0};

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
        rq.collect_max = MLREG_S3__ERROR_BODY_MAX;
        rq.check_200_error = 1;
        rq.hdr_name[rq.nhdrs] = "x-amz-copy-source";
        rq.hdr_value[rq.nhdrs++] = src;
        error = mlreg_s3__run_request(NULL, s3, &rq, NULL);
        goto done;
    } else {
        uint64_t part = (size + MLREG_S3_MAX_PARTS - 1) / MLREG_S3_MAX_PARTS, off;
        uint64_t want = s3->copy_threshold < (1ull << 30) ? s3->copy_threshold : (1ull << 30);
        if (part < want) part = want;
        if ((error = mlreg_s3_upload_begin(&u, s3, dst_key)) < 0) goto done;
        for (off = 0; off < size; off += part) {
            uint64_t end = off + part < size ? off + part - 1 : size - 1;
            if ((error = mlreg_s3__upload_copy_part(u, src, off, end)) < 0) goto done;
        }
        error = mlreg_s3_upload_complete(u);
        u = NULL;
    }

done:
    if (u) mlreg_s3_upload_abort(u);
    free(src_raw);
    free(src);
    return error;
}

void mlreg_s3__set_copy_threshold(mlreg_s3 *s3, uint64_t threshold)
{
    s3->copy_threshold = threshold;
}

/* ---- pull reader ---- */

struct mlreg_s3_reader {
    mlreg_s3 *s3;
    char *key;
    CURLM *multi;
    mlreg_s3__xfer x;
    mlreg_s3__req rq;
    int active; /* x is on the multi handle */
    int done;
    CURLcode result;
    unsigned char *buf;
    size_t cap, off, len;
    uint64_t size, consumed; /* consumed: bytes handed to the caller */
    unsigned int attempts;
    uint64_t started;
    /* a ranged reader: bytes base .. last (inclusive; UINT64_MAX: to the
     * end) were asked for, every answer must be a 206 */
    int ranged;
    uint64_t base, last, total;
    int resumed; /* the current attempt asked for a Range from consumed */
};

static int reader_on_data(const void *data, size_t len, void *p)
{
    mlreg_s3_reader *r = p;

    /* a 200 to a ranged or resumed GET starts again from byte 0 */
    if ((r->ranged || r->resumed) && r->x.status != 206)
        return mlreg_error_set(MLREG_EIO, "s3 GET %s: a ranged request answered %ld, not 206",
                               r->key, r->x.status);

    if (r->off > 0 && r->len > 0) {
        memmove(r->buf, r->buf + r->off, r->len);
    }
    if (r->len == 0 || r->off > 0) r->off = 0;
    if (r->len + len > r->cap) {
        unsigned char *nb;
        if (r->len > 0) return MLREG_S3__PAUSE; /* caller has not read yet: hold the stream */
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

    if (r->ranged && r->last != UINT64_MAX)
        snprintf(range, sizeof(range), "bytes=%llu-%llu",
                 (unsigned long long)(r->base + r->consumed), (unsigned long long)r->last);
    else if (r->ranged || r->consumed > 0)
        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)(r->base + r->consumed));
    r->resumed = r->consumed > 0;
    if ((error = mlreg_s3__xfer_setup(&r->x, r->s3, &r->rq, range[0] ? range : NULL, 0)) < 0)
        return error;
    if (curl_multi_add_handle(r->multi, r->x.easy) != CURLM_OK) {
        mlreg_s3__xfer_cleanup(&r->x);
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
    mlreg_s3__xfer_cleanup(&r->x);
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
    int error = 0, outcome = mlreg_s3__xfer_outcome(&error, &r->x, r->result, r->attempts);

    if (outcome == MLREG_S3__OUT_OK && r->consumed + r->len == r->size) return 0;
    if (outcome == MLREG_S3__OUT_OK) {
        error = mlreg_error_set(MLREG_EIO, "s3 GET %s: body ended at %llu of %llu bytes", r->key,
                                (unsigned long long)(r->consumed + r->len),
                                (unsigned long long)r->size);
        outcome = MLREG_S3__OUT_RETRY;
    }
    if (outcome == MLREG_S3__OUT_FAIL || r->len > 0) return error;
    reader_stop(r);
    if (!mlreg_s3__backoff(r->s3, r->attempts, r->started)) return error;
    if ((error = reader_start(r)) < 0) return error;
    return 1;
}

/* Opens a reader of the whole object (@p ranged 0) or of bytes @p base ..
 * @p last (inclusive, UINT64_MAX: to the end); *total_out: the object's
 * size. */
static int reader_open(mlreg_s3_reader **out, uint64_t *total_out, mlreg_s3 *s3, const char *key,
                       int ranged, uint64_t base, uint64_t last)
{
    int error = 0;
    mlreg_s3_reader *r = NULL;

    if ((r = calloc(1, sizeof(*r))) == NULL || (r->key = strdup(key)) == NULL ||
        (r->multi = curl_multi_init()) == NULL || (r->buf = malloc(READER_BUF)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory opening an s3 reader");
        goto done;
    }
    r->ranged = ranged;
    r->base = base;
    r->last = last;
    r->cap = READER_BUF;
    r->s3 = s3;
    r->rq.method = "GET";
    r->rq.key = r->key;
    r->rq.on_data = reader_on_data;
    r->rq.payload = r;
    r->started = mlreg_s3__now_ms();
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
            int outcome = mlreg_s3__xfer_outcome(&error, &r->x, r->result, r->attempts);
            if (outcome == MLREG_S3__OUT_OK) break; /* whole body already here (small object) */
            reader_stop(r);
            r->len = 0;
            if (outcome == MLREG_S3__OUT_FAIL || !mlreg_s3__backoff(s3, r->attempts, r->started))
                goto done;
        }
    }
    if (!r->x.has_length) {
        error = mlreg_error_set(MLREG_EIO, "s3 GET %s: no Content-Length (request id %s)", key,
                                r->x.request_id[0] ? r->x.request_id : "none");
        goto done;
    }
    r->size = r->total = r->x.content_length;
    if (ranged) {
        if (r->x.status != 206 || !r->x.has_range || r->x.range_first != base) {
            error =
                mlreg_error_set(MLREG_EIO,
                                "s3 GET %s: a ranged request answered %ld without the range "
                                "asked for (request id %s)",
                                key, r->x.status, r->x.request_id[0] ? r->x.request_id : "none");
            goto done;
        }
        r->total = r->x.range_total;
    }

done:
    if (error < 0) {
        mlreg_s3_reader_free(r);
        return error;
    }
    if (total_out) *total_out = r->total;
    *out = r;
    return 0;
}

int mlreg_s3_reader_open(mlreg_s3_reader **out, uint64_t *size_out, mlreg_s3 *s3, const char *key)
{
    return reader_open(out, size_out, s3, key, 0, 0, 0);
}

int mlreg_s3_reader_open_range(mlreg_s3_reader **out, uint64_t *size_out, mlreg_s3 *s3,
                               const char *key, uint64_t offset, uint64_t length)
{
    uint64_t last =
        length == 0 || length - 1 > UINT64_MAX - offset ? UINT64_MAX : offset + length - 1;

    if (length == 0) return mlreg_error_set(MLREG_EINVALID, "s3 GET %s: an empty range", key);
    return reader_open(out, size_out, s3, key, 1, offset, last);
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
