/* sign_internal.h: helpers shared by the files of signing/. Not a public API;
 * nothing outside signing/ includes it.
 *
 * The three text formats (public key, secret key, signature) are all "lines
 * of an untrusted comment, base64 blobs and a trusted comment", so the
 * strict line splitting, comment and base64 checks live here once, and each
 * format only says how many lines it has and what each one holds.
 */
#ifndef MLREG_SIGN_INTERNAL_H
#define MLREG_SIGN_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "mlreg/file.h"
#include "mlreg/sign.h"

#define SIG_ALG        "Ed" /* Ed25519 over the raw data; also the key algorithm */
#define SIG_ALG_HASHED "ED" /* Ed25519 over BLAKE2b-512(data) */
#define KDF_ALG        "Sc" /* scrypt (crypto_pwhash_scryptsalsa208sha256) */
#define KDF_NONE       "\0\0"
#define CHK_ALG        "B2" /* BLAKE2b-256 checksum of the secret key */
#define COMMENT_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "
#define ALG_BYTES      2

/* A secret key: always in sodium_malloc memory, read-only once filled
 * (keys.c allocates, seals and frees it; sig.c signs with it). */
struct mlreg_seckey {
    mlreg_keyid id;
    unsigned char sk[64]; /* Ed25519: seed (32) ‖ public key (32) */
};

/* One line of a text: where it starts and its length without the '\n'. */
typedef struct {
    const char *p;
    size_t len;
} text_line;

/* sodium_init() once; every public entry point that touches libsodium calls
 * it first. 0 or MLREG_EIO. */
int mlreg_signing__init(void);

/* Splits @p len bytes of @p text into exactly @p want lines. Every line ends
 * with '\n' except that the last one may lack it; nothing may follow; no
 * line may hold '\r' or NUL. @p what names the format in the message
 * ("malformed <what>: ..."). 0 or MLREG_EINVALID. */
int mlreg_signing__split_lines(text_line *lines, size_t want, const char *text, size_t len,
                               const char *what);

/* Checks that line @p lineno (1-based, for the message) starts with
 * @p prefix and that the rest is at most @p max bytes; *comment_out and
 * *len_out receive that rest (pointing into the line). 0 or MLREG_EINVALID. */
int mlreg_signing__comment_line(const char **comment_out, size_t *len_out, text_line line,
                                const char *prefix, size_t max, const char *what, size_t lineno);

/* Decodes line @p lineno as canonical padded base64 (original alphabet) of
 * exactly @p outlen bytes into @p out. On failure @p out holds nothing
 * useful. 0 or MLREG_EINVALID. */
int mlreg_signing__base64_line(unsigned char *out, size_t outlen, text_line line, const char *what,
                               size_t lineno);

/* Checks a comment that is about to be written: at most @p max bytes, no
 * '\r' or '\n'. @p what names it in the message. 0 or MLREG_EINVALID. */
int mlreg_signing__check_comment(const char *comment, size_t max, const char *what);

/* Reads the whole regular file at @p path into @p buf, which holds @p cap
 * bytes; a file of @p cap bytes or more, or anything but a regular file
 * (a FIFO would block, a device never end), is refused. *len_out receives the length.
 * 0, MLREG_ENOTFOUND, MLREG_EINVALID (too large), MLREG_EIO. */
int mlreg_signing__read_file(char *buf, size_t cap, size_t *len_out, const char *path,
                             const char *what);

/* One piece of a file being written. */
typedef struct {
    const void *p;
    size_t len;
} file_part;

/* Starts writing the key file @p path with @p mode (less the umask) through
 * file.h's writer, never replacing anything: an existing path, symlink or
 * not, is MLREG_EEXISTS here at once, before any slow work (scrypt).
 * Finish with mlreg_signing__key_file_finish() or mlreg_file_abort().
 * 0, MLREG_EEXISTS, MLREG_ENOTFOUND (no such directory), MLREG_EIO. */
int mlreg_signing__key_file_open(mlreg_file **out, const char *path, mode_t mode);

/* Writes the @p n parts to @p f and commits it under @p path (fsync, link,
 * fsync of the directory). Always consumes @p f; on failure nothing is left
 * at @p path. 0, MLREG_EEXISTS (the path appeared meanwhile), MLREG_EIO. */
int mlreg_signing__key_file_finish(mlreg_file *f, const char *path, const file_part *parts,
                                   size_t n);

#endif
