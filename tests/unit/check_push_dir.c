/* check_push_dir.c: the plan of `mlreg push MODEL@VERSION DIR/`
 * (cli/push_dir.h): kinds from names, mlreg.json mapping and excludes,
 * files taken by flags, the walk of subdirectories (titles are relative
 * paths, globs over them, the depth and length limits), and the entries
 * that must stop a push (unknown names, links leaving DIR or leading to a
 * directory, special files, a malformed mlreg.json).
 */
#include "../../cli/push_dir.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/common.h"

static char dir[] = "/tmp/check_push_dir.XXXXXX";

static void setup(void)
{
    strcpy(dir, "/tmp/check_push_dir.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void put(const char *name, const char *text)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

static const push_dir_file *find(const push_dir_plan *p, const char *name)
{
    for (size_t i = 0; i < p->nfiles; i++)
        if (!strcmp(p->files[i].name, name)) return &p->files[i];
    return NULL;
}

START_TEST(test_names_of_an_export_directory_get_their_kinds)
{
    static const char *const cases[][2] = {
        {"model-00001-of-00004.safetensors", "weights"},
        {"model.safetensors.index.json", "weights"},
        {"pytorch_model.bin.index.json", "weights"},
        {"pytorch_model.bin", "weights"},
        {"model-q4_k_m.gguf", "weights"},
        {"model.onnx", "weights"},
        {"checkpoint.pt", "weights"},
        {"tokenizer.json", "tokenizer"},
        {"tokenizer_config.json", "tokenizer"},
        {"tokenizer.model", "tokenizer"},
        {"spm.model", "tokenizer"},
        {"vocab.txt", "tokenizer"},
        {"vocab.json", "tokenizer"},
        {"merges.txt", "tokenizer"},
        {"special_tokens_map.json", "tokenizer"},
        {"config.json", "config"},
        {"generation_config.json", "config"},
        {"seeds.json", "seeds"},
        {"eval.json", "eval-report"},
        {"eval_results.json", "eval-report"},
        {"results_2026-12-05T03-00-00.json", "eval-report"},
    };
    static const char *const unknown[] = {"README.md",
                                          "config.yaml",
                                          "model.safetensors.bak",
                                          "train.log",
                                          "preprocessor_config.json",
                                          "mlreg.lock.json"};
    const char *rule = NULL, *kind;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kind = push_dir_kind_of(&rule, cases[i][0]);
        ck_assert_msg(kind && !strcmp(kind, cases[i][1]), "%s: got %s, want %s", cases[i][0],
                      kind ? kind : "none", cases[i][1]);
        ck_assert_ptr_nonnull(rule);
    }
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        ck_assert_msg(!push_dir_kind_of(&rule, unknown[i]), "%s has a kind", unknown[i]);
}
END_TEST

START_TEST(test_plan_maps_by_mlreg_json_first_and_skips_what_it_must)
{
    push_dir_plan p;
    char dir_slash[600], link_target[600], taken[600];
    const char *taken_list[1];
    const push_dir_file *f;

    put("config.json", "{}");
    put("README.md", "hi");
    put("notes.txt", "x");
    put("scratch.tmp", "");
    put(".hidden", "");
    put("gen.json", "{}");
    put("mlreg.json",
        "{\"files\":{\"config.json\":\"model-config\",\"README*\":\"docs\",\"*\":\"other\"},"
        "\"exclude\":[\"*.tmp\"]}");
    snprintf(link_target, sizeof(link_target), "%s/notes-link.txt", dir);
    ck_assert_int_eq(symlink("notes.txt", link_target), 0);
    snprintf(taken, sizeof(taken), "%s/gen.json", dir);
    taken_list[0] = taken;
    snprintf(dir_slash, sizeof(dir_slash), "%s//", dir);

    ck_assert_msg(push_dir_plan_build(&p, dir_slash, taken_list, 1) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(p.nfiles, 4); /* config.json README.md notes-link.txt notes.txt */
    ck_assert_str_eq(find(&p, "config.json")->kind, "model-config");
    ck_assert_str_eq(find(&p, "README.md")->kind, "docs");
    ck_assert_str_eq(find(&p, "notes.txt")->kind, "other");
    ck_assert_ptr_null(find(&p, "gen.json"));
    ck_assert_ptr_null(find(&p, "mlreg.json"));
    ck_assert_ptr_null(find(&p, "scratch.tmp"));
    ck_assert_ptr_null(find(&p, ".hidden"));
    /* a link inside DIR: its own name, the target's path, no "//" */
    f = find(&p, "notes-link.txt");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(strstr(f->path, "/notes.txt"));
    ck_assert_ptr_null(strstr(find(&p, "README.md")->path, "//"));
    /* sorted by name */
    for (size_t i = 1; i < p.nfiles; i++)
        ck_assert_int_lt(strcmp(p.files[i - 1].name, p.files[i].name), 0);
    push_dir_plan_clear(&p);
    ck_assert_uint_eq(p.nfiles, 0);
}
END_TEST

START_TEST(test_plan_refuses_unknown_names_linked_directories_escaping_links_and_fifos)
{
    push_dir_plan p;
    char path[600];
    static const char *const one_each[] = {"README.md", "linked-dir", "leak", "dangling", "pipe"};

    put("config.json", "{}");
    snprintf(path, sizeof(path), "%s/d", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0); /* empty: nothing to push, nothing to refuse */
    for (size_t i = 0; i < sizeof(one_each) / sizeof(one_each[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, one_each[i]);
        switch (i) {
        case 0: put("README.md", "hi"); break;
        case 1: ck_assert_int_eq(symlink("d", path), 0); break;
        case 2: ck_assert_int_eq(symlink("/etc/hostname", path), 0); break;
        case 3: ck_assert_int_eq(symlink("nowhere.bin", path), 0); break;
        default: ck_assert_int_eq(mkfifo(path, 0600), 0); break;
        }
        ck_assert_int_eq(push_dir_plan_build(&p, dir, NULL, 0), MLREG_EINVALID);
        ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "1 entry cannot be pushed"));
        ck_assert_int_eq(unlink(path) == 0 || rmdir(path) == 0, 1);
    }
    ck_assert_int_eq(push_dir_plan_build(&p, dir, NULL, 0), 0);
    ck_assert_uint_eq(p.nfiles, 1);
    push_dir_plan_clear(&p);
}
END_TEST

START_TEST(test_plan_refuses_a_malformed_mlreg_json_and_an_empty_or_missing_dir)
{
    static const char *const bad[] = {"not json",
                                      "[]",
                                      "{\"files\":[]}",
                                      "{\"files\":{\"*\":\"Bad\"}}",
                                      "{\"files\":{\"*\":7}}",
                                      "{\"files\":{\"\":\"docs\"}}",
                                      "{\"files\":{\"*\":\"chunk-index\"}}",
                                      "{\"exclude\":{}}",
                                      "{\"exclude\":[\"\"]}",
                                      "{\"exclude\":[1]}",
                                      "{\"include\":[]}",
                                      "{\"files\":{\"a\":\"x\",\"a\":\"y\"}}"};
    push_dir_plan p;
    char path[600];

    put("config.json", "{}");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put("mlreg.json", bad[i]);
        ck_assert_msg(push_dir_plan_build(&p, dir, NULL, 0) == MLREG_EINVALID, "accepted %s",
                      bad[i]);
        ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "mlreg.json"));
    }
    put("mlreg.json", "{\"exclude\":[\"*\"]}");
    ck_assert_int_eq(push_dir_plan_build(&p, dir, NULL, 0), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "no file to push"));
    snprintf(path, sizeof(path), "%s/missing", dir);
    ck_assert_int_eq(push_dir_plan_build(&p, path, NULL, 0), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "no such directory"));
    snprintf(path, sizeof(path), "%s/config.json", dir);
    ck_assert_int_eq(push_dir_plan_build(&p, path, NULL, 0), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "not a directory"));
}
END_TEST

