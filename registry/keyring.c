/* keyring.c: the trusted keyring (include/mlreg/keyring.h): config keys
 * merged with runtime trust and revocations stored in LMDB.
 *
 * The config file is re-read at every start, LMDB is not: so a record in
 * `keys` remembers what happened to a key (when it entered, whether and when
 * it was revoked), while membership of a config-sourced key is decided by
 * the config file of this start (or of the last reload: a reload syncs
 * again, mlreg_keyring_reload_config()). That is what lets a runtime revocation
 * outlive a restart with a config that still lists the key, and lets an
 * operator drop a key by deleting it from the config.
 *
 * Every change, the start-up sync with the config included, is an apply
 * function run by mlreg_registry__mutate() (mutate.c) in one LMDB write
 * transaction, which also serialises them; the time of a change is taken
 * inside its transaction, so times and commit order agree
 * (mlreg_time_now_ns() never repeats a value). Each change's audit entry
 * (key.trust / key.revoke / key.untrust) is recorded in that same
 * transaction, with the same time.
 *
 * This file holds the records and key events (shared with keyring_changes.c
 * through keyring_internal.h), opening with the start-up sync, the lookups
 * and the listings; keyring_changes.c holds the runtime trust and
 * revocation and the replay of key.* audit entries.
 */
#include "mlreg/keyring.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/names.h"
#include "mlreg/tables.h"
#include "keyring_internal.h"
#include "registry_internal.h"
#include "mlreg/time.h"

#define EVENT_SEQ_KEY "key_event_seq"

/* ---- records --------------------------------------------------------------- */

const config_set *mlreg_keyring__config(const mlreg_keyring *kr)
{
    return __atomic_load_n(&kr->cfg, __ATOMIC_ACQUIRE);
}

static const config_key *set_find(const config_set *s, const mlreg_keyid *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (mlreg_keyid_equal(&s->keys[i].pubkey.id, id)) return &s->keys[i];
    return NULL;
}

static const config_key *config_find(const mlreg_keyring *kr, const mlreg_keyid *id)
{
    return set_find(mlreg_keyring__config(kr), id);
}

/* Reads the record of @p idhex: 0 (*out owned by the caller), MLREG_ENOTFOUND
 * (no message), MLREG_EIO. */
int mlreg_keyring__record_get(json_t **out, mlreg_meta_txn *txn, const char *idhex)
{
    void *val = NULL;
    size_t vlen;
    json_error_t jerr;
    int error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_KEYS, idhex, MLREG_KEYID_HEXLEN);

    if (error == MLREG_ENOTFOUND) mlreg_error_clear();
    if (error < 0) return error;
    *out = json_loadb(val, vlen, 0, &jerr);
    free(val);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return mlreg_error_set(MLREG_EIO, "keyring record %s is corrupt", idhex);
    }
    return 0;
}

