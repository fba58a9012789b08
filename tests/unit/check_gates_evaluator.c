/* check_gates_evaluator.c: metric rules that read an evaluator's numbers
 * ("source": "evaluator") and comparable evaluations (include/mlreg/gates.h):
 * a rule against the baseline compares only numbers from the same dataset
 * and eval code digests, else it holds; the rows' outcome, source,
 * evaluation, baseline_evaluation and digests members, and the table text. */
#include "mlreg/common.h"
#include "mlreg/gates.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define C1 "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

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

static void refused(const char *gates, const char *needle)
{
    mlreg_policy *p = parse_gates(gates);

    ck_assert_msg(p == NULL, "accepted: %s", gates);
    ck_assert_msg(strstr(mlreg_error_last(), needle) != NULL, "message '%s' lacks '%s'",
                  mlreg_error_last(), needle);
}

START_TEST(test_source_parses_on_every_metric_rule_and_shows)
{
    static const char *const kinds[] = {
        "min", "max", "max_drop", "max_drop_pct", "min_improvement", "min_improvement_pct"};
    char buf[256];
    const mlreg_rule *r;
    size_t n;
    json_t *shown;

    for (size_t i = 0; i < 6; i++) {
        mlreg_policy *p;
        snprintf(buf, sizeof(buf),
                 "{\"production\":[{\"metric\":\"a\",\"%s\":1,\"source\":\"evaluator\"},"
                 "{\"metric\":\"a\",\"%s\":1,\"source\":\"pusher\"},{\"metric\":\"a\",\"%s\":1}]}",
                 kinds[i], kinds[i], kinds[i]);
        p = parse_gates(buf);
        ck_assert_msg(p != NULL, "%s: %s", buf, mlreg_error_last());
        ck_assert_int_eq(mlreg_policy_rules(&r, &n, p, "m", "production"), 0);
        ck_assert_int_eq(n, 3);
        ck_assert_int_eq(r[0].source, MLREG_SOURCE_EVALUATOR);
        ck_assert_int_eq(r[1].source, MLREG_SOURCE_PUSHER);
        ck_assert_int_eq(r[2].source, MLREG_SOURCE_PUSHER);
        shown = mlreg_rules_json(r, n);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(shown, 0), "source")),
                         "evaluator");
        /* the default is not spelled out: what clients showed stays as it was */
        ck_assert_ptr_null(json_object_get(json_array_get(shown, 1), "source"));
        json_decref(shown);
        mlreg_policy_free(p);
    }
    /* with a bound and a slice pattern too */
    {
        mlreg_policy *p = parse_gates("{\"production\":[{\"metric\":\"slices.*.acc\",\"max_drop\":"
                                      "0.1,\"bound\":\"ci\",\"source\":\"evaluator\"}]}");
        ck_assert_msg(p != NULL, "%s", mlreg_error_last());
        mlreg_policy_free(p);
    }
}
END_TEST

START_TEST(test_bad_source_is_refused_naming_the_key)
{
    refused("{\"staging\":[{\"metric\":\"a\",\"min\":1,\"source\":\"auditor\"}]}",
            "config key 'gates.staging[0].source' must be \"pusher\"");
    refused("{\"staging\":[{\"metric\":\"a\",\"min\":1,\"source\":1}]}",
            "'gates.staging[0].source' must be");
    refused("{\"staging\":[{\"metric\":\"a\",\"min\":1,\"source\":\"EVALUATOR\"}]}",
            "'gates.staging[0].source' must be");
    refused("{\"staging\":[{\"metric\":\"a\",\"min\":1,\"source\":null}]}",
            "'gates.staging[0].source' must be");
    refused("{\"staging\":[{\"require\":\"signed\",\"min\":1,\"source\":\"evaluator\"}]}",
            "'gates.staging[0].source': unknown rule key");
    refused("{\"staging\":[{\"require\":\"approvals\",\"min\":1,\"source\":\"pusher\"}]}",
            "unknown rule key");
}
END_TEST

/* ---- evaluation ---------------------------------------------------------------- */

static mlreg_metric cand_m[4], base_m[4], cev_m[4], bev_m[4];
static mlreg_gate_release cand, base, cev, bev;
static mlreg_gate_attestation cat, bat;
static mlreg_gate_input in;

