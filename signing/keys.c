/* keys.c: key ids, public keys and secret keys in minisign's file formats.
 *
 * Secret material (the decoded key line, the scrypt stream, checksums, the
 * file text of a secret key, base64 of it) only ever sits in sodium_malloc
 * memory or in a stack variable that is wiped before returning; a held
 * mlreg_seckey is read-only until it is wiped and freed.
 */
#include "mlreg/sign.h"

#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "sign_internal.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_BYTES crypto_pwhash_scryptsalsa208sha256_SALTBYTES
#define CHK_BYTES  crypto_generichash_BYTES
#define SK_BYTES   crypto_sign_SECRETKEYBYTES
#define SEED_BYTES crypto_sign_SEEDBYTES

/* Layout of a decoded public key line. */
enum { PK_OFF_KEYID = ALG_BYTES, PK_OFF_PK = PK_OFF_KEYID + MLREG_KEYID_BYTES, PK_RAW_BYTES = 42 };

/* Layout of a decoded secret key line: the 54-byte header in clear, then
 * keynum_sk (key id, Ed25519 secret key = seed ‖ public key, checksum),
 * which scrypt's stream encrypts. */
enum {
    SK_OFF_KDF = 2,
    SK_OFF_CHK_ALG = 4,
    SK_OFF_SALT = 6,
    SK_OFF_OPSLIMIT = SK_OFF_SALT + SALT_BYTES,
    SK_OFF_MEMLIMIT = SK_OFF_OPSLIMIT + 8,
    SK_OFF_KEYNUM = SK_OFF_MEMLIMIT + 8,
    SK_OFF_KEYID = SK_OFF_KEYNUM,
    SK_OFF_SK = SK_OFF_KEYID + MLREG_KEYID_BYTES,
    SK_OFF_CHK = SK_OFF_SK + SK_BYTES,
    SK_RAW_BYTES = SK_OFF_CHK + CHK_BYTES,
    KEYNUM_BYTES = SK_RAW_BYTES - SK_OFF_KEYNUM
};

/* Base64 of the secret key line, without the NUL. */
#define SK_B64_LEN (sodium_base64_ENCODED_LEN(SK_RAW_BYTES, sodium_base64_VARIANT_ORIGINAL) - 1)
/* Cap on key files read: comment line + key line fit with room to spare. */
#define KEYFILE_MAX 4096

/* Scratch space for one secret key operation, all in guarded memory. */
typedef struct {
    unsigned char raw[SK_RAW_BYTES];
    unsigned char stream[KEYNUM_BYTES];
    unsigned char chk[CHK_BYTES];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[SK_BYTES];
    char b64[SK_B64_LEN + 1];
    char file[KEYFILE_MAX];
} seckey_work;

_Static_assert(sizeof(((mlreg_seckey *)0)->sk) == SK_BYTES, "Ed25519 secret key size");

static const char sk_what[] = "secret key";
static const char pk_what[] = "public key";

/* ---- key ids --------------------------------------------------------- */

