/**
 * @file s3.h
 * @brief A small, strict S3 client over libcurl (easy + multi), signing with
 *        mlreg's own SigV4 (sigv4.h).
 *
 * Every failed request sets a message naming the method, the key, the HTTP
 * status, the S3 error code and the request id, e.g.
 * `s3 PUT blobs/sha256/ab…: 403 SignatureDoesNotMatch (request id tx00…)`.
 * Credentials never appear in messages.
 *
 * Error codes: MLREG_ENOTFOUND (404 NoSuchKey / NoSuchUpload / 404 on HEAD),
 * MLREG_EAUTH (401/403 with a signature or access key code), MLREG_EFORBIDDEN
 * (other 403), MLREG_ERANGE (416), MLREG_ESERVER (5xx, 429, S3 error inside a
 * 200), MLREG_EUNREACHABLE (connection, timeout, TLS), MLREG_EIO (other
 * 4xx, malformed responses), MLREG_EINVALID, MLREG_ENOMEM.
 *
 * Idempotent requests (GET, HEAD, PUT of a buffer, DELETE, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload, copies, listings) are retried
 * on 5xx, 429, SlowDown/RequestTimeout/InternalError codes, timeouts and
 * connection resets, with exponential backoff and full jitter, bounded in
 * attempts and total time. CreateMultipartUpload is retried too: a lost
 * response only leaves an empty upload behind, which the start-up cleanup
 * (mlreg_s3_abort_uploads) removes.
 *
 * A client is thread-safe: connections, DNS and TLS sessions are shared
 * through a curl share handle with locks; each call uses its own easy handle.
 */
#ifndef MLREG_S3_H
#define MLREG_S3_H

#include <stddef.h>
#include <stdint.h>

#include "mlreg/digest.h"

/** S3 limits the backend works within. */
#define MLREG_S3_MIN_PART_SIZE   (5ull << 20)
#define MLREG_S3_MAX_PART_SIZE   (5ull << 30)
#define MLREG_S3_MAX_PARTS       10000u
#define MLREG_S3_MAX_OBJECT_SIZE (5ull << 40)
/** Largest single PUT / CopyObject (5 GiB). */
#define MLREG_S3_MAX_SINGLE_PUT (5ull << 30)
/** The part size mlreg starts from, and the single-PUT threshold (8 MiB). */
#define MLREG_S3_DEFAULT_PART_SIZE (8ull << 20)
/** An in-progress blob write (multipart upload, temp object) begun this
 *  long ago is a crash's leftover, removed at the next start of any node:
 *  a single blob write may last up to a day. */
#define MLREG_S3_STALE_WRITE_SECONDS (24 * 3600)

/** Connection and behaviour settings. Strings are copied by mlreg_s3_new. */
typedef struct mlreg_s3_config {
    const char *endpoint;            /**< "https://s3.amazonaws.com", "http://127.0.0.1:7480" */
    const char *region;              /**< "us-east-1" when NULL */
    const char *bucket;              /**< required */
    const char *prefix;              /**< key prefix for the blob backend ("" when NULL) */
    int path_style;                  /**< 1: endpoint/bucket/key; 0: bucket.endpoint/key */
    const char *access_key;          /**< NULL: $AWS_ACCESS_KEY_ID */
    const char *secret_key;          /**< NULL: $AWS_SECRET_ACCESS_KEY */
    const char *session_token;       /**< NULL: $AWS_SESSION_TOKEN (may be unset) */
    const char *ca_file;             /**< custom CA bundle; NULL: system default */
    int insecure_skip_verify;        /**< 1 disables TLS verification (tests only) */
    unsigned int parts_in_flight;    /**< concurrent UploadPart requests; 0: 4 */
    unsigned int max_attempts;       /**< per request, first try included; 0: 5 */
    unsigned int retry_base_ms;      /**< first backoff ceiling; 0: 100 */
    unsigned int retry_max_ms;       /**< largest backoff ceiling; 0: 5000 */
    unsigned int retry_total_ms;     /**< time budget per request incl. retries; 0: 120000 */
    unsigned int connect_timeout_ms; /**< 0: 10000 */
    unsigned int low_speed_seconds;  /**< abort a transfer under 1 byte/s this long; 0: 60 */
    unsigned int presign_seconds;    /**< redirect URL lifetime; 0: 300 */
    uint64_t part_size;              /**< first part size (>= 5 MiB); 0: 8 MiB */
} mlreg_s3_config;

