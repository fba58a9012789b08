/* s3_internal.h: what the files of the S3 client share, and nothing else
 * includes, apart from the unit suites and the fuzz target of its parsers.
 *
 *   s3.c           the client object, single-object operations, listings,
 *                  the pull reader
 *   s3_transfer.c  one request: signed easy handle, response classification,
 *                  retries with backoff and jitter
 *   s3_multipart.c multipart uploads (parts in flight on a multi handle),
 *                  ListMultipartUploads and the clean-up of open uploads
 *   s3_xml.c       the parsers of S3 response bodies
 *
 * Symbols shared between these files carry the mlreg_s3__ prefix; the
 * public API is mlreg/s3.h. Strings in the structs below are borrowed for
 * the duration of a request unless a comment says otherwise.
 */
#ifndef MLREG_S3_INTERNAL_H
#define MLREG_S3_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/buf.h"
#include "mlreg/s3.h"
#include "mlreg/sigv4.h"

#define MLREG_S3__MAX_PARAMS 6
#define MLREG_S3__MAX_HDRS   4
/** How much of an error body is kept (the start, which holds the code). */
#define MLREG_S3__ERROR_BODY_MAX (64u << 10)
/** Largest listing page collected. */
#define MLREG_S3__LIST_BODY_MAX (16u << 20)
/** Returned by an on_data callback to pause the transfer (pull reader). */
#define MLREG_S3__PAUSE    0x7fff0001
#define MLREG_S3__POOL_MAX 16

struct mlreg_s3 {
    char *scheme_host; /* "http://127.0.0.1:7480" or "https://bucket.s3.amazonaws.com" */
    char *host;        /* Host header value */
    char *base_path;   /* "/bucket" (path style) or "" */
    char *bucket, *region, *prefix, *access_key, *secret_key, *session_token, *ca_file;
    size_t secret_len;
    int insecure, global_init;
    unsigned int parts_in_flight, max_attempts, retry_base_ms, retry_max_ms, retry_total_ms;
    struct mlreg_metrics_series
        *retries; /* mlreg_s3_retries_total (metrics.h; NULL: not counted) */
    unsigned int connect_timeout_ms, low_speed_seconds, presign_seconds;
    uint64_t part_size, copy_threshold;
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    /* Idle easy handles for blocking requests. A handle keeps its open
     * connections across curl_easy_reset, so taking one from here reuses a
     * connection; one thread uses a handle at a time. The share handle only
     * carries DNS and TLS sessions: curl does not support one connection
     * cache used by concurrent threads. */
    pthread_mutex_t pool_lock;
    CURL *pool[MLREG_S3__POOL_MAX];
    unsigned int npool;
    /* requests sent, retries included (mlreg_s3_counts), atomically */
    uint64_t sent_get, sent_put, sent_head, sent_delete, sent_list, sent_other;
};

/* What to send. Everything is borrowed for the duration of the request. */
typedef struct {
    const char *method;
    const char *key; /* NULL: the bucket itself */
    mlreg_sigv4_param params[MLREG_S3__MAX_PARAMS];
    size_t nparams;
    const char *hdr_name[MLREG_S3__MAX_HDRS], *hdr_value[MLREG_S3__MAX_HDRS];
    size_t nhdrs;
    const unsigned char *body;
    size_t body_len;
    int has_body;
    const char *payload_hash; /* NULL: computed (or the empty hash) */
    /* sent as If-None-Match and NOT signed (a SigV4 signature need not
     * cover it), so a proxy or an emulator that drops it is caught by the
     * conditional-create probe instead of failing as a bad signature */
    const char *if_none_match;
    int head;
    int check_200_error;
    mlreg_s3_data_cb on_data; /* 2xx bodies; NULL: collected (up to collect_max) */
    void *payload;
    size_t collect_max;
} mlreg_s3__req;

/* One attempt of one request. */
typedef struct {
    CURL *easy;
    mlreg_s3 *pool_owner; /* non-NULL: easy goes back to this client's pool */
    struct curl_slist *hl;
    char *url;
    char errbuf[CURL_ERROR_SIZE];
    const mlreg_s3__req *rq;
    size_t body_off;
    long status;
    int headers_done;
    mlreg_buf body;
    int overflow;
    int cb_rc;
    int paused;
    uint64_t delivered;
    uint64_t content_length;
    int has_length;
    char request_id[128];
    char etag[160];
    char meta_sig[MLREG_S3_META_SIG_MAX + 1]; /* x-amz-meta-mlreg-signature of the answer */
    char range_hdr[80];
    /* Content-Range "bytes a-b/total" of a 206: first byte and total */
    uint64_t range_first, range_total;
    int has_range;
} mlreg_s3__xfer;

