/* blob_fs.c: the local filesystem blob backend.
 *
 * Layout: root/blobs/sha256/<2 hex>/<64 hex>, temp files in root/blobs/tmp/,
 * blobs a scrub found damaged in root/blobs/quarantine/<64 hex>.<unix time>
 * (same filesystem, so rename is atomic); directories 0700, blobs 0600, so
 * no other local user reads a model. A write goes to a fresh temp file;
 * commit fsyncs it, renames it under its digest and fsyncs the directory, so a
 * crash leaves either nothing or the whole blob under its final name, plus at
 * worst a stale temp file that the next construction removes. The writer
 * takes large writes from the front end's pipeline (write_block, blob.c),
 * starts their writeback at once and fallocates an announced length, so
 * the fsync at commit finds little left to do.
 *
 * Every operation works relative to three directory descriptors opened once at
 * construction (blobs/sha256, blobs/tmp and blobs/quarantine): paths stay short and fixed-size,
 * and the backend has no mutable shared state, so it is thread-safe.
 */
#include "mlreg/sys/blob_backend.h"
#include "mlreg/common.h"
#include "mlreg/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* "ab/" + 64 hex + NUL */
#define REL_PATH_LEN (3 + MLREG_DIGEST_HEXLEN + 1)
/* 32 random hex + ".tmp" + NUL */
#define TMP_NAME_LEN (32 + 4 + 1)

typedef struct {
    mlreg_blob_backend parent;
    char *root;     /* as given, for messages */
    int objects_fd; /* root/blobs/sha256 */
    int tmp_fd;     /* root/blobs/tmp */
    int quar_fd;    /* root/blobs/quarantine */
} fs_backend;

/* The front end's pipeline hands over writes of whole pages from
 * page-aligned buffers (write_block): a page is never half written, so the
 * page cache never reads one back to merge it. */
#define FS_BLOCK 4096u
/* A write at least this large starts its writeback at once, so the data is
 * mostly on disk by the time commit fsyncs, instead of all of it being
 * written then (1 GiB stays well under the kernel's dirty threshold). */
#define FS_EARLY_WRITEBACK (1u << 20)

typedef struct {
    mlreg_blob_backend_writer parent;
    fs_backend *backend;
    int fd;
    uint64_t offset;   /* bytes written: where the next write goes */
    uint64_t reserved; /* bytes fallocated, 0 when nothing was */
    char tmp_name[TMP_NAME_LEN];
} fs_writer;

typedef struct {
    mlreg_blob_backend_reader parent;
    int fd;
} fs_reader;

/* A full disk is a different problem for the operator than a broken one, so
 * ENOSPC and EDQUOT get their own code and say so plainly. The path in the
 * message is root/blobs/<sub><name>. */
static int errno_error(int err, const fs_backend *b, const char *action, const char *sub,
                       const char *name)
{
    if (err == ENOSPC || err == EDQUOT)
        return mlreg_error_set(MLREG_ENOSPACE, "no space left for blobs: %s %s/blobs/%s%s: %s",
                               action, b->root, sub, name, strerror(err));
    if (err == ENOMEM)
        return mlreg_error_set(MLREG_ENOMEM, "%s %s/blobs/%s%s: %s", action, b->root, sub, name,
                               strerror(err));
    return mlreg_error_set(MLREG_EIO, "%s %s/blobs/%s%s: %s", action, b->root, sub, name,
                           strerror(err));
}

/* malloc'd "a/b", or NULL when out of memory. */
static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + 1 + lb + 1);

    if (p == NULL) return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static void rel_path(char out[REL_PATH_LEN], const mlreg_digest *d)
{
    char hex[MLREG_DIGEST_HEXLEN + 1];

    mlreg_digest_hex(hex, d);
    out[0] = hex[0];
    out[1] = hex[1];
    out[2] = '/';
    memcpy(out + 3, hex, MLREG_DIGEST_HEXLEN + 1);
}

