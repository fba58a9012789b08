/* server_uploads.c: in-memory upload sessions, keyed by a random uuid.
 *
 * Each session holds an open blob writer (the bytes go to a temp file of the
 * backend, invisible under any digest until commit) and the repository it
 * was started for. One request at a time may use a session: it claims the
 * session (busy) in its first callback and gives it back in its completion
 * callback; a second request meanwhile gets MLREG_ERANGE (416), never a
 * shared writer. Sessions are lost on restart; clients retry the upload.
 *
 * Abandoned sessions would keep a temp file open forever, so sessions idle
 * for longer than SESSION_IDLE_MAX are reaped whenever a new one is created,
 * and the table holds at most a quarter of RLIMIT_NOFILE sessions (capped at
 * MAX_SESSIONS); beyond that a new upload gets 429 TOOMANYREQUESTS.
 */
#include "server_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mlreg/common.h"

#define MAX_SESSIONS     4096
#define MIN_SESSIONS     16
#define SESSION_IDLE_MAX (24 * 3600)

struct upload_table {
    pthread_mutex_t lock;
    upload_session *head;
    size_t count;
    size_t max; /* each session holds an open temp file: a share of RLIMIT_NOFILE */
};

static void session_free(upload_session *s)
{
    if (!s) return;
    mlreg_blob_writer_abort(s->writer);
    free(s->repo);
    free(s);
}

int uploads_new(upload_table **out)
{
    upload_table *t = calloc(1, sizeof(*t));
    struct rlimit rl;

    if (!t) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
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

void uploads_free(upload_table *t)
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
        if (!s->busy && now - s->touched > SESSION_IDLE_MAX) {
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

static void format_uuid(char out[37])
{
    unsigned char r[16];
    randombytes_buf(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

int uploads_create(upload_session **out, upload_table *t, mlreg_blobstore *store, const char *repo)
{
    int error = 0;
    upload_session *s = NULL, *dead = NULL;
    time_t now = time(NULL);

    if (!(s = calloc(1, sizeof(*s))) || !(s->repo = strdup(repo))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = mlreg_blobstore_open_write(&s->writer, store, -1)) < 0) goto done;
    format_uuid(s->uuid);
    s->busy = 1;
    s->touched = now;

    pthread_mutex_lock(&t->lock);
    dead = reap_locked(t, now);
    if (t->count >= t->max) {
        pthread_mutex_unlock(&t->lock);
        error =
            mlreg_error_set(MLREG_ETOOBIG, "too many upload sessions in progress (%zu)", t->max);
        goto done;
    }
    s->next = t->head;
    t->head = s;
    t->count++;
    pthread_mutex_unlock(&t->lock);
    *out = s;
    s = NULL;
done:
    while (dead) {
        upload_session *next = dead->next;
        session_free(dead);
        dead = next;
    }
    session_free(s);
    return error;
}

static upload_session *find_locked(upload_table *t, const char *repo, const char *uuid)
{
    for (upload_session *s = t->head; s; s = s->next)
        if (!strcmp(s->uuid, uuid) && !strcmp(s->repo, repo)) return s;
    return NULL;
}

int uploads_acquire(upload_session **out, upload_table *t, const char *repo, const char *uuid)
{
    int error = 0;
    upload_session *s;

    pthread_mutex_lock(&t->lock);
    s = find_locked(t, repo, uuid);
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

int uploads_offset(uint64_t *offset_out, upload_table *t, const char *repo, const char *uuid)
{
    int error = 0;
    upload_session *s;

    pthread_mutex_lock(&t->lock);
    s = find_locked(t, repo, uuid);
    if (!s)
        error = mlreg_error_set(MLREG_ENOTFOUND, "upload %s unknown in repository %s", uuid, repo);
    else
        *offset_out = s->offset;
    pthread_mutex_unlock(&t->lock);
    return error;
}

int uploads_write(upload_table *t, upload_session *s, const void *data, size_t len)
{
    int error = mlreg_blob_writer_write(s->writer, data, len);
    if (error < 0) return error;
    pthread_mutex_lock(&t->lock);
    s->offset += len;
    s->touched = time(NULL);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

void uploads_release(upload_table *t, upload_session *s)
{
    pthread_mutex_lock(&t->lock);
    s->busy = 0;
    s->touched = time(NULL);
    pthread_mutex_unlock(&t->lock);
}

void uploads_remove(upload_table *t, upload_session *s)
{
    pthread_mutex_lock(&t->lock);
    unlink_locked(t, s);
    pthread_mutex_unlock(&t->lock);
    session_free(s);
}
