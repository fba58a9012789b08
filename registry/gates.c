/* gates.c: the stage list, the gate rules of the config and their evaluation
 * (include/mlreg/gates.h).
 *
 * Parsing is strict because a gate that is silently dropped (a typo such as
 * "mni") would let every release through: every key is checked, every error
 * names its full key path. Evaluation never passes on doubt: a missing
 * metric, a non-finite value, a release without an eval report, or a
 * baseline measured on another dataset fails the rule; so do a bound rule
 * on a metric without an interval, a slice missing from the candidate, and
 * a slice rule that matches nothing. Rows are one per rule, except for
 * slice rules (one per slice, bounded by MLREG_MAX_SLICE_ROWS).
 */
#include "mlreg/gates.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/manifest.h"
#include "mlreg/registry.h"
#include "mlreg/time.h"

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
    [MLREG_RULE_MIN_IMPROVEMENT] = "min_improvement",
    [MLREG_RULE_MIN_IMPROVEMENT_PCT] = "min_improvement_pct",
    [MLREG_RULE_MIN_INTERVAL] = "min_interval",
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

/* The metric keys a metric rule takes one of, and the rule each makes. */
static const char *const metric_keys[] = {
    "min", "max", "max_drop", "max_drop_pct", "min_improvement", "min_improvement_pct"};
static const mlreg_rule_type metric_types[] = {MLREG_RULE_MIN,
                                               MLREG_RULE_MAX,
                                               MLREG_RULE_MAX_DROP,
                                               MLREG_RULE_MAX_DROP_PCT,
                                               MLREG_RULE_MIN_IMPROVEMENT,
                                               MLREG_RULE_MIN_IMPROVEMENT_PCT};
#define N_METRIC_KEYS (sizeof(metric_keys) / sizeof(metric_keys[0]))

int mlreg_rule_is_metric(mlreg_rule_type t)
{
    return t <= MLREG_RULE_MAX_DROP_PCT || t == MLREG_RULE_MIN_IMPROVEMENT ||
           t == MLREG_RULE_MIN_IMPROVEMENT_PCT;
}

/* 1 for the rules that compare the candidate with the baseline. */
static int against_baseline(mlreg_rule_type t)
{
    return t == MLREG_RULE_MAX_DROP || t == MLREG_RULE_MAX_DROP_PCT ||
           t == MLREG_RULE_MIN_IMPROVEMENT || t == MLREG_RULE_MIN_IMPROVEMENT_PCT;
}

static int is_improvement(mlreg_rule_type t)
{
    return t == MLREG_RULE_MIN_IMPROVEMENT || t == MLREG_RULE_MIN_IMPROVEMENT_PCT;
}

static const char *const bound_names[] = {[MLREG_BOUND_VALUE] = "value",
                                          [MLREG_BOUND_CI_LOW] = "ci_low",
                                          [MLREG_BOUND_CI_HIGH] = "ci_high",
                                          [MLREG_BOUND_CI] = "ci"};

/* 0 when metric pattern @p m has a '*' that is not usable: a pattern has
 * exactly one segment that is "*", and it is not the last (the last names
 * the metric, and one threshold over different metrics would mean
 * nothing). 1 otherwise, also without any '*'. */
static int wildcard_ok(const char *m)
{
    const char *star = strchr(m, '*');

    if (star == NULL) return 1;
    return strchr(star + 1, '*') == NULL && (star == m || star[-1] == '.') && star[1] == '.' &&
           star[2] != '\0';
}

