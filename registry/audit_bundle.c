/* audit_bundle.c: the offline check of an audit bundle and the bundle
 * layout (include/mlreg/audit_verify.h, docs/audit-api.md), with no network
 * at all: the checkpoint, the inclusion proof of every entry, that every
 * entry and attestation is about this manifest, the attestations'
 * signatures, the release files against manifest.json and SHA256SUMS.
 *
 * A bundle is a directory someone handed over: every file is opened inside
 * it one path component at a time, never through a symbolic link
 * (bundle_open()), and read with a bound; files/, where a release title
 * that is a path ("tokenizer/vocab.json") has its directories, is walked
 * the same way (walk_files()). What it quotes in a message is
 * held to the text rule (mlreg_text_printable()). Never prints, never exits.
 */
#include "mlreg/audit_verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/dsse.h"
#include "mlreg/evaluations.h"
#include "mlreg/file.h"
#include "mlreg/manifest.h"
#include "mlreg/names.h"
#include "mlreg/oci.h"
#include "mlreg/text.h"

#include "audit_verify_internal.h"

#define SUMS_MAX         (16u * 1024 * 1024)
#define ENVELOPE_MAX     (16u * 1024 * 1024)
#define ENTRY_SUFFIX_LEN (sizeof(MLREG_BUNDLE_ENTRY_SUFFIX) - 1)
#define PROOF_SUFFIX_LEN (sizeof(MLREG_BUNDLE_PROOF_SUFFIX) - 1)
#define DSSE_SUFFIX_LEN  (sizeof(MLREG_BUNDLE_DSSE_SUFFIX) - 1)

void mlreg_bundle_entry_path(char out[MLREG_BUNDLE_ENTRY_PATH_MAX], uint64_t seq, int proof)
{
    snprintf(out, MLREG_BUNDLE_ENTRY_PATH_MAX, MLREG_BUNDLE_ENTRIES "/%" PRIu64 "%s", seq,
             proof ? MLREG_BUNDLE_PROOF_SUFFIX : MLREG_BUNDLE_ENTRY_SUFFIX);
}

/* Opens @p name (relative, '/'-separated) inside the bundle @p dir into
 * *fd_out, one component at a time and never following a symbolic link:
 * every component but the last a directory, the last a regular file or, with
 * @p want_dir, then a directory. MLREG_ENOTFOUND when missing,
 * MLREG_EMISMATCH for a symbolic link, a name with "", "." or ".."
 * components, or a file of the wrong type, MLREG_EIO otherwise. */
static int bundle_open(int *fd_out, const char *dir, const char *name, int want_dir)
{
    int error = 0, dfd = -1, fd = -1;
    char part[PATH_MAX];
    const char *p = name, *slash;
    struct stat st;

    *fd_out = -1;
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return mlreg_error_set(MLREG_EIO, "%s: %s", dir, strerror(errno));
    for (;;) {
        size_t len;
        int last, flags;
        slash = strchr(p, '/');
        len = slash ? (size_t)(slash - p) : strlen(p);
        last = !slash;
        if (len == 0 || len >= sizeof(part) || (len == 1 && p[0] == '.') ||
            (len == 2 && p[0] == '.' && p[1] == '.')) {
            error = BAD("%s: not a plain path inside the bundle", name);
            goto done;
        }
        memcpy(part, p, len);
        part[len] = '\0';
        flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
        if (!last || want_dir) flags |= O_DIRECTORY;
        if ((fd = openat(dfd, part, flags)) < 0) {
            if (errno == ENOENT)
                error = mlreg_error_set(MLREG_ENOTFOUND, "%s: missing", name);
            else if (errno == ELOOP || errno == ENOTDIR)
                error = BAD("%s: a symbolic link or not a %s", name,
                            last && !want_dir ? "regular file" : "directory");
            else
                error = mlreg_error_set(MLREG_EIO, "%s: %s", name, strerror(errno));
            goto done;
        }
        close(dfd);
        dfd = fd;
        fd = -1;
        if (last) break;
        p = slash + 1;
    }
    if (fstat(dfd, &st) < 0) {
        error = mlreg_error_set(MLREG_EIO, "%s: %s", name, strerror(errno));
        goto done;
    }
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        error = BAD("%s: not a %s", name, want_dir ? "directory" : "regular file");
        goto done;
    }
    *fd_out = dfd;
    dfd = -1;
done:
    if (fd >= 0) close(fd);
    if (dfd >= 0) close(dfd);
    return error;
}

/* "sha256:<hex>" of the bundle file @p name into @p out (bundle_open's errors). */
static int bundle_digest(char out[MLREG_DIGEST_STRLEN + 1], const char *dir, const char *name)
{
    int fd, error;
    mlreg_digest d;

    if ((error = bundle_open(&fd, dir, name, 0)) < 0) return error;
    error = mlreg_digest_fd(&d, NULL, fd);
    close(fd);
    if (error < 0) return error;
    mlreg_digest_format(out, &d);
    return 0;
}

/* ---- bundles ------------------------------------------------------------------------- */

/* A missing bundle file is a bad bundle (exit 1), not a local error. */
static int bundle_read(char **out, size_t *len_out, const char *dir, const char *name, size_t max)
{
    int error, fd;

    *out = NULL;
    *len_out = 0;
    if ((error = bundle_open(&fd, dir, name, 0)) < 0) {
        if (error == MLREG_ENOTFOUND) return BAD("%s is missing", name);
        return error;
    }
    error = mlreg_file_read_fd(out, len_out, fd, name, max);
    close(fd);
    return error;
}

