/* events.c: the audit log's committed changes as CloudEvents 1.0, the
 * `webhooks` config, and their delivery (events.h; docs/operations.md
 * "Events and webhooks").
 *
 * The log is the durable queue. Each webhook has one thread with a cursor,
 * the next seq it looks at, kept in `data_dir/events/<id>.cursor` (id: the
 * first 16 hex digits of SHA-256 of the URL; URLs are unique in the
 * config). The thread walks the log from the cursor: an entry that is no
 * event, or not one the webhook asked for, only moves the cursor; an event
 * is POSTed until the receiver accepts it (2xx), then the cursor moves past
 * it and is written (atomically, fsync'd) before the next one is sent. So
 * delivery is at least once, in log order, and a restart resends at most
 * the one event in flight. A mutation never waits: it wakes the threads
 * through the registry's commit listeners.
 *
 * Failures: network errors, timeouts, 408, 429 and 5xx are retried forever
 * with exponential backoff from 1 s up to retry_max_seconds (the queue
 * waits: order holds). Any other 4xx means the receiver refuses this event;
 * after give_up_after such answers the event is dropped (counted, logged)
 * so that one event the receiver cannot take does not stop the rest.
 */
#include "mlreg/events.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/config.h"
#include "mlreg/digest.h"
#include "mlreg/file.h"
#include "mlreg/names.h"
#include "mlreg/registry.h"
#include "mlreg/version.h"

#define DEFAULT_TIMEOUT_S     10
#define DEFAULT_RETRY_MAX_S   60
#define DEFAULT_REFUSED_TRIES 5
/* a cursor file holds one decimal number */
#define CURSOR_FILE_MAX 64
/* cursor moves over entries that are no event are written at most this often */
#define CURSOR_SKIP_FLUSH 256
/* the threads look at the log this often even without a commit notice */
#define POLL_MS 2000

static const struct {
    const char *name;
    unsigned int kind;
} kinds[] = {
    {"push", MLREG_EVENT_PUSH},         {"promote", MLREG_EVENT_PROMOTE},
    {"refuse", MLREG_EVENT_REFUSE},     {"rollback", MLREG_EVENT_ROLLBACK},
    {"withdraw", MLREG_EVENT_WITHDRAW}, {"unwithdraw", MLREG_EVENT_UNWITHDRAW},
    {"sign", MLREG_EVENT_SIGN},         {"purge", MLREG_EVENT_PURGE},
    {"approve", MLREG_EVENT_APPROVE},   {"image", MLREG_EVENT_IMAGE},
    {"evaluate", MLREG_EVENT_EVALUATE},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

unsigned int mlreg_event_kind(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strlen(kinds[i].name) == len && !memcmp(kinds[i].name, name, len)) return kinds[i].kind;
    return 0;
}

const char *mlreg_event_kind_name(unsigned int kind)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i].kind == kind) return kinds[i].name;
    return NULL;
}

/* ---- config ------------------------------------------------------------- */

static void hook_clear(mlreg_webhook *h)
{
    free(h->url);
    free(h->secret_file);
    free(h->models);
    if (h->secret != NULL) sodium_free(h->secret); /* sodium_free wipes */
    memset(h, 0, sizeof(*h));
}

void mlreg_webhooks_free(mlreg_webhooks *w)
{
    if (w == NULL) return;
    for (size_t i = 0; i < w->n; i++)
        hook_clear(&w->hooks[i]);
    free(w->hooks);
    free(w);
}

/* A URL the delivery may POST to: http(s)://HOST..., printable ASCII, no
 * spaces, within MLREG_WEBHOOK_URL_MAX. */
static int url_valid(const char *u, size_t len)
{
    size_t skip;

    if (len > MLREG_WEBHOOK_URL_MAX) return 0;
    if (!strncmp(u, "http://", 7))
        skip = 7;
    else if (!strncmp(u, "https://", 8))
        skip = 8;
    else
        return 0;
    if (len == skip || u[skip] == '/' || u[skip] == '?' || u[skip] == '#') return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f) return 0;
    return 1;
}

/* Reads the secret file of webhook @p label into sodium_malloc memory: a
 * regular file, mode 0600 or stricter (as the audit log key and the TLS
 * key), one trailing newline cut (so `$(cat FILE)` gives the same key),
 * MLREG_WEBHOOK_SECRET_MIN to _MAX bytes, no NUL. */
