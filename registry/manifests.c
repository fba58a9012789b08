/* manifests.c: reading and storing manifests, their tags and referrer index
 * entries and the release records written with them
 * (include/mlreg/registry.h), and the replay of those changes, over the key
 * layout described in registry.c, whose helpers (registry_internal.h) build
 * every key. Deleting is manifests_delete.c, the tag and referrer listings
 * manifests_list.c.
 *
 * A PUT is prepared outside any transaction (parsed, validated against the
 * blob store, serialised: plan_prepare()) and stored by manifest_put_apply()
 * as one change of mlreg_registry__mutate(); signatures.c and promotions.c store
 * their referrer manifests with the same plan inside changes of their own.
 * The manifest bytes are also stored as a blob before the change, so that
 * its audit entry can name them and a replay rebuild the records. */
#include "mlreg/registry.h"

#include "mlreg/common.h"
#include "mlreg/evaluations.h"
#include "mlreg/keyring.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/signatures.h"
#include "mlreg/tables.h"
#include "mlreg/text.h"
#include "manifests_internal.h"
#include "registry_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- manifests ------------------------------------------------------------ */

void mlreg_manifest_data_free(mlreg_manifest_data *m)
{
    if (m == NULL) return;
    free(m->body);
    free(m->content_type);
    free(m);
}

/* Resolves a tag or digest reference to a digest (checking grammar); a tag
 * is looked up in @p txn. ENOTFOUND for an unknown tag. */
static int resolve_reference(mlreg_digest *out, mlreg_meta_txn *txn, const char *repo,
                             const char *reference)
{
    int error = 0;
    char key[REGISTRY_KEY_CAP];
    void *val = NULL;
    size_t vlen;

    if (mlreg_reference_is_digest(reference)) return mlreg_digest_parse(out, reference);
    if ((error = mlreg_tag_validate(reference)) < 0) return error;
    error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_TAGS, key,
                           mlreg_registry__key(key, repo, reference, NULL));
    if (error == MLREG_ENOTFOUND)
        error = mlreg_error_set(MLREG_ENOTFOUND, "manifest '%s:%s' not found", repo, reference);
    if (error < 0) goto done;
    if (mlreg_digest_parse_hex(out, val, vlen) < 0)
        error = mlreg_error_set(MLREG_EIO, "tag record %s:%s is corrupt", repo, reference);

done:
    free(val);
    return error;
}

/* Reads the manifest value "content-type\0body" of repo\0hex. */
static int manifest_load(mlreg_manifest_data **out, mlreg_meta_txn *txn, const char *repo,
                         const mlreg_digest *digest)
{
    int error = 0;
    char key[REGISTRY_KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1], str[MLREG_DIGEST_STRLEN + 1];
    void *val = NULL;
    size_t vlen, ctlen;
    mlreg_manifest_data *m = NULL;

    mlreg_digest_hex(hex, digest);
    error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_MANIFESTS, key,
                           mlreg_registry__key(key, repo, hex, NULL));
    if (error == MLREG_ENOTFOUND) {
        mlreg_digest_format(str, digest);
        error = mlreg_error_set(MLREG_ENOTFOUND, "manifest %s@%s not found", repo, str);
    }
    if (error < 0) goto done;
    ctlen = strnlen(val, vlen);
    if (ctlen == vlen) {
        error = mlreg_error_set(MLREG_EIO, "manifest record %s@sha256:%s is corrupt", repo, hex);
        goto done;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->content_type = strdup(val)) == NULL ||
        (m->body = malloc(vlen - ctlen)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading manifest");
        goto done;
    }
    m->len = vlen - ctlen - 1;
    memcpy(m->body, (char *)val + ctlen + 1, m->len);
    m->body[m->len] = '\0';
    m->digest = *digest;
    *out = m;
    m = NULL;

done:
    mlreg_manifest_data_free(m);
    free(val);
    return error;
}

int mlreg_registry__manifest_load_txn(mlreg_manifest_data **out, mlreg_meta_txn *txn,
                                      const char *repo, const mlreg_digest *digest)
{
    return manifest_load(out, txn, repo, digest);
}

static int manifest_get_once(mlreg_manifest_data **out, mlreg_registry *reg, const char *repo,
                             const char *reference)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    mlreg_digest digest;

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if ((error = resolve_reference(&digest, txn, repo, reference)) == 0)
        error = manifest_load(out, txn, repo, &digest);
    if (error == MLREG_ENOTFOUND) {
        /* a purged release answers 410 with the purge's entry */
        char msg[512];
        int purged;

        snprintf(msg, sizeof(msg), "%s", mlreg_error_last());
        if ((purged = mlreg_registry__purged_check(txn, repo, reference)) < 0)
            error = purged;
        else
            error = mlreg_error_set(MLREG_ENOTFOUND, "%s", msg);
    }

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

int mlreg_registry_release_manifest(mlreg_manifest_data **out, mlreg_registry *reg,
                                    const char *model, const char *version)
{
    mlreg_meta_txn *txn = NULL;
    mlreg_manifest_data *m = NULL;
    json_t *rec = NULL;
    mlreg_digest d;
    int error;

    if ((error = mlreg_name_validate(model)) < 0 || (error = mlreg_tag_validate(version)) < 0)
        return error;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) return error;
    error = mlreg_registry__release_record_get(&rec, txn, model, version);
    if (error == MLREG_ENOTFOUND)
        error = mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", model, version);
    if (error < 0) goto done;
    if (mlreg_digest_parse(&d, json_string_value(json_object_get(rec, "digest"))) < 0) {
        error = mlreg_error_set(MLREG_EIO, "release record %s@%s is corrupt", model, version);
        goto done;
    }
    if (json_object_get(rec, "purged") == NULL) {
        error = manifest_load(out, txn, model, &d);
        goto done;
    }
    mlreg_meta_txn_abort(txn);
    txn = NULL;
    if ((m = calloc(1, sizeof(*m))) == NULL ||
        (m->content_type = strdup(MLREG_MT_OCI_MANIFEST)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading a manifest");
        goto done;
    }
    if ((error = mlreg_registry__blob_get(&m->body, &m->len, reg, &d,
                                          mlreg_registry_max_manifest_bytes(reg))) < 0)
        goto done;
    m->digest = d;
    *out = m;
    m = NULL;

done:
    mlreg_manifest_data_free(m);
    json_decref(rec);
    mlreg_meta_txn_abort(txn);
    return error;
}

