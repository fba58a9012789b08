/* signatures.c: release signatures on the server (include/mlreg/signatures.h).
 *
 * An attach does all of its checking before anything is written: parse,
 * key ids, keyring, release lookup, verification over the stored manifest
 * bytes, trusted comment, and the "one signature per public key per
 * release" rule (first in a read transaction, so a refused attach writes no
 * blob). Then the .minisig blob is committed to the store (a blob is durable
 * before metadata names it), and one write transaction re-checks the rule
 * and writes the blob links, the OCI referrer manifest, its index entry,
 * the signature record and the "signature.attach" audit entry (one entry:
 * the referrer and its blob links are part of the attach, not mutations of
 * their own).
 * A blob committed for an attach that loses a race to a different signature
 * stays unreferenced in the store, like an abandoned upload; no metadata
 * names it.
 *
 * A record is bound to the full public key, not to its key id: a key id is
 * 8 bytes anyone can put on a fresh key, so keying by id alone let whoever
 * attached first under an id (with a key of their own, before the real key
 * was in the keyring) lock the real signer out of the release for good.
 * This file is the only owner of the signatures db's key layout; records of
 * the older layout (release and key id only) are read where they lie.
 *
 * The referrer manifest is built from the signature alone (no time, sorted
 * keys), so re-attaching the same signature yields the same digest.
 */
#include "mlreg/signatures.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/keyring.h"
#include "mlreg/oci.h"
#include "mlreg/release_sig.h"
#include "mlreg/sign.h"
#include "mlreg/tables.h"
#include "registry_internal.h"

/* Keys of the signatures db:
 *
 *   release digest hex (64) \0 KEYID (16) \0 Ed25519 public key hex (64)
 *
 * Data dirs written before signatures were bound to the full public key
 * hold records under the first SIG_LEGACY_KEY_LEN bytes of that (release
 * digest hex \0 KEYID); every such record names its "public_key", so it is
 * read as the signature of that key, and no record of the new layout is
 * ever written for a key that has a legacy record on the release. Both
 * layouts start with the release digest hex and its NUL, so a prefix walk
 * over a release sees both. */
#define SIG_LEGACY_KEY_LEN (MLREG_DIGEST_HEXLEN + 1 + MLREG_KEYID_HEXLEN)
#define SIG_KEY_LEN        (SIG_LEGACY_KEY_LEN + 1 + 2 * MLREG_PUBKEY_BYTES)
/* Longest .minisig text replayed from the blob store: the two comment
 * lines at their limits plus the two base64 lines. */
#define SIG_TEXT_MAX (MLREG_SIGN_UNTRUSTED_COMMENT_MAX + MLREG_SIGN_TRUSTED_COMMENT_MAX + 1024)
/* Length of the release prefix of both layouts: digest hex and a NUL. */
#define SIG_PREFIX_LEN (MLREG_DIGEST_HEXLEN + 1)

static void sig_key(char key[SIG_KEY_LEN], const mlreg_digest *release, const mlreg_pubkey *pk)
{
    char hex[MLREG_DIGEST_HEXLEN + 1], id[MLREG_KEYID_HEXLEN + 1];
    char pkhex[2 * MLREG_PUBKEY_BYTES + 1];

    mlreg_digest_hex(hex, release);
    mlreg_keyid_format(id, &pk->id);
    sodium_bin2hex(pkhex, sizeof(pkhex), pk->pk, MLREG_PUBKEY_BYTES);
    memcpy(key, hex, MLREG_DIGEST_HEXLEN);
    key[MLREG_DIGEST_HEXLEN] = '\0';
    memcpy(key + SIG_PREFIX_LEN, id, MLREG_KEYID_HEXLEN);
    key[SIG_LEGACY_KEY_LEN] = '\0';
    memcpy(key + SIG_LEGACY_KEY_LEN + 1, pkhex, 2 * MLREG_PUBKEY_BYTES);
}

/* The public key a stored record names: 0, or MLREG_EIO (corrupt). */
static int record_pubkey(mlreg_pubkey *out, const json_t *rec)
{
    const char *b64 = json_string_value(json_object_get(rec, "public_key"));

    if (b64 == NULL || mlreg_pubkey_parse(out, b64, strlen(b64)) < 0)
        return mlreg_error_set(MLREG_EIO, "signature record is corrupt: no valid public key");
    return 0;
}

