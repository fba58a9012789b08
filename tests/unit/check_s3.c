/* check_s3.c: the S3 client's pure logic, no server: part sizes, the retry
 * policy and its backoff, the parsers of S3's XML responses (error bodies,
 * results, listing pages), the object key layout and the shape of
 * presigned URLs. The client against a real server is check_s3_backend. */
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/s3.h"
#include "../../storage/s3_internal.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define TIB (1ull << 40)

/* ---- part sizes ---- */

START_TEST(test_s3_part_size_with_a_known_size_is_max_of_8mib_and_a_ten_thousandth)
{
    ck_assert_uint_eq(mlreg_s3_part_size(0, 0, 1, 0), 8 * MIB);
    ck_assert_uint_eq(mlreg_s3_part_size((int64_t)(5 * MIB), 0, 1, 0), 8 * MIB);
    ck_assert_uint_eq(mlreg_s3_part_size((int64_t)(8 * MIB), 0, 1, 0), 8 * MIB);
    /* 80 GiB / 10000 = 8589934.592 -> 8589935, just over 8 MiB */
    ck_assert_uint_eq(mlreg_s3_part_size((int64_t)(80 * GIB), 0, 1, 0), 8589935);
    ck_assert_uint_eq(mlreg_s3_part_size((int64_t)(80 * GIB), 40 * GIB, 5000, 0), 8589935);
    /* 5 TiB / 10000 = 549755813.888 -> 549755814 (about 524 MiB) */
    ck_assert_uint_eq(mlreg_s3_part_size((int64_t)(5 * TIB), 0, 1, 0), 549755814);
    ck_assert_uint_ge(549755814ull * MLREG_S3_MAX_PARTS, 5 * TIB);
    ck_assert_uint_le(549755814ull, MLREG_S3_MAX_PART_SIZE);
    /* a configured first size is honoured, a too-small one is not */
    ck_assert_uint_eq(mlreg_s3_part_size(100 * MIB, 0, 1, 16 * MIB), 16 * MIB);
    ck_assert_uint_eq(mlreg_s3_part_size(100 * MIB, 0, 1, 1 * MIB), 8 * MIB);
}
END_TEST

START_TEST(test_s3_part_size_of_unknown_size_grows_so_ten_thousand_parts_reach_5tib)
{
    uint64_t total = 0, prev = 0, first = 0, p;
    unsigned int n;

    for (n = 1; n <= MLREG_S3_MAX_PARTS; n++) {
        p = mlreg_s3_part_size(-1, total, n, 0);
        if (n == 1) first = p;
        ck_assert_uint_ge(p, MLREG_S3_MIN_PART_SIZE);
        ck_assert_uint_le(p, MLREG_S3_MAX_PART_SIZE);
        ck_assert_uint_ge(p, prev); /* never shrinks */
        prev = p;
        total += p;
    }
    ck_assert_uint_eq(first, 8 * MIB);
    ck_assert_uint_eq(mlreg_s3_part_size(-1, 0, 1000, 0), 8 * MIB);
    ck_assert_uint_eq(mlreg_s3_part_size(-1, 0, 1001, 0), 16 * MIB);
    ck_assert_msg(total >= 5 * TIB, "10000 parts reach only %llu bytes", (unsigned long long)total);
}
END_TEST

START_TEST(test_s3_part_size_grows_when_a_size_hint_turns_out_too_small)
{
    /* hinted 10 MiB, but 100 GiB arrive: the unknown-size schedule takes over */
    ck_assert_uint_eq(mlreg_s3_part_size((int64_t)(10 * MIB), 0, 1, 0), 8 * MIB);
    ck_assert_uint_eq(mlreg_s3_part_size((int64_t)(10 * MIB), 11 * MIB, 2, 0), 8 * MIB);
    ck_assert_uint_eq(mlreg_s3_part_size((int64_t)(10 * MIB), 9 * GIB, 3001, 0), 64 * MIB);
}
END_TEST

/* ---- retry policy ---- */

