/* registry.c: opening a registry, repositories, blob links and the release
 * listings over the blob store and LMDB metadata
 * (include/mlreg/registry.h); manifests, tags and referrers are stored in
 * manifests.c, deleted in manifests_delete.c and listed in manifests_list.c.
 * All of them build every key with mlreg_registry__key(), over this layout.
 *
 * LMDB key layout (NUL separates parts; names and tags cannot contain NUL,
 * so a "repo\0" prefix never matches a longer repository name):
 *
 *   repos       name                          -> ""
 *   repo_blobs  repo \0 hex                   -> ""          blob visible in repo
 *   manifests   repo \0 hex                   -> content-type \0 body (bytes as pushed)
 *   tags        repo \0 tag                   -> hex         (64 bytes, no NUL)
 *   referrers   repo \0 subject-hex \0 hex    -> {"mediaType","size","artifactType"?,
 *                                                 "annotations"?}  (the referrer's descriptor
 *                                                 minus its digest, which is in the key)
 *   releases    model \0 version              -> release record JSON:
 *       {"model","version","digest","created","created_sec","created_nsec",
 *        "git_sha"|null,"metrics":{name:number},"dataset"|null,"size",
 *        "metric_intervals":{name:{"ci_low","ci_high"}} (only when the eval report gave some),
 *        "files":[{"title","kind","digest","size","media_type"}],"pushed_by",
 *        "git_dirty":true (only when the manifest says org.mlreg.git-dirty "true")}
 *     ("pushed_by" is the actor of the PUT; records written before it existed
 *     lack it, and readers treat that as the local identity)
 *
 * "hex" is the 64 lowercase hex digits of a sha256 digest. A model is a
 * repository, so the releases key "model\0version" is also the key of the
 * version tag in `tags`; a tag that has a record in `releases` is a version
 * tag and can never be re-pointed or deleted.
 *
 * Every mutation runs in one LMDB write transaction (LMDB serialises writers),
 * so each check-then-write below is atomic. Work that touches the blob store
 * (stat of referenced blobs, reading the eval report) happens before the
 * transaction, to keep the single writer slot free of I/O; blobs are never
 * deleted while a manifest references them, so the result stays true.
 *
 * Every mutation is an apply function run by mlreg_registry__mutate() (mutate.c),
 * which owns the write transaction and commits the change together with the
 * audit entry the apply function records: if either fails nothing is
 * committed. A no-op (a blob the repository already sees, identical
 * manifest content) commits nothing and appends nothing. */
#include "mlreg/registry.h"

#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/keyring.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/signatures.h"
#include "mlreg/tables.h"
#include "evaluations_internal.h"
#include "registry_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The small blobs mlreg_registry__blob_put() need not write again. */
#define REGISTRY_KNOWN_MAX 8
typedef struct {
    pthread_mutex_t lock;
    uint64_t gen; /* moved on by every deletion (mlreg_registry__blob_forget) */
    uint64_t tick;
    size_t n;
    mlreg_digest digests[REGISTRY_KNOWN_MAX];
    uint64_t used[REGISTRY_KNOWN_MAX]; /* tick of the last put: the stalest goes */
} registry_known;

struct mlreg_registry {
    mlreg_blobstore *store;
    mlreg_meta *meta;
    mlreg_keyring *keyring;
    mlreg_audit_key *audit_key;
    mlreg_cluster *cluster;
    mlreg_tokens *tokens;
    size_t max_manifest_bytes;
    pthread_mutex_t gc_lock;        /* one garbage collection at a time (gc.c) */
    registry_known known;           /* small blobs this process made durable (blob_put) */
    registry_group *group;          /* changes waiting to share one commit (mutate.c) */
    mlreg_stage_cache *stage_cache; /* rendered stage answers (stages.c) */
    /* who is told of each commit (mlreg_registry_commit_listen()) */
    pthread_mutex_t listen_lock;
    struct {
        mlreg_registry_commit_fn fn;
        void *arg;
    } listeners[MLREG_REGISTRY_LISTENERS_MAX];
};

int mlreg_registry_commit_listen(mlreg_registry *reg, mlreg_registry_commit_fn fn, void *arg)
{
    int error = mlreg_error_set(MLREG_ENOSPACE, "too many commit listeners (at most %d)",
                                MLREG_REGISTRY_LISTENERS_MAX);

    pthread_mutex_lock(&reg->listen_lock);
    for (size_t i = 0; i < MLREG_REGISTRY_LISTENERS_MAX; i++) {
        if (reg->listeners[i].fn != NULL) continue;
        reg->listeners[i].fn = fn;
        reg->listeners[i].arg = arg;
        error = 0;
        break;
    }
    pthread_mutex_unlock(&reg->listen_lock);
    return error;
}

void mlreg_registry_commit_unlisten(mlreg_registry *reg, mlreg_registry_commit_fn fn, void *arg)
{
    pthread_mutex_lock(&reg->listen_lock);
    for (size_t i = 0; i < MLREG_REGISTRY_LISTENERS_MAX; i++)
        if (reg->listeners[i].fn == fn && reg->listeners[i].arg == arg) reg->listeners[i].fn = NULL;
    pthread_mutex_unlock(&reg->listen_lock);
}

/* The listeners run under listen_lock, so unlisten waits for a call in
 * progress; a listener only signals a condition variable. */
void mlreg_registry__commit_notify(mlreg_registry *reg)
{
    pthread_mutex_lock(&reg->listen_lock);
    for (size_t i = 0; i < MLREG_REGISTRY_LISTENERS_MAX; i++)
        if (reg->listeners[i].fn != NULL) reg->listeners[i].fn(reg->listeners[i].arg);
    pthread_mutex_unlock(&reg->listen_lock);
}

pthread_mutex_t *mlreg_registry__gc_lock(mlreg_registry *reg)
{
    return &reg->gc_lock;
}

/* The identity recorded when a caller passes no actor. */
const char *mlreg_registry__actor(const char *actor)
{
    return actor != NULL ? actor : MLREG_KEYRING_ACTOR_LOCAL;
}

/* Joins up to three parts with NUL separators into @p key; @p b and @p c may
 * be NULL. Callers validate names, tags and digests first, which bounds the
 * length well under REGISTRY_KEY_CAP. */
