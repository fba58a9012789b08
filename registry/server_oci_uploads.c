/* server_oci_uploads.c: the blob upload routes of the OCI distribution API
 * (/v2/<name>/blobs/uploads/...): monolithic POST, sessions with chunked
 * PATCH and a closing PUT, cross-repository mounts. Sessions are reached
 * through server_uploads.c's functions only. Upload rules:
 *   - PATCH with Content-Range a-b must start exactly at the session offset
 *     and carry Content-Length == b-a+1; both are checked before a single
 *     byte is read, so a refused chunk (416) leaves the session and its
 *     offset exactly as they were and a correct chunk never needs rollback.
 *   - PATCH without Content-Range (skopeo, docker) streams and appends at the
 *     current offset.
 *   - PUT ?digest= commits through mlreg_blob_writer_commit with the expected
 *     digest; a mismatch stores nothing and ends the session.
 *   - A monolithic POST ?digest= or a PUT whose body is cut short commits
 *     nothing (see mlreg_server__req_free() in server_http.c); a PATCH cut
 *     short keeps what it appended, and the client learns the offset from
 *     the status GET.
 * The routes are the rows of upload_rows at the end of the file.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mlreg/common.h"
#include "server_routes.h"

/* Content-Range of an upload chunk: "a-b", also "bytes a-b", "bytes=a-b",
 * optionally followed by "/total" or "/" "*". 0 or -1. */