int mlreg_keyring__record_put(mlreg_meta_txn *txn, const char *idhex, const json_t *rec)
{
    char *text = json_dumps(rec, JSON_COMPACT);
    int error;

    if (text == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory storing key record");
    error = mlreg_meta_put(txn, MLREG_DB_KEYS, idhex, MLREG_KEYID_HEXLEN, text, strlen(text), 0);
    free(text);
    return error;
}

const char *mlreg_keyring__rec_str(const json_t *rec, const char *field)
{
    return json_string_value(json_object_get(rec, field));
}

/* The public key a record holds. */
int mlreg_keyring__record_pubkey(mlreg_pubkey *out, const json_t *rec, const char *idhex)
{
    const char *b64 = mlreg_keyring__rec_str(rec, "public_key");

    if (b64 == NULL || mlreg_pubkey_parse(out, b64, strlen(b64)) < 0)
        return mlreg_error_set(MLREG_EIO, "keyring record %s is corrupt (public key)", idhex);
    return 0;
}

mlreg_key_state mlreg_keyring__record_state(const json_t *rec)
{
    const char *r = mlreg_keyring__rec_str(rec, "revocation");

    if (r == NULL) return MLREG_KEY_ACTIVE;
    return strcmp(r, "compromised") ? MLREG_KEY_RETIRED : MLREG_KEY_COMPROMISED;
}

/* A record belongs to the keyring when trusted at runtime, or when the
 * config file of this start lists its key. */
int mlreg_keyring__record_in_keyring(const mlreg_keyring *kr, const json_t *rec,
                                     const mlreg_keyid *id)
{
    const char *src = mlreg_keyring__rec_str(rec, "source");

    return (src != NULL && !strcmp(src, "runtime")) || config_find(kr, id) != NULL;
}

/* The key object of the wire contract. */
json_t *mlreg_keyring__key_object(const mlreg_keyring *kr, const json_t *rec, const mlreg_keyid *id)
{
    const char *rev = mlreg_keyring__rec_str(rec, "revocation");

    return json_pack("{s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:s?, s:s?, s:s?}", "key_id",
                     mlreg_keyring__rec_str(rec, "key_id"), "name",
                     mlreg_keyring__rec_str(rec, "name"), "role",
                     mlreg_keyring__rec_str(rec, "role"), "public_key",
                     mlreg_keyring__rec_str(rec, "public_key"), "source",
                     config_find(kr, id) ? "config" : "runtime", "added_at",
                     mlreg_keyring__rec_str(rec, "added_at"), "revoked_at",
                     rev ? mlreg_keyring__rec_str(rec, "revoked_at") : NULL, "revocation", rev,
                     "reason", rev ? mlreg_keyring__rec_str(rec, "reason") : NULL);
}

json_t *mlreg_keyring__new_record(const mlreg_pubkey *pk, const char *name, const char *role,
                                  const char *source, int64_t now, const char *actor)
{
    char idhex[MLREG_KEYID_HEXLEN + 1], b64[MLREG_PUBKEY_B64LEN + 1], t[MLREG_TIME_STRLEN];

    mlreg_keyid_format(idhex, &pk->id);
    mlreg_pubkey_base64(b64, pk);
    mlreg_time_format(t, now);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:n, s:I, s:n, s:n, s:n}", "key_id",
                     idhex, "name", name, "role", role, "public_key", b64, "source", source,
                     "added_at", t, "added_ns", (json_int_t)now, "added_by", actor, "revoked_at",
                     "revoked_ns", (json_int_t)0, "revocation", "reason", "revoked_by");
}

/* The audit entry of a key event: "key.trust" with {"name","role"}, or
 * "key.revoke" with {"kind"} and the reason. */
