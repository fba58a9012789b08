/* check_gates_noise.c: the noise-aware gate rules (include/mlreg/gates.h):
 * min_improvement and min_improvement_pct (with a direction), rules that
 * read confidence intervals ("bound"), slice rules ("slices.*.accuracy",
 * one row per slice) and the min_interval cooldown; their strict parsing,
 * and how they show in the rules the stages answer carries. */
#include "mlreg/common.h"
#include "mlreg/gates.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static mlreg_policy *parse_gates(const char *gates)
{
    json_t *g = json_loads(gates, 0, NULL);
    mlreg_policy *p = NULL;
    int rc;

    ck_assert_msg(g != NULL, "test JSON does not parse: %s", gates);
    rc = mlreg_policy_parse(&p, NULL, g, NULL);
    json_decref(g);
    if (rc < 0) ck_assert_ptr_null(p);
    return p;
}

/* Expects @p gates to be refused with @p needle in the message. */
static void refused(const char *gates, const char *needle)
{
    mlreg_policy *p = parse_gates(gates);

    ck_assert_msg(p == NULL, "accepted: %s", gates);
    ck_assert_msg(strstr(mlreg_error_last(), needle) != NULL, "message '%s' lacks '%s'",
                  mlreg_error_last(), needle);
}

START_TEST(test_noise_aware_rules_parse_and_show_as_configured)
{
    mlreg_policy *p =
        parse_gates("{\"production\":[{\"metric\":\"accuracy\",\"min_improvement\":0.01},"
                    "{\"metric\":\"loss\",\"min_improvement_pct\":2,\"lower_is_better\":true},"
                    "{\"metric\":\"accuracy\",\"min\":0.9,\"bound\":\"ci_low\"},"
                    "{\"metric\":\"latency\",\"max\":200,\"bound\":\"ci_high\"},"
                    "{\"metric\":\"f1\",\"max_drop\":0.02,\"bound\":\"ci\"},"
                    "{\"metric\":\"slices.*.accuracy\",\"max_drop\":0.01},"
                    "{\"require\":\"min_interval\",\"seconds\":3600}]}");
    const mlreg_rule *r;
    size_t n;
    json_t *shown;

    ck_assert_msg(p != NULL, "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_policy_rules(&r, &n, p, "clf", "production"), 0);
    ck_assert_int_eq(n, 7);
    ck_assert_int_eq(r[0].type, MLREG_RULE_MIN_IMPROVEMENT);
    ck_assert_int_eq(r[0].lower_is_better, 0);
    ck_assert_int_eq(r[1].type, MLREG_RULE_MIN_IMPROVEMENT_PCT);
    ck_assert_int_eq(r[1].lower_is_better, 1);
    ck_assert_int_eq(r[2].bound, MLREG_BOUND_CI_LOW);
    ck_assert_int_eq(r[3].bound, MLREG_BOUND_CI_HIGH);
    ck_assert_int_eq(r[4].bound, MLREG_BOUND_CI);
    ck_assert_str_eq(r[5].metric, "slices.*.accuracy");
    ck_assert_int_eq(r[6].type, MLREG_RULE_MIN_INTERVAL);
    ck_assert_int_eq(r[6].min_count, 3600);
    ck_assert(mlreg_rule_is_metric(MLREG_RULE_MIN_IMPROVEMENT_PCT));
    ck_assert(!mlreg_rule_is_metric(MLREG_RULE_MIN_INTERVAL));

    shown = mlreg_rules_json(r, n);
    ck_assert_ptr_nonnull(shown);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(shown, 0), "type")),
                     "min_improvement");
    ck_assert(json_is_false(json_object_get(json_array_get(shown, 0), "lower_is_better")));
    ck_assert(json_is_true(json_object_get(json_array_get(shown, 1), "lower_is_better")));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(shown, 2), "bound")),
                     "ci_low");
    ck_assert_ptr_null(json_object_get(json_array_get(shown, 5), "bound"));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(shown, 6), "type")),
                     "min_interval");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(shown, 6), "seconds")),
                     3600);
    json_decref(shown);
    mlreg_policy_free(p);
}
END_TEST