void mlreg_keyid_format(char out[MLREG_KEYID_HEXLEN + 1], const mlreg_keyid *id)
{
    static const char hex[] = "0123456789ABCDEF";

    /* minisign prints the id as a little-endian uint64 with %016llX. */
    for (size_t i = 0; i < MLREG_KEYID_BYTES; i++) {
        unsigned char b = id->raw[MLREG_KEYID_BYTES - 1 - i];
        out[2 * i] = hex[b >> 4];
        out[2 * i + 1] = hex[b & 0x0f];
    }
    out[MLREG_KEYID_HEXLEN] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int mlreg_keyid_parse(mlreg_keyid *out, const char *hex, size_t len)
{
    mlreg_keyid id;

    if (len != MLREG_KEYID_HEXLEN)
        return mlreg_error_set(MLREG_EINVALID, "key id must be %d hex digits", MLREG_KEYID_HEXLEN);
    for (size_t i = 0; i < MLREG_KEYID_BYTES; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return mlreg_error_set(MLREG_EINVALID, "key id must be %d hex digits",
                                   MLREG_KEYID_HEXLEN);
        id.raw[MLREG_KEYID_BYTES - 1 - i] = (unsigned char)(hi << 4 | lo);
    }
    *out = id;
    return 0;
}

int mlreg_keyid_equal(const mlreg_keyid *a, const mlreg_keyid *b)
{
    return sodium_memcmp(a->raw, b->raw, MLREG_KEYID_BYTES) == 0;
}

/* ---- public keys ------------------------------------------------------- */

int mlreg_pubkey_parse(mlreg_pubkey *out, const char *text, size_t len)
{
    int error = 0;
    text_line lines[2];
    unsigned char raw[PK_RAW_BYTES];
    const char *comment;
    size_t clen, prefix_len = strlen(COMMENT_PREFIX);
    size_t key_line = 0;

    if ((error = mlreg_signing__init()) < 0) return error;
    /* A `.pub` file starts with its comment line; `minisign -P` and
     * configs carry the bare base64 line alone. */
    if (len >= prefix_len && memcmp(text, COMMENT_PREFIX, prefix_len) == 0) {
        if ((error = mlreg_signing__split_lines(lines, 2, text, len, pk_what)) < 0 ||
            (error = mlreg_signing__comment_line(&comment, &clen, lines[0], COMMENT_PREFIX,
                                                 MLREG_SIGN_UNTRUSTED_COMMENT_MAX, pk_what, 1)) < 0)
            return error;
        key_line = 1;
    } else {
        const char *nl = len ? memchr(text, '\n', len) : NULL;
        /* More than one line: a `.pub` file whose first line is wrong. */
        if (nl && (size_t)(nl - text) + 1 < len)
            return mlreg_error_set(MLREG_EINVALID,
                                   "malformed public key: line 1 does not start with \"%s\"",
                                   COMMENT_PREFIX);
        if ((error = mlreg_signing__split_lines(lines, 1, text, len, pk_what)) < 0) return error;
    }
    if ((error = mlreg_signing__base64_line(raw, sizeof(raw), lines[key_line], pk_what,
                                            key_line + 1)) < 0)
        return error;
    if (memcmp(raw, SIG_ALG, ALG_BYTES) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "malformed public key: unsupported algorithm 0x%02x%02x, expected "
                               "\"Ed\"",
                               raw[0], raw[1]);
    memcpy(out->id.raw, raw + PK_OFF_KEYID, MLREG_KEYID_BYTES);
    memcpy(out->pk, raw + PK_OFF_PK, MLREG_PUBKEY_BYTES);
    return 0;
}

void mlreg_pubkey_base64(char out[MLREG_PUBKEY_B64LEN + 1], const mlreg_pubkey *pk)
{
    unsigned char raw[PK_RAW_BYTES];

    memcpy(raw, SIG_ALG, ALG_BYTES);
    memcpy(raw + PK_OFF_KEYID, pk->id.raw, MLREG_KEYID_BYTES);
    memcpy(raw + PK_OFF_PK, pk->pk, MLREG_PUBKEY_BYTES);
    sodium_bin2base64(out, MLREG_PUBKEY_B64LEN + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_ORIGINAL);
}

int mlreg_pubkey_format(char **out, const mlreg_pubkey *pk, const char *comment)
{
    int error = 0;
    char dflt[64], id[MLREG_KEYID_HEXLEN + 1], b64[MLREG_PUBKEY_B64LEN + 1];
    char *text = NULL;
    size_t size;

    *out = NULL;
    if ((error = mlreg_signing__init()) < 0) return error;
    if (!comment) {
        mlreg_keyid_format(id, &pk->id);
        snprintf(dflt, sizeof(dflt), "mlreg public key %s", id);
        comment = dflt;
    }
    if ((error = mlreg_signing__check_comment(comment, MLREG_SIGN_UNTRUSTED_COMMENT_MAX,
                                              "public key comment")) < 0)
        return error;
    mlreg_pubkey_base64(b64, pk);
    size = strlen(COMMENT_PREFIX) + strlen(comment) + 1 + MLREG_PUBKEY_B64LEN + 1 + 1;
    if (!(text = malloc(size)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory formatting a public key");
    snprintf(text, size, "%s%s\n%s\n", COMMENT_PREFIX, comment, b64);
    *out = text;
    return 0;
}

int mlreg_pubkey_equal(const mlreg_pubkey *a, const mlreg_pubkey *b)
{
    return mlreg_keyid_equal(&a->id, &b->id) &&
           sodium_memcmp(a->pk, b->pk, MLREG_PUBKEY_BYTES) == 0;
}

int mlreg_pubkey_load(mlreg_pubkey *out, const char *path)
{
    int error = 0;
    char buf[KEYFILE_MAX];
    size_t len = 0;

    if ((error = mlreg_signing__read_file(buf, sizeof(buf), &len, path, "public key file")) < 0)
        return error;
    return mlreg_pubkey_parse(out, buf, len);
}

int mlreg_pubkey_save(const char *path, const mlreg_pubkey *pk, const char *comment)
{
    int error = 0;
    char *text = NULL;
    mlreg_file *f = NULL;

    if ((error = mlreg_pubkey_format(&text, pk, comment)) < 0) goto done;
    if ((error = mlreg_signing__key_file_open(&f, path, 0644)) < 0) goto done;
    file_part part = {text, strlen(text)};
    error = mlreg_signing__key_file_finish(f, path, &part, 1);
done:
    free(text);
    return error;
}

/* ---- secret keys ------------------------------------------------------- */

/* Guarded, zeroed scratch space for one operation; free with work_free. */
static int work_new(seckey_work **out)
{
    seckey_work *w = sodium_malloc(sizeof(*w));

    /* The code is returned as a constant, not mlreg_error_set()'s result,
     * so the compiler sees that no caller goes on with w == NULL. */
    if (!w) {
        mlreg_error_set(MLREG_ENOMEM, "cannot allocate guarded memory for a secret key");
        return MLREG_ENOMEM;
    }
    sodium_memzero(w, sizeof(*w));
    *out = w;
    return 0;
}

static void work_free(seckey_work *w)
{
    if (!w) return;
    sodium_memzero(w, sizeof(*w));
    sodium_free(w);
}

void mlreg_seckey_free(mlreg_seckey *sk)
{
    if (!sk) return;
    sodium_mprotect_readwrite(sk);
    sodium_memzero(sk, sizeof(*sk));
    sodium_free(sk);
}

/* A new, writable key in guarded memory; seal it once filled. */
static int seckey_alloc(mlreg_seckey **out)
{
    mlreg_seckey *sk = sodium_malloc(sizeof(*sk));

    if (!sk)
        return mlreg_error_set(MLREG_ENOMEM, "cannot allocate guarded memory for a secret key");
    *out = sk;
    return 0;
}

/* Read-only from here on: a stray write into a held key faults at once. */
static void seckey_seal(mlreg_seckey *sk)
{
    sodium_mprotect_readonly(sk);
}

/* minisign's checksum: BLAKE2b-256 over sig_alg ‖ key id ‖ secret key. */
static void compute_checksum(unsigned char chk[CHK_BYTES], const unsigned char *keyid,
                             const unsigned char *sk)
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, CHK_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)SIG_ALG, ALG_BYTES);
    crypto_generichash_update(&st, keyid, MLREG_KEYID_BYTES);
    crypto_generichash_update(&st, sk, SK_BYTES);
    crypto_generichash_final(&st, chk, CHK_BYTES);
    sodium_memzero(&st, sizeof(st));
}

