/* server_reload.c: the config in force (a refcounted snapshot) and its
 * reload: SIGHUP in `mlreg serve` and POST /api/v1/admin/reload.
 *
 * A request takes a reference to the snapshot in force when it is created
 * (server_http.c) and drops it when it is freed: it runs to its end with the
 * gates, tokens and limits it started with, and the identity it
 * authenticated as (borrowed from the snapshot's tokens) stays valid. A
 * reload builds a whole new snapshot from the file, checks it, then swaps
 * the server's pointer under conf_lock (written only by the swap, read only
 * to take a reference); the old snapshot goes when its last reference does.
 * Connections, upload sessions and blob reads are not the config's: a reload
 * leaves them alone.
 *
 * What a reload may change is the table `parts` below: each row names a part
 * (the word reported in "changed" and audited), the config keys it covers,
 * and, for a part whose effect is more than the snapshot's fields, an apply
 * step run before the swap (the keyring's sync). A key of the file that
 * changed and no row covers needs a restart: the reload is refused naming
 * it, and the running config stays. To make one more part reloadable, add
 * its keys (and an apply step if it has state outside the snapshot) as a
 * row, and what requests read of it as a field of server_conf.
 */
#include "server_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/keyring.h"

/* ---- the snapshot ---------------------------------------------------------- */

static void conf_free(server_conf *c)
{
    if (c == NULL) return;
    mlreg_config_free(c->own);
    free(c);
}

server_conf *mlreg_server__conf_acquire(mlreg_server *srv)
{
    server_conf *c;

    pthread_rwlock_rdlock(&srv->conf_lock);
    c = srv->conf;
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&srv->conf_lock);
    return c;
}

void mlreg_server__conf_release(server_conf *c)
{
    if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) conf_free(c);
}

/* The upload limits of @p cfg, defaults for what it leaves unset (as
 * mlreg_server_start() resolves them). */
static void limits_of(upload_limits *ul, uint64_t *max_upload_out, const mlreg_config *cfg)
{
    mlreg_server__upload_limits(ul, cfg->uploads_per_identity, cfg->uploads_per_repository,
                                cfg->upload_idle_timeout, cfg->max_upload_bytes);
    *max_upload_out = ul->max_bytes;
}

