/**
 * @file auth.h
 * @brief Identities and permissions: the config's bearer tokens, stored as
 *        SHA-256 hashes and compared in constant time, their roles, and the
 *        single local identity of a server without tokens.
 *
 * The wire contract is docs/promotions-api.md ("Identity and roles"). A
 * token entry is `{"name","sha256","roles":[...]}`; `sha256` is the
 * lowercase hex SHA-256 of the token string. Roles: `read`, `push`,
 * `promote:<stage>`, `approve:<stage>`, `override:<stage>` (break-glass
 * promotions, docs/promotions-api.md), `admin`; any of them may be limited
 * to the models under a prefix: `promote:production@vision` grants the model
 * `vision` and every model under `vision/` (`vision/det`, `vision/a/b`),
 * never `visionary` or `vision-x` (mlreg_name_under() is the one
 * comparison). The prefix must be a valid model name: `@vision/` is refused
 * when the config loads, with the prefix to write instead.
 * `admin` implies every other role (within its prefix, if it has one).
 * A prefix-limited role never grants an action that is not about a model
 * (key management).
 *
 * Nothing here logs or keeps a presented token: it is hashed at once and
 * the hash compared with every configured hash (sodium_memcmp), without an
 * early exit, so the time taken does not depend on which token matched.
 */
#ifndef MLREG_AUTH_H
#define MLREG_AUTH_H

#include <jansson.h>
#include <stddef.h>

/** Longest token name, in bytes (it is recorded as the actor). */
#define MLREG_AUTH_NAME_MAX 128
/** Longest role string ("approve:STAGE@PREFIX"), in bytes. */
#define MLREG_AUTH_ROLE_MAX 512
/** Longest name of a token made at runtime (mlreg_auth_token_name_valid()). */
#define MLREG_AUTH_TOKEN_NAME_MAX 64
/** Name of the single identity of a server without tokens. */
#define MLREG_AUTH_LOCAL "local"

/** Name of the identity the server's scheduled jobs act as. */
#define MLREG_AUTH_SCHEDULED "scheduled-gc"

/** What an action needs. */
typedef enum {
    MLREG_ROLE_READ = 0, /**< every GET/HEAD */
    MLREG_ROLE_PUSH,     /**< uploads, manifest PUT/DELETE, signature attach, image
                              binding to a release no stage holds or has held */
    MLREG_ROLE_PROMOTE,  /**< promote to (and roll back) one stage; image binding to a
                              release that stage holds or has held */
    MLREG_ROLE_APPROVE,  /**< approve a release for one stage */
    MLREG_ROLE_ADMIN,    /**< key trust/revoke; implies all the others */
    MLREG_ROLE_OVERRIDE  /**< break-glass: promote to one stage despite failing gate rules,
                              and approve someone else's override for it */
} mlreg_role_kind;

typedef struct mlreg_auth mlreg_auth;

/** An authenticated identity. Owned by the mlreg_auth it came from. */
typedef struct mlreg_identity mlreg_identity;

/**
 * Parses the config's `tokens` array @p tokens (NULL: no tokens, the local
 * identity only) into *out (owned by the caller, mlreg_auth_free()).
 * Strict: each entry has exactly "name" (1..MLREG_AUTH_NAME_MAX printable
 * ASCII, unique), "sha256" (64 lowercase hex, unique) and "roles" (a
 * non-empty array of role strings); a stage named in a role must be one of
 * the @p n_stages @p stages; a prefix after '@' must be a model name
 * (mlreg_name_validate()). Errors name the key:
 * `config key 'tokens[1].roles[0]': unknown role 'promte:staging'`,
 * `config key 'tokens[0].roles[0]': role 'push@a/b/': model prefix 'a/b/' is
 * not a model name; write 'a/b': a prefix grants the model a/b and every
 * model under a/b/`.
 * @return 0, MLREG_EINVALID, MLREG_ENOMEM.
 */
int mlreg_auth_new(mlreg_auth **out, const json_t *tokens, const char *const *stages,
                   size_t n_stages);

/** Frees @p auth; NULL is a no-op. */
void mlreg_auth_free(mlreg_auth *auth);

/** Number of configured tokens; 0 means every request is the local identity. */
size_t mlreg_auth_token_count(const mlreg_auth *auth);

/**
 * Authenticates the value of an Authorization header (@p header, NULL when
 * absent): `Bearer <token>` or `Basic base64(user:token)` (the user part is
 * ignored). Without configured tokens every request, with or without a
 * header, is the local identity with every role. *out is borrowed from
 * @p auth.
 * @return 0; MLREG_EAUTH (missing, malformed or unknown token; the message
 *         never contains the token).
 */
int mlreg_auth_authenticate(const mlreg_identity **out, const mlreg_auth *auth, const char *header);

/**
 * Looks up a token that no config token matched, by the SHA-256 @p hash of
 * the presented token (tokens made at runtime, include/mlreg/tokens.h).
 * @return 0 with *out owned by the caller (mlreg_identity_free());
 *         MLREG_ENOTFOUND (no such token: no message needed); MLREG_EAUTH
 *         with the message to send (an expired token); another error.
 */
typedef int (*mlreg_auth_lookup_fn)(mlreg_identity **out, const unsigned char hash[32], void *ctx);