/* The metric part of a rule object at @p path (has "metric"). */
static int parse_metric_rule(mlreg_rule *r, const json_t *obj, const char *path)
{
    const char *key, *bs;
    json_t *v, *thr = NULL, *bound = NULL, *lib = NULL, *src = NULL;
    int kind = -1;

    json_object_foreach((json_t *)obj, key, v)
    {
        int known = !strcmp(key, "metric");
        if (!strcmp(key, "bound")) known = 1, bound = v;
        if (!strcmp(key, "lower_is_better")) known = 1, lib = v;
        if (!strcmp(key, "source")) known = 1, src = v;
        for (size_t i = 0; i < N_METRIC_KEYS; i++) {
            if (!strcmp(key, metric_keys[i])) {
                known = 1;
                if (kind >= 0)
                    return mlreg_error_set(MLREG_EINVALID,
                                           "config key '%s.%s': a metric rule has one of min, "
                                           "max, max_drop, max_drop_pct, min_improvement, "
                                           "min_improvement_pct",
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
    if (!wildcard_ok(json_string_value(v)))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s.metric': a wildcard is one whole segment \"*\", "
                               "once, and not the last segment (e.g. \"slices.*.accuracy\")",
                               path);
    if (kind < 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s': metric rule lacks min, max, max_drop, "
                               "max_drop_pct, min_improvement or min_improvement_pct",
                               path);
    if (!json_is_number(thr) || !isfinite(json_number_value(thr)))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s' must be a finite number", path,
                               metric_keys[kind]);
    r->type = metric_types[kind];
    r->threshold = json_number_value(thr);
    if (against_baseline(r->type) && r->threshold < 0)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s' must not be negative (got %g)",
                               path, metric_keys[kind], r->threshold);
    if (lib != NULL) {
        if (!json_is_boolean(lib))
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s.lower_is_better' must be true or false", path);
        if (!is_improvement(r->type))
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s.lower_is_better': only min_improvement and "
                                   "min_improvement_pct take a direction (drop rules judge a "
                                   "metric where higher is better; use max for the others)",
                                   path);
        r->lower_is_better = json_is_true(lib);
    }
    if (src != NULL) {
        const char *ss = json_string_value(src);
        if (ss != NULL && !strcmp(ss, "pusher"))
            r->source = MLREG_SOURCE_PUSHER;
        else if (ss != NULL && !strcmp(ss, "evaluator"))
            r->source = MLREG_SOURCE_EVALUATOR;
        else
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s.source' must be \"pusher\" (the pushed eval "
                                   "report) or \"evaluator\" (an attestation by a trusted "
                                   "evaluator key)",
                                   path);
    }
    if (bound != NULL) {
        mlreg_bound want = r->type == MLREG_RULE_MIN   ? MLREG_BOUND_CI_LOW
                           : r->type == MLREG_RULE_MAX ? MLREG_BOUND_CI_HIGH
                                                       : MLREG_BOUND_CI;
        if ((bs = json_string_value(bound)) == NULL)
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s.bound' must be \"ci_low\", \"ci_high\" or "
                                   "\"ci\"",
                                   path);
        if (strcmp(bs, bound_names[want]) != 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s.bound': %s takes \"bound\": \"%s\" (min takes "
                                   "\"ci_low\", max \"ci_high\", rules against the baseline "
                                   "\"ci\"), not \"%.64s\"",
                                   path, metric_keys[kind], bound_names[want], bs);
        r->bound = want;
    }
    if ((r->metric = strdup(json_string_value(v))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

/* One rule object at key path @p path (e.g. "gates.production[1]") for the
 * stage at index @p stage_idx. */
static int parse_rule(mlreg_rule *r, const json_t *obj, const char *path, size_t stage_idx)
{
    const char *key, *req, *count_key;
    json_t *v;
    int has_metric, has_require;
    char p2[640];

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
    if (has_metric) return parse_metric_rule(r, obj, path);
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, "require") && strcmp(key, "min") && strcmp(key, "seconds"))
            return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s': unknown rule key", path,
                                   key);
    }
    v = json_object_get(obj, "require");
    req = json_string_value(v);
    if (req == NULL)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s.require' must be a string", path);
    if (!strcmp(req, "previous_stage")) {
        json_object_foreach((json_t *)obj, key, v)
        {
            if (strcmp(key, "require"))
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key '%s.%s': unknown rule key for previous_stage",
                                       path, key);
        }
        if (stage_idx == 0)
            return mlreg_error_set(
                MLREG_EINVALID, "config key '%s.require': previous_stage on the first stage", path);
        r->type = MLREG_RULE_PREVIOUS_STAGE;
        return 0;
    }
    if (!strcmp(req, "signed"))
        r->type = MLREG_RULE_SIGNED;
    else if (!strcmp(req, "approvals"))
        r->type = MLREG_RULE_APPROVALS;
    else if (!strcmp(req, "min_interval"))
        r->type = MLREG_RULE_MIN_INTERVAL;
    else
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s.require': unknown requirement '%.64s' (signed, "
                               "previous_stage, approvals, min_interval)",
                               path, req);
    count_key = r->type == MLREG_RULE_MIN_INTERVAL ? "seconds" : "min";
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, "require") && strcmp(key, count_key))
            return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s': unknown rule key for %s",
                                   path, key, req);
    }
    if ((v = json_object_get(obj, count_key)) == NULL)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s': rule lacks \"%s\"", path,
                               count_key);
    snprintf(p2, sizeof(p2), "%s.%s", path, count_key);
    if (r->type == MLREG_RULE_MIN_INTERVAL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > MLREG_MAX_INTERVAL_SECONDS)
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s' must be an integer number of seconds between "
                                   "1 and %ld",
                                   p2, MLREG_MAX_INTERVAL_SECONDS);
        r->min_count = (long)json_integer_value(v);
        return 0;
    }
    return parse_count(&r->min_count, v, p2);
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
    int held; /* neither passed nor failed: no comparable baseline numbers */
    char rule[320];
    char detail[512];
    int has_cand, has_base, has_delta, has_margin;
    double cand, base, delta, margin;
    const char *baseline_version;
    const char *metric;             /* the row's metric: the concrete name of a slice */
    const mlreg_gate_release *crel; /* whose numbers the candidate column holds */
    const mlreg_gate_release *brel; /* whose numbers the baseline column holds */
    const mlreg_gate_release *bdig; /* whose digests the row shows for the baseline */
} outcome;

