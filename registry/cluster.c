/* cluster.c: the audit log in the object store (include/mlreg/cluster.h).
 *
 * Commit (mlreg_cluster__mutate): under the node's commit lock, the change
 * runs in an LMDB write transaction as on a single node; before that
 * transaction commits, each entry it recorded is created in the store as
 * `log/<seq>` with `If-None-Match: *`. Created: the change is durable and
 * the transaction commits. Lost (412): another node owns that seq; the
 * transaction aborts, the node applies the entries it missed (sync) and the
 * change runs again against the new state: a promotion's gates meet the
 * baseline now in force, a version pushed meanwhile is a 409. A request
 * whose outcome is unknown (the store did not answer) aborts the local
 * transaction and reports the doubt; the next sync applies the entry if it
 * landed. A retried create whose first try landed answers 412 too: after
 * the sync the entry at that seq is compared with the change's bytes, and
 * an identical entry is the change's own.
 *
 * Follow (sync_locked): read `log/<applied>` until 404, applying each entry
 * through the replay path (replay.c), which re-appends it and so checks its
 * seq, its hash chain and every byte. An entry that fails there stops the
 * node for good (until an operator repairs the log and restarts it): it
 * serves reads of what it verified, refuses writes and reports unhealthy.
 * Removals show as a gap (`log/<n>` missing while `log/<n+1>` exists);
 * edits of applied entries are found by the scrub, which reads a few
 * applied entries again on each poll.
 *
 * Locks: `lock` serialises this node's commits and syncs (and so its LMDB
 * write transactions); `state` guards the fields status readers see. The
 * order is lock, then LMDB, then state.
 */
#include "mlreg/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlreg/audit.h"
#include "mlreg/buf.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/file.h"
#include "mlreg/sign.h"
#include "mlreg/time.h"
#include "registry_internal.h"

#define SEQ_DIGITS    20
#define NODE_ID_MAX   64
#define HEARTBEAT_MAX (16u * 1024)
#define WHY_MAX       512

struct mlreg_cluster {
    mlreg_registry *reg;         /* borrowed: the registry owns the cluster */
    const mlreg_audit_key *akey; /* borrowed: the log key signs every entry object */
    mlreg_pubkey pub;
    mlreg_s3 *s3;
    char prefix[1024];
    char node_id[NODE_ID_MAX + 1];
    char *url;
    unsigned int poll_ms, heartbeat_ms, attempts, scrub;
    int progress;

    pthread_mutex_t lock;  /* commits and syncs */
    pthread_mutex_t state; /* the fields below */
    pthread_cond_t wake;
    uint64_t applied;  /* entries in the LMDB log */
    uint64_t head;     /* entries in the store at the last read */
    int64_t last_read; /* ns */
    int64_t read_from; /* ns: when the last successful read began */
    int failed;        /* stopped at failed_seq */
    uint64_t failed_seq;
    char why[WHY_MAX];
    uint64_t scrub_next; /* next applied seq to read again, counting down */
    json_t *nodes_seen;  /* the live nodes at nodes_seen_at (mlreg_cluster_node_url) */
    int64_t nodes_seen_at;
    uint64_t commits, lost;

    pthread_t thread;
    int running, stop;
};

/* ---- keys ------------------------------------------------------------------ */

static void entry_key(char *out, size_t n, const mlreg_cluster *cl, uint64_t seq)
{
    snprintf(out, n, "%slog/%0*" PRIu64, cl->prefix, SEQ_DIGITS, seq);
}

/* What the signature of an object written by a node covers: a context line
 * naming what the object is, then its bytes. Entries and heartbeats are
 * signed, so whoever can write to the bucket without the log key can
 * neither add nor change an entry, nor pose as a node to which other nodes
 * forward upload requests (and their clients' tokens). */
#define ENTRY_SIG_CONTEXT     "mlreg log entry v1\n"
#define HEARTBEAT_SIG_CONTEXT "mlreg node heartbeat v1\n"

/* The signature (base64, MLREG_S3_META_SIG_HEADER) of @p text under
 * @p context with the log key. */
static int object_sign(char out[MLREG_S3_META_SIG_MAX + 1], const mlreg_cluster *cl,
                       const char *context, const char *text, size_t len)
{
    unsigned char sig[MLREG_ED25519_SIG_BYTES];
    mlreg_buf b = {NULL, 0, 0};
    int error;

    if ((error = mlreg_buf_add(&b, context, strlen(context))) == 0 &&
        (error = mlreg_buf_add(&b, text, len)) == 0 &&
        (error = mlreg_ed25519_sign(sig, mlreg_audit_key_seckey(cl->akey), b.p, b.len)) == 0)
        sodium_bin2base64(out, MLREG_S3_META_SIG_MAX + 1, sig, sizeof(sig),
                          sodium_base64_VARIANT_ORIGINAL);
    free(b.p);
    return error;
}

/* 0 when @p sig64 is the log key's signature of @p text under @p context,
 * else MLREG_ESIGNATURE with the reason (@p what names the object). */