size_t mlreg_registry__key(char key[REGISTRY_KEY_CAP], const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    size_t n = 0, i, l;

    for (i = 0; i < 3 && parts[i] != NULL; i++) {
        l = strlen(parts[i]);
        if (n + l + 1 > REGISTRY_KEY_CAP)
            break; /* unreachable for validated input; keeps the buffer safe */
        if (i > 0) key[n++] = '\0';
        memcpy(key + n, parts[i], l);
        n += l;
    }
    return n;
}

/* ---- open / close ------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    int error = 0;
    char *copy = strdup(path);
    char *p;

    if (copy == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory creating %s", path);
    for (p = copy + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
                error = mlreg_error_set(MLREG_EIO, "cannot create directory %s: %s", copy,
                                        strerror(errno));
                goto done;
            }
            *p = saved;
            if (saved == '\0') break;
        }
    }

done:
    free(copy);
    return error;
}

int mlreg_registry_open(mlreg_registry **out, const mlreg_registry_opts *opts)
{
    int error = 0;
    mlreg_registry *reg = NULL;
    mlreg_blob_backend *backend = opts ? opts->backend : NULL;
    char *meta_dir = NULL, *audit_dir = NULL;
    size_t n;

    if (opts == NULL || opts->data_dir == NULL || opts->data_dir[0] == '\0') {
        error = mlreg_error_set(MLREG_EINVALID, "registry data directory not set");
        goto done;
    }
    reg = calloc(1, sizeof(*reg));
    if (reg != NULL) {
        pthread_mutex_init(&reg->gc_lock, NULL);
        pthread_mutex_init(&reg->listen_lock, NULL);
        pthread_mutex_init(&reg->known.lock, NULL);
    }
    n = strlen(opts->data_dir) + sizeof("/audit");
    meta_dir = malloc(n);
    audit_dir = malloc(n);
    if (reg == NULL || meta_dir == NULL || audit_dir == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory opening registry");
        goto done;
    }
    if ((error = mlreg_registry__stage_cache_new(&reg->stage_cache)) < 0) goto done;
    snprintf(meta_dir, n, "%s/meta", opts->data_dir);
    snprintf(audit_dir, n, "%s/audit", opts->data_dir);
    reg->max_manifest_bytes =
        opts->max_manifest_bytes ? opts->max_manifest_bytes : MLREG_DEFAULT_MAX_MANIFEST_BYTES;

    if ((error = mkdir_p(opts->data_dir)) < 0) goto done;
    if (backend == NULL && (error = mlreg_blob_backend_fs_new(&backend, opts->data_dir)) < 0)
        goto done;
    error = mlreg_blobstore_new(&reg->store, backend);
    backend = NULL; /* owned by the store now, also on failure */
    if (error < 0) goto done;
    /* mlreg_meta_open creates meta/ itself, mode 0700 like every directory
     * under data_dir (it will hold tokens and audit state). */
    if ((error = mlreg_tables_open(&reg->meta, meta_dir, opts->map_size)) < 0) goto done;
    mlreg_meta_set_owner(reg->meta, reg); /* mutate.c finds the shared log through it */
    if ((error = mlreg_registry__refs_build(reg->meta)) < 0) goto done;
    if ((error = mlreg_registry__gc_index_build(reg->meta)) < 0) goto done;
    if ((error = mlreg_tokens_new(&reg->tokens, reg->meta)) < 0) goto done;
    /* the log key first: opening the keyring appends entries (config keys) */
    if (opts->cluster != NULL && opts->log_key_file == NULL) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "a log shared through the object store needs audit.log_key_file: "
                                "one log key for every node (make it with `mlreg key generate "
                                "--no-password --out PREFIX` and name PREFIX.key)");
        goto done;
    }
    if ((error = opts->log_key_file != NULL
                     ? mlreg_audit_key_load(&reg->audit_key, opts->log_key_file)
                     : mlreg_audit_key_open(&reg->audit_key, audit_dir)) < 0)
        goto done;
    /* the keyring first (replaying signatures reads it), its sync with the
     * config after the shared log is applied: the sync must see, and commit
     * after, what other nodes recorded */
    if ((error = mlreg_keyring__load(&reg->keyring, reg->meta, opts->trusted_keys,
                                     opts->n_trusted_keys)) < 0)
        goto done;
    /* with a shared log the entries in the store are what is durable, and
     * LMDB is their index: a commit need not wait for the disk, and a start
     * re-applies whatever a crash of the machine undid */
    if (opts->cluster != NULL &&
        ((error = mlreg_meta_set_synced(reg->meta, 0)) < 0 ||
         (error = mlreg_cluster__open(&reg->cluster, reg, opts->cluster, opts->data_dir,
                                      reg->audit_key)) < 0))
        goto done;
    if ((error = mlreg_keyring__sync_config(reg->keyring)) < 0) goto done;
    /* changes share commits only where LMDB's commit is the commit point:
     * with a shared log each change is an entry created in the store */
    if (reg->cluster == NULL && (error = mlreg_registry__group_new(&reg->group)) < 0) goto done;

    *out = reg;
    reg = NULL;

done:
    if (backend != NULL) backend->free(backend);
    mlreg_registry_free(reg);
    free(meta_dir);
    free(audit_dir);
    return error;
}

void mlreg_registry_free(mlreg_registry *reg)
{
    if (reg == NULL) return;
    mlreg_cluster__free(reg->cluster); /* its follower writes through reg */
    mlreg_tokens_free(reg->tokens);    /* writes the last uses it holds */
    mlreg_keyring_free(reg->keyring);
    mlreg_audit_key_free(reg->audit_key);
    mlreg_meta_close(reg->meta);
    mlreg_blobstore_free(reg->store);
    mlreg_registry__group_free(reg->group);
    mlreg_registry__stage_cache_free(reg->stage_cache);
    pthread_mutex_destroy(&reg->gc_lock);
    pthread_mutex_destroy(&reg->listen_lock);
    pthread_mutex_destroy(&reg->known.lock);
    free(reg);
}

mlreg_blobstore *mlreg_registry_blobstore(mlreg_registry *reg)
{
    return reg->store;
}

mlreg_meta *mlreg_registry_meta(mlreg_registry *reg)
{
    return reg->meta;
}

mlreg_keyring *mlreg_registry_keyring(mlreg_registry *reg)
{
    return reg->keyring;
}

