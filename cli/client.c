/* client.c: a small libcurl HTTP client for the registry, plus the output
 * helpers the client commands share (exit codes, registry text on the
 * terminal, sizes).
 *
 * One easy handle per command: curl_easy_reset() between requests keeps the
 * connection cache, so a push of many blobs runs over one keep-alive
 * connection. Request bodies stream from a file descriptor through
 * CURLOPT_READFUNCTION and response bodies stream into a caller's sink, so
 * memory never grows with a file's size. Only the bodies of small JSON
 * answers (manifests, /api/v1) and of error answers are kept in memory, each
 * with a cap.
 *
 * Redirects are followed only when a request asks for it (blob GETs, which an
 * S3-backed registry may redirect to a presigned URL); CURLOPT_UNRESTRICTED_AUTH
 * stays off so credentials never follow a redirect to another host, and only
 * http/https are allowed, also as redirect targets.
 *
 * The bearer token ($MLREG_TOKEN, --token-file or --token, all taken by
 * main.c) is copied into sodium_malloc memory, wiped when the client is freed, and
 * handed to libcurl as CURLOPT_XOAUTH2_BEARER with CURLAUTH_BEARER: that
 * goes through libcurl's auth machinery, so the token, too, never follows a
 * redirect to another host (S3 presigned blob URLs). It is never part of
 * any message. (libcurl keeps its own copy in the easy handle, which it
 * frees without wiping; that much is out of our hands.)
 *
 * TLS: the server's certificate is always verified, against the system's
 * CAs or, with --cacert FILE / $MLREG_CACERT, against that PEM bundle only;
 * there is no switch that turns verification off. --cert FILE and --key
 * FILE ($MLREG_CLIENT_CERT, $MLREG_CLIENT_KEY) present a client certificate
 * (mutual TLS). These options are taken by main.c for every client command,
 * as the token is (cli_tls_take()); the environment reaches every command
 * and every script without touching its command line.
 *
 * A token is never sent over plain http:// to a host that is not loopback
 * (127.0.0.0/8, ::1, localhost): the client refuses before it connects,
 * unless --insecure-http or MLREG_INSECURE_HTTP=1 says the network is
 * trusted (TLS ended by a load balancer in front of the registry, say).
 * The rule holds for every request, also for an absolute URL a registry
 * sent in a Location header.
 */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlreg/buf.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/text.h"

#define ERROR_BODY_MAX (64u * 1024)
#define TOKEN_MAX      4096

/* libcurl's receive buffer for streamed bodies (default 16 KiB): one
 * recv() per 512 KiB instead of per 16 KiB (pull's sinks gather the 16 KiB
 * pieces libcurl hands them into larger writes). */
#define STREAM_BUFFER (512L * 1024)

struct cli_client {
    CURL *curl;
    char *url;
    long stall_seconds; /* MLREG_STALL_SECONDS, or STALL_SECONDS */
    char *token;        /* sodium_malloc'd, NULL when none */
    char *cacert;       /* --cacert / MLREG_CACERT, or NULL: the system's CAs */
    char *cert, *key;   /* --cert, --key / MLREG_CLIENT_CERT, MLREG_CLIENT_KEY, or NULL */
    int insecure_http;  /* --insecure-http / MLREG_INSECURE_HTTP=1 */
    uint64_t rate;      /* bytes per second, 0 = none (cli_client_limit_rate) */
    char errbuf[CURL_ERROR_SIZE];
};

/* The token taken by main.c (MLREG_TOKEN, --token-file or --token), in sodium_malloc memory. */
static char *cli_token;

/* The TLS options taken by main.c (cli_tls_take()); NULL / 0 when not given. */
static const char *cli_cacert, *cli_cert, *cli_key;
static int cli_insecure_http;

/* Per-request state seen by the libcurl callbacks. */
typedef struct {
    const cli_request *req;
    cli_response *resp;
    long status;               /* status of the response being received */
    int cb_error;              /* first error raised inside a callback */
    uint64_t sent;             /* request body bytes handed to libcurl */
    off_t fd_start;            /* offset of body_fd when the request started */
    size_t body_cap;           /* allocated size of resp->body */
    cli_progress shown;        /* the progress display (progress.h) */
    struct timespec last_move; /* stall watch: when a byte last moved */
    curl_off_t last_ul, last_dl;
    int answered;       /* stall watch: the response has begun */
    long stall_seconds; /* the client's stall limit */
    long stalled;       /* the transfer was given up after this many idle seconds */
} transfer;

/* A registry is treated as gone when no byte moves for STALL_SECONDS
 * (MLREG_STALL_SECONDS, 1 to 3600, overrides it) while bytes should be
 * moving. Once the whole request body is sent, though, the
 * registry may take a while to store it before it answers (an object store
 * copies a large blob within itself), so it gets STALL_SECONDS plus one
 * second for every COMMIT_BYTES_PER_SECOND of the body before the stall
 * rule applies again to its answer: 5.5 GiB may take 12 minutes to answer.
 * libcurl's low-speed limit cannot tell the two apart. */
