/**
 * @file meta.h
 * @brief LMDB metadata: one environment, named databases, one write
 *        transaction per mutation.
 *
 * The environment lives in a directory (LMDB's standard `data.mdb` and
 * `lock.mdb` inside). Keys and values are opaque bytes; the registry defines
 * their layout. Values returned by get/iteration are COPIES (malloc) or
 * pointers valid only inside the callback, never raw LMDB pointers that
 * outlive their transaction. MDB_MAP_FULL becomes MLREG_ENOSPACE with a clear
 * message ("metadata map full (map_size=N bytes); raise limits.map_size").
 * A write transaction is used by one thread at a time (LMDB's rule); read
 * transactions may run concurrently from many threads (MDB_NOTLS is set).
 */
#ifndef MLREG_META_H
#define MLREG_META_H

#include <stddef.h>
#include <stdint.h>

/**
 * A table (LMDB named database) of an environment: 0 is the store's own
 * "meta" table, 1..n the tables named by the caller of mlreg_meta_open(),
 * in the order given. The store knows bytes only; which tables exist and
 * how their keys are laid out is the caller's business (the registry's
 * tables and the one file owning each layout are in tables.h).
 */
typedef unsigned int mlreg_db;

/** The store's own table "meta": the schema version, the counters of
 *  mlreg_meta_counter_next() and the caller's other singletons. */
#define MLREG_DB_META 0u

/** Most tables an environment may have, "meta" included. */
#define MLREG_META_TABLES_MAX 32

/** Schema version written at creation and checked at open. Tables added
 *  later are created empty when an older data directory is opened, which
 *  needs no new version. */
#define MLREG_META_SCHEMA_VERSION 1

typedef struct mlreg_meta mlreg_meta;
typedef struct mlreg_meta_txn mlreg_meta_txn;

/**
 * Opens (creating if needed) the environment in directory @p dir with map
 * size @p map_size bytes (0 = default 1 GiB) and its tables: "meta"
 * (MLREG_DB_META) and the @p ntables names of @p tables, which become
 * tables 1..ntables (each created empty when missing; the names are part of
 * the on-disk format and are borrowed for the environment's lifetime).
 * Writes the schema version on creation; refuses (MLREG_EINVALID) a newer
 * schema than this build knows, and a table list that is empty-named,
 * repeats a name, names "meta" or has more than MLREG_META_TABLES_MAX - 1
 * entries.
 */
int mlreg_meta_open(mlreg_meta **out, const char *dir, size_t map_size, const char *const *tables,
                    size_t ntables);
/**
 * Writes a consistent copy of the environment, compacted, as data.mdb in
 * directory @p dir (which must exist and hold no data.mdb), while other
 * threads and processes go on reading and writing. 0; MLREG_ENOSPACE;
 * MLREG_EIO (the message names @p dir).
 */
int mlreg_meta_copy(mlreg_meta *meta, const char *dir);
/** Closes the environment; NULL is a no-op. No transaction may be open. */
void mlreg_meta_close(mlreg_meta *meta);

/** Begins a transaction: @p write non-zero for a write transaction. */
int mlreg_meta_txn_begin(mlreg_meta_txn **out, mlreg_meta *meta, int write);
/**
 * Begins a write transaction nested in the write transaction @p parent,
 * which may not be used until the child ends. Committing the child makes
 * its writes part of the parent (nothing reaches the disk before the
 * parent commits); aborting it drops them and leaves the parent as it was.
 * 0; MLREG_EINVALID (@p parent read-only or failed); MLREG_ENOMEM; MLREG_EIO.
 */
int mlreg_meta_txn_begin_nested(mlreg_meta_txn **out, mlreg_meta_txn *parent);
/** Commits and frees the transaction (also on failure). */
int mlreg_meta_txn_commit(mlreg_meta_txn *txn);
/** Aborts and frees the transaction; NULL is a no-op. */
void mlreg_meta_txn_abort(mlreg_meta_txn *txn);

