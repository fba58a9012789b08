/* server_metrics.c: GET /metrics, the Prometheus text exposition format
 * 0.0.4 (docs/operations.md "Metrics"), and the request counters behind it.
 *
 * Requests are counted at their end (server.c's completion callback) into
 * fixed arrays of atomics made at start: one cell per route pattern x
 * method x status class, and per route pattern a latency histogram. The
 * route label is the pattern of the row that matched (server_routes.h),
 * never the path, so the label set is bounded by the route tables; a
 * request no row matched counts under route="unmatched", a method that no
 * row has under method="other". No lock is taken per request.
 *
 * Who may read it: the row's access is ROUTE_ACCESS_METRICS: the read role
 * on every model when tokens are configured, nobody's token with
 * metrics.public. Nothing here names a model, a token or a path: the
 * labels are route patterns, methods, status classes, configured stages
 * and backend names.
 *
 * Everything else is read when scraped: readiness (as /readyz checks it,
 * without its log line), connections and upload sessions
 * (their tables' counts), the LMDB map, the audit log's size, the shared
 * log's lag (s3 backend), and the series other modules registered in the
 * process-wide registry (metrics.h: blob store operations, S3 retries,
 * promotions).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/cluster.h"
#include "mlreg/common.h"
#include "mlreg/events.h"
#include "mlreg/meta.h"
#include "mlreg/metrics.h"
#include "mlreg/version.h"
#include "server_routes.h"

/* Methods with their own label value; the last one is "other". */
static const char *const method_names[] = {"GET", "HEAD",   "POST", "PATCH",
                                           "PUT", "DELETE", "other"};
#define NMETHODS (sizeof(method_names) / sizeof(method_names[0]))
/* Status classes; 0 is a request that ended without a reply (the client
 * went away, a timeout, a refused connection). */
static const char *const status_names[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
#define NSTATUS (sizeof(status_names) / sizeof(status_names[0]))
/* Upper bounds of the latency histogram, in seconds: Prometheus's defaults
 * and three more for large blob transfers. */
static const double duration_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,  5,     10,   30,  60,   300};
#define NBOUNDS (sizeof(duration_bounds) / sizeof(duration_bounds[0]))
/* Longest route pattern kept for the label. */
#define ROUTE_LABEL_MAX 128

struct server_metrics {
    size_t nrows;                       /* rows of the route tables */
    size_t npat;                        /* distinct patterns; index npat is "unmatched" */
    size_t *pat_of;                     /* [nrows]: a row's pattern index */
    char (*label)[ROUTE_LABEL_MAX + 1]; /* [npat]: the pattern as people write it */
    _Atomic uint64_t *requests;         /* [(npat + 1) * NMETHODS * NSTATUS] */
    _Atomic uint64_t *buckets;          /* [(npat + 1) * (NBOUNDS + 1)], not cumulative */
    _Atomic uint64_t *sum_us;           /* [npat + 1]: microseconds */
    _Atomic uint64_t bytes_in, bytes_out;
    double start_time; /* Unix seconds, when the server started */
};

typedef struct {
    server_metrics *m;
    size_t row;
} pattern_walk;

/* The pattern as the access log shows it: without the table's "?" marker
 * of an optional final '/' (server_routes.h). */
static void pattern_label(char *out, size_t outlen, const char *pattern)
{
    size_t n = strlen(pattern);

    if (n > 0 && pattern[n - 1] == '?') n--;
    snprintf(out, outlen, "%.*s", (int)n, pattern);
}

static void add_pattern(const route_row *row, void *cls)
{
    pattern_walk *w = cls;
    server_metrics *m = w->m;
    char label[ROUTE_LABEL_MAX + 1];
    size_t p;

    pattern_label(label, sizeof(label), row->pattern);
    for (p = 0; p < m->npat; p++)
        if (!strcmp(m->label[p], label)) break;
    if (p == m->npat) {
        memcpy(m->label[p], label, sizeof(label));
        m->npat++;
    }
    m->pat_of[w->row++] = p;
}

