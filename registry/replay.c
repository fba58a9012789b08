/* replay.c: rebuilding the metadata from the audit log
 * (mlreg_registry_replay() in include/mlreg/registry.h).
 *
 * Every entry records one change (mutate.c). Replaying it runs the same
 * apply function the live change ran, through mlreg_registry__mutate_replay(),
 * which gives it the entry's time and checks that it re-appends the very
 * bytes of the entry: so a replay that succeeds rebuilt each change as it
 * was made, and an entry that misses something its change needs fails
 * naming its seq. Each file that owns an action replays it
 * (registry_replay_* in registry_internal.h); this file walks the log and
 * dispatches.
 */
#include "mlreg/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "registry_internal.h"

typedef int (*replay_fn)(mlreg_registry *reg, const json_t *entry, const char *text, size_t len);

static const struct {
    const char *action;
    replay_fn replay;
} replayers[] = {
    {MLREG_AUDIT_PUSH, mlreg_registry__replay_manifests},
    {MLREG_AUDIT_MANIFEST_PUT, mlreg_registry__replay_manifests},
    {MLREG_AUDIT_MANIFEST_DELETE, mlreg_registry__replay_manifests},
    {MLREG_AUDIT_TAG_DELETE, mlreg_registry__replay_manifests},
    {MLREG_AUDIT_BLOB_LINK, mlreg_registry__replay_blobs},
    {MLREG_AUDIT_BLOB_DELETE, mlreg_registry__replay_blobs},
    {MLREG_AUDIT_GC_COLLECT, mlreg_registry__replay_gc},
    {MLREG_AUDIT_GC_DONE, mlreg_registry__replay_gc},
    {MLREG_AUDIT_SIGNATURE_ATTACH, mlreg_registry__replay_signature},
    {MLREG_AUDIT_PROMOTE, mlreg_registry__replay_promotions},
    {MLREG_AUDIT_ROLLBACK, mlreg_registry__replay_promotions},
    {MLREG_AUDIT_APPROVE, mlreg_registry__replay_promotions},
    {MLREG_AUDIT_IMAGE_BIND, mlreg_registry__replay_promotions},
    {MLREG_AUDIT_KEY_TRUST, mlreg_registry__replay_keyring},
    {MLREG_AUDIT_KEY_REVOKE, mlreg_registry__replay_keyring},
    {MLREG_AUDIT_KEY_UNTRUST, mlreg_registry__replay_keyring},
    {MLREG_AUDIT_RELEASE_WITHDRAW, mlreg_registry__replay_withdraw},
    {MLREG_AUDIT_RELEASE_UNWITHDRAW, mlreg_registry__replay_withdraw},
    {MLREG_AUDIT_RELEASE_PURGE, mlreg_registry__replay_purge},
    {MLREG_AUDIT_SCRUB, mlreg_registry__replay_scrub},
    {MLREG_AUDIT_TOKEN_CREATE, mlreg_registry__replay_tokens},
    {MLREG_AUDIT_TOKEN_REVOKE, mlreg_registry__replay_tokens},
    {MLREG_AUDIT_CONFIG_RELOAD, mlreg_registry__replay_reload},
    {MLREG_AUDIT_EVALUATION_ATTEST, mlreg_registry__replay_evaluation},
};

int mlreg_registry__replay_entry(mlreg_registry *dest, uint64_t seq, const char *text, size_t len)
{
    size_t i;
    json_t *entry = NULL;
    const char *action;
    int error = 0;

    entry = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    action = json_string_value(json_object_get(entry, "action"));
    if (action == NULL || !json_is_integer(json_object_get(entry, "seq")) ||
        json_integer_value(json_object_get(entry, "seq")) != (json_int_t)seq) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "audit entry %llu: the object is not a log entry of seq %llu "
                                "(no action, or another seq)",
                                (unsigned long long)seq, (unsigned long long)seq);
        goto done;
    }
    /* what every change reads: the replayers may rely on these */
    if (!json_is_string(json_object_get(entry, "actor")) ||
        !json_is_string(json_object_get(entry, "result")) ||
        !json_is_string(json_object_get(entry, "time")) ||
        !json_is_object(json_object_get(entry, "subject"))) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "replaying audit entry %llu: it lacks its actor, result, time or "
                                "subject",
                                (unsigned long long)seq);
        goto done;
    }
    for (i = 0; i < sizeof(replayers) / sizeof(replayers[0]); i++)
        if (!strcmp(action, replayers[i].action)) break;
    if (i == sizeof(replayers) / sizeof(replayers[0])) {
        error = mlreg_error_set(MLREG_EINVALID, "audit entry %llu: unknown action '%s'",
                                (unsigned long long)seq, action);
        goto done;
    }
    /* a change refused before its transaction names no entry yet */
    if ((error = replayers[i].replay(dest, entry, text, len)) < 0 &&
        strncmp(mlreg_error_last(), "replaying audit entry", 21) != 0) {
        char why[512];

        snprintf(why, sizeof(why), "%s", mlreg_error_last());
        mlreg_error_set(error, "replaying audit entry %llu (%s): %s", (unsigned long long)seq,
                        action, why);
    }

done:
    json_decref(entry);
    return error;
}

/* Replays entry @p seq of the log @p txn reads. */
static int replay_one(mlreg_registry *dest, mlreg_meta_txn *txn, uint64_t seq)
{
    char *text = NULL;
    size_t len = 0;
    int error;

    if ((error = mlreg_audit_entry_txn(&text, &len, txn, seq)) == 0)
        error = mlreg_registry__replay_entry(dest, seq, text, len);
    free(text);
    return error;
}

int mlreg_registry_replay(mlreg_registry *dest, mlreg_meta *source)
{
    mlreg_meta_txn *txn = NULL, *dtxn = NULL;
    uint64_t size = 0, have = 0;
    int error = 0;

    if (source == mlreg_registry_meta(dest)) {
        error = mlreg_error_set(MLREG_EINVALID, "replay: the source log is the destination's");
        goto done;
    }
    if ((error = mlreg_meta_txn_begin(&dtxn, mlreg_registry_meta(dest), 0)) < 0 ||
        (error = mlreg_audit_size_txn(&have, dtxn)) < 0)
        goto done;
    mlreg_meta_txn_abort(dtxn);
    dtxn = NULL;
    if (have != 0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "replay: the destination has %llu audit entries; it must be empty",
                                (unsigned long long)have);
        goto done;
    }
    if ((error = mlreg_meta_txn_begin(&txn, source, 0)) < 0 ||
        (error = mlreg_audit_size_txn(&size, txn)) < 0)
        goto done;
    for (uint64_t seq = 0; seq < size; seq++)
        if ((error = replay_one(dest, txn, seq)) < 0) goto done;

done:
    mlreg_meta_txn_abort(dtxn);
    mlreg_meta_txn_abort(txn);
    return error;
}
