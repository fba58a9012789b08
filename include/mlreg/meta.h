/**
 * @file meta.h
 * @brief LMDB metadata: one environment, named databases, one write
 *        transaction per mutation.
 *
 * The environment lives in a directory (LMDB's standard `data.mdb` and
 * `lock.mdb` inside). Keys and values are opaque bytes; the registry defines
 * their layout. Values returned by get/iteration are COPIES (malloc) or
 * pointers valid only inside the callback, never raw LMDB pointers that
 * outlive their transaction. MDB_MAP_FULL becomes MLREG_ENOSPACE with a clear
 * message ("metadata map full (map_size=N bytes); raise limits.map_size").
 * A write transaction is used by one thread at a time (LMDB's rule); read
 * transactions may run concurrently from many threads (MDB_NOTLS is set).
 */
#ifndef MLREG_META_H
#define MLREG_META_H

#include <stddef.h>
#include <stdint.h>

/** Named databases. The names in LMDB are the lowercase words after MLREG_DB_. */
typedef enum {
    MLREG_DB_META = 0,      /**< "meta": schema_version and other singletons */
    MLREG_DB_REPOS,         /**< "repos": repository (model) names */
    MLREG_DB_REPO_BLOBS,    /**< "repo_blobs": which repository may see which blob */
    MLREG_DB_MANIFESTS,     /**< "manifests": manifest bytes + content type by repo and digest */
    MLREG_DB_TAGS,          /**< "tags": repo + tag -> manifest digest */
    MLREG_DB_REFERRERS,     /**< "referrers": repo + subject digest + referrer digest */
    MLREG_DB_RELEASES,      /**< "releases": model + version -> release record */
    MLREG_DB_UPLOADS,       /**< "uploads": upload sessions */
    MLREG_DB_SIGNATURES,    /**< "signatures": release digest hex + key id -> signature record */
    MLREG_DB_KEYS,          /**< "keys": key id -> keyring record (trust, revocation) */
    MLREG_DB_KEY_EVENTS,    /**< "key_events": big-endian sequence number -> key event JSON */
    MLREG_DB_STAGES,        /**< "stages": model + stage -> stage pointer JSON */
    MLREG_DB_STAGE_HISTORY, /**< "stage_history": model + stage + be64 seq -> history entry */
    MLREG_DB_PROMOTIONS, /**< "promotions": model + be64 seq -> promotion record (also refusals) */
    MLREG_DB_APPROVALS,  /**< "approvals": release digest hex + stage + approver -> approval */
    MLREG_DB_IMAGES,     /**< "images": release digest hex + be64 seq -> image binding */
    MLREG_DB_AUDIT,      /**< "audit": be64 seq -> audit entry (canonical JSON bytes) */
    MLREG_DB_AUDIT_TREE, /**< "audit_tree": level byte + be64 index -> complete-subtree hash */
    MLREG_DB_ATTESTATIONS, /**< "attestations": release digest hex + be64 seq -> DSSE envelope */
    MLREG_DB_COUNT
} mlreg_db;

/** Schema version written at creation and checked at open. Databases added
 *  later (signatures, keys, key_events, stages, stage_history, promotions,
 *  approvals, images, audit, audit_tree, attestations) are created empty when an older data
 *  directory is opened, which needs no new version. */
#define MLREG_META_SCHEMA_VERSION 1

typedef struct mlreg_meta mlreg_meta;
typedef struct mlreg_meta_txn mlreg_meta_txn;

/**
 * Opens (creating if needed) the environment in directory @p dir with map
 * size @p map_size bytes (0 = default 1 GiB). Writes the schema version on
 * creation; refuses (MLREG_EINVALID) a newer schema than this build knows.
 */
int mlreg_meta_open(mlreg_meta **out, const char *dir, size_t map_size);
/** Closes the environment; NULL is a no-op. No transaction may be open. */
void mlreg_meta_close(mlreg_meta *meta);

/** Begins a transaction: @p write non-zero for a write transaction. */
int mlreg_meta_txn_begin(mlreg_meta_txn **out, mlreg_meta *meta, int write);
/** Commits and frees the transaction (also on failure). */
int mlreg_meta_txn_commit(mlreg_meta_txn *txn);
/** Aborts and frees the transaction; NULL is a no-op. */
void mlreg_meta_txn_abort(mlreg_meta_txn *txn);

/**
 * Looks @p key up. On success *val_out is a malloc'd copy (caller frees) with
 * one extra NUL byte after *len_out bytes, so text values can be used as C
 * strings. 0, MLREG_ENOTFOUND, or another error.
 */
int mlreg_meta_get(void **val_out, size_t *len_out, mlreg_meta_txn *txn, mlreg_db db,
                   const void *key, size_t klen);

/** Stores @p key -> @p val. With @p no_overwrite, an existing key gives MLREG_EEXISTS. */
int mlreg_meta_put(mlreg_meta_txn *txn, mlreg_db db, const void *key, size_t klen, const void *val,
                   size_t vlen, int no_overwrite);

/**
 * Increments the counter @p name in the `meta` database (a be64 value; an
 * absent counter counts as 0) inside the write transaction @p txn and
 * stores the new value in *out, so the first call gives 1. Sequence numbers
 * taken this way are unique and increase in commit order.
 * @return 0; MLREG_EIO when the stored value is not 8 bytes; the errors of
 *         mlreg_meta_get() and mlreg_meta_put().
 */
int mlreg_meta_counter_next(uint64_t *out, mlreg_meta_txn *txn, const char *name);

/** Deletes @p key: 0 or MLREG_ENOTFOUND or another error. */
int mlreg_meta_del(mlreg_meta_txn *txn, mlreg_db db, const void *key, size_t klen);

/**
 * Called for each key/value during iteration. Pointers are valid only during
 * the call. Return 0 to continue, a positive value to stop (returned by the
 * iterator), a negative MLREG_E* to abort with that error.
 */
typedef int (*mlreg_meta_iter_cb)(const void *key, size_t klen, const void *val, size_t vlen,
                                  void *payload);

/**
 * Iterates, in key order, over the keys that start with @p prefix (plen may
 * be 0 for all keys) and are >= @p start (NULL to start at the prefix).
 * Returns 0 when the walk ended, the callback's positive stop value, or an error.
 */
int mlreg_meta_iter(mlreg_meta_txn *txn, mlreg_db db, const void *prefix, size_t plen,
                    const void *start, size_t slen, mlreg_meta_iter_cb cb, void *payload);

#endif
