/* scrub.c: re-hashing the blob store (include/mlreg/scrub.h).
 *
 * Three steps, so that no transaction is open while bytes are read:
 *
 * 1. What the metadata expects, from one read transaction, copied out: each
 *    manifest's own bytes (stored as a blob when it was pushed; the
 *    registry's signature and attestation referrers are kept in LMDB only),
 *    the blobs its descriptors name, every blob linked into a repository,
 *    and for each release the blobs it uses (its manifest, config, files,
 *    and the config and layers of its referrers: signatures, attestation
 *    envelopes). The tables are read over registry.c's key layout, through
 *    mlreg_registry__key(). Each use is one row (digest, release, in
 *    scope); the rows are sorted by digest and merged.
 * 2. What to read: every stored blob (the store's foreach), or, for one
 *    model, every blob in its scope (a stat each). A blob in scope that the
 *    store lacks is missing.
 * 3. Reading: each blob is streamed through SHA-256 in 1 MiB reads (memory
 *    does not grow with its size), at most the rate asked for, and
 *    quarantined when its digest differs. A blob that vanished meanwhile
 *    (a concurrent delete) is missing if the metadata expects it, else
 *    skipped.
 *
 * The trap: a push that repairs a blob between step 3's read and its
 * quarantine would see its good copy moved aside. The result is a 404 and
 * one more upload at the next push, never a wrong byte served, so no lock
 * is taken against it.
 *
 * The audit entry (action "scrub") changes no table: it is there so the
 * damage, and what was done about it, is in the log. Its replay records it
 * again from its details. */
#include "mlreg/scrub.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlreg/common.h"
#include "mlreg/manifest.h"
#include "mlreg/tables.h"
#include "registry_internal.h"

#define READ_CHUNK (1u << 20)
/* longest wait between two looks at should_stop while rate limited */
#define STOP_POLL_NS 50000000L

/* One use of a blob: by a release (rel >= 0, an index into names) or by
 * the metadata of a repository (rel -1). */
typedef struct {
    mlreg_digest d;
    int rel;
    int in_scope;
} use_row;

typedef struct {
    use_row *rows;
    size_t n, cap;
    json_t *names; /* "M@V" strings, indexed by use_row.rel */
} uses;

/* One blob to look at, merged from its uses. */
typedef struct {
    mlreg_digest d;
    size_t first, count; /* its rows in the sorted uses */
    int in_scope;
    int stored; /* found by the listing (unscoped) */
} blob_ref;

static int uses_add(uses *u, const mlreg_digest *d, int rel, int in_scope)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 256;
        use_row *p = realloc(u->rows, cap * sizeof(*p));
        if (p == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing blob uses");
        u->rows = p;
        u->cap = cap;
    }
    u->rows[u->n].d = *d;
    u->rows[u->n].rel = rel;
    u->rows[u->n].in_scope = in_scope;
    u->n++;
    return 0;
}

/* Adds the config and layers of manifest @p m (and its own digest @p own
 * unless NULL) as uses. */
static int uses_add_manifest(uses *u, const mlreg_manifest *m, const mlreg_digest *own, int rel,
                             int in_scope)
{
    int error;

    if (own != NULL && (error = uses_add(u, own, rel, in_scope)) < 0) return error;
    if (m->has_config && (error = uses_add(u, &m->config.digest, rel, in_scope)) < 0) return error;
    for (size_t i = 0; i < m->nlayers; i++)
        if ((error = uses_add(u, &m->layers[i].digest, rel, in_scope)) < 0) return error;
    return 0;
}

/* Parses manifest @p hex of @p repo as stored in @p txn into *out (NULL
 * when the manifest row is gone or does not parse: a scrub checks blobs,
 * and a manifest row it cannot read names none). */
static int load_manifest(mlreg_manifest **out, mlreg_meta_txn *txn, const char *repo,
                         const mlreg_digest *d)
{
    mlreg_manifest_data *md = NULL;
    int error;

    *out = NULL;
    if ((error = mlreg_registry__manifest_load_txn(&md, txn, repo, d)) < 0)
        return error == MLREG_ENOMEM ? error : 0;
    if (mlreg_manifest_parse(out, md->content_type, md->body, md->len) < 0) *out = NULL;
    mlreg_manifest_data_free(md);
    return 0;
}