#define STALL_SECONDS           60
#define COMMIT_BYTES_PER_SECOND (8 * 1024 * 1024)

/* libcurl's upload buffer for bodies at least this large (its maximum is
 * 2 MiB; the default 64 KiB costs a callback and a send per 64 KiB). */
#define UPLOAD_BUFFER (1L << 20)

static int curl_ready;

/* A token goes into an HTTP header: printable ASCII without spaces only, so
 * it cannot smuggle a header line in. The message never quotes it. */
static int token_copy(char **out, const char *token)
{
    size_t len = strlen(token);

    *out = NULL;
    if (len == 0 || len > TOKEN_MAX)
        return mlreg_error_set(MLREG_EINVALID, "the token must be 1 to %d characters", TOKEN_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)token[i] <= 0x20 || (unsigned char)token[i] >= 0x7f)
            return mlreg_error_set(MLREG_EINVALID,
                                   "the token may hold printable ASCII characters only "
                                   "(no spaces or control characters)");
    if (sodium_init() < 0 || !(*out = sodium_malloc(len + 1)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    memcpy(*out, token, len + 1);
    return 0;
}

static void token_free(char *token)
{
    if (!token) return;
    sodium_memzero(token, strlen(token));
    sodium_free(token);
}

int cli_token_take(char *token)
{
    int error;

    token_free(cli_token);
    cli_token = NULL;
    error = token_copy(&cli_token, token);
    /* Out of sight of ps(1) and of core dumps from now on. */
    sodium_memzero(token, strlen(token));
    return error;
}

/* A token file holds the token on one line: what `mlreg token new` prints
 * first, redirected to a file. It is read into sodium_malloc memory that is
 * wiped afterwards, and must be a regular file (not a FIFO that a reader
 * could block on, nor a device). The open itself is non-blocking, since
 * opening a FIFO for reading waits for a writer before fstat can tell what
 * it is; the flag is cleared once the file is known to be regular. The
 * extra bytes read past TOKEN_MAX + 1 tell a file that is too large from
 * one that fits. A file every user may read is used (secrets mounted by
 * container runtimes often are 0644) but draws a warning. */
int cli_token_take_file(const char *path)
{
    int error = 0, fd = -1, flags;
    char *buf = NULL;
    size_t len = 0, cap = TOKEN_MAX + 2;
    struct stat st;

    if (!*path) return mlreg_error_set(MLREG_EINVALID, "--token-file needs a file name");
    if (sodium_init() < 0 || !(buf = sodium_malloc(cap + 1)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0 || fstat(fd, &st) < 0) {
        error = mlreg_error_set(MLREG_EIO, "--token-file %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        error = mlreg_error_set(MLREG_EINVALID, "--token-file %s is not a regular file", path);
        goto done;
    }
    if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        error = mlreg_error_set(MLREG_EIO, "--token-file %s: %s", path, strerror(errno));
        goto done;
    }
    if (st.st_mode & S_IROTH)
        fprintf(stderr,
                "mlreg: warning: --token-file %s is readable by every user (chmod 600 it)\n", path);
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = mlreg_error_set(MLREG_EIO, "--token-file %s: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    if (len > TOKEN_MAX + 1) {
        error = mlreg_error_set(MLREG_EINVALID, "--token-file %s is larger than a token (%d bytes)",
                                path, TOKEN_MAX);
        goto done;
    }
    if (len && buf[len - 1] == '\n') len--;
    if (len == 0)
        error = mlreg_error_set(MLREG_EINVALID, "--token-file %s is empty", path);
    else if (memchr(buf, '\n', len))
        error = mlreg_error_set(
            MLREG_EINVALID, "--token-file %s holds more than one line; want the token alone", path);
    else if (memchr(buf, '\0', len))
        error = mlreg_error_set(MLREG_EINVALID, "--token-file %s holds a NUL byte", path);
    if (error < 0) goto done;
    buf[len] = '\0';
    if ((error = cli_token_take(buf)) == MLREG_EINVALID)
        mlreg_error_set(error,
                        "--token-file %s does not hold a usable token (printable ASCII without "
                        "spaces, at most %d characters)",
                        path, TOKEN_MAX);
done:
    if (fd >= 0) close(fd);
    sodium_memzero(buf, cap + 1);
    sodium_free(buf);
    return error;
}

void cli_token_clear(void)
{
    token_free(cli_token);
    cli_token = NULL;
}

/* One value option of cli_tls_take() at argv[*i]: 1 taken, 0 not this
 * option, or an error (missing value, given twice). */
static int tls_opt(const char **slot, int *i, int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, name, n) || (a[n] != '\0' && a[n] != '=')) return 0;
    if (*slot) return mlreg_error_set(MLREG_EINVALID, "%s given twice", name);
    if (a[n] == '=') {
        *slot = a + n + 1;
    } else if (*i + 1 >= argc) {
        return mlreg_error_set(MLREG_EINVALID, "%s needs a value", name);
    } else {
        *slot = argv[++*i];
    }
    if (!**slot) return mlreg_error_set(MLREG_EINVALID, "%s needs a file name", name);
    return 1;
}

