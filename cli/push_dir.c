/* push_dir.c: the plan of `mlreg push MODEL@VERSION DIR/` (push_dir.h).
 *
 * A directory push must never send something the user did not mean to, nor
 * leave out something silently: every entry of the tree under DIR ends up
 * either in the plan with its kind, or named on stderr with the reason it
 * is not pushed, or in the refusal listing everything that stopped the
 * push. Nothing is uploaded before the whole tree was looked at.
 *
 * Traps: a symbolic link may lead out of DIR (an export step that links
 * ~/.ssh/id_ed25519 would publish it), so a link is followed only to a
 * regular file inside DIR. The walk never opens anything by a path string
 * that could pass a swapped link: each directory is opened relative to its
 * parent's descriptor with O_NOFOLLOW | O_DIRECTORY, each file with
 * O_NOFOLLOW, a link's target one segment at a time from DIR's descriptor;
 * the plan keeps those descriptors, so what is hashed and uploaded is what
 * was checked. The title is the path relative to DIR and follows the
 * registry's rule (mlreg_title_validate()); the set rule (case twins, a
 * file where a directory is needed) is checked by the caller over every
 * title of the push. */
#include "push_dir.h"
#include "safepath.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    for (size_t i = 0; i < p->nfiles; i++) {
        if (p->files[i].fd >= 0) close(p->files[i].fd);
        free(p->files[i].path);
    }
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

/* Whether glob @p glob of PUSH_DIR_CONFIG matches the entry at relative
 * path @p rel (base name @p base; @p is_dir when a directory), as
 * .gitignore does: a glob without '/' matches the base name at any depth;
 * a glob with a '/' inside matches the whole relative path, anchored at
 * DIR, with '*', '?' and '[...]' never crossing a '/' (fnmatch
 * FNM_PATHNAME); a leading '/' only anchors ("/checkpoints": the top one
 * alone), a trailing '/' matches directories only ("checkpoints/"). */
static int glob_match(const char *glob, const char *rel, const char *base, int is_dir)
{
    char g[PATH_MAX];
    size_t n = strlen(glob);
    int anchored = 0;

    if (n >= sizeof(g)) return 0; /* longer than any path */
    memcpy(g, glob, n + 1);
    if (n > 1 && g[n - 1] == '/') {
        if (!is_dir) return 0;
        g[--n] = '\0';
    }
    if (g[0] == '/') anchored = 1;
    if (!anchored && !strchr(g, '/')) return fnmatch(g, base, 0) == 0;
    return fnmatch(g + anchored, rel, FNM_PATHNAME) == 0;
}

/* The "files" glob of @p cfg that matches the file @p rel, with its kind;
 * NULL. */
static const char *config_kind(const char **glob_out, json_t *cfg, const char *rel,
                               const char *base)
{
    const char *glob;
    json_t *v;

    json_object_foreach(json_object_get(cfg, "files"), glob, v)
    {
        if (glob_match(glob, rel, base, 0)) {
            *glob_out = glob;
            return json_string_value(v);
        }
    }
    return NULL;
}

