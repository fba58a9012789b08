/* s3_xml.c: the parsers of S3 response bodies (s3_internal.h).
 *
 * S3 answers in a small, regular XML: elements without attributes, text
 * with the five named entities and the occasional numeric one. These
 * parsers find elements by exact name ("<Key>" never matches "<KeyMarker>")
 * and refuse what they do not understand (CDATA, comments, markup inside a
 * text element, unknown entities) instead of guessing, so a hostile or
 * broken endpoint gets a clear error, never a wrong key or upload id.
 *
 * Traps:
 * - Every parser is bounded by the length it is given: a body is not
 *   NUL-terminated in general (the fuzz target passes exact-size buffers).
 * - Outputs are fixed-size buffers; text that does not fit is an error, not
 *   a truncated key that would name another object. For the same reason a
 *   NUL byte in text is an error (XML has no such character).
 */
#include "s3_internal.h"

#include "mlreg/common.h"
#include "mlreg/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *find_n(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle));
}

int mlreg_s3__xml_next(const char **inner, size_t *inner_len, size_t *pos, const char *xml,
                       size_t len, const char *tag)
{
    char open[96], close[96];
    const char *o, *c;

    if (snprintf(open, sizeof(open), "<%s>", tag) >= (int)sizeof(open) ||
        snprintf(close, sizeof(close), "</%s>", tag) >= (int)sizeof(close))
        return mlreg_error_set(MLREG_EINVALID, "xml tag name too long");
    if (*pos > len) return 0;
    if ((o = find_n(xml + *pos, len - *pos, open)) == NULL) return 0;
    o += strlen(open);
    if ((c = find_n(o, len - (size_t)(o - xml), close)) == NULL)
        return mlreg_error_set(MLREG_EINVALID, "malformed s3 response: <%s> not closed", tag);
    *inner = o;
    *inner_len = (size_t)(c - o);
    *pos = (size_t)(c - xml) + strlen(close);
    return 1;
}

/* mlreg_s3__xml_text without the clean-up of @p out on failure. */
static int xml_text(char *out, size_t outlen, const char *xml, size_t len, const char *tag)
{
    const char *in;
    size_t in_len, pos = 0, i, w = 0;
    int rc;

    if ((rc = mlreg_s3__xml_next(&in, &in_len, &pos, xml, len, tag)) < 0) return rc;
    if (rc == 0) return MLREG_ENOTFOUND;
    for (i = 0; i < in_len; i++) {
        char ch = in[i];
        if (ch == '<') return mlreg_error_set(MLREG_EINVALID, "markup inside s3 <%s>", tag);
        /* XML has no NUL character; passed on, it would cut a key short and
         * name another object */
        if (ch == '\0') return mlreg_error_set(MLREG_EINVALID, "NUL byte in s3 <%s>", tag);
        if (ch == '&') {
            const char *semi = memchr(in + i, ';', in_len - i);
            size_t n;
            if (semi == NULL) return mlreg_error_set(MLREG_EINVALID, "bad entity in s3 <%s>", tag);
            n = (size_t)(semi - (in + i)) + 1;
            if (n == 5 && memcmp(in + i, "&amp;", 5) == 0)
                ch = '&';
            else if (n == 4 && memcmp(in + i, "&lt;", 4) == 0)
                ch = '<';
            else if (n == 4 && memcmp(in + i, "&gt;", 4) == 0)
                ch = '>';
            else if (n == 6 && memcmp(in + i, "&quot;", 6) == 0)
                ch = '"';
            else if (n == 6 && memcmp(in + i, "&apos;", 6) == 0)
                ch = '\'';
            else if (n >= 4 && n <= 8 && in[i + 1] == '#') {
                /* numeric, ASCII only: anything else never appears in what we parse */
                char num[8] = {0};
                char *end;
                long v;
                memcpy(num, in + i + 2, n - 3);
                v = num[0] == 'x' ? strtol(num + 1, &end, 16) : strtol(num, &end, 10);
                if (*end != '\0' || v <= 0 || v > 127)
                    return mlreg_error_set(MLREG_EINVALID, "bad entity in s3 <%s>", tag);
                ch = (char)v;
            } else {
                return mlreg_error_set(MLREG_EINVALID, "bad entity in s3 <%s>", tag);
            }
            i += n - 1;
        }
        if (w + 1 >= outlen) return mlreg_error_set(MLREG_EINVALID, "s3 <%s> too long", tag);
        out[w++] = ch;
    }
    out[w] = '\0';
    return (int)w;
}

int mlreg_s3__xml_text(char *out, size_t outlen, const char *xml, size_t len, const char *tag)
{
    int rc;

    if (outlen == 0) return mlreg_error_set(MLREG_EINVALID, "no room for s3 <%s>", tag);
    if ((rc = xml_text(out, outlen, xml, len, tag)) < 0) out[0] = '\0';
    return rc;
}

void mlreg_s3__xml_error(mlreg_s3__error_body *out, const char *xml, size_t len)
{
    out->code[0] = out->message[0] = out->request_id[0] = '\0';
    if (xml == NULL || len == 0) return;
    /* a field that is absent or malformed stays "" */
    (void)mlreg_s3__xml_text(out->code, sizeof(out->code), xml, len, "Code");
    (void)mlreg_s3__xml_text(out->message, sizeof(out->message), xml, len, "Message");
    (void)mlreg_s3__xml_text(out->request_id, sizeof(out->request_id), xml, len, "RequestId");
}

