/**
 * @file cluster.h
 * @brief The audit log in the object store: the source of truth of a
 *        registry on the s3 backend, shared by any number of nodes.
 *
 * Every change of the metadata is an audit entry (mutate.c). With a shared
 * log, a change commits by creating the next entry object in the bucket,
 * `<prefix>log/<seq, 20 digits>`, with `If-None-Match: *`: exactly one node
 * wins each seq. The entry object is the durability point; the node's LMDB
 * is an index of the log, updated after it and rebuilt from it whenever it
 * is lost. A node that loses a seq applies the entries it missed and runs
 * its change again against the new state.
 *
 * Objects under the prefix (beside `blobs/` and `uploads/`):
 * - `log/<seq>`: the entries, byte for byte as in the LMDB log;
 * - `log-key.pub`: the public key every node signs checkpoints with,
 *   created by the first node, compared by every later one;
 * - `nodes/<id>`: each node's heartbeat (JSON), for GET /api/v1/cluster;
 * - `probe/<id>-<random>`: the conditional-create probe of each start,
 *   removed at once.
 *
 * docs/scaling.md has the operator's view: topology, consistency, loss and
 * replacement of a node, backups.
 */
#ifndef MLREG_CLUSTER_H
#define MLREG_CLUSTER_H

#include <jansson.h>
#include <stdint.h>

#include "mlreg/s3.h"

/** Defaults of mlreg_cluster_opts. */
#define MLREG_CLUSTER_DEFAULT_POLL_MS      200u
#define MLREG_CLUSTER_DEFAULT_HEARTBEAT_MS 2000u
#define MLREG_CLUSTER_DEFAULT_ATTEMPTS     100u
#define MLREG_CLUSTER_DEFAULT_SCRUB        1u

typedef struct mlreg_cluster mlreg_cluster;

typedef struct {
    /** The bucket and prefix the blobs use (borrowed; copied at open). */
    const mlreg_s3_config *s3;
    /** This node's id, `[a-z0-9-]{1,64}`; NULL: the one kept in
     *  `data_dir/node-id`, made at first start. */
    const char *node_id;
    /** This node's URL as others reach it, published in its heartbeat
     *  (may be NULL; set later with mlreg_cluster_set_url()). */
    const char *url;
    unsigned int poll_ms;      /**< how often the log is read; 0: default */
    unsigned int heartbeat_ms; /**< how often the heartbeat is written; 0: default */
    unsigned int attempts;     /**< tries per change when other nodes win its seq; 0: default */
    /** Entries already applied that each poll reads again from the store
     *  and compares with what this node applied (newest first, wrapping):
     *  an entry edited or removed after it was applied is found within
     *  (entries / scrub) polls. 0: default. */
    unsigned int scrub_per_poll;
    int progress; /**< 1: print rebuild progress on stderr */
} mlreg_cluster_opts;

/**
 * Starts following the log: a thread that reads new entries every
 * poll_ms, applies them, scrubs applied ones and writes the heartbeat.
 * 0; MLREG_ENOMEM; MLREG_EIO (no thread).
 */
int mlreg_cluster_follow_start(mlreg_cluster *cl);

/** Stops the follower thread (waits for it); a no-op when not running. */
void mlreg_cluster_follow_stop(mlreg_cluster *cl);

/** Sets the URL published in the heartbeat (copied). 0 or MLREG_ENOMEM. */
int mlreg_cluster_set_url(mlreg_cluster *cl, const char *url);

/**
 * Applies every entry the store has and this node lacks, now.
 * 0; MLREG_EUNAVAILABLE (the node stopped at a broken entry: see
 * mlreg_cluster_health()); the store's errors (nothing applied is lost).
 */
int mlreg_cluster_sync(mlreg_cluster *cl);

/**
 * 0 when the node follows the log; MLREG_EUNAVAILABLE when it stopped at an
 * entry it cannot apply (edited, removed, reordered, or not chaining),
 * with *why_out (may be NULL; malloc'd) naming the entry and the reason.
 */
int mlreg_cluster_health(char **why_out, mlreg_cluster *cl);

/**
 * The state of this node and the live ones it sees, for GET
 * /api/v1/cluster: node, applied (entries in this node's index), head
 * (entries in the store at the last read), lag (head - applied),
 * last_read (time), healthy, stopped_at {seq, reason} when not, and
 * nodes [{node, url, applied, head, healthy, time, age_ms}] from the
 * heartbeats younger than 3 heartbeat intervals (this node included), and
 * log_requests {commits, lost, get, put, head, delete, list}: this node's
 * commits through the store, the seqs it lost, and the requests its log
 * client sent (following, scrubbing, heartbeats and commits; blob traffic
 * is not counted here).
 * With @p with_nodes 0, nodes is null and the store is not asked (a
 * cheap look at this node's lag). *out is a new reference. 0;
 * MLREG_ENOMEM; the store's errors.
 */
int mlreg_cluster_status(json_t **out, mlreg_cluster *cl, int with_nodes);

/** Length of a node tag: 8 lowercase hex digits. */
#define MLREG_CLUSTER_TAG_LEN 8

/**
 * The tag of node @p node_id: the first 4 bytes of SHA-256(node id) in
 * lowercase hex (NUL-terminated). Upload session ids start with their
 * node's tag, so any node can tell which node holds a session.
 */
void mlreg_cluster_node_tag(char out[MLREG_CLUSTER_TAG_LEN + 1], const char *node_id);

/**
 * The URL of the live node (heartbeat younger than 3 intervals) whose tag
 * is @p tag, from the heartbeats in the store (as read within the last
 * heartbeat interval; read again when they lack the tag): *url_out malloc'd, owned by
 * the caller. 0; MLREG_ENOTFOUND (no live node has that tag, or it
 * published no URL); the store's errors.
 */
int mlreg_cluster_node_url(char **url_out, mlreg_cluster *cl, const char *tag);

/** This node's id (valid as long as @p cl). */
const char *mlreg_cluster_node_id(const mlreg_cluster *cl);

/** Changes committed through the store by this node, and the seqs it lost
 *  to other nodes (each loss is one retry), since it opened. */
void mlreg_cluster_counters(uint64_t *commits_out, uint64_t *lost_out, const mlreg_cluster *cl);

#endif
