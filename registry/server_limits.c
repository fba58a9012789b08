/* server_limits.c: deadlines for request heads, and the housekeeping thread
 * that enforces them and expires idle upload sessions.
 *
 * libmicrohttpd's connection timeout counts inactivity: a client that sends
 * one header byte every few seconds is never idle, so it could hold a
 * connection forever, and a few hundred such clients every connection the
 * server has. So every connection carries a deadline of our own while it
 * owes us a request head: set at accept (header timeout), cleared when the
 * head is complete (first access-handler call), set again when a request
 * ends and the connection stays open for the next one (idle timeout). The
 * housekeeper shuts down the socket of any connection past its deadline;
 * libmicrohttpd then reads the end of the stream and closes the connection
 * itself, through its normal path (completion callback, access log).
 *
 * Why shutdown() from another thread is safe: a connection's state is in
 * the table from its STARTED notification to its CLOSED one, and
 * libmicrohttpd 0.9.75 closes the descriptor only after the CLOSED
 * notification returns. Both that notification and the sweep hold the
 * table's mutex, so the sweep never touches a descriptor that is closed (or
 * reused by a newer connection). The deadline itself is an atomic, so the
 * request path (two stores per request) never takes the mutex.
 */
#include "server_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mlreg/common.h"

/* How often the housekeeper looks at the deadlines and at idle sessions. */
#define SWEEP_MS        250
#define EXPIRE_EVERY_MS 1000

typedef struct conn_state {
    struct conn_state *prev, *next;
    int fd;
    _Atomic uint64_t deadline_ms; /* monotonic; 0 = no deadline (a request runs) */
    int shut;                     /* shut down by a sweep already */
} conn_state;

struct conn_table {
    pthread_mutex_t lock;
    conn_state *head;
    uint64_t header_ms;
    uint64_t idle_ms;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int conns_new(conn_table **out, unsigned int header_timeout, unsigned int idle_timeout)
{
    conn_table *t = calloc(1, sizeof(*t));

    if (!t) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return mlreg_error_set(MLREG_ENOMEM, "cannot create the connection table lock");
    }
    t->header_ms = (uint64_t)header_timeout * 1000u;
    t->idle_ms = (uint64_t)idle_timeout * 1000u;
    *out = t;
    return 0;
}

void conns_free(conn_table *t)
{
    if (!t) return;
    /* the daemon has stopped: every CLOSED notification has run, but free
     * whatever a failed start may have left */
    while (t->head) {
        conn_state *c = t->head;
        t->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
    conn_table *t = cls;
    conn_state *c;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = NULL;
        /* without memory or a descriptor the connection simply has no
         * deadline of ours; libmicrohttpd's inactivity timeout still holds */
        if (!info || !(c = calloc(1, sizeof(*c)))) return;
        c->fd = info->connect_fd;
        atomic_store(&c->deadline_ms, now_ms() + t->header_ms);
        pthread_mutex_lock(&t->lock);
        c->next = t->head;
        if (t->head) t->head->prev = c;
        t->head = c;
        pthread_mutex_unlock(&t->lock);
        *socket_context = c;
        return;
    }
    if (code != MHD_CONNECTION_NOTIFY_CLOSED || !(c = *socket_context)) return;
    pthread_mutex_lock(&t->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        t->head = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&t->lock);
    *socket_context = NULL;
    free(c);
}

static conn_state *state_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

void conns_head_received(struct MHD_Connection *conn)
{
    conn_state *c = state_of(conn);
    if (c) atomic_store(&c->deadline_ms, 0);
}

void conns_request_ended(conn_table *t, struct MHD_Connection *conn)
{
    conn_state *c = state_of(conn);
    if (c) atomic_store(&c->deadline_ms, now_ms() + t->idle_ms);
}

size_t conns_close_overdue(conn_table *t)
{
    size_t n = 0;
    uint64_t now = now_ms();

    pthread_mutex_lock(&t->lock);
    for (conn_state *c = t->head; c; c = c->next) {
        uint64_t d = atomic_load(&c->deadline_ms);
        if (c->shut || d == 0 || now < d) continue;
        shutdown(c->fd, SHUT_RDWR);
        c->shut = 1;
        n++;
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* ---- log throttling ----------------------------------------------------------- */

void log_throttled(log_throttle *lt, const char *msg)
{
    time_t now = time(NULL);
    unsigned int i, held = 0;

    pthread_mutex_lock(&lt->lock);
    for (i = 0; i < LOG_THROTTLE_SLOTS; i++)
        if (!strncmp(lt->slot[i].msg, msg, sizeof(lt->slot[i].msg) - 1)) break;
    if (i < LOG_THROTTLE_SLOTS && lt->slot[i].second == now) {
        lt->slot[i].held++;
        pthread_mutex_unlock(&lt->lock);
        return;
    }
    if (i == LOG_THROTTLE_SLOTS) {
        i = lt->next;
        lt->next = (lt->next + 1) % LOG_THROTTLE_SLOTS;
        snprintf(lt->slot[i].msg, sizeof(lt->slot[i].msg), "%s", msg);
    } else {
        held = lt->slot[i].held;
    }
    lt->slot[i].second = now;
    lt->slot[i].held = 0;
    pthread_mutex_unlock(&lt->lock);
    if (held)
        fprintf(stderr, "mlreg: http: %s (and %u more like it since the last one)\n", msg, held);
    else
        fprintf(stderr, "mlreg: http: %s\n", msg);
}

/* ---- the housekeeping thread ------------------------------------------------ */

static void *housekeeper_main(void *arg)
{
    mlreg_server *srv = arg;
    uint64_t next_expire = now_ms() + EXPIRE_EVERY_MS;

    pthread_mutex_lock(&srv->housekeeper_lock);
    while (!srv->housekeeper_stop) {
        struct timespec until;
        size_t n;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += SWEEP_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->housekeeper_wake, &srv->housekeeper_lock, &until);
        if (srv->housekeeper_stop) break;
        pthread_mutex_unlock(&srv->housekeeper_lock);

        if ((n = conns_close_overdue(srv->conns)) > 0)
            fprintf(stderr,
                    "mlreg: closed %zu connection%s that sent no complete request head in time\n",
                    n, n == 1 ? "" : "s");
        if (now_ms() >= next_expire) {
            next_expire = now_ms() + EXPIRE_EVERY_MS;
            if ((n = uploads_expire(srv->uploads)) > 0)
                fprintf(stderr, "mlreg: dropped %zu idle upload session%s and their temp files\n",
                        n, n == 1 ? "" : "s");
        }
        pthread_mutex_lock(&srv->housekeeper_lock);
    }
    pthread_mutex_unlock(&srv->housekeeper_lock);
    return NULL;
}

int housekeeper_start(mlreg_server *srv)
{
    srv->housekeeper_stop = 0;
    if (pthread_create(&srv->housekeeper, NULL, housekeeper_main, srv) != 0)
        return mlreg_error_set(MLREG_EIO, "cannot start the housekeeping thread");
    srv->housekeeper_running = 1;
    return 0;
}

void housekeeper_stop(mlreg_server *srv)
{
    if (!srv->housekeeper_running) return;
    pthread_mutex_lock(&srv->housekeeper_lock);
    srv->housekeeper_stop = 1;
    pthread_cond_signal(&srv->housekeeper_wake);
    pthread_mutex_unlock(&srv->housekeeper_lock);
    pthread_join(srv->housekeeper, NULL);
    srv->housekeeper_running = 0;
}
