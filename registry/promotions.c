/* promotions.c: promotions and rollbacks (include/mlreg/promotions.h): the
 * gates' inputs, the decision and the move. Stage pointers, their history
 * and the key layout of these tables are in stages.c, approvals in
 * approvals.c, image bindings in images.c, statements and attestation
 * referrers in attestations.c (promotions_internal.h binds them).
 *
 * The one rule that matters: a stage pointer moves only inside
 * promote_apply() / rollback_apply(), in the same LMDB write transaction
 * that read the baseline, the signatures, the stage history and the
 * approvals the decision was made on. LMDB admits one writer at a time, so
 * two promotions racing on one stage run one after the other, and the
 * second is evaluated against the release the first moved in. Reads of
 * other modules' databases (releases, signatures, keys) go through the same
 * transaction so the decision sees one consistent snapshot.
 *
 * Every change is an apply function run by mlreg_registry__mutate() (mutate.c),
 * which records its audit entry in its transaction too; a move also records
 * its signed statement there (mlreg_promotions__record_move()).
 */
#include "mlreg/promotions.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/metrics.h"
#include "mlreg/keyring.h"
#include "mlreg/tables.h"
#include "evaluations_internal.h"
#include "promotions_internal.h"
#include "registry_internal.h"

#define SEQ_PROMOTION "promotion_seq"

/* ---- what the gates read ------------------------------------------------------- */

const char *mlreg_promotions__pusher_of(const json_t *rec)
{
    const char *p = jstr(rec, "pushed_by");
    return p ? p : MLREG_KEYRING_ACTOR_LOCAL;
}

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
    out->g.dataset_digest = jstr(rec, "dataset_digest");
    out->g.eval_code_digest = jstr(rec, "eval_code_digest");
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
        mlreg_registry__metric_ci(&out->metrics[i], json_object_get(rec, "metric_intervals"));
        i++;
    }
    out->g.metrics = out->metrics;
    out->g.n_metrics = i;
    return 0;
}

/* An evaluator's evaluation as the gates see it (none: e NULL). */
typedef struct {
    mlreg_evaluation *e;
    mlreg_gate_attestation att;
    mlreg_gate_release g;
} gate_eval;

/* The gates' view of @p x, or NULL when no evaluation counted. */
static const mlreg_gate_release *gate_eval_rel(const gate_eval *x)
{
    return x->e != NULL ? &x->g : NULL;
}

/* The newest evaluation of release @p rec (manifest digest @p hex) by a
 * trusted evaluator key, naming exactly @p dd and @p cd where not NULL,
 * into @p out (out->e stays NULL when none counts). */
/* A digest for mlreg_registry__evaluation_newest() that must match as it
 * is: a digest the candidate does not name must be absent on the baseline's
 * evaluation too (""), not "any" (NULL). */
static const char *exact_digest(const char *d)
{
    return d != NULL ? d : "";
}

static int gate_eval_of(gate_eval *out, mlreg_registry *reg, mlreg_meta_txn *txn, const json_t *rec,
                        const char *hex, const char *dd, const char *cd)
{
    mlreg_evaluation *e;
    int error;

    memset(out, 0, sizeof(*out));
    error =
        mlreg_registry__evaluation_newest(&out->e, mlreg_registry_keyring(reg), txn, hex, dd, cd);
    if (error == MLREG_ENOTFOUND) return 0;
    if (error < 0) return error;
    e = out->e;
    out->att.key_id = e->key_id;
    out->att.key_name = e->key_name;
    out->att.seq = e->seq;
    out->att.evaluated_at = e->evaluated_at;
    out->g.version = jstr(rec, "version");
    out->g.has_eval_report = 1;
    out->g.metrics = e->metrics;
    out->g.n_metrics = e->n_metrics;
    out->g.dataset = e->dataset;
    out->g.dataset_digest = e->dataset_digest[0] ? e->dataset_digest : NULL;
    out->g.eval_code_digest = e->eval_code_digest[0] ? e->eval_code_digest : NULL;
    out->g.evaluation = &out->att;
    return 0;
}

/* 1 when @p x names a dataset or eval code digest. */
static int rel_names_digests(const mlreg_gate_release *x)
{
    return x->dataset_digest != NULL || x->eval_code_digest != NULL;
}