/* The numbers a metric rule reads, chosen by its source (choose_sides()). */
typedef struct {
    const mlreg_gate_release *c;    /* the candidate's; NULL: no evaluator's evaluation counts */
    const mlreg_gate_release *b;    /* the baseline's the rule reads; NULL: none */
    const mlreg_gate_release *bdig; /* the baseline numbers whose digests the row shows */
    const char *bversion;           /* the baseline release's version; NULL: no baseline */
    int hold;                       /* against the baseline: no comparable numbers */
    char why[480];                  /* then: the row's detail */
} sides;

static int same_str(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && !strcmp(a, b);
}

static int names_digests(const mlreg_gate_release *x)
{
    return x->dataset_digest != NULL || x->eval_code_digest != NULL;
}

/* Two sets of numbers are comparable when they name the same dataset and
 * eval code digests; neither naming any is today's comparison. */
static int comparable(const mlreg_gate_release *x, const mlreg_gate_release *y)
{
    return same_str(x->dataset_digest, y->dataset_digest) &&
           same_str(x->eval_code_digest, y->eval_code_digest);
}

/* "sha256:" and the first 12 hex digits of @p d, or "none". */
static void short_digest(char out[32], const char *d)
{
    if (d == NULL)
        snprintf(out, 32, "none");
    else
        snprintf(out, 32, "%.19s%s", d, strlen(d) > 19 ? "..." : "");
}

/* "dataset X, eval code Y" of @p x into @p out. */
static void digests_text(char *out, size_t cap, const mlreg_gate_release *x)
{
    char d[32], c[32];

    short_digest(d, x->dataset_digest);
    short_digest(c, x->eval_code_digest);
    snprintf(out, cap, "dataset %s, eval code %s", d, c);
}

/* Which numbers rule @p r reads (see gates.h): the candidate's by its
 * source; for a rule against the baseline, the baseline's pushed report
 * when comparable, else an evaluator's evaluation of the baseline on the
 * candidate's digests; none comparable holds the rule. */
static void choose_sides(sides *sd, const mlreg_rule *r, const mlreg_gate_input *in)
{
    const mlreg_gate_release *c, *found;
    char ct[120], bt[120];

    memset(sd, 0, sizeof(*sd));
    c = sd->c = r->source == MLREG_SOURCE_EVALUATOR ? in->candidate_evaluation : in->candidate;
    if (in->baseline == NULL) return;
    sd->bversion = in->baseline->version;
    if (!against_baseline(r->type)) {
        /* shown for the reader's diff only: the same source's numbers */
        sd->b = sd->bdig =
            r->source == MLREG_SOURCE_EVALUATOR ? in->baseline_evaluation : in->baseline;
        return;
    }
    if (c == NULL) return; /* the rule fails on the candidate */
    if (r->source == MLREG_SOURCE_PUSHER) {
        sd->bdig = in->baseline;
        if (comparable(c, in->baseline)) {
            sd->b = in->baseline;
            return;
        }
        found = in->baseline_evaluation_pusher;
    } else {
        found = names_digests(c) ? in->baseline_evaluation_evaluator : in->baseline_evaluation;
        sd->bdig = found != NULL ? found : in->baseline_evaluation;
    }
    if (found != NULL && comparable(c, found)) {
        sd->b = sd->bdig = found;
        return;
    }
    sd->hold = 1;
    digests_text(ct, sizeof(ct), c);
    if (sd->bdig == NULL) {
        snprintf(sd->why, sizeof(sd->why),
                 "no comparable baseline numbers: re-evaluate the baseline (baseline %.64s has no "
                 "evaluation by a trusted evaluator key; candidate %s)",
                 sd->bversion, ct);
        return;
    }
    digests_text(bt, sizeof(bt), sd->bdig);
    if (!names_digests(c))
        snprintf(sd->why, sizeof(sd->why),
                 "numbers not comparable: the candidate's name no dataset or eval code digest, "
                 "baseline %.64s's do (%s): evaluate the candidate with its digests",
                 sd->bversion, bt);
    else
        snprintf(sd->why, sizeof(sd->why),
                 "baseline evaluated on another dataset: re-evaluate the baseline (candidate %s; "
                 "baseline %.64s %s%s)",
                 ct, sd->bversion, names_digests(sd->bdig) ? "" : "names no digests: ", bt);
}

/* @p x as the shortest of %g and %.17g that reads back to it. */
static void fmt_x(char *buf, size_t cap, double x)
{
    snprintf(buf, cap, "%g", x);
    if (strtod(buf, NULL) != x) snprintf(buf, cap, "%.17g", x);
}

