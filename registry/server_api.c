/* server_api.c: the JSON API under /api/v1/ (models, releases, health,
 * release signatures, the trusted keyring, stages, promotions, approvals,
 * rollback, image bindings, withdrawals: docs/promotions-api.md). The JSON shapes are registry.h's,
 * signatures.h's and keyring.h's (docs/signatures-api.md); this file only
 * maps them onto HTTP.
 *
 * POST bodies are JSON objects of at most API_JSON_MAX bytes: a larger
 * Content-Length is refused with 413 before the body is read, a chunked body
 * is never buffered past the limit (ROUTE_BODY_JSON rows, server.c). The
 * routes are the rows of api_rows at the end of the file.
 */
#include <inttypes.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/evaluations.h"
#include "mlreg/gc.h"
#include "mlreg/keyring.h"
#include "mlreg/manifest.h"
#include "mlreg/names.h"
#include "mlreg/promotions.h"
#include "mlreg/scrub.h"
#include "mlreg/signatures.h"
#include "mlreg/text.h"
#include "mlreg/time.h"
#include "mlreg/version.h"
#include "server_routes.h"

static enum MHD_Result reply_json(request *rq, json_t *j)
{
    return mlreg_server__reply_json(rq, 200, j);
}

/* Parses the POST body as a JSON object into *out. On failure records a 400
 * whose message says what is wrong and returns -1. */
static int body_object(json_t **out, request *rq)
{
    json_error_t jerr;
    json_t *j;

    if (rq->mbuf == NULL || rq->mlen == 0) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "request body required: a JSON object");
        return -1;
    }
    j = json_loadb(rq->mbuf, rq->mlen, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                   "malformed JSON body at line %d, column %d: %s", jerr.line,
                                   jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "request body must be a JSON object");
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
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "request body lacks \"%s\"", field);
        return -1;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                   "\"%s\" must be a string without NUL bytes", field);
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
        return mlreg_server__req_queue_error(rq);
    }
    error = mlreg_signature_attach(&res, &created, rq->srv->reg, rq->name, rq->arg, sig, sig_len,
                                   pk, pk_len, mlreg_server__req_actor(rq));
    json_decref(body);
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_SIGNATURE);
        return mlreg_server__req_queue_error(rq);
    }
    return mlreg_server__reply_json(rq, created ? 201 : 200, res);
}

/* The body is the DSSE envelope itself, buffered up to the manifest limit
 * (evaluations.c refuses more than MLREG_EVALUATION_MAX_BYTES). */
static enum MHD_Result evaluations_post(request *rq)
{
    json_t *res = NULL;
    int created = 0, error;

    if (rq->mbuf == NULL || rq->mlen == 0) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                   "request body required: a DSSE envelope (JSON)");
        return mlreg_server__req_queue_error(rq);
    }
    error = mlreg_evaluation_attest(&res, &created, rq->srv->reg, rq->name, rq->arg, rq->mbuf,
                                    rq->mlen, mlreg_server__req_actor(rq));
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_SIGNATURE);
        return mlreg_server__req_queue_error(rq);
    }
    return mlreg_server__reply_json(rq, created ? 201 : 200, res);
}

static enum MHD_Result evaluations_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_evaluations_list(&j, rq->srv->reg, rq->name, rq->arg);

    return mlreg_server__reply_result(rq, error, j);
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
        return mlreg_server__req_queue_error(rq);
    }
    error = mlreg_keyring_trust(&res, &created, mlreg_registry_keyring(rq->srv->reg), name, role,
                                pk, pk_len, mlreg_server__req_actor(rq));
    json_decref(body);
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_KEY);
        return mlreg_server__req_queue_error(rq);
    }
    return mlreg_server__reply_json(rq, created ? 201 : 200, res);
}

static enum MHD_Result key_revoke(request *rq)
{
    json_t *body = NULL, *res = NULL;
    const char *kind, *reason;
    int error;

    if (body_object(&body, rq) < 0 || body_string(&kind, NULL, rq, body, "kind", 1) < 0 ||
        body_string(&reason, NULL, rq, body, "reason", 0) < 0) {
        json_decref(body);
        return mlreg_server__req_queue_error(rq);
    }
    error = mlreg_keyring_revoke(&res, mlreg_registry_keyring(rq->srv->reg), rq->arg, kind, reason,
                                 mlreg_server__req_actor(rq));
    json_decref(body);
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_KEY);
        return mlreg_server__req_queue_error(rq);
    }
    return reply_json(rq, res);
}

/* A stage named in a body: STAGE_UNKNOWN unless the config has it, then the
 * role @p kind for it. -1 with the error recorded, or 0. */
