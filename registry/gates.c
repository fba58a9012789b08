/* gates.c: the stage list, the gate rules of the config and their evaluation
 * (include/mlreg/gates.h).
 *
 * Parsing is strict because a gate that is silently dropped (a typo such as
 * "mni") would let every release through: every key is checked, every error
 * names its full key path. Evaluation never passes on doubt: a missing
 * metric, a non-finite value, a release without an eval report, or a
 * baseline measured on another dataset fails the rule.
 */
#include "mlreg/gates.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/manifest.h"
#include "mlreg/registry.h"

typedef struct {
    int present; /* a list was given for this stage */
    mlreg_rule *rules;
    size_t n;
} rule_list;

typedef struct {
    char *model;
    rule_list *lists; /* one per stage */
} model_gates;

struct mlreg_policy {
    char **stages;
    size_t nstages;
    rule_list *global; /* one per stage */
    model_gates *models;
    size_t nmodels;
};

static const char *const default_stages[] = {"dev", "staging", "production"};

static const char *const type_names[] = {
    [MLREG_RULE_MIN] = "min",
    [MLREG_RULE_MAX] = "max",
    [MLREG_RULE_MAX_DROP] = "max_drop",
    [MLREG_RULE_MAX_DROP_PCT] = "max_drop_pct",
    [MLREG_RULE_SIGNED] = "signed",
    [MLREG_RULE_PREVIOUS_STAGE] = "previous_stage",
    [MLREG_RULE_APPROVALS] = "approvals",
};

const char *mlreg_rule_type_name(mlreg_rule_type t)
{
    return type_names[t];
}

static void lists_free(rule_list *lists, size_t n)
{
    if (lists == NULL) return;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < lists[i].n; j++)
            free(lists[i].rules[j].metric);
        free(lists[i].rules);
    }
    free(lists);
}

void mlreg_policy_free(mlreg_policy *p)
{
    if (p == NULL) return;
    for (size_t i = 0; i < p->nmodels; i++) {
        lists_free(p->models[i].lists, p->nstages);
        free(p->models[i].model);
    }
    free(p->models);
    lists_free(p->global, p->nstages);
    for (size_t i = 0; i < p->nstages; i++)
        free(p->stages[i]);
    free(p->stages);
    free(p);
}

size_t mlreg_policy_stage_count(const mlreg_policy *p)
{
    return p->nstages;
}

const char *const *mlreg_policy_stages(const mlreg_policy *p)
{
    return (const char *const *)p->stages;
}

int mlreg_policy_stage_index(const mlreg_policy *p, const char *stage)
{
    for (size_t i = 0; i < p->nstages; i++)
        if (!strcmp(p->stages[i], stage)) return (int)i;
    return -1;
}

/* ---- parsing ---------------------------------------------------------------- */

