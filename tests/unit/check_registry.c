/* check_registry.c: the registry core over a temp data dir, with the real fs
 * backend and with an in-memory fake backend that counts calls. */
#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/common.h"
#include "mlreg/oci.h"
#include "mlreg/signatures.h"
#include "mlreg/registry.h"

#include "helpers.h"

/* ---- fixtures ---------------------------------------------------------- */

/* A registry without trusted keys; fake is its backend in the fake_backend
 * case (freed by the registry, tests keep the pointer to read counters). */
static th_registry fx; /* reg is fx.reg */
static mlreg_registry *reg;
static th_fake *fake;

/* (Re)opens the registry on the fixture's dir, after a test freed it. */
static void open_registry(mlreg_blob_backend *backend, size_t max_manifest)
{
    fx.opts.backend = backend;
    fx.opts.max_manifest_bytes = max_manifest;
    th_registry_open(&fx);
    reg = fx.reg;
}

static void setup_fs(void)
{
    th_registry_opts opts = {.keyless = 1};

    th_registry_setup(&fx, "registry", &opts);
    reg = fx.reg;
}

static void setup_fake(void)
{
    th_registry_opts opts = {.keyless = 1};

    fake = th_fake_new(MLREG_BLOB_BACKEND_VERSION, NULL);
    opts.backend = &fake->parent;
    th_registry_setup(&fx, "registry", &opts);
    reg = fx.reg;
}

static void teardown(void)
{
    reg = NULL;
    fake = NULL;
    th_registry_teardown(&fx);
}

/* ---- helpers ------------------------------------------------------------- */

static char *digest_str(const mlreg_digest *d)
{
    static char buf[4][MLREG_DIGEST_STRLEN + 1];
    static int i;

    i = (i + 1) % 4;
    mlreg_digest_format(buf[i], d);
    return buf[i];
}

typedef struct {
    const char *title;
    const char *kind;
    const char *content;
} file_spec;

/* Uploads the files (and the empty config) of a release into @p model and
 * returns its manifest JSON text (malloc'd). */
static char *release_body(const char *model, const char *version, const char *created,
                          const char *git_sha, const file_spec *files, size_t nfiles)
{
    mlreg_digest d;
    json_t *doc, *layers;
    char mt[128];
    char *text;
    size_t i;

    th_put_blob(&d, reg, model, NULL, "{}");
    doc = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[], s:{s:s, s:s, s:s}}", "schemaVersion",
                    2, "mediaType", MLREG_MT_OCI_MANIFEST, "artifactType", MLREG_ARTIFACT_RELEASE,
                    "config", "mediaType", MLREG_MT_OCI_EMPTY, "digest", MLREG_EMPTY_CONFIG_DIGEST,
                    "size", 2, "layers", "annotations", MLREG_ANN_MODEL, model, MLREG_ANN_VERSION,
                    version, MLREG_ANN_CREATED, created);
    ck_assert_ptr_nonnull(doc);
    if (git_sha)
        json_object_set_new(json_object_get(doc, "annotations"), MLREG_ANN_GIT_SHA,
                            json_string(git_sha));
    layers = json_object_get(doc, "layers");
    for (i = 0; i < nfiles; i++) {
        th_put_blob(&d, reg, model, NULL, files[i].content);
        if (strcmp(files[i].kind, "eval-report") == 0)
            snprintf(mt, sizeof(mt), "%s", MLREG_MT_EVAL_REPORT);
        else
            snprintf(mt, sizeof(mt), "application/vnd.mlreg.%s.v1", files[i].kind);
        json_array_append_new(layers, json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "mediaType", mt,
                                                "digest", digest_str(&d), "size",
                                                (json_int_t)strlen(files[i].content), "annotations",
                                                MLREG_ANN_TITLE, files[i].title, MLREG_ANN_KIND,
                                                files[i].kind));
    }
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    ck_assert_ptr_nonnull(text);
    return text;
}

static const file_spec basic_files[] = {
    {"model.bin", "weights", "weights-bytes-v1"},
    {"tokenizer.json", "tokenizer", "{\"vocab\":[]}"},
    {"eval.json", "eval-report",
     "{\"dataset\":\"squad\",\"metrics\":{\"accuracy\":0.91,\"retrieval\":{\"hit_rate\":0.75}}}"},
};

static int put(mlreg_manifest_put_result *res, const char *repo, const char *ref, const char *ct,
               const char *body)
{
    return mlreg_registry_manifest_put(res, reg, repo, ref, ct, body, strlen(body));
}

/* Pushes team/clf@VERSION with the basic files; returns the manifest text. */
static char *push_release(mlreg_manifest_put_result *res, const char *version, const char *created)
{
    char *body = release_body("team/clf", version, created, "abcdef1", basic_files, 3);
    int rc = put(res, "team/clf", version, MLREG_MT_OCI_MANIFEST, body);

    ck_assert_msg(rc == 0, "push %s: %d %s", version, rc, mlreg_error_last());
    return body;
}

/* A plain (non-release) OCI image manifest over one layer in @p repo. */
static char *plain_body(const char *repo, const char *content, const char *artifact_type,
                        const mlreg_digest *subject, size_t subject_size)
{
    mlreg_digest cfg, lay;
    json_t *doc;
    char *text;

    th_put_blob(&cfg, reg, repo, NULL, "{\"architecture\":\"amd64\"}");
    th_put_blob(&lay, reg, repo, NULL, content);
    doc = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}]}", "schemaVersion", 2,
                    "mediaType", MLREG_MT_OCI_MANIFEST, "config", "mediaType",
                    "application/vnd.test.config.v1+json", "digest", digest_str(&cfg), "size",
                    (json_int_t)strlen("{\"architecture\":\"amd64\"}"), "layers", "mediaType",
                    "application/octet-stream", "digest", digest_str(&lay), "size",
                    (json_int_t)strlen(content));
    if (artifact_type) json_object_set_new(doc, "artifactType", json_string(artifact_type));
    if (subject)
        json_object_set_new(doc, "subject",
                            json_pack("{s:s, s:s, s:I}", "mediaType", MLREG_MT_OCI_MANIFEST,
                                      "digest", digest_str(subject), "size",
                                      (json_int_t)subject_size));
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

static void expect_manifest_absent(const char *repo, const char *ref)
{
    mlreg_manifest_data *m = NULL;

    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, repo, ref), MLREG_ENOTFOUND);
    ck_assert_ptr_null(m);
}

/* ---- blobs ---------------------------------------------------------------- */

START_TEST(test_linked_blob_is_visible_in_its_repository_only)
{
    mlreg_digest d;
    uint64_t size = 0;

    th_put_blob(&d, reg, "team/a", NULL, "hello");
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, "team/a", &d), 0);
    ck_assert_uint_eq(size, 5);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, "team/b", &d), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, "Bad/Name", &d), MLREG_EINVALID);
}
END_TEST

START_TEST(test_blob_open_reads_back_the_stored_bytes)
{
    mlreg_digest d;
    mlreg_blob_reader *r = NULL;
    uint64_t size = 0;
    char buf[32];
    ssize_t n;

    th_put_blob(&d, reg, "team/a", NULL, "some weights");
    ck_assert_int_eq(mlreg_registry_blob_open(&r, &size, reg, "team/a", &d), 0);
    ck_assert_uint_eq(size, 12);
    n = mlreg_blob_reader_read(r, buf, sizeof(buf));
    ck_assert_int_eq(n, 12);
    ck_assert_int_eq(memcmp(buf, "some weights", 12), 0);
    mlreg_blob_reader_free(r);
    r = NULL;
    ck_assert_int_eq(mlreg_registry_blob_open(&r, &size, reg, "team/other", &d), MLREG_ENOTFOUND);
    ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_blob_mount_links_from_a_repository_that_has_it)
{
    mlreg_digest d, missing;
    uint64_t size = 0;

    th_put_blob(&d, reg, "team/a", NULL, "shared layer");
    ck_assert_int_eq(mlreg_registry_blob_mount(reg, "team/b", "team/a", &d, NULL), 0);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, "team/b", &d), 0);
    ck_assert_uint_eq(size, 12);
    /* A source that never had the blob cannot lend it. */
    ck_assert_int_eq(mlreg_registry_blob_mount(reg, "team/c", "team/x", &d, NULL), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, "team/c", &d), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_digest_buffer(&missing, "nope", 4), 0);
    ck_assert_int_eq(mlreg_registry_blob_mount(reg, "team/b", "team/a", &missing, NULL),
                     MLREG_ENOTFOUND);
}
END_TEST