static int read_secret(mlreg_webhook *h, const char *label)
{
    int error = 0, fd = -1;
    struct stat st;
    char *buf = NULL;
    size_t len = 0;

    if ((fd = open(h->secret_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0 ||
        fstat(fd, &st) < 0) {
        error = mlreg_error_set(MLREG_EIO, "config key '%s.secret_file': %s: %s", label,
                                h->secret_file, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        error =
            mlreg_error_set(MLREG_EINVALID, "config key '%s.secret_file': %s is not a regular file",
                            label, h->secret_file);
        goto done;
    }
    if ((st.st_mode & 077) != 0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "config key '%s.secret_file': %s has mode %04o; want 0600 (other "
                                "users may read the secret): chmod 600 %s",
                                label, h->secret_file, (unsigned int)(st.st_mode & 07777),
                                h->secret_file);
        goto done;
    }
    if ((error = mlreg_file_read_fd(&buf, &len, fd, h->secret_file, MLREG_WEBHOOK_SECRET_MAX + 2)) <
        0) {
        error = mlreg_error_set(error == MLREG_ENOMEM ? MLREG_ENOMEM : MLREG_EINVALID,
                                "config key '%s.secret_file': %s", label, mlreg_error_last());
        goto done;
    }
    if (len > 0 && buf[len - 1] == '\n') len--;
    if (len > 0 && buf[len - 1] == '\r') len--;
    if (len < MLREG_WEBHOOK_SECRET_MIN || len > MLREG_WEBHOOK_SECRET_MAX ||
        memchr(buf, '\0', len) != NULL) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "config key '%s.secret_file': %s must hold %d to %d bytes and no "
                                "NUL byte (e.g. openssl rand -hex 32 > FILE)",
                                label, h->secret_file, MLREG_WEBHOOK_SECRET_MIN,
                                MLREG_WEBHOOK_SECRET_MAX);
        goto done;
    }
    if (sodium_init() < 0) {
        error = mlreg_error_set(MLREG_EIO, "libsodium initialisation failed");
        goto done;
    }
    if ((h->secret = sodium_malloc(len)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(h->secret, buf, len);
    h->secret_len = len;
done:
    if (buf != NULL) {
        sodium_memzero(buf, len);
        free(buf);
    }
    if (fd >= 0) close(fd);
    return error;
}

static int get_nonempty_string(const char **out, const json_t *v, const char *label,
                               const char *key)
{
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s' must be a non-empty string",
                               label, key);
    *out = json_string_value(v);
    return 0;
}

static int get_seconds(unsigned int *out, const json_t *v, const char *label, const char *key,
                       unsigned int max)
{
    json_int_t n;

    if (!json_is_integer(v))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s.%s' must be an integer", label, key);
    n = json_integer_value(v);
    if (n < 1 || n > (json_int_t)max)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s.%s' must be between 1 and %u (got %lld)", label, key,
                               max, (long long)n);
    *out = (unsigned int)n;
    return 0;
}

/* `events`: a non-empty array of distinct kind names. */
static int parse_kinds(unsigned int *out, const json_t *arr, const char *label)
{
    size_t i;
    const json_t *v;
    unsigned int mask = 0, k;

    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s.events' must be a non-empty array of event names",
                               label);
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) ||
            (k = mlreg_event_kind(json_string_value(v), json_string_length(v))) == 0)
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s.events[%zu]': unknown event (use push, promote, "
                                   "refuse, rollback, withdraw, unwithdraw, sign, purge, approve, "
                                   "image, evaluate)",
                                   label, i);
        if (mask & k)
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s.events[%zu]': '%s' is listed twice", label, i,
                                   json_string_value(v));
        mask |= k;
    }
    *out = mask;
    return 0;
}

