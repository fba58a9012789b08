/* data_dir.c: keeps the data directory private to the user mlreg runs as
 * (mlreg_registry_make_private, include/mlreg/registry.h).
 *
 * Everything mlreg creates under the data directory is created 0700
 * (directories) or 0600 (files), whatever the umask: a umask only takes bits
 * away. Data directories made by earlier versions have 0755 blob
 * directories and 0644 blobs, which every local user can read; the walk
 * here fixes them at start.
 *
 * Traps:
 *   - Only what mlreg keeps there is walked (MLREG_DATA_SUBDIRS): a data
 *     directory pointed at $HOME or /srv by mistake must not have every
 *     other file in it changed.
 *   - Only entries owned by the user mlreg runs as are changed: run as root
 *     over a tree someone else owns, that owner could swap entries as we
 *     go, and their files are not ours to change anyway. They are counted
 *     and reported instead.
 *   - A symlink is never followed and never changed: chmod would change its
 *     target, which may be any file on the system. Directories are opened
 *     O_NOFOLLOW, entries are looked at with fstatat(AT_SYMLINK_NOFOLLOW),
 *     and changed with fchmodat(AT_SYMLINK_NOFOLLOW), which glibc does
 *     through an O_PATH descriptor: an entry swapped for a symlink between
 *     the stat and the change is refused (EOPNOTSUPP), never followed.
 *   - Blobs can be many: one readdir pass, one fstatat per entry, and a
 *     chmod only where a group or other bit is set.
 *   - A directory already without group and other bits that we may not open
 *     is left alone: nobody else can reach what is below it either.
 */
#include "mlreg/registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/common.h"

/* The layout is 4 levels deep (data/blobs/sha256/ab/<hex>); anything much
 * deeper was put there by someone else, and recursion stays bounded. */
#define MAX_DEPTH 32

/* What mlreg keeps in a data directory: the fs blob store, LMDB, the
 * audit log's key. */
static const char *const data_subdirs[] = {"blobs", "meta", "audit"};

typedef struct {
    char path[PATH_MAX]; /* the entry being looked at, for messages */
    size_t fixed;
    size_t foreign; /* entries of another owner, left as they are */
    uid_t uid;      /* ours */
} walk_state;

/* Appends "/" @p name to st->path; *len_out the old length to restore. */
static int path_push(size_t *len_out, walk_state *st, const char *name)
{
    size_t len = strlen(st->path), n = strlen(name);

    if (len + 1 + n + 1 > sizeof(st->path))
        return mlreg_error_set(MLREG_EINVALID, "path under the data directory too long: %s/%s",
                               st->path, name);
    st->path[len] = '/';
    memcpy(st->path + len + 1, name, n + 1);
    *len_out = len;
    return 0;
}

static int chmod_error(const walk_state *st)
{
    return mlreg_error_set(MLREG_EIO,
                           "cannot make %s private: %s (the data directory must belong to the "
                           "user mlreg runs as)",
                           st->path, strerror(errno));
}

/* Removes the group and other bits of the directory open as @p fd. 1 when
 * it is ours (walk it), 0 when it belongs to someone else (counted, left
 * alone with what is below it), or an error. */
static int fix_dir(walk_state *st, int fd)
{
    struct stat sb;

    if (fstat(fd, &sb) < 0)
        return mlreg_error_set(MLREG_EIO, "cannot stat %s: %s", st->path, strerror(errno));
    if (sb.st_uid != st->uid) {
        st->foreign++;
        return 0;
    }
    if ((sb.st_mode & 077) == 0) return 1;
    if (fchmod(fd, sb.st_mode & 07700) < 0) return chmod_error(st);
    st->fixed++;
    return 1;
}

/* Walks the directory @p name of the directory open as @p parent, if it is
 * one (not a symlink) and ours. */
