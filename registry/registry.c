/* registry.c: repositories, blobs, manifests, tags, referrers and releases
 * over the blob store and LMDB metadata (include/mlreg/registry.h).
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
 *        "files":[{"title","kind","digest","size","media_type"}],"pushed_by"}
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
 * Every mutation that changes something appends its audit entry
 * (mlreg_audit_append_txn) in its own write transaction before the commit:
 * if the append fails the mutation fails and nothing is committed. A no-op
 * (a blob the repository already sees, identical manifest content) commits
 * nothing and appends nothing. */
#include "mlreg/registry.h"

#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/keyring.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/signatures.h"
#include "registry_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Longest key: name (255) \0 hex (64) \0 hex (64), or name \0 tag (128). */
#define KEY_CAP 512

struct mlreg_registry {
    mlreg_blobstore *store;
    mlreg_meta *meta;
    mlreg_keyring *keyring;
    mlreg_audit_key *audit_key;
    size_t max_manifest_bytes;
};

/* The identity recorded when a caller passes no actor. */
static const char *actor_or_local(const char *actor)
{
    return actor != NULL ? actor : MLREG_KEYRING_ACTOR_LOCAL;
}

/* Joins up to three parts with NUL separators into @p key; @p b and @p c may
 * be NULL. Callers validate names, tags and digests first, which bounds the
 * length well under KEY_CAP. */
