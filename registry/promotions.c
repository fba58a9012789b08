/* promotions.c: stage pointers, stage history, the promotions log,
 * approvals, rollback, image bindings and resolution at a time
 * (include/mlreg/promotions.h; the key layout is in that header).
 *
 * The one rule that matters: a stage pointer moves only inside
 * promote_in_txn() / rollback_in_txn(), in the same LMDB write transaction
 * that read the baseline, the signatures, the stage history and the
 * approvals the decision was made on. LMDB admits one writer at a time, so
 * two promotions racing on one stage run one after the other, and the
 * second is evaluated against the release the first moved in. Reads of
 * other modules' databases (releases, signatures, keys) go through the same
 * transaction so the decision sees one consistent snapshot.
 *
 * The audit entry of every change is appended in its transaction too. A
 * move (passed promote, rollback) also signs its in-toto statement there:
 * the statement names the seq its own audit entry will get, which is only
 * known inside the writer (mlreg_audit_size_txn), so the envelope is built,
 * signed and written to the blob store while the transaction is open. That
 * is the one piece of blob-store I/O inside a write transaction here; the
 * blob is committed before the transaction, so a crash leaves at worst an
 * unreferenced blob, never a referrer without its envelope.
 */
#include "mlreg/promotions.h"

#include <math.h>
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
#include "mlreg/text.h"
#include "registry_internal.h"

/* model (255) \0 stage (128) \0 be64, or hex (64) \0 stage \0 approver (128); LMDB keys are at most
 * 511 bytes */
#define PKEY_CAP 600

#define SEQ_PROMOTION "promotion_seq"
#define SEQ_HISTORY   "stage_history_seq"
#define SEQ_IMAGE     "image_seq"

/* ---- keys and small helpers ------------------------------------------------ */

/* Joins the non-NULL strings of @p parts (up to 3) with NUL separators, then
 * appends @p seq as 8 big-endian bytes (after a NUL) when @p with_seq. */
static size_t pkey(char key[PKEY_CAP], const char *a, const char *b, const char *c, int with_seq,
                   uint64_t seq)
{
    const char *parts[3] = {a, b, c};
    size_t n = 0;

    for (size_t i = 0; i < 3 && parts[i] != NULL; i++) {
        size_t l = strlen(parts[i]);
        /* validated names bound every part (255 + 128 + 128 bytes) well under
         * PKEY_CAP; the guard only keeps the buffer safe */
        if (n + l + 10 > PKEY_CAP) break;
        if (i > 0) key[n++] = '\0';
        memcpy(key + n, parts[i], l);
        n += l;
    }
    if (with_seq) {
        key[n++] = '\0';
        mlreg_be64_put(key + n, seq);
        n += 8;
    }
    return n;
}

/* Loads a JSON value stored under @p key; ENOTFOUND (no message) when absent. */
static int get_json(json_t **out, mlreg_meta_txn *txn, mlreg_db db, const char *key, size_t klen)
{
    int error = 0;
    void *val = NULL;
    size_t vlen;

    if ((error = mlreg_meta_get(&val, &vlen, txn, db, key, klen)) < 0) {
        if (error == MLREG_ENOTFOUND) mlreg_error_clear();
        return error;
    }
    *out = json_loadb(val, vlen, 0, NULL);
    free(val);
    if (*out == NULL) return mlreg_error_set(MLREG_EIO, "metadata record is corrupt");
    return 0;
}

/* Serialises @p j (not consumed) under @p key. */
static int put_json(mlreg_meta_txn *txn, mlreg_db db, const char *key, size_t klen, const json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    int error;

    if (text == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory serialising a record");
    error = mlreg_meta_put(txn, db, key, klen, text, strlen(text), 0);
    free(text);
    return error;
}

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int check_names(const mlreg_policy *policy, const char *model, const char *version,
                       const char *stage)
{
    int error;

    if ((error = mlreg_name_validate(model)) < 0) return error;
    if (version != NULL && (error = mlreg_tag_validate(version)) < 0) return error;
    if (stage != NULL && policy != NULL && mlreg_policy_stage_index(policy, stage) < 0)
        return mlreg_error_set(MLREG_EINVALID, "unknown stage '%s'", stage);
    return 0;
}

static int check_text(const char *text, const char *what)
{
    if (text == NULL) return 0;
    if (strlen(text) > MLREG_REASON_MAX)
        return mlreg_error_set(MLREG_EINVALID, "%s is longer than %d bytes", what,
                               MLREG_REASON_MAX);
    return mlreg_text_validate(text, what);
}

/* The release record of model@version: ENOTFOUND "release m@v not found". */
static int release_get(json_t **out, mlreg_meta_txn *txn, const char *model, const char *version)
{
    char key[PKEY_CAP];
    int error = get_json(out, txn, MLREG_DB_RELEASES, key, pkey(key, model, version, NULL, 0, 0));

    if (error == MLREG_ENOTFOUND)
        return mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", model, version);
    return error;
}

/* The digest hex (64 chars) of a release record's "digest". */
static int record_hex(char hex[MLREG_DIGEST_HEXLEN + 1], const json_t *rec)
{
    const char *d = jstr(rec, "digest");

    if (d == NULL || strlen(d) != MLREG_DIGEST_STRLEN || strncmp(d, "sha256:", 7))
        return mlreg_error_set(MLREG_EIO, "release record has a corrupt digest");
    memcpy(hex, d + 7, MLREG_DIGEST_HEXLEN + 1);
    return 0;
}

static const char *pusher_of(const json_t *rec)
{
    const char *p = jstr(rec, "pushed_by");
    return p ? p : MLREG_KEYRING_ACTOR_LOCAL;
}

/* ---- what the gates read ------------------------------------------------------- */

/* A release as the gates see it; metric names borrowed from rec. */
typedef struct {
    mlreg_gate_release g;
    mlreg_metric *metrics;
} gate_rel;

static int gate_rel_of(gate_rel *out, const json_t *rec)
{
    json_t *metrics = json_object_get(rec, "metrics"), *v, *files, *f;
    const char *name;
    size_t i = 0, k;

    memset(out, 0, sizeof(*out));
    out->g.version = jstr(rec, "version");
    out->g.dataset = jstr(rec, "dataset");
    files = json_object_get(rec, "files");
    json_array_foreach(files, k, f)
    {
        const char *kind = jstr(f, "kind");
        if (kind != NULL && !strcmp(kind, "eval-report")) out->g.has_eval_report = 1;
    }
    if (json_object_size(metrics) > 0 &&
        (out->metrics = calloc(json_object_size(metrics), sizeof(*out->metrics))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory reading metrics");
    json_object_foreach(metrics, name, v)
    {
        /* a stored value that is not a number is corrupt: it fails as NaN */
        out->metrics[i].name = name;
        out->metrics[i].value = json_is_number(v) ? json_number_value(v) : NAN;
        i++;
    }
    out->g.metrics = out->metrics;
    out->g.n_metrics = i;
    return 0;
}

/* The signatures of one release as the `signed` rule sees them. */
typedef struct {
    mlreg_keyring *kr;
    mlreg_meta_txn *txn;
    long count;                                   /* keys whose signatures count now */
    unsigned char (*counted)[MLREG_PUBKEY_BYTES]; /* their public keys (malloc'd) */
    long other;      /* keys whose valid signatures do not count because of their role */
    char roles[256]; /* those keys' roles, distinct, ", "-separated (cut when long) */
} sig_count;

/* Adds @p role to the ", "-separated list @p c->roles unless it is there. */
static void note_role(sig_count *c, const char *role)
{
    size_t n = strlen(c->roles), rl = strlen(role);
    const char *p = c->roles, *e;

    while (*p) {
        e = strstr(p, ", ");
        if ((size_t)((e ? e : p + strlen(p)) - p) == rl && !memcmp(p, role, rl)) return;
        p = e ? e + 2 : p + strlen(p);
    }
    if (n + 2 + rl + 1 <= sizeof(c->roles))
        snprintf(c->roles + n, sizeof(c->roles) - n, "%s%s", n ? ", " : "", role);
}

static int sig_count_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    sig_count *c = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *b64 = jstr(rec, "public_key");
    mlreg_pubkey pk;
    mlreg_keyring_key kk;
    char role[sizeof(kk.role)];
    int64_t attached;
    int error = 0, counts = 0;

    (void)key;
    (void)klen;
    if (rec == NULL || b64 == NULL || mlreg_pubkey_parse(&pk, b64, strlen(b64)) < 0) {
        error = mlreg_error_set(MLREG_EIO, "signature record is corrupt");
        goto done;
    }
    error = mlreg_keyring_find(&kk, c->kr, c->txn, &pk.id);
    if (error == MLREG_ENOTFOUND) {
        mlreg_error_clear();
        error = 0;
        goto done; /* not in the keyring: does not count */
    }
    if (error < 0) goto done;
    attached = (int64_t)json_integer_value(json_object_get(rec, "attached_ns"));
    mlreg_keyring_judge(&counts, &kk, &pk, attached);
    if (counts) {
        /* distinct keys: the keyring gives one public key one key id, but
         * records from before that rule may hold one key twice */
        long i;
        for (i = 0; i < c->count && memcmp(c->counted[i], pk.pk, MLREG_PUBKEY_BYTES); i++)
            ;
        if (i == c->count) {
            void *grown = realloc(c->counted, (size_t)(c->count + 1) * MLREG_PUBKEY_BYTES);
            if (grown == NULL) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory counting signatures");
                goto done;
            }
            c->counted = grown;
            memcpy(c->counted[c->count], pk.pk, MLREG_PUBKEY_BYTES);
            c->count++;
        }
    } else if (!mlreg_key_role_signs_releases(kk.role)) {
        /* judged again as a release key: when it would count then, its
         * role is the only reason it does not, and the gate says so */
        memcpy(role, kk.role, sizeof(role));
        snprintf(kk.role, sizeof(kk.role), "%s", MLREG_KEY_ROLE_RELEASE);
        mlreg_keyring_judge(&counts, &kk, &pk, attached);
        if (counts) {
            c->other++;
            note_role(c, role);
        }
    }

done:
    json_decref(rec);
    return error;
}

/* Distinct trusted keys whose signatures of release @p hex count now, and
 * those that would but for their role, into *out (the signatures db holds
 * at most one signature per key and release). */
static int count_signatures(sig_count *out, mlreg_registry *reg, mlreg_meta_txn *txn,
                            const char *hex)
{
    char prefix[MLREG_DIGEST_HEXLEN + 1];
    int error;

    memset(out, 0, sizeof(*out));
    out->kr = mlreg_registry_keyring(reg);
    out->txn = txn;
    memcpy(prefix, hex, MLREG_DIGEST_HEXLEN);
    prefix[MLREG_DIGEST_HEXLEN] = '\0';
    error = mlreg_meta_iter(txn, MLREG_DB_SIGNATURES, prefix, sizeof(prefix), NULL, 0, sig_count_cb,
                            out);
    free(out->counted); /* only the walk needs them */
    out->counted = NULL;
    return error < 0 ? error : 0;
}

typedef struct {
    const char *pusher;
    long count;
    int pusher_approved;
    json_t *approvers; /* names that counted, in key (= byte) order */
} approval_count;

static int approval_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    approval_count *c = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *who = jstr(rec, "approver");

    (void)key;
    (void)klen;
    if (who == NULL) {
        json_decref(rec);
        return mlreg_error_set(MLREG_EIO, "approval record is corrupt");
    }
    if (!strcmp(who, c->pusher)) {
        c->pusher_approved = 1;
    } else {
        c->count++;
        if (json_array_append_new(c->approvers, json_string(who)) < 0) {
            json_decref(rec);
            return mlreg_error_set(MLREG_ENOMEM, "out of memory counting approvals");
        }
    }
    json_decref(rec);
    return 0;
}