int mlreg_server__metrics_new(server_metrics **out)
{
    server_metrics *m = calloc(1, sizeof(*m));
    pattern_walk w;
    struct timespec now;
    size_t cells;

    if (m == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    m->nrows = mlreg_server__route_count();
    m->pat_of = calloc(m->nrows + 1, sizeof(*m->pat_of));
    m->label = calloc(m->nrows + 1, sizeof(*m->label));
    if (m->pat_of == NULL || m->label == NULL) goto oom;
    w.m = m;
    w.row = 0;
    mlreg_server__route_foreach(add_pattern, &w);
    cells = m->npat + 1;
    m->requests = calloc(cells * NMETHODS * NSTATUS, sizeof(*m->requests));
    m->buckets = calloc(cells * (NBOUNDS + 1), sizeof(*m->buckets));
    m->sum_us = calloc(cells, sizeof(*m->sum_us));
    if (m->requests == NULL || m->buckets == NULL || m->sum_us == NULL) goto oom;
    clock_gettime(CLOCK_REALTIME, &now);
    m->start_time = (double)now.tv_sec + (double)(now.tv_nsec / 1000000) / 1e3;
    *out = m;
    return 0;
oom:
    mlreg_server__metrics_free(m);
    return mlreg_error_set(MLREG_ENOMEM, "out of memory");
}

void mlreg_server__metrics_free(server_metrics *m)
{
    if (m == NULL) return;
    free(m->pat_of);
    free(m->label);
    free((void *)m->requests);
    free((void *)m->buckets);
    free((void *)m->sum_us);
    free(m);
}

static size_t method_index(const char *method)
{
    for (size_t i = 0; i + 1 < NMETHODS; i++)
        if (!strcmp(method_names[i], method)) return i;
    return NMETHODS - 1;
}

void mlreg_server__metrics_request(server_metrics *m, const request *rq)
{
    struct timespec now;
    uint64_t us;
    size_t pat = m->npat, st = 0, b = 0;

    if (rq->route != NULL) {
        size_t row = mlreg_server__route_index(rq->route);
        if (row < m->nrows) pat = m->pat_of[row];
    }
    if (rq->status >= 100 && rq->status < 600) st = rq->status / 100;
    clock_gettime(CLOCK_MONOTONIC, &now);
    us = (uint64_t)((now.tv_sec - rq->t0.tv_sec) * 1000000 + (now.tv_nsec - rq->t0.tv_nsec) / 1000);
    while (b < NBOUNDS && (double)us > duration_bounds[b] * 1e6)
        b++;
    atomic_fetch_add_explicit(
        &m->requests[(pat * NMETHODS + method_index(rq->method)) * NSTATUS + st], 1,
        memory_order_relaxed);
    atomic_fetch_add_explicit(&m->buckets[pat * (NBOUNDS + 1) + b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us[pat], us, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_in, rq->req_bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_out, rq->resp_bytes, memory_order_relaxed);
}

/* ---- the exposition -------------------------------------------------------------- */

static const char *route_label(const server_metrics *m, size_t pat)
{
    return pat < m->npat ? m->label[pat] : "unmatched";
}

static int write_requests(mlreg_buf *b, const server_metrics *m)
{
    int error;

    if ((error = mlreg_metrics_write_family(
             b, "mlreg_http_requests_total", "counter",
             "HTTP requests by route pattern, method and status class (none: no reply).")) < 0)
        return error;
    for (size_t p = 0; p <= m->npat; p++)
        for (size_t k = 0; k < NMETHODS; k++)
            for (size_t s = 0; s < NSTATUS; s++) {
                uint64_t n = atomic_load_explicit(&m->requests[(p * NMETHODS + k) * NSTATUS + s],
                                                  memory_order_relaxed);
                const char *labels[] = {"route",         route_label(m, p), "method",
                                        method_names[k], "status",          status_names[s]};
                if (n == 0) continue;
                if ((error = mlreg_metrics_write_sample_u64(b, "mlreg_http_requests_total", labels,
                                                            3, n)) < 0)
                    return error;
            }
    return 0;
}

static int write_durations(mlreg_buf *b, const server_metrics *m)
{
    int error;

    if ((error = mlreg_metrics_write_family(
             b, "mlreg_http_request_duration_seconds", "histogram",
             "Time from a request's first byte to the end of its reply, by route pattern.")) < 0)
        return error;
    for (size_t p = 0; p <= m->npat; p++) {
        uint64_t counts[NBOUNDS + 1], total = 0;
        const char *labels[] = {"route", route_label(m, p)};
        /* the cells are read one by one while requests end: the sum may
         * miss a request the buckets have, never the other way round
         * enough to matter; the count is the buckets' total by
         * construction (mlreg_metrics_write_histogram()) */
        double sum = (double)atomic_load_explicit(&m->sum_us[p], memory_order_relaxed) / 1e6;
        for (size_t i = 0; i <= NBOUNDS; i++) {
            counts[i] =
                atomic_load_explicit(&m->buckets[p * (NBOUNDS + 1) + i], memory_order_relaxed);
            total += counts[i];
        }
        if (total == 0) continue;
        if ((error = mlreg_metrics_write_histogram(b, "mlreg_http_request_duration_seconds", labels,
                                                   1, duration_bounds, counts, NBOUNDS, sum)) < 0)
            return error;
    }
    return 0;
}

/* One family with one unlabelled sample. */
static int write_one(mlreg_buf *b, const char *name, const char *type, const char *help,
                     double value)
{
    int error;

    if ((error = mlreg_metrics_write_family(b, name, type, help)) < 0) return error;
    return mlreg_metrics_write_sample(b, name, NULL, 0, value);
}

/* What the registry's stores hold: the LMDB map and the audit log. A value
 * that cannot be read leaves its family without a sample (and the reason
 * in the server log), so one failing store never hides the rest. */
static int write_stores(mlreg_buf *b, mlreg_server *srv)
{
    mlreg_meta *meta = mlreg_registry_meta(srv->reg);
    mlreg_meta_txn *txn = NULL;
    uint64_t used = 0, size = 0, entries = 0;
    int have_map = mlreg_meta_usage(&used, &size, meta) == 0, have_audit = 0, error;

    if (!have_map) fprintf(stderr, "mlreg: metrics: %s\n", mlreg_error_last());
    if (mlreg_meta_txn_begin(&txn, meta, 0) == 0) {
        have_audit = mlreg_audit_size_txn(&entries, txn) == 0;
        mlreg_meta_txn_abort(txn);
    }
    if (!have_audit) fprintf(stderr, "mlreg: metrics: audit log size: %s\n", mlreg_error_last());
    if ((error = mlreg_metrics_write_family(b, "mlreg_meta_map_used_bytes", "gauge",
                                            "Bytes of the LMDB map in use (its last page used).")) <
            0 ||
        (have_map && (error = mlreg_metrics_write_sample_u64(b, "mlreg_meta_map_used_bytes", NULL,
                                                             0, used)) < 0) ||
        (error = mlreg_metrics_write_family(b, "mlreg_meta_map_size_bytes", "gauge",
                                            "Size of the LMDB map (limits.map_size).")) < 0 ||
        (have_map && (error = mlreg_metrics_write_sample_u64(b, "mlreg_meta_map_size_bytes", NULL,
                                                             0, size)) < 0) ||
        (error = mlreg_metrics_write_family(b, "mlreg_audit_log_entries", "gauge",
                                            "Entries in the audit log.")) < 0 ||
        (have_audit && (error = mlreg_metrics_write_sample_u64(b, "mlreg_audit_log_entries", NULL,
                                                               0, entries)) < 0))
        return error;
    return 0;
}

/* The shared log of the s3 backend: this node's lag and whether it
 * follows the log. Nothing without a cluster. */
static int write_cluster(mlreg_buf *b, mlreg_server *srv)
{
    mlreg_cluster *cl = mlreg_registry_cluster(srv->reg);
    json_t *st = NULL;
    char *why = NULL;
    int following, error;
    int64_t lag = -1;

    if (cl == NULL) return 0;
    following = mlreg_cluster_health(&why, cl) == 0;
    free(why);
    if (mlreg_cluster_status(&st, cl, 0) == 0)
        lag = (int64_t)json_integer_value(json_object_get(st, "lag"));
    json_decref(st);
    if ((error = write_one(b, "mlreg_cluster_log_following", "gauge",
                           "1 while this node applies the shared log, 0 once it stopped at an "
                           "entry it cannot apply.",
                           following)) < 0 ||
        (error = write_one(b, "mlreg_cluster_ready_max_lag", "gauge",
                           "cluster.ready_max_lag: the lag past which /readyz answers 503.",
                           (double)srv->ready_max_lag)) < 0 ||
        (error = mlreg_metrics_write_family(
             b, "mlreg_cluster_log_lag_entries", "gauge",
             "Entries of the shared log this node has still to apply.")) < 0 ||
        (lag >= 0 && (error = mlreg_metrics_write_sample(b, "mlreg_cluster_log_lag_entries", NULL,
                                                         0, (double)lag)) < 0))
        return error;
    return 0;
}

/* The webhook deliveries (events.h), labelled by their place in the
 * config's `webhooks` list: a URL may carry a secret in its query string,
 * and the list is bounded. Nothing without webhooks. */
static int write_webhooks(mlreg_buf *b, mlreg_server *srv)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"mlreg_webhook_delivered_total", "counter", "Events a webhook's receiver accepted (2xx)."},
        {"mlreg_webhook_failed_attempts_total", "counter",
         "POSTs to a webhook that failed (network, timeout, non-2xx); each is retried."},
        {"mlreg_webhook_dropped_total", "counter",
         "Events given up on after give_up_after refusals (4xx other than 408, 429)."},
        {"mlreg_webhook_lag_entries", "gauge",
         "Audit log entries a webhook's delivery has still to look at."},
    };
    size_t n;
    int error = 0;

    /* a reload replaces the deliveries (server_reload.c) */
    pthread_mutex_lock(&srv->events_lock);
    if ((n = mlreg_events_count(srv->events)) == 0) goto done;
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        if ((error = mlreg_metrics_write_family(b, fam[f].name, fam[f].type, fam[f].help)) < 0)
            goto done;
        for (size_t i = 0; i < n; i++) {
            mlreg_webhook_stats st;
            const char *url = NULL;
            char idx[24];
            const char *labels[] = {"webhook", idx};
            uint64_t v;
            if (mlreg_events_stats(&st, &url, srv->events, i) < 0) continue;
            snprintf(idx, sizeof(idx), "%zu", i);
            v = f == 0 ? st.delivered : f == 1 ? st.failed_attempts : f == 2 ? st.dropped : st.lag;
            if ((error = mlreg_metrics_write_sample_u64(b, fam[f].name, labels, 1, v)) < 0)
                goto done;
        }
    }
