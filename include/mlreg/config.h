/**
 * @file config.h
 * @brief The server's JSON config file (jansson). Every key is documented in
 *        conf/README.md; conf/mlreg.json holds the defaults.
 *
 * Loading is strict: an unknown key, a value of the wrong type or out of
 * range stops the server with a message naming the key. `stages`, `gates` and `models` are parsed
 * by gates.h (mlreg_policy_parse) and `tokens` by auth.h (mlreg_auth_new), with the same strictness
 * and the full key path in messages. `trusted_keys` entries are loaded completely at this point
 * (their `.pub` files read and parsed), so a bad key file stops the server at start, naming the key
 * and the file.
 */
#ifndef MLREG_CONFIG_H
#define MLREG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mlreg/auth.h"
#include "mlreg/events.h"
#include "mlreg/gates.h"
#include "mlreg/sign.h"

/** Defaults used when the config file (or a key) is absent. */
#define MLREG_CONFIG_DEFAULT_LISTEN   "127.0.0.1:5080"
#define MLREG_CONFIG_DEFAULT_DATA_DIR "./mlreg-data"

/** Longest `trusted_keys[].name`, in bytes. */
#define MLREG_CONFIG_KEY_NAME_MAX 128
/** Longest `trusted_keys[].role`, in bytes. */
#define MLREG_CONFIG_KEY_ROLE_MAX 64

/** One `trusted_keys` entry: a public key the operator trusts. */
typedef struct {
    char *name;          /**< unique within the config; printable, no control bytes (malloc'd) */
    char *role;          /**< `[a-z][a-z0-9_-]*` (malloc'd) */
    char *file;          /**< the `.pub` path resolved against the config file's directory
                              (malloc'd); kept for messages */
    mlreg_pubkey pubkey; /**< the key read from @c file; key ids are unique within the config */
} mlreg_config_key;

/** The `storage.*` keys of the s3 backend (conf/README.md). Strings are
 *  malloc'd or NULL; numbers are 0 when unset (the client's defaults). */
typedef struct {
    char *endpoint;         /**< required: "http(s)://host[:port]" */
    char *bucket;           /**< required */
    char *region;           /**< NULL: "us-east-1" */
    char *prefix;           /**< key prefix, "" or ending in '/' */
    char *access_key;       /**< NULL: $AWS_ACCESS_KEY_ID */
    char *secret_key;       /**< NULL: $AWS_SECRET_ACCESS_KEY; wiped on free */
    char *ca_file;          /**< custom CA bundle */
    int path_style;         /**< default 1 */
    int redirect_downloads; /**< blob GETs answer 307 to a presigned URL */
    unsigned int parts_in_flight;
    unsigned int max_attempts;
    unsigned int retry_base_ms;
    unsigned int retry_max_ms;
    unsigned int retry_total_ms;
    unsigned int presign_seconds; /**< lifetime of redirect URLs */
    unsigned int part_size_mib;   /**< first multipart part size; 0: 8 */
} mlreg_config_s3;

/** cluster.*: how a node follows the log shared through the object store
 *  (s3 backend; see cluster.h). 0 / NULL: the defaults. */
typedef struct {
    char *node_id;        /**< cluster.node_id */
    char *url;            /**< cluster.url: how other nodes reach this one */
    char *ca_file;        /**< cluster.ca_file: PEM CAs that verify other nodes' https URLs, or NULL
                               (the system's); resolved against the config's directory */
    unsigned int poll_ms; /**< cluster.poll_ms */
    unsigned int heartbeat_ms;   /**< cluster.heartbeat_ms */
    unsigned int attempts;       /**< cluster.commit_attempts */
    unsigned int scrub_per_poll; /**< cluster.scrub_entries_per_poll */
    unsigned int ready_max_lag;  /**< cluster.ready_max_lag (GET /readyz) */
} mlreg_config_cluster;

/** tls.*: HTTPS (server.h, mlreg_server_tls_load()). Paths resolved
 *  against the config file's directory (malloc'd), NULL when unset;
 *  cert_file and key_file are both set or both NULL. */
typedef struct {
    char *cert_file;      /**< tls.cert_file: PEM certificate, then its chain */
    char *key_file;       /**< tls.key_file: PEM private key, mode 0600 or stricter */
    char *client_ca_file; /**< tls.client_ca_file: PEM CAs of mutual TLS, or NULL */
} mlreg_config_tls;

/** gc.*: garbage collection (gc.h). */
typedef struct {
    unsigned int grace_seconds;        /**< gc.grace, seconds (default MLREG_GC_GRACE_DEFAULT) */
    unsigned int interval_seconds;     /**< gc.interval, seconds; 0: no scheduled collection */
    unsigned int stale_upload_seconds; /**< gc.stale_upload_age, seconds (default a day) */
} mlreg_config_gc;

/** Longest `retention[].models` pattern, in bytes. */
#define MLREG_CONFIG_RETENTION_PATTERN_MAX 512
/** Most `retention` rules. */
#define MLREG_CONFIG_RETENTION_RULES_MAX 256
/** Largest `retention[].keep_last`. */
#define MLREG_CONFIG_RETENTION_KEEP_MAX 1000000

