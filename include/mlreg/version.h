/**
 * @file version.h
 * @brief What this binary is: the release version and the commit it was
 *        built from.
 *
 * Both are set at build time (the Makefile runs scripts/build_info.sh: the
 * VERSION file at the top of the source tree and `git rev-parse` of the
 * checkout), in one object, so a new commit rebuilds that object alone.
 */
#ifndef MLREG_VERSION_H
#define MLREG_VERSION_H

/** The release version, "0.1.0" (static string). */
const char *mlreg_version(void);
/** The commit: 12 hex digits of the git commit, with "-dirty" when the
 *  tree had uncommitted changes, or "unknown" for a build outside git
 *  (static string). */
const char *mlreg_version_commit(void);

#endif
