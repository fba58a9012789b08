/**
 * @file keyring.h
 * @brief The server's trusted keyring: public keys from the config file and
 *        keys trusted or revoked at runtime, stored in LMDB with their time
 *        and actor, and the rule that says whether a signature counts.
 *
 * The wire contract is docs/signatures-api.md. A key is *in the keyring*
 * when the config file lists it now, or when it was trusted at runtime. Each
 * key has at most one revocation:
 *
 * - `retired`: signatures attached before the revocation keep counting,
 *   later ones do not;
 * - `compromised`: no signature by the key counts, whenever attached.
 *
 * Each key also has a role (`[a-z][a-z0-9_-]*`). Only the role `release`
 * (MLREG_KEY_ROLE_RELEASE) signs releases: signatures by keys of any other
 * role (`approver`, or any other word) are verified, stored and listed with
 * their status, but never count toward `{"require":"signed"}` gates.
 * The role `evaluator` (MLREG_KEY_ROLE_EVALUATOR, evaluations.h) signs
 * evaluations of releases: the numbers gates may take from an evaluator
 * rather than from the pusher. Its signatures never count as release
 * signatures either.
 *
 * A revocation is stored in LMDB and outlives restarts, also when the config
 * file still lists the key (mlreg_keyring_open() warns on stderr). Every
 * trust and revocation appends a key event and, in the same transaction, an
 * audit entry ("key.trust" / "key.revoke", audit.h; actor "config" for a
 * config key entering the keyring at open). Times are nanoseconds since the
 * Unix epoch (UTC) internally and RFC 3339 with nanoseconds on the wire.
 *
 * LMDB layout (the `keys` and `key_events` databases, and one counter in
 * `meta`):
 *
 *   keys        KEYID (16 uppercase hex) -> {"key_id","name","role","public_key"
 *                 (base64 line),"source":"config"|"runtime","added_at","added_ns",
 *                 "added_by","revoked_at"|null,"revoked_ns","revocation"|null,
 *                 "reason"|null,"revoked_by"|null}
 *   key_events  seq (8 bytes, big-endian, from 1) -> {"time","action":"trust"|"revoke",
 *                 "key_id","name","role","kind"|null,"reason"|null,"actor"}
 *   meta        "key_event_seq" -> last seq (8 bytes, big-endian)
 *
 * A record whose source is "config" belongs to the keyring only while the
 * config file lists its key id; it is kept so its revocation and history
 * survive. All functions are safe to call from several threads at once.
 */
#ifndef MLREG_KEYRING_H
#define MLREG_KEYRING_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/config.h"
#include "mlreg/meta.h"
#include "mlreg/sign.h"
#include "mlreg/time.h"

/** The one key role whose signatures count: keys that sign releases. */
#define MLREG_KEY_ROLE_RELEASE "release"

/** Actor recorded for changes until authentication tokens exist. */
#define MLREG_KEYRING_ACTOR_LOCAL "local"
/** Actor recorded when a config key enters the keyring. */
#define MLREG_KEYRING_ACTOR_CONFIG "config"
/** Longest revocation reason, in bytes. */
#define MLREG_KEYRING_REASON_MAX 1024

typedef struct mlreg_keyring mlreg_keyring;

/** Revocation state of a key. */
typedef enum {
    MLREG_KEY_ACTIVE = 0, /**< not revoked */
    MLREG_KEY_RETIRED,    /**< revoked as retired at revoked_ns */
    MLREG_KEY_COMPROMISED /**< revoked as compromised */
} mlreg_key_state;

/** A key in the keyring, as mlreg_keyring_find() copies it out. Plain value. */
typedef struct {
    mlreg_pubkey pubkey;
    char name[MLREG_CONFIG_KEY_NAME_MAX + 1];
    char role[MLREG_CONFIG_KEY_ROLE_MAX + 1];
    mlreg_key_state state;
    int64_t revoked_ns; /**< time of the revocation; 0 when active */
} mlreg_keyring_key;

/** What a signature is worth now (the `status` of docs/signatures-api.md). */
typedef enum {
    MLREG_SIGSTATUS_TRUSTED = 0, /**< by a keyring key that is not revoked */
    MLREG_SIGSTATUS_UNTRUSTED,   /**< by a key outside the keyring */
    MLREG_SIGSTATUS_RETIRED,     /**< by a key revoked as retired */
    MLREG_SIGSTATUS_COMPROMISED  /**< by a key revoked as compromised */
} mlreg_sigstatus;

/**
 * Opens the keyring over @p meta (borrowed; must outlive the keyring) with
 * the @p n config keys @p keys (copied; may be NULL when @p n is 0), in one
 * write transaction: a config key seen for the first time is recorded (with
 * a "trust" event by actor "config"); a config key whose key id is stored
 * with another public key, or whose name is used by another key trusted at
 * runtime, is MLREG_EINVALID naming the key and its file; a config key that
 * was revoked at runtime stays revoked and a warning naming it goes to
 * stderr. *out is owned by the caller (mlreg_keyring_free()).
 * @return 0, MLREG_EINVALID, MLREG_ENOMEM, MLREG_ENOSPACE, MLREG_EIO.
 */
