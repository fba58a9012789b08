/* server_internal.h: the server's state and its services, shared between
 * the server's files: the error table (server_errors.c), upload sessions
 * (server_uploads.c), connection deadlines and housekeeping
 * (server_limits.c), the TLS credentials (server_tls.c), the config in
 * force and its reload (server_reload.c) and struct mlreg_server (server.c).
 * Requests and their reply helpers are server_http.h's, routes
 * server_routes.h's. No other
 * module includes these headers; symbols shared between the files carry
 * the mlreg_server__ prefix.
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

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
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
    ERR_CTX_PROMOTION, /* promotions (EGATE: GATE_FAILED) */
    ERR_CTX_HF         /* the Hugging Face-compatible reads: errors as the Hub answers them
                          ({"error"}, X-Error-Code; server_hf.c) */
} err_ctx;

/** Looks up the HTTP status and OCI error code for @p code in context @p ctx. */
void mlreg_server__error_map(unsigned int *status_out, const char **oci_code_out, int code,
                             err_ctx ctx);
/** The message a client gets instead of the detailed one for a 5xx @p status
 *  (static text), or NULL for a status below 500, whose message is sent as is. */
const char *mlreg_server__error_public_message(unsigned int status);

/* ---- upload sessions (server_uploads.c) ---------------------------------- */

/* One in-progress upload; its fields are server_uploads.c's alone. A
 * request that has claimed a session (mlreg_server__uploads_create() or
 * mlreg_server__uploads_acquire()) is the only one using it until it gives
 * it back (mlreg_server__uploads_release()) or ends it
 * (mlreg_server__uploads_remove(), mlreg_server__uploads_commit()). */
typedef struct upload_session upload_session;
typedef struct upload_table upload_table;

/** Quotas of the upload table (mlreg_server_opts, resolved: no zeros). */
typedef struct {
    size_t per_identity;       /* sessions one identity may hold */
    size_t per_repository;     /* sessions one repository may have */
    unsigned int idle_timeout; /* seconds unused before a session is dropped */
    uint64_t max_bytes;        /* bytes one session may receive */
} upload_limits;

/** The limits of the config's (or the start options') values, each 0
 *  taking its MLREG_SERVER_DEFAULT_*: the one place the defaults apply. */
void mlreg_server__upload_limits(upload_limits *out, unsigned int per_identity,
                                 unsigned int per_repository, unsigned int idle_timeout,
                                 uint64_t max_bytes);
/** Creates an empty table with @p lim. 0 or MLREG_ENOMEM. */
int mlreg_server__uploads_new(upload_table **out, const upload_limits *lim);
/** Aborts every session's writer and frees the table; NULL is a no-op. */
void mlreg_server__uploads_free(upload_table *t);
/** Opens a writer and registers a new session of @p owner for @p repo,
 *  already claimed (busy) by the caller. 0; MLREG_EQUOTA when @p owner, the
 *  repository or the server holds as many sessions as allowed
 *  (*retry_after_out: seconds until one of them can expire, at least 1); or
 *  the error of opening the writer. */
int mlreg_server__uploads_create(upload_session **out, unsigned int *retry_after_out,
                                 upload_table *t, mlreg_blobstore *store, const char *repo,
                                 const char *owner);
/** Claims session @p uuid of @p repo opened by @p owner. 0, MLREG_ENOTFOUND
 *  (also when another identity opened it), MLREG_ERANGE (busy). */
int mlreg_server__uploads_acquire(upload_session **out, upload_table *t, const char *repo,
                                  const char *uuid, const char *owner);
/** Reads the offset of session @p uuid of @p repo opened by @p owner.
 *  0 or MLREG_ENOTFOUND. */
int mlreg_server__uploads_offset(uint64_t *offset_out, upload_table *t, const char *repo,
                                 const char *uuid, const char *owner);
/** Whether an upload holding @p have bytes may take @p more under the
 *  largest-blob limit @p max (limits.max_upload_bytes), without overflow:
 *  0 or MLREG_ETOOBIG naming the limit. Every upload path checks with it. */
int mlreg_server__upload_room(uint64_t max, uint64_t have, uint64_t more);
/** mlreg_server__upload_room() for claimed session @p s. */
int mlreg_server__uploads_check_room(const upload_table *t, const upload_session *s, uint64_t more);
/** Appends to a claimed session's writer and advances its offset;
 *  MLREG_ETOOBIG past the session size limit (nothing written). */