typedef struct {
    const char *digest; /* "sha256:..." looked for, or NULL */
    int found;
    int64_t at_ns; /* resolve: last entry with time_ns <= at_ns */
    json_t *last;  /* the last entry seen (or the resolved one) */
} history_walk;

static int history_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    history_walk *w = payload;
    json_t *e = json_loadb(val, vlen, 0, NULL);
    const char *d = jstr(e, "digest");

    (void)key;
    (void)klen;
    if (e == NULL || d == NULL) {
        json_decref(e);
        return mlreg_error_set(MLREG_EIO, "stage history entry is corrupt");
    }
    if (w->digest != NULL && !strcmp(d, w->digest)) w->found = 1;
    if (w->at_ns >= 0 && json_integer_value(json_object_get(e, "time_ns")) > w->at_ns) {
        json_decref(e);
        return 1; /* entries are in time order: the rest is later still */
    }
    json_decref(w->last);
    w->last = e;
    return 0;
}

/* Walks the history of model/stage; see history_walk. */
static int walk_history(history_walk *w, mlreg_meta_txn *txn, const char *model, const char *stage)
{
    char prefix[PKEY_CAP];
    size_t plen = pkey(prefix, model, stage, "", 0, 0);
    int error = mlreg_meta_iter(txn, MLREG_DB_STAGE_HISTORY, prefix, plen, NULL, 0, history_cb, w);

    return error < 0 ? error : 0;
}

/* ---- promote ------------------------------------------------------------------- */

/* Appends a promotions-log record; *seq_out its sequence number. */
static int log_promotion(uint64_t *seq_out, json_t **rec_out, mlreg_meta_txn *txn,
                         const char *model, const char *action, const json_t *cand,
                         const char *stage, const json_t *from, int passed, const char *reason,
                         const json_t *rules, const char *actor, int64_t now)
{
    int error = 0;
    uint64_t seq;
    char key[PKEY_CAP], when[MLREG_TIME_STRLEN];
    json_t *rec = NULL;

    mlreg_time_format(when, now);
    if ((error = mlreg_meta_counter_next(&seq, txn, SEQ_PROMOTION)) < 0) goto done;
    rec =
        json_pack("{s:I, s:s, s:I, s:s, s:s, s:O, s:O, s:s, s:O?, s:b, s:s?, s:o, s:o}", "seq",
                  (json_int_t)seq, "time", when, "time_ns", (json_int_t)now, "actor", actor,
                  "action", action, "version", json_object_get(cand, "version"), "digest",
                  json_object_get(cand, "digest"), "to", stage, "from_version",
                  from ? json_object_get(from, "version") : json_null(), "passed", passed, "reason",
                  reason, "rules", rules ? json_incref((json_t *)rules) : json_array(), "baseline",
                  from ? json_pack("{s:O, s:O}", "version", json_object_get(from, "version"),
                                   "digest", json_object_get(from, "digest"))
                       : json_null());
    if (rec == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording a promotion");
        goto done;
    }
    if ((error = put_json(txn, MLREG_DB_PROMOTIONS, key, pkey(key, model, NULL, NULL, 1, seq),
                          rec)) < 0)
        goto done;
    *seq_out = seq;
    *rec_out = rec;
    rec = NULL;

done:
    json_decref(rec);
    return error;
}

/* Moves model/stage to release @p cand and appends the history entry. */
static int move_pointer(mlreg_meta_txn *txn, const char *model, const char *stage,
                        const char *action, const json_t *cand, const json_t *from,
                        const char *reason, const char *actor, int64_t now, uint64_t pseq)
{
    int error = 0;
    uint64_t hseq;
    char key[PKEY_CAP], when[MLREG_TIME_STRLEN];
    json_t *ptr = NULL, *entry = NULL;

    mlreg_time_format(when, now);
    if ((error = mlreg_meta_counter_next(&hseq, txn, SEQ_HISTORY)) < 0) goto done;
    ptr = json_pack("{s:O, s:O, s:s, s:I, s:s, s:I}", "version", json_object_get(cand, "version"),
                    "digest", json_object_get(cand, "digest"), "since", when, "since_ns",
                    (json_int_t)now, "by", actor, "seq", (json_int_t)hseq);
    entry = json_pack("{s:s, s:I, s:s, s:O, s:O, s:O?, s:O?, s:s, s:s?, s:I}", "time", when,
                      "time_ns", (json_int_t)now, "action", action, "version",
                      json_object_get(cand, "version"), "digest", json_object_get(cand, "digest"),
                      "previous_version", from ? json_object_get(from, "version") : NULL,
                      "previous_digest", from ? json_object_get(from, "digest") : NULL, "actor",
                      actor, "reason", reason, "promotion_seq", (json_int_t)pseq);
    if (ptr == NULL || entry == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory moving a stage");
        goto done;
    }
    if ((error = put_json(txn, MLREG_DB_STAGES, key, pkey(key, model, stage, NULL, 0, 0), ptr)) < 0)
        goto done;
    error =
        put_json(txn, MLREG_DB_STAGE_HISTORY, key, pkey(key, model, stage, NULL, 1, hseq), entry);

done:
    json_decref(ptr);
    json_decref(entry);
    return error;
}

