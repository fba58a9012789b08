/* purge.c: purging a release, for takedowns and retention
 * (include/mlreg/promotions.h, docs/lifecycle.md "Purge").
 *
 * A purge is one change, "release.purge", in one write transaction:
 *
 * - the release record stays (a version is never reused, and every entry
 *   that names the release keeps meaning something) and gains
 *   "purged": {"reason","by","time","seq"}: reads of the release and of its
 *   manifest answer 410 naming that entry (MLREG_EGONE), every change that
 *   names it is refused (mlreg_promotions__release_get());
 * - its manifest leaves the index as a manifest DELETE would
 *   (mlreg_registry__release_unindex()): its row, its version tag, its
 *   blob_refs rows;
 * - the entry lists the release's files that no other manifest references
 *   now; after the commit, mlreg_registry__gc_collect_now() condemns and
 *   deletes them at once (gc.collect and gc.done entries, without the grace
 *   period), with the same checks against a push that races it as a
 *   collection.
 *
 * What stays, on purpose: the manifest's own bytes and the eval report (a
 * few KiB; the record's metrics come from them). The log's push entry names
 * them: `mlreg audit verify` and a node rebuilding its index from the log
 * replay the push from them, then this purge. Signatures and promotion
 * attestations of the release stay too: they are the promotion history an
 * auditor checks. The weights, tokenizer, config, seeds and every other
 * file go.
 *
 * A release a stage holds now is refused (naming the stages): withdraw it
 * with rollback first. Purging needs admin.
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

/* The file kind (manifest.c's mlreg_release_layer_kind()) that stays. */
#define KEPT_KIND "eval-report"

typedef struct {
    mlreg_registry *reg;
    const mlreg_policy *policy; /* NULL on a replay */
    const mlreg_identity *who;  /* NULL on a replay: the entry was authorised */
    const char *actor;
    const char *model;
    const char *version;
    const char *reason;
    json_t *rec;   /* the release record afterwards (owned) */
    json_t *blobs; /* the files left unreferenced: [{"digest","size","title"}] */
} purge_change;

static void change_reset(purge_change *c)
{
    json_decref(c->rec);
    json_decref(c->blobs);
    c->rec = c->blobs = NULL;
}

/* Live checks: admin, and no stage holds the release now. */
static int purge_authorize(purge_change *c, mlreg_meta_txn *txn)
{
    json_t *held = NULL;
    char names[1024];
    int error;

    if ((error = mlreg_auth_check(c->who, MLREG_ROLE_ADMIN, NULL, c->model)) < 0)
        return mlreg_error_set(error, "token '%s' may not purge %s@%s: that needs role admin",
                               mlreg_identity_name(c->who), c->model, c->version);
    if ((error = mlreg_promotions__stages_holding(
             &held, txn, c->policy, c->model,
             json_string_value(json_object_get(c->rec, "digest")))) < 0)
        return error;
    if (json_array_size(held) > 0) {
        mlreg_promotions__join_names(names, sizeof(names), held, "");
        error = mlreg_error_set(MLREG_EDENIED,
                                "%s@%s holds stage%s %s: a release in use is not purged; move "
                                "%s off it first (mlreg withdraw --rollback rolls each back to "
                                "its previous release)",
                                c->model, c->version, json_array_size(held) == 1 ? "" : "s", names,
                                json_array_size(held) == 1 ? "it" : "them");
    }
    json_decref(held);
    return error;
}

/* The digest of file @p f of a release record when it is well formed and
 * of a kind that goes (@p kept 0) or stays (1), else NULL. */
static const char *file_digest(const json_t *f, int kept)
{
    const char *d = json_string_value(json_object_get(f, "digest"));
    const char *kind = json_string_value(json_object_get(f, "kind"));

    if (d == NULL || strlen(d) != MLREG_DIGEST_STRLEN) return NULL;
    return (kind != NULL && !strcmp(kind, KEPT_KIND)) == kept ? d : NULL;
}

/* Whether c->blobs lists @p digest already (a file twice in a release). */
static int listed(const purge_change *c, const char *digest)
{
    size_t i;

    for (i = 0; i < json_array_size(c->blobs); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(c->blobs, i), "digest")),
                    digest))
            return 1;
    return 0;
}

