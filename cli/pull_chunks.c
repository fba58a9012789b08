/* pull_chunks.c: the resumable, parallel download of one large release file
 * that has a chunk index (pull_chunks.h, mlreg/chunk_index.h).
 *
 * Trust: the index blob is checked against the digest its layer has in the
 * manifest (which the release signature covers) before it is parsed, and its
 * own file digest and size must be the file layer's; so every chunk digest
 * is as trustworthy as the manifest. The whole file is still hashed before
 * it is handed back: an index that lies (chunks that verify but do not make
 * up the file) is caught there.
 *
 * Threads, not the curl multi interface: each range in flight has its own
 * thread and easy handle (cli_client_clone), which receives, writes
 * (pwrite at the chunk's offset) and hashes its chunk as the bytes land, so
 * the chunk hashes spread over the cores; with one multi loop they would all
 * run on one core. The calling thread meanwhile hashes the contiguous
 * verified prefix of the file (reading it back from the page cache) for the
 * whole-file digest and asks the kernel to start writing each verified chunk
 * back to disk (sync_file_range), so the caller's final fsync has little
 * left to do. Chunks are claimed in order, so the prefix grows steadily.
 *
 * The partial file is STAGE/<hex of the file digest>.part, flock'ed for the
 * pull's lifetime (two pulls into one dir do not write one file). A pull
 * that dies leaves it; the next one re-hashes every chunk in it (in the
 * range threads) and fetches only those that do not verify. A holey or
 * foreign file is harmless: what does not verify is fetched again.
 */
#include "pull_chunks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlreg/chunk_index.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/text.h"
#include "progress.h"

#define BAD(...)    mlreg_error_set(MLREG_EMISMATCH, __VA_ARGS__)
#define READ_BLOCK  ((size_t)1 << 20)
#define PART_SUFFIX ".part"

enum { CH_CHECK, CH_FETCH, CH_DONE };

/* State shared by the range threads and the hashing thread, under mu. */
typedef struct {
    const cli_pull_chunked_opts *o;
    const mlreg_chunk_index *ix;
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *state; /* CH_* per chunk */
    size_t next;          /* next chunk to claim */
    atomic_int stop;      /* a thread failed: everyone stops */
    int error;            /* the first failure, its message in msg */
    char msg[512];
    size_t kept, fetched, refetch;
    struct timespec start; /* --limit-rate: when the ranges began */
    uint64_t paced;        /* --limit-rate: bytes received since */
    /* progress: bytes received into chunks not (yet) refused, and bytes of
     * the chunks kept from an earlier pull; read by the display */
    _Atomic uint64_t moved, kept_bytes;
} shared;

typedef struct {
    shared *s;
    cli_client *c;
    unsigned char *buf; /* READ_BLOCK: re-hashing a chunk on disk, gathering writes */
    pthread_t th;
    int started;
} worker;

/* ---- the staging dir ------------------------------------------------------------- */

int cli_pull_stage_open(int *fd_out, int dfd, const char *dir)
{
    struct stat st;
    int sfd;

    *fd_out = -1;
    if (mkdirat(dfd, CLI_PULL_STAGE_DIR, 0700) < 0 && errno != EEXIST)
        return mlreg_error_set(MLREG_EIO, "mkdir %s/" CLI_PULL_STAGE_DIR ": %s", dir,
                               strerror(errno));
    sfd = openat(dfd, CLI_PULL_STAGE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0 || fstat(sfd, &st) < 0 || st.st_uid != geteuid()) {
        if (sfd >= 0) close(sfd);
        return mlreg_error_set(MLREG_EIO,
                               "%s/" CLI_PULL_STAGE_DIR " is not a directory of ours; pull keeps "
                               "its partial downloads there: remove it",
                               dir);
    }
    *fd_out = sfd;
    return 0;
}