static int object_verify(const mlreg_cluster *cl, const char *context, const char *what,
                         const char *sig64, const char *text, size_t len)
{
    unsigned char sig[MLREG_ED25519_SIG_BYTES];
    size_t n = 0;
    mlreg_buf b = {NULL, 0, 0};
    int error;

    if (sig64[0] == '\0')
        return mlreg_error_set(MLREG_ESIGNATURE, "the %s carries no signature of the log key",
                               what);
    if (sodium_base642bin(sig, sizeof(sig), sig64, strlen(sig64), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != sizeof(sig))
        return mlreg_error_set(MLREG_ESIGNATURE, "the %s's signature is malformed", what);
    if ((error = mlreg_buf_add(&b, context, strlen(context))) == 0 &&
        (error = mlreg_buf_add(&b, text, len)) == 0 &&
        (error = mlreg_ed25519_verify(sig, &cl->pub, b.p, b.len)) < 0)
        error = mlreg_error_set(MLREG_ESIGNATURE,
                                "the %s is not signed by the log key %s (written by something "
                                "that does not hold it)",
                                what, mlreg_audit_key_origin(cl->akey));
    free(b.p);
    return error;
}

static int valid_node_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > NODE_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return 0;
    return 1;
}

static void random_hex(char *out, size_t bytes)
{
    unsigned char r[32];

    randombytes_buf(r, bytes);
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* The node id: given, or kept in data_dir/node-id (made at first start). */
static int load_node_id(mlreg_cluster *cl, const char *given, const char *data_dir)
{
    char path[4096], *text = NULL, fresh[2 * 8 + 1];
    size_t len = 0;
    mlreg_file *f = NULL;
    int error;

    if (given != NULL) {
        if (!valid_node_id(given))
            return mlreg_error_set(MLREG_EINVALID,
                                   "cluster node id '%s' is not 1 to 64 of [a-z0-9-]", given);
        snprintf(cl->node_id, sizeof(cl->node_id), "%s", given);
        return 0;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/node-id", data_dir) >= sizeof(path))
        return mlreg_error_set(MLREG_EINVALID, "data directory path too long");
    error = mlreg_file_read(&text, &len, path, NODE_ID_MAX + 1);
    if (error == 0) {
        while (len > 0 && text[len - 1] == '\n')
            len--;
        text[len] = '\0';
        if (!valid_node_id(text)) {
            error = mlreg_error_set(MLREG_EINVALID, "%s does not hold a node id", path);
            free(text);
            return error;
        }
        snprintf(cl->node_id, sizeof(cl->node_id), "%s", text);
        free(text);
        return 0;
    }
    if (error != MLREG_ENOTFOUND) return error;
    mlreg_error_clear();
    random_hex(fresh, 8);
    if ((error = mlreg_file_open(&f, path, 0600, MLREG_FILE_NOREPLACE)) < 0 ||
        (error = mlreg_file_write(f, fresh, strlen(fresh))) < 0 ||
        (error = mlreg_file_write(f, "\n", 1)) < 0) {
        mlreg_file_abort(f);
        return error;
    }
    if ((error = mlreg_file_commit(f)) < 0) return error;
    snprintf(cl->node_id, sizeof(cl->node_id), "%s", fresh);
    return 0;
}

/* ---- the commit lock ------------------------------------------------------- */

/* Whether this thread holds a cluster's commit lock: replaying an entry can
 * reach a read that misses (a hostile entry naming nothing), whose refresh
 * must not take the lock again. */
static _Thread_local int holding_commit_lock;

static void commit_lock(mlreg_cluster *cl)
{
    pthread_mutex_lock(&cl->lock);
    holding_commit_lock = 1;
}

static void commit_unlock(mlreg_cluster *cl)
{
    holding_commit_lock = 0;
    pthread_mutex_unlock(&cl->lock);
}

/* ---- state ----------------------------------------------------------------- */

static void set_failed(mlreg_cluster *cl, uint64_t seq, const char *why)
{
    pthread_mutex_lock(&cl->state);
    if (!cl->failed) {
        cl->failed = 1;
        cl->failed_seq = seq;
        snprintf(cl->why, sizeof(cl->why), "%s", why);
        fprintf(stderr,
                "mlreg: log entry %" PRIu64 " in the store cannot be applied: %s; this node "
                "stops following the log and refuses writes\n",
                seq, why);
    }
    pthread_mutex_unlock(&cl->state);
}

static int refused(mlreg_cluster *cl)
{
    int error = 0;

    pthread_mutex_lock(&cl->state);
    if (cl->failed)
        error = mlreg_error_set(MLREG_EUNAVAILABLE,
                                "this node stopped at log entry %" PRIu64
                                " of the object store (%s); writes are refused until the log is "
                                "repaired",
                                cl->failed_seq, cl->why);
    pthread_mutex_unlock(&cl->state);
    return error;
}

/* Errors a replay fails with when the entry itself is wrong, as opposed to
 * this node being short of memory or disk for the moment. */
static int entry_is_broken(int error)
{
    return error != MLREG_ENOMEM && error != MLREG_ENOSPACE && error != MLREG_EIO &&
           error != MLREG_ESERVER && error != MLREG_EUNREACHABLE;
}

static int local_size(uint64_t *out, mlreg_cluster *cl)
{
    mlreg_meta_txn *txn = NULL;
    int error;

    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(cl->reg), 0)) == 0)
        error = mlreg_audit_size_txn(out, txn);
    mlreg_meta_txn_abort(txn);
    return error;
}

static int local_entry(char **out, size_t *len, mlreg_cluster *cl, uint64_t seq)
{
    mlreg_meta_txn *txn = NULL;
    int error;

    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(cl->reg), 0)) == 0)
        error = mlreg_audit_entry_txn(out, len, txn, seq);
    mlreg_meta_txn_abort(txn);
    return error;
}