int mlreg_server__uploads_write(upload_table *t, upload_session *s, const void *data, size_t len);
/** Lets the backend reserve room for @p more bytes past the offset of
 *  claimed session @p s (a body's Content-Length): 0 or MLREG_ENOSPACE. */
int mlreg_server__uploads_reserve(upload_session *s, uint64_t more);
/** Waits until every byte of claimed session @p s is hashed and written
 *  (mlreg_blob_writer_flush()): 0, or an error after which the session
 *  cannot go on (drop it). */
int mlreg_server__uploads_flush(upload_session *s);
/** Gives a claimed session back, flushed first: one whose flush fails is
 *  removed instead, so a resumed upload never continues a writer whose
 *  bytes and hash disagree. */
void mlreg_server__uploads_release(upload_table *t, upload_session *s);
/** Unregisters and frees a claimed session, aborting its writer. */
void mlreg_server__uploads_remove(upload_table *t, upload_session *s);
/** The uuid of session @p s (valid while the session exists). */
const char *mlreg_server__upload_uuid(const upload_session *s);
/** The offset of claimed session @p s (only its claimer changes it). */
uint64_t mlreg_server__upload_claimed_offset(const upload_session *s);
/** Tells the writer of claimed session @p s, still at offset 0, the digest
 *  and size (-1 unknown) its closing PUT declares (mlreg_blob_writer_announce),
 *  so the store may write straight to the blob's final location. 0 or the
 *  error (the session must then be dropped). */
int mlreg_server__upload_announce(upload_session *s, const mlreg_digest *digest, int64_t size);
/** Ends claimed session @p s: unregisters it and commits its writer as the
 *  blob @p expected (mlreg_blob_writer_commit()), into *out. The session is
 *  gone whatever the outcome; on a mismatch nothing is stored. 0 or the
 *  commit's error. */
int mlreg_server__uploads_commit(mlreg_digest *out, upload_table *t, upload_session *s,
                                 const mlreg_digest *expected);
/** Sets this node's cluster tag (mlreg_cluster_node_tag()), which starts
 *  every new session's uuid. Call before the server takes requests. */
void mlreg_server__uploads_set_tag(upload_table *t, const char *tag);
/** 1 when session @p uuid was (or would have been) made by this node: one
 *  node, or the uuid starts with this node's tag; 0 when another node of
 *  the cluster holds it. */
int mlreg_server__upload_is_local(const upload_table *t, const char *uuid);
/** Puts @p lim in force for sessions opened from now on (quotas, idle
 *  timeout) and for every write from now on (max_bytes): a reload. */
void mlreg_server__uploads_set_limits(upload_table *t, const upload_limits *lim);
/** Drops every unclaimed session idle for longer than the idle timeout,
 *  aborting its writer (the temp file goes). Returns how many went. */
size_t mlreg_server__uploads_expire(upload_table *t);
/** The sessions in progress and the most the server takes at once. */
void mlreg_server__uploads_count(size_t *count_out, size_t *max_out, upload_table *t);

/* ---- connection deadlines and housekeeping (server_limits.c) ------------- */

typedef struct conn_table conn_table;

/** Creates the table of open connections, at most @p per_address from
 *  one client address (mlreg_server__conns_address_key()). 0 or MLREG_ENOMEM. */
int mlreg_server__conns_new(conn_table **out, unsigned int header_timeout,
                            unsigned int idle_timeout, unsigned int per_address);
/** The key connections are counted under: 4 and the IPv4 address (also
 *  for an IPv4-mapped IPv6 address), or 6 and the IPv6 /64, zero-padded to
 *  9 bytes. 0, or -1 for another family (such a connection is not counted). */
int mlreg_server__conns_address_key(unsigned char key[9], const struct sockaddr *sa);
/** Frees @p t (after the daemon has stopped); NULL is a no-op. */
void mlreg_server__conns_free(conn_table *t);
/** MHD_OPTION_NOTIFY_CONNECTION callback (@p cls: the conn_table): a new
 *  connection gets the header deadline; a closed one leaves the table. */
