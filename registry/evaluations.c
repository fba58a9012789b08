/* evaluations.c: independent evaluations of releases (include/mlreg/evaluations.h,
 * registry/evaluations_internal.h, docs/evaluations.md).
 *
 * An attach checks everything before writing, as a signature attach does
 * (signatures.c): the envelope's form, the one signature's key id in the
 * keyring, the DSSE signature with that key, the in-toto statement, its
 * subject against the release's manifest digest, and the report with the
 * parser the push runs (mlreg_eval_report_parse). Then the envelope's bytes,
 * exactly as sent, are committed to the blob store (durable before any
 * metadata names them), and one change writes the blob links, the OCI
 * referrer manifest with its index entry, the evaluation record and the
 * "evaluation.attest" audit entry. The record's key ends with the entry's
 * seq, so a walk over a release is oldest first.
 *
 * Any key of the keyring may attest; the record keeps its role and whether
 * it was valid then. Whether an evaluation counts for the gates is judged
 * when they ask (mlreg_registry__evaluation_newest), against the keyring of
 * that moment: a key revoked as compromised stops counting at once, one
 * retired keeps the evaluations attached before. The signature is the
 * boundary, not the token: anyone with push on the model may send an
 * envelope, but only a signature by an evaluator key makes numbers a gate
 * reads.
 *
 * A replay takes the key and its standing at attach time from the entry
 * (details.public_key, trusted_at_attach, role, key_name) rather than from
 * the keyring, and re-verifies the envelope from the blob store.
 *
 * The referrer manifest is built from the envelope alone (no time, sorted
 * keys), so the same envelope sent twice is the same referrer; the second
 * send writes nothing and answers the stored evaluation.
 */
#include "mlreg/evaluations.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluations_internal.h"
#include "mlreg/audit.h"
#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/dsse.h"
#include "mlreg/keyring.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/sign.h"
#include "mlreg/tables.h"
#include "mlreg/time.h"
#include "registry_internal.h"

/* evaluations key: release digest hex ‖ be64 audit seq */
#define EVAL_KEY_LEN (MLREG_DIGEST_HEXLEN + 8)

static void eval_key(char key[EVAL_KEY_LEN], const char *hex, uint64_t seq)
{
    memcpy(key, hex, MLREG_DIGEST_HEXLEN);
    mlreg_be64_put(key + MLREG_DIGEST_HEXLEN, seq);
}

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* 1 when @p s is "sha256:" and 64 lowercase hex digits. */
static int is_digest_string(const char *s)
{
    mlreg_digest d;
    char canon[MLREG_DIGEST_STRLEN + 1];

    if (s == NULL || mlreg_digest_parse(&d, s) < 0) {
        mlreg_error_clear();
        return 0;
    }
    mlreg_digest_format(canon, &d);
    return strcmp(canon, s) == 0;
}

/* ---- the statement -------------------------------------------------------------- */

int mlreg_evaluation_statement(char **out, size_t *len_out, const char *model, const char *version,
                               const char *digest, const char *report, size_t report_len,
                               int64_t evaluated_ns)
{
    int error = 0;
    mlreg_eval_report *r = NULL;
    json_t *rep = NULL, *st = NULL, *pred;
    json_error_t jerr;
    char name[600], when[MLREG_TIME_STRLEN];
    char *text = NULL;

    if ((error = mlreg_eval_report_parse(&r, report, report_len)) < 0) goto done;
    if (!is_digest_string(digest)) {
        error = mlreg_error_set(MLREG_EINVALID, "release digest '%.80s' is malformed", digest);
        goto done;
    }
    /* numbers as the parser reads them: an integer too large for int64 is
     * still a metric */
    rep = json_loadb(report, report_len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (rep == NULL) {
        error = mlreg_error_set(MLREG_EINVALID, "eval report is not valid JSON: %s", jerr.text);
        goto done;
    }
    snprintf(name, sizeof(name), "%s@%s", model, version);
    mlreg_time_format(when, evaluated_ns);
    st = json_pack("{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:O, s:s}}", "_type",
                   MLREG_INTOTO_STATEMENT_TYPE, "subject", "name", name, "digest", "sha256",
                   digest + 7, "predicateType", MLREG_EVALUATION_PREDICATE, "predicate", "report",
                   rep, "evaluated_at", when);
    pred = json_object_get(st, "predicate");
    if (st == NULL ||
        (r->dataset_digest != NULL &&
         json_object_set_new(pred, "dataset_digest", json_string(r->dataset_digest)) < 0) ||
        (r->eval_code_digest != NULL &&
         json_object_set_new(pred, "eval_code_digest", json_string(r->eval_code_digest)) < 0) ||
        (text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building an evaluation statement");
        goto done;
    }
    *len_out = strlen(text);
    *out = text;
    text = NULL;

done:
    free(text);
    json_decref(st);
    json_decref(rep);
    mlreg_eval_report_free(r);
    return error;
}

/* ---- checking an envelope ------------------------------------------------------- */

/* What an attach checked and what it keeps for the write. */
typedef struct {
    const char *model;
    const char *version;
    mlreg_pubkey pk;
    char idhex[MLREG_KEYID_HEXLEN + 1];
    char hex[MLREG_DIGEST_HEXLEN + 1];
    char digest[MLREG_DIGEST_STRLEN + 1];
    mlreg_manifest_data *release;
    json_t *statement;
    mlreg_eval_report *report;
    const char *evaluated_at;     /* points into statement */
    const char *dataset_digest;   /* into statement or report, or NULL */
    const char *eval_code_digest; /* likewise */
} eval_ctx;

static void eval_ctx_clear(eval_ctx *a)
{
    mlreg_manifest_data_free(a->release);
    json_decref(a->statement);
    mlreg_eval_report_free(a->report);
    memset(a, 0, sizeof(*a));
}

/* The key id of the envelope's one signature into *out. */
static int envelope_keyid(mlreg_keyid *out, char idhex[MLREG_KEYID_HEXLEN + 1],
                          const char *envelope, size_t len)
{
    json_t *env = json_loadb(envelope, len, JSON_REJECT_DUPLICATES, NULL), *sigs;
    const char *kid;
    int error = 0;

    sigs = json_object_get(env, "signatures");
    if (!json_is_object(env)) {
        error = mlreg_error_set(MLREG_EINVALID, "malformed dsse envelope: not a JSON object");
        goto done;
    }
    if (!json_is_array(sigs) || json_array_size(sigs) != 1) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "malformed dsse envelope: an evaluation carries exactly one "
                                "signature (\"signatures\" must be an array of one)");
        goto done;
    }
    kid = jstr(json_array_get(sigs, 0), "keyid");
    if (kid == NULL || strlen(kid) != MLREG_KEYID_HEXLEN ||
        mlreg_keyid_parse(out, kid, MLREG_KEYID_HEXLEN) < 0) {
        mlreg_error_clear();
        error = mlreg_error_set(MLREG_EINVALID,
                                "malformed dsse envelope: the signature's \"keyid\" must be the "
                                "signing key's id (16 hex digits)");
        goto done;
    }
    mlreg_keyid_format(idhex, out);

done:
    json_decref(env);
    return error;
}