int mlreg_s3__xml_is_error(const char *xml, size_t len)
{
    return xml != NULL && find_n(xml, strnlen(xml, len), "<Error>") != NULL;
}

int mlreg_s3__xml_initiate_result(char *out, size_t outlen, const char *xml, size_t len)
{
    return mlreg_s3__xml_text(out, outlen, xml, len, "UploadId");
}

int mlreg_s3__xml_copy_part_result(char *out, size_t outlen, const char *xml, size_t len)
{
    return mlreg_s3__xml_text(out, outlen, xml, len, "ETag");
}

static int parse_u64(uint64_t *out, const char *s)
{
    char *end;

    if (s[0] < '0' || s[0] > '9') return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0' ? 0 : -1;
}

/* <IsTruncated> of a listing page: 1 for "true", 0 for anything else, or
 * MLREG_EIO when absent or malformed. @p what names the listing. */
static int is_truncated(const char *xml, size_t len, const char *what, const char *prefix)
{
    char truncated[16];

    if (mlreg_s3__xml_text(truncated, sizeof(truncated), xml, len, "IsTruncated") < 0)
        return mlreg_error_set(MLREG_EIO, "s3 %s %s: no <IsTruncated>", what, prefix);
    return strcmp(truncated, "true") == 0;
}

int mlreg_s3__xml_list_objects(mlreg_s3__objects_page *page, const char *xml, size_t len,
                               const char *prefix, mlreg_s3_list_cb cb, void *payload)
{
    const char *in;
    size_t in_len, pos = 0;
    int rc;

    page->truncated = 0;
    page->next_token[0] = '\0';
    while ((rc = mlreg_s3__xml_next(&in, &in_len, &pos, xml, len, "Contents")) > 0) {
        char key[1024], size_str[32], when[64];
        uint64_t size;
        int64_t modified = 0;
        int32_t nsec;
        if (mlreg_s3__xml_text(key, sizeof(key), in, in_len, "Key") < 0 ||
            mlreg_s3__xml_text(size_str, sizeof(size_str), in, in_len, "Size") < 0 ||
            parse_u64(&size, size_str) < 0)
            return mlreg_error_set(MLREG_EIO, "s3 list %s: malformed <Contents>", prefix);
        /* LastModified is RFC 3339 ("2009-10-12T17:50:30.000Z"); a listing
         * without it (or with another form) reports 0: "unknown". */
        if (mlreg_s3__xml_text(when, sizeof(when), in, in_len, "LastModified") <= 0 ||
            mlreg_time_parse(&modified, &nsec, when) < 0 || modified < 0)
            modified = 0;
        mlreg_error_clear();
        if ((rc = cb(key, size, modified, payload)) != 0) return rc;
    }
    if (rc < 0) return rc;
    if ((rc = is_truncated(xml, len, "list", prefix)) <= 0) return rc;
    if (mlreg_s3__xml_text(page->next_token, sizeof(page->next_token), xml, len,
                           "NextContinuationToken") <= 0)
        return mlreg_error_set(MLREG_EIO, "s3 list %s: truncated without a token", prefix);
    page->truncated = 1;
    return 0;
}

int mlreg_s3__xml_list_uploads(mlreg_s3__uploads_page *page, const char *xml, size_t len,
                               const char *prefix, mlreg_s3_upload_cb cb, void *payload)
{
    const char *in;
    size_t in_len, pos = 0;
    int rc;

    page->truncated = 0;
    page->key_marker[0] = page->id_marker[0] = '\0';
    while ((rc = mlreg_s3__xml_next(&in, &in_len, &pos, xml, len, "Upload")) > 0) {
        char key[1024], id[1024], when[64];
        int64_t initiated = 0;
        int32_t nsec;
        if (mlreg_s3__xml_text(key, sizeof(key), in, in_len, "Key") < 0 ||
            mlreg_s3__xml_text(id, sizeof(id), in, in_len, "UploadId") <= 0)
            return mlreg_error_set(MLREG_EIO, "s3 list uploads %s: malformed <Upload>", prefix);
        /* Initiated is RFC 3339 as LastModified; 0 when absent or odd */
        if (mlreg_s3__xml_text(when, sizeof(when), in, in_len, "Initiated") <= 0 ||
            mlreg_time_parse(&initiated, &nsec, when) < 0 || initiated < 0)
            initiated = 0;
        mlreg_error_clear();
        if ((rc = cb(key, id, initiated, payload)) != 0) return rc;
    }
    if (rc < 0) return rc;
    if ((rc = is_truncated(xml, len, "list uploads", prefix)) <= 0) return rc;
    if (mlreg_s3__xml_text(page->key_marker, sizeof(page->key_marker), xml, len, "NextKeyMarker") <=
            0 ||
        mlreg_s3__xml_text(page->id_marker, sizeof(page->id_marker), xml, len,
                           "NextUploadIdMarker") <= 0)
        return mlreg_error_set(MLREG_EIO, "s3 list uploads %s: truncated without markers", prefix);
    page->truncated = 1;
    return 0;
}
