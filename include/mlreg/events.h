/**
 * @file events.h
 * @brief Events: the committed changes of the audit log as CloudEvents 1.0,
 *        delivered to webhooks (signed POSTs, at least once, in log order)
 *        and read by GET /api/v1/events. The contract is docs/operations.md
 *        "Events and webhooks" and docs/events-api.md.
 *
 * The audit log is the queue: every committed change has its entry, in
 * commit order, durable with the change. An event is derived from one entry
 * (mlreg_event_from_entry()); a webhook's delivery thread keeps a cursor
 * (the next seq to look at) in a small file under `data_dir/events/`,
 * written atomically after each delivery, so a restart resumes where it
 * stopped. Mutations never wait for a delivery: they only wake the threads
 * (mlreg_registry_commit_listen()).
 */
#ifndef MLREG_EVENTS_H
#define MLREG_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* registry.h includes config.h, which includes this header */
typedef struct mlreg_registry mlreg_registry;

/** The kinds of events, one bit each (`webhooks[].events`, `?types=`). */
enum {
    MLREG_EVENT_PUSH = 1u << 0,       /**< "push": a release was pushed */
    MLREG_EVENT_PROMOTE = 1u << 1,    /**< "promote": a promotion moved a stage */
    MLREG_EVENT_REFUSE = 1u << 2,     /**< "refuse": a promotion or rollback was refused */
    MLREG_EVENT_ROLLBACK = 1u << 3,   /**< "rollback": a stage was rolled back */
    MLREG_EVENT_WITHDRAW = 1u << 4,   /**< "withdraw": a release was withdrawn */
    MLREG_EVENT_UNWITHDRAW = 1u << 5, /**< "unwithdraw": a withdrawal was taken back */
    MLREG_EVENT_SIGN = 1u << 6,       /**< "sign": a release signature was attached */
    MLREG_EVENT_PURGE = 1u << 7,      /**< "purge": a release was purged */
    MLREG_EVENT_APPROVE = 1u << 8,    /**< "approve": an approval was recorded */
    MLREG_EVENT_IMAGE = 1u << 9,      /**< "image": a container image was bound */
    MLREG_EVENT_EVALUATE = 1u << 10   /**< "evaluate": an evaluation was attested */
};
/** Every kind. */
#define MLREG_EVENT_ALL 0x7ffu
/** The CloudEvents `type` is this prefix and the kind's name ("dev.mlreg.push"). */
#define MLREG_EVENT_TYPE_PREFIX "dev.mlreg."

/** Most webhooks in a config. */
#define MLREG_WEBHOOKS_MAX 16
/** Longest webhook URL, in bytes. */
#define MLREG_WEBHOOK_URL_MAX 2048
/** Longest `models` prefix, in bytes. */
#define MLREG_WEBHOOK_PREFIX_MAX 256
/** Bytes a secret file may hold (after a trailing newline is cut): */
#define MLREG_WEBHOOK_SECRET_MIN 16
#define MLREG_WEBHOOK_SECRET_MAX 1024

/** One `webhooks` entry of the config. */
typedef struct {
    char *url;                  /**< http(s)://... (malloc'd) */
    char *secret_file;          /**< resolved against the config's directory (malloc'd) */
    unsigned char *secret;      /**< the HMAC key (sodium_malloc'd, wiped on free) */
    size_t secret_len;          /**< its length */
    unsigned int events;        /**< MLREG_EVENT_* mask; MLREG_EVENT_ALL when absent */
    char *models;               /**< model name prefix, or NULL for every model (malloc'd) */
    unsigned int timeout_s;     /**< timeout_seconds of one POST (default 10) */
    unsigned int retry_max_s;   /**< retry_max_seconds: longest wait between attempts (60) */
    unsigned int refused_tries; /**< give_up_after: attempts of an event a 4xx refuses (5) */
} mlreg_webhook;

/** The `webhooks` key of the config as one value, so a reload can build a
 *  new one and swap it. */
typedef struct {
    mlreg_webhook *hooks; /**< in file order (malloc'd array) */
    size_t n;             /**< entries in @c hooks */
} mlreg_webhooks;

/**
 * Parses the `webhooks` array @p arr of the config file @p config_path
 * (relative secret files are read from its directory) into *out, owned by
 * the caller (mlreg_webhooks_free()). Strict as the rest of the config: an
 * unknown key, a bad URL, an unknown event name, a duplicate URL, a secret
 * file that is missing, readable by group or others, shorter than
 * MLREG_WEBHOOK_SECRET_MIN bytes or holding a NUL byte stops the start,
 * the message naming the key ("config key 'webhooks[0].url' ...").
 * The secret is read now and kept in sodium_malloc memory.
 * @return 0; MLREG_EINVALID; MLREG_EIO (unreadable secret file); MLREG_ENOMEM.
 */
