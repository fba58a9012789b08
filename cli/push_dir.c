/* push_dir.c: the plan of `mlreg push MODEL@VERSION DIR/` (push_dir.h).
 *
 * A directory push must never send something the user did not mean to, nor
 * leave out something silently: every entry of DIR ends up either in the
 * plan with its kind, or named on stderr with the reason it is not pushed,
 * or in the refusal listing everything that stopped the push. Nothing is
 * uploaded before the whole directory was looked at.
 *
 * Traps: a symbolic link may lead out of DIR (an export step that links
 * ~/.ssh/id_ed25519 would publish it), so a link is followed only to a
 * regular file inside DIR, and the plan keeps the link's resolved path (a
 * link swapped after the check cannot redirect the open). Subdirectories
 * are refused, not walked: a release title is a plain file name
 * (mlreg_title_validate()), and flattening "a/x.json" and "b/x.json" would
 * collide. */
#include "push_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"
#include "mlreg/common.h"
#include "mlreg/file.h"
#include "mlreg/text.h"

/* The built-in name patterns, first match wins (docs/cli-push.md). The
 * shard indexes come before "*.json" rules could claim them. */
static const struct {
    const char *glob;
    const char *kind;
} name_rules[] = {
    {"*.safetensors.index.json", "weights"},
    {"*.bin.index.json", "weights"},
    {"*.safetensors", "weights"},
    {"*.bin", "weights"},
    {"*.gguf", "weights"},
    {"*.onnx", "weights"},
    {"*.pt", "weights"},
    {"tokenizer*.json", "tokenizer"},
    {"*.model", "tokenizer"},
    {"vocab*", "tokenizer"},
    {"merges.txt", "tokenizer"},
    {"special_tokens_map.json", "tokenizer"},
    {"added_tokens.json", "tokenizer"},
    {"config.json", "config"},
    {"generation_config.json", "config"},
    {"seeds.json", "seeds"},
    {"seeds.txt", "seeds"},
    {"eval*.json", "eval-report"},
    {"results*.json", "eval-report"},
};

const char *push_dir_kind_of(const char **rule_out, const char *name)
{
    for (size_t i = 0; i < sizeof(name_rules) / sizeof(name_rules[0]); i++)
        if (fnmatch(name_rules[i].glob, name, 0) == 0) {
            *rule_out = name_rules[i].glob;
            return name_rules[i].kind;
        }
    return NULL;
}

void push_dir_plan_clear(push_dir_plan *p)
{
    for (size_t i = 0; i < p->nfiles; i++)
        free(p->files[i].path);
    for (size_t i = 0; i < p->nrules; i++)
        free(p->rules[i]);
    free(p->files);
    free(p->rules);
    memset(p, 0, sizeof(*p));
}

/* PUSH_DIR_CONFIG, checked: {"files":{GLOB:KIND,...}, "exclude":[GLOB,...]},
 * both optional, nothing else. *out is owned by the caller; NULL when the
 * directory has none. */
static int config_load(json_t **out, const char *dir)
{
    char path[PATH_MAX], *body = NULL;
    size_t len = 0, i;
    json_t *root = NULL, *files, *exclude, *v;
    json_error_t jerr;
    const char *key;
    int error = 0;

    *out = NULL;
    if ((error = cli_path_join(path, sizeof(path), dir, PUSH_DIR_CONFIG)) < 0) return error;
    if ((error = mlreg_file_read(&body, &len, path, PUSH_DIR_CONFIG_MAX)) < 0) {
        if (error == MLREG_ENOTFOUND) {
            mlreg_error_clear();
            error = 0;
        }
        goto done;
    }
    if (!(root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr))) {
        error = mlreg_error_set(MLREG_EINVALID, "%s: not valid JSON: %s (line %d)", path, jerr.text,
                                jerr.line);
        goto done;
    }
    if (!json_is_object(root)) {
        error = mlreg_error_set(MLREG_EINVALID, "%s: must be a JSON object", path);
        goto done;
    }
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "files") && strcmp(key, "exclude")) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "%s: unknown key '%s' (only \"files\" and \"exclude\")", path,
                                    mlreg_text_printable(key));
            goto done;
        }
    }
    files = json_object_get(root, "files");
    if (files && !json_is_object(files)) {
        error =
            mlreg_error_set(MLREG_EINVALID, "%s: \"files\" must be an object of GLOB: KIND", path);
        goto done;
    }
    json_object_foreach(files, key, v)
    {
        if (!*key || !json_is_string(v) || !mlreg_kind_valid(json_string_value(v)) ||
            !strcmp(json_string_value(v), "chunk-index")) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "%s: \"files\"['%s'] must be a kind ([a-z][a-z0-9-]{0,31}, "
                                    "not chunk-index) for a non-empty glob",
                                    path, mlreg_text_printable(key));
            goto done;
        }
    }
    exclude = json_object_get(root, "exclude");
    if (exclude && !json_is_array(exclude)) {
        error = mlreg_error_set(MLREG_EINVALID, "%s: \"exclude\" must be an array of globs", path);
        goto done;
    }
    json_array_foreach(exclude, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            error = mlreg_error_set(MLREG_EINVALID, "%s: \"exclude\"[%zu] must be a non-empty glob",
                                    path, i);
            goto done;
        }
    }
    fprintf(stderr, "%s: directory push settings (not pushed)\n", mlreg_text_printable(path));
    *out = root;
    root = NULL;
