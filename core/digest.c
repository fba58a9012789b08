/* digest.c: strict `sha256:<hex>` digests and streaming SHA-256 through OpenSSL EVP. */
#include "mlreg/digest.h"
#include "mlreg/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define DIGEST_PREFIX     "sha256:"
#define DIGEST_PREFIX_LEN 7

/* mlreg_digest_fd reads in fixed chunks so memory never grows with the file.
 * 256 KiB keeps syscall overhead small against ~1.3 GB/s hashing; it is heap
 * allocated because server worker threads may have small stacks. */
#define DIGEST_FD_BUFSIZE (256 * 1024)

struct mlreg_hasher {
    EVP_MD_CTX *ctx;
    int finished;
};

static const char hex_chars[] = "0123456789abcdef";

/* Only lowercase: a digest has exactly one spelling, so the same blob can never
 * be addressed (or cached, or signed) under two different strings. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int mlreg_digest_parse_hex(mlreg_digest *out, const char *hex, size_t len)
{
    mlreg_digest d;
    size_t i;

    if (hex == NULL) return mlreg_error_set(MLREG_EINVALID, "invalid digest: missing hex digits");
    if (len != MLREG_DIGEST_HEXLEN)
        return mlreg_error_set(MLREG_EINVALID,
                               "invalid digest: expected 64 lowercase hex digits, got %zu "
                               "characters",
                               len);
    for (i = 0; i < MLREG_DIGEST_RAWLEN; i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "invalid digest: character %zu is not a lowercase hex digit",
                                   hi < 0 ? 2 * i : 2 * i + 1);
        d.raw[i] = (unsigned char)(hi << 4 | lo);
    }
    *out = d;
    return 0;
}

int mlreg_digest_parse_n(mlreg_digest *out, const char *str, size_t len)
{
    if (str == NULL) return mlreg_error_set(MLREG_EINVALID, "invalid digest: missing");
    if (len < DIGEST_PREFIX_LEN || memcmp(str, DIGEST_PREFIX, DIGEST_PREFIX_LEN) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "invalid digest: only sha256:<64 lowercase hex> is supported");
    return mlreg_digest_parse_hex(out, str + DIGEST_PREFIX_LEN, len - DIGEST_PREFIX_LEN);
}

int mlreg_digest_parse(mlreg_digest *out, const char *str)
{
    if (str == NULL) return mlreg_error_set(MLREG_EINVALID, "invalid digest: missing");
    return mlreg_digest_parse_n(out, str, strlen(str));
}

void mlreg_digest_hex(char out[MLREG_DIGEST_HEXLEN + 1], const mlreg_digest *d)
{
    size_t i;

    for (i = 0; i < MLREG_DIGEST_RAWLEN; i++) {
        out[2 * i] = hex_chars[d->raw[i] >> 4];
        out[2 * i + 1] = hex_chars[d->raw[i] & 0x0f];
    }
    out[MLREG_DIGEST_HEXLEN] = '\0';
}

void mlreg_digest_format(char out[MLREG_DIGEST_STRLEN + 1], const mlreg_digest *d)
{
    memcpy(out, DIGEST_PREFIX, DIGEST_PREFIX_LEN);
    mlreg_digest_hex(out + DIGEST_PREFIX_LEN, d);
}

int mlreg_digest_equal(const mlreg_digest *a, const mlreg_digest *b)
{
    return memcmp(a->raw, b->raw, MLREG_DIGEST_RAWLEN) == 0;
}

int mlreg_hasher_new(mlreg_hasher **out)
{
    int error = 0;
    mlreg_hasher *h = NULL;

    if ((h = calloc(1, sizeof(*h))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a hasher");
        goto done;
    }
    if ((h->ctx = EVP_MD_CTX_new()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating an evp context");
        goto done;
    }
    if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        error = mlreg_error_set(MLREG_EIO, "openssl sha-256 initialisation failed");
        goto done;
    }

done:
    if (error < 0) {
        mlreg_hasher_free(h);
        return error;
    }
    *out = h;
    return 0;
}

int mlreg_hasher_update(mlreg_hasher *h, const void *data, size_t len)
{
    if (h->finished) return mlreg_error_set(MLREG_EINVALID, "hasher updated after it was finished");
    if (len == 0) return 0;
    if (EVP_DigestUpdate(h->ctx, data, len) != 1)
        return mlreg_error_set(MLREG_EIO, "openssl sha-256 update failed");
    return 0;
}

int mlreg_hasher_final(mlreg_digest *out, mlreg_hasher *h)
{
    unsigned int mdlen = 0;
    unsigned char md[EVP_MAX_MD_SIZE];

    if (h->finished) return mlreg_error_set(MLREG_EINVALID, "hasher finished twice");
    h->finished = 1;
    if (EVP_DigestFinal_ex(h->ctx, md, &mdlen) != 1 || mdlen != MLREG_DIGEST_RAWLEN)
        return mlreg_error_set(MLREG_EIO, "openssl sha-256 finalisation failed");
    memcpy(out->raw, md, MLREG_DIGEST_RAWLEN);
    return 0;
}

void mlreg_hasher_free(mlreg_hasher *h)
{
    if (h == NULL) return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int mlreg_digest_buffer(mlreg_digest *out, const void *data, size_t len)
{
    unsigned int mdlen = 0;
    unsigned char md[EVP_MAX_MD_SIZE];

    /* EVP_Digest rejects a NULL pointer even for zero bytes on some versions. */
    if (data == NULL && len == 0) data = "";
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != MLREG_DIGEST_RAWLEN)
        return mlreg_error_set(MLREG_EIO, "openssl sha-256 failed");
    memcpy(out->raw, md, MLREG_DIGEST_RAWLEN);
    return 0;
}

int mlreg_digest_fd(mlreg_digest *out, uint64_t *size_out, int fd)
{
    int error = 0;
    mlreg_hasher *h = NULL;
    unsigned char *buf = NULL;
    uint64_t total = 0;
    mlreg_digest d;

    if ((buf = malloc(DIGEST_FD_BUFSIZE)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a read buffer");
        goto done;
    }
    if ((error = mlreg_hasher_new(&h)) < 0) goto done;

    for (;;) {
        ssize_t n = read(fd, buf, DIGEST_FD_BUFSIZE);
        if (n < 0) {
            if (errno == EINTR) continue;
            error = mlreg_error_set(MLREG_EIO, "read for sha-256: %s", strerror(errno));
            goto done;
        }
        if (n == 0) break;
        if ((error = mlreg_hasher_update(h, buf, (size_t)n)) < 0) goto done;
        total += (uint64_t)n;
    }
    if ((error = mlreg_hasher_final(&d, h)) < 0) goto done;

done:
    mlreg_hasher_free(h);
    free(buf);
    if (error < 0) return error;
    *out = d;
    if (size_out != NULL) *size_out = total;
    return 0;
}