START_TEST(test_bad_noise_aware_rules_are_refused_naming_the_key)
{
    /* bound: only on metric rules, only the conservative pairing, a string */
    refused("{\"staging\":[{\"require\":\"signed\",\"min\":1,\"bound\":\"ci\"}]}",
            "'gates.staging[0].bound': unknown rule key");
    refused("{\"staging\":[{\"metric\":\"a\",\"min\":1,\"bound\":\"ci_high\"}]}",
            "'gates.staging[0].bound': min takes \"bound\": \"ci_low\"");
    refused("{\"staging\":[{\"metric\":\"a\",\"max\":1,\"bound\":\"ci_low\"}]}",
            "max takes \"bound\": \"ci_high\"");
    refused("{\"staging\":[{\"metric\":\"a\",\"max_drop\":1,\"bound\":\"ci_low\"}]}",
            "max_drop takes \"bound\": \"ci\"");
    refused("{\"staging\":[{\"metric\":\"a\",\"min\":1,\"bound\":\"ci\"}]}", "min takes");
    refused("{\"staging\":[{\"metric\":\"a\",\"min\":1,\"bound\":1}]}",
            "'gates.staging[0].bound' must be");
    refused("{\"staging\":[{\"metric\":\"a\",\"min\":1,\"bound\":\"CI_LOW\"}]}", "min takes");
    /* improvement rules */
    refused("{\"staging\":[{\"metric\":\"a\",\"min_improvement\":-0.1}]}",
            "'gates.staging[0].min_improvement' must not be negative");
    refused("{\"staging\":[{\"metric\":\"a\",\"min_improvement_pct\":\"1\"}]}",
            "'gates.staging[0].min_improvement_pct' must be a finite number");
    refused("{\"staging\":[{\"metric\":\"a\",\"min_improvement\":0.1,\"max_drop\":0.1}]}",
            "a metric rule has one of");
    refused("{\"staging\":[{\"metric\":\"a\",\"min_improvement\":0.1,\"lower_is_better\":1}]}",
            "'gates.staging[0].lower_is_better' must be true or false");
    refused("{\"staging\":[{\"metric\":\"a\",\"max_drop\":0.1,\"lower_is_better\":true}]}",
            "'gates.staging[0].lower_is_better': only min_improvement");
    refused("{\"staging\":[{\"metric\":\"a\",\"min\":0.1,\"lower_is_better\":false}]}",
            "only min_improvement");
    refused("{\"staging\":[{\"metric\":\"a\",\"higher_is_better\":true,\"min\":1}]}",
            "'gates.staging[0].higher_is_better': unknown rule key");
    /* wildcards: one whole segment, once, not the last */
    refused("{\"staging\":[{\"metric\":\"slices.*\",\"min\":1}]}",
            "'gates.staging[0].metric': a wildcard is one whole segment");
    refused("{\"staging\":[{\"metric\":\"slices.e*.acc\",\"min\":1}]}", "a wildcard is one");
    refused("{\"staging\":[{\"metric\":\"slices.*x.acc\",\"min\":1}]}", "a wildcard is one");
    refused("{\"staging\":[{\"metric\":\"*.*.acc\",\"min\":1}]}", "a wildcard is one");
    refused("{\"staging\":[{\"metric\":\"s.*.a.*.b\",\"min\":1}]}", "a wildcard is one");
    refused("{\"staging\":[{\"metric\":\"*\",\"min\":1}]}", "a wildcard is one");
    refused("{\"staging\":[{\"metric\":\"s.**.a\",\"min\":1}]}", "a wildcard is one");
    /* min_interval */
    refused("{\"staging\":[{\"require\":\"min_interval\"}]}",
            "'gates.staging[0]': rule lacks \"seconds\"");
    refused("{\"staging\":[{\"require\":\"min_interval\",\"seconds\":0}]}",
            "'gates.staging[0].seconds' must be an integer number of seconds between 1 and");
    refused("{\"staging\":[{\"require\":\"min_interval\",\"seconds\":31536001}]}",
            "between 1 and 31536000");
    refused("{\"staging\":[{\"require\":\"min_interval\",\"seconds\":1.5}]}", "must be an integer");
    refused("{\"staging\":[{\"require\":\"min_interval\",\"seconds\":\"60\"}]}",
            "must be an integer");
    refused("{\"staging\":[{\"require\":\"min_interval\",\"min\":60}]}",
            "'gates.staging[0].min': unknown rule key for min_interval");
    refused("{\"staging\":[{\"require\":\"signed\",\"seconds\":60}]}",
            "'gates.staging[0].seconds': unknown rule key for signed");
    refused("{\"staging\":[{\"require\":\"previous_stage\",\"seconds\":60}]}",
            "'gates.staging[0].seconds': unknown rule key for previous_stage");
    refused("{\"staging\":[{\"require\":\"cooldown\",\"seconds\":60}]}",
            "unknown requirement 'cooldown' (signed, previous_stage, approvals, min_interval)");
}
END_TEST

/* ---- evaluation ---------------------------------------------------------------- */

static mlreg_metric cand_m[8], base_m[8];
static mlreg_gate_release cand, base;
static mlreg_gate_input in;

static mlreg_metric ci(const char *name, double v, double lo, double hi)
{
    return (mlreg_metric){.name = name, .value = v, .has_ci = 1, .ci_low = lo, .ci_high = hi};
}

