/* check_gates.c: the stage list and gate rules of the config (strict parsing,
 * key paths in messages) and the evaluation of every rule type: pass, fail,
 * missing metric, NaN/inf, no baseline, baseline better/worse, percent drop
 * against a zero baseline, dataset mismatch, no eval report. */
#include "mlreg/common.h"
#include "mlreg/gates.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static mlreg_policy *parse(const char *stages, const char *gates, const char *models)
{
    json_t *s = stages ? json_loads(stages, 0, NULL) : NULL;
    json_t *g = gates ? json_loads(gates, 0, NULL) : NULL;
    json_t *m = models ? json_loads(models, 0, NULL) : NULL;
    mlreg_policy *p = NULL;
    int rc = mlreg_policy_parse(&p, s, g, m);

    json_decref(s);
    json_decref(g);
    json_decref(m);
    if (rc < 0) ck_assert_ptr_null(p);
    return p;
}

/* Expects parsing to fail with MLREG_EINVALID and @p needle in the message. */
static void refused(const char *stages, const char *gates, const char *models, const char *needle)
{
    mlreg_policy *p = parse(stages, gates, models);

    ck_assert_msg(p == NULL, "accepted: gates %s", gates ? gates : "(none)");
    ck_assert_msg(strstr(mlreg_error_last(), needle) != NULL, "message '%s' lacks '%s'",
                  mlreg_error_last(), needle);
}

