/* check_json_out.c: JSON for people and clients (json_out.h): jansson's bytes,
 * reals with the fewest digits that read back the same. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/json_out.h"

/* Every flag combination the project passes to json_dumps(), and a few
 * more jansson has. */
static const size_t flag_sets[] = {
    0,
    JSON_COMPACT,
    JSON_COMPACT | JSON_SORT_KEYS,
    JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY,
    JSON_INDENT(2) | JSON_PRESERVE_ORDER,
    JSON_INDENT(2) | JSON_SORT_KEYS,
    JSON_PRESERVE_ORDER,
    JSON_SORT_KEYS,
    JSON_ENCODE_ANY,
    JSON_INDENT(4) | JSON_ENSURE_ASCII,
    JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_ENSURE_ASCII,
};
#define NFLAGS (sizeof(flag_sets) / sizeof(flag_sets[0]))

/* A document without reals but with everything else a string can hold. */
static json_t *doc_without_reals(void)
{
    char controls[33];
    json_t *doc;

    for (int c = 1; c < 32; c++)
        controls[c - 1] = (char)c;
    controls[31] = 0x7f;
    controls[32] = '\0';
    doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:[], s:{}, s:s, s:b, s:b, "
                    "s:n, s:[i, [[], {}], {s:[s, i]}], s:s}",
                    "quote\"and\\back", "a \"q\" \\ / \n\t\r\b\f end", "unicode",
                    "mod\xc3\xa8le \xe2\x82\xac \xf0\x9f\x98\x80", "controls", controls,
                    "looks like a real", "0.91200000000000003", "ends with backslash", "x\\",
                    "1.5e3", "-0.5", "max", (json_int_t)INT64_MAX, "min", (json_int_t)INT64_MIN,
                    "zero", (json_int_t)0, "empty array", "empty object", "", "", "t", 1, "f", 0,
                    "null", "nested", -7, "deep", "\"1.0\"", 42, "sl/ash", "</script>");
    ck_assert_ptr_nonnull(doc);
    return doc;
}

START_TEST(test_json_out_matches_jansson_byte_for_byte_without_reals)
{
    json_t *doc = doc_without_reals(), *arr = json_pack("[s, i, [], {}]", "\\\"", 3);
    json_t *any[] = {doc,
                     arr,
                     json_string("bare \"string\" 1.5"),
                     json_integer(-12),
                     json_true(),
                     json_null(),
                     json_object(),
                     json_array()};

    for (size_t d = 0; d < sizeof(any) / sizeof(any[0]); d++) {
        for (size_t f = 0; f < NFLAGS; f++) {
            char *want = json_dumps(any[d], flag_sets[f]);
            char *got = mlreg_json_dumps(any[d], flag_sets[f]);
            if (want == NULL)
                ck_assert_ptr_null(got); /* a scalar without JSON_ENCODE_ANY */
            else
                ck_assert_str_eq(got, want);
            free(want);
            free(got);
        }
        json_decref(any[d]);
    }
}
END_TEST

static const struct {
    double v;
    const char *text;
} reals[] = {
    {0.912, "0.912"},
    {0.1 + 0.2, "0.30000000000000004"},
    {0.1, "0.1"},
    {1e300, "1e300"},
    {5e-324, "5e-324"},
    {-0.0, "-0.0"},
    {0.0, "0.0"},
    {1.0, "1.0"},
    {100.0, "100.0"},
    {-2.5, "-2.5"},
    {1e21, "1e21"},
    {123456789012345680.0, "1.2345678901234568e17"},
    {1e16, "10000000000000000.0"},
    {1e17, "1e17"},
    {0.0001, "0.0001"},
    {0.00001, "1e-5"},
    {1.5e-7, "1.5e-7"},
    {1.0 / 3.0, "0.3333333333333333"},
    {DBL_MAX, "1.7976931348623157e308"},
    {-DBL_MIN, "-2.2250738585072014e-308"},
    {9007199254740993.0, "9007199254740992.0"},
    {1234.5, "1234.5"},
};