static void eval_setup(void)
{
    memset(&cand, 0, sizeof(cand));
    memset(&base, 0, sizeof(base));
    memset(&in, 0, sizeof(in));
    cand_m[0] = ci("accuracy", 0.93, 0.91, 0.95);
    cand_m[1] = (mlreg_metric){.name = "loss", .value = 0.40};
    cand_m[2] = (mlreg_metric){.name = "f1", .value = 0.80};
    base_m[0] = ci("accuracy", 0.90, 0.88, 0.92);
    base_m[1] = (mlreg_metric){.name = "loss", .value = 0.50};
    base_m[2] = (mlreg_metric){.name = "f1", .value = 0.80};
    cand.version = "2.0";
    cand.has_eval_report = 1;
    cand.metrics = cand_m;
    cand.n_metrics = 3;
    cand.dataset = "val";
    base.version = "1.0";
    base.has_eval_report = 1;
    base.metrics = base_m;
    base.n_metrics = 3;
    base.dataset = "val";
    in.candidate = &cand;
    in.baseline = &base;
}

/* The table of one rule (owned by the caller); *passed the verdict. */
static json_t *eval_rule(int *passed, const mlreg_rule *r)
{
    json_t *table = NULL;
    int all = -1;

    ck_assert_int_eq(mlreg_gates_evaluate(&table, &all, r, 1, &in), 0);
    *passed = all;
    return table;
}

/* One metric rule with one row: its row (owned by the caller). */
static json_t *eval1(int *passed, mlreg_rule_type t, const char *metric, double x,
                     mlreg_bound bound, int lower_is_better)
{
    mlreg_rule r = {.type = t,
                    .metric = (char *)metric,
                    .threshold = x,
                    .bound = bound,
                    .lower_is_better = lower_is_better};
    json_t *table = eval_rule(passed, &r), *row;

    ck_assert_int_eq(json_array_size(table), 1);
    row = json_incref(json_array_get(table, 0));
    json_decref(table);
    ck_assert_int_eq(json_is_true(json_object_get(row, "passed")), *passed);
    return row;
}

static const char *sget(const json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    return s ? s : "(null)";
}

static double dget(const json_t *row, const char *key)
{
    ck_assert_msg(json_is_number(json_object_get(row, key)), "%s is not a number", key);
    return json_number_value(json_object_get(row, key));
}

static void has(const json_t *row, const char *key, const char *needle)
{
    ck_assert_msg(strstr(sget(row, key), needle) != NULL, "%s '%s' lacks '%s'", key, sget(row, key),
                  needle);
}

START_TEST(test_min_improvement_needs_a_margin_over_the_baseline)
{
    int ok;
    json_t *row;

    /* 0.93 vs 0.90: improvement 0.03 */
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "accuracy", 0.02, 0, 0);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(sget(row, "rule"), "accuracy improvement >= 0.02");
    ck_assert_str_eq(sget(row, "type"), "min_improvement");
    ck_assert(fabs(dget(row, "delta") - 0.03) < 1e-12);
    ck_assert(fabs(dget(row, "margin") - 0.01) < 1e-12);
    ck_assert_str_eq(sget(row, "baseline_version"), "1.0");
    has(row, "detail", "improvement 0.03 >= 0.02; margin 0.01");
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "accuracy", 0.05, 0, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert(fabs(dget(row, "margin") + 0.02) < 1e-12);
    has(row, "detail", "improvement 0.03 < 0.05");
    json_decref(row);
    /* a tie does not beat the champion unless the margin is 0 */
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "f1", 0.001, 0, 0);
    ck_assert_int_eq(ok, 0);
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "f1", 0, 0, 0);
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    /* lower is better: loss 0.40 vs 0.50 improves by 0.1 */
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "loss", 0.05, 0, 1);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(sget(row, "rule"), "loss improvement (lower is better) >= 0.05");
    ck_assert(fabs(dget(row, "delta") + 0.1) < 1e-12); /* delta stays candidate - baseline */
    json_decref(row);
    /* the same numbers read as higher-is-better are a loss of 0.1 */
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "loss", 0, 0, 0);
    ck_assert_int_eq(ok, 0);
    json_decref(row);
}
END_TEST

START_TEST(test_min_improvement_pct_is_relative_and_a_zero_baseline_needs_a_gain)
{
    int ok;
    json_t *row;

    /* loss 0.5 -> 0.4 lower-is-better: 20% */
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT_PCT, "loss", 15, 0, 1);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(sget(row, "rule"), "loss improvement (lower is better) >= 15%");
    ck_assert(fabs(dget(row, "margin") - 5) < 1e-9);
    has(row, "detail", "improvement 20% >= 15%");
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT_PCT, "loss", 25, 0, 1);
    ck_assert_int_eq(ok, 0);
    json_decref(row);
    base_m[2].value = 0;
    cand_m[2].value = 0;
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT_PCT, "f1", 1, 0, 0);
    ck_assert_int_eq(ok, 0);
    has(row, "detail", "zero baseline");
    ck_assert(json_is_null(json_object_get(row, "margin")));
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT_PCT, "f1", 0, 0, 0);
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    cand_m[2].value = 0.1;
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT_PCT, "f1", 50, 0, 0);
    ck_assert_int_eq(ok, 1);
    json_decref(row);
}
END_TEST

