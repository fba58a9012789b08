/* check_s3_backend.c: the backend contract (blob_contract.inc) and S3-only
 * behaviour against a real S3 endpoint: the Ceph RADOS Gateway that the s3
 * part of tests/run.sh starts (tests/s3/rgw.sh) and describes in the
 * environment (S3_ENDPOINT, S3_REGION, S3_BUCKET, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY). Without that environment every test FAILS: this
 * binary belongs to the s3 part, which always provides it.
 *
 * Each test works under its own random prefix in the shared bucket and
 * deletes everything under it afterwards. */
#include "mlreg/blob.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/s3.h"
#include "mlreg/sigv4.h"
#include "mlreg/sys/blob_backend.h"
#include "../../storage/s3_internal.h"

#include <check.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define EMPTY_HASH_FOR_TEST "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char prefix[64];
static char upload_prefix[80];
static mlreg_s3_config cfg;
static mlreg_s3 *admin; /* a plain client for looking behind the backend */
static mlreg_blob_backend *backend;

static void load_env(void)
{
    const char *need[] = {"S3_ENDPOINT", "S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"};
    size_t i;

    for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        ck_assert_msg(getenv(need[i]) != NULL && getenv(need[i])[0] != '\0',
                      "%s is not set: check_s3_backend runs in the s3 part of tests/run.sh, "
                      "which starts RGW (tests/s3/rgw.sh) and exports its env",
                      need[i]);
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoint = getenv("S3_ENDPOINT");
    cfg.region = getenv("S3_REGION");
    cfg.bucket = getenv("S3_BUCKET");
    cfg.path_style = 1;
    cfg.retry_base_ms = 20;
    cfg.retry_max_ms = 200;
}

static void new_prefix(void)
{
    unsigned char r[6];

    ck_assert_int_eq(getrandom(r, sizeof(r), 0), (ssize_t)sizeof(r));
    snprintf(prefix, sizeof(prefix), "t%02x%02x%02x%02x%02x%02x/", r[0], r[1], r[2], r[3], r[4],
             r[5]);
    snprintf(upload_prefix, sizeof(upload_prefix), "%suploads/", prefix);
}

static mlreg_blob_backend *contract_backend_new(void)
{
    mlreg_blob_backend *b = NULL;

    load_env();
    new_prefix();
    cfg.prefix = prefix;
    ck_assert_msg(mlreg_s3_new(&admin, &cfg) == 0, "%s", mlreg_error_last());
    ck_assert_msg(mlreg_blob_backend_s3_new(&b, &cfg) == 0, "%s", mlreg_error_last());
    ck_assert(b->presign != NULL);
    backend = b;
    return b;
}

static int delete_cb(const char *key, uint64_t size, int64_t modified, void *p)
{
    (void)modified;
    (void)size;
    return mlreg_s3_delete(p, key);
}

static void contract_backend_destroy(void)
{
    if (admin == NULL) return;
    mlreg_s3_abort_uploads(NULL, admin, prefix);
    mlreg_s3_list(admin, prefix, delete_cb, admin);
    mlreg_s3_free(admin);
    admin = NULL;
    backend = NULL;
}

static int count_upload(const char *key, const char *id, int64_t initiated, void *p)
{
    (void)initiated;
    (void)key;
    (void)id;
    ++*(int *)p;
    return 0;
}

static int count_object(const char *key, uint64_t size, int64_t modified, void *p)
{
    (void)modified;
    (void)key;
    (void)size;
    ++*(int *)p;
    return 0;
}

/* Open multipart uploads anywhere under the prefix, plus temp objects. */
static int contract_leftovers(void)
{
    int n = 0;

    ck_assert_msg(mlreg_s3_list_uploads(admin, prefix, count_upload, &n) == 0, "%s",
                  mlreg_error_last());
    ck_assert_msg(mlreg_s3_list(admin, upload_prefix, count_object, &n) == 0, "%s",
                  mlreg_error_last());
    return n;
}

