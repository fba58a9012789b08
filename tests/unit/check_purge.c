/* check_purge.c: purging a release (registry/purge.c) over a real registry
 * (fs backend, LMDB) in a mkdtemp dir: what leaves the store and what stays,
 * the 410 (MLREG_EGONE) of every read and change that names a purged
 * release, the refusals (a stage holds it, roles, reason, twice, unknown),
 * a blob another manifest shares, and a manifest DELETE keeping its own
 * bytes for the log. */
#include "mlreg/audit.h"
#include "mlreg/auth.h"
#include "mlreg/blob.h"
#include "mlreg/common.h"
#include "mlreg/gates.h"
#include "mlreg/gc.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"

#include "helpers.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL  "team/clf"
#define REPORT "{\"metrics\":{\"accuracy\":0.9}}"

static th_registry fx;
static mlreg_registry *reg;
static mlreg_policy *pol;
static mlreg_auth *auth, *auth_push;

static void setup(void)
{
    th_registry_setup(&fx, "purge", NULL);
    reg = fx.reg;
    th_use_gates(&pol, "{}");
}

static void teardown(void)
{
    mlreg_auth_free(auth);
    mlreg_auth_free(auth_push);
    auth = auth_push = NULL;
    mlreg_policy_free(pol);
    pol = NULL;
    reg = NULL;
    th_registry_teardown(&fx);
}

static const mlreg_identity *root(void)
{
    return th_identity(&auth, "root", "[\"admin\"]");
}

static void push(const char *version, char digest[MLREG_DIGEST_STRLEN + 1])
{
    mlreg_manifest_put_result res;
    char *body = th_release_body(reg, MODEL, version, NULL, REPORT);

    ck_assert_msg(mlreg_registry_manifest_put_as(&res, reg, MODEL, version, MLREG_MT_OCI_MANIFEST,
                                                 body, strlen(body), "ci") == 0,
                  "push: %s", mlreg_error_last());
    if (digest != NULL) mlreg_digest_format(digest, &res.digest);
    free(body);
}

static int purge(json_t **out, const mlreg_identity *who, const char *version, const char *reason)
{
    json_t *res = NULL;
    int rc = mlreg_release_purge(&res, reg, pol, who, MODEL, version, reason);

    if (rc < 0) ck_assert_ptr_null(res);
    if (out)
        *out = res;
    else
        json_decref(res);
    return rc;
}

static int stored_text(const char *text)
{
    mlreg_digest d;

    ck_assert_int_eq(mlreg_digest_buffer(&d, text, strlen(text)), 0);
    return mlreg_blobstore_exists(mlreg_registry_blobstore(reg), &d);
}

static int stored_digest(const char *digest)
{
    mlreg_digest d;

    ck_assert_int_eq(mlreg_digest_parse(&d, digest), 0);
    return mlreg_blobstore_exists(mlreg_registry_blobstore(reg), &d);
}

