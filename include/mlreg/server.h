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
#include "mlreg/gates.h"
#include "mlreg/registry.h"

/** Default number of worker threads (libmicrohttpd thread pool). */
#define MLREG_SERVER_DEFAULT_THREADS 4
/** Seconds of inactivity after which a connection is closed. */
#define MLREG_SERVER_DEFAULT_TIMEOUT 60

typedef struct mlreg_server mlreg_server;

typedef struct {
    /** Numeric address to bind: an IPv4 literal ("127.0.0.1") or an IPv6
     *  literal without brackets ("::1"); "localhost" binds 127.0.0.1. */
    const char *host;
    /** TCP port; 0 lets the OS choose (read it back with mlreg_server_port). */
    uint16_t port;
    /** Worker threads; 0 = MLREG_SERVER_DEFAULT_THREADS. */
    unsigned int threads;
    /** Idle connection timeout in seconds; 0 = MLREG_SERVER_DEFAULT_TIMEOUT. */
    unsigned int timeout;
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
} mlreg_server_opts;

/**
 * Binds the socket and starts serving @p reg in background threads.
 * The registry is borrowed: it must outlive the server.
 * With tokens (opts->auth) every request but GET /api/v1/health is
 * authenticated and checked against the role its route needs
 * (docs/promotions-api.md).
 * @return 0, MLREG_EINVALID (bad host), MLREG_EIO (bind/daemon failure,
 *         message set), MLREG_ENOMEM.
 */
int mlreg_server_start(mlreg_server **out, mlreg_registry *reg, const mlreg_server_opts *opts);

/** The bound TCP port (the OS-chosen one when opts.port was 0). */
uint16_t mlreg_server_port(const mlreg_server *srv);

/**
 * Stops accepting, closes every connection (requests cut short are cleaned
 * up like a client disconnect: nothing half-written is committed), aborts the
 * open upload sessions and frees the server. NULL is a no-op.
 */
void mlreg_server_stop(mlreg_server *srv);

#endif