/* 1 when @p a and @p b name the same digests (NULL equal to NULL). */
static int rel_same_digests(const mlreg_gate_release *a, const mlreg_gate_release *b)
{
    const char *x[2] = {a->dataset_digest, a->eval_code_digest};
    const char *y[2] = {b->dataset_digest, b->eval_code_digest};

    for (int i = 0; i < 2; i++)
        if ((x[i] == NULL) != (y[i] == NULL) || (x[i] != NULL && strcmp(x[i], y[i]) != 0)) return 0;
    return 1;
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
    int error;

    memset(out, 0, sizeof(*out));
    out->kr = mlreg_registry_keyring(reg);
    out->txn = txn;
    error = mlreg_registry__signatures_foreach(txn, hex, sig_count_cb, out);
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
    if (json_is_true(json_object_get(rec, "override"))) {
        /* an approval of an override is not an approval of the release */
    } else if (!strcmp(who, c->pusher)) {
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

/* The approvals of an override that count for one break-glass promotion:
 * live ones (mlreg_promotions__override_live) by neither the promoting
 * identity nor the pusher. */
typedef struct {
    const char *pusher;
    const char *actor;
    int64_t since_ns, now;
    int own; /* the promoting identity approved its own override */
    json_t *approvers;
} override_count;

static int override_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    override_count *c = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *who = jstr(rec, "approver");
    int error = 0;

    (void)key;
    (void)klen;
    if (who == NULL) {
        error = mlreg_error_set(MLREG_EIO, "approval record is corrupt");
    } else if (mlreg_promotions__override_live(rec, c->since_ns, c->now)) {
        if (!strcmp(who, c->actor))
            c->own = 1;
        else if (strcmp(who, c->pusher) &&
                 json_array_append_new(c->approvers, json_string(who)) < 0)
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory counting approvals");
    }
    json_decref(rec);
    return error;
}

/* ---- promote ------------------------------------------------------------------- */

/* Appends a promotions-log record; *seq_out its sequence number. */
static int log_promotion(uint64_t *seq_out, json_t **rec_out, mlreg_meta_txn *txn,
                         const char *model, const char *action, const json_t *cand,
                         const char *stage, const json_t *from, int passed, const char *reason,
                         const json_t *rules, const char *actor, int64_t now, const json_t *extra)
{
    int error = 0;
    uint64_t seq;
    char key[PROMOTIONS_KEY_CAP], when[MLREG_TIME_STRLEN];
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
    if (rec == NULL || (extra != NULL && json_object_update(rec, (json_t *)extra) < 0)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording a promotion");
        goto done;
    }
    if ((error = mlreg_promotions__put_json(txn, MLREG_DB_PROMOTIONS, key,
                                            mlreg_promotions__key(key, model, NULL, NULL, 1, seq),
                                            rec)) < 0)
        goto done;
    *seq_out = seq;
    *rec_out = rec;
    rec = NULL;

done:
    json_decref(rec);
    return error;
}

static json_t *promotion_summary(const json_t *rec)
{
    if (rec == NULL) return json_null();
    return json_pack("{s:O, s:O, s:O, s:O}", "seq", json_object_get(rec, "seq"), "time",
                     json_object_get(rec, "time"), "actor", json_object_get(rec, "actor"), "reason",
                     json_object_get(rec, "reason"));
}

/* A promotion: its request and, once decided, everything it recorded or
 * answers with (owned; promote_state_clear() frees it). */
typedef struct {
    mlreg_registry *reg;
    const mlreg_policy *policy;
    const mlreg_promote_req *req;
    const mlreg_rule *rules;
    size_t nrules;
    int idx;
    int passed;
    int held; /* refused because rules hold (none failed): no comparable baseline numbers */
    json_t *cand, *base, *table, *logrec;
    gate_rel gc, gb;
    /* evaluators' evaluations: the candidate's newest, the baseline's newest,
     * the baseline's on the digests of the candidate's pushed report and on
     * those of the candidate's evaluation */
    gate_eval ec, eb, ebp, ebe;
    approval_count ac;
    history_walk hw;
    int64_t now;       /* when the decision is made (the change's time) */
    int want_override; /* asked for as a break-glass promotion */
    /* break-glass: moved by an override; an override asked for and refused;
     * asked for while every rule passed (an ordinary promotion) */
    int override, override_requested, override_unneeded;
    json_t *ov_approvers;   /* the approvers of the override that counted */
    const char *from_stage; /* the stage it came through, when the release did */
    char refusal[PROMOTIONS_KEY_CAP + MLREG_WITHDRAWN_NOTE_MAX];
} promote_state;

static void promote_state_clear(promote_state *s)
{
    free(s->gc.metrics);
    free(s->gb.metrics);
    mlreg_registry__evaluation_free(s->ec.e);
    mlreg_registry__evaluation_free(s->eb.e);
    mlreg_registry__evaluation_free(s->ebp.e);
    mlreg_registry__evaluation_free(s->ebe.e);
    json_decref(s->hw.last);
    json_decref(s->ac.approvers);
    json_decref(s->cand);
    json_decref(s->base);
    json_decref(s->table);
    json_decref(s->logrec);
    json_decref(s->ov_approvers);
}

/* Back to the inputs of the request: a change that lost its log seq to
 * another node is applied again, from scratch, on the new state. */
static void promote_state_reset(promote_state *s)
{
    int64_t at_ns = s->hw.at_ns;

    promote_state_clear(s);
    memset(&s->gc, 0, sizeof(s->gc));
    memset(&s->gb, 0, sizeof(s->gb));
    memset(&s->ec, 0, sizeof(s->ec));
    memset(&s->eb, 0, sizeof(s->eb));
    memset(&s->ebp, 0, sizeof(s->ebp));
    memset(&s->ebe, 0, sizeof(s->ebe));
    memset(&s->ac, 0, sizeof(s->ac));
    memset(&s->hw, 0, sizeof(s->hw));
    s->hw.at_ns = at_ns;
    s->cand = s->base = s->table = s->logrec = s->ov_approvers = NULL;
    s->passed = s->held = 0;
    s->override = s->override_requested = s->override_unneeded = 0;
    s->from_stage = NULL;
    s->refusal[0] = '\0';
}

/* Appends "; " and the printf text to s->refusal. */
static void refusal_add(promote_state *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void refusal_add(promote_state *s, const char *fmt, ...)
{
    size_t n = strlen(s->refusal);
    va_list ap;

    if (n + 2 >= sizeof(s->refusal)) return;
    memcpy(s->refusal + n, "; ", 3);
    n += 2;
    va_start(ap, fmt);
    vsnprintf(s->refusal + n, sizeof(s->refusal) - n, fmt, ap);
    va_end(ap);
}

/* A break-glass promotion whose rules failed (the release not withdrawn):
 * it moves when no failing rule is `signed` and an approval of the override
 * by another identity counts; otherwise s->refusal says which it lacks. A
 * signature is the one thing an override never stands in for: it is what
 * says the bytes are the ones the release keys vouched for, and a
 * break-glass fixes a gate's judgement, not the provenance of what runs. */
static int override_decide(promote_state *s, mlreg_meta_txn *txn, const char *hex)
{
    const mlreg_promote_req *req = s->req;
    const char *signed_name = mlreg_rule_type_name(MLREG_RULE_SIGNED);
    override_count oc;
    json_t *row;
    size_t i;
    int error = 0, unsigned_bytes = 0;

    json_array_foreach(s->table, i, row)
    {
        const char *type = jstr(row, "type");
        if (!json_is_true(json_object_get(row, "passed")) && type && !strcmp(type, signed_name))
            unsigned_bytes = 1;
    }
    if (unsigned_bytes) {
        refusal_add(s, "override refused: a failing `signed` rule is never overridden (sign the "
                       "release with trusted release keys)");
        return 0;
    }
    memset(&oc, 0, sizeof(oc));
    oc.pusher = mlreg_promotions__pusher_of(s->cand);
    oc.actor = req->actor;
    oc.now = s->now;
    if ((error = mlreg_promotions__stage_since(&oc.since_ns, txn, req->model, req->stage)) < 0)
        return error;
    if ((oc.approvers = json_array()) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory counting approvals");
    if ((error = mlreg_promotions__approvals_foreach(txn, hex, req->stage, override_cb, &oc)) < 0) {
        json_decref(oc.approvers);
        return error;
    }
    if (json_array_size(oc.approvers) == 0) {
        refusal_add(s,
                    "override refused: it needs an approval of the override by another "
                    "identity, neither you nor the pusher, recorded since %s last moved and "
                    "within %d hours (mlreg approve %s@%s --for %s --override --reason TEXT)%s",
                    req->stage, MLREG_OVERRIDE_APPROVAL_TTL_S / 3600, req->model, req->version,
                    req->stage, oc.own ? "; your own approval does not count" : "");
        json_decref(oc.approvers);
        return 0;
    }
    s->ov_approvers = oc.approvers;
    s->override = 1;
    s->passed = 1;
    return 0;
}

/* Evaluates the gates of a promotion on what @p txn sees; every input is
 * read inside it. Fills s->cand, base, table, passed, refusal. */
static int promote_decide(promote_state *s, mlreg_meta_txn *txn)
{
    const mlreg_promote_req *req = s->req;
    int error = 0;
    json_t *ptr = NULL, *row;
    mlreg_gate_input in;
    sig_count sc;
    char hex[MLREG_DIGEST_HEXLEN + 1], bhex[MLREG_DIGEST_HEXLEN + 1];
    size_t failed = 0, held = 0, i;
    int want_ev = 0, want_cmp = 0;

    memset(&in, 0, sizeof(in));
    if ((error = mlreg_promotions__release_get(&s->cand, txn, req->model, req->version)) < 0)
        goto done;
    if ((error = mlreg_promotions__record_hex(hex, s->cand)) < 0) goto done;
    if ((error = mlreg_promotions__pointer_get(&ptr, txn, req->model, req->stage)) < 0) goto done;
    if (ptr != NULL) {
        const char *bv = jstr(ptr, "version");
        if (bv == NULL) {
            error = mlreg_error_set(MLREG_EIO, "stage pointer %s:%s is corrupt", req->model,
                                    req->stage);
            goto done;
        }
        if (json_equal(json_object_get(ptr, "digest"), json_object_get(s->cand, "digest"))) {
            error = mlreg_error_set(MLREG_EDENIED, "%s@%s is already in stage %s", req->model,
                                    req->version, req->stage);
            goto done;
        }
        if ((error = mlreg_promotions__release_get(&s->base, txn, req->model, bv)) < 0) goto done;
    }

    /* gather every input inside this transaction */
    if ((error = gate_rel_of(&s->gc, s->cand)) < 0) goto done;
    in.candidate = &s->gc.g;
    if (s->base != NULL) {
        if ((error = gate_rel_of(&s->gb, s->base)) < 0) goto done;
        in.baseline = &s->gb.g;
    }
    /* evaluators' numbers: only the lookups the rules need, a rule with
     * source evaluator or a comparison on other digests (read in this
     * transaction too; a promotion without such rules reads none) */
    for (i = 0; i < s->nrules; i++) {
        if (!mlreg_rule_is_metric(s->rules[i].type)) continue;
        if (s->rules[i].source == MLREG_SOURCE_EVALUATOR)
            want_ev = 1;
        else if (s->rules[i].type != MLREG_RULE_MIN && s->rules[i].type != MLREG_RULE_MAX)
            want_cmp = 1;
    }
    if (want_ev && (error = gate_eval_of(&s->ec, s->reg, txn, s->cand, hex, NULL, NULL)) < 0)
        goto done;
    in.candidate_evaluation = gate_eval_rel(&s->ec);
    if (s->base != NULL && (want_ev || want_cmp)) {
        const mlreg_gate_release *ce = in.candidate_evaluation;
        if ((error = mlreg_promotions__record_hex(bhex, s->base)) < 0 ||
            (want_ev && (error = gate_eval_of(&s->eb, s->reg, txn, s->base, bhex, NULL, NULL)) < 0))
            goto done;
        in.baseline_evaluation = gate_eval_rel(&s->eb);
        if (want_cmp && rel_names_digests(&s->gc.g) && !rel_same_digests(&s->gc.g, &s->gb.g) &&
            (error = gate_eval_of(&s->ebp, s->reg, txn, s->base, bhex,
                                  exact_digest(s->gc.g.dataset_digest),
                                  exact_digest(s->gc.g.eval_code_digest))) < 0)
            goto done;
        in.baseline_evaluation_pusher = gate_eval_rel(&s->ebp);
        if (ce != NULL && rel_names_digests(ce) &&
            (error =
                 gate_eval_of(&s->ebe, s->reg, txn, s->base, bhex, exact_digest(ce->dataset_digest),
                              exact_digest(ce->eval_code_digest))) < 0)
            goto done;
        in.baseline_evaluation_evaluator = gate_eval_rel(&s->ebe);
    }
    if ((error = count_signatures(&sc, s->reg, txn, hex)) < 0) goto done;
    in.signed_count = sc.count;
    in.signed_other_count = sc.other;
    in.signed_other_roles = sc.other > 0 ? sc.roles : NULL;
    if (s->idx > 0) {
        json_t *pp = NULL;
        in.previous_stage = mlreg_policy_stages(s->policy)[s->idx - 1];
        if ((error = mlreg_promotions__pointer_get(&pp, txn, req->model, in.previous_stage)) < 0)
            goto done;
        in.in_previous_stage = pp != NULL && json_equal(json_object_get(pp, "digest"),
                                                        json_object_get(s->cand, "digest"));
        json_decref(pp);
        s->hw.digest = jstr(s->cand, "digest");
        if ((error = mlreg_promotions__walk_history(&s->hw, txn, req->model, in.previous_stage)) <
            0)
            goto done;
        if (s->hw.found) in.in_previous_stage = 1;
    }
    s->ac.pusher = mlreg_promotions__pusher_of(s->cand);
    if ((s->ac.approvers = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory counting approvals");
        goto done;
    }
    if ((error = mlreg_promotions__approvals_foreach(txn, hex, req->stage, approval_cb, &s->ac)) <
        0)
        goto done;
    error = 0;
    in.approvals = s->ac.count;
    in.pusher_approved = s->ac.pusher_approved;
    in.now_ns = s->now; /* the time the move is recorded at */
    if ((error = mlreg_promotions__last_promotion_ns(&in.last_promotion_ns, txn, req->model,
                                                     req->stage)) < 0)
        goto done;
    s->from_stage = in.in_previous_stage ? in.previous_stage : NULL;

    if ((error = mlreg_gates_evaluate(&s->table, &s->passed, s->rules, s->nrules, &in)) < 0)
        goto done;
    json_array_foreach(s->table, i, row)
    {
        const char *oc = jstr(row, "outcome");
        if (oc != NULL && !strcmp(oc, "hold"))
            held++;
        else if (!json_is_true(json_object_get(row, "passed")))
            failed++;
    }
    if (failed == 0 && held > 0) {
        s->held = 1;
        snprintf(s->refusal, sizeof(s->refusal),
                 "promotion of %s@%s to %s held: %zu of %zu gate rules hold (no comparable "
                 "baseline numbers): re-evaluate the baseline",
                 req->model, req->version, req->stage, held, json_array_size(s->table));
    } else
        snprintf(s->refusal, sizeof(s->refusal),
                 "promotion of %s@%s to %s refused: %zu of %zu gate rules failed%s", req->model,
                 req->version, req->stage, failed, json_array_size(s->table),
                 held ? " (more hold: no comparable baseline numbers)" : "");
    if (json_object_get(s->cand, "withdrawn") != NULL) {
        /* withdrawn: refused whatever the gates say, and recorded as a
         * refusal with the table they made (withdraw.c) */
        char note[MLREG_WITHDRAWN_NOTE_MAX];
        mlreg_promotions__withdrawn_note(note, sizeof(note), s->cand);
        s->passed = s->held = 0;
        snprintf(s->refusal, sizeof(s->refusal), "promotion of %s@%s to %s refused: %s", req->model,
                 req->version, req->stage, note);
    } else if (s->want_override && !s->passed) {
        if ((error = override_decide(s, txn, hex)) < 0) goto done;
    }
    if (s->passed) s->held = 0; /* moved by an override */
    if (s->want_override && !s->passed) s->override_requested = 1;
    if (s->want_override && s->passed && !s->override) s->override_unneeded = 1;

done:
    json_decref(ptr);
    return error;
}

/* The gate table of an entry as mlreg_gates_evaluate() made it: the entry
 * holds each real as the shortest string that reads back to it
 * (mlreg_audit_json_no_reals), so strtod() restores the very double, and
 * canonical JSON sorted the members, so each row gets back the member order
 * of mlreg_gates_evaluate()'s rows (kept here in step with gates.c; the
 * replay test compares the stored promotion records byte for byte). */
static json_t *gates_with_reals(const json_t *gates)
{
    static const char *const order[] = {"rule",       "type",
                                        "metric",     "threshold",
                                        "candidate",  "baseline_version",
                                        "baseline",   "delta",
                                        "passed",     "detail",
                                        "margin",     "bound",
                                        "outcome",    "source",
                                        "evaluation", "baseline_evaluation",
                                        "digests"};
    static const char *const numbers[] = {"threshold", "candidate", "baseline", "delta", "margin"};
    json_t *table = json_array(), *row, *v, *copy = NULL;
    const char *k;
    size_t i, j;

    if (table == NULL) return NULL;
    json_array_foreach(gates, i, row)
    {
        if ((copy = json_object()) == NULL) goto fail;
        for (j = 0; j < sizeof(order) / sizeof(order[0]); j++) {
            json_t *val = json_object_get(row, order[j]);
            int is_number = 0;
            if (val == NULL) continue;
            for (size_t n = 0; n < sizeof(numbers) / sizeof(numbers[0]); n++)
                is_number |= !strcmp(order[j], numbers[n]);
            val = is_number && json_is_string(val) ? json_real(strtod(json_string_value(val), NULL))
                                                   : json_incref(val);
            if (json_object_set_new(copy, order[j], val) < 0) goto fail;
        }
        json_object_foreach(row, k, v)
        {
            if (json_object_get(copy, k) == NULL && json_object_set(copy, k, v) < 0) goto fail;
        }
        if (json_array_append_new(table, copy) < 0) {
            copy = NULL;
            goto fail;
        }
        copy = NULL;
    }
    return table;

fail:
    json_decref(copy);
    json_decref(table);
    return NULL;
}

/* The {"version",...} release record named by member @p key of @p obj, or
 * *out = NULL when the member is null or absent. */
static int release_named(json_t **out, mlreg_meta_txn *txn, const char *model, const json_t *obj,
                         const char *key)
{
    const char *v = jstr(json_object_get(obj, key), "version");

    *out = NULL;
    return v != NULL ? mlreg_promotions__release_get(out, txn, model, v) : 0;
}

/* A promotion as its entry recorded it: the gates are not evaluated again,
 * their table, the result, the approvers and the baseline are the entry's. */
static int promote_from_entry(promote_state *s, mlreg_meta_txn *txn, const json_t *e)
{
    const json_t *details = json_object_get(e, "details");
    int error;

    if ((error = mlreg_promotions__release_get(&s->cand, txn, s->req->model, s->req->version)) <
            0 ||
        (error = release_named(&s->base, txn, s->req->model, details, "baseline")) < 0)
        return error;
    s->passed = !strcmp(jstr(e, "result") ? jstr(e, "result") : "", MLREG_AUDIT_OK);
    s->from_stage = jstr(details, "from_stage");
    s->override = s->passed && json_is_true(json_object_get(details, "override"));
    s->override_requested = json_is_true(json_object_get(details, "override_requested"));
    s->held = !s->passed && json_is_true(json_object_get(details, "held"));
    if (s->override) {
        const json_t *oa = json_object_get(details, "override_approvers");
        if (!json_is_array(oa) || json_array_size(oa) == 0)
            return mlreg_error_set(MLREG_EINVALID, "override promotion entry names no approvers");
        if ((s->ov_approvers = json_deep_copy(oa)) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory replaying a promotion");
    }
    s->table = gates_with_reals(json_object_get(e, "gates"));
    s->ac.approvers = json_object_get(e, "approvers")
                          ? json_deep_copy(json_object_get(e, "approvers"))
                          : json_array();
    if (s->table == NULL || s->ac.approvers == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory replaying a promotion");
    snprintf(s->refusal, sizeof(s->refusal), "%s", jstr(e, "reason") ? jstr(e, "reason") : "");
    return 0;
}

/* The members a break-glass move adds to its promotions-log and stage-history
 * records (new reference), or NULL for an ordinary one (*out). */
static int override_members(json_t **out, const promote_state *s)
{
    *out = NULL;
    if (s->held) {
        /* a refusal that rules hold: flagged in its promotions-log record */
        *out = json_pack("{s:b}", "held", 1);
        return *out ? 0 : mlreg_error_set(MLREG_ENOMEM, "out of memory recording a promotion");
    }
    if (!s->override) return 0;
    *out = json_pack("{s:b, s:s?, s:O}", "override", 1, "override_reason", s->req->reason,
                     "override_approvers", s->ov_approvers);
    return *out ? 0 : mlreg_error_set(MLREG_ENOMEM, "out of memory recording an override");
}

/* Decides and records a promotion: passed, it moves the pointer and records
 * the move with its statement; refused, it is recorded all the same. */
static int promote_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    promote_state *s = arg;
    const mlreg_promote_req *req = s->req;
    int64_t now = mlreg_registry__mutation_time(mut);
    uint64_t pseq = 0;
    promo_event pe;
    json_t *extra = NULL;
    int error;

    promote_state_reset(s);
    s->now = now;
    if (mlreg_registry__mutation_source(mut) != NULL)
        error = promote_from_entry(s, txn, mlreg_registry__mutation_source(mut));
    else
        error = promote_decide(s, txn);
    if (error < 0) return error;
    memset(&pe, 0, sizeof(pe));
    pe.action = MLREG_AUDIT_PROMOTE;
    pe.result = s->passed ? MLREG_AUDIT_OK : MLREG_AUDIT_REFUSED;
    pe.model = req->model;
    pe.cand = s->cand;
    pe.stage = req->stage;
    pe.from_stage = s->from_stage;
    pe.base = s->base;
    pe.gates = s->table;
    pe.approvers = s->ac.approvers;
    pe.reason = s->passed ? req->reason : s->refusal;
    pe.request_reason = s->passed ? NULL : req->reason;
    pe.actor = req->actor;
    pe.now = now;
    pe.override = s->override;
    pe.override_requested = s->override_requested;
    pe.held = s->held;
    pe.override_approvers = s->ov_approvers;
    if ((error = override_members(&extra, s)) < 0) return error;
    if ((error = log_promotion(&pseq, &s->logrec, txn, req->model, "promote", s->cand, req->stage,
                               s->base, s->passed, req->reason, s->table, req->actor, now, extra)) <
        0)
        goto done;
    if (s->passed) {
        if ((error = mlreg_promotions__move_pointer(txn, req->model, req->stage, "promote", s->cand,
                                                    s->base, req->reason, req->actor, now, pseq,
                                                    extra)) < 0)
            goto done;
        error = mlreg_promotions__record_move(s->reg, mut, txn, &pe);
        goto done;
    }
    error = mlreg_promotions__audit(NULL, mut, &pe);

done:
    json_decref(extra);
    return error;
}

/* Counts a promotion evaluated for real (not a dry run) in
 * mlreg_promotions_total{stage,result}. The stage is a configured one
 * (checked above), so the label set stays bounded; promotions are rare
 * enough to look the series up each time. */
static void count_promotion(const char *stage, int passed)
{
    const char *labels[] = {"stage", stage, "result", passed ? "passed" : "refused"};

    mlreg_metrics_add(mlreg_metrics_counter("mlreg_promotions_total",
                                            "Promotions evaluated (dry runs not counted), by "
                                            "target stage and result (passed, refused).",
                                            labels, 2),
                      1);
    mlreg_error_clear();
}

static int promote_run(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                       const mlreg_promote_req *req, int override)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *res = NULL;
    promote_state s;

    memset(&s, 0, sizeof(s));
    s.reg = reg;
    s.policy = policy;
    s.req = req;
    s.hw.at_ns = -1;
    s.want_override = override;
    if ((error = mlreg_promotions__check_names(policy, req->model, req->version, req->stage)) < 0 ||
        (error = mlreg_promotions__check_text(req->reason, "reason")) < 0)
        goto done;
    if (override && (error = mlreg_promotions__reason_check(req->reason)) < 0) {
        error = mlreg_error_set(error,
                                "an override needs a reason: say why the gates are bypassed "
                                "(at most %d bytes of text)",
                                MLREG_REASON_MAX);
        goto done;
    }
    s.idx = mlreg_policy_stage_index(policy, req->stage);
    if ((error = mlreg_policy_rules(&s.rules, &s.nrules, policy, req->model, req->stage)) < 0)
        goto done;
    if (req->dry_run) {
        /* evaluate only, on a snapshot: nothing moves, nothing is recorded */
        if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
        s.now = mlreg_time_now_ns();
        error = promote_decide(&s, txn);
    } else {
        error = mlreg_registry__mutate_grouped(NULL, reg, promote_apply, &s);
    }
    if (error < 0) goto done;
    error = 0;
    if (!req->dry_run) count_promotion(req->stage, s.passed);

    res = json_pack("{s:s, s:O, s:O, s:s, s:b, s:b, s:b, s:o, s:O, s:o}", "model", req->model,
                    "version", json_object_get(s.cand, "version"), "digest",
                    json_object_get(s.cand, "digest"), "to", req->stage, "dry_run", req->dry_run,
                    "passed", s.passed, "moved", s.passed && !req->dry_run, "baseline",
                    s.base ? json_pack("{s:O, s:O}", "version", json_object_get(s.base, "version"),
                                       "digest", json_object_get(s.base, "digest"))
                           : json_null(),
                    "rules", s.table, "promotion", promotion_summary(s.logrec));
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering a promotion");
        goto done;
    }
    if (json_object_get(s.cand, "withdrawn") != NULL &&
        json_object_set(res, "withdrawn", json_object_get(s.cand, "withdrawn")) < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering a promotion");
        goto done;
    }
    if (json_object_set_new(res, "held", json_boolean(s.held)) < 0 ||
        json_object_set_new(res, "override", json_boolean(s.override)) < 0 ||
        (s.override && (json_object_set_new(res, "override_reason", json_string(req->reason)) < 0 ||
                        json_object_set(res, "override_approvers", s.ov_approvers) < 0)) ||
        (s.override_unneeded &&
         json_object_set_new(res, "note",
                             json_string("every gate rule passed: an ordinary promotion, not "
                                         "recorded as an override")) < 0)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering a promotion");
        goto done;
    }
    if (!s.passed) error = mlreg_error_set(MLREG_EGATE, "%s", s.refusal);
    *out = res;
    res = NULL;

done:
    mlreg_meta_txn_abort(txn);
    promote_state_clear(&s);
    json_decref(res);
    return error;
}

int mlreg_promote(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                  const mlreg_promote_req *req)
{
    return promote_run(out, reg, policy, req, 0);
}

int mlreg_promote_override(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                           const mlreg_promote_req *req)
{
    return promote_run(out, reg, policy, req, 1);
}

/* ---- rollback ------------------------------------------------------------------- */

/* A rollback: its request and what it found and recorded (owned). */
typedef struct {
    mlreg_registry *reg;
    const char *model;
    const char *stage;
    const char *to_version;
    const char *reason;
    const char *actor;
    const mlreg_rule *rules;
    size_t nrules;
    int refused;
    json_t *cur, *target, *logrec;
    history_walk hw;
    char refusal[PROMOTIONS_KEY_CAP + 128];
} rollback_state;

/* Finds the release to roll back to and re-judges its signatures; a
 * refusal is recorded like a move. */
static int rollback_decide(rollback_state *s, mlreg_meta_txn *txn)
{
    int error = 0;
    json_t *ptr = NULL;
    sig_count sc;
    const char *tv;
    char hex[MLREG_DIGEST_HEXLEN + 1];
    long need = 0, have = 0;

    if ((error = mlreg_promotions__pointer_get(&ptr, txn, s->model, s->stage)) < 0) goto done;
    if (ptr == NULL) {
        error = mlreg_error_set(MLREG_ENOTFOUND, "stage %s of %s is empty: nothing to roll back",
                                s->stage, s->model);
        goto done;
    }
    if ((error = mlreg_promotions__release_get(
             &s->cur, txn, s->model, jstr(ptr, "version") ? jstr(ptr, "version") : "")) < 0)
        goto done;
    if (s->to_version != NULL) {
        if (!strcmp(s->to_version, jstr(s->cur, "version"))) {
            error = mlreg_error_set(MLREG_EDENIED, "%s@%s holds stage %s now", s->model,
                                    s->to_version, s->stage);
            goto done;
        }
        error = mlreg_promotions__release_get(&s->target, txn, s->model, s->to_version);
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_EDENIED,
                                    "%s@%s is not a release, so it never held stage "
                                    "%s",
                                    s->model, s->to_version, s->stage);
        if (error < 0) goto done;
        s->hw.digest = jstr(s->target, "digest");
        if ((error = mlreg_promotions__walk_history(&s->hw, txn, s->model, s->stage)) < 0)
            goto done;
        if (!s->hw.found) {
            error = mlreg_error_set(MLREG_EDENIED, "%s@%s never held stage %s", s->model,
                                    s->to_version, s->stage);
            goto done;
        }
    } else {
        if ((error = mlreg_promotions__walk_history(&s->hw, txn, s->model, s->stage)) < 0)
            goto done;
        tv = jstr(s->hw.last, "previous_version");
        if (tv == NULL) {
            error = mlreg_error_set(MLREG_EDENIED, "no earlier release held stage %s of %s",
                                    s->stage, s->model);
            goto done;
        }
        if ((error = mlreg_promotions__release_get(&s->target, txn, s->model, tv)) < 0) goto done;
    }
    if (json_object_get(s->target, "withdrawn") != NULL) {
        char what[PROMOTIONS_KEY_CAP + 64];
        snprintf(what, sizeof(what), "stage %s of %s cannot roll back to %s@%s", s->stage, s->model,
                 s->model, jstr(s->target, "version"));
        error = mlreg_promotions__refuse_withdrawn(s->target, what);
        goto done;
    }

    /* signatures are re-judged against the keyring now */
    for (size_t i = 0; i < s->nrules; i++)
        if (s->rules[i].type == MLREG_RULE_SIGNED && s->rules[i].min_count > need)
            need = s->rules[i].min_count;
    if (need > 0) {
        if ((error = mlreg_promotions__record_hex(hex, s->target)) < 0) goto done;
        if ((error = count_signatures(&sc, s->reg, txn, hex)) < 0) goto done;
        have = sc.count;
        s->refused = have < need;
    }
    snprintf(s->refusal, sizeof(s->refusal),
             "rollback of %s to %s@%s refused: %ld signature%s by trusted release keys count "
             "now, the stage requires %ld",
             s->stage, s->model, jstr(s->target, "version"), have, have == 1 ? "" : "s", need);

done:
    json_decref(ptr);
    return error;
}

/* A rollback as its entry recorded it: from the release it names as
 * previous to its subject, refused or not as it says. */
static int rollback_from_entry(rollback_state *s, mlreg_meta_txn *txn, const json_t *e)
{
    const char *v = jstr(json_object_get(e, "subject"), "version");
    int error;

    if ((error = release_named(&s->cur, txn, s->model, json_object_get(e, "details"), "previous")) <
            0 ||
        (error = mlreg_promotions__release_get(&s->target, txn, s->model, v ? v : "")) < 0)
        return error;
    if (s->cur == NULL)
        return mlreg_error_set(MLREG_EINVALID, "rollback entry names no previous release");
    s->refused = strcmp(jstr(e, "result") ? jstr(e, "result") : "", MLREG_AUDIT_OK) != 0;
    snprintf(s->refusal, sizeof(s->refusal), "%s", jstr(e, "reason") ? jstr(e, "reason") : "");
    return 0;
}

/* Finds the release to roll back to and re-judges its signatures (or, on a
 * replay, takes both from the entry); a refusal is recorded like a move. */
static int rollback_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    rollback_state *s = arg;
    int error = 0;
    uint64_t pseq = 0;
    int64_t now = mlreg_registry__mutation_time(mut);
    promo_event pe;

    /* from the request's inputs, also when run again after a lost log seq */
    json_decref(s->cur);
    json_decref(s->target);
    json_decref(s->logrec);
    json_decref(s->hw.last);
    s->cur = s->target = s->logrec = s->hw.last = NULL;
    s->hw.digest = NULL; /* pointed into the target of the run before */
    s->hw.found = 0;
    s->refused = 0;
    s->refusal[0] = '\0';
    if (mlreg_registry__mutation_source(mut) != NULL)
        error = rollback_from_entry(s, txn, mlreg_registry__mutation_source(mut));
    else
        error = rollback_decide(s, txn);
    if (error < 0) return error;
    memset(&pe, 0, sizeof(pe));
    pe.action = MLREG_AUDIT_ROLLBACK;
    pe.result = s->refused ? MLREG_AUDIT_REFUSED : MLREG_AUDIT_OK;
    pe.model = s->model;
    pe.cand = s->target;
    pe.stage = s->stage;
    pe.base = s->cur;
    pe.reason = s->refused ? s->refusal : s->reason;
    pe.request_reason = s->refused ? s->reason : NULL;
    pe.actor = s->actor;
    pe.now = now;
    if ((error = log_promotion(&pseq, &s->logrec, txn, s->model, "rollback", s->target, s->stage,
                               s->cur, !s->refused, s->reason, NULL, s->actor, now, NULL)) < 0)
        goto done;
    if (s->refused) {
        error = mlreg_promotions__audit(NULL, mut, &pe);
        goto done;
    }
    if ((error = mlreg_promotions__move_pointer(txn, s->model, s->stage, "rollback", s->target,
                                                s->cur, s->reason, s->actor, now, pseq, NULL)) < 0)
        goto done;
    error = mlreg_promotions__record_move(s->reg, mut, txn, &pe);

done:
    return error;
}

static void rollback_state_init(rollback_state *s, mlreg_registry *reg, const char *model,
                                const char *stage, const char *to_version, const char *reason,
                                const char *actor)
{
    memset(s, 0, sizeof(*s));
    s->reg = reg;
    s->model = model;
    s->stage = stage;
    s->to_version = to_version;
    s->reason = reason;
    s->actor = actor;
    s->hw.at_ns = -1;
}

static void rollback_state_clear(rollback_state *s)
{
    json_decref(s->hw.last);
    json_decref(s->cur);
    json_decref(s->target);
    json_decref(s->logrec);
}

int mlreg_rollback(json_t **out, mlreg_registry *reg, const mlreg_policy *policy, const char *model,
                   const char *stage, const char *to_version, const char *reason, const char *actor)
{
    int error = 0;
    json_t *res = NULL;
    rollback_state s;

    rollback_state_init(&s, reg, model, stage, to_version, reason, actor);
    if ((error = mlreg_promotions__check_names(policy, model, to_version, stage)) < 0 ||
        (error = mlreg_promotions__check_text(reason, "reason")) < 0)
        goto done;
    if ((error = mlreg_policy_rules(&s.rules, &s.nrules, policy, model, stage)) < 0) goto done;
    if ((error = mlreg_registry__mutate_grouped(NULL, reg, rollback_apply, &s)) < 0) goto done;
    error = 0;
    if (s.refused) {
        error = mlreg_error_set(MLREG_EGATE, "%s", s.refusal);
        goto done;
    }
    res = json_pack("{s:s, s:s, s:O, s:O, s:O, s:o}", "model", model, "stage", stage, "version",
                    json_object_get(s.target, "version"), "digest",
                    json_object_get(s.target, "digest"), "previous_version",
                    json_object_get(s.cur, "version"), "promotion", promotion_summary(s.logrec));
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering a rollback");
        goto done;
    }
    *out = res;

done:
    rollback_state_clear(&s);
    return error;
}