/* The predicate's digest @p field: a well-formed digest equal to the
 * report's when both name one. *out the one in force, or NULL. */
static int predicate_digest(const char **out, const json_t *pred, const char *field,
                            const char *from_report)
{
    const json_t *v = json_object_get(pred, field);
    const char *s = json_string_value(v);

    *out = from_report;
    if (v == NULL || json_is_null(v)) return 0;
    if (s == NULL || strlen(s) != json_string_length(v) || !is_digest_string(s))
        return mlreg_error_set(MLREG_EINVALID,
                               "evaluation statement: predicate.%s must be \"sha256:<64 lowercase "
                               "hex>\"",
                               field);
    if (from_report != NULL && strcmp(s, from_report) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "evaluation statement: predicate.%s (%s) differs from the report's "
                               "(%s)",
                               field, s, from_report);
    *out = s;
    return 0;
}

/* Checks the statement in @p len bytes of @p payload against release
 * @p a->digest of a->model@a->version. */
static int statement_check(eval_ctx *a, const unsigned char *payload, size_t len)
{
    json_t *st, *subj, *pred, *rep;
    json_error_t jerr;
    const char *sha, *name;
    char want[600], *text = NULL;
    int64_t sec;
    int32_t nsec;
    int error = 0;

    st = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL,
                    &jerr);
    if (st == NULL || !json_is_object(st)) {
        json_decref(st);
        return mlreg_error_set(MLREG_EINVALID, "evaluation statement is not a JSON object");
    }
    a->statement = st;
    if (jstr(st, "_type") == NULL || strcmp(jstr(st, "_type"), MLREG_INTOTO_STATEMENT_TYPE) != 0)
        return mlreg_error_set(MLREG_EINVALID, "evaluation statement: _type must be \"%s\"",
                               MLREG_INTOTO_STATEMENT_TYPE);
    if (jstr(st, "predicateType") == NULL ||
        strcmp(jstr(st, "predicateType"), MLREG_EVALUATION_PREDICATE) != 0)
        return mlreg_error_set(
            MLREG_EINVALID, "evaluation statement: predicateType must be \"%s\", not \"%.100s\"",
            MLREG_EVALUATION_PREDICATE, jstr(st, "predicateType") ? jstr(st, "predicateType") : "");
    subj = json_object_get(st, "subject");
    if (!json_is_array(subj) || json_array_size(subj) != 1)
        return mlreg_error_set(MLREG_EINVALID,
                               "evaluation statement: subject must name exactly one release");
    subj = json_array_get(subj, 0);
    sha = jstr(json_object_get(subj, "digest"), "sha256");
    name = jstr(subj, "name");
    if (sha == NULL || name == NULL)
        return mlreg_error_set(MLREG_EINVALID,
                               "evaluation statement: the subject needs a name and a sha256 "
                               "digest");
    if (strcmp(sha, a->hex) != 0)
        return mlreg_error_set(MLREG_EMISMATCH,
                               "evaluation statement is about sha256:%.64s, not release %s@%s (%s)",
                               sha, a->model, a->version, a->digest);
    snprintf(want, sizeof(want), "%s@%s", a->model, a->version);
    if (strcmp(name, want) != 0)
        return mlreg_error_set(MLREG_EMISMATCH,
                               "evaluation statement names subject '%.300s', not '%s'", name, want);
    pred = json_object_get(st, "predicate");
    rep = json_object_get(pred, "report");
    if (!json_is_object(rep))
        return mlreg_error_set(MLREG_EINVALID,
                               "evaluation statement: predicate.report must be the eval report "
                               "(a JSON object)");
    if ((text = json_dumps(rep, JSON_COMPACT)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory reading an evaluation");
    error = mlreg_eval_report_parse(&a->report, text, strlen(text));
    free(text);
    if (error < 0) return error;
    a->evaluated_at = jstr(pred, "evaluated_at");
    if (a->evaluated_at == NULL || mlreg_time_parse(&sec, &nsec, a->evaluated_at) < 0) {
        mlreg_error_clear();
        return mlreg_error_set(MLREG_EINVALID,
                               "evaluation statement: predicate.evaluated_at must be an RFC 3339 "
                               "time");
    }
    if ((error = predicate_digest(&a->dataset_digest, pred, "dataset_digest",
                                  a->report->dataset_digest)) < 0 ||
        (error = predicate_digest(&a->eval_code_digest, pred, "eval_code_digest",
                                  a->report->eval_code_digest)) < 0)
        return error;
    return 0;
}

/*
 * Everything an attach checks before writing. @p pk_b64 is the key a
 * replayed entry names (NULL live: the keyring's key for the envelope's key
 * id, which must be there).
 */
static int eval_check(eval_ctx *a, mlreg_registry *reg, const char *model, const char *version,
                      const char *envelope, size_t len, const char *pk_b64)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    mlreg_keyid id;
    mlreg_keyring_key kk;
    mlreg_digest rd;
    char *ptype = NULL;
    unsigned char *payload = NULL;
    size_t plen = 0;

    a->model = model;
    a->version = version;
    if ((error = mlreg_name_validate(model)) < 0 || (error = mlreg_tag_validate(version)) < 0)
        goto done;
    if (len == 0) {
        error = mlreg_error_set(MLREG_EINVALID, "malformed dsse envelope: empty");
        goto done;
    }
    if (len > MLREG_EVALUATION_MAX_BYTES) {
        error = mlreg_error_set(MLREG_ETOOBIG, "evaluation envelope is %zu bytes, at most %u", len,
                                MLREG_EVALUATION_MAX_BYTES);
        goto done;
    }
    if ((error = envelope_keyid(&id, a->idhex, envelope, len)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if (pk_b64 != NULL) {
        if ((error = mlreg_pubkey_parse(&a->pk, pk_b64, strlen(pk_b64))) < 0) goto done;
        if (!mlreg_keyid_equal(&a->pk.id, &id)) {
            error = mlreg_error_set(MLREG_EINVALID, "the entry's key is not the envelope's key %s",
                                    a->idhex);
            goto done;
        }
    } else {
        error = mlreg_keyring_find(&kk, mlreg_registry_keyring(reg), txn, &id);
        if (error == MLREG_ENOTFOUND) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "evaluation signed by key %s, which is not in the registry's "
                                    "keyring (mlreg key trust NAME KEYFILE --role evaluator)",
                                    a->idhex);
            goto done;
        }
        if (error < 0) goto done;
        a->pk = kk.pubkey;
    }
    if ((error = mlreg_dsse_verify(&ptype, &payload, &plen, envelope, len, &a->pk)) < 0) {
        if (error == MLREG_EMISMATCH)
            error = mlreg_error_set(
                MLREG_EMISMATCH, "evaluation envelope has no valid signature by key %s", a->idhex);
        goto done;
    }
    if (strcmp(ptype, MLREG_DSSE_INTOTO_TYPE) != 0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "evaluation envelope: payloadType must be \"%s\", not \"%.100s\"",
                                MLREG_DSSE_INTOTO_TYPE, ptype);
        goto done;
    }
    /* a purged release takes nothing; a withdrawn one keeps taking
     * evidence (it cannot be promoted while withdrawn anyway) */
    error = mlreg_registry__release_digest_txn(&rd, txn, model, version, 0);
    if (error == MLREG_ENOTFOUND)
        error = mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", model, version);
    if (error < 0) goto done;
    mlreg_digest_hex(a->hex, &rd);
    mlreg_digest_format(a->digest, &rd);
    if ((error = mlreg_registry__manifest_load_txn(&a->release, txn, model, &rd)) < 0) goto done;
    error = statement_check(a, payload, plen);

