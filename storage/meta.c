/* meta.c: LMDB metadata. One environment per directory, its "meta" table and
 * the tables its caller names opened once at open time, every LMDB code translated to MLREG_E*
 * here so no caller ever sees an MDB_* value. */
#include "mlreg/meta.h"
#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#define META_DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define SCHEMA_KEY            "schema_version"

#define META_TABLE "meta"

struct mlreg_meta {
    MDB_env *env;
    MDB_dbi dbi[MLREG_META_TABLES_MAX];
    const char *names[MLREG_META_TABLES_MAX]; /* borrowed from the opener */
    unsigned int count;                       /* tables open, "meta" included */
    void *owner;                              /* mlreg_meta_set_owner(); borrowed */
};

struct mlreg_meta_txn {
    mlreg_meta *meta;
    MDB_txn *txn;
    int write;
    /* After MDB_MAP_FULL (or any failed put/del) LMDB marks the txn as
     * unusable; we remember the first error so a later commit reports it
     * instead of LMDB's generic "transaction must abort". */
    int failed;
};

/* The map size actually in use, which LMDB may have raised to the size of an
 * existing data file, so the MAP_FULL message names the real limit. */
static size_t map_size_of(MDB_env *env)
{
    MDB_envinfo info;

    if (env == NULL || mdb_env_info(env, &info) != 0) return 0;
    return info.me_mapsize;
}

/* The only place that turns an LMDB code into an MLREG_E* code. */
static int lmdb_error(MDB_env *env, int rc, const char *what)
{
    switch (rc) {
    case MDB_NOTFOUND: return mlreg_error_set(MLREG_ENOTFOUND, "%s: key not found", what);
    case MDB_KEYEXIST: return mlreg_error_set(MLREG_EEXISTS, "%s: key already exists", what);
    case MDB_MAP_FULL:
        return mlreg_error_set(MLREG_ENOSPACE,
                               "metadata map full (map_size=%zu bytes); raise limits.map_size",
                               map_size_of(env));
    case ENOSPC:
    case EDQUOT:
        return mlreg_error_set(MLREG_ENOSPACE, "%s: no space left on device for metadata", what);
    case ENOMEM: return mlreg_error_set(MLREG_ENOMEM, "%s: out of memory", what);
    default: return mlreg_error_set(MLREG_EIO, "%s: %s", what, mdb_strerror(rc));
    }
}

static int check_db(const mlreg_meta *meta, mlreg_db db)
{
    if (db >= meta->count)
        return mlreg_error_set(MLREG_EINVALID, "unknown metadata database %u", db);
    return 0;
}

/* Refuses a table list mlreg_meta_open() cannot index unambiguously. */
static int check_tables(const char *const *tables, size_t ntables)
{
    if (ntables > MLREG_META_TABLES_MAX - 1)
        return mlreg_error_set(MLREG_EINVALID, "%zu metadata tables: at most %d", ntables,
                               MLREG_META_TABLES_MAX - 1);
    for (size_t i = 0; i < ntables; i++) {
        if (tables[i] == NULL || tables[i][0] == '\0' || !strcmp(tables[i], META_TABLE))
            return mlreg_error_set(MLREG_EINVALID, "metadata table %zu has no name of its own",
                                   i + 1);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(tables[i], tables[j]))
                return mlreg_error_set(MLREG_EINVALID, "metadata table \"%s\" is named twice",
                                       tables[i]);
    }
    return 0;
}

static int check_key(mlreg_meta_txn *txn, size_t klen)
{
    size_t max = (size_t)mdb_env_get_maxkeysize(txn->meta->env);

    if (klen == 0 || klen > max)
        return mlreg_error_set(MLREG_EINVALID, "metadata key length %zu out of range (1..%zu)",
                               klen, max);
    return 0;
}