START_TEST(test_default_stages_are_dev_staging_production_without_rules)
{
    mlreg_policy *p = parse(NULL, NULL, NULL);
    const mlreg_rule *r;
    size_t n = 99;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(mlreg_policy_stage_count(p), 3);
    ck_assert_str_eq(mlreg_policy_stages(p)[0], "dev");
    ck_assert_str_eq(mlreg_policy_stages(p)[2], "production");
    ck_assert_int_eq(mlreg_policy_stage_index(p, "staging"), 1);
    ck_assert_int_eq(mlreg_policy_stage_index(p, "prod"), -1);
    ck_assert_int_eq(mlreg_policy_rules(&r, &n, p, "m", "production"), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(mlreg_policy_rules(&r, &n, p, "m", "qa"), MLREG_EINVALID);
    mlreg_policy_free(p);
}
END_TEST

START_TEST(test_every_rule_type_parses_and_model_lists_replace_global_ones)
{
    mlreg_policy *p =
        parse("[\"dev\",\"staging\",\"production\"]",
              "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85},{\"metric\":\"latency\","
              "\"max\":200}],"
              "\"production\":[{\"metric\":\"f1\",\"max_drop\":0.01},{\"metric\":\"f1\",\"max_drop_"
              "pct\":1},"
              "{\"require\":\"signed\",\"min\":1},{\"require\":\"previous_stage\"},"
              "{\"require\":\"approvals\",\"min\":2}]}",
              "{\"rag\":{\"gates\":{\"production\":[{\"metric\":\"dp_epsilon\",\"max\":3}]}}}");
    const mlreg_rule *r;
    size_t n;

    ck_assert_msg(p != NULL, "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_policy_rules(&r, &n, p, "clf", "production"), 0);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(r[0].type, MLREG_RULE_MAX_DROP);
    ck_assert_int_eq(r[1].type, MLREG_RULE_MAX_DROP_PCT);
    ck_assert_int_eq(r[2].type, MLREG_RULE_SIGNED);
    ck_assert_int_eq(r[2].min_count, 1);
    ck_assert_int_eq(r[3].type, MLREG_RULE_PREVIOUS_STAGE);
    ck_assert_int_eq(r[4].min_count, 2);
    ck_assert_int_eq(mlreg_policy_rules(&r, &n, p, "rag", "production"), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(r[0].metric, "dp_epsilon");
    /* the model has no list for staging: the global one applies */
    ck_assert_int_eq(mlreg_policy_rules(&r, &n, p, "rag", "staging"), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(r[1].type, MLREG_RULE_MAX);
    mlreg_policy_free(p);
}
END_TEST

START_TEST(test_bad_gate_configs_are_refused_naming_the_key)
{
    refused(NULL, "{\"production\":[{\"metric\":\"a\",\"min\":1},{\"metric\":\"a\",\"mni\":1}]}",
            NULL, "config key 'gates.production[1].mni': unknown rule key");
    refused(NULL, "{\"prod\":[]}", NULL, "'gates.prod'");
    refused(NULL, "{\"staging\":[{\"metric\":\"a\"}]}", NULL, "gates.staging[0]");
    refused(NULL, "{\"staging\":[{\"metric\":\"a\",\"min\":\"x\"}]}", NULL, "gates.staging[0].min");
    refused(NULL, "{\"staging\":[{\"metric\":\"a\",\"min\":1,\"max\":2}]}", NULL,
            "gates.staging[0]");
    refused(NULL, "{\"staging\":[{\"metric\":\"a\",\"max_drop\":-1}]}", NULL,
            "gates.staging[0].max_drop' must not be negative");
    refused(NULL, "{\"staging\":[{\"metric\":\"\",\"min\":1}]}", NULL, "gates.staging[0].metric");
    refused(NULL, "{\"staging\":[{\"require\":\"signed\"}]}", NULL, "gates.staging[0]");
    refused(NULL, "{\"staging\":[{\"require\":\"signed\",\"min\":0}]}", NULL,
            "gates.staging[0].min");
    refused(NULL, "{\"staging\":[{\"require\":\"sigend\",\"min\":1}]}", NULL,
            "gates.staging[0].require");
    refused(NULL, "{\"staging\":[{\"require\":\"approvals\",\"min\":1,\"by\":\"x\"}]}", NULL,
            "gates.staging[0].by");
    refused(NULL, "{\"dev\":[{\"require\":\"previous_stage\"}]}", NULL,
            "previous_stage on the first stage");
    refused(NULL, "{\"staging\":[{\"metric\":\"a\",\"min\":1,\"require\":\"signed\"}]}", NULL,
            "gates.staging[0]");
    refused(NULL, "{\"staging\":{\"metric\":\"a\",\"min\":1}}", NULL, "gates.staging");
    refused("[]", NULL, NULL, "'stages'");
    refused("[\"a\",\"a\"]", NULL, NULL, "stages[1]");
    refused("[\"bad stage\"]", NULL, NULL, "stages[0]");
    refused(NULL, NULL, "{\"Bad Name\":{\"gates\":{}}}", "models.Bad Name");
    refused(NULL, NULL, "{\"m\":{\"gate\":{}}}", "models.m.gate");
    refused(NULL, NULL, "{\"m\":{\"gates\":{\"production\":[{\"metric\":\"a\",\"mx\":1}]}}}",
            "config key 'models.m.gates.production[0].mx': unknown rule key");
}
END_TEST

/* ---- evaluation ---------------------------------------------------------------- */

static mlreg_metric cand_m[4], base_m[4];
static mlreg_gate_release cand, base;
static mlreg_gate_input in;

static void eval_setup(void)
{
    memset(&cand, 0, sizeof(cand));
    memset(&base, 0, sizeof(base));
    memset(&in, 0, sizeof(in));
    cand_m[0] = (mlreg_metric){.name = "accuracy", .value = 0.90};
    cand_m[1] = (mlreg_metric){.name = "f1", .value = 0.80};
    base_m[0] = (mlreg_metric){.name = "accuracy", .value = 0.92};
    base_m[1] = (mlreg_metric){.name = "f1", .value = 0.80};
    cand.version = "2.0";
    cand.has_eval_report = 1;
    cand.metrics = cand_m;
    cand.n_metrics = 2;
    cand.dataset = "val-2026";
    base.version = "1.0";
    base.has_eval_report = 1;
    base.metrics = base_m;
    base.n_metrics = 2;
    base.dataset = "val-2026";
    in.candidate = &cand;
    in.baseline = &base;
}

/* Evaluates one rule; returns its row (owned by the caller) and sets *passed. */
static json_t *eval1(int *passed, mlreg_rule_type t, const char *metric, double x, long count)
{
    mlreg_rule r;
    json_t *table = NULL, *row;
    int all = -1;

    memset(&r, 0, sizeof(r));
    r.type = t;
    r.metric = (char *)metric;
    r.threshold = x;
    r.min_count = count;
    ck_assert_int_eq(mlreg_gates_evaluate(&table, &all, &r, 1, &in), 0);
    ck_assert_int_eq(json_array_size(table), 1);
    row = json_incref(json_array_get(table, 0));
    json_decref(table);
    *passed = all;
    ck_assert_int_eq(json_is_true(json_object_get(row, "passed")), all);
    return row;
}

static const char *detail(json_t *row)
{
    return json_string_value(json_object_get(row, "detail"));
}

START_TEST(test_min_and_max_pass_and_fail_at_the_threshold)
{
    int ok;
    json_t *row;

    row = eval1(&ok, MLREG_RULE_MIN, "accuracy", 0.85, 0);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(json_string_value(json_object_get(row, "rule")), "accuracy >= 0.85");
    ck_assert_str_eq(json_string_value(json_object_get(row, "type")), "min");
    ck_assert(fabs(json_real_value(json_object_get(row, "candidate")) - 0.90) < 1e-12);
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MIN, "accuracy", 0.90, 0); /* equal passes */
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MIN, "accuracy", 0.95, 0);
    ck_assert_int_eq(ok, 0);
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MAX, "accuracy", 0.95, 0);
    ck_assert_int_eq(ok, 1);
    json_decref(row);
    row = eval1(&ok, MLREG_RULE_MAX, "accuracy", 0.5, 0);
    ck_assert_int_eq(ok, 0);
    json_decref(row);
}
END_TEST

START_TEST(test_a_missing_metric_fails_every_metric_rule)
{
    mlreg_rule_type types[] = {MLREG_RULE_MIN, MLREG_RULE_MAX, MLREG_RULE_MAX_DROP,
                               MLREG_RULE_MAX_DROP_PCT};
    int ok;

    for (size_t i = 0; i < 4; i++) {
        json_t *row = eval1(&ok, types[i], "recall", 0, 0);
        ck_assert_int_eq(ok, 0);
        ck_assert_str_eq(detail(row), "missing metric recall");
        ck_assert(json_is_null(json_object_get(row, "candidate")));
        json_decref(row);
    }
    /* also without a baseline, where a drop rule would otherwise pass */
    in.baseline = NULL;
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP, "recall", 1, 0));
    ck_assert_int_eq(ok, 0);
}
END_TEST

