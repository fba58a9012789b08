/* server_forward.c: upload requests for a session another node holds.
 *
 * Upload sessions live in the memory of the node that opened them (their
 * writer streams into the store from there). Behind a load balancer the
 * next request of a session may reach any node: a node that gets a request
 * for a session whose uuid carries another node's tag (server_uploads.c)
 * forwards it to that node, found by its heartbeat in the store (cluster.h),
 * and relays the answer. The body is streamed, never held: the request's
 * pieces go through a pipe to a thread that sends them with libcurl, so
 * memory does not grow with the chunk. The caller's Authorization header
 * goes along (every node has the same tokens), and the owner checks
 * everything as for a request of its own; a forwarded request carries
 * X-Mlreg-Forwarded and is never forwarded again.
 */
#include "server_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mlreg/buf.h"
#include "mlreg/cluster.h"
#include "mlreg/common.h"
#include "server_http.h"

/* The owner's answers to upload requests are short: headers and at most an
 * error body. */
#define ANSWER_MAX  (64u * 1024)
#define HEADERS_MAX 8

struct forward {
    CURL *easy;
    struct curl_slist *hl;
    char *url;
    int pipe_rd, pipe_wr; /* the request body, from the MHD thread to curl */
    pthread_t thread;
    int started;
    CURLcode rc;
    long status;
    mlreg_buf answer;
    int answer_over;
    struct {
        char name[32];
        char value[512];
    } hdr[HEADERS_MAX];
    size_t nhdr;
    char errbuf[CURL_ERROR_SIZE];
};

/* The owner's headers relayed to the client. */
static const char *const relayed[] = {
    "Location",     "Range",       "Docker-Upload-UUID", "Docker-Content-Digest",
    "Content-Type", "Retry-After", "WWW-Authenticate"};

