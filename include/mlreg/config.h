/**
 * @file config.h
 * @brief The server's JSON config file (jansson). Every key is documented in
 *        conf/README.md; conf/mlreg.json holds the defaults.
 *
 * Loading is strict: an unknown key, a key of a later feature (stages, gates,
 * models, tokens, trusted_keys, tls), a value of the wrong type or out of
 * range stops the server with a message naming the key.
 */
#ifndef MLREG_CONFIG_H
#define MLREG_CONFIG_H

#include <stddef.h>

/** Defaults used when the config file (or a key) is absent. */
#define MLREG_CONFIG_DEFAULT_LISTEN   "127.0.0.1:5080"
#define MLREG_CONFIG_DEFAULT_DATA_DIR "./mlreg-data"

typedef struct {
    char *listen;              /**< "HOST:PORT" or "[V6]:PORT" (malloc'd) */
    char *data_dir;            /**< data directory (malloc'd) */
    char *storage_backend;     /**< "fs" (the only backend of this build; malloc'd) */
    size_t max_manifest_bytes; /**< limits.max_manifest_bytes */
    size_t map_size;           /**< limits.map_size (LMDB map size, bytes); 0 = default */
    unsigned int threads;      /**< server.threads */
} mlreg_config;

/**
 * Loads @p path (NULL = defaults only) into a new config owned by the caller
 * (free with mlreg_config_free).
 * @return 0, MLREG_EINVALID (message names the key or the JSON error and its
 *         line), MLREG_EUNSUPPORTED (a key or backend not in this build;
 *         message names it), MLREG_EIO (unreadable file), MLREG_ENOMEM.
 */
int mlreg_config_load(mlreg_config **out, const char *path);

/** Replaces a string field (listen, data_dir) with a copy of @p value. 0 or MLREG_ENOMEM. */
int mlreg_config_set_string(char **field, const char *value);

/** Frees @p cfg and its strings; NULL is a no-op. */
void mlreg_config_free(mlreg_config *cfg);

/**
 * Splits a listen address "HOST:PORT" / "[V6]:PORT" into @p host_out (size
 * @p host_len, without brackets) and @p port_out. 0 or MLREG_EINVALID.
 */
int mlreg_config_parse_listen(char *host_out, size_t host_len, unsigned int *port_out,
                              const char *listen);

/** 1 when @p host is a loopback address (127.0.0.0/8, ::1, "localhost"), else 0. */
int mlreg_config_host_is_loopback(const char *host);

#endif
