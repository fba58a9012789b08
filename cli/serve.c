/* serve.c: `mlreg serve` — runs the registry server in the foreground.
 *
 *   mlreg serve [--config FILE] [--data DIR] [--listen HOST:PORT] [--ready-file FILE]
 *
 * Flags override the config file. With storage.backend "s3" the bucket is
 * reached before anything listens: wrong credentials, a missing bucket or an
 * unreachable endpoint stop the start with the S3 status and code, and the
 * multipart uploads a crash left behind are aborted. Without tokens in the
 * config the server only listens on loopback; off loopback it also needs TLS
 * (tls.cert_file, tls.key_file) unless --insecure-http says that plain HTTP
 * is meant (TLS ended by a load balancer in front, a trusted network): then
 * it warns at start and GET /api/v1/health says "insecure_http": true. The
 * TLS files are read and checked before the data directory is touched.
 * SIGTERM / SIGINT / SIGHUP are blocked in every thread and
 * taken with sigwait() by the main thread, so no work happens in a signal
 * handler; libmicrohttpd's threads inherit the blocked mask. SIGHUP reloads
 * the config file (mlreg_server_reload(), docs/operations.md "Reload").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "files.h"
#include "mlreg/backup.h"
#include "mlreg/common.h"
#include "mlreg/config.h"
#include "mlreg/events.h"
#include "mlreg/json_out.h"
#include "mlreg/registry.h"
#include "mlreg/s3.h"
#include "mlreg/server.h"
#include "mlreg/sys/blob_backend.h"

/* The soft open-file limit serve raises itself to, at most. */
#define OPEN_FILES_MAX 65536

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: mlreg serve [--config FILE] [--data DIR] [--listen HOST:PORT]\n"
            "                   [--ready-file FILE] [--insecure-http] [--log-format text|json]\n"
            "  --config FILE      JSON config (see conf/README.md); HTTPS with its\n"
            "                     tls.cert_file and tls.key_file (docs/operations.md)\n"
            "  --data DIR         data directory (default " MLREG_CONFIG_DEFAULT_DATA_DIR ")\n"
            "  --listen HOST:PORT address to listen on, loopback unless tokens are configured "
            "(default " MLREG_CONFIG_DEFAULT_LISTEN "; port 0 = any free port)\n"
            "  --ready-file FILE  once listening, write the server URL to FILE\n"
            "  --insecure-http    allow plain HTTP on a non-loopback address (TLS ended by\n"
            "                     a load balancer in front, or a trusted network)\n"
            "  --log-format F     request log on stderr: text (default, for people) or json\n"
            "                     (one object per line; docs/operations.md)\n"
            "\n"
            "example: mlreg serve --config /etc/mlreg/config.json --data /var/lib/mlreg \\\n"
            "             --listen 0.0.0.0:5080 --ready-file /run/mlreg.url --log-format json\n"
            "         mlreg serve --listen 10.0.0.5:5080 --insecure-http   (TLS ended in front)\n");
}

/* Raises the soft open-file limit to the hard one (capped), as servers that
 * hold many connections do: every connection, upload session and blob read
 * takes a descriptor, and the connection limit is derived from this one
 * (mlreg_server_connection_budget). Failure only leaves the lower limit. */
static void raise_open_file_limit(void)
{
    struct rlimit rl;
    rlim_t want;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    want =
        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > OPEN_FILES_MAX ? OPEN_FILES_MAX : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Takes the value of option @p name at argv[*i] ("--name VALUE" or
 * "--name=VALUE"). 1 matched (*value set), 0 not this option, -1 missing value. */
static int take_opt(const char **value, int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, name, n)) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) return -1;
    *value = argv[++*i];
    return 1;
}

/* The S3 client settings of the config's storage.* keys (borrowed strings). */
static void s3_config_of(mlreg_s3_config *s3c, const mlreg_config *cfg)
{
    memset(s3c, 0, sizeof(*s3c));
    s3c->endpoint = cfg->s3.endpoint;
    s3c->bucket = cfg->s3.bucket;
    s3c->region = cfg->s3.region;
    s3c->prefix = cfg->s3.prefix;
    s3c->path_style = cfg->s3.path_style;
    s3c->access_key = cfg->s3.access_key;
    s3c->secret_key = cfg->s3.secret_key;
    s3c->ca_file = cfg->s3.ca_file;
    s3c->parts_in_flight = cfg->s3.parts_in_flight;
    s3c->max_attempts = cfg->s3.max_attempts;
    s3c->retry_base_ms = cfg->s3.retry_base_ms;
    s3c->retry_max_ms = cfg->s3.retry_max_ms;
    s3c->retry_total_ms = cfg->s3.retry_total_ms;
    s3c->presign_seconds = cfg->s3.presign_seconds;
    s3c->part_size = (uint64_t)cfg->s3.part_size_mib << 20;
}

