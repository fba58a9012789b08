/**
 * @file chunk_index.h
 * @brief The chunk index of a large release file: the SHA-256 of every
 * fixed-size chunk, so a pull can verify (and re-fetch) one range at a time.
 *
 * Pure functions over bytes: no I/O. `mlreg push` builds an index for every
 * file of at least MLREG_CHUNK_INDEX_THRESHOLD bytes while it reads the file,
 * uploads it as a blob, and lists it in the release manifest as a layer of
 * kind MLREG_KIND_CHUNK_INDEX (media type MLREG_MT_CHUNK_INDEX, annotation
 * MLREG_ANN_CHUNKS_OF = the file's digest, title "<file title>.chunks").
 * The file's own layer names the index with MLREG_ANN_CHUNK_INDEX. The
 * manifest's digest therefore covers every chunk digest, and so does the
 * release signature. `mlreg pull` fetches the index first, verifies it
 * against the layer's digest like any blob, and never writes it as a file.
 *
 * The blob is JSON, written by mlreg_chunk_index_serialize() in one
 * deterministic form (keys in this order, no spaces):
 *
 *   {"mediaType":"application/vnd.mlreg.chunk-index.v1+json",
 *    "digest":"sha256:<file>","size":<bytes>,"chunkSize":<bytes>,
 *    "chunks":["<64 hex>",...]}
 *
 * Chunk i covers bytes [i * chunkSize, min((i + 1) * chunkSize, size)).
 * mlreg_chunk_index_parse() is strict: those five keys only, no duplicates,
 * chunkSize a power of two in [MLREG_CHUNK_SIZE_MIN, MLREG_CHUNK_SIZE_MAX],
 * exactly ceil(size / chunkSize) chunks of lowercase hex.
 */
#ifndef MLREG_CHUNK_INDEX_H
#define MLREG_CHUNK_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "mlreg/digest.h"

#define MLREG_MT_CHUNK_INDEX   "application/vnd.mlreg.chunk-index.v1+json"
#define MLREG_KIND_CHUNK_INDEX "chunk-index"
/** On a file layer: the digest of its chunk index layer. */
#define MLREG_ANN_CHUNK_INDEX "org.mlreg.chunk-index"
/** On a chunk index layer: the digest of the file it indexes. */
#define MLREG_ANN_CHUNKS_OF "org.mlreg.chunks-of"
/** Suffix of a chunk index layer's title after its file's title. */
#define MLREG_CHUNK_TITLE_SUFFIX ".chunks"

/** Files of at least this size get an index at push. */
#define MLREG_CHUNK_INDEX_THRESHOLD ((uint64_t)64 << 20)
/** The chunk size `mlreg push` uses. */
#define MLREG_CHUNK_SIZE_DEFAULT ((uint64_t)8 << 20)
#define MLREG_CHUNK_SIZE_MIN     ((uint64_t)64 << 10)
#define MLREG_CHUNK_SIZE_MAX     ((uint64_t)1 << 30)
/** The largest index blob a client reads (about 8 TiB of file at 8 MiB chunks). */
#define MLREG_CHUNK_INDEX_MAX_BYTES ((size_t)96 << 20)

/** A parsed or built index. Free with mlreg_chunk_index_clear(). */
typedef struct {
    mlreg_digest file;    /**< the whole file's digest */
    uint64_t size;        /**< the file's size in bytes */
    uint64_t chunk_size;  /**< bytes per chunk (the last may be shorter) */
    size_t nchunks;       /**< ceil(size / chunk_size) */
    mlreg_digest *chunks; /**< nchunks digests; NULL when nchunks is 0 */
} mlreg_chunk_index;

/** Releases what @p ix owns and zeroes it; a zeroed index is a no-op. */
void mlreg_chunk_index_clear(mlreg_chunk_index *ix);

/** 1 when @p chunk_size is a valid chunk size and @p nchunks chunks of it
 *  cover exactly @p size bytes (ceil(size / chunk_size)), else 0. */
int mlreg_chunk_index_shape_valid(uint64_t size, uint64_t chunk_size, uint64_t nchunks);

/** Offset of chunk @p i (i < nchunks). */
uint64_t mlreg_chunk_index_offset(const mlreg_chunk_index *ix, size_t i);
/** Length of chunk @p i (i < nchunks): chunk_size, or less for the last. */
uint64_t mlreg_chunk_index_len(const mlreg_chunk_index *ix, size_t i);

/**
 * Parses and checks an index blob of @p len bytes into @p out (zeroed first).
 * 0, MLREG_EINVALID naming the field, MLREG_ETOOBIG over
 * MLREG_CHUNK_INDEX_MAX_BYTES, or MLREG_ENOMEM.
 */
int mlreg_chunk_index_parse(mlreg_chunk_index *out, const void *data, size_t len);

/**
 * The deterministic bytes of @p ix (malloc'd into @p out, length in
 * @p len_out; not NUL-terminated). Refuses (MLREG_EINVALID) an index whose
 * chunk count or chunk size breaks the rules above.
 */
int mlreg_chunk_index_serialize(char **out, size_t *len_out, const mlreg_chunk_index *ix);

/**
 * Streaming builder: feed the file's bytes in order, in any pieces; it keeps
 * one SHA-256 state and the digests so far (32 bytes per chunk).
 */
typedef struct mlreg_chunk_builder mlreg_chunk_builder;

/** @p chunk_size must be a valid chunk size. 0, MLREG_EINVALID or MLREG_ENOMEM. */
int mlreg_chunk_builder_new(mlreg_chunk_builder **out, uint64_t chunk_size);
/** 0, MLREG_ENOMEM or MLREG_EIO. */
int mlreg_chunk_builder_update(mlreg_chunk_builder *b, const void *data, size_t len);
/**
 * Ends the input: @p out receives the index (its digest field set to
 * @p file, which the caller computed over the same bytes). The builder is
 * spent afterwards and may only be freed.
 */
int mlreg_chunk_builder_finish(mlreg_chunk_index *out, mlreg_chunk_builder *b,
                               const mlreg_digest *file);
/** NULL is a no-op. */
void mlreg_chunk_builder_free(mlreg_chunk_builder *b);

#endif