typedef struct mlreg_s3 mlreg_s3;

/**
 * Creates a client. Credentials come from @p cfg or the environment; a
 * missing one is MLREG_EINVALID. No request is sent. The secret is kept in
 * memory wiped on free. Caller owns *out (mlreg_s3_free).
 */
int mlreg_s3_new(mlreg_s3 **out, const mlreg_s3_config *cfg);
/** Frees the client; NULL is a no-op. */
void mlreg_s3_free(mlreg_s3 *s3);
/** The configured key prefix ("" when none); valid while @p s3 lives. */
const char *mlreg_s3_prefix(const mlreg_s3 *s3);
/** The settings in effect (defaults filled in); valid while @p s3 lives. */
unsigned int mlreg_s3_parts_in_flight(const mlreg_s3 *s3);
/** The configured first part size (8 MiB unless set). */
uint64_t mlreg_s3_first_part_size(const mlreg_s3 *s3);
/** The presigned URL lifetime in seconds. */
unsigned int mlreg_s3_presign_seconds(const mlreg_s3 *s3);

/** Receives body bytes; non-zero stops the transfer and is returned. */
typedef int (*mlreg_s3_data_cb)(const void *data, size_t len, void *payload);

/**
 * HEAD @p key. 0 and *size_out on 200; MLREG_ENOTFOUND only on 404; any other
 * status or a network failure is an error (never "not found").
 */
int mlreg_s3_head(uint64_t *size_out, mlreg_s3 *s3, const char *key);

/**
 * GET @p key, streaming the body into @p cb. @p range: NULL or an HTTP Range
 * value ("bytes=0-9"), passed through. A transfer cut after some bytes were
 * delivered resumes where it stopped (Range from that offset), within the
 * retry budget. 0, MLREG_ENOTFOUND, MLREG_ERANGE, or another error.
 */
int mlreg_s3_get(mlreg_s3 *s3, const char *key, const char *range, mlreg_s3_data_cb cb,
                 void *payload);

/**
 * PUT @p len bytes from @p data under @p key (at most 5 GiB). @p payload_hash:
 * the body's SHA-256 in hex when known (S3 then verifies it), NULL to have it
 * computed, or MLREG_SIGV4_UNSIGNED_PAYLOAD when the bytes are verified by
 * other means.
 */
int mlreg_s3_put(mlreg_s3 *s3, const char *key, const void *data, size_t len,
                 const char *payload_hash);

/** The user metadata mlreg keeps with an object (a signature of its bytes),
 *  and the most bytes its value may have. */
#define MLREG_S3_META_SIG_HEADER "x-amz-meta-mlreg-signature"
#define MLREG_S3_META_SIG_MAX    128

/**
 * Creates @p key with @p len bytes @p data only if no object has that key:
 * a PUT with `If-None-Match: *` (S3's conditional create; the header is not
 * covered by the signature, see mlreg_s3__req). Exactly one of several
 * racing writers succeeds. A retried attempt whose first try landed answers
 * like a lost race: callers that must know read the key back and compare.
 * @p meta_sig (may be NULL; printable, at most MLREG_S3_META_SIG_MAX bytes)
 * is stored as the object's MLREG_S3_META_SIG_HEADER metadata.
 * @return 0 created; MLREG_EEXISTS (412, or AWS's 409
 *         ConditionalRequestConflict: the key exists or is being created);
 *         the errors of mlreg_s3_put().
 */
int mlreg_s3_put_new(mlreg_s3 *s3, const char *key, const void *data, size_t len,
                     const char *meta_sig);