/* How an attempt ended (mlreg_s3__xfer_outcome). */
enum { MLREG_S3__OUT_OK = 0, MLREG_S3__OUT_RETRY = 1, MLREG_S3__OUT_FAIL = 2 };

/* ---- s3_transfer.c ---- */

/* Milliseconds of the monotonic clock. */
uint64_t mlreg_s3__now_ms(void);
/* A random 32-bit value for backoff jitter (never fails). */
uint32_t mlreg_s3__rnd32(void);
/* Appends @p len bytes to @p b (mlreg_buf_add) unless that makes it longer
 * than @p max: 0 or -1 (over @p max, or out of memory); the caller says
 * which body it was in its own message. */
int mlreg_s3__membuf_add(mlreg_buf *b, const void *data, size_t len, size_t max);
/* The request path of @p key (NULL: the bucket), unencoded, as it is signed,
 * in a new malloc'd string (*raw_out). 0 or MLREG_ENOMEM. */
int mlreg_s3__build_path(char **raw_out, mlreg_s3 *s3, const char *key);

/* Prepares one attempt of @p rq in @p x: a signed easy handle. @p range
 * overrides the Range header (resumed GETs). @p pooled: take the handle from
 * the client's pool (blocking requests only; transfers on a multi handle use
 * fresh handles). On success the caller owns @p x (mlreg_s3__xfer_cleanup);
 * on failure nothing is left to free. */
int mlreg_s3__xfer_setup(mlreg_s3__xfer *x, mlreg_s3 *s3, const mlreg_s3__req *rq,
                         const char *range, int pooled);
/* Releases what @p x holds (a pooled handle goes back to the pool) and zeroes
 * it; a zeroed @p x is a no-op. */
void mlreg_s3__xfer_cleanup(mlreg_s3__xfer *x);
/* Classifies a finished attempt (@p rc: curl's result): MLREG_S3__OUT_OK,
 * _RETRY or _FAIL; unless OK, sets the message and *error. */
int mlreg_s3__xfer_outcome(int *error, mlreg_s3__xfer *x, CURLcode rc, unsigned int attempt);
/* Waits before retry @p attempt of a request started at @p started when
 * the attempt count and time budget allow it: 1, or 0 when out of budget. */
int mlreg_s3__backoff(mlreg_s3 *s3, unsigned int attempt, uint64_t started);
/* Runs @p rq with retries. On success *x_out (when non-NULL) keeps the last
 * attempt (status, headers, collected body), owned by the caller
 * (mlreg_s3__xfer_cleanup). 0 or the error of the last attempt. */
int mlreg_s3__run_request(mlreg_s3__xfer *x_out, mlreg_s3 *s3, const mlreg_s3__req *rq,
                          const char *range);

/* 1 when a response with @p status and S3 error @p code (may be NULL) is
 * worth retrying: 5xx but 501, 429, and the codes SlowDown, RequestTimeout,
 * InternalError, ServiceUnavailable whatever the status. */
int mlreg_s3__status_is_retryable(long status, const char *code);
/* 1 when a libcurl result (a CURLcode) is transient: timeouts, resets,
 * refused or dropped connections, partial transfers. */
int mlreg_s3__curl_is_retryable(int curl_code);
/* Full-jitter backoff before retry number @p attempt (1 = first retry):
 * uniform in [0, min(max_ms, base_ms * 2^(attempt-1))], using @p rnd (any
 * 32-bit random value). */
unsigned int mlreg_s3__backoff_ms(unsigned int attempt, unsigned int base_ms, unsigned int max_ms,
                                  uint32_t rnd);
/* Builds the message for a failed S3 response into @p out: "s3 METHOD KEY:
 * STATUS CODE[: MESSAGE] (request id ID)", parsing CODE, MESSAGE and
 * RequestId from the XML @p body (may be NULL) when present. Returns the
 * MLREG_E* code for the response (see mlreg/s3.h). */
int mlreg_s3__error_from_response(char *out, size_t outlen, const char *method, const char *key,
                                  long status, const char *body, size_t body_len,
                                  const char *header_request_id);

/* ---- s3_multipart.c ---- */

/* UploadPartCopy of bytes @p first .. @p last (inclusive) of @p copy_source
 * (the encoded x-amz-copy-source value) as the next part of @p u; its ETag
 * is recorded for the completion. 0 or an error (@p u is then to be
 * aborted). */
int mlreg_s3__upload_copy_part(mlreg_s3_upload *u, const char *copy_source, uint64_t first,
                               uint64_t last);

