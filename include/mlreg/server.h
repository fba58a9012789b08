/**
 * @file server.h
 * @brief The HTTP server: libmicrohttpd (thread pool + epoll) serving the OCI
 *        distribution API under /v2/ and the JSON read API under /api/v1/.
 *
 * The server maps HTTP requests onto registry.h calls; it holds no registry
 * state of its own except upload sessions, which live in memory only (a
 * restart loses them and clients retry the upload; the fs backend removes the
 * stale temp files at its next start). Request bodies stream straight into
 * the blob writer as they arrive; only manifest bodies are accumulated, and
 * never beyond the configured manifest size limit.
 */
#ifndef MLREG_SERVER_H
#define MLREG_SERVER_H

#include <stdint.h>

#include "mlreg/auth.h"
#include "mlreg/config.h"
#include "mlreg/gates.h"
#include "mlreg/registry.h"

/** Default number of worker threads (libmicrohttpd thread pool). */
#define MLREG_SERVER_DEFAULT_THREADS 16
/** Memory pool of one connection, in bytes: its request head must fit, and
 *  request bodies arrive in pieces of about this size. */
#define MLREG_SERVER_CONNECTION_MEMORY (256u * 1024)
/** Default connections at most, when the open-file limit allows more: 4096
 *  request heads arriving at once fit in 1 GiB. */
#define MLREG_SERVER_DEFAULT_MAX_CONNECTIONS 4096
/** Default open connections from one client address. */
#define MLREG_SERVER_DEFAULT_PER_ADDRESS 64
/** Default seconds a new connection has to deliver its first request head. */
#define MLREG_SERVER_DEFAULT_HEADER_TIMEOUT 10
/** Default seconds a kept-alive connection may wait for its next request head. */
#define MLREG_SERVER_DEFAULT_IDLE_TIMEOUT 30
/** Default seconds without progress while a body is received or a reply sent. */
#define MLREG_SERVER_DEFAULT_BODY_TIMEOUT 60
/** Default upload sessions (chunked OCI uploads) one identity may hold open. */
#define MLREG_SERVER_DEFAULT_UPLOADS_PER_IDENTITY 64
/** Default upload sessions one repository may have open: twice an
 *  identity's, so one token alone cannot fill a repository's quota. */
#define MLREG_SERVER_DEFAULT_UPLOADS_PER_REPOSITORY 128
/** Default seconds an upload session may sit idle before it is dropped. */
#define MLREG_SERVER_DEFAULT_UPLOAD_IDLE 900
/** Default largest blob one upload may carry (1 TiB). */
#define MLREG_SERVER_DEFAULT_MAX_UPLOAD_BYTES (1ull << 40)

typedef struct mlreg_server mlreg_server;

/** The server's TLS material: certificate chain, private key and the
 *  optional client CA of mutual TLS, read and checked (server_tls.c). */
typedef struct mlreg_server_tls mlreg_server_tls;

