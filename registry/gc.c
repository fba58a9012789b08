/* gc.c: garbage collection of the blobs nothing references (gc.h,
 * docs/lifecycle.md).
 *
 * A collection runs in three steps, so that no push ever ends up referencing
 * a blob whose bytes are gone, on one node or on several sharing a bucket:
 *
 * 1. Mark, holding no write lock: walk the blob store (each blob with the
 *    time it was written) and, in one read transaction, find whether a
 *    stored manifest references each blob (blob_refs, manifests.c) and when
 *    it was last linked into a repository. A candidate is referenced by
 *    nothing, written and linked before the cutoff (now - grace), and not
 *    being deleted by another collection.
 * 2. Condemn, a batch at a time, as one change "gc.collect": inside the
 *    write transaction each candidate is checked again (a push since the
 *    mark may reference or link it), its links leave every repository (HEAD
 *    answers 404 and a manifest naming it is refused), and it is marked
 *    "being deleted" in gc_blobs with a deadline. The entry lists the
 *    digests, so every node applies the same change.
 * 3. Delete the bytes, stopping GC_STOP_NS before the deadline, then record
 *    "gc.done", which marks the batch deleted.
 *
 * A link of a blob that has a gc_blobs row (mlreg_registry__gc_link_check)
 * is refused while the blob is being deleted (upload it again in a moment);
 * after gc.done or the deadline it is taken only if the store holds the
 * bytes at that moment, since an upload whose bytes landed before the
 * deletion lost them. A row goes when its blob is linked again, or
 * GC_ROW_KEEP_NS after it was deleted (the next collection drops it): an
 * upload's bytes and its link are seconds apart, never a day.
 */
#include "mlreg/gc.h"

#include "mlreg/audit.h"
#include "mlreg/blob.h"
#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/promotions.h"
#include "mlreg/retention.h"
#include "mlreg/tables.h"
#include "mlreg/time.h"
#include "registry_internal.h"
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_SEC 1000000000LL
/* Blobs condemned by one gc.collect entry (about 100 bytes each in it). */
#define GC_BATCH 1000
/* How long a batch may take to delete; other nodes trust the store again after it. */
#define GC_LEASE_NS (600 * NS_PER_SEC)
/* The deleting node stops this long before the deadline: no delete it sends
 * may land after it (a request that takes longer fails, and is retried by the
 * next collection). */
#define GC_STOP_NS (300 * NS_PER_SEC)
/* How long a row outlives its blob's deletion. */
#define GC_ROW_KEEP_NS (24 * 3600 * NS_PER_SEC)

/* A gc_blobs row: state, the seq of the gc.collect entry, and a time (the
 * deadline while the blob is being deleted; when it was deleted after). */
#define ROW_DELETING 'p'
#define ROW_DELETED  'c'
#define ROW_LEN      17

/* Set while this thread holds the registry's gc lock: a purge that
 * retention makes inside a collection leaves its blobs to that collection. */
static _Thread_local int gc_lock_held;

typedef struct {
    char state;
    uint64_t seq;
    int64_t time;
} gc_row;

static void row_encode(unsigned char out[ROW_LEN], const gc_row *r)
{
    out[0] = (unsigned char)r->state;
    mlreg_be64_put(out + 1, r->seq);
    mlreg_be64_put(out + 9, (uint64_t)r->time);
}

static int row_decode(gc_row *r, const void *val, size_t vlen)
{
    const unsigned char *v = val;

    if (vlen != ROW_LEN || (v[0] != ROW_DELETING && v[0] != ROW_DELETED))
        return mlreg_error_set(MLREG_EIO, "a gc_blobs row is corrupt");
    r->state = (char)v[0];
    r->seq = mlreg_be64_get(v + 1);
    r->time = (int64_t)mlreg_be64_get(v + 9);
    return 0;
}

static int row_get(gc_row *r, mlreg_meta_txn *txn, const char *hex)
{
    void *val = NULL;
    size_t vlen;
    int error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_GC_BLOBS, hex, MLREG_DIGEST_HEXLEN);

    if (error == 0) error = row_decode(r, val, vlen);
    free(val);
    return error;
}

/* Beside each row (key: the blob's hex) the table keeps two index keys:
 * "t" be64(time) hex for every row, which the pruning walks oldest first,
 * and "q" be64(seq) hex while gc.collect entry seq is deleting the blob,
 * which gc.done walks. Neither walk reads more than the rows it changes, so
 * a change holds the write lock as long as its own batch takes, however
 * many rows the table keeps. */
#define IDX_LEN (1 + 8 + MLREG_DIGEST_HEXLEN)

static size_t idx_key(char out[IDX_LEN], char kind, uint64_t v, const char *hex)
{
    out[0] = kind;
    mlreg_be64_put((unsigned char *)out + 1, v);
    memcpy(out + 9, hex, MLREG_DIGEST_HEXLEN);
    return IDX_LEN;
}

/* Writes (@p add) or removes the index keys of row @p r of @p hex. */
static int idx_update(mlreg_meta_txn *txn, const char *hex, const gc_row *r, int add)
{
    char k[IDX_LEN];
    size_t klen;
    int error = 0;

    for (int q = 0; q < 2 && error >= 0; q++) {
        if (q == 1 && r->state != ROW_DELETING) break;
        klen = q ? idx_key(k, 'q', r->seq, hex) : idx_key(k, 't', (uint64_t)r->time, hex);
        if (add) {
            error = mlreg_meta_put(txn, MLREG_DB_GC_BLOBS, k, klen, "", 0, 0);
        } else if ((error = mlreg_meta_del(txn, MLREG_DB_GC_BLOBS, k, klen)) == MLREG_ENOTFOUND) {
            mlreg_error_clear();
            error = 0;
        }
    }
    return error;
}