/* Parses a seq in file-name form: decimal, no sign, no leading zeros. */
static int parse_seq(uint64_t *out, const char *s, size_t len)
{
    uint64_t v = 0;

    if (len == 0 || len > 19 || (len > 1 && s[0] == '0')) return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the directory @p fd (which this takes and closes; @p name
 * for messages) into *out (each and the array free()), sorted. */
static int list_fd(char ***out, size_t *n_out, int fd, const char *name)
{
    DIR *d = NULL;
    struct dirent *de;
    char **names = NULL, **grown;
    size_t n = 0, cap = 0;
    int error = 0;

    *out = NULL;
    *n_out = 0;
    if (!(d = fdopendir(fd))) {
        close(fd);
        return mlreg_error_set(MLREG_EIO, "%s: %s", name, strerror(errno));
    }
    while ((de = readdir(d))) {
        /* Hidden names count too: nothing in a bundle goes unchecked. */
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if (!(grown = realloc(names, cap * sizeof(*names)))) goto nomem;
            names = grown;
        }
        if (!(names[n] = strdup(de->d_name))) goto nomem;
        n++;
    }
    if (n) qsort(names, n, sizeof(*names), cmp_str);
    *out = names;
    *n_out = n;
    names = NULL;
    n = 0;
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (d) closedir(d);
    return error;
}

/* The names in @p dir (relative name @p name) into *out (each and the
 * array free()), sorted; a missing directory is empty. */
