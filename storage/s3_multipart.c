/* s3_multipart.c: multipart uploads and the clean-up of open ones.
 *
 * An upload's parts go out concurrently on one curl multi handle, at most
 * parts_in_flight at a time, each sending from its own buffer, so memory is
 * bounded by parts_in_flight x part size whatever the object size. A failed
 * part waits its backoff in its slot and is re-sent from its buffer; the
 * first part that runs out of retries fails the upload. Completion sends
 * the recorded ETags in order; any failure aborts the upload, so no half
 * object is ever visible. UploadPartCopy (copies over the CopyObject limit)
 * records its parts in the same upload object.
 *
 * Traps:
 * - CompleteMultipartUpload can answer 200 with an <Error> body: a failure.
 * - A retried Complete whose first attempt succeeded gets NoSuchUpload; the
 *   object is then checked with HEAD instead of reporting a failure.
 * - CreateMultipartUpload is retried too: a lost response only leaves an
 *   empty upload behind, which mlreg_s3_abort_uploads removes at start.
 */
#include "s3_internal.h"

#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- listing and aborting open uploads ---- */

int mlreg_s3_list_uploads(mlreg_s3 *s3, const char *prefix, mlreg_s3_upload_cb cb, void *payload)
{
    int error = 0;
    mlreg_s3__uploads_page page = {0};
    mlreg_s3__xfer x = {0};

    for (;;) {
        mlreg_s3__req rq = {0};

        rq.method = "GET";
        rq.collect_max = MLREG_S3__LIST_BODY_MAX;
        rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploads", ""};
        rq.params[rq.nparams++] = (mlreg_sigv4_param){"prefix", prefix};
        if (page.truncated) {
            rq.params[rq.nparams++] = (mlreg_sigv4_param){"key-marker", page.key_marker};
            rq.params[rq.nparams++] = (mlreg_sigv4_param){"upload-id-marker", page.id_marker};
        }
        if ((error = mlreg_s3__run_request(&x, s3, &rq, NULL)) < 0) goto done;
        if (x.body.p == NULL) {
            error = mlreg_error_set(MLREG_EIO, "s3 list uploads %s: empty response", prefix);
            goto done;
        }
        if ((error =
                 mlreg_s3__xml_list_uploads(&page, x.body.p, x.body.len, prefix, cb, payload)) != 0)
            goto done;
        if (!page.truncated) break;
        mlreg_s3__xfer_cleanup(&x);
    }

done:
    mlreg_s3__xfer_cleanup(&x);
    return error;
}

static int abort_upload_id(mlreg_s3 *s3, const char *key, const char *upload_id)
{
    mlreg_s3__req rq = {0};
    int error;

    rq.method = "DELETE";
    rq.key = key;
    rq.collect_max = MLREG_S3__ERROR_BODY_MAX;
    rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploadId", upload_id};
    error = mlreg_s3__run_request(NULL, s3, &rq, NULL);
    return error == MLREG_ENOTFOUND ? 0 : error; /* already gone */
}

int mlreg_s3_abort_upload(mlreg_s3 *s3, const char *key, const char *upload_id)
{
    return abort_upload_id(s3, key, upload_id);
}

struct abort_ctx {
    mlreg_s3 *s3;
    unsigned int n;
};

