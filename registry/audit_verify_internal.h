/* audit_verify_internal.h: what the offline checks of the log
 * (audit_verify.c) and of bundles (audit_bundle.c) share, and no other file
 * includes.
 */
#ifndef MLREG_AUDIT_VERIFY_INTERNAL_H
#define MLREG_AUDIT_VERIFY_INTERNAL_H

#include <stddef.h>

#include "mlreg/common.h"

/* A log or bundle that does not verify: sets the message, gives MLREG_EMISMATCH. */
#define BAD(...) mlreg_error_set(MLREG_EMISMATCH, __VA_ARGS__)

/**
 * Copies the current message into @p buf (@p len bytes), so that it can be
 * part of a new one; it may quote registry text, so it is held to the text
 * rule (mlreg_text_sanitize()).
 */
void mlreg_audit_verify__last_message(char *buf, size_t len);

#endif