int cli_tls_take(int *argc, char **argv, const char *cmd)
{
    int out = 0, r;
    /* `mlreg sign --key` is the signing key (and `mlreg attest --key` the
     * evaluator's): there the client key comes from MLREG_CLIENT_KEY */
    int take_key = strcmp(cmd, "sign") != 0 && strcmp(cmd, "attest") != 0;

    for (int i = 0; i < *argc; i++) {
        if (!strcmp(argv[i], "--insecure-http")) {
            cli_insecure_http = 1;
            continue;
        }
        if ((r = tls_opt(&cli_cacert, &i, *argc, argv, "--cacert")) == 0 &&
            (r = tls_opt(&cli_cert, &i, *argc, argv, "--cert")) == 0 && take_key)
            r = tls_opt(&cli_key, &i, *argc, argv, "--key");
        if (r < 0) return r;
        if (r == 0) argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

/* 1 when @p host (as a URL holds it: an IPv6 literal in brackets) is a
 * loopback address or "localhost", else 0. */
static int host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    char v6[64];
    size_t n = strlen(host);

    if (!strcasecmp(host, "localhost") || !strcasecmp(host, "localhost.")) return 1;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (n > 2 && n - 2 < sizeof(v6) && host[0] == '[' && host[n - 1] == ']') {
        memcpy(v6, host + 1, n - 2);
        v6[n - 2] = '\0';
        return inet_pton(AF_INET6, v6, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return 0;
}

/* The rule of the header comment: no token over plain http:// off
 * loopback. 0, or MLREG_EINVALID naming the host and the way out. */
static int plain_http_check(const cli_client *c, const char *url)
{
    CURLU *u;
    char *host = NULL;
    int error = 0;

    if (!c->token || c->insecure_http || strncasecmp(url, "http://", 7)) return 0;
    if (!(u = curl_url())) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        error = mlreg_error_set(MLREG_EINVALID, "registry url '%s' has no usable host", url);
    else if (!host_is_loopback(host))
        error = mlreg_error_set(MLREG_EINVALID,
                                "refusing to send the API token over plain http:// to %s: use "
                                "the registry's https:// URL, or give --insecure-http (or "
                                "MLREG_INSECURE_HTTP=1) if TLS ends in front of it or the "
                                "network is trusted",
                                mlreg_text_printable(host));
    curl_free(host);
    curl_url_cleanup(u);
    return error;
}

/* A TLS file option (@p given, else the environment variable @p env) into
 * *out, checked to be readable now so that the message names it; NULL
 * when neither is set. */
static int tls_file(char **out, const char *given, const char *flag, const char *env)
{
    const char *v = given, *label = flag;
    int fd;

    *out = NULL;
    if (!v) {
        v = getenv(env);
        label = env;
        if (!v || !*v) return 0;
    }
    if ((fd = open(v, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
        return mlreg_error_set(MLREG_EINVALID, "%s %s: %s", label, v, strerror(errno));
    close(fd);
    if (!(*out = strdup(v))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

/* The TLS settings of a new client: options first, then the environment. */
static int client_tls(cli_client *c)
{
    const char *ins = getenv("MLREG_INSECURE_HTTP");
    int error;

    if ((error = tls_file(&c->cacert, cli_cacert, "--cacert", "MLREG_CACERT")) < 0 ||
        (error = tls_file(&c->cert, cli_cert, "--cert", "MLREG_CLIENT_CERT")) < 0 ||
        (error = tls_file(&c->key, cli_key, "--key", "MLREG_CLIENT_KEY")) < 0)
        return error;
    if (c->key && !c->cert)
        return mlreg_error_set(MLREG_EINVALID,
                               "a client key (--key, MLREG_CLIENT_KEY) needs its certificate "
                               "(--cert, MLREG_CLIENT_CERT)");
    c->insecure_http = cli_insecure_http;
    if (!c->insecure_http && ins && *ins) {
        if (!strcmp(ins, "1"))
            c->insecure_http = 1;
        else if (strcmp(ins, "0"))
            return mlreg_error_set(MLREG_EINVALID, "MLREG_INSECURE_HTTP must be 1 or 0");
    }
    return 0;
}

int cli_client_new(cli_client **out, const char *registry)
{
    int error = 0;
    cli_client *c = NULL;
    size_t len;
    const char *stall;

    *out = NULL;
    if (!registry || !*registry) registry = getenv("MLREG_URL");
    if (!registry || !*registry) registry = CLI_DEFAULT_REGISTRY;
    if (strncmp(registry, "http://", 7) && strncmp(registry, "https://", 8))
        return mlreg_error_set(MLREG_EINVALID,
                               "registry url '%s' must start with http:// or https://", registry);
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return mlreg_error_set(MLREG_ENOMEM, "cannot initialise libcurl");
        curl_ready = 1;
    }
    if (!(c = calloc(1, sizeof(*c))) || !(c->url = strdup(registry)) ||
        !(c->curl = curl_easy_init())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if (cli_token && (error = token_copy(&c->token, cli_token)) < 0) goto done;
    if ((error = client_tls(c)) < 0 || (error = plain_http_check(c, c->url)) < 0) goto done;
    c->stall_seconds = STALL_SECONDS;
    if ((stall = getenv("MLREG_STALL_SECONDS")) != NULL && *stall) {
        char *end;
        long v = strtol(stall, &end, 10);
        if (*end || v < 1 || v > 3600) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "MLREG_STALL_SECONDS must be a number of seconds from 1 to "
                                    "3600");
            goto done;
        }
        c->stall_seconds = v;
    }
    len = strlen(c->url);
    while (len > 0 && c->url[len - 1] == '/')
        c->url[--len] = '\0';
    *out = c;
    c = NULL;
done:
    cli_client_free(c);
    return error;
}

void cli_client_free(cli_client *c)
{
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    token_free(c->token);
    free(c->cacert);
    free(c->cert);
    free(c->key);
    free(c->url);
    free(c);
}

const char *cli_client_url(const cli_client *c)
{
    return c->url;
}

int cli_client_resolve(char **out, const cli_client *c, const char *location, const char *query)
{
    int error = 0;
    CURLU *u = NULL;
    char *url = NULL;

    *out = NULL;
    if (!(u = curl_url())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if (curl_url_set(u, CURLUPART_URL, c->url, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_URL, location, 0) != CURLUE_OK ||
        (query && curl_url_set(u, CURLUPART_QUERY, query, CURLU_APPENDQUERY) != CURLUE_OK) ||
        curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
        error = mlreg_error_set(MLREG_ESERVER, "registry sent an unusable Location '%s'", location);
        goto done;
    }
    if (!(*out = strdup(url))) error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    curl_free(url);
    curl_url_cleanup(u);
    return error;
}

void cli_response_init(cli_response *r)
{
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
}

static void response_clear_headers(cli_response *r)
{
    free(r->content_range); /* pull's ranged GETs */
    r->content_range = NULL;
    free(r->location);
    free(r->content_digest);
    free(r->content_type);
    r->location = r->content_digest = r->content_type = NULL;
    r->content_length = -1;

    free(r->range);
    r->range = NULL;
    r->digest_first = 0;
}

void cli_response_clear(cli_response *r)
{
    response_clear_headers(r);
    free(r->body);
    cli_response_init(r);
}

/* Request body from a descriptor or from memory. A descriptor that ends
 * before body_size bytes means the file shrank under us: abort rather than
 * send a short body the server would have to detect. */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    transfer *t = userdata;
    const cli_request *req = t->req;
    size_t want = size * nitems;
    uint64_t left;

    if (req->source) {
        int64_t n;
        left = req->body_size - t->sent;
        if (want > left) want = (size_t)left;
        if (want == 0) return 0;
        if ((n = req->source->read(req->source->ctx, buf, want)) <= 0) {
            t->cb_error =
                n < 0 ? (int)n : mlreg_error_set(MLREG_EIO, "file shrank while it was being sent");
            return CURL_READFUNC_ABORT;
        }
        t->sent += (uint64_t)n;
        return (size_t)n;
    }
    if (req->body_fd >= 0) {
        left = req->body_size - t->sent;
        if (want > left) want = (size_t)left;
        if (want == 0) return 0;
        for (;;) {
            ssize_t n = read(req->body_fd, buf, want);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                t->cb_error = mlreg_error_set(MLREG_EIO, "read: %s", strerror(errno));
                return CURL_READFUNC_ABORT;
            }
            if (n == 0) {
                t->cb_error = mlreg_error_set(MLREG_EIO, "file shrank while it was being sent");
                return CURL_READFUNC_ABORT;
            }
            t->sent += (uint64_t)n;
            return (size_t)n;
        }
    }
    left = req->body_len - t->sent;
    if (want > left) want = (size_t)left;
    if (want) memcpy(buf, (const char *)req->body + t->sent, want);
    t->sent += want;
    return want;
}

/* libcurl rewinds the body when it must resend it (a reused connection that
 * the server had closed, a redirect). */
static int seek_cb(void *userdata, curl_off_t offset, int origin)
{
    transfer *t = userdata;

    if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
    if (t->req->source) {
        if ((uint64_t)offset > t->req->body_size ||
            t->req->source->seek(t->req->source->ctx, (uint64_t)offset) < 0)
            return CURL_SEEKFUNC_FAIL;
    } else if (t->req->body_fd >= 0) {
        if ((uint64_t)offset > t->req->body_size ||
            lseek(t->req->body_fd, t->fd_start + (off_t)offset, SEEK_SET) < 0)
            return CURL_SEEKFUNC_FAIL;
    } else if ((uint64_t)offset > t->req->body_len) {
        return CURL_SEEKFUNC_FAIL;
    }
    t->sent = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static char *header_value(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    const char *v, *end = line + len;

    if (len <= n || strncasecmp(line, name, n) || line[n] != ':') return NULL;
    v = line + n + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return strndup(v, (size_t)(end - v));
}

/* Headers of every response arrive here, interim ones (100 Continue) and
 * followed redirects included: a status line starts a new response, so the
 * remembered headers are those of the final one. */
static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    transfer *t = userdata;
    size_t len = size * nitems;
    cli_response *r = t->resp;
    char *v;

    clock_gettime(CLOCK_MONOTONIC, &t->last_move); /* a header line is a byte that moved */
    if (len > 5 && !strncmp(buf, "HTTP/", 5)) {
        const char *sp = memchr(buf, ' ', len);
        t->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        /* a "100 Continue" is not the answer the stall watch waits for */
        if (t->status >= 200) t->answered = 1;
        response_clear_headers(r);
        r->body_len = 0;
        return len;
    }
    if ((v = header_value(buf, len, "Location"))) {
        free(r->location);
        r->location = v;
    } else if ((v = header_value(buf, len, "Content-Range"))) {
        free(r->content_range);
        r->content_range = v;
    } else if ((v = header_value(buf, len, "Docker-Content-Digest"))) {
        free(r->content_digest);
        r->content_digest = v;
    } else if ((v = header_value(buf, len, "Content-Type"))) {
        free(r->content_type);
        r->content_type = v;
    } else if ((v = header_value(buf, len, "Content-Length"))) {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        r->content_length = (errno || *end || n < 0) ? -1 : (int64_t)n;
        free(v);
    } else if ((v = header_value(buf, len, "Range"))) {
        free(r->range);
        r->range = v;
    } else if ((v = header_value(buf, len, "Mlreg-Digest-First"))) {
        r->digest_first = !strcasecmp(v, "true");
        free(v);
    }
    return len;
}

static int body_append(transfer *t, const char *data, size_t len, size_t max, int *dropped)
{
    cli_response *r = t->resp;
    mlreg_buf b = {r->body, r->body_len, t->body_cap};
    int error;

    *dropped = 0;
    if (r->body_len + len > max) {
        *dropped = 1;
        return 0;
    }
    error = mlreg_buf_add(&b, data, len);
    r->body = b.p;
    r->body_len = b.len;
    t->body_cap = b.cap;
    return error;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    transfer *t = userdata;
    size_t len = size * nmemb;
    int dropped, error;

    if (t->status >= 200 && t->status < 300) {
        if (t->req->sink) {
            if ((error = t->req->sink(t->req->sink_ctx, data, len)) < 0) {
                t->cb_error = error;
                return 0;
            }
            return len;
        }
        if ((error = body_append(t, data, len, t->req->max_body, &dropped)) < 0) {
            t->cb_error = error;
            return 0;
        }
        if (dropped) {
            t->cb_error =
                mlreg_error_set(MLREG_ESERVER, "response larger than %zu bytes", t->req->max_body);
            return 0;
        }
        return len;
    }
    /* Error bodies: keep the start for the message, drop the rest quietly. */
    if ((error = body_append(t, data, len, ERROR_BODY_MAX, &dropped)) < 0) {
        t->cb_error = error;
        return 0;
    }
    return len;
}

/* The stall watch (see STALL_SECONDS), and the progress display of a
 * request with a title (progress.h: a bar on a terminal, lines in a log).
 * libcurl calls this about once a second even when nothing moves. */
static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    transfer *t = userdata;
    struct timespec now;
    curl_off_t total = ultotal > 0 ? ultotal : dltotal, done = ultotal > 0 ? ulnow : dlnow;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ulnow != t->last_ul || dlnow != t->last_dl) {
        t->last_ul = ulnow;
        t->last_dl = dlnow;
        t->last_move = now;
    } else {
        long idle = (long)(now.tv_sec - t->last_move.tv_sec), allowed = t->stall_seconds;
        /* a session's closing PUT stores what its PATCHes sent (commit_size) */
        if (!t->answered && ulnow >= ultotal)
            allowed += (long)(((uint64_t)ultotal + t->req->commit_size) / COMMIT_BYTES_PER_SECOND);
        if (idle >= allowed) {
            t->stalled = allowed;
            return 1; /* CURLE_ABORTED_BY_CALLBACK */
        }
    }
    if (total > 0) cli_progress_total(&t->shown, (uint64_t)total);
    cli_progress_update(&t->shown, (uint64_t)done, (uint64_t)done);
    return 0;
}

static int curl_failure(cli_client *c, const cli_request *req, const char *url, CURLcode rc)
{
    const char *msg = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    int code;

    switch (rc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: code = MLREG_EINVALID; break;
    case CURLE_OUT_OF_MEMORY: code = MLREG_ENOMEM; break;
    case CURLE_TOO_MANY_REDIRECTS: code = MLREG_ESERVER; break;
    default: code = MLREG_EUNREACHABLE; break;
    }
    if (code == MLREG_EUNREACHABLE)
        return mlreg_error_set(
            code, "registry unreachable: %s %s: %s%s", req->method, url, msg,
            rc == CURLE_PEER_FAILED_VERIFICATION
                ? " (the registry's certificate is not trusted: give its CA with --cacert FILE "
                  "or MLREG_CACERT)"
            : rc == CURLE_GOT_NOTHING && !strncasecmp(url, "http://", 7)
                ? " (if the registry serves HTTPS, use its https:// URL)"
                : "");
    return mlreg_error_set(code, "%s %s: %s", req->method, url, msg);
}

int cli_request_do(cli_response *resp, cli_client *c, const cli_request *req)
{
    int error = 0;
    struct curl_slist *headers = NULL, *h;
    char *url = NULL;
    char line[512];
    transfer t;
    CURL *curl = c->curl;
    CURLcode rc;
    int has_body = req->source || req->body_fd >= 0 || req->body_len > 0;
    uint64_t body_size = req->source || req->body_fd >= 0 ? req->body_size : req->body_len;

    cli_response_clear(resp);
    memset(&t, 0, sizeof(t));
    t.req = req;
    t.resp = resp;
    if (req->body_fd >= 0 && (t.fd_start = lseek(req->body_fd, 0, SEEK_CUR)) < 0) t.fd_start = 0;

    if (!strncmp(req->url, "http://", 7) || !strncmp(req->url, "https://", 8)) {
        url = strdup(req->url);
    } else if ((url = malloc(strlen(c->url) + strlen(req->url) + 1))) {
        strcpy(url, c->url);
        strcat(url, req->url);
    }
    if (!url) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }

    if ((error = plain_http_check(c, url)) < 0) goto done;
    curl_easy_reset(curl);
    c->errbuf[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "mlreg/0.1");
    curl_easy_setopt(curl, CURLOPT_UNRESTRICTED_AUTH, 0L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    /* verification stays on (libcurl's default); a given CA bundle is the
     * only one trusted */
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->cacert) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, c->cacert);
        curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    }
    if (c->cert) {
        curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert);
        if (c->key) curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key);
    }
    if (c->token) {
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, c->token);
    }

    /* libcurl's rate limit waits between reads: with a read as large as a
     * ranged GET of a small chunk there would be nothing to wait between */
    if (c->rate)
        curl_easy_setopt(curl, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)c->rate);
    else if (req->sink)
        curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, STREAM_BUFFER);
    if (!strcmp(req->method, "GET")) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        if (req->range) curl_easy_setopt(curl, CURLOPT_RANGE, req->range);
    } else if (!strcmp(req->method, "HEAD")) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(req->method, "POST")) {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_size);
        if (has_body) {
            curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(curl, CURLOPT_READDATA, &t);
        } else {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        }
    } else if (!strcmp(req->method, "PUT")) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_size);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(curl, CURLOPT_READDATA, &t);
    } else if (!strcmp(req->method, "PATCH")) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PATCH");
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_size);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(curl, CURLOPT_READDATA, &t);
    } else {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (has_body) {
        curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
        /* large bodies in large reads: fewer callbacks, larger writes */
        if (body_size >= UPLOAD_BUFFER)
            curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, (long)UPLOAD_BUFFER);
    }
    if (req->max_send)
        curl_easy_setopt(curl, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)req->max_send);
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        if (!(h = curl_slist_append(headers, req->headers[i]))) goto nomem;
        headers = h;
    }

    cli_progress_begin(&t.shown, req->progress, 0);
    t.stall_seconds = c->stall_seconds;
    clock_gettime(CLOCK_MONOTONIC, &t.last_move);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    if (req->accept) {
        snprintf(line, sizeof(line), "Accept: %s", req->accept);
        if (!(h = curl_slist_append(headers, line))) goto nomem;
        headers = h;
    }
    if (req->content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", req->content_type);
        if (!(h = curl_slist_append(headers, line))) goto nomem;
        headers = h;
    }
    if (headers) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

    rc = curl_easy_perform(curl);
    cli_progress_end(&t.shown);
    if (t.cb_error < 0) {
        error = t.cb_error;
        goto done;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK && t.stalled) {
        error = mlreg_error_set(MLREG_EUNREACHABLE,
                                "registry unreachable: %s %s: nothing moved for %ld seconds",
                                req->method, url, t.stalled);
        goto done;
    }
    if (rc != CURLE_OK) {
        error = curl_failure(c, req, url, rc);
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    /* The handle keeps pointers to this call's state: drop them. */
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    free(url);
    if (error < 0) cli_response_clear(resp);
    return error;
}