typedef struct {
    uses *u;
    mlreg_meta_txn *txn;
    const char *scope; /* model, or NULL */
    int rel;           /* release being walked */
    const char *repo;  /* ... and its repository */
} walk;

/* Splits key "a\0b" or "a\0b\0c" (registry.c's layout) into its parts,
 * copied into @p buf; returns how many parts, 0 when malformed. */
static int key_parts(const char *parts[3], char *buf, size_t cap, const void *key, size_t klen)
{
    int n = 1;

    if (klen == 0 || klen >= cap) return 0;
    memcpy(buf, key, klen);
    buf[klen] = '\0';
    parts[0] = buf;
    for (size_t i = 0; i < klen && n < 3; i++)
        if (buf[i] == '\0') parts[n++] = buf + i + 1;
    return n;
}

/* referrers: repo \0 subject-hex \0 hex -> descriptor. Each referrer of a
 * release (signature, attestation, or another OCI artifact) is used by it. */
static int referrer_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    walk *w = payload;
    const char *parts[3];
    char buf[REGISTRY_KEY_CAP + 1];
    mlreg_digest d;
    mlreg_manifest *m = NULL;
    int error;

    (void)val;
    (void)vlen;
    if (key_parts(parts, buf, sizeof(buf), key, klen) != 3 ||
        mlreg_digest_parse_hex(&d, parts[2], strlen(parts[2])) < 0)
        return 0;
    if ((error = load_manifest(&m, w->txn, w->repo, &d)) < 0 || m == NULL) return error;
    error = uses_add_manifest(w->u, m, mlreg_registry__manifest_made_here(m) ? NULL : &d, w->rel,
                              w->scope == NULL || !strcmp(w->scope, w->repo));
    mlreg_manifest_free(m);
    return error;
}

/* releases: model \0 version -> record. */
static int release_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    walk *w = payload;
    const char *parts[3], *rd;
    char buf[REGISTRY_KEY_CAP + 1], pkey[REGISTRY_KEY_CAP], rhex[MLREG_DIGEST_HEXLEN + 1];
    json_t *rec = NULL, *name = NULL;
    mlreg_digest d;
    mlreg_manifest *m = NULL;
    int error = 0, in_scope;

    if (key_parts(parts, buf, sizeof(buf), key, klen) != 2) return 0;
    if ((rec = json_loadb(val, vlen, 0, NULL)) == NULL) return 0;
    rd = json_string_value(json_object_get(rec, "digest"));
    if (rd == NULL || mlreg_digest_parse(&d, rd) < 0) goto done;
    if ((name = json_sprintf("%s@%s", parts[0], parts[1])) == NULL ||
        json_array_append_new(w->u->names, name) < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
        goto done;
    }
    w->rel = (int)json_array_size(w->u->names) - 1;
    w->repo = parts[0];
    in_scope = w->scope == NULL || !strcmp(w->scope, parts[0]);
    if ((error = uses_add(w->u, &d, w->rel, in_scope)) < 0) goto done;
    if ((error = load_manifest(&m, w->txn, parts[0], &d)) < 0) goto done;
    if (m != NULL && (error = uses_add_manifest(w->u, m, NULL, w->rel, in_scope)) < 0) goto done;
    mlreg_digest_hex(rhex, &d);
    error = mlreg_meta_iter(w->txn, MLREG_DB_REFERRERS, pkey,
                            mlreg_registry__key(pkey, parts[0], rhex, ""), NULL, 0, referrer_cb, w);

done:
    mlreg_manifest_free(m);
    json_decref(rec);
    return error;
}

/* manifests: repo \0 hex -> content-type \0 body. */
static int manifest_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    walk *w = payload;
    const char *parts[3];
    char buf[REGISTRY_KEY_CAP + 1];
    mlreg_digest d;
    mlreg_manifest *m = NULL;
    int error;

    (void)val;
    (void)vlen;
    if (key_parts(parts, buf, sizeof(buf), key, klen) != 2 ||
        mlreg_digest_parse_hex(&d, parts[1], strlen(parts[1])) < 0)
        return 0;
    if ((error = load_manifest(&m, w->txn, parts[0], &d)) < 0 || m == NULL) return error;
    error = uses_add_manifest(w->u, m, mlreg_registry__manifest_made_here(m) ? NULL : &d, -1,
                              w->scope == NULL || !strcmp(w->scope, parts[0]));
    mlreg_manifest_free(m);
    return error;
}