static int list_dir(char ***out, size_t *n_out, const char *dir, const char *name)
{
    int error, fd;

    *out = NULL;
    *n_out = 0;
    if ((error = bundle_open(&fd, dir, name, 1)) < 0) {
        if (error != MLREG_ENOTFOUND) return error;
        mlreg_error_clear();
        return 0;
    }
    return list_fd(out, n_out, fd, name);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* What files/ holds, below the directory @p fd (taken and closed) at path
 * @p rel inside files/ ("" for files/ itself, @p depth segments deep):
 * into @p found every regular file's path ("tokenizer/vocab.json" -> true)
 * and every directory's ("tokenizer" -> false), in sorted order. Release
 * titles are relative paths, so files/ may hold directories; it may hold
 * nothing else. A symbolic link (even one pointing inside the bundle), a
 * FIFO or a device is a bad bundle, and so is a path deeper or longer than
 * any title can be (MLREG_TITLE_DEPTH_MAX segments, MLREG_TITLE_MAX
 * bytes), which also bounds the walk. Nothing is opened but directories,
 * each relative to its parent with O_NOFOLLOW; the files themselves are
 * read through bundle_open(). */
static int walk_files(json_t *found, int fd, const char *rel, unsigned depth)
{
    int error = 0, sub;
    char **names = NULL, path[MLREG_TITLE_MAX + 1], where[MLREG_TITLE_MAX + 16];
    size_t n = 0;
    struct stat st;

    snprintf(where, sizeof(where), MLREG_BUNDLE_FILES "%s%s", *rel ? "/" : "", rel);
    /* list_fd() closes what it lists; fd stays for fstatat and openat */
    if ((sub = dup(fd)) < 0) {
        error = mlreg_error_set(MLREG_EIO, "%s: %s", where, strerror(errno));
        goto done;
    }
    if ((error = list_fd(&names, &n, sub, where)) < 0) goto done;
    for (size_t i = 0; i < n; i++) {
        /* a name that is not text is no title (and no JSON object key) */
        if (mlreg_text_span(names[i], strlen(names[i])) != strlen(names[i])) {
            error = BAD("%s holds a name that is not text (invalid UTF-8 or a control "
                        "character), so no file of the release",
                        mlreg_text_printable(where));
            goto done;
        }
        if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", names[i]) >=
            sizeof(path)) {
            error = BAD("%s/%s: a path longer than any release file title",
                        mlreg_text_printable(where), mlreg_text_printable(names[i]));
            goto done;
        }
        if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            error = mlreg_error_set(MLREG_EIO, "files/%s: %s", mlreg_text_printable(path),
                                    strerror(errno));
            goto done;
        }
        if (S_ISREG(st.st_mode)) {
            if (json_object_set_new(found, path, json_true()) < 0) goto nomem;
            continue;
        }
        if (S_ISLNK(st.st_mode)) {
            error = BAD("files/%s: a symbolic link", mlreg_text_printable(path));
            goto done;
        }
        if (!S_ISDIR(st.st_mode)) {
            error = BAD("files/%s: not a regular file or a directory", mlreg_text_printable(path));
            goto done;
        }
        if (depth + 1 >= MLREG_TITLE_DEPTH_MAX) {
            error = BAD("files/%s: a directory deeper than any release file title",
                        mlreg_text_printable(path));
            goto done;
        }
        if (json_object_set_new(found, path, json_false()) < 0) goto nomem;
        if ((sub = openat(fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            if (errno == ELOOP || errno == ENOTDIR)
                error =
                    BAD("files/%s: a symbolic link or not a directory", mlreg_text_printable(path));
            else
                error = mlreg_error_set(MLREG_EIO, "files/%s: %s", mlreg_text_printable(path),
                                        strerror(errno));
            goto done;
        }
        if ((error = walk_files(found, sub, path, depth + 1)) < 0) goto done;
    }
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    free_names(names, n);
    close(fd);
    return error;
}

/* The files of the release manifest.json describes must be what files/
 * holds, byte for byte: SHA256SUMS alone proves nothing, as whoever edits a
 * file can edit SHA256SUMS too, while manifest.json is bound to the signed
 * log by the entries' subject.digest. @p listed maps every SHA256SUMS path
 * to its (checked) hex digest; @p found is what files/ holds (walk_files:
 * path -> true for a file, false for a directory). The titles are held to
 * the registry's rules, each (mlreg_title_validate) and as a set
 * (mlreg_titles_check), which the signed log does not vouch for: a bundle
 * is a directory anyone may have written. A directory in files/ must be
 * one a title needs ("tokenizer" for "tokenizer/vocab.json"), even when
 * the purge deleted every file in it. */
/* @p gone: the digests ("sha256:…" -> true) the bundle's release.purge
 * entry lists as deleted, or NULL; *ngone counts the files absent for it. */
static int check_layers(const char *dir, json_t *listed, json_t *found, const json_t *gone,
                        size_t *ngone)
{
    int error = 0;
    char *text = NULL, path[MLREG_TITLE_MAX + 16], msg[512];
    size_t len = 0, i, ntitles = 0;
    json_t *m = NULL, *layers, *layer, *titles = NULL, *dirs = NULL, *v;
    const char **all = NULL, *key;
    json_error_t jerr;
    mlreg_digest d;

    if ((error = bundle_read(&text, &len, dir, MLREG_BUNDLE_MANIFEST, MLREG_BUNDLE_MANIFEST_MAX)) <
        0)
        goto done;
    if (!(m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(m) ||
        !json_is_array(layers = json_object_get(m, "layers"))) {
        error = BAD("manifest.json is not a manifest with a layers array");
        goto done;
    }
    if (!(titles = json_object()) || !(dirs = json_object())) goto nomem;
    if (json_array_size(layers) && !(all = calloc(json_array_size(layers), sizeof(*all))))
        goto nomem;
    /* The titles first, each and as a set, so that a title breaking the
     * rule is named as such rather than as a file missing from SHA256SUMS. */
    json_array_foreach(layers, i, layer)
    {
        const char *title = json_string_value(
            json_object_get(json_object_get(layer, "annotations"), MLREG_ANN_TITLE));
        const char *slash;
        if (!title) {
            error = BAD("manifest.json: layer %zu has no title", i);
            goto done;
        }
        if (mlreg_title_validate(title) < 0) {
            mlreg_audit_verify__last_message(msg, sizeof(msg));
            error = BAD("manifest.json: layer %zu has an unsafe title: %s", i, msg);
            goto done;
        }
        if (json_object_get(titles, title)) {
            error = BAD("manifest.json: layer %zu repeats the title %s", i, title);
            goto done;
        }
        if (json_object_set_new(titles, title, json_true()) < 0) goto nomem;
        all[ntitles++] = title;
        for (slash = strchr(title, '/'); slash; slash = strchr(slash + 1, '/')) {
            memcpy(path, title, (size_t)(slash - title));
            path[slash - title] = '\0';
            if (json_object_set_new(dirs, path, json_true()) < 0) goto nomem;
        }
    }
    if ((error = mlreg_titles_check(all, ntitles)) < 0) {
        if (error != MLREG_EINVALID) goto done;
        mlreg_audit_verify__last_message(msg, sizeof(msg));
        error = BAD("manifest.json: %s", msg);
        goto done;
    }
    json_array_foreach(layers, i, layer)
    {
        const char *title = all[i];
        const char *digest = json_string_value(json_object_get(layer, "digest"));
        const char *hex;
        char want[MLREG_DIGEST_HEXLEN + 1];
        if (!digest || mlreg_digest_parse(&d, digest) < 0) {
            error = BAD("manifest.json: layer %zu (%s) has no valid digest", i, title);
            goto done;
        }
        mlreg_digest_hex(want, &d);
        snprintf(path, sizeof(path), MLREG_BUNDLE_FILES "/%s", title);
        if (!(hex = json_string_value(json_object_get(listed, path)))) {
            if (json_object_get(gone, digest) != NULL) { /* deleted by the purge */
                (*ngone)++;
                continue;
            }
            error = BAD("SHA256SUMS does not list %s, a file of the release", path);
            goto done;
        }
        if (strcmp(hex, want)) {
            error = BAD("%s does not match manifest.json (its SHA-256 is %s, the manifest says %s)",
                        path, hex, digest);
            goto done;
        }
    }
    json_object_foreach(found, key, v)
    {
        if (json_is_true(v) && !json_object_get(titles, key)) {
            error = BAD("files/%s is not a file of the release in manifest.json",
                        mlreg_text_printable(key));
            goto done;
        }
        if (!json_is_true(v) && !json_object_get(dirs, key)) {
            error = BAD("files/%s/ is not a directory of a file of the release in manifest.json",
                        mlreg_text_printable(key));
            goto done;
        }
    }
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    free(all);
    json_decref(dirs);
    json_decref(titles);
    json_decref(m);
    free(text);
    return error;
}

/* SHA256SUMS in sha256sum's format: every line "<64 hex>  <path>" (or
 * " *<path>", binary mode) must name a file of the bundle whose SHA-256
 * matches, by its path from the bundle's root ("files/tokenizer/vocab.json"
 * for a nested title, so `sha256sum -c SHA256SUMS` works there);
 * manifest.json and every file anywhere under files/ must be listed, and
 * files/ must hold exactly the release's files and their directories
 * (walk_files, check_layers). */
static int check_sums(size_t *count_out, const char *dir, const json_t *gone, size_t *ngone,
                      json_t *listed)
{
    int error = 0;
    char *text = NULL, *line, *end, path[PATH_MAX], got[MLREG_DIGEST_STRLEN + 1];
    size_t len = 0, lineno = 0;
    const char *key;
    json_t *found = NULL, *v;
    int fd = -1;

    *count_out = 0;
    if ((error = bundle_read(&text, &len, dir, MLREG_BUNDLE_SUMS, SUMS_MAX)) < 0) goto done;
    if (strlen(text) != len) {
        error = BAD("SHA256SUMS holds a NUL byte");
        goto done;
    }
    for (line = text; *line; line = end) {
        char *name, hex[MLREG_DIGEST_HEXLEN + 1];
        int bad_name = 0;
        lineno++;
        if (!(end = strchr(line, '\n'))) {
            error = BAD("SHA256SUMS line %zu: no newline at the end", lineno);
            goto done;
        }
        *end++ = '\0';
        if (strlen(line) < MLREG_DIGEST_HEXLEN + 3 || line[MLREG_DIGEST_HEXLEN] != ' ' ||
            (line[MLREG_DIGEST_HEXLEN + 1] != ' ' && line[MLREG_DIGEST_HEXLEN + 1] != '*')) {
            error = BAD("SHA256SUMS line %zu is not '<sha256 hex>  <path>'", lineno);
            goto done;
        }
        for (size_t i = 0; i < MLREG_DIGEST_HEXLEN; i++)
            hex[i] = (line[i] >= 'A' && line[i] <= 'F') ? (char)(line[i] - 'A' + 'a') : line[i];
        hex[MLREG_DIGEST_HEXLEN] = '\0';
        name = line + MLREG_DIGEST_HEXLEN + 2;
        /* Names stay inside the bundle. */
        if (name[0] == '/' || name[0] == '\\' || !strcmp(name, "..") || !strncmp(name, "../", 3) ||
            strstr(name, "/../") || (strlen(name) >= 3 && !strcmp(name + strlen(name) - 3, "/..")))
            bad_name = 1;
        if (mlreg_text_span(name, strlen(name)) != strlen(name)) bad_name = 1;
        if (bad_name) {
            error = BAD("SHA256SUMS line %zu: path outside the bundle", lineno);
            goto done;
        }
        if ((error = bundle_digest(got, dir, name)) < 0) {
            if (error == MLREG_ENOTFOUND) error = BAD("SHA256SUMS: %s is missing", name);
            goto done;
        }
        if (strcmp(got + 7, hex)) {
            error = BAD("SHA256SUMS: %s does not match (its SHA-256 is %s)", name, got + 7);
            goto done;
        }
        if (json_object_set_new(listed, name, json_string(hex)) < 0) goto nomem;
        (*count_out)++;
    }
    if (!json_object_get(listed, MLREG_BUNDLE_MANIFEST)) {
        error = BAD("SHA256SUMS does not list manifest.json");
        goto done;
    }
    if (!(found = json_object())) goto nomem;
    if ((error = bundle_open(&fd, dir, MLREG_BUNDLE_FILES, 1)) == MLREG_ENOTFOUND)
        mlreg_error_clear(); /* no files/: the release has none, or check_layers says which */
    else if (error < 0 || (error = walk_files(found, fd, "", 0)) < 0)
        goto done;
    error = 0;
    json_object_foreach(found, key, v)
    {
        if (!json_is_true(v)) continue;
        snprintf(path, sizeof(path), MLREG_BUNDLE_FILES "/%s", key);
        if (!json_object_get(listed, path)) {
            error = BAD("SHA256SUMS does not list %s", mlreg_text_printable(path));
            goto done;
        }
    }
    error = check_layers(dir, listed, found, gone, ngone);
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    json_decref(found);
    free(text);
    return error;
}

/* One audit/entries/<seq>.json with its proof: in the signed tree and about
 * this manifest. @p actions maps "<seq>" to the entry for the attestations. */
static int check_bundle_entry(json_t *actions, const char *dir, uint64_t seq,
                              const mlreg_bundle_report *rep)
{
    int error = 0;
    char name[MLREG_BUNDLE_ENTRY_PATH_MAX], pname[MLREG_BUNDLE_ENTRY_PATH_MAX], key[24],
        *text = NULL, *ptext = NULL;
    size_t len = 0, plen = 0, nproof;
    json_t *entry = NULL, *proof = NULL, *arr, *v;
    json_error_t jerr;
    const char *digest;
    mlreg_merkle_hash leaf, hashes[MLREG_MERKLE_PROOF_MAX];
    char msg[512];

    mlreg_bundle_entry_path(name, seq, 0);
    mlreg_bundle_entry_path(pname, seq, 1);
    if ((error = bundle_read(&text, &len, dir, name, MLREG_AUDIT_ENTRY_MAX)) < 0 ||
        (error = bundle_read(&ptext, &plen, dir, pname, MLREG_BUNDLE_PROOF_MAX)) < 0)
        goto done;
    if (!(entry = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(entry)) {
        error = BAD("%s is not a JSON object", name);
        goto done;
    }
    v = json_object_get(entry, "seq");
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) != seq) {
        error = BAD("%s: its seq is not %" PRIu64, name, seq);
        goto done;
    }
    digest = json_string_value(json_object_get(json_object_get(entry, "subject"), "digest"));
    if (!digest || strcmp(digest, rep->digest)) {
        error = BAD("%s: its subject.digest is %s, not the manifest's %s", name,
                    digest ? mlreg_text_printable(digest) : "missing", rep->digest);
        goto done;
    }
    if (!(proof = json_loadb(ptext, plen, 0, &jerr)) || !json_is_object(proof)) {
        error = BAD("%s is not a JSON object", pname);
        goto done;
    }
    v = json_object_get(proof, "seq");
    if (!json_is_integer(v) || (uint64_t)json_integer_value(v) != seq) {
        error = BAD("%s: its seq is not %" PRIu64, pname, seq);
        goto done;
    }
    v = json_object_get(proof, "size");
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) != rep->cp.size) {
        error = BAD("%s: the proof is not for the checkpoint's tree of %" PRIu64 " entries", pname,
                    rep->cp.size);
        goto done;
    }
    arr = json_object_get(proof, "proof");
    if (!json_is_array(arr) || (nproof = json_array_size(arr)) > MLREG_MERKLE_PROOF_MAX) {
        error = BAD("%s: no proof array", pname);
        goto done;
    }
    for (size_t i = 0; i < nproof; i++) {
        v = json_array_get(arr, i);
        if (!json_is_string(v) || mlreg_merkle_hash_from_base64(&hashes[i], json_string_value(v),
                                                                json_string_length(v)) < 0) {
            error = BAD("%s: proof hash %zu is not base64 of 32 bytes", pname, i);
            goto done;
        }
    }
    if ((error = mlreg_merkle_leaf_hash(&leaf, text, len)) < 0) goto done;
    if ((error = mlreg_merkle_verify_inclusion(seq, rep->cp.size, hashes, nproof, &leaf,
                                               &rep->cp.root)) < 0) {
        if (error != MLREG_EMISMATCH && error != MLREG_EINVALID) goto done;
        mlreg_audit_verify__last_message(msg, sizeof(msg));
        error = BAD("%s is not in the signed log: %s", name, msg);
        goto done;
    }
    snprintf(key, sizeof(key), "%" PRIu64, seq);
    if (json_object_set(actions, key, entry) < 0) error = mlreg_error_set(MLREG_ENOMEM, "oom");