/* Opens the registry the config describes, as `serve` and `reindex` do:
 * the blob backend, the data directory made private, and on the s3 backend
 * the log shared through the bucket (caught up before this returns, with
 * progress on stderr). 0, or the error, already printed. */
static int open_registry(mlreg_registry **out, const mlreg_config *cfg)
{
    mlreg_registry_opts ropts;
    mlreg_cluster_opts copts;
    mlreg_blob_backend *backend = NULL;
    mlreg_s3_config s3c;
    size_t fixed = 0, foreign = 0;
    int error, s3 = !strcmp(cfg->storage_backend, "s3");

    if (s3) {
        s3_config_of(&s3c, cfg);
        if (cfg->log_key_file == NULL) {
            fprintf(stderr,
                    "mlreg: storage.backend \"s3\" keeps the registry's log in the bucket, "
                    "shared by every node, and needs `audit.log_key_file`: one log key for all "
                    "nodes. Make it once with `mlreg key generate --no-password --out log` and "
                    "give each node log.key (mode 0600)\n");
            return MLREG_EINVALID;
        }
        if ((error = mlreg_blob_backend_s3_new(&backend, &s3c)) < 0) {
            fprintf(stderr, "mlreg: s3 storage %s bucket %s: %s\n", cfg->s3.endpoint,
                    cfg->s3.bucket, mlreg_error_last());
            return error;
        }
        fprintf(stderr, "mlreg: blobs and log in s3 bucket %s at %s (prefix '%s')%s\n",
                cfg->s3.bucket, cfg->s3.endpoint, cfg->s3.prefix ? cfg->s3.prefix : "",
                cfg->s3.redirect_downloads ? ", downloads redirected" : "");
    }

    /* Data directories of earlier versions held 0755 directories and 0644
     * blobs: make them private before anything is served. */
    if ((error = mlreg_registry_make_private(&fixed, &foreign, cfg->data_dir)) < 0) {
        fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
        if (backend != NULL) backend->free(backend);
        return error;
    }
    if (fixed > 0)
        fprintf(stderr,
                "mlreg: data directory %s: made %zu entr%s private (removed group and other "
                "permissions)\n",
                cfg->data_dir, fixed, fixed == 1 ? "y" : "ies");
    if (foreign > 0)
        fprintf(stderr,
                "mlreg: warning: data directory %s: %zu entr%s belong to another user and were "
                "left as they are (chown them to the user mlreg runs as)\n",
                cfg->data_dir, foreign, foreign == 1 ? "y" : "ies");
    memset(&ropts, 0, sizeof(ropts));
    ropts.data_dir = cfg->data_dir;
    ropts.map_size = cfg->map_size;
    ropts.max_manifest_bytes = cfg->max_manifest_bytes;
    ropts.backend = backend;                /* NULL: fs under data_dir; the registry owns it now */
    ropts.trusted_keys = cfg->trusted_keys; /* merged with the keyring stored in LMDB */
    ropts.n_trusted_keys = cfg->n_trusted_keys;
    ropts.log_key_file = cfg->log_key_file;
    if (s3) {
        memset(&copts, 0, sizeof(copts));
        copts.s3 = &s3c;
        copts.node_id = cfg->cluster.node_id;
        copts.poll_ms = cfg->cluster.poll_ms;
        copts.heartbeat_ms = cfg->cluster.heartbeat_ms;
        copts.attempts = cfg->cluster.attempts;
        copts.scrub_per_poll = cfg->cluster.scrub_per_poll;
        copts.progress = 1;
        ropts.cluster = &copts;
    }
    if ((error = mlreg_registry_open(out, &ropts)) < 0) {
        fprintf(stderr, "mlreg: cannot open registry in %s: %s\n", cfg->data_dir,
                mlreg_error_last());
        return error;
    }
    return 0;
}