/* XORs keynum_sk of @p raw with scrypt(password, salt, limits) read from
 * the header of @p raw: encryption and decryption are the same step. */
static int xor_kdf_stream(seckey_work *w, const char *password)
{
    uint64_t ops = mlreg_le64_get(w->raw + SK_OFF_OPSLIMIT),
             mem = mlreg_le64_get(w->raw + SK_OFF_MEMLIMIT);

    /* A key file is local input, but its limits still decide how long and
     * how much memory scrypt takes: keep them to what libsodium allows. */
    if (ops < crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_MIN ||
        ops > crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_MAX ||
        mem < crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_MIN ||
        mem > crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_MAX)
        return mlreg_error_set(MLREG_EINVALID,
                               "malformed secret key: scrypt limits out of range (opslimit %llu, "
                               "memlimit %llu)",
                               (unsigned long long)ops, (unsigned long long)mem);
    if (crypto_pwhash_scryptsalsa208sha256(w->stream, KEYNUM_BYTES, password, strlen(password),
                                           w->raw + SK_OFF_SALT, (unsigned long long)ops,
                                           (size_t)mem) != 0)
        return mlreg_error_set(MLREG_ENOMEM, "scrypt key derivation failed (memlimit %llu bytes)",
                               (unsigned long long)mem);
    for (size_t i = 0; i < KEYNUM_BYTES; i++)
        w->raw[SK_OFF_KEYNUM + i] ^= w->stream[i];
    sodium_memzero(w->stream, sizeof(w->stream));
    return 0;
}

/* Splits and decodes a `.key` text into w->raw and checks the algorithm
 * bytes; the kdf bytes are the caller's to interpret. */
