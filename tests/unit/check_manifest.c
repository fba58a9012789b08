/* check_manifest.c: manifest parsing, release rules and eval-report parsing. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/chunk_index.h"
#include "mlreg/common.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"
#include "mlreg/registry.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D5 "sha256:5555555555555555555555555555555555555555555555555555555555555555"

static json_t *layer(const char *media_type, const char *digest, json_int_t size, const char *title,
                     const char *kind)
{
    json_t *l = json_pack("{s:s, s:s, s:I, s:{}}", "mediaType", media_type, "digest", digest,
                          "size", size, "annotations");
    json_t *ann = json_object_get(l, "annotations");

    if (title) json_object_set_new(ann, MLREG_ANN_TITLE, json_string(title));
    if (kind) json_object_set_new(ann, MLREG_ANN_KIND, json_string(kind));
    return l;
}

/* A valid release of team/clf@1.0.0 with weights, tokenizer and eval report. */
static json_t *good_release(void)
{
    json_t *m = json_pack(
        "{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[], s:{s:s, s:s, s:s, s:s}}", "schemaVersion", 2,
        "mediaType", MLREG_MT_OCI_MANIFEST, "artifactType", MLREG_ARTIFACT_RELEASE, "config",
        "mediaType", MLREG_MT_OCI_EMPTY, "digest", MLREG_EMPTY_CONFIG_DIGEST, "size", 2, "layers",
        "annotations", MLREG_ANN_MODEL, "team/clf", MLREG_ANN_VERSION, "1.0.0", MLREG_ANN_GIT_SHA,
        "0123456789abcdef0123456789abcdef01234567", MLREG_ANN_CREATED, "2026-11-26T03:00:00Z");
    json_t *layers = json_object_get(m, "layers");

    json_array_append_new(
        layers, layer("application/vnd.mlreg.weights.v1", D1, 100, "model.bin", "weights"));
    json_array_append_new(
        layers, layer("application/vnd.mlreg.tokenizer.v1", D2, 10, "tokenizer.json", "tokenizer"));
    json_array_append_new(layers, layer(MLREG_MT_EVAL_REPORT, D3, 50, "eval.json", "eval-report"));
    return m;
}

/* Parses @p doc as a manifest and applies the release rules for team/clf. */
static int check_release(json_t *doc)
{
    char *body = json_dumps(doc, JSON_COMPACT);
    mlreg_manifest *m = NULL;
    mlreg_release_info info;
    int error;

    ck_assert_ptr_nonnull(body);
    error = mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, body, strlen(body));
    if (error == 0) {
        ck_assert_int_eq(mlreg_manifest_is_release(m), 1);
        error = mlreg_release_validate(&info, m, "team/clf");
    }
    mlreg_manifest_free(m);
    free(body);
    json_decref(doc);
    return error;
}

static json_t *layer_at(json_t *doc, size_t i)
{
    return json_array_get(json_object_get(doc, "layers"), i);
}

static void set_layer_ann(json_t *doc, size_t i, const char *key, const char *value)
{
    json_object_set_new(json_object_get(layer_at(doc, i), "annotations"), key, json_string(value));
}

static void expect_invalid_naming(int error, const char *needle)
{
    ck_assert_int_eq(error, MLREG_EINVALID);
    ck_assert_msg(strstr(mlreg_error_last(), needle) != NULL, "message '%s' should name '%s'",
                  mlreg_error_last(), needle);
}

/* ---- generic manifests -------------------------------------------------- */

START_TEST(test_good_release_passes_and_reports_its_fields)
{
    json_t *doc = good_release();
    char *body = json_dumps(doc, JSON_COMPACT);
    mlreg_manifest *m = NULL;
    mlreg_release_info info;

    ck_assert_int_eq(mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, body, strlen(body)), 0);
    ck_assert_int_eq(m->kind, MLREG_MANIFEST_IMAGE);
    ck_assert_uint_eq(m->nlayers, 3);
    ck_assert_str_eq(m->layers[0].digest_str, D1);
    ck_assert_uint_eq(m->layers[0].size, 100);
    ck_assert_str_eq(mlreg_release_layer_kind(&m->layers[1]), "tokenizer");
    ck_assert_int_eq(mlreg_release_validate(&info, m, "team/clf"), 0);
    ck_assert_str_eq(info.model, "team/clf");
    ck_assert_str_eq(info.version, "1.0.0");
    ck_assert_int_eq(info.has_eval_report, 1);
    ck_assert_uint_eq(info.eval_report_index, 2);
    ck_assert_int_eq(info.created_sec, 1795662000); /* 2026-11-26T03:00:00Z */
    mlreg_manifest_free(m);
    json_decref(doc);
    free(body);
}
END_TEST

START_TEST(test_manifest_without_content_type_uses_body_media_type)
{
    json_t *doc = good_release();
    char *body = json_dumps(doc, JSON_COMPACT);
    mlreg_manifest *m = NULL;

    ck_assert_int_eq(mlreg_manifest_parse(&m, NULL, body, strlen(body)), 0);
    ck_assert_str_eq(m->media_type, MLREG_MT_OCI_MANIFEST);
    mlreg_manifest_free(m);
    free(body);
    json_decref(doc);
}
END_TEST

START_TEST(test_content_type_parameters_are_ignored)
{
    const char *body = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x/y\",\"digest\":\"" D1
                       "\",\"size\":1},\"layers\":[]}";
    mlreg_manifest *m = NULL;

    ck_assert_int_eq(mlreg_manifest_parse(&m,
                                          " application/vnd.oci.image.manifest.v1+json; "
                                          "charset=utf-8",
                                          body, strlen(body)),
                     0);
    ck_assert_str_eq(m->media_type, MLREG_MT_OCI_MANIFEST);
    ck_assert_int_eq(mlreg_manifest_is_release(m), 0);
    mlreg_manifest_free(m);
}
END_TEST

START_TEST(test_body_media_type_contradicting_content_type_is_invalid)
{
    json_t *doc = good_release();
    char *body = json_dumps(doc, JSON_COMPACT);
    mlreg_manifest *m = NULL;

    expect_invalid_naming(mlreg_manifest_parse(&m, MLREG_MT_OCI_INDEX, body, strlen(body)),
                          "contradicts");
    ck_assert_ptr_null(m);
    free(body);
    json_decref(doc);
}
END_TEST

START_TEST(test_unknown_content_type_is_invalid)
{
    json_t *doc = good_release();
    char *body = json_dumps(doc, JSON_COMPACT);
    mlreg_manifest *m = NULL;

    expect_invalid_naming(mlreg_manifest_parse(&m, "text/plain", body, strlen(body)),
                          "content type 'text/plain'");
    free(body);
    json_decref(doc);
}
END_TEST

START_TEST(test_schema_version_other_than_two_is_invalid)
{
    json_t *doc = good_release();
    char *body;
    mlreg_manifest *m = NULL;

    json_object_set_new(doc, "schemaVersion", json_integer(1));
    body = json_dumps(doc, JSON_COMPACT);
    expect_invalid_naming(mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, body, strlen(body)),
                          "schemaVersion");
    free(body);
    json_decref(doc);
}
END_TEST

START_TEST(test_malformed_or_duplicate_key_json_is_invalid)
{
    const char *truncated = "{\"schemaVersion\":2,\"config\":{";
    const char *dup = "{\"schemaVersion\":2,\"schemaVersion\":2}";
    mlreg_manifest *m = NULL;

    expect_invalid_naming(
        mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, truncated, strlen(truncated)),
        "not valid JSON");
    expect_invalid_naming(mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, dup, strlen(dup)),
                          "not valid JSON");
    expect_invalid_naming(mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, "[]", 2), "object");
}
END_TEST

START_TEST(test_bad_digest_in_a_layer_is_invalid_and_named)
{
    json_t *doc = good_release();
    char *body;
    mlreg_manifest *m = NULL;

    json_object_set_new(layer_at(doc, 1), "digest", json_string("sha256:ABC"));
    body = json_dumps(doc, JSON_COMPACT);
    expect_invalid_naming(mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, body, strlen(body)),
                          "layers[1].digest");
    free(body);
    json_decref(doc);
}
END_TEST

