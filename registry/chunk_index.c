/* chunk_index.c: the chunk index of a large release file (pure functions;
 * see include/mlreg/chunk_index.h).
 *
 * The parser reads bytes a registry served, so it is strict: the five keys
 * only, no duplicates, each of its type, sizes that agree with each other.
 * A pull trusts an index only after its digest matched the signed manifest,
 * but a release pushed by another tool could still carry a hostile one: a
 * chunk size of 1 byte or a count of 2^60 must not turn into an allocation. */
#include "mlreg/chunk_index.h"

#include "mlreg/common.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mlreg_chunk_builder {
    uint64_t chunk_size;
    uint64_t in_chunk; /* bytes fed into the current chunk's hasher */
    uint64_t total;
    mlreg_hasher *h;
    mlreg_digest *chunks;
    size_t nchunks, cap;
};

static int chunk_size_valid(uint64_t cs)
{
    return cs >= MLREG_CHUNK_SIZE_MIN && cs <= MLREG_CHUNK_SIZE_MAX && (cs & (cs - 1)) == 0;
}

/* ceil(size / cs) for a valid chunk size (no overflow: cs >= 2^16). */
static uint64_t chunk_count(uint64_t size, uint64_t cs)
{
    return size / cs + (size % cs != 0);
}

int mlreg_chunk_index_shape_valid(uint64_t size, uint64_t chunk_size, uint64_t nchunks)
{
    return chunk_size_valid(chunk_size) && nchunks == chunk_count(size, chunk_size);
}

void mlreg_chunk_index_clear(mlreg_chunk_index *ix)
{
    if (ix == NULL) return;
    free(ix->chunks);
    memset(ix, 0, sizeof(*ix));
}

uint64_t mlreg_chunk_index_offset(const mlreg_chunk_index *ix, size_t i)
{
    return (uint64_t)i * ix->chunk_size;
}

uint64_t mlreg_chunk_index_len(const mlreg_chunk_index *ix, size_t i)
{
    uint64_t off = mlreg_chunk_index_offset(ix, i);
    uint64_t rest = ix->size - off;

    return rest < ix->chunk_size ? rest : ix->chunk_size;
}

