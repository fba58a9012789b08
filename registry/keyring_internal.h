/* keyring_internal.h: what keyring.c and keyring_changes.c share, and no
 * other file includes: the keyring handle and the reading and writing of
 * key records and key events. The record layout stays keyring.c's (its
 * header comment); these helpers are its only way in.
 */
#ifndef MLREG_KEYRING_INTERNAL_H
#define MLREG_KEYRING_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/keyring.h"
#include "mlreg/meta.h"
#include "registry_internal.h"

/** A key of this start's config file (copies owned by the keyring). */
typedef struct {
    char *name;
    char *role;
    char *file;
    mlreg_pubkey pubkey;
} config_key;

/** The keys of one reading of the config file; never changed once
 *  published (readers hold no lock). */
typedef struct config_set {
    struct config_set *next; /**< the retired list's link */
    size_t n;
    config_key *keys; /**< owned, n entries */
} config_set;

/** The keyring: the metadata it lives in and the config keys in force.
 *  A reload (mlreg_keyring_reload_config()) publishes a new set with an
 *  atomic store; a set once published stays allocated until the keyring is
 *  freed (on the retired list), so a reader that loaded the old pointer
 *  keeps valid memory without a lock or a count: one small array per
 *  reload that changed the keys. */
struct mlreg_keyring {
    mlreg_meta *meta;    /**< borrowed */
    config_set *cfg;     /**< the set in force (atomic: mlreg_keyring__config()) */
    config_set *retired; /**< sets no longer in force (reloads are serialised by the caller) */
};

/** The config keys in force (valid until the keyring is freed). */
const config_set *mlreg_keyring__config(const mlreg_keyring *kr);

/**
 * Reads the record of key id @p idhex (16 hex digits) in @p txn. Returns 0
 * (*out owned by the caller), MLREG_ENOTFOUND (no message set) or MLREG_EIO.
 */
int mlreg_keyring__record_get(json_t **out, mlreg_meta_txn *txn, const char *idhex);

/** Stores @p rec as the record of @p idhex in write transaction @p txn. */
int mlreg_keyring__record_put(mlreg_meta_txn *txn, const char *idhex, const json_t *rec);

/** The string @p field of @p rec, or NULL (valid while @p rec is). */
const char *mlreg_keyring__rec_str(const json_t *rec, const char *field);

/** The public key record @p rec holds; MLREG_EIO when it is corrupt. */
int mlreg_keyring__record_pubkey(mlreg_pubkey *out, const json_t *rec, const char *idhex);

/** The state of the key of @p rec: active, retired or compromised. */
mlreg_key_state mlreg_keyring__record_state(const json_t *rec);

/**
 * 1 when @p rec (of key @p id) belongs to the keyring: trusted at runtime,
 * or listed in this start's config file; 0 otherwise.
 */
int mlreg_keyring__record_in_keyring(const mlreg_keyring *kr, const json_t *rec,
                                     const mlreg_keyid *id);

/** The key object of the wire contract for @p rec (new reference), or NULL when out of memory. */
json_t *mlreg_keyring__key_object(const mlreg_keyring *kr, const json_t *rec,
                                  const mlreg_keyid *id);

/**
 * A new active record of @p pk (new reference), added at @p now by
 * @p actor from @p source ("config" or "runtime"); NULL when out of memory.
 */
json_t *mlreg_keyring__new_record(const mlreg_pubkey *pk, const char *name, const char *role,
                                  const char *source, int64_t now, const char *actor);

/**
 * Appends key event @p action ("trust", "untrust" or "revoke") about
 * @p rec, with the next sequence number, and its audit entry, both in the
 * change @p mut (time: the change's). @p kind and @p reason may be NULL.
 */
int mlreg_keyring__event_append(registry_mutation *mut, mlreg_meta_txn *txn, const char *action,
                                const json_t *rec, const char *kind, const char *reason,
                                const char *actor);

/**
 * 1 with @p found filled when a keyring key other than @p self (idhex) is
 * named @p name, 0 when none is, or a negative error.
 */
int mlreg_keyring__name_taken(char found[MLREG_KEYID_HEXLEN + 1], const mlreg_keyring *kr,
                              mlreg_meta_txn *txn, const char *name, const char *self);

/**
 * 1 with @p found filled when a recorded key id other than @p self (in any
 * state) holds the public key bytes of @p pk, 0 when none does, or a
 * negative error.
 */
int mlreg_keyring__bytes_taken(char found[MLREG_KEYID_HEXLEN + 1], mlreg_meta_txn *txn,
                               const mlreg_pubkey *pk, const char *self);

#endif
