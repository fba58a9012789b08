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

typedef struct {
    size_t plen;
    const char *last;
    int n;
    int count;
    int more;
    json_t *tags;
} tag_page;

static int tag_page_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    tag_page *pg = payload;
    const char *tag = (const char *)key + pg->plen;
    size_t tlen = klen - pg->plen;

    (void)val;
    (void)vlen;
    if (pg->last != NULL && strlen(pg->last) == tlen && memcmp(pg->last, tag, tlen) == 0)
        return 0; /* the walk starts at `last`; the page starts after it */
    if (pg->n >= 0 && pg->count >= pg->n) {
        pg->more = 1;
        return 1;
    }
    if (json_array_append_new(pg->tags, json_stringn(tag, tlen)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing tags");
    pg->count++;
    return 0;
}

int mlreg_registry_tags_list(json_t **out, int *more_out, mlreg_registry *reg, const char *repo,
                             int n, const char *last)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    char prefix[REGISTRY_KEY_CAP], start[REGISTRY_KEY_CAP];
    size_t plen, slen = 0;
    tag_page pg;
    json_t *res = NULL;

    memset(&pg, 0, sizeof(pg));
    pg.n = n;
    pg.last = last;
    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if (last != NULL && (error = mlreg_tag_validate(last)) < 0) goto done;
    if ((pg.tags = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing tags");
        goto done;
    }
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if ((error = mlreg_registry__repo_require(txn, repo)) < 0) goto done;
    plen = mlreg_registry__key(prefix, repo, "", NULL);
    pg.plen = plen;
    if (last != NULL) slen = mlreg_registry__key(start, repo, last, NULL);
    error = mlreg_meta_iter(txn, MLREG_DB_TAGS, prefix, plen, last ? start : NULL, slen,
                            tag_page_cb, &pg);
    if (error < 0) goto done;
    error = 0;
    res = json_pack("{s:s, s:O}", "name", repo, "tags", pg.tags);
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing tags");
        goto done;
    }
    *out = res;
    *more_out = pg.more;

done:
    mlreg_meta_txn_abort(txn);
    json_decref(pg.tags);
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
