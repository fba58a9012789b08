/* safepath.c: a relative path below a directory descriptor, one segment at
 * a time (safepath.h).
 *
 * Why not open("DIR/a/b/leaf"): the kernel would follow a symbolic link at
 * DIR/a to anywhere, and O_NOFOLLOW only guards the last segment. Here each
 * directory segment is opened with O_NOFOLLOW|O_DIRECTORY relative to the
 * descriptor of the one before, so a symbolic link (or a file, a FIFO)
 * where a directory should be is found and named, never followed, and a
 * directory swapped for a link after it was opened is not looked at again:
 * everything below works on the descriptor already held.
 *
 * The segments are checked before the first openat: the titles pull and
 * check pass here are validated already (mlreg_title_validate), but this
 * helper must not depend on that to stay inside the directory it starts
 * from, so "." and ".." are refused here too.
 */
#include "safepath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/common.h"

void cli_safepath_made_free(cli_safepath_made *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->dirs[i]);
    free(m->dirs);
    m->dirs = NULL;
    m->n = m->cap = 0;
}

static int made_add(cli_safepath_made *m, const char *rel, size_t len)
{
    char *s;

    if (!m) return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        char **d = realloc(m->dirs, cap * sizeof(*d));
        if (!d) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        m->dirs = d;
        m->cap = cap;
    }
    if (!(s = malloc(len + 1))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    memcpy(s, rel, len);
    s[len] = '\0';
    m->dirs[m->n++] = s;
    return 0;
}

/* Every segment of @p rel is a name: not empty, not "." or "..", shorter
 * than NAME_MAX + 1 bytes. */
static int segments_check(const char *rel)
{
    const char *p = rel;

    if (!rel || !*rel) return mlreg_error_set(MLREG_EINVALID, "empty path");
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0)
            return mlreg_error_set(MLREG_EINVALID, "path has an empty segment (a leading, "
                                                   "trailing or doubled '/')");
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return mlreg_error_set(MLREG_EINVALID, "path has a segment '.' or '..'");
        if (len > NAME_MAX) return mlreg_error_set(MLREG_EINVALID, "path segment too long");
        if (!slash) return 0;
        p = slash + 1;
    }
}

/* What the entry @p seg of @p fd is, for the message when it is in the
 * way; 1 when it is a directory after all (a race: try again). */