/* The rule column of metric rule @p r on metric @p name. */
static void rule_text(outcome *o, const mlreg_rule *r, const char *name)
{
    char x[40];
    const char *pct = "", *what, *op = ">=", *dir = "";

    fmt_x(x, sizeof(x), r->threshold);
    switch (r->type) {
    case MLREG_RULE_MIN: what = r->bound ? " ci_low" : ""; break;
    case MLREG_RULE_MAX:
        what = r->bound ? " ci_high" : "";
        op = "<=";
        break;
    case MLREG_RULE_MAX_DROP_PCT: pct = "%"; /* fall through */
    case MLREG_RULE_MAX_DROP:
        what = r->bound ? " drop (ci)" : " drop";
        op = "<=";
        break;
    case MLREG_RULE_MIN_IMPROVEMENT_PCT: pct = "%"; /* fall through */
    default:
        what = r->bound ? " improvement (ci)" : " improvement";
        dir = r->lower_is_better ? " (lower is better)" : "";
        break;
    }
    snprintf(o->rule, sizeof(o->rule), "%.200s%s%s %s %s%s%s", name, what, dir, op, x, pct,
             r->source == MLREG_SOURCE_EVALUATOR ? " (evaluator)" : "");
}

/* Judges a rule against the baseline: the candidate and baseline metrics
 * @p cm and @p bm (both finite, same dataset). */
static void eval_baseline_rule(outcome *o, const mlreg_rule *r, const mlreg_metric *cm,
                               const mlreg_metric *bm, const char *bver)
{
    double x = r->threshold, q, shown, qa, qb, tol;
    int drop = r->type == MLREG_RULE_MAX_DROP || r->type == MLREG_RULE_MAX_DROP_PCT;
    int pct = r->type == MLREG_RULE_MAX_DROP_PCT || r->type == MLREG_RULE_MIN_IMPROVEMENT_PCT;
    const char *qname = drop ? "drop" : "improvement";
    char head[200];

    if (r->bound == MLREG_BOUND_CI) {
        if (!cm->has_ci || !bm->has_ci) {
            snprintf(o->detail, sizeof(o->detail),
                     "%s metric %.200s has no confidence interval in its eval report (the rule "
                     "compares intervals)",
                     !cm->has_ci ? "candidate" : "baseline", cm->name);
            return;
        }
        /* the worst case both intervals allow */
        qa = r->lower_is_better ? cm->ci_high : cm->ci_low;
        qb = r->lower_is_better ? bm->ci_low : bm->ci_high;
        if (drop)
            q = bm->ci_high - cm->ci_low;
        else
            q = r->lower_is_better ? bm->ci_low - cm->ci_high : cm->ci_low - bm->ci_high;
        snprintf(head, sizeof(head), "ci [%g, %g] vs baseline ci [%g, %g] (%.64s): worst %s",
                 cm->ci_low, cm->ci_high, bm->ci_low, bm->ci_high, bver, qname);
    } else {
        qa = cm->value;
        qb = bm->value;
        if (drop)
            q = bm->value - cm->value;
        else
            q = r->lower_is_better ? bm->value - cm->value : cm->value - bm->value;
        snprintf(head, sizeof(head), "%g vs baseline %g (%.64s): %s", cm->value, bm->value, bver,
                 qname);
    }
    /* Reports round their numbers to a few decimals and the difference of
     * two doubles carries their representation error (0.92 - 0.89 is
     * 0.030000000000000027): a result within that error of the threshold
     * counts as equal to it. */
    tol = 2 * DBL_EPSILON * (fabs(qa) + fabs(qb));
    if (pct && bm->value == 0) {
        /* a percent of zero: only the sign of the change can be judged */
        o->passed = drop ? q <= tol : (x == 0 ? q >= -tol : q > tol);
        snprintf(o->detail, sizeof(o->detail), "%s %g against a zero baseline: passes only %s%s",
                 head, q,
                 drop ? "without a drop" : (x == 0 ? "without a loss" : "when it improves"),
                 o->passed ? "" : " (fails)");
        return;
    }
    shown = pct ? q / fabs(bm->value) * 100.0 : q;
    if (pct) tol = tol / fabs(bm->value) * 100.0;
    tol += 2 * DBL_EPSILON * fabs(x);
    if (!isfinite(shown) || !isfinite(tol)) {
        /* a percent of a baseline near zero overflows: no judgement to make */
        o->passed = 0;
        snprintf(o->detail, sizeof(o->detail),
                 "%s %g%s is not a finite number (a baseline too close to zero for a percent "
                 "rule; use an absolute one)",
                 head, shown, pct ? "%" : "");
        return;
    }
    /* the allowance for rounding never lets a tie beat a margin above zero */
    o->passed =
        drop ? shown <= x + tol : (x > 0 ? shown > 0 && shown >= x - tol : shown >= x - tol);
    o->has_margin = 1;
    o->margin = drop ? x - shown : shown - x;
    snprintf(o->detail, sizeof(o->detail), "%s %g%s %s %g%s; margin %g%s", head, shown,
             pct ? "%" : "", drop ? (o->passed ? "<=" : ">") : (o->passed ? ">=" : "<"), x,
             pct ? "%" : "", o->margin, pct ? "%" : "");
}

