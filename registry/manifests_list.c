/* manifests_list.c: the paged listings of a repository's tags and of a
 * manifest's referrers (include/mlreg/registry.h), read in one read
 * transaction over the key layout of registry.c (registry_internal.h). The
 * walk starts at the last item of the previous page and skips it. */
#include "mlreg/registry.h"

#include "mlreg/common.h"
#include "mlreg/oci.h"
#include "mlreg/tables.h"
#include "registry_internal.h"

#include <stdio.h>
#include <string.h>

/* A page of names (tags, repositories): at most n (n < 0: all), "more"
 * set when a name is left over. */
typedef struct {
    int n;
    int count;
    int more;
    json_t *names;
} name_page;

/* 1: the page is full (more set); 0: added; or MLREG_ENOMEM. */
static int page_add(name_page *pg, const char *name, size_t len)
{
    if (pg->n >= 0 && pg->count >= pg->n) {
        pg->more = 1;
        return 1;
    }
    if (json_array_append_new(pg->names, json_stringn(name, len)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing names");
    pg->count++;
    return 0;
}

/* A page of tags merged with @p extra names (sorted, each once): every name
 * goes through page_add in lexical order, so n and the "more" flag count the
 * merged list. A name that is both a tag and an extra is listed once. */
typedef struct {
    size_t plen;
    const char *last;
    const char *const *extra;
    size_t n_extra, next_extra;
    name_page page;
} tag_page;

/* Compares @p a (NUL-terminated) with the @p blen bytes at @p b as strcmp does. */
static int name_cmp(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0) return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

static int tag_page_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    tag_page *pg = payload;
    const char *tag = (const char *)key + pg->plen;
    size_t tlen = klen - pg->plen;
    int r;

    (void)val;
    (void)vlen;
    if (pg->last != NULL && strlen(pg->last) == tlen && memcmp(pg->last, tag, tlen) == 0)
        return 0; /* the walk starts at `last`; the page starts after it */
    while (pg->next_extra < pg->n_extra) {
        const char *x = pg->extra[pg->next_extra];
        int c = name_cmp(x, tag, tlen);
        if (c > 0) break;
        pg->next_extra++;
        if (c == 0) break; /* the tag itself is added below, once */
        if ((r = page_add(&pg->page, x, strlen(x))) != 0) return r;
    }
    return page_add(&pg->page, tag, tlen);
}

int mlreg_registry__tags_page(json_t **out, int *more_out, mlreg_meta_txn *txn, const char *repo,
                              int n, const char *last, const char *const *extra, size_t n_extra)
{
    int error = 0;
    char prefix[REGISTRY_KEY_CAP], start[REGISTRY_KEY_CAP];
    size_t slen = 0;
    tag_page pg;
    json_t *res = NULL;

    memset(&pg, 0, sizeof(pg));
    pg.page.n = n;
    pg.last = last;
    pg.extra = extra;
    pg.n_extra = n_extra;
    /* extras at or before `last` were on earlier pages */
    while (last != NULL && pg.next_extra < n_extra && strcmp(extra[pg.next_extra], last) <= 0)
        pg.next_extra++;
    if ((pg.page.names = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing tags");
        goto done;
    }
    pg.plen = mlreg_registry__key(prefix, repo, "", NULL);
    if (last != NULL) slen = mlreg_registry__key(start, repo, last, NULL);
    error = mlreg_meta_iter(txn, MLREG_DB_TAGS, prefix, pg.plen, last ? start : NULL, slen,
                            tag_page_cb, &pg);
    if (error < 0) goto done;
    error = 0;
    while (!pg.page.more && pg.next_extra < n_extra) {
        const char *x = extra[pg.next_extra++];
        if ((error = page_add(&pg.page, x, strlen(x))) < 0) goto done;
    }
    error = 0;
    res = json_pack("{s:s, s:O}", "name", repo, "tags", pg.page.names);
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing tags");
        goto done;
    }
    *out = res;
    *more_out = pg.page.more;

done:
    json_decref(pg.page.names);
    return error;
}

int mlreg_registry_tags_list(json_t **out, int *more_out, mlreg_registry *reg, const char *repo,
                             int n, const char *last)
{
    static const char *const no_extra[1] = {NULL};
    int error = 0;
    mlreg_meta_txn *txn = NULL;

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if (last != NULL && (error = mlreg_tag_validate(last)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if ((error = mlreg_registry__repo_require(txn, repo)) < 0) goto done;
    error = mlreg_registry__tags_page(out, more_out, txn, repo, n, last, no_extra, 0);

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

typedef struct {
    size_t plen;
    const char *artifact_type;
    const char *last_hex; /* skip this one: the walk starts at it */
    size_t limit, count;
    uint64_t bytes;
    int more;
    json_t *manifests;
} referrer_walk;

static int referrer_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    referrer_walk *w = payload;
    json_t *d;
    const char *at, *hex = (const char *)key + w->plen;
    char digest[MLREG_DIGEST_STRLEN + 1];

    if (klen - w->plen != MLREG_DIGEST_HEXLEN)
        return mlreg_error_set(MLREG_EIO, "referrers index entry is corrupt");
    if (w->last_hex != NULL && memcmp(hex, w->last_hex, MLREG_DIGEST_HEXLEN) == 0) return 0;
    snprintf(digest, sizeof(digest), "sha256:%.*s", MLREG_DIGEST_HEXLEN, hex);
    d = json_loadb(val, vlen, 0, NULL);
    if (d == NULL) return mlreg_error_set(MLREG_EIO, "referrers index entry is corrupt");
    at = json_string_value(json_object_get(d, "artifactType"));
    if (w->artifact_type != NULL && (at == NULL || strcmp(at, w->artifact_type) != 0)) {
        json_decref(d);
        return 0;
    }
    if (w->count >= w->limit || w->bytes >= MLREG_PAGE_BYTES) {
        json_decref(d);
        w->more = 1;
        return 1;
    }
    if (json_object_set_new(d, "digest", json_string(digest)) < 0 ||
        json_array_append_new(w->manifests, d) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing referrers");
    w->count++;
    w->bytes += vlen + MLREG_DIGEST_STRLEN;
    return 0;
}

int mlreg_registry_referrers(json_t **out, int *more_out, mlreg_registry *reg, const char *repo,
                             const mlreg_digest *subject, const char *artifact_type,
                             const mlreg_digest *last, size_t limit)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    char prefix[REGISTRY_KEY_CAP], start[REGISTRY_KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1];
    char last_hex[MLREG_DIGEST_HEXLEN + 1];
    size_t slen = 0;
    referrer_walk w;
    json_t *res = NULL;

    memset(&w, 0, sizeof(w));
    w.artifact_type = artifact_type;
    w.limit = limit == 0 ? MLREG_PAGE_LIMIT_DEFAULT
                         : (limit > MLREG_PAGE_LIMIT_MAX ? MLREG_PAGE_LIMIT_MAX : limit);
    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if ((w.manifests = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing referrers");
        goto done;
    }
    mlreg_digest_hex(hex, subject);
    w.plen = mlreg_registry__key(prefix, repo, hex, "");
    if (last != NULL) {
        mlreg_digest_hex(last_hex, last);
        w.last_hex = last_hex;
        slen = mlreg_registry__key(start, repo, hex, last_hex);
    }
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if ((error = mlreg_registry__repo_require(txn, repo)) < 0) goto done;
    if ((error = mlreg_meta_iter(txn, MLREG_DB_REFERRERS, prefix, w.plen, last ? start : NULL, slen,
                                 referrer_cb, &w)) < 0)
        goto done;
    error = 0;
    res = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType", MLREG_MT_OCI_INDEX,
                    "manifests", w.manifests);
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing referrers");
        goto done;
    }
    *out = res;
    if (more_out != NULL) *more_out = w.more;

done:
    mlreg_meta_txn_abort(txn);
    json_decref(w.manifests);
    return error;
}

typedef struct {
    const char *last;
    int (*visible)(const char *name, void *ctx);
    void *ctx;
    name_page page;
} catalog_page;

static int catalog_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    catalog_page *pg = payload;
    char name[REGISTRY_KEY_CAP];

    (void)val;
    (void)vlen;
    if (klen == 0 || klen >= sizeof(name))
        return mlreg_error_set(MLREG_EIO, "repository index entry is corrupt");
    memcpy(name, key, klen);
    name[klen] = '\0';
    if (pg->last != NULL && strcmp(pg->last, name) == 0) return 0; /* the walk starts at it */
    if (pg->visible != NULL && !pg->visible(name, pg->ctx)) return 0;
    return page_add(&pg->page, name, klen);
}

int mlreg_registry_catalog(json_t **out, int *more_out, mlreg_registry *reg, int n,
                           const char *last, int (*visible)(const char *name, void *ctx), void *ctx)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    catalog_page pg;
    json_t *res = NULL;

    memset(&pg, 0, sizeof(pg));
    pg.last = last;
    pg.visible = visible;
    pg.ctx = ctx;
    pg.page.n = n;
    if (last != NULL && (error = mlreg_name_validate(last)) < 0) goto done;
    if ((pg.page.names = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing repositories");
        goto done;
    }
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    error = mlreg_meta_iter(txn, MLREG_DB_REPOS, NULL, 0, last, last ? strlen(last) : 0, catalog_cb,
                            &pg);
    if (error < 0) goto done;
    error = 0;
    if ((res = json_pack("{s:O}", "repositories", pg.page.names)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing repositories");
        goto done;
    }
    *out = res;
    *more_out = pg.page.more;

done:
    mlreg_meta_txn_abort(txn);
    json_decref(pg.page.names);
    return error;
}
