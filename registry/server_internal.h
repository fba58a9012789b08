/* server_internal.h: shared between the server's files (server.c,
 * server_oci.c, server_api.c, server_audit.c, server_uploads.c,
 * server_errors.c). No other module includes it.
 *
 * Life of a request (libmicrohttpd 0.9.75):
 *   1. uri_log callback: allocates `request` (becomes *req_cls) with the raw
 *      URI, before any unescaping, so percent-encoded paths can be refused.
 *   2. first access-handler call (headers only): route, validate, set up body
 *      handling (open a blob writer, claim an upload session). An error found
 *      here on a request that carries a body is answered at once (the body is
 *      never read and libmicrohttpd closes the connection); on a bodiless
 *      request it is kept for step 4, so keep-alive survives.
 *   3. body calls: bytes go straight to the writer, or into the manifest
 *      buffer up to the size limit. Nothing is accumulated otherwise.
 *   4. final call (*upload_data_size == 0): commit / look up, queue the reply.
 *   5. completion callback: whatever step 4 did not consume (a writer of a
 *      request cut short, a claimed session) is aborted or released; the
 *      access-log line is written; `request` is freed.
 */
#ifndef MLREG_SERVER_INTERNAL_H
#define MLREG_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "mlreg/auth.h"
#include "mlreg/blob.h"
#include "mlreg/gates.h"
#include "mlreg/digest.h"
#include "mlreg/registry.h"
#include "mlreg/server.h"

/* ---- error table (server_errors.c) --------------------------------------- */

/** What a request was about when an MLREG_E* code came back; the same code
 *  maps to different OCI codes (ENOTFOUND: BLOB_UNKNOWN, MANIFEST_UNKNOWN...). */
typedef enum {
    ERR_CTX_ANY = 0,
    ERR_CTX_NAME,
    ERR_CTX_DIGEST,
    ERR_CTX_BLOB,
    ERR_CTX_UPLOAD,
    ERR_CTX_MANIFEST,
    ERR_CTX_TAGS,
    ERR_CTX_MODEL,
    ERR_CTX_RELEASE,
    ERR_CTX_SIGNATURE, /* attaching or listing release signatures */
    ERR_CTX_KEY,       /* the trusted keyring */
    ERR_CTX_STAGE,     /* what a stage holds (ENOTFOUND: STAGE_EMPTY) */
    ERR_CTX_PROMOTION  /* promotions (EGATE: GATE_FAILED) */
} err_ctx;

/** Looks up the HTTP status and OCI error code for @p code in context @p ctx. */
void http_error_map(unsigned int *status_out, const char **oci_code_out, int code, err_ctx ctx);
/** The message a client gets instead of the detailed one for a 5xx @p status
 *  (static text), or NULL for a status below 500, whose message is sent as is. */
const char *http_error_public_message(unsigned int status);

/* ---- upload sessions (server_uploads.c) ---------------------------------- */

/* One in-progress upload. `writer`, `repo` and `owner` are owned by the
 * session. `busy` (table mutex) marks the single request allowed to use the
 * session; that request may then touch `writer` and `offset` without the
 * mutex, except that it updates `offset` under the mutex so status GETs read
 * it safely. */
typedef struct upload_session {
    char uuid[37];
    char *repo;
    char *owner; /* the identity that opened it: only it may use the session */
    mlreg_blob_writer *writer;
    uint64_t offset;
    int busy;
    time_t touched;
    struct upload_session *next;
} upload_session;

typedef struct upload_table upload_table;

/** Quotas of the upload table (mlreg_server_opts, resolved: no zeros). */
typedef struct {
    size_t per_identity;       /* sessions one identity may hold */
    size_t per_repository;     /* sessions one repository may have */
    unsigned int idle_timeout; /* seconds unused before a session is dropped */
    uint64_t max_bytes;        /* bytes one session may receive */
} upload_limits;

/** Creates an empty table with @p lim. 0 or MLREG_ENOMEM. */
int uploads_new(upload_table **out, const upload_limits *lim);
/** Aborts every session's writer and frees the table; NULL is a no-op. */
void uploads_free(upload_table *t);
/** Opens a writer and registers a new session of @p owner for @p repo,
 *  already claimed (busy) by the caller. 0; MLREG_EQUOTA when @p owner, the
 *  repository or the server holds as many sessions as allowed
 *  (*retry_after_out: seconds until one of them can expire, at least 1); or
 *  the error of opening the writer. */