done:
    json_decref(root);
    free(body);
    return error;
}

/* The "files" glob of @p cfg that matches @p name, with its kind; NULL. */
static const char *config_kind(const char **glob_out, json_t *cfg, const char *name)
{
    const char *glob;
    json_t *v;

    json_object_foreach(json_object_get(cfg, "files"), glob, v)
    {
        if (fnmatch(glob, name, 0) == 0) {
            *glob_out = glob;
            return json_string_value(v);
        }
    }
    return NULL;
}

static const char *config_excluded(json_t *cfg, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(cfg, "exclude"), i, v)
    {
        if (fnmatch(json_string_value(v), name, 0) == 0) return json_string_value(v);
    }
    return NULL;
}

/* 1 when @p st is the file of one of the @p taken paths. */
static int is_taken(const struct stat *st, const char *const *taken, size_t ntaken)
{
    struct stat t;

    for (size_t i = 0; i < ntaken; i++)
        if (stat(taken[i], &t) == 0 && t.st_dev == st->st_dev && t.st_ino == st->st_ino) return 1;
    return 0;
}

static int plan_add(push_dir_plan *p, char *path, const char *name, const char *kind,
                    const char *rule)
{
    push_dir_file *f;

    if (p->nfiles == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        push_dir_file *n = realloc(p->files, cap * sizeof(*n));
        if (!n) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        p->files = n;
        p->cap = cap;
    }
    f = &p->files[p->nfiles++];
    f->path = path;
    f->name = name;
    snprintf(f->kind, sizeof(f->kind), "%s", kind);
    f->rule = rule;
    return 0;
}

