/**
 * @file sign.h
 * @brief Ed25519 keys and detached signatures in minisign's formats.
 *
 * Everything here reads and writes the files of minisign 0.11, so that the
 * stock `minisign -V` checks mlreg's signatures and mlreg checks minisign's:
 *
 * - public key (`.pub`): `untrusted comment: <text>` line, then
 *   base64("Ed" ‖ key id (8) ‖ Ed25519 public key (32));
 * - secret key (`.key`): `untrusted comment: <text>` line, then base64 of
 *   "Ed" ‖ kdf ("Sc" scrypt, or two zero bytes for none) ‖ "B2" ‖ salt (32) ‖
 *   opslimit (8, LE) ‖ memlimit (8, LE) ‖ key id (8) ‖ Ed25519 secret key
 *   (64) ‖ BLAKE2b-256 checksum (32), the last 104 bytes XORed with an scrypt
 *   stream when encrypted;
 * - signature (`.minisig`): `untrusted comment: <text>`, base64("ED" ‖ key
 *   id ‖ Ed25519 signature of BLAKE2b-512(data)), `trusted comment: <text>`,
 *   base64(Ed25519 signature of (signature ‖ trusted comment)). mlreg writes
 *   only prehashed ("ED") signatures and also verifies legacy ("Ed") ones,
 *   whose signature covers the raw data.
 *
 * Parsing is strict: exactly the lines above, each ended by '\n' (the last
 * one's '\n' may be missing, as when a signature travels in JSON), no '\r',
 * no NUL, canonical padded base64 of exactly the expected length, known
 * algorithm bytes, comments within minisign's limits.
 *
 * Secret keys live only in libsodium's guarded memory (sodium_malloc), are
 * wiped when freed and are never copied to ordinary heap memory, stdio
 * buffers or messages. Passwords handed out by mlreg_password_read() live in
 * the same kind of memory.
 *
 * Every function returns 0 or a negative MLREG_E* code and sets the message
 * (mlreg_error_set) where the failure is found.
 */
#ifndef MLREG_SIGN_H
#define MLREG_SIGN_H

#include <stddef.h>

#define MLREG_KEYID_BYTES 8
/** Key id as minisign prints it: 16 uppercase hex digits, without the NUL. */
#define MLREG_KEYID_HEXLEN 16
#define MLREG_PUBKEY_BYTES 32
/** Length of the bare base64 public key line (`minisign -P` form), without NUL. */
#define MLREG_PUBKEY_B64LEN 56
/** BLAKE2b-512 prehash, the message that an "ED" signature signs. */
#define MLREG_PREHASH_BYTES 64

/**
 * Longest trusted comment, in bytes. minisign 0.11 reads the trusted comment
 * line with fgets() into an 8192-byte buffer, so it verifies comments of up
 * to 8192 - strlen("trusted comment: ") - '\n' - NUL = 8173 bytes and
 * rejects longer ones. (It can only *write* comments up to 4077 bytes; mlreg
 * may write up to this limit, which minisign still verifies.)
 */
#define MLREG_SIGN_TRUSTED_COMMENT_MAX 8173
/**
 * Longest untrusted comment (signature, public and secret key files):
 * minisign reads those lines into a 1024-byte buffer, which leaves
 * 1024 - strlen("untrusted comment: ") - '\n' - NUL = 1003 bytes.
 */
#define MLREG_SIGN_UNTRUSTED_COMMENT_MAX 1003
/** Longest password minisign can read (its 1024-byte line buffer). */
#define MLREG_PASSWORD_MAX 1022

/** Untrusted comment that mlreg_sign() writes when given NULL. */
#define MLREG_SIGN_DEFAULT_COMMENT "signature from mlreg secret key"
/** Environment variable mlreg_password_read() takes the password from. */
#define MLREG_PASSWORD_ENV "MLREG_KEY_PASSWORD"

/* ---- key ids ------------------------------------------------------------ */

