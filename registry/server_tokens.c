/* server_tokens.c: /api/v1/tokens, the API tokens made at runtime
 * (include/mlreg/tokens.h, docs/promotions-api.md "Tokens made at
 * runtime"). Every row needs the admin role without a model prefix.
 *
 * The answer of a create is the one place a token leaves the server: its
 * body is built in sodium_malloc memory, wiped when libmicrohttpd is done
 * with it, and marked Cache-Control: no-store; the copy jansson held is
 * wiped before it is freed. The routes are the rows at the end.
 */
#include <sodium.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/tokens.h"
#include "server_routes.h"

/* Wipes and frees a reply body made by secret_reply(). */
static void secret_body_free(void *p)
{
    char *body = p;

    sodium_memzero(body, strlen(body));
    sodium_free(body);
}

/* Queues @p j (consumed; its "token" member is wiped) as 201 JSON whose
 * bytes live in wiped-on-free memory. */
static enum MHD_Result secret_reply(request *rq, json_t *j)
{
    size_t len = json_dumpb(j, NULL, 0, JSON_COMPACT);
    char *body = len > 0 ? sodium_malloc(len + 1) : NULL;
    json_t *tok = json_object_get(j, "token");
    struct MHD_Response *resp = NULL;

    if (body != NULL && json_dumpb(j, body, len, JSON_COMPACT) == len)
        body[len] = '\0';
    else if (body != NULL) {
        sodium_free(body);
        body = NULL;
    }
    if (json_is_string(tok))
        sodium_memzero((char *)json_string_value(tok), json_string_length(tok));
    json_decref(j);
    if (body == NULL) return mlreg_server__reply_error(rq, MLREG_ENOMEM, ERR_CTX_ANY);
    resp = MHD_create_response_from_buffer_with_free_callback(len, body, secret_body_free);
    if (resp == NULL) {
        secret_body_free(body);
        return MHD_NO;
    }
    if (mlreg_server__resp_header(resp, "Content-Type", "application/json") < 0 ||
        mlreg_server__resp_header(resp, "Cache-Control", "no-store") < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return mlreg_server__req_queue(rq, 201, resp, len);
}

/* POST /api/v1/tokens {"name","roles",["expires_in" | "expires_at"]}. */
static enum MHD_Result tokens_post(request *rq)
{
    json_t *body = NULL, *res = NULL, *v;
    json_error_t jerr;
    const char *key;
    char *secret = NULL;
    mlreg_token_spec spec;
    int error;

    memset(&spec, 0, sizeof(spec));
    if (rq->mbuf == NULL || rq->mlen == 0) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "request body required: a JSON object");
        return mlreg_server__req_queue_error(rq);
    }
    if ((body = json_loadb(rq->mbuf, rq->mlen, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                   "malformed JSON body at line %d, column %d: %s", jerr.line,
                                   jerr.column, jerr.text);
        return mlreg_server__req_queue_error(rq);
    }
    if (!json_is_object(body)) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "request body must be a JSON object");
        goto fail;
    }
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "roles") && strcmp(key, "expires_in") &&
            strcmp(key, "expires_at")) {
            mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                       "unknown field \"%.64s\" (name, roles, expires_in, "
                                       "expires_at)",
                                       key);
            goto fail;
        }
    }
    v = json_object_get(body, "name");
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "\"name\" must be a string");
        goto fail;
    }
    spec.name = json_string_value(v);
    spec.roles = json_object_get(body, "roles");
    if ((v = json_object_get(body, "expires_in")) != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                       "\"expires_in\" must be a whole number of seconds, 1 to "
                                       "%lld",
                                       (long long)MLREG_TOKENS_EXPIRES_MAX);
            goto fail;
        }
        spec.expires_in = (int64_t)json_integer_value(v);
    }
    if ((v = json_object_get(body, "expires_at")) != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                       "\"expires_at\" must be an RFC 3339 time");
            goto fail;
        }
        spec.expires_at = json_string_value(v);
    }
    spec.actor = mlreg_server__req_actor(rq);
    spec.auth = rq->conf->auth;
    spec.stages = mlreg_policy_stages(rq->conf->policy);
    spec.n_stages = mlreg_policy_stage_count(rq->conf->policy);
    error = mlreg_tokens_create(&res, &secret, mlreg_registry_tokens(rq->srv->reg), &spec);
    json_decref(body);
    if (error < 0) return mlreg_server__reply_error(rq, error, ERR_CTX_ANY);
    error = json_object_set_new(res, "token", json_string(secret));
    mlreg_tokens_secret_free(secret);
    if (error < 0) {
        json_decref(res);
        return mlreg_server__reply_error(rq, MLREG_ENOMEM, ERR_CTX_ANY);
    }
    return secret_reply(rq, res);

fail:
    json_decref(body);
    return mlreg_server__req_queue_error(rq);
}

static enum MHD_Result tokens_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_tokens_list(&j, mlreg_registry_tokens(rq->srv->reg), rq->conf->auth);

    return mlreg_server__reply_result(rq, error, j);
}

/* DELETE /api/v1/tokens/{name}: 200 with the revoked token's record. */
static enum MHD_Result token_delete(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_tokens_revoke(&j, mlreg_registry_tokens(rq->srv->reg), rq->conf->auth,
                                    rq->arg, mlreg_server__req_actor(rq));

    return mlreg_server__reply_result(rq, error, j);
}

static const route_row token_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_GET_HEAD, "/api/v1/tokens", ROUTE_ACCESS_ADMIN, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL, NULL,
     tokens_get},
    {ROUTE_POST, "/api/v1/tokens", ROUTE_ACCESS_ADMIN, ROUTE_BODY_JSON, ERR_CTX_ANY, NULL, NULL,
     tokens_post},
    {ROUTE_DELETE, "/api/v1/tokens/{id}", ROUTE_ACCESS_ADMIN, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL,
     NULL, token_delete},
};

const route_table mlreg_server__token_routes = {token_rows,
                                                sizeof(token_rows) / sizeof(token_rows[0])};
