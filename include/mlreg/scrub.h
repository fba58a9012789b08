/**
 * @file scrub.h
 * @brief Re-hashing the blob store: finding damaged and missing blobs,
 *        naming the releases that use them, and moving damaged ones aside.
 *
 * Nothing re-hashes a blob on the server's read path (fs GETs go out by
 * sendfile, s3 GETs may redirect): clients verify what they receive. A
 * scrub is the server's own check. It reads every stored blob (or every
 * blob one model references) through the store, hashes it as the store
 * hashed it on the way in, and compares the digest with the blob's name. A
 * damaged blob is quarantined (mlreg_blobstore_quarantine()), so a HEAD of
 * it answers 404 and the next push of the same file uploads it again, which
 * repairs every release sharing it.
 */
#ifndef MLREG_SCRUB_H
#define MLREG_SCRUB_H

#include <jansson.h>
#include <stdint.h>

#include "mlreg/registry.h"

/** The most digests of each kind a scrub's audit entry lists (the counts are always there). */
#define MLREG_SCRUB_AUDIT_DIGESTS 100
/** The most releases the report names per blob (then "more_releases"). */
#define MLREG_SCRUB_RELEASES_MAX 100

/** What to scrub and how; all zero: every blob, unlimited, quarantining. */
typedef struct {
    const char *model;              /**< only the blobs this model references; NULL: all */
    uint64_t rate_bytes_per_second; /**< read at most this fast; 0 = unlimited */
    int dry_run;                    /**< report only: quarantine nothing */
    const char *actor;              /**< who asked (audit entry); NULL = local */
    /** Polled between reads and while waiting for the rate limit: non-zero
     *  ends the scrub early (the report says "stopped"). May be NULL. */
    int (*should_stop)(void *payload);
    void *stop_payload;
} mlreg_scrub_opts;

/**
 * Scrubs @p reg's blob store (see the file comment) and builds the report,
 * a new JSON object owned by the caller (*out):
 * `{"model": M|null, "dry_run": bool, "stopped": bool, "checked": N,
 *   "bytes": N, "seconds": X, "quarantined": N,
 *   "corrupt": [{"digest", "releases": ["M@V", ...], "more_releases"?: N,
 *                "quarantined": bool, "quarantine"?: name, "error"?: text}],
 *   "missing": [{"digest", "releases": [...], "more_releases"?: N}]}`.
 * A corrupt blob is one whose bytes hash to another digest (quarantined
 * unless @c dry_run), or one that cannot be read ("error"; left in place);
 * a missing blob is one a manifest references or a repository links that
 * the store does not hold. Releases are `MODEL@VERSION`s whose manifest,
 * files, config, signatures or attestations are that blob.
 *
 * When something was found, one audit entry `scrub` records the counts and
 * the first MLREG_SCRUB_AUDIT_DIGESTS digests of each kind
 * (docs/audit-api.md); a clean scrub records nothing. No write transaction
 * is held while blobs are read.
 * One scrub runs at a time in a process.
 * @return 0 (also when damage was found: read the report); MLREG_ENOTFOUND
 *         (no model @c model), MLREG_EINVALID (bad model name),
 *         MLREG_EUNAVAILABLE (another scrub is running); an error listing
 *         the store or recording the entry.
 */
int mlreg_registry_scrub(json_t **out, mlreg_registry *reg, const mlreg_scrub_opts *opts);

/** 1 when report @p report found a corrupt or missing blob, else 0. */
int mlreg_scrub_report_found(const json_t *report);

#endif
