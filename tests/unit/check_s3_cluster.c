/* check_s3_cluster.c: registries sharing one log in the object store
 * (registry/cluster.c), several in one process, against the RGW of the s3
 * part of tests/run.sh (its env: S3_ENDPOINT, S3_BUCKET, AWS_*).
 *
 * Each test takes a fresh key prefix and opens "nodes": registries on their
 * own data directories with the same s3 config and log key. Nodes here do
 * not run the follower thread unless a test starts it; they catch up when
 * they commit (a lost seq) or when the test calls mlreg_cluster_sync().
 */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "helpers.h"
#include "mlreg/audit.h"
#include "mlreg/cluster.h"
#include "mlreg/common.h"
#include "mlreg/gates.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"
#include "mlreg/s3.h"
#include "mlreg/sign.h"
#include "mlreg/sys/blob_backend.h"
#include "mlreg/time.h"

#define MODEL "team/shared"
#define NODES 4

static char dir[TH_DIR_MAX];
static char prefix[64];
static char key_file[TH_DIR_MAX + 32], other_key_file[TH_DIR_MAX + 32];
static mlreg_s3_config cfg;
static mlreg_s3 *admin;
static mlreg_registry *node[NODES];
static mlreg_policy *pol;

static void setup(void)
{
    unsigned char r[6];
    const char *need[] = {"S3_ENDPOINT", "S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"};
    mlreg_seckey *sk = NULL;

    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        ck_assert_msg(getenv(need[i]) != NULL && getenv(need[i])[0] != '\0',
                      "%s is not set: check_s3_cluster runs in the s3 part of tests/run.sh",
                      need[i]);
    th_tmpdir(dir, sizeof(dir), "s3_cluster");
    ck_assert_int_eq(getrandom(r, sizeof(r), 0), (ssize_t)sizeof(r));
    snprintf(prefix, sizeof(prefix), "c%02x%02x%02x%02x%02x%02x/", r[0], r[1], r[2], r[3], r[4],
             r[5]);
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoint = getenv("S3_ENDPOINT");
    cfg.region = getenv("S3_REGION");
    cfg.bucket = getenv("S3_BUCKET");
    cfg.prefix = prefix;
    cfg.path_style = 1;
    cfg.retry_base_ms = 20;
    cfg.retry_max_ms = 200;
    ck_assert_msg(mlreg_s3_new(&admin, &cfg) == 0, "%s", mlreg_error_last());
    snprintf(key_file, sizeof(key_file), "%s/log.key", dir);
    snprintf(other_key_file, sizeof(other_key_file), "%s/other.key", dir);
    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    ck_assert_int_eq(mlreg_seckey_save(key_file, sk, NULL, "log key"), 0);
    mlreg_seckey_free(sk);
    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    ck_assert_int_eq(mlreg_seckey_save(other_key_file, sk, NULL, "another log key"), 0);
    mlreg_seckey_free(sk);
    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"max_drop\":0.05}]}");
}

static void teardown(void)
{
    for (int i = 0; i < NODES; i++) {
        mlreg_registry_free(node[i]);
        node[i] = NULL;
    }
    mlreg_policy_free(pol);
    pol = NULL;
    mlreg_s3_free(admin);
    admin = NULL;
    th_rm_rf(dir);
}

/* Opens node @p i (data dir "<dir>/n<i>") with the log key @p key; returns
 * the error, the node in node[i]. */
static int open_node_key(int i, const char *key)
{
    char data[TH_DIR_MAX + 16];
    mlreg_blob_backend *b = NULL;
    mlreg_registry_opts o;
    mlreg_cluster_opts co;
    int error;

    snprintf(data, sizeof(data), "%s/n%d", dir, i);
    if ((error = mlreg_blob_backend_s3_new(&b, &cfg)) < 0) return error;
    memset(&co, 0, sizeof(co));
    co.s3 = &cfg;
    co.poll_ms = 20;
    co.heartbeat_ms = 200;
    co.scrub_per_poll = 64;
    memset(&o, 0, sizeof(o));
    o.data_dir = data;
    o.backend = b;
    o.log_key_file = key;
    o.cluster = &co;
    return mlreg_registry_open(&node[i], &o);
}

static void open_node(int i)
{
    ck_assert_msg(open_node_key(i, key_file) == 0, "node %d: %s", i, mlreg_error_last());
}

static uint64_t log_size(mlreg_registry *reg)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    mlreg_meta_txn_abort(txn);
    return n;
}

