/* push_cache.h: what `mlreg push` remembers between runs (push_cache.c).
 * Internal to cli/.
 *
 * 1. The digest cache, like git's index: for a file identified by device,
 *    inode, size, mtime and ctime (both in nanoseconds), its SHA-256 and,
 *    for a file of at least MLREG_CHUNK_INDEX_THRESHOLD bytes, its chunk
 *    digests. An unchanged file is then never read again. One binary file,
 *    DIR/digests, replaced atomically; a file that is corrupt, truncated,
 *    of another version, not a regular file, owned by someone else or
 *    writable by others is ignored as a whole (the push hashes again).
 * 2. Upload sessions of unfinished pushes, one small text file each under
 *    DIR/uploads/, keyed by registry, repository and file identity, so a
 *    push that was killed resumes its upload.
 *
 * DIR is $MLREG_CACHE_DIR, else $XDG_CACHE_HOME/mlreg, else ~/.cache/mlreg.
 * Functions return 0 or a negative MLREG_E* code with the message set.
 */
#ifndef MLREG_CLI_PUSH_CACHE_H
#define MLREG_CLI_PUSH_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mlreg/chunk_index.h"
#include "mlreg/digest.h"

/** Entries kept at most; the least recently used go first. */
#define PUSH_CACHE_MAX_ENTRIES 4096
/** Largest cache file read or written (chunk digests included). */
#define PUSH_CACHE_MAX_BYTES ((size_t)64 << 20)
/** Largest upload session file read. */
#define PUSH_UPLOAD_MAX_BYTES 8192

/** What identifies one version of a file, as stat(2) reports it. */
typedef struct {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
} push_file_id;

typedef struct {
    push_file_id id;
    int64_t used;        /* unix seconds of the last push that used it */
    int unverified;      /* stored racily clean: a hint to hash before uploading, never trusted */
    mlreg_digest digest; /* the whole file's */
    uint64_t chunk_size; /* 0: no chunk index kept */
    size_t nchunks;
    mlreg_digest *chunks; /* owned */
} push_cache_entry;

typedef struct {
    push_cache_entry *entries;
    size_t n, cap;
    int dirty; /* changed since loaded */
} push_cache;

/** The identity of the file @p st describes. */
void push_file_id_from_stat(push_file_id *out, const struct stat *st);

/**
 * 1 when a digest of the file @p id, whose reading began at @p started_ns
 * (CLOCK_REALTIME, taken after the stat), may be cached: its mtime and
 * ctime are older than that moment by more than the timestamps' granule.
 * A file written within the same granule could change again without its
 * timestamps changing ("racily clean" in git's words): not cached.
 */
int push_file_id_cacheable(const push_file_id *id, int64_t started_ns);

/** The cache directory into @p out (@p len bytes). 0 or MLREG_EINVALID. */
int push_cache_dir(char *out, size_t len);

/**
 * Parses cache file bytes into @p out (emptied first). Strict: magic and
 * version, a trailing SHA-256 of everything before it, at most
 * PUSH_CACHE_MAX_ENTRIES entries, chunk counts that match size and chunk
 * size, no duplicate identities, no trailing bytes. 0, MLREG_EINVALID,
 * MLREG_ETOOBIG or MLREG_ENOMEM; on failure @p out is empty.
 */
int push_cache_parse(push_cache *out, const void *data, size_t len);

/** The bytes of @p c (malloc'd into *out, free()). 0 or MLREG_ENOMEM. */
int push_cache_serialize(unsigned char **out, size_t *len_out, const push_cache *c);

/**
 * Reads DIR/digests into @p out. A missing file is an empty cache; a file
 * that push_cache_parse() refuses, or that is not ours, is an empty cache
 * too, with one line on stderr saying it is ignored. Returns 0 or
 * MLREG_ENOMEM.
 */
int push_cache_load(push_cache *out, const char *dir);

/**
 * Writes @p c to DIR/digests atomically (creating DIR, mode 0700), after
 * dropping the least recently used entries over PUSH_CACHE_MAX_ENTRIES
 * or PUSH_CACHE_MAX_BYTES. 0, MLREG_EIO, MLREG_ENOSPACE, MLREG_ENOMEM.
 */
int push_cache_save(push_cache *c, const char *dir);

/** The entry of @p id, or NULL; valid until @p c changes. */
push_cache_entry *push_cache_find(push_cache *c, const push_file_id *id);

/**
 * Adds or replaces the entry of @p id: @p digest and, when @p ix is not
 * NULL, its chunk digests (copied). @p now is its use time; @p unverified
 * marks a file that was changed too recently to be trusted (racily
 * clean): the next push hashes it before deciding to upload. 0 or
 * MLREG_ENOMEM.
 */
int push_cache_put(push_cache *c, const push_file_id *id, const mlreg_digest *digest,
                   const mlreg_chunk_index *ix, int64_t now, int unverified);

/** Frees what @p c holds and empties it. */
void push_cache_clear(push_cache *c);

/* ---- upload sessions -------------------------------------------------------- */

/**
 * The session file name for (@p registry, @p repo, @p id): 64 hex digits
 * of a SHA-256 over the three, into @p out.
 */
void push_upload_key(char out[MLREG_DIGEST_HEXLEN + 1], const char *registry, const char *repo,
                     const push_file_id *id);

/**
 * Parses a session file: checks that it names @p registry, @p repo and
 * @p id, and gives its Location into *location_out (malloc'd). A
 * Location must be a printable string of at most 2048 bytes without
 * spaces. 0 or MLREG_EINVALID (any other content) or MLREG_ENOMEM.
 */
int push_upload_parse(char **location_out, const char *data, size_t len, const char *registry,
                      const char *repo, const push_file_id *id);

/** The bytes of a session file (malloc'd into *out). 0, MLREG_EINVALID, MLREG_ENOMEM. */
int push_upload_format(char **out, size_t *len_out, const char *registry, const char *repo,
                       const push_file_id *id, const char *location);

/**
 * The remembered Location for (@p registry, @p repo, @p id) into
 * *location_out (malloc'd), or NULL when there is none or its file is
 * unusable (which is then removed). 0 or MLREG_ENOMEM.
 */
int push_upload_load(char **location_out, const char *dir, const char *registry, const char *repo,
                     const push_file_id *id);

/** Remembers @p location (atomic write under DIR/uploads/). 0 or MLREG_EIO. */
int push_upload_save(const char *dir, const char *registry, const char *repo,
                     const push_file_id *id, const char *location);

/**
 * Removes the session files under DIR/uploads/ last written more than
 * @p max_age seconds ago (a push that was never run again): the registry
 * dropped those sessions long since. Errors are ignored.
 */
void push_upload_prune(const char *dir, long max_age);

/** Forgets the session of (@p registry, @p repo, @p id); none is fine. */
void push_upload_forget(const char *dir, const char *registry, const char *repo,
                        const push_file_id *id);

#endif
