/* config.c: the server's JSON config file, loaded strictly.
 *
 * Every accepted key is documented in conf/README.md. The rule from DESIGN.md
 * is that nothing is silently ignored: an unknown key, a key that belongs to a
 * later feature, or a bad value stops the server with the key's name, so an
 * operator never believes a setting (a gate, a token) is in force when it is
 * not.
 */
#include "mlreg/config.h"
#include "mlreg/gc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/file.h"
#include "mlreg/names.h"
#include "mlreg/server.h"

#define MIN_MANIFEST_BYTES 1024u
#define MAX_MANIFEST_BYTES (64u * 1024 * 1024)
#define MIN_MAP_SIZE       (1u * 1024 * 1024)
#define MAX_THREADS        256
#define MAX_UPLOAD_BYTES   (1ull << 50) /* 1 PiB: far past any disk, well inside int64 */

int mlreg_config_set_string(char **field, const char *value)
{
    char *copy = strdup(value);
    if (!copy) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    free(*field);
    *field = copy;
    return 0;
}

void mlreg_config_free(mlreg_config *cfg)
{
    if (!cfg) return;
    free(cfg->listen);
    free(cfg->data_dir);
    free(cfg->storage_backend);
    free(cfg->s3.endpoint);
    free(cfg->s3.bucket);
    free(cfg->s3.region);
    free(cfg->s3.prefix);
    free(cfg->s3.access_key);
    if (cfg->s3.secret_key) explicit_bzero(cfg->s3.secret_key, strlen(cfg->s3.secret_key));
    free(cfg->s3.secret_key);
    free(cfg->s3.ca_file);
    free(cfg->log_key_file);
    free(cfg->tls.cert_file);
    free(cfg->tls.key_file);
    free(cfg->tls.client_ca_file);
    free(cfg->cluster.node_id);
    free(cfg->cluster.url);
    free(cfg->cluster.ca_file);
    for (size_t i = 0; i < cfg->n_trusted_keys; i++) {
        free(cfg->trusted_keys[i].name);
        free(cfg->trusted_keys[i].role);
        free(cfg->trusted_keys[i].file);
    }
    free(cfg->trusted_keys);
    for (size_t i = 0; i < cfg->n_retention; i++) {
        mlreg_config_retention *r = &cfg->retention[i];
        free(r->models);
        for (size_t j = 0; j < r->n_protected_stages; j++)
            free(r->protected_stages[j]);
        free(r->protected_stages);
    }
    free(cfg->retention);
    mlreg_policy_free(cfg->policy);
    mlreg_auth_free(cfg->auth);
    mlreg_webhooks_free(cfg->webhooks);
    json_decref(cfg->fingerprints);
    free(cfg);
}

static int get_string(char **field, json_t *v, const char *key)
{
    if (!json_is_string(v))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be a string", key);
    if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be a non-empty string", key);
    return mlreg_config_set_string(field, json_string_value(v));
}

static int get_uint(uint64_t *out, json_t *v, const char *key, uint64_t min, uint64_t max)
{
    if (!json_is_integer(v))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be an integer", key);
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s' must be between %llu and %llu (got %lld)", key,
                               (unsigned long long)min, (unsigned long long)max, (long long)n);
    *out = (uint64_t)n;
    return 0;
}

/* An integer key of a config section: its name, the offset of its unsigned
 * int in the section's struct, and its range. */
typedef struct {
    const char *name;
    size_t off;
    uint64_t min, max;
} uint_key;

/* Sets key @p key of @p section (named in messages as "SECTION.KEY") from
 * @p v into the struct at @p base when one of the @p n @p keys names it:
 * 1 set, 0 not one of them, or get_uint()'s error. */
static int set_uint_key(void *base, const uint_key *keys, size_t n, const char *section,
                        const char *key, json_t *v)
{
    char label[96];
    uint64_t x;
    int error;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(key, keys[i].name)) continue;
        snprintf(label, sizeof(label), "%s.%s", section, key);
        if ((error = get_uint(&x, v, label, keys[i].min, keys[i].max)) < 0) return error;
        *(unsigned int *)(void *)((char *)base + keys[i].off) = (unsigned int)x;
        return 1;
    }
    return 0;
}