static int abort_one(const char *key, const char *upload_id, int64_t initiated, void *p)
{
    struct abort_ctx *c = p;
    int error = abort_upload_id(c->s3, key, upload_id);

    (void)initiated;
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
    mlreg_s3__req rq;
    mlreg_s3__xfer x;
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

int mlreg_s3__upload_copy_part(mlreg_s3_upload *u, const char *copy_source, uint64_t first,
                               uint64_t last)
{
    int error = 0;
    unsigned int n = u->parts + 1;
    char range[96], num[16], etag[160];
    mlreg_s3__req rq = {0};
    mlreg_s3__xfer x = {0};

    snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)first,
             (unsigned long long)last);
    snprintf(num, sizeof(num), "%u", n);
    rq.method = "PUT";
    rq.key = u->key;
    rq.has_body = 1;
    rq.collect_max = MLREG_S3__ERROR_BODY_MAX;
    rq.check_200_error = 1;
    rq.hdr_name[rq.nhdrs] = "x-amz-copy-source";
    rq.hdr_value[rq.nhdrs++] = copy_source;
    rq.hdr_name[rq.nhdrs] = "x-amz-copy-source-range";
    rq.hdr_value[rq.nhdrs++] = range;
    rq.params[rq.nparams++] = (mlreg_sigv4_param){"partNumber", num};
    rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploadId", u->upload_id};
    if ((error = mlreg_s3__run_request(&x, u->s3, &rq, NULL)) < 0) goto done;
    if (x.body.p == NULL ||
        mlreg_s3__xml_copy_part_result(etag, sizeof(etag), x.body.p, x.body.len) <= 0) {
        error = mlreg_error_set(MLREG_EIO, "s3 copy %s part %u: no <ETag>", u->key, n);
        goto done;
    }
    u->parts = n;
    error = set_etag(u, n, etag);

done:
    mlreg_s3__xfer_cleanup(&x);
    return error;
}

int mlreg_s3_upload_begin(mlreg_s3_upload **out, mlreg_s3 *s3, const char *key)
{
    int error = 0;
    mlreg_s3_upload *u = NULL;
    mlreg_s3__req rq = {0};
    mlreg_s3__xfer x = {0};

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
    rq.collect_max = MLREG_S3__ERROR_BODY_MAX;
    rq.check_200_error = 1;
    rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploads", ""};
    if ((error = mlreg_s3__run_request(&x, s3, &rq, NULL)) < 0) goto done;
    if (x.body.p == NULL || mlreg_s3__xml_initiate_result(u->upload_id, sizeof(u->upload_id),
                                                          x.body.p, x.body.len) <= 0) {
        error = mlreg_error_set(MLREG_EIO, "s3 POST %s?uploads: no <UploadId> (request id %s)", key,
                                x.request_id[0] ? x.request_id : "none");
        goto done;
    }

done:
    mlreg_s3__xfer_cleanup(&x);
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

    if ((error = mlreg_s3__xfer_setup(&s->x, u->s3, &s->rq, NULL, 0)) < 0) return error;
    if (curl_multi_add_handle(u->multi, s->x.easy) != CURLM_OK) {
        mlreg_s3__xfer_cleanup(&s->x);
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
        now = mlreg_s3__now_ms();
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
        mlreg_s3__xfer *x;
        slot *s = NULL;
        int outcome;

        if (m->msg != CURLMSG_DONE) continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        x = (mlreg_s3__xfer *)(void *)priv;
        for (i = 0; i < u->nslots; i++)
            if (&u->slots[i].x == x) s = &u->slots[i];
        if (s == NULL) continue;
        curl_multi_remove_handle(u->multi, s->x.easy);
        outcome = mlreg_s3__xfer_outcome(&error, &s->x, m->data.result, s->attempts);
        if (outcome == MLREG_S3__OUT_OK && s->x.etag[0] == '\0') {
            error = mlreg_error_set(MLREG_EIO, "s3 PUT %s part %u: no ETag (request id %s)", u->key,
                                    s->part_number, s->x.request_id);
            outcome = MLREG_S3__OUT_FAIL;
        }
        if (outcome == MLREG_S3__OUT_OK) {
            error = set_etag(u, s->part_number, s->x.etag);
            mlreg_s3__xfer_cleanup(&s->x);
            s->state = SLOT_FREE;
            if (error < 0 && u->error == 0) u->error = error;
            continue;
        }
        mlreg_s3__xfer_cleanup(&s->x);
        if (outcome == MLREG_S3__OUT_RETRY && s->attempts < u->s3->max_attempts) {
            unsigned int ms = mlreg_s3__backoff_ms(s->attempts, u->s3->retry_base_ms,
                                                   u->s3->retry_max_ms, mlreg_s3__rnd32());
            if (mlreg_s3__now_ms() + ms <= s->started + u->s3->retry_total_ms) {
                s->state = SLOT_WAITING;
                s->retry_at = mlreg_s3__now_ms() + ms;
                mlreg_metrics_add(u->s3->retries, 1);
                continue;
            }
        }
        s->state = SLOT_FREE;
        if (u->error == 0) u->error = error;
    }
    if (u->error) return u->error;
    now = mlreg_s3__now_ms();
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

/* Part buffers are mapped and unmapped directly: from malloc, freed 8 MiB
 * buffers raise glibc's mmap threshold and then stay in the arena of
 * whichever server thread ran the upload, so the process kept a part set
 * per thread that ever uploaded (145 MiB peak after three 256 MiB pushes
 * with 8 parts in flight, against 64 MiB of parts). Mapped, an upload holds
 * parts_in_flight x part size while it runs and gives it back when it
 * ends. */
static unsigned char *part_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void part_free(unsigned char *p, size_t size)
{
    if (p != NULL) munmap(p, size);
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
                part_free(s->buf, s->cap); /* nothing to keep: contents were sent */
                s->buf = NULL;
                s->cap = 0;
                if ((p = part_alloc(size)) == NULL)
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
    s->rq.collect_max = MLREG_S3__ERROR_BODY_MAX;
    s->rq.params[s->rq.nparams++] = (mlreg_sigv4_param){"partNumber", s->part_str};
    s->rq.params[s->rq.nparams++] = (mlreg_sigv4_param){"uploadId", u->upload_id};
    s->attempts = 0;
    s->started = mlreg_s3__now_ms();
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
            mlreg_s3__xfer_cleanup(&u->slots[i].x);
        }
        part_free(u->slots[i].buf, u->slots[i].cap);
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
            mlreg_s3__xfer_cleanup(&u->slots[i].x);
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

static int xml_escape_add(mlreg_buf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (mlreg_buf_add(b, e ? e : s, e ? strlen(e) : 1) < 0) return -1;
    }
    return 0;
}

