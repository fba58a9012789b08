/* server_http.h: one HTTP request of the server and the helpers every
 * route uses to read it and answer it (server_http.c). The handler files
 * (server_oci.c, server_api.c, server_audit.c) and the server core
 * (server.c) include it; it knows no route. See server_internal.h for the
 * life of a request.
 */
#ifndef MLREG_SERVER_HTTP_H
#define MLREG_SERVER_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>
#include <time.h>

#include "server_internal.h"

struct route_row; /* server_routes.h */

/** Most characters of a request id (X-Request-Id). */
#define MLREG_SERVER_REQUEST_ID_MAX 64

/** Where the body bytes of a request go (step 3). */
typedef enum {
    BODY_NONE = 0, /* no body expected: one is refused */
    BODY_STREAM,   /* to the route's on_body callback (uploads) */
    BODY_BUFFER,   /* into rq->mbuf, up to rq->buf_limit bytes */
    BODY_DISCARD,  /* an error happened mid-body: drop the rest */
    BODY_FORWARD   /* to the node holding the upload session (server_forward.c) */
} body_mode;

/** A request being forwarded to another node (server_forward.c). */
typedef struct forward forward;

typedef struct request {
    mlreg_server *srv;
    server_conf *conf; /* the config in force when it came (a reference) */
    struct MHD_Connection *conn;
    char *path;  /* raw path, before any unescaping, without the query */
    char *query; /* raw query after '?', or NULL */
    char method[12];
    int started;    /* the access handler has seen this request */
    int queued;     /* a response is queued */
    int has_body;   /* Content-Length > 0 or Transfer-Encoding */
    int close_conn; /* the reply closes the connection (ambiguous framing) */
    int has_length;
    uint64_t content_length;
    struct timespec t0;
    char id[MLREG_SERVER_REQUEST_ID_MAX + 1]; /* X-Request-Id: the client's, or made here */
    char remote[48];                          /* the client's address, for the log */
    char *detail;                             /* a 5xx's message for the log (JSON format) */
    unsigned int status;
    uint64_t resp_bytes;
    uint64_t req_bytes;

    const struct route_row *route; /* the matched row (NULL: none, rq->failed) */
    err_ctx ctx;                   /* the route's context for its errors */
    char *name;                    /* repository / model name (validated) */
    char *arg;                     /* digest, reference, upload uuid, key id or version */
    char *stage;               /* the stage of the stage routes (validated against the config) */
    char *file;                /* {path*}: a file path under a release (the route checks it) */
    const mlreg_identity *who; /* the authenticated identity (set before any route runs) */
    mlreg_identity *who_owned; /* who, when it is a runtime token's (freed with rq) */

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
    char *mbuf; /* BODY_BUFFER: the body so far, NUL-terminated */
    size_t mlen, mcap;
    size_t buf_limit;     /* BODY_BUFFER: most bytes the body may have */
    const char *buf_what; /* BODY_BUFFER: what the body is, for messages */
    uint64_t discard_left;
    forward *fwd; /* BODY_FORWARD, or a bodiless request being forwarded */

    /* GET /api/v1/events long-poll (server_events.c) */
    int64_t poll_deadline_ms;  /* CLOCK_MONOTONIC ms; 0 until it first waits */
    int poll_waiting;          /* suspended, in the server's waiter list (under its lock) */
    struct request *poll_next; /* next waiter */
} request;

/** Allocates a request for @p uri (its path is kept, the query dropped).
 *  NULL when out of memory; freed by mlreg_server__req_free(). */
request *mlreg_server__req_new(mlreg_server *srv, const char *uri);
/** Releases what @p rq still holds (a writer is aborted, a claimed session
 *  given back or dropped) and frees it; NULL is a no-op. */
void mlreg_server__req_free(request *rq);
/** Writes the access-log line of @p rq, ended as @p toe says, in the
 *  server's format (text or JSON, docs/operations.md). */
void mlreg_server__req_log(const request *rq, enum MHD_RequestTerminationCode toe);
/** Names the request once its connection is known: keeps the client's
 *  X-Request-Id when it is 1 to 64 of [A-Za-z0-9._-], else makes one of 16
 *  random hex digits; notes the client's address for the log. */
void mlreg_server__req_identify(request *rq);

/** Records an error from an MLREG_E* @p code (message: the thread's last
 *  message, copied now) to answer later. First error wins. */
