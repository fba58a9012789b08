/* server_audit.c: the audit log's read API under /api/v1/ (docs/audit-api.md):
 * entry pages, the log key, signed checkpoints, inclusion and consistency
 * proofs, and a release's promotion attestations. The JSON shapes and the
 * signed text are audit.h's and promotions.h's; this file only maps them onto
 * HTTP. Every route here is GET/HEAD and needs the read role (authorize() in
 * server.c); the log-wide routes are not about one model, so a read role
 * limited to a model prefix does not grant them. Query numbers are parsed
 * strictly by req_query_u64() (server.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/merkle.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"
#include "server_internal.h"

/* Most entries one page holds; mlreg_audit_list() clamps to the same. */
#define AUDIT_PAGE_MAX 1000u

/* A required query number: like req_query_u64(), MLREG_EINVALID when absent. */
static int query_u64_required(uint64_t *out, request *rq, const char *name)
{
    int present = 0, error;

    if ((error = req_query_u64(out, &present, rq, name)) < 0) return error;
    if (!present) return mlreg_error_set(MLREG_EINVALID, "?%s= is required", name);
    return 0;
}

/* Queues @p j (consumed) as 200 application/json. */
static enum MHD_Result reply_json(request *rq, json_t *j)
{
    uint64_t len = 0;
    struct MHD_Response *resp = resp_json(j, NULL, &len);

    json_decref(j);
    return req_queue(rq, 200, resp, len);
}

/* Queues @p text (malloc'd, consumed: libmicrohttpd frees it) as 200 with
 * @p content_type. */
static enum MHD_Result reply_text(request *rq, char *text, const char *content_type)
{
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);

    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    if (resp_header(resp, "Content-Type", content_type) < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return req_queue(rq, 200, resp, len);
}

/* The registry's log key, or MLREG_EIO when the registry has none (it is
 * opened with the registry, so this is an internal error). */
static int log_key(const mlreg_audit_key **out, request *rq)
{
    const mlreg_audit_key *key = mlreg_registry_audit_key(rq->srv->reg);

    if (key == NULL) return mlreg_error_set(MLREG_EIO, "the audit log key is not loaded");
    *out = key;
    return 0;
}

/* GET audit?since=&limit= */
static int audit_page(json_t **out, request *rq)
{
    uint64_t since = 0, limit = 0;
    int error;

    if ((error = req_query_u64(&since, NULL, rq, "since")) < 0 ||
        (error = req_query_u64(&limit, NULL, rq, "limit")) < 0)
        return error;
    if (limit > AUDIT_PAGE_MAX) limit = AUDIT_PAGE_MAX;
    return mlreg_audit_list(out, mlreg_registry_meta(rq->srv->reg), since, (size_t)limit);
}

/* GET audit/proof/inclusion?seq=&size= (size absent: the current size).
 * The library reads size 0 as "the current size"; a client that writes
 * ?size=0 asks about the empty tree, which holds no entry. */
static int audit_inclusion(json_t **out, request *rq)
{
    uint64_t seq = 0, size = 0;
    int error, have_size = 0;

    if ((error = query_u64_required(&seq, rq, "seq")) < 0 ||
        (error = req_query_u64(&size, &have_size, rq, "size")) < 0)
        return error;
    if (have_size && size == 0)
        return mlreg_error_set(MLREG_EINVALID, "audit entry %llu is not in a log of 0 entries",
                               (unsigned long long)seq);
    return mlreg_audit_inclusion(out, mlreg_registry_meta(rq->srv->reg), seq, size);
}

/* The answer for ?from=0&to=0: both trees empty, nothing to prove. */
static int empty_consistency(json_t **out)
{
    mlreg_merkle_hash empty;
    char b64[sodium_base64_ENCODED_LEN(MLREG_MERKLE_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    int error;

    if ((error = mlreg_merkle_empty_root(&empty)) < 0) return error;
    sodium_bin2base64(b64, sizeof(b64), empty.raw, MLREG_MERKLE_HASH_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    if ((*out = json_pack("{sI sI ss ss s[]}", "from", (json_int_t)0, "to", (json_int_t)0,
                          "from_root", b64, "to_root", b64, "proof")) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory building a consistency proof");
    return 0;
}

/* GET audit/proof/consistency?from=&to= (to absent: the current size). As
 * for inclusion, an explicit ?to=0 is the empty tree, not the current one. */
static int audit_consistency(json_t **out, request *rq)
{
    uint64_t from = 0, to = 0;
    int error, have_to = 0;

    if ((error = query_u64_required(&from, rq, "from")) < 0 ||
        (error = req_query_u64(&to, &have_to, rq, "to")) < 0)
        return error;
    if (have_to && to == 0) {
        if (from > 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "audit consistency: from %llu is larger than to 0",
                                   (unsigned long long)from);
        return empty_consistency(out);
    }
    return mlreg_audit_consistency(out, mlreg_registry_meta(rq->srv->reg), from, to);
}

int route_is_audit(route_id r)
{
    switch (r) {
    case ROUTE_API_AUDIT:
    case ROUTE_API_AUDIT_KEY:
    case ROUTE_API_AUDIT_CHECKPOINT:
    case ROUTE_API_AUDIT_INCLUSION:
    case ROUTE_API_AUDIT_CONSISTENCY:
    case ROUTE_API_ATTESTATIONS: return 1;
    default: return 0;
    }
}

enum MHD_Result audit_finish(request *rq)
{
    mlreg_registry *reg = rq->srv->reg;
    const mlreg_audit_key *key = NULL;
    json_t *j = NULL;
    char *text = NULL;
    err_ctx ctx = ERR_CTX_ANY;
    int error = 0;

    switch (rq->route) {
    case ROUTE_API_AUDIT: error = audit_page(&j, rq); break;
    case ROUTE_API_AUDIT_INCLUSION: error = audit_inclusion(&j, rq); break;
    case ROUTE_API_AUDIT_CONSISTENCY: error = audit_consistency(&j, rq); break;
    case ROUTE_API_ATTESTATIONS:
        ctx = ERR_CTX_RELEASE;
        error = mlreg_attestations_list(&j, reg, rq->name, rq->arg);
        break;
    case ROUTE_API_AUDIT_KEY:
        if ((error = log_key(&key, rq)) < 0 ||
            (error = mlreg_audit_key_public_text(&text, key)) < 0)
            break;
        return reply_text(rq, text, "text/plain");
    case ROUTE_API_AUDIT_CHECKPOINT:
        if ((error = log_key(&key, rq)) < 0 ||
            (error = mlreg_audit_checkpoint(&text, NULL, mlreg_registry_meta(reg), key)) < 0)
            break;
        return reply_text(rq, text, "text/plain; charset=utf-8");
    default: req_fail_raw(rq, 404, "NAME_UNKNOWN", "no route"); return req_queue_error(rq);
    }
    if (error < 0) {
        json_decref(j);
        free(text);
        req_fail(rq, error, ctx);
        return req_queue_error(rq);
    }
    return reply_json(rq, j);
}
