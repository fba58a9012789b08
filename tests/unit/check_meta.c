/* check_meta.c: the LMDB metadata store. */
#include "mlreg/common.h"
#include "mlreg/meta.h"
#include "mlreg/tables.h"

#include "helpers.h"

#include <check.h>
#include <dirent.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[64];
static char dir[128];

static void setup(void)
{
    th_tmpdir(tmp, sizeof(tmp), "meta");
    /* a directory that does not exist yet: open must create it */
    snprintf(dir, sizeof(dir), "%s/data/meta", tmp);
}

static void teardown(void)
{
    th_rm_rf(tmp);
}

static mlreg_meta *open_meta(size_t map_size)
{
    mlreg_meta *m = NULL;

    ck_assert_msg(mlreg_tables_open(&m, dir, map_size) == 0, "open: %s", mlreg_error_last());
    return m;
}

static void put_str(mlreg_meta *m, mlreg_db db, const char *k, const char *v)
{
    mlreg_meta_txn *t = NULL;

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    ck_assert_int_eq(mlreg_meta_put(t, db, k, strlen(k), v, strlen(v), 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(t), 0);
}

/* Returns the value as a malloc'd string, or NULL when the key is missing. */
static char *get_str(mlreg_meta *m, mlreg_db db, const char *k)
{
    mlreg_meta_txn *t = NULL;
    void *v = NULL;
    size_t len = 0;
    int rc;

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 0), 0);
    rc = mlreg_meta_get(&v, &len, t, db, k, strlen(k));
    mlreg_meta_txn_abort(t);
    if (rc == MLREG_ENOTFOUND) return NULL;
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(strlen(v), len);
    return v;
}

START_TEST(test_meta_counter_next_counts_from_one_and_refuses_a_corrupt_value)
{
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *t = NULL;
    uint64_t seq = 0;
    void *val = NULL;
    size_t vlen = 0;
    const unsigned char want[8] = {0, 0, 0, 0, 0, 0, 0, 2};

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    ck_assert_int_eq(mlreg_meta_counter_next(&seq, t, "c"), 0);
    ck_assert_uint_eq(seq, 1);
    ck_assert_int_eq(mlreg_meta_counter_next(&seq, t, "c"), 0);
    ck_assert_uint_eq(seq, 2);
    ck_assert_int_eq(mlreg_meta_counter_next(&seq, t, "other"), 0);
    ck_assert_uint_eq(seq, 1);
    /* stored big-endian, so byte order is numeric order */
    ck_assert_int_eq(mlreg_meta_get(&val, &vlen, t, MLREG_DB_META, "c", 1), 0);
    ck_assert_uint_eq(vlen, 8);
    ck_assert_mem_eq(val, want, 8);
    free(val);
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_META, "bad", 3, "xyz", 3, 0), 0);
    ck_assert_int_eq(mlreg_meta_counter_next(&seq, t, "bad"), MLREG_EIO);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "metadata counter bad is corrupt"));
    ck_assert_int_eq(mlreg_meta_txn_commit(t), 0);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_open_creates_the_directory_and_writes_the_schema_version)
{
    mlreg_meta *m = open_meta(0);
    char path[256], *v;
    struct stat st;

    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    ck_assert_int_eq(stat(path, &st), 0);

    v = get_str(m, MLREG_DB_META, "schema_version");
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v, "1");
    free(v);
    mlreg_meta_close(m);
    mlreg_meta_close(NULL);
}
END_TEST

START_TEST(test_meta_reopen_keeps_committed_data)
{
    mlreg_meta *m = open_meta(0);
    char *v;

    put_str(m, MLREG_DB_TAGS, "model-a/v1", "sha256:abc");
    mlreg_meta_close(m);

    m = open_meta(0);
    v = get_str(m, MLREG_DB_TAGS, "model-a/v1");
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v, "sha256:abc");
    free(v);
    v = get_str(m, MLREG_DB_META, "schema_version");
    ck_assert_str_eq(v, "1");
    free(v);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_open_refuses_a_newer_schema_version)
{
    mlreg_meta *m = open_meta(0), *again = NULL;
    char newer[16];

    snprintf(newer, sizeof(newer), "%d", MLREG_META_SCHEMA_VERSION + 1);
    put_str(m, MLREG_DB_META, "schema_version", newer);
    mlreg_meta_close(m);

    ck_assert_int_eq(mlreg_tables_open(&again, dir, 0), MLREG_EINVALID);
    ck_assert_ptr_null(again);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "newer"));
}
END_TEST

