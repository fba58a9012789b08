/**
 * @file tokens.h
 * @brief API tokens made at runtime (`POST /api/v1/tokens`), beside the
 *        config's tokens (auth.h): created, listed and revoked by an admin,
 *        stored as SHA-256 hashes only, recorded in the audit log and
 *        replayed from it, so every node of a shared log has them.
 *
 * The wire contract is docs/promotions-api.md ("Tokens made at runtime").
 *
 * A token is "mlreg_" + base64url (no padding) of 32 random bytes, made by
 * the server; the caller sees it once, in the answer of the create. What is
 * stored, and recorded in the `token.create` entry, is its SHA-256 (hex),
 * its name, roles, time of creation, creator and expiry: the hash of 256
 * random bits reveals nothing usable, and replay needs it to rebuild the
 * table on other nodes and on an index rebuild. `token.revoke` removes the
 * token from the table. Authentication looks a presented token up by the
 * hash of what was presented (mlreg_tokens_lookup()), after the config's
 * tokens.
 *
 * LMDB layout (table "tokens", tables.h):
 *   "h" \0 <64 hex>  -> record {"name","sha256","roles","created",
 *                       "created_by","expires"} (sorted-key compact JSON)
 *   "n" \0 <name>    -> <64 hex>
 * and table "token_usage": <32-byte hash> -> be64 ns of the last successful
 * use on this node. That table is not history: it is written outside the
 * mutation path, never replicated nor audited, and an index rebuild starts
 * it empty. Uses are kept in memory and written at most once a minute per
 * token (mlreg_tokens_flush_usage()).
 *
 * A server without config tokens serves every request as the local
 * identity (auth.h): there, runtime tokens would mean nothing, and creating
 * one is refused.
 */
#ifndef MLREG_TOKENS_H
#define MLREG_TOKENS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/auth.h"
#include "mlreg/meta.h"

/** Longest lifetime a token may be given, in seconds (ten years). */
#define MLREG_TOKENS_EXPIRES_MAX (10LL * 366 * 24 * 3600)
/** Most roles one token may hold. */
#define MLREG_TOKENS_ROLES_MAX 32
/** Seconds between two writes of one token's last use. */
#define MLREG_TOKENS_USAGE_FLUSH_SECONDS 60

/** The runtime tokens of one registry (owned by it: mlreg_registry_tokens()). */
typedef struct mlreg_tokens mlreg_tokens;

/**
 * A new handle on the tokens of @p meta (borrowed; its owner, when a
 * registry, gives the shared log to refresh from). *out owned by the caller
 * (mlreg_tokens_free()). 0, MLREG_ENOMEM.
 */
int mlreg_tokens_new(mlreg_tokens **out, mlreg_meta *meta);

/** Writes the uses not yet written, then frees; NULL is a no-op. */
void mlreg_tokens_free(mlreg_tokens *t);

/** What mlreg_tokens_create() makes. Everything borrowed for the call. */
typedef struct {
    const char *name;          /**< mlreg_auth_token_name_valid() */
    const json_t *roles;       /**< array of 1..MLREG_TOKENS_ROLES_MAX role strings */
    int64_t expires_in;        /**< seconds from now, 1..MLREG_TOKENS_EXPIRES_MAX; 0: not given */
    const char *expires_at;    /**< RFC 3339 time in the future, or NULL; not both */
    const char *actor;         /**< who creates it (recorded) */
    const mlreg_auth *auth;    /**< the config's tokens: their names are taken */
    const char *const *stages; /**< the configured stages a role may name */
    size_t n_stages;
} mlreg_token_spec;

/**
 * Creates a token as @p spec says, through the mutation path (entry
 * `token.create`). An expiry is rounded up to a whole second.
 * @param out the token's record as listed (never the token), owned
 * @param secret_out the token, in sodium_malloc memory: the caller wipes
 *        and frees it with mlreg_tokens_secret_free()
 * @return 0; MLREG_EINVALID (a bad name, role, stage or expiry: the message
 *         says which); MLREG_EEXISTS (the name is a config token's or
 *         another runtime token's); MLREG_EDENIED (no config tokens: the
 *         server runs as the local identity); the change's errors.
 */
int mlreg_tokens_create(json_t **out, char **secret_out, mlreg_tokens *t,
                        const mlreg_token_spec *spec);

/** Wipes and frees a token from mlreg_tokens_create(); NULL is a no-op. */
void mlreg_tokens_secret_free(char *secret);

/**
 * Makes a new token: "mlreg_" and the base64url (no padding) of 32 bytes
 * from randombytes_buf(), 256 bits, so its SHA-256 may be published (the
 * config's `sha256`, the `token.create` entry). *out in sodium_malloc
 * memory (free with mlreg_tokens_secret_free()); @p hex_out its lowercase
 * hex SHA-256. 0 or MLREG_ENOMEM.
 */
int mlreg_tokens_secret_new(char **out, char hex_out[65]);

/**
 * Revokes the runtime token @p name on behalf of @p actor (entry
 * `token.revoke`); it stops working on every node as soon as the node has
 * the entry. *out (owned) is its record with "revoked" and "revoked_by".
 * @return 0; MLREG_EINVALID (not a token name); MLREG_EDENIED (a config
 *         token: it lives in the config); MLREG_ENOTFOUND (no such token);
 *         the change's errors.
 */
int mlreg_tokens_revoke(json_t **out, mlreg_tokens *t, const mlreg_auth *auth, const char *name,
                        const char *actor);

/**
 * The tokens, for `GET /api/v1/tokens`: *out (owned) =
 * {"tokens":[{"name","source":"runtime","roles","created","created_by",
 * "expires"|null,"expired","last_used"|null}...] (by name), then the config's
 * tokens as {"name","source":"config","roles"}}. "last_used" is this node's
 * knowledge. No token and no hash is listed.
 */
int mlreg_tokens_list(json_t **out, mlreg_tokens *t, const mlreg_auth *auth);

/**
 * An mlreg_auth_lookup_fn: @p tokens is the mlreg_tokens. Finds the runtime
 * token whose SHA-256 is @p hash (one LMDB read; on a shared log, a token
 * not found makes the node read the log once more, so a token made on
 * another node a moment ago works). An expired token is MLREG_EAUTH
 * "token 'N' expired at T". A use found is remembered in memory.
 */
int mlreg_tokens_lookup(mlreg_identity **out, const unsigned char hash[32], void *tokens);

/**
 * Writes the last uses remembered in memory to the "token_usage" table:
 * those not written for MLREG_TOKENS_USAGE_FLUSH_SECONDS, or with @p all
 * every one not yet written (at shutdown). 0 or the store's error.
 */
int mlreg_tokens_flush_usage(mlreg_tokens *t, int all);

#endif