/* Removes the row of @p hex (@p old, as read) with its index keys. */
static int row_del(mlreg_meta_txn *txn, const char *hex, const gc_row *old)
{
    int error = idx_update(txn, hex, old, 0);

    return error < 0 ? error : mlreg_meta_del(txn, MLREG_DB_GC_BLOBS, hex, MLREG_DIGEST_HEXLEN);
}

/* Writes the row of @p hex, replacing any it had, with its index keys. */
static int row_put(mlreg_meta_txn *txn, const char *hex, const gc_row *r)
{
    unsigned char v[ROW_LEN];
    gc_row old;
    int error;

    if ((error = row_get(&old, txn, hex)) == 0) {
        error = idx_update(txn, hex, &old, 0);
    } else if (error == MLREG_ENOTFOUND) {
        mlreg_error_clear();
        error = 0;
    }
    if (error < 0) return error;
    row_encode(v, r);
    if ((error =
             mlreg_meta_put(txn, MLREG_DB_GC_BLOBS, hex, MLREG_DIGEST_HEXLEN, v, sizeof(v), 0)) < 0)
        return error;
    return idx_update(txn, hex, r, 1);
}

/* 1 while the row says a collection is deleting the blob now. */
static int row_busy(const gc_row *r, int64_t now)
{
    return r->state == ROW_DELETING && now < r->time;
}

int mlreg_registry__gc_link_check(registry_mutation *mut, mlreg_meta_txn *txn, mlreg_registry *reg,
                                  const mlreg_digest *digest)
{
    char hex[MLREG_DIGEST_HEXLEN + 1], str[MLREG_DIGEST_STRLEN + 1];
    gc_row r;
    int error, stored;

    mlreg_digest_hex(hex, digest);
    if ((error = row_get(&r, txn, hex)) == MLREG_ENOTFOUND) {
        mlreg_error_clear();
        return 0;
    }
    if (error < 0) return error;
    if (mlreg_registry__mutation_source(mut) == NULL) {
        mlreg_digest_format(str, digest);
        if (row_busy(&r, mlreg_registry__mutation_time(mut)))
            return mlreg_error_set(MLREG_EUNAVAILABLE,
                                   "blob %s is being deleted by garbage collection; upload it "
                                   "again in a minute",
                                   str);
        if ((stored = mlreg_blobstore_exists(mlreg_registry_blobstore(reg), digest)) < 0)
            return stored;
        if (!stored)
            return mlreg_error_set(MLREG_EBLOBUNKNOWN,
                                   "blob %s was deleted by garbage collection while it was "
                                   "uploaded; upload it again",
                                   str);
    }
    return row_del(txn, hex, &r);
}

#define INDEXED_KEY "gc_blobs.indexed"

/* The rows of a table written before it had index keys. */
typedef struct {
    char (*hex)[MLREG_DIGEST_HEXLEN];
    gc_row *rows;
    size_t n, cap;
} row_list;

static int row_list_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    row_list *l = payload;
    int error;

    if (klen != MLREG_DIGEST_HEXLEN) return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        void *h = realloc(l->hex, cap * sizeof(*l->hex)), *r;
        if (h == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory indexing gc rows");
        l->hex = h;
        if ((r = realloc(l->rows, cap * sizeof(*l->rows))) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory indexing gc rows");
        l->rows = r;
        l->cap = cap;
    }
    if ((error = row_decode(&l->rows[l->n], val, vlen)) < 0) return error;
    memcpy(l->hex[l->n++], key, MLREG_DIGEST_HEXLEN);
    return 0;
}

int mlreg_registry__gc_index_build(mlreg_meta *meta)
{
    mlreg_meta_txn *txn = NULL;
    row_list l = {NULL, NULL, 0, 0};
    char hex[MLREG_DIGEST_HEXLEN + 1];
    size_t i;
    int error, found;

    if ((error = mlreg_meta_txn_begin(&txn, meta, 1)) < 0) return error;
    found = mlreg_registry__meta_has(txn, MLREG_DB_META, INDEXED_KEY, strlen(INDEXED_KEY));
    if (found != 0) {
        error = found < 0 ? found : 0;
        goto done;
    }
    if ((error = mlreg_meta_iter(txn, MLREG_DB_GC_BLOBS, NULL, 0, NULL, 0, row_list_cb, &l)) < 0)
        goto done;
    for (i = 0; i < l.n; i++) {
        memcpy(hex, l.hex[i], MLREG_DIGEST_HEXLEN);
        hex[MLREG_DIGEST_HEXLEN] = '\0';
        if ((error = idx_update(txn, hex, &l.rows[i], 1)) < 0) goto done;
    }
    if ((error = mlreg_meta_put(txn, MLREG_DB_META, INDEXED_KEY, strlen(INDEXED_KEY), "1", 1, 0)) <
        0)
        goto done;
    error = mlreg_meta_txn_commit(txn);
    txn = NULL;

done:
    free(l.hex);
    free(l.rows);
    mlreg_meta_txn_abort(txn);
    return error;
}

/* ---- mark ------------------------------------------------------------------ */

/* One listed blob: 56 bytes, one per blob in the store for the whole run
 * (its hex form is made where a table key needs it, not kept). */
typedef struct {
    mlreg_digest digest;
    uint64_t size;
    int64_t modified; /* Unix seconds; 0 unknown */
    int64_t linked;   /* newest link (ns); 0 none or unknown */
} gc_blob;

typedef struct {
    gc_blob *v;
    size_t n, cap;
} blob_vec;

