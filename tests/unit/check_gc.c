/* check_gc.c: garbage collection (registry/gc.c) on a registry with the fs
 * backend: what a collection keeps and takes, its dry run, one run at a
 * time, and the check every link of a collected blob goes through. The
 * byte-for-byte replay of its entries is in check_replay.c; the race with
 * pushes through the real server in tests/integration/test_gc.sh. */
#include "../../registry/registry_internal.h"
#include "mlreg/audit.h"
#include "mlreg/blob.h"
#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/gc.h"
#include "mlreg/oci.h"
#include "mlreg/registry.h"
#include "mlreg/tables.h"

#include "helpers.h"

#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static th_registry fx;

static void setup(void)
{
    th_registry_setup(&fx, "gc", NULL);
}

static void teardown(void)
{
    th_registry_teardown(&fx);
}

/* Makes the stored copy of @p d look written an hour ago. */
static void age(const mlreg_digest *d)
{
    char path[TH_DIR_MAX + 128], hex[MLREG_DIGEST_HEXLEN + 1];
    struct timespec old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};

    mlreg_digest_hex(hex, d);
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", fx.dir, hex, hex);
    ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
}

static json_t *gc(int64_t grace, int dry_run)
{
    mlreg_gc_opts o = {
        .grace_seconds = grace, .stale_upload_seconds = 3600, .dry_run = dry_run, .actor = "ops"};
    json_t *r = NULL;

    ck_assert_msg(mlreg_registry_gc(&r, fx.reg, &o) == 0, "%s", mlreg_error_last());
    return r;
}

static long long jint(json_t *r, const char *k)
{
    return (long long)json_integer_value(json_object_get(r, k));
}

static int stored(const mlreg_digest *d)
{
    return mlreg_blobstore_exists(mlreg_registry_blobstore(fx.reg), d);
}

START_TEST(test_an_unlinked_old_blob_goes_and_a_young_one_stays)
{
    mlreg_digest old, young;
    json_t *r;

    th_put_blob(&old, fx.reg, "m/a", "ci", "old orphan");
    th_put_blob(&young, fx.reg, "m/a", "ci", "young orphan");
    ck_assert_int_eq(mlreg_registry_blob_unlink(fx.reg, "m/a", &old, "ci"), 0);
    ck_assert_int_eq(mlreg_registry_blob_unlink(fx.reg, "m/a", &young, "ci"), 0);
    age(&old);
    r = gc(60, 1);
    ck_assert_int_eq(jint(r, "deleted_blobs"), 1);
    ck_assert_int_eq(stored(&old), 1); /* a dry run deletes nothing */
    ck_assert_int_eq(json_array_size(json_object_get(r, "entries")), 0);
    json_decref(r);
    r = gc(60, 0);
    ck_assert_int_eq(jint(r, "deleted_blobs"), 1);
    ck_assert_int_eq(jint(r, "blobs_young"), 1);
    ck_assert_int_eq(json_array_size(json_object_get(r, "entries")), 2);
    ck_assert_int_eq(jint(r, "deleted_listed"), 1);
    ck_assert(json_is_false(json_object_get(r, "deleted_truncated")));
    ck_assert_int_eq(jint(r, "not_deleted_blobs"), 0);
    ck_assert(json_is_false(json_object_get(r, "not_deleted_truncated")));
    ck_assert_int_eq(stored(&old), 0);
    ck_assert_int_eq(stored(&young), 1);
    json_decref(r);
}
END_TEST

