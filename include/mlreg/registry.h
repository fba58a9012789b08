/**
 * @file registry.h
 * @brief Repositories, manifests, tags, referrers and releases over the blob
 *        store and LMDB metadata. No HTTP here: registry/server.c maps these
 *        calls onto the OCI distribution API and /api/v1.
 *
 * A release is an OCI image manifest with
 * artifactType "application/vnd.mlreg.release.v1+json"; see manifest.h for
 * the rules checked on PUT. Every mutation is one LMDB write transaction, and
 * a blob is durable in the store before any metadata references it.
 * All functions are safe to call from several threads at once.
 */
#ifndef MLREG_REGISTRY_H
#define MLREG_REGISTRY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/audit.h"
#include "mlreg/blob.h"
#include "mlreg/cluster.h"
#include "mlreg/config.h"
#include "mlreg/digest.h"
#include "mlreg/keyring.h"
#include "mlreg/meta.h"
#include "mlreg/names.h"
#include "mlreg/tokens.h"

#define MLREG_DEFAULT_MAX_MANIFEST_BYTES (4u * 1024 * 1024)

/** Paged listings (referrers here; promotions and stage history in
 *  promotions.h): entries in a page when the caller asks for 0, the most a
 *  page holds (a larger limit is clamped), and the bytes of stored records
 *  after which a page ends early (it always holds at least one entry), like
 *  the audit log's pages (audit.h). */
#define MLREG_PAGE_LIMIT_DEFAULT 100
#define MLREG_PAGE_LIMIT_MAX     1000
#define MLREG_PAGE_BYTES         (4u * 1024 * 1024)

typedef struct mlreg_registry mlreg_registry;

typedef struct {
    const char *data_dir;      /**< holds blobs/ (fs backend) and meta/ (LMDB) */
    size_t map_size;           /**< LMDB map size in bytes; 0 = default */
    size_t max_manifest_bytes; /**< 0 = MLREG_DEFAULT_MAX_MANIFEST_BYTES */
    /** Blob backend to use; NULL = the fs backend under data_dir. Ownership
     *  passes to the registry (also on failure). */
    mlreg_blob_backend *backend;
    /** Trusted keys of the config file (borrowed: copied at open), merged
     *  with the keyring stored in LMDB; see mlreg_keyring_open(). */
    const mlreg_config_key *trusted_keys;
    size_t n_trusted_keys;
    /** The log key file every node of a shared log signs checkpoints with
     *  (mlreg_audit_key_load()); NULL: the key kept under data_dir/audit/,
     *  made at first open. */
    const char *log_key_file;
    /** Share the log through the object store (cluster.h); NULL: the log
     *  lives in LMDB alone (one node). Needs log_key_file. */
    const mlreg_cluster_opts *cluster;
} mlreg_registry_opts;

/**
 * Opens the registry: creates data_dir, the blob store and `data_dir/meta/`,
 * and opens the trusted keyring (mlreg_keyring_open(): a config key that
 * conflicts with the stored keyring is MLREG_EINVALID naming it). Every
 * directory it creates under data_dir is 0700 and every file 0600, whatever
 * the umask.
 */
int mlreg_registry_open(mlreg_registry **out, const mlreg_registry_opts *opts);

/**
 * Makes @p data_dir private to the user mlreg runs as: removes the group
 * and other permission bits of the directory and of every entry below
 * what mlreg keeps there (`blobs/`, `meta/`, `audit/`) that has any, in one
 * pass, changing nothing else. Other entries of @p data_dir, symlinks
 * (neither followed nor changed; @p data_dir itself may be one) and
 * entries owned by another user (counted in *foreign_out, with what is
 * below them) are left as they are. A directory already without those
 * bits that cannot be opened is skipped. Data directories of earlier
 * versions held 0755 directories and 0644 blobs; `mlreg serve` calls this
 * before mlreg_registry_open().
 * @param fixed_out how many entries were changed (0 when @p data_dir does
 *        not exist yet)
 * @param foreign_out (may be NULL) how many entries belong to another user
 * @return 0; MLREG_EIO (an entry could not be read or changed: the message
 *         names it); MLREG_EINVALID (a path too long, or nested deeper
 *         than 32 levels); MLREG_ENOMEM.
 */
int mlreg_registry_make_private(size_t *fixed_out, size_t *foreign_out, const char *data_dir);
/** Closes everything; NULL is a no-op. */
void mlreg_registry_free(mlreg_registry *reg);
/** The blob store (owned by the registry). */
mlreg_blobstore *mlreg_registry_blobstore(mlreg_registry *reg);
/** The metadata environment (owned by the registry). */
mlreg_meta *mlreg_registry_meta(mlreg_registry *reg);
/** The trusted keyring (owned by the registry). */
mlreg_keyring *mlreg_registry_keyring(mlreg_registry *reg);
/** The audit log key (owned by the registry; created at first open under
 *  `data_dir/audit/`, see mlreg_audit_key_open()). */
