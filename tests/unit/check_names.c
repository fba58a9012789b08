/* check_names.c: repository name, tag and reference grammars (OCI spec), key
 * and token labels and roles, and the byte encodings of bytes.h. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/names.h"

static void expect_name_ok(const char *name)
{
    ck_assert_msg(mlreg_name_validate(name) == 0, "'%s' should be valid: %s", name,
                  mlreg_error_last());
}

static void expect_name_bad(const char *name)
{
    ck_assert_msg(mlreg_name_validate(name) == MLREG_EINVALID, "'%s' should be invalid", name);
    ck_assert_str_ne(mlreg_error_last(), "");
}

static void expect_tag_ok(const char *tag)
{
    ck_assert_msg(mlreg_tag_validate(tag) == 0, "'%s' should be valid: %s", tag,
                  mlreg_error_last());
}

static void expect_tag_bad(const char *tag)
{
    ck_assert_msg(mlreg_tag_validate(tag) == MLREG_EINVALID, "'%s' should be invalid", tag);
}

START_TEST(test_name_accepts_simple_and_namespaced_names)
{
    expect_name_ok("a");
    expect_name_ok("classifier");
    expect_name_ok("team/classifier");
    expect_name_ok("org/team/rag-answerer");
    expect_name_ok("a0/b1/c2");
    expect_name_ok("9lives");
}
END_TEST

START_TEST(test_name_accepts_every_separator_form)
{
    expect_name_ok("a.b");
    expect_name_ok("a_b");
    expect_name_ok("a__b");
    expect_name_ok("a-b");
    expect_name_ok("a---b");
    expect_name_ok("a.b_c__d-e--f/g.h");
}
END_TEST

START_TEST(test_name_rejects_uppercase)
{
    expect_name_bad("Classifier");
    expect_name_bad("team/Model");
}
END_TEST

START_TEST(test_name_rejects_dot_dot_and_path_traversal)
{
    expect_name_bad("a..b");
    expect_name_bad("..");
    expect_name_bad("../etc");
    expect_name_bad("team/../x");
    expect_name_bad(".");
    expect_name_bad("team/.hidden");
}
END_TEST

START_TEST(test_name_rejects_leading_trailing_and_double_slashes)
{
    expect_name_bad("/a");
    expect_name_bad("a/");
    expect_name_bad("a//b");
    expect_name_bad("/");
}
END_TEST

START_TEST(test_name_rejects_bad_separators)
{
    expect_name_bad("a___b");
    expect_name_bad("a._b");
    expect_name_bad("a-.b");
    expect_name_bad("-a");
    expect_name_bad("a-");
    expect_name_bad("_a");
    expect_name_bad("a_");
    expect_name_bad("a.");
}
END_TEST

START_TEST(test_name_rejects_empty_null_and_foreign_bytes)
{
    expect_name_bad("");
    ck_assert_int_eq(mlreg_name_validate(NULL), MLREG_EINVALID);
    expect_name_bad("a b");
    expect_name_bad("a:b");
    expect_name_bad("a@b");
    expect_name_bad("caf\xc3\xa9");
    expect_name_bad("a\nb");
}
END_TEST

START_TEST(test_name_of_255_bytes_is_accepted_and_256_rejected)
{
    char name[300];

    memset(name, 'a', 255);
    name[255] = '\0';
    expect_name_ok(name);
    memset(name, 'a', 256);
    name[256] = '\0';
    expect_name_bad(name);
}
END_TEST

START_TEST(test_tag_accepts_the_spec_grammar)
{
    expect_tag_ok("latest");
    expect_tag_ok("1.0.0");
    expect_tag_ok("v1.2.3-rc.1");
    expect_tag_ok("_private");
    expect_tag_ok("UPPER_case-.mix");
    expect_tag_ok("0");
}
END_TEST

START_TEST(test_tag_rejects_bad_first_byte_and_foreign_bytes)
{
    expect_tag_bad("");
    ck_assert_int_eq(mlreg_tag_validate(NULL), MLREG_EINVALID);
    expect_tag_bad(".hidden");
    expect_tag_bad("-rc");
    expect_tag_bad("a/b");
    expect_tag_bad("a:b");
    expect_tag_bad("a+b");
    expect_tag_bad("a b");
    expect_tag_bad("..");
}
END_TEST

START_TEST(test_tag_of_128_bytes_is_accepted_and_129_rejected)
{
    char tag[200];

    memset(tag, 'x', 128);
    tag[128] = '\0';
    expect_tag_ok(tag);
    memset(tag, 'x', 129);
    tag[129] = '\0';
    expect_tag_bad(tag);
}
END_TEST

START_TEST(test_reference_with_colon_is_a_digest_and_without_is_a_tag)
{
    ck_assert_int_eq(mlreg_reference_is_digest("sha256:"
                                               "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310"
                                               "c060f61caaff8a"),
                     1);
    ck_assert_int_eq(mlreg_reference_is_digest("sha512:abc"), 1);
    ck_assert_int_eq(mlreg_reference_is_digest("1.0.0"), 0);
    ck_assert_int_eq(mlreg_reference_is_digest("latest"), 0);
    ck_assert_int_eq(mlreg_reference_is_digest(NULL), 0);
}
END_TEST

START_TEST(test_name_under_a_prefix_matches_whole_components_only)
{
    ck_assert_int_eq(mlreg_name_under("a/b", "a/b"), 1);
    ck_assert_int_eq(mlreg_name_under("a/b/c", "a/b"), 1);
    ck_assert_int_eq(mlreg_name_under("a/b/c/d", "a/b"), 1);
    ck_assert_int_eq(mlreg_name_under("a/bc", "a/b"), 0);
    ck_assert_int_eq(mlreg_name_under("a/b-x", "a/b"), 0);
    ck_assert_int_eq(mlreg_name_under("a/b.x", "a/b"), 0);
    ck_assert_int_eq(mlreg_name_under("a", "a/b"), 0);
    ck_assert_int_eq(mlreg_name_under("x/a/b", "a/b"), 0);
    ck_assert_int_eq(mlreg_name_under("a/b", "a"), 1);
    ck_assert_int_eq(mlreg_name_under(NULL, "a"), 0);
    ck_assert_int_eq(mlreg_name_under("a", NULL), 0);
}
END_TEST

START_TEST(test_label_is_1_to_max_bytes_of_printable_ascii)
{
    ck_assert_int_eq(mlreg_label_valid("release bot", 11, 128), 1);
    ck_assert_int_eq(mlreg_label_valid("~!@#$%^&*()", 11, 11), 1);
    ck_assert_int_eq(mlreg_label_valid("abc", 3, 2), 0);
    ck_assert_int_eq(mlreg_label_valid("", 0, 128), 0);
    ck_assert_int_eq(mlreg_label_valid(NULL, 0, 128), 0);
    ck_assert_int_eq(mlreg_label_valid("a\tb", 3, 128), 0);
    ck_assert_int_eq(mlreg_label_valid("a\x7f", 2, 128), 0);
    ck_assert_int_eq(mlreg_label_valid("mod\xc3\xa8le", 7, 128), 0);
    /* a NUL inside the given length (a JSON string may carry one) */
    ck_assert_int_eq(mlreg_label_valid("a\0b", 3, 128), 0);
}
END_TEST