/** The 8 random bytes that name a key pair (as stored in the files). */
typedef struct {
    unsigned char raw[MLREG_KEYID_BYTES];
} mlreg_keyid;

/**
 * Writes the key id as minisign prints it (16 uppercase hex digits: the raw
 * bytes read as a little-endian 64-bit number) and a NUL into @p out.
 */
void mlreg_keyid_format(char out[MLREG_KEYID_HEXLEN + 1], const mlreg_keyid *id);

/**
 * Parses exactly 16 hex digits (either case) of @p len bytes, in the printed
 * form of mlreg_keyid_format(). 0 or MLREG_EINVALID.
 */
int mlreg_keyid_parse(mlreg_keyid *out, const char *hex, size_t len);

/** 1 when equal, 0 otherwise (constant time). */
int mlreg_keyid_equal(const mlreg_keyid *a, const mlreg_keyid *b);

/* ---- public keys -------------------------------------------------------- */

/** A public key: its key id and the Ed25519 key. Plain value, no free. */
typedef struct {
    mlreg_keyid id;
    unsigned char pk[MLREG_PUBKEY_BYTES];
} mlreg_pubkey;

/**
 * Parses a public key from @p len bytes of @p text (need not be
 * NUL-terminated): either the two-line `.pub` file or the bare base64 line
 * (`minisign -P` form), each optionally ended by '\n'.
 * 0 or MLREG_EINVALID ("malformed public key: ...").
 */
int mlreg_pubkey_parse(mlreg_pubkey *out, const char *text, size_t len);

/**
 * Formats the `.pub` text ("untrusted comment: ...\n<base64>\n") into *out,
 * malloc'd and NUL-terminated, owned by the caller (free()). @p comment NULL
 * gives "mlreg public key <KEYID>". 0, MLREG_EINVALID (comment longer than
 * MLREG_SIGN_UNTRUSTED_COMMENT_MAX or containing '\n' / '\r'), MLREG_ENOMEM.
 */
int mlreg_pubkey_format(char **out, const mlreg_pubkey *pk, const char *comment);

/** Writes the bare base64 line (no newline) and a NUL into @p out. */
void mlreg_pubkey_base64(char out[MLREG_PUBKEY_B64LEN + 1], const mlreg_pubkey *pk);

/** 1 when key id and key are both equal, 0 otherwise (constant time). */
int mlreg_pubkey_equal(const mlreg_pubkey *a, const mlreg_pubkey *b);

/**
 * Reads and parses the public key file at @p path (a regular file under
 * 4 KiB). 0, MLREG_ENOTFOUND (no such file), MLREG_EIO, MLREG_EINVALID.
 */
int mlreg_pubkey_load(mlreg_pubkey *out, const char *path);

/**
 * Writes the `.pub` text (see mlreg_pubkey_format) to a new file at @p path,
 * mode 0644, created with O_EXCL|O_NOFOLLOW: an existing file or symlink is
 * never replaced (MLREG_EEXISTS). The file is fsync'ed; on a write failure
 * it is removed. 0, MLREG_EEXISTS, MLREG_EINVALID, MLREG_EIO, MLREG_ENOMEM.
 */
int mlreg_pubkey_save(const char *path, const mlreg_pubkey *pk, const char *comment);

/* ---- secret keys -------------------------------------------------------- */

/**
 * A secret key (key id and Ed25519 secret key). Opaque; lives only in
 * sodium_malloc memory, read-only while held; mlreg_seckey_free() wipes it.
 */
typedef struct mlreg_seckey mlreg_seckey;

/** Generates a new key pair with a random key id into *out. 0 or MLREG_ENOMEM. */
int mlreg_seckey_generate(mlreg_seckey **out);

