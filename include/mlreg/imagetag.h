/**
 * @file imagetag.h
 * @brief The container image reference of a release: `REPO:VERSION-GITSHA7`,
 *        as the deploy step tags the image it builds for that model version
 *        and records it against the release (docs/promotions-api.md, "Image
 *        bindings"). Pure string logic, no I/O.
 */
#ifndef MLREG_IMAGETAG_H
#define MLREG_IMAGETAG_H

#include <stddef.h>

/** Longest image repository accepted (the distribution reference limit). */
#define MLREG_IMAGE_REPO_MAX 255
/** Longest tag (OCI tag grammar). */
#define MLREG_IMAGE_TAG_MAX 128
/** Buffer size that holds any "REPO:TAG" plus its NUL. */
#define MLREG_IMAGE_REF_BUFSIZE (MLREG_IMAGE_REPO_MAX + 1 + MLREG_IMAGE_TAG_MAX + 1)

/**
 * Checks an image repository as `docker tag` and OCI registries take it: an
 * optional registry host — lowercase DNS labels separated by '.', or "localhost",
 * optionally ":PORT" (1..65535) — then '/', then a path in the OCI
 * repository name grammar (lowercase). The first component is a host only
 * when it holds a '.' or a ':' or is "localhost" (the docker rule, so
 * "team/app" is a path). Bracketed IPv6 hosts are not accepted. At most
 * MLREG_IMAGE_REPO_MAX bytes in all.
 * @return 0, or MLREG_EINVALID with a message naming the wrong part.
 */
int mlreg_image_repo_validate(const char *repo);

/**
 * Derives the image tag of release @p version built from commit @p git_sha:
 * "VERSION-" followed by the first 7 hex digits of the sha, checked against
 * the OCI tag grammar (at most 128 characters).
 * @param out     receives the tag and its NUL
 * @param outlen  size of @p out (MLREG_IMAGE_TAG_MAX + 1 always suffices)
 * @param git_sha 7 to 64 lowercase hex digits
 * @return 0; MLREG_EINVALID when the sha is not lowercase hex of 7 to 64
 *         digits, the version is not a tag, or the tag would be too long
 *         (message set); *out is "" on failure.
 */
int mlreg_image_tag_derive(char *out, size_t outlen, const char *version, const char *git_sha);

/**
 * "REPO:TAG" with TAG from mlreg_image_tag_derive() and REPO checked with
 * mlreg_image_repo_validate().
 * @param out    receives the reference (MLREG_IMAGE_REF_BUFSIZE suffices)
 * @return 0 or MLREG_EINVALID (message set); *out is "" on failure.
 */
int mlreg_image_ref_derive(char *out, size_t outlen, const char *repo, const char *version,
                           const char *git_sha);

#endif
