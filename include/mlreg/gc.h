/**
 * @file gc.h
 * @brief Garbage collection of the blobs nothing references (docs/lifecycle.md).
 *
 * A blob is kept when a stored manifest references it (every release, OCI
 * manifest and referrer: signatures, attestations; releases a stage holds or
 * held are stored manifests too), or when it was written to the store or
 * linked into a repository less than the grace period ago (an upload in
 * progress, a push between its blobs and its manifest). Everything else is
 * collected: removed from every repository (one "gc.collect" audit entry per
 * batch), its bytes deleted, then a "gc.done" entry. A push that races a
 * collection either links the blob before the collection looks at it (then
 * it is young, or referenced) or is refused and uploads it again; it never
 * references a blob whose bytes are gone. Safe with several nodes sharing a
 * bucket: the entries go through the shared log like every change.
 *
 * With retention rules (retention.h) a collection first purges the
 * releases the rules do not keep (one release.purge change each), so their
 * files are collected by the same run, grace period permitting.
 */
#ifndef MLREG_GC_H
#define MLREG_GC_H

#include <jansson.h>
#include <stdint.h>

#include "mlreg/auth.h"
#include "mlreg/config.h"
#include "mlreg/gates.h"
#include "mlreg/registry.h"

/** gc.grace when the config does not say: a day. */
#define MLREG_GC_GRACE_DEFAULT (24 * 3600)
/** gc.stale_upload_age when the config does not say: a day. */
#define MLREG_GC_STALE_UPLOAD_DEFAULT (24 * 3600)

typedef struct {
    /** Blobs written or linked more recently are kept (seconds, >= 0). */
    int64_t grace_seconds;
    /** In-progress writes begun longer ago are removed (s3: their multipart
     *  uploads aborted); seconds, > 0. */
    long stale_upload_seconds;
    /** Report what a real run would delete, delete nothing, record nothing. */
    int dry_run;
    /** Who runs it (recorded in the entries); NULL = the local identity. */
    const char *actor;
    /** Retention rules (config `retention`, retention.h; borrowed); with
     *  any, the releases they do not keep are purged before the blobs are
     *  marked, and a dry run reports which. */
    const mlreg_config_retention *retention;
    size_t n_retention; /**< entries in @c retention */
    /** The stages (borrowed): what a purge checks holds against. Required
     *  for a real run with rules. */
    const mlreg_policy *policy;
    /** Who purges (an admin; mlreg_auth_scheduled() for the server's own
     *  runs). Required for a real run with rules. */
    const mlreg_identity *who;
} mlreg_gc_opts;

/**
 * Runs one collection. *report_out (caller owns, json_decref) holds:
 * "dry_run", "grace_seconds", "blobs_stored", "blobs_referenced",
 * "blobs_young" (kept for the grace period), "blobs_busy" (another
 * collection has them), "deleted" (array of {"digest", "size"}: deleted, or
 * that a real run would delete; at most 1000), "deleted_listed" (its
 * length), "deleted_truncated" (true when "deleted_blobs" is more),
 * "deleted_blobs", "bytes_reclaimed", "not_deleted" (array of {"digest",
 * "error"}: unlinked but their bytes could not be deleted; the next run
 * retries; at most 1000), "not_deleted_blobs" (how many in all),
 * "not_deleted_truncated", "stale_uploads" (in-progress writes removed, or
 * that would be), "entries" (seqs of the entries it recorded: the
 * "gc.collect" ones name every blob the run condemned, so every deleted
 * and not deleted one, listed or not; retention's "release.purge" ones),
 * "write_lock_ms_max" (the longest any of its changes held the write lock
 * that other writers wait on), "seconds", and "retention": null without
 * rules; with rules, on a dry run the plan of mlreg_retention_plan()
 * ({"purge": [...], "kept": [...]}), on a real run {"purged": [ITEM with
 * "seq", the release.purge entry], "kept": [...], "not_purged": [ITEM with
 * "error"]}: a release the purge refused (a stage took it meanwhile) is
 * reported and the run goes on. Memory: about 56 bytes per stored blob
 * while it runs, plus a report of at most 2000 blobs.
 * @return 0; MLREG_EEXISTS when a collection is running already in this
 *         process; MLREG_EINVALID (bad options); the store's or the log's
 *         error (what was recorded before it stays recorded, and the report
 *         is not returned).
 */
int mlreg_registry_gc(json_t **report_out, mlreg_registry *reg, const mlreg_gc_opts *opts);

#endif
