/**
 * @file sys/blob_backend.h
 * @brief The interface a blob backend (fs, s3) implements.
 *
 * Modelled on libgit2's ODB backends: a backend is a struct of function
 * pointers with a version field; an implementation embeds the struct as its
 * first member, keeps every operation static (fs_backend__write) and exports
 * only a constructor. Backends store bytes under a digest and know nothing of
 * models or manifests. Integrity is checked once, in the front end (blob.c):
 * a backend writer is told the digest only at commit time, after the front end
 * has hashed every byte and compared digest and size with the declared ones.
 */
#ifndef MLREG_SYS_BLOB_BACKEND_H
#define MLREG_SYS_BLOB_BACKEND_H

#include <stdint.h>
#include <sys/types.h>

#include "mlreg/digest.h"

#define MLREG_BLOB_BACKEND_VERSION 1

/** Room for the name a quarantine() gives the copy it keeps. */
#define MLREG_BLOB_QUARANTINE_NAME_MAX 128

typedef struct mlreg_blob_backend mlreg_blob_backend;

/** An in-progress write. Bytes are invisible under any digest until commit. */
typedef struct mlreg_blob_backend_writer {
    /** Appends bytes. 0 or negative MLREG_E* (ENOSPACE when the disk is full). */
    int (*write)(struct mlreg_blob_backend_writer *w, const void *data, size_t len);
    /**
     * Makes the written bytes durable and visible under @p digest, atomically:
     * a crash leaves either nothing or the whole blob under its final name.
     * Committing a digest that already exists succeeds (content-addressed).
     * Frees the writer whatever the result.
     */
    int (*commit)(struct mlreg_blob_backend_writer *w, const mlreg_digest *digest);
    /** Discards everything written and frees the writer. */
    void (*abort)(struct mlreg_blob_backend_writer *w);
    /**
     * Optional (NULL: nothing to do). The blob will be @p total bytes long
     * in all: the backend may reserve the room now (fs: fallocate), so a
     * full disk is reported before the bytes are sent. 0, MLREG_ENOSPACE or
     * another error; a backend that cannot reserve returns 0.
     */
    int (*reserve)(struct mlreg_blob_backend_writer *w, uint64_t total);
} mlreg_blob_backend_writer;

/** An open blob for reading. */
typedef struct mlreg_blob_backend_reader {
    /** Reads up to @p len bytes; returns the count, 0 at end, or negative MLREG_E*. */
    ssize_t (*read)(struct mlreg_blob_backend_reader *r, void *buf, size_t len);
    /**
     * A readable file descriptor positioned anywhere (callers use pread or
     * sendfile with explicit offsets), or -1 when the backend has none (s3).
     * The descriptor stays owned by the reader.
     */
    int (*fd)(struct mlreg_blob_backend_reader *r);
    /** Closes and frees the reader. */
    void (*free)(struct mlreg_blob_backend_reader *r);
} mlreg_blob_backend_reader;

/** Called by foreach for each stored blob with its size and the time it was
 *  last written (@p modified, Unix seconds; 0 when the backend could not tell,
 *  which a garbage collector must read as "just written"); a non-zero return
 *  stops the walk and is returned by foreach. */
typedef int (*mlreg_blob_foreach_cb)(const mlreg_digest *digest, uint64_t size, int64_t modified,
                                     void *payload);

struct mlreg_blob_backend {
    unsigned int version; /**< MLREG_BLOB_BACKEND_VERSION */

