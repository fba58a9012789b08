/* approvals.c: approvals of a release for a stage (include/mlreg/promotions.h).
 * An approval is recorded once per approver, release and stage; the
 * promotion gate counts them (promotions.c).
 *
 * An approval of an override (a break-glass promotion) is a record of its
 * own, under the approval's key followed by "\0override", so that one
 * identity's plain approval and its override approval never overwrite each
 * other, and the `approvals` gate skips it (approval_cb in promotions.c):
 * agreeing that the gates may be bypassed is not an approval of the
 * release. It counts only for a while (mlreg_promotions__override_live()):
 * until the stage next moves, which the override itself does, and at most
 * MLREG_OVERRIDE_APPROVAL_TTL_S; a stale one is replaced when the same
 * identity approves again. */
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

#define OVERRIDE_KEY_SUFFIX "override"

static json_t *approval_view(const json_t *rec)
{
    json_t *v = json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:O, s:O?}", "model", json_object_get(rec, "model"), "version",
        json_object_get(rec, "version"), "digest", json_object_get(rec, "digest"), "stage",
        json_object_get(rec, "stage"), "approver", json_object_get(rec, "approver"), "time",
        json_object_get(rec, "time"), "comment", json_object_get(rec, "comment"));

    /* only an override approval has these: plain ones answer as before */
    if (v != NULL && json_is_true(json_object_get(rec, "override")) &&
        (json_object_set_new(v, "override", json_true()) < 0 ||
         json_object_set(v, "reason", json_object_get(rec, "reason")) < 0)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

int mlreg_promotions__override_live(const json_t *rec, int64_t since_ns, int64_t now)
{
    json_int_t t = json_integer_value(json_object_get(rec, "time_ns"));

    return json_is_true(json_object_get(rec, "override")) && t > since_ns && t <= now &&
           now - t <= (int64_t)MLREG_OVERRIDE_APPROVAL_TTL_S * 1000000000;
}

int mlreg_promotions__stage_since(int64_t *out, mlreg_meta_txn *txn, const char *model,
                                  const char *stage)
{
    json_t *ptr = NULL;
    int error = mlreg_promotions__pointer_get(&ptr, txn, model, stage);

    *out = 0;
    if (error == 0 && ptr != NULL) *out = json_integer_value(json_object_get(ptr, "since_ns"));
    json_decref(ptr);
    return error;
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
    int override;       /* an approval of an override (break-glass promotion) */
    const char *reason; /* its required reason */
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
                                c->override
                                    ? "you pushed %s@%s; an override must be approved by someone "
                                      "else (a break-glass promotion takes two other identities)"
                                    : "you pushed %s@%s; an approval must come from someone else "
                                      "(the approvals gate does not count the pusher's own)",
                                c->model, c->version);
        goto done;
    }
    if ((error = mlreg_promotions__record_hex(hex, rel)) < 0) goto done;
    klen = mlreg_promotions__key(key, hex, c->stage, c->actor, 0, 0);
    if (c->override) {
        key[klen++] = '\0';
        memcpy(key + klen, OVERRIDE_KEY_SUFFIX, strlen(OVERRIDE_KEY_SUFFIX));
        klen += strlen(OVERRIDE_KEY_SUFFIX);
    }
    error = mlreg_promotions__get_json(&c->rec, txn, MLREG_DB_APPROVALS, key, klen);
    if (error == 0 && c->override) {
        /* an override approval counts for a while; a stale one is replaced */
        int64_t since = 0;
        if ((error = mlreg_promotions__stage_since(&since, txn, c->model, c->stage)) < 0) goto done;
        if (mlreg_promotions__override_live(c->rec, since, now)) {
            error = REGISTRY_MUTATE_NOOP;
            goto done;
        }
        json_decref(c->rec);
        c->rec = NULL;
        error = MLREG_ENOTFOUND;
    }
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
    if (c->rec == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording an approval");
        goto done;
    }
    if (c->override)
        details = json_pack("{s:b, s:s}", "override", 1, "reason", c->reason);
    else if (c->comment != NULL)
        details = json_pack("{s:s}", "comment", c->comment);
    if ((c->override || c->comment != NULL) && details == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording an approval");
        goto done;
    }
    if (c->override && (json_object_set_new(c->rec, "override", json_true()) < 0 ||
                        json_object_set_new(c->rec, "reason", json_string(c->reason)) < 0)) {
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

/* Records approval @p c through the one mutation path and answers its
 * view: *created_out 0 when the same approval was there already. */
static int approve_run(json_t **out, int *created_out, mlreg_registry *reg, approve_change *c)
{
    int error;
    json_t *res;

    if ((error = mlreg_registry__mutate_grouped(NULL, reg, approve_apply, c)) < 0) goto done;
    if ((res = approval_view(c->rec)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering an approval");
        goto done;
    }
    *out = res;
    *created_out = error != REGISTRY_MUTATE_NOOP;
    error = 0;
done:
    json_decref(c->rec);
    c->rec = NULL;
    return error;
}

int mlreg_approve(json_t **out, int *created_out, mlreg_registry *reg, const mlreg_policy *policy,
                  const char *model, const char *version, const char *stage, const char *comment,
                  const char *actor)
{
    int error;
    approve_change c = {model, version, stage, comment, actor, 0, NULL, 0, NULL};

    if ((error = mlreg_promotions__check_names(policy, model, version, stage)) < 0 ||
        (error = mlreg_promotions__check_text(comment, "comment")) < 0)
        return error;
    return approve_run(out, created_out, reg, &c);
}

int mlreg_approve_override(json_t **out, int *created_out, mlreg_registry *reg,
                           const mlreg_policy *policy, const char *model, const char *version,
                           const char *stage, const char *reason, const char *actor)
{
    int error;
    approve_change c = {model, version, stage, NULL, actor, 0, NULL, 1, reason};

    if ((error = mlreg_promotions__check_names(policy, model, version, stage)) < 0 ||
        (error = mlreg_promotions__reason_check(reason)) < 0)
        return error;
    return approve_run(out, created_out, reg, &c);
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
    const json_t *details = json_object_get(entry, "details");
    approve_change c = {jstr(subject, "model"),
                        jstr(subject, "version"),
                        jstr(subject, "stage"),
                        jstr(details, "comment"),
                        jstr(entry, "actor"),
                        1,
                        NULL,
                        json_is_true(json_object_get(details, "override")),
                        jstr(details, "reason")};
    int error;

    if (c.stage == NULL) return mlreg_error_set(MLREG_EINVALID, "approve entry names no stage");
    if (c.override && c.reason == NULL)
        return mlreg_error_set(MLREG_EINVALID, "override approve entry has no reason");
    error = mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len, approve_apply,
                                          &c);
    json_decref(c.rec);
    return error;
}