/* ---- following the log ------------------------------------------------------ */

/* Entries read at once while catching up: the first batch is the next
 * entry and the one after (a poll usually finds neither; finding only the
 * second is a hole: an entry removed while later ones exist), and each full
 * batch doubles the next, up to this many requests in flight. */
#define FETCH_FIRST 2
#define FETCH_MAX   32

typedef struct {
    mlreg_cluster *cl;
    uint64_t seq;
    char *text;
    size_t len;
    char sig[MLREG_S3_META_SIG_MAX + 1];
    int error;
    char why[WHY_MAX];
} fetch_slot;

static void *fetch_one(void *p)
{
    fetch_slot *f = p;
    char key[1200];

    entry_key(key, sizeof(key), f->cl, f->seq);
    f->error =
        mlreg_s3_get_small(&f->text, &f->len, f->sig, f->cl->s3, key, MLREG_AUDIT_ENTRY_MAX + 1);
    if (f->error < 0) snprintf(f->why, sizeof(f->why), "%s", mlreg_error_last());
    mlreg_error_clear();
    return NULL;
}

/* Reads entries @p seq .. @p seq + @p n - 1 into @p slots, in parallel. */
static void fetch_batch(fetch_slot *slots, mlreg_cluster *cl, uint64_t seq, size_t n)
{
    pthread_t th[FETCH_MAX];
    int started[FETCH_MAX];

    for (size_t i = 0; i < n; i++) {
        memset(&slots[i], 0, sizeof(slots[i]));
        slots[i].cl = cl;
        slots[i].seq = seq + i;
        /* the first in this thread: one thread fewer per batch */
        started[i] = i > 0 && pthread_create(&th[i], NULL, fetch_one, &slots[i]) == 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!started[i]) fetch_one(&slots[i]);
    for (size_t i = 1; i < n; i++)
        if (started[i]) pthread_join(th[i], NULL);
}

/* Raises cl->head to one past the last entry of @p slots that the store
 * returned: the entries read ahead exist whether or not they can be
 * applied, so an entry that cannot be applied yet (the map full, a replay
 * failing for a reason that passes) leaves the node behind by what it saw,
 * and GET /readyz (cluster.ready_max_lag) and the lag metric say so. */
static void note_seen(mlreg_cluster *cl, const fetch_slot *slots, size_t n)
{
    uint64_t seen = 0;

    for (size_t i = 0; i < n; i++)
        if (slots[i].error == 0 && slots[i].seq + 1 > seen) seen = slots[i].seq + 1;
    pthread_mutex_lock(&cl->state);
    if (cl->head < seen) cl->head = seen;
    pthread_mutex_unlock(&cl->state);
}

/* Applies every entry the store has past this node's log, reading ahead in
 * parallel batches and applying in order. Caller holds lock. */
static int sync_locked(mlreg_cluster *cl)
{
    uint64_t size = 0, first;
    fetch_slot slots[FETCH_MAX];
    size_t batch = FETCH_FIRST, n = 0, i = 0;
    int error = 0, end = 0;
    int64_t started = mlreg_time_now_ns();

    if ((error = refused(cl)) < 0) return error;
    if ((error = local_size(&size, cl)) < 0) return error;
    first = size;
    while (!end && error == 0) {
        fetch_batch(slots, cl, size, n = batch);
        note_seen(cl, slots, n);
        for (i = 0; i < n && error == 0 && !end; i++) {
            fetch_slot *f = &slots[i];
            if (f->error == MLREG_ENOTFOUND) {
                /* the end of the log, or a hole: a removed entry with later
                 * ones (every sync's first batch reads one past its start) */
                char key[1200], why[WHY_MAX];
                int later = 0;
                for (size_t j = i + 1; j < n; j++)
                    if (slots[j].error != MLREG_ENOTFOUND) later = 1;
                if (later) {
                    /* the reads of a batch race the writers: the entry may
                     * have appeared since; only one still missing after a
                     * later one was seen is a hole */
                    char *again = NULL;
                    size_t alen = 0;
                    entry_key(key, sizeof(key), cl, size);
                    error = mlreg_s3_get_small(&again, &alen, NULL, cl->s3, key,
                                               MLREG_AUDIT_ENTRY_MAX + 1);
                    free(again);
                    if (error == 0 || error != MLREG_ENOTFOUND) break; /* read it again, or fail */
                    mlreg_error_clear();
                    snprintf(why, sizeof(why),
                             "the entry is missing from the store while later entries exist");
                    set_failed(cl, size, why);
                    error = refused(cl);
                }
                end = 1;
                break;
            }
            if (f->error == MLREG_ETOOBIG) {
                set_failed(cl, size, "the entry is over the size of any entry");
                error = refused(cl);
                break;
            }
            if (f->error < 0) {
                error = mlreg_error_set(f->error, "%s", f->why);
                break;
            }
            if ((error = object_verify(cl, ENTRY_SIG_CONTEXT, "entry object", f->sig, f->text,
                                       f->len)) < 0) {
                set_failed(cl, size, mlreg_error_last());
                error = refused(cl);
                break;
            }
            if ((error = mlreg_registry__replay_entry(cl->reg, size, f->text, f->len)) < 0) {
                if (entry_is_broken(error)) {
                    set_failed(cl, size, mlreg_error_last());
                    error = refused(cl);
                }
                break;
            }
            size++;
            pthread_mutex_lock(&cl->state); /* readers see progress entry by entry */
            cl->applied = size;
            if (cl->head < size) cl->head = size;
            pthread_mutex_unlock(&cl->state);
            if (cl->progress && (size - first) % 1000 == 0)
                fprintf(stderr,
                        "mlreg: applied log entries %" PRIu64 " to %" PRIu64 " from the store\n",
                        first, size - 1);
        }
        for (size_t j = 0; j < n; j++)
            free(slots[j].text);
        if (batch < FETCH_MAX) batch *= 2;
    }
    if (cl->progress && size > first)
        fprintf(stderr,
                "mlreg: applied %" PRIu64 " log entr%s from the store in %.1f s; the log holds "
                "%" PRIu64 "\n",
                size - first, size - first == 1 ? "y" : "ies",
                (double)(mlreg_time_now_ns() - started) / 1e9, size);
    pthread_mutex_lock(&cl->state);
    cl->applied = size;
    if (error == 0) {
        cl->head = size;
        cl->last_read = mlreg_time_now_ns();
        cl->read_from = started;
    }
    pthread_mutex_unlock(&cl->state);
    return error;
}