static int is_lower_hex(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static int open_dir(int *out, const char *root, const char *sub)
{
    int fd;
    char *path = path_join(root, sub);

    if (path == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int error = mlreg_error_set(MLREG_EIO, "open directory %s: %s", path, strerror(errno));
        free(path);
        return error;
    }
    free(path);
    *out = fd;
    return 0;
}

/* fsync on a directory makes the entries created in it (rename, mkdir)
 * durable; without it a crash can lose a blob that was reported committed. */
static int fsync_objects_dir(fs_backend *b, const char *name)
{
    int error = 0;
    int fd = openat(b->objects_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0) return errno_error(errno, b, "open directory", "sha256/", name);
    if (fsync(fd) < 0) error = errno_error(errno, b, "fsync directory", "sha256/", name);
    close(fd);
    return error;
}

/* A crash between creating a temp file and renaming it leaves the temp file
 * behind; nothing else ever refers to it, so every file in tmp/ is stale at
 * construction. The trap: two live processes sharing one root would delete
 * each other's in-progress uploads, so one root belongs to one server. */
static int remove_stale_temps(fs_backend *b)
{
    int error = 0;
    DIR *dir = NULL;
    struct dirent *ent;
    int fd;

    if ((fd = openat(b->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return errno_error(errno, b, "open directory", "tmp", "");
    if ((dir = fdopendir(fd)) == NULL) {
        error = errno_error(errno, b, "open directory", "tmp", "");
        close(fd);
        goto done;
    }
    for (;;) {
        errno = 0;
        if ((ent = readdir(dir)) == NULL) {
            if (errno != 0) error = errno_error(errno, b, "read directory", "tmp", "");
            break;
        }
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
        if (unlinkat(b->tmp_fd, ent->d_name, 0) < 0 && errno != ENOENT) {
            /* We never create directories there; leave one alone rather than
             * refuse to start. */
            if (errno == EISDIR || errno == EPERM) continue;
            error = errno_error(errno, b, "remove stale temp file", "tmp/", ent->d_name);
            goto done;
        }
    }

done:
    if (dir != NULL) closedir(dir);
    return error;
}

/* ---- writer ---- */

/* Written with pwrite at the writer's own offset. Direct I/O was tried
 * and measured worse: it saves the copy into the page cache, but a blob
 * just pushed is then read from the disk by the next GET (a pull right
 * after a push), at a third of the speed of sendfile from the cache. */
static int fs_writer__write(mlreg_blob_backend_writer *bw, const void *data, size_t len)
{
    fs_writer *w = (fs_writer *)bw;
    const unsigned char *p = data;
    uint64_t start = w->offset;

    while (len > 0) {
        ssize_t n = pwrite(w->fd, p, len, (off_t)w->offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error(errno, w->backend, "write temp file", "tmp/", w->tmp_name);
        }
        if (n == 0) /* never for a regular file; guards against spinning */
            return errno_error(EIO, w->backend, "write temp file", "tmp/", w->tmp_name);
        p += n;
        len -= (size_t)n;
        w->offset += (uint64_t)n;
    }
    /* asynchronous: only starts the writeback; errors show at fsync */
    if (w->offset - start >= FS_EARLY_WRITEBACK)
        sync_file_range(w->fd, (off_t)start, (off_t)(w->offset - start), SYNC_FILE_RANGE_WRITE);
    return 0;
}

/* fallocate: a full disk shows now rather than after the bytes were sent,
 * and the file's blocks are allocated in one go. The room past what was
 * written is given back at commit (the upload may end shorter). Small
 * blobs (manifests, configs) skip it: one more syscall and journal entry
 * for nothing. */
static int fs_writer__reserve(mlreg_blob_backend_writer *bw, uint64_t total)
{
    fs_writer *w = (fs_writer *)bw;

    if (total < FS_EARLY_WRITEBACK || total <= w->reserved || total <= w->offset) return 0;
    if (fallocate(w->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)total) < 0) {
        if (errno == ENOSPC || errno == EDQUOT)
            return errno_error(errno, w->backend, "reserve temp file", "tmp/", w->tmp_name);
        return 0; /* not supported here: nothing reserved, nothing lost */
    }
    w->reserved = total;
    return 0;
}

static void fs_writer__abort(mlreg_blob_backend_writer *bw)
{
    fs_writer *w = (fs_writer *)bw;

    if (w->fd >= 0) close(w->fd);
    unlinkat(w->backend->tmp_fd, w->tmp_name, 0);
    free(w);
}

static int fs_writer__commit(mlreg_blob_backend_writer *bw, const mlreg_digest *digest)
{
    int error = 0;
    fs_writer *w = (fs_writer *)bw;
    fs_backend *b = w->backend;
    char rel[REL_PATH_LEN], dir[3];
    int renamed = 0, fd = w->fd;

    w->fd = -1;
    rel_path(rel, digest);
    memcpy(dir, rel, 2);
    dir[2] = '\0';

    /* Blocks reserved past the end (an upload shorter than announced) go. */
    if (w->reserved > w->offset && ftruncate(fd, (off_t)w->offset) < 0) {
        error = errno_error(errno, b, "truncate temp file", "tmp/", w->tmp_name);
        goto done;
    }
    /* Data must be on disk before the name points at it, or a crash could
     * leave a complete-looking name over missing bytes. */
    if (fsync(fd) < 0) {
        error = errno_error(errno, b, "fsync temp file", "tmp/", w->tmp_name);
        goto done;
    }
    /* close can report deferred write errors (NFS), so it is checked. */
    if (close(fd) < 0) {
        fd = -1;
        error = errno_error(errno, b, "close temp file", "tmp/", w->tmp_name);
        goto done;
    }
    fd = -1;

    /* sha256/ is fsynced even when the prefix directory existed: another
     * thread may have just created it and not yet made its entry durable,
     * and a blob must never be referenced from metadata while its directory
     * entry could still vanish in a power loss. An fsync with nothing
     * pending is cheap. */
    if (mkdirat(b->objects_fd, dir, 0700) < 0 && errno != EEXIST) {
        error = errno_error(errno, b, "create directory", "sha256/", dir);
        goto done;
    }
    if ((error = fsync_objects_dir(b, ".")) < 0) goto done;

    /* The name may exist already. We still rename over it rather than keep
     * it: our bytes were just hashed by the front end and fsynced, while the
     * file on disk may be a copy that rotted or was damaged after its commit
     * (nothing re-hashes reads), and an earlier commit of it may have failed
     * at the directory fsync below, so its entry may not be durable yet.
     * rename(2) replaces it atomically; readers keep the inode they opened. */
    if (renameat(b->tmp_fd, w->tmp_name, b->objects_fd, rel) < 0) {
        error = errno_error(errno, b, "rename temp file to", "sha256/", rel);
        goto done;
    }
    renamed = 1;
    if ((error = fsync_objects_dir(b, dir)) < 0) goto done;

done:
    if (fd >= 0) close(fd);
    if (!renamed) unlinkat(b->tmp_fd, w->tmp_name, 0);
    free(w);
    return error;
}

/* ---- reader ---- */

static ssize_t fs_reader__read(mlreg_blob_backend_reader *br, void *buf, size_t len)
{
    fs_reader *r = (fs_reader *)br;

    for (;;) {
        ssize_t n = read(r->fd, buf, len);
        if (n >= 0) return n;
        if (errno != EINTR) return mlreg_error_set(MLREG_EIO, "read blob: %s", strerror(errno));
    }
}

static int fs_reader__fd(mlreg_blob_backend_reader *br)
{
    return ((fs_reader *)br)->fd;
}

static void fs_reader__free(mlreg_blob_backend_reader *br)
{
    fs_reader *r = (fs_reader *)br;

    if (r == NULL) return;
    if (r->fd >= 0) close(r->fd);
    free(r);
}

/* ---- backend ---- */

static int fs_backend__exists(mlreg_blob_backend *bb, const mlreg_digest *digest)
{
    fs_backend *b = (fs_backend *)bb;
    char rel[REL_PATH_LEN];
    struct stat st;

    rel_path(rel, digest);
    /* Only ENOENT means "not stored": EACCES, EIO, ENOTDIR... are errors, so
     * a broken store never reads as a missing blob (which would invite a
     * re-upload or a wrong 404). */
    if (fstatat(b->objects_fd, rel, &st, 0) < 0) {
        if (errno == ENOENT) return 0;
        return errno_error(errno, b, "stat blob", "sha256/", rel);
    }
    if (!S_ISREG(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "blob %s/blobs/sha256/%s is not a regular file", b->root,
                               rel);
    return 1;
}

static int fs_backend__stat(uint64_t *size_out, mlreg_blob_backend *bb, const mlreg_digest *digest)
{
    fs_backend *b = (fs_backend *)bb;
    char rel[REL_PATH_LEN];
    struct stat st;

    rel_path(rel, digest);
    if (fstatat(b->objects_fd, rel, &st, 0) < 0) {
        if (errno == ENOENT)
            return mlreg_error_set(MLREG_ENOTFOUND, "blob sha256:%s not found", rel + 3);
        return errno_error(errno, b, "stat blob", "sha256/", rel);
    }
    if (!S_ISREG(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "blob %s/blobs/sha256/%s is not a regular file", b->root,
                               rel);
    if (size_out != NULL) *size_out = (uint64_t)st.st_size;
    return 0;
}

static int fs_backend__open_read(mlreg_blob_backend_reader **out, uint64_t *size_out,
                                 mlreg_blob_backend *bb, const mlreg_digest *digest)
{
    int error = 0;
    fs_backend *b = (fs_backend *)bb;
    fs_reader *r = NULL;
    char rel[REL_PATH_LEN];
    struct stat st;

    rel_path(rel, digest);
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a blob reader");
        goto done;
    }
    r->fd = -1;
    r->parent.read = fs_reader__read;
    r->parent.fd = fs_reader__fd;
    r->parent.free = fs_reader__free;

    if ((r->fd = openat(b->objects_fd, rel, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            error = mlreg_error_set(MLREG_ENOTFOUND, "blob sha256:%s not found", rel + 3);
        else
            error = errno_error(errno, b, "open blob", "sha256/", rel);
        goto done;
    }
    if (fstat(r->fd, &st) < 0) {
        error = errno_error(errno, b, "stat blob", "sha256/", rel);
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        error = mlreg_error_set(MLREG_EIO, "blob %s/blobs/sha256/%s is not a regular file", b->root,
                                rel);
        goto done;
    }

done:
    if (error < 0) {
        if (r != NULL) fs_reader__free(&r->parent);
        return error;
    }
    if (size_out != NULL) *size_out = (uint64_t)st.st_size;
    *out = &r->parent;
    return 0;
}

static int fs_backend__open_write(mlreg_blob_backend_writer **out, mlreg_blob_backend *bb,
                                  int64_t size_hint)
{
    int error = 0;
    fs_backend *b = (fs_backend *)bb;
    fs_writer *w = NULL;
    unsigned char rnd[16];
    int attempt;

    if ((w = calloc(1, sizeof(*w))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a blob writer");
        goto done;
    }
    w->fd = -1;
    w->backend = b;
    w->parent.write = fs_writer__write;
    w->parent.commit = fs_writer__commit;
    w->parent.abort = fs_writer__abort;
    w->parent.reserve = fs_writer__reserve;

    /* A random name plus O_EXCL: concurrent writers never share a temp file,
     * and a retry covers the (astronomically unlikely) collision. */
    for (attempt = 0; attempt < 8; attempt++) {
        size_t i;
        ssize_t n;

        while ((n = getrandom(rnd, sizeof(rnd), 0)) < 0 && errno == EINTR)
            ;
        if (n != (ssize_t)sizeof(rnd)) {
            error = mlreg_error_set(MLREG_EIO, "getrandom for temp file name: %s",
                                    n < 0 ? strerror(errno) : "short read");
            goto done;
        }
        for (i = 0; i < sizeof(rnd); i++)
            snprintf(w->tmp_name + 2 * i, 3, "%02x", rnd[i]);
        memcpy(w->tmp_name + 32, ".tmp", 5);

        w->fd = openat(b->tmp_fd, w->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd >= 0) break;
        if (errno != EEXIST) {
            error = errno_error(errno, b, "create temp file", "tmp/", w->tmp_name);
            goto done;
        }
    }
    if (w->fd < 0) {
        error = mlreg_error_set(MLREG_EIO, "could not create a unique temp file in %s/blobs/tmp",
                                b->root);
        goto done;
    }
    if (size_hint > 0 && (error = fs_writer__reserve(&w->parent, (uint64_t)size_hint)) < 0)
        goto done;

done:
    if (error < 0) {
        if (w != NULL && w->fd >= 0) {
            close(w->fd);
            unlinkat(b->tmp_fd, w->tmp_name, 0);
        }
        free(w);
        return error;
    }
    *out = &w->parent;
    return 0;
}

static int fs_backend__remove(mlreg_blob_backend *bb, const mlreg_digest *digest)
{
    fs_backend *b = (fs_backend *)bb;
    char rel[REL_PATH_LEN];

    rel_path(rel, digest);
    /* The 2-hex directory is left in place even when empty: removing it would
     * race with a concurrent commit that has just created it. */
    if (unlinkat(b->objects_fd, rel, 0) < 0) {
        if (errno == ENOENT)
            return mlreg_error_set(MLREG_ENOTFOUND, "blob sha256:%s not found", rel + 3);
        return errno_error(errno, b, "remove blob", "sha256/", rel);
    }
    return 0;
}

/* Moves the blob to quarantine/<hex>.<when> with one rename, so at no
 * moment is it both served and quarantined, or neither. RENAME_NOREPLACE
 * keeps an earlier quarantined copy of the same digest (a blob damaged
 * twice in one second gets a ".N" suffix). The blob's directory and the
 * quarantine directory are fsynced: a crash must not bring a damaged blob
 * back under its name, where a HEAD would answer "present" again. */
static int fs_backend__quarantine(char *name_out, size_t name_len, mlreg_blob_backend *bb,
                                  const mlreg_digest *digest, int64_t when)
{
    int error = 0;
    fs_backend *b = (fs_backend *)bb;
    char rel[REL_PATH_LEN], dir[3], name[MLREG_BLOB_QUARANTINE_NAME_MAX];
    int attempt;

    rel_path(rel, digest);
    memcpy(dir, rel, 2);
    dir[2] = '\0';
    for (attempt = 0;; attempt++) {
        if (attempt == 0)
            snprintf(name, sizeof(name), "%s.%lld", rel + 3, (long long)when);
        else
            snprintf(name, sizeof(name), "%s.%lld.%d", rel + 3, (long long)when, attempt);
        if (renameat2(b->objects_fd, rel, b->quar_fd, name, RENAME_NOREPLACE) == 0) break;
        if (errno == EEXIST && attempt < 100) continue;
        if (errno == ENOENT)
            return mlreg_error_set(MLREG_ENOTFOUND, "blob sha256:%s not found", rel + 3);
        return errno_error(errno, b, "move blob to quarantine:", "sha256/", rel);
    }
    if (fsync(b->quar_fd) < 0) {
        error = errno_error(errno, b, "fsync directory", "quarantine", "");
        goto done;
    }
    if ((error = fsync_objects_dir(b, dir)) < 0) goto done;

done:
    if (name_out != NULL && name_len > 0) snprintf(name_out, name_len, "blobs/quarantine/%s", name);
    return error;
}

/* Walks one 2-hex directory. Only names of exactly 64 lowercase hex starting
 * with the directory's two digits are blobs; anything else (editor backups,
 * misplaced files) is skipped, never reported under a wrong digest. */
static int foreach_subdir(fs_backend *b, const char *sub, mlreg_blob_foreach_cb cb, void *payload)
{
    int error = 0;
    DIR *dir = NULL;
    struct dirent *ent;
    int fd;

    if ((fd = openat(b->objects_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        if (errno == ENOTDIR || errno == ENOENT) return 0;
        return errno_error(errno, b, "open directory", "sha256/", sub);
    }
    if ((dir = fdopendir(fd)) == NULL) {
        error = errno_error(errno, b, "open directory", "sha256/", sub);
        close(fd);
        goto done;
    }
    for (;;) {
        mlreg_digest d;
        struct stat st;

        errno = 0;
        if ((ent = readdir(dir)) == NULL) {
            if (errno != 0) error = errno_error(errno, b, "read directory", "sha256/", sub);
            break;
        }
        if (strlen(ent->d_name) != MLREG_DIGEST_HEXLEN ||
            !is_lower_hex(ent->d_name, MLREG_DIGEST_HEXLEN) || memcmp(ent->d_name, sub, 2) != 0)
            continue;
        if (fstatat(dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) continue; /* removed concurrently */
            error = errno_error(errno, b, "stat blob in", "sha256/", sub);
            goto done;
        }
        if (!S_ISREG(st.st_mode)) continue;
        if ((error = mlreg_digest_parse_hex(&d, ent->d_name, MLREG_DIGEST_HEXLEN)) < 0) goto done;
        if ((error = cb(&d, (uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, payload)) != 0)
            goto done;
    }

done:
    if (dir != NULL) closedir(dir);
    return error;
}

static int fs_backend__foreach(mlreg_blob_backend *bb, mlreg_blob_foreach_cb cb, void *payload)
{
    int error = 0;
    fs_backend *b = (fs_backend *)bb;
    DIR *dir = NULL;
    struct dirent *ent;
    int fd;

    if ((fd = openat(b->objects_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return errno_error(errno, b, "open directory", "sha256", "");
    if ((dir = fdopendir(fd)) == NULL) {
        error = errno_error(errno, b, "open directory", "sha256", "");
        close(fd);
        goto done;
    }
    for (;;) {
        errno = 0;
        if ((ent = readdir(dir)) == NULL) {
            if (errno != 0) error = errno_error(errno, b, "read directory", "sha256", "");
            break;
        }
        if (strlen(ent->d_name) != 2 || !is_lower_hex(ent->d_name, 2)) continue;
        if ((error = foreach_subdir(b, ent->d_name, cb, payload)) != 0) goto done;
    }

done:
    if (dir != NULL) closedir(dir);
    return error;
}

/* One directory of the store for check(): the descriptor opened at start
 * must still be the directory at its path (a directory removed, or
 * replaced by a file or by another directory, leaves the server writing
 * into nothing) and writable (a read-only remount). Permission bits do
 * not stop root, so nothing is decided on them beyond what access()
 * says. */
static int check_dir(char *reason, size_t reason_len, const fs_backend *b, int fd, const char *sub)
{
    struct stat open_st, path_st;
    char *path = path_join(b->root, sub);
    const char *what = NULL;
    int err = 0, error = 0;

    if (path == NULL) {
        snprintf(reason, reason_len, "blob store: out of memory");
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    if (fstat(fd, &open_st) != 0) {
        err = errno;
        what = "cannot be read";
    } else if (stat(path, &path_st) != 0) {
        err = errno;
        what = err != ENOENT           ? "cannot be read"
               : open_st.st_nlink == 0 ? "was removed"
                                       : "is missing";
    } else if (!S_ISDIR(path_st.st_mode)) {
        what = "is not a directory";
    } else if (open_st.st_nlink == 0 || path_st.st_dev != open_st.st_dev ||
               path_st.st_ino != open_st.st_ino) {
        what = "was replaced (restart the server to use the new one)";
    } else if (faccessat(fd, ".", W_OK | X_OK, 0) != 0) {
        err = errno;
        what = err == EROFS ? "is on a read-only file system" : "is not writable";
    }
    if (what != NULL) {
        snprintf(reason, reason_len, "blob directory %s %s", sub, what);
        error = mlreg_error_set(MLREG_EIO, "blob directory %s %s%s%s", path, what, err ? ": " : "",
                                err ? strerror(err) : "");
    }
    free(path);
    return error;
}

static int fs_backend__check(char *reason, size_t reason_len, mlreg_blob_backend *bb)
{
    fs_backend *b = (fs_backend *)bb;
    int error;

    if ((error = check_dir(reason, reason_len, b, b->objects_fd, "blobs/sha256")) < 0) return error;
    return check_dir(reason, reason_len, b, b->tmp_fd, "blobs/tmp");
}

static void fs_backend__free(mlreg_blob_backend *bb)
{
    fs_backend *b = (fs_backend *)bb;

    if (b == NULL) return;
    if (b->objects_fd >= 0) close(b->objects_fd);
    if (b->tmp_fd >= 0) close(b->tmp_fd);
    if (b->quar_fd >= 0) close(b->quar_fd);
    free(b->root);
    free(b);
}

int mlreg_blob_backend_fs_new(mlreg_blob_backend **out, const char *root)
{
    int error = 0;
    fs_backend *b = NULL;
    char *objects = NULL, *tmp = NULL, *quar = NULL;

    if (root == NULL || root[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "fs blob backend needs a root directory");

    if ((b = calloc(1, sizeof(*b))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating the fs blob backend");
        goto done;
    }
    b->objects_fd = -1;
    b->tmp_fd = -1;
    b->quar_fd = -1;
    b->parent.version = MLREG_BLOB_BACKEND_VERSION;
    b->parent.name = "fs";
    b->parent.exists = fs_backend__exists;
    b->parent.stat = fs_backend__stat;
    b->parent.open_read = fs_backend__open_read;
    b->parent.open_write = fs_backend__open_write;
    b->parent.remove = fs_backend__remove;
    b->parent.foreach = fs_backend__foreach;
    b->parent.free = fs_backend__free;
    b->parent.quarantine = fs_backend__quarantine;
    b->parent.check = fs_backend__check;
    b->parent.write_block = FS_BLOCK;

    if ((b->root = strdup(root)) == NULL || (objects = path_join(root, "blobs/sha256")) == NULL ||
        (tmp = path_join(root, "blobs/tmp")) == NULL ||
        (quar = path_join(root, "blobs/quarantine")) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = mlreg_file_mkdirs(objects, "blob")) < 0 ||
        (error = mlreg_file_mkdirs(tmp, "blob")) < 0 ||
        (error = mlreg_file_mkdirs(quar, "blob")) < 0)
        goto done;
    if ((error = open_dir(&b->objects_fd, root, "blobs/sha256")) < 0 ||
        (error = open_dir(&b->tmp_fd, root, "blobs/tmp")) < 0 ||
        (error = open_dir(&b->quar_fd, root, "blobs/quarantine")) < 0)
        goto done;
    if ((error = remove_stale_temps(b)) < 0) goto done;

done:
    free(objects);
    free(tmp);
    free(quar);
    if (error < 0) {
        if (b != NULL) fs_backend__free(&b->parent);
        return error;
    }
    *out = &b->parent;
    return 0;
}