START_TEST(test_improvement_rules_pass_without_baseline_and_fail_on_doubt)
{
    int ok;
    json_t *row;

    in.baseline = NULL;
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "accuracy", 0.5, 0, 0);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(sget(row, "detail"), "no baseline");
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT_PCT, "accuracy", 0.5, MLREG_BOUND_CI, 0);
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    in.baseline = &base;
    base.n_metrics = 1; /* the baseline lacks loss */
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "loss", 0, 0, 1);
    ck_assert_int_eq(ok, 0);
    has(row, "detail", "baseline 1.0 lacks metric loss");
    json_decref(row);
    base.dataset = "other";
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "accuracy", 0, 0, 0);
    ck_assert_int_eq(ok, 0);
    has(row, "detail", "different dataset");
    json_decref(row);
    cand.has_eval_report = 0;
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "accuracy", 0, 0, 0);
    ck_assert_int_eq(ok, 0);
    has(row, "detail", "release has no eval report");
    json_decref(row);
}
END_TEST

START_TEST(test_min_and_max_read_the_interval_bound)
{
    int ok;
    json_t *row;

    /* accuracy 0.93 in [0.91, 0.95] */
    row = eval1(&ok, MLREG_RULE_MIN, "accuracy", 0.92, MLREG_BOUND_CI_LOW, 0);
    ck_assert_int_eq(ok, 0); /* the value passes, the lower bound does not */
    ck_assert_str_eq(sget(row, "rule"), "accuracy ci_low >= 0.92");
    ck_assert_str_eq(sget(row, "bound"), "ci_low");
    ck_assert(fabs(dget(row, "candidate") - 0.93) < 1e-12);
    ck_assert(fabs(dget(row, "margin") + 0.01) < 1e-12);
    has(row, "detail", "ci_low 0.91 < 0.92 (value 0.93, ci [0.91, 0.95]) (fails)");
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MIN, "accuracy", 0.91, MLREG_BOUND_CI_LOW, 0);
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MAX, "accuracy", 0.94, MLREG_BOUND_CI_HIGH, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(row, "rule"), "accuracy ci_high <= 0.94");
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MAX, "accuracy", 0.95, MLREG_BOUND_CI_HIGH, 0);
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    /* no interval: the rule fails and says why, even when the value would pass */
    row = eval1(&ok, MLREG_RULE_MIN, "f1", 0.1, MLREG_BOUND_CI_LOW, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(row, "detail"),
                     "metric f1 has no confidence interval in the eval report (the rule reads "
                     "ci_low)");
    json_decref(row);
    /* without a bound the value decides and the row has no bound */
    row = eval1(&ok, MLREG_RULE_MIN, "accuracy", 0.92, 0, 0);
    ck_assert_int_eq(ok, 1);
    ck_assert(json_is_null(json_object_get(row, "bound")));
    json_decref(row);
}
END_TEST

START_TEST(test_drop_with_ci_bound_takes_the_worst_case_of_both_intervals)
{
    int ok;
    json_t *row;

    /* candidate [0.89, 0.93] value 0.91, baseline [0.88, 0.92] value 0.90:
     * the values improve, the worst case drops 0.92 - 0.89 = 0.03 */
    cand_m[0] = ci("accuracy", 0.91, 0.89, 0.93);
    row = eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 0.02, MLREG_BOUND_CI, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(row, "rule"), "accuracy drop (ci) <= 0.02");
    ck_assert_str_eq(sget(row, "bound"), "ci");
    has(row, "detail", "ci [0.89, 0.93] vs baseline ci [0.88, 0.92] (1.0): worst drop 0.03 > 0.02");
    ck_assert(fabs(dget(row, "margin") + 0.01) < 1e-12);
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 0.03, MLREG_BOUND_CI, 0);
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 0.0, 0, 0); /* values: no drop */
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    /* percent of the baseline's value: 0.03 / 0.9 = 3.33% */
    row = eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 3, MLREG_BOUND_CI, 0);
    ck_assert_int_eq(ok, 0);
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 3.4, MLREG_BOUND_CI, 0);
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    /* either side without an interval fails */
    row = eval1(&ok, MLREG_RULE_MAX_DROP, "f1", 1, MLREG_BOUND_CI, 0);
    ck_assert_int_eq(ok, 0);
    has(row, "detail", "candidate metric f1 has no confidence interval");
    json_decref(row);
    base_m[0] = (mlreg_metric){.name = "accuracy", .value = 0.9};
    row = eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 1, MLREG_BOUND_CI, 0);
    ck_assert_int_eq(ok, 0);
    has(row, "detail", "baseline metric accuracy has no confidence interval");
    json_decref(row);
}
END_TEST

