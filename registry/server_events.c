/* server_events.c: GET /api/v1/events (docs/events-api.md), the committed
 * changes as CloudEvents for deploy systems that cannot receive webhooks.
 *
 * ?since=SEQ answers the events of the audit entries from SEQ on, at most
 * ?limit= (1..100, default 100) of them, as a CloudEvents JSON batch
 * (application/cloudevents-batch+json) with the since of the next call in
 * X-Mlreg-Next. When the log holds nothing new, the request waits up to
 * ?timeout= seconds (0..60, default 30) for a commit: a long-poll.
 *
 * A waiting request must not hold a libmicrohttpd worker thread (each
 * serves many connections): it is suspended (MHD_suspend_connection) and
 * put on a list; one thread here resumes the waiters when the registry
 * reports a commit (they look at the log again, and wait again when what
 * came is nothing they asked for) or at their deadline (they answer []).
 * The list is bounded (MLREG_SERVER_EVENT_POLLS_MAX); past it a request is
 * answered 503 with Retry-After, and one identity may hold at most
 * MLREG_SERVER_EVENT_POLLS_PER_IDENTITY of it (429), so one token cannot
 * take every place. A waiting client that goes away keeps its place until
 * its deadline or the next commit: libmicrohttpd does not watch suspended
 * sockets. Suspending and resuming both happen under
 * the list's lock, so a commit between a request's look at the log and
 * its suspension is never missed: the request reads the commit count
 * before it looks and does not wait when it changed.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/events.h"
#include "mlreg/registry.h"
#include "server_routes.h"

/* Query bounds. */
#define EVENTS_LIMIT_MAX       100u
#define EVENTS_TIMEOUT_DEFAULT 30u
#define EVENTS_TIMEOUT_MAX     60u
/* Entries one request looks at, at most (most entries may be no event). */
#define EVENTS_SCAN_MAX 1000u
/* Longest ?types= value. */
#define EVENTS_TYPES_MAX 256u