/* ---- s3_xml.c: parsers of response bodies ----
 *
 * Every parser reads exactly @p len bytes of @p xml (no NUL needed), never
 * past them; every string it writes is NUL-terminated within the size it is
 * given. Only the subset of XML that S3 sends is understood: elements
 * without attributes found by name at any depth, text with the five named
 * entities and ASCII numeric ones. Anything else (CDATA, comments, markup
 * inside a text element) is refused, never guessed at. */

/* Finds the first <@p tag>…</@p tag> in @p xml at any depth and writes its
 * text, entities decoded, into @p out (@p outlen bytes, NUL-terminated).
 * Returns the text length, MLREG_ENOTFOUND when absent, MLREG_EINVALID for
 * an unterminated element, a bad entity, markup inside the text, or text
 * longer than @p outlen - 1. */
int mlreg_s3__xml_text(char *out, size_t outlen, const char *xml, size_t len, const char *tag);
/* Iterates over the <@p tag> elements of @p xml: on the first call *pos is
 * 0; returns 1 with *inner and *inner_len set to the element's content (a
 * range of @p xml) and *pos advanced, 0 when there are no more,
 * MLREG_EINVALID for an unterminated one. */
int mlreg_s3__xml_next(const char **inner, size_t *inner_len, size_t *pos, const char *xml,
                       size_t len, const char *tag);

/* The fields of an <Error> body; "" where absent or malformed. */
typedef struct {
    char code[128];
    char message[256];
    char request_id[128];
} mlreg_s3__error_body;

/* Parses an error body (@p xml may be NULL when @p len is 0). Never fails. */
void mlreg_s3__xml_error(mlreg_s3__error_body *out, const char *xml, size_t len);
/* 1 when a 2xx body (CompleteMultipartUpload, CopyObject, UploadPartCopy)
 * is an <Error> after all, else 0. The body is read as text: up to its first
 * NUL byte. */
int mlreg_s3__xml_is_error(const char *xml, size_t len);
/* <UploadId> of an InitiateMultipartUploadResult into @p out: as
 * mlreg_s3__xml_text (0 for an empty one). */
int mlreg_s3__xml_initiate_result(char *out, size_t outlen, const char *xml, size_t len);
/* <ETag> of a CopyPartResult into @p out: as mlreg_s3__xml_text. */
int mlreg_s3__xml_copy_part_result(char *out, size_t outlen, const char *xml, size_t len);

/* One ListObjectsV2 page (ListBucketResult). */
typedef struct {
    int truncated;         /* another page follows */
    char next_token[4096]; /* its NextContinuationToken, when truncated */
} mlreg_s3__objects_page;

/* Parses a ListObjectsV2 page of the listing of @p prefix (named in
 * messages): @p cb for each <Contents> in order, then *page. 0, @p cb's
 * non-zero value (parsing stops there), or MLREG_EIO / MLREG_EINVALID for a
 * malformed page (entries before the fault were already given to @p cb). */
int mlreg_s3__xml_list_objects(mlreg_s3__objects_page *page, const char *xml, size_t len,
                               const char *prefix, mlreg_s3_list_cb cb, void *payload);

/* One ListMultipartUploads page (ListMultipartUploadsResult). */
typedef struct {
    int truncated;         /* another page follows */
    char key_marker[1024]; /* its NextKeyMarker, when truncated */
    char id_marker[1024];  /* its NextUploadIdMarker, when truncated */
} mlreg_s3__uploads_page;

/* Parses a ListMultipartUploads page as mlreg_s3__xml_list_objects, with
 * @p cb for each <Upload> (key, non-empty upload id). */
int mlreg_s3__xml_list_uploads(mlreg_s3__uploads_page *page, const char *xml, size_t len,
                               const char *prefix, mlreg_s3_upload_cb cb, void *payload);

/* ---- knobs for tests (s3.c, blob_s3.c) ---- */

struct mlreg_blob_backend;

/* Copies larger than @p threshold bytes use multipart UploadPartCopy (5 GiB,
 * the CopyObject limit, otherwise): lowered only so that a small blob takes
 * the path of objects over 5 GiB. Not thread-safe: set before use. */
void mlreg_s3__set_copy_threshold(mlreg_s3 *s3, uint64_t threshold);
/* The client of an s3 blob backend (mlreg_blob_backend_s3_new), valid while
 * @p b lives. */
mlreg_s3 *mlreg_s3__backend_client(struct mlreg_blob_backend *b);
/* The client the backend's check() sends its listing with, valid while
 * @p b lives (tests count its requests). */
mlreg_s3 *mlreg_s3__backend_check_client(struct mlreg_blob_backend *b);
/* The age past which a start removes an in-progress write (blob_s3.c);
 * MLREG_S3_STALE_WRITE_SECONDS unless a test lowers it (-1: every one). */
void mlreg_s3__set_stale_write_seconds(long seconds);

#endif