/* CompleteMultipartUpload with the recorded ETags. */
static int complete_upload(mlreg_s3_upload *u)
{
    int error = 0;
    mlreg_buf body = {0};
    unsigned int i;
    mlreg_s3__req rq = {0};
    char num[32];

    if (mlreg_buf_add(&body, "<CompleteMultipartUpload>", 25) < 0) goto oom;
    for (i = 0; i < u->parts; i++) {
        if (i >= u->etags_cap || u->etags[i] == NULL) {
            error = mlreg_error_set(MLREG_EIO, "s3 upload %s: part %u has no ETag", u->key, i + 1);
            goto done;
        }
        snprintf(num, sizeof(num), "%u", i + 1);
        if (mlreg_buf_add(&body, "<Part><PartNumber>", 18) < 0 ||
            mlreg_buf_add(&body, num, strlen(num)) < 0 ||
            mlreg_buf_add(&body, "</PartNumber><ETag>", 19) < 0 ||
            xml_escape_add(&body, u->etags[i]) < 0 ||
            mlreg_buf_add(&body, "</ETag></Part>", 14) < 0)
            goto oom;
    }
    if (mlreg_buf_add(&body, "</CompleteMultipartUpload>", 26) < 0) goto oom;
    rq.method = "POST";
    rq.key = u->key;
    rq.body = (const unsigned char *)body.p;
    rq.body_len = body.len;
    rq.has_body = 1;
    rq.collect_max = MLREG_S3__ERROR_BODY_MAX;
    rq.check_200_error = 1;
    rq.params[rq.nparams++] = (mlreg_sigv4_param){"uploadId", u->upload_id};
    error = mlreg_s3__run_request(NULL, u->s3, &rq, NULL);
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
