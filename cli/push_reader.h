/* push_reader.h: reads a file once for `mlreg push` and hashes what it
 * reads on other threads (push_reader.c). Internal to cli/.
 *
 * The caller (libcurl's read callback, or a hash-only loop) takes the
 * bytes in order with push_reader_read(); each byte is hashed the first
 * time it is read: into the whole-file SHA-256 and, when asked, into the
 * chunk index (mlreg/chunk_index.h), on one thread each, so the two hashes
 * overlap with each other and with the upload. Rewinding (libcurl resending
 * a body) reads bytes again without hashing them twice.
 */
#ifndef MLREG_CLI_PUSH_READER_H
#define MLREG_CLI_PUSH_READER_H

#include <stddef.h>
#include <stdint.h>

#include "mlreg/chunk_index.h"
#include "mlreg/digest.h"

typedef struct push_reader push_reader;

enum {
    PUSH_HASH_NONE = 0,   /* read only (the digest is known) */
    PUSH_HASH_FILE = 1,   /* the whole-file SHA-256 */
    PUSH_HASH_CHUNKS = 2, /* and the chunk index (with PUSH_HASH_FILE) */
};

/**
 * A reader of the first @p size bytes of @p fd (not closed, not owned),
 * starting at offset 0, hashing per @p mode. @p name names the file in
 * messages. 0, MLREG_ENOMEM or MLREG_EIO (a thread could not start).
 * Free with push_reader_free().
 */
int push_reader_new(push_reader **out, int fd, uint64_t size, int mode, const char *name);

/**
 * Up to @p len bytes at the current position into @p buf: the count (0 at
 * the end), or MLREG_EIO (read error, or the file ended before @p size:
 * it shrank).
 */
int64_t push_reader_read(push_reader *r, void *buf, size_t len);

/** Moves to @p offset (at most the size): 0 or MLREG_EINVALID. */
int push_reader_seek(push_reader *r, uint64_t offset);

/** Reads (and so hashes) from the position up to @p offset. 0 or MLREG_EIO. */
int push_reader_skip(push_reader *r, uint64_t offset);

/** Bytes hashed so far (every byte below this offset). */
uint64_t push_reader_hashed(const push_reader *r);

/**
 * Ends the hashing once every byte was read: the file's digest into
 * @p digest_out and, in PUSH_HASH_CHUNKS mode, its chunk index into
 * @p ix_out (may be NULL otherwise). MLREG_EINVALID when bytes are left,
 * MLREG_EIO for a hashing failure. The reader may still be read (no more
 * hashing) and must still be freed.
 */
int push_reader_finish(mlreg_digest *digest_out, mlreg_chunk_index *ix_out, push_reader *r);

/** Stops the threads and frees @p r; NULL is a no-op. */
void push_reader_free(push_reader *r);

#endif