static int body_stage(request *rq, const char *stage, mlreg_role_kind kind)
{
    int error;

    if (mlreg_policy_stage_index(rq->conf->policy, stage) < 0) {
        mlreg_server__req_fail_raw(rq, 400, "STAGE_UNKNOWN", "unknown stage '%.128s'", stage);
        return -1;
    }
    if ((error = mlreg_auth_check(rq->who, kind, stage, rq->name)) < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_ANY);
        return -1;
    }
    return 0;
}

/* An optional boolean field: 0 (value in *out, 0 when absent) or -1 with a 400. */
static int body_bool(int *out, request *rq, json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);

    *out = 0;
    if (v == NULL || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "\"%s\" must be true or false", field);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* POST models/<name>/promotions: the role promote:<to> is checked before
 * anything is evaluated, and override:<to> too for a break-glass promotion
 * ("override": true). 200 passed (or moved by the override), 409
 * GATE_FAILED with the same table (plus "errors") when a rule failed and
 * nothing overrode it, 409 GATE_HELD when rules hold and none failed. */
static enum MHD_Result promotions_post(request *rq)
{
    json_t *body = NULL, *res = NULL;
    mlreg_promote_req req;
    int error, override = 0;

    memset(&req, 0, sizeof(req));
    if (body_object(&body, rq) < 0 || body_string(&req.version, NULL, rq, body, "version", 1) < 0 ||
        body_string(&req.stage, NULL, rq, body, "to", 1) < 0 ||
        body_string(&req.reason, NULL, rq, body, "reason", 0) < 0 ||
        body_bool(&req.dry_run, rq, body, "dry_run") < 0 ||
        body_bool(&override, rq, body, "override") < 0 ||
        body_stage(rq, req.stage, MLREG_ROLE_PROMOTE) < 0 ||
        (override && body_stage(rq, req.stage, MLREG_ROLE_OVERRIDE) < 0)) {
        json_decref(body);
        return mlreg_server__req_queue_error(rq);
    }
    req.model = rq->name;
    req.actor = mlreg_server__req_actor(rq);
    error = override ? mlreg_promote_override(&res, rq->srv->reg, rq->conf->policy, &req)
                     : mlreg_promote(&res, rq->srv->reg, rq->conf->policy, &req);
    json_decref(body);
    if (error == MLREG_EGATE && res != NULL) {
        char msg[512];
        json_t *errs;
        mlreg_text_sanitize(msg, sizeof(msg), mlreg_error_last(), strlen(mlreg_error_last()));
        /* held (rules neither passed nor failed: no comparable baseline
         * numbers) is told apart from failed */
        errs = json_pack("[{s:s, s:s}]", "code",
                         json_is_true(json_object_get(res, "held")) ? "GATE_HELD" : "GATE_FAILED",
                         "message", msg);
        if (errs == NULL || json_object_set_new(res, "errors", errs) < 0) {
            json_decref(res);
            return MHD_NO;
        }
        return mlreg_server__reply_json(rq, 409, res);
    }
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_PROMOTION);
        return mlreg_server__req_queue_error(rq);
    }
    return reply_json(rq, res);
}

/* POST models/<name>/stages/<stage>/rollback {"to_version","reason"}; the
 * body may be empty. The role promote:<stage> is the row's. */
static enum MHD_Result rollback_post(request *rq)
{
    json_t *body = NULL, *res = NULL;
    const char *to = NULL, *reason = NULL;
    int error;

    if (rq->mlen == 0)
        body = json_object();
    else if (body_object(&body, rq) < 0)
        return mlreg_server__req_queue_error(rq);
    if (body == NULL || body_string(&to, NULL, rq, body, "to_version", 0) < 0 ||
        body_string(&reason, NULL, rq, body, "reason", 0) < 0) {
        json_decref(body);
        return body ? mlreg_server__req_queue_error(rq) : MHD_NO;
    }
    error = mlreg_rollback(&res, rq->srv->reg, rq->conf->policy, rq->name, rq->stage, to, reason,
                           mlreg_server__req_actor(rq));
    json_decref(body);
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_STAGE);
        return mlreg_server__req_queue_error(rq);
    }
    return reply_json(rq, res);
}

/* POST models/<name>/versions/<v>/approvals {"stage","comment"}: needs
 * approve:<stage>; with "override": true it approves a break-glass
 * promotion instead, needs override:<stage> and a "reason" (no comment). */
static enum MHD_Result approvals_post(request *rq)
{
    json_t *body = NULL, *res = NULL;
    const char *stage, *comment, *reason;
    int created = 0, override = 0, error;