static int stored_cb(const mlreg_digest *digest, uint64_t size, int64_t modified, void *payload)
{
    blob_vec *bv = payload;
    gc_blob *b;

    if (bv->n == bv->cap) {
        size_t cap = bv->cap ? bv->cap * 2 : 1024;
        gc_blob *v = realloc(bv->v, cap * sizeof(*v));
        if (v == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing blobs");
        bv->v = v;
        bv->cap = cap;
    }
    b = &bv->v[bv->n++];
    b->digest = *digest;
    b->size = size;
    b->modified = modified;
    b->linked = 0;
    return 0;
}

/* Raw digest order, which is the order of their hex forms too. */
static int blob_digest_cmp(const void *a, const void *b)
{
    return memcmp(((const gc_blob *)a)->digest.raw, ((const gc_blob *)b)->digest.raw,
                  MLREG_DIGEST_RAWLEN);
}

static gc_blob *blob_find(blob_vec *bv, const char *hex)
{
    gc_blob key;

    memset(&key, 0, sizeof(key));
    if (mlreg_digest_parse_hex(&key.digest, hex, MLREG_DIGEST_HEXLEN) < 0) {
        mlreg_error_clear(); /* not a blob of the store */
        return NULL;
    }
    return bsearch(&key, bv->v, bv->n, sizeof(*bv->v), blob_digest_cmp);
}

static int link_cb(const char *bhex, int64_t linked_ns, void *payload)
{
    gc_blob *b = blob_find(payload, bhex);

    if (b != NULL && linked_ns > b->linked) b->linked = linked_ns;
    return 0;
}

/* What the mark found, and the run's counts. */
typedef struct {
    blob_vec stored;
    gc_blob **cand; /* candidates, pointers into stored */
    size_t ncand;
    size_t referenced, young, busy;
    int64_t cutoff; /* ns: written or linked before it may go */
    /* a dry run with retention: the manifests its purges would take out of
     * the index, "repo\nmanifest hex" -> [hex of the files a purge keeps] */
    json_t *drop;
} gc_mark;

/* The blob_refs rows a planned purge would remove (purge.c keeps the
 * manifest's own bytes and its eval report). */
static int planned_drop(const char *repo, const char *mhex, const char *bhex, void *payload)
{
    const json_t *keep, *k;
    char key[REGISTRY_KEY_CAP + MLREG_DIGEST_HEXLEN + 2];
    size_t i;

    snprintf(key, sizeof(key), "%s\n%s", repo, mhex);
    if ((keep = json_object_get(payload, key)) == NULL || !strcmp(bhex, mhex)) return 0;
    json_array_foreach(keep, i, k)
    {
        if (!strcmp(json_string_value(k), bhex)) return 0;
    }
    return 1;
}

/* m->drop for the releases of a dry run's retention plan (its "purge" list). */
static int drop_from_plan(gc_mark *m, mlreg_registry *reg, const json_t *plan)
{
    mlreg_meta_txn *txn = NULL;
    json_t *item, *rec = NULL, *keep = NULL, *f;
    char key[REGISTRY_KEY_CAP + MLREG_DIGEST_HEXLEN + 2];
    size_t i, k;
    int error;

    if (json_array_size(json_object_get(plan, "purge")) == 0) return 0;
    if ((m->drop = json_object()) == NULL) goto nomem;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) return error;
    json_array_foreach(json_object_get(plan, "purge"), i, item)
    {
        const char *model = json_string_value(json_object_get(item, "model"));
        const char *d = json_string_value(json_object_get(item, "digest"));

        if (model == NULL || d == NULL || strlen(d) != MLREG_DIGEST_STRLEN) continue;
        error = mlreg_registry__release_record_get(
            &rec, txn, model, json_string_value(json_object_get(item, "version")));
        if (error < 0) goto done;
        if ((keep = json_array()) == NULL) goto nomem;
        json_array_foreach(json_object_get(rec, "files"), k, f)
        {
            const char *kind = json_string_value(json_object_get(f, "kind"));
            const char *fd = json_string_value(json_object_get(f, "digest"));
            if (kind != NULL && !strcmp(kind, "eval-report") && fd != NULL &&
                strlen(fd) == MLREG_DIGEST_STRLEN &&
                json_array_append_new(keep, json_string(fd + 7)) < 0)
                goto nomem;
        }
        snprintf(key, sizeof(key), "%s\n%s", model, d + 7);
        if (json_object_set_new(m->drop, key, keep) < 0) {
            keep = NULL;
            goto nomem;
        }
        keep = NULL;
        json_decref(rec);
        rec = NULL;
    }
    error = 0;
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory planning a collection");
done:
    json_decref(keep);
    json_decref(rec);
    mlreg_meta_txn_abort(txn);
    return error;
}

static void mark_free(gc_mark *m)
{
    free(m->stored.v);
    free(m->cand);
    json_decref(m->drop);
}

/* Whether @p b, found in the store, may be collected at @p cutoff: 1, 0, or
 * an error. Counts why not in @p m. */
static int blob_collectable(gc_mark *m, mlreg_meta_txn *txn, const gc_blob *b, int64_t now)
{
    char hex[MLREG_DIGEST_HEXLEN + 1];
    gc_row r;
    int error;

    mlreg_digest_hex(hex, &b->digest);
    error = m->drop != NULL
                ? mlreg_registry__blob_referenced_unless(txn, hex, planned_drop, m->drop)
                : mlreg_registry__blob_referenced(txn, hex);
    if (error != 0) {
        if (error > 0) m->referenced++;
        return error < 0 ? error : 0;
    }
    /* written at an unknown time, or in the grace period: an upload whose
     * link has not committed yet looks exactly like an orphan */
    if (b->modified <= 0 || b->modified > m->cutoff / NS_PER_SEC - 1 || b->linked >= m->cutoff) {
        m->young++;
        return 0;
    }
    if ((error = row_get(&r, txn, hex)) == 0 && row_busy(&r, now)) {
        m->busy++;
        return 0;
    }
    if (error < 0 && error != MLREG_ENOTFOUND) return error;
    mlreg_error_clear();
    return 1;
}