static int parse_hook(mlreg_webhook *h, const json_t *obj, size_t idx, const char *config_path)
{
    const char *key, *s = NULL;
    json_t *v;
    char label[32];
    int error;

    snprintf(label, sizeof(label), "webhooks[%zu]", idx);
    h->events = MLREG_EVENT_ALL;
    h->timeout_s = DEFAULT_TIMEOUT_S;
    h->retry_max_s = DEFAULT_RETRY_MAX_S;
    h->refused_tries = DEFAULT_REFUSED_TRIES;
    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be an object", label);
    json_object_foreach((json_t *)obj, key, v)
    {
        if (!strcmp(key, "url")) {
            if ((error = get_nonempty_string(&s, v, label, key)) < 0) return error;
            if (!url_valid(s, strlen(s)))
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key '%s.url' must be an http:// or https:// URL of "
                                       "at most %d printable characters",
                                       label, MLREG_WEBHOOK_URL_MAX);
            if ((error = mlreg_config_set_string(&h->url, s)) < 0) return error;
        } else if (!strcmp(key, "secret_file")) {
            if ((error = get_nonempty_string(&s, v, label, key)) < 0) return error;
            free(h->secret_file);
            h->secret_file = NULL;
            if ((error = mlreg_config_resolve_path(&h->secret_file, config_path ? config_path : "",
                                                   s)) < 0)
                return error;
        } else if (!strcmp(key, "events")) {
            if ((error = parse_kinds(&h->events, v, label)) < 0) return error;
        } else if (!strcmp(key, "models")) {
            if ((error = get_nonempty_string(&s, v, label, key)) < 0) return error;
            if (strlen(s) > MLREG_WEBHOOK_PREFIX_MAX || mlreg_name_validate(s) < 0)
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key '%s.models': '%.64s' is not a model name "
                                       "prefix (a model name such as 'vision': it covers vision "
                                       "and every model under vision/)",
                                       label, s);
            if ((error = mlreg_config_set_string(&h->models, s)) < 0) return error;
        } else if (!strcmp(key, "timeout_seconds")) {
            if ((error = get_seconds(&h->timeout_s, v, label, key, 300)) < 0) return error;
        } else if (!strcmp(key, "retry_max_seconds")) {
            if ((error = get_seconds(&h->retry_max_s, v, label, key, 3600)) < 0) return error;
        } else if (!strcmp(key, "give_up_after")) {
            if ((error = get_seconds(&h->refused_tries, v, label, key, 1000)) < 0) return error;
        } else {
            return mlreg_error_set(MLREG_EINVALID, "unknown config key '%s.%s'", label, key);
        }
    }
    if (h->url == NULL)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' lacks \"url\"", label);
    if (h->secret_file == NULL)
        return mlreg_error_set(
            MLREG_EINVALID, "config key '%s' lacks \"secret_file\" (every event is signed)", label);
    return read_secret(h, label);
}

int mlreg_webhooks_parse(mlreg_webhooks **out, const json_t *arr, const char *config_path)
{
    int error = 0;
    mlreg_webhooks *w = NULL;
    size_t n;

    if (!json_is_array(arr)) {
        error = mlreg_error_set(MLREG_EINVALID, "config key 'webhooks' must be an array");
        goto done;
    }
    n = json_array_size(arr);
    if (n > MLREG_WEBHOOKS_MAX) {
        error = mlreg_error_set(MLREG_EINVALID, "config key 'webhooks' holds more than %d entries",
                                MLREG_WEBHOOKS_MAX);
        goto done;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL ||
        (n > 0 && (w->hooks = calloc(n, sizeof(*w->hooks))) == NULL)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        w->n = i + 1; /* so mlreg_webhooks_free sees partial entries */
        if ((error = parse_hook(&w->hooks[i], json_array_get(arr, i), i, config_path)) < 0)
            goto done;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(w->hooks[j].url, w->hooks[i].url)) {
                error = mlreg_error_set(MLREG_EINVALID,
                                        "config key 'webhooks[%zu].url': the same URL as "
                                        "webhooks[%zu] (each URL has one delivery queue)",
                                        i, j);
                goto done;
            }
    }
    *out = w;
    w = NULL;
done:
    mlreg_webhooks_free(w);
    return error;
}

/* ---- the CloudEvent of an entry ---------------------------------------------- */

/* The kind of an entry's action and result; 0 when it is no event. */
static unsigned int entry_kind(const char *action, const char *result)
{
    int refused = result != NULL && !strcmp(result, MLREG_AUDIT_REFUSED);

    if (!strcmp(action, MLREG_AUDIT_PUSH)) return MLREG_EVENT_PUSH;
    if (!strcmp(action, MLREG_AUDIT_PROMOTE))
        return refused ? MLREG_EVENT_REFUSE : MLREG_EVENT_PROMOTE;
    if (!strcmp(action, MLREG_AUDIT_ROLLBACK))
        return refused ? MLREG_EVENT_REFUSE : MLREG_EVENT_ROLLBACK;
    if (!strcmp(action, MLREG_AUDIT_RELEASE_WITHDRAW)) return MLREG_EVENT_WITHDRAW;
    if (!strcmp(action, MLREG_AUDIT_RELEASE_UNWITHDRAW)) return MLREG_EVENT_UNWITHDRAW;
    if (!strcmp(action, MLREG_AUDIT_SIGNATURE_ATTACH)) return MLREG_EVENT_SIGN;
    if (!strcmp(action, MLREG_AUDIT_RELEASE_PURGE)) return MLREG_EVENT_PURGE;
    if (!strcmp(action, MLREG_AUDIT_APPROVE)) return MLREG_EVENT_APPROVE;
    if (!strcmp(action, MLREG_AUDIT_IMAGE_BIND)) return MLREG_EVENT_IMAGE;
    if (!strcmp(action, MLREG_AUDIT_EVALUATION_ATTEST)) return MLREG_EVENT_EVALUATE;
    return 0;
}