static void eval_setup(void)
{
    memset(&cand, 0, sizeof(cand));
    memset(&base, 0, sizeof(base));
    memset(&cev, 0, sizeof(cev));
    memset(&bev, 0, sizeof(bev));
    memset(&in, 0, sizeof(in));
    /* pushed: the candidate claims 0.95; the evaluator measured 0.85 */
    cand_m[0] = (mlreg_metric){.name = "accuracy", .value = 0.95};
    cand_m[1] = (mlreg_metric){.name = "slices.a.accuracy", .value = 0.95};
    cand_m[2] = (mlreg_metric){.name = "slices.b.accuracy", .value = 0.95};
    base_m[0] = (mlreg_metric){.name = "accuracy", .value = 0.90};
    base_m[1] = (mlreg_metric){.name = "slices.a.accuracy", .value = 0.90};
    base_m[2] = (mlreg_metric){.name = "slices.b.accuracy", .value = 0.90};
    cev_m[0] = (mlreg_metric){
        .name = "accuracy", .value = 0.85, .has_ci = 1, .ci_low = 0.83, .ci_high = 0.87};
    bev_m[0] = (mlreg_metric){
        .name = "accuracy", .value = 0.88, .has_ci = 1, .ci_low = 0.86, .ci_high = 0.90};
    cand = (mlreg_gate_release){.version = "2.0",
                                .has_eval_report = 1,
                                .metrics = cand_m,
                                .n_metrics = 3,
                                .dataset = "val"};
    base = (mlreg_gate_release){.version = "1.0",
                                .has_eval_report = 1,
                                .metrics = base_m,
                                .n_metrics = 3,
                                .dataset = "val"};
    cat = (mlreg_gate_attestation){
        .key_id = "ab12", .key_name = "nightly", .seq = 41, .evaluated_at = "2026-12-05T01:00:00Z"};
    bat = (mlreg_gate_attestation){.key_id = "cd34",
                                   .key_name = "nightly2",
                                   .seq = 42,
                                   .evaluated_at = "2026-12-05T02:00:00Z"};
    cev = (mlreg_gate_release){.version = "2.0",
                               .has_eval_report = 1,
                               .metrics = cev_m,
                               .n_metrics = 1,
                               .dataset_digest = D2,
                               .eval_code_digest = C1,
                               .evaluation = &cat};
    bev = (mlreg_gate_release){.version = "1.0",
                               .has_eval_report = 1,
                               .metrics = bev_m,
                               .n_metrics = 1,
                               .dataset_digest = D2,
                               .eval_code_digest = C1,
                               .evaluation = &bat};
    in.candidate = &cand;
    in.baseline = &base;
}

static json_t *eval_rule(int *passed, const mlreg_rule *r)
{
    json_t *table = NULL;
    int all = -1;

    ck_assert_int_eq(mlreg_gates_evaluate(&table, &all, r, 1, &in), 0);
    *passed = all;
    return table;
}

static mlreg_rule rule(mlreg_rule_type t, double x, mlreg_source src)
{
    return (mlreg_rule){.type = t, .metric = (char *)"accuracy", .threshold = x, .source = src};
}

static const char *sget(json_t *row, const char *k)
{
    return json_string_value(json_object_get(row, k));
}

static void has(json_t *row, const char *k, const char *needle)
{
    const char *v = sget(row, k);
    ck_assert_msg(v != NULL && strstr(v, needle) != NULL, "%s '%s' lacks '%s'", k, v ? v : "(null)",
                  needle);
}

static double dget(json_t *row, const char *k)
{
    return json_number_value(json_object_get(row, k));
}

static const char *digest_of(json_t *row, const char *side, const char *k)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(row, "digests"), side), k));
}

static const mlreg_rule_type all_types[] = {MLREG_RULE_MIN,
                                            MLREG_RULE_MAX,
                                            MLREG_RULE_MAX_DROP,
                                            MLREG_RULE_MAX_DROP_PCT,
                                            MLREG_RULE_MIN_IMPROVEMENT,
                                            MLREG_RULE_MIN_IMPROVEMENT_PCT};