/**
 * Parses a secret key from @p len bytes of the `.key` file text @p text.
 * @p password (NUL-terminated) decrypts a key whose kdf is scrypt; it is
 * ignored for an unencrypted key (kdf bytes 0000, `minisign -G -W`), whose
 * checksum is not checked (minisign writes zeros there).
 * Both kinds must carry an Ed25519 key whose public half matches its seed.
 * Returns 0; MLREG_EAUTH when the key is encrypted and @p password is NULL
 * ("secret key is encrypted: password required") or when the checksum
 * does not match ("wrong password or corrupt key"); MLREG_EINVALID
 * ("malformed secret key: ...", unsupported kdf or algorithm, scrypt limits
 * out of libsodium's range; "corrupt secret key: ..." when the public half
 * does not match the seed);
 * MLREG_ENOMEM (also when the key's scrypt memlimit cannot be allocated).
 * Caller frees *out with mlreg_seckey_free(). @p text is not wiped: it is
 * the caller's memory.
 */
int mlreg_seckey_parse(mlreg_seckey **out, const char *text, size_t len, const char *password);

/**
 * As mlreg_seckey_parse() for the file at @p path (a regular file under
 * 4 KiB), read into guarded memory that is wiped afterwards. Additionally
 * MLREG_ENOTFOUND and MLREG_EIO.
 */
int mlreg_seckey_load(mlreg_seckey **out, const char *path, const char *password);

/**
 * Sets *out to 1 when the key file at @p path is password-encrypted (kdf
 * "Sc"), 0 when unencrypted, so a command knows whether to ask for a
 * password before mlreg_seckey_load(). Validates the file's structure.
 * 0, MLREG_ENOTFOUND, MLREG_EIO, MLREG_EINVALID.
 */
int mlreg_seckey_needs_password(int *out, const char *path);

/**
 * Writes @p sk to a new file at @p path, mode 0600, created with
 * O_CREAT|O_EXCL|O_NOFOLLOW (never replaces a file or follows a symlink:
 * MLREG_EEXISTS). With @p password non-NULL the key is encrypted as minisign
 * does: random salt, scrypt (crypto_pwhash_scryptsalsa208sha256) with
 * minisign's opslimit 33554432 and memlimit 1073741824 (1 GiB, a few
 * seconds), BLAKE2b-256 checksum; with NULL it is written unencrypted
 * exactly as `minisign -G -W` does (kdf 0000, zero salt, limits and
 * checksum). @p comment NULL gives "mlreg encrypted secret key" or "mlreg
 * unencrypted secret key". The file is fsync'ed; on failure it is removed.
 * 0, MLREG_EEXISTS, MLREG_EINVALID (comment), MLREG_EIO, MLREG_ENOMEM.
 */
int mlreg_seckey_save(const char *path, const mlreg_seckey *sk, const char *password,
                      const char *comment);

/** The public half of @p sk (key id and Ed25519 public key). */
void mlreg_seckey_pubkey(mlreg_pubkey *out, const mlreg_seckey *sk);

/** Wipes and frees @p sk; NULL is a no-op. */
void mlreg_seckey_free(mlreg_seckey *sk);

/* ---- prehash (BLAKE2b-512) ---------------------------------------------- */

/** Streaming BLAKE2b-512 state for prehashed signatures. Opaque. */
typedef struct mlreg_prehash mlreg_prehash;

/** Allocates a fresh state into *out. 0 or MLREG_ENOMEM. Free with mlreg_prehash_free(). */
int mlreg_prehash_new(mlreg_prehash **out);
/** Feeds @p len bytes (@p data may be NULL when @p len is 0). 0 or MLREG_EINVALID. */
int mlreg_prehash_update(mlreg_prehash *h, const void *data, size_t len);
/** Finishes into @p out. The state may not be updated afterwards. 0 or MLREG_EINVALID. */
int mlreg_prehash_final(unsigned char out[MLREG_PREHASH_BYTES], mlreg_prehash *h);
/** Frees (and wipes) @p h; NULL is a no-op. */
void mlreg_prehash_free(mlreg_prehash *h);

/** One-shot prehash of a buffer. 0 or MLREG_ENOMEM. */
int mlreg_prehash_buffer(unsigned char out[MLREG_PREHASH_BYTES], const void *data, size_t len);

