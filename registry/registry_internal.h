/* registry_internal.h: registry.c's helpers for the other registry files
 * (signatures.c, promotions.c) that must store manifests and blob links
 * inside a write transaction of their own, so that a signature record or a
 * promotion attestation, its OCI referrer manifest and the referrer's index
 * entry land in ONE transaction. No other module includes it. The key layout
 * stays registry.c's business.
 */
#ifndef MLREG_REGISTRY_INTERNAL_H
#define MLREG_REGISTRY_INTERNAL_H

#include "mlreg/digest.h"
#include "mlreg/meta.h"
#include "mlreg/registry.h"

/** A manifest PUT prepared outside any transaction. Opaque. */
typedef struct registry_manifest_plan registry_manifest_plan;

/**
 * Prepares storing @p len bytes of manifest @p body (pushed with
 * @p content_type) in @p repo by digest: parses and validates it exactly as
 * mlreg_registry_manifest_put() does, checks that its blobs are in the store
 * and serialises the records. Blob visibility in @p repo is NOT checked here:
 * registry_manifest_plan_put() checks it inside the caller's transaction, so
 * the caller may link the blobs in that same transaction first. *out is owned
 * by the caller (registry_manifest_plan_free()). Errors as
 * mlreg_registry_manifest_put().
 */
int registry_manifest_plan_new(registry_manifest_plan **out, mlreg_registry *reg, const char *repo,
                               const char *content_type, const char *body, size_t len);

/**
 * Stores a prepared manifest inside the caller's write transaction @p txn:
 * repository entry, manifest bytes, referrer index entry (when it has a
 * subject) — the same writes as mlreg_registry_manifest_put(), which
 * includes refusing blobs not visible in the repository
 * (MLREG_EBLOBUNKNOWN). Does not commit. out->created is 0 when identical
 * content was already stored.
 */
int registry_manifest_plan_put(mlreg_manifest_put_result *out, mlreg_meta_txn *txn,
                               const registry_manifest_plan *plan);

/** Frees a plan; NULL is a no-op. */
void registry_manifest_plan_free(registry_manifest_plan *plan);

/**
 * Writes @p len bytes of @p data to the blob store and commits it (durable
 * before any metadata names it); *out receives its digest. Storing bytes
 * already stored is harmless. Errors as mlreg_blob_writer_commit().
 */
int registry_blob_put(mlreg_digest *out, mlreg_registry *reg, const void *data, size_t len);

/**
 * Manifest @p digest of @p repo as recorded in @p txn: *out owned by the
 * caller (mlreg_manifest_data_free()). 0, MLREG_ENOTFOUND, MLREG_EIO.
 */
int registry_manifest_load_txn(mlreg_manifest_data **out, mlreg_meta_txn *txn, const char *repo,
                               const mlreg_digest *digest);

/** Links a committed blob into @p repo inside @p txn (idempotent). */
int registry_blob_link_txn(mlreg_meta_txn *txn, const char *repo, const mlreg_digest *digest);

/**
 * Digest of release @p model@@p version as recorded in @p txn:
 * 0, MLREG_ENOTFOUND (no release of that version), MLREG_EIO (corrupt record).
 */
int registry_release_digest_txn(mlreg_digest *out, mlreg_meta_txn *txn, const char *model,
                                const char *version);

/**
 * Whether manifest @p referrer ("sha256:<hex>") of release @p subject is the
 * OCI form of one of the release's stored signatures (signatures.c owns the
 * signatures db's layout): 1 when it is, 0 when not, or an error.
 */
int registry_signature_owns_referrer(mlreg_meta_txn *txn, const mlreg_digest *subject,
                                     const char *referrer);

#endif
