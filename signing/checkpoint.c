/* checkpoint.c: signed-note checkpoints (golang.org/x/mod/sumdb/note with
 * the transparency-dev checkpoint body), signed and verified with Ed25519.
 *
 * The note rules that matter for safety: the signed text is everything up
 * to and including the '\n' before the last blank line, and signatures are
 * matched to keys by (name, key hash) before any Ed25519 check, so a note
 * co-signed by witnesses we do not know still verifies, while a line that
 * names our key and fails is an error, not something to skip.
 */
#include "mlreg/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/text.h"
#include "sign_internal.h"

#define ALG_ED25519    0x01
#define SIG_PREFIX     "\xe2\x80\x94 " /* U+2014 EM DASH, then a space */
#define SIG_PREFIX_LEN 4
#define MAX_SIGS       100
#define SIG_BYTES      (4 + crypto_sign_BYTES)

/* A key name: non-empty, bounded, no '+', no ASCII space, and text by the
 * rule of text.h (UTF-8 without C0, DEL or C1 controls: `mlreg audit verify`
 * prints the name). The note package also refuses Unicode spaces; names
 * here are ASCII hostnames and paths in practice. */
static int check_name(const char *name, size_t len, const char *what)
{
    size_t i;

    if (len == 0 || len > MLREG_CHECKPOINT_ORIGIN_MAX)
        return mlreg_error_set(MLREG_EINVALID, "%s: key name must be 1 to %d bytes", what,
                               MLREG_CHECKPOINT_ORIGIN_MAX);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c == 0x7f || c == '+')
            return mlreg_error_set(MLREG_EINVALID,
                                   "%s: key name holds a space, '+' or control character", what);
    }
    if (mlreg_text_span(name, len) != len)
        return mlreg_error_set(MLREG_EINVALID,
                               "%s: key name holds a control character or is not UTF-8", what);
    return 0;
}

static uint32_t key_hash(const char *name, size_t len, const unsigned char pk[MLREG_PUBKEY_BYTES])
{
    crypto_hash_sha256_state st;
    unsigned char alg = ALG_ED25519, h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)name, len);
    crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
    crypto_hash_sha256_update(&st, &alg, 1);
    crypto_hash_sha256_update(&st, pk, MLREG_PUBKEY_BYTES);
    crypto_hash_sha256_final(&st, h);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

int mlreg_checkpoint_key_hash(uint32_t *out, const char *name,
                              const unsigned char pk[MLREG_PUBKEY_BYTES])
{
    int error = 0;

    if ((error = mlreg_signing__init()) < 0 ||
        (error = check_name(name, strlen(name), "checkpoint key")) < 0)
        return error;
    *out = key_hash(name, strlen(name), pk);
    return 0;
}

