/* approvals.c: approvals of a release for a stage (include/mlreg/promotions.h).
 * An approval is recorded once per approver, release and stage; the
 * promotion gate counts them (promotions.c). */
#include "mlreg/promotions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/keyring.h"
#include "mlreg/tables.h"
#include "promotions_internal.h"
#include "registry_internal.h"

static json_t *approval_view(const json_t *rec)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O?}", "model", json_object_get(rec, "model"),
                     "version", json_object_get(rec, "version"), "digest",
                     json_object_get(rec, "digest"), "stage", json_object_get(rec, "stage"),
                     "approver", json_object_get(rec, "approver"), "time",
                     json_object_get(rec, "time"), "comment", json_object_get(rec, "comment"));
}

/* An approval; rec is the stored record afterwards, for the reply. */
typedef struct {
    const char *model;
    const char *version;
    const char *stage;
    const char *comment;
    const char *actor;
    int replay; /* 1: an entry of the log, applied as it was (see approve_apply) */
    json_t *rec;
} approve_change;

static int approve_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    approve_change *c = arg;
    int error = 0;
    json_t *rel = NULL, *details = NULL;
    char hex[MLREG_DIGEST_HEXLEN + 1], key[PROMOTIONS_KEY_CAP], when[MLREG_TIME_STRLEN];
    size_t klen;
    int64_t now = mlreg_registry__mutation_time(mut);
    mlreg_audit_event ev;

    /* the record of a run thrown away after a lost log seq is not this one */
    json_decref(c->rec);
    c->rec = NULL;
    if ((error = mlreg_promotions__release_get(&rel, txn, c->model, c->version)) < 0) goto done;
    if ((error =
             mlreg_promotions__refuse_withdrawn(rel, "a withdrawn release cannot be approved")) < 0)
        goto done;
    /* The `approvals` gate never counts the pusher's own approval
     * (approval_cb in promotions.c, by the same
     * mlreg_promotions__pusher_of()), so recording it would only let
     * someone believe the release was approved: refused before anything is
     * written. A replay applies the entries of logs written before this
     * refusal existed as they were. */
    if (!c->replay && !strcmp(c->actor, mlreg_promotions__pusher_of(rel))) {
        error = mlreg_error_set(MLREG_EDENIED,
                                "you pushed %s@%s; an approval must come from someone else "
                                "(the approvals gate does not count the pusher's own)",
                                c->model, c->version);
        goto done;
    }
    if ((error = mlreg_promotions__record_hex(hex, rel)) < 0) goto done;
    klen = mlreg_promotions__key(key, hex, c->stage, c->actor, 0, 0);
    error = mlreg_promotions__get_json(&c->rec, txn, MLREG_DB_APPROVALS, key, klen);
    if (error == 0) {
        error = REGISTRY_MUTATE_NOOP; /* approved already: the first approval stands */
        goto done;
    }
    if (error != MLREG_ENOTFOUND) goto done;
    mlreg_time_format(when, now);
    c->rec = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s, s:I, s:s?}", "model", c->model, "version",
                       c->version, "digest", json_object_get(rel, "digest"), "stage", c->stage,
                       "approver", c->actor, "time", when, "time_ns", (json_int_t)now, "comment",
                       c->comment);
    if (c->rec == NULL ||
        (c->comment != NULL && (details = json_pack("{s:s}", "comment", c->comment)) == NULL)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording an approval");
        goto done;
    }
    if ((error = mlreg_promotions__put_json(txn, MLREG_DB_APPROVALS, key, klen, c->rec)) < 0)
        goto done;
    ev = (mlreg_audit_event){.actor = c->actor,
                             .action = MLREG_AUDIT_APPROVE,
                             .result = MLREG_AUDIT_OK,
                             .model = c->model,
                             .version = c->version,
                             .digest = jstr(rel, "digest"),
                             .stage = c->stage,
                             .details = details};
    error = mlreg_registry__mutation_record(NULL, mut, &ev);

done:
    json_decref(details);
    json_decref(rel);
    return error;
}

int mlreg_approve(json_t **out, int *created_out, mlreg_registry *reg, const mlreg_policy *policy,
                  const char *model, const char *version, const char *stage, const char *comment,
                  const char *actor)
{
    int error = 0;
    json_t *res = NULL;
    approve_change c = {model, version, stage, comment, actor, 0, NULL};

    if ((error = mlreg_promotions__check_names(policy, model, version, stage)) < 0 ||
        (error = mlreg_promotions__check_text(comment, "comment")) < 0)
        goto done;
    if ((error = mlreg_registry__mutate_grouped(NULL, reg, approve_apply, &c)) < 0) goto done;
    if ((res = approval_view(c.rec)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering an approval");
        goto done;
    }
    *out = res;
    *created_out = error != REGISTRY_MUTATE_NOOP;
    error = 0;

done:
    json_decref(c.rec);
    return error;
}

int mlreg_promotions__approvals_foreach(mlreg_meta_txn *txn, const char *hex, const char *stage,
                                        mlreg_meta_iter_cb cb, void *payload)
{
    char prefix[PROMOTIONS_KEY_CAP];

    return mlreg_meta_iter(txn, MLREG_DB_APPROVALS, prefix,
                           mlreg_promotions__key(prefix, hex, stage, "", 0, 0), NULL, 0, cb,
                           payload);
}

int mlreg_approvals_list(json_t **out, mlreg_registry *reg, const char *model, const char *version)
{
    int error;
    mlreg_meta_txn *txn = NULL;
    char hex[MLREG_DIGEST_HEXLEN + 1], prefix[MLREG_DIGEST_HEXLEN + 1];

    if ((error = mlreg_promotions__release_hex_read(hex, &txn, reg, model, version)) < 0) goto done;
    memcpy(prefix, hex, sizeof(prefix)); /* with the NUL after the hex */
    error = mlreg_promotions__list_prefix(out, txn, MLREG_DB_APPROVALS, prefix, sizeof(prefix),
                                          "approvals", approval_view);

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

int mlreg_promotions__replay_approve(mlreg_registry *reg, const json_t *entry, const char *text,
                                     size_t len)
{
    const json_t *subject = json_object_get(entry, "subject");
    approve_change c = {jstr(subject, "model"),
                        jstr(subject, "version"),
                        jstr(subject, "stage"),
                        jstr(json_object_get(entry, "details"), "comment"),
                        jstr(entry, "actor"),
                        1,
                        NULL};
    int error;

    if (c.stage == NULL) return mlreg_error_set(MLREG_EINVALID, "approve entry names no stage");
    error = mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len, approve_apply,
                                          &c);
    json_decref(c.rec);
    return error;
}