/* Metric rule @p r on metric @p name (the rule's, or a slice's), whose
 * metric is @p cm in the candidate and @p bm in the baseline (NULL: none). */
static void eval_found(outcome *o, const mlreg_rule *r, const char *name, const mlreg_metric *cm,
                       const mlreg_metric *bm, const sides *sd)
{
    const mlreg_gate_release *c = sd->c, *b = sd->b;
    double x = r->threshold, v;

    o->metric = name;
    rule_text(o, r, name);
    o->crel = c;
    o->bdig = sd->bdig;
    if (c == NULL) {
        snprintf(o->detail, sizeof(o->detail),
                 "no evaluation by a trusted evaluator key (the pusher cannot vouch for its own "
                 "numbers: mlreg attest)");
        return;
    }
    if (!c->has_eval_report) {
        snprintf(o->detail, sizeof(o->detail), "release has no eval report");
        return;
    }
    if (cm == NULL) {
        snprintf(o->detail, sizeof(o->detail), "missing metric %.200s", name);
        return;
    }
    o->has_cand = 1;
    o->cand = cm->value;
    if (!isfinite(cm->value)) {
        snprintf(o->detail, sizeof(o->detail), "metric %.200s is not a finite number", name);
        return;
    }
    if (r->type == MLREG_RULE_MIN || r->type == MLREG_RULE_MAX) {
        int is_min = r->type == MLREG_RULE_MIN;
        /* the baseline is shown for the reader's diff; it does not decide */
        if (bm != NULL) {
            o->baseline_version = sd->bversion;
            o->brel = b;
            o->has_base = 1;
            o->base = bm->value;
            o->has_delta = isfinite(bm->value);
            o->delta = cm->value - bm->value;
        }
        if (r->bound != MLREG_BOUND_VALUE && !cm->has_ci) {
            snprintf(o->detail, sizeof(o->detail),
                     "metric %.200s has no confidence interval in the eval report (the rule "
                     "reads %s)",
                     name, bound_names[r->bound]);
            return;
        }
        v = r->bound == MLREG_BOUND_CI_LOW    ? cm->ci_low
            : r->bound == MLREG_BOUND_CI_HIGH ? cm->ci_high
                                              : cm->value;
        o->passed = is_min ? v >= x : v <= x;
        o->has_margin = 1;
        o->margin = is_min ? v - x : x - v;
        if (r->bound != MLREG_BOUND_VALUE)
            snprintf(o->detail, sizeof(o->detail), "%s %g %s %g (value %g, ci [%g, %g])%s",
                     bound_names[r->bound], v,
                     o->passed ? (is_min ? ">=" : "<=") : (is_min ? "<" : ">"), x, cm->value,
                     cm->ci_low, cm->ci_high, o->passed ? "" : " (fails)");
        else
            snprintf(o->detail, sizeof(o->detail), "%g %s %g%s", v,
                     o->passed ? (is_min ? ">=" : "<=") : (is_min ? "<" : ">"), x,
                     o->passed ? "" : " (fails)");
        return;
    }
    /* rules against the baseline */
    if (sd->bversion == NULL) {
        o->passed = 1;
        snprintf(o->detail, sizeof(o->detail), "no baseline");
        return;
    }
    o->baseline_version = sd->bversion;
    if (sd->hold) {
        o->held = 1;
        snprintf(o->detail, sizeof(o->detail), "%s", sd->why);
        return;
    }
    o->brel = b;
    if (bm == NULL) {
        snprintf(o->detail, sizeof(o->detail), "%sbaseline %.64s lacks metric %.200s",
                 b->evaluation ? "the evaluator's evaluation of " : "", sd->bversion, name);
        return;
    }
    o->has_base = 1;
    o->base = bm->value;
    if (!isfinite(bm->value)) {
        snprintf(o->detail, sizeof(o->detail), "baseline metric %.200s is not a finite number",
                 name);
        return;
    }
    o->has_delta = 1;
    o->delta = cm->value - bm->value;
    /* the names only count where no digests do (comparable() decided) */
    if (!names_digests(c) && !same_str(c->dataset, b->dataset)) {
        snprintf(o->detail, sizeof(o->detail),
                 "baseline evaluated on a different dataset (%.200s vs %.200s)",
                 b->dataset ? b->dataset : "none", c->dataset ? c->dataset : "none");
        return;
    }
    eval_baseline_rule(o, r, cm, bm, sd->bversion);
}