    if (body_object(&body, rq) < 0 || body_string(&stage, NULL, rq, body, "stage", 1) < 0 ||
        body_string(&comment, NULL, rq, body, "comment", 0) < 0 ||
        body_string(&reason, NULL, rq, body, "reason", 0) < 0 ||
        body_bool(&override, rq, body, "override") < 0) {
        json_decref(body);
        return mlreg_server__req_queue_error(rq);
    }
    if (override ? comment != NULL : reason != NULL) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                   override ? "an override approval takes a \"reason\", not a "
                                              "\"comment\""
                                            : "\"reason\" is for an override approval "
                                              "(\"override\": true); an approval takes "
                                              "\"comment\"");
        json_decref(body);
        return mlreg_server__req_queue_error(rq);
    }
    if (body_stage(rq, stage, override ? MLREG_ROLE_OVERRIDE : MLREG_ROLE_APPROVE) < 0) {
        json_decref(body);
        return mlreg_server__req_queue_error(rq);
    }
    if (override)
        error = mlreg_approve_override(&res, &created, rq->srv->reg, rq->conf->policy, rq->name,
                                       rq->arg, stage, reason, mlreg_server__req_actor(rq));
    else
        error = mlreg_approve(&res, &created, rq->srv->reg, rq->conf->policy, rq->name, rq->arg,
                              stage, comment, mlreg_server__req_actor(rq));
    json_decref(body);
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_RELEASE);
        return mlreg_server__req_queue_error(rq);
    }
    return mlreg_server__reply_json(rq, created ? 201 : 200, res);
}

/* POST models/<name>/versions/<version>/images: the role depends on the
 * stages the release holds or has held, so mlreg_image_bind() checks it in
 * the transaction that binds (the row only refuses a token that could bind
 * no release of the model, ROUTE_ACCESS_IMAGES). */
static enum MHD_Result images_post(request *rq)
{
    json_t *body = NULL, *res = NULL;
    const char *image, *digest;
    int created = 0, error;

    if (body_object(&body, rq) < 0 || body_string(&image, NULL, rq, body, "image", 1) < 0 ||
        body_string(&digest, NULL, rq, body, "digest", 0) < 0) {
        json_decref(body);
        return mlreg_server__req_queue_error(rq);
    }
    error =
        mlreg_image_bind(&res, &created, rq->srv->reg, rq->who, rq->name, rq->arg, image, digest);
    json_decref(body);
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_RELEASE);
        return mlreg_server__req_queue_error(rq);
    }
    return mlreg_server__reply_json(rq, created ? 201 : 200, res);
}

/* The {"reason","rollback"} body of a withdrawal or its undoing: the reason
 * is required (the library checks its text and length), "rollback" only
 * for a withdrawal. -1 with a 400 recorded, or 0. */
static int withdraw_body(json_t **body_out, const char **reason, int *rollback, request *rq)
{
    json_t *body = NULL;
    const char *k;
    json_t *v;

    *body_out = NULL;
    if (body_object(&body, rq) < 0) return -1;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "reason") && (rollback == NULL || strcmp(k, "rollback"))) {
            mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                       "unknown member \"%.64s\" (the body is {\"reason\"%s})", k,
                                       rollback ? ", \"rollback\"" : "");
            json_decref(body);
            return -1;
        }
    }
    if (body_string(reason, NULL, rq, body, "reason", 1) < 0 ||
        (rollback != NULL && body_bool(rollback, rq, body, "rollback") < 0)) {
        json_decref(body);
        return -1;
    }
    *body_out = body;
    return 0;
}

/* POST models/<name>/versions/<version>/withdraw {"reason","rollback"}:
 * the roles depend on the stages holding the release, so
 * mlreg_release_withdraw() checks them in its transaction (the row only
 * refuses a token that may promote to no stage of the model). 409 DENIED
 * when stages hold it (without rollback) or it is withdrawn already. */
static enum MHD_Result withdrawal_post(request *rq, int undo)
{
    json_t *body = NULL, *res = NULL;
    const char *reason = NULL;
    int rollback = 0, error;

    if (withdraw_body(&body, &reason, undo ? NULL : &rollback, rq) < 0)
        return mlreg_server__req_queue_error(rq);
    error = undo ? mlreg_release_unwithdraw(&res, rq->srv->reg, rq->who, rq->name, rq->arg, reason)
                 : mlreg_release_withdraw(&res, rq->srv->reg, rq->conf->policy, rq->who, rq->name,
                                          rq->arg, reason, rollback);
    json_decref(body);
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_RELEASE);
        return mlreg_server__req_queue_error(rq);
    }
    return reply_json(rq, res);
}

static enum MHD_Result withdraw_post(request *rq)
{
    return withdrawal_post(rq, 0);
}

/* POST models/<name>/versions/<version>/unwithdraw {"reason"}: admin. */
static enum MHD_Result unwithdraw_post(request *rq)
{
    return withdrawal_post(rq, 1);
}

/* POST models/<name>/versions/<version>/purge {"reason"}: admin. 409 when
 * a stage holds the release, 410 when it was purged already. */
static enum MHD_Result purge_post(request *rq)
{
    json_t *body = NULL, *res = NULL;
    const char *reason = NULL;
    int error;