/* Reads and checks the config's TLS files; says at start what clients will
 * meet: a certificate out of its validity period is served (clients refuse
 * it, which is theirs to say) but warned about. 0, or the error, printed. */
static int load_tls(mlreg_server_tls **out, const mlreg_config *cfg)
{
    int64_t not_before, not_after, now = (int64_t)time(NULL);
    int error;

    if ((error = mlreg_server_tls_load(out, cfg->tls.cert_file, cfg->tls.key_file,
                                       cfg->tls.client_ca_file)) < 0) {
        fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
        return error;
    }
    mlreg_server_tls_validity(&not_before, &not_after, *out);
    if (not_after < now)
        fprintf(stderr,
                "mlreg: warning: the certificate in tls.cert_file %s expired %lld days ago; "
                "clients will refuse it\n",
                cfg->tls.cert_file, (long long)((now - not_after) / 86400));
    else if (not_before > now)
        fprintf(stderr,
                "mlreg: warning: the certificate in tls.cert_file %s is not valid yet (from "
                "%lld seconds from now); clients will refuse it\n",
                cfg->tls.cert_file, (long long)(not_before - now));
    else if (not_after - now < 14 * 86400)
        fprintf(stderr,
                "mlreg: warning: the certificate in tls.cert_file %s expires in %lld days\n",
                cfg->tls.cert_file, (long long)((not_after - now) / 86400));
    fprintf(stderr, "mlreg: TLS with %s%s%s\n", cfg->tls.cert_file,
            mlreg_server_tls_mutual(*out) ? "; clients must present a certificate signed by " : "",
            mlreg_server_tls_mutual(*out) ? cfg->tls.client_ca_file : "");
    return 0;
}

/* Starts the delivery of the config's webhooks (events.h), cursors under
 * DATA_DIR/events (*dir_out, malloc'd: a reload starts new ones there).
 * Every node of a cluster with webhooks in its config delivers every event
 * (docs/operations.md): configure them on one node. 0, or the error,
 * printed. */
static int start_events(mlreg_events **out, char **dir_out, mlreg_registry *reg,
                        const mlreg_config *cfg)
{
    char source[320];
    int error;

    if ((*dir_out = malloc(strlen(cfg->data_dir) + sizeof("/events"))) == NULL) {
        fprintf(stderr, "mlreg: out of memory\n");
        return MLREG_ENOMEM;
    }
    sprintf(*dir_out, "%s/events", cfg->data_dir);
    if (cfg->webhooks == NULL || cfg->webhooks->n == 0) return 0;
    if (cfg->cluster.url != NULL)
        snprintf(source, sizeof(source), "%s", cfg->cluster.url);
    else
        mlreg_events_default_source(source, sizeof(source));
    error = mlreg_events_start(out, reg, cfg->webhooks, *dir_out, source);
    if (error < 0) fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
    return error;
}

/* SIGHUP: re-reads the config file (mlreg_server_reload()) and says in one
 * line on stderr what changed, or why the file was refused (the running
 * config then stays). */
static void reload(mlreg_server *srv, const char *config_path)
{
    json_t *res = NULL, *v;
    char line[256];
    size_t i, used = 0;

    if (mlreg_server_reload(&res, srv, "sighup") < 0) {
        fprintf(stderr, "mlreg: SIGHUP: reload of %s refused, the running config stays: %s\n",
                config_path ? config_path : "the config", mlreg_error_last());
        mlreg_error_clear();
        return;
    }
    line[0] = '\0';
    json_array_foreach(json_object_get(res, "changed"), i, v)
    {
        used += (size_t)snprintf(line + used, used < sizeof(line) ? sizeof(line) - used : 0, "%s%s",
                                 i ? ", " : "", json_string_value(v));
    }
    fprintf(stderr, "mlreg: SIGHUP: reloaded %s (sha256 %s): %s%s\n", config_path,
            json_string_value(json_object_get(res, "config_sha256")),
            used ? "changed " : "no change", line);
    json_decref(res);
}

/* One option of serve or reindex: a value (--name VALUE / --name=VALUE)
 * into *value, or a flag setting *flag. */
typedef struct {
    const char *name;
    const char **value;
    int *flag;
} serve_opt;

/* Parses @p argv against @p opts for command @p cmd. 0 parsed; 1 help was
 * printed (exit 0); -1 a usage error was printed. */
