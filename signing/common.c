/* common.c: the strict line, comment and base64 checks that the three
 * minisign formats share, and the create-only file writer for key files.
 */
#include "sign_internal.h"

#include "mlreg/common.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mlreg_signing__init(void)
{
    /* sodium_init() is idempotent and thread-safe; it picks the fastest
     * implementations and seeds randombytes before sodium_malloc is used. */
    if (sodium_init() < 0) return mlreg_error_set(MLREG_EIO, "libsodium failed to initialise");
    return 0;
}

int mlreg_signing__split_lines(text_line *lines, size_t want, const char *text, size_t len,
                               const char *what)
{
    size_t pos = 0, n = 0;

    if (len == 0) return mlreg_error_set(MLREG_EINVALID, "malformed %s: empty", what);
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;

        if (n == want)
            return mlreg_error_set(MLREG_EINVALID, "malformed %s: unexpected data after line %zu",
                                   what, want);
        lines[n].p = text + pos;
        lines[n].len = end - pos;
        n++;
        /* minisign trims '\r', but a CRLF file was edited by something that
         * rewrote it; refusing keeps "the bytes we verify" unambiguous. */
        if (memchr(lines[n - 1].p, '\r', lines[n - 1].len))
            return mlreg_error_set(MLREG_EINVALID,
                                   "malformed %s: carriage return in line %zu (CRLF line endings)",
                                   what, n);
        if (memchr(lines[n - 1].p, '\0', lines[n - 1].len))
            return mlreg_error_set(MLREG_EINVALID, "malformed %s: NUL byte in line %zu", what, n);
        pos = nl ? end + 1 : len;
    }
    if (n < want)
        return mlreg_error_set(MLREG_EINVALID, "malformed %s: %zu line%s, expected %zu", what, n,
                               n == 1 ? "" : "s", want);
    return 0;
}

int mlreg_signing__comment_line(const char **comment_out, size_t *len_out, text_line line,
                                const char *prefix, size_t max, const char *what, size_t lineno)
{
    size_t plen = strlen(prefix);

    if (line.len < plen || memcmp(line.p, prefix, plen) != 0)
        return mlreg_error_set(MLREG_EINVALID, "malformed %s: line %zu does not start with \"%s\"",
                               what, lineno, prefix);
    if (line.len - plen > max)
        return mlreg_error_set(MLREG_EINVALID,
                               "malformed %s: comment in line %zu is longer than %zu bytes", what,
                               lineno, max);
    *comment_out = line.p + plen;
    *len_out = line.len - plen;
    return 0;
}

int mlreg_signing__base64_line(unsigned char *out, size_t outlen, text_line line, const char *what,
                               size_t lineno)
{
    size_t expected = sodium_base64_ENCODED_LEN(outlen, sodium_base64_VARIANT_ORIGINAL) - 1;
    size_t got = 0;

    /* Length first, so a truncated line gets a message that says so. With
     * the length fixed, sodium_base642bin (no ignore set, no end pointer)
     * accepts only canonical padded base64: it refuses stray characters,
     * whitespace, wrong padding and non-zero unused bits. */
    if (line.len != expected)
        return mlreg_error_set(MLREG_EINVALID,
                               "malformed %s: line %zu has %zu base64 characters, expected %zu",
                               what, lineno, line.len, expected);
    if (sodium_base642bin(out, outlen, line.p, line.len, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != outlen)
        return mlreg_error_set(MLREG_EINVALID, "malformed %s: line %zu is not valid base64", what,
                               lineno);
    return 0;
}

int mlreg_signing__check_comment(const char *comment, size_t max, const char *what)
{
    if (!comment) return mlreg_error_set(MLREG_EINVALID, "%s is missing", what);
    if (strlen(comment) > max)
        return mlreg_error_set(MLREG_EINVALID, "%s is longer than %zu bytes", what, max);
    if (strpbrk(comment, "\r\n"))
        return mlreg_error_set(MLREG_EINVALID, "%s contains a line break", what);
    return 0;
}

int mlreg_signing__read_file(char *buf, size_t cap, size_t *len_out, const char *path,
                             const char *what)
{
    int error = 0;
    int fd = -1;
    size_t len = 0;
    struct stat st;

    /* O_NONBLOCK: a FIFO planted at the path must not hang us in open();
     * regular files ignore the flag. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
        error = mlreg_error_set(errno == ENOENT ? MLREG_ENOTFOUND : MLREG_EIO,
                                "cannot open %s %s: %s", what, path, strerror(errno));
        goto done;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        error = mlreg_error_set(MLREG_EINVALID, "%s %s is not a regular file", what, path);
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            error =
                mlreg_error_set(MLREG_EIO, "cannot read %s %s: %s", what, path, strerror(errno));
            goto done;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len == cap) {
            error = mlreg_error_set(MLREG_EINVALID, "%s %s is larger than %zu bytes", what, path,
                                    cap - 1);
            goto done;
        }
    }
    *len_out = len;
done:
    if (fd >= 0) close(fd);
    return error;
}

/* Key files are never replaced (a lost secret key cannot be recovered),
 * and a new one should survive a crash right after `key generate` (its
 * public half may already be published): file.h's writer with
 * MLREG_FILE_NOREPLACE gives both, and a half-written key file is never
 * visible under its name. */
int mlreg_signing__key_file_open(mlreg_file **out, const char *path, mode_t mode)
{
    int error = mlreg_file_open(out, path, mode, MLREG_FILE_NOREPLACE);

    if (error == MLREG_EEXISTS)
        return mlreg_error_set(MLREG_EEXISTS, "%s already exists; key files are never replaced",
                               path);
    return error;
}

int mlreg_signing__key_file_finish(mlreg_file *f, const char *path, const file_part *parts,
                                   size_t n)
{
    int error = 0;

    for (size_t i = 0; i < n; i++) {
        if ((error = mlreg_file_write(f, parts[i].p, parts[i].len)) < 0) {
            mlreg_file_abort(f);
            return error;
        }
    }
    error = mlreg_file_commit(f);
    if (error == MLREG_EEXISTS)
        return mlreg_error_set(MLREG_EEXISTS, "%s already exists; key files are never replaced",
                               path);
    return error;
}