/**
 * Prehash of everything readable from @p fd, in fixed-size chunks (memory
 * does not grow with the file). 0, MLREG_EIO, MLREG_ENOMEM.
 */
int mlreg_prehash_fd(unsigned char out[MLREG_PREHASH_BYTES], int fd);

/* ---- signing ------------------------------------------------------------ */

/**
 * Signs @p len bytes of @p data with @p sk: a prehashed ("ED") signature
 * whose trusted comment is @p trusted_comment (required; may be "") and whose
 * untrusted comment is @p untrusted_comment (NULL gives
 * MLREG_SIGN_DEFAULT_COMMENT). *out is the NUL-terminated `.minisig` text,
 * malloc'd and owned by the caller (free()). Ed25519 is deterministic: the
 * same key, data and comments give the same bytes.
 * 0, MLREG_EINVALID (a comment too long or containing '\n' or '\r'),
 * MLREG_ENOMEM.
 */
int mlreg_sign(char **out, const mlreg_seckey *sk, const void *data, size_t len,
               const char *trusted_comment, const char *untrusted_comment);

/** As mlreg_sign(), given the BLAKE2b-512 prehash of the data (large files). */
int mlreg_sign_prehash(char **out, const mlreg_seckey *sk,
                       const unsigned char prehash[MLREG_PREHASH_BYTES],
                       const char *trusted_comment, const char *untrusted_comment);

/* ---- parsed signatures and verification --------------------------------- */

/** A parsed `.minisig`. Opaque, immutable; free with mlreg_sig_free(). */
typedef struct mlreg_sig mlreg_sig;

/**
 * Parses @p len bytes of `.minisig` text (need not be NUL-terminated)
 * without checking any signature, e.g. to find the key id to look up in a
 * keyring first. 0, MLREG_EINVALID ("malformed signature: ..."),
 * MLREG_ENOMEM. Caller frees *out with mlreg_sig_free().
 */
int mlreg_sig_parse(mlreg_sig **out, const char *text, size_t len);

/** Key id the signature names. Valid while @p sig lives. */
const mlreg_keyid *mlreg_sig_key_id(const mlreg_sig *sig);

/** 1 for a prehashed ("ED") signature, 0 for a legacy ("Ed") one. */
int mlreg_sig_is_prehashed(const mlreg_sig *sig);

/**
 * Trusted comment text (NUL-terminated, without the prefix). Not yet
 * authenticated until a verify function returned 0. Valid while @p sig lives.
 */
const char *mlreg_sig_trusted_comment(const mlreg_sig *sig);

/** Untrusted comment text (never authenticated). Valid while @p sig lives. */
const char *mlreg_sig_untrusted_comment(const mlreg_sig *sig);

/**
 * Checks @p sig against @p len bytes of @p data and @p pk, in minisign's
 * order: key id, signature over the data (prehashed or legacy), global
 * signature over the trusted comment. Returns 0 when all hold; otherwise
 * MLREG_EMISMATCH with "signature made by key ID <sig's>, not <pk's>",
 * "signature does not match the data" or "trusted comment was altered";
 * MLREG_ENOMEM.
 */
int mlreg_sig_verify(const mlreg_sig *sig, const mlreg_pubkey *pk, const void *data, size_t len);

/**
 * As mlreg_sig_verify(), except that a signature over the data that does
 * not verify is MLREG_ESIGNATURE ("signature does not match the data"),
 * so the caller can tell it from the MLREG_EMISMATCH of a key id or a
 * trusted comment by its code. Returns 0, MLREG_ESIGNATURE,
 * MLREG_EMISMATCH or MLREG_ENOMEM.
 */
int mlreg_sig_check_data(const mlreg_sig *sig, const mlreg_pubkey *pk, const void *data,
                         size_t len);