mlreg_cluster *mlreg_registry_cluster(mlreg_registry *reg)
{
    return reg->cluster;
}

mlreg_tokens *mlreg_registry_tokens(mlreg_registry *reg)
{
    return reg->tokens;
}

mlreg_cluster *mlreg_registry__cluster(mlreg_registry *reg)
{
    return reg->cluster;
}

mlreg_stage_cache *mlreg_registry__stage_cache(mlreg_registry *reg)
{
    return reg->stage_cache;
}

mlreg_audit_key *mlreg_registry_audit_key(mlreg_registry *reg)
{
    return reg->audit_key;
}

size_t mlreg_registry_max_manifest_bytes(const mlreg_registry *reg)
{
    return reg->max_manifest_bytes;
}

/* ---- small metadata helpers ------------------------------------------------ */

/* 1 when @p key exists in @p db, 0 when not, or an error. */
int mlreg_registry__meta_has(mlreg_meta_txn *txn, mlreg_db db, const char *key, size_t klen)
{
    void *val = NULL;
    size_t vlen;
    int error = mlreg_meta_get(&val, &vlen, txn, db, key, klen);

    free(val);
    if (error == MLREG_ENOTFOUND) return 0;
    return error < 0 ? error : 1;
}

static int repo_exists(mlreg_meta_txn *txn, const char *repo)
{
    return mlreg_registry__meta_has(txn, MLREG_DB_REPOS, repo, strlen(repo));
}

int mlreg_registry__repo_require(mlreg_meta_txn *txn, const char *repo)
{
    int found = repo_exists(txn, repo);

    if (found == 0) return mlreg_error_set(MLREG_ENOTFOUND, "repository '%s' not found", repo);
    return found < 0 ? found : 0;
}

int mlreg_registry__blob_linked(mlreg_meta_txn *txn, const char *repo, const mlreg_digest *digest)
{
    char key[REGISTRY_KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1];

    mlreg_digest_hex(hex, digest);
    return mlreg_registry__meta_has(txn, MLREG_DB_REPO_BLOBS, key,
                                    mlreg_registry__key(key, repo, hex, NULL));
}

/* A repo_blobs row's value: the be64 time (ns) of the change that linked the
 * blob; rows written before links had times are empty (time 0). */
static int64_t link_time(const void *val, size_t vlen)
{
    return vlen == 8 ? (int64_t)mlreg_be64_get(val) : 0;
}

static int link_blob_txn(registry_mutation *mut, mlreg_meta_txn *txn, mlreg_registry *reg,
                         const char *repo, const mlreg_digest *digest)
{
    int error = 0;
    char key[REGISTRY_KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1];
    unsigned char when[8];

    if ((error = mlreg_registry__gc_link_check(mut, txn, reg, digest)) < 0) return error;
    mlreg_digest_hex(hex, digest);
    mlreg_be64_put(when, (uint64_t)mlreg_registry__mutation_time(mut));
    if ((error = mlreg_meta_put(txn, MLREG_DB_REPOS, repo, strlen(repo), "", 0, 0)) < 0)
        return error;
    return mlreg_meta_put(txn, MLREG_DB_REPO_BLOBS, key, mlreg_registry__key(key, repo, hex, NULL),
                          when, sizeof(when), 0);
}

int mlreg_registry__blob_link_txn(registry_mutation *mut, mlreg_meta_txn *txn, mlreg_registry *reg,
                                  const char *repo, const mlreg_digest *digest)
{
    return link_blob_txn(mut, txn, reg, repo, digest);
}

typedef struct {
    mlreg_meta_txn *txn;
    const char *bhex;
    int unlink;
    int count;
    int64_t newest;
} links_walk;

static int links_repo_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    links_walk *w = payload;
    char repo[REGISTRY_KEY_CAP], k[REGISTRY_KEY_CAP];
    void *lv = NULL;
    size_t lvlen, kl;
    int error;

    (void)val;
    (void)vlen;
    if (klen >= sizeof(repo)) return 0;
    memcpy(repo, key, klen);
    repo[klen] = '\0';
    kl = mlreg_registry__key(k, repo, w->bhex, NULL);
    error = mlreg_meta_get(&lv, &lvlen, w->txn, MLREG_DB_REPO_BLOBS, k, kl);
    if (error == MLREG_ENOTFOUND) return 0;
    if (error < 0) return error;
    if (link_time(lv, lvlen) > w->newest) w->newest = link_time(lv, lvlen);
    free(lv);
    w->count++;
    if (w->unlink && (error = mlreg_meta_del(w->txn, MLREG_DB_REPO_BLOBS, k, kl)) < 0) return error;
    return 0;
}

int mlreg_registry__blob_links(int64_t *newest_ns_out, mlreg_meta_txn *txn, const char *bhex,
                               int unlink)
{
    links_walk w = {txn, bhex, unlink, 0, 0};
    int error = mlreg_meta_iter(txn, MLREG_DB_REPOS, NULL, 0, NULL, 0, links_repo_cb, &w);

    if (error < 0) return error;
    if (newest_ns_out != NULL) *newest_ns_out = w.newest;
    return w.count;
}

typedef struct {
    registry_link_cb cb;
    void *payload;
} links_all;

static int links_all_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    links_all *w = payload;
    size_t rlen = strnlen(key, klen);
    char bhex[MLREG_DIGEST_HEXLEN + 1];

    if (rlen + 1 + MLREG_DIGEST_HEXLEN != klen) return 0;
    memcpy(bhex, (const char *)key + rlen + 1, MLREG_DIGEST_HEXLEN);
    bhex[MLREG_DIGEST_HEXLEN] = '\0';
    return w->cb(bhex, link_time(val, vlen), w->payload);
}

int mlreg_registry__blob_links_foreach(mlreg_meta_txn *txn, registry_link_cb cb, void *payload)
{
    links_all w = {cb, payload};

    return mlreg_meta_iter(txn, MLREG_DB_REPO_BLOBS, NULL, 0, NULL, 0, links_all_cb, &w);
}

registry_group *mlreg_registry__group(mlreg_registry *reg)
{
    return reg->group;
}