static int mark(gc_mark *m, mlreg_registry *reg, int64_t grace_s)
{
    mlreg_meta_txn *txn = NULL;
    int64_t now = mlreg_time_now_ns();
    size_t i;
    int error;

    m->cutoff = now - grace_s * NS_PER_SEC;
    if ((error = mlreg_blobstore_foreach(mlreg_registry_blobstore(reg), stored_cb, &m->stored)) < 0)
        return error;
    qsort(m->stored.v, m->stored.n, sizeof(*m->stored.v), blob_digest_cmp);
    if (m->stored.n > 0 && (m->cand = malloc(m->stored.n * sizeof(*m->cand))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory marking blobs");
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) return error;
    if ((error = mlreg_registry__blob_links_foreach(txn, link_cb, &m->stored)) < 0) goto done;
    for (i = 0; i < m->stored.n; i++) {
        if ((error = blob_collectable(m, txn, &m->stored.v[i], now)) < 0) goto done;
        if (error > 0) m->cand[m->ncand++] = &m->stored.v[i];
    }
    error = 0;

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

/* ---- condemn (gc.collect) and record the deletion (gc.done) --------------- */

typedef struct {
    const char *actor;
    int64_t grace_s;
    int64_t cutoff;
    gc_blob **batch; /* live: candidates; replay: from the entry */
    size_t n;
    /* results, reset at each run of the apply function */
    size_t *taken; /* indices into batch */
    size_t ntaken;
    int64_t deadline;
    uint64_t seq;
} collect_change;

/* The blobs of one index prefix ("t", or "q" be64(seq)), collected before
 * their rows change (the walk's cursor must not see its own changes); a
 * "t" walk stops at the first time not before @p before. */
typedef struct {
    int64_t before;
    char (*hex)[MLREG_DIGEST_HEXLEN];
    size_t n, cap;
} idx_walk;

static int idx_walk_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    idx_walk *w = payload;
    const char *k = key;

    (void)val;
    (void)vlen;
    if (klen != IDX_LEN) return mlreg_error_set(MLREG_EIO, "a gc_blobs index key is corrupt");
    if (k[0] == 't' && (int64_t)mlreg_be64_get((const unsigned char *)k + 1) >= w->before) return 1;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        void *h = realloc(w->hex, cap * sizeof(*w->hex));
        if (h == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory walking gc rows");
        w->hex = h;
        w->cap = cap;
    }
    memcpy(w->hex[w->n++], k + 9, MLREG_DIGEST_HEXLEN);
    return 0;
}

/* Walks index prefix @p prefix (@p plen bytes) into @p w. */
static int idx_walk_run(idx_walk *w, mlreg_meta_txn *txn, const char *prefix, size_t plen)
{
    int error = mlreg_meta_iter(txn, MLREG_DB_GC_BLOBS, prefix, plen, NULL, 0, idx_walk_cb, w);

    return error < 0 ? error : 0;
}

/* Drops the rows whose blobs were deleted over GC_ROW_KEEP_NS ago (or whose
 * deadline passed that long ago: the collection that set it stopped). */
static int prune_rows(mlreg_meta_txn *txn, int64_t now)
{
    idx_walk w = {now - GC_ROW_KEEP_NS, NULL, 0, 0};
    char hex[MLREG_DIGEST_HEXLEN + 1];
    gc_row r;
    size_t i;
    int error = idx_walk_run(&w, txn, "t", 1);

    for (i = 0; error >= 0 && i < w.n; i++) {
        memcpy(hex, w.hex[i], MLREG_DIGEST_HEXLEN);
        hex[MLREG_DIGEST_HEXLEN] = '\0';
        if ((error = row_get(&r, txn, hex)) == 0) error = row_del(txn, hex, &r);
    }
    free(w.hex);
    return error < 0 ? error : 0;
}

/* Whether candidate @p b may still go, inside the write transaction. */
static int still_collectable(mlreg_meta_txn *txn, const gc_blob *b, int64_t cutoff, int64_t now)
{
    int64_t newest = 0;
    char hex[MLREG_DIGEST_HEXLEN + 1];
    gc_row r;
    int error;

    mlreg_digest_hex(hex, &b->digest);
    if ((error = mlreg_registry__blob_referenced(txn, hex)) != 0) return error < 0 ? error : 0;
    if ((error = mlreg_registry__blob_links(&newest, txn, hex, 0)) < 0) return error;
    if (newest >= cutoff) return 0;
    if ((error = row_get(&r, txn, hex)) == 0) return !row_busy(&r, now);
    if (error != MLREG_ENOTFOUND) return error;
    mlreg_error_clear();
    return 1;
}

static int collect_record(registry_mutation *mut, collect_change *c)
{
    json_t *blobs = json_array(), *details = NULL;
    char str[MLREG_DIGEST_STRLEN + 1], when[MLREG_TIME_STRLEN];
    mlreg_audit_event ev;
    size_t i;
    int error = 0;

    if (blobs == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a collection");
    for (i = 0; i < c->ntaken; i++) {
        const gc_blob *b = c->batch[c->taken[i]];
        mlreg_digest_format(str, &b->digest);
        if (json_array_append_new(
                blobs, json_pack("{s:s, s:I}", "digest", str, "size", (json_int_t)b->size)) < 0) {
            json_decref(blobs);
            return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a collection");
        }
    }
    mlreg_time_format(when, c->deadline);
    details = json_pack("{s:o, s:s, s:I}", "blobs", blobs, "deadline", when, "grace_seconds",
                        (json_int_t)c->grace_s);
    if (details == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a collection");
    ev = (mlreg_audit_event){.actor = mlreg_registry__actor(c->actor),
                             .action = MLREG_AUDIT_GC_COLLECT,
                             .result = MLREG_AUDIT_OK,
                             .details = details};
    error = mlreg_registry__mutation_record(&c->seq, mut, &ev);
    json_decref(details);
    return error;
}

static int collect_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    collect_change *c = arg;
    const json_t *source = mlreg_registry__mutation_source(mut);
    int64_t now = mlreg_registry__mutation_time(mut);
    gc_row row;
    size_t i;
    int error;

    c->ntaken = 0;
    if (source == NULL) c->deadline = now + GC_LEASE_NS;
    if ((error = mlreg_registry__mutation_next_seq(&row.seq, mut)) < 0) return error;
    row.state = ROW_DELETING;
    row.time = c->deadline;
    for (i = 0; i < c->n; i++) {
        char hex[MLREG_DIGEST_HEXLEN + 1];
        mlreg_digest_hex(hex, &c->batch[i]->digest);
        if (source == NULL) {
            if ((error = still_collectable(txn, c->batch[i], c->cutoff, now)) < 0) return error;
            if (error == 0) continue;
        }
        if ((error = mlreg_registry__blob_links(NULL, txn, hex, 1)) < 0 ||
            (error = row_put(txn, hex, &row)) < 0)
            return error;
        c->taken[c->ntaken++] = i;
    }
    if (c->ntaken == 0) return REGISTRY_MUTATE_NOOP;
    if ((error = prune_rows(txn, now)) < 0) return error;
    return collect_record(mut, c);
}

typedef struct {
    const char *actor;
    uint64_t collect_seq;
    size_t deleted;
    uint64_t bytes;
    size_t not_deleted;
} done_change;

static int done_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    done_change *c = arg;
    idx_walk w = {0, NULL, 0, 0};
    gc_row r = {ROW_DELETED, c->collect_seq, mlreg_registry__mutation_time(mut)};
    json_t *details;
    mlreg_audit_event ev;
    char hex[MLREG_DIGEST_HEXLEN + 1], prefix[9];
    size_t i;
    int error;

    /* the blobs gc.collect entry collect_seq condemned */
    prefix[0] = 'q';
    mlreg_be64_put((unsigned char *)prefix + 1, c->collect_seq);
    error = idx_walk_run(&w, txn, prefix, sizeof(prefix));
    for (i = 0; error >= 0 && i < w.n; i++) {
        memcpy(hex, w.hex[i], MLREG_DIGEST_HEXLEN);
        hex[MLREG_DIGEST_HEXLEN] = '\0';
        error = row_put(txn, hex, &r);
    }
    free(w.hex);
    if (error < 0) return error;
    details = json_pack("{s:I, s:I, s:I, s:I}", "collect_seq", (json_int_t)c->collect_seq,
                        "deleted_blobs", (json_int_t)c->deleted, "bytes_reclaimed",
                        (json_int_t)c->bytes, "not_deleted", (json_int_t)c->not_deleted);
    if (details == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a collection");
    ev = (mlreg_audit_event){.actor = mlreg_registry__actor(c->actor),
                             .action = MLREG_AUDIT_GC_DONE,
                             .result = MLREG_AUDIT_OK,
                             .details = details};
    error = mlreg_registry__mutation_record(NULL, mut, &ev);
    json_decref(details);
    return error;
}

/* ---- the run ---------------------------------------------------------------- */

/* Removes a blob, telling mlreg_registry__blob_put() before and after. */
static int forget_remove(mlreg_registry *reg, const mlreg_digest *digest)
{
    int error;

    mlreg_registry__blob_forget(reg);
    error = mlreg_blobstore_remove(mlreg_registry_blobstore(reg), digest);
    mlreg_registry__blob_forget(reg);
    return error;
}

/* Runs one change of the collection, keeping the longest any took (the
 * time from asking for the write lock to the commit: an upper bound of how
 * long other writers waited on it). */
static int run_change(uint64_t *seq_out, double *ms_max, mlreg_registry *reg,
                      registry_apply_fn apply, void *arg)
{
    int64_t t0 = mlreg_time_now_ns();
    int error = mlreg_registry__mutate(seq_out, mlreg_registry_meta(reg), apply, arg);
    double ms = (double)(mlreg_time_now_ns() - t0) / 1e6;

    if (ms > *ms_max) *ms_max = ms;
    return error;
}

/* The report lists at most this many blobs in "deleted" and in
 * "not_deleted": a collection of 100,000 blobs would otherwise build a
 * report of tens of MB. The full list of a real run is in its gc.collect
 * entries, which name every blob they condemn. */
#define GC_REPORT_LIST_MAX 1000

/* Lists @p b in the report array @p arr, unless it is full. */
static int append_blob(json_t *arr, const gc_blob *b)
{
    char str[MLREG_DIGEST_STRLEN + 1];

    if (json_array_size(arr) >= GC_REPORT_LIST_MAX) return 0;
    mlreg_digest_format(str, &b->digest);
    if (json_array_append_new(
            arr, json_pack("{s:s, s:I}", "digest", str, "size", (json_int_t)b->size)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory reporting a collection");
    return 0;
}

/* The report of one run, filled as it goes. */
typedef struct {
    json_t *deleted, *not_deleted, *entries;
    size_t ndeleted;
    uint64_t bytes;
    double lock_ms_max;
    size_t nnot_deleted;
} gc_tally;

/* Adds to @p report how much of each list it holds: "deleted_listed",
 * "deleted_truncated", "not_deleted_blobs", "not_deleted_truncated". */
static int report_lists(json_t *report, const gc_tally *t)
{
    size_t listed = json_array_size(t->deleted);

    if (json_object_set_new(report, "deleted_listed", json_integer((json_int_t)listed)) < 0 ||
        json_object_set_new(report, "deleted_truncated", json_boolean(listed < t->ndeleted)) < 0 ||
        json_object_set_new(report, "not_deleted_blobs",
                            json_integer((json_int_t)t->nnot_deleted)) < 0 ||
        json_object_set_new(report, "not_deleted_truncated",
                            json_boolean(json_array_size(t->not_deleted) < t->nnot_deleted)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory reporting a collection");
    return 0;
}

/* Deletes the bytes of the blobs batch @p c condemned, then records gc.done. */
static int delete_batch(gc_tally *t, mlreg_registry *reg, const collect_change *c)
{
    done_change d = {c->actor, c->seq, 0, 0, 0};
    uint64_t seq;
    size_t i;
    int error;

    for (i = 0; i < c->ntaken; i++) {
        const gc_blob *b = c->batch[c->taken[i]];
        char str[MLREG_DIGEST_STRLEN + 1];
        const char *why = NULL;

        mlreg_digest_format(str, &b->digest);
        if (mlreg_time_now_ns() > c->deadline - GC_STOP_NS) {
            why = "the batch ran out of time; the next collection deletes it";
        } else if ((error = forget_remove(reg, &b->digest)) == 0 || error == MLREG_ENOTFOUND) {
            mlreg_error_clear();
            d.deleted++;
            if (error == 0) d.bytes += b->size;
            if ((error = append_blob(t->deleted, b)) < 0) return error;
            continue;
        } else {
            why = mlreg_error_last();
        }
        d.not_deleted++;
        if (t->nnot_deleted++ < GC_REPORT_LIST_MAX &&
            json_array_append_new(t->not_deleted,
                                  json_pack("{s:s, s:s}", "digest", str, "error", why)) < 0)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory reporting a collection");
        mlreg_error_clear();
    }
    t->ndeleted += d.deleted;
    t->bytes += d.bytes;
    if ((error = run_change(&seq, &t->lock_ms_max, reg, done_apply, &d)) < 0) return error;
    return json_array_append_new(t->entries, json_integer((json_int_t)seq)) < 0
               ? mlreg_error_set(MLREG_ENOMEM, "out of memory reporting a collection")
               : 0;
}

/* Condemns and deletes the candidates of @p m, GC_BATCH at a time. */
static int sweep(gc_tally *t, mlreg_registry *reg, gc_mark *m, const mlreg_gc_opts *opts)
{
    size_t taken[GC_BATCH], off;
    int error = 0;

    for (off = 0; off < m->ncand; off += GC_BATCH) {
        collect_change c;

        memset(&c, 0, sizeof(c));
        c.actor = opts->actor;
        c.grace_s = opts->grace_seconds;
        c.cutoff = m->cutoff;
        c.batch = m->cand + off;
        c.n = m->ncand - off < GC_BATCH ? m->ncand - off : GC_BATCH;
        c.taken = taken;
        error = run_change(&c.seq, &t->lock_ms_max, reg, collect_apply, &c);
        if (error == REGISTRY_MUTATE_NOOP) continue; /* every one became busy or used */
        if (error < 0) return error;
        if (json_array_append_new(t->entries, json_integer((json_int_t)c.seq)) < 0)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory reporting a collection");
        if ((error = delete_batch(t, reg, &c)) < 0) return error;
    }
    return 0;
}

/* ---- retention ------------------------------------------------------------------ */

/* Purges the releases of @p plan's "purge" list one by one (each its own
 * release.purge change, which checks again that no stage holds it) into
 * *out = {"purged","kept","not_purged"}; the entries' seqs also go to
 * @p entries. A purge that fails (a stage took the release since the
 * plan, another purge was first) is reported with its error and the run
 * goes on. The purges leave the blobs to this collection's mark, which
 * comes next (mlreg_registry__gc_collect_now() sees the gc lock held). */
static int retention_purge(json_t **out, mlreg_registry *reg, const mlreg_gc_opts *opts,
                           const json_t *plan, json_t *entries)
{
    json_t *purged = json_array(), *failed = json_array(), *res = NULL, *item, *one;
    char reason[MLREG_RETENTION_WHY_MAX + 32];
    size_t i;
    int error = 0;

    if (purged == NULL || failed == NULL) goto nomem;
    json_array_foreach(json_object_get(plan, "purge"), i, item)
    {
        const char *model = json_string_value(json_object_get(item, "model"));
        const char *version = json_string_value(json_object_get(item, "version"));
        const char *why = json_string_value(json_object_get(item, "why"));

        snprintf(reason, sizeof(reason), "retention: %s", why);
        error = mlreg_release_purge(&res, reg, opts->policy, opts->who, model, version, reason);
        if (error < 0) {
            one = json_pack("{s:O, s:O, s:O, s:O, s:s}", "model", json_object_get(item, "model"),
                            "version", json_object_get(item, "version"), "digest",
                            json_object_get(item, "digest"), "why", json_object_get(item, "why"),
                            "error", mlreg_error_last());
            mlreg_error_clear();
            if (json_array_append_new(failed, one) < 0) goto nomem;
            continue;
        }
        one = json_pack("{s:O, s:O, s:O, s:O, s:O}", "model", json_object_get(item, "model"),
                        "version", json_object_get(item, "version"), "digest",
                        json_object_get(item, "digest"), "why", json_object_get(item, "why"), "seq",
                        json_object_get(res, "seq"));
        json_decref(res);
        res = NULL;
        if (json_array_append_new(purged, one) < 0 ||
            json_array_append(entries, json_object_get(one, "seq")) < 0)
            goto nomem;
    }
    if ((*out = json_pack("{s:O, s:O, s:O}", "purged", purged, "kept",
                          json_object_get(plan, "kept"), "not_purged", failed)) == NULL)
        goto nomem;
    error = 0;
    goto done;

nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory purging by retention");
done:
    json_decref(purged);
    json_decref(failed);
    return error;
}

/* The retention part of a run, before the mark (retention.h): *out =
 * null without rules; the plan on a dry run; what a real run purged. */
static int retention_step(json_t **out, mlreg_registry *reg, const mlreg_gc_opts *opts,
                          json_t *entries)
{
    json_t *plan = NULL;
    int error;

    if (opts->n_retention == 0) {
        *out = json_null();
        return 0;
    }
    if ((error = mlreg_retention_plan(&plan, reg, opts->retention, opts->n_retention,
                                      mlreg_time_now_ns())) < 0)
        return error;
    if (opts->dry_run) {
        *out = plan;
        return 0;
    }
    error = retention_purge(out, reg, opts, plan, entries);
    json_decref(plan);
    return error;
}

int mlreg_registry_gc(json_t **report_out, mlreg_registry *reg, const mlreg_gc_opts *opts)
{
    gc_mark m;
    gc_tally t = {json_array(), json_array(), json_array(), 0, 0, 0, 0};
    int64_t t0 = mlreg_time_now_ns();
    unsigned int stale = 0;
    pthread_mutex_t *lock = mlreg_registry__gc_lock(reg);
    json_t *report = NULL, *retention = NULL;
    size_t i;
    int error = 0;

    memset(&m, 0, sizeof(m));
    if (t.deleted == NULL || t.not_deleted == NULL || t.entries == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory starting a collection");
        goto out;
    }
    if (opts->n_retention > 0 && !opts->dry_run && (opts->policy == NULL || opts->who == NULL)) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "garbage collection: retention needs the stages and who purges");
        goto out;
    }
    if (opts->grace_seconds < 0 || opts->grace_seconds > 100LL * 365 * 24 * 3600 ||
        opts->stale_upload_seconds <= 0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "garbage collection: a grace period of %lld s "
                                "or a stale upload age of %ld s is out of range",
                                (long long)opts->grace_seconds, opts->stale_upload_seconds);
        goto out;
    }
    if (pthread_mutex_trylock(lock) != 0) {
        error = mlreg_error_set(MLREG_EEXISTS, "a garbage collection is running already");
        goto out;
    }
    gc_lock_held = 1;
    if ((error = retention_step(&retention, reg, opts, t.entries)) < 0) goto unlock;
    /* a dry run lists what the purges it plans would free too */
    if (opts->dry_run && (error = drop_from_plan(&m, reg, retention)) < 0) goto unlock;
    if ((error = mlreg_blobstore_sweep_stale(&stale, mlreg_registry_blobstore(reg),
                                             opts->stale_upload_seconds, opts->dry_run)) < 0 ||
        (error = mark(&m, reg, opts->grace_seconds)) < 0)
        goto unlock;
    if (opts->dry_run) {
        for (i = 0; i < m.ncand; i++) {
            if ((error = append_blob(t.deleted, m.cand[i])) < 0) goto unlock;
            t.ndeleted++;
            t.bytes += m.cand[i]->size;
        }
    } else if ((error = sweep(&t, reg, &m, opts)) < 0) {
        goto unlock;
    }
    report = json_pack(
        "{s:b, s:I, s:I, s:I, s:I, s:I, s:O, s:I, s:I, s:O, s:I, s:O, s:f, s:f, s:O}", "dry_run",
        opts->dry_run, "grace_seconds", (json_int_t)opts->grace_seconds, "blobs_stored",
        (json_int_t)m.stored.n, "blobs_referenced", (json_int_t)m.referenced, "blobs_young",
        (json_int_t)m.young, "blobs_busy", (json_int_t)m.busy, "deleted", t.deleted,
        "deleted_blobs", (json_int_t)t.ndeleted, "bytes_reclaimed", (json_int_t)t.bytes,
        "not_deleted", t.not_deleted, "stale_uploads", (json_int_t)stale, "entries", t.entries,
        "write_lock_ms_max", t.lock_ms_max, "seconds", (double)(mlreg_time_now_ns() - t0) / 1e9,
        "retention", retention);
    if (report == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory reporting a collection");
    else
        error = report_lists(report, &t);

unlock:
    gc_lock_held = 0;
    pthread_mutex_unlock(lock);
out:
    mark_free(&m);
    json_decref(retention);
    json_decref(t.deleted);
    json_decref(t.not_deleted);
    json_decref(t.entries);
    if (error < 0) {
        json_decref(report);
        return error;
    }
    *report_out = report;
    return 0;
}

/* ---- the blobs a purge left behind ----------------------------------------- */

int mlreg_registry__gc_collect_now(json_t **report_out, mlreg_registry *reg, const char *const *hex,
                                   size_t n, const char *actor)
{
    gc_mark m;
    gc_tally t = {json_array(), json_array(), json_array(), 0, 0, 0, 0};
    mlreg_gc_opts opts = {.stale_upload_seconds = MLREG_GC_STALE_UPLOAD_DEFAULT, .actor = actor};
    pthread_mutex_t *lock = mlreg_registry__gc_lock(reg);
    json_t *report = NULL;
    size_t i;
    int error = 0, locked = 0;

    memset(&m, 0, sizeof(m));
    if (t.deleted == NULL || t.not_deleted == NULL || t.entries == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory collecting blobs");
        goto out;
    }
    /* inside mlreg_registry_gc() (retention): its own mark comes next */
    if (!gc_lock_held) {
        pthread_mutex_lock(lock);
        gc_lock_held = locked = 1;
        if (n > 0 && ((m.stored.v = calloc(n, sizeof(*m.stored.v))) == NULL ||
                      (m.cand = malloc(n * sizeof(*m.cand))) == NULL)) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory collecting blobs");
            goto out;
        }
        m.cutoff = mlreg_time_now_ns();
        for (i = 0; i < n; i++) {
            gc_blob *b = &m.stored.v[m.stored.n];
            if ((error = mlreg_digest_parse_hex(&b->digest, hex[i], strlen(hex[i]))) < 0) goto out;
            error = mlreg_blobstore_stat(&b->size, mlreg_registry_blobstore(reg), &b->digest);
            if (error == MLREG_ENOTFOUND) {
                mlreg_error_clear();
                continue; /* not stored (quarantined, or gone already) */
            }
            if (error < 0) goto out;
            m.cand[m.ncand++] = b;
            m.stored.n++;
        }
        if ((error = sweep(&t, reg, &m, &opts)) < 0) goto out;
    }
    report = json_pack("{s:b, s:O, s:I, s:I, s:O, s:O}", "deferred", !locked, "deleted", t.deleted,
                       "deleted_blobs", (json_int_t)t.ndeleted, "bytes_reclaimed",
                       (json_int_t)t.bytes, "not_deleted", t.not_deleted, "entries", t.entries);
    if (report == NULL) error = mlreg_error_set(MLREG_ENOMEM, "out of memory collecting blobs");

out:
    if (locked) {
        gc_lock_held = 0;
        pthread_mutex_unlock(lock);
    }
    mark_free(&m);
    json_decref(t.deleted);
    json_decref(t.not_deleted);
    json_decref(t.entries);
    if (error < 0) {
        json_decref(report);
        return error;
    }
    *report_out = report;
    return 0;
}

/* ---- replay ------------------------------------------------------------------ */

static int replay_collect(mlreg_registry *reg, const json_t *entry, const char *text, size_t len)
{
    const json_t *details = json_object_get(entry, "details");
    const json_t *blobs = json_object_get(details, "blobs"), *b;
    const char *when = json_string_value(json_object_get(details, "deadline"));
    collect_change c;
    gc_blob *v = NULL;
    int64_t sec;
    int32_t nsec;
    size_t i, n = json_array_size(blobs);
    int error = 0;

    memset(&c, 0, sizeof(c));
    if (!json_is_array(blobs) || n == 0 || n > GC_BATCH || when == NULL ||
        mlreg_time_parse(&sec, &nsec, when) < 0 ||
        !json_is_integer(json_object_get(details, "grace_seconds")))
        return mlreg_error_set(MLREG_EINVALID, "audit entry %lld of gc.collect lacks its blobs",
                               (long long)json_integer_value(json_object_get(entry, "seq")));
    v = calloc(n, sizeof(*v));
    c.batch = calloc(n, sizeof(*c.batch));
    c.taken = calloc(n, sizeof(*c.taken));
    if (v == NULL || c.batch == NULL || c.taken == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory replaying a collection");
        goto done;
    }
    json_array_foreach(blobs, i, b)
    {
        const char *d = json_string_value(json_object_get(b, "digest"));
        json_t *size = json_object_get(b, "size");
        if (d == NULL || mlreg_digest_parse(&v[i].digest, d) < 0 || !json_is_integer(size) ||
            json_integer_value(size) < 0) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "audit entry %lld of gc.collect names a "
                                    "malformed blob",
                                    (long long)json_integer_value(json_object_get(entry, "seq")));
            goto done;
        }
        v[i].size = (uint64_t)json_integer_value(size);
        c.batch[i] = &v[i];
    }
    c.actor = json_string_value(json_object_get(entry, "actor"));
    c.grace_s = json_integer_value(json_object_get(details, "grace_seconds"));
    c.n = n;
    c.deadline = sec * NS_PER_SEC + nsec;
    error = mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len, collect_apply,
                                          &c);

done:
    free(v);
    free(c.batch);
    free(c.taken);
    return error;
}

