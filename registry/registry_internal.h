/* registry_internal.h: helpers shared by the registry files and no other
 * module.
 *
 * - The mutation seam (mutate.c): every change of the metadata runs through
 *   mlreg_registry__mutate(), which owns its write transaction and binds the
 *   change to its audit entry.
 * - registry.c's helpers for signatures.c and promotions.c, which store
 *   manifests and blob links inside a change of their own, so that a
 *   signature record or a promotion attestation, its OCI referrer manifest
 *   and the referrer's index entry land in ONE transaction. The key layout
 *   stays registry.c's business.
 */
#ifndef MLREG_REGISTRY_INTERNAL_H
#define MLREG_REGISTRY_INTERNAL_H

#include <pthread.h>

#include "mlreg/audit.h"
#include "mlreg/cluster.h"
#include "mlreg/digest.h"
#include "mlreg/manifest.h"
#include "mlreg/meta.h"
#include "mlreg/registry.h"

/* ---- mutations (mutate.c) ---------------------------------------------------- */

/** The change being applied: its transaction, time and entries. Opaque. */
typedef struct registry_mutation registry_mutation;

/** What an apply function returns when the change turns out to be a no-op. */
#define REGISTRY_MUTATE_NOOP 1

/**
 * Checks and writes one change inside @p txn (the write transaction of
 * @p mut) and records its audit entry with mlreg_registry__mutation_record().
 * Returns 0 when it wrote and recorded, REGISTRY_MUTATE_NOOP when nothing
 * changes (nothing written, nothing recorded), or a negative MLREG_E* code
 * with the message set (everything it did is then rolled back).
 */
typedef int (*registry_apply_fn)(registry_mutation *mut, mlreg_meta_txn *txn, void *arg);

/**
 * Runs one change: opens the write transaction, takes the change's time
 * (mlreg_registry__mutation_time()), calls @p apply with @p arg and commits when it
 * recorded its entry. Any failure, of @p apply, of the append or of the
 * commit, aborts the transaction: nothing of the change remains. *seq_out
 * (may be NULL) receives the seq of the (first) entry. Returns 0,
 * REGISTRY_MUTATE_NOOP (nothing committed), or the error; MLREG_EIO when
 * @p apply reported a change but recorded no entry.
 */
int mlreg_registry__mutate(uint64_t *seq_out, mlreg_meta *meta, registry_apply_fn apply, void *arg);

/**
 * Appends @p ev as the audit entry of the change, in its transaction. A
 * time_ns of 0 becomes the change's time. One change records one entry;
 * only the keyring's start-up sync with the config records one per key it
 * changes, all in its one transaction. *seq_out (may be NULL) receives the
 * entry's seq. Errors as mlreg_audit_append_txn().
 */
int mlreg_registry__mutation_record(uint64_t *seq_out, registry_mutation *mut,
                                    const mlreg_audit_event *ev);

/** Tells the commit listeners of @p reg (mlreg_registry_commit_listen())
 *  that a change was committed; mutate.c calls it after each commit. */
void mlreg_registry__commit_notify(mlreg_registry *reg);

/** The time of the change, taken inside its transaction (nanoseconds). */
int64_t mlreg_registry__mutation_time(const registry_mutation *mut);

/**
 * The seq the change's next entry will get (statements that name their own
 * entry need it before recording). Errors as mlreg_audit_size_txn().
 */
int mlreg_registry__mutation_next_seq(uint64_t *out, registry_mutation *mut);

/**
 * The audit entry being replayed (docs/audit-api.md), or NULL for a live
 * change. An apply function takes what a live change decides from the state
 * or the config (gate tables, trust at attach time, signed envelopes) from
 * this entry instead, and checks nothing the entry already records as
 * checked; everything else it does the same way.
 */
const json_t *mlreg_registry__mutation_source(const registry_mutation *mut);

/**
 * Replays audit entry @p entry (parsed from its @p len bytes @p text) with
 * @p apply: like mlreg_registry__mutate(), but the change's time is the entry's
 * time, and before committing the entry the change recorded must have the
 * entry's seq and exactly its bytes. 0; MLREG_EMISMATCH ("replaying audit
 * entry N ...") when the change rebuilt anything else or nothing; the
 * apply function's error, prefixed with the seq.
 */
