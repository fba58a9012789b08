/**
 * @file evaluations.h
 * @brief Independent evaluations: an eval report made after the push (a
 *        nightly job on a larger set), signed by the evaluator's Ed25519 key
 *        as a DSSE envelope around an in-toto statement, verified by the
 *        registry against its keyring and stored as an OCI referrer of the
 *        release (docs/evaluations.md).
 *
 * The statement (MLREG_INTOTO_STATEMENT_TYPE, promotions.h):
 *
 *     {"_type": "https://in-toto.io/Statement/v1",
 *      "subject": [{"name": "MODEL@VERSION", "digest": {"sha256": HEX}}],
 *      "predicateType": MLREG_EVALUATION_PREDICATE,
 *      "predicate": {"report": {...the eval report...},
 *                    "evaluated_at": RFC 3339,
 *                    "dataset_digest": "sha256:...",      (when the report names it)
 *                    "eval_code_digest": "sha256:..."}}   (likewise)
 *
 * wrapped in a DSSE envelope (dsse.h) of payloadType MLREG_DSSE_INTOTO_TYPE.
 * The subject digest is the release's manifest digest. Any key in the
 * keyring may attest: the evaluation is stored with the key's role and
 * whether the key was valid when it was attached, but only keys of role
 * MLREG_KEY_ROLE_EVALUATOR (and not revoked) make an evaluation that gates
 * may use (evaluations_internal.h).
 *
 * LMDB layout (the `evaluations` table, tables.h; evaluations.c alone
 * builds its keys):
 *
 *   evaluations   release digest hex (64) ‖ be64 audit seq -> the record
 *                 {"seq","model","version","digest","key_id","public_key",
 *                  "key_name","role","trusted_at_attach","evaluator_at_attach",
 *                  "attached_at","attached_ns","attached_by","evaluated_at",
 *                  "dataset","dataset_digest","eval_code_digest","metrics",
 *                  "envelope","referrer"}
 *
 * The referrer (artifactType MLREG_ARTIFACT_EVALUATION, the empty config, one
 * MLREG_MT_DSSE_ENVELOPE layer holding the envelope's bytes as sent), its
 * blob links, the record and the "evaluation.attest" audit entry are
 * written in one change (registry_internal.h); the envelope blob is
 * committed to the store before it.
 */
#ifndef MLREG_EVALUATIONS_H
#define MLREG_EVALUATIONS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/registry.h"

/** The predicateType of an evaluation statement. */
#define MLREG_EVALUATION_PREDICATE "urn:mlreg:evaluation:v1"
/** artifactType of an evaluation referrer (its layer is the DSSE envelope). */
#define MLREG_ARTIFACT_EVALUATION "application/vnd.mlreg.evaluation.v1+dsse"
/** The key role whose evaluations gates may use; its signatures never
 *  count as release signatures (keyring.h). */
#define MLREG_KEY_ROLE_EVALUATOR "evaluator"
/** Largest envelope accepted, in bytes: a report at its limit
 *  (MLREG_MAX_EVAL_REPORT_BYTES) in base64, with room for the rest. */
#define MLREG_EVALUATION_MAX_BYTES (2u * 1024 * 1024)
/** Annotation of an evaluation referrer: the signing key's id. */
#define MLREG_ANN_EVALUATION_KEY_ID "org.mlreg.evaluation.key-id"

/**
 * Builds the statement of an evaluation of release @p model@@p version
 * (manifest digest @p digest, "sha256:<hex>") from the eval report in
 * @p report_len bytes of @p report, evaluated at @p evaluated_ns
 * (nanoseconds since the epoch): the report is checked with
 * mlreg_eval_report_parse() first (its errors), and its dataset_digest and
 * eval_code_digest are copied into the predicate. *out (malloc'd, owned by
 * the caller: free()) is the payload to sign, compact JSON with sorted
 * keys, *len_out its length. 0, MLREG_EINVALID, MLREG_ETOOBIG, MLREG_ENOMEM.
 */
int mlreg_evaluation_statement(char **out, size_t *len_out, const char *model, const char *version,
                               const char *digest, const char *report, size_t report_len,
                               int64_t evaluated_ns);

/**
 * Verifies and stores the DSSE envelope in @p len bytes of @p envelope as an
 * evaluation of release @p model@@p version, recorded as done by @p actor.
 * Checked before anything is written: the size (MLREG_ETOOBIG over
 * MLREG_EVALUATION_MAX_BYTES), the envelope's form and payloadType, one
 * signature whose key id is in the keyring (MLREG_EINVALID "... not in the
 * keyring" otherwise) and whose signature verifies with that key
 * (MLREG_EMISMATCH), the statement's _type, predicateType, its one subject
 * naming this release's manifest digest (MLREG_EMISMATCH when another), the
 * report (mlreg_eval_report_parse()), evaluated_at and the digests. A
 * purged release is MLREG_EGONE; a withdrawn one still takes evaluations.
 * *out (owned by the caller) is the stored evaluation as
 * mlreg_evaluations_list() shows one; *created_out 1 when stored now, 0
 * when the same envelope was stored already (nothing written).
 */
int mlreg_evaluation_attest(json_t **out, int *created_out, mlreg_registry *reg, const char *model,
                            const char *version, const char *envelope, size_t len,
                            const char *actor);

/**
 * The evaluations of release @p model@@p version, oldest first:
 * {"model","version","digest","evaluations":[{"seq","key_id","key_name",
 * "role","status","counts","trusted_at_attach","attached_at","attached_by",
 * "evaluated_at","dataset","dataset_digest","eval_code_digest","metrics",
 * "envelope","referrer"}]}, where "status" is what the key is now
 * (mlreg_sigstatus_name()) and "counts" whether gates may use it now (a
 * valid key of role evaluator). A purged release's evaluations stay listed.
 * *out owned by the caller. 0, MLREG_ENOTFOUND, MLREG_EINVALID, MLREG_EIO.
 */
int mlreg_evaluations_list(json_t **out, mlreg_registry *reg, const char *model,
                           const char *version);

#endif
