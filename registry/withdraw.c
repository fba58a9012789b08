/* withdraw.c: withdrawing (yanking) a release and taking a withdrawal back
 * (include/mlreg/promotions.h, docs/promotions-api.md "Withdrawn releases").
 *
 * The withdrawn state is one member of the release record,
 * "withdrawn": {"reason","by","time","seq"}, written and removed here (the
 * record's key layout stays registry.c's). The manifest, its blobs and its
 * signatures are untouched: a withdrawn release stays stored, verifiable
 * and readable through /v2/ by any OCI tool. promotions.c refuses to
 * promote it (a recorded refusal) or to roll a stage back to it, and
 * approvals.c refuses to approve it.
 *
 * A release that stages hold is withdrawn only with "rollback": each such
 * stage is rolled back to its previous release by the rollback of
 * promotions.c, with its own rollback entry and statement, and then the
 * release.withdraw entry is recorded, all in ONE change: one write
 * transaction, so a stage that cannot roll back abandons everything and
 * nothing of it is visible. Each of those entries replays on its own (the
 * rollbacks by promotions.c, the withdrawal here, which then takes the
 * rollbacks it names from its entry instead of making them again).
 *
 * Who may withdraw depends on the stages that hold the release, so it is
 * decided in the change's transaction: promote:S for every stage S that
 * holds it (admin implies them all); a release no stage holds needs
 * promote:S for some stage S of the model, or admin. Taking a withdrawal
 * back needs admin.
 */
#include "mlreg/promotions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/text.h"
#include "mlreg/time.h"
#include "promotions_internal.h"
#include "registry_internal.h"

void mlreg_promotions__withdrawn_note(char *buf, size_t cap, const json_t *rec)
{
    const json_t *w = json_object_get(rec, "withdrawn");
    const char *by = jstr(w, "by"), *when = jstr(w, "time"), *why = jstr(w, "reason");

    snprintf(buf, cap, "%s@%s was withdrawn by %s at %s: %s",
             jstr(rec, "model") ? jstr(rec, "model") : "?",
             jstr(rec, "version") ? jstr(rec, "version") : "?", by ? by : "?", when ? when : "?",
             why ? why : "?");
}

int mlreg_promotions__refuse_withdrawn(const json_t *rec, const char *prefix)
{
    char note[MLREG_WITHDRAWN_NOTE_MAX];

    if (json_object_get(rec, "withdrawn") == NULL) return 0;
    mlreg_promotions__withdrawn_note(note, sizeof(note), rec);
    return mlreg_error_set(MLREG_EDENIED, "%s: %s", prefix, note);
}

/* A withdrawal or its undoing. */
typedef struct {
    mlreg_registry *reg;
    const mlreg_policy *policy; /* NULL on a replay */
    const mlreg_identity *who;  /* NULL on a replay: the entry was authorised */
    const char *actor;
    const char *model;
    const char *version;
    const char *reason;
    int rollback;
    json_t *rec;    /* the release record afterwards (owned) */
    json_t *rolled; /* withdraw: the rollbacks made, [{stage,from_version,to_version,seq}] */
} withdraw_change;

static void change_reset(withdraw_change *c)
{
    json_decref(c->rec);
    json_decref(c->rolled);
    c->rec = c->rolled = NULL;
}

int mlreg_promotions__reason_check(const char *reason)
{
    if (reason == NULL || reason[strspn(reason, " ")] == '\0')
        return mlreg_error_set(MLREG_EINVALID,
                               "a reason is required: say why (at most %d bytes of text)",
                               MLREG_REASON_MAX);
    return mlreg_promotions__check_text(reason, "reason");
}