/* A name pull gives a partial file: 64 lowercase hex digits and ".part". */
static int part_name(const char *name)
{
    size_t n = strlen(name);

    if (n != 64 + strlen(PART_SUFFIX) || strcmp(name + 64, PART_SUFFIX)) return 0;
    for (size_t i = 0; i < 64; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return 0;
    return 1;
}

/* Only a staging dir of ours is emptied, through its descriptor (a symbolic
 * link planted in its place is not followed). */
void cli_pull_stage_remove(int outfd)
{
    DIR *d = NULL;
    struct dirent *e;
    struct stat st;
    int dfd;

    dfd = openat(outfd, CLI_PULL_STAGE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return;
    if (fstat(dfd, &st) < 0 || st.st_uid != geteuid() || !(d = fdopendir(dfd))) {
        close(dfd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        int fd;
        if (!part_name(e->d_name)) continue;
        fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) continue;
        /* another pull into this dir holds its file locked: leave it */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) unlinkat(dfd, e->d_name, 0);
        close(fd);
    }
    closedir(d);
    unlinkat(outfd, CLI_PULL_STAGE_DIR, AT_REMOVEDIR);
}

/* ---- one chunk --------------------------------------------------------------------- */

static int pwrite_all(int fd, const void *data, size_t len, uint64_t off, const char *what)
{
    const char *p = data;

    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return mlreg_error_set(MLREG_EIO, "writing %s: %s", what, strerror(errno));
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Hashes [off, off + len) of @p fd into @p h, reading through @p buf. */
static int hash_range(mlreg_hasher *h, int fd, uint64_t off, uint64_t len, unsigned char *buf,
                      const char *what)
{
    int error;

    while (len) {
        size_t want = len < READ_BLOCK ? (size_t)len : READ_BLOCK;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return mlreg_error_set(MLREG_EIO, "reading %s: %s", what, strerror(errno));
        if (n == 0) return mlreg_error_set(MLREG_EIO, "reading %s: file shrank", what);
        if ((error = mlreg_hasher_update(h, buf, (size_t)n)) < 0) return error;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

/* 1 when chunk @p i of the partial file already holds its verified bytes. */
static int chunk_on_disk(worker *w, size_t i)
{
    shared *s = w->s;
    mlreg_hasher *h = NULL;
    mlreg_digest got;
    int ok = 0;

    if (mlreg_hasher_new(&h) < 0) return 0;
    if (hash_range(h, s->fd, mlreg_chunk_index_offset(s->ix, i), mlreg_chunk_index_len(s->ix, i),
                   w->buf, s->o->file->title) == 0 &&
        mlreg_hasher_final(&got, h) == 0)
        ok = mlreg_digest_equal(&got, &s->ix->chunks[i]);
    mlreg_hasher_free(h);
    return ok;
}

/* --limit-rate over all ranges of the file: after @p len more bytes, sleeps
 * until the time they are due at the rate. libcurl's own limit
 * (CURLOPT_MAX_RECV_SPEED_LARGE) is per transfer and does not hold for
 * transfers of a few receive buffers, which a chunk may be. Sleeping in the
 * write callback stops reading the socket, so TCP slows the sender down. */
static void pace(shared *s, size_t len)
{
    struct timespec now, due;
    uint64_t ns;

    if (!s->o->rate) return;
    pthread_mutex_lock(&s->mu);
    s->paced += len;
    ns = (uint64_t)((long double)s->paced * 1e9L / (long double)s->o->rate);
    pthread_mutex_unlock(&s->mu);
    due.tv_sec = s->start.tv_sec + (time_t)(ns / 1000000000u);
    due.tv_nsec = s->start.tv_nsec + (long)(ns % 1000000000u);
    if (due.tv_nsec >= 1000000000L) due.tv_sec++, due.tv_nsec -= 1000000000L;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec < due.tv_sec || (now.tv_sec == due.tv_sec && now.tv_nsec < due.tv_nsec))
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR)
            ;
}

/* libcurl hands the body over in pieces of at most 16 KiB: they are hashed
 * as they come and gathered into READ_BLOCK bytes per pwrite (16 KiB writes
 * from several threads into one file spend their time on its inode lock). */
typedef struct {
    shared *s;
    size_t i;
    uint64_t off, len, got;
    mlreg_hasher *h;
    unsigned char *buf;
    size_t buffered;
} range_sink;

static int range_flush(range_sink *r)
{
    int error;

    if (r->buffered == 0) return 0;
    if ((error = pwrite_all(r->s->fd, r->buf, r->buffered, r->off + r->got - r->buffered,
                            r->s->o->file->title)) < 0)
        return error;
    r->buffered = 0;
    return 0;
}

static int range_sink_fn(void *ctx, const void *data, size_t len)
{
    range_sink *r = ctx;
    const unsigned char *p = data;
    int error;

    if (atomic_load(&r->s->stop)) return mlreg_error_set(MLREG_EIO, "stopped");
    if (r->got + len > r->len)
        return BAD("%s: registry sent more than the %" PRIu64 " bytes of chunk %zu asked for "
                   "(does it serve byte ranges?)",
                   r->s->o->file->title, r->len, r->i);
    if ((error = mlreg_hasher_update(r->h, data, len)) < 0) return error;
    while (len) {
        size_t n = READ_BLOCK - r->buffered < len ? READ_BLOCK - r->buffered : len;
        memcpy(r->buf + r->buffered, p, n);
        r->buffered += n;
        r->got += n;
        p += n;
        len -= n;
        if (r->buffered == READ_BLOCK && (error = range_flush(r)) < 0) return error;
    }
    atomic_fetch_add(&r->s->moved, (uint64_t)(p - (const unsigned char *)data));
    pace(r->s, (size_t)(p - (const unsigned char *)data));
    return 0;
}

/* One ranged GET of chunk @p i. 0 with *match set; MLREG_EUNREACHABLE and
 * MLREG_ESERVER (5xx) are worth another try, other errors are not. */
static int fetch_chunk(int *match, worker *w, size_t i)
{
    shared *s = w->s;
    const cli_layer *l = s->o->file;
    range_sink r = {.s = s, .i = i, .buf = w->buf};
    cli_response resp;
    mlreg_digest got;
    char path[600], range[64], want_cr[96], what[400];
    int error = 0;

    *match = 0;
    r.off = mlreg_chunk_index_offset(s->ix, i);
    r.len = mlreg_chunk_index_len(s->ix, i);
    cli_response_init(&resp);
    if ((error = mlreg_hasher_new(&r.h)) < 0) goto done;
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", s->o->model, l->digest_str);
    snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, r.off, r.off + r.len - 1);
    snprintf(what, sizeof(what), "downloading %s (chunk %zu)", l->title, i);
    cli_request req = {.method = "GET",
                       .url = path,
                       .body_fd = -1,
                       .sink = range_sink_fn,
                       .sink_ctx = &r,
                       .follow_redirects = 1,
                       .range = range};
    if ((error = cli_request_do(&resp, w->c, &req)) < 0) goto done;
    if (resp.status == 200 && r.off == 0 && r.len == l->size) {
        /* a registry without ranges sent the whole (one-chunk) file */
    } else if (resp.status == 206) {
        snprintf(want_cr, sizeof(want_cr), "bytes %s/%" PRIu64, range, l->size);
        if (!resp.content_range || strcmp(resp.content_range, want_cr)) {
            error = BAD("%s: registry answered the range %s of chunk %zu with Content-Range '%s'",
                        l->title, range, i,
                        resp.content_range ? mlreg_text_printable(resp.content_range) : "");
            goto done;
        }
    } else {
        error = cli_http_error(&resp, what);
        goto done;
    }
    if (r.got == r.len) {
        if ((error = range_flush(&r)) < 0 || (error = mlreg_hasher_final(&got, r.h)) < 0) goto done;
        *match = mlreg_digest_equal(&got, &s->ix->chunks[i]);
    }
done:
    if (!*match) atomic_fetch_sub(&s->moved, r.got); /* fetched again, or not at all */
    mlreg_hasher_free(r.h);
    cli_response_clear(&resp);
    return error;
}

/* Makes chunk @p i verified in the partial file: kept when @p check finds
 * it there, else fetched, up to CLI_PULL_CHUNK_TRIES times. */
static int do_chunk(worker *w, size_t i, int check)
{
    shared *s = w->s;
    uint64_t off = mlreg_chunk_index_offset(s->ix, i), len = mlreg_chunk_index_len(s->ix, i);
    int error = 0, match = 0, bad = 0;

    if (check && chunk_on_disk(w, i)) {
        atomic_fetch_add(&s->kept_bytes, len);
        pthread_mutex_lock(&s->mu);
        s->kept++;
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    for (int t = 1; t <= CLI_PULL_CHUNK_TRIES; t++) {
        if (atomic_load(&s->stop)) return mlreg_error_set(MLREG_EIO, "stopped");
        error = fetch_chunk(&match, w, i);
        if (error == 0 && match) {
            pthread_mutex_lock(&s->mu);
            s->fetched++;
            if (t > 1) s->refetch += (size_t)(t - 1);
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        if (error == 0) bad++;
        if (error < 0 && error != MLREG_EUNREACHABLE && error != MLREG_ESERVER) return error;
    }
    if (error < 0) return error;
    return BAD("%s: chunk %zu (bytes %" PRIu64 "-%" PRIu64 ") did not match the chunk index in "
               "%d fetches; the registry's copy may be damaged: an admin can run `mlreg scrub "
               "--model %s`",
               s->o->file->title, i, off, off + len - 1, bad, s->o->model);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *s = w->s;
    size_t i;
    int check, error;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (atomic_load(&s->stop) || s->next >= s->ix->nchunks) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        i = s->next++;
        check = s->state[i] == CH_CHECK;
        pthread_mutex_unlock(&s->mu);
        error = do_chunk(w, i, check);
        pthread_mutex_lock(&s->mu);
        if (error < 0 && !atomic_load(&s->stop)) {
            s->error = error;
            snprintf(s->msg, sizeof(s->msg), "%s", mlreg_error_last());
            atomic_store(&s->stop, 1);
        } else if (error == 0) {
            s->state[i] = CH_DONE;
        }
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (error < 0) break;
    }
    return NULL;
}

/* ---- the index ----------------------------------------------------------------------- */

/* GETs the index blob, checks it against its layer, parses it and checks it
 * describes the file layer. */
static int index_fetch(mlreg_chunk_index *ix, const cli_pull_chunked_opts *o)
{
    const cli_layer *il = o->index, *fl = o->file;
    cli_response resp;
    mlreg_digest got;
    char path[600], got_str[MLREG_DIGEST_STRLEN + 1], what[400];
    int error = 0;

    cli_response_init(&resp);
    if (il->size > MLREG_CHUNK_INDEX_MAX_BYTES) {
        error = BAD("%s: chunk index of %" PRIu64 " bytes, over the %zu a client reads", il->title,
                    il->size, (size_t)MLREG_CHUNK_INDEX_MAX_BYTES);
        goto done;
    }
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", o->model, il->digest_str);
    snprintf(what, sizeof(what), "downloading %s", il->title);
    cli_request req = {.method = "GET",
                       .url = path,
                       .body_fd = -1,
                       .max_body = (size_t)il->size,
                       .follow_redirects = 1};
    if ((error = cli_request_do(&resp, o->c, &req)) < 0) {
        if (error == MLREG_ESERVER)
            error = BAD("%s: registry sent more than the %" PRIu64
                        " bytes the manifest declares for the chunk index",
                        il->title, il->size);
        goto done;
    }
    if (resp.status != 200) {
        error = cli_http_error(&resp, what);
        goto done;
    }
    if ((error = mlreg_digest_buffer(&got, resp.body ? resp.body : "", resp.body_len)) < 0)
        goto done;
    if (resp.body_len != il->size || !mlreg_digest_equal(&got, &il->digest)) {
        mlreg_digest_format(got_str, &got);
        error = BAD("%s: chunk index does not match the release (received %zu bytes, %s; the "
                    "manifest says %" PRIu64 " bytes, %s); refusing it",
                    il->title, resp.body_len, got_str, il->size, il->digest_str);
        goto done;
    }
    if ((error = mlreg_chunk_index_parse(ix, resp.body, resp.body_len)) < 0) {
        error = cli_error_wrap(MLREG_EMISMATCH, "%s: chunk index refused", il->title);
        goto done;
    }
    if (!mlreg_digest_equal(&ix->file, &fl->digest) || ix->size != fl->size)
        error = BAD("%s: chunk index describes another file (its digest or size is not %s's)",
                    il->title, fl->title);
done:
    cli_response_clear(&resp);
    return error;
}

/* ---- the file ------------------------------------------------------------------------- */

/* Opens (or creates) the partial file, locked, sized to the file. *fresh_out
 * is 1 when it held nothing (no chunk to re-hash). */
static int part_open(int *fd_out, int *fresh_out, int sfd, const char *name, const char *path,
                     uint64_t size)
{
    struct stat st;
    int fd;

    *fd_out = -1;
    if ((fd = openat(sfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
        return mlreg_error_set(MLREG_EIO, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) return mlreg_error_set(MLREG_EIO, "another pull is writing %s", path);
        return mlreg_error_set(MLREG_EIO, "lock %s: %s", path, strerror(e));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mlreg_error_set(MLREG_EIO, "%s is not a regular file", path);
    }
    *fresh_out = st.st_size == 0;
    if ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        return mlreg_error_set(e == ENOSPC ? MLREG_ENOSPACE : MLREG_EIO, "%s: %s", path,
                               strerror(e));
    }
    *fd_out = fd;
    return 0;
}

/* As hash_range(), through a mapping of the page cache (MAP_POPULATE: the
 * pages just written are mapped in one go) rather than a copy by pread:
 * one less pass over the file's bytes. Falls back to pread when mmap
 * fails. @p off is a multiple of the chunk size, so of the page size. */
static int hash_mapped(mlreg_hasher *h, int fd, uint64_t off, uint64_t len, unsigned char *buf,
                       const char *what)
{
    void *p;
    int error;

    if (len == 0) return 0;
    p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)off);
    if (p == MAP_FAILED) return hash_range(h, fd, off, len, buf, what);
    madvise(p, (size_t)len, MADV_SEQUENTIAL);
    error = mlreg_hasher_update(h, p, (size_t)len);
    munmap(p, (size_t)len);
    return error;
}

/* Waits until chunk @p i is verified or a thread failed (s->stop), showing
 * the file's progress summed over its ranges while it waits. */
static void wait_chunk(shared *s, cli_progress *p, size_t i)
{
    struct timespec due;

    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stop) && s->state[i] != CH_DONE) {
        uint64_t moved = atomic_load(&s->moved), done = moved + atomic_load(&s->kept_bytes);
        pthread_mutex_unlock(&s->mu);
        cli_progress_update(p, done < s->o->file->size ? done : s->o->file->size, moved);
        pthread_mutex_lock(&s->mu);
        clock_gettime(CLOCK_REALTIME, &due);
        due.tv_nsec += CLI_PROGRESS_DRAW_MS * 1000000L;
        if (due.tv_nsec >= 1000000000L) due.tv_sec++, due.tv_nsec -= 1000000000L;
        if (!atomic_load(&s->stop) && s->state[i] != CH_DONE)
            pthread_cond_timedwait(&s->cv, &s->mu, &due);
    }
    pthread_mutex_unlock(&s->mu);
}

