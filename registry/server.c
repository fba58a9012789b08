/* server.c: the libmicrohttpd daemon and the life of a request. It knows
 * no endpoint: it matches a request against the route tables
 * (server_routes.c), then applies the row: method (405 with Allow), role,
 * body framing and limits, and the row's callbacks. The rows and their
 * handlers live in server_oci.c and server_oci_uploads.c (/v2/),
 * server_api.c (/api/v1/) and server_audit.c (the audit log,
 * attestations); request and reply helpers
 * in server_http.c; upload sessions in server_uploads.c; the error table in
 * server_errors.c. See server_internal.h for the request life cycle.
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
#include "mlreg/gc.h"
#include "server_routes.h"

/* TLS 1.2 and 1.3 only, GnuTLS's secure defaults otherwise. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Per-connection buffer; body chunks arrive in pieces of about this size. */
#define CONNECTION_MEMORY MLREG_SERVER_CONNECTION_MEMORY

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
    const char *cl = mlreg_server__req_header(rq, "Content-Length");
    const char *te = mlreg_server__req_header(rq, "Transfer-Encoding");

    if (cl) {
        /* libmicrohttpd has validated the value already */
        rq->has_length = 1;
        rq->content_length = strtoull(cl, NULL, 10);
    }
    rq->has_body = (cl && rq->content_length > 0) || te != NULL;
}

/* ---- step 2: route, check, set up the body -------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

static int take(char **out, const route_span *span)
{
    if (span->p == NULL) return 0;
    if (!(*out = strndup(span->p, span->len)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

/* Matches the request against the route tables and takes the path's
 * captures: a bad name is an error (returned), a bad version is recorded
 * and answered after the method check. 0 also when nothing matched
 * (rq->route stays NULL; *allow_out 0). */
static int route(unsigned int *allow_out, request *rq)
{
    route_match m;
    int error, found;

    *allow_out = 0;
    if ((found = mlreg_server__route_match(&m, rq->path, rq->method)) <= 0) return found;
    /* a Hub row answers its errors, a bad name's too, in the Hub's shape */
    if (m.row && m.row->ctx == ERR_CTX_HF) rq->ctx = ERR_CTX_HF;
    if (m.name.p) {
        if ((error = take(&rq->name, &m.name)) < 0) return error;
        if (m.name.len == 0) return mlreg_error_set(MLREG_EINVALID, "empty repository name");
        if ((error = mlreg_name_validate(rq->name)) < 0) return error;
    }
    if ((error = take(&rq->arg, &m.arg)) < 0 || (error = take(&rq->stage, &m.stage)) < 0 ||
        (error = take(&rq->file, &m.path)) < 0)
        return error;
    if (m.arg_is_version && (error = mlreg_tag_validate(rq->arg)) < 0)
        mlreg_server__req_fail(rq, error, ERR_CTX_RELEASE);
    *allow_out = m.allow;
    rq->route = m.row;
    if (m.row) rq->ctx = m.row->ctx;
    return 0;
}

/* Authentication, then the role the row asks for (server_routes.h). A
 * failure here is answered before any body byte is read, so nothing is
 * stored. */
static void authorize(request *rq)
{
    mlreg_server *srv = rq->srv;
    int error;

    if (rq->route->access == ROUTE_ACCESS_PUBLIC ||
        (rq->route->access == ROUTE_ACCESS_METRICS && srv->metrics_public))
        return;
    /* the config's tokens first, then those made at runtime (tokens.h);
     * the Hub's routes take those as "hf_mlreg_..." too, the form the Hub
     * clients want */
    error =
        (rq->route->ctx == ERR_CTX_HF ? mlreg_auth_authenticate_hub : mlreg_auth_authenticate_with)(
            &rq->who, &rq->who_owned, rq->conf->auth, mlreg_server__req_header(rq, "Authorization"),
            mlreg_tokens_lookup, mlreg_registry_tokens(srv->reg));
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_ANY);
        mlreg_server__req_fail_header(rq, "WWW-Authenticate", "Basic realm=\"mlreg\"");
        return;
    }
    if ((error = mlreg_server__route_access(rq->route, rq->who, rq->conf->policy, rq->name,
                                            rq->stage)) < 0)
        mlreg_server__req_fail(rq, error, ERR_CTX_ANY);
}

/* A buffered body (JSON, manifest): a declared length over the limit is
 * refused before a byte is read; a chunked body is cut at the limit in
 * body(). */