static size_t key_of(char key[KEY_CAP], const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    size_t n = 0, i, l;

    for (i = 0; i < 3 && parts[i] != NULL; i++) {
        l = strlen(parts[i]);
        if (n + l + 1 > KEY_CAP) break; /* unreachable for validated input; keeps the buffer safe */
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
    n = strlen(opts->data_dir) + sizeof("/audit");
    meta_dir = malloc(n);
    audit_dir = malloc(n);
    if (reg == NULL || meta_dir == NULL || audit_dir == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory opening registry");
        goto done;
    }
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
    if ((error = mlreg_meta_open(&reg->meta, meta_dir, opts->map_size)) < 0) goto done;
    /* the log key first: opening the keyring appends entries (config keys) */
    if ((error = mlreg_audit_key_open(&reg->audit_key, audit_dir)) < 0) goto done;
    if ((error = mlreg_keyring_open(&reg->keyring, reg->meta, opts->trusted_keys,
                                    opts->n_trusted_keys)) < 0)
        goto done;

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
    mlreg_keyring_free(reg->keyring);
    mlreg_audit_key_free(reg->audit_key);
    mlreg_meta_close(reg->meta);
    mlreg_blobstore_free(reg->store);
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
static int meta_has(mlreg_meta_txn *txn, mlreg_db db, const char *key, size_t klen)
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
    return meta_has(txn, MLREG_DB_REPOS, repo, strlen(repo));
}

static int repo_require(mlreg_meta_txn *txn, const char *repo)
{
    int found = repo_exists(txn, repo);

    if (found == 0) return mlreg_error_set(MLREG_ENOTFOUND, "repository '%s' not found", repo);
    return found < 0 ? found : 0;
}

static int blob_linked(mlreg_meta_txn *txn, const char *repo, const mlreg_digest *digest)
{
    char key[KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1];

    mlreg_digest_hex(hex, digest);
    return meta_has(txn, MLREG_DB_REPO_BLOBS, key, key_of(key, repo, hex, NULL));
}

static int link_blob_txn(mlreg_meta_txn *txn, const char *repo, const mlreg_digest *digest)
{
    int error = 0;
    char key[KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1];

    mlreg_digest_hex(hex, digest);
    if ((error = mlreg_meta_put(txn, MLREG_DB_REPOS, repo, strlen(repo), "", 0, 0)) < 0)
        return error;
    return mlreg_meta_put(txn, MLREG_DB_REPO_BLOBS, key, key_of(key, repo, hex, NULL), "", 0, 0);
}

int registry_blob_link_txn(mlreg_meta_txn *txn, const char *repo, const mlreg_digest *digest)
{
    return link_blob_txn(txn, repo, digest);
}

int registry_blob_put(mlreg_digest *out, mlreg_registry *reg, const void *data, size_t len)
{
    mlreg_blob_writer *w = NULL;
    int error;

    if ((error = mlreg_blobstore_open_write(&w, reg->store, (int64_t)len)) < 0) return error;
    if ((error = mlreg_blob_writer_write(w, data, len)) < 0) {
        mlreg_blob_writer_abort(w);
        return error;
    }
    return mlreg_blob_writer_commit(out, w, NULL, (int64_t)len);
}

/* Appends the blob.link / blob.delete entry of @p digest in @p repo;
 * @p from names the source repository of a mount (NULL otherwise). */
static int audit_blob(mlreg_meta_txn *txn, const char *action, const char *repo,
                      const mlreg_digest *digest, const char *from, const char *actor)
{
    mlreg_audit_event ev;
    char str[MLREG_DIGEST_STRLEN + 1];
    json_t *details = NULL;
    int error;

    if (from != NULL && (details = json_pack("{s:s}", "from", from)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a blob link");
    mlreg_digest_format(str, digest);
    memset(&ev, 0, sizeof(ev));
    ev.actor = actor_or_local(actor);
    ev.action = action;
    ev.result = MLREG_AUDIT_OK;
    ev.model = repo;
    ev.digest = str;
    ev.details = details;
    error = mlreg_audit_append_txn(NULL, txn, &ev);
    json_decref(details);
    return error;
}

/* Parses the release record stored under model\0version; ENOTFOUND if none. */
static int release_record_get(json_t **out, mlreg_meta_txn *txn, const char *model,
                              const char *version)
{
    int error = 0;
    char key[KEY_CAP];
    void *val = NULL;
    size_t vlen;
    json_error_t jerr;

    if ((error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_RELEASES, key,
                                key_of(key, model, version, NULL))) < 0)
        goto done;
    *out = json_loadb(val, vlen, 0, &jerr);
    if (*out == NULL)
        error = mlreg_error_set(MLREG_EIO, "release record %s@%s is corrupt: %s", model, version,
                                jerr.text);

done:
    free(val);
    return error;
}

/* ---- blobs ---------------------------------------------------------------- */

int mlreg_registry_blob_link(mlreg_registry *reg, const char *repo, const mlreg_digest *digest,
                             const char *actor)
{
    int error = 0, linked;
    mlreg_meta_txn *txn = NULL;

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 1)) < 0) goto done;
    if ((linked = blob_linked(txn, repo, digest)) != 0) {
        error = linked < 0 ? linked : 0; /* already visible: nothing changes */
        goto done;
    }
    if ((error = link_blob_txn(txn, repo, digest)) < 0 ||
        (error = audit_blob(txn, MLREG_AUDIT_BLOB_LINK, repo, digest, NULL, actor)) < 0)
        goto done;
    error = mlreg_meta_txn_commit(txn);
    txn = NULL;

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

/* ENOTFOUND unless @p digest is linked into @p repo. */
static int require_linked(mlreg_registry *reg, const char *repo, const mlreg_digest *digest)
{
    int error = 0, linked;
    mlreg_meta_txn *txn = NULL;
    char str[MLREG_DIGEST_STRLEN + 1];

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 0)) < 0) goto done;
    if ((linked = blob_linked(txn, repo, digest)) < 0) {
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

int mlreg_registry_blob_stat(uint64_t *size_out, mlreg_registry *reg, const char *repo,
                             const mlreg_digest *digest)
{
    int error = require_linked(reg, repo, digest);

    if (error < 0) return error;
    return mlreg_blobstore_stat(size_out, reg->store, digest);
}

int mlreg_registry_blob_open(mlreg_blob_reader **out, uint64_t *size_out, mlreg_registry *reg,
                             const char *repo, const mlreg_digest *digest)
{
    int error = require_linked(reg, repo, digest);

    if (error < 0) return error;
    return mlreg_blobstore_open_read(out, size_out, reg->store, digest);
}

int mlreg_registry_blob_mount(mlreg_registry *reg, const char *repo, const char *from,
                              const mlreg_digest *digest, const char *actor)
{
    int error = 0, linked, stored;
    mlreg_meta_txn *txn = NULL;
    char str[MLREG_DIGEST_STRLEN + 1];

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
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 1)) < 0) goto done;
    if ((linked = blob_linked(txn, from, digest)) < 0) {
        error = linked;
        goto done;
    }
    if (!linked) {
        error = mlreg_error_set(MLREG_ENOTFOUND, "blob %s unknown to repository '%s'", str, from);
        goto done;
    }
    if ((linked = blob_linked(txn, repo, digest)) != 0) {
        error = linked < 0 ? linked : 0; /* already visible: nothing changes */
        goto done;
    }
    if ((error = link_blob_txn(txn, repo, digest)) < 0 ||
        (error = audit_blob(txn, MLREG_AUDIT_BLOB_LINK, repo, digest, from, actor)) < 0)
        goto done;
    error = mlreg_meta_txn_commit(txn);
    txn = NULL;

