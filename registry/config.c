/* config.c: the server's JSON config file, loaded strictly.
 *
 * Every accepted key is documented in conf/README.md. The rule from DESIGN.md
 * is that nothing is silently ignored: an unknown key, a key that belongs to a
 * later feature, or a bad value stops the server with the key's name, so an
 * operator never believes a setting (a gate, a token) is in force when it is
 * not.
 */
#include "mlreg/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/registry.h"
#include "mlreg/server.h"

/* Keys of features that later versions implement: refused, never ignored. */
static const char *const later_keys[] = {"stages", "gates",        "models",
                                         "tokens", "trusted_keys", "tls"};

#define MIN_MANIFEST_BYTES 1024u
#define MAX_MANIFEST_BYTES (64u * 1024 * 1024)
#define MIN_MAP_SIZE       (1u * 1024 * 1024)
#define MAX_THREADS        256

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
    if (!strcmp(cfg->storage_backend, "s3"))
        return mlreg_error_set(MLREG_EUNSUPPORTED,
                               "storage backend s3 is not available in this build yet");
    if (strcmp(cfg->storage_backend, "fs"))
        return mlreg_error_set(MLREG_EINVALID,
                               "config key 'storage.backend': unknown backend '%s' (use \"fs\")",
                               cfg->storage_backend);
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "backend"))
            return mlreg_error_set(MLREG_EINVALID,
                                   "unknown config key 'storage.%s' for the fs backend", key);
    }
    return 0;
}

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
        if (!strcmp(key, "max_manifest_bytes")) {
            if ((error = get_uint(&n, v, "limits.max_manifest_bytes", MIN_MANIFEST_BYTES,
                                  MAX_MANIFEST_BYTES)) < 0)
                return error;
            cfg->max_manifest_bytes = (size_t)n;
        } else if (!strcmp(key, "map_size")) {
            if ((error = get_uint(&n, v, "limits.map_size", MIN_MAP_SIZE, (uint64_t)SIZE_MAX)) < 0)
                return error;
            cfg->map_size = (size_t)n;
        } else {
            return mlreg_error_set(MLREG_EINVALID, "unknown config key 'limits.%s'", key);
        }
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

/* Walks the top level. Later-feature keys are checked by name first so the
 * message says "not supported by this version" rather than "unknown". */
static int load_root(mlreg_config *cfg, json_t *root)
{
    const char *key;
    json_t *v;
    int error;

    if (!json_is_object(root))
        return mlreg_error_set(MLREG_EINVALID, "config file must hold a JSON object");
    json_object_foreach(root, key, v)
    {
        for (size_t i = 0; i < sizeof(later_keys) / sizeof(later_keys[0]); i++)
            if (!strcmp(key, later_keys[i]))
                return mlreg_error_set(MLREG_EUNSUPPORTED,
                                       "config key '%s' is not supported by this version of mlreg",
                                       key);
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
        } else if (!strcmp(key, "limits")) {
            if ((error = load_limits(cfg, v)) < 0) return error;
        } else if (!strcmp(key, "server")) {
            if ((error = load_server(cfg, v)) < 0) return error;
        } else {
            return mlreg_error_set(MLREG_EINVALID, "unknown config key '%s'", key);
        }
    }
    return 0;
}

int mlreg_config_load(mlreg_config **out, const char *path)
{
    int error = 0;
    mlreg_config *cfg = NULL;
    json_t *root = NULL;
    json_error_t jerr;

    if (!(cfg = calloc(1, sizeof(*cfg)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    cfg->max_manifest_bytes = MLREG_DEFAULT_MAX_MANIFEST_BYTES;
    cfg->map_size = 0;
    cfg->threads = MLREG_SERVER_DEFAULT_THREADS;
    if ((error = mlreg_config_set_string(&cfg->listen, MLREG_CONFIG_DEFAULT_LISTEN)) < 0 ||
        (error = mlreg_config_set_string(&cfg->data_dir, MLREG_CONFIG_DEFAULT_DATA_DIR)) < 0 ||
        (error = mlreg_config_set_string(&cfg->storage_backend, "fs")) < 0)
        goto done;
    if (path) {
        root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
            if (jerr.line < 0 || json_error_code(&jerr) == json_error_cannot_open_file)
                error = mlreg_error_set(MLREG_EIO, "cannot read config %s: %s", path, jerr.text);
            else
                error = mlreg_error_set(MLREG_EINVALID, "config %s:%d:%d: %s", path, jerr.line,
                                        jerr.column, jerr.text);
            goto done;
        }
        if ((error = load_root(cfg, root)) < 0) goto done;
    }
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