static void buffer_begin(request *rq)
{
    int json = rq->route->body == ROUTE_BODY_JSON;

    rq->buf_limit = json ? API_JSON_MAX : rq->srv->max_manifest;
    rq->buf_what = json ? "request body" : "manifest";
    if (rq->has_length && rq->content_length > rq->buf_limit) {
        mlreg_error_set(MLREG_ETOOBIG, "%s of %" PRIu64 " bytes is over the limit of %zu",
                        rq->buf_what, rq->content_length, rq->buf_limit);
        mlreg_server__req_fail(rq, MLREG_ETOOBIG, rq->ctx);
        return;
    }
    rq->body = BODY_BUFFER;
}

/* Whether raw @p path is one of the Hugging Face reads' (server_hf.c),
 * whatever the method: 1 with *m its match, or 0. */
static int hub_path(route_match *m, const char *path)
{
    /* the Hub's rows are GET (and HEAD) ones, and paths-info's POST */
    if ((mlreg_server__route_match(m, path, "GET") != 1 || m->row == NULL) &&
        (mlreg_server__route_match(m, path, "POST") != 1 || m->row == NULL)) {
        mlreg_error_clear();
        return 0;
    }
    if (m->row->ctx != ERR_CTX_HF || m->name.p == NULL) return 0;
    return 1;
}

static int span_has(const route_span *s, int (*bad)(const char *p, size_t len))
{
    return s->p != NULL && bad(s->p, s->len);
}

static int has_percent(const char *p, size_t len)
{
    return memchr(p, '%', len) != NULL;
}

/* Whether p[0..len) has a "." or ".." segment. */
static int has_dot_segment(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        size_t n = 0;
        if (i > 0 && p[i - 1] != '/') continue;
        while (i + n < len && p[i + n] == '.')
            n++;
        if ((n == 1 || n == 2) && (i + n == len || p[i + n] == '/')) return 1;
    }
    return 0;
}

/* Refuses a Hugging Face read before routing, as the Hub answers: 404 and
 * the X-Error-Code of the part of the path @p bad finds in (the model
 * name: RepoNotFound; the revision: RevisionNotFound; else EntryNotFound),
 * so the clients raise their own exception. */
static void hub_refuse(request *rq, const route_match *m, int (*bad)(const char *p, size_t len),
                       const char *why)
{
    const char *code = span_has(&m->name, bad)  ? "RepoNotFound"
                       : span_has(&m->arg, bad) ? "RevisionNotFound"
                                                : "EntryNotFound";

    mlreg_server__req_fail_raw(rq, 404, code, "%s", why);
}

/* Step 2: everything that can be decided from the request line and headers. */
static void begin(request *rq)
{
    const char *p = rq->path;
    unsigned int allow = 0;
    route_match hm;
    int error, hub = 0, dots;

    read_body_headers(rq);
    if (rq->srv->tls_mutual && (error = mlreg_server__tls_peer_check(rq->conn)) < 0) {
        /* nothing from this connection is served: close it after the answer */
        rq->close_conn = 1;
        mlreg_server__req_fail(rq, error, ERR_CTX_ANY);
        return;
    }
    /* without a Content-Length or Transfer-Encoding (most GETs) there is
     * nothing to count */
    if ((rq->has_length || rq->has_body) && framing_ambiguous(rq)) {
        rq->close_conn = 1;
        mlreg_server__req_fail_raw(
            rq, 400, "UNSUPPORTED",
            "the request has several Content-Length or Transfer-Encoding headers, or "
            "both: its length is ambiguous");
        return;
    }
    /* a Hugging Face read is refused as the Hub refuses; the tables are
     * searched for that only when a path is refused here (hub_path()) */
    dots = strstr(p, "/../") || strstr(p, "/./") || ends_with(p, "/..") || ends_with(p, "/.");
    if ((strchr(p, '%') || dots) && (hub = hub_path(&hm, p))) rq->ctx = ERR_CTX_HF;
    /* percent-encoding: only in the revision and file path of a Hugging
     * Face read, which the Hub clients encode (server_hf.c decodes and
     * checks them), never in a name nor elsewhere */
    if (strchr(p, '%') && (!hub || span_has(&hm.name, has_percent))) {
        if (hub)
            hub_refuse(rq, &hm, has_percent, "percent-encoding is not accepted in a model name");
        else
            mlreg_server__req_fail_raw(rq, 400, "NAME_INVALID",
                                       "percent-encoded paths are not accepted");
        return;
    }
    if (dots) {
        if (hub)
            hub_refuse(rq, &hm, has_dot_segment, "dot segments are not accepted in paths");
        else
            mlreg_server__req_fail_raw(rq, 400, "NAME_INVALID",
                                       "dot segments are not accepted in paths");
        return;
    }
    if ((error = route(&allow, rq)) < 0) {
        if (error == MLREG_EINVALID && rq->ctx == ERR_CTX_HF) {
            /* a name mlreg never holds: no such repository */
            mlreg_server__req_fail_raw(rq, 404, "RepoNotFound", "%s", mlreg_error_last());
            mlreg_error_clear();
        } else {
            mlreg_server__req_fail(rq, error, ERR_CTX_NAME);
        }
        return;
    }
    if (allow == 0) {
        mlreg_server__req_fail_raw(rq, 404, "NAME_UNKNOWN", "no route for %s %s", rq->method, p);
        return;
    }
    if (rq->route == NULL) {
        char methods[64];
        if (hub_path(&hm, p)) rq->ctx = ERR_CTX_HF; /* the Hub's shape */
        mlreg_server__route_allow(methods, sizeof(methods), allow);
        mlreg_server__req_fail_raw(rq, 405, "UNSUPPORTED", "method %s not allowed here",
                                   rq->method);
        mlreg_server__req_fail_header(rq, "Allow", "%s", methods);
        return;
    }
    if (rq->has_body &&
        (rq->route->body == ROUTE_BODY_NONE || rq->route->body == ROUTE_BODY_UNSET)) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "%s %s takes no request body",
                                   rq->method, p);
        return;
    }
    if (rq->failed) return;
    authorize(rq);
    if (rq->failed) return;
    if (rq->stage && mlreg_policy_stage_index(rq->conf->policy, rq->stage) < 0) {
        mlreg_server__req_fail_raw(rq, 400, "STAGE_UNKNOWN", "unknown stage '%.128s'", rq->stage);
        return;
    }
    if (rq->route->begin) rq->route->begin(rq);
    if (!rq->failed &&
        (rq->route->body == ROUTE_BODY_JSON || rq->route->body == ROUTE_BODY_MANIFEST))
        buffer_begin(rq);
}