done:
    mlreg_meta_txn_abort(txn);
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
    char prefix[MLREG_DIGEST_HEXLEN + 1];
    layer_scan ls = {digest, "signature"};
    int found;

    memcpy(prefix, rhex, MLREG_DIGEST_HEXLEN);
    prefix[MLREG_DIGEST_HEXLEN] = '\0';
    /* signatures: hex \0 ... (signatures.c); attestations: hex ‖ be64 seq */
    if ((found = mlreg_meta_iter(txn, MLREG_DB_SIGNATURES, prefix, sizeof(prefix), NULL, 0,
                                 layer_scan_cb, &ls)) != 0) {
        *what_out = "a signature";
        return found;
    }
    ls.field = "envelope";
    if ((found = mlreg_meta_iter(txn, MLREG_DB_ATTESTATIONS, prefix, MLREG_DIGEST_HEXLEN, NULL, 0,
                                 layer_scan_cb, &ls)) != 0)
        *what_out = "an attestation envelope";
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

int mlreg_registry_blob_unlink(mlreg_registry *reg, const char *repo, const mlreg_digest *digest,
                               const char *actor)
{
    int error = 0, linked;
    mlreg_meta_txn *txn = NULL;
    char key[KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1], str[MLREG_DIGEST_STRLEN + 1];
    release_blob_scan scan;
    mlreg_digest empty;

    mlreg_digest_hex(hex, digest);
    mlreg_digest_format(str, digest);
    memset(&scan, 0, sizeof(scan));
    scan.digest = digest;
    scan.hex = hex;
    scan.is_empty_cfg = mlreg_digest_parse(&empty, MLREG_EMPTY_CONFIG_DIGEST) == 0 &&
                        mlreg_digest_equal(&empty, digest);

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 1)) < 0) goto done;
    scan.txn = txn;
    if ((linked = blob_linked(txn, repo, digest)) < 0) {
        error = linked;
        goto done;
    }
    if (!linked) {
        error = mlreg_error_set(MLREG_ENOTFOUND, "blob %s unknown to repository '%s'", str, repo);
        goto done;
    }
    error = mlreg_meta_iter(txn, MLREG_DB_RELEASES, key, key_of(key, repo, "", NULL), NULL, 0,
                            scan_release_blob_cb, &scan);
    if (error < 0) goto done;
    if (error > 0) {
        error =
            mlreg_error_set(MLREG_EDENIED, "blob %s is %s of release %s@%s; releases are immutable",
                            str, scan.is_empty_cfg ? "the config" : scan.what, repo, scan.version);
        goto done;
    }
    if ((error = mlreg_meta_del(txn, MLREG_DB_REPO_BLOBS, key, key_of(key, repo, hex, NULL))) < 0 ||
        (error = audit_blob(txn, MLREG_AUDIT_BLOB_DELETE, repo, digest, NULL, actor)) < 0)
        goto done;
    error = mlreg_meta_txn_commit(txn);
    txn = NULL;

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

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
    char key[KEY_CAP];
    void *val = NULL;
    size_t vlen;

    if (mlreg_reference_is_digest(reference)) return mlreg_digest_parse(out, reference);
    if ((error = mlreg_tag_validate(reference)) < 0) return error;
    error =
        mlreg_meta_get(&val, &vlen, txn, MLREG_DB_TAGS, key, key_of(key, repo, reference, NULL));
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
    char key[KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1], str[MLREG_DIGEST_STRLEN + 1];
    void *val = NULL;
    size_t vlen, ctlen;
    mlreg_manifest_data *m = NULL;

    mlreg_digest_hex(hex, digest);
    error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_MANIFESTS, key, key_of(key, repo, hex, NULL));
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

