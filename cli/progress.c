/* progress.c: the transfer progress display and --quiet (progress.h).
 *
 * The rate is the average since the transfer began over the bytes that
 * moved in it (not those a resumed transfer found in place), and the ETA is
 * what is left at that rate: steadier than a windowed rate on a network
 * that bursts, and right on the long uploads where an ETA matters. A CI log
 * is not a terminal: it gets whole lines, never carriage returns, at most
 * one per tenth of the file or per CLI_PROGRESS_LINE_SECONDS.
 */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define RATE_MIN_SECONDS 0.5

static int quiet;

void cli_quiet_set(int q)
{
    quiet = q != 0;
}

int cli_quiet(void)
{
    return quiet;
}

void cli_format_size(char *buf, size_t buflen, uint64_t size)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)size;
    int u = -1;

    if (size < 1024) {
        snprintf(buf, buflen, "%" PRIu64 " B", size);
        return;
    }
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(buf, buflen, "%.1f %s", v, units[u]);
}

void cli_format_rate(char *buf, size_t buflen, double bytes_per_second)
{
    char size[32];

    if (!(bytes_per_second >= 0)) bytes_per_second = 0; /* NaN too */
    if (bytes_per_second > (double)(UINT64_MAX >> 1)) bytes_per_second = (double)(UINT64_MAX >> 1);
    cli_format_size(size, sizeof(size), (uint64_t)(bytes_per_second + 0.5));
    snprintf(buf, buflen, "%s/s", size);
}

