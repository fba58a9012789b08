/* backup.c: an online backup of an fs-backend registry (backup.h).
 *
 * Order matters. The index is copied first (mlreg_meta_copy: one committed
 * state, taken while the server writes on), and only then the blobs that
 * state needs: a blob a later push adds is not needed by the copy, and a
 * blob the copy needs was stored before the copy was taken. The only way
 * one can be gone is a change after the copy that deleted it (a purge, or a
 * collection of a blob the copy still links). Then the index is copied
 * again: the newer state no longer needs it.
 *
 * What the copy needs: every blob a repository links (repo_blobs: what HEAD
 * and GET answer for, uploads not yet in a manifest included) and every
 * blob a manifest references (blob_refs). Both tables are read from the
 * copy, never from the live index.
 *
 * Traps:
 *   - The source is opened with mlreg_tables_open(), which creates what is
 *     missing: a path that holds no meta/data.mdb is refused before, so a
 *     typo never makes an empty registry.
 *   - Blob files are opened O_NOFOLLOW and must be regular files: a data
 *     directory is private, but a symlink there must not make the backup
 *     copy some other file.
 *   - Every blob is re-hashed as it is copied (or before it is linked): a
 *     backup must not carry a damaged blob forward as a good one.
 *   - The log key is a secret: read into memory, written 0600, wiped.
 */
#include "mlreg/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/file.h"
#include "mlreg/meta.h"
#include "mlreg/tables.h"
#include "mlreg/time.h"
#include "mlreg/version.h"
#include "registry_internal.h"

#define DEFAULT_ATTEMPTS 3
#define COPY_CHUNK       (256u * 1024)
/* The files under audit/ are keys: small. */
#define AUDIT_FILE_MAX (64u * 1024)

/* The blobs one copy of the index needs, sorted and without repeats once
 * need_finish() ran. An optional one is a manifest's own bytes: the store
 * holds them when the manifest came as a blob too (mlreg push), not when it
 * came through the OCI API, whose manifests live in the index alone. */
typedef struct {
    char hex[MLREG_DIGEST_HEXLEN + 1];
    unsigned char optional;
} need_entry;

typedef struct {
    need_entry *e;
    size_t n, cap;
} need_set;

typedef struct {
    const char *data_dir;
    const char *dest;
    int link;
    unsigned char *buf; /* COPY_CHUNK bytes */
    uint64_t blobs, bytes, linked;
    json_t *missing, *damaged;
} backup_state;

static int need_add(need_set *s, const char *hex, int optional)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        void *p = realloc(s->e, cap * sizeof(*s->e));
        if (p == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing blobs");
        s->e = p;
        s->cap = cap;
    }
    memcpy(s->e[s->n].hex, hex, MLREG_DIGEST_HEXLEN);
    s->e[s->n].hex[MLREG_DIGEST_HEXLEN] = '\0';
    s->e[s->n].optional = optional != 0;
    s->n++;
    return 0;
}

/* by digest, a required entry before an optional one of the same digest */
static int need_cmp(const void *a, const void *b)
{
    const need_entry *x = a, *y = b;
    int c = memcmp(x->hex, y->hex, MLREG_DIGEST_HEXLEN);

    return c ? c : (int)x->optional - (int)y->optional;
}

static void need_finish(need_set *s)
{
    size_t w = 0;

    if (s->n == 0) return;
    qsort(s->e, s->n, sizeof(*s->e), need_cmp);
    for (size_t r = 1; r < s->n; r++)
        if (memcmp(s->e[r].hex, s->e[w].hex, MLREG_DIGEST_HEXLEN) != 0) s->e[++w] = s->e[r];
    s->n = w + 1;
}

static int link_cb(const char *bhex, int64_t linked_ns, void *payload)
{
    (void)linked_ns;
    return need_add(payload, bhex, 0);
}

