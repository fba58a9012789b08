/* check_audit.c: the audit log store (include/mlreg/audit.h) on a real
 * LMDB environment in a mkdtemp dir: appends and their transactions, the
 * hash chain, canonical entries, stored Merkle roots and the proofs the
 * JSON functions hand out (checked with merkle.h's verifiers, as an auditor
 * would), paging, reals, limits, the log key and signed checkpoints.
 */
#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/audit.h"
#include "mlreg/canonical_json.h"
#include "mlreg/checkpoint.h"
#include "mlreg/common.h"
#include "mlreg/keyring.h"
#include "mlreg/tables.h"

#include "helpers.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char data_dir[TH_DIR_MAX];
static mlreg_meta *meta;

static void setup(void)
{
    char path[128];

    ck_assert_int_ge(sodium_init(), 0);
    th_tmpdir(data_dir, sizeof(data_dir), "audit");
    snprintf(path, sizeof(path), "%s/meta", data_dir);
    ck_assert_msg(mlreg_tables_open(&meta, path, 256u * 1024 * 1024) == 0, "open: %s",
                  mlreg_error_last());
}

static void teardown(void)
{
    mlreg_meta_close(meta);
    meta = NULL;
    th_rm_rf(data_dir);
}

/* ---- helpers ---------------------------------------------------------------- */

static mlreg_audit_event push_event(void)
{
    mlreg_audit_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.actor = "local";
    ev.action = MLREG_AUDIT_PUSH;
    ev.result = MLREG_AUDIT_OK;
    ev.model = "team/clf";
    ev.version = "1.0.0";
    ev.digest = DIGEST;
    return ev;
}

/* Appends @p n push entries in one committed write transaction. */
static void append_n(uint64_t n)
{
    mlreg_meta_txn *txn = NULL;
    mlreg_audit_event ev = push_event();
    uint64_t first = 0, seq = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 1), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&first, txn), 0);
    for (uint64_t i = 0; i < n; i++) {
        ck_assert_msg(mlreg_audit_append_txn(&seq, txn, &ev) == 0, "append: %s",
                      mlreg_error_last());
        ck_assert_uint_eq(seq, first + i);
    }
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
}

static uint64_t log_size(void)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    mlreg_meta_txn_abort(txn);
    return n;
}

/* Entry @p seq parsed; the text too when @p text_out is not NULL. */
static json_t *read_entry(uint64_t seq, char **text_out, size_t *len_out)
{
    mlreg_meta_txn *txn = NULL;
    char *text = NULL;
    size_t len = 0;
    json_t *j;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_msg(mlreg_audit_entry_txn(&text, &len, txn, seq) == 0, "entry: %s",
                  mlreg_error_last());
    mlreg_meta_txn_abort(txn);
    ck_assert_uint_eq(strlen(text), len);
    j = json_loadb(text, len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    if (text_out != NULL) {
        *text_out = text;
        *len_out = len;
    } else {
        free(text);
    }
    return j;
}

/* The leaf hashes of entries 0..n-1, computed from their stored bytes. */
static mlreg_merkle_hash *read_leaves(uint64_t n)
{
    mlreg_merkle_hash *leaves = calloc(n ? n : 1, sizeof(*leaves));
    mlreg_meta_txn *txn = NULL;

    ck_assert_ptr_nonnull(leaves);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    for (uint64_t i = 0; i < n; i++) {
        char *text = NULL;
        size_t len = 0;
        ck_assert_int_eq(mlreg_audit_entry_txn(&text, &len, txn, i), 0);
        ck_assert_int_eq(mlreg_merkle_leaf_hash(&leaves[i], text, len), 0);
        free(text);
    }
    mlreg_meta_txn_abort(txn);
    return leaves;
}

static void stored_root(mlreg_merkle_hash *out, uint64_t size)
{
    mlreg_meta_txn *txn = NULL;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_msg(mlreg_audit_root_txn(out, txn, size) == 0, "root: %s", mlreg_error_last());
    mlreg_meta_txn_abort(txn);
}

static void b64_hash(mlreg_merkle_hash *out, const json_t *v)
{
    ck_assert_msg(json_is_string(v), "hash is not a string");
    ck_assert_msg(mlreg_merkle_hash_from_base64(out, json_string_value(v), json_string_length(v)) ==
                      0,
                  "base64: %s", mlreg_error_last());
}

static size_t b64_proof(mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], const json_t *arr)
{
    size_t i;
    json_t *v;

    ck_assert(json_is_array(arr));
    ck_assert_uint_le(json_array_size(arr), MLREG_MERKLE_PROOF_MAX);
    json_array_foreach(arr, i, v)
    {
        b64_hash(&proof[i], v);
    }
    return json_array_size(arr);
}