    if (withdraw_body(&body, &reason, NULL, rq) < 0) return mlreg_server__req_queue_error(rq);
    error = mlreg_release_purge(&res, rq->srv->reg, rq->conf->policy, rq->who, rq->name, rq->arg,
                                reason);
    json_decref(body);
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_RELEASE);
        return mlreg_server__req_queue_error(rq);
    }
    return reply_json(rq, res);
}

/* ?since=SEQ&limit=N of the paged listings (promotions, stage history), read
 * as the audit log's: since defaults to 0, limit to 0 (the library's
 * default), a limit over MLREG_PAGE_LIMIT_MAX is clamped; anything but
 * decimal digits is MLREG_EINVALID naming the parameter. */
static int page_query(uint64_t *since_out, size_t *limit_out, request *rq)
{
    uint64_t since = 0, limit = 0;
    int error;

    if ((error = mlreg_server__req_query_u64(&since, NULL, rq, "since")) < 0 ||
        (error = mlreg_server__req_query_u64(&limit, NULL, rq, "limit")) < 0)
        return error;
    *since_out = since;
    *limit_out = limit > MLREG_PAGE_LIMIT_MAX ? MLREG_PAGE_LIMIT_MAX : (size_t)limit;
    return 0;
}

/* GET models/<name>/stages/<stage>[?at=RFC3339]. */
static int stage_get(json_t **out, request *rq)
{
    const char *at = mlreg_server__req_query(rq, "at");
    int64_t sec = 0, at_ns = -1;
    int32_t nsec = 0;

    if (at != NULL) {
        if (mlreg_time_parse(&sec, &nsec, at) < 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "?at= must be an RFC 3339 time such as 2026-11-26T10:00:00Z");
        if (sec < 0 || sec > INT64_MAX / 1000000000 - 1)
            return mlreg_error_set(MLREG_EINVALID, "?at= is out of range");
        at_ns = sec * 1000000000 + nsec;
    }
    return mlreg_stage_get(out, rq->srv->reg, rq->conf->policy, rq->name, rq->stage, at_ns);
}

/* GET stages/<stage>[?at=RFC3339]; what the stage holds now is answered
 * from the registry's rendered answers (mlreg_stage_get_text()). */
static enum MHD_Result stage_get_reply(request *rq)
{
    json_t *j = NULL;
    char *text = NULL;
    size_t len = 0;
    int error;

    if (mlreg_server__req_query(rq, "at") == NULL) {
        error =
            mlreg_stage_get_text(&text, &len, rq->srv->reg, rq->conf->policy, rq->name, rq->stage);
        if (error < 0) return mlreg_server__reply_error(rq, error, rq->ctx);
        return mlreg_server__reply_json_text(rq, 200, text, len);
    }
    error = stage_get(&j, rq);
    return mlreg_server__reply_result(rq, error, j);
}

/* How clients reach this server, in the health answer: "tls" (HTTPS) and
 * "insecure_http" (plain HTTP allowed off loopback by --insecure-http). */
static int health_transport(json_t *j, const mlreg_server *srv)
{
    return json_object_set_new(j, "tls", json_boolean(srv->tls)) ||
           json_object_set_new(j, "insecure_http", json_boolean(srv->insecure_http));
}

/* Adds what this binary is to a health answer @p j (consumed); NULL when
 * out of memory. */
