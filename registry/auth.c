/* auth.c: bearer tokens, roles and the local identity (include/mlreg/auth.h).
 *
 * A presented token is hashed (SHA-256) and the hash compared with EVERY
 * configured hash with sodium_memcmp, remembering the match without leaving
 * the loop, so neither the position of the matching entry nor the number of
 * equal leading bytes shows in the time taken. The token itself is wiped
 * from the decoding buffer and never copied into a message.
 */
#include "mlreg/auth.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/names.h"

/* Longest Authorization header value we decode; real tokens are far shorter. */
#define AUTH_HEADER_MAX 4096

typedef struct {
    mlreg_role_kind kind;
    char *stage;  /* PROMOTE / APPROVE: the stage; NULL otherwise */
    char *prefix; /* model name prefix after '@', NULL when unlimited */
} role;

struct mlreg_identity {
    char *name;
    unsigned char hash[MLREG_DIGEST_RAWLEN];
    role *roles;
    size_t nroles;
    int local; /* the identity of a server without tokens: every role */
};

struct mlreg_auth {
    mlreg_identity *ids;
    size_t nids;
    mlreg_identity local;
};

static const char *const kind_names[] = {
    [MLREG_ROLE_READ] = "read",       [MLREG_ROLE_PUSH] = "push",
    [MLREG_ROLE_PROMOTE] = "promote", [MLREG_ROLE_APPROVE] = "approve",
    [MLREG_ROLE_ADMIN] = "admin",     [MLREG_ROLE_OVERRIDE] = "override",
};

/* The kinds of role that name a stage ("promote:production"). */
static int kind_has_stage(mlreg_role_kind kind)
{
    return kind == MLREG_ROLE_PROMOTE || kind == MLREG_ROLE_APPROVE || kind == MLREG_ROLE_OVERRIDE;
}

void mlreg_auth_free(mlreg_auth *auth)
{
    if (auth == NULL) return;
    for (size_t i = 0; i < auth->nids; i++) {
        mlreg_identity *id = &auth->ids[i];
        for (size_t j = 0; j < id->nroles; j++) {
            free(id->roles[j].stage);
            free(id->roles[j].prefix);
        }
        free(id->roles);
        free(id->name);
    }
    free(auth->ids);
    free(auth);
}