int mlreg_registry__mutate_replay(mlreg_meta *meta, const json_t *entry, const char *text,
                                  size_t len, registry_apply_fn apply, void *arg);

/**
 * Replays one entry whose action belongs to the file exporting the
 * function (manifests.c: push, manifest.*, tag.delete; registry.c: blob.*;
 * signatures.c: signature.attach; promotions.c: promote, rollback, approve,
 * image.bind; keyring_changes.c: key.*). Errors as mlreg_registry__mutate_replay().
 */
int mlreg_registry__replay_manifests(mlreg_registry *reg, const json_t *entry, const char *text,
                                     size_t len);
/** See mlreg_registry__replay_manifests(). */
int mlreg_registry__replay_blobs(mlreg_registry *reg, const json_t *entry, const char *text,
                                 size_t len);
/** See mlreg_registry__replay_manifests(). */
int mlreg_registry__replay_signature(mlreg_registry *reg, const json_t *entry, const char *text,
                                     size_t len);
/** See mlreg_registry__replay_manifests(). */
int mlreg_registry__replay_promotions(mlreg_registry *reg, const json_t *entry, const char *text,
                                      size_t len);
/** See mlreg_registry__replay_manifests() (gc.c: gc.collect, gc.done). */
int mlreg_registry__replay_gc(mlreg_registry *reg, const json_t *entry, const char *text,
                              size_t len);
/** See mlreg_registry__replay_manifests() (withdraw.c: release.withdraw, release.unwithdraw). */
int mlreg_registry__replay_withdraw(mlreg_registry *reg, const json_t *entry, const char *text,
                                    size_t len);
/** See mlreg_registry__replay_manifests() (purge.c: release.purge). */
int mlreg_registry__replay_purge(mlreg_registry *reg, const json_t *entry, const char *text,
                                 size_t len);
/** See mlreg_registry__replay_manifests() (scrub.c: scrub). */
int mlreg_registry__replay_scrub(mlreg_registry *reg, const json_t *entry, const char *text,
                                 size_t len);
/** See mlreg_registry__replay_manifests() (reload.c: config.reload). */
int mlreg_registry__replay_reload(mlreg_registry *reg, const json_t *entry, const char *text,
                                  size_t len);
/** See mlreg_registry__replay_manifests(). */
int mlreg_registry__replay_keyring(mlreg_registry *reg, const json_t *entry, const char *text,
                                   size_t len);
/** See mlreg_registry__replay_manifests() (tokens.c: token.create, token.revoke). */
int mlreg_registry__replay_tokens(mlreg_registry *reg, const json_t *entry, const char *text,
                                  size_t len);

/** See mlreg_registry__replay_manifests() (evaluations.c: evaluation.attest). */
int mlreg_registry__replay_evaluation(mlreg_registry *reg, const json_t *entry, const char *text,
                                      size_t len);

/**
 * Replays entry @p seq, given as its @p len bytes @p text (the log's
 * canonical JSON), onto @p reg, whose log must hold exactly @p seq entries:
 * parses it, checks it names @p seq and has what every change reads, and
 * dispatches it to the file owning its action. Because the change must
 * re-append exactly @p text, this also checks the hash chain (the entry's
 * "prev") against the log @p reg holds. Errors as mlreg_registry_replay().
 */
int mlreg_registry__replay_entry(mlreg_registry *reg, uint64_t seq, const char *text, size_t len);

/* ---- blob references (manifests.c) and garbage collection (gc.c) ---------- */

/**
 * The links of blob @p bhex (64 hex) into repositories: their count, and in
 * *newest_ns_out (may be NULL) the time of the newest (0 for a link made
 * before links had times). With @p unlink, also deletes them. Count or error.
 */
int mlreg_registry__blob_links(int64_t *newest_ns_out, mlreg_meta_txn *txn, const char *bhex,
                               int unlink);

