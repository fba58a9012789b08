/* check.c: `mlreg check DIR [--trusted-key PUBFILE]... [--keyring FILE]
 * [--strict] [--json]`: checks a deployed directory against the
 * DIR/mlreg.lock.json that `mlreg pull` wrote, offline (no registry).
 *
 * What the lock says is not taken on trust either. In order:
 * 1. the lock: JSON that names a model, version and digest, and holds the
 *    manifest text pull fetched; that text must hash to the lock's digest
 *    and be a release of that model and version (cli_release_parse), and
 *    the lock's "files" must be exactly the manifest's files (title, kind,
 *    digest, size). A lock edited by hand (a digest changed to match a
 *    changed file) fails here;
 * 2. every file of the release: present, a regular file, of the size and
 *    SHA-256 the manifest gives (streamed, nothing kept). A title may have
 *    subdirectories: each file is reached one segment at a time through
 *    DIR's descriptor (safepath.h), so a symbolic link or file where a
 *    directory should be is a failure ("in-the-way"), never followed, even
 *    when the link leads to the right bytes;
 * 3. with --trusted-key / --keyring: the signatures the lock keeps (those
 *    that verified at pull time) are judged again against the trusted keys,
 *    over the manifest text; at least one must count and none be invalid.
 *    Without them the check proves that DIR matches its lock, not who made
 *    the release: anyone able to write DIR can write a consistent lock.
 *
 * Other files in DIR: leftovers of a previous release (the lock's
 * "removed", which pull was to remove) are failures, since a loader may
 * read them (a stale shard index); any other file is reported as "extra"
 * and fails the check only with --strict; extra names are looked for in DIR
 * and in every directory of the release, recursively so, and a directory
 * no title lies below is one extra entry ("name/"), not looked into. Names
 * starting with '.' (pull's
 * own temp and staging entries, .git, caches) are not reported: no release
 * file can have one (mlreg_title_validate).
 *
 * Exit 0 when everything passes, 1 when something does not (every finding
 * is reported, one line per file), 2 for a usage error or an unreadable
 * key file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "client.h"
#include "files.h"
#include "find.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/names.h"
#include "mlreg/oci.h"
#include "mlreg/release_sig.h"
#include "mlreg/text.h"
#include "release.h"
#include "safepath.h"

static const char usage_line[] =
    "usage: mlreg check DIR [--trusted-key PUBFILE]... [--keyring FILE] [--strict] [--json]\n"
    "\n"
    "Checks a directory `mlreg pull` wrote against its DIR/mlreg.lock.json,\n"
    "offline: the manifest kept in the lock hashes to the lock's digest and lists\n"
    "exactly the lock's files; every file is present with the size and SHA-256 of\n"
    "the manifest. With --trusted-key or --keyring, the signatures the lock kept\n"
    "(pulled with --trusted-key) must verify over the manifest with a trusted,\n"
    "unrevoked key. Files of the previous release that pull was to remove (the\n"
    "lock's \"removed\") fail the check; other files (in DIR and in every\n"
    "directory of the release) are reported as extra and fail it only with\n"
    "--strict. A symbolic link where a directory of the release should be fails,\n"
    "never followed. Prints one line per file; exit 0 all passed,\n"
    "1 something failed, 2 usage.\n"
    "  --trusted-key PUBFILE  e.g. --trusted-key release-ci.pub (repeatable)\n"
    "  --keyring FILE         e.g. --keyring keys.json (from mlreg key list --json)\n"
    "  --strict               extra files fail the check too\n"
    "  --json                 {\"dir\",\"model\",\"version\",\"digest\",\"passed\",\"files\",\n"
    "                         \"extra\",\"leftovers\",\"signatures\",\"reasons\"}\n"
    "e.g. mlreg check /srv/models/clf --trusted-key release-ci.pub\n";

/* The verdict on one file of the release. */
typedef struct {
    const char *status; /* "ok", "missing", "size", "digest", "not-a-file", "unreadable" */
    char detail[300];
} file_verdict;

typedef struct {
    json_t *reasons;   /* every failure, one string each */
    json_t *extra;     /* names no lock lists */
    json_t *leftovers; /* names of "removed" still present */
} findings;