/* Keeps the text "mlreg.json 'GLOB'" for the plan's lifetime. */
static const char *rule_text(push_dir_plan *p, const char *glob)
{
    char **n = realloc(p->rules, (p->nrules + 1) * sizeof(*n));
    size_t len = strlen(glob) + sizeof(PUSH_DIR_CONFIG) + 4;

    if (!n) return NULL;
    p->rules = n;
    if (!(p->rules[p->nrules] = malloc(len))) return NULL;
    snprintf(p->rules[p->nrules], len, PUSH_DIR_CONFIG " '%s'", glob);
    return p->rules[p->nrules++];
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int file_cmp(const void *a, const void *b)
{
    return strcmp(((const push_dir_file *)a)->name, ((const push_dir_file *)b)->name);
}

/* Names an entry that stops the push, on stderr: all of them are listed
 * before the refusal, so one run shows everything to fix. */
static void refuse(size_t *nrefused, const char *name, const char *why)
{
    (*nrefused)++;
    fprintf(stderr, "cannot push: %s: %s\n", mlreg_text_printable(name), why);
}

int push_dir_plan_build(push_dir_plan *out, const char *dir_arg, const char *const *taken,
                        size_t ntaken)
{
    char dir[PATH_MAX];
    size_t dl;
    struct stat dst;
    int error = 0;
    DIR *d = NULL;
    struct dirent *de;
    json_t *cfg = NULL;
    char **names = NULL, real_dir[PATH_MAX];
    size_t nnames = 0, cap = 0, nrefused = 0;
    push_dir_plan plan = {0};

    memset(out, 0, sizeof(*out));
    /* "export/" and "export" name the same files: DIR/NAME, one slash */
    if ((dl = strlen(dir_arg)) >= sizeof(dir))
        return mlreg_error_set(MLREG_EINVALID, "%.64s...: path too long", dir_arg);
    memcpy(dir, dir_arg, dl + 1);
    while (dl > 1 && dir[dl - 1] == '/')
        dir[--dl] = '\0';
    if (!realpath(dir, real_dir) || stat(real_dir, &dst) < 0) {
        error = mlreg_error_set(errno == ENOENT ? MLREG_EINVALID : MLREG_EIO, "%s: %s",
                                mlreg_text_printable(dir),
                                errno == ENOENT ? "no such directory" : strerror(errno));
        goto done;
    }
    if (!S_ISDIR(dst.st_mode)) {
        error = mlreg_error_set(MLREG_EINVALID, "%s: not a directory", mlreg_text_printable(dir));
        goto done;
    }
    if ((error = config_load(&cfg, dir)) < 0) goto done;
    if (!(d = opendir(dir))) {
        error = mlreg_error_set(MLREG_EIO, "%s: %s", mlreg_text_printable(dir), strerror(errno));
        goto done;
    }
    /* names first, sorted: the plan and the messages come out in one order */
    while ((errno = 0, de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (nnames == cap) {
            char **n = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*n));
            if (!n) goto nomem;
            names = n;
        }
        if (!(names[nnames] = strdup(de->d_name))) goto nomem;
        nnames++;
    }
    if (errno) {
        error = mlreg_error_set(MLREG_EIO, "reading %s: %s", mlreg_text_printable(dir),
                                strerror(errno));
        goto done;
    }
    if (nnames) qsort(names, nnames, sizeof(*names), name_cmp);

    for (size_t i = 0; i < nnames; i++) {
        const char *name = names[i], *kind, *rule = NULL, *glob = NULL, *ex;
        char path[PATH_MAX], real[PATH_MAX], *keep;
        struct stat lst, st;
        size_t rl = strlen(real_dir);

        if ((error = cli_path_join(path, sizeof(path), dir, name)) < 0) goto done;
        if (!strcmp(name, PUSH_DIR_CONFIG)) continue; /* announced by config_load() */
        if (lstat(path, &lst) < 0) {
            error =
                mlreg_error_set(MLREG_EIO, "%s: %s", mlreg_text_printable(path), strerror(errno));
            goto done;
        }
        if ((ex = config_excluded(cfg, name))) {
            fprintf(stderr, "not pushed: %s (excluded by " PUSH_DIR_CONFIG " '%s')\n",
                    mlreg_text_printable(name), mlreg_text_printable(ex));
            continue;
        }
        if (name[0] == '.') {
            fprintf(stderr,
                    "not pushed: %s (hidden: a release file's name may not start with '.')\n",
                    mlreg_text_printable(name));
            continue;
        }
        if (S_ISDIR(lst.st_mode)) {
            refuse(
                &nrefused, name,
                "a subdirectory (a release holds plain file names; exclude it in " PUSH_DIR_CONFIG
                " or push its files with --file KIND=PATH)");
            continue;
        }
        if (S_ISLNK(lst.st_mode)) {
            if (!realpath(path, real) || strncmp(real, real_dir, rl) || real[rl] != '/' ||
                strchr(real + rl + 1, '/')) {
                refuse(&nrefused, name,
                       "a symbolic link that leads out of the directory (or nowhere)");
                continue;
            }
            if (stat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
                refuse(&nrefused, name, "a symbolic link to something not a file");
                continue;
            }
        } else if (!S_ISREG(lst.st_mode)) {
            refuse(&nrefused, name, "not a regular file");
            continue;
        } else {
            st = lst;
            snprintf(real, sizeof(real), "%s", path);
        }
        if (is_taken(&st, taken, ntaken)) continue; /* its flag gives its kind */
        if ((kind = config_kind(&glob, cfg, name))) {
            if (!(rule = rule_text(&plan, glob))) goto nomem;
        } else if (!(kind = push_dir_kind_of(&rule, name))) {
            refuse(&nrefused, name,
                   "no kind for this name (map it in " PUSH_DIR_CONFIG
                   " \"files\", exclude it there, or push it with --file KIND=PATH)");
            continue;
        }
        {
            /* the path opened and the title in one allocation, "REAL\0NAME":
             * the title is the entry's own name, also for a link */
            size_t pl = strlen(real), nl = strlen(name);
            if (!(keep = malloc(pl + 1 + nl + 1))) goto nomem;
            memcpy(keep, real, pl + 1);
            memcpy(keep + pl + 1, name, nl + 1);
            if ((error = plan_add(&plan, keep, keep + pl + 1, kind, rule)) < 0) {
                free(keep);
                goto done;
            }
        }
    }
    if (nrefused) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "%s: %zu entr%s cannot be pushed (listed above); nothing sent",
                                mlreg_text_printable(dir), nrefused, nrefused == 1 ? "y" : "ies");
        goto done;
    }
    if (plan.nfiles == 0) {
        error = mlreg_error_set(MLREG_EINVALID, "%s: no file to push", mlreg_text_printable(dir));
        goto done;
    }
    qsort(plan.files, plan.nfiles, sizeof(*plan.files), file_cmp);
    *out = plan;
    memset(&plan, 0, sizeof(plan));
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    if (d) closedir(d);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    json_decref(cfg);
    push_dir_plan_clear(&plan);
    return error;
}