int mlreg_webhooks_parse(mlreg_webhooks **out, const json_t *arr, const char *config_path);

/** Wipes the secrets and frees; NULL is a no-op. */
void mlreg_webhooks_free(mlreg_webhooks *w);

/** The mask of the event kind @p name ("push"...) or 0 when unknown. */
unsigned int mlreg_event_kind(const char *name, size_t len);

/** The name of the single kind @p kind ("push"...), or NULL. */
const char *mlreg_event_kind_name(unsigned int kind);

/**
 * Builds the CloudEvent of audit entry @p text (@p len bytes, as the log
 * holds it): *out (owned by the caller, json_decref) with specversion,
 * id "<@p log_id>-<seq>", @p source, type, subject "model@version", time
 * (the entry's), datacontenttype and data (model, version, digest, stage,
 * from_stage, gates, approvers, actor, seq, action, result, reason, details),
 * and *kind_out (may be NULL) the MLREG_EVENT_* kind.
 * @return 0; 1 when the entry is no event (blob links, manifests that are
 *         no release, keys, garbage collection, scrubs), *out NULL;
 *         MLREG_EINVALID (not an audit entry); MLREG_ENOMEM.
 */
int mlreg_event_from_entry(json_t **out, unsigned int *kind_out, const char *text, size_t len,
                           const char *source, const char *log_id);

/**
 * The event's model name (data.model) or NULL; valid as long as @p event.
 */
const char *mlreg_event_model(const json_t *event);

/**
 * HMAC-SHA256 of @p len bytes of @p body with @p key as "sha256=<64 hex>"
 * (the X-Mlreg-Signature header) into @p out.
 */
void mlreg_event_sign(char out[7 + 64 + 1], const unsigned char *key, size_t key_len,
                      const void *body, size_t len);

/**
 * The log's id for event ids: the key id of the audit log key (the part of
 * its origin after the '/'), the same on every node sharing one log.
 * @p out holds at least 64 bytes.
 */
void mlreg_events_log_id(char *out, size_t outlen, mlreg_registry *reg);

/** "mlreg://<hostname>", the default event source, into @p out. */
void mlreg_events_default_source(char *out, size_t outlen);

/* ---- delivery --------------------------------------------------------- */

typedef struct mlreg_events mlreg_events;

/** What one webhook's delivery has done (for /metrics). */
typedef struct {
    uint64_t delivered;       /**< events the receiver accepted (2xx) */
    uint64_t failed_attempts; /**< POSTs that failed (network, timeout, non-2xx) */
    uint64_t dropped; /**< events given up on (4xx other than 408/429, give_up_after times) */
    uint64_t cursor;  /**< next seq the thread looks at */
    uint64_t lag;     /**< log size minus cursor: entries not yet looked at */
} mlreg_webhook_stats;

/**
 * Starts one delivery thread per webhook of @p hooks (borrowed: must outlive
 * the returned value) on @p reg's log. Cursors live in @p state_dir
 * (created 0700); a webhook without a cursor starts at the end of the log:
 * it gets the changes made from now on. @p source is the events' source.
 * *out owned by the caller (mlreg_events_stop()). With no webhooks *out is
 * a value that runs no thread. To apply another `webhooks` config (a
 * reload), stop this one and start one with the new value: cursors are
 * kept per URL, so a webhook that stays resumes where it stopped.
 * @return 0; MLREG_EIO (state directory, cursor file, thread); MLREG_ENOMEM.
 */
int mlreg_events_start(mlreg_events **out, mlreg_registry *reg, const mlreg_webhooks *hooks,
                       const char *state_dir, const char *source);

/** Stops the threads (a POST in flight is cut short; its event is sent
 *  again at the next start) and frees; NULL is a no-op. */
void mlreg_events_stop(mlreg_events *ev);

/** Number of webhooks delivered to (0 for NULL). */
size_t mlreg_events_count(const mlreg_events *ev);

/** The counters of webhook @p i (< mlreg_events_count()) and its URL in
 *  *url_out (valid as long as the webhooks given to mlreg_events_start()).
 *  0 or MLREG_EINVALID. Safe from any thread. */
int mlreg_events_stats(mlreg_webhook_stats *out, const char **url_out, mlreg_events *ev, size_t i);

#endif
