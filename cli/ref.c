/* ref.c: MODEL:STAGE references and RFC 3339 times (ref.h).
 *
 * Times are turned into UTC here rather than sent as typed: the server's
 * `?at=` then only ever sees one canonical form, and a '+' of an offset
 * never has to survive a query string (where it would read as a space).
 * The conversion is done with days-from-civil arithmetic, not mktime(), so
 * the local time zone of the machine plays no part.
 */
#include "ref.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "mlreg/common.h"
#include "mlreg/registry.h"
#include "stage.h"

int cli_is_stage_ref(const char *str)
{
    return strchr(str, ':') && !strchr(str, '@');
}

int cli_stage_ref_parse(cli_stage_ref *out, const char *str)
{
    char *colon;

    memset(out, 0, sizeof(*out));
    if (strlen(str) >= sizeof(out->buf))
        return mlreg_error_set(MLREG_EINVALID, "reference too long");
    strcpy(out->buf, str);
    if (strchr(out->buf, '@') || !(colon = strchr(out->buf, ':')))
        return mlreg_error_set(MLREG_EINVALID, "'%s': expected MODEL:STAGE", str);
    *colon = '\0';
    out->model = out->buf;
    out->stage = colon + 1;
    if (mlreg_name_validate(out->model) < 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "'%s': model name must match the OCI repository grammar "
                               "(lowercase [a-z0-9], separators . _ __ -, '/' between parts)",
                               out->model);
    if (mlreg_tag_validate(out->stage) < 0)
        return mlreg_error_set(
            MLREG_EINVALID, "'%s': stage must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}", out->stage);
    return 0;
}

/* Reads exactly @p n digits at *p into *v; advances *p. */
static int digits(int *v, const char **p, int n)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9') return 0;
        *v = *v * 10 + (ch - '0');
    }
    *p += n;
    return 1;
}

static int expect(const char **p, char ch)
{
    if (**p != ch) return 0;
    (*p)++;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int cli_time_parse(char out[CLI_TIME_BUFSIZE], const char *str)
{
    const char *p = str, *frac = NULL;
    int y, mo, d, h, mi, s, oh = 0, om = 0, sign = 0;
    size_t nfrac = 0;
    int64_t t;
    time_t tt;
    struct tm tm;
    char base[32];

    out[0] = '\0';
    if (!digits(&y, &p, 4) || !expect(&p, '-') || !digits(&mo, &p, 2) || !expect(&p, '-') ||
        !digits(&d, &p, 2))
        goto bad;
    if (*p != 'T' && *p != 't' && *p != ' ') goto bad;
    p++;
    if (!digits(&h, &p, 2) || !expect(&p, ':') || !digits(&mi, &p, 2) || !expect(&p, ':') ||
        !digits(&s, &p, 2))
        goto bad;
    if (*p == '.') {
        frac = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        nfrac = (size_t)(p - frac);
        if (nfrac == 0 || nfrac > 9)
            return mlreg_error_set(MLREG_EINVALID, "time '%s': 1 to 9 digits of fractional seconds",
                                   str);
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!digits(&oh, &p, 2) || !expect(&p, ':') || !digits(&om, &p, 2)) goto bad;
        if (oh > 23 || om > 59)
            return mlreg_error_set(MLREG_EINVALID, "time '%s': offset out of range", str);
    } else {
        goto bad;
    }
    if (*p) goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59)
        return mlreg_error_set(MLREG_EINVALID, "time '%s': a field is out of range", str);
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s -
        sign * (int64_t)(oh * 3600 + om * 60);
    tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return mlreg_error_set(MLREG_EINVALID, "time '%s': out of range", str);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac)
        snprintf(out, CLI_TIME_BUFSIZE, "%s.%.*sZ", base, (int)nfrac, frac);
    else
        snprintf(out, CLI_TIME_BUFSIZE, "%sZ", base);
    return 0;
bad:
    return mlreg_error_set(MLREG_EINVALID,
                           "time '%s' is not RFC 3339 (e.g. 2026-11-26T10:00:00Z or "
                           "2026-11-26T12:00:00+02:00)",
                           str);
}

int cli_release_ref_parse(cli_release_ref *out, const char *str)
{
    memset(out, 0, sizeof(*out));
    if (cli_is_stage_ref(str)) {
        out->by_stage = 1;
        return cli_stage_ref_parse(&out->sref, str);
    }
    return cli_ref_parse(&out->ref, str, 1);
}

int cli_release_ref_fetch(cli_release *rel, cli_client *c, cli_release_ref *r)
{
    int error = 0;
    json_t *resolved = NULL;
    cli_response resp;
    const char *version = NULL;
    char pinned[sizeof(r->ref.buf)];

    cli_response_init(&resp);
    if (r->by_stage) {
        if ((error = cli_stage_resolve(&resolved, &resp, c, r->sref.model, r->sref.stage, NULL)) <
            0)
            goto done;
        version = json_string_value(json_object_get(resolved, "version"));
        snprintf(pinned, sizeof(pinned), "%s@%s", r->sref.model,
                 json_string_value(json_object_get(resolved, "digest")));
        if ((error = cli_ref_parse(&r->ref, pinned, 1)) < 0) goto done;
        fprintf(stderr, "%s:%s is %s@%s (%s)\n", r->sref.model, r->sref.stage, r->sref.model,
                version, r->ref.digest);
    }
    if ((error = cli_release_fetch(rel, c, &r->ref)) < 0) goto done;
    if (version && strcmp(rel->version, version))
        error = mlreg_error_set(MLREG_EMISMATCH,
                                "%s:%s resolved to version %s, but its manifest is version %s",
                                r->sref.model, r->sref.stage, version, rel->version);
done:
    json_decref(resolved);
    cli_response_clear(&resp);
    return error;
}