START_TEST(test_blob_unlink_removes_visibility_but_not_from_a_release)
{
    mlreg_digest d, w;
    mlreg_manifest_put_result res;
    uint64_t size;
    char *body;

    th_put_blob(&d, reg, "team/clf", NULL, "scratch");
    ck_assert_int_eq(mlreg_registry_blob_unlink(reg, "team/clf", &d, NULL), 0);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, "team/clf", &d), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_registry_blob_unlink(reg, "team/clf", &d, NULL), MLREG_ENOTFOUND);

    body = push_release(&res, "1.0.0", "2026-01-01T00:00:00Z");
    ck_assert_int_eq(mlreg_digest_buffer(&w, "weights-bytes-v1", 16), 0);
    ck_assert_int_eq(mlreg_registry_blob_unlink(reg, "team/clf", &w, NULL), MLREG_EDENIED);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, "team/clf", &w), 0);
    free(body);
}
END_TEST

/* ---- manifests ---------------------------------------------------------- */

START_TEST(test_manifest_put_by_tag_is_fetched_by_tag_and_digest_byte_for_byte)
{
    mlreg_manifest_put_result res;
    mlreg_manifest_data *m = NULL;
    mlreg_digest want;
    char *body = plain_body("team/img", "layer-1", NULL, NULL, 0);

    ck_assert_int_eq(put(&res, "team/img", "latest", MLREG_MT_OCI_MANIFEST, body), 0);
    ck_assert_int_eq(res.created, 1);
    ck_assert_int_eq(res.has_subject, 0);
    ck_assert_int_eq(mlreg_digest_buffer(&want, body, strlen(body)), 0);
    ck_assert(mlreg_digest_equal(&want, &res.digest));

    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, "team/img", "latest"), 0);
    ck_assert_uint_eq(m->len, strlen(body));
    ck_assert_str_eq(m->body, body);
    ck_assert_str_eq(m->content_type, MLREG_MT_OCI_MANIFEST);
    ck_assert(mlreg_digest_equal(&want, &m->digest));
    mlreg_manifest_data_free(m);
    m = NULL;

    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, "team/img", digest_str(&want)), 0);
    ck_assert_str_eq(m->body, body);
    mlreg_manifest_data_free(m);
    expect_manifest_absent("team/img", "other");
    expect_manifest_absent("team/else", "latest");
    free(body);
}
END_TEST

START_TEST(test_manifest_put_by_wrong_digest_is_a_mismatch_and_stores_nothing)
{
    mlreg_manifest_put_result res;
    char *body = plain_body("team/img", "layer-1", NULL, NULL, 0);
    const char *wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    ck_assert_int_eq(put(&res, "team/img", wrong, MLREG_MT_OCI_MANIFEST, body), MLREG_EMISMATCH);
    expect_manifest_absent("team/img", wrong);
    ck_assert_int_eq(put(&res, "team/img", "sha256:xyz", MLREG_MT_OCI_MANIFEST, body),
                     MLREG_EINVALID);
    ck_assert_int_eq(put(&res, "team/img", "bad/tag", MLREG_MT_OCI_MANIFEST, body), MLREG_EINVALID);
    free(body);
}
END_TEST

START_TEST(test_manifest_over_the_size_limit_is_too_big)
{
    mlreg_manifest_put_result res;
    char *body;

    mlreg_registry_free(reg);
    open_registry(NULL, 64);
    ck_assert_uint_eq(mlreg_registry_max_manifest_bytes(reg), 64);
    body = plain_body("team/img", "layer-1", NULL, NULL, 0);
    ck_assert_int_gt(strlen(body), 64);
    ck_assert_int_eq(put(&res, "team/img", "latest", MLREG_MT_OCI_MANIFEST, body), MLREG_ETOOBIG);
    expect_manifest_absent("team/img", "latest");
    free(body);
}
END_TEST

START_TEST(test_manifest_referencing_an_unknown_blob_is_refused_and_stores_nothing)
{
    mlreg_manifest_put_result res;
    json_t *doc;
    char *body, *text;
    int more;
    json_t *tags = NULL;

    body = plain_body("team/img", "layer-1", NULL, NULL, 0);
    doc = json_loads(body, 0, NULL);
    json_object_set_new(json_array_get(json_object_get(doc, "layers"), 0), "digest",
                        json_string("sha256:"
                                    "9999999999999999999999999999999999999999999999999999999999"
                                    "999999"));
    text = json_dumps(doc, JSON_COMPACT);
    ck_assert_int_eq(put(&res, "team/img", "latest", MLREG_MT_OCI_MANIFEST, text),
                     MLREG_EBLOBUNKNOWN);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "sha256:9999"));
    expect_manifest_absent("team/img", "latest");
    ck_assert_int_eq(mlreg_registry_tags_list(&tags, &more, reg, "team/img", -1, NULL), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(tags, "tags")), 0);
    json_decref(tags);
    json_decref(doc);
    free(text);
    free(body);
}
END_TEST

START_TEST(test_blob_stored_for_another_repository_is_unknown_here)
{
    mlreg_manifest_put_result res;
    char *body = plain_body("team/a", "layer-1", NULL, NULL, 0);

    /* The blobs are in the store, but only linked into team/a. */
    ck_assert_int_eq(put(&res, "team/b", "latest", MLREG_MT_OCI_MANIFEST, body),
                     MLREG_EBLOBUNKNOWN);
    expect_manifest_absent("team/b", "latest");
    ck_assert_int_eq(put(&res, "team/a", "latest", MLREG_MT_OCI_MANIFEST, body), 0);
    free(body);
}
END_TEST

START_TEST(test_release_referencing_an_unknown_blob_is_refused_and_indexes_nothing)
{
    mlreg_manifest_put_result res;
    json_t *doc, *rel = NULL;
    char *body = release_body("team/clf", "1.0.0", "2026-01-01T00:00:00Z", NULL, basic_files, 3);
    char *text;

    doc = json_loads(body, 0, NULL);
    json_object_set_new(json_array_get(json_object_get(doc, "layers"), 0), "digest",
                        json_string("sha256:"
                                    "8888888888888888888888888888888888888888888888888888888888"
                                    "888888"));
    text = json_dumps(doc, JSON_COMPACT);
    ck_assert_int_eq(put(&res, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, text),
                     MLREG_EBLOBUNKNOWN);
    expect_manifest_absent("team/clf", "1.0.0");
    ck_assert_int_eq(mlreg_registry_release_get(&rel, reg, "team/clf", "1.0.0"), MLREG_ENOTFOUND);
    ck_assert_ptr_null(rel);
    json_decref(doc);
    free(text);
    free(body);
}
END_TEST

