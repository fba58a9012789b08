/* fuzz_canonical_json.c: canonical JSON (canonical_json.h). Whenever jansson
 * reads the input and it canonicalizes, the canonical text must read back
 * to an equal value that canonicalizes to the same bytes; abort() if not. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mlreg/canonical_json.h"

#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL, *back = NULL;
    json_error_t jerr;
    char *canon = NULL, *again = NULL;
    size_t canon_len = 0, again_len = 0;

    if (!(v = json_loadb((const char *)data, size, LOAD_FLAGS, &jerr))) return 0;
    if (mlreg_canonical_json(&canon, &canon_len, v) < 0) goto done;
    if (strlen(canon) != canon_len || canon[canon_len] != '\0') abort();
    if (!(back = json_loadb(canon, canon_len, LOAD_FLAGS | JSON_REJECT_DUPLICATES, &jerr))) abort();
    if (!json_equal(v, back)) abort();
    if (mlreg_canonical_json(&again, &again_len, back) < 0) abort();
    if (again_len != canon_len || memcmp(again, canon, canon_len) != 0) abort();
done:
    free(again);
    free(canon);
    json_decref(back);
    json_decref(v);
    return 0;
}