static const char *config_excluded(json_t *cfg, const char *rel, const char *base, int is_dir)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(cfg, "exclude"), i, v)
    {
        if (glob_match(json_string_value(v), rel, base, is_dir)) return json_string_value(v);
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

static int plan_add(push_dir_plan *p, char *path, const char *name, int fd, const char *kind,
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
    f->fd = fd;
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

/* What the walk of one tree shares. */
typedef struct {
    push_dir_plan plan;
    json_t *cfg;
    const char *dir;         /* as given, without trailing '/' */
    char real_dir[PATH_MAX]; /* realpath() of dir */
    int root_fd;             /* dir, open */
    const char *const *taken;
    size_t ntaken;
    size_t nrefused;
} walk_ctx;

/* Names an entry that stops the push, on stderr: all of them are listed
 * before the refusal, so one run shows everything to fix. */
static void refuse(walk_ctx *w, const char *rel, const char *why)
{
    w->nrefused++;
    fprintf(stderr, "cannot push: %s: %s\n", mlreg_text_printable(rel), why);
}

/* 1 when the file at @p target (relative to DIR) would not be pushed in its
 * own right: a segment of its path starts with '.', or mlreg.json excludes
 * it or one of its directories. */
static int target_hidden_or_excluded(walk_ctx *w, const char *target)
{
    char prefix[PATH_MAX];
    const char *seg = target, *slash;

    for (;;) {
        size_t end;

        slash = strchr(seg, '/');
        end = slash ? (size_t)(slash - target) : strlen(target);
        if (seg[0] == '.' || end >= sizeof(prefix)) return 1;
        memcpy(prefix, target, end);
        prefix[end] = '\0';
        if (config_excluded(w->cfg, prefix, prefix + (seg - target), slash != NULL)) return 1;
        if (!slash) return 0;
        seg = slash + 1;
    }
}

/* A symbolic link at @p rel (DIR/REL is @p path): followed only to a
 * regular file inside DIR. *fd_out is that file, open, and @p real its
 * path (for messages); *fd_out stays -1 when the link was refused. */
static int walk_link(int *fd_out, char *real, walk_ctx *w, const char *rel, const char *path)
{
    size_t rl = strlen(w->real_dir);
    struct stat st, fst;
    const char *leaf;
    int fd, pfd, error;

    *fd_out = -1;
    if (!realpath(path, real) || strncmp(real, w->real_dir, rl) || real[rl] != '/') {
        refuse(w, rel, "a symbolic link that leads out of the directory (or nowhere)");
        return 0;
    }
    if (stat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
        refuse(w, rel, "a symbolic link to something not a file");
        return 0;
    }
    if (target_hidden_or_excluded(w, real + rl + 1)) {
        refuse(w, rel,
               "a symbolic link to a file that is hidden or excluded by " PUSH_DIR_CONFIG
               " (a link does not publish what the rules keep out)");
        return 0;
    }
    if ((error = cli_safepath_parent(&pfd, &leaf, NULL, w->root_fd, real + rl + 1, 0, NULL)) < 0) {
        if (error != MLREG_EDENIED && error != MLREG_ENOTFOUND) return error;
        mlreg_error_clear();
        refuse(w, rel, "a symbolic link whose target changed while the directory was read");
        return 0;
    }
    fd = cli_safepath_open_regular(pfd, leaf);
    close(pfd);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOENT || errno == EINVAL) {
            refuse(w, rel, "a symbolic link whose target changed while the directory was read");
            return 0;
        }
        return mlreg_error_set(MLREG_EIO, "%s: %s", mlreg_text_printable(real), strerror(errno));
    }
    if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) || fst.st_dev != st.st_dev ||
        fst.st_ino != st.st_ino) {
        close(fd);
        refuse(w, rel, "a symbolic link whose target changed while the directory was read");
        return 0;
    }
    *fd_out = fd;
    return 0;
}

/* The names in directory @p dfd but "." and "..", sorted (strcmp): the
 * plan and the messages come out in one order. *out is owned by the
 * caller (each name, then the array). */
static int read_names(char ***out, size_t *n_out, int dfd, const char *shown)
{
    DIR *d = NULL;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int fd, error = 0;

    *out = NULL;
    *n_out = 0;
    if ((fd = dup(dfd)) < 0 || !(d = fdopendir(fd))) {
        error = mlreg_error_set(MLREG_EIO, "%s: %s", mlreg_text_printable(shown), strerror(errno));
        if (fd >= 0) close(fd);
        return error;
    }
    rewinddir(d); /* dup() shares the offset with dfd */
    while ((errno = 0, de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (n == cap) {
            char **m = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*m));
            if (!m) goto nomem;
            names = m;
        }
        if (!(names[n] = strdup(de->d_name))) goto nomem;
        n++;
    }
    if (errno) {
        error = mlreg_error_set(MLREG_EIO, "reading %s: %s", mlreg_text_printable(shown),
                                strerror(errno));
        goto done;
    }
    if (n) qsort(names, n, sizeof(*names), name_cmp);
    *out = names;
    *n_out = n;
    names = NULL;
    n = 0;
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return error;
}

/* Adds the file open on @p fd (the entry at @p rel, base name @p base,
 * shown as @p shown) to the plan with its kind, or refuses it. Takes @p fd
 * in every case. */
static int walk_file(walk_ctx *w, int fd, const struct stat *st, const char *rel, const char *base,
                     const char *shown)
{
    const char *kind, *rule = NULL, *glob = NULL;
    size_t pl = strlen(shown), nl = strlen(rel);
    char *keep = NULL;
    int error = 0;

    if (is_taken(st, w->taken, w->ntaken)) goto done; /* its flag gives its kind */
    if ((kind = config_kind(&glob, w->cfg, rel, base))) {
        if (!(rule = rule_text(&w->plan, glob))) goto nomem;
    } else if (!(kind = push_dir_kind_of(&rule, base))) {
        refuse(w, rel,
               "no kind for this name (map it in " PUSH_DIR_CONFIG
               " \"files\", exclude it there, or push it with --file KIND=PATH)");
        goto done;
    }
    /* the path shown and the title in one allocation, "SHOWN\0REL": the
     * title is the entry's own path, also for a link */
    if (!(keep = malloc(pl + 1 + nl + 1))) goto nomem;
    memcpy(keep, shown, pl + 1);
    memcpy(keep + pl + 1, rel, nl + 1);
    if ((error = plan_add(&w->plan, keep, keep + pl + 1, fd, kind, rule)) < 0) goto done;
    return 0;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    free(keep);
    close(fd);
    return error;
}