START_TEST(test_blob_size_different_from_descriptor_is_invalid)
{
    mlreg_manifest_put_result res;
    json_t *doc;
    char *body = plain_body("team/img", "layer-1", NULL, NULL, 0);
    char *text;

    doc = json_loads(body, 0, NULL);
    json_object_set_new(json_array_get(json_object_get(doc, "layers"), 0), "size", json_integer(6));
    text = json_dumps(doc, JSON_COMPACT);
    ck_assert_int_eq(put(&res, "team/img", "latest", MLREG_MT_OCI_MANIFEST, text), MLREG_EINVALID);
    expect_manifest_absent("team/img", "latest");
    json_decref(doc);
    free(text);
    free(body);
}
END_TEST

START_TEST(test_plain_tag_can_be_repointed_and_deleted)
{
    mlreg_manifest_put_result r1, r2;
    mlreg_manifest_data *m = NULL;
    char *b1 = plain_body("team/img", "layer-1", NULL, NULL, 0);
    char *b2 = plain_body("team/img", "layer-2", NULL, NULL, 0);

    ck_assert_int_eq(put(&r1, "team/img", "latest", MLREG_MT_OCI_MANIFEST, b1), 0);
    ck_assert_int_eq(put(&r2, "team/img", "latest", MLREG_MT_OCI_MANIFEST, b2), 0);
    ck_assert_int_eq(r2.created, 1);
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, "team/img", "latest"), 0);
    ck_assert_str_eq(m->body, b2);
    mlreg_manifest_data_free(m);

    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, "team/img", "latest", NULL), 0);
    expect_manifest_absent("team/img", "latest");
    /* The manifest itself stays, reachable by digest. */
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, "team/img", digest_str(&r2.digest)), 0);
    mlreg_manifest_data_free(m);
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, "team/img", "latest", NULL),
                     MLREG_ENOTFOUND);
    free(b1);
    free(b2);
}
END_TEST

START_TEST(test_delete_by_digest_removes_manifest_its_tags_and_referrer_entry)
{
    mlreg_manifest_put_result subj, ref;
    char *sb = plain_body("team/img", "base", NULL, NULL, 0);
    char *rb;
    json_t *idx = NULL, *tags = NULL;
    int more;

    ck_assert_int_eq(put(&subj, "team/img", "v1", MLREG_MT_OCI_MANIFEST, sb), 0);
    rb = plain_body("team/img", "sig", "application/vnd.test.sig", &subj.digest, strlen(sb));
    ck_assert_int_eq(put(&ref, "team/img", "sig-a", MLREG_MT_OCI_MANIFEST, rb), 0);
    ck_assert_int_eq(put(&ref, "team/img", "sig-b", MLREG_MT_OCI_MANIFEST, rb), 0);
    ck_assert_int_eq(ref.has_subject, 1);

    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, "team/img", digest_str(&ref.digest), NULL),
                     0);
    expect_manifest_absent("team/img", digest_str(&ref.digest));
    expect_manifest_absent("team/img", "sig-a");
    expect_manifest_absent("team/img", "sig-b");
    ck_assert_int_eq(
        mlreg_registry_referrers(&idx, NULL, reg, "team/img", &subj.digest, NULL, NULL, 0), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 0);
    ck_assert_int_eq(mlreg_registry_tags_list(&tags, &more, reg, "team/img", -1, NULL), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(tags, "tags")), 1);
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, "team/img", digest_str(&ref.digest), NULL),
                     MLREG_ENOTFOUND);
    json_decref(idx);
    json_decref(tags);
    free(sb);
    free(rb);
}
END_TEST

START_TEST(test_index_requires_its_child_manifests_in_the_repository)
{
    mlreg_manifest_put_result child, res;
    char *cb = plain_body("team/img", "amd64", NULL, NULL, 0);
    char idx[1024];

    ck_assert_int_eq(put(&child, "team/img", "amd64", MLREG_MT_OCI_MANIFEST, cb), 0);
    snprintf(idx, sizeof(idx),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":%zu}]}",
             MLREG_MT_OCI_INDEX, MLREG_MT_OCI_MANIFEST, digest_str(&child.digest), strlen(cb));
    ck_assert_int_eq(put(&res, "team/other", "multi", MLREG_MT_OCI_INDEX, idx), MLREG_EBLOBUNKNOWN);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), digest_str(&child.digest)));
    ck_assert_int_eq(put(&res, "team/img", "multi", MLREG_MT_OCI_INDEX, idx), 0);
    free(cb);
}
END_TEST

START_TEST(test_malformed_manifest_is_invalid)
{
    mlreg_manifest_put_result res;

    ck_assert_int_eq(put(&res, "team/img", "latest", MLREG_MT_OCI_MANIFEST, "{\"schemaVersion\":"),
                     MLREG_EINVALID);
    ck_assert_int_eq(put(&res, "team/img", "latest", "text/plain", "{}"), MLREG_EINVALID);
    expect_manifest_absent("team/img", "latest");
}
END_TEST

/* ---- releases ----------------------------------------------------------------- */

START_TEST(test_release_version_tag_cannot_be_repointed)
{
    mlreg_manifest_put_result r1, r2;
    mlreg_manifest_data *m = NULL;
    static const file_spec other[] = {{"model.bin", "weights", "weights-bytes-v2"}};
    char *b1 = push_release(&r1, "1.0.0", "2026-01-01T00:00:00Z");
    char *b2 = release_body("team/clf", "1.0.0", "2026-01-02T00:00:00Z", NULL, other, 1);
    char *plain = plain_body("team/clf", "not-a-release", NULL, NULL, 0);

    ck_assert_int_eq(put(&r2, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, b2), MLREG_EDENIED);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "immutable"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), digest_str(&r1.digest)));
    /* By digest too: the version tag would move. */
    ck_assert_int_eq(mlreg_digest_buffer(&r2.digest, b2, strlen(b2)), 0);
    ck_assert_int_eq(put(&r2, "team/clf", digest_str(&r2.digest), MLREG_MT_OCI_MANIFEST, b2),
                     MLREG_EDENIED);
    /* And a plain manifest may not take a version tag either. */
    ck_assert_int_eq(put(&r2, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, plain), MLREG_EDENIED);

    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, "team/clf", "1.0.0"), 0);
    ck_assert_str_eq(m->body, b1);
    mlreg_manifest_data_free(m);
    free(b1);
    free(b2);
    free(plain);
}
END_TEST

START_TEST(test_identical_release_pushed_again_is_a_noop)
{
    mlreg_manifest_put_result r1, r2;
    char *b1 = push_release(&r1, "1.0.0", "2026-01-01T00:00:00Z");

    ck_assert_int_eq(r1.created, 1);
    ck_assert_int_eq(put(&r2, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, b1), 0);
    ck_assert_int_eq(r2.created, 0);
    ck_assert(mlreg_digest_equal(&r1.digest, &r2.digest));
    ck_assert_int_eq(put(&r2, "team/clf", digest_str(&r1.digest), MLREG_MT_OCI_MANIFEST, b1), 0);
    ck_assert_int_eq(r2.created, 0);
    free(b1);
}
END_TEST

START_TEST(test_release_pushed_by_digest_gets_its_version_tag)
{
    mlreg_manifest_put_result res;
    mlreg_manifest_data *m = NULL;
    mlreg_digest d;
    char *body = release_body("team/clf", "2.0.0", "2026-01-01T00:00:00Z", NULL, basic_files, 3);

    ck_assert_int_eq(mlreg_digest_buffer(&d, body, strlen(body)), 0);
    ck_assert_int_eq(put(&res, "team/clf", digest_str(&d), MLREG_MT_OCI_MANIFEST, body), 0);
    ck_assert_int_eq(res.created, 1);
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, "team/clf", "2.0.0"), 0);
    ck_assert_str_eq(m->body, body);
    mlreg_manifest_data_free(m);
    free(body);
}
END_TEST