int mlreg_cluster_sync(mlreg_cluster *cl)
{
    int error;

    commit_lock(cl);
    error = sync_locked(cl);
    commit_unlock(cl);
    return error;
}

/* Reads that miss try the log again at most this often (ns): a flood of
 * lookups of unknown names costs the store at most one read per interval. */
#define REFRESH_MIN_NS (10 * 1000000LL)

int mlreg_cluster__refresh(mlreg_cluster *cl, int force)
{
    uint64_t before;
    int64_t asked = mlreg_time_now_ns(), from;
    int error = 0;
    char why[WHY_MAX];

    if (holding_commit_lock) return 0;
    pthread_mutex_lock(&cl->state);
    before = cl->applied;
    from = cl->read_from;
    pthread_mutex_unlock(&cl->state);
    /* Only a read that began after this lookup was asked sees every write
     * acknowledged before it: one that began earlier (the poller's, another
     * miss's) may have ended after such a write without it. So a miss waits
     * out the interval rather than trusting a recent read, and misses that
     * queue here share the first read that begins after them all. */
    if (!force && asked - from < REFRESH_MIN_NS) {
        int64_t wait = from + REFRESH_MIN_NS - asked;
        struct timespec ts = {(time_t)(wait / 1000000000LL), (long)(wait % 1000000000LL)};
        nanosleep(&ts, NULL);
    }
    /* the caller's message (what was not found) stands if nothing came in */
    snprintf(why, sizeof(why), "%s", mlreg_error_last());
    commit_lock(cl);
    pthread_mutex_lock(&cl->state);
    from = cl->read_from;
    pthread_mutex_unlock(&cl->state);
    if (from < asked) error = sync_locked(cl);
    commit_unlock(cl);
    if (error == 0 && cl->applied > before) return 1;
    mlreg_error_set(MLREG_ENOTFOUND, "%s", why);
    return 0;
}

/* Reads up to cl->scrub applied entries again and compares them with the
 * node's copy. Caller holds lock. */
static int scrub_locked(mlreg_cluster *cl)
{
    char key[1200], *remote = NULL, *local = NULL, why[WHY_MAX];
    size_t rlen = 0, llen = 0;
    uint64_t seq;
    int error = 0;

    for (unsigned int i = 0; i < cl->scrub && cl->applied > 0 && error == 0; i++) {
        if (cl->scrub_next == 0 || cl->scrub_next > cl->applied) cl->scrub_next = cl->applied;
        seq = --cl->scrub_next;
        entry_key(key, sizeof(key), cl, seq);
        error = mlreg_s3_get_small(&remote, &rlen, NULL, cl->s3, key, MLREG_AUDIT_ENTRY_MAX + 1);
        if (error == MLREG_ENOTFOUND || error == MLREG_ETOOBIG) {
            snprintf(why, sizeof(why), "the entry this node applied is %s in the store",
                     error == MLREG_ENOTFOUND ? "missing" : "replaced by an oversized object");
            set_failed(cl, seq, why);
            return refused(cl);
        }
        if (error < 0) break;
        if ((error = local_entry(&local, &llen, cl, seq)) == 0 &&
            (llen != rlen || memcmp(local, remote, llen) != 0)) {
            set_failed(cl, seq, "the entry in the store differs from the one this node applied");
            error = refused(cl);
        }
        free(remote);
        free(local);
        remote = local = NULL;
    }
    return error;
}