int uploads_create(upload_session **out, unsigned int *retry_after_out, upload_table *t,
                   mlreg_blobstore *store, const char *repo, const char *owner);
/** Claims session @p uuid of @p repo opened by @p owner. 0, MLREG_ENOTFOUND
 *  (also when another identity opened it), MLREG_ERANGE (busy). */
int uploads_acquire(upload_session **out, upload_table *t, const char *repo, const char *uuid,
                    const char *owner);
/** Reads the offset of session @p uuid of @p repo opened by @p owner.
 *  0 or MLREG_ENOTFOUND. */
int uploads_offset(uint64_t *offset_out, upload_table *t, const char *repo, const char *uuid,
                   const char *owner);
/** Whether an upload holding @p have bytes may take @p more under the
 *  largest-blob limit @p max (limits.max_upload_bytes), without overflow:
 *  0 or MLREG_ETOOBIG naming the limit. Every upload path checks with it. */
int upload_room(uint64_t max, uint64_t have, uint64_t more);
/** upload_room() for claimed session @p s. */
int uploads_check_room(const upload_table *t, const upload_session *s, uint64_t more);
/** Appends to a claimed session's writer and advances its offset;
 *  MLREG_ETOOBIG past the session size limit (nothing written). */
int uploads_write(upload_table *t, upload_session *s, const void *data, size_t len);
/** Gives a claimed session back. */
void uploads_release(upload_table *t, upload_session *s);
/** Unregisters and frees a claimed session, aborting its writer if it still
 *  has one (set s->writer = NULL first when the writer was committed). */
void uploads_remove(upload_table *t, upload_session *s);
/** Drops every unclaimed session idle for longer than the idle timeout,
 *  aborting its writer (the temp file goes). Returns how many went. */
size_t uploads_expire(upload_table *t);

/* ---- connection deadlines and housekeeping (server_limits.c) ------------- */

typedef struct conn_table conn_table;

/** Creates the table of open connections, at most @p per_address from
 *  one client address (conns_address_key()). 0 or MLREG_ENOMEM. */
int conns_new(conn_table **out, unsigned int header_timeout, unsigned int idle_timeout,
              unsigned int per_address);
/** The key connections are counted under: 4 and the IPv4 address (also
 *  for an IPv4-mapped IPv6 address), or 6 and the IPv6 /64, zero-padded to
 *  9 bytes. 0, or -1 for another family (such a connection is not counted). */
int conns_address_key(unsigned char key[9], const struct sockaddr *sa);
/** Frees @p t (after the daemon has stopped); NULL is a no-op. */
void conns_free(conn_table *t);
/** MHD_OPTION_NOTIFY_CONNECTION callback (@p cls: the conn_table): a new
 *  connection gets the header deadline; a closed one leaves the table. */
void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode code);
/** A request's line and headers have arrived: no deadline while it runs
 *  (its body and reply are bounded by the daemon's inactivity timeout).
 *  0, or -1 when the connection is over its address's limit: the request
 *  must not run (close the connection). */
int conns_head_received(struct MHD_Connection *conn);
/** A request has ended and the connection may carry another: the next
 *  request head must be complete within the idle timeout. */
void conns_request_ended(conn_table *t, struct MHD_Connection *conn);
/** Shuts down every connection past its deadline (libmicrohttpd then sees
 *  the socket close and frees it). Returns how many. */
size_t conns_close_overdue(conn_table *t);

/* Messages of libmicrohttpd about hostile traffic (a connection over the
 * limit, a client gone mid-request) come once per connection: under attack
 * that is thousands of identical lines a second. Each distinct message is
 * printed at most once a second, with a count of the ones held back. */
#define LOG_THROTTLE_SLOTS 8
typedef struct {
    pthread_mutex_t lock;
    struct {
        char msg[160];
        time_t second;     /* when it was last printed */
        unsigned int held; /* held back since */
    } slot[LOG_THROTTLE_SLOTS];
    unsigned int next; /* slot to reuse next */
} log_throttle;

/** Prints "mlreg: http: @p msg" to stderr unless the same message was
 *  printed this second (then it is counted and reported with the next one
 *  printed). */
void log_throttled(log_throttle *lt, const char *msg);

/** One housekeeping thread's work: @c job every @c every_ms. */
typedef struct {
    mlreg_server *srv;
    unsigned int every_ms;
    void (*job)(mlreg_server *srv);
} housekeeping_job;

