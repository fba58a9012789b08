/* manifests_internal.h: what manifests.c and manifests_delete.c share, and
 * no other file includes: the replay of a deletion (which
 * mlreg_registry__replay_manifests() hands on) and the reading of an audit entry's
 * subject.
 */
#ifndef MLREG_MANIFESTS_INTERNAL_H
#define MLREG_MANIFESTS_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "mlreg/registry.h"

/**
 * Replays audit entry @p entry (its @p len bytes @p text) of action
 * manifest.delete or tag.delete. Errors as mlreg_registry__mutate_replay(), and
 * MLREG_EINVALID when the entry lacks its subject.
 */
int mlreg_registry__replay_manifest_delete(mlreg_registry *reg, const json_t *entry,
                                           const char *text, size_t len);

/** The string @p key of @p entry's "subject" object, or NULL (valid while @p entry is). */
const char *mlreg_registry__entry_subject(const json_t *entry, const char *key);

#endif
