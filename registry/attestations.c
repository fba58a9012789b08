/* attestations.c: the signed in-toto statement of every stage move, its
 * DSSE envelope, its OCI referrer and its record (include/mlreg/promotions.h;
 * docs/audit-api.md), and the audit entry of promotions and rollbacks.
 *
 * A move (passed promote, rollback) signs its statement inside its write
 * transaction: the statement names the seq its own audit entry will get,
 * which is only known inside the writer (mlreg_registry__mutation_next_seq), so
 * the envelope is built, signed and written to the blob store while the
 * transaction is open. That is the one piece of blob-store I/O inside a
 * write transaction here; the blob is committed before the transaction, so
 * a crash leaves at worst an unreferenced blob, never a referrer without
 * its envelope. In a shared commit (mutate.c) the envelopes of the batch
 * are written in parallel after every change was applied and before the
 * one commit; the referrer's plan therefore does not look for the envelope
 * in the store (mlreg_registry__manifest_plan_new_made). The empty config
 * is the same two bytes every time: mlreg_registry__blob_put() does not
 * write it again once this process made it durable.
 */
#include "mlreg/promotions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/bytes.h"
#include "mlreg/canonical_json.h"
#include "mlreg/common.h"
#include "mlreg/dsse.h"
#include "mlreg/keyring.h"
#include "mlreg/oci.h"
#include "mlreg/sign.h"
#include "mlreg/tables.h"
#include "promotions_internal.h"
#include "registry_internal.h"

/* attestations key: release digest hex ‖ be64 seq */
/* Longest envelope replayed from the blob store: its statement holds what
 * an entry holds (at most MLREG_AUDIT_ENTRY_MAX), base64-encoded. */
#define ENVELOPE_MAX ((size_t)4 * MLREG_AUDIT_ENTRY_MAX)

#define ATT_KEY_LEN (MLREG_DIGEST_HEXLEN + 8)

static void att_key(char key[ATT_KEY_LEN], const char *hex, uint64_t seq)
{
    memcpy(key, hex, MLREG_DIGEST_HEXLEN);
    mlreg_be64_put(key + MLREG_DIGEST_HEXLEN, seq);
}

int mlreg_registry__attestations_foreach(mlreg_meta_txn *txn, const char *hex,
                                         mlreg_meta_iter_cb cb, void *payload)
{
    return mlreg_meta_iter(txn, MLREG_DB_ATTESTATIONS, hex, MLREG_DIGEST_HEXLEN, NULL, 0, cb,
                           payload);
}

int mlreg_registry__attestation_exists(mlreg_meta_txn *txn, const char *hex, uint64_t seq)
{
    char key[ATT_KEY_LEN];
    void *val = NULL;
    size_t vlen;
    int error;

    att_key(key, hex, seq);
    error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_ATTESTATIONS, key, sizeof(key));
    free(val);
    if (error == MLREG_ENOTFOUND) {
        mlreg_error_clear();
        return 0;
    }
    return error < 0 ? error : 1;
}

/* {"version","digest"} of a release record, or JSON null (new reference). */
json_t *mlreg_promotions__version_digest(const json_t *rec)
{
    if (rec == NULL) return json_null();
    return json_pack("{s:O, s:O}", "version", json_object_get(rec, "version"), "digest",
                     json_object_get(rec, "digest"));
}