/** Starts the two housekeeping threads: one closes overdue connections
 *  (srv->conns), the other expires idle upload sessions (srv->uploads).
 *  They are apart because dropping a session may wait on the object store
 *  (aborting a multipart upload), and the deadlines must hold meanwhile.
 *  0 or MLREG_EIO. */
int housekeeper_start(mlreg_server *srv);
/** Stops and joins those threads; no-op for threads not running. */
void housekeeper_stop(mlreg_server *srv);

/* ---- server and requests (server.c) -------------------------------------- */

struct mlreg_server {
    struct MHD_Daemon *daemon;
    mlreg_registry *reg;
    upload_table *uploads;
    conn_table *conns;
    log_throttle mhd_log;      /* libmicrohttpd's messages (lock: mhd_log.lock) */
    uint64_t max_upload_bytes; /* largest blob one upload may carry */
    pthread_t housekeeper[2];  /* see housekeeper_start() */
    housekeeping_job housekeeping[2];
    int housekeepers;     /* how many of them run */
    int housekeeper_stop; /* under housekeeper_lock */
    pthread_mutex_t housekeeper_lock;
    pthread_cond_t housekeeper_wake;
    size_t max_manifest;
    uint16_t port;
    unsigned int redirect_seconds; /* 0: serve blob bytes; else 307 to the backend */
    const mlreg_policy *policy;    /* opts->policy or own_policy */
    const mlreg_auth *auth;        /* opts->auth or own_auth */
    mlreg_policy *own_policy;      /* defaults when the caller gave none */
    mlreg_auth *own_auth;
};

typedef enum {
    ROUTE_NONE = 0,
    ROUTE_V2_BASE,
    ROUTE_BLOB,
    ROUTE_UPLOAD_START,
    ROUTE_UPLOAD,
    ROUTE_MANIFEST,
    ROUTE_TAGS,
    ROUTE_REFERRERS,
    ROUTE_API_HEALTH,
    ROUTE_API_MODELS,
    ROUTE_API_MODEL,
    ROUTE_API_RELEASE,
    ROUTE_API_SIGNATURES,       /* models/<name>/versions/<version>/signatures */
    ROUTE_API_KEYS,             /* keys */
    ROUTE_API_KEY_EVENTS,       /* keys/events */
    ROUTE_API_KEY_REVOKE,       /* keys/<KEYID>/revoke */
    ROUTE_API_PROMOTIONS,       /* models/<name>/promotions */
    ROUTE_API_STAGES,           /* models/<name>/stages */
    ROUTE_API_STAGE,            /* models/<name>/stages/<stage> */
    ROUTE_API_STAGE_HISTORY,    /* models/<name>/stages/<stage>/history */
    ROUTE_API_ROLLBACK,         /* models/<name>/stages/<stage>/rollback */
    ROUTE_API_APPROVALS,        /* models/<name>/versions/<version>/approvals */
    ROUTE_API_IMAGES,           /* models/<name>/versions/<version>/images */
    ROUTE_API_ATTESTATIONS,     /* models/<name>/versions/<version>/attestations */
    ROUTE_API_AUDIT,            /* audit?since=&limit= */
    ROUTE_API_AUDIT_KEY,        /* audit/key */
    ROUTE_API_AUDIT_CHECKPOINT, /* audit/checkpoint */
    ROUTE_API_AUDIT_INCLUSION,  /* audit/proof/inclusion?seq=&size= */
    ROUTE_API_AUDIT_CONSISTENCY /* audit/proof/consistency?from=&to= */
} route_id;

/** Largest JSON request body of the /api/v1/ routes; larger is 413. */
#define API_JSON_MAX (64u * 1024)

typedef enum {
    BODY_NONE = 0, /* no body expected */
    BODY_WRITER,   /* monolithic POST: into rq->writer */
    BODY_SESSION,  /* PATCH / PUT: into rq->sess->writer */
    BODY_MANIFEST, /* into rq->mbuf, up to the limit */
    BODY_JSON,     /* /api/v1/ POST: into rq->mbuf, up to API_JSON_MAX */
    BODY_DISCARD   /* an error happened mid-body: drop the rest */
} body_mode;

