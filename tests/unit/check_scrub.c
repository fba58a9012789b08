/* check_scrub.c: mlreg_registry_scrub() on a real registry (fs backend,
 * LMDB): blobs damaged on disk the way a disk damages them (a flipped byte,
 * a lost file) are found, named with the releases that use them, and the
 * damaged ones moved aside so that the next push stores them again; the
 * model filter, the dry run, the rate limit and the stop request; the audit
 * entry a finding records. Its replay is in check_replay.c. */
#include "mlreg/audit.h"
#include "mlreg/blob.h"
#include "mlreg/common.h"
#include "mlreg/oci.h"
#include "mlreg/registry.h"
#include "mlreg/scrub.h"
#include "mlreg/sign.h"
#include "mlreg/signatures.h"

#include "helpers.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODEL "team/clf"
#define OTHER "team/other"

static th_registry fx;

static void setup(void)
{
    th_registry_setup(&fx, "scrub", NULL);
}

static void teardown(void)
{
    th_registry_teardown(&fx);
}

/* Pushes @p model@@p version (empty config, weights, eval report); the
 * weights' digest into @p weights (may be NULL), the release's into
 * @p release (may be NULL). */
static void push(const char *model, const char *version, mlreg_digest *weights,
                 mlreg_digest *release)
{
    mlreg_manifest_put_result res;
    char text[64];
    char *body = th_release_body(fx.reg, model, version, "ci", "{\"metrics\":{\"accuracy\":0.9}}");

    ck_assert_msg(mlreg_registry_manifest_put_as(&res, fx.reg, model, version,
                                                 MLREG_MT_OCI_MANIFEST, body, strlen(body),
                                                 "ci") == 0,
                  "push: %s", mlreg_error_last());
    free(body);
    snprintf(text, sizeof(text), "weights of %s", version);
    if (weights != NULL) ck_assert_int_eq(mlreg_digest_buffer(weights, text, strlen(text)), 0);
    if (release != NULL) *release = res.digest;
}

static uint64_t log_size(void)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    mlreg_meta_txn_abort(txn);
    return n;
}

/* The last audit entry, parsed (caller decrefs). */
static json_t *last_entry(void)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = log_size();
    char *text = NULL;
    size_t len = 0;
    json_t *j;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_entry_txn(&text, &len, txn, n - 1), 0);
    mlreg_meta_txn_abort(txn);
    ck_assert_ptr_nonnull(j = json_loadb(text, len, 0, NULL));
    free(text);
    return j;
}

static json_t *scrub(const mlreg_scrub_opts *o)
{
    json_t *r = NULL;

    ck_assert_msg(mlreg_registry_scrub(&r, fx.reg, o) == 0, "scrub: %s", mlreg_error_last());
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Item @p i of report list @p list ("corrupt", "missing"), with its digest
 * checked against @p d. */
static json_t *item(json_t *report, const char *list, size_t i, const mlreg_digest *d)
{
    char str[MLREG_DIGEST_STRLEN + 1];
    json_t *it = json_array_get(json_object_get(report, list), i);

    ck_assert_ptr_nonnull(it);
    mlreg_digest_format(str, d);
    ck_assert_str_eq(json_string_value(json_object_get(it, "digest")), str);
    return it;
}

/* The item of @p d in report list @p list; fails the test when none. */
static json_t *find(json_t *report, const char *list, const mlreg_digest *d)
{
    char str[MLREG_DIGEST_STRLEN + 1];
    json_t *it;
    size_t i;

    mlreg_digest_format(str, d);
    json_array_foreach(json_object_get(report, list), i, it)
    {
        if (!strcmp(json_string_value(json_object_get(it, "digest")), str)) return it;
    }
    ck_abort_msg("%s not in %s", str, list);
    return NULL;
}

/* The releases an item names, joined with spaces (static buffer). */
static const char *releases(json_t *it)
{
    static char buf[512];
    json_t *r;
    size_t i, n = 0;

    buf[0] = '\0';
    json_array_foreach(json_object_get(it, "releases"), i, r)
    {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " " : "", json_string_value(r));
    }
    return buf;
}

