/* push_reader.c: a file read once, hashed on worker threads (push_reader.h).
 *
 * A ring of NBLOCKS blocks of BLOCK bytes (12 MiB, inside the 16 MiB of
 * memory growth a push may use (docs/performance.md, row 9); a deeper ring than 4 blocks looked
 * faster on a busy machine, where a thread that waits waits long). The
 * caller's thread fills a block with one large read, publishes it to the
 * workers (the whole-file hasher, and the chunk hasher in PUSH_HASH_CHUNKS
 * mode) and then hands it out piece by piece (to libcurl's buffer). A block is filled again only
 * when every worker has hashed it, so the caller waits for hashing only
 * when the workers are NBLOCKS blocks behind; the memory stays at
 * NBLOCKS * BLOCK whatever the file's size. Only bytes beyond `hashed`
 * (the end of what was ever published) are hashed: a rewound read hands
 * the same file bytes out again without hashing them twice.
 */
#include "push_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlreg/common.h"

#define BLOCK   ((size_t)2 << 20)
#define NBLOCKS 6
#define WORKERS 2

typedef struct {
    unsigned char *buf;
    uint64_t off;  /* file offset of buf[0] */
    size_t len;    /* bytes read into buf */
    size_t hstart; /* bytes before this offset in buf are hashed already */
    int pending;   /* workers that have not hashed it yet */
} block;

struct push_reader {
    int fd;
    uint64_t size;
    int mode;
    const char *name;
    block blocks[NBLOCKS];
    uint64_t produced; /* blocks published so far (sequence numbers) */
    int cur;           /* block being handed out, -1 for none */
    size_t cur_pos;    /* position in it */
    uint64_t pos;      /* file offset of the next byte handed out */
    uint64_t hashed;   /* every byte below was published for hashing */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t threads[WORKERS];
    int nthreads;
    int stop;
    int error; /* first worker failure */
    mlreg_hasher *file;
    mlreg_chunk_builder *chunks;
};

typedef struct {
    push_reader *r;
    int which; /* 0 the file digest, 1 the chunk index */
    uint64_t next;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    push_reader *r = w->r;

    for (;;) {
        block *b;
        int error;

        pthread_mutex_lock(&r->lock);
        while (w->next == r->produced && !r->stop)
            pthread_cond_wait(&r->cond, &r->lock);
        if (w->next == r->produced) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        b = &r->blocks[w->next % NBLOCKS];
        pthread_mutex_unlock(&r->lock);
        error = 0;
        if (b->len > b->hstart)
            error =
                w->which == 0
                    ? mlreg_hasher_update(r->file, b->buf + b->hstart, b->len - b->hstart)
                    : mlreg_chunk_builder_update(r->chunks, b->buf + b->hstart, b->len - b->hstart);
        pthread_mutex_lock(&r->lock);
        if (error < 0 && !r->error) r->error = error;
        b->pending--;
        w->next++;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
    }
    free(w);
    return NULL;
}

static int start_worker(push_reader *r, int which)
{
    worker *w = calloc(1, sizeof(*w));

    if (!w) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    w->r = r;
    w->which = which;
    if (pthread_create(&r->threads[r->nthreads], NULL, work, w) != 0) {
        free(w);
        return mlreg_error_set(MLREG_EIO, "cannot start a hashing thread");
    }
    r->nthreads++;
    return 0;
}

