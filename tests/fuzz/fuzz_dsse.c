/* fuzz_dsse.c: DSSE envelope verification (dsse.h) against a fixed key, the
 * minisign test key of tests/vectors/minisign that also signed
 * tests/vectors/dsse, so the seed corpus holds envelopes that verify. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mlreg/dsse.h"

static const char pubkey_text[] = "untrusted comment: minisign public key 135F655E9F290E69\n"
                                  "RWRpDimfXmVfE2asCOfEJVR+ZzWfAK4k5v5zMcNEFIOGEO8F30hQ9qFT\n";

static mlreg_pubkey pub;

static void init(void)
{
    static int done;

    if (done) return;
    if (mlreg_pubkey_parse(&pub, pubkey_text, strlen(pubkey_text)) < 0) abort();
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *type = NULL;
    unsigned char *payload = NULL;
    size_t payload_len = 0;

    init();
    if (mlreg_dsse_verify(&type, &payload, &payload_len, (const char *)data, size, &pub) == 0) {
        /* the copies handed out are NUL-terminated, as documented */
        if (!type || !payload || payload[payload_len] != '\0') abort();
    }
    free(type);
    free(payload);
    (void)mlreg_dsse_verify(NULL, NULL, NULL, (const char *)data, size, &pub);
    return 0;
}
