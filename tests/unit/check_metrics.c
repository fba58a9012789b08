/* check_metrics.c: the registry of counters and gauges and the writer of
 * the Prometheus text format (core/metrics.c). Check runs each test in its
 * own process, so each starts with an empty registry. */
#include "mlreg/common.h"
#include "mlreg/metrics.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_metrics_label_values_are_escaped_as_the_format_asks)
{
    mlreg_buf b = {0};
    const char *labels[] = {"stage", "a\\b\"c\nd", "op", "plain"};

    ck_assert_int_eq(mlreg_metrics_write_sample_u64(&b, "m_total", labels, 2, 7), 0);
    ck_assert_str_eq(b.p, "m_total{stage=\"a\\\\b\\\"c\\nd\",op=\"plain\"} 7\n");
    free(b.p);
}
END_TEST

START_TEST(test_metrics_help_escapes_backslash_and_newline_but_not_quotes)
{
    mlreg_buf b = {0};

    ck_assert_int_eq(mlreg_metrics_write_family(&b, "m", "gauge", "a \"q\" \\ x\ny"), 0);
    ck_assert_str_eq(b.p, "# HELP m a \"q\" \\\\ x\\ny\n# TYPE m gauge\n");
    free(b.p);
}
END_TEST

START_TEST(test_metrics_values_are_exact_integers_or_the_shortest_round_trip)
{
    mlreg_buf b = {0};

    ck_assert_int_eq(mlreg_metrics_write_sample(&b, "a", NULL, 0, 3), 0);
    ck_assert_int_eq(mlreg_metrics_write_sample(&b, "b", NULL, 0, 0.005), 0);
    ck_assert_int_eq(mlreg_metrics_write_sample(&b, "c", NULL, 0, 0.1 + 0.2), 0);
    ck_assert_int_eq(mlreg_metrics_write_sample(&b, "d", NULL, 0, -2.5), 0);
    ck_assert_int_eq(mlreg_metrics_write_sample(&b, "e", NULL, 0, 1e300), 0);
    ck_assert_int_eq(mlreg_metrics_write_sample(&b, "f", NULL, 0, 1.0 / 0.0), 0);
    ck_assert_int_eq(mlreg_metrics_write_sample(&b, "g", NULL, 0, -1.0 / 0.0), 0);
    ck_assert_int_eq(mlreg_metrics_write_sample(&b, "h", NULL, 0, 0.0 / 0.0), 0);
    ck_assert_int_eq(mlreg_metrics_write_sample_u64(&b, "i", NULL, 0, UINT64_MAX), 0);
    ck_assert_str_eq(b.p, "a 3\nb 0.005\nc 0.30000000000000004\nd -2.5\ne 1e+300\nf +Inf\n"
                          "g -Inf\nh NaN\ni 18446744073709551615\n");
    free(b.p);
}
END_TEST

START_TEST(test_metrics_histogram_buckets_are_cumulative_and_inf_equals_count)
{
    mlreg_buf b = {0};
    const double bounds[] = {0.1, 1, 10};
    const uint64_t counts[] = {2, 0, 3, 4}; /* the last: above 10 */
    const char *labels[] = {"route", "/v2/"};

    ck_assert_int_eq(
        mlreg_metrics_write_histogram(&b, "lat_seconds", labels, 1, bounds, counts, 3, 42.25), 0);
    ck_assert_str_eq(b.p, "lat_seconds_bucket{route=\"/v2/\",le=\"0.1\"} 2\n"
                          "lat_seconds_bucket{route=\"/v2/\",le=\"1\"} 2\n"
                          "lat_seconds_bucket{route=\"/v2/\",le=\"10\"} 5\n"
                          "lat_seconds_bucket{route=\"/v2/\",le=\"+Inf\"} 9\n"
                          "lat_seconds_sum{route=\"/v2/\"} 42.25\n"
                          "lat_seconds_count{route=\"/v2/\"} 9\n");
    free(b.p);
}
END_TEST

