/* blob.c: the blob store front end. Integrity is checked here, once, for every
 * backend: each byte written is hashed, and a blob reaches the backend's commit
 * only when its digest and size equal what the caller declared. */
#include "mlreg/blob.h"
#include "mlreg/common.h"
#include "mlreg/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The operations counted in mlreg_blobstore_operations_total and
 * mlreg_blobstore_errors_total (label `op`). A missing blob (ENOTFOUND,
 * exists() answering 0) is an answer, not an error. */
enum { OP_EXISTS, OP_STAT, OP_READ, OP_WRITE, OP_REMOVE, OP_LIST, OP_QUARANTINE, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"exists", "stat", "read",      "write",
                                               "remove", "list", "quarantine"};

/* The store holds nothing mutable besides the backend (the metric handles
 * are set once and bumped atomically), so it is as thread-safe as the
 * backend; writers and readers belong to one thread. */
struct mlreg_blobstore {
    mlreg_blob_backend *backend;
    mlreg_metrics_series *ops[OP_COUNT];
    mlreg_metrics_series *errors[OP_COUNT];
    unsigned int pipes; /* pipelined writers running (atomic) */
};

/* ---- the write pipeline ----------------------------------------------------
 *
 * A large write to a backend with a write_block (fs) goes through three
 * stages that overlap: the caller (a libmicrohttpd worker) copies the bytes
 * it received into one of PIPE_SLOTS aligned staging slots and goes back to
 * the socket; a hash thread runs SHA-256 over each full slot; a write thread
 * hands the same slot to the backend (fs: one 2 MiB write whose writeback
 * starts at once). A slot is filled again only when both threads are done
 * with it, so memory is PIPE_SLOTS x PIPE_SLOT_BYTES whatever the blob's
 * size, and the caller waits when the disk or the hash falls behind. Slots end on write_block
 * boundaries of the blob (the first one of a run is shortened to get
 * there), so the backend's writes are aligned except the first and the
 * last. Blobs smaller than one slot never start the threads.
 *
 * The hasher belongs to the hash thread while the pipe runs and to the
 * writer again once flush() has joined the threads; the first error of a
 * thread is kept with its message (mlreg_error_set() is per thread) and
 * reported to the caller by its next write, flush or commit. */
#define PIPE_SLOTS      4
#define PIPE_SLOT_BYTES (MLREG_BLOB_PIPE_BYTES / PIPE_SLOTS)

typedef struct {
    mlreg_blob_writer *w;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned char *slot[PIPE_SLOTS];
    size_t slot_len[PIPE_SLOTS];
    uint64_t handed;  /* slots handed to the threads */
    uint64_t hashed;  /* slots the hash thread is done with */
    uint64_t written; /* slots the write thread is done with */
    int closing;      /* no more slots: threads exit once caught up */
    int error;        /* first error of a thread, or 0 */
    char message[512];
    size_t fill;   /* bytes in the slot being filled (caller only) */
    size_t target; /* bytes that slot takes before it is handed over */
    pthread_t hash_thread, write_thread;
    int started; /* threads running: 0, 1 (hash) or 2 (both) */
} blob_pipe;

/* Counts one operation @p op of @p store that returned @p error. */
static int counted(mlreg_blobstore *store, int op, int error)
{
    mlreg_metrics_add(store->ops[op], 1);
    if (error < 0 && error != MLREG_ENOTFOUND) mlreg_metrics_add(store->errors[op], 1);
    return error;
}

/* Registers the store's series; a full registry leaves a handle NULL,
 * which only costs that series (metrics.h). */
static void register_metrics(mlreg_blobstore *store)
{
    const char *backend = store->backend->name ? store->backend->name : "other";

    for (int i = 0; i < OP_COUNT; i++) {
        const char *labels[] = {"backend", backend, "op", op_names[i]};
        store->ops[i] =
            mlreg_metrics_counter("mlreg_blobstore_operations_total",
                                  "Blob store operations by backend and operation.", labels, 2);
        store->errors[i] = mlreg_metrics_counter(
            "mlreg_blobstore_errors_total",
            "Blob store operations that failed (a missing blob is not a failure).", labels, 2);
    }
    mlreg_error_clear();
}