struct event_polls {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    pthread_t thread;
    int running;
    int listening;
    int stop;
    uint64_t commits; /* commit notices so far */
    uint64_t woken;   /* commits the thread has resumed waiters for */
    request *head;    /* the waiters */
    size_t n;
    mlreg_registry *reg;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_commit(void *arg)
{
    event_polls *p = arg;

    pthread_mutex_lock(&p->lock);
    p->commits++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* Resumes the waiters that @p all or their deadline (before @p now) says;
 * under p->lock. Returns the earliest deadline left (0: none). */
static int64_t resume_locked(event_polls *p, int all, int64_t now)
{
    request **pp = &p->head;
    int64_t next = 0;

    while (*pp != NULL) {
        request *rq = *pp;
        if (all || rq->poll_deadline_ms <= now) {
            *pp = rq->poll_next;
            rq->poll_next = NULL;
            rq->poll_waiting = 0;
            p->n--;
            MHD_resume_connection(rq->conn);
            continue;
        }
        if (next == 0 || rq->poll_deadline_ms < next) next = rq->poll_deadline_ms;
        pp = &rq->poll_next;
    }
    return next;
}

static void *polls_thread(void *arg)
{
    event_polls *p = arg;

    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        int all = p->commits != p->woken;
        int64_t next;
        struct timespec until;

        p->woken = p->commits;
        next = resume_locked(p, all, now_ms());
        if (p->commits != p->woken) continue;
        if (next == 0) next = now_ms() + 60000;
        until.tv_sec = (time_t)(next / 1000);
        until.tv_nsec = (long)(next % 1000) * 1000000L;
        pthread_cond_timedwait(&p->wake, &p->lock, &until);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int mlreg_server__polls_start(mlreg_server *srv, const char *source)
{
    event_polls *p = NULL;
    pthread_condattr_t cattr;
    char host_source[320];
    int error;

    if (source == NULL) {
        mlreg_events_default_source(host_source, sizeof(host_source));
        source = host_source;
    }
    if ((srv->event_source = strdup(source)) == NULL || (p = calloc(1, sizeof(*p))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    p->reg = srv->reg;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    srv->polls = p;
    mlreg_events_log_id(srv->event_log_id, sizeof(srv->event_log_id), srv->reg);
    if ((error = mlreg_registry_commit_listen(srv->reg, on_commit, p)) < 0) return error;
    p->listening = 1;
    if (pthread_create(&p->thread, NULL, polls_thread, p) != 0)
        return mlreg_error_set(MLREG_EIO, "cannot start the events long-poll thread");
    p->running = 1;
    return 0;
}

void mlreg_server__polls_stop(mlreg_server *srv)
{
    event_polls *p = srv->polls;

    if (p == NULL) return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    resume_locked(p, 1, 0);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (p->running) pthread_join(p->thread, NULL);
    p->running = 0;
    if (p->listening) mlreg_registry_commit_unlisten(p->reg, on_commit, p);
    p->listening = 0;
}

void mlreg_server__polls_free(mlreg_server *srv)
{
    event_polls *p = srv->polls;

    if (p == NULL) return;
    mlreg_server__polls_stop(srv);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
    srv->polls = NULL;
}

/* ---- the request ----------------------------------------------------------- */

typedef struct {
    uint64_t since;
    uint64_t limit;
    uint64_t timeout;
    unsigned int kinds; /* MLREG_EVENT_* mask */
} events_query;

/* ?types=push,promote: known kind names, comma-separated. */
static int parse_types(unsigned int *out, request *rq)
{
    const char *v = NULL, *p, *end;
    size_t len = 0;
    unsigned int mask = 0, k;

    *out = MLREG_EVENT_ALL;
    if (MHD_lookup_connection_value_n(rq->conn, MHD_GET_ARGUMENT_KIND, "types", 5, &v, &len) !=
        MHD_YES)
        return 0;
    /* the length, not strlen: "push%00x" must not read as "push" */
    if (v == NULL || len == 0 || len > EVENTS_TYPES_MAX || strlen(v) != len)
        return mlreg_error_set(MLREG_EINVALID,
                               "?types= must list event types, comma-separated "
                               "(push, promote, refuse, rollback, withdraw, "
                               "unwithdraw, sign, purge, approve, image, evaluate)");
    for (p = v;; p = end + 1) {
        end = strchr(p, ',');
        if (end == NULL) end = p + strlen(p);
        if ((k = mlreg_event_kind(p, (size_t)(end - p))) == 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "?types= holds '%.*s', which is no event type (push, promote, "
                                   "refuse, rollback, withdraw, unwithdraw, sign, purge, approve, "
                                   "image)",
                                   (int)((end - p) > 64 ? 64 : (end - p)), p);
        mask |= k;
        if (*end == '\0') break;
    }
    *out = mask;
    return 0;
}

static int parse_query(events_query *q, request *rq)
{
    int error, have;

    q->since = 0;
    q->limit = EVENTS_LIMIT_MAX;
    q->timeout = EVENTS_TIMEOUT_DEFAULT;
    if ((error = mlreg_server__req_query_u64(&q->since, NULL, rq, "since")) < 0) return error;
    if ((error = mlreg_server__req_query_u64(&q->limit, &have, rq, "limit")) < 0) return error;
    if (have && (q->limit < 1 || q->limit > EVENTS_LIMIT_MAX))
        return mlreg_error_set(MLREG_EINVALID, "?limit= must be between 1 and %u",
                               EVENTS_LIMIT_MAX);
    if ((error = mlreg_server__req_query_u64(&q->timeout, NULL, rq, "timeout")) < 0) return error;
    if (q->timeout > EVENTS_TIMEOUT_MAX)
        return mlreg_error_set(MLREG_EINVALID, "?timeout= must be between 0 and %u seconds",
                               EVENTS_TIMEOUT_MAX);
    return parse_types(&q->kinds, rq);
}

/* The events of entries q->since.. into *out (a new array), *next_out the
 * since of the next call, *size_out the log size. */
static int scan(json_t **out, uint64_t *next_out, uint64_t *size_out, request *rq,
                const events_query *q)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *arr = json_array();
    uint64_t size = 0, seq;

    if (arr == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(rq->srv->reg), 0)) < 0 ||
        (error = mlreg_audit_size_txn(&size, txn)) < 0)
        goto done;
    if (q->since > size) {
        error =
            mlreg_error_set(MLREG_EINVALID, "?since=%llu is past the end of the log (%llu entries)",
                            (unsigned long long)q->since, (unsigned long long)size);
        goto done;
    }
    for (seq = q->since;
         seq < size && seq - q->since < EVENTS_SCAN_MAX && json_array_size(arr) < q->limit; seq++) {
        char *text = NULL;
        size_t len = 0;
        json_t *ev = NULL;
        unsigned int kind = 0;

        if ((error = mlreg_audit_entry_txn(&text, &len, txn, seq)) < 0) goto done;
        error = mlreg_event_from_entry(&ev, &kind, text, len, rq->srv->event_source,
                                       rq->srv->event_log_id);
        free(text);
        if (error < 0) goto done;
        error = 0;
        if (ev != NULL && (q->kinds & kind) && json_array_append_new(arr, ev) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        if (ev != NULL && !(q->kinds & kind)) json_decref(ev);
    }
    *next_out = seq;
    *size_out = size;
    *out = arr;
    arr = NULL;
done:
    mlreg_meta_txn_abort(txn);
    json_decref(arr);
    return error;
}

/* How many waiters share @p rq's identity; under p->lock. */
static size_t identity_waiting(const event_polls *p, const request *rq)
{
    const char *me = mlreg_server__req_actor(rq);
    size_t n = 0;

    for (const request *w = p->head; w != NULL; w = w->poll_next)
        if (!strcmp(mlreg_server__req_actor(w), me)) n++;
    return n;
}

static enum MHD_Result reply_batch(request *rq, json_t *arr, uint64_t next)
{
    uint64_t len = 0;
    char val[24];
    struct MHD_Response *resp =
        mlreg_server__resp_json(arr, "application/cloudevents-batch+json", &len);

    json_decref(arr);
    snprintf(val, sizeof(val), "%llu", (unsigned long long)next);
    if (resp != NULL && (mlreg_server__resp_header(resp, "X-Mlreg-Next", val) < 0 ||
                         mlreg_server__resp_header(resp, "Cache-Control", "no-store") < 0)) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return mlreg_server__req_queue(rq, 200, resp, len);
}

static enum MHD_Result events_get(request *rq)
{
    event_polls *p = rq->srv->polls;
    events_query q;
    json_t *arr = NULL;
    uint64_t next = 0, size = 0, seen;
    int error;

    if ((error = parse_query(&q, rq)) < 0) return mlreg_server__reply_error(rq, error, rq->ctx);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        seen = p->commits;
        pthread_mutex_unlock(&p->lock);
        if ((error = scan(&arr, &next, &size, rq, &q)) < 0)
            return mlreg_server__reply_error(rq, error, rq->ctx);
        /* something to answer, more to read, or no wait asked for */
        if (json_array_size(arr) > 0 || next < size || q.timeout == 0) break;
        if (rq->poll_deadline_ms == 0) rq->poll_deadline_ms = now_ms() + (int64_t)q.timeout * 1000;
        if (now_ms() >= rq->poll_deadline_ms) break;
        pthread_mutex_lock(&p->lock);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        if (p->commits != seen) { /* a commit came while we looked: look again */
            pthread_mutex_unlock(&p->lock);
            json_decref(arr);
            arr = NULL;
            continue;
        }
        if (identity_waiting(p, rq) >= MLREG_SERVER_EVENT_POLLS_PER_IDENTITY) {
            pthread_mutex_unlock(&p->lock);
            json_decref(arr);
            mlreg_server__req_fail_raw(rq, 429, "TOOMANYREQUESTS",
                                       "'%s' has %d event long-polls waiting already; retry later",
                                       mlreg_server__req_actor(rq),
                                       MLREG_SERVER_EVENT_POLLS_PER_IDENTITY);
            mlreg_server__req_fail_header(rq, "Retry-After", "%d", 5);
            return mlreg_server__req_queue_error(rq);
        }
        if (p->n >= MLREG_SERVER_EVENT_POLLS_MAX) {
            pthread_mutex_unlock(&p->lock);
            json_decref(arr);
            mlreg_server__req_fail_raw(rq, 503, "UNAVAILABLE",
                                       "too many event long-polls are waiting (at most %d); "
                                       "retry later",
                                       MLREG_SERVER_EVENT_POLLS_MAX);
            mlreg_server__req_fail_header(rq, "Retry-After", "%d", 5);
            return mlreg_server__req_queue_error(rq);
        }
        MHD_suspend_connection(rq->conn);
        rq->poll_waiting = 1;
        rq->poll_next = p->head;
        p->head = rq;
        p->n++;
        pthread_cond_broadcast(&p->wake); /* the thread may need an earlier deadline */
        pthread_mutex_unlock(&p->lock);
        json_decref(arr);
        return MHD_YES;
    }
    return reply_batch(rq, arr, next);
}

/* ---- routes --------------------------------------------------------------- */

static const route_row event_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_GET, "/api/v1/events", ROUTE_ACCESS_READ_ALL, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL, NULL,
     events_get},
};

const route_table mlreg_server__event_routes = {event_rows,
                                                sizeof(event_rows) / sizeof(event_rows[0])};
