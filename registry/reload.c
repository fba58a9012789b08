/* reload.c: the audit entry of a config reload (config.reload).
 *
 * A reload re-reads the server's config file (server_reload.c); what it
 * changes in the keyring is recorded by the keyring's own sync (key.trust,
 * key.untrust entries). What is left to record is that the gates, stages,
 * tokens, limits or certificates in force changed, and from which file:
 * one entry with the SHA-256 of the file's bytes and the names of the parts
 * that changed, so an auditor can match the entry against a config kept
 * under version control. It changes no table: replaying it re-appends it
 * and nothing else.
 */
#include "mlreg/registry.h"

#include <stdio.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "registry_internal.h"

typedef struct {
    const char *actor;
    const json_t *details; /* {"digest": "sha256:…", "changed": [...]} (borrowed) */
} reload_change;

static int reload_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    const reload_change *c = arg;
    mlreg_audit_event ev = {.actor = mlreg_registry__actor(c->actor),
                            .action = MLREG_AUDIT_CONFIG_RELOAD,
                            .result = MLREG_AUDIT_OK,
                            .details = c->details};

    (void)txn;
    return mlreg_registry__mutation_record(NULL, mut, &ev);
}

/* The details must be what mlreg_registry_record_reload() writes: a digest
 * and an array of part names, nothing else. */
static int details_valid(const json_t *d)
{
    const char *digest = json_string_value(json_object_get(d, "digest"));
    const json_t *changed = json_object_get(d, "changed"), *v;
    mlreg_digest parsed;
    size_t i;

    if (!json_is_object(d) || json_object_size(d) != 2 || digest == NULL ||
        mlreg_digest_parse(&parsed, digest) < 0 || !json_is_array(changed) ||
        json_array_size(changed) == 0 || json_array_size(changed) > MLREG_RELOAD_PARTS_MAX)
        return 0;
    json_array_foreach(changed, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || strlen(s) == 0 || strlen(s) > 64) return 0;
    }
    return 1;
}

int mlreg_registry_record_reload(uint64_t *seq_out, mlreg_registry *reg, const char *actor,
                                 const char *sha256_hex, const json_t *changed)
{
    reload_change c = {actor, NULL};
    char digest[MLREG_DIGEST_STRLEN + 1];
    json_t *details = NULL;
    int error;

    if (strlen(sha256_hex) != MLREG_DIGEST_HEXLEN)
        return mlreg_error_set(MLREG_EINVALID, "config digest must be 64 hex digits");
    snprintf(digest, sizeof(digest), "sha256:%s", sha256_hex);
    details = json_pack("{s:s, s:O}", "digest", digest, "changed", changed);
    if (details == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a reload");
    if (!details_valid(details)) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "a reload records a sha256 digest and 1 to %d changed parts",
                                MLREG_RELOAD_PARTS_MAX);
        goto done;
    }
    c.details = details;
    error = mlreg_registry__mutate(seq_out, mlreg_registry_meta(reg), reload_apply, &c);
    if (error == REGISTRY_MUTATE_NOOP) error = 0;
done:
    json_decref(details);
    return error;
}

int mlreg_registry__replay_reload(mlreg_registry *reg, const json_t *entry, const char *text,
                                  size_t len)
{
    reload_change c;

    c.actor = json_string_value(json_object_get(entry, "actor"));
    c.details = json_object_get(entry, "details");
    if (!details_valid(c.details))
        return mlreg_error_set(MLREG_EINVALID,
                               "audit entry %lld of config.reload lacks its digest or its "
                               "changed parts",
                               (long long)json_integer_value(json_object_get(entry, "seq")));
    return mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len, reload_apply,
                                         &c);
}