static int parse_u64(uint64_t *out, json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return mlreg_error_set(MLREG_EINVALID, "chunk index: %s must be a non-negative integer",
                               key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_fields(mlreg_chunk_index *ix, json_t *root)
{
    static const char *const keys[] = {"mediaType", "digest", "size", "chunkSize", "chunks"};
    const char *key;
    json_t *v, *chunks;
    size_t i, n;
    int error;

    if (!json_is_object(root))
        return mlreg_error_set(MLREG_EINVALID, "chunk index: not a JSON object");
    json_object_foreach(root, key, v)
    {
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (strcmp(key, keys[i]) == 0) break;
        if (i == sizeof(keys) / sizeof(keys[0]))
            return mlreg_error_set(MLREG_EINVALID, "chunk index: unknown key '%.64s'", key);
    }
    v = json_object_get(root, "mediaType");
    if (!json_is_string(v) || strcmp(json_string_value(v), MLREG_MT_CHUNK_INDEX) != 0)
        return mlreg_error_set(MLREG_EINVALID, "chunk index: mediaType must be '%s'",
                               MLREG_MT_CHUNK_INDEX);
    v = json_object_get(root, "digest");
    if (!json_is_string(v) || mlreg_digest_parse(&ix->file, json_string_value(v)) < 0)
        return mlreg_error_set(MLREG_EINVALID, "chunk index: digest must be 'sha256:<64 hex>'");
    if ((error = parse_u64(&ix->size, root, "size")) < 0) return error;
    if ((error = parse_u64(&ix->chunk_size, root, "chunkSize")) < 0) return error;
    if (!chunk_size_valid(ix->chunk_size))
        return mlreg_error_set(MLREG_EINVALID,
                               "chunk index: chunkSize %" PRIu64
                               " must be a power of two from %" PRIu64 " to %" PRIu64,
                               ix->chunk_size, MLREG_CHUNK_SIZE_MIN, MLREG_CHUNK_SIZE_MAX);
    chunks = json_object_get(root, "chunks");
    if (!json_is_array(chunks))
        return mlreg_error_set(MLREG_EINVALID, "chunk index: chunks must be an array");
    n = json_array_size(chunks);
    if ((uint64_t)n != chunk_count(ix->size, ix->chunk_size))
        return mlreg_error_set(MLREG_EINVALID,
                               "chunk index: %zu chunks listed, %" PRIu64
                               " bytes in chunks of %" PRIu64 " need %" PRIu64,
                               n, ix->size, ix->chunk_size, chunk_count(ix->size, ix->chunk_size));
    if (n > 0) {
        ix->chunks = malloc(n * sizeof(*ix->chunks));
        if (ix->chunks == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory reading a chunk index");
    }
    for (i = 0; i < n; i++) {
        v = json_array_get(chunks, i);
        if (!json_is_string(v) ||
            mlreg_digest_parse_hex(&ix->chunks[i], json_string_value(v), json_string_length(v)) < 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "chunk index: chunks[%zu] must be 64 lowercase hex", i);
    }
    ix->nchunks = n;
    return 0;
}

int mlreg_chunk_index_parse(mlreg_chunk_index *out, const void *data, size_t len)
{
    json_error_t jerr;
    json_t *root;
    int error;

    memset(out, 0, sizeof(*out));
    if (len > MLREG_CHUNK_INDEX_MAX_BYTES)
        return mlreg_error_set(MLREG_ETOOBIG, "chunk index: %zu bytes, over the limit of %zu", len,
                               MLREG_CHUNK_INDEX_MAX_BYTES);
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mlreg_error_set(MLREG_EINVALID, "chunk index: not valid JSON (%.80s)", jerr.text);
    error = parse_fields(out, root);
    json_decref(root);
    if (error < 0) mlreg_chunk_index_clear(out);
    return error;
}

int mlreg_chunk_index_serialize(char **out, size_t *len_out, const mlreg_chunk_index *ix)
{
    char head[512], digest[MLREG_DIGEST_STRLEN + 1], hex[MLREG_DIGEST_HEXLEN + 1];
    size_t hlen, cap, pos, i;
    char *buf;

    *out = NULL;
    *len_out = 0;
    if (!mlreg_chunk_index_shape_valid(ix->size, ix->chunk_size, ix->nchunks))
        return mlreg_error_set(MLREG_EINVALID,
                               "chunk index: %zu chunks of %" PRIu64 " bytes do not cover %" PRIu64
                               " bytes",
                               ix->nchunks, ix->chunk_size, ix->size);
    mlreg_digest_format(digest, &ix->file);
    hlen = (size_t)snprintf(head, sizeof(head),
                            "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%" PRIu64
                            ",\"chunkSize\":%" PRIu64 ",\"chunks\":[",
                            MLREG_MT_CHUNK_INDEX, digest, ix->size, ix->chunk_size);
    /* each chunk: quote, 64 hex, quote, comma; then "]}" */
    cap = hlen + ix->nchunks * (MLREG_DIGEST_HEXLEN + 3) + 2;
    if (cap > MLREG_CHUNK_INDEX_MAX_BYTES)
        return mlreg_error_set(MLREG_ETOOBIG,
                               "chunk index: %zu chunks are over the limit of %zu bytes",
                               ix->nchunks, MLREG_CHUNK_INDEX_MAX_BYTES);
    buf = malloc(cap);
    if (buf == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory writing a chunk index");
    memcpy(buf, head, hlen);
    pos = hlen;
    for (i = 0; i < ix->nchunks; i++) {
        if (i > 0) buf[pos++] = ',';
        mlreg_digest_hex(hex, &ix->chunks[i]);
        buf[pos++] = '"';
        memcpy(buf + pos, hex, MLREG_DIGEST_HEXLEN);
        pos += MLREG_DIGEST_HEXLEN;
        buf[pos++] = '"';
    }
    buf[pos++] = ']';
    buf[pos++] = '}';
    *out = buf;
    *len_out = pos;
    return 0;
}

int mlreg_chunk_builder_new(mlreg_chunk_builder **out, uint64_t chunk_size)
{
    mlreg_chunk_builder *b;
    int error;

    *out = NULL;
    if (!chunk_size_valid(chunk_size))
        return mlreg_error_set(MLREG_EINVALID,
                               "chunk size %" PRIu64 " must be a power of two from %" PRIu64
                               " to %" PRIu64,
                               chunk_size, MLREG_CHUNK_SIZE_MIN, MLREG_CHUNK_SIZE_MAX);
    b = calloc(1, sizeof(*b));
    if (b == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory for a chunk index");
    b->chunk_size = chunk_size;
    if ((error = mlreg_hasher_new(&b->h)) < 0) {
        free(b);
        return error;
    }
    *out = b;
    return 0;
}

/* Closes the current chunk: its digest joins the list, a fresh hasher starts. */
static int close_chunk(mlreg_chunk_builder *b)
{
    int error;

    if (b->nchunks == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        mlreg_digest *c = realloc(b->chunks, cap * sizeof(*c));

        if (c == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory for a chunk index");
        b->chunks = c;
        b->cap = cap;
    }
    error = mlreg_hasher_final(&b->chunks[b->nchunks], b->h);
    mlreg_hasher_free(b->h);
    b->h = NULL;
    if (error < 0) return error;
    b->nchunks++;
    b->in_chunk = 0;
    return mlreg_hasher_new(&b->h);
}

int mlreg_chunk_builder_update(mlreg_chunk_builder *b, const void *data, size_t len)
{
    const unsigned char *p = data;
    int error;

    if (b->h == NULL)
        return mlreg_error_set(MLREG_EINVALID, "chunk index builder already finished");
    while (len > 0) {
        uint64_t room = b->chunk_size - b->in_chunk;
        size_t n = len < room ? len : (size_t)room;

        if ((error = mlreg_hasher_update(b->h, p, n)) < 0) return error;
        b->in_chunk += n;
        b->total += n;
        p += n;
        len -= n;
        if (b->in_chunk == b->chunk_size && (error = close_chunk(b)) < 0) return error;
    }
    return 0;
}

int mlreg_chunk_builder_finish(mlreg_chunk_index *out, mlreg_chunk_builder *b,
                               const mlreg_digest *file)
{
    int error;

    memset(out, 0, sizeof(*out));
    if (b->h == NULL)
        return mlreg_error_set(MLREG_EINVALID, "chunk index builder already finished");
    if (b->in_chunk > 0 && (error = close_chunk(b)) < 0) return error;
    mlreg_hasher_free(b->h);
    b->h = NULL;
    out->file = *file;
    out->size = b->total;
    out->chunk_size = b->chunk_size;
    out->nchunks = b->nchunks;
    out->chunks = b->chunks;
    b->chunks = NULL;
    b->nchunks = b->cap = 0;
    return 0;
}

void mlreg_chunk_builder_free(mlreg_chunk_builder *b)
{
    if (b == NULL) return;
    mlreg_hasher_free(b->h);
    free(b->chunks);
    free(b);
}