/* @p v, or JSON null when it is NULL (a new reference either way). */
static json_t *or_null(json_t *v)
{
    return v != NULL ? json_incref(v) : json_null();
}

int mlreg_event_from_entry(json_t **out, unsigned int *kind_out, const char *text, size_t len,
                           const char *source, const char *log_id)
{
    int error = 0;
    json_t *entry = NULL, *ev = NULL, *data = NULL, *subject, *details, *v;
    const char *action, *result, *time, *model, *version;
    json_int_t seq;
    unsigned int kind;
    char id[160], type[64], *subj = NULL;

    *out = NULL;
    entry = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    action = json_string_value(json_object_get(entry, "action"));
    result = json_string_value(json_object_get(entry, "result"));
    time = json_string_value(json_object_get(entry, "time"));
    subject = json_object_get(entry, "subject");
    v = json_object_get(entry, "seq");
    if (!json_is_object(entry) || action == NULL || result == NULL || time == NULL ||
        !json_is_object(subject) || !json_is_integer(v) || json_integer_value(v) < 0 ||
        !json_is_string(json_object_get(entry, "actor"))) {
        error = mlreg_error_set(MLREG_EINVALID, "not an audit entry");
        goto done;
    }
    seq = json_integer_value(v);
    if ((kind = entry_kind(action, result)) == 0) {
        error = 1;
        goto done;
    }
    model = json_string_value(json_object_get(subject, "model"));
    version = json_string_value(json_object_get(subject, "version"));
    details = json_object_get(entry, "details");
    snprintf(id, sizeof(id), "%s-%lld", log_id, (long long)seq);
    snprintf(type, sizeof(type), MLREG_EVENT_TYPE_PREFIX "%s", mlreg_event_kind_name(kind));
    data = json_object();
    if (data == NULL ||
        json_object_set_new(data, "model", or_null(json_object_get(subject, "model"))) < 0 ||
        json_object_set_new(data, "version", or_null(json_object_get(subject, "version"))) < 0 ||
        json_object_set_new(data, "digest", or_null(json_object_get(subject, "digest"))) < 0 ||
        json_object_set_new(data, "stage", or_null(json_object_get(subject, "stage"))) < 0 ||
        json_object_set_new(data, "from_stage", or_null(json_object_get(details, "from_stage"))) <
            0 ||
        json_object_set_new(data, "actor", json_incref(json_object_get(entry, "actor"))) < 0 ||
        json_object_set_new(data, "seq", json_integer(seq)) < 0 ||
        json_object_set_new(data, "action", json_string(action)) < 0 ||
        json_object_set_new(data, "result", json_string(result)) < 0)
        goto nomem;
    {
        /* what only some entries have, copied when present */
        static const char *const from_entry[] = {"gates", "approvers", "reason", "details"};
        static const char *const from_subject[] = {"key_id", "image", "tag"};
        for (size_t i = 0; i < sizeof(from_entry) / sizeof(from_entry[0]); i++)
            if ((v = json_object_get(entry, from_entry[i])) != NULL &&
                json_object_set(data, from_entry[i], v) < 0)
                goto nomem;
        for (size_t i = 0; i < sizeof(from_subject) / sizeof(from_subject[0]); i++)
            if ((v = json_object_get(subject, from_subject[i])) != NULL &&
                json_object_set(data, from_subject[i], v) < 0)
                goto nomem;
    }
    if (model != NULL && version != NULL) {
        if ((subj = malloc(strlen(model) + strlen(version) + 2)) == NULL) goto nomem;
        sprintf(subj, "%s@%s", model, version);
    }
    ev = json_pack("{ss ss ss ss ss ss sO}", "specversion", "1.0", "id", id, "source", source,
                   "type", type, "time", time, "datacontenttype", "application/json", "data", data);
    if (ev == NULL) goto nomem;
    if ((subj != NULL || model != NULL) &&
        json_object_set_new(ev, "subject", json_string(subj != NULL ? subj : model)) < 0)
        goto nomem;
    if (kind_out != NULL) *kind_out = kind;
    *out = ev;
    ev = NULL;
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory building an event");
done:
    free(subj);
    json_decref(data);
    json_decref(ev);
    json_decref(entry);
    return error;
}

const char *mlreg_event_model(const json_t *event)
{
    return json_string_value(json_object_get(json_object_get(event, "data"), "model"));
}