/*
 * Small blobs that are written again and again (the empty config "{}" of
 * every signature and attestation referrer) are not written again: each
 * write costs a file, three fsyncs and a rename, inside the write
 * transaction of every promotion. A put is skipped only when all of these
 * hold, and otherwise the bytes are written as before:
 *
 * - this process committed the same bytes itself (the commit returned, so
 *   the blob and its directory entry are durable: an entry that exists but
 *   may not be durable, because another thread's commit of it has not
 *   fsynced the directory yet or an earlier commit failed there, is never
 *   trusted);
 * - no blob was deleted by this process since that commit (gc.c and
 *   scrub.c call mlreg_registry__blob_forget() before and after each
 *   deletion, which empties the list and moves the generation on; a put
 *   that straddles a deletion does not enter the list), so the name still
 *   denotes the file that commit made durable; one fs root belongs to one
 *   process (blob_fs.c);
 * - the stored bytes read back now hash to the digest (a copy that rotted is
 *   replaced, as a write would).
 *
 * Skipping cannot leave metadata naming a deleted blob any more than a
 * write can: every caller links or records the blob in a later or the same
 * write transaction, whose collection check (mlreg_registry__gc_link_check)
 * refuses a blob a collection condemned before it (being deleted: retry;
 * deleted: only if the store holds it at that moment), and a collection
 * condemning after it sees the new link or reference (still_collectable).
 * A blob being deleted at the moment of the read-back is condemned already,
 * so the link check refuses it. On s3 a PUT that returned is durable and
 * another node's deletion makes the read-back fail, so the rules hold too.
 */
#define KNOWN_MAX_LEN ((size_t)64 * 1024)

/* Whether @p digest is in the list: 1 or 0, and the generation in *gen_out. */
static int known_has(uint64_t *gen_out, registry_known *k, const mlreg_digest *digest)
{
    int found = 0;

    pthread_mutex_lock(&k->lock);
    for (size_t i = 0; i < k->n && !found; i++)
        if ((found = mlreg_digest_equal(&k->digests[i], digest))) k->used[i] = ++k->tick;
    *gen_out = k->gen;
    pthread_mutex_unlock(&k->lock);
    return found;
}

/* Adds @p digest unless a deletion began or ended since generation @p gen. */
static void known_add(registry_known *k, const mlreg_digest *digest, uint64_t gen)
{
    size_t i, at = 0;

    pthread_mutex_lock(&k->lock);
    if (k->gen == gen) {
        for (i = 0; i < k->n; i++)
            if (mlreg_digest_equal(&k->digests[i], digest)) goto done;
        /* unique blobs (envelopes, manifests) pass through; the hot ones,
         * put again and again, are the last to go */
        if (k->n < REGISTRY_KNOWN_MAX)
            at = k->n++;
        else
            for (i = 1; i < k->n; i++)
                if (k->used[i] < k->used[at]) at = i;
        k->digests[at] = *digest;
        k->used[at] = ++k->tick;
    }
done:
    pthread_mutex_unlock(&k->lock);
}

static uint64_t known_gen(registry_known *k)
{
    uint64_t gen;

    pthread_mutex_lock(&k->lock);
    gen = k->gen;
    pthread_mutex_unlock(&k->lock);
    return gen;
}

void mlreg_registry__blob_forget(mlreg_registry *reg)
{
    pthread_mutex_lock(&reg->known.lock);
    reg->known.n = 0;
    reg->known.gen++;
    pthread_mutex_unlock(&reg->known.lock);
}

/* 1 when the stored blob @p digest holds exactly @p data, 0 when it does
 * not (missing, other bytes, unreadable: the caller writes it), or ENOMEM. */
static int stored_equal(mlreg_registry *reg, const mlreg_digest *digest, const void *data,
                        size_t len)
{
    char *have = NULL;
    size_t hlen = 0;
    int error = mlreg_registry__blob_get(&have, &hlen, reg, digest, len);

    if (error == MLREG_ENOMEM) return error;
    mlreg_error_clear();
    error = error == 0 && hlen == len && memcmp(have, data, len) == 0;
    free(have);
    return error;
}

int mlreg_registry__blob_put(mlreg_digest *out, mlreg_registry *reg, const void *data, size_t len)
{
    mlreg_blob_writer *w = NULL;
    mlreg_digest digest;
    uint64_t gen = 0;
    int error, known = 0;

    if (len <= KNOWN_MAX_LEN) {
        if ((error = mlreg_digest_buffer(&digest, data, len)) < 0) return error;
        known = known_has(&gen, &reg->known, &digest);
        if (known && (error = stored_equal(reg, &digest, data, len)) < 0) return error;
        /* no deletion since the list was read: the bytes read are the
         * durable file of our own commit */
        if (known && error == 1 && known_gen(&reg->known) == gen) {
            *out = digest;
            return 0;
        }
    }
    if ((error = mlreg_blobstore_open_write(&w, reg->store, (int64_t)len)) < 0) return error;
    if ((error = mlreg_blob_writer_write(w, data, len)) < 0) {
        mlreg_blob_writer_abort(w);
        return error;
    }
    if ((error = mlreg_blob_writer_commit(out, w, NULL, (int64_t)len)) < 0) return error;
    if (len <= KNOWN_MAX_LEN) known_add(&reg->known, out, gen);
    return 0;
}