static int describe(const char **what, int fd, const char *seg)
{
    struct stat st;

    if (fstatat(fd, seg, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        *what = "gone";
        return 1;
    }
    if (S_ISDIR(st.st_mode)) return 1;
    *what = S_ISLNK(st.st_mode)   ? "a symbolic link (not followed)"
            : S_ISREG(st.st_mode) ? "a file"
                                  : "not a directory";
    return 0;
}

int cli_safepath_parent(int *fd_out, const char **leaf_out, size_t *way_len_out, int dirfd,
                        const char *rel, int flags, cli_safepath_made *made)
{
    int error = 0, cur = -1, tries = 0;
    const char *p = rel, *slash, *what = NULL;
    char seg[NAME_MAX + 1];
    mode_t mask;

    *fd_out = -1;
    *leaf_out = NULL;
    if (way_len_out) *way_len_out = 0;
    if ((error = segments_check(rel)) < 0) return error;
    if ((cur = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return mlreg_error_set(MLREG_EIO, "cannot open the directory: %s", strerror(errno));
    while ((slash = strchr(p, '/'))) {
        size_t len = (size_t)(slash - p), plen = (size_t)(slash - rel);
        int nfd;
        memcpy(seg, p, len);
        seg[len] = '\0';
        if ((nfd = openat(cur, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
            close(cur);
            cur = nfd;
            p = slash + 1;
            tries = 0;
            continue;
        }
        if (++tries > 3) {
            error = mlreg_error_set(MLREG_EIO, "%.*s keeps changing", (int)plen, rel);
            goto done;
        }
        if (errno == ENOENT) {
            if (!(flags & CLI_SAFEPATH_CREATE)) {
                error = mlreg_error_set(MLREG_ENOTFOUND, "%.*s: no such directory", (int)plen, rel);
                goto done;
            }
        } else if (errno == ENOTDIR || errno == ELOOP) {
            if (describe(&what, cur, seg)) continue;
            if ((flags & (CLI_SAFEPATH_CREATE | CLI_SAFEPATH_FORCE)) !=
                (CLI_SAFEPATH_CREATE | CLI_SAFEPATH_FORCE)) {
                if (way_len_out) *way_len_out = plen;
                error = mlreg_error_set(MLREG_EDENIED,
                                        "%.*s is %s, where %s needs a directory: in the way",
                                        (int)plen, rel, what, rel);
                goto done;
            }
            if (unlinkat(cur, seg, 0) < 0 && errno != ENOENT) {
                error = mlreg_error_set(MLREG_EIO, "cannot remove %.*s: %s", (int)plen, rel,
                                        strerror(errno));
                goto done;
            }
        } else {
            error = mlreg_error_set(MLREG_EIO, "%.*s: %s", (int)plen, rel, strerror(errno));
            goto done;
        }
        mask = umask(0);
        umask(mask);
        if (mkdirat(cur, seg, 0777 & ~mask) < 0) {
            if (errno == EEXIST) continue; /* made by someone else meanwhile: open it */
            error = mlreg_error_set(MLREG_EIO, "mkdir %.*s: %s", (int)plen, rel, strerror(errno));
            goto done;
        }
        if ((error = made_add(made, rel, plen)) < 0) goto done;
    }
    *fd_out = cur;
    *leaf_out = p;
    cur = -1;
done:
    if (cur >= 0) close(cur);
    return error;
}

/* The clean-ups run on a failure path, after the message of the failure
 * was set: they keep it (a message has no code of its own to keep). */
static void msg_save(char saved[1024])
{
    snprintf(saved, 1024, "%s", mlreg_error_last());
}

static void msg_restore(const char saved[1024])
{
    if (*saved)
        mlreg_error_set(MLREG_EIO, "%s", saved);
    else
        mlreg_error_clear();
}

int cli_safepath_prune(int dirfd, const char *rel)
{
    char buf[PATH_MAX], saved[1024];
    size_t len = rel ? strlen(rel) : 0;
    int removed = 0;

    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, rel, len + 1);
    msg_save(saved);
    for (;;) {
        const char *leaf;
        char *slash;
        int pfd, rc;
        if (cli_safepath_parent(&pfd, &leaf, NULL, dirfd, buf, 0, NULL) < 0) break;
        rc = unlinkat(pfd, leaf, AT_REMOVEDIR);
        close(pfd);
        if (rc < 0) break;
        removed++;
        if (!(slash = strrchr(buf, '/'))) break;
        *slash = '\0';
    }
    msg_restore(saved);
    return removed;
}

void cli_safepath_made_undo(int dirfd, cli_safepath_made *m)
{
    char saved[1024];

    msg_save(saved);
    for (size_t i = m->n; i-- > 0;) {
        const char *leaf;
        int pfd;
        if (cli_safepath_parent(&pfd, &leaf, NULL, dirfd, m->dirs[i], 0, NULL) < 0) continue;
        unlinkat(pfd, leaf, AT_REMOVEDIR);
        close(pfd);
    }
    msg_restore(saved);
    cli_safepath_made_free(m);
}

int cli_safepath_open_regular(int dirfd, const char *leaf)
{
    struct stat st;
    int fd = openat(dirfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), fl, e;

    if (fd < 0) return -1;
    if (fstat(fd, &st) < 0) {
        e = errno;
    } else if (!S_ISREG(st.st_mode)) {
        e = EINVAL;
    } else if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        e = errno;
    } else {
        return fd;
    }
    close(fd);
    errno = e;
    return -1;
}