START_TEST(test_min_improvement_with_ci_bound_needs_the_intervals_apart)
{
    int ok;
    json_t *row;

    /* candidate [0.91, 0.95], baseline [0.88, 0.92]: smallest gain 0.91 - 0.92 = -0.01 */
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "accuracy", 0, MLREG_BOUND_CI, 0);
    ck_assert_int_eq(ok, 0);
    has(row, "detail", "worst improvement -0.01 < 0");
    json_decref(row);
    cand_m[0] = ci("accuracy", 0.96, 0.94, 0.98);
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "accuracy", 0.015, MLREG_BOUND_CI, 0);
    ck_assert_int_eq(ok, 1);
    ck_assert(fabs(dget(row, "margin") - 0.005) < 1e-12);
    json_decref(row);
    /* lower is better: baseline.ci_low - candidate.ci_high */
    cand_m[1] = ci("loss", 0.30, 0.28, 0.32);
    base_m[1] = ci("loss", 0.50, 0.45, 0.55);
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "loss", 0.13, MLREG_BOUND_CI, 1);
    ck_assert_int_eq(ok, 1); /* 0.45 - 0.32 = 0.13 */
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MIN_IMPROVEMENT, "loss", 0.14, MLREG_BOUND_CI, 1);
    ck_assert_int_eq(ok, 0);
    json_decref(row);
}
END_TEST

/* ---- slices ------------------------------------------------------------------- */

static void slices_setup(void)
{
    eval_setup();
    cand_m[0] = (mlreg_metric){.name = "slices.en.accuracy", .value = 0.90};
    cand_m[1] = (mlreg_metric){.name = "slices.de.accuracy", .value = 0.80};
    cand_m[2] = (mlreg_metric){.name = "slices.fr.accuracy", .value = 0.70};
    cand_m[3] = (mlreg_metric){.name = "slices.en.f1", .value = 0.5};
    cand_m[4] = (mlreg_metric){.name = "slices.en.sub.accuracy", .value = 0.1};
    cand_m[5] = (mlreg_metric){.name = "accuracy", .value = 0.85};
    cand.n_metrics = 6;
    base_m[0] = (mlreg_metric){.name = "slices.de.accuracy", .value = 0.82};
    base_m[1] = (mlreg_metric){.name = "slices.en.accuracy", .value = 0.905};
    base_m[2] = (mlreg_metric){.name = "slices.es.accuracy", .value = 0.60};
    base_m[3] = (mlreg_metric){.name = "accuracy", .value = 0.86};
    base.n_metrics = 4;
}

START_TEST(test_slice_rule_has_one_row_per_slice_and_fails_a_missing_one)
{
    mlreg_rule r = {
        .type = MLREG_RULE_MAX_DROP, .metric = (char *)"slices.*.accuracy", .threshold = 0.01};
    int ok;
    json_t *t = eval_rule(&ok, &r), *row;

    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), 4); /* de, en, es (baseline only), fr (new) */
    row = json_array_get(t, 0);
    ck_assert_str_eq(sget(row, "metric"), "slices.de.accuracy");
    ck_assert_str_eq(sget(row, "rule"), "slices.de.accuracy drop <= 0.01");
    ck_assert(!json_is_true(json_object_get(row, "passed"))); /* drop 0.02 */
    has(row, "detail", "drop 0.02 > 0.01");
    row = json_array_get(t, 1);
    ck_assert_str_eq(sget(row, "metric"), "slices.en.accuracy");
    ck_assert(json_is_true(json_object_get(row, "passed"))); /* drop 0.005 */
    row = json_array_get(t, 2);
    ck_assert_str_eq(sget(row, "metric"), "slices.es.accuracy");
    ck_assert(!json_is_true(json_object_get(row, "passed")));
    ck_assert_str_eq(sget(row, "detail"), "slice missing from the candidate (baseline 1.0 has it)");
    ck_assert(json_is_null(json_object_get(row, "candidate")));
    ck_assert(fabs(dget(row, "baseline") - 0.6) < 1e-12);
    row = json_array_get(t, 3);
    ck_assert_str_eq(sget(row, "metric"), "slices.fr.accuracy");
    ck_assert(json_is_true(json_object_get(row, "passed")));
    has(row, "detail", "new slice");
    json_decref(t);

    /* every slice within the limit, none missing: passes */
    r.threshold = 0.03;
    base.n_metrics = 2;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(json_array_size(t), 3);
    json_decref(t);
}
END_TEST