START_TEST(test_meta_open_refuses_a_malformed_schema_version)
{
    mlreg_meta *m = open_meta(0), *again = NULL;

    put_str(m, MLREG_DB_META, "schema_version", "1x");
    mlreg_meta_close(m);
    ck_assert_int_eq(mlreg_tables_open(&again, dir, 0), MLREG_EINVALID);
    ck_assert_ptr_null(again);
}
END_TEST

START_TEST(test_meta_open_takes_the_callers_tables_and_refuses_a_bad_list)
{
    static const char *const mine[] = {"alpha", "beta"};
    static const char *const twice[] = {"alpha", "alpha"};
    static const char *const own[] = {"meta"};
    static const char *const unnamed[] = {""};
    mlreg_meta *m = NULL;
    mlreg_meta_txn *t = NULL;

    ck_assert_int_eq(mlreg_meta_open(&m, dir, 0, twice, 2), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "named twice"));
    ck_assert_int_eq(mlreg_meta_open(&m, dir, 0, own, 1), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_meta_open(&m, dir, 0, unnamed, 1), MLREG_EINVALID);
    ck_assert_ptr_null(m);
    ck_assert_msg(mlreg_meta_open(&m, dir, 0, mine, 2) == 0, "%s", mlreg_error_last());
    put_str(m, 2, "k", "in beta");
    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    /* table 3 was never named */
    ck_assert_int_eq(mlreg_meta_put(t, 3, "k", 1, "v", 1, 0), MLREG_EINVALID);
    mlreg_meta_txn_abort(t);
    ck_assert_ptr_null(get_str(m, 1, "k"));
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_put_get_del_round_trip_binary_values)
{
    static const unsigned char val[] = {0, 1, 2, 0, 255, 'x'};
    static const unsigned char key[] = {'k', 0, 'e', 'y'};
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *t = NULL;
    void *v = NULL;
    size_t len = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_RELEASES, key, sizeof(key), val, sizeof(val), 0),
                     0);
    /* visible inside the same txn */
    ck_assert_int_eq(mlreg_meta_get(&v, &len, t, MLREG_DB_RELEASES, key, sizeof(key)), 0);
    ck_assert_uint_eq(len, sizeof(val));
    free(v);
    ck_assert_int_eq(mlreg_meta_txn_commit(t), 0);

    /* the copy outlives its transaction and carries a trailing NUL */
    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 0), 0);
    ck_assert_int_eq(mlreg_meta_get(&v, &len, t, MLREG_DB_RELEASES, key, sizeof(key)), 0);
    mlreg_meta_txn_abort(t);
    ck_assert_uint_eq(len, sizeof(val));
    ck_assert(memcmp(v, val, sizeof(val)) == 0);
    ck_assert_int_eq(((unsigned char *)v)[len], 0);
    free(v);

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    ck_assert_int_eq(mlreg_meta_del(t, MLREG_DB_RELEASES, key, sizeof(key)), 0);
    ck_assert_int_eq(mlreg_meta_del(t, MLREG_DB_RELEASES, key, sizeof(key)), MLREG_ENOTFOUND);
    /* ENOTFOUND from del does not poison the transaction */
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_RELEASES, "other", 5, "", 0, 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(t), 0);

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 0), 0);
    v = NULL;
    ck_assert_int_eq(mlreg_meta_get(&v, &len, t, MLREG_DB_RELEASES, key, sizeof(key)),
                     MLREG_ENOTFOUND);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(mlreg_meta_get(&v, &len, t, MLREG_DB_RELEASES, "other", 5), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(v, "");
    free(v);
    mlreg_meta_txn_abort(t);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_put_no_overwrite_on_an_existing_key_returns_eexists)
{
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *t = NULL;
    char *v;

    put_str(m, MLREG_DB_TAGS, "rag/1.0", "first");
    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, "rag/1.0", 7, "second", 6, 1), MLREG_EEXISTS);
    /* EEXISTS leaves the txn usable */
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, "rag/1.1", 7, "third", 5, 1), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(t), 0);
    v = get_str(m, MLREG_DB_TAGS, "rag/1.0");
    ck_assert_str_eq(v, "first");
    free(v);

    /* without the flag, a put replaces */
    put_str(m, MLREG_DB_TAGS, "rag/1.0", "replaced");
    v = get_str(m, MLREG_DB_TAGS, "rag/1.0");
    ck_assert_str_eq(v, "replaced");
    free(v);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_get_missing_returns_enotfound)
{
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *t = NULL;
    void *v = NULL;
    size_t len = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 0), 0);
    ck_assert_int_eq(mlreg_meta_get(&v, &len, t, MLREG_DB_MANIFESTS, "nope", 4), MLREG_ENOTFOUND);
    ck_assert_ptr_null(v);
    mlreg_meta_txn_abort(t);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_databases_are_separate)
{
    mlreg_meta *m = open_meta(0);
    char *v;

    put_str(m, MLREG_DB_REPOS, "same-key", "repos");
    put_str(m, MLREG_DB_IMAGES, "same-key", "images");
    v = get_str(m, MLREG_DB_REPOS, "same-key");
    ck_assert_str_eq(v, "repos");
    free(v);
    v = get_str(m, MLREG_DB_IMAGES, "same-key");
    ck_assert_str_eq(v, "images");
    free(v);
    ck_assert_ptr_null(get_str(m, MLREG_DB_REFERRERS, "same-key"));
    mlreg_meta_close(m);
}
END_TEST