/**
 * Collects the blobs @p hex (@p n hex digests) that a purge left
 * unreferenced, now, without a grace period: each is condemned in a
 * gc.collect change only if still referenced by nothing and not linked
 * since this call began, its bytes deleted, and gc.done recorded, as
 * mlreg_registry_gc() does (gc.c). Waits for a collection running in
 * another thread; inside one on this thread (retention) it does nothing
 * and says so ("deferred": true), since that collection's mark follows.
 * *report_out (owned) = {"deferred","deleted":[{digest,size}],
 * "deleted_blobs","bytes_reclaimed","not_deleted":[{digest,error}],
 * "entries":[seq]}. 0 or an error (what was recorded stays recorded).
 */
int mlreg_registry__gc_collect_now(json_t **report_out, mlreg_registry *reg, const char *const *hex,
                                   size_t n, const char *actor);

/**
 * Writes the index keys of gc_blobs (gc.c) once, for a data directory whose
 * rows were written without them (a marker in the meta table says it is
 * done; a new directory gets it at once). 0 or the store's error.
 */
int mlreg_registry__gc_index_build(mlreg_meta *meta);

/** The lock that lets one garbage collection run at a time in @p reg. */
pthread_mutex_t *mlreg_registry__gc_lock(mlreg_registry *reg);

/** Called by mlreg_registry__blob_links_foreach() for each link; non-zero stops. */
typedef int (*registry_link_cb)(const char *bhex, int64_t linked_ns, void *payload);
/** Walks every link of every repository (blob order within a repository). */
int mlreg_registry__blob_links_foreach(mlreg_meta_txn *txn, registry_link_cb cb, void *payload);

/**
 * Adds (@p add 1) or removes (0) the blob_refs rows of manifest @p mhex of
 * @p repo, whose parsed body is @p root: its own bytes, its config and its
 * layers or child manifests. Called wherever a manifest row is written or
 * deleted, in the same transaction. 0 or the store's error.
 */
int mlreg_registry__refs_update(mlreg_meta_txn *txn, const char *repo, const char *mhex,
                                const json_t *root, int add);
/** Adds the one blob_refs row "manifest @p mhex of @p repo references blob
 *  @p bhex" (both 64 hex): what a deleted manifest keeps (manifests_delete.c). */
int mlreg_registry__refs_keep(mlreg_meta_txn *txn, const char *repo, const char *mhex,
                              const char *bhex);
/**
 * Takes purged release manifest @p digest of @p repo out of the index as a
 * manifest DELETE does (its row, tags, blob_refs rows), without the
 * immutability guards, keeping the blob_refs rows of its own bytes and of
 * the blobs @p keep (@p nkeep hex digests: what replaying its push needs).
 * 0, MLREG_ENOTFOUND (no such manifest) or the store's error.
 */
int mlreg_registry__release_unindex(mlreg_meta_txn *txn, const char *repo,
                                    const mlreg_digest *digest, const char *const *keep,
                                    size_t nkeep);
/** 1 when some stored manifest references blob @p bhex (64 hex), 0 when
 *  none does, or an error. */
int mlreg_registry__blob_referenced(mlreg_meta_txn *txn, const char *bhex);
/** A row of blob_refs a caller sets aside: 1 to ignore it. */
typedef int (*registry_ref_filter)(const char *repo, const char *mhex, const char *bhex,
                                   void *payload);
/** As mlreg_registry__blob_referenced(), ignoring the rows @p dropped
 *  says 1 for (what a dry run of garbage collection would see after the
 *  purges retention plans). */
int mlreg_registry__blob_referenced_unless(mlreg_meta_txn *txn, const char *bhex,
                                           registry_ref_filter dropped, void *payload);
/**
 * Fills blob_refs from the stored manifests once, for a data directory made
 * before the table existed (a marker in the meta table says it is done; a
 * new directory gets the marker at once). 0 or the store's error.
 */
int mlreg_registry__refs_build(mlreg_meta *meta);

/**
 * The garbage collector's check on a blob about to be linked into a
 * repository in change @p mut: a blob a collection is deleting right now is
 * MLREG_EUNAVAILABLE (upload it again in a moment); one a collection deleted
 * or may have deleted must be in the store now (it was uploaded again), else
 * MLREG_EBLOBUNKNOWN. Clears the blob's collection state when it may be
 * linked. A replayed change only clears. 0 or the error.
 */