START_TEST(test_release_tag_must_equal_its_version_annotation)
{
    mlreg_manifest_put_result res;
    char *body = release_body("team/clf", "1.0.0", "2026-01-01T00:00:00Z", NULL, basic_files, 3);

    ck_assert_int_eq(put(&res, "team/clf", "latest", MLREG_MT_OCI_MANIFEST, body), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), MLREG_ANN_VERSION));
    expect_manifest_absent("team/clf", "latest");
    expect_manifest_absent("team/clf", "1.0.0");
    /* The model annotation must name the repository it is pushed to. */
    ck_assert_int_eq(put(&res, "team/other", "1.0.0", MLREG_MT_OCI_MANIFEST, body), MLREG_EINVALID);
    free(body);
}
END_TEST

START_TEST(test_release_cannot_be_deleted_by_digest_or_version_tag)
{
    mlreg_manifest_put_result res;
    mlreg_manifest_data *m = NULL;
    char *body = push_release(&res, "1.0.0", "2026-01-01T00:00:00Z");

    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, "team/clf", "1.0.0", NULL), MLREG_EDENIED);
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, "team/clf", digest_str(&res.digest), NULL),
                     MLREG_EDENIED);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "immutable"));
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, "team/clf", "1.0.0"), 0);
    mlreg_manifest_data_free(m);
    free(body);
}
END_TEST

START_TEST(test_release_with_invalid_eval_report_is_refused)
{
    mlreg_manifest_put_result res;
    static const file_spec nan_files[] = {
        {"eval.json", "eval-report", "{\"metrics\":{\"a\":NaN}}"}};
    static const file_spec str_files[] = {
        {"eval.json", "eval-report", "{\"metrics\":{\"accuracy\":\"high\"}}"}};
    static const file_spec none_files[] = {{"eval.json", "eval-report", "{\"model\":\"x\"}"}};
    const file_spec *sets[] = {nan_files, str_files, none_files};
    size_t i;
    char *body;
    json_t *rel = NULL;

    for (i = 0; i < 3; i++) {
        body = release_body("team/clf", "1.0.0", "2026-01-01T00:00:00Z", NULL, sets[i], 1);
        ck_assert_int_eq(put(&res, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, body),
                         MLREG_EINVALID);
        ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "eval report"));
        free(body);
    }
    expect_manifest_absent("team/clf", "1.0.0");
    ck_assert_int_eq(mlreg_registry_release_get(&rel, reg, "team/clf", "1.0.0"), MLREG_ENOTFOUND);
}
END_TEST

typedef struct {
    const char *body;
    int rc;
    int created;
} racer;

static void *race_put(void *arg)
{
    racer *r = arg;
    mlreg_manifest_put_result res;

    memset(&res, 0, sizeof(res));
    r->rc = put(&res, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, r->body);
    r->created = res.created;
    return NULL;
}

START_TEST(test_concurrent_identical_release_pushes_store_it_exactly_once)
{
    char *body = release_body("team/clf", "1.0.0", "2026-01-01T00:00:00Z", NULL, basic_files, 3);
    pthread_t th[4];
    racer r[4];
    int i, created = 0;

    for (i = 0; i < 4; i++) {
        r[i].body = body;
        ck_assert_int_eq(pthread_create(&th[i], NULL, race_put, &r[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(r[i].rc, 0);
        created += r[i].created;
    }
    ck_assert_int_eq(created, 1);
    free(body);
}
END_TEST

/* ---- listings ------------------------------------------------------------- */

static void expect_tags(const char *repo, int n, const char *last, const char *want_csv,
                        int want_more)
{
    json_t *res = NULL, *t;
    int more = -1;
    size_t i;
    char got[256] = "";

    ck_assert_msg(mlreg_registry_tags_list(&res, &more, reg, repo, n, last) == 0, "tags: %s",
                  mlreg_error_last());
    ck_assert_str_eq(json_string_value(json_object_get(res, "name")), repo);
    json_array_foreach(json_object_get(res, "tags"), i, t)
    {
        if (i > 0) strcat(got, ",");
        strcat(got, json_string_value(t));
    }
    ck_assert_str_eq(got, want_csv);
    ck_assert_int_eq(more, want_more);
    json_decref(res);
}

START_TEST(test_tags_are_listed_in_order_and_paged_with_n_and_last)
{
    mlreg_manifest_put_result res;
    char *body = plain_body("team/img", "layer", NULL, NULL, 0);
    const char *tags[] = {"v3", "a", "b", "B", "v10"};
    json_t *out = NULL;
    int more;
    size_t i;

    for (i = 0; i < 5; i++)
        ck_assert_int_eq(put(&res, "team/img", tags[i], MLREG_MT_OCI_MANIFEST, body), 0);
    expect_tags("team/img", -1, NULL, "B,a,b,v10,v3", 0);
    expect_tags("team/img", 2, NULL, "B,a", 1);
    expect_tags("team/img", 2, "a", "b,v10", 1);
    expect_tags("team/img", 2, "v10", "v3", 0);
    expect_tags("team/img", 2, "v3", "", 0);
    expect_tags("team/img", 5, NULL, "B,a,b,v10,v3", 0);
    expect_tags("team/img", 0, NULL, "", 1);
    /* `last` need not be an existing tag. */
    expect_tags("team/img", -1, "c", "v10,v3", 0);
    ck_assert_int_eq(mlreg_registry_tags_list(&out, &more, reg, "team/none", -1, NULL),
                     MLREG_ENOTFOUND);
    ck_assert_ptr_null(out);
    free(body);
}
END_TEST

/* Visible: the names under the prefix @p ctx (a read role limited to it). */
static int under_prefix(const char *name, void *ctx)
{
    return mlreg_name_under(name, ctx);
}

static void expect_catalog(int n, const char *last, const char *prefix, const char *want_csv,
                           int want_more)
{
    json_t *res = NULL, *t;
    int more = -1;
    size_t i;
    char got[512] = "";

    ck_assert_msg(mlreg_registry_catalog(&res, &more, reg, n, last, prefix ? under_prefix : NULL,
                                         (void *)prefix) == 0,
                  "catalog: %s", mlreg_error_last());
    json_array_foreach(json_object_get(res, "repositories"), i, t)
    {
        if (i > 0) strcat(got, ",");
        strcat(got, json_string_value(t));
    }
    ck_assert_str_eq(got, want_csv);
    ck_assert_int_eq(more, want_more);
    json_decref(res);
}

START_TEST(test_repositories_are_listed_in_order_paged_and_filtered)
{
    mlreg_manifest_put_result res;
    const char *repos[] = {"vision/det", "nlp", "vision", "visionary", "vision-x", "a/b/c"};
    json_t *out = NULL;
    int more;
    size_t i;

    expect_catalog(-1, NULL, NULL, "", 0);
    for (i = 0; i < sizeof(repos) / sizeof(repos[0]); i++) {
        char *body = plain_body(repos[i], "layer", NULL, NULL, 0);
        ck_assert_int_eq(put(&res, repos[i], "v1", MLREG_MT_OCI_MANIFEST, body), 0);
        free(body);
    }
    expect_catalog(-1, NULL, NULL, "a/b/c,nlp,vision,vision-x,vision/det,visionary", 0);
    expect_catalog(2, NULL, NULL, "a/b/c,nlp", 1);
    expect_catalog(2, "nlp", NULL, "vision,vision-x", 1);
    expect_catalog(2, "vision-x", NULL, "vision/det,visionary", 0);
    expect_catalog(2, "visionary", NULL, "", 0);
    expect_catalog(0, NULL, NULL, "", 1);
    /* `last` need not be a repository */
    expect_catalog(-1, "m", NULL, "nlp,vision,vision-x,vision/det,visionary", 0);
    /* a prefix sees whole name components only, and pages count what it sees */
    expect_catalog(-1, NULL, "vision", "vision,vision/det", 0);
    expect_catalog(1, NULL, "vision", "vision", 1);
    expect_catalog(1, "vision", "vision", "vision/det", 0);
    expect_catalog(-1, NULL, "nothing", "", 0);
    ck_assert_int_eq(mlreg_registry_catalog(&out, &more, reg, -1, "Bad Name", NULL, NULL),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_registry_catalog(&out, &more, reg, -1, "a/", NULL, NULL),
                     MLREG_EINVALID);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_signature_referrer_pushed_through_the_oci_api_is_denied)
{
    mlreg_manifest_put_result subj, r;
    char *sb = plain_body("team/img", "base", NULL, NULL, 0);
    char *forged;
    json_t *idx = NULL;

    ck_assert_int_eq(put(&subj, "team/img", "v1", MLREG_MT_OCI_MANIFEST, sb), 0);
    forged = plain_body("team/img", "not a signature", MLREG_ARTIFACT_SIGNATURE, &subj.digest,
                        strlen(sb));
    ck_assert_int_eq(put(&r, "team/img", "forged", MLREG_MT_OCI_MANIFEST, forged), MLREG_EDENIED);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "signatures"));
    expect_manifest_absent("team/img", "forged");
    ck_assert_int_eq(
        mlreg_registry_referrers(&idx, NULL, reg, "team/img", &subj.digest, NULL, NULL, 0), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 0);
    json_decref(idx);
    free(forged);
    free(sb);
}
END_TEST

START_TEST(test_referrers_are_listed_with_and_without_artifact_type_filter)
{
    mlreg_manifest_put_result subj, sig, sbom;
    mlreg_digest future;
    char *sb = plain_body("team/img", "base", NULL, NULL, 0);
    char *sigb, *sbomb, *early;
    json_t *idx = NULL, *d;
    const char *at;
    size_t i;
    int seen_sig = 0, seen_sbom = 0;

    ck_assert_int_eq(put(&subj, "team/img", "v1", MLREG_MT_OCI_MANIFEST, sb), 0);
    sigb = plain_body("team/img", "sig", "application/vnd.test.sig", &subj.digest, strlen(sb));
    sbomb = plain_body("team/img", "sbom", NULL, &subj.digest, strlen(sb));
    ck_assert_int_eq(put(&sig, "team/img", "sig", MLREG_MT_OCI_MANIFEST, sigb), 0);
    ck_assert_int_eq(put(&sbom, "team/img", "sbom", MLREG_MT_OCI_MANIFEST, sbomb), 0);
    ck_assert_int_eq(sig.has_subject, 1);
    ck_assert(mlreg_digest_equal(&sig.subject, &subj.digest));

    ck_assert_int_eq(
        mlreg_registry_referrers(&idx, NULL, reg, "team/img", &subj.digest, NULL, NULL, 0), 0);
    ck_assert_str_eq(json_string_value(json_object_get(idx, "mediaType")), MLREG_MT_OCI_INDEX);
    ck_assert_int_eq(json_integer_value(json_object_get(idx, "schemaVersion")), 2);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 2);
    json_array_foreach(json_object_get(idx, "manifests"), i, d)
    {
        at = json_string_value(json_object_get(d, "artifactType"));
        ck_assert_str_eq(json_string_value(json_object_get(d, "mediaType")), MLREG_MT_OCI_MANIFEST);
        if (strcmp(json_string_value(json_object_get(d, "digest")), digest_str(&sig.digest)) == 0) {
            ck_assert_str_eq(at, "application/vnd.test.sig");
            ck_assert_int_eq(json_integer_value(json_object_get(d, "size")), strlen(sigb));
            seen_sig = 1;
        } else {
            ck_assert_str_eq(json_string_value(json_object_get(d, "digest")),
                             digest_str(&sbom.digest));
            /* No artifactType: the config media type stands in (OCI 1.1). */
            ck_assert_str_eq(at, "application/vnd.test.config.v1+json");
            seen_sbom = 1;
        }
    }
    ck_assert(seen_sig && seen_sbom);
    json_decref(idx);

    ck_assert_int_eq(mlreg_registry_referrers(&idx, NULL, reg, "team/img", &subj.digest,
                                              "application/vnd.test.sig", NULL, 0),
                     0);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(idx, "manifests"), 0), "digest")),
                     digest_str(&sig.digest));
    json_decref(idx);

    ck_assert_int_eq(
        mlreg_registry_referrers(&idx, NULL, reg, "team/img", &subj.digest, "x/none", NULL, 0), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 0);
    json_decref(idx);

    /* A referrer may arrive before its subject exists (OCI). */
    ck_assert_int_eq(mlreg_digest_buffer(&future, "not pushed yet", 14), 0);
    early = plain_body("team/img", "early", "application/vnd.test.sig", &future, 14);
    ck_assert_int_eq(put(&sig, "team/img", "early", MLREG_MT_OCI_MANIFEST, early), 0);
    ck_assert_int_eq(mlreg_registry_referrers(&idx, NULL, reg, "team/img", &future, NULL, NULL, 0),
                     0);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 1);
    json_decref(idx);
    free(sb);
    free(sigb);
    free(sbomb);
    free(early);
}
END_TEST

