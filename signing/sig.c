/* sig.c: BLAKE2b-512 prehash, signing, and parsing and verifying `.minisig`
 * files.
 *
 * A signature file has four lines: untrusted comment, base64("ED" or "Ed" ‖
 * key id ‖ Ed25519 signature), trusted comment, base64(global signature).
 * The first signature covers BLAKE2b-512(data) ("ED", what minisign 0.11
 * and mlreg write) or the raw data ("Ed", legacy, verify only). The global
 * signature covers the first signature followed by the trusted comment's
 * text, which is what makes the trusted comment trustworthy.
 */
#include "mlreg/sign.h"

#include "mlreg/common.h"
#include "sign_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIG_BYTES crypto_sign_BYTES
/* Decoded second line: algorithm ‖ key id ‖ signature. */
enum { SIG_OFF_KEYID = ALG_BYTES, SIG_OFF_SIG = SIG_OFF_KEYID + MLREG_KEYID_BYTES };
#define SIG_RAW_BYTES (SIG_OFF_SIG + SIG_BYTES)
#define SIG_B64_LEN   (sodium_base64_ENCODED_LEN(SIG_RAW_BYTES, sodium_base64_VARIANT_ORIGINAL) - 1)
#define GSIG_B64_LEN  (sodium_base64_ENCODED_LEN(SIG_BYTES, sodium_base64_VARIANT_ORIGINAL) - 1)
#define READ_CHUNK    (64 * 1024)

static const char sig_what[] = "signature";

/* ---- prehash ----------------------------------------------------------- */

/* crypto_generichash_state must be 64-byte aligned, more than malloc
 * promises, hence aligned_alloc. */
struct mlreg_prehash {
    crypto_generichash_state st;
};

int mlreg_prehash_new(mlreg_prehash **out)
{
    int error = 0;
    mlreg_prehash *h;

    *out = NULL;
    if ((error = mlreg_signing__init()) < 0) return error;
    if (!(h = aligned_alloc(alignof(mlreg_prehash), sizeof(mlreg_prehash))))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory for a prehash state");
    crypto_generichash_init(&h->st, NULL, 0, MLREG_PREHASH_BYTES);
    *out = h;
    return 0;
}

int mlreg_prehash_update(mlreg_prehash *h, const void *data, size_t len)
{
    if (len && crypto_generichash_update(&h->st, data, len) != 0)
        return mlreg_error_set(MLREG_EINVALID, "blake2b update failed");
    return 0;
}

int mlreg_prehash_final(unsigned char out[MLREG_PREHASH_BYTES], mlreg_prehash *h)
{
    if (crypto_generichash_final(&h->st, out, MLREG_PREHASH_BYTES) != 0)
        return mlreg_error_set(MLREG_EINVALID, "blake2b state finished twice");
    return 0;
}

void mlreg_prehash_free(mlreg_prehash *h)
{
    if (!h) return;
    sodium_memzero(h, sizeof(*h));
    free(h);
}

int mlreg_prehash_buffer(unsigned char out[MLREG_PREHASH_BYTES], const void *data, size_t len)
{
    int error = 0;
    mlreg_prehash *h = NULL;

    if ((error = mlreg_prehash_new(&h)) < 0 || (error = mlreg_prehash_update(h, data, len)) < 0 ||
        (error = mlreg_prehash_final(out, h)) < 0)
        goto done;
done:
    mlreg_prehash_free(h);
    return error;
}

int mlreg_prehash_fd(unsigned char out[MLREG_PREHASH_BYTES], int fd)
{
    int error = 0;
    mlreg_prehash *h = NULL;
    unsigned char *buf = NULL;

    if ((error = mlreg_prehash_new(&h)) < 0) goto done;
    if (!(buf = malloc(READ_CHUNK))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory for a read buffer");
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, buf, READ_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            error = mlreg_error_set(MLREG_EIO, "read failed while hashing: %s", strerror(errno));
            goto done;
        }
        if (r == 0) break;
        if ((error = mlreg_prehash_update(h, buf, (size_t)r)) < 0) goto done;
    }
    error = mlreg_prehash_final(out, h);
done:
    free(buf);
    mlreg_prehash_free(h);
    return error;
}

