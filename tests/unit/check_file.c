/* check_file.c: the atomic whole-file writer and the bounded reader (file.h). */
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

START_TEST(test_file_mkdirs_makes_private_parents_and_names_what_it_could_not_make)
{
    char deep[160], blocker[160], below[200];
    struct stat st;

    snprintf(deep, sizeof(deep), "%s/a/b/c", dir);
    ck_assert_int_eq(mlreg_file_mkdirs(deep, "blob"), 0);
    ck_assert_int_eq(stat(deep, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(mlreg_file_mkdirs(deep, "blob"), 0); /* already there */
    ck_assert_int_eq(mlreg_file_mkdirs("", "blob"), MLREG_EINVALID);

    snprintf(blocker, sizeof(blocker), "%s/plain", dir);
    ck_assert_int_eq(write_file(blocker, "x", 0600, 0), 0);
    snprintf(below, sizeof(below), "%s/sub", blocker);
    ck_assert_int_eq(mlreg_file_mkdirs(below, "metadata"), MLREG_EIO);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "create metadata directory"));
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

START_TEST(test_file_read_returns_the_whole_file_nul_terminated)
{
    char *text = NULL;
    size_t len = 0;

    ck_assert_int_eq(write_file(path_of("r.txt"), "hello", 0644, MLREG_FILE_REPLACE), 0);
    ck_assert_int_eq(mlreg_file_read(&text, &len, path_of("r.txt"), 5), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(text, "hello");
    free(text);
    ck_assert_int_eq(write_file(path_of("e.txt"), "", 0644, MLREG_FILE_REPLACE), 0);
    ck_assert_int_eq(mlreg_file_read(&text, &len, path_of("e.txt"), 0), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(text, "");
    free(text);
}
END_TEST

START_TEST(test_file_read_refuses_missing_large_and_non_regular_files)
{
    char *text = (char *)"x", msg[300];
    size_t len = 7;

    ck_assert_int_eq(mlreg_file_read(&text, &len, path_of("none"), 10), MLREG_ENOTFOUND);
    ck_assert_ptr_null(text);
    ck_assert_uint_eq(len, 0);
    snprintf(msg, sizeof(msg), "%s: missing", path_of("none"));
    ck_assert_str_eq(mlreg_error_last(), msg);

    ck_assert_int_eq(write_file(path_of("big"), "123456", 0644, MLREG_FILE_REPLACE), 0);
    ck_assert_int_eq(mlreg_file_read(&text, &len, path_of("big"), 5), MLREG_EIO);
    ck_assert_ptr_null(text);
    snprintf(msg, sizeof(msg), "%s: larger than 5 bytes", path_of("big"));
    ck_assert_str_eq(mlreg_error_last(), msg);

    ck_assert_int_eq(mlreg_file_read(&text, &len, dir, 100), MLREG_EIO);
    snprintf(msg, sizeof(msg), "%s: not a regular file", dir);
    ck_assert_str_eq(mlreg_error_last(), msg);

    /* A FIFO neither blocks the open nor is read. */
    ck_assert_int_eq(mkfifo(path_of("fifo"), 0600), 0);
    ck_assert_int_eq(mlreg_file_read(&text, &len, path_of("fifo"), 100), MLREG_EIO);
    ck_assert_ptr_null(text);
}
END_TEST

START_TEST(test_file_read_fd_names_the_file_and_leaves_the_fd_open)
{
    char *text = NULL;
    size_t len = 0;
    int fd;

    ck_assert_int_eq(write_file(path_of("f.txt"), "abc", 0644, MLREG_FILE_REPLACE), 0);
    ck_assert_int_ge(fd = open(path_of("f.txt"), O_RDONLY), 0);
    ck_assert_int_eq(mlreg_file_read_fd(&text, &len, fd, "bundle/f.txt", 2), MLREG_EIO);
    ck_assert_str_eq(mlreg_error_last(), "bundle/f.txt: larger than 2 bytes");
    ck_assert_int_eq(mlreg_file_read_fd(&text, &len, fd, "bundle/f.txt", 3), 0);
    ck_assert_str_eq(text, "abc");
    ck_assert_int_eq(fcntl(fd, F_GETFD), 0);
    close(fd);
    free(text);
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
    tcase_add_test(tc, test_file_mkdirs_makes_private_parents_and_names_what_it_could_not_make);
    tcase_add_test(tc, test_file_read_returns_the_whole_file_nul_terminated);
    tcase_add_test(tc, test_file_read_refuses_missing_large_and_non_regular_files);
    tcase_add_test(tc, test_file_read_fd_names_the_file_and_leaves_the_fd_open);
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