struct mlreg_blob_writer {
    mlreg_blobstore *store;
    mlreg_blob_backend_writer *bw;
    mlreg_hasher *hasher;
    uint64_t size;
    /* Set when a write failed: the backend and the hash may disagree about
     * what was written, so the only safe ending is abort. */
    int failed;
    blob_pipe *pipe; /* while a pipelined run is going on, else NULL */
};

/* Records the first error of a pipe thread; the caller holds the lock. */
static void pipe_fail_locked(blob_pipe *p, int error)
{
    if (p->error) return;
    p->error = error;
    snprintf(p->message, sizeof(p->message), "%s", mlreg_error_last());
}

/* The loop of both threads: @p done is the thread's counter; @p step does
 * its work on one slot. */
static void pipe_run(blob_pipe *p, uint64_t *done, int (*step)(blob_pipe *, unsigned int))
{
    pthread_mutex_lock(&p->lock);
    for (;;) {
        unsigned int i;
        int error;

        while (*done == p->handed && !p->closing && !p->error)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->error || *done == p->handed) break;
        i = (unsigned int)(*done % PIPE_SLOTS);
        pthread_mutex_unlock(&p->lock);
        error = step(p, i);
        pthread_mutex_lock(&p->lock);
        if (error < 0) pipe_fail_locked(p, error);
        (*done)++;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
}

static int hash_step(blob_pipe *p, unsigned int i)
{
    return mlreg_hasher_update(p->w->hasher, p->slot[i], p->slot_len[i]);
}

static int write_step(blob_pipe *p, unsigned int i)
{
    return p->w->bw->write(p->w->bw, p->slot[i], p->slot_len[i]);
}

static void *hash_thread(void *arg)
{
    blob_pipe *p = arg;
    pthread_setname_np(pthread_self(), "mlreg-hash"); /* for top and perf */
    pipe_run(p, &p->hashed, hash_step);
    return NULL;
}

static void *write_thread(void *arg)
{
    blob_pipe *p = arg;
    pthread_setname_np(pthread_self(), "mlreg-write");
    pipe_run(p, &p->written, write_step);
    return NULL;
}

/* Bytes the next slot takes so that it ends on a write_block boundary of
 * the blob, @p offset being where it starts. */
static size_t pipe_target(const mlreg_blob_writer *w, uint64_t offset)
{
    unsigned int block = w->store->backend->write_block;
    return PIPE_SLOT_BYTES - (size_t)(offset % block);
}

/* Stops the threads and frees the pipe: with @p cancel, at once (abort);
 * else after they have finished every slot handed over. The first error
 * of a thread, or 0. */
static int pipe_stop(mlreg_blob_writer *w, int cancel)
{
    blob_pipe *p = w->pipe;
    int error;

    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    if (cancel && !p->error) p->error = MLREG_EINVALID; /* makes the threads stop */
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (p->started > 0) pthread_join(p->hash_thread, NULL);
    if (p->started > 1) pthread_join(p->write_thread, NULL);
    error = p->error;
    if (error < 0 && !cancel) mlreg_error_set(error, "%s", p->message);
    for (unsigned int i = 0; i < PIPE_SLOTS; i++)
        free(p->slot[i]);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
    w->pipe = NULL;
    __atomic_sub_fetch(&w->store->pipes, 1, __ATOMIC_RELAXED);
    return cancel ? 0 : error;
}

/* Starts a pipe for @p w if its backend allows one and the store runs
 * fewer than MLREG_BLOB_PIPES_MAX; when it cannot (no memory, no thread),
 * the writer simply goes on synchronously. */