START_TEST(test_nan_and_infinity_fail_and_are_reported_as_null)
{
    int ok;
    json_t *row;

    cand_m[0].value = NAN;
    row = eval1(&ok, MLREG_RULE_MAX, "accuracy", 1e9, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert(json_is_null(json_object_get(row, "candidate")));
    ck_assert_ptr_nonnull(strstr(detail(row), "not a finite number"));
    json_decref(row);
    cand_m[0].value = INFINITY;
    json_decref(eval1(&ok, MLREG_RULE_MIN, "accuracy", 0, 0));
    ck_assert_int_eq(ok, 0);
    cand_m[0].value = -INFINITY;
    json_decref(eval1(&ok, MLREG_RULE_MAX, "accuracy", 0, 0));
    ck_assert_int_eq(ok, 0);
    /* a non-finite baseline fails a drop rule too */
    cand_m[0].value = 0.9;
    base_m[0].value = NAN;
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 1, 0));
    ck_assert_int_eq(ok, 0);
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 100, 0));
    ck_assert_int_eq(ok, 0);
}
END_TEST

START_TEST(test_drop_rules_pass_without_a_baseline)
{
    int ok;
    json_t *row;

    in.baseline = NULL;
    row = eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 0, 0);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(detail(row), "no baseline");
    ck_assert(json_is_null(json_object_get(row, "baseline_version")));
    json_decref(row);
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 0, 0));
    ck_assert_int_eq(ok, 1);
}
END_TEST

START_TEST(test_max_drop_against_a_better_and_a_worse_baseline)
{
    int ok;
    json_t *row;

    /* baseline better: 0.92 -> 0.90 is a drop of 0.02 */
    row = eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 0.005, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(json_string_value(json_object_get(row, "baseline_version")), "1.0");
    ck_assert(fabs(json_real_value(json_object_get(row, "baseline")) - 0.92) < 1e-12);
    ck_assert(fabs(json_real_value(json_object_get(row, "delta")) + 0.02) < 1e-12);
    json_decref(row);
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 0.03, 0));
    ck_assert_int_eq(ok, 1);
    /* baseline worse: an improvement always passes, even with max_drop 0 */
    base_m[0].value = 0.5;
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 0, 0));
    ck_assert_int_eq(ok, 1);
}
END_TEST