START_TEST(test_a_purge_deletes_the_files_and_keeps_what_the_log_needs)
{
    char d1[MLREG_DIGEST_STRLEN + 1];
    json_t *res = NULL, *p;
    mlreg_manifest_data *m = NULL;

    push("1.0", d1);
    push("2.0", NULL);
    ck_assert_int_eq(purge(&res, root(), "1.0", "licence takedown"), 0);
    p = json_object_get(res, "purged");
    ck_assert_str_eq(json_string_value(json_object_get(p, "reason")), "licence takedown");
    ck_assert_str_eq(json_string_value(json_object_get(p, "by")), "root");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "seq")),
                     json_integer_value(json_object_get(res, "seq")));
    ck_assert_str_eq(json_string_value(json_object_get(res, "digest")), d1);
    /* the weights alone went; config and eval report are shared or kept */
    ck_assert_int_eq(json_array_size(json_object_get(res, "unreferenced")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "deleted_blobs")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "bytes_reclaimed")),
                     (json_int_t)strlen("weights of 1.0"));
    ck_assert_int_eq(json_array_size(json_object_get(res, "entries")), 2); /* collect, done */
    ck_assert_ptr_null(json_object_get(res, "deferred"));
    json_decref(res);
    ck_assert_int_eq(stored_text("weights of 1.0"), 0);
    ck_assert_int_eq(stored_text("weights of 2.0"), 1);
    ck_assert_int_eq(stored_text(REPORT), 1);
    ck_assert_int_eq(stored_digest(d1), 1); /* the manifest's own bytes */

    /* every read answers gone, naming the entry */
    ck_assert_int_eq(mlreg_registry_release_get(&res, reg, MODEL, "1.0"), MLREG_EGONE);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "purged by root"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "licence takedown"));
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, MODEL, "1.0"), MLREG_EGONE);
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, MODEL, d1), MLREG_EGONE);
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, MODEL, "9.9"), MLREG_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "not found"));
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, MODEL, "2.0"), 0);
    mlreg_manifest_data_free(m);

    /* the model lists it, purged; the latest is 2.0 */
    ck_assert_int_eq(mlreg_registry_model_get(&res, reg, MODEL), 0);
    p = json_object_get(json_array_get(json_object_get(res, "releases"), 0), "purged");
    ck_assert(json_is_object(p));
    json_decref(res);
    ck_assert_int_eq(mlreg_registry_models_list(&res, reg), 0);
    ck_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(res, "models"), 0), "latest"),
            "version")),
        "2.0");
    json_decref(res);
}
END_TEST

START_TEST(test_every_change_naming_a_purged_release_is_refused)
{
    mlreg_promote_req req = {MODEL, "1.0", "dev", "test", 0, "ci"};
    mlreg_manifest_put_result put;
    json_t *res = NULL;
    int created = 0;
    char *body;

    push("1.0", NULL);
    ck_assert_int_eq(purge(NULL, root(), "1.0", "takedown"), 0);
    ck_assert_int_eq(mlreg_promote(&res, reg, pol, &req), MLREG_EGONE);
    json_decref(res);
    res = NULL;
    ck_assert_int_eq(
        mlreg_approve(&res, &created, reg, pol, MODEL, "1.0", "production", NULL, "bob"),
        MLREG_EGONE);
    ck_assert_int_eq(mlreg_release_withdraw(&res, reg, pol, root(), MODEL, "1.0", "x", 0),
                     MLREG_EGONE);
    ck_assert_int_eq(purge(NULL, root(), "1.0", "again"), MLREG_EGONE);
    /* the version is never taken again, even with the same bytes */
    body = th_release_body(reg, MODEL, "1.0", NULL, REPORT);
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&put, reg, MODEL, "1.0", MLREG_MT_OCI_MANIFEST,
                                                    body, strlen(body), "ci"),
                     MLREG_EGONE);
    free(body);
}
END_TEST

START_TEST(test_a_purge_is_refused_while_a_stage_holds_the_release_or_without_admin)
{
    mlreg_promote_req req = {MODEL, "1.0", "dev", "test", 0, "ci"};
    json_t *res = NULL;

    push("1.0", NULL);
    ck_assert_msg(mlreg_promote(&res, reg, pol, &req) == 0, "%s", mlreg_error_last());
    json_decref(res);
    ck_assert_int_eq(purge(NULL, root(), "1.0", "takedown"), MLREG_EDENIED);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "holds stage dev"));
    ck_assert_int_eq(stored_text("weights of 1.0"), 1);
    ck_assert_int_eq(purge(NULL, th_identity(&auth_push, "ci", "[\"push\"]"), "1.0", "takedown"),
                     MLREG_EFORBIDDEN);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "needs role admin"));
    ck_assert_int_eq(purge(NULL, root(), "1.0", NULL), MLREG_EINVALID);
    ck_assert_int_eq(purge(NULL, root(), "1.0", "   "), MLREG_EINVALID);
    ck_assert_int_eq(purge(NULL, root(), "1.0", "bell\a"), MLREG_EINVALID);
    ck_assert_int_eq(purge(NULL, root(), "7.7", "takedown"), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_release_purge(&res, reg, pol, root(), "../etc", "1.0", "takedown"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_registry_release_get(&res, reg, MODEL, "1.0"), 0);
    json_decref(res);
}
END_TEST

/* A file another manifest references stays, whichever repository holds
 * that manifest; it goes with the last one. */