/** mlreg_s3_put() of a small object, replacing any, with @p meta_sig (may
 *  be NULL) as its MLREG_S3_META_SIG_HEADER metadata. Errors as
 *  mlreg_s3_put(); MLREG_EINVALID for a metadata value too long. */
int mlreg_s3_put_meta(mlreg_s3 *s3, const char *key, const void *data, size_t len,
                      const char *meta_sig);

/**
 * Reads the whole object @p key, of at most @p max bytes, into *out
 * (malloc'd, owned by the caller, also for an empty object; not
 * NUL-terminated) and its length into *len_out. @p meta_sig_out (may be
 * NULL; MLREG_S3_META_SIG_MAX + 1 bytes) receives the object's
 * MLREG_S3_META_SIG_HEADER metadata, "" when it has none.
 * @return 0; MLREG_ENOTFOUND (404); MLREG_ETOOBIG (over @p max); the
 *         errors of mlreg_s3_get().
 */
int mlreg_s3_get_small(char **out, size_t *len_out, char *meta_sig_out, mlreg_s3 *s3,
                       const char *key, size_t max);

/** DELETE @p key. S3 answers 204 whether it existed or not: 0 or an error. */
int mlreg_s3_delete(mlreg_s3 *s3, const char *key);

/** Server-side copy of @p src_key to @p dst_key within the bucket, any size
 *  up to 5 TiB (CopyObject up to 5 GiB, multipart UploadPartCopy above). */
int mlreg_s3_copy(mlreg_s3 *s3, const char *dst_key, const char *src_key, uint64_t size);

/** Called by mlreg_s3_list for each object with its size and LastModified
 *  (@p modified, Unix seconds; 0 when the listing gave none that parses);
 *  non-zero stops and is returned. */
typedef int (*mlreg_s3_list_cb)(const char *key, uint64_t size, int64_t modified, void *payload);

/** ListObjectsV2 under @p prefix, following continuation tokens. */
int mlreg_s3_list(mlreg_s3 *s3, const char *prefix, mlreg_s3_list_cb cb, void *payload);

/** Called for each open multipart upload with when it was begun
 *  (@p initiated, Unix seconds; 0 when the listing gave none that parses);
 *  non-zero stops and is returned. */
typedef int (*mlreg_s3_upload_cb)(const char *key, const char *upload_id, int64_t initiated,
                                  void *payload);

/** ListMultipartUploads under @p prefix, following markers. */
int mlreg_s3_list_uploads(mlreg_s3 *s3, const char *prefix, mlreg_s3_upload_cb cb, void *payload);

/** Aborts the multipart upload @p upload_id of @p key (one already gone
 *  counts as aborted). 0 or the request's error. */
int mlreg_s3_abort_upload(mlreg_s3 *s3, const char *key, const char *upload_id);

/** Aborts every open multipart upload under @p prefix; *count_out (may be
 *  NULL) receives how many. Used at start to clean up after a crash. */
int mlreg_s3_abort_uploads(unsigned int *count_out, mlreg_s3 *s3, const char *prefix);

/**
 * A presigned GET URL for @p key valid @p expires seconds (1..604800), in a
 * new malloc'd string (*out). No request is sent.
 */
int mlreg_s3_presign_get(char **out, mlreg_s3 *s3, const char *key, unsigned int expires);

/** Requests a client sent since it was made, every attempt counted. */
typedef struct {
    uint64_t get;   /**< object GETs */
    uint64_t put;   /**< PUTs (objects, conditional creates, parts) */
    uint64_t head;  /**< HEADs */
    uint64_t del;   /**< DELETEs (objects, aborted uploads) */
    uint64_t list;  /**< GETs of the bucket (listings) */
    uint64_t other; /**< POSTs (multipart start and completion) */
} mlreg_s3_counts;

/** The request counts of @p s3 (thread-safe). */
void mlreg_s3_counts_get(mlreg_s3_counts *out, const mlreg_s3 *s3);

/* ---- streaming reader ---- */

/**
 * A GET whose body is pulled with mlreg_s3_reader_read rather than pushed
 * into a callback: the transfer runs on the reader's own multi handle and is
 * paused while the caller is not reading, so memory stays at one small
 * buffer whatever the object size. A cut transfer resumes with a Range from
 * the current offset within the retry budget.
 */