static size_t on_read(char *buf, size_t size, size_t n, void *p)
{
    forward *f = p;
    ssize_t got;

    while ((got = read(f->pipe_rd, buf, size * n)) < 0 && errno == EINTR)
        ;
    return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

static size_t on_write(char *data, size_t size, size_t n, void *p)
{
    forward *f = p;
    size_t len = size * n;

    if (f->answer.len + len > ANSWER_MAX) {
        f->answer_over = 1;
        return 0;
    }
    return mlreg_buf_add(&f->answer, data, len) < 0 ? 0 : len;
}

static size_t on_header(char *data, size_t size, size_t n, void *p)
{
    forward *f = p;
    size_t len = size * n, i, nl;
    char line[600], *colon, *v;

    nl = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
    memcpy(line, data, nl);
    line[nl] = '\0';
    while (nl > 0 && (line[nl - 1] == '\n' || line[nl - 1] == '\r'))
        line[--nl] = '\0';
    if (!strncmp(line, "HTTP/", 5)) {
        f->nhdr = 0; /* a new response (after a 100 Continue) */
        return len;
    }
    if ((colon = strchr(line, ':')) == NULL) return len;
    *colon = '\0';
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    for (i = 0; i < sizeof(relayed) / sizeof(relayed[0]); i++) {
        if (strcasecmp(line, relayed[i]) || f->nhdr >= HEADERS_MAX) continue;
        snprintf(f->hdr[f->nhdr].name, sizeof(f->hdr[0].name), "%s", relayed[i]);
        snprintf(f->hdr[f->nhdr].value, sizeof(f->hdr[0].value), "%s", v);
        f->nhdr++;
    }
    return len;
}

static void *run(void *p)
{
    forward *f = p;

    f->rc = curl_easy_perform(f->easy);
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
    /* the owner answered (or failed): a body still coming meets EPIPE */
    close(f->pipe_rd);
    f->pipe_rd = -1;
    return NULL;
}

static int add_header(forward *f, const char *name, const char *value)
{
    char line[1200];
    struct curl_slist *n;

    snprintf(line, sizeof(line), "%s: %s", name, value);
    if ((n = curl_slist_append(f->hl, line)) == NULL) return -1;
    f->hl = n;
    return 0;
}

void mlreg_server__forward_free(forward *f)
{
    if (f == NULL) return;
    if (f->pipe_wr >= 0) close(f->pipe_wr);
    if (f->started) pthread_join(f->thread, NULL);
    if (f->pipe_rd >= 0) close(f->pipe_rd);
    if (f->easy) curl_easy_cleanup(f->easy);
    curl_slist_free_all(f->hl);
    free(f->answer.p);
    free(f->url);
    free(f);
}

/* Builds the request to the owner and starts sending it. */
static int start(forward *f, request *rq, const char *owner_url)
{
    const char *query = mlreg_server__req_raw_query(rq);
    const char *h;
    int fds[2];

    if (asprintf(&f->url, "%s%s%s%s", owner_url, rq->path, query ? "?" : "", query ? query : "") <
        0) {
        f->url = NULL;
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    if ((f->easy = curl_easy_init()) == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (pipe2(fds, O_CLOEXEC) < 0)
        return mlreg_error_set(MLREG_EIO, "cannot make a pipe: %s", strerror(errno));
    f->pipe_rd = fds[0];
    f->pipe_wr = fds[1];
    if (((h = mlreg_server__req_header(rq, "Authorization")) &&
         add_header(f, "Authorization", h)) ||
        ((h = mlreg_server__req_header(rq, "Content-Type")) && add_header(f, "Content-Type", h)) ||
        ((h = mlreg_server__req_header(rq, "Content-Range")) &&
         add_header(f, "Content-Range", h)) ||
        (rq->id[0] && add_header(f, "X-Request-Id", rq->id)) ||
        add_header(f, "X-Mlreg-Forwarded", "1"))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    {
        /* no 100-continue round trip: the owner reads the body as it comes */
        struct curl_slist *n = curl_slist_append(f->hl, "Expect:");
        if (n == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        f->hl = n;
    }
    curl_easy_setopt(f->easy, CURLOPT_URL, f->url);
    curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->hl);
    curl_easy_setopt(f->easy, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(f->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(f->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(f->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(f->easy, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(f->easy, CURLOPT_ERRORBUFFER, f->errbuf);
    /* TLS between nodes: the owner's certificate is checked against
     * cluster.ca_file (else the system's CAs); under mutual TLS this node
     * shows its own certificate, which the owner's tls.client_ca_file must
     * have signed, as it shows it to clients (docs/operations.md). */
    if (rq->srv->peer_ca_file != NULL)
        curl_easy_setopt(f->easy, CURLOPT_CAINFO, rq->srv->peer_ca_file);
    if (rq->srv->tls_mutual && rq->conf->file != NULL && rq->conf->file->tls.cert_file != NULL) {
        curl_easy_setopt(f->easy, CURLOPT_SSLCERT, rq->conf->file->tls.cert_file);
        curl_easy_setopt(f->easy, CURLOPT_SSLKEY, rq->conf->file->tls.key_file);
    }
    curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
    if (!strcmp(rq->method, "HEAD")) {
        curl_easy_setopt(f->easy, CURLOPT_NOBODY, 1L);
    } else if (rq->has_body) {
        curl_easy_setopt(f->easy, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(f->easy, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(f->easy, CURLOPT_READDATA, f);
        /* the same framing as the client's: the owner checks the length */
        if (rq->has_length)
            curl_easy_setopt(f->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->content_length);
    } else if (strcmp(rq->method, "GET") != 0) {
        /* PUT or DELETE without a body: an empty one, Content-Length 0 */
        curl_easy_setopt(f->easy, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(f->easy, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (!rq->has_body) {
        close(f->pipe_wr);
        f->pipe_wr = -1;
    }
    if (pthread_create(&f->thread, NULL, run, f) != 0)
        return mlreg_error_set(MLREG_EIO, "cannot start the forwarding thread");
    f->started = 1;
    return 0;
}

int mlreg_server__forward_begin(request *rq)
{
    mlreg_cluster *cl = mlreg_registry_cluster(rq->srv->reg);
    forward *f = NULL;
    char *owner_url = NULL;
    int error;

    if (cl == NULL || mlreg_server__req_header(rq, "X-Mlreg-Forwarded") != NULL)
        return mlreg_error_set(MLREG_ENOTFOUND, "upload %.64s unknown", rq->arg);
    if ((error = mlreg_cluster_node_url(&owner_url, cl, rq->arg)) < 0)
        return mlreg_error_set(error == MLREG_ENOTFOUND ? MLREG_ENOTFOUND : error,
                               "upload %.64s unknown: the node holding it is not live (%s)",
                               rq->arg, mlreg_error_last());
    if ((f = calloc(1, sizeof(*f))) == NULL) {
        free(owner_url);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    f->pipe_rd = f->pipe_wr = -1;
    error = start(f, rq, owner_url);
    free(owner_url);
    if (error < 0) {
        mlreg_server__forward_free(f);
        return error;
    }
    rq->fwd = f;
    rq->body = rq->has_body ? BODY_FORWARD : BODY_NONE;
    return 0;
}

enum MHD_Result mlreg_server__forward_body(request *rq, const char *data, size_t len)
{
    forward *f = rq->fwd;

    while (len > 0 && f->pipe_wr >= 0) {
        ssize_t n = write(f->pipe_wr, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            /* the owner answered early (or went away): its answer stands,
             * the rest of the body is dropped */
            close(f->pipe_wr);
            f->pipe_wr = -1;
            mlreg_server__req_discard(rq);
            return MHD_YES;
        }
        data += n;
        len -= (size_t)n;
    }
    return MHD_YES;
}

enum MHD_Result mlreg_server__forward_finish(request *rq)
{
    forward *f = rq->fwd;
    struct MHD_Response *resp;
    size_t i;

    if (f->pipe_wr >= 0) {
        close(f->pipe_wr); /* the end of the body */
        f->pipe_wr = -1;
    }
    pthread_join(f->thread, NULL);
    f->started = 0;
    if (f->rc != CURLE_OK || f->status < 100 || f->answer_over) {
        mlreg_error_set(MLREG_ESERVER, "forwarding %s %s to the node holding the upload: %s",
                        rq->method, rq->path,
                        f->answer_over ? "its answer is too long"
                        : f->errbuf[0] ? f->errbuf
                                       : curl_easy_strerror(f->rc));
        return mlreg_server__reply_error(rq, MLREG_ESERVER, ERR_CTX_UPLOAD);
    }
    resp = MHD_create_response_from_buffer(f->answer.len, f->answer.p ? f->answer.p : "",
                                           MHD_RESPMEM_MUST_COPY);
    for (i = 0; resp != NULL && i < f->nhdr; i++)
        if (mlreg_server__resp_header(resp, f->hdr[i].name, f->hdr[i].value) < 0) {
            MHD_destroy_response(resp);
            resp = NULL;
        }
    return mlreg_server__req_queue(rq, (unsigned int)f->status, resp, f->answer.len);
}