/* repo_blobs: repo \0 hex -> the link's time (registry.c). */
static int link_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    walk *w = payload;
    const char *parts[3];
    char buf[REGISTRY_KEY_CAP + 1];
    mlreg_digest d;

    (void)val;
    (void)vlen;
    if (key_parts(parts, buf, sizeof(buf), key, klen) != 2 ||
        mlreg_digest_parse_hex(&d, parts[1], strlen(parts[1])) < 0)
        return 0;
    return uses_add(w->u, &d, -1, w->scope == NULL || !strcmp(w->scope, parts[0]));
}

/* Step 1 (see the file comment). */
static int collect_uses(uses *u, mlreg_registry *reg, const char *scope)
{
    mlreg_meta_txn *txn = NULL;
    walk w = {u, NULL, scope, -1, NULL};
    char pkey[REGISTRY_KEY_CAP];
    size_t plen = 0;
    int error;

    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    w.txn = txn;
    if (scope != NULL) {
        if ((error = mlreg_registry__repo_require(txn, scope)) < 0) goto done;
        plen = mlreg_registry__key(pkey, scope, "", NULL);
    }
    /* every release, in scope or not: a blob is named with all its users */
    if ((error = mlreg_meta_iter(txn, MLREG_DB_RELEASES, NULL, 0, NULL, 0, release_cb, &w)) < 0 ||
        (error = mlreg_meta_iter(txn, MLREG_DB_MANIFESTS, pkey, plen, NULL, 0, manifest_cb, &w)) <
            0 ||
        (error = mlreg_meta_iter(txn, MLREG_DB_REPO_BLOBS, pkey, plen, NULL, 0, link_cb, &w)) < 0)
        goto done;
    error = 0;

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

static int row_cmp(const void *a, const void *b)
{
    const use_row *x = a, *y = b;
    int c = memcmp(x->d.raw, y->d.raw, sizeof(x->d.raw));

    if (c != 0) return c;
    return (x->rel > y->rel) - (x->rel < y->rel);
}

static int ref_cmp(const void *a, const void *b)
{
    return memcmp(((const blob_ref *)a)->d.raw, ((const blob_ref *)b)->d.raw,
                  sizeof(((const blob_ref *)a)->d.raw));
}

/* Sorts the uses and merges them into one blob_ref per digest (*out). */
static int merge_uses(blob_ref **out, size_t *n_out, uses *u)
{
    blob_ref *refs = NULL;
    size_t n = 0;

    if (u->n > 0) qsort(u->rows, u->n, sizeof(*u->rows), row_cmp);
    if (u->n > 0 && (refs = calloc(u->n, sizeof(*refs))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing blobs");
    for (size_t i = 0; i < u->n; i++) {
        if (n == 0 || !mlreg_digest_equal(&refs[n - 1].d, &u->rows[i].d)) {
            refs[n].d = u->rows[i].d;
            refs[n].first = i;
            n++;
        }
        refs[n - 1].count++;
        refs[n - 1].in_scope |= u->rows[i].in_scope;
    }
    *out = refs;
    *n_out = n;
    return 0;
}

static blob_ref *ref_find(blob_ref *refs, size_t n, const mlreg_digest *d)
{
    blob_ref key;

    if (n == 0) return NULL;
    memset(&key, 0, sizeof(key));
    key.d = *d;
    return bsearch(&key, refs, n, sizeof(*refs), ref_cmp);
}

/* The releases that use @p r, each once, at most MLREG_SCRUB_RELEASES_MAX,
 * into @p item ("releases", "more_releases"). */
static int add_releases(json_t *item, const uses *u, const blob_ref *r)
{
    json_t *arr = json_array();
    size_t named = 0, more = 0;
    int last = -1;

    if (arr == NULL || json_object_set_new(item, "releases", arr) < 0) goto nomem;
    for (size_t i = r != NULL ? r->first : 0; r != NULL && i < r->first + r->count; i++) {
        int rel = u->rows[i].rel;
        if (rel < 0 || rel == last) continue; /* rows are sorted: repeats are adjacent */
        last = rel;
        if (named == MLREG_SCRUB_RELEASES_MAX) {
            more++;
            continue;
        }
        if (json_array_append(arr, json_array_get(u->names, (size_t)rel)) < 0) goto nomem;
        named++;
    }
    if (more > 0 && json_object_set_new(item, "more_releases", json_integer((json_int_t)more)) < 0)
        goto nomem;
    return 0;
nomem:
    return mlreg_error_set(MLREG_ENOMEM, "out of memory building the scrub report");
}

/* ---- step 2: what the store holds ----------------------------------------- */

typedef struct {
    mlreg_digest *d;
    size_t n, cap;
} digest_list;

static int list_add(const mlreg_digest *d, uint64_t size, int64_t modified, void *payload)
{
    digest_list *l = payload;

    (void)size;
    (void)modified;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        mlreg_digest *p = realloc(l->d, cap * sizeof(*p));
        if (p == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing blobs");
        l->d = p;
        l->cap = cap;
    }
    l->d[l->n++] = *d;
    return 0;
}

/* ---- step 3: reading ------------------------------------------------------- */

typedef struct {
    mlreg_registry *reg;
    const mlreg_scrub_opts *o;
    const uses *u;
    blob_ref *refs;
    size_t nrefs;
    unsigned char *buf;
    struct timespec start;
    uint64_t checked, bytes, quarantined;
    int stopped;
    json_t *corrupt, *missing;
} scrub_run;

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static int want_stop(scrub_run *s)
{
    if (!s->stopped && s->o->should_stop != NULL && s->o->should_stop(s->o->stop_payload))
        s->stopped = 1;
    return s->stopped;
}

/* Waits until the bytes read so far fit the rate, looking at should_stop
 * at least every STOP_POLL_NS. */
static void pace(scrub_run *s)
{
    uint64_t rate = s->o->rate_bytes_per_second;

    if (rate == 0) return;
    for (;;) {
        double ahead = (double)s->bytes / (double)rate - seconds_since(&s->start);
        struct timespec ts;
        if (ahead <= 0 || want_stop(s)) return;
        if (ahead > (double)STOP_POLL_NS / 1e9) ahead = (double)STOP_POLL_NS / 1e9;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)(ahead * 1e9) + 1;
        nanosleep(&ts, NULL);
    }
}

static int add_missing(scrub_run *s, const mlreg_digest *d, const blob_ref *r)
{
    char str[MLREG_DIGEST_STRLEN + 1];
    json_t *item;

    mlreg_digest_format(str, d);
    if ((item = json_pack("{s:s}", "digest", str)) == NULL ||
        json_array_append_new(s->missing, item) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory building the scrub report");
    return add_releases(item, s->u, r);
}

/* Hashes blob @p d; *got receives the digest of its bytes. 0; 1 when the
 * blob is not stored; or the read's error. */
static int hash_blob(mlreg_digest *got, scrub_run *s, const mlreg_digest *d)
{
    mlreg_blob_reader *r = NULL;
    mlreg_hasher *h = NULL;
    int error = 0;
    ssize_t n;

    if ((error = mlreg_blobstore_open_read(&r, NULL, mlreg_registry_blobstore(s->reg), d)) < 0) {
        if (error == MLREG_ENOTFOUND) error = 1;
        goto done;
    }
    if ((error = mlreg_hasher_new(&h)) < 0) goto done;
    for (;;) {
        if (want_stop(s)) goto done;
        if ((n = mlreg_blob_reader_read(r, s->buf, READ_CHUNK)) < 0) {
            error = (int)n;
            goto done;
        }
        if (n == 0) break;
        if ((error = mlreg_hasher_update(h, s->buf, (size_t)n)) < 0) goto done;
        s->bytes += (uint64_t)n;
        pace(s);
    }
    error = mlreg_hasher_final(got, h);

done:
    mlreg_hasher_free(h);
    mlreg_blob_reader_free(r);
    return error;
}

/* Reads one blob and records what is wrong with it. Errors only for what
 * stops the scrub (out of memory); a blob that cannot be read is a
 * finding. */
static int check_blob(scrub_run *s, const mlreg_digest *d)
{
    blob_ref *r = ref_find(s->refs, s->nrefs, d);
    char str[MLREG_DIGEST_STRLEN + 1], qname[MLREG_BLOB_QUARANTINE_NAME_MAX], why[512];
    mlreg_digest got;
    json_t *item = NULL;
    int error, bad;

    if ((error = hash_blob(&got, s, d)) == 1) /* gone since it was listed */
        return r != NULL && r->in_scope ? add_missing(s, d, r) : 0;
    if (s->stopped) return 0;
    if (error == MLREG_ENOMEM) return error;
    s->checked++;
    bad = error < 0;
    if (bad) snprintf(why, sizeof(why), "%s", mlreg_error_last());
    if (!bad && mlreg_digest_equal(&got, d)) return 0;

    mlreg_digest_format(str, d);
    if ((item = json_pack("{s:s, s:b}", "digest", str, "quarantined", 0)) == NULL ||
        json_array_append_new(s->corrupt, item) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory building the scrub report");
    if ((error = add_releases(item, s->u, r)) < 0) return error;
    if (bad) return json_object_set_new(item, "error", json_string(why)) < 0 ? MLREG_ENOMEM : 0;
    if (s->o->dry_run) return 0;
    mlreg_registry__blob_forget(s->reg); /* registry.c: blob_put must write it again */
    error = mlreg_blobstore_quarantine(qname, mlreg_registry_blobstore(s->reg), d, 0);
    mlreg_registry__blob_forget(s->reg);
    if (error < 0) {
        /* the finding stands; the failure to move it is part of it */
        return json_object_set_new(item, "error", json_string(mlreg_error_last())) < 0
                   ? MLREG_ENOMEM
                   : 0;
    }
    s->quarantined++;
    if (json_object_set_new(item, "quarantined", json_true()) < 0 ||
        json_object_set_new(item, "quarantine", json_string(qname)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory building the scrub report");
    return 0;
}

/* ---- the audit entry --------------------------------------------------------- */

typedef struct {
    const char *actor;
    const char *model;
    json_t *details; /* borrowed */
} scrub_change;

static int scrub_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    const scrub_change *c = arg;
    mlreg_audit_event ev = {.actor = mlreg_registry__actor(c->actor),
                            .action = MLREG_AUDIT_SCRUB,
                            .result = MLREG_AUDIT_OK,
                            .model = c->model,
                            .details = c->details};

    (void)txn;
    return mlreg_registry__mutation_record(NULL, mut, &ev);
}

/* The digests of @p items (report entries), at most MLREG_SCRUB_AUDIT_DIGESTS. */
static json_t *digests_of(const json_t *items)
{
    json_t *arr = json_array(), *it;
    size_t i;

    if (arr == NULL) return NULL;
    json_array_foreach(items, i, it)
    {
        if (i == MLREG_SCRUB_AUDIT_DIGESTS) break;
        if (json_array_append(arr, json_object_get(it, "digest")) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static int record_scrub(scrub_run *s)
{
    scrub_change c = {s->o->actor, s->o->model, NULL};
    int error;

    c.details = json_pack(
        "{s:I, s:I, s:I, s:o, s:I, s:o, s:I, s:b, s:b}", "checked", (json_int_t)s->checked, "bytes",
        (json_int_t)s->bytes, "corrupt_count", (json_int_t)json_array_size(s->corrupt), "corrupt",
        digests_of(s->corrupt), "missing_count", (json_int_t)json_array_size(s->missing), "missing",
        digests_of(s->missing), "quarantined", (json_int_t)s->quarantined, "dry_run",
        s->o->dry_run != 0, "stopped", s->stopped);
    if (c.details == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a scrub");
    error = mlreg_registry__run(s->reg, scrub_apply, &c);
    json_decref(c.details);
    return error;
}

int mlreg_registry__replay_scrub(mlreg_registry *reg, const json_t *entry, const char *text,
                                 size_t len)
{
    scrub_change c;

    c.actor = json_string_value(json_object_get(entry, "actor"));
    c.model = json_string_value(json_object_get(json_object_get(entry, "subject"), "model"));
    c.details = json_object_get(entry, "details");
    if (!json_is_object(c.details))
        return mlreg_error_set(MLREG_EINVALID, "audit entry %lld of scrub lacks its details",
                               (long long)json_integer_value(json_object_get(entry, "seq")));
    return mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len, scrub_apply,
                                         &c);
}

/* ---- the whole -------------------------------------------------------------- */

int mlreg_scrub_report_found(const json_t *report)
{
    return json_array_size(json_object_get(report, "corrupt")) > 0 ||
           json_array_size(json_object_get(report, "missing")) > 0;
}

/* One scrub at a time in a process: two would read the store twice as
 * hard and race to quarantine the same blob. */
static atomic_flag scrub_running = ATOMIC_FLAG_INIT;

static int scrub_once(json_t **out, mlreg_registry *reg, const mlreg_scrub_opts *opts);

int mlreg_registry_scrub(json_t **out, mlreg_registry *reg, const mlreg_scrub_opts *opts)
{
    int error;

    if (atomic_flag_test_and_set(&scrub_running))
        return mlreg_error_set(MLREG_EUNAVAILABLE, "a scrub is already running; try again later");
    error = scrub_once(out, reg, opts);
    atomic_flag_clear(&scrub_running);
    return error;
}

static int scrub_once(json_t **out, mlreg_registry *reg, const mlreg_scrub_opts *opts)
{
    static const mlreg_scrub_opts none;
    const mlreg_scrub_opts *o = opts != NULL ? opts : &none;
    uses u = {NULL, 0, 0, NULL};
    digest_list stored = {NULL, 0, 0};
    scrub_run s;
    json_t *report = NULL;
    int error = 0;

    memset(&s, 0, sizeof(s));
    s.reg = reg;
    s.o = o;
    s.u = &u;
    clock_gettime(CLOCK_MONOTONIC, &s.start);
    if (o->model != NULL && (error = mlreg_name_validate(o->model)) < 0) goto done;
    if ((u.names = json_array()) == NULL || (s.corrupt = json_array()) == NULL ||
        (s.missing = json_array()) == NULL || (s.buf = malloc(READ_CHUNK)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory starting a scrub");
        goto done;
    }
    if ((error = collect_uses(&u, reg, o->model)) < 0) goto done;
    if ((error = merge_uses(&s.refs, &s.nrefs, &u)) < 0) goto done;

    if (o->model == NULL) {
        /* every stored blob is read; what the metadata expects and the
         * listing lacks is missing */
        if ((error = mlreg_blobstore_foreach(mlreg_registry_blobstore(reg), list_add, &stored)) < 0)
            goto done;
        for (size_t i = 0; i < stored.n && !want_stop(&s); i++) {
            blob_ref *r = ref_find(s.refs, s.nrefs, &stored.d[i]);
            if (r != NULL) r->stored = 1;
            if ((error = check_blob(&s, &stored.d[i])) < 0) goto done;
        }
        for (size_t i = 0; i < s.nrefs && !s.stopped; i++) {
            int there;
            if (s.refs[i].stored || !s.refs[i].in_scope) continue;
            /* stored after the listing was taken? */
            if ((there = mlreg_blobstore_exists(mlreg_registry_blobstore(reg), &s.refs[i].d)) < 0) {
                error = there;
                goto done;
            }
            if (!there && (error = add_missing(&s, &s.refs[i].d, &s.refs[i])) < 0) goto done;
        }
    } else {
        for (size_t i = 0; i < s.nrefs && !want_stop(&s); i++)
            if (s.refs[i].in_scope && (error = check_blob(&s, &s.refs[i].d)) < 0) goto done;
    }

    report =
        json_pack("{s:s?, s:b, s:b, s:I, s:I, s:f, s:I, s:O, s:O}", "model", o->model, "dry_run",
                  o->dry_run != 0, "stopped", s.stopped, "checked", (json_int_t)s.checked, "bytes",
                  (json_int_t)s.bytes, "seconds", seconds_since(&s.start), "quarantined",
                  (json_int_t)s.quarantined, "corrupt", s.corrupt, "missing", s.missing);
    if (report == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building the scrub report");
        goto done;
    }
    if (mlreg_scrub_report_found(report) && (error = record_scrub(&s)) < 0) goto done;

done:
    if (error < 0) {
        json_decref(report);
        report = NULL;
    }
    free(stored.d);
    free(s.refs);
    free(s.buf);
    free(u.rows);
    json_decref(u.names);
    json_decref(s.corrupt);
    json_decref(s.missing);
    if (error < 0) return error;
    *out = report;
    return 0;
}