void mlreg_server__req_fail(request *rq, int code, err_ctx ctx);
/** Records an error with an explicit status and OCI code. */
void mlreg_server__req_fail_raw(request *rq, unsigned int status, const char *oci_code,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** Adds an extra header to the recorded error's reply (at most two). */
void mlreg_server__req_fail_header(request *rq, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Drops the rest of the body (after an error found mid-body), up to a
 *  bound past which the connection is closed. */
void mlreg_server__req_discard(request *rq);
/** Queues the recorded error as {"errors":[{"code","message"}]}. */
enum MHD_Result mlreg_server__req_queue_error(request *rq);
/** mlreg_server__req_fail() then mlreg_server__req_queue_error(). */
enum MHD_Result mlreg_server__reply_error(request *rq, int code, err_ctx ctx);
/** Gives the claimed upload session back (or drops it when rq->sess_drop),
 *  BEFORE a reply is queued: once a client has the reply it may send its
 *  next request on another connection before this one's completion
 *  callback runs, and must find the session free. No-op without a session. */
void mlreg_server__req_release_session(request *rq);
/** Adds the common headers, queues @p resp (NULL: out of memory, the
 *  connection is closed) with @p status and destroys it. @p bytes is the body
 *  size for the access log. */
enum MHD_Result mlreg_server__req_queue(request *rq, unsigned int status, struct MHD_Response *resp,
                                        uint64_t bytes);
/** Queues @p j (consumed) as @p status application/json. */
enum MHD_Result mlreg_server__reply_json(request *rq, unsigned int status, json_t *j);
/** Queues @p text (@p len bytes of JSON, malloc'd, consumed) as @p status
 *  application/json. */
enum MHD_Result mlreg_server__reply_json_text(request *rq, unsigned int status, char *text,
                                              size_t len);
/** The usual end of a lookup: @p error < 0 is answered in the route's
 *  context (rq->ctx), else @p j as 200 application/json. @p j is consumed
 *  either way (NULL is fine). */
enum MHD_Result mlreg_server__reply_result(request *rq, int error, json_t *j);
/** A request header or NULL. */
const char *mlreg_server__req_header(request *rq, const char *name);
/** The raw query string (after '?', not unescaped) or NULL. */
const char *mlreg_server__req_raw_query(const request *rq);
/** A query argument (unescaped by libmicrohttpd) or NULL. */
const char *mlreg_server__req_query(request *rq, const char *name);
/** Reads the query argument @p name as a decimal uint64 into *out and sets
 *  *present (may be NULL) to whether it was given; absent leaves *out alone.
 *  0, or MLREG_EINVALID with a message naming the parameter ("?limit= ..."). */
int mlreg_server__req_query_u64(uint64_t *out, int *present, request *rq, const char *name);
/** Parses 1..19 decimal digits at *p (a header or query value), advancing
 *  it. 0 or -1. */
int mlreg_server__parse_u64(const char **p, uint64_t *out);
/** The actor recorded for changes made by @p rq: the token's name. */
const char *mlreg_server__req_actor(const request *rq);

/** Answers a GET (@p head 0) or a HEAD of blob rq->digest as repository
 *  rq->name sees it, as the /v2/ blob reads do (server_oci.c): a single
 *  Range (206, 416 past the end), the bytes sent from a descriptor or
 *  streamed, never buffered whole, or a 307 to the backend's presigned URL
 *  when the server redirects blob reads. @p extra (NULL, or name, value,
 *  ..., NULL) are added to the answer, the redirect included. */
enum MHD_Result mlreg_server__blob_reply(request *rq, int head, const char *const *extra);
/** mlreg_server__blob_reply() of a GET answered by the server itself, even
 *  when the server redirects blob reads. */
enum MHD_Result mlreg_server__blob_reply_here(request *rq, const char *const *extra);
/** The Hugging Face-compatible reads' error answer (server_hf.c):
 *  {"error": message} with X-Error-Code and X-Error-Message, as the Hub
 *  answers, for a request whose context is ERR_CTX_HF. */
enum MHD_Result mlreg_server__hf_queue_error(request *rq);

/** Response helpers; NULL on allocation failure. */
struct MHD_Response *mlreg_server__resp_empty(void);
struct MHD_Response *mlreg_server__resp_copy(const void *data, size_t len);
/** Serialises @p j (not consumed) compactly, reals in their shortest
 *  round-trip text (mlreg/json_out.h), with Content-Type application/json
 *  (or @p content_type when non-NULL); *len_out = body size. */
struct MHD_Response *mlreg_server__resp_json(const json_t *j, const char *content_type,
                                             uint64_t *len_out);
/** Adds a header; returns 0 or MLREG_ENOMEM. */
int mlreg_server__resp_header(struct MHD_Response *resp, const char *name, const char *value);

/* ---- forwarding to the node holding an upload (server_forward.c) ------- */

/**
 * Forwards @p rq, a request for upload session rq->arg that another node
 * of the cluster holds (mlreg_server__upload_is_local() is 0), to that
 * node: finds it by its tag, starts the request there and sets rq->fwd and
 * rq->body (BODY_FORWARD when a body follows). 0; MLREG_ENOTFOUND (no
 * cluster, a request that was forwarded already, or no live node holds
 * that tag: the session is unknown); MLREG_ENOMEM; MLREG_EIO.
 */
int mlreg_server__forward_begin(request *rq);
/** Streams one piece of the body to the owner (blocking while it reads). */
enum MHD_Result mlreg_server__forward_body(request *rq, const char *data, size_t len);
/** Ends the body, waits for the owner's answer and queues it (status, the
 *  upload headers and the body), or a 503 when the owner did not answer. */
enum MHD_Result mlreg_server__forward_finish(request *rq);
/** Stops a forward (a request cut short) and frees it; NULL is a no-op. */
void mlreg_server__forward_free(forward *f);

#endif
