/**
 * @file audit.h
 * @brief The tamper-evident audit log: one canonical-JSON entry per
 *        mutation, appended in the mutation's own LMDB write transaction,
 *        hash-chained and Merkle-hashed (RFC 9162), with checkpoints signed
 *        by the server's own Ed25519 log key.
 *
 * The wire contract (entry schema, API, bundle layout) is docs/audit-api.md.
 *
 * LMDB layout (be64 = 8-byte big-endian):
 *
 *   audit        be64 seq -> entry bytes (canonical JSON, canonical_json.h)
 *   audit_tree   level (1 byte) ‖ be64 index -> 32-byte hash of the complete
 *                subtree over leaves [index·2^level, (index+1)·2^level);
 *                level 0 holds the leaf hashes SHA-256(0x00 ‖ entry)
 *   meta         "audit_size" -> be64 number of entries (= next seq)
 *
 * Appending entry n writes its leaf and every complete subtree that leaf
 * closes (at most log2(n)+1 puts), so any root, inclusion proof or
 * consistency proof reads O(log n) stored hashes and never an entry.
 * Sequence numbers start at 0 and are the Merkle leaf indices.
 *
 * Every entry holds "prev": "sha256:<hex>" of the previous entry's bytes
 * (null for entry 0), so the log is also a hash chain.
 *
 * Every function returns 0 or a negative MLREG_E* code and sets the message
 * (mlreg_error_set) where the failure is found. Functions taking a txn run
 * inside the caller's transaction and neither commit nor abort it.
 */
#ifndef MLREG_AUDIT_H
#define MLREG_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/merkle.h"
#include "mlreg/meta.h"
#include "mlreg/sign.h"

/** Actions, the "action" member of an entry (docs/audit-api.md). */
#define MLREG_AUDIT_PUSH             "push"             /**< release created */
#define MLREG_AUDIT_MANIFEST_PUT     "manifest.put"     /**< other manifest stored / tag set */
#define MLREG_AUDIT_MANIFEST_DELETE  "manifest.delete"  /**< manifest deleted by digest */
#define MLREG_AUDIT_TAG_DELETE       "tag.delete"       /**< tag deleted */
#define MLREG_AUDIT_BLOB_LINK        "blob.link"        /**< blob upload finished or mounted */
#define MLREG_AUDIT_BLOB_DELETE      "blob.delete"      /**< blob unlinked from a repository */
#define MLREG_AUDIT_SIGNATURE_ATTACH "signature.attach" /**< release signature attached */
#define MLREG_AUDIT_PROMOTE          "promote"          /**< promotion, passed or refused */
#define MLREG_AUDIT_ROLLBACK         "rollback"         /**< stage rolled back */
#define MLREG_AUDIT_APPROVE          "approve"          /**< approval recorded */
#define MLREG_AUDIT_IMAGE_BIND       "image.bind"       /**< container image bound */
#define MLREG_AUDIT_KEY_TRUST        "key.trust"        /**< key added to the keyring */
#define MLREG_AUDIT_KEY_REVOKE       "key.revoke"       /**< key retired or compromised */
#define MLREG_AUDIT_KEY_UNTRUST      "key.untrust"      /**< config key removed from the config */
#define MLREG_AUDIT_GC_COLLECT       "gc.collect"       /**< unreferenced blobs condemned */
#define MLREG_AUDIT_GC_DONE          "gc.done"          /**< their bytes deleted */
/** Release withdrawn (yanked) / its withdrawal taken back (withdraw.c). */
#define MLREG_AUDIT_RELEASE_WITHDRAW   "release.withdraw"
#define MLREG_AUDIT_RELEASE_UNWITHDRAW "release.unwithdraw"
/** A release purged: its manifest out of the index, its unshared files
 *  listed in details.blobs (then deleted by gc.collect and gc.done). */
#define MLREG_AUDIT_RELEASE_PURGE "release.purge"
#define MLREG_AUDIT_SCRUB         "scrub" /**< a scrub found damaged or missing blobs */
/** An API token made / revoked at runtime (tokens.c): details name, sha256
 *  (of the token: never the token), roles, expires. */
#define MLREG_AUDIT_TOKEN_CREATE "token.create"
#define MLREG_AUDIT_TOKEN_REVOKE "token.revoke"
/** The server's config file was reloaded and changed gates, stages, tokens,
 *  trusted keys, limits or certificates (reload.c). */
