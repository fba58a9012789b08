/* files.c: local files as the client commands write and read them
 * (files.h): complete writes, durable renames, atomic replacement, new
 * files that never replace or follow anything (bounded reads are
 * mlreg_file_read(), core/file.c).
 */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/common.h"

int cli_write_all(int fd, const void *data, size_t len, const char *name)
{
    const char *p = data;

    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return mlreg_error_set(errno == ENOSPC ? MLREG_ENOSPACE : MLREG_EIO, "writing %s: %s",
                                   name, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int cli_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return mlreg_error_set(MLREG_EIO, "fsync %s: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

int cli_path_join(char *out, size_t len, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
        return mlreg_error_set(MLREG_EIO, "%s/%s: path too long", dir, name);
    return 0;
}

int cli_file_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    int fd = -1, error = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
        return mlreg_error_set(MLREG_EIO, "%s: path too long", path);
    if ((fd = mkstemp(tmp)) < 0)
        return mlreg_error_set(MLREG_EIO, "creating a temp file for %s: %s", path, strerror(errno));
    if (fchmod(fd, 0644) < 0) {
        error = mlreg_error_set(MLREG_EIO, "chmod %s: %s", tmp, strerror(errno));
        goto done;
    }
    if ((error = cli_write_all(fd, data, len, tmp)) < 0) goto done;
    if (fsync(fd) < 0) {
        error = mlreg_error_set(MLREG_EIO, "fsync %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) < 0) {
        fd = -1;
        error = mlreg_error_set(MLREG_EIO, "closing %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        error = mlreg_error_set(MLREG_EIO, "rename %s to %s: %s", tmp, path, strerror(errno));
done:
    if (fd >= 0) close(fd);
    if (error < 0) unlink(tmp);
    return error;
}

int cli_file_write_new(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    int fd, error = 0;

    if ((error = cli_path_join(path, sizeof(path), dir, name)) < 0) return error;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666)) < 0)
        return mlreg_error_set(MLREG_EIO, "creating %s: %s", path, strerror(errno));
    if ((error = cli_write_all(fd, data, len, path)) == 0 && fsync(fd) < 0)
        error = mlreg_error_set(MLREG_EIO, "fsync %s: %s", path, strerror(errno));
    if (close(fd) < 0 && !error)
        error = mlreg_error_set(MLREG_EIO, "closing %s: %s", path, strerror(errno));
    return error;
}