int mlreg_registry_manifest_get(mlreg_manifest_data **out, mlreg_registry *reg, const char *repo,
                                const char *reference)
{
    int error = manifest_get_once(out, reg, repo, reference);
    mlreg_cluster *cl = mlreg_registry__cluster(reg);

    /* pushed through another node a moment ago? */
    if (error == MLREG_ENOTFOUND && cl != NULL && mlreg_cluster__refresh(cl, 0) > 0)
        error = manifest_get_once(out, reg, repo, reference);
    return error;
}

/* Checks, against the store, that every blob of an image manifest exists with
 * the size its descriptor declares. Done before the write transaction. */
static int check_blobs_stored(mlreg_registry *reg, const mlreg_manifest *m)
{
    int error = 0;
    size_t i;
    uint64_t size;
    const mlreg_descriptor *d;

    if (m->kind != MLREG_MANIFEST_IMAGE) return 0;
    for (i = 0; i <= m->nlayers; i++) {
        d = i == 0 ? &m->config : &m->layers[i - 1];
        error = mlreg_blobstore_stat(&size, mlreg_registry_blobstore(reg), &d->digest);
        if (error == MLREG_ENOTFOUND)
            return mlreg_error_set(MLREG_EBLOBUNKNOWN, "blob %s (%s) is unknown", d->digest_str,
                                   i == 0 ? "config" : "layer");
        if (error < 0) return error;
        if (size != d->size)
            return mlreg_error_set(
                MLREG_EINVALID, "blob %s is %llu bytes but its descriptor says %llu", d->digest_str,
                (unsigned long long)size, (unsigned long long)d->size);
    }
    return 0;
}

/* Checks, inside the write transaction, that every blob (image) or child
 * manifest (index) is visible in @p repo. */
static int check_refs_visible(mlreg_meta_txn *txn, const char *repo, const mlreg_manifest *m)
{
    int error = 0, found;
    size_t i;
    char key[REGISTRY_KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1];
    const mlreg_descriptor *d;

    if (m->kind == MLREG_MANIFEST_INDEX) {
        for (i = 0; i < m->nlayers; i++) {
            d = &m->layers[i];
            mlreg_digest_hex(hex, &d->digest);
            found = mlreg_registry__meta_has(txn, MLREG_DB_MANIFESTS, key,
                                             mlreg_registry__key(key, repo, hex, NULL));
            if (found < 0) return found;
            if (!found)
                return mlreg_error_set(MLREG_EBLOBUNKNOWN,
                                       "manifest %s (manifests[%zu]) is unknown to repository "
                                       "'%s'",
                                       d->digest_str, i, repo);
        }
        return 0;
    }
    for (i = 0; i <= m->nlayers; i++) {
        d = i == 0 ? &m->config : &m->layers[i - 1];
        if ((found = mlreg_registry__blob_linked(txn, repo, &d->digest)) < 0) return found;
        if (!found)
            return mlreg_error_set(MLREG_EBLOBUNKNOWN, "blob %s (%s) is unknown to repository '%s'",
                                   d->digest_str, i == 0 ? "config" : "layer", repo);
    }
    return error;
}

/* Reads and parses the eval-report layer. Its size is known and capped, so
 * it is read whole; the bytes are hashed because the metrics we index must
 * be the ones the (signed) manifest names. */