int mlreg_registry__gc_link_check(registry_mutation *mut, mlreg_meta_txn *txn, mlreg_registry *reg,
                                  const mlreg_digest *digest);

/* ---- the log in the object store (cluster.c) ------------------------------ */

/** The registry's shared log, or NULL (fs backend, or a bare environment). */
mlreg_cluster *mlreg_registry__cluster(mlreg_registry *reg);

/* ---- rendered stage answers (stages.c) -------------------------------------- */

/** The rendered answers of mlreg_stage_get_text(), per registry. */
typedef struct mlreg_stage_cache mlreg_stage_cache;

/** An empty cache: 0 or MLREG_ENOMEM. */
int mlreg_registry__stage_cache_new(mlreg_stage_cache **out);
void mlreg_registry__stage_cache_free(mlreg_stage_cache *c);
/** The cache of @p reg. */
mlreg_stage_cache *mlreg_registry__stage_cache(mlreg_registry *reg);

/**
 * Opens the shared log for @p reg (whose metadata is open and whose log key
 * is @p akey): the node id, the store client, the conditional-create probe,
 * the bucket's log key check, and the catch-up of every entry the store has
 * and the node lacks. Errors name what failed.
 */
int mlreg_cluster__open(mlreg_cluster **out, mlreg_registry *reg, const mlreg_cluster_opts *opts,
                        const char *data_dir, const mlreg_audit_key *akey);
/**
 * For a read that found nothing: applies what the store has now, from a
 * read of the log that began after this call (a read already begun may miss
 * a write acknowledged since). With @p force 0 (reads anyone may send)
 * such reads begin at most every 10 ms: a miss waits out the rest of the
 * interval, and misses waiting together share one read; @p force 1 (the
 * checks of an authorised write) does not wait. 1 when that brought new
 * entries (the read is worth repeating), else 0. A write on another node
 * is thus found here at once, not only at the next poll.
 */
int mlreg_cluster__refresh(mlreg_cluster *cl, int force);
/** Stops the follower and frees; NULL is a no-op. */
void mlreg_cluster__free(mlreg_cluster *cl);

/**
 * Runs @p apply as mlreg_registry__mutate() does, committing it through the
 * shared log of @p cl: the change's entries are created in the store
 * (`If-None-Match: *`) before the LMDB transaction commits; a lost race
 * aborts the transaction, applies the entries this node missed and runs
 * @p apply again against the new state, a bounded number of times. Refused
 * (MLREG_EUNAVAILABLE) while the node has stopped following a broken log.
 */
int mlreg_cluster__mutate(uint64_t *seq_out, mlreg_cluster *cl, mlreg_meta *meta,
                          registry_apply_fn apply, void *arg);

/**
 * The body of mlreg_registry__mutate() without the shared log: opens the
 * write transaction, applies, and hands the open transaction and the seqs
 * of the change's entries to @p publish (may be NULL) before committing.
 * @p publish returns 0 to commit, or an error that aborts the change.
 */
/**
 * For tests: with @p on, every live change runs its apply function twice,
 * the first run's transaction thrown away, as happens when a change loses
 * its log seq to another node and runs again. Apply functions must start
 * from their inputs each time (no leak, no state carried over).
 */
void mlreg_registry__rehearse_changes(int on);

/* ---- changes sharing one commit (mutate.c) -------------------------------- */

/** The changes of a registry waiting to share a commit. Opaque. */
typedef struct registry_group registry_group;

/** A new, empty group (*out freed with mlreg_registry__group_free()). */
int mlreg_registry__group_new(registry_group **out);
/** Frees @p g, which no change may be using; NULL is a no-op. */
void mlreg_registry__group_free(registry_group *g);
/** The group of @p reg: NULL with a shared log (s3), where changes do not share. */
registry_group *mlreg_registry__group(mlreg_registry *reg);

