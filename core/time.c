/* time.c: the one RFC 3339 parser and formatter (time.h) and the process
 * clock.
 *
 * Dates convert with Howard Hinnant's days_from_civil / civil_from_days
 * (proleptic Gregorian, exact for every year RFC 3339 can write), not with
 * timegm()/gmtime(): those normalise out-of-range fields (Feb 31 would
 * become Mar 3) and depend on the width of time_t. */
#include "mlreg/time.h"

#include "mlreg/common.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define NS_PER_SEC 1000000000

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z in Unix seconds. */
#define MIN_SEC (-62167219200LL)
#define MAX_SEC (253402300799LL)

/* Reads exactly @p n digits at s[*pos]; -1 when they are not all digits. */
static int read_digits(const char *s, size_t *pos, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = s[*pos + (size_t)i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *pos += (size_t)n;
    return v;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t *y_out, int *m_out, int *d_out, int64_t z)
{
    int64_t era, doe, yoe, doy, mp, y;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d_out = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m_out = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y_out = y + (*m_out <= 2);
}

int mlreg_time_parse(int64_t *sec_out, int32_t *nsec_out, const char *s)
{
    return mlreg_time_parse_flags(sec_out, nsec_out, s, 0);
}

int mlreg_time_parse_flags(int64_t *sec_out, int32_t *nsec_out, const char *s, unsigned flags)
{
    size_t p = 0;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, digits = 0, leap = 0;
    int32_t nsec = 0;
    int64_t t;

    if (s == NULL) return mlreg_error_set(MLREG_EINVALID, "date-time missing");
    if ((y = read_digits(s, &p, 4)) < 0 || s[p++] != '-' || (mo = read_digits(s, &p, 2)) < 0 ||
        s[p++] != '-' || (d = read_digits(s, &p, 2)) < 0)
        goto bad;
    if (s[p] != 'T' && s[p] != 't' && !(s[p] == ' ' && (flags & MLREG_TIME_SPACE_SEPARATOR)))
        goto bad;
    p++;
    if ((h = read_digits(s, &p, 2)) < 0 || s[p++] != ':' || (mi = read_digits(s, &p, 2)) < 0 ||
        s[p++] != ':' || (sec = read_digits(s, &p, 2)) < 0)
        goto bad;
    if (s[p] == '.') {
        p++;
        while (s[p] >= '0' && s[p] <= '9') {
            if (++digits > 9) {
                if (!(flags & MLREG_TIME_LONG_FRACTION)) goto bad;
                digits = 9;
                p++;
                continue;
            }
            nsec = nsec * 10 + (s[p] - '0');
            p++;
        }
        if (digits == 0) goto bad;
        for (; digits < 9; digits++)
            nsec *= 10;
    }
    if (s[p] == 'Z' || s[p] == 'z') {
        p++;
    } else if (s[p] == '+' || s[p] == '-') {
        sign = s[p++] == '+' ? 1 : -1;
        if ((oh = read_digits(s, &p, 2)) < 0 || s[p++] != ':' || (om = read_digits(s, &p, 2)) < 0)
            goto bad;
    } else {
        goto bad;
    }
    if (s[p] != '\0') goto bad;

    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 ||
        oh > 23 || om > 59)
        goto bad;
    if (sec == 60) {
        leap = 1;
        sec = 59;
    }
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    /* A leap second is 23:59:60 UTC; it counts as the next day's start. */
    if (leap) {
        if (((t % 86400) + 86400) % 86400 != 86399) goto bad;
        t++;
    }
    if (t < MIN_SEC || t > MAX_SEC) goto bad;
    if (sec_out) *sec_out = t;
    if (nsec_out) *nsec_out = nsec;
    return 0;

bad:
    return mlreg_error_set(MLREG_EINVALID, "'%.64s' is not an RFC 3339 date-time", s);
}

void mlreg_time_format_sec(char out[MLREG_TIME_STRLEN], int64_t sec, int32_t nsec)
{
    int64_t days = sec / 86400, rem = sec % 86400, y;
    int m, d;

    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil_from_days(&y, &m, &d, days);
    snprintf(out, MLREG_TIME_STRLEN, "%04lld-%02d-%02dT%02d:%02d:%02d.%09dZ", (long long)y, m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)nsec);
}

void mlreg_time_format(char out[MLREG_TIME_STRLEN], int64_t ns)
{
    int64_t sec = ns / NS_PER_SEC;
    int32_t frac = (int32_t)(ns % NS_PER_SEC);

    if (frac < 0) {
        frac += NS_PER_SEC;
        sec -= 1;
    }
    mlreg_time_format_sec(out, sec, frac);
}

/* ---- the process clock ------------------------------------------------------ */

static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t clock_last;

int64_t mlreg_time_now_ns(void)
{
    struct timespec ts;
    int64_t now;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
    pthread_mutex_lock(&clock_lock);
    if (now <= clock_last) now = clock_last + 1;
    clock_last = now;
    pthread_mutex_unlock(&clock_lock);
    return now;
}

void mlreg_time_advance(int64_t t)
{
    pthread_mutex_lock(&clock_lock);
    if (t > clock_last) clock_last = t;
    pthread_mutex_unlock(&clock_lock);
}