static json_int_t jint(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
    return json_integer_value(v);
}

/* Asks for the inclusion proof of @p seq in the tree of @p size and
 * verifies it against the expected leaf and root. */
static void check_inclusion(uint64_t seq, uint64_t size, const mlreg_merkle_hash *leaves)
{
    json_t *res = NULL;
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], leaf, root, want;
    size_t n;

    ck_assert_msg(mlreg_audit_inclusion(&res, meta, seq, size) == 0, "inclusion %llu/%llu: %s",
                  (unsigned long long)seq, (unsigned long long)size, mlreg_error_last());
    ck_assert_int_eq(json_object_size(res), 5);
    ck_assert_int_eq(jint(res, "seq"), (json_int_t)seq);
    ck_assert_int_eq(jint(res, "size"), (json_int_t)size);
    b64_hash(&leaf, json_object_get(res, "leaf_hash"));
    b64_hash(&root, json_object_get(res, "root"));
    n = b64_proof(proof, json_object_get(res, "proof"));
    ck_assert(mlreg_merkle_hash_equal(&leaf, &leaves[seq]));
    ck_assert_int_eq(mlreg_merkle_root(&want, leaves, size), 0);
    ck_assert(mlreg_merkle_hash_equal(&root, &want));
    ck_assert_msg(mlreg_merkle_verify_inclusion(seq, size, proof, n, &leaf, &root) == 0,
                  "verify inclusion %llu/%llu: %s", (unsigned long long)seq,
                  (unsigned long long)size, mlreg_error_last());
    json_decref(res);
}

static void check_consistency(uint64_t from, uint64_t to, const mlreg_merkle_hash *leaves)
{
    json_t *res = NULL;
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], r1, r2, w1, w2;
    size_t n;

    ck_assert_msg(mlreg_audit_consistency(&res, meta, from, to) == 0, "consistency %llu..%llu: %s",
                  (unsigned long long)from, (unsigned long long)to, mlreg_error_last());
    ck_assert_int_eq(json_object_size(res), 5);
    ck_assert_int_eq(jint(res, "from"), (json_int_t)from);
    ck_assert_int_eq(jint(res, "to"), (json_int_t)to);
    b64_hash(&r1, json_object_get(res, "from_root"));
    b64_hash(&r2, json_object_get(res, "to_root"));
    n = b64_proof(proof, json_object_get(res, "proof"));
    ck_assert_int_eq(mlreg_merkle_root(&w1, leaves, from), 0);
    ck_assert_int_eq(mlreg_merkle_root(&w2, leaves, to), 0);
    ck_assert(mlreg_merkle_hash_equal(&r1, &w1));
    ck_assert(mlreg_merkle_hash_equal(&r2, &w2));
    if (from == 0) {
        /* nothing to prove from the empty tree; verifiers refuse it */
        ck_assert_uint_eq(n, 0);
        if (to > 0)
            ck_assert_int_eq(mlreg_merkle_verify_consistency(from, to, proof, n, &r1, &r2),
                             MLREG_EINVALID);
    } else {
        ck_assert_msg(mlreg_merkle_verify_consistency(from, to, proof, n, &r1, &r2) == 0,
                      "verify consistency %llu..%llu: %s", (unsigned long long)from,
                      (unsigned long long)to, mlreg_error_last());
    }
    json_decref(res);
}

/* ---- appending -------------------------------------------------------------- */