static json_t *find_release(json_t *list, const char *version)
{
    size_t i;
    json_t *r;

    json_array_foreach(list, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "version")), version) == 0) return r;
    }
    return NULL;
}

START_TEST(test_models_model_and_release_json_carry_versions_files_and_metrics)
{
    mlreg_manifest_put_result r1, r2, r3, r4;
    static const file_spec small[] = {{"w.bin", "weights", "12345"}};
    char *b1 = push_release(&r1, "1.9.0", "2026-03-01T10:00:00Z");
    char *b2 = push_release(&r2, "1.10.0", "2026-03-01T10:00:00Z");
    char *b3 = push_release(&r3, "0.1.0", "2026-01-01T00:00:00+01:00");
    char *b4 = release_body("team/other", "1.0.0", "2026-02-01T00:00:00Z", NULL, small, 1);
    json_t *models = NULL, *model = NULL, *rel = NULL, *m, *list, *files, *metrics, *f;

    ck_assert_int_eq(put(&r4, "team/other", "1.0.0", MLREG_MT_OCI_MANIFEST, b4), 0);

    ck_assert_int_eq(mlreg_registry_models_list(&models, reg), 0);
    list = json_object_get(models, "models");
    ck_assert_uint_eq(json_array_size(list), 2);
    m = json_array_get(list, 0);
    ck_assert_str_eq(json_string_value(json_object_get(m, "name")), "team/clf");
    ck_assert_int_eq(json_integer_value(json_object_get(m, "releases")), 3);
    /* Same created time: 1.10.0 sorts after 1.9.0 (natural version order). */
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "latest"), "version")),
                     "1.10.0");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "latest"), "digest")),
                     digest_str(&r2.digest));
    m = json_array_get(list, 1);
    ck_assert_str_eq(json_string_value(json_object_get(m, "name")), "team/other");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "latest"), "created")),
                     "2026-02-01T00:00:00Z");

    ck_assert_int_eq(mlreg_registry_model_get(&model, reg, "team/clf"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(model, "name")), "team/clf");
    list = json_object_get(model, "releases");
    ck_assert_uint_eq(json_array_size(list), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "version")),
                     "0.1.0");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 1), "version")),
                     "1.9.0");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 2), "version")),
                     "1.10.0");
    m = find_release(list, "1.9.0");
    ck_assert_int_eq(json_integer_value(json_object_get(m, "files")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(m, "size")),
                     strlen(basic_files[0].content) + strlen(basic_files[1].content) +
                         strlen(basic_files[2].content));
    ck_assert_str_eq(json_string_value(json_object_get(m, "git_sha")), "abcdef1");
    ck_assert_str_eq(json_string_value(json_object_get(m, "created")), "2026-03-01T10:00:00Z");
    ck_assert_str_eq(json_string_value(json_object_get(m, "digest")), digest_str(&r1.digest));
    metrics = json_object_get(m, "metrics");
    ck_assert_double_eq(json_real_value(json_object_get(metrics, "accuracy")), 0.91);
    ck_assert_double_eq(json_real_value(json_object_get(metrics, "retrieval.hit_rate")), 0.75);

    ck_assert_int_eq(mlreg_registry_release_get(&rel, reg, "team/clf", "1.9.0"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(rel, "model")), "team/clf");
    ck_assert_str_eq(json_string_value(json_object_get(rel, "version")), "1.9.0");
    ck_assert_str_eq(json_string_value(json_object_get(rel, "eval_dataset")), "squad");
    files = json_object_get(rel, "files");
    ck_assert_uint_eq(json_array_size(files), 3);
    f = json_array_get(files, 0);
    ck_assert_str_eq(json_string_value(json_object_get(f, "title")), "model.bin");
    ck_assert_str_eq(json_string_value(json_object_get(f, "kind")), "weights");
    ck_assert_str_eq(json_string_value(json_object_get(f, "media_type")),
                     "application/vnd.mlreg.weights.v1");
    ck_assert_int_eq(json_integer_value(json_object_get(f, "size")), 16);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(files, 2), "kind")),
                     "eval-report");
    ck_assert_double_eq(
        json_real_value(json_object_get(json_object_get(rel, "metrics"), "retrieval.hit_rate")),
        0.75);
    json_decref(rel);
    rel = NULL;

    /* No eval report and no git SHA: empty metrics, nulls. */
    ck_assert_int_eq(mlreg_registry_release_get(&rel, reg, "team/other", "1.0.0"), 0);
    ck_assert(json_is_null(json_object_get(rel, "git_sha")));
    ck_assert(json_is_null(json_object_get(rel, "eval_dataset")));
    ck_assert_uint_eq(json_object_size(json_object_get(rel, "metrics")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(rel, "size")), 5);
    json_decref(rel);
    rel = NULL;

    ck_assert_int_eq(mlreg_registry_release_get(&rel, reg, "team/clf", "9.9.9"), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_registry_model_get(&model, reg, "team/none"), MLREG_ENOTFOUND);
    json_decref(models);
    json_decref(model);
    free(b1);
    free(b2);
    free(b3);
    free(b4);
}
END_TEST

