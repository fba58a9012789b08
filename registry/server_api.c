/* server_api.c: the JSON API under /api/v1/ (models, releases, health,
 * release signatures, the trusted keyring). The JSON shapes are registry.h's,
 * signatures.h's and keyring.h's (docs/signatures-api.md); this file only
 * maps them onto HTTP.
 *
 * POST bodies are JSON objects of at most API_JSON_MAX bytes: a larger
 * Content-Length is refused with 413 before the body is read, a chunked body
 * is never buffered past the limit (server.c, BODY_JSON).
 */
#include <inttypes.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/keyring.h"
#include "mlreg/signatures.h"
#include "server_internal.h"

static enum MHD_Result reply_json_status(request *rq, unsigned int status, json_t *j)
{
    uint64_t len = 0;
    struct MHD_Response *resp = resp_json(j, NULL, &len);

    json_decref(j);
    return req_queue(rq, status, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
}

static enum MHD_Result reply_json(request *rq, json_t *j)
{
    return reply_json_status(rq, 200, j);
}

void api_begin(request *rq)
{
    if (strcmp(rq->method, "POST")) return;
    if (rq->has_length && rq->content_length > API_JSON_MAX) {
        mlreg_error_set(MLREG_ETOOBIG, "request body of %" PRIu64 " bytes is over the limit of %u",
                        rq->content_length, API_JSON_MAX);
        req_fail(rq, MLREG_ETOOBIG, ERR_CTX_ANY);
        return;
    }
    rq->body = BODY_JSON;
}

/* Parses the POST body as a JSON object into *out. On failure records a 400
 * whose message says what is wrong and returns -1. */
static int body_object(json_t **out, request *rq)
{
    json_error_t jerr;
    json_t *j;

    if (rq->mbuf == NULL || rq->mlen == 0) {
        req_fail_raw(rq, 400, "UNSUPPORTED", "request body required: a JSON object");
        return -1;
    }
    j = json_loadb(rq->mbuf, rq->mlen, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        req_fail_raw(rq, 400, "UNSUPPORTED", "malformed JSON body at line %d, column %d: %s",
                     jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        req_fail_raw(rq, 400, "UNSUPPORTED", "request body must be a JSON object");
        return -1;
    }
    *out = j;
    return 0;
}

/* A string field of @p obj: required ones must be present. NUL bytes are
 * refused (the value would be cut short). Sets *len_out when non-NULL.
 * 0 (value or NULL for an absent/null optional field), or -1 with a 400. */
static int body_string(const char **out, size_t *len_out, request *rq, json_t *obj,
                       const char *field, int required)
{
    json_t *v = json_object_get(obj, field);

    *out = NULL;
    if (v == NULL || (!required && json_is_null(v))) {
        if (!required) return 0;
        req_fail_raw(rq, 400, "UNSUPPORTED", "request body lacks \"%s\"", field);
        return -1;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        req_fail_raw(rq, 400, "UNSUPPORTED", "\"%s\" must be a string without NUL bytes", field);
        return -1;
    }
    *out = json_string_value(v);
    if (len_out) *len_out = json_string_length(v);
    return 0;
}

static enum MHD_Result signatures_post(request *rq)
{
    json_t *body = NULL, *res = NULL;
    const char *sig, *pk;
    size_t sig_len = 0, pk_len = 0;
    int created = 0, error;

    if (body_object(&body, rq) < 0 || body_string(&sig, &sig_len, rq, body, "signature", 1) < 0 ||
        body_string(&pk, &pk_len, rq, body, "public_key", 1) < 0) {
        json_decref(body);
        return req_queue_error(rq);
    }
    error = mlreg_signature_attach(&res, &created, rq->srv->reg, rq->name, rq->arg, sig, sig_len,
                                   pk, pk_len, MLREG_KEYRING_ACTOR_LOCAL);
    json_decref(body);
    if (error < 0) {
        req_fail(rq, error, ERR_CTX_SIGNATURE);
        return req_queue_error(rq);
    }
    return reply_json_status(rq, created ? 201 : 200, res);
}

static enum MHD_Result keys_post(request *rq)
{
    json_t *body = NULL, *res = NULL;
    const char *name, *role, *pk;
    size_t pk_len = 0;
    int created = 0, error;

    if (body_object(&body, rq) < 0 || body_string(&name, NULL, rq, body, "name", 1) < 0 ||
        body_string(&role, NULL, rq, body, "role", 1) < 0 ||
        body_string(&pk, &pk_len, rq, body, "public_key", 1) < 0) {
        json_decref(body);
        return req_queue_error(rq);
    }
    error = mlreg_keyring_trust(&res, &created, mlreg_registry_keyring(rq->srv->reg), name, role,
                                pk, pk_len, MLREG_KEYRING_ACTOR_LOCAL);
    json_decref(body);
    if (error < 0) {
        req_fail(rq, error, ERR_CTX_KEY);
        return req_queue_error(rq);
    }
    return reply_json_status(rq, created ? 201 : 200, res);
}

static enum MHD_Result key_revoke(request *rq)
{
    json_t *body = NULL, *res = NULL;
    const char *kind, *reason;
    int error;

    if (body_object(&body, rq) < 0 || body_string(&kind, NULL, rq, body, "kind", 1) < 0 ||
        body_string(&reason, NULL, rq, body, "reason", 0) < 0) {
        json_decref(body);
        return req_queue_error(rq);
    }
    error = mlreg_keyring_revoke(&res, mlreg_registry_keyring(rq->srv->reg), rq->arg, kind, reason,
                                 MLREG_KEYRING_ACTOR_LOCAL);
    json_decref(body);
    if (error < 0) {
        req_fail(rq, error, ERR_CTX_KEY);
        return req_queue_error(rq);
    }
    return reply_json(rq, res);
}

enum MHD_Result api_finish(request *rq)
{
    mlreg_registry *reg = rq->srv->reg;
    json_t *j = NULL;
    int error = 0;
    err_ctx ctx = ERR_CTX_ANY;
    int post = !strcmp(rq->method, "POST");

    switch (rq->route) {
    case ROUTE_API_HEALTH:
        if (!(j = json_pack("{s:s}", "status", "ok"))) return MHD_NO;
        return reply_json(rq, j);
    case ROUTE_API_MODELS: error = mlreg_registry_models_list(&j, reg); break;
    case ROUTE_API_MODEL:
        ctx = ERR_CTX_MODEL;
        error = mlreg_registry_model_get(&j, reg, rq->name);
        break;
    case ROUTE_API_RELEASE:
        ctx = ERR_CTX_RELEASE;
        error = mlreg_registry_release_get(&j, reg, rq->name, rq->arg);
        break;
    case ROUTE_API_SIGNATURES:
        if (post) return signatures_post(rq);
        ctx = ERR_CTX_SIGNATURE;
        error = mlreg_signatures_list(&j, reg, rq->name, rq->arg);
        break;
    case ROUTE_API_KEYS:
        if (post) return keys_post(rq);
        ctx = ERR_CTX_KEY;
        error = mlreg_keyring_list(&j, mlreg_registry_keyring(reg));
        break;
    case ROUTE_API_KEY_EVENTS:
        ctx = ERR_CTX_KEY;
        error = mlreg_keyring_events(&j, mlreg_registry_keyring(reg));
        break;
    case ROUTE_API_KEY_REVOKE: return key_revoke(rq);
    default: req_fail_raw(rq, 404, "NAME_UNKNOWN", "no route"); return req_queue_error(rq);
    }
    if (error < 0) {
        req_fail(rq, error, ctx);
        return req_queue_error(rq);
    }
    return reply_json(rq, j);
}