/* ---- step 3: the body ----------------------------------------------------- */

/* One piece of the request body. Returns MHD_NO to drop the connection
 * (only after an error, when the rest is too large to read). */
static enum MHD_Result body(request *rq, const char *data, size_t len)
{
    rq->req_bytes += len;
    switch (rq->body) {
    case BODY_STREAM: return rq->route->on_body(rq, data, len);
    case BODY_FORWARD: return mlreg_server__forward_body(rq, data, len);
    case BODY_BUFFER:
        if (len > rq->buf_limit - rq->mlen) {
            mlreg_error_set(MLREG_ETOOBIG, "%s larger than the limit of %zu bytes", rq->buf_what,
                            rq->buf_limit);
            mlreg_server__req_fail(rq, MLREG_ETOOBIG, rq->ctx);
            free(rq->mbuf);
            rq->mbuf = NULL;
            rq->mlen = rq->mcap = 0;
            mlreg_server__req_discard(rq);
            return MHD_YES;
        }
        if (rq->mlen + len + 1 > rq->mcap) {
            size_t cap = rq->mcap ? rq->mcap : 4096;
            char *nb;
            while (cap < rq->mlen + len + 1)
                cap *= 2;
            if (cap > rq->buf_limit + 1) cap = rq->buf_limit + 1;
            if (!(nb = realloc(rq->mbuf, cap))) return MHD_NO;
            rq->mbuf = nb;
            rq->mcap = cap;
        }
        memcpy(rq->mbuf + rq->mlen, data, len);
        rq->mlen += len;
        rq->mbuf[rq->mlen] = '\0';
        return MHD_YES;
    case BODY_DISCARD:
        if (len > rq->discard_left) return MHD_NO;
        rq->discard_left -= len;
        return MHD_YES;
    case BODY_NONE: break;
    }
    /* a body where none was expected (checked in begin(), so only a chunked
     * request that announced none): refuse it */
    mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "unexpected request body");
    mlreg_server__req_discard(rq);
    return MHD_YES;
}

/* ---- step 4: the reply ---------------------------------------------------- */

static enum MHD_Result finish(request *rq)
{
    if (rq->failed) {
        mlreg_server__req_release_session(rq);
        return mlreg_server__req_queue_error(rq);
    }
    if (rq->fwd != NULL) return mlreg_server__forward_finish(rq);
    return rq->route->finish(rq);
}