static json_t *health_with_version(json_t *j)
{
    if (j == NULL) return NULL;
    if (json_object_set_new(j, "version", json_string(mlreg_version())) < 0 ||
        json_object_set_new(j, "commit", json_string(mlreg_version_commit())) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* 200 "ok", or 503 "unhealthy" with the reason when this node stopped
 * following a broken log in the object store (it then still serves the
 * reads of what it verified and refuses writes); both with the version
 * and commit of the binary. */
static enum MHD_Result health_get(request *rq)
{
    mlreg_cluster *cl = mlreg_registry_cluster(rq->srv->reg);
    char *why = NULL;
    json_t *j;

    if (cl != NULL && mlreg_cluster_health(&why, cl) < 0) {
        j = json_pack("{s:s, s:s}", "status", "unhealthy", "reason",
                      why ? why : "out of memory describing the failure");
        free(why);
        j = health_with_version(j);
        if (!j) return MHD_NO;
        if (health_transport(j, rq->srv)) {
            json_decref(j);
            return MHD_NO;
        }
        return mlreg_server__reply_json(rq, 503, j);
    }
    j = json_pack("{s:s}", "status", "ok");
    j = health_with_version(j);
    if (!j) return MHD_NO;
    if (health_transport(j, rq->srv)) {
        json_decref(j);
        return MHD_NO;
    }
    return reply_json(rq, j);
}

/* This node and the others sharing its log (s3 backend). */
static enum MHD_Result cluster_get(request *rq)
{
    mlreg_cluster *cl = mlreg_registry_cluster(rq->srv->reg);
    json_t *j = NULL;
    int error;

    if (cl == NULL)
        error = mlreg_error_set(MLREG_ENOTFOUND,
                                "this registry keeps its log in its own LMDB (fs backend): it is "
                                "one node, not part of a cluster");
    else {
        const char *nodes = mlreg_server__req_query(rq, "nodes");
        error = mlreg_cluster_status(&j, cl, nodes == NULL || strcmp(nodes, "false") != 0);
    }
    return mlreg_server__reply_result(rq, error, j);
}

/* POST admin/scrub: {"model"?, "rate_bytes_per_second"?, "dry_run"?}, or
 * no body for every blob at full speed. Answers the report
 * (mlreg_registry_scrub()) when the scrub ends, which may take long: the
 * handler holds its libmicrohttpd worker thread meanwhile (one of
 * server.threads; other connections of that worker wait). The reply of a
 * scrub that ran past limits.body_timeout_seconds is delivered
 * (test_scrub.sh checks it with a 1 s timeout and a 3 s scrub), and
 * libmicrohttpd's inactivity count is restarted before the reply all the
 * same, so that no version counting the handler's time as inactivity cuts
 * it: setting the timeout to 0 and back restarts it (libmicrohttpd resets
 * the count when a timeout is set on a connection that had none). */
static enum MHD_Result scrub_post(request *rq)
{
    json_t *body = NULL, *report = NULL, *v;
    mlreg_scrub_opts o;
    const char *key;
    int error;

    memset(&o, 0, sizeof(o));
    if (rq->mbuf != NULL && rq->mlen > 0 && body_object(&body, rq) < 0)
        return mlreg_server__req_queue_error(rq);
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "model") && strcmp(key, "rate_bytes_per_second") &&
            strcmp(key, "dry_run")) {
            mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                       "unknown member \"%.64s\" in a scrub request", key);
            json_decref(body);
            return mlreg_server__req_queue_error(rq);
        }
    }
    v = json_object_get(body, "rate_bytes_per_second");
    if (v != NULL && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) < 0 ||
         json_integer_value(v) > (json_int_t)1 << 50)) {
        json_decref(body);
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED",
                                   "\"rate_bytes_per_second\" must be an integer from 0 "
                                   "(unlimited) to 2^50");
        return mlreg_server__req_queue_error(rq);
    }
    o.rate_bytes_per_second = v != NULL ? (uint64_t)json_integer_value(v) : 0;
    if (body_string(&o.model, NULL, rq, body, "model", 0) < 0 ||
        body_bool(&o.dry_run, rq, body, "dry_run") < 0) {
        json_decref(body);
        return mlreg_server__req_queue_error(rq);
    }
    o.actor = mlreg_server__req_actor(rq);
    error = mlreg_registry_scrub(&report, rq->srv->reg, &o);
    json_decref(body);
    MHD_set_connection_option(rq->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_set_connection_option(rq->conn, MHD_CONNECTION_OPTION_TIMEOUT, rq->srv->body_timeout);
    return mlreg_server__reply_result(rq, error, report);
}

static enum MHD_Result models_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_registry_models_list(&j, rq->srv->reg);

    return mlreg_server__reply_result(rq, error, j);
}

/* Adds to each release summary of @p releases "signatures" (how many are
 * attached), "signed" (how many count now: trusted keys of role release,
 * mlreg_keyring_judge()), "signers" (each attached signature's key id,
 * key name, status and whether it counts, as the signatures list answers
 * them: a page of releases then needs no request per release) and "stages"
 * (the stages of @p stages holding it). A purged release has none. 0 or an
 * MLREG_E* code. */
static int releases_annotate(json_t *releases, request *rq, json_t *stages)
{
    json_t *r, *st, *sigs = NULL, *sig, *names, *signers;
    size_t i, k, counting;
    int error;

    json_array_foreach(releases, i, r)
    {
        const char *v = json_string_value(json_object_get(r, "version"));
        json_t *list = NULL;

        if (!(names = json_array()) || json_object_set_new(r, "stages", names) < 0)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
        json_array_foreach(json_object_get(stages, "stages"), k, st)
        {
            const char *held = json_string_value(json_object_get(st, "version"));
            if (held && v && !strcmp(held, v) &&
                json_array_append(names, json_object_get(st, "stage")) < 0)
                return mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
        }
        counting = 0;
        if (!(signers = json_array()) || json_object_set_new(r, "signers", signers) < 0)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
        if (v && json_is_null(json_object_get(r, "purged"))) {
            if ((error = mlreg_signatures_list(&sigs, rq->srv->reg, rq->name, v)) < 0) return error;
            list = json_object_get(sigs, "signatures");
            json_array_foreach(list, k, sig)
            {
                counting += json_is_true(json_object_get(sig, "counts"));
                if (json_array_append_new(signers,
                                          json_pack("{s:O?, s:O?, s:O?, s:O?}", "key_id",
                                                    json_object_get(sig, "key_id"), "key_name",
                                                    json_object_get(sig, "key_name"), "status",
                                                    json_object_get(sig, "status"), "counts",
                                                    json_object_get(sig, "counts"))) < 0) {
                    json_decref(sigs);
                    return mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
                }
            }
        }
        error =
            json_object_set_new(r, "signatures", json_integer((json_int_t)json_array_size(list))) ||
            json_object_set_new(r, "signed", json_integer((json_int_t)counting));
        json_decref(sigs);
        sigs = NULL;
        if (error) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
    }
    return 0;
}