done:
    mlreg_meta_txn_abort(txn);
    free(ptype);
    free(payload);
    return error;
}

/* The OCI referrer manifest of an evaluation: deterministic bytes. */
static char *referrer_manifest(const eval_ctx *a, const mlreg_digest *blob, size_t blob_len)
{
    char d[MLREG_DIGEST_STRLEN + 1], bhex[MLREG_DIGEST_HEXLEN + 1], title[64];
    json_t *j;
    char *text;

    mlreg_digest_format(d, blob);
    mlreg_digest_hex(bhex, blob);
    snprintf(title, sizeof(title), "%s-%.12s.dsse.json", a->idhex, bhex);
    j = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:I, s:{s:s}}], "
                  "s:{s:s, s:s, s:I}, s:{s:s, s:s}}",
                  "schemaVersion", 2, "mediaType", MLREG_MT_OCI_MANIFEST, "artifactType",
                  MLREG_ARTIFACT_EVALUATION, "config", "mediaType", MLREG_MT_OCI_EMPTY, "digest",
                  MLREG_EMPTY_CONFIG_DIGEST, "size", 2, "layers", "mediaType",
                  MLREG_MT_DSSE_ENVELOPE, "digest", d, "size", (json_int_t)blob_len, "annotations",
                  MLREG_ANN_TITLE, title, "subject", "mediaType", a->release->content_type,
                  "digest", a->digest, "size", (json_int_t)a->release->len, "annotations",
                  MLREG_ANN_EVALUATION_KEY_ID, a->idhex, "org.mlreg.evaluation.predicate-type",
                  MLREG_EVALUATION_PREDICATE);
    if (j == NULL) return NULL;
    text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return text;
}

