/**
 * @file digest.h
 * @brief `sha256:<64 lowercase hex>` digests and streaming SHA-256 (OpenSSL EVP).
 *
 * A digest is always of the raw bytes, never of a normalised form. Parsing is
 * strict: only the `sha256` algorithm, exactly 64 lowercase hex digits, no
 * surrounding whitespace.
 */
#ifndef MLREG_DIGEST_H
#define MLREG_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define MLREG_DIGEST_RAWLEN 32
/** Length of "sha256:" + 64 hex, without the terminating NUL. */
#define MLREG_DIGEST_STRLEN 71
#define MLREG_DIGEST_HEXLEN 64

typedef struct {
    unsigned char raw[MLREG_DIGEST_RAWLEN];
} mlreg_digest;

/** Parses a NUL-terminated "sha256:<hex>". 0 or MLREG_EINVALID (message set). */
int mlreg_digest_parse(mlreg_digest *out, const char *str);

/** As mlreg_digest_parse, for @p len bytes that need not be NUL-terminated. */
int mlreg_digest_parse_n(mlreg_digest *out, const char *str, size_t len);

/** Parses a bare 64-hex string (no "sha256:" prefix). 0 or MLREG_EINVALID. */
int mlreg_digest_parse_hex(mlreg_digest *out, const char *hex, size_t len);

/** Writes "sha256:<hex>" and a NUL into @p out (MLREG_DIGEST_STRLEN + 1 bytes). */
void mlreg_digest_format(char out[MLREG_DIGEST_STRLEN + 1], const mlreg_digest *d);

/** Writes the 64 hex digits and a NUL into @p out. */
void mlreg_digest_hex(char out[MLREG_DIGEST_HEXLEN + 1], const mlreg_digest *d);

/** 1 when equal, 0 otherwise. */
int mlreg_digest_equal(const mlreg_digest *a, const mlreg_digest *b);

/** Streaming SHA-256 state. Opaque; free with mlreg_hasher_free(). */
typedef struct mlreg_hasher mlreg_hasher;

/** Allocates a fresh hasher into @p out. 0 or MLREG_ENOMEM. */
int mlreg_hasher_new(mlreg_hasher **out);
/** Feeds @p len bytes. 0 or MLREG_EIO (OpenSSL failure). */
int mlreg_hasher_update(mlreg_hasher *h, const void *data, size_t len);
/** Finishes into @p out. The hasher may not be updated afterwards. */
int mlreg_hasher_final(mlreg_digest *out, mlreg_hasher *h);
/** Frees @p h; NULL is a no-op. */
void mlreg_hasher_free(mlreg_hasher *h);

/** One-shot digest of a buffer. */
int mlreg_digest_buffer(mlreg_digest *out, const void *data, size_t len);

/**
 * Digest of everything readable from @p fd, streamed in fixed-size chunks
 * (memory does not grow with the file). @p size_out (may be NULL) receives
 * the byte count. 0 or MLREG_EIO.
 */
int mlreg_digest_fd(mlreg_digest *out, uint64_t *size_out, int fd);

#endif
