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

#include "args.h"
#include "client.h"
#include "mlreg/audit_verify.h"
#include "mlreg/merkle.h"
#include "mlreg/registry.h"
#include "mlreg/sign.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_REFUSED = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_REMOTE = 3 };

int cmd_serve(int argc, char **argv);
int cmd_reindex(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_attest(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_promote(int argc, char **argv);
int cmd_approve(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_withdraw(int argc, char **argv);
int cmd_unwithdraw(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_image_tag(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_bundle(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_scrub(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_versions(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_completion(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* ---- the audit log as the registry serves it (audit.c, used by bundle.c) -----
 *
 * The downloads only: what they fetch is checked with mlreg/audit_verify.h. */

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
int cli_audit_entries_get(mlreg_audit_entries *e, cli_client *c, uint64_t want, int stop_at_gap);

/**
 * mlreg_audit_proof_fn over GET /api/v1/audit/proof/consistency; @p ctx is the
 * cli_client. A proof that is not an array of base64 hashes is MLREG_ESERVER.
 */
int cli_audit_consistency_get(mlreg_merkle_hash *proof, size_t *len_out, void *ctx, uint64_t from,
                              uint64_t to);

#endif
