/**
 * @file signatures.h
 * @brief Release signatures stored by the server: attach (verify, then store
 *        the signature record and its OCI referrer in one transaction) and
 *        list with what each signature is worth now.
 *
 * The wire contract is docs/signatures-api.md. A release signature is a
 * minisign prehashed ("ED") signature over the release manifest bytes as
 * stored, whose trusted comment begins with
 * `mlreg release model=<name> version=<version> digest=sha256:<hex>`,
 * optionally followed by " key=value" fields.
 *
 * LMDB layout (the `signatures` database; registry/signatures.c is its only
 * owner):
 *
 *   signatures  release-digest-hex (64) \0 KEYID (16 uppercase hex) \0
 *               Ed25519-public-key-hex (64 lowercase) ->
 *               {"model","version","digest","key_id","public_key" (base64 line),
 *                "signature" (.minisig text, ending in '\n'),"attached_at","attached_ns",
 *                "attached_by","trusted_at_attach","referrer"}
 *
 * A signature is stored per release and FULL public key: a key id is 8
 * bytes anyone can put on a fresh key, so two keys with the same id are two
 * signers with a record each. Data directories written by earlier versions
 * hold records keyed by release-digest-hex \0 KEYID only (the same value,
 * always with "public_key"); they are read, listed and counted as the
 * signature of the public key they name, and are never rewritten.
 *
 * Each signature is also an OCI referrer of its release: an image manifest
 * (artifactType MLREG_ARTIFACT_SIGNATURE, the empty config, one layer holding
 * the .minisig bytes, annotations org.mlreg.key-id and org.mlreg.public-key,
 * subject = the release), stored by digest in the release's repository. All
 * functions are safe to call from several threads at once.
 */
#ifndef MLREG_SIGNATURES_H
#define MLREG_SIGNATURES_H

#include <jansson.h>
#include <stddef.h>

#include "mlreg/registry.h"

/** artifactType of a signature referrer, and media type of its one layer. */
#define MLREG_ARTIFACT_SIGNATURE "application/vnd.mlreg.signature.v1+minisign"
/** Annotation of a signature referrer naming the signing key id. */
#define MLREG_ANN_KEY_ID "org.mlreg.key-id"
/** Annotation of a signature referrer holding the signing public key (base64 line). */
#define MLREG_ANN_PUBLIC_KEY "org.mlreg.public-key"
/** First word of the trusted comment of a release signature. */
#define MLREG_SIGNATURE_COMMENT_PREFIX "mlreg release "

/**
 * Verifies and stores a signature of release @p model@@p version:
 * @p sig_len bytes of `.minisig` text @p sig_text, made with the public key
 * in @p pk_len bytes of @p public_key (the `.pub` text or its base64 line),
 * attached by @p actor.
 *
 * Checks, in order: both parse (a legacy, non-prehashed signature is
 * refused); the key ids agree; a keyring key with that id has this public
 * key; the release exists (a version that is not a release:
 * MLREG_EUNSUPPORTED); the signature verifies over the stored manifest
 * bytes; the trusted comment names this model, version and digest. Then the
 * `.minisig` bytes are committed as a blob, and the signature record, the
 * referrer manifest, its index entry, the blob links and the
 * "signature.attach" audit entry are written in one LMDB write transaction.
 * Nothing is stored when any check fails. A signature by another public key
 * that carries the same key id is another signer's and does not stand in
 * the way.
 *
 * *out receives {"model","version","digest","key_id","public_key","trusted",
 * "key_name","referrer"} (owned by the caller) and *created_out 1 when
 * stored now, 0 when the identical signature was attached before (a no-op).
 * @return 0; MLREG_EINVALID (malformed signature or key, key id mismatch,
 *         keyring key differs: the message says which); MLREG_EMISMATCH
 *         ("signature does not match the manifest of ...", "trusted comment
 *         was altered", "trusted comment names version X, not Y", ...);
 *         MLREG_ENOTFOUND (no such model or version); MLREG_EUNSUPPORTED
 *         (not a release); MLREG_EDENIED (another signature by the same public
 *         key is attached to this release); MLREG_ENOSPACE, MLREG_EIO,
 *         MLREG_ENOMEM.
 */
int mlreg_signature_attach(json_t **out, int *created_out, mlreg_registry *reg, const char *model,
                           const char *version, const char *sig_text, size_t sig_len,
                           const char *public_key, size_t pk_len, const char *actor);

/**
 * The signatures of release @p model@@p version, in key id order (keys
 * sharing an id next to each other), as
 * {"model","version","digest","signatures":[{"key_id","public_key",
 * "signature","attached_at","attached_by","trusted_at_attach","key_name",
 * "role","status","counts"}]} with status and counts computed from the
 * keyring now (mlreg_keyring_judge()). *out is owned by the caller.
 * @return 0, MLREG_ENOTFOUND (no such release), MLREG_EIO, MLREG_ENOMEM.
 */
int mlreg_signatures_list(json_t **out, mlreg_registry *reg, const char *model,
                          const char *version);

#endif
