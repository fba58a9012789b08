/**
 * @file blob.h
 * @brief Content-addressed blob store front end.
 *
 * Wraps a backend (see sys/blob_backend.h) and checks integrity centrally:
 * every byte written goes through SHA-256, and a write commits only when the
 * digest and size match what the caller declared. Thread-safe as long as the
 * backend is (the fs backend is).
 */
#ifndef MLREG_BLOB_H
#define MLREG_BLOB_H

#include <stdint.h>
#include <sys/types.h>

#include "mlreg/digest.h"
#include "mlreg/sys/blob_backend.h"

typedef struct mlreg_blobstore mlreg_blobstore;
typedef struct mlreg_blob_writer mlreg_blob_writer;
typedef struct mlreg_blob_reader mlreg_blob_reader;

/** Staging memory of one pipelined writer (see mlreg_blob_writer_write). */
#define MLREG_BLOB_PIPE_BYTES (8u * 1024 * 1024)
/** Pipelined writers a store runs at once; more writers write synchronously. */
#define MLREG_BLOB_PIPES_MAX 4

/** Creates a store over @p backend, taking ownership of it (also on failure). */
int mlreg_blobstore_new(mlreg_blobstore **out, mlreg_blob_backend *backend);
/** Frees the store and its backend; NULL is a no-op. */
void mlreg_blobstore_free(mlreg_blobstore *store);

/** 1 found, 0 not found, negative MLREG_E* on error. */
int mlreg_blobstore_exists(mlreg_blobstore *store, const mlreg_digest *digest);
/** Size of a blob: 0, MLREG_ENOTFOUND or another error. */
int mlreg_blobstore_stat(uint64_t *size_out, mlreg_blobstore *store, const mlreg_digest *digest);
/** Removes a blob: 0, MLREG_ENOTFOUND or another error. */
int mlreg_blobstore_remove(mlreg_blobstore *store, const mlreg_digest *digest);
/**
 * A URL from which the blob can be fetched directly for @p expires_seconds
 * (s3: a presigned GET), in a new malloc'd string (*url_out, caller frees).
 * Existence is not checked. MLREG_EUNSUPPORTED when the backend has no URLs
 * of its own (fs).
 */
int mlreg_blobstore_presign(char **url_out, mlreg_blobstore *store, const mlreg_digest *digest,
                            unsigned int expires_seconds);
/**
 * Removes the backend's in-progress writes begun over @p max_age seconds ago
 * (see mlreg_blob_backend.sweep_stale), or with @p dry_run counts them, into
 * *count_out; 0 with a count of 0 for a backend with none to remove (fs).
 */
int mlreg_blobstore_sweep_stale(unsigned int *count_out, mlreg_blobstore *store, long max_age,
                                int dry_run);
/**
 * Moves blob @p digest aside (see the backend's quarantine member): the
 * store then answers "not found" for it, so clients upload it again, and
 * its bytes stay under *name_out (MLREG_BLOB_QUARANTINE_NAME_MAX bytes; may
 * be NULL) for an operator. @p when: Unix seconds for that name, 0 = now.
 * 0, MLREG_ENOTFOUND, MLREG_EUNSUPPORTED (a backend without quarantine) or
 * another error (the blob then stays in place).
 */
int mlreg_blobstore_quarantine(char *name_out, mlreg_blobstore *store, const mlreg_digest *digest,
                               int64_t when);
/**
 * Whether the backend can take reads and writes now (see the backend's
 * check member): 0, also for a backend without a check; or an error with
 * the detail as the thread's message and a short public reason in
 * @p reason (@p reason_len bytes).
 */
int mlreg_blobstore_check(char *reason, size_t reason_len, mlreg_blobstore *store);
/** Walks every blob; see mlreg_blob_foreach_cb. */
int mlreg_blobstore_foreach(mlreg_blobstore *store, mlreg_blob_foreach_cb cb, void *payload);

/**
 * Starts a write. @p size_hint: expected size, or -1 when unknown. The writer
 * must end with exactly one of mlreg_blob_writer_commit() or
 * mlreg_blob_writer_abort(), which free it.
 */
int mlreg_blobstore_open_write(mlreg_blob_writer **out, mlreg_blobstore *store, int64_t size_hint);
/**
 * Appends bytes (hashing them). On error the writer stays valid; abort it.
 * With a backend that has a write_block (fs), a write may only copy the
 * bytes into the writer's staging buffers (bounded: MLREG_BLOB_PIPE_BYTES)
 * and return: helper threads then hash them and write them to the backend,
 * overlapped with the caller receiving the next bytes. An error of theirs
 * is returned by a later write, mlreg_blob_writer_flush() or commit.
 */
int mlreg_blob_writer_write(mlreg_blob_writer *w, const void *data, size_t len);
/**
 * Waits until every byte written so far is hashed and in the backend, and
 * releases the helper threads and staging buffers, if any: afterwards the
 * writer holds no memory beyond its own state (an upload session between
 * two requests). 0, or the first error of the helpers (the writer is then
 * failed: abort it). The writer stays usable.
 */
int mlreg_blob_writer_flush(mlreg_blob_writer *w);
/**
 * The blob will be @p total bytes in all (known from a Content-Length):
 * lets the backend reserve the room (see the backend's reserve). 0,
 * MLREG_ENOSPACE (refuse the upload now) or another error.
 */
int mlreg_blob_writer_reserve(mlreg_blob_writer *w, uint64_t total);
/** Bytes written so far. */
uint64_t mlreg_blob_writer_size(const mlreg_blob_writer *w);
/**
 * Finishes the hash; if @p expected is non-NULL and differs from it, or
 * @p expected_size >= 0 and differs from the byte count, returns
 * MLREG_EMISMATCH and stores nothing. Otherwise commits the blob under its
 * digest (written to @p digest_out if non-NULL). Frees @p w in every case.
 */
int mlreg_blob_writer_commit(mlreg_digest *digest_out, mlreg_blob_writer *w,
                             const mlreg_digest *expected, int64_t expected_size);
/** Discards the write and frees @p w; NULL is a no-op. */
void mlreg_blob_writer_abort(mlreg_blob_writer *w);

/** Opens a blob for reading. 0, MLREG_ENOTFOUND or another error. */
int mlreg_blobstore_open_read(mlreg_blob_reader **out, uint64_t *size_out, mlreg_blobstore *store,
                              const mlreg_digest *digest);
/** Reads up to @p len bytes: count, 0 at end, or negative MLREG_E*. */
ssize_t mlreg_blob_reader_read(mlreg_blob_reader *r, void *buf, size_t len);
/** The backing file descriptor (for sendfile), or -1; owned by the reader. */
int mlreg_blob_reader_fd(mlreg_blob_reader *r);
/** Closes and frees the reader; NULL is a no-op. */
void mlreg_blob_reader_free(mlreg_blob_reader *r);

#endif