/* The stage pointer of model/stage, or *out = NULL when the stage is empty. */
static int pointer_get(json_t **out, mlreg_meta_txn *txn, const char *model, const char *stage)
{
    char key[PKEY_CAP];
    int error = get_json(out, txn, MLREG_DB_STAGES, key, pkey(key, model, stage, NULL, 0, 0));

    if (error == MLREG_ENOTFOUND) {
        *out = NULL;
        return 0;
    }
    return error;
}

static json_t *promotion_summary(const json_t *rec)
{
    if (rec == NULL) return json_null();
    return json_pack("{s:O, s:O, s:O, s:O}", "seq", json_object_get(rec, "seq"), "time",
                     json_object_get(rec, "time"), "actor", json_object_get(rec, "actor"), "reason",
                     json_object_get(rec, "reason"));
}

/* ---- audit entries and attestations ---------------------------------------------- */

/* What a promotion or rollback records: its audit entry and, when it moves
 * the pointer, its statement. Everything borrowed. */
typedef struct {
    const char *action; /* MLREG_AUDIT_PROMOTE or MLREG_AUDIT_ROLLBACK */
    const char *result; /* MLREG_AUDIT_OK or MLREG_AUDIT_REFUSED */
    const char *model;
    const json_t *cand; /* the release record moved in (or refused) */
    const char *stage;
    const char *from_stage;  /* promote: the stage it came from, or NULL */
    const json_t *base;      /* the release record it replaces, or NULL */
    const json_t *gates;     /* the gate table, or NULL */
    const json_t *approvers; /* the approvers that counted, or NULL */
    const char *reason;
    const char *actor;
    int64_t now;
} promo_event;

/* {"version","digest"} of a release record, or JSON null (new reference). */
static json_t *version_digest(const json_t *rec)
{
    if (rec == NULL) return json_null();
    return json_pack("{s:O, s:O}", "version", json_object_get(rec, "version"), "digest",
                     json_object_get(rec, "digest"));
}

/* Appends the audit entry of @p pe; *seq_out its seq. */
static int audit_promotion(uint64_t *seq_out, mlreg_meta_txn *txn, const promo_event *pe)
{
    mlreg_audit_event ev;
    json_t *details;
    int error, rollback = !strcmp(pe->action, MLREG_AUDIT_ROLLBACK);

    if (rollback)
        details = json_pack("{s:o}", "previous", version_digest(pe->base));
    else
        details = json_pack("{s:s?, s:o}", "from_stage", pe->from_stage, "baseline",
                            version_digest(pe->base));
    if (details == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a promotion");
    memset(&ev, 0, sizeof(ev));
    ev.time_ns = pe->now;
    ev.actor = pe->actor;
    ev.action = pe->action;
    ev.result = pe->result;
    ev.reason = pe->reason;
    ev.model = pe->model;
    ev.version = jstr(pe->cand, "version");
    ev.digest = jstr(pe->cand, "digest");
    ev.stage = pe->stage;
    ev.approvers = pe->approvers;
    ev.gates = pe->gates;
    ev.details = details;
    error = mlreg_audit_append_txn(seq_out, txn, &ev);
    json_decref(details);
    return error;
}

/* The in-toto statement of docs/audit-api.md for @p pe, naming audit entry
 * @p seq (new reference; reals already made strings). */
static json_t *promotion_statement(const promo_event *pe, uint64_t seq, const char *origin)
{
    char name[PKEY_CAP], when[MLREG_TIME_STRLEN];
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
                   version_digest(pe->base), "gates",
                   pe->gates ? json_incref((json_t *)pe->gates) : json_array(), "approvers",
                   pe->approvers ? json_incref((json_t *)pe->approvers) : json_array(), "actor",
                   pe->actor, "time", when, "audit", "origin", origin, "seq", (json_int_t)seq);
    if (st == NULL) return NULL;
    plain = mlreg_audit_json_no_reals(st);
    json_decref(st);
    return plain;
}

