/**
 * @file time.h
 * @brief The one RFC 3339 parser and formatter of mlreg, and the process clock.
 *
 * Every time mlreg reads (manifest `created`, `?at=` queries, signature
 * attach times, revocation times, `mlreg resolve --at`, `mlreg audit log
 * --since`) goes through mlreg_time_parse(), so the server, the library and
 * the CLI accept exactly the same texts. The rule is RFC 3339 section 5.6,
 * strictly (a manifest's `created`, written by any OCI tool, is read with
 * two allowances: see mlreg_time_parse_flags()):
 *
 * - `YYYY-MM-DD` `T` `HH:MM:SS`, then an optional fraction of 1 to 9 digits
 *   (nanoseconds are all a time can hold here; more digits are refused
 *   rather than silently dropped), then `Z` or `+HH:MM` / `-HH:MM`
 *   (hours 00..23, minutes 00..59). `t` and `z` are accepted for `T` and
 *   `Z` as the RFC allows; a space instead of `T` is not.
 * - The day exists in its month (leap years by the Gregorian rule, so
 *   2024-02-29 passes and 2026-02-29 or 2026-02-31 do not); hours 00..23,
 *   minutes 00..59.
 * - Seconds 00..59, and 60 only for a leap second: the instant it names
 *   must be 23:59:60 in UTC (after the offset is applied). It counts as the
 *   first instant of the next day, since Unix time has no leap seconds.
 *   Whether a leap second was actually inserted that day is not checked.
 * - The instant, in UTC, lies within years 0000..9999, so that every
 *   parsed time can be formatted back in the same grammar.
 *
 * Pure functions apart from the clock; no allocation.
 */
#ifndef MLREG_TIME_H
#define MLREG_TIME_H

#include <stdint.h>

/** Room for an RFC 3339 time with nanoseconds and its NUL. */
#define MLREG_TIME_STRLEN 40

/**
 * Parses the RFC 3339 date-time @p s by the rule above into seconds since
 * the Unix epoch (UTC) and nanoseconds (0..999999999). Either output may
 * be NULL; neither is written on failure.
 * @return 0, or MLREG_EINVALID with "'S' is not an RFC 3339 date-time"
 *         (S cut to 64 bytes) for any text that breaks the rule, or
 *         "date-time missing" for NULL.
 */
int mlreg_time_parse(int64_t *sec_out, int32_t *nsec_out, const char *s);

/** Allowances of mlreg_time_parse_flags(). */
enum {
    MLREG_TIME_SPACE_SEPARATOR = 1, /**< a space may stand for `T` (RFC 3339 5.6, NOTE) */
    MLREG_TIME_LONG_FRACTION = 2    /**< digits past nanoseconds are read and dropped */
};

/** What `org.opencontainers.image.created` is read with: tools such as
 *  `date --rfc-3339=ns` write a space, and some write more than 9 digits. */
#define MLREG_TIME_AS_PUSHED (MLREG_TIME_SPACE_SEPARATOR | MLREG_TIME_LONG_FRACTION)

/**
 * mlreg_time_parse() with the allowances in @p flags (MLREG_TIME_*; 0 is
 * the strict rule). Every other part of the rule stays.
 */
int mlreg_time_parse_flags(int64_t *sec_out, int32_t *nsec_out, const char *s, unsigned flags);

/**
 * Formats @p sec seconds and @p nsec nanoseconds (0..999999999) since the
 * epoch as RFC 3339 UTC with nine fraction digits
 * ("2026-01-02T03:04:05.123456789Z"), which mlreg_time_parse() reads back
 * exactly. @p sec must lie in years 0000..9999.
 */
void mlreg_time_format_sec(char out[MLREG_TIME_STRLEN], int64_t sec, int32_t nsec);

/** mlreg_time_format_sec() of @p ns nanoseconds since the epoch (may be negative). */
void mlreg_time_format(char out[MLREG_TIME_STRLEN], int64_t ns);

/**
 * The current time in nanoseconds since the Unix epoch, strictly increasing
 * within the process (so an attach and a revocation never share a time).
 * Thread-safe.
 */
int64_t mlreg_time_now_ns(void);

/**
 * Makes every later mlreg_time_now_ns() return more than @p t. The wall
 * clock may be behind a time stored by an earlier run (stepped back, or a
 * restart on another host); seeding the clock from the stored times keeps
 * the order of times equal to the order of commits. Thread-safe.
 */
void mlreg_time_advance(int64_t t);

#endif