START_TEST(test_registry_reopened_after_close_still_has_everything)
{
    mlreg_manifest_put_result rel, img;
    mlreg_manifest_data *m = NULL;
    json_t *j = NULL;
    uint64_t size;
    mlreg_digest w;
    char *rb = push_release(&rel, "1.0.0", "2026-01-01T00:00:00Z");
    char *ib = plain_body("team/clf", "extra", NULL, NULL, 0);

    ck_assert_int_eq(put(&img, "team/clf", "scratch", MLREG_MT_OCI_MANIFEST, ib), 0);
    mlreg_registry_free(reg);
    reg = NULL;
    open_registry(NULL, 0);

    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, "team/clf", "1.0.0"), 0);
    ck_assert_str_eq(m->body, rb);
    mlreg_manifest_data_free(m);
    ck_assert_int_eq(mlreg_digest_buffer(&w, "weights-bytes-v1", 16), 0);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, "team/clf", &w), 0);
    ck_assert_uint_eq(size, 16);
    expect_tags("team/clf", -1, NULL, "1.0.0,scratch", 0);
    ck_assert_int_eq(mlreg_registry_release_get(&j, reg, "team/clf", "1.0.0"), 0);
    ck_assert_double_eq(json_real_value(json_object_get(json_object_get(j, "metrics"), "accuracy")),
                        0.91);
    json_decref(j);
    /* Immutability survives the restart. */
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, "team/clf", "1.0.0", NULL), MLREG_EDENIED);
    free(rb);
    free(ib);
}
END_TEST

/* ---- with the fake backend -------------------------------------------------- */

START_TEST(test_failed_manifest_put_never_touches_the_blob_write_path)
{
    mlreg_manifest_put_result res;
    char *body = release_body("team/clf", "1.0.0", "2026-01-01T00:00:00Z", NULL, basic_files, 3);
    json_t *doc = json_loads(body, 0, NULL);
    char *bad;

    json_object_set_new(json_array_get(json_object_get(doc, "layers"), 1), "digest",
                        json_string("sha256:"
                                    "7777777777777777777777777777777777777777777777777777777777"
                                    "777777"));
    bad = json_dumps(doc, JSON_COMPACT);
    th_fake_reset_counters(fake);
    ck_assert_int_eq(put(&res, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, bad),
                     MLREG_EBLOBUNKNOWN);
    /* The repository's links already say the blob is unknown, so the store
     * is not even asked; nothing is written. */
    ck_assert_int_eq(fake->n_stat, 0);
    ck_assert_int_eq(fake->n_open_write, 0);
    ck_assert_int_eq(fake->n_commit, 0);
    ck_assert_int_eq(fake->n_remove, 0);
    ck_assert_int_eq(fake->n_open_read, 0);

    /* A successful release PUT reads the eval report once and writes one
     * blob: the manifest bytes, which its audit entry names so that the log
     * and the store rebuild the metadata (docs/audit-api.md). */
    th_fake_reset_counters(fake);
    ck_assert_int_eq(put(&res, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, body), 0);
    ck_assert_int_eq(fake->n_stat, 4);
    ck_assert_int_eq(fake->n_open_read, 1);
    ck_assert_int_eq(fake->n_open_write, 1);
    ck_assert_int_eq(fake->n_commit, 1);
    ck_assert_int_eq(fake->n_remove, 0);
    json_decref(doc);
    free(bad);
    free(body);
}
END_TEST

START_TEST(test_eval_report_corrupted_in_the_store_is_refused)
{
    mlreg_manifest_put_result res;
    char *body = release_body("team/clf", "1.0.0", "2026-01-01T00:00:00Z", NULL, basic_files, 3);
    mlreg_digest eval;
    th_fake_blob *blob;
    json_t *rel = NULL;

    ck_assert_int_eq(
        mlreg_digest_buffer(&eval, basic_files[2].content, strlen(basic_files[2].content)), 0);
    blob = th_fake_find(fake, &eval);
    ck_assert_ptr_nonnull(blob);
    blob->data[0] = '['; /* same size, different bytes */
    ck_assert_int_eq(put(&res, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, body), MLREG_EIO);
    ck_assert_int_eq(mlreg_registry_release_get(&rel, reg, "team/clf", "1.0.0"), MLREG_ENOTFOUND);
    free(body);
}
END_TEST

START_TEST(test_blob_missing_from_the_store_but_linked_is_unknown)
{
    mlreg_manifest_put_result res;
    char *body = plain_body("team/img", "layer-1", NULL, NULL, 0);
    mlreg_digest lay;

    ck_assert_int_eq(mlreg_digest_buffer(&lay, "layer-1", 7), 0);
    ck_assert_int_eq(fake->parent.remove(&fake->parent, &lay), 0);
    ck_assert_int_eq(put(&res, "team/img", "latest", MLREG_MT_OCI_MANIFEST, body),
                     MLREG_EBLOBUNKNOWN);
    expect_manifest_absent("team/img", "latest");
    free(body);
}
END_TEST

