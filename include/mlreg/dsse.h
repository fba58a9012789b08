/**
 * @file dsse.h
 * @brief DSSE envelopes (Dead Simple Signing Envelope v1) signed with Ed25519.
 *
 * The signature covers the pre-authentication encoding (PAE) of the payload:
 *
 *     "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 *
 * where LEN is the byte length in ASCII decimal without leading zeros and
 * SP one space. The envelope is the JSON object
 * `{"payload": base64(body), "payloadType": type, "signatures": [{"keyid":
 * KEYID, "sig": base64(signature)}]}`; mlreg writes it as canonical JSON
 * (canonical_json.h), standard padded base64, and the key id as minisign
 * prints it (16 uppercase hex digits), so the same key that signs releases
 * signs the attestations. The key id is a hint, not authenticated.
 *
 * Every function returns 0 or a negative MLREG_E* code and sets the message
 * (mlreg_error_set) where the failure is found.
 */
#ifndef MLREG_DSSE_H
#define MLREG_DSSE_H

#include <stddef.h>

#include "mlreg/sign.h"

/** The in-toto statement payload type. */
#define MLREG_DSSE_INTOTO_TYPE "application/vnd.in-toto+json"

/**
 * Writes the PAE of (@p payload_type, @p len bytes of @p payload) into *out,
 * malloc'd and owned by the caller (free()), NUL-terminated for
 * convenience, its length without the NUL in *len_out. @p payload may be
 * NULL when @p len is 0. 0 or MLREG_ENOMEM.
 */
int mlreg_dsse_pae(unsigned char **out, size_t *len_out, const char *payload_type,
                   const void *payload, size_t len);

/**
 * Signs (@p payload_type, @p len bytes of @p payload) with @p sk and writes
 * the envelope JSON text into *out (malloc'd, NUL-terminated, owned by the
 * caller: free()). Ed25519 is deterministic. 0, MLREG_EINVALID (empty
 * payload type), MLREG_ENOMEM, MLREG_EIO.
 */
int mlreg_dsse_sign(char **out, const char *payload_type, const void *payload, size_t len,
                    const mlreg_seckey *sk);

/**
 * Verifies the envelope in @p len bytes of @p envelope (JSON text, need not
 * be NUL-terminated) against @p pk: at least one signature whose keyid is
 * @p pk's key id (or empty or absent) must verify over the PAE; signatures
 * naming other key ids are ignored. The payload may be standard or URL-safe
 * base64, padded or not, as the DSSE spec allows. On success only,
 * *payload_type_out (NUL-terminated) and *payload_out (*payload_len_out
 * bytes, NUL-terminated for convenience) receive copies, malloc'd and owned
 * by the caller (free()); either may be NULL to skip.
 * Returns 0; MLREG_EINVALID ("malformed dsse envelope: ..."); MLREG_EMISMATCH
 * ("dsse envelope has no valid signature by key <KEYID>"); MLREG_ENOMEM.
 */
int mlreg_dsse_verify(char **payload_type_out, unsigned char **payload_out, size_t *payload_len_out,
                      const char *envelope, size_t len, const mlreg_pubkey *pk);

#endif
