/**
 * @file common.h
 * @brief Error codes and the per-thread error message shared by every module.
 *
 * Functions return 0 (or a non-negative count) on success and a negative
 * MLREG_E* code on failure. The module that detects a failure sets a one-line,
 * lower-case message with mlreg_error_set(); callers pass the code up without
 * rewording it. The message lives in thread-local storage, so each server
 * worker thread sees its own.
 */
#ifndef MLREG_COMMON_H
#define MLREG_COMMON_H

#include <stddef.h>
#include <stdint.h>

enum {
    MLREG_OK = 0,
    MLREG_ENOTFOUND = -1,     /**< no such blob, manifest, tag, model, key */
    MLREG_EEXISTS = -2,       /**< already exists (and may not be replaced) */
    MLREG_EINVALID = -3,      /**< malformed input: grammar, JSON, range */
    MLREG_EMISMATCH = -4,     /**< digest or size differs from the declared one */
    MLREG_EAUTH = -5,         /**< missing or wrong credentials */
    MLREG_EFORBIDDEN = -6,    /**< authenticated but not allowed */
    MLREG_EGATE = -7,         /**< a promotion gate failed */
    MLREG_ENOSPACE = -8,      /**< disk or LMDB map full */
    MLREG_EIO = -9,           /**< local I/O error */
    MLREG_ENOMEM = -10,       /**< allocation failed */
    MLREG_ETOOBIG = -11,      /**< input over a configured size limit */
    MLREG_ERANGE = -12,       /**< requested range or chunk offset not satisfiable */
    MLREG_EDENIED = -13,      /**< refused by policy (immutable release) */
    MLREG_EUNREACHABLE = -14, /**< remote peer unreachable (client side) */
    MLREG_ESERVER = -15,      /**< remote peer answered with a server error */
    MLREG_EBLOBUNKNOWN = -16, /**< a manifest references a blob the store lacks */
    MLREG_EUNSUPPORTED = -17, /**< valid request for something not supported */
    MLREG_EQUOTA = -18,       /**< over a per-identity or server-wide quota: retry later */
    MLREG_ESIGNATURE = -19,   /**< an Ed25519 signature does not verify over the signed bytes
                                   (mlreg_sig_check_data(); public verifiers report EMISMATCH) */
    MLREG_EUNAVAILABLE = -20, /**< the change cannot be taken now: the shared log is broken or
                                   too busy (the message, shown to clients, says which) */
    MLREG_EGONE = -21         /**< the release was purged: its record stays, naming the purge's
                                   audit entry (HTTP 410) */
};

/**
 * Sets this thread's error message (printf-style) and returns @p code, so a
 * caller can write `return mlreg_error_set(MLREG_EINVALID, "bad tag %s", t);`.
 * The arguments may include mlreg_error_last() to add context to the
 * previous message.
 */
int mlreg_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** This thread's last message; "" when none. Valid until the next set/clear. */
const char *mlreg_error_last(void);

/** Clears this thread's message. */
void mlreg_error_clear(void);

/** A static, human-readable name for an MLREG_E* code ("not found", ...). */
const char *mlreg_strerror(int code);

#endif
