/* fuzz_s3_xml.c: the parsers of S3 response bodies (storage/s3_xml.c and
 * the error classification of storage/s3_transfer.c), which read whatever
 * the configured endpoint sends. The input is one response body; every
 * parser entry point reads it as an error body, an InitiateMultipartUpload
 * or CopyPart result, a 200 that may hold an <Error>, and a ListObjectsV2
 * and ListMultipartUploads page. Properties: nothing reads past the input;
 * every string handed out is NUL-terminated inside its buffer and as long
 * as the parser says (a NUL byte in a key would name another object);
 * results are the documented codes; a listing stops when its callback
 * says so and passes the callback's value up. */
#include <stdlib.h>
#include <string.h>

#include "../../storage/s3_internal.h"
#include "fuzz.h"
#include "mlreg/common.h"

#define STOP_AFTER 64
#define STOP_VALUE 7

/* @p s holds a NUL within its @p cap bytes. */
static void check_terminated(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL) abort();
}

/* A text result: its length, NUL-terminated there, or "" on an error. */
static void check_text(int rc, const char *out, size_t cap)
{
    check_terminated(out, cap);
    if (rc >= 0) {
        if ((size_t)rc >= cap || strlen(out) != (size_t)rc) abort();
    } else {
        if (rc != MLREG_ENOTFOUND && rc != MLREG_EINVALID) abort();
        if (out[0] != '\0') abort();
    }
}

static void text_entry_points(const char *xml, size_t len)
{
    static const char *const tags[] = {"Code", "Key", "ETag", "UploadId", "IsTruncated"};
    static const size_t caps[] = {1, 2, 16, 160, 4096};
    static char out[4096];
    size_t t, c;

    for (t = 0; t < sizeof(tags) / sizeof(tags[0]); t++)
        for (c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
            check_text(mlreg_s3__xml_text(out, caps[c], xml, len, tags[t]), out, caps[c]);
    check_text(mlreg_s3__xml_initiate_result(out, 1024, xml, len), out, 1024);
    check_text(mlreg_s3__xml_copy_part_result(out, 160, xml, len), out, 160);
}

static void next_entry_point(const char *xml, size_t len, const char *tag)
{
    const char *inner;
    size_t inner_len, pos = 0, last = 0;
    int rc, n = 0;

    while ((rc = mlreg_s3__xml_next(&inner, &inner_len, &pos, xml, len, tag)) == 1) {
        /* the element lies inside the input and the walk moves forward */
        if (inner < xml || inner_len > len || (size_t)(inner - xml) > len - inner_len) abort();
        if (pos <= last || pos > len) abort();
        last = pos;
        if (++n > (int)len) abort();
    }
    if (rc != 0 && rc != MLREG_EINVALID) abort();
}

static void error_entry_points(const char *xml, size_t len)
{
    static const long statuses[] = {200, 400, 403, 404, 416, 500, 501, 503};
    mlreg_s3__error_body eb;
    char msg[768], tiny[12];
    size_t i;
    int is_error = mlreg_s3__xml_is_error(xml, len);

    if (is_error != 0 && is_error != 1) abort();
    mlreg_s3__xml_error(&eb, xml, len);
    check_terminated(eb.code, sizeof(eb.code));
    check_terminated(eb.message, sizeof(eb.message));
    check_terminated(eb.request_id, sizeof(eb.request_id));
    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        int rc = mlreg_s3__error_from_response(msg, sizeof(msg), "GET", "blobs/k", statuses[i], xml,
                                               len, i % 2 ? "tx-header" : NULL);
        if (rc != MLREG_ENOTFOUND && rc != MLREG_EAUTH && rc != MLREG_EFORBIDDEN &&
            rc != MLREG_ERANGE && rc != MLREG_ESERVER && rc != MLREG_EIO)
            abort();
        check_terminated(msg, sizeof(msg));
        if (strncmp(msg, "s3 GET blobs/k: ", 16) != 0) abort();
        (void)mlreg_s3__error_from_response(tiny, sizeof(tiny), "PUT", NULL, statuses[i], xml, len,
                                            NULL);
        check_terminated(tiny, sizeof(tiny));
    }
}

static int on_object(const char *key, uint64_t size, int64_t modified, void *p)
{
    int *n = p;

    (void)modified;

    (void)size;
    check_terminated(key, 1024);
    return ++*n >= STOP_AFTER ? STOP_VALUE : 0;
}

static int on_upload(const char *key, const char *upload_id, int64_t initiated, void *p)
{
    int *n = p;

    (void)initiated;
    check_terminated(key, 1024);
    check_terminated(upload_id, 1024);
    if (upload_id[0] == '\0') abort();
    return ++*n >= STOP_AFTER ? STOP_VALUE : 0;
}

static void list_entry_points(const char *xml, size_t len)
{
    static mlreg_s3__objects_page op;
    static mlreg_s3__uploads_page up;
    int n = 0, rc;

    memset(&op, 0x55, sizeof(op));
    rc = mlreg_s3__xml_list_objects(&op, xml, len, "p/", on_object, &n);
    if (rc > 0 && (rc != STOP_VALUE || n != STOP_AFTER)) abort();
    if (rc == 0 && n >= STOP_AFTER) abort();
    check_terminated(op.next_token, sizeof(op.next_token));
    if (rc == 0 && op.truncated != (op.next_token[0] != '\0')) abort();

    n = 0;
    memset(&up, 0x55, sizeof(up));
    rc = mlreg_s3__xml_list_uploads(&up, xml, len, "p/uploads/", on_upload, &n);
    if (rc > 0 && (rc != STOP_VALUE || n != STOP_AFTER)) abort();
    if (rc == 0 && n >= STOP_AFTER) abort();
    check_terminated(up.key_marker, sizeof(up.key_marker));
    check_terminated(up.id_marker, sizeof(up.id_marker));
    if (rc == 0 && up.truncated && (up.key_marker[0] == '\0' || up.id_marker[0] == '\0')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *xml = (const char *)data;

    text_entry_points(xml, size);
    next_entry_point(xml, size, "Contents");
    next_entry_point(xml, size, "Upload");
    error_entry_points(xml, size);
    list_entry_points(xml, size);
    return 0;
}