static int parse_opts(int argc, char **argv, const char *cmd, const serve_opt *opts, size_t n,
                      void (*usage)(FILE *))
{
    for (int i = 1; i < argc; i++) {
        size_t k;
        int r = 0;

        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 1;
        }
        for (k = 0; k < n; k++) {
            if (opts[k].flag != NULL) {
                if (!strcmp(argv[i], opts[k].name)) break;
            } else if ((r = take_opt(opts[k].value, argc, argv, &i, opts[k].name)) != 0) {
                break;
            }
        }
        if (k < n && r >= 0) {
            if (opts[k].flag != NULL) *opts[k].flag = 1;
            continue;
        }
        if (k < n)
            fprintf(stderr, "mlreg %s: %s needs a value\n", cmd, argv[i]);
        else
            fprintf(stderr, "mlreg %s: unknown argument '%s'\n", cmd, argv[i]);
        usage(stderr);
        return -1;
    }
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    int rc = CLI_EXIT_USAGE, error, sig = 0;
    const char *config_path = NULL, *data = NULL, *listen = NULL, *ready = NULL;
    const char *log_format = NULL;
    mlreg_config *cfg = NULL;
    mlreg_registry *reg = NULL;
    mlreg_server *srv = NULL;
    mlreg_server_opts sopts;
    char host[256], url[320];
    const char *scheme;
    unsigned int port;
    sigset_t sigs, oldsigs;
    int masked = 0, insecure_http = 0;
    mlreg_server_tls *tls = NULL;
    mlreg_events *events = NULL;
    char *events_dir = NULL;

    {
        const serve_opt opts[] = {{"--config", &config_path, NULL},
                                  {"--data", &data, NULL},
                                  {"--listen", &listen, NULL},
                                  {"--ready-file", &ready, NULL},
                                  {"--insecure-http", NULL, &insecure_http},
                                  {"--log-format", &log_format, NULL}};
        int r = parse_opts(argc, argv, "serve", opts, sizeof(opts) / sizeof(opts[0]), serve_usage);
        if (r != 0) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    if (log_format != NULL && strcmp(log_format, "text") && strcmp(log_format, "json")) {
        fprintf(stderr, "mlreg serve: --log-format is text or json, not '%.64s'\n", log_format);
        serve_usage(stderr);
        return CLI_EXIT_USAGE;
    }

    if ((error = mlreg_config_load(&cfg, config_path)) < 0) {
        fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
        goto done;
    }
    if ((data && (error = mlreg_config_set_string(&cfg->data_dir, data)) < 0) ||
        (listen && (error = mlreg_config_set_string(&cfg->listen, listen)) < 0)) {
        fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
        goto done;
    }
    if (!cfg->data_dir[0]) {
        fprintf(stderr, "mlreg: --data needs a directory\n");
        goto done;
    }
    if (mlreg_config_parse_listen(host, sizeof(host), &port, cfg->listen) < 0) {
        fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
        goto done;
    }
    if (!mlreg_config_host_is_loopback(host) && mlreg_auth_token_count(cfg->auth) == 0) {
        fprintf(stderr,
                "mlreg: refusing to listen on %s: no tokens are configured, so mlreg only "
                "listens on loopback (127.0.0.0/8, ::1, localhost); add `tokens` to the config "
                "(see conf/README.md)\n",
                host);
        goto done;
    }
    if (!mlreg_config_host_is_loopback(host) && cfg->tls.cert_file == NULL && !insecure_http) {
        fprintf(stderr,
                "mlreg: refusing to listen on %s without TLS: API tokens and artifacts would "
                "cross the network in clear text. Set tls.cert_file and tls.key_file in the "
                "config (docs/operations.md), or give --insecure-http when TLS ends in a load "
                "balancer in front of mlreg or the network is trusted\n",
                host);
        goto done;
    }
    if (cfg->tls.cert_file && (error = load_tls(&tls, cfg)) < 0) goto done;
    if (insecure_http && tls)
        fprintf(stderr, "mlreg: warning: --insecure-http has no effect: TLS is configured\n");
    else if (insecure_http)
        fprintf(stderr,
                "mlreg: warning: --insecure-http: serving plain HTTP on %s; API tokens and "
                "artifacts cross the network unencrypted\n",
                host);

    /* Block the stop signals before any thread exists, so every thread
     * inherits the mask and only sigwait() below sees them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &sigs, &oldsigs) != 0) {
        fprintf(stderr, "mlreg: cannot block signals\n");
        goto done;
    }
    masked = 1;
    signal(SIGPIPE, SIG_IGN);
    raise_open_file_limit();

    if ((error = open_registry(&reg, cfg)) < 0) goto done;
    memset(&sopts, 0, sizeof(sopts));
    sopts.host = host;
    sopts.port = (uint16_t)port;
    sopts.threads = cfg->threads;
    sopts.max_connections = cfg->max_connections;
    sopts.max_connections_per_address = cfg->max_connections_per_address;
    sopts.header_timeout = cfg->header_timeout;
    sopts.idle_timeout = cfg->idle_timeout;
    sopts.body_timeout = cfg->body_timeout;
    sopts.uploads_per_identity = cfg->uploads_per_identity;
    sopts.uploads_per_repository = cfg->uploads_per_repository;
    sopts.upload_idle_timeout = cfg->upload_idle_timeout;
    sopts.max_upload_bytes = cfg->max_upload_bytes;
    sopts.gc_grace_seconds = cfg->gc.grace_seconds;
    sopts.gc_stale_upload_seconds = cfg->gc.stale_upload_seconds;
    sopts.gc_interval_seconds = cfg->gc.interval_seconds;
    sopts.retention = cfg->retention;
    sopts.n_retention = cfg->n_retention;
    sopts.scrub_interval_seconds = cfg->scrub_interval;
    sopts.scrub_rate_bytes_per_second = cfg->scrub_rate;
    sopts.policy = cfg->policy;
    sopts.auth = cfg->auth;
    sopts.tls = tls;
    sopts.insecure_http = insecure_http;
    sopts.log_format = log_format != NULL && !strcmp(log_format, "json") ? MLREG_SERVER_LOG_JSON
                                                                         : MLREG_SERVER_LOG_TEXT;
    sopts.ready_max_lag = cfg->cluster.ready_max_lag;
    sopts.metrics_public = cfg->metrics_public;
    sopts.event_source = cfg->cluster.url; /* NULL: mlreg://<hostname> */
    sopts.config_path = config_path;
    sopts.config = cfg;
    if (!strcmp(cfg->storage_backend, "s3") && cfg->s3.redirect_downloads)
        sopts.redirect_seconds = cfg->s3.presign_seconds ? cfg->s3.presign_seconds : 300;
    if ((error = start_events(&events, &events_dir, reg, cfg)) < 0) goto done;
    sopts.events = events;
    sopts.events_dir = events_dir;
    sopts.peer_ca_file = cfg->cluster.ca_file;
    if ((error = mlreg_server_start(&srv, reg, &sopts)) < 0) {
        fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
        goto done;
    }
    events = NULL; /* the server's now (server.h) */
    scheme = tls ? "https" : "http";
    if (strchr(host, ':'))
        snprintf(url, sizeof(url), "%s://[%s]:%u", scheme, host,
                 (unsigned int)mlreg_server_port(srv));
    else
        snprintf(url, sizeof(url), "%s://%s:%u", scheme,
                 strcmp(host, "localhost") ? host : "127.0.0.1",
                 (unsigned int)mlreg_server_port(srv));
    fprintf(stderr, "mlreg: listening on %s (data %s)\n", url, cfg->data_dir);
    if (mlreg_registry_cluster(reg) != NULL) {
        mlreg_cluster *cl = mlreg_registry_cluster(reg);
        char *why = NULL;
        if (cfg->cluster.url == NULL &&
            (!strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "[::]")))
            fprintf(stderr,
                    "mlreg: warning: listening on %s, other nodes cannot reach this one at %s; "
                    "set cluster.url so they can forward upload requests here\n",
                    host, url);
        if (mlreg_cluster_health(&why, cl) < 0) {
            fprintf(stderr,
                    "mlreg: warning: %s; this node serves what it verified and refuses "
                    "writes\n",
                    why ? why : "the log in the store is broken");
            free(why);
        }
        if ((error = mlreg_cluster_set_url(cl, cfg->cluster.url ? cfg->cluster.url : url)) < 0 ||
            (error = mlreg_cluster_follow_start(cl)) < 0) {
            fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
            goto done;
        }
        fprintf(stderr, "mlreg: node %s follows the log in the bucket\n",
                mlreg_cluster_node_id(cl));
    }
    if (cfg->scrub_interval > 0)
        fprintf(stderr, "mlreg: scrubbing the blob store every %llu s%s\n",
                (unsigned long long)cfg->scrub_interval, cfg->scrub_rate ? ", rate limited" : "");
    if (ready && cli_file_write_atomic(ready, url, strlen(url)) < 0) {
        fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
        goto done;
    }

    for (;;) {
        if (sigwait(&sigs, &sig) != 0) {
            fprintf(stderr, "mlreg: sigwait failed\n");
            rc = CLI_EXIT_USAGE;
            goto done;
        }
        if (sig != SIGHUP) break;
        reload(srv, config_path);
    }
    fprintf(stderr, "mlreg: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = CLI_EXIT_OK;
done:
    mlreg_server_stop(srv); /* and the webhook deliveries */
    mlreg_events_stop(events);
    free(events_dir);
    mlreg_server_tls_free(tls);
    mlreg_registry_free(reg);
    mlreg_config_free(cfg);
    if (masked) pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
    if (rc == CLI_EXIT_OK) fprintf(stderr, "mlreg: stopped\n");
    return rc;
}