static void contract_damage(const mlreg_digest *d, const void *data, size_t len)
{
    char *key = NULL;

    ck_assert_int_eq(mlreg_s3_blob_key(&key, prefix, d), 0);
    ck_assert_msg(mlreg_s3_put(admin, key, data, len, NULL) == 0, "%s", mlreg_error_last());
    free(key);
}

#include "blob_contract.inc"

/* ---- S3-only behaviour ---- */

START_TEST(test_s3_objects_are_stored_under_prefix_blobs_sha256_hex)
{
    mlreg_digest d;
    char hex[MLREG_DIGEST_HEXLEN + 1], key[256];
    uint64_t size = 0;

    ck_assert_int_eq(put_bytes(&d, "layout", 6), 0);
    mlreg_digest_hex(hex, &d);
    snprintf(key, sizeof(key), "%sblobs/sha256/%s", prefix, hex);
    ck_assert_msg(mlreg_s3_head(&size, admin, key) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(size, 6);
}
END_TEST

START_TEST(test_s3_wrong_secret_fails_at_construction_naming_status_and_code)
{
    mlreg_s3_config bad;
    mlreg_blob_backend *b = NULL;
    int rc;

    bad = cfg;
    bad.access_key = getenv("AWS_ACCESS_KEY_ID");
    bad.secret_key = "not-the-secret-key-at-all-000000000000000";
    rc = mlreg_blob_backend_s3_new(&b, &bad);
    ck_assert_int_eq(rc, MLREG_EAUTH);
    ck_assert_ptr_null(b);
    ck_assert_msg(strstr(mlreg_error_last(), "403 SignatureDoesNotMatch") != NULL, "message: %s",
                  mlreg_error_last());
    ck_assert_msg(strstr(mlreg_error_last(), "request id") != NULL, "message: %s",
                  mlreg_error_last());
    ck_assert_msg(strstr(mlreg_error_last(), bad.secret_key) == NULL, "secret in message");
}
END_TEST

START_TEST(test_s3_head_on_an_unreachable_endpoint_is_an_error_not_missing)
{
    mlreg_s3_config c = cfg;
    mlreg_s3 *s3 = NULL;
    int rc;

    c.endpoint = "http://127.0.0.1:1";
    c.max_attempts = 2;
    ck_assert_int_eq(mlreg_s3_new(&s3, &c), 0);
    rc = mlreg_s3_head(NULL, s3, "blobs/sha256/whatever");
    ck_assert_int_eq(rc, MLREG_EUNREACHABLE);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "s3 HEAD blobs/sha256/whatever"));
    mlreg_s3_free(s3);
}
END_TEST

struct sink {
    char buf[4096];
    size_t len;
};

static int sink_cb(const void *data, size_t len, void *p)
{
    struct sink *s = p;

    ck_assert_uint_le(s->len + len, sizeof(s->buf));
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return 0;
}

START_TEST(test_s3_get_passes_a_range_through)
{
    char key[128];
    struct sink s = {{0}, 0};

    snprintf(key, sizeof(key), "%srange-test", prefix);
    ck_assert_int_eq(mlreg_s3_put(admin, key, "0123456789", 10, NULL), 0);
    ck_assert_msg(mlreg_s3_get(admin, key, "bytes=2-5", sink_cb, &s) == 0, "%s",
                  mlreg_error_last());
    ck_assert_uint_eq(s.len, 4);
    ck_assert(memcmp(s.buf, "2345", 4) == 0);
    s.len = 0;
    ck_assert_int_eq(mlreg_s3_get(admin, key, "bytes=100-200", sink_cb, &s), MLREG_ERANGE);
    ck_assert_int_eq(mlreg_s3_get(admin, "no/such/key", NULL, sink_cb, &s), MLREG_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "404 NoSuchKey"));
}
END_TEST

START_TEST(test_s3_put_with_a_wrong_payload_hash_is_refused_by_the_server)
{
    char key[128];
    uint64_t size;

    snprintf(key, sizeof(key), "%shash-test", prefix);
    ck_assert_int_lt(mlreg_s3_put(admin, key, "abc", 3, EMPTY_HASH_FOR_TEST), 0);
    ck_assert_int_eq(mlreg_s3_head(&size, admin, key), MLREG_ENOTFOUND);
}
END_TEST