START_TEST(test_audit_append_in_an_aborted_transaction_leaves_no_entry)
{
    mlreg_meta_txn *txn = NULL;
    mlreg_audit_event ev = push_event();
    uint64_t seq = 99, n = 99;
    char *text = NULL;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 1), 0);
    ck_assert_int_eq(mlreg_audit_append_txn(&seq, txn, &ev), 0);
    ck_assert_uint_eq(seq, 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    ck_assert_uint_eq(n, 1);
    mlreg_meta_txn_abort(txn);

    ck_assert_uint_eq(log_size(), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_int_eq(mlreg_audit_entry_txn(&text, NULL, txn, 0), MLREG_ENOTFOUND);
    ck_assert_str_eq(mlreg_error_last(), "audit entry 0 not found");
    ck_assert_ptr_null(text);
    mlreg_meta_txn_abort(txn);

    /* and the next append starts again at 0, with no prev */
    append_n(1);
    {
        json_t *e = read_entry(0, NULL, NULL);
        ck_assert_int_eq(jint(e, "seq"), 0);
        ck_assert(json_is_null(json_object_get(e, "prev")));
        json_decref(e);
    }
}
END_TEST

START_TEST(test_audit_seqs_count_up_from_0_and_prev_is_the_hash_of_the_entry_before)
{
    char prev[MLREG_AUDIT_HASH_STRLEN + 1] = "";

    append_n(3);
    append_n(4);
    ck_assert_uint_eq(log_size(), 7);
    for (uint64_t i = 0; i < 7; i++) {
        char *text = NULL;
        size_t len = 0;
        json_t *e = read_entry(i, &text, &len);

        ck_assert_int_eq(jint(e, "seq"), (json_int_t)i);
        if (i == 0) {
            ck_assert(json_is_null(json_object_get(e, "prev")));
        } else {
            ck_assert_str_eq(json_string_value(json_object_get(e, "prev")), prev);
        }
        ck_assert_int_eq(mlreg_audit_entry_hash(prev, text, len), 0);
        ck_assert_uint_eq(strlen(prev), MLREG_AUDIT_HASH_STRLEN);
        ck_assert_int_eq(strncmp(prev, MLREG_AUDIT_HASH_PREFIX, 7), 0);
        free(text);
        json_decref(e);
    }
}
END_TEST

START_TEST(test_audit_entries_are_exactly_canonical_and_hold_only_the_given_members)
{
    mlreg_meta_txn *txn = NULL;
    mlreg_audit_event ev;
    json_t *approvers = json_pack("[ss]", "alice", "bob");
    json_t *details = json_pack("{s{ss ss}}", "baseline", "version", "0.9", "digest", DIGEST);
    char *text = NULL, *again = NULL;
    size_t len = 0, alen = 0;
    char when[MLREG_TIME_STRLEN];
    json_t *e, *subject;

    memset(&ev, 0, sizeof(ev));
    ev.time_ns = INT64_C(1767323045123456789);
    ev.actor = "ci-bot";
    ev.action = MLREG_AUDIT_PROMOTE;
    ev.result = MLREG_AUDIT_REFUSED;
    ev.reason = "gate accuracy failed: 0.8 < 0.9";
    ev.model = "team/clf";
    ev.version = "1.0.0";
    ev.digest = DIGEST;
    ev.stage = "production";
    ev.approvers = approvers;
    ev.details = details;
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 1), 0);
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), 0);
    memset(&ev, 0, sizeof(ev));
    ev.actor = "config";
    ev.action = MLREG_AUDIT_KEY_TRUST;
    ev.result = MLREG_AUDIT_OK;
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);

    e = read_entry(0, &text, &len);
    ck_assert_int_eq(mlreg_canonical_json(&again, &alen, e), 0);
    ck_assert_uint_eq(alen, len);
    ck_assert_mem_eq(again, text, len);
    ck_assert_int_eq(json_object_size(e), 10);
    mlreg_time_format(when, INT64_C(1767323045123456789));
    ck_assert_str_eq(json_string_value(json_object_get(e, "time")), when);
    ck_assert_str_eq(json_string_value(json_object_get(e, "actor")), "ci-bot");
    ck_assert_str_eq(json_string_value(json_object_get(e, "action")), "promote");
    ck_assert_str_eq(json_string_value(json_object_get(e, "result")), "refused");
    ck_assert_str_eq(json_string_value(json_object_get(e, "reason")),
                     "gate accuracy failed: 0.8 < 0.9");
    ck_assert(json_equal(json_object_get(e, "approvers"), approvers));
    ck_assert(json_equal(json_object_get(e, "details"), details));
    ck_assert_ptr_null(json_object_get(e, "gates"));
    subject = json_object_get(e, "subject");
    ck_assert_int_eq(json_object_size(subject), 4);
    ck_assert_str_eq(json_string_value(json_object_get(subject, "model")), "team/clf");
    ck_assert_str_eq(json_string_value(json_object_get(subject, "version")), "1.0.0");
    ck_assert_str_eq(json_string_value(json_object_get(subject, "digest")), DIGEST);
    ck_assert_str_eq(json_string_value(json_object_get(subject, "stage")), "production");
    free(text);
    free(again);
    json_decref(e);

    /* the second entry: the seven members that are always there, an empty
     * subject, and a time taken now */
    e = read_entry(1, &text, &len);
    ck_assert_int_eq(mlreg_canonical_json(&again, &alen, e), 0);
    ck_assert_uint_eq(alen, len);
    ck_assert_mem_eq(again, text, len);
    ck_assert_int_eq(json_object_size(e), 7);
    ck_assert(json_is_object(json_object_get(e, "subject")));
    ck_assert_int_eq(json_object_size(json_object_get(e, "subject")), 0);
    ck_assert_int_eq(strncmp(json_string_value(json_object_get(e, "time")), "20", 2), 0);
    ck_assert_ptr_nonnull(strstr(text, "\"subject\":{}"));
    free(text);
    free(again);
    json_decref(e);
    json_decref(approvers);
    json_decref(details);
}
END_TEST

