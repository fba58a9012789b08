/* check_progress.c: the transfer progress display of the client commands
 * (cli/progress.h): sizes, rates and ETAs as a user reads them, the plain
 * lines a CI log gets (every tenth or every few seconds, never more), the
 * bar of a terminal, and nothing at all in quiet mode.
 */
#include "../../cli/progress.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)

START_TEST(test_rate_is_a_size_per_second_in_binary_units)
{
    char buf[64];

    cli_format_rate(buf, sizeof(buf), 85.2 * MiB);
    ck_assert_str_eq(buf, "85.2 MiB/s");
    cli_format_rate(buf, sizeof(buf), 512);
    ck_assert_str_eq(buf, "512 B/s");
    cli_format_rate(buf, sizeof(buf), 1.5 * GiB);
    ck_assert_str_eq(buf, "1.5 GiB/s");
    cli_format_rate(buf, sizeof(buf), 0);
    ck_assert_str_eq(buf, "0 B/s");
    cli_format_rate(buf, sizeof(buf), -3); /* a clock that stepped back */
    ck_assert_str_eq(buf, "0 B/s");
}
END_TEST

START_TEST(test_eta_reads_as_seconds_minutes_or_hours)
{
    char buf[32];

    cli_format_eta(buf, sizeof(buf), 0);
    ck_assert_str_eq(buf, "0s");
    cli_format_eta(buf, sizeof(buf), 7.4);
    ck_assert_str_eq(buf, "7s");
    cli_format_eta(buf, sizeof(buf), 59.4);
    ck_assert_str_eq(buf, "59s");
    cli_format_eta(buf, sizeof(buf), 185);
    ck_assert_str_eq(buf, "3m05s");
    cli_format_eta(buf, sizeof(buf), 3600 * 2 + 4 * 60 + 10);
    ck_assert_str_eq(buf, "2h04m");
}
END_TEST

START_TEST(test_eta_that_means_nothing_is_dashes)
{
    char buf[32];

    cli_format_eta(buf, sizeof(buf), 100.0 * 3600);
    ck_assert_str_eq(buf, "--");
    cli_format_eta(buf, sizeof(buf), -1);
    ck_assert_str_eq(buf, "--");
    cli_format_eta(buf, sizeof(buf), 1e300 * 1e300); /* infinity: a rate of almost nothing */
    ck_assert_str_eq(buf, "--");
}
END_TEST

START_TEST(test_line_has_percent_bytes_rate_and_eta)
{
    char buf[256];

    /* 400 MiB of 1 GiB in 4.69 s: 85.2 MiB/s, 624 MiB left: 7 s */
    cli_progress_format_line(buf, sizeof(buf), "model.safetensors", 400 * MiB, GiB, 400 * MiB,
                             400.0 / 85.2);
    ck_assert_str_eq(buf, "model.safetensors: 39% 400.0 MiB / 1.0 GiB, 85.2 MiB/s, ETA 7s");
}
END_TEST

START_TEST(test_line_rate_counts_only_bytes_that_moved)
{
    char buf[256];

    /* half the file was kept from an earlier pull; 100 MiB moved in 10 s */
    cli_progress_format_line(buf, sizeof(buf), "w.bin", 612 * MiB, GiB, 100 * MiB, 10);
    ck_assert_str_eq(buf, "w.bin: 59% 612.0 MiB / 1.0 GiB, 10.0 MiB/s, ETA 41s");
}
END_TEST

START_TEST(test_line_without_time_or_moved_bytes_has_no_rate)
{
    char buf[256];

    cli_progress_format_line(buf, sizeof(buf), "w.bin", 0, GiB, 0, 0);
    ck_assert_str_eq(buf, "w.bin: 0% 0 B / 1.0 GiB");
    cli_progress_format_line(buf, sizeof(buf), "w.bin", 512 * MiB, GiB, 0, 3);
    ck_assert_str_eq(buf, "w.bin: 50% 512.0 MiB / 1.0 GiB");
    /* the first buffers fill at memory speed: no rate in the first half second */
    cli_progress_format_line(buf, sizeof(buf), "w.bin", 8 * MiB, GiB, 8 * MiB, 0.01);
    ck_assert_str_eq(buf, "w.bin: 0% 8.0 MiB / 1.0 GiB");
}
END_TEST

START_TEST(test_line_at_the_end_has_a_rate_and_no_eta)
{
    char buf[256];

    cli_progress_format_line(buf, sizeof(buf), "w.bin", 64 * MiB, 64 * MiB, 64 * MiB, 2);
    ck_assert_str_eq(buf, "w.bin: 100% 64.0 MiB / 64.0 MiB, 32.0 MiB/s");
    /* a whole transfer's average is right however short it was */
    cli_progress_format_line(buf, sizeof(buf), "w.bin", 64 * MiB, 64 * MiB, 64 * MiB, 0.25);
    ck_assert_str_eq(buf, "w.bin: 100% 64.0 MiB / 64.0 MiB, 256.0 MiB/s");
}
END_TEST

