/* server_oci.c: the OCI distribution API routes under /v2/: the base,
 * blob reads (served from a descriptor by sendfile, streamed, or redirected
 * to the backend) and deletes, manifests by tag, digest or stage, tag
 * listing (tags and the stage names holding a release), the repository
 * catalog and referrers. Uploads are server_oci_uploads.c's. The routes are
 * the rows of oci_rows at the end of the file.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "mlreg/common.h"
#include "mlreg/oci.h"
#include "mlreg/auth.h"
#include "mlreg/promotions.h"
#include "server_routes.h"

#define STREAM_BLOCK (64u * 1024)

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
        if (mlreg_server__parse_u64(&h, &b) < 0 || *h) return 0;
        if (b == 0 || size == 0) return -1;
        if (b > size) b = size;
        *off = size - b;
        *len = b;
        return 1;
    }
    if (mlreg_server__parse_u64(&h, &a) < 0 || *h != '-') return 0;
    h++;
    if (*h == '\0') {
        b = size ? size - 1 : 0;
    } else {
        if (mlreg_server__parse_u64(&h, &b) < 0 || *h || b < a) return 0;
    }
    if (a >= size) return -1;
    if (b >= size) b = size - 1;
    *off = a;
    *len = b - a + 1;
    return 1;
}

/* ---- begin ---------------------------------------------------------------- */

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
    mlreg_server__req_fail(rq, MLREG_ENOTFOUND, ERR_CTX_MANIFEST);
    return 1;
}

static void begin_manifest(request *rq)
{
    int error;

    if (mlreg_reference_is_digest(rq->arg)) {
        if ((error = mlreg_digest_parse(&rq->digest, rq->arg)) < 0) {
            if (!unknown_reference(rq)) mlreg_server__req_fail(rq, error, ERR_CTX_DIGEST);
            return;
        }
        rq->has_digest = 1;
    } else if ((error = mlreg_tag_validate(rq->arg)) < 0) {
        if (!unknown_reference(rq)) mlreg_server__req_fail(rq, error, ERR_CTX_MANIFEST);
        return;
    } else if (mlreg_policy_stage_index(rq->conf->policy, rq->arg) >= 0) {
        /* a stage name is a reserved tag: readable, never written */
        if (!strcmp(rq->method, "PUT") || !strcmp(rq->method, "DELETE")) {
            mlreg_server__req_fail_raw(
                rq, 409, "DENIED",
                "'%.128s' is a stage: its tag moves only by promotion or rollback", rq->arg);
            return;
        }
        if (!(rq->stage = strdup(rq->arg))) {
            mlreg_server__req_fail(rq, mlreg_error_set(MLREG_ENOMEM, "out of memory"), ERR_CTX_ANY);
            return;
        }
    }
}

/* blobs/<digest>, referrers/<digest>. */
static void begin_digest(request *rq)
{
    int error;

    if ((error = mlreg_digest_parse(&rq->digest, rq->arg)) < 0)
        mlreg_server__req_fail(rq, error, ERR_CTX_DIGEST);
    else
        rq->has_digest = 1;
}

/* ---- finish --------------------------------------------------------------- */

/* Streams a blob without a file descriptor (backends like s3); a range was
 * opened as one (mlreg_blobstore_open_read_range), so the reader starts at
 * its first byte. */
typedef struct {
    mlreg_blob_reader *reader;
    uint64_t left;
} blob_stream;

static ssize_t blob_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    blob_stream *st = cls;
    ssize_t n;
    (void)pos;

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

/* Adds the @p extra headers (NULL, or name, value, ..., NULL) to @p resp:
 * 0 or MLREG_ENOMEM. */
static int extra_headers(struct MHD_Response *resp, const char *const *extra)
{
    for (size_t i = 0; extra && extra[i]; i += 2)
        if (mlreg_server__resp_header(resp, extra[i], extra[i + 1]) < 0) return MLREG_ENOMEM;
    return 0;
}

/* 307 to a presigned URL of the backend, after the same repository
 * visibility check a served GET makes. The client verifies the digest of
 * what it downloads, as it does for served bytes. */