START_TEST(test_slice_rule_without_slices_fails_and_min_applies_to_each)
{
    mlreg_rule r = {
        .type = MLREG_RULE_MIN, .metric = (char *)"slices.*.accuracy", .threshold = 0.75};
    int ok;
    json_t *t = eval_rule(&ok, &r), *row;

    /* min reads no baseline: the candidate's three slices, fr fails */
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), 3);
    ck_assert_str_eq(sget(json_array_get(t, 2), "metric"), "slices.fr.accuracy");
    ck_assert(!json_is_true(json_object_get(json_array_get(t, 2), "passed")));
    ck_assert(json_is_true(json_object_get(json_array_get(t, 0), "passed")));
    json_decref(t);

    /* no slice at all in the candidate */
    r.metric = (char *)"slices.*.recall";
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), 1);
    row = json_array_get(t, 0);
    ck_assert_str_eq(sget(row, "metric"), "slices.*.recall");
    ck_assert_str_eq(sget(row, "detail"), "no metric matches slices.*.recall in the eval report");
    json_decref(t);

    /* a leading wildcard (lm-evaluation-harness tasks) */
    r.metric = (char *)"*.accuracy";
    r.threshold = 0;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0); /* "accuracy" alone has no segment before it */
    json_decref(t);
    cand_m[5].name = "hellaswag.accuracy";
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(json_array_size(t), 1);
    json_decref(t);
}
END_TEST

START_TEST(test_slice_rule_without_baseline_or_its_slices)
{
    mlreg_rule r = {
        .type = MLREG_RULE_MAX_DROP, .metric = (char *)"slices.*.accuracy", .threshold = 0.01};
    int ok;
    json_t *t;

    in.baseline = NULL;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(json_array_size(t), 3);
    ck_assert_str_eq(sget(json_array_get(t, 0), "detail"), "no baseline");
    json_decref(t);
    /* a baseline without any slice compares nothing: every slice fails */
    in.baseline = &base;
    base_m[0].name = "x";
    base_m[1].name = "y";
    base_m[2].name = "z";
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), 3);
    has(json_array_get(t, 0), "detail", "baseline 1.0 lacks metric slices.de.accuracy");
    json_decref(t);
    /* no eval report: one failing row */
    cand.has_eval_report = 0;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), 1);
    ck_assert_str_eq(sget(json_array_get(t, 0), "detail"), "release has no eval report");
    json_decref(t);
}
END_TEST

START_TEST(test_slice_rule_with_ci_bound_judges_each_slice_interval)
{
    mlreg_rule r = {.type = MLREG_RULE_MAX_DROP,
                    .metric = (char *)"slices.*.accuracy",
                    .threshold = 0.05,
                    .bound = MLREG_BOUND_CI};
    int ok;
    json_t *t;

    base.n_metrics = 2;                                     /* de and en */
    cand_m[0] = ci("slices.en.accuracy", 0.90, 0.88, 0.92); /* vs en 0.905 without interval */
    base_m[0] = ci("slices.de.accuracy", 0.82, 0.80, 0.84);
    cand_m[1] = ci("slices.de.accuracy", 0.80, 0.79, 0.81); /* worst drop 0.84 - 0.79 */
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(json_array_get(t, 0), "rule"), "slices.de.accuracy drop (ci) <= 0.05");
    ck_assert(json_is_true(json_object_get(json_array_get(t, 0), "passed")));
    has(json_array_get(t, 0), "detail", "worst drop 0.05 <= 0.05");
    ck_assert_str_eq(sget(json_array_get(t, 0), "bound"), "ci");
    ck_assert(!json_is_true(json_object_get(json_array_get(t, 1), "passed")));
    has(json_array_get(t, 1), "detail", "baseline metric slices.en.accuracy has no confidence");
    json_decref(t);
}
END_TEST

/* Candidate and baseline with @p n slices s.NNNNN.acc each (the
 * candidate's in reverse order and its first renamed away: it lacks the
 * last one); the rule's table. */
static json_t *many_slices(int *ok, int n)
{
    mlreg_metric *cm = calloc((size_t)n, sizeof(*cm)), *bm = calloc((size_t)n, sizeof(*bm));
    char(*names)[32] = calloc((size_t)n, sizeof(*names));
    mlreg_rule r = {.type = MLREG_RULE_MAX_DROP, .metric = (char *)"s.*.acc", .threshold = 0.1};
    json_t *t;

    ck_assert(cm && bm && names);
    for (int k = 0; k < n; k++) {
        snprintf(names[k], sizeof(names[k]), "s.%05d.acc", k);
        cm[n - 1 - k] = (mlreg_metric){.name = names[k], .value = 0.5};
        bm[k] = (mlreg_metric){.name = names[k], .value = 0.55};
    }
    cm[0].name = "s.x.other";
    cand.metrics = cm;
    cand.n_metrics = (size_t)n;
    base.metrics = bm;
    base.n_metrics = (size_t)n;
    t = eval_rule(ok, &r);
    free(cm);
    free(bm);
    free(names);
    return t; /* the rows hold copies of the names */
}

