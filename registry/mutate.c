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

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/time.h"

struct registry_mutation {
    mlreg_meta_txn *txn;
    int64_t now;
    size_t entries;
    uint64_t first_seq;
    const json_t *source; /* the entry replayed, or NULL for a live change */
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
    registry_mutation mut = {NULL, 0, 0, 0, NULL};
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
    registry_mutation mut = {NULL, 0, 0, 0, entry};
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