static int get_bool(int *out, json_t *v, const char *key)
{
    if (!json_is_boolean(v))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* The s3 backend's keys. Numbers are range-checked here so a typo stops the
 * start instead of becoming an absurd retry budget. */
static int load_storage_s3(mlreg_config *cfg, json_t *obj)
{
    mlreg_config_s3 *s3 = &cfg->s3;
    const char *key;
    json_t *v;
    int error;
    static const uint_key nums[] = {
        {"parts_in_flight", offsetof(mlreg_config_s3, parts_in_flight), 1, 64},
        {"max_attempts", offsetof(mlreg_config_s3, max_attempts), 1, 20},
        {"retry_base_ms", offsetof(mlreg_config_s3, retry_base_ms), 1, 60000},
        {"retry_max_ms", offsetof(mlreg_config_s3, retry_max_ms), 1, 600000},
        {"retry_total_ms", offsetof(mlreg_config_s3, retry_total_ms), 1, 3600000},
        {"presign_seconds", offsetof(mlreg_config_s3, presign_seconds), 1, 604800},
        {"part_size_mib", offsetof(mlreg_config_s3, part_size_mib), 5, 512},
    };

    s3->path_style = 1;
    json_object_foreach(obj, key, v)
    {
        char label[64];

        snprintf(label, sizeof(label), "storage.%s", key);
        if (!strcmp(key, "backend")) continue;
        if (!strcmp(key, "endpoint")) {
            if ((error = get_string(&s3->endpoint, v, label)) < 0) return error;
            if (strncmp(s3->endpoint, "http://", 7) && strncmp(s3->endpoint, "https://", 8))
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key 'storage.endpoint' must start with http:// "
                                       "or https://");
        } else if (!strcmp(key, "bucket")) {
            if ((error = get_string(&s3->bucket, v, label)) < 0) return error;
        } else if (!strcmp(key, "region")) {
            if ((error = get_string(&s3->region, v, label)) < 0) return error;
        } else if (!strcmp(key, "prefix")) {
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                return mlreg_error_set(MLREG_EINVALID, "config key 'storage.prefix' must be a "
                                                       "string");
            if ((error = mlreg_config_set_string(&s3->prefix, json_string_value(v))) < 0)
                return error;
            if (s3->prefix[0] == '/' ||
                (s3->prefix[0] && s3->prefix[strlen(s3->prefix) - 1] != '/'))
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key 'storage.prefix' must be empty or end with "
                                       "'/' and not start with one (got '%s')",
                                       s3->prefix);
        } else if (!strcmp(key, "access_key")) {
            if ((error = get_string(&s3->access_key, v, label)) < 0) return error;
        } else if (!strcmp(key, "secret_key")) {
            if ((error = get_string(&s3->secret_key, v, label)) < 0) return error;
        } else if (!strcmp(key, "ca_file")) {
            if ((error = get_string(&s3->ca_file, v, label)) < 0) return error;
        } else if (!strcmp(key, "path_style")) {
            if ((error = get_bool(&s3->path_style, v, label)) < 0) return error;
        } else if (!strcmp(key, "redirect_downloads")) {
            if ((error = get_bool(&s3->redirect_downloads, v, label)) < 0) return error;
        } else if ((error = set_uint_key(s3, nums, sizeof(nums) / sizeof(nums[0]), "storage", key,
                                         v)) <= 0) {
            if (error < 0) return error;
            return mlreg_error_set(MLREG_EINVALID,
                                   "unknown config key 'storage.%s' for the s3 backend", key);
        }
    }
    if (!s3->endpoint)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'storage.endpoint' is required for the s3 backend");
    if (!s3->bucket)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'storage.bucket' is required for the s3 backend");
    if (!s3->access_key != !s3->secret_key)
        return mlreg_error_set(MLREG_EINVALID,
                               "config keys 'storage.access_key' and 'storage.secret_key' go "
                               "together (or leave both out to use AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY)");
    return 0;
}

static int load_storage(mlreg_config *cfg, json_t *obj)
{
    const char *key;
    json_t *v;
    json_t *backend;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'storage' must be an object");
    backend = json_object_get(obj, "backend");
    if (backend) {
        int error = get_string(&cfg->storage_backend, backend, "storage.backend");
        if (error < 0) return error;
    }
    if (!strcmp(cfg->storage_backend, "s3")) return load_storage_s3(cfg, obj);
    if (strcmp(cfg->storage_backend, "fs"))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'storage.backend': unknown backend '%s' (use \"fs\" "
                               "or \"s3\")",
                               cfg->storage_backend);
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "backend"))
            return mlreg_error_set(MLREG_EINVALID,
                                   "unknown config key 'storage.%s' for the fs backend", key);
    }
    return 0;
}

/* The limits of the HTTP server: integers with a range each, 0 never (the
 * default is spelled by leaving the key out). */
static const uint_key server_limits[] = {
    {"max_connections", offsetof(mlreg_config, max_connections), 16, 1000000},
    {"max_connections_per_address", offsetof(mlreg_config, max_connections_per_address), 1,
     1000000},
    {"header_timeout_seconds", offsetof(mlreg_config, header_timeout), 1, 3600},
    {"idle_timeout_seconds", offsetof(mlreg_config, idle_timeout), 1, 3600},
    {"body_timeout_seconds", offsetof(mlreg_config, body_timeout), 1, 86400},
    {"upload_sessions_per_identity", offsetof(mlreg_config, uploads_per_identity), 1, 4096},
    {"upload_sessions_per_repository", offsetof(mlreg_config, uploads_per_repository), 1, 4096},
    {"upload_idle_seconds", offsetof(mlreg_config, upload_idle_timeout), 1, 86400},
};