START_TEST(test_max_drop_pct_is_relative_to_the_baseline)
{
    int ok;

    base_m[0].value = 0.80;
    cand_m[0].value = 0.79; /* 1.25 % drop */
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 1.0, 0));
    ck_assert_int_eq(ok, 0);
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 1.5, 0));
    ck_assert_int_eq(ok, 1);
    /* a negative baseline: relative to |baseline| */
    base_m[0].value = -2.0;
    cand_m[0].value = -2.1; /* drop 0.1 of 2 = 5 % */
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 4.9, 0));
    ck_assert_int_eq(ok, 0);
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 5.1, 0));
    ck_assert_int_eq(ok, 1);
}
END_TEST

START_TEST(test_percent_drop_with_a_zero_baseline_passes_only_when_not_lower)
{
    int ok;
    json_t *row;

    base_m[0].value = 0.0;
    cand_m[0].value = -0.001;
    row = eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 1000, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_ptr_nonnull(strstr(detail(row), "zero baseline"));
    json_decref(row);
    cand_m[0].value = 0.0;
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 0, 0));
    ck_assert_int_eq(ok, 1);
    cand_m[0].value = 0.3;
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 0, 0));
    ck_assert_int_eq(ok, 1);
}
END_TEST

START_TEST(test_drop_rules_fail_when_the_baseline_used_another_dataset)
{
    int ok;
    json_t *row;

    base.dataset = "val-2025";
    base_m[0].value = 0.5; /* would pass on the same dataset */
    row = eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 1, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_ptr_nonnull(strstr(detail(row), "baseline evaluated on a different dataset"));
    json_decref(row);
    base.dataset = NULL;
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP_PCT, "accuracy", 100, 0));
    ck_assert_int_eq(ok, 0);
    /* min/max do not compare with the baseline, so the dataset does not matter */
    json_decref(eval1(&ok, MLREG_RULE_MIN, "accuracy", 0.1, 0));
    ck_assert_int_eq(ok, 1);
}
END_TEST