/* ---- the trusted comment ------------------------------------------------------ */

/* The first four fields must name exactly this release; anything after
 * them is " key=value" fields separated by single spaces. The grammar is the
 * client's (mlreg_release_comment_check): a comment the server stores must
 * be one that `mlreg verify` accepts, or a key holder could attach a
 * signature (say "... x=" or a tab in a field) that makes every later verify
 * of the release fail. */
static int comment_check(const char *c, const char *model, const char *version, const char *digest)
{
    return mlreg_release_comment_check(c, model, version, digest);
}

/* ---- attach ------------------------------------------------------------------ */

/* The OCI referrer manifest of a signature: deterministic bytes. Two keys
 * may share a key id, so the manifest names the full public key too. */
static int referrer_manifest(char **out, const mlreg_manifest_data *release,
                             const mlreg_digest *blob, size_t blob_len, const char *idhex,
                             const mlreg_pubkey *pk)
{
    char d[MLREG_DIGEST_STRLEN + 1], rd[MLREG_DIGEST_STRLEN + 1], title[MLREG_KEYID_HEXLEN + 16];
    char b64[MLREG_PUBKEY_B64LEN + 1];
    json_t *j;

    mlreg_digest_format(d, blob);
    mlreg_digest_format(rd, &release->digest);
    mlreg_pubkey_base64(b64, pk);
    snprintf(title, sizeof(title), "%s.minisig", idhex);
    j = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:I, s:{s:s}}], "
                  "s:{s:s, s:s, s:I}, s:{s:s, s:s}}",
                  "schemaVersion", 2, "mediaType", MLREG_MT_OCI_MANIFEST, "artifactType",
                  MLREG_ARTIFACT_SIGNATURE, "config", "mediaType", MLREG_MT_OCI_EMPTY, "digest",
                  MLREG_EMPTY_CONFIG_DIGEST, "size", 2, "layers", "mediaType",
                  MLREG_ARTIFACT_SIGNATURE, "digest", d, "size", (json_int_t)blob_len,
                  "annotations", MLREG_ANN_TITLE, title, "subject", "mediaType",
                  release->content_type, "digest", rd, "size", (json_int_t)release->len,
                  "annotations", MLREG_ANN_KEY_ID, idhex, MLREG_ANN_PUBLIC_KEY, b64);
    if (j == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory building the referrer");
    *out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (*out == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory building the referrer");
    return 0;
}

/* The record stored under the first @p klen bytes of @p key into *out
 * (owned by the caller): 0, MLREG_ENOTFOUND (no message), MLREG_EIO. */
static int load_record(json_t **out, mlreg_meta_txn *txn, const char *key, size_t klen)
{
    void *val = NULL;
    size_t vlen;
    int error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_SIGNATURES, key, klen);

    if (error == MLREG_ENOTFOUND) {
        mlreg_error_clear();
        return error;
    }
    if (error < 0) return error;
    *out = json_loadb(val, vlen, 0, NULL);
    free(val);
    if (*out == NULL || !json_is_string(json_object_get(*out, "signature"))) {
        json_decref(*out);
        *out = NULL;
        return mlreg_error_set(MLREG_EIO, "signature record is corrupt");
    }
    return 0;
}

/* The stored signature of the release by public key @p pk (@p key is its
 * full key), compared with the new signature @p text: 1 identical
 * (*rec_out set), 0 none, MLREG_EDENIED when another signature by this key
 * is there, or an error. A legacy record under the key id is this key's
 * only when it names this public key: another key with the same id is
 * another signer. */
static int existing_signature(json_t **rec_out, mlreg_meta_txn *txn, const char *key,
                              const mlreg_pubkey *pk, const char *text, const char *model,
                              const char *version, const char *idhex)
{
    json_t *rec = NULL;
    mlreg_pubkey have_pk;
    int error = load_record(&rec, txn, key, SIG_KEY_LEN);

    if (error == MLREG_ENOTFOUND) {
        error = load_record(&rec, txn, key, SIG_LEGACY_KEY_LEN);
        if (error == 0 && (error = record_pubkey(&have_pk, rec)) == 0 &&
            !mlreg_pubkey_equal(&have_pk, pk))
            error = MLREG_ENOTFOUND; /* another key's, under the same id */
    }
    if (error < 0) {
        if (error == MLREG_ENOTFOUND) error = 0; /* no signature by this key yet */
        goto done;
    }
    if (strcmp(json_string_value(json_object_get(rec, "signature")), text)) {
        error = mlreg_error_set(MLREG_EDENIED,
                                "%s@%s already has a different signature by key %s; one "
                                "signature per key per release",
                                model, version, idhex);
        goto done;
    }
    *rec_out = rec;
    rec = NULL;
    error = 1;

done:
    json_decref(rec);
    return error;
}