static void pipe_start(mlreg_blob_writer *w)
{
    mlreg_blobstore *store = w->store;
    unsigned int block = store->backend->write_block;
    blob_pipe *p = NULL;

    if (__atomic_add_fetch(&store->pipes, 1, __ATOMIC_RELAXED) > MLREG_BLOB_PIPES_MAX ||
        PIPE_SLOT_BYTES % block != 0 || (p = calloc(1, sizeof(*p))) == NULL) {
        __atomic_sub_fetch(&store->pipes, 1, __ATOMIC_RELAXED);
        return;
    }
    p->w = w;
    w->pipe = p;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        w->pipe = NULL;
        __atomic_sub_fetch(&store->pipes, 1, __ATOMIC_RELAXED);
        return;
    }
    if (pthread_cond_init(&p->cond, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        w->pipe = NULL;
        __atomic_sub_fetch(&store->pipes, 1, __ATOMIC_RELAXED);
        return;
    }
    for (unsigned int i = 0; i < PIPE_SLOTS; i++) {
        void *m = NULL;
        if (posix_memalign(&m, block < sizeof(void *) ? sizeof(void *) : block, PIPE_SLOT_BYTES) !=
            0)
            goto fail;
        p->slot[i] = m;
    }
    p->target = pipe_target(w, w->size);
    if (pthread_create(&p->hash_thread, NULL, hash_thread, p) != 0) goto fail;
    p->started = 1;
    if (pthread_create(&p->write_thread, NULL, write_thread, p) != 0) goto fail;
    p->started = 2;
    return;
fail:
    pipe_stop(w, 1);
}

/* Copies @p len bytes into the slots, handing each full slot over. */
static int pipe_write(mlreg_blob_writer *w, const unsigned char *data, size_t len)
{
    blob_pipe *p = w->pipe;

    while (len > 0) {
        size_t n;
        unsigned int i = (unsigned int)(p->handed % PIPE_SLOTS);

        if (p->fill == 0) {
            /* the slot is free once both threads are past its last use */
            int error;
            pthread_mutex_lock(&p->lock);
            while (!p->error &&
                   (p->hashed + PIPE_SLOTS <= p->handed || p->written + PIPE_SLOTS <= p->handed))
                pthread_cond_wait(&p->cond, &p->lock);
            error = p->error;
            pthread_mutex_unlock(&p->lock);
            if (error < 0) return mlreg_error_set(error, "%s", p->message);
        }
        n = p->target - p->fill;
        if (n > len) n = len;
        memcpy(p->slot[i] + p->fill, data, n);
        p->fill += n;
        data += n;
        len -= n;
        if (p->fill == p->target) {
            pthread_mutex_lock(&p->lock);
            p->slot_len[i] = p->fill;
            p->handed++;
            pthread_cond_broadcast(&p->cond);
            pthread_mutex_unlock(&p->lock);
            p->fill = 0;
            p->target = PIPE_SLOT_BYTES;
        }
    }
    return 0;
}

/* Hands over the partly filled slot, if any, and stops the pipe. */
static int pipe_finish(mlreg_blob_writer *w)
{
    blob_pipe *p = w->pipe;

    if (p->fill > 0) {
        pthread_mutex_lock(&p->lock);
        p->slot_len[p->handed % PIPE_SLOTS] = p->fill;
        p->handed++;
        pthread_mutex_unlock(&p->lock);
        p->fill = 0;
    }
    return pipe_stop(w, 0);
}

struct mlreg_blob_reader {
    mlreg_blob_backend_reader *br;
};

int mlreg_blobstore_new(mlreg_blobstore **out, mlreg_blob_backend *backend)
{
    mlreg_blobstore *store;

    if (backend == NULL) return mlreg_error_set(MLREG_EINVALID, "blob store needs a backend");
    if (backend->version != MLREG_BLOB_BACKEND_VERSION) {
        unsigned int v = backend->version;
        backend->free(backend);
        return mlreg_error_set(MLREG_EINVALID, "blob backend version %u, expected %u", v,
                               MLREG_BLOB_BACKEND_VERSION);
    }
    if ((store = calloc(1, sizeof(*store))) == NULL) {
        backend->free(backend);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a blob store");
    }
    store->backend = backend;
    register_metrics(store);
    *out = store;
    return 0;
}

void mlreg_blobstore_free(mlreg_blobstore *store)
{
    if (store == NULL) return;
    store->backend->free(store->backend);
    free(store);
}