static int is_hex64(const char *s)
{
    for (size_t i = 0; i < MLREG_DIGEST_HEXLEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

typedef struct {
    need_set *s;
    mlreg_meta_txn *txn;
} refs_walk;

/* blob_refs keys are blob hex NUL repo NUL manifest hex (manifests.c). A
 * row whose blob is a manifest (the manifest's own row, or a child of an
 * index) asks for a file the store may not hold. */
static int ref_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    refs_walk *w = payload;
    const char *k = key, *repo = k + MLREG_DIGEST_HEXLEN + 1;
    char bhex[MLREG_DIGEST_HEXLEN + 1], mkey[REGISTRY_KEY_CAP];
    size_t rlen;
    int manifest;

    (void)val;
    (void)vlen;
    if (klen < 2 * MLREG_DIGEST_HEXLEN + 3 || !is_hex64(k) || k[MLREG_DIGEST_HEXLEN] != '\0')
        return 0;
    rlen = klen - 2 * MLREG_DIGEST_HEXLEN - 2;
    if (repo[rlen] != '\0' || memchr(repo, '\0', rlen) != NULL) return 0;
    memcpy(bhex, k, MLREG_DIGEST_HEXLEN);
    bhex[MLREG_DIGEST_HEXLEN] = '\0';
    manifest = !memcmp(k, repo + rlen + 1, MLREG_DIGEST_HEXLEN);
    if (!manifest) {
        size_t mlen = mlreg_registry__key(mkey, repo, bhex, NULL);
        if ((manifest = mlreg_registry__meta_has(w->txn, MLREG_DB_MANIFESTS, mkey, mlen)) < 0)
            return manifest;
    }
    return need_add(w->s, bhex, manifest);
}

/* Reads what the index copy in @p meta_dir needs into @p s, and its log
 * size into *entries_out. */
static int read_needs(need_set *s, uint64_t *entries_out, const char *meta_dir)
{
    mlreg_meta *meta = NULL;
    mlreg_meta_txn *txn = NULL;
    refs_walk walk;
    int error;

    s->n = 0;
    if ((error = mlreg_tables_open(&meta, meta_dir, 0)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, meta, 0)) < 0) goto done;
    if ((error = mlreg_audit_size_txn(entries_out, txn)) < 0) goto done;
    if ((error = mlreg_registry__blob_links_foreach(txn, link_cb, s)) < 0) goto done;
    walk.s = s;
    walk.txn = txn;
    if ((error = mlreg_meta_iter(txn, MLREG_DB_BLOB_REFS, NULL, 0, NULL, 0, ref_cb, &walk)) < 0)
        goto done;
    need_finish(s);
    error = 0;

done:
    mlreg_meta_txn_abort(txn);
    mlreg_meta_close(meta);
    return error;
}

/* out = @p a "/" @p b */
static int path_join(char out[PATH_MAX], const char *a, const char *b)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", a, b);

    if (n < 0 || n >= PATH_MAX) return mlreg_error_set(MLREG_EINVALID, "path too long: %s", a);
    return 0;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST) return 0;
    return mlreg_error_set(errno == ENOSPC ? MLREG_ENOSPACE : MLREG_EIO, "create directory %s: %s",
                           path, strerror(errno));
}

/* Hashes what remains of @p fd and, when @p out is not NULL, writes it
 * there. *size_out the bytes read. */