int cli_http_error(const cli_response *resp, const char *what)
{
    int code;
    json_t *root = NULL, *errors, *first;
    const char *msg = NULL, *ecode = NULL;

    if (resp->status == 401)
        code = MLREG_EAUTH;
    else if (resp->status == 403)
        code = MLREG_EFORBIDDEN;
    else if (resp->status == 404)
        code = MLREG_ENOTFOUND;
    else if (resp->status == 410)
        code = MLREG_EGONE;
    else if (resp->status >= 400 && resp->status < 500)
        code = MLREG_EDENIED;
    else
        code = MLREG_ESERVER;

    if (resp->body && resp->body_len) root = json_loadb(resp->body, resp->body_len, 0, NULL);
    errors = json_object_get(root, "errors");
    first = json_array_get(errors, 0);
    if (first) {
        msg = json_string_value(json_object_get(first, "message"));
        ecode = json_string_value(json_object_get(first, "code"));
    } else if (root) {
        msg = json_string_value(json_object_get(root, "message"));
        if (!msg) msg = json_string_value(json_object_get(root, "error"));
    }
    if (code == MLREG_EAUTH)
        mlreg_error_set(
            code, "%s: authentication required (set MLREG_TOKEN or --token-file)%s%s (HTTP 401)",
            what, msg ? ": " : "", msg ? mlreg_text_printable(msg) : "");
    else if (code == MLREG_EFORBIDDEN)
        mlreg_error_set(code, "%s: forbidden: %s (HTTP 403)", what,
                        msg ? mlreg_text_printable(msg) : "the token lacks the role this needs");
    else if (msg && ecode)
        mlreg_error_set(code, "%s: %s: %s (HTTP %ld)", what, mlreg_text_printable(ecode),
                        mlreg_text_printable(msg), resp->status);
    else if (msg || ecode)
        mlreg_error_set(code, "%s: %s (HTTP %ld)", what, mlreg_text_printable(msg ? msg : ecode),
                        resp->status);
    else
        mlreg_error_set(code, "%s: HTTP %ld", what, resp->status);
    json_decref(root);
    return code;
}

