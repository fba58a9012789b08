/**
 * @file auth.h
 * @brief Identities and permissions: the config's bearer tokens, stored as
 *        SHA-256 hashes and compared in constant time, their roles, and the
 *        single local identity of a server without tokens.
 *
 * The wire contract is docs/promotions-api.md ("Identity and roles"). A
 * token entry is `{"name","sha256","roles":[...]}`; `sha256` is the
 * lowercase hex SHA-256 of the token string. Roles: `read`, `push`,
 * `promote:<stage>`, `approve:<stage>`, `admin`; any of them may be limited
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
    MLREG_ROLE_ADMIN     /**< key trust/revoke; implies all the others */
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
 * Checks one role string @p role as a token entry would hold it (the same
 * grammar and messages as mlreg_auth_new(), without the config key), for
 * tools that write token entries: a stage must be in the tag grammar (the
 * server checks it against its configured stages at start).
 * @return 0 or MLREG_EINVALID ("role 'push@a/b/': model prefix ...").
 */
int mlreg_auth_role_validate(const char *role);

/**
 * Hex SHA-256 of @p token (the `sha256` of its config entry) into @p out
 * (65 bytes with the NUL). 0 or an error of the digest module.
 */
int mlreg_auth_token_hash(char out[65], const char *token);

#endif