static int parse_chunk_range(uint64_t *a, uint64_t *b, const char *h)
{
    if (!strncmp(h, "bytes ", 6) || !strncmp(h, "bytes=", 6)) h += 6;
    if (mlreg_server__parse_u64(&h, a) < 0 || *h != '-') return -1;
    h++;
    if (mlreg_server__parse_u64(&h, b) < 0 || *b < *a) return -1;
    if (*h == '/') {
        uint64_t total;
        h++;
        if (!strcmp(h, "*")) return 0;
        if (mlreg_server__parse_u64(&h, &total) < 0 || *h || total <= *b) return -1;
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
    mlreg_server__req_fail_header(rq, "Range", "0-%" PRIu64, offset ? offset - 1 : 0);
    mlreg_server__req_fail_header(rq, "Location", "/v2/%s/blobs/uploads/%s", rq->name, rq->arg);
}

/* ---- begin ---------------------------------------------------------------- */

/* PATCH / PUT chunk: with Content-Range, the start must equal the session
 * offset and Content-Length must equal the range length, checked before the
 * body is read. Without Content-Range the body appends at the offset. */
static void check_chunk(request *rq)
{
    const char *cr = mlreg_server__req_header(rq, "Content-Range");
    uint64_t a, b;
    uint64_t offset = mlreg_server__upload_claimed_offset(rq->sess);

    if (rq->has_length) {
        int error =
            mlreg_server__uploads_check_room(rq->srv->uploads, rq->sess, rq->content_length);
        if (error < 0) {
            /* the declared size is over the limit: refused before a byte is
             * read, and the session is left as it was */
            mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
            return;
        }
    }
    if (!cr) return;
    if (parse_chunk_range(&a, &b, cr) < 0) {
        mlreg_server__req_fail_raw(rq, 416, "BLOB_UPLOAD_INVALID",
                                   "malformed Content-Range '%.64s'", cr);
        fail_headers_upload(rq, offset);
        return;
    }
    if (a != offset) {
        mlreg_server__req_fail_raw(
            rq, 416, "BLOB_UPLOAD_INVALID",
            "chunk starts at %" PRIu64 " but the upload is at offset %" PRIu64, a, offset);
        fail_headers_upload(rq, offset);
        return;
    }
    if (!rq->has_length || rq->content_length != b - a + 1) {
        mlreg_server__req_fail_raw(rq, 416, "BLOB_UPLOAD_INVALID",
                                   "Content-Length must equal the Content-Range length %" PRIu64,
                                   b - a + 1);
        fail_headers_upload(rq, offset);
        return;
    }
    rq->expect_len = b - a + 1;
    rq->has_expect_len = 1;
}

/* uploads/<uuid> of every method: a uuid of the wrong shape names no
 * session. */
static void begin_upload_uuid(request *rq)
{
    int error;

    if (!uuid_shape_ok(rq->arg)) {
        mlreg_error_set(MLREG_ENOTFOUND, "upload %.64s unknown", rq->arg);
        mlreg_server__req_fail(rq, MLREG_ENOTFOUND, ERR_CTX_UPLOAD);
        return;
    }
    /* a session another node of the cluster holds: it answers */
    if (!mlreg_server__upload_is_local(rq->srv->uploads, rq->arg) &&
        (error = mlreg_server__forward_begin(rq)) < 0)
        mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
}

/* PATCH / PUT uploads/<uuid>: claims the session for the body. */
static void begin_upload_chunk(request *rq)
{
    mlreg_server *srv = rq->srv;
    int error;
    const char *d;

    begin_upload_uuid(rq);
    if (rq->failed || rq->fwd != NULL) return;
    if (!strcmp(rq->method, "PUT")) {
        d = mlreg_server__req_query(rq, "digest");
        if (!d) {
            mlreg_server__req_fail_raw(rq, 400, "DIGEST_INVALID", "PUT needs ?digest=");
            return;
        }
        if ((error = mlreg_digest_parse(&rq->digest, d)) < 0) {
            mlreg_server__req_fail(rq, error, ERR_CTX_DIGEST);
            return;
        }
        rq->has_digest = 1;
    }
    if ((error = mlreg_server__uploads_acquire(&rq->sess, srv->uploads, rq->name, rq->arg,
                                               mlreg_server__req_actor(rq))) < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
        return;
    }
    if (rq->has_body) check_chunk(rq);
    if (!rq->failed && rq->has_length &&
        (error = mlreg_server__uploads_reserve(rq->sess, rq->content_length)) < 0)
        mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
    if (rq->failed) return; /* the session is released untouched at completion */
    /* a PUT carrying the whole blob: the store may write it in place */
    if (rq->has_digest && mlreg_server__upload_claimed_offset(rq->sess) == 0 &&
        (error = mlreg_server__upload_announce(
             rq->sess, &rq->digest, rq->has_length ? (int64_t)rq->content_length : -1)) < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
        rq->sess_drop = 1; /* its writer cannot be used any more */
        return;
    }
    /* A PUT or PATCH cut short keeps what arrived: the client asks for the
     * offset and sends the rest (a PUT that ends is committed, or fails,
     * and ends the session either way: finish_upload_put()). */
    rq->body = BODY_STREAM;
}

/* POST blobs/uploads/: a monolithic upload (?digest= with the body), a
 * cross-repository mount (?mount=&from=, which also needs read on the
 * source) or a new session. */
static void begin_upload_start(request *rq)
{
    const char *d = mlreg_server__req_query(rq, "digest");
    const char *from = mlreg_server__req_query(rq, "from");
    int error;

    if (mlreg_server__req_query(rq, "mount") && from != NULL &&
        (error = mlreg_auth_check(rq->who, MLREG_ROLE_READ, NULL, from)) < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_ANY);
        return;
    }
    if (!d) {
        if (rq->has_body)
            mlreg_server__req_fail_raw(rq, 400, "BLOB_UPLOAD_INVALID",
                                       "a POST with a body needs ?digest=");
        return; /* mount or a new session, at the final call */
    }
    if ((error = mlreg_digest_parse(&rq->digest, d)) < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_DIGEST);
        return;
    }
    rq->has_digest = 1;
    if (rq->has_length && (error = mlreg_server__upload_room(rq->conf->max_upload_bytes, 0,
                                                             rq->content_length)) < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
        return;
    }
    if ((error = mlreg_blobstore_open_write(&rq->writer, mlreg_registry_blobstore(rq->srv->reg),
                                            rq->has_length ? (int64_t)rq->content_length : -1)) <
        0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
        return;
    }
    /* the digest comes before the bytes: the store may write in place */
    if ((error = mlreg_blob_writer_announce(
             rq->writer, &rq->digest, rq->has_length ? (int64_t)rq->content_length : -1)) < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
        mlreg_blob_writer_abort(rq->writer);
        rq->writer = NULL;
        return;
    }
    rq->body = BODY_STREAM;
}

/* ---- body ----------------------------------------------------------------- */

/* Monolithic POST ?digest=: straight into the writer. */
static enum MHD_Result body_monolithic(request *rq, const char *data, size_t len)
{
    int error;

    /* a chunked body had no length to check at its start */
    if ((error = mlreg_server__upload_room(rq->conf->max_upload_bytes, rq->req_bytes - len, len)) ==
        0)
        error = mlreg_blob_writer_write(rq->writer, data, len);
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
        mlreg_blob_writer_abort(rq->writer);
        rq->writer = NULL;
        mlreg_server__req_discard(rq);
    }
    return MHD_YES;
}

/* PATCH / PUT: appended to the claimed session. */
static enum MHD_Result body_session(request *rq, const char *data, size_t len)
{
    int error;