START_TEST(test_metrics_histogram_without_labels_has_only_le)
{
    mlreg_buf b = {0};
    const double bounds[] = {1};
    const uint64_t counts[] = {0, 0};

    ck_assert_int_eq(mlreg_metrics_write_histogram(&b, "h", NULL, 0, bounds, counts, 1, 0), 0);
    ck_assert_str_eq(b.p, "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
    free(b.p);
}
END_TEST

START_TEST(test_metrics_histogram_refuses_bounds_not_increasing)
{
    mlreg_buf b = {0};
    const double bounds[] = {1, 1};
    const uint64_t counts[] = {0, 0, 0};

    ck_assert_int_eq(mlreg_metrics_write_histogram(&b, "h", NULL, 0, bounds, counts, 2, 0),
                     MLREG_EINVALID);
    free(b.p);
}
END_TEST

START_TEST(test_metrics_registered_series_share_one_help_and_type_block)
{
    mlreg_metrics_series *put = mlreg_metrics_counter(
        "x_ops_total", "Ops.", (const char *[]){"backend", "fs", "op", "put"}, 2);
    mlreg_metrics_series *get = mlreg_metrics_counter(
        "x_ops_total", "Ops.", (const char *[]){"backend", "fs", "op", "get"}, 2);
    mlreg_metrics_series *lag = mlreg_metrics_gauge("x_lag", "Lag.", NULL, 0);
    mlreg_buf b = {0};

    ck_assert_ptr_nonnull(put);
    ck_assert_ptr_nonnull(get);
    ck_assert_ptr_ne(put, get);
    ck_assert_ptr_eq(mlreg_metrics_counter("x_ops_total", "Ops.",
                                           (const char *[]){"backend", "fs", "op", "put"}, 2),
                     put);
    mlreg_metrics_add(put, 2);
    mlreg_metrics_add(get, 1);
    mlreg_metrics_set(lag, 10);
    mlreg_metrics_sub(lag, 15);
    ck_assert_int_eq(mlreg_metrics_write_registered(&b), 0);
    ck_assert_str_eq(b.p, "# HELP x_ops_total Ops.\n# TYPE x_ops_total counter\n"
                          "x_ops_total{backend=\"fs\",op=\"put\"} 2\n"
                          "x_ops_total{backend=\"fs\",op=\"get\"} 1\n"
                          "# HELP x_lag Lag.\n# TYPE x_lag gauge\nx_lag -5\n");
    free(b.p);
}
END_TEST

START_TEST(test_metrics_counters_ignore_set_and_sub_and_null_is_a_no_op)
{
    mlreg_metrics_series *c = mlreg_metrics_counter("c_total", "C.", NULL, 0);

    mlreg_metrics_add(c, 5);
    mlreg_metrics_set(c, 1);
    mlreg_metrics_sub(c, 1);
    ck_assert_int_eq(mlreg_metrics_value(c), 5);
    mlreg_metrics_add(NULL, 1);
    mlreg_metrics_set(NULL, 1);
    mlreg_metrics_sub(NULL, 1);
    ck_assert_int_eq(mlreg_metrics_value(NULL), 0);
}
END_TEST

START_TEST(test_metrics_bad_names_and_conflicts_are_refused)
{
    char long_value[200];

    memset(long_value, 'v', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    ck_assert_ptr_null(mlreg_metrics_counter("", "h", NULL, 0));
    ck_assert_ptr_null(mlreg_metrics_counter("1abc", "h", NULL, 0));
    ck_assert_ptr_null(mlreg_metrics_counter("a-b", "h", NULL, 0));
    ck_assert_ptr_null(mlreg_metrics_counter("a b", "h", NULL, 0));
    ck_assert_ptr_null(mlreg_metrics_counter("ok", "h", (const char *[]){"__reserved", "x"}, 1));
    ck_assert_ptr_null(mlreg_metrics_counter("ok", "h", (const char *[]){"a:b", "x"}, 1));
    ck_assert_ptr_null(mlreg_metrics_counter("ok", "h", (const char *[]){"l", long_value}, 1));
    ck_assert_ptr_null(mlreg_metrics_counter(
        "ok", "h", (const char *[]){"a", "1", "b", "2", "c", "3", "d", "4", "e", "5"}, 5));
    ck_assert_ptr_null(mlreg_metrics_counter("ok", NULL, NULL, 0));
    ck_assert_ptr_null(mlreg_metrics_counter("ok", "h", (const char *[]){"a", NULL}, 1));
    ck_assert_ptr_nonnull(
        mlreg_metrics_counter("ns:ok_total", "h", (const char *[]){"le_not", "x"}, 1));
    ck_assert_ptr_nonnull(mlreg_metrics_counter("dup", "h", NULL, 0));
    ck_assert_ptr_null(mlreg_metrics_gauge("dup", "h", NULL, 0));
    ck_assert_str_eq(mlreg_error_last(),
                     "metric dup is registered already with another type or help text");
    ck_assert_ptr_null(mlreg_metrics_counter("dup", "other help", NULL, 0));
}
END_TEST

START_TEST(test_metrics_a_full_registry_refuses_more_series_and_keeps_the_others)
{
    char v[16];
    mlreg_metrics_series *first = NULL;

    for (int i = 0; i < MLREG_METRICS_MAX; i++) {
        mlreg_metrics_series *m;
        snprintf(v, sizeof(v), "%d", i);
        m = mlreg_metrics_counter("many_total", "Many.", (const char *[]){"i", v}, 1);
        ck_assert_ptr_nonnull(m);
        if (i == 0) first = m;
    }
    ck_assert_ptr_null(
        mlreg_metrics_counter("many_total", "Many.", (const char *[]){"i", "extra"}, 1));
    ck_assert_ptr_eq(mlreg_metrics_counter("many_total", "Many.", (const char *[]){"i", "0"}, 1),
                     first);
    mlreg_metrics_add(first, 1);
    ck_assert_int_eq(mlreg_metrics_value(first), 1);
}
END_TEST

#define THREADS 4
#define BUMPS   100000

static void *bump(void *m)
{
    for (int i = 0; i < BUMPS; i++)
        mlreg_metrics_add(m, 1);
    return NULL;
}

START_TEST(test_metrics_concurrent_adds_are_all_counted)
{
    mlreg_metrics_series *m = mlreg_metrics_counter("race_total", "Race.", NULL, 0);
    pthread_t t[THREADS];

    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, bump, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(mlreg_metrics_value(m), (int64_t)THREADS * BUMPS);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_metrics_label_values_are_escaped_as_the_format_asks);
    tcase_add_test(tc, test_metrics_help_escapes_backslash_and_newline_but_not_quotes);
    tcase_add_test(tc, test_metrics_values_are_exact_integers_or_the_shortest_round_trip);
    tcase_add_test(tc, test_metrics_histogram_buckets_are_cumulative_and_inf_equals_count);
    tcase_add_test(tc, test_metrics_histogram_without_labels_has_only_le);
    tcase_add_test(tc, test_metrics_histogram_refuses_bounds_not_increasing);
    tcase_add_test(tc, test_metrics_registered_series_share_one_help_and_type_block);
    tcase_add_test(tc, test_metrics_counters_ignore_set_and_sub_and_null_is_a_no_op);
    tcase_add_test(tc, test_metrics_bad_names_and_conflicts_are_refused);
    tcase_add_test(tc, test_metrics_a_full_registry_refuses_more_series_and_keeps_the_others);
    tcase_add_test(tc, test_metrics_concurrent_adds_are_all_counted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