/**
 * mlreg_auth_authenticate(), and when no config token matches, @p lookup
 * (may be NULL) with @p ctx and the hash of the presented token. An
 * identity found that way is handed over in *owned_out (the caller frees
 * it with mlreg_identity_free() once done with *out, which then points to
 * it); otherwise *owned_out is NULL. Without config tokens the local
 * identity answers every request and @p lookup is not called. A looked-up
 * token whose name is a config token's is refused (MLREG_EAUTH), so one
 * name never stands for two identities.
 * @return 0; MLREG_EAUTH ("invalid token" for an unknown one, whether it
 *         never existed or was revoked; the lookup's message for an
 *         expired one); the lookup's other errors.
 */
int mlreg_auth_authenticate_with(const mlreg_identity **out, mlreg_identity **owned_out,
                                 const mlreg_auth *auth, const char *header,
                                 mlreg_auth_lookup_fn lookup, void *ctx);

/**
 * mlreg_auth_authenticate_with() for the Hugging Face-compatible reads: a
 * token made at runtime is also accepted as "hf_" followed by the token
 * ("hf_mlreg_..."), the form @huggingface/hub requires. The prefix is
 * dropped before the same lookup by hash; a config token is still matched
 * as presented (it may start with "hf_" itself).
 */
int mlreg_auth_authenticate_hub(const mlreg_identity **out, mlreg_identity **owned_out,
                                const mlreg_auth *auth, const char *header,
                                mlreg_auth_lookup_fn lookup, void *ctx);

/**
 * A new identity named @p name holding the JSON array of role strings
 * @p roles (the grammar of mlreg_auth_role_validate(); stages are not
 * checked against a config: a role for a stage the server does not have
 * grants nothing). *out owned by the caller (mlreg_identity_free()).
 * @return 0, MLREG_EINVALID, MLREG_ENOMEM.
 */
int mlreg_identity_new(mlreg_identity **out, const char *name, const json_t *roles);

/** Frees an identity made by mlreg_identity_new(); NULL is a no-op. */
void mlreg_identity_free(mlreg_identity *id);

/** 1 when a config token of @p auth is named @p name, else 0. */
int mlreg_auth_has_name(const mlreg_auth *auth, const char *name);

/**
 * The grammar of the name of a token made at runtime (also used by
 * `mlreg token new`): 1 to MLREG_AUTH_TOKEN_NAME_MAX of [A-Za-z0-9._-],
 * starting with a letter or digit, so it fits a URL path segment as is.
 * @return 1 when @p name follows it, else 0 (no message set).
 */
int mlreg_auth_token_name_valid(const char *name);

/**
 * The identity of the server's own scheduled garbage collection (and the
 * retention it runs): every role, named MLREG_AUTH_SCHEDULED. Static, never
 * the answer to a request: mlreg_auth_authenticate() does not return it.
 */
const mlreg_identity *mlreg_auth_scheduled(void);

/** The identity's name (the actor recorded on changes). */
const char *mlreg_identity_name(const mlreg_identity *id);

/**
 * Whether @p id may do an action needing @p kind, for stage @p stage
 * (PROMOTE/APPROVE only; NULL otherwise) on model @p model (NULL for an
 * action not about one model, such as key management).
 * @return 0 or MLREG_EFORBIDDEN, message naming the identity and the role
 *         it lacks ("token 'ci' lacks role promote:production for model 'x'").
 */
int mlreg_auth_check(const mlreg_identity *id, mlreg_role_kind kind, const char *stage,
                     const char *model);

/**
 * Whether @p id holds a role of @p kind (or admin) for some model, limited to
 * a prefix or not: the check of a listing that shows each identity only the
 * models it may act on (GET /v2/_catalog with read), before it filters them
 * one by one with mlreg_auth_check().
 * @return 0 or MLREG_EFORBIDDEN ("token 'ci' lacks role read for any model").
 */
int mlreg_auth_check_some(const mlreg_identity *id, mlreg_role_kind kind);

/**
 * Checks one role string @p role as a token entry would hold it (the same
 * grammar and messages as mlreg_auth_new(), without the config key), for
 * tools that write token entries: a stage must be in the tag grammar (the
 * server checks it against its configured stages at start).
 * @return 0 or MLREG_EINVALID ("role 'push@a/b/': model prefix ...").
 */
int mlreg_auth_role_validate(const char *role);

/**
 * mlreg_auth_role_validate(), and a stage named in @p role must be one of
 * the @p n_stages @p stages ("role 'promote:prod' names unknown stage
 * 'prod'"). 0 or MLREG_EINVALID.
 */
int mlreg_auth_role_check(const char *role, const char *const *stages, size_t n_stages);

/** The @p i-th config token of @p auth (i < mlreg_auth_token_count()), borrowed. */
const mlreg_identity *mlreg_auth_token_at(const mlreg_auth *auth, size_t i);

/** The roles of @p id as role strings ("promote:production@vision"), a new
 *  JSON array (NULL when out of memory). */
json_t *mlreg_identity_roles(const mlreg_identity *id);

/**
 * Hex SHA-256 of @p token (the `sha256` of its config entry) into @p out
 * (65 bytes with the NUL). 0 or an error of the digest module.
 */
int mlreg_auth_token_hash(char out[65], const char *token);

#endif