/* jansson's notation: exponent form or not */
static int has_exponent(const char *s)
{
    return strchr(s, 'e') != NULL;
}

START_TEST(test_json_out_writes_each_real_with_its_shortest_round_trip_text)
{
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        char buf[MLREG_JSON_REAL_MAX], want[64];
        json_t *r = json_real(reals[i].v), *doc;
        char *ours = mlreg_json_dumps(r, JSON_ENCODE_ANY);
        char *theirs = json_dumps(r, JSON_ENCODE_ANY);

        ck_assert_int_eq(mlreg_json_real_text(buf, sizeof(buf), reals[i].v),
                         (int)strlen(reals[i].text));
        ck_assert_str_eq(buf, reals[i].text);
        ck_assert_str_eq(ours, reals[i].text);
        /* same notation as jansson's "%.17g" text, and never longer */
        ck_assert_int_eq(has_exponent(ours), has_exponent(theirs));
        ck_assert_uint_le(strlen(ours), strlen(theirs));
        /* inside a document too */
        snprintf(want, sizeof(want), "{\"m\":[%s,1]}", reals[i].text);
        free(ours);
        free(theirs);
        doc = json_pack("{s:[O,i]}", "m", r, 1);
        ours = mlreg_json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        json_decref(r);
        ck_assert_str_eq(ours, want);
        free(ours);
    }
}
END_TEST

START_TEST(test_json_out_of_0_912_is_not_jansson_noise)
{
    json_t *doc = json_pack("{s:{s:f, s:f, s:i}}", "metrics", "accuracy", 0.912, "f1", 0.1 + 0.2,
                            "samples", 1000);
    char *got = mlreg_json_dumps(doc, JSON_COMPACT);
    char *raw = json_dumps(doc, JSON_COMPACT);

    ck_assert_str_eq(raw, "{\"metrics\":{\"accuracy\":0.91200000000000003,"
                          "\"f1\":0.30000000000000004,\"samples\":1000}}");
    ck_assert_str_eq(got, "{\"metrics\":{\"accuracy\":0.912,"
                          "\"f1\":0.30000000000000004,\"samples\":1000}}");
    free(got);
    free(raw);
    got = mlreg_json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(got, "{\n  \"metrics\": {\n    \"accuracy\": 0.912,\n"
                          "    \"f1\": 0.30000000000000004,\n    \"samples\": 1000\n  }\n}");
    free(got);
    json_decref(doc);
}
END_TEST

/* Strings that look like numbers, or hide quotes and backslashes before a
 * real, are left alone; only the reals change. */
START_TEST(test_json_out_changes_reals_only_never_text_inside_strings)
{
    json_t *doc = json_pack("[s, f, s, f, {s:f}, s, I]", "x\\", 0.912, "\"0.1\\\"2.5e3", 2.5,
                            "k\"1.5\\", 0.7, "-0.91200000000000003", (json_int_t)-5);

    for (size_t f = 0; f < NFLAGS; f++) {
        char *got = mlreg_json_dumps(doc, flag_sets[f]), *want = json_dumps(doc, flag_sets[f]);
        json_t *back = json_loads(got, JSON_DECODE_ANY, NULL);
        char *p;

        ck_assert_ptr_nonnull(back);
        ck_assert(json_equal(back, doc)); /* every real read back exactly */
        /* jansson's text with its three reals swapped is ours */
        while ((p = strstr(want, "0.91200000000000003")) && p[-1] != '-')
            memmove(p + 5, p + 19, strlen(p + 19) + 1);
        while ((p = strstr(want, "0.69999999999999996"))) {
            memcpy(p, "0.7", 3);
            memmove(p + 3, p + 19, strlen(p + 19) + 1);
        }
        ck_assert_str_eq(got, want);
        json_decref(back);
        free(got);
        free(want);
    }
    json_decref(doc);
}
END_TEST