static int load_limits(mlreg_config *cfg, json_t *obj)
{
    const char *key;
    json_t *v;
    uint64_t n;
    int error;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'limits' must be an object");
    json_object_foreach(obj, key, v)
    {
        size_t nlim = sizeof(server_limits) / sizeof(server_limits[0]);
        if (!strcmp(key, "max_manifest_bytes")) {
            if ((error = get_uint(&n, v, "limits.max_manifest_bytes", MIN_MANIFEST_BYTES,
                                  MAX_MANIFEST_BYTES)) < 0)
                return error;
            cfg->max_manifest_bytes = (size_t)n;
            continue;
        }
        if (!strcmp(key, "map_size")) {
            if ((error = get_uint(&n, v, "limits.map_size", MIN_MAP_SIZE, (uint64_t)SIZE_MAX)) < 0)
                return error;
            cfg->map_size = (size_t)n;
            continue;
        }
        if (!strcmp(key, "max_upload_bytes")) {
            if ((error = get_uint(&n, v, "limits.max_upload_bytes", 1, MAX_UPLOAD_BYTES)) < 0)
                return error;
            cfg->max_upload_bytes = n;
            continue;
        }
        if ((error = set_uint_key(cfg, server_limits, nlim, "limits", key, v)) < 0) return error;
        if (error == 0)
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'limits.%s'", key);
    }
    return 0;
}

static int load_server(mlreg_config *cfg, json_t *obj)
{
    const char *key;
    json_t *v;
    uint64_t n;
    int error;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'server' must be an object");
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "threads")) {
            if ((error = get_uint(&n, v, "server.threads", 1, MAX_THREADS)) < 0) return error;
            cfg->threads = (unsigned int)n;
        } else {
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'server.%s'", key);
        }
    }
    return 0;
}

/* The longest scrub.interval: a year. */
#define MAX_SCRUB_INTERVAL (366ull * 86400)

/* A duration: an integer of seconds, or a string of digits and one unit
 * ("90s", "30m", "6h", "7d"); "0" and 0 are off. */
static int get_duration(uint64_t *out, json_t *v, const char *key)
{
    const char *s, *p;
    uint64_t n = 0, unit = 1;

    if (json_is_integer(v)) return get_uint(out, v, key, 0, MAX_SCRUB_INTERVAL);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        goto bad;
    s = json_string_value(v);
    for (p = s; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > MAX_SCRUB_INTERVAL) goto range;
    }
    if (p == s) goto bad;
    if (*p != '\0') {
        if (p[1] != '\0') goto bad;
        switch (*p) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: goto bad;
        }
    }
    if (n * unit > MAX_SCRUB_INTERVAL) goto range;
    *out = n * unit;
    return 0;
bad:
    return mlreg_error_set(MLREG_EINVALID,
                           "config key '%s' must be a duration: seconds, or a string like "
                           "\"90s\", \"30m\", \"6h\", \"7d\"",
                           key);
range:
    return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be at most 366 days", key);
}

/* scrub: the scrub `mlreg serve` runs on its own. */
static int load_scrub(mlreg_config *cfg, json_t *obj)
{
    const char *key;
    json_t *v;
    int error;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'scrub' must be an object");
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "interval")) {
            if ((error = get_duration(&cfg->scrub_interval, v, "scrub.interval")) < 0) return error;
        } else if (!strcmp(key, "rate_bytes_per_second")) {
            if ((error = get_uint(&cfg->scrub_rate, v, "scrub.rate_bytes_per_second", 0,
                                  1ull << 50)) < 0)
                return error;
        } else {
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'scrub.%s'", key);
        }
    }
    return 0;
}

/* Defined below: a file named in the config is relative to its directory. */
static int resolve_key_path(char **out, const char *config_path, const char *file);

int mlreg_config_resolve_path(char **out, const char *config_path, const char *file)
{
    return resolve_key_path(out, config_path, file);
}

/* audit: the log key shared by the nodes of one bucket. */
static int load_audit(mlreg_config *cfg, json_t *obj, const char *config_path)
{
    const char *key;
    json_t *v;
    char *file = NULL;
    int error;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'audit' must be an object");
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "log_key_file")) {
            if ((error = get_string(&file, v, "audit.log_key_file")) < 0) return error;
            free(cfg->log_key_file);
            cfg->log_key_file = NULL;
            error = resolve_key_path(&cfg->log_key_file, config_path, file);
            free(file);
            if (error < 0) return error;
        } else {
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'audit.%s'", key);
        }
    }
    return 0;
}

/* tls: the server's certificate and key, both or neither, and the client
 * CA of mutual TLS; files relative to the config's directory. The files
 * themselves are read and checked when the server starts
 * (mlreg_server_tls_load()). */
static int load_tls(mlreg_config *cfg, json_t *obj, const char *config_path)
{
    const struct {
        const char *name, *label;
        char **dst;
    } keys[] = {{"cert_file", "tls.cert_file", &cfg->tls.cert_file},
                {"key_file", "tls.key_file", &cfg->tls.key_file},
                {"client_ca_file", "tls.client_ca_file", &cfg->tls.client_ca_file}};
    const char *key;
    json_t *v;
    int error;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'tls' must be an object");
    json_object_foreach(obj, key, v)
    {
        size_t i;
        char *file = NULL;
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (!strcmp(key, keys[i].name)) break;
        if (i == sizeof(keys) / sizeof(keys[0]))
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'tls.%s'", key);
        if ((error = get_string(&file, v, keys[i].label)) < 0) return error;
        free(*keys[i].dst);
        *keys[i].dst = NULL;
        error = resolve_key_path(keys[i].dst, config_path, file);
        free(file);
        if (error < 0) return error;
    }
    if (!cfg->tls.cert_file != !cfg->tls.key_file)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'tls.%s' is missing: TLS needs both tls.cert_file and "
                               "tls.key_file",
                               cfg->tls.cert_file ? "key_file" : "cert_file");
    if (cfg->tls.client_ca_file && !cfg->tls.cert_file)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'tls.client_ca_file' needs tls.cert_file and "
                               "tls.key_file: mutual TLS runs over the server's TLS");
    return 0;
}