/* The OCI referrer manifest of an attestation: deterministic bytes. */
static char *attestation_manifest(const mlreg_manifest_data *release, const mlreg_digest *blob,
                                  size_t blob_len, uint64_t seq, const char *stage)
{
    char d[MLREG_DIGEST_STRLEN + 1], rd[MLREG_DIGEST_STRLEN + 1], seqs[24], title[PKEY_CAP];
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

/* attestations key: release digest hex ‖ be64 seq */
#define ATT_KEY_LEN (MLREG_DIGEST_HEXLEN + 8)

static void att_key(char key[ATT_KEY_LEN], const char *hex, uint64_t seq)
{
    memcpy(key, hex, MLREG_DIGEST_HEXLEN);
    mlreg_be64_put(key + MLREG_DIGEST_HEXLEN, seq);
}

/*
 * Records a move inside @p txn: signs the statement naming the seq the
 * move's audit entry is about to get, writes the envelope (and the empty
 * config) to the blob store, stores the referrer manifest with its index
 * entry and blob links and the attestations record, then appends the audit
 * entry and checks it got that seq. The caller moves the pointer and
 * commits; if anything here fails it aborts and nothing of the move stays.
 */
static int record_move(mlreg_registry *reg, mlreg_meta_txn *txn, const promo_event *pe)
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
    char hex[MLREG_DIGEST_HEXLEN + 1], k[ATT_KEY_LEN];

    if ((error = record_hex(hex, pe->cand)) < 0) goto done;
    if (mlreg_digest_parse(&rd, jstr(pe->cand, "digest")) < 0) {
        error = mlreg_error_set(MLREG_EIO, "release record has a corrupt digest");
        goto done;
    }
    if ((error = mlreg_audit_size_txn(&seq, txn)) < 0) goto done;
    if ((st = promotion_statement(pe, seq, mlreg_audit_key_origin(key))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building a promotion statement");
        goto done;
    }
    if ((error = mlreg_canonical_json(&payload, &plen, st)) < 0) goto done;
    if ((error = mlreg_dsse_sign(&env, MLREG_DSSE_INTOTO_TYPE, payload, plen,
                                 mlreg_audit_key_seckey(key))) < 0)
        goto done;

    /* the envelope is durable before any metadata names it */
    if ((error = registry_blob_put(&blob, reg, env, strlen(env))) < 0 ||
        (error = registry_blob_put(&empty, reg, MLREG_EMPTY_CONFIG, strlen(MLREG_EMPTY_CONFIG))) <
            0)
        goto done;
    if ((error = registry_manifest_load_txn(&release, txn, pe->model, &rd)) < 0) goto done;
    if ((manifest = attestation_manifest(release, &blob, strlen(env), seq, pe->stage)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building an attestation referrer");
        goto done;
    }
    if ((error = registry_manifest_plan_new(&plan, reg, pe->model, MLREG_MT_OCI_MANIFEST, manifest,
                                            strlen(manifest))) < 0)
        goto done;
    if ((error = registry_blob_link_txn(txn, pe->model, &blob)) < 0 ||
        (error = registry_blob_link_txn(txn, pe->model, &empty)) < 0 ||
        (error = registry_manifest_plan_put(&put, txn, plan)) < 0)
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
    if ((error = audit_promotion(&got, txn, pe)) < 0) goto done;
    if (got != seq)
        error = mlreg_error_set(MLREG_EIO,
                                "audit entry of the %s got seq %llu, but its statement names %llu",
                                pe->action, (unsigned long long)got, (unsigned long long)seq);

done:
    registry_manifest_plan_free(plan);
    mlreg_manifest_data_free(release);
    json_decref(st);
    json_decref(rec);
    free(payload);
    free(env);
    free(manifest);
    free(rectext);
    return error;
}

int mlreg_promote(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                  const mlreg_promote_req *req)
{
    int error = 0, passed = 0, idx;
    mlreg_meta_txn *txn = NULL;
    json_t *cand = NULL, *ptr = NULL, *base = NULL, *table = NULL, *logrec = NULL, *res = NULL;
    gate_rel gc, gb;
    mlreg_gate_input in;
    sig_count sc;
    const mlreg_rule *rules;
    size_t nrules;
    char hex[MLREG_DIGEST_HEXLEN + 1], prefix[PKEY_CAP];
    approval_count ac;
    history_walk hw;
    uint64_t pseq = 0;
    int64_t now;
    promo_event pe;
    size_t failed = 0, i;
    json_t *row;
    char refusal[PKEY_CAP + 128];

    memset(&gc, 0, sizeof(gc));
    memset(&gb, 0, sizeof(gb));
    memset(&in, 0, sizeof(in));
    memset(&hw, 0, sizeof(hw));
    memset(&ac, 0, sizeof(ac));
    hw.at_ns = -1;
    if ((error = check_names(policy, req->model, req->version, req->stage)) < 0 ||
        (error = check_text(req->reason, "reason")) < 0)
        goto done;
    idx = mlreg_policy_stage_index(policy, req->stage);
    if ((error = mlreg_policy_rules(&rules, &nrules, policy, req->model, req->stage)) < 0)
        goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), !req->dry_run)) < 0)
        goto done;

    if ((error = release_get(&cand, txn, req->model, req->version)) < 0) goto done;
    if ((error = record_hex(hex, cand)) < 0) goto done;
    if ((error = pointer_get(&ptr, txn, req->model, req->stage)) < 0) goto done;
    if (ptr != NULL) {
        const char *bv = jstr(ptr, "version");
        if (bv == NULL) {
            error = mlreg_error_set(MLREG_EIO, "stage pointer %s:%s is corrupt", req->model,
                                    req->stage);
            goto done;
        }
        if (json_equal(json_object_get(ptr, "digest"), json_object_get(cand, "digest"))) {
            error = mlreg_error_set(MLREG_EDENIED, "%s@%s is already in stage %s", req->model,
                                    req->version, req->stage);
            goto done;
        }
        if ((error = release_get(&base, txn, req->model, bv)) < 0) goto done;
    }

    /* gather every input inside this transaction */
    if ((error = gate_rel_of(&gc, cand)) < 0) goto done;
    in.candidate = &gc.g;
    if (base != NULL) {
        if ((error = gate_rel_of(&gb, base)) < 0) goto done;
        in.baseline = &gb.g;
    }
    if ((error = count_signatures(&sc, reg, txn, hex)) < 0) goto done;
    in.signed_count = sc.count;
    in.signed_other_count = sc.other;
    in.signed_other_roles = sc.other > 0 ? sc.roles : NULL;
    if (idx > 0) {
        json_t *pp = NULL;
        in.previous_stage = mlreg_policy_stages(policy)[idx - 1];
        if ((error = pointer_get(&pp, txn, req->model, in.previous_stage)) < 0) goto done;
        in.in_previous_stage = pp != NULL && json_equal(json_object_get(pp, "digest"),
                                                        json_object_get(cand, "digest"));
        json_decref(pp);
        hw.digest = jstr(cand, "digest");
        if ((error = walk_history(&hw, txn, req->model, in.previous_stage)) < 0) goto done;
        if (hw.found) in.in_previous_stage = 1;
    }
    ac.pusher = pusher_of(cand);
    if ((ac.approvers = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory counting approvals");
        goto done;
    }
    if ((error = mlreg_meta_iter(txn, MLREG_DB_APPROVALS, prefix,
                                 pkey(prefix, hex, req->stage, "", 0, 0), NULL, 0, approval_cb,
                                 &ac)) < 0)
        goto done;
    error = 0;
    in.approvals = ac.count;
    in.pusher_approved = ac.pusher_approved;

    if ((error = mlreg_gates_evaluate(&table, &passed, rules, nrules, &in)) < 0) goto done;
    json_array_foreach(table, i, row)
    {
        if (!json_is_true(json_object_get(row, "passed"))) failed++;
    }
    snprintf(refusal, sizeof(refusal),
             "promotion of %s@%s to %s refused: %zu of %zu gate rules failed", req->model,
             req->version, req->stage, failed, nrules);

    if (!req->dry_run) {
        now = mlreg_time_now_ns();
        memset(&pe, 0, sizeof(pe));
        pe.action = MLREG_AUDIT_PROMOTE;
        pe.result = passed ? MLREG_AUDIT_OK : MLREG_AUDIT_REFUSED;
        pe.model = req->model;
        pe.cand = cand;
        pe.stage = req->stage;
        pe.from_stage = in.in_previous_stage ? in.previous_stage : NULL;
        pe.base = base;
        pe.gates = table;
        pe.approvers = ac.approvers;
        pe.reason = passed ? req->reason : refusal;
        pe.actor = req->actor;
        pe.now = now;
        if ((error = log_promotion(&pseq, &logrec, txn, req->model, "promote", cand, req->stage,
                                   base, passed, req->reason, table, req->actor, now)) < 0)
            goto done;
        if (passed && ((error = move_pointer(txn, req->model, req->stage, "promote", cand, base,
                                             req->reason, req->actor, now, pseq)) < 0 ||
                       (error = record_move(reg, txn, &pe)) < 0))
            goto done;
        if (!passed && (error = audit_promotion(NULL, txn, &pe)) < 0) goto done;
        error = mlreg_meta_txn_commit(txn);
        txn = NULL;
        if (error < 0) goto done;
    }

    res = json_pack("{s:s, s:O, s:O, s:s, s:b, s:b, s:b, s:o, s:O, s:o}", "model", req->model,
                    "version", json_object_get(cand, "version"), "digest",
                    json_object_get(cand, "digest"), "to", req->stage, "dry_run", req->dry_run,
                    "passed", passed, "moved", passed && !req->dry_run, "baseline",
                    base ? json_pack("{s:O, s:O}", "version", json_object_get(base, "version"),
                                     "digest", json_object_get(base, "digest"))
                         : json_null(),
                    "rules", table, "promotion", promotion_summary(logrec));
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering a promotion");
        goto done;
    }
    if (!passed) error = mlreg_error_set(MLREG_EGATE, "%s", refusal);
    *out = res;
    res = NULL;

done:
    mlreg_meta_txn_abort(txn);
    free(gc.metrics);
    free(gb.metrics);
    json_decref(hw.last);
    json_decref(ac.approvers);
    json_decref(res);
    json_decref(cand);
    json_decref(ptr);
    json_decref(base);
    json_decref(table);
    json_decref(logrec);
    return error;
}

/* ---- rollback ------------------------------------------------------------------- */

