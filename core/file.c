/* file.c: whole-file writes that are atomic and durable, and the bounded
 * whole-file reader (file.h).
 *
 * The temp file lives in the final name's directory so that rename(2) and
 * link(2) stay within one filesystem. Its name is made unique from the pid,
 * a process-wide counter and the clock, and created O_EXCL|O_NOFOLLOW, so
 * a name planted by someone else (a symlink included) is never written
 * through: another name is tried instead. link(2) fails with EEXIST when
 * the final name exists in any form, which is what "never replace" needs,
 * atomically even against another process writing the same path. */
#include "mlreg/file.h"

#include "mlreg/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEMP_TRIES 16

struct mlreg_file {
    int fd;
    int flags;
    char *path;
    char *tmp;
    char *dir;
};

static atomic_uint temp_counter;

static int errno_code(int e)
{
    return e == ENOENT || e == ENOTDIR ? MLREG_ENOTFOUND : MLREG_EIO;
}

static void file_free(mlreg_file *f)
{
    if (f == NULL) return;
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(f->tmp);
    free(f->dir);
    free(f);
}

/* Splits @p path into f->dir ("." or "/" for the edge cases) and names the
 * temp file "<dir>/.<base>.tmp.<pid>.<n>.<ns>". */
static int temp_name(mlreg_file *f, const char *path)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    struct timespec ts;
    size_t cap;

    if (!slash)
        f->dir = strdup(".");
    else if (slash == path)
        f->dir = strdup("/");
    else
        f->dir = strndup(path, (size_t)(slash - path));
    if (f->dir == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory writing %s", path);
    cap = strlen(f->dir) + strlen(base) + 80;
    free(f->tmp);
    if ((f->tmp = malloc(cap)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory writing %s", path);
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(f->tmp, cap, "%s/.%s.tmp.%ld.%u.%ld", f->dir, base, (long)getpid(),
             atomic_fetch_add(&temp_counter, 1), (long)ts.tv_nsec);
    return 0;
}

int mlreg_file_open(mlreg_file **out, const char *path, mode_t mode, int flags)
{
    int error = 0;
    mlreg_file *f = NULL;
    struct stat st;

    if (path == NULL || path[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "no file name to write");
    if ((flags & MLREG_FILE_NOREPLACE) && lstat(path, &st) == 0)
        return mlreg_error_set(MLREG_EEXISTS, "%s already exists", path);
    if ((f = calloc(1, sizeof(*f))) == NULL || (f->path = strdup(path)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory writing %s", path);
        goto done;
    }
    f->fd = -1;
    f->flags = flags;
    for (int i = 0; i < TEMP_TRIES && f->fd < 0; i++) {
        free(f->dir);
        f->dir = NULL;
        if ((error = temp_name(f, path)) < 0) goto done;
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
        if (f->fd < 0 && errno != EEXIST) break;
    }
    if (f->fd < 0) {
        error = mlreg_error_set(errno_code(errno), "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    *out = f;
    f = NULL;

done:
    file_free(f);
    return error;
}

int mlreg_file_write(mlreg_file *f, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len > 0) {
        ssize_t w = write(f->fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0)
            return mlreg_error_set(MLREG_EIO, "cannot write %s: %s", f->path, strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int mlreg_file_commit(mlreg_file *f)
{
    int error = 0, fd = f->fd, dfd;

    f->fd = -1;
    if (fsync(fd) < 0) {
        error = mlreg_error_set(MLREG_EIO, "cannot sync %s: %s", f->path, strerror(errno));
        close(fd);
        goto done;
    }
    /* close can report deferred write errors (NFS), so it is checked. */
    if (close(fd) < 0) {
        error = mlreg_error_set(MLREG_EIO, "cannot close %s: %s", f->path, strerror(errno));
        goto done;
    }
    if (f->flags & MLREG_FILE_NOREPLACE) {
        /* renameat2 NOREPLACE needs no hard links (vfat, many FUSE and SMB
         * mounts have none); link() serves filesystems without the flag */
        if (renameat2(AT_FDCWD, f->tmp, AT_FDCWD, f->path, RENAME_NOREPLACE) == 0) {
            free(f->tmp);
            f->tmp = NULL;
        } else if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
            error = errno == EEXIST ? mlreg_error_set(MLREG_EEXISTS, "%s already exists", f->path)
                                    : mlreg_error_set(MLREG_EIO, "cannot create %s: %s", f->path,
                                                      strerror(errno));
            goto done;
        } else if (link(f->tmp, f->path) < 0) {
            error = errno == EEXIST ? mlreg_error_set(MLREG_EEXISTS, "%s already exists", f->path)
                                    : mlreg_error_set(MLREG_EIO, "cannot create %s: %s", f->path,
                                                      strerror(errno));
            goto done;
        } else {
            unlink(f->tmp);
            free(f->tmp);
            f->tmp = NULL;
        }
    } else if (rename(f->tmp, f->path) < 0) {
        error = mlreg_error_set(MLREG_EIO, "cannot rename onto %s: %s", f->path, strerror(errno));
        goto done;
    } else {
        free(f->tmp); /* renamed: nothing left to remove */
        f->tmp = NULL;
    }
    if ((dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }

done:
    if (f->tmp) unlink(f->tmp);
    file_free(f);
    return error;
}

void mlreg_file_abort(mlreg_file *f)
{
    if (f == NULL) return;
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp) unlink(f->tmp);
    file_free(f);
}

/* The size is taken from fstat() and the read stops there: a file that grows
 * meanwhile is read as it was, one that shrinks gives what is left. */
int mlreg_file_read_fd(char **out, size_t *len_out, int fd, const char *name, size_t max)
{
    int error = 0;
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    *out = NULL;
    *len_out = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "%s: not a regular file", name);
    if ((uint64_t)st.st_size > max)
        return mlreg_error_set(MLREG_EIO, "%s: larger than %zu bytes", name, max);
    if (!(buf = malloc((size_t)st.st_size + 1)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = mlreg_error_set(MLREG_EIO, "%s: %s", name, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *len_out = got;
    buf = NULL;
done:
    free(buf);
    return error;
}

/* O_NONBLOCK keeps a FIFO from blocking the open; fstat then refuses it. */
int mlreg_file_read(char **out, size_t *len_out, const char *path, size_t max)
{
    int error, fd;

    *out = NULL;
    *len_out = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
        if (errno == ENOENT) return mlreg_error_set(MLREG_ENOTFOUND, "%s: missing", path);
        return mlreg_error_set(MLREG_EIO, "%s: %s", path, strerror(errno));
    }
    error = mlreg_file_read_fd(out, len_out, fd, path, max);
    close(fd);
    return error;
}

int mlreg_file_mkdirs(const char *path, const char *what)
{
    int error = 0;
    char *copy = NULL, *p;

    if (path == NULL || path[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "no %s directory named", what);

    if ((copy = strdup(path)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
            error = mlreg_error_set(errno == ENOSPC || errno == EDQUOT ? MLREG_ENOSPACE : MLREG_EIO,
                                    "create %s directory %s: %s", what, copy, strerror(errno));
            goto done;
        }
        *p = saved;
        if (saved == '\0') break;
    }

done:
    free(copy);
    return error;
}