#define MLREG_AUDIT_CONFIG_RELOAD "config.reload"
/** An independent evaluation stored (evaluations.h). */
#define MLREG_AUDIT_EVALUATION_ATTEST "evaluation.attest"

/** The "result" member. */
#define MLREG_AUDIT_OK      "ok"
#define MLREG_AUDIT_REFUSED "refused"

/** Longest entry accepted, in bytes (gate tables included). */
#define MLREG_AUDIT_ENTRY_MAX (256u * 1024)

/** A page of mlreg_audit_list() stops after the entry that reaches this many bytes. */
#define MLREG_AUDIT_PAGE_BYTES (4u * 1024 * 1024)

/** Prefix of the "prev" member and of entry hashes. */
#define MLREG_AUDIT_HASH_PREFIX "sha256:"
/** Length of "sha256:" + 64 hex digits. */
#define MLREG_AUDIT_HASH_STRLEN 71

/**
 * One entry to append. Everything is borrowed for the call. NULL strings
 * and NULL json values are left out of the entry. The subject members
 * (model, version, digest, stage, tag, key_id, image) go into the
 * "subject" object, which is always present (possibly empty).
 */
typedef struct {
    int64_t time_ns;         /**< entry time; 0 = mlreg_time_now_ns() */
    const char *actor;       /**< required: the authenticated identity, or "config" */
    const char *action;      /**< required: one of MLREG_AUDIT_* actions */
    const char *result;      /**< required: MLREG_AUDIT_OK or MLREG_AUDIT_REFUSED */
    const char *reason;      /**< why (refusal reason, revocation reason, rollback reason) */
    const char *model;       /**< subject.model: model (repository) name */
    const char *version;     /**< subject.version */
    const char *digest;      /**< subject.digest: manifest (or blob) digest "sha256:<hex>" */
    const char *stage;       /**< subject.stage */
    const char *tag;         /**< subject.tag (manifest.put / tag.delete) */
    const char *key_id;      /**< subject.key_id (signature and key entries) */
    const char *image;       /**< subject.image (image.bind) */
    const json_t *approvers; /**< array of strings (promotions) */
    const json_t *gates;     /**< the gate table (promotions); reals become strings */
    const json_t *details;   /**< object of action-specific extras; reals become strings */
} mlreg_audit_event;

/**
 * Appends @p ev as the next entry inside write transaction @p txn: builds
 * the canonical JSON (with "seq", "time", "prev"), stores it, its leaf hash
 * and every complete subtree it closes, and bumps "audit_size". The
 * append becomes visible only when the caller commits; if the caller aborts
 * nothing of it remains. *seq_out (may be NULL) receives the entry's seq.
 * Inside the registry only the mutation seam (registry/mutate.c) calls it:
 * every change runs there, bound to its entry.
 * Returns 0; MLREG_EINVALID (missing actor/action/result, entry longer than
 * MLREG_AUDIT_ENTRY_MAX, a string that is not UTF-8); MLREG_ENOSPACE; MLREG_EIO.
 */
int mlreg_audit_append_txn(uint64_t *seq_out, mlreg_meta_txn *txn, const mlreg_audit_event *ev);

/** Number of entries in the log as @p txn sees it (0 for a new log). */
int mlreg_audit_size_txn(uint64_t *out, mlreg_meta_txn *txn);

/**
 * The bytes of entry @p seq: *out malloc'd, NUL-terminated, owned by the
 * caller (free()), *len_out its length without the NUL (may be NULL).
 * 0, MLREG_ENOTFOUND ("audit entry N not found").
 */
int mlreg_audit_entry_txn(char **out, size_t *len_out, mlreg_meta_txn *txn, uint64_t seq);

/**
 * "sha256:<hex>" of @p len bytes of @p entry (the form of "prev") into @p out.
 * 0 or MLREG_EIO.
 */
int mlreg_audit_entry_hash(char out[MLREG_AUDIT_HASH_STRLEN + 1], const void *entry, size_t len);

/**
 * Root of the tree over the first @p size entries (size <= current size),
 * from stored subtree hashes. 0; MLREG_EINVALID (size beyond the log);
 * MLREG_EIO (a stored hash is missing or not 32 bytes: "audit tree ...").
 */
int mlreg_audit_root_txn(mlreg_merkle_hash *out, mlreg_meta_txn *txn, uint64_t size);