/* A data directory written before the signature databases existed (only the
 * first eight named databases, schema 1) still opens, keeps its data and
 * gains the new databases, empty. */
START_TEST(test_meta_open_adds_new_databases_to_an_older_environment)
{
    static const char *const old_names[] = {"meta", "repos",     "repo_blobs", "manifests",
                                            "tags", "referrers", "releases",   "images"};
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k = {sizeof("schema_version") - 1, (void *)"schema_version"}, v = {1, (void *)"1"};
    MDB_val rk = {5, (void *)"model"}, rv = {0, (void *)""};
    mlreg_meta *m;
    char *got;

    {
        char d[160];
        snprintf(d, sizeof(d), "%s/data", tmp);
        ck_assert_int_eq(mkdir(d, 0700), 0);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
    }
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    for (size_t i = 0; i < 8; i++) {
        ck_assert_int_eq(mdb_dbi_open(txn, old_names[i], MDB_CREATE, &dbi), 0);
        if (i == 0) ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
        if (i == 1) ck_assert_int_eq(mdb_put(txn, dbi, &rk, &rv, 0), 0);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    m = open_meta(0);
    got = get_str(m, MLREG_DB_REPOS, "model");
    ck_assert_ptr_nonnull(got);
    free(got);
    ck_assert_ptr_null(get_str(m, MLREG_DB_SIGNATURES, "x"));
    put_str(m, MLREG_DB_SIGNATURES, "x", "sig");
    put_str(m, MLREG_DB_KEYS, "x", "key");
    put_str(m, MLREG_DB_KEY_EVENTS, "x", "event");
    mlreg_meta_close(m);
    m = open_meta(0);
    got = get_str(m, MLREG_DB_SIGNATURES, "x");
    ck_assert_str_eq(got, "sig");
    free(got);
    got = get_str(m, MLREG_DB_KEY_EVENTS, "x");
    ck_assert_str_eq(got, "event");
    free(got);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_abort_discards_writes)
{
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *t = NULL;
    char *v;

    put_str(m, MLREG_DB_TAGS, "kept", "old");
    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, "new", 3, "x", 1, 0), 0);
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, "kept", 4, "changed", 7, 0), 0);
    ck_assert_int_eq(mlreg_meta_del(t, MLREG_DB_META, "schema_version", 14), 0);
    mlreg_meta_txn_abort(t);
    mlreg_meta_txn_abort(NULL);

    ck_assert_ptr_null(get_str(m, MLREG_DB_TAGS, "new"));
    v = get_str(m, MLREG_DB_TAGS, "kept");
    ck_assert_str_eq(v, "old");
    free(v);
    v = get_str(m, MLREG_DB_META, "schema_version");
    ck_assert_ptr_nonnull(v);
    free(v);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_nested_transactions_commit_into_their_parent_or_drop_alone)
{
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *p = NULL, *c = NULL, *r = NULL;
    void *val = NULL;
    size_t len = 0;
    char *v;

    put_str(m, MLREG_DB_TAGS, "kept", "old");
    ck_assert_int_eq(mlreg_meta_txn_begin(&p, m, 1), 0);
    /* a child kept: the parent and later children see its writes */
    ck_assert_int_eq(mlreg_meta_txn_begin_nested(&c, p), 0);
    ck_assert_int_eq(mlreg_meta_put(c, MLREG_DB_TAGS, "one", 3, "1", 1, 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(c), 0);
    /* a child dropped: its writes and deletions vanish, the parent's stay */
    ck_assert_int_eq(mlreg_meta_txn_begin_nested(&c, p), 0);
    ck_assert_int_eq(mlreg_meta_get(&val, &len, c, MLREG_DB_TAGS, "one", 3), 0);
    ck_assert_mem_eq(val, "1", 1);
    free(val);
    ck_assert_int_eq(mlreg_meta_put(c, MLREG_DB_TAGS, "two", 3, "2", 1, 0), 0);
    ck_assert_int_eq(mlreg_meta_del(c, MLREG_DB_TAGS, "kept", 4), 0);
    mlreg_meta_txn_abort(c);
    /* nothing of the parent is visible to readers before it commits */
    ck_assert_ptr_null(get_str(m, MLREG_DB_TAGS, "one"));
    ck_assert_int_eq(mlreg_meta_txn_commit(p), 0);

    v = get_str(m, MLREG_DB_TAGS, "one");
    ck_assert_str_eq(v, "1");
    free(v);
    ck_assert_ptr_null(get_str(m, MLREG_DB_TAGS, "two"));
    v = get_str(m, MLREG_DB_TAGS, "kept");
    ck_assert_str_eq(v, "old");
    free(v);

    /* a read transaction has no children */
    ck_assert_int_eq(mlreg_meta_txn_begin(&r, m, 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin_nested(&c, r), MLREG_EINVALID);
    mlreg_meta_txn_abort(r);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_a_nested_transaction_that_fills_the_map_drops_alone)
{
    mlreg_meta *m = open_meta(64 * 1024);
    mlreg_meta_txn *p = NULL, *c = NULL;
    char val[1024], key[32], *v;
    int i, rc = 0;

    memset(val, 'v', sizeof(val));
    ck_assert_int_eq(mlreg_meta_txn_begin(&p, m, 1), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin_nested(&c, p), 0);
    ck_assert_int_eq(mlreg_meta_put(c, MLREG_DB_TAGS, "small", 5, "ok", 2, 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(c), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin_nested(&c, p), 0);
    for (i = 0; i < 10000 && rc == 0; i++) {
        snprintf(key, sizeof(key), "key-%06d", i);
        rc = mlreg_meta_put(c, MLREG_DB_RELEASES, key, strlen(key), val, sizeof(val), 0);
    }
    ck_assert_int_eq(rc, MLREG_ENOSPACE);
    mlreg_meta_txn_abort(c);
    /* the parent goes on and commits what its kept child wrote */
    ck_assert_int_eq(mlreg_meta_txn_commit(p), 0);
    v = get_str(m, MLREG_DB_TAGS, "small");
    ck_assert_str_eq(v, "ok");
    free(v);
    ck_assert_ptr_null(get_str(m, MLREG_DB_RELEASES, "key-000000"));
    mlreg_meta_close(m);
}
END_TEST

#define MAX_KEYS 16

struct visited {
    char keys[MAX_KEYS][32];
    int n;
    int stop_after;
    int ret;
};

static int visit(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    struct visited *s = payload;

    ck_assert_int_lt(s->n, MAX_KEYS);
    ck_assert_uint_lt(klen, sizeof(s->keys[0]));
    /* the value is the key upper-cased: checks values line up with keys */
    ck_assert_uint_eq(vlen, klen);
    memcpy(s->keys[s->n], key, klen);
    s->keys[s->n][klen] = '\0';
    ck_assert_int_eq(((const char *)val)[0], s->keys[s->n][0] - 'a' + 'A');
    s->n++;
    if (s->stop_after > 0 && s->n == s->stop_after) return s->ret;
    return 0;
}

static mlreg_meta *open_with_keys(void)
{
    static const char *const keys[] = {"a", "a/1", "a/10", "a/2", "ab", "b/1", "a/"};
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *t = NULL;
    size_t i;

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char val[32];
        size_t j, n = strlen(keys[i]);
        for (j = 0; j < n; j++)
            val[j] = keys[i][j] >= 'a' && keys[i][j] <= 'z' ? keys[i][j] - 'a' + 'A' : keys[i][j];
        ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, keys[i], n, val, n, 0), 0);
    }
    ck_assert_int_eq(mlreg_meta_txn_commit(t), 0);
    return m;
}

