/**
 * @file audit_verify.h
 * @brief The audit log and audit bundles as a client checks them, offline:
 *        the hash chain of the entries, the Merkle root against a signed
 *        checkpoint, the bisection that names the first entry differing from
 *        the signed tree, a remembered checkpoint, and the `mlreg bundle`
 *        directory with its layout.
 *
 * docs/audit-api.md is the contract. These functions never print and never
 * reach a registry: `mlreg audit verify` feeds them what it downloaded,
 * `mlreg bundle` checks the directory it wrote, and the unit suite an
 * in-memory log. Consistency proofs come from the caller (mlreg_audit_proof_fn).
 * They return 0 or a negative MLREG_E* code with the message set; a log or
 * bundle that does not verify is MLREG_EMISMATCH with a message naming the
 * first bad entry or file.
 */
#ifndef MLREG_AUDIT_VERIFY_H
#define MLREG_AUDIT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "mlreg/checkpoint.h"
#include "mlreg/merkle.h"
#include "mlreg/sign.h"

/* ---- the bundle layout -------------------------------------------------------------
 *
 * One description for the writer (`mlreg bundle`) and the checker
 * (mlreg_audit_verify_bundle). Paths are relative to the bundle directory:
 *
 *     manifest.json                     the manifest bytes as stored
 *     manifest.json.minisig             the first signature (minisign -V works on it)
 *     signatures/<KEYID>[-<KEYHEX>].minisig   every signature that verifies
 *     files/<title>                     the release's files, named by their layer titles
 *     SHA256SUMS                        sha256sum's format: manifest.json and files/ *
 *     attestations/<seq>-<stage>.dsse.json    the promotion statements (DSSE)
 *     audit/log.pub                     the audit log key (minisign .pub)
 *     audit/checkpoint                  a signed checkpoint note
 *     audit/entries/<seq>.json          each audit entry about the manifest ...
 *     audit/entries/<seq>.proof.json    ... and its inclusion proof in that checkpoint
 */

#define MLREG_BUNDLE_MANIFEST     "manifest.json"
#define MLREG_BUNDLE_MANIFEST_SIG "manifest.json.minisig"
#define MLREG_BUNDLE_SIGNATURES   "signatures"
#define MLREG_BUNDLE_SIG_SUFFIX   ".minisig"
#define MLREG_BUNDLE_FILES        "files"
#define MLREG_BUNDLE_SUMS         "SHA256SUMS"
#define MLREG_BUNDLE_ATTESTATIONS "attestations"
#define MLREG_BUNDLE_DSSE_SUFFIX  ".dsse.json"
#define MLREG_BUNDLE_AUDIT        "audit"
#define MLREG_BUNDLE_LOG_KEY      "audit/log.pub"
#define MLREG_BUNDLE_CHECKPOINT   "audit/checkpoint"
#define MLREG_BUNDLE_ENTRIES      "audit/entries"
#define MLREG_BUNDLE_ENTRY_SUFFIX ".json"
#define MLREG_BUNDLE_PROOF_SUFFIX ".proof.json"
#define MLREG_BUNDLE_EVALUATIONS  "evaluations"

/** The directories of a bundle, each after its parent (an array initialiser). */
#define MLREG_BUNDLE_DIRS                                                                          \
    {                                                                                              \
        MLREG_BUNDLE_SIGNATURES, MLREG_BUNDLE_FILES, MLREG_BUNDLE_ATTESTATIONS,                    \
            MLREG_BUNDLE_AUDIT, MLREG_BUNDLE_ENTRIES, MLREG_BUNDLE_EVALUATIONS                     \
    }

/** Largest manifest.json, audit/checkpoint and inclusion proof file a bundle may hold. */
#define MLREG_BUNDLE_MANIFEST_MAX   (16u * 1024 * 1024)
#define MLREG_BUNDLE_CHECKPOINT_MAX (64u * 1024)
#define MLREG_BUNDLE_PROOF_MAX      (64u * 1024)