int registry_manifest_load_txn(mlreg_manifest_data **out, mlreg_meta_txn *txn, const char *repo,
                               const mlreg_digest *digest)
{
    return manifest_load(out, txn, repo, digest);
}

int mlreg_registry_manifest_get(mlreg_manifest_data **out, mlreg_registry *reg, const char *repo,
                                const char *reference)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    mlreg_digest digest;

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 0)) < 0) goto done;
    if ((error = resolve_reference(&digest, txn, repo, reference)) < 0) goto done;
    error = manifest_load(out, txn, repo, &digest);

done:
    mlreg_meta_txn_abort(txn);
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
        error = mlreg_blobstore_stat(&size, reg->store, &d->digest);
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
    char key[KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1];
    const mlreg_descriptor *d;

    if (m->kind == MLREG_MANIFEST_INDEX) {
        for (i = 0; i < m->nlayers; i++) {
            d = &m->layers[i];
            mlreg_digest_hex(hex, &d->digest);
            found = meta_has(txn, MLREG_DB_MANIFESTS, key, key_of(key, repo, hex, NULL));
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
        if ((found = blob_linked(txn, repo, &d->digest)) < 0) return found;
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
    if ((error = mlreg_blobstore_open_read(&r, &size, reg->store, &d->digest)) < 0) goto done;
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
    return rec; /* json_pack's "o" consumed files (also on failure) */
}

/* Everything a PUT prepares before its write transaction. */
typedef struct {
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
static int put_in_txn(int *created, mlreg_meta_txn *txn, const put_plan *p)
{
    int error = 0, found;
    char key[KEY_CAP], shex[MLREG_DIGEST_HEXLEN + 1];
    void *val = NULL;
    size_t vlen, klen;
    json_t *rec = NULL;
    int tag_current = 0;

    *created = 0;
    if ((error = check_refs_visible(txn, p->repo, p->m)) < 0) goto done;

    if (p->tag != NULL) {
        /* A tag with a release record is a version tag: immutable. */
        error = release_record_get(&rec, txn, p->repo, p->tag);
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
                               key_of(key, p->repo, p->tag, NULL));
        if (error == 0)
            tag_current = vlen == MLREG_DIGEST_HEXLEN && memcmp(val, p->hex, vlen) == 0;
        else if (error != MLREG_ENOTFOUND)
            goto done;
        error = 0;
    }

    klen = key_of(key, p->repo, p->hex, NULL);
    if ((found = meta_has(txn, MLREG_DB_MANIFESTS, key, klen)) < 0) {
        error = found;
        goto done;
    }
    if (found && (p->tag == NULL || tag_current))
        goto done; /* identical content already there: a retry, nothing to write */

    if ((error = mlreg_meta_put(txn, MLREG_DB_REPOS, p->repo, strlen(p->repo), "", 0, 0)) < 0)
        goto done;
    if (!found &&
        (error = mlreg_meta_put(txn, MLREG_DB_MANIFESTS, key, klen, p->value, p->vlen, 0)) < 0)
        goto done;
    if (p->tag != NULL &&
        (error = mlreg_meta_put(txn, MLREG_DB_TAGS, key, key_of(key, p->repo, p->tag, NULL), p->hex,
                                MLREG_DIGEST_HEXLEN, 0)) < 0)
        goto done;
    if (p->referrer != NULL) {
        mlreg_digest_hex(shex, &p->m->subject.digest);
        if ((error =
                 mlreg_meta_put(txn, MLREG_DB_REFERRERS, key, key_of(key, p->repo, shex, p->hex),
                                p->referrer, strlen(p->referrer), 0)) < 0)
            goto done;
    }
    if (p->record != NULL && (error = mlreg_meta_put(txn, MLREG_DB_RELEASES, key,
                                                     key_of(key, p->repo, p->info->version, NULL),
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

void registry_manifest_plan_free(registry_manifest_plan *plan)
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
static int plan_prepare(registry_manifest_plan **out, mlreg_registry *reg, const char *repo,
                        const char *reference, const char *content_type, const char *body,
                        size_t len, int precheck_visible, const char *actor)
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
    p->repo = repo;

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    by_digest = mlreg_reference_is_digest(reference);
    if (by_digest)
        error = mlreg_digest_parse(&want, reference);
    else
        error = mlreg_tag_validate(reference);
    if (error < 0) goto done;
    if (len > reg->max_manifest_bytes) {
        error = mlreg_error_set(MLREG_ETOOBIG, "manifest is %zu bytes, at most %zu allowed", len,
                                reg->max_manifest_bytes);
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
    if (precheck_visible) {
        if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 0)) < 0) goto done;
        error = check_refs_visible(txn, repo, plan->m);
        mlreg_meta_txn_abort(txn);
        txn = NULL;
        if (error < 0) goto done;
    }
    if ((error = check_blobs_stored(reg, plan->m)) < 0) goto done;
    if (p->is_release && plan->info.has_eval_report &&
        (error = read_eval_report(&plan->report, reg,
                                  &plan->m->layers[plan->info.eval_report_index])) < 0)
        goto done;

    /* Serialise everything before the transaction so it stays short. */
    ct = content_type;
    if (ct == NULL || ct[strspn(ct, " \t")] == '\0') ct = plan->m->media_type;
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
    registry_manifest_plan_free(plan);
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

int registry_manifest_plan_new(registry_manifest_plan **out, mlreg_registry *reg, const char *repo,
                               const char *content_type, const char *body, size_t len)
{
    char ref[MLREG_DIGEST_STRLEN + 1];
    mlreg_digest d;
    int error;

    if ((error = mlreg_digest_buffer(&d, body, len)) < 0) return error;
    mlreg_digest_format(ref, &d);
    return plan_prepare(out, reg, repo, ref, content_type, body, len, 0, NULL);
}

int registry_manifest_plan_put(mlreg_manifest_put_result *out, mlreg_meta_txn *txn,
                               const registry_manifest_plan *plan)
{
    int error, created = 0;

    if ((error = put_in_txn(&created, txn, &plan->p)) < 0) return error;
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

/* Appends the entry of a manifest PUT that stored something: "push" for a
 * release (put_in_txn creates a release only with its record), else
 * "manifest.put" naming the tag when pushed by tag. */
static int audit_manifest_put(mlreg_meta_txn *txn, const registry_manifest_plan *plan,
                              const char *actor)
{
    const put_plan *p = &plan->p;
    mlreg_audit_event ev;
    char str[MLREG_DIGEST_STRLEN + 1];
    json_t *details = NULL;
    int error;

    mlreg_digest_format(str, &p->digest);
    memset(&ev, 0, sizeof(ev));
    ev.actor = actor_or_local(actor);
    ev.result = MLREG_AUDIT_OK;
    ev.model = p->repo;
    ev.digest = str;
    if (p->is_release) {
        ev.action = MLREG_AUDIT_PUSH;
        ev.version = plan->info.version;
        details = json_pack("{s:I}", "files", (json_int_t)plan->m->nlayers);
    } else {
        ev.action = MLREG_AUDIT_MANIFEST_PUT;
        ev.tag = p->tag;
        if (plan->m->artifact_type != NULL)
            details = json_pack("{s:s}", "artifact_type", plan->m->artifact_type);
    }
    if ((p->is_release || plan->m->artifact_type != NULL) && details == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a manifest");
    ev.details = details;
    error = mlreg_audit_append_txn(NULL, txn, &ev);
    json_decref(details);
    return error;
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
    int error = 0, created = 0;
    registry_manifest_plan *plan = NULL;
    mlreg_meta_txn *txn = NULL;

    if ((error = plan_prepare(&plan, reg, repo, reference, content_type, body, len, 1, actor)) < 0)
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
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 1)) < 0) goto done;
    if ((error = put_in_txn(&created, txn, &plan->p)) < 0) goto done;
    if (created) {
        if ((error = audit_manifest_put(txn, plan, actor)) < 0) goto done;
        error = mlreg_meta_txn_commit(txn);
        txn = NULL;
        if (error < 0) goto done;
    }
    put_result(out, plan, created);

done:
    mlreg_meta_txn_abort(txn);
    registry_manifest_plan_free(plan);
    return error;
}

int registry_release_digest_txn(mlreg_digest *out, mlreg_meta_txn *txn, const char *model,
                                const char *version)
{
    int error = 0;
    json_t *rec = NULL;
    const char *d;

    if ((error = release_record_get(&rec, txn, model, version)) < 0) goto done;
    d = json_string_value(json_object_get(rec, "digest"));
    if (d == NULL || mlreg_digest_parse(out, d) < 0)
        error = mlreg_error_set(MLREG_EIO, "release record %s@%s is corrupt", model, version);

done:
    json_decref(rec);
    return error;
}

/* Collects the tag keys that point at one manifest, to delete them after the
 * walk (the walk's cursor must not see its own deletions). */
typedef struct {
    const char *hex;
    size_t plen;
    char **tags;
    size_t n, cap;
} tag_collect;

static int collect_tags_cb(const void *key, size_t klen, const void *val, size_t vlen,
                           void *payload)
{
    tag_collect *c = payload;
    char **grown;

    if (vlen != MLREG_DIGEST_HEXLEN || memcmp(val, c->hex, vlen) != 0) return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        grown = realloc(c->tags, c->cap * sizeof(*grown));
        if (grown == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory deleting manifest");
        c->tags = grown;
    }
    c->tags[c->n] = strndup((const char *)key + c->plen, klen - c->plen);
    if (c->tags[c->n] == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory deleting manifest");
    c->n++;
    return 0;
}

/* A signature referrer written by signatures.c belongs to its signature
 * record, which names it as "referrer": deleting it alone would leave a
 * listed signature without its OCI form, so it is refused like a release.
 * A look-alike pushed over the OCI API without a record may be deleted. */
static int signature_referrer_guard(mlreg_meta_txn *txn, json_t *root, const char *repo,
                                    const char *digest_str)
{
    const char *subject =
        json_string_value(json_object_get(json_object_get(root, "subject"), "digest"));
    mlreg_digest sd;
    int owned;

    if (subject == NULL || mlreg_digest_parse(&sd, subject) < 0) {
        mlreg_error_clear();
        return 0;
    }
    if ((owned = registry_signature_owns_referrer(txn, &sd, digest_str)) < 0) return owned;
    if (owned)
        return mlreg_error_set(MLREG_EDENIED,
                               "manifest %s@%s is the OCI form of a release signature; "
                               "signatures are immutable",
                               repo, digest_str);
    return 0;
}

/* An attestation referrer written by promotions.c has its record in the
 * attestations db (subject-hex ‖ be64 seq, the seq from its annotation):
 * deleting it would leave a listed attestation without its OCI form, so it
 * is refused. (Pushing a look-alike is refused, so one found here without a
 * record predates that rule and may go.) */
static int attestation_referrer_guard(mlreg_meta_txn *txn, json_t *root, const char *repo,
                                      const char *digest_str)
{
    const char *subject =
        json_string_value(json_object_get(json_object_get(root, "subject"), "digest"));
    const char *seqs = json_string_value(
        json_object_get(json_object_get(root, "annotations"), MLREG_ANN_AUDIT_SEQ));
    char key[MLREG_DIGEST_HEXLEN + 8], *end;
    unsigned long long seq;
    int found;

    if (subject == NULL || strlen(subject) != MLREG_DIGEST_STRLEN || seqs == NULL ||
        seqs[0] < '0' || seqs[0] > '9')
        return 0;
    errno = 0;
    seq = strtoull(seqs, &end, 10);
    if (errno != 0 || *end != '\0') return 0;
    memcpy(key, subject + 7, MLREG_DIGEST_HEXLEN);
    mlreg_be64_put(key + MLREG_DIGEST_HEXLEN, seq);
    if ((found = meta_has(txn, MLREG_DB_ATTESTATIONS, key, sizeof(key))) <= 0) return found;
    return mlreg_error_set(MLREG_EDENIED,
                           "manifest %s@%s is the OCI form of a promotion attestation; "
                           "attestations are immutable",
                           repo, digest_str);
}

static int delete_by_digest(mlreg_meta_txn *txn, const char *repo, const mlreg_digest *digest)
{
    int error = 0;
    mlreg_manifest_data *data = NULL;
    json_t *root = NULL;
    const char *subject, *artifact;
    char key[KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1], str[MLREG_DIGEST_STRLEN + 1];
    tag_collect c;
    size_t i;

    memset(&c, 0, sizeof(c));
    mlreg_digest_hex(hex, digest);
    mlreg_digest_format(str, digest);
    if ((error = manifest_load(&data, txn, repo, digest)) < 0) goto done;
    /* Stored manifests passed validation on PUT, so the body parses; a
     * release (artifactType) had its record written in the same txn. */
    root = json_loadb(data->body, data->len, 0, NULL);
    artifact = json_string_value(json_object_get(root, "artifactType"));
    if (artifact != NULL && strcmp(artifact, MLREG_ARTIFACT_RELEASE) == 0) {
        error = mlreg_error_set(MLREG_EDENIED,
                                "manifest %s@%s is a release; releases are immutable", repo, str);
        goto done;
    }
    if (artifact != NULL && strcmp(artifact, MLREG_ARTIFACT_SIGNATURE) == 0 &&
        (error = signature_referrer_guard(txn, root, repo, str)) < 0)
        goto done;
    if (artifact != NULL && strcmp(artifact, MLREG_ARTIFACT_ATTESTATION) == 0 &&
        (error = attestation_referrer_guard(txn, root, repo, str)) < 0)
        goto done;
    if ((error = mlreg_meta_del(txn, MLREG_DB_MANIFESTS, key, key_of(key, repo, hex, NULL))) < 0)
        goto done;

    c.hex = hex;
    c.plen = key_of(key, repo, "", NULL);
    if ((error = mlreg_meta_iter(txn, MLREG_DB_TAGS, key, c.plen, NULL, 0, collect_tags_cb, &c)) <
        0)
        goto done;
    for (i = 0; i < c.n; i++) {
        if ((error = mlreg_meta_del(txn, MLREG_DB_TAGS, key, key_of(key, repo, c.tags[i], NULL))) <
            0)
            goto done;
    }

    subject = json_string_value(json_object_get(json_object_get(root, "subject"), "digest"));
    if (subject != NULL && strlen(subject) == MLREG_DIGEST_STRLEN) {
        error = mlreg_meta_del(txn, MLREG_DB_REFERRERS, key, key_of(key, repo, subject + 7, hex));
        if (error == MLREG_ENOTFOUND) error = 0;
    }

done:
    for (i = 0; i < c.n; i++)
        free(c.tags[i]);
    free(c.tags);
    json_decref(root);
    mlreg_manifest_data_free(data);
    return error;
}

int mlreg_registry_manifest_delete(mlreg_registry *reg, const char *repo, const char *reference,
                                   const char *actor)
{
    int error = 0, found;
    mlreg_meta_txn *txn = NULL;
    mlreg_digest digest;
    char key[KEY_CAP], str[MLREG_DIGEST_STRLEN + 1];
    size_t klen;
    mlreg_audit_event ev;

    if ((error = mlreg_name_validate(repo)) < 0) goto done;
    if (mlreg_reference_is_digest(reference)) {
        if ((error = mlreg_digest_parse(&digest, reference)) < 0) goto done;
    } else if ((error = mlreg_tag_validate(reference)) < 0) {
        goto done;
    }
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 1)) < 0) goto done;

    memset(&ev, 0, sizeof(ev));
    ev.actor = actor_or_local(actor);
    ev.result = MLREG_AUDIT_OK;
    ev.model = repo;
    if (mlreg_reference_is_digest(reference)) {
        if ((error = delete_by_digest(txn, repo, &digest)) < 0) goto done;
        mlreg_digest_format(str, &digest);
        ev.action = MLREG_AUDIT_MANIFEST_DELETE;
        ev.digest = str;
    } else {
        klen = key_of(key, repo, reference, NULL);
        if ((found = meta_has(txn, MLREG_DB_RELEASES, key, klen)) < 0) {
            error = found;
            goto done;
        }
        if (found) {
            error = mlreg_error_set(MLREG_EDENIED,
                                    "'%s:%s' is the version tag of a release; releases are "
                                    "immutable",
                                    repo, reference);
            goto done;
        }
        error = mlreg_meta_del(txn, MLREG_DB_TAGS, key, klen);
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_ENOTFOUND, "manifest '%s:%s' not found", repo, reference);
        if (error < 0) goto done;
        ev.action = MLREG_AUDIT_TAG_DELETE;
        ev.tag = reference;
    }
    if ((error = mlreg_audit_append_txn(NULL, txn, &ev)) < 0) goto done;
    error = mlreg_meta_txn_commit(txn);
    txn = NULL;

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