int mlreg_promotions__stages_holding(json_t **out, mlreg_meta_txn *txn, const mlreg_policy *policy,
                                     const char *model, const char *digest)
{
    const char *const *stages = mlreg_policy_stages(policy);
    json_t *held = json_array(), *ptr = NULL;
    int error = 0;

    if (held == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory reading stages");
    for (size_t i = 0; i < mlreg_policy_stage_count(policy); i++) {
        if ((error = mlreg_promotions__pointer_get(&ptr, txn, model, stages[i])) < 0) goto done;
        if (ptr != NULL && jstr(ptr, "digest") != NULL && !strcmp(jstr(ptr, "digest"), digest) &&
            json_array_append_new(held, json_string(stages[i])) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading stages");
            goto done;
        }
        json_decref(ptr);
        ptr = NULL;
    }
    *out = held;
    held = NULL;

done:
    json_decref(ptr);
    json_decref(held);
    return error;
}

void mlreg_promotions__join_names(char *buf, size_t cap, const json_t *list, const char *prefix)
{
    size_t i, n = 0;
    json_t *s;

    buf[0] = '\0';
    json_array_foreach(list, i, s)
    {
        if (n < cap)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s%s", i ? ", " : "", prefix,
                                  json_string_value(s));
    }
}

/* Who may withdraw: see the top of the file. */
static int withdraw_authorize(const withdraw_change *c, const json_t *held)
{
    const char *const *stages = mlreg_policy_stages(c->policy);
    json_t *missing = json_array(), *s;
    char names[1024], roles[1200];
    size_t i;
    int error = 0;

    if (missing == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory checking roles");
    if (json_array_size(held) == 0) {
        for (i = 0; i < mlreg_policy_stage_count(c->policy); i++)
            if (mlreg_auth_check(c->who, MLREG_ROLE_PROMOTE, stages[i], c->model) == 0) break;
        if (i == mlreg_policy_stage_count(c->policy))
            error = mlreg_error_set(MLREG_EFORBIDDEN,
                                    "token '%s' may not withdraw %s@%s: no stage holds it, so "
                                    "withdrawing needs role promote:STAGE for some stage of the "
                                    "model (or admin)",
                                    mlreg_identity_name(c->who), c->model, c->version);
        goto done;
    }
    json_array_foreach(held, i, s)
    {
        if (mlreg_auth_check(c->who, MLREG_ROLE_PROMOTE, json_string_value(s), c->model) < 0 &&
            json_array_append(missing, s) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory checking roles");
            goto done;
        }
    }
    if (json_array_size(missing) == 0) goto done;
    mlreg_promotions__join_names(names, sizeof(names), held, "");
    mlreg_promotions__join_names(roles, sizeof(roles), missing, "promote:");
    error = mlreg_error_set(MLREG_EFORBIDDEN,
                            "token '%s' may not withdraw %s@%s: it holds stage%s %s, so "
                            "withdrawing needs role%s %s (or admin)",
                            mlreg_identity_name(c->who), c->model, c->version,
                            json_array_size(held) == 1 ? "" : "s", names,
                            json_array_size(missing) == 1 ? "" : "s", roles);

done:
    json_decref(missing);
    return error;
}

int mlreg_promotions__release_change_record(registry_mutation *mut, mlreg_meta_txn *txn,
                                            const char *actor, const char *reason,
                                            const char *model, const char *version,
                                            const json_t *rec, const char *action,
                                            const json_t *details)
{
    mlreg_audit_event ev;
    int error;

    if ((error = mlreg_registry__release_record_put(txn, model, version, rec)) < 0) return error;
    ev = (mlreg_audit_event){.actor = actor,
                             .action = action,
                             .result = MLREG_AUDIT_OK,
                             .reason = reason,
                             .model = model,
                             .version = version,
                             .digest = jstr(rec, "digest"),
                             .details = details};
    return mlreg_registry__mutation_record(NULL, mut, &ev);
}

/* Writes c->rec back and records the change's entry @p action with
 * @p details (borrowed; may be NULL). */
static int record_change(registry_mutation *mut, mlreg_meta_txn *txn, const withdraw_change *c,
                         const char *action, const json_t *details)
{
    return mlreg_promotions__release_change_record(mut, txn, c->actor, c->reason, c->model,
                                                   c->version, c->rec, action, details);
}

static int withdraw_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    withdraw_change *c = arg;
    const json_t *src = mlreg_registry__mutation_source(mut);
    json_t *held = NULL, *one = NULL, *w = NULL, *details = NULL, *s;
    char when[MLREG_TIME_STRLEN], names[1024], note[MLREG_WITHDRAWN_NOTE_MAX];
    uint64_t seq = 0;
    size_t i;
    int error = 0;

    /* from the request's inputs, also when run again after a lost log seq */
    change_reset(c);
    if ((error = mlreg_promotions__release_get(&c->rec, txn, c->model, c->version)) < 0) goto done;
    if ((error = mlreg_promotions__refuse_withdrawn(c->rec, "already withdrawn")) < 0) goto done;
    if (src != NULL) {
        /* the rollbacks it names are entries of their own, replayed already */
        const json_t *r = json_object_get(json_object_get(src, "details"), "rolled_back");
        if ((c->rolled = r ? json_deep_copy(r) : json_array()) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory replaying a withdrawal");
            goto done;
        }
    } else {
        if ((error = mlreg_promotions__stages_holding(&held, txn, c->policy, c->model,
                                                      jstr(c->rec, "digest"))) < 0 ||
            (error = withdraw_authorize(c, held)) < 0)
            goto done;
        if (json_array_size(held) > 0 && !c->rollback) {
            mlreg_promotions__join_names(names, sizeof(names), held, "");
            error = mlreg_error_set(MLREG_EDENIED,
                                    "%s@%s holds stage%s %s: roll %s back first, or withdraw "
                                    "with rollback (mlreg withdraw --rollback), which moves each "
                                    "to its previous release",
                                    c->model, c->version, json_array_size(held) == 1 ? "" : "s",
                                    names, json_array_size(held) == 1 ? "it" : "them");
            goto done;
        }
        if ((c->rolled = json_array()) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory withdrawing");
            goto done;
        }
        json_array_foreach(held, i, s)
        {
            error = mlreg_promotions__rollback_txn(&one, mut, txn, c->reg, c->policy, c->model,
                                                   json_string_value(s), c->reason, c->actor);
            if (error < 0) {
                snprintf(note, sizeof(note), "%s", mlreg_error_last());
                error = mlreg_error_set(error,
                                        "%s@%s not withdrawn, nothing changed: stage %s cannot "
                                        "roll back: %s",
                                        c->model, c->version, json_string_value(s), note);
                goto done;
            }
            if (json_array_append_new(c->rolled, one) < 0) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory withdrawing");
                goto done;
            }
            one = NULL;
        }
    }
    mlreg_time_format(when, mlreg_registry__mutation_time(mut));
    if ((error = mlreg_registry__mutation_next_seq(&seq, mut)) < 0) goto done;
    w = json_pack("{s:s, s:s, s:s, s:I}", "reason", c->reason, "by", c->actor, "time", when, "seq",
                  (json_int_t)seq);
    if (w == NULL || json_object_set(c->rec, "withdrawn", w) < 0 ||
        (json_array_size(c->rolled) > 0 &&
         (details = json_pack("{s:O}", "rolled_back", c->rolled)) == NULL)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory withdrawing");
        goto done;
    }
    error = record_change(mut, txn, c, MLREG_AUDIT_RELEASE_WITHDRAW, details);