int mlreg_rollback(json_t **out, mlreg_registry *reg, const mlreg_policy *policy, const char *model,
                   const char *stage, const char *to_version, const char *reason, const char *actor)
{
    int error = 0, refused = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *ptr = NULL, *cur = NULL, *target = NULL, *logrec = NULL, *res = NULL;
    const mlreg_rule *rules;
    size_t nrules, i;
    history_walk hw;
    sig_count sc;
    const char *tv;
    char hex[MLREG_DIGEST_HEXLEN + 1];
    long need = 0, have = 0;
    uint64_t pseq = 0;
    int64_t now;
    promo_event pe;
    char refusal[PKEY_CAP + 128];

    memset(&hw, 0, sizeof(hw));
    hw.at_ns = -1;
    if ((error = check_names(policy, model, to_version, stage)) < 0 ||
        (error = check_text(reason, "reason")) < 0)
        goto done;
    if ((error = mlreg_policy_rules(&rules, &nrules, policy, model, stage)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 1)) < 0) goto done;
    if ((error = pointer_get(&ptr, txn, model, stage)) < 0) goto done;
    if (ptr == NULL) {
        error = mlreg_error_set(MLREG_ENOTFOUND, "stage %s of %s is empty: nothing to roll back",
                                stage, model);
        goto done;
    }
    if ((error = release_get(&cur, txn, model, jstr(ptr, "version") ? jstr(ptr, "version") : "")) <
        0)
        goto done;
    if (to_version != NULL) {
        if (!strcmp(to_version, jstr(cur, "version"))) {
            error = mlreg_error_set(MLREG_EDENIED, "%s@%s holds stage %s now", model, to_version,
                                    stage);
            goto done;
        }
        error = release_get(&target, txn, model, to_version);
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_EDENIED,
                                    "%s@%s is not a release, so it never held stage "
                                    "%s",
                                    model, to_version, stage);
        if (error < 0) goto done;
        hw.digest = jstr(target, "digest");
        if ((error = walk_history(&hw, txn, model, stage)) < 0) goto done;
        if (!hw.found) {
            error = mlreg_error_set(MLREG_EDENIED, "%s@%s never held stage %s", model, to_version,
                                    stage);
            goto done;
        }
    } else {
        if ((error = walk_history(&hw, txn, model, stage)) < 0) goto done;
        tv = jstr(hw.last, "previous_version");
        if (tv == NULL) {
            error = mlreg_error_set(MLREG_EDENIED, "no earlier release held stage %s of %s", stage,
                                    model);
            goto done;
        }
        if ((error = release_get(&target, txn, model, tv)) < 0) goto done;
    }

    /* signatures are re-judged against the keyring now */
    for (i = 0; i < nrules; i++)
        if (rules[i].type == MLREG_RULE_SIGNED && rules[i].min_count > need)
            need = rules[i].min_count;
    if (need > 0) {
        if ((error = record_hex(hex, target)) < 0) goto done;
        if ((error = count_signatures(&sc, reg, txn, hex)) < 0) goto done;
        have = sc.count;
        refused = have < need;
    }
    snprintf(refusal, sizeof(refusal),
             "rollback of %s to %s@%s refused: %ld signature%s by trusted release keys count "
             "now, the stage requires %ld",
             stage, model, jstr(target, "version"), have, have == 1 ? "" : "s", need);
    now = mlreg_time_now_ns();
    memset(&pe, 0, sizeof(pe));
    pe.action = MLREG_AUDIT_ROLLBACK;
    pe.result = refused ? MLREG_AUDIT_REFUSED : MLREG_AUDIT_OK;
    pe.model = model;
    pe.cand = target;
    pe.stage = stage;
    pe.base = cur;
    pe.reason = refused ? refusal : reason;
    pe.actor = actor;
    pe.now = now;
    if ((error = log_promotion(&pseq, &logrec, txn, model, "rollback", target, stage, cur, !refused,
                               reason, NULL, actor, now)) < 0)
        goto done;
    if (!refused && ((error = move_pointer(txn, model, stage, "rollback", target, cur, reason,
                                           actor, now, pseq)) < 0 ||
                     (error = record_move(reg, txn, &pe)) < 0))
        goto done;
    if (refused && (error = audit_promotion(NULL, txn, &pe)) < 0) goto done;
    error = mlreg_meta_txn_commit(txn);
    txn = NULL;
    if (error < 0) goto done;
    if (refused) {
        error = mlreg_error_set(MLREG_EGATE, "%s", refusal);
        goto done;
    }
    res = json_pack("{s:s, s:s, s:O, s:O, s:O, s:o}", "model", model, "stage", stage, "version",
                    json_object_get(target, "version"), "digest", json_object_get(target, "digest"),
                    "previous_version", json_object_get(cur, "version"), "promotion",
                    promotion_summary(logrec));
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering a rollback");
        goto done;
    }
    *out = res;

done:
    mlreg_meta_txn_abort(txn);
    json_decref(hw.last);
    json_decref(ptr);
    json_decref(cur);
    json_decref(target);
    json_decref(logrec);
    return error;
}

/* ---- approvals ------------------------------------------------------------------- */

static json_t *approval_view(const json_t *rec)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O?}", "model", json_object_get(rec, "model"),
                     "version", json_object_get(rec, "version"), "digest",
                     json_object_get(rec, "digest"), "stage", json_object_get(rec, "stage"),
                     "approver", json_object_get(rec, "approver"), "time",
                     json_object_get(rec, "time"), "comment", json_object_get(rec, "comment"));
}

int mlreg_approve(json_t **out, int *created_out, mlreg_registry *reg, const mlreg_policy *policy,
                  const char *model, const char *version, const char *stage, const char *comment,
                  const char *actor)
{
    int error = 0, created = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *rel = NULL, *rec = NULL, *res = NULL, *details = NULL;
    char hex[MLREG_DIGEST_HEXLEN + 1], key[PKEY_CAP], when[MLREG_TIME_STRLEN];
    size_t klen;
    int64_t now;
    mlreg_audit_event ev;

    if ((error = check_names(policy, model, version, stage)) < 0 ||
        (error = check_text(comment, "comment")) < 0)
        goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 1)) < 0) goto done;
    if ((error = release_get(&rel, txn, model, version)) < 0) goto done;
    if ((error = record_hex(hex, rel)) < 0) goto done;
    klen = pkey(key, hex, stage, actor, 0, 0);
    error = get_json(&rec, txn, MLREG_DB_APPROVALS, key, klen);
    if (error == MLREG_ENOTFOUND) {
        now = mlreg_time_now_ns();
        mlreg_time_format(when, now);
        rec =
            json_pack("{s:s, s:s, s:O, s:s, s:s, s:s, s:I, s:s?}", "model", model, "version",
                      version, "digest", json_object_get(rel, "digest"), "stage", stage, "approver",
                      actor, "time", when, "time_ns", (json_int_t)now, "comment", comment);
        if (rec == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording an approval");
            goto done;
        }
        if ((error = put_json(txn, MLREG_DB_APPROVALS, key, klen, rec)) < 0) goto done;
        if (comment != NULL && (details = json_pack("{s:s}", "comment", comment)) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording an approval");
            goto done;
        }
        memset(&ev, 0, sizeof(ev));
        ev.time_ns = now;
        ev.actor = actor;
        ev.action = MLREG_AUDIT_APPROVE;
        ev.result = MLREG_AUDIT_OK;
        ev.model = model;
        ev.version = version;
        ev.digest = jstr(rel, "digest");
        ev.stage = stage;
        ev.details = details;
        if ((error = mlreg_audit_append_txn(NULL, txn, &ev)) < 0) goto done;
        if ((error = mlreg_meta_txn_commit(txn)) < 0) {
            txn = NULL;
            goto done;
        }
        txn = NULL;
        created = 1;
    } else if (error < 0) {
        goto done;
    }
    error = 0;
    if ((res = approval_view(rec)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering an approval");
        goto done;
    }
    *out = res;
    *created_out = created;

done:
    mlreg_meta_txn_abort(txn);
    json_decref(details);
    json_decref(rel);
    json_decref(rec);
    return error;
}

typedef struct {
    json_t *list;
    json_t *(*view)(const json_t *rec);
} list_walk;

static int list_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    list_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL), *v;

    (void)key;
    (void)klen;
    if (rec == NULL) return mlreg_error_set(MLREG_EIO, "metadata record is corrupt");
    v = w->view ? w->view(rec) : json_incref(rec);
    json_decref(rec);
    if (v == NULL || json_array_append_new(w->list, v) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing");
    return 0;
}