int push_reader_new(push_reader **out, int fd, uint64_t size, int mode, const char *name)
{
    push_reader *r = calloc(1, sizeof(*r));
    int error = 0;

    *out = NULL;
    if (!r) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    r->fd = fd;
    r->size = size;
    r->mode = mode;
    r->name = name;
    r->cur = -1;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    for (int i = 0; i < NBLOCKS; i++)
        if (!(r->blocks[i].buf = malloc(BLOCK))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
    if ((mode & PUSH_HASH_FILE) && (error = mlreg_hasher_new(&r->file)) < 0) goto done;
    if ((mode & PUSH_HASH_CHUNKS) &&
        (error = mlreg_chunk_builder_new(&r->chunks, MLREG_CHUNK_SIZE_DEFAULT)) < 0)
        goto done;
    if ((mode & PUSH_HASH_FILE) && (error = start_worker(r, 0)) < 0) goto done;
    if ((mode & PUSH_HASH_CHUNKS) && (error = start_worker(r, 1)) < 0) goto done;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    *out = r;
    r = NULL;
done:
    push_reader_free(r);
    return error;
}

/* Fills the next block of the ring from the file at r->pos and publishes
 * it; waits while the workers still hash that slot. */
static int next_block(push_reader *r)
{
    int slot;
    block *b;
    size_t want, got = 0;

    pthread_mutex_lock(&r->lock);
    slot = (int)(r->produced % NBLOCKS);
    b = &r->blocks[slot];
    while (b->pending > 0)
        pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
    want = r->size - r->pos < BLOCK ? (size_t)(r->size - r->pos) : BLOCK;
    while (got < want) {
        ssize_t n = pread(r->fd, b->buf + got, want - got, (off_t)(r->pos + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return mlreg_error_set(MLREG_EIO, "%s: %s", r->name, strerror(errno));
        if (n == 0) return mlreg_error_set(MLREG_EIO, "%s: file shrank while it was read", r->name);
        got += (size_t)n;
    }
    b->off = r->pos;
    b->len = want;
    b->hstart = r->hashed > b->off ? (size_t)(r->hashed - b->off) : 0;
    if (b->hstart > b->len) b->hstart = b->len;
    if (b->off + b->len > r->hashed) r->hashed = b->off + b->len;
    pthread_mutex_lock(&r->lock);
    b->pending = r->nthreads;
    r->produced++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    r->cur = slot;
    r->cur_pos = 0;
    return 0;
}

int64_t push_reader_read(push_reader *r, void *buf, size_t len)
{
    block *b;
    size_t n;
    int error;

    if (r->pos >= r->size || len == 0) return 0;
    if (r->cur < 0 || r->cur_pos == r->blocks[r->cur].len) {
        if ((error = next_block(r)) < 0) return error;
    }
    b = &r->blocks[r->cur];
    n = b->len - r->cur_pos;
    if (n > len) n = len;
    memcpy(buf, b->buf + r->cur_pos, n);
    r->cur_pos += n;
    r->pos += n;
    return (int64_t)n;
}

int push_reader_seek(push_reader *r, uint64_t offset)
{
    if (offset > r->size) return mlreg_error_set(MLREG_EINVALID, "seek past the end");
    if (r->cur >= 0) {
        block *b = &r->blocks[r->cur];
        if (offset >= b->off && offset <= b->off + b->len) {
            r->cur_pos = (size_t)(offset - b->off);
            r->pos = offset;
            return 0;
        }
    }
    r->cur = -1;
    r->pos = offset;
    return 0;
}

int push_reader_skip(push_reader *r, uint64_t offset)
{
    int error;

    if (offset > r->size) return mlreg_error_set(MLREG_EINVALID, "skip past the end");
    while (r->pos < offset) {
        block *b;
        size_t n;
        if (r->cur < 0 || r->cur_pos == r->blocks[r->cur].len) {
            if ((error = next_block(r)) < 0) return error;
        }
        b = &r->blocks[r->cur];
        n = b->len - r->cur_pos;
        if (n > offset - r->pos) n = (size_t)(offset - r->pos);
        r->cur_pos += n;
        r->pos += n;
    }
    return 0;
}

uint64_t push_reader_hashed(const push_reader *r)
{
    return r->hashed;
}

static void stop_threads(push_reader *r)
{
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < r->nthreads; i++)
        pthread_join(r->threads[i], NULL);
    r->nthreads = 0;
    /* the ring is free for reading again: nobody hashes any more */
    for (int i = 0; i < NBLOCKS; i++)
        r->blocks[i].pending = 0;
}

int push_reader_finish(mlreg_digest *digest_out, mlreg_chunk_index *ix_out, push_reader *r)
{
    int error;

    if (r->hashed != r->size)
        return mlreg_error_set(MLREG_EINVALID, "%s: hashing ended before the end", r->name);
    stop_threads(r);
    if (r->error < 0) return r->error;
    if (!r->file) return mlreg_error_set(MLREG_EINVALID, "%s: not hashed", r->name);
    error = mlreg_hasher_final(digest_out, r->file);
    mlreg_hasher_free(r->file);
    r->file = NULL;
    if (error < 0) return error;
    if (r->chunks && ix_out) {
        error = mlreg_chunk_builder_finish(ix_out, r->chunks, digest_out);
        mlreg_chunk_builder_free(r->chunks);
        r->chunks = NULL;
    }
    return error;
}

void push_reader_free(push_reader *r)
{
    if (!r) return;
    stop_threads(r);
    for (int i = 0; i < NBLOCKS; i++)
        free(r->blocks[i].buf);
    mlreg_hasher_free(r->file);
    mlreg_chunk_builder_free(r->chunks);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