/* cluster: following the log shared through the object store. */
static int load_cluster(mlreg_config *cfg, json_t *obj, const char *config_path)
{
    static const uint_key nums[] = {
        {"poll_ms", offsetof(mlreg_config_cluster, poll_ms), 10, 60000},
        {"heartbeat_ms", offsetof(mlreg_config_cluster, heartbeat_ms), 100, 600000},
        {"commit_attempts", offsetof(mlreg_config_cluster, attempts), 1, 1000},
        {"scrub_entries_per_poll", offsetof(mlreg_config_cluster, scrub_per_poll), 1, 10000},
        {"ready_max_lag", offsetof(mlreg_config_cluster, ready_max_lag), 1, 1000000000},
    };
    const char *key;
    json_t *v;
    int error;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'cluster' must be an object");
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "node_id")) {
            if ((error = get_string(&cfg->cluster.node_id, v, "cluster.node_id")) < 0) return error;
            continue;
        }
        if (!strcmp(key, "ca_file")) {
            char *file = NULL;
            if ((error = get_string(&file, v, "cluster.ca_file")) < 0) return error;
            free(cfg->cluster.ca_file);
            cfg->cluster.ca_file = NULL;
            error = resolve_key_path(&cfg->cluster.ca_file, config_path, file);
            free(file);
            if (error < 0) return error;
            continue;
        }
        if (!strcmp(key, "url")) {
            const char *u;
            if ((error = get_string(&cfg->cluster.url, v, "cluster.url")) < 0) return error;
            u = cfg->cluster.url;
            if ((strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) || strchr(u, '?') ||
                strlen(u) > 1024 || u[strlen(u) - 1] == '/')
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key 'cluster.url': '%s' is not "
                                       "http(s)://HOST[:PORT] (without a trailing slash)",
                                       u);
            continue;
        }
        if ((error = set_uint_key(&cfg->cluster, nums, sizeof(nums) / sizeof(nums[0]), "cluster",
                                  key, v)) < 0)
            return error;
        if (error == 0)
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'cluster.%s'", key);
    }
    return 0;
}

/* gc: garbage collection of unreferenced blobs; durations as scrub's. */
static int load_gc(mlreg_config *cfg, json_t *obj)
{
    const struct {
        const char *key, *old; /* the name, and the one it had before */
        unsigned int *dst;
        uint64_t min;
    } keys[] = {
        {"grace", "grace_seconds", &cfg->gc.grace_seconds, 0},
        {"interval", "interval_seconds", &cfg->gc.interval_seconds, 0},
        {"stale_upload_age", "stale_upload_seconds", &cfg->gc.stale_upload_seconds, 1},
    };
    const char *key;
    json_t *v;
    char name[64];
    uint64_t n;
    size_t i;
    int error;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'gc' must be an object");
    json_object_foreach(obj, key, v)
    {
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            if (!strcmp(key, keys[i].old))
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key 'gc.%s' is now 'gc.%s', a duration: seconds, "
                                       "or a string like \"90s\", \"30m\", \"24h\", \"7d\"",
                                       key, keys[i].key);
            if (strcmp(key, keys[i].key)) continue;
            snprintf(name, sizeof(name), "gc.%s", keys[i].key);
            if ((error = get_duration(&n, v, name)) < 0) return error;
            if (n < keys[i].min)
                return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be at least %llu s",
                                       name, (unsigned long long)keys[i].min);
            *keys[i].dst = (unsigned int)n;
            break;
        }
        if (i == sizeof(keys) / sizeof(keys[0]))
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'gc.%s'", key);
    }
    return 0;
}

/* A retention[].models pattern: the characters of a model name and the
 * glob characters * ? [ ] ! \, every bracket expression closed, no
 * trailing backslash. A pattern fnmatch() would read differently from
 * what its writer meant stops the start rather than match nothing. */
static int check_pattern(const char *pat, const char *label)
{
    const char *p;

    if (strlen(pat) > MLREG_CONFIG_RETENTION_PATTERN_MAX)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' is longer than %d bytes", label,
                               MLREG_CONFIG_RETENTION_PATTERN_MAX);
    for (p = pat; *p; p++) {
        if (*p == '\\') {
            if (p[1] == '\0')
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key '%s': pattern '%s' ends in a lone backslash",
                                       label, pat);
            p++;
            continue;
        }
        if (*p == '[') {
            const char *q = p + 1;
            if (*q == '!' || *q == '^') q++;
            if (*q == ']') q++; /* a ']' first is a member */
            while (*q && *q != ']')
                q++;
            if (*q != ']')
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key '%s': pattern '%s' has a '[' without its ']'",
                                       label, pat);
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._/-*?[]!^", *p)))
            return mlreg_error_set(MLREG_EINVALID,
                                   "config key '%s': pattern '%s' has a character no model name "
                                   "holds (models are lower case [a-z0-9._/-]; globs * ? [...])",
                                   label, pat);
    }
    return 0;
}