/* ---- signing ----------------------------------------------------------- */

int mlreg_sign_prehash(char **out, const mlreg_seckey *sk,
                       const unsigned char prehash[MLREG_PREHASH_BYTES],
                       const char *trusted_comment, const char *untrusted_comment)
{
    int error = 0;
    unsigned char raw[SIG_RAW_BYTES], gsig[SIG_BYTES];
    unsigned char *gmsg = NULL;
    char sig_b64[SIG_B64_LEN + 1], gsig_b64[GSIG_B64_LEN + 1];
    char *text = NULL;
    size_t tlen, ulen, size, pos = 0;

    *out = NULL;
    if (!trusted_comment) return mlreg_error_set(MLREG_EINVALID, "trusted comment is missing");
    if (!untrusted_comment) untrusted_comment = MLREG_SIGN_DEFAULT_COMMENT;
    if ((error = mlreg_signing__init()) < 0 ||
        (error = mlreg_signing__check_comment(trusted_comment, MLREG_SIGN_TRUSTED_COMMENT_MAX,
                                              "trusted comment")) < 0 ||
        (error = mlreg_signing__check_comment(untrusted_comment, MLREG_SIGN_UNTRUSTED_COMMENT_MAX,
                                              "untrusted comment")) < 0)
        goto done;
    tlen = strlen(trusted_comment);
    ulen = strlen(untrusted_comment);

    memcpy(raw, SIG_ALG_HASHED, ALG_BYTES);
    memcpy(raw + SIG_OFF_KEYID, sk->id.raw, MLREG_KEYID_BYTES);
    crypto_sign_detached(raw + SIG_OFF_SIG, NULL, prehash, MLREG_PREHASH_BYTES, sk->sk);

    /* Global signature: over the signature and then the comment's text. */
    if (!(gmsg = malloc(SIG_BYTES + tlen))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory signing");
        goto done;
    }
    memcpy(gmsg, raw + SIG_OFF_SIG, SIG_BYTES);
    memcpy(gmsg + SIG_BYTES, trusted_comment, tlen);
    crypto_sign_detached(gsig, NULL, gmsg, SIG_BYTES + tlen, sk->sk);

    sodium_bin2base64(sig_b64, sizeof(sig_b64), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(gsig_b64, sizeof(gsig_b64), gsig, sizeof(gsig),
                      sodium_base64_VARIANT_ORIGINAL);
    size = strlen(COMMENT_PREFIX) + ulen + 1 + SIG_B64_LEN + 1 + strlen(TRUSTED_PREFIX) + tlen + 1 +
           GSIG_B64_LEN + 1 + 1;
    if (!(text = malloc(size))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory signing");
        goto done;
    }
    const char *pieces[] = {COMMENT_PREFIX, untrusted_comment, "\n", sig_b64,  "\n",
                            TRUSTED_PREFIX, trusted_comment,   "\n", gsig_b64, "\n"};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        size_t n = strlen(pieces[i]);
        memcpy(text + pos, pieces[i], n);
        pos += n;
    }
    text[pos] = '\0';
    *out = text;
    text = NULL;
done:
    free(gmsg);
    free(text);
    return error;
}

int mlreg_sign(char **out, const mlreg_seckey *sk, const void *data, size_t len,
               const char *trusted_comment, const char *untrusted_comment)
{
    int error = 0;
    unsigned char prehash[MLREG_PREHASH_BYTES];

    *out = NULL;
    if ((error = mlreg_prehash_buffer(prehash, data, len)) < 0) return error;
    return mlreg_sign_prehash(out, sk, prehash, trusted_comment, untrusted_comment);
}

/* ---- parsing ----------------------------------------------------------- */

struct mlreg_sig {
    int prehashed;
    mlreg_keyid key_id;
    unsigned char sig[SIG_BYTES];
    unsigned char global_sig[SIG_BYTES];
    char *untrusted_comment;
    char *trusted_comment;
    size_t trusted_len;
};

void mlreg_sig_free(mlreg_sig *sig)
{
    if (!sig) return;
    free(sig->untrusted_comment);
    free(sig->trusted_comment);
    free(sig);
}