static int parse_stages(mlreg_policy *p, const json_t *stages)
{
    size_t n, i, j;
    json_t *v;

    if (stages == NULL) {
        n = sizeof(default_stages) / sizeof(default_stages[0]);
        if ((p->stages = calloc(n, sizeof(*p->stages))) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        for (i = 0; i < n; i++) {
            p->nstages = i + 1;
            if ((p->stages[i] = strdup(default_stages[i])) == NULL)
                return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        }
        return 0;
    }
    if (!json_is_array(stages) || (n = json_array_size(stages)) == 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'stages' must be a non-empty array of stage names");
    if (n > MLREG_MAX_STAGES)
        return mlreg_error_set(MLREG_EINVALID, "config key 'stages': at most %d stages",
                               MLREG_MAX_STAGES);
    if ((p->stages = calloc(n, sizeof(*p->stages))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    json_array_foreach(stages, i, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            mlreg_tag_validate(json_string_value(v)) < 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key 'stages[%zu]' must be a name in the OCI tag grammar",
                                   i);
        for (j = 0; j < i; j++)
            if (!strcmp(p->stages[j], json_string_value(v)))
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key 'stages[%zu]': duplicate stage '%s'", i,
                                       p->stages[j]);
        p->nstages = i + 1;
        if ((p->stages[i] = strdup(json_string_value(v))) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    return 0;
}

/* A non-negative integer count >= 1 at @p path. */
static int parse_count(long *out, const json_t *v, const char *path)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s' must be an integer between 1 and 1000000", path);
    *out = (long)json_integer_value(v);
    return 0;
}

/* One rule object at key path @p path (e.g. "gates.production[1]") for the
 * stage at index @p stage_idx. */
static int parse_rule(mlreg_rule *r, const json_t *obj, const char *path, size_t stage_idx)
{
    static const char *const metric_keys[] = {"min", "max", "max_drop", "max_drop_pct"};
    const char *key, *req;
    json_t *v, *thr = NULL;
    int has_metric, has_require, kind = -1;
    size_t nkeys;

    memset(r, 0, sizeof(*r));
    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be a rule object", path);
    has_metric = json_object_get(obj, "metric") != NULL;
    has_require = json_object_get(obj, "require") != NULL;
    if (has_metric && has_require)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s': a rule has either \"metric\" or \"require\", not "
                               "both",
                               path);
    if (!has_metric && !has_require)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s': rule lacks \"metric\" or \"require\"", path);
    nkeys = json_object_size(obj);
    if (has_metric) {
        json_object_foreach((json_t *)obj, key, v)
        {
            int known = !strcmp(key, "metric");
            for (size_t i = 0; i < 4; i++) {
                if (!strcmp(key, metric_keys[i])) {
                    known = 1;
                    if (kind >= 0)
                        return mlreg_error_set(MLREG_EINVALID,
                                               "config key '%s.%s': a metric rule has one of min, "
                                               "max, max_drop, max_drop_pct",
                                               path, key);
                    kind = (int)i;
                    thr = v;
                }
            }
            if (!known)
                return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s': unknown rule key", path,
                                       key);
        }
        v = json_object_get(obj, "metric");
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > MLREG_MAX_METRIC_NAME_BYTES ||
            strlen(json_string_value(v)) != json_string_length(v))
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s.metric' must be a non-empty metric name", path);
        if (kind < 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s': metric rule lacks min, max, max_drop or "
                                   "max_drop_pct",
                                   path);
        if (!json_is_number(thr) || !isfinite(json_number_value(thr)))
            return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s' must be a finite number",
                                   path, metric_keys[kind]);
        r->type = (mlreg_rule_type)kind; /* MIN..MAX_DROP_PCT are 0..3 */
        r->threshold = json_number_value(thr);
        if ((r->type == MLREG_RULE_MAX_DROP || r->type == MLREG_RULE_MAX_DROP_PCT) &&
            r->threshold < 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s.%s' must not be negative (got %g)", path,
                                   metric_keys[kind], r->threshold);
        if ((r->metric = strdup(json_string_value(v))) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        return 0;
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, "require") && strcmp(key, "min"))
            return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s': unknown rule key", path,
                                   key);
    }
    v = json_object_get(obj, "require");
    req = json_string_value(v);
    if (req == NULL)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s.require' must be a string", path);
    if (!strcmp(req, "previous_stage")) {
        if (nkeys != 1)
            return mlreg_error_set(
                MLREG_EINVALID, "config key '%s.min': unknown rule key for previous_stage", path);
        if (stage_idx == 0)
            return mlreg_error_set(
                MLREG_EINVALID, "config key '%s.require': previous_stage on the first stage", path);
        r->type = MLREG_RULE_PREVIOUS_STAGE;
        return 0;
    }
    if (strcmp(req, "signed") && strcmp(req, "approvals"))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s.require': unknown requirement '%s' (signed, "
                               "previous_stage, approvals)",
                               path, req);
    r->type = !strcmp(req, "signed") ? MLREG_RULE_SIGNED : MLREG_RULE_APPROVALS;
    if ((v = json_object_get(obj, "min")) == NULL)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s': rule lacks \"min\"", path);
    {
        char p2[640];
        snprintf(p2, sizeof(p2), "%s.min", path);
        return parse_count(&r->min_count, v, p2);
    }
}

/* A {stage: [RULE...]} object at @p path ("gates" or "models.M.gates") into
 * one rule_list per stage. */