typedef struct {
    /** Numeric address to bind: an IPv4 literal ("127.0.0.1") or an IPv6
     *  literal without brackets ("::1"); "localhost" binds 127.0.0.1. */
    const char *host;
    /** TCP port; 0 lets the OS choose (read it back with mlreg_server_port). */
    uint16_t port;
    /** Worker threads; 0 = MLREG_SERVER_DEFAULT_THREADS. */
    unsigned int threads;
    /** Open connections at most; 0 = as many as RLIMIT_NOFILE allows
     *  (mlreg_server_connection_budget()), at most
     *  MLREG_SERVER_DEFAULT_MAX_CONNECTIONS. More than the budget is refused. */
    unsigned int max_connections;
    /** Open connections from one client address: an IPv4 address, or an
     *  IPv6 /64 (one host's usual allocation); further ones are closed as
     *  soon as they are accepted. 0 = MLREG_SERVER_DEFAULT_PER_ADDRESS (at
     *  most max_connections). */
    unsigned int max_connections_per_address;
    /** Seconds a new connection has to deliver the line and headers of its
     *  first request, however it trickles them; 0 = the default. */
    unsigned int header_timeout;
    /** Seconds a kept-alive connection has, after a reply, to deliver the
     *  complete head of its next request; 0 = the default. */
    unsigned int idle_timeout;
    /** Seconds without progress after which a connection receiving a body
     *  or sending a reply is closed; 0 = the default. */
    unsigned int body_timeout;
    /** Upload sessions one identity may hold open; 0 = the default. */
    unsigned int uploads_per_identity;
    /** Upload sessions one repository may have open; 0 = the default. */
    unsigned int uploads_per_repository;
    /** Seconds an upload session may sit unused before it is dropped and
     *  its temp file removed; 0 = the default. */
    unsigned int upload_idle_timeout;
    /** Largest blob one upload (monolithic or session) may carry, in
     *  bytes; 0 = the default. */
    uint64_t max_upload_bytes;
    /** Stages and gates (borrowed, must outlive the server); NULL = the
     *  default stages without gates. */
    const mlreg_policy *policy;
    /** Tokens (borrowed, must outlive the server); NULL = no tokens: every
     *  request is the local identity. */
    const mlreg_auth *auth;
    /** When non-zero, blob GETs answer 307 to a URL from the blob backend
     *  (mlreg_blobstore_presign) valid this many seconds, so the bytes go
     *  straight from the object store; 0 serves the bytes. */
    unsigned int redirect_seconds;
    /** Garbage collection run through POST /api/v1/admin/gc: blobs written
     *  or linked less than this many seconds ago are kept. */
    unsigned int gc_grace_seconds;
    /** ... and in-progress writes begun longer ago are removed; 0 = a day. */
    unsigned int gc_stale_upload_seconds;
    /** Seconds between scheduled collections; 0 = none. */
    unsigned int gc_interval_seconds;
    /** Retention rules every collection runs first (borrowed, must outlive
     *  the server; retention.h); NULL / 0: releases are kept. */
    const mlreg_config_retention *retention;
    size_t n_retention; /**< entries in @c retention */
    /** Seconds between scheduled scrubs of the blob store (scrub.h); 0 = none. */
    uint64_t scrub_interval_seconds;
    /** Bytes per second a scheduled scrub reads at most; 0 = unlimited. */
    uint64_t scrub_rate_bytes_per_second;
    /** TLS (mlreg_server_tls_load()); NULL serves plain HTTP. Borrowed:
     *  mlreg_server_start() wipes its private key once libmicrohttpd has
     *  parsed it (mlreg_server_tls_wipe_key()). With a client CA every
     *  request must come over a connection whose client certificate it
     *  signed (others are answered 403 and the connection is closed). */
    mlreg_server_tls *tls;
    /** Non-zero when plain HTTP was allowed on a non-loopback address
     *  (`mlreg serve --insecure-http`): GET /api/v1/health says so. */
    int insecure_http;
    /** The access log on stderr: MLREG_SERVER_LOG_TEXT (0, one line for
     *  people) or MLREG_SERVER_LOG_JSON (one JSON object per line). */
    int log_format;
    /** GET /readyz answers 503 while this node is more than this many
     *  entries behind the shared log (s3 backend); 0 =
     *  MLREG_SERVER_DEFAULT_READY_MAX_LAG. */
    uint64_t ready_max_lag;
    /** Non-zero: GET /metrics is served without a token (metrics.public);
     *  else it needs the read role on every model when tokens are set. */
    int metrics_public;
    /** The CloudEvents `source` of GET /api/v1/events (events.h); NULL:
     *  "mlreg://<hostname>". Copied. */
    const char *event_source;
    /** The webhook deliveries (events.h) of the config's webhooks, or
     *  NULL: once mlreg_server_start() succeeds the server owns them,
     *  reports their counters in /metrics, restarts them for the new
     *  config at each reload and stops them; a failed start leaves them
     *  to the caller. */
    struct mlreg_events *events;
    /** Where the deliveries keep their cursors (DATA_DIR/events): a reload
     *  starts the new config's webhooks there. NULL: a reload refuses a
     *  change of webhooks. Copied. */
    const char *events_dir;
    /** PEM CAs that verify the https URL of the node an upload request is
     *  forwarded to (cluster.ca_file); NULL: the system's. Copied. */
    const char *peer_ca_file;
    /** The config file a reload re-reads (mlreg_server_reload()); NULL:
     *  reloads are refused. */
    const char *config_path;
    /** The config read from it at start (borrowed, must outlive the
     *  server): what a reload compares the file with, to say what changed
     *  and refuse what needs a restart. */
    const mlreg_config *config;
} mlreg_server_opts;