START_TEST(test_slice_rule_rows_are_bounded_and_merged_in_name_order)
{
    int ok;
    json_t *t = many_slices(&ok, MLREG_MAX_SLICE_ROWS);

    /* exactly the bound: one row each, sorted, the missing one last */
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), MLREG_MAX_SLICE_ROWS);
    ck_assert_str_eq(sget(json_array_get(t, 0), "metric"), "s.00000.acc");
    ck_assert(json_is_true(json_object_get(json_array_get(t, 0), "passed")));
    has(json_array_get(t, MLREG_MAX_SLICE_ROWS - 1), "detail", "slice missing from the candidate");
    json_decref(t);
    /* one more (or thousands more, cheaply): the rule fails in one row */
    t = many_slices(&ok, MLREG_MAX_SLICE_ROWS + 1);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), 1);
    ck_assert_str_eq(sget(json_array_get(t, 0), "metric"), "s.*.acc");
    has(json_array_get(t, 0), "detail",
        "s.*.acc matches more slices than the table may judge (100 slice rows in all, 0 taken");
    json_decref(t);
    t = many_slices(&ok, 10000);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), 1);
    json_decref(t);
}
END_TEST

START_TEST(test_slice_rows_are_bounded_over_the_whole_table)
{
    /* 60 slices judged by two rules: 120 rows would pass the bound of the
     * table (its audit entry is bounded), so the second rule fails in one row */
    int n = 60, ok = -1;
    mlreg_metric *cm = calloc((size_t)n, sizeof(*cm)), *bm = calloc((size_t)n, sizeof(*bm));
    char(*names)[32] = calloc((size_t)n, sizeof(*names));
    mlreg_rule rs[2] = {
        {.type = MLREG_RULE_MAX_DROP, .metric = (char *)"s.*.acc", .threshold = 0.1},
        {.type = MLREG_RULE_MAX_DROP_PCT, .metric = (char *)"s.*.acc", .threshold = 20}};
    json_t *t = NULL;

    ck_assert(cm && bm && names);
    for (int k = 0; k < n; k++) {
        snprintf(names[k], sizeof(names[k]), "s.%05d.acc", k);
        cm[k] = (mlreg_metric){.name = names[k], .value = 0.5};
        bm[k] = (mlreg_metric){.name = names[k], .value = 0.55};
    }
    cand.metrics = cm;
    cand.n_metrics = (size_t)n;
    base.metrics = bm;
    base.n_metrics = (size_t)n;
    ck_assert_int_eq(mlreg_gates_evaluate(&t, &ok, rs, 2, &in), 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), (size_t)n + 1);
    ck_assert(json_is_true(json_object_get(json_array_get(t, 0), "passed")));
    ck_assert(!json_is_true(json_object_get(json_array_get(t, (size_t)n), "passed")));
    has(json_array_get(t, (size_t)n), "detail",
        "(100 slice rows in all, 60 taken by the rules before)");
    json_decref(t);
    free(cm);
    free(bm);
    free(names);
}
END_TEST

START_TEST(test_min_on_slices_shows_the_baseline_slice_but_ignores_baseline_only_ones)
{
    mlreg_rule r = {.type = MLREG_RULE_MAX, .metric = (char *)"slices.*.accuracy", .threshold = 1};
    int ok;
    json_t *t = eval_rule(&ok, &r);

    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(json_array_size(t), 3); /* es is only in the baseline: no row */
    ck_assert_str_eq(sget(json_array_get(t, 0), "metric"), "slices.de.accuracy");
    ck_assert(fabs(dget(json_array_get(t, 0), "baseline") - 0.82) < 1e-12);
    ck_assert(json_is_null(json_object_get(json_array_get(t, 2), "baseline"))); /* fr */
    json_decref(t);
}
END_TEST

/* ---- cooldown ------------------------------------------------------------------- */

START_TEST(test_edge_numbers_never_pass_by_rounding)
{
    mlreg_rule pct = {.type = MLREG_RULE_MAX_DROP_PCT, .metric = (char *)"loss", .threshold = 5};
    mlreg_rule imp = {
        .type = MLREG_RULE_MIN_IMPROVEMENT_PCT, .metric = (char *)"loss", .threshold = 5};
    mlreg_rule tie = {
        .type = MLREG_RULE_MIN_IMPROVEMENT, .metric = (char *)"f1", .threshold = 1e-17};
    mlreg_rule cool = {.type = MLREG_RULE_MIN_INTERVAL, .min_count = 3600};
    int ok = -1;
    json_t *t;
    const int64_t s = 1000000000;

    /* a baseline next to zero: the percent overflows, and must not pass */
    base_m[1].value = 1e-320;
    cand_m[1].value = -1000;
    t = eval_rule(&ok, &pct);
    ck_assert_int_eq(ok, 0);
    has(json_array_get(t, 0), "detail", "is not a finite number");
    json_decref(t);
    t = eval_rule(&ok, &imp);
    ck_assert_int_eq(ok, 0);
    json_decref(t);
    /* a tie (f1 0.8 and 0.8) never beats a margin above zero, however small */
    t = eval_rule(&ok, &tie);
    ck_assert_int_eq(ok, 0);
    json_decref(t);
    /* half a second short of the cooldown: a negative margin, not 0 */
    in.now_ns = 1796000000 * s;
    in.last_promotion_ns = in.now_ns - 3599 * s - s / 2;
    t = eval_rule(&ok, &cool);
    ck_assert_int_eq(ok, 0);
    ck_assert(fabs(dget(json_array_get(t, 0), "margin") + 1) < 1e-9);
    json_decref(t);
}
END_TEST

