/* check_file.c: the atomic whole-file writer (file.h). */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/common.h"
#include "mlreg/file.h"

#include "helpers.h"

static char dir[64];

static const char *path_of(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];

    snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
    return p;
}

static void setup(void)
{
    th_tmpdir(dir, sizeof(dir), "file");
}

static void teardown(void)
{
    th_rm_rf(dir);
}

static void expect_content(const char *path, const char *want)
{
    char buf[256];
    FILE *fp = fopen(path, "r");
    size_t n;

    ck_assert_ptr_nonnull(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    ck_assert_str_eq(buf, want);
}

/* Entries of the test directory, temp files included. */
static int entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static int write_file(const char *path, const char *text, mode_t mode, int flags)
{
    mlreg_file *f = NULL;
    int error;

    if ((error = mlreg_file_open(&f, path, mode, flags)) < 0) return error;
    if ((error = mlreg_file_write(f, text, strlen(text))) < 0) {
        mlreg_file_abort(f);
        return error;
    }
    return mlreg_file_commit(f);
}

START_TEST(test_file_commit_writes_the_whole_file_and_leaves_no_temp_file)
{
    mlreg_file *f = NULL;

    ck_assert_int_eq(mlreg_file_open(&f, path_of("a.txt"), 0644, MLREG_FILE_REPLACE), 0);
    ck_assert_int_eq(mlreg_file_write(f, "hello ", 6), 0);
    /* nothing under the final name before the commit */
    ck_assert_int_eq(access(path_of("a.txt"), F_OK), -1);
    ck_assert_int_eq(mlreg_file_write(f, "world", 5), 0);
    ck_assert_int_eq(mlreg_file_commit(f), 0);
    expect_content(path_of("a.txt"), "hello world");
    ck_assert_int_eq(entries(), 1);
}
END_TEST

START_TEST(test_file_replace_swaps_the_old_content_for_the_new)
{
    ck_assert_int_eq(write_file(path_of("a.txt"), "old", 0644, MLREG_FILE_REPLACE), 0);
    ck_assert_int_eq(write_file(path_of("a.txt"), "new", 0644, MLREG_FILE_REPLACE), 0);
    expect_content(path_of("a.txt"), "new");
    ck_assert_int_eq(entries(), 1);
}
END_TEST

START_TEST(test_file_noreplace_refuses_an_existing_file_or_symlink_and_keeps_it)
{
    struct stat st;
    mlreg_file *f = NULL;

    ck_assert_int_eq(write_file(path_of("k"), "first", 0600, MLREG_FILE_NOREPLACE), 0);
    ck_assert_int_eq(write_file(path_of("k"), "second", 0600, MLREG_FILE_NOREPLACE), MLREG_EEXISTS);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "already exists"));
    expect_content(path_of("k"), "first");
    ck_assert_int_eq(symlink(path_of("victim"), path_of("link")), 0);
    ck_assert_int_eq(write_file(path_of("link"), "x", 0600, MLREG_FILE_NOREPLACE), MLREG_EEXISTS);
    ck_assert_int_eq(access(path_of("victim"), F_OK), -1);
    ck_assert_int_eq(lstat(path_of("link"), &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    /* a path that appears between open and commit is not replaced either */
    ck_assert_int_eq(mlreg_file_open(&f, path_of("race"), 0600, MLREG_FILE_NOREPLACE), 0);
    ck_assert_int_eq(mlreg_file_write(f, "mine", 4), 0);
    ck_assert_int_eq(write_file(path_of("race"), "theirs", 0600, MLREG_FILE_NOREPLACE), 0);
    ck_assert_int_eq(mlreg_file_commit(f), MLREG_EEXISTS);
    expect_content(path_of("race"), "theirs");
    ck_assert_int_eq(entries(), 3); /* k, link, race: no temp file */
}
END_TEST

START_TEST(test_file_gets_the_mode_asked_for)
{
    struct stat st;
    mode_t old = umask(022);

    ck_assert_int_eq(write_file(path_of("s"), "x", 0600, MLREG_FILE_NOREPLACE), 0);
    ck_assert_int_eq(stat(path_of("s"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(write_file(path_of("p"), "x", 0644, MLREG_FILE_REPLACE), 0);
    ck_assert_int_eq(stat(path_of("p"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0644);
    umask(old);
}
END_TEST

START_TEST(test_file_in_a_missing_directory_is_enotfound_naming_the_path)
{
    mlreg_file *f = NULL;

    ck_assert_int_eq(mlreg_file_open(&f, path_of("no/such/x"), 0600, MLREG_FILE_REPLACE),
                     MLREG_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "cannot create"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "no/such/x"));
    ck_assert_ptr_null(strstr(mlreg_error_last(), ".tmp."));
}
END_TEST

START_TEST(test_file_abort_leaves_nothing_behind)
{
    mlreg_file *f = NULL;

    ck_assert_int_eq(mlreg_file_open(&f, path_of("a"), 0600, MLREG_FILE_REPLACE), 0);
    ck_assert_int_eq(mlreg_file_write(f, "partial", 7), 0);
    ck_assert_int_eq(entries(), 1); /* the temp file */
    mlreg_file_abort(f);
    ck_assert_int_eq(entries(), 0);
    mlreg_file_abort(NULL);
}
END_TEST

static Suite *file_suite(void)
{
    Suite *s = suite_create("file");
    TCase *tc = tcase_create("atomic");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_file_commit_writes_the_whole_file_and_leaves_no_temp_file);
    tcase_add_test(tc, test_file_replace_swaps_the_old_content_for_the_new);
    tcase_add_test(tc, test_file_noreplace_refuses_an_existing_file_or_symlink_and_keeps_it);
    tcase_add_test(tc, test_file_gets_the_mode_asked_for);
    tcase_add_test(tc, test_file_in_a_missing_directory_is_enotfound_naming_the_path);
    tcase_add_test(tc, test_file_abort_leaves_nothing_behind);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(file_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