/** Access-log formats (mlreg_server_opts.log_format). */
enum { MLREG_SERVER_LOG_TEXT = 0, MLREG_SERVER_LOG_JSON = 1 };
/** Default of mlreg_server_opts.ready_max_lag (cluster.ready_max_lag). */
#define MLREG_SERVER_DEFAULT_READY_MAX_LAG 1000

/**
 * Reads and checks the PEM files of TLS: @p cert_file (the certificate,
 * then its chain), @p key_file (its unencrypted private key, which must not
 * be open to group or other users) and, for mutual TLS, @p client_ca_file
 * (NULL: none), the CAs whose certificates clients must present.
 * The key is kept in sodium_malloc memory until it is wiped.
 * @return 0; MLREG_EINVALID with a message naming the config key, the file
 *         and the fault (no PEM certificate, not a private key, an encrypted
 *         key, a key that is not the certificate's, a key file other users
 *         may read, one of the two missing); MLREG_EIO (unreadable file);
 *         MLREG_ENOMEM.
 */
int mlreg_server_tls_load(mlreg_server_tls **out, const char *cert_file, const char *key_file,
                          const char *client_ca_file);

/** The validity period of the server certificate (seconds since the epoch). */
void mlreg_server_tls_validity(int64_t *not_before, int64_t *not_after,
                               const mlreg_server_tls *tls);

/** 1 when @p tls has a client CA (mutual TLS), else 0. */
int mlreg_server_tls_mutual(const mlreg_server_tls *tls);

/** Wipes and frees the private key; the rest stays. NULL is a no-op. */
void mlreg_server_tls_wipe_key(mlreg_server_tls *tls);

/** Wipes and frees @p tls; NULL is a no-op. */
void mlreg_server_tls_free(mlreg_server_tls *tls);

/**
 * Binds the socket and starts serving @p reg in background threads.
 * The registry is borrowed: it must outlive the server.
 * With tokens (opts->auth) every request but GET /api/v1/health and the
 * probes (/healthz, /readyz) is authenticated and checked against the role its route needs
 * (docs/promotions-api.md).
 * With opts->tls it serves HTTPS only.
 * @return 0, MLREG_EINVALID (bad host), MLREG_EIO (bind/daemon failure,
 *         message set), MLREG_EUNSUPPORTED (TLS asked of a libmicrohttpd
 *         built without it), MLREG_ENOMEM.
 */
int mlreg_server_start(mlreg_server **out, mlreg_registry *reg, const mlreg_server_opts *opts);

/**
 * The most connections the process's RLIMIT_NOFILE (soft limit) leaves room
 * for with @p threads worker threads: each connection may hold its socket
 * and one file or backend socket, upload sessions keep up to a quarter of
 * the descriptors, and a reserve stays for LMDB, the listening socket and
 * two descriptors per worker thread. Never below 16.
 */
unsigned int mlreg_server_connection_budget(unsigned int threads);

/**
 * Re-reads the config file (opts.config_path) and puts what may change on a
 * running server in force: stages, gates and models, tokens, trusted keys
 * (the keyring's sync records key.* entries), the upload limits
 * (limits.max_upload_bytes, upload_sessions_per_identity,
 * upload_sessions_per_repository, upload_idle_seconds) and the TLS
 * certificate and key (read again from their files). Requests in progress
 * finish with the config they started with; connections and upload
 * sessions stay. A change of anything else (listen, data_dir, storage,
 * cluster, ...: docs/operations.md "Reload") is refused, naming the keys.
 * When something changed, a config.reload audit entry by @p actor records
 * the SHA-256 of the file's bytes and the parts that changed.
 * *out (owned by the caller): {"reloaded": true, "changed": [...],
 * "config_sha256": "<hex>"}.
 * @return 0; MLREG_EINVALID (the file is invalid, with the message the
 *         start would print; a key that needs a restart; no config file);
 *         the errors of the keyring sync or of the audit append. On any
 *         error the running config stays.
 */
int mlreg_server_reload(json_t **out, mlreg_server *srv, const char *actor);

/** The bound TCP port (the OS-chosen one when opts.port was 0). */
uint16_t mlreg_server_port(const mlreg_server *srv);

/**
 * Stops accepting, closes every connection (requests cut short are cleaned
 * up like a client disconnect: nothing half-written is committed), aborts the
 * open upload sessions and frees the server. NULL is a no-op.
 */
void mlreg_server_stop(mlreg_server *srv);

#endif