int mlreg_blobstore_exists(mlreg_blobstore *store, const mlreg_digest *digest)
{
    return counted(store, OP_EXISTS, store->backend->exists(store->backend, digest));
}

int mlreg_blobstore_stat(uint64_t *size_out, mlreg_blobstore *store, const mlreg_digest *digest)
{
    return counted(store, OP_STAT, store->backend->stat(size_out, store->backend, digest));
}

int mlreg_blobstore_remove(mlreg_blobstore *store, const mlreg_digest *digest)
{
    return counted(store, OP_REMOVE, store->backend->remove(store->backend, digest));
}

int mlreg_blobstore_presign(char **url_out, mlreg_blobstore *store, const mlreg_digest *digest,
                            unsigned int expires_seconds)
{
    if (store->backend->presign == NULL)
        return mlreg_error_set(MLREG_EUNSUPPORTED, "this blob backend has no download URLs");
    return store->backend->presign(url_out, store->backend, digest, expires_seconds);
}

int mlreg_blobstore_sweep_stale(unsigned int *count_out, mlreg_blobstore *store, long max_age,
                                int dry_run)
{
    *count_out = 0;
    if (store->backend->sweep_stale == NULL) return 0;
    return store->backend->sweep_stale(count_out, store->backend, max_age, dry_run);
}

int mlreg_blobstore_check(char *reason, size_t reason_len, mlreg_blobstore *store)
{
    if (reason_len > 0) reason[0] = '\0';
    if (store->backend->check == NULL) return 0;
    return store->backend->check(reason, reason_len, store->backend);
}

int mlreg_blobstore_quarantine(char *name_out, mlreg_blobstore *store, const mlreg_digest *digest,
                               int64_t when)
{
    char name[MLREG_BLOB_QUARANTINE_NAME_MAX];
    int error;

    if (store->backend->quarantine == NULL)
        return mlreg_error_set(MLREG_EUNSUPPORTED, "this blob backend cannot quarantine a blob");
    if (when <= 0) when = (int64_t)time(NULL);
    name[0] = '\0';
    error = store->backend->quarantine(name, sizeof(name), store->backend, digest, when);
    if (counted(store, OP_QUARANTINE, error) < 0) return error;
    if (name_out != NULL) memcpy(name_out, name, sizeof(name));
    return 0;
}

int mlreg_blobstore_foreach(mlreg_blobstore *store, mlreg_blob_foreach_cb cb, void *payload)
{
    return counted(store, OP_LIST, store->backend->foreach (store->backend, cb, payload));
}