void mlreg_event_sign(char out[7 + 64 + 1], const unsigned char *key, size_t key_len,
                      const void *body, size_t len)
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "sha256=", 7);
    sodium_bin2hex(out + 7, 65, mac, sizeof(mac));
    sodium_memzero(&st, sizeof(st));
}

void mlreg_events_log_id(char *out, size_t outlen, mlreg_registry *reg)
{
    const mlreg_audit_key *key = reg != NULL ? mlreg_registry_audit_key(reg) : NULL;
    const char *origin = key != NULL ? mlreg_audit_key_origin(key) : NULL;
    const char *slash = origin != NULL ? strrchr(origin, '/') : NULL;

    snprintf(out, outlen, "%s", slash != NULL ? slash + 1 : origin != NULL ? origin : "mlreg");
}

void mlreg_events_default_source(char *out, size_t outlen)
{
    char host[256];

    if (gethostname(host, sizeof(host)) != 0) snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, outlen, "mlreg://%s", host);
}

/* ---- delivery --------------------------------------------------------------- */

typedef struct {
    mlreg_events *ev;
    const mlreg_webhook *hook;
    char *cursor_path;
    char shown[256]; /* the URL for messages: no user info, no query */
    pthread_t thread;
    int running;
    mlreg_webhook_stats stats; /* under ev->lock */
} hook_state;

struct mlreg_events {
    mlreg_registry *reg;
    char *source;
    char log_id[96];
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    uint64_t commits;    /* commit notices so far (under lock) */
    int stop;            /* under lock; read unlocked by curl's progress callback */
    int listening;
    int curl_init;
    hook_state *hs;
    size_t n;
};

static void on_commit(void *arg)
{
    mlreg_events *ev = arg;

    pthread_mutex_lock(&ev->lock);
    ev->commits++;
    pthread_cond_broadcast(&ev->wake);
    pthread_mutex_unlock(&ev->lock);
}

/* Waits up to @p ms or until a commit after @p seen, or the stop; under
 * ev->lock. 1 when stopping. */
static int wait_locked(mlreg_events *ev, uint64_t seen, uint64_t ms)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!ev->stop && ev->commits == seen)
        if (pthread_cond_timedwait(&ev->wake, &ev->lock, &until) != 0) break;
    return ev->stop;
}

/* Sleeps @p ms unless stopped (commits do not end it). 1 when stopping. */
static int sleep_unless_stopped(mlreg_events *ev, uint64_t ms)
{
    struct timespec until;
    int stop;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ev->lock);
    while (!ev->stop)
        if (pthread_cond_timedwait(&ev->wake, &ev->lock, &until) != 0) break;
    stop = ev->stop;
    pthread_mutex_unlock(&ev->lock);
    return stop;
}

static int log_size(uint64_t *out, mlreg_meta *meta)
{
    mlreg_meta_txn *txn = NULL;
    int error;

    if ((error = mlreg_meta_txn_begin(&txn, meta, 0)) < 0) return error;
    error = mlreg_audit_size_txn(out, txn);
    mlreg_meta_txn_abort(txn);
    return error;
}

static int log_entry(char **out, size_t *len_out, mlreg_meta *meta, uint64_t seq)
{
    mlreg_meta_txn *txn = NULL;
    int error;

    if ((error = mlreg_meta_txn_begin(&txn, meta, 0)) < 0) return error;
    error = mlreg_audit_entry_txn(out, len_out, txn, seq);
    mlreg_meta_txn_abort(txn);
    return error;
}

/* The cursor file: 1 and *out when present, 0 when absent, or an error. */
static int cursor_load(uint64_t *out, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), error;
    char *buf = NULL, *end = NULL;
    size_t len = 0;
    unsigned long long v;

    if (fd < 0) {
        if (errno == ENOENT) return 0;
        return mlreg_error_set(MLREG_EIO, "events cursor %s: %s", path, strerror(errno));
    }
    error = mlreg_file_read_fd(&buf, &len, fd, path, CURSOR_FILE_MAX);
    close(fd);
    if (error < 0) return error;
    errno = 0;
    v = strtoull(buf, &end, 10);
    if (len == 0 || buf[0] < '0' || buf[0] > '9' || errno != 0 || (*end != '\n' && *end != '\0')) {
        free(buf);
        return mlreg_error_set(MLREG_EINVALID, "events cursor %s does not hold a number", path);
    }
    free(buf);
    *out = (uint64_t)v;
    return 1;
}