static int walk_dir(walk_ctx *w, int dfd, const char *prefix, size_t depth);

/* One entry, @p name, of directory @p dfd whose relative path is @p prefix
 * ("" at the top, else ending in '/'), @p depth segments deep. */
static int walk_entry(walk_ctx *w, int dfd, const char *prefix, size_t depth, const char *name)
{
    char rel[2 * PATH_MAX], path[3 * PATH_MAX], real[PATH_MAX];
    const char *ex;
    struct stat lst, st;
    int fd = -1, error = 0;

    snprintf(rel, sizeof(rel), "%s%s", prefix, name);
    snprintf(path, sizeof(path), "%s/%s", w->dir, rel);
    if (depth == 0 && !strcmp(name, PUSH_DIR_CONFIG)) return 0; /* announced by config_load() */
    if (fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) {
            refuse(w, rel, "removed while the directory was read");
            return 0;
        }
        return mlreg_error_set(MLREG_EIO, "%s: %s", mlreg_text_printable(path), strerror(errno));
    }
    if ((ex = config_excluded(w->cfg, rel, name, S_ISDIR(lst.st_mode)))) {
        fprintf(stderr, "not pushed: %s%s (excluded by " PUSH_DIR_CONFIG " '%s')\n",
                mlreg_text_printable(rel), S_ISDIR(lst.st_mode) ? "/ and everything in it" : "",
                mlreg_text_printable(ex));
        return 0;
    }
    if (name[0] == '.') {
        fprintf(stderr,
                "not pushed: %s%s (hidden: no part of a release file's path may start "
                "with '.')\n",
                mlreg_text_printable(rel), S_ISDIR(lst.st_mode) ? "/ and everything in it" : "");
        return 0;
    }
    /* the title rule's limits, checked here to name the path and to bound
     * the walk (mlreg_title_validate() below says the rest) */
    if (depth + 1 > MLREG_TITLE_DEPTH_MAX) {
        char why[96];

        snprintf(why, sizeof(why),
                 "more than %d path segments deep (a release title has at most %d)",
                 MLREG_TITLE_DEPTH_MAX, MLREG_TITLE_DEPTH_MAX);
        refuse(w, rel, why);
        return 0;
    }
    if (strlen(rel) > MLREG_TITLE_MAX) {
        char why[96];

        snprintf(why, sizeof(why),
                 "its path is longer than %d bytes (a release title has at most %d)",
                 MLREG_TITLE_MAX, MLREG_TITLE_MAX);
        refuse(w, rel, why);
        return 0;
    }
    if (S_ISDIR(lst.st_mode)) {
        size_t rl = strlen(rel);

        if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            if (errno == ELOOP || errno == ENOTDIR || errno == ENOENT) {
                refuse(w, rel, "a directory that changed while it was read");
                return 0;
            }
            return mlreg_error_set(MLREG_EIO, "%s: %s", mlreg_text_printable(path),
                                   strerror(errno));
        }
        if (fstat(fd, &st) < 0 || st.st_dev != lst.st_dev || st.st_ino != lst.st_ino) {
            close(fd);
            refuse(w, rel, "a directory that changed while it was read");
            return 0;
        }
        rel[rl] = '/';
        rel[rl + 1] = '\0';
        error = walk_dir(w, fd, rel, depth + 1);
        close(fd);
        return error;
    }
    if (mlreg_title_validate(rel) < 0) {
        refuse(w, rel, mlreg_error_last());
        mlreg_error_clear();
        return 0;
    }
    if (depth > 0 && !strcmp(name, PUSH_DIR_CONFIG)) {
        refuse(w, rel,
               "only " PUSH_DIR_CONFIG " at the top of the directory is read (exclude this one "
               "there, or rename it)");
        return 0;
    }
    if (S_ISLNK(lst.st_mode)) {
        if ((error = walk_link(&fd, real, w, rel, path)) < 0 || fd < 0) return error;
        if (fstat(fd, &st) < 0) {
            error =
                mlreg_error_set(MLREG_EIO, "%s: %s", mlreg_text_printable(real), strerror(errno));
            close(fd);
            return error;
        }
        return walk_file(w, fd, &st, rel, name, real);
    }
    if (!S_ISREG(lst.st_mode)) {
        refuse(w, rel, "not a regular file");
        return 0;
    }
    if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
        if (errno == ELOOP || errno == ENOENT) {
            refuse(w, rel, "a file that changed while the directory was read");
            return 0;
        }
        return mlreg_error_set(MLREG_EIO, "%s: %s", mlreg_text_printable(path), strerror(errno));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != lst.st_dev ||
        st.st_ino != lst.st_ino) {
        close(fd);
        refuse(w, rel, "a file that changed while the directory was read");
        return 0;
    }
    return walk_file(w, fd, &st, rel, name, path);
}