/* ---- the change ----------------------------------------------------------------- */

typedef struct {
    mlreg_registry *reg;
    const eval_ctx *a;
    const char *actor;
    const mlreg_digest *blob;
    const mlreg_digest *empty;
    const registry_manifest_plan *plan;
    json_t *rec; /* out: the record stored, or the one found */
} eval_change;

typedef struct {
    const char *envelope; /* "sha256:..." looked for */
    json_t *found;
} find_walk;

static int find_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    find_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);

    (void)key;
    if (klen != EVAL_KEY_LEN || rec == NULL) {
        json_decref(rec);
        return mlreg_error_set(MLREG_EIO, "evaluation record is corrupt");
    }
    if (jstr(rec, "envelope") != NULL && !strcmp(jstr(rec, "envelope"), w->envelope)) {
        w->found = rec;
        return 1;
    }
    json_decref(rec);
    return 0;
}

/* The stored evaluation of release @p hex made of envelope @p env, or NULL. */
static int find_envelope(json_t **out, mlreg_meta_txn *txn, const char *hex, const char *env)
{
    find_walk w = {env, NULL};
    int error =
        mlreg_meta_iter(txn, MLREG_DB_EVALUATIONS, hex, MLREG_DIGEST_HEXLEN, NULL, 0, find_cb, &w);

    *out = w.found;
    return error < 0 ? error : 0;
}