/**
 * Looks @p key up. On success *val_out is a malloc'd copy (caller frees) with
 * one extra NUL byte after *len_out bytes, so text values can be used as C
 * strings. 0, MLREG_ENOTFOUND, or another error.
 */
int mlreg_meta_get(void **val_out, size_t *len_out, mlreg_meta_txn *txn, mlreg_db db,
                   const void *key, size_t klen);

/** Stores @p key -> @p val. With @p no_overwrite, an existing key gives MLREG_EEXISTS. */
int mlreg_meta_put(mlreg_meta_txn *txn, mlreg_db db, const void *key, size_t klen, const void *val,
                   size_t vlen, int no_overwrite);

/**
 * Increments the counter @p name in the `meta` database (a be64 value; an
 * absent counter counts as 0) inside the write transaction @p txn and
 * stores the new value in *out, so the first call gives 1. Sequence numbers
 * taken this way are unique and increase in commit order.
 * @return 0; MLREG_EIO when the stored value is not 8 bytes; the errors of
 *         mlreg_meta_get() and mlreg_meta_put().
 */
int mlreg_meta_counter_next(uint64_t *out, mlreg_meta_txn *txn, const char *name);

/** Deletes @p key: 0 or MLREG_ENOTFOUND or another error. */
int mlreg_meta_del(mlreg_meta_txn *txn, mlreg_db db, const void *key, size_t klen);

/**
 * Called for each key/value during iteration. Pointers are valid only during
 * the call. Return 0 to continue, a positive value to stop (returned by the
 * iterator), a negative MLREG_E* to abort with that error.
 */
typedef int (*mlreg_meta_iter_cb)(const void *key, size_t klen, const void *val, size_t vlen,
                                  void *payload);

/**
 * Iterates, in key order, over the keys that start with @p prefix (plen may
 * be 0 for all keys) and are >= @p start (NULL to start at the prefix).
 * Returns 0 when the walk ended, the callback's positive stop value, or an error.
 */
int mlreg_meta_iter(mlreg_meta_txn *txn, mlreg_db db, const void *prefix, size_t plen,
                    const void *start, size_t slen, mlreg_meta_iter_cb cb, void *payload);

/**
 * Ties @p meta to the object that owns it (the registry sets itself), so
 * code that is handed only the environment finds its owner; NULL unties.
 * Storage never looks at the pointer. Set it before other threads use
 * @p meta.
 */
void mlreg_meta_set_owner(mlreg_meta *meta, void *owner);
/** The owner set by mlreg_meta_set_owner(), or NULL. */
void *mlreg_meta_owner(const mlreg_meta *meta);

/**
 * Whether a commit waits for the disk (the default: 1). With 0, commits
 * return before their pages reach the disk (MDB_NOSYNC): a crash of the
 * machine may undo the last commits, but the environment stays consistent.
 * For an environment that is an index of a log kept elsewhere, which puts
 * back whatever a crash undid. 0 or MLREG_EIO.
 */
int mlreg_meta_set_synced(mlreg_meta *meta, int synced);

/**
 * How full the map is: *used_out the bytes of the pages in use (the last
 * page used, plus one, times the page size: what a write can no longer
 * take), *size_out the map size (limits.map_size, or the data file's size
 * when LMDB raised it). No transaction, no lock. 0 or MLREG_EIO.
 */
int mlreg_meta_usage(uint64_t *used_out, uint64_t *size_out, mlreg_meta *meta);

/**
 * The id of the last committed write transaction of @p meta: it moves on
 * with every commit, by this process or another one on the same files. No
 * transaction, no lock. 0 when LMDB cannot tell.
 */
uint64_t mlreg_meta_generation(mlreg_meta *meta);

/** The generation a read transaction @p txn sees (the commit its snapshot is of). */
uint64_t mlreg_meta_txn_generation(const mlreg_meta_txn *txn);

#endif
