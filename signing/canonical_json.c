/* canonical_json.c: one unique text per JSON value, so that an audit entry
 * hashes and signs the same wherever it is serialised again.
 *
 * jansson's own json_dumps(JSON_SORT_KEYS | JSON_COMPACT) comes close but
 * prints reals in a locale- and version-dependent way and escapes '/' or
 * not depending on flags, so the text is built here byte by byte.
 */
#include "mlreg/canonical_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/buf.h"
#include "mlreg/common.h"
#include "mlreg/text.h"

static int put_string(mlreg_buf *b, const char *s, size_t len)
{
    size_t i, run = 0;
    int error = 0;

    /* jansson checks strings it creates, but json_stringn_nocheck() exists */
    if (mlreg_utf8_span(s, len) != len)
        return mlreg_error_set(MLREG_EINVALID, "canonical json: string is not valid utf-8");
    if ((error = mlreg_buf_add(b, "\"", 1)) < 0) return error;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        const char *e = NULL;

        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                e = esc;
            }
        }
        if (e == NULL) continue;
        /* flush the unescaped run before this byte, then the escape */
        if ((error = mlreg_buf_add(b, s + run, i - run)) < 0 ||
            (error = mlreg_buf_add(b, e, strlen(e))) < 0)
            return error;
        run = i + 1;
    }
    if ((error = mlreg_buf_add(b, s + run, len - run)) < 0) return error;
    return mlreg_buf_add(b, "\"", 1);
}

/* One member; keys may hold NUL bytes (json_object_setn), so they carry
 * their length and are compared as byte strings, a proper prefix first. */
typedef struct {
    const char *key;
    size_t len;
    json_t *value;
} member;

static int cmp_members(const void *a, const void *b)
{
    const member *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

    if (c != 0) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int put_value(mlreg_buf *b, const json_t *v, int depth);

static int put_object(mlreg_buf *b, const json_t *v, int depth)
{
    size_t n = json_object_size(v), i = 0, key_len;
    member *m = NULL;
    const char *key;
    json_t *value;
    int error = 0;

    if (n > 0 && (m = malloc(n * sizeof(*m))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    /* the foreach macro wants a non-const object; it does not modify it */
    json_object_keylen_foreach((json_t *)v, key, key_len, value)
    {
        m[i].key = key;
        m[i].len = key_len;
        m[i].value = value;
        i++;
    }
    if (n > 0) qsort(m, n, sizeof(*m), cmp_members);
    if ((error = mlreg_buf_add(b, "{", 1)) < 0) goto done;
    for (i = 0; i < n; i++) {
        if ((i > 0 && (error = mlreg_buf_add(b, ",", 1)) < 0) ||
            (error = put_string(b, m[i].key, m[i].len)) < 0 ||
            (error = mlreg_buf_add(b, ":", 1)) < 0 ||
            (error = put_value(b, m[i].value, depth + 1)) < 0)
            goto done;
    }
    error = mlreg_buf_add(b, "}", 1);
done:
    free(m);
    return error;
}

static int put_value(mlreg_buf *b, const json_t *v, int depth)
{
    char num[32];
    size_t i;
    int error = 0;

    if (v == NULL) return mlreg_error_set(MLREG_EINVALID, "canonical json: no value");
    if (depth > MLREG_CANONICAL_JSON_DEPTH_MAX)
        return mlreg_error_set(MLREG_EINVALID, "canonical json: nested deeper than %d",
                               MLREG_CANONICAL_JSON_DEPTH_MAX);
    switch (json_typeof(v)) {
    case JSON_OBJECT: return put_object(b, v, depth);
    case JSON_ARRAY:
        if ((error = mlreg_buf_add(b, "[", 1)) < 0) return error;
        for (i = 0; i < json_array_size(v); i++) {
            if ((i > 0 && (error = mlreg_buf_add(b, ",", 1)) < 0) ||
                (error = put_value(b, json_array_get(v, i), depth + 1)) < 0)
                return error;
        }
        return mlreg_buf_add(b, "]", 1);
    case JSON_STRING: return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return mlreg_buf_add(b, num, strlen(num));
    case JSON_REAL:
        return mlreg_error_set(MLREG_EINVALID, "canonical json: real numbers are not allowed");
    case JSON_TRUE: return mlreg_buf_add(b, "true", 4);
    case JSON_FALSE: return mlreg_buf_add(b, "false", 5);
    case JSON_NULL: return mlreg_buf_add(b, "null", 4);
    }
    return mlreg_error_set(MLREG_EINVALID, "canonical json: unknown value type");
}

int mlreg_canonical_json(char **out, size_t *len_out, const json_t *value)
{
    mlreg_buf b = {NULL, 0, 0};
    int error = 0;

    if ((error = put_value(&b, value, 0)) < 0) goto done;
    if (b.p == NULL && (error = mlreg_buf_add(&b, "", 0)) < 0) goto done;
    if (len_out) *len_out = b.len;
    *out = b.p;
    b.p = NULL;
done:
    free(b.p);
    return error;
}
