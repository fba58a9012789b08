/* cli.h: commands of the `mlreg` binary (internal to cli/).
 *
 * Every command takes argv with argv[0] = the command name and returns the
 * process exit code: 0 ok; 1 refused (409/401/403/404) or verification failed;
 * 2 usage or local I/O error; 3 registry unreachable or server error (5xx).
 */
#ifndef MLREG_CLI_H
#define MLREG_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "mlreg/checkpoint.h"
#include "mlreg/merkle.h"
#include "mlreg/sign.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_REFUSED = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_REMOTE = 3 };

int cmd_serve(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_promote(int argc, char **argv);
int cmd_approve(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_image_tag(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_bundle(int argc, char **argv);

/* ---- the audit log as a client checks it (audit.c) -----------------------------
 *
 * The checks below are pure (no network): `mlreg audit verify` feeds them
 * what it downloaded, tests/unit/check_audit_verify.c an in-memory log.
 * They return 0 or a negative MLREG_E* code with the message set; a log
 * that does not verify is MLREG_EMISMATCH (exit 1) with a message naming
 * the first bad entry or file. docs/audit-api.md is the contract.
 */

/** Entries 0 .. n-1 of a log, each its exact bytes (malloc'd, NUL-terminated). */
typedef struct {
    char **text;
    size_t *len;
    uint64_t n;
    uint64_t cap; /**< room in text and len */
} cli_audit_entries;

void cli_audit_entries_init(cli_audit_entries *e);
void cli_audit_entries_clear(cli_audit_entries *e);
/** Appends a copy of @p len bytes of @p text. 0 or MLREG_ENOMEM. */
int cli_audit_entries_add(cli_audit_entries *e, const char *text, size_t len);

/**
 * Checks entry @p text (@p len bytes) standing at position @p seq, whose
 * predecessor's bytes are @p prev (@p prev_len; NULL for seq 0): valid JSON
 * object, byte-identical to its canonical form, "seq" equal to the
 * position, "prev" the hash of the previous entry's bytes (null for 0).
 * 0, or MLREG_EMISMATCH with the reason alone as message ("seq is 5, not 4").
 */
int cli_audit_entry_check(const char *text, size_t len, uint64_t seq, const char *prev,
                          size_t prev_len);

/**
 * Answers the consistency proof between the trees of @p from and @p to
 * entries (GET /api/v1/audit/proof/consistency): the hashes into @p proof
 * (room for MLREG_MERKLE_PROOF_MAX), their count into *len_out.
 */
typedef int (*cli_audit_proof_fn)(mlreg_merkle_hash *proof, size_t *len_out, void *ctx,
                                  uint64_t from, uint64_t to);

/**
 * The first entry that differs from the signed tree @p cp, given the local
 * leaf hashes @p leaves[0 .. n-1] (n < cp->size when entries are missing):
 * the largest m <= min(n, cp->size) whose prefix agrees with the signed
 * tree, judged with consistency proofs from @p fn (prefix m agrees iff the
 * proof from m to cp->size verifies with the local root of m and the
 * checkpoint root; the empty prefix always agrees). *out = m; m == cp->size
 * means every entry agrees. Errors of @p fn are passed up.
 */
int cli_audit_bisect(uint64_t *out, const mlreg_merkle_hash *leaves, uint64_t n,
                     const mlreg_checkpoint *cp, cli_audit_proof_fn fn, void *ctx);

/**
 * Verifies checkpoint note @p text (@p len bytes) with public key @p pk;
 * the origin is the note's first line. *cp_out receives size and root,
 * @p origin_out (MLREG_CHECKPOINT_ORIGIN_MAX + 1 bytes, may be NULL) the
 * origin. 0 or MLREG_EMISMATCH (the library's message).
 */
int cli_audit_checkpoint_check(mlreg_checkpoint *cp_out, char *origin_out, const char *text,
                               size_t len, const mlreg_pubkey *pk);

/**
 * Checks downloaded entries @p e against verified checkpoint @p cp: every
 * entry (cli_audit_entry_check) and the Merkle root; when the root differs
 * or entries are missing, bisects with @p fn and fails with "audit entry N
 * does not match the signed log: REASON". Entries past cp->size are
 * ignored. When @p fn fails during the bisection the log is still refused
 * (MLREG_EMISMATCH, with @p fn's message). 0, MLREG_EMISMATCH or
 * MLREG_ENOMEM.
 */
int cli_audit_log_check(const cli_audit_entries *e, const mlreg_checkpoint *cp,
                        cli_audit_proof_fn fn, void *ctx);

/**
 * Checks a remembered checkpoint note @p old_text against the current,
 * verified checkpoint @p cur of @p origin: it must verify with @p pk ("...
 * the log key changed"), be no larger than @p cur ("log shrank from A to
 * B entries: entry B is gone"), and @p cur must extend it (consistency
 * proof from @p fn). *old_out (may be NULL) receives the remembered size
 * and root. 0 or MLREG_EMISMATCH, or errors of @p fn.
 */
int cli_audit_remembered_check(mlreg_checkpoint *old_out, const char *old_text, size_t old_len,
                               const char *origin, const mlreg_pubkey *pk,
                               const mlreg_checkpoint *cur, cli_audit_proof_fn fn, void *ctx);

/** What cli_audit_bundle_check found in a good bundle. */
typedef struct {
    char origin[MLREG_CHECKPOINT_ORIGIN_MAX + 1];
    mlreg_checkpoint cp;
    char digest[72];     /**< "sha256:<hex>" of manifest.json */
    size_t entries;      /**< audit/entries/<seq>.json checked */
    size_t attestations; /**< attestations/NAME.dsse.json checked */
    size_t sums;         /**< SHA256SUMS lines checked */
} cli_bundle_report;

/**
 * Checks the bundle in @p dir offline (docs/audit-api.md, `mlreg bundle`)
 * with log key @p pk: audit/checkpoint, SHA256SUMS, that files/ holds exactly
 * the layers of manifest.json with their digests, every audit entry
 * against its inclusion proof and the manifest digest, every attestation's
 * signature, subject and audit entry. Every file is opened without
 * following symbolic links; a link, FIFO or other non-regular file in the
 * bundle is MLREG_EMISMATCH. 0 with @p rep filled; MLREG_EMISMATCH naming
 * the first bad file or entry; MLREG_EIO / MLREG_ENOMEM.
 */
int cli_audit_bundle_check(cli_bundle_report *rep, const char *dir, const mlreg_pubkey *pk);

/* ---- the audit log as the registry serves it (audit.c, used by bundle.c) ----- */

/** GETs and parses the log key (/api/v1/audit/key); *text_out (may be NULL) the bytes (free()). */
int cli_audit_key_get(mlreg_pubkey *out, char **text_out, size_t *len_out, cli_client *c);

/** GETs the current checkpoint note (/api/v1/audit/checkpoint) into *out (free()). */
int cli_audit_checkpoint_get(char **out, size_t *len_out, cli_client *c);

/**
 * Pages through GET /api/v1/audit and appends entries to @p e (cleared
 * first) until it holds @p want entries or the log ends. With
 * @p stop_at_gap, a registry that fails (5xx) to serve a page is asked for
 * its entries one by one, and the download stops before the first entry it
 * cannot serve (said on stderr): the verifier then names that entry as
 * missing instead of giving up.
 */
int cli_audit_entries_get(cli_audit_entries *e, cli_client *c, uint64_t want, int stop_at_gap);

/**
 * cli_audit_proof_fn over GET /api/v1/audit/proof/consistency; @p ctx is the
 * cli_client. A proof that is not an array of base64 hashes is MLREG_ESERVER.
 */
int cli_audit_consistency_get(mlreg_merkle_hash *proof, size_t *len_out, void *ctx, uint64_t from,
                              uint64_t to);

#endif