START_TEST(test_audit_missing_actor_action_or_result_is_refused_and_appends_nothing)
{
    mlreg_meta_txn *txn = NULL;
    mlreg_audit_event ev;
    json_t *not_obj = json_string("x");

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 1), 0);
    ev = push_event();
    ev.actor = NULL;
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "audit entry: actor is missing");
    ev = push_event();
    ev.action = NULL;
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "audit entry: action is missing");
    ev = push_event();
    ev.result = "";
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "audit entry: result is missing");
    ev = push_event();
    ev.details = not_obj;
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), MLREG_EINVALID);
    ev = push_event();
    ev.model = "bad \xff utf-8";
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, NULL), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    ck_assert_uint_eq(log_size(), 0);
    json_decref(not_obj);
}
END_TEST

START_TEST(test_audit_oversized_entry_is_refused_and_nothing_is_appended)
{
    mlreg_meta_txn *txn = NULL;
    mlreg_audit_event ev = push_event();
    size_t big = MLREG_AUDIT_ENTRY_MAX;
    char *reason = malloc(big + 1);
    uint64_t n = 0, seq = 0;

    ck_assert_ptr_nonnull(reason);
    memset(reason, 'x', big);
    reason[big] = '\0';
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 1), 0);
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), 0);
    ev.reason = reason;
    ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "longer than the limit"));
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    ck_assert_uint_eq(n, 1);
    /* the next append takes the seq the refused one did not */
    ev.reason = NULL;
    ck_assert_int_eq(mlreg_audit_append_txn(&seq, txn, &ev), 0);
    ck_assert_uint_eq(seq, 1);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    ck_assert_uint_eq(log_size(), 2);
    free(reason);
}
END_TEST

/* ---- reals ------------------------------------------------------------------ */

START_TEST(test_audit_reals_become_their_shortest_decimal_strings_at_any_depth)
{
    json_t *in =
        json_pack("{sf sf sf s[f{sf}] si sb sn ss}", "acc", 0.91, "tiny", 1e-5, "sum", 0.1 + 0.2,
                  "nested", 2.5, "x", -0.125, "n", 3, "ok", 1, "none", "s", "text");
    json_t *out, *want;
    mlreg_meta_txn *txn = NULL;
    mlreg_audit_event ev = push_event();
    json_t *gates = json_pack("[{ss sf sf}]", "metric", "accuracy", "value", 0.91, "min", 0.9);

    ck_assert_ptr_nonnull(in);
    out = mlreg_audit_json_no_reals(in);
    ck_assert_ptr_nonnull(out);
    want = json_pack("{ss ss ss s[s{ss}] si sb sn ss}", "acc", "0.91", "tiny", "1e-05", "sum",
                     "0.30000000000000004", "nested", "2.5", "x", "-0.125", "n", 3, "ok", 1, "none",
                     "s", "text");
    ck_assert(json_equal(out, want));
    json_decref(out);
    json_decref(want);

    /* and an entry with reals in gates and details is stored with strings */
    ev.gates = gates;
    ev.details = in;
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 1), 0);
    ck_assert_msg(mlreg_audit_append_txn(NULL, txn, &ev) == 0, "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    {
        char *text = NULL;
        size_t len = 0;
        json_t *e = read_entry(0, &text, &len);
        json_t *g = json_object_get(e, "gates");

        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(g, 0), "value")), "0.91");
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(g, 0), "min")), "0.9");
        ck_assert_ptr_nonnull(strstr(text, "\"sum\":\"0.30000000000000004\""));
        ck_assert_ptr_nonnull(strstr(text, "\"tiny\":\"1e-05\""));
        free(text);
        json_decref(e);
    }
    /* the caller's values are untouched */
    ck_assert(json_is_real(json_object_get(in, "acc")));
    json_decref(in);
    json_decref(gates);
}
END_TEST

/* ---- the tree and proofs ---------------------------------------------------- */

START_TEST(test_audit_empty_log_has_the_empty_root_and_an_empty_page)
{
    mlreg_merkle_hash root, empty;
    json_t *page = NULL, *res = NULL;

    stored_root(&root, 0);
    ck_assert_int_eq(mlreg_merkle_empty_root(&empty), 0);
    ck_assert(mlreg_merkle_hash_equal(&root, &empty));
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 0, 0), 0);
    ck_assert_int_eq(jint(page, "size"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(page, "entries")), 0);
    ck_assert(json_is_null(json_object_get(page, "next")));
    json_decref(page);
    ck_assert_int_eq(mlreg_audit_inclusion(&res, meta, 0, 0), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_audit_consistency(&res, meta, 0, 0), 0);
    ck_assert_int_eq(json_array_size(json_object_get(res, "proof")), 0);
    json_decref(res);
}
END_TEST