static int parse_gate_map(rule_list **out, const mlreg_policy *p, const json_t *obj,
                          const char *path)
{
    const char *stage;
    json_t *arr, *v;
    rule_list *lists;
    char rp[600];
    size_t i;
    int idx, error;

    if ((lists = calloc(p->nstages, sizeof(*lists))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    *out = lists; /* freed by the caller through the policy, also on failure */
    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s' must be an object of stage: [rules]", path);
    json_object_foreach((json_t *)obj, stage, arr)
    {
        if ((idx = mlreg_policy_stage_index(p, stage)) < 0)
            return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s': '%s' is not in 'stages'",
                                   path, stage, stage);
        if (!json_is_array(arr))
            return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s' must be an array of rules",
                                   path, stage);
        lists[idx].present = 1;
        if (json_array_size(arr) == 0) continue;
        if ((lists[idx].rules = calloc(json_array_size(arr), sizeof(mlreg_rule))) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        json_array_foreach(arr, i, v)
        {
            snprintf(rp, sizeof(rp), "%.300s.%.128s[%zu]", path, stage, i);
            lists[idx].n = i + 1;
            if ((error = parse_rule(&lists[idx].rules[i], v, rp, (size_t)idx)) < 0) return error;
        }
    }
    return 0;
}

static int parse_models(mlreg_policy *p, const json_t *models)
{
    const char *name, *key;
    json_t *obj, *v;
    char path[400];
    int error;

    if (!json_is_object(models))
        return mlreg_error_set(MLREG_EINVALID, "config key 'models' must be an object");
    if (json_object_size(models) == 0) return 0;
    if ((p->models = calloc(json_object_size(models), sizeof(*p->models))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    json_object_foreach((json_t *)models, name, obj)
    {
        model_gates *m = &p->models[p->nmodels++];
        if (strlen(name) > 255 || mlreg_name_validate(name) < 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key 'models.%.255s': not a model name (OCI repository "
                                   "grammar)",
                                   name);
        if ((m->model = strdup(name)) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        if (!json_is_object(obj))
            return mlreg_error_set(MLREG_EINVALID, "config key 'models.%s' must be an object",
                                   name);
        json_object_foreach(obj, key, v)
        {
            if (strcmp(key, "gates"))
                return mlreg_error_set(MLREG_EINVALID, "unknown config key 'models.%s.%s'", name,
                                       key);
        }
        snprintf(path, sizeof(path), "models.%s.gates", name);
        if ((v = json_object_get(obj, "gates")) == NULL)
            return mlreg_error_set(MLREG_EINVALID, "config key 'models.%s' lacks \"gates\"", name);
        if ((error = parse_gate_map(&m->lists, p, v, path)) < 0) return error;
    }
    return 0;
}

int mlreg_policy_parse(mlreg_policy **out, const json_t *stages, const json_t *gates,
                       const json_t *models)
{
    int error = 0;
    mlreg_policy *p = NULL;

    if ((p = calloc(1, sizeof(*p))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = parse_stages(p, stages)) < 0) goto done;
    if (gates != NULL) {
        if ((error = parse_gate_map(&p->global, p, gates, "gates")) < 0) goto done;
    } else if ((p->global = calloc(p->nstages, sizeof(*p->global))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if (models != NULL && (error = parse_models(p, models)) < 0) goto done;
    *out = p;
    p = NULL;

done:
    mlreg_policy_free(p);
    return error;
}

int mlreg_policy_rules(const mlreg_rule **rules_out, size_t *n_out, const mlreg_policy *p,
                       const char *model, const char *stage)
{
    int idx = mlreg_policy_stage_index(p, stage);
    const rule_list *l;

    if (idx < 0) return mlreg_error_set(MLREG_EINVALID, "unknown stage '%s'", stage);
    l = &p->global[idx];
    for (size_t i = 0; model != NULL && i < p->nmodels; i++)
        if (!strcmp(p->models[i].model, model) && p->models[i].lists[idx].present)
            l = &p->models[i].lists[idx];
    *rules_out = l->rules;
    *n_out = l->n;
    return 0;
}

/* ---- evaluation -------------------------------------------------------------- */

static const mlreg_metric *find_metric(const mlreg_gate_release *r, const char *name)
{
    for (size_t i = 0; i < r->n_metrics; i++)
        if (!strcmp(r->metrics[i].name, name)) return &r->metrics[i];
    return NULL;
}

/* A JSON number, or null for what JSON cannot hold. */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

typedef struct {
    int passed;
    char rule[320];
    char detail[512];
    int has_cand, has_base, has_delta;
    double cand, base, delta;
    const char *baseline_version;
} outcome;

/* The metric rules. */
static void eval_metric(outcome *o, const mlreg_rule *r, const mlreg_gate_input *in)
{
    const mlreg_gate_release *c = in->candidate, *b = in->baseline;
    const mlreg_metric *cm, *bm;
    double x = r->threshold, drop;
    const char *op = r->type == MLREG_RULE_MIN ? ">=" : "<=";

    switch (r->type) {
    case MLREG_RULE_MIN:
    case MLREG_RULE_MAX: snprintf(o->rule, sizeof(o->rule), "%s %s %.17g", r->metric, op, x); break;
    case MLREG_RULE_MAX_DROP:
        snprintf(o->rule, sizeof(o->rule), "%s drop <= %.17g", r->metric, x);
        break;
    default: snprintf(o->rule, sizeof(o->rule), "%s drop <= %.17g%%", r->metric, x); break;
    }
    /* the common trimming of %.17g noise: prefer %g when it round-trips */
    if (strtod(strrchr(o->rule, ' ') + 1, NULL) == x) {
        char shortx[64];
        snprintf(shortx, sizeof(shortx), "%g", x);
        if (strtod(shortx, NULL) == x) {
            char *sp = strrchr(o->rule, ' ') + 1;
            int pct = r->type == MLREG_RULE_MAX_DROP_PCT;
            snprintf(sp, sizeof(o->rule) - (size_t)(sp - o->rule), "%s%s", shortx, pct ? "%" : "");
        }
    }
    if (!c->has_eval_report) {
        snprintf(o->detail, sizeof(o->detail), "release has no eval report");
        return;
    }
    if ((cm = find_metric(c, r->metric)) == NULL) {
        snprintf(o->detail, sizeof(o->detail), "missing metric %s", r->metric);
        return;
    }
    o->has_cand = 1;
    o->cand = cm->value;
    if (!isfinite(cm->value)) {
        snprintf(o->detail, sizeof(o->detail), "metric %s is not a finite number", r->metric);
        return;
    }
    if (r->type == MLREG_RULE_MIN || r->type == MLREG_RULE_MAX) {
        /* the baseline is shown for the reader's diff; it does not decide */
        if (b != NULL && b->has_eval_report && (bm = find_metric(b, r->metric)) != NULL) {
            o->baseline_version = b->version;
            o->has_base = 1;
            o->base = bm->value;
            o->has_delta = isfinite(bm->value);
            o->delta = cm->value - bm->value;
        }
        o->passed = r->type == MLREG_RULE_MIN ? cm->value >= x : cm->value <= x;
        snprintf(o->detail, sizeof(o->detail), "%g %s %g%s", cm->value,
                 o->passed ? op : (r->type == MLREG_RULE_MIN ? "<" : ">"), x,
                 o->passed ? "" : " (fails)");
        return;
    }
    /* drop rules */
    if (b == NULL) {
        o->passed = 1;
        snprintf(o->detail, sizeof(o->detail), "no baseline");
        return;
    }
    o->baseline_version = b->version;
    if (!b->has_eval_report || (bm = find_metric(b, r->metric)) == NULL) {
        snprintf(o->detail, sizeof(o->detail), "baseline %s lacks metric %s", b->version,
                 r->metric);
        return;
    }
    o->has_base = 1;
    o->base = bm->value;
    if (!isfinite(bm->value)) {
        snprintf(o->detail, sizeof(o->detail), "baseline metric %s is not a finite number",
                 r->metric);
        return;
    }
    o->has_delta = 1;
    o->delta = cm->value - bm->value;
    if ((c->dataset == NULL) != (b->dataset == NULL) ||
        (c->dataset != NULL && strcmp(c->dataset, b->dataset) != 0)) {
        snprintf(o->detail, sizeof(o->detail),
                 "baseline evaluated on a different dataset (%s vs %s)",
                 b->dataset ? b->dataset : "none", c->dataset ? c->dataset : "none");
        return;
    }
    drop = bm->value - cm->value;
    if (r->type == MLREG_RULE_MAX_DROP) {
        o->passed = drop <= x;
        snprintf(o->detail, sizeof(o->detail), "%g vs baseline %g (%s): drop %g %s %g", cm->value,
                 bm->value, b->version, drop, o->passed ? "<=" : ">", x);
        return;
    }
    if (bm->value == 0) {
        o->passed = cm->value >= bm->value;
        snprintf(o->detail, sizeof(o->detail),
                 "%g vs baseline 0 (%s): zero baseline, passes only when not lower", cm->value,
                 b->version);
        return;
    }
    {
        double pct = drop / fabs(bm->value) * 100.0;
        o->passed = pct <= x;
        snprintf(o->detail, sizeof(o->detail), "%g vs baseline %g (%s): drop %g%% %s %g%%",
                 cm->value, bm->value, b->version, pct, o->passed ? "<=" : ">", x);
    }
}

static void eval_require(outcome *o, const mlreg_rule *r, const mlreg_gate_input *in)
{
    switch (r->type) {
    case MLREG_RULE_SIGNED:
        snprintf(o->rule, sizeof(o->rule), "signed by >= %ld trusted key%s", r->min_count,
                 r->min_count == 1 ? "" : "s");
        o->passed = in->signed_count >= r->min_count;
        /* a signature that does not count because of its key's role says
         * so, or the table would read as if the release were unsigned */
        if (in->signed_other_count > 0)
            snprintf(o->detail, sizeof(o->detail),
                     "%ld signature%s by trusted release keys%s; %ld more by trusted key%s of "
                     "role %s, which do%s not count: only keys of role release sign releases",
                     in->signed_count, in->signed_count == 1 ? "" : "s",
                     o->passed ? "" : " (not enough)", in->signed_other_count,
                     in->signed_other_count == 1 ? "" : "s",
                     in->signed_other_roles ? in->signed_other_roles : "?",
                     in->signed_other_count == 1 ? "es" : "");
        else
            snprintf(o->detail, sizeof(o->detail), "%ld signature%s by trusted release keys%s",
                     in->signed_count, in->signed_count == 1 ? "" : "s",
                     o->passed ? "" : " (not enough)");
        o->has_cand = 1;
        o->cand = (double)in->signed_count;
        break;
    case MLREG_RULE_PREVIOUS_STAGE:
        snprintf(o->rule, sizeof(o->rule), "previous stage %s",
                 in->previous_stage ? in->previous_stage : "(none)");
        o->passed = in->previous_stage != NULL && in->in_previous_stage;
        if (o->passed)
            snprintf(o->detail, sizeof(o->detail), "release is in, or was promoted through, %s",
                     in->previous_stage);
        else
            snprintf(o->detail, sizeof(o->detail), "release was never in %s",
                     in->previous_stage ? in->previous_stage : "a previous stage");
        break;
    default:
        snprintf(o->rule, sizeof(o->rule), "approvals >= %ld", r->min_count);
        o->passed = in->approvals >= r->min_count;
        snprintf(o->detail, sizeof(o->detail), "approvals: %ld of %ld%s", in->approvals,
                 r->min_count, in->pusher_approved ? " (pusher's own does not count)" : "");
        o->has_cand = 1;
        o->cand = (double)in->approvals;
        break;
    }
}

json_t *mlreg_rules_json(const mlreg_rule *rules, size_t n)
{
    json_t *list = json_array(), *row;

    for (size_t i = 0; list && i < n; i++) {
        const mlreg_rule *r = &rules[i];
        if (r->type <= MLREG_RULE_MAX_DROP_PCT)
            row = json_pack("{s:s, s:s, s:o}", "type", type_names[r->type], "metric", r->metric,
                            "threshold", num(r->threshold));
        else if (r->type == MLREG_RULE_PREVIOUS_STAGE)
            row = json_pack("{s:s}", "type", type_names[r->type]);
        else
            row = json_pack("{s:s, s:I}", "type", type_names[r->type], "min",
                            (json_int_t)r->min_count);
        if (row == NULL || json_array_append_new(list, row) < 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

int mlreg_gates_evaluate(json_t **table_out, int *passed_out, const mlreg_rule *rules, size_t n,
                         const mlreg_gate_input *in)
{
    int error = 0, all = 1;
    json_t *table = json_array(), *row;
    outcome o;

    if (table == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory evaluating gates");
    for (size_t i = 0; i < n; i++) {
        const mlreg_rule *r = &rules[i];
        int is_metric = r->type <= MLREG_RULE_MAX_DROP_PCT;
        memset(&o, 0, sizeof(o));
        if (is_metric)
            eval_metric(&o, r, in);
        else
            eval_require(&o, r, in);
        if (!o.passed) all = 0;
        row = json_pack("{s:s, s:s, s:s?, s:o, s:o, s:s?, s:o, s:o, s:b, s:s}", "rule", o.rule,
                        "type", type_names[r->type], "metric", r->metric, "threshold",
                        is_metric ? num(r->threshold) : json_integer(r->min_count), "candidate",
                        o.has_cand ? num(o.cand) : json_null(), "baseline_version",
                        o.baseline_version, "baseline", o.has_base ? num(o.base) : json_null(),
                        "delta", o.has_delta ? num(o.delta) : json_null(), "passed", o.passed,
                        "detail", o.detail);
        if (row == NULL || json_array_append_new(table, row) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory evaluating gates");
            goto done;
        }
    }
    *table_out = table;
    table = NULL;
    *passed_out = all;

done:
    json_decref(table);
    return error;
}
