/* pull_chunks.h: `mlreg pull` of one large file that has a chunk index
 * (mlreg/chunk_index.h): parallel ranged GETs, each chunk verified as it
 * lands, a partial file in a staging dir of the output dir that a later
 * pull resumes. Internal to cli/ (pull.c is its one caller).
 *
 * Functions return 0 or a negative MLREG_E* code with the message set;
 * verification failures are MLREG_EMISMATCH (exit 1).
 */
#ifndef MLREG_CLI_PULL_CHUNKS_H
#define MLREG_CLI_PULL_CHUNKS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "release.h"

/** The staging dir inside the output dir: hidden, and not a valid title. */
#define CLI_PULL_STAGE_DIR ".mlreg-pull"
/** Default ceiling of --parallel: ranges in flight for one file. */
#define CLI_PULL_PARALLEL_DEFAULT 4u
#define CLI_PULL_PARALLEL_MAX     32u
/** Fetches of one chunk before the pull gives up on it. */
#define CLI_PULL_CHUNK_TRIES 3

/**
 * Creates (mode 0700) or opens CLI_PULL_STAGE_DIR in the output dir (its
 * descriptor @p dfd, its path @p dir for messages); *fd_out receives the
 * staging dir's descriptor (close() it). An existing entry must be a
 * directory owned by us, not a symbolic link (O_NOFOLLOW): anything else
 * is MLREG_EIO naming it, before anything is written there.
 */
int cli_pull_stage_open(int *fd_out, int dfd, const char *dir);

/**
 * Removes DIR's staging dir after a complete pull: every partial file in it
 * no other pull holds, then the dir itself. What cannot be removed (another
 * pull's file, an entry that is not ours) stays, silently: it is hidden,
 * and the next pull reuses or removes it.
 */
void cli_pull_stage_remove(int dfd);

/**
 * What cli_pull_chunked() needs: the client (cloned once per range in
 * flight), the release's model, the file layer and its chunk index layer
 * (paired by pull.c), the staging dir, and --parallel (0 = min(4, chunks)).
 */
typedef struct {
    cli_client *c;
    const char *model;
    const cli_layer *file;
    const cli_layer *index;
    int stage_fd;          /**< the staging dir (cli_pull_stage_open) */
    const char *stage_dir; /**< its path, for messages */
    unsigned parallel;
    uint64_t rate; /**< --limit-rate: bytes per second over all ranges together, 0 = none */
} cli_pull_chunked_opts;

/** What the resumable download did, for the report line and the tests. */
typedef struct {
    size_t nchunks;
    size_t kept;    /**< chunks found verified in the partial file */
    size_t fetched; /**< chunk fetches that verified */
    size_t refetch; /**< fetches that failed verification and were repeated */
} cli_pull_chunked_stats;

/**
 * Fetches the index blob (checked against its layer's size and digest, then
 * parsed strictly, its file digest and size equal to the file layer's),
 * opens or creates STAGE/<hex>.part through @p o's stage_fd (locked
 * against another pull; @p name receives "<hex>.part"), keeps
 * every chunk of it that already verifies, fetches the others in parallel
 * ranges, each written at its offset and checked against the index
 * (CLI_PULL_CHUNK_TRIES fetches each), while this thread hashes the
 * verified prefix for the whole-file digest. On success the partial file
 * holds the verified file: *fd_out is open on it (the caller fsyncs,
 * renames @p name, relative to stage_fd, into place and closes it). On failure *fd_out is -1 and
 * the partial file stays for the next pull, except when the whole file does
 * not match with every chunk verified (the index lies), where it is removed.
 */
int cli_pull_chunked(int *fd_out, cli_pull_chunked_stats *stats, char *name, size_t namelen,
                     const cli_pull_chunked_opts *o);

#endif