/* A rollback inside another change's transaction (withdraw.c): the same
 * rollback_apply() with its own entry; a refusal is an error, so that the
 * caller's whole change is abandoned. */
int mlreg_promotions__rollback_txn(json_t **out, registry_mutation *mut, mlreg_meta_txn *txn,
                                   mlreg_registry *reg, const mlreg_policy *policy,
                                   const char *model, const char *stage, const char *reason,
                                   const char *actor)
{
    int error = 0;
    uint64_t seq = 0;
    rollback_state s;

    rollback_state_init(&s, reg, model, stage, NULL, reason, actor);
    if ((error = mlreg_policy_rules(&s.rules, &s.nrules, policy, model, stage)) < 0 ||
        (error = mlreg_registry__mutation_next_seq(&seq, mut)) < 0 ||
        (error = rollback_apply(mut, txn, &s)) < 0)
        goto done;
    if (s.refused) {
        error = mlreg_error_set(MLREG_EDENIED, "%s", s.refusal);
        goto done;
    }
    *out = json_pack("{s:s, s:O, s:O, s:I}", "stage", stage, "from_version",
                     json_object_get(s.cur, "version"), "to_version",
                     json_object_get(s.target, "version"), "seq", (json_int_t)seq);
    if (*out == NULL) error = mlreg_error_set(MLREG_ENOMEM, "out of memory rolling back");

done:
    rollback_state_clear(&s);
    return error;
}