/**
 * A page of entries for GET /api/v1/audit: *out =
 * {"size":N,"since":S,"entries":["<entry text>",...],"next":S2|null}
 * holding entries S .. min(S+limit, N)-1 as JSON strings with their exact
 * bytes; "next" is the since of the following page, null at the end. A
 * page also ends early once its entries reach MLREG_AUDIT_PAGE_BYTES
 * (it always holds at least one entry when any is left). A
 * @p since at or past the end gives an empty page. @p limit 0 means 100;
 * more than 1000 is clamped to 1000. *out owned by the caller (json_decref).
 */
int mlreg_audit_list(json_t **out, mlreg_meta *meta, uint64_t since, size_t limit);

/**
 * Inclusion proof for entry @p seq in the tree of @p size entries
 * (0 = the current size): *out = {"seq","size","leaf_hash":b64,"root":b64,
 * "proof":[b64,...]} (standard base64 of 32 bytes each, deepest first).
 * 0; MLREG_EINVALID (seq >= size, size beyond the log); MLREG_EIO.
 */
int mlreg_audit_inclusion(json_t **out, mlreg_meta *meta, uint64_t seq, uint64_t size);

/**
 * Consistency proof between the trees of @p from and @p to entries
 * (@p to 0 = the current size): *out = {"from","to","from_root":b64,
 * "to_root":b64,"proof":[b64,...]}.
 * 0; MLREG_EINVALID (from > to, to beyond the log); MLREG_EIO.
 */
int mlreg_audit_consistency(json_t **out, mlreg_meta *meta, uint64_t from, uint64_t to);

/* ---- the server's log key ---------------------------------------------------- */

typedef struct mlreg_audit_key mlreg_audit_key;

/**
 * Loads the log key from @p dir/log.key (unencrypted minisign secret key),
 * creating @p dir (0700), the key (0600, O_EXCL|O_NOFOLLOW) and
 * @p dir/log.pub (0600 too: the data directory is private as a whole) at
 * first start. The origin (checkpoint key name) is
 * "mlreg-audit/<KEYID>" with the key id as minisign prints it, so it is
 * stable for the key's life and differs between logs. The secret lives in
 * sodium_malloc memory. Caller frees with mlreg_audit_key_free().
 * 0; MLREG_EINVALID (an existing key file that does not parse, or is
 * readable by group/others: "audit log key ... has mode 0644; want 0600");
 * MLREG_EIO.
 */
int mlreg_audit_key_open(mlreg_audit_key **out, const char *dir);

/**
 * Loads the log key from the file @p path (an unencrypted minisign secret
 * key, mode 0600, as `mlreg key generate --no-password` writes it) without
 * creating anything: the key every node of one bucket shares
 * (`audit.log_key_file`). The origin is derived as in mlreg_audit_key_open(),
 * so the same key gives the same checkpoints on every node.
 * 0; MLREG_EIO (missing or unreadable: the message says how to make one);
 * MLREG_EINVALID (not a key, encrypted, or readable by group/others).
 */
int mlreg_audit_key_load(mlreg_audit_key **out, const char *path);

/** Wipes and frees; NULL is a no-op. */
void mlreg_audit_key_free(mlreg_audit_key *key);

/** The checkpoint origin, valid as long as @p key. */
const char *mlreg_audit_key_origin(const mlreg_audit_key *key);

/** The secret key, for DSSE statements; valid as long as @p key. */
const mlreg_seckey *mlreg_audit_key_seckey(const mlreg_audit_key *key);

/** The public key. */
void mlreg_audit_key_pubkey(mlreg_pubkey *out, const mlreg_audit_key *key);

/**
 * The public key in minisign `.pub` format, untrusted comment
 * "mlreg audit log key <origin>": *out malloc'd, owned by the caller (free()).
 */
int mlreg_audit_key_public_text(char **out, const mlreg_audit_key *key);

/**
 * Signs a checkpoint of the log as it is now (size and root read in one
 * read transaction): *out is the signed note (checkpoint.h), malloc'd,
 * owned by the caller (free()). *size_out (may be NULL) receives the size.
 */
int mlreg_audit_checkpoint(char **out, uint64_t *size_out, mlreg_meta *meta,
                           const mlreg_audit_key *key);

/**
 * Deep copy of @p value where every real number is replaced by the
 * shortest decimal string that reads back to the same double ("0.91",
 * "1e-05"), so the result can go through mlreg_canonical_json(). New
 * reference owned by the caller; NULL on allocation failure.
 */
json_t *mlreg_audit_json_no_reals(const json_t *value);

#endif