static void reindex_usage(FILE *f)
{
    fprintf(f, "usage: mlreg reindex --from-store --config FILE [--data DIR]\n"
               "  builds (or brings up to date) the index in DIR from the log in the object\n"
               "  store of the config's s3 storage: every entry is read, its hash chain checked\n"
               "  and applied, as a node does at start. Progress goes to stderr.\n"
               "  --config FILE  the nodes' config (storage.backend \"s3\", audit.log_key_file)\n"
               "  --data DIR     the data directory to build (default: the config's data_dir)\n"
               "  --from-store   required: read the log from the object store (the only source)\n"
               "\n"
               "example: mlreg reindex --from-store --config /etc/mlreg/node.json --data "
               "/var/lib/mlreg-new\n");
}

int cmd_reindex(int argc, char **argv)
{
    const char *config_path = NULL, *data = NULL;
    int from_store = 0, error;
    mlreg_config *cfg = NULL;
    mlreg_registry *reg = NULL;
    json_t *st = NULL;
    int rc = CLI_EXIT_USAGE;

    {
        const serve_opt opts[] = {{"--from-store", NULL, &from_store},
                                  {"--config", &config_path, NULL},
                                  {"--data", &data, NULL}};
        int r =
            parse_opts(argc, argv, "reindex", opts, sizeof(opts) / sizeof(opts[0]), reindex_usage);
        if (r != 0) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    if (!from_store || config_path == NULL) {
        fprintf(stderr, "mlreg reindex: --from-store and --config are required\n");
        reindex_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if ((error = mlreg_config_load(&cfg, config_path)) < 0 ||
        (data && (error = mlreg_config_set_string(&cfg->data_dir, data)) < 0)) {
        fprintf(stderr, "mlreg: %s\n", mlreg_error_last());
        goto done;
    }
    if (strcmp(cfg->storage_backend, "s3") != 0) {
        fprintf(stderr,
                "mlreg reindex: %s: storage.backend is \"%s\"; only the s3 backend keeps "
                "its log in the store (the fs backend's log is its LMDB)\n",
                config_path, cfg->storage_backend);
        goto done;
    }
    if (open_registry(&reg, cfg) < 0) goto done;
    if (mlreg_cluster_status(&st, mlreg_registry_cluster(reg), 0) == 0)
        fprintf(stderr, "mlreg: index in %s holds %lld log entries, as the store does\n",
                cfg->data_dir, (long long)json_integer_value(json_object_get(st, "applied")));
    rc = CLI_EXIT_OK;

done:
    json_decref(st);
    mlreg_registry_free(reg);
    mlreg_config_free(cfg);
    return rc;
}

static void backup_usage(FILE *f)
{
    fprintf(f, "usage: mlreg backup --to DIR [--config FILE | --data DIR] [--link] [--json]\n"
               "  writes an online backup of a registry on the fs backend (the default) into\n"
               "  the new or empty directory DIR, while the server runs: its index and audit\n"
               "  log as one consistent copy, every blob that copy needs (each re-hashed) and\n"
               "  the log key. `mlreg serve --data DIR` runs the copy as it is. DIR holds the\n"
               "  log key: keep it as private as the data directory.\n"
               "  --config FILE  the server's config (for its data_dir)\n"
               "  --data DIR     the data directory (default: the config's data_dir)\n"
               "  --link         hard-link blobs instead of copying (same filesystem only;\n"
               "                 a snapshot against mistakes, not against a lost disk)\n"
               "  --json         print the report (also written to DIR/backup.json)\n"
               "exit 0 complete; 1 failed, or written but with blobs missing or damaged\n"
               "(listed); 2 usage. On the s3 backend back up the bucket instead\n"
               "(docs/scaling.md).\n"
               "\n"
               "example: mlreg backup --to /backups/mlreg-2026-12-05 --config "
               "/etc/mlreg/config.json --json\n"
               "         mlreg backup --to /srv/snap --data /var/lib/mlreg --link\n");
}

int cmd_backup(int argc, char **argv)
{
    const char *config_path = NULL, *data = NULL, *to = NULL;
    int link = 0, as_json = 0, error;
    mlreg_config *cfg = NULL;
    mlreg_backup_opts bopts = {0, 0};
    json_t *report = NULL;
    size_t missing, damaged;
    int rc = CLI_EXIT_USAGE;

    {
        const serve_opt opts[] = {{"--config", &config_path, NULL},
                                  {"--data", &data, NULL},
                                  {"--to", &to, NULL},
                                  {"--link", NULL, &link},
                                  {"--json", NULL, &as_json}};
        int r =
            parse_opts(argc, argv, "backup", opts, sizeof(opts) / sizeof(opts[0]), backup_usage);
        if (r != 0) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    if (to == NULL || !to[0]) {
        fprintf(stderr, "mlreg backup: --to DIR is required\n");
        backup_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (config_path != NULL) {
        if ((error = mlreg_config_load(&cfg, config_path)) < 0) {
            fprintf(stderr, "mlreg backup: %s\n", mlreg_error_last());
            goto done;
        }
        if (strcmp(cfg->storage_backend, "fs") != 0) {
            fprintf(stderr,
                    "mlreg backup: %s: storage.backend is \"%s\": the bucket holds the registry "
                    "(its log and blobs) and a node's data directory needs no backup; back up "
                    "the bucket (docs/scaling.md, \"Backups and permissions\")\n",
                    config_path, cfg->storage_backend);
            goto done;
        }
        if (data == NULL) data = cfg->data_dir;
    }
    if (data == NULL) data = MLREG_CONFIG_DEFAULT_DATA_DIR;
    bopts.link = link;
    rc = CLI_EXIT_REFUSED;
    if ((error = mlreg_backup(&report, data, to, &bopts)) < 0) {
        fprintf(stderr, "mlreg backup: %s\n", mlreg_error_last());
        goto done;
    }
    missing = json_array_size(json_object_get(report, "missing"));
    damaged = json_array_size(json_object_get(report, "damaged"));
    if (as_json) {
        mlreg_json_dumpf(report, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    }
    fprintf(stderr,
            "mlreg backup: %s: %lld log entries, %lld blobs (%lld bytes%s) in %lld attempt%s\n", to,
            (long long)json_integer_value(json_object_get(report, "log_entries")),
            (long long)json_integer_value(json_object_get(report, "blobs")),
            (long long)json_integer_value(json_object_get(report, "bytes")),
            link ? ", hard-linked" : "",
            (long long)json_integer_value(json_object_get(report, "attempts")),
            json_integer_value(json_object_get(report, "attempts")) == 1 ? "" : "s");
    for (size_t i = 0; i < missing; i++)
        fprintf(stderr, "mlreg backup: MISSING sha256:%s: the index needs it, the store lacks it\n",
                json_string_value(json_array_get(json_object_get(report, "missing"), i)));
    for (size_t i = 0; i < damaged; i++)
        fprintf(stderr,
                "mlreg backup: DAMAGED sha256:%s: its bytes hash to something else; not copied "
                "(mlreg scrub quarantines it)\n",
                json_string_value(json_array_get(json_object_get(report, "damaged"), i)));
    if (missing || damaged) {
        fprintf(stderr,
                "mlreg backup: the backup in %s is incomplete: %zu blob%s missing, %zu damaged\n",
                to, missing, missing == 1 ? "" : "s", damaged);
        goto done;
    }
    rc = CLI_EXIT_OK;

done:
    json_decref(report);
    mlreg_config_free(cfg);
    return rc;
}