done:
    json_decref(entry);
    json_decref(proof);
    free(text);
    free(ptext);
    return error;
}

static int check_bundle_entries(json_t *actions, size_t *count_out, const char *dir,
                                const mlreg_bundle_report *rep)
{
    int error = 0;
    char **names = NULL;
    size_t n = 0, nseq = 0, nproofs = 0;
    uint64_t *seqs = NULL, s;

    *count_out = 0;
    if ((error = list_dir(&names, &n, dir, MLREG_BUNDLE_ENTRIES)) < 0) goto done;
    if (n && !(seqs = calloc(n, sizeof(*seqs)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len > PROOF_SUFFIX_LEN &&
            !strcmp(names[i] + len - PROOF_SUFFIX_LEN, MLREG_BUNDLE_PROOF_SUFFIX) &&
            parse_seq(&s, names[i], len - PROOF_SUFFIX_LEN)) {
            nproofs++;
        } else if (len > ENTRY_SUFFIX_LEN &&
                   !strcmp(names[i] + len - ENTRY_SUFFIX_LEN, MLREG_BUNDLE_ENTRY_SUFFIX) &&
                   parse_seq(&s, names[i], len - ENTRY_SUFFIX_LEN)) {
            seqs[nseq++] = s;
        } else {
            error =
                BAD("audit/entries/%s: not an entry or a proof", mlreg_text_printable(names[i]));
            goto done;
        }
    }
    if (nseq) qsort(seqs, nseq, sizeof(*seqs), cmp_u64);
    for (size_t i = 0; i < nseq; i++)
        if ((error = check_bundle_entry(actions, dir, seqs[i], rep)) < 0) goto done;
    if (nproofs != nseq) {
        error = BAD("audit/entries holds a proof without its entry");
        goto done;
    }
    *count_out = nseq;
done:
    free(seqs);
    free_names(names, n);
    return error;
}

/* Opens the DSSE envelope @p text (@p len bytes, the bundle file @p name):
 * a valid signature by @p pk (@p signer, when not NULL, names the key in
 * the message), an in-toto payload, a JSON object whose predicateType is
 * @p predicate (@p what names it: "promotion"). *st_out is the statement
 * (the caller's). 0, MLREG_EMISMATCH with the reason, or another MLREG_E*. */
static int open_statement(json_t **st_out, const char *name, const char *text, size_t len,
                          const mlreg_pubkey *pk, const char *signer, const char *predicate,
                          const char *what)
{
    int error = 0;
    char *type = NULL, msg[512];
    unsigned char *payload = NULL;
    size_t plen = 0;
    json_t *st = NULL;
    const char *v;

    *st_out = NULL;
    if ((error = mlreg_dsse_verify(&type, &payload, &plen, text, len, pk)) < 0) {
        if (error != MLREG_EMISMATCH && error != MLREG_EINVALID) goto done;
        mlreg_audit_verify__last_message(msg, sizeof(msg));
        if (signer)
            error = BAD("%s: no valid signature by key %s: %s", name, signer, msg);
        else
            error = BAD("%s: %s", name, msg);
        goto done;
    }
    if (strcmp(type, MLREG_DSSE_INTOTO_TYPE)) {
        error = BAD("%s: payload type is %s, not %s", name, mlreg_text_printable(type),
                    MLREG_DSSE_INTOTO_TYPE);
        goto done;
    }
    if (!(st = json_loadb((const char *)payload, plen, 0, NULL)) || !json_is_object(st)) {
        error = BAD("%s: the statement is not a JSON object", name);
        goto done;
    }
    v = json_string_value(json_object_get(st, "predicateType"));
    if (!v || strcmp(v, predicate)) {
        error = BAD("%s: not an mlreg %s statement", name, what);
        goto done;
    }
    *st_out = st;
    st = NULL;
done:
    json_decref(st);
    free(type);
    free(payload);
    return error;
}

/* One attestations/<name>: signed by the log key, about this manifest, and
 * its audit entry (a promote or rollback) is in the bundle. */
static int check_attestation(const char *dir, const char *file, json_t *entries,
                             const mlreg_pubkey *pk, const mlreg_bundle_report *rep)
{
    int error = 0;
    char name[PATH_MAX], *text = NULL, key[24];
    size_t len = 0, i;
    json_t *st = NULL, *subjects, *sub, *pred, *audit, *seq, *entry;
    const char *v, *action, *stage;

    snprintf(name, sizeof(name), MLREG_BUNDLE_ATTESTATIONS "/%s", file);
    if ((error = bundle_read(&text, &len, dir, name, ENVELOPE_MAX)) < 0 ||
        (error = open_statement(&st, name, text, len, pk, NULL, "urn:mlreg:promotion:v1",
                                "promotion")) < 0)
        goto done;
    subjects = json_object_get(st, "subject");
    if (!json_is_array(subjects) || json_array_size(subjects) == 0) {
        error = BAD("%s: the statement has no subject", name);
        goto done;
    }
    json_array_foreach(subjects, i, sub)
    {
        v = json_string_value(json_object_get(json_object_get(sub, "digest"), "sha256"));
        if (!v || strcmp(v, rep->digest + 7)) {
            error = BAD("%s: its subject is not the manifest %s", name, rep->digest);
            goto done;
        }
    }
    pred = json_object_get(st, "predicate");
    audit = json_object_get(pred, "audit");
    seq = json_object_get(audit, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 0) {
        error = BAD("%s: the statement names no audit entry", name);
        goto done;
    }
    v = json_string_value(json_object_get(audit, "origin"));
    if (!v || strcmp(v, rep->origin)) {
        error = BAD("%s: its audit entry is in log %s, not %s", name, mlreg_text_printable(v),
                    rep->origin);
        goto done;
    }
    snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, json_integer_value(seq));
    if (!(entry = json_object_get(entries, key))) {
        error = BAD("%s: its audit entry %s is not in the bundle", name, key);
        goto done;
    }
    action = json_string_value(json_object_get(entry, "action"));
    if (!action || (strcmp(action, "promote") && strcmp(action, "rollback"))) {
        error = BAD("%s: audit entry %s is a %s, not a promote or rollback", name, key,
                    mlreg_text_printable(action));
        goto done;
    }
    v = json_string_value(json_object_get(pred, "action"));
    if (!v || strcmp(v, action)) {
        error = BAD("%s: the statement says %s, audit entry %s says %s", name,
                    mlreg_text_printable(v), key, action);
        goto done;
    }
    v = json_string_value(json_object_get(pred, "stage"));
    stage = json_string_value(json_object_get(json_object_get(entry, "subject"), "stage"));
    if (!v || !stage || strcmp(v, stage)) {
        error = BAD("%s: the statement names stage %s, audit entry %s stage %s", name,
                    mlreg_text_printable(v), key, mlreg_text_printable(stage));
        goto done;
    }
done:
    json_decref(st);
    free(text);
    return error;
}