void cli_format_eta(char *buf, size_t buflen, double seconds)
{
    uint64_t s;

    if (!(seconds >= 0) || seconds >= 100.0 * 3600) {
        snprintf(buf, buflen, "--");
        return;
    }
    s = (uint64_t)(seconds + 0.5);
    if (s < 60)
        snprintf(buf, buflen, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(buf, buflen, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else
        snprintf(buf, buflen, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
}

/* The percentage (0..100, floor) of @p done in @p total; 0 for no total. */
static unsigned percent(uint64_t done, uint64_t total)
{
    if (total == 0) return 0;
    if (done >= total) return 100;
    return (unsigned)((long double)done * 100 / (long double)total);
}

/* Rate and ETA as ", 85.2 MiB/s, ETA 7s" (or with @p sep instead of ", "),
 * or "" when nothing moved yet or the transfer is younger than
 * RATE_MIN_SECONDS and not complete: its first buffers fill at memory
 * speed, and a rate of "10.5 GiB/s" then would only mislead. */
static void rate_eta(char *buf, size_t buflen, const char *sep, uint64_t done, uint64_t total,
                     uint64_t moved, double elapsed)
{
    char rate[40], eta[24];
    double r;

    buf[0] = '\0';
    if (!(elapsed > 0) || moved == 0) return;
    if (elapsed < RATE_MIN_SECONDS && (total == 0 || done < total)) return;
    r = (double)moved / elapsed;
    cli_format_rate(rate, sizeof(rate), r);
    if (total == 0 || done >= total) {
        snprintf(buf, buflen, "%s%s", sep, rate);
        return;
    }
    cli_format_eta(eta, sizeof(eta), (double)(total - done) / r);
    snprintf(buf, buflen, "%s%s%sETA %s", sep, rate, sep, eta);
}

void cli_progress_format_line(char *buf, size_t buflen, const char *title, uint64_t done,
                              uint64_t total, uint64_t moved, double elapsed)
{
    char a[32], b[32], tail[80];

    cli_format_size(a, sizeof(a), done);
    rate_eta(tail, sizeof(tail), ", ", done, total, moved, elapsed);
    if (total == 0) {
        snprintf(buf, buflen, "%s: %s%s", title, a, tail);
        return;
    }
    cli_format_size(b, sizeof(b), total);
    snprintf(buf, buflen, "%s: %u%% %s / %s%s", title, percent(done, total), a, b, tail);
}

void cli_progress_format_bar(char *buf, size_t buflen, const char *title, uint64_t done,
                             uint64_t total, uint64_t moved, double elapsed, int width)
{
    char a[32], b[32], tail[80], bar[130];
    int filled;

    if (width < 1) width = 1;
    if (width > (int)sizeof(bar) - 3) width = (int)sizeof(bar) - 3;
    cli_format_size(a, sizeof(a), done);
    rate_eta(tail, sizeof(tail), "  ", done, total, moved, elapsed);
    if (total == 0) {
        snprintf(buf, buflen, "  %s  %s%s", title, a, tail);
        return;
    }
    filled = (int)((long double)percent(done, total) * width / 100);
    bar[0] = '[';
    for (int i = 0; i < width; i++)
        bar[1 + i] = i < filled ? '#' : '.';
    bar[1 + width] = ']';
    bar[2 + width] = '\0';
    cli_format_size(b, sizeof(b), total);
    snprintf(buf, buflen, "  %s  %s %3u%%  %s / %s%s", title, bar, percent(done, total), a, b,
             tail);
}

int cli_progress_line_due(int last_tenth, double since_last, uint64_t done, uint64_t total)
{
    int tenth = total ? (int)(percent(done, total) / 10) : 0;

    if (total && tenth > 0 && tenth > last_tenth) return 1;
    return since_last >= CLI_PROGRESS_LINE_SECONDS && (total == 0 || done < total);
}

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

void cli_progress_begin(cli_progress *p, const char *title, uint64_t total)
{
    memset(p, 0, sizeof(*p));
    p->title = title;
    p->total = total;
    p->last_tenth = total ? 0 : -1;
    if (!title || quiet)
        p->mode = CLI_PROGRESS_OFF;
    else
        p->mode = isatty(STDERR_FILENO) ? CLI_PROGRESS_TTY : CLI_PROGRESS_LINES;
    if (p->mode == CLI_PROGRESS_TTY) {
        struct winsize ws;
        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) p->cols = ws.ws_col;
    }
    clock_gettime(CLOCK_MONOTONIC, &p->start);
    p->last = p->start;
}

void cli_progress_total(cli_progress *p, uint64_t total)
{
    if (p->total == total) return;
    p->total = total;
    if (p->last_tenth < 0 && total) p->last_tenth = 0;
}

/* What gives way first is the bar (24 columns, then 8), then the title
 * from its start (at least 12 columns left), and last the end of the line. */
void cli_progress_format_fit(char *buf, size_t buflen, const char *title, uint64_t done,
                             uint64_t total, uint64_t moved, double elapsed, unsigned cols)
{
    static const int widths[] = {24, 8};
    size_t tlen = strlen(title), fixed, budget;
    char shorter[256];

    for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        cli_progress_format_bar(buf, buflen, title, done, total, moved, elapsed, widths[i]);
        if (!cols || strlen(buf) < cols) return;
    }
    fixed = strlen(buf) - tlen;
    budget = fixed + 1 < cols ? cols - 1 - fixed : 0;
    if (budget < 12) budget = 12;
    if (tlen > budget && budget - 3 < sizeof(shorter) - 4) {
        snprintf(shorter, sizeof(shorter), "...%s", title + tlen - (budget - 3));
        cli_progress_format_bar(buf, buflen, shorter, done, total, moved, elapsed, 8);
    }
    if (strlen(buf) >= cols) buf[cols - 1] = '\0';
}

void cli_progress_update(cli_progress *p, uint64_t done, uint64_t moved)
{
    struct timespec now;
    char line[512];
    double elapsed, since;

    if (p->mode == CLI_PROGRESS_OFF) return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    elapsed = seconds_between(&p->start, &now);
    since = seconds_between(&p->last, &now);
    if (p->mode == CLI_PROGRESS_TTY) {
        if (p->drawn && since * 1000 < CLI_PROGRESS_DRAW_MS) return;
        if (!p->drawn && done == 0 && p->total == 0) return; /* nothing to say yet */
        cli_progress_format_fit(line, sizeof(line), p->title, done, p->total, moved, elapsed,
                                p->cols);
        fprintf(stderr, "\r\033[K%s", line);
        p->drawn = 1;
        p->last = now;
        return;
    }
    if (!cli_progress_line_due(p->last_tenth, since, done, p->total)) return;
    cli_progress_format_line(line, sizeof(line), p->title, done, p->total, moved, elapsed);
    fprintf(stderr, "%s\n", line);
    if (p->total) p->last_tenth = (int)(percent(done, p->total) / 10);
    p->last = now;
}

void cli_progress_end(cli_progress *p)
{
    if (p->mode == CLI_PROGRESS_TTY && p->drawn) fputs("\r\033[K", stderr);
    p->drawn = 0;
    p->mode = CLI_PROGRESS_OFF;
}
