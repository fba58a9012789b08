/* check_safepath.c: reaching a release file below a directory one segment
 * at a time (cli/safepath.h): symbolic links and files in the way at each
 * depth are found and named, never followed; "." and ".." are refused
 * before anything is touched; --force replaces a link or file, never a
 * directory; pruning removes only empty directories, never the top one.
 */
#include "../../cli/safepath.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "mlreg/common.h"

static char dir[256], outside[256];
static int dfd = -1;

static void setup(void)
{
    th_tmpdir(dir, sizeof(dir), "safepath");
    th_tmpdir(outside, sizeof(outside), "safepath_outside");
    ck_assert_int_ge(dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), 0);
}

static void teardown(void)
{
    close(dfd);
    th_rm_rf(dir);
    th_rm_rf(outside);
}

static void mk(const char *rel)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    ck_assert_int_eq(mkdir(path, 0755), 0);
}

static void put(const char *base, const char *rel)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", base, rel);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs("x", f);
    fclose(f);
}

static void link_out(const char *rel)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    ck_assert_int_eq(symlink(outside, path), 0);
}

static int exists(const char *base, const char *rel)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", base, rel);
    return lstat(path, &st) == 0;
}

static int outside_empty(void)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", outside);
    return system(cmd) == 0;
}

START_TEST(test_parent_opens_existing_directories_and_points_at_the_leaf)
{
    int fd;
    const char *leaf;
    struct stat st;

    mk("a");
    mk("a/b");
    put(dir, "a/b/c.json");
    ck_assert_int_eq(cli_safepath_parent(&fd, &leaf, NULL, dfd, "a/b/c.json", 0, NULL), 0);
    ck_assert_str_eq(leaf, "c.json");
    ck_assert_int_eq(fstatat(fd, leaf, &st, AT_SYMLINK_NOFOLLOW), 0);
    ck_assert(S_ISREG(st.st_mode));
    close(fd);
    ck_assert_int_eq(cli_safepath_parent(&fd, &leaf, NULL, dfd, "top.bin", 0, NULL), 0);
    ck_assert_str_eq(leaf, "top.bin");
    close(fd);
}
END_TEST

START_TEST(test_parent_without_create_says_a_missing_directory_is_not_found)
{
    int fd = 5;
    const char *leaf;

    ck_assert_int_eq(cli_safepath_parent(&fd, &leaf, NULL, dfd, "a/b/c.json", 0, NULL),
                     MLREG_ENOTFOUND);
    ck_assert_int_eq(fd, -1);
    ck_assert(!exists(dir, "a"));
}
END_TEST

START_TEST(test_parent_with_create_makes_each_segment_and_records_it)
{
    int fd;
    const char *leaf;
    cli_safepath_made made = {0};

    mk("a");
    ck_assert_int_eq(
        cli_safepath_parent(&fd, &leaf, NULL, dfd, "a/b/c/d.json", CLI_SAFEPATH_CREATE, &made), 0);
    close(fd);
    ck_assert(exists(dir, "a/b/c"));
    ck_assert_uint_eq(made.n, 2);
    ck_assert_str_eq(made.dirs[0], "a/b");
    ck_assert_str_eq(made.dirs[1], "a/b/c");
    cli_safepath_made_undo(dfd, &made);
    ck_assert(!exists(dir, "a/b"));
    ck_assert(exists(dir, "a")); /* not made by us: stays */
    ck_assert_uint_eq(made.n, 0);
}
END_TEST

START_TEST(test_a_symbolic_link_in_the_way_at_each_depth_is_refused_and_not_followed)
{
    static const char *const titles[] = {"a/x.json", "a/b/x.json", "a/b/c/x.json"};
    static const char *const links[] = {"a", "a/b", "a/b/c"};

    for (size_t depth = 0; depth < 3; depth++) {
        int fd = 7;
        const char *leaf;
        size_t way = 0;
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s/a'", dir);
        ck_assert_int_eq(system(cmd), 0);
        for (size_t k = 0; k < depth; k++)
            mk(links[k]);
        link_out(links[depth]);
        for (int flags = 0; flags <= CLI_SAFEPATH_CREATE; flags += CLI_SAFEPATH_CREATE) {
            ck_assert_int_eq(cli_safepath_parent(&fd, &leaf, &way, dfd, titles[depth], flags, NULL),
                             MLREG_EDENIED);
            ck_assert_int_eq(fd, -1);
            ck_assert_uint_eq(way, strlen(links[depth]));
            ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "symbolic link"));
            ck_assert_ptr_nonnull(strstr(mlreg_error_last(), links[depth]));
        }
        ck_assert(outside_empty());
    }
}
END_TEST

START_TEST(test_a_file_in_the_way_is_refused_naming_it)
{
    int fd;
    const char *leaf;
    size_t way = 0;

    mk("a");
    put(dir, "a/tokenizer");
    ck_assert_int_eq(cli_safepath_parent(&fd, &leaf, &way, dfd, "a/tokenizer/vocab.json",
                                         CLI_SAFEPATH_CREATE, NULL),
                     MLREG_EDENIED);
    ck_assert_uint_eq(way, strlen("a/tokenizer"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "a/tokenizer is a file"));
    ck_assert(exists(dir, "a/tokenizer"));
}
END_TEST

