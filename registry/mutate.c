/* mutate.c: the one way metadata changes (registry_internal.h).
 *
 * registry_mutate() owns the write transaction of a change: it opens it,
 * takes the change's time inside it (so times and commit order agree), runs
 * the change's apply function, which checks, writes and records its audit
 * entry through registry_mutation_record(), and commits. Any failure aborts
 * the transaction, so the writes and the entry land together or not at all.
 * A change that writes nothing records nothing and commits nothing.
 *
 * No other code in registry/ begins a write transaction or appends to the
 * audit log: the entry is the record of the change, and here is where the
 * two are bound.
 */
#include "registry_internal.h"

#include "mlreg/common.h"

struct registry_mutation {
    mlreg_meta_txn *txn;
    int64_t now;
    size_t entries;
    uint64_t first_seq;
};

int64_t registry_mutation_time(const registry_mutation *mut)
{
    return mut->now;
}

int registry_mutation_next_seq(uint64_t *out, registry_mutation *mut)
{
    return mlreg_audit_size_txn(out, mut->txn);
}

int registry_mutation_record(uint64_t *seq_out, registry_mutation *mut, const mlreg_audit_event *ev)
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

int registry_mutate(uint64_t *seq_out, mlreg_meta *meta, registry_apply_fn apply, void *arg)
{
    registry_mutation mut = {NULL, 0, 0, 0};
    int error = 0, applied;

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
    error = mlreg_meta_txn_commit(mut.txn);
    mut.txn = NULL;
    if (error == 0 && seq_out != NULL) *seq_out = mut.first_seq;

done:
    mlreg_meta_txn_abort(mut.txn);
    return error;
}
