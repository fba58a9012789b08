/* server_api.c: the JSON read API under /api/v1/ (models, releases, health).
 * The JSON shapes are registry.h's; this file only maps them onto HTTP. */
#include <string.h>

#include "mlreg/common.h"
#include "server_internal.h"

static enum MHD_Result reply_json(request *rq, json_t *j)
{
    uint64_t len = 0;
    struct MHD_Response *resp = resp_json(j, NULL, &len);

    json_decref(j);
    return req_queue(rq, 200, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
}

enum MHD_Result api_finish(request *rq)
{
    mlreg_registry *reg = rq->srv->reg;
    json_t *j = NULL;
    int error = 0;
    err_ctx ctx = ERR_CTX_ANY;

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
    default: req_fail_raw(rq, 404, "NAME_UNKNOWN", "no route"); return req_queue_error(rq);
    }
    if (error < 0) {
        req_fail(rq, error, ctx);
        return req_queue_error(rq);
    }
    return reply_json(rq, j);
}