START_TEST(test_force_replaces_a_link_or_file_never_a_directory_and_never_follows)
{
    int fd;
    const char *leaf;
    struct stat st;
    char path[512];
    cli_safepath_made made = {0};

    link_out("tokenizer");
    put(outside, "keep");
    put(dir, "cfg");
    ck_assert_int_eq(cli_safepath_parent(&fd, &leaf, NULL, dfd, "tokenizer/vocab.json",
                                         CLI_SAFEPATH_CREATE | CLI_SAFEPATH_FORCE, &made),
                     0);
    close(fd);
    snprintf(path, sizeof(path), "%s/tokenizer", dir);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert(exists(outside, "keep"));
    ck_assert_int_eq(cli_safepath_parent(&fd, &leaf, NULL, dfd, "cfg/x.json",
                                         CLI_SAFEPATH_CREATE | CLI_SAFEPATH_FORCE, &made),
                     0);
    close(fd);
    ck_assert_uint_eq(made.n, 2);
    /* a real directory in the way of nothing: opened, its files kept */
    put(dir, "tokenizer/user.txt");
    ck_assert_int_eq(cli_safepath_parent(&fd, &leaf, NULL, dfd, "tokenizer/vocab.json",
                                         CLI_SAFEPATH_CREATE | CLI_SAFEPATH_FORCE, &made),
                     0);
    close(fd);
    ck_assert(exists(dir, "tokenizer/user.txt"));
    /* FORCE alone creates nothing and replaces nothing */
    link_out("other");
    ck_assert_int_eq(
        cli_safepath_parent(&fd, &leaf, NULL, dfd, "other/x.json", CLI_SAFEPATH_FORCE, NULL),
        MLREG_EDENIED);
    cli_safepath_made_free(&made);
}
END_TEST

START_TEST(test_dot_and_dotdot_segments_are_refused_before_anything_is_touched)
{
    static const char *const bad[] = {"..",    "../x", "a/../x", "a/..", ".", "./x",
                                      "a/./x", "a//x", "/x",     "a/",   "",  "a/b/../../x"};
    int fd;
    const char *leaf;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(
            cli_safepath_parent(&fd, &leaf, NULL, dfd, bad[i], CLI_SAFEPATH_CREATE, NULL),
            MLREG_EINVALID);
        ck_assert_int_eq(fd, -1);
    }
    ck_assert(!exists(dir, "a"));
    ck_assert_int_eq(cli_safepath_prune(dfd, ".."), 0);
    ck_assert_int_eq(cli_safepath_prune(dfd, "a/.."), 0);
}
END_TEST

START_TEST(test_prune_removes_empty_parents_only_up_to_the_top_and_keeps_the_message)
{
    mk("a");
    mk("a/b");
    mk("a/b/c");
    put(dir, "a/user.txt");
    mlreg_error_set(MLREG_EIO, "the failure");
    ck_assert_int_eq(cli_safepath_prune(dfd, "a/b/c"), 2);
    ck_assert_str_eq(mlreg_error_last(), "the failure");
    ck_assert(!exists(dir, "a/b"));
    ck_assert(exists(dir, "a/user.txt"));
    /* a single empty directory: removed, never the top directory itself */
    mk("solo");
    ck_assert_int_eq(cli_safepath_prune(dfd, "solo"), 1);
    ck_assert_int_eq(access(dir, F_OK), 0);
    /* a link where a directory was: not followed, nothing removed */
    link_out("l");
    char path[512];
    snprintf(path, sizeof(path), "%s/sub", outside);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_assert_int_eq(cli_safepath_prune(dfd, "l/sub"), 0);
    ck_assert(exists(outside, "sub"));
}
END_TEST

START_TEST(test_open_regular_opens_a_file_and_refuses_a_fifo_or_link_without_blocking)
{
    int fd;
    char path[512];

    put(dir, "f.bin");
    ck_assert_int_ge(fd = cli_safepath_open_regular(dfd, "f.bin"), 0);
    ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0); /* blocking again */
    close(fd);
    /* a FIFO swapped in: opening it for reading would block without O_NONBLOCK */
    snprintf(path, sizeof(path), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(cli_safepath_open_regular(dfd, "fifo"), -1);
    ck_assert_int_eq(errno, EINVAL);
    link_out("lnk");
    ck_assert_int_eq(cli_safepath_open_regular(dfd, "lnk"), -1);
    ck_assert_int_eq(errno, ELOOP);
    ck_assert_int_eq(cli_safepath_open_regular(dfd, "missing"), -1);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

static Suite *safepath_suite(void)
{
    Suite *s = suite_create("safepath");
    TCase *tc = tcase_create("safepath");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_parent_opens_existing_directories_and_points_at_the_leaf);
    tcase_add_test(tc, test_parent_without_create_says_a_missing_directory_is_not_found);
    tcase_add_test(tc, test_parent_with_create_makes_each_segment_and_records_it);
    tcase_add_test(tc, test_a_symbolic_link_in_the_way_at_each_depth_is_refused_and_not_followed);
    tcase_add_test(tc, test_a_file_in_the_way_is_refused_naming_it);
    tcase_add_test(tc, test_force_replaces_a_link_or_file_never_a_directory_and_never_follows);
    tcase_add_test(tc, test_dot_and_dotdot_segments_are_refused_before_anything_is_touched);
    tcase_add_test(tc, test_prune_removes_empty_parents_only_up_to_the_top_and_keeps_the_message);
    tcase_add_test(tc, test_open_regular_opens_a_file_and_refuses_a_fifo_or_link_without_blocking);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(safepath_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