static int decode_seckey(seckey_work *w, const char *text, size_t len)
{
    int error = 0;
    text_line lines[2];
    const char *comment;
    size_t clen;

    if ((error = mlreg_signing__split_lines(lines, 2, text, len, sk_what)) < 0 ||
        (error = mlreg_signing__comment_line(&comment, &clen, lines[0], COMMENT_PREFIX,
                                             MLREG_SIGN_UNTRUSTED_COMMENT_MAX, sk_what, 1)) < 0 ||
        (error = mlreg_signing__base64_line(w->raw, SK_RAW_BYTES, lines[1], sk_what, 2)) < 0)
        return error;
    if (memcmp(w->raw, SIG_ALG, ALG_BYTES) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "malformed secret key: unsupported algorithm 0x%02x%02x, expected "
                               "\"Ed\"",
                               w->raw[0], w->raw[1]);
    if (memcmp(w->raw + SK_OFF_CHK_ALG, CHK_ALG, ALG_BYTES) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "malformed secret key: unsupported checksum algorithm 0x%02x%02x, "
                               "expected \"B2\"",
                               w->raw[SK_OFF_CHK_ALG], w->raw[SK_OFF_CHK_ALG + 1]);
    if (memcmp(w->raw + SK_OFF_KDF, KDF_ALG, ALG_BYTES) != 0 &&
        memcmp(w->raw + SK_OFF_KDF, KDF_NONE, ALG_BYTES) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "malformed secret key: unsupported key derivation 0x%02x%02x, "
                               "expected \"Sc\" or 0000",
                               w->raw[SK_OFF_KDF], w->raw[SK_OFF_KDF + 1]);
    return 0;
}

static int is_encrypted(const seckey_work *w)
{
    return memcmp(w->raw + SK_OFF_KDF, KDF_ALG, ALG_BYTES) == 0;
}

/* Parses into @p w and builds the key. @p w is the caller's to wipe. */
static int seckey_from_text(mlreg_seckey **out, seckey_work *w, const char *text, size_t len,
                            const char *password)
{
    int error = 0;
    mlreg_seckey *sk = NULL;

    if ((error = decode_seckey(w, text, len)) < 0) goto done;
    if (is_encrypted(w)) {
        if (!password) {
            error = mlreg_error_set(MLREG_EAUTH, "secret key is encrypted: password required");
            goto done;
        }
        if ((error = xor_kdf_stream(w, password)) < 0) goto done;
        compute_checksum(w->chk, w->raw + SK_OFF_KEYID, w->raw + SK_OFF_SK);
        if (sodium_memcmp(w->chk, w->raw + SK_OFF_CHK, CHK_BYTES) != 0) {
            error = mlreg_error_set(MLREG_EAUTH, "wrong password or corrupt key");
            goto done;
        }
    }
    /* An unencrypted key has no checksum (minisign -W writes zeros), so
     * check the one thing that would make every signature it makes fail:
     * the public half stored after the seed must be the seed's. */
    crypto_sign_seed_keypair(w->pk, w->sk, w->raw + SK_OFF_SK);
    if (sodium_memcmp(w->pk, w->raw + SK_OFF_SK + SEED_BYTES, sizeof(w->pk)) != 0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "corrupt secret key: its public half does not match its seed");
        goto done;
    }
    if ((error = seckey_alloc(&sk)) < 0) goto done;
    memcpy(sk->id.raw, w->raw + SK_OFF_KEYID, MLREG_KEYID_BYTES);
    memcpy(sk->sk, w->raw + SK_OFF_SK, SK_BYTES);
    seckey_seal(sk);
    *out = sk;
    sk = NULL;
done:
    mlreg_seckey_free(sk);
    return error;
}

int mlreg_seckey_parse(mlreg_seckey **out, const char *text, size_t len, const char *password)
{
    int error = 0;
    seckey_work *w = NULL;

    *out = NULL;
    if ((error = mlreg_signing__init()) < 0 || (error = work_new(&w)) < 0) goto done;
    error = seckey_from_text(out, w, text, len, password);
done:
    work_free(w);
    return error;
}

int mlreg_seckey_load(mlreg_seckey **out, const char *path, const char *password)
{
    int error = 0;
    seckey_work *w = NULL;
    size_t len = 0;

    *out = NULL;
    if ((error = mlreg_signing__init()) < 0 || (error = work_new(&w)) < 0) goto done;
    if ((error =
             mlreg_signing__read_file(w->file, sizeof(w->file), &len, path, "secret key file")) < 0)
        goto done;
    error = seckey_from_text(out, w, w->file, len, password);
done:
    work_free(w);
    return error;
}

int mlreg_seckey_needs_password(int *out, const char *path)
{
    int error = 0;
    seckey_work *w = NULL;
    size_t len = 0;

    if ((error = mlreg_signing__init()) < 0 || (error = work_new(&w)) < 0) goto done;
    if ((error = mlreg_signing__read_file(w->file, sizeof(w->file), &len, path,
                                          "secret key file")) < 0 ||
        (error = decode_seckey(w, w->file, len)) < 0)
        goto done;
    *out = is_encrypted(w);
done:
    work_free(w);
    return error;
}