/* One evaluations/<seq>.dsse.json (@p file): listed in SHA256SUMS
 * (@p listed), the envelope whose digest the bundle's evaluation.attest
 * entry <seq> names (so the signed log vouches for these bytes), signed by
 * the public key that entry names (details.public_key, the key id its
 * subject.key_id), an in-toto statement of an mlreg evaluation whose one
 * subject is manifest.json. The entry's key is whatever key the registry
 * took; whether it is an evaluator the auditor trusts is the entry's
 * details.role and key_name, reported, not judged here. */
static int check_evaluation(const char *dir, const char *file, json_t *entries, json_t *listed,
                            const mlreg_bundle_report *rep)
{
    int error = 0;
    char name[PATH_MAX], *text = NULL, msg[512], got[MLREG_DIGEST_STRLEN + 1],
                         idhex[MLREG_KEYID_HEXLEN + 1];
    size_t len = 0, flen = strlen(file);
    uint64_t seq;
    json_t *st = NULL, *entry, *subjects, *details;
    const char *v, *pk_b64, *envd, *kid;
    mlreg_pubkey pk;
    mlreg_digest d;

    snprintf(name, sizeof(name), MLREG_BUNDLE_EVALUATIONS "/%s", file);
    if (flen <= DSSE_SUFFIX_LEN ||
        strcmp(file + flen - DSSE_SUFFIX_LEN, MLREG_BUNDLE_DSSE_SUFFIX) ||
        !parse_seq(&seq, file, flen - DSSE_SUFFIX_LEN)) {
        error = BAD("%s: not an evaluation <seq>.dsse.json", mlreg_text_printable(name));
        goto done;
    }
    if (!json_object_get(listed, name)) {
        error = BAD("SHA256SUMS does not list %s", name);
        goto done;
    }
    snprintf(msg, sizeof(msg), "%" PRIu64, seq);
    entry = json_object_get(entries, msg);
    v = json_string_value(json_object_get(entry, "action"));
    if (!entry || !v || strcmp(v, MLREG_AUDIT_EVALUATION_ATTEST)) {
        error = BAD("%s: audit entry %" PRIu64 " in the bundle is not an %s entry", name, seq,
                    MLREG_AUDIT_EVALUATION_ATTEST);
        goto done;
    }
    details = json_object_get(entry, "details");
    pk_b64 = json_string_value(json_object_get(details, "public_key"));
    envd = json_string_value(json_object_get(details, "envelope"));
    kid = json_string_value(json_object_get(json_object_get(entry, "subject"), "key_id"));
    if (!pk_b64 || !envd || !kid || mlreg_pubkey_parse(&pk, pk_b64, strlen(pk_b64)) < 0) {
        mlreg_error_clear();
        error = BAD("audit entry %" PRIu64 " names no evaluation key and envelope", seq);
        goto done;
    }
    mlreg_keyid_format(idhex, &pk.id);
    if (strcmp(idhex, kid)) {
        error = BAD("audit entry %" PRIu64 ": its public key is %s, not the key id %s it names",
                    seq, idhex, mlreg_text_printable(kid));
        goto done;
    }
    if ((error = bundle_read(&text, &len, dir, name, ENVELOPE_MAX)) < 0) goto done;
    if ((error = mlreg_digest_buffer(&d, text, len)) < 0) goto done;
    mlreg_digest_format(got, &d);
    if (strcmp(got, envd)) {
        error = BAD("%s is not the envelope audit entry %" PRIu64 " names (%s): its digest is %s",
                    name, seq, mlreg_text_printable(envd), got);
        goto done;
    }
    if ((error = open_statement(&st, name, text, len, &pk, idhex, MLREG_EVALUATION_PREDICATE,
                                "evaluation")) < 0)
        goto done;
    subjects = json_object_get(st, "subject");
    v = json_string_value(
        json_object_get(json_object_get(json_array_get(subjects, 0), "digest"), "sha256"));
    if (json_array_size(subjects) != 1 || !v || strcmp(v, rep->digest + 7)) {
        error = BAD("%s: its subject is not the manifest %s", name, rep->digest);
        goto done;
    }
done:
    json_decref(st);
    free(text);
    return error;
}