static int cursor_save(const char *path, uint64_t cursor)
{
    mlreg_file *f = NULL;
    char text[32];
    int n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)cursor), error;

    if ((error = mlreg_file_open(&f, path, 0600, MLREG_FILE_REPLACE)) < 0) return error;
    if ((error = mlreg_file_write(f, text, (size_t)n)) < 0) {
        mlreg_file_abort(f);
        return error;
    }
    return mlreg_file_commit(f);
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static int xfer_progress(void *clientp, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    mlreg_events *ev = clientp;
    int stop;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    pthread_mutex_lock(&ev->lock);
    stop = ev->stop;
    pthread_mutex_unlock(&ev->lock);
    return stop;
}

/* One POST of @p body. Returns the HTTP status, or 0 when no answer came
 * (the reason in @p why). */
static long post_once(hook_state *hs, CURL *c, const char *body, size_t len, const char *id,
                      const char *type, char *why, size_t whylen)
{
    struct curl_slist *hdrs = NULL, *t;
    char sig[7 + 64 + 1], line[256], errbuf[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURLcode rc;
    const char *lines[6];
    size_t nl = 0;

    mlreg_event_sign(sig, hs->hook->secret, hs->hook->secret_len, body, len);
    lines[nl++] = "Content-Type: application/cloudevents+json; charset=utf-8";
    lines[nl++] = "Expect:";
    for (size_t i = 0; i < nl; i++)
        if ((t = curl_slist_append(hdrs, lines[i])) != NULL) hdrs = t;
    snprintf(line, sizeof(line), "X-Mlreg-Signature: %s", sig);
    if ((t = curl_slist_append(hdrs, line)) != NULL) hdrs = t;
    snprintf(line, sizeof(line), "X-Mlreg-Event-Id: %s", id);
    if ((t = curl_slist_append(hdrs, line)) != NULL) hdrs = t;
    snprintf(line, sizeof(line), "X-Mlreg-Event-Type: %s", type);
    if ((t = curl_slist_append(hdrs, line)) != NULL) hdrs = t;
    snprintf(line, sizeof(line), "mlreg/%s", mlreg_version());

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, hs->hook->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, line);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)hs->hook->timeout_s);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     (long)(hs->hook->timeout_s < 5 ? hs->hook->timeout_s : 5));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, hs->ev);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        snprintf(why, whylen, "HTTP %ld", status);
    } else {
        snprintf(why, whylen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdrs);
    return status;
}

static void count(hook_state *hs, uint64_t *field)
{
    pthread_mutex_lock(&hs->ev->lock);
    (*field)++;
    pthread_mutex_unlock(&hs->ev->lock);
}

/* Delivers one event until the receiver takes it, it is dropped (a 4xx
 * given_up_after times), or the events stop. 0 delivered or dropped, 1
 * stopping (the event was not delivered), -1 out of memory (try again). */
static int deliver(hook_state *hs, CURL *c, const json_t *event)
{
    const char *id = json_string_value(json_object_get(event, "id"));
    const char *type = json_string_value(json_object_get(event, "type"));
    char *body = json_dumps(event, JSON_COMPACT | JSON_SORT_KEYS);
    char why[CURL_ERROR_SIZE + 32];
    unsigned int attempt = 0, refused = 0, shift;
    int rc = 0;

    if (body == NULL) {
        fprintf(stderr, "mlreg: webhook %s: out of memory serialising event %s\n", hs->shown, id);
        return sleep_unless_stopped(hs->ev, 1000) ? 1 : -1;
    }
    for (;;) {
        long status = post_once(hs, c, body, strlen(body), id, type, why, sizeof(why));
        uint64_t wait_ms;

        if (status >= 200 && status < 300) {
            if (attempt > 0)
                fprintf(stderr, "mlreg: webhook %s: event %s delivered after %u failed attempts\n",
                        hs->shown, id, attempt);
            count(hs, &hs->stats.delivered);
            break;
        }
        count(hs, &hs->stats.failed_attempts);
        if (status >= 400 && status < 500 && status != 408 && status != 429 &&
            ++refused >= hs->hook->refused_tries) {
            fprintf(stderr,
                    "mlreg: webhook %s: event %s (%s) refused with HTTP %ld %u times; dropped\n",
                    hs->shown, id, type, status, refused);
            count(hs, &hs->stats.dropped);
            break;
        }
        if (attempt == 0)
            fprintf(stderr, "mlreg: webhook %s: event %s not delivered (%s); retrying\n", hs->shown,
                    id, why);
        shift = attempt < 20 ? attempt : 20;
        wait_ms = (uint64_t)1000 << shift;
        if (wait_ms > (uint64_t)hs->hook->retry_max_s * 1000)
            wait_ms = (uint64_t)hs->hook->retry_max_s * 1000;
        attempt++;
        if (sleep_unless_stopped(hs->ev, wait_ms)) {
            rc = 1;
            break;
        }
    }
    free(body);
    return rc;
}