/* Everything an attach checks before writing. */
typedef struct {
    mlreg_sig *sig;
    mlreg_pubkey pk;
    char idhex[MLREG_KEYID_HEXLEN + 1];
    char *text; /* the .minisig text, ending in exactly one '\n' */
    size_t tlen;
    mlreg_manifest_data *release;
    char digest[MLREG_DIGEST_STRLEN + 1];
    char key[SIG_KEY_LEN];
} attach_ctx;

static int attach_check(attach_ctx *a, json_t **existing, mlreg_registry *reg, const char *model,
                        const char *version, const char *sig_text, size_t sig_len,
                        const char *public_key, size_t pk_len)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    mlreg_keyring_key kk;
    mlreg_digest rd;
    char pkid[MLREG_KEYID_HEXLEN + 1];

    if ((error = mlreg_name_validate(model)) < 0 || (error = mlreg_tag_validate(version)) < 0)
        return error;
    if ((error = mlreg_sig_parse(&a->sig, sig_text, sig_len)) < 0) return error;
    if (!mlreg_sig_is_prehashed(a->sig))
        return mlreg_error_set(MLREG_EINVALID,
                               "malformed signature: legacy (non-prehashed \"Ed\") signatures "
                               "are not accepted; sign with minisign 0.8 or later");
    if ((error = mlreg_pubkey_parse(&a->pk, public_key, pk_len)) < 0) return error;
    mlreg_keyid_format(a->idhex, mlreg_sig_key_id(a->sig));
    mlreg_keyid_format(pkid, &a->pk.id);
    if (!mlreg_keyid_equal(mlreg_sig_key_id(a->sig), &a->pk.id))
        return mlreg_error_set(
            MLREG_EINVALID, "signature made by key ID %s, not by the given key %s", a->idhex, pkid);

    /* canonical text: what minisign writes, one final newline */
    a->tlen = sig_len + (sig_text[sig_len - 1] != '\n');
    if ((a->text = malloc(a->tlen + 1)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory attaching a signature");
    memcpy(a->text, sig_text, sig_len);
    a->text[a->tlen - 1] = '\n';
    a->text[a->tlen] = '\0';

    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    error = mlreg_keyring_find(&kk, mlreg_registry_keyring(reg), txn, &a->pk.id);
    if (error == 0 && !mlreg_pubkey_equal(&kk.pubkey, &a->pk)) {
        error =
            mlreg_error_set(MLREG_EINVALID, "public key differs from the trusted key %s", a->idhex);
        goto done;
    }
    if (error < 0 && error != MLREG_ENOTFOUND) goto done;
    error = mlreg_registry__release_digest_txn(&rd, txn, model, version, 0);
    mlreg_meta_txn_abort(txn);
    txn = NULL;
    if (error == MLREG_ENOTFOUND) {
        /* a version tag without a release record is plain OCI content */
        error = mlreg_registry_manifest_get(&a->release, reg, model, version);
        if (error == 0)
            error = mlreg_error_set(MLREG_EUNSUPPORTED,
                                    "%s:%s is not a release; only releases take signatures", model,
                                    version);
        else if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", model, version);
        goto done;
    }
    if (error < 0) goto done;
    mlreg_digest_format(a->digest, &rd);
    if ((error = mlreg_registry_manifest_get(&a->release, reg, model, a->digest)) < 0) goto done;
    mlreg_digest_format(a->digest, &a->release->digest);

    error = mlreg_sig_check_data(a->sig, &a->pk, a->release->body, a->release->len);
    if (error == MLREG_ESIGNATURE)
        error = mlreg_error_set(MLREG_EMISMATCH, "signature does not match the manifest of %s@%s",
                                model, version);
    if (error < 0) goto done;
    if ((error = comment_check(mlreg_sig_trusted_comment(a->sig), model, version, a->digest)) < 0)
        goto done;

    sig_key(a->key, &a->release->digest, &a->pk);
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    error = existing_signature(existing, txn, a->key, &a->pk, a->text, model, version, a->idhex);

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

static json_t *attach_reply(const char *model, const char *version, const char *digest,
                            const char *idhex, const mlreg_pubkey *pk, int trusted,
                            const char *key_name, const char *referrer)
{
    char b64[MLREG_PUBKEY_B64LEN + 1];

    mlreg_pubkey_base64(b64, pk);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s?, s:s}", "model", model, "version",
                     version, "digest", digest, "key_id", idhex, "public_key", b64, "trusted",
                     trusted, "key_name", key_name, "referrer", referrer);
}

