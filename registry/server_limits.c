/* server_limits.c: connections per client address, deadlines for request
 * heads, and the housekeeping threads that enforce them and expire idle
 * upload sessions.
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
 * Connections are also counted per client address, here rather than with
 * libmicrohttpd's per-IP limit, because that one counts every IPv6 address
 * apart and one host usually has a whole /64: an IPv6 client counts by its
 * /64, an IPv4 one (also as ::ffff:a.b.c.d) by its address. A connection
 * over the limit is shut down at once and its requests are never run
 * (conns_refused()).
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

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "mlreg/common.h"
#include "mlreg/gc.h"
#include "mlreg/scrub.h"

/* How often the housekeepers look at the deadlines and at idle sessions. */
#define SWEEP_MS        250
#define EXPIRE_EVERY_MS 1000
/* How often the last uses of tokens are looked at (each written once a minute at most). */
#define TOKEN_USAGE_EVERY_MS 5000

/* Buckets of the per-address counts (a power of two). */
#define ADDR_BUCKETS 1024
/* Family byte + 8 bytes (an IPv6 /64) or 4 (an IPv4 address). */
#define ADDR_KEY_LEN 9

typedef struct addr_count {
    struct addr_count *next;
    unsigned char key[ADDR_KEY_LEN];
    unsigned int n;
} addr_count;

typedef struct conn_state {
    struct conn_state *prev, *next;
    int fd;
    _Atomic uint64_t deadline_ms; /* monotonic; 0 = no deadline (a request runs) */
    int shut;                     /* shut down already */
    int refused;                  /* over its address's limit: never served */
    int counted;                  /* counted in its address's addr_count */
    int peer;                     /* mutual TLS: 1 client certificate verified, -1 refused */
    unsigned char key[ADDR_KEY_LEN];
    conn_table *table; /* the table it is in, to find the server from a connection */
} conn_state;

struct conn_table {
    pthread_mutex_t lock;
    conn_state *head;
    size_t open; /* connections in the list (under lock) */
    uint64_t header_ms;
    uint64_t idle_ms;
    unsigned int per_address;
    addr_count *counts[ADDR_BUCKETS];
    mlreg_server *owner; /* set once before the daemon starts */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int mlreg_server__conns_new(conn_table **out, unsigned int header_timeout,
                            unsigned int idle_timeout, unsigned int per_address)
{
    conn_table *t = calloc(1, sizeof(*t));

    if (!t) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return mlreg_error_set(MLREG_ENOMEM, "cannot create the connection table lock");
    }
    t->header_ms = (uint64_t)header_timeout * 1000u;
    t->idle_ms = (uint64_t)idle_timeout * 1000u;
    t->per_address = per_address;
    *out = t;
    return 0;
}

void mlreg_server__conns_free(conn_table *t)
{
    if (!t) return;
    /* the daemon has stopped: every CLOSED notification has run, but free
     * whatever a failed start may have left */
    while (t->head) {
        conn_state *c = t->head;
        t->head = c->next;
        free(c);
    }
    for (size_t i = 0; i < ADDR_BUCKETS; i++)
        while (t->counts[i]) {
            addr_count *a = t->counts[i];
            t->counts[i] = a->next;
            free(a);
        }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int mlreg_server__conns_address_key(unsigned char key[ADDR_KEY_LEN], const struct sockaddr *sa)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(key, 0, ADDR_KEY_LEN);
    if (sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (!memcmp(a, v4mapped, sizeof(v4mapped))) {
            key[0] = 4;
            memcpy(key + 1, a + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a, 8);
        }
        return 0;
    }
    return -1;
}

static size_t key_bucket(const unsigned char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < ADDR_KEY_LEN; i++)
        h = (h ^ key[i]) * 16777619u;
    return h & (ADDR_BUCKETS - 1);
}

/* Counts @p c against its address; the caller holds the lock. 0, or -1
 * when the address is at its limit (or out of memory): not counted. */
