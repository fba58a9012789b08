/* tokens.c: API tokens made at runtime (include/mlreg/tokens.h): their
 * changes (token.create, token.revoke) on the one mutation path and their
 * replay, the lookup by hash that authentication calls, the listing, and
 * the per-node record of last uses.
 *
 * The secret is made here in sodium_malloc memory and leaves through
 * mlreg_tokens_create()'s secret_out only; what any table or entry holds is
 * its SHA-256. A change's apply function starts from its inputs every time
 * (a change that loses its log seq runs again), and takes what a live
 * change decides (the expiry, the hash) from the entry when replayed.
 *
 * Last uses are the one thing written outside mutate.c: they are this
 * node's observations, not history, so they go to the node-local table
 * "token_usage" in a write transaction of their own, at most once a minute
 * per token (the server's housekeeping calls mlreg_tokens_flush_usage()),
 * and a use itself only touches memory under a mutex.
 */
#include "mlreg/tokens.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/tables.h"
#include "mlreg/time.h"
#include "registry_internal.h"

#define TOKEN_BYTES  32
#define TOKEN_PREFIX "mlreg_"
#define NS_PER_SEC   1000000000LL

/* One token's last use as this node saw it. */
typedef struct {
    unsigned char hash[32];
    int64_t used_ns;    /* last successful use */
    int64_t written_ns; /* when used_ns was last written to token_usage; 0: never */
    int dirty;          /* used_ns not written yet */
} usage;

struct mlreg_tokens {
    mlreg_meta *meta;
    pthread_mutex_t lock; /* guards uses */
    usage *uses;
    size_t nuses, capuses;
};

int mlreg_tokens_new(mlreg_tokens **out, mlreg_meta *meta)
{
    mlreg_tokens *t = calloc(1, sizeof(*t));

    if (t == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return mlreg_error_set(MLREG_ENOMEM, "cannot create the tokens lock");
    }
    t->meta = meta;
    *out = t;
    return 0;
}

void mlreg_tokens_free(mlreg_tokens *t)
{
    if (t == NULL) return;
    if (mlreg_tokens_flush_usage(t, 1) < 0)
        fprintf(stderr, "mlreg: tokens: last uses not written: %s\n", mlreg_error_last());
    pthread_mutex_destroy(&t->lock);
    free(t->uses);
    free(t);
}

void mlreg_tokens_secret_free(char *secret)
{
    if (secret == NULL) return;
    sodium_memzero(secret, strlen(secret));
    sodium_free(secret);
}

