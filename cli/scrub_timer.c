/* scrub_timer.c: the scrub `mlreg serve` runs on its own every
 * scrub.interval (conf/README.md), in one background thread.
 *
 * The first scrub starts one interval after the server, so a restart does
 * not re-read the store at once. The thread sleeps on a condition variable
 * (CLOCK_MONOTONIC, so a clock step neither skips nor repeats a scrub) and
 * a running scrub polls the stop flag between reads and while it waits
 * for its rate limit, so a stop (SIGTERM) ends it within a read of 1 MiB.
 * Each scrub logs one summary line to stderr, and one line per damaged or
 * missing blob: digests and counts, nothing secret.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mlreg/common.h"
#include "mlreg/scrub.h"

struct cli_scrub_timer {
    mlreg_registry *reg;
    uint64_t interval; /* seconds */
    uint64_t rate;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_int stop;
};

static int should_stop(void *p)
{
    return atomic_load(&((cli_scrub_timer *)p)->stop);
}

static void log_items(const json_t *items, const char *what)
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

static void scrub_once(cli_scrub_timer *t)
{
    mlreg_scrub_opts o;
    json_t *rep = NULL;

    memset(&o, 0, sizeof(o));
    o.rate_bytes_per_second = t->rate;
    o.actor = "scrub.interval";
    o.should_stop = should_stop;
    o.stop_payload = t;
    if (mlreg_registry_scrub(&rep, t->reg, &o) < 0) {
        fprintf(stderr, "mlreg: scheduled scrub failed: %s\n", mlreg_error_last());
        return;
    }
    log_items(json_object_get(rep, "corrupt"), "corrupt");
    log_items(json_object_get(rep, "missing"), "missing");
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

static void *run(void *p)
{
    cli_scrub_timer *t = p;
    struct timespec due;

    clock_gettime(CLOCK_MONOTONIC, &due);
    for (;;) {
        int fire = 0;
        due.tv_sec += (time_t)t->interval;
        pthread_mutex_lock(&t->lock);
        while (!atomic_load(&t->stop) && !fire)
            fire = pthread_cond_timedwait(&t->wake, &t->lock, &due) != 0;
        pthread_mutex_unlock(&t->lock);
        if (atomic_load(&t->stop)) break;
        scrub_once(t);
        /* a scrub longer than the interval: the next starts one interval after it ends */
        {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > due.tv_sec) due = now;
        }
    }
    return NULL;
}

int cli_scrub_timer_start(cli_scrub_timer **out, mlreg_registry *reg, uint64_t interval,
                          uint64_t rate)
{
    cli_scrub_timer *t = NULL;
    pthread_condattr_t ca;
    int locked = 0, waked = 0;

    *out = NULL;
    if (interval == 0) return 0;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory starting the scrub timer");
    t->reg = reg;
    t->interval = interval;
    t->rate = rate;
    atomic_init(&t->stop, 0);
    if (pthread_mutex_init(&t->lock, NULL) != 0) goto fail;
    locked = 1;
    if (pthread_condattr_init(&ca) != 0) goto fail;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&t->wake, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        goto fail;
    }
    pthread_condattr_destroy(&ca);
    waked = 1;
    if (pthread_create(&t->thread, NULL, run, t) != 0) goto fail;
    *out = t;
    return 0;
fail:
    if (waked) pthread_cond_destroy(&t->wake);
    if (locked) pthread_mutex_destroy(&t->lock);
    free(t);
    return mlreg_error_set(MLREG_EIO, "cannot start the scrub timer thread");
}

void cli_scrub_timer_stop(cli_scrub_timer *t)
{
    if (t == NULL) return;
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->stop, 1);
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