static void mkdirs(const char *rel)
{
    char cmd[1200];

    snprintf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", dir, rel);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_plan_walks_subdirectories_titling_files_by_their_relative_path)
{
    push_dir_plan p;
    const push_dir_file *f;
    char path[600], buf[16];
    ssize_t n;

    mkdirs("tokenizer");
    mkdirs("onnx");
    mkdirs("a/b/c");
    mkdirs(".cache/x");
    put("config.json", "{}");
    put("tokenizer/vocab.json", "{\"a\":1}");
    put("onnx/model.onnx", "onnx");
    put("a/b/c/config.json", "{}");
    put(".cache/x/model.bin", "secret");
    snprintf(path, sizeof(path), "%s/a/weights.bin", dir);
    ck_assert_int_eq(symlink("../onnx/model.onnx", path), 0);

    ck_assert_msg(push_dir_plan_build(&p, dir, NULL, 0) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(p.nfiles, 5);
    ck_assert_str_eq(find(&p, "tokenizer/vocab.json")->kind, "tokenizer"); /* by base name */
    ck_assert_str_eq(find(&p, "onnx/model.onnx")->kind, "weights");
    ck_assert_str_eq(find(&p, "a/b/c/config.json")->kind, "config");
    ck_assert_ptr_null(find(&p, ".cache/x/model.bin"));
    /* the path shown is DIR/REL, the descriptor is the file */
    f = find(&p, "onnx/model.onnx");
    snprintf(path, sizeof(path), "%s/onnx/model.onnx", dir);
    ck_assert_str_eq(f->path, path);
    ck_assert_int_ge(f->fd, 0);
    ck_assert_int_eq(n = pread(f->fd, buf, sizeof(buf), 0), 4);
    ck_assert_int_eq(memcmp(buf, "onnx", 4), 0);
    /* a link to a file in another subdirectory: its own path, the target's bytes */
    f = find(&p, "a/weights.bin");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(strstr(f->path, "/onnx/model.onnx"));
    ck_assert_int_eq(pread(f->fd, buf, sizeof(buf), 0), 4);
    /* sorted by title, the same order every run */
    for (size_t i = 1; i < p.nfiles; i++)
        ck_assert_int_lt(strcmp(p.files[i - 1].name, p.files[i].name), 0);
    push_dir_plan_clear(&p);
}
END_TEST

START_TEST(test_mlreg_json_globs_match_relative_paths_and_exclude_whole_trees)
{
    push_dir_plan p;

    mkdirs("checkpoints/step-1/optim");
    mkdirs("runs/checkpoints");
    mkdirs("sub/x");
    mkdirs("cache");
    put("config.json", "{}");
    put("checkpoints/step-1/model.bin", "w");
    put("checkpoints/step-1/optim/state.pt", "o");
    put("runs/checkpoints/model.bin", "w");
    put("runs/keep.bin", "w");
    put("scratch.tmp", "");
    put("sub/scratch.tmp", "");
    put("sub/a.yaml", "a");
    put("sub/x/b.yaml", "b");
    put("cache/c.bin", "c");

    /* a bare name excludes that directory and everything in it, at any
     * depth; '*' never crosses '/'; a trailing '/' wants a directory */
    put("mlreg.json", "{\"exclude\":[\"checkpoints\",\"*.tmp\",\"cache/\"],"
                      "\"files\":{\"sub/*.yaml\":\"config\",\"sub/*/*.yaml\":\"other\"}}");
    ck_assert_msg(push_dir_plan_build(&p, dir, NULL, 0) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(p.nfiles, 4); /* config.json runs/keep.bin sub/a.yaml sub/x/b.yaml */
    ck_assert_ptr_null(find(&p, "checkpoints/step-1/model.bin"));
    ck_assert_ptr_null(find(&p, "runs/checkpoints/model.bin"));
    ck_assert_ptr_null(find(&p, "sub/scratch.tmp"));
    ck_assert_ptr_null(find(&p, "cache/c.bin"));
    ck_assert_str_eq(find(&p, "sub/a.yaml")->kind, "config");
    ck_assert_str_eq(find(&p, "sub/x/b.yaml")->kind, "other");
    push_dir_plan_clear(&p);

    /* a leading '/' anchors at DIR; a path glob's '*' names one segment */
    put("mlreg.json", "{\"exclude\":[\"/checkpoints/*\",\"/scratch.tmp\",\"cache\"],"
                      "\"files\":{\"*.yaml\":\"config\"}}");
    ck_assert_int_eq(push_dir_plan_build(&p, dir, NULL, 0), MLREG_EINVALID); /* sub/scratch.tmp */
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "1 entry cannot be pushed"));
    put("mlreg.json", "{\"exclude\":[\"/checkpoints/*\",\"*.tmp\",\"cache\"],"
                      "\"files\":{\"*.yaml\":\"config\"}}");
    ck_assert_msg(push_dir_plan_build(&p, dir, NULL, 0) == 0, "%s", mlreg_error_last());
    ck_assert_ptr_null(find(&p, "checkpoints/step-1/model.bin"));
    ck_assert_ptr_nonnull(find(&p, "runs/checkpoints/model.bin"));
    ck_assert_str_eq(find(&p, "sub/x/b.yaml")->kind, "config"); /* a bare glob at any depth */
    push_dir_plan_clear(&p);

    /* "cache/" does not exclude a file named cache */
    put("mlreg.json", "{\"exclude\":[\"checkpoints\",\"*.tmp\",\"sub\",\"cache/\","
                      "\"runs/*/\"],\"files\":{\"file-cache\":\"other\"}}");
    put("file-cache", "x");
    ck_assert_msg(push_dir_plan_build(&p, dir, NULL, 0) == 0, "%s", mlreg_error_last());
    ck_assert_ptr_nonnull(find(&p, "file-cache"));
    ck_assert_ptr_null(find(&p, "runs/checkpoints/model.bin"));
    ck_assert_ptr_nonnull(find(&p, "runs/keep.bin"));
    push_dir_plan_clear(&p);
}
END_TEST

START_TEST(test_plan_refuses_paths_too_deep_or_too_long_and_a_nested_mlreg_json)
{
    push_dir_plan p;
    char seg[101], rel[400];

    put("config.json", "{}");
    /* 8 segments: a title; 9: refused, naming the path */
    mkdirs("1/2/3/4/5/6/7/8");
    put("1/2/3/4/5/6/7/w.bin", "w");
    ck_assert_msg(push_dir_plan_build(&p, dir, NULL, 0) == 0, "%s", mlreg_error_last());
    ck_assert_ptr_nonnull(find(&p, "1/2/3/4/5/6/7/w.bin"));
    push_dir_plan_clear(&p);
    put("1/2/3/4/5/6/7/8/w.bin", "w");
    ck_assert_int_eq(push_dir_plan_build(&p, dir, NULL, 0), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "1 entry cannot be pushed"));
    ck_assert_uint_eq(p.nfiles, 0);
    put("mlreg.json", "{\"exclude\":[\"8\"]}");
    ck_assert_msg(push_dir_plan_build(&p, dir, NULL, 0) == 0, "%s", mlreg_error_last());
    push_dir_plan_clear(&p);

    /* over 255 bytes */
    memset(seg, 'x', 100);
    seg[100] = '\0';
    snprintf(rel, sizeof(rel), "%s/%s", seg, seg);
    mkdirs(rel);
    snprintf(rel, sizeof(rel), "%s/%s/%.50s.bin", seg, seg, seg);
    put(rel, "w");
    ck_assert_int_eq(push_dir_plan_build(&p, dir, NULL, 0), MLREG_EINVALID);
    snprintf(rel, sizeof(rel), "%s/%s/%.40s.bin", seg, seg, seg);
    put("mlreg.json", "{\"exclude\":[\"8\", \"*.bin\"]}");
    ck_assert_msg(push_dir_plan_build(&p, dir, NULL, 0) == 0, "%s", mlreg_error_last());
    push_dir_plan_clear(&p);

    /* only the top mlreg.json is read: another one stops the push */
    put("mlreg.json", "{\"exclude\":[\"8\", \"xxxxxxxxxx*\"]}");
    mkdirs("sub");
    put("sub/mlreg.json", "{\"files\":{\"*\":\"other\"}}");
    ck_assert_int_eq(push_dir_plan_build(&p, dir, NULL, 0), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "1 entry cannot be pushed"));
}
END_TEST

static Suite *push_dir_suite(void)
{
    Suite *s = suite_create("push_dir");
    TCase *tc = tcase_create("push_dir");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_names_of_an_export_directory_get_their_kinds);
    tcase_add_test(tc, test_plan_maps_by_mlreg_json_first_and_skips_what_it_must);
    tcase_add_test(tc, test_plan_refuses_unknown_names_linked_directories_escaping_links_and_fifos);
    tcase_add_test(tc, test_plan_walks_subdirectories_titling_files_by_their_relative_path);
    tcase_add_test(tc, test_mlreg_json_globs_match_relative_paths_and_exclude_whole_trees);
    tcase_add_test(tc, test_plan_refuses_paths_too_deep_or_too_long_and_a_nested_mlreg_json);
    tcase_add_test(tc, test_plan_refuses_a_malformed_mlreg_json_and_an_empty_or_missing_dir);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(push_dir_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