static int read_eval_report(mlreg_eval_report **out, mlreg_registry *reg, const mlreg_descriptor *d)
{
    int error = 0;
    mlreg_blob_reader *r = NULL;
    char *buf = NULL;
    uint64_t size;
    size_t got = 0;
    ssize_t n;
    mlreg_digest actual;

    if (d->size > MLREG_MAX_EVAL_REPORT_BYTES) {
        error = mlreg_error_set(MLREG_ETOOBIG, "eval report %s is %llu bytes, at most %u allowed",
                                d->digest_str, (unsigned long long)d->size,
                                MLREG_MAX_EVAL_REPORT_BYTES);
        goto done;
    }
    if ((error = mlreg_blobstore_open_read(&r, &size, mlreg_registry_blobstore(reg), &d->digest)) <
        0)
        goto done;
    if (size != d->size) {
        error =
            mlreg_error_set(MLREG_EINVALID, "blob %s is %llu bytes but its descriptor says %llu",
                            d->digest_str, (unsigned long long)size, (unsigned long long)d->size);
        goto done;
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading eval report");
        goto done;
    }
    while (got < size) {
        n = mlreg_blob_reader_read(r, buf + got, (size_t)size - got);
        if (n < 0) {
            error = (int)n;
            goto done;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if ((error = mlreg_digest_buffer(&actual, buf, got)) < 0) goto done;
    if (got != size || !mlreg_digest_equal(&actual, &d->digest)) {
        error =
            mlreg_error_set(MLREG_EIO, "stored blob %s does not match its digest", d->digest_str);
        goto done;
    }
    error = mlreg_eval_report_parse(out, buf, got);

done:
    free(buf);
    mlreg_blob_reader_free(r);
    return error;
}

/* The referrers index value: the referrer's descriptor without its digest.
 * Per OCI 1.1, an image manifest without artifactType is listed with its
 * config's media type. */
static json_t *referrer_descriptor(const mlreg_manifest *m, size_t len)
{
    json_t *d = json_pack("{s:s, s:I}", "mediaType", m->media_type, "size", (json_int_t)len);
    const char *at = m->artifact_type;

    if (d == NULL) return NULL;
    if (at == NULL && m->has_config) at = m->config.media_type;
    if ((at != NULL && json_object_set_new(d, "artifactType", json_string(at)) < 0) ||
        (m->annotations != NULL && json_object_set(d, "annotations", m->annotations) < 0)) {
        json_decref(d);
        return NULL;
    }
    return d;
}

static json_t *release_record(const mlreg_manifest *m, const mlreg_release_info *info,
                              const mlreg_digest *digest, const mlreg_eval_report *report,
                              const char *actor)
{
    char str[MLREG_DIGEST_STRLEN + 1];
    json_t *rec = NULL, *files = json_array();
    uint64_t total = 0;
    size_t i;

    mlreg_digest_format(str, digest);
    if (files == NULL) return NULL;
    for (i = 0; i < m->nlayers; i++) {
        const mlreg_descriptor *l = &m->layers[i];
        json_t *f = json_pack("{s:s, s:s, s:s, s:I, s:s}", "title",
                              mlreg_descriptor_annotation(l, MLREG_ANN_TITLE), "kind",
                              mlreg_release_layer_kind(l), "digest", l->digest_str, "size",
                              (json_int_t)l->size, "media_type", l->media_type);
        if (json_array_append_new(files, f) < 0) {
            json_decref(files);
            return NULL;
        }
        total += l->size;
    }
    rec = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:s?, s:o, s:s?, s:I, s:o, s:s}", "model",
                    info->model, "version", info->version, "digest", str, "created", info->created,
                    "created_sec", (json_int_t)info->created_sec, "created_nsec",
                    (int)info->created_nsec, "git_sha", info->git_sha, "metrics",
                    report ? json_deep_copy(report->metrics) : json_object(), "dataset",
                    report ? report->dataset : NULL, "size", (json_int_t)total, "files", files,
                    "pushed_by", actor ? actor : MLREG_KEYRING_ACTOR_LOCAL);
    /* only when there are some: records without intervals stay as they were */
    if (rec != NULL && report != NULL && json_object_size(report->intervals) > 0 &&
        json_object_set_new(rec, "metric_intervals", json_deep_copy(report->intervals)) < 0) {
        json_decref(rec);
        return NULL;
    }
    /* only when true: records of clean pushes stay as they were */
    if (rec != NULL && info->git_dirty && json_object_set_new(rec, "git_dirty", json_true()) < 0) {
        json_decref(rec);
        return NULL;
    }
    /* only when the report names them, likewise */
    if (rec != NULL && report != NULL &&
        ((report->dataset_digest != NULL &&
          json_object_set_new(rec, "dataset_digest", json_string(report->dataset_digest)) < 0) ||
         (report->eval_code_digest != NULL &&
          json_object_set_new(rec, "eval_code_digest", json_string(report->eval_code_digest)) <
              0))) {
        json_decref(rec);
        return NULL;
    }
    return rec; /* json_pack's "o" consumed files (also on failure) */
}

/* ---- blob references (table blob_refs) ------------------------------------
 * One row per blob and manifest that references it: key blob hex \0 repo \0
 * manifest hex, empty value. A manifest references its own bytes (a pushed
 * manifest is stored as a blob too; the signature and attestation
 * referrers the registry makes are not, and their row names no stored
 * blob), its config and its layers (image) or its
 * child manifests (index). Rows come and go with the manifest's row, in the
 * same transaction; garbage collection (gc.c) keeps every blob that has one. */

#define REFS_BUILT_KEY "blob_refs.built"

static int refs_row(mlreg_meta_txn *txn, const char *repo, const char *mhex, const char *bhex,
                    int add)
{
    char key[REGISTRY_KEY_CAP];
    size_t klen = mlreg_registry__key(key, bhex, repo, mhex);
    int error;

    if (add) return mlreg_meta_put(txn, MLREG_DB_BLOB_REFS, key, klen, "", 0, 0);
    error = mlreg_meta_del(txn, MLREG_DB_BLOB_REFS, key, klen);
    return error == MLREG_ENOTFOUND ? 0 : error;
}

int mlreg_registry__refs_keep(mlreg_meta_txn *txn, const char *repo, const char *mhex,
                              const char *bhex)
{
    return refs_row(txn, repo, mhex, bhex, 1);
}

/* A descriptor's digest as hex, when it is a well-formed sha256 one (stored
 * manifests passed validation; anything else references no blob of ours). */
static const char *descriptor_hex(const json_t *desc)
{
    const char *d = json_string_value(json_object_get(desc, "digest"));
    size_t i;

    if (d == NULL || strlen(d) != MLREG_DIGEST_STRLEN || strncmp(d, "sha256:", 7) != 0) return NULL;
    for (i = 7; i < MLREG_DIGEST_STRLEN; i++)
        if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f'))) return NULL;
    return d + 7;
}

int mlreg_registry__refs_update(mlreg_meta_txn *txn, const char *repo, const char *mhex,
                                const json_t *root, int add)
{
    static const char *const lists[] = {"layers", "manifests"};
    const char *bhex;
    json_t *v;
    size_t i, l;
    int error;

    if ((error = refs_row(txn, repo, mhex, mhex, add)) < 0) return error;
    if ((bhex = descriptor_hex(json_object_get(root, "config"))) != NULL &&
        (error = refs_row(txn, repo, mhex, bhex, add)) < 0)
        return error;
    for (l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        json_array_foreach(json_object_get(root, lists[l]), i, v)
        {
            if ((bhex = descriptor_hex(v)) != NULL &&
                (error = refs_row(txn, repo, mhex, bhex, add)) < 0)
                return error;
        }
    }
    return 0;
}

