/* check_time.c: the one RFC 3339 rule (time.h), its formatter and the
 * process clock. Every time mlreg reads goes through mlreg_time_parse(), so
 * these cases hold for manifest `created`, `?at=`, attach and revocation
 * times, `mlreg resolve --at` and `mlreg audit log --since` alike. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/time.h"

static void expect_bad(const char *s)
{
    int64_t sec = 7;
    int32_t nsec = 7;

    ck_assert_msg(mlreg_time_parse(&sec, &nsec, s) == MLREG_EINVALID, "'%s' should be refused", s);
    ck_assert_ptr_nonnull(
        strstr(mlreg_error_last(), s ? "is not an RFC 3339 date-time" : "date-time missing"));
    ck_assert_int_eq(sec, 7);
    ck_assert_int_eq(nsec, 7);
}

static int64_t parse_sec(const char *s)
{
    int64_t sec = 0;

    ck_assert_msg(mlreg_time_parse(&sec, NULL, s) == 0, "'%s' should parse: %s", s,
                  mlreg_error_last());
    return sec;
}

START_TEST(test_time_as_pushed_allows_a_space_and_long_fractions_and_nothing_else)
{
    int64_t sec = 0, want = 0;
    int32_t nsec = 0;

    ck_assert_int_eq(mlreg_time_parse(&want, NULL, "2026-01-01T10:00:00Z"), 0);
    ck_assert_int_eq(mlreg_time_parse(NULL, NULL, "2026-01-01 10:00:00Z"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_time_parse(NULL, NULL, "2026-01-01T10:00:00.1234567891Z"),
                     MLREG_EINVALID);
    ck_assert_int_eq(
        mlreg_time_parse_flags(&sec, &nsec, "2026-01-01 10:00:00Z", MLREG_TIME_AS_PUSHED), 0);
    ck_assert(sec == want && nsec == 0);
    ck_assert_int_eq(mlreg_time_parse_flags(&sec, &nsec, "2026-01-01T10:00:00.1234567891Z",
                                            MLREG_TIME_AS_PUSHED),
                     0);
    ck_assert(sec == want && nsec == 123456789);
    /* the rest of the rule stays */
    ck_assert_int_eq(
        mlreg_time_parse_flags(NULL, NULL, "2026-02-31 10:00:00Z", MLREG_TIME_AS_PUSHED),
        MLREG_EINVALID);
    ck_assert_int_eq(
        mlreg_time_parse_flags(NULL, NULL, "2026-01-01  10:00:00Z", MLREG_TIME_AS_PUSHED),
        MLREG_EINVALID);
    ck_assert_int_eq(
        mlreg_time_parse_flags(NULL, NULL, "2026-01-01T10:00:00.Z", MLREG_TIME_AS_PUSHED),
        MLREG_EINVALID);
}
END_TEST