/** Size of a buffer that holds any path mlreg_bundle_entry_path() writes. */
#define MLREG_BUNDLE_ENTRY_PATH_MAX 64

/**
 * Writes the bundle path of audit entry @p seq ("audit/entries/SEQ.json"),
 * or with @p proof of its inclusion proof ("audit/entries/SEQ.proof.json"),
 * into @p out (MLREG_BUNDLE_ENTRY_PATH_MAX bytes).
 */
void mlreg_bundle_entry_path(char out[MLREG_BUNDLE_ENTRY_PATH_MAX], uint64_t seq, int proof);

/* ---- entries ------------------------------------------------------------------------ */

/** Entries 0 .. n-1 of a log, each its exact bytes (malloc'd, NUL-terminated). */
typedef struct {
    char **text;
    size_t *len;
    uint64_t n;
    uint64_t cap; /**< room in text and len */
} mlreg_audit_entries;

/** Makes @p e empty (no allocation). */
void mlreg_audit_entries_init(mlreg_audit_entries *e);
/** Frees every entry and leaves @p e empty. */
void mlreg_audit_entries_clear(mlreg_audit_entries *e);
/** Appends a copy of @p len bytes of @p text, owned by @p e. 0 or MLREG_ENOMEM. */
int mlreg_audit_entries_add(mlreg_audit_entries *e, const char *text, size_t len);

/**
 * Checks entry @p text (@p len bytes) standing at position @p seq, whose
 * predecessor's bytes are @p prev (@p prev_len; NULL for seq 0): valid JSON
 * object, byte-identical to its canonical form, "seq" equal to the
 * position, "prev" the hash of the previous entry's bytes (null for 0).
 * @return 0, or MLREG_EMISMATCH with the reason alone as message
 *         ("seq is 5, not 4").
 */
int mlreg_audit_verify_entry(const char *text, size_t len, uint64_t seq, const char *prev,
                             size_t prev_len);

/**
 * Answers the consistency proof between the trees of @p from and @p to
 * entries (GET /api/v1/audit/proof/consistency, or computed locally): the
 * hashes into @p proof (room for MLREG_MERKLE_PROOF_MAX), their count into
 * *len_out. 0 or a negative MLREG_E* code with the message set.
 */
typedef int (*mlreg_audit_proof_fn)(mlreg_merkle_hash *proof, size_t *len_out, void *ctx,
                                    uint64_t from, uint64_t to);

/**
 * The first entry that differs from the signed tree @p cp, given the local
 * leaf hashes @p leaves[0 .. n-1] (n < cp->size when entries are missing):
 * the largest m <= min(n, cp->size) whose prefix agrees with the signed
 * tree, judged with consistency proofs from @p fn (prefix m agrees iff the
 * proof from m to cp->size verifies with the local root of m and the
 * checkpoint root; the empty prefix always agrees). *out = m; m == cp->size
 * means every entry agrees.
 * @return 0, or the errors of @p fn passed up.
 */
int mlreg_audit_verify_bisect(uint64_t *out, const mlreg_merkle_hash *leaves, uint64_t n,
                              const mlreg_checkpoint *cp, mlreg_audit_proof_fn fn, void *ctx);

/**
 * Verifies checkpoint note @p text (@p len bytes) with public key @p pk;
 * the origin must be the one of that key ("mlreg-audit/KEYID").
 * @param cp_out receives size and root
 * @param origin_out MLREG_CHECKPOINT_ORIGIN_MAX + 1 bytes for the origin, or NULL
 * @return 0 or MLREG_EMISMATCH (the checkpoint module's message).
 */
int mlreg_audit_verify_checkpoint(mlreg_checkpoint *cp_out, char *origin_out, const char *text,
                                  size_t len, const mlreg_pubkey *pk);

/**
 * Checks downloaded entries @p e against verified checkpoint @p cp: every
 * entry (mlreg_audit_verify_entry) and the Merkle root; when the root
 * differs or entries are missing, bisects with @p fn and fails with "audit
 * entry N does not match the signed log: REASON". Entries past cp->size are
 * ignored. When @p fn fails during the bisection the log is still refused
 * (MLREG_EMISMATCH, with @p fn's message).
 * @return 0, MLREG_EMISMATCH or MLREG_ENOMEM.
 */