/* This thread's part: hashes chunks 0, 1, ... as each is verified, and
 * starts their write-back; meanwhile it draws the progress of the ranges.
 * Returns once all are hashed or a thread failed. */
static int hash_prefix(mlreg_digest *out, shared *s)
{
    mlreg_hasher *h = NULL;
    unsigned char *buf = NULL;
    int error = 0;
    cli_progress p;

    cli_progress_begin(&p, s->o->file->size >= CLI_PROGRESS_MIN ? s->o->file->title : NULL,
                       s->o->file->size);
    if ((error = mlreg_hasher_new(&h)) < 0) return error;
    if (!(buf = malloc(READ_BLOCK))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < s->ix->nchunks; i++) {
        uint64_t off = mlreg_chunk_index_offset(s->ix, i), len = mlreg_chunk_index_len(s->ix, i);
        wait_chunk(s, &p, i);
        if (atomic_load(&s->stop)) {
            error = MLREG_EIO; /* the failing thread's error is reported */
            goto done;
        }
        if ((error = hash_mapped(h, s->fd, off, len, buf, s->o->file->title)) < 0) goto done;
        sync_file_range(s->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
    }
    cli_progress_update(&p, s->o->file->size, atomic_load(&s->moved));
    error = mlreg_hasher_final(out, h);
done:
    cli_progress_end(&p);
    free(buf);
    mlreg_hasher_free(h);
    return error;
}

int cli_pull_chunked(int *fd_out, cli_pull_chunked_stats *stats, char *name, size_t namelen,
                     const cli_pull_chunked_opts *o)
{
    char path[PATH_MAX];
    int error = 0, fresh = 0, mu_init = 0, cv_init = 0, hash_error = 0, drop = 0;
    mlreg_chunk_index ix = {0};
    shared s;
    worker *ws = NULL;
    size_t nw = 0;
    mlreg_digest whole;
    char whole_str[MLREG_DIGEST_STRLEN + 1];

    *fd_out = -1;
    memset(stats, 0, sizeof(*stats));
    memset(&s, 0, sizeof(s));
    s.fd = -1;
    s.o = o;
    s.ix = &ix;
    if ((error = index_fetch(&ix, o)) < 0) goto done;
    if ((size_t)snprintf(name, namelen, "%s" PART_SUFFIX,
                         o->file->digest_str + strlen("sha256:")) >= namelen) {
        name[0] = '\0';
        error = mlreg_error_set(MLREG_EINVALID, "partial file name buffer too short");
        goto done;
    }
    snprintf(path, sizeof(path), "%s/%s", o->stage_dir, name);
    if ((error = part_open(&s.fd, &fresh, o->stage_fd, name, path, o->file->size)) < 0) goto done;
    stats->nchunks = ix.nchunks;
    if (ix.nchunks == 0) goto check; /* an empty file has no chunks (the push never indexes one) */
    if (!(s.state = malloc(ix.nchunks))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    memset(s.state, fresh ? CH_FETCH : CH_CHECK, ix.nchunks);
    if (pthread_mutex_init(&s.mu, NULL) != 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    mu_init = 1;
    if (pthread_cond_init(&s.cv, NULL) != 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    cv_init = 1;
    nw = o->parallel ? o->parallel : CLI_PULL_PARALLEL_DEFAULT;
    if (nw > ix.nchunks) nw = ix.nchunks;
    if (!(ws = calloc(nw, sizeof(*ws)))) {
        nw = 0;
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < nw; k++) {
        ws[k].s = &s;
        if ((error = cli_client_clone(&ws[k].c, o->c)) < 0) goto done;
        cli_client_limit_rate(ws[k].c, 0); /* paced here instead, see pace() */
        if (!(ws[k].buf = malloc(READ_BLOCK))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &s.start);
    for (size_t k = 0; k < nw; k++) {
        if (pthread_create(&ws[k].th, NULL, worker_main, &ws[k]) != 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "cannot start a download thread");
            atomic_store(&s.stop, 1);
            goto done;
        }
        ws[k].started = 1;
    }
    hash_error = hash_prefix(&whole, &s);
    if (hash_error < 0 && !atomic_load(&s.stop)) {
        /* this thread failed on its own: stop the others, report its error */
        pthread_mutex_lock(&s.mu);
        s.error = hash_error;
        snprintf(s.msg, sizeof(s.msg), "%s", mlreg_error_last());
        atomic_store(&s.stop, 1);
        pthread_cond_broadcast(&s.cv);
        pthread_mutex_unlock(&s.mu);
    }
    for (size_t k = 0; k < nw; k++)
        if (ws[k].started) {
            pthread_join(ws[k].th, NULL);
            ws[k].started = 0;
        }
    stats->kept = s.kept;
    stats->fetched = s.fetched;
    stats->refetch = s.refetch;
    if (s.error < 0) {
        error = mlreg_error_set(s.error, "%s", s.msg);
        goto done;
    }
    goto compare;
check:
    /* no chunks: hash what there is (nothing) the same way */
    {
        mlreg_hasher *h = NULL;
        if ((error = mlreg_hasher_new(&h)) < 0) goto done;
        error = mlreg_hasher_final(&whole, h);
        mlreg_hasher_free(h);
        if (error < 0) goto done;
    }
compare:
    if (!mlreg_digest_equal(&whole, &o->file->digest)) {
        mlreg_digest_format(whole_str, &whole);
        error = BAD("%s: digest mismatch: every chunk matched the chunk index, but the file "
                    "hashes to %s, the release says %s; the chunk index is wrong, nothing placed",
                    o->file->title, whole_str, o->file->digest_str);
        drop = 1;
        goto done;
    }
    *fd_out = s.fd;
    s.fd = -1;
done:
    if (ws) {
        atomic_store(&s.stop, 1);
        if (cv_init) {
            pthread_mutex_lock(&s.mu);
            pthread_cond_broadcast(&s.cv);
            pthread_mutex_unlock(&s.mu);
        }
        for (size_t k = 0; k < nw; k++) {
            if (ws[k].started) pthread_join(ws[k].th, NULL);
            cli_client_free(ws[k].c);
            free(ws[k].buf);
        }
        free(ws);
    }
    if (s.fd >= 0) close(s.fd);
    if (drop) unlinkat(o->stage_fd, name, 0);
    if (cv_init) pthread_cond_destroy(&s.cv);
    if (mu_init) pthread_mutex_destroy(&s.mu);
    free(s.state);
    mlreg_chunk_index_clear(&ix);
    return error;
}