/* Metric rule @p r on metric @p name: its metric in each report, if any. */
static void eval_metric(outcome *o, const mlreg_rule *r, const char *name, const sides *sd)
{
    const mlreg_gate_release *c = sd->c, *b = sd->b;

    eval_found(o, r, name, c != NULL && c->has_eval_report ? find_metric(c, name) : NULL,
               b != NULL && b->has_eval_report ? find_metric(b, name) : NULL, sd);
}

/* @p ns as RFC 3339 UTC to the second (rounded up when @p up), into @p out. */
static void fmt_time_sec(char out[MLREG_TIME_STRLEN], int64_t ns, int up)
{
    int64_t sec = ns / 1000000000, rem = ns % 1000000000;
    char *dot;

    if (rem < 0) sec--, rem += 1000000000;
    if (up && rem > 0) sec++;
    mlreg_time_format_sec(out, sec, 0);
    if ((dot = strchr(out, '.')) != NULL) snprintf(dot, 2, "Z");
}

/* The cooldown: the last promotion into the stage was long enough ago. */
static void eval_min_interval(outcome *o, const mlreg_rule *r, const mlreg_gate_input *in)
{
    char last[MLREG_TIME_STRLEN], retry[MLREG_TIME_STRLEN];
    int64_t need = (int64_t)r->min_count * 1000000000, elapsed;

    snprintf(o->rule, sizeof(o->rule), "min interval %ld s since the last promotion", r->min_count);
    if (in->last_promotion_ns == 0) {
        o->passed = 1;
        snprintf(o->detail, sizeof(o->detail), "no earlier promotion into the stage");
        return;
    }
    elapsed = in->now_ns - in->last_promotion_ns;
    o->has_cand = 1;
    o->cand = (double)(elapsed / 1000000000);
    o->has_margin = 1;
    /* whole seconds, rounded down: a row half a second short shows -1, not 0 */
    o->margin = floor((double)(elapsed - need) / 1e9);
    o->passed = elapsed >= need;
    fmt_time_sec(last, in->last_promotion_ns, 0);
    if (o->passed) {
        snprintf(o->detail, sizeof(o->detail),
                 "last promotion into the stage at %s, %lld s ago (>= %ld s)", last,
                 (long long)(elapsed / 1000000000), r->min_count);
        return;
    }
    fmt_time_sec(retry, in->last_promotion_ns + need, 1);
    snprintf(o->detail, sizeof(o->detail),
             "last promotion into the stage at %s, %lld s ago (< %ld s): may be retried at %s "
             "(in %lld s)",
             last, (long long)(elapsed < 0 ? 0 : elapsed / 1000000000), r->min_count, retry,
             (long long)((need - elapsed + 999999999) / 1000000000));
}