static int walk_dir(walk_state *st, int fd, unsigned int depth);
static int walk_subdir(walk_state *st, int parent, const char *name, const struct stat *sb,
                       unsigned int depth)
{
    int error, sub;

    if (depth >= MAX_DEPTH)
        return mlreg_error_set(MLREG_EINVALID,
                               "%s is nested deeper than %d levels in the data directory", st->path,
                               MAX_DEPTH);
    sub = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (sub < 0) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR ||
            (errno == EACCES && (sb->st_mode & 077) == 0))
            return 0; /* gone, swapped for a non-directory, or closed to everyone */
        return mlreg_error_set(MLREG_EIO, "cannot open %s: %s", st->path, strerror(errno));
    }
    if ((error = fix_dir(st, sub)) <= 0) {
        close(sub);
        return error;
    }
    return walk_dir(st, sub, depth + 1);
}

/* Walks the entries of the directory open as @p fd (consumed) at @p depth. */
static int walk_dir(walk_state *st, int fd, unsigned int depth)
{
    int error = 0;
    DIR *dir = NULL;
    struct dirent *ent;

    if ((dir = fdopendir(fd)) == NULL) {
        error = mlreg_error_set(MLREG_EIO, "cannot read %s: %s", st->path, strerror(errno));
        close(fd);
        goto done;
    }
    for (;;) {
        struct stat sb;
        size_t len = 0;

        errno = 0;
        if ((ent = readdir(dir)) == NULL) {
            if (errno != 0)
                error = mlreg_error_set(MLREG_EIO, "cannot read %s: %s", st->path, strerror(errno));
            break;
        }
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        if ((error = path_push(&len, st, ent->d_name)) < 0) goto done;
        if (fstatat(dirfd(dir), ent->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) /* removed meanwhile: nothing to fix */
                error = mlreg_error_set(MLREG_EIO, "cannot stat %s: %s", st->path, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            error = walk_subdir(st, dirfd(dir), ent->d_name, &sb, depth);
        } else if (S_ISLNK(sb.st_mode) || (sb.st_mode & 077) == 0) {
            /* never followed; or nothing to fix */
        } else if (sb.st_uid != st->uid) {
            st->foreign++;
        } else if (fchmodat(dirfd(dir), ent->d_name, sb.st_mode & 07700, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT && errno != EOPNOTSUPP) /* gone, or now a symlink */
                error = chmod_error(st);
        } else {
            st->fixed++;
        }
        st->path[len] = '\0';
        if (error < 0) goto done;
    }

done:
    if (dir != NULL) closedir(dir);
    return error;
}

int mlreg_registry_make_private(size_t *fixed_out, size_t *foreign_out, const char *data_dir)
{
    int error = 0, fd = -1;
    walk_state *st = NULL;

    if (data_dir == NULL || data_dir[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "registry data directory not set");
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory walking the data directory");
    st->uid = geteuid();
    if (strlen(data_dir) >= sizeof(st->path)) {
        error = mlreg_error_set(MLREG_EINVALID, "data directory path too long");
        goto done;
    }
    strcpy(st->path, data_dir);
    /* The configured path is followed (the operator may have made it a
     * symlink to another disk); nothing below it is. A data directory that
     * does not exist yet is created private: nothing to fix. */
    if ((fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK)) < 0) {
        if (errno != ENOENT)
            error = mlreg_error_set(MLREG_EIO, "cannot open data directory %s: %s", data_dir,
                                    strerror(errno));
        goto done;
    }
    if ((error = fix_dir(st, fd)) <= 0) goto done;
    for (size_t i = 0; i < sizeof(data_subdirs) / sizeof(data_subdirs[0]); i++) {
        struct stat sb;
        size_t len = 0;
        if ((error = path_push(&len, st, data_subdirs[i])) < 0) goto done;
        if (fstatat(fd, data_subdirs[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode))
            error = walk_subdir(st, fd, data_subdirs[i], &sb, 0);
        st->path[len] = '\0';
        if (error < 0) goto done;
    }

done:
    if (fd >= 0) close(fd);
    if (error == 0) {
        *fixed_out = st->fixed;
        if (foreign_out) *foreign_out = st->foreign;
    }
    free(st);
    return error;
}