static int audit_key_event(registry_mutation *mut, const char *action, const json_t *rec,
                           const char *kind, const char *reason, const char *actor)
{
    mlreg_audit_event ev;
    json_t *details;
    int error, trust = !strcmp(action, "trust"), untrust = !strcmp(action, "untrust");

    /* a trust names the public key too: the key id alone cannot rebuild it */
    if (trust)
        details = json_pack("{s:s?, s:s?, s:s?}", "name", mlreg_keyring__rec_str(rec, "name"),
                            "role", mlreg_keyring__rec_str(rec, "role"), "public_key",
                            mlreg_keyring__rec_str(rec, "public_key"));
    else if (untrust)
        details = json_pack("{s:s?, s:s?}", "name", mlreg_keyring__rec_str(rec, "name"), "role",
                            mlreg_keyring__rec_str(rec, "role"));
    else
        details = json_pack("{s:s?}", "kind", kind);
    if (details == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory recording a key event");
    ev = (mlreg_audit_event){.actor = actor,
                             .action = trust     ? MLREG_AUDIT_KEY_TRUST
                                       : untrust ? MLREG_AUDIT_KEY_UNTRUST
                                                 : MLREG_AUDIT_KEY_REVOKE,
                             .result = MLREG_AUDIT_OK,
                             .reason = reason,
                             .key_id = mlreg_keyring__rec_str(rec, "key_id"),
                             .details = details};
    error = mlreg_registry__mutation_record(NULL, mut, &ev);
    json_decref(details);
    return error;
}

/* Appends a key event with the next sequence number (counter in `meta`),
 * and its audit entry: every trust and revocation goes through here, so the
 * key history and the audit log cannot disagree. */
int mlreg_keyring__event_append(registry_mutation *mut, mlreg_meta_txn *txn, const char *action,
                                const json_t *rec, const char *kind, const char *reason,
                                const char *actor)
{
    int64_t now = mlreg_registry__mutation_time(mut);
    int error = 0;
    uint64_t seq = 0;
    unsigned char be[8];
    char t[MLREG_TIME_STRLEN], *text = NULL;
    json_t *ev = NULL;

    if ((error = mlreg_meta_counter_next(&seq, txn, EVENT_SEQ_KEY)) < 0) goto done;
    mlreg_be64_put(be, seq);
    mlreg_time_format(t, now);
    ev = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "time", t, "action", action,
                   "key_id", mlreg_keyring__rec_str(rec, "key_id"), "name",
                   mlreg_keyring__rec_str(rec, "name"), "role", mlreg_keyring__rec_str(rec, "role"),
                   "kind", kind, "reason", reason, "actor", actor);
    if (ev == NULL || (text = json_dumps(ev, JSON_COMPACT)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory recording a key event");
        goto done;
    }
    if ((error = mlreg_meta_put(txn, MLREG_DB_KEY_EVENTS, be, sizeof(be), text, strlen(text), 1)) <
        0)
        goto done;
    error = audit_key_event(mut, action, rec, kind, reason, actor);

done:
    free(text);
    json_decref(ev);
    return error;
}

/* Walks the keys database looking for another key in the keyring named
 * @p name (other than key id @p self). */
typedef struct {
    const mlreg_keyring *kr;
    const char *name;
    const char *self; /* idhex */
    char found[MLREG_KEYID_HEXLEN + 1];
} name_walk;

static int name_walk_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    name_walk *w = payload;
    json_t *rec;
    mlreg_keyid id;
    int hit = 0;

    if (klen != MLREG_KEYID_HEXLEN || mlreg_keyid_parse(&id, key, klen) < 0)
        return mlreg_error_set(MLREG_EIO, "keyring key is corrupt");
    if (!memcmp(key, w->self, MLREG_KEYID_HEXLEN)) return 0;
    if ((rec = json_loadb(val, vlen, 0, NULL)) == NULL)
        return mlreg_error_set(MLREG_EIO, "keyring record %.16s is corrupt", (const char *)key);
    if (mlreg_keyring__record_in_keyring(w->kr, rec, &id)) {
        const config_key *ck = config_find(w->kr, &id);
        const char *n = ck ? ck->name : mlreg_keyring__rec_str(rec, "name");
        hit = n != NULL && !strcmp(n, w->name);
    }
    json_decref(rec);
    if (hit) {
        memcpy(w->found, key, MLREG_KEYID_HEXLEN);
        w->found[MLREG_KEYID_HEXLEN] = '\0';
        return 1;
    }
    return 0;
}

/* 1 with *found filled when another keyring key is named @p name, 0, or error. */
int mlreg_keyring__name_taken(char found[MLREG_KEYID_HEXLEN + 1], const mlreg_keyring *kr,
                              mlreg_meta_txn *txn, const char *name, const char *self)
{
    name_walk w;
    int rc;

    memset(&w, 0, sizeof(w));
    w.kr = kr;
    w.name = name;
    w.self = self;
    rc = mlreg_meta_iter(txn, MLREG_DB_KEYS, NULL, 0, NULL, 0, name_walk_cb, &w);
    if (rc < 0) return rc;
    if (rc > 0) memcpy(found, w.found, sizeof(w.found));
    return rc > 0;
}

/* Walks the keys database looking for another key id (other than @p self)
 * whose record holds the public key bytes of @p pk, in any state: a key id
 * is not covered by a signature, so the same Ed25519 key under two ids
 * would be one signer counted twice, and revoking one id would leave the
 * other trusted. */
typedef struct {
    const mlreg_pubkey *pk;
    const char *self; /* idhex */
    char found[MLREG_KEYID_HEXLEN + 1];
} bytes_walk;

static int bytes_walk_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    bytes_walk *w = payload;
    json_t *rec;
    mlreg_pubkey stored;
    int hit, error;
    char idhex[MLREG_KEYID_HEXLEN + 1];

    if (klen != MLREG_KEYID_HEXLEN) return mlreg_error_set(MLREG_EIO, "keyring key is corrupt");
    if (!memcmp(key, w->self, MLREG_KEYID_HEXLEN)) return 0;
    memcpy(idhex, key, MLREG_KEYID_HEXLEN);
    idhex[MLREG_KEYID_HEXLEN] = '\0';
    if ((rec = json_loadb(val, vlen, 0, NULL)) == NULL)
        return mlreg_error_set(MLREG_EIO, "keyring record %s is corrupt", idhex);
    error = mlreg_keyring__record_pubkey(&stored, rec, idhex);
    json_decref(rec);
    if (error < 0) return error;
    hit = !sodium_memcmp(stored.pk, w->pk->pk, sizeof(stored.pk));
    if (hit) memcpy(w->found, idhex, sizeof(w->found));
    return hit;
}