START_TEST(test_a_blob_linked_within_the_grace_period_stays_however_old_its_bytes)
{
    mlreg_digest d;
    json_t *r;

    th_put_blob(&d, fx.reg, "m/a", "ci", "linked a moment ago");
    age(&d);
    r = gc(60, 0);
    ck_assert_int_eq(jint(r, "deleted_blobs"), 0);
    ck_assert_int_eq(stored(&d), 1);
    json_decref(r);
    /* with no grace at all, a linked blob nothing references goes, and its
     * link with it */
    r = gc(0, 0);
    ck_assert_int_eq(jint(r, "deleted_blobs"), 1);
    json_decref(r);
    ck_assert_int_eq(stored(&d), 0);
    ck_assert_int_eq(mlreg_registry_blob_stat(&(uint64_t){0}, fx.reg, "m/a", &d), MLREG_ENOTFOUND);
}
END_TEST

START_TEST(test_every_blob_of_a_release_stays)
{
    char *body;
    mlreg_manifest_put_result put;
    json_t *r;

    body = th_release_body(fx.reg, "m/r", "1.0", "ci", "{\"metrics\":{\"accuracy\":0.9}}");
    ck_assert_msg(mlreg_registry_manifest_put_as(&put, fx.reg, "m/r", "1.0", MLREG_MT_OCI_MANIFEST,
                                                 body, strlen(body), "ci") == 0,
                  "%s", mlreg_error_last());
    free(body);
    r = gc(0, 0);
    ck_assert_int_eq(jint(r, "deleted_blobs"), 0);
    ck_assert_int_ge(jint(r, "blobs_referenced"), 3); /* manifest, config, layers */
    json_decref(r);
    ck_assert_int_eq(stored(&put.digest), 1);
}
END_TEST

START_TEST(test_a_collected_blob_links_again_only_when_its_bytes_are_back)
{
    mlreg_digest d;
    json_t *r;

    th_put_blob(&d, fx.reg, "m/a", "ci", "comes back");
    age(&d);
    r = gc(0, 0);
    ck_assert_int_eq(jint(r, "deleted_blobs"), 1);
    json_decref(r);
    /* the bytes are gone: a link now (an upload whose bytes landed before
     * the deletion) is refused */
    ck_assert_int_eq(mlreg_registry_blob_link(fx.reg, "m/a", &d, "ci"), MLREG_EBLOBUNKNOWN);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "upload it again"));
    /* uploaded again: linked */
    th_put_blob(&d, fx.reg, "m/a", "ci", "comes back");
    ck_assert_int_eq(stored(&d), 1);
    ck_assert_int_eq(mlreg_registry_blob_stat(&(uint64_t){0}, fx.reg, "m/a", &d), 0);
}
END_TEST

/* ---- the gc_blobs table and its index keys ---------------------------- */

typedef struct {
    size_t rows, t_keys, q_keys, stray;
    json_t *seen; /* "t<hex>" / "q<hex>" / "r<hex>" -> true */
} table_count;

static int count_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    table_count *c = payload;
    char name[1 + MLREG_DIGEST_HEXLEN + 1];

    (void)val;
    if (klen == MLREG_DIGEST_HEXLEN) {
        c->rows++;
        ck_assert_uint_eq(vlen, 17);
        name[0] = 'r';
        memcpy(name + 1, key, MLREG_DIGEST_HEXLEN);
    } else {
        ck_assert_uint_eq(klen, 1 + 8 + MLREG_DIGEST_HEXLEN);
        ck_assert_uint_eq(vlen, 0);
        name[0] = ((const char *)key)[0];
        if (name[0] == 't')
            c->t_keys++;
        else if (name[0] == 'q')
            c->q_keys++;
        else
            c->stray++;
        memcpy(name + 1, (const char *)key + 9, MLREG_DIGEST_HEXLEN);
    }
    name[1 + MLREG_DIGEST_HEXLEN] = '\0';
    json_object_set_new(c->seen, name, json_true());
    return 0;
}

/* Counts the table's rows and index keys, and checks that each row has its
 * "t" key and each index key its row. */