static int eval_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    eval_change *c = arg;
    const eval_ctx *a = c->a;
    const json_t *source = mlreg_registry__mutation_source(mut);
    int error = 0, trusted = 0;
    uint64_t seq = 0, got = 0;
    int64_t now = mlreg_registry__mutation_time(mut);
    mlreg_keyring_key kk;
    const char *role = NULL, *key_name = NULL;
    json_t *details = NULL;
    char *rectext = NULL;
    mlreg_manifest_put_result put;
    mlreg_audit_event ev;
    char envd[MLREG_DIGEST_STRLEN + 1], referrer[MLREG_DIGEST_STRLEN + 1], k[EVAL_KEY_LEN];
    char t[MLREG_TIME_STRLEN], b64[MLREG_PUBKEY_B64LEN + 1];

    /* a change run again starts from its inputs */
    json_decref(c->rec);
    c->rec = NULL;
    mlreg_digest_format(envd, c->blob);
    if ((error = find_envelope(&c->rec, txn, a->hex, envd)) < 0) return error;
    if (c->rec != NULL) return REGISTRY_MUTATE_NOOP;
    if (source != NULL) {
        /* the key's standing then is recorded, not judged again */
        const json_t *d = json_object_get(source, "details");

        trusted = json_is_true(json_object_get(d, "trusted_at_attach"));
        role = jstr(d, "role");
        key_name = jstr(d, "key_name");
    } else {
        error = mlreg_keyring_find(&kk, mlreg_registry_keyring(c->reg), txn, &a->pk.id);
        if (error == MLREG_ENOTFOUND || (error == 0 && !mlreg_pubkey_equal(&kk.pubkey, &a->pk)))
            return mlreg_error_set(MLREG_EINVALID,
                                   "evaluation signed by key %s, which is not in the registry's "
                                   "keyring",
                                   a->idhex);
        if (error < 0) return error;
        trusted = kk.state == MLREG_KEY_ACTIVE;
        role = kk.role;
        key_name = kk.name;
    }
    if ((error = mlreg_registry__mutation_next_seq(&seq, mut)) < 0) return error;
    if ((error = mlreg_registry__blob_link_txn(mut, txn, c->reg, a->model, c->blob)) < 0 ||
        (error = mlreg_registry__blob_link_txn(mut, txn, c->reg, a->model, c->empty)) < 0 ||
        (error = mlreg_registry__manifest_plan_put(&put, mut, txn, c->plan)) < 0)
        goto done;
    mlreg_digest_format(referrer, &put.digest);
    mlreg_time_format(t, now);
    mlreg_pubkey_base64(b64, &a->pk);
    c->rec = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:b, s:b, s:s, s:I, s:s, s:s, s:s?, s:s?, "
        "s:s?, s:O, s:s, s:s}",
        "seq", (json_int_t)seq, "model", a->model, "version", a->version, "digest", a->digest,
        "key_id", a->idhex, "public_key", b64, "key_name", key_name, "role", role,
        "trusted_at_attach", trusted, "evaluator_at_attach",
        trusted && role != NULL && !strcmp(role, MLREG_KEY_ROLE_EVALUATOR), "attached_at", t,
        "attached_ns", (json_int_t)now, "attached_by", c->actor, "evaluated_at", a->evaluated_at,
        "dataset", a->report->dataset, "dataset_digest", a->dataset_digest, "eval_code_digest",
        a->eval_code_digest, "metrics", a->report->metrics, "envelope", envd, "referrer", referrer);
    /* the intervals as a pushed release keeps them, only when there are
     * some ("bound" rules read them; records without stay as they were) */
    if (c->rec != NULL && json_object_size(a->report->intervals) > 0 &&
        json_object_set(c->rec, "metric_intervals", a->report->intervals) < 0) {
        json_decref(c->rec);
        c->rec = NULL;
    }
    details = json_pack("{s:s, s:s, s:b, s:s?, s:s?}", "public_key", b64, "envelope", envd,
                        "trusted_at_attach", trusted, "role", role, "key_name", key_name);
    if (c->rec == NULL || details == NULL || (rectext = json_dumps(c->rec, JSON_COMPACT)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording an evaluation");
        goto done;
    }
    eval_key(k, a->hex, seq);
    if ((error = mlreg_meta_put(txn, MLREG_DB_EVALUATIONS, k, sizeof(k), rectext, strlen(rectext),
                                1)) < 0)
        goto done;
    ev = (mlreg_audit_event){.actor = c->actor,
                             .action = MLREG_AUDIT_EVALUATION_ATTEST,
                             .result = MLREG_AUDIT_OK,
                             .model = a->model,
                             .version = a->version,
                             .digest = a->digest,
                             .key_id = a->idhex,
                             .details = details};
    if ((error = mlreg_registry__mutation_record(&got, mut, &ev)) < 0) goto done;
    if (got != seq)
        error = mlreg_error_set(MLREG_EIO, "evaluation entry got seq %llu, its record names %llu",
                                (unsigned long long)got, (unsigned long long)seq);

done:
    json_decref(details);
    free(rectext);
    return error;
}

/* Prepares the change of @p a for envelope blob @p blob (@p blob_len bytes)
 * and runs it: live (@p entry NULL) or as the replay of @p entry. */
static int eval_run(json_t **rec_out, mlreg_registry *reg, const eval_ctx *a,
                    const mlreg_digest *blob, size_t blob_len, const char *actor,
                    const json_t *entry, const char *text, size_t len)
{
    int error = 0;
    mlreg_digest empty;
    char *manifest = NULL;
    registry_manifest_plan *plan = NULL;
    eval_change c;

    memset(&c, 0, sizeof(c));
    if ((error = mlreg_registry__blob_put(&empty, reg, MLREG_EMPTY_CONFIG,
                                          strlen(MLREG_EMPTY_CONFIG))) < 0)
        goto done;
    if ((manifest = referrer_manifest(a, blob, blob_len)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building an evaluation referrer");
        goto done;
    }
    if ((error = mlreg_registry__manifest_plan_new(&plan, reg, a->model, MLREG_MT_OCI_MANIFEST,
                                                   manifest, strlen(manifest))) < 0)
        goto done;
    c.reg = reg;
    c.a = a;
    c.actor = actor;
    c.blob = blob;
    c.empty = &empty;
    c.plan = plan;
    if (entry != NULL)
        error = mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len,
                                              eval_apply, &c);
    else
        error = mlreg_registry__mutate(NULL, mlreg_registry_meta(reg), eval_apply, &c);
    if (error >= 0) {
        *rec_out = c.rec;
        c.rec = NULL;
    }

done:
    json_decref(c.rec);
    mlreg_registry__manifest_plan_free(plan);
    free(manifest);
    return error;
}

/* ---- listing -------------------------------------------------------------------- */

/* The one rule of which evaluations count (docs/evaluations.md): by keyring
 * key @p kk (NULL: not in the keyring) with the signer's public key @p pk
 * and role evaluator, not revoked, or retired after @p attached_ns. */
static int evaluator_counts(const mlreg_keyring_key *kk, const mlreg_pubkey *pk,
                            int64_t attached_ns)
{
    if (kk == NULL || !mlreg_pubkey_equal(&kk->pubkey, pk) ||
        strcmp(kk->role, MLREG_KEY_ROLE_EVALUATOR) != 0)
        return 0;
    return kk->state == MLREG_KEY_ACTIVE ||
           (kk->state == MLREG_KEY_RETIRED && attached_ns < kk->revoked_ns);
}