static int check_writable(mlreg_meta_txn *txn)
{
    if (!txn->write)
        return mlreg_error_set(MLREG_EINVALID, "metadata write in a read-only transaction");
    if (txn->failed)
        return mlreg_error_set(txn->failed, "metadata transaction failed earlier; abort it");
    return 0;
}

/* Reads the schema version, writing it when the environment is new. A newer
 * version means a newer mlreg wrote data this build cannot interpret, so we
 * refuse rather than risk corrupting it. */
static int check_schema(mlreg_meta *meta, MDB_txn *txn)
{
    MDB_val key = {sizeof(SCHEMA_KEY) - 1, (void *)SCHEMA_KEY}, val;
    char buf[32], *end;
    unsigned long long version;
    int rc;

    rc = mdb_get(txn, meta->dbi[MLREG_DB_META], &key, &val);
    if (rc == MDB_NOTFOUND) {
        int n = snprintf(buf, sizeof(buf), "%d", MLREG_META_SCHEMA_VERSION);
        val.mv_size = (size_t)n;
        val.mv_data = buf;
        if ((rc = mdb_put(txn, meta->dbi[MLREG_DB_META], &key, &val, 0)) != 0)
            return lmdb_error(meta->env, rc, "write metadata schema version");
        return 0;
    }
    if (rc != 0) return lmdb_error(meta->env, rc, "read metadata schema version");

    if (val.mv_size == 0 || val.mv_size >= sizeof(buf))
        return mlreg_error_set(MLREG_EINVALID, "metadata schema version is malformed");
    memcpy(buf, val.mv_data, val.mv_size);
    buf[val.mv_size] = '\0';
    errno = 0;
    version = strtoull(buf, &end, 10);
    if (errno != 0 || *end != '\0' || buf[0] < '0' || buf[0] > '9' || version == 0)
        return mlreg_error_set(MLREG_EINVALID, "metadata schema version \"%s\" is malformed", buf);
    if (version > MLREG_META_SCHEMA_VERSION)
        return mlreg_error_set(MLREG_EINVALID,
                               "metadata schema version %llu is newer than this build supports "
                               "(%d); upgrade mlreg",
                               version, MLREG_META_SCHEMA_VERSION);
    return 0;
}