START_TEST(test_s3_retry_policy_retries_5xx_429_and_throttling_codes_only)
{
    static const long yes[] = {500, 502, 503, 504, 429};
    static const long no[] = {200, 204, 301, 400, 401, 403, 404, 409, 412, 416, 501};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(mlreg_s3__status_is_retryable(yes[i], NULL), "%ld should retry", yes[i]);
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!mlreg_s3__status_is_retryable(no[i], NULL), "%ld should not retry", no[i]);
    ck_assert(mlreg_s3__status_is_retryable(503, "SlowDown"));
    ck_assert(mlreg_s3__status_is_retryable(400, "RequestTimeout"));
    ck_assert(mlreg_s3__status_is_retryable(200, "InternalError")); /* error inside a 200 */
    ck_assert(!mlreg_s3__status_is_retryable(403, "SignatureDoesNotMatch"));
    ck_assert(!mlreg_s3__status_is_retryable(403, "AccessDenied"));
    ck_assert(!mlreg_s3__status_is_retryable(404, "NoSuchKey"));
    ck_assert(!mlreg_s3__status_is_retryable(400, "EntityTooSmall"));
}
END_TEST

START_TEST(test_s3_retry_policy_retries_timeouts_and_resets_not_tls_or_usage_errors)
{
    ck_assert(mlreg_s3__curl_is_retryable(CURLE_OPERATION_TIMEDOUT));
    ck_assert(mlreg_s3__curl_is_retryable(CURLE_COULDNT_CONNECT));
    ck_assert(mlreg_s3__curl_is_retryable(CURLE_RECV_ERROR)); /* connection reset */
    ck_assert(mlreg_s3__curl_is_retryable(CURLE_SEND_ERROR));
    ck_assert(mlreg_s3__curl_is_retryable(CURLE_GOT_NOTHING));
    ck_assert(mlreg_s3__curl_is_retryable(CURLE_PARTIAL_FILE));
    ck_assert(!mlreg_s3__curl_is_retryable(CURLE_PEER_FAILED_VERIFICATION));
    ck_assert(!mlreg_s3__curl_is_retryable(CURLE_SSL_CACERT_BADFILE));
    ck_assert(!mlreg_s3__curl_is_retryable(CURLE_URL_MALFORMAT));
    ck_assert(!mlreg_s3__curl_is_retryable(CURLE_WRITE_ERROR)); /* our callback said stop */
    ck_assert(!mlreg_s3__curl_is_retryable(CURLE_ABORTED_BY_CALLBACK));
    ck_assert(!mlreg_s3__curl_is_retryable(CURLE_OK));
}
END_TEST

