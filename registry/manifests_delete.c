/* manifests_delete.c: deleting a manifest by digest (with its tags and its
 * referrer index entry) or a tag (include/mlreg/registry.h), each one change
 * of mlreg_registry__mutate(), and the replay of those changes from the audit log.
 *
 * Releases, the OCI forms of release signatures and of promotion
 * attestations are immutable: their records in other tables name them, so
 * deleting one is refused here rather than leaving a record without its
 * manifest. */
#include "mlreg/registry.h"

#include "mlreg/common.h"
#include "mlreg/evaluations.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/tables.h"
#include "mlreg/signatures.h"
#include "evaluations_internal.h"
#include "manifests_internal.h"
#include "registry_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
    if ((owned = mlreg_registry__signature_owns_referrer(txn, &sd, digest_str)) < 0) return owned;
    if (owned)
        return mlreg_error_set(MLREG_EDENIED,
                               "manifest %s@%s is the OCI form of a release signature; "
                               "signatures are immutable",
                               repo, digest_str);
    return 0;
}

/* An attestation referrer written by promotions.c has its record in the
 * attestations db (found by promotions.c from the seq of its annotation):
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
    char *end;
    unsigned long long seq;
    int found;

    if (subject == NULL || strlen(subject) != MLREG_DIGEST_STRLEN || seqs == NULL ||
        seqs[0] < '0' || seqs[0] > '9')
        return 0;
    errno = 0;
    seq = strtoull(seqs, &end, 10);
    if (errno != 0 || *end != '\0') return 0;
    if ((found = mlreg_registry__attestation_exists(txn, subject + 7, seq)) <= 0) return found;
    return mlreg_error_set(MLREG_EDENIED,
                           "manifest %s@%s is the OCI form of a promotion attestation; "
                           "attestations are immutable",
                           repo, digest_str);
}

/* An evaluation's referrer stays as long as its record: MLREG_EDENIED. */
static int evaluation_referrer_guard(mlreg_meta_txn *txn, json_t *root, const char *repo,
                                     const char *digest_str)
{
    const char *subject =
        json_string_value(json_object_get(json_object_get(root, "subject"), "digest"));
    mlreg_digest sd;
    int found;

    if (subject == NULL || mlreg_digest_parse(&sd, subject) < 0) {
        mlreg_error_clear();
        return 0;
    }
    if ((found = mlreg_registry__evaluation_owns_referrer(txn, &sd, digest_str)) <= 0) return found;
    return mlreg_error_set(MLREG_EDENIED,
                           "manifest %s@%s is the OCI form of an evaluation; evaluations are "
                           "immutable",
                           repo, digest_str);
}

/* Takes manifest @p hex of @p repo (parsed body @p root) out of the index:
 * its row, the tags that name it, its entry in its subject's referrers and
 * its blob_refs rows, except the row of its own bytes and those of the
 * blobs @p keep (@p nkeep hex digests). Its own bytes stay referenced
 * because its log entry names them: a node rebuilding its index from the
 * log replays the put from those bytes (a few KiB), then this deletion. */
static int unindex(mlreg_meta_txn *txn, const char *repo, const char *hex, const json_t *root,
                   const char *const *keep, size_t nkeep)
{
    char key[REGISTRY_KEY_CAP];
    const char *subject;
    tag_collect c;
    size_t i;
    int error;

    memset(&c, 0, sizeof(c));
    if ((error = mlreg_meta_del(txn, MLREG_DB_MANIFESTS, key,
                                mlreg_registry__key(key, repo, hex, NULL))) < 0 ||
        (error = mlreg_registry__refs_update(txn, repo, hex, root, 0)) < 0 ||
        (error = mlreg_registry__refs_keep(txn, repo, hex, hex)) < 0)
        return error;
    for (i = 0; i < nkeep; i++)
        if ((error = mlreg_registry__refs_keep(txn, repo, hex, keep[i])) < 0) return error;

    c.hex = hex;
    c.plen = mlreg_registry__key(key, repo, "", NULL);
    if ((error = mlreg_meta_iter(txn, MLREG_DB_TAGS, key, c.plen, NULL, 0, collect_tags_cb, &c)) <
        0)
        goto done;
    for (i = 0; i < c.n; i++) {
        if ((error = mlreg_meta_del(txn, MLREG_DB_TAGS, key,
                                    mlreg_registry__key(key, repo, c.tags[i], NULL))) < 0)
            goto done;
    }

    subject = json_string_value(json_object_get(json_object_get(root, "subject"), "digest"));
    error = 0;
    if (subject != NULL && strlen(subject) == MLREG_DIGEST_STRLEN) {
        error = mlreg_meta_del(txn, MLREG_DB_REFERRERS, key,
                               mlreg_registry__key(key, repo, subject + 7, hex));
        if (error == MLREG_ENOTFOUND) error = 0;
    }

done:
    for (i = 0; i < c.n; i++)
        free(c.tags[i]);
    free(c.tags);
    return error;
}