int mlreg_blobstore_open_write(mlreg_blob_writer **out, mlreg_blobstore *store, int64_t size_hint)
{
    int error = 0;
    mlreg_blob_writer *w = NULL;

    if ((w = calloc(1, sizeof(*w))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a blob writer");
        goto done;
    }
    if ((error = mlreg_hasher_new(&w->hasher)) < 0) goto done;
    w->store = store;
    if ((error = store->backend->open_write(&w->bw, store->backend, size_hint)) < 0) {
        counted(store, OP_WRITE, error);
        goto done;
    }

done:
    if (error < 0) {
        if (w != NULL) mlreg_hasher_free(w->hasher);
        free(w);
        return error;
    }
    *out = w;
    return 0;
}

int mlreg_blob_writer_write(mlreg_blob_writer *w, const void *data, size_t len)
{
    int error = 0;

    if (w->failed) return mlreg_error_set(MLREG_EINVALID, "blob writer failed earlier; abort it");
    if (len == 0) return 0;
    if (w->pipe == NULL && w->store->backend->write_block != 0 && w->size + len > PIPE_SLOT_BYTES)
        pipe_start(w);
    if (w->pipe != NULL)
        error = pipe_write(w, data, len);
    else if ((error = w->bw->write(w->bw, data, len)) == 0)
        error = mlreg_hasher_update(w->hasher, data, len);
    if (error < 0) {
        mlreg_metrics_add(w->store->errors[OP_WRITE], 1);
        w->failed = 1;
        return error;
    }
    w->size += len;
    return 0;
}

int mlreg_blob_writer_flush(mlreg_blob_writer *w)
{
    int error;

    if (w->pipe == NULL) return 0;
    if ((error = pipe_finish(w)) < 0) {
        mlreg_metrics_add(w->store->errors[OP_WRITE], 1);
        w->failed = 1;
    }
    return error;
}

int mlreg_blob_writer_reserve(mlreg_blob_writer *w, uint64_t total)
{
    if (w->failed) return mlreg_error_set(MLREG_EINVALID, "blob writer failed earlier; abort it");
    if (w->bw->reserve == NULL || total <= w->size) return 0;
    /* the write thread may be using the backend writer */
    if (w->pipe != NULL) return 0;
    return w->bw->reserve(w->bw, total);
}

uint64_t mlreg_blob_writer_size(const mlreg_blob_writer *w)
{
    return w->size;
}

int mlreg_blob_writer_commit(mlreg_digest *digest_out, mlreg_blob_writer *w,
                             const mlreg_digest *expected, int64_t expected_size)
{
    int error = 0;
    mlreg_digest got;
    char want_str[MLREG_DIGEST_STRLEN + 1], got_str[MLREG_DIGEST_STRLEN + 1];

    if (!w->failed) error = mlreg_blob_writer_flush(w);
    if (w->failed) {
        if (error == 0)
            error = mlreg_error_set(MLREG_EINVALID, "blob writer failed earlier; not committed");
        goto done;
    }
    if ((error = mlreg_hasher_final(&got, w->hasher)) < 0) goto done;
    /* Size first: it is the cheaper, clearer message when a transfer was cut. */
    if (expected_size >= 0 && (uint64_t)expected_size != w->size) {
        error = mlreg_error_set(MLREG_EMISMATCH,
                                "blob size mismatch: declared %lld bytes, received %llu",
                                (long long)expected_size, (unsigned long long)w->size);
        goto done;
    }
    if (expected != NULL && !mlreg_digest_equal(expected, &got)) {
        mlreg_digest_format(want_str, expected);
        mlreg_digest_format(got_str, &got);
        error = mlreg_error_set(MLREG_EMISMATCH, "blob digest mismatch: declared %s, computed %s",
                                want_str, got_str);
        goto done;
    }
    /* The backend commit frees its writer whatever the result. */
    error = counted(w->store, OP_WRITE, w->bw->commit(w->bw, &got));
    w->bw = NULL;

done:
    if (w->pipe != NULL) pipe_stop(w, 1);
    if (w->bw != NULL) w->bw->abort(w->bw);
    mlreg_hasher_free(w->hasher);
    free(w);
    if (error < 0) return error;
    if (digest_out != NULL) *digest_out = got;
    return 0;
}

void mlreg_blob_writer_abort(mlreg_blob_writer *w)
{
    if (w == NULL) return;
    if (w->pipe != NULL) pipe_stop(w, 1);
    w->bw->abort(w->bw);
    mlreg_hasher_free(w->hasher);
    free(w);
}

int mlreg_blobstore_open_read(mlreg_blob_reader **out, uint64_t *size_out, mlreg_blobstore *store,
                              const mlreg_digest *digest)
{
    int error = 0;
    mlreg_blob_reader *r = NULL;
    uint64_t size = 0;

    if ((r = calloc(1, sizeof(*r))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a blob reader");
        goto done;
    }
    error =
        counted(store, OP_READ, store->backend->open_read(&r->br, &size, store->backend, digest));
    if (error < 0) goto done;

done:
    if (error < 0) {
        free(r);
        return error;
    }
    if (size_out != NULL) *size_out = size;
    *out = r;
    return 0;
}

ssize_t mlreg_blob_reader_read(mlreg_blob_reader *r, void *buf, size_t len)
{
    return r->br->read(r->br, buf, len);
}

int mlreg_blob_reader_fd(mlreg_blob_reader *r)
{
    return r->br->fd(r->br);
}

void mlreg_blob_reader_free(mlreg_blob_reader *r)
{
    if (r == NULL) return;
    r->br->free(r->br);
    free(r);
}