/* The write half of an attach: everything prepared outside the
 * transaction, and what the apply found for the reply. */
typedef struct {
    mlreg_registry *reg;
    attach_ctx *a;
    const char *model;
    const char *version;
    const char *actor;
    const mlreg_digest *blob;
    const mlreg_digest *empty;
    const registry_manifest_plan *plan;
    json_t **existing;
    mlreg_keyring_key kk;
    const mlreg_keyring_key *kkp;
    int counts;
    char referrer[MLREG_DIGEST_STRLEN + 1];
} attach_change;

/* Back to what was prepared outside the transaction: a change that lost its
 * log seq to another node is applied again, and what the run thrown away
 * found (a stored signature, the key, whether it counts) is not this run's. */
static void attach_change_reset(attach_change *c)
{
    json_decref(*c->existing);
    *c->existing = NULL;
    memset(&c->kk, 0, sizeof(c->kk));
    c->kkp = NULL;
    c->counts = 0;
    c->referrer[0] = '\0';
}

static int attach_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    attach_change *c = arg;
    attach_ctx *a = c->a;
    int error = 0, found;
    json_t *rec = NULL, *details = NULL;
    char *rectext = NULL;
    mlreg_manifest_put_result put;
    mlreg_audit_event ev;
    char t[MLREG_TIME_STRLEN], b64[MLREG_PUBKEY_B64LEN + 1], sigblob[MLREG_DIGEST_STRLEN + 1];
    int64_t now = mlreg_registry__mutation_time(mut);

    attach_change_reset(c);
    /* the read-transaction checks again, now that writers are serialised */
    if ((found = existing_signature(c->existing, txn, a->key, &a->pk, a->text, c->model, c->version,
                                    a->idhex)) < 0)
        return found;
    if (found) return REGISTRY_MUTATE_NOOP;
    if (mlreg_registry__mutation_source(mut) != NULL) {
        /* whether the key counted then is recorded, not judged again */
        c->counts = json_is_true(json_object_get(
            json_object_get(mlreg_registry__mutation_source(mut), "details"), "trusted_at_attach"));
    } else {
        error = mlreg_keyring_find(&c->kk, mlreg_registry_keyring(c->reg), txn, &a->pk.id);
        if (error == 0) {
            if (!mlreg_pubkey_equal(&c->kk.pubkey, &a->pk))
                return mlreg_error_set(MLREG_EINVALID, "public key differs from the trusted key %s",
                                       a->idhex);
            c->kkp = &c->kk;
        } else if (error != MLREG_ENOTFOUND) {
            return error;
        }
        error = 0;
        mlreg_keyring_judge(&c->counts, c->kkp, &a->pk, now);
    }
    if ((error = mlreg_registry__blob_link_txn(mut, txn, c->reg, c->model, c->blob)) < 0 ||
        (error = mlreg_registry__blob_link_txn(mut, txn, c->reg, c->model, c->empty)) < 0 ||
        (error = mlreg_registry__manifest_plan_put(&put, mut, txn, c->plan)) < 0)
        goto done;
    mlreg_digest_format(c->referrer, &put.digest);
    mlreg_time_format(t, now);
    mlreg_pubkey_base64(b64, &a->pk);
    rec =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:b, s:s}", "model", c->model,
                  "version", c->version, "digest", a->digest, "key_id", a->idhex, "public_key", b64,
                  "signature", a->text, "attached_at", t, "attached_ns", (json_int_t)now,
                  "attached_by", c->actor, "trusted_at_attach", c->counts, "referrer", c->referrer);
    mlreg_digest_format(sigblob, c->blob);
    /* the key id alone does not say which key; the signature's bytes are
     * the blob named, and whether the key counted is not the log's to guess */
    if (rec == NULL || (rectext = json_dumps(rec, JSON_COMPACT)) == NULL ||
        (details = json_pack("{s:s, s:s, s:b}", "public_key", b64, "signature_blob", sigblob,
                             "trusted_at_attach", c->counts)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory attaching a signature");
        goto done;
    }
    if ((error = mlreg_meta_put(txn, MLREG_DB_SIGNATURES, a->key, SIG_KEY_LEN, rectext,
                                strlen(rectext), 1)) < 0)
        goto done;
    ev = (mlreg_audit_event){.actor = c->actor,
                             .action = MLREG_AUDIT_SIGNATURE_ATTACH,
                             .result = MLREG_AUDIT_OK,
                             .model = c->model,
                             .version = c->version,
                             .digest = a->digest,
                             .key_id = a->idhex,
                             .details = details};
    error = mlreg_registry__mutation_record(NULL, mut, &ev);

done:
    json_decref(rec);
    json_decref(details);
    free(rectext);
    return error;
}

