/* client.h: the HTTP client and the small output helpers shared by the
 * client commands (exit codes, registry text on the terminal, sizes).
 * Internal to cli/. The command line is args.h, local files files.h.
 *
 * Functions follow the house rule: 0 or a negative MLREG_E* code, with the
 * message set (mlreg_error_set) where the failure is found. A command turns
 * the code into its exit status once, with cli_exit_code().
 */
#ifndef MLREG_CLI_CLIENT_H
#define MLREG_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "progress.h"

#define CLI_DEFAULT_REGISTRY "http://127.0.0.1:5080"

/** One registry connection: one libcurl easy handle, reused for every request
 *  of a command so that keep-alive connections are reused. */
typedef struct cli_client cli_client;

/**
 * Creates a client for @p registry (NULL = $MLREG_URL, else the default).
 * The URL must be http:// or https:// (MLREG_EINVALID otherwise). A trailing
 * '/' is dropped. Every request carries `Authorization: Bearer TOKEN` when
 * a token was given to cli_token_take() or cli_token_take_file(); the client
 * keeps its own wiped-on-free copy. TLS settings come from cli_tls_take()
 * or the environment; a file that cannot be opened, a client key without
 * its certificate, or a token that would go over plain http:// to a host
 * that is not loopback without --insecure-http is MLREG_EINVALID, before
 * anything is sent. Free with cli_client_free().
 */
int cli_client_new(cli_client **out, const char *registry);

/**
 * Keeps a copy of @p token (from --token or $MLREG_TOKEN) in sodium_malloc
 * memory for every client created afterwards, and overwrites @p token in
 * place with zeros (an argv or environment string: this hides it from ps
 * and from child processes). MLREG_EINVALID for an empty token, one over
 * 4096 bytes, or one with spaces or control characters (the message never
 * quotes it).
 */
int cli_token_take(char *token);

/**
 * Reads the token from the file @p path (--token-file) and keeps it as
 * cli_token_take() does. The file must be a regular file holding the token
 * on one line, one trailing newline allowed: a missing or unreadable file is
 * MLREG_EIO; a file that is empty, holds a second line or a NUL byte, is
 * larger than 4096 bytes plus the newline, or is not a regular file is
 * MLREG_EINVALID (messages name the file, never quote what it holds). A
 * file every user may read is taken with a warning on stderr. The bytes
 * read are wiped.
 */
int cli_token_take_file(const char *path);

/**
 * Removes the TLS options of the client commands from @p argv (@p argc
 * updated) and keeps their values for every client created afterwards:
 * `--cacert FILE` (PEM CAs that verify the registry instead of the
 * system's), `--cert FILE` and `--key FILE` (client certificate and key of
 * mutual TLS; for @p cmd "sign", whose --key is the signing key, the client
 * key comes from MLREG_CLIENT_KEY only) and `--insecure-http` (a token may
 * go over plain http:// to a host off loopback). Each is also
 * `--name=VALUE`. The environment (MLREG_CACERT, MLREG_CLIENT_CERT,
 * MLREG_CLIENT_KEY, MLREG_INSECURE_HTTP=1) is read by cli_client_new()
 * for what is not given here. 0, or MLREG_EINVALID (a missing value, an
 * option given twice).
 */
int cli_tls_take(int *argc, char **argv, const char *cmd);

/** Wipes and frees the token kept by cli_token_take(). */
void cli_token_clear(void);

/** Frees the client and its connection; NULL is a no-op. */
void cli_client_free(cli_client *c);

/** The registry base URL without a trailing '/'; valid while @p c lives. */
const char *cli_client_url(const cli_client *c);

/**
 * Resolves a Location header (absolute, or relative to the registry URL as
 * RFC 3986 says) into an absolute URL and appends @p query (e.g.
 * "digest=sha256:...") to its query string when non-NULL. *out is malloc'd
 * and owned by the caller. 0, MLREG_ESERVER (unusable Location), MLREG_ENOMEM.
 */
int cli_client_resolve(char **out, const cli_client *c, const char *location, const char *query);

/**
 * Receives response body bytes of a successful (2xx) response. Returns 0 to
 * go on or a negative MLREG_E* code (message set) to abort the transfer; the
 * request then fails with that code.
 */