int mlreg_server__conf_init(mlreg_server *srv, const mlreg_server_opts *opts,
                            const upload_limits *ul, uint64_t max_upload_bytes,
                            const mlreg_server_tls *tls)
{
    server_conf *c = calloc(1, sizeof(*c));
    tls_creds *creds = NULL;
    int error;

    if (c == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (pthread_rwlock_init(&srv->conf_lock, NULL) != 0) {
        free(c);
        return mlreg_error_set(MLREG_ENOMEM, "cannot create the config lock");
    }
    if (pthread_mutex_init(&srv->reload_lock, NULL) != 0) {
        pthread_rwlock_destroy(&srv->conf_lock);
        free(c);
        return mlreg_error_set(MLREG_ENOMEM, "cannot create the reload lock");
    }
    srv->conf_locks = 1;
    if (tls != NULL && (error = mlreg_server__tls_creds_new(&creds, tls)) < 0) {
        free(c);
        return error;
    }
    if (creds != NULL) mlreg_server__tls_creds_link(&srv->tls_all, creds);
    c->refs = 1;
    c->policy = opts->policy ? opts->policy : srv->own_policy;
    c->auth = opts->auth ? opts->auth : srv->own_auth;
    c->uploads = *ul;
    c->max_upload_bytes = max_upload_bytes;
    c->tls = creds;
    c->file = opts->config;
    srv->conf = c;
    if (opts->config_path && !(srv->config_path = strdup(opts->config_path)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

void mlreg_server__conf_fini(mlreg_server *srv)
{
    if (!srv->conf_locks) return;
    /* the daemon has stopped: no request holds a reference any more */
    mlreg_server__conf_release(srv->conf);
    srv->conf = NULL;
    mlreg_server__tls_creds_free(srv->tls_all);
    srv->tls_all = NULL;
    free(srv->config_path);
    srv->config_path = NULL;
    pthread_rwlock_destroy(&srv->conf_lock);
    pthread_mutex_destroy(&srv->reload_lock);
    srv->conf_locks = 0;
}

/* ---- what a reload may change ------------------------------------------------ */

/* A reload in preparation: the snapshot it builds, what it read. */
typedef struct {
    mlreg_server *srv;
    const server_conf *cur; /* the snapshot in force */
    server_conf *next;      /* the one being built */
    tls_creds *creds;       /* new TLS credentials, not handed out yet */
} reload_run;

/* An apply step: puts the part's state outside the snapshot in force, before
 * the swap (and before the audit entry). *changed_out: whether it changed
 * anything, which decides whether the part is reported, whatever the file's
 * keys say (a key file replaced under the same name). 0 or an error (the
 * reload is then refused). */
typedef int (*reload_apply_fn)(int *changed_out, reload_run *r);
/* Puts back what an apply step changed, when a later step of the reload
 * failed (the running config stays); best effort, it reports on stderr. */
typedef void (*reload_undo_fn)(reload_run *r);

typedef struct {
    const char *name;        /* reported in "changed" and audited */
    const char *const *keys; /* config key paths (a key or "key.member"), NULL-ended */
    reload_apply_fn apply;   /* may be NULL: the snapshot's fields are all of it */
    reload_undo_fn undo;     /* with apply: undoes it */
} reload_part;

/* The keyring's sync with the new trusted_keys (keyring.c): it reads the
 * key files again, so a key file replaced under the same name counts too. */
static int apply_trusted_keys(int *changed_out, reload_run *r)
{
    return mlreg_keyring_reload_config(changed_out, mlreg_registry_keyring(r->srv->reg),
                                       r->next->own->trusted_keys, r->next->own->n_trusted_keys);
}

/* Syncs the keyring back to the running file's keys (key.* entries again). */
static void undo_trusted_keys(reload_run *r)
{
    int changed = 0;

    if (mlreg_keyring_reload_config(&changed, mlreg_registry_keyring(r->srv->reg),
                                    r->cur->file->trusted_keys, r->cur->file->n_trusted_keys) < 0)
        fprintf(stderr,
                "mlreg: warning: a refused reload could not put the trusted keys back: %s; the "
                "keyring holds the refused file's keys until the next reload or restart\n",
                mlreg_error_last());
}

/* New certificate or key bytes (the files are read at every reload, so a
 * certificate renewed in place is picked up without a config change).
 * Nothing is handed out before the swap: no undo. */
static int apply_tls(int *changed_out, reload_run *r)
{
    *changed_out = r->creds != NULL && !mlreg_server__tls_creds_same(r->creds, r->cur->tls);
    return 0;
}

static const char *const keys_stages[] = {"stages", NULL};
static const char *const keys_gates[] = {"gates", "models", NULL};
static const char *const keys_tokens[] = {"tokens", NULL};
static const char *const keys_trusted[] = {"trusted_keys", NULL};
static const char *const keys_limits[] = {
    "limits.max_upload_bytes", "limits.upload_sessions_per_identity",
    "limits.upload_sessions_per_repository", "limits.upload_idle_seconds", NULL};
static const char *const keys_tls[] = {"tls.cert_file", "tls.key_file", NULL};
static const char *const keys_webhooks[] = {"webhooks", NULL};

/* In the order "changed" lists them. */
static const reload_part parts[] = {
    /* name, config keys, apply, undo */
    {"stages", keys_stages, NULL, NULL},                                   /* server_conf.policy */
    {"gates", keys_gates, NULL, NULL},                                     /* server_conf.policy */
    {"tokens", keys_tokens, NULL, NULL},                                   /* server_conf.auth */
    {"trusted_keys", keys_trusted, apply_trusted_keys, undo_trusted_keys}, /* the keyring */
    {"limits", keys_limits, NULL, NULL},     /* server_conf.uploads, max_upload_bytes */
    {"tls", keys_tls, apply_tls, NULL},      /* server_conf.tls */
    {"webhooks", keys_webhooks, NULL, NULL}, /* srv->events, restarted after the swap */
};

#define NPARTS (sizeof(parts) / sizeof(parts[0]))

/* 1 when key path @p path is @p key or a member of it ("gates.production"). */
static int key_covers(const char *key, const char *path)
{
    size_t n = strlen(key);
    return !strncmp(key, path, n) && (path[n] == '\0' || path[n] == '.');
}

static const reload_part *part_of(const char *path)
{
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        for (const char *const *k = parts[i].keys; *k; k++)
            if (key_covers(*k, path)) return &parts[i];
    return NULL;
}

/* Appends the changed keys no part covers to @p buf ("listen, storage.bucket"). */
static int restart_keys(char *buf, size_t len, const json_t *changed, int tls_toggled)
{
    size_t i, used = 0;
    json_t *v;
    int n = 0;

    buf[0] = '\0';
    json_array_foreach(changed, i, v)
    {
        const char *path = json_string_value(v);
        if (part_of(path) != NULL) continue;
        used +=
            (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s", n ? ", " : "", path);
        n++;
    }
    if (tls_toggled) {
        used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s", n ? ", " : "",
                                 "tls (turning TLS on or off)");
        n++;
    }
    if (used >= len && len > 4) memcpy(buf + len - 4, "...", 4);
    return n;
}

/* ---- the reload ---------------------------------------------------------------- */

/* Reads and checks the file into r->next: everything that can refuse the
 * reload without having changed anything. */
static int prepare(reload_run *r, json_t **changed_keys_out)
{
    mlreg_server *srv = r->srv;
    mlreg_config *cfg = NULL;
    mlreg_server_tls *tls = NULL;
    json_t *changed = NULL;
    char restart[512];
    int error = 0;

    if (srv->config_path == NULL || r->cur->file == NULL)
        return mlreg_error_set(MLREG_EINVALID,
                               "mlreg serve was started without --config: there is no config "
                               "file to reload");
    if ((error = mlreg_config_load(&cfg, srv->config_path)) < 0) {
        /* the start's message; a file that vanished is the operator's to
         * fix, not a server error */
        if (error != MLREG_ENOMEM)
            error = mlreg_error_set(MLREG_EINVALID, "%s", mlreg_error_last());
        goto done;
    }
    if ((changed = mlreg_config_changed_keys(r->cur->file, cfg)) == NULL) {
        error = MLREG_ENOMEM;
        goto done;
    }
    if (restart_keys(restart, sizeof(restart), changed, srv->tls != (cfg->tls.cert_file != NULL)) >
        0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "restart needed for: %s (a reload cannot change them); the running "
                                "config stays",
                                restart);
        goto done;
    }
    if (!mlreg_config_host_is_loopback(srv->host) && mlreg_auth_token_count(cfg->auth) == 0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "refusing to listen on %s: no tokens are configured, so mlreg "
                                "only listens on loopback (127.0.0.0/8, ::1, localhost); add "
                                "`tokens` to the config (see conf/README.md)",
                                srv->host);
        goto done;
    }
    if (srv->tls) {
        if ((error = mlreg_server_tls_load(&tls, cfg->tls.cert_file, cfg->tls.key_file,
                                           cfg->tls.client_ca_file)) < 0 ||
            (error = mlreg_server__tls_creds_new(&r->creds, tls)) < 0)
            goto done;
        if (mlreg_server__tls_creds_same(r->creds, r->cur->tls)) {
            mlreg_server__tls_creds_free(r->creds);
            r->creds = NULL;
        }
    }
    if ((r->next = calloc(1, sizeof(*r->next))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    r->next->refs = 1;
    r->next->policy = cfg->policy;
    r->next->auth = cfg->auth;
    limits_of(&r->next->uploads, &r->next->max_upload_bytes, cfg);
    r->next->tls = r->creds != NULL ? r->creds : r->cur->tls;
    r->next->file = cfg;
    r->next->own = cfg;
    cfg = NULL;
    *changed_keys_out = changed;
    changed = NULL;
done:
    mlreg_server_tls_free(tls);
    mlreg_config_free(cfg);
    json_decref(changed);
    return error;
}

/* The parts that changed, in table order, applying their steps; the parts
 * applied are marked in @p applied. */
static int apply_parts(json_t **out, int applied[NPARTS], reload_run *r, const json_t *changed_keys)
{
    json_t *names = json_array(), *v;
    int error = 0;

    if (names == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    for (size_t i = 0; i < NPARTS; i++) {
        int changed = 0;
        size_t k;
        json_array_foreach(changed_keys, k, v)
        {
            if (part_of(json_string_value(v)) == &parts[i]) changed = 1;
        }
        if (parts[i].apply != NULL) {
            if ((error = parts[i].apply(&changed, r)) < 0) goto done;
            applied[i] = changed;
        }
        if (changed && json_array_append_new(names, json_string(parts[i].name)) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
    }
    *out = names;
    names = NULL;
done:
    json_decref(names);
    return error;
}

/* The reload failed with @p error: the apply steps that changed something
 * are undone, the last first; the message stays the failure's. */
static void undo_parts(const int applied[NPARTS], reload_run *r, int error)
{
    char why[512];
    int any = 0;

    for (size_t i = 0; i < NPARTS; i++)
        any |= applied[i] && parts[i].undo != NULL;
    if (!any) return;
    snprintf(why, sizeof(why), "%s", mlreg_error_last());
    for (size_t i = NPARTS; i-- > 0;)
        if (applied[i] && parts[i].undo != NULL) parts[i].undo(r);
    mlreg_error_set(error, "%s", why);
}

/* The webhook deliveries borrow the config they were started with (its
 * `webhooks`, secrets included), so every swap restarts them on the config
 * now in force, before the one they borrowed from can be freed. Stopping
 * cuts a POST in flight short; its event is sent again (at least once),
 * and the cursors, kept per URL, carry on. A start that fails leaves no
 * deliveries running and says so: the reload itself has happened. */
static void restart_events(mlreg_server *srv, const mlreg_config *now)
{
    struct mlreg_events *prev, *next = NULL;
    int want = now != NULL && now->webhooks != NULL && now->webhooks->n > 0;

    if (!want && srv->events == NULL) return;
    pthread_mutex_lock(&srv->events_lock);
    prev = srv->events;
    srv->events = NULL;
    pthread_mutex_unlock(&srv->events_lock);
    mlreg_events_stop(prev);
    if (!want) return;
    if (srv->events_dir == NULL || mlreg_events_start(&next, srv->reg, now->webhooks,
                                                      srv->events_dir, srv->event_source) < 0) {
        fprintf(stderr,
                "mlreg: error: the webhooks of the reloaded config are not delivered: %s; fix "
                "it and reload again, or restart\n",
                srv->events_dir == NULL ? "no directory for their cursors" : mlreg_error_last());
        return;
    }
    pthread_mutex_lock(&srv->events_lock);
    srv->events = next;
    pthread_mutex_unlock(&srv->events_lock);
}

void mlreg_server__events_fini(mlreg_server *srv)
{
    mlreg_events_stop(srv->events);
    srv->events = NULL;
    if (srv->events_lock_init) pthread_mutex_destroy(&srv->events_lock);
    srv->events_lock_init = 0;
    free(srv->events_dir);
    srv->events_dir = NULL;
}

int mlreg_server_reload(json_t **out, mlreg_server *srv, const char *actor)
{
    reload_run r;
    json_t *changed_keys = NULL, *names = NULL, *res = NULL;
    server_conf *old;
    int applied[NPARTS] = {0};
    int error = 0;

    memset(&r, 0, sizeof(r));
    r.srv = srv;
    pthread_mutex_lock(&srv->reload_lock);
    r.cur = mlreg_server__conf_acquire(srv);
    if ((error = prepare(&r, &changed_keys)) < 0) goto done;
    if ((error = apply_parts(&names, applied, &r, changed_keys)) < 0) goto done;
    if (json_array_size(names) > 0 && (error = mlreg_registry_record_reload(
                                           NULL, srv->reg, actor, r.next->own->sha256, names)) < 0)
        goto done;
    res = json_pack("{s:b, s:O, s:s}", "reloaded", 1, "changed", names, "config_sha256",
                    r.next->own->sha256);
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    /* from here nothing fails: the new snapshot goes in force */
    if (r.creds != NULL) {
        mlreg_server__tls_creds_link(&srv->tls_all, r.creds);
        r.creds = NULL;
    }
    mlreg_server__uploads_set_limits(srv->uploads, &r.next->uploads);
    pthread_rwlock_wrlock(&srv->conf_lock);
    old = srv->conf;
    srv->conf = r.next;
    pthread_rwlock_unlock(&srv->conf_lock);
    r.next = NULL;
    restart_events(srv, srv->conf->file);
    mlreg_server__conf_release(old);
    *out = res;
    res = NULL;
done:
    if (error < 0) undo_parts(applied, &r, error);
    mlreg_server__conf_release((server_conf *)(uintptr_t)r.cur);
    pthread_mutex_unlock(&srv->reload_lock);
    mlreg_server__tls_creds_free(r.creds);
    conf_free(r.next);
    json_decref(changed_keys);
    json_decref(names);
    json_decref(res);
    return error;
}

/* ---- POST /api/v1/admin/reload ------------------------------------------------- */

/* 200 with what changed; an invalid file or a key that needs a restart is a
 * 400 with the message the start would print. */
static enum MHD_Result reload_post(request *rq)
{
    json_t *res = NULL;
    int error = mlreg_server_reload(&res, rq->srv, mlreg_server__req_actor(rq));

    if (error == 0) {
        const json_t *changed = json_object_get(res, "changed");
        size_t i;
        json_t *v;
        char line[256];
        size_t used = 0;

        line[0] = '\0';
        json_array_foreach(changed, i, v)
        {
            used += (size_t)snprintf(line + used, used < sizeof(line) ? sizeof(line) - used : 0,
                                     "%s%s", i ? ", " : "", json_string_value(v));
        }
        fprintf(stderr, "mlreg: config reloaded by %s (sha256 %s): %s%s\n",
                mlreg_server__req_actor(rq),
                json_string_value(json_object_get(res, "config_sha256")),
                json_array_size(changed) ? "changed " : "no change", line);
    }
    return mlreg_server__reply_result(rq, error, res);
}

static const route_row reload_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_POST, "/api/v1/admin/reload", ROUTE_ACCESS_ADMIN, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL,
     NULL, reload_post},
};

const route_table mlreg_server__reload_routes = {reload_rows,
                                                 sizeof(reload_rows) / sizeof(reload_rows[0])};