    if (rq->has_expect_len && rq->req_bytes > rq->expect_len) {
        /* cannot happen: Content-Length == range length was checked and
         * libmicrohttpd enforces Content-Length; refuse rather than append */
        mlreg_server__req_fail_raw(rq, 416, "BLOB_UPLOAD_INVALID",
                                   "body longer than Content-Range");
        mlreg_server__req_discard(rq);
        rq->sess_drop = 1;
        return MHD_YES;
    }
    if ((error = mlreg_server__uploads_write(rq->srv->uploads, rq->sess, data, len)) < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_UPLOAD);
        rq->sess_drop = 1; /* the writer is unusable after a failed write */
        mlreg_server__req_discard(rq);
    }
    return MHD_YES;
}

/* ---- finish --------------------------------------------------------------- */

/* Mlreg-Digest-First: true on the answers to an upload POST (and to a
 * session's status GET, for a client resuming one) when the store writes
 * straight to the blob's final location only if it learns the digest
 * before the bytes (s3): a client that can hash first should, and upload
 * with ?digest= (docs/s3.md). 0 or -1. */
static int digest_first_header(request *rq, struct MHD_Response *resp)
{
    if ((strcmp(rq->method, "POST") != 0 && strcmp(rq->method, "GET") != 0) ||
        !mlreg_blobstore_digest_first(mlreg_registry_blobstore(rq->srv->reg)))
        return 0;
    return mlreg_server__resp_header(resp, "Mlreg-Digest-First", "true");
}

/* 201 Created for a blob now visible in the repository. */
static enum MHD_Result reply_blob_created(request *rq, const mlreg_digest *d)
{
    char digest[MLREG_DIGEST_STRLEN + 1], loc[512];
    struct MHD_Response *resp = mlreg_server__resp_empty();