START_TEST(test_key_role_is_lowercase_led_with_digits_underscore_and_dash)
{
    ck_assert_int_eq(mlreg_key_role_valid("release", 64), 1);
    ck_assert_int_eq(mlreg_key_role_valid("ci-bot_2", 64), 1);
    ck_assert_int_eq(mlreg_key_role_valid("abc", 2), 0);
    ck_assert_int_eq(mlreg_key_role_valid("", 64), 0);
    ck_assert_int_eq(mlreg_key_role_valid(NULL, 64), 0);
    ck_assert_int_eq(mlreg_key_role_valid("2fa", 64), 0);
    ck_assert_int_eq(mlreg_key_role_valid("-x", 64), 0);
    ck_assert_int_eq(mlreg_key_role_valid("Release", 64), 0);
    ck_assert_int_eq(mlreg_key_role_valid("re lease", 64), 0);
    ck_assert_int_eq(mlreg_key_role_valid("a.b", 64), 0);
}
END_TEST

START_TEST(test_be64_and_le64_round_trip_in_their_byte_orders)
{
    unsigned char b[9] = {0};
    const unsigned char be[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};

    mlreg_be64_put(b + 1, 0x0102030405060708ULL); /* unaligned on purpose */
    ck_assert_mem_eq(b + 1, be, 8);
    ck_assert_uint_eq(mlreg_be64_get(b + 1), 0x0102030405060708ULL);
    mlreg_le64_put(b + 1, 0x0102030405060708ULL);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(b[1 + i], be[7 - i]);
    ck_assert_uint_eq(mlreg_le64_get(b + 1), 0x0102030405060708ULL);
    mlreg_be64_put(b, UINT64_MAX);
    ck_assert_uint_eq(mlreg_be64_get(b), UINT64_MAX);
}
END_TEST

