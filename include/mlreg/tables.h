/**
 * @file tables.h
 * @brief The registry's LMDB tables: their names on disk and the one file
 *        that owns each table's key layout.
 *
 * The metadata store (meta.h) knows bytes only; the registry names its
 * tables when it opens the store (mlreg_tables_open()). Each table's keys
 * are built and parsed by its owner alone; every other file reaches the
 * table through the owner's functions (registry_internal.h,
 * promotions_internal.h), so a layout changes in one place. The "meta"
 * table (MLREG_DB_META, meta.h) is the store's own; its counters are named
 * by the files that bump them.
 */
#ifndef MLREG_TABLES_H
#define MLREG_TABLES_H

#include <stddef.h>

#include "mlreg/meta.h"

/** The registry's tables, indices for mlreg_meta_get() and friends. */
enum {
    MLREG_DB_REPOS = 1,     /**< "repos": repository (model) names; registry.c */
    MLREG_DB_REPO_BLOBS,    /**< "repo_blobs": which repository may see which blob; registry.c */
    MLREG_DB_MANIFESTS,     /**< "manifests": manifest bytes + content type; manifests.c */
    MLREG_DB_TAGS,          /**< "tags": repo + tag -> manifest digest; manifests.c */
    MLREG_DB_REFERRERS,     /**< "referrers": repo + subject + referrer; manifests.c */
    MLREG_DB_RELEASES,      /**< "releases": model + version -> release record; registry.c */
    MLREG_DB_SIGNATURES,    /**< "signatures": release hex + key id -> signature; signatures.c */
    MLREG_DB_KEYS,          /**< "keys": key id -> keyring record; keyring.c */
    MLREG_DB_KEY_EVENTS,    /**< "key_events": be64 seq -> key event JSON; keyring.c */
    MLREG_DB_STAGES,        /**< "stages": model + stage -> stage pointer; stages.c */
    MLREG_DB_STAGE_HISTORY, /**< "stage_history": model + stage + be64 seq; stages.c */
    MLREG_DB_PROMOTIONS,    /**< "promotions": model + be64 seq -> promotion record; stages.c */
    MLREG_DB_APPROVALS,     /**< "approvals": release hex + stage + approver; approvals.c */
    MLREG_DB_IMAGES,        /**< "images": release hex + be64 seq -> image binding; images.c */
    MLREG_DB_AUDIT,         /**< "audit": be64 seq -> audit entry; audit.c */
    MLREG_DB_AUDIT_TREE,    /**< "audit_tree": level + be64 index -> subtree hash; audit.c */
    MLREG_DB_ATTESTATIONS,  /**< "attestations": release hex + be64 seq -> envelope; attestations.c
                             */
    MLREG_DB_BLOB_REFS,     /**< "blob_refs": blob hex + repo + manifest hex; manifests.c */
    MLREG_DB_GC_BLOBS,      /**< "gc_blobs": blob hex -> collection state; gc.c */
    MLREG_DB_TOKENS,        /**< "tokens": tokens made at runtime, by hash and by name; tokens.c */
    MLREG_DB_TOKEN_USAGE,   /**< "token_usage": hash -> last use on this node (not history,
                                 not replicated, not audited); tokens.c */
    MLREG_DB_EVALUATIONS,   /**< "evaluations": release hex + be64 seq -> evaluation;
                                 evaluations.c */
    MLREG_DB_END            /**< one past the last table */
};

/**
 * Opens the metadata store in directory @p dir (map size @p map_size bytes,
 * 0 = default) with the registry's tables, as mlreg_meta_open() does. *out
 * owned by the caller (mlreg_meta_close()). Errors as mlreg_meta_open().
 */
int mlreg_tables_open(mlreg_meta **out, const char *dir, size_t map_size);

#endif
