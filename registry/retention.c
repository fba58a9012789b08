/* retention.c: which releases a garbage collection purges (retention.h,
 * docs/lifecycle.md "Retention").
 *
 * The plan reads, in one read transaction, every release record (the
 * releases table, in key order, so a model's releases come together),
 * keeps those of the models a rule matches and that are not purged yet,
 * then for each model walks its stage pointers (who holds what now) and
 * its stage history (who held what when: an entry holds its release from
 * its time until the next entry of the same stage, the last one until
 * now), and hands the facts to mlreg_retention_decide(), which knows
 * nothing of the store. Purging is the garbage collection's (gc.c), one
 * release at a time through the purge change, which checks again in its
 * own write transaction that no stage holds the release.
 */
#include "mlreg/retention.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/tables.h"
#include "mlreg/time.h"
#include "promotions_internal.h"
#include "registry_internal.h"

#define NS_PER_SEC 1000000000LL

const mlreg_config_retention *mlreg_retention_rule_for(const mlreg_config_retention *rules,
                                                       size_t n, const char *model)
{
    for (size_t i = 0; i < n; i++)
        if (rules[i].models != NULL && fnmatch(rules[i].models, model, 0) == 0) return &rules[i];
    return NULL;
}

/* ---- the decision ------------------------------------------------------------ */

/* A configured duration in its largest exact unit: "30d", "6h", "90s". */
static void fmt_config_dur(char *buf, size_t cap, uint64_t s)
{
    if (s > 0 && s % 86400 == 0)
        snprintf(buf, cap, "%llud", (unsigned long long)(s / 86400));
    else if (s > 0 && s % 3600 == 0)
        snprintf(buf, cap, "%lluh", (unsigned long long)(s / 3600));
    else if (s > 0 && s % 60 == 0)
        snprintf(buf, cap, "%llum", (unsigned long long)(s / 60));
    else
        snprintf(buf, cap, "%llus", (unsigned long long)s);
}

/* An elapsed time, rounded down to its largest whole unit: "2d", "5h". */
static void fmt_elapsed(char *buf, size_t cap, int64_t ns)
{
    int64_t s = ns > 0 ? ns / NS_PER_SEC : 0;

    if (s >= 86400)
        snprintf(buf, cap, "%lldd", (long long)(s / 86400));
    else if (s >= 3600)
        snprintf(buf, cap, "%lldh", (long long)(s / 3600));
    else if (s >= 60)
        snprintf(buf, cap, "%lldm", (long long)(s / 60));
    else
        snprintf(buf, cap, "%llds", (long long)s);
}

/* Newest first: created time, then version in natural order. */
static int newest_first(const void *a, const void *b)
{
    const mlreg_retention_release *x = *(const mlreg_retention_release *const *)a;
    const mlreg_retention_release *y = *(const mlreg_retention_release *const *)b;

    if (x->created_ns != y->created_ns) return x->created_ns > y->created_ns ? -1 : 1;
    return -strverscmp(x->version ? x->version : "", y->version ? y->version : "");
}

static int is_protected(const mlreg_config_retention *rule, const char *stage)
{
    for (size_t i = 0; i < rule->n_protected_stages; i++)
        if (!strcmp(rule->protected_stages[i], stage)) return 1;
    return 0;
}