/* Pushes MODEL@version on @p reg with an accuracy of @p acc; returns the error. */
static int push(mlreg_registry *reg, const char *version, double acc)
{
    char report[96];
    char *body;
    mlreg_manifest_put_result res;
    int error;

    snprintf(report, sizeof(report), "{\"metrics\":{\"accuracy\":%.3f}}", acc);
    body = th_release_body(reg, MODEL, version, "exporter", report);
    error = mlreg_registry_manifest_put_as(&res, reg, MODEL, version, MLREG_MT_OCI_MANIFEST, body,
                                           strlen(body), "exporter");
    free(body);
    return error;
}

static int promote(json_t **out, mlreg_registry *reg, const char *version, const char *stage)
{
    mlreg_promote_req req = {MODEL, version, stage, NULL, 0, "deployer"};
    return mlreg_promote(out, reg, pol, &req);
}

/* Every entry of the two nodes' logs, byte for byte, and their roots. */
static void assert_same_log(mlreg_registry *a, mlreg_registry *b)
{
    mlreg_meta_txn *ta = NULL, *tb = NULL;
    uint64_t na = 0, nb = 0;
    mlreg_merkle_hash ra, rb;

    ck_assert_int_eq(mlreg_meta_txn_begin(&ta, mlreg_registry_meta(a), 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&tb, mlreg_registry_meta(b), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&na, ta), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&nb, tb), 0);
    ck_assert_uint_eq(na, nb);
    for (uint64_t s = 0; s < na; s++) {
        char *ea = NULL, *eb = NULL;
        size_t la = 0, lb = 0;
        ck_assert_int_eq(mlreg_audit_entry_txn(&ea, &la, ta, s), 0);
        ck_assert_int_eq(mlreg_audit_entry_txn(&eb, &lb, tb, s), 0);
        ck_assert_msg(la == lb && memcmp(ea, eb, la) == 0, "entry %llu differs",
                      (unsigned long long)s);
        free(ea);
        free(eb);
    }
    ck_assert_int_eq(mlreg_audit_root_txn(&ra, ta, na), 0);
    ck_assert_int_eq(mlreg_audit_root_txn(&rb, tb, nb), 0);
    ck_assert_mem_eq(&ra, &rb, sizeof(ra));
    mlreg_meta_txn_abort(ta);
    mlreg_meta_txn_abort(tb);
}

static void entry_object(char *out, size_t n, uint64_t seq)
{
    snprintf(out, n, "%slog/%020llu", prefix, (unsigned long long)seq);
}