int mlreg_tokens_secret_new(char **out, char hex_out[65])
{
    unsigned char raw[TOKEN_BYTES], hash[crypto_hash_sha256_BYTES];
    const size_t b64len =
        sodium_base64_ENCODED_LEN(TOKEN_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    const size_t toklen = sizeof(TOKEN_PREFIX) - 1 + b64len;
    char *secret;

    *out = NULL;
    if (sodium_init() < 0 || (secret = sodium_malloc(toklen)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory making a token");
    randombytes_buf(raw, sizeof(raw));
    memcpy(secret, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
    sodium_bin2base64(secret + sizeof(TOKEN_PREFIX) - 1, b64len, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    crypto_hash_sha256(hash, (const unsigned char *)secret, strlen(secret));
    sodium_bin2hex(hex_out, 65, hash, sizeof(hash));
    sodium_memzero(hash, sizeof(hash));
    *out = secret;
    return 0;
}

/* ---- the table ------------------------------------------------------------- */

static size_t hash_key(char key[REGISTRY_KEY_CAP], const char *hex)
{
    return mlreg_registry__key(key, "h", hex, NULL);
}

static size_t name_key(char key[REGISTRY_KEY_CAP], const char *name)
{
    return mlreg_registry__key(key, "n", name, NULL);
}

/* The record of the token whose hash is @p hex into *out (owned).
 * 0, MLREG_ENOTFOUND (no message), MLREG_EIO. */
static int record_get(json_t **out, mlreg_meta_txn *txn, const char *hex)
{
    char key[REGISTRY_KEY_CAP];
    void *val = NULL;
    size_t vlen = 0;
    int error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_TOKENS, key, hash_key(key, hex));

    if (error < 0) return error;
    *out = json_loadb(val, vlen, 0, NULL);
    free(val);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return mlreg_error_set(MLREG_EIO, "token record of %.16s... is corrupt", hex);
    }
    return 0;
}

/* The hash (64 hex) of the runtime token named @p name into @p hex.
 * 0, MLREG_ENOTFOUND (no message), or the store's error. */
static int name_get(char hex[65], mlreg_meta_txn *txn, const char *name)
{
    char key[REGISTRY_KEY_CAP];
    void *val = NULL;
    size_t vlen = 0;
    int error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_TOKENS, key, name_key(key, name));

    if (error < 0) return error;
    if (vlen != 64) {
        free(val);
        return mlreg_error_set(MLREG_EIO, "token name record of '%s' is corrupt", name);
    }
    memcpy(hex, val, 64);
    hex[64] = '\0';
    free(val);
    return 0;
}

static const char *rec_str(const json_t *rec, const char *field)
{
    return json_string_value(json_object_get(rec, field));
}

/* ---- create --------------------------------------------------------------- */

/* Formats @p sec as RFC 3339 without a fraction ("2026-12-04T18:30:05Z"),
 * the form of expiry times: they are whole seconds. */
static void format_whole(char out[MLREG_TIME_STRLEN], int64_t sec)
{
    char *dot;

    mlreg_time_format_sec(out, sec, 0);
    if ((dot = strchr(out, '.')) != NULL) memmove(dot, "Z", 2);
}

typedef struct {
    /* inputs */
    const char *name;
    const char *hex; /* SHA-256 of the token */
    const json_t *roles;
    int64_t expires_in;     /* live: seconds from the change's time, 0: see expires_at */
    int64_t expires_at_sec; /* live: absolute, 0: none */
    const char *expires;    /* replay: the entry's expiry, or NULL for none */
    const char *actor;
    /* output */
    json_t *rec;
} create_change;

static int create_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    create_change *c = arg;
    int64_t now = mlreg_registry__mutation_time(mut);
    char key[REGISTRY_KEY_CAP], created[MLREG_TIME_STRLEN], expires[MLREG_TIME_STRLEN] = "";
    char other[65];
    char *text = NULL;
    json_t *details = NULL;
    mlreg_audit_event ev;
    int error = 0;

    json_decref(c->rec); /* a run thrown away after a lost log seq */
    c->rec = NULL;
    if ((error = name_get(other, txn, c->name)) == 0) {
        json_t *old = NULL;
        if (record_get(&old, txn, other) == 0)
            error = mlreg_error_set(MLREG_EEXISTS,
                                    "a token named '%s' exists already (created by %s at %s); "
                                    "revoke it first or choose another name",
                                    c->name,
                                    rec_str(old, "created_by") ? rec_str(old, "created_by") : "?",
                                    rec_str(old, "created") ? rec_str(old, "created") : "?");
        else
            error = mlreg_error_set(MLREG_EEXISTS, "a token named '%s' exists already", c->name);
        json_decref(old);
        return error;
    }
    if (error != MLREG_ENOTFOUND) return error;
    if ((error = mlreg_registry__meta_has(txn, MLREG_DB_TOKENS, key, hash_key(key, c->hex))) < 0)
        return error;
    if (error > 0) return mlreg_error_set(MLREG_EEXISTS, "a token with that hash exists already");

    mlreg_time_format(created, now);
    if (c->expires != NULL) {
        snprintf(expires, sizeof(expires), "%s", c->expires);
    } else if (c->expires_in > 0) {
        /* rounded up: a token never lives shorter than asked */
        format_whole(expires, (now + NS_PER_SEC - 1) / NS_PER_SEC + c->expires_in);
    } else if (c->expires_at_sec > 0) {
        if (c->expires_at_sec * NS_PER_SEC <= now)
            return mlreg_error_set(MLREG_EINVALID, "expires_at is not in the future");
        format_whole(expires, c->expires_at_sec);
    }
    c->rec = json_pack("{s:s, s:s, s:O, s:s, s:s, s:o}", "name", c->name, "sha256", c->hex, "roles",
                       c->roles, "created", created, "created_by", c->actor, "expires",
                       expires[0] ? json_string(expires) : json_null());
    details = json_pack("{s:s, s:s, s:O, s:o}", "name", c->name, "sha256", c->hex, "roles",
                        c->roles, "expires", expires[0] ? json_string(expires) : json_null());
    if (c->rec == NULL || details == NULL ||
        (text = json_dumps(c->rec, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory creating a token");
        goto done;
    }
    if ((error = mlreg_meta_put(txn, MLREG_DB_TOKENS, key, hash_key(key, c->hex), text,
                                strlen(text), 1)) < 0 ||
        (error = mlreg_meta_put(txn, MLREG_DB_TOKENS, key, name_key(key, c->name), c->hex, 64, 1)) <
            0)
        goto done;
    memset(&ev, 0, sizeof(ev));
    ev.actor = c->actor;
    ev.action = MLREG_AUDIT_TOKEN_CREATE;
    ev.result = MLREG_AUDIT_OK;
    ev.details = details;
    error = mlreg_registry__mutation_record(NULL, mut, &ev);

done:
    free(text);
    json_decref(details);
    return error;
}

/* The roles of a request: an array of valid role strings for @p stages,
 * duplicates dropped, into *out (owned). */
static int roles_check(json_t **out, const json_t *roles, const char *const *stages,
                       size_t n_stages)
{
    json_t *v, *copy = NULL;
    size_t i, j;
    int error = 0;

    if (!json_is_array(roles) || json_array_size(roles) == 0 ||
        json_array_size(roles) > MLREG_TOKENS_ROLES_MAX)
        return mlreg_error_set(MLREG_EINVALID, "\"roles\" must be an array of 1 to %d roles",
                               MLREG_TOKENS_ROLES_MAX);
    if ((copy = json_array()) == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    json_array_foreach(roles, i, v)
    {
        int dup = 0;
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            error = mlreg_error_set(MLREG_EINVALID, "\"roles[%zu]\" must be a string", i);
            goto done;
        }
        if ((error = mlreg_auth_role_check(json_string_value(v), stages, n_stages)) < 0) goto done;
        for (j = 0; j < json_array_size(copy); j++)
            dup |= !strcmp(json_string_value(json_array_get(copy, j)), json_string_value(v));
        if (!dup && json_array_append(copy, v) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
    }
    *out = copy;
    copy = NULL;

done:
    json_decref(copy);
    return error;
}

/* The record as listed and answered: everything but the hash. */
static json_t *public_record(const json_t *rec)
{
    json_t *pub = json_deep_copy(rec);

    if (pub != NULL) json_object_del(pub, "sha256");
    return pub;
}

int mlreg_tokens_create(json_t **out, char **secret_out, mlreg_tokens *t,
                        const mlreg_token_spec *spec)
{
    int error = 0;
    char *secret = NULL, hex[65];
    json_t *roles = NULL, *pub = NULL;
    create_change c;
    int64_t at_sec = 0;
    int32_t at_nsec = 0;

    memset(&c, 0, sizeof(c));
    if (mlreg_auth_token_count(spec->auth) == 0) {
        error = mlreg_error_set(MLREG_EDENIED,
                                "this server has no tokens in its config, so every request is "
                                "the local identity and a token would mean nothing: add a "
                                "config token (mlreg token new) to turn authentication on");
        goto done;
    }
    if (spec->name == NULL || !mlreg_auth_token_name_valid(spec->name)) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "token name must be 1 to %d of [A-Za-z0-9._-], starting with a "
                                "letter or digit",
                                MLREG_AUTH_TOKEN_NAME_MAX);
        goto done;
    }
    if (mlreg_auth_has_name(spec->auth, spec->name)) {
        error = mlreg_error_set(MLREG_EEXISTS,
                                "token name '%s' is taken by a token of the server's config",
                                spec->name);
        goto done;
    }
    if ((error = roles_check(&roles, spec->roles, spec->stages, spec->n_stages)) < 0) goto done;
    if (spec->expires_in != 0 && spec->expires_at != NULL) {
        error = mlreg_error_set(MLREG_EINVALID, "give expires_in or expires_at, not both");
        goto done;
    }
    if (spec->expires_in < 0 || spec->expires_in > MLREG_TOKENS_EXPIRES_MAX) {
        error = mlreg_error_set(MLREG_EINVALID, "expires_in must be 1 to %lld seconds",
                                (long long)MLREG_TOKENS_EXPIRES_MAX);
        goto done;
    }
    if (spec->expires_at != NULL) {
        if ((error = mlreg_time_parse(&at_sec, &at_nsec, spec->expires_at)) < 0) {
            error = mlreg_error_set(MLREG_EINVALID, "expires_at: %s", mlreg_error_last());
            goto done;
        }
        if (at_nsec > 0) at_sec++; /* whole seconds, rounded up */
        if (at_sec <= 0 || at_sec > mlreg_time_now_ns() / NS_PER_SEC + MLREG_TOKENS_EXPIRES_MAX) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "expires_at must be in the future and at most %lld seconds "
                                    "away",
                                    (long long)MLREG_TOKENS_EXPIRES_MAX);
            goto done;
        }
    }
    if ((error = mlreg_tokens_secret_new(&secret, hex)) < 0) goto done;

    c.name = spec->name;
    c.hex = hex;
    c.roles = roles;
    c.expires_in = spec->expires_in;
    c.expires_at_sec = at_sec;
    c.actor = mlreg_registry__actor(spec->actor);
    if ((error = mlreg_registry__mutate(NULL, t->meta, create_apply, &c)) < 0) goto done;
    if ((pub = public_record(c.rec)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    error = 0;
    *out = pub;
    *secret_out = secret;
    secret = NULL;

done:
    mlreg_tokens_secret_free(secret);
    json_decref(c.rec);
    json_decref(roles);
    return error;
}

/* ---- revoke ----------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *actor;
    json_t *rec; /* output: the record removed */
} revoke_change;

static int revoke_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    revoke_change *c = arg;
    char key[REGISTRY_KEY_CAP], hex[65];
    unsigned char raw[32];
    json_t *details = NULL;
    mlreg_audit_event ev;
    int error;

    json_decref(c->rec);
    c->rec = NULL;
    if ((error = name_get(hex, txn, c->name)) == MLREG_ENOTFOUND)
        return mlreg_error_set(MLREG_ENOTFOUND,
                               "no token named '%s' (tokens made at runtime: "
                               "mlreg token list)",
                               c->name);
    if (error < 0 || (error = record_get(&c->rec, txn, hex)) < 0) {
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_EIO, "token '%s' has a name but no record", c->name);
        return error;
    }
    if ((error = mlreg_meta_del(txn, MLREG_DB_TOKENS, key, hash_key(key, hex))) < 0 ||
        (error = mlreg_meta_del(txn, MLREG_DB_TOKENS, key, name_key(key, c->name))) < 0)
        return error;
    if (sodium_hex2bin(raw, sizeof(raw), hex, 64, NULL, NULL, NULL) == 0 &&
        (error = mlreg_meta_del(txn, MLREG_DB_TOKEN_USAGE, raw, sizeof(raw))) < 0 &&
        error != MLREG_ENOTFOUND)
        return error;
    details =
        json_pack("{s:s, s:O, s:O}", "name", c->name, "roles", json_object_get(c->rec, "roles"),
                  "expires", json_object_get(c->rec, "expires"));
    if (details == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory revoking a token");
    memset(&ev, 0, sizeof(ev));
    ev.actor = c->actor;
    ev.action = MLREG_AUDIT_TOKEN_REVOKE;
    ev.result = MLREG_AUDIT_OK;
    ev.details = details;
    error = mlreg_registry__mutation_record(NULL, mut, &ev);
    json_decref(details);
    if (error == 0) {
        char t[MLREG_TIME_STRLEN];
        mlreg_time_format(t, mlreg_registry__mutation_time(mut));
        if (json_object_set_new(c->rec, "revoked", json_string(t)) < 0 ||
            json_object_set_new(c->rec, "revoked_by", json_string(c->actor)) < 0)
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory revoking a token");
    }
    return error;
}