static size_t curl_sink(char *data, size_t size, size_t n, void *p)
{
    struct sink *s = p;
    size_t len = size * n;

    if (s->len + len > sizeof(s->buf)) return 0;
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return len;
}

/* GETs @p url with no credentials at all; returns the HTTP status. */
static long plain_get(const char *url, struct sink *s)
{
    CURL *c = curl_easy_init();
    long status = 0;

    ck_assert_ptr_nonnull(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

START_TEST(test_s3_presigned_url_is_fetched_by_plain_curl_and_tampering_is_refused)
{
    mlreg_digest d;
    char *url = NULL, *sig;
    struct sink s = {{0}, 0};

    ck_assert_int_eq(put_bytes(&d, "presigned bytes", 15), 0);
    ck_assert_int_eq(backend->presign(&url, backend, &d, 60), 0);
    ck_assert_ptr_nonnull(strstr(url, "X-Amz-Expires=60&"));
    ck_assert_int_eq(plain_get(url, &s), 200);
    ck_assert_uint_eq(s.len, 15);
    ck_assert(memcmp(s.buf, "presigned bytes", 15) == 0);
    /* one flipped signature digit: refused */
    sig = strstr(url, "X-Amz-Signature=") + 16;
    *sig = *sig == '0' ? '1' : '0';
    s.len = 0;
    ck_assert_int_eq(plain_get(url, &s), 403);
    free(url);
    ck_assert_int_eq(backend->presign(&url, backend, &d, MLREG_SIGV4_MAX_EXPIRES + 1),
                     MLREG_EINVALID);
}
END_TEST

START_TEST(test_s3_construction_aborts_stale_uploads_and_removes_temp_objects)
{
    mlreg_s3_upload *u = NULL;
    mlreg_blob_backend *b = NULL;
    char key[128];

    /* what a crash mid-upload, or between complete and delete, leaves */
    snprintf(key, sizeof(key), "%sstale-upload", upload_prefix);
    ck_assert_int_eq(mlreg_s3_upload_begin(&u, admin, key), 0);
    snprintf(key, sizeof(key), "%sstale-object", upload_prefix);
    ck_assert_int_eq(mlreg_s3_put(admin, key, "x", 1, NULL), 0);
    ck_assert_int_eq(contract_leftovers(), 2);
    ck_assert_int_eq(mlreg_blob_backend_s3_new(&b, &cfg), 0);
    ck_assert_int_eq(contract_leftovers(), 0);
    b->free(b);
    /* the handle of the aborted upload can still be freed */
    mlreg_s3_upload_abort(u);
}
END_TEST

START_TEST(test_s3_construction_leaves_other_nodes_live_writes_alone)
{
    mlreg_blob_writer *w = NULL;
    mlreg_blob_backend *b = NULL;
    unsigned char *buf = malloc(9u << 20);

    /* a write in progress (multipart, past one part) on a node sharing the prefix */
    ck_assert_ptr_nonnull(buf);
    fill(buf, 9u << 20, 0, 21);
    ck_assert_int_eq(mlreg_blobstore_open_write(&w, store, -1), 0);
    ck_assert_int_eq(mlreg_blob_writer_write(w, buf, 9u << 20), 0);
    ck_assert_int_eq(contract_leftovers(), 1);
    /* another node starts: the live write stays */
    ck_assert_msg(mlreg_blob_backend_s3_new(&b, &cfg) == 0, "%s", mlreg_error_last());
    b->free(b);
    ck_assert_int_eq(contract_leftovers(), 1);
    ck_assert_int_eq(mlreg_blob_writer_write(w, buf, 1u << 20), 0);
    ck_assert_msg(mlreg_blob_writer_commit(NULL, w, NULL, -1) == 0, "%s", mlreg_error_last());
    ck_assert_int_eq(contract_leftovers(), 0);
    /* and one past the stale age goes */
    ck_assert_int_eq(mlreg_blobstore_open_write(&w, store, -1), 0);
    ck_assert_int_eq(mlreg_blob_writer_write(w, buf, 9u << 20), 0);
    ck_assert_int_eq(contract_leftovers(), 1);
    sleep(2);
    mlreg_s3__set_stale_write_seconds(0);
    ck_assert_msg(mlreg_blob_backend_s3_new(&b, &cfg) == 0, "%s", mlreg_error_last());
    mlreg_s3__set_stale_write_seconds(MLREG_S3_STALE_WRITE_SECONDS);
    b->free(b);
    ck_assert_int_eq(contract_leftovers(), 0);
    mlreg_blob_writer_abort(w);
    free(buf);
}
END_TEST

START_TEST(test_s3_blob_over_the_copy_threshold_goes_through_multipart_copy)
{
    mlreg_blob_backend *b = NULL;
    mlreg_s3_config c = cfg;
    mlreg_digest d;
    uint64_t len = (21u << 20) + 7;

    mlreg_blobstore_free(store);
    ck_assert_int_eq(mlreg_blob_backend_s3_new(&b, &c), 0);
    /* the 5 GiB CopyObject limit, lowered so a small blob takes the path
     * that objects over 5 GiB take */
    mlreg_s3__set_copy_threshold(mlreg_s3__backend_client(b), 8u << 20);
    ck_assert_int_eq(mlreg_blobstore_new(&store, b), 0);
    ck_assert_msg(put_generated(&d, len, 9, 1u << 20, -1) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(read_check_generated(&d, 9), len);
    ck_assert_int_eq(contract_leftovers(), 0);
}
END_TEST

/* Readiness probes may come every second from every load balancer: the
 * check lists the store once, then answers from its cache, and never
 * through the client that blobs and the log use. */
START_TEST(test_s3_check_asks_the_store_once_per_cache_period)
{
    mlreg_blob_backend *b = NULL;
    mlreg_s3_config c = cfg;
    mlreg_s3_counts main_before, main_after, probe;
    char reason[128];

    mlreg_blobstore_free(store);
    store = NULL;
    ck_assert_int_eq(mlreg_blob_backend_s3_new(&b, &c), 0);
    ck_assert_int_eq(mlreg_blobstore_new(&store, b), 0);
    mlreg_s3_counts_get(&main_before, mlreg_s3__backend_client(b));
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(mlreg_blobstore_check(reason, sizeof(reason), store) == 0, "%s",
                      mlreg_error_last());
        ck_assert_str_eq(reason, "");
    }
    mlreg_s3_counts_get(&probe, mlreg_s3__backend_check_client(b));
    mlreg_s3_counts_get(&main_after, mlreg_s3__backend_client(b));
    ck_assert_uint_eq(probe.list, 1);
    ck_assert_uint_eq(probe.get + probe.put + probe.head + probe.del, 0);
    ck_assert_uint_eq(main_after.list, main_before.list);
    ck_assert_uint_eq(main_after.get, main_before.get);
}
END_TEST

/* Streams @p mib MiB of unknown size through a fresh backend in a child and
 * returns the child's peak RSS growth in KiB (or -1 on failure). */
static long rss_growth_kib(unsigned int mib, unsigned int in_flight)
{
    int fds[2];
    pid_t pid;
    long growth = -1;
    int status = 0;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        mlreg_s3_config c = cfg;
        mlreg_blob_backend *b = NULL;
        mlreg_blobstore *st = NULL;
        mlreg_blob_writer *w = NULL;
        static unsigned char buf[1u << 20];
        struct rusage ru;
        long before, after;
        unsigned int i;

        close(fds[0]);
        c.parts_in_flight = in_flight;
        if (mlreg_blob_backend_s3_new(&b, &c) < 0 || mlreg_blobstore_new(&st, b) < 0) _exit(2);
        memset(buf, 1, sizeof(buf));
        getrusage(RUSAGE_SELF, &ru);
        before = ru.ru_maxrss;
        if (mlreg_blobstore_open_write(&w, st, -1) < 0) _exit(3);
        for (i = 0; i < mib; i++) {
            buf[0] = (unsigned char)i;
            if (mlreg_blob_writer_write(w, buf, sizeof(buf)) < 0) _exit(4);
        }
        if (mlreg_blob_writer_commit(NULL, w, NULL, -1) < 0) _exit(5);
        getrusage(RUSAGE_SELF, &ru);
        after = ru.ru_maxrss;
        mlreg_blobstore_free(st);
        growth = after - before;
        if (write(fds[1], &growth, sizeof(growth)) != (ssize_t)sizeof(growth)) _exit(6);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], &growth, sizeof(growth)) != (ssize_t)sizeof(growth)) growth = -1;
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit %d",
                  WEXITSTATUS(status));
    return growth;
}

