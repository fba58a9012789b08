/* mutate.c: the one way metadata changes (registry_internal.h).
 *
 * mlreg_registry__mutate() owns the write transaction of a change: it opens it,
 * takes the change's time inside it (so times and commit order agree), runs
 * the change's apply function, which checks, writes and records its audit
 * entry through mlreg_registry__mutation_record(), and commits. Any failure aborts
 * the transaction, so the writes and the entry land together or not at all.
 * A change that writes nothing records nothing and commits nothing.
 *
 * No other code in registry/ begins a write transaction or appends to the
 * audit log: the entry is the record of the change, and here is where the
 * two are bound.
 */
#include "registry_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/time.h"

typedef struct group_item group_item;

struct registry_mutation {
    mlreg_meta_txn *txn;
    int64_t now;
    size_t entries;
    uint64_t first_seq;
    const json_t *source; /* the entry replayed, or NULL for a live change */
    group_item *item;     /* the change's place in a shared commit, or NULL */
};

const json_t *mlreg_registry__mutation_source(const registry_mutation *mut)
{
    return mut->source;
}

int64_t mlreg_registry__mutation_time(const registry_mutation *mut)
{
    return mut->now;
}

int mlreg_registry__mutation_next_seq(uint64_t *out, registry_mutation *mut)
{
    return mlreg_audit_size_txn(out, mut->txn);
}

int mlreg_registry__mutation_record(uint64_t *seq_out, registry_mutation *mut,
                                    const mlreg_audit_event *ev)
{
    mlreg_audit_event e = *ev;
    uint64_t seq = 0;
    int error;

    if (e.time_ns == 0) e.time_ns = mut->now;
    if ((error = mlreg_audit_append_txn(&seq, mut->txn, &e)) < 0) return error;
    if (mut->entries++ == 0) mut->first_seq = seq;
    if (seq_out != NULL) *seq_out = seq;
    return 0;
}

/* Tests set this to run every live change twice, the first run thrown
 * away, as a change that loses its seq to another node is. */
static int rehearse_changes;

void mlreg_registry__rehearse_changes(int on)
{
    rehearse_changes = on;
}

int mlreg_registry__mutate_local(uint64_t *seq_out, mlreg_meta *meta, registry_apply_fn apply,
                                 void *arg, registry_publish_fn publish, void *publish_arg)
{
    registry_mutation mut = {NULL, 0, 0, 0, NULL, NULL};
    int error = 0, applied;

    if (rehearse_changes) {
        if ((error = mlreg_meta_txn_begin(&mut.txn, meta, 1)) < 0) goto done;
        mut.now = mlreg_time_now_ns();
        applied = apply(&mut, mut.txn, arg);
        mlreg_meta_txn_abort(mut.txn);
        mut.txn = NULL;
        mut.entries = 0;
        mlreg_error_clear();
        (void)applied;
    }
    if ((error = mlreg_meta_txn_begin(&mut.txn, meta, 1)) < 0) goto done;
    mut.now = mlreg_time_now_ns();
    if ((applied = apply(&mut, mut.txn, arg)) < 0) {
        error = applied;
        goto done;
    }
    if (applied == REGISTRY_MUTATE_NOOP || mut.entries == 0) {
        if (applied != REGISTRY_MUTATE_NOOP)
            error = mlreg_error_set(MLREG_EIO, "a metadata change recorded no audit entry");
        else
            error = REGISTRY_MUTATE_NOOP;
        goto done;
    }
    if (publish != NULL && (error = publish(mut.txn, mut.first_seq, mut.entries, publish_arg)) < 0)
        goto done;
    error = mlreg_meta_txn_commit(mut.txn);
    mut.txn = NULL;
    if (error == 0 && seq_out != NULL) *seq_out = mut.first_seq;
    if (error == 0 && mlreg_meta_owner(meta) != NULL)
        mlreg_registry__commit_notify(mlreg_meta_owner(meta));

done:
    mlreg_meta_txn_abort(mut.txn);
    return error;
}