int mlreg_checkpoint_verifier_key(char **out, const char *name,
                                  const unsigned char pk[MLREG_PUBKEY_BYTES])
{
    unsigned char raw[1 + MLREG_PUBKEY_BYTES];
    char b64[sodium_base64_ENCODED_LEN(sizeof(raw), sodium_base64_VARIANT_ORIGINAL)];
    uint32_t h = 0;
    char *s = NULL;
    size_t n;
    int error = 0;

    if ((error = mlreg_checkpoint_key_hash(&h, name, pk)) < 0) goto done;
    raw[0] = ALG_ED25519;
    memcpy(raw + 1, pk, MLREG_PUBKEY_BYTES);
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
    n = strlen(name) + 1 + 8 + 1 + strlen(b64) + 1;
    if ((s = malloc(n)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(s, n, "%s+%08" PRIx32 "+%s", name, h, b64);
    *out = s;
done:
    return error;
}

/* Decodes @p len bytes of canonical padded standard base64 into @p out,
 * which must come out exactly @p want bytes. 0 or -1 (no message). */
static int b64_exact(unsigned char *out, size_t want, const char *b64, size_t len)
{
    unsigned char buf[128];
    char again[sodium_base64_ENCODED_LEN(sizeof(buf), sodium_base64_VARIANT_ORIGINAL)];
    size_t got = 0;
    const char *end = NULL;

    if (want > sizeof(buf) ||
        len != sodium_base64_ENCODED_LEN(want, sodium_base64_VARIANT_ORIGINAL) - 1)
        return -1;
    if (sodium_base642bin(buf, sizeof(buf), b64, len, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != b64 + len || got != want)
        return -1;
    /* canonical: re-encoding gives the same text (no stray padding bits) */
    sodium_bin2base64(again, sizeof(again), buf, got, sodium_base64_VARIANT_ORIGINAL);
    if (memcmp(again, b64, len) != 0) return -1;
    memcpy(out, buf, want);
    return 0;
}

int mlreg_checkpoint_verifier_parse(char **name_out, unsigned char pk_out[MLREG_PUBKEY_BYTES],
                                    const char *text, size_t len)
{
    const char *p1, *p2;
    unsigned char raw[1 + MLREG_PUBKEY_BYTES];
    char hex[9];
    char *name = NULL;
    unsigned long h;
    size_t nlen;
    int error = 0;

    if ((error = mlreg_signing__init()) < 0) goto done;
    p1 = memchr(text, '+', len);
    p2 = p1 ? memchr(p1 + 1, '+', len - (size_t)(p1 + 1 - text)) : NULL;
    if (p2 == NULL || p2 - p1 != 9) {
        error = mlreg_error_set(MLREG_EINVALID, "malformed verifier key: want name+hash+key");
        goto done;
    }
    nlen = (size_t)(p1 - text);
    if ((error = check_name(text, nlen, "malformed verifier key")) < 0) goto done;
    memcpy(hex, p1 + 1, 8);
    hex[8] = '\0';
    if (strspn(hex, "0123456789abcdef") != 8) {
        error = mlreg_error_set(MLREG_EINVALID, "malformed verifier key: bad key hash");
        goto done;
    }
    h = strtoul(hex, NULL, 16);
    if (b64_exact(raw, sizeof(raw), p2 + 1, len - (size_t)(p2 + 1 - text)) < 0 ||
        raw[0] != ALG_ED25519) {
        error = mlreg_error_set(MLREG_EINVALID, "malformed verifier key: bad Ed25519 key");
        goto done;
    }
    if (key_hash(text, nlen, raw + 1) != (uint32_t)h) {
        error = mlreg_error_set(MLREG_EMISMATCH, "verifier key hash does not match its key");
        goto done;
    }
    if ((name = malloc(nlen + 1)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(name, text, nlen);
    name[nlen] = '\0';
    memcpy(pk_out, raw + 1, MLREG_PUBKEY_BYTES);
    *name_out = name;
done:
    return error;
}

int mlreg_checkpoint_sign(char **out, const char *origin, uint64_t size,
                          const mlreg_merkle_hash *root, const mlreg_seckey *sk)
{
    char root64[sodium_base64_ENCODED_LEN(MLREG_MERKLE_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    unsigned char sig[SIG_BYTES];
    char sig64[sodium_base64_ENCODED_LEN(SIG_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    size_t olen = strlen(origin), cap, body_len;
    char *note = NULL;
    uint32_t h;
    int n, error = 0;

    if ((error = mlreg_signing__init()) < 0 || (error = check_name(origin, olen, "checkpoint")) < 0)
        goto done;
    sodium_bin2base64(root64, sizeof(root64), root->raw, MLREG_MERKLE_HASH_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    cap =
        olen + 1 + 21 + 1 + sizeof(root64) + 1 + 1 + SIG_PREFIX_LEN + olen + 1 + sizeof(sig64) + 1;
    if ((note = malloc(cap)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    n = snprintf(note, cap, "%s\n%" PRIu64 "\n%s\n", origin, size, root64);
    body_len = (size_t)n;
    h = key_hash(origin, olen, sk->sk + 32);
    sig[0] = (unsigned char)(h >> 24);
    sig[1] = (unsigned char)(h >> 16);
    sig[2] = (unsigned char)(h >> 8);
    sig[3] = (unsigned char)h;
    if (crypto_sign_detached(sig + 4, NULL, (const unsigned char *)note, body_len, sk->sk) != 0) {
        error = mlreg_error_set(MLREG_EIO, "ed25519 signing failed");
        goto done;
    }
    sodium_bin2base64(sig64, sizeof(sig64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
    snprintf(note + body_len, cap - body_len, "\n" SIG_PREFIX "%s %s\n", origin, sig64);
    *out = note;
    note = NULL;
done:
    free(note);
    return error;
}

/* Valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
 * and no control character but '\n': the note package's first check. */
static int note_chars_ok(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 && s[i] != '\n') return 0;
    return mlreg_utf8_span((const char *)s, len) == len;
}

/* Reads the three body lines into *out; the origin must be @p origin. */
static int parse_body(mlreg_checkpoint *out, const char *text, size_t len, const char *origin)
{
    const char *l1, *l2, *l3, *end = text + len;
    char num[21];
    unsigned long long size;
    size_t i, nlen;

    l1 = memchr(text, '\n', len);
    l2 = l1 ? memchr(l1 + 1, '\n', (size_t)(end - l1 - 1)) : NULL;
    l3 = l2 ? memchr(l2 + 1, '\n', (size_t)(end - l2 - 1)) : NULL;
    if (l3 == NULL)
        return mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: fewer than three lines");
    if (l3 + 1 != end)
        return mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: extension lines");
    if ((size_t)(l1 - text) != strlen(origin) || memcmp(text, origin, strlen(origin)) != 0)
        return mlreg_error_set(MLREG_EMISMATCH, "checkpoint is for origin %.*s, not %s",
                               (int)(l1 - text > 255 ? 255 : l1 - text), text, origin);
    nlen = (size_t)(l2 - l1 - 1);
    if (nlen == 0 || nlen > 20 || (nlen > 1 && l1[1] == '0'))
        return mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: bad tree size");
    for (i = 0; i < nlen; i++) {
        if (l1[1 + i] < '0' || l1[1 + i] > '9')
            return mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: bad tree size");
        num[i] = l1[1 + i];
    }
    num[nlen] = '\0';
    errno = 0;
    size = strtoull(num, NULL, 10);
    if (errno != 0)
        return mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: tree size too large");
    if (b64_exact(out->root.raw, MLREG_MERKLE_HASH_BYTES, l2 + 1, (size_t)(l3 - l2 - 1)) < 0)
        return mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: bad root hash");
    out->size = (uint64_t)size;
    return 0;
}

int mlreg_checkpoint_verify(mlreg_checkpoint *out, const char *text, size_t len, const char *origin,
                            const unsigned char pk[MLREG_PUBKEY_BYTES])
{
    mlreg_checkpoint cp;
    const char *split = NULL, *p, *line, *nl, *sp, *end = text + len;
    unsigned char sig[512]; /* room for other signers' longer signatures */
    size_t olen = strlen(origin), body_len, i, nsigs = 0;
    uint32_t want_hash;
    int verified = 0, error = 0;

    if ((error = mlreg_signing__init()) < 0 || (error = check_name(origin, olen, "checkpoint")) < 0)
        goto done;
    if (!note_chars_ok((const unsigned char *)text, len)) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "malformed checkpoint: not UTF-8 or has control characters");
        goto done;
    }
    for (i = 0; i + 1 < len; i++)
        if (text[i] == '\n' && text[i + 1] == '\n') split = text + i;
    if (split == NULL || split + 2 == end || end[-1] != '\n') {
        error = mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: no signature block");
        goto done;
    }
    body_len = (size_t)(split + 1 - text);
    want_hash = key_hash(origin, olen, pk);
    for (p = split + 2; p < end; p = nl + 1) {
        size_t b64len, got = 0;
        const char *b64end = NULL;
        uint32_t h;

        line = p;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (++nsigs > MAX_SIGS) {
            error = mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: too many signatures");
            goto done;
        }
        if ((size_t)(nl - line) < SIG_PREFIX_LEN || memcmp(line, SIG_PREFIX, SIG_PREFIX_LEN) != 0 ||
            (sp = memchr(line + SIG_PREFIX_LEN, ' ', (size_t)(nl - line - SIG_PREFIX_LEN))) ==
                NULL) {
            error = mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: bad signature line");
            goto done;
        }
        b64len = (size_t)(nl - sp - 1);
        if (check_name(line + SIG_PREFIX_LEN, (size_t)(sp - line - SIG_PREFIX_LEN),
                       "malformed checkpoint") < 0 ||
            b64len == 0 ||
            sodium_base642bin(sig, sizeof(sig), sp + 1, b64len, NULL, &got, &b64end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            b64end != nl || got < 5) {
            error = mlreg_error_set(MLREG_EINVALID, "malformed checkpoint: bad signature line");
            goto done;
        }
        h = (uint32_t)sig[0] << 24 | (uint32_t)sig[1] << 16 | (uint32_t)sig[2] << 8 | sig[3];
        if ((size_t)(sp - line - SIG_PREFIX_LEN) != olen ||
            memcmp(line + SIG_PREFIX_LEN, origin, olen) != 0 || h != want_hash)
            continue; /* another signer (a witness): not ours to judge */
        if (got != SIG_BYTES ||
            crypto_sign_verify_detached(sig + 4, (const unsigned char *)text, body_len, pk) != 0) {
            error = mlreg_error_set(MLREG_EMISMATCH, "checkpoint signature does not verify");
            goto done;
        }
        verified = 1;
    }
    if (!verified) {
        error = mlreg_error_set(MLREG_EMISMATCH, "checkpoint is not signed by %s", origin);
        goto done;
    }
    if ((error = parse_body(&cp, text, body_len, origin)) < 0) goto done;
    *out = cp;
done:
    return error;
}