int mlreg_audit_verify_log(const mlreg_audit_entries *e, const mlreg_checkpoint *cp,
                           mlreg_audit_proof_fn fn, void *ctx);

/**
 * Checks a remembered checkpoint note @p old_text against the current,
 * verified checkpoint @p cur of @p origin: it must verify with @p pk ("...
 * the log key changed"), be no larger than @p cur ("log shrank from A to
 * B entries: entry B is gone"), and @p cur must extend it (consistency
 * proof from @p fn).
 * @param old_out receives the remembered size and root, or NULL
 * @return 0, MLREG_EMISMATCH, MLREG_EINVALID for a note that is not a
 *         checkpoint ("remembered checkpoint: ..."), or errors of @p fn.
 */
int mlreg_audit_verify_remembered(mlreg_checkpoint *old_out, const char *old_text, size_t old_len,
                                  const char *origin, const mlreg_pubkey *pk,
                                  const mlreg_checkpoint *cur, mlreg_audit_proof_fn fn, void *ctx);

/* ---- bundles ------------------------------------------------------------------------ */

/** What mlreg_audit_verify_bundle() found in a good bundle. */
typedef struct {
    char origin[MLREG_CHECKPOINT_ORIGIN_MAX + 1];
    mlreg_checkpoint cp;
    char digest[72];     /**< "sha256:<hex>" of manifest.json */
    size_t entries;      /**< audit/entries/<seq>.json checked */
    size_t attestations; /**< attestations/NAME.dsse.json checked */
    size_t sums;         /**< SHA256SUMS lines checked */
    /** Whether the bundle's last release.withdraw / release.unwithdraw entry
     *  is a withdrawal: then its seq, actor, time and reason (text-rule safe,
     *  cut to fit). */
    int withdrawn;
    uint64_t withdrawn_seq;
    char withdrawn_by[129];
    char withdrawn_time[40];
    char withdrawn_reason[1025];
    /** Whether the bundle holds a release.purge entry: then its seq, actor,
     *  time and reason, and how many files of manifest.json the bundle lacks
     *  because that entry lists them as deleted. */
    int purged;
    uint64_t purged_seq;
    char purged_by[129];
    char purged_time[40];
    char purged_reason[1025];
    size_t purged_files;
    /** How many promote entries of the bundle moved a stage by an override
     *  (break-glass, details "override": true); the last one's seq, stage,
     *  actor and reason (text-rule safe, cut to fit). */
    size_t overrides;
    uint64_t override_seq;
    char override_stage[129];
    char override_by[129];
    char override_reason[1025];
    /** evaluations/<seq>.dsse.json checked: each the envelope its
     *  evaluation.attest audit entry names, signed by the key it names, about
     *  manifest.json. */
    size_t evaluations;
} mlreg_bundle_report;

/**
 * Checks the bundle in @p dir offline with log key @p pk: audit/checkpoint,
 * SHA256SUMS, that files/ holds exactly the layers of manifest.json with
 * their digests, every audit entry against its inclusion proof and the
 * manifest digest, an entry recording the push, every attestation's
 * signature, subject and audit entry. It also says whether the entries
 * leave the release withdrawn (rep->withdrawn) or purged (rep->purged): a
 * file of a purged release may be absent from files/ and SHA256SUMS only
 * when the bundle's release.purge entry lists its digest as deleted. Every file is opened without
 * following symbolic links; a link, FIFO or other non-regular file in the
 * bundle is a mismatch.
 * @param rep filled on success (zeroed first)
 * @return 0; MLREG_EMISMATCH naming the first bad file or entry (a missing
 *         file included); MLREG_EIO when @p dir is not a directory or cannot
 *         be read; MLREG_ENOMEM.
 */
int mlreg_audit_verify_bundle(mlreg_bundle_report *rep, const char *dir, const mlreg_pubkey *pk);

#endif