/* refs_update for a manifest row's value (content type \0 body). */
static int refs_update_value(mlreg_meta_txn *txn, const char *repo, const char *mhex,
                             const char *value, size_t vlen, int add)
{
    size_t ctlen = strnlen(value, vlen);
    json_t *root;
    int error;

    if (ctlen == vlen)
        return mlreg_error_set(MLREG_EIO, "manifest %s of '%s' is corrupt", mhex, repo);
    root = json_loadb(value + ctlen + 1, vlen - ctlen - 1, 0, NULL);
    if (root == NULL)
        return mlreg_error_set(MLREG_EIO, "manifest %s of '%s' does not parse", mhex, repo);
    error = mlreg_registry__refs_update(txn, repo, mhex, root, add);
    json_decref(root);
    return error;
}

/* The rows of a manifest being stored, from the form put_in_txn() has
 * parsed already (the same digests refs_update() reads from the JSON). */
static int refs_add_parsed(mlreg_meta_txn *txn, const char *repo, const char *mhex,
                           const mlreg_manifest *m)
{
    char bhex[MLREG_DIGEST_HEXLEN + 1];
    int error;

    if ((error = refs_row(txn, repo, mhex, mhex, 1)) < 0) return error;
    for (size_t i = 0; i <= m->nlayers; i++) {
        const mlreg_descriptor *d = i == 0 ? &m->config : &m->layers[i - 1];
        if (i == 0 && !m->has_config) continue;
        mlreg_digest_hex(bhex, &d->digest);
        if ((error = refs_row(txn, repo, mhex, bhex, 1)) < 0) return error;
    }
    return 0;
}

static int stop_at_first(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    (void)payload;
    return 1;
}

int mlreg_registry__blob_referenced(mlreg_meta_txn *txn, const char *bhex)
{
    char prefix[MLREG_DIGEST_HEXLEN + 1];

    memcpy(prefix, bhex, MLREG_DIGEST_HEXLEN);
    prefix[MLREG_DIGEST_HEXLEN] = '\0';
    return mlreg_meta_iter(txn, MLREG_DB_BLOB_REFS, prefix, sizeof(prefix), NULL, 0, stop_at_first,
                           NULL);
}

/* blob_referenced_unless()'s walk: the first row the filter keeps stops it. */
typedef struct {
    registry_ref_filter dropped;
    void *payload;
} unless_walk;

static int unless_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    unless_walk *w = payload;
    const char *k = key, *repo = k + MLREG_DIGEST_HEXLEN + 1;
    size_t rlen = strnlen(repo, klen - MLREG_DIGEST_HEXLEN - 1);
    char bhex[MLREG_DIGEST_HEXLEN + 1], mhex[MLREG_DIGEST_HEXLEN + 1], r[REGISTRY_KEY_CAP];

    (void)val;
    (void)vlen;
    if (klen != MLREG_DIGEST_HEXLEN + 1 + rlen + 1 + MLREG_DIGEST_HEXLEN || rlen >= sizeof(r))
        return mlreg_error_set(MLREG_EIO, "a blob_refs key is corrupt");
    memcpy(bhex, k, MLREG_DIGEST_HEXLEN);
    bhex[MLREG_DIGEST_HEXLEN] = '\0';
    memcpy(r, repo, rlen);
    r[rlen] = '\0';
    memcpy(mhex, repo + rlen + 1, MLREG_DIGEST_HEXLEN);
    mhex[MLREG_DIGEST_HEXLEN] = '\0';
    return w->dropped(r, mhex, bhex, w->payload) ? 0 : 1;
}

int mlreg_registry__blob_referenced_unless(mlreg_meta_txn *txn, const char *bhex,
                                           registry_ref_filter dropped, void *payload)
{
    char prefix[MLREG_DIGEST_HEXLEN + 1];
    unless_walk w = {dropped, payload};

    memcpy(prefix, bhex, MLREG_DIGEST_HEXLEN);
    prefix[MLREG_DIGEST_HEXLEN] = '\0';
    return mlreg_meta_iter(txn, MLREG_DB_BLOB_REFS, prefix, sizeof(prefix), NULL, 0, unless_cb, &w);
}

typedef struct {
    mlreg_meta_txn *txn;
} refs_build;

static int refs_build_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    refs_build *b = payload;
    size_t rlen = strnlen(key, klen);
    char repo[REGISTRY_KEY_CAP], mhex[MLREG_DIGEST_HEXLEN + 1];

    if (rlen + 1 + MLREG_DIGEST_HEXLEN != klen) return 0; /* not a repo \0 hex key */
    memcpy(repo, key, rlen);
    repo[rlen] = '\0';
    memcpy(mhex, (const char *)key + rlen + 1, MLREG_DIGEST_HEXLEN);
    mhex[MLREG_DIGEST_HEXLEN] = '\0';
    return refs_update_value(b->txn, repo, mhex, val, vlen, 1);
}