static void iter(struct visited *s, mlreg_meta *m, const char *prefix, const char *start)
{
    mlreg_meta_txn *t = NULL;
    int rc;

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 0), 0);
    rc = mlreg_meta_iter(t, MLREG_DB_TAGS, prefix, prefix ? strlen(prefix) : 0, start,
                         start ? strlen(start) : 0, visit, s);
    mlreg_meta_txn_abort(t);
    ck_assert_int_eq(rc, s->stop_after > 0 ? s->ret : 0);
}

START_TEST(test_meta_iter_visits_only_keys_with_the_prefix_in_key_order)
{
    mlreg_meta *m = open_with_keys();
    struct visited s = {0};

    iter(&s, m, "a/", NULL);
    ck_assert_int_eq(s.n, 4);
    ck_assert_str_eq(s.keys[0], "a/");
    ck_assert_str_eq(s.keys[1], "a/1");
    ck_assert_str_eq(s.keys[2], "a/10");
    ck_assert_str_eq(s.keys[3], "a/2");

    memset(&s, 0, sizeof(s));
    iter(&s, m, "zz", NULL);
    ck_assert_int_eq(s.n, 0);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_iter_with_an_empty_prefix_visits_every_key)
{
    mlreg_meta *m = open_with_keys();
    struct visited s = {0};

    iter(&s, m, NULL, NULL);
    ck_assert_int_eq(s.n, 7);
    ck_assert_str_eq(s.keys[0], "a");
    ck_assert_str_eq(s.keys[6], "b/1");
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_iter_starts_at_the_start_key)
{
    mlreg_meta *m = open_with_keys();
    struct visited s = {0};

    iter(&s, m, "a/", "a/10");
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.keys[0], "a/10");
    ck_assert_str_eq(s.keys[1], "a/2");

    /* a start key that is not stored begins at the next key */
    memset(&s, 0, sizeof(s));
    iter(&s, m, "a/", "a/15");
    ck_assert_int_eq(s.n, 1);
    ck_assert_str_eq(s.keys[0], "a/2");

    /* a start key before the prefix begins at the prefix */
    memset(&s, 0, sizeof(s));
    iter(&s, m, "a/", "0");
    ck_assert_int_eq(s.n, 4);
    ck_assert_str_eq(s.keys[0], "a/");

    /* a start key past the prefix visits nothing */
    memset(&s, 0, sizeof(s));
    iter(&s, m, "a/", "a0");
    ck_assert_int_eq(s.n, 0);

    /* no prefix, only a start */
    memset(&s, 0, sizeof(s));
    iter(&s, m, NULL, "ab");
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.keys[0], "ab");
    ck_assert_str_eq(s.keys[1], "b/1");
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_iter_returns_the_callbacks_stop_value_or_error)
{
    mlreg_meta *m = open_with_keys();
    struct visited s = {0};

    s.stop_after = 2;
    s.ret = 7;
    iter(&s, m, "a", NULL);
    ck_assert_int_eq(s.n, 2);

    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    s.ret = MLREG_EINVALID;
    iter(&s, m, "a", NULL);
    ck_assert_int_eq(s.n, 1);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_write_in_a_read_transaction_is_refused)
{
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *t = NULL;

    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 0), 0);
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, "k", 1, "v", 1, 0), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_meta_del(t, MLREG_DB_TAGS, "k", 1), MLREG_EINVALID);
    mlreg_meta_txn_abort(t);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_keys_out_of_lmdb_range_are_invalid_not_io_errors)
{
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *t = NULL;
    char big[600];
    void *v = NULL;
    size_t len;

    memset(big, 'k', sizeof(big));
    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, "", 0, "v", 1, 0), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, big, sizeof(big), "v", 1, 0), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_meta_get(&v, &len, t, MLREG_DB_TAGS, big, sizeof(big)), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_END, "k", 1, "v", 1, 0), MLREG_EINVALID);
    /* none of that spoiled the transaction */
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, "k", 1, "v", 1, 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(t), 0);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_map_full_returns_enospace_with_a_clear_message_and_env_stays_usable)
{
    mlreg_meta *m = open_meta(64 * 1024);
    mlreg_meta_txn *t = NULL;
    char val[1024], key[32], *v;
    size_t map_size = 0;
    int i, rc = 0;
    const char *msg, *suffix = "; raise limits.map_size";

    put_str(m, MLREG_DB_TAGS, "before", "still here");
    memset(val, 'v', sizeof(val));
    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    for (i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "key-%06d", i);
        if ((rc = mlreg_meta_put(t, MLREG_DB_RELEASES, key, strlen(key), val, sizeof(val), 0)) < 0)
            break;
    }
    ck_assert_int_eq(rc, MLREG_ENOSPACE);
    ck_assert_int_gt(i, 0);
    msg = mlreg_error_last();
    ck_assert_msg(sscanf(msg, "metadata map full (map_size=%zu bytes)", &map_size) == 1,
                  "message: %s", msg);
    ck_assert_uint_ge(map_size, 64 * 1024);
    ck_assert_uint_gt(strlen(msg), strlen(suffix));
    ck_assert_str_eq(msg + strlen(msg) - strlen(suffix), suffix);
    {
        char want[128];
        snprintf(want, sizeof(want),
                 "metadata map full (map_size=%zu bytes); raise limits.map_size", map_size);
        ck_assert_str_eq(msg, want);
    }

    /* the failed txn refuses further writes and its commit reports the
     * failure (and frees it, which ASan/valgrind check) */
    ck_assert_int_eq(mlreg_meta_put(t, MLREG_DB_TAGS, "x", 1, "y", 1, 0), MLREG_ENOSPACE);
    ck_assert_int_eq(mlreg_meta_txn_commit(t), MLREG_ENOSPACE);

    /* reads still work, nothing of the failed txn is visible */
    v = get_str(m, MLREG_DB_TAGS, "before");
    ck_assert_str_eq(v, "still here");
    free(v);
    ck_assert_ptr_null(get_str(m, MLREG_DB_RELEASES, "key-000000"));
    /* and so do small writes */
    put_str(m, MLREG_DB_TAGS, "after", "fine");
    v = get_str(m, MLREG_DB_TAGS, "after");
    ck_assert_str_eq(v, "fine");
    free(v);
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_map_full_then_abort_leaves_the_env_usable)
{
    mlreg_meta *m = open_meta(64 * 1024);
    mlreg_meta_txn *t = NULL;
    char val[2000], key[32], *v;
    int i, rc = 0;

    memset(val, 'w', sizeof(val));
    ck_assert_int_eq(mlreg_meta_txn_begin(&t, m, 1), 0);
    for (i = 0; i < 10000 && rc == 0; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        rc = mlreg_meta_put(t, MLREG_DB_IMAGES, key, strlen(key), val, sizeof(val), 0);
    }
    ck_assert_int_eq(rc, MLREG_ENOSPACE);
    mlreg_meta_txn_abort(t);
    v = get_str(m, MLREG_DB_META, "schema_version");
    ck_assert_str_eq(v, "1");
    free(v);
    put_str(m, MLREG_DB_IMAGES, "small", "ok");
    mlreg_meta_close(m);
}
END_TEST