static void set_cursor(hook_state *hs, uint64_t cursor, uint64_t size)
{
    pthread_mutex_lock(&hs->ev->lock);
    hs->stats.cursor = cursor;
    hs->stats.lag = size > cursor ? size - cursor : 0;
    pthread_mutex_unlock(&hs->ev->lock);
}

/* Writes the cursor; a failure is reported and retried with the next
 * write (events after the last written cursor are sent again after a
 * restart, which at-least-once allows). */
static void persist(hook_state *hs, uint64_t cursor)
{
    if (cursor_save(hs->cursor_path, cursor) < 0)
        fprintf(stderr, "mlreg: webhook %s: cannot save its cursor: %s\n", hs->shown,
                mlreg_error_last());
}

static void *hook_thread(void *arg)
{
    hook_state *hs = arg;
    mlreg_events *ev = hs->ev;
    mlreg_meta *meta = mlreg_registry_meta(ev->reg);
    CURL *c = curl_easy_init();
    uint64_t cursor, size = 0, seen, unsaved = 0;

    pthread_mutex_lock(&ev->lock);
    cursor = hs->stats.cursor;
    pthread_mutex_unlock(&ev->lock);
    if (c == NULL) {
        fprintf(stderr, "mlreg: webhook %s: cannot create a curl handle; not delivering\n",
                hs->shown);
        return NULL;
    }
    for (;;) {
        char *text = NULL;
        size_t len = 0;
        json_t *event = NULL;
        unsigned int kind = 0;
        int error;

        pthread_mutex_lock(&ev->lock);
        seen = ev->commits;
        if (ev->stop) {
            pthread_mutex_unlock(&ev->lock);
            break;
        }
        pthread_mutex_unlock(&ev->lock);
        if (log_size(&size, meta) < 0) {
            fprintf(stderr, "mlreg: webhook %s: cannot read the log: %s\n", hs->shown,
                    mlreg_error_last());
            if (sleep_unless_stopped(ev, POLL_MS)) break;
            continue;
        }
        set_cursor(hs, cursor, size);
        if (cursor >= size) {
            if (unsaved) {
                persist(hs, cursor);
                unsaved = 0;
            }
            pthread_mutex_lock(&ev->lock);
            error = wait_locked(ev, seen, POLL_MS);
            pthread_mutex_unlock(&ev->lock);
            if (error) break;
            continue;
        }
        if ((error = log_entry(&text, &len, meta, cursor)) < 0) {
            fprintf(stderr, "mlreg: webhook %s: cannot read audit entry %llu: %s\n", hs->shown,
                    (unsigned long long)cursor, mlreg_error_last());
            if (sleep_unless_stopped(ev, POLL_MS)) break;
            continue;
        }
        error = mlreg_event_from_entry(&event, &kind, text, len, ev->source, ev->log_id);
        free(text);
        if (error < 0)
            fprintf(stderr, "mlreg: webhook %s: audit entry %llu: %s; skipped\n", hs->shown,
                    (unsigned long long)cursor, mlreg_error_last());
        if (error != 0 || !(hs->hook->events & kind) ||
            (hs->hook->models != NULL &&
             !mlreg_name_under(mlreg_event_model(event), hs->hook->models))) {
            json_decref(event);
            cursor++;
            if (++unsaved >= CURSOR_SKIP_FLUSH) {
                persist(hs, cursor);
                unsaved = 0;
            }
            continue;
        }
        error = deliver(hs, c, event);
        json_decref(event);
        if (error < 0) continue;
        if (error) break; /* stopping: the event goes again at the next start */
        cursor++;
        unsaved = 0;
        persist(hs, cursor);
        set_cursor(hs, cursor, size);
    }
    if (unsaved) persist(hs, cursor);
    curl_easy_cleanup(c);
    return NULL;
}

/* The URL for messages: scheme, host and path, without user info or query
 * (either may hold a credential). */
static void url_shown(char *out, size_t outlen, const char *url)
{
    const char *host = strstr(url, "://"), *at, *end;
    size_t n;

    host = host ? host + 3 : url;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    n = (size_t)(host - url);
    snprintf(out, outlen, "%.*s%.*s", (int)n, url, (int)strcspn(at ? at + 1 : host, "?#"),
             at ? at + 1 : host);
}