int mlreg_registry__blob_get(char **out, size_t *len_out, mlreg_registry *reg,
                             const mlreg_digest *digest, size_t max)
{
    mlreg_blob_reader *r = NULL;
    char *buf = NULL, str[MLREG_DIGEST_STRLEN + 1];
    uint64_t size = 0;
    size_t got = 0;
    ssize_t n;
    mlreg_digest actual;
    int error;

    mlreg_digest_format(str, digest);
    if ((error = mlreg_blobstore_open_read(&r, &size, reg->store, digest)) < 0) goto done;
    if (size > max) {
        error = mlreg_error_set(MLREG_ETOOBIG, "blob %s is %llu bytes, at most %zu expected", str,
                                (unsigned long long)size, max);
        goto done;
    }
    if ((buf = malloc((size_t)size + 1)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading blob %s", str);
        goto done;
    }
    while (got < size) {
        if ((n = mlreg_blob_reader_read(r, buf + got, (size_t)size - got)) < 0) {
            error = (int)n;
            goto done;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if ((error = mlreg_digest_buffer(&actual, buf, got)) < 0) goto done;
    if (got != size || !mlreg_digest_equal(&actual, digest)) {
        error = mlreg_error_set(MLREG_EIO, "stored blob %s does not match its digest", str);
        goto done;
    }
    buf[got] = '\0';
    *out = buf;
    *len_out = got;
    buf = NULL;

done:
    free(buf);
    mlreg_blob_reader_free(r);
    return error;
}

/* A blob.link or blob.delete: the blob and the repository it enters or
 * leaves; @p from names the source repository of a mount (NULL otherwise). */
typedef struct {
    mlreg_registry *reg;
    const char *repo;
    const char *from;
    const mlreg_digest *digest;
    const char *actor;
} blob_change;

/* Records the blob.link / blob.delete entry of @p c. */
static int audit_blob(registry_mutation *mut, const char *action, const blob_change *c)
{
    mlreg_audit_event ev;
    char str[MLREG_DIGEST_STRLEN + 1];
    json_t *details = NULL;
    int error;

    if (c->from != NULL && (details = json_pack("{s:s}", "from", c->from)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a blob link");
    mlreg_digest_format(str, c->digest);
    ev = (mlreg_audit_event){.actor = mlreg_registry__actor(c->actor),
                             .action = action,
                             .result = MLREG_AUDIT_OK,
                             .model = c->repo,
                             .digest = str,
                             .details = details};
    error = mlreg_registry__mutation_record(NULL, mut, &ev);
    json_decref(details);
    return error;
}

/* Parses the release record stored under model\0version; ENOTFOUND if none. */
int mlreg_registry__release_record_get(json_t **out, mlreg_meta_txn *txn, const char *model,
                                       const char *version)
{
    int error = 0;
    char key[REGISTRY_KEY_CAP];
    void *val = NULL;
    size_t vlen;
    json_error_t jerr;

    if ((error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_RELEASES, key,
                                mlreg_registry__key(key, model, version, NULL))) < 0)
        goto done;
    *out = json_loadb(val, vlen, 0, &jerr);
    if (*out == NULL)
        error = mlreg_error_set(MLREG_EIO, "release record %s@%s is corrupt: %s", model, version,
                                jerr.text);

done:
    free(val);
    return error;
}

int mlreg_registry__refuse_purged(const json_t *rec)
{
    const json_t *p = json_object_get(rec, "purged");
    const char *by = json_string_value(json_object_get(p, "by")),
               *when = json_string_value(json_object_get(p, "time")),
               *why = json_string_value(json_object_get(p, "reason"));
    const char *model = json_string_value(json_object_get(rec, "model")),
               *version = json_string_value(json_object_get(rec, "version"));

    if (p == NULL) return 0;
    return mlreg_error_set(
        MLREG_EGONE, "release %s@%s was purged by %s at %s (audit entry %lld): %s",
        model ? model : "?", version ? version : "?", by ? by : "?", when ? when : "?",
        (long long)json_integer_value(json_object_get(p, "seq")), why ? why : "?");
}

/* Finds the record of @p repo whose "digest" is w->digest. */
typedef struct {
    const char *digest;
    json_t *rec;
} digest_walk;

static int digest_walk_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    digest_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *d = json_string_value(json_object_get(rec, "digest"));

    (void)key;
    (void)klen;
    if (d != NULL && strcmp(d, w->digest) == 0) {
        w->rec = rec;
        return 1;
    }
    json_decref(rec);
    return 0;
}

int mlreg_registry__purged_check(mlreg_meta_txn *txn, const char *repo, const char *reference)
{
    char key[REGISTRY_KEY_CAP];
    digest_walk w = {reference, NULL};
    int error;

    if (mlreg_name_validate(repo) < 0) {
        mlreg_error_clear();
        return 0;
    }
    if (mlreg_reference_is_digest(reference)) {
        error =
            mlreg_meta_iter(txn, MLREG_DB_RELEASES, key, mlreg_registry__key(key, repo, "", NULL),
                            NULL, 0, digest_walk_cb, &w);
        if (error < 0) return error;
    } else if (mlreg_tag_validate(reference) == 0) {
        error = mlreg_registry__release_record_get(&w.rec, txn, repo, reference);
        if (error < 0 && error != MLREG_ENOTFOUND) return error;
    }
    mlreg_error_clear();
    error = w.rec != NULL ? mlreg_registry__refuse_purged(w.rec) : 0;
    json_decref(w.rec);
    return error;
}

/* Stores @p rec under model\0version, serialised as manifests.c serialises
 * a new record (compact, members in their order), so that a change that
 * rewrites a record and its replay store the same bytes. */
int mlreg_registry__release_record_put(mlreg_meta_txn *txn, const char *model, const char *version,
                                       const json_t *rec)
{
    char key[REGISTRY_KEY_CAP], *text = json_dumps(rec, JSON_COMPACT);
    int error;

    if (text == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory storing a release record");
    error = mlreg_meta_put(txn, MLREG_DB_RELEASES, key,
                           mlreg_registry__key(key, model, version, NULL), text, strlen(text), 0);
    free(text);
    return error;
}

/* ---- blobs ---------------------------------------------------------------- */

/* Links a blob into c->repo; a mount first checks that c->from sees it. */
static int blob_link_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    const blob_change *c = arg;
    char str[MLREG_DIGEST_STRLEN + 1];
    int error, linked;

    if (c->from != NULL) {
        if ((linked = mlreg_registry__blob_linked(txn, c->from, c->digest)) < 0) return linked;
        if (!linked) {
            mlreg_digest_format(str, c->digest);
            return mlreg_error_set(MLREG_ENOTFOUND, "blob %s unknown to repository '%s'", str,
                                   c->from);
        }
    }
    if ((linked = mlreg_registry__blob_linked(txn, c->repo, c->digest)) != 0)
        return linked < 0 ? linked : REGISTRY_MUTATE_NOOP; /* already visible */
    if ((error = link_blob_txn(mut, txn, c->reg, c->repo, c->digest)) < 0) return error;
    return audit_blob(mut, MLREG_AUDIT_BLOB_LINK, c);
}

/* mlreg_registry__mutate() for a public entry point: a no-op is a success. */
int mlreg_registry__run(mlreg_registry *reg, registry_apply_fn apply, void *arg)
{
    int error = mlreg_registry__mutate(NULL, reg->meta, apply, arg);

    return error == REGISTRY_MUTATE_NOOP ? 0 : error;
}

int mlreg_registry_blob_link(mlreg_registry *reg, const char *repo, const mlreg_digest *digest,
                             const char *actor)
{
    blob_change c = {reg, repo, NULL, digest, actor};
    int error;

    if ((error = mlreg_name_validate(repo)) < 0) return error;
    return mlreg_registry__run(reg, blob_link_apply, &c);
}

/* ENOTFOUND unless @p digest is linked into @p repo. */
static int require_linked(mlreg_registry *reg, const char *repo, const mlreg_digest *digest)
{
    int error = 0, linked;
    mlreg_meta_txn *txn = NULL;
    char str[MLREG_DIGEST_STRLEN + 1];

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 0)) < 0) goto done;
    if ((linked = mlreg_registry__blob_linked(txn, repo, digest)) < 0) {
        error = linked;
        goto done;
    }
    if (!linked) {
        mlreg_digest_format(str, digest);
        error = mlreg_error_set(MLREG_ENOTFOUND, "blob %s unknown to repository '%s'", str, repo);
    }

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

/* require_linked(), trying the log once more when the link is unknown: the
 * blob may have been linked through another node a moment ago. */
static int require_linked_now(mlreg_registry *reg, const char *repo, const mlreg_digest *digest)
{
    int error = require_linked(reg, repo, digest);

    if (error == MLREG_ENOTFOUND && reg->cluster != NULL &&
        mlreg_cluster__refresh(reg->cluster, 0) > 0)
        error = require_linked(reg, repo, digest);
    return error;
}

int mlreg_registry_blob_stat(uint64_t *size_out, mlreg_registry *reg, const char *repo,
                             const mlreg_digest *digest)
{
    int error = require_linked_now(reg, repo, digest);

    if (error < 0) return error;
    return mlreg_blobstore_stat(size_out, reg->store, digest);
}

int mlreg_registry_blob_open(mlreg_blob_reader **out, uint64_t *size_out, mlreg_registry *reg,
                             const char *repo, const mlreg_digest *digest)
{
    int error = require_linked_now(reg, repo, digest);

    if (error < 0) return error;
    return mlreg_blobstore_open_read(out, size_out, reg->store, digest);
}

int mlreg_registry_blob_mount(mlreg_registry *reg, const char *repo, const char *from,
                              const mlreg_digest *digest, const char *actor)
{
    int error = 0, stored;
    char str[MLREG_DIGEST_STRLEN + 1];
    blob_change c = {reg, repo, from, digest, actor};

    mlreg_digest_format(str, digest);
    if ((error = mlreg_name_validate(repo)) < 0 || (error = mlreg_name_validate(from)) < 0)
        goto done;
    /* The store is asked first (it may be remote), outside the write txn. */
    if ((stored = mlreg_blobstore_exists(reg->store, digest)) < 0) {
        error = stored;
        goto done;
    }
    if (!stored) {
        error = mlreg_error_set(MLREG_ENOTFOUND, "blob %s is not stored", str);
        goto done;
    }
    error = mlreg_registry__run(reg, blob_link_apply, &c);

done:
    return error;
}

typedef struct {
    mlreg_meta_txn *txn;
    const mlreg_digest *digest; /* blob being unlinked */
    const char *hex;            /* ... and its hex */
    int is_empty_cfg;           /* it is the empty config every release references */
    const char *what;           /* what of the release holds it, when found */
    char version[130];          /* the release that holds it, when found */
} release_blob_scan;

/* A signature or attestation record whose @p field holds the exact bytes of
 * its referrer's one layer (signatures.c and promotions.c store the layer
 * blob from that text): 1 when those bytes hash to the blob looked for. */
typedef struct {
    const mlreg_digest *digest;
    const char *field;
} layer_scan;

static int layer_scan_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    layer_scan *ls = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *text = json_string_value(json_object_get(rec, ls->field));
    mlreg_digest d;
    int error = 0;

    (void)key;
    (void)klen;
    if (text != NULL && (error = mlreg_digest_buffer(&d, text, strlen(text))) == 0)
        error = mlreg_digest_equal(&d, ls->digest);
    json_decref(rec);
    return error;
}