/* Lists the records under @p prefix of @p db as {field: [view(rec)...]}. */
static int list_prefix(json_t **out, mlreg_meta_txn *txn, mlreg_db db, const char *prefix,
                       size_t plen, const char *field, json_t *(*view)(const json_t *))
{
    list_walk w = {json_array(), view};
    int error = 0;

    if (w.list == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing");
    if ((error = mlreg_meta_iter(txn, db, prefix, plen, NULL, 0, list_cb, &w)) < 0) goto done;
    error = 0;
    if ((*out = json_pack("{s:O}", field, w.list)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing");

done:
    json_decref(w.list);
    return error;
}

/* A page of a log whose keys are prefix ‖ be64 seq (the promotions log, a
 * stage history): the records with seq >= since in seq order, at most
 * `limit` of them, ending early once the stored records reach
 * MLREG_PAGE_BYTES (a page always holds one). The cursor is the seq, never
 * an offset: records appended meanwhile get larger seqs, so a walk that
 * follows "next" sees every record exactly once, in order. */
typedef struct {
    json_t *list;
    json_t *(*view)(const json_t *rec, uint64_t seq);
    size_t plen;
    size_t limit, count;
    uint64_t bytes;
    int has_next;
    uint64_t next; /* seq of the first record not in the page */
} page_walk;

static int page_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    page_walk *w = payload;
    const unsigned char *k = key;
    uint64_t seq = 0;
    json_t *rec, *v;

    if (klen != w->plen + 8) return mlreg_error_set(MLREG_EIO, "metadata record key is corrupt");
    seq = mlreg_be64_get(k + w->plen);
    if (w->count >= w->limit || w->bytes >= MLREG_PAGE_BYTES) {
        w->has_next = 1;
        w->next = seq;
        return 1;
    }
    if ((rec = json_loadb(val, vlen, 0, NULL)) == NULL)
        return mlreg_error_set(MLREG_EIO, "metadata record %llu is corrupt",
                               (unsigned long long)seq);
    v = w->view(rec, seq);
    json_decref(rec);
    if (v == NULL || json_array_append_new(w->list, v) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing");
    w->count++;
    w->bytes += vlen;
    return 0;
}

/* *out = {field: [view(rec, seq)...], "next": seq|null}; see page_walk.
 * @p limit 0 is MLREG_PAGE_LIMIT_DEFAULT, more than MLREG_PAGE_LIMIT_MAX
 * is that. @p what names the log in messages. */
static int list_page(json_t **out, mlreg_meta_txn *txn, mlreg_db db, const char *prefix,
                     size_t plen, uint64_t since, size_t limit, const char *field,
                     json_t *(*view)(const json_t *, uint64_t), const char *what)
{
    page_walk w;
    char start[PKEY_CAP];
    int error = 0;

    memset(&w, 0, sizeof(w));
    if (since > INT64_MAX)
        return mlreg_error_set(MLREG_EINVALID, "%s since %llu is out of range", what,
                               (unsigned long long)since);
    if (plen + 8 > sizeof(start)) return mlreg_error_set(MLREG_EINVALID, "%s key too long", what);
    w.view = view;
    w.plen = plen;
    w.limit = limit == 0 ? MLREG_PAGE_LIMIT_DEFAULT
                         : (limit > MLREG_PAGE_LIMIT_MAX ? MLREG_PAGE_LIMIT_MAX : limit);
    if ((w.list = json_array()) == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    memcpy(start, prefix, plen);
    mlreg_be64_put(start + plen, since);
    if ((error = mlreg_meta_iter(txn, db, prefix, plen, start, plen + 8, page_cb, &w)) < 0)
        goto done;
    error = 0;
    if ((*out = json_pack("{s:O, s:o}", field, w.list, "next",
                          w.has_next ? json_integer((json_int_t)w.next) : json_null())) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing %s", what);

done:
    json_decref(w.list);
    return error;
}

/* Opens a read txn and finds the release digest hex of model@version. */
static int release_hex_read(char hex[MLREG_DIGEST_HEXLEN + 1], mlreg_meta_txn **txn_out,
                            mlreg_registry *reg, const char *model, const char *version)
{
    int error;
    json_t *rel = NULL;

    if ((error = check_names(NULL, model, version, NULL)) < 0) return error;
    if ((error = mlreg_meta_txn_begin(txn_out, mlreg_registry_meta(reg), 0)) < 0) return error;
    if ((error = release_get(&rel, *txn_out, model, version)) < 0) goto done;
    error = record_hex(hex, rel);

done:
    json_decref(rel);
    return error;
}

int mlreg_approvals_list(json_t **out, mlreg_registry *reg, const char *model, const char *version)
{
    int error;
    mlreg_meta_txn *txn = NULL;
    char hex[MLREG_DIGEST_HEXLEN + 1], prefix[MLREG_DIGEST_HEXLEN + 1];

    if ((error = release_hex_read(hex, &txn, reg, model, version)) < 0) goto done;
    memcpy(prefix, hex, sizeof(prefix)); /* with the NUL after the hex */
    error = list_prefix(out, txn, MLREG_DB_APPROVALS, prefix, sizeof(prefix), "approvals",
                        approval_view);

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

/* ---- images ---------------------------------------------------------------------- */

/* "REPO:TAG": REPO lowercase [a-z0-9._/:-] without "//" (a registry host
 * may carry a port), TAG the OCI tag grammar after the last ':' that
 * follows the last '/'. */
static int image_validate(const char *image)
{
    const char *slash, *colon;
    size_t n = strlen(image);

    if (n == 0 || n > MLREG_IMAGE_REF_MAX)
        return mlreg_error_set(MLREG_EINVALID, "image reference must be 1 to %d bytes",
                               MLREG_IMAGE_REF_MAX);
    slash = strrchr(image, '/');
    colon = strrchr(slash ? slash : image, ':');
    if (colon == NULL || colon == image || (slash && colon <= slash))
        return mlreg_error_set(MLREG_EINVALID, "image reference '%.*s' is not REPO:TAG",
                               MLREG_IMAGE_REF_MAX, image);
    for (const char *p = image; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._/:-", *p)))
            return mlreg_error_set(MLREG_EINVALID,
                                   "image repository in '%.*s' must be lowercase [a-z0-9._/:-]",
                                   MLREG_IMAGE_REF_MAX, image);
    if (strstr(image, "//") != NULL || image[0] == '/' || colon[-1] == '/')
        return mlreg_error_set(MLREG_EINVALID, "image repository in '%.*s' has an empty path part",
                               MLREG_IMAGE_REF_MAX, image);
    if (mlreg_tag_validate(colon + 1) < 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "image tag '%s' is not in the OCI tag grammar "
                               "([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127})",
                               colon + 1);
    return 0;
}

static json_t *image_view(const json_t *rec)
{
    return json_pack("{s:O, s:O, s:O, s:O}", "image", json_object_get(rec, "image"), "digest",
                     json_object_get(rec, "digest"), "time", json_object_get(rec, "time"), "actor",
                     json_object_get(rec, "actor"));
}

typedef struct {
    const char *image;
    const char *digest;
    json_t *match; /* an identical binding, when one exists */
    json_t *last;  /* the most recent binding: the current one */
} image_walk;

static int image_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    image_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *img = jstr(rec, "image"), *d = jstr(rec, "digest");

    (void)key;
    (void)klen;
    if (rec == NULL || img == NULL) {
        json_decref(rec);
        return mlreg_error_set(MLREG_EIO, "image binding is corrupt");
    }
    if (w->image != NULL && w->match == NULL && !strcmp(img, w->image) &&
        ((d == NULL && w->digest == NULL) || (d && w->digest && !strcmp(d, w->digest))))
        w->match = json_incref(rec);
    json_decref(w->last);
    w->last = rec;
    return 0;
}

static int walk_images(image_walk *w, mlreg_meta_txn *txn, const char *hex)
{
    char prefix[MLREG_DIGEST_HEXLEN + 1];
    int error;

    memcpy(prefix, hex, MLREG_DIGEST_HEXLEN);
    prefix[MLREG_DIGEST_HEXLEN] = '\0';
    error = mlreg_meta_iter(txn, MLREG_DB_IMAGES, prefix, sizeof(prefix), NULL, 0, image_cb, w);
    return error < 0 ? error : 0;
}

/* 1 when binding record @p rec binds exactly @p image and @p digest (NULL:
 * none). */
static int same_binding(const json_t *rec, const char *image, const char *digest)
{
    const char *img = jstr(rec, "image"), *d = jstr(rec, "digest");

    return img != NULL && !strcmp(img, image) &&
           ((d == NULL && digest == NULL) || (d && digest && !strcmp(d, digest)));
}

/* The stages a release holds now or has held, from the stage pointers and
 * the stage history of its model. */
typedef struct {
    const char *digest; /* "sha256:..." of the release */
    size_t skip;        /* bytes of "model\0" before the stage in a key */
    json_t *stages;     /* distinct stage names, in the order first seen */
} held_walk;

static int held_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    held_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL), *s;
    const char *d = jstr(rec, "digest"), *stage = (const char *)key + w->skip, *end;
    size_t i, slen;
    int error = 0, seen = 0;

    if (rec == NULL || d == NULL || klen <= w->skip) {
        error = mlreg_error_set(MLREG_EIO, "stage record is corrupt");
        goto done;
    }
    if (strcmp(d, w->digest)) goto done;
    end = memchr(stage, '\0', klen - w->skip);
    slen = end ? (size_t)(end - stage) : klen - w->skip;
    json_array_foreach(w->stages, i, s)
    {
        if (json_string_length(s) == slen && !memcmp(json_string_value(s), stage, slen)) seen = 1;
    }
    if (!seen && json_array_append_new(w->stages, json_stringn(stage, slen)) < 0)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading stages");

done:
    json_decref(rec);
    return error;
}

/* *out = the names of the stages of @p model that the release with digest
 * @p digest holds now or held at some time (a JSON array, owned by the
 * caller; empty when none), as @p txn sees them. */
static int stages_held(json_t **out, mlreg_meta_txn *txn, const char *model, const char *digest)
{
    char prefix[PKEY_CAP];
    size_t plen = pkey(prefix, model, "", NULL, 0, 0);
    held_walk w = {digest, plen, json_array()};
    int error = 0;

    if (w.stages == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory reading stages");
    if ((error = mlreg_meta_iter(txn, MLREG_DB_STAGES, prefix, plen, NULL, 0, held_cb, &w)) < 0 ||
        (error = mlreg_meta_iter(txn, MLREG_DB_STAGE_HISTORY, prefix, plen, NULL, 0, held_cb, &w)) <
            0) {
        json_decref(w.stages);
        return error;
    }
    *out = w.stages;
    return 0;
}

/* Who may bind an image to a release. A stage's image is the most recent
 * binding of the release it holds, so a binding to a release that a stage
 * holds, or has held (a rollback brings it back), decides what that stage
 * deploys: it needs promote:S for every such stage S, like moving S would.
 * A release no stage has held needs push. The stages are read in the
 * binding's own write transaction, so no promotion can slip in between the
 * check and the write. */
static int bind_authorize(const mlreg_identity *who, const char *model, const char *version,
                          const json_t *held)
{
    char stages[1024] = "", roles[1024] = "";
    size_t i, n = 0, sl = 0, rl = 0;
    json_t *s;

    if (json_array_size(held) == 0) return mlreg_auth_check(who, MLREG_ROLE_PUSH, NULL, model);
    json_array_foreach(held, i, s)
    {
        const char *stage = json_string_value(s);
        if (mlreg_auth_check(who, MLREG_ROLE_PROMOTE, stage, model) == 0) continue;
        if (sl < sizeof(stages))
            sl += (size_t)snprintf(stages + sl, sizeof(stages) - sl, "%s%s", n ? ", " : "", stage);
        if (rl < sizeof(roles))
            rl += (size_t)snprintf(roles + rl, sizeof(roles) - rl, "%spromote:%s", n ? ", " : "",
                                   stage);
        n++;
    }
    if (n == 0) return 0;
    return mlreg_error_set(MLREG_EFORBIDDEN,
                           "token '%s' may not bind an image to %s@%s: the release holds or has "
                           "held stage%s %s, so binding needs role%s %s (or admin)",
                           mlreg_identity_name(who), model, version, n == 1 ? "" : "s", stages,
                           n == 1 ? "" : "s", roles);
}

int mlreg_image_bind(json_t **out, int *created_out, mlreg_registry *reg, const mlreg_identity *who,
                     const char *model, const char *version, const char *image, const char *digest)
{
    int error = 0, created = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *rel = NULL, *rec = NULL, *res = NULL, *held = NULL, *details = NULL;
    image_walk w;
    mlreg_digest d;
    char hex[MLREG_DIGEST_HEXLEN + 1], key[PKEY_CAP], when[MLREG_TIME_STRLEN];
    char dstr[MLREG_DIGEST_STRLEN + 1], ref[MLREG_IMAGE_REF_MAX + MLREG_DIGEST_STRLEN + 2];
    const char *actor = mlreg_identity_name(who);
    uint64_t seq;
    int64_t now;
    mlreg_audit_event ev;

    memset(&w, 0, sizeof(w));
    if ((error = check_names(NULL, model, version, NULL)) < 0 ||
        (error = image_validate(image)) < 0)
        goto done;
    if (digest != NULL) {
        if ((error = mlreg_digest_parse(&d, digest)) < 0) goto done;
        mlreg_digest_format(dstr, &d);
        digest = dstr;
    }
    w.image = image;
    w.digest = digest;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 1)) < 0) goto done;
    if ((error = release_get(&rel, txn, model, version)) < 0) {
        /* no stage holds a release that does not exist: push decides, and a
         * caller without it does not learn whether the release exists */
        if (error == MLREG_ENOTFOUND && mlreg_auth_check(who, MLREG_ROLE_PUSH, NULL, model) < 0)
            error = MLREG_EFORBIDDEN;
        goto done;
    }
    if ((error = record_hex(hex, rel)) < 0 ||
        (error = stages_held(&held, txn, model, jstr(rel, "digest"))) < 0 ||
        (error = bind_authorize(who, model, version, held)) < 0 ||
        (error = walk_images(&w, txn, hex)) < 0)
        goto done;
    if (w.last != NULL && same_binding(w.last, image, digest)) {
        /* the binding is current already: nothing changes */
        rec = json_incref(w.last);
    } else {
        /* a new binding, or an earlier one made current again (a re-bind:
         * a new record and its own audit entry, so the change is visible) */
        now = mlreg_time_now_ns();
        mlreg_time_format(when, now);
        if ((error = mlreg_meta_counter_next(&seq, txn, SEQ_IMAGE)) < 0) goto done;
        rec = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:I, s:s}", "model", model, "version", version,
                        "image", image, "digest", digest, "time", when, "time_ns", (json_int_t)now,
                        "actor", actor);
        if (rec == NULL ||
            (w.match != NULL && (details = json_pack("{s:b}", "rebind", 1)) == NULL)) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory binding an image");
            goto done;
        }
        if ((error = put_json(txn, MLREG_DB_IMAGES, key, pkey(key, hex, NULL, NULL, 1, seq), rec)) <
            0)
            goto done;
        /* the image as stages show it: REPO:TAG, with @digest when bound */
        snprintf(ref, sizeof(ref), "%s%s%s", image, digest ? "@" : "", digest ? digest : "");
        memset(&ev, 0, sizeof(ev));
        ev.time_ns = now;
        ev.actor = actor;
        ev.action = MLREG_AUDIT_IMAGE_BIND;
        ev.result = MLREG_AUDIT_OK;
        ev.model = model;
        ev.version = version;
        ev.digest = jstr(rel, "digest");
        ev.image = ref;
        ev.details = details;
        if ((error = mlreg_audit_append_txn(NULL, txn, &ev)) < 0) goto done;
        error = mlreg_meta_txn_commit(txn);
        txn = NULL;
        if (error < 0) goto done;
        created = 1;
    }
    if ((res = image_view(rec)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering an image binding");
        goto done;
    }
    *out = res;
    *created_out = created;

done:
    mlreg_meta_txn_abort(txn);
    json_decref(w.match);
    json_decref(w.last);
    json_decref(rel);
    json_decref(rec);
    json_decref(held);
    json_decref(details);
    return error;
}