static int add(json_t *list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add(json_t *list, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (json_array_append_new(list, json_string(buf)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

/* Reads DIR/mlreg.lock.json (through DIR's descriptor @p dfd, never a
 * symbolic link) into *out. A missing or unreadable lock is a failure of
 * the check (MLREG_EMISMATCH), not a usage error: the directory is not what
 * a pull leaves. */
static int lock_read(json_t **out, int dfd, const char *dir)
{
    char path[PATH_MAX];
    json_error_t jerr;
    struct stat st;
    int lfd;

    *out = NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, MLREG_LOCK_FILE_NAME);
    if (fstatat(dfd, MLREG_LOCK_FILE_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return mlreg_error_set(MLREG_EMISMATCH, "%s: %s (not a directory mlreg pull wrote?)", path,
                               strerror(errno));
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CLI_API_MAX)
        return mlreg_error_set(MLREG_EMISMATCH, "%s is not a regular file of a sane size", path);
    if ((lfd = cli_safepath_open_regular(dfd, MLREG_LOCK_FILE_NAME)) < 0)
        return mlreg_error_set(MLREG_EMISMATCH, "%s: %s", path, strerror(errno));
    *out = json_loadfd(lfd, JSON_REJECT_DUPLICATES, &jerr);
    close(lfd);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return mlreg_error_set(MLREG_EMISMATCH, "%s is not a JSON object: %s", path,
                               mlreg_text_printable(jerr.text));
    }
    return 0;
}

/* Step 1: the manifest the lock keeps is the release the lock names, and
 * the lock's files are the manifest's. Fills @p rel. */
static int lock_check(cli_release *rel, cli_ref *ref, json_t *lock)
{
    const char *model = json_string_value(json_object_get(lock, "model"));
    const char *version = json_string_value(json_object_get(lock, "version"));
    const char *digest = json_string_value(json_object_get(lock, "digest"));
    json_t *man = json_object_get(lock, "manifest"), *files = json_object_get(lock, "files"), *f;
    char refstr[600];
    size_t i, n = 0;

    if (!model || !version || !digest)
        return mlreg_error_set(MLREG_EMISMATCH, "lock names no model, version and digest");
    if ((size_t)snprintf(refstr, sizeof(refstr), "%s@%s", model, digest) >= sizeof(refstr) ||
        cli_ref_parse(ref, refstr, 1) < 0)
        return mlreg_error_set(MLREG_EMISMATCH, "lock names no valid model and digest");
    if (!json_is_string(man))
        return mlreg_error_set(MLREG_EMISMATCH,
                               "lock keeps no manifest (written by an mlreg before `check`: pull "
                               "again to check this directory)");
    if (cli_release_parse(rel, ref, json_string_value(man), json_string_length(man)) < 0)
        return cli_error_wrap(MLREG_EMISMATCH, "the manifest kept in the lock");
    if (strcmp(rel->version, version))
        return mlreg_error_set(MLREG_EMISMATCH, "lock says version %s, its manifest %s",
                               mlreg_text_printable(version), rel->version);
    if (!json_is_array(files)) return mlreg_error_set(MLREG_EMISMATCH, "lock has no files list");
    for (size_t k = 0; k < rel->nlayers; k++)
        n += !rel->layers[k].is_chunk_index;
    if (json_array_size(files) != n)
        return mlreg_error_set(MLREG_EMISMATCH, "lock lists %zu files, its manifest %zu",
                               json_array_size(files), n);
    json_array_foreach(files, i, f)
    {
        const char *t = json_string_value(json_object_get(f, "title"));
        const char *d = json_string_value(json_object_get(f, "digest"));
        const char *kd = json_string_value(json_object_get(f, "kind"));
        json_t *sz = json_object_get(f, "size");
        const cli_layer *l = NULL;
        for (size_t k = 0; k < rel->nlayers && !l; k++)
            if (!rel->layers[k].is_chunk_index && t && !strcmp(rel->layers[k].title, t))
                l = &rel->layers[k];
        if (!l || !d || !kd || strcmp(l->digest_str, d) || strcmp(l->kind, kd) ||
            !json_is_integer(sz) || (uint64_t)json_integer_value(sz) != l->size)
            return mlreg_error_set(MLREG_EMISMATCH,
                                   "lock entry %zu (%s) does not match its manifest: the lock "
                                   "was edited",
                                   i + 1, t ? mlreg_text_printable(t) : "no title");
    }
    return 0;
}

/* Step 2 for one file, reached one segment at a time below DIR's
 * descriptor @p dfd (safepath.h): a symbolic link or file where a
 * directory of the title should be is "in-the-way", never followed. */
static void file_check(file_verdict *v, int dfd, const cli_layer *l)
{
    char got[MLREG_DIGEST_STRLEN + 1];
    struct stat st;
    mlreg_digest d;
    uint64_t size = 0;
    int fd, pfd, rc;
    const char *leaf;

    v->detail[0] = '\0';
    rc = cli_safepath_parent(&pfd, &leaf, NULL, dfd, l->title, 0, NULL);
    if (rc == MLREG_ENOTFOUND) {
        v->status = "missing";
        snprintf(v->detail, sizeof(v->detail), "%s", mlreg_error_last());
        return;
    }
    if (rc < 0) {
        v->status = rc == MLREG_EDENIED ? "in-the-way" : "unreadable";
        snprintf(v->detail, sizeof(v->detail), "%s", mlreg_error_last());
        return;
    }
    if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        v->status = "missing";
        snprintf(v->detail, sizeof(v->detail), "%s",
                 errno == ENOENT ? "no such file" : "cannot stat");
        close(pfd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        v->status = "not-a-file";
        snprintf(v->detail, sizeof(v->detail), "%s",
                 S_ISLNK(st.st_mode) ? "a symbolic link (not followed), not a regular file"
                                     : "not a regular file");
        close(pfd);
        return;
    }
    if ((uint64_t)st.st_size != l->size) {
        v->status = "size";
        snprintf(v->detail, sizeof(v->detail), "%" PRIu64 " bytes, want %" PRIu64,
                 (uint64_t)st.st_size, l->size);
        close(pfd);
        return;
    }
    fd = cli_safepath_open_regular(pfd, leaf);
    close(pfd);
    if (fd < 0) {
        v->status = "unreadable";
        snprintf(v->detail, sizeof(v->detail), "%s", strerror(errno));
        return;
    }
    if (mlreg_digest_fd(&d, &size, fd) < 0) {
        v->status = "unreadable";
        snprintf(v->detail, sizeof(v->detail), "%s", mlreg_error_last());
    } else if (size != l->size || !mlreg_digest_equal(&d, &l->digest)) {
        mlreg_digest_format(got, &d);
        v->status = "digest";
        snprintf(v->detail, sizeof(v->detail), "sha256 is %s, want %s", got, l->digest_str);
    } else {
        v->status = "ok";
    }
    close(fd);
}

/* 1 when @p name is a title of @p rel (as titles compare). */
static int in_release(const cli_release *rel, const char *name)
{
    for (size_t k = 0; k < rel->nlayers; k++)
        if (!rel->layers[k].is_chunk_index && !mlreg_title_cmp(rel->layers[k].title, name))
            return 1;
    return 0;
}

/* 1 when @p name is a directory of the release: some title lies below it. */
static int release_dir(const cli_release *rel, const char *name)
{
    size_t len = strlen(name);

    for (size_t k = 0; k < rel->nlayers; k++)
        if (!rel->layers[k].is_chunk_index && !mlreg_title_ncmp(rel->layers[k].title, name, len) &&
            rel->layers[k].title[len] == '/')
            return 1;
    return 0;
}

/* 1 when @p name is one of the lock's "removed". */
static int in_removed(json_t *removed, const char *name)
{
    size_t i;
    json_t *r;

    json_array_foreach(removed, i, r)
    {
        if (json_is_string(r) && !strcmp(json_string_value(r), name)) return 1;
    }
    return 0;
}

/* The entries of directory @p rel of DIR ("" for DIR itself) that are no
 * file or directory of the release and no leftover: extra names, a
 * directory written with a trailing '/' (not looked into: it is no
 * directory of the release). A directory that cannot be reached (a link
 * in its place) is skipped: file_check reports it. */
static int dir_scan(findings *fd, int dfd, const char *rel, const cli_release *r, json_t *removed)
{
    DIR *d = NULL;
    struct dirent *e;
    int error = 0, sfd = -1, pfd;
    const char *leaf;
    char name[PATH_MAX];

    if (!*rel) {
        sfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else if (cli_safepath_parent(&pfd, &leaf, NULL, dfd, rel, 0, NULL) == 0) {
        sfd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(pfd);
    }
    mlreg_error_clear();
    if (sfd < 0 || !(d = fdopendir(sfd))) {
        if (sfd >= 0) close(sfd);
        return 0;
    }
    while ((e = readdir(d))) {
        int isdir;
        if (e->d_name[0] == '.') continue;
        if ((size_t)snprintf(name, sizeof(name), "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
            sizeof(name))
            continue;
        if ((!*rel && !mlreg_title_cmp(name, MLREG_LOCK_FILE_NAME)) || in_release(r, name) ||
            release_dir(r, name) || in_removed(removed, name))
            continue;
        isdir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            isdir = fstatat(sfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        if ((error = add(fd->extra, "%s%s", name, isdir ? "/" : "")) < 0) break;
    }
    closedir(d);
    return error;
}

/* The other entries of DIR: leftovers the lock names under "removed" that
 * are still there (reached as release files are), and extra names in DIR
 * and in every directory of the release, recursively so (a directory
 * no title lies below is one extra entry, not looked into). */
static int others_scan(findings *fd, int dfd, const cli_release *rel, json_t *lock)
{
    json_t *removed = json_object_get(lock, "removed"), *r, *dirs;
    size_t i;
    int error = 0;

    json_array_foreach(removed, i, r)
    {
        const char *t = json_string_value(r), *leaf;
        struct stat st;
        int pfd, there;
        if (!t || cli_safepath_parent(&pfd, &leaf, NULL, dfd, t, 0, NULL) < 0) continue;
        there = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
        close(pfd);
        if (there && (error = add(fd->leftovers, "%s", t)) < 0) return error;
    }
    mlreg_error_clear();
    /* every directory of the release, each once: the prefixes of titles */
    if (!(dirs = json_array()) || json_array_append_new(dirs, json_string("")) < 0) {
        json_decref(dirs);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < rel->nlayers && !error; k++) {
        const char *t = rel->layers[k].title;
        if (rel->layers[k].is_chunk_index) continue;
        for (const char *s = strchr(t, '/'); s && !error; s = strchr(s + 1, '/')) {
            json_t *p = json_stringn(t, (size_t)(s - t)), *q;
            size_t j;
            int seen = 0;
            json_array_foreach(dirs, j, q)
            {
                seen |= json_equal(p, q);
            }
            if (!p || (!seen && json_array_append(dirs, p) < 0))
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            json_decref(p);
        }
    }
    json_array_foreach(dirs, i, r)
    {
        if (error < 0) break;
        error = dir_scan(fd, dfd, json_string_value(r), rel, removed);
    }
    json_decref(dirs);
    return error;
}

/* Step 3: the signatures the lock keeps, judged again. */
static int sigs_check(cli_sigreport *rep, json_t *lock, const cli_release *rel, const cli_ref *ref,
                      const mlreg_trustset *ts)
{
    json_t *arr = json_object_get(lock, "signatures"), *e;
    size_t i;
    int error;

    cli_sigreport_free(rep);
    if (json_array_size(arr) && !(rep->checks = calloc(json_array_size(arr), sizeof(*rep->checks))))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    json_array_foreach(arr, i, e)
    {
        mlreg_sigcheck *chk = &rep->checks[rep->n++];
        const char *text = json_string_value(json_object_get(e, "signature"));
        if (!text) {
            memset(chk, 0, sizeof(*chk));
            chk->status = MLREG_SIGCHECK_INVALID;
            snprintf(chk->reason, sizeof(chk->reason), "lock signature %zu has no .minisig text",
                     i + 1);
            continue;
        }
        if ((error = mlreg_trustset_check(
                 chk, ts, text, strlen(text), json_string_value(json_object_get(e, "public_key")),
                 json_string_value(json_object_get(e, "attached_at")), rel->bytes, rel->len,
                 ref->model, rel->version, rel->digest)) < 0)
            return error;
        if (chk->status == MLREG_SIGCHECK_VALID) rep->valid++;
    }
    return 0;
}

static void print_text(const char *dir, const cli_release *rel, const cli_ref *ref,
                       const file_verdict *v, const findings *fd, const cli_sigreport *sigs,
                       int with_sigs, int passed, int strict)
{
    size_t i, nfiles = 0;
    json_t *e;
    char size_str[32];

    if (rel->json) {
        printf("%s: %s@%s (%s)\n", dir, ref->model, rel->version, rel->digest);
        for (size_t k = 0; k < rel->nlayers; k++) {
            const cli_layer *l = &rel->layers[k];
            if (l->is_chunk_index) continue;
            nfiles++;
            cli_format_size(size_str, sizeof(size_str), l->size);
            printf("  %-10s %-11s %-30s %10s%s%s\n", !strcmp(v[k].status, "ok") ? "ok" : "FAIL",
                   l->kind, l->title, size_str, v[k].detail[0] ? "  " : "", v[k].detail);
        }
    }
    json_array_foreach(fd->leftovers, i, e)
    {
        printf("  %-10s %-11s %s  (the previous release's, to be removed)\n", "FAIL", "leftover",
               mlreg_text_printable(json_string_value(e)));
    }
    json_array_foreach(fd->extra, i, e)
    {
        printf("  %-10s %-11s %s  (not in the release)\n", strict ? "FAIL" : "extra", "-",
               mlreg_text_printable(json_string_value(e)));
    }
    for (i = 0; with_sigs && i < sigs->n; i++)
        printf("  signature  %-16s %-20s %s\n",
               sigs->checks[i].key_id[0] ? sigs->checks[i].key_id : "?",
               mlreg_text_printable(sigs->checks[i].name ? sigs->checks[i].name : "-"),
               mlreg_text_printable(sigs->checks[i].reason));
    if (passed)
        printf("%s: all %zu files match the lock%s\n", dir, nfiles,
               with_sigs ? ", signed by a trusted key" : "");
    else
        printf("%s: FAILED\n", dir);
}

static int print_json(const char *dir, const cli_release *rel, const cli_ref *ref,
                      const file_verdict *v, const findings *fd, const cli_sigreport *sigs,
                      int with_sigs, int passed)
{
    int error = 0;
    json_t *o, *fa, *sa;

    o = json_pack("{s:s, s:s?, s:s?, s:s?, s:b, s:[], s:O, s:O, s:[], s:O}", "dir", dir, "model",
                  rel->json ? ref->model : NULL, "version", rel->json ? rel->version : NULL,
                  "digest", rel->json ? rel->digest : NULL, "passed", passed, "files", "extra",
                  fd->extra, "leftovers", fd->leftovers, "signatures", "reasons", fd->reasons);
    if (!o) goto nomem;
    fa = json_object_get(o, "files");
    for (size_t k = 0; rel->json && k < rel->nlayers; k++) {
        const cli_layer *l = &rel->layers[k];
        json_t *f;
        if (l->is_chunk_index) continue;
        f = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?}", "title", l->title, "kind", l->kind,
                      "digest", l->digest_str, "size", (json_int_t)l->size, "status", v[k].status,
                      "detail", v[k].detail[0] ? v[k].detail : NULL);
        if (!f || json_array_append_new(fa, f) < 0) goto nomem;
    }
    sa = json_object_get(o, "signatures");
    for (size_t i = 0; with_sigs && i < sigs->n; i++) {
        const mlreg_sigcheck *k = &sigs->checks[i];
        json_t *s = json_pack("{s:s?, s:s?, s:s, s:s}", "key_id", k->key_id[0] ? k->key_id : NULL,
                              "name", k->name, "status", mlreg_sigcheck_status_name(k->status),
                              "detail", k->reason);
        if (!s || json_array_append_new(sa, s) < 0) goto nomem;
    }
    error = find_print_json(o);
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    json_decref(o);
    return error;
}

int cmd_check(int argc, char **argv)
{
    int error = 0, m, as_json = 0, strict = 0, passed, dfd = -1;
    const char *dir = NULL;
    cli_trust_opts trust;
    mlreg_trustset *ts = NULL;
    cli_release rel;
    cli_ref ref;
    cli_sigreport sigs = {0};
    json_t *lock = NULL;
    file_verdict *v = NULL;
    findings fd = {NULL, NULL, NULL};
    size_t i;
    json_t *e;

    cli_release_init(&rel);
    cli_trust_opts_init(&trust);
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "-h") || !strcmp(argv[k], "--help")) {
            fputs(usage_line, stdout);
            cli_trust_opts_clear(&trust);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[k], "--json")) {
            as_json = 1;
        } else if (!strcmp(argv[k], "--strict")) {
            strict = 1;
        } else if ((m = cli_trust_opt(&trust, &k, argc, argv)) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&dir, argv[k]) < 0) {
            goto usage;
        }
    }
    if (!dir || !*dir) {
        mlreg_error_set(MLREG_EINVALID, "missing DIR");
        goto usage;
    }
    if (cli_trust_opts_given(&trust) && (error = cli_trust_load(&ts, &trust)) < 0) goto done;
    if (!(fd.reasons = json_array()) || !(fd.extra = json_array()) ||
        !(fd.leftovers = json_array())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        mlreg_error_set(MLREG_EINVALID, "%s is not a directory", dir);
        goto usage;
    }
    error = lock_read(&lock, dfd, dir);
    if (error == 0 && (error = lock_check(&rel, &ref, lock)) < 0) cli_release_clear(&rel);
    if (error == MLREG_EMISMATCH) {
        if ((error = add(fd.reasons, "%s", mlreg_error_last())) < 0) goto done;
    } else if (error < 0) {
        goto done;
    }
    if (rel.json) {
        if (rel.nlayers && !(v = calloc(rel.nlayers, sizeof(*v)))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t k = 0; k < rel.nlayers; k++) {
            if (rel.layers[k].is_chunk_index) continue;
            file_check(&v[k], dfd, &rel.layers[k]);
            if (strcmp(v[k].status, "ok") &&
                (error = add(fd.reasons, "%s: %s", rel.layers[k].title, v[k].detail)) < 0)
                goto done;
        }
        if ((error = others_scan(&fd, dfd, &rel, lock)) < 0) goto done;
        json_array_foreach(fd.leftovers, i, e)
        {
            if ((error = add(fd.reasons, "%s: left over from the previous release",
                             json_string_value(e))) < 0)
                goto done;
        }
        json_array_foreach(fd.extra, i, e)
        {
            if (strict && (error = add(fd.reasons, "%s: not in the release (--strict)",
                                       json_string_value(e))) < 0)
                goto done;
        }
        if (ts) {
            if ((error = sigs_check(&sigs, lock, &rel, &ref, ts)) < 0) goto done;
            if (cli_sigreport_verdict(&sigs) < 0 &&
                (error = add(fd.reasons, "%s%s", mlreg_error_last(),
                             json_object_get(lock, "signatures")
                                 ? ""
                                 : " (the lock keeps no signature: pull with --trusted-key)")) < 0)
                goto done;
        }
    }
    passed = json_array_size(fd.reasons) == 0;
    if (as_json)
        error = print_json(dir, &rel, &ref, v, &fd, &sigs, ts != NULL, passed);
    else
        print_text(dir, &rel, &ref, v, &fd, &sigs, ts != NULL, passed, strict);
    if (error < 0 || (error = cli_flush_stdout()) < 0) goto done;
    if (!passed) {
        json_array_foreach(fd.reasons, i, e)
        {
            fprintf(stderr, "mlreg check: %s\n", mlreg_text_printable(json_string_value(e)));
        }
        error = MLREG_EMISMATCH;
        mlreg_error_set(error, "%s does not match its lock", dir);
    }
done:
    if (dfd >= 0) close(dfd);
    json_decref(fd.reasons);
    json_decref(fd.extra);
    json_decref(fd.leftovers);
    json_decref(lock);
    free(v);
    cli_sigreport_free(&sigs);
    cli_release_clear(&rel);
    mlreg_trustset_free(ts);
    cli_trust_opts_clear(&trust);
    return error < 0 ? cli_fail("check", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg check: %s\n%s", mlreg_error_last(), usage_line);
    json_decref(fd.reasons);
    json_decref(fd.extra);
    json_decref(fd.leftovers);
    json_decref(lock);
    cli_trust_opts_clear(&trust);
    return CLI_EXIT_USAGE;
}