static table_count count_table(void)
{
    table_count c = {0, 0, 0, 0, json_object()};
    mlreg_meta_txn *txn = NULL;
    const char *k;
    json_t *v;
    char want[1 + MLREG_DIGEST_HEXLEN + 1];

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_ge(mlreg_meta_iter(txn, MLREG_DB_GC_BLOBS, NULL, 0, NULL, 0, count_cb, &c), 0);
    mlreg_meta_txn_abort(txn);
    json_object_foreach(c.seen, k, v)
    {
        snprintf(want, sizeof(want), "%c%s", k[0] == 'r' ? 't' : 'r', k + 1);
        ck_assert_msg(json_object_get(c.seen, want) != NULL, "%s has no %s", k, want);
    }
    json_decref(c.seen);
    c.seen = NULL;
    ck_assert_uint_eq(c.stray, 0);
    return c;
}

/* count_table() without the pairing check (a table missing its keys). */
static table_count count_table_raw(void)
{
    table_count c = {0, 0, 0, 0, json_object()};
    mlreg_meta_txn *txn = NULL;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_ge(mlreg_meta_iter(txn, MLREG_DB_GC_BLOBS, NULL, 0, NULL, 0, count_cb, &c), 0);
    mlreg_meta_txn_abort(txn);
    json_decref(c.seen);
    c.seen = NULL;
    return c;
}

START_TEST(test_the_rows_and_their_index_keys_stay_in_step)
{
    mlreg_digest d1, d2;
    table_count c;
    json_t *r;

    th_put_blob(&d1, fx.reg, "m/a", "ci", "first orphan");
    th_put_blob(&d2, fx.reg, "m/a", "ci", "second orphan");
    age(&d1);
    age(&d2);
    r = gc(0, 0);
    ck_assert_int_eq(jint(r, "deleted_blobs"), 2);
    json_decref(r);
    c = count_table(); /* deleted: rows and "t" keys; no "q" key after gc.done */
    ck_assert_uint_eq(c.rows, 2);
    ck_assert_uint_eq(c.t_keys, 2);
    ck_assert_uint_eq(c.q_keys, 0);
    /* uploaded again: the row and its key go */
    th_put_blob(&d1, fx.reg, "m/a", "ci", "first orphan");
    c = count_table();
    ck_assert_uint_eq(c.rows, 1);
    ck_assert_uint_eq(c.t_keys, 1);
}
END_TEST

/* Rows whose blobs were deleted over a day ago go with the next
 * collection, with their index keys; newer ones stay. */
