/* server_audit.c: the audit log's read API under /api/v1/ (docs/audit-api.md):
 * entry pages, the log key, signed checkpoints, inclusion and consistency
 * proofs, and a release's promotion attestations. The JSON shapes and the
 * signed text are audit.h's and promotions.h's; this file only maps them onto
 * HTTP. Every route here is GET/HEAD and needs the read role; the log-wide
 * routes are not about one model (ROUTE_ACCESS_READ_ALL), so a read role
 * limited to a model prefix does not grant them. Query numbers are parsed
 * strictly by mlreg_server__req_query_u64() (server_http.c). The routes are
 * the rows of audit_rows at the end of the file.
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
#include "server_routes.h"

/* Most entries one page holds; mlreg_audit_list() clamps to the same. */
#define AUDIT_PAGE_MAX 1000u

/* A required query number: like mlreg_server__req_query_u64(), MLREG_EINVALID when absent. */
static int query_u64_required(uint64_t *out, request *rq, const char *name)
{
    int present = 0, error;

    if ((error = mlreg_server__req_query_u64(out, &present, rq, name)) < 0) return error;
    if (!present) return mlreg_error_set(MLREG_EINVALID, "?%s= is required", name);
    return 0;
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
    if (mlreg_server__resp_header(resp, "Content-Type", content_type) < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return mlreg_server__req_queue(rq, 200, resp, len);
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

    if ((error = mlreg_server__req_query_u64(&since, NULL, rq, "since")) < 0 ||
        (error = mlreg_server__req_query_u64(&limit, NULL, rq, "limit")) < 0)
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
        (error = mlreg_server__req_query_u64(&size, &have_size, rq, "size")) < 0)
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
        (error = mlreg_server__req_query_u64(&to, &have_to, rq, "to")) < 0)
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

static enum MHD_Result audit_page_get(request *rq)
{
    json_t *j = NULL;
    int error = audit_page(&j, rq);

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result audit_inclusion_get(request *rq)
{
    json_t *j = NULL;
    int error = audit_inclusion(&j, rq);

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result audit_consistency_get(request *rq)
{
    json_t *j = NULL;
    int error = audit_consistency(&j, rq);

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result attestations_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_attestations_list(&j, rq->srv->reg, rq->name, rq->arg);

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result audit_key_get(request *rq)
{
    const mlreg_audit_key *key = NULL;
    char *text = NULL;
    int error;

    if ((error = log_key(&key, rq)) < 0 || (error = mlreg_audit_key_public_text(&text, key)) < 0)
        return mlreg_server__reply_error(rq, error, rq->ctx);
    return reply_text(rq, text, "text/plain");
}

static enum MHD_Result audit_checkpoint_get(request *rq)
{
    const mlreg_audit_key *key = NULL;
    char *text = NULL;
    int error;

    if ((error = log_key(&key, rq)) < 0 ||
        (error = mlreg_audit_checkpoint(&text, NULL, mlreg_registry_meta(rq->srv->reg), key)) < 0)
        return mlreg_server__reply_error(rq, error, rq->ctx);
    return reply_text(rq, text, "text/plain; charset=utf-8");
}

/* ---- routes --------------------------------------------------------------- */

static const route_row audit_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_GET_HEAD, "/api/v1/audit", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL,
     NULL, audit_page_get},
    {ROUTE_GET_HEAD, "/api/v1/audit/key", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL,
     NULL, audit_key_get},
    {ROUTE_GET_HEAD, "/api/v1/audit/checkpoint", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE,
     ERR_CTX_ANY, NULL, NULL, audit_checkpoint_get},
    {ROUTE_GET_HEAD, "/api/v1/audit/proof/inclusion", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE,
     ERR_CTX_ANY, NULL, NULL, audit_inclusion_get},
    {ROUTE_GET_HEAD, "/api/v1/audit/proof/consistency", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE,
     ERR_CTX_ANY, NULL, NULL, audit_consistency_get},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/versions/{version*}/attestations", ROUTE_ACCESS_READ,
     ROUTE_BODY_NONE, ERR_CTX_RELEASE, NULL, NULL, attestations_get},
};

const route_table mlreg_server__audit_routes = {audit_rows,
                                                sizeof(audit_rows) / sizeof(audit_rows[0])};