#define API_MAX (64u * 1024 * 1024)

int cli_api_do(json_t **json_out, cli_response *resp, cli_client *c, const char *method,
               const char *path, const json_t *body)
{
    int error = 0;
    char *text = NULL;
    json_t *j;

    if (json_out) *json_out = NULL;
    if (body && !(text = json_dumps(body, JSON_COMPACT)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    cli_request req = {.method = method,
                       .url = path,
                       .accept = "application/json",
                       .content_type = text ? "application/json" : NULL,
                       .body = text,
                       .body_len = text ? strlen(text) : 0,
                       .body_fd = -1,
                       .max_body = API_MAX};
    error = cli_request_do(resp, c, &req);
    free(text);
    if (error < 0 || !json_out || !resp->body_len) return error;
    j = json_loadb(resp->body, resp->body_len, 0, NULL);
    if (json_is_object(j))
        *json_out = j;
    else
        json_decref(j);
    return 0;
}

int cli_api_expect(json_t **json_out, cli_response *resp, cli_client *c, const char *method,
                   const char *path, const json_t *body, const char *what)
{
    int error;
    json_t *j = NULL;

    *json_out = NULL;
    if ((error = cli_api_do(&j, resp, c, method, path, body)) < 0) return error;
    if (resp->status < 200 || resp->status > 299) {
        json_decref(j);
        return cli_http_error(resp, what);
    }
    if (!j) return mlreg_error_set(MLREG_ESERVER, "%s: registry sent invalid JSON", what);
    *json_out = j;
    return 0;
}

int cli_get_bytes(char **out, size_t *len_out, cli_client *c, const char *path, size_t max,
                  const char *what)
{
    int error = 0;
    cli_response resp;
    cli_request req = {.method = "GET", .url = path, .body_fd = -1, .max_body = max};

    *out = NULL;
    *len_out = 0;
    cli_response_init(&resp);
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status != 200) {
        error = cli_http_error(&resp, what);
        goto done;
    }
    if (!resp.body && !(resp.body = calloc(1, 1))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    *out = resp.body;
    *len_out = resp.body_len;
    resp.body = NULL;
done:
    cli_response_clear(&resp);
    return error;
}

const char *cli_api_error_code(json_t *j)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(j, "errors"), 0), "code"));
}