START_TEST(test_line_of_an_unknown_total_has_bytes_and_rate)
{
    char buf[256];

    cli_progress_format_line(buf, sizeof(buf), "w.bin", 3 * MiB, 0, 3 * MiB, 1);
    ck_assert_str_eq(buf, "w.bin: 3.0 MiB, 3.0 MiB/s");
}
END_TEST

START_TEST(test_line_never_overflows_a_small_buffer)
{
    char buf[12];

    memset(buf, 'x', sizeof(buf));
    cli_progress_format_line(buf, sizeof(buf), "a-very-long-title.safetensors", GiB / 2, GiB,
                             GiB / 2, 1);
    ck_assert_uint_eq(strlen(buf), sizeof(buf) - 1);
    ck_assert_str_eq(buf, "a-very-long");
}
END_TEST

START_TEST(test_bar_fills_with_the_percentage)
{
    char buf[256];

    cli_progress_format_bar(buf, sizeof(buf), "w.bin", GiB / 4, GiB, GiB / 4, 2, 8);
    ck_assert_str_eq(buf, "  w.bin  [##......]  25%  256.0 MiB / 1.0 GiB  128.0 MiB/s  ETA 6s");
    cli_progress_format_bar(buf, sizeof(buf), "w.bin", GiB, GiB, GiB, 8, 8);
    ck_assert_str_eq(buf, "  w.bin  [########] 100%  1.0 GiB / 1.0 GiB  128.0 MiB/s");
}
END_TEST

START_TEST(test_bar_fits_the_terminal_bar_first_then_title_then_cut)
{
    const char *title = "model-00001-of-00002.safetensors";
    char buf[256];

    /* wide enough: the full bar, as cli_progress_format_bar() draws it */
    cli_progress_format_fit(buf, sizeof(buf), title, GiB / 4, GiB, GiB / 4, 2, 200);
    ck_assert_str_eq(buf, "  model-00001-of-00002.safetensors  [######..................]  25%  "
                          "256.0 MiB / 1.0 GiB  128.0 MiB/s  ETA 6s");
    /* 100 columns: the bar shrinks to 8 */
    cli_progress_format_fit(buf, sizeof(buf), title, GiB / 4, GiB, GiB / 4, 2, 100);
    ck_assert_str_eq(buf, "  model-00001-of-00002.safetensors  [##......]  25%  256.0 MiB / 1.0 "
                          "GiB  128.0 MiB/s  ETA 6s");
    /* 80 columns: the title loses its start */
    cli_progress_format_fit(buf, sizeof(buf), title, GiB / 4, GiB, GiB / 4, 2, 80);
    ck_assert_uint_eq(strlen(buf), 79);
    ck_assert_str_eq(
        buf, "  ...002.safetensors  [##......]  25%  256.0 MiB / 1.0 GiB  128.0 MiB/s  ETA 6s");
    /* 40 columns: a 12-column title, then the line is cut */
    cli_progress_format_fit(buf, sizeof(buf), title, GiB / 4, GiB, GiB / 4, 2, 40);
    ck_assert_uint_eq(strlen(buf), 39);
    ck_assert_str_eq(buf, "  ...fetensors  [##......]  25%  256.0 ");
}
END_TEST

START_TEST(test_line_is_due_at_each_new_tenth)
{
    /* nothing before the first tenth, within the five seconds */
    ck_assert_int_eq(cli_progress_line_due(0, 1, 9 * MiB, 100 * MiB), 0);
    ck_assert_int_eq(cli_progress_line_due(0, 0, 10 * MiB, 100 * MiB), 1);
    ck_assert_int_eq(cli_progress_line_due(1, 0, 19 * MiB, 100 * MiB), 0);
    ck_assert_int_eq(cli_progress_line_due(1, 0, 35 * MiB, 100 * MiB), 1);
    ck_assert_int_eq(cli_progress_line_due(9, 0, 100 * MiB, 100 * MiB), 1);
    ck_assert_int_eq(cli_progress_line_due(10, 30, 100 * MiB, 100 * MiB), 0);
}
END_TEST

START_TEST(test_line_is_due_every_five_seconds_while_bytes_are_left)
{
    ck_assert_int_eq(cli_progress_line_due(0, CLI_PROGRESS_LINE_SECONDS - 0.01, 1, GiB), 0);
    ck_assert_int_eq(cli_progress_line_due(0, CLI_PROGRESS_LINE_SECONDS, 1, GiB), 1);
    ck_assert_int_eq(cli_progress_line_due(-1, CLI_PROGRESS_LINE_SECONDS, 5 * MiB, 0), 1);
    ck_assert_int_eq(cli_progress_line_due(-1, 1, 5 * MiB, 0), 0);
}
END_TEST