/* Whether the blob is the layer of one of release @p rhex's signature or
 * attestation referrers: 1 (*what_out names which), 0, or an error. */
static int release_layer_holds(const char **what_out, mlreg_meta_txn *txn, const char *rhex,
                               const mlreg_digest *digest)
{
    layer_scan ls = {digest, "signature"};
    int found;

    if ((found = mlreg_registry__signatures_foreach(txn, rhex, layer_scan_cb, &ls)) != 0) {
        *what_out = "a signature";
        return found;
    }
    ls.field = "envelope";
    if ((found = mlreg_registry__attestations_foreach(txn, rhex, layer_scan_cb, &ls)) != 0) {
        *what_out = "an attestation envelope";
        return found;
    }
    if ((found = mlreg_registry__evaluation_holds_blob(txn, rhex, digest)) != 0)
        *what_out = "an evaluation envelope";
    return found;
}

/* Finds the release of the repository that holds the blob: as one of its
 * files, as the empty config they all share, or as the layer of one of its
 * signature or attestation referrers (which are immutable: unlinking their
 * layer would leave their OCI form naming a blob nobody may fetch). */
static int scan_release_blob_cb(const void *key, size_t klen, const void *val, size_t vlen,
                                void *payload)
{
    release_blob_scan *scan = payload;
    json_t *rec, *files, *f;
    size_t i, plen = strnlen(key, klen) + 1;
    int hit = scan->is_empty_cfg;
    const char *rd;

    rec = json_loadb(val, vlen, 0, NULL);
    if (rec == NULL) return mlreg_error_set(MLREG_EIO, "release record is corrupt");
    scan->what = "a file";
    files = json_object_get(rec, "files");
    json_array_foreach(files, i, f)
    {
        const char *d = json_string_value(json_object_get(f, "digest"));
        if (d != NULL && strlen(d) == MLREG_DIGEST_STRLEN && strcmp(d + 7, scan->hex) == 0) hit = 1;
    }
    rd = json_string_value(json_object_get(rec, "digest"));
    if (!hit && rd != NULL && strlen(rd) == MLREG_DIGEST_STRLEN)
        hit = release_layer_holds(&scan->what, scan->txn, rd + 7, scan->digest);
    json_decref(rec);
    if (hit <= 0) return hit;
    snprintf(scan->version, sizeof(scan->version), "%.*s", (int)(klen - plen),
             (const char *)key + plen);
    return 1;
}