START_TEST(test_s3_upload_memory_is_bounded_by_parts_in_flight_not_blob_size)
{
    long g = rss_growth_kib(200, 2);

    /* 2 parts x 8 MiB = 16 MiB of buffers, plus slack for libcurl, the
     * allocator and ASan's shadow memory (about 17 MiB measured in a plain
     * build, 40 MiB under ASan). Buffering the blob would take 200 MiB. */
    fprintf(stderr, "s3 upload of 200 MiB, 2 parts in flight: peak RSS grew %ld KiB\n", g);
    ck_assert_int_ge(g, 0);
    ck_assert_int_lt(g, 64 * 1024);
}
END_TEST

/* Runs a shell command line; returns its exit status (-1 when it did not exit). */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *root_dir(void)
{
    const char *r = getenv("MLREG_ROOT");
    return r ? r : ".";
}

START_TEST(test_s3_objects_are_listed_and_downloaded_byte_identical_by_the_aws_cli)
{
    mlreg_digest d;
    char hex[MLREG_DIGEST_HEXLEN + 1], tmp[] = "/tmp/mlreg-awscli-XXXXXX";
    char *url = NULL;
    uint64_t len = (18u << 20) + 1;

    ck_assert_msg(put_generated(&d, len, 11, 1u << 20, -1) == 0, "%s", mlreg_error_last());
    mlreg_digest_hex(hex, &d);
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    /* an independent client: the Debian AWS CLI (not a bare `aws`) */
    ck_assert_int_eq(sh("/usr/bin/aws --endpoint-url '%s' --region '%s' s3api list-objects-v2 "
                        "--bucket '%s' --prefix '%sblobs/sha256/' --query 'Contents[].Key' "
                        "--output text > '%s/list' 2>'%s/err'",
                        cfg.endpoint, cfg.region ? cfg.region : "us-east-1", cfg.bucket, prefix,
                        tmp, tmp),
                     0);
    ck_assert_int_eq(sh("grep -q '%sblobs/sha256/%s' '%s/list'", prefix, hex, tmp), 0);
    ck_assert_int_eq(sh("/usr/bin/aws --endpoint-url '%s' --region '%s' s3 cp "
                        "'s3://%s/%sblobs/sha256/%s' '%s/blob' >'%s/err' 2>&1",
                        cfg.endpoint, cfg.region ? cfg.region : "us-east-1", cfg.bucket, prefix,
                        hex, tmp, tmp),
                     0);
    ck_assert_int_eq(sh("test \"$(sha256sum < '%s/blob' | cut -c1-64)\" = '%s'", tmp, hex), 0);
    /* and a presigned URL by plain command-line curl, no credentials */
    ck_assert_int_eq(backend->presign(&url, backend, &d, 120), 0);
    ck_assert_int_eq(sh("env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY /usr/bin/curl -sSf "
                        "-o '%s/viaurl' '%s'",
                        tmp, url),
                     0);
    ck_assert_int_eq(sh("test \"$(sha256sum < '%s/viaurl' | cut -c1-64)\" = '%s'", tmp, hex), 0);
    free(url);
    sh("rm -rf '%s'", tmp);
}
END_TEST