int mlreg_sig_parse(mlreg_sig **out, const char *text, size_t len)
{
    int error = 0;
    mlreg_sig *sig = NULL;
    text_line lines[4];
    unsigned char raw[SIG_RAW_BYTES];
    const char *ucomment, *tcomment;
    size_t ulen, tlen;

    *out = NULL;
    if ((error = mlreg_signing__init()) < 0) goto done;
    if ((error = mlreg_signing__split_lines(lines, 4, text, len, sig_what)) < 0 ||
        (error = mlreg_signing__comment_line(&ucomment, &ulen, lines[0], COMMENT_PREFIX,
                                             MLREG_SIGN_UNTRUSTED_COMMENT_MAX, sig_what, 1)) < 0 ||
        (error = mlreg_signing__base64_line(raw, sizeof(raw), lines[1], sig_what, 2)) < 0 ||
        (error = mlreg_signing__comment_line(&tcomment, &tlen, lines[2], TRUSTED_PREFIX,
                                             MLREG_SIGN_TRUSTED_COMMENT_MAX, sig_what, 3)) < 0)
        goto done;
    if (memcmp(raw, SIG_ALG_HASHED, ALG_BYTES) != 0 && memcmp(raw, SIG_ALG, ALG_BYTES) != 0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "malformed signature: unsupported algorithm 0x%02x%02x, expected "
                                "\"ED\" or \"Ed\"",
                                raw[0], raw[1]);
        goto done;
    }
    if (!(sig = calloc(1, sizeof(*sig))) || !(sig->untrusted_comment = strndup(ucomment, ulen)) ||
        !(sig->trusted_comment = strndup(tcomment, tlen))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory parsing a signature");
        goto done;
    }
    if ((error = mlreg_signing__base64_line(sig->global_sig, SIG_BYTES, lines[3], sig_what, 4)) < 0)
        goto done;
    sig->prehashed = memcmp(raw, SIG_ALG_HASHED, ALG_BYTES) == 0;
    memcpy(sig->key_id.raw, raw + SIG_OFF_KEYID, MLREG_KEYID_BYTES);
    memcpy(sig->sig, raw + SIG_OFF_SIG, SIG_BYTES);
    sig->trusted_len = tlen;
    *out = sig;
    sig = NULL;
done:
    mlreg_sig_free(sig);
    return error;
}

const mlreg_keyid *mlreg_sig_key_id(const mlreg_sig *sig)
{
    return &sig->key_id;
}

int mlreg_sig_is_prehashed(const mlreg_sig *sig)
{
    return sig->prehashed;
}

const char *mlreg_sig_trusted_comment(const mlreg_sig *sig)
{
    return sig->trusted_comment;
}

const char *mlreg_sig_untrusted_comment(const mlreg_sig *sig)
{
    return sig->untrusted_comment;
}

/* ---- verification ------------------------------------------------------ */

static int check_key_id(const mlreg_sig *sig, const mlreg_pubkey *pk)
{
    char want[MLREG_KEYID_HEXLEN + 1], got[MLREG_KEYID_HEXLEN + 1];

    if (mlreg_keyid_equal(&sig->key_id, &pk->id)) return 0;
    mlreg_keyid_format(got, &sig->key_id);
    mlreg_keyid_format(want, &pk->id);
    return mlreg_error_set(MLREG_EMISMATCH, "signature made by key ID %s, not %s", got, want);
}

/* The global signature authenticates the trusted comment; the data
 * signature has been checked first, as minisign does, so a failure here
 * means the comment (or its signature line) was changed. */
