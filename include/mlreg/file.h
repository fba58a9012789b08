/**
 * @file file.h
 * @brief The one way mlreg writes a whole file: into a temp file in the same
 *        directory, fsync, then rename (or link, to never replace) onto the
 *        final name and fsync the directory. A reader, or a crash, sees the
 *        old file or the whole new one, never a part.
 *
 * The temp file is ".<name>.tmp.<unique>" beside the final name, created
 * O_EXCL|O_NOFOLLOW with the caller's mode (less the umask). Blobs do not
 * use this: the fs blob backend streams into its own tmp/ directory.
 *
 * And the one way it reads a small whole file (a key, a checkpoint, a
 * keyring, a bundle file): a regular file only, no larger than the caller's
 * bound, into memory, NUL-terminated.
 */
#ifndef MLREG_FILE_H
#define MLREG_FILE_H

#include <stddef.h>
#include <sys/types.h>

/** A file being written; see mlreg_file_open(). */
typedef struct mlreg_file mlreg_file;

/** Flags of mlreg_file_open(). */
enum {
    MLREG_FILE_REPLACE = 0,  /**< an existing file at the path is replaced atomically */
    MLREG_FILE_NOREPLACE = 1 /**< an existing path (a symlink too) is never replaced */
};

/**
 * Starts writing @p path: creates the temp file beside it with @p mode.
 * With MLREG_FILE_NOREPLACE an existing @p path is refused here, before the
 * caller does any slow work, and again, atomically, at commit.
 * @param out the file, owned by the caller until mlreg_file_commit() or
 *        mlreg_file_abort()
 * @return 0; MLREG_EEXISTS ("PATH already exists", NOREPLACE only);
 *         MLREG_ENOTFOUND (no such directory); MLREG_EIO; MLREG_ENOMEM.
 *         Messages name @p path, never the temp file.
 */
int mlreg_file_open(mlreg_file **out, const char *path, mode_t mode, int flags);

/** Appends the @p len bytes at @p data. 0 or MLREG_EIO; @p f stays open either way. */
int mlreg_file_write(mlreg_file *f, const void *data, size_t len);

/**
 * Makes the file durable under its final name: fsync and close the temp
 * file, rename it onto the path (MLREG_FILE_REPLACE) or link it there and
 * remove the temp name (MLREG_FILE_NOREPLACE), then fsync the directory
 * (best effort: some filesystems refuse fsync on a directory, and the file
 * is in place by then). Always frees @p f; on failure the temp file is
 * removed and the path is as it was.
 * @return 0; MLREG_EEXISTS (NOREPLACE and the path appeared meanwhile);
 *         MLREG_EIO.
 */
int mlreg_file_commit(mlreg_file *f);

/** Removes the temp file and frees @p f; NULL is a no-op. */
void mlreg_file_abort(mlreg_file *f);

/**
 * Creates directory @p path and its missing parents, each mode 0700 (what
 * mlreg keeps on disk is private to the server's user), like `mkdir -p`;
 * existing directories are left as they are. @p what names the directory
 * in the message ("create <what> directory <path>: <reason>"). 0;
 * MLREG_ENOSPACE (disk or quota full); MLREG_EIO; MLREG_ENOMEM.
 */
int mlreg_file_mkdirs(const char *path, const char *what);

/**
 * Reads the regular file open on @p fd (at most @p max bytes) into *out and
 * *len_out. Does not close @p fd.
 * @param out malloc'd, NUL-terminated, owned by the caller (free()); NULL on
 *        failure
 * @param name names the file in messages
 * @return 0; MLREG_EIO ("NAME: not a regular file", "NAME: larger than MAX
 *         bytes", or the read error); MLREG_ENOMEM.
 */
int mlreg_file_read_fd(char **out, size_t *len_out, int fd, const char *name, size_t max);

/**
 * Opens @p path (never blocking on a FIFO) and reads it as
 * mlreg_file_read_fd() does, messages naming @p path.
 * @return 0; MLREG_ENOTFOUND ("PATH: missing"); otherwise as
 *         mlreg_file_read_fd().
 */
int mlreg_file_read(char **out, size_t *len_out, const char *path, size_t max);

#endif