typedef struct mlreg_s3_reader mlreg_s3_reader;

/** Starts a GET of @p key and waits for its headers. 0 with *out and
 *  *size_out, MLREG_ENOTFOUND, or another error. Caller owns *out. */
int mlreg_s3_reader_open(mlreg_s3_reader **out, uint64_t *size_out, mlreg_s3 *s3, const char *key);
/**
 * As mlreg_s3_reader_open, for bytes @p offset .. @p offset + @p length - 1
 * of @p key only (@p length may reach past the end): one GET with a Range
 * header, whose answer must be a 206 for exactly that start (a cut transfer
 * resumes within the range). *size_out receives the object's whole size;
 * the reader yields the range. MLREG_ERANGE when @p offset is at or past
 * the end (416), MLREG_EINVALID for a @p length of 0.
 */
int mlreg_s3_reader_open_range(mlreg_s3_reader **out, uint64_t *size_out, mlreg_s3 *s3,
                               const char *key, uint64_t offset, uint64_t length);
/** Reads up to @p len bytes: the count, 0 at the end, or a negative MLREG_E*
 *  (a body shorter than Content-Length is MLREG_EIO, never a clean end). */
long mlreg_s3_reader_read(mlreg_s3_reader *r, void *buf, size_t len);
/** Stops the transfer and frees @p r; NULL is a no-op. */
void mlreg_s3_reader_free(mlreg_s3_reader *r);

/* ---- multipart upload ---- */

/**
 * An open multipart upload whose parts go out concurrently through one curl
 * multi handle: at most parts_in_flight requests at once, each sending from
 * its own buffer, so memory is bounded by parts_in_flight x part size. A
 * failed part is re-sent from its buffer within the retry budget.
 */
typedef struct mlreg_s3_upload mlreg_s3_upload;

/** CreateMultipartUpload for @p key. Caller owns *out: it must end with
 *  mlreg_s3_upload_complete or mlreg_s3_upload_abort. */
int mlreg_s3_upload_begin(mlreg_s3_upload **out, mlreg_s3 *s3, const char *key);

/**
 * A buffer of @p size bytes for the next part (owned by the upload; valid
 * until it is handed back with mlreg_s3_upload_send). Waits for a slot when
 * parts_in_flight parts are in flight. Fails with the first part error.
 */
int mlreg_s3_upload_buffer(unsigned char **out, mlreg_s3_upload *u, size_t size);

/** Sends the buffer from mlreg_s3_upload_buffer, holding @p len bytes, as the
 *  next part (its SHA-256 is signed, so S3 verifies it). */
int mlreg_s3_upload_send(mlreg_s3_upload *u, size_t len);

/** Waits for every part, then CompleteMultipartUpload; frees @p u whatever
 *  the result, aborting the upload when it fails. */
int mlreg_s3_upload_complete(mlreg_s3_upload *u);

/** AbortMultipartUpload (retried) and frees @p u; NULL is a no-op. */
void mlreg_s3_upload_abort(mlreg_s3_upload *u);

/** Parts sent so far. */
unsigned int mlreg_s3_upload_parts(const mlreg_s3_upload *u);

/* ---- layout and sizing, shared with the blob backend ---- */

/** The object key of a blob: `<prefix>blobs/sha256/<64 hex>`, in a new
 *  malloc'd string (*out). 0 or MLREG_ENOMEM. */
int mlreg_s3_blob_key(char **out, const char *prefix, const mlreg_digest *digest);

/**
 * Part size for part @p part_number (1-based) of an upload. @p size_hint >= 0
 * (and @p written <= size_hint): max(first, ceil(size_hint / 10000)).
 * Unknown size (or more bytes than the hint): @p first doubled every 1000
 * parts, so 10,000 parts reach past 5 TiB with parts never over 5 GiB.
 */
uint64_t mlreg_s3_part_size(int64_t size_hint, uint64_t written, unsigned int part_number,
                            uint64_t first);

#endif