/* retention[i].protected_stages: an array of distinct stage names. */
static int load_protected(mlreg_config_retention *r, json_t *arr, const char *label)
{
    size_t i, j, n;
    json_t *s;

    if (!json_is_array(arr))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be an array of stage names",
                               label);
    n = json_array_size(arr);
    if (n == 0) return 0;
    if (n > MLREG_MAX_STAGES)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' names more than %d stages", label,
                               MLREG_MAX_STAGES);
    if ((r->protected_stages = calloc(n, sizeof(*r->protected_stages))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    json_array_foreach(arr, i, s)
    {
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s) ||
            mlreg_tag_validate(json_string_value(s)) < 0) {
            mlreg_error_clear();
            return mlreg_error_set(MLREG_EINVALID, "config key '%s[%zu]' must be a stage name",
                                   label, i);
        }
        for (j = 0; j < i; j++)
            if (!strcmp(r->protected_stages[j], json_string_value(s)))
                return mlreg_error_set(MLREG_EINVALID, "config key '%s' names stage '%s' twice",
                                       label, json_string_value(s));
        if ((r->protected_stages[i] = strdup(json_string_value(s))) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        r->n_protected_stages = i + 1;
    }
    return 0;
}

/* One retention rule; "models" and "keep_last" are required, so a rule
 * never purges more than its writer said. */
static int load_retention_rule(mlreg_config_retention *r, json_t *obj, size_t idx)
{
    const char *key;
    json_t *v;
    char label[64], sub[96];
    uint64_t n;
    int error;

    snprintf(label, sizeof(label), "retention[%zu]", idx);
    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be an object", label);
    json_object_foreach(obj, key, v)
    {
        snprintf(sub, sizeof(sub), "%s.%s", label, key);
        if (!strcmp(key, "models")) {
            if ((error = get_string(&r->models, v, sub)) < 0 ||
                (error = check_pattern(r->models, sub)) < 0)
                return error;
        } else if (!strcmp(key, "keep_last")) {
            if ((error = get_uint(&n, v, sub, 0, MLREG_CONFIG_RETENTION_KEEP_MAX)) < 0)
                return error;
            r->keep_last = (unsigned int)n;
        } else if (!strcmp(key, "held_within")) {
            if ((error = get_duration(&r->held_within, v, sub)) < 0) return error;
        } else if (!strcmp(key, "withdrawn_for")) {
            if ((error = get_duration(&r->withdrawn_for, v, sub)) < 0) return error;
        } else if (!strcmp(key, "protected_stages")) {
            if ((error = load_protected(r, v, sub)) < 0) return error;
        } else {
            return mlreg_error_set(MLREG_EINVALID, "unknown config key '%s'", sub);
        }
    }
    if (r->models == NULL)
        return mlreg_error_set(
            MLREG_EINVALID, "config key '%s' lacks \"models\" (a pattern of model names)", label);
    if (json_object_get(obj, "keep_last") == NULL)
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s' lacks \"keep_last\" (how many of the newest "
                               "releases to keep; 0 is allowed)",
                               label);
    return 0;
}

/* retention: an array of rules, the first matching a model applies. */
static int load_retention(mlreg_config *cfg, json_t *arr)
{
    size_t n, i;
    int error;

    if (!json_is_array(arr))
        return mlreg_error_set(MLREG_EINVALID, "config key 'retention' must be an array of rules");
    n = json_array_size(arr);
    if (n > MLREG_CONFIG_RETENTION_RULES_MAX)
        return mlreg_error_set(MLREG_EINVALID, "config key 'retention' holds more than %d rules",
                               MLREG_CONFIG_RETENTION_RULES_MAX);
    if (n == 0) return 0;
    if ((cfg->retention = calloc(n, sizeof(*cfg->retention))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        cfg->n_retention = i + 1; /* so mlreg_config_free sees partial rules */
        if ((error = load_retention_rule(&cfg->retention[i], json_array_get(arr, i), i)) < 0)
            return error;
    }
    return 0;
}

/* A protected stage must be a stage of the config (or of the defaults): a
 * misspelt one would protect nothing. Runs once the policy is parsed. */
static int check_retention_stages(const mlreg_config *cfg)
{
    for (size_t i = 0; i < cfg->n_retention; i++) {
        const mlreg_config_retention *r = &cfg->retention[i];
        for (size_t j = 0; j < r->n_protected_stages; j++)
            if (mlreg_policy_stage_index(cfg->policy, r->protected_stages[j]) < 0)
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key 'retention[%zu].protected_stages[%zu]': "
                                       "unknown stage '%s' (not in 'stages')",
                                       i, j, r->protected_stages[j]);
    }
    return 0;
}

/* Resolves @p file against the directory of the config file @p config_path
 * (an absolute @p file stays as it is) into *out, malloc'd. */