/* Forgets the remembered use of the token whose hash is @p raw (revoked). */
static void usage_forget_raw(mlreg_tokens *t, const unsigned char raw[32])
{
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->nuses; i++)
        if (!memcmp(t->uses[i].hash, raw, 32)) {
            t->uses[i] = t->uses[--t->nuses];
            break;
        }
    pthread_mutex_unlock(&t->lock);
}

/* usage_forget_raw() of the hash @p hex (64 hex digits). */
static void usage_forget(mlreg_tokens *t, const char *hex)
{
    unsigned char raw[32];

    if (sodium_hex2bin(raw, sizeof(raw), hex, 64, NULL, NULL, NULL) == 0) usage_forget_raw(t, raw);
}

int mlreg_tokens_revoke(json_t **out, mlreg_tokens *t, const mlreg_auth *auth, const char *name,
                        const char *actor)
{
    revoke_change c = {name, mlreg_registry__actor(actor), NULL};
    json_t *pub = NULL;
    int error;

    if (!mlreg_auth_token_name_valid(name))
        return mlreg_error_set(MLREG_EINVALID,
                               "token name must be 1 to %d of [A-Za-z0-9._-], starting with a "
                               "letter or digit",
                               MLREG_AUTH_TOKEN_NAME_MAX);
    if (mlreg_auth_has_name(auth, name))
        return mlreg_error_set(MLREG_EDENIED,
                               "token '%s' lives in the server's config: remove its entry from "
                               "\"tokens\" there and restart the server (or reload its config)",
                               name);
    if ((error = mlreg_registry__mutate(NULL, t->meta, revoke_apply, &c)) < 0) goto done;
    if (rec_str(c.rec, "sha256") != NULL) usage_forget(t, rec_str(c.rec, "sha256"));
    if ((pub = public_record(c.rec)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    error = 0;
    *out = pub;

done:
    json_decref(c.rec);
    return error;
}

/* ---- replay ----------------------------------------------------------------- */

static int hex64(const char *s)
{
    if (s == NULL || strlen(s) != 64) return 0;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

int mlreg_registry__replay_tokens(mlreg_registry *reg, const json_t *entry, const char *text,
                                  size_t len)
{
    const char *action = rec_str(entry, "action"), *actor = rec_str(entry, "actor");
    const json_t *details = json_object_get(entry, "details");
    const char *name = rec_str(details, "name");
    mlreg_meta *meta = mlreg_registry_meta(reg);
    int error;

    if (name == NULL || !mlreg_auth_token_name_valid(name))
        return mlreg_error_set(MLREG_EINVALID, "%s entry names no valid token", action);
    if (!strcmp(action, MLREG_AUDIT_TOKEN_CREATE)) {
        const json_t *exp = json_object_get(details, "expires");
        create_change c;

        memset(&c, 0, sizeof(c));
        c.name = name;
        c.hex = rec_str(details, "sha256");
        c.roles = json_object_get(details, "roles");
        c.expires = json_string_value(exp);
        c.actor = actor;
        if (!hex64(c.hex) || !json_is_array(c.roles) || json_array_size(c.roles) == 0 ||
            (exp != NULL && !json_is_null(exp) &&
             (!json_is_string(exp) || mlreg_time_parse(NULL, NULL, c.expires) < 0)))
            return mlreg_error_set(MLREG_EINVALID,
                                   "token.create entry of '%s' lacks a valid sha256, roles or "
                                   "expires",
                                   name);
        for (size_t i = 0; i < json_array_size(c.roles); i++) {
            const char *r = json_string_value(json_array_get(c.roles, i));
            if (r == NULL || mlreg_auth_role_validate(r) < 0)
                return mlreg_error_set(MLREG_EINVALID, "token.create entry of '%s' has a bad role",
                                       name);
        }
        error = mlreg_registry__mutate_replay(meta, entry, text, len, create_apply, &c);
        json_decref(c.rec);
        return error;
    }
    {
        revoke_change c = {name, actor, NULL};
        error = mlreg_registry__mutate_replay(meta, entry, text, len, revoke_apply, &c);
        json_decref(c.rec);
        return error;
    }
}

/* ---- authentication ---------------------------------------------------------- */

/* Remembers a use of @p hash at @p now. */
static void usage_note(mlreg_tokens *t, const unsigned char hash[32], int64_t now)
{
    size_t i;

    pthread_mutex_lock(&t->lock);
    for (i = 0; i < t->nuses; i++)
        if (!memcmp(t->uses[i].hash, hash, 32)) break;
    if (i == t->nuses) {
        if (t->nuses == t->capuses) {
            size_t cap = t->capuses ? t->capuses * 2 : 16;
            usage *grown = realloc(t->uses, cap * sizeof(*grown));
            if (grown == NULL) goto done; /* a use not remembered: no harm */
            t->uses = grown;
            t->capuses = cap;
        }
        memset(&t->uses[i], 0, sizeof(t->uses[i]));
        memcpy(t->uses[i].hash, hash, 32);
        t->nuses++;
    }
    if (now > t->uses[i].used_ns) t->uses[i].used_ns = now;
    t->uses[i].dirty = 1;
done:
    pthread_mutex_unlock(&t->lock);
}

/* One lookup in its own read transaction: 0 with *rec_out, or MLREG_ENOTFOUND. */
static int lookup_once(json_t **rec_out, mlreg_tokens *t, const char *hex)
{
    mlreg_meta_txn *txn = NULL;
    int error;

    if ((error = mlreg_meta_txn_begin(&txn, t->meta, 0)) < 0) return error;
    error = record_get(rec_out, txn, hex);
    mlreg_meta_txn_abort(txn);
    return error;
}

int mlreg_tokens_lookup(mlreg_identity **out, const unsigned char hash[32], void *tokens)
{
    mlreg_tokens *t = tokens;
    mlreg_registry *reg = mlreg_meta_owner(t->meta);
    mlreg_cluster *cl = reg != NULL ? mlreg_registry__cluster(reg) : NULL;
    char hex[65];
    json_t *rec = NULL;
    const char *expires;
    int64_t now = mlreg_time_now_ns(), sec = 0;
    int error;

    sodium_bin2hex(hex, sizeof(hex), hash, 32);
    error = lookup_once(&rec, t, hex);
    /* made on another node a moment ago? */
    if (error == MLREG_ENOTFOUND && cl != NULL && mlreg_cluster__refresh(cl, 0) > 0)
        error = lookup_once(&rec, t, hex);
    if (error < 0) goto done;
    expires = rec_str(rec, "expires");
    if (expires != NULL && (mlreg_time_parse(&sec, NULL, expires) < 0 || now >= sec * NS_PER_SEC)) {
        error = mlreg_error_set(MLREG_EAUTH, "token '%s' expired at %s",
                                rec_str(rec, "name") ? rec_str(rec, "name") : "?", expires);
        goto done;
    }
    if (rec_str(rec, "name") == NULL) {
        error = mlreg_error_set(MLREG_EIO, "token record of %.16s... has no name", hex);
        goto done;
    }
    if ((error = mlreg_identity_new(out, rec_str(rec, "name"), json_object_get(rec, "roles"))) < 0)
        goto done;
    usage_note(t, hash, now);

done:
    json_decref(rec);
    return error;
}

/* ---- last uses -------------------------------------------------------------- */

int mlreg_tokens_flush_usage(mlreg_tokens *t, int all)
{
    int64_t now = mlreg_time_now_ns();
    usage *due = NULL;
    size_t ndue = 0, i;
    mlreg_meta_txn *txn = NULL;
    int error = 0;

    pthread_mutex_lock(&t->lock);
    if (t->nuses > 0 && (due = malloc(t->nuses * sizeof(*due))) != NULL) {
        for (i = 0; i < t->nuses; i++) {
            usage *u = &t->uses[i];
            if (!u->dirty || (!all && u->written_ns != 0 &&
                              now - u->written_ns < MLREG_TOKENS_USAGE_FLUSH_SECONDS * NS_PER_SEC))
                continue;
            due[ndue++] = *u;
            u->dirty = 0;
            u->written_ns = now;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (ndue == 0) goto done;
    /* Not a change of the registry's history: no entry, no mutate.c (see
     * the top of this file). A token revoked meanwhile gets no row. */
    if ((error = mlreg_meta_txn_begin(&txn, t->meta, 1)) < 0) goto done;
    for (i = 0; i < ndue; i++) {
        char hex[65], key[REGISTRY_KEY_CAP];
        unsigned char be[8];
        sodium_bin2hex(hex, sizeof(hex), due[i].hash, 32);
        if ((error = mlreg_registry__meta_has(txn, MLREG_DB_TOKENS, key, hash_key(key, hex))) < 0)
            goto done;
        if (error == 0) {
            due[i].dirty = -1; /* revoked meanwhile, maybe on another node: forget it */
            continue;
        }
        mlreg_be64_put(be, (uint64_t)due[i].used_ns);
        if ((error = mlreg_meta_put(txn, MLREG_DB_TOKEN_USAGE, due[i].hash, 32, be, 8, 0)) < 0)
            goto done;
    }
    error = mlreg_meta_txn_commit(txn);
    txn = NULL;
    for (i = 0; error == 0 && i < ndue; i++)
        if (due[i].dirty == -1) usage_forget_raw(t, due[i].hash);

done:
    mlreg_meta_txn_abort(txn);
    if (error < 0 && ndue > 0) {
        /* written nothing: try again next time */
        pthread_mutex_lock(&t->lock);
        for (i = 0; i < t->nuses; i++)
            for (size_t j = 0; j < ndue; j++)
                if (!memcmp(t->uses[i].hash, due[j].hash, 32)) t->uses[i].dirty = 1;
        pthread_mutex_unlock(&t->lock);
    }
    free(due);
    return error < 0 ? error : 0;
}

/* ---- list ------------------------------------------------------------------ */

typedef struct {
    mlreg_tokens *t;
    mlreg_meta_txn *txn;
    json_t *arr;
    int64_t now;
} list_walk;

static int list_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    list_walk *w = payload;
    char hex[65];
    unsigned char raw[32];
    json_t *rec = NULL, *pub = NULL;
    void *u = NULL;
    size_t ulen = 0;
    int64_t used = 0, sec = 0;
    const char *expires;
    int error;

    (void)key;
    (void)klen;
    if (vlen != 64) return mlreg_error_set(MLREG_EIO, "a token name record is corrupt");
    memcpy(hex, val, 64);
    hex[64] = '\0';
    if ((error = record_get(&rec, w->txn, hex)) < 0) {
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_EIO, "a token has a name but no record");
        return error;
    }
    if (sodium_hex2bin(raw, sizeof(raw), hex, 64, NULL, NULL, NULL) != 0) {
        json_decref(rec);
        return mlreg_error_set(MLREG_EIO, "a token record is corrupt");
    }
    error = mlreg_meta_get(&u, &ulen, w->txn, MLREG_DB_TOKEN_USAGE, raw, sizeof(raw));
    if (error == 0 && ulen == 8) used = (int64_t)mlreg_be64_get(u);
    free(u);
    if (error < 0 && error != MLREG_ENOTFOUND) {
        json_decref(rec);
        return error;
    }
    pthread_mutex_lock(&w->t->lock);
    for (size_t i = 0; i < w->t->nuses; i++)
        if (!memcmp(w->t->uses[i].hash, raw, 32) && w->t->uses[i].used_ns > used)
            used = w->t->uses[i].used_ns;
    pthread_mutex_unlock(&w->t->lock);
    expires = rec_str(rec, "expires");
    if ((pub = public_record(rec)) == NULL ||
        json_object_set_new(pub, "source", json_string("runtime")) < 0 ||
        json_object_set_new(pub, "expired",
                            json_boolean(expires != NULL &&
                                         mlreg_time_parse(&sec, NULL, expires) == 0 &&
                                         w->now >= sec * NS_PER_SEC)) < 0) {
        json_decref(rec);
        json_decref(pub);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    if (used > 0) {
        char t[MLREG_TIME_STRLEN];
        mlreg_time_format(t, used);
        error = json_object_set_new(pub, "last_used", json_string(t));
    } else {
        error = json_object_set_new(pub, "last_used", json_null());
    }
    json_decref(rec);
    if (error < 0 || json_array_append_new(w->arr, pub) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

int mlreg_tokens_list(json_t **out, mlreg_tokens *t, const mlreg_auth *auth)
{
    list_walk w = {t, NULL, NULL, mlreg_time_now_ns()};
    json_t *res = NULL;
    char prefix[4] = {'n', '\0'};
    int error = 0;

    if ((w.arr = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = mlreg_meta_txn_begin(&w.txn, t->meta, 0)) < 0) goto done;
    if ((error = mlreg_meta_iter(w.txn, MLREG_DB_TOKENS, prefix, 2, NULL, 0, list_cb, &w)) < 0)
        goto done;
    for (size_t i = 0; i < mlreg_auth_token_count(auth); i++) {
        const mlreg_identity *id = mlreg_auth_token_at(auth, i);
        json_t *roles = mlreg_identity_roles(id);
        if (roles == NULL ||
            json_array_append_new(w.arr,
                                  json_pack("{s:s, s:s, s:o}", "name", mlreg_identity_name(id),
                                            "source", "config", "roles", roles)) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
    }
    if ((res = json_pack("{s:O}", "tokens", w.arr)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    *out = res;

done:
    mlreg_meta_txn_abort(w.txn);
    json_decref(w.arr);
    return error;
}