static enum MHD_Result redirect_blob(request *rq, const char *const *extra)
{
    mlreg_server *srv = rq->srv;
    struct MHD_Response *resp;
    uint64_t size = 0;
    char *url = NULL, digest[MLREG_DIGEST_STRLEN + 1];
    int error;

    if ((error = mlreg_registry_blob_stat(&size, srv->reg, rq->name, &rq->digest)) < 0 ||
        (error = mlreg_blobstore_presign(&url, mlreg_registry_blobstore(srv->reg), &rq->digest,
                                         srv->redirect_seconds)) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_BLOB);
    mlreg_digest_format(digest, &rq->digest);
    if (!(resp = mlreg_server__resp_empty()) ||
        mlreg_server__resp_header(resp, "Location", url) < 0 ||
        mlreg_server__resp_header(resp, "Docker-Content-Digest", digest) < 0 ||
        extra_headers(resp, extra) < 0) {
        if (resp) MHD_destroy_response(resp);
        free(url);
        return MHD_NO;
    }
    free(url);
    return mlreg_server__req_queue(rq, 307, resp, 0);
}

/* mlreg_server__blob_reply(), redirected only when @p may_redirect. */
static enum MHD_Result blob_reply(request *rq, int head, int may_redirect, const char *const *extra)
{
    mlreg_server *srv = rq->srv;
    mlreg_blob_reader *reader = NULL;
    struct MHD_Response *resp = NULL;
    uint64_t size = 0, off = 0, len;
    int error, partial = 0;
    char digest[MLREG_DIGEST_STRLEN + 1], buf[96];
    const char *range = mlreg_server__req_header(rq, "Range");
    enum MHD_Result ret;

    if (!head && may_redirect && srv->redirect_seconds) return redirect_blob(rq, extra);
    /* A ranged GET learns the size first, then asks the store for the range
     * only (s3: one ranged GET, never a read from the start). */
    if (head || range)
        error = mlreg_registry_blob_stat(&size, srv->reg, rq->name, &rq->digest);
    else
        error = mlreg_registry_blob_open(&reader, &size, srv->reg, rq->name, &rq->digest);
    if (error < 0) return mlreg_server__reply_error(rq, error, ERR_CTX_BLOB);
    len = size;
    if (range && !head) {
        int r = parse_range(&off, &len, range, size);
        if (r < 0) {
            mlreg_server__req_fail_raw(
                rq, 416, "SIZE_INVALID",
                "range %.64s not satisfiable for a blob of %" PRIu64 " bytes", range, size);
            mlreg_server__req_fail_header(rq, "Content-Range", "bytes */%" PRIu64, size);
            return mlreg_server__req_queue_error(rq);
        }
        partial = (r == 1);
        if (!partial) off = 0, len = size;
        if (partial && len > 0)
            error = mlreg_blobstore_open_read_range(
                &reader, NULL, mlreg_registry_blobstore(srv->reg), &rq->digest, off, len);
        else
            error = mlreg_blobstore_open_read(&reader, NULL, mlreg_registry_blobstore(srv->reg),
                                              &rq->digest);
        if (error < 0) return mlreg_server__reply_error(rq, error, ERR_CTX_BLOB);
    }
    if (head) {
        resp = MHD_create_response_from_callback(len, STREAM_BLOCK, no_body_read, NULL, NULL);
    } else if (len == 0) {
        resp = mlreg_server__resp_empty();
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
        return mlreg_server__reply_error(rq, MLREG_EIO, ERR_CTX_BLOB);
    }
    mlreg_digest_format(digest, &rq->digest);
    if (mlreg_server__resp_header(resp, "Content-Type", "application/octet-stream") < 0 ||
        mlreg_server__resp_header(resp, "Docker-Content-Digest", digest) < 0 ||
        mlreg_server__resp_header(resp, "Accept-Ranges", "bytes") < 0 ||
        extra_headers(resp, extra) < 0)
        goto oom;
    if (partial) {
        snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off, off + len - 1,
                 size);
        if (mlreg_server__resp_header(resp, "Content-Range", buf) < 0) goto oom;
    }
    ret = mlreg_server__req_queue(rq, partial ? 206 : 200, resp, head ? 0 : len);
    return ret;
oom:
    MHD_destroy_response(resp);
    return MHD_NO;
}

