/* json_out.c: JSON for people and clients (json_out.h): jansson's own bytes,
 * reals written with the fewest digits that read back the same.
 *
 * How: json_dumps() writes the document, then one pass over its text swaps
 * each real for its shortest form. Everything that is not a real (string
 * escapes, key order, indentation, every flag) therefore stays jansson's,
 * with no second serializer to drift from it. The pass only has to tell
 * reals apart: outside string literals, a number token is a real exactly
 * when it holds '.', 'e' or 'E' (jansson writes integers with digits and
 * '-' only, and always puts a '.' or an 'e' into a real); inside a string,
 * '"' and '\\' only ever appear escaped, so skipping "\x" pairs up to the
 * next bare '"' finds its end. "%.17g" reads back exactly, so strtod() of
 * jansson's token gives the very double of the document (mlreg never calls
 * setlocale(), so strtod() reads '.').
 *
 * registry/audit.c (reals of audit entries, hashed: "%.*g", "1e+02" for
 * 100, forever) and core/metrics.c (Prometheus's text: integers without
 * ".0", "+Inf") keep their own text, but take the number of digits from
 * mlreg_real_precision() here: one rule, the fewest that round-trip.
 */
#include "mlreg/json_out.h"

#include "mlreg/buf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* jansson keeps the precision in 5 bits at bit 11 (JSON_REAL_PRECISION) */
#define REAL_PRECISION_MASK ((size_t)0x1F << 11)

/* Whether "%.*e" of @p v with @p p significant digits reads back as @p v;
 * the text is left in @p buf. */
static int round_trips(char *buf, size_t len, int p, double v)
{
    snprintf(buf, len, "%.*e", p - 1, v);
    return strtod(buf, NULL) == v;
}

/* The search, not a loop over 1..17 (17 "%e" and strtod() calls for a
 * computed value, 13 us a real on a busy machine): "%e" rounds correctly,
 * so p digits give the p-digit decimal nearest to @p v. For p <= 15 those
 * decimals lie at least 10^-15 of @p v apart, while every text that reads
 * back as @p v lies within half an ulp (< 1.2e-16 of @p v) of it: so at
 * most one p-digit decimal reads back, and when p digits do, every q in
 * p..15 gives that same decimal and reads back too. Hence: when 15 digits
 * fail, the answer is 16 or 17 (17 always reads back); when they succeed,
 * a bisection over 1..15 finds the fewest. The same answer as the loop,
 * in at most 5 tries. */
int mlreg_real_precision(double v)
{
    char buf[48];
    int lo = 1, hi = 15;

    if (!round_trips(buf, sizeof(buf), 15, v))
        return round_trips(buf, sizeof(buf), 16, v) ? 16 : 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (round_trips(buf, sizeof(buf), mid, v))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The digits of the finite @p v at mlreg_real_precision(): trailing zeros
 * dropped (at least one digit, "0" for zero) into @p digits, the decimal
 * exponent of the first one into *exp10, and whether the sign is '-'
 * (-0.0 included) into *neg. */
static void shortest_digits(char digits[18], int *exp10, int *neg, double v)
{
    char buf[48];
    const char *s = buf;
    size_t n = 0;

    snprintf(buf, sizeof(buf), "%.*e", mlreg_real_precision(v) - 1, v);
    *neg = *s == '-';
    if (*s == '-') s++;
    for (; *s != '\0' && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && n < 17) digits[n++] = *s;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *exp10 = *s == 'e' ? (int)strtol(s + 1, NULL, 10) : 0;
}

int mlreg_json_real_text(char *out, size_t len, double v)
{
    char digits[18], text[MLREG_JSON_REAL_MAX], *p = text;
    int x = 0, neg = 0;
    size_t n, tlen;

    if (len > 0) out[0] = '\0';
    if (!isfinite(v)) return -1;
    shortest_digits(digits, &x, &neg, v);
    n = strlen(digits);
    if (neg) *p++ = '-';
    if (x < -4 || x > 16) {
        /* jansson's exponent form: "d.ddde-7", "1e21" */
        *p++ = digits[0];
        if (n > 1) {
            *p++ = '.';
            memcpy(p, digits + 1, n - 1);
            p += n - 1;
        }
        p += snprintf(p, sizeof(text) - (size_t)(p - text), "e%d", x);
    } else if (x < 0) {
        /* 0.000ddd */
        *p++ = '0';
        *p++ = '.';
        for (int z = -1; z > x; z--)
            *p++ = '0';
        memcpy(p, digits, n);
        p += n;
    } else {
        /* the first x + 1 digits (padded with zeros) before the point,
         * the rest after it, ".0" when there is no rest */
        size_t whole = (size_t)x + 1;
        for (size_t i = 0; i < whole; i++)
            *p++ = i < n ? digits[i] : '0';
        *p++ = '.';
        if (n > whole) {
            memcpy(p, digits + whole, n - whole);
            p += n - whole;
        } else {
            *p++ = '0';
        }
    }
    *p = '\0';
    tlen = (size_t)(p - text);
    if (tlen >= len) return -1;
    memcpy(out, text, tlen + 1);
    return (int)tlen;
}

int mlreg_json_number_text(char *out, size_t len, const json_t *n)
{
    int w;

    if (json_is_real(n)) return mlreg_json_real_text(out, len, json_real_value(n));
    if (json_is_integer(n))
        w = snprintf(out, len, "%" JSON_INTEGER_FORMAT, json_integer_value(n));
    else
        w = snprintf(out, len, "-");
    if (w < 0 || (size_t)w >= len) {
        if (len > 0) out[0] = '\0';
        return -1;
    }
    return w;
}

/* Length of the number token at @p s, and whether it is a real. */
static size_t number_token(const char *s, int *is_real)
{
    size_t i = 0;

    *is_real = 0;
    for (; s[i] != '\0' && strchr("+-.0123456789eE", s[i]) != NULL; i++)
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') *is_real = 1;
    return i;
}

char *mlreg_json_dumps(const json_t *j, size_t flags)
{
    char *raw = json_dumps(j, flags & ~REAL_PRECISION_MASK);
    mlreg_buf b = {0};
    size_t i = 0, copied = 0;

    if (raw == NULL) return NULL;
    while (raw[i] != '\0') {
        char c = raw[i], real[MLREG_JSON_REAL_MAX];
        size_t tok;
        int is_real;

        if (c == '"') {
            for (i++; raw[i] != '\0' && raw[i] != '"'; i++)
                if (raw[i] == '\\' && raw[i + 1] != '\0') i++;
            if (raw[i] == '"') i++;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) {
            i++;
            continue;
        }
        tok = number_token(raw + i, &is_real);
        if (is_real) {
            int rlen = mlreg_json_real_text(real, sizeof(real), strtod(raw + i, NULL));
            if (rlen < 0 || mlreg_buf_add(&b, raw + copied, i - copied) < 0 ||
                mlreg_buf_add(&b, real, (size_t)rlen) < 0)
                goto fail;
            copied = i + tok;
        }
        i += tok;
    }
    if (copied == 0) return raw; /* no real: jansson's text as it is */
    if (mlreg_buf_add(&b, raw + copied, i - copied) < 0) goto fail;
    free(raw);
    return b.p;

fail:
    free(raw);
    free(b.p);
    return NULL;
}

int mlreg_json_dumpf(const json_t *j, FILE *f, size_t flags)
{
    char *text = mlreg_json_dumps(j, flags);
    size_t len;
    int ok;

    if (text == NULL) return -1;
    len = strlen(text);
    ok = fwrite(text, 1, len, f) == len;
    free(text);
    return ok ? 0 : -1;
}
