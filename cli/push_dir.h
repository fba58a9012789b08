/* push_dir.h: what `mlreg push MODEL@VERSION DIR/` sends: the plan of a
 * directory's files with their kinds (push_dir.c). Internal to cli/.
 *
 * Functions follow the house rule: 0 or a negative MLREG_E* code, with the
 * message set where the failure is found; messages name the file.
 */
#ifndef MLREG_CLI_PUSH_DIR_H
#define MLREG_CLI_PUSH_DIR_H

#include <stddef.h>

#include "mlreg/names.h"

/** The file in DIR that configures a directory push; never pushed itself. */
#define PUSH_DIR_CONFIG "mlreg.json"
/** Largest PUSH_DIR_CONFIG, in bytes. */
#define PUSH_DIR_CONFIG_MAX (64u * 1024)

/** One file of the plan. */
typedef struct {
    char *path;       /**< "DIR/REL" (a link: its target), malloc'd, for messages */
    const char *name; /**< REL, the release title ("onnx/model.onnx"), points into path */
    int fd;           /**< the file, opened by the walk (owned; -1 once taken) */
    char kind[MLREG_KIND_MAX + 1];
    const char
        *rule; /**< why this kind: "mlreg.json 'GLOB'" or the name pattern; static or in the plan */
} push_dir_file;

/** The files of a directory tree, sorted by title (strcmp). */
typedef struct {
    push_dir_file *files;
    size_t nfiles;
    size_t cap;
    char **rules; /**< the rule strings made for mlreg.json globs (owned) */
    size_t nrules;
} push_dir_plan;

/**
 * Plans the push of directory @p dir and its subdirectories: every entry of
 * the tree is either a file of the plan, titled by its path relative to
 * @p dir ("tokenizer/vocab.json") and open (push_dir_file.fd), or named on
 * stderr as not pushed (PUSH_DIR_CONFIG at the top, hidden entries with
 * everything below them, entries an "exclude" glob of PUSH_DIR_CONFIG
 * matches, a directory with everything below it, and the files in @p taken:
 * paths given with an explicit flag, compared by device and inode). The
 * walk opens each directory relative to its parent's descriptor with
 * O_NOFOLLOW, so a directory swapped for a symbolic link while it runs is
 * never followed. Kinds come from PUSH_DIR_CONFIG's "files" globs first,
 * then from the base name (docs/cli-push.md). Refused (MLREG_EINVALID,
 * every offender named): names no rule knows, paths that break the title
 * rule (more than MLREG_TITLE_DEPTH_MAX segments, over MLREG_TITLE_MAX
 * bytes, mlreg_title_validate()), a PUSH_DIR_CONFIG below the top,
 * symbolic links that leave @p dir or do not lead to a regular file, other
 * special files, entries that change while being read, a malformed
 * PUSH_DIR_CONFIG. On success *out is filled (push_dir_plan_clear()).
 */
int push_dir_plan_build(push_dir_plan *out, const char *dir, const char *const *taken,
                        size_t ntaken);

/** Frees what a plan holds and closes the descriptors it still owns; the
 * plan is empty afterwards. */
void push_dir_plan_clear(push_dir_plan *p);

/**
 * The kind the base name @p name gets in a directory push without
 * PUSH_DIR_CONFIG (the built-in patterns), or NULL when no pattern knows it. *rule_out is
 * the pattern that matched (static).
 */
const char *push_dir_kind_of(const char **rule_out, const char *name);

#endif