START_TEST(test_negative_or_fractional_size_is_invalid)
{
    json_t *doc = good_release();
    char *body;
    mlreg_manifest *m = NULL;

    json_object_set_new(layer_at(doc, 0), "size", json_integer(-1));
    body = json_dumps(doc, JSON_COMPACT);
    expect_invalid_naming(mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, body, strlen(body)),
                          "layers[0].size");
    free(body);
    json_object_set_new(layer_at(doc, 0), "size", json_real(1.5));
    body = json_dumps(doc, JSON_COMPACT);
    expect_invalid_naming(mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, body, strlen(body)),
                          "layers[0].size");
    free(body);
    json_decref(doc);
}
END_TEST

START_TEST(test_missing_config_or_non_string_annotation_is_invalid)
{
    json_t *doc = good_release();
    char *body;
    mlreg_manifest *m = NULL;

    json_object_set_new(json_object_get(doc, "annotations"), "x", json_integer(1));
    body = json_dumps(doc, JSON_COMPACT);
    expect_invalid_naming(mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, body, strlen(body)),
                          "annotations['x']");
    free(body);
    json_object_del(json_object_get(doc, "annotations"), "x");
    json_object_del(doc, "config");
    body = json_dumps(doc, JSON_COMPACT);
    expect_invalid_naming(mlreg_manifest_parse(&m, MLREG_MT_OCI_MANIFEST, body, strlen(body)),
                          "config");
    free(body);
    json_decref(doc);
}
END_TEST

START_TEST(test_index_lists_child_manifests_and_subject_is_parsed)
{
    const char *body =
        "{\"schemaVersion\":2,\"mediaType\":\"" MLREG_MT_OCI_INDEX
        "\",\"manifests\":[{\"mediaType\":\"" MLREG_MT_OCI_MANIFEST "\",\"digest\":\"" D1
        "\",\"size\":10}],\"subject\":{\"mediaType\":\"" MLREG_MT_OCI_MANIFEST "\",\"digest\":\"" D2
        "\",\"size\":5}}";
    mlreg_manifest *m = NULL;

    ck_assert_int_eq(mlreg_manifest_parse(&m, NULL, body, strlen(body)), 0);
    ck_assert_int_eq(m->kind, MLREG_MANIFEST_INDEX);
    ck_assert_int_eq(m->has_config, 0);
    ck_assert_uint_eq(m->nlayers, 1);
    ck_assert_str_eq(m->layers[0].digest_str, D1);
    ck_assert_int_eq(m->has_subject, 1);
    ck_assert_str_eq(m->subject.digest_str, D2);
    mlreg_manifest_free(m);
}
END_TEST

START_TEST(test_index_with_layers_is_ambiguous_and_invalid)
{
    const char *body = "{\"schemaVersion\":2,\"mediaType\":\"" MLREG_MT_OCI_INDEX
                       "\",\"manifests\":[],\"layers\":[]}";
    mlreg_manifest *m = NULL;

    expect_invalid_naming(mlreg_manifest_parse(&m, NULL, body, strlen(body)), "layers");
}
END_TEST

START_TEST(test_docker_v2_manifest_is_accepted)
{
    const char *body =
        "{\"schemaVersion\":2,\"mediaType\":\"" MLREG_MT_DOCKER_MANIFEST
        "\",\"config\":{\"mediaType\":\"application/"
        "vnd.docker.container.image.v1+json\",\"digest\":\"" D1
        "\",\"size\":7},\"layers\":[{\"mediaType\":\"application/"
        "vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2 "\",\"size\":9}]}";
    mlreg_manifest *m = NULL;

    ck_assert_int_eq(mlreg_manifest_parse(&m, MLREG_MT_DOCKER_MANIFEST, body, strlen(body)), 0);
    ck_assert_int_eq(m->kind, MLREG_MANIFEST_IMAGE);
    ck_assert_uint_eq(m->layers[0].size, 9);
    mlreg_manifest_free(m);
}
END_TEST

/* ---- release rules -------------------------------------------------------- */

START_TEST(test_release_layer_without_title_is_invalid)
{
    json_t *doc = good_release();

    json_object_del(json_object_get(layer_at(doc, 0), "annotations"), MLREG_ANN_TITLE);
    expect_invalid_naming(check_release(doc), MLREG_ANN_TITLE);
}
END_TEST

START_TEST(test_release_title_path_that_could_leave_the_directory_is_invalid)
{
    /* Each of these would write outside the pull directory, into a hidden
     * place, or nowhere, if it were taken as a relative path. */
    static const char *const bad[] = {
        "../model.bin",
        "/etc/passwd",
        "a/../../b",
        "a/./b",
        "a//b",
        "a/",
        "/",
        "a/..",
        "tokenizer/.",
        ".git/config",
        "a/.hidden",
        "a/b/c/d/e/f/g/h/i",
        "mlreg.lock.json/x",
        "MLREG.LOCK.JSON/x",
        "a/.mlreg-tmp-1",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *doc = good_release();

        set_layer_ann(doc, 0, MLREG_ANN_TITLE, bad[i]);
        ck_assert_msg(check_release(doc) == MLREG_EINVALID, "title '%s' was accepted", bad[i]);
        ck_assert_msg(strstr(mlreg_error_last(), "layers[0]") != NULL, "%s: %s", bad[i],
                      mlreg_error_last());
        ck_assert_int_eq(mlreg_title_validate(bad[i]), MLREG_EINVALID);
    }
    ck_assert_int_eq(mlreg_title_validate("a//b"), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "empty path segment"));
    ck_assert_int_eq(mlreg_title_validate("a/b/c/d/e/f/g/h/i"), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "8 path segments"));
    ck_assert_int_eq(mlreg_title_validate("a/../b"), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "segment '..'"));
}
END_TEST

START_TEST(test_release_title_may_be_a_relative_path)
{
    json_t *doc = good_release();

    set_layer_ann(doc, 0, MLREG_ANN_TITLE, "onnx/model.onnx");
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "tokenizer/vocab.json");
    ck_assert_int_eq(check_release(doc), 0);
    ck_assert_int_eq(mlreg_title_validate("a/b/c/d/e/f/g/h"), 0);
    ck_assert_int_eq(mlreg_title_validate("sub/mlreg.lock.json"), 0);
    ck_assert_int_eq(mlreg_title_validate("a\\b"), 0);
    ck_assert_int_eq(mlreg_title_validate("a..b/c..d"), 0);
}
END_TEST

START_TEST(test_release_titles_file_and_directory_clash_is_invalid)
{
    json_t *doc = good_release();

    /* "onnx" is a file, and "onnx/model.onnx" needs a directory there */
    set_layer_ann(doc, 0, MLREG_ANN_TITLE, "onnx");
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "onnx/model.onnx");
    expect_invalid_naming(check_release(doc), "needs a directory");
    /* the same on a case-insensitive filesystem, and deeper */
    doc = good_release();
    set_layer_ann(doc, 0, MLREG_ANN_TITLE, "A/B");
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "a/b/c.bin");
    expect_invalid_naming(check_release(doc), "needs a directory");
    /* a name that sorts between them ('-' < '/') does not hide the clash */
    doc = good_release();
    set_layer_ann(doc, 0, MLREG_ANN_TITLE, "a");
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "a-b");
    set_layer_ann(doc, 2, MLREG_ANN_TITLE, "a/c");
    expect_invalid_naming(check_release(doc), "needs a directory");
}
END_TEST

START_TEST(test_release_titles_directory_in_two_cases_is_invalid)
{
    json_t *doc = good_release();
    static const char *const ok[] = {"tok/a.json", "tok/b.json", "tok-x/c.json"};
    static const char *const twin[] = {"Tok/a.json", "tok/b.json", "TOK/c.json"};
    static const char *const deep[] = {"m/Sub/a", "m/sub/b", "m/x"};

    set_layer_ann(doc, 0, MLREG_ANN_TITLE, "tok/a.json");
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "Tok/b.json");
    expect_invalid_naming(check_release(doc), "two letter cases");
    ck_assert_int_eq(mlreg_titles_check(ok, 3), 0);
    ck_assert_int_eq(mlreg_titles_check(twin, 3), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_titles_check(deep, 3), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "two letter cases"));
    ck_assert_int_eq(mlreg_titles_check(twin, 1), 0);
    ck_assert_int_eq(mlreg_titles_check(NULL, 0), 0);
}
END_TEST