int mlreg_registry__refs_build(mlreg_meta *meta)
{
    mlreg_meta_txn *txn = NULL;
    refs_build b;
    int error, found;

    if ((error = mlreg_meta_txn_begin(&txn, meta, 1)) < 0) return error;
    found = mlreg_registry__meta_has(txn, MLREG_DB_META, REFS_BUILT_KEY, strlen(REFS_BUILT_KEY));
    if (found != 0) {
        error = found < 0 ? found : 0;
        goto done;
    }
    b.txn = txn;
    if ((error = mlreg_meta_iter(txn, MLREG_DB_MANIFESTS, NULL, 0, NULL, 0, refs_build_cb, &b)) <
            0 ||
        (error = mlreg_meta_put(txn, MLREG_DB_META, REFS_BUILT_KEY, strlen(REFS_BUILT_KEY), "1", 1,
                                0)) < 0)
        goto done;
    error = mlreg_meta_txn_commit(txn);
    txn = NULL;

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

/* Everything a PUT prepares before its write transaction. */
typedef struct {
    mlreg_registry *reg;
    const char *repo;
    const char *tag; /* tag to point at the manifest, or NULL */
    mlreg_digest digest;
    char hex[MLREG_DIGEST_HEXLEN + 1];
    const mlreg_manifest *m;
    int is_release;
    const mlreg_release_info *info;
    char *value; /* content-type \0 body */
    size_t vlen;
    char *referrer; /* serialised referrer descriptor, or NULL */
    char *record;   /* serialised release record, or NULL */
} put_plan;

/* The write-transaction half of a manifest PUT. Sets *created. */
static int put_in_txn(int *created, registry_mutation *mut, mlreg_meta_txn *txn, const put_plan *p)
{
    int error = 0, found;
    char key[REGISTRY_KEY_CAP], shex[MLREG_DIGEST_HEXLEN + 1];
    void *val = NULL;
    size_t vlen, klen;
    json_t *rec = NULL;
    int tag_current = 0;

    *created = 0;
    if ((error = check_refs_visible(txn, p->repo, p->m)) < 0) goto done;

    if (p->tag != NULL) {
        /* A tag with a release record is a version tag: immutable. */
        error = mlreg_registry__release_record_get(&rec, txn, p->repo, p->tag);
        /* a purged version stays taken: pushing it again is refused */
        if (error == 0 && (error = mlreg_registry__refuse_purged(rec)) < 0) goto done;
        if (error == 0) {
            const char *have = json_string_value(json_object_get(rec, "digest"));
            if (have == NULL || strlen(have) != MLREG_DIGEST_STRLEN ||
                strcmp(have + 7, p->hex) != 0) {
                error = mlreg_error_set(MLREG_EDENIED,
                                        "release %s@%s exists with digest %s; releases are "
                                        "immutable",
                                        p->repo, p->tag, have ? have : "(unknown)");
                goto done;
            }
        } else if (error != MLREG_ENOTFOUND) {
            goto done;
        }
        error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_TAGS, key,
                               mlreg_registry__key(key, p->repo, p->tag, NULL));
        if (error == 0)
            tag_current = vlen == MLREG_DIGEST_HEXLEN && memcmp(val, p->hex, vlen) == 0;
        else if (error != MLREG_ENOTFOUND)
            goto done;
        error = 0;
    }

    klen = mlreg_registry__key(key, p->repo, p->hex, NULL);
    if ((found = mlreg_registry__meta_has(txn, MLREG_DB_MANIFESTS, key, klen)) < 0) {
        error = found;
        goto done;
    }
    if (found && (p->tag == NULL || tag_current))
        goto done; /* identical content already there: a retry, nothing to write */

    if ((error = mlreg_meta_put(txn, MLREG_DB_REPOS, p->repo, strlen(p->repo), "", 0, 0)) < 0)
        goto done;
    /* the manifest's own bytes went to the store before this change: a
     * collection may have deleted them meanwhile (gc.c) */
    if (!found &&
        ((error = mlreg_registry__gc_link_check(mut, txn, p->reg, &p->digest)) < 0 ||
         (error = mlreg_meta_put(txn, MLREG_DB_MANIFESTS, key, klen, p->value, p->vlen, 0)) < 0 ||
         (error = refs_add_parsed(txn, p->repo, p->hex, p->m)) < 0))
        goto done;
    if (p->tag != NULL && (error = mlreg_meta_put(txn, MLREG_DB_TAGS, key,
                                                  mlreg_registry__key(key, p->repo, p->tag, NULL),
                                                  p->hex, MLREG_DIGEST_HEXLEN, 0)) < 0)
        goto done;
    if (p->referrer != NULL) {
        mlreg_digest_hex(shex, &p->m->subject.digest);
        if ((error = mlreg_meta_put(txn, MLREG_DB_REFERRERS, key,
                                    mlreg_registry__key(key, p->repo, shex, p->hex), p->referrer,
                                    strlen(p->referrer), 0)) < 0)
            goto done;
    }
    if (p->record != NULL &&
        (error = mlreg_meta_put(txn, MLREG_DB_RELEASES, key,
                                mlreg_registry__key(key, p->repo, p->info->version, NULL),
                                p->record, strlen(p->record), 0)) < 0)
        goto done;
    *created = 1;

done:
    json_decref(rec);
    free(val);
    return error;
}

/* A manifest PUT prepared outside any transaction: parsed, validated against
 * the blob store, serialised. registry_internal.h hands it to callers that
 * store a manifest inside a write transaction of their own. */
struct registry_manifest_plan {
    put_plan p;
    mlreg_manifest *m;
    mlreg_release_info info;
    mlreg_eval_report *report;
};

void mlreg_registry__manifest_plan_free(registry_manifest_plan *plan)
{
    if (plan == NULL) return;
    free(plan->p.value);
    free(plan->p.referrer);
    free(plan->p.record);
    mlreg_eval_report_free(plan->report);
    mlreg_manifest_free(plan->m);
    free(plan);
}

/* Everything of a PUT that happens before its write transaction. With
 * @p precheck_visible, the referenced blobs must already be visible in @p repo
 * (a short read transaction); without it the caller links them in its own
 * write transaction, where put_in_txn checks visibility anyway. */
/* plan_prepare()'s flags. A replayed entry was checked when it was made:
 * the blobs it names were stored then, and a later entry in the log (a
 * manifest deletion, a purge, then garbage collection) may have deleted
 * them since; only the manifest's own bytes and a release's eval report,
 * which the index is built from, must still be there (a deletion keeps
 * them referenced: manifests_delete.c). */
/* PLAN_MADE: a referrer the registry makes in a change that writes its
 * blobs itself before committing (mlreg_registry__mutation_blob_put). */