/* evaluations/: every file a good evaluation (check_evaluation), and every
 * evaluation.attest entry of the bundle has its envelope there, so a bundle
 * cannot drop an evaluation its audit trail records. */
static int check_evaluations(size_t *count_out, const char *dir, json_t *entries, json_t *listed,
                             const mlreg_bundle_report *rep)
{
    int error = 0;
    char **names = NULL, want[64];
    size_t n = 0;
    const char *key;
    json_t *entry;

    *count_out = 0;
    if ((error = list_dir(&names, &n, dir, MLREG_BUNDLE_EVALUATIONS)) < 0) goto done;
    for (size_t i = 0; i < n; i++)
        if ((error = check_evaluation(dir, names[i], entries, listed, rep)) < 0) goto done;
    json_object_foreach(entries, key, entry)
    {
        const char *action = json_string_value(json_object_get(entry, "action"));
        int have = 0;
        if (!action || strcmp(action, MLREG_AUDIT_EVALUATION_ATTEST)) continue;
        snprintf(want, sizeof(want), "%s" MLREG_BUNDLE_DSSE_SUFFIX, key);
        for (size_t i = 0; i < n && !have; i++)
            have = !strcmp(names[i], want);
        if (!have) {
            error =
                BAD("audit entry %s records an evaluation whose envelope " MLREG_BUNDLE_EVALUATIONS
                    "/%s is not in the bundle",
                    key, want);
            goto done;
        }
    }
    *count_out = n;
done:
    free_names(names, n);
    return error;
}