    /** 1 found, 0 not found, negative MLREG_E* on error (never "not found"). */
    int (*exists)(mlreg_blob_backend *b, const mlreg_digest *digest);
    /** Size of a stored blob. 0, MLREG_ENOTFOUND or another error. */
    int (*stat)(uint64_t *size_out, mlreg_blob_backend *b, const mlreg_digest *digest);
    /** Opens a stored blob. 0, MLREG_ENOTFOUND or another error. */
    int (*open_read)(mlreg_blob_backend_reader **out, uint64_t *size_out, mlreg_blob_backend *b,
                     const mlreg_digest *digest);
    /** Starts a write. @p size_hint is the expected size or -1 when unknown. */
    int (*open_write)(mlreg_blob_backend_writer **out, mlreg_blob_backend *b, int64_t size_hint);
    /** Removes a blob. 0 or MLREG_ENOTFOUND or another error. */
    int (*remove)(mlreg_blob_backend *b, const mlreg_digest *digest);
    /** Walks every stored blob (order unspecified). */
    int (*foreach)(mlreg_blob_backend *b, mlreg_blob_foreach_cb cb, void *payload);
    /** Frees the backend. */
    void (*free)(mlreg_blob_backend *b);
    /**
     * Optional; NULL when the backend has no URLs of its own (fs). Writes into
     * *url_out a new malloc'd URL from which the blob can be fetched directly,
     * without credentials, for @p expires_seconds (s3: a presigned GET). The
     * blob's existence is not checked. 0, MLREG_EINVALID, MLREG_ENOMEM.
     */
    int (*presign)(char **url_out, mlreg_blob_backend *b, const mlreg_digest *digest,
                   unsigned int expires_seconds);
    /**
     * Optional; NULL when the backend leaves nothing behind that a live
     * process does not own (fs: temp files belong to the one server of the
     * root and are removed when their write ends or at start). Removes the
     * in-progress writes begun over @p max_age seconds ago (s3: aborts their
     * multipart uploads and deletes their temp objects), or with @p dry_run
     * only counts them, into *count_out. 0 or the request's error.
     */
    int (*sweep_stale)(unsigned int *count_out, mlreg_blob_backend *b, long max_age, int dry_run);
    /**
     * Moves a stored blob out of the store, keeping its bytes for an
     * operator to look at: afterwards exists() answers 0 and stat() and
     * open_read() MLREG_ENOTFOUND, so clients upload it again, and a later
     * commit of the digest stores it anew. The copy is kept under a name
     * made of the digest's hex and @p when (Unix seconds): fs
     * `root/blobs/quarantine/<hex>.<when>`, s3 `<prefix>quarantine/<hex>.<when>`;
     * the name goes to @p name_out (may be NULL; @p name_len bytes, 128 are
     * enough). 0, MLREG_ENOTFOUND or another error (the blob then stays
     * where it was).
     */
    int (*quarantine)(char *name_out, size_t name_len, mlreg_blob_backend *b,
                      const mlreg_digest *digest, int64_t when);
    /**
     * Optional; NULL when the backend has nothing to check. Whether the
     * backend can take reads and writes now, for readiness probes. fs
     * checks, without writing, that its directories are still the ones it
     * opened (not removed, not replaced) and writable; s3 sends one small
     * request (a listing of an empty prefix) at most once every
     * MLREG_BLOB_CHECK_CACHE_SECONDS and answers the last result in between,
     * so probes cannot load the object store. 0, or an error whose message
     * holds the detail for the server's log, with a short reason for
     * anyone in @p reason (@p reason_len bytes: no path outside the store,
     * nothing secret).
     */
    int (*check)(char *reason, size_t reason_len, mlreg_blob_backend *b);
    /** Optional; the backend's short name ("fs", "s3"), a static string: the
     *  `backend` label of the blob store's metrics (NULL: "other"). */
    const char *name;
    /**
     * Optional (0: the front end calls the writer's write synchronously,
     * with the caller's buffers, as it always did; s3). Non-zero: the front
     * end may stage large writes in buffers aligned to this many bytes and
     * call the writer's write from a helper thread (never two calls at
     * once), each write's length and blob offset then being multiples of
     * it except the first and the last of a run. fs sets it to the page
     * size.
     */
    unsigned int write_block;
};

/** Seconds an s3 backend's check() answers its last result without asking again. */
#define MLREG_BLOB_CHECK_CACHE_SECONDS 5

/**
 * Creates the local filesystem backend rooted at @p root (blobs live under
 * `root/blobs/sha256/<2 hex>/<64 hex>`, temp files under `root/blobs/tmp/`,
 * quarantined blobs under `root/blobs/quarantine/`).
 * Directories are created 0700 and blobs 0600: only the server's user reads
 * them. Creates the directories if missing and removes stale temp files left by a
 * crash. The caller owns *out (free through its free member or by handing it
 * to mlreg_blobstore_new, which takes ownership).
 */
int mlreg_blob_backend_fs_new(mlreg_blob_backend **out, const char *root);

struct mlreg_s3_config;

/**
 * Creates the S3 backend described by @p cfg (see mlreg/s3.h). Blobs live at
 * `<prefix>blobs/sha256/<64 hex>`; writes over 8 MiB go through a multipart
 * upload to `<prefix>uploads/<random>`, completed, copied server-side to the
 * blob's name and deleted only after the front end verified the digest, so
 * no unverified or partial object ever appears under a blob name.
 *
 * Construction talks to the bucket: it aborts the multipart uploads and
 * removes the temp objects left under `<prefix>uploads/` by a crash (one
 * prefix belongs to one server, as one root does for fs). That request also
 * checks the endpoint and the credentials, so a wrong secret key fails here
 * with a message naming the HTTP status and S3 code (e.g. "403
 * SignatureDoesNotMatch"). The caller owns *out.
 */
int mlreg_blob_backend_s3_new(mlreg_blob_backend **out, const struct mlreg_s3_config *cfg);

#endif