START_TEST(test_a_clean_store_reports_nothing_and_records_nothing)
{
    json_t *r;
    uint64_t before;

    push(MODEL, "1.0", NULL, NULL);
    before = log_size();
    r = scrub(NULL);
    /* the empty config, weights, eval report and the manifest's own bytes */
    ck_assert_int_eq(json_integer_value(json_object_get(r, "checked")), 4);
    ck_assert_int_gt(json_integer_value(json_object_get(r, "bytes")), 0);
    ck_assert_int_eq(json_array_size(json_object_get(r, "corrupt")), 0);
    ck_assert_int_eq(json_array_size(json_object_get(r, "missing")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "quarantined")), 0);
    ck_assert(!mlreg_scrub_report_found(r));
    ck_assert(json_is_false(json_object_get(r, "stopped")));
    ck_assert_uint_eq(log_size(), before);
    json_decref(r);
}
END_TEST

START_TEST(test_a_flipped_byte_is_found_named_with_its_releases_and_quarantined)
{
    mlreg_digest w10, empty;
    json_t *r, *it, *e, *details;
    uint64_t before, size = 0;
    mlreg_blob_reader *rd = NULL;

    push(MODEL, "1.0", &w10, NULL);
    push(MODEL, "1.1", NULL, NULL);
    push(OTHER, "2.0", NULL, NULL);
    ck_assert_int_eq(mlreg_digest_parse(&empty, MLREG_EMPTY_CONFIG_DIGEST), 0);
    th_fs_damage_blob(fx.dir, &w10, 3);
    th_fs_damage_blob(fx.dir, &empty, 0);
    before = log_size();

    r = scrub(&(mlreg_scrub_opts){.actor = "ops"});
    ck_assert(mlreg_scrub_report_found(r));
    ck_assert_int_eq(json_array_size(json_object_get(r, "corrupt")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(r, "missing")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "quarantined")), 2);
    /* listing order is the store's: find each */
    it = find(r, "corrupt", &empty);
    ck_assert_str_eq(releases(it), "team/clf@1.0 team/clf@1.1 team/other@2.0");
    ck_assert(json_is_true(json_object_get(it, "quarantined")));
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(it, "quarantine")), "blobs/quarantine/"));
    it = find(r, "corrupt", &w10);
    ck_assert_str_eq(releases(it), "team/clf@1.0");

    /* the store answers "not found", so a HEAD says 404 and a push uploads it */
    ck_assert_int_eq(mlreg_blobstore_exists(mlreg_registry_blobstore(fx.reg), &w10), 0);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, fx.reg, MODEL, &w10), MLREG_ENOTFOUND);

    /* one entry, with the counts and the digests */
    ck_assert_uint_eq(log_size(), before + 1);
    e = last_entry();
    ck_assert_str_eq(json_string_value(json_object_get(e, "action")), MLREG_AUDIT_SCRUB);
    ck_assert_str_eq(json_string_value(json_object_get(e, "actor")), "ops");
    details = json_object_get(e, "details");
    ck_assert_int_eq(json_integer_value(json_object_get(details, "corrupt_count")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(details, "corrupt")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(details, "quarantined")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(details, "missing_count")), 0);
    json_decref(e);
    json_decref(r);

    /* pushing the files again repairs every release sharing them */
    {
        mlreg_digest again;
        th_put_blob(&again, fx.reg, MODEL, "ci", "weights of 1.0");
        th_put_blob(&again, fx.reg, MODEL, "ci", "{}");
    }
    ck_assert_int_eq(mlreg_registry_blob_open(&rd, &size, fx.reg, MODEL, &w10), 0);
    mlreg_blob_reader_free(rd);
    before = log_size();
    r = scrub(NULL);
    ck_assert(!mlreg_scrub_report_found(r));
    ck_assert_uint_eq(log_size(), before);
    json_decref(r);
}
END_TEST

START_TEST(test_a_lost_blob_is_missing_named_and_not_quarantined)
{
    mlreg_digest w;
    json_t *r, *it;

    push(MODEL, "1.0", &w, NULL);
    th_fs_damage_blob(fx.dir, &w, -1);
    r = scrub(NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r, "corrupt")), 0);
    ck_assert_int_eq(json_array_size(json_object_get(r, "missing")), 1);
    it = item(r, "missing", 0, &w);
    ck_assert_str_eq(releases(it), "team/clf@1.0");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "quarantined")), 0);
    ck_assert(mlreg_scrub_report_found(r));
    json_decref(r);

    /* the model filter finds it too */
    r = scrub(&(mlreg_scrub_opts){.model = MODEL});
    ck_assert_int_eq(json_array_size(json_object_get(r, "missing")), 1);
    item(r, "missing", 0, &w);
    json_decref(r);
}
END_TEST