START_TEST(test_json_out_nan_and_infinity_cannot_be_written)
{
    char buf[MLREG_JSON_REAL_MAX] = "x";

    /* jansson refuses them as values, so no document holds one */
    ck_assert_ptr_null(json_real(NAN));
    ck_assert_ptr_null(json_real(INFINITY));
    ck_assert_ptr_null(json_real(-INFINITY));
    ck_assert_int_eq(mlreg_json_real_text(buf, sizeof(buf), NAN), -1);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(mlreg_json_real_text(buf, sizeof(buf), -INFINITY), -1);
    ck_assert_ptr_null(mlreg_json_dumps(NULL, JSON_COMPACT));
}
END_TEST

START_TEST(test_json_out_real_text_refuses_a_buffer_too_small)
{
    char buf[8];

    ck_assert_int_eq(mlreg_json_real_text(buf, 6, 0.912), 5);
    ck_assert_int_eq(mlreg_json_real_text(buf, 5, 0.912), -1);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(mlreg_json_real_text(buf, 0, 0.912), -1);
}
END_TEST

START_TEST(test_json_out_number_text_writes_integers_reals_and_a_dash)
{
    char buf[MLREG_JSON_REAL_MAX];
    json_t *i = json_integer(INT64_MIN), *r = json_real(0.912), *s = json_string("0.5");

    ck_assert_int_eq(mlreg_json_number_text(buf, sizeof(buf), i), 20);
    ck_assert_str_eq(buf, "-9223372036854775808");
    ck_assert_int_eq(mlreg_json_number_text(buf, sizeof(buf), r), 5);
    ck_assert_str_eq(buf, "0.912");
    ck_assert_int_eq(mlreg_json_number_text(buf, sizeof(buf), s), 1);
    ck_assert_str_eq(buf, "-");
    ck_assert_int_eq(mlreg_json_number_text(buf, sizeof(buf), NULL), 1);
    ck_assert_str_eq(buf, "-");
    ck_assert_int_eq(mlreg_json_number_text(buf, 10, i), -1);
    ck_assert_str_eq(buf, "");
    json_decref(i);
    json_decref(r);
    json_decref(s);
}
END_TEST

START_TEST(test_json_out_ignores_real_precision_and_writes_files)
{
    json_t *doc = json_pack("{s:f}", "x", 0.912);
    char *got = mlreg_json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(3));
    char back[64] = {0};
    FILE *f = tmpfile();

    ck_assert_str_eq(got, "{\"x\":0.912}");
    free(got);
    got = mlreg_json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(1));
    ck_assert_str_eq(got, "{\"x\":0.912}"); /* not "0.9" */
    free(got);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(mlreg_json_dumpf(doc, f, JSON_INDENT(2)), 0);
    rewind(f);
    ck_assert_uint_eq(fread(back, 1, sizeof(back) - 1, f), 16);
    ck_assert_str_eq(back, "{\n  \"x\": 0.912\n}");
    fclose(f);
    json_decref(doc);
    doc = json_integer(1);
    ck_assert_int_eq(mlreg_json_dumpf(doc, stdout, 0), -1); /* a scalar, no JSON_ENCODE_ANY */
    json_decref(doc);
}
END_TEST