/** One `retention` rule (conf/README.md, docs/lifecycle.md "Retention"):
 *  which releases of the models it matches are kept; the others are purged
 *  by a garbage collection (retention.h). */
typedef struct {
    char *models;              /**< fnmatch(3) pattern on the model name, flags 0 (malloc'd) */
    unsigned int keep_last;    /**< the newest N releases not withdrawn are kept */
    uint64_t held_within;      /**< seconds: a release a stage held this recently is kept */
    uint64_t withdrawn_for;    /**< seconds a withdrawn release is kept after its withdrawal */
    char **protected_stages;   /**< a release such a stage holds or ever held is kept (malloc'd) */
    size_t n_protected_stages; /**< entries in @c protected_stages */
} mlreg_config_retention;

typedef struct {
    char *listen;          /**< "HOST:PORT" or "[V6]:PORT" (malloc'd) */
    char *data_dir;        /**< data directory (malloc'd) */
    char *storage_backend; /**< "fs" or "s3" (malloc'd) */
    mlreg_config_s3 s3;    /**< storage.* of the s3 backend */
    char *log_key_file;    /**< audit.log_key_file, resolved against the config's directory */
    mlreg_config_cluster cluster; /**< cluster.* */
    mlreg_config_tls tls;         /**< tls.* */
    mlreg_config_gc gc;           /**< gc.* */
    size_t max_manifest_bytes;    /**< limits.max_manifest_bytes */
    size_t map_size;              /**< limits.map_size (LMDB map size, bytes); 0 = default */
    unsigned int threads;         /**< server.threads */
    /** limits.* of the HTTP server (mlreg_server_opts); 0 = its default. */
    unsigned int max_connections;             /**< limits.max_connections */
    unsigned int max_connections_per_address; /**< limits.max_connections_per_address */
    unsigned int header_timeout;              /**< limits.header_timeout_seconds */
    unsigned int idle_timeout;                /**< limits.idle_timeout_seconds */
    unsigned int body_timeout;                /**< limits.body_timeout_seconds */
    unsigned int uploads_per_identity;        /**< limits.upload_sessions_per_identity */
    unsigned int uploads_per_repository;      /**< limits.upload_sessions_per_repository */
    unsigned int upload_idle_timeout;         /**< limits.upload_idle_seconds */
    uint64_t max_upload_bytes;                /**< limits.max_upload_bytes */
    uint64_t scrub_interval;           /**< scrub.interval in seconds; 0 = no scheduled scrub */
    uint64_t scrub_rate;               /**< scrub.rate_bytes_per_second; 0 = unlimited */
    mlreg_config_retention *retention; /**< retention rules, in file order (malloc'd array) */
    size_t n_retention;                /**< entries in @c retention; 0: releases are kept */
    mlreg_config_key *trusted_keys;    /**< trusted_keys, in file order (malloc'd array) */
    size_t n_trusted_keys;             /**< entries in @c trusted_keys */
    mlreg_policy *policy;              /**< stages, gates, models (defaults when absent); owned */
    mlreg_auth *auth;                  /**< tokens (none when absent: local identity); owned */
    int metrics_public; /**< metrics.public: GET /metrics needs no token (docs/operations.md) */
    mlreg_webhooks *webhooks; /**< webhooks (events.h); NULL when absent; owned */
    /** Hex SHA-256 of the config file's bytes as read ("" without a file):
     *  what a reload records (docs/operations.md "Reload"). */
    char sha256[65];
    /** What each key of the file held: an object from key path ("tokens",
     *  and for an object one level down, "limits.max_upload_bytes") to the
     *  hex SHA-256 of its value's JSON (keys sorted, compact), so a reload
     *  can tell which keys changed without keeping the file (secrets stay
     *  out of it). Empty without a file; owned. */
    json_t *fingerprints;
} mlreg_config;

/**
 * Loads @p path (NULL = defaults only) into a new config owned by the caller
 * (free with mlreg_config_free).
 * @return 0, MLREG_EINVALID (message names the key or the JSON error and its
 *         line; for a trusted key also a missing, unreadable or malformed
 *         `.pub` file, naming the key and the file, and duplicate names or key
 *         ids), MLREG_EUNSUPPORTED (a key or backend not in this build;
 *         message names it), MLREG_EIO (unreadable file), MLREG_ENOMEM.
 */
int mlreg_config_load(mlreg_config **out, const char *path);

/** Largest config file mlreg_config_load() reads, in bytes. */
#define MLREG_CONFIG_FILE_MAX (16u * 1024 * 1024)

/**
 * The key paths whose fingerprints differ between @p a and @p b (present in
 * one only, or with another value), sorted, as a new JSON array of strings
 * owned by the caller; NULL when out of memory (message set).
 */
json_t *mlreg_config_changed_keys(const mlreg_config *a, const mlreg_config *b);

/** Replaces a string field (listen, data_dir) with a copy of @p value. 0 or MLREG_ENOMEM. */
int mlreg_config_set_string(char **field, const char *value);

/** Resolves @p file against the directory of the config file @p config_path
 *  (an absolute @p file stays as it is) into *out, malloc'd. 0 or MLREG_ENOMEM. */
int mlreg_config_resolve_path(char **out, const char *config_path, const char *file);

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