enum { PLAN_PRECHECK_VISIBLE = 1, PLAN_REPLAY = 2, PLAN_MADE = 4 };

static int plan_prepare(registry_manifest_plan **out, mlreg_registry *reg, const char *repo,
                        const char *reference, const char *content_type, const char *body,
                        size_t len, unsigned int flags, const char *actor)
{
    int error = 0, by_digest;
    registry_manifest_plan *plan = NULL;
    mlreg_meta_txn *txn = NULL;
    mlreg_digest want;
    json_t *j = NULL;
    const char *ct;
    size_t ctlen;
    char str[MLREG_DIGEST_STRLEN + 1];
    put_plan *p;

    if ((plan = calloc(1, sizeof(*plan))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory storing manifest");
        goto done;
    }
    p = &plan->p;
    p->reg = reg;
    p->repo = repo;

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    by_digest = mlreg_reference_is_digest(reference);
    if (by_digest)
        error = mlreg_digest_parse(&want, reference);
    else
        error = mlreg_tag_validate(reference);
    if (error < 0) goto done;
    if (len > mlreg_registry_max_manifest_bytes(reg)) {
        error = mlreg_error_set(MLREG_ETOOBIG, "manifest is %zu bytes, at most %zu allowed", len,
                                mlreg_registry_max_manifest_bytes(reg));
        goto done;
    }
    if ((error = mlreg_digest_buffer(&p->digest, body, len)) < 0) goto done;
    mlreg_digest_hex(p->hex, &p->digest);
    if (by_digest && !mlreg_digest_equal(&want, &p->digest)) {
        mlreg_digest_format(str, &p->digest);
        error = mlreg_error_set(MLREG_EMISMATCH, "manifest digest %s does not match reference %s",
                                str, reference);
        goto done;
    }
    if ((error = mlreg_manifest_parse(&plan->m, content_type, body, len)) < 0) goto done;
    p->m = plan->m;
    p->is_release = mlreg_manifest_is_release(plan->m);
    p->tag = by_digest ? NULL : reference;
    if (p->is_release) {
        if ((error = mlreg_release_validate(&plan->info, plan->m, repo)) < 0) goto done;
        if (!by_digest && strcmp(reference, plan->info.version) != 0) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "release tag '%s' differs from its %s annotation '%s'",
                                    reference, MLREG_ANN_VERSION, plan->info.version);
            goto done;
        }
        p->tag = plan->info.version; /* a release pushed by digest still gets its version tag */
        p->info = &plan->info;
    }
    /* Visibility first, in a short read txn: the store holds every
     * repository's blobs, so stat-ing or parsing one this repository cannot
     * see would tell a client its size ("descriptor says N") or, through the
     * eval-report parser's messages, its bytes. The write txn checks again. */
    if (flags & PLAN_PRECHECK_VISIBLE) {
        mlreg_cluster *cl = mlreg_registry__cluster(reg);
        int again = 0;
        do {
            if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
            error = check_refs_visible(txn, repo, plan->m);
            mlreg_meta_txn_abort(txn);
            txn = NULL;
            /* blobs uploaded through another node a moment ago? */
        } while (error == MLREG_EBLOBUNKNOWN && cl != NULL && !again++ &&
                 mlreg_cluster__refresh(cl, 1) > 0);
        if (error < 0) goto done;
    }
    if (!(flags & (PLAN_REPLAY | PLAN_MADE)) && (error = check_blobs_stored(reg, plan->m)) < 0)
        goto done;
    if (p->is_release && plan->info.has_eval_report &&
        (error = read_eval_report(&plan->report, reg,
                                  &plan->m->layers[plan->info.eval_report_index])) < 0)
        goto done;

    /* Serialise everything before the transaction so it stays short. */
    ct = content_type;
    if (ct == NULL || ct[strspn(ct, " \t")] == '\0') ct = plan->m->media_type;
    /* the content type is stored, served back and recorded in the audit
     * entry: text by the rule of text.h, like every string an entry holds */
    if ((error = mlreg_text_validate(ct, "manifest content type")) < 0) goto done;
    ctlen = strlen(ct);
    p->vlen = ctlen + 1 + len;
    p->value = malloc(p->vlen);
    if (p->value == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory storing manifest");
        goto done;
    }
    memcpy(p->value, ct, ctlen + 1);
    memcpy(p->value + ctlen + 1, body, len);
    if (plan->m->has_subject) {
        if ((j = referrer_descriptor(plan->m, len)) == NULL ||
            (p->referrer = json_dumps(j, JSON_COMPACT)) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory indexing referrer");
            goto done;
        }
        json_decref(j);
        j = NULL;
    }
    if (p->is_release) {
        if ((j = release_record(plan->m, &plan->info, &p->digest, plan->report, actor)) == NULL ||
            (p->record = json_dumps(j, JSON_COMPACT)) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory indexing release");
            goto done;
        }
    }
    *out = plan;
    plan = NULL;

done:
    json_decref(j);
    mlreg_registry__manifest_plan_free(plan);
    return error;
}

static void put_result(mlreg_manifest_put_result *out, const registry_manifest_plan *plan,
                       int created)
{
    memset(out, 0, sizeof(*out));
    out->digest = plan->p.digest;
    out->has_subject = plan->m->has_subject;
    if (plan->m->has_subject) out->subject = plan->m->subject.digest;
    out->created = created;
}

int mlreg_registry__manifest_plan_new(registry_manifest_plan **out, mlreg_registry *reg,
                                      const char *repo, const char *content_type, const char *body,
                                      size_t len)
{
    char ref[MLREG_DIGEST_STRLEN + 1];
    mlreg_digest d;
    int error;

    if ((error = mlreg_digest_buffer(&d, body, len)) < 0) return error;
    mlreg_digest_format(ref, &d);
    return plan_prepare(out, reg, repo, ref, content_type, body, len, 0, NULL);
}