static int resolve_key_path(char **out, const char *config_path, const char *file)
{
    const char *slash = strrchr(config_path, '/');
    size_t dlen, n;
    char *p;

    if (file[0] == '/' || !slash) {
        if (!(p = strdup(file))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        *out = p;
        return 0;
    }
    dlen = (size_t)(slash - config_path) + 1; /* keeps the '/' ("/x.json" -> "/") */
    n = dlen + strlen(file) + 1;
    if (!(p = malloc(n))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    memcpy(p, config_path, dlen);
    memcpy(p + dlen, file, strlen(file) + 1);
    *out = p;
    return 0;
}

/* One trusted_keys entry: exactly "name", "file" and "role", strings; the
 * file is read and parsed now, so a bad key stops the start. Messages name
 * the entry by index and, once known, by name and file. */
static int load_trusted_key(mlreg_config_key *k, json_t *obj, size_t idx, const char *config_path)
{
    const char *key;
    json_t *v;
    json_t *name, *file, *role;
    char label[64];
    int error;

    snprintf(label, sizeof(label), "trusted_keys[%zu]", idx);
    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' must be an object", label);
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "file") && strcmp(key, "role"))
            return mlreg_error_set(MLREG_EINVALID, "unknown config key '%s.%s'", label, key);
    }
    name = json_object_get(obj, "name");
    file = json_object_get(obj, "file");
    role = json_object_get(obj, "role");
    if (!name) return mlreg_error_set(MLREG_EINVALID, "config key '%s' lacks \"name\"", label);
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        strlen(json_string_value(name)) != json_string_length(name))
        return mlreg_error_set(MLREG_EINVALID, "config key '%s.name' must be a non-empty string",
                               label);
    if ((error = mlreg_config_set_string(&k->name, json_string_value(name))) < 0) return error;
    if (!mlreg_label_valid(k->name, strlen(k->name), MLREG_CONFIG_KEY_NAME_MAX))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s.name' must be 1 to %d printable ASCII characters",
                               label, MLREG_CONFIG_KEY_NAME_MAX);
    if (!file)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' (key '%s') lacks \"file\"", label,
                               k->name);
    if (!role)
        return mlreg_error_set(MLREG_EINVALID, "config key '%s' (key '%s') lacks \"role\"", label,
                               k->name);
    if (!json_is_string(role) || strlen(json_string_value(role)) != json_string_length(role) ||
        !mlreg_key_role_valid(json_string_value(role), MLREG_CONFIG_KEY_ROLE_MAX))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s.role' (key '%s') must match [a-z][a-z0-9_-]* "
                               "(at most %d bytes)",
                               label, k->name, MLREG_CONFIG_KEY_ROLE_MAX);
    if ((error = mlreg_config_set_string(&k->role, json_string_value(role))) < 0) return error;
    if (!json_is_string(file) || json_string_length(file) == 0 ||
        strlen(json_string_value(file)) != json_string_length(file))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key '%s.file' (key '%s') must be a non-empty string", label,
                               k->name);
    if ((error = resolve_key_path(&k->file, config_path, json_string_value(file))) < 0)
        return error;
    if (mlreg_pubkey_load(&k->pubkey, k->file) < 0) {
        /* the signing library's message says what is wrong with the file */
        char why[512];
        snprintf(why, sizeof(why), "%s", mlreg_error_last());
        return mlreg_error_set(MLREG_EINVALID,
                               "trusted key '%s': cannot load public key file %s: %s", k->name,
                               k->file, why);
    }
    return 0;
}

/* trusted_keys: an array of entries; names and key ids must be unique, so a
 * listing, a revocation or a message never has to choose between two. */
static int load_trusted_keys(mlreg_config *cfg, json_t *arr, const char *config_path)
{
    size_t n;
    int error;

    if (!json_is_array(arr))
        return mlreg_error_set(MLREG_EINVALID, "config key 'trusted_keys' must be an array");
    n = json_array_size(arr);
    if (n == 0) return 0;
    if (!(cfg->trusted_keys = calloc(n, sizeof(*cfg->trusted_keys))))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        mlreg_config_key *k = &cfg->trusted_keys[i];
        cfg->n_trusted_keys = i + 1; /* so mlreg_config_free sees partial entries */
        if ((error = load_trusted_key(k, json_array_get(arr, i), i, config_path)) < 0) return error;
        for (size_t j = 0; j < i; j++) {
            const mlreg_config_key *o = &cfg->trusted_keys[j];
            char id[MLREG_KEYID_HEXLEN + 1];
            if (!strcmp(o->name, k->name))
                return mlreg_error_set(
                    MLREG_EINVALID, "config key 'trusted_keys': duplicate key name '%s'", k->name);
            if (mlreg_keyid_equal(&o->pubkey.id, &k->pubkey.id)) {
                mlreg_keyid_format(id, &k->pubkey.id);
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key 'trusted_keys': key '%s' (%s) has the same key "
                                       "id %s as key '%s'",
                                       k->name, k->file, id, o->name);
            }
            /* a key id is not signed: the same key under another id would
             * be one signer counted twice */
            if (!memcmp(o->pubkey.pk, k->pubkey.pk, sizeof(k->pubkey.pk)))
                return mlreg_error_set(MLREG_EINVALID,
                                       "config key 'trusted_keys': key '%s' (%s) is the same "
                                       "public key as key '%s' under another key id",
                                       k->name, k->file, o->name);
        }
    }
    return 0;
}

/* metrics: who may read GET /metrics. */
static int load_metrics(mlreg_config *cfg, json_t *obj)
{
    const char *key;
    json_t *v;
    int error;

    if (!json_is_object(obj))
        return mlreg_error_set(MLREG_EINVALID, "config key 'metrics' must be an object");
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "public"))
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'metrics.%s'", key);
        if ((error = get_bool(&cfg->metrics_public, v, "metrics.public")) < 0) return error;
    }
    return 0;
}