    if (!resp) return MHD_NO;
    mlreg_digest_format(digest, d);
    snprintf(loc, sizeof(loc), "/v2/%s/blobs/%s", rq->name, digest);
    if (mlreg_server__resp_header(resp, "Location", loc) < 0 ||
        mlreg_server__resp_header(resp, "Docker-Content-Digest", digest) < 0 ||
        digest_first_header(rq, resp) < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return mlreg_server__req_queue(rq, 201, resp, 0);
}

/* Location / Range / Docker-Upload-UUID of a session, with @p status. */
static enum MHD_Result reply_upload(request *rq, unsigned int status, const char *uuid,
                                    uint64_t offset)
{
    char loc[512], range[48];
    struct MHD_Response *resp = mlreg_server__resp_empty();

    if (!resp) return MHD_NO;
    snprintf(loc, sizeof(loc), "/v2/%s/blobs/uploads/%s", rq->name, uuid);
    format_range(range, sizeof(range), offset);
    if (mlreg_server__resp_header(resp, "Location", loc) < 0 ||
        mlreg_server__resp_header(resp, "Range", range) < 0 ||
        mlreg_server__resp_header(resp, "Docker-Upload-UUID", uuid) < 0 ||
        digest_first_header(rq, resp) < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return mlreg_server__req_queue(rq, status, resp, 0);
}

static enum MHD_Result finish_upload_start(request *rq)
{
    mlreg_server *srv = rq->srv;
    mlreg_digest d;
    upload_session *s = NULL;
    int error;
    const char *mount = mlreg_server__req_query(rq, "mount");
    const char *from = mlreg_server__req_query(rq, "from");
    char uuid[37];
    unsigned int retry_after = 0;

    if (rq->writer) {
        /* monolithic: the whole body has arrived; commit only if it hashes
         * to the declared digest */
        mlreg_blob_writer *w = rq->writer;
        rq->writer = NULL;
        if ((error = mlreg_blob_writer_commit(&d, w, &rq->digest, -1)) < 0)
            return mlreg_server__reply_error(rq, error, ERR_CTX_UPLOAD);
        if ((error =
                 mlreg_registry_blob_link(srv->reg, rq->name, &d, mlreg_server__req_actor(rq))) < 0)
            return mlreg_server__reply_error(rq, error, ERR_CTX_UPLOAD);
        return reply_blob_created(rq, &d);
    }
    if (mount) {
        if ((error = mlreg_digest_parse(&d, mount)) < 0)
            return mlreg_server__reply_error(rq, error, ERR_CTX_DIGEST);
        /* a missing or invalid source falls back to a plain upload, as the
         * spec allows */
        if (from && mlreg_name_validate(from) == 0) {
            error = mlreg_registry_blob_mount(srv->reg, rq->name, from, &d,
                                              mlreg_server__req_actor(rq));
            if (error == 0) return reply_blob_created(rq, &d);
            if (error != MLREG_ENOTFOUND) return mlreg_server__reply_error(rq, error, ERR_CTX_BLOB);
        }
        mlreg_error_clear();
    }
    if ((error = mlreg_server__uploads_create(&s, &retry_after, srv->uploads,
                                              mlreg_registry_blobstore(srv->reg), rq->name,
                                              mlreg_server__req_actor(rq))) < 0) {
        if (error == MLREG_EQUOTA)
            mlreg_server__req_fail_header(rq, "Retry-After", "%u", retry_after);
        return mlreg_server__reply_error(rq, error, ERR_CTX_UPLOAD);
    }
    memcpy(uuid, mlreg_server__upload_uuid(s), sizeof(uuid));
    mlreg_server__uploads_release(srv->uploads, s);
    return reply_upload(rq, 202, uuid, 0);
}

/* GET uploads/<uuid>: the session's offset. */
static enum MHD_Result finish_upload_status(request *rq)
{
    uint64_t offset;
    int error;

    if ((error = mlreg_server__uploads_offset(&offset, rq->srv->uploads, rq->name, rq->arg,
                                              mlreg_server__req_actor(rq))) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_UPLOAD);
    return reply_upload(rq, 204, rq->arg, offset);
}

/* DELETE uploads/<uuid>: the session and its temp file go. */
static enum MHD_Result finish_upload_cancel(request *rq)
{
    upload_session *s = NULL;
    int error;

    if ((error = mlreg_server__uploads_acquire(&s, rq->srv->uploads, rq->name, rq->arg,
                                               mlreg_server__req_actor(rq))) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_UPLOAD);
    mlreg_server__uploads_remove(rq->srv->uploads, s);
    return mlreg_server__req_queue(rq, 204, mlreg_server__resp_empty(), 0);
}

/* PATCH uploads/<uuid>: the chunk is in; the session is given back. */
static enum MHD_Result finish_upload_patch(request *rq)
{
    uint64_t offset = mlreg_server__upload_claimed_offset(rq->sess);
    int error;

    /* the offset is only promised once every byte is written */
    if ((error = mlreg_server__uploads_flush(rq->sess)) < 0) {
        rq->sess_drop = 1;
        return mlreg_server__reply_error(rq, error, ERR_CTX_UPLOAD);
    }
    mlreg_server__req_release_session(rq);
    return reply_upload(rq, 202, rq->arg, offset);
}

/* PUT uploads/<uuid>?digest=: the session ends whatever the outcome. */
static enum MHD_Result finish_upload_put(request *rq)
{
    upload_session *s = rq->sess;
    int error;
    mlreg_digest d;

    rq->sess = NULL;
    if ((error = mlreg_server__uploads_commit(&d, rq->srv->uploads, s, &rq->digest)) < 0 ||
        (error =
             mlreg_registry_blob_link(rq->srv->reg, rq->name, &d, mlreg_server__req_actor(rq))) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_UPLOAD);
    return reply_blob_created(rq, &d);
}

/* ---- routes --------------------------------------------------------------- */

/* An upload's status belongs to its pusher: every row needs push. */
static const route_row upload_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_POST, "/v2/{name}/blobs/uploads/?", ROUTE_ACCESS_PUSH, ROUTE_BODY_STREAM, ERR_CTX_UPLOAD,
     begin_upload_start, body_monolithic, finish_upload_start},
    {ROUTE_GET, "/v2/{name}/blobs/uploads/{uuid}", ROUTE_ACCESS_PUSH, ROUTE_BODY_NONE,
     ERR_CTX_UPLOAD, begin_upload_uuid, NULL, finish_upload_status},
    {ROUTE_PATCH, "/v2/{name}/blobs/uploads/{uuid}", ROUTE_ACCESS_PUSH, ROUTE_BODY_STREAM,
     ERR_CTX_UPLOAD, begin_upload_chunk, body_session, finish_upload_patch},
    {ROUTE_PUT, "/v2/{name}/blobs/uploads/{uuid}", ROUTE_ACCESS_PUSH, ROUTE_BODY_STREAM,
     ERR_CTX_UPLOAD, begin_upload_chunk, body_session, finish_upload_put},
    {ROUTE_DELETE, "/v2/{name}/blobs/uploads/{uuid}", ROUTE_ACCESS_PUSH, ROUTE_BODY_NONE,
     ERR_CTX_UPLOAD, begin_upload_uuid, NULL, finish_upload_cancel},
};

const route_table mlreg_server__oci_upload_routes = {upload_rows,
                                                     sizeof(upload_rows) / sizeof(upload_rows[0])};