START_TEST(test_a_dry_run_reports_and_quarantines_nothing)
{
    mlreg_digest w;
    json_t *r, *it, *e;

    push(MODEL, "1.0", &w, NULL);
    th_fs_damage_blob(fx.dir, &w, 0);
    r = scrub(&(mlreg_scrub_opts){.dry_run = 1});
    ck_assert_int_eq(json_array_size(json_object_get(r, "corrupt")), 1);
    it = item(r, "corrupt", 0, &w);
    ck_assert(json_is_false(json_object_get(it, "quarantined")));
    ck_assert_ptr_null(json_object_get(it, "quarantine"));
    ck_assert_int_eq(json_integer_value(json_object_get(r, "quarantined")), 0);
    ck_assert(json_is_true(json_object_get(r, "dry_run")));
    ck_assert_int_eq(mlreg_blobstore_exists(mlreg_registry_blobstore(fx.reg), &w), 1);
    e = last_entry();
    ck_assert_str_eq(json_string_value(json_object_get(e, "action")), MLREG_AUDIT_SCRUB);
    ck_assert(json_is_true(json_object_get(json_object_get(e, "details"), "dry_run")));
    json_decref(e);
    json_decref(r);

    /* still there for the real one */
    r = scrub(NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "quarantined")), 1);
    json_decref(r);
}
END_TEST

START_TEST(test_the_model_filter_reads_only_the_blobs_of_that_model)
{
    mlreg_digest wa, wb;
    json_t *r, *e;
    uint64_t before;

    push(MODEL, "1.0", &wa, NULL);
    push(OTHER, "2.0", &wb, NULL);
    th_fs_damage_blob(fx.dir, &wb, 1);
    before = log_size();

    r = scrub(&(mlreg_scrub_opts){.model = MODEL});
    ck_assert(!mlreg_scrub_report_found(r));
    ck_assert_str_eq(json_string_value(json_object_get(r, "model")), MODEL);
    /* config, weights, eval report, manifest */
    ck_assert_int_eq(json_integer_value(json_object_get(r, "checked")), 4);
    ck_assert_uint_eq(log_size(), before);
    json_decref(r);

    r = scrub(&(mlreg_scrub_opts){.model = OTHER});
    ck_assert_int_eq(json_array_size(json_object_get(r, "corrupt")), 1);
    ck_assert_str_eq(releases(item(r, "corrupt", 0, &wb)), "team/other@2.0");
    e = last_entry();
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "subject"), "model")),
                     OTHER);
    json_decref(e);
    json_decref(r);

    ck_assert_int_eq(mlreg_registry_scrub(&r, fx.reg, &(mlreg_scrub_opts){.model = "no/such"}),
                     MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_registry_scrub(&r, fx.reg, &(mlreg_scrub_opts){.model = "Bad Name"}),
                     MLREG_EINVALID);
}
END_TEST