/* GET models/<name>[?order=oldest|newest][&n=N][&last=VERSION]: the
 * model's releases in push order (oldest first, the default) or newest
 * first, each annotated by releases_annotate(). With n, at most N (1 to
 * MLREG_PAGE_LIMIT_MAX) releases after the release named by last (in the
 * chosen order), and a Link header to the next page when there is one, as
 * /v2 tags/list does. A last naming no release of the model is a 400. */
static enum MHD_Result model_get(request *rq)
{
    const char *order = mlreg_server__req_query(rq, "order");
    const char *last = mlreg_server__req_query(rq, "last");
    json_t *j = NULL, *all, *page = NULL, *stages = NULL;
    struct MHD_Response *resp;
    uint64_t n = 0, len;
    size_t count, start = 0, i;
    int has_n = 0, newest = 0, error;
    char link[768];

    if (order != NULL && !strcmp(order, "newest"))
        newest = 1;
    else if (order != NULL && strcmp(order, "oldest")) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "?order= must be oldest or newest");
        return mlreg_server__req_queue_error(rq);
    }
    if ((error = mlreg_server__req_query_u64(&n, &has_n, rq, "n")) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_ANY);
    if (has_n && (n < 1 || n > MLREG_PAGE_LIMIT_MAX)) {
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "?n= must be from 1 to %d",
                                   MLREG_PAGE_LIMIT_MAX);
        return mlreg_server__req_queue_error(rq);
    }
    if (last != NULL && mlreg_tag_validate(last) < 0) {
        mlreg_error_clear();
        mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "?last= must be a version");
        return mlreg_server__req_queue_error(rq);
    }
    if ((error = mlreg_registry_model_get(&j, rq->srv->reg, rq->name)) < 0 ||
        (error = mlreg_stages_list(&stages, rq->srv->reg, rq->conf->policy, rq->name)) < 0)
        goto fail;
    all = json_object_get(j, "releases");
    count = json_array_size(all);
    if (last != NULL) {
        for (start = 0; start < count; start++) {
            json_t *r = json_array_get(all, newest ? count - 1 - start : start);
            if (!strcmp(json_string_value(json_object_get(r, "version")), last)) break;
        }
        if (start == count) {
            json_decref(j);
            json_decref(stages);
            mlreg_server__req_fail_raw(rq, 400, "UNSUPPORTED", "?last= names no release of %.256s",
                                       rq->name);
            return mlreg_server__req_queue_error(rq);
        }
        start++;
    }
    if (!(page = json_array())) goto oom;
    for (i = start; i < count && (!has_n || i - start < n); i++)
        if (json_array_append(page, json_array_get(all, newest ? count - 1 - i : i)) < 0) goto oom;
    if ((error = releases_annotate(page, rq, stages)) < 0) goto fail;
    if (json_object_set(j, "releases", page) < 0) goto oom;
    if (!(resp = mlreg_server__resp_json(j, NULL, &len))) goto oom;
    if (has_n && i < count && json_array_size(page) > 0) {
        snprintf(link, sizeof(link),
                 "</api/v1/models/%s?order=%s&n=%" PRIu64 "&last=%s>; rel=\"next\"", rq->name,
                 newest ? "newest" : "oldest", n,
                 json_string_value(
                     json_object_get(json_array_get(page, json_array_size(page) - 1), "version")));
        if (mlreg_server__resp_header(resp, "Link", link) < 0) {
            MHD_destroy_response(resp);
            goto oom;
        }
    }
    json_decref(j);
    json_decref(page);
    json_decref(stages);
    return mlreg_server__req_queue(rq, 200, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
oom:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing releases");
fail:
    json_decref(j);
    json_decref(page);
    json_decref(stages);
    return mlreg_server__reply_error(rq, error, rq->ctx);
}

/* GET models/<name>/versions/<version>/manifest: the release's manifest
 * bytes, a purged release's too (the audit evidence: docs/lifecycle.md). */
static enum MHD_Result release_manifest_get(request *rq)
{
    mlreg_manifest_data *m = NULL;
    struct MHD_Response *resp;
    char digest[MLREG_DIGEST_STRLEN + 1];
    int error = mlreg_registry_release_manifest(&m, rq->srv->reg, rq->name, rq->arg);
    size_t len;