START_TEST(test_release_title_dot_dot_or_dot_or_empty_is_invalid)
{
    json_t *doc = good_release();

    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "..");
    expect_invalid_naming(check_release(doc), "layers[1]");
    doc = good_release();
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, ".");
    expect_invalid_naming(check_release(doc), "layers[1]");
    doc = good_release();
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "");
    expect_invalid_naming(check_release(doc), "layers[1]");
}
END_TEST

START_TEST(test_release_title_with_a_c1_control_character_is_invalid)
{
    json_t *doc = good_release();

    /* U+009B is CSI in its 8-bit form: "\xc2\x9b" "31m" recolours xterm. */
    set_layer_ann(doc, 0, MLREG_ANN_TITLE,
                  "model\xc2\x9b"
                  "31m.bin");
    expect_invalid_naming(check_release(doc), "control character");
    /* Other non-ASCII stays valid: U+00E8 and U+00A0 share no bytes with C1. */
    doc = good_release();
    set_layer_ann(doc, 0, MLREG_ANN_TITLE, "mod\xc3\xa8le\xc2\xa0v1.bin");
    ck_assert_int_eq(check_release(doc), 0);
}
END_TEST

START_TEST(test_release_title_that_mlreg_pull_writes_itself_is_invalid)
{
    json_t *doc = good_release();

    /* pull writes DIR/mlreg.lock.json and DIR/.mlreg-tmp-XXXXXX and refuses
     * such titles, so the registry must refuse them at push time (the temp
     * files with every other title that starts with '.'). */
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "mlreg.lock.json");
    expect_invalid_naming(check_release(doc), "reserved");
    doc = good_release();
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, ".mlreg-tmp-abc123");
    expect_invalid_naming(check_release(doc), "start with '.'");
    /* A name that merely resembles the lock file stays valid. */
    doc = good_release();
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "mlreg.lock.json.bak");
    ck_assert_int_eq(check_release(doc), 0);
    /* On a case-insensitive filesystem these are the lock file too. */
    doc = good_release();
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "MLREG.LOCK.JSON");
    expect_invalid_naming(check_release(doc), "reserved");
    ck_assert_int_eq(mlreg_title_validate("Mlreg.Lock.Json"), MLREG_EINVALID);
}
END_TEST

START_TEST(test_release_title_starting_with_a_dot_is_invalid)
{
    static const char *const hidden[] = {".bashrc",     ".profile", ".ssh", ".env",
                                         ".hidden.bin", ".",        ".."};

    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
        json_t *doc = good_release();
        set_layer_ann(doc, 1, MLREG_ANN_TITLE, hidden[i]);
        expect_invalid_naming(check_release(doc), "layers[1]");
    }
    ck_assert_int_eq(mlreg_title_validate(".bashrc"), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "title '.bashrc' may not start with '.'");
}
END_TEST

START_TEST(test_title_validate_is_the_whole_title_rule)
{
    char longt[MLREG_TITLE_MAX + 2];

    ck_assert_int_eq(mlreg_title_validate("model.safetensors"), 0);
    ck_assert_int_eq(mlreg_title_validate("a..b"), 0);
    ck_assert_int_eq(mlreg_title_validate("mod\xc3\xa8le v2.bin"), 0);
    ck_assert_int_eq(mlreg_title_validate("\xe6\xa8\xa1\xe5\x9e\x8b.bin"), 0);
    ck_assert_int_eq(mlreg_title_validate(NULL), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_title_validate(""), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_title_validate("a/b"), 0);
    ck_assert_int_eq(mlreg_title_validate("mlreg.lock.json"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_title_validate("x\x1b[2J"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_title_validate("x\xc2\x9b"
                                          "2J"),
                     MLREG_EINVALID);
    /* the message never quotes a title that breaks the text rule */
    ck_assert_ptr_null(strstr(mlreg_error_last(), "\xc2\x9b"));
    ck_assert_int_eq(mlreg_title_validate("caf\xe9"), MLREG_EINVALID);
    memset(longt, 'a', MLREG_TITLE_MAX);
    longt[MLREG_TITLE_MAX] = '\0';
    ck_assert_int_eq(mlreg_title_validate(longt), 0);
    longt[MLREG_TITLE_MAX] = 'a';
    longt[MLREG_TITLE_MAX + 1] = '\0';
    ck_assert_int_eq(mlreg_title_validate(longt), MLREG_EINVALID);
}
END_TEST

START_TEST(test_release_title_with_control_character_or_too_long_is_invalid)
{
    json_t *doc = good_release();
    char longt[300];

    set_layer_ann(doc, 0, MLREG_ANN_TITLE, "model\x1b[31m.bin");
    expect_invalid_naming(check_release(doc), "control character");
    memset(longt, 'a', 256);
    longt[256] = '\0';
    doc = good_release();
    set_layer_ann(doc, 0, MLREG_ANN_TITLE, longt);
    expect_invalid_naming(check_release(doc), "longer than 255");
    longt[255] = '\0';
    doc = good_release();
    set_layer_ann(doc, 0, MLREG_ANN_TITLE, longt);
    ck_assert_int_eq(check_release(doc), 0);
}
END_TEST

START_TEST(test_release_with_duplicate_titles_is_invalid)
{
    json_t *doc = good_release();

    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "model.bin");
    expect_invalid_naming(check_release(doc), "appears twice");
}
END_TEST

START_TEST(test_release_with_titles_differing_only_in_case_is_invalid)
{
    json_t *doc = good_release();

    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "MODEL.bin");
    expect_invalid_naming(check_release(doc), "differ only in letter case");
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "'MODEL.bin'"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "'model.bin'"));
    /* the third layer sorts between them byte-wise, not once case is folded */
    doc = good_release();
    set_layer_ann(doc, 0, MLREG_ANN_TITLE, "A.bin");
    set_layer_ann(doc, 1, MLREG_ANN_TITLE, "B.bin");
    set_layer_ann(doc, 2, MLREG_ANN_TITLE, "a.bin");
    expect_invalid_naming(check_release(doc), "differ only in letter case");
}
END_TEST

START_TEST(test_title_cmp_folds_ascii_case_and_nothing_else)
{
    ck_assert_int_eq(mlreg_title_cmp("A.bin", "a.bin"), 0);
    ck_assert_int_eq(mlreg_title_cmp("Model.SafeTensors", "mODEL.safetensors"), 0);
    ck_assert_int_lt(mlreg_title_cmp("a.bin", "B.bin"), 0);
    ck_assert_int_gt(mlreg_title_cmp("b.bin", "A.bin"), 0);
    ck_assert_int_lt(mlreg_title_cmp("a", "a.bin"), 0);
    ck_assert_int_gt(mlreg_title_cmp("a.bin", "A"), 0);
    /* '[' sits between 'Z' and 'a': the order is that of the folded bytes,
     * so titles equal but for case always sort next to each other */
    ck_assert_int_gt(mlreg_title_cmp("Z", "["), 0);
    ck_assert_int_gt(mlreg_title_cmp("z", "["), 0);
    /* beyond ASCII, bytes compare as they are: U+00C9 and U+00E9 differ */
    ck_assert_int_ne(mlreg_title_cmp("\xc3\x89.bin", "\xc3\xa9.bin"), 0);
    ck_assert_int_gt(mlreg_title_cmp("\xc3\xa9", "z"), 0);
}
END_TEST

START_TEST(test_release_with_two_eval_reports_is_invalid)
{
    json_t *doc = good_release();

    json_array_append_new(json_object_get(doc, "layers"),
                          layer(MLREG_MT_EVAL_REPORT, D1, 3, "eval2.json", "eval-report"));
    expect_invalid_naming(check_release(doc), "at most one eval-report");
}
END_TEST

START_TEST(test_release_kind_contradicting_media_type_is_invalid)
{
    json_t *doc = good_release();

    set_layer_ann(doc, 0, MLREG_ANN_KIND, "tokenizer");
    expect_invalid_naming(check_release(doc), "layers[0]: mediaType");
    doc = good_release();
    json_object_set_new(layer_at(doc, 2), "mediaType",
                        json_string("application/vnd.mlreg.eval-report.v1"));
    expect_invalid_naming(check_release(doc), "layers[2]");
}
END_TEST