/* The listing form of record @p rec, judged against the keyring now. */
static int list_item(json_t **out, mlreg_registry *reg, mlreg_meta_txn *txn, const json_t *rec)
{
    mlreg_pubkey pk;
    mlreg_keyring_key kk;
    const mlreg_keyring_key *kkp = NULL;
    const char *b64 = jstr(rec, "public_key");
    int counts = 0, error;
    mlreg_sigstatus st;

    if (b64 == NULL || mlreg_pubkey_parse(&pk, b64, strlen(b64)) < 0) {
        mlreg_error_clear();
        return mlreg_error_set(MLREG_EIO, "evaluation record is corrupt: no valid public key");
    }
    error = mlreg_keyring_find(&kk, mlreg_registry_keyring(reg), txn, &pk.id);
    if (error == 0)
        kkp = &kk;
    else if (error != MLREG_ENOTFOUND)
        return error;
    /* the status as for signatures; whether it counts by the evaluator
     * rule, not the release one */
    st = mlreg_keyring_judge(&counts, kkp, &pk,
                             (int64_t)json_integer_value(json_object_get(rec, "attached_ns")));
    if (st == MLREG_SIGSTATUS_UNTRUSTED) kkp = NULL;
    counts = evaluator_counts(kkp, &pk,
                              (int64_t)json_integer_value(json_object_get(rec, "attached_ns")));
    *out = json_pack(
        "{s:O?, s:O?, s:s?, s:s?, s:s, s:b, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, "
        "s:O?, s:O?, s:O?, s:O?, s:O?}",
        "seq", json_object_get(rec, "seq"), "key_id", json_object_get(rec, "key_id"), "key_name",
        kkp ? kkp->name : jstr(rec, "key_name"), "role", kkp ? kkp->role : jstr(rec, "role"),
        "status", mlreg_sigstatus_name(st), "counts", counts, "trusted_at_attach",
        json_object_get(rec, "trusted_at_attach"), "attached_at",
        json_object_get(rec, "attached_at"), "attached_by", json_object_get(rec, "attached_by"),
        "evaluated_at", json_object_get(rec, "evaluated_at"), "dataset",
        json_object_get(rec, "dataset"), "dataset_digest", json_object_get(rec, "dataset_digest"),
        "eval_code_digest", json_object_get(rec, "eval_code_digest"), "metrics",
        json_object_get(rec, "metrics"), "envelope", json_object_get(rec, "envelope"), "referrer",
        json_object_get(rec, "referrer"), "public_key", json_object_get(rec, "public_key"));
    if (*out == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing evaluations");
    return 0;
}

int mlreg_evaluation_attest(json_t **out, int *created_out, mlreg_registry *reg, const char *model,
                            const char *version, const char *envelope, size_t len,
                            const char *actor)
{
    int error = 0;
    eval_ctx a;
    mlreg_digest blob;
    json_t *rec = NULL, *item = NULL;
    mlreg_meta_txn *txn = NULL;

    memset(&a, 0, sizeof(a));
    if ((error = eval_check(&a, reg, model, version, envelope, len, NULL)) < 0) goto done;
    /* the envelope as sent: durable before any metadata names it */
    if ((error = mlreg_registry__blob_put(&blob, reg, envelope, len)) < 0) goto done;
    error = eval_run(&rec, reg, &a, &blob, len, mlreg_registry__actor(actor), NULL, NULL, 0);
    if (error < 0) goto done;
    *created_out = error != REGISTRY_MUTATE_NOOP;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if ((error = list_item(&item, reg, txn, rec)) < 0) goto done;
    if (json_object_set_new(item, "model", json_string(model)) < 0 ||
        json_object_set_new(item, "version", json_string(version)) < 0 ||
        json_object_set_new(item, "digest", json_string(a.digest)) < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering an evaluation");
        goto done;
    }
    *out = item;
    item = NULL;
    error = 0;

done:
    mlreg_meta_txn_abort(txn);
    json_decref(item);
    json_decref(rec);
    eval_ctx_clear(&a);
    return error;
}

int mlreg_registry__replay_evaluation(mlreg_registry *reg, const json_t *entry, const char *text,
                                      size_t len)
{
    const json_t *subject = json_object_get(entry, "subject");
    const json_t *details = json_object_get(entry, "details");
    const char *model = jstr(subject, "model"), *version = jstr(subject, "version");
    const char *pk = jstr(details, "public_key"), *envd = jstr(details, "envelope");
    int error = 0;
    eval_ctx a;
    mlreg_digest blob;
    char *env = NULL;
    size_t elen = 0;
    json_t *rec = NULL;

    memset(&a, 0, sizeof(a));
    if (model == NULL || version == NULL || pk == NULL || envd == NULL ||
        mlreg_digest_parse(&blob, envd) < 0) {
        error = mlreg_error_set(MLREG_EINVALID, "audit entry %lld does not name an evaluation",
                                (long long)json_integer_value(json_object_get(entry, "seq")));
        goto done;
    }
    /* the same checks as the attach, with the key the entry names */
    if ((error = mlreg_registry__blob_get(&env, &elen, reg, &blob, MLREG_EVALUATION_MAX_BYTES)) <
            0 ||
        (error = eval_check(&a, reg, model, version, env, elen, pk)) < 0)
        goto done;
    error = eval_run(&rec, reg, &a, &blob, elen, jstr(entry, "actor"), entry, text, len);

done:
    json_decref(rec);
    free(env);
    eval_ctx_clear(&a);
    return error;
}

typedef struct {
    mlreg_registry *reg;
    mlreg_meta_txn *txn;
    json_t *list;
} list_walk;

static int list_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    list_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL), *item = NULL;
    int error;

    (void)key;
    if (klen != EVAL_KEY_LEN || rec == NULL) {
        json_decref(rec);
        return mlreg_error_set(MLREG_EIO, "evaluation record is corrupt");
    }
    error = list_item(&item, w->reg, w->txn, rec);
    json_decref(rec);
    if (error < 0) return error;
    if (json_array_append_new(w->list, item) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing evaluations");
    return 0;
}