static void eval_require(outcome *o, const mlreg_rule *r, const mlreg_gate_input *in)
{
    switch (r->type) {
    case MLREG_RULE_MIN_INTERVAL: eval_min_interval(o, r, in); break;
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
        if (mlreg_rule_is_metric(r->type)) {
            row = json_pack("{s:s, s:s, s:o}", "type", type_names[r->type], "metric", r->metric,
                            "threshold", num(r->threshold));
            if (row != NULL && r->bound != MLREG_BOUND_VALUE &&
                json_object_set_new(row, "bound", json_string(bound_names[r->bound])) < 0)
                json_decref(row), row = NULL;
            if (row != NULL && r->source == MLREG_SOURCE_EVALUATOR &&
                json_object_set_new(row, "source", json_string("evaluator")) < 0)
                json_decref(row), row = NULL;
            if (row != NULL && is_improvement(r->type) &&
                json_object_set_new(row, "lower_is_better", json_boolean(r->lower_is_better)) < 0)
                json_decref(row), row = NULL;
        } else if (r->type == MLREG_RULE_MIN_INTERVAL)
            row = json_pack("{s:s, s:I}", "type", type_names[r->type], "seconds",
                            (json_int_t)r->min_count);
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

/* The attestation whose numbers @p x holds, or null. Members in sorted
 * order, as the audit entry keeps them (a replay restores rows from it). */
static json_t *attestation_json(const mlreg_gate_release *x)
{
    const mlreg_gate_attestation *a = x != NULL ? x->evaluation : NULL;

    if (a == NULL) return json_null();
    return json_pack("{s:s, s:s, s:s, s:I}", "evaluated_at", a->evaluated_at ? a->evaluated_at : "",
                     "key_id", a->key_id ? a->key_id : "", "key_name",
                     a->key_name ? a->key_name : "", "seq", (json_int_t)a->seq);
}

/* {"dataset","eval_code"} digests of @p x (null for what it names not). */
static json_t *digests_json(const mlreg_gate_release *x)
{
    return json_pack("{s:s?, s:s?}", "dataset", x ? x->dataset_digest : NULL, "eval_code",
                     x ? x->eval_code_digest : NULL);
}

/* Appends the row of outcome @p o of rule @p r to @p table. */
static int append_row(json_t *table, const mlreg_rule *r, const outcome *o)
{
    int is_metric = mlreg_rule_is_metric(r->type);
    json_t *row =
        json_pack("{s:s, s:s, s:s?, s:o, s:o, s:s?, s:o, s:o, s:b, s:s, s:o, s:s?}", "rule",
                  o->rule, "type", type_names[r->type], "metric", is_metric ? o->metric : NULL,
                  "threshold", is_metric ? num(r->threshold) : json_integer(r->min_count),
                  "candidate", o->has_cand ? num(o->cand) : json_null(), "baseline_version",
                  o->baseline_version, "baseline", o->has_base ? num(o->base) : json_null(),
                  "delta", o->has_delta ? num(o->delta) : json_null(), "passed", o->passed,
                  "detail", o->detail, "margin", o->has_margin ? num(o->margin) : json_null(),
                  "bound", r->bound != MLREG_BOUND_VALUE ? bound_names[r->bound] : NULL);

    if (row == NULL ||
        json_object_set_new(row, "outcome",
                            json_string(o->passed ? "pass"
                                        : o->held ? "hold"
                                                  : "fail")) < 0 ||
        (is_metric &&
         (json_object_set_new(
              row, "source",
              json_string(r->source == MLREG_SOURCE_EVALUATOR ? "evaluator" : "pusher")) < 0 ||
          json_object_set_new(row, "evaluation", attestation_json(o->crel)) < 0 ||
          json_object_set_new(row, "baseline_evaluation", attestation_json(o->brel)) < 0)) ||
        (against_baseline(r->type) &&
         json_object_set_new(row, "digests",
                             json_pack("{s:o, s:o}", "baseline", digests_json(o->bdig), "candidate",
                                       digests_json(o->crel))) < 0)) {
        json_decref(row);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory evaluating gates");
    }
    if (json_array_append_new(table, row) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory evaluating gates");
    return 0;
}

/* 1 when metric @p name matches the pattern split at its '*' segment into
 * @p pre (ending with '.', or empty) and @p suf (starting with '.'): one
 * segment, without '.', in the star's place. */
static int slice_match(const char *name, const char *pre, size_t plen, const char *suf, size_t slen)
{
    size_t n = strlen(name);
    const char *mid;

    if (n < plen + slen + 1 || memcmp(name, pre, plen) || memcmp(name + n - slen, suf, slen))
        return 0;
    mid = name + plen;
    return memchr(mid, '.', n - plen - slen) == NULL;
}

static int metric_cmp(const void *a, const void *b)
{
    return strcmp((*(const mlreg_metric *const *)a)->name, (*(const mlreg_metric *const *)b)->name);
}

/* The metrics of @p rel matching the pattern, sorted by name, into *out
 * (malloc'd; *n_out of them). Sorted, the candidate's and the baseline's
 * merge in one pass: a report may hold MLREG_MAX_METRICS slices, and this
 * runs inside the promotion's write transaction. */
static int slice_metrics(const mlreg_metric ***out, size_t *n_out, const mlreg_gate_release *rel,
                         const char *pre, size_t plen, const char *suf, size_t slen)
{
    const mlreg_metric **ms = NULL;
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (rel == NULL || !rel->has_eval_report || rel->n_metrics == 0) return 0;
    if ((ms = calloc(rel->n_metrics, sizeof(*ms))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory evaluating gates");
    for (size_t i = 0; i < rel->n_metrics; i++)
        if (slice_match(rel->metrics[i].name, pre, plen, suf, slen)) ms[n++] = &rel->metrics[i];
    qsort(ms, n, sizeof(*ms), metric_cmp);
    *out = ms;
    *n_out = n;
    return 0;
}

/* A slice rule (metric with a '*' segment): one row per slice. Candidate
 * and baseline slices are merged in name order; see gates.h for which
 * pass. */
static int eval_slices(json_t *table, int *all, size_t *slice_rows, const mlreg_rule *r,
                       const mlreg_gate_input *in)
{
    const char *star = strchr(r->metric, '*'), *suf = star + 1;
    size_t plen = (size_t)(star - r->metric), slen = strlen(suf), nc = 0, nb = 0, i = 0, j = 0,
           rows;
    const mlreg_metric **cm = NULL, **bm = NULL;
    int error = 0, cmp, vs_base = against_baseline(r->type);
    outcome o;
    sides sd;

    /* held: no baseline slices to compare, every candidate slice holds */
    choose_sides(&sd, r, in);
    if ((error = slice_metrics(&cm, &nc, sd.c, r->metric, plen, suf, slen)) < 0 ||
        (error = slice_metrics(&bm, &nb, sd.b, r->metric, plen, suf, slen)) < 0)
        goto done;
    if (nc == 0) {
        memset(&o, 0, sizeof(o));
        eval_metric(&o, r, r->metric, &sd); /* no eval report, or no such metric */
        if (sd.c != NULL && sd.c->has_eval_report)
            snprintf(o.detail, sizeof(o.detail), "no metric matches %.200s in the eval report",
                     r->metric);
        *all = 0;
        error = append_row(table, r, &o);
        goto done;
    }
    /* every row goes into the promotion's audit entry, which is bounded
     * (MLREG_AUDIT_ENTRY_MAX): the slice rows of the whole table are
     * (@p slice_rows so far), and a rule that would pass the bound fails in
     * one row */
    rows = *slice_rows;
    for (size_t a = 0, z = 0; a < nc || (vs_base && z < nb);) {
        cmp = a == nc ? 1 : z == nb ? -1 : strcmp(cm[a]->name, bm[z]->name);
        if (cmp <= 0) a++;
        if (cmp >= 0) z++;
        if (cmp > 0 && !vs_base) continue; /* not a row: see below */
        if (++rows > MLREG_MAX_SLICE_ROWS) {
            memset(&o, 0, sizeof(o));
            o.metric = r->metric;
            rule_text(&o, r, r->metric);
            snprintf(o.detail, sizeof(o.detail),
                     "%.200s matches more slices than the table may judge (%d slice rows in "
                     "all, %zu taken by the rules before)",
                     r->metric, MLREG_MAX_SLICE_ROWS, *slice_rows);
            *all = 0;
            error = append_row(table, r, &o);
            goto done;
        }
    }
    *slice_rows = rows;
    while (i < nc || (vs_base && j < nb)) {
        memset(&o, 0, sizeof(o));
        cmp = i == nc ? 1 : j == nb ? -1 : strcmp(cm[i]->name, bm[j]->name);
        if (cmp > 0 && !vs_base) {
            j++; /* min/max read no baseline: its own slices do not matter */
            continue;
        }
        if (cmp < 0 && vs_base && nb > 0) {
            /* a slice the baseline does not have: nothing to compare */
            o.metric = cm[i]->name;
            rule_text(&o, r, cm[i]->name);
            o.crel = sd.c;
            o.bdig = sd.bdig;
            o.has_cand = 1;
            o.cand = cm[i]->value;
            o.baseline_version = sd.bversion;
            o.passed = isfinite(cm[i]->value);
            snprintf(o.detail, sizeof(o.detail), "%s: baseline %.64s does not have it",
                     o.passed ? "new slice" : "new slice with a value that is not a finite number",
                     sd.bversion);
            i++;
        } else if (cmp > 0) {
            o.metric = bm[j]->name;
            rule_text(&o, r, bm[j]->name);
            o.crel = sd.c;
            o.brel = sd.b;
            o.bdig = sd.bdig;
            o.baseline_version = sd.bversion;
            o.has_base = 1;
            o.base = bm[j]->value;
            snprintf(o.detail, sizeof(o.detail),
                     "slice missing from the candidate (baseline %.64s has it)", sd.bversion);
            j++;
        } else {
            /* in both; or, against a baseline without any slice, "lacks" */
            eval_found(&o, r, cm[i]->name, cm[i], cmp == 0 ? bm[j] : NULL, &sd);
            i++;
            if (cmp == 0) j++;
        }
        if (!o.passed) *all = 0;
        if ((error = append_row(table, r, &o)) < 0) goto done;
    }

done:
    free(cm);
    free(bm);
    return error;
}

int mlreg_gates_evaluate(json_t **table_out, int *passed_out, const mlreg_rule *rules, size_t n,
                         const mlreg_gate_input *in)
{
    int error = 0, all = 1;
    json_t *table = json_array();
    size_t slice_rows = 0;
    outcome o;
    sides sd;

    if (table == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory evaluating gates");
    for (size_t i = 0; i < n; i++) {
        const mlreg_rule *r = &rules[i];
        if (mlreg_rule_is_metric(r->type) && strchr(r->metric, '*') != NULL) {
            if ((error = eval_slices(table, &all, &slice_rows, r, in)) < 0) goto done;
            continue;
        }
        memset(&o, 0, sizeof(o));
        if (mlreg_rule_is_metric(r->type)) {
            choose_sides(&sd, r, in);
            eval_metric(&o, r, r->metric, &sd);
        } else
            eval_require(&o, r, in);
        if (!o.passed) all = 0;
        if ((error = append_row(table, r, &o)) < 0) goto done;
    }
    *table_out = table;
    table = NULL;
    *passed_out = all;

done:
    json_decref(table);
    return error;
}