START_TEST(test_release_unknown_or_missing_kind_is_invalid)
{
    json_t *doc;

    static const char *const bad[] = {
        "Weights", "", "9lives", "-x", "a_b", "a.b", "a/b", "abcdefghijklmnopqrstuvwxyz0123456"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        doc = good_release();
        set_layer_ann(doc, 0, MLREG_ANN_KIND, bad[i]);
        expect_invalid_naming(check_release(doc), "is not a kind");
    }
    doc = good_release();
    json_object_del(json_object_get(layer_at(doc, 0), "annotations"), MLREG_ANN_KIND);
    expect_invalid_naming(check_release(doc), MLREG_ANN_KIND);
}
END_TEST

START_TEST(test_release_any_kind_of_the_grammar_with_the_generic_media_type_is_valid)
{
    json_t *doc = good_release();
    json_t *layers = json_object_get(doc, "layers");

    json_array_append_new(layers, layer("application/vnd.mlreg.generation-config.v1", D4, 1,
                                        "generation_config.json", "generation-config"));
    json_array_append_new(layers, layer("application/vnd.mlreg.abcdefghijklmnopqrstuvwxyz01234.v1",
                                        D5, 1, "long.bin", "abcdefghijklmnopqrstuvwxyz01234"));
    ck_assert_msg(check_release(doc) == 0, "%s", mlreg_error_last());
    /* its media type is derived from the kind, and nothing else */
    doc = good_release();
    json_array_append_new(json_object_get(doc, "layers"),
                          layer("application/vnd.mlreg.other.v1", D4, 1, "g.json", "gen-cfg"));
    expect_invalid_naming(check_release(doc), "application/vnd.mlreg.gen-cfg.v1");
}
END_TEST

START_TEST(test_release_every_kind_with_its_media_type_is_valid)
{
    json_t *doc = good_release();
    json_t *layers = json_object_get(doc, "layers");

    json_array_append_new(layers,
                          layer("application/vnd.mlreg.config.v1", D1, 1, "config.yaml", "config"));
    json_array_append_new(layers,
                          layer("application/vnd.mlreg.seeds.v1", D1, 1, "seeds.txt", "seeds"));
    json_array_append_new(layers,
                          layer("application/vnd.mlreg.other.v1", D1, 0, "README", "other"));
    ck_assert_int_eq(check_release(doc), 0);
}
END_TEST

/* good_release() plus a chunk index (digest D4) of its weights (D1). */
static json_t *release_with_chunk_index(void)
{
    json_t *doc = good_release();

    json_array_append_new(json_object_get(doc, "layers"),
                          layer(MLREG_MT_CHUNK_INDEX, D4, 300, "model.bin" MLREG_CHUNK_TITLE_SUFFIX,
                                MLREG_KIND_CHUNK_INDEX));
    set_layer_ann(doc, 3, MLREG_ANN_CHUNKS_OF, D1);
    set_layer_ann(doc, 0, MLREG_ANN_CHUNK_INDEX, D4);
    return doc;
}

START_TEST(test_release_chunk_index_paired_with_its_file_is_valid)
{
    ck_assert_int_eq(check_release(release_with_chunk_index()), 0);
}
END_TEST

START_TEST(test_release_chunk_index_must_pair_both_ways_with_its_title_and_type)
{
    json_t *doc = release_with_chunk_index();

    /* the file does not name it */
    json_object_del(json_object_get(layer_at(doc, 0), "annotations"), MLREG_ANN_CHUNK_INDEX);
    expect_invalid_naming(check_release(doc), "does not name it");
    /* it indexes nothing, or a blob not in the release, or itself */
    doc = release_with_chunk_index();
    json_object_del(json_object_get(layer_at(doc, 3), "annotations"), MLREG_ANN_CHUNKS_OF);
    expect_invalid_naming(check_release(doc), MLREG_ANN_CHUNKS_OF);
    doc = release_with_chunk_index();
    set_layer_ann(doc, 3, MLREG_ANN_CHUNKS_OF, D5);
    expect_invalid_naming(check_release(doc), MLREG_ANN_CHUNKS_OF);
    doc = release_with_chunk_index();
    set_layer_ann(doc, 3, MLREG_ANN_CHUNKS_OF, D4);
    expect_invalid_naming(check_release(doc), MLREG_ANN_CHUNKS_OF);
    /* a file naming a layer that is no index, or nothing */
    doc = release_with_chunk_index();
    set_layer_ann(doc, 0, MLREG_ANN_CHUNK_INDEX, D2);
    expect_invalid_naming(check_release(doc), "layers[0]");
    doc = good_release();
    set_layer_ann(doc, 1, MLREG_ANN_CHUNK_INDEX, D5);
    expect_invalid_naming(check_release(doc), "names no chunk-index layer");
    /* the title is the file's plus the suffix, nothing else */
    doc = release_with_chunk_index();
    set_layer_ann(doc, 3, MLREG_ANN_TITLE, "other.chunks");
    expect_invalid_naming(check_release(doc), "title must be 'model.bin.chunks'");
    /* the media type of the kind; a size over the limit */
    doc = release_with_chunk_index();
    json_object_set_new(layer_at(doc, 3), "mediaType", json_string("application/json"));
    expect_invalid_naming(check_release(doc), "layers[3]");
    doc = release_with_chunk_index();
    json_object_set_new(layer_at(doc, 3), "size",
                        json_integer((json_int_t)MLREG_CHUNK_INDEX_MAX_BYTES + 1));
    expect_invalid_naming(check_release(doc), "over the limit");
}
END_TEST

START_TEST(test_release_config_that_is_not_the_empty_config_is_invalid)
{
    json_t *doc = good_release();

    json_object_set_new(json_object_get(doc, "config"), "size", json_integer(3));
    expect_invalid_naming(check_release(doc), "empty config");
    doc = good_release();
    json_object_set_new(json_object_get(doc, "config"), "digest", json_string(D1));
    expect_invalid_naming(check_release(doc), "empty config");
    doc = good_release();
    json_object_set_new(json_object_get(doc, "config"), "mediaType",
                        json_string("application/json"));
    expect_invalid_naming(check_release(doc), "empty config");
}
END_TEST

START_TEST(test_release_model_annotation_must_match_repository)
{
    json_t *doc = good_release();

    json_object_set_new(json_object_get(doc, "annotations"), MLREG_ANN_MODEL,
                        json_string("team/other"));
    expect_invalid_naming(check_release(doc), MLREG_ANN_MODEL);
    doc = good_release();
    json_object_del(json_object_get(doc, "annotations"), MLREG_ANN_MODEL);
    expect_invalid_naming(check_release(doc), MLREG_ANN_MODEL);
}
END_TEST

START_TEST(test_release_version_must_follow_the_tag_grammar)
{
    json_t *doc = good_release();

    json_object_set_new(json_object_get(doc, "annotations"), MLREG_ANN_VERSION,
                        json_string("../1"));
    expect_invalid_naming(check_release(doc), MLREG_ANN_VERSION);
}
END_TEST

START_TEST(test_release_git_sha_is_optional_but_must_be_lowercase_hex)
{
    json_t *doc = good_release();

    json_object_del(json_object_get(doc, "annotations"), MLREG_ANN_GIT_SHA);
    ck_assert_int_eq(check_release(doc), 0);
    doc = good_release();
    json_object_set_new(json_object_get(doc, "annotations"), MLREG_ANN_GIT_SHA,
                        json_string("ABCDEF1"));
    expect_invalid_naming(check_release(doc), MLREG_ANN_GIT_SHA);
    doc = good_release();
    json_object_set_new(json_object_get(doc, "annotations"), MLREG_ANN_GIT_SHA,
                        json_string("abc123"));
    expect_invalid_naming(check_release(doc), MLREG_ANN_GIT_SHA);
}
END_TEST

