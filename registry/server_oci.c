/* server_oci.c: the OCI distribution API routes under /v2/.
 *
 * Each route has a begin part (first libmicrohttpd call: validate, claim an
 * upload session, open a writer) and a finish part (final call: commit, look
 * up, reply). Upload rules:
 *   - PATCH with Content-Range a-b must start exactly at the session offset
 *     and carry Content-Length == b-a+1; both are checked before a single
 *     byte is read, so a refused chunk (416) leaves the session and its
 *     offset exactly as they were and a correct chunk never needs rollback.
 *   - PATCH without Content-Range (skopeo, docker) streams and appends at the
 *     current offset.
 *   - PUT ?digest= commits through mlreg_blob_writer_commit with the expected
 *     digest; a mismatch stores nothing and ends the session.
 *   - A monolithic POST ?digest= or a PUT whose body is cut short commits
 *     nothing (see on_completed in server.c); a PATCH cut short keeps what it
 *     appended, and the client learns the offset from the status GET.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "mlreg/common.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "server_internal.h"

#define STREAM_BLOCK (64u * 1024)

/* Parses 1..19 decimal digits at *p, advancing it. 0 or -1. */
static int parse_u64(const char **p, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0;
    while (**p >= '0' && **p <= '9') {
        if (++n > 19) return -1;
        v = v * 10 + (uint64_t)(**p - '0');
        (*p)++;
    }
    if (n == 0) return -1;
    *out = v;
    return 0;
}

/* A single byte range "bytes=a-b", "bytes=a-" or "bytes=-n" against a blob of
 * @p size bytes. 1: satisfiable (*off, *len set); 0: not a single range we
 * understand, serve the whole blob (RFC 9110 allows ignoring Range);
 * -1: unsatisfiable (416). */
static int parse_range(uint64_t *off, uint64_t *len, const char *h, uint64_t size)
{
    uint64_t a, b;

    if (strncmp(h, "bytes=", 6) || strchr(h, ',')) return 0;
    h += 6;
    if (*h == '-') {
        h++;
        if (parse_u64(&h, &b) < 0 || *h) return 0;
        if (b == 0 || size == 0) return -1;
        if (b > size) b = size;
        *off = size - b;
        *len = b;
        return 1;
    }
    if (parse_u64(&h, &a) < 0 || *h != '-') return 0;
    h++;
    if (*h == '\0') {
        b = size ? size - 1 : 0;
    } else {
        if (parse_u64(&h, &b) < 0 || *h || b < a) return 0;
    }
    if (a >= size) return -1;
    if (b >= size) b = size - 1;
    *off = a;
    *len = b - a + 1;
    return 1;
}

/* Content-Range of an upload chunk: "a-b", also "bytes a-b", "bytes=a-b",
 * optionally followed by "/total" or "/" "*". 0 or -1. */
static int parse_chunk_range(uint64_t *a, uint64_t *b, const char *h)
{
    if (!strncmp(h, "bytes ", 6) || !strncmp(h, "bytes=", 6)) h += 6;
    if (parse_u64(&h, a) < 0 || *h != '-') return -1;
    h++;
    if (parse_u64(&h, b) < 0 || *b < *a) return -1;
    if (*h == '/') {
        uint64_t total;
        h++;
        if (!strcmp(h, "*")) return 0;
        if (parse_u64(&h, &total) < 0 || *h || total <= *b) return -1;
        return 0;
    }
    return *h ? -1 : 0;
}