int mlreg_signature_attach(json_t **out, int *created_out, mlreg_registry *reg, const char *model,
                           const char *version, const char *sig_text, size_t sig_len,
                           const char *public_key, size_t pk_len, const char *actor)
{
    int error = 0, counts = 0;
    attach_ctx a;
    attach_change c;
    json_t *existing = NULL, *reply = NULL;
    mlreg_meta_txn *txn = NULL;
    mlreg_digest blob, empty;
    char *manifest = NULL;
    registry_manifest_plan *plan = NULL;
    mlreg_keyring_key kk;
    const mlreg_keyring_key *kkp = NULL;

    memset(&a, 0, sizeof(a));
    memset(&c, 0, sizeof(c));
    if (sig_len == 0) {
        error = mlreg_error_set(MLREG_EINVALID, "malformed signature: empty");
        goto done;
    }
    if ((error = attach_check(&a, &existing, reg, model, version, sig_text, sig_len, public_key,
                              pk_len)) < 0)
        goto done;
    if (error == 1) goto identical;

    /* blobs first: durable before any metadata names them */
    if ((error = mlreg_registry__blob_put(&blob, reg, a.text, a.tlen)) < 0 ||
        (error = mlreg_registry__blob_put(&empty, reg, MLREG_EMPTY_CONFIG,
                                          strlen(MLREG_EMPTY_CONFIG))) < 0)
        goto done;
    if ((error = referrer_manifest(&manifest, a.release, &blob, a.tlen, a.idhex, &a.pk)) < 0)
        goto done;
    if ((error = mlreg_registry__manifest_plan_new(&plan, reg, model, MLREG_MT_OCI_MANIFEST,
                                                   manifest, strlen(manifest))) < 0)
        goto done;

    c.reg = reg;
    c.a = &a;
    c.model = model;
    c.version = version;
    c.actor = actor;
    c.blob = &blob;
    c.empty = &empty;
    c.plan = plan;
    c.existing = &existing;
    error = mlreg_registry__mutate(NULL, mlreg_registry_meta(reg), attach_apply, &c);
    if (error == REGISTRY_MUTATE_NOOP) goto identical;
    if (error < 0) goto done;
    if ((reply = attach_reply(model, version, a.digest, a.idhex, &a.pk, c.counts,
                              c.kkp ? c.kk.name : NULL, c.referrer)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory attaching a signature");
        goto done;
    }
    *out = reply;
    *created_out = 1;
    goto done;

identical:
    /* a retried attach: answer from the stored record, write nothing */
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    error = mlreg_keyring_find(&kk, mlreg_registry_keyring(reg), txn, &a.pk.id);
    if (error == 0)
        kkp = &kk;
    else if (error != MLREG_ENOTFOUND)
        goto done;
    error = 0;
    if (mlreg_keyring_judge(&counts, kkp, &a.pk,
                            (int64_t)json_integer_value(json_object_get(
                                existing, "attached_ns"))) == MLREG_SIGSTATUS_UNTRUSTED)
        kkp = NULL;
    if ((reply =
             attach_reply(model, version, a.digest, a.idhex, &a.pk, counts, kkp ? kk.name : NULL,
                          json_string_value(json_object_get(existing, "referrer")))) == NULL) {
        error = mlreg_error_set(MLREG_EIO, "signature record of %s@%s by %s is corrupt", model,
                                version, a.idhex);
        goto done;
    }
    *out = reply;
    *created_out = 0;

done:
    mlreg_meta_txn_abort(txn);
    mlreg_registry__manifest_plan_free(plan);
    json_decref(existing);
    free(manifest);
    free(a.text);
    mlreg_sig_free(a.sig);
    mlreg_manifest_data_free(a.release);
    return error < 0 ? error : 0;
}

int mlreg_registry__replay_signature(mlreg_registry *reg, const json_t *entry, const char *text,
                                     size_t len)
{
    const json_t *subject = json_object_get(entry, "subject");
    const json_t *details = json_object_get(entry, "details");
    const char *model = json_string_value(json_object_get(subject, "model"));
    const char *version = json_string_value(json_object_get(subject, "version"));
    const char *pk = json_string_value(json_object_get(details, "public_key"));
    const char *sigblob = json_string_value(json_object_get(details, "signature_blob"));
    int error = 0;
    attach_ctx a;
    attach_change c;
    json_t *existing = NULL;
    mlreg_digest blob, empty;
    char *sig = NULL, *manifest = NULL;
    size_t siglen = 0;
    registry_manifest_plan *plan = NULL;

    memset(&a, 0, sizeof(a));
    memset(&c, 0, sizeof(c));
    if (model == NULL || version == NULL || pk == NULL || sigblob == NULL ||
        mlreg_digest_parse(&blob, sigblob) < 0) {
        error = mlreg_error_set(MLREG_EINVALID, "audit entry %lld does not name a signature",
                                (long long)json_integer_value(json_object_get(entry, "seq")));
        goto done;
    }
    /* the same checks as the attach: the signature verifies against the
     * release as replayed so far */
    if ((error = mlreg_registry__blob_get(&sig, &siglen, reg, &blob, SIG_TEXT_MAX)) < 0 ||
        (error = attach_check(&a, &existing, reg, model, version, sig, siglen, pk, strlen(pk))) <
            0 ||
        (error = mlreg_registry__blob_put(&empty, reg, MLREG_EMPTY_CONFIG,
                                          strlen(MLREG_EMPTY_CONFIG))) < 0 ||
        (error = referrer_manifest(&manifest, a.release, &blob, a.tlen, a.idhex, &a.pk)) < 0 ||
        (error = mlreg_registry__manifest_plan_new(&plan, reg, model, MLREG_MT_OCI_MANIFEST,
                                                   manifest, strlen(manifest))) < 0)
        goto done;
    /* the apply looks for an attached signature again, inside its txn */
    json_decref(existing);
    existing = NULL;
    c.reg = reg;
    c.a = &a;
    c.model = model;
    c.version = version;
    c.actor = json_string_value(json_object_get(entry, "actor"));
    c.blob = &blob;
    c.empty = &empty;
    c.plan = plan;
    c.existing = &existing;
    error =
        mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len, attach_apply, &c);

done:
    mlreg_registry__manifest_plan_free(plan);
    json_decref(existing);
    free(manifest);
    free(sig);
    free(a.text);
    mlreg_sig_free(a.sig);
    mlreg_manifest_data_free(a.release);
    return error;
}