START_TEST(test_blob_of_another_repository_is_never_read_or_sized_by_a_manifest_put)
{
    mlreg_manifest_put_result res;
    mlreg_digest secret;
    const char *text = "not json: secret-token hunter2";
    char *body = release_body("team/clf", "1.0.0", "2026-01-01T00:00:00Z", NULL, basic_files, 3);
    char *edited, *plain;
    json_t *doc, *eval;

    /* A blob that only other/secret may see, named as team/clf's eval report
     * with its true size: parsing it would echo its bytes in the error. */
    th_put_blob(&secret, reg, "other/secret", NULL, text);
    doc = json_loads(body, 0, NULL);
    eval = json_array_get(json_object_get(doc, "layers"), 2);
    json_object_set_new(eval, "digest", json_string(digest_str(&secret)));
    json_object_set_new(eval, "size", json_integer((json_int_t)strlen(text)));
    edited = json_dumps(doc, JSON_COMPACT);
    th_fake_reset_counters(fake);
    ck_assert_int_eq(put(&res, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, edited),
                     MLREG_EBLOBUNKNOWN);
    ck_assert_msg(strstr(mlreg_error_last(), "hunter2") == NULL, "leaked: %s", mlreg_error_last());
    ck_assert_int_eq(fake->n_open_read, 0);

    /* With a wrong size, the answer must not reveal the real one either. */
    json_object_set_new(eval, "size", json_integer(1));
    free(edited);
    edited = json_dumps(doc, JSON_COMPACT);
    th_fake_reset_counters(fake);
    ck_assert_int_eq(put(&res, "team/clf", "1.0.0", MLREG_MT_OCI_MANIFEST, edited),
                     MLREG_EBLOBUNKNOWN);
    ck_assert_int_eq(fake->n_stat, 0);

    /* The same holds for a plain image. */
    plain = plain_body("other/secret", "other layer", NULL, NULL, 0);
    th_fake_reset_counters(fake);
    ck_assert_int_eq(put(&res, "team/clf", "latest", MLREG_MT_OCI_MANIFEST, plain),
                     MLREG_EBLOBUNKNOWN);
    ck_assert_int_eq(fake->n_stat, 0);
    expect_manifest_absent("team/clf", "1.0.0");
    expect_manifest_absent("team/clf", "latest");
    json_decref(doc);
    free(edited);
    free(plain);
    free(body);
}
END_TEST

START_TEST(test_registry_metadata_directory_is_private_to_its_owner)
{
    struct stat st;
    char path[128];

    snprintf(path, sizeof(path), "%s/meta", fx.dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg((st.st_mode & 077) == 0, "meta/ has mode %o", (unsigned)(st.st_mode & 0777));
}
END_TEST

START_TEST(test_referrers_are_paged_after_the_last_digest_with_and_without_a_filter)
{
    mlreg_manifest_put_result subj, r;
    char *sb = plain_body("team/img", "base", NULL, NULL, 0), *body, name[16];
    json_t *idx = NULL, *all = NULL, *seen = json_array();
    mlreg_digest last;
    int more = -1;

    ck_assert_int_eq(put(&subj, "team/img", "v1", MLREG_MT_OCI_MANIFEST, sb), 0);
    for (int i = 0; i < 7; i++) {
        snprintf(name, sizeof(name), "ref%d", i);
        body = plain_body("team/img", name, i % 2 ? "application/vnd.test.sig" : NULL, &subj.digest,
                          strlen(sb));
        ck_assert_int_eq(put(&r, "team/img", name, MLREG_MT_OCI_MANIFEST, body), 0);
        free(body);
    }
    ck_assert_int_eq(
        mlreg_registry_referrers(&all, &more, reg, "team/img", &subj.digest, NULL, NULL, 0), 0);
    ck_assert_int_eq(more, 0);
    ck_assert_uint_eq(json_array_size(json_object_get(all, "manifests")), 7);

    /* pages of 3: 3 + 3 + 1, in digest order, each referrer once */
    for (int page = 0;; page++) {
        ck_assert_int_eq(mlreg_registry_referrers(&idx, &more, reg, "team/img", &subj.digest, NULL,
                                                  page ? &last : NULL, 3),
                         0);
        json_t *m = json_object_get(idx, "manifests");
        ck_assert_uint_eq(json_array_size(m), page < 2 ? 3 : 1);
        ck_assert_int_eq(more, page < 2);
        json_array_extend(seen, m);
        ck_assert_int_eq(
            mlreg_digest_parse(&last, json_string_value(json_object_get(
                                          json_array_get(m, json_array_size(m) - 1), "digest"))),
            0);
        json_decref(idx);
        if (!more) break;
    }
    ck_assert(json_equal(seen, json_object_get(all, "manifests")));

    /* with a filter, the page counts only matching referrers: 3 sigs, pages of 2 */
    ck_assert_int_eq(mlreg_registry_referrers(&idx, &more, reg, "team/img", &subj.digest,
                                              "application/vnd.test.sig", NULL, 2),
                     0);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 2);
    ck_assert_int_eq(more, 1);
    ck_assert_int_eq(
        mlreg_digest_parse(&last,
                           json_string_value(json_object_get(
                               json_array_get(json_object_get(idx, "manifests"), 1), "digest"))),
        0);
    json_decref(idx);
    ck_assert_int_eq(mlreg_registry_referrers(&idx, &more, reg, "team/img", &subj.digest,
                                              "application/vnd.test.sig", &last, 2),
                     0);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 1);
    ck_assert_int_eq(more, 0);
    json_decref(idx);

    /* a limit over the page cap is clamped, not refused */
    ck_assert_int_eq(mlreg_registry_referrers(&idx, &more, reg, "team/img", &subj.digest, NULL,
                                              NULL, MLREG_PAGE_LIMIT_MAX + 5),
                     0);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 7);
    json_decref(idx);
    json_decref(all);
    json_decref(seen);
    free(sb);
}
END_TEST

/* nftw callback: counts entries (symlinks aside) with a group or other bit. */
static int open_entries;
static int count_open(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_SL && (st->st_mode & 077) != 0) {
        fprintf(stderr, "open entry: %s mode %o\n", path, (unsigned)(st->st_mode & 07777));
        open_entries++;
    }
    return 0;
}

START_TEST(test_every_entry_of_a_new_data_directory_is_private_whatever_the_umask)
{
    mlreg_registry *fresh = NULL;
    mlreg_registry_opts opts;
    mlreg_blob_writer *w = NULL;
    mlreg_digest d;
    char dir[128];
    mode_t old = umask(0);

    snprintf(dir, sizeof(dir), "%s/fresh/data", fx.dir);
    memset(&opts, 0, sizeof(opts));
    opts.data_dir = dir;
    opts.map_size = 64u * 1024 * 1024;
    ck_assert_msg(mlreg_registry_open(&fresh, &opts) == 0, "open: %s", mlreg_error_last());
    ck_assert_int_eq(mlreg_blobstore_open_write(&w, mlreg_registry_blobstore(fresh), 5), 0);
    ck_assert_int_eq(mlreg_blob_writer_write(w, "bytes", 5), 0);
    ck_assert_int_eq(mlreg_blob_writer_commit(&d, w, NULL, 5), 0);
    umask(old);
    open_entries = 0;
    snprintf(dir, sizeof(dir), "%s/fresh", fx.dir);
    ck_assert_int_eq(nftw(dir, count_open, 16, FTW_PHYS), 0);
    ck_assert_int_eq(open_entries, 0);
    mlreg_registry_free(fresh);
}
END_TEST