int mlreg_registry__manifest_plan_new_made(registry_manifest_plan **out, mlreg_registry *reg,
                                           const char *repo, const char *content_type,
                                           const char *body, size_t len)
{
    char ref[MLREG_DIGEST_STRLEN + 1];
    mlreg_digest d;
    int error;

    if ((error = mlreg_digest_buffer(&d, body, len)) < 0) return error;
    mlreg_digest_format(ref, &d);
    return plan_prepare(out, reg, repo, ref, content_type, body, len, PLAN_MADE, NULL);
}

int mlreg_registry__manifest_plan_put(mlreg_manifest_put_result *out, registry_mutation *mut,
                                      mlreg_meta_txn *txn, const registry_manifest_plan *plan)
{
    int error, created = 0;

    if ((error = put_in_txn(&created, mut, txn, &plan->p)) < 0) return error;
    put_result(out, plan, created);
    return 0;
}

/* Signature referrers are only ever created by signatures.c after it has
 * verified the signature; one pushed through the OCI API would show OCI
 * tools an unverified "signature". OCI's artifactType falls back to the
 * config media type, and the layer carries the type too, so all three are
 * checked. */
static int is_signature_artifact(const mlreg_manifest *m)
{
    const char *sig = MLREG_ARTIFACT_SIGNATURE;

    if (m->artifact_type != NULL && strcmp(m->artifact_type, sig) == 0) return 1;
    if (m->kind != MLREG_MANIFEST_INDEX && m->has_config && strcmp(m->config.media_type, sig) == 0)
        return 1;
    for (size_t i = 0; m->kind != MLREG_MANIFEST_INDEX && i < m->nlayers; i++)
        if (strcmp(m->layers[i].media_type, sig) == 0) return 1;
    return 0;
}

/* Attestation referrers likewise: promotions.c makes them, signed with the
 * log key, in the transaction that moves a stage. One pushed through the
 * OCI API would be a promotion statement no promotion made. An in-toto
 * artifactType (or, without one, config media type) or the audit seq
 * annotation marks one. */
static int is_attestation_artifact(const mlreg_manifest *m)
{
    const char *at = MLREG_ARTIFACT_ATTESTATION;

    if (m->artifact_type != NULL && strcmp(m->artifact_type, at) == 0) return 1;
    if (m->artifact_type == NULL && m->kind != MLREG_MANIFEST_INDEX && m->has_config &&
        strcmp(m->config.media_type, at) == 0)
        return 1;
    return json_object_get(m->annotations, MLREG_ANN_AUDIT_SEQ) != NULL;
}

/* Evaluation referrers likewise: evaluations.c makes them after verifying
 * the evaluator's signature. One pushed through the OCI API would show an
 * evaluation nobody verified. */
static int is_evaluation_artifact(const mlreg_manifest *m)
{
    const char *ev = MLREG_ARTIFACT_EVALUATION;

    if (m->artifact_type != NULL && strcmp(m->artifact_type, ev) == 0) return 1;
    return m->kind != MLREG_MANIFEST_INDEX && m->has_config &&
           strcmp(m->config.media_type, ev) == 0;
}

/* Appends the entry of a manifest PUT that stored something: "push" for a
 * release (put_in_txn creates a release only with its record), else
 * "manifest.put" naming the tag when pushed by tag. */
static int audit_manifest_put(registry_mutation *mut, const registry_manifest_plan *plan,
                              const char *actor)
{
    const put_plan *p = &plan->p;
    mlreg_audit_event ev;
    char str[MLREG_DIGEST_STRLEN + 1];
    json_t *details = NULL;
    int error;

    mlreg_digest_format(str, &p->digest);
    ev = (mlreg_audit_event){.actor = mlreg_registry__actor(actor),
                             .result = MLREG_AUDIT_OK,
                             .model = p->repo,
                             .digest = str};
    /* the manifest bytes are the blob subject.digest names (stored before
     * the change); the content type they were pushed with completes them */
    if (p->is_release) {
        ev.action = MLREG_AUDIT_PUSH;
        ev.version = plan->info.version;
        details = json_pack("{s:I, s:s}", "files", (json_int_t)plan->m->nlayers, "content_type",
                            p->value);
    } else {
        ev.action = MLREG_AUDIT_MANIFEST_PUT;
        ev.tag = p->tag;
        details = json_pack("{s:s?, s:s}", "artifact_type", plan->m->artifact_type, "content_type",
                            p->value);
    }
    if (details == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a manifest");
    ev.details = details;
    error = mlreg_registry__mutation_record(NULL, mut, &ev);
    json_decref(details);
    return error;
}

/* A manifest PUT of the OCI API: the prepared plan and who pushed it. */
typedef struct {
    const registry_manifest_plan *plan;
    const char *actor;
    int created;
} manifest_change;

static int manifest_put_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    manifest_change *c = arg;
    int error;

    if ((error = put_in_txn(&c->created, mut, txn, &c->plan->p)) < 0) return error;
    if (!c->created) return REGISTRY_MUTATE_NOOP;
    return audit_manifest_put(mut, c->plan, c->actor);
}

int mlreg_registry__manifest_made_here(const mlreg_manifest *m)
{
    return is_signature_artifact(m) || is_attestation_artifact(m) || is_evaluation_artifact(m);
}

int mlreg_registry_manifest_put(mlreg_manifest_put_result *out, mlreg_registry *reg,
                                const char *repo, const char *reference, const char *content_type,
                                const char *body, size_t len)
{
    return mlreg_registry_manifest_put_as(out, reg, repo, reference, content_type, body, len, NULL);
}