int mlreg_events_start(mlreg_events **out, mlreg_registry *reg, const mlreg_webhooks *hooks,
                       const char *state_dir, const char *source)
{
    int error = 0;
    mlreg_events *ev = NULL;
    pthread_condattr_t cattr;
    uint64_t size = 0;
    size_t n = hooks != NULL ? hooks->n : 0;

    if ((ev = calloc(1, sizeof(*ev))) == NULL || (ev->source = strdup(source)) == NULL ||
        (n > 0 && (ev->hs = calloc(n, sizeof(*ev->hs))) == NULL)) {
        if (ev != NULL) free(ev->source);
        free(ev);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    ev->reg = reg;
    pthread_mutex_init(&ev->lock, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    mlreg_events_log_id(ev->log_id, sizeof(ev->log_id), reg);
    if (n == 0) goto ok;
    if ((error = mlreg_file_mkdirs(state_dir, "events state")) < 0 ||
        (error = log_size(&size, mlreg_registry_meta(reg))) < 0)
        goto done;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        error = mlreg_error_set(MLREG_EIO, "events: curl_global_init failed");
        goto done;
    }
    ev->curl_init = 1;
    for (size_t i = 0; i < n; i++) {
        hook_state *hs = &ev->hs[i];
        mlreg_digest d;
        char hex[MLREG_DIGEST_HEXLEN + 1];
        uint64_t cursor = size;
        int found;

        ev->n = i + 1;
        hs->ev = ev;
        hs->hook = &hooks->hooks[i];
        url_shown(hs->shown, sizeof(hs->shown), hs->hook->url);
        if ((error = mlreg_digest_buffer(&d, hs->hook->url, strlen(hs->hook->url))) < 0) goto done;
        mlreg_digest_hex(hex, &d);
        if ((hs->cursor_path = malloc(strlen(state_dir) + 32)) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        sprintf(hs->cursor_path, "%s/%.16s.cursor", state_dir, hex);
        if ((found = cursor_load(&cursor, hs->cursor_path)) < 0) {
            error = found;
            goto done;
        }
        if (!found && (error = cursor_save(hs->cursor_path, cursor)) < 0) goto done;
        if (cursor > size) {
            /* a cursor past the log: the data directory was replaced */
            fprintf(stderr,
                    "mlreg: webhook %s: its cursor %llu is past the end of the log (%llu "
                    "entries); starting at the end\n",
                    hs->shown, (unsigned long long)cursor, (unsigned long long)size);
            cursor = size;
        }
        hs->stats.cursor = cursor;
        hs->stats.lag = size - cursor;
        fprintf(stderr, "mlreg: webhook %s: delivering from audit entry %llu%s\n", hs->shown,
                (unsigned long long)cursor, found ? "" : " (new webhook: changes from now on)");
    }
    if ((error = mlreg_registry_commit_listen(reg, on_commit, ev)) < 0) goto done;
    ev->listening = 1;
    for (size_t i = 0; i < n; i++) {
        if (pthread_create(&ev->hs[i].thread, NULL, hook_thread, &ev->hs[i]) != 0) {
            error = mlreg_error_set(MLREG_EIO, "cannot start the delivery thread of webhook %s",
                                    ev->hs[i].shown);
            goto done;
        }
        ev->hs[i].running = 1;
    }
ok:
    *out = ev;
    ev = NULL;
done:
    mlreg_events_stop(ev);
    return error;
}

void mlreg_events_stop(mlreg_events *ev)
{
    if (ev == NULL) return;
    pthread_mutex_lock(&ev->lock);
    ev->stop = 1;
    pthread_cond_broadcast(&ev->wake);
    pthread_mutex_unlock(&ev->lock);
    for (size_t i = 0; i < ev->n; i++)
        if (ev->hs[i].running) pthread_join(ev->hs[i].thread, NULL);
    if (ev->listening) mlreg_registry_commit_unlisten(ev->reg, on_commit, ev);
    for (size_t i = 0; i < ev->n; i++)
        free(ev->hs[i].cursor_path);
    if (ev->curl_init) curl_global_cleanup();
    pthread_cond_destroy(&ev->wake);
    pthread_mutex_destroy(&ev->lock);
    free(ev->hs);
    free(ev->source);
    free(ev);
}

size_t mlreg_events_count(const mlreg_events *ev)
{
    return ev != NULL ? ev->n : 0;
}

int mlreg_events_stats(mlreg_webhook_stats *out, const char **url_out, mlreg_events *ev, size_t i)
{
    if (ev == NULL || i >= ev->n) return mlreg_error_set(MLREG_EINVALID, "no webhook %zu", i);
    pthread_mutex_lock(&ev->lock);
    *out = ev->hs[i].stats;
    pthread_mutex_unlock(&ev->lock);
    if (url_out != NULL) *url_out = ev->hs[i].hook->url;
    return 0;
}
