/**
 * @file buf.h
 * @brief A growing byte buffer, NUL-terminated once anything was added:
 *        for bodies and documents built or received piece by piece.
 */
#ifndef MLREG_BUF_H
#define MLREG_BUF_H

#include <stddef.h>

/** The buffer: start zeroed ({0}); p is malloc'd and owned by whoever holds
 *  the struct (free(b.p)), NULL until the first add. */
typedef struct {
    char *p;    /**< the bytes, followed by a NUL */
    size_t len; /**< bytes held, the NUL not counted */
    size_t cap; /**< bytes allocated at p */
} mlreg_buf;

/**
 * Appends the @p len bytes at @p data (@p len may be 0: the buffer is then
 * allocated and NUL-terminated), doubling the allocation as needed.
 * 0, or MLREG_ENOMEM with the buffer unchanged.
 */
int mlreg_buf_add(mlreg_buf *b, const void *data, size_t len);

#endif