int mlreg_meta_open(mlreg_meta **out, const char *dir, size_t map_size, const char *const *tables,
                    size_t ntables)
{
    int error = 0, rc;
    size_t i;
    mlreg_meta *meta = NULL;
    MDB_txn *txn = NULL;

    if (dir == NULL || dir[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "metadata needs a directory");
    if ((error = check_tables(tables, ntables)) < 0) return error;
    if ((error = mlreg_file_mkdirs(dir, "metadata")) < 0) goto done;
    if ((meta = calloc(1, sizeof(*meta))) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory allocating metadata");
        goto done;
    }
    meta->names[0] = META_TABLE;
    for (i = 0; i < ntables; i++)
        meta->names[i + 1] = tables[i];
    meta->count = (unsigned int)ntables + 1;
    if ((rc = mdb_env_create(&meta->env)) != 0) {
        meta->env = NULL;
        error = lmdb_error(NULL, rc, "create metadata environment");
        goto done;
    }
    if ((rc = mdb_env_set_maxdbs(meta->env, meta->count)) != 0 ||
        (rc = mdb_env_set_mapsize(meta->env, map_size ? map_size : META_DEFAULT_MAP_SIZE)) != 0) {
        error = lmdb_error(meta->env, rc, "configure metadata environment");
        goto done;
    }
    /* MDB_NOTLS: read transactions are not tied to a thread, so server
     * workers (and a libmicrohttpd thread pool) may each run their own. */
    if ((rc = mdb_env_open(meta->env, dir, MDB_NOTLS, 0600)) != 0) {
        error = mlreg_error_set(rc == ENOSPC ? MLREG_ENOSPACE : MLREG_EIO,
                                "open metadata environment %s: %s", dir, mdb_strerror(rc));
        goto done;
    }

    /* Handles opened in a committed write txn stay valid for the
     * environment's lifetime, so every later txn just indexes meta->dbi. */
    if ((rc = mdb_txn_begin(meta->env, NULL, 0, &txn)) != 0) {
        error = lmdb_error(meta->env, rc, "begin metadata transaction");
        goto done;
    }
    for (i = 0; i < meta->count; i++) {
        if ((rc = mdb_dbi_open(txn, meta->names[i], MDB_CREATE, &meta->dbi[i])) != 0) {
            error = lmdb_error(meta->env, rc, "open metadata database");
            goto done;
        }
    }
    if ((error = check_schema(meta, txn)) < 0) goto done;
    rc = mdb_txn_commit(txn);
    txn = NULL; /* freed by LMDB whatever the result */
    if (rc != 0) {
        error = lmdb_error(meta->env, rc, "commit metadata schema");
        goto done;
    }

done:
    if (txn != NULL) mdb_txn_abort(txn);
    if (error < 0) {
        mlreg_meta_close(meta);
        return error;
    }
    *out = meta;
    return 0;
}

void mlreg_meta_close(mlreg_meta *meta)
{
    if (meta == NULL) return;
    if (meta->env != NULL) mdb_env_close(meta->env);
    free(meta);
}

/* mdb_env_copy2 runs in a read transaction of its own: it copies one
 * committed state while writers go on, and with MDB_CP_COMPACT leaves out
 * free pages, so the copy is as small as the data. */
int mlreg_meta_copy(mlreg_meta *meta, const char *dir)
{
    char path[4096];
    int rc, n;

    if ((rc = mdb_env_copy2(meta->env, dir, MDB_CP_COMPACT)) != 0)
        return mlreg_error_set(rc == ENOSPC ? MLREG_ENOSPACE : MLREG_EIO, "copy metadata to %s: %s",
                               dir, mdb_strerror(rc));
    /* LMDB creates the copy 0666 less the umask; metadata is private */
    n = snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return mlreg_error_set(MLREG_EINVALID, "path too long: %s", dir);
    if (chmod(path, 0600) < 0)
        return mlreg_error_set(MLREG_EIO, "make %s private: %s", path, strerror(errno));
    return 0;
}

int mlreg_meta_txn_begin(mlreg_meta_txn **out, mlreg_meta *meta, int write)
{
    int rc;
    mlreg_meta_txn *txn;

    if ((txn = calloc(1, sizeof(*txn))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a transaction");
    txn->meta = meta;
    txn->write = write != 0;
    if ((rc = mdb_txn_begin(meta->env, NULL, write ? 0 : MDB_RDONLY, &txn->txn)) != 0) {
        free(txn);
        return lmdb_error(meta->env, rc, "begin metadata transaction");
    }
    *out = txn;
    return 0;
}

/* A child commits into its parent (LMDB writes nothing to disk for it), and
 * aborting it leaves the parent as it was: what a batch of changes sharing
 * one commit needs to drop the change that failed. */
int mlreg_meta_txn_begin_nested(mlreg_meta_txn **out, mlreg_meta_txn *parent)
{
    int rc;
    mlreg_meta_txn *txn;

    if (!parent->write || parent->failed)
        return mlreg_error_set(MLREG_EINVALID, "a nested transaction needs a sound write parent");
    if ((txn = calloc(1, sizeof(*txn))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory allocating a transaction");
    txn->meta = parent->meta;
    txn->write = 1;
    if ((rc = mdb_txn_begin(parent->meta->env, parent->txn, 0, &txn->txn)) != 0) {
        free(txn);
        return lmdb_error(parent->meta->env, rc, "begin nested metadata transaction");
    }
    *out = txn;
    return 0;
}

int mlreg_meta_txn_commit(mlreg_meta_txn *txn)
{
    int error = 0, rc;

    if (txn->failed) {
        error = mlreg_error_set(txn->failed, "metadata transaction failed earlier; not committed");
        mdb_txn_abort(txn->txn);
        goto done;
    }
    /* mdb_txn_commit frees the LMDB txn even when it fails (it can itself hit
     * MDB_MAP_FULL while saving the free list). */
    if ((rc = mdb_txn_commit(txn->txn)) != 0)
        error = lmdb_error(txn->meta->env, rc, "commit metadata transaction");

done:
    free(txn);
    return error;
}

void mlreg_meta_txn_abort(mlreg_meta_txn *txn)
{
    if (txn == NULL) return;
    mdb_txn_abort(txn->txn);
    free(txn);
}

int mlreg_meta_get(void **val_out, size_t *len_out, mlreg_meta_txn *txn, mlreg_db db,
                   const void *key, size_t klen)
{
    int error = 0, rc;
    MDB_val k = {klen, (void *)key}, v;
    char *copy = NULL;

    if ((error = check_db(txn->meta, db)) < 0 || (error = check_key(txn, klen)) < 0) return error;
    if ((rc = mdb_get(txn->txn, txn->meta->dbi[db], &k, &v)) != 0) {
        if (rc == MDB_NOTFOUND)
            return mlreg_error_set(MLREG_ENOTFOUND, "no such key in metadata database %s",
                                   txn->meta->names[db]);
        return lmdb_error(txn->meta->env, rc, "read metadata");
    }
    /* The LMDB pointer dies with the txn: copy it out, NUL-terminated. */
    if ((copy = malloc(v.mv_size + 1)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory copying a %zu-byte value", v.mv_size);
    if (v.mv_size > 0) memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size] = '\0';
    *val_out = copy;
    if (len_out != NULL) *len_out = v.mv_size;
    return 0;
}

int mlreg_meta_put(mlreg_meta_txn *txn, mlreg_db db, const void *key, size_t klen, const void *val,
                   size_t vlen, int no_overwrite)
{
    int error = 0, rc;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};

    if ((error = check_db(txn->meta, db)) < 0 || (error = check_key(txn, klen)) < 0 ||
        (error = check_writable(txn)) < 0)
        return error;
    if (v.mv_data == NULL) v.mv_data = (void *)"";
    rc = mdb_put(txn->txn, txn->meta->dbi[db], &k, &v, no_overwrite ? MDB_NOOVERWRITE : 0);
    if (rc == 0) return 0;
    if (rc == MDB_KEYEXIST)
        return mlreg_error_set(MLREG_EEXISTS, "key already exists in metadata database %s",
                               txn->meta->names[db]);
    /* Any other failure leaves the LMDB txn unusable (MDB_TXN_ERROR). */
    error = lmdb_error(txn->meta->env, rc, "write metadata");
    txn->failed = error;
    return error;
}

int mlreg_meta_counter_next(uint64_t *out, mlreg_meta_txn *txn, const char *name)
{
    int error = 0;
    void *val = NULL;
    size_t vlen = 0;
    uint64_t seq = 0;
    unsigned char be[8];

    error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_META, name, strlen(name));
    if (error == 0 && vlen == 8) {
        seq = mlreg_be64_get(val);
    } else if (error == 0) {
        error = mlreg_error_set(MLREG_EIO, "metadata counter %s is corrupt", name);
        goto done;
    } else if (error != MLREG_ENOTFOUND) {
        goto done;
    }
    error = 0;
    seq++;
    mlreg_be64_put(be, seq);
    if ((error = mlreg_meta_put(txn, MLREG_DB_META, name, strlen(name), be, 8, 0)) < 0) goto done;
    *out = seq;

done:
    free(val);
    return error;
}

int mlreg_meta_del(mlreg_meta_txn *txn, mlreg_db db, const void *key, size_t klen)
{
    int error = 0, rc;
    MDB_val k = {klen, (void *)key};

    if ((error = check_db(txn->meta, db)) < 0 || (error = check_key(txn, klen)) < 0 ||
        (error = check_writable(txn)) < 0)
        return error;
    rc = mdb_del(txn->txn, txn->meta->dbi[db], &k, NULL);
    if (rc == 0) return 0;
    if (rc == MDB_NOTFOUND)
        return mlreg_error_set(MLREG_ENOTFOUND, "no such key in metadata database %s",
                               txn->meta->names[db]);
    error = lmdb_error(txn->meta->env, rc, "delete metadata");
    txn->failed = error;
    return error;
}

/* LMDB's default key order: bytewise, then shorter first. */
static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;

    if (c != 0) return c;
    return alen < blen ? -1 : alen > blen;
}

int mlreg_meta_iter(mlreg_meta_txn *txn, mlreg_db db, const void *prefix, size_t plen,
                    const void *start, size_t slen, mlreg_meta_iter_cb cb, void *payload)
{
    int error = 0, rc;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_cursor_op op;

    if ((error = check_db(txn->meta, db)) < 0) goto done;
    if ((rc = mdb_cursor_open(txn->txn, txn->meta->dbi[db], &cur)) != 0) {
        cur = NULL;
        error = lmdb_error(txn->meta->env, rc, "open metadata cursor");
        goto done;
    }

    /* Seek to the larger of prefix and start; every key before it is either
     * outside the prefix or before the start. LMDB refuses an empty key for
     * MDB_SET_RANGE, so an empty seek key means "from the first key". */
    k.mv_data = (void *)prefix;
    k.mv_size = plen;
    if (start != NULL && key_cmp(start, slen, prefix, plen) > 0) {
        k.mv_data = (void *)start;
        k.mv_size = slen;
    }
    op = k.mv_size > 0 ? MDB_SET_RANGE : MDB_FIRST;

    for (;;) {
        rc = mdb_cursor_get(cur, &k, &v, op);
        op = MDB_NEXT;
        if (rc == MDB_NOTFOUND) break;
        if (rc != 0) {
            error = lmdb_error(txn->meta->env, rc, "iterate metadata");
            goto done;
        }
        if (k.mv_size < plen || (plen > 0 && memcmp(k.mv_data, prefix, plen) != 0)) break;
        if ((error = cb(k.mv_data, k.mv_size, v.mv_data, v.mv_size, payload)) != 0) goto done;
    }

done:
    if (cur != NULL) mdb_cursor_close(cur);
    return error;
}

void mlreg_meta_set_owner(mlreg_meta *meta, void *owner)
{
    meta->owner = owner;
}

void *mlreg_meta_owner(const mlreg_meta *meta)
{
    return meta->owner;
}

int mlreg_meta_set_synced(mlreg_meta *meta, int synced)
{
    int rc = mdb_env_set_flags(meta->env, MDB_NOSYNC, synced ? 0 : 1);

    if (rc != 0)
        return mlreg_error_set(MLREG_EIO, "lmdb: cannot change the sync mode: %s",
                               mdb_strerror(rc));
    return 0;
}

uint64_t mlreg_meta_generation(mlreg_meta *meta)
{
    MDB_envinfo info;

    if (mdb_env_info(meta->env, &info) != 0) return 0;
    return (uint64_t)info.me_last_txnid;
}

uint64_t mlreg_meta_txn_generation(const mlreg_meta_txn *txn)
{
    return (uint64_t)mdb_txn_id(txn->txn);
}

int mlreg_meta_usage(uint64_t *used_out, uint64_t *size_out, mlreg_meta *meta)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc;

    if ((rc = mdb_env_info(meta->env, &info)) != 0 || (rc = mdb_env_stat(meta->env, &st)) != 0)
        return mlreg_error_set(MLREG_EIO, "metadata store: cannot read its size: %s",
                               mdb_strerror(rc));
    *used_out = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    *size_out = info.me_mapsize;
    return 0;
}
