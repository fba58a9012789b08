/* keyring_changes.c: the changes made to the trusted keyring at runtime
 * (include/mlreg/keyring.h: trusting a key, revoking one) and their replay
 * from the key.* audit entries. Each is an apply function run by
 * mlreg_registry__mutate() or mlreg_registry__mutate_replay(); the records,
 * key events and the rules they follow are keyring.c's (its header comment),
 * reached through keyring_internal.h.
 */
#include "mlreg/keyring.h"

#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/names.h"
#include "mlreg/text.h"
#include "keyring_internal.h"
#include "registry_internal.h"

/* ---- validation ------------------------------------------------------------ */

/* Reasons are shown to people: the text rule of text.h (UTF-8 without C0,
 * DEL or C1 controls). */
static int reason_valid(const char *s)
{
    return strlen(s) <= MLREG_KEYRING_REASON_MAX && mlreg_text_span(s, strlen(s)) == strlen(s);
}

/* ---- changes --------------------------------------------------------------- */

/* A key trusted at runtime; rec is the record afterwards, for the reply. */
typedef struct {
    mlreg_keyring *kr;
    const char *name;
    const char *role;
    const mlreg_pubkey *pk;
    const char *actor;
    json_t *rec;
} trust_change;

static int trust_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    trust_change *c = arg;
    int error = 0, taken;
    mlreg_pubkey stored;
    char idhex[MLREG_KEYID_HEXLEN + 1], other[MLREG_KEYID_HEXLEN + 1];

    /* the record of a run thrown away after a lost log seq is not this one */
    json_decref(c->rec);
    c->rec = NULL;
    mlreg_keyid_format(idhex, &c->pk->id);
    error = mlreg_keyring__record_get(&c->rec, txn, idhex);
    if (error < 0 && error != MLREG_ENOTFOUND) return error;
    if (error == 0) {
        if ((error = mlreg_keyring__record_pubkey(&stored, c->rec, idhex)) < 0) return error;
        if (!mlreg_pubkey_equal(&stored, c->pk))
            return mlreg_error_set(MLREG_EDENIED,
                                   "key id %s is already in the keyring with a different public "
                                   "key",
                                   idhex);
        if (mlreg_keyring__record_state(c->rec) != MLREG_KEY_ACTIVE)
            return mlreg_error_set(
                MLREG_EDENIED,
                "key %s was revoked (%s) at %s; a revoked key cannot be trusted again", idhex,
                mlreg_keyring__rec_str(c->rec, "revocation"),
                mlreg_keyring__rec_str(c->rec, "revoked_at")
                    ? mlreg_keyring__rec_str(c->rec, "revoked_at")
                    : "?");
        if (mlreg_keyring__record_in_keyring(c->kr, c->rec, &c->pk->id))
            return REGISTRY_MUTATE_NOOP; /* a retry */
    }
    if ((taken = mlreg_keyring__bytes_taken(other, txn, c->pk, idhex)) < 0) return taken;
    if (taken)
        return mlreg_error_set(MLREG_EDENIED,
                               "this public key is already recorded as key %s (trusted or "
                               "revoked): one public key may have one key id",
                               other);
    if ((taken = mlreg_keyring__name_taken(other, c->kr, txn, c->name, idhex)) < 0) return taken;
    if (taken)
        return mlreg_error_set(MLREG_EDENIED, "key name '%s' is already used by key %s", c->name,
                               other);
    json_decref(c->rec);
    if ((c->rec = mlreg_keyring__new_record(c->pk, c->name, c->role, "runtime",
                                            mlreg_registry__mutation_time(mut), c->actor)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory trusting a key");
    if ((error = mlreg_keyring__record_put(txn, idhex, c->rec)) < 0) return error;
    return mlreg_keyring__event_append(mut, txn, "trust", c->rec, NULL, NULL, c->actor);
}

int mlreg_keyring_trust(json_t **out, int *created_out, mlreg_keyring *kr, const char *name,
                        const char *role, const char *public_key, size_t len, const char *actor)
{
    int error = 0;
    mlreg_pubkey pk;
    json_t *obj = NULL;
    trust_change c = {kr, name, role, &pk, actor, NULL};

    if (!mlreg_label_valid(name, strlen(name), MLREG_CONFIG_KEY_NAME_MAX))
        return mlreg_error_set(MLREG_EINVALID,
                               "key name must be 1 to %d printable ASCII characters",
                               MLREG_CONFIG_KEY_NAME_MAX);
    if (!mlreg_key_role_valid(role, MLREG_CONFIG_KEY_ROLE_MAX))
        return mlreg_error_set(MLREG_EINVALID,
                               "key role must match [a-z][a-z0-9_-]* (at most %d "
                               "bytes)",
                               MLREG_CONFIG_KEY_ROLE_MAX);
    if ((error = mlreg_pubkey_parse(&pk, public_key, len)) < 0) return error;
    if ((error = mlreg_registry__mutate(NULL, kr->meta, trust_apply, &c)) < 0) goto done;
    if ((obj = mlreg_keyring__key_object(kr, c.rec, &pk.id)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory trusting a key");
        goto done;
    }
    *out = obj;
    *created_out = error != REGISTRY_MUTATE_NOOP;
    error = 0;

done:
    json_decref(c.rec);
    return error;
}

/* A revocation; rec is the record afterwards, for the reply. */
typedef struct {
    mlreg_keyring *kr;
    const mlreg_keyid *id;
    const char *kind;
    mlreg_key_state want;
    const char *reason;
    const char *actor;
    json_t *rec;
} revoke_change;

static int revoke_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    revoke_change *c = arg;
    int error = 0;
    char idhex[MLREG_KEYID_HEXLEN + 1], t[MLREG_TIME_STRLEN];
    mlreg_key_state have;
    int64_t now = mlreg_registry__mutation_time(mut);

    /* read again: a run thrown away after a lost log seq changed its copy */
    json_decref(c->rec);
    c->rec = NULL;
    mlreg_keyid_format(idhex, c->id);
    error = mlreg_keyring__record_get(&c->rec, txn, idhex);
    /* membership of config keys is the config's; a replay has the entry */
    if (error == 0 && mlreg_registry__mutation_source(mut) == NULL &&
        !mlreg_keyring__record_in_keyring(c->kr, c->rec, c->id))
        error = MLREG_ENOTFOUND;
    if (error == MLREG_ENOTFOUND)
        return mlreg_error_set(MLREG_ENOTFOUND, "key %s is not in the keyring", idhex);
    if (error < 0) return error;
    have = mlreg_keyring__record_state(c->rec);
    if (have == c->want) return REGISTRY_MUTATE_NOOP; /* the same revocation again */
    if (have == MLREG_KEY_COMPROMISED)
        return mlreg_error_set(
            MLREG_EDENIED, "key %s is revoked as compromised; it cannot be retired instead", idhex);
    mlreg_time_format(t, now);
    if (json_object_set_new(c->rec, "revoked_at", json_string(t)) < 0 ||
        json_object_set_new(c->rec, "revoked_ns", json_integer((json_int_t)now)) < 0 ||
        json_object_set_new(c->rec, "revocation", json_string(c->kind)) < 0 ||
        json_object_set_new(c->rec, "reason", c->reason ? json_string(c->reason) : json_null()) <
            0 ||
        json_object_set_new(c->rec, "revoked_by", json_string(c->actor)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory revoking a key");
    if ((error = mlreg_keyring__record_put(txn, idhex, c->rec)) < 0) return error;
    return mlreg_keyring__event_append(mut, txn, "revoke", c->rec, c->kind, c->reason, c->actor);
}

int mlreg_keyring_revoke(json_t **out, mlreg_keyring *kr, const char *key_id, const char *kind,
                         const char *reason, const char *actor)
{
    int error = 0;
    mlreg_keyid id;
    json_t *obj = NULL;
    revoke_change c = {kr, &id, kind, MLREG_KEY_ACTIVE, reason, actor, NULL};

    if (strcmp(kind, "retired") && strcmp(kind, "compromised"))
        return mlreg_error_set(MLREG_EINVALID,
                               "revocation kind must be \"retired\" or \"compromised\"");
    c.want = strcmp(kind, "retired") ? MLREG_KEY_COMPROMISED : MLREG_KEY_RETIRED;
    if (reason != NULL && !reason_valid(reason))
        return mlreg_error_set(MLREG_EINVALID,
                               "revocation reason must be at most %d bytes of UTF-8 without "
                               "control characters",
                               MLREG_KEYRING_REASON_MAX);
    if (mlreg_keyid_parse(&id, key_id, strlen(key_id)) < 0)
        return mlreg_error_set(MLREG_EINVALID, "malformed key id (want 16 hex digits)");
    if ((error = mlreg_registry__mutate(NULL, kr->meta, revoke_apply, &c)) < 0) goto done;
    error = 0;
    if ((obj = mlreg_keyring__key_object(kr, c.rec, &id)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory revoking a key");
        goto done;
    }
    *out = obj;

done:
    json_decref(c.rec);
    return error;
}

/* ---- replay -------------------------------------------------------------------- */

/* A key.trust or key.untrust entry: the record is created or brought in
 * step with what the entry says (the config of that start decided it). */
typedef struct {
    const char *action; /* "trust" or "untrust" */
    const char *key_id;
    const json_t *details;
    const char *reason;
    const char *actor;
} key_replay;

static int key_replay_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    const key_replay *c = arg;
    const char *name = mlreg_keyring__rec_str(c->details, "name"),
               *role = mlreg_keyring__rec_str(c->details, "role");
    const char *b64 = mlreg_keyring__rec_str(c->details, "public_key");
    json_t *rec = NULL;
    mlreg_pubkey pk;
    int error = 0, trust = !strcmp(c->action, "trust");
    int by_config = !strcmp(c->actor, MLREG_KEYRING_ACTOR_CONFIG);

    error = mlreg_keyring__record_get(&rec, txn, c->key_id);
    if (trust && !by_config && (error == 0 || error == MLREG_ENOTFOUND)) {
        /* a trust at runtime always writes a new record (trust_apply),
         * also over a config key the config no longer lists */
        json_decref(rec);
        rec = NULL;
        if (b64 == NULL || name == NULL || role == NULL) {
            error =
                mlreg_error_set(MLREG_EINVALID, "key.trust entry of %s lacks the key", c->key_id);
            goto done;
        }
        if ((error = mlreg_pubkey_parse(&pk, b64, strlen(b64))) < 0) goto done;
        rec = mlreg_keyring__new_record(&pk, name, role, "runtime",
                                        mlreg_registry__mutation_time(mut), c->actor);
        error = rec == NULL ? mlreg_error_set(MLREG_ENOMEM, "out of memory replaying a key") : 0;
    } else if (error == MLREG_ENOTFOUND && trust && b64 != NULL && name != NULL && role != NULL) {
        if ((error = mlreg_pubkey_parse(&pk, b64, strlen(b64))) < 0) goto done;
        rec = mlreg_keyring__new_record(&pk, name, role, "config",
                                        mlreg_registry__mutation_time(mut), c->actor);
        if (rec == NULL) error = mlreg_error_set(MLREG_ENOMEM, "out of memory replaying a key");
    } else if (error == 0 && trust) {
        if ((json_is_false(json_object_get(rec, "in_config")) &&
             json_object_set_new(rec, "in_config", json_true()) < 0) ||
            (name != NULL &&
             strcmp(mlreg_keyring__rec_str(rec, "name") ? mlreg_keyring__rec_str(rec, "name") : "",
                    name) &&
             json_object_set_new(rec, "name", json_string(name)) < 0) ||
            (role != NULL &&
             strcmp(mlreg_keyring__rec_str(rec, "role") ? mlreg_keyring__rec_str(rec, "role") : "",
                    role) &&
             json_object_set_new(rec, "role", json_string(role)) < 0))
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory replaying a key");
    } else if (error == 0) {
        if (json_object_set_new(rec, "in_config", json_false()) < 0)
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory replaying a key");
    } else if (error == MLREG_ENOTFOUND) {
        error = mlreg_error_set(MLREG_EINVALID, "key %s of a key.%s entry is unknown", c->key_id,
                                c->action);
    }
    if (error < 0) goto done;
    if ((error = mlreg_keyring__record_put(txn, c->key_id, rec)) < 0) goto done;
    error = mlreg_keyring__event_append(mut, txn, c->action, rec, NULL, c->reason, c->actor);

done:
    json_decref(rec);
    return error;
}

int mlreg_registry__replay_keyring(mlreg_registry *reg, const json_t *entry, const char *text,
                                   size_t len)
{
    const char *action = mlreg_keyring__rec_str(entry, "action"),
               *actor = mlreg_keyring__rec_str(entry, "actor");
    const char *key_id = mlreg_keyring__rec_str(json_object_get(entry, "subject"), "key_id");
    const json_t *details = json_object_get(entry, "details");
    mlreg_meta *meta = mlreg_registry_meta(reg);
    mlreg_keyid id;
    int error;

    if (key_id == NULL || mlreg_keyid_parse(&id, key_id, strlen(key_id)) < 0)
        return mlreg_error_set(MLREG_EINVALID, "audit entry %lld of %s names no key",
                               (long long)json_integer_value(json_object_get(entry, "seq")),
                               action);
    if (!strcmp(action, MLREG_AUDIT_KEY_REVOKE)) {
        const char *kind = mlreg_keyring__rec_str(details, "kind");
        revoke_change c = {mlreg_registry_keyring(reg),
                           &id,
                           kind,
                           MLREG_KEY_ACTIVE,
                           mlreg_keyring__rec_str(entry, "reason"),
                           actor,
                           NULL};

        if (kind == NULL) return mlreg_error_set(MLREG_EINVALID, "key.revoke entry has no kind");
        c.want = strcmp(kind, "retired") ? MLREG_KEY_COMPROMISED : MLREG_KEY_RETIRED;
        error = mlreg_registry__mutate_replay(meta, entry, text, len, revoke_apply, &c);
        json_decref(c.rec);
        return error;
    }
    {
        key_replay c = {!strcmp(action, MLREG_AUDIT_KEY_TRUST) ? "trust" : "untrust", key_id,
                        details, mlreg_keyring__rec_str(entry, "reason"), actor};
        return mlreg_registry__mutate_replay(meta, entry, text, len, key_replay_apply, &c);
    }
}