typedef int (*cli_sink_fn)(void *ctx, const void *data, size_t len);

/**
 * A request body produced by the caller (`mlreg push` hashes the bytes as
 * libcurl takes them). @p read fills @p buf with up to @p len bytes of the
 * body from the current position and returns the count (more than 0 while
 * the body is not complete) or a negative MLREG_E* code with the message
 * set; @p seek moves to body offset @p offset when libcurl must send the
 * body again (a kept-alive connection the server had closed): 0 or a
 * negative code.
 */
typedef struct {
    int64_t (*read)(void *ctx, void *buf, size_t len);
    int (*seek)(void *ctx, uint64_t offset);
    void *ctx;
} cli_body_source;

typedef struct {
    const char *method;       /**< "GET", "HEAD", "POST", "PUT" */
    const char *url;          /**< path from the registry root ("/v2/...") or an absolute URL */
    const char *accept;       /**< Accept header, or NULL */
    const char *content_type; /**< Content-Type of the request body, or NULL */
    /* Request body: @p body_fd >= 0 streams body_size bytes read from that
     * descriptor (from its current offset); otherwise @p body / @p body_len
     * (may be NULL / 0 for no body). */
    const void *body;
    size_t body_len;
    int body_fd;
    uint64_t body_size;
    /* Response body of a 2xx answer: given to @p sink when set, otherwise
     * kept in memory up to @p max_body bytes.
     * Non-2xx bodies are always kept (up to 64 KiB) for the error message. */
    cli_sink_fn sink;
    void *sink_ctx;
    /* ---- resumable, hashed uploads (cli/push.c) ---- */
    const cli_body_source *source; /**< the body (body_size bytes) when set; body_fd is -1 */
    const char *const *headers;    /**< extra "Name: value" lines, NULL-terminated, or NULL */
    /** Bytes sent earlier that the registry stores when it answers this
     *  request (an upload session's closing PUT): the stall watch gives it
     *  time for them as for a body of that size. */
    uint64_t commit_size;
    uint64_t max_send; /**< send at most this many bytes per second; 0: no cap */

    size_t max_body;      /**< over it: MLREG_ESERVER */
    int follow_redirects; /**< follow Location (blob GETs only) */
    /** GET only: "A-B" asks for bytes A..B (CURLOPT_RANGE, kept across
     *  redirects); the answer should be 206 with a matching Content-Range. */
    const char *range;
    /** When set and stderr is a terminal, a one-line progress display with
     *  this label is drawn during the transfer (and erased after it). */
    const char *progress;
} cli_request;

typedef struct {
    long status; /**< final HTTP status */
    char *body;  /**< NUL-terminated body kept in memory (may be NULL) */
    size_t body_len;
    /* ---- resumable, hashed uploads (cli/push.c) ---- */
    char *range;      /**< Range header of an upload session ("0-<last>") or NULL */
    int digest_first; /**< Mlreg-Digest-First: true (the registry wants the digest up front) */

    char *location;         /**< Location header or NULL */
    char *content_digest;   /**< Docker-Content-Digest header or NULL */
    char *content_type;     /**< Content-Type header or NULL */
    char *content_range;    /**< Content-Range header or NULL */
    int64_t content_length; /**< Content-Length header, -1 when absent */
} cli_response;

/** Initialises @p r to empty (call before the first cli_request_do). */
void cli_response_init(cli_response *r);
/** Frees what @p r holds and re-initialises it. */
void cli_response_clear(cli_response *r);

/**
 * Performs one request. Returns 0 when an HTTP answer arrived, whatever its
 * status (look at resp->status); MLREG_EUNREACHABLE (connection failed or
 * broke; message has libcurl's error buffer), the sink's code when it
 * aborted, MLREG_EIO when the request body could not be read, MLREG_ESERVER
 * for an in-memory body over max_body. @p resp is cleared first and owned by the
 * caller afterwards (cli_response_clear).
 */
int cli_request_do(cli_response *resp, cli_client *c, const cli_request *req);

