/**
 * @file bytes.h
 * @brief Fixed-width integer encodings: big-endian for LMDB keys and
 *        counters (so byte order is numeric order), little-endian for the
 *        fields of minisign's key format.
 *
 * Header-only, pure; no alignment is assumed, so the buffers may sit
 * anywhere inside a key (after a prefix) or a record.
 */
#ifndef MLREG_BYTES_H
#define MLREG_BYTES_H

#include <stdint.h>

/** Writes @p v into the 8 bytes at @p out, most significant byte first. */
static inline void mlreg_be64_put(void *out, uint64_t v)
{
    unsigned char *p = out;

    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> ((7 - i) * 8));
}

/** Reads the 8 bytes at @p in, most significant byte first. */
static inline uint64_t mlreg_be64_get(const void *in)
{
    const unsigned char *p = in;
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/** Writes @p v into the 8 bytes at @p out, least significant byte first. */
static inline void mlreg_le64_put(void *out, uint64_t v)
{
    unsigned char *p = out;

    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (i * 8));
}

/** Reads the 8 bytes at @p in, least significant byte first. */
static inline uint64_t mlreg_le64_get(const void *in)
{
    const unsigned char *p = in;
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#endif
