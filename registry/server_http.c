/* server_http.c: reading a request and answering it, for every route:
 * headers and strict query numbers, error recording (the first error of a
 * request wins and is answered at its final call, see server_internal.h),
 * reply helpers, the access log. It knows no route; the error table is
 * server_errors.c's.
 */
#include "server_http.h"
#include "server_routes.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mlreg/common.h"
#include "mlreg/json_out.h"
#include "mlreg/text.h"

/* Bytes of a refused body read and dropped before the connection is simply
 * closed: enough to answer a chunked manifest that overflows the limit
 * properly, small enough that a hostile client cannot keep a worker busy. */
#define DISCARD_MAX (16u * 1024 * 1024)

/* Writes @p s into @p out with anything unprintable replaced, for the log. */
static void sanitize(char *out, size_t outlen, const char *s)
{
    size_t i = 0;
    for (; *s && i + 1 < outlen; s++)
        out[i++] = (*s < 0x20 || *s > 0x7e) ? '?' : *s;
    out[i] = '\0';
}

request *mlreg_server__req_new(mlreg_server *srv, const char *uri)
{
    request *rq = calloc(1, sizeof(*rq));
    if (!rq) return NULL;
    rq->srv = srv;
    clock_gettime(CLOCK_MONOTONIC, &rq->t0);
    if (!(rq->path = strndup(uri, strcspn(uri, "?")))) {
        free(rq);
        return NULL;
    }
    if (uri[strlen(rq->path)] == '?' && !(rq->query = strdup(uri + strlen(rq->path) + 1))) {
        free(rq->path);
        free(rq);
        return NULL;
    }
    rq->conf = mlreg_server__conf_acquire(srv);
    return rq;
}

/* A monolithic writer still here means the body never completed (client
 * gone, lying Content-Length, truncated chunked body, shutdown) or the
 * reply failed: it is aborted, so nothing is committed. A claimed session
 * is given back, or dropped when the request was a PUT that did not commit
 * or a write failed. Bytes a cut-short PATCH appended stay in the session:
 * the client learns the offset from the status GET (or a 416 carrying
 * Range) and resumes from there. */
void mlreg_server__req_free(request *rq)
{
    if (!rq) return;
    mlreg_server__forward_free(rq->fwd);
    mlreg_blob_writer_abort(rq->writer);
    mlreg_server__req_release_session(rq);
    free(rq->mbuf);
    free(rq->name);
    free(rq->arg);
    free(rq->stage);
    free(rq->file);
    free(rq->path);
    free(rq->query);
    free(rq->detail);
    mlreg_identity_free(rq->who_owned);
    mlreg_server__conf_release(rq->conf);
    free(rq);
}

const char *mlreg_server__req_raw_query(const request *rq)
{
    return rq->query;
}

/* A client's request id is kept only when it cannot hurt a log or a
 * header: 1 to 64 of [A-Za-z0-9._-]. */
static int request_id_ok(const char *v)
{
    size_t n = 0;

    for (; v[n]; n++) {
        char c = v[n];
        if (n >= MLREG_SERVER_REQUEST_ID_MAX) return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

void mlreg_server__req_identify(request *rq)
{
    const char *given = mlreg_server__req_header(rq, "X-Request-Id");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    if (given != NULL && request_id_ok(given)) {
        snprintf(rq->id, sizeof(rq->id), "%s", given);
    } else {
        unsigned char raw[8];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(rq->id, sizeof(rq->id), raw, sizeof(raw));
    }
    snprintf(rq->remote, sizeof(rq->remote), "-");
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, rq->remote,
                  sizeof(rq->remote));
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, rq->remote,
                  sizeof(rq->remote));
}

/* Why a request was refused (401, 403): the message the client got, which
 * names the missing role or says the token is missing or unknown, never
 * the token itself (auth.c). NULL for any other status. */
static const char *denied_reason(const request *rq)
{
    if ((rq->status != 401 && rq->status != 403) || !rq->failed) return NULL;
    return rq->err_msg[0] ? rq->err_msg : "refused";
}

/* The access-log line as one JSON object. Every string is either ours
 * (route patterns, methods) or client text made printable ASCII
 * (sanitize()) or valid UTF-8 (err_msg), so the encoder never refuses it;
 * the query string, which may hold presigned URLs or upload state, is
 * never logged. */