/**
 * Turns an unexpected HTTP answer into an error code with a message that
 * starts with @p what and carries the server's OCI error message when the
 * body has one: 401 MLREG_EAUTH ("authentication required (set MLREG_TOKEN or
 * --token-file)"), 403 MLREG_EFORBIDDEN ("forbidden: " and the server's message,
 * which names the missing role), 404 MLREG_ENOTFOUND,
 * 409 and other 4xx MLREG_EDENIED, 5xx and anything else MLREG_ESERVER.
 */
int cli_http_error(const cli_response *resp, const char *what);

/**
 * One /api/v1 JSON exchange: @p method on @p path with @p body (NULL for
 * none) serialised as an application/json request body. Returns 0 when an
 * answer arrived, whatever its status (resp->status; resp->body keeps the
 * raw bytes, capped at 64 MiB); *json_out (may be NULL) is the parsed body
 * when it is a JSON object, else NULL (json_decref()). Transport errors as
 * cli_request_do().
 */
int cli_api_do(json_t **json_out, cli_response *resp, cli_client *c, const char *method,
               const char *path, const json_t *body);

/**
 * Like cli_api_do() for answers that must be 2xx with a JSON object:
 * anything else becomes cli_http_error(resp, what), or MLREG_ESERVER
 * "WHAT: registry sent invalid JSON".
 */
int cli_api_expect(json_t **json_out, cli_response *resp, cli_client *c, const char *method,
                   const char *path, const json_t *body, const char *what);

/**
 * GETs @p path and keeps the body of a 200 answer in memory (at most
 * @p max bytes): *out (malloc'd, NUL-terminated, owned by the caller:
 * free()) and *len_out. Anything but 200 becomes cli_http_error(resp,
 * @p what); transport errors as cli_request_do().
 */
int cli_get_bytes(char **out, size_t *len_out, cli_client *c, const char *path, size_t max,
                  const char *what);

/** The OCI error code of an error answer ("STAGE_EMPTY"), or NULL; points into @p j. */
const char *cli_api_error_code(json_t *j);

/**
 * Exit status for an MLREG_E* code (cli.h): refusals and verification
 * failures 1, local and usage errors 2, unreachable or server errors 3.
 */
int cli_exit_code(int error);

/**
 * Prints "mlreg CMD: <last error message>" to stderr, every character of the
 * message that breaks the text rule (mlreg/text.h) replaced by '?', and
 * returns cli_exit_code(error).
 */
int cli_fail(const char *cmd, int error);

/* ---- registry text on the terminal -------------------------------------------
 *
 * Whatever a registry sends may hold control characters (ESC, CSI U+009B)
 * that a terminal would act on. Nothing from a registry is printed unless
 * it follows the text rule of mlreg/text.h: mlreg_text_printable() for one
 * string, and the helper below for JSON. */

/**
 * Writes @p len bytes of JSON text (a registry answer jansson accepted, or
 * json_dumps() output) to stdout, ending with a newline, with every DEL and
 * C1 control written as its \u00XX escape and every CR and TAB between
 * tokens as a space: the same JSON value, nothing a terminal acts on.
 * --json output goes through here.
 */
void cli_print_json(const char *text, size_t len);

/**
 * Flushes stdout and checks that nothing written to it was lost (a full
 * disk, a closed pipe): 0, or MLREG_EIO "writing to stdout: ...". A command
 * calls it once after its output, before it reports success.
 */
int cli_flush_stdout(void);

/* cli_format_size() (a human-readable byte count) is in progress.h. */

/* ---- transfers of pull (pull.c, pull_chunks.c) -------------------------------- */

/**
 * A new client to the same registry with the same token, TLS settings,
 * stall limit and receive limit as @p c, on its own connection: one per
 * thread of a parallel download (a libcurl easy handle is not shared
 * between threads). *out is freed with cli_client_free(). 0 or MLREG_ENOMEM.
 */
int cli_client_clone(cli_client **out, const cli_client *c);

/**
 * Caps the receive rate of every later request of @p c at @p bytes_per_second
 * (CURLOPT_MAX_RECV_SPEED_LARGE; 0 = no cap).
 */
void cli_client_limit_rate(cli_client *c, uint64_t bytes_per_second);

/**
 * Parses a rate "BYTES[K|M|G]" (powers of 1024, at least 1 byte) into *out.
 * 0 or MLREG_EINVALID naming @p opt.
 */
int cli_rate_parse(uint64_t *out, const char *s, const char *opt);

#endif
