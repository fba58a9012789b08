/* check_cli_ref.c: the one release reference grammar of the client
 * (cli/ref.h, cli/args.h): MODEL@VERSION, MODEL@sha256:HEX and MODEL:STAGE,
 * the hints a mistyped form gets, --at with a reference, and hostile input
 * (too long, control bytes, a path in the model name).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/ref.h"
#include "mlreg/common.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct {
    const char *in;
    int ok;            /* 1 parses, 0 MLREG_EINVALID */
    int by_stage;      /* when ok */
    const char *model; /* when ok */
    const char *word;  /* the version, the digest or the stage */
    const char *msg;   /* when not ok: a part of the message */
} ref_case;

static const ref_case cases[] = {
    {"team/clf@1.4", 1, 0, "team/clf", "1.4", NULL},
    {"clf@2024-02-09-01", 1, 0, "clf", "2024-02-09-01", NULL},
    {"team/clf@sha256:" HEX64, 1, 0, "team/clf", "sha256:" HEX64, NULL},
    {"team/clf:production", 1, 1, "team/clf", "production", NULL},
    {"a.b/c_d:dev", 1, 1, "a.b/c_d", "dev", NULL},
    /* a bare model lists the forms */
    {"team/clf", 0, 0, NULL, NULL, "MODEL@VERSION (team/clf@1.4), MODEL@sha256:HEX or MODEL:STAGE"},
    {"team/clf@", 0, 0, NULL, NULL, "nothing after '@'"},
    {"team/clf:", 0, 0, NULL, NULL, "nothing after ':'"},
    {"", 0, 0, NULL, NULL, "names no release"},
    {"Team/clf@1.4", 0, 0, NULL, NULL, "OCI repository grammar"},
    {"../etc@1.4", 0, 0, NULL, NULL, "OCI repository grammar"},
    {"team/clf@sha256:abc", 0, 0, NULL, NULL, "sha256:<64 lowercase hex>"},
    {"team/clf@sha256:" HEX64 "0", 0, 0, NULL, NULL, "sha256:<64 lowercase hex>"},
    {"team/clf@md5:" HEX64, 0, 0, NULL, NULL, "sha256:<64 lowercase hex>"},
    {"team/clf@1.4/../x", 0, 0, NULL, NULL, "version must match"},
    {"team/clf@-1", 0, 0, NULL, NULL, "version must match"},
    {"team/clf:prod uction", 0, 0, NULL, NULL, "stage must match"},
    {"team/clf:prod\x1b[31m", 0, 0, NULL, NULL, "stage must match"},
    {"team/clf:a:b", 0, 0, NULL, NULL, "stage must match"},
    {"team/clf:stage@1.4", 0, 0, NULL, NULL, "OCI repository grammar"},
};

START_TEST(test_release_ref_parse_table)
{
    const ref_case *t = &cases[_i];
    cli_release_ref r;
    int rc = cli_release_ref_parse(&r, t->in);

    if (!t->ok) {
        ck_assert_msg(rc == MLREG_EINVALID, "'%s' parsed (rc %d)", t->in, rc);
        ck_assert_msg(strstr(mlreg_error_last(), t->msg), "'%s': message '%s' lacks '%s'", t->in,
                      mlreg_error_last(), t->msg);
        return;
    }
    ck_assert_msg(rc == 0, "'%s': %s", t->in, mlreg_error_last());
    ck_assert_int_eq(r.by_stage, t->by_stage);
    ck_assert_str_eq(r.given, t->in);
    if (t->by_stage) {
        ck_assert_str_eq(r.sref.model, t->model);
        ck_assert_str_eq(r.sref.stage, t->word);
    } else {
        ck_assert_str_eq(r.ref.model, t->model);
        ck_assert_str_eq(r.ref.digest ? r.ref.digest : r.ref.version, t->word);
    }
}
END_TEST

START_TEST(test_release_ref_too_long_is_refused)
{
    char big[2048];
    cli_release_ref r;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[10] = '@';
    ck_assert_int_eq(cli_release_ref_parse(&r, big), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "too long"));
}
END_TEST

START_TEST(test_at_goes_with_a_stage_only)
{
    cli_release_ref r;

    ck_assert_int_eq(cli_release_ref_parse(&r, "team/clf@1.4"), 0);
    ck_assert_int_eq(cli_release_ref_at(&r, "2026-11-26T10:00:00Z"), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "--at goes with MODEL:STAGE"));
    ck_assert_ptr_null(r.at);

    ck_assert_int_eq(cli_release_ref_parse(&r, "team/clf:production"), 0);
    ck_assert_int_eq(cli_release_ref_at(&r, "yesterday"), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "RFC 3339"));
    ck_assert_int_eq(cli_release_ref_at(&r, "2026-11-26T12:00:00+02:00"), 0);
    ck_assert_str_eq(r.at, "2026-11-26T10:00:00Z");
    ck_assert_int_eq(cli_release_ref_at(&r, "2026-11-26T10:00:00.5Z"), 0);
    ck_assert_str_eq(r.at, "2026-11-26T10:00:00.5Z");
}
END_TEST

START_TEST(test_stage_ref_parse_hints_the_stage_form)
{
    cli_stage_ref s;

    ck_assert_int_eq(cli_stage_ref_parse(&s, "team/clf@production"), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "did you mean team/clf:production?"));
    ck_assert_int_eq(cli_stage_ref_parse(&s, "team/clf"), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "expected MODEL:STAGE"));
    ck_assert_int_eq(cli_stage_ref_parse(&s, "team/clf:staging"), 0);
    ck_assert_str_eq(s.stage, "staging");
}
END_TEST

START_TEST(test_hint_without_a_registry_changes_nothing)
{
    cli_release_ref r;

    ck_assert_int_eq(cli_release_ref_parse(&r, "team/clf@production"), 0);
    mlreg_error_set(MLREG_ENOTFOUND, "no such release");
    ck_assert_int_eq(cli_release_ref_hint(MLREG_ENOTFOUND, NULL, &r), MLREG_ENOTFOUND);
    ck_assert_str_eq(mlreg_error_last(), "no such release");
    ck_assert_int_eq(cli_release_ref_hint(0, NULL, &r), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cli_ref");
    TCase *tc = tcase_create("parse");

    tcase_add_loop_test(tc, test_release_ref_parse_table, 0,
                        (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, test_release_ref_too_long_is_refused);
    tcase_add_test(tc, test_at_goes_with_a_stage_only);
    tcase_add_test(tc, test_stage_ref_parse_hints_the_stage_form);
    tcase_add_test(tc, test_hint_without_a_registry_changes_nothing);
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