START_TEST(test_evaluator_rules_fail_without_an_evaluation)
{
    int ok;

    for (size_t i = 0; i < 6; i++) {
        mlreg_rule r = rule(all_types[i], 0, MLREG_SOURCE_EVALUATOR);
        json_t *t = eval_rule(&ok, &r), *row = json_array_get(t, 0);
        ck_assert_int_eq(ok, 0);
        ck_assert_str_eq(sget(row, "outcome"), "fail");
        ck_assert_str_eq(sget(row, "source"), "evaluator");
        ck_assert(json_is_false(json_object_get(row, "passed")));
        has(row, "detail", "no evaluation by a trusted evaluator key");
        has(row, "rule", "(evaluator)");
        ck_assert(json_is_null(json_object_get(row, "evaluation")));
        ck_assert(json_is_null(json_object_get(row, "candidate")));
        json_decref(t);
    }
}
END_TEST

START_TEST(test_pusher_rows_name_their_source_and_no_evaluation)
{
    int ok;

    in.candidate_evaluation = &cev; /* there, but the rule reads the pushed report */
    for (size_t i = 0; i < 6; i++) {
        mlreg_rule r = rule(all_types[i], 0, MLREG_SOURCE_PUSHER);
        json_t *t = eval_rule(&ok, &r), *row = json_array_get(t, 0);
        ck_assert_str_eq(sget(row, "source"), "pusher");
        ck_assert(json_is_null(json_object_get(row, "evaluation")));
        ck_assert(json_is_null(json_object_get(row, "baseline_evaluation")));
        ck_assert(fabs(dget(row, "candidate") - 0.95) < 1e-12);
        ck_assert_ptr_null(strstr(sget(row, "rule"), "(evaluator)"));
        /* comparison rows carry the digests compared, null when none */
        if (i >= 2) { /* all_types[2..5] compare with the baseline */
            ck_assert_msg(json_is_object(json_object_get(row, "digests")), "type %zu", i);
            ck_assert(json_is_null(json_object_get(
                json_object_get(json_object_get(row, "digests"), "candidate"), "dataset")));
        } else
            ck_assert_ptr_null(json_object_get(row, "digests"));
        json_decref(t);
    }
}
END_TEST

START_TEST(test_evaluator_numbers_decide_and_the_row_names_the_evaluation)
{
    int ok;
    mlreg_rule r = rule(MLREG_RULE_MIN, 0.9, MLREG_SOURCE_EVALUATOR);
    json_t *t, *row, *ev;

    in.candidate_evaluation = &cev;
    in.baseline_evaluation = &bev;
    /* the pusher claims 0.95 >= 0.9; the evaluator's 0.85 fails */
    t = eval_rule(&ok, &r);
    row = json_array_get(t, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(row, "outcome"), "fail");
    ck_assert(fabs(dget(row, "candidate") - 0.85) < 1e-12);
    ev = json_object_get(row, "evaluation");
    ck_assert_str_eq(sget(ev, "key_id"), "ab12");
    ck_assert_str_eq(sget(ev, "key_name"), "nightly");
    ck_assert_str_eq(sget(ev, "evaluated_at"), "2026-12-05T01:00:00Z");
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "seq")), 41);
    /* the baseline shown for the diff is the evaluator's too */
    ck_assert(fabs(dget(row, "baseline") - 0.88) < 1e-12);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(row, "baseline_evaluation"), "seq")),
        42);
    ck_assert_str_eq(sget(row, "rule"), "accuracy >= 0.9 (evaluator)");
    ck_assert_str_eq(sget(row, "detail"), "0.85 < 0.9 (fails)");
    json_decref(t);

    r.threshold = 0.8;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "pass");
    json_decref(t);

    /* max, and a bound read on the evaluator's interval */
    r = rule(MLREG_RULE_MAX, 0.86, MLREG_SOURCE_EVALUATOR);
    r.bound = MLREG_BOUND_CI_HIGH;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    has(json_array_get(t, 0), "detail", "ci_high 0.87 > 0.86");
    json_decref(t);
    r = rule(MLREG_RULE_MIN, 0.84, MLREG_SOURCE_EVALUATOR);
    r.bound = MLREG_BOUND_CI_LOW;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    has(json_array_get(t, 0), "detail", "ci_low 0.83 < 0.84");
    json_decref(t);
    r.threshold = 0.83;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 1);
    json_decref(t);
}
END_TEST