START_TEST(test_s3_endpoint_killed_mid_upload_fails_clearly_and_a_retry_after_restart_succeeds)
{
    const char *dir = getenv("RGW_DIR");
    mlreg_blob_writer *w = NULL;
    mlreg_blob_backend *b = NULL;
    mlreg_digest d;
    unsigned char *buf = malloc(1u << 20);
    int rc = 0, i, restarted;
    uint64_t len = 40u << 20;
    char msg[512];
    struct seen none = {0};

    ck_assert_msg(dir != NULL, "RGW_DIR is not set: this test runs in the s3 part of "
                               "tests/run.sh, which can kill and restart its RGW");
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(mlreg_blobstore_open_write(&w, store, -1), 0);
    for (i = 0; i < 40 && rc == 0; i++) {
        if (i == 20)
            ck_assert_int_eq(
                sh("sh '%s/tests/s3/rgw.sh' kill-rgw '%s' >/dev/null 2>&1", root_dir(), dir), 0);
        fill(buf, 1u << 20, (uint64_t)i << 20, 12);
        rc = mlreg_blob_writer_write(w, buf, 1u << 20);
    }
    if (rc == 0) {
        rc = mlreg_blob_writer_commit(NULL, w, NULL, -1);
        snprintf(msg, sizeof(msg), "%s", mlreg_error_last());
    } else {
        snprintf(msg, sizeof(msg), "%s", mlreg_error_last());
        mlreg_blob_writer_abort(w); /* its DELETE fails too: the endpoint is down */
    }
    /* bring the endpoint back before asserting, so later tests have it; in
     * a new session, because Check kills this test's process group when the
     * test ends, and the restarted radosgw would go with it */
    restarted =
        sh("setsid -w sh '%s/tests/s3/rgw.sh' restart-rgw '%s' >/dev/null 2>&1", root_dir(), dir);
    ck_assert_int_eq(restarted, 0);
    ck_assert_msg(rc == MLREG_EUNREACHABLE, "got %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, "s3 PUT ") != NULL || strstr(msg, "s3 POST ") != NULL, "message: %s",
                  msg);
    ck_assert_msg(strstr(msg, "connect") != NULL, "message: %s", msg);

    /* nothing is visible; the upload the dead endpoint could not abort is
     * cleaned up by the next start once it is stale (here at once) */
    mlreg_blobstore_free(store);
    store = NULL;
    mlreg_s3__set_stale_write_seconds(-1);
    rc = mlreg_blob_backend_s3_new(&b, &cfg);
    mlreg_s3__set_stale_write_seconds(MLREG_S3_STALE_WRITE_SECONDS);
    ck_assert_msg(rc == 0, "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_blobstore_new(&store, b), 0);
    ck_assert_int_eq(contract_leftovers(), 0);
    ck_assert_int_eq(mlreg_blobstore_foreach(store, collect, &none), 0);
    ck_assert_int_eq(none.n, 0);
    ck_assert_msg(put_generated(&d, len, 12, 1u << 20, -1) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(read_check_generated(&d, 12), len);
    ck_assert_int_eq(contract_leftovers(), 0);
    free(buf);
}
END_TEST

/* Waits until the endpoint answers again (after a restart in the background). */
static void wait_endpoint(mlreg_s3 *s3)
{
    int i, rc = -1;
    uint64_t size;

    for (i = 0; i < 300 && rc != MLREG_ENOTFOUND; i++) {
        rc = mlreg_s3_head(&size, s3, "no/such/key");
        if (rc != MLREG_ENOTFOUND) usleep(100000);
    }
    ck_assert_msg(rc == MLREG_ENOTFOUND, "endpoint did not come back: %s", mlreg_error_last());
}

START_TEST(test_s3_reader_cut_mid_stream_resumes_with_a_range_after_the_endpoint_returns)
{
    const char *dir = getenv("RGW_DIR");
    mlreg_s3_config c = cfg;
    mlreg_s3 *patient = NULL;
    mlreg_s3_reader *r = NULL;
    size_t len = 40u << 20, off = 0;
    unsigned char *data = malloc(len), *back = malloc(len);
    char key[128];
    uint64_t size = 0;
    long n;

    ck_assert_msg(dir != NULL, "RGW_DIR is not set: this test runs in the s3 part of "
                               "tests/run.sh, which can kill and restart its RGW");
    ck_assert(data != NULL && back != NULL);
    fill(data, len, 0, 13);
    snprintf(key, sizeof(key), "%sresume-test", prefix);
    ck_assert_msg(mlreg_s3_put(admin, key, data, len, NULL) == 0, "%s", mlreg_error_last());
    c.max_attempts = 20;
    c.retry_base_ms = 200;
    c.retry_max_ms = 1000;
    c.retry_total_ms = 60000;
    ck_assert_int_eq(mlreg_s3_new(&patient, &c), 0);
    ck_assert_msg(mlreg_s3_reader_open(&r, &size, patient, key) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(size, len);
    while (off < (2u << 20) && (n = mlreg_s3_reader_read(r, back + off, 65536)) > 0)
        off += (size_t)n;
    /* the endpoint dies with 38 MiB unsent, more than socket buffers hold,
     * and comes back a few seconds later */
    ck_assert_int_eq(sh("sh '%s/tests/s3/rgw.sh' kill-rgw '%s' >/dev/null 2>&1", root_dir(), dir),
                     0);
    ck_assert_int_eq(
        sh("setsid sh '%s/tests/s3/rgw.sh' restart-rgw '%s' >/dev/null 2>&1 &", root_dir(), dir),
        0);
    while (off < len && (n = mlreg_s3_reader_read(r, back + off, len - off)) > 0)
        off += (size_t)n;
    wait_endpoint(admin);
    ck_assert_msg(off == len, "read %zu of %zu: %s", off, len, mlreg_error_last());
    ck_assert_int_eq(mlreg_s3_reader_read(r, back, 1), 0);
    ck_assert(memcmp(back, data, len) == 0);
    mlreg_s3_reader_free(r);
    mlreg_s3_free(patient);
    free(data);
    free(back);
}
END_TEST

static Suite *s3_backend_suite(void)
{
    Suite *s = suite_create("s3_backend");
    TCase *contract = tcase_create("contract");
    TCase *only = tcase_create("s3");

    tcase_set_timeout(contract, 300);
    contract_add_tests(contract);
    suite_add_tcase(s, contract);

    tcase_set_timeout(only, 300);
    tcase_add_checked_fixture(only, contract_setup, contract_teardown);
    tcase_add_test(only, test_s3_objects_are_stored_under_prefix_blobs_sha256_hex);
    tcase_add_test(only, test_s3_wrong_secret_fails_at_construction_naming_status_and_code);
    tcase_add_test(only, test_s3_head_on_an_unreachable_endpoint_is_an_error_not_missing);
    tcase_add_test(only, test_s3_get_passes_a_range_through);
    tcase_add_test(only, test_s3_put_with_a_wrong_payload_hash_is_refused_by_the_server);
    tcase_add_test(only, test_s3_presigned_url_is_fetched_by_plain_curl_and_tampering_is_refused);
    tcase_add_test(only, test_s3_construction_aborts_stale_uploads_and_removes_temp_objects);
    tcase_add_test(only, test_s3_construction_leaves_other_nodes_live_writes_alone);
    tcase_add_test(only, test_s3_blob_over_the_copy_threshold_goes_through_multipart_copy);
    tcase_add_test(only, test_s3_check_asks_the_store_once_per_cache_period);
    tcase_add_test(only, test_s3_upload_memory_is_bounded_by_parts_in_flight_not_blob_size);
    tcase_add_test(only, test_s3_objects_are_listed_and_downloaded_byte_identical_by_the_aws_cli);
    tcase_add_test(
        only, test_s3_endpoint_killed_mid_upload_fails_clearly_and_a_retry_after_restart_succeeds);
    tcase_add_test(only,
                   test_s3_reader_cut_mid_stream_resumes_with_a_range_after_the_endpoint_returns);
    suite_add_tcase(s, only);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    sr = srunner_create(s3_backend_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