mlreg_audit_key *mlreg_registry_audit_key(mlreg_registry *reg);
/** The shared log (owned by the registry), or NULL when the log lives in
 *  LMDB alone. */
mlreg_cluster *mlreg_registry_cluster(mlreg_registry *reg);
/** The API tokens made at runtime (owned by the registry; tokens.h). */
mlreg_tokens *mlreg_registry_tokens(mlreg_registry *reg);
/** The configured manifest size limit in bytes. */
size_t mlreg_registry_max_manifest_bytes(const mlreg_registry *reg);

/** Called after every change committed to the metadata (a live change or
 *  an entry replayed from the shared log), on the committing thread: it
 *  must be quick and must not change the registry (wake a thread). */
typedef void (*mlreg_registry_commit_fn)(void *arg);
/** Most listeners one registry holds. */
#define MLREG_REGISTRY_LISTENERS_MAX 8
/**
 * Adds @p fn (called with @p arg) to the listeners of @p reg's commits
 * (the events delivery and the long-polls of GET /api/v1/events wait on it).
 * 0 or MLREG_ENOSPACE (MLREG_REGISTRY_LISTENERS_MAX listeners already).
 */
int mlreg_registry_commit_listen(mlreg_registry *reg, mlreg_registry_commit_fn fn, void *arg);
/** Removes the listener @p fn / @p arg; once it returns, @p fn is not running
 *  and will not be called again. No-op when it is not listening. */
void mlreg_registry_commit_unlisten(mlreg_registry *reg, mlreg_registry_commit_fn fn, void *arg);

/**
 * Rebuilds the metadata of @p dest from the audit log of @p source: applies
 * every entry of @p source, in order, as the change it records, with the
 * entry's time and actor, and checks that each change re-appends exactly
 * the entry's bytes. The blobs the entries name (manifests, signatures,
 * attestation envelopes) are read from @p dest's blob store, which must
 * hold them (the same store as the source's, or a copy). Gates are not
 * evaluated again: a promotion takes its result and gate table from its
 * entry. @p dest must have an empty log (opened on a fresh data directory
 * without config keys); @p source is only read, in one read transaction.
 * Upload sessions are not history and are not rebuilt.
 * 0; MLREG_EINVALID (@p dest has entries, an entry of an unknown action or
 * missing what its change needs); MLREG_EMISMATCH ("replaying audit entry
 * N ...": the change failed or rebuilt different bytes; nothing of entry N
 * is committed, entries before it are); the errors of the change.
 */
int mlreg_registry_replay(mlreg_registry *dest, mlreg_meta *source);

/** Most part names one config.reload entry lists. */
#define MLREG_RELOAD_PARTS_MAX 32

/**
 * Records that the server's config was reloaded (audit action
 * config.reload, docs/audit-api.md): @p sha256_hex (64 hex digits) of the
 * file's bytes and @p changed, a JSON array of 1 to MLREG_RELOAD_PARTS_MAX
 * names of the parts that changed ("gates", "tokens"...; borrowed), by
 * @p actor (NULL: "local"). It changes no table; no secret belongs in it.
 * *seq_out (may be NULL) receives the entry's seq.
 * @return 0, MLREG_EINVALID, or the errors of the append.
 */
int mlreg_registry_record_reload(uint64_t *seq_out, mlreg_registry *reg, const char *actor,
                                 const char *sha256_hex, const json_t *changed);

/* ---- blobs, scoped per repository ---------------------------------------- */

/**
 * Records that repository @p repo may serve blob @p digest (already committed
 * to the store), on behalf of @p actor (borrowed; NULL = the local identity,
 * MLREG_KEYRING_ACTOR_LOCAL). Creates the repository entry if new and
 * appends a "blob.link" audit entry in the same transaction. Idempotent: a
 * blob the repository already sees changes nothing and appends nothing.
 */
int mlreg_registry_blob_link(mlreg_registry *reg, const char *repo, const mlreg_digest *digest,
                             const char *actor);
/** Size of a blob visible in @p repo: 0, MLREG_ENOTFOUND (not linked or not stored), or error. */
int mlreg_registry_blob_stat(uint64_t *size_out, mlreg_registry *reg, const char *repo,
                             const mlreg_digest *digest);
/** Opens a blob visible in @p repo for reading; see mlreg_blobstore_open_read. */
int mlreg_registry_blob_open(mlreg_blob_reader **out, uint64_t *size_out, mlreg_registry *reg,
                             const char *repo, const mlreg_digest *digest);