int cli_exit_code(int error)
{
    switch (error) {
    case 0: return 0;
    case MLREG_ENOTFOUND:
    case MLREG_EEXISTS:
    case MLREG_EMISMATCH:
    case MLREG_EAUTH:
    case MLREG_EFORBIDDEN:
    case MLREG_EGATE:
    case MLREG_EDENIED:
    case MLREG_EGONE:
    case MLREG_EBLOBUNKNOWN: return 1;
    case MLREG_EUNREACHABLE:
    case MLREG_ESERVER: return 3;
    default: return 2;
    }
}

/* Messages quote registry text (fields are already replaced by
 * cli_printable where they are quoted, but a message may also carry what a
 * library function quoted): one last pass through the text rule before a
 * message reaches the terminal. */
int cli_fail(const char *cmd, int error)
{
    const char *msg = mlreg_error_last();
    char safe[1024];

    if (!*msg) msg = mlreg_strerror(error);
    mlreg_text_sanitize(safe, sizeof(safe), msg, strlen(msg));
    fprintf(stderr, "mlreg %s: %s\n", cmd, safe);
    return cli_exit_code(error);
}

int cli_flush_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout))
        return mlreg_error_set(MLREG_EIO, "writing to stdout: %s", strerror(errno));
    return 0;
}