START_TEST(test_release_created_must_be_rfc3339)
{
    const char *bad[] = {
        "2026-11-26", "2026-11-26T03:00:00",  "2026-13-01T00:00:00Z",  "2026-02-29T00:00:00Z",
        "yesterday",  "2026-11-26T24:00:00Z", "2026-11-26T03:00:00.Z", "2026-11-26T03:00:00Z junk"};
    size_t i;
    json_t *doc;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        doc = good_release();
        json_object_set_new(json_object_get(doc, "annotations"), MLREG_ANN_CREATED,
                            json_string(bad[i]));
        expect_invalid_naming(check_release(doc), MLREG_ANN_CREATED);
    }
    doc = good_release();
    json_object_del(json_object_get(doc, "annotations"), MLREG_ANN_CREATED);
    expect_invalid_naming(check_release(doc), MLREG_ANN_CREATED);
}
END_TEST

START_TEST(test_release_must_be_an_oci_image_manifest)
{
    json_t *doc = good_release();
    char *body;
    mlreg_manifest *m = NULL;
    mlreg_release_info info;

    json_object_del(doc, "mediaType");
    body = json_dumps(doc, JSON_COMPACT);
    ck_assert_int_eq(mlreg_manifest_parse(&m, MLREG_MT_DOCKER_MANIFEST, body, strlen(body)), 0);
    expect_invalid_naming(mlreg_release_validate(&info, m, "team/clf"), "OCI image manifest");
    mlreg_manifest_free(m);
    free(body);
    json_decref(doc);
}
END_TEST

/* ---- eval reports -------------------------------------------------------- */

static int parse_report(mlreg_eval_report **out, const char *text)
{
    *out = NULL;
    return mlreg_eval_report_parse(out, text, strlen(text));
}

START_TEST(test_eval_report_nested_metrics_flatten_to_dotted_names)
{
    mlreg_eval_report *r = NULL;

    ck_assert_int_eq(parse_report(&r, "{\"dataset\":\"squad-v2\",\"metrics\":{\"accuracy\":0.91,"
                                      "\"retrieval\":{\"hit_rate\":0.9,\"mrr\":{\"at10\":1}},"
                                      "\"loss\":-2e-3}}"),
                     0);
    ck_assert_uint_eq(json_object_size(r->metrics), 4);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "accuracy")), 0.91);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "retrieval.hit_rate")), 0.9);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "retrieval.mrr.at10")), 1.0);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "loss")), -0.002);
    ck_assert_str_eq(r->dataset, "squad-v2");
    mlreg_eval_report_free(r);
}
END_TEST

START_TEST(test_eval_report_with_empty_metrics_and_no_dataset_is_accepted)
{
    mlreg_eval_report *r = NULL;

    ck_assert_int_eq(parse_report(&r, "{\"metrics\":{}}"), 0);
    ck_assert_uint_eq(json_object_size(r->metrics), 0);
    ck_assert_ptr_null(r->dataset);
    mlreg_eval_report_free(r);
}
END_TEST

START_TEST(test_eval_report_nan_and_infinity_literals_are_rejected)
{
    mlreg_eval_report *r = NULL;

    ck_assert_int_eq(parse_report(&r, "{\"metrics\":{\"a\":NaN}}"), MLREG_EINVALID);
    ck_assert_int_eq(parse_report(&r, "{\"metrics\":{\"a\":Infinity}}"), MLREG_EINVALID);
    ck_assert_int_eq(parse_report(&r, "{\"metrics\":{\"a\":-Infinity}}"), MLREG_EINVALID);
    ck_assert_int_eq(parse_report(&r, "{\"metrics\":{\"a\":1e999}}"), MLREG_EINVALID);
    ck_assert_ptr_null(r);
}
END_TEST

/* 1 when r->skipped lists @p name with type @p type. */
static int skipped_has(const mlreg_eval_report *r, const char *name, const char *type)
{
    size_t i;
    json_t *v;

    json_array_foreach(r->skipped, i, v)
    {
        if (!strcmp(json_string_value(json_object_get(v, "name")), name) &&
            !strcmp(json_string_value(json_object_get(v, "type")), type))
            return 1;
    }
    return 0;
}

START_TEST(test_eval_report_strings_booleans_null_and_arrays_are_kept_but_not_indexed)
{
    mlreg_eval_report *r = NULL;

    ck_assert_msg(parse_report(&r, "{\"metrics\":{\"acc\":0.9,\"label\":\"0.9\",\"ok\":true,"
                                   "\"x\":{\"n\":null,\"f1\":0.5},\"cm\":[[1,2],[3,4]]}}") == 0,
                  "%s", mlreg_error_last());
    ck_assert_uint_eq(json_object_size(r->metrics), 2);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "acc")), 0.9);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "x.f1")), 0.5);
    ck_assert_uint_eq(r->nskipped, 4);
    ck_assert(skipped_has(r, "label", "a string"));
    ck_assert(skipped_has(r, "ok", "a boolean"));
    ck_assert(skipped_has(r, "x.n", "null"));
    ck_assert(skipped_has(r, "cm", "an array"));
    ck_assert_int_eq(r->format, MLREG_EVAL_METRICS);
    mlreg_eval_report_free(r);
}
END_TEST

START_TEST(test_eval_report_interval_objects_are_one_metric_with_its_bounds)
{
    mlreg_eval_report *r = NULL;
    json_t *ci;

    ck_assert_msg(parse_report(&r, "{\"metrics\":{\"accuracy\":{\"value\":0.91,\"ci_low\":0.89,"
                                   "\"ci_high\":0.93},\"slices\":{\"en\":{\"f1\":{\"value\":0.8,"
                                   "\"ci_low\":0.8,\"ci_high\":0.8}}},\"plain\":{\"value\":1},"
                                   "\"range\":{\"ci_low\":1,\"ci_high\":2},\"loss\":0.3}}") == 0,
                  "%s", mlreg_error_last());
    /* accuracy, slices.en.f1, plain.value, range.ci_low, range.ci_high, loss */
    ck_assert_uint_eq(json_object_size(r->metrics), 6);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "accuracy")), 0.91);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "slices.en.f1")), 0.8);
    /* without both "value" and a bound the object flattens as before */
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "plain.value")), 1);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "range.ci_low")), 1);
    ck_assert_uint_eq(json_object_size(r->intervals), 2);
    ci = json_object_get(r->intervals, "accuracy");
    ck_assert_double_eq(json_real_value(json_object_get(ci, "ci_low")), 0.89);
    ck_assert_double_eq(json_real_value(json_object_get(ci, "ci_high")), 0.93);
    ck_assert_ptr_nonnull(json_object_get(r->intervals, "slices.en.f1"));
    ck_assert_ptr_null(json_object_get(r->intervals, "loss"));
    ck_assert_uint_eq(r->nskipped, 0);
    mlreg_eval_report_free(r);

    /* lm-evaluation-harness tasks and flat reports take them too */
    ck_assert_int_eq(parse_report(&r, "{\"results\":{\"hellaswag\":{\"acc,none\":{\"value\":0.5,"
                                      "\"ci_low\":0.4,\"ci_high\":0.6}}}}"),
                     0);
    ck_assert_ptr_nonnull(json_object_get(r->intervals, "hellaswag.acc"));
    mlreg_eval_report_free(r);
    ck_assert_int_eq(
        parse_report(&r, "{\"acc\":{\"value\":-1e300,\"ci_low\":-1e308,\"ci_high\":1e308}}"), 0);
    ck_assert_ptr_nonnull(json_object_get(r->intervals, "acc"));
    mlreg_eval_report_free(r);
}
END_TEST