void mlreg_server__conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                                enum MHD_ConnectionNotificationCode code);
/** Names the server the connections of @p t belong to (before the daemon
 *  starts), so that a TLS callback can find it from a connection. */
void mlreg_server__conns_set_owner(conn_table *t, mlreg_server *srv);
/** The server @p conn belongs to, or NULL when it has no state of ours. */
mlreg_server *mlreg_server__conns_owner(struct MHD_Connection *conn);
/** A request's line and headers have arrived: no deadline while it runs
 *  (its body and reply are bounded by the daemon's inactivity timeout).
 *  0, or -1 when the connection is over its address's limit: the request
 *  must not run (close the connection). */
int mlreg_server__conns_head_received(struct MHD_Connection *conn);
/** A request has ended and the connection may carry another: the next
 *  request head must be complete within the idle timeout. */
void mlreg_server__conns_request_ended(conn_table *t, struct MHD_Connection *conn);
/** The client-certificate verdict cached for the connection
 *  (mlreg_server__tls_peer_check()): 1 verified, -1 refused, 0 not checked
 *  yet (or the connection has no state of ours). */
int mlreg_server__conns_peer_verdict(struct MHD_Connection *conn);
/** Caches @p verdict (1 or -1) for the connection; no-op without state. */
void mlreg_server__conns_set_peer_verdict(struct MHD_Connection *conn, int verdict);
/** Shuts down every connection past its deadline (libmicrohttpd then sees
 *  the socket close and frees it). Returns how many. */
size_t mlreg_server__conns_close_overdue(conn_table *t);
/** The connections open now (those that have state of ours). */
size_t mlreg_server__conns_open(conn_table *t);

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
void mlreg_server__log_throttled(log_throttle *lt, const char *msg);

/** One housekeeping thread's work: @c job every @c every_ms. */
typedef struct {
    mlreg_server *srv;
    uint64_t every_ms;
    void (*job)(mlreg_server *srv);
} housekeeping_job;

/** Housekeeping threads at most. */
#define HOUSEKEEPERS_MAX 5

/** Starts the housekeeping threads: one closes overdue connections
 *  (srv->conns), one expires idle upload sessions (srv->uploads), and with
 *  srv->gc_interval set one runs a garbage collection that often, and with
 *  srv->scrub_interval set one scrubs the blob store that often (the first
 *  run one interval after the start, each next one an interval after the
 *  last ended). They are
 *  apart because dropping a session may wait on the object store (aborting
 *  a multipart upload) and a collection takes long, and the deadlines must
 *  hold meanwhile. 0 or MLREG_EIO. */
int mlreg_server__housekeeper_start(mlreg_server *srv);
/** Stops and joins those threads; no-op for threads not running. */
void mlreg_server__housekeeper_stop(mlreg_server *srv);

/* ---- TLS (server_tls.c) ---------------------------------------------------- */

/** The PEM texts mlreg_server_start() hands to libmicrohttpd; the key is
 *  NULL once wiped, the client CA NULL without mutual TLS. */
const char *mlreg_server__tls_cert(const mlreg_server_tls *t);
const char *mlreg_server__tls_key(const mlreg_server_tls *t);
const char *mlreg_server__tls_client_ca(const mlreg_server_tls *t);
/** Mutual TLS: the client certificate of @p conn was sent and verifies
 *  against the client CA (checked on the connection's first request, the
 *  verdict then cached). 0, or MLREG_EFORBIDDEN with the reason. */
int mlreg_server__tls_peer_check(struct MHD_Connection *conn);

/* ---- metrics (server_metrics.c) ------------------------------------------ */

/* The request counters of GET /metrics: by route pattern, method and
 * status class, with a latency histogram per route; fixed arrays of
 * atomics made at start, so recording a request takes no lock. */
typedef struct server_metrics server_metrics;
struct request;

/** Creates the counters for the route tables as they are. 0 or MLREG_ENOMEM. */
int mlreg_server__metrics_new(server_metrics **out);
/** Frees @p m; NULL is a no-op. */
void mlreg_server__metrics_free(server_metrics *m);
/** Counts request @p rq, ended (its status, bytes and start time). */
void mlreg_server__metrics_request(server_metrics *m, const struct request *rq);

/* ---- readiness (server_probes.c) ----------------------------------------- */

