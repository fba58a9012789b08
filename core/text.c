/* text.c: the rule for text shown to people (text.h): valid UTF-8 without
 * C0, DEL or C1 controls. One decoder, used by all the functions, so the
 * server's refusal and the CLI's display agree byte for byte.
 */
#include "mlreg/text.h"

#include "mlreg/common.h"

#include <stdint.h>
#include <string.h>

/* Decodes the character at @p s (@p len > 0 bytes left) into *cp. Returns
 * its length (1..4), or 0 when the bytes there are not well-formed UTF-8
 * (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF, no
 * sequence cut off by the end). */
static size_t decode(uint32_t *cp, const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n, k;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0; /* a continuation byte, C0/C1 (overlong leads) or F5..FF */
    }
    if (len < n) return 0;
    for (k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[k] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

size_t mlreg_utf8_span(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, n;
    uint32_t cp;

    while (i < len && (n = decode(&cp, u + i, len - i)) > 0)
        i += n;
    return i;
}

size_t mlreg_text_span(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, n;
    uint32_t cp;

    while (i < len) {
        if ((n = decode(&cp, u + i, len - i)) == 0 || is_control(cp)) break;
        i += n;
    }
    return i;
}

int mlreg_text_validate(const char *s, const char *what)
{
    size_t len, at, n;
    uint32_t cp;

    if (s == NULL) return 0;
    len = strlen(s);
    if ((at = mlreg_text_span(s, len)) == len) return 0;
    n = decode(&cp, (const unsigned char *)s + at, len - at);
    if (n == 0) return mlreg_error_set(MLREG_EINVALID, "%s is not valid UTF-8", what);
    return mlreg_error_set(MLREG_EINVALID, "%s contains a control character", what);
}

size_t mlreg_text_sanitize(char *buf, size_t cap, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t in = 0, out = 0, k, n;
    uint32_t cp;

    if (cap == 0) return 0;
    while (in < len && out + 1 < cap) {
        k = mlreg_text_span(s + in, len - in);
        if (k > cap - 1 - out) {
            /* Room for part of the safe run only: stop on a character
             * boundary (the run is valid UTF-8, so one is at most 3 back). */
            k = cap - 1 - out;
            while (k > 0 && (u[in + k] & 0xc0) == 0x80)
                k--;
            memcpy(buf + out, s + in, k);
            out += k;
            in += k;
            break;
        }
        memcpy(buf + out, s + in, k);
        out += k;
        in += k;
        if (in == len || out + 1 == cap) break;
        /* One '?' for a whole control character, one per stray byte. */
        n = decode(&cp, u + in, len - in);
        buf[out++] = '?';
        in += n ? n : 1;
    }
    buf[out] = '\0';
    return in;
}

const char *mlreg_text_printable(const char *s)
{
    size_t len;

    if (s == NULL || *s == '\0') return "-";
    len = strlen(s);
    return mlreg_text_span(s, len) == len ? s : "(unprintable)";
}