/* Significant digits of a text this module wrote. */
static int sig_digits(const char *s)
{
    char d[40];
    size_t n = 0, lead = 0;

    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') d[n++] = *s;
    while (lead < n - 1 && d[lead] == '0')
        lead++;
    while (n - 1 > lead && d[n - 1] == '0')
        n--;
    return (int)(n - lead);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure can be replayed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

/* Random bit patterns (every exponent, subnormals), random short decimals
 * (what metrics look like) and powers of two (where the doubles around are
 * spaced unevenly): each text reads back to the same double, no shorter
 * precision does, and a document of it reads back. */
START_TEST(test_json_out_reals_round_trip_with_no_shorter_text)
{
    int checked = 0;

    for (int k = 0; k < 100000; k++) {
        double v;
        char text[MLREG_JSON_REAL_MAX], shorter[48], arr[64];
        char *dumped;
        int p;

        if (k % 3 == 0) {
            uint64_t bits = rng();
            memcpy(&v, &bits, sizeof(v));
            if (!isfinite(v)) continue;
        } else if (k % 3 == 1) {
            v = ldexp(rng() % 2 ? 1.0 : -1.0, (int)(rng() % 2098) - 1074);
        } else {
            v = (double)(int64_t)(rng() % 2000000 - 1000000) / pow(10, (double)(rng() % 12));
        }
        ck_assert_int_gt(mlreg_json_real_text(text, sizeof(text), v), 0);
        ck_assert_msg(strtod(text, NULL) == v, "%s does not read back as %.17g", text, v);
        ck_assert_int_eq(!!signbit(strtod(text, NULL)), !!signbit(v));
        ck_assert(strchr(text, '.') != NULL || strchr(text, 'e') != NULL);
        p = sig_digits(text);
        ck_assert_int_le(p, 17);
        /* no shorter precision reads back: the plain loop over 1..17 the
         * module's bisection stands for finds the same count */
        for (int q = 1; q < p; q++) {
            snprintf(shorter, sizeof(shorter), "%.*e", q - 1, v);
            ck_assert_msg(strtod(shorter, NULL) != v, "%s is shorter than %s", shorter, text);
        }
        snprintf(arr, sizeof(arr), "[%s]", text);
        json_t *doc = json_pack("[f]", v);
        dumped = mlreg_json_dumps(doc, JSON_COMPACT);
        ck_assert_str_eq(dumped, arr);
        free(dumped);
        json_decref(doc);
        checked++;
    }
    ck_assert_int_gt(checked, 95000);
}
END_TEST

/* A large, deeply nested answer: every real read back, nothing else moved. */
START_TEST(test_json_out_large_and_deep_documents_read_back_exactly)
{
    json_t *big = json_object(), *deep = json_real(0.912), *back;
    char *text;

    for (int i = 0; i < 20000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "m\"%d\\", i);
        json_object_set_new(big, key, i % 3 ? json_real((double)i / 7.0) : json_integer(i));
    }
    for (int d = 0; d < 1000; d++)
        deep = json_pack("[o, f, s]", deep, 0.1 * d, "0.1");
    json_object_set_new(big, "deep", deep);
    text = mlreg_json_dumps(big, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_ptr_nonnull(text);
    back = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(back);
    ck_assert(json_equal(back, big));
    ck_assert_ptr_null(strstr(text, "0.91200000000000003"));
    json_decref(back);
    json_decref(big);
    free(text);
}
END_TEST

static Suite *json_out_suite(void)
{
    Suite *s = suite_create("json_out");
    TCase *tc = tcase_create("dumps");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_json_out_matches_jansson_byte_for_byte_without_reals);
    tcase_add_test(tc, test_json_out_writes_each_real_with_its_shortest_round_trip_text);
    tcase_add_test(tc, test_json_out_of_0_912_is_not_jansson_noise);
    tcase_add_test(tc, test_json_out_changes_reals_only_never_text_inside_strings);
    tcase_add_test(tc, test_json_out_nan_and_infinity_cannot_be_written);
    tcase_add_test(tc, test_json_out_real_text_refuses_a_buffer_too_small);
    tcase_add_test(tc, test_json_out_number_text_writes_integers_reals_and_a_dash);
    tcase_add_test(tc, test_json_out_ignores_real_precision_and_writes_files);
    tcase_add_test(tc, test_json_out_reals_round_trip_with_no_shorter_text);
    tcase_add_test(tc, test_json_out_large_and_deep_documents_read_back_exactly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed;
    SRunner *sr = srunner_create(json_out_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