/** Whether this node can serve, as GET /readyz answers it (the metadata
 *  store, the blob store, the shared log within ready_max_lag): 0, or -1
 *  with the public reason in @p reason and the detail for the server log
 *  in @p detail. Cheap: one read transaction, the blob store's check
 *  (cached on s3), no request for the shared log. */
int mlreg_server__ready(char *reason, size_t reason_len, char *detail, size_t detail_len,
                        mlreg_server *srv);
/* ---- long-polls of GET /api/v1/events (server_events.c) ------------------ */

typedef struct event_polls event_polls;

/** Most long-polls waiting at once; more are answered 503 with Retry-After. */
#define MLREG_SERVER_EVENT_POLLS_MAX 64
/** Most long-polls one identity (token) may have waiting; more are 429. */
#define MLREG_SERVER_EVENT_POLLS_PER_IDENTITY 16

/** Sets the events' source (@p source, or "mlreg://<hostname>" when NULL)
 *  and starts the thread that wakes waiting long-polls on a commit or at
 *  their deadline (srv->polls). 0, MLREG_ENOMEM or MLREG_EIO. */
int mlreg_server__polls_start(mlreg_server *srv, const char *source);
/** Resumes every waiting long-poll (they answer at once, as any new one
 *  does from now on), stops and joins the thread; call before
 *  MHD_stop_daemon(). No-op when not started. */
void mlreg_server__polls_stop(mlreg_server *srv);
/** mlreg_server__polls_stop() if needed, then frees srv->polls; call after
 *  MHD_stop_daemon(), when no request runs any more. */
void mlreg_server__polls_free(mlreg_server *srv);
/** The certificate chain and private key new TLS handshakes get, parsed by
 *  GnuTLS (server_tls.c). A set once handed out stays allocated until the
 *  server stops (srv->tls_all): GnuTLS may use it for as long as a
 *  connection that got it lives. */
typedef struct tls_creds tls_creds;

/** Makes the credentials of @p t (its key must not be wiped yet). 0,
 *  MLREG_EINVALID (GnuTLS refused them, naming why) or MLREG_ENOMEM. */
int mlreg_server__tls_creds_new(tls_creds **out, const mlreg_server_tls *t);
/** 1 when @p a and @p b hold the same certificate chain and key bytes. */
int mlreg_server__tls_creds_same(const tls_creds *a, const tls_creds *b);
/** Frees @p c and every set linked after it (mlreg_server__tls_creds_link()). */
void mlreg_server__tls_creds_free(tls_creds *c);
/** Links @p c in front of the list @p *list (for mlreg_server__tls_creds_free()). */
void mlreg_server__tls_creds_link(tls_creds **list, tls_creds *c);
/** MHD_OPTION_HTTPS_CERT_CALLBACK (gnutls_certificate_retrieve_function2):
 *  the credentials of the config in force when the handshake starts. */
int mlreg_server__tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn,
                                    int nreqs, const gnutls_pk_algorithm_t *pk_algos,
                                    int pk_algos_length, gnutls_pcert_st **pcert,
                                    unsigned int *pcert_length, gnutls_privkey_t *pkey);

/* ---- the config in force and its reload (server_reload.c) ---------------- */

/* What a request or a job reads of the config: a snapshot, replaced whole
 * by a reload (mlreg_server_reload()). A request takes a reference when it
 * is created and drops it when it is freed, so it runs to its end with the
 * gates, tokens and limits it started with (the identity it authenticated
 * as is borrowed from conf->auth); the snapshot a reload replaced is freed
 * when its last reference goes. */
typedef struct server_conf {
    unsigned int refs; /* atomic: the server's, and one per user */
    const mlreg_policy *policy;
    const mlreg_auth *auth;
    uint64_t max_upload_bytes; /* largest blob one upload may carry */
    upload_limits uploads;     /* the upload table's limits */
    const tls_creds *tls;      /* what new TLS handshakes get; NULL without TLS */
    const mlreg_config *file;  /* the config file read (fingerprints); NULL: none */
    mlreg_config *own;         /* a reload's config (owned), or NULL: the start's, borrowed */
} server_conf;

/** Sets up the first snapshot from the start options @p opts (policy,
 *  auth, config borrowed) and @p ul / @p max_upload_bytes, the resolved
 *  limits; with @p tls, the credentials to serve. 0 or MLREG_ENOMEM. */