done:
    pthread_mutex_unlock(&srv->events_lock);
    return error;
}

static int render(mlreg_buf *b, mlreg_server *srv)
{
    server_metrics *m = srv->metrics;
    const char *build[] = {"version", mlreg_version(), "commit", mlreg_version_commit()};
    size_t sessions = 0, sessions_max = 0;
    int error;

    char reason[256], detail[768];
    int ready = mlreg_server__ready(reason, sizeof(reason), detail, sizeof(detail), srv) == 0;

    mlreg_server__uploads_count(&sessions, &sessions_max, srv->uploads);
    if ((error = mlreg_metrics_write_family(b, "mlreg_build_info", "gauge",
                                            "The version and commit of this binary (always 1).")) <
            0 ||
        (error = mlreg_metrics_write_sample(b, "mlreg_build_info", build, 2, 1)) < 0 ||
        (error = write_one(b, "mlreg_process_start_time_seconds", "gauge",
                           "When the server started, in Unix seconds.", m->start_time)) < 0 ||
        (error = write_one(b, "mlreg_ready", "gauge",
                           "1 when this node can serve, as GET /readyz answers now; else 0.",
                           ready)) < 0 ||
        (error = write_requests(b, m)) < 0 || (error = write_durations(b, m)) < 0 ||
        (error = write_one(b, "mlreg_http_received_bytes_total", "counter",
                           "Bytes of request bodies received.",
                           (double)atomic_load_explicit(&m->bytes_in, memory_order_relaxed))) < 0 ||
        (error = write_one(
             b, "mlreg_http_sent_bytes_total", "counter", "Bytes of response bodies sent.",
             (double)atomic_load_explicit(&m->bytes_out, memory_order_relaxed))) < 0 ||
        (error =
             write_one(b, "mlreg_http_connections_open", "gauge", "Client connections open now.",
                       (double)mlreg_server__conns_open(srv->conns))) < 0 ||
        (error = write_one(b, "mlreg_upload_sessions", "gauge", "Upload sessions in progress.",
                           (double)sessions)) < 0 ||
        (error = write_one(b, "mlreg_upload_sessions_max", "gauge",
                           "Upload sessions the server takes at once.", (double)sessions_max)) <
            0 ||
        (error = write_stores(b, srv)) < 0 || (error = write_cluster(b, srv)) < 0 ||
        (error = write_webhooks(b, srv)) < 0 || (error = mlreg_metrics_write_registered(b)) < 0)
        return error;
    return 0;
}

static enum MHD_Result metrics_get(request *rq)
{
    mlreg_buf b = {0};
    struct MHD_Response *resp;
    size_t len;

    if (render(&b, rq->srv) < 0) {
        free(b.p);
        return mlreg_server__reply_error(rq, MLREG_ENOMEM, ERR_CTX_ANY);
    }
    len = b.len;
    resp = MHD_create_response_from_buffer(len, b.p, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(b.p);
        return MHD_NO;
    }
    if (mlreg_server__resp_header(resp, "Content-Type",
                                  "text/plain; version=0.0.4; charset=utf-8") < 0 ||
        mlreg_server__resp_header(resp, "Cache-Control", "no-store") < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return mlreg_server__req_queue(rq, 200, resp, len);
}

static const route_row metrics_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_GET_HEAD, "/metrics", ROUTE_ACCESS_METRICS, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL, NULL,
     metrics_get},
};

const route_table mlreg_server__metrics_routes = {metrics_rows,
                                                  sizeof(metrics_rows) / sizeof(metrics_rows[0])};