done:
    json_decref(one);
    json_decref(held);
    json_decref(w);
    json_decref(details);
    return error;
}

static int unwithdraw_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    withdraw_change *c = arg;
    json_t *details = NULL, *w;
    int error = 0;

    change_reset(c);
    if ((error = mlreg_promotions__release_get(&c->rec, txn, c->model, c->version)) < 0)
        return error;
    if ((w = json_object_get(c->rec, "withdrawn")) == NULL)
        return mlreg_error_set(MLREG_EDENIED, "%s@%s is not withdrawn", c->model, c->version);
    if (c->who != NULL && (error = mlreg_auth_check(c->who, MLREG_ROLE_ADMIN, NULL, c->model)) < 0)
        return mlreg_error_set(error,
                               "token '%s' may not take back the withdrawal of %s@%s: that needs "
                               "role admin",
                               mlreg_identity_name(c->who), c->model, c->version);
    details = json_pack("{s:O}", "withdrawn_seq", json_object_get(w, "seq"));
    if (details == NULL || json_object_del(c->rec, "withdrawn") < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory taking back a withdrawal");
        goto done;
    }
    error = record_change(mut, txn, c, MLREG_AUDIT_RELEASE_UNWITHDRAW, details);

done:
    json_decref(details);
    return error;
}