static int delete_by_digest(mlreg_meta_txn *txn, const char *repo, const mlreg_digest *digest)
{
    int error = 0;
    mlreg_manifest_data *data = NULL;
    json_t *root = NULL;
    const char *artifact;
    char hex[MLREG_DIGEST_HEXLEN + 1], str[MLREG_DIGEST_STRLEN + 1];

    mlreg_digest_hex(hex, digest);
    mlreg_digest_format(str, digest);
    if ((error = mlreg_registry__manifest_load_txn(&data, txn, repo, digest)) < 0) goto done;
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
    if (artifact != NULL && strcmp(artifact, MLREG_ARTIFACT_EVALUATION) == 0 &&
        (error = evaluation_referrer_guard(txn, root, repo, str)) < 0)
        goto done;
    error = unindex(txn, repo, hex, root, NULL, 0);

done:
    json_decref(root);
    mlreg_manifest_data_free(data);
    return error;
}

int mlreg_registry__release_unindex(mlreg_meta_txn *txn, const char *repo,
                                    const mlreg_digest *digest, const char *const *keep,
                                    size_t nkeep)
{
    mlreg_manifest_data *data = NULL;
    json_t *root = NULL;
    char hex[MLREG_DIGEST_HEXLEN + 1];
    int error;

    mlreg_digest_hex(hex, digest);
    if ((error = mlreg_registry__manifest_load_txn(&data, txn, repo, digest)) < 0) return error;
    if ((root = json_loadb(data->body, data->len, 0, NULL)) == NULL)
        error = mlreg_error_set(MLREG_EIO, "manifest %s of '%s' does not parse", hex, repo);
    else
        error = unindex(txn, repo, hex, root, keep, nkeep);
    json_decref(root);
    mlreg_manifest_data_free(data);
    return error;
}

/* A manifest DELETE: by digest (the manifest and its tags) or by tag. */
typedef struct {
    const char *repo;
    const char *reference;
    mlreg_digest digest; /* when the reference is a digest */
    const char *actor;
} delete_change;

static int manifest_delete_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    const delete_change *c = arg;
    int error = 0, found;
    char key[REGISTRY_KEY_CAP], str[MLREG_DIGEST_STRLEN + 1];
    size_t klen;
    mlreg_audit_event ev;

    ev = (mlreg_audit_event){
        .actor = mlreg_registry__actor(c->actor), .result = MLREG_AUDIT_OK, .model = c->repo};
    if (mlreg_reference_is_digest(c->reference)) {
        if ((error = delete_by_digest(txn, c->repo, &c->digest)) < 0) return error;
        mlreg_digest_format(str, &c->digest);
        ev.action = MLREG_AUDIT_MANIFEST_DELETE;
        ev.digest = str;
    } else {
        klen = mlreg_registry__key(key, c->repo, c->reference, NULL);
        if ((found = mlreg_registry__meta_has(txn, MLREG_DB_RELEASES, key, klen)) < 0) return found;
        if (found)
            return mlreg_error_set(MLREG_EDENIED,
                                   "'%s:%s' is the version tag of a release; releases are "
                                   "immutable",
                                   c->repo, c->reference);
        error = mlreg_meta_del(txn, MLREG_DB_TAGS, key, klen);
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_ENOTFOUND, "manifest '%s:%s' not found", c->repo,
                                    c->reference);
        if (error < 0) return error;
        ev.action = MLREG_AUDIT_TAG_DELETE;
        ev.tag = c->reference;
    }
    return mlreg_registry__mutation_record(NULL, mut, &ev);
}

int mlreg_registry_manifest_delete(mlreg_registry *reg, const char *repo, const char *reference,
                                   const char *actor)
{
    int error = 0;
    delete_change c;

    memset(&c, 0, sizeof(c));
    c.repo = repo;
    c.reference = reference;
    c.actor = actor;
    if ((error = mlreg_name_validate(repo)) < 0) return error;
    if (mlreg_reference_is_digest(reference)) {
        if ((error = mlreg_digest_parse(&c.digest, reference)) < 0) return error;
    } else if ((error = mlreg_tag_validate(reference)) < 0) {
        return error;
    }
    return mlreg_registry__run(reg, manifest_delete_apply, &c);
}

/* ---- replay ----------------------------------------------------------------- */

int mlreg_registry__replay_manifest_delete(mlreg_registry *reg, const json_t *entry,
                                           const char *text, size_t len)
{
    const char *action = json_string_value(json_object_get(entry, "action"));
    const char *repo = mlreg_registry__entry_subject(entry, "model"),
               *digest = mlreg_registry__entry_subject(entry, "digest");
    const char *tag = mlreg_registry__entry_subject(entry, "tag");
    const char *actor = json_string_value(json_object_get(entry, "actor"));
    delete_change dc;
    mlreg_digest d;

    if (repo == NULL || (digest == NULL && tag == NULL) ||
        (digest != NULL && mlreg_digest_parse(&d, digest) < 0))
        return mlreg_error_set(MLREG_EINVALID, "audit entry %lld of %s lacks its subject",
                               (long long)json_integer_value(json_object_get(entry, "seq")),
                               action);
    memset(&dc, 0, sizeof(dc));
    dc.repo = repo;
    dc.actor = actor;
    if (!strcmp(action, MLREG_AUDIT_MANIFEST_DELETE)) {
        dc.reference = digest;
        dc.digest = d;
    } else {
        dc.reference = tag;
    }
    return mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len,
                                         manifest_delete_apply, &dc);
}