static void log_json(const request *rq, const char *path, double ms, const char *end)
{
    struct timespec wall;
    struct tm tm;
    char when[64];
    const char *reason = denied_reason(rq);
    char route[128];
    json_t *j;
    char *text;

    /* the pattern as people write it: without the table's "?" marker of
     * an optional final '/' (server_routes.h) */
    if (rq->route != NULL) {
        size_t n = strlen(rq->route->pattern);
        if (n > 0 && rq->route->pattern[n - 1] == '?') n--;
        snprintf(route, sizeof(route), "%.*s", (int)n, rq->route->pattern);
    }
    clock_gettime(CLOCK_REALTIME, &wall);
    gmtime_r(&wall.tv_sec, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(wall.tv_nsec / 1000000));
    j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s?, s:s, s:i, s:I, s:I, s:f}", "time", when, "request_id",
        rq->id[0] ? rq->id : "-", "remote", rq->remote[0] ? rq->remote : "-", "actor",
        rq->who ? mlreg_identity_name(rq->who) : "-", "method", rq->method[0] ? rq->method : "-",
        "route", rq->route ? route : NULL, "path", path, "status", (int)rq->status, "bytes_in",
        (json_int_t)rq->req_bytes, "bytes_out", (json_int_t)rq->resp_bytes, "duration_ms",
        (double)(int64_t)(ms * 1000 + 0.5) / 1000);
    if (j == NULL) return;
    if ((reason != NULL && json_object_set_new(j, "reason", json_string(reason)) < 0) ||
        (end != NULL && json_object_set_new(j, "end", json_string(end)) < 0) ||
        (rq->detail != NULL && json_object_set_new(j, "error", json_string(rq->detail)) < 0)) {
        json_decref(j);
        return;
    }
    text = mlreg_json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL) return;
    fprintf(stderr, "%s\n", text);
    free(text);
}