START_TEST(test_audit_stored_roots_and_every_proof_verify_for_every_size_up_to_70)
{
    enum { N = 70 };
    mlreg_merkle_hash *leaves;
    mlreg_merkle_hash root, want;

    /* one entry per transaction, checking the root after each commit */
    for (uint64_t size = 1; size <= N; size++) {
        append_n(1);
        leaves = read_leaves(size);
        stored_root(&root, size);
        ck_assert_int_eq(mlreg_merkle_root(&want, leaves, size), 0);
        ck_assert_msg(mlreg_merkle_hash_equal(&root, &want), "root of %llu differs",
                      (unsigned long long)size);
        free(leaves);
    }
    leaves = read_leaves(N);
    for (uint64_t size = 0; size <= N; size++) {
        stored_root(&root, size);
        ck_assert_int_eq(mlreg_merkle_root(&want, leaves, size), 0);
        ck_assert(mlreg_merkle_hash_equal(&root, &want));
        for (uint64_t seq = 0; seq < size; seq++)
            check_inclusion(seq, size, leaves);
    }
    /* to = 0 would mean the current size */
    for (uint64_t to = 1; to <= N; to++)
        for (uint64_t from = 0; from <= to; from++)
            check_consistency(from, to, leaves);
    free(leaves);
}
END_TEST

START_TEST(test_audit_size_0_means_the_current_size_in_proofs)
{
    json_t *res = NULL;

    append_n(13);
    ck_assert_int_eq(mlreg_audit_inclusion(&res, meta, 5, 0), 0);
    ck_assert_int_eq(jint(res, "size"), 13);
    json_decref(res);
    ck_assert_int_eq(mlreg_audit_consistency(&res, meta, 6, 0), 0);
    ck_assert_int_eq(jint(res, "to"), 13);
    json_decref(res);
}
END_TEST

START_TEST(test_audit_proofs_in_a_log_of_5000_entries_verify)
{
    enum { N = 5000 };
    mlreg_merkle_hash *leaves;
    mlreg_merkle_hash root, want;
    static const uint64_t sizes[] = {1, 2, 3, 1023, 1024, 1025, 4095, 4096, 4097, 4999, 5000};

    append_n(N);
    leaves = read_leaves(N);
    stored_root(&root, N);
    ck_assert_int_eq(mlreg_merkle_root(&want, leaves, N), 0);
    ck_assert(mlreg_merkle_hash_equal(&root, &want));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t size = sizes[i];
        check_inclusion(0, size, leaves);
        check_inclusion(size - 1, size, leaves);
        check_inclusion(size / 2, size, leaves);
        for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++)
            if (sizes[j] <= size) check_consistency(sizes[j], size, leaves);
    }
    for (uint64_t seq = 0; seq < N; seq += 97)
        check_inclusion(seq, N, leaves);
    for (uint64_t from = 1; from < N; from += 311)
        check_consistency(from, N, leaves);
    free(leaves);
}
END_TEST

START_TEST(test_audit_inclusion_of_a_seq_outside_the_tree_or_a_size_beyond_the_log_is_invalid)
{
    json_t *res = NULL;

    append_n(5);
    ck_assert_int_eq(mlreg_audit_inclusion(&res, meta, 5, 0), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_audit_inclusion(&res, meta, 3, 3), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_audit_inclusion(&res, meta, 4, 3), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_audit_inclusion(&res, meta, 0, 6), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_audit_inclusion(&res, meta, 0, UINT64_MAX), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_audit_inclusion(&res, meta, UINT64_MAX, 0), MLREG_EINVALID);
    ck_assert_ptr_null(res);
}
END_TEST

START_TEST(test_audit_consistency_from_after_to_or_to_beyond_the_log_is_invalid)
{
    json_t *res = NULL;
    mlreg_meta_txn *txn = NULL;
    mlreg_merkle_hash root;

    append_n(5);
    ck_assert_int_eq(mlreg_audit_consistency(&res, meta, 4, 3), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_audit_consistency(&res, meta, 6, 0), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_audit_consistency(&res, meta, 1, 6), MLREG_EINVALID);
    ck_assert_ptr_null(res);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_int_eq(mlreg_audit_root_txn(&root, txn, 6), MLREG_EINVALID);
    mlreg_meta_txn_abort(txn);
}
END_TEST