/* Appends the audit entry of @p pe; *seq_out its seq. */
int mlreg_promotions__audit(uint64_t *seq_out, registry_mutation *mut, const promo_event *pe)
{
    mlreg_audit_event ev;
    json_t *details;
    int error, rollback = !strcmp(pe->action, MLREG_AUDIT_ROLLBACK);

    if (rollback)
        details = json_pack("{s:o}", "previous", mlreg_promotions__version_digest(pe->base));
    else
        details = json_pack("{s:s?, s:o}", "from_stage", pe->from_stage, "baseline",
                            mlreg_promotions__version_digest(pe->base));
    /* what a replay needs besides: the envelope blob of a move, and the
     * caller's reason of a refusal (the entry's reason says why refused) */
    if (details != NULL &&
        ((pe->envelope != NULL &&
          json_object_set_new(details, "envelope", json_string(pe->envelope)) < 0) ||
         (pe->request_reason != NULL &&
          json_object_set_new(details, "request_reason", json_string(pe->request_reason)) < 0) ||
         /* break-glass: flagged in the entry itself, where every reader of
          * the log (audit log --overrides, bundles, replay) finds it */
         (pe->override &&
          (json_object_set_new(details, "override", json_true()) < 0 ||
           json_object_set(details, "override_approvers", (json_t *)pe->override_approvers) < 0)) ||
         (pe->override_requested &&
          json_object_set_new(details, "override_requested", json_true()) < 0) ||
         (pe->held && json_object_set_new(details, "held", json_true()) < 0))) {
        json_decref(details);
        details = NULL;
    }
    if (details == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a promotion");
    ev = (mlreg_audit_event){.time_ns = pe->now,
                             .actor = pe->actor,
                             .action = pe->action,
                             .result = pe->result,
                             .reason = pe->reason,
                             .model = pe->model,
                             .version = jstr(pe->cand, "version"),
                             .digest = jstr(pe->cand, "digest"),
                             .stage = pe->stage,
                             .approvers = pe->approvers,
                             .gates = pe->gates,
                             .details = details};
    error = mlreg_registry__mutation_record(seq_out, mut, &ev);
    json_decref(details);
    return error;
}

/* The in-toto statement of docs/audit-api.md for @p pe, naming audit entry
 * @p seq (new reference; reals already made strings). */
static json_t *promotion_statement(const promo_event *pe, uint64_t seq, const char *origin)
{
    char name[PROMOTIONS_KEY_CAP], when[MLREG_TIME_STRLEN];
    const char *digest = jstr(pe->cand, "digest");
    json_t *st, *plain;

    snprintf(name, sizeof(name), "%s@%s", pe->model, jstr(pe->cand, "version"));
    mlreg_time_format(when, pe->now);
    st = json_pack("{s:s, s:s, s:[{s:s, s:{s:s}}], s:{s:s, s:s, s:O, s:s, s:s?, s:o, s:o, s:o, "
                   "s:s, s:s, s:{s:s, s:I}}}",
                   "_type", MLREG_INTOTO_STATEMENT_TYPE, "predicateType", MLREG_PROMOTION_PREDICATE,
                   "subject", "name", name, "digest", "sha256", digest + 7, "predicate", "action",
                   pe->action, "model", pe->model, "version", json_object_get(pe->cand, "version"),
                   "stage", pe->stage, "from_stage", pe->from_stage, "baseline",
                   mlreg_promotions__version_digest(pe->base), "gates",
                   pe->gates ? json_incref((json_t *)pe->gates) : json_array(), "approvers",
                   pe->approvers ? json_incref((json_t *)pe->approvers) : json_array(), "actor",
                   pe->actor, "time", when, "audit", "origin", origin, "seq", (json_int_t)seq);
    /* a break-glass move says so in what it signs: the failing rows are in
     * "gates", the reason and the approvers of the override here */
    if (st != NULL && pe->override &&
        json_object_set_new(json_object_get(st, "predicate"), "override",
                            json_pack("{s:b, s:s?, s:O}", "overridden", 1, "reason", pe->reason,
                                      "approvers", pe->override_approvers)) < 0) {
        json_decref(st);
        return NULL;
    }
    if (st == NULL) return NULL;
    plain = mlreg_audit_json_no_reals(st);
    json_decref(st);
    return plain;
}

/* The OCI referrer manifest of an attestation: deterministic bytes. */
static char *attestation_manifest(const mlreg_manifest_data *release, const mlreg_digest *blob,
                                  size_t blob_len, uint64_t seq, const char *stage)
{
    char d[MLREG_DIGEST_STRLEN + 1], rd[MLREG_DIGEST_STRLEN + 1], seqs[24],
        title[PROMOTIONS_KEY_CAP];
    json_t *j;
    char *text;

    mlreg_digest_format(d, blob);
    mlreg_digest_format(rd, &release->digest);
    snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
    snprintf(title, sizeof(title), "%s-%s.dsse.json", seqs, stage);
    j = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:I, s:{s:s}}], "
                  "s:{s:s, s:s, s:I}, s:{s:s, s:s}}",
                  "schemaVersion", 2, "mediaType", MLREG_MT_OCI_MANIFEST, "artifactType",
                  MLREG_ARTIFACT_ATTESTATION, "config", "mediaType", MLREG_MT_OCI_EMPTY, "digest",
                  MLREG_EMPTY_CONFIG_DIGEST, "size", 2, "layers", "mediaType",
                  MLREG_MT_DSSE_ENVELOPE, "digest", d, "size", (json_int_t)blob_len, "annotations",
                  MLREG_ANN_TITLE, title, "subject", "mediaType", release->content_type, "digest",
                  rd, "size", (json_int_t)release->len, "annotations", MLREG_ANN_AUDIT_SEQ, seqs,
                  MLREG_ANN_STAGE, stage);
    if (j == NULL) return NULL;
    text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return text;
}

