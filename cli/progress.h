/* progress.h: the transfer progress display of the client commands, and
 * the global --quiet switch. Internal to cli/.
 *
 * One display per file: on a terminal a bar redrawn in place (bytes, rate,
 * ETA), erased when the transfer ends; when stderr is not a terminal (a CI
 * log) one plain line every CLI_PROGRESS_LINE_SECONDS or every 10 %,
 * whichever comes first; nothing at all when quiet. The formatting
 * functions (sizes, rates, ETAs) are pure (no clock, no I/O) so the suite can check them.
 */
#ifndef MLREG_CLI_PROGRESS_H
#define MLREG_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/** Seconds between two plain lines when stderr is not a terminal. */
#define CLI_PROGRESS_LINE_SECONDS 5
/** Milliseconds between two redraws of the bar on a terminal. */
#define CLI_PROGRESS_DRAW_MS 200

/** Sets quiet mode (--quiet, MLREG_QUIET=1): no progress, no informational
 *  lines on stderr; errors and warnings are still printed. */
void cli_quiet_set(int quiet);
/** 1 when quiet mode is on. */
int cli_quiet(void);

/** Human-readable byte count ("5.0 MiB", "12 B") into @p buf. */
void cli_format_size(char *buf, size_t buflen, uint64_t size);

/** Writes @p bytes_per_second as "85.2 MiB/s" (the units of
 *  cli_format_size) into @p buf. */
void cli_format_rate(char *buf, size_t buflen, double bytes_per_second);

/** Writes a duration as "7s", "3m05s" or "2h04m" into @p buf; a duration
 *  of 100 hours or more, or a negative one, is "--". */
void cli_format_eta(char *buf, size_t buflen, double seconds);

/**
 * Writes one plain progress line (no newline) into @p buf:
 * "model.safetensors: 40% 400.0 MiB / 1.0 GiB, 85.2 MiB/s, ETA 7s".
 * @p moved is the bytes that moved during @p elapsed seconds (the rate and
 * the ETA come from it; bytes kept from an earlier attempt are in @p done
 * but not in @p moved). With nothing moved yet, or less than half a second
 * elapsed before the end, the rate and ETA are left out; at 100 % the ETA
 * is. @p total 0 prints no percentage.
 */
void cli_progress_format_line(char *buf, size_t buflen, const char *title, uint64_t done,
                              uint64_t total, uint64_t moved, double elapsed);

/**
 * As cli_progress_format_line() for a terminal: "  TITLE  [#####.....]  40%
 * 400.0 MiB / 1.0 GiB  85.2 MiB/s  ETA 7s", the bar @p width characters.
 */
void cli_progress_format_bar(char *buf, size_t buflen, const char *title, uint64_t done,
                             uint64_t total, uint64_t moved, double elapsed, int width);

/**
 * As cli_progress_format_bar() in fewer than @p cols columns (0: no limit),
 * since a line that wraps cannot be redrawn in place: the bar shrinks
 * first (24 columns, then 8), then the title loses its start
 * ("...-00002.safetensors", 12 columns at least), and last the line is cut.
 */
void cli_progress_format_fit(char *buf, size_t buflen, const char *title, uint64_t done,
                             uint64_t total, uint64_t moved, double elapsed, unsigned cols);

/**
 * The rule of the plain lines: 1 when a line is due now, given the tenth
 * (0..10) of the transfer at the last line (@p last_tenth, -1 before the
 * first), the seconds since the last line (or since the start) and the
 * bytes done of @p total: a new tenth reached, or CLI_PROGRESS_LINE_SECONDS
 * gone by with bytes still to move.
 */
int cli_progress_line_due(int last_tenth, double since_last, uint64_t done, uint64_t total);

enum { CLI_PROGRESS_OFF, CLI_PROGRESS_TTY, CLI_PROGRESS_LINES };

/** One transfer's display; fill it with cli_progress_begin(). Not shared
 *  between threads: one thread calls update and end. */
typedef struct {
    const char *title; /* borrowed: must outlive the display */
    uint64_t total;
    int mode;
    int drawn;      /* TTY: a bar is on the screen */
    int last_tenth; /* LINES: the tenth of the last line, -1 before it */
    unsigned cols;  /* TTY: the terminal's width, 0 when unknown */
    struct timespec start, last;
} cli_progress;

/**
 * Starts a display of @p title for @p total bytes (0: unknown). The mode
 * is OFF when quiet or @p title is NULL, else TTY when stderr is a
 * terminal, else LINES. @p title is borrowed.
 */
void cli_progress_begin(cli_progress *p, const char *title, uint64_t total);

/** Sets the total once it is known (a download's Content-Length). */
void cli_progress_total(cli_progress *p, uint64_t total);

/** Shows that @p done bytes are in place, @p moved of them moved since
 *  cli_progress_begin() (the others were kept from an earlier attempt and
 *  do not count in the rate), if a redraw or a line is due. */
void cli_progress_update(cli_progress *p, uint64_t done, uint64_t moved);

/** Ends the display: erases the bar on a terminal. */
void cli_progress_end(cli_progress *p);

#endif
