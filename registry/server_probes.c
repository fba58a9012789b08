/* server_probes.c: the probes of orchestrators and load balancers, outside
 * /v2/ and /api/v1/ and open to everyone, like GET /api/v1/health: they
 * say ready or not and a short reason, nothing secret.
 *
 *   GET|HEAD /healthz  200 {"status":"ok"} whenever the process answers:
 *                      no I/O and no lock, so a liveness probe restarts a
 *                      node only when it is stuck, never because a
 *                      dependency is down.
 *   GET|HEAD /readyz   200 {"status":"ready"} when this node can serve:
 *                      the metadata store answers a read transaction, the
 *                      blob backend is usable (mlreg_blobstore_check(): fs
 *                      directories there and writable; s3 one small
 *                      request at most every few seconds), and on the s3
 *                      backend the shared log is followed (not stopped at
 *                      a broken entry) with at most ready_max_lag entries
 *                      still to apply. Else 503 {"status":"not ready",
 *                      "reason":...}.
 * A change of readiness is written to the server log once, with the detail
 * the reply leaves out (paths, the object store's answer).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlreg/blob.h"
#include "mlreg/cluster.h"
#include "mlreg/common.h"
#include "mlreg/meta.h"
#include "server_routes.h"

enum { READY_UNKNOWN = 0, READY_YES = 1, READY_NO = 2 };

static enum MHD_Result healthz_get(request *rq)
{
    json_t *j = json_pack("{s:s}", "status", "ok");

    if (j == NULL) return MHD_NO;
    return mlreg_server__reply_json(rq, 200, j);
}

/* The shared log's part of readiness (s3 backend). 0, or -1 with the
 * public reason in @p reason, which is also the log's detail: the health
 * endpoint shows the same text. */
static int log_ready(char *reason, size_t reason_len, mlreg_cluster *cl, uint64_t max_lag)
{
    char *why = NULL;
    json_t *st = NULL;
    uint64_t lag;

    if (mlreg_cluster_health(&why, cl) < 0) {
        snprintf(reason, reason_len, "shared log: %s", why ? why : "stopped at a broken entry");
        free(why);
        return -1;
    }
    if (mlreg_cluster_status(&st, cl, 0) < 0) {
        snprintf(reason, reason_len, "shared log: state unknown (%s)", mlreg_error_last());
        return -1;
    }
    lag = (uint64_t)json_integer_value(json_object_get(st, "lag"));
    json_decref(st);
    if (lag > max_lag) {
        snprintf(reason, reason_len,
                 "shared log: %" PRIu64 " entries behind (more than cluster.ready_max_lag %" PRIu64
                 ")",
                 lag, max_lag);
        return -1;
    }
    return 0;
}

int mlreg_server__ready(char *reason, size_t reason_len, char *detail, size_t detail_len,
                        mlreg_server *srv)
{
    mlreg_registry *reg = srv->reg;
    mlreg_meta_txn *txn = NULL;
    mlreg_cluster *cl = mlreg_registry_cluster(reg);

    if (mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0) < 0) {
        snprintf(reason, reason_len, "metadata store does not answer a read transaction");
        snprintf(detail, detail_len, "metadata store: %s", mlreg_error_last());
        return -1;
    }
    mlreg_meta_txn_abort(txn);
    if (mlreg_blobstore_check(reason, reason_len, mlreg_registry_blobstore(reg)) < 0) {
        snprintf(detail, detail_len, "%s", mlreg_error_last());
        return -1;
    }
    if (cl != NULL && log_ready(reason, reason_len, cl, srv->ready_max_lag) < 0) {
        snprintf(detail, detail_len, "%s", reason);
        return -1;
    }
    return 0;
}

static enum MHD_Result readyz_get(request *rq)
{
    char reason[256], detail[768];
    int ok = mlreg_server__ready(reason, sizeof(reason), detail, sizeof(detail), rq->srv) == 0;
    int state = ok ? READY_YES : READY_NO;
    int before = __atomic_exchange_n(&rq->srv->ready_state, state, __ATOMIC_RELAXED);
    json_t *j;

    if (before != state && !ok)
        fprintf(stderr, "mlreg: not ready: %s\n", detail);
    else if (before == READY_NO && ok)
        fprintf(stderr, "mlreg: ready again\n");
    if (ok)
        j = json_pack("{s:s}", "status", "ready");
    else
        j = json_pack("{s:s, s:s}", "status", "not ready", "reason", reason);
    if (j == NULL) return MHD_NO;
    return mlreg_server__reply_json(rq, ok ? 200 : 503, j);
}

static const route_row probe_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_GET_HEAD, "/healthz", ROUTE_ACCESS_PUBLIC, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL, NULL,
     healthz_get},
    {ROUTE_GET_HEAD, "/readyz", ROUTE_ACCESS_PUBLIC, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL, NULL,
     readyz_get},
};

const route_table mlreg_server__probe_routes = {probe_rows,
                                                sizeof(probe_rows) / sizeof(probe_rows[0])};