/* Step 1: called once per request with the raw URI, before unescaping. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    return mlreg_server__req_new(cls, uri);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    request *rq = *req_cls;
    (void)version;

    if (!rq) {
        /* on_uri failed to allocate; the unescaped url is all we have */
        if (!(rq = mlreg_server__req_new(cls, url))) return MHD_NO;
        *req_cls = rq;
    }
    if (!rq->started) {
        rq->started = 1;
        rq->conn = conn;
        if (mlreg_server__conns_head_received(conn) < 0)
            return MHD_NO; /* over the per-address limit */
        snprintf(rq->method, sizeof(rq->method), "%s", method);
        mlreg_server__req_identify(rq);
        mlreg_error_clear();
        begin(rq);
        /* An error on a request with a body is answered now, so the body is
         * never read; a bodiless request waits for the second call (a reply
         * queued on the first call costs the keep-alive), unless the
         * connection is to be closed anyway. */
        if (rq->failed && (rq->has_body || rq->close_conn)) {
            mlreg_server__req_release_session(rq);
            return mlreg_server__req_queue_error(rq);
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

/* Step 5: releases what the request still holds (see
 * mlreg_server__req_free()) before the access-log line is written, then
 * frees it. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request *rq = *req_cls;
    mlreg_server *srv = cls;

    if (!rq) return;
    /* the connection may carry another request: its head has a deadline */
    mlreg_server__conns_request_ended(srv->conns, conn);
    mlreg_blob_writer_abort(rq->writer);
    rq->writer = NULL;
    mlreg_server__req_release_session(rq);
    if (rq->started) {
        mlreg_server__metrics_request(srv->metrics, rq);
        mlreg_server__req_log(rq, toe);
    }
    mlreg_server__req_free(rq);
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
    mlreg_server__log_throttled(&srv->mhd_log, msg);
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
    mlreg_server__upload_limits(ul, o->uploads_per_identity, o->uploads_per_repository,
                                o->upload_idle_timeout, o->max_upload_bytes);
    return 0;
}

int mlreg_server_start(mlreg_server **out, mlreg_registry *reg, const mlreg_server_opts *opts)
{
    int error = 0;
    mlreg_server *srv = NULL;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    /* suspend/resume: long-polls of GET /api/v1/events wait without a thread */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                         MHD_ALLOW_SUSPEND_RESUME;
    const char *host = opts->host;
    const union MHD_DaemonInfo *info;
    mlreg_server_opts o;
    upload_limits ul;
    pthread_condattr_t cattr;

    if (opts->tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        error = mlreg_error_set(MLREG_EUNSUPPORTED,
                                "tls.cert_file is set but this libmicrohttpd was built without "
                                "TLS support (MHD_FEATURE_TLS): install a libmicrohttpd linked "
                                "with GnuTLS, or terminate TLS in a proxy (docs/operations.md)");
        goto done;
    }
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
    /* the deliveries are the server's once it starts (server.h) */
    srv->events = opts->events;
    if (pthread_mutex_init(&srv->events_lock, NULL) != 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "cannot create the events lock");
        goto done;
    }
    srv->events_lock_init = 1;
    if ((opts->events_dir != NULL && !(srv->events_dir = strdup(opts->events_dir))) ||
        (opts->peer_ca_file != NULL && !(srv->peer_ca_file = strdup(opts->peer_ca_file)))) {
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
    if (!opts->policy && (error = mlreg_policy_parse(&srv->own_policy, NULL, NULL, NULL)) < 0)
        goto done;
    if (!opts->auth && (error = mlreg_auth_new(&srv->own_auth, NULL, NULL, 0)) < 0) goto done;
    snprintf(srv->host, sizeof(srv->host), "%s", opts->host);
    srv->redirect_seconds = opts->redirect_seconds;
    srv->gc_grace = opts->gc_grace_seconds;
    srv->gc_stale = opts->gc_stale_upload_seconds ? opts->gc_stale_upload_seconds
                                                  : MLREG_GC_STALE_UPLOAD_DEFAULT;
    srv->gc_interval = opts->gc_interval_seconds;
    srv->retention = opts->retention;
    srv->n_retention = opts->retention ? opts->n_retention : 0;
    srv->scrub_interval = opts->scrub_interval_seconds;
    srv->scrub_rate = opts->scrub_rate_bytes_per_second;
    srv->body_timeout = o.body_timeout;
    srv->tls = opts->tls != NULL;
    srv->tls_mutual = opts->tls && mlreg_server__tls_client_ca(opts->tls) != NULL;
    srv->insecure_http = opts->insecure_http && !srv->tls;
    srv->log_json = opts->log_format == MLREG_SERVER_LOG_JSON;
    srv->ready_max_lag =
        opts->ready_max_lag ? opts->ready_max_lag : MLREG_SERVER_DEFAULT_READY_MAX_LAG;
    srv->metrics_public = opts->metrics_public;
    if ((error = mlreg_server__metrics_new(&srv->metrics)) < 0) goto done;
    if ((error = mlreg_server__polls_start(srv, opts->event_source)) < 0) goto done;
    if ((error = mlreg_server__uploads_new(&srv->uploads, &ul)) < 0) goto done;
    if (mlreg_registry_cluster(reg) != NULL) {
        char tag[MLREG_CLUSTER_TAG_LEN + 1];
        mlreg_cluster_node_tag(tag, mlreg_cluster_node_id(mlreg_registry_cluster(reg)));
        mlreg_server__uploads_set_tag(srv->uploads, tag);
    }
    if ((error = mlreg_server__conns_new(&srv->conns, o.header_timeout, o.idle_timeout,
                                         o.max_connections_per_address)) < 0)
        goto done;
    mlreg_server__conns_set_owner(srv->conns, srv);
    if ((error = mlreg_server__conf_init(srv, opts, &ul, o.max_upload_bytes, opts->tls)) < 0)
        goto done;
    /* MHD's own timeout counts inactivity; it bounds bodies and replies.
     * Request heads are bounded by the deadlines of server_limits.c. */
    {
        /* TLS options go first in the array; without TLS the array starts
         * at the end marker. The certificate and key are not handed to
         * libmicrohttpd: every handshake asks the callback, which answers
         * with the credentials of the config in force, so a reload replaces
         * them (mlreg_server__conf_init() parsed them; the PEM key is wiped
         * right after). */
        struct MHD_OptionItem tls_opts[] = {
            {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, NULL},
            {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)(uintptr_t)TLS_PRIORITIES},
            {MHD_OPTION_END, 0, NULL}, /* the trust list of mutual TLS, when set */
            {MHD_OPTION_END, 0, NULL}};
        struct MHD_OptionItem *tls_first = &tls_opts[3];
        if (opts->tls) {
            flags |= MHD_USE_TLS;
            tls_opts[0].ptr_value = (void *)(uintptr_t)mlreg_server__tls_cert_callback;
            if (srv->tls_mutual) {
                tls_opts[2].option = MHD_OPTION_HTTPS_MEM_TRUST;
                tls_opts[2].ptr_value = (void *)(uintptr_t)mlreg_server__tls_client_ca(opts->tls);
            }
            tls_first = &tls_opts[0];
        }
        srv->daemon = MHD_start_daemon(
            flags, opts->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
            srv, MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE, o.threads,
            MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            srv, MHD_OPTION_NOTIFY_CONNECTION, mlreg_server__conns_notify, srv->conns,
            MHD_OPTION_CONNECTION_TIMEOUT, o.body_timeout, MHD_OPTION_CONNECTION_LIMIT,
            o.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
            MHD_OPTION_ARRAY, tls_first, MHD_OPTION_END);
        mlreg_server_tls_wipe_key(opts->tls);
    }
    if (!srv->daemon) {
        if (opts->tls)
            error = mlreg_error_set(MLREG_EIO,
                                    "cannot listen with TLS on %s port %u (the address is in use, "
                                    "or GnuTLS refused the certificate or key: see the line "
                                    "above)",
                                    opts->host, (unsigned int)opts->port);
        else
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
    if ((error = mlreg_server__housekeeper_start(srv)) < 0) goto done;
    fprintf(stderr,
            "mlreg: at most %u connections, %u per client address; request heads within %us "
            "(%us between requests), bodies and replies stall at most %us\n",
            o.max_connections, o.max_connections_per_address, o.header_timeout, o.idle_timeout,
            o.body_timeout);
    *out = srv;
    srv = NULL;
done:
    if (srv) srv->events = NULL; /* a failed start leaves them to the caller */
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
    mlreg_server__housekeeper_stop(srv);
    mlreg_server__polls_stop(srv); /* waiting long-polls answer before the daemon stops */
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    mlreg_server__polls_free(srv);
    free(srv->event_source);
    mlreg_server__events_fini(srv); /* no request reads their counters any more */
    free(srv->peer_ca_file);
    mlreg_server__conf_fini(srv);
    mlreg_server__conns_free(srv->conns);
    mlreg_server__metrics_free(srv->metrics);
    pthread_cond_destroy(&srv->housekeeper_wake);
    pthread_mutex_destroy(&srv->housekeeper_lock);
    pthread_mutex_destroy(&srv->mhd_log.lock);
    mlreg_server__uploads_free(srv->uploads);
    mlreg_policy_free(srv->own_policy);
    mlreg_auth_free(srv->own_auth);
    free(srv);
}