int mlreg_server__conf_init(mlreg_server *srv, const mlreg_server_opts *opts,
                            const upload_limits *ul, uint64_t max_upload_bytes,
                            const mlreg_server_tls *tls);
/** Drops the server's snapshot and the TLS credentials (after the daemon stopped). */
void mlreg_server__conf_fini(mlreg_server *srv);
/** A reference to the snapshot in force; never NULL once the server runs. */
server_conf *mlreg_server__conf_acquire(mlreg_server *srv);
/** Drops a reference (NULL is a no-op); the last one frees the snapshot. */
void mlreg_server__conf_release(server_conf *conf);
/** Stops and frees the webhook deliveries (srv->events), their lock and
 *  directory; after the daemon stopped (no request reads them any more). */
void mlreg_server__events_fini(mlreg_server *srv);

/* ---- the server (server.c) ----------------------------------------------- */

struct mlreg_server {
    struct MHD_Daemon *daemon;
    mlreg_registry *reg;
    upload_table *uploads;
    conn_table *conns;
    log_throttle mhd_log;                    /* libmicrohttpd's messages (lock: mhd_log.lock) */
    pthread_t housekeeper[HOUSEKEEPERS_MAX]; /* see mlreg_server__housekeeper_start() */
    housekeeping_job housekeeping[HOUSEKEEPERS_MAX];
    unsigned int gc_grace;    /* seconds (mlreg_server_opts.gc_grace_seconds) */
    unsigned int gc_stale;    /* seconds (mlreg_server_opts.gc_stale_upload_seconds) */
    unsigned int gc_interval; /* seconds between scheduled collections; 0: none */
    const mlreg_config_retention *retention; /* the collections' rules (borrowed) */
    size_t n_retention;
    uint64_t scrub_interval; /* seconds between scheduled scrubs; 0: none */
    uint64_t scrub_rate;     /* their bytes per second; 0: unlimited */
    int housekeepers;        /* how many of them run */
    int housekeeper_stop;    /* under housekeeper_lock */
    pthread_mutex_t housekeeper_lock;
    pthread_cond_t housekeeper_wake;
    size_t max_manifest;
    uint16_t port;
    unsigned int redirect_seconds; /* 0: serve blob bytes; else 307 to the backend */
    unsigned int body_timeout;     /* seconds a connection may stall (MHD's timeout) */
    mlreg_policy *own_policy;      /* defaults when the caller gave none */
    mlreg_auth *own_auth;
    /* the config in force (server_reload.c): policy, auth, limits, TLS */
    server_conf *conf;           /* under conf_lock */
    pthread_rwlock_t conf_lock;  /* readers: taking a reference; writer: a reload's swap */
    pthread_mutex_t reload_lock; /* one reload at a time */
    int conf_locks;              /* the two locks above were made */
    tls_creds *tls_all;          /* every TLS credential set handed out (reload_lock) */
    char *config_path;           /* the file a reload reads; NULL: none */
    char host[256];              /* the listen host (loopback or not) */
    int tls;                     /* serves HTTPS */
    int tls_mutual;              /* clients must present a certificate the client CA signed */
    int insecure_http;           /* plain HTTP allowed on a non-loopback address */
    char *peer_ca_file;          /* cluster.ca_file: verifies the nodes requests are forwarded to */
    /* request logs and probes (server_http.c, server_probes.c) */
    int log_json;           /* access-log lines as JSON objects */
    uint64_t ready_max_lag; /* /readyz: log entries this node may be behind */
    int ready_state;        /* last /readyz answer: 0 none yet, 1 ready, 2 not (atomic) */
    /* GET /metrics (server_metrics.c) */
    server_metrics *metrics;
    int metrics_public; /* /metrics without a token (metrics.public) */
    /* events (server_events.c) */
    event_polls *polls;
    char *event_source;    /* CloudEvents source (malloc'd) */
    char event_log_id[96]; /* the log's id in event ids */
    /* webhook deliveries (owned; NULL without webhooks), replaced by a
     * reload (server_reload.c) while /metrics reads them: events_lock */
    struct mlreg_events *events;
    pthread_mutex_t events_lock;
    int events_lock_init;
    char *events_dir; /* their cursors (malloc'd), or NULL */
};

#endif