/* Walks the top level. */
static int load_root(mlreg_config *cfg, json_t *root, const char *path)
{
    const char *key;
    json_t *v;
    int error;

    if (!json_is_object(root))
        return mlreg_error_set(MLREG_EINVALID, "config file must hold a JSON object");
    json_object_foreach(root, key, v)
    {
        if (!strcmp(key, "listen")) {
            char host[256];
            unsigned int port;
            if ((error = get_string(&cfg->listen, v, "listen")) < 0) return error;
            if (mlreg_config_parse_listen(host, sizeof(host), &port, cfg->listen) < 0)
                return mlreg_error_set(MLREG_EINVALID, "config key 'listen': '%s' is not HOST:PORT",
                                       cfg->listen);
        } else if (!strcmp(key, "data_dir")) {
            if ((error = get_string(&cfg->data_dir, v, "data_dir")) < 0) return error;
        } else if (!strcmp(key, "storage")) {
            if ((error = load_storage(cfg, v)) < 0) return error;
        } else if (!strcmp(key, "tls")) {
            if ((error = load_tls(cfg, v, path)) < 0) return error;
        } else if (!strcmp(key, "audit")) {
            if ((error = load_audit(cfg, v, path)) < 0) return error;
        } else if (!strcmp(key, "cluster")) {
            if ((error = load_cluster(cfg, v, path)) < 0) return error;
        } else if (!strcmp(key, "gc")) {
            if ((error = load_gc(cfg, v)) < 0) return error;
        } else if (!strcmp(key, "limits")) {
            if ((error = load_limits(cfg, v)) < 0) return error;
        } else if (!strcmp(key, "server")) {
            if ((error = load_server(cfg, v)) < 0) return error;
        } else if (!strcmp(key, "scrub")) {
            if ((error = load_scrub(cfg, v)) < 0) return error;
        } else if (!strcmp(key, "trusted_keys")) {
            if ((error = load_trusted_keys(cfg, v, path)) < 0) return error;
        } else if (!strcmp(key, "retention")) {
            if ((error = load_retention(cfg, v)) < 0) return error;
        } else if (!strcmp(key, "metrics")) {
            if ((error = load_metrics(cfg, v)) < 0) return error;
        } else if (!strcmp(key, "webhooks")) {
            mlreg_webhooks_free(cfg->webhooks);
            cfg->webhooks = NULL;
            if ((error = mlreg_webhooks_parse(&cfg->webhooks, v, path)) < 0) return error;
        } else if (!strcmp(key, "stages") || !strcmp(key, "gates") || !strcmp(key, "models") ||
                   !strcmp(key, "tokens")) {
            continue; /* load_policy(), once every key is known */
        } else {
            return mlreg_error_set(MLREG_EINVALID, "unknown config key '%s'", key);
        }
    }
    return 0;
}

/* stages, gates, models and tokens: parsed after the walk, because gates
 * and token roles name stages and `stages` may come later in the file.
 * @p root is NULL without a config file (the defaults). */
static int load_policy(mlreg_config *cfg, const json_t *root)
{
    int error;

    if ((error = mlreg_policy_parse(&cfg->policy, json_object_get(root, "stages"),
                                    json_object_get(root, "gates"),
                                    json_object_get(root, "models"))) < 0)
        return error;
    return mlreg_auth_new(&cfg->auth, json_object_get(root, "tokens"),
                          mlreg_policy_stages(cfg->policy), mlreg_policy_stage_count(cfg->policy));
}