/* Runs a transfer through a display whose stderr is a file (not a
 * terminal), and returns what it wrote: 100 MiB in steps of 1 MiB (quiet or
 * not), or with @p slow a 1 GiB transfer that moves 1 MiB, then 2 MiB six
 * seconds later (the clock of the display set back), then 3 MiB at once. */
static char *run_display(int quiet, int slow)
{
    char path[] = "/tmp/check_progress.XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    cli_progress p;
    char *out = calloc(1, 65536);
    FILE *f;

    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_nonnull(out);
    fflush(stderr);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    cli_quiet_set(quiet);
    if (slow) {
        cli_progress_begin(&p, "model.safetensors", GiB);
        cli_progress_update(&p, MiB, MiB);
        p.start.tv_sec -= 6;
        p.last.tv_sec -= 6;
        cli_progress_update(&p, 2 * MiB, 2 * MiB);
        cli_progress_update(&p, 3 * MiB, 3 * MiB);
    } else {
        cli_progress_begin(&p, "model.safetensors", 100 * MiB);
        for (uint64_t done = 0; done <= 100 * MiB; done += MiB)
            cli_progress_update(&p, done, done);
    }
    cli_progress_end(&p);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    cli_quiet_set(0);
    ck_assert_ptr_nonnull(f = fopen(path, "r"));
    (void)!fread(out, 1, 65535, f);
    fclose(f);
    close(fd);
    unlink(path);
    return out;
}

START_TEST(test_log_gets_one_line_per_tenth_and_no_carriage_return)
{
    char *out = run_display(0, 0);
    int lines = 0;

    for (char *p = out; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 10);
    ck_assert_ptr_null(strchr(out, '\r'));
    ck_assert_ptr_null(strchr(out, '\033'));
    ck_assert_ptr_nonnull(strstr(out, "model.safetensors: 10% 10.0 MiB / 100.0 MiB\n"));
    ck_assert_ptr_nonnull(strstr(out, "model.safetensors: 100% 100.0 MiB / 100.0 MiB, "));
    free(out);
}
END_TEST

START_TEST(test_log_of_a_slow_transfer_gets_a_line_after_five_seconds)
{
    char *out = run_display(0, 1);
    const char *want = "model.safetensors: 0% 2.0 MiB / 1.0 GiB, ";

    /* one line: none before the five seconds, none right after the line */
    ck_assert_msg(!strncmp(out, want, strlen(want)), "got '%s'", out);
    ck_assert_ptr_nonnull(strstr(out, " KiB/s, ETA "));
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    free(out);
}
END_TEST

START_TEST(test_quiet_display_writes_nothing)
{
    char *out = run_display(1, 0);

    ck_assert_str_eq(out, "");
    free(out);
}
END_TEST

START_TEST(test_display_without_a_title_writes_nothing)
{
    cli_progress p;

    cli_progress_begin(&p, NULL, GiB);
    ck_assert_int_eq(p.mode, CLI_PROGRESS_OFF);
    cli_progress_end(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("progress");
    TCase *tc = tcase_create("format");
    TCase *td = tcase_create("display");

    tcase_add_test(tc, test_rate_is_a_size_per_second_in_binary_units);
    tcase_add_test(tc, test_eta_reads_as_seconds_minutes_or_hours);
    tcase_add_test(tc, test_eta_that_means_nothing_is_dashes);
    tcase_add_test(tc, test_line_has_percent_bytes_rate_and_eta);
    tcase_add_test(tc, test_line_rate_counts_only_bytes_that_moved);
    tcase_add_test(tc, test_line_without_time_or_moved_bytes_has_no_rate);
    tcase_add_test(tc, test_line_at_the_end_has_a_rate_and_no_eta);
    tcase_add_test(tc, test_line_of_an_unknown_total_has_bytes_and_rate);
    tcase_add_test(tc, test_line_never_overflows_a_small_buffer);
    tcase_add_test(tc, test_bar_fills_with_the_percentage);
    tcase_add_test(tc, test_bar_fits_the_terminal_bar_first_then_title_then_cut);
    tcase_add_test(tc, test_line_is_due_at_each_new_tenth);
    tcase_add_test(tc, test_line_is_due_every_five_seconds_while_bytes_are_left);
    suite_add_tcase(s, tc);
    tcase_add_test(td, test_log_gets_one_line_per_tenth_and_no_carriage_return);
    tcase_add_test(td, test_log_of_a_slow_transfer_gets_a_line_after_five_seconds);
    tcase_add_test(td, test_quiet_display_writes_nothing);
    tcase_add_test(td, test_display_without_a_title_writes_nothing);
    suite_add_tcase(s, td);
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