/* 1 with *found filled when key id @p found holds the bytes of @p pk, 0, or error. */
int mlreg_keyring__bytes_taken(char found[MLREG_KEYID_HEXLEN + 1], mlreg_meta_txn *txn,
                               const mlreg_pubkey *pk, const char *self)
{
    bytes_walk w;
    int rc;

    memset(&w, 0, sizeof(w));
    w.pk = pk;
    w.self = self;
    rc = mlreg_meta_iter(txn, MLREG_DB_KEYS, NULL, 0, NULL, 0, bytes_walk_cb, &w);
    if (rc < 0) return rc;
    if (rc > 0) memcpy(found, w.found, sizeof(w.found));
    return rc > 0;
}

/* ---- open ------------------------------------------------------------------ */

/* The latest time any key record holds (added or revoked). */
static int latest_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    int64_t *latest = payload;
    json_t *rec;

    (void)key;
    (void)klen;
    if ((rec = json_loadb(val, vlen, 0, NULL)) == NULL) return 0; /* reported where it is used */
    for (int i = 0; i < 2; i++) {
        json_int_t t = json_integer_value(json_object_get(rec, i ? "revoked_ns" : "added_ns"));
        if (t > *latest) *latest = (int64_t)t;
    }
    json_decref(rec);
    return 0;
}

static void set_free(config_set *s)
{
    if (s == NULL) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->keys[i].name);
        free(s->keys[i].role);
        free(s->keys[i].file);
    }
    free(s->keys);
    free(s);
}

void mlreg_keyring_free(mlreg_keyring *kr)
{
    if (kr == NULL) return;
    set_free(kr->cfg);
    while (kr->retired != NULL) {
        config_set *next = kr->retired->next;
        set_free(kr->retired);
        kr->retired = next;
    }
    free(kr);
}

/* Merges one config key into the stored keyring (inside the open txn). */
static int merge_config_key(registry_mutation *mut, mlreg_meta_txn *txn, const config_key *ck)
{
    int64_t now = mlreg_registry__mutation_time(mut);
    int error = 0;
    char idhex[MLREG_KEYID_HEXLEN + 1];
    json_t *rec = NULL;
    mlreg_pubkey stored;

    mlreg_keyid_format(idhex, &ck->pubkey.id);
    error = mlreg_keyring__record_get(&rec, txn, idhex);
    if (error == MLREG_ENOTFOUND) {
        if ((rec = mlreg_keyring__new_record(&ck->pubkey, ck->name, ck->role, "config", now,
                                             MLREG_KEYRING_ACTOR_CONFIG)) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory loading the keyring");
            goto done;
        }
        if ((error = mlreg_keyring__record_put(txn, idhex, rec)) < 0) goto done;
        error = mlreg_keyring__event_append(mut, txn, "trust", rec, NULL, NULL,
                                            MLREG_KEYRING_ACTOR_CONFIG);
        goto done;
    }
    if (error < 0) goto done;
    if ((error = mlreg_keyring__record_pubkey(&stored, rec, idhex)) < 0) goto done;
    if (!mlreg_pubkey_equal(&stored, &ck->pubkey)) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "trusted key '%s' (%s): key id %s is already in the keyring "
                                "with a different public key",
                                ck->name, ck->file, idhex);
        goto done;
    }
    if (json_is_false(json_object_get(rec, "in_config"))) {
        /* dropped from the config at an earlier start, listed again now */
        if (json_object_set_new(rec, "in_config", json_true()) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory loading the keyring");
            goto done;
        }
        if ((error = mlreg_keyring__record_put(txn, idhex, rec)) < 0) goto done;
        if ((error = mlreg_keyring__event_append(mut, txn, "trust", rec, NULL,
                                                 "listed in the config again",
                                                 MLREG_KEYRING_ACTOR_CONFIG)) < 0)
            goto done;
    }
    if (mlreg_keyring__record_state(rec) != MLREG_KEY_ACTIVE)
        fprintf(
            stderr,
            "mlreg: warning: trusted key '%s' (%s, key id %s) in the config was revoked as "
            "%s at %s by %s; the revocation stays in force\n",
            ck->name, ck->file, idhex, mlreg_keyring__rec_str(rec, "revocation"),
            mlreg_keyring__rec_str(rec, "revoked_at") ? mlreg_keyring__rec_str(rec, "revoked_at")
                                                      : "?",
            mlreg_keyring__rec_str(rec, "revoked_by") ? mlreg_keyring__rec_str(rec, "revoked_by")
                                                      : "?");
    /* the config names the key: keep the stored name and role in step */
    if (strcmp(mlreg_keyring__rec_str(rec, "name") ? mlreg_keyring__rec_str(rec, "name") : "",
               ck->name) ||
        strcmp(mlreg_keyring__rec_str(rec, "role") ? mlreg_keyring__rec_str(rec, "role") : "",
               ck->role)) {
        if (json_object_set_new(rec, "name", json_string(ck->name)) < 0 ||
            json_object_set_new(rec, "role", json_string(ck->role)) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory loading the keyring");
            goto done;
        }
        if ((error = mlreg_keyring__record_put(txn, idhex, rec)) < 0) goto done;
        /* a changed name or role changes what the key may sign for: it is
         * a trust event like the first one, and audited as such */
        error = mlreg_keyring__event_append(mut, txn, "trust", rec, NULL,
                                            "name or role changed in the config",
                                            MLREG_KEYRING_ACTOR_CONFIG);
    }