typedef struct request {
    mlreg_server *srv;
    struct MHD_Connection *conn;
    char *path; /* raw path, before any unescaping, without the query */
    char method[12];
    int started;    /* the access handler has seen this request */
    int queued;     /* a response is queued */
    int has_body;   /* Content-Length > 0 or Transfer-Encoding */
    int close_conn; /* the reply closes the connection (ambiguous framing) */
    int has_length;
    uint64_t content_length;
    struct timespec t0;
    unsigned int status;
    uint64_t resp_bytes;
    uint64_t req_bytes;

    route_id route;
    char *name;                /* repository / model name (validated) */
    char *arg;                 /* digest, reference, upload uuid or version */
    char *stage;               /* the stage of the stage routes (validated against the config) */
    const mlreg_identity *who; /* the authenticated identity (set before any route runs) */

    /* deferred error, answered at the final call */
    int failed;
    unsigned int err_status;
    const char *err_code;
    char err_msg[256];
    struct {
        const char *name; /* static string or NULL */
        char value[200];
    } err_hdr[2]; /* extra headers of the error reply (Allow, Range...) */

    body_mode body;
    mlreg_blob_writer *writer; /* monolithic upload, owned until commit */
    upload_session *sess;      /* claimed session, released at completion */
    int sess_drop;             /* completion removes (aborts) the session */
    uint64_t expect_len;       /* PATCH/PUT with Content-Range: exact body length */
    int has_expect_len;
    mlreg_digest digest; /* ?digest= of POST / PUT, or the path digest */
    int has_digest;
    char *mbuf;
    size_t mlen, mcap;
    uint64_t discard_left;
} request;

/** Records an error from an MLREG_E* @p code (message: the thread's last
 *  message, copied now) to answer later. First error wins. */
void req_fail(request *rq, int code, err_ctx ctx);
/** Records an error with an explicit status and OCI code. */
void req_fail_raw(request *rq, unsigned int status, const char *oci_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Queues the recorded error as {"errors":[{"code","message"}]}. */
enum MHD_Result req_queue_error(request *rq);
/** Gives the claimed upload session back (or drops it when rq->sess_drop),
 *  BEFORE a reply is queued: once a client has the reply it may send its
 *  next request on another connection before this one's completion
 *  callback runs, and must find the session free. No-op without a session. */
void req_release_session(request *rq);
/** Adds an extra header to the recorded error's reply (at most two). */
void req_fail_header(request *rq, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Adds the common headers, queues @p resp (NULL: out of memory, the
 *  connection is closed) with @p status and destroys it. @p bytes is the body
 *  size for the access log. */
enum MHD_Result req_queue(request *rq, unsigned int status, struct MHD_Response *resp,
                          uint64_t bytes);
/** A request header or NULL. */
const char *req_header(request *rq, const char *name);
/** A query argument (unescaped by libmicrohttpd) or NULL. */
const char *req_query(request *rq, const char *name);
/** Reads the query argument @p name as a decimal uint64 into *out and sets
 *  *present (may be NULL) to whether it was given; absent leaves *out alone.
 *  0, or MLREG_EINVALID with a message naming the parameter ("?limit= ..."). */
int req_query_u64(uint64_t *out, int *present, request *rq, const char *name);
/** Response helpers; NULL on allocation failure. */
struct MHD_Response *resp_empty(void);
struct MHD_Response *resp_copy(const void *data, size_t len);
/** Serialises @p j (not consumed) compactly with Content-Type
 *  application/json (or @p content_type when non-NULL); *len_out = body size. */
struct MHD_Response *resp_json(const json_t *j, const char *content_type, uint64_t *len_out);
/** Adds a header; returns 0 or MLREG_ENOMEM. */
int resp_header(struct MHD_Response *resp, const char *name, const char *value);

/* ---- routes (server_oci.c, server_api.c, server_audit.c) ----------------- */

/** Step 2 for /v2/ routes: validate and set up body handling (req_fail on error). */
void oci_begin(request *rq);
/** Step 4 for /v2/ routes. */
enum MHD_Result oci_finish(request *rq);
/** Step 2 for /api/v1/ routes: size checks and body handling of POSTs. */
void api_begin(request *rq);
/** Step 4 for /api/v1/ routes. */
enum MHD_Result api_finish(request *rq);
/** The actor recorded for changes made by @p rq: the token's name. */
const char *req_actor(const request *rq);
/** Whether @p r is one of server_audit.c's routes (the audit log and
 *  attestations, docs/audit-api.md). */
int route_is_audit(route_id r);
/** Step 4 for the audit routes (GET/HEAD only; step 2 is api_begin()). */
enum MHD_Result audit_finish(request *rq);

#endif