/* Without the entry that records the push, nothing in the signed log ties
 * manifest.json to this bundle: an emptied audit/entries/ with a swapped
 * manifest and files would otherwise verify. */
static int require_push_entry(json_t *entries)
{
    const char *key;
    json_t *entry;

    json_object_foreach(entries, key, entry)
    {
        const char *action = json_string_value(json_object_get(entry, "action"));
        (void)key;
        if (action && !strcmp(action, "push")) return 0;
    }
    return BAD("audit/entries/ holds no entry recording the push of manifest.json, so nothing in "
               "the signed log vouches for it");
}

/* The withdrawn state the bundle's entries leave: the highest-seq
 * release.withdraw or release.unwithdraw entry decides (all of them were
 * checked against the checkpoint already). */
static void note_withdrawn(mlreg_bundle_report *rep, json_t *entries)
{
    const char *key, *t;
    json_t *entry, *last = NULL;
    uint64_t best = 0, seq;

    json_object_foreach(entries, key, entry)
    {
        const char *action = json_string_value(json_object_get(entry, "action"));
        if (!action || (strcmp(action, MLREG_AUDIT_RELEASE_WITHDRAW) &&
                        strcmp(action, MLREG_AUDIT_RELEASE_UNWITHDRAW)))
            continue;
        seq = (uint64_t)json_integer_value(json_object_get(entry, "seq"));
        if (last == NULL || seq > best) {
            last = entry;
            best = seq;
        }
    }
    if (last == NULL ||
        strcmp(json_string_value(json_object_get(last, "action")), MLREG_AUDIT_RELEASE_WITHDRAW))
        return;
    rep->withdrawn = 1;
    rep->withdrawn_seq = best;
    t = json_string_value(json_object_get(last, "actor"));
    mlreg_text_sanitize(rep->withdrawn_by, sizeof(rep->withdrawn_by), t ? t : "",
                        t ? strlen(t) : 0);
    t = json_string_value(json_object_get(last, "time"));
    mlreg_text_sanitize(rep->withdrawn_time, sizeof(rep->withdrawn_time), t ? t : "",
                        t ? strlen(t) : 0);
    t = json_string_value(json_object_get(last, "reason"));
    mlreg_text_sanitize(rep->withdrawn_reason, sizeof(rep->withdrawn_reason), t ? t : "",
                        t ? strlen(t) : 0);
}