done:
    json_decref(rec);
    return error;
}

/* Key ids of config-sourced records whose key is in the config no more
 * (and not yet recorded as dropped): collected first, updated after the
 * walk, since the walk may not write to the database it reads. */
typedef struct {
    const mlreg_keyring *kr;
    char (*ids)[MLREG_KEYID_HEXLEN + 1];
    size_t n, cap;
} dropped_scan;

static int dropped_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    dropped_scan *d = payload;
    mlreg_keyid id;
    json_t *rec;
    const char *src;
    int dropped;

    if (klen != MLREG_KEYID_HEXLEN || mlreg_keyid_parse(&id, key, klen) < 0) return 0;
    if ((rec = json_loadb(val, vlen, 0, NULL)) == NULL) return 0; /* reported where it is used */
    src = mlreg_keyring__rec_str(rec, "source");
    dropped = src && !strcmp(src, "config") && !json_is_false(json_object_get(rec, "in_config")) &&
              config_find(d->kr, &id) == NULL;
    json_decref(rec);
    if (!dropped) return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        void *ids = realloc(d->ids, cap * sizeof(*d->ids));
        if (ids == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory loading the keyring");
        d->ids = ids;
        d->cap = cap;
    }
    memcpy(d->ids[d->n], key, MLREG_KEYID_HEXLEN);
    d->ids[d->n][MLREG_KEYID_HEXLEN] = '\0';
    d->n++;
    return 0;
}

/* Records (once) that each config key missing from this start's config
 * left the keyring: a "untrust" key event and its key.untrust audit entry,
 * so removing a key from the config is in the log like any other change
 * of trust. */
static int record_dropped_config_keys(registry_mutation *mut, mlreg_meta_txn *txn,
                                      const mlreg_keyring *kr)
{
    int error = 0;
    dropped_scan d = {kr, NULL, 0, 0};
    json_t *rec = NULL;

    if ((error = mlreg_meta_iter(txn, MLREG_DB_KEYS, NULL, 0, NULL, 0, dropped_cb, &d)) < 0)
        goto done;
    for (size_t i = 0; i < d.n; i++) {
        if ((error = mlreg_keyring__record_get(&rec, txn, d.ids[i])) < 0) goto done;
        if (json_object_set_new(rec, "in_config", json_false()) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory loading the keyring");
            goto done;
        }
        if ((error = mlreg_keyring__record_put(txn, d.ids[i], rec)) < 0) goto done;
        if ((error = mlreg_keyring__event_append(mut, txn, "untrust", rec, NULL,
                                                 "removed from the config",
                                                 MLREG_KEYRING_ACTOR_CONFIG)) < 0)
            goto done;
        json_decref(rec);
        rec = NULL;
    }
done:
    json_decref(rec);
    free(d.ids);
    return error;
}