/**
 * mlreg_registry__mutate() for a change that may share its commit with the
 * changes other threads run at the same time (mutate.c says how): each
 * change is applied in a transaction nested in one write transaction, a
 * change that fails or changes nothing is dropped alone, and the one commit
 * (one flush to the disk) makes them all durable before any of them
 * returns. Same results as mlreg_registry__mutate(); falls back to it with
 * a shared log. @p apply runs in another thread than the caller's, so it
 * may not use thread-local state (it is run again, alone, when the shared
 * commit fails).
 */
int mlreg_registry__mutate_grouped(uint64_t *seq_out, mlreg_registry *reg, registry_apply_fn apply,
                                   void *arg);

/**
 * Writes @p len bytes of @p data to the blob store for change @p mut, for
 * bytes that are new to the store (a signed statement naming its own
 * entry): at once (mlreg_registry__blob_put()) for a change alone; in a
 * shared commit, durably before the commit, by the thread that asked for
 * the change, in parallel with the other changes' writes. *out receives the
 * digest at once; nothing that reads the store may look for the blob before
 * the change commits (mlreg_registry__manifest_plan_new_made()).
 */
int mlreg_registry__mutation_blob_put(mlreg_digest *out, registry_mutation *mut,
                                      mlreg_registry *reg, const void *data, size_t len);

typedef int (*registry_publish_fn)(mlreg_meta_txn *txn, uint64_t first_seq, size_t n, void *arg);
int mlreg_registry__mutate_local(uint64_t *seq_out, mlreg_meta *meta, registry_apply_fn apply,
                                 void *arg, registry_publish_fn publish, void *publish_arg);

/* ---- the keyring's two steps (keyring.c) ---------------------------------- */

/**
 * mlreg_keyring_open() in two steps, for a registry that must apply the
 * shared log between them: loading checks and copies the config keys and
 * writes nothing; syncing records what the config changed (key.trust,
 * key.untrust entries), after every entry already in the log.
 */
int mlreg_keyring__load(mlreg_keyring **out, mlreg_meta *meta, const mlreg_config_key *keys,
                        size_t n);
/** See mlreg_keyring__load(). 0 or the change's error. */
int mlreg_keyring__sync_config(mlreg_keyring *kr);

/* ---- registry.c helpers ---------------------------------------------------- */

/** Longest key of registry.c's layout: name (255) \0 hex (64) \0 hex (64), or name \0 tag (128). */
#define REGISTRY_KEY_CAP 512

/**
 * Joins up to three parts with NUL separators into @p key (@p b and @p c may
 * be NULL) and returns its length: the keys of registry.c's tables. Callers
 * validate names, tags and digests first, which bounds the length.
 */
size_t mlreg_registry__key(char key[REGISTRY_KEY_CAP], const char *a, const char *b, const char *c);

/** 1 when @p key exists in @p db, 0 when not, or an error. */
int mlreg_registry__meta_has(mlreg_meta_txn *txn, mlreg_db db, const char *key, size_t klen);

/** MLREG_ENOTFOUND ("repository 'R' not found") unless @p repo exists. */
int mlreg_registry__repo_require(mlreg_meta_txn *txn, const char *repo);

/**
 * The tags/list answer {"name": repo, "tags": [...]} of @p repo read in
 * @p txn: its tags merged with the @p n_extra names @p extra (sorted as
 * strcmp sorts, no duplicates; a name that is also a tag is listed once), in
 * lexical order, those strictly after @p last (NULL: from the start), at most
 * @p n (n < 0: all). *more_out = 1 when names remain after the page. The
 * caller validated @p repo and @p last and checked that the repository
 * exists. *out owned by the caller. 0 or MLREG_ENOMEM / a read error.
 */
int mlreg_registry__tags_page(json_t **out, int *more_out, mlreg_meta_txn *txn, const char *repo,
                              int n, const char *last, const char *const *extra, size_t n_extra);

/** 1 when @p digest is visible in @p repo, 0 when not, or an error. */
int mlreg_registry__blob_linked(mlreg_meta_txn *txn, const char *repo, const mlreg_digest *digest);

/**
 * The release record of @p model@@p version parsed into *out (caller
 * decrefs). MLREG_ENOTFOUND when none, MLREG_EIO when corrupt.
 */
int mlreg_registry__release_record_get(json_t **out, mlreg_meta_txn *txn, const char *model,
                                       const char *version);