enum MHD_Result mlreg_server__blob_reply(request *rq, int head, const char *const *extra)
{
    return blob_reply(rq, head, 1, extra);
}

enum MHD_Result mlreg_server__blob_reply_here(request *rq, const char *const *extra)
{
    return blob_reply(rq, 0, 0, extra);
}

static enum MHD_Result finish_blob_get(request *rq)
{
    return mlreg_server__blob_reply(rq, !strcmp(rq->method, "HEAD"), NULL);
}

static enum MHD_Result finish_blob_delete(request *rq)
{
    int error;

    if ((error = mlreg_registry_blob_unlink(rq->srv->reg, rq->name, &rq->digest,
                                            mlreg_server__req_actor(rq))) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_BLOB);
    return mlreg_server__req_queue(rq, 202, mlreg_server__resp_empty(), 0);
}

static enum MHD_Result finish_manifest_put(request *rq)
{
    mlreg_manifest_put_result res;
    struct MHD_Response *resp;
    char digest[MLREG_DIGEST_STRLEN + 1], loc[512];
    const char *ct = mlreg_server__req_header(rq, "Content-Type");
    int error;

    memset(&res, 0, sizeof(res));
    if ((error = mlreg_registry_manifest_put_as(&res, rq->srv->reg, rq->name, rq->arg, ct,
                                                rq->mbuf ? rq->mbuf : "", rq->mlen,
                                                mlreg_server__req_actor(rq))) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_MANIFEST);
    if (!(resp = mlreg_server__resp_empty())) return MHD_NO;
    mlreg_digest_format(digest, &res.digest);
    snprintf(loc, sizeof(loc), "/v2/%s/manifests/%s", rq->name, digest);
    if (mlreg_server__resp_header(resp, "Location", loc) < 0 ||
        mlreg_server__resp_header(resp, "Docker-Content-Digest", digest) < 0)
        goto oom;
    if (res.has_subject) {
        char subject[MLREG_DIGEST_STRLEN + 1];
        mlreg_digest_format(subject, &res.subject);
        if (mlreg_server__resp_header(resp, "OCI-Subject", subject) < 0) goto oom;
    }
    return mlreg_server__req_queue(rq, 201, resp, 0);
oom:
    MHD_destroy_response(resp);
    return MHD_NO;
}

static enum MHD_Result finish_manifest_delete(request *rq)
{
    int error;

    if ((error = mlreg_registry_manifest_delete(rq->srv->reg, rq->name, rq->arg,
                                                mlreg_server__req_actor(rq))) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_MANIFEST);
    return mlreg_server__req_queue(rq, 202, mlreg_server__resp_empty(), 0);
}

/* GET/HEAD manifests/<reference>: by digest, tag, or stage (the release the
 * stage holds now). */
static enum MHD_Result finish_manifest_get(request *rq)
{
    mlreg_server *srv = rq->srv;
    mlreg_manifest_data *m = NULL;
    struct MHD_Response *resp;
    char digest[MLREG_DIGEST_STRLEN + 1];
    int error;
    uint64_t len;

