/**
 * @file backup.h
 * @brief An online backup of a registry on the fs backend (the embedded
 *        default): its index and audit log (LMDB), every blob the index
 *        references, and its log key, into a new directory that
 *        `mlreg serve --data` opens as it is.
 *
 * The index is copied first, as one committed state, while the server goes
 * on serving and writing. Then every blob that state links or references is
 * copied (or hard-linked) from the store, each re-hashed on the way: a
 * damaged blob is not copied and is reported. A blob the copied index needs
 * that is gone from the store by then (a purge or a collection after the
 * copy) makes the backup copy the index again, up to a few times, since
 * the newer state no longer needs it. Blobs are immutable and named by
 * their digest, so a blob copied by an earlier attempt stays valid.
 *
 * On the s3 backend the bucket is the registry's truth and a node's data
 * directory needs no backup (docs/scaling.md): this is for the fs backend.
 */
#ifndef MLREG_BACKUP_H
#define MLREG_BACKUP_H

#include <jansson.h>

/** How a backup is taken. */
typedef struct {
    int link;              /**< hard-link blobs instead of copying them (same filesystem) */
    unsigned int attempts; /**< index copies at most (0: 3) */
} mlreg_backup_opts;

/**
 * Backs up the registry in data directory @p data_dir into directory
 * @p dest, which must not exist or be empty, and must not be inside
 * @p data_dir. @p dest gets `meta/data.mdb`, `blobs/sha256/..`, `audit/`
 * (the log key: the backup is as secret as the data directory; everything
 * is created 0700/0600) and `backup.json`, the report below.
 * @param report_out (owned by the caller) {"format":1, "source", "time",
 *        "mlreg_version", "log_entries", "blobs", "bytes", "linked",
 *        "attempts", "missing":[hex], "damaged":[hex]}: "missing" lists
 *        blobs the copied index needs that the store does not hold (after
 *        the last attempt), "damaged" those whose bytes do not hash to their
 *        name; both empty for a complete backup
 * @return 0 (also with blobs missing or damaged: see the report);
 *         MLREG_EINVALID (@p data_dir holds no index, @p dest is not empty
 *         or lies inside @p data_dir); MLREG_EIO, MLREG_ENOSPACE,
 *         MLREG_ENOMEM (messages name the path). What was written to
 *         @p dest stays there on failure.
 */
int mlreg_backup(json_t **report_out, const char *data_dir, const char *dest,
                 const mlreg_backup_opts *opts);

#endif