/* ---- list -------------------------------------------------------------------- */

typedef struct {
    mlreg_registry *reg;
    mlreg_meta_txn *txn;
    json_t *sigs;
} list_walk;

static int list_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    list_walk *w = payload;
    json_t *rec = NULL, *item = NULL;
    mlreg_pubkey pk;
    mlreg_keyring_key kk;
    const mlreg_keyring_key *kkp = NULL;
    const char *b64;
    int error = 0, counts;
    mlreg_sigstatus st;

    if (klen != SIG_KEY_LEN && klen != SIG_LEGACY_KEY_LEN)
        return mlreg_error_set(MLREG_EIO, "signature index entry is corrupt");
    rec = json_loadb(val, vlen, 0, NULL);
    if (rec == NULL || (b64 = json_string_value(json_object_get(rec, "public_key"))) == NULL ||
        mlreg_pubkey_parse(&pk, b64, strlen(b64)) < 0) {
        error = mlreg_error_set(MLREG_EIO, "signature record %.16s is corrupt",
                                (const char *)key + SIG_PREFIX_LEN);
        goto done;
    }
    error = mlreg_keyring_find(&kk, mlreg_registry_keyring(w->reg), w->txn, &pk.id);
    if (error == 0)
        kkp = &kk;
    else if (error != MLREG_ENOTFOUND)
        goto done;
    error = 0;
    st = mlreg_keyring_judge(&counts, kkp, &pk,
                             (int64_t)json_integer_value(json_object_get(rec, "attached_ns")));
    if (st == MLREG_SIGSTATUS_UNTRUSTED) kkp = NULL; /* another key under that id */
    item = json_pack(
        "{s:O?, s:s, s:O?, s:O?, s:O?, s:O?, s:s?, s:s?, s:s, s:b}", "key_id",
        json_object_get(rec, "key_id"), "public_key", b64, "signature",
        json_object_get(rec, "signature"), "attached_at", json_object_get(rec, "attached_at"),
        "attached_by", json_object_get(rec, "attached_by"), "trusted_at_attach",
        json_object_get(rec, "trusted_at_attach"), "key_name", kkp ? kkp->name : NULL, "role",
        kkp ? kkp->role : NULL, "status", mlreg_sigstatus_name(st), "counts", counts);
    if (item == NULL || json_array_append_new(w->sigs, item) < 0)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing signatures");