static int purge_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    purge_change *c = arg;
    const char **keep = NULL, *d;
    size_t nkeep = 0, i;
    mlreg_digest digest;
    json_t *p = NULL, *details = NULL, *f;
    char when[MLREG_TIME_STRLEN];
    uint64_t seq = 0;
    int error;

    change_reset(c);
    error = mlreg_registry__release_record_get(&c->rec, txn, c->model, c->version);
    if (error == MLREG_ENOTFOUND)
        return mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", c->model, c->version);
    if (error < 0 || (error = mlreg_registry__refuse_purged(c->rec)) < 0) return error;
    if (c->who != NULL && (error = purge_authorize(c, txn)) < 0) return error;
    if (mlreg_digest_parse(&digest, json_string_value(json_object_get(c->rec, "digest"))) < 0)
        return mlreg_error_set(MLREG_EIO, "release record %s@%s is corrupt", c->model, c->version);

    keep = calloc(json_array_size(json_object_get(c->rec, "files")) + 1, sizeof(*keep));
    if (keep == NULL || (c->blobs = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory purging a release");
        goto done;
    }
    json_array_foreach(json_object_get(c->rec, "files"), i, f)
    {
        if ((d = file_digest(f, 1)) != NULL) keep[nkeep++] = d + 7;
    }
    if ((error = mlreg_registry__release_unindex(txn, c->model, &digest, keep, nkeep)) < 0)
        goto done;
    /* what nothing references any more goes; what another manifest shares
     * stays */
    json_array_foreach(json_object_get(c->rec, "files"), i, f)
    {
        int referenced;

        if ((d = file_digest(f, 0)) == NULL || listed(c, d)) continue;
        if ((referenced = mlreg_registry__blob_referenced(txn, d + 7)) < 0) {
            error = referenced;
            goto done;
        }
        if (referenced) continue;
        if (json_array_append_new(c->blobs, json_pack("{s:s, s:O, s:O}", "digest", d, "size",
                                                      json_object_get(f, "size"), "title",
                                                      json_object_get(f, "title"))) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory purging a release");
            goto done;
        }
    }

    mlreg_time_format(when, mlreg_registry__mutation_time(mut));
    if ((error = mlreg_registry__mutation_next_seq(&seq, mut)) < 0) goto done;
    p = json_pack("{s:s, s:s, s:s, s:I}", "reason", c->reason, "by", c->actor, "time", when, "seq",
                  (json_int_t)seq);
    details = json_pack("{s:O, s:I}", "blobs", c->blobs, "files",
                        (json_int_t)json_array_size(json_object_get(c->rec, "files")));
    if (p == NULL || details == NULL || json_object_set(c->rec, "purged", p) < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory purging a release");
        goto done;
    }
    error =
        mlreg_promotions__release_change_record(mut, txn, c->actor, c->reason, c->model, c->version,
                                                c->rec, MLREG_AUDIT_RELEASE_PURGE, details);

done:
    free(keep);
    json_decref(p);
    json_decref(details);
    return error;
}

int mlreg_release_purge(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                        const mlreg_identity *who, const char *model, const char *version,
                        const char *reason)
{
    purge_change c = {reg, policy, who, NULL, model, version, reason, NULL, NULL};
    const char **hex = NULL;
    json_t *collected = NULL, *res = NULL, *b;
    size_t i, n;
    uint64_t seq = 0;
    int error;

    if (policy == NULL || who == NULL)
        return mlreg_error_set(MLREG_EINVALID, "a purge needs a policy and an identity");
    c.actor = mlreg_identity_name(who);
    if ((error = mlreg_promotions__check_names(NULL, model, version, NULL)) < 0 ||
        (error = mlreg_promotions__reason_check(reason)) < 0)
        return error;
    if ((error = mlreg_registry__mutate(&seq, mlreg_registry_meta(reg), purge_apply, &c)) < 0)
        goto done;
    n = json_array_size(c.blobs);
    if ((hex = calloc(n + 1, sizeof(*hex))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory purging a release");
        goto done;
    }
    json_array_foreach(c.blobs, i, b) hex[i] = json_string_value(json_object_get(b, "digest")) + 7;
    /* the purge is recorded; a failure here leaves the blobs to the next
     * collection, which finds them unreferenced */
    if ((error = mlreg_registry__gc_collect_now(&collected, reg, hex, n, c.actor)) < 0) goto done;
    res = json_pack("{s:s, s:s, s:O, s:O, s:I, s:O, s:O, s:O, s:O, s:O, s:O}", "model", model,
                    "version", version, "digest", json_object_get(c.rec, "digest"), "purged",
                    json_object_get(c.rec, "purged"), "seq", (json_int_t)seq, "unreferenced",
                    c.blobs, "deleted", json_object_get(collected, "deleted"), "deleted_blobs",
                    json_object_get(collected, "deleted_blobs"), "bytes_reclaimed",
                    json_object_get(collected, "bytes_reclaimed"), "not_deleted",
                    json_object_get(collected, "not_deleted"), "entries",
                    json_object_get(collected, "entries"));
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering a purge");
        goto done;
    }
    if (json_is_true(json_object_get(collected, "deferred")) &&
        json_object_set_new(res, "deferred", json_true()) < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering a purge");
        goto done;
    }
    *out = res;
    res = NULL;

done:
    json_decref(res);
    json_decref(collected);
    free(hex);
    change_reset(&c);
    return error;
}

int mlreg_registry__replay_purge(mlreg_registry *reg, const json_t *entry, const char *text,
                                 size_t len)
{
    const json_t *subject = json_object_get(entry, "subject");
    purge_change c = {reg,
                      NULL,
                      NULL,
                      json_string_value(json_object_get(entry, "actor")),
                      json_string_value(json_object_get(subject, "model")),
                      json_string_value(json_object_get(subject, "version")),
                      json_string_value(json_object_get(entry, "reason")),
                      NULL,
                      NULL};
    int error;

    if (c.model == NULL || c.version == NULL || c.reason == NULL || c.actor == NULL)
        return mlreg_error_set(MLREG_EINVALID, "release.purge entry lacks its release or reason");
    error =
        mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len, purge_apply, &c);
    change_reset(&c);
    return error;
}