int mlreg_registry__mutate(uint64_t *seq_out, mlreg_meta *meta, registry_apply_fn apply, void *arg)
{
    mlreg_registry *reg = mlreg_meta_owner(meta);
    mlreg_cluster *cl = reg != NULL ? mlreg_registry__cluster(reg) : NULL;

    /* with a shared log the entry in the store is the commit point */
    if (cl != NULL) return mlreg_cluster__mutate(seq_out, cl, meta, apply, arg);
    return mlreg_registry__mutate_local(seq_out, meta, apply, arg, NULL, NULL);
}

/* ---- changes sharing one commit -------------------------------------------- */

/*
 * A commit waits for the disk (LMDB: an fdatasync and a synchronous meta
 * page write), and a promotion also writes its signed envelope as a blob
 * (a file, fsyncs, a rename) before it: done one change after the other,
 * the disk's flush latency bounds the rate of promotions. Changes asked for
 * at the same time therefore share one write transaction and one commit:
 *
 * - The thread that finds no leader takes the queue (at most
 *   GROUP_BATCH_MAX changes, its own among them) and opens one write
 *   transaction. Each change runs in a transaction nested in it, taking
 *   its time there; one that fails or changes nothing is aborted alone and
 *   answers as it would have alone.
 * - The blobs a change put with mlreg_registry__mutation_blob_put() are
 *   written by the thread that asked for it, as soon as it was applied and
 *   while the next changes apply (the filesystem joins their flushes), and
 *   the leader waits until every one is durable, still holding the write
 *   transaction.
 * - One commit makes the batch durable; only then does any change of the
 *   batch return, so every change a client was told about is on the disk.
 *   When a write or the commit fails, nothing of the batch was committed,
 *   and each change runs again alone (mlreg_registry__mutate_local()),
 *   reporting its own result. The next batch forms while one commits.
 *
 * Readers see a batch only once its commit returned, which is after the
 * flush: nothing a reader sees can be undone by a crash, and no reader
 * sees a referrer whose envelope is not durable yet. This is LMDB's own
 * durability (a synced commit) and not MDB_NOSYNC plus a later
 * mdb_env_sync(): with NOSYNC a crash of the machine may leave the data
 * file with a meta page pointing at pages not yet written (LMDB's
 * documentation: "a system crash can corrupt the database"), which would
 * lose earlier, acknowledged changes too. Audit entries keep their order:
 * seqs are taken inside the nested transactions, in commit order.
 */
#define GROUP_BATCH_MAX 64

typedef struct {
    mlreg_digest digest;
    void *data;
    size_t len;
} staged_blob;

/* Where a change is: queued, taken into a batch, asked to write its blobs
 * (and done writing), done, or to be run again alone. */
enum { ITEM_QUEUED, ITEM_TAKEN, ITEM_WRITE, ITEM_WRITTEN, ITEM_DONE, ITEM_ALONE };

struct group_item {
    registry_apply_fn apply;
    void *arg;
    int state;
    int in_batch; /* applied and recorded in the batch's transaction */
    int error;    /* the result once done (0, REGISTRY_MUTATE_NOOP, error) */
    int write_error;
    uint64_t seq;
    char message[512]; /* mlreg_error_last() of the leader's thread */
    staged_blob *staged;
    size_t nstaged, cap;
    group_item *next;
};

struct registry_group {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    group_item *head, *tail;
    int leading;
};

int mlreg_registry__group_new(registry_group **out)
{
    registry_group *g = calloc(1, sizeof(*g));

    if (g == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory opening the registry");
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    *out = g;
    return 0;
}

void mlreg_registry__group_free(registry_group *g)
{
    if (g == NULL) return;
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g);
}

static void staged_free(group_item *it)
{
    for (size_t i = 0; i < it->nstaged; i++)
        free(it->staged[i].data);
    free(it->staged);
    it->staged = NULL;
    it->nstaged = it->cap = 0;
}

