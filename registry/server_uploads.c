/* server_uploads.c: in-memory upload sessions, keyed by a random uuid.
 *
 * Each session holds an open blob writer (the bytes go to a temp file of the
 * backend, invisible under any digest until commit), the repository it was
 * started for and the identity that opened it, the only one that may use it.
 * One request at a time may use a session: it claims the session (busy) in
 * its first callback and gives it back in its completion callback; a second
 * request meanwhile gets MLREG_ERANGE (416), never a shared writer. Sessions
 * are lost on restart; clients retry the upload.
 *
 * Every session holds a temp file and a descriptor, so nobody may hold too
 * many: an identity at most per_identity sessions, a repository at most
 * per_repository, the server at most a quarter of RLIMIT_NOFILE (capped at
 * MAX_SESSIONS). An identity over its quota gets MLREG_EQUOTA (429 with
 * Retry-After) and no other identity is affected; a repository's quota is
 * shared by whoever pushes there (by default twice an identity's, so one
 * token alone cannot fill it). A session unused for the idle
 * timeout is dropped with its temp file, by the housekeeping thread
 * (mlreg_server__uploads_expire) and before any new session is counted, and a session
 * never grows past max_bytes.
 */
#include "server_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mlreg/common.h"

#define MAX_SESSIONS 4096
#define MIN_SESSIONS 16

/* `writer`, `repo` and `owner` are owned by the session. `busy` (table
 * mutex) marks the single request allowed to use the session; that request
 * may then touch `writer` and `offset` without the mutex, except that it
 * updates `offset` under the mutex so status GETs read it safely. */
struct upload_session {
    char uuid[37];
    char *repo;
    char *owner; /* the identity that opened it: only it may use the session */
    mlreg_blob_writer *writer;
    uint64_t offset;
    int busy;
    time_t touched;
    struct upload_session *next;
};

struct upload_table {
    pthread_mutex_t lock;
    upload_session *head;
    size_t count;
    size_t max; /* each session holds an open temp file: a share of RLIMIT_NOFILE */
    upload_limits lim;
    char tag[MLREG_CLUSTER_TAG_LEN + 1]; /* this node's tag, or "" (one node) */
};

static void session_free(upload_session *s)
{
    if (!s) return;
    mlreg_blob_writer_abort(s->writer);
    free(s->repo);
    free(s->owner);
    free(s);
}

void mlreg_server__upload_limits(upload_limits *out, unsigned int per_identity,
                                 unsigned int per_repository, unsigned int idle_timeout,
                                 uint64_t max_bytes)
{
    out->per_identity = per_identity ? per_identity : MLREG_SERVER_DEFAULT_UPLOADS_PER_IDENTITY;
    out->per_repository =
        per_repository ? per_repository : MLREG_SERVER_DEFAULT_UPLOADS_PER_REPOSITORY;
    out->idle_timeout = idle_timeout ? idle_timeout : MLREG_SERVER_DEFAULT_UPLOAD_IDLE;
    out->max_bytes = max_bytes ? max_bytes : MLREG_SERVER_DEFAULT_MAX_UPLOAD_BYTES;
}

int mlreg_server__uploads_new(upload_table **out, const upload_limits *lim)
{
    upload_table *t = calloc(1, sizeof(*t));
    struct rlimit rl;

    if (!t) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    t->lim = *lim;
    /* a quarter of the descriptors at most, so sessions can never starve
     * accept() and blob reads of descriptors */
    t->max = MAX_SESSIONS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < t->max)
        t->max = rl.rlim_cur / 4 < MIN_SESSIONS ? MIN_SESSIONS : (size_t)(rl.rlim_cur / 4);
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return mlreg_error_set(MLREG_ENOMEM, "cannot create upload table lock");
    }
    *out = t;
    return 0;
}