START_TEST(test_cluster_changes_of_one_node_reach_the_other)
{
    json_t *rel = NULL;

    open_node(0);
    open_node(1);
    ck_assert_msg(push(node[0], "1.0.0", 0.9) == 0, "%s", mlreg_error_last());
    /* node 1 follows no poll here: its read that misses takes the log */
    usleep(20000);
    ck_assert_msg(mlreg_registry_release_get(&rel, node[1], MODEL, "1.0.0") == 0, "%s",
                  mlreg_error_last());
    json_decref(rel);
    /* and back: node 1 writes, node 0 reads */
    ck_assert_msg(push(node[1], "1.0.1", 0.91) == 0, "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_cluster_sync(mlreg_registry_cluster(node[0])), 0);
    assert_same_log(node[0], node[1]);
    ck_assert_uint_gt(log_size(node[0]), 4);
}
END_TEST

START_TEST(test_cluster_a_lost_seq_is_retried_against_the_new_state)
{
    json_t *res = NULL;
    uint64_t commits = 0, lost = 0;
    const json_t *base;

    open_node(0);
    open_node(1);
    ck_assert_int_eq(push(node[0], "2.0.0", 0.90), 0);
    ck_assert_int_eq(push(node[0], "2.0.1", 0.88), 0);
    ck_assert_int_eq(mlreg_cluster_sync(mlreg_registry_cluster(node[1])), 0);
    /* node 1 promotes 2.0.0; node 0 has not seen it and promotes 2.0.1: its
     * first try loses the seq, and the retry meets 2.0.0 as the baseline */
    ck_assert_int_eq(promote(&res, node[1], "2.0.0", "staging"), 0);
    json_decref(res);
    res = NULL;
    mlreg_cluster_counters(&commits, &lost, mlreg_registry_cluster(node[0]));
    ck_assert_uint_eq(lost, 0);
    ck_assert_msg(promote(&res, node[0], "2.0.1", "staging") == 0, "%s", mlreg_error_last());
    mlreg_cluster_counters(&commits, &lost, mlreg_registry_cluster(node[0]));
    ck_assert_uint_ge(lost, 1);
    base = json_object_get(res, "baseline");
    ck_assert_msg(json_is_object(base) &&
                      !strcmp(json_string_value(json_object_get(base, "version")), "2.0.0"),
                  "baseline %s", json_dumps(res, 0));
    json_decref(res);
    res = NULL;
    /* a drop of 0.12 against that baseline fails the gate, on either node;
     * node 0 has not seen 2.0.2 yet and takes the log before answering */
    ck_assert_int_eq(push(node[1], "2.0.2", 0.76), 0);
    ck_assert_int_eq(promote(&res, node[0], "2.0.2", "staging"), MLREG_EGATE);
    json_decref(res);
    /* a version another node pushed meanwhile with other files: refused */
    ck_assert_int_eq(push(node[1], "2.1.0", 0.95), 0);
    ck_assert_int_eq(push(node[0], "2.1.0", 0.96), MLREG_EDENIED);
    ck_assert_int_eq(mlreg_cluster_sync(mlreg_registry_cluster(node[1])), 0);
    assert_same_log(node[0], node[1]);
}
END_TEST

typedef struct {
    mlreg_registry *reg;
    int first; /* versions 3.0.first, 3.0.first+2, ... */
    int failed;
    char why[256];
} pusher;

static void *push_many(void *p)
{
    pusher *w = p;

    for (int i = 0; i < 10 && !w->failed; i++) {
        char v[16];
        snprintf(v, sizeof(v), "3.0.%d", w->first + 2 * i);
        if (push(w->reg, v, 0.9) != 0) {
            w->failed = 1;
            snprintf(w->why, sizeof(w->why), "push of %s: %s", v, mlreg_error_last());
        }
    }
    return NULL;
}

START_TEST(test_cluster_racing_nodes_record_every_change_once)
{
    pusher a = {NULL, 0, 0, ""}, b = {NULL, 1, 0, ""};
    pthread_t ta, tb;
    uint64_t commits = 0, lost_a = 0, lost_b = 0;

    /* two nodes push their own versions at the same time */
    open_node(0);
    open_node(1);
    a.reg = node[0];
    b.reg = node[1];
    ck_assert_int_eq(pthread_create(&ta, NULL, push_many, &a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, push_many, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_msg(!a.failed, "%s", a.why);
    ck_assert_msg(!b.failed, "%s", b.why);
    mlreg_cluster_counters(&commits, &lost_a, mlreg_registry_cluster(node[0]));
    mlreg_cluster_counters(&commits, &lost_b, mlreg_registry_cluster(node[1]));
    ck_assert_int_eq(mlreg_cluster_sync(mlreg_registry_cluster(node[0])), 0);
    ck_assert_int_eq(mlreg_cluster_sync(mlreg_registry_cluster(node[1])), 0);
    assert_same_log(node[0], node[1]);
    for (int i = 0; i < 20; i++) {
        char v[16];
        json_t *rel = NULL;
        snprintf(v, sizeof(v), "3.0.%d", i);
        ck_assert_msg(mlreg_registry_release_get(&rel, node[1], MODEL, v) == 0, "%s missing", v);
        json_decref(rel);
    }
    /* every push is several changes (blob links, the manifest): with both
     * nodes writing at once, seqs are lost and won again */
    ck_assert_msg(lost_a + lost_b > 0, "no seq was ever lost: the nodes did not race");
}
END_TEST

START_TEST(test_cluster_a_new_node_rebuilds_from_the_store)
{
    json_t *res = NULL;

    open_node(0);
    ck_assert_int_eq(push(node[0], "4.0.0", 0.9), 0);
    ck_assert_int_eq(promote(&res, node[0], "4.0.0", "dev"), 0);
    json_decref(res);
    open_node(2); /* empty data dir: builds its index from the log */
    assert_same_log(node[0], node[2]);
    /* its index serves the same reads */
    ck_assert_int_eq(mlreg_stage_get(&res, node[2], pol, MODEL, "dev", -1), 0);
    ck_assert_str_eq(json_string_value(json_object_get(res, "version")), "4.0.0");
    json_decref(res);
}
END_TEST

START_TEST(test_cluster_a_withdrawal_with_rollback_commits_its_entries_together)
{
    json_t *res = NULL;
    mlreg_auth *auth = NULL;
    const mlreg_identity *ops = th_identity(&auth, "ops", "[\"admin\"]");
    uint64_t commits = 0, lost = 0, before;

    open_node(0);
    open_node(1);
    ck_assert_int_eq(push(node[0], "5.0.0", 0.90), 0);
    ck_assert_int_eq(push(node[0], "5.0.1", 0.91), 0);
    ck_assert_int_eq(mlreg_cluster_sync(mlreg_registry_cluster(node[1])), 0);
    /* node 0 moves dev to 5.0.0 then 5.0.1; node 1 has not seen it, so its
     * first try finds 5.0.1 in no stage and loses the seq; the retry meets
     * dev holding it and rolls dev back in the same change */
    ck_assert_int_eq(promote(&res, node[0], "5.0.0", "dev"), 0);
    json_decref(res);
    ck_assert_int_eq(promote(&res, node[0], "5.0.1", "dev"), 0);
    json_decref(res);
    res = NULL;
    ck_assert_msg(mlreg_release_withdraw(&res, node[1], pol, ops, MODEL, "5.0.1", "bad", 1) == 0,
                  "%s", mlreg_error_last());
    mlreg_cluster_counters(&commits, &lost, mlreg_registry_cluster(node[1]));
    ck_assert_uint_ge(lost, 1);
    ck_assert_uint_eq(json_array_size(json_object_get(res, "rolled_back")), 1);
    json_decref(res);
    ck_assert_int_eq(mlreg_cluster_sync(mlreg_registry_cluster(node[0])), 0);
    assert_same_log(node[0], node[1]);
    ck_assert_int_eq(mlreg_stage_get(&res, node[0], pol, MODEL, "dev", -1), 0);
    ck_assert_str_eq(json_string_value(json_object_get(res, "version")), "5.0.0");
    json_decref(res);
    ck_assert_int_eq(mlreg_registry_release_get(&res, node[0], MODEL, "5.0.1"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(res, "withdrawn"), "by")),
                     "ops");
    json_decref(res);
    /* refused on the other node too, and nothing is recorded for it */
    before = log_size(node[0]);
    ck_assert_int_eq(mlreg_release_withdraw(&res, node[0], pol, ops, MODEL, "5.0.1", "x", 1),
                     MLREG_EDENIED);
    ck_assert_uint_eq(log_size(node[0]), before);
    /* a new node rebuilds both entries from the store */
    open_node(2);
    assert_same_log(node[0], node[2]);
    ck_assert_int_eq(mlreg_registry_release_get(&res, node[2], MODEL, "5.0.1"), 0);
    ck_assert(json_is_object(json_object_get(res, "withdrawn")));
    json_decref(res);
    mlreg_auth_free(auth);
}
END_TEST

START_TEST(test_cluster_an_edited_entry_stops_the_nodes)
{
    char key[128], *text = NULL, *why = NULL, sig[MLREG_S3_META_SIG_MAX + 1];
    size_t len = 0;
    char *at;

    open_node(0);
    ck_assert_int_eq(push(node[0], "5.0.0", 0.9), 0);
    ck_assert_int_eq(push(node[0], "5.0.1", 0.9), 0);
    /* change one byte of the actor of entry 1 in the store, keeping the
     * object's signature */
    entry_object(key, sizeof(key), 1);
    ck_assert_int_eq(mlreg_s3_get_small(&text, &len, sig, admin, key, 1 << 20), 0);
    ck_assert_uint_gt(strlen(sig), 0);
    at = strstr(text, "\"actor\":\"");
    ck_assert_ptr_nonnull(at);
    at[9] = at[9] == 'x' ? 'y' : 'x';
    ck_assert_int_eq(mlreg_s3_delete(admin, key), 0);
    ck_assert_int_eq(mlreg_s3_put_new(admin, key, text, len, sig), 0);
    free(text);
    /* a node built from the store stops at it: it opens, serves what it
     * verified and reports the entry */
    open_node(1);
    ck_assert_int_eq(mlreg_cluster_health(&why, mlreg_registry_cluster(node[1])),
                     MLREG_EUNAVAILABLE);
    ck_assert_msg(strstr(why, "log entry 1") != NULL && strstr(why, "not signed by the log key"),
                  "%s", why);
    free(why);
    why = NULL;
    ck_assert_uint_eq(log_size(node[1]), 1);
    /* the running node finds it by its scrub, then refuses writes */
    ck_assert_int_eq(mlreg_cluster_follow_start(mlreg_registry_cluster(node[0])), 0);
    for (int i = 0; i < 200 && mlreg_cluster_health(NULL, mlreg_registry_cluster(node[0])) == 0;
         i++)
        usleep(20000);
    ck_assert_int_eq(mlreg_cluster_health(&why, mlreg_registry_cluster(node[0])),
                     MLREG_EUNAVAILABLE);
    ck_assert_msg(strstr(why, "log entry 1") != NULL && strstr(why, "differs") != NULL, "%s", why);
    free(why);
    {
        json_t *res = NULL;
        ck_assert_int_eq(promote(&res, node[0], "5.0.1", "dev"), MLREG_EUNAVAILABLE);
        json_decref(res);
    }
    ck_assert_msg(strstr(mlreg_error_last(), "writes are refused") != NULL, "%s",
                  mlreg_error_last());
    /* reads of what it verified still work */
    {
        json_t *rel = NULL;
        ck_assert_int_eq(mlreg_registry_release_get(&rel, node[0], MODEL, "5.0.1"), 0);
        json_decref(rel);
    }
}
END_TEST

START_TEST(test_cluster_a_removed_entry_is_a_gap)
{
    char key[128], *why = NULL;

    open_node(0);
    ck_assert_int_eq(push(node[0], "6.0.0", 0.9), 0);
    ck_assert_int_eq(push(node[0], "6.0.1", 0.9), 0);
    entry_object(key, sizeof(key), 2);
    ck_assert_int_eq(mlreg_s3_delete(admin, key), 0);
    open_node(1);
    ck_assert_int_eq(mlreg_cluster_health(&why, mlreg_registry_cluster(node[1])),
                     MLREG_EUNAVAILABLE);
    ck_assert_msg(strstr(why, "log entry 2") != NULL && strstr(why, "missing") != NULL, "%s", why);
    free(why);
    ck_assert_uint_eq(log_size(node[1]), 2);
}
END_TEST

START_TEST(test_cluster_a_planted_entry_is_refused)
{
    char key[128], *why = NULL;
    const char *junk = "{\"action\":\"push\",\"seq\":1}";
    uint64_t n;

    open_node(0);
    n = log_size(node[0]);
    entry_object(key, sizeof(key), n);
    ck_assert_int_eq(mlreg_s3_put_new(admin, key, junk, strlen(junk), NULL), 0);
    ck_assert_int_eq(mlreg_cluster_sync(mlreg_registry_cluster(node[0])), MLREG_EUNAVAILABLE);
    ck_assert_int_eq(mlreg_cluster_health(&why, mlreg_registry_cluster(node[0])),
                     MLREG_EUNAVAILABLE);
    ck_assert_msg(strstr(why, "carries no signature") != NULL, "%s", why);
    free(why);
    ck_assert_uint_eq(log_size(node[0]), n);
}
END_TEST

START_TEST(test_cluster_a_signed_entry_copied_to_another_seq_is_refused)
{
    char key[128], *text = NULL, *why = NULL, sig[MLREG_S3_META_SIG_MAX + 1];
    size_t len = 0;
    uint64_t n;

    open_node(0);
    ck_assert_int_eq(push(node[0], "7.0.0", 0.9), 0);
    n = log_size(node[0]);
    /* entry 0 and its valid signature, replayed as entry n */
    entry_object(key, sizeof(key), 0);
    ck_assert_int_eq(mlreg_s3_get_small(&text, &len, sig, admin, key, 1 << 20), 0);
    entry_object(key, sizeof(key), n);
    ck_assert_int_eq(mlreg_s3_put_new(admin, key, text, len, sig), 0);
    free(text);
    ck_assert_int_eq(mlreg_cluster_sync(mlreg_registry_cluster(node[0])), MLREG_EUNAVAILABLE);
    ck_assert_int_eq(mlreg_cluster_health(&why, mlreg_registry_cluster(node[0])),
                     MLREG_EUNAVAILABLE);
    ck_assert_msg(strstr(why, "not a log entry of seq") != NULL, "%s", why);
    free(why);
    ck_assert_uint_eq(log_size(node[0]), n);
}
END_TEST

START_TEST(test_cluster_another_log_key_is_refused)
{
    open_node(0);
    ck_assert_int_eq(open_node_key(1, other_key_file), MLREG_EINVALID);
    ck_assert_msg(strstr(mlreg_error_last(), "signed with another key") != NULL, "%s",
                  mlreg_error_last());
}
END_TEST

START_TEST(test_cluster_status_lists_the_live_nodes)
{
    json_t *st = NULL;
    char tag[MLREG_CLUSTER_TAG_LEN + 1], *url = NULL;
    const char *id;

    open_node(0);
    open_node(1);
    ck_assert_int_eq(mlreg_cluster_set_url(mlreg_registry_cluster(node[1]), "http://node1:5080"),
                     0);
    ck_assert_int_eq(mlreg_cluster_follow_start(mlreg_registry_cluster(node[0])), 0);
    ck_assert_int_eq(mlreg_cluster_follow_start(mlreg_registry_cluster(node[1])), 0);
    for (int i = 0; i < 100; i++) {
        json_decref(st);
        ck_assert_int_eq(mlreg_cluster_status(&st, mlreg_registry_cluster(node[0]), 1), 0);
        if (json_array_size(json_object_get(st, "nodes")) == 2) break;
        usleep(50000);
    }
    ck_assert_uint_eq(json_array_size(json_object_get(st, "nodes")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(st, "lag")), 0);
    ck_assert(json_is_true(json_object_get(st, "healthy")));
    json_decref(st);
    /* a session id's tag finds its node */
    id = mlreg_cluster_node_id(mlreg_registry_cluster(node[1]));
    mlreg_cluster_node_tag(tag, id);
    ck_assert_int_eq(mlreg_cluster_node_url(&url, mlreg_registry_cluster(node[0]), tag), 0);
    ck_assert_str_eq(url, "http://node1:5080");
    free(url);
    ck_assert_int_eq(mlreg_cluster_node_url(&url, mlreg_registry_cluster(node[0]), "00000000"),
                     MLREG_ENOTFOUND);
}
END_TEST

START_TEST(test_cluster_a_planted_heartbeat_is_not_a_node)
{
    char key[128], tag[MLREG_CLUSTER_TAG_LEN + 1], when[MLREG_TIME_STRLEN], body[512];
    char *url = NULL, *dump = NULL;
    json_t *st = NULL;

    /* someone who can write to the bucket, without the log key, poses as a
     * node so that upload requests (and their tokens) are forwarded to it */
    open_node(0);
    mlreg_cluster_node_tag(tag, "mallory");
    mlreg_time_format(when, mlreg_time_now_ns());
    snprintf(body, sizeof(body),
             "{\"applied\":0,\"head\":0,\"healthy\":true,\"node\":\"mallory\",\"time\":\"%s\","
             "\"url\":\"http://attacker.example\"}",
             when);
    snprintf(key, sizeof(key), "%snodes/mallory", prefix);
    ck_assert_int_eq(mlreg_s3_put(admin, key, body, strlen(body), NULL), 0);
    ck_assert_int_eq(mlreg_cluster_node_url(&url, mlreg_registry_cluster(node[0]), tag),
                     MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_cluster_status(&st, mlreg_registry_cluster(node[0]), 1), 0);
    dump = json_dumps(st, 0);
    ck_assert_ptr_nonnull(dump);
    ck_assert_msg(strstr(dump, "mallory") == NULL, "the planted node is listed: %s", dump);
    free(dump);
    json_decref(st);
}
END_TEST

static Suite *s3_cluster_suite(void)
{
    Suite *s = suite_create("s3_cluster");
    TCase *tc = tcase_create("cluster");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cluster_changes_of_one_node_reach_the_other);
    tcase_add_test(tc, test_cluster_a_lost_seq_is_retried_against_the_new_state);
    tcase_add_test(tc, test_cluster_racing_nodes_record_every_change_once);
    tcase_add_test(tc, test_cluster_a_new_node_rebuilds_from_the_store);
    tcase_add_test(tc, test_cluster_a_withdrawal_with_rollback_commits_its_entries_together);
    tcase_add_test(tc, test_cluster_an_edited_entry_stops_the_nodes);
    tcase_add_test(tc, test_cluster_a_removed_entry_is_a_gap);
    tcase_add_test(tc, test_cluster_a_planted_entry_is_refused);
    tcase_add_test(tc, test_cluster_a_signed_entry_copied_to_another_seq_is_refused);
    tcase_add_test(tc, test_cluster_another_log_key_is_refused);
    tcase_add_test(tc, test_cluster_status_lists_the_live_nodes);
    tcase_add_test(tc, test_cluster_a_planted_heartbeat_is_not_a_node);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s3_cluster_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