/* The promote entries that moved a stage by an override (break-glass):
 * counted, the highest-seq one described. */
static void note_overrides(mlreg_bundle_report *rep, json_t *entries)
{
    const char *key, *t;
    json_t *entry;
    uint64_t seq;

    json_object_foreach(entries, key, entry)
    {
        const char *action = json_string_value(json_object_get(entry, "action"));
        if (!action || strcmp(action, MLREG_AUDIT_PROMOTE) ||
            !json_is_true(json_object_get(json_object_get(entry, "details"), "override")))
            continue;
        seq = (uint64_t)json_integer_value(json_object_get(entry, "seq"));
        if (rep->overrides++ > 0 && seq < rep->override_seq) continue;
        rep->override_seq = seq;
        t = json_string_value(json_object_get(json_object_get(entry, "subject"), "stage"));
        mlreg_text_sanitize(rep->override_stage, sizeof(rep->override_stage), t ? t : "",
                            t ? strlen(t) : 0);
        t = json_string_value(json_object_get(entry, "actor"));
        mlreg_text_sanitize(rep->override_by, sizeof(rep->override_by), t ? t : "",
                            t ? strlen(t) : 0);
        t = json_string_value(json_object_get(entry, "reason"));
        mlreg_text_sanitize(rep->override_reason, sizeof(rep->override_reason), t ? t : "",
                            t ? strlen(t) : 0);
    }
}

/* The release.purge entry among the bundle's (checked against the
 * checkpoint already): rep->purged and the rest, and into @p gone the
 * digests it lists as deleted. 0 or MLREG_ENOMEM. */
static int note_purged(mlreg_bundle_report *rep, json_t *entries, json_t *gone)
{
    const char *key, *t;
    json_t *entry, *b;
    size_t i;

    json_object_foreach(entries, key, entry)
    {
        const char *action = json_string_value(json_object_get(entry, "action"));
        if (!action || strcmp(action, MLREG_AUDIT_RELEASE_PURGE)) continue;
        rep->purged = 1;
        rep->purged_seq = (uint64_t)json_integer_value(json_object_get(entry, "seq"));
        t = json_string_value(json_object_get(entry, "actor"));
        mlreg_text_sanitize(rep->purged_by, sizeof(rep->purged_by), t ? t : "", t ? strlen(t) : 0);
        t = json_string_value(json_object_get(entry, "time"));
        mlreg_text_sanitize(rep->purged_time, sizeof(rep->purged_time), t ? t : "",
                            t ? strlen(t) : 0);
        t = json_string_value(json_object_get(entry, "reason"));
        mlreg_text_sanitize(rep->purged_reason, sizeof(rep->purged_reason), t ? t : "",
                            t ? strlen(t) : 0);
        json_array_foreach(json_object_get(json_object_get(entry, "details"), "blobs"), i, b)
        {
            const char *d = json_string_value(json_object_get(b, "digest"));
            if (d != NULL && json_object_set_new(gone, d, json_true()) < 0)
                return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        }
    }
    return 0;
}

int mlreg_audit_verify_bundle(mlreg_bundle_report *rep, const char *dir, const mlreg_pubkey *pk)
{
    int error = 0;
    char *cp_text = NULL, msg[512];
    size_t cp_len = 0, n = 0;
    char **names = NULL;
    json_t *entries = NULL, *gone = NULL, *listed = NULL;
    struct stat st;

    memset(rep, 0, sizeof(*rep));
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "%s is not a directory", dir);
    if ((error = bundle_read(&cp_text, &cp_len, dir, MLREG_BUNDLE_CHECKPOINT,
                             MLREG_BUNDLE_CHECKPOINT_MAX)) < 0)
        goto done;
    if ((error = mlreg_audit_verify_checkpoint(&rep->cp, rep->origin, cp_text, cp_len, pk)) < 0) {
        mlreg_audit_verify__last_message(msg, sizeof(msg));
        error = BAD("audit/checkpoint: %s", msg);
        goto done;
    }
    if ((error = bundle_digest(rep->digest, dir, MLREG_BUNDLE_MANIFEST)) < 0) {
        if (error == MLREG_ENOTFOUND) error = BAD("manifest.json is missing");
        goto done;
    }
    if (!(entries = json_object()) || !(gone = json_object()) || !(listed = json_object())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = check_bundle_entries(entries, &rep->entries, dir, rep)) < 0) goto done;
    if ((error = require_push_entry(entries)) < 0) goto done;
    note_withdrawn(rep, entries);
    note_overrides(rep, entries);
    if ((error = note_purged(rep, entries, gone)) < 0 ||
        (error = check_sums(&rep->sums, dir, gone, &rep->purged_files, listed)) < 0 ||
        (error = check_evaluations(&rep->evaluations, dir, entries, listed, rep)) < 0)
        goto done;
    if ((error = list_dir(&names, &n, dir, MLREG_BUNDLE_ATTESTATIONS)) < 0) goto done;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len <= DSSE_SUFFIX_LEN ||
            strcmp(names[i] + len - DSSE_SUFFIX_LEN, MLREG_BUNDLE_DSSE_SUFFIX)) {
            error =
                BAD("attestations/%s: not a .dsse.json statement", mlreg_text_printable(names[i]));
            goto done;
        }
        if ((error = check_attestation(dir, names[i], entries, pk, rep)) < 0) goto done;
        rep->attestations++;
    }
done:
    free_names(names, n);
    json_decref(entries);
    json_decref(gone);
    json_decref(listed);
    free(cp_text);
    return error;
}