/** Cross-repository mount: links @p digest into @p repo if @p from has it,
 *  on behalf of @p actor (NULL = local), with a "blob.link" audit entry
 *  whose details name @p from (none when @p repo already sees the blob).
 *  0, MLREG_ENOTFOUND (source lacks it), or error. */
int mlreg_registry_blob_mount(mlreg_registry *reg, const char *repo, const char *from,
                              const mlreg_digest *digest, const char *actor);
/** Unlinks a blob from @p repo (DELETE /v2/<name>/blobs/<digest>) on behalf
 *  of @p actor (NULL = local), with a "blob.delete" audit entry; a blob
 *  a release in that repository holds (a file, the empty config, or the
 *  layer of one of its signature or attestation referrers) is refused with
 *  MLREG_EDENIED. */
int mlreg_registry_blob_unlink(mlreg_registry *reg, const char *repo, const mlreg_digest *digest,
                               const char *actor);

/* ---- manifests ------------------------------------------------------------ */

typedef struct {
    char *body; /**< manifest bytes exactly as pushed (NUL-terminated copy) */
    size_t len;
    char *content_type;  /**< the Content-Type it was pushed with */
    mlreg_digest digest; /**< sha256 of body */
} mlreg_manifest_data;

/** Frees a manifest returned by mlreg_registry_manifest_get; NULL is a no-op. */
void mlreg_manifest_data_free(mlreg_manifest_data *m);

/**
 * The manifest of release @p model@@p version, also of a purged one (whose
 * bytes the store keeps as the evidence of its audit entries; reads
 * through /v2/ answer MLREG_EGONE): 0, MLREG_ENOTFOUND, MLREG_EINVALID
 * (bad name or version), store errors.
 */
int mlreg_registry_release_manifest(mlreg_manifest_data **out, mlreg_registry *reg,
                                    const char *model, const char *version);

/** Fetches a manifest by tag or digest: 0, MLREG_ENOTFOUND, MLREG_EINVALID (bad reference). */
int mlreg_registry_manifest_get(mlreg_manifest_data **out, mlreg_registry *reg, const char *repo,
                                const char *reference);

typedef struct {
    mlreg_digest digest; /**< digest of the stored manifest */
    int has_subject;     /**< the manifest has a subject (answer with OCI-Subject) */
    mlreg_digest subject;
    int created; /**< 1 stored now, 0 identical content was there (no-op) */
} mlreg_manifest_put_result;

/**
 * Stores a manifest under @p reference (a tag, or a digest that must equal
 * sha256(body)). Validates JSON and media types, requires every config/layer
 * blob to be visible in @p repo (MLREG_EBLOBUNKNOWN, message names it),
 * applies the release rules (manifest.h), indexes tag, subject -> referrer,
 * and the release with its metrics, and appends the audit entry ("push" for
 * a new release, "manifest.put" otherwise; none when identical content was
 * there) — all in one write transaction. Signature and attestation
 * referrers (artifactType MLREG_ARTIFACT_SIGNATURE, signatures.h, or
 * MLREG_ARTIFACT_ATTESTATION, promotions.h) are made by the registry only:
 * pushing one is MLREG_EDENIED.
 * Errors: MLREG_EINVALID (malformed; message says what), MLREG_EMISMATCH
 * (digest reference differs), MLREG_ETOOBIG (over max_manifest_bytes),
 * MLREG_EBLOBUNKNOWN, MLREG_EDENIED (a version tag already points at another
 * release), MLREG_ENOSPACE, MLREG_EIO.
 */
int mlreg_registry_manifest_put(mlreg_manifest_put_result *out, mlreg_registry *reg,
                                const char *repo, const char *reference, const char *content_type,
                                const char *body, size_t len);

/**
 * mlreg_registry_manifest_put() on behalf of @p actor (the authenticated
 * token's name): a release record stores it as "pushed_by", which the
 * `approvals` gate reads (the pusher's own approval never counts). NULL
 * records the local identity (MLREG_KEYRING_ACTOR_LOCAL), which is what
 * mlreg_registry_manifest_put() does. Borrowed; errors as that function.
 */
int mlreg_registry_manifest_put_as(mlreg_manifest_put_result *out, mlreg_registry *reg,
                                   const char *repo, const char *reference,
                                   const char *content_type, const char *body, size_t len,
                                   const char *actor);