static int uuid_shape_ok(const char *s)
{
    if (strlen(s) != 36) return 0;
    for (size_t i = 0; i < 36; i++) {
        int dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

static void format_range(char *out, size_t len, uint64_t offset)
{
    snprintf(out, len, "0-%" PRIu64, offset ? offset - 1 : 0);
}

/* Adds Location / Range / Docker-Upload-UUID of an upload session to an
 * error reply, so a client refused with 416 can resynchronise. */
static void fail_headers_upload(request *rq, uint64_t offset)
{
    req_fail_header(rq, "Range", "0-%" PRIu64, offset ? offset - 1 : 0);
    req_fail_header(rq, "Location", "/v2/%s/blobs/uploads/%s", rq->name, rq->arg);
}

/* ---- begin ---------------------------------------------------------------- */

/* PATCH / PUT chunk: with Content-Range, the start must equal the session
 * offset and Content-Length must equal the range length, checked before the
 * body is read. Without Content-Range the body appends at the offset. */
static void check_chunk(request *rq)
{
    const char *cr = req_header(rq, "Content-Range");
    uint64_t a, b;
    uint64_t offset = rq->sess->offset;

    if (rq->has_length) {
        int error = uploads_check_room(rq->srv->uploads, rq->sess, rq->content_length);
        if (error < 0) {
            /* the declared size is over the limit: refused before a byte is
             * read, and the session is left as it was */
            req_fail(rq, error, ERR_CTX_UPLOAD);
            return;
        }
    }
    if (!cr) return;
    if (parse_chunk_range(&a, &b, cr) < 0) {
        req_fail_raw(rq, 416, "BLOB_UPLOAD_INVALID", "malformed Content-Range '%.64s'", cr);
        fail_headers_upload(rq, offset);
        return;
    }
    if (a != offset) {
        req_fail_raw(rq, 416, "BLOB_UPLOAD_INVALID",
                     "chunk starts at %" PRIu64 " but the upload is at offset %" PRIu64, a, offset);
        fail_headers_upload(rq, offset);
        return;
    }
    if (!rq->has_length || rq->content_length != b - a + 1) {
        req_fail_raw(rq, 416, "BLOB_UPLOAD_INVALID",
                     "Content-Length must equal the Content-Range length %" PRIu64, b - a + 1);
        fail_headers_upload(rq, offset);
        return;
    }
    rq->expect_len = b - a + 1;
    rq->has_expect_len = 1;
}

static void begin_upload(request *rq)
{
    mlreg_server *srv = rq->srv;
    int error;
    const char *d;

    if (!uuid_shape_ok(rq->arg)) {
        mlreg_error_set(MLREG_ENOTFOUND, "upload %.64s unknown", rq->arg);
        req_fail(rq, MLREG_ENOTFOUND, ERR_CTX_UPLOAD);
        return;
    }
    if (!strcmp(rq->method, "PUT")) {
        d = req_query(rq, "digest");
        if (!d) {
            req_fail_raw(rq, 400, "DIGEST_INVALID", "PUT needs ?digest=");
            return;
        }
        if ((error = mlreg_digest_parse(&rq->digest, d)) < 0) {
            req_fail(rq, error, ERR_CTX_DIGEST);
            return;
        }
        rq->has_digest = 1;
    }
    if (strcmp(rq->method, "PATCH") && strcmp(rq->method, "PUT"))
        return; /* GET / DELETE work at the final call */
    if ((error = uploads_acquire(&rq->sess, srv->uploads, rq->name, rq->arg, req_actor(rq))) < 0) {
        req_fail(rq, error, ERR_CTX_UPLOAD);
        return;
    }
    if (rq->has_body) check_chunk(rq);
    if (rq->failed) return; /* the session is released untouched at completion */
    rq->body = BODY_SESSION;
    if (!strcmp(rq->method, "PUT"))
        rq->sess_drop = 1; /* committed at finish, or dropped if cut short */
}

static void begin_upload_start(request *rq)
{
    const char *d = req_query(rq, "digest");
    int error;

    if (!d) {
        if (rq->has_body)
            req_fail_raw(rq, 400, "BLOB_UPLOAD_INVALID", "a POST with a body needs ?digest=");
        return; /* mount or a new session, at the final call */
    }
    if ((error = mlreg_digest_parse(&rq->digest, d)) < 0) {
        req_fail(rq, error, ERR_CTX_DIGEST);
        return;
    }
    rq->has_digest = 1;
    if (rq->has_length &&
        (error = upload_room(rq->srv->max_upload_bytes, 0, rq->content_length)) < 0) {
        req_fail(rq, error, ERR_CTX_UPLOAD);
        return;
    }
    if ((error = mlreg_blobstore_open_write(&rq->writer, mlreg_registry_blobstore(rq->srv->reg),
                                            rq->has_length ? (int64_t)rq->content_length : -1)) <
        0) {
        req_fail(rq, error, ERR_CTX_UPLOAD);
        return;
    }
    rq->body = BODY_WRITER;
}

/* A GET or HEAD of a reference that is neither a tag nor a digest asks for
 * a manifest that cannot exist, and what cannot exist is not found: 404
 * MANIFEST_UNKNOWN, as docker-registry, Harbor and the distribution-spec
 * conformance suite answer. A PUT or DELETE of one is a bad request and
 * keeps its 400 (MANIFEST_INVALID, DIGEST_INVALID). Returns 1 when it
 * recorded the 404. */
static int unknown_reference(request *rq)
{
    if (strcmp(rq->method, "GET") && strcmp(rq->method, "HEAD")) return 0;
    mlreg_error_set(MLREG_ENOTFOUND, "manifest unknown: '%.128s' is not a valid tag or digest",
                    rq->arg);
    req_fail(rq, MLREG_ENOTFOUND, ERR_CTX_MANIFEST);
    return 1;
}

static void begin_manifest(request *rq)
{
    mlreg_server *srv = rq->srv;
    int error;

    if (mlreg_reference_is_digest(rq->arg)) {
        if ((error = mlreg_digest_parse(&rq->digest, rq->arg)) < 0) {
            if (!unknown_reference(rq)) req_fail(rq, error, ERR_CTX_DIGEST);
            return;
        }
        rq->has_digest = 1;
    } else if ((error = mlreg_tag_validate(rq->arg)) < 0) {
        if (!unknown_reference(rq)) req_fail(rq, error, ERR_CTX_MANIFEST);
        return;
    } else if (mlreg_policy_stage_index(srv->policy, rq->arg) >= 0) {
        /* a stage name is a reserved tag: readable, never written */
        if (!strcmp(rq->method, "PUT") || !strcmp(rq->method, "DELETE")) {
            req_fail_raw(rq, 409, "DENIED",
                         "'%.128s' is a stage: its tag moves only by promotion or rollback",
                         rq->arg);
            return;
        }
        if (!(rq->stage = strdup(rq->arg))) {
            req_fail(rq, mlreg_error_set(MLREG_ENOMEM, "out of memory"), ERR_CTX_ANY);
            return;
        }
    }
    if (strcmp(rq->method, "PUT")) return;
    if (rq->has_length && rq->content_length > srv->max_manifest) {
        mlreg_error_set(MLREG_ETOOBIG, "manifest of %" PRIu64 " bytes is over the limit of %zu",
                        rq->content_length, srv->max_manifest);
        req_fail(rq, MLREG_ETOOBIG, ERR_CTX_MANIFEST);
        return;
    }
    rq->body = BODY_MANIFEST;
}

void oci_begin(request *rq)
{
    int error;

    switch (rq->route) {
    case ROUTE_BLOB:
    case ROUTE_REFERRERS:
        if ((error = mlreg_digest_parse(&rq->digest, rq->arg)) < 0)
            req_fail(rq, error, ERR_CTX_DIGEST);
        else
            rq->has_digest = 1;
        return;
    case ROUTE_UPLOAD_START: begin_upload_start(rq); return;
    case ROUTE_UPLOAD: begin_upload(rq); return;
    case ROUTE_MANIFEST: begin_manifest(rq); return;
    default: return;
    }
}

/* ---- finish --------------------------------------------------------------- */

static enum MHD_Result reply_error(request *rq, int code, err_ctx ctx)
{
    req_fail(rq, code, ctx);
    return req_queue_error(rq);
}

/* Streams a blob without a file descriptor (backends like s3). */
typedef struct {
    mlreg_blob_reader *reader;
    uint64_t skip;
    uint64_t left;
} blob_stream;

static ssize_t blob_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    blob_stream *st = cls;
    ssize_t n;
    (void)pos;

    while (st->skip) {
        size_t want = max < st->skip ? max : (size_t)st->skip;
        n = mlreg_blob_reader_read(st->reader, buf, want);
        if (n <= 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        st->skip -= (uint64_t)n;
    }
    if (st->left == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    if (max > st->left) max = (size_t)st->left;
    n = mlreg_blob_reader_read(st->reader, buf, max);
    if (n <= 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    st->left -= (uint64_t)n;
    return n;
}

static void blob_stream_free(void *cls)
{
    blob_stream *st = cls;
    mlreg_blob_reader_free(st->reader);
    free(st);
}

/* HEAD replies need the blob's Content-Length but no body; libmicrohttpd
 * takes the length from the response size and never calls this. */
static ssize_t no_body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* 307 to a presigned URL of the backend, after the same repository
 * visibility check a served GET makes. The client verifies the digest of
 * what it downloads, as it does for served bytes. */
static enum MHD_Result redirect_blob(request *rq)
{
    mlreg_server *srv = rq->srv;
    struct MHD_Response *resp;
    uint64_t size = 0;
    char *url = NULL, digest[MLREG_DIGEST_STRLEN + 1];
    int error;

    if ((error = mlreg_registry_blob_stat(&size, srv->reg, rq->name, &rq->digest)) < 0 ||
        (error = mlreg_blobstore_presign(&url, mlreg_registry_blobstore(srv->reg), &rq->digest,
                                         srv->redirect_seconds)) < 0)
        return reply_error(rq, error, ERR_CTX_BLOB);
    mlreg_digest_format(digest, &rq->digest);
    if (!(resp = resp_empty()) || resp_header(resp, "Location", url) < 0 ||
        resp_header(resp, "Docker-Content-Digest", digest) < 0) {
        if (resp) MHD_destroy_response(resp);
        free(url);
        return MHD_NO;
    }
    free(url);
    return req_queue(rq, 307, resp, 0);
}

static enum MHD_Result finish_blob_read(request *rq, int head)
{
    mlreg_server *srv = rq->srv;
    mlreg_blob_reader *reader = NULL;
    struct MHD_Response *resp = NULL;
    uint64_t size = 0, off = 0, len;
    int error, partial = 0;
    char digest[MLREG_DIGEST_STRLEN + 1], buf[96];
    const char *range = req_header(rq, "Range");
    enum MHD_Result ret;

    if (!head && srv->redirect_seconds) return redirect_blob(rq);
    if (head)
        error = mlreg_registry_blob_stat(&size, srv->reg, rq->name, &rq->digest);
    else
        error = mlreg_registry_blob_open(&reader, &size, srv->reg, rq->name, &rq->digest);
    if (error < 0) return reply_error(rq, error, ERR_CTX_BLOB);
    len = size;
    if (range && !head) {
        int r = parse_range(&off, &len, range, size);
        if (r < 0) {
            mlreg_blob_reader_free(reader);
            req_fail_raw(rq, 416, "SIZE_INVALID",
                         "range %.64s not satisfiable for a blob of %" PRIu64 " bytes", range,
                         size);
            req_fail_header(rq, "Content-Range", "bytes */%" PRIu64, size);
            return req_queue_error(rq);
        }
        partial = (r == 1);
        if (!partial) off = 0, len = size;
    }
    if (head) {
        resp = MHD_create_response_from_callback(len, STREAM_BLOCK, no_body_read, NULL, NULL);
    } else if (len == 0) {
        resp = resp_empty();
    } else if (mlreg_blob_reader_fd(reader) >= 0) {
        /* libmicrohttpd closes the descriptor it is given; the reader keeps
         * its own, so hand over a duplicate */
        int fd = fcntl(mlreg_blob_reader_fd(reader), F_DUPFD_CLOEXEC, 0);
        if (fd >= 0) {
            resp = MHD_create_response_from_fd_at_offset64(len, fd, off);
            if (!resp) close(fd);
        }
    } else {
        blob_stream *st = calloc(1, sizeof(*st));
        if (st) {
            st->reader = reader;
            st->skip = off;
            st->left = len;
            resp = MHD_create_response_from_callback(len, STREAM_BLOCK, blob_stream_read, st,
                                                     blob_stream_free);
            if (resp)
                reader = NULL; /* owned by the stream now */
            else
                free(st);
        }
    }
    mlreg_blob_reader_free(reader);
    if (!resp) {
        mlreg_error_set(MLREG_EIO, "cannot build the blob response");
        return reply_error(rq, MLREG_EIO, ERR_CTX_BLOB);
    }
    mlreg_digest_format(digest, &rq->digest);
    if (resp_header(resp, "Content-Type", "application/octet-stream") < 0 ||
        resp_header(resp, "Docker-Content-Digest", digest) < 0 ||
        resp_header(resp, "Accept-Ranges", "bytes") < 0)
        goto oom;
    if (partial) {
        snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off, off + len - 1,
                 size);
        if (resp_header(resp, "Content-Range", buf) < 0) goto oom;
    }
    ret = req_queue(rq, partial ? 206 : 200, resp, head ? 0 : len);
    return ret;
oom:
    MHD_destroy_response(resp);
    return MHD_NO;
}

static enum MHD_Result finish_blob(request *rq)
{
    int error;

    if (!strcmp(rq->method, "DELETE")) {
        if ((error = mlreg_registry_blob_unlink(rq->srv->reg, rq->name, &rq->digest,
                                                req_actor(rq))) < 0)
            return reply_error(rq, error, ERR_CTX_BLOB);
        return req_queue(rq, 202, resp_empty(), 0);
    }
    return finish_blob_read(rq, !strcmp(rq->method, "HEAD"));
}

/* 201 Created for a blob now visible in the repository. */
static enum MHD_Result reply_blob_created(request *rq, const mlreg_digest *d)
{
    char digest[MLREG_DIGEST_STRLEN + 1], loc[512];
    struct MHD_Response *resp = resp_empty();

    if (!resp) return MHD_NO;
    mlreg_digest_format(digest, d);
    snprintf(loc, sizeof(loc), "/v2/%s/blobs/%s", rq->name, digest);
    if (resp_header(resp, "Location", loc) < 0 ||
        resp_header(resp, "Docker-Content-Digest", digest) < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return req_queue(rq, 201, resp, 0);
}

/* Location / Range / Docker-Upload-UUID of a session, with @p status. */
static enum MHD_Result reply_upload(request *rq, unsigned int status, const char *uuid,
                                    uint64_t offset)
{
    char loc[512], range[48];
    struct MHD_Response *resp = resp_empty();

    if (!resp) return MHD_NO;
    snprintf(loc, sizeof(loc), "/v2/%s/blobs/uploads/%s", rq->name, uuid);
    format_range(range, sizeof(range), offset);
    if (resp_header(resp, "Location", loc) < 0 || resp_header(resp, "Range", range) < 0 ||
        resp_header(resp, "Docker-Upload-UUID", uuid) < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return req_queue(rq, status, resp, 0);
}

static enum MHD_Result finish_upload_start(request *rq)
{
    mlreg_server *srv = rq->srv;
    mlreg_digest d;
    upload_session *s = NULL;
    int error;
    const char *mount = req_query(rq, "mount");
    const char *from = req_query(rq, "from");
    char uuid[37];
    unsigned int retry_after = 0;

    if (rq->writer) {
        /* monolithic: the whole body has arrived; commit only if it hashes
         * to the declared digest */
        mlreg_blob_writer *w = rq->writer;
        rq->writer = NULL;
        if ((error = mlreg_blob_writer_commit(&d, w, &rq->digest, -1)) < 0)
            return reply_error(rq, error, ERR_CTX_UPLOAD);
        if ((error = mlreg_registry_blob_link(srv->reg, rq->name, &d, req_actor(rq))) < 0)
            return reply_error(rq, error, ERR_CTX_UPLOAD);
        return reply_blob_created(rq, &d);
    }
    if (mount) {
        if ((error = mlreg_digest_parse(&d, mount)) < 0)
            return reply_error(rq, error, ERR_CTX_DIGEST);
        /* a missing or invalid source falls back to a plain upload, as the
         * spec allows */
        if (from && mlreg_name_validate(from) == 0) {
            error = mlreg_registry_blob_mount(srv->reg, rq->name, from, &d, req_actor(rq));
            if (error == 0) return reply_blob_created(rq, &d);
            if (error != MLREG_ENOTFOUND) return reply_error(rq, error, ERR_CTX_BLOB);
        }
        mlreg_error_clear();
    }
    if ((error = uploads_create(&s, &retry_after, srv->uploads, mlreg_registry_blobstore(srv->reg),
                                rq->name, req_actor(rq))) < 0) {
        if (error == MLREG_EQUOTA) req_fail_header(rq, "Retry-After", "%u", retry_after);
        return reply_error(rq, error, ERR_CTX_UPLOAD);
    }
    memcpy(uuid, s->uuid, sizeof(uuid));
    uploads_release(srv->uploads, s);
    return reply_upload(rq, 202, uuid, 0);
}

static enum MHD_Result finish_upload(request *rq)
{
    mlreg_server *srv = rq->srv;
    upload_session *s = NULL;
    uint64_t offset;
    int error;
    mlreg_digest d;

    if (!strcmp(rq->method, "GET")) {
        if ((error = uploads_offset(&offset, srv->uploads, rq->name, rq->arg, req_actor(rq))) < 0)
            return reply_error(rq, error, ERR_CTX_UPLOAD);
        return reply_upload(rq, 204, rq->arg, offset);
    }
    if (!strcmp(rq->method, "DELETE")) {
        if ((error = uploads_acquire(&s, srv->uploads, rq->name, rq->arg, req_actor(rq))) < 0)
            return reply_error(rq, error, ERR_CTX_UPLOAD);
        uploads_remove(srv->uploads, s);
        return req_queue(rq, 204, resp_empty(), 0);
    }
    if (!strcmp(rq->method, "PATCH")) {
        offset = rq->sess->offset;
        req_release_session(rq);
        return reply_upload(rq, 202, rq->arg, offset);
    }

    /* PUT ?digest=: the writer is consumed whatever the outcome, and the
     * session ends with it */
    s = rq->sess;
    rq->sess = NULL;
    {
        mlreg_blob_writer *w = s->writer;
        s->writer = NULL;
        uploads_remove(srv->uploads, s);
        if ((error = mlreg_blob_writer_commit(&d, w, &rq->digest, -1)) < 0)
            return reply_error(rq, error, ERR_CTX_UPLOAD);
    }
    if ((error = mlreg_registry_blob_link(srv->reg, rq->name, &d, req_actor(rq))) < 0)
        return reply_error(rq, error, ERR_CTX_UPLOAD);
    return reply_blob_created(rq, &d);
}

static enum MHD_Result finish_manifest(request *rq)
{
    mlreg_server *srv = rq->srv;
    mlreg_manifest_data *m = NULL;
    mlreg_manifest_put_result res;
    struct MHD_Response *resp;
    char digest[MLREG_DIGEST_STRLEN + 1], loc[512];
    int error;
    uint64_t len;

    if (!strcmp(rq->method, "PUT")) {
        const char *ct = req_header(rq, "Content-Type");
        memset(&res, 0, sizeof(res));
        if ((error = mlreg_registry_manifest_put_as(&res, srv->reg, rq->name, rq->arg, ct,
                                                    rq->mbuf ? rq->mbuf : "", rq->mlen,
                                                    req_actor(rq))) < 0)
            return reply_error(rq, error, ERR_CTX_MANIFEST);
        if (!(resp = resp_empty())) return MHD_NO;
        mlreg_digest_format(digest, &res.digest);
        snprintf(loc, sizeof(loc), "/v2/%s/manifests/%s", rq->name, digest);
        if (resp_header(resp, "Location", loc) < 0 ||
            resp_header(resp, "Docker-Content-Digest", digest) < 0)
            goto oom;
        if (res.has_subject) {
            char subject[MLREG_DIGEST_STRLEN + 1];
            mlreg_digest_format(subject, &res.subject);
            if (resp_header(resp, "OCI-Subject", subject) < 0) goto oom;
        }
        return req_queue(rq, 201, resp, 0);
    }
    if (!strcmp(rq->method, "DELETE")) {
        if ((error = mlreg_registry_manifest_delete(srv->reg, rq->name, rq->arg, req_actor(rq))) <
            0)
            return reply_error(rq, error, ERR_CTX_MANIFEST);
        return req_queue(rq, 202, resp_empty(), 0);
    }
    if (rq->stage) {
        /* GET/HEAD of a stage tag: the release the stage holds now */
        mlreg_digest sd;
        if ((error = mlreg_stage_digest(&sd, srv->reg, srv->policy, rq->name, rq->stage)) < 0)
            return reply_error(rq, error, ERR_CTX_MANIFEST);
        mlreg_digest_format(digest, &sd);
        error = mlreg_registry_manifest_get(&m, srv->reg, rq->name, digest);
    } else {
        error = mlreg_registry_manifest_get(&m, srv->reg, rq->name, rq->arg);
    }
    if (error < 0) return reply_error(rq, error, ERR_CTX_MANIFEST);
    len = m->len;
    resp = resp_copy(m->body, m->len);
    if (!resp) {
        mlreg_manifest_data_free(m);
        return MHD_NO;
    }
    mlreg_digest_format(digest, &m->digest);
    if (resp_header(resp, "Content-Type",
                    m->content_type && m->content_type[0] ? m->content_type
                                                          : MLREG_MT_OCI_MANIFEST) < 0 ||
        resp_header(resp, "Docker-Content-Digest", digest) < 0) {
        mlreg_manifest_data_free(m);
        goto oom;
    }
    mlreg_manifest_data_free(m);
    return req_queue(rq, 200, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
oom:
    MHD_destroy_response(resp);
    return MHD_NO;
}

static enum MHD_Result finish_tags(request *rq)
{
    mlreg_server *srv = rq->srv;
    const char *ns = req_query(rq, "n");
    const char *last = req_query(rq, "last");
    json_t *j = NULL, *tags;
    int more = 0, error;
    int64_t n = -1;
    uint64_t len;
    struct MHD_Response *resp;

    if (ns) {
        uint64_t v;
        const char *p = ns;
        if (parse_u64(&p, &v) < 0 || *p || v > 100000) {
            req_fail_raw(rq, 400, "UNSUPPORTED", "n must be an integer between 0 and 100000");
            return req_queue_error(rq);
        }
        n = (int64_t)v;
    }
    if (last && *last == '\0') last = NULL;
    if ((error = mlreg_registry_tags_list(&j, &more, srv->reg, rq->name, (int)n, last)) < 0)
        return reply_error(rq, error, ERR_CTX_TAGS);
    if (!(resp = resp_json(j, NULL, &len))) {
        json_decref(j);
        return MHD_NO;
    }
    tags = json_object_get(j, "tags");
    if (more && n > 0 && json_array_size(tags) > 0) {
        const char *t = json_string_value(json_array_get(tags, json_array_size(tags) - 1));
        char link[768];
        if (t) {
            snprintf(link, sizeof(link), "</v2/%s/tags/list?n=%" PRId64 "&last=%s>; rel=\"next\"",
                     rq->name, n, t);
            if (resp_header(resp, "Link", link) < 0) {
                json_decref(j);
                MHD_destroy_response(resp);
                return MHD_NO;
            }
        }
    }
    json_decref(j);
    return req_queue(rq, 200, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
}

/* Appends @p s percent-encoded as a query value (RFC 3986 unreserved
 * characters stay) at @p out, which has room for 3 * strlen(s) + 1. */
static void query_escape(char *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *out++ = (char)c;
        } else {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    *out = '\0';
}

/* Link: <...>; rel="next" of a referrers page that has a next one: the same
 * request (n, artifactType) continuing after the page's last digest, as the
 * distribution spec asks and as tags/list pages. 0 or MLREG_ENOMEM. */
static int referrers_link(struct MHD_Response *resp, request *rq, json_t *index, size_t n,
                          const char *at)
{
    json_t *m = json_object_get(index, "manifests");
    const char *last =
        json_string_value(json_object_get(json_array_get(m, json_array_size(m) - 1), "digest"));
    char subject[MLREG_DIGEST_STRLEN + 1], *link, *esc = NULL;
    size_t cap;
    int error;

    if (last == NULL) return 0; /* a page always holds one; nothing to point after otherwise */
    mlreg_digest_format(subject, &rq->digest);
    cap = strlen(rq->name) + strlen(last) + (at ? 3 * strlen(at) : 0) + 2 * sizeof(subject) + 96;
    if ((link = malloc(cap)) == NULL || (at && (esc = malloc(3 * strlen(at) + 1)) == NULL)) {
        free(link);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    if (esc) query_escape(esc, at);
    snprintf(link, cap, "</v2/%s/referrers/%s?n=%zu&last=%s%s%s>; rel=\"next\"", rq->name, subject,
             n, last, esc ? "&artifactType=" : "", esc ? esc : "");
    error = resp_header(resp, "Link", link);
    free(esc);
    free(link);
    return error;
}

/* GET referrers/<digest>[?artifactType=T][&n=N][&last=DIGEST]: a page of at
 * most n referrers (absent or 0: MLREG_PAGE_LIMIT_MAX, the most a page holds;
 * more is clamped) after referrer `last`; a Link header points at the next
 * page when there is one. */
static enum MHD_Result finish_referrers(request *rq)
{
    mlreg_server *srv = rq->srv;
    const char *at = req_query(rq, "artifactType");
    const char *last_s = req_query(rq, "last");
    mlreg_digest last;
    json_t *j = NULL;
    uint64_t len, n = 0;
    int error, more = 0;
    struct MHD_Response *resp;

    if (at && *at == '\0') at = NULL;
    if (last_s && *last_s == '\0') last_s = NULL;
    if ((error = req_query_u64(&n, NULL, rq, "n")) < 0) return reply_error(rq, error, ERR_CTX_ANY);
    if (n == 0 || n > MLREG_PAGE_LIMIT_MAX) n = MLREG_PAGE_LIMIT_MAX;
    if (last_s && mlreg_digest_parse(&last, last_s) < 0) {
        req_fail_raw(rq, 400, "UNSUPPORTED",
                     "?last= must be the digest of a referrer (sha256:<64 lowercase hex>)");
        return req_queue_error(rq);
    }
    if ((error = mlreg_registry_referrers(&j, &more, srv->reg, rq->name, &rq->digest, at,
                                          last_s ? &last : NULL, (size_t)n)) < 0)
        return reply_error(rq, error, ERR_CTX_MANIFEST);
    resp = resp_json(j, MLREG_MT_OCI_INDEX, &len);
    if (resp && ((at && resp_header(resp, "OCI-Filters-Applied", "artifactType") < 0) ||
                 (more && referrers_link(resp, rq, j, (size_t)n, at) < 0))) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    json_decref(j);
    if (!resp) return MHD_NO;
    return req_queue(rq, 200, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
}

enum MHD_Result oci_finish(request *rq)
{
    switch (rq->route) {
    case ROUTE_V2_BASE: {
        struct MHD_Response *resp = resp_copy("{}", 2);
        if (!resp || resp_header(resp, "Content-Type", "application/json") < 0) {
            if (resp) MHD_destroy_response(resp);
            return MHD_NO;
        }
        return req_queue(rq, 200, resp, 2);
    }
    case ROUTE_BLOB: return finish_blob(rq);
    case ROUTE_UPLOAD_START: return finish_upload_start(rq);
    case ROUTE_UPLOAD: return finish_upload(rq);
    case ROUTE_MANIFEST: return finish_manifest(rq);
    case ROUTE_TAGS: return finish_tags(rq);
    case ROUTE_REFERRERS: return finish_referrers(rq);
    default: break;
    }
    req_fail_raw(rq, 404, "NAME_UNKNOWN", "no route");
    return req_queue_error(rq);
}