int mlreg_registry_manifest_put_as(mlreg_manifest_put_result *out, mlreg_registry *reg,
                                   const char *repo, const char *reference,
                                   const char *content_type, const char *body, size_t len,
                                   const char *actor)
{
    int error = 0;
    registry_manifest_plan *plan = NULL;
    manifest_change c = {NULL, NULL, 0};
    mlreg_digest stored;

    if ((error = plan_prepare(&plan, reg, repo, reference, content_type, body, len,
                              PLAN_PRECHECK_VISIBLE, actor)) < 0)
        goto done;
    if (is_signature_artifact(plan->m)) {
        error = mlreg_error_set(MLREG_EDENIED,
                                "manifests of artifactType %s are made by the registry when a "
                                "signature is attached (POST /api/v1/models/<name>/versions/"
                                "<version>/signatures, which verifies it), never pushed",
                                MLREG_ARTIFACT_SIGNATURE);
        goto done;
    }
    if (is_attestation_artifact(plan->m)) {
        error = mlreg_error_set(MLREG_EDENIED,
                                "manifests of artifactType %s are made by the registry when a "
                                "release is promoted or rolled back (signed with the audit log "
                                "key), never pushed",
                                MLREG_ARTIFACT_ATTESTATION);
        goto done;
    }
    if (is_evaluation_artifact(plan->m)) {
        error = mlreg_error_set(MLREG_EDENIED,
                                "manifests of artifactType %s are made by the registry when an "
                                "evaluation is attested (POST /api/v1/models/<name>/versions/"
                                "<version>/evaluations, which verifies it), never pushed",
                                MLREG_ARTIFACT_EVALUATION);
        goto done;
    }
    /* the manifest bytes, durable as a blob before the entry names them */
    if ((error = mlreg_registry__blob_put(&stored, reg, body, len)) < 0) goto done;
    c.plan = plan;
    c.actor = actor;
    if ((error = mlreg_registry__run(reg, manifest_put_apply, &c)) < 0) goto done;
    put_result(out, plan, c.created);

done:
    mlreg_registry__manifest_plan_free(plan);
    return error;
}

int mlreg_registry__release_digest_txn(mlreg_digest *out, mlreg_meta_txn *txn, const char *model,
                                       const char *version, int purged_ok)
{
    int error = 0;
    json_t *rec = NULL;
    const char *d;

    if ((error = mlreg_registry__release_record_get(&rec, txn, model, version)) < 0 ||
        (!purged_ok && (error = mlreg_registry__refuse_purged(rec)) < 0))
        goto done;
    d = json_string_value(json_object_get(rec, "digest"));
    if (d == NULL || mlreg_digest_parse(out, d) < 0)
        error = mlreg_error_set(MLREG_EIO, "release record %s@%s is corrupt", model, version);

done:
    json_decref(rec);
    return error;
}

int mlreg_registry__release_listing_begin(mlreg_meta_txn **txn_out, mlreg_digest *digest_out,
                                          mlreg_registry *reg, const char *model,
                                          const char *version)
{
    int error;

    *txn_out = NULL;
    if ((error = mlreg_name_validate(model)) < 0 || (error = mlreg_tag_validate(version)) < 0 ||
        (error = mlreg_meta_txn_begin(txn_out, mlreg_registry_meta(reg), 0)) < 0)
        return error;
    error = mlreg_registry__release_digest_txn(digest_out, *txn_out, model, version, 1);
    if (error == MLREG_ENOTFOUND)
        error = mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", model, version);
    return error;
}

/* ---- replay ----------------------------------------------------------------- */

const char *mlreg_registry__entry_subject(const json_t *entry, const char *key)
{
    return json_string_value(json_object_get(json_object_get(entry, "subject"), key));
}

/* push / manifest.put: the manifest bytes come from the blob store, the
 * content type and the tag from the entry; the release record is rebuilt
 * from the manifest and its eval report exactly as on the PUT. */
static int replay_manifest_put(mlreg_registry *reg, const json_t *entry, const char *text,
                               size_t len)
{
    const char *repo = mlreg_registry__entry_subject(entry, "model"),
               *digest = mlreg_registry__entry_subject(entry, "digest");
    const char *tag = mlreg_registry__entry_subject(entry, "tag"), *actor;
    const char *ct =
        json_string_value(json_object_get(json_object_get(entry, "details"), "content_type"));
    registry_manifest_plan *plan = NULL;
    manifest_change c = {NULL, NULL, 0};
    mlreg_digest d;
    char *body = NULL;
    size_t blen = 0;
    int error;

    actor = json_string_value(json_object_get(entry, "actor"));
    if (repo == NULL || digest == NULL || ct == NULL || mlreg_digest_parse(&d, digest) < 0) {
        error = mlreg_error_set(MLREG_EINVALID, "audit entry %lld does not name a manifest",
                                (long long)json_integer_value(json_object_get(entry, "seq")));
        goto done;
    }
    if ((error = mlreg_registry__blob_get(&body, &blen, reg, &d,
                                          mlreg_registry_max_manifest_bytes(reg))) < 0 ||
        (error = plan_prepare(&plan, reg, repo, tag ? tag : digest, ct, body, blen, PLAN_REPLAY,
                              actor)) < 0)
        goto done;
    c.plan = plan;
    c.actor = actor;
    error = mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len,
                                          manifest_put_apply, &c);

done:
    mlreg_registry__manifest_plan_free(plan);
    free(body);
    return error;
}

int mlreg_registry__replay_manifests(mlreg_registry *reg, const json_t *entry, const char *text,
                                     size_t len)
{
    const char *action = json_string_value(json_object_get(entry, "action"));

    if (!strcmp(action, MLREG_AUDIT_PUSH) || !strcmp(action, MLREG_AUDIT_MANIFEST_PUT))
        return replay_manifest_put(reg, entry, text, len);
    return mlreg_registry__replay_manifest_delete(reg, entry, text, len);
}