static int replay_done(mlreg_registry *reg, const json_t *entry, const char *text, size_t len)
{
    const json_t *details = json_object_get(entry, "details");
    static const char *const keys[] = {"collect_seq", "deleted_blobs", "bytes_reclaimed",
                                       "not_deleted"};
    json_int_t v[4];
    done_change d;
    size_t i;

    for (i = 0; i < 4; i++) {
        json_t *j = json_object_get(details, keys[i]);
        if (!json_is_integer(j) || (v[i] = json_integer_value(j)) < 0)
            return mlreg_error_set(MLREG_EINVALID, "audit entry %lld of gc.done lacks '%s'",
                                   (long long)json_integer_value(json_object_get(entry, "seq")),
                                   keys[i]);
    }
    d = (done_change){json_string_value(json_object_get(entry, "actor")), (uint64_t)v[0],
                      (size_t)v[1], (uint64_t)v[2], (size_t)v[3]};
    return mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len, done_apply,
                                         &d);
}

int mlreg_registry__replay_gc(mlreg_registry *reg, const json_t *entry, const char *text,
                              size_t len)
{
    const char *action = json_string_value(json_object_get(entry, "action"));

    if (action != NULL && !strcmp(action, MLREG_AUDIT_GC_COLLECT))
        return replay_collect(reg, entry, text, len);
    return replay_done(reg, entry, text, len);
}