/**
 * MLREG_EGONE with "release M@V was purged by WHO at TIME (audit entry N):
 * REASON" when release record @p rec has a "purged" member (purge.c), else 0.
 */
int mlreg_registry__refuse_purged(const json_t *rec);
/**
 * For a manifest GET of @p repo that found nothing: MLREG_EGONE (as
 * mlreg_registry__refuse_purged()) when @p reference (a version tag or a
 * digest) names a purged release of @p repo, else 0.
 */
int mlreg_registry__purged_check(mlreg_meta_txn *txn, const char *repo, const char *reference);

/**
 * Stores release record @p rec (not consumed) of @p model@@p version in
 * @p txn, replacing the one there, serialised exactly as a push stores a
 * new one. For the changes that rewrite a record (withdraw.c).
 */
int mlreg_registry__release_record_put(mlreg_meta_txn *txn, const char *model, const char *version,
                                       const json_t *rec);

/** The identity recorded when a caller passes no actor: @p actor, or "local". */
const char *mlreg_registry__actor(const char *actor);

/** mlreg_registry__mutate() on @p reg's metadata for a public entry point: a no-op is 0. */
int mlreg_registry__run(mlreg_registry *reg, registry_apply_fn apply, void *arg);

/* ---- helpers for the other registry files ---------------------------------------------------- */

/** A manifest PUT prepared outside any transaction. Opaque. */
typedef struct registry_manifest_plan registry_manifest_plan;

/**
 * Prepares storing @p len bytes of manifest @p body (pushed with
 * @p content_type) in @p repo by digest: parses and validates it exactly as
 * mlreg_registry_manifest_put() does, checks that its blobs are in the store
 * and serialises the records. Blob visibility in @p repo is NOT checked here:
 * mlreg_registry__manifest_plan_put() checks it inside the caller's transaction, so
 * the caller may link the blobs in that same transaction first. *out is owned
 * by the caller (mlreg_registry__manifest_plan_free()). Errors as
 * mlreg_registry_manifest_put().
 */
int mlreg_registry__manifest_plan_new(registry_manifest_plan **out, mlreg_registry *reg,
                                      const char *repo, const char *content_type, const char *body,
                                      size_t len);

/**
 * mlreg_registry__manifest_plan_new() for a referrer the registry makes
 * (signature, attestation) in a change that writes the referrer's blobs
 * itself before it commits (mlreg_registry__mutation_blob_put()): the
 * blobs are not looked for in the store, since they may not be there yet.
 */
int mlreg_registry__manifest_plan_new_made(registry_manifest_plan **out, mlreg_registry *reg,
                                           const char *repo, const char *content_type,
                                           const char *body, size_t len);

/**
 * Stores a prepared manifest inside the caller's write transaction @p txn:
 * repository entry, manifest bytes, referrer index entry (when it has a
 * subject) — the same writes as mlreg_registry_manifest_put(), which
 * includes refusing blobs not visible in the repository
 * (MLREG_EBLOBUNKNOWN). Does not commit. out->created is 0 when identical
 * content was already stored.
 */
int mlreg_registry__manifest_plan_put(mlreg_manifest_put_result *out, registry_mutation *mut,
                                      mlreg_meta_txn *txn, const registry_manifest_plan *plan);

/**
 * 1 when @p m is a referrer the registry makes itself (a signature or a
 * promotion attestation: kept in the manifests table only, never stored as
 * a blob, never pushed), else 0.
 */
int mlreg_registry__manifest_made_here(const mlreg_manifest *m);

/** Frees a plan; NULL is a no-op. */
void mlreg_registry__manifest_plan_free(registry_manifest_plan *plan);

/**
 * Writes @p len bytes of @p data to the blob store and commits it (durable
 * before any metadata names it); *out receives its digest. Storing bytes
 * already stored is harmless. Small bytes this process committed itself
 * and that are still stored intact are not written again (registry.c says
 * when, and why a collection cannot take them from under the caller, who
 * must link or record the blob in a change afterwards, as every caller
 * does). Errors as mlreg_blob_writer_commit().
 */
int mlreg_registry__blob_put(mlreg_digest *out, mlreg_registry *reg, const void *data, size_t len);

