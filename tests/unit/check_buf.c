/* check_buf.c: the growing byte buffer (core/buf.c). */
#include "mlreg/buf.h"
#include "mlreg/common.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_buf_appends_pieces_and_keeps_a_nul_after_them)
{
    mlreg_buf b = {0};
    char big[1000];

    ck_assert_int_eq(mlreg_buf_add(&b, "", 0), 0);
    ck_assert_ptr_nonnull(b.p);
    ck_assert_str_eq(b.p, "");
    ck_assert_int_eq(mlreg_buf_add(&b, "ab", 2), 0);
    ck_assert_int_eq(mlreg_buf_add(&b, "c\0d", 3), 0);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_int_eq(memcmp(b.p, "abc\0d", 6), 0); /* the NUL after "d" included */
    memset(big, 'x', sizeof(big));
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(mlreg_buf_add(&b, big, sizeof(big)), 0);
    ck_assert_uint_eq(b.len, 5 + 100 * sizeof(big));
    ck_assert_uint_gt(b.cap, b.len);
    ck_assert_int_eq(b.p[b.len], '\0');
    free(b.p);
}
END_TEST

START_TEST(test_buf_refuses_a_length_that_would_overflow_and_keeps_its_bytes)
{
    mlreg_buf b = {0};

    ck_assert_int_eq(mlreg_buf_add(&b, "keep", 4), 0);
    ck_assert_int_eq(mlreg_buf_add(&b, "x", SIZE_MAX - 2), MLREG_ENOMEM);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_str_eq(b.p, "keep");
    free(b.p);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_buf_appends_pieces_and_keeps_a_nul_after_them);
    tcase_add_test(tc, test_buf_refuses_a_length_that_would_overflow_and_keeps_its_bytes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(buf_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