/* Unlinks a blob from c->repo unless a release of it holds the blob. */
static int blob_unlink_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    const blob_change *c = arg;
    int error = 0, linked;
    char key[REGISTRY_KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1], str[MLREG_DIGEST_STRLEN + 1];
    release_blob_scan scan;
    mlreg_digest empty;

    mlreg_digest_hex(hex, c->digest);
    mlreg_digest_format(str, c->digest);
    memset(&scan, 0, sizeof(scan));
    scan.txn = txn;
    scan.digest = c->digest;
    scan.hex = hex;
    scan.is_empty_cfg = mlreg_digest_parse(&empty, MLREG_EMPTY_CONFIG_DIGEST) == 0 &&
                        mlreg_digest_equal(&empty, c->digest);
    if ((linked = mlreg_registry__blob_linked(txn, c->repo, c->digest)) < 0) return linked;
    if (!linked)
        return mlreg_error_set(MLREG_ENOTFOUND, "blob %s unknown to repository '%s'", str, c->repo);
    error =
        mlreg_meta_iter(txn, MLREG_DB_RELEASES, key, mlreg_registry__key(key, c->repo, "", NULL),
                        NULL, 0, scan_release_blob_cb, &scan);
    if (error < 0) return error;
    if (error > 0)
        return mlreg_error_set(MLREG_EDENIED,
                               "blob %s is %s of release %s@%s; releases are immutable", str,
                               scan.is_empty_cfg ? "the config" : scan.what, c->repo, scan.version);
    if ((error = mlreg_meta_del(txn, MLREG_DB_REPO_BLOBS, key,
                                mlreg_registry__key(key, c->repo, hex, NULL))) < 0)
        return error;
    return audit_blob(mut, MLREG_AUDIT_BLOB_DELETE, c);
}

int mlreg_registry_blob_unlink(mlreg_registry *reg, const char *repo, const mlreg_digest *digest,
                               const char *actor)
{
    blob_change c = {reg, repo, NULL, digest, actor};
    int error;

    if ((error = mlreg_name_validate(repo)) < 0) return error;
    return mlreg_registry__run(reg, blob_unlink_apply, &c);
}

/* ---- releases (/api/v1) ---------------------------------------------------- */

/* Orders release records by created time, then version (natural order, so
 * 1.10.0 follows 1.9.0). */
static int release_cmp(const void *a, const void *b)
{
    json_t *ra = *(json_t *const *)a, *rb = *(json_t *const *)b;
    json_int_t sa = json_integer_value(json_object_get(ra, "created_sec"));
    json_int_t sb = json_integer_value(json_object_get(rb, "created_sec"));
    json_int_t na = json_integer_value(json_object_get(ra, "created_nsec"));
    json_int_t nb = json_integer_value(json_object_get(rb, "created_nsec"));
    const char *va = json_string_value(json_object_get(ra, "version"));
    const char *vb = json_string_value(json_object_get(rb, "version"));

    if (sa != sb) return sa < sb ? -1 : 1;
    if (na != nb) return na < nb ? -1 : 1;
    return strverscmp(va ? va : "", vb ? vb : "");
}

/* @p v (a new reference), or JSON null when the record lacks the member. */
static json_t *record_or_null(json_t *v)
{
    return v != NULL ? json_incref(v) : json_null();
}

/* RELEASE_SUMMARY from a stored record (new reference). "withdrawn" is the
 * record's object (withdraw.c) or null, "purged" likewise (purge.c). */
static json_t *release_summary_plain(json_t *rec)
{
    json_t *w = json_object_get(rec, "withdrawn"), *p = json_object_get(rec, "purged");

    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:I, s:O, s:O, s:O}", "version",
                     json_object_get(rec, "version"), "digest", json_object_get(rec, "digest"),
                     "created", json_object_get(rec, "created"), "git_sha",
                     json_object_get(rec, "git_sha"), "metrics", json_object_get(rec, "metrics"),
                     "files", (json_int_t)json_array_size(json_object_get(rec, "files")), "size",
                     json_object_get(rec, "size"), "withdrawn", w ? w : json_null(), "purged",
                     p ? p : json_null());
}

/* RELEASE_SUMMARY with "metric_intervals" (the record's, {} when it has
 * none) (new reference). */
static json_t *release_summary(json_t *rec)
{
    json_t *res = release_summary_plain(rec), *ci = json_object_get(rec, "metric_intervals");

    if (res != NULL &&
        json_object_set_new(res, "metric_intervals",
                            json_is_object(ci) ? json_incref(ci) : json_object()) < 0) {
        json_decref(res);
        return NULL;
    }
    return res;
}

/* Collects the records of one model, or of all models, in key order. */
typedef struct {
    json_t *records;
} record_walk;

static int record_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    record_walk *w = payload;
    json_t *rec;

    (void)key;
    (void)klen;
    rec = json_loadb(val, vlen, 0, NULL);
    if (rec == NULL) return mlreg_error_set(MLREG_EIO, "release record is corrupt");
    if (json_array_append_new(w->records, rec) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
    return 0;
}

static int load_records(json_t **out, mlreg_registry *reg, const char *model)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    char prefix[REGISTRY_KEY_CAP];
    size_t plen = 0;
    record_walk w;

    w.records = json_array();
    if (w.records == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
        goto done;
    }
    if (model != NULL) plen = mlreg_registry__key(prefix, model, "", NULL);
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 0)) < 0) goto done;
    if ((error = mlreg_meta_iter(txn, MLREG_DB_RELEASES, prefix, plen, NULL, 0, record_cb, &w)) < 0)
        goto done;
    error = 0;
    *out = w.records;
    w.records = NULL;

done:
    mlreg_meta_txn_abort(txn);
    json_decref(w.records);
    return error;
}

