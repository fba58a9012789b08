/* fuzz_minisign.c: minisign public keys and signatures (sign.h) and the
 * client's verdict on a release signature (release_sig.h). The input is read
 * as a public key (which must then format and parse back to the same key),
 * as a `.minisig` checked against a fixed message and the minisign test key
 * of tests/vectors/minisign, as a release signature judged against small
 * trust sets holding that key (plain, retired, compromised), and as the
 * text of a keyring entry, a trusted comment and an RFC 3339 time. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mlreg/release_sig.h"
#include "mlreg/sign.h"
#include "mlreg/time.h"

static const char pubkey_text[] = "untrusted comment: minisign public key 135F655E9F290E69\n"
                                  "RWRpDimfXmVfE2asCOfEJVR+ZzWfAK4k5v5zMcNEFIOGEO8F30hQ9qFT\n";
/* tests/vectors/minisign/message.txt, which the vector signatures sign */
static const char message[] = "model: resnet50\nversion: 1.0.0\n";
/* the release the corpus's release signatures sign */
static const char manifest[] = "{\"schemaVersion\":2,\"artifactType\":\"application/"
                               "vnd.mlreg.release.v1\"}";
#define MODEL       "resnet50"
#define VERSION     "1.0.0"
#define ATTACHED_AT "2026-01-02T00:00:00Z"

static mlreg_pubkey pub;
static mlreg_trustset *sets[3]; /* the key trusted, retired, compromised */
static char digest[7 + 64 + 1];

static void init(void)
{
    static int done;
    unsigned char h[crypto_hash_sha256_BYTES];
    mlreg_pubkey other;

    if (done) return;
    if (sodium_init() < 0) abort();
    if (mlreg_pubkey_parse(&pub, pubkey_text, strlen(pubkey_text)) < 0) abort();
    crypto_hash_sha256(h, (const unsigned char *)manifest, strlen(manifest));
    memcpy(digest, "sha256:", 7);
    sodium_bin2hex(digest + 7, sizeof(digest) - 7, h, sizeof(h));
    /* a second, unrelated key in every set */
    memset(&other, 0x5a, sizeof(other));
    for (int i = 0; i < 3; i++)
        if (mlreg_trustset_new(&sets[i]) < 0 ||
            mlreg_trustset_add(sets[i], &other, "other", MLREG_REVOKE_NONE, NULL) < 0)
            abort();
    if (mlreg_trustset_add(sets[0], &pub, "release", MLREG_REVOKE_NONE, NULL) < 0 ||
        mlreg_trustset_add(sets[1], &pub, "release", MLREG_REVOKE_RETIRED, "2026-01-01T00:00:00Z") <
            0 ||
        mlreg_trustset_add(sets[2], &pub, "release", MLREG_REVOKE_COMPROMISED,
                           "2026-01-01T00:00:00Z") < 0)
        abort();
    done = 1;
}

static void pubkey(const char *text, size_t len)
{
    mlreg_pubkey pk, back;
    char line[MLREG_PUBKEY_B64LEN + 1], *file = NULL;

    if (mlreg_pubkey_parse(&pk, text, len) < 0) return;
    mlreg_pubkey_base64(line, &pk);
    if (mlreg_pubkey_parse(&back, line, strlen(line)) < 0 || !mlreg_pubkey_equal(&pk, &back))
        abort();
    if (mlreg_pubkey_format(&file, &pk, NULL) < 0) abort();
    if (mlreg_pubkey_parse(&back, file, strlen(file)) < 0 || !mlreg_pubkey_equal(&pk, &back))
        abort();
    free(file);
}

static void signature(const char *text, size_t len)
{
    mlreg_sig *sig = NULL;
    char *comment = NULL, id[MLREG_KEYID_HEXLEN + 1];
    mlreg_keyid kid;

    if (mlreg_sig_parse(&sig, text, len) == 0) {
        mlreg_keyid_format(id, mlreg_sig_key_id(sig));
        (void)mlreg_sig_is_prehashed(sig);
        if (strlen(mlreg_sig_trusted_comment(sig)) > MLREG_SIGN_TRUSTED_COMMENT_MAX ||
            strlen(mlreg_sig_untrusted_comment(sig)) > MLREG_SIGN_UNTRUSTED_COMMENT_MAX)
            abort();
        (void)mlreg_sig_verify(sig, &pub, message, strlen(message));
    }
    mlreg_sig_free(sig);
    if (mlreg_sign_verify(&comment, &kid, text, len, message, strlen(message), &pub) == 0 &&
        !comment)
        abort();
    free(comment);
}

/* The input as a NUL-terminated string, for the APIs that take one. */
static void strings(const char *text, size_t len)
{
    char *s;
    mlreg_trustset *ts = NULL;
    int64_t sec;
    int32_t nsec;

    if (!(s = malloc(len + 1))) return;
    memcpy(s, text, len);
    s[len] = '\0';
    (void)mlreg_release_comment_check(s, MODEL, VERSION, digest);
    (void)mlreg_time_parse(&sec, &nsec, s);
    if (mlreg_trustset_new(&ts) == 0) {
        (void)mlreg_trustset_add_entry(ts, s, NULL, NULL, NULL, NULL);
        (void)mlreg_trustset_add_entry(ts, pubkey_text, "135F655E9F290E69", "k", "retired", s);
    }
    mlreg_trustset_free(ts);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    mlreg_sigcheck check;

    init();
    pubkey(text, size);
    signature(text, size);
    for (int i = 0; i < 3; i++) {
        if (mlreg_trustset_check(&check, sets[i], text, size, pubkey_text, ATTACHED_AT, manifest,
                                 strlen(manifest), MODEL, VERSION, digest) < 0)
            continue;
        if (strnlen(check.reason, sizeof(check.reason)) == sizeof(check.reason)) abort();
    }
    strings(text, size);
    return 0;
}