START_TEST(test_rows_older_than_a_day_are_pruned_by_the_next_collection)
{
    mlreg_meta_txn *txn = NULL;
    unsigned char row[17];
    char key[1 + 8 + MLREG_DIGEST_HEXLEN], hex[MLREG_DIGEST_HEXLEN + 1];
    int64_t old = time(NULL) * 1000000000LL - 25LL * 3600 * 1000000000LL;
    mlreg_digest d;
    table_count c;
    json_t *r;

    /* a row a collection two days ago left, as it writes one */
    memset(hex, 'a', MLREG_DIGEST_HEXLEN);
    hex[MLREG_DIGEST_HEXLEN] = '\0';
    row[0] = 'c';
    mlreg_be64_put(row + 1, 7);
    mlreg_be64_put(row + 9, (uint64_t)old);
    key[0] = 't';
    mlreg_be64_put((unsigned char *)key + 1, (uint64_t)old);
    memcpy(key + 9, hex, MLREG_DIGEST_HEXLEN);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 1), 0);
    ck_assert_int_eq(
        mlreg_meta_put(txn, MLREG_DB_GC_BLOBS, hex, MLREG_DIGEST_HEXLEN, row, sizeof(row), 0), 0);
    ck_assert_int_eq(mlreg_meta_put(txn, MLREG_DB_GC_BLOBS, key, sizeof(key), "", 0, 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    c = count_table();
    ck_assert_uint_eq(c.rows, 1);

    th_put_blob(&d, fx.reg, "m/a", "ci", "an orphan");
    age(&d);
    r = gc(0, 0);
    ck_assert_int_eq(jint(r, "deleted_blobs"), 1);
    json_decref(r);
    c = count_table(); /* the old row went, the new one stays */
    ck_assert_uint_eq(c.rows, 1);
    ck_assert_uint_eq(c.t_keys, 1);
}
END_TEST

/* A data directory whose rows were written before the index keys existed
 * gets them when it is opened. */
START_TEST(test_an_older_data_dir_gets_its_index_keys_at_open)
{
    mlreg_meta_txn *txn = NULL;
    mlreg_digest d;
    table_count c;
    json_t *r;
    unsigned char key[1 + 8 + MLREG_DIGEST_HEXLEN];
    char hex[MLREG_DIGEST_HEXLEN + 1];
    void *val = NULL;
    size_t vlen;

    th_put_blob(&d, fx.reg, "m/a", "ci", "an orphan");
    age(&d);
    r = gc(0, 0);
    json_decref(r);
    /* take the keys and the marker away, as an older version left them */
    mlreg_digest_hex(hex, &d);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 1), 0);
    ck_assert_int_eq(mlreg_meta_get(&val, &vlen, txn, MLREG_DB_GC_BLOBS, hex, MLREG_DIGEST_HEXLEN),
                     0);
    key[0] = 't';
    memcpy(key + 1, (unsigned char *)val + 9, 8);
    memcpy(key + 9, hex, MLREG_DIGEST_HEXLEN);
    free(val);
    ck_assert_int_eq(mlreg_meta_del(txn, MLREG_DB_GC_BLOBS, key, sizeof(key)), 0);
    ck_assert_int_eq(
        mlreg_meta_del(txn, MLREG_DB_META, "gc_blobs.indexed", strlen("gc_blobs.indexed")), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    c = count_table_raw();
    ck_assert_uint_eq(c.t_keys, 0);
    mlreg_registry_free(fx.reg);
    th_registry_open(&fx);
    c = count_table();
    ck_assert_uint_eq(c.rows, 1);
    ck_assert_uint_eq(c.t_keys, 1);
}
END_TEST

#define MANY 1500

static int digest_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(mlreg_digest));
}

/* Adds the digests the gc.collect entry @p seq names to @p got (sorted
 * later); returns how many. */
static size_t collect_entry_blobs(mlreg_digest *got, size_t ngot, uint64_t seq)
{
    json_t *page = NULL, *entry, *b;
    const char *text;
    size_t i, n = 0;

    ck_assert_int_eq(mlreg_audit_list(&page, mlreg_registry_meta(fx.reg), seq, 1), 0);
    text = json_string_value(json_array_get(json_object_get(page, "entries"), 0));
    ck_assert_ptr_nonnull(text);
    entry = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(entry);
    if (!strcmp(json_string_value(json_object_get(entry, "action")), "gc.collect")) {
        json_array_foreach(json_object_get(json_object_get(entry, "details"), "blobs"), i, b)
        {
            ck_assert_uint_lt(ngot + n, MANY);
            ck_assert_int_eq(
                mlreg_digest_parse(&got[ngot + n], json_string_value(json_object_get(b, "digest"))),
                0);
            n++;
        }
    }
    json_decref(entry);
    json_decref(page);
    return n;
}

