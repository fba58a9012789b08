/* check_text.c: the rule for text shown to people (text.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/text.h"

static int safe(const char *s)
{
    return mlreg_text_span(s, strlen(s)) == strlen(s);
}

START_TEST(test_utf8_span_checks_the_encoding_alone)
{
    ck_assert_uint_eq(mlreg_utf8_span("a\tb\x7f\xc2\x85", 6), 6); /* controls pass */
    ck_assert_uint_eq(mlreg_utf8_span("ok\xc0\xafx", 5), 2);      /* overlong '/' */
    ck_assert_uint_eq(mlreg_utf8_span("ok\xed\xa0\x80", 5), 2);   /* surrogate */
    ck_assert_uint_eq(mlreg_utf8_span("ok\xe2\x82", 4), 2);       /* cut off */
    ck_assert_uint_eq(mlreg_utf8_span("\xf0\x9f\x98\x80", 4), 4); /* U+1F600 */
}
END_TEST

START_TEST(test_text_plain_ascii_and_space_are_safe)
{
    ck_assert(safe(""));
    ck_assert(safe("looks good"));
    ck_assert(safe("accuracy >= 0.9, ~ok! [x] {y} `z` \"q\" 'r' \\"));
    ck_assert_int_eq(mlreg_text_validate("ship it", "reason"), 0);
    ck_assert_int_eq(mlreg_text_validate(NULL, "reason"), 0);
}
END_TEST

START_TEST(test_text_valid_non_ascii_is_kept)
{
    /* é, the no-break space U+00A0 (C2 A0: the byte after C2 is past C1),
     * CJK, an em dash, an emoji outside the BMP. */
    ck_assert(safe("mod\xc3\xa8le"));
    ck_assert(safe("a\xc2\xa0"
                   "b"));
    ck_assert(safe("\xe6\xa8\xa1\xe5\x9e\x8b"));
    ck_assert(safe("\xe2\x80\x94"));
    ck_assert(safe("\xf0\x9f\x9a\x80"));
    ck_assert(safe("\xc2\xbf"));
    ck_assert_int_eq(mlreg_text_validate("d\xc3\xa9ploy \xe6\xa8\xa1\xe5\x9e\x8b", "reason"), 0);
}
END_TEST

START_TEST(test_text_every_c0_control_and_del_are_refused)
{
    char s[4] = {'a', 0, 'b', 0};

    for (int c = 1; c < 0x20; c++) {
        s[1] = (char)c;
        ck_assert_msg(mlreg_text_span(s, 3) == 1, "C0 0x%02x passed", c);
    }
    s[1] = 0x7f;
    ck_assert_uint_eq(mlreg_text_span(s, 3), 1);
    /* tab and newline too: one rule, no exceptions */
    ck_assert(!safe("line one\nline two"));
    ck_assert(!safe("a\tb"));
    ck_assert(!safe("\x1b[31mred"));
    /* an embedded NUL is a control character */
    ck_assert_uint_eq(mlreg_text_span("ab\0cd", 5), 2);
    ck_assert_int_eq(mlreg_text_validate("x\x1b[2J", "reason"), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "reason contains a control character");
}
END_TEST

START_TEST(test_text_every_c1_control_in_utf8_form_is_refused)
{
    char s[5] = {'a', (char)0xc2, 0, 'b', 0};

    for (int c = 0x80; c <= 0x9f; c++) {
        s[2] = (char)c;
        ck_assert_msg(mlreg_text_span(s, 4) == 1, "C1 U+%04X passed", c);
    }
    /* U+009B CSI, as the JSON escape \u009b decodes */
    ck_assert(!safe("ok\xc2\x9b"
                    "31mred"));
    ck_assert_int_eq(mlreg_text_validate("\xc2\x9b"
                                         "2J",
                                         "comment"),
                     MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "comment contains a control character");
}
END_TEST

START_TEST(test_text_invalid_utf8_is_refused)
{
    /* a lone 8-bit CSI (what a Latin-1 terminal acts on), a lone
     * continuation byte, overlong forms of '/' and of U+009B, a UTF-16
     * surrogate, a code point past U+10FFFF, a truncated sequence, F5..FF */
    static const char *const bad[] = {"\x9b",
                                      "\x80",
                                      "\xc0\xaf",
                                      "\xc1\x9b",
                                      "\xe0\x82\x9b",
                                      "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80",
                                      "\xe6\xa8",
                                      "\xff",
                                      "\xf8\x88\x80\x80\x80"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[16];
        snprintf(s, sizeof(s), "ok%s", bad[i]);
        ck_assert_msg(mlreg_text_span(s, strlen(s)) == 2, "bad sequence %zu passed", i);
    }
    ck_assert_int_eq(mlreg_text_validate("caf\xe9", "reason"), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "reason is not valid UTF-8");
}
END_TEST

START_TEST(test_text_sanitize_replaces_each_control_character_with_one_question_mark)
{
    char buf[64];

    ck_assert_uint_eq(mlreg_text_sanitize(buf, sizeof(buf),
                                          "a\x1b[1mb\xc2\x9b"
                                          "c\x7f"
                                          "d\x9b"
                                          "e\xc3\xa9",
                                          15),
                      15);
    ck_assert_str_eq(buf, "a?[1mb?c?d?e\xc3\xa9");
    ck_assert_uint_eq(mlreg_text_span(buf, strlen(buf)), strlen(buf));
}
END_TEST

START_TEST(test_text_sanitize_cuts_between_characters_and_reports_what_it_took)
{
    char buf[6];

    /* "ab" + é + é: room for 5 bytes, so the second é (2 bytes) does not fit
     * after "abé" (4 bytes) and is left out whole. */
    ck_assert_uint_eq(mlreg_text_sanitize(buf, sizeof(buf), "ab\xc3\xa9\xc3\xa9", 6), 4);
    ck_assert_str_eq(buf, "ab\xc3\xa9");
    ck_assert_uint_eq(mlreg_text_sanitize(buf, 1, "abc", 3), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(mlreg_text_sanitize(buf, sizeof(buf), "", 0), 0);
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_text_printable_shows_safe_text_and_hides_the_rest_whole)
{
    const char *ok = "mod\xc3\xa8le v1";

    ck_assert_ptr_eq(mlreg_text_printable(ok), ok);
    ck_assert_str_eq(mlreg_text_printable("a\x1b[31mb"), "(unprintable)");
    ck_assert_str_eq(mlreg_text_printable("x\xc2\x9b"), "(unprintable)");
    ck_assert_str_eq(mlreg_text_printable("caf\xe9"), "(unprintable)");
    ck_assert_str_eq(mlreg_text_printable(""), "-");
    ck_assert_str_eq(mlreg_text_printable(NULL), "-");
}
END_TEST

static Suite *text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("rule");

    tcase_add_test(tc, test_utf8_span_checks_the_encoding_alone);
    tcase_add_test(tc, test_text_plain_ascii_and_space_are_safe);
    tcase_add_test(tc, test_text_valid_non_ascii_is_kept);
    tcase_add_test(tc, test_text_every_c0_control_and_del_are_refused);
    tcase_add_test(tc, test_text_every_c1_control_in_utf8_form_is_refused);
    tcase_add_test(tc, test_text_invalid_utf8_is_refused);
    tcase_add_test(tc, test_text_sanitize_replaces_each_control_character_with_one_question_mark);
    tcase_add_test(tc, test_text_sanitize_cuts_between_characters_and_reports_what_it_took);
    tcase_add_test(tc, test_text_printable_shows_safe_text_and_hides_the_rest_whole);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed;
    SRunner *sr = srunner_create(text_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
