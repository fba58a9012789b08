/* check_error.c: the per-thread error message. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"

START_TEST(test_error_set_returns_its_code_and_keeps_the_message)
{
    ck_assert_int_eq(mlreg_error_set(MLREG_EINVALID, "bad tag %s", "x y"), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "bad tag x y");
    mlreg_error_clear();
    ck_assert_str_eq(mlreg_error_last(), "");
}
END_TEST

START_TEST(test_error_set_may_quote_the_previous_message_as_context)
{
    mlreg_error_set(MLREG_EIO, "read blob: %s", "input/output error");
    mlreg_error_set(MLREG_EIO, "pulling weights.bin: %s", mlreg_error_last());
    ck_assert_str_eq(mlreg_error_last(), "pulling weights.bin: read blob: input/output error");
}
END_TEST

START_TEST(test_error_set_truncates_an_overlong_message_without_overflow)
{
    char big[2048];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mlreg_error_set(MLREG_EINVALID, "%s", big);
    size_t n = strlen(mlreg_error_last());
    ck_assert_uint_gt(n, 100);
    ck_assert_uint_lt(n, sizeof(big) - 1);
}
END_TEST

static void *other_thread(void *arg)
{
    (void)arg;
    mlreg_error_set(MLREG_ENOTFOUND, "message of another thread");
    return NULL;
}

START_TEST(test_error_message_is_per_thread)
{
    pthread_t t;
    mlreg_error_set(MLREG_EIO, "mine");
    ck_assert_int_eq(pthread_create(&t, NULL, other_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_str_eq(mlreg_error_last(), "mine");
}
END_TEST

START_TEST(test_strerror_names_the_signature_code)
{
    ck_assert_str_eq(mlreg_strerror(MLREG_ESIGNATURE), "signature does not match");
    ck_assert_int_lt(MLREG_ESIGNATURE, MLREG_EQUOTA);
}
END_TEST

START_TEST(test_strerror_names_every_code)
{
    for (int code = MLREG_EQUOTA; code <= MLREG_OK; code++)
        ck_assert_str_ne(mlreg_strerror(code), "unknown error");
    ck_assert_str_eq(mlreg_strerror(-1000), "unknown error");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_error_set_returns_its_code_and_keeps_the_message);
    tcase_add_test(tc, test_error_set_may_quote_the_previous_message_as_context);
    tcase_add_test(tc, test_error_set_truncates_an_overlong_message_without_overflow);
    tcase_add_test(tc, test_error_message_is_per_thread);
    tcase_add_test(tc, test_strerror_names_every_code);
    tcase_add_test(tc, test_strerror_names_the_signature_code);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