/* Sets fp[path] to the hex SHA-256 of @p v's JSON (keys sorted, compact). */
static int fingerprint_one(json_t *fp, const char *path, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char hex[MLREG_DIGEST_HEXLEN + 1];
    mlreg_digest d;
    int error = 0;

    if (text == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory reading the config");
    if ((error = mlreg_digest_buffer(&d, text, strlen(text))) == 0) {
        mlreg_digest_hex(hex, &d);
        if (json_object_set_new(fp, path, json_string(hex)) < 0)
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading the config");
    }
    /* the text may hold a secret (storage.secret_key) */
    explicit_bzero(text, strlen(text));
    free(text);
    return error;
}

/* The fingerprints of every key of @p root (config.h): a top-level key
 * holding an object gets one per member ("limits.max_upload_bytes"), any
 * other one for itself. */
static int fingerprint(json_t **out, const json_t *root)
{
    json_t *fp = json_object(), *v, *m;
    const char *key, *mkey;
    char path[512];
    int error = 0;

    if (fp == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory reading the config");
    json_object_foreach((json_t *)(uintptr_t)root, key, v)
    {
        if (!json_is_object(v)) {
            if ((error = fingerprint_one(fp, key, v)) < 0) goto done;
            continue;
        }
        json_object_foreach(v, mkey, m)
        {
            snprintf(path, sizeof(path), "%.200s.%.200s", key, mkey);
            if ((error = fingerprint_one(fp, path, m)) < 0) goto done;
        }
    }
    *out = fp;
    fp = NULL;
done:
    json_decref(fp);
    return error;
}

json_t *mlreg_config_changed_keys(const mlreg_config *a, const mlreg_config *b)
{
    json_t *out = json_array(), *v;
    const char *key;
    const mlreg_config *side[2] = {a, b};

    if (out == NULL) goto oom;
    for (int s = 0; s < 2; s++) {
        const json_t *mine = side[s]->fingerprints, *other = side[1 - s]->fingerprints;
        json_object_foreach((json_t *)(uintptr_t)mine, key, v)
        {
            const json_t *o = json_object_get(other, key);
            if (o != NULL && (s == 1 || json_equal(o, v))) continue;
            if (json_array_append_new(out, json_string(key)) < 0) goto oom;
        }
    }
    /* sorted, so messages and audit entries do not depend on hash order */
    for (size_t i = 1; i < json_array_size(out); i++)
        for (size_t j = i; j > 0 && strcmp(json_string_value(json_array_get(out, j - 1)),
                                           json_string_value(json_array_get(out, j))) > 0;
             j--) {
            json_t *t = json_incref(json_array_get(out, j));
            json_array_set(out, j, json_array_get(out, j - 1));
            json_array_set_new(out, j - 1, t);
        }
    return out;
oom:
    json_decref(out);
    mlreg_error_set(MLREG_ENOMEM, "out of memory comparing configs");
    return NULL;
}

/* Reads @p path whole (the bytes a reload's digest is of) and parses them:
 * the messages are those of json_load_file(), with the line and column. */
static int read_root(json_t **out, char sha256[65], const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    json_error_t jerr;
    mlreg_digest d;
    int error;

    *out = NULL;
    if ((error = mlreg_file_read(&buf, &len, path, MLREG_CONFIG_FILE_MAX)) < 0) {
        char why[300];
        const char *w = mlreg_error_last();
        size_t plen = strlen(path);
        /* the file reader's message starts with the path, said already */
        if (!strncmp(w, path, plen) && w[plen] == ':' && w[plen + 1] == ' ') w += plen + 2;
        snprintf(why, sizeof(why), "%s", w);
        error = error == MLREG_ENOMEM
                    ? error
                    : mlreg_error_set(MLREG_EIO, "cannot read config %s: %s", path, why);
        goto done;
    }
    if ((error = mlreg_digest_buffer(&d, buf, len)) < 0) goto done;
    mlreg_digest_hex(sha256, &d);
    if ((*out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        error = mlreg_error_set(MLREG_EINVALID, "config %s:%d:%d: %s", path, jerr.line, jerr.column,
                                jerr.text);
done:
    /* the file may hold a secret (storage.secret_key) */
    if (buf != NULL) explicit_bzero(buf, len);
    free(buf);
    return error;
}

int mlreg_config_load(mlreg_config **out, const char *path)
{
    int error = 0;
    mlreg_config *cfg = NULL;
    json_t *root = NULL;

    if (!(cfg = calloc(1, sizeof(*cfg)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    cfg->max_manifest_bytes = MLREG_DEFAULT_MAX_MANIFEST_BYTES;
    cfg->map_size = 0;
    cfg->threads = MLREG_SERVER_DEFAULT_THREADS;
    cfg->gc.grace_seconds = MLREG_GC_GRACE_DEFAULT;
    cfg->gc.stale_upload_seconds = MLREG_GC_STALE_UPLOAD_DEFAULT;
    if ((error = mlreg_config_set_string(&cfg->listen, MLREG_CONFIG_DEFAULT_LISTEN)) < 0 ||
        (error = mlreg_config_set_string(&cfg->data_dir, MLREG_CONFIG_DEFAULT_DATA_DIR)) < 0 ||
        (error = mlreg_config_set_string(&cfg->storage_backend, "fs")) < 0)
        goto done;
    if (path) {
        if ((error = read_root(&root, cfg->sha256, path)) < 0) goto done;
        if ((error = load_root(cfg, root, path)) < 0) goto done;
        if ((error = fingerprint(&cfg->fingerprints, root)) < 0) goto done;
    } else if ((cfg->fingerprints = json_object()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = load_policy(cfg, root)) < 0 || (error = check_retention_stages(cfg)) < 0)
        goto done;
    *out = cfg;
    cfg = NULL;
done:
    json_decref(root);
    mlreg_config_free(cfg);
    return error;
}

int mlreg_config_parse_listen(char *host_out, size_t host_len, unsigned int *port_out,
                              const char *listen)
{
    const char *host = listen, *colon, *p;
    size_t hlen;
    unsigned long port = 0;

    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return mlreg_error_set(MLREG_EINVALID, "bad listen address '%s'", listen);
        host = listen + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            return mlreg_error_set(MLREG_EINVALID,
                                   "bad listen address '%s' (want HOST:PORT or [V6]:PORT)", listen);
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= host_len)
        return mlreg_error_set(MLREG_EINVALID, "bad listen address '%s'", listen);
    p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return mlreg_error_set(MLREG_EINVALID, "bad port in listen address '%s'", listen);
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return mlreg_error_set(MLREG_EINVALID, "bad port in listen address '%s'", listen);
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        return mlreg_error_set(MLREG_EINVALID, "bad port in listen address '%s'", listen);
    memcpy(host_out, host, hlen);
    host_out[hlen] = '\0';
    *port_out = (unsigned int)port;
    return 0;
}

int mlreg_config_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (!strcmp(host, "localhost")) return 1;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}
