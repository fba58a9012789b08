/* server.c: the libmicrohttpd daemon, the life of a request, routing, reply
 * helpers and the access log. Routes live in server_oci.c (/v2/),
 * server_api.c (/api/v1/) and server_audit.c (/api/v1/audit/ and release
 * attestations); upload sessions in server_uploads.c; the error
 * table in server_errors.c. See server_internal.h for the request life cycle.
 */
#include "mlreg/server.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "mlreg/common.h"
#include "mlreg/text.h"
#include "server_internal.h"

/* Bytes of a refused body read and dropped before the connection is simply
 * closed: enough to answer a chunked manifest that overflows the limit
 * properly, small enough that a hostile client cannot keep a worker busy. */
#define DISCARD_MAX (16u * 1024 * 1024)
/* Per-connection buffer; body chunks arrive in pieces of about this size. */
#define CONNECTION_MEMORY MLREG_SERVER_CONNECTION_MEMORY

/* ---- reply helpers -------------------------------------------------------- */

const char *req_header(request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *req_query(request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Decimal digits only: no sign, no spaces, no "0x", not empty, at most
 * UINT64_MAX. libmicrohttpd unescapes query values before we see them, so
 * "%00" becomes a NUL byte inside the value; the value's length (not
 * strlen) is checked so "1%00" is refused rather than read as "1". */
int req_query_u64(uint64_t *out, int *present, request *rq, const char *name)
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

struct MHD_Response *resp_empty(void)
{
    return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *resp_copy(const void *data, size_t len)
{
    return MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
}

int resp_header(struct MHD_Response *resp, const char *name, const char *value)
{
    if (MHD_add_response_header(resp, name, value) != MHD_YES)
        return mlreg_error_set(MLREG_ENOMEM, "cannot add header %s", name);
    return 0;
}

struct MHD_Response *resp_json(const json_t *j, const char *content_type, uint64_t *len_out)
{
    struct MHD_Response *resp;
    char *text = json_dumps(j, JSON_COMPACT);
    size_t len;

    if (!text) return NULL;
    len = strlen(text);
    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return NULL;
    }
    if (resp_header(resp, "Content-Type", content_type ? content_type : "application/json") < 0) {
        MHD_destroy_response(resp);
        return NULL;
    }
    *len_out = len;
    return resp;
}

enum MHD_Result req_queue(request *rq, unsigned int status, struct MHD_Response *resp,
                          uint64_t bytes)
{
    enum MHD_Result ret;

    if (!resp) return MHD_NO;
    if (!strncmp(rq->path, "/v2", 3) &&
        resp_header(resp, "Docker-Distribution-API-Version", "registry/2.0") < 0) {
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

static void sanitize(char *out, size_t outlen, const char *s);

/* Records the first error of a request. A 5xx message is for the operator
 * (it may name files under the data directory): it goes to the server log
 * with the request, and the client gets the generic text of
 * http_error_public_message() (server_errors.c). */
static void set_fail(request *rq, unsigned int status, const char *oci_code, const char *msg)
{
    const char *public_msg = http_error_public_message(status);

    if (rq->failed) return;
    rq->failed = 1;
    rq->err_status = status;
    rq->err_code = oci_code;
    if (public_msg != NULL) {
        char path[256], detail[512];
        sanitize(path, sizeof(path), rq->path ? rq->path : "-");
        sanitize(detail, sizeof(detail), msg);
        fprintf(stderr, "mlreg: error: %s %s: %u %s: %s\n", rq->method[0] ? rq->method : "-", path,
                status, oci_code, detail);
        msg = public_msg;
    }
    /* messages quote client text (names, references, titles), cut by
     * "%.Ns" maybe inside a character: the reply must be valid UTF-8 (the
     * JSON encoder refuses anything else) and free of control characters */
    mlreg_text_sanitize(rq->err_msg, sizeof(rq->err_msg), msg, strlen(msg));
}

void req_fail(request *rq, int code, err_ctx ctx)
{
    unsigned int status;
    const char *oci;
    const char *msg = mlreg_error_last();

    http_error_map(&status, &oci, code, ctx);
    set_fail(rq, status, oci, msg[0] ? msg : mlreg_strerror(code));
}

void req_fail_raw(request *rq, unsigned int status, const char *oci_code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_fail(rq, status, oci_code, msg);
}

void req_fail_header(request *rq, const char *name, const char *fmt, ...)
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

enum MHD_Result req_queue_error(request *rq)
{
    json_t *body =
        json_pack("{s:[{s:s,s:s}]}", "errors", "code", rq->err_code, "message", rq->err_msg);
    struct MHD_Response *resp = NULL;
    uint64_t len = 0;

    if (body) resp = resp_json(body, NULL, &len);
    json_decref(body);
    for (size_t i = 0; resp && i < 2; i++) {
        if (rq->err_hdr[i].name &&
            resp_header(resp, rq->err_hdr[i].name, rq->err_hdr[i].value) < 0) {
            MHD_destroy_response(resp);
            resp = NULL;
        }
    }
    if (resp && rq->close_conn && resp_header(resp, "Connection", "close") < 0) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return req_queue(rq, rq->err_status, resp, len);
}

const char *req_actor(const request *rq)
{
    return rq->who ? mlreg_identity_name(rq->who) : MLREG_AUTH_LOCAL;
}

/* ---- routing -------------------------------------------------------------- */

/* Path markers of /v2/<name>/..., searched from the right because names
 * contain '/'. On a tie (same position) the longer marker wins, which is why
 * "/blobs/uploads/" comes before "/blobs/". */
static const struct {
    const char *marker;
    route_id route;
} v2_markers[] = {
    {"/blobs/uploads/", ROUTE_UPLOAD},
    {"/manifests/", ROUTE_MANIFEST},
    {"/referrers/", ROUTE_REFERRERS},
    {"/blobs/", ROUTE_BLOB},
};

static const char *last_occurrence(const char *s, const char *needle)
{
    const char *found = NULL, *p = s;
    while ((p = strstr(p, needle))) {
        found = p;
        p++;
    }
    return found;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

/* Sets rq->name (copied and validated) from @p len bytes of @p name. */
static int take_name(request *rq, const char *name, size_t len)
{
    int error;

    if (!(rq->name = strndup(name, len))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (len == 0) return mlreg_error_set(MLREG_EINVALID, "empty repository name");
    if ((error = mlreg_name_validate(rq->name)) < 0) return error;
    return 0;
}

static int take_arg(request *rq, const char *arg)
{
    if (!(rq->arg = strdup(arg))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

/* Splits "/v2/<rest>" into route, name and argument. */
static int route_v2(request *rq, const char *rest)
{
    const char *best = NULL;
    size_t best_marker = 0;
    route_id route = ROUTE_NONE;

    if (ends_with(rest, "/tags/list")) {
        rq->route = ROUTE_TAGS;
        return take_name(rq, rest, strlen(rest) - strlen("/tags/list"));
    }
    if (ends_with(rest, "/blobs/uploads")) {
        rq->route = ROUTE_UPLOAD_START;
        return take_name(rq, rest, strlen(rest) - strlen("/blobs/uploads"));
    }
    for (size_t i = 0; i < sizeof(v2_markers) / sizeof(v2_markers[0]); i++) {
        const char *p = last_occurrence(rest, v2_markers[i].marker);
        if (p && (!best || p > best)) {
            best = p;
            best_marker = i;
            route = v2_markers[i].route;
        }
    }
    if (!best) {
        rq->route = ROUTE_NONE;
        return 0;
    }
    {
        const char *arg = best + strlen(v2_markers[best_marker].marker);
        if (strchr(arg, '/')) {
            rq->route = ROUTE_NONE;
            return 0;
        }
        if (route == ROUTE_UPLOAD && *arg == '\0') route = ROUTE_UPLOAD_START;
        rq->route = route;
        int error = take_name(rq, rest, (size_t)(best - rest));
        if (error < 0) return error;
        return take_arg(rq, arg);
    }
}

/* The log-wide audit routes (docs/audit-api.md), matched exactly. */
static const struct {
    const char *path;
    route_id route;
} audit_paths[] = {
    {"audit", ROUTE_API_AUDIT},
    {"audit/key", ROUTE_API_AUDIT_KEY},
    {"audit/checkpoint", ROUTE_API_AUDIT_CHECKPOINT},
    {"audit/proof/inclusion", ROUTE_API_AUDIT_INCLUSION},
    {"audit/proof/consistency", ROUTE_API_AUDIT_CONSISTENCY},
};

static int route_api(request *rq, const char *rest)
{
    const char *v;

    if (!strcmp(rest, "health")) {
        rq->route = ROUTE_API_HEALTH;
        return 0;
    }
    if (!strcmp(rest, "models") || !strcmp(rest, "models/")) {
        rq->route = ROUTE_API_MODELS;
        return 0;
    }
    if (!strcmp(rest, "keys")) {
        rq->route = ROUTE_API_KEYS;
        return 0;
    }
    if (!strcmp(rest, "keys/events")) {
        rq->route = ROUTE_API_KEY_EVENTS;
        return 0;
    }
    for (size_t i = 0; i < sizeof(audit_paths) / sizeof(audit_paths[0]); i++)
        if (!strcmp(rest, audit_paths[i].path)) {
            rq->route = audit_paths[i].route;
            return 0;
        }
    if (!strncmp(rest, "keys/", 5) && ends_with(rest, "/revoke")) {
        const char *id = rest + 5;
        size_t n = strlen(id) - strlen("/revoke");
        if (n == 0 || memchr(id, '/', n)) {
            rq->route = ROUTE_NONE;
            return 0;
        }
        rq->route = ROUTE_API_KEY_REVOKE;
        if (!(rq->arg = strndup(id, n))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        return 0;
    }
    if (strncmp(rest, "models/", 7)) {
        rq->route = ROUTE_NONE;
        return 0;
    }
    rest += 7;
    v = last_occurrence(rest, "/versions/");
    if (v) {
        int error;
        const char *arg = v + strlen("/versions/");
        size_t alen = strlen(arg);
        rq->route = ROUTE_API_RELEASE;
        /* a version never holds '/', so ".../<version>/signatures" is unambiguous */
        if (ends_with(arg, "/signatures") && alen > strlen("/signatures")) {
            rq->route = ROUTE_API_SIGNATURES;
            alen -= strlen("/signatures");
        } else if (ends_with(arg, "/approvals") && alen > strlen("/approvals")) {
            rq->route = ROUTE_API_APPROVALS;
            alen -= strlen("/approvals");
        } else if (ends_with(arg, "/images") && alen > strlen("/images")) {
            rq->route = ROUTE_API_IMAGES;
            alen -= strlen("/images");
        } else if (ends_with(arg, "/attestations") && alen > strlen("/attestations")) {
            rq->route = ROUTE_API_ATTESTATIONS;
            alen -= strlen("/attestations");
        }
        if ((error = take_name(rq, rest, (size_t)(v - rest))) < 0) return error;
        if (!(rq->arg = strndup(arg, alen))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        if ((error = mlreg_tag_validate(rq->arg)) < 0) req_fail(rq, error, ERR_CTX_RELEASE);
        return 0;
    }
    /* models/<name>/promotions, models/<name>/stages[/<stage>[/history|/rollback]]:
     * a stage name never holds '/' */
    if (ends_with(rest, "/promotions")) {
        rq->route = ROUTE_API_PROMOTIONS;
        return take_name(rq, rest, strlen(rest) - strlen("/promotions"));
    }
    if (ends_with(rest, "/stages")) {
        rq->route = ROUTE_API_STAGES;
        return take_name(rq, rest, strlen(rest) - strlen("/stages"));
    }
    if ((v = last_occurrence(rest, "/stages/")) != NULL) {
        const char *stage = v + strlen("/stages/"), *slash = strchr(stage, '/');
        size_t slen = slash ? (size_t)(slash - stage) : strlen(stage);
        int error;
        if (slash == NULL)
            rq->route = ROUTE_API_STAGE;
        else if (!strcmp(slash, "/history"))
            rq->route = ROUTE_API_STAGE_HISTORY;
        else if (!strcmp(slash, "/rollback"))
            rq->route = ROUTE_API_ROLLBACK;
        else
            rq->route = ROUTE_NONE;
        if (rq->route == ROUTE_NONE || slen == 0) {
            rq->route = ROUTE_NONE;
            return 0;
        }
        if ((error = take_name(rq, rest, (size_t)(v - rest))) < 0) return error;
        if (!(rq->stage = strndup(stage, slen)))
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        return 0;
    }
    rq->route = ROUTE_API_MODEL;
    return take_name(rq, rest, strlen(rest));
}

/* Methods each route answers; anything else is 405 with Allow. */
static const char *route_methods(route_id r)
{
    switch (r) {
    case ROUTE_V2_BASE: return "GET, HEAD";
    case ROUTE_BLOB: return "GET, HEAD, DELETE";
    case ROUTE_UPLOAD_START: return "POST";
    case ROUTE_UPLOAD: return "GET, PATCH, PUT, DELETE";
    case ROUTE_MANIFEST: return "GET, HEAD, PUT, DELETE";
    case ROUTE_TAGS:
    case ROUTE_REFERRERS:
    case ROUTE_API_HEALTH:
    case ROUTE_API_MODELS:
    case ROUTE_API_MODEL:
    case ROUTE_API_RELEASE:
    case ROUTE_API_KEY_EVENTS: return "GET, HEAD";
    case ROUTE_API_STAGES:
    case ROUTE_API_STAGE:
    case ROUTE_API_STAGE_HISTORY:
    case ROUTE_API_ATTESTATIONS:
    case ROUTE_API_AUDIT:
    case ROUTE_API_AUDIT_KEY:
    case ROUTE_API_AUDIT_CHECKPOINT:
    case ROUTE_API_AUDIT_INCLUSION:
    case ROUTE_API_AUDIT_CONSISTENCY: return "GET, HEAD";
    case ROUTE_API_SIGNATURES:
    case ROUTE_API_APPROVALS:
    case ROUTE_API_IMAGES:
    case ROUTE_API_PROMOTIONS:
    case ROUTE_API_KEYS: return "GET, HEAD, POST";
    case ROUTE_API_KEY_REVOKE:
    case ROUTE_API_ROLLBACK: return "POST";
    case ROUTE_NONE: break;
    }
    return "";
}

static int method_allowed(const char *allowed, const char *method)
{
    size_t n = strlen(method);
    const char *p = allowed;
    while ((p = strstr(p, method))) {
        if ((p == allowed || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0')) return 1;
        p += n;
    }
    return 0;
}

/* Requests that may carry a body: uploads, manifest PUT and the JSON POSTs
 * of /api/v1/. */
static int route_takes_body(const request *rq)
{
    return (rq->route == ROUTE_UPLOAD_START && !strcmp(rq->method, "POST")) ||
           ((rq->route == ROUTE_API_SIGNATURES || rq->route == ROUTE_API_KEYS ||
             rq->route == ROUTE_API_KEY_REVOKE || rq->route == ROUTE_API_PROMOTIONS ||
             rq->route == ROUTE_API_ROLLBACK || rq->route == ROUTE_API_APPROVALS ||
             rq->route == ROUTE_API_IMAGES) &&
            !strcmp(rq->method, "POST")) ||
           (rq->route == ROUTE_UPLOAD &&
            (!strcmp(rq->method, "PATCH") || !strcmp(rq->method, "PUT"))) ||
           (rq->route == ROUTE_MANIFEST && !strcmp(rq->method, "PUT"));
}

typedef struct {
    unsigned int content_length;
    unsigned int transfer_encoding;
} framing_count;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    framing_count *c = cls;
    (void)kind;
    (void)value;
    if (!strcasecmp(key, "Content-Length")) c->content_length++;
    if (!strcasecmp(key, "Transfer-Encoding")) c->transfer_encoding++;
    return MHD_YES;
}

/* A request whose length two parties could read differently is the start
 * of request smuggling: libmicrohttpd takes the first of two
 * Content-Length headers, and a proxy in front of us may take the other or
 * the Transfer-Encoding, so the bytes after the body we read would be a
 * request the proxy never saw. Such a request is refused and its connection
 * closed (RFC 9112, 6.3). */
static int framing_ambiguous(request *rq)
{
    framing_count c = {0, 0};

    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, count_framing, &c);
    return c.content_length > 1 || c.transfer_encoding > 1 ||
           (c.content_length && c.transfer_encoding);
}

static void read_body_headers(request *rq)
{
    const char *cl = req_header(rq, "Content-Length");
    const char *te = req_header(rq, "Transfer-Encoding");

    if (cl) {
        /* libmicrohttpd has validated the value already */
        rq->has_length = 1;
        rq->content_length = strtoull(cl, NULL, 10);
    }
    rq->has_body = (cl && rq->content_length > 0) || te != NULL;
}

/* Authentication and the role each route needs (docs/promotions-api.md):
 * GET/HEAD read; uploads, manifest PUT/DELETE, blob DELETE and signatures
 * push (a cross-repository mount also needs read on the source); key
 * management admin; rollback of S promote:S. Promotions and approvals name
 * their stage in the body, so api_finish() checks their role after reading
 * it, before anything is evaluated or stored. An image binding needs push,
 * or promote:S for each stage S its release holds or has held: that is
 * decided by mlreg_image_bind() inside its write transaction. A failure here
 * is answered before any body byte is read, so nothing is stored. The
 * log-wide audit routes carry no model name, so they are checked as reads
 * of no one model: a read role limited to a model prefix does not grant
 * the whole log (docs/audit-api.md). */
/* Whether @p who may bind images to some release of @p model: push (the
 * releases no stage ever held), or promote to at least one stage. */
static int may_bind_images(const mlreg_identity *who, const mlreg_policy *policy, const char *model)
{
    const char *const *stages = mlreg_policy_stages(policy);

    if (mlreg_auth_check(who, MLREG_ROLE_PUSH, NULL, model) == 0) return 1;
    for (size_t i = 0; i < mlreg_policy_stage_count(policy); i++)
        if (mlreg_auth_check(who, MLREG_ROLE_PROMOTE, stages[i], model) == 0) {
            mlreg_error_clear();
            return 1;
        }
    return 0;
}

static void authorize(request *rq)
{
    mlreg_server *srv = rq->srv;
    int get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD");
    int error;
    mlreg_role_kind kind = MLREG_ROLE_PUSH;
    const char *stage = NULL, *model = rq->name, *from;

    if (rq->route == ROUTE_API_HEALTH) return;
    error = mlreg_auth_authenticate(&rq->who, srv->auth, req_header(rq, "Authorization"));
    if (error < 0) {
        req_fail(rq, error, ERR_CTX_ANY);
        req_fail_header(rq, "WWW-Authenticate", "Basic realm=\"mlreg\"");
        return;
    }
    if (rq->route == ROUTE_V2_BASE) return; /* any valid token */
    if (get && rq->route != ROUTE_UPLOAD) { /* an upload's status belongs to its pusher */
        kind = MLREG_ROLE_READ;
    } else {
        switch (rq->route) {
        case ROUTE_API_KEYS:
        case ROUTE_API_KEY_REVOKE:
            kind = MLREG_ROLE_ADMIN;
            model = NULL;
            break;
        case ROUTE_API_ROLLBACK:
            kind = MLREG_ROLE_PROMOTE;
            stage = rq->stage;
            break;
        case ROUTE_API_PROMOTIONS:
        case ROUTE_API_APPROVALS: return; /* the stage is in the body: api_finish() */
        case ROUTE_API_IMAGES:
            /* The exact role depends on the stages that hold or held the
             * release and is checked by mlreg_image_bind() in its write
             * transaction; a token that could not bind any release of this
             * model is refused here, before it learns which stages those
             * are. */
            if (may_bind_images(rq->who, srv->policy, model)) return;
            break;
        default: kind = MLREG_ROLE_PUSH; break;
        }
    }
    if (get && (rq->route == ROUTE_API_KEYS || rq->route == ROUTE_API_KEY_EVENTS ||
                rq->route == ROUTE_API_MODELS))
        model = NULL;
    if ((error = mlreg_auth_check(rq->who, kind, stage, model)) < 0) {
        req_fail(rq, error, ERR_CTX_ANY);
        return;
    }
    if (rq->route == ROUTE_UPLOAD_START && req_query(rq, "mount") &&
        (from = req_query(rq, "from")) != NULL &&
        (error = mlreg_auth_check(rq->who, MLREG_ROLE_READ, NULL, from)) < 0)
        req_fail(rq, error, ERR_CTX_ANY);
}

/* Step 2: everything that can be decided from the request line and headers. */
static void begin(request *rq)
{
    const char *p = rq->path;
    int error = 0;

    read_body_headers(rq);
    /* without a Content-Length or Transfer-Encoding (most GETs) there is
     * nothing to count */
    if ((rq->has_length || rq->has_body) && framing_ambiguous(rq)) {
        rq->close_conn = 1;
        req_fail_raw(rq, 400, "UNSUPPORTED",
                     "the request has several Content-Length or Transfer-Encoding headers, or "
                     "both: its length is ambiguous");
        return;
    }
    if (strchr(p, '%')) {
        req_fail_raw(rq, 400, "NAME_INVALID", "percent-encoded paths are not accepted");
        return;
    }
    if (strstr(p, "/../") || strstr(p, "/./") || ends_with(p, "/..") || ends_with(p, "/.")) {
        req_fail_raw(rq, 400, "NAME_INVALID", "dot segments are not accepted in paths");
        return;
    }
    if (!strcmp(p, "/v2") || !strcmp(p, "/v2/"))
        rq->route = ROUTE_V2_BASE;
    else if (!strncmp(p, "/v2/", 4))
        error = route_v2(rq, p + 4);
    else if (!strncmp(p, "/api/v1/", 8))
        error = route_api(rq, p + 8);
    else
        rq->route = ROUTE_NONE;
    if (error < 0) {
        req_fail(rq, error, ERR_CTX_NAME);
        return;
    }
    if (rq->route == ROUTE_NONE) {
        req_fail_raw(rq, 404, "NAME_UNKNOWN", "no route for %s %s", rq->method, p);
        return;
    }
    if (!method_allowed(route_methods(rq->route), rq->method)) {
        req_fail_raw(rq, 405, "UNSUPPORTED", "method %s not allowed here", rq->method);
        req_fail_header(rq, "Allow", "%s", route_methods(rq->route));
        return;
    }
    if (rq->has_body && !route_takes_body(rq)) {
        req_fail_raw(rq, 400, "UNSUPPORTED", "%s %s takes no request body", rq->method, p);
        return;
    }
    if (rq->failed) return;
    authorize(rq);
    if (rq->failed) return;
    if (rq->stage && mlreg_policy_stage_index(rq->srv->policy, rq->stage) < 0) {
        req_fail_raw(rq, 400, "STAGE_UNKNOWN", "unknown stage '%.128s'", rq->stage);
        return;
    }
    if (rq->route <= ROUTE_REFERRERS)
        oci_begin(rq);
    else
        api_begin(rq);
}

/* Step 3: one piece of the request body. Returns MHD_NO to drop the
 * connection (only after an error, when the rest is too large to read). */
static enum MHD_Result body(request *rq, const char *data, size_t len)
{
    int error;
    mlreg_server *srv = rq->srv;

    rq->req_bytes += len;
    switch (rq->body) {
    case BODY_WRITER:
        /* a chunked body had no length to check at its start */
        if ((error = upload_room(srv->max_upload_bytes, rq->req_bytes - len, len)) == 0)
            error = mlreg_blob_writer_write(rq->writer, data, len);
        if (error < 0) {
            req_fail(rq, error, ERR_CTX_UPLOAD);
            mlreg_blob_writer_abort(rq->writer);
            rq->writer = NULL;
            rq->body = BODY_DISCARD;
            rq->discard_left = DISCARD_MAX;
        }
        return MHD_YES;
    case BODY_SESSION:
        if (rq->has_expect_len && rq->req_bytes > rq->expect_len) {
            /* cannot happen: Content-Length == range length was checked and
             * libmicrohttpd enforces Content-Length; refuse rather than append */
            req_fail_raw(rq, 416, "BLOB_UPLOAD_INVALID", "body longer than Content-Range");
            rq->body = BODY_DISCARD;
            rq->discard_left = DISCARD_MAX;
            rq->sess_drop = 1;
            return MHD_YES;
        }
        if ((error = uploads_write(srv->uploads, rq->sess, data, len)) < 0) {
            req_fail(rq, error, ERR_CTX_UPLOAD);
            rq->sess_drop = 1; /* the writer is unusable after a failed write */
            rq->body = BODY_DISCARD;
            rq->discard_left = DISCARD_MAX;
        }
        return MHD_YES;
    case BODY_MANIFEST:
    case BODY_JSON: {
        size_t limit = rq->body == BODY_JSON ? API_JSON_MAX : srv->max_manifest;
        if (len > limit - rq->mlen) {
            if (rq->body == BODY_JSON)
                mlreg_error_set(MLREG_ETOOBIG, "request body larger than the limit of %u bytes",
                                API_JSON_MAX);
            else
                mlreg_error_set(MLREG_ETOOBIG, "manifest larger than the limit of %zu bytes",
                                srv->max_manifest);
            req_fail(rq, MLREG_ETOOBIG, ERR_CTX_MANIFEST);
            free(rq->mbuf);
            rq->mbuf = NULL;
            rq->mlen = rq->mcap = 0;
            rq->body = BODY_DISCARD;
            rq->discard_left = DISCARD_MAX;
            return MHD_YES;
        }
        if (rq->mlen + len + 1 > rq->mcap) {
            size_t cap = rq->mcap ? rq->mcap : 4096;
            char *nb;
            while (cap < rq->mlen + len + 1)
                cap *= 2;
            if (cap > limit + 1) cap = limit + 1;
            if (!(nb = realloc(rq->mbuf, cap))) return MHD_NO;
            rq->mbuf = nb;
            rq->mcap = cap;
        }
        memcpy(rq->mbuf + rq->mlen, data, len);
        rq->mlen += len;
        rq->mbuf[rq->mlen] = '\0';
        return MHD_YES;
    }
    case BODY_DISCARD:
        if (len > rq->discard_left) return MHD_NO;
        rq->discard_left -= len;
        return MHD_YES;
    case BODY_NONE: break;
    }
    /* a body where none was expected (checked in begin(), so only a chunked
     * request that announced none): refuse it */
    req_fail_raw(rq, 400, "UNSUPPORTED", "unexpected request body");
    rq->body = BODY_DISCARD;
    rq->discard_left = DISCARD_MAX;
    return MHD_YES;
}

void req_release_session(request *rq)
{
    if (!rq->sess) return;
    if (rq->sess_drop)
        uploads_remove(rq->srv->uploads, rq->sess);
    else
        uploads_release(rq->srv->uploads, rq->sess);
    rq->sess = NULL;
}

static enum MHD_Result finish(request *rq)
{
    if (rq->failed) {
        req_release_session(rq);
        return req_queue_error(rq);
    }
    if (rq->route <= ROUTE_REFERRERS) return oci_finish(rq);
    if (route_is_audit(rq->route)) return audit_finish(rq);
    return api_finish(rq);
}

static request *request_new(mlreg_server *srv, const char *uri)
{
    request *rq = calloc(1, sizeof(*rq));
    if (!rq) return NULL;
    rq->srv = srv;
    clock_gettime(CLOCK_MONOTONIC, &rq->t0);
    if (!(rq->path = strndup(uri, strcspn(uri, "?")))) {
        free(rq);
        return NULL;
    }
    return rq;
}

/* Step 1: called once per request with the raw URI, before unescaping. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    return request_new(cls, uri);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    request *rq = *req_cls;
    (void)version;

    if (!rq) {
        /* on_uri failed to allocate; the unescaped url is all we have */
        if (!(rq = request_new(cls, url))) return MHD_NO;
        *req_cls = rq;
    }
    if (!rq->started) {
        rq->started = 1;
        rq->conn = conn;
        if (conns_head_received(conn) < 0) return MHD_NO; /* over the per-address limit */
        snprintf(rq->method, sizeof(rq->method), "%s", method);
        mlreg_error_clear();
        begin(rq);
        /* An error on a request with a body is answered now, so the body is
         * never read; a bodiless request waits for the second call (a reply
         * queued on the first call costs the keep-alive), unless the
         * connection is to be closed anyway. */
        if (rq->failed && (rq->has_body || rq->close_conn)) {
            req_release_session(rq);
            return req_queue_error(rq);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t len = *upload_data_size;
        *upload_data_size = 0;
        if (rq->queued) return MHD_NO;
        mlreg_error_clear();
        return body(rq, upload_data, len);
    }
    if (rq->queued) return MHD_YES;
    mlreg_error_clear();
    return finish(rq);
}

/* Writes @p s into @p out with anything unprintable replaced, for the log. */
static void sanitize(char *out, size_t outlen, const char *s)
{
    size_t i = 0;
    for (; *s && i + 1 < outlen; s++)
        out[i++] = (*s < 0x20 || *s > 0x7e) ? '?' : *s;
    out[i] = '\0';
}

static void access_log(const request *rq, enum MHD_RequestTerminationCode toe)
{
    struct timespec now;
    double ms;
    char path[256];
    const char *note = "";

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (double)(now.tv_sec - rq->t0.tv_sec) * 1e3 + (double)(now.tv_nsec - rq->t0.tv_nsec) / 1e6;
    sanitize(path, sizeof(path), rq->path);
    if (toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT || toe == MHD_REQUEST_TERMINATED_READ_ERROR)
        note = " (client went away)";
    else if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        note = " (timeout)";
    else if (toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
        note = " (shutdown)";
    else if (toe == MHD_REQUEST_TERMINATED_WITH_ERROR)
        note = " (error)";
    fprintf(stderr, "mlreg: %s %s %u in=%llu out=%llu %.1fms%s\n", rq->method[0] ? rq->method : "-",
            path, rq->status, (unsigned long long)rq->req_bytes, (unsigned long long)rq->resp_bytes,
            ms, note);
}

/* Step 5: releases what the request still holds. A monolithic writer still
 * here means the body never completed (client gone, lying Content-Length,
 * truncated chunked body, shutdown) or the reply failed: it is aborted, so
 * nothing is committed. A claimed session is given back, or dropped when the
 * request was a PUT that did not commit or a write failed. Bytes a cut-short
 * PATCH appended stay in the session: the client learns the offset from the
 * status GET (or a 416 carrying Range) and resumes from there. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request *rq = *req_cls;
    mlreg_server *srv = cls;

    if (!rq) return;
    /* the connection may carry another request: its head has a deadline */
    conns_request_ended(srv->conns, conn);
    mlreg_blob_writer_abort(rq->writer);
    req_release_session(rq);
    if (rq->started) access_log(rq, toe);
    free(rq->mbuf);
    free(rq->name);
    free(rq->arg);
    free(rq->stage);
    free(rq->path);
    free(rq);
    *req_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    mlreg_server *srv = cls;
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_throttled(&srv->mhd_log, msg);
}

/* ---- daemon --------------------------------------------------------------- */

/* Descriptors one connection may hold at once: its socket, and a blob file
 * (a GET served by sendfile) or a socket to the object store. */
#define FDS_PER_CONNECTION 2
/* Descriptors kept for everything else: LMDB, the listening socket, logs,
 * config and key files read at runtime; plus FDS_PER_THREAD for each worker
 * thread's epoll and wake-up descriptors. */
#define FDS_RESERVED    64
#define FDS_PER_THREAD  2
#define MIN_CONNECTIONS 16
/* libmicrohttpd takes an unsigned int; past this the table scans cost more
 * than they protect. */
#define MAX_CONNECTIONS 1000000u

unsigned int mlreg_server_connection_budget(unsigned int threads)
{
    struct rlimit rl;
    uint64_t nofile, budget, reserved = FDS_RESERVED + (uint64_t)FDS_PER_THREAD * threads;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return MAX_CONNECTIONS;
    nofile = rl.rlim_cur;
    /* upload sessions keep a quarter of the descriptors (server_uploads.c) */
    budget = nofile - nofile / 4;
    budget = budget > reserved ? (budget - reserved) / FDS_PER_CONNECTION : 0;
    if (budget < MIN_CONNECTIONS) budget = MIN_CONNECTIONS;
    if (budget > MAX_CONNECTIONS) budget = MAX_CONNECTIONS;
    return (unsigned int)budget;
}

/* The options with every 0 replaced by its default; an explicit connection
 * limit over what the descriptors allow is refused, so the operator learns
 * it at start, not when accept() starts failing under load. */
static int resolve_limits(mlreg_server_opts *o, upload_limits *ul, const mlreg_server_opts *in)
{
    unsigned int budget;

    *o = *in;
    if (!o->threads) o->threads = MLREG_SERVER_DEFAULT_THREADS;
    budget = mlreg_server_connection_budget(o->threads);
    if (!o->max_connections) {
        /* a request head may fill a connection's whole memory pool while
         * it arrives: the default keeps that within about 1 GiB */
        o->max_connections = budget < MLREG_SERVER_DEFAULT_MAX_CONNECTIONS
                                 ? budget
                                 : MLREG_SERVER_DEFAULT_MAX_CONNECTIONS;
    } else if (o->max_connections > budget) {
        return mlreg_error_set(MLREG_EINVALID,
                               "limits.max_connections is %u but the open-file limit (ulimit -n, "
                               "LimitNOFILE= in systemd) leaves room for %u: raise the limit or "
                               "lower the setting",
                               o->max_connections, budget);
    }
    /* libmicrohttpd shares the limit among its worker threads */
    if (o->max_connections < o->threads) o->max_connections = o->threads;
    if (!o->max_connections_per_address)
        o->max_connections_per_address = MLREG_SERVER_DEFAULT_PER_ADDRESS;
    if (o->max_connections_per_address > o->max_connections)
        o->max_connections_per_address = o->max_connections;
    if (!o->header_timeout) o->header_timeout = MLREG_SERVER_DEFAULT_HEADER_TIMEOUT;
    if (!o->idle_timeout) o->idle_timeout = MLREG_SERVER_DEFAULT_IDLE_TIMEOUT;
    if (!o->body_timeout) o->body_timeout = MLREG_SERVER_DEFAULT_BODY_TIMEOUT;
    if (!o->max_upload_bytes) o->max_upload_bytes = MLREG_SERVER_DEFAULT_MAX_UPLOAD_BYTES;
    ul->per_identity = o->uploads_per_identity ? o->uploads_per_identity
                                               : MLREG_SERVER_DEFAULT_UPLOADS_PER_IDENTITY;
    ul->per_repository = o->uploads_per_repository ? o->uploads_per_repository
                                                   : MLREG_SERVER_DEFAULT_UPLOADS_PER_REPOSITORY;
    ul->idle_timeout =
        o->upload_idle_timeout ? o->upload_idle_timeout : MLREG_SERVER_DEFAULT_UPLOAD_IDLE;
    ul->max_bytes = o->max_upload_bytes;
    return 0;
}

int mlreg_server_start(mlreg_server **out, mlreg_registry *reg, const mlreg_server_opts *opts)
{
    int error = 0;
    mlreg_server *srv = NULL;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    const char *host = opts->host;
    const union MHD_DaemonInfo *info;
    mlreg_server_opts o;
    upload_limits ul;
    pthread_condattr_t cattr;

    if (sodium_init() < 0) {
        error = mlreg_error_set(MLREG_EIO, "libsodium initialisation failed");
        goto done;
    }
    if ((error = resolve_limits(&o, &ul, opts)) < 0) goto done;
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons(opts->port);
        sa = (struct sockaddr *)&sin;
    } else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(opts->port);
        sa = (struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    } else {
        error = mlreg_error_set(MLREG_EINVALID, "listen host '%s' is not a numeric address",
                                opts->host);
        goto done;
    }
    if (!(srv = calloc(1, sizeof(*srv)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if (pthread_condattr_init(&cattr) != 0) {
        free(srv);
        srv = NULL;
        error = mlreg_error_set(MLREG_ENOMEM, "cannot create the housekeeping condition");
        goto done;
    }
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&srv->housekeeper_lock, NULL) != 0 ||
        pthread_mutex_init(&srv->mhd_log.lock, NULL) != 0 ||
        pthread_cond_init(&srv->housekeeper_wake, &cattr) != 0) {
        pthread_condattr_destroy(&cattr);
        free(srv);
        srv = NULL;
        error = mlreg_error_set(MLREG_ENOMEM, "cannot create the housekeeping lock");
        goto done;
    }
    pthread_condattr_destroy(&cattr);
    srv->reg = reg;
    srv->max_manifest = mlreg_registry_max_manifest_bytes(reg);
    srv->max_upload_bytes = o.max_upload_bytes;
    srv->policy = opts->policy;
    srv->auth = opts->auth;
    if (!srv->policy) {
        if ((error = mlreg_policy_parse(&srv->own_policy, NULL, NULL, NULL)) < 0) goto done;
        srv->policy = srv->own_policy;
    }
    if (!srv->auth) {
        if ((error = mlreg_auth_new(&srv->own_auth, NULL, NULL, 0)) < 0) goto done;
        srv->auth = srv->own_auth;
    }
    srv->redirect_seconds = opts->redirect_seconds;
    if ((error = uploads_new(&srv->uploads, &ul)) < 0) goto done;
    if ((error = conns_new(&srv->conns, o.header_timeout, o.idle_timeout,
                           o.max_connections_per_address)) < 0)
        goto done;
    /* MHD's own timeout counts inactivity; it bounds bodies and replies.
     * Request heads are bounded by the deadlines of server_limits.c. */
    srv->daemon = MHD_start_daemon(
        flags, opts->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE, o.threads,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, conns_notify, srv->conns, MHD_OPTION_CONNECTION_TIMEOUT,
        o.body_timeout, MHD_OPTION_CONNECTION_LIMIT, o.max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_END);
    if (!srv->daemon) {
        error = mlreg_error_set(MLREG_EIO, "cannot listen on %s port %u", opts->host,
                                (unsigned int)opts->port);
        goto done;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        error = mlreg_error_set(MLREG_EIO, "cannot read the bound port");
        goto done;
    }
    srv->port = info->port;
    if ((error = housekeeper_start(srv)) < 0) goto done;
    fprintf(stderr,
            "mlreg: at most %u connections, %u per client address; request heads within %us "
            "(%us between requests), bodies and replies stall at most %us\n",
            o.max_connections, o.max_connections_per_address, o.header_timeout, o.idle_timeout,
            o.body_timeout);
    *out = srv;
    srv = NULL;
done:
    mlreg_server_stop(srv);
    return error;
}

uint16_t mlreg_server_port(const mlreg_server *srv)
{
    return srv->port;
}

void mlreg_server_stop(mlreg_server *srv)
{
    if (!srv) return;
    housekeeper_stop(srv);
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    conns_free(srv->conns);
    pthread_cond_destroy(&srv->housekeeper_wake);
    pthread_mutex_destroy(&srv->housekeeper_lock);
    pthread_mutex_destroy(&srv->mhd_log.lock);
    uploads_free(srv->uploads);
    mlreg_policy_free(srv->own_policy);
    mlreg_auth_free(srv->own_auth);
    free(srv);
}