START_TEST(test_evaluator_comparisons_use_the_baseline_evaluation_on_the_same_digests)
{
    int ok;
    json_t *t, *row;

    in.candidate_evaluation = &cev;
    in.baseline_evaluation = &bev;
    in.baseline_evaluation_evaluator = &bev;
    for (size_t i = 2; i < 6; i++) {
        /* 0.85 vs 0.88: a drop of 0.03 (3.41%), an improvement of -0.03 */
        static const double fails[] = {0, 0, 0.02, 3, 0.05, 1};
        mlreg_rule r = rule(all_types[i], fails[i], MLREG_SOURCE_EVALUATOR);
        int improvement = all_types[i] >= MLREG_RULE_MIN_IMPROVEMENT;
        t = eval_rule(&ok, &r);
        row = json_array_get(t, 0);
        ck_assert_int_eq(ok, 0);
        ck_assert_str_eq(sget(row, "outcome"), "fail");
        ck_assert(fabs(dget(row, "baseline") - 0.88) < 1e-12);
        ck_assert_str_eq(digest_of(row, "candidate", "dataset"), D2);
        ck_assert_str_eq(digest_of(row, "baseline", "dataset"), D2);
        ck_assert_str_eq(digest_of(row, "baseline", "eval_code"), C1);
        ck_assert_int_eq(
            json_integer_value(json_object_get(json_object_get(row, "baseline_evaluation"), "seq")),
            42);
        json_decref(t);
        /* a threshold that passes */
        r.threshold = improvement ? 0 : (all_types[i] == MLREG_RULE_MAX_DROP_PCT ? 4 : 0.04);
        r.lower_is_better = improvement; /* 0.85 < 0.88 improves when lower is better */
        t = eval_rule(&ok, &r);
        ck_assert_msg(ok == 1, "%s", sget(json_array_get(t, 0), "detail"));
        ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "pass");
        json_decref(t);
    }
    /* a ci bound on both evaluations: worst drop 0.90 - 0.83 = 0.07 */
    {
        mlreg_rule r = rule(MLREG_RULE_MAX_DROP, 0.06, MLREG_SOURCE_EVALUATOR);
        r.bound = MLREG_BOUND_CI;
        t = eval_rule(&ok, &r);
        ck_assert_int_eq(ok, 0);
        has(json_array_get(t, 0), "detail", "worst drop 0.07");
        json_decref(t);
    }
}
END_TEST

START_TEST(test_evaluator_comparison_holds_without_a_comparable_baseline_evaluation)
{
    int ok;
    json_t *t, *row;
    mlreg_gate_release old = bev;
    mlreg_rule r = rule(MLREG_RULE_MAX_DROP, 0.5, MLREG_SOURCE_EVALUATOR);

    in.candidate_evaluation = &cev;
    /* the baseline has no evaluation at all */
    t = eval_rule(&ok, &r);
    row = json_array_get(t, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(row, "outcome"), "hold");
    ck_assert(json_is_false(json_object_get(row, "passed")));
    has(row, "detail", "no comparable baseline numbers: re-evaluate the baseline");
    has(row, "detail", "baseline 1.0 has no evaluation by a trusted evaluator key");
    ck_assert(json_is_null(json_object_get(row, "baseline")));
    ck_assert(json_is_null(json_object_get(row, "delta")));
    ck_assert_str_eq(sget(row, "baseline_version"), "1.0");
    json_decref(t);

    /* one on another dataset: the detail names both, shortened */
    old.dataset_digest = D1;
    in.baseline_evaluation = &old;
    t = eval_rule(&ok, &r);
    row = json_array_get(t, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(row, "outcome"), "hold");
    has(row, "detail", "baseline evaluated on another dataset: re-evaluate the baseline");
    has(row, "detail", "sha256:222222222222...");
    has(row, "detail", "sha256:111111111111...");
    ck_assert_str_eq(digest_of(row, "baseline", "dataset"), D1);
    ck_assert_str_eq(digest_of(row, "candidate", "dataset"), D2);
    ck_assert(json_is_null(json_object_get(row, "baseline_evaluation")));
    json_decref(t);

    /* a drop that would fail anyway still holds: the numbers are not comparable */
    r.threshold = 0;
    t = eval_rule(&ok, &r);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "hold");
    json_decref(t);
}
END_TEST