START_TEST(test_kind_grammar_accepts_the_well_known_kinds_and_any_lowercase_name)
{
    static const char *const good[] = {"weights",
                                       "tokenizer",
                                       "config",
                                       "seeds",
                                       "eval-report",
                                       "other",
                                       "chunk-index",
                                       "generation-config",
                                       "a",
                                       "x9",
                                       "abcdefghijklmnopqrstuvwxyz012345"};
    static const char *const bad[] = {"",           "Weights", "9x",
                                      "-x",         "a_b",     "a.b",
                                      "a/b",        "a b",     "abcdefghijklmnopqrstuvwxyz0123456",
                                      "caf\xc3\xa9"};
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(mlreg_kind_valid(good[i]), "refused %s", good[i]);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!mlreg_kind_valid(bad[i]), "accepted %s", bad[i]);
    ck_assert(!mlreg_kind_valid(NULL));
}
END_TEST

static Suite *names_suite(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("grammar");

    tcase_add_test(tc, test_name_accepts_simple_and_namespaced_names);
    tcase_add_test(tc, test_name_accepts_every_separator_form);
    tcase_add_test(tc, test_name_rejects_uppercase);
    tcase_add_test(tc, test_name_rejects_dot_dot_and_path_traversal);
    tcase_add_test(tc, test_name_rejects_leading_trailing_and_double_slashes);
    tcase_add_test(tc, test_name_rejects_bad_separators);
    tcase_add_test(tc, test_name_rejects_empty_null_and_foreign_bytes);
    tcase_add_test(tc, test_name_of_255_bytes_is_accepted_and_256_rejected);
    tcase_add_test(tc, test_tag_accepts_the_spec_grammar);
    tcase_add_test(tc, test_tag_rejects_bad_first_byte_and_foreign_bytes);
    tcase_add_test(tc, test_tag_of_128_bytes_is_accepted_and_129_rejected);
    tcase_add_test(tc, test_reference_with_colon_is_a_digest_and_without_is_a_tag);
    tcase_add_test(tc, test_name_under_a_prefix_matches_whole_components_only);
    tcase_add_test(tc, test_label_is_1_to_max_bytes_of_printable_ascii);
    tcase_add_test(tc, test_key_role_is_lowercase_led_with_digits_underscore_and_dash);
    tcase_add_test(tc, test_be64_and_le64_round_trip_in_their_byte_orders);
    tcase_add_test(tc, test_kind_grammar_accepts_the_well_known_kinds_and_any_lowercase_name);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(names_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