START_TEST(test_a_large_collection_lists_1000_blobs_and_its_entries_name_every_one)
{
    mlreg_digest *d = calloc(MANY, sizeof(*d)), *got = calloc(MANY, sizeof(*got));
    char body[64];
    json_t *r, *e, *v;
    size_t i, ngot = 0;

    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(got);
    for (i = 0; i < MANY; i++) {
        snprintf(body, sizeof(body), "orphan %zu", i);
        ck_assert_int_eq(mlreg_registry__blob_put(&d[i], fx.reg, body, strlen(body)), 0);
        age(&d[i]);
    }
    r = gc(60, 1);
    ck_assert_int_eq(jint(r, "deleted_blobs"), MANY);
    ck_assert_int_eq(json_array_size(json_object_get(r, "deleted")), 1000);
    ck_assert_int_eq(jint(r, "deleted_listed"), 1000);
    ck_assert(json_is_true(json_object_get(r, "deleted_truncated")));
    json_decref(r);

    r = gc(60, 0);
    ck_assert_int_eq(jint(r, "deleted_blobs"), MANY);
    ck_assert_int_eq(json_array_size(json_object_get(r, "deleted")), 1000);
    ck_assert_int_eq(jint(r, "deleted_listed"), 1000);
    ck_assert(json_is_true(json_object_get(r, "deleted_truncated")));
    ck_assert_int_eq(json_array_size(json_object_get(r, "not_deleted")), 0);
    ck_assert_int_eq(jint(r, "not_deleted_blobs"), 0);
    /* the entries of the run name every blob it condemned, once */
    json_array_foreach(json_object_get(r, "entries"), i, e) ngot +=
        collect_entry_blobs(got, ngot, (uint64_t)json_integer_value(e));
    ck_assert_uint_eq(ngot, MANY);
    qsort(d, MANY, sizeof(*d), digest_cmp);
    qsort(got, MANY, sizeof(*got), digest_cmp);
    ck_assert_int_eq(memcmp(d, got, MANY * sizeof(*d)), 0);
    json_array_foreach(json_object_get(r, "deleted"), i, e)
    {
        mlreg_digest one;
        ck_assert_int_eq(mlreg_digest_parse(&one, json_string_value(json_object_get(e, "digest"))),
                         0);
        ck_assert_ptr_nonnull(bsearch(&one, got, MANY, sizeof(*got), digest_cmp));
        v = json_object_get(e, "size");
        ck_assert(json_is_integer(v));
    }
    for (i = 0; i < MANY; i++)
        ck_assert_int_eq(stored(&d[i]), 0);
    json_decref(r);
    free(d);
    free(got);
}
END_TEST

START_TEST(test_a_second_collection_at_the_same_time_is_refused)
{
    mlreg_gc_opts o = {.stale_upload_seconds = 3600, .dry_run = 1, .actor = "ops"};
    json_t *r = NULL;

    pthread_mutex_lock(mlreg_registry__gc_lock(fx.reg));
    ck_assert_int_eq(mlreg_registry_gc(&r, fx.reg, &o), MLREG_EEXISTS);
    pthread_mutex_unlock(mlreg_registry__gc_lock(fx.reg));
    ck_assert_ptr_null(r);
    o.grace_seconds = -1;
    ck_assert_int_eq(mlreg_registry_gc(&r, fx.reg, &o), MLREG_EINVALID);
    o.grace_seconds = 0;
    o.stale_upload_seconds = 0;
    ck_assert_int_eq(mlreg_registry_gc(&r, fx.reg, &o), MLREG_EINVALID);
}
END_TEST

static Suite *gc_suite(void)
{
    Suite *s = suite_create("gc");
    TCase *tc = tcase_create("gc");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_an_unlinked_old_blob_goes_and_a_young_one_stays);
    tcase_add_test(tc, test_a_blob_linked_within_the_grace_period_stays_however_old_its_bytes);
    tcase_add_test(tc, test_every_blob_of_a_release_stays);
    tcase_add_test(tc, test_the_rows_and_their_index_keys_stay_in_step);
    tcase_add_test(tc, test_rows_older_than_a_day_are_pruned_by_the_next_collection);
    tcase_add_test(tc, test_an_older_data_dir_gets_its_index_keys_at_open);
    tcase_add_test(tc, test_a_collected_blob_links_again_only_when_its_bytes_are_back);
    tcase_add_test(tc, test_a_second_collection_at_the_same_time_is_refused);
    tcase_add_test(tc, test_a_large_collection_lists_1000_blobs_and_its_entries_name_every_one);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gc_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