int mlreg_evaluations_list(json_t **out, mlreg_registry *reg, const char *model,
                           const char *version)
{
    int error = 0;
    list_walk w;
    mlreg_digest rd;
    char hex[MLREG_DIGEST_HEXLEN + 1], digest[MLREG_DIGEST_STRLEN + 1];

    memset(&w, 0, sizeof(w));
    w.reg = reg;
    if ((error = mlreg_registry__release_listing_begin(&w.txn, &rd, reg, model, version)) < 0)
        goto done;
    if ((w.list = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing evaluations");
        goto done;
    }
    mlreg_digest_hex(hex, &rd);
    mlreg_digest_format(digest, &rd);
    /* keys are hex ‖ be64 seq: oldest first */
    if ((error = mlreg_meta_iter(w.txn, MLREG_DB_EVALUATIONS, hex, MLREG_DIGEST_HEXLEN, NULL, 0,
                                 list_cb, &w)) < 0)
        goto done;
    error = 0;
    if ((*out = json_pack("{s:s, s:s, s:s, s:O}", "model", model, "version", version, "digest",
                          digest, "evaluations", w.list)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing evaluations");

done:
    mlreg_meta_txn_abort(w.txn);
    json_decref(w.list);
    return error;
}

/* ---- what the gates ask --------------------------------------------------------- */

typedef struct {
    mlreg_keyring *kr;
    mlreg_meta_txn *txn;
    const char *dataset_digest;   /* NULL: any */
    const char *eval_code_digest; /* NULL: any */
    json_t *best;                 /* the newest record that counts so far */
} newest_walk;

/* 1 when record @p rec names digest @p want in @p field (NULL: any). */
static int digest_matches(const json_t *rec, const char *field, const char *want)
{
    const char *have = jstr(rec, field);

    if (want == NULL) return 1;                         /* any */
    if (want[0] == '\0') return have == NULL || !*have; /* must name none */
    return have != NULL && !strcmp(have, want);
}

/* 1 when record @p rec counts now: a valid key of role evaluator. */
static int record_counts(int *out, newest_walk *w, const json_t *rec)
{
    mlreg_pubkey pk;
    mlreg_keyring_key kk;
    const char *b64 = jstr(rec, "public_key");
    int64_t at = (int64_t)json_integer_value(json_object_get(rec, "attached_ns"));
    int error;

    *out = 0;
    if (b64 == NULL || mlreg_pubkey_parse(&pk, b64, strlen(b64)) < 0) {
        mlreg_error_clear();
        return mlreg_error_set(MLREG_EIO, "evaluation record is corrupt: no valid public key");
    }
    error = mlreg_keyring_find(&kk, w->kr, w->txn, &pk.id);
    if (error == MLREG_ENOTFOUND) return 0;
    if (error < 0) return error;
    *out = evaluator_counts(&kk, &pk, at);
    return 0;
}

static int newest_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    newest_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    int counts = 0, error;

    (void)key;
    if (klen != EVAL_KEY_LEN || rec == NULL) {
        json_decref(rec);
        return mlreg_error_set(MLREG_EIO, "evaluation record is corrupt");
    }
    if (!digest_matches(rec, "dataset_digest", w->dataset_digest) ||
        !digest_matches(rec, "eval_code_digest", w->eval_code_digest)) {
        json_decref(rec);
        return 0;
    }
    if ((error = record_counts(&counts, w, rec)) < 0 || !counts) {
        json_decref(rec);
        return error;
    }
    json_decref(w->best);
    w->best = rec;
    return 0;
}

/* Copies the string member @p field of @p rec into @p buf (empty when
 * absent or too long). */
static void copy_field(char *buf, size_t cap, const json_t *rec, const char *field)
{
    const char *s = jstr(rec, field);

    buf[0] = '\0';
    if (s != NULL && strlen(s) < cap) memcpy(buf, s, strlen(s) + 1);
}

int mlreg_registry__evaluation_newest(mlreg_evaluation **out, mlreg_keyring *kr,
                                      mlreg_meta_txn *txn, const char *hex,
                                      const char *dataset_digest, const char *eval_code_digest)
{
    newest_walk w = {kr, txn, dataset_digest, eval_code_digest, NULL};
    mlreg_evaluation *e = NULL;
    const json_t *metrics;
    const char *name;
    json_t *v;
    mlreg_keyid id;
    mlreg_keyring_key kk;
    size_t i = 0;
    int error;

    if ((error = mlreg_meta_iter(txn, MLREG_DB_EVALUATIONS, hex, MLREG_DIGEST_HEXLEN, NULL, 0,
                                 newest_cb, &w)) < 0)
        goto done;
    if (w.best == NULL) {
        error = MLREG_ENOTFOUND;
        goto done;
    }
    metrics = json_object_get(w.best, "metrics");
    if (!json_is_object(metrics)) {
        error = mlreg_error_set(MLREG_EIO, "evaluation record is corrupt: no metrics");
        goto done;
    }
    if ((e = calloc(1, sizeof(*e))) == NULL ||
        (json_object_size(metrics) &&
         (e->metrics = calloc(json_object_size(metrics), sizeof(*e->metrics))) == NULL)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading an evaluation");
        goto done;
    }
    e->doc = w.best;
    w.best = NULL;
    e->seq = (uint64_t)json_integer_value(json_object_get(e->doc, "seq"));
    e->attached_ns = (int64_t)json_integer_value(json_object_get(e->doc, "attached_ns"));
    copy_field(e->attached_at, sizeof(e->attached_at), e->doc, "attached_at");
    copy_field(e->evaluated_at, sizeof(e->evaluated_at), e->doc, "evaluated_at");
    copy_field(e->key_id, sizeof(e->key_id), e->doc, "key_id");
    copy_field(e->dataset_digest, sizeof(e->dataset_digest), e->doc, "dataset_digest");
    copy_field(e->eval_code_digest, sizeof(e->eval_code_digest), e->doc, "eval_code_digest");
    e->dataset = jstr(e->doc, "dataset");
    /* the keyring's name now: the key counted, so it is there */
    if (mlreg_keyid_parse(&id, e->key_id, strlen(e->key_id)) == 0 &&
        mlreg_keyring_find(&kk, kr, txn, &id) == 0)
        memcpy(e->key_name, kk.name, sizeof(e->key_name));
    else
        mlreg_error_clear();
    json_object_foreach((json_t *)metrics, name, v)
    {
        e->metrics[i].name = name;
        e->metrics[i].value = json_is_number(v) ? json_number_value(v) : NAN;
        mlreg_registry__metric_ci(&e->metrics[i], json_object_get(e->doc, "metric_intervals"));
        i++;
    }
    e->n_metrics = i;
    *out = e;
    e = NULL;

done:
    json_decref(w.best);
    mlreg_registry__evaluation_free(e);
    return error;
}

void mlreg_registry__metric_ci(mlreg_metric *m, const json_t *intervals)
{
    const json_t *ci = json_object_get(intervals, m->name), *b;

    m->has_ci = json_is_object(ci);
    if (!m->has_ci) return;
    /* corrupt bounds fail as NaN */
    b = json_object_get(ci, "ci_low");
    m->ci_low = json_is_number(b) ? json_number_value(b) : NAN;
    b = json_object_get(ci, "ci_high");
    m->ci_high = json_is_number(b) ? json_number_value(b) : NAN;
}

void mlreg_registry__evaluation_free(mlreg_evaluation *e)
{
    if (e == NULL) return;
    free(e->metrics);
    json_decref(e->doc);
    free(e);
}

typedef struct {
    const char *referrer;
} owner_walk;

static int owner_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    owner_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *ref = jstr(rec, "referrer");
    int owned = ref != NULL && !strcmp(ref, w->referrer);

    (void)key;
    (void)klen;
    json_decref(rec);
    return owned;
}

int mlreg_registry__evaluation_owns_referrer(mlreg_meta_txn *txn, const mlreg_digest *subject,
                                             const char *referrer)
{
    char hex[MLREG_DIGEST_HEXLEN + 1];
    owner_walk w = {referrer};

    mlreg_digest_hex(hex, subject);
    return mlreg_meta_iter(txn, MLREG_DB_EVALUATIONS, hex, MLREG_DIGEST_HEXLEN, NULL, 0, owner_cb,
                           &w);
}

int mlreg_registry__evaluation_holds_blob(mlreg_meta_txn *txn, const char *hex,
                                          const mlreg_digest *digest)
{
    char d[MLREG_DIGEST_STRLEN + 1];
    json_t *rec = NULL;
    int error;

    mlreg_digest_format(d, digest);
    if ((error = find_envelope(&rec, txn, hex, d)) < 0) return error;
    error = rec != NULL;
    json_decref(rec);
    return error;
}