/*
 * Records a move inside @p txn: signs the statement naming the seq the
 * move's audit entry is about to get, writes the envelope (and the empty
 * config) to the blob store, stores the referrer manifest with its index
 * entry and blob links and the attestations record, then appends the audit
 * entry and checks it got that seq. The caller moves the pointer and
 * commits; if anything here fails it aborts and nothing of the move stays.
 */
int mlreg_promotions__record_move(mlreg_registry *reg, registry_mutation *mut, mlreg_meta_txn *txn,
                                  const promo_event *pe)
{
    int error = 0;
    mlreg_audit_key *key = mlreg_registry_audit_key(reg);
    uint64_t seq = 0, got = 0;
    json_t *st = NULL, *rec = NULL;
    char *payload = NULL, *env = NULL, *manifest = NULL, *rectext = NULL;
    size_t plen;
    mlreg_digest blob, empty, rd;
    mlreg_manifest_data *release = NULL;
    registry_manifest_plan *plan = NULL;
    mlreg_manifest_put_result put;
    char hex[MLREG_DIGEST_HEXLEN + 1], k[ATT_KEY_LEN], envd[MLREG_DIGEST_STRLEN + 1];
    const json_t *source = mlreg_registry__mutation_source(mut);
    size_t elen = 0;
    promo_event done_pe = *pe;

    if ((error = mlreg_promotions__record_hex(hex, pe->cand)) < 0) goto done;
    if (mlreg_digest_parse(&rd, jstr(pe->cand, "digest")) < 0) {
        error = mlreg_error_set(MLREG_EIO, "release record has a corrupt digest");
        goto done;
    }
    if ((error = mlreg_registry__mutation_next_seq(&seq, mut)) < 0) goto done;
    if (source != NULL) {
        /* a replay: the statement was signed (by the log key of its time)
         * and stored when the move happened */
        const char *ed =
            json_string_value(json_object_get(json_object_get(source, "details"), "envelope"));
        if (ed == NULL || mlreg_digest_parse(&blob, ed) < 0) {
            error = mlreg_error_set(MLREG_EINVALID, "audit entry of the %s names no envelope",
                                    pe->action);
            goto done;
        }
        if ((error = mlreg_registry__blob_get(&env, &elen, reg, &blob, ENVELOPE_MAX)) < 0)
            goto done;
    } else {
        if ((st = promotion_statement(pe, seq, mlreg_audit_key_origin(key))) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory building a promotion statement");
            goto done;
        }
        if ((error = mlreg_canonical_json(&payload, &plen, st)) < 0) goto done;
        if ((error = mlreg_dsse_sign(&env, MLREG_DSSE_INTOTO_TYPE, payload, plen,
                                     mlreg_audit_key_seckey(key))) < 0)
            goto done;
        /* the envelope is durable before any metadata naming it commits:
         * at once, or with the other changes of a shared commit (mutate.c) */
        if ((error = mlreg_registry__mutation_blob_put(&blob, mut, reg, env, strlen(env))) < 0)
            goto done;
    }
    mlreg_digest_format(envd, &blob);
    done_pe.envelope = envd;
    if ((error = mlreg_registry__blob_put(&empty, reg, MLREG_EMPTY_CONFIG,
                                          strlen(MLREG_EMPTY_CONFIG))) < 0)
        goto done;
    if ((error = mlreg_registry__manifest_load_txn(&release, txn, pe->model, &rd)) < 0) goto done;
    if ((manifest = attestation_manifest(release, &blob, strlen(env), seq, pe->stage)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building an attestation referrer");
        goto done;
    }
    if ((error = mlreg_registry__manifest_plan_new_made(
             &plan, reg, pe->model, MLREG_MT_OCI_MANIFEST, manifest, strlen(manifest))) < 0)
        goto done;
    if ((error = mlreg_registry__blob_link_txn(mut, txn, reg, pe->model, &blob)) < 0 ||
        (error = mlreg_registry__blob_link_txn(mut, txn, reg, pe->model, &empty)) < 0 ||
        (error = mlreg_registry__manifest_plan_put(&put, mut, txn, plan)) < 0)
        goto done;

    rec = json_pack("{s:I, s:s, s:s, s:s}", "seq", (json_int_t)seq, "stage", pe->stage, "action",
                    pe->action, "envelope", env);
    if (rec == NULL || (rectext = json_dumps(rec, JSON_COMPACT)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording an attestation");
        goto done;
    }
    att_key(k, hex, seq);
    if ((error = mlreg_meta_put(txn, MLREG_DB_ATTESTATIONS, k, sizeof(k), rectext, strlen(rectext),
                                1)) < 0)
        goto done;
    if ((error = mlreg_promotions__audit(&got, mut, &done_pe)) < 0) goto done;
    if (got != seq)
        error = mlreg_error_set(MLREG_EIO,
                                "audit entry of the %s got seq %llu, but its statement names %llu",
                                pe->action, (unsigned long long)got, (unsigned long long)seq);

done:
    mlreg_registry__manifest_plan_free(plan);
    mlreg_manifest_data_free(release);
    json_decref(st);
    json_decref(rec);
    free(payload);
    free(env);
    free(manifest);
    free(rectext);
    return error;
}

/* ---- attestations ------------------------------------------------------------------- */

static int attestation_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    json_t *list = payload, *rec = json_loadb(val, vlen, 0, NULL), *env = NULL, *item;
    const char *text = jstr(rec, "envelope");

    (void)key;
    if (klen != ATT_KEY_LEN || text == NULL ||
        (env = json_loads(text, JSON_REJECT_DUPLICATES, NULL)) == NULL) {
        json_decref(rec);
        return mlreg_error_set(MLREG_EIO, "attestation record is corrupt");
    }
    item = json_pack("{s:O, s:O, s:O, s:o}", "seq", json_object_get(rec, "seq"), "stage",
                     json_object_get(rec, "stage"), "action", json_object_get(rec, "action"),
                     "envelope", env);
    json_decref(rec);
    if (item == NULL || json_array_append_new(list, item) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing attestations");
    return 0;
}

int mlreg_attestations_list(json_t **out, mlreg_registry *reg, const char *model,
                            const char *version)
{
    int error;
    mlreg_meta_txn *txn = NULL;
    char hex[MLREG_DIGEST_HEXLEN + 1];
    json_t *list = NULL;

    if ((error = mlreg_promotions__release_hex_read(hex, &txn, reg, model, version)) < 0) goto done;
    if ((list = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing attestations");
        goto done;
    }
    /* keys are hex ‖ be64 seq: the walk is in seq order, oldest first */
    if ((error = mlreg_registry__attestations_foreach(txn, hex, attestation_cb, list)) < 0)
        goto done;
    error = 0;
    if ((*out = json_pack("{s:O}", "attestations", list)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing attestations");

done:
    mlreg_meta_txn_abort(txn);
    json_decref(list);
    return error;
}