/* ---- replay --------------------------------------------------------------------- */

int mlreg_registry__replay_promotions(mlreg_registry *reg, const json_t *entry, const char *text,
                                      size_t len)
{
    const char *action = jstr(entry, "action"), *actor = jstr(entry, "actor");
    const json_t *subject = json_object_get(entry, "subject");
    const json_t *details = json_object_get(entry, "details");
    const char *model = jstr(subject, "model"), *version = jstr(subject, "version");
    const char *stage = jstr(subject, "stage");
    int ok = !strcmp(jstr(entry, "result") ? jstr(entry, "result") : "", MLREG_AUDIT_OK);
    mlreg_meta *meta = mlreg_registry_meta(reg);
    int error = 0;

    if (model == NULL || version == NULL)
        return mlreg_error_set(MLREG_EINVALID, "audit entry %lld of %s lacks its subject",
                               (long long)json_integer_value(json_object_get(entry, "seq")),
                               action);
    if (!strcmp(action, MLREG_AUDIT_PROMOTE)) {
        mlreg_promote_req req = {
            model, version, stage, ok ? jstr(entry, "reason") : jstr(details, "request_reason"),
            0,     actor};
        promote_state ps;

        memset(&ps, 0, sizeof(ps));
        ps.reg = reg;
        ps.req = &req;
        error = mlreg_registry__mutate_replay(meta, entry, text, len, promote_apply, &ps);
        promote_state_clear(&ps);
    } else if (!strcmp(action, MLREG_AUDIT_ROLLBACK)) {
        rollback_state rs;

        memset(&rs, 0, sizeof(rs));
        rs.reg = reg;
        rs.model = model;
        rs.stage = stage;
        rs.reason = ok ? jstr(entry, "reason") : jstr(details, "request_reason");
        rs.actor = actor;
        error = mlreg_registry__mutate_replay(meta, entry, text, len, rollback_apply, &rs);
        json_decref(rs.cur);
        json_decref(rs.target);
        json_decref(rs.logrec);
    } else if (!strcmp(action, MLREG_AUDIT_APPROVE)) {
        error = mlreg_promotions__replay_approve(reg, entry, text, len);
    } else {
        error = mlreg_promotions__replay_bind(reg, entry, text, len);
    }
    return error;
}