/**
 * Deletes by tag (removes the tag; audit "tag.delete") or by digest (removes
 * the manifest, every tag pointing at it and its referrer index entry; audit
 * "manifest.delete") on behalf of @p actor (NULL = local), the audit entry in
 * the same transaction. Releases are immutable: deleting a release manifest
 * or its version tag gives MLREG_EDENIED, as does deleting the referrer of a
 * stored signature or promotion attestation.
 * 0, MLREG_ENOTFOUND, MLREG_EDENIED, or error.
 */
int mlreg_registry_manifest_delete(mlreg_registry *reg, const char *repo, const char *reference,
                                   const char *actor);

/**
 * Tag listing: *out = {"name": repo, "tags": [...]} in lexical order, tags
 * strictly after @p last (NULL = from the start), at most @p n (n < 0 = all).
 * *more_out = 1 when tags remain after the last one returned (for the Link
 * header). MLREG_ENOTFOUND when the repository does not exist. Tags only:
 * GET /v2/<name>/tags/list also names the stages holding a release, see
 * mlreg_stage_tags_list() (promotions.h).
 */
int mlreg_registry_tags_list(json_t **out, int *more_out, mlreg_registry *reg, const char *repo,
                             int n, const char *last);

/**
 * Repository listing (GET /v2/_catalog): *out = {"repositories": [...]} in
 * lexical order, the names strictly after @p last (NULL = from the start)
 * for which @p visible (NULL: all) answers 1, at most @p n of them (n < 0 =
 * all). *more_out = 1 when visible names remain after the page (for the Link
 * header). @p visible is called in a read transaction and must not touch the
 * registry. *out owned by the caller.
 * @return 0; MLREG_EINVALID (@p last is not a repository name); MLREG_EIO (a
 *         corrupt index entry); MLREG_ENOMEM.
 */
int mlreg_registry_catalog(json_t **out, int *more_out, mlreg_registry *reg, int n,
                           const char *last, int (*visible)(const char *name, void *ctx),
                           void *ctx);

/**
 * A page of the referrers of @p subject in @p repo as an OCI image index
 * (mediaType application/vnd.oci.image.index.v1+json, manifests: descriptors
 * with mediaType, digest, size, artifactType and annotations), filtered by
 * @p artifact_type when non-NULL. Referrers are in the order of their
 * digests; the page holds those strictly after @p last (NULL: from the
 * first), at most @p limit of them (0: MLREG_PAGE_LIMIT_DEFAULT, more than
 * MLREG_PAGE_LIMIT_MAX is clamped), ending early once their stored
 * descriptors reach MLREG_PAGE_BYTES (a page always holds one). The cursor
 * is a digest, not an offset: a walk that passes the last digest of each
 * page as the next @p last sees every referrer that existed during the walk
 * exactly once. *more_out (may be NULL) = 1 when matching referrers remain
 * after the page (for the Link header), else 0. An unknown subject gives an
 * empty index.
 * @return 0; MLREG_EINVALID (bad name); MLREG_ENOTFOUND (no such
 *         repository); MLREG_EIO (a corrupt index entry); MLREG_ENOMEM.
 */
int mlreg_registry_referrers(json_t **out, int *more_out, mlreg_registry *reg, const char *repo,
                             const mlreg_digest *subject, const char *artifact_type,
                             const mlreg_digest *last, size_t limit);

/* ---- releases (/api/v1) -------------------------------------------------- *
 * JSON shapes (the CLI's `show`/`status` read them):
 *   models list:  {"models":[{"name","releases":N,
 *                            "latest":{"version","digest","created","withdrawn"}|null}]}
 *   model:        {"name","releases":[RELEASE_SUMMARY...]} ordered by created, then version
 *   RELEASE_SUMMARY: {"version","digest","created","git_sha","metrics":{name:number},
 *                     "metric_intervals":{name:{"ci_low","ci_high"}} (the metrics the eval
 *                     report gave a confidence interval; {} when none),
 *                     "files":N,"size":total_bytes,
 *                     "withdrawn":{"reason","by","time","seq"}|null (promotions.h)}
 *   release:      RELEASE_SUMMARY plus "model", "eval_dataset" (string or null), "pushed_by"
 *                 (the actor of the manifest PUT) and
 *                 "files":[{"title","kind","digest","size","media_type"}] instead of a count.
 * "created" is the org.opencontainers.image.created annotation as pushed.
 */

/** All models that have at least one release. */
int mlreg_registry_models_list(json_t **out, mlreg_registry *reg);
/** One model and its releases: 0 or MLREG_ENOTFOUND. */
int mlreg_registry_model_get(json_t **out, mlreg_registry *reg, const char *name);
/** One release: 0 or MLREG_ENOTFOUND. */
int mlreg_registry_release_get(json_t **out, mlreg_registry *reg, const char *name,
                               const char *version);

#endif
