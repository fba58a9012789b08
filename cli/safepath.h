/* safepath.h: reaching a release file below a directory one path segment
 * at a time, through directory descriptors, never following a symbolic
 * link (safepath.c). What pull and check use for every title: a title may
 * be a relative path ("tokenizer/vocab.json", mlreg/names.h), and a path
 * joined to DIR as a string would follow a symbolic link planted at
 * DIR/tokenizer out of DIR. Internal to cli/.
 *
 * Functions return 0 or a negative MLREG_E* code with the message set.
 */
#ifndef MLREG_CLI_SAFEPATH_H
#define MLREG_CLI_SAFEPATH_H

#include <stddef.h>

/** Create a missing directory segment (mkdirat, mode 0777 & ~umask). */
#define CLI_SAFEPATH_CREATE 1
/** With CLI_SAFEPATH_CREATE: a symbolic link, regular file or other
 *  non-directory where a directory segment should be is removed (unlinkat,
 *  never followed) and replaced by a directory. A directory is never
 *  removed. */
#define CLI_SAFEPATH_FORCE 2

/**
 * The directories cli_safepath_parent() created, as paths relative to the
 * directory it started from, in the order they were made ("a", "a/b").
 * Zero-initialise; free with cli_safepath_made_free().
 */
typedef struct {
    char **dirs;
    size_t n, cap;
} cli_safepath_made;

/** Frees what @p m holds and empties it (the directories stay). */
void cli_safepath_made_free(cli_safepath_made *m);

/**
 * Opens the directory that holds the last segment of @p rel below the
 * directory @p dirfd: every segment but the last is opened with
 * openat(parent, seg, O_NOFOLLOW|O_DIRECTORY|O_CLOEXEC). *fd_out receives a
 * new descriptor (close() it) and *leaf_out points at the last segment in
 * @p rel. With @p flags CLI_SAFEPATH_CREATE a missing segment is made
 * (recorded in @p made when not NULL); with CLI_SAFEPATH_FORCE as well, a
 * non-directory in its place is replaced (see above).
 *
 * @return 0; MLREG_EINVALID for an empty segment, ".", "..", a leading,
 *         trailing or doubled '/', or a segment longer than NAME_MAX
 *         (checked before anything is touched); MLREG_ENOTFOUND when a
 *         directory segment is missing (without CREATE); MLREG_EDENIED
 *         when a symbolic link or a non-directory is where a directory
 *         should be ("in the way"), *way_len_out (may be NULL) then holds
 *         the length of the prefix of @p rel that names it; MLREG_EIO for
 *         other failures. Messages name the path relative to @p dirfd.
 *         On failure *fd_out is -1 and the directories made stay (they
 *         are in @p made).
 */
int cli_safepath_parent(int *fd_out, const char **leaf_out, size_t *way_len_out, int dirfd,
                        const char *rel, int flags, cli_safepath_made *made);

/**
 * Removes the directory @p rel below @p dirfd if it is empty (reached as
 * cli_safepath_parent() does, never through a symbolic link), then each of
 * its parents that became empty, up to but not including @p dirfd itself.
 * Stops at the first that is not empty or cannot be removed: never removes
 * a directory holding anything. @return how many directories it removed.
 */
int cli_safepath_prune(int dirfd, const char *rel);

/**
 * Removes, newest first, the directories @p m lists that are empty now,
 * and empties @p m: what a failed pull made and did not fill.
 */
void cli_safepath_made_undo(int dirfd, cli_safepath_made *m);

/**
 * Opens the regular file @p leaf of directory @p dirfd for reading without
 * following a symbolic link and without blocking on a FIFO or device that
 * was swapped in after it was looked at: opened O_NONBLOCK, checked to be a
 * regular file on the descriptor itself, then made blocking again.
 * @return the descriptor (the caller closes it), or -1 with errno set
 *         (EINVAL when it is not a regular file).
 */
int cli_safepath_open_regular(int dirfd, const char *leaf);

#endif