/**
 * Tells mlreg_registry__blob_put() that a blob is about to be, or was just,
 * deleted or moved aside: it writes every small blob again until it has
 * committed it once more. Call it before and after each deletion.
 */
void mlreg_registry__blob_forget(mlreg_registry *reg);

/**
 * The bytes of stored blob @p digest, read whole (at most @p max bytes):
 * *out malloc'd and NUL-terminated, owned by the caller (free()), *len_out
 * its length. The bytes are checked against the digest. 0, MLREG_ENOTFOUND,
 * MLREG_ETOOBIG, MLREG_EIO.
 */
int mlreg_registry__blob_get(char **out, size_t *len_out, mlreg_registry *reg,
                             const mlreg_digest *digest, size_t max);

/**
 * Manifest @p digest of @p repo as recorded in @p txn: *out owned by the
 * caller (mlreg_manifest_data_free()). 0, MLREG_ENOTFOUND, MLREG_EIO.
 */
int mlreg_registry__manifest_load_txn(mlreg_manifest_data **out, mlreg_meta_txn *txn,
                                      const char *repo, const mlreg_digest *digest);

/**
 * Links a committed blob into @p repo in change @p mut (idempotent), after
 * the garbage collector's check (mlreg_registry__gc_link_check()); the link
 * records the change's time, from which a collection's grace period runs.
 */
int mlreg_registry__blob_link_txn(registry_mutation *mut, mlreg_meta_txn *txn, mlreg_registry *reg,
                                  const char *repo, const mlreg_digest *digest);

/**
 * Digest of release @p model@@p version as recorded in @p txn:
 * 0, MLREG_ENOTFOUND (no release of that version), MLREG_EIO (corrupt record),
 * MLREG_EGONE (purged, unless @p purged_ok: a listing of its audit trail).
 */
int mlreg_registry__release_digest_txn(mlreg_digest *out, mlreg_meta_txn *txn, const char *model,
                                       const char *version, int purged_ok);

/**
 * The start of a listing of what is recorded about release @p model@@p version
 * (its signatures, its evaluations): checks the two names, opens a read
 * transaction into *txn_out (the caller aborts it, also on failure: it is
 * NULL or open) and finds the release's digest, a purged release's too (its
 * records stay listed: the audit trail). 0, MLREG_EINVALID (bad name),
 * MLREG_ENOTFOUND ("release M@V not found"), MLREG_EIO.
 */
int mlreg_registry__release_listing_begin(mlreg_meta_txn **txn_out, mlreg_digest *digest_out,
                                          mlreg_registry *reg, const char *model,
                                          const char *version);

/**
 * Whether manifest @p referrer ("sha256:<hex>") of release @p subject is the
 * OCI form of one of the release's stored signatures (signatures.c owns the
 * signatures db's layout): 1 when it is, 0 when not, or an error.
 */
int mlreg_registry__signature_owns_referrer(mlreg_meta_txn *txn, const mlreg_digest *subject,
                                            const char *referrer);

/**
 * Calls @p cb on every stored signature record of the release whose digest
 * is @p hex (64 lowercase hex digits), in key order; the value is the
 * record's JSON. signatures.c alone knows the signatures db's key layout.
 * Returns what mlreg_meta_iter() returns (a positive value stops the walk
 * and is returned).
 */
int mlreg_registry__signatures_foreach(mlreg_meta_txn *txn, const char *hex, mlreg_meta_iter_cb cb,
                                       void *payload);

/**
 * Calls @p cb on every promotion attestation record of the release whose
 * digest is @p hex, oldest first; the value is the record's JSON.
 * promotions.c alone knows the attestations db's key layout. Returns what
 * mlreg_meta_iter() returns.
 */
int mlreg_registry__attestations_foreach(mlreg_meta_txn *txn, const char *hex,
                                         mlreg_meta_iter_cb cb, void *payload);

/**
 * Whether the release whose digest is @p hex has the attestation of audit
 * entry @p seq: 1 when it has, 0 when not, or an error.
 */
int mlreg_registry__attestation_exists(mlreg_meta_txn *txn, const char *hex, uint64_t seq);

#endif