void mlreg_server__uploads_free(upload_table *t)
{
    if (!t) return;
    while (t->head) {
        upload_session *s = t->head;
        t->head = s->next;
        session_free(s);
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Unlinks @p s from the list; the caller holds the lock. */
static void unlink_locked(upload_table *t, upload_session *s)
{
    for (upload_session **pp = &t->head; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            t->count--;
            return;
        }
    }
}

/* Removes idle, unclaimed sessions; returns them as a list to free outside
 * the lock (aborting a writer does file I/O). */
static upload_session *reap_locked(upload_table *t, time_t now)
{
    upload_session *dead = NULL;
    upload_session **pp = &t->head;
    while (*pp) {
        upload_session *s = *pp;
        if (!s->busy && now - s->touched >= (time_t)t->lim.idle_timeout) {
            *pp = s->next;
            t->count--;
            s->next = dead;
            dead = s;
        } else {
            pp = &s->next;
        }
    }
    return dead;
}

static size_t free_list(upload_session *dead)
{
    size_t n = 0;
    while (dead) {
        upload_session *next = dead->next;
        session_free(dead);
        dead = next;
        n++;
    }
    return n;
}

size_t mlreg_server__uploads_expire(upload_table *t)
{
    upload_session *dead;

    pthread_mutex_lock(&t->lock);
    dead = reap_locked(t, time(NULL));
    pthread_mutex_unlock(&t->lock);
    return free_list(dead);
}

/* Checks the quotas for a new session of @p owner in @p repo; the caller
 * holds the lock. 0, or MLREG_EQUOTA with *retry_after_out the seconds until
 * the soonest of the sessions that count against the quota can expire. */
static int quota_locked(unsigned int *retry_after_out, upload_table *t, const char *repo,
                        const char *owner, time_t now)
{
    size_t mine = 0, here = 0;
    time_t soonest_mine = 0, soonest_here = 0, soonest_all = 0, soonest = 0;
    int error = 0;

    for (upload_session *s = t->head; s; s = s->next) {
        /* a busy session is in use now: it can expire one idle timeout from now */
        time_t expires = (s->busy ? now : s->touched) + (time_t)t->lim.idle_timeout;
        if (!soonest_all || expires < soonest_all) soonest_all = expires;
        if (!strcmp(s->owner, owner)) {
            mine++;
            if (!soonest_mine || expires < soonest_mine) soonest_mine = expires;
        }
        if (!strcmp(s->repo, repo)) {
            here++;
            if (!soonest_here || expires < soonest_here) soonest_here = expires;
        }
    }
    if (mine >= t->lim.per_identity) {
        soonest = soonest_mine;
        error = mlreg_error_set(MLREG_EQUOTA,
                                "'%s' holds %zu upload sessions, the most one identity may: "
                                "finish or cancel one (DELETE), or wait for one to expire",
                                owner, mine);
    } else if (here >= t->lim.per_repository) {
        soonest = soonest_here;
        error = mlreg_error_set(MLREG_EQUOTA,
                                "repository %s has %zu upload sessions open, the most one "
                                "repository may",
                                repo, here);
    } else if (t->count >= t->max) {
        soonest = soonest_all;
        error = mlreg_error_set(MLREG_EQUOTA, "too many upload sessions in progress (%zu)", t->max);
    }
    if (error < 0) *retry_after_out = soonest > now ? (unsigned int)(soonest - now) : 1;
    return error;
}

/* A random (version 4) uuid; in a cluster its first 8 hex digits are the
 * node's tag, so another node knows where to forward the session's requests
 * (96 random bits remain). */
static void format_uuid(char out[37], const char *tag)
{
    unsigned char r[16];
    randombytes_buf(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    if (tag[0] != '\0') memcpy(out, tag, MLREG_CLUSTER_TAG_LEN);
}

void mlreg_server__uploads_set_tag(upload_table *t, const char *tag)
{
    snprintf(t->tag, sizeof(t->tag), "%s", tag);
}

int mlreg_server__upload_is_local(const upload_table *t, const char *uuid)
{
    return t->tag[0] == '\0' || strncmp(uuid, t->tag, MLREG_CLUSTER_TAG_LEN) == 0;
}

int mlreg_server__uploads_create(upload_session **out, unsigned int *retry_after_out,
                                 upload_table *t, mlreg_blobstore *store, const char *repo,
                                 const char *owner)
{
    int error = 0;
    upload_session *s = NULL, *dead = NULL;
    time_t now = time(NULL);

    if (!(s = calloc(1, sizeof(*s))) || !(s->repo = strdup(repo)) || !(s->owner = strdup(owner))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    /* counted before the writer exists, so a refused request opens no temp file */
    pthread_mutex_lock(&t->lock);
    dead = reap_locked(t, now);
    error = quota_locked(retry_after_out, t, repo, owner, now);
    pthread_mutex_unlock(&t->lock);
    if (error < 0) goto done;
    if ((error = mlreg_blobstore_open_write(&s->writer, store, -1)) < 0) goto done;
    format_uuid(s->uuid, t->tag);
    s->busy = 1;
    s->touched = now;

    /* re-checked: another request may have taken the last slot meanwhile */
    pthread_mutex_lock(&t->lock);
    if ((error = quota_locked(retry_after_out, t, repo, owner, now)) < 0) {
        pthread_mutex_unlock(&t->lock);
        goto done;
    }
    s->next = t->head;
    t->head = s;
    t->count++;
    pthread_mutex_unlock(&t->lock);
    *out = s;
    s = NULL;
done:
    free_list(dead);
    session_free(s);
    return error;
}

/* The session @p uuid of @p repo if @p owner opened it: to anybody else a
 * session does not exist, so a leaked upload URL is useless to another
 * token. */
static upload_session *find_locked(upload_table *t, const char *repo, const char *uuid,
                                   const char *owner)
{
    for (upload_session *s = t->head; s; s = s->next)
        if (!strcmp(s->uuid, uuid) && !strcmp(s->repo, repo) && !strcmp(s->owner, owner)) return s;
    return NULL;
}

int mlreg_server__uploads_acquire(upload_session **out, upload_table *t, const char *repo,
                                  const char *uuid, const char *owner)
{
    int error = 0;
    upload_session *s;

    pthread_mutex_lock(&t->lock);
    s = find_locked(t, repo, uuid, owner);
    if (!s)
        error = mlreg_error_set(MLREG_ENOTFOUND, "upload %s unknown in repository %s", uuid, repo);
    else if (s->busy)
        error = mlreg_error_set(MLREG_ERANGE, "upload %s is busy with another request", uuid);
    else {
        s->busy = 1;
        s->touched = time(NULL);
        *out = s;
    }
    pthread_mutex_unlock(&t->lock);
    return error;
}

int mlreg_server__uploads_offset(uint64_t *offset_out, upload_table *t, const char *repo,
                                 const char *uuid, const char *owner)
{
    int error = 0;
    upload_session *s;

    pthread_mutex_lock(&t->lock);
    s = find_locked(t, repo, uuid, owner);
    if (!s)
        error = mlreg_error_set(MLREG_ENOTFOUND, "upload %s unknown in repository %s", uuid, repo);
    else
        *offset_out = s->offset;
    pthread_mutex_unlock(&t->lock);
    return error;
}

int mlreg_server__upload_room(uint64_t max, uint64_t have, uint64_t more)
{
    if (more > max || have > max - more)
        return mlreg_error_set(MLREG_ETOOBIG,
                               "upload would grow past %" PRIu64
                               " bytes, the largest blob this registry accepts",
                               max);
    return 0;
}

int mlreg_server__uploads_check_room(const upload_table *t, const upload_session *s, uint64_t more)
{
    /* read without the lock: a reload may set it meanwhile */
    return mlreg_server__upload_room(__atomic_load_n(&t->lim.max_bytes, __ATOMIC_RELAXED),
                                     s->offset, more);
}

void mlreg_server__uploads_set_limits(upload_table *t, const upload_limits *lim)
{
    pthread_mutex_lock(&t->lock);
    t->lim.per_identity = lim->per_identity;
    t->lim.per_repository = lim->per_repository;
    t->lim.idle_timeout = lim->idle_timeout;
    __atomic_store_n(&t->lim.max_bytes, lim->max_bytes, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&t->lock);
}

int mlreg_server__uploads_write(upload_table *t, upload_session *s, const void *data, size_t len)
{
    int error;

    /* only the claiming request changes offset, so reading it here is safe */
    if ((error = mlreg_server__uploads_check_room(t, s, len)) < 0) return error;
    if ((error = mlreg_blob_writer_write(s->writer, data, len)) < 0) return error;
    pthread_mutex_lock(&t->lock);
    s->offset += len;
    s->touched = time(NULL);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

int mlreg_server__uploads_reserve(upload_session *s, uint64_t more)
{
    if (more > UINT64_MAX - s->offset) return 0; /* refused by the room check */
    return mlreg_blob_writer_reserve(s->writer, s->offset + more);
}

int mlreg_server__uploads_flush(upload_session *s)
{
    return mlreg_blob_writer_flush(s->writer);
}

/* The writer may still be hashing and writing the last bytes of the body
 * on its helper threads (mlreg_blob_writer_write()): they are finished
 * before the session is free, so the next request (a resumed PATCH, the
 * closing PUT) finds the offset, the hash and the temp file in agreement,
 * and an idle session holds no staging memory. */
void mlreg_server__uploads_release(upload_table *t, upload_session *s)
{
    if (mlreg_server__uploads_flush(s) < 0) {
        mlreg_server__uploads_remove(t, s);
        return;
    }
    pthread_mutex_lock(&t->lock);
    s->busy = 0;
    s->touched = time(NULL);
    pthread_mutex_unlock(&t->lock);
}

void mlreg_server__uploads_remove(upload_table *t, upload_session *s)
{
    pthread_mutex_lock(&t->lock);
    unlink_locked(t, s);
    pthread_mutex_unlock(&t->lock);
    session_free(s);
}

const char *mlreg_server__upload_uuid(const upload_session *s)
{
    return s->uuid;
}

uint64_t mlreg_server__upload_claimed_offset(const upload_session *s)
{
    return s->offset;
}

int mlreg_server__uploads_commit(mlreg_digest *out, upload_table *t, upload_session *s,
                                 const mlreg_digest *expected)
{
    /* the writer is consumed whatever the outcome, and the session ends with it */
    mlreg_blob_writer *w = s->writer;

    s->writer = NULL;
    mlreg_server__uploads_remove(t, s);
    return mlreg_blob_writer_commit(out, w, expected, -1);
}

void mlreg_server__uploads_count(size_t *count_out, size_t *max_out, upload_table *t)
{
    pthread_mutex_lock(&t->lock);
    *count_out = t->count;
    *max_out = t->max;
    pthread_mutex_unlock(&t->lock);
}