static int hex_lower64(const char *s, size_t len)
{
    if (len != 64) return 0;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* Checks the model prefix @p prefix of role @p text: it must be a model
 * name itself, since it grants that name and the names below it
 * (mlreg_name_under). A prefix written as a directory ("vision/") or with
 * stray slashes is refused rather than normalised, with the prefix to write
 * instead, so that what the config says is exactly what is granted.
 * @p ctx starts the message ("config key 'tokens[0].roles[1]': " or ""). */
static int prefix_check(const char *ctx, const char *text, const char *prefix)
{
    char fixed[MLREG_AUTH_ROLE_MAX + 1];
    size_t b = 0, e = strlen(prefix);

    if (prefix[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "%srole '%s' has an empty model prefix after '@'",
                               ctx, text);
    if (mlreg_name_validate(prefix) == 0) return 0;
    while (prefix[b] == '/')
        b++;
    while (e > b && prefix[e - 1] == '/')
        e--;
    if (e > b && e - b < sizeof(fixed)) {
        memcpy(fixed, prefix + b, e - b);
        fixed[e - b] = '\0';
        if (mlreg_name_validate(fixed) == 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "%srole '%s': model prefix '%s' is not a model name; write "
                                   "'%s': a prefix grants the model %s and every model under %s/",
                                   ctx, text, prefix, fixed, fixed, fixed);
    }
    return mlreg_error_set(MLREG_EINVALID,
                           "%srole '%s': model prefix '%s' is not a model name (lowercase "
                           "[a-z0-9] components joined by '.', '_' or '-', separated by '/'); "
                           "a prefix such as 'vision' grants the model vision and every model "
                           "under vision/",
                           ctx, text, prefix);
}

/* Parses one role string "kind[:stage][@prefix]" into *r (its strings owned
 * by *r, also on error). @p label names the config key for messages (NULL
 * outside a config); with @p stages NULL a stage only has to be in the tag
 * grammar (the server checks it against its stages when it loads them). */
static int parse_role(role *r, const char *text, const char *label, const char *const *stages,
                      size_t n_stages)
{
    const char *at = strchr(text, '@'), *colon;
    char ctx[96] = "";
    size_t klen, i;
    int found = 0, error;

    memset(r, 0, sizeof(*r));
    if (label != NULL) snprintf(ctx, sizeof(ctx), "config key '%s': ", label);
    if (strlen(text) > MLREG_AUTH_ROLE_MAX)
        return mlreg_error_set(MLREG_EINVALID, "%srole '%.40s...' is longer than %d bytes", ctx,
                               text, MLREG_AUTH_ROLE_MAX);
    if (at != NULL) {
        if (strchr(at + 1, '@') != NULL)
            return mlreg_error_set(MLREG_EINVALID, "%srole '%s' has more than one @prefix", ctx,
                                   text);
        if ((error = prefix_check(ctx, text, at + 1)) < 0) return error;
        if ((r->prefix = strdup(at + 1)) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    klen = at ? (size_t)(at - text) : strlen(text);
    colon = memchr(text, ':', klen);
    for (i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
        size_t n = strlen(kind_names[i]);
        if ((colon ? (size_t)(colon - text) : klen) == n && !memcmp(text, kind_names[i], n)) {
            r->kind = (mlreg_role_kind)i;
            found = 1;
        }
    }
    if (!found)
        return mlreg_error_set(MLREG_EINVALID,
                               "%sunknown role '%s' (read, push, promote:STAGE, approve:STAGE, "
                               "override:STAGE, admin, each optionally @PREFIX)",
                               ctx, text);
    if (kind_has_stage(r->kind)) {
        size_t slen;
        if (colon == NULL || (slen = klen - (size_t)(colon + 1 - text)) == 0)
            return mlreg_error_set(MLREG_EINVALID, "%srole '%s' needs a stage (%s:STAGE)", ctx,
                                   text, kind_names[r->kind]);
        if ((r->stage = strndup(colon + 1, slen)) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        if (stages == NULL) {
            if (mlreg_tag_validate(r->stage) < 0)
                return mlreg_error_set(MLREG_EINVALID,
                                       "%srole '%s': '%s' is not a valid stage name", ctx, text,
                                       r->stage);
            return 0;
        }
        for (i = 0; i < n_stages; i++)
            if (!strcmp(stages[i], r->stage)) break;
        if (i == n_stages)
            return mlreg_error_set(MLREG_EINVALID, "%srole '%s' names unknown stage '%s'", ctx,
                                   text, r->stage);
    } else if (colon != NULL) {
        return mlreg_error_set(MLREG_EINVALID, "%srole '%s' takes no stage", ctx, text);
    }
    return 0;
}

int mlreg_auth_role_validate(const char *text)
{
    role r;
    int error = parse_role(&r, text, NULL, NULL, 0);

    free(r.stage);
    free(r.prefix);
    return error;
}

int mlreg_auth_role_check(const char *text, const char *const *stages, size_t n_stages)
{
    role r;
    int error = parse_role(&r, text, NULL, stages, n_stages);

    free(r.stage);
    free(r.prefix);
    return error;
}

static int parse_token(mlreg_identity *id, const json_t *obj, size_t idx, const char *const *stages,
                       size_t n_stages)
{
    const char *key;
    json_t *v, *name, *hash, *roles;
    char label[96];
    size_t i;
    int error;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'tokens[%zu]' must be an object", idx);
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "sha256") && strcmp(key, "roles"))
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'tokens[%zu].%s'", idx, key);
    }
    name = json_object_get(obj, "name");
    hash = json_object_get(obj, "sha256");
    roles = json_object_get(obj, "roles");
    if (!json_is_string(name) ||
        !mlreg_label_valid(json_string_value(name), json_string_length(name), MLREG_AUTH_NAME_MAX))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'tokens[%zu].name' must be 1 to %d printable ASCII "
                               "characters",
                               idx, MLREG_AUTH_NAME_MAX);
    if ((id->name = strdup(json_string_value(name))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (!json_is_string(hash) || !hex_lower64(json_string_value(hash), json_string_length(hash)))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'tokens[%zu].sha256' (token '%s') must be 64 lowercase "
                               "hex digits: the SHA-256 of the token",
                               idx, id->name);
    if (sodium_hex2bin(id->hash, sizeof(id->hash), json_string_value(hash), 64, NULL, NULL, NULL) !=
        0)
        return mlreg_error_set(MLREG_EINVALID, "config key 'tokens[%zu].sha256' is not hex", idx);
    if (!json_is_array(roles) || json_array_size(roles) == 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'tokens[%zu].roles' (token '%s') must be a non-empty "
                               "array of roles",
                               idx, id->name);
    if ((id->roles = calloc(json_array_size(roles), sizeof(*id->roles))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    json_array_foreach(roles, i, v)
    {
        snprintf(label, sizeof(label), "tokens[%zu].roles[%zu]", idx, i);
        id->nroles = i + 1;
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be a string", label);
        if ((error = parse_role(&id->roles[i], json_string_value(v), label, stages, n_stages)) < 0)
            return error;
    }
    return 0;
}

int mlreg_auth_new(mlreg_auth **out, const json_t *tokens, const char *const *stages,
                   size_t n_stages)
{
    int error = 0;
    mlreg_auth *auth = NULL;
    size_t n, i, j;

    if ((auth = calloc(1, sizeof(*auth))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    auth->local.name = (char *)MLREG_AUTH_LOCAL; /* never freed: local is not in ids */
    auth->local.local = 1;
    if (tokens != NULL) {
        if (!json_is_array(tokens)) {
            error = mlreg_error_set(MLREG_EINVALID, "config key 'tokens' must be an array");
            goto done;
        }
        n = json_array_size(tokens);
        if (n > 0 && (auth->ids = calloc(n, sizeof(*auth->ids))) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        for (i = 0; i < n; i++) {
            auth->nids = i + 1;
            if ((error = parse_token(&auth->ids[i], json_array_get(tokens, i), i, stages,
                                     n_stages)) < 0)
                goto done;
            for (j = 0; j < i; j++) {
                if (!strcmp(auth->ids[j].name, auth->ids[i].name)) {
                    error = mlreg_error_set(MLREG_EINVALID,
                                            "config key 'tokens[%zu].name': duplicate token name "
                                            "'%s'",
                                            i, auth->ids[i].name);
                    goto done;
                }
                if (!sodium_memcmp(auth->ids[j].hash, auth->ids[i].hash, MLREG_DIGEST_RAWLEN)) {
                    error = mlreg_error_set(MLREG_EINVALID,
                                            "config key 'tokens[%zu].sha256': token '%s' has the "
                                            "same hash as token '%s'",
                                            i, auth->ids[i].name, auth->ids[j].name);
                    goto done;
                }
            }
        }
    }
    *out = auth;
    auth = NULL;

done:
    mlreg_auth_free(auth);
    return error;
}

size_t mlreg_auth_token_count(const mlreg_auth *auth)
{
    return auth->nids;
}

const char *mlreg_identity_name(const mlreg_identity *id)
{
    return id->name;
}

int mlreg_auth_token_hash(char out[65], const char *token)
{
    mlreg_digest d;
    int error = mlreg_digest_buffer(&d, token, strlen(token));

    if (error < 0) return error;
    mlreg_digest_hex(out, &d);
    return 0;
}

/* 1 when @p s starts with the scheme word @p scheme (case-insensitive)
 * followed by at least one space; *rest points after the spaces. */
static int scheme_is(const char **rest, const char *s, const char *scheme)
{
    size_t n = strlen(scheme);

    if (strncasecmp(s, scheme, n) || s[n] != ' ') return 0;
    s += n;
    while (*s == ' ')
        s++;
    *rest = s;
    return 1;
}

/* Frees the strings and roles of @p id, not @p id itself. */
static void identity_clear(mlreg_identity *id)
{
    for (size_t j = 0; j < id->nroles; j++) {
        free(id->roles[j].stage);
        free(id->roles[j].prefix);
    }
    free(id->roles);
    free(id->name);
    id->roles = NULL;
    id->name = NULL;
    id->nroles = 0;
}

int mlreg_identity_new(mlreg_identity **out, const char *name, const json_t *roles)
{
    int error = 0;
    mlreg_identity *id = NULL;
    json_t *v;
    size_t i;

    if ((id = calloc(1, sizeof(*id))) == NULL || (id->name = strdup(name)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if (!json_is_array(roles) || json_array_size(roles) == 0) {
        error = mlreg_error_set(MLREG_EINVALID, "token '%s' has no roles", name);
        goto done;
    }
    if ((id->roles = calloc(json_array_size(roles), sizeof(*id->roles))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    json_array_foreach(roles, i, v)
    {
        id->nroles = i + 1;
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            error =
                mlreg_error_set(MLREG_EINVALID, "token '%s': role %zu is not a string", name, i);
            goto done;
        }
        if ((error = parse_role(&id->roles[i], json_string_value(v), NULL, NULL, 0)) < 0) goto done;
    }
    *out = id;
    id = NULL;

done:
    mlreg_identity_free(id);
    return error;
}

void mlreg_identity_free(mlreg_identity *id)
{
    if (id == NULL) return;
    identity_clear(id);
    free(id);
}

int mlreg_auth_has_name(const mlreg_auth *auth, const char *name)
{
    for (size_t i = 0; i < auth->nids; i++)
        if (!strcmp(auth->ids[i].name, name)) return 1;
    return 0;
}

int mlreg_auth_token_name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MLREG_AUTH_TOKEN_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-'))) return 0;
    }
    return 1;
}

int mlreg_auth_authenticate(const mlreg_identity **out, const mlreg_auth *auth, const char *header)
{
    return mlreg_auth_authenticate_with(out, NULL, auth, header, NULL, NULL);
}

/* The prefix the Hugging Face Hub clients want on a token, and the one of
 * the tokens made at runtime (tokens.h). */
#define HUB_PREFIX     "hf_"
#define RUNTIME_PREFIX "mlreg_"

/* mlreg_auth_authenticate_with(); with @p hub, a presented token
 * "hf_mlreg_..." that no config token matches is looked up at runtime
 * without its "hf_" (mlreg_auth_authenticate_hub()). */
static int authenticate(const mlreg_identity **out, mlreg_identity **owned_out,
                        const mlreg_auth *auth, const char *header, mlreg_auth_lookup_fn lookup,
                        void *ctx, int hub)
{
    int error = 0;
    const char *rest, *token = NULL;
    unsigned char *buf = NULL;
    size_t blen = 0, tlen = 0, i;
    mlreg_digest d;
    const mlreg_identity *match = NULL;
    mlreg_identity *found = NULL;

    memset(&d, 0, sizeof(d));
    if (owned_out != NULL) *owned_out = NULL;
    if (auth->nids == 0) {
        *out = &auth->local;
        return 0;
    }
    if (header == NULL || header[0] == '\0')
        return mlreg_error_set(MLREG_EAUTH, "authentication required: send a bearer token");
    if (strlen(header) > AUTH_HEADER_MAX)
        return mlreg_error_set(MLREG_EAUTH, "authorization header too long");
    if (scheme_is(&rest, header, "Bearer")) {
        token = rest;
        tlen = strlen(rest);
        while (tlen > 0 && token[tlen - 1] == ' ')
            tlen--;
    } else if (scheme_is(&rest, header, "Basic")) {
        /* base64(user:token); the decoded bytes are secret: sodium memory */
        size_t cap = strlen(rest) + 1;
        const unsigned char *colon;
        if ((buf = sodium_malloc(cap)) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        if (sodium_base642bin(buf, cap, rest, strlen(rest), " ", &blen, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            (colon = memchr(buf, ':', blen)) == NULL) {
            error = mlreg_error_set(MLREG_EAUTH, "malformed basic credentials");
            goto done;
        }
        token = (const char *)colon + 1;
        tlen = blen - (size_t)(colon + 1 - buf);
    } else {
        return mlreg_error_set(MLREG_EAUTH, "unsupported authorization scheme (use Bearer)");
    }
    if (tlen == 0) {
        error = mlreg_error_set(MLREG_EAUTH, "empty token");
        goto done;
    }
    if ((error = mlreg_digest_buffer(&d, token, tlen)) < 0) goto done;
    for (i = 0; i < auth->nids; i++) {
        int eq = sodium_memcmp(d.raw, auth->ids[i].hash, MLREG_DIGEST_RAWLEN) == 0;
        if (eq) match = &auth->ids[i];
    }
    if (match == NULL && lookup != NULL && owned_out != NULL) {
        /* a token made at runtime: found by its hash, so the lookup
         * compares no secret byte by byte. The Hub clients' form of one
         * (HUB_PREFIX before it) is hashed without the prefix: a config
         * token, any string, was matched as presented above. */
        if (hub && tlen > sizeof(HUB_PREFIX RUNTIME_PREFIX) - 1 &&
            !memcmp(token, HUB_PREFIX RUNTIME_PREFIX, sizeof(HUB_PREFIX RUNTIME_PREFIX) - 1) &&
            (error = mlreg_digest_buffer(&d, token + sizeof(HUB_PREFIX) - 1,
                                         tlen - (sizeof(HUB_PREFIX) - 1))) < 0)
            goto done;
        error = lookup(&found, d.raw, ctx);
        if (error == MLREG_ENOTFOUND) {
            error = 0;
        } else if (error < 0) {
            goto done;
        } else if (mlreg_auth_has_name(auth, found->name)) {
            /* two identities may not act under one name */
            error = mlreg_error_set(MLREG_EAUTH,
                                    "token '%s' has the name of a token in the config, which "
                                    "takes precedence: revoke it and create it under another name",
                                    found->name);
            goto done;
        } else {
            match = found;
        }
    }
    if (match == NULL) {
        error = mlreg_error_set(MLREG_EAUTH, "invalid token");
        goto done;
    }
    *out = match;
    if (match == found) {
        *owned_out = found;
        found = NULL;
    }

done:
    sodium_memzero(&d, sizeof(d));
    mlreg_identity_free(found);
    sodium_free(buf);
    return error;
}

int mlreg_auth_authenticate_with(const mlreg_identity **out, mlreg_identity **owned_out,
                                 const mlreg_auth *auth, const char *header,
                                 mlreg_auth_lookup_fn lookup, void *ctx)
{
    return authenticate(out, owned_out, auth, header, lookup, ctx, 0);
}

int mlreg_auth_authenticate_hub(const mlreg_identity **out, mlreg_identity **owned_out,
                                const mlreg_auth *auth, const char *header,
                                mlreg_auth_lookup_fn lookup, void *ctx)
{
    return authenticate(out, owned_out, auth, header, lookup, ctx, 1);
}

static int role_grants(const role *r, mlreg_role_kind kind, const char *stage, const char *model)
{
    if (r->prefix != NULL && !mlreg_name_under(model, r->prefix)) return 0;
    if (r->kind == MLREG_ROLE_ADMIN) return 1;
    if (r->kind != kind) return 0;
    if (kind_has_stage(kind)) return stage != NULL && !strcmp(stage, r->stage);
    return 1;
}

static const mlreg_identity scheduled_identity = {(char *)MLREG_AUTH_SCHEDULED, {0}, NULL, 0, 1};

const mlreg_identity *mlreg_auth_scheduled(void)
{
    return &scheduled_identity;
}

int mlreg_auth_check(const mlreg_identity *id, mlreg_role_kind kind, const char *stage,
                     const char *model)
{
    int stage_role = kind_has_stage(kind);

    if (id->local) return 0;
    for (size_t i = 0; i < id->nroles; i++)
        if (role_grants(&id->roles[i], kind, stage, model)) return 0;
    return mlreg_error_set(MLREG_EFORBIDDEN, "token '%s' lacks role %s%s%s%s%s%s", id->name,
                           kind_names[kind], stage_role ? ":" : "",
                           stage_role && stage ? stage : "", model ? " for model '" : "",
                           model ? model : "", model ? "'" : "");
}

int mlreg_auth_check_some(const mlreg_identity *id, mlreg_role_kind kind)
{
    if (id->local) return 0;
    for (size_t i = 0; i < id->nroles; i++)
        if (id->roles[i].kind == kind || id->roles[i].kind == MLREG_ROLE_ADMIN) return 0;
    return mlreg_error_set(MLREG_EFORBIDDEN, "token '%s' lacks role %s for any model", id->name,
                           kind_names[kind]);
}

const mlreg_identity *mlreg_auth_token_at(const mlreg_auth *auth, size_t i)
{
    return &auth->ids[i];
}

json_t *mlreg_identity_roles(const mlreg_identity *id)
{
    json_t *arr = json_array();
    char text[MLREG_AUTH_ROLE_MAX * 2];

    for (size_t i = 0; arr != NULL && i < id->nroles; i++) {
        const role *r = &id->roles[i];
        snprintf(text, sizeof(text), "%s%s%s%s%s", kind_names[r->kind], r->stage ? ":" : "",
                 r->stage ? r->stage : "", r->prefix ? "@" : "", r->prefix ? r->prefix : "");
        if (json_array_append_new(arr, json_string(text)) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}