START_TEST(test_pusher_comparisons_on_digests)
{
    int ok;
    json_t *t, *row;
    mlreg_rule r = rule(MLREG_RULE_MAX_DROP, 0.01, MLREG_SOURCE_PUSHER);

    /* neither names digests: compared as before (0.95 vs 0.90 passes) */
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "pass");
    json_decref(t);
    /* ... and the dataset names still count: another name fails */
    base.dataset = "test";
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "fail");
    has(json_array_get(t, 0), "detail", "different dataset (test vs val)");
    json_decref(t);

    /* the same digests: compared, names no longer matter */
    cand.dataset_digest = base.dataset_digest = D1;
    cand.eval_code_digest = base.eval_code_digest = C1;
    t = eval_rule(&ok, &r);
    row = json_array_get(t, 0);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(digest_of(row, "candidate", "dataset"), D1);
    ck_assert_str_eq(digest_of(row, "baseline", "eval_code"), C1);
    ck_assert(json_is_null(json_object_get(row, "baseline_evaluation")));
    json_decref(t);

    /* candidate on D2, baseline pushed on D1, no evaluation of the baseline: hold */
    cand.dataset_digest = D2;
    t = eval_rule(&ok, &r);
    row = json_array_get(t, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(row, "outcome"), "hold");
    has(row, "detail", "baseline evaluated on another dataset: re-evaluate the baseline");
    has(row, "detail",
        "candidate dataset sha256:222222222222..., eval code sha256:cccccccccccc...");
    has(row, "detail", "baseline 1.0 dataset sha256:111111111111...");
    ck_assert_str_eq(digest_of(row, "baseline", "dataset"), D1);
    ck_assert_str_eq(digest_of(row, "candidate", "dataset"), D2);
    json_decref(t);

    /* an evaluator re-evaluated the baseline on D2: its numbers are compared */
    in.baseline_evaluation_pusher = &bev; /* 0.88 on D2 */
    t = eval_rule(&ok, &r);
    row = json_array_get(t, 0);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(sget(row, "outcome"), "pass");
    ck_assert(fabs(dget(row, "baseline") - 0.88) < 1e-12);
    ck_assert_str_eq(digest_of(row, "baseline", "dataset"), D2);
    ck_assert_str_eq(sget(json_object_get(row, "baseline_evaluation"), "key_name"), "nightly2");
    ck_assert(json_is_null(json_object_get(row, "evaluation")));
    json_decref(t);
    /* and they can fail it */
    r = rule(MLREG_RULE_MIN_IMPROVEMENT, 0.1, MLREG_SOURCE_PUSHER);
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "fail");
    has(json_array_get(t, 0), "detail", "0.95 vs baseline 0.88 (1.0): improvement 0.07 < 0.1");
    json_decref(t);
    /* an evaluation on other digests is not used (the lookup is exact, but
     * the gates check too) */
    bev.eval_code_digest = NULL;
    t = eval_rule(&ok, &r);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "hold");
    json_decref(t);
}
END_TEST

START_TEST(test_one_side_naming_digests_holds)
{
    int ok;
    json_t *t, *row;
    mlreg_rule r = rule(MLREG_RULE_MAX_DROP_PCT, 50, MLREG_SOURCE_PUSHER);

    /* the candidate names them, the baseline's report does not */
    cand.dataset_digest = D1;
    t = eval_rule(&ok, &r);
    row = json_array_get(t, 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(sget(row, "outcome"), "hold");
    has(row, "detail", "baseline evaluated on another dataset: re-evaluate the baseline");
    has(row, "detail", "names no digests");
    ck_assert(json_is_null(
        json_object_get(json_object_get(json_object_get(row, "digests"), "baseline"), "dataset")));
    json_decref(t);
    /* the baseline names them, the candidate does not */
    cand.dataset_digest = NULL;
    base.dataset_digest = D1;
    t = eval_rule(&ok, &r);
    row = json_array_get(t, 0);
    ck_assert_str_eq(sget(row, "outcome"), "hold");
    has(row, "detail", "the candidate's name no dataset or eval code digest");
    json_decref(t);
}
END_TEST

START_TEST(test_no_baseline_passes_and_failures_beat_holds)
{
    int ok, all = -1;
    json_t *t, *row;
    mlreg_rule r = rule(MLREG_RULE_MIN_IMPROVEMENT_PCT, 1, MLREG_SOURCE_EVALUATOR);
    mlreg_rule two[2] = {rule(MLREG_RULE_MAX_DROP, 0.5, MLREG_SOURCE_PUSHER),
                         rule(MLREG_RULE_MIN, 0.99, MLREG_SOURCE_PUSHER)};

    in.candidate_evaluation = &cev;
    in.baseline = NULL;
    t = eval_rule(&ok, &r);
    row = json_array_get(t, 0);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(sget(row, "outcome"), "pass");
    ck_assert_str_eq(sget(row, "detail"), "no baseline");
    ck_assert_str_eq(digest_of(row, "candidate", "dataset"), D2);
    ck_assert_ptr_null(digest_of(row, "baseline", "dataset"));
    json_decref(t);

    /* a candidate without the metric fails even where it would hold */
    in.baseline = &base;
    base.dataset_digest = D1;
    r.metric = (char *)"f1";
    t = eval_rule(&ok, &r);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "fail");
    has(json_array_get(t, 0), "detail", "missing metric f1");
    json_decref(t);

    /* a table with a hold and a fail */
    cand.dataset_digest = D2;
    ck_assert_int_eq(mlreg_gates_evaluate(&t, &all, two, 2, &in), 0);
    ck_assert_int_eq(all, 0);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "hold");
    ck_assert_str_eq(sget(json_array_get(t, 1), "outcome"), "fail");
    json_decref(t);
}
END_TEST