static int count_locked(conn_table *t, conn_state *c)
{
    addr_count **pp = &t->counts[key_bucket(c->key)], *a;

    for (a = *pp; a && memcmp(a->key, c->key, ADDR_KEY_LEN); a = a->next)
        ;
    if (!a) {
        if (!(a = calloc(1, sizeof(*a)))) return -1;
        memcpy(a->key, c->key, ADDR_KEY_LEN);
        a->next = *pp;
        *pp = a;
    }
    if (a->n >= t->per_address) return -1;
    a->n++;
    c->counted = 1;
    return 0;
}

static void uncount_locked(conn_table *t, const conn_state *c)
{
    addr_count **pp = &t->counts[key_bucket(c->key)];

    for (; *pp; pp = &(*pp)->next) {
        addr_count *a = *pp;
        if (memcmp(a->key, c->key, ADDR_KEY_LEN)) continue;
        if (--a->n == 0) {
            *pp = a->next;
            free(a);
        }
        return;
    }
}

void mlreg_server__conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                                enum MHD_ConnectionNotificationCode code)
{
    conn_table *t = cls;
    conn_state *c;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *peer =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        int keyed;
        *socket_context = NULL;
        /* without memory or a descriptor the connection simply has no
         * state of ours; libmicrohttpd's limits and timeout still hold */
        if (!fd || !(c = calloc(1, sizeof(*c)))) return;
        c->fd = fd->connect_fd;
        c->table = t;
        atomic_store(&c->deadline_ms, now_ms() + t->header_ms);
        keyed = peer && peer->client_addr &&
                mlreg_server__conns_address_key(c->key, peer->client_addr) == 0;
        pthread_mutex_lock(&t->lock);
        if (keyed && count_locked(t, c) < 0) {
            c->refused = 1;
            c->shut = 1;
            shutdown(c->fd, SHUT_RDWR);
        }
        c->next = t->head;
        if (t->head) t->head->prev = c;
        t->head = c;
        t->open++;
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
    if (c->counted) uncount_locked(t, c);
    t->open--;
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

void mlreg_server__conns_set_owner(conn_table *t, mlreg_server *srv)
{
    t->owner = srv;
}

mlreg_server *mlreg_server__conns_owner(struct MHD_Connection *conn)
{
    conn_state *c = state_of(conn);
    return c ? c->table->owner : NULL;
}

int mlreg_server__conns_head_received(struct MHD_Connection *conn)
{
    conn_state *c = state_of(conn);
    if (!c) return 0;
    if (c->refused) return -1;
    atomic_store(&c->deadline_ms, 0);
    return 0;
}

int mlreg_server__conns_peer_verdict(struct MHD_Connection *conn)
{
    conn_state *c = state_of(conn);
    return c ? c->peer : 0;
}

void mlreg_server__conns_set_peer_verdict(struct MHD_Connection *conn, int verdict)
{
    conn_state *c = state_of(conn);
    if (c) c->peer = verdict;
}

void mlreg_server__conns_request_ended(conn_table *t, struct MHD_Connection *conn)
{
    conn_state *c = state_of(conn);
    if (c) atomic_store(&c->deadline_ms, now_ms() + t->idle_ms);
}

size_t mlreg_server__conns_close_overdue(conn_table *t)
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

void mlreg_server__log_throttled(log_throttle *lt, const char *msg)
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

/* ---- the housekeeping threads ---------------------------------------------- */

static void close_overdue_job(mlreg_server *srv)
{
    size_t n = mlreg_server__conns_close_overdue(srv->conns);
    if (n > 0)
        fprintf(stderr,
                "mlreg: closed %zu connection%s that sent no complete request head in time\n", n,
                n == 1 ? "" : "s");
}

static void expire_uploads_job(mlreg_server *srv)
{
    size_t n = mlreg_server__uploads_expire(srv->uploads);
    if (n > 0)
        fprintf(stderr, "mlreg: dropped %zu idle upload session%s and their temp files\n", n,
                n == 1 ? "" : "s");
}

/* A scheduled garbage collection: its summary goes to the log, with a
 * line for each release retention purged or could not purge. */
static void gc_job(mlreg_server *srv)
{
    mlreg_gc_opts o = {.grace_seconds = srv->gc_grace,
                       .stale_upload_seconds = srv->gc_stale,
                       .actor = MLREG_AUTH_SCHEDULED,
                       .retention = srv->retention,
                       .n_retention = srv->n_retention,
                       .who = mlreg_auth_scheduled()};
    json_t *r = NULL, *ret, *b;
    size_t i;
    server_conf *conf = mlreg_server__conf_acquire(srv);
    int error;

    o.policy = conf->policy;
    error = mlreg_registry_gc(&r, srv->reg, &o);
    mlreg_server__conf_release(conf);
    if (error < 0) {
        fprintf(stderr, "mlreg: scheduled garbage collection failed: %s\n", mlreg_error_last());
        mlreg_error_clear();
        return;
    }
    ret = json_object_get(r, "retention");
    json_array_foreach(json_object_get(ret, "purged"), i, b)
    {
        fprintf(stderr, "mlreg: retention purged %s@%s (entry %lld): %s\n",
                json_string_value(json_object_get(b, "model")),
                json_string_value(json_object_get(b, "version")),
                (long long)json_integer_value(json_object_get(b, "seq")),
                json_string_value(json_object_get(b, "why")));
    }
    json_array_foreach(json_object_get(ret, "not_purged"), i, b)
    {
        fprintf(stderr, "mlreg: retention could not purge %s@%s: %s\n",
                json_string_value(json_object_get(b, "model")),
                json_string_value(json_object_get(b, "version")),
                json_string_value(json_object_get(b, "error")));
    }
    fprintf(
        stderr,
        "mlreg: garbage collection: %lld release(s) purged by retention, %lld not purged, "
        "%lld blob(s) deleted, %lld bytes reclaimed, %lld not deleted, %lld stale upload(s) "
        "removed, in %.1f s\n",
        (long long)json_array_size(json_object_get(json_object_get(r, "retention"), "purged")),
        (long long)json_array_size(json_object_get(json_object_get(r, "retention"), "not_purged")),
        (long long)json_integer_value(json_object_get(r, "deleted_blobs")),
        (long long)json_integer_value(json_object_get(r, "bytes_reclaimed")),
        (long long)json_array_size(json_object_get(r, "not_deleted")),
        (long long)json_integer_value(json_object_get(r, "stale_uploads")),
        json_real_value(json_object_get(r, "seconds")));
    json_decref(r);
}

/* 1 once the server is stopping: a running scrub ends within one read. */
static int housekeeper_stopping(void *payload)
{
    mlreg_server *srv = payload;
    int stop;

    pthread_mutex_lock(&srv->housekeeper_lock);
    stop = srv->housekeeper_stop;
    pthread_mutex_unlock(&srv->housekeeper_lock);
    return stop;
}

static void log_scrub_items(const json_t *items, const char *what)
{
    const json_t *it;
    size_t i;

    json_array_foreach(items, i, it)
    {
        fprintf(stderr, "mlreg: scrub: %s %s (%zu release%s)%s\n", what,
                json_string_value(json_object_get(it, "digest")),
                json_array_size(json_object_get(it, "releases")),
                json_array_size(json_object_get(it, "releases")) == 1 ? "" : "s",
                json_is_true(json_object_get(it, "quarantined")) ? ", quarantined" : "");
    }
}

/* A scheduled scrub: one line per damaged or missing blob (digests and
 * counts, nothing secret) and a summary line go to the log. */
static void scrub_job(mlreg_server *srv)
{
    mlreg_scrub_opts o;
    json_t *rep = NULL;

    memset(&o, 0, sizeof(o));
    o.rate_bytes_per_second = srv->scrub_rate;
    o.actor = "scrub.interval";
    o.should_stop = housekeeper_stopping;
    o.stop_payload = srv;
    if (mlreg_registry_scrub(&rep, srv->reg, &o) < 0) {
        fprintf(stderr, "mlreg: scheduled scrub failed: %s\n", mlreg_error_last());
        mlreg_error_clear();
        return;
    }
    log_scrub_items(json_object_get(rep, "corrupt"), "corrupt");
    log_scrub_items(json_object_get(rep, "missing"), "missing");
    fprintf(stderr,
            "mlreg: scrub: %" JSON_INTEGER_FORMAT " blobs, %" JSON_INTEGER_FORMAT
            " bytes in %.1f s: %zu corrupt, %zu missing, %" JSON_INTEGER_FORMAT " quarantined%s\n",
            json_integer_value(json_object_get(rep, "checked")),
            json_integer_value(json_object_get(rep, "bytes")),
            json_number_value(json_object_get(rep, "seconds")),
            json_array_size(json_object_get(rep, "corrupt")),
            json_array_size(json_object_get(rep, "missing")),
            json_integer_value(json_object_get(rep, "quarantined")),
            json_is_true(json_object_get(rep, "stopped")) ? " (stopped)" : "");
    json_decref(rep);
}

/* The last uses of runtime tokens seen by this node, written at most once
 * a minute per token (tokens.h); apart from the request path, since the
 * write may wait for a change holding LMDB's write lock. */
static void token_usage_job(mlreg_server *srv)
{
    if (mlreg_tokens_flush_usage(mlreg_registry_tokens(srv->reg), 0) < 0)
        fprintf(stderr, "mlreg: tokens: last uses not written: %s\n", mlreg_error_last());
}

static const housekeeping_job jobs[HOUSEKEEPERS_MAX] = {
    {NULL, SWEEP_MS, close_overdue_job},
    {NULL, EXPIRE_EVERY_MS, expire_uploads_job},
    {NULL, 0, gc_job},    /* every srv->gc_interval seconds, when set */
    {NULL, 0, scrub_job}, /* every srv->scrub_interval seconds, when set */
    {NULL, TOKEN_USAGE_EVERY_MS, token_usage_job},
};

/* Runs @p arg's job every few hundred milliseconds until mlreg_server__housekeeper_stop(). */
static void *housekeeper_main(void *arg)
{
    const housekeeping_job *j = arg;
    mlreg_server *srv = j->srv;

    pthread_mutex_lock(&srv->housekeeper_lock);
    while (!srv->housekeeper_stop) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(j->every_ms / 1000);
        until.tv_nsec += (long)(j->every_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        /* only the deadline or the stop: a spurious wake-up runs nothing early */
        while (!srv->housekeeper_stop &&
               pthread_cond_timedwait(&srv->housekeeper_wake, &srv->housekeeper_lock, &until) !=
                   ETIMEDOUT)
            ;
        if (srv->housekeeper_stop) break;
        pthread_mutex_unlock(&srv->housekeeper_lock);
        j->job(srv);
        pthread_mutex_lock(&srv->housekeeper_lock);
    }
    pthread_mutex_unlock(&srv->housekeeper_lock);
    return NULL;
}

int mlreg_server__housekeeper_start(mlreg_server *srv)
{
    srv->housekeeper_stop = 0;
    for (size_t i = 0; i < HOUSEKEEPERS_MAX; i++) {
        srv->housekeeping[i] = jobs[i];
        srv->housekeeping[i].srv = srv;
        if (jobs[i].job == gc_job) {
            if (srv->gc_interval == 0) continue;
            srv->housekeeping[i].every_ms = (uint64_t)srv->gc_interval * 1000u;
        }
        if (jobs[i].job == scrub_job) {
            if (srv->scrub_interval == 0) continue;
            srv->housekeeping[i].every_ms = srv->scrub_interval * 1000u;
        }
        if (pthread_create(&srv->housekeeper[srv->housekeepers], NULL, housekeeper_main,
                           &srv->housekeeping[i]) != 0)
            return mlreg_error_set(MLREG_EIO, "cannot start a housekeeping thread");
        srv->housekeepers++;
    }
    return 0;
}

void mlreg_server__housekeeper_stop(mlreg_server *srv)
{
    if (!srv->housekeepers) return;
    pthread_mutex_lock(&srv->housekeeper_lock);
    srv->housekeeper_stop = 1;
    pthread_cond_broadcast(&srv->housekeeper_wake);
    pthread_mutex_unlock(&srv->housekeeper_lock);
    for (int i = 0; i < srv->housekeepers; i++)
        pthread_join(srv->housekeeper[i], NULL);
    srv->housekeepers = 0;
}

size_t mlreg_server__conns_open(conn_table *t)
{
    size_t n;

    pthread_mutex_lock(&t->lock);
    n = t->open;
    pthread_mutex_unlock(&t->lock);
    return n;
}