START_TEST(test_eval_report_malformed_interval_objects_are_kept_but_not_metrics)
{
    static const char *const bad[][2] = {
        {"{\"a\":{\"value\":0.9,\"ci_low\":0.8}}", "without both ci_low and ci_high"},
        {"{\"a\":{\"value\":0.9,\"ci_high\":0.95}}", "without both ci_low and ci_high"},
        {"{\"a\":{\"value\":0.9,\"ci_low\":0.8,\"ci_high\":0.95,\"n\":100}}", "other than value"},
        {"{\"a\":{\"value\":\"0.9\",\"ci_low\":0.8,\"ci_high\":0.95}}", "is not a number"},
        {"{\"a\":{\"value\":0.9,\"ci_low\":null,\"ci_high\":0.95}}", "is not a number"},
        {"{\"a\":{\"value\":0.9,\"ci_low\":0.95,\"ci_high\":0.99}}", "ci_low <= value <= ci_high"},
        {"{\"a\":{\"value\":0.9,\"ci_low\":0.8,\"ci_high\":0.85}}", "ci_low <= value <= ci_high"},
        {"{\"a\":{\"value\":0.9,\"ci_low\":0.95,\"ci_high\":0.8}}", "ci_low <= value <= ci_high"},
        {"{\"a\":{\"value\":{\"x\":1},\"ci_low\":0,\"ci_high\":1}}", "is not a number"},
    };
    mlreg_eval_report *r = NULL;
    char text[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* a second metric keeps the report valid; the bad object is a warning */
        snprintf(text, sizeof(text), "{\"metrics\":{\"b\":1,\"x\":%s}}", bad[i][0]);
        ck_assert_msg(parse_report(&r, text) == 0, "%s: %s", text, mlreg_error_last());
        ck_assert_msg(json_object_size(r->metrics) == 1, "%s: %zu metrics", text,
                      json_object_size(r->metrics));
        ck_assert_uint_eq(json_object_size(r->intervals), 0);
        ck_assert_uint_eq(r->nskipped, 1);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r->skipped, 0), "name")),
                         "x.a");
        ck_assert_msg(
            strstr(json_string_value(json_object_get(json_array_get(r->skipped, 0), "type")),
                   bad[i][1]) != NULL,
            "%s: '%s' lacks '%s'", text,
            json_string_value(json_object_get(json_array_get(r->skipped, 0), "type")), bad[i][1]);
        mlreg_eval_report_free(r);
        r = NULL;
    }
    /* the only metric malformed: no metric at all, refused as before */
    ck_assert_int_eq(parse_report(&r, "{\"a\":{\"value\":2,\"ci_low\":0,\"ci_high\":1}}"),
                     MLREG_EINVALID);
    /* an interval object colliding with a flattened name */
    ck_assert_int_eq(parse_report(&r, "{\"metrics\":{\"a.b\":1,\"a\":{\"b\":{\"value\":1,"
                                      "\"ci_low\":0,\"ci_high\":2}}}}"),
                     MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "appears twice"));
}
END_TEST

/* A report of @p n interval metrics {"mNNNNN":{"value":..,"ci_low":..,"ci_high":..}} (malloc'd). */
static char *interval_report(size_t *len, size_t n)
{
    size_t cap = 64 + n * 64, off = 0;
    char *b = malloc(cap);

    ck_assert_ptr_nonnull(b);
    off += (size_t)snprintf(b + off, cap - off, "{\"metrics\":{");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(b + off, cap - off,
                                "%s\"m%05zu\":{\"value\":0.5,\"ci_low\":0.25,\"ci_high\":0.75}",
                                i ? "," : "", i);
    off += (size_t)snprintf(b + off, cap - off, "}}");
    *len = off;
    return b;
}

START_TEST(test_eval_report_interval_metrics_count_against_the_metric_limit)
{
    mlreg_eval_report *r = NULL;
    size_t len;
    char *b = interval_report(&len, MLREG_MAX_METRICS);

    ck_assert_msg(mlreg_eval_report_parse(&r, b, len) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(json_object_size(r->metrics), MLREG_MAX_METRICS);
    ck_assert_uint_eq(json_object_size(r->intervals), MLREG_MAX_METRICS);
    mlreg_eval_report_free(r);
    r = NULL;
    free(b);
    b = interval_report(&len, MLREG_MAX_METRICS + 1);
    expect_invalid_naming(mlreg_eval_report_parse(&r, b, len), "more than");
    ck_assert_ptr_null(r);
    free(b);
}
END_TEST

START_TEST(test_eval_report_with_no_numeric_value_is_rejected)
{
    mlreg_eval_report *r = NULL;

    expect_invalid_naming(parse_report(&r, "{\"metrics\":{\"acc\":\"high\"}}"), "no metric");
    expect_invalid_naming(parse_report(&r, "{\"metrics\":{\"a\":{}}}"), "no metric");
    expect_invalid_naming(parse_report(&r, "{}"), "no metric");
    expect_invalid_naming(parse_report(&r, "{\"model\":\"x\",\"cm\":[[1]]}"), "no metric");
    expect_invalid_naming(parse_report(&r, "{\"results\":{\"hellaswag\":{\"alias\":\"h\"}}}"),
                          "no metric");
    ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_eval_report_flat_object_of_numbers_is_accepted)
{
    mlreg_eval_report *r = NULL;

    ck_assert_msg(parse_report(&r, "{\"dataset\":\"val-2024\",\"accuracy\":0.91,\"model\":\"m\","
                                   "\"slices\":{\"en\":{\"f1\":0.8},\"de\":{\"f1\":0.7}},"
                                   "\"dp\":{\"epsilon\":8}}") == 0,
                  "%s", mlreg_error_last());
    ck_assert_int_eq(r->format, MLREG_EVAL_FLAT);
    ck_assert_uint_eq(json_object_size(r->metrics), 4);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "slices.de.f1")), 0.7);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "dp.epsilon")), 8.0);
    ck_assert_str_eq(r->dataset, "val-2024");
    ck_assert_ptr_null(json_object_get(r->metrics, "dataset"));
    ck_assert_uint_eq(r->nskipped, 1);
    ck_assert(skipped_has(r, "model", "a string"));
    mlreg_eval_report_free(r);
}
END_TEST

/* Trimmed from a real lm-evaluation-harness 0.4 results file. */
static const char lm_eval_report[] =
    "{\"results\":{\"hellaswag\":{\"alias\":\"hellaswag\",\"acc,none\":0.5716,"
    "\"acc_stderr,none\":0.0049,\"acc_norm,none\":0.7547,\"acc_norm_stderr,none\":0.0043},"
    "\"gsm8k\":{\"alias\":\"gsm8k\",\"exact_match,strict-match\":0.41,"
    "\"exact_match_stderr,strict-match\":0.0135,\"exact_match,flexible-extract\":0.43,"
    "\"exact_match_stderr,flexible-extract\":\"N/A\"}},"
    "\"group_subtasks\":{\"hellaswag\":[],\"gsm8k\":[]},"
    "\"configs\":{\"hellaswag\":{\"task\":\"hellaswag\",\"num_fewshot\":0}},"
    "\"versions\":{\"hellaswag\":1.0,\"gsm8k\":3.0},\"n-shot\":{\"hellaswag\":0,\"gsm8k\":5},"
    "\"higher_is_better\":{\"hellaswag\":{\"acc\":true}},"
    "\"config\":{\"model\":\"hf\",\"model_args\":\"pretrained=x\",\"batch_size\":\"auto\"},"
    "\"git_hash\":\"4600d6b\",\"date\":1717171717.5}";

START_TEST(test_eval_report_lm_evaluation_harness_results_map_to_task_dot_metric)
{
    mlreg_eval_report *r = NULL;

    ck_assert_msg(parse_report(&r, lm_eval_report) == 0, "%s", mlreg_error_last());
    ck_assert_int_eq(r->format, MLREG_EVAL_LM_EVAL);
    ck_assert_uint_eq(json_object_size(r->metrics), 7);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "hellaswag.acc_norm")), 0.7547);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "hellaswag.acc_norm_stderr")),
                        0.0043);
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "hellaswag.acc")), 0.5716);
    ck_assert_double_eq(
        json_real_value(json_object_get(r->metrics, "gsm8k.exact_match.strict-match")), 0.41);
    ck_assert_double_eq(
        json_real_value(json_object_get(r->metrics, "gsm8k.exact_match.flexible-extract")), 0.43);
    /* "alias" is the task's name, not a value; outside "results" is not read */
    ck_assert_ptr_null(json_object_get(r->metrics, "hellaswag.alias"));
    ck_assert_ptr_null(json_object_get(r->metrics, "date"));
    ck_assert_uint_eq(r->nskipped, 1);
    ck_assert(skipped_has(r, "gsm8k.exact_match_stderr.flexible-extract", "a string"));
    ck_assert_ptr_null(r->dataset);
    mlreg_eval_report_free(r);
    /* lm-evaluation-harness 0.3 had no filter suffix */
    ck_assert_msg(parse_report(&r, "{\"results\":{\"arc_easy\":{\"acc\":0.7,\"acc_stderr\":0.01}},"
                                   "\"versions\":{\"arc_easy\":0}}") == 0,
                  "%s", mlreg_error_last());
    ck_assert_double_eq(json_real_value(json_object_get(r->metrics, "arc_easy.acc_stderr")), 0.01);
    mlreg_eval_report_free(r);
}
END_TEST

