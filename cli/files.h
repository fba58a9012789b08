/* files.h: the local-file helpers of the client commands (files.c).
 * Internal to cli/.
 *
 * Functions follow the house rule: 0 or a negative MLREG_E* code, with the
 * message set where the failure is found; messages name the file.
 */
#ifndef MLREG_CLI_FILES_H
#define MLREG_CLI_FILES_H

#include <stddef.h>

/**
 * Writes all @p len bytes of @p data to @p fd, retrying on EINTR and short
 * writes. MLREG_ENOSPACE when the disk is full, MLREG_EIO otherwise, with a
 * message naming @p name.
 */
int cli_write_all(int fd, const void *data, size_t len, const char *name);

/** fsync()s directory @p dir, so renames and creations in it are durable. 0 or MLREG_EIO. */
int cli_sync_dir(const char *dir);

/** "DIR/NAME" into @p out (@p len bytes). 0 or MLREG_EIO "DIR/NAME: path too long". */
int cli_path_join(char *out, size_t len, const char *dir, const char *name);

/**
 * Replaces @p path by @p len bytes of @p data, mode 0644: a fresh temp file
 * next to it (mkstemp: O_EXCL, never someone else's file), fsync, rename.
 * A reader sees the old file or the new one, never part of one. On failure
 * the temp file is removed. 0 or MLREG_EIO / MLREG_ENOSPACE.
 */
int cli_file_write_atomic(const char *path, const void *data, size_t len);

/**
 * Creates the new file DIR/NAME (never replacing anything, never following
 * a symbolic link) with @p len bytes of @p data, fsync'ed. 0 or MLREG_EIO /
 * MLREG_ENOSPACE.
 */
int cli_file_write_new(const char *dir, const char *name, const void *data, size_t len);

#endif