void mlreg_server__req_log(const request *rq, enum MHD_RequestTerminationCode toe)
{
    struct timespec now;
    double ms;
    char path[256];
    const char *end = NULL, *reason = denied_reason(rq);

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (double)(now.tv_sec - rq->t0.tv_sec) * 1e3 + (double)(now.tv_nsec - rq->t0.tv_nsec) / 1e6;
    sanitize(path, sizeof(path), rq->path);
    if (toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT || toe == MHD_REQUEST_TERMINATED_READ_ERROR)
        end = "client went away";
    else if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        end = "timeout";
    else if (toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
        end = "shutdown";
    else if (toe == MHD_REQUEST_TERMINATED_WITH_ERROR)
        end = "error";
    if (rq->srv->log_json) {
        log_json(rq, path, ms, end);
        return;
    }
    fprintf(stderr, "mlreg: %s %s %u in=%llu out=%llu %.1fms%s%s%s id=%s%s%s\n",
            rq->method[0] ? rq->method : "-", path, rq->status, (unsigned long long)rq->req_bytes,
            (unsigned long long)rq->resp_bytes, ms, end ? " (" : "", end ? end : "", end ? ")" : "",
            rq->id[0] ? rq->id : "-", reason ? " refused: " : "", reason ? reason : "");
}

const char *mlreg_server__req_header(request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *mlreg_server__req_query(request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Decimal digits only: no sign, no spaces, no "0x", not empty, at most
 * UINT64_MAX. libmicrohttpd unescapes query values before we see them, so
 * "%00" becomes a NUL byte inside the value; the value's length (not
 * strlen) is checked so "1%00" is refused rather than read as "1". */
int mlreg_server__req_query_u64(uint64_t *out, int *present, request *rq, const char *name)
{
    const char *v = NULL;
    size_t len = 0;
    uint64_t n = 0;

    if (present) *present = 0;
    if (MHD_lookup_connection_value_n(rq->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      &len) != MHD_YES)
        return 0;
    if (present) *present = 1;
    if (v == NULL || len == 0)
        return mlreg_error_set(MLREG_EINVALID, "?%s= is empty; want a decimal number", name);
    for (size_t i = 0; i < len; i++) {
        unsigned int d = (unsigned char)v[i] - '0';
        if (d > 9)
            return mlreg_error_set(
                MLREG_EINVALID, "?%s= must be a non-negative decimal number (digits only)", name);
        if (n > (UINT64_MAX - d) / 10)
            return mlreg_error_set(MLREG_EINVALID, "?%s= is out of range", name);
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

struct MHD_Response *mlreg_server__resp_empty(void)
{
    return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *mlreg_server__resp_copy(const void *data, size_t len)
{
    return MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
}

int mlreg_server__resp_header(struct MHD_Response *resp, const char *name, const char *value)
{
    if (MHD_add_response_header(resp, name, value) != MHD_YES)
        return mlreg_error_set(MLREG_ENOMEM, "cannot add header %s", name);
    return 0;
}

struct MHD_Response *mlreg_server__resp_json(const json_t *j, const char *content_type,
                                             uint64_t *len_out)
{
    struct MHD_Response *resp;
    char *text = mlreg_json_dumps(j, JSON_COMPACT);
    size_t len;

    if (!text) return NULL;
    len = strlen(text);
    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return NULL;
    }
    if (mlreg_server__resp_header(resp, "Content-Type",
                                  content_type ? content_type : "application/json") < 0) {
        MHD_destroy_response(resp);
        return NULL;
    }
    *len_out = len;
    return resp;
}

/* The Content-Security-Policy of every answer but the dashboard's pages. */
#define API_CSP "default-src 'none'; frame-ancestors 'none'; sandbox"

enum MHD_Result mlreg_server__req_queue(request *rq, unsigned int status, struct MHD_Response *resp,
                                        uint64_t bytes)
{
    enum MHD_Result ret;

    if (!resp) return MHD_NO;
    if (!strncmp(rq->path, "/v2", 3) &&
        mlreg_server__resp_header(resp, "Docker-Distribution-API-Version", "registry/2.0") < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    if (rq->id[0] && mlreg_server__resp_header(resp, "X-Request-Id", rq->id) < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    /* A browser pointed at any answer (a blob holding HTML, an error that
     * quotes a hostile name) renders nothing and runs nothing: no type
     * sniffing, and a policy that allows no content, unless the answer set
     * its own (the dashboard's). */
    if ((MHD_get_response_header(resp, "X-Content-Type-Options") == NULL &&
         mlreg_server__resp_header(resp, "X-Content-Type-Options", "nosniff") < 0) ||
        (MHD_get_response_header(resp, "Content-Security-Policy") == NULL &&
         mlreg_server__resp_header(resp, "Content-Security-Policy", API_CSP) < 0)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    ret = MHD_queue_response(rq->conn, status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        rq->queued = 1;
        rq->status = status;
        rq->resp_bytes = strcmp(rq->method, "HEAD") ? bytes : 0;
    }
    return ret;
}

/* Records the first error of a request. A 5xx message is for the operator
 * (it may name files under the data directory): it goes to the server log
 * with the request, and the client gets the generic text of
 * mlreg_server__error_public_message() (server_errors.c). */
static void set_fail_as(request *rq, unsigned int status, const char *oci_code, const char *msg,
                        int shown)
{
    const char *public_msg = shown ? NULL : mlreg_server__error_public_message(status);

    if (rq->failed) return;
    rq->failed = 1;
    rq->err_status = status;
    rq->err_code = oci_code;
    if (public_msg != NULL) {
        char path[256], detail[512];
        sanitize(path, sizeof(path), rq->path ? rq->path : "-");
        sanitize(detail, sizeof(detail), msg);
        /* the JSON format keeps it for the request's line (field "error") */
        if (rq->srv->log_json)
            rq->detail = strdup(detail);
        else
            fprintf(stderr, "mlreg: error: %s %s: %u %s: %s id=%s\n",
                    rq->method[0] ? rq->method : "-", path, status, oci_code, detail,
                    rq->id[0] ? rq->id : "-");
        msg = public_msg;
    }
    /* messages quote client text (names, references, titles), cut by
     * "%.Ns" maybe inside a character: the reply must be valid UTF-8 (the
     * JSON encoder refuses anything else) and free of control characters */
    mlreg_text_sanitize(rq->err_msg, sizeof(rq->err_msg), msg, strlen(msg));
}

static void set_fail(request *rq, unsigned int status, const char *oci_code, const char *msg)
{
    set_fail_as(rq, status, oci_code, msg, 0);
}

void mlreg_server__req_fail(request *rq, int code, err_ctx ctx)
{
    unsigned int status;
    const char *oci;
    const char *msg = mlreg_error_last();

    mlreg_server__error_map(&status, &oci, code, ctx);
    /* the state of the shared log is the clients' business: its messages
     * name log entries and reasons, never server paths */
    set_fail_as(rq, status, oci, msg[0] ? msg : mlreg_strerror(code), code == MLREG_EUNAVAILABLE);
}

void mlreg_server__req_fail_raw(request *rq, unsigned int status, const char *oci_code,
                                const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_fail(rq, status, oci_code, msg);
}

void mlreg_server__req_fail_header(request *rq, const char *name, const char *fmt, ...)
{
    va_list ap;

    for (size_t i = 0; i < 2; i++) {
        if (rq->err_hdr[i].name) continue;
        rq->err_hdr[i].name = name;
        va_start(ap, fmt);
        vsnprintf(rq->err_hdr[i].value, sizeof(rq->err_hdr[i].value), fmt, ap);
        va_end(ap);
        return;
    }
}

enum MHD_Result mlreg_server__req_queue_error(request *rq)
{
    json_t *body;
    struct MHD_Response *resp = NULL;
    uint64_t len = 0;

    if (rq->ctx == ERR_CTX_HF) return mlreg_server__hf_queue_error(rq);
    body = json_pack("{s:[{s:s,s:s}]}", "errors", "code", rq->err_code, "message", rq->err_msg);
    if (body) resp = mlreg_server__resp_json(body, NULL, &len);
    json_decref(body);
    for (size_t i = 0; resp && i < 2; i++) {
        if (rq->err_hdr[i].name &&
            mlreg_server__resp_header(resp, rq->err_hdr[i].name, rq->err_hdr[i].value) < 0) {
            MHD_destroy_response(resp);
            resp = NULL;
        }
    }
    if (resp && rq->close_conn && mlreg_server__resp_header(resp, "Connection", "close") < 0) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return mlreg_server__req_queue(rq, rq->err_status, resp, len);
}

const char *mlreg_server__req_actor(const request *rq)
{
    return rq->who ? mlreg_identity_name(rq->who) : MLREG_AUTH_LOCAL;
}

void mlreg_server__req_release_session(request *rq)
{
    if (!rq->sess) return;
    if (rq->sess_drop)
        mlreg_server__uploads_remove(rq->srv->uploads, rq->sess);
    else
        mlreg_server__uploads_release(rq->srv->uploads, rq->sess);
    rq->sess = NULL;
}

void mlreg_server__req_discard(request *rq)
{
    rq->body = BODY_DISCARD;
    rq->discard_left = DISCARD_MAX;
}

enum MHD_Result mlreg_server__reply_error(request *rq, int code, err_ctx ctx)
{
    mlreg_server__req_fail(rq, code, ctx);
    return mlreg_server__req_queue_error(rq);
}

enum MHD_Result mlreg_server__reply_json(request *rq, unsigned int status, json_t *j)
{
    uint64_t len = 0;
    struct MHD_Response *resp = mlreg_server__resp_json(j, NULL, &len);

    json_decref(j);
    return mlreg_server__req_queue(rq, status, resp, len);
}

enum MHD_Result mlreg_server__reply_json_text(request *rq, unsigned int status, char *text,
                                              size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);

    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    if (mlreg_server__resp_header(resp, "Content-Type", "application/json") < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return mlreg_server__req_queue(rq, status, resp, len);
}

enum MHD_Result mlreg_server__reply_result(request *rq, int error, json_t *j)
{
    if (error < 0) {
        json_decref(j);
        return mlreg_server__reply_error(rq, error, rq->ctx);
    }
    return mlreg_server__reply_json(rq, 200, j);
}

/* At most 19 digits, so the value never overflows. */
int mlreg_server__parse_u64(const char **p, uint64_t *out)
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