/* The answer of both changes. */
static json_t *change_view(const withdraw_change *c)
{
    json_t *w = json_object_get(c->rec, "withdrawn");

    /* "o" takes the reference made here (also when packing fails) */
    return json_pack("{s:s, s:s, s:O, s:O, s:o}", "model", c->model, "version", c->version,
                     "digest", json_object_get(c->rec, "digest"), "withdrawn", w ? w : json_null(),
                     "rolled_back", c->rolled ? json_incref(c->rolled) : json_array());
}

static int run_change(json_t **out, withdraw_change *c, registry_apply_fn apply)
{
    int error;
    json_t *res = NULL;

    if ((error = mlreg_promotions__check_names(NULL, c->model, c->version, NULL)) < 0 ||
        (error = mlreg_promotions__reason_check(c->reason)) < 0)
        goto done;
    if ((error = mlreg_registry__mutate(NULL, mlreg_registry_meta(c->reg), apply, c)) < 0)
        goto done;
    if ((res = change_view(c)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering a withdrawal");
        goto done;
    }
    *out = res;
    error = 0;

done:
    change_reset(c);
    return error;
}

int mlreg_release_withdraw(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                           const mlreg_identity *who, const char *model, const char *version,
                           const char *reason, int rollback)
{
    withdraw_change c = {reg, policy, who, NULL, model, version, reason, !!rollback, NULL, NULL};

    if (policy == NULL || who == NULL)
        return mlreg_error_set(MLREG_EINVALID, "a withdrawal needs a policy and an identity");
    c.actor = mlreg_identity_name(who);
    return run_change(out, &c, withdraw_apply);
}

int mlreg_release_unwithdraw(json_t **out, mlreg_registry *reg, const mlreg_identity *who,
                             const char *model, const char *version, const char *reason)
{
    withdraw_change c = {reg, NULL, who, NULL, model, version, reason, 0, NULL, NULL};

    if (who == NULL) return mlreg_error_set(MLREG_EINVALID, "a withdrawal needs an identity");
    c.actor = mlreg_identity_name(who);
    return run_change(out, &c, unwithdraw_apply);
}

int mlreg_registry__replay_withdraw(mlreg_registry *reg, const json_t *entry, const char *text,
                                    size_t len)
{
    const json_t *subject = json_object_get(entry, "subject");
    const char *action = jstr(entry, "action");
    withdraw_change c = {reg,
                         NULL,
                         NULL,
                         jstr(entry, "actor"),
                         jstr(subject, "model"),
                         jstr(subject, "version"),
                         jstr(entry, "reason"),
                         0,
                         NULL,
                         NULL};
    int error;

    if (c.model == NULL || c.version == NULL || c.reason == NULL)
        return mlreg_error_set(MLREG_EINVALID, "%s entry lacks its release or reason", action);
    error = mlreg_registry__mutate_replay(
        mlreg_registry_meta(reg), entry, text, len,
        !strcmp(action, MLREG_AUDIT_RELEASE_WITHDRAW) ? withdraw_apply : unwithdraw_apply, &c);
    change_reset(&c);
    return error;
}
