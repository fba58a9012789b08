/* fuzz_checkpoint.c: signed-note checkpoints (checkpoint.h). The input is
 * verified as a note against a fixed key, the key of tests/vectors/checkpoint
 * (published seed, origin registry.example.com/audit-log), so the seed
 * corpus holds notes that verify; and it is parsed as a verifier key, which
 * when accepted must format back to the same bytes. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mlreg/checkpoint.h"

#define ORIGIN "registry.example.com/audit-log"

/* base64 of 0x01 ‖ seed in the vector's PRIVATE+KEY line */
static const unsigned char seed[32] = {
    0x3e, 0x7b, 0x60, 0xab, 0x3b, 0x52, 0x44, 0xb4, 0x62, 0xf9, 0x9e, 0xa1, 0x0c, 0x98, 0xfd, 0xca,
    0x2b, 0x0e, 0x4d, 0xcd, 0x0f, 0xeb, 0xdc, 0x12, 0xd6, 0xec, 0xde, 0x17, 0x3c, 0x96, 0x9c, 0x14};

static unsigned char pk[crypto_sign_PUBLICKEYBYTES];

static void init(void)
{
    static int done;
    unsigned char sk[crypto_sign_SECRETKEYBYTES];

    if (done) return;
    if (sodium_init() < 0) abort();
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof(sk));
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mlreg_checkpoint cp;
    unsigned char vpk[MLREG_PUBKEY_BYTES];
    char *name = NULL, *again = NULL;

    init();
    (void)mlreg_checkpoint_verify(&cp, (const char *)data, size, ORIGIN, pk);

    if (mlreg_checkpoint_verifier_parse(&name, vpk, (const char *)data, size) == 0) {
        /* a key that parses names itself exactly one way */
        if (mlreg_checkpoint_verifier_key(&again, name, vpk) < 0) abort();
        if (strlen(again) != size || memcmp(again, data, size) != 0) abort();
    }
    free(again);
    free(name);
    return 0;
}