    if (rq->stage) {
        mlreg_digest sd;
        if ((error = mlreg_stage_digest(&sd, srv->reg, rq->conf->policy, rq->name, rq->stage)) < 0)
            return mlreg_server__reply_error(rq, error, ERR_CTX_MANIFEST);
        mlreg_digest_format(digest, &sd);
        error = mlreg_registry_manifest_get(&m, srv->reg, rq->name, digest);
    } else {
        error = mlreg_registry_manifest_get(&m, srv->reg, rq->name, rq->arg);
    }
    if (error < 0) return mlreg_server__reply_error(rq, error, ERR_CTX_MANIFEST);
    len = m->len;
    resp = mlreg_server__resp_copy(m->body, m->len);
    if (!resp) {
        mlreg_manifest_data_free(m);
        return MHD_NO;
    }
    mlreg_digest_format(digest, &m->digest);
    if (mlreg_server__resp_header(
            resp, "Content-Type",
            m->content_type && m->content_type[0] ? m->content_type : MLREG_MT_OCI_MANIFEST) < 0 ||
        mlreg_server__resp_header(resp, "Docker-Content-Digest", digest) < 0) {
        mlreg_manifest_data_free(m);
        goto oom;
    }
    mlreg_manifest_data_free(m);
    return mlreg_server__req_queue(rq, 200, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
oom:
    MHD_destroy_response(resp);
    return MHD_NO;
}

/* ?n= of tags/list and _catalog: absent (-1: all) or 0..100000, else a 400
 * recorded on @p rq and -1 returned. */
static int page_n(int64_t *out, request *rq)
{
    const char *ns = mlreg_server__req_query(rq, "n");
    const char *p = ns;
    uint64_t v;

    *out = -1;
    if (ns == NULL) return 0;
    if (mlreg_server__parse_u64(&p, &v) < 0 || *p || v > 100000) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                   "n must be an integer between 0 and 100000");
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* The answer of a paged listing: @p j (consumed) with, when @p more and the
 * page is not empty, Link: <@p base?n=N&last=LAST>; rel="next", LAST the
 * page's last name in @p field. The names (tags, repository names) are in
 * grammars whose characters need no escaping in a query. */
static enum MHD_Result reply_page(request *rq, json_t *j, const char *field, int more, int64_t n,
                                  const char *base)
{
    json_t *names = json_object_get(j, field);
    const char *last = json_string_value(json_array_get(names, json_array_size(names) - 1));
    struct MHD_Response *resp;
    uint64_t len;
    char link[768];

    if (!(resp = mlreg_server__resp_json(j, NULL, &len))) {
        json_decref(j);
        return MHD_NO;
    }
    if (more && n > 0 && last != NULL) {
        snprintf(link, sizeof(link), "<%s?n=%" PRId64 "&last=%s>; rel=\"next\"", base, n, last);
        if (mlreg_server__resp_header(resp, "Link", link) < 0) {
            json_decref(j);
            MHD_destroy_response(resp);
            return MHD_NO;
        }
    }
    json_decref(j);
    return mlreg_server__req_queue(rq, 200, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
}

/* GET tags/list[?n=N&last=T]: the tags and the stage names that hold a
 * release now (they answer as tags), merged and paged as one list. */
static enum MHD_Result finish_tags(request *rq)
{
    const char *last = mlreg_server__req_query(rq, "last");
    json_t *j = NULL;
    int more = 0, error;
    int64_t n;
    char base[512];

    if (page_n(&n, rq) < 0) return mlreg_server__req_queue_error(rq);
    if (last && *last == '\0') last = NULL;
    if ((error = mlreg_stage_tags_list(&j, &more, rq->srv->reg, rq->conf->policy, rq->name, (int)n,
                                       last)) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_TAGS);
    snprintf(base, sizeof(base), "/v2/%s/tags/list", rq->name);
    return reply_page(rq, j, "tags", more, n, base);
}

/* Whether the request's identity may read model @p name (_catalog). */
static int catalog_visible(const char *name, void *ctx)
{
    request *rq = ctx;

    if (mlreg_auth_check(rq->who, MLREG_ROLE_READ, NULL, name) == 0) return 1;
    mlreg_error_clear();
    return 0;
}

/* GET _catalog[?n=N&last=NAME]: the repositories the token may read, in
 * lexical order, paged like tags/list. */
static enum MHD_Result finish_catalog(request *rq)
{
    const char *last = mlreg_server__req_query(rq, "last");
    json_t *j = NULL;
    int more = 0, error;
    int64_t n;

    if (page_n(&n, rq) < 0) return mlreg_server__req_queue_error(rq);
    if (last && *last == '\0') last = NULL;
    if (last && mlreg_name_validate(last) < 0) {
        mlreg_error_clear();
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                   "?last= must be a repository name (the last of a page)");
        return mlreg_server__req_queue_error(rq);
    }
    if ((error = mlreg_registry_catalog(&j, &more, rq->srv->reg, (int)n, last, catalog_visible,
                                        rq)) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_ANY);
    return reply_page(rq, j, "repositories", more, n, "/v2/_catalog");
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
    error = mlreg_server__resp_header(resp, "Link", link);
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
    const char *at = mlreg_server__req_query(rq, "artifactType");
    const char *last_s = mlreg_server__req_query(rq, "last");
    mlreg_digest last;
    json_t *j = NULL;
    uint64_t len, n = 0;
    int error, more = 0;
    struct MHD_Response *resp;

    if (at && *at == '\0') at = NULL;
    if (last_s && *last_s == '\0') last_s = NULL;
    if ((error = mlreg_server__req_query_u64(&n, NULL, rq, "n")) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_ANY);
    if (n == 0 || n > MLREG_PAGE_LIMIT_MAX) n = MLREG_PAGE_LIMIT_MAX;
    if (last_s && mlreg_digest_parse(&last, last_s) < 0) {
        mlreg_server__req_fail_raw(
            rq, 400, "UNSUPPORTED",
            "?last= must be the digest of a referrer (sha256:<64 lowercase hex>)");
        return mlreg_server__req_queue_error(rq);
    }
    if ((error = mlreg_registry_referrers(&j, &more, srv->reg, rq->name, &rq->digest, at,
                                          last_s ? &last : NULL, (size_t)n)) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_MANIFEST);
    resp = mlreg_server__resp_json(j, MLREG_MT_OCI_INDEX, &len);
    if (resp &&
        ((at && mlreg_server__resp_header(resp, "OCI-Filters-Applied", "artifactType") < 0) ||
         (more && referrers_link(resp, rq, j, (size_t)n, at) < 0))) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    json_decref(j);
    if (!resp) return MHD_NO;
    return mlreg_server__req_queue(rq, 200, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
}

static enum MHD_Result finish_base(request *rq)
{
    struct MHD_Response *resp = mlreg_server__resp_copy("{}", 2);

    if (!resp || mlreg_server__resp_header(resp, "Content-Type", "application/json") < 0) {
        if (resp) MHD_destroy_response(resp);
        return MHD_NO;
    }
    return mlreg_server__req_queue(rq, 200, resp, 2);
}

/* ---- routes --------------------------------------------------------------- */

/* Rows that share a pattern are one resource. Reads need read on the
 * repository, writes push. The upload rows are server_oci_uploads.c's. */
static const route_row oci_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_GET_HEAD, "/v2/?", ROUTE_ACCESS_TOKEN, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL, NULL,
     finish_base},
    {ROUTE_GET_HEAD, "/v2/_catalog", ROUTE_ACCESS_READ_SOME, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL,
     NULL, finish_catalog},
    {ROUTE_GET_HEAD, "/v2/{name}/tags/list", ROUTE_ACCESS_READ, ROUTE_BODY_NONE, ERR_CTX_TAGS, NULL,
     NULL, finish_tags},
    {ROUTE_GET_HEAD, "/v2/{name}/blobs/{digest}", ROUTE_ACCESS_READ, ROUTE_BODY_NONE, ERR_CTX_BLOB,
     begin_digest, NULL, finish_blob_get},
    {ROUTE_DELETE, "/v2/{name}/blobs/{digest}", ROUTE_ACCESS_PUSH, ROUTE_BODY_NONE, ERR_CTX_BLOB,
     begin_digest, NULL, finish_blob_delete},
    {ROUTE_GET_HEAD, "/v2/{name}/manifests/{reference}", ROUTE_ACCESS_READ, ROUTE_BODY_NONE,
     ERR_CTX_MANIFEST, begin_manifest, NULL, finish_manifest_get},
    {ROUTE_PUT, "/v2/{name}/manifests/{reference}", ROUTE_ACCESS_PUSH, ROUTE_BODY_MANIFEST,
     ERR_CTX_MANIFEST, begin_manifest, NULL, finish_manifest_put},
    {ROUTE_DELETE, "/v2/{name}/manifests/{reference}", ROUTE_ACCESS_PUSH, ROUTE_BODY_NONE,
     ERR_CTX_MANIFEST, begin_manifest, NULL, finish_manifest_delete},
    {ROUTE_GET_HEAD, "/v2/{name}/referrers/{digest}", ROUTE_ACCESS_READ, ROUTE_BODY_NONE,
     ERR_CTX_MANIFEST, begin_digest, NULL, finish_referrers},
};

const route_table mlreg_server__oci_routes = {oci_rows, sizeof(oci_rows) / sizeof(oci_rows[0])};
