/* blob_s3.c: the S3 blob backend.
 *
 * Layout: <prefix>blobs/sha256/<64 hex>; blobs a scrub found damaged under
 * <prefix>quarantine/<64 hex>.<unix seconds>; in-progress large writes under
 * <prefix>uploads/<unix seconds, 12 digits>-<32 hex>. Several nodes share
 * one prefix, so a start only removes what a crash can have left: the
 * in-progress writes (multipart uploads and temp objects) begun more than
 * MLREG_S3_STALE_WRITE_SECONDS ago, and any of the old layout
 * (<32 hex>, from single-node versions), never another node's live write.
 *
 * Writes: an S3 multipart upload must name its key when it starts, and the
 * front end verifies a blob's digest only at commit. So:
 * - up to 8 MiB: bytes are buffered (bounded) and committed with one PUT
 *   under the final name, signed with the verified digest as the payload
 *   hash, so S3 checks the bytes too;
 * - larger, digest announced before the first byte (announce(): a
 *   monolithic upload with ?digest=, or a session's PUT ?digest= carrying
 *   the whole body): parts go to a multipart upload on the blob's own key
 *   while the bytes stream in; commit, reached only once the front end has
 *   verified digest and size, completes it. An incomplete multipart upload
 *   is invisible, so nothing unverified ever appears there, and a blob
 *   already under the name is replaced only by verified bytes of the same
 *   digest (which repairs a damaged copy, as a re-push does on fs). Two
 *   nodes writing one digest at once each have their own upload id; both
 *   completions store the same verified bytes, the last one stays.
 * - larger, digest unknown: parts go to a multipart upload on a temp key;
 *   commit completes it, copies it server-side to the final name
 *   (CopyObject, or UploadPartCopy over 5 GiB) and deletes the temp object.
 * abort() and any failure abort the upload. Nothing partial or unverified
 * ever has a blob name, and the final name appears atomically.
 *
 * Leftovers: a crash leaves multipart uploads under <prefix>uploads/ (named
 * with their start time) and under <prefix>blobs/sha256/ (judged by the
 * Initiated time the listing gives, never when it has none); both are
 * aborted once older than the stale age (sweep_stale, the start).
 * Part size: max(8 MiB, ceil(size/10000)) with a size hint; without one,
 * 8 MiB doubling every 1000 parts (mlreg_s3_part_size).
 */
#include "mlreg/common.h"
#include "mlreg/s3.h"
#include "mlreg/sys/blob_backend.h"
#include "s3_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SINGLE_PUT_MAX MLREG_S3_DEFAULT_PART_SIZE

/* The last answer of check(), reused for MLREG_BLOB_CHECK_CACHE_SECONDS. */
typedef struct {
    pthread_mutex_t lock; /* held while a check runs: probes wait for its answer */
    int done;             /* a check has run */
    struct timespec at;   /* when (CLOCK_MONOTONIC) */
    int error;
    char reason[128];
    char detail[512];
} s3_check_cache;

typedef struct {
    mlreg_blob_backend parent;
    mlreg_s3 *s3;
    mlreg_s3 *probe;     /* check()'s client: one attempt, short timeouts */
    char *blob_prefix;   /* <prefix>blobs/sha256/ */
    char *upload_prefix; /* <prefix>uploads/ */
    char *check_prefix;  /* <prefix>ready-check/, never written */
    s3_check_cache check;
} s3_backend;

typedef struct {
    mlreg_blob_backend_writer parent;
    s3_backend *b;
    int64_t hint;
    uint64_t written;
    /* single-PUT phase */
    unsigned char *small;
    size_t small_len, small_cap;
    /* announce(): the digest the commit will be given; the multipart
     * upload then goes to the blob's key (direct) instead of a temp key */
    int direct;
    mlreg_digest digest;
    /* multipart phase */
    mlreg_s3_upload *up;
    char *tmp_key;
    unsigned char *part;
    size_t part_len, part_size;
    uint64_t part_start; /* bytes written before the current part */
} s3_writer;

