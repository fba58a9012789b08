/**
 * @file checkpoint.h
 * @brief Signed checkpoints of the audit log in the signed-note format.
 *
 * A checkpoint is a note (golang.org/x/mod/sumdb/note) whose text is three
 * lines, each ended by '\n': the log origin, the tree size in decimal and
 * the base64 tree root (RFC 9162 hash, 32 bytes). A blank line follows, then
 * one signature line per signer:
 *
 *     — <key name> base64(key hash (4, big-endian) ‖ Ed25519 signature (64))
 *
 * The signature covers the text (the three lines with their newlines). The
 * key hash is the first 4 bytes of SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public
 * key); 0x01 names the Ed25519 algorithm. mlreg's key name is the origin.
 * A verifier key is written as in the note package:
 * `<name>+<key hash, 8 lowercase hex>+base64(0x01 ‖ public key)`.
 *
 * Verification follows the note package: the whole note must be valid UTF-8
 * without control characters other than '\n'; signature lines by other keys
 * (another name or key hash) are ignored, as the note format lets several
 * witnesses co-sign; a line that claims our key but does not verify fails
 * the whole note. mlreg is stricter than the generic checkpoint format in
 * one point: it writes no extension lines after the root and refuses them.
 *
 * Every function returns 0 or a negative MLREG_E* code and sets the message
 * (mlreg_error_set) where the failure is found.
 */
#ifndef MLREG_CHECKPOINT_H
#define MLREG_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "mlreg/merkle.h"
#include "mlreg/sign.h"

/** Longest origin (and key name) accepted, in bytes. */
#define MLREG_CHECKPOINT_ORIGIN_MAX 255

/** The body of a verified checkpoint. Plain value. */
typedef struct {
    uint64_t size;
    mlreg_merkle_hash root;
} mlreg_checkpoint;

/**
 * The note key hash of key name @p name (NUL-terminated) and Ed25519 public
 * key @p pk into *out. 0, MLREG_EINVALID (name empty, too long, holding
 * '+' or spaces, or breaking the text rule of text.h: control characters
 * C0, DEL and C1, bytes that are not UTF-8).
 */
int mlreg_checkpoint_key_hash(uint32_t *out, const char *name,
                              const unsigned char pk[MLREG_PUBKEY_BYTES]);

/**
 * Formats the verifier key `<name>+<hash>+<base64>` into *out, malloc'd,
 * NUL-terminated, owned by the caller (free()). 0, MLREG_EINVALID (name),
 * MLREG_ENOMEM.
 */
int mlreg_checkpoint_verifier_key(char **out, const char *name,
                                  const unsigned char pk[MLREG_PUBKEY_BYTES]);

/**
 * Parses a verifier key (@p len bytes of @p text, need not be
 * NUL-terminated, no trailing newline). *name_out receives the key name,
 * malloc'd and owned by the caller (free()), @p pk_out the public key. The
 * key hash in the text must match name and key. 0, MLREG_EINVALID
 * ("malformed verifier key: ..."), MLREG_EMISMATCH (key hash differs),
 * MLREG_ENOMEM.
 */
int mlreg_checkpoint_verifier_parse(char **name_out, unsigned char pk_out[MLREG_PUBKEY_BYTES],
                                    const char *text, size_t len);

/**
 * Signs the checkpoint (@p origin, @p size, @p root) with @p sk, whose key
 * name is @p origin. *out is the NUL-terminated note, malloc'd and owned by
 * the caller (free()). Ed25519 is deterministic: the same input gives the
 * same bytes. 0, MLREG_EINVALID (origin), MLREG_ENOMEM, MLREG_EIO.
 */
int mlreg_checkpoint_sign(char **out, const char *origin, uint64_t size,
                          const mlreg_merkle_hash *root, const mlreg_seckey *sk);

/**
 * Verifies @p len bytes of note @p text (need not be NUL-terminated): it
 * must carry a valid signature by key name @p origin with public key @p pk,
 * and its body must be a checkpoint of @p origin. On success only, *out
 * receives the tree size and root.
 * Returns 0; MLREG_EINVALID ("malformed checkpoint: ..."); MLREG_EMISMATCH
 * ("checkpoint signature does not verify", "checkpoint is not signed by
 * <origin>", "checkpoint is for origin ..., not ..."); MLREG_EIO.
 */
int mlreg_checkpoint_verify(mlreg_checkpoint *out, const char *text, size_t len, const char *origin,
                            const unsigned char pk[MLREG_PUBKEY_BYTES]);

#endif