START_TEST(test_a_release_without_eval_report_fails_metric_rules)
{
    int ok;
    json_t *row;

    cand.has_eval_report = 0;
    cand.n_metrics = 0;
    row = eval1(&ok, MLREG_RULE_MIN, "accuracy", 0, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(detail(row), "release has no eval report");
    json_decref(row);
    in.baseline = NULL;
    json_decref(eval1(&ok, MLREG_RULE_MAX_DROP, "accuracy", 1, 0));
    ck_assert_int_eq(ok, 0);
}
END_TEST

START_TEST(test_signed_rule_says_when_keys_of_another_role_signed)
{
    int ok;
    json_t *row;

    in.signed_count = 0;
    in.signed_other_count = 1;
    in.signed_other_roles = "approver";
    row = eval1(&ok, MLREG_RULE_SIGNED, NULL, 0, 1);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(detail(row), "0 signatures by trusted release keys (not enough); 1 more by "
                                  "trusted key of role approver, which does not count: only "
                                  "keys of role release sign releases");
    json_decref(row);
    /* other roles never make up for missing release keys */
    in.signed_other_count = 5;
    in.signed_other_roles = "approver, ops";
    row = eval1(&ok, MLREG_RULE_SIGNED, NULL, 0, 2);
    ck_assert_int_eq(ok, 0);
    ck_assert_ptr_nonnull(strstr(detail(row), "5 more by trusted keys of role approver, ops, "
                                              "which do not count"));
    json_decref(row);
    in.signed_count = 2;
    row = eval1(&ok, MLREG_RULE_SIGNED, NULL, 0, 2);
    ck_assert_int_eq(ok, 1);
    ck_assert_ptr_nonnull(strstr(detail(row), "2 signatures by trusted release keys; 5 more"));
    json_decref(row);
    in.signed_other_count = 0;
    in.signed_other_roles = NULL;
    row = eval1(&ok, MLREG_RULE_SIGNED, NULL, 0, 2);
    ck_assert_str_eq(detail(row), "2 signatures by trusted release keys");
    json_decref(row);
}
END_TEST

START_TEST(test_signed_previous_stage_and_approvals_rules)
{
    int ok;
    json_t *row;

    in.signed_count = 1;
    json_decref(eval1(&ok, MLREG_RULE_SIGNED, NULL, 0, 1));
    ck_assert_int_eq(ok, 1);
    json_decref(eval1(&ok, MLREG_RULE_SIGNED, NULL, 0, 2));
    ck_assert_int_eq(ok, 0);
    in.signed_count = 0;
    json_decref(eval1(&ok, MLREG_RULE_SIGNED, NULL, 0, 1));
    ck_assert_int_eq(ok, 0);

    in.previous_stage = "staging";
    in.in_previous_stage = 0;
    row = eval1(&ok, MLREG_RULE_PREVIOUS_STAGE, NULL, 0, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(detail(row), "release was never in staging");
    json_decref(row);
    in.in_previous_stage = 1;
    json_decref(eval1(&ok, MLREG_RULE_PREVIOUS_STAGE, NULL, 0, 0));
    ck_assert_int_eq(ok, 1);
    in.previous_stage = NULL; /* no stage before: never passes */
    json_decref(eval1(&ok, MLREG_RULE_PREVIOUS_STAGE, NULL, 0, 0));
    ck_assert_int_eq(ok, 0);

    in.approvals = 1;
    in.pusher_approved = 1;
    row = eval1(&ok, MLREG_RULE_APPROVALS, NULL, 0, 2);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(detail(row), "approvals: 1 of 2 (pusher's own does not count)");
    json_decref(row);
    in.approvals = 2;
    json_decref(eval1(&ok, MLREG_RULE_APPROVALS, NULL, 0, 2));
    ck_assert_int_eq(ok, 1);
}
END_TEST

START_TEST(test_all_rules_must_pass_and_no_rules_pass)
{
    mlreg_rule r[2];
    json_t *table = NULL;
    int all = -1;

    memset(r, 0, sizeof(r));
    r[0].type = MLREG_RULE_MIN;
    r[0].metric = (char *)"accuracy";
    r[0].threshold = 0.5;
    r[1].type = MLREG_RULE_MIN;
    r[1].metric = (char *)"f1";
    r[1].threshold = 0.9;
    ck_assert_int_eq(mlreg_gates_evaluate(&table, &all, r, 2, &in), 0);
    ck_assert_int_eq(all, 0);
    ck_assert_int_eq(json_array_size(table), 2);
    ck_assert(json_is_true(json_object_get(json_array_get(table, 0), "passed")));
    ck_assert(json_is_false(json_object_get(json_array_get(table, 1), "passed")));
    json_decref(table);
    ck_assert_int_eq(mlreg_gates_evaluate(&table, &all, r, 0, &in), 0);
    ck_assert_int_eq(all, 1);
    ck_assert_int_eq(json_array_size(table), 0);
    json_decref(table);
}
END_TEST

static Suite *gates_suite(void)
{
    Suite *s = suite_create("gates");
    TCase *tc = tcase_create("parse");
    TCase *te = tcase_create("evaluate");

    tcase_add_test(tc, test_default_stages_are_dev_staging_production_without_rules);
    tcase_add_test(tc, test_every_rule_type_parses_and_model_lists_replace_global_ones);
    tcase_add_test(tc, test_bad_gate_configs_are_refused_naming_the_key);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(te, eval_setup, NULL);
    tcase_add_test(te, test_min_and_max_pass_and_fail_at_the_threshold);
    tcase_add_test(te, test_a_missing_metric_fails_every_metric_rule);
    tcase_add_test(te, test_nan_and_infinity_fail_and_are_reported_as_null);
    tcase_add_test(te, test_drop_rules_pass_without_a_baseline);
    tcase_add_test(te, test_max_drop_against_a_better_and_a_worse_baseline);
    tcase_add_test(te, test_max_drop_pct_is_relative_to_the_baseline);
    tcase_add_test(te, test_percent_drop_with_a_zero_baseline_passes_only_when_not_lower);
    tcase_add_test(te, test_drop_rules_fail_when_the_baseline_used_another_dataset);
    tcase_add_test(te, test_a_release_without_eval_report_fails_metric_rules);
    tcase_add_test(te, test_signed_previous_stage_and_approvals_rules);
    tcase_add_test(te, test_signed_rule_says_when_keys_of_another_role_signed);
    tcase_add_test(te, test_all_rules_must_pass_and_no_rules_pass);
    suite_add_tcase(s, te);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gates_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