static int check_global(const mlreg_sig *sig, const mlreg_pubkey *pk)
{
    int error = 0;
    unsigned char *msg = NULL;

    if (!(msg = malloc(SIG_BYTES + sig->trusted_len)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory verifying a signature");
    memcpy(msg, sig->sig, SIG_BYTES);
    memcpy(msg + SIG_BYTES, sig->trusted_comment, sig->trusted_len);
    if (crypto_sign_verify_detached(sig->global_sig, msg, SIG_BYTES + sig->trusted_len, pk->pk) !=
        0)
        error = mlreg_error_set(MLREG_EMISMATCH, "trusted comment was altered");
    free(msg);
    return error;
}

/* The Ed25519 signature over the data fails: its own code, so callers that
 * word this case for their users (a release signature over a manifest) tell
 * it from a key id or trusted-comment mismatch by code, never by message.
 * The public verifiers below report it as MLREG_EMISMATCH, as documented. */
static int data_mismatch(void)
{
    return mlreg_error_set(MLREG_ESIGNATURE, "signature does not match the data");
}

static int as_mismatch(int error)
{
    return error == MLREG_ESIGNATURE ? MLREG_EMISMATCH : error;
}

static int verify_prehash(const mlreg_sig *sig, const mlreg_pubkey *pk,
                          const unsigned char prehash[MLREG_PREHASH_BYTES])
{
    int error = 0;

    if ((error = mlreg_signing__init()) < 0 || (error = check_key_id(sig, pk)) < 0) return error;
    if (!sig->prehashed)
        return mlreg_error_set(MLREG_EUNSUPPORTED,
                               "legacy (not prehashed) signature: it can only be checked against "
                               "the whole data");
    if (crypto_sign_verify_detached(sig->sig, prehash, MLREG_PREHASH_BYTES, pk->pk) != 0)
        return data_mismatch();
    return check_global(sig, pk);
}

int mlreg_sig_verify_prehash(const mlreg_sig *sig, const mlreg_pubkey *pk,
                             const unsigned char prehash[MLREG_PREHASH_BYTES])
{
    return as_mismatch(verify_prehash(sig, pk, prehash));
}

int mlreg_sig_check_data(const mlreg_sig *sig, const mlreg_pubkey *pk, const void *data, size_t len)
{
    int error = 0;
    unsigned char prehash[MLREG_PREHASH_BYTES];

    if (sig->prehashed) {
        if ((error = mlreg_prehash_buffer(prehash, data, len)) < 0) return error;
        return verify_prehash(sig, pk, prehash);
    }
    if ((error = mlreg_signing__init()) < 0 || (error = check_key_id(sig, pk)) < 0) return error;
    if (crypto_sign_verify_detached(sig->sig, data, len, pk->pk) != 0) return data_mismatch();
    return check_global(sig, pk);
}

int mlreg_sig_verify(const mlreg_sig *sig, const mlreg_pubkey *pk, const void *data, size_t len)
{
    return as_mismatch(mlreg_sig_check_data(sig, pk, data, len));
}

/* Shared tail of the one-call verifiers: hands out the results on success. */
static int verified(char **trusted_comment_out, mlreg_keyid *key_id_out, const mlreg_sig *sig)
{
    if (trusted_comment_out) {
        if (!(*trusted_comment_out = strdup(sig->trusted_comment)))
            return mlreg_error_set(MLREG_ENOMEM, "out of memory copying a trusted comment");
    }
    if (key_id_out) *key_id_out = sig->key_id;
    return 0;
}

int mlreg_sign_verify(char **trusted_comment_out, mlreg_keyid *key_id_out, const char *sig_text,
                      size_t sig_len, const void *data, size_t len, const mlreg_pubkey *pk)
{
    int error = 0;
    mlreg_sig *sig = NULL;

    if (trusted_comment_out) *trusted_comment_out = NULL;
    if ((error = mlreg_sig_parse(&sig, sig_text, sig_len)) < 0 ||
        (error = mlreg_sig_verify(sig, pk, data, len)) < 0)
        goto done;
    error = verified(trusted_comment_out, key_id_out, sig);
done:
    mlreg_sig_free(sig);
    return error;
}

int mlreg_sign_verify_prehash(char **trusted_comment_out, mlreg_keyid *key_id_out,
                              const char *sig_text, size_t sig_len,
                              const unsigned char prehash[MLREG_PREHASH_BYTES],
                              const mlreg_pubkey *pk)
{
    int error = 0;
    mlreg_sig *sig = NULL;

    if (trusted_comment_out) *trusted_comment_out = NULL;
    if ((error = mlreg_sig_parse(&sig, sig_text, sig_len)) < 0 ||
        (error = mlreg_sig_verify_prehash(sig, pk, prehash)) < 0)
        goto done;
    error = verified(trusted_comment_out, key_id_out, sig);
done:
    mlreg_sig_free(sig);
    return error;
}
