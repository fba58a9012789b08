/* evaluations_internal.h: what the other registry files (the gates, inside
 * a promotion's write transaction) ask evaluations.c. No other module
 * includes it.
 */
#ifndef MLREG_EVALUATIONS_INTERNAL_H
#define MLREG_EVALUATIONS_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/digest.h"
#include "mlreg/gates.h"
#include "mlreg/keyring.h"
#include "mlreg/meta.h"
#include "mlreg/sign.h"
#include "mlreg/time.h"

/** One stored evaluation, as the gates read it. Free with
 *  mlreg_registry__evaluation_free(). */
typedef struct {
    uint64_t seq;        /**< the audit seq of its evaluation.attest entry */
    int64_t attached_ns; /**< when the registry stored it */
    char attached_at[MLREG_TIME_STRLEN];
    char evaluated_at[MLREG_TIME_STRLEN]; /**< as the statement says it */
    char key_id[MLREG_KEYID_HEXLEN + 1];
    char key_name[MLREG_CONFIG_KEY_NAME_MAX + 1]; /**< the keyring's name now */
    /** "sha256:<hex>" or empty when the report names none. */
    char dataset_digest[MLREG_DIGEST_STRLEN + 1];
    char eval_code_digest[MLREG_DIGEST_STRLEN + 1];
    const char *dataset; /**< the report's "dataset", or NULL; points into @c doc */
    /** The metrics as mlreg_gate_release holds them: n_metrics entries whose
     *  names point into @c doc (valid until the free). */
    mlreg_metric *metrics;
    size_t n_metrics;
    json_t *doc; /**< the stored record, owning the strings above */
} mlreg_evaluation;

/**
 * The newest evaluation (highest seq) of the release whose manifest digest
 * is @p hex (64 lowercase hex) that counts as read in @p txn (a read or write
 * transaction, e.g. a promotion's): its key is in the keyring of @p kr now
 * with the same public key, has role MLREG_KEY_ROLE_EVALUATOR now, and is
 * not revoked (or was retired after the evaluation was attached). With
 * @p dataset_digest and/or @p eval_code_digest not NULL, only evaluations
 * naming exactly those digests are considered (to compare a candidate with
 * a baseline measured on the same data with the same code); NULL accepts
 * any, and "" only an evaluation that names no such digest. *out is owned by the caller
 * (mlreg_registry__evaluation_free()). 0; MLREG_ENOTFOUND when no evaluation counts (no message
 * set); MLREG_EIO (corrupt record); MLREG_ENOMEM.
 */
int mlreg_registry__evaluation_newest(mlreg_evaluation **out, mlreg_keyring *kr,
                                      mlreg_meta_txn *txn, const char *hex,
                                      const char *dataset_digest, const char *eval_code_digest);

/**
 * The confidence interval of metric @p m (its name set) from @p intervals,
 * the {"name": {"ci_low","ci_high"}} object a release record or an
 * evaluation record keeps from its eval report ("metric_intervals"; NULL:
 * none): m->has_ci, ci_low, ci_high. A bound that is not a number is NaN.
 * Pushed reports and evaluators' reports are read by this one function.
 */
void mlreg_registry__metric_ci(mlreg_metric *m, const json_t *intervals);

/** Frees an evaluation; NULL is a no-op. */
void mlreg_registry__evaluation_free(mlreg_evaluation *e);

/**
 * Whether manifest @p referrer ("sha256:<hex>") of release @p subject is
 * the OCI referrer of one of its stored evaluations: 1, 0, or an error.
 */
int mlreg_registry__evaluation_owns_referrer(mlreg_meta_txn *txn, const mlreg_digest *subject,
                                             const char *referrer);

/**
 * Whether blob @p digest is the envelope of one of the stored evaluations of
 * the release whose manifest digest is @p hex (64 hex): 1, 0, or an error.
 */
int mlreg_registry__evaluation_holds_blob(mlreg_meta_txn *txn, const char *hex,
                                          const mlreg_digest *digest);

#endif