/* Sorts a JSON array of records in place by release_cmp. */
static int sort_records(json_t *records)
{
    size_t n = json_array_size(records), i;
    json_t **v;

    if (n < 2) return 0;
    v = malloc(n * sizeof(*v));
    if (v == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory sorting releases");
    for (i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(records, i));
    qsort(v, n, sizeof(*v), release_cmp);
    json_array_clear(records);
    for (i = 0; i < n; i++)
        json_array_append_new(records, v[i]); /* cannot fail: capacity was there */
    free(v);
    return 0;
}

int mlreg_registry_models_list(json_t **out, mlreg_registry *reg)
{
    int error = 0;
    json_t *records = NULL, *models = NULL, *rec, *latest = NULL, *entry;
    size_t i, count = 0;
    const char *model, *next;

    if ((error = load_records(&records, reg, NULL)) < 0) goto done;
    if ((models = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing models");
        goto done;
    }
    /* Records arrive grouped by model (key order); emit one entry per run. */
    json_array_foreach(records, i, rec)
    {
        model = json_string_value(json_object_get(rec, "model"));
        /* the latest release still stored: a purged one only when all are */
        if (latest == NULL ||
            (json_object_get(latest, "purged") != NULL && json_object_get(rec, "purged") == NULL) ||
            ((json_object_get(latest, "purged") == NULL) ==
                 (json_object_get(rec, "purged") == NULL) &&
             release_cmp(&rec, &latest) > 0))
            latest = rec;
        count++;
        next = i + 1 < json_array_size(records)
                   ? json_string_value(json_object_get(json_array_get(records, i + 1), "model"))
                   : NULL;
        if (next != NULL && model != NULL && strcmp(next, model) == 0) continue;
        entry =
            json_pack("{s:s?, s:I, s:{s:O, s:O, s:O, s:O}}", "name", model, "releases",
                      (json_int_t)count, "latest", "version", json_object_get(latest, "version"),
                      "digest", json_object_get(latest, "digest"), "created",
                      json_object_get(latest, "created"), "withdrawn",
                      json_object_get(latest, "withdrawn") ? json_object_get(latest, "withdrawn")
                                                           : json_null());
        if (json_array_append_new(models, entry) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing models");
            goto done;
        }
        latest = NULL;
        count = 0;
    }
    *out = json_pack("{s:O}", "models", models);
    if (*out == NULL) error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing models");

done:
    json_decref(models);
    json_decref(records);
    return error;
}

int mlreg_registry_model_get(json_t **out, mlreg_registry *reg, const char *name)
{
    int error = 0;
    json_t *records = NULL, *list = NULL, *rec, *res;
    size_t i;

    if ((error = mlreg_name_validate(name)) < 0) goto done;
    if ((error = load_records(&records, reg, name)) < 0) goto done;
    if (json_array_size(records) == 0) {
        error = mlreg_error_set(MLREG_ENOTFOUND, "model '%s' has no releases", name);
        goto done;
    }
    if ((error = sort_records(records)) < 0) goto done;
    if ((list = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
        goto done;
    }
    json_array_foreach(records, i, rec)
    {
        if (json_array_append_new(list, release_summary(rec)) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
            goto done;
        }
    }
    res = json_pack("{s:s, s:O}", "name", name, "releases", list);
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
        goto done;
    }
    *out = res;

done:
    json_decref(list);
    json_decref(records);
    return error;
}

static int release_get_once(json_t **out, mlreg_registry *reg, const char *name,
                            const char *version);

int mlreg_registry_release_get(json_t **out, mlreg_registry *reg, const char *name,
                               const char *version)
{
    int error = release_get_once(out, reg, name, version);

    /* pushed through another node a moment ago? */
    if (error == MLREG_ENOTFOUND && reg->cluster != NULL &&
        mlreg_cluster__refresh(reg->cluster, 0) > 0)
        error = release_get_once(out, reg, name, version);
    return error;
}

static int release_get_once(json_t **out, mlreg_registry *reg, const char *name,
                            const char *version)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *rec = NULL, *res = NULL;

    if ((error = mlreg_name_validate(name)) < 0 || (error = mlreg_tag_validate(version)) < 0)
        goto done;
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 0)) < 0) goto done;
    error = mlreg_registry__release_record_get(&rec, txn, name, version);
    if (error == MLREG_ENOTFOUND)
        error = mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", name, version);
    if (error < 0 || (error = mlreg_registry__refuse_purged(rec)) < 0) goto done;
    res = release_summary(rec);
    if (res == NULL || json_object_set(res, "model", json_object_get(rec, "model")) < 0 ||
        json_object_set(res, "eval_dataset", json_object_get(rec, "dataset")) < 0 ||
        json_object_set_new(res, "eval_dataset_digest",
                            record_or_null(json_object_get(rec, "dataset_digest"))) < 0 ||
        json_object_set_new(res, "eval_code_digest",
                            record_or_null(json_object_get(rec, "eval_code_digest"))) < 0 ||
        json_object_set_new(res, "git_dirty",
                            json_boolean(json_is_true(json_object_get(rec, "git_dirty")))) < 0 ||
        json_object_set(res, "files", json_object_get(rec, "files")) < 0 ||
        json_object_set_new(res, "pushed_by",
                            json_string(json_string_value(json_object_get(rec, "pushed_by"))
                                            ? json_string_value(json_object_get(rec, "pushed_by"))
                                            : MLREG_KEYRING_ACTOR_LOCAL)) < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading release");
        goto done;
    }
    *out = res;
    res = NULL;

done:
    json_decref(res);
    json_decref(rec);
    mlreg_meta_txn_abort(txn);
    return error;
}

/* ---- replay ----------------------------------------------------------------- */

int mlreg_registry__replay_blobs(mlreg_registry *reg, const json_t *entry, const char *text,
                                 size_t len)
{
    const json_t *subject = json_object_get(entry, "subject");
    const char *action = json_string_value(json_object_get(entry, "action"));
    const char *digest = json_string_value(json_object_get(subject, "digest"));
    mlreg_digest d;
    blob_change c;

    c.reg = reg;
    c.repo = json_string_value(json_object_get(subject, "model"));
    c.from = json_string_value(json_object_get(json_object_get(entry, "details"), "from"));
    c.digest = &d;
    c.actor = json_string_value(json_object_get(entry, "actor"));
    if (c.repo == NULL || digest == NULL || mlreg_digest_parse(&d, digest) < 0)
        return mlreg_error_set(MLREG_EINVALID, "audit entry %lld of %s lacks its subject",
                               (long long)json_integer_value(json_object_get(entry, "seq")),
                               action);
    return mlreg_registry__mutate_replay(
        reg->meta, entry, text, len,
        !strcmp(action, MLREG_AUDIT_BLOB_LINK) ? blob_link_apply : blob_unlink_apply, &c);
}