START_TEST(test_meta_one_thread_may_hold_several_read_transactions)
{
    /* Needs MDB_NOTLS: without it a second read txn in the same thread fails
     * with MDB_BAD_RSLOT. Server workers rely on this. */
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *a = NULL, *b = NULL;
    void *v = NULL;
    size_t len;

    ck_assert_int_eq(mlreg_meta_txn_begin(&a, m, 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&b, m, 0), 0);
    ck_assert_int_eq(mlreg_meta_get(&v, &len, b, MLREG_DB_META, "schema_version", 14), 0);
    free(v);
    mlreg_meta_txn_abort(a);
    ck_assert_int_eq(mlreg_meta_txn_commit(b), 0);
    mlreg_meta_close(m);
}
END_TEST

struct reader_arg {
    mlreg_meta *m;
    char *value;
};

static void *reader_thread(void *p)
{
    struct reader_arg *a = p;
    mlreg_meta_txn *t = NULL;
    void *v = NULL;
    size_t len;

    if (mlreg_meta_txn_begin(&t, a->m, 0) == 0) {
        if (mlreg_meta_get(&v, &len, t, MLREG_DB_TAGS, "shared", 6) == 0) a->value = v;
        mlreg_meta_txn_abort(t);
    }
    return NULL;
}

START_TEST(test_meta_readers_in_other_threads_see_the_last_commit_while_a_write_is_open)
{
    mlreg_meta *m = open_meta(0);
    mlreg_meta_txn *w = NULL;
    pthread_t th[4];
    struct reader_arg args[4];
    int i;

    put_str(m, MLREG_DB_TAGS, "shared", "committed");
    ck_assert_int_eq(mlreg_meta_txn_begin(&w, m, 1), 0);
    ck_assert_int_eq(mlreg_meta_put(w, MLREG_DB_TAGS, "shared", 6, "pending", 7, 0), 0);
    for (i = 0; i < 4; i++) {
        args[i].m = m;
        args[i].value = NULL;
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_thread, &args[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_ptr_nonnull(args[i].value);
        ck_assert_str_eq(args[i].value, "committed");
        free(args[i].value);
    }
    ck_assert_int_eq(mlreg_meta_txn_commit(w), 0);
    mlreg_meta_close(m);
}
END_TEST

static Suite *meta_suite(void)
{
    Suite *s = suite_create("meta");
    TCase *tc = tcase_create("lmdb");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_meta_open_creates_the_directory_and_writes_the_schema_version);
    tcase_add_test(tc, test_meta_counter_next_counts_from_one_and_refuses_a_corrupt_value);
    tcase_add_test(tc, test_meta_reopen_keeps_committed_data);
    tcase_add_test(tc, test_meta_open_refuses_a_newer_schema_version);
    tcase_add_test(tc, test_meta_open_refuses_a_malformed_schema_version);
    tcase_add_test(tc, test_meta_open_takes_the_callers_tables_and_refuses_a_bad_list);
    tcase_add_test(tc, test_meta_put_get_del_round_trip_binary_values);
    tcase_add_test(tc, test_meta_put_no_overwrite_on_an_existing_key_returns_eexists);
    tcase_add_test(tc, test_meta_get_missing_returns_enotfound);
    tcase_add_test(tc, test_meta_databases_are_separate);
    tcase_add_test(tc, test_meta_open_adds_new_databases_to_an_older_environment);
    tcase_add_test(tc, test_meta_abort_discards_writes);
    tcase_add_test(tc, test_meta_nested_transactions_commit_into_their_parent_or_drop_alone);
    tcase_add_test(tc, test_meta_a_nested_transaction_that_fills_the_map_drops_alone);
    tcase_add_test(tc, test_meta_iter_visits_only_keys_with_the_prefix_in_key_order);
    tcase_add_test(tc, test_meta_iter_with_an_empty_prefix_visits_every_key);
    tcase_add_test(tc, test_meta_iter_starts_at_the_start_key);
    tcase_add_test(tc, test_meta_iter_returns_the_callbacks_stop_value_or_error);
    tcase_add_test(tc, test_meta_write_in_a_read_transaction_is_refused);
    tcase_add_test(tc, test_meta_keys_out_of_lmdb_range_are_invalid_not_io_errors);
    tcase_add_test(tc,
                   test_meta_map_full_returns_enospace_with_a_clear_message_and_env_stays_usable);
    tcase_add_test(tc, test_meta_map_full_then_abort_leaves_the_env_usable);
    tcase_add_test(tc, test_meta_one_thread_may_hold_several_read_transactions);
    tcase_add_test(tc,
                   test_meta_readers_in_other_threads_see_the_last_commit_while_a_write_is_open);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(meta_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
