/* check_imagetag.c: the image reference REPO:VERSION-GITSHA7 of a release. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/imagetag.h"

#define SHA "0123456789abcdef0123456789abcdef01234567"

static void expect_repo_ok(const char *repo)
{
    ck_assert_msg(mlreg_image_repo_validate(repo) == 0, "'%s' should be valid: %s", repo,
                  mlreg_error_last());
}

static void expect_repo_bad(const char *repo)
{
    ck_assert_msg(mlreg_image_repo_validate(repo) == MLREG_EINVALID, "'%s' should be invalid",
                  repo);
    ck_assert_str_ne(mlreg_error_last(), "");
}

START_TEST(test_image_ref_is_repo_version_and_seven_hex_of_the_sha)
{
    char out[MLREG_IMAGE_REF_BUFSIZE];

    ck_assert_int_eq(mlreg_image_ref_derive(out, sizeof(out),
                                            "registry.example.com:5000/vision/clf", "2024-02-09-01",
                                            SHA),
                     0);
    ck_assert_str_eq(out, "registry.example.com:5000/vision/clf:2024-02-09-01-0123456");
    ck_assert_int_eq(mlreg_image_ref_derive(out, sizeof(out), "clf", "1.0.0", "abcdef1"), 0);
    ck_assert_str_eq(out, "clf:1.0.0-abcdef1");
}
END_TEST

START_TEST(test_image_repo_accepts_paths_and_registry_hosts)
{
    expect_repo_ok("clf");
    expect_repo_ok("team/clf");
    expect_repo_ok("localhost/clf");
    expect_repo_ok("localhost:5000/team/clf");
    expect_repo_ok("127.0.0.1:5000/clf");
    expect_repo_ok("ghcr.io/org/app");
    expect_repo_ok("a-b.example/x__y/z-1.2");
}
END_TEST

START_TEST(test_image_repo_rejects_uppercase_paths_tags_and_bad_hosts)
{
    expect_repo_bad("");
    expect_repo_bad("Team/clf");            /* path is lowercase only */
    expect_repo_bad("clf:latest");          /* REPO, not REPO:TAG */
    expect_repo_bad("ghcr.io/");            /* empty path */
    expect_repo_bad("-bad.example/clf");    /* label starts with '-' */
    expect_repo_bad("bad-.example/clf");    /* label ends with '-' */
    expect_repo_bad("host..example/clf");   /* empty label */
    expect_repo_bad("localhost:0/clf");     /* port out of range */
    expect_repo_bad("localhost:65536/clf"); /* port out of range */
    expect_repo_bad("localhost:/clf");      /* empty port */
    expect_repo_bad("localhost:50a/clf");   /* non-digit port */
    expect_repo_bad("[::1]:5000/clf");      /* bracketed IPv6 not supported */
    expect_repo_bad("team//clf");           /* empty component */
    expect_repo_bad("team/clf/");           /* trailing slash */
    expect_repo_bad("team/cl f");           /* space */
    expect_repo_bad("team/clf@sha256:00");  /* digest part */
}
END_TEST

START_TEST(test_image_repo_of_255_bytes_is_accepted_and_256_rejected)
{
    char repo[300];

    memset(repo, 'a', 255);
    repo[255] = '\0';
    expect_repo_ok(repo);
    memset(repo, 'a', 256);
    repo[256] = '\0';
    expect_repo_bad(repo);
}
END_TEST

START_TEST(test_image_tag_rejects_a_short_uppercase_or_missing_sha)
{
    char out[MLREG_IMAGE_TAG_MAX + 1];

    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "1.0", "abcdef"), MLREG_EINVALID);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "1.0", "ABCDEF12"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "1.0", "abcdefg"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "1.0", NULL), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "1.0", ""), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "1.0", SHA SHA),
                     MLREG_EINVALID); /* 80 > 64 */
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "1.0", SHA), 0);
    ck_assert_str_eq(out, "1.0-0123456");
}
END_TEST

START_TEST(test_image_tag_rejects_a_version_that_is_not_a_tag)
{
    char out[MLREG_IMAGE_TAG_MAX + 1];

    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), ".1", SHA), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "", SHA), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "a/b", SHA), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), NULL, SHA), MLREG_EINVALID);
}
END_TEST

START_TEST(test_image_tag_of_128_characters_is_accepted_and_129_rejected)
{
    char version[130], out[MLREG_IMAGE_TAG_MAX + 1];

    memset(version, 'v', 120); /* 120 + "-" + 7 = 128 */
    version[120] = '\0';
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), version, SHA), 0);
    ck_assert_uint_eq(strlen(out), 128);
    version[120] = 'v';
    version[121] = '\0';
    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), version, SHA), MLREG_EINVALID);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "128"));
}
END_TEST

START_TEST(test_image_tag_reports_a_buffer_too_small_instead_of_truncating)
{
    char out[8];

    ck_assert_int_eq(mlreg_image_tag_derive(out, sizeof(out), "1.0", SHA), MLREG_EINVALID);
    ck_assert_str_eq(out, "");
}
END_TEST

static Suite *imagetag_suite(void)
{
    Suite *s = suite_create("imagetag");
    TCase *tc = tcase_create("derive");

    tcase_add_test(tc, test_image_ref_is_repo_version_and_seven_hex_of_the_sha);
    tcase_add_test(tc, test_image_repo_accepts_paths_and_registry_hosts);
    tcase_add_test(tc, test_image_repo_rejects_uppercase_paths_tags_and_bad_hosts);
    tcase_add_test(tc, test_image_repo_of_255_bytes_is_accepted_and_256_rejected);
    tcase_add_test(tc, test_image_tag_rejects_a_short_uppercase_or_missing_sha);
    tcase_add_test(tc, test_image_tag_rejects_a_version_that_is_not_a_tag);
    tcase_add_test(tc, test_image_tag_of_128_characters_is_accepted_and_129_rejected);
    tcase_add_test(tc, test_image_tag_reports_a_buffer_too_small_instead_of_truncating);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(imagetag_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