static int heartbeat(mlreg_cluster *cl)
{
    char key[1200], when[MLREG_TIME_STRLEN], *text = NULL, sig[MLREG_S3_META_SIG_MAX + 1];
    json_t *j;
    int error;

    mlreg_time_format(when, mlreg_time_now_ns());
    pthread_mutex_lock(&cl->state);
    j = json_pack("{s:s, s:s?, s:I, s:I, s:b, s:s}", "node", cl->node_id, "url", cl->url, "applied",
                  (json_int_t)cl->applied, "head", (json_int_t)cl->head, "healthy", !cl->failed,
                  "time", when);
    pthread_mutex_unlock(&cl->state);
    if (j == NULL || (text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        json_decref(j);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory writing the heartbeat");
    }
    snprintf(key, sizeof(key), "%snodes/%s", cl->prefix, cl->node_id);
    if ((error = object_sign(sig, cl, HEARTBEAT_SIG_CONTEXT, text, strlen(text))) == 0)
        error = mlreg_s3_put_meta(cl->s3, key, text, strlen(text), sig);
    free(text);
    json_decref(j);
    return error;
}

static void *follow_main(void *arg)
{
    mlreg_cluster *cl = arg;
    int64_t last_beat = 0;
    struct timespec until;

    pthread_mutex_lock(&cl->state);
    while (!cl->stop) {
        int64_t now;
        pthread_mutex_unlock(&cl->state);

        commit_lock(cl);
        if (sync_locked(cl) == 0) scrub_locked(cl);
        commit_unlock(cl);
        mlreg_error_clear();
        now = mlreg_time_now_ns();
        if (now - last_beat >= (int64_t)cl->heartbeat_ms * 1000000) {
            if (heartbeat(cl) < 0)
                fprintf(stderr, "mlreg: heartbeat of node %s: %s\n", cl->node_id,
                        mlreg_error_last());
            mlreg_error_clear();
            last_beat = now;
        }

        pthread_mutex_lock(&cl->state);
        if (cl->stop) break;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += cl->poll_ms / 1000;
        until.tv_nsec += (long)(cl->poll_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&cl->wake, &cl->state, &until);
    }
    pthread_mutex_unlock(&cl->state);
    return NULL;
}

int mlreg_cluster_follow_start(mlreg_cluster *cl)
{
    if (cl->running) return 0;
    cl->stop = 0;
    if (pthread_create(&cl->thread, NULL, follow_main, cl) != 0)
        return mlreg_error_set(MLREG_EIO, "cannot start the log follower thread");
    cl->running = 1;
    return 0;
}

void mlreg_cluster_follow_stop(mlreg_cluster *cl)
{
    if (cl == NULL || !cl->running) return;
    pthread_mutex_lock(&cl->state);
    cl->stop = 1;
    pthread_cond_broadcast(&cl->wake);
    pthread_mutex_unlock(&cl->state);
    pthread_join(cl->thread, NULL);
    cl->running = 0;
    {
        /* a node that stops cleanly leaves the list of live nodes at once */
        char key[1200];
        snprintf(key, sizeof(key), "%snodes/%s", cl->prefix, cl->node_id);
        if (mlreg_s3_delete(cl->s3, key) < 0) mlreg_error_clear();
    }
}

/* ---- committing ------------------------------------------------------------ */

typedef struct {
    mlreg_cluster *cl;
    uint64_t first;    /* seq of the change's first entry */
    size_t total;      /* entries of the change */
    size_t published;  /* entries created in the store */
    int lost;          /* a create answered 412 */
    uint64_t lost_seq; /* ... for this seq */
    char *ours;        /* ... with these bytes (malloc'd) */
    size_t ours_len;
} publish_state;

static int publish(mlreg_meta_txn *txn, uint64_t first_seq, size_t n, void *arg)
{
    publish_state *p = arg;
    char key[1200], *text = NULL, sig[MLREG_S3_META_SIG_MAX + 1];
    size_t len = 0;
    int error = 0;

    p->first = first_seq;
    p->total = n;
    /* a node that stopped at a broken entry writes nothing (a change that
     * turns out to change nothing never gets here, and passes) */
    if ((error = refused(p->cl)) < 0) return error;
    for (size_t i = 0; i < n; i++) {
        if ((error = mlreg_audit_entry_txn(&text, &len, txn, first_seq + i)) < 0) return error;
        entry_key(key, sizeof(key), p->cl, first_seq + i);
        if ((error = object_sign(sig, p->cl, ENTRY_SIG_CONTEXT, text, len)) < 0) {
            free(text);
            return error;
        }
        error = mlreg_s3_put_new(p->cl->s3, key, text, len, sig);
        if (error == MLREG_EEXISTS) {
            p->lost = 1;
            p->lost_seq = first_seq + i;
            p->ours = text;
            p->ours_len = len;
            return error;
        }
        free(text);
        if (error < 0)
            return mlreg_error_set(error,
                                   "the object store did not confirm log entry %" PRIu64
                                   " (%s); the change may or may not be recorded: the registry "
                                   "applies it if it was",
                                   first_seq + i, mlreg_error_last());
        p->published++;
    }
    return 0;
}

int mlreg_cluster__mutate(uint64_t *seq_out, mlreg_cluster *cl, mlreg_meta *meta,
                          registry_apply_fn apply, void *arg)
{
    int error = 0, synced_for_missing = 0;
    unsigned int attempt;

    commit_lock(cl);
    for (attempt = 1;; attempt++) {
        publish_state p = {cl, 0, 0, 0, 0, 0, NULL, 0};
        uint64_t seq = 0;

        error = mlreg_registry__mutate_local(&seq, meta, apply, arg, publish, &p);
        if (error == 0 || error == REGISTRY_MUTATE_NOOP) {
            if (error == 0 && seq_out != NULL) *seq_out = seq;
            pthread_mutex_lock(&cl->state);
            if (error == 0) {
                cl->commits++;
                cl->applied += p.published;
                if (cl->head < cl->applied) cl->head = cl->applied;
            }
            pthread_mutex_unlock(&cl->state);
            free(p.ours);
            break;
        }
        if (!p.lost && p.published == 0) {
            free(p.ours);
            if ((error == MLREG_ENOTFOUND || error == MLREG_EBLOBUNKNOWN) && !synced_for_missing) {
                /* what the change names may be another node's news: take
                 * the log once more, and try again if it brought anything */
                char why[WHY_MAX];
                uint64_t before = cl->applied;
                int refused_error = error;
                snprintf(why, sizeof(why), "%s", mlreg_error_last());
                synced_for_missing = 1;
                /* the follower holds this lock while it applies: nothing
                 * came in since the change ran unless this sync brought it */
                if (sync_locked(cl) == 0 && cl->applied > before) continue;
                error = mlreg_error_set(refused_error, "%s", why);
            }
            break; /* refused by the change itself, or the store failed */
        }
        /* lost a seq, or published and then failed to commit locally: the
         * store is ahead of this node; take what it has */
        {
            char why[WHY_MAX];
            int lost = p.lost;
            uint64_t lost_seq = p.lost_seq;
            snprintf(why, sizeof(why), "%s", mlreg_error_last());
            mlreg_error_clear();
            if ((error = sync_locked(cl)) < 0) {
                free(p.ours);
                break;
            }
            if (!lost) {
                free(p.ours);
                if (p.published < p.total) {
                    /* the store failed part-way: what landed is applied now */
                    error = mlreg_error_set(MLREG_ESERVER, "%s", why);
                    break;
                }
                /* every entry is in the store, and now in LMDB too */
                if (seq_out != NULL) *seq_out = p.first;
                break;
            }
            pthread_mutex_lock(&cl->state);
            cl->lost++;
            pthread_mutex_unlock(&cl->state);
            {
                char *now = NULL;
                size_t now_len = 0;
                int mine = local_entry(&now, &now_len, cl, lost_seq) == 0 &&
                           now_len == p.ours_len && memcmp(now, p.ours, now_len) == 0;
                free(now);
                free(p.ours);
                mlreg_error_clear();
                if (mine && p.total == 1) {
                    /* a retried create whose first try had landed: done
                     * (a change of several entries runs again for the rest) */
                    if (seq_out != NULL) *seq_out = lost_seq;
                    error = 0;
                    break;
                }
            }
            if (attempt >= cl->attempts) {
                error = mlreg_error_set(MLREG_EUNAVAILABLE,
                                        "the change lost the race for the next log entry %u "
                                        "times in a row to other nodes (last: %s); retry it",
                                        attempt, why);
                break;
            }
        }
    }
    commit_unlock(cl);
    return error;
}

/* ---- open / close ------------------------------------------------------------ */

/* Creates a probe key twice: the second create must lose. Stores that
 * ignore If-None-Match would let two nodes write one seq and fork the log. */
static int probe(mlreg_cluster *cl)
{
    char key[1200], rnd[2 * 8 + 1];
    int first, second;

    random_hex(rnd, 8);
    snprintf(key, sizeof(key), "%sprobe/%s-%s", cl->prefix, cl->node_id, rnd);
    if ((first = mlreg_s3_put_new(cl->s3, key, "1", 1, NULL)) < 0)
        return mlreg_error_set(first, "conditional-create probe %s: %s", key, mlreg_error_last());
    second = mlreg_s3_put_new(cl->s3, key, "2", 1, NULL);
    if (second == 0 || (second < 0 && second != MLREG_EEXISTS)) {
        char why[WHY_MAX];
        snprintf(why, sizeof(why), "%s", second == 0 ? "" : mlreg_error_last());
        mlreg_s3_delete(cl->s3, key);
        if (second == 0)
            return mlreg_error_set(
                MLREG_EUNSUPPORTED,
                "the object store does not honour `If-None-Match: *`: a second conditional create "
                "of %s succeeded. mlreg commits each change by creating the next log object only "
                "if it does not exist; a store (or a proxy in front of it) that ignores the header "
                "would let two nodes write the same entry and fork the log. Use a store with "
                "conditional writes (AWS S3, Ceph RGW, MinIO, GCS, R2)",
                key);
        return mlreg_error_set(second, "conditional-create probe %s: %s", key, why);
    }
    mlreg_error_clear();
    return mlreg_s3_delete(cl->s3, key);
}

/* The bucket's log key: created by the first node, compared by the others. */
static int check_log_key(mlreg_cluster *cl, const mlreg_audit_key *akey)
{
    char key[1200], *ours = NULL, *theirs = NULL;
    size_t len = 0;
    int error;

    snprintf(key, sizeof(key), "%slog-key.pub", cl->prefix);
    if ((error = mlreg_audit_key_public_text(&ours, akey)) < 0) return error;
    error = mlreg_s3_put_new(cl->s3, key, ours, strlen(ours), NULL);
    if (error == MLREG_EEXISTS) {
        mlreg_error_clear();
        if ((error = mlreg_s3_get_small(&theirs, &len, NULL, cl->s3, key, 4096)) < 0) goto done;
        if (len != strlen(ours) || memcmp(theirs, ours, len) != 0) {
            const char *nl = memchr(theirs, '\n', len);
            int shown = nl ? (int)(nl - theirs) : (int)(len > 200 ? 200 : len);
            error = mlreg_error_set(MLREG_EINVALID,
                                    "the log in this bucket is signed with another key (%s holds "
                                    "\"%.*s\"); this node's audit.log_key_file is %s. Give every "
                                    "node of one bucket the same log key",
                                    key, shown, theirs, mlreg_audit_key_origin(akey));
        }
    }

done:
    free(ours);
    free(theirs);
    return error;
}

void mlreg_cluster__free(mlreg_cluster *cl)
{
    if (cl == NULL) return;
    mlreg_cluster_follow_stop(cl);
    mlreg_s3_free(cl->s3);
    free(cl->url);
    json_decref(cl->nodes_seen);
    pthread_mutex_destroy(&cl->lock);
    pthread_mutex_destroy(&cl->state);
    pthread_cond_destroy(&cl->wake);
    free(cl);
}

int mlreg_cluster__open(mlreg_cluster **out, mlreg_registry *reg, const mlreg_cluster_opts *opts,
                        const char *data_dir, const mlreg_audit_key *akey)
{
    mlreg_cluster *cl = NULL;
    int error = 0;

    if (opts == NULL || opts->s3 == NULL || akey == NULL)
        return mlreg_error_set(MLREG_EINVALID, "a shared log needs the store and the log key");
    if ((cl = calloc(1, sizeof(*cl))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory opening the shared log");
    pthread_mutex_init(&cl->lock, NULL);
    pthread_mutex_init(&cl->state, NULL);
    pthread_cond_init(&cl->wake, NULL);
    cl->reg = reg;
    cl->akey = akey;
    mlreg_audit_key_pubkey(&cl->pub, akey);
    cl->poll_ms = opts->poll_ms ? opts->poll_ms : MLREG_CLUSTER_DEFAULT_POLL_MS;
    cl->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : MLREG_CLUSTER_DEFAULT_HEARTBEAT_MS;
    cl->attempts = opts->attempts ? opts->attempts : MLREG_CLUSTER_DEFAULT_ATTEMPTS;
    cl->scrub = opts->scrub_per_poll ? opts->scrub_per_poll : MLREG_CLUSTER_DEFAULT_SCRUB;
    cl->progress = opts->progress;
    if (opts->url != NULL && (error = mlreg_cluster_set_url(cl, opts->url)) < 0) goto done;
    if ((error = load_node_id(cl, opts->node_id, data_dir)) < 0) goto done;
    if ((error = mlreg_s3_new(&cl->s3, opts->s3)) < 0) goto done;
    snprintf(cl->prefix, sizeof(cl->prefix), "%s", mlreg_s3_prefix(cl->s3));
    if ((error = probe(cl)) < 0) goto done;
    if ((error = check_log_key(cl, akey)) < 0) goto done;
    /* start-up catch-up: the whole log on an empty data directory, and an
     * entry this node created before a crash kept it from its LMDB */
    if ((error = local_size(&cl->applied, cl)) < 0) goto done;
    if (cl->progress && cl->applied == 0)
        fprintf(stderr, "mlreg: node %s: building the index from the log in the store\n",
                cl->node_id);
    if ((error = sync_locked(cl)) < 0) {
        if (!cl->failed) goto done;
        /* a broken entry: serve what was verified, report it, refuse writes */
        mlreg_error_clear();
        error = 0;
    }
    *out = cl;
    cl = NULL;

done:
    mlreg_cluster__free(cl);
    return error;
}

/* ---- status ---------------------------------------------------------------- */

int mlreg_cluster_set_url(mlreg_cluster *cl, const char *url)
{
    char *copy = strdup(url);

    if (copy == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    pthread_mutex_lock(&cl->state);
    free(cl->url);
    cl->url = copy;
    pthread_mutex_unlock(&cl->state);
    return 0;
}

const char *mlreg_cluster_node_id(const mlreg_cluster *cl)
{
    return cl->node_id;
}

void mlreg_cluster_counters(uint64_t *commits_out, uint64_t *lost_out, const mlreg_cluster *cl)
{
    mlreg_cluster *m = (mlreg_cluster *)cl;

    pthread_mutex_lock(&m->state);
    *commits_out = m->commits;
    *lost_out = m->lost;
    pthread_mutex_unlock(&m->state);
}

int mlreg_cluster_health(char **why_out, mlreg_cluster *cl)
{
    int error = 0;

    pthread_mutex_lock(&cl->state);
    if (cl->failed) {
        error = MLREG_EUNAVAILABLE;
        if (why_out != NULL &&
            asprintf(why_out, "stopped at log entry %" PRIu64 ": %s", cl->failed_seq, cl->why) < 0)
            *why_out = NULL;
    }
    pthread_mutex_unlock(&cl->state);
    return error;
}

void mlreg_cluster_node_tag(char out[MLREG_CLUSTER_TAG_LEN + 1], const char *node_id)
{
    mlreg_digest d;
    char hex[MLREG_DIGEST_HEXLEN + 1];

    if (mlreg_digest_buffer(&d, node_id, strlen(node_id)) < 0) {
        /* hashing a few bytes in memory does not fail; keep the tag defined */
        memset(out, '0', MLREG_CLUSTER_TAG_LEN);
    } else {
        mlreg_digest_hex(hex, &d);
        memcpy(out, hex, MLREG_CLUSTER_TAG_LEN);
    }
    out[MLREG_CLUSTER_TAG_LEN] = '\0';
}

typedef struct {
    mlreg_cluster *cl;
    json_t *nodes;
    int64_t now;
} nodes_walk;

/* Adds the heartbeat at @p key to w->nodes when it is live. */
static int node_cb(const char *key, uint64_t size, int64_t modified, void *payload)
{
    nodes_walk *w = payload;
    char *text = NULL, sig[MLREG_S3_META_SIG_MAX + 1];
    size_t len = 0;
    json_t *j;
    int64_t sec = 0;
    int32_t nsec = 0;
    const char *t;
    int64_t age_ms;

    (void)modified;
    if (size > HEARTBEAT_MAX) return 0;
    if (mlreg_s3_get_small(&text, &len, sig, w->cl->s3, key, HEARTBEAT_MAX) < 0) {
        mlreg_error_clear(); /* removed meanwhile, or unreadable: not live */
        return 0;
    }
    if (object_verify(w->cl, HEARTBEAT_SIG_CONTEXT, "heartbeat", sig, text, len) < 0) {
        /* not written by a node of this log: not a node */
        mlreg_error_clear();
        free(text);
        return 0;
    }
    j = json_loadb(text, len, 0, NULL);
    free(text);
    t = json_string_value(json_object_get(j, "time"));
    if (j == NULL || t == NULL || mlreg_time_parse(&sec, &nsec, t) < 0 ||
        !json_is_string(json_object_get(j, "node"))) {
        json_decref(j);
        return 0;
    }
    age_ms = (w->now - (sec * 1000000000 + nsec)) / 1000000;
    if (age_ms > 3 * (int64_t)w->cl->heartbeat_ms) {
        json_decref(j);
        return 0;
    }
    json_object_set_new(j, "age_ms", json_integer(age_ms < 0 ? 0 : age_ms));
    json_array_append_new(w->nodes, j);
    return 0;
}

/* The live nodes' heartbeats (a new array in *out). */
static int live_nodes(json_t **out, mlreg_cluster *cl)
{
    char prefix[1200];
    nodes_walk w = {cl, json_array(), mlreg_time_now_ns()};
    int error;

    if (w.nodes == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    snprintf(prefix, sizeof(prefix), "%snodes/", cl->prefix);
    if ((error = mlreg_s3_list(cl->s3, prefix, node_cb, &w)) < 0) {
        json_decref(w.nodes);
        return error;
    }
    pthread_mutex_lock(&cl->state);
    json_decref(cl->nodes_seen);
    cl->nodes_seen = json_incref(w.nodes);
    cl->nodes_seen_at = w.now;
    pthread_mutex_unlock(&cl->state);
    *out = w.nodes;
    return 0;
}

/* The URL of the node with @p tag in @p nodes into *out (a new string):
 * 1 found, 0 not, MLREG_ENOMEM. */
static int url_of_tag(char **out, const json_t *nodes, const char *tag)
{
    const json_t *n;
    size_t i;
    char t[MLREG_CLUSTER_TAG_LEN + 1];

    json_array_foreach(nodes, i, n)
    {
        const char *id = json_string_value(json_object_get(n, "node"));
        const char *url = json_string_value(json_object_get(n, "url"));
        mlreg_cluster_node_tag(t, id);
        if (url == NULL || strncmp(t, tag, MLREG_CLUSTER_TAG_LEN) != 0) continue;
        if ((*out = strdup(url)) == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        return 1;
    }
    return 0;
}

int mlreg_cluster_node_url(char **url_out, mlreg_cluster *cl, const char *tag)
{
    json_t *nodes = NULL;
    int found = 0;

    /* every request of a forwarded upload asks: the heartbeats read within
     * the last interval answer, and a tag they lack reads them again */
    pthread_mutex_lock(&cl->state);
    if (cl->nodes_seen != NULL &&
        mlreg_time_now_ns() - cl->nodes_seen_at < (int64_t)cl->heartbeat_ms * 1000000)
        found = url_of_tag(url_out, cl->nodes_seen, tag);
    pthread_mutex_unlock(&cl->state);
    if (found == 0) {
        if ((found = live_nodes(&nodes, cl)) < 0) return found;
        found = url_of_tag(url_out, nodes, tag);
        json_decref(nodes);
    }
    if (found < 0) return found;
    if (found == 0)
        return mlreg_error_set(MLREG_ENOTFOUND, "no live node of the cluster has tag %.8s", tag);
    return 0;
}

int mlreg_cluster_status(json_t **out, mlreg_cluster *cl, int with_nodes)
{
    char when[MLREG_TIME_STRLEN];
    json_t *j = NULL, *nodes = NULL;
    int error;

    if (!with_nodes)
        nodes = json_null();
    else if ((error = live_nodes(&nodes, cl)) < 0)
        return error;
    pthread_mutex_lock(&cl->state);
    mlreg_time_format(when, cl->last_read);
    j = json_pack("{s:s, s:s?, s:I, s:I, s:I, s:s, s:b, s:o}", "node", cl->node_id, "url", cl->url,
                  "applied", (json_int_t)cl->applied, "head", (json_int_t)cl->head, "lag",
                  (json_int_t)(cl->head > cl->applied ? cl->head - cl->applied : 0), "last_read",
                  when, "healthy", !cl->failed, "nodes", nodes);
    if (j != NULL) {
        mlreg_s3_counts c;
        mlreg_s3_counts_get(&c, cl->s3);
        json_object_set_new(j, "log_requests",
                            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "commits",
                                      (json_int_t)cl->commits, "lost", (json_int_t)cl->lost, "get",
                                      (json_int_t)c.get, "put", (json_int_t)c.put, "head",
                                      (json_int_t)c.head, "delete", (json_int_t)c.del, "list",
                                      (json_int_t)c.list));
    }
    if (j != NULL && cl->failed)
        json_object_set_new(
            j, "stopped_at",
            json_pack("{s:I, s:s}", "seq", (json_int_t)cl->failed_seq, "reason", cl->why));
    pthread_mutex_unlock(&cl->state);
    if (j == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    *out = j;
    return 0;
}