/* jansson escapes C0 controls in what it writes and refuses them raw in what
 * it reads, and refuses bytes that are not UTF-8; DEL and C1 controls are
 * legal raw in a JSON string, and in valid JSON they occur only inside
 * strings. So writing each of them as its \u escape keeps the same JSON
 * value. Raw CR and TAB can only be whitespace between tokens, where a
 * space means the same: a CR would move the cursor back over what the
 * terminal showed earlier on the line. Whatever else breaks the text rule
 * (impossible in text jansson accepted) is written as '?'. */
void cli_print_json(const char *text, size_t len)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t i = 0, k;

    while (i < len) {
        k = mlreg_text_span(text + i, len - i);
        fwrite(text + i, 1, k, stdout);
        if ((i += k) == len) break;
        if (u[i] == '\n') {
            putchar(u[i++]); /* whitespace between JSON tokens */
        } else if (u[i] == '\r' || u[i] == '\t') {
            putchar(' ');
            i++;
        } else if (u[i] < 0x80) {
            printf("\\u%04x", u[i++]);
        } else if (u[i] == 0xc2 && i + 1 < len && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f) {
            printf("\\u%04x", u[i + 1]);
            i += 2;
        } else {
            putchar('?');
            i++;
        }
    }
    if (!len || text[len - 1] != '\n') putchar('\n');
}