START_TEST(test_s3_backoff_is_full_jitter_under_a_doubling_ceiling_capped_at_max)
{
    unsigned int a, i;

    /* ceilings: 100, 200, 400, 800, 1600, 3200, then the 5000 cap */
    static const unsigned int ceil[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    for (a = 1; a <= 8; a++) {
        ck_assert_uint_eq(mlreg_s3__backoff_ms(a, 100, 5000, 0), 0);
        ck_assert_uint_eq(mlreg_s3__backoff_ms(a, 100, 5000, ceil[a - 1]), ceil[a - 1]);
        for (i = 0; i < 2000; i++) {
            uint32_t r = (uint32_t)(i * 2654435761u);
            ck_assert_uint_le(mlreg_s3__backoff_ms(a, 100, 5000, r), ceil[a - 1]);
        }
    }
    /* a huge attempt number neither overflows nor exceeds the cap */
    ck_assert_uint_le(mlreg_s3__backoff_ms(1000000, 100, 5000, 0xffffffffu), 5000);
    ck_assert_uint_le(mlreg_s3__backoff_ms(64, 0xffffffffu / 2, 0xffffffffu, 0xffffffffu),
                      0xffffffffu);
}
END_TEST

/* ---- S3 error XML ---- */

START_TEST(test_s3_error_message_names_method_key_status_code_and_request_id)
{
    /* radosgw sends an empty <Message> */
    static const char rgw[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code>"
        "<Message></Message><BucketName>mlreg-test</BucketName>"
        "<RequestId>tx0000012ab-0068a7-1001-default</RequestId><HostId>1001-default</HostId>"
        "</Error>";
    static const char aws[] = "<Error><Code>SlowDown</Code><Message>Please reduce your request "
                              "rate &amp; retry.</Message><RequestId>4442587FB7D0A2F9</RequestId>"
                              "</Error>";
    char msg[512];

    ck_assert_int_eq(mlreg_s3__error_from_response(msg, sizeof(msg), "PUT", "blobs/sha256/ab", 403,
                                                   rgw, strlen(rgw), NULL),
                     MLREG_EAUTH);
    ck_assert_str_eq(msg, "s3 PUT blobs/sha256/ab: 403 SignatureDoesNotMatch (request id "
                          "tx0000012ab-0068a7-1001-default)");
    ck_assert_int_eq(mlreg_s3__error_from_response(msg, sizeof(msg), "GET", "k", 503, aws,
                                                   strlen(aws), "ignored-header-id"),
                     MLREG_ESERVER);
    ck_assert_str_eq(msg, "s3 GET k: 503 SlowDown: Please reduce your request rate & retry. "
                          "(request id 4442587FB7D0A2F9)");
}
END_TEST

START_TEST(test_s3_error_codes_map_404_403_416_and_bodiless_responses)
{
    static const char nokey[] = "<Error><Code>NoSuchKey</Code></Error>";
    static const char nobucket[] = "<Error><Code>NoSuchBucket</Code></Error>";
    static const char denied[] = "<Error><Code>AccessDenied</Code></Error>";
    char msg[512];

    ck_assert_int_eq(mlreg_s3__error_from_response(msg, sizeof(msg), "GET", "k", 404, nokey,
                                                   strlen(nokey), NULL),
                     MLREG_ENOTFOUND);
    /* a missing bucket is a configuration error, never "blob not found" */
    ck_assert_int_eq(mlreg_s3__error_from_response(msg, sizeof(msg), "GET", "k", 404, nobucket,
                                                   strlen(nobucket), NULL),
                     MLREG_EIO);
    ck_assert_int_eq(mlreg_s3__error_from_response(msg, sizeof(msg), "GET", "k", 403, denied,
                                                   strlen(denied), NULL),
                     MLREG_EFORBIDDEN);
    ck_assert_int_eq(
        mlreg_s3__error_from_response(msg, sizeof(msg), "GET", "k", 416, NULL, 0, NULL),
        MLREG_ERANGE);
    /* HEAD has no body: the status and the header request id still show */
    ck_assert_int_eq(
        mlreg_s3__error_from_response(msg, sizeof(msg), "HEAD", "k", 404, NULL, 0, "tx-head"),
        MLREG_ENOTFOUND);
    ck_assert_str_eq(msg, "s3 HEAD k: 404 (no error code) (request id tx-head)");
    ck_assert_int_eq(
        mlreg_s3__error_from_response(msg, sizeof(msg), "HEAD", "k", 403, NULL, 0, NULL),
        MLREG_EAUTH);
    ck_assert_int_eq(
        mlreg_s3__error_from_response(msg, sizeof(msg), "HEAD", "k", 500, NULL, 0, NULL),
        MLREG_ESERVER);
}
END_TEST

START_TEST(test_s3_xml_text_decodes_entities_and_refuses_malformed_input)
{
    char out[64];
    static const char etag[] = "<CopyPartResult><ETag>&quot;9b2cf535f27731c974343645a3985328"
                               "&quot;</ETag></CopyPartResult>";

    ck_assert_int_eq(mlreg_s3__xml_text(out, sizeof(out), etag, strlen(etag), "ETag"), 34);
    ck_assert_str_eq(out, "\"9b2cf535f27731c974343645a3985328\"");
    ck_assert_int_eq(
        mlreg_s3__xml_text(out, sizeof(out), "<A>&#65;&#x42;&lt;&gt;&apos;</A>", 32, "A"), 5);
    ck_assert_str_eq(out, "AB<>'");
    ck_assert_int_eq(mlreg_s3__xml_text(out, sizeof(out), "<A>x</A>", 8, "B"), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_s3__xml_text(out, sizeof(out), "<A>unterminated", 15, "A"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_s3__xml_text(out, sizeof(out), "<A>a<b/>c</A>", 13, "A"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_s3__xml_text(out, sizeof(out), "<A>&bogus;</A>", 14, "A"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_s3__xml_text(out, sizeof(out), "<A>&amp</A>", 11, "A"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_s3__xml_text(out, 4, "<A>abcd</A>", 11, "A"), MLREG_EINVALID);
    /* <Key> is not found inside <KeyMarker> */
    ck_assert_int_eq(
        mlreg_s3__xml_text(out, sizeof(out), "<KeyMarker>m</KeyMarker><Key>k</Key>", 36, "Key"), 1);
    ck_assert_str_eq(out, "k");
    /* a NUL byte would cut the key short: refused, not passed on */
    ck_assert_int_eq(mlreg_s3__xml_text(out, sizeof(out), "<Key>p/a\0b</Key>", 16, "Key"),
                     MLREG_EINVALID);
    ck_assert_str_eq(out, "");
    /* the length bounds the search: nothing read past it */
    ck_assert_int_eq(mlreg_s3__xml_text(out, sizeof(out), "<A>x</A>", 6, "A"), MLREG_EINVALID);
}
END_TEST

START_TEST(test_s3_xml_next_walks_repeated_elements)
{
    static const char list[] =
        "<ListBucketResult><IsTruncated>false</IsTruncated>"
        "<Contents><Key>a</Key><Size>1</Size></Contents>"
        "<Contents><Key>b</Key><Size>22</Size></Contents></ListBucketResult>";
    const char *in;
    size_t in_len, pos = 0;
    char key[8], size[8];

    ck_assert_int_eq(mlreg_s3__xml_next(&in, &in_len, &pos, list, strlen(list), "Contents"), 1);
    ck_assert_int_eq(mlreg_s3__xml_text(key, sizeof(key), in, in_len, "Key"), 1);
    ck_assert_str_eq(key, "a");
    ck_assert_int_eq(mlreg_s3__xml_next(&in, &in_len, &pos, list, strlen(list), "Contents"), 1);
    ck_assert_int_eq(mlreg_s3__xml_text(size, sizeof(size), in, in_len, "Size"), 2);
    ck_assert_str_eq(size, "22");
    ck_assert_int_eq(mlreg_s3__xml_next(&in, &in_len, &pos, list, strlen(list), "Contents"), 0);
    pos = 0;
    ck_assert_int_eq(mlreg_s3__xml_next(&in, &in_len, &pos, "<C><K>", 6, "C"), MLREG_EINVALID);
}
END_TEST

/* ---- listing pages and results ---- */

struct seen {
    char keys[4][32];
    uint64_t sizes[4];
    int n, stop_at;
};

static int see_object(const char *key, uint64_t size, int64_t modified, void *p)
{
    struct seen *s = p;

    (void)modified;

    snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
    s->sizes[s->n] = size;
    return ++s->n == s->stop_at ? 42 : 0;
}

static int see_upload(const char *key, const char *id, int64_t initiated, void *p)
{
    struct seen *s = p;

    s->sizes[s->n] = (uint64_t)initiated;
    snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s %s", key, id);
    return 0;
}

START_TEST(test_s3_list_objects_page_gives_entries_in_order_and_the_next_token)
{
    static const char page1[] =
        "<ListBucketResult><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>tok&amp;1</NextContinuationToken>"
        "<Contents><Key>p/a</Key><Size>1</Size></Contents>"
        "<Contents><Key>p/b&lt;</Key><Size>22</Size></Contents></ListBucketResult>";
    static const char last[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                               "<Contents><Key>p/c</Key><Size>3</Size></Contents>"
                               "</ListBucketResult>";
    static mlreg_s3__objects_page page;
    struct seen s = {.stop_at = 0};

    ck_assert_int_eq(mlreg_s3__xml_list_objects(&page, page1, strlen(page1), "p/", see_object, &s),
                     0);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.keys[0], "p/a");
    ck_assert_str_eq(s.keys[1], "p/b<");
    ck_assert_uint_eq(s.sizes[1], 22);
    ck_assert_int_eq(page.truncated, 1);
    ck_assert_str_eq(page.next_token, "tok&1");
    ck_assert_int_eq(mlreg_s3__xml_list_objects(&page, last, strlen(last), "p/", see_object, &s),
                     0);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(page.truncated, 0);
    /* the callback's value stops the walk and comes back unchanged */
    s.n = 0;
    s.stop_at = 1;
    ck_assert_int_eq(mlreg_s3__xml_list_objects(&page, page1, strlen(page1), "p/", see_object, &s),
                     42);
    ck_assert_int_eq(s.n, 1);
}
END_TEST

START_TEST(test_s3_list_pages_refuse_bad_entries_and_truncation_without_a_marker)
{
    static const char bad_size[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                                   "<Contents><Key>k</Key><Size>-1</Size></Contents>"
                                   "</ListBucketResult>";
    static const char no_token[] = "<ListBucketResult><IsTruncated>true</IsTruncated>"
                                   "</ListBucketResult>";
    static const char no_flag[] = "<ListBucketResult></ListBucketResult>";
    static const char empty_id[] = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                                   "<Upload><Key>k</Key><UploadId></UploadId></Upload>"
                                   "</ListMultipartUploadsResult>";
    static const char no_markers[] = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                                     "<NextKeyMarker>k</NextKeyMarker>"
                                     "</ListMultipartUploadsResult>";
    static mlreg_s3__objects_page op;
    static mlreg_s3__uploads_page up;
    struct seen s = {.stop_at = 0};

    ck_assert_int_eq(
        mlreg_s3__xml_list_objects(&op, bad_size, strlen(bad_size), "p/", see_object, &s),
        MLREG_EIO);
    ck_assert_str_eq(mlreg_error_last(), "s3 list p/: malformed <Contents>");
    ck_assert_int_eq(
        mlreg_s3__xml_list_objects(&op, no_token, strlen(no_token), "p/", see_object, &s),
        MLREG_EIO);
    ck_assert_str_eq(mlreg_error_last(), "s3 list p/: truncated without a token");
    ck_assert_int_eq(
        mlreg_s3__xml_list_objects(&op, no_flag, strlen(no_flag), "p/", see_object, &s), MLREG_EIO);
    ck_assert_int_eq(
        mlreg_s3__xml_list_uploads(&up, empty_id, strlen(empty_id), "u/", see_upload, &s),
        MLREG_EIO);
    ck_assert_str_eq(mlreg_error_last(), "s3 list uploads u/: malformed <Upload>");
    ck_assert_int_eq(
        mlreg_s3__xml_list_uploads(&up, no_markers, strlen(no_markers), "u/", see_upload, &s),
        MLREG_EIO);
    ck_assert_str_eq(mlreg_error_last(), "s3 list uploads u/: truncated without markers");
    ck_assert_int_eq(s.n, 0);
}
END_TEST

START_TEST(test_s3_list_uploads_page_gives_keys_ids_start_times_and_both_markers)
{
    static const char page[] =
        "<ListMultipartUploadsResult><KeyMarker></KeyMarker><IsTruncated>true</IsTruncated>"
        "<NextKeyMarker>u/2</NextKeyMarker><NextUploadIdMarker>2~b</NextUploadIdMarker>"
        "<Upload><Key>u/1</Key><UploadId>2~a</UploadId>"
        "<Initiated>2026-12-04T22:10:05.123Z</Initiated></Upload>"
        "<Upload><Key>u/2</Key><UploadId>2~b</UploadId><Initiated>yesterday</Initiated></Upload>"
        "<Upload><Key>u/3</Key><UploadId>2~c</UploadId></Upload></ListMultipartUploadsResult>";
    static mlreg_s3__uploads_page up;
    struct seen s = {.stop_at = 0};

    ck_assert_int_eq(mlreg_s3__xml_list_uploads(&up, page, strlen(page), "u/", see_upload, &s), 0);
    ck_assert_int_eq(s.n, 3);
    ck_assert_str_eq(s.keys[0], "u/1 2~a");
    ck_assert_str_eq(s.keys[1], "u/2 2~b");
    ck_assert_str_eq(s.keys[2], "u/3 2~c");
    /* a start time that does not parse, or none, is 0: "unknown" */
    ck_assert_uint_eq(s.sizes[0], 1796422205u);
    ck_assert_uint_eq(s.sizes[1], 0);
    ck_assert_uint_eq(s.sizes[2], 0);
    ck_assert_int_eq(up.truncated, 1);
    ck_assert_str_eq(up.key_marker, "u/2");
    ck_assert_str_eq(up.id_marker, "2~b");
}
END_TEST

START_TEST(test_s3_results_give_upload_id_and_etag_and_spot_an_error_inside_a_200)
{
    static const char init[] = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
                               "<UploadId>2~xyz</UploadId></InitiateMultipartUploadResult>";
    static const char copy[] = "<CopyPartResult><ETag>&quot;abc&quot;</ETag></CopyPartResult>";
    static const char err200[] = "<?xml version=\"1.0\"?>\n\n<Error><Code>InternalError</Code>"
                                 "</Error>";
    static const char done[] = "<CompleteMultipartUploadResult><ETag>&quot;e-2&quot;</ETag>"
                               "</CompleteMultipartUploadResult>";
    char out[64];

    ck_assert_int_eq(mlreg_s3__xml_initiate_result(out, sizeof(out), init, strlen(init)), 5);
    ck_assert_str_eq(out, "2~xyz");
    ck_assert_int_eq(mlreg_s3__xml_copy_part_result(out, sizeof(out), copy, strlen(copy)), 5);
    ck_assert_str_eq(out, "\"abc\"");
    ck_assert_int_eq(mlreg_s3__xml_is_error(err200, strlen(err200)), 1);
    ck_assert_int_eq(mlreg_s3__xml_is_error(done, strlen(done)), 0);
    /* bounded by the length given */
    ck_assert_int_eq(mlreg_s3__xml_is_error(err200, 25), 0);
    ck_assert_int_eq(mlreg_s3__xml_is_error(NULL, 0), 0);
}
END_TEST

/* ---- layout and URLs ---- */

START_TEST(test_s3_blob_key_is_prefix_blobs_sha256_and_64_hex)
{
    mlreg_digest d;
    char *key = NULL;

    ck_assert_int_eq(mlreg_digest_buffer(&d, "abc", 3), 0);
    ck_assert_int_eq(mlreg_s3_blob_key(&key, "prod/", &d), 0);
    ck_assert_str_eq(key, "prod/blobs/sha256/"
                          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(key);
    ck_assert_int_eq(mlreg_s3_blob_key(&key, "", &d), 0);
    ck_assert_str_eq(key, "blobs/sha256/"
                          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(key);
}
END_TEST

START_TEST(test_s3_presigned_urls_follow_the_addressing_style)
{
    mlreg_s3_config c = {0};
    mlreg_s3 *s3 = NULL;
    char *url = NULL;

    c.endpoint = "https://s3.amazonaws.com";
    c.bucket = "examplebucket";
    c.access_key = "AKIAIOSFODNN7EXAMPLE";
    c.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    ck_assert_int_eq(mlreg_s3_new(&s3, &c), 0);
    ck_assert_int_eq(mlreg_s3_presign_get(&url, s3, "blobs/sha256/ab", 300), 0);
    ck_assert_msg(strncmp(url,
                          "https://examplebucket.s3.amazonaws.com/blobs/sha256/ab?"
                          "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                          "AKIAIOSFODNN7EXAMPLE%2F",
                          110) == 0,
                  "%s", url);
    ck_assert_ptr_nonnull(strstr(url, "%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date="));
    ck_assert_ptr_nonnull(strstr(url, "&X-Amz-Expires=300&X-Amz-SignedHeaders=host&"
                                      "X-Amz-Signature="));
    free(url);
    ck_assert_int_eq(mlreg_s3_presign_get(&url, s3, "k", 604801), MLREG_EINVALID);
    mlreg_s3_free(s3);

    c.endpoint = "http://127.0.0.1:7480";
    c.path_style = 1;
    ck_assert_int_eq(mlreg_s3_new(&s3, &c), 0);
    ck_assert_int_eq(mlreg_s3_presign_get(&url, s3, "a b/c", 60), 0);
    ck_assert_msg(strncmp(url, "http://127.0.0.1:7480/examplebucket/a%20b/c?", 44) == 0, "%s", url);
    free(url);
    mlreg_s3_free(s3);
}
END_TEST

START_TEST(test_s3_new_refuses_bad_endpoints_and_missing_credentials)
{
    mlreg_s3_config c = {0};
    mlreg_s3 *s3 = NULL;

    c.bucket = "b";
    c.access_key = "a";
    c.secret_key = "s";
    c.endpoint = "ftp://x";
    ck_assert_int_eq(mlreg_s3_new(&s3, &c), MLREG_EINVALID);
    c.endpoint = "http://host/path";
    ck_assert_int_eq(mlreg_s3_new(&s3, &c), MLREG_EINVALID);
    c.endpoint = "http://host";
    c.part_size = 1 << 20;
    ck_assert_int_eq(mlreg_s3_new(&s3, &c), MLREG_EINVALID);
    c.part_size = 0;
    c.presign_seconds = 604801;
    ck_assert_int_eq(mlreg_s3_new(&s3, &c), MLREG_EINVALID);
    c.presign_seconds = 0;
    c.secret_key = NULL;
    unsetenv("AWS_SECRET_ACCESS_KEY");
    ck_assert_int_eq(mlreg_s3_new(&s3, &c), MLREG_EINVALID);
    ck_assert_ptr_null(s3);
    setenv("AWS_SECRET_ACCESS_KEY", "from-env", 1);
    ck_assert_int_eq(mlreg_s3_new(&s3, &c), 0);
    mlreg_s3_free(s3);
    mlreg_s3_free(NULL);
}
END_TEST

static Suite *s3_suite(void)
{
    Suite *s = suite_create("s3");
    TCase *t = tcase_create("logic");

    tcase_add_test(t, test_s3_part_size_with_a_known_size_is_max_of_8mib_and_a_ten_thousandth);
    tcase_add_test(t, test_s3_part_size_of_unknown_size_grows_so_ten_thousand_parts_reach_5tib);
    tcase_add_test(t, test_s3_part_size_grows_when_a_size_hint_turns_out_too_small);
    tcase_add_test(t, test_s3_retry_policy_retries_5xx_429_and_throttling_codes_only);
    tcase_add_test(t, test_s3_retry_policy_retries_timeouts_and_resets_not_tls_or_usage_errors);
    tcase_add_test(t, test_s3_backoff_is_full_jitter_under_a_doubling_ceiling_capped_at_max);
    tcase_add_test(t, test_s3_error_message_names_method_key_status_code_and_request_id);
    tcase_add_test(t, test_s3_error_codes_map_404_403_416_and_bodiless_responses);
    tcase_add_test(t, test_s3_xml_text_decodes_entities_and_refuses_malformed_input);
    tcase_add_test(t, test_s3_xml_next_walks_repeated_elements);
    tcase_add_test(t, test_s3_list_objects_page_gives_entries_in_order_and_the_next_token);
    tcase_add_test(t, test_s3_list_pages_refuse_bad_entries_and_truncation_without_a_marker);
    tcase_add_test(t, test_s3_list_uploads_page_gives_keys_ids_start_times_and_both_markers);
    tcase_add_test(t, test_s3_results_give_upload_id_and_etag_and_spot_an_error_inside_a_200);
    tcase_add_test(t, test_s3_blob_key_is_prefix_blobs_sha256_and_64_hex);
    tcase_add_test(t, test_s3_presigned_urls_follow_the_addressing_style);
    tcase_add_test(t, test_s3_new_refuses_bad_endpoints_and_missing_credentials);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s3_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