/* The start-up sync of the stored keyring with this start's config: one
 * change, with one key.trust / key.untrust entry per key it changes. */
static int sync_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    const mlreg_keyring *kr = arg;
    const config_set *set = mlreg_keyring__config(kr);
    int error = 0, taken;
    char idhex[MLREG_KEYID_HEXLEN + 1], other[MLREG_KEYID_HEXLEN + 1];
    uint64_t before = 0, after = 0;

    if ((error = mlreg_audit_size_txn(&before, txn)) < 0) return error;
    for (size_t i = 0; i < set->n; i++)
        if ((error = merge_config_key(mut, txn, &set->keys[i])) < 0) return error;
    if ((error = record_dropped_config_keys(mut, txn, kr)) < 0) return error;
    /* a name may not stand for two keys of the keyring, nor one public key
     * for two key ids */
    for (size_t i = 0; i < set->n; i++) {
        const config_key *ck = &set->keys[i];
        mlreg_keyid_format(idhex, &ck->pubkey.id);
        if ((taken = mlreg_keyring__bytes_taken(other, txn, &ck->pubkey, idhex)) < 0) return taken;
        if (taken)
            return mlreg_error_set(MLREG_EINVALID,
                                   "trusted key '%s' (%s): the same public key is recorded as "
                                   "key %s; one public key may have one key id",
                                   ck->name, ck->file, other);
        if ((taken = mlreg_keyring__name_taken(other, kr, txn, ck->name, idhex)) < 0) return taken;
        if (taken)
            return mlreg_error_set(MLREG_EINVALID,
                                   "trusted key '%s' (%s): the name is already used by key %s, "
                                   "trusted at runtime",
                                   ck->name, ck->file, other);
    }
    if ((error = mlreg_audit_size_txn(&after, txn)) < 0) return error;
    return after == before ? REGISTRY_MUTATE_NOOP : 0;
}

/* A set of copies of the @p n config keys @p keys, checked: names and
 * roles valid, no name, key id or public key twice. */
static int set_new(config_set **out, const mlreg_config_key *keys, size_t n)
{
    int error = 0;
    config_set *s = NULL;

    if ((s = calloc(1, sizeof(*s))) == NULL ||
        (n > 0 && (s->keys = calloc(n, sizeof(*s->keys))) == NULL)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory loading the keyring");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        config_key *ck = &s->keys[i];
        s->n = i + 1;
        if (!mlreg_label_valid(keys[i].name, strlen(keys[i].name), MLREG_CONFIG_KEY_NAME_MAX) ||
            !mlreg_key_role_valid(keys[i].role, MLREG_CONFIG_KEY_ROLE_MAX)) {
            error =
                mlreg_error_set(MLREG_EINVALID, "trusted key '%s': bad name or role", keys[i].name);
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s->keys[j].name, keys[i].name) ||
                mlreg_keyid_equal(&s->keys[j].pubkey.id, &keys[i].pubkey.id) ||
                !sodium_memcmp(s->keys[j].pubkey.pk, keys[i].pubkey.pk, MLREG_PUBKEY_BYTES)) {
                error = mlreg_error_set(MLREG_EINVALID,
                                        "trusted key '%s' duplicates the name, key id or public "
                                        "key of '%s'",
                                        keys[i].name, s->keys[j].name);
                goto done;
            }
        if ((ck->name = strdup(keys[i].name)) == NULL ||
            (ck->role = strdup(keys[i].role)) == NULL ||
            (ck->file = strdup(keys[i].file ? keys[i].file : "-")) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory loading the keyring");
            goto done;
        }
        ck->pubkey = keys[i].pubkey;
    }
    *out = s;
    s = NULL;

done:
    set_free(s);
    return error;
}

/* 1 when the two sets hold the same keys under the same names and roles,
 * in any order. */
static int set_same(const config_set *a, const config_set *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++) {
        const config_key *o = set_find(b, &a->keys[i].pubkey.id);
        if (o == NULL || !mlreg_pubkey_equal(&o->pubkey, &a->keys[i].pubkey) ||
            strcmp(o->name, a->keys[i].name) || strcmp(o->role, a->keys[i].role))
            return 0;
    }
    return 1;
}