typedef struct {
    mlreg_blob_backend_reader parent;
    mlreg_s3_reader *r;
} s3_reader;

static int blob_key(char **out, s3_backend *b, const mlreg_digest *d)
{
    return mlreg_s3_blob_key(out, mlreg_s3_prefix(b->s3), d);
}

/* ---- writer ---- */

static int start_multipart(s3_writer *w)
{
    int error = 0;
    char *key = NULL;
    unsigned char rnd[16];
    char name[12 + 1 + 32 + 1];
    size_t i;
    ssize_t n;
    long long now = (long long)time(NULL);

    if (w->direct) {
        if ((error = blob_key(&key, w->b, &w->digest)) < 0) return error;
        error = mlreg_s3_upload_begin(&w->up, w->b->s3, key);
        free(key);
        return error;
    }
    while ((n = getrandom(rnd, sizeof(rnd), 0)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof(rnd))
        return mlreg_error_set(MLREG_EIO, "getrandom for an upload name: %s",
                               n < 0 ? strerror(errno) : "short read");
    snprintf(name, sizeof(name), "%012lld-", now);
    for (i = 0; i < sizeof(rnd); i++)
        snprintf(name + 13 + 2 * i, 3, "%02x", rnd[i]);
    if (asprintf(&w->tmp_key, "%s%s", w->b->upload_prefix, name) < 0) {
        w->tmp_key = NULL;
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    if ((error = mlreg_s3_upload_begin(&w->up, w->b->s3, w->tmp_key)) < 0) return error;
    return 0;
}

/* Makes sure a part buffer is open, sized for the next part. */
static int open_part(s3_writer *w)
{
    int error;
    unsigned int next = mlreg_s3_upload_parts(w->up) + 1;

    if (w->part != NULL) return 0;
    w->part_size = (size_t)mlreg_s3_part_size(w->hint, w->part_start, next,
                                              mlreg_s3_first_part_size(w->b->s3));
    if ((error = mlreg_s3_upload_buffer(&w->part, w->up, w->part_size)) < 0) return error;
    w->part_len = 0;
    return 0;
}

static int send_part(s3_writer *w)
{
    int error = mlreg_s3_upload_send(w->up, w->part_len);

    w->part_start += w->part_len;
    w->part = NULL;
    w->part_len = 0;
    return error;
}

static int append_parts(s3_writer *w, const unsigned char *p, size_t len)
{
    int error;

    while (len > 0) {
        size_t take;
        if ((error = open_part(w)) < 0) return error;
        take = w->part_size - w->part_len < len ? w->part_size - w->part_len : len;
        memcpy(w->part + w->part_len, p, take);
        w->part_len += take;
        p += take;
        len -= take;
        if (w->part_len == w->part_size && (error = send_part(w)) < 0) return error;
    }
    return 0;
}

static int s3_writer__write(mlreg_blob_backend_writer *bw, const void *data, size_t len)
{
    s3_writer *w = (s3_writer *)bw;
    int error;

    if (w->written + len > MLREG_S3_MAX_OBJECT_SIZE)
        return mlreg_error_set(MLREG_ETOOBIG, "blob over the 5 TiB s3 object limit");
    if (w->up == NULL && w->small_len + len <= SINGLE_PUT_MAX &&
        !(w->hint > (int64_t)SINGLE_PUT_MAX)) {
        if (w->small_len + len > w->small_cap) {
            size_t cap = w->small_cap ? w->small_cap : 64 * 1024;
            unsigned char *p;
            while (cap < w->small_len + len)
                cap *= 2;
            if (cap > SINGLE_PUT_MAX) cap = SINGLE_PUT_MAX;
            if ((p = realloc(w->small, cap)) == NULL)
                return mlreg_error_set(MLREG_ENOMEM, "out of memory buffering a blob");
            w->small = p;
            w->small_cap = cap;
        }
        memcpy(w->small + w->small_len, data, len);
        w->small_len += len;
        w->written += len;
        return 0;
    }
    if (w->up == NULL) {
        if ((error = start_multipart(w)) < 0) return error;
        if (w->small_len > 0) {
            if ((error = append_parts(w, w->small, w->small_len)) < 0) return error;
            free(w->small);
            w->small = NULL;
            w->small_len = w->small_cap = 0;
        }
    }
    if ((error = append_parts(w, data, len)) < 0) return error;
    w->written += len;
    return 0;
}

static int s3_writer__announce(mlreg_blob_backend_writer *bw, const mlreg_digest *digest,
                               int64_t size)
{
    s3_writer *w = (s3_writer *)bw;

    if (w->written > 0 || w->up != NULL)
        return mlreg_error_set(MLREG_EINVALID, "a blob digest is announced before any byte");
    if (size > (int64_t)MLREG_S3_MAX_OBJECT_SIZE)
        return mlreg_error_set(MLREG_ETOOBIG, "blob of %lld bytes over the 5 TiB s3 limit",
                               (long long)size);
    w->direct = 1;
    w->digest = *digest;
    if (size >= 0) w->hint = size; /* parts sized to it, as for a monolithic upload */
    return 0;
}

static void writer_free(s3_writer *w)
{
    free(w->small);
    free(w->tmp_key);
    free(w);
}

static void s3_writer__abort(mlreg_blob_backend_writer *bw)
{
    s3_writer *w = (s3_writer *)bw;

    mlreg_s3_upload_abort(w->up);
    writer_free(w);
}

static int s3_writer__commit(mlreg_blob_backend_writer *bw, const mlreg_digest *digest)
{
    int error = 0;
    s3_writer *w = (s3_writer *)bw;
    char *key = NULL, hex[MLREG_DIGEST_HEXLEN + 1];
    int completed = 0;

    if ((error = blob_key(&key, w->b, digest)) < 0) goto done;
    /* Both paths replace an object already under the name: the bytes were
     * just verified by the front end, while the stored copy may be one that
     * was damaged after its commit, so pushing a file again repairs it. */
    if (w->up == NULL) {
        /* the verified digest is the body's SHA-256: S3 checks it as well */
        mlreg_digest_hex(hex, digest);
        error = mlreg_s3_put(w->b->s3, key, w->small, w->small_len, hex);
        goto done;
    }
    if (w->direct && !mlreg_digest_equal(digest, &w->digest)) {
        /* the front end refuses this before commit; never complete under
         * the name of another digest */
        error = mlreg_error_set(MLREG_EMISMATCH, "s3 commit of another digest than announced");
        goto done;
    }
    if (w->part != NULL && w->part_len > 0 && (error = send_part(w)) < 0) goto done;
    error = mlreg_s3_upload_complete(w->up); /* frees it, aborting on failure */
    w->up = NULL;
    if (error < 0 || w->direct) goto done; /* direct: the blob is in place */
    completed = 1;
    error = mlreg_s3_copy(w->b->s3, key, w->tmp_key, w->written);

done:
    if (completed) {
        /* the temp object is complete but nameless as a blob; a failed delete
         * leaves it for the cleanup at the next start */
        char saved[512];
        snprintf(saved, sizeof(saved), "%s", mlreg_error_last());
        mlreg_s3_delete(w->b->s3, w->tmp_key);
        if (error < 0) mlreg_error_set(error, "%s", saved);
    }
    if (w->up) mlreg_s3_upload_abort(w->up);
    free(key);
    writer_free(w);
    return error;
}

static int s3_backend__open_write(mlreg_blob_backend_writer **out, mlreg_blob_backend *bb,
                                  int64_t size_hint)
{
    s3_writer *w;

    if (size_hint > (int64_t)MLREG_S3_MAX_OBJECT_SIZE)
        return mlreg_error_set(MLREG_ETOOBIG, "blob of %lld bytes over the 5 TiB s3 limit",
                               (long long)size_hint);
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a blob writer");
    w->b = (s3_backend *)bb;
    w->hint = size_hint < 0 ? -1 : size_hint;
    w->parent.write = s3_writer__write;
    w->parent.commit = s3_writer__commit;
    w->parent.abort = s3_writer__abort;
    w->parent.announce = s3_writer__announce;
    *out = &w->parent;
    return 0;
}

/* ---- reader ---- */

static ssize_t s3_reader__read(mlreg_blob_backend_reader *br, void *buf, size_t len)
{
    return (ssize_t)mlreg_s3_reader_read(((s3_reader *)br)->r, buf, len);
}

static int s3_reader__fd(mlreg_blob_backend_reader *br)
{
    (void)br;
    return -1;
}

static void s3_reader__free(mlreg_blob_backend_reader *br)
{
    s3_reader *r = (s3_reader *)br;

    if (r == NULL) return;
    mlreg_s3_reader_free(r->r);
    free(r);
}

/* A reader of the whole blob (@p ranged 0), or of bytes @p offset ..
 * @p offset + @p length - 1 only: one ranged GET, so a client fetching a
 * large blob in parallel ranges costs the store what it reads, never a read
 * from the start. */
static int open_reader(mlreg_blob_backend_reader **out, uint64_t *size_out, mlreg_blob_backend *bb,
                       const mlreg_digest *digest, int ranged, uint64_t offset, uint64_t length)
{
    mlreg_s3 *s3 = ((s3_backend *)bb)->s3;
    int error = 0;
    s3_reader *r = NULL;
    char *key = NULL;

    if ((error = blob_key(&key, (s3_backend *)bb, digest)) < 0) goto done;
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a blob reader");
        goto done;
    }
    r->parent.read = s3_reader__read;
    r->parent.fd = s3_reader__fd;
    r->parent.free = s3_reader__free;
    error = ranged ? mlreg_s3_reader_open_range(&r->r, size_out, s3, key, offset, length)
                   : mlreg_s3_reader_open(&r->r, size_out, s3, key);

done:
    free(key);
    if (error < 0) {
        free(r);
        return error;
    }
    *out = &r->parent;
    return 0;
}

static int s3_backend__open_read(mlreg_blob_backend_reader **out, uint64_t *size_out,
                                 mlreg_blob_backend *bb, const mlreg_digest *digest)
{
    return open_reader(out, size_out, bb, digest, 0, 0, 0);
}

static int s3_backend__open_read_range(mlreg_blob_backend_reader **out, uint64_t *size_out,
                                       mlreg_blob_backend *bb, const mlreg_digest *digest,
                                       uint64_t offset, uint64_t length)
{
    return open_reader(out, size_out, bb, digest, 1, offset, length);
}

/* ---- backend ---- */

static int s3_backend__stat(uint64_t *size_out, mlreg_blob_backend *bb, const mlreg_digest *digest)
{
    char *key = NULL;
    int error;

    if ((error = blob_key(&key, (s3_backend *)bb, digest)) < 0) return error;
    error = mlreg_s3_head(size_out, ((s3_backend *)bb)->s3, key);
    free(key);
    return error;
}

static int s3_backend__exists(mlreg_blob_backend *bb, const mlreg_digest *digest)
{
    int error = s3_backend__stat(NULL, bb, digest);

    if (error == MLREG_ENOTFOUND) return 0;
    return error < 0 ? error : 1;
}

static int s3_backend__remove(mlreg_blob_backend *bb, const mlreg_digest *digest)
{
    char *key = NULL;
    int error;

    /* S3 deletes answer 204 whether or not the key existed; HEAD first so
     * a second remove reports not found, as fs does */
    if ((error = blob_key(&key, (s3_backend *)bb, digest)) < 0) return error;
    if ((error = mlreg_s3_head(NULL, ((s3_backend *)bb)->s3, key)) == 0)
        error = mlreg_s3_delete(((s3_backend *)bb)->s3, key);
    free(key);
    return error;
}

/* Server-side copy to <prefix>quarantine/<hex>.<when>, then delete of the
 * blob: S3 has no rename. The copy comes first, so a failure at any point
 * leaves the blob where it was (and at worst a copy in quarantine); a
 * crash between the two leaves both, and the next scrub moves it again.
 * An existing quarantined copy of the same name is kept (".N" suffix). */
static int s3_backend__quarantine(char *name_out, size_t name_len, mlreg_blob_backend *bb,
                                  const mlreg_digest *digest, int64_t when)
{
    int error = 0;
    s3_backend *b = (s3_backend *)bb;
    char *key = NULL, *dst = NULL, hex[MLREG_DIGEST_HEXLEN + 1];
    uint64_t size = 0;
    int attempt, copied = 0;

    mlreg_digest_hex(hex, digest);
    if ((error = blob_key(&key, b, digest)) < 0) goto done;
    if ((error = mlreg_s3_head(&size, b->s3, key)) < 0) {
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_ENOTFOUND, "blob sha256:%s not found", hex);
        goto done;
    }
    for (attempt = 0;; attempt++) {
        int r;
        free(dst);
        if ((attempt == 0 ? asprintf(&dst, "%squarantine/%s.%lld", mlreg_s3_prefix(b->s3), hex,
                                     (long long)when)
                          : asprintf(&dst, "%squarantine/%s.%lld.%d", mlreg_s3_prefix(b->s3), hex,
                                     (long long)when, attempt)) < 0) {
            dst = NULL;
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        if ((r = mlreg_s3_head(NULL, b->s3, dst)) == MLREG_ENOTFOUND) break;
        if (r < 0) {
            error = r;
            goto done;
        }
        if (attempt == 100) {
            error = mlreg_error_set(MLREG_EEXISTS, "too many quarantined copies of sha256:%s", hex);
            goto done;
        }
    }
    if ((error = mlreg_s3_copy(b->s3, dst, key, size)) < 0) goto done;
    copied = 1;
    if ((error = mlreg_s3_delete(b->s3, key)) < 0) goto done;

done:
    if (error < 0 && copied) {
        /* the blob stays served; the copy would only confuse an operator */
        char saved[512];
        snprintf(saved, sizeof(saved), "%s", mlreg_error_last());
        mlreg_s3_delete(b->s3, dst);
        mlreg_error_set(error, "%s", saved);
    }
    if (error == 0 && name_out != NULL && name_len > 0)
        snprintf(name_out, name_len, "%s", dst + strlen(mlreg_s3_prefix(b->s3)));
    free(key);
    free(dst);
    return error;
}

struct foreach_ctx {
    size_t skip;
    mlreg_blob_foreach_cb cb;
    void *payload;
};

static int foreach_one(const char *key, uint64_t size, int64_t modified, void *p)
{
    struct foreach_ctx *c = p;
    const char *hex = key + c->skip;
    mlreg_digest d;
    size_t i;

    if (strlen(key) != c->skip + MLREG_DIGEST_HEXLEN) return 0;
    for (i = 0; i < MLREG_DIGEST_HEXLEN; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'))) return 0;
    if (mlreg_digest_parse_hex(&d, hex, MLREG_DIGEST_HEXLEN) < 0) return 0;
    return c->cb(&d, size, modified, c->payload);
}

static int s3_backend__foreach(mlreg_blob_backend *bb, mlreg_blob_foreach_cb cb, void *payload)
{
    s3_backend *b = (s3_backend *)bb;
    struct foreach_ctx c = {strlen(b->blob_prefix), cb, payload};

    return mlreg_s3_list(b->s3, b->blob_prefix, foreach_one, &c);
}

static int s3_backend__presign(char **url_out, mlreg_blob_backend *bb, const mlreg_digest *digest,
                               unsigned int expires)
{
    char *key = NULL;
    int error;

    if ((error = blob_key(&key, (s3_backend *)bb, digest)) < 0) return error;
    error = mlreg_s3_presign_get(url_out, ((s3_backend *)bb)->s3, key, expires);
    free(key);
    return error;
}

static int count_key(const char *key, uint64_t size, int64_t modified, void *payload)
{
    (void)key;
    (void)size;
    (void)modified;
    (*(size_t *)payload)++;
    return 0;
}

/* One ListObjectsV2 of a prefix nothing is written under: it needs the
 * endpoint up, the bucket there and the credentials good, and costs the
 * store next to nothing. Its client tries once with short timeouts, so a
 * probe learns of an object store that does not answer within seconds,
 * not after the retries of ordinary requests. The answer is kept for
 * MLREG_BLOB_CHECK_CACHE_SECONDS whatever it was. */
static int s3_backend__check(char *reason, size_t reason_len, mlreg_blob_backend *bb)
{
    s3_backend *b = (s3_backend *)bb;
    s3_check_cache *c = &b->check;
    struct timespec now;
    size_t n = 0;
    int error;

    pthread_mutex_lock(&c->lock);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!c->done || now.tv_sec - c->at.tv_sec >= MLREG_BLOB_CHECK_CACHE_SECONDS) {
        mlreg_error_clear();
        c->error = mlreg_s3_list(b->probe, b->check_prefix, count_key, &n);
        c->done = 1;
        clock_gettime(CLOCK_MONOTONIC, &c->at);
        if (c->error < 0) {
            snprintf(c->reason, sizeof(c->reason), "%s",
                     "object store does not answer or refuses the requests");
            snprintf(c->detail, sizeof(c->detail), "object store check: %s", mlreg_error_last());
        }
    }
    error = c->error;
    if (error < 0) {
        snprintf(reason, reason_len, "%s", c->reason);
        mlreg_error_set(error, "%s", c->detail);
    }
    pthread_mutex_unlock(&c->lock);
    return error;
}

static void s3_backend__free(mlreg_blob_backend *bb)
{
    s3_backend *b = (s3_backend *)bb;

    if (b == NULL) return;
    mlreg_s3_free(b->s3);
    mlreg_s3_free(b->probe);
    free(b->blob_prefix);
    free(b->upload_prefix);
    free(b->check_prefix);
    pthread_mutex_destroy(&b->check.lock);
    free(b);
}

static long stale_seconds = MLREG_S3_STALE_WRITE_SECONDS;

void mlreg_s3__set_stale_write_seconds(long seconds)
{
    stale_seconds = seconds;
}

/* 1 when the in-progress write at @p key (under @p prefix) is a leftover:
 * begun over @p max_age seconds ago, or named in the old layout. */
static int write_is_stale(const char *key, const char *prefix, time_t now, long max_age)
{
    const char *name = key + strlen(prefix);
    long long began = 0;
    int digits = 0;

    if (strncmp(key, prefix, strlen(prefix)) != 0) return 0; /* not ours to judge */
    for (; *name >= '0' && *name <= '9' && digits < 12; name++, digits++)
        began = began * 10 + (*name - '0');
    if (digits != 12 || *name != '-') return 1;
    return began + max_age < (long long)now;
}

typedef struct {
    s3_backend *b;
    time_t now;
    long max_age;
    int dry_run;        /* count, remove nothing */
    unsigned int count; /* writes removed (or that would be) */
} stale_walk;

static int delete_stale(const char *key, uint64_t size, int64_t modified, void *p)
{
    stale_walk *w = p;
    int error;

    (void)size;
    (void)modified;
    if (!write_is_stale(key, w->b->upload_prefix, w->now, w->max_age)) return 0;
    if (!w->dry_run && (error = mlreg_s3_delete(w->b->s3, key)) < 0 && error != MLREG_ENOTFOUND)
        return error;
    w->count++;
    return 0;
}

static int abort_stale(const char *key, const char *upload_id, int64_t initiated, void *p)
{
    stale_walk *w = p;
    int error;

    (void)initiated; /* the name says when it began */
    if (!write_is_stale(key, w->b->upload_prefix, w->now, w->max_age)) return 0;
    if (!w->dry_run && (error = mlreg_s3_abort_upload(w->b->s3, key, upload_id)) < 0) return error;
    w->count++;
    return 0;
}

/* A multipart upload straight to a blob's key (a direct write): its name
 * tells nothing, so its age is the Initiated time of the listing; one
 * without (0) is left alone, since it may be live. */
static int abort_stale_direct(const char *key, const char *upload_id, int64_t initiated, void *p)
{
    stale_walk *w = p;
    int error;

    if (initiated <= 0 || initiated + w->max_age >= (int64_t)w->now) return 0;
    if (!w->dry_run && (error = mlreg_s3_abort_upload(w->b->s3, key, upload_id)) < 0) return error;
    w->count++;
    return 0;
}

/* Removes what writes begun over w->max_age seconds ago left: multipart
 * uploads and temp objects under uploads/, multipart uploads to blob keys.
 * Another node's write in progress is younger. */
static int sweep(stale_walk *w)
{
    s3_backend *b = w->b;
    int error;

    if ((error = mlreg_s3_list_uploads(b->s3, b->upload_prefix, abort_stale, w)) < 0 ||
        (error = mlreg_s3_list_uploads(b->s3, b->blob_prefix, abort_stale_direct, w)) < 0 ||
        (error = mlreg_s3_list(b->s3, b->upload_prefix, delete_stale, w)) < 0)
        return error;
    return 0;
}

static int s3_backend__sweep_stale(unsigned int *count_out, mlreg_blob_backend *bb, long max_age,
                                   int dry_run)
{
    stale_walk w = {(s3_backend *)bb, time(NULL), max_age, dry_run, 0};
    int error;

    if ((error = sweep(&w)) < 0) return error;
    *count_out = w.count;
    return 0;
}

int mlreg_blob_backend_s3_new(mlreg_blob_backend **out, const struct mlreg_s3_config *cfg)
{
    int error = 0;
    s3_backend *b = NULL;

    if ((b = calloc(1, sizeof(*b))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating the s3 blob backend");
        goto done;
    }
    b->parent.version = MLREG_BLOB_BACKEND_VERSION;
    b->parent.name = "s3";
    b->parent.exists = s3_backend__exists;
    b->parent.stat = s3_backend__stat;
    b->parent.open_read = s3_backend__open_read;
    b->parent.open_write = s3_backend__open_write;
    b->parent.remove = s3_backend__remove;
    b->parent.foreach = s3_backend__foreach;
    b->parent.free = s3_backend__free;
    b->parent.presign = s3_backend__presign;
    b->parent.sweep_stale = s3_backend__sweep_stale;
    b->parent.quarantine = s3_backend__quarantine;
    b->parent.check = s3_backend__check;
    b->parent.open_read_range = s3_backend__open_read_range;
    b->parent.digest_first = 1;
    pthread_mutex_init(&b->check.lock, NULL);
    if ((error = mlreg_s3_new(&b->s3, cfg)) < 0) goto done;
    {
        mlreg_s3_config pc = *cfg;
        pc.max_attempts = 1;
        pc.connect_timeout_ms = 2000;
        pc.retry_total_ms = 3000;
        pc.low_speed_seconds = 3;
        if ((error = mlreg_s3_new(&b->probe, &pc)) < 0) goto done;
    }
    if (asprintf(&b->check_prefix, "%sready-check/", mlreg_s3_prefix(b->s3)) < 0) {
        b->check_prefix = NULL;
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if (asprintf(&b->blob_prefix, "%sblobs/sha256/", mlreg_s3_prefix(b->s3)) < 0) {
        b->blob_prefix = NULL;
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if (asprintf(&b->upload_prefix, "%suploads/", mlreg_s3_prefix(b->s3)) < 0) {
        b->upload_prefix = NULL;
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    /* the first request also proves the endpoint and the credentials */
    {
        stale_walk w = {b, time(NULL), stale_seconds, 0, 0};
        if ((error = sweep(&w)) < 0) goto done;
    }

done:
    if (error < 0) {
        if (b != NULL) s3_backend__free(&b->parent);
        return error;
    }
    *out = &b->parent;
    return 0;
}

mlreg_s3 *mlreg_s3__backend_client(mlreg_blob_backend *b)
{
    return ((s3_backend *)b)->s3;
}

mlreg_s3 *mlreg_s3__backend_check_client(mlreg_blob_backend *b)
{
    return ((s3_backend *)b)->probe;
}