/* ---- transfers of pull ---------------------------------------------------------------- */

static int strdup_opt(char **out, const char *s)
{
    *out = NULL;
    if (s && !(*out = strdup(s))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

int cli_client_clone(cli_client **out, const cli_client *c)
{
    int error = 0;
    cli_client *n = NULL;

    *out = NULL;
    if (!(n = calloc(1, sizeof(*n))) || !(n->url = strdup(c->url)) ||
        !(n->curl = curl_easy_init())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((c->token && (error = token_copy(&n->token, c->token)) < 0) ||
        (error = strdup_opt(&n->cacert, c->cacert)) < 0 ||
        (error = strdup_opt(&n->cert, c->cert)) < 0 || (error = strdup_opt(&n->key, c->key)) < 0)
        goto done;
    n->insecure_http = c->insecure_http;
    n->stall_seconds = c->stall_seconds;
    n->rate = c->rate;
    *out = n;
    n = NULL;
done:
    cli_client_free(n);
    return error;
}

void cli_client_limit_rate(cli_client *c, uint64_t bytes_per_second)
{
    c->rate = bytes_per_second;
}

int cli_rate_parse(uint64_t *out, const char *s, const char *opt)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    *out = 0;
    if (!s || !(*s >= '0' && *s <= '9')) goto bad;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno) goto bad;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (*end || v == 0 || v > (UINT64_MAX >> 1) >> shift) goto bad;
    *out = (uint64_t)v << shift;
    return 0;
bad:
    return mlreg_error_set(MLREG_EINVALID, "%s wants a rate in bytes per second: BYTES[K|M|G]",
                           opt);
}