/* Sets r->purge and r->why; @p newest: r is among the newest keep_last. */
static void judge(mlreg_retention_release *r, int newest, const mlreg_config_retention *rule,
                  int64_t now_ns)
{
    const mlreg_retention_hold *last = NULL, *prot = NULL;
    char d1[32], d2[32], held[MLREG_RETENTION_WHY_MAX - sizeof("held by ")];
    int64_t window = (int64_t)rule->held_within * NS_PER_SEC;
    size_t i, n = 0;

    held[0] = '\0';
    for (i = 0; i < r->nholds; i++) {
        const mlreg_retention_hold *h = &r->holds[i];
        if (h->now && n < sizeof(held))
            n += (size_t)snprintf(held + n, sizeof(held) - n, "%s%s", n ? ", " : "", h->stage);
        if (!h->now && (last == NULL || h->until_ns > last->until_ns)) last = h;
        if (prot == NULL && is_protected(rule, h->stage)) prot = h;
    }
    r->purge = 0;
    if (newest) {
        snprintf(r->why, sizeof(r->why), "newest %u", rule->keep_last);
        return;
    }
    if (held[0] != '\0') {
        snprintf(r->why, sizeof(r->why), "held by %s", held);
        return;
    }
    /* no stage holds it now: `last` is the stage that held it last, if any */
    if (last != NULL && rule->held_within > 0 && last->until_ns >= now_ns - window) {
        fmt_config_dur(d1, sizeof(d1), rule->held_within);
        snprintf(r->why, sizeof(r->why), "held by %s within %s", last->stage, d1);
        return;
    }
    if (prot != NULL) {
        snprintf(r->why, sizeof(r->why), "protected stage %s", prot->stage);
        return;
    }
    fmt_elapsed(d1, sizeof(d1), now_ns - r->withdrawn_ns);
    fmt_config_dur(d2, sizeof(d2), rule->withdrawn_for);
    if (r->withdrawn && now_ns - r->withdrawn_ns < (int64_t)rule->withdrawn_for * NS_PER_SEC) {
        snprintf(r->why, sizeof(r->why), "withdrawn %s ago, kept %s", d1, d2);
        return;
    }
    r->purge = 1;
    if (r->withdrawn)
        n = (size_t)snprintf(r->why, sizeof(r->why), "withdrawn %s ago%s%s", d1,
                             rule->withdrawn_for ? ", kept only " : "",
                             rule->withdrawn_for ? d2 : "");
    else
        n = (size_t)snprintf(r->why, sizeof(r->why), "older than the newest %u", rule->keep_last);
    if (n >= sizeof(r->why)) return;
    if (last == NULL) {
        snprintf(r->why + n, sizeof(r->why) - n, ", never held by a stage");
    } else {
        fmt_elapsed(d1, sizeof(d1), now_ns - last->until_ns);
        snprintf(r->why + n, sizeof(r->why) - n, ", last held by %s %s ago", last->stage, d1);
    }
}