/**
 * As mlreg_sig_verify(), given the BLAKE2b-512 prehash of the data, so a
 * large file can be streamed through mlreg_prehash_*. A legacy signature
 * cannot be checked this way: MLREG_EUNSUPPORTED.
 */
int mlreg_sig_verify_prehash(const mlreg_sig *sig, const mlreg_pubkey *pk,
                             const unsigned char prehash[MLREG_PREHASH_BYTES]);

/** Frees @p sig; NULL is a no-op. */
void mlreg_sig_free(mlreg_sig *sig);

/**
 * One call: parses @p sig_len bytes of `.minisig` text and verifies it
 * against @p len bytes of @p data with @p pk (mlreg_sig_parse, then
 * mlreg_sig_verify). On success only, *trusted_comment_out (may be NULL to
 * skip) receives the authenticated trusted comment, malloc'd and owned by
 * the caller (free()), and *key_id_out (may be NULL) the signing key id.
 * Returns 0, MLREG_EINVALID (malformed), MLREG_EMISMATCH (see
 * mlreg_sig_verify), MLREG_ENOMEM.
 */
int mlreg_sign_verify(char **trusted_comment_out, mlreg_keyid *key_id_out, const char *sig_text,
                      size_t sig_len, const void *data, size_t len, const mlreg_pubkey *pk);

/**
 * As mlreg_sign_verify(), given the BLAKE2b-512 prehash of the data; legacy
 * signatures give MLREG_EUNSUPPORTED.
 */
int mlreg_sign_verify_prehash(char **trusted_comment_out, mlreg_keyid *key_id_out,
                              const char *sig_text, size_t sig_len,
                              const unsigned char prehash[MLREG_PREHASH_BYTES],
                              const mlreg_pubkey *pk);

/* ---- passwords ---------------------------------------------------------- */

/** mlreg_password_read() flag: ask twice on a terminal and require a match. */
#define MLREG_PASSWORD_CONFIRM 1u

/**
 * Gets a key password into *out: from the environment variable
 * MLREG_KEY_PASSWORD when it is set (never confirmed), otherwise by
 * prompting with @p prompt on the controlling terminal (/dev/tty, echo off,
 * the terminal settings restored on every path, including SIGINT, SIGTERM,
 * SIGHUP and SIGQUIT, which are re-raised once the terminal is restored).
 * With MLREG_PASSWORD_CONFIRM in @p flags the terminal asks twice.
 * *out is NUL-terminated, in sodium_malloc memory, and must be released with
 * mlreg_password_free(). Meant for commands: it installs process-wide
 * signal handlers while the prompt is up, so two threads may not prompt at
 * once. Returns 0; MLREG_EAUTH when there is no terminal
 * and no MLREG_KEY_PASSWORD, or the two entries differ; MLREG_EINVALID
 * (longer than MLREG_PASSWORD_MAX bytes, or contains a NUL); MLREG_EIO;
 * MLREG_ENOMEM.
 */
int mlreg_password_read(char **out, const char *prompt, unsigned flags);

/** Wipes and frees a password from mlreg_password_read(); NULL is a no-op. */
void mlreg_password_free(char *password);

/* ---- plain Ed25519 ------------------------------------------------------- */

/** Bytes of an Ed25519 signature. */
#define MLREG_ED25519_SIG_BYTES 64

/**
 * The Ed25519 signature of the @p len bytes at @p data (signed as they are:
 * callers prefix their own context string) with @p sk.
 * 0, or MLREG_EINVALID (libsodium refused).
 */
int mlreg_ed25519_sign(unsigned char sig[MLREG_ED25519_SIG_BYTES], const mlreg_seckey *sk,
                       const void *data, size_t len);

/** 0 when @p sig is @p pk's signature of the @p len bytes at @p data, else
 *  MLREG_ESIGNATURE. */
int mlreg_ed25519_verify(const unsigned char sig[MLREG_ED25519_SIG_BYTES], const mlreg_pubkey *pk,
                         const void *data, size_t len);

#endif