int mlreg_registry__mutation_blob_put(mlreg_digest *out, registry_mutation *mut,
                                      mlreg_registry *reg, const void *data, size_t len)
{
    group_item *it = mut->item;
    staged_blob *b;
    int error;

    if (it == NULL) return mlreg_registry__blob_put(out, reg, data, len);
    if (it->nstaged == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 2;
        staged_blob *v = realloc(it->staged, cap * sizeof(*v));
        if (v == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory keeping a blob");
        it->staged = v;
        it->cap = cap;
    }
    b = &it->staged[it->nstaged];
    if ((b->data = malloc(len ? len : 1)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory keeping a blob");
    memcpy(b->data, data, len);
    b->len = len;
    if ((error = mlreg_digest_buffer(&b->digest, data, len)) < 0) {
        free(b->data);
        return error;
    }
    it->nstaged++;
    *out = b->digest;
    return 0;
}

/* Keeps the result of @p it and the message of this thread for its owner. */
static void item_result(group_item *it, int error)
{
    it->error = error;
    if (error < 0) snprintf(it->message, sizeof(it->message), "%s", mlreg_error_last());
}

/* Applies @p it in a transaction nested in @p parent: kept in the batch
 * (it->in_batch), or dropped with its result set. */
static void group_apply(group_item *it, mlreg_meta_txn *parent)
{
    registry_mutation mut = {NULL, 0, 0, 0, NULL, it};
    int error, applied;

    if (rehearse_changes) {
        if ((error = mlreg_meta_txn_begin_nested(&mut.txn, parent)) < 0) goto fail;
        mut.now = mlreg_time_now_ns();
        applied = it->apply(&mut, mut.txn, it->arg);
        mlreg_meta_txn_abort(mut.txn);
        mut.txn = NULL;
        mut.entries = 0;
        staged_free(it);
        mlreg_error_clear();
        (void)applied;
    }
    if ((error = mlreg_meta_txn_begin_nested(&mut.txn, parent)) < 0) goto fail;
    mut.now = mlreg_time_now_ns();
    if ((applied = it->apply(&mut, mut.txn, it->arg)) < 0) {
        error = applied;
        goto fail;
    }
    if (applied == REGISTRY_MUTATE_NOOP || mut.entries == 0) {
        if (applied != REGISTRY_MUTATE_NOOP)
            error = mlreg_error_set(MLREG_EIO, "a metadata change recorded no audit entry");
        else
            error = REGISTRY_MUTATE_NOOP;
        goto fail;
    }
    error = mlreg_meta_txn_commit(mut.txn); /* into the parent: no I/O */
    mut.txn = NULL;
    if (error < 0) goto fail;
    it->in_batch = 1;
    it->seq = mut.first_seq;
    return;

fail:
    mlreg_meta_txn_abort(mut.txn);
    staged_free(it);
    item_result(it, error);
}

/* Writes the blobs @p it staged, durably; 0 or the first error. */
static int staged_write(group_item *it, mlreg_registry *reg)
{
    mlreg_digest d;
    int error = 0;

    for (size_t i = 0; i < it->nstaged && error == 0; i++) {
        error = mlreg_registry__blob_put(&d, reg, it->staged[i].data, it->staged[i].len);
        if (error == 0 && !mlreg_digest_equal(&d, &it->staged[i].digest))
            error = mlreg_error_set(MLREG_EIO, "a staged blob was stored under another digest");
    }
    return error;
}

/* Called with g->lock held: writes @p it's blobs without the lock. */
static void item_write_locked(registry_group *g, group_item *it, mlreg_registry *reg)
{
    int error;

    pthread_mutex_unlock(&g->lock);
    error = staged_write(it, reg);
    if (error < 0) snprintf(it->message, sizeof(it->message), "%s", mlreg_error_last());
    pthread_mutex_lock(&g->lock);
    it->write_error = error;
    it->state = ITEM_WRITTEN;
    pthread_cond_broadcast(&g->cond);
}

/* Runs the batch @p batch (its items ITEM_TAKEN) as one commit; @p self is
 * the leader's own item (maybe not in the batch). Ends with every item of
 * the batch ITEM_DONE or ITEM_ALONE. */
static void group_run(registry_group *g, mlreg_registry *reg, group_item *batch, group_item *self)
{
    mlreg_meta_txn *txn = NULL;
    group_item *it;
    int error, kept = 0, failed = 0, pending;

    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 1)) < 0) {
        for (it = batch; it != NULL; it = it->next)
            item_result(it, error);
    } else {
        for (it = batch; it != NULL; it = it->next) {
            group_apply(it, txn);
            kept += it->in_batch;
            /* its thread writes its blobs while the next change applies */
            if (it->in_batch && it->nstaged > 0) {
                pthread_mutex_lock(&g->lock);
                it->state = ITEM_WRITE;
                pthread_cond_broadcast(&g->cond);
                pthread_mutex_unlock(&g->lock);
            }
        }
    }

    pthread_mutex_lock(&g->lock);
    for (;;) {
        if (self->state == ITEM_WRITE) {
            item_write_locked(g, self, reg);
            continue;
        }
        for (pending = 0, it = batch; it != NULL; it = it->next)
            pending |= it->state == ITEM_WRITE;
        if (!pending) break;
        pthread_cond_wait(&g->cond, &g->lock);
    }
    for (it = batch; it != NULL; it = it->next)
        failed |= it->in_batch && it->nstaged > 0 && it->write_error < 0;
    pthread_mutex_unlock(&g->lock);

    if (kept > 0 && !failed) {
        error = mlreg_meta_txn_commit(txn);
        txn = NULL;
        failed = error < 0;
        if (error == 0) mlreg_registry__commit_notify(reg);
    }
    mlreg_meta_txn_abort(txn);

    pthread_mutex_lock(&g->lock);
    for (it = batch; it != NULL;) {
        group_item *next = it->next; /* *it belongs to its thread once done */
        staged_free(it);
        if (it->in_batch && failed) {
            it->state = ITEM_ALONE;
        } else {
            if (it->in_batch) it->error = 0;
            it->state = ITEM_DONE;
        }
        it = next;
    }
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Takes up to GROUP_BATCH_MAX queued items off @p g's queue (lock held). */
static group_item *group_take_locked(registry_group *g)
{
    group_item *batch = g->head, *last = NULL, *it = g->head;
    size_t n = 0;

    for (; it != NULL && n < GROUP_BATCH_MAX; it = it->next, n++) {
        it->state = ITEM_TAKEN;
        last = it;
    }
    g->head = it;
    if (it == NULL) g->tail = NULL;
    if (last != NULL) last->next = NULL;
    return batch;
}

int mlreg_registry__mutate_grouped(uint64_t *seq_out, mlreg_registry *reg, registry_apply_fn apply,
                                   void *arg)
{
    registry_group *g = mlreg_registry__group(reg);
    group_item me;
    group_item *batch;

    if (g == NULL) return mlreg_registry__mutate(seq_out, mlreg_registry_meta(reg), apply, arg);
    memset(&me, 0, sizeof(me));
    me.apply = apply;
    me.arg = arg;
    me.state = ITEM_QUEUED;

    pthread_mutex_lock(&g->lock);
    if (g->tail != NULL)
        g->tail->next = &me;
    else
        g->head = &me;
    g->tail = &me;
    while (me.state != ITEM_DONE && me.state != ITEM_ALONE) {
        if (me.state == ITEM_WRITE) {
            item_write_locked(g, &me, reg);
        } else if (me.state == ITEM_QUEUED && !g->leading) {
            g->leading = 1;
            batch = group_take_locked(g);
            pthread_mutex_unlock(&g->lock);
            group_run(g, reg, batch, &me);
            pthread_mutex_lock(&g->lock);
            g->leading = 0;
            pthread_cond_broadcast(&g->cond);
        } else {
            pthread_cond_wait(&g->cond, &g->lock);
        }
    }
    pthread_mutex_unlock(&g->lock);

    if (me.state == ITEM_ALONE)
        return mlreg_registry__mutate_local(seq_out, mlreg_registry_meta(reg), apply, arg, NULL,
                                            NULL);
    if (me.error < 0) return mlreg_error_set(me.error, "%s", me.message);
    if (me.error == 0 && seq_out != NULL) *seq_out = me.seq;
    return me.error;
}

/* The entry time "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" of @p entry in nanoseconds. */
static int entry_time(int64_t *out, const json_t *entry, uint64_t seq)
{
    const char *t = json_string_value(json_object_get(entry, "time"));
    int64_t sec = 0;
    int32_t nsec = 0;

    /* nanoseconds since the epoch fit in 64 bits from 1677 to 2262 */
    if (t == NULL || mlreg_time_parse(&sec, &nsec, t) < 0 || sec <= INT64_MIN / 1000000000 ||
        sec >= INT64_MAX / 1000000000)
        return mlreg_error_set(MLREG_EINVALID, "audit entry %llu has no valid time",
                               (unsigned long long)seq);
    *out = sec * 1000000000 + nsec;
    return 0;
}

int mlreg_registry__mutate_replay(mlreg_meta *meta, const json_t *entry, const char *text,
                                  size_t len, registry_apply_fn apply, void *arg)
{
    registry_mutation mut = {NULL, 0, 0, 0, entry, NULL};
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(entry, "seq"));
    char *rebuilt = NULL;
    size_t rlen = 0;
    int error = 0, applied;

    if ((error = entry_time(&mut.now, entry, seq)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&mut.txn, meta, 1)) < 0) goto done;
    if ((applied = apply(&mut, mut.txn, arg)) < 0) {
        error = mlreg_error_set(applied, "replaying audit entry %llu: %s", (unsigned long long)seq,
                                mlreg_error_last());
        goto done;
    }
    if (applied == REGISTRY_MUTATE_NOOP || mut.entries != 1 || mut.first_seq != seq) {
        error = mlreg_error_set(MLREG_EMISMATCH,
                                "replaying audit entry %llu: the change %s, not entry %llu",
                                (unsigned long long)seq,
                                applied == REGISTRY_MUTATE_NOOP ? "changed nothing"
                                : mut.entries != 1 ? "recorded another number of entries"
                                                   : "recorded another seq",
                                (unsigned long long)seq);
        goto done;
    }
    if ((error = mlreg_audit_entry_txn(&rebuilt, &rlen, mut.txn, seq)) < 0) goto done;
    if (rlen != len || memcmp(rebuilt, text, len) != 0) {
        json_t *again = json_loadb(rebuilt, rlen, 0, NULL);
        const char *want = json_string_value(json_object_get(again, "prev"));
        const char *have = json_string_value(json_object_get(entry, "prev"));

        if (want != NULL && (have == NULL || strcmp(want, have) != 0))
            error = mlreg_error_set(MLREG_EMISMATCH,
                                    "audit entry %llu does not follow entry %llu: its prev is %s, "
                                    "entry %llu hashes to %s (one of the two was changed)",
                                    (unsigned long long)seq, (unsigned long long)seq - 1,
                                    have ? have : "missing", (unsigned long long)seq - 1, want);
        else
            error = mlreg_error_set(MLREG_EMISMATCH,
                                    "replaying audit entry %llu rebuilt different bytes: %.200s",
                                    (unsigned long long)seq, rebuilt);
        json_decref(again);
        goto done;
    }
    error = mlreg_meta_txn_commit(mut.txn);
    mut.txn = NULL;
    /* a later live change must get a later time, whatever the clock of the
     * node that wrote this entry said */
    if (error == 0) mlreg_time_advance(mut.now);
    if (error == 0 && mlreg_meta_owner(meta) != NULL)
        mlreg_registry__commit_notify(mlreg_meta_owner(meta));

done:
    free(rebuilt);
    mlreg_meta_txn_abort(mut.txn);
    return error;
}