START_TEST(test_eval_report_hostile_numbers_and_nesting_are_handled)
{
    mlreg_eval_report *r = NULL;
    size_t depth = 5000, n = 0, i;
    char *b = malloc(depth * 6 + 16);

    /* integers beyond int64 are numbers, reals beyond double are not JSON */
    ck_assert_msg(parse_report(&r, "{\"big\":123456789012345678901234567890,\"tiny\":1e-320}") == 0,
                  "%s", mlreg_error_last());
    ck_assert_double_eq_tol(json_real_value(json_object_get(r->metrics, "big")), 1.2345678901e29,
                            1e19);
    mlreg_eval_report_free(r);
    r = NULL;
    expect_invalid_naming(parse_report(&r, "{\"a\":1e400}"), "not valid JSON");
    expect_invalid_naming(parse_report(&r, "{\"a\":-1e400}"), "not valid JSON");
    expect_invalid_naming(parse_report(&r, "{\"a\":NaN}"), "not valid JSON");
    expect_invalid_naming(parse_report(&r, "{\"a\":\"NaN\"}"), "no metric");
    expect_invalid_naming(parse_report(&r, "{\"a\":1,\"a\":2}"), "not valid JSON");
    expect_invalid_naming(parse_report(&r, "{\"results\":{\"t\":{\"a,none\":1,\"a\":2}}}"),
                          "appears twice");
    /* 5000 levels of {"a":...}: refused by the parser or the name limit, never a crash */
    ck_assert_ptr_nonnull(b);
    for (i = 0; i < depth; i++)
        n += (size_t)sprintf(b + n, "{\"a\":");
    n += (size_t)sprintf(b + n, "1");
    for (i = 0; i < depth; i++)
        b[n++] = '}';
    ck_assert_int_eq(mlreg_eval_report_parse(&r, b, n), MLREG_EINVALID);
    ck_assert_ptr_null(r);
    free(b);
}
END_TEST

START_TEST(test_eval_report_of_ten_mib_is_too_big)
{
    size_t n = 10u << 20, i;
    char *b = malloc(n);
    mlreg_eval_report *r = NULL;

    ck_assert_ptr_nonnull(b);
    b[0] = '{';
    for (i = 1; i + 8 < n; i += 8)
        memcpy(b + i, "\"a\":1.0,", 8);
    memset(b + i, ' ', n - i);
    ck_assert_int_eq(mlreg_eval_report_parse(&r, b, n), MLREG_ETOOBIG);
    ck_assert_ptr_null(r);
    free(b);
}
END_TEST

START_TEST(test_eval_report_skipped_list_is_bounded_but_counted)
{
    mlreg_eval_report *r = NULL;
    size_t cap = 64 * 1024, n = 0, i;
    char *b = malloc(cap);

    ck_assert_ptr_nonnull(b);
    n += (size_t)snprintf(b, cap, "{\"acc\":1");
    for (i = 0; i < 1000; i++)
        n += (size_t)snprintf(b + n, cap - n, ",\"s%zu\":\"x\"", i);
    n += (size_t)snprintf(b + n, cap - n, "}");
    ck_assert_msg(mlreg_eval_report_parse(&r, b, n) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(r->nskipped, 1000);
    ck_assert_uint_eq(json_array_size(r->skipped), MLREG_EVAL_SKIPPED_LISTED);
    mlreg_eval_report_free(r);
    free(b);
}
END_TEST

START_TEST(test_eval_report_metrics_member_that_is_not_an_object_is_rejected)
{
    mlreg_eval_report *r = NULL;

    expect_invalid_naming(parse_report(&r, "{\"metrics\":[0.9]}"), "metrics");
    expect_invalid_naming(parse_report(&r, "[{\"metrics\":{}}]"), "object");
    expect_invalid_naming(parse_report(&r, "{\"metrics\":{},\"dataset\":7}"), "dataset");
    expect_invalid_naming(parse_report(&r, "{\"acc\":1,\"dataset\":[1]}"), "dataset");
}
END_TEST

START_TEST(test_eval_report_not_json_or_truncated_is_rejected)
{
    mlreg_eval_report *r = NULL;

    expect_invalid_naming(parse_report(&r, "accuracy=0.9"), "not valid JSON");
    expect_invalid_naming(parse_report(&r, "{\"metrics\":{\"a\":0.9"), "not valid JSON");
    expect_invalid_naming(parse_report(&r, ""), "not valid JSON");
    expect_invalid_naming(parse_report(&r, "{\"metrics\":{}} trailing"), "not valid JSON");
}
END_TEST

START_TEST(test_eval_report_names_colliding_after_flattening_are_rejected)
{
    mlreg_eval_report *r = NULL;

    expect_invalid_naming(parse_report(&r, "{\"metrics\":{\"a.b\":1,\"a\":{\"b\":2}}}"),
                          "appears twice");
    expect_invalid_naming(parse_report(&r, "{\"metrics\":{\"a\":1,\"a\":2}}"), "not valid JSON");
    expect_invalid_naming(parse_report(&r, "{\"metrics\":{\"\":1}}"), "empty name");
}
END_TEST

START_TEST(test_eval_report_over_one_mib_is_too_big)
{
    size_t n = MLREG_MAX_EVAL_REPORT_BYTES + 1;
    char *big = malloc(n);
    mlreg_eval_report *r = NULL;

    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    memcpy(big, "{\"metrics\":{}}", 14);
    ck_assert_int_eq(mlreg_eval_report_parse(&r, big, n), MLREG_ETOOBIG);
    /* Exactly the limit is fine (trailing whitespace is valid JSON). */
    ck_assert_int_eq(mlreg_eval_report_parse(&r, big, n - 1), 0);
    mlreg_eval_report_free(r);
    free(big);
}
END_TEST

/* Builds {"metrics":{"<plen x 'p'>":{"0":1,"1":1,...}}} with @p leaves leaves:
 * every leaf repeats the long prefix once flattened. */
static char *prefix_bomb(size_t *len_out, size_t plen, size_t leaves)
{
    size_t cap = plen + leaves * 16 + 64, n = 0, i;
    char *b = malloc(cap);

    ck_assert_ptr_nonnull(b);
    n += (size_t)snprintf(b + n, cap - n, "{\"metrics\":{\"");
    memset(b + n, 'p', plen);
    n += plen;
    n += (size_t)snprintf(b + n, cap - n, "\":{");
    for (i = 0; i < leaves; i++)
        n += (size_t)snprintf(b + n, cap - n, "%s\"%zx\":1", i ? "," : "", i);
    n += (size_t)snprintf(b + n, cap - n, "}}}");
    *len_out = n;
    return b;
}

START_TEST(test_eval_report_metric_names_and_dataset_with_control_characters_are_rejected)
{
    static const char *const bad[] = {
        "{\"metrics\":{\"acc\\u001b[2Juracy\":0.9}}",
        "{\"metrics\":{\"retrieval\":{\"hit\\u009b31m\":0.9}}}",
        "{\"metrics\":{\"a\\nb\":0.9}}",
        "{\"dataset\":\"squad\\u001b]0;pwned\\u0007\",\"metrics\":{}}",
    };
    static const char ok[] = "{\"dataset\":\"caf\\u00e9\",\"metrics\":{\"pr\\u00e9cision\":1}}";
    mlreg_eval_report *r = NULL;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(mlreg_eval_report_parse(&r, bad[i], strlen(bad[i])) == MLREG_EINVALID,
                      "accepted %s", bad[i]);
        ck_assert_ptr_null(r);
        ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "control character"));
    }
    ck_assert_msg(mlreg_eval_report_parse(&r, ok, strlen(ok)) == 0, "%s", mlreg_error_last());
    mlreg_eval_report_free(r);
}
END_TEST

