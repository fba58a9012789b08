/* tables.c: the on-disk names of the registry's LMDB tables (tables.h).
 * The names are part of the data directory's format: never rename one.
 * Data directories made by earlier builds also hold an "uploads" table that
 * nothing ever wrote; it is no longer opened and stays there, empty. */
#include "mlreg/tables.h"

/* Indexed by table - 1 (index 0 is the store's own "meta"). */
static const char *const table_names[MLREG_DB_END - 1] = {
    [MLREG_DB_REPOS - 1] = "repos",
    [MLREG_DB_REPO_BLOBS - 1] = "repo_blobs",
    [MLREG_DB_MANIFESTS - 1] = "manifests",
    [MLREG_DB_TAGS - 1] = "tags",
    [MLREG_DB_REFERRERS - 1] = "referrers",
    [MLREG_DB_RELEASES - 1] = "releases",
    [MLREG_DB_SIGNATURES - 1] = "signatures",
    [MLREG_DB_KEYS - 1] = "keys",
    [MLREG_DB_KEY_EVENTS - 1] = "key_events",
    [MLREG_DB_STAGES - 1] = "stages",
    [MLREG_DB_STAGE_HISTORY - 1] = "stage_history",
    [MLREG_DB_PROMOTIONS - 1] = "promotions",
    [MLREG_DB_APPROVALS - 1] = "approvals",
    [MLREG_DB_IMAGES - 1] = "images",
    [MLREG_DB_AUDIT - 1] = "audit",
    [MLREG_DB_AUDIT_TREE - 1] = "audit_tree",
    [MLREG_DB_ATTESTATIONS - 1] = "attestations",
    [MLREG_DB_BLOB_REFS - 1] = "blob_refs",
    [MLREG_DB_GC_BLOBS - 1] = "gc_blobs",
    [MLREG_DB_TOKENS - 1] = "tokens",
    [MLREG_DB_TOKEN_USAGE - 1] = "token_usage",
    [MLREG_DB_EVALUATIONS - 1] = "evaluations",
};

int mlreg_tables_open(mlreg_meta **out, const char *dir, size_t map_size)
{
    return mlreg_meta_open(out, dir, map_size, table_names, MLREG_DB_END - 1);
}