/* ---- tags and referrers ----------------------------------------------------- */

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
    char prefix[KEY_CAP], start[KEY_CAP];
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
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 0)) < 0) goto done;
    if ((error = repo_require(txn, repo)) < 0) goto done;
    plen = key_of(prefix, repo, "", NULL);
    pg.plen = plen;
    if (last != NULL) slen = key_of(start, repo, last, NULL);
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
    char prefix[KEY_CAP], start[KEY_CAP], hex[MLREG_DIGEST_HEXLEN + 1];
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
    w.plen = key_of(prefix, repo, hex, "");
    if (last != NULL) {
        mlreg_digest_hex(last_hex, last);
        w.last_hex = last_hex;
        slen = key_of(start, repo, hex, last_hex);
    }
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 0)) < 0) goto done;
    if ((error = repo_require(txn, repo)) < 0) goto done;
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

/* RELEASE_SUMMARY from a stored record (new reference). */
static json_t *release_summary(json_t *rec)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:I, s:O}", "version",
                     json_object_get(rec, "version"), "digest", json_object_get(rec, "digest"),
                     "created", json_object_get(rec, "created"), "git_sha",
                     json_object_get(rec, "git_sha"), "metrics", json_object_get(rec, "metrics"),
                     "files", (json_int_t)json_array_size(json_object_get(rec, "files")), "size",
                     json_object_get(rec, "size"));
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
    char prefix[KEY_CAP];
    size_t plen = 0;
    record_walk w;

    w.records = json_array();
    if (w.records == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
        goto done;
    }
    if (model != NULL) plen = key_of(prefix, model, "", NULL);
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
        if (latest == NULL || release_cmp(&rec, &latest) > 0) latest = rec;
        count++;
        next = i + 1 < json_array_size(records)
                   ? json_string_value(json_object_get(json_array_get(records, i + 1), "model"))
                   : NULL;
        if (next != NULL && model != NULL && strcmp(next, model) == 0) continue;
        entry = json_pack(
            "{s:s?, s:I, s:{s:O, s:O, s:O}}", "name", model, "releases", (json_int_t)count,
            "latest", "version", json_object_get(latest, "version"), "digest",
            json_object_get(latest, "digest"), "created", json_object_get(latest, "created"));
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

int mlreg_registry_release_get(json_t **out, mlreg_registry *reg, const char *name,
                               const char *version)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *rec = NULL, *res = NULL;

    if ((error = mlreg_name_validate(name)) < 0 || (error = mlreg_tag_validate(version)) < 0)
        goto done;
    if ((error = mlreg_meta_txn_begin(&txn, reg->meta, 0)) < 0) goto done;
    error = release_record_get(&rec, txn, name, version);
    if (error == MLREG_ENOTFOUND)
        error = mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", name, version);
    if (error < 0) goto done;
    res = release_summary(rec);
    if (res == NULL || json_object_set(res, "model", json_object_get(rec, "model")) < 0 ||
        json_object_set(res, "eval_dataset", json_object_get(rec, "dataset")) < 0 ||
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