done:
    json_decref(rec);
    return error;
}

int mlreg_signatures_list(json_t **out, mlreg_registry *reg, const char *model, const char *version)
{
    int error = 0;
    list_walk w;
    mlreg_digest rd;
    char prefix[MLREG_DIGEST_HEXLEN + 1], digest[MLREG_DIGEST_STRLEN + 1];

    memset(&w, 0, sizeof(w));
    w.reg = reg;
    if ((error = mlreg_registry__release_listing_begin(&w.txn, &rd, reg, model, version)) < 0)
        goto done;
    if ((w.sigs = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing signatures");
        goto done;
    }
    mlreg_digest_hex(prefix, &rd);
    mlreg_digest_format(digest, &rd);
    /* the prefix includes the NUL after the hex: both key layouts */
    if ((error = mlreg_meta_iter(w.txn, MLREG_DB_SIGNATURES, prefix, SIG_PREFIX_LEN, NULL, 0,
                                 list_cb, &w)) < 0)
        goto done;
    error = 0;
    if ((*out = json_pack("{s:s, s:s, s:s, s:O}", "model", model, "version", version, "digest",
                          digest, "signatures", w.sigs)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing signatures");

done:
    mlreg_meta_txn_abort(w.txn);
    json_decref(w.sigs);
    return error;
}

/* ---- referrer ownership ---------------------------------------------------------- */

typedef struct {
    const char *referrer;
} owner_walk;

static int owner_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    owner_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *ref = json_string_value(json_object_get(rec, "referrer"));
    int owned = ref != NULL && !strcmp(ref, w->referrer);

    (void)key;
    (void)klen;
    json_decref(rec);
    return owned;
}

int mlreg_registry__signature_owns_referrer(mlreg_meta_txn *txn, const mlreg_digest *subject,
                                            const char *referrer)
{
    char prefix[MLREG_DIGEST_HEXLEN + 1];
    owner_walk w = {referrer};

    mlreg_digest_hex(prefix, subject);
    return mlreg_registry__signatures_foreach(txn, prefix, owner_cb, &w);
}

int mlreg_registry__signatures_foreach(mlreg_meta_txn *txn, const char *hex, mlreg_meta_iter_cb cb,
                                       void *payload)
{
    char prefix[SIG_PREFIX_LEN];

    /* both layouts start with the release digest hex and its NUL */
    memcpy(prefix, hex, MLREG_DIGEST_HEXLEN);
    prefix[MLREG_DIGEST_HEXLEN] = '\0';
    return mlreg_meta_iter(txn, MLREG_DB_SIGNATURES, prefix, SIG_PREFIX_LEN, NULL, 0, cb, payload);
}
