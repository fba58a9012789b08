/**
 * @file release_sig.h
 * @brief Release signatures as a client checks them: the trusted comment
 *        that binds a signature to one release, a set of trusted keys (from
 *        `.pub` files or a keyring file) and the per-signature verdict.
 *
 * Pure logic, no I/O and no HTTP: `mlreg verify`, `mlreg pull --trusted-key`
 * and `mlreg sign` / `push --sign-key` share it, and tests/unit checks it.
 * The wire contract is docs/signatures-api.md.
 *
 * The trusted comment of a release signature begins with exactly
 *
 *     mlreg release model=<name> version=<version> digest=sha256:<64 hex>
 *
 * optionally followed by one space and more `key=value` fields separated by
 * single spaces (mlreg writes `timestamp=<unix seconds>`).
 *
 * Every function returns 0 or a negative MLREG_E* code and sets the message
 * (mlreg_error_set) where the failure is found.
 */
#ifndef MLREG_RELEASE_SIG_H
#define MLREG_RELEASE_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "mlreg/sign.h"

/** What every release trusted comment starts with. */
#define MLREG_RELEASE_COMMENT_PREFIX "mlreg release "

/**
 * Formats the trusted comment for @p model, @p version and @p digest
 * ("sha256:<hex>"), with `timestamp=<@p timestamp>` appended, into *out
 * (malloc'd, NUL-terminated, owned by the caller: free()). The three values
 * must be non-empty and hold no space or control character
 * (MLREG_EINVALID); MLREG_ENOMEM.
 */
int mlreg_release_comment_format(char **out, const char *model, const char *version,
                                 const char *digest, int64_t timestamp);

/**
 * Checks that @p comment (an authenticated trusted comment) names exactly
 * this release in its first four fields and that anything after them is
 * " key=value" fields separated by single spaces, each text by the rule of
 * text.h (UTF-8 without C0, DEL or C1 controls). 0 when it does;
 * MLREG_EMISMATCH with "trusted comment is not an mlreg release comment",
 * "trusted comment names model X, not Y" (likewise version and digest) or
 * "trusted comment has malformed fields after the digest".
 */
int mlreg_release_comment_check(const char *comment, const char *model, const char *version,
                                const char *digest);

/* ---- trusted keys --------------------------------------------------------- */

/** Revocation state of a trusted key (docs/signatures-api.md). */
typedef enum {
    MLREG_REVOKE_NONE = 0,
    /** signatures attached before revoked_at keep counting, later ones do not */
    MLREG_REVOKE_RETIRED = 1,
    /** no signature by the key counts, whenever it was attached */
    MLREG_REVOKE_COMPROMISED = 2
} mlreg_revocation;

/** A set of trusted public keys, each with a name and its revocation. Opaque. */
typedef struct mlreg_trustset mlreg_trustset;

/** An empty set into *out. 0 or MLREG_ENOMEM. Free with mlreg_trustset_free(). */
int mlreg_trustset_new(mlreg_trustset **out);

/** Frees @p ts and the names it holds; NULL is a no-op. */
void mlreg_trustset_free(mlreg_trustset *ts);

/** Number of distinct keys in @p ts. */
size_t mlreg_trustset_count(const mlreg_trustset *ts);

/**
 * Adds @p pk under @p name (copied; NULL or "" gives the key id) with the
 * revocation @p rev, which for anything but MLREG_REVOKE_NONE needs
 * @p revoked_at (RFC 3339). A key id already in the set with the same key
 * keeps its first name and takes the stricter revocation (compromised over
 * retired, the earlier retirement over a later one); with another key it is
 * MLREG_EINVALID ("key id X appears with two different public keys").
 * 0, MLREG_EINVALID (also a bad revoked_at), MLREG_ENOMEM.
 */
int mlreg_trustset_add(mlreg_trustset *ts, const mlreg_pubkey *pk, const char *name,
                       mlreg_revocation rev, const char *revoked_at);

/**
 * Adds one entry of a keyring file (the JSON of `GET /api/v1/keys`, or a
 * hand-written `{"keys":[{"name","public_key"}]}`; the caller walks the
 * JSON): @p public_key is the bare base64 line or the `.pub` text;
 * @p key_id, when not NULL, must be that key's id; @p revocation is NULL,
 * "retired" or "compromised", and a revocation needs an RFC 3339
 * @p revoked_at (a revoked_at without a revocation is refused too);
 * @p name as in mlreg_trustset_add(). 0, MLREG_EINVALID (message without a
 * prefix, for the caller to say which entry), MLREG_ENOMEM.
 */
int mlreg_trustset_add_entry(mlreg_trustset *ts, const char *public_key, const char *key_id,
                             const char *name, const char *revocation, const char *revoked_at);

/* ---- one signature's verdict ----------------------------------------------- */

typedef enum {
    /** valid, by a trusted key that counts: the release is signed */
    MLREG_SIGCHECK_VALID = 0,
    /** by a key outside the trusted set: ignored */
    MLREG_SIGCHECK_UNTRUSTED = 1,
    /** by a trusted key that is revoked for this signature: does not count */
    MLREG_SIGCHECK_REVOKED = 2,
    /** malformed, or by a trusted key but not over this release's manifest
     *  and comment: someone tampered with it, the verification fails */
    MLREG_SIGCHECK_INVALID = 3
} mlreg_sigcheck_status;

/** The verdict on one signature. Plain value. */
typedef struct {
    mlreg_sigcheck_status status;
    /** signing key id, "" when the signature could not be parsed */
    char key_id[MLREG_KEYID_HEXLEN + 1];
    /** the trusted key's name, NULL when the key is not in the set; points
     *  into the set and is valid while it lives (not sanitised for a terminal) */
    const char *name;
    /** one line saying why (also for VALID: "valid" or "valid (key retired
     *  at T, signature attached before)") */
    char reason[1024];
} mlreg_sigcheck;

/** A short word for @p status: "valid", "untrusted", "revoked", "invalid". */
const char *mlreg_sigcheck_status_name(mlreg_sigcheck_status status);

/**
 * Judges one signature of the release @p model / @p version / @p digest
 * whose manifest bytes are @p manifest (@p len bytes, already checked to
 * hash to @p digest). @p sig_text (@p sig_len bytes) is the `.minisig` text;
 * @p signer_key the public key the registry says made it (base64 line or
 * `.pub` text), or NULL; @p attached_at the registry's RFC 3339 attach
 * time, or NULL. In order: malformed → INVALID; key id not in @p ts →
 * UNTRUSTED; @p signer_key is another key than the trusted key with that id
 * and the signature verifies with it → UNTRUSTED (a key id is no secret:
 * anyone can make a key that carries a trusted key's id); key compromised →
 * REVOKED; signature or global signature does not verify with the TRUSTED
 * key (never a key the registry sends) → INVALID; the trusted comment names
 * another release → INVALID; key retired and @p attached_at missing,
 * unparsable or not before revoked_at → REVOKED; otherwise VALID.
 * (The attach time is the registry's word: a key whose holder is no longer
 * trusted must be revoked as compromised, not retired. The signer key is
 * its word too, but only believed where it can take trust away.)
 * Returns 0 with the verdict in *out, or MLREG_ENOMEM.
 */
int mlreg_trustset_check(mlreg_sigcheck *out, const mlreg_trustset *ts, const char *sig_text,
                         size_t sig_len, const char *signer_key, const char *attached_at,
                         const void *manifest, size_t len, const char *model, const char *version,
                         const char *digest);

#endif