int mlreg_retention_decide(mlreg_retention_release *rels, size_t n,
                           const mlreg_config_retention *rule, int64_t now_ns)
{
    mlreg_retention_release **order = NULL;
    size_t i, m = 0;

    if (n == 0) return 0;
    if ((order = malloc(n * sizeof(*order))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory deciding retention");
    for (i = 0; i < n; i++)
        if (!rels[i].withdrawn) order[m++] = &rels[i];
    qsort(order, m, sizeof(*order), newest_first);
    for (i = 0; i < m; i++)
        judge(order[i], i < rule->keep_last, rule, now_ns);
    for (i = 0; i < n; i++)
        if (rels[i].withdrawn) judge(&rels[i], 0, rule, now_ns);
    free(order);
    return 0;
}

/* ---- the facts ------------------------------------------------------------------ */

/* One release looked at, and the stages that hold or held it. */
typedef struct {
    json_t *rec; /* the release record (owned) */
    const char *model, *digest;
    mlreg_retention_hold *holds;
    size_t nholds, cap;
} fact;

typedef struct {
    const mlreg_config_retention *rules;
    size_t nrules;
    fact *v;
    size_t n, cap;
} fact_vec;

static void facts_free(fact_vec *fv)
{
    for (size_t i = 0; i < fv->n; i++) {
        json_decref(fv->v[i].rec);
        free(fv->v[i].holds);
    }
    free(fv->v);
}

static int corrupt(const json_t *rec)
{
    const char *m = jstr(rec, "model"), *v = jstr(rec, "version");

    return mlreg_error_set(MLREG_EIO, "release record %s@%s is corrupt", m ? m : "?", v ? v : "?");
}

/* Keeps every record of a model a rule matches, but the purged ones. */
static int record_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    fact_vec *fv = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *model = jstr(rec, "model");

    (void)key;
    (void)klen;
    if (rec == NULL) return mlreg_error_set(MLREG_EIO, "a release record is corrupt");
    if (model == NULL || jstr(rec, "version") == NULL || jstr(rec, "digest") == NULL ||
        !json_is_integer(json_object_get(rec, "created_sec"))) {
        int error = corrupt(rec);
        json_decref(rec);
        return error;
    }
    if (json_object_get(rec, "purged") != NULL ||
        mlreg_retention_rule_for(fv->rules, fv->nrules, model) == NULL) {
        json_decref(rec);
        return 0;
    }
    if (fv->n == fv->cap) {
        size_t cap = fv->cap ? fv->cap * 2 : 64;
        fact *v = realloc(fv->v, cap * sizeof(*v));
        if (v == NULL) {
            json_decref(rec);
            return mlreg_error_set(MLREG_ENOMEM, "out of memory planning retention");
        }
        fv->v = v;
        fv->cap = cap;
    }
    memset(&fv->v[fv->n], 0, sizeof(fv->v[fv->n]));
    fv->v[fv->n].rec = rec;
    fv->v[fv->n].model = model;
    fv->v[fv->n].digest = jstr(rec, "digest");
    fv->n++;
    return 0;
}

/* Adds (or widens) the hold of @p stage on @p f. */
static int hold_add(fact *f, const char *stage, int now, int64_t until_ns)
{
    mlreg_retention_hold *h;
    size_t i;

    for (i = 0; i < f->nholds; i++) {
        h = &f->holds[i];
        if (strcmp(h->stage, stage)) continue;
        if (now) h->now = 1;
        if (until_ns > h->until_ns) h->until_ns = until_ns;
        return 0;
    }
    if (strlen(stage) > MLREG_RETENTION_STAGE_MAX)
        return mlreg_error_set(MLREG_EIO, "stage name '%.32s...' in the stage tables is too long",
                               stage);
    if (f->nholds == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        mlreg_retention_hold *v = realloc(f->holds, cap * sizeof(*v));
        if (v == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory planning retention");
        f->holds = v;
        f->cap = cap;
    }
    h = &f->holds[f->nholds++];
    memset(h, 0, sizeof(*h));
    memcpy(h->stage, stage, strlen(stage) + 1);
    h->now = now;
    h->until_ns = until_ns;
    return 0;
}

/* The releases of one model, by digest, and the history walk's state. */
typedef struct {
    fact **by_digest; /* sorted by digest */
    size_t n;
    int64_t now_ns;
    char prev_stage[MLREG_RETENTION_STAGE_MAX + 1];
    fact *prev; /* the release of the previous history entry (NULL: not looked at) */
    int have_prev;
} model_walk;

static int digest_cmp(const void *a, const void *b)
{
    return strcmp((*(fact *const *)a)->digest, (*(fact *const *)b)->digest);
}

static fact *find(model_walk *w, const char *digest)
{
    fact key, *kp = &key, **hit;

    key.digest = digest;
    hit = bsearch(&kp, w->by_digest, w->n, sizeof(*w->by_digest), digest_cmp);
    return hit ? *hit : NULL;
}

static int pointer_cb(const char *stage, const json_t *rec, void *payload)
{
    model_walk *w = payload;
    fact *f = find(w, jstr(rec, "digest"));

    return f ? hold_add(f, stage, 1, w->now_ns) : 0;
}

/* Closes the previous entry's hold at @p until_ns. */
static int close_prev(model_walk *w, int64_t until_ns)
{
    int error = 0;

    if (w->have_prev && w->prev != NULL) error = hold_add(w->prev, w->prev_stage, 0, until_ns);
    w->have_prev = 0;
    return error;
}

static int history_cb(const char *stage, const json_t *rec, void *payload)
{
    model_walk *w = payload;
    const json_t *t = json_object_get(rec, "time_ns");
    int error;

    if (!json_is_integer(t))
        return mlreg_error_set(MLREG_EIO, "a stage history entry of %s lacks its time", stage);
    /* the previous entry of the same stage held its release until this one;
     * the last entry of a stage holds it until now */
    if ((error = close_prev(w, w->have_prev && !strcmp(w->prev_stage, stage)
                                   ? (int64_t)json_integer_value(t)
                                   : w->now_ns)) < 0)
        return error;
    if (strlen(stage) > MLREG_RETENTION_STAGE_MAX)
        return mlreg_error_set(MLREG_EIO, "stage name '%.32s...' in the stage tables is too long",
                               stage);
    memcpy(w->prev_stage, stage, strlen(stage) + 1);
    w->prev = find(w, jstr(rec, "digest"));
    w->have_prev = 1;
    return 0;
}

/* Fills the holds of the facts @p f[0..n) of one model. */
static int model_holds(mlreg_meta_txn *txn, fact *f, size_t n, int64_t now_ns)
{
    model_walk w;
    size_t i;
    int error;

    memset(&w, 0, sizeof(w));
    if ((w.by_digest = malloc(n * sizeof(*w.by_digest))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory planning retention");
    for (i = 0; i < n; i++)
        w.by_digest[i] = &f[i];
    qsort(w.by_digest, n, sizeof(*w.by_digest), digest_cmp);
    w.n = n;
    w.now_ns = now_ns;
    if ((error = mlreg_promotions__stages_foreach(txn, f[0].model, 1, history_cb, &w)) < 0 ||
        (error = close_prev(&w, now_ns)) < 0 ||
        (error = mlreg_promotions__stages_foreach(txn, f[0].model, 0, pointer_cb, &w)) < 0)
        goto done;
    error = 0;

done:
    free(w.by_digest);
    return error;
}

/* The facts of @p f for the decision (borrowing from it). */
static int fact_view(mlreg_retention_release *r, const fact *f)
{
    const json_t *w = json_object_get(f->rec, "withdrawn");
    int64_t sec;
    int32_t nsec;

    memset(r, 0, sizeof(*r));
    r->version = jstr(f->rec, "version");
    r->created_ns =
        (int64_t)json_integer_value(json_object_get(f->rec, "created_sec")) * NS_PER_SEC +
        (int64_t)json_integer_value(json_object_get(f->rec, "created_nsec"));
    if (w != NULL) {
        if (jstr(w, "time") == NULL || mlreg_time_parse(&sec, &nsec, jstr(w, "time")) < 0) {
            mlreg_error_clear();
            return mlreg_error_set(MLREG_EIO, "release record %s@%s has a corrupt withdrawal time",
                                   f->model, r->version);
        }
        r->withdrawn = 1;
        r->withdrawn_ns = sec * NS_PER_SEC + nsec;
    }
    r->holds = f->holds;
    r->nholds = f->nholds;
    return 0;
}

/* Newest first, on the facts' records: as newest_first(). */
static int fact_newest_first(const void *a, const void *b)
{
    const json_t *x = ((const fact *)a)->rec, *y = ((const fact *)b)->rec;
    json_int_t sx = json_integer_value(json_object_get(x, "created_sec"));
    json_int_t sy = json_integer_value(json_object_get(y, "created_sec"));
    json_int_t nx = json_integer_value(json_object_get(x, "created_nsec"));
    json_int_t ny = json_integer_value(json_object_get(y, "created_nsec"));

    if (sx != sy) return sx > sy ? -1 : 1;
    if (nx != ny) return nx > ny ? -1 : 1;
    return -strverscmp(jstr(x, "version"), jstr(y, "version"));
}

/* Decides the @p n releases of one model and appends them to the plan. */
static int plan_model(json_t *purge, json_t *kept, mlreg_meta_txn *txn, fact *f, size_t n,
                      const mlreg_config_retention *rule, int64_t now_ns)
{
    mlreg_retention_release *rels = NULL;
    size_t i;
    int error;

    qsort(f, n, sizeof(*f), fact_newest_first);
    if ((error = model_holds(txn, f, n, now_ns)) < 0) return error;
    if ((rels = calloc(n, sizeof(*rels))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory planning retention");
    for (i = 0; i < n; i++)
        if ((error = fact_view(&rels[i], &f[i])) < 0) goto done;
    if ((error = mlreg_retention_decide(rels, n, rule, now_ns)) < 0) goto done;
    for (i = 0; i < n; i++) {
        json_t *item =
            json_pack("{s:s, s:s, s:s, s:b, s:s}", "model", f[i].model, "version", rels[i].version,
                      "digest", f[i].digest, "purge", rels[i].purge, "why", rels[i].why);
        if (json_array_append_new(rels[i].purge ? purge : kept, item) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory planning retention");
            goto done;
        }
    }

done:
    free(rels);
    return error;
}

int mlreg_retention_plan(json_t **out, mlreg_registry *reg, const mlreg_config_retention *rules,
                         size_t nrules, int64_t now_ns)
{
    fact_vec fv = {rules, nrules, NULL, 0, 0};
    mlreg_meta_txn *txn = NULL;
    json_t *purge = json_array(), *kept = json_array(), *plan = NULL;
    size_t i, j;
    int error = 0;

    if (purge == NULL || kept == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory planning retention");
        goto done;
    }
    if (nrules > 0) {
        if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
        if ((error = mlreg_meta_iter(txn, MLREG_DB_RELEASES, NULL, 0, NULL, 0, record_cb, &fv)) < 0)
            goto done;
        for (i = 0; i < fv.n; i = j) {
            for (j = i + 1; j < fv.n && !strcmp(fv.v[j].model, fv.v[i].model); j++)
                ;
            if ((error = plan_model(purge, kept, txn, fv.v + i, j - i,
                                    mlreg_retention_rule_for(rules, nrules, fv.v[i].model),
                                    now_ns)) < 0)
                goto done;
        }
    }
    if ((plan = json_pack("{s:O, s:O}", "purge", purge, "kept", kept)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory planning retention");
        goto done;
    }
    *out = plan;
    error = 0;

done:
    mlreg_meta_txn_abort(txn);
    facts_free(&fv);
    json_decref(purge);
    json_decref(kept);
    return error;
}
