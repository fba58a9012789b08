/* check_metric_filter.c: the conditions of `mlreg search --metric`
 * (cli/metric_filter.h): every operator parses and compares as written,
 * the operator is the last one (names may hold dots and spaces), and
 * hostile input (no operator, doubled operators, NaN, infinities, huge
 * values, over-long names, control characters, trailing junk) is refused
 * with a message, never taken for a condition.
 */
#include "../../cli/metric_filter.h"

#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"

static json_t *metrics(double acc)
{
    return json_pack("{s:f, s:i, s:s}", "accuracy", acc, "epochs", 3, "note", "x");
}

START_TEST(test_filter_every_operator_parses_and_compares_as_written)
{
    struct {
        const char *cond;
        cli_cmp_op op;
        int at_09, at_095;
    } cases[] = {
        {"accuracy>0.9", CLI_CMP_GT, 0, 1},  {"accuracy>=0.9", CLI_CMP_GE, 1, 1},
        {"accuracy<0.95", CLI_CMP_LT, 1, 0}, {"accuracy<=0.9", CLI_CMP_LE, 1, 0},
        {"accuracy=0.9", CLI_CMP_EQ, 1, 0},
    };
    json_t *a = metrics(0.9), *b = metrics(0.95);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_metric_filter f;
        ck_assert_int_eq(cli_metric_filter_parse(&f, cases[i].cond), 0);
        ck_assert_str_eq(f.name, "accuracy");
        ck_assert_int_eq(f.op, cases[i].op);
        ck_assert_int_eq(cli_metric_filter_match(&f, a), cases[i].at_09);
        ck_assert_int_eq(cli_metric_filter_match(&f, b), cases[i].at_095);
    }
    json_decref(a);
    json_decref(b);
}
END_TEST

START_TEST(test_filter_integers_exponents_and_negative_values_are_numbers)
{
    cli_metric_filter f;
    json_t *m = metrics(0.5);

    ck_assert_int_eq(cli_metric_filter_parse(&f, "epochs>=3"), 0);
    ck_assert_int_eq(cli_metric_filter_match(&f, m), 1);
    ck_assert_int_eq(cli_metric_filter_parse(&f, "accuracy<5e-1"), 0);
    ck_assert_int_eq(cli_metric_filter_match(&f, m), 0);
    ck_assert_int_eq(cli_metric_filter_parse(&f, "accuracy>-1"), 0);
    ck_assert(f.value == -1.0);
    ck_assert_int_eq(cli_metric_filter_match(&f, m), 1);
    json_decref(m);
}
END_TEST

START_TEST(test_filter_operator_is_the_last_one_so_names_keep_dots_and_spaces)
{
    cli_metric_filter f;

    ck_assert_int_eq(cli_metric_filter_parse(&f, "results.hellaswag acc_norm>=0.5"), 0);
    ck_assert_str_eq(f.name, "results.hellaswag acc_norm");
    ck_assert_int_eq(f.op, CLI_CMP_GE);
    ck_assert_int_eq(cli_metric_filter_parse(&f, "a<b>1"), 0);
    ck_assert_str_eq(f.name, "a<b");
    ck_assert_int_eq(f.op, CLI_CMP_GT);
}
END_TEST

START_TEST(test_filter_missing_or_non_numeric_metric_never_matches)
{
    cli_metric_filter f;
    json_t *m = metrics(0.9);

    ck_assert_int_eq(cli_metric_filter_parse(&f, "f1>0"), 0);
    ck_assert_int_eq(cli_metric_filter_match(&f, m), 0);
    ck_assert_int_eq(cli_metric_filter_parse(&f, "note<1"), 0);
    ck_assert_int_eq(cli_metric_filter_match(&f, m), 0);
    ck_assert_int_eq(cli_metric_filter_match(&f, NULL), 0);
    json_decref(m);
}
END_TEST

START_TEST(test_filter_hostile_conditions_are_refused_with_a_message)
{
    const char *bad[] = {"accuracy",
                         "accuracy==0.9",
                         "accuracy=>0.9",
                         "accuracy<>1",
                         "accuracy>>1",
                         ">0.9",
                         "accuracy>",
                         "accuracy>nan",
                         "accuracy>NaN",
                         "accuracy>inf",
                         "accuracy<-inf",
                         "accuracy>1e999",
                         "accuracy>-1e400",
                         "accuracy>0.9x",
                         "accuracy> 0.9",
                         "accuracy>0x",
                         "acc\x1b[31m>1",
                         "acc\n>1",
                         ""};
    cli_metric_filter f;
    char big[CLI_METRIC_FILTER_MAX + 10], name[MLREG_MAX_METRIC_NAME_BYTES + 10];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mlreg_error_clear();
        ck_assert_msg(cli_metric_filter_parse(&f, bad[i]) == MLREG_EINVALID, "accepted '%s'",
                      bad[i]);
        ck_assert_str_ne(mlreg_error_last(), "");
    }
    memset(big, 'a', sizeof(big) - 3);
    memcpy(big + sizeof(big) - 3, ">1", 3);
    ck_assert_int_eq(cli_metric_filter_parse(&f, big), MLREG_EINVALID);
    memset(name, 'n', sizeof(name) - 3);
    memcpy(name + sizeof(name) - 3, ">1", 3);
    ck_assert_int_eq(cli_metric_filter_parse(&f, name), MLREG_EINVALID);
    name[MLREG_MAX_METRIC_NAME_BYTES] = '>';
    name[MLREG_MAX_METRIC_NAME_BYTES + 1] = '1';
    name[MLREG_MAX_METRIC_NAME_BYTES + 2] = '\0';
    ck_assert_int_eq(cli_metric_filter_parse(&f, name), 0);
    ck_assert_uint_eq(strlen(f.name), MLREG_MAX_METRIC_NAME_BYTES);
}
END_TEST

START_TEST(test_filter_operator_text_reads_back)
{
    ck_assert_str_eq(cli_cmp_op_text(CLI_CMP_GE), ">=");
    ck_assert_str_eq(cli_cmp_op_text(CLI_CMP_LE), "<=");
    ck_assert_str_eq(cli_cmp_op_text(CLI_CMP_EQ), "=");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("metric_filter");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_filter_every_operator_parses_and_compares_as_written);
    tcase_add_test(tc, test_filter_integers_exponents_and_negative_values_are_numbers);
    tcase_add_test(tc, test_filter_operator_is_the_last_one_so_names_keep_dots_and_spaces);
    tcase_add_test(tc, test_filter_missing_or_non_numeric_metric_never_matches);
    tcase_add_test(tc, test_filter_hostile_conditions_are_refused_with_a_message);
    tcase_add_test(tc, test_filter_operator_text_reads_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