START_TEST(test_slice_rule_holds_each_slice)
{
    int ok;
    json_t *t, *row;
    size_t i;
    mlreg_rule r = {
        .type = MLREG_RULE_MAX_DROP, .metric = (char *)"slices.*.accuracy", .threshold = 0.5};

    cand.dataset_digest = D2;
    base.dataset_digest = D1;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), 2);
    json_array_foreach(t, i, row)
    {
        ck_assert_str_eq(sget(row, "outcome"), "hold");
        has(row, "detail", "baseline evaluated on another dataset");
        ck_assert_str_eq(digest_of(row, "baseline", "dataset"), D1);
    }
    ck_assert_str_eq(sget(json_array_get(t, 1), "metric"), "slices.b.accuracy");
    json_decref(t);
    /* the same digests: judged slice by slice */
    base.dataset_digest = D2;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "pass");
    json_decref(t);
    /* source evaluator without an evaluation: one failing row */
    r.source = MLREG_SOURCE_EVALUATOR;
    t = eval_rule(&ok, &r);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(json_array_size(t), 1);
    has(json_array_get(t, 0), "detail", "no evaluation by a trusted evaluator key");
    json_decref(t);
}
END_TEST

START_TEST(test_require_rows_have_outcome_but_no_source)
{
    mlreg_rule r[2] = {{.type = MLREG_RULE_APPROVALS, .min_count = 1},
                       {.type = MLREG_RULE_PREVIOUS_STAGE}};
    int all = -1;
    json_t *t = NULL;

    in.approvals = 1;
    ck_assert_int_eq(mlreg_gates_evaluate(&t, &all, r, 2, &in), 0);
    ck_assert_str_eq(sget(json_array_get(t, 0), "outcome"), "pass");
    ck_assert_str_eq(sget(json_array_get(t, 1), "outcome"), "fail");
    ck_assert_ptr_null(json_object_get(json_array_get(t, 0), "source"));
    ck_assert_ptr_null(json_object_get(json_array_get(t, 0), "evaluation"));
    ck_assert_ptr_null(json_object_get(json_array_get(t, 0), "digests"));
    json_decref(t);
}
END_TEST

static Suite *gates_evaluator_suite(void)
{
    Suite *s = suite_create("gates_evaluator");
    TCase *tc = tcase_create("parse");
    TCase *te = tcase_create("evaluate");

    tcase_add_test(tc, test_source_parses_on_every_metric_rule_and_shows);
    tcase_add_test(tc, test_bad_source_is_refused_naming_the_key);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(te, eval_setup, NULL);
    tcase_add_test(te, test_evaluator_rules_fail_without_an_evaluation);
    tcase_add_test(te, test_pusher_rows_name_their_source_and_no_evaluation);
    tcase_add_test(te, test_evaluator_numbers_decide_and_the_row_names_the_evaluation);
    tcase_add_test(te, test_evaluator_comparisons_use_the_baseline_evaluation_on_the_same_digests);
    tcase_add_test(te, test_evaluator_comparison_holds_without_a_comparable_baseline_evaluation);
    tcase_add_test(te, test_pusher_comparisons_on_digests);
    tcase_add_test(te, test_one_side_naming_digests_holds);
    tcase_add_test(te, test_no_baseline_passes_and_failures_beat_holds);
    tcase_add_test(te, test_slice_rule_holds_each_slice);
    tcase_add_test(te, test_require_rows_have_outcome_but_no_source);
    suite_add_tcase(s, te);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gates_evaluator_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