START_TEST(test_a_file_another_release_shares_stays_until_the_last_goes)
{
    mlreg_manifest_put_result put;
    json_t *res = NULL;
    char *a = th_release_body(reg, MODEL, "1.0", NULL, REPORT), *b;
    json_t *doc;

    ck_assert_int_eq(mlreg_registry_manifest_put_as(&put, reg, MODEL, "1.0", MLREG_MT_OCI_MANIFEST,
                                                    a, strlen(a), "ci"),
                     0);
    /* 1.1: the same files under another version */
    doc = json_loads(a, 0, NULL);
    json_object_set_new(json_object_get(doc, "annotations"), MLREG_ANN_VERSION, json_string("1.1"));
    b = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    ck_assert_msg(mlreg_registry_manifest_put_as(&put, reg, MODEL, "1.1", MLREG_MT_OCI_MANIFEST, b,
                                                 strlen(b), "ci") == 0,
                  "%s", mlreg_error_last());
    ck_assert_int_eq(purge(&res, root(), "1.0", "takedown"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "deleted_blobs")), 0);
    json_decref(res);
    ck_assert_int_eq(stored_text("weights of 1.0"), 1);
    ck_assert_int_eq(purge(&res, root(), "1.1", "takedown"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "deleted_blobs")), 1);
    json_decref(res);
    ck_assert_int_eq(stored_text("weights of 1.0"), 0);
    free(a);
    free(b);
}
END_TEST

/* A manifest DELETE keeps its own bytes referenced (the log's entry names
 * them), while its layer is collected. */
START_TEST(test_a_deleted_manifest_keeps_its_own_bytes_through_a_collection)
{
    mlreg_manifest_put_result put;
    mlreg_digest cfgd, l;
    char cs[MLREG_DIGEST_STRLEN + 1], ls[MLREG_DIGEST_STRLEN + 1], ms[MLREG_DIGEST_STRLEN + 1];
    mlreg_gc_opts go = {.grace_seconds = 0, .stale_upload_seconds = 3600, .actor = "ops"};
    json_t *doc, *report = NULL;
    char *body;

    th_put_blob(&cfgd, reg, "team/img", "ci", "{\"architecture\":\"amd64\"}");
    th_put_blob(&l, reg, "team/img", "ci", "a layer");
    mlreg_digest_format(cs, &cfgd);
    mlreg_digest_format(ls, &l);
    doc = json_pack(
        "{s:i, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:i}]}", "schemaVersion", 2, "mediaType",
        MLREG_MT_OCI_MANIFEST, "config", "mediaType", "application/vnd.oci.image.config.v1+json",
        "digest", cs, "size", (int)strlen("{\"architecture\":\"amd64\"}"), "layers", "mediaType",
        "application/vnd.oci.image.layer.v1.tar", "digest", ls, "size", (int)strlen("a layer"));
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    ck_assert_msg(mlreg_registry_manifest_put_as(&put, reg, "team/img", "v1", MLREG_MT_OCI_MANIFEST,
                                                 body, strlen(body), "ci") == 0,
                  "%s", mlreg_error_last());
    free(body);
    mlreg_digest_format(ms, &put.digest);
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, "team/img", ms, "ci"), 0);
    /* every blob is young (grace 0 still keeps what was linked this very
     * second): step past it */
    sleep(1);
    ck_assert_msg(mlreg_registry_gc(&report, reg, &go) == 0, "%s", mlreg_error_last());
    json_decref(report);
    ck_assert_int_eq(stored_text("a layer"), 0);
    ck_assert_int_eq(stored_digest(ms), 1);
}
END_TEST

static Suite *purge_suite(void)
{
    Suite *s = suite_create("purge");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_a_purge_deletes_the_files_and_keeps_what_the_log_needs);
    tcase_add_test(tc, test_every_change_naming_a_purged_release_is_refused);
    tcase_add_test(tc, test_a_purge_is_refused_while_a_stage_holds_the_release_or_without_admin);
    tcase_add_test(tc, test_a_file_another_release_shares_stays_until_the_last_goes);
    tcase_add_test(tc, test_a_deleted_manifest_keeps_its_own_bytes_through_a_collection);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(purge_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