START_TEST(test_make_private_removes_group_and_other_bits_without_following_symlinks)
{
    char blobs[128], pub[128], link[128], outside[] = "/tmp/mlreg-check-outside-XXXXXX";
    struct stat st;
    size_t fixed = 99;
    int fd = mkstemp(outside);

    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(chmod(outside, 0644), 0);
    snprintf(blobs, sizeof(blobs), "%s/blobs", fx.dir);
    snprintf(pub, sizeof(pub), "%s/audit/log.pub", fx.dir);
    snprintf(link, sizeof(link), "%s/link", fx.dir);
    ck_assert_int_eq(chmod(fx.dir, 0755), 0);
    ck_assert_int_eq(chmod(blobs, 0751), 0);
    ck_assert_int_eq(chmod(pub, 0640), 0);
    ck_assert_int_eq(symlink(outside, link), 0);

    ck_assert_msg(mlreg_registry_make_private(&fixed, NULL, fx.dir) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(fixed, 3);
    ck_assert_int_eq(stat(fx.dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    ck_assert_int_eq(stat(blobs, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    ck_assert_int_eq(stat(pub, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(stat(outside, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0644);

    ck_assert_int_eq(mlreg_registry_make_private(&fixed, NULL, fx.dir), 0);
    ck_assert_uint_eq(fixed, 0);
    unlink(outside);
}
END_TEST

START_TEST(test_make_private_walks_only_what_mlreg_keeps_and_only_what_it_owns)
{
    char other[128], blob_dir[128], mine[160], theirs[160];
    struct stat st;
    size_t fixed = 99, foreign = 99;
    FILE *f;

    /* a file of the operator's beside mlreg's own directories */
    snprintf(other, sizeof(other), "%s/notes.txt", fx.dir);
    ck_assert_ptr_nonnull(f = fopen(other, "w"));
    fclose(f);
    ck_assert_int_eq(chmod(other, 0644), 0);
    /* two blobs-like files, one ours, one another user's */
    snprintf(blob_dir, sizeof(blob_dir), "%s/blobs/extra", fx.dir);
    ck_assert_int_eq(mkdir(blob_dir, 0755), 0);
    snprintf(mine, sizeof(mine), "%s/mine", blob_dir);
    snprintf(theirs, sizeof(theirs), "%s/theirs", blob_dir);
    ck_assert_ptr_nonnull(f = fopen(mine, "w"));
    fclose(f);
    ck_assert_ptr_nonnull(f = fopen(theirs, "w"));
    fclose(f);
    ck_assert_int_eq(chmod(mine, 0644), 0);
    ck_assert_int_eq(chmod(theirs, 0644), 0);
    if (geteuid() == 0) ck_assert_int_eq(chown(theirs, 65534, 65534), 0);

    ck_assert_msg(mlreg_registry_make_private(&fixed, &foreign, fx.dir) == 0, "%s",
                  mlreg_error_last());
    ck_assert_int_eq(stat(other, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0644); /* not mlreg's: left alone */
    ck_assert_int_eq(stat(mine, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(stat(blob_dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    ck_assert_int_eq(stat(theirs, &st), 0);
    if (geteuid() == 0) {
        /* only root can give a file away: then it is counted, not changed */
        ck_assert_uint_eq(st.st_mode & 07777, 0644);
        ck_assert_uint_eq(foreign, 1);
        ck_assert_uint_eq(fixed, 2);
    } else {
        ck_assert_uint_eq(foreign, 0);
        ck_assert_uint_eq(fixed, 3);
    }
    unlink(mine);
    unlink(theirs);
    rmdir(blob_dir);
    unlink(other);
}
END_TEST

START_TEST(test_make_private_of_a_data_directory_not_made_yet_fixes_nothing)
{
    char dir[128];
    size_t fixed = 99;

    snprintf(dir, sizeof(dir), "%s/not-yet", fx.dir);
    ck_assert_int_eq(mlreg_registry_make_private(&fixed, NULL, dir), 0);
    ck_assert_uint_eq(fixed, 0);
}
END_TEST

static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tb = tcase_create("blobs");
    TCase *tm = tcase_create("manifests");
    TCase *tr = tcase_create("releases");
    TCase *tl = tcase_create("listings");
    TCase *tf = tcase_create("fake_backend");

    tcase_add_checked_fixture(tb, setup_fs, teardown);
    tcase_add_test(tb, test_linked_blob_is_visible_in_its_repository_only);
    tcase_add_test(tb, test_blob_open_reads_back_the_stored_bytes);
    tcase_add_test(tb, test_blob_mount_links_from_a_repository_that_has_it);
    tcase_add_test(tb, test_blob_unlink_removes_visibility_but_not_from_a_release);
    suite_add_tcase(s, tb);

    tcase_add_checked_fixture(tm, setup_fs, teardown);
    tcase_add_test(tm, test_manifest_put_by_tag_is_fetched_by_tag_and_digest_byte_for_byte);
    tcase_add_test(tm, test_manifest_put_by_wrong_digest_is_a_mismatch_and_stores_nothing);
    tcase_add_test(tm, test_manifest_over_the_size_limit_is_too_big);
    tcase_add_test(tm, test_manifest_referencing_an_unknown_blob_is_refused_and_stores_nothing);
    tcase_add_test(tm, test_blob_stored_for_another_repository_is_unknown_here);
    tcase_add_test(tm, test_blob_size_different_from_descriptor_is_invalid);
    tcase_add_test(tm, test_plain_tag_can_be_repointed_and_deleted);
    tcase_add_test(tm, test_delete_by_digest_removes_manifest_its_tags_and_referrer_entry);
    tcase_add_test(tm, test_index_requires_its_child_manifests_in_the_repository);
    tcase_add_test(tm, test_malformed_manifest_is_invalid);
    suite_add_tcase(s, tm);

    tcase_add_checked_fixture(tr, setup_fs, teardown);
    tcase_add_test(tr, test_release_referencing_an_unknown_blob_is_refused_and_indexes_nothing);
    tcase_add_test(tr, test_release_version_tag_cannot_be_repointed);
    tcase_add_test(tr, test_identical_release_pushed_again_is_a_noop);
    tcase_add_test(tr, test_release_pushed_by_digest_gets_its_version_tag);
    tcase_add_test(tr, test_release_tag_must_equal_its_version_annotation);
    tcase_add_test(tr, test_release_cannot_be_deleted_by_digest_or_version_tag);
    tcase_add_test(tr, test_release_with_invalid_eval_report_is_refused);
    tcase_add_test(tr, test_registry_reopened_after_close_still_has_everything);
    tcase_add_test(tr, test_concurrent_identical_release_pushes_store_it_exactly_once);
    tcase_add_test(tr, test_registry_metadata_directory_is_private_to_its_owner);
    tcase_add_test(tr, test_every_entry_of_a_new_data_directory_is_private_whatever_the_umask);
    tcase_add_test(tr, test_make_private_removes_group_and_other_bits_without_following_symlinks);
    tcase_add_test(tr, test_make_private_walks_only_what_mlreg_keeps_and_only_what_it_owns);
    tcase_add_test(tr, test_make_private_of_a_data_directory_not_made_yet_fixes_nothing);
    suite_add_tcase(s, tr);

    tcase_add_checked_fixture(tl, setup_fs, teardown);
    tcase_add_test(tl, test_tags_are_listed_in_order_and_paged_with_n_and_last);
    tcase_add_test(tl, test_repositories_are_listed_in_order_paged_and_filtered);
    tcase_add_test(tl, test_referrers_are_listed_with_and_without_artifact_type_filter);
    tcase_add_test(tl, test_referrers_are_paged_after_the_last_digest_with_and_without_a_filter);
    tcase_add_test(tl, test_signature_referrer_pushed_through_the_oci_api_is_denied);
    tcase_add_test(tl, test_models_model_and_release_json_carry_versions_files_and_metrics);
    suite_add_tcase(s, tl);

    tcase_add_checked_fixture(tf, setup_fake, teardown);
    tcase_add_test(tf, test_failed_manifest_put_never_touches_the_blob_write_path);
    tcase_add_test(tf, test_eval_report_corrupted_in_the_store_is_refused);
    tcase_add_test(tf, test_blob_missing_from_the_store_but_linked_is_unknown);
    tcase_add_test(tf, test_blob_of_another_repository_is_never_read_or_sized_by_a_manifest_put);
    suite_add_tcase(s, tf);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(registry_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