START_TEST(test_eval_report_metric_name_longer_than_the_limit_is_rejected)
{
    mlreg_eval_report *r = NULL;
    size_t len;
    char *b;

    /* 255 bytes flattened ("ppp...p.0" = 253 + 2) is fine. */
    b = prefix_bomb(&len, MLREG_MAX_METRIC_NAME_BYTES - 2, 1);
    ck_assert_msg(mlreg_eval_report_parse(&r, b, len) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(json_object_size(r->metrics), 1);
    mlreg_eval_report_free(r);
    r = NULL;
    free(b);
    /* One byte more is refused, by name. */
    b = prefix_bomb(&len, MLREG_MAX_METRIC_NAME_BYTES - 1, 1);
    expect_invalid_naming(mlreg_eval_report_parse(&r, b, len), "longer than 255");
    ck_assert_ptr_null(r);
    free(b);
}
END_TEST

START_TEST(test_eval_report_whose_prefix_would_repeat_over_many_leaves_is_rejected_cheaply)
{
    mlreg_eval_report *r = NULL;
    size_t len;
    /* 300 KB of input that used to flatten to 30000 names of 300 KB each,
     * about 9 GB: it must be refused, not allocated. */
    char *b = prefix_bomb(&len, 300000, 30000);

    ck_assert_uint_le(len, MLREG_MAX_EVAL_REPORT_BYTES);
    expect_invalid_naming(mlreg_eval_report_parse(&r, b, len), "longer than");
    ck_assert_ptr_null(r);
    free(b);
}
END_TEST

START_TEST(test_eval_report_with_more_metrics_than_the_limit_is_rejected)
{
    mlreg_eval_report *r = NULL;
    size_t len;
    char *b = prefix_bomb(&len, 1, MLREG_MAX_METRICS);

    ck_assert_msg(mlreg_eval_report_parse(&r, b, len) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(json_object_size(r->metrics), MLREG_MAX_METRICS);
    mlreg_eval_report_free(r);
    r = NULL;
    free(b);
    b = prefix_bomb(&len, 1, MLREG_MAX_METRICS + 1);
    expect_invalid_naming(mlreg_eval_report_parse(&r, b, len), "more than");
    ck_assert_ptr_null(r);
    free(b);
}
END_TEST

static Suite *manifest_suite(void)
{
    Suite *s = suite_create("manifest");
    TCase *tm = tcase_create("manifest");
    TCase *tr = tcase_create("release");
    TCase *te = tcase_create("eval_report");

    tcase_add_test(tm, test_good_release_passes_and_reports_its_fields);
    tcase_add_test(tm, test_manifest_without_content_type_uses_body_media_type);
    tcase_add_test(tm, test_content_type_parameters_are_ignored);
    tcase_add_test(tm, test_body_media_type_contradicting_content_type_is_invalid);
    tcase_add_test(tm, test_unknown_content_type_is_invalid);
    tcase_add_test(tm, test_schema_version_other_than_two_is_invalid);
    tcase_add_test(tm, test_malformed_or_duplicate_key_json_is_invalid);
    tcase_add_test(tm, test_bad_digest_in_a_layer_is_invalid_and_named);
    tcase_add_test(tm, test_negative_or_fractional_size_is_invalid);
    tcase_add_test(tm, test_missing_config_or_non_string_annotation_is_invalid);
    tcase_add_test(tm, test_index_lists_child_manifests_and_subject_is_parsed);
    tcase_add_test(tm, test_index_with_layers_is_ambiguous_and_invalid);
    tcase_add_test(tm, test_docker_v2_manifest_is_accepted);
    suite_add_tcase(s, tm);

    tcase_add_test(tr, test_release_layer_without_title_is_invalid);
    tcase_add_test(tr, test_release_title_path_that_could_leave_the_directory_is_invalid);
    tcase_add_test(tr, test_release_title_may_be_a_relative_path);
    tcase_add_test(tr, test_release_titles_file_and_directory_clash_is_invalid);
    tcase_add_test(tr, test_release_titles_directory_in_two_cases_is_invalid);
    tcase_add_test(tr, test_release_title_dot_dot_or_dot_or_empty_is_invalid);
    tcase_add_test(tr, test_release_title_with_control_character_or_too_long_is_invalid);
    tcase_add_test(tr, test_release_title_that_mlreg_pull_writes_itself_is_invalid);
    tcase_add_test(tr, test_release_title_with_a_c1_control_character_is_invalid);
    tcase_add_test(tr, test_release_title_starting_with_a_dot_is_invalid);
    tcase_add_test(tr, test_title_validate_is_the_whole_title_rule);
    tcase_add_test(tr, test_release_with_duplicate_titles_is_invalid);
    tcase_add_test(tr, test_release_with_titles_differing_only_in_case_is_invalid);
    tcase_add_test(tr, test_title_cmp_folds_ascii_case_and_nothing_else);
    tcase_add_test(tr, test_release_with_two_eval_reports_is_invalid);
    tcase_add_test(tr, test_release_kind_contradicting_media_type_is_invalid);
    tcase_add_test(tr, test_release_unknown_or_missing_kind_is_invalid);
    tcase_add_test(tr, test_release_any_kind_of_the_grammar_with_the_generic_media_type_is_valid);
    tcase_add_test(tr, test_release_every_kind_with_its_media_type_is_valid);
    tcase_add_test(tr, test_release_chunk_index_paired_with_its_file_is_valid);
    tcase_add_test(tr, test_release_chunk_index_must_pair_both_ways_with_its_title_and_type);
    tcase_add_test(tr, test_release_config_that_is_not_the_empty_config_is_invalid);
    tcase_add_test(tr, test_release_model_annotation_must_match_repository);
    tcase_add_test(tr, test_release_version_must_follow_the_tag_grammar);
    tcase_add_test(tr, test_release_git_sha_is_optional_but_must_be_lowercase_hex);
    tcase_add_test(tr, test_release_created_must_be_rfc3339);
    tcase_add_test(tr, test_release_must_be_an_oci_image_manifest);
    suite_add_tcase(s, tr);

    tcase_add_test(te, test_eval_report_nested_metrics_flatten_to_dotted_names);
    tcase_add_test(te, test_eval_report_with_empty_metrics_and_no_dataset_is_accepted);
    tcase_add_test(te, test_eval_report_nan_and_infinity_literals_are_rejected);
    tcase_add_test(te, test_eval_report_strings_booleans_null_and_arrays_are_kept_but_not_indexed);
    tcase_add_test(te, test_eval_report_interval_objects_are_one_metric_with_its_bounds);
    tcase_add_test(te, test_eval_report_malformed_interval_objects_are_kept_but_not_metrics);
    tcase_add_test(te, test_eval_report_interval_metrics_count_against_the_metric_limit);
    tcase_add_test(te, test_eval_report_with_no_numeric_value_is_rejected);
    tcase_add_test(te, test_eval_report_flat_object_of_numbers_is_accepted);
    tcase_add_test(te, test_eval_report_lm_evaluation_harness_results_map_to_task_dot_metric);
    tcase_add_test(te, test_eval_report_hostile_numbers_and_nesting_are_handled);
    tcase_add_test(te, test_eval_report_of_ten_mib_is_too_big);
    tcase_add_test(te, test_eval_report_skipped_list_is_bounded_but_counted);
    tcase_add_test(te, test_eval_report_metrics_member_that_is_not_an_object_is_rejected);
    tcase_add_test(te, test_eval_report_not_json_or_truncated_is_rejected);
    tcase_add_test(te, test_eval_report_names_colliding_after_flattening_are_rejected);
    tcase_add_test(te, test_eval_report_over_one_mib_is_too_big);
    tcase_add_test(te, test_eval_report_metric_name_longer_than_the_limit_is_rejected);
    tcase_add_test(te,
                   test_eval_report_metric_names_and_dataset_with_control_characters_are_rejected);
    tcase_add_test(te,
                   test_eval_report_whose_prefix_would_repeat_over_many_leaves_is_rejected_cheaply);
    tcase_add_test(te, test_eval_report_with_more_metrics_than_the_limit_is_rejected);
    suite_add_tcase(s, te);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(manifest_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
