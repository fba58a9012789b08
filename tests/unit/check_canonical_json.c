/* check_canonical_json.c: the canonical text of JSON values: key order,
 * escaping, unicode, numbers, nesting, and the audit leaves of
 * tests/vectors/checkpoint/vectors.json, which are canonical already.
 *
 * Vector files are found under $MLREG_ROOT (tests/run.sh sets it) or ".".
 */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/canonical_json.h"
#include "mlreg/common.h"

/* Canonical text of the JSON @p in (parsed by jansson), checked against
 * @p want of @p want_len bytes, and read back to an equal value. */
static void expect_len(const char *in, const char *want, size_t want_len)
{
    json_error_t jerr;
    json_t *v = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    json_t *back;
    char *out = NULL;
    size_t len = 0;

    ck_assert_msg(v != NULL, "%s: %s", in, jerr.text);
    ck_assert_int_eq(mlreg_canonical_json(&out, &len, v), 0);
    ck_assert_msg(len == want_len && memcmp(out, want, len) == 0, "got %s, want %s", out, want);
    back = json_loadb(out, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(back != NULL, "output does not parse: %s", jerr.text);
    ck_assert(json_equal(v, back));
    json_decref(back);
    json_decref(v);
    free(out);
}

static void expect(const char *in, const char *want)
{
    expect_len(in, want, strlen(want));
}

START_TEST(test_canonical_json_sorts_keys_at_every_level_and_drops_whitespace)
{
    expect("{ \"b\" : 1,\n \"a\": {\"d\": [3, {\"z\": null, \"y\": true}], \"c\": false} }",
           "{\"a\":{\"c\":false,\"d\":[3,{\"y\":true,\"z\":null}]},\"b\":1}");
    expect("[ ]", "[]");
    expect("{ }", "{}");
    expect("\"\"", "\"\"");
    expect("[[[]],{}]", "[[[]],{}]");
}
END_TEST

START_TEST(test_canonical_json_orders_keys_by_utf8_bytes)
{
    expect("{\"\\u00e9\":1,\"aa\":2,\"a\":3,\"B\":4,\"\":5,\"\\ud83d\\ude00\":6,\"\\uffff\":7}",
           "{\"\":5,\"B\":4,\"a\":3,\"aa\":2,\"\xc3\xa9\":1,\"\xef\xbf\xbf\":7,"
           "\"\xf0\x9f\x98\x80\":6}");
}
END_TEST

START_TEST(test_canonical_json_escapes_only_quote_backslash_and_control_characters)
{
    expect("\"\\u0000\\u0001\\b\\t\\n\\f\\r\\u001f\\\"\\\\\\/\\u007f x\"",
           "\"\\u0000\\u0001\\b\\t\\n\\f\\r\\u001f\\\"\\\\/\x7f x\"");
    expect("\"\\u001F\\u000b\"", "\"\\u001f\\u000b\"");
}
END_TEST

START_TEST(test_canonical_json_writes_non_ascii_as_raw_utf8)
{
    expect("\"caf\\u00e9 \\ud83d\\ude00 \\u2028\"",
           "\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8\"");
    expect("\"caf\xc3\xa9\"", "\"caf\xc3\xa9\"");
}
END_TEST

START_TEST(test_canonical_json_keys_with_nul_bytes_sort_after_their_prefix)
{
    json_t *o = json_object();
    char *out = NULL;
    size_t len = 0;
    const char want[] = "{\"a\":1,\"a\\u0000b\":2}";

    ck_assert_int_eq(json_object_setn_new(o, "a\0b", 3, json_integer(2)), 0);
    ck_assert_int_eq(json_object_set_new(o, "a", json_integer(1)), 0);
    ck_assert_int_eq(mlreg_canonical_json(&out, &len, o), 0);
    ck_assert_uint_eq(len, sizeof(want) - 1);
    ck_assert_str_eq(out, want);
    free(out);
    json_decref(o);
}
END_TEST

START_TEST(test_canonical_json_writes_integers_in_plain_decimal_and_refuses_reals)
{
    json_t *v = json_pack("{s:I,s:I,s:i}", "max", (json_int_t)INT64_MAX, "min",
                          (json_int_t)INT64_MIN, "zero", 0);
    json_t *r = json_pack("{s:[i,f]}", "x", 1, 1.5);
    char *out = NULL;

    ck_assert_int_eq(mlreg_canonical_json(&out, NULL, v), 0);
    ck_assert_str_eq(out, "{\"max\":9223372036854775807,\"min\":-9223372036854775808,\"zero\":0}");
    free(out);
    out = NULL;
    ck_assert_int_eq(mlreg_canonical_json(&out, NULL, r), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "canonical json: real numbers are not allowed");
    ck_assert_ptr_null(out);
    expect("-0", "0");
    json_decref(v);
    json_decref(r);
}
END_TEST

START_TEST(test_canonical_json_refuses_invalid_utf8_and_no_value)
{
    json_t *bad = json_stringn_nocheck("\xc0\xaf", 2);
    json_t *surrogate = json_stringn_nocheck("\xed\xa0\x80", 3);
    json_t *o = json_object();
    char *out = NULL;

    ck_assert_int_eq(mlreg_canonical_json(&out, NULL, bad), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_canonical_json(&out, NULL, surrogate), MLREG_EINVALID);
    ck_assert_int_eq(json_object_set_new_nocheck(o, "\xff", json_null()), 0);
    ck_assert_int_eq(mlreg_canonical_json(&out, NULL, o), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_canonical_json(&out, NULL, NULL), MLREG_EINVALID);
    ck_assert_ptr_null(out);
    json_decref(bad);
    json_decref(surrogate);
    json_decref(o);
}
END_TEST

START_TEST(test_canonical_json_refuses_nesting_deeper_than_the_limit)
{
    json_t *v = json_integer(1);
    char *out = NULL;

    for (int i = 0; i < MLREG_CANONICAL_JSON_DEPTH_MAX; i++) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    ck_assert_int_eq(mlreg_canonical_json(&out, NULL, v), 0);
    ck_assert_uint_eq(strspn(out, "["), MLREG_CANONICAL_JSON_DEPTH_MAX);
    free(out);
    out = NULL;
    {
        json_t *o = json_object();
        json_object_set_new(o, "k", v);
        ck_assert_int_eq(mlreg_canonical_json(&out, NULL, o), MLREG_EINVALID);
        ck_assert_ptr_null(out);
        json_decref(o);
    }
}
END_TEST

START_TEST(test_canonical_json_leaves_the_vector_audit_entries_byte_for_byte)
{
    char path[4096];
    const char *base = getenv("MLREG_ROOT");
    json_error_t jerr;
    json_t *vec, *leaves, *leaf;
    size_t i;

    snprintf(path, sizeof(path), "%s/tests/vectors/checkpoint/vectors.json", base ? base : ".");
    vec = json_load_file(path, 0, &jerr);
    ck_assert_msg(vec != NULL, "%s: %s", path, jerr.text);
    leaves = json_object_get(vec, "leaves_utf8");
    ck_assert_uint_eq(json_array_size(leaves), 5);
    json_array_foreach(leaves, i, leaf)
    {
        expect(json_string_value(leaf), json_string_value(leaf));
    }
    json_decref(vec);
}
END_TEST

static Suite *canonical_json_suite(void)
{
    Suite *s = suite_create("canonical_json");
    TCase *t = tcase_create("text");

    tcase_add_test(t, test_canonical_json_sorts_keys_at_every_level_and_drops_whitespace);
    tcase_add_test(t, test_canonical_json_orders_keys_by_utf8_bytes);
    tcase_add_test(t, test_canonical_json_escapes_only_quote_backslash_and_control_characters);
    tcase_add_test(t, test_canonical_json_writes_non_ascii_as_raw_utf8);
    tcase_add_test(t, test_canonical_json_keys_with_nul_bytes_sort_after_their_prefix);
    tcase_add_test(t, test_canonical_json_writes_integers_in_plain_decimal_and_refuses_reals);
    tcase_add_test(t, test_canonical_json_refuses_invalid_utf8_and_no_value);
    tcase_add_test(t, test_canonical_json_refuses_nesting_deeper_than_the_limit);
    tcase_add_test(t, test_canonical_json_leaves_the_vector_audit_entries_byte_for_byte);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(canonical_json_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