/* Walks directory @p dfd (relative path @p prefix, @p depth segments): its
 * entries in name order, each directory before the next entry. The depth
 * is bounded by walk_entry() (MLREG_TITLE_DEPTH_MAX), and so are the
 * descriptors held at once. */
static int walk_dir(walk_ctx *w, int dfd, const char *prefix, size_t depth)
{
    char **names = NULL, shown[3 * PATH_MAX];
    size_t n = 0;
    int error = 0;

    snprintf(shown, sizeof(shown), "%s/%s", w->dir, prefix);
    if ((error = read_names(&names, &n, dfd, shown)) < 0) return error;
    for (size_t i = 0; i < n && error == 0; i++)
        error = walk_entry(w, dfd, prefix, depth, names[i]);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return error;
}

int push_dir_plan_build(push_dir_plan *out, const char *dir_arg, const char *const *taken,
                        size_t ntaken)
{
    char dir[PATH_MAX];
    size_t dl;
    struct stat dst, rst;
    int error = 0;
    walk_ctx w;

    memset(out, 0, sizeof(*out));
    memset(&w, 0, sizeof(w));
    w.root_fd = -1;
    w.taken = taken;
    w.ntaken = ntaken;
    w.dir = dir;
    /* "export/" and "export" name the same files: DIR/REL, one slash */
    if ((dl = strlen(dir_arg)) >= sizeof(dir))
        return mlreg_error_set(MLREG_EINVALID, "%.64s...: path too long", dir_arg);
    memcpy(dir, dir_arg, dl + 1);
    while (dl > 1 && dir[dl - 1] == '/')
        dir[--dl] = '\0';
    if (!realpath(dir, w.real_dir) || stat(w.real_dir, &dst) < 0) {
        error = mlreg_error_set(errno == ENOENT ? MLREG_EINVALID : MLREG_EIO, "%s: %s",
                                mlreg_text_printable(dir),
                                errno == ENOENT ? "no such directory" : strerror(errno));
        goto done;
    }
    if (!S_ISDIR(dst.st_mode)) {
        error = mlreg_error_set(MLREG_EINVALID, "%s: not a directory", mlreg_text_printable(dir));
        goto done;
    }
    if ((error = config_load(&w.cfg, dir)) < 0) goto done;
    /* DIR itself may be a link the user gave; below it, nothing is followed */
    if ((w.root_fd = open(w.real_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        fstat(w.root_fd, &rst) < 0) {
        error = mlreg_error_set(MLREG_EIO, "%s: %s", mlreg_text_printable(dir), strerror(errno));
        goto done;
    }
    if (rst.st_dev != dst.st_dev || rst.st_ino != dst.st_ino) {
        error = mlreg_error_set(MLREG_EINVALID, "%s: changed while it was read",
                                mlreg_text_printable(dir));
        goto done;
    }
    if ((error = walk_dir(&w, w.root_fd, "", 0)) < 0) goto done;
    if (w.nrefused) {
        error = mlreg_error_set(
            MLREG_EINVALID, "%s: %zu entr%s cannot be pushed (listed above); nothing sent",
            mlreg_text_printable(dir), w.nrefused, w.nrefused == 1 ? "y" : "ies");
        goto done;
    }
    if (w.plan.nfiles == 0) {
        error = mlreg_error_set(MLREG_EINVALID, "%s: no file to push", mlreg_text_printable(dir));
        goto done;
    }
    qsort(w.plan.files, w.plan.nfiles, sizeof(*w.plan.files), file_cmp);
    *out = w.plan;
    memset(&w.plan, 0, sizeof(w.plan));
done:
    if (w.root_fd >= 0) close(w.root_fd);
    json_decref(w.cfg);
    push_dir_plan_clear(&w.plan);
    return error;
}