    if (error < 0) return mlreg_server__reply_error(rq, error, ERR_CTX_RELEASE);
    len = m->len;
    mlreg_digest_format(digest, &m->digest);
    resp = mlreg_server__resp_copy(m->body, m->len);
    if (resp != NULL && (mlreg_server__resp_header(resp, "Content-Type", m->content_type) < 0 ||
                         mlreg_server__resp_header(resp, "Docker-Content-Digest", digest) < 0)) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    mlreg_manifest_data_free(m);
    return mlreg_server__req_queue(rq, 200, resp, len);
}

static enum MHD_Result release_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_registry_release_get(&j, rq->srv->reg, rq->name, rq->arg);

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result signatures_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_signatures_list(&j, rq->srv->reg, rq->name, rq->arg);

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result keys_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_keyring_list(&j, mlreg_registry_keyring(rq->srv->reg));

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result key_events_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_keyring_events(&j, mlreg_registry_keyring(rq->srv->reg));

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result promotions_get(request *rq)
{
    json_t *j = NULL;
    uint64_t since = 0;
    size_t limit = 0;
    int error;

    if ((error = page_query(&since, &limit, rq)) == 0)
        error = mlreg_promotions_list(&j, rq->srv->reg, rq->name, since, limit);
    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result stages_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_stages_list(&j, rq->srv->reg, rq->conf->policy, rq->name);

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result stage_history_get(request *rq)
{
    json_t *j = NULL;
    uint64_t since = 0;
    size_t limit = 0;
    int error;

    if ((error = page_query(&since, &limit, rq)) == 0)
        error = mlreg_stage_history(&j, rq->srv->reg, rq->conf->policy, rq->name, rq->stage, since,
                                    limit);
    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result approvals_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_approvals_list(&j, rq->srv->reg, rq->name, rq->arg);

    return mlreg_server__reply_result(rq, error, j);
}

static enum MHD_Result images_get(request *rq)
{
    json_t *j = NULL;
    int error = mlreg_images_list(&j, rq->srv->reg, rq->name, rq->arg);

    return mlreg_server__reply_result(rq, error, j);
}

/* POST admin/gc: one garbage collection now, with the server's grace period
 * and retention rules; {"dry_run": true} reports what it would purge and
 * delete. 200 with the report. */
static enum MHD_Result gc_post(request *rq)
{
    json_t *body = NULL, *res = NULL;
    mlreg_gc_opts o;
    int error;

    memset(&o, 0, sizeof(o));
    if (body_object(&body, rq) < 0 || body_bool(&o.dry_run, rq, body, "dry_run") < 0) {
        json_decref(body);
        return mlreg_server__req_queue_error(rq);
    }
    json_decref(body);
    o.grace_seconds = rq->srv->gc_grace;
    o.stale_upload_seconds = rq->srv->gc_stale;
    o.actor = mlreg_server__req_actor(rq);
    o.retention = rq->srv->retention;
    o.n_retention = rq->srv->n_retention;
    o.policy = rq->conf->policy;
    o.who = rq->who;
    error = mlreg_registry_gc(&res, rq->srv->reg, &o);
    return mlreg_server__reply_result(rq, error, res);
}

/* ---- routes --------------------------------------------------------------- */

/* A release's sub-resources come before the release row, whose
 * {version*} takes every other path under .../versions/ (a bad version, a
 * 400); everything under .../versions/ comes before the stage rows, and
 * those before the model row, which would take any of them as a name. A
 * path under .../stages/ that no stage row matches is no route. */
static const route_row api_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_GET_HEAD, "/api/v1/health", ROUTE_ACCESS_PUBLIC, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL,
     NULL, health_get},
    {ROUTE_GET_HEAD, "/api/v1/cluster", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL,
     NULL, cluster_get},
    {ROUTE_GET_HEAD, "/api/v1/models/?", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL,
     NULL, models_get},
    {ROUTE_POST, "/api/v1/admin/gc", ROUTE_ACCESS_ADMIN, ROUTE_BODY_JSON, ERR_CTX_ANY, NULL, NULL,
     gc_post},
    {ROUTE_POST, "/api/v1/admin/scrub", ROUTE_ACCESS_ADMIN, ROUTE_BODY_JSON, ERR_CTX_ANY, NULL,
     NULL, scrub_post},
    {ROUTE_GET_HEAD, "/api/v1/keys", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE, ERR_CTX_KEY, NULL,
     NULL, keys_get},
    {ROUTE_POST, "/api/v1/keys", ROUTE_ACCESS_ADMIN, ROUTE_BODY_JSON, ERR_CTX_KEY, NULL, NULL,
     keys_post},
    {ROUTE_GET_HEAD, "/api/v1/keys/events", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE, ERR_CTX_KEY,
     NULL, NULL, key_events_get},
    {ROUTE_POST, "/api/v1/keys/{id}/revoke", ROUTE_ACCESS_ADMIN, ROUTE_BODY_JSON, ERR_CTX_KEY, NULL,
     NULL, key_revoke},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/versions/{version*}/signatures", ROUTE_ACCESS_READ,
     ROUTE_BODY_NONE, ERR_CTX_SIGNATURE, NULL, NULL, signatures_get},
    {ROUTE_POST, "/api/v1/models/{name}/versions/{version*}/signatures", ROUTE_ACCESS_PUSH,
     ROUTE_BODY_JSON, ERR_CTX_SIGNATURE, NULL, NULL, signatures_post},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/versions/{version*}/evaluations", ROUTE_ACCESS_READ,
     ROUTE_BODY_NONE, ERR_CTX_SIGNATURE, NULL, NULL, evaluations_get},
    {ROUTE_POST, "/api/v1/models/{name}/versions/{version*}/evaluations", ROUTE_ACCESS_PUSH,
     ROUTE_BODY_MANIFEST, ERR_CTX_SIGNATURE, NULL, NULL, evaluations_post},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/versions/{version*}/approvals", ROUTE_ACCESS_READ,
     ROUTE_BODY_NONE, ERR_CTX_RELEASE, NULL, NULL, approvals_get},
    {ROUTE_POST, "/api/v1/models/{name}/versions/{version*}/approvals", ROUTE_ACCESS_IN_BODY,
     ROUTE_BODY_JSON, ERR_CTX_RELEASE, NULL, NULL, approvals_post},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/versions/{version*}/images", ROUTE_ACCESS_READ,
     ROUTE_BODY_NONE, ERR_CTX_RELEASE, NULL, NULL, images_get},
    {ROUTE_POST, "/api/v1/models/{name}/versions/{version*}/images", ROUTE_ACCESS_IMAGES,
     ROUTE_BODY_JSON, ERR_CTX_RELEASE, NULL, NULL, images_post},
    {ROUTE_POST, "/api/v1/models/{name}/versions/{version*}/withdraw", ROUTE_ACCESS_WITHDRAW,
     ROUTE_BODY_JSON, ERR_CTX_RELEASE, NULL, NULL, withdraw_post},
    {ROUTE_POST, "/api/v1/models/{name}/versions/{version*}/unwithdraw", ROUTE_ACCESS_ADMIN_MODEL,
     ROUTE_BODY_JSON, ERR_CTX_RELEASE, NULL, NULL, unwithdraw_post},
    {ROUTE_POST, "/api/v1/models/{name}/versions/{version*}/purge", ROUTE_ACCESS_ADMIN_MODEL,
     ROUTE_BODY_JSON, ERR_CTX_RELEASE, NULL, NULL, purge_post},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/versions/{version*}/manifest", ROUTE_ACCESS_READ,
     ROUTE_BODY_NONE, ERR_CTX_RELEASE, NULL, NULL, release_manifest_get},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/versions/{version*}", ROUTE_ACCESS_READ,
     ROUTE_BODY_NONE, ERR_CTX_RELEASE, NULL, NULL, release_get},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/promotions", ROUTE_ACCESS_READ, ROUTE_BODY_NONE,
     ERR_CTX_MODEL, NULL, NULL, promotions_get},
    {ROUTE_POST, "/api/v1/models/{name}/promotions", ROUTE_ACCESS_IN_BODY, ROUTE_BODY_JSON,
     ERR_CTX_PROMOTION, NULL, NULL, promotions_post},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/stages", ROUTE_ACCESS_READ, ROUTE_BODY_NONE,
     ERR_CTX_MODEL, NULL, NULL, stages_get},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/stages/{stage}", ROUTE_ACCESS_READ, ROUTE_BODY_NONE,
     ERR_CTX_STAGE, NULL, NULL, stage_get_reply},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}/stages/{stage}/history", ROUTE_ACCESS_READ,
     ROUTE_BODY_NONE, ERR_CTX_STAGE, NULL, NULL, stage_history_get},
    {ROUTE_POST, "/api/v1/models/{name}/stages/{stage}/rollback", ROUTE_ACCESS_PROMOTE,
     ROUTE_BODY_JSON, ERR_CTX_STAGE, NULL, NULL, rollback_post},
    {0, "/api/v1/models/{name}/stages/{*}", ROUTE_ACCESS_UNSET, ROUTE_BODY_UNSET, ERR_CTX_ANY, NULL,
     NULL, NULL},
    {ROUTE_GET_HEAD, "/api/v1/models/{name}", ROUTE_ACCESS_READ, ROUTE_BODY_NONE, ERR_CTX_MODEL,
     NULL, NULL, model_get},
};

const route_table mlreg_server__api_routes = {api_rows, sizeof(api_rows) / sizeof(api_rows[0])};