int mlreg_images_list(json_t **out, mlreg_registry *reg, const char *model, const char *version)
{
    int error;
    mlreg_meta_txn *txn = NULL;
    char hex[MLREG_DIGEST_HEXLEN + 1], prefix[MLREG_DIGEST_HEXLEN + 1];

    if ((error = release_hex_read(hex, &txn, reg, model, version)) < 0) goto done;
    memcpy(prefix, hex, sizeof(prefix));
    error = list_prefix(out, txn, MLREG_DB_IMAGES, prefix, sizeof(prefix), "images", image_view);

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

/* ---- stages ------------------------------------------------------------------------ */

/* "REPO:TAG" or "REPO:TAG@sha256:..." of the latest binding of the release
 * with digest @p digest ("sha256:..."), or JSON null. */
static int image_of(json_t **out, mlreg_meta_txn *txn, const char *digest)
{
    image_walk w;
    int error;
    const char *img, *d;
    char buf[MLREG_IMAGE_REF_MAX + MLREG_DIGEST_STRLEN + 2];

    memset(&w, 0, sizeof(w));
    if (digest == NULL || strlen(digest) != MLREG_DIGEST_STRLEN) {
        *out = json_null();
        return 0;
    }
    if ((error = walk_images(&w, txn, digest + 7)) < 0) goto done;
    if (w.last == NULL) {
        *out = json_null();
        goto done;
    }
    img = jstr(w.last, "image");
    d = jstr(w.last, "digest");
    snprintf(buf, sizeof(buf), "%s%s%s", img, d ? "@" : "", d ? d : "");
    if ((*out = json_string(buf)) == NULL) error = mlreg_error_set(MLREG_ENOMEM, "out of memory");

done:
    json_decref(w.last);
    return error;
}

/* {"model","stage","version","digest","since","by","image"} from a pointer
 * or history entry (@p e; NULL for an empty stage: nulls). */
static int stage_view(json_t **out, mlreg_meta_txn *txn, const char *model, const char *stage,
                      const json_t *e, int is_history)
{
    json_t *img = NULL;
    int error;

    if (e == NULL) {
        *out = json_pack("{s:s, s:s, s:n, s:n, s:n, s:n, s:n}", "model", model, "stage", stage,
                         "version", "digest", "since", "by", "image");
    } else {
        if ((error = image_of(&img, txn, jstr(e, "digest"))) < 0) return error;
        *out = json_pack("{s:s, s:s, s:O, s:O, s:O, s:O, s:o}", "model", model, "stage", stage,
                         "version", json_object_get(e, "version"), "digest",
                         json_object_get(e, "digest"), "since",
                         json_object_get(e, is_history ? "time" : "since"), "by",
                         json_object_get(e, is_history ? "actor" : "by"), "image", img);
    }
    if (*out == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");
    return 0;
}

int mlreg_stages_list(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                      const char *model)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *list = json_array(), *ptr = NULL, *v = NULL;
    const char *const *stages = mlreg_policy_stages(policy);

    if (list == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");
    if ((error = check_names(NULL, model, NULL, NULL)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    for (size_t i = 0; i < mlreg_policy_stage_count(policy); i++) {
        if ((error = pointer_get(&ptr, txn, model, stages[i])) < 0) goto done;
        if ((error = stage_view(&v, txn, model, stages[i], ptr, 0)) < 0) goto done;
        json_object_del(v, "model");
        json_decref(ptr);
        ptr = NULL;
        if (json_array_append_new(list, v) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");
            goto done;
        }
    }
    if ((*out = json_pack("{s:s, s:O}", "model", model, "stages", list)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");

done:
    mlreg_meta_txn_abort(txn);
    json_decref(ptr);
    json_decref(list);
    return error;
}

int mlreg_stage_get(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                    const char *model, const char *stage, int64_t at_ns)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *ptr = NULL;
    history_walk hw;
    char when[MLREG_TIME_STRLEN];

    memset(&hw, 0, sizeof(hw));
    if ((error = check_names(policy, model, NULL, stage)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if (at_ns < 0) {
        if ((error = pointer_get(&ptr, txn, model, stage)) < 0) goto done;
        if (ptr == NULL) {
            error = mlreg_error_set(MLREG_ENOTFOUND, "stage %s of %s is empty", stage, model);
            goto done;
        }
        error = stage_view(out, txn, model, stage, ptr, 0);
        goto done;
    }
    hw.at_ns = at_ns;
    if ((error = walk_history(&hw, txn, model, stage)) < 0) goto done;
    if (hw.last == NULL) {
        mlreg_time_format(when, at_ns);
        error =
            mlreg_error_set(MLREG_ENOTFOUND, "stage %s of %s was empty at %s", stage, model, when);
        goto done;
    }
    error = stage_view(out, txn, model, stage, hw.last, 1);

done:
    mlreg_meta_txn_abort(txn);
    json_decref(hw.last);
    json_decref(ptr);
    return error;
}

int mlreg_stage_digest(mlreg_digest *out, mlreg_registry *reg, const mlreg_policy *policy,
                       const char *model, const char *stage)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *ptr = NULL;
    const char *d;

    if ((error = check_names(policy, model, NULL, stage)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if ((error = pointer_get(&ptr, txn, model, stage)) < 0) goto done;
    if (ptr == NULL) {
        error = mlreg_error_set(MLREG_ENOTFOUND, "stage %s of %s is empty", stage, model);
        goto done;
    }
    d = jstr(ptr, "digest");
    if (d == NULL || mlreg_digest_parse(out, d) < 0)
        error = mlreg_error_set(MLREG_EIO, "stage pointer %s:%s is corrupt", model, stage);

done:
    mlreg_meta_txn_abort(txn);
    json_decref(ptr);
    return error;
}

/* A history entry as listed; "seq" (the key's sequence number) is the
 * cursor a client pages with. */
static json_t *history_view(const json_t *e, uint64_t seq)
{
    return json_pack("{s:I, s:O, s:O, s:O, s:O, s:O?, s:O, s:O?}", "seq", (json_int_t)seq, "time",
                     json_object_get(e, "time"), "action", json_object_get(e, "action"), "version",
                     json_object_get(e, "version"), "digest", json_object_get(e, "digest"),
                     "previous_version", json_object_get(e, "previous_version"), "actor",
                     json_object_get(e, "actor"), "reason", json_object_get(e, "reason"));
}

int mlreg_stage_history(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                        const char *model, const char *stage, uint64_t since, size_t limit)
{
    int error;
    mlreg_meta_txn *txn = NULL;
    char prefix[PKEY_CAP];

    if ((error = check_names(policy, model, NULL, stage)) < 0) return error;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) return error;
    error =
        list_page(out, txn, MLREG_DB_STAGE_HISTORY, prefix, pkey(prefix, model, stage, "", 0, 0),
                  since, limit, "history", history_view, "stage history");
    mlreg_meta_txn_abort(txn);
    return error;
}

/* A promotions-log record as listed: its "seq" is the key's. */
static json_t *promotion_view(const json_t *rec, uint64_t seq)
{
    json_t *v = json_deep_copy(rec);

    (void)seq;
    if (v == NULL) return NULL;
    json_object_del(v, "time_ns");
    json_object_del(v, "baseline");
    return v;
}

int mlreg_promotions_list(json_t **out, mlreg_registry *reg, const char *model, uint64_t since,
                          size_t limit)
{
    int error;
    mlreg_meta_txn *txn = NULL;
    char prefix[PKEY_CAP];

    if ((error = check_names(NULL, model, NULL, NULL)) < 0) return error;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) return error;
    error = list_page(out, txn, MLREG_DB_PROMOTIONS, prefix, pkey(prefix, model, "", NULL, 0, 0),
                      since, limit, "promotions", promotion_view, "promotions");
    mlreg_meta_txn_abort(txn);
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

    if ((error = release_hex_read(hex, &txn, reg, model, version)) < 0) goto done;
    if ((list = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing attestations");
        goto done;
    }
    /* keys are hex ‖ be64 seq: the walk is in seq order, oldest first */
    if ((error = mlreg_meta_iter(txn, MLREG_DB_ATTESTATIONS, hex, MLREG_DIGEST_HEXLEN, NULL, 0,
                                 attestation_cb, list)) < 0)
        goto done;
    error = 0;
    if ((*out = json_pack("{s:O}", "attestations", list)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing attestations");

done:
    mlreg_meta_txn_abort(txn);
    json_decref(list);
    return error;
}