START_TEST(test_a_signature_blob_is_in_the_models_scope_and_names_its_release)
{
    char comment[512], b64[MLREG_PUBKEY_B64LEN + 1], rs[MLREG_DIGEST_STRLEN + 1], *sig = NULL;
    mlreg_manifest_data *m = NULL;
    mlreg_digest rel, sigd;
    mlreg_pubkey pk;
    json_t *res = NULL, *r;
    int created = 0;

    push(MODEL, "1.0", NULL, &rel);
    mlreg_digest_format(rs, &rel);
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, fx.reg, MODEL, rs), 0);
    snprintf(comment, sizeof(comment), "mlreg release model=%s version=1.0 digest=%s", MODEL, rs);
    ck_assert_int_eq(mlreg_sign(&sig, fx.sk, m->body, m->len, comment, NULL), 0);
    mlreg_seckey_pubkey(&pk, fx.sk);
    mlreg_pubkey_base64(b64, &pk);
    ck_assert_msg(mlreg_signature_attach(&res, &created, fx.reg, MODEL, "1.0", sig, strlen(sig),
                                         b64, strlen(b64), "signer") == 0,
                  "attach: %s", mlreg_error_last());
    json_decref(res);
    mlreg_manifest_data_free(m);

    /* the signature blob is the text the registry stored (see signatures.c) */
    r = scrub(&(mlreg_scrub_opts){.model = MODEL});
    ck_assert(!mlreg_scrub_report_found(r));
    ck_assert_int_eq(json_integer_value(json_object_get(r, "checked")), 5);
    json_decref(r);
    {
        /* find the one blob besides the release's four */
        json_t *sigs = NULL, *s0;
        const char *text;
        ck_assert_int_eq(mlreg_signatures_list(&sigs, fx.reg, MODEL, "1.0"), 0);
        s0 = json_array_get(json_object_get(sigs, "signatures"), 0);
        ck_assert_ptr_nonnull(text = json_string_value(json_object_get(s0, "signature")));
        ck_assert_int_eq(mlreg_digest_buffer(&sigd, text, strlen(text)), 0);
        json_decref(sigs);
    }
    th_fs_damage_blob(fx.dir, &sigd, 5);
    r = scrub(&(mlreg_scrub_opts){.model = MODEL});
    ck_assert_int_eq(json_array_size(json_object_get(r, "corrupt")), 1);
    ck_assert_str_eq(releases(item(r, "corrupt", 0, &sigd)), "team/clf@1.0");
    json_decref(r);
    free(sig);
}
END_TEST

START_TEST(test_the_rate_limit_makes_a_scrub_take_its_time)
{
    enum { SIZE = 300000 };
    unsigned char *data = malloc(SIZE);
    mlreg_digest d;
    struct timespec t0, t1;
    double took;
    json_t *r;
    int64_t bytes;

    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (unsigned char)(i * 31);
    th_put_blob_n(&d, fx.reg, MODEL, "ci", data, SIZE);
    free(data);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = scrub(&(mlreg_scrub_opts){.rate_bytes_per_second = 400000});
    clock_gettime(CLOCK_MONOTONIC, &t1);
    took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    bytes = json_integer_value(json_object_get(r, "bytes"));
    ck_assert_int_eq(bytes, SIZE);
    /* 300000 bytes at 400000 B/s: at least 0.75 s */
    ck_assert_msg(took >= 0.74, "took %.3f s", took);
    ck_assert_msg(took < 2.0, "took %.3f s", took);
    ck_assert(json_real_value(json_object_get(r, "seconds")) >= 0.74);
    json_decref(r);

    /* unlimited, the same read is quick */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    json_decref(scrub(NULL));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(took < 0.5, "took %.3f s", took);
}
END_TEST

static int stop_now(void *p)
{
    return ++*(int *)p > 0;
}

START_TEST(test_a_stop_request_ends_the_scrub_early)
{
    mlreg_digest w;
    json_t *r;
    int polls = 0;
    uint64_t before;

    push(MODEL, "1.0", &w, NULL);
    th_fs_damage_blob(fx.dir, &w, 0);
    before = log_size();
    r = scrub(&(mlreg_scrub_opts){.should_stop = stop_now, .stop_payload = &polls});
    ck_assert(json_is_true(json_object_get(r, "stopped")));
    ck_assert_int_eq(json_integer_value(json_object_get(r, "checked")), 0);
    ck_assert_int_gt(polls, 0);
    ck_assert(!mlreg_scrub_report_found(r));
    ck_assert_uint_eq(log_size(), before);
    ck_assert_int_eq(mlreg_blobstore_exists(mlreg_registry_blobstore(fx.reg), &w), 1);
    json_decref(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scrub");
    TCase *tc = tcase_create("scrub");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_a_clean_store_reports_nothing_and_records_nothing);
    tcase_add_test(tc, test_a_flipped_byte_is_found_named_with_its_releases_and_quarantined);
    tcase_add_test(tc, test_a_lost_blob_is_missing_named_and_not_quarantined);
    tcase_add_test(tc, test_a_dry_run_reports_and_quarantines_nothing);
    tcase_add_test(tc, test_the_model_filter_reads_only_the_blobs_of_that_model);
    tcase_add_test(tc, test_a_signature_blob_is_in_the_models_scope_and_names_its_release);
    tcase_add_test(tc, test_the_rate_limit_makes_a_scrub_take_its_time);
    tcase_add_test(tc, test_a_stop_request_ends_the_scrub_early);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