START_TEST(test_min_interval_refuses_until_the_cooldown_is_over)
{
    mlreg_rule r = {.type = MLREG_RULE_MIN_INTERVAL, .min_count = 3600};
    int ok;
    json_t *t, *row;
    const int64_t s = 1000000000;

    in.now_ns = 1796000000 * s; /* 2026-11-30T00:53:20Z */
    in.last_promotion_ns = 0;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 1);
    row = json_array_get(t, 0);
    ck_assert_str_eq(sget(row, "type"), "min_interval");
    ck_assert_str_eq(sget(row, "rule"), "min interval 3600 s since the last promotion");
    ck_assert_str_eq(sget(row, "detail"), "no earlier promotion into the stage");
    ck_assert_int_eq(json_integer_value(json_object_get(row, "threshold")), 3600);
    json_decref(t);

    in.last_promotion_ns = in.now_ns - 600 * s - s / 2; /* 600.5 s ago */
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    row = json_array_get(t, 0);
    ck_assert_str_eq(sget(row, "detail"),
                     "last promotion into the stage at 2026-11-30T00:43:19Z, 600 s ago (< 3600 "
                     "s): may be retried at 2026-11-30T01:43:20Z (in 3000 s)");
    ck_assert(fabs(dget(row, "candidate") - 600) < 1e-9);
    ck_assert(fabs(dget(row, "margin") + 3000) < 1e-9); /* -2999.5 s: rounded down */
    json_decref(t);

    in.last_promotion_ns = in.now_ns - 3600 * s;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 1);
    has(json_array_get(t, 0), "detail", "3600 s ago (>= 3600 s)");
    json_decref(t);
}
END_TEST

START_TEST(test_rows_of_every_rule_carry_margin_and_bound)
{
    mlreg_rule r[2] = {{.type = MLREG_RULE_APPROVALS, .min_count = 1},
                       {.type = MLREG_RULE_MIN, .metric = (char *)"f1", .threshold = 0.5}};
    int all = -1;
    json_t *t = NULL;

    ck_assert_int_eq(mlreg_gates_evaluate(&t, &all, r, 2, &in), 0);
    ck_assert_ptr_nonnull(json_object_get(json_array_get(t, 0), "margin"));
    ck_assert(json_is_null(json_object_get(json_array_get(t, 0), "margin")));
    ck_assert(json_is_null(json_object_get(json_array_get(t, 0), "bound")));
    ck_assert(fabs(dget(json_array_get(t, 1), "margin") - 0.3) < 1e-12);
    json_decref(t);
}
END_TEST

static Suite *gates_noise_suite(void)
{
    Suite *s = suite_create("gates_noise");
    TCase *tc = tcase_create("parse");
    TCase *te = tcase_create("evaluate");
    TCase *ts = tcase_create("slices");

    tcase_add_test(tc, test_noise_aware_rules_parse_and_show_as_configured);
    tcase_add_test(tc, test_bad_noise_aware_rules_are_refused_naming_the_key);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(te, eval_setup, NULL);
    tcase_add_test(te, test_min_improvement_needs_a_margin_over_the_baseline);
    tcase_add_test(te, test_min_improvement_pct_is_relative_and_a_zero_baseline_needs_a_gain);
    tcase_add_test(te, test_improvement_rules_pass_without_baseline_and_fail_on_doubt);
    tcase_add_test(te, test_min_and_max_read_the_interval_bound);
    tcase_add_test(te, test_drop_with_ci_bound_takes_the_worst_case_of_both_intervals);
    tcase_add_test(te, test_min_improvement_with_ci_bound_needs_the_intervals_apart);
    tcase_add_test(te, test_min_interval_refuses_until_the_cooldown_is_over);
    tcase_add_test(te, test_edge_numbers_never_pass_by_rounding);
    tcase_add_test(te, test_rows_of_every_rule_carry_margin_and_bound);
    suite_add_tcase(s, te);
    tcase_add_checked_fixture(ts, slices_setup, NULL);
    tcase_add_test(ts, test_slice_rule_has_one_row_per_slice_and_fails_a_missing_one);
    tcase_add_test(ts, test_slice_rule_without_slices_fails_and_min_applies_to_each);
    tcase_add_test(ts, test_slice_rule_without_baseline_or_its_slices);
    tcase_add_test(ts, test_slice_rule_with_ci_bound_judges_each_slice_interval);
    tcase_add_test(ts, test_slice_rule_rows_are_bounded_and_merged_in_name_order);
    tcase_add_test(ts, test_slice_rows_are_bounded_over_the_whole_table);
    tcase_add_test(ts, test_min_on_slices_shows_the_baseline_slice_but_ignores_baseline_only_ones);
    suite_add_tcase(s, ts);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gates_noise_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
