/* buf.c: the growing byte buffer (buf.h). */
#include "mlreg/buf.h"

#include "mlreg/common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int mlreg_buf_add(mlreg_buf *b, const void *data, size_t len)
{
    if (len >= SIZE_MAX / 2 - b->len) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;

        while (cap < b->len + len + 1)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (len > 0) memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}