/* ---- listing ---------------------------------------------------------------- */

/* Checks that @p page holds entries since..since+count-1 with their exact bytes. */
static void check_page(json_t *page, uint64_t size, uint64_t since, size_t count, int64_t next)
{
    json_t *entries = json_object_get(page, "entries");

    ck_assert_int_eq(json_object_size(page), 4);
    ck_assert_int_eq(jint(page, "size"), (json_int_t)size);
    ck_assert_int_eq(jint(page, "since"), (json_int_t)since);
    ck_assert_uint_eq(json_array_size(entries), count);
    if (next < 0)
        ck_assert(json_is_null(json_object_get(page, "next")));
    else
        ck_assert_int_eq(jint(page, "next"), next);
    for (size_t i = 0; i < count; i += 1 + count / 7) {
        char *text = NULL;
        size_t len = 0;
        json_t *e = read_entry(since + i, &text, &len);
        json_t *s = json_array_get(entries, i);

        ck_assert(json_is_string(s));
        ck_assert_uint_eq(json_string_length(s), len);
        ck_assert_mem_eq(json_string_value(s), text, len);
        free(text);
        json_decref(e);
    }
}

START_TEST(test_audit_list_pages_through_the_log_and_ends_with_next_null)
{
    json_t *page = NULL;

    append_n(250);
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 0, 0), 0);
    check_page(page, 250, 0, 100, 100);
    json_decref(page);
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 100, 100), 0);
    check_page(page, 250, 100, 100, 200);
    json_decref(page);
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 200, 100), 0);
    check_page(page, 250, 200, 50, -1);
    json_decref(page);
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 240, 10), 0);
    check_page(page, 250, 240, 10, -1);
    json_decref(page);
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 7, 3), 0);
    check_page(page, 250, 7, 3, 10);
    json_decref(page);
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 250, 10), 0);
    check_page(page, 250, 250, 0, -1);
    json_decref(page);
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 1000000, 10), 0);
    check_page(page, 250, 1000000, 0, -1);
    json_decref(page);
}
END_TEST

START_TEST(test_audit_list_limit_over_1000_is_clamped_to_1000)
{
    json_t *page = NULL;

    append_n(1200);
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 0, 5000), 0);
    check_page(page, 1200, 0, 1000, 1000);
    json_decref(page);
    ck_assert_int_eq(mlreg_audit_list(&page, meta, 1000, (size_t)-1), 0);
    check_page(page, 1200, 1000, 200, -1);
    json_decref(page);
}
END_TEST

START_TEST(test_audit_list_page_of_large_entries_stops_at_the_byte_cap_and_says_next)
{
    /* 40 entries of ~200 KiB: 1000 would fit the count limit, not the
     * byte cap, so the first page stops early and "next" picks up there. */
    mlreg_meta_txn *txn = NULL;
    mlreg_audit_event ev = push_event();
    size_t big = 200 * 1024, got = 0, n;
    char *reason = malloc(big + 1);
    json_t *page = NULL;
    uint64_t since = 0;

    ck_assert_ptr_nonnull(reason);
    memset(reason, 'r', big);
    reason[big] = '\0';
    ev.reason = reason;
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 1), 0);
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(mlreg_audit_append_txn(NULL, txn, &ev), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    free(reason);

    ck_assert_int_eq(mlreg_audit_list(&page, meta, 0, 1000), 0);
    n = json_array_size(json_object_get(page, "entries"));
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_lt(n, 40);
    ck_assert_uint_le((n - 1) * big, MLREG_AUDIT_PAGE_BYTES);
    ck_assert_int_eq(json_integer_value(json_object_get(page, "next")), (json_int_t)n);
    json_decref(page);
    /* following next reaches every entry exactly once */
    while (1) {
        json_t *nx;
        ck_assert_int_eq(mlreg_audit_list(&page, meta, since, 1000), 0);
        got += json_array_size(json_object_get(page, "entries"));
        nx = json_object_get(page, "next");
        if (json_is_null(nx)) {
            json_decref(page);
            break;
        }
        since = (uint64_t)json_integer_value(nx);
        json_decref(page);
    }
    ck_assert_uint_eq(got, 40);
}
END_TEST

/* ---- the log key and checkpoints -------------------------------------------- */

static void key_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s/audit", data_dir);
}