START_TEST(test_offsets_and_fractions_convert_to_utc)
{
    int64_t s1, s2;
    int32_t ns;

    ck_assert_int_eq(mlreg_time_parse(&s1, &ns, "1970-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(s1, 0);
    ck_assert_int_eq(mlreg_time_parse(&s1, &ns, "2024-02-29T12:00:00.5+02:00"), 0);
    ck_assert_int_eq(mlreg_time_parse(&s2, NULL, "2024-02-29T10:00:00Z"), 0);
    ck_assert_int_eq(s1, s2);
    ck_assert_int_eq(ns, 500000000);
}
END_TEST

START_TEST(test_times_parse_with_fractions_and_offsets)
{
    int64_t s;
    int32_t ns;

    ck_assert_int_eq(mlreg_time_parse(&s, &ns, "2023-11-14T22:13:20Z"), 0);
    ck_assert_int_eq(s, 1700000000);
    ck_assert_int_eq(ns, 0);
    ck_assert_int_eq(mlreg_time_parse(&s, &ns, "2023-11-14T22:13:20.25Z"), 0);
    ck_assert_int_eq(s, 1700000000);
    ck_assert_int_eq(ns, 250000000);
    ck_assert_int_eq(mlreg_time_parse(&s, &ns, "2023-11-15T00:13:20+02:00"), 0);
    ck_assert_int_eq(s, 1700000000);
    ck_assert_int_eq(mlreg_time_parse(&s, &ns, "2023-11-14 22:13:20Z"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_time_parse(&s, &ns, "2023-11-14T22:13:20"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_time_parse(&s, &ns, "2023-13-14T22:13:20Z"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_time_parse(&s, &ns, "2023-11-14T22:13:20.Z"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_time_parse(&s, &ns, "2023-11-14T22:13:20Zjunk"), MLREG_EINVALID);
}
END_TEST

START_TEST(test_lowercase_t_and_z_and_negative_offsets_are_accepted)
{
    ck_assert_int_eq(parse_sec("2023-11-14t22:13:20z"), 1700000000);
    ck_assert_int_eq(parse_sec("2023-11-14T19:43:20-02:30"), 1700000000);
    ck_assert_int_eq(parse_sec("2023-11-14T22:13:20-00:00"), 1700000000);
}
END_TEST

START_TEST(test_a_day_must_exist_in_its_month)
{
    ck_assert_int_eq(parse_sec("2024-02-29T00:00:00Z"), 1709164800);
    ck_assert_int_eq(parse_sec("2000-02-29T00:00:00Z"), 951782400);
    expect_bad("2026-02-29T00:00:00Z"); /* not a leap year */
    expect_bad("1900-02-29T00:00:00Z"); /* divisible by 100, not by 400 */
    expect_bad("2026-02-31T00:00:00Z");
    expect_bad("2026-02-30T00:00:00Z");
    expect_bad("2026-04-31T00:00:00Z");
    expect_bad("2026-11-00T00:00:00Z");
    expect_bad("2026-00-10T00:00:00Z");
    ck_assert_int_eq(parse_sec("2026-12-31T00:00:00Z"), parse_sec("2027-01-01T00:00:00Z") - 86400);
}
END_TEST

START_TEST(test_a_leap_second_is_accepted_only_at_23_59_60_utc)
{
    int32_t ns = -1;
    int64_t s = 0;

    ck_assert_int_eq(mlreg_time_parse(&s, &ns, "2016-12-31T23:59:60.5Z"), 0);
    ck_assert_int_eq(s, parse_sec("2017-01-01T00:00:00Z"));
    ck_assert_int_eq(ns, 500000000);
    /* the same instant written with an offset */
    ck_assert_int_eq(parse_sec("2017-01-01T00:59:60+01:00"), parse_sec("2017-01-01T00:00:00Z"));
    expect_bad("2016-12-31T12:34:60Z");
    expect_bad("2016-12-31T23:59:60+01:00"); /* 22:59:60 UTC */
    expect_bad("2016-12-31T23:59:61Z");
}
END_TEST

START_TEST(test_fields_out_of_range_and_malformed_texts_are_refused)
{
    expect_bad(NULL);
    expect_bad("");
    expect_bad("yesterday");
    expect_bad("2026-11-26");
    expect_bad("2026-11-26T24:00:00Z");
    expect_bad("2026-11-26T23:60:00Z");
    expect_bad("2026-11-26T03:00:00+24:00");
    expect_bad("2026-11-26T03:00:00+02:60");
    expect_bad("2026-11-26T03:00:00+0200");
    expect_bad("2026-11-26T03:00Z");
    expect_bad("26-11-26T03:00:00Z");
    expect_bad("2026-11-26T03:00:00Z junk");
    expect_bad("2026-11-26T03:00:00.+02:00");
}
END_TEST

START_TEST(test_one_to_nine_fraction_digits_are_accepted_and_ten_refused)
{
    int32_t ns;

    ck_assert_int_eq(mlreg_time_parse(NULL, &ns, "2026-11-26T03:00:00.1Z"), 0);
    ck_assert_int_eq(ns, 100000000);
    ck_assert_int_eq(mlreg_time_parse(NULL, &ns, "2026-11-26T03:00:00.123456789Z"), 0);
    ck_assert_int_eq(ns, 123456789);
    expect_bad("2026-11-26T03:00:00.1234567890Z");
}
END_TEST

START_TEST(test_the_instant_must_lie_within_years_0000_to_9999)
{
    ck_assert_int_eq(parse_sec("0000-01-01T00:00:00Z"), -62167219200LL);
    ck_assert_int_eq(parse_sec("9999-12-31T23:59:59Z"), 253402300799LL);
    expect_bad("0000-01-01T00:00:00+00:01");
    expect_bad("9999-12-31T23:59:59-00:01");
}
END_TEST

START_TEST(test_time_is_rfc3339_with_nanoseconds_and_strictly_increasing)
{
    char t[MLREG_TIME_STRLEN];
    int64_t a, b;

    mlreg_time_format(t, 0);
    ck_assert_str_eq(t, "1970-01-01T00:00:00.000000000Z");
    mlreg_time_format(t, (int64_t)1767323045 * 1000000000 + 123456789);
    ck_assert_str_eq(t, "2026-01-02T03:04:05.123456789Z");
    a = mlreg_time_now_ns();
    b = mlreg_time_now_ns();
    ck_assert_int_gt(b, a);
}
END_TEST

START_TEST(test_format_writes_what_parse_reads_back)
{
    const int64_t secs[] = {-62167219200LL, -1, 0, 951782399, 1700000000, 253402300799LL};
    char t[MLREG_TIME_STRLEN];
    int64_t s;
    int32_t ns;

    mlreg_time_format(t, -1);
    ck_assert_str_eq(t, "1969-12-31T23:59:59.999999999Z");
    mlreg_time_format_sec(t, -62167219200LL, 0);
    ck_assert_str_eq(t, "0000-01-01T00:00:00.000000000Z");
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
        mlreg_time_format_sec(t, secs[i], 42);
        ck_assert_int_eq(mlreg_time_parse(&s, &ns, t), 0);
        ck_assert_int_eq(s, secs[i]);
        ck_assert_int_eq(ns, 42);
    }
}
END_TEST

START_TEST(test_advance_moves_the_clock_past_a_stored_time)
{
    int64_t future = mlreg_time_now_ns() + (int64_t)3600 * 1000000000;

    mlreg_time_advance(future);
    ck_assert_int_gt(mlreg_time_now_ns(), future);
    /* an older time never moves it back */
    mlreg_time_advance(0);
    ck_assert_int_gt(mlreg_time_now_ns(), future);
}
END_TEST

static Suite *time_suite(void)
{
    Suite *s = suite_create("time");
    TCase *tc = tcase_create("rfc3339");

    tcase_add_test(tc, test_time_as_pushed_allows_a_space_and_long_fractions_and_nothing_else);
    tcase_add_test(tc, test_offsets_and_fractions_convert_to_utc);
    tcase_add_test(tc, test_times_parse_with_fractions_and_offsets);
    tcase_add_test(tc, test_lowercase_t_and_z_and_negative_offsets_are_accepted);
    tcase_add_test(tc, test_a_day_must_exist_in_its_month);
    tcase_add_test(tc, test_a_leap_second_is_accepted_only_at_23_59_60_utc);
    tcase_add_test(tc, test_fields_out_of_range_and_malformed_texts_are_refused);
    tcase_add_test(tc, test_one_to_nine_fraction_digits_are_accepted_and_ten_refused);
    tcase_add_test(tc, test_the_instant_must_lie_within_years_0000_to_9999);
    tcase_add_test(tc, test_time_is_rfc3339_with_nanoseconds_and_strictly_increasing);
    tcase_add_test(tc, test_format_writes_what_parse_reads_back);
    tcase_add_test(tc, test_advance_moves_the_clock_past_a_stored_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(time_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