int mlreg_keyring__load(mlreg_keyring **out, mlreg_meta *meta, const mlreg_config_key *keys,
                        size_t n)
{
    int error = 0;
    mlreg_keyring *kr = NULL;

    if ((kr = calloc(1, sizeof(*kr))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory loading the keyring");
        goto done;
    }
    kr->meta = meta;
    if ((error = set_new(&kr->cfg, keys, n)) < 0) goto done;
    *out = kr;
    kr = NULL;

done:
    mlreg_keyring_free(kr);
    return error;
}

int mlreg_keyring__sync_config(mlreg_keyring *kr)
{
    mlreg_meta_txn *txn = NULL;
    int64_t latest = 0;
    int error;

    /* times of changes must follow every time already recorded, even when
     * the wall clock went back since */
    if ((error = mlreg_meta_txn_begin(&txn, kr->meta, 0)) < 0) goto done;
    if ((error = mlreg_meta_iter(txn, MLREG_DB_KEYS, NULL, 0, NULL, 0, latest_cb, &latest)) < 0)
        goto done;
    mlreg_meta_txn_abort(txn);
    txn = NULL;
    mlreg_time_advance(latest);
    error = mlreg_registry__mutate(NULL, kr->meta, sync_apply, kr);
    if (error > 0) error = 0; /* nothing to change */

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

int mlreg_keyring_open(mlreg_keyring **out, mlreg_meta *meta, const mlreg_config_key *keys,
                       size_t n)
{
    mlreg_keyring *kr = NULL;
    int error;

    if ((error = mlreg_keyring__load(&kr, meta, keys, n)) < 0) return error;
    if ((error = mlreg_keyring__sync_config(kr)) < 0) {
        mlreg_keyring_free(kr);
        return error;
    }
    *out = kr;
    return 0;
}

/* The new set is published before the sync, because the sync's checks
 * (name_taken: is a record in the keyring?) must see it; when the sync
 * fails, the old set is published again and the new one retired. */
int mlreg_keyring_reload_config(int *changed_out, mlreg_keyring *kr, const mlreg_config_key *keys,
                                size_t n)
{
    config_set *s = NULL, *old = kr->cfg;
    int error;

    *changed_out = 0;
    if ((error = set_new(&s, keys, n)) < 0) return error;
    if (set_same(s, old)) {
        set_free(s);
        return 0;
    }
    __atomic_store_n(&kr->cfg, s, __ATOMIC_RELEASE);
    if ((error = mlreg_keyring__sync_config(kr)) < 0) {
        __atomic_store_n(&kr->cfg, old, __ATOMIC_RELEASE);
        s->next = kr->retired;
        kr->retired = s;
        return error;
    }
    old->next = kr->retired;
    kr->retired = old;
    *changed_out = 1;
    return 0;
}

/* ---- lookups --------------------------------------------------------------- */

int mlreg_keyring_find(mlreg_keyring_key *out, mlreg_keyring *kr, mlreg_meta_txn *txn,
                       const mlreg_keyid *id)
{
    int error = 0;
    char idhex[MLREG_KEYID_HEXLEN + 1];
    json_t *rec = NULL;
    const config_key *ck;
    const char *name, *role;

    mlreg_keyid_format(idhex, id);
    if ((error = mlreg_keyring__record_get(&rec, txn, idhex)) < 0) goto done;
    if (!mlreg_keyring__record_in_keyring(kr, rec, id)) {
        error = MLREG_ENOTFOUND;
        goto done;
    }
    memset(out, 0, sizeof(*out));
    if ((error = mlreg_keyring__record_pubkey(&out->pubkey, rec, idhex)) < 0) goto done;
    ck = config_find(kr, id);
    name = ck ? ck->name : mlreg_keyring__rec_str(rec, "name");
    role = ck ? ck->role : mlreg_keyring__rec_str(rec, "role");
    snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
    snprintf(out->role, sizeof(out->role), "%s", role ? role : "");
    out->state = mlreg_keyring__record_state(rec);
    out->revoked_ns = out->state == MLREG_KEY_ACTIVE
                          ? 0
                          : (int64_t)json_integer_value(json_object_get(rec, "revoked_ns"));

done:
    json_decref(rec);
    return error;
}

int mlreg_key_role_signs_releases(const char *role)
{
    return role != NULL && !strcmp(role, MLREG_KEY_ROLE_RELEASE);
}

/* The role is checked here, the one place every count goes through (the
 * gates, rollback, the signature listing's "counts" and the attach
 * answer's "trusted"), so an approver's key can never vouch for a release
 * through a path that forgot to look at it. */
mlreg_sigstatus mlreg_keyring_judge(int *counts_out, const mlreg_keyring_key *key,
                                    const mlreg_pubkey *signer, int64_t attached_ns)
{
    int signs;

    *counts_out = 0;
    if (key == NULL || !mlreg_pubkey_equal(&key->pubkey, signer)) return MLREG_SIGSTATUS_UNTRUSTED;
    signs = mlreg_key_role_signs_releases(key->role);
    switch (key->state) {
    case MLREG_KEY_ACTIVE: *counts_out = signs; return MLREG_SIGSTATUS_TRUSTED;
    case MLREG_KEY_RETIRED:
        *counts_out = signs && attached_ns < key->revoked_ns;
        return MLREG_SIGSTATUS_RETIRED;
    case MLREG_KEY_COMPROMISED: break;
    }
    return MLREG_SIGSTATUS_COMPROMISED;
}

const char *mlreg_sigstatus_name(mlreg_sigstatus status)
{
    switch (status) {
    case MLREG_SIGSTATUS_TRUSTED: return "trusted";
    case MLREG_SIGSTATUS_UNTRUSTED: return "untrusted";
    case MLREG_SIGSTATUS_RETIRED: return "retired";
    case MLREG_SIGSTATUS_COMPROMISED: break;
    }
    return "compromised";
}

typedef struct {
    const mlreg_keyring *kr;
    json_t *keys;
} list_walk;

static int list_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    list_walk *w = payload;
    json_t *rec, *obj;
    mlreg_keyid id;

    if (klen != MLREG_KEYID_HEXLEN || mlreg_keyid_parse(&id, key, klen) < 0)
        return mlreg_error_set(MLREG_EIO, "keyring key is corrupt");
    if ((rec = json_loadb(val, vlen, 0, NULL)) == NULL)
        return mlreg_error_set(MLREG_EIO, "keyring record %.16s is corrupt", (const char *)key);
    if (!mlreg_keyring__record_in_keyring(w->kr, rec, &id)) {
        json_decref(rec);
        return 0;
    }
    obj = mlreg_keyring__key_object(w->kr, rec, &id);
    json_decref(rec);
    if (obj == NULL || json_array_append_new(w->keys, obj) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing keys");
    return 0;
}

int mlreg_keyring_list(json_t **out, mlreg_keyring *kr)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    list_walk w;

    w.kr = kr;
    if ((w.keys = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing keys");
        goto done;
    }
    if ((error = mlreg_meta_txn_begin(&txn, kr->meta, 0)) < 0) goto done;
    if ((error = mlreg_meta_iter(txn, MLREG_DB_KEYS, NULL, 0, NULL, 0, list_cb, &w)) < 0) goto done;
    error = 0;
    if ((*out = json_pack("{s:O}", "keys", w.keys)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing keys");

done:
    mlreg_meta_txn_abort(txn);
    json_decref(w.keys);
    return error;
}

static int events_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    json_t *events = payload, *ev;

    (void)key;
    if (klen != 8) return mlreg_error_set(MLREG_EIO, "key event key is corrupt");
    if ((ev = json_loadb(val, vlen, 0, NULL)) == NULL)
        return mlreg_error_set(MLREG_EIO, "key event is corrupt");
    if (json_array_append_new(events, ev) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing key events");
    return 0;
}

int mlreg_keyring_events(json_t **out, mlreg_keyring *kr)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *events = json_array();

    if (events == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing key events");
        goto done;
    }
    if ((error = mlreg_meta_txn_begin(&txn, kr->meta, 0)) < 0) goto done;
    if ((error = mlreg_meta_iter(txn, MLREG_DB_KEY_EVENTS, NULL, 0, NULL, 0, events_cb, events)) <
        0)
        goto done;
    error = 0;
    if ((*out = json_pack("{s:O}", "events", events)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing key events");

done:
    mlreg_meta_txn_abort(txn);
    json_decref(events);
    return error;
}