START_TEST(test_audit_key_open_creates_a_0600_key_its_public_file_and_a_0700_dir)
{
    char dir[128], path[160];
    mlreg_audit_key *key = NULL;
    mlreg_pubkey pk, file_pk;
    char *text = NULL;
    const char *origin;
    struct stat st;

    key_dir(dir, sizeof(dir));
    ck_assert_msg(mlreg_audit_key_open(&key, dir) == 0, "open: %s", mlreg_error_last());
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/log.key", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);

    origin = mlreg_audit_key_origin(key);
    ck_assert_uint_eq(strlen(origin), strlen("mlreg-audit/") + MLREG_KEYID_HEXLEN);
    ck_assert_int_eq(strncmp(origin, "mlreg-audit/", 12), 0);
    for (const char *p = origin + 12; *p; p++)
        ck_assert_msg((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F'), "origin %s", origin);
    mlreg_audit_key_pubkey(&pk, key);
    {
        char keyid[MLREG_KEYID_HEXLEN + 1];
        mlreg_keyid_format(keyid, &pk.id);
        ck_assert_str_eq(origin + 12, keyid);
    }
    ck_assert_ptr_nonnull(mlreg_audit_key_seckey(key));

    snprintf(path, sizeof(path), "%s/log.pub", dir);
    ck_assert_int_eq(mlreg_pubkey_load(&file_pk, path), 0);
    ck_assert(mlreg_pubkey_equal(&pk, &file_pk));
    ck_assert_int_eq(mlreg_audit_key_public_text(&text, key), 0);
    {
        char want[128];
        snprintf(want, sizeof(want), "untrusted comment: mlreg audit log key %s\n", origin);
        ck_assert_int_eq(strncmp(text, want, strlen(want)), 0);
    }
    ck_assert_int_eq(mlreg_pubkey_parse(&file_pk, text, strlen(text)), 0);
    ck_assert(mlreg_pubkey_equal(&pk, &file_pk));
    free(text);
    mlreg_audit_key_free(key);
    mlreg_audit_key_free(NULL);
}
END_TEST

START_TEST(test_audit_key_reopened_gives_the_same_origin_and_public_key)
{
    char dir[128], path[160];
    mlreg_audit_key *a = NULL, *b = NULL;
    mlreg_pubkey pa, pb;
    char *ta = NULL, *tb = NULL;

    key_dir(dir, sizeof(dir));
    ck_assert_int_eq(mlreg_audit_key_open(&a, dir), 0);
    ck_assert_int_eq(mlreg_audit_key_open(&b, dir), 0);
    ck_assert_str_eq(mlreg_audit_key_origin(a), mlreg_audit_key_origin(b));
    mlreg_audit_key_pubkey(&pa, a);
    mlreg_audit_key_pubkey(&pb, b);
    ck_assert(mlreg_pubkey_equal(&pa, &pb));
    ck_assert_int_eq(mlreg_audit_key_public_text(&ta, a), 0);
    ck_assert_int_eq(mlreg_audit_key_public_text(&tb, b), 0);
    ck_assert_str_eq(ta, tb);
    free(ta);
    free(tb);
    mlreg_audit_key_free(b);
    b = NULL;

    /* a lost log.pub is written again from the key */
    snprintf(path, sizeof(path), "%s/log.pub", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mlreg_audit_key_open(&b, dir), 0);
    ck_assert_int_eq(mlreg_pubkey_load(&pb, path), 0);
    ck_assert(mlreg_pubkey_equal(&pa, &pb));
    mlreg_audit_key_free(a);
    mlreg_audit_key_free(b);
}
END_TEST

START_TEST(test_audit_key_readable_by_group_or_others_is_refused)
{
    char dir[128], path[160], want[256];
    mlreg_audit_key *key = NULL;

    key_dir(dir, sizeof(dir));
    ck_assert_int_eq(mlreg_audit_key_open(&key, dir), 0);
    mlreg_audit_key_free(key);
    key = NULL;
    snprintf(path, sizeof(path), "%s/log.key", dir);
    ck_assert_int_eq(chmod(path, 0644), 0);
    ck_assert_int_eq(mlreg_audit_key_open(&key, dir), MLREG_EINVALID);
    ck_assert_ptr_null(key);
    snprintf(want, sizeof(want), "audit log key %s has mode 0644; want 0600", path);
    ck_assert_str_eq(mlreg_error_last(), want);
    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(mlreg_audit_key_open(&key, dir), MLREG_EINVALID);
    ck_assert_int_eq(chmod(path, 0600), 0);
    ck_assert_int_eq(mlreg_audit_key_open(&key, dir), 0);
    mlreg_audit_key_free(key);
}
END_TEST

START_TEST(test_audit_key_file_that_is_garbage_is_refused)
{
    char dir[128], path[160];
    mlreg_audit_key *key = NULL;
    FILE *f;

    key_dir(dir, sizeof(dir));
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/log.key", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("untrusted comment: not a key\nAAAA\n", f);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0600), 0);
    ck_assert_int_eq(mlreg_audit_key_open(&key, dir), MLREG_EINVALID);
    ck_assert_ptr_null(key);
    /* and nothing was written next to it */
    snprintf(path, sizeof(path), "%s/log.pub", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(test_audit_checkpoint_verifies_with_the_log_key_and_gives_size_and_root)
{
    char dir[128];
    mlreg_audit_key *key = NULL;
    mlreg_pubkey pk;
    char *note = NULL, *again = NULL;
    uint64_t size = 99;
    mlreg_checkpoint cp;
    mlreg_merkle_hash root;

    key_dir(dir, sizeof(dir));
    ck_assert_int_eq(mlreg_audit_key_open(&key, dir), 0);
    mlreg_audit_key_pubkey(&pk, key);

    ck_assert_int_eq(mlreg_audit_checkpoint(&note, &size, meta, key), 0);
    ck_assert_uint_eq(size, 0);
    ck_assert_int_eq(
        mlreg_checkpoint_verify(&cp, note, strlen(note), mlreg_audit_key_origin(key), pk.pk), 0);
    ck_assert_uint_eq(cp.size, 0);
    free(note);
    note = NULL;

    append_n(11);
    ck_assert_int_eq(mlreg_audit_checkpoint(&note, &size, meta, key), 0);
    ck_assert_uint_eq(size, 11);
    ck_assert_int_eq(strncmp(note, mlreg_audit_key_origin(key), 28), 0);
    ck_assert_msg(
        mlreg_checkpoint_verify(&cp, note, strlen(note), mlreg_audit_key_origin(key), pk.pk) == 0,
        "verify: %s", mlreg_error_last());
    ck_assert_uint_eq(cp.size, 11);
    stored_root(&root, 11);
    ck_assert(mlreg_merkle_hash_equal(&cp.root, &root));
    /* deterministic: the same log gives the same bytes */
    ck_assert_int_eq(mlreg_audit_checkpoint(&again, NULL, meta, key), 0);
    ck_assert_str_eq(note, again);
    free(note);
    free(again);
    mlreg_audit_key_free(key);
}
END_TEST

static Suite *audit_suite(void)
{
    Suite *s = suite_create("audit");
    TCase *t = tcase_create("log");
    TCase *k = tcase_create("key");

    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_audit_append_in_an_aborted_transaction_leaves_no_entry);
    tcase_add_test(t, test_audit_seqs_count_up_from_0_and_prev_is_the_hash_of_the_entry_before);
    tcase_add_test(t, test_audit_entries_are_exactly_canonical_and_hold_only_the_given_members);
    tcase_add_test(t, test_audit_missing_actor_action_or_result_is_refused_and_appends_nothing);
    tcase_add_test(t, test_audit_oversized_entry_is_refused_and_nothing_is_appended);
    tcase_add_test(t, test_audit_reals_become_their_shortest_decimal_strings_at_any_depth);
    tcase_add_test(t, test_audit_empty_log_has_the_empty_root_and_an_empty_page);
    tcase_add_test(t, test_audit_stored_roots_and_every_proof_verify_for_every_size_up_to_70);
    tcase_add_test(t, test_audit_size_0_means_the_current_size_in_proofs);
    tcase_add_test(t, test_audit_proofs_in_a_log_of_5000_entries_verify);
    tcase_add_test(
        t, test_audit_inclusion_of_a_seq_outside_the_tree_or_a_size_beyond_the_log_is_invalid);
    tcase_add_test(t, test_audit_consistency_from_after_to_or_to_beyond_the_log_is_invalid);
    tcase_add_test(t, test_audit_list_pages_through_the_log_and_ends_with_next_null);
    tcase_add_test(t, test_audit_list_limit_over_1000_is_clamped_to_1000);
    tcase_add_test(t, test_audit_list_page_of_large_entries_stops_at_the_byte_cap_and_says_next);
    suite_add_tcase(s, t);

    tcase_add_checked_fixture(k, setup, teardown);
    tcase_add_test(k, test_audit_key_open_creates_a_0600_key_its_public_file_and_a_0700_dir);
    tcase_add_test(k, test_audit_key_reopened_gives_the_same_origin_and_public_key);
    tcase_add_test(k, test_audit_key_readable_by_group_or_others_is_refused);
    tcase_add_test(k, test_audit_key_file_that_is_garbage_is_refused);
    tcase_add_test(k, test_audit_checkpoint_verifies_with_the_log_key_and_gives_size_and_root);
    suite_add_tcase(s, k);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(audit_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