int mlreg_keyring_open(mlreg_keyring **out, mlreg_meta *meta, const mlreg_config_key *keys,
                       size_t n);

/**
 * Puts the @p n config keys @p keys (copied) in force in place of the ones
 * the keyring was opened or last reloaded with (a config reload), with the
 * same sync and rules as mlreg_keyring_open(): key.trust / key.untrust
 * entries by actor "config" for what changed. Lookups running meanwhile see
 * the old keys or the new ones. The caller serialises reloads. On failure
 * the keys in force stay. *changed_out: 1 when the keys, names or roles
 * differ from those in force, else 0 (nothing was written).
 * @return 0, or the errors of mlreg_keyring_open().
 */
int mlreg_keyring_reload_config(int *changed_out, mlreg_keyring *kr, const mlreg_config_key *keys,
                                size_t n);

/** Frees @p kr (not the metadata environment); NULL is a no-op. */
void mlreg_keyring_free(mlreg_keyring *kr);

/**
 * Looks key id @p id up in the keyring as seen by transaction @p txn (read or
 * write) and copies it into *out. 0; MLREG_ENOTFOUND when the key is not in
 * the keyring now (no message set: callers treat it as "untrusted");
 * MLREG_EIO (corrupt record).
 */
int mlreg_keyring_find(mlreg_keyring_key *out, mlreg_keyring *kr, mlreg_meta_txn *txn,
                       const mlreg_keyid *id);

/**
 * The counting rule of docs/signatures-api.md for a signature made with
 * @p signer and attached at @p attached_ns, given the keyring entry @p key
 * for its key id (NULL when the key id is not in the keyring). A keyring key
 * with the same id but another public key (compared in constant time) makes
 * the signature untrusted. *counts_out is 1 when the signature counts now:
 * by a key whose role signs releases (mlreg_key_role_signs_releases()) and
 * that is not revoked, or was retired after the signature was attached. The
 * status says only what the revocation makes of the key, so a valid
 * signature by an `approver` key is MLREG_SIGSTATUS_TRUSTED with
 * *counts_out 0.
 */
mlreg_sigstatus mlreg_keyring_judge(int *counts_out, const mlreg_keyring_key *key,
                                    const mlreg_pubkey *signer, int64_t attached_ns);

/**
 * Whether keys of role @p role sign releases, so that their signatures count
 * toward `signed` gates: 1 for MLREG_KEY_ROLE_RELEASE only, 0 for every
 * other role (and for NULL).
 */
int mlreg_key_role_signs_releases(const char *role);

/** "trusted", "untrusted", "retired" or "compromised". */
const char *mlreg_sigstatus_name(mlreg_sigstatus status);

/**
 * Every key in the keyring now, in key id order, as
 * {"keys":[{"key_id","name","role","public_key","source","added_at",
 * "revoked_at","revocation","reason"}]}. *out is owned by the caller.
 */
int mlreg_keyring_list(json_t **out, mlreg_keyring *kr);

/**
 * Every key event, oldest first, as {"events":[{"time","action","key_id",
 * "name","role","kind","reason","actor"}]}. *out is owned by the caller.
 */
int mlreg_keyring_events(json_t **out, mlreg_keyring *kr);

/**
 * Trusts the public key in @p len bytes of @p public_key (the `.pub` text or
 * its base64 line) at runtime under @p name and @p role (the config's
 * grammar), recorded with the time and @p actor. *out receives the key
 * object (as in mlreg_keyring_list; owned by the caller) and *created_out 1
 * when the key was added, 0 when the same key was in the keyring already (a
 * no-op). Returns 0; MLREG_EINVALID (malformed key, name or role);
 * MLREG_EDENIED when the key id is in the keyring (or stored) with another
 * public key, was revoked, or @p name is used by another key in the keyring.
 */
int mlreg_keyring_trust(json_t **out, int *created_out, mlreg_keyring *kr, const char *name,
                        const char *role, const char *public_key, size_t len, const char *actor);

/**
 * Revokes key @p key_id (16 hex digits) as @p kind ("retired" or
 * "compromised") with an optional @p reason (NULL allowed; at most
 * MLREG_KEYRING_REASON_MAX bytes, text.h's rule: UTF-8 without C0, DEL or C1
 * controls), recorded with the
 * time and @p actor. Revoking a retired key as compromised escalates it;
 * repeating the same revocation is a no-op. *out receives the key object.
 * Returns 0; MLREG_EINVALID (kind, reason or key id malformed);
 * MLREG_ENOTFOUND (not in the keyring); MLREG_EDENIED (compromised key
 * revoked as retired).
 */
int mlreg_keyring_revoke(json_t **out, mlreg_keyring *kr, const char *key_id, const char *kind,
                         const char *reason, const char *actor);

#endif