static int hash_copy(mlreg_digest *digest_out, uint64_t *size_out, backup_state *b, int fd,
                     mlreg_file *out, const char *src)
{
    mlreg_hasher *h = NULL;
    uint64_t size = 0;
    ssize_t n;
    int error;

    if ((error = mlreg_hasher_new(&h)) < 0) return error;
    for (;;) {
        n = read(fd, b->buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = mlreg_error_set(MLREG_EIO, "read %s: %s", src, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        if ((error = mlreg_hasher_update(h, b->buf, (size_t)n)) < 0) goto done;
        if (out != NULL && (error = mlreg_file_write(out, b->buf, (size_t)n)) < 0) goto done;
        size += (uint64_t)n;
    }
    error = mlreg_hasher_final(digest_out, h);
    *size_out = size;

done:
    mlreg_hasher_free(h);
    return error;
}

/* Copies (or links) blob @p hex into the backup. 0 copied or already
 * there; 1 missing from the store; 2 damaged; or an error. */
static int copy_blob(backup_state *b, const char *hex)
{
    char tmp[PATH_MAX], dir[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];
    char sub[3] = {hex[0], hex[1], '\0'};
    mlreg_file *out = NULL;
    mlreg_digest want, got;
    uint64_t size = 0;
    struct stat st;
    int fd = -1, error;

    if ((error = path_join(tmp, b->dest, "blobs/sha256")) < 0 ||
        (error = path_join(dir, tmp, sub)) < 0 || (error = make_dir(dir)) < 0 ||
        (error = path_join(dst, dir, hex)) < 0)
        return error;
    if (lstat(dst, &st) == 0) return 0; /* an earlier attempt copied it */
    if ((error = path_join(tmp, b->data_dir, "blobs/sha256")) < 0 ||
        (error = path_join(dir, tmp, sub)) < 0 || (error = path_join(src, dir, hex)) < 0)
        return error;
    if ((error = mlreg_digest_parse_hex(&want, hex, MLREG_DIGEST_HEXLEN)) < 0) return error;

    if ((fd = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        if (errno == ENOENT) return 1;
        return mlreg_error_set(MLREG_EIO, "open %s: %s", src, strerror(errno));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        error = mlreg_error_set(MLREG_EIO, "%s is not a regular file", src);
        goto done;
    }
    if (!b->link && (error = mlreg_file_open(&out, dst, 0600, MLREG_FILE_NOREPLACE)) < 0) goto done;
    if ((error = hash_copy(&got, &size, b, fd, out, src)) < 0) goto done;
    if (!mlreg_digest_equal(&want, &got)) {
        error = 2;
        goto done;
    }
    if (b->link) {
        if (link(src, dst) < 0) {
            error = mlreg_error_set(errno == EXDEV ? MLREG_EINVALID : MLREG_EIO,
                                    "link %s to %s: %s%s", src, dst, strerror(errno),
                                    errno == EXDEV ? " (--link needs the backup on the data "
                                                     "directory's filesystem)"
                                                   : "");
            goto done;
        }
        b->linked++;
    } else {
        error = mlreg_file_commit(out);
        out = NULL;
        if (error < 0) goto done;
    }
    b->blobs++;
    b->bytes += size;
    error = 0;

done:
    mlreg_file_abort(out);
    if (fd >= 0) close(fd);
    return error;
}

/* Copies the regular files of the data directory's audit/ (the log key)
 * into the backup's, mode 0600. A data directory without one is fine. */
static int copy_audit_dir(const backup_state *b)
{
    char src[PATH_MAX], dst[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
    DIR *d = NULL;
    struct dirent *de;
    char *data = NULL;
    size_t len = 0;
    mlreg_file *out = NULL;
    int error;

    if ((error = path_join(src, b->data_dir, "audit")) < 0) return error;
    if ((error = path_join(dst, b->dest, "audit")) < 0) return error;
    if ((d = opendir(src)) == NULL) {
        if (errno == ENOENT) return 0;
        return mlreg_error_set(MLREG_EIO, "open directory %s: %s", src, strerror(errno));
    }
    if ((error = make_dir(dst)) < 0) goto done;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.') continue;
        if ((error = path_join(from, src, de->d_name)) < 0) goto done;
        if (lstat(from, &st) < 0 || !S_ISREG(st.st_mode)) continue;
        if ((error = path_join(to, dst, de->d_name)) < 0) goto done;
        if ((error = mlreg_file_read(&data, &len, from, AUDIT_FILE_MAX)) < 0) goto done;
        if ((error = mlreg_file_open(&out, to, 0600, MLREG_FILE_REPLACE)) < 0 ||
            (error = mlreg_file_write(out, data, len)) < 0)
            goto done;
        error = mlreg_file_commit(out);
        out = NULL;
        sodium_memzero(data, len);
        free(data);
        data = NULL;
        if (error < 0) goto done;
    }
    error = 0;

done:
    mlreg_file_abort(out);
    if (data != NULL) {
        sodium_memzero(data, len);
        free(data);
    }
    closedir(d);
    return error;
}

/* @p dest must not exist or be an empty directory, and must not lie inside
 * @p data_dir (the backup would copy itself into the next one). */
static int check_paths(const char *data_dir, const char *dest)
{
    char data_real[PATH_MAX], parent[PATH_MAX], parent_real[PATH_MAX], mdb[PATH_MAX];
    struct stat st;
    size_t dl;
    char *slash;
    int error;

    if ((error = path_join(mdb, data_dir, "meta/data.mdb")) < 0) return error;
    if (stat(mdb, &st) < 0 || !S_ISREG(st.st_mode))
        return mlreg_error_set(MLREG_EINVALID, "%s is not an mlreg data directory (no %s)",
                               data_dir, "meta/data.mdb");
    if (realpath(data_dir, data_real) == NULL)
        return mlreg_error_set(MLREG_EIO, "%s: %s", data_dir, strerror(errno));
    if (lstat(dest, &st) == 0) {
        DIR *d;
        struct dirent *de;
        int empty = 1;
        if (!S_ISDIR(st.st_mode))
            return mlreg_error_set(MLREG_EINVALID, "%s exists and is not a directory", dest);
        if ((d = opendir(dest)) == NULL)
            return mlreg_error_set(MLREG_EIO, "open directory %s: %s", dest, strerror(errno));
        while (empty && (de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) empty = 0;
        closedir(d);
        if (!empty)
            return mlreg_error_set(MLREG_EINVALID,
                                   "%s is not empty: a backup goes into a new directory", dest);
        if (realpath(dest, parent_real) == NULL)
            return mlreg_error_set(MLREG_EIO, "%s: %s", dest, strerror(errno));
    } else {
        if (errno != ENOENT) return mlreg_error_set(MLREG_EIO, "%s: %s", dest, strerror(errno));
        if (strlen(dest) >= sizeof(parent))
            return mlreg_error_set(MLREG_EINVALID, "path too long: %s", dest);
        strcpy(parent, dest);
        slash = strrchr(parent, '/');
        if (slash == NULL)
            strcpy(parent, ".");
        else if (slash == parent)
            parent[1] = '\0';
        else
            *slash = '\0';
        if (realpath(parent, parent_real) == NULL)
            return mlreg_error_set(MLREG_EINVALID, "cannot make %s: %s: %s", dest, parent,
                                   strerror(errno));
    }
    dl = strlen(data_real);
    if (!strncmp(parent_real, data_real, dl) && (parent_real[dl] == '\0' || parent_real[dl] == '/'))
        return mlreg_error_set(MLREG_EINVALID, "%s lies inside the data directory %s", dest,
                               data_dir);
    return 0;
}

static int write_report(const char *dest, const json_t *report)
{
    char path[PATH_MAX];
    mlreg_file *out = NULL;
    char *text = NULL;
    int error;

    if ((error = path_join(path, dest, "backup.json")) < 0) return error;
    if ((text = json_dumps(report, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory writing the backup report");
    if ((error = mlreg_file_open(&out, path, 0600, MLREG_FILE_NOREPLACE)) == 0 &&
        (error = mlreg_file_write(out, text, strlen(text))) == 0 &&
        (error = mlreg_file_write(out, "\n", 1)) == 0) {
        error = mlreg_file_commit(out);
        out = NULL;
    }
    mlreg_file_abort(out);
    free(text);
    return error;
}

int mlreg_backup(json_t **report_out, const char *data_dir, const char *dest,
                 const mlreg_backup_opts *opts)
{
    backup_state b = {data_dir, dest, opts != NULL && opts->link, NULL, 0, 0, 0, NULL, NULL};
    unsigned int attempts = opts != NULL && opts->attempts ? opts->attempts : DEFAULT_ATTEMPTS;
    unsigned int attempt = 0;
    char src_meta[PATH_MAX], dst_meta[PATH_MAX], path[PATH_MAX], when[MLREG_TIME_STRLEN];
    need_set need = {NULL, 0, 0};
    mlreg_meta *src = NULL;
    json_t *report = NULL;
    uint64_t entries = 0;
    int error;

    *report_out = NULL;
    if ((error = check_paths(data_dir, dest)) < 0) return error;
    if ((b.buf = malloc(COPY_CHUNK)) == NULL || (b.missing = json_array()) == NULL ||
        (b.damaged = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory starting a backup");
        goto done;
    }
    if ((error = path_join(src_meta, data_dir, "meta")) < 0 ||
        (error = path_join(dst_meta, dest, "meta")) < 0 || (error = make_dir(dest)) < 0 ||
        (error = make_dir(dst_meta)) < 0 || (error = path_join(path, dest, "blobs")) < 0 ||
        (error = make_dir(path)) < 0 || (error = path_join(path, dest, "blobs/sha256")) < 0 ||
        (error = make_dir(path)) < 0)
        goto done;

    while (attempt < attempts) {
        attempt++;
        json_array_clear(b.missing);
        json_array_clear(b.damaged);
        /* a new copy of the index replaces the last one */
        if ((error = path_join(path, dst_meta, "data.mdb")) < 0) goto done;
        if (unlink(path) < 0 && errno != ENOENT) {
            error = mlreg_error_set(MLREG_EIO, "remove %s: %s", path, strerror(errno));
            goto done;
        }
        if ((error = path_join(path, dst_meta, "lock.mdb")) < 0) goto done;
        if (unlink(path) < 0 && errno != ENOENT) {
            error = mlreg_error_set(MLREG_EIO, "remove %s: %s", path, strerror(errno));
            goto done;
        }
        if ((error = mlreg_tables_open(&src, src_meta, 0)) < 0) goto done;
        error = mlreg_meta_copy(src, dst_meta);
        mlreg_meta_close(src);
        src = NULL;
        if (error < 0) goto done;
        if ((error = read_needs(&need, &entries, dst_meta)) < 0) goto done;
        for (size_t i = 0; i < need.n; i++) {
            int r = copy_blob(&b, need.e[i].hex);
            if (r < 0) {
                error = r;
                goto done;
            }
            if (r == 1 && need.e[i].optional) continue;
            if (r > 0 && json_array_append_new(r == 1 ? b.missing : b.damaged,
                                               json_string(need.e[i].hex)) < 0) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing blobs");
                goto done;
            }
        }
        /* only a blob gone since the copy is worth another; a damaged one stays damaged */
        if (json_array_size(b.missing) == 0) break;
    }
    if ((error = copy_audit_dir(&b)) < 0) goto done;

    mlreg_time_format(when, mlreg_time_now_ns());
    report = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:O, s:O}", "format", 1,
                       "source", data_dir, "time", when, "mlreg_version", mlreg_version(),
                       "log_entries", (json_int_t)entries, "blobs", (json_int_t)b.blobs, "bytes",
                       (json_int_t)b.bytes, "linked", (json_int_t)b.linked, "attempts",
                       (int)attempt, "missing", b.missing, "damaged", b.damaged);
    if (report == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory writing the backup report");
        goto done;
    }
    if ((error = write_report(dest, report)) < 0) goto done;
    *report_out = report;
    report = NULL;

done:
    mlreg_meta_close(src);
    json_decref(report);
    json_decref(b.missing);
    json_decref(b.damaged);
    free(need.e);
    free(b.buf);
    return error;
}