int mlreg_seckey_generate(mlreg_seckey **out)
{
    int error = 0;
    mlreg_seckey *sk = NULL;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];

    *out = NULL;
    if ((error = mlreg_signing__init()) < 0 || (error = seckey_alloc(&sk)) < 0) return error;
    randombytes_buf(sk->id.raw, MLREG_KEYID_BYTES);
    crypto_sign_keypair(pk, sk->sk);
    seckey_seal(sk);
    *out = sk;
    return 0;
}

void mlreg_seckey_pubkey(mlreg_pubkey *out, const mlreg_seckey *sk)
{
    out->id = sk->id;
    memcpy(out->pk, sk->sk + SEED_BYTES, MLREG_PUBKEY_BYTES);
}

int mlreg_seckey_save(const char *path, const mlreg_seckey *sk, const char *password,
                      const char *comment)
{
    int error = 0;
    seckey_work *w = NULL;
    mlreg_file *f = NULL;

    if (!comment)
        comment = password ? "mlreg encrypted secret key" : "mlreg unencrypted secret key";
    if ((error = mlreg_signing__init()) < 0 ||
        (error = mlreg_signing__check_comment(comment, MLREG_SIGN_UNTRUSTED_COMMENT_MAX,
                                              "secret key comment")) < 0)
        goto done;
    if (password && strlen(password) > MLREG_PASSWORD_MAX) {
        error =
            mlreg_error_set(MLREG_EINVALID, "password is longer than %d bytes", MLREG_PASSWORD_MAX);
        goto done;
    }
    if ((error = work_new(&w)) < 0) goto done;
    /* Start the file before scrypt's seconds of work, so an existing
     * file is reported at once. */
    if ((error = mlreg_signing__key_file_open(&f, path, 0600)) < 0) goto done;

    /* Unencrypted, everything but the key stays zero, byte for byte what
     * `minisign -G -W` writes (work_new zeroed the buffer). */
    memcpy(w->raw, SIG_ALG, ALG_BYTES);
    memcpy(w->raw + SK_OFF_CHK_ALG, CHK_ALG, ALG_BYTES);
    memcpy(w->raw + SK_OFF_KEYID, sk->id.raw, MLREG_KEYID_BYTES);
    memcpy(w->raw + SK_OFF_SK, sk->sk, SK_BYTES);
    if (password) {
        memcpy(w->raw + SK_OFF_KDF, KDF_ALG, ALG_BYTES);
        randombytes_buf(w->raw + SK_OFF_SALT, SALT_BYTES);
        mlreg_le64_put(w->raw + SK_OFF_OPSLIMIT,
                       crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE);
        mlreg_le64_put(w->raw + SK_OFF_MEMLIMIT,
                       crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE);
        compute_checksum(w->raw + SK_OFF_CHK, w->raw + SK_OFF_KEYID, w->raw + SK_OFF_SK);
        if ((error = xor_kdf_stream(w, password)) < 0) goto done;
    }
    sodium_bin2base64(w->b64, sizeof(w->b64), w->raw, SK_RAW_BYTES, sodium_base64_VARIANT_ORIGINAL);
    file_part parts[] = {{COMMENT_PREFIX, strlen(COMMENT_PREFIX)},
                         {comment, strlen(comment)},
                         {"\n", 1},
                         {w->b64, SK_B64_LEN},
                         {"\n", 1}};
    error = mlreg_signing__key_file_finish(f, path, parts, sizeof(parts) / sizeof(parts[0]));
    f = NULL;
done:
    mlreg_file_abort(f);
    work_free(w);
    return error;
}

int mlreg_ed25519_sign(unsigned char sig[MLREG_ED25519_SIG_BYTES], const mlreg_seckey *sk,
                       const void *data, size_t len)
{
    if (crypto_sign_detached(sig, NULL, data, len, sk->sk) != 0)
        return mlreg_error_set(MLREG_EINVALID, "ed25519: cannot sign");
    return 0;
}

int mlreg_ed25519_verify(const unsigned char sig[MLREG_ED25519_SIG_BYTES], const mlreg_pubkey *pk,
                         const void *data, size_t len)
{
    if (crypto_sign_verify_detached(sig, data, len, pk->pk) != 0)
        return mlreg_error_set(MLREG_ESIGNATURE, "the Ed25519 signature does not verify");
    return 0;
}
