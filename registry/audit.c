/* audit.c: the tamper-evident audit log (include/mlreg/audit.h; the wire
 * contract is docs/audit-api.md).
 *
 * Entries are canonical JSON stored under their big-endian seq in `audit`.
 * Next to them, `audit_tree` keeps one hash per complete subtree: appending
 * leaf n stores its leaf hash and the hash of every subtree that leaf
 * completes, so the tree never has to be recomputed and every root or proof
 * reads only the O(log n) stored hashes merkle.c asks for through
 * tree_subtree(). The entry count lives in `meta` under "audit_size".
 *
 * The read-side functions (list, proofs, checkpoint) open one read
 * transaction each, so the size they report and the hashes they read come
 * from the same snapshot even while writers append.
 */
#include "mlreg/audit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>

#include "mlreg/canonical_json.h"
#include "mlreg/bytes.h"
#include "mlreg/checkpoint.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/json_out.h"
#include "mlreg/tables.h"
#include "mlreg/time.h"

#define AUDIT_SIZE_KEY "audit_size"
#define TREE_KEY_LEN   9
#define LIST_LIMIT_DEF 100
#define LIST_LIMIT_MAX 1000
#define ORIGIN_PREFIX  "mlreg-audit/"
#define KEY_FILE       "log.key"
#define PUB_FILE       "log.pub"
#define PUB_COMMENT    "mlreg audit log key "
#define SEC_COMMENT    "mlreg audit log secret key "
#define B64_HASH_LEN                                                                               \
    sodium_base64_ENCODED_LEN(MLREG_MERKLE_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL)
/* Deepest value copied for an entry: anything deeper cannot be
 * canonicalised anyway (canonical_json.h), and the cap bounds recursion. */
#define ENTRY_COPY_DEPTH (MLREG_CANONICAL_JSON_DEPTH_MAX + 1)
/* Cap for the public mlreg_audit_json_no_reals(): keeps the recursion off
 * the end of a small worker-thread stack. */
#define PUBLIC_COPY_DEPTH 1024

struct mlreg_audit_key {
    mlreg_seckey *sk;
    mlreg_pubkey pub;
    char origin[sizeof(ORIGIN_PREFIX) + MLREG_KEYID_HEXLEN];
};

/* ---- keys and counters ------------------------------------------------------ */

static void tree_key(unsigned char key[TREE_KEY_LEN], unsigned level, uint64_t index)
{
    key[0] = (unsigned char)level;
    mlreg_be64_put(key + 1, index);
}

/* The entry count as @p txn sees it: 0 when the counter was never written. */
static int size_read(uint64_t *out, mlreg_meta_txn *txn)
{
    int error = 0;
    void *val = NULL;
    size_t vlen = 0;

    error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_META, AUDIT_SIZE_KEY, strlen(AUDIT_SIZE_KEY));
    if (error == MLREG_ENOTFOUND) {
        mlreg_error_clear();
        *out = 0;
        return 0;
    }
    if (error < 0) goto done;
    if (vlen != 8) {
        error = mlreg_error_set(MLREG_EIO, "audit size counter is corrupt (%zu bytes)", vlen);
        goto done;
    }
    *out = mlreg_be64_get(val);

done:
    free(val);
    return error;
}

static int size_write(mlreg_meta_txn *txn, uint64_t size)
{
    unsigned char be[8];

    mlreg_be64_put(be, size);
    return mlreg_meta_put(txn, MLREG_DB_META, AUDIT_SIZE_KEY, strlen(AUDIT_SIZE_KEY), be, 8, 0);
}

/* ---- the stored tree -------------------------------------------------------- */

static int tree_get(mlreg_merkle_hash *out, mlreg_meta_txn *txn, unsigned level, uint64_t index)
{
    unsigned char key[TREE_KEY_LEN];
    void *val = NULL;
    size_t vlen = 0;
    int error = 0;

    tree_key(key, level, index);
    error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_AUDIT_TREE, key, sizeof(key));
    if (error == MLREG_ENOTFOUND) {
        error = mlreg_error_set(MLREG_EIO, "audit tree hash at level %u index %llu is missing",
                                level, (unsigned long long)index);
        goto done;
    }
    if (error < 0) goto done;
    if (vlen != MLREG_MERKLE_HASH_BYTES) {
        error = mlreg_error_set(MLREG_EIO,
                                "audit tree hash at level %u index %llu is %zu bytes, not %d",
                                level, (unsigned long long)index, vlen, MLREG_MERKLE_HASH_BYTES);
        goto done;
    }
    memcpy(out->raw, val, MLREG_MERKLE_HASH_BYTES);

done:
    free(val);
    return error;
}

/* A stored hash is never replaced: finding one already there means the
 * counter and the tree disagree, which is corruption, not a caller error. */
static int tree_put(mlreg_meta_txn *txn, unsigned level, uint64_t index, const mlreg_merkle_hash *h)
{
    unsigned char key[TREE_KEY_LEN];
    int error = 0;

    tree_key(key, level, index);
    error = mlreg_meta_put(txn, MLREG_DB_AUDIT_TREE, key, sizeof(key), h->raw,
                           MLREG_MERKLE_HASH_BYTES, 1);
    if (error == MLREG_EEXISTS)
        return mlreg_error_set(MLREG_EIO, "audit tree hash at level %u index %llu already exists",
                               level, (unsigned long long)index);
    return error;
}

/* mlreg_merkle_subtree_fn over `audit_tree`: @p ctx is the transaction.
 * merkle.c only asks for aligned power-of-two ranges, so the range names
 * exactly one stored hash: level log2(end - start), index start >> level. */
static int tree_subtree(mlreg_merkle_hash *out, void *ctx, uint64_t start, uint64_t end)
{
    uint64_t width = end - start;
    unsigned level = 0;

    if (start >= end || (width & (width - 1)) != 0 || start % width != 0)
        return mlreg_error_set(MLREG_EIO, "audit tree: [%llu, %llu) is not a complete subtree",
                               (unsigned long long)start, (unsigned long long)end);
    while ((width >> level) > 1)
        level++;
    return tree_get(out, ctx, level, start >> level);
}

/* Stores leaf @p n and every complete subtree it closes: the subtree at
 * level k ending at leaf n exists when 2^k divides n + 1, and is the node
 * of its left sibling at level k-1 (already stored) and the hash just made. */
static int tree_append(mlreg_meta_txn *txn, uint64_t n, const mlreg_merkle_hash *leaf)
{
    mlreg_merkle_hash cur = *leaf, left;
    uint64_t end = n + 1;
    int error = 0;

    if ((error = tree_put(txn, 0, n, &cur)) < 0) return error;
    for (unsigned k = 1; k < 64 && (end & ((UINT64_C(1) << k) - 1)) == 0; k++) {
        if ((error = tree_get(&left, txn, k - 1, (end >> (k - 1)) - 2)) < 0 ||
            (error = mlreg_merkle_node_hash(&cur, &left, &cur)) < 0 ||
            (error = tree_put(txn, k, (end >> k) - 1, &cur)) < 0)
            return error;
    }
    return 0;
}

/* ---- reals as strings ------------------------------------------------------- */

/* The shortest "%.*g" text that strtod() reads back to exactly @p v. Only
 * finite doubles reach here (jansson refuses NaN and infinities). */
static json_t *real_as_string(double v)
{
    char buf[64];

    if (!isfinite(v)) {
        snprintf(buf, sizeof(buf), "%g", v);
        return json_string(buf);
    }
    snprintf(buf, sizeof(buf), "%.*g", mlreg_real_precision(v), v);
    return json_string(buf);
}

/* Deep copy with reals replaced; NULL on allocation failure, and also when
 * nesting goes past @p depth_left levels (*too_deep is then set). */
static json_t *copy_no_reals(const json_t *value, int depth_left, int *too_deep)
{
    json_t *copy = NULL, *v = NULL;
    const char *k = NULL;
    size_t i = 0;

    if ((json_is_object(value) || json_is_array(value)) && depth_left <= 0) {
        *too_deep = 1;
        return NULL;
    }
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        if ((copy = json_object()) == NULL) return NULL;
        json_object_foreach((json_t *)value, k, v)
        {
            json_t *c = copy_no_reals(v, depth_left - 1, too_deep);
            if (c == NULL || json_object_set_new_nocheck(copy, k, c) < 0) goto fail;
        }
        return copy;
    case JSON_ARRAY:
        if ((copy = json_array()) == NULL) return NULL;
        json_array_foreach((json_t *)value, i, v)
        {
            json_t *c = copy_no_reals(v, depth_left - 1, too_deep);
            if (c == NULL || json_array_append_new(copy, c) < 0) goto fail;
        }
        return copy;
    case JSON_STRING:
        return json_stringn_nocheck(json_string_value(value), json_string_length(value));
    case JSON_INTEGER: return json_integer(json_integer_value(value));
    case JSON_REAL: return real_as_string(json_real_value(value));
    case JSON_TRUE: return json_true();
    case JSON_FALSE: return json_false();
    case JSON_NULL: return json_null();
    }
    return NULL;

fail:
    json_decref(copy);
    return NULL;
}

json_t *mlreg_audit_json_no_reals(const json_t *value)
{
    int too_deep = 0;

    if (value == NULL) return NULL;
    return copy_no_reals(value, PUBLIC_COPY_DEPTH, &too_deep);
}

/* ---- building an entry ------------------------------------------------------ */

/* Sets @p key to a string copy of @p val; NULL @p val leaves it out.
 * UTF-8 is checked once, by mlreg_canonical_json(), so a bad string gives
 * its EINVALID message rather than a jansson NULL here. */
static int set_str(json_t *obj, const char *key, const char *val)
{
    if (val == NULL) return 0;
    if (json_object_set_new_nocheck(obj, key, json_string_nocheck(val)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory building an audit entry");
    return 0;
}

/* Sets @p key to a reals-free copy of @p val; NULL @p val leaves it out. */
static int set_copy(json_t *obj, const char *key, const json_t *val)
{
    int too_deep = 0;
    json_t *c;

    if (val == NULL) return 0;
    c = copy_no_reals(val, ENTRY_COPY_DEPTH, &too_deep);
    if (c == NULL && too_deep)
        return mlreg_error_set(MLREG_EINVALID, "audit entry: %s nested deeper than %d levels", key,
                               MLREG_CANONICAL_JSON_DEPTH_MAX);
    if (c == NULL || json_object_set_new_nocheck(obj, key, c) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory building an audit entry");
    return 0;
}

static int check_event(const mlreg_audit_event *ev)
{
    if (ev == NULL) return mlreg_error_set(MLREG_EINVALID, "audit entry: no event");
    if (ev->actor == NULL || ev->actor[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "audit entry: actor is missing");
    if (ev->action == NULL || ev->action[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "audit entry: action is missing");
    if (ev->result == NULL || ev->result[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "audit entry: result is missing");
    if (ev->approvers != NULL && !json_is_array(ev->approvers))
        return mlreg_error_set(MLREG_EINVALID, "audit entry: approvers is not an array");
    if (ev->details != NULL && !json_is_object(ev->details))
        return mlreg_error_set(MLREG_EINVALID, "audit entry: details is not an object");
    return 0;
}

/* The entry object for seq @p n with "prev" @p prev (NULL for entry 0). */
static int build_entry(json_t **out, const mlreg_audit_event *ev, uint64_t n, const char *prev)
{
    json_t *entry = NULL, *subject = NULL;
    char when[MLREG_TIME_STRLEN];
    int error = 0;

    mlreg_time_format(when, ev->time_ns != 0 ? ev->time_ns : mlreg_time_now_ns());
    if ((entry = json_object()) == NULL || (subject = json_object()) == NULL ||
        json_object_set_new_nocheck(entry, "seq", json_integer((json_int_t)n)) < 0 ||
        json_object_set_new_nocheck(entry, "prev", prev ? json_string(prev) : json_null()) < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building an audit entry");
        goto done;
    }
    if ((error = set_str(entry, "time", when)) < 0 ||
        (error = set_str(entry, "actor", ev->actor)) < 0 ||
        (error = set_str(entry, "action", ev->action)) < 0 ||
        (error = set_str(entry, "result", ev->result)) < 0 ||
        (error = set_str(entry, "reason", ev->reason)) < 0 ||
        (error = set_str(subject, "model", ev->model)) < 0 ||
        (error = set_str(subject, "version", ev->version)) < 0 ||
        (error = set_str(subject, "digest", ev->digest)) < 0 ||
        (error = set_str(subject, "stage", ev->stage)) < 0 ||
        (error = set_str(subject, "tag", ev->tag)) < 0 ||
        (error = set_str(subject, "key_id", ev->key_id)) < 0 ||
        (error = set_str(subject, "image", ev->image)) < 0 ||
        (error = set_copy(entry, "approvers", ev->approvers)) < 0 ||
        (error = set_copy(entry, "gates", ev->gates)) < 0 ||
        (error = set_copy(entry, "details", ev->details)) < 0)
        goto done;
    if (json_object_set_nocheck(entry, "subject", subject) < 0) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building an audit entry");
        goto done;
    }
    *out = entry;
    entry = NULL;

done:
    json_decref(subject);
    json_decref(entry);
    return error;
}

static void seq_key(unsigned char key[8], uint64_t seq)
{
    mlreg_be64_put(key, seq);
}

/* ---- the log ---------------------------------------------------------------- */

int mlreg_audit_entry_hash(char out[MLREG_AUDIT_HASH_STRLEN + 1], const void *entry, size_t len)
{
    mlreg_digest d;
    int error = 0;

    if ((error = mlreg_digest_buffer(&d, entry, len)) < 0) return error;
    mlreg_digest_format(out, &d);
    return 0;
}

int mlreg_audit_size_txn(uint64_t *out, mlreg_meta_txn *txn)
{
    return size_read(out, txn);
}

int mlreg_audit_entry_txn(char **out, size_t *len_out, mlreg_meta_txn *txn, uint64_t seq)
{
    unsigned char key[8];
    void *val = NULL;
    size_t vlen = 0;
    int error = 0;

    seq_key(key, seq);
    error = mlreg_meta_get(&val, &vlen, txn, MLREG_DB_AUDIT, key, sizeof(key));
    if (error == MLREG_ENOTFOUND)
        return mlreg_error_set(MLREG_ENOTFOUND, "audit entry %llu not found",
                               (unsigned long long)seq);
    if (error < 0) return error;
    *out = val;
    if (len_out != NULL) *len_out = vlen;
    return 0;
}

int mlreg_audit_append_txn(uint64_t *seq_out, mlreg_meta_txn *txn, const mlreg_audit_event *ev)
{
    int error = 0;
    uint64_t n = 0;
    char *prev_text = NULL, *text = NULL;
    size_t prev_len = 0, len = 0;
    char prev[MLREG_AUDIT_HASH_STRLEN + 1] = "";
    json_t *entry = NULL;
    unsigned char key[8];
    mlreg_merkle_hash leaf;

    if ((error = check_event(ev)) < 0) goto done;
    if ((error = size_read(&n, txn)) < 0) goto done;
    if (n >= (uint64_t)INT64_MAX) {
        error = mlreg_error_set(MLREG_ENOSPACE, "audit log is full");
        goto done;
    }
    if (n > 0) {
        error = mlreg_audit_entry_txn(&prev_text, &prev_len, txn, n - 1);
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_EIO, "audit entry %llu is missing (log size %llu)",
                                    (unsigned long long)(n - 1), (unsigned long long)n);
        if (error < 0) goto done;
        if ((error = mlreg_audit_entry_hash(prev, prev_text, prev_len)) < 0) goto done;
    }
    if ((error = build_entry(&entry, ev, n, n > 0 ? prev : NULL)) < 0) goto done;
    if ((error = mlreg_canonical_json(&text, &len, entry)) < 0) goto done;
    if (len > MLREG_AUDIT_ENTRY_MAX) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "audit entry of %zu bytes is longer than the limit of %u bytes",
                                len, MLREG_AUDIT_ENTRY_MAX);
        goto done;
    }

    seq_key(key, n);
    error = mlreg_meta_put(txn, MLREG_DB_AUDIT, key, sizeof(key), text, len, 1);
    if (error == MLREG_EEXISTS)
        error = mlreg_error_set(MLREG_EIO, "audit entry %llu already exists (log size %llu)",
                                (unsigned long long)n, (unsigned long long)n);
    if (error < 0) goto done;
    if ((error = mlreg_merkle_leaf_hash(&leaf, text, len)) < 0 ||
        (error = tree_append(txn, n, &leaf)) < 0 || (error = size_write(txn, n + 1)) < 0)
        goto done;
    if (seq_out != NULL) *seq_out = n;

done:
    json_decref(entry);
    free(text);
    free(prev_text);
    return error;
}

static int check_size(mlreg_meta_txn *txn, uint64_t size, uint64_t *cur_out)
{
    uint64_t cur = 0;
    int error = 0;

    if ((error = size_read(&cur, txn)) < 0) return error;
    if (size > cur)
        return mlreg_error_set(MLREG_EINVALID, "audit log has %llu entries, not %llu",
                               (unsigned long long)cur, (unsigned long long)size);
    if (cur_out != NULL) *cur_out = cur;
    return 0;
}

int mlreg_audit_root_txn(mlreg_merkle_hash *out, mlreg_meta_txn *txn, uint64_t size)
{
    int error = 0;

    if ((error = check_size(txn, size, NULL)) < 0) return error;
    return mlreg_merkle_root_from(out, size, tree_subtree, txn);
}

/* ---- the read side ---------------------------------------------------------- */

static json_t *hash_b64(const mlreg_merkle_hash *h)
{
    char b64[B64_HASH_LEN];

    sodium_bin2base64(b64, sizeof(b64), h->raw, MLREG_MERKLE_HASH_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    return json_string_nocheck(b64);
}

static json_t *proof_array(const mlreg_merkle_hash *proof, size_t n)
{
    json_t *arr = json_array();

    if (arr == NULL) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(arr, hash_b64(&proof[i])) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* jansson keeps integers signed; seqs and sizes from a real log fit, a
 * caller's since/seq/size beyond INT64_MAX is out of range. */
static int check_u64(uint64_t v, const char *what)
{
    if (v > (uint64_t)INT64_MAX)
        return mlreg_error_set(MLREG_EINVALID, "audit %s %llu is out of range", what,
                               (unsigned long long)v);
    return 0;
}

int mlreg_audit_list(json_t **out, mlreg_meta *meta, uint64_t since, size_t limit)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *page = NULL, *entries = NULL;
    uint64_t size = 0, end = 0;
    char *text = NULL;
    size_t len = 0;

    if ((error = check_u64(since, "since")) < 0) goto done;
    if (limit == 0) limit = LIST_LIMIT_DEF;
    if (limit > LIST_LIMIT_MAX) limit = LIST_LIMIT_MAX;
    if ((error = mlreg_meta_txn_begin(&txn, meta, 0)) < 0) goto done;
    if ((error = size_read(&size, txn)) < 0) goto done;
    end = since < size ? (size - since > limit ? since + limit : size) : since;
    if ((entries = json_array()) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing the audit log");
        goto done;
    }
    for (uint64_t s = since, bytes = 0; s < end; s++) {
        /* A page stops early once it holds MLREG_AUDIT_PAGE_BYTES of
         * entries (always at least one), so 1000 large entries cannot make
         * one answer hundreds of MiB; "next" then says where to go on. */
        if (bytes >= MLREG_AUDIT_PAGE_BYTES) {
            end = s;
            break;
        }
        error = mlreg_audit_entry_txn(&text, &len, txn, s);
        bytes += len;
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_EIO, "audit entry %llu is missing (log size %llu)",
                                    (unsigned long long)s, (unsigned long long)size);
        if (error < 0) goto done;
        if (json_array_append_new(entries, json_stringn(text, len)) < 0) {
            error = mlreg_error_set(MLREG_EIO, "audit entry %llu is not UTF-8 text",
                                    (unsigned long long)s);
            goto done;
        }
        free(text);
        text = NULL;
    }
    page =
        json_pack("{sI sI sO so}", "size", (json_int_t)size, "since", (json_int_t)since, "entries",
                  entries, "next", end < size ? json_integer((json_int_t)end) : json_null());
    if (page == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing the audit log");
        goto done;
    }
    *out = page;

done:
    free(text);
    json_decref(entries);
    mlreg_meta_txn_abort(txn);
    return error;
}

int mlreg_audit_inclusion(json_t **out, mlreg_meta *meta, uint64_t seq, uint64_t size)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], leaf, root;
    size_t proof_len = 0;
    uint64_t cur = 0;
    json_t *res = NULL;

    if ((error = check_u64(seq, "seq")) < 0 || (error = check_u64(size, "size")) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, meta, 0)) < 0) goto done;
    if ((error = check_size(txn, size, &cur)) < 0) goto done;
    if (size == 0) size = cur;
    if (seq >= size) {
        error = mlreg_error_set(MLREG_EINVALID, "audit entry %llu is not in a log of %llu entries",
                                (unsigned long long)seq, (unsigned long long)size);
        goto done;
    }
    if ((error = tree_get(&leaf, txn, 0, seq)) < 0 ||
        (error = mlreg_merkle_root_from(&root, size, tree_subtree, txn)) < 0 ||
        (error = mlreg_merkle_prove_inclusion(proof, &proof_len, seq, size, tree_subtree, txn)) < 0)
        goto done;
    res =
        json_pack("{sI sI so so so}", "seq", (json_int_t)seq, "size", (json_int_t)size, "leaf_hash",
                  hash_b64(&leaf), "root", hash_b64(&root), "proof", proof_array(proof, proof_len));
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building an inclusion proof");
        goto done;
    }
    *out = res;

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

int mlreg_audit_consistency(json_t **out, mlreg_meta *meta, uint64_t from, uint64_t to)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], from_root, to_root;
    size_t proof_len = 0;
    uint64_t cur = 0;
    json_t *res = NULL;

    if ((error = check_u64(from, "from")) < 0 || (error = check_u64(to, "to")) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, meta, 0)) < 0) goto done;
    if ((error = check_size(txn, to, &cur)) < 0) goto done;
    if (to == 0) to = cur;
    if (from > to) {
        error =
            mlreg_error_set(MLREG_EINVALID, "audit consistency: from %llu is larger than to %llu",
                            (unsigned long long)from, (unsigned long long)to);
        goto done;
    }
    if ((error = mlreg_merkle_root_from(&from_root, from, tree_subtree, txn)) < 0 ||
        (error = mlreg_merkle_root_from(&to_root, to, tree_subtree, txn)) < 0 ||
        (error = mlreg_merkle_prove_consistency(proof, &proof_len, from, to, tree_subtree, txn)) <
            0)
        goto done;
    res = json_pack("{sI sI so so so}", "from", (json_int_t)from, "to", (json_int_t)to, "from_root",
                    hash_b64(&from_root), "to_root", hash_b64(&to_root), "proof",
                    proof_array(proof, proof_len));
    if (res == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building a consistency proof");
        goto done;
    }
    *out = res;

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

/* ---- the log key ------------------------------------------------------------ */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(n);

    if (p != NULL) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Creates @p dir 0700 unless it exists; it must be a directory. */
static int ensure_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) == 0) return 0;
    if (errno != EEXIST)
        return mlreg_error_set(MLREG_EIO, "cannot create audit key directory %s: %s", dir,
                               strerror(errno));
    if (stat(dir, &st) < 0)
        return mlreg_error_set(MLREG_EIO, "cannot stat audit key directory %s: %s", dir,
                               strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "audit key directory %s is not a directory", dir);
    return 0;
}

/* Loads the existing key at @p path after checking that it is a regular
 * file nobody but its owner can read. ENOTFOUND (no message) when absent. */
static int load_key(mlreg_seckey **out, const char *path)
{
    struct stat st;
    int error = 0;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT) return MLREG_ENOTFOUND;
        return mlreg_error_set(MLREG_EIO, "cannot stat audit log key %s: %s", path,
                               strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return mlreg_error_set(MLREG_EINVALID, "audit log key %s is not a regular file", path);
    if ((st.st_mode & 077) != 0)
        return mlreg_error_set(MLREG_EINVALID, "audit log key %s has mode %04o; want 0600", path,
                               (unsigned)(st.st_mode & 07777));
    error = mlreg_seckey_load(out, path, NULL);
    if (error == MLREG_EAUTH)
        return mlreg_error_set(
            MLREG_EINVALID, "audit log key %s is encrypted; the log key must be unencrypted", path);
    if (error == MLREG_ENOTFOUND)
        return mlreg_error_set(MLREG_EIO, "audit log key %s vanished while being opened", path);
    return error;
}

/* Makes sure @p path holds @p key's public key: written when missing, a
 * file with another key (or garbage) is refused rather than left to
 * mislead auditors who fetch it. */
static int ensure_pub(const char *path, const mlreg_audit_key *key, const char *comment)
{
    mlreg_pubkey have;
    int error = mlreg_pubkey_load(&have, path);

    if (error == MLREG_ENOTFOUND) {
        mlreg_error_clear();
        error = mlreg_pubkey_save(path, &key->pub, comment);
        /* someone else wrote it meanwhile: check theirs */
        if (error == MLREG_EEXISTS) {
            error = mlreg_pubkey_load(&have, path);
        } else {
            /* a public key, but the data directory is private as a whole:
             * auditors fetch it from GET /api/v1/audit/key */
            if (error == 0 && chmod(path, 0600) < 0)
                error =
                    mlreg_error_set(MLREG_EIO, "cannot make %s private: %s", path, strerror(errno));
            return error;
        }
    }
    if (error < 0) return error;
    if (!mlreg_pubkey_equal(&have, &key->pub))
        return mlreg_error_set(MLREG_EINVALID, "audit log public key %s does not match the key %s",
                               path, key->origin);
    return 0;
}

int mlreg_audit_key_open(mlreg_audit_key **out, const char *dir)
{
    int error = 0;
    mlreg_audit_key *key = NULL;
    mlreg_seckey *fresh = NULL;
    char *key_path = NULL, *pub_path = NULL;
    char keyid[MLREG_KEYID_HEXLEN + 1];
    char comment[sizeof(SEC_COMMENT) + sizeof(((mlreg_audit_key *)0)->origin)];

    if (dir == NULL || dir[0] == '\0') {
        error = mlreg_error_set(MLREG_EINVALID, "audit key directory is missing");
        goto done;
    }
    if ((key = calloc(1, sizeof(*key))) == NULL || (key_path = path_join(dir, KEY_FILE)) == NULL ||
        (pub_path = path_join(dir, PUB_FILE)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory opening the audit log key");
        goto done;
    }
    if ((error = ensure_dir(dir)) < 0) goto done;

    error = load_key(&key->sk, key_path);
    if (error == MLREG_ENOTFOUND) {
        /* first start: create it; losing an O_EXCL race to another process
         * starting on the same directory means loading the winner's key */
        if ((error = mlreg_seckey_generate(&fresh)) < 0) goto done;
        mlreg_seckey_pubkey(&key->pub, fresh);
        mlreg_keyid_format(keyid, &key->pub.id);
        snprintf(comment, sizeof(comment), SEC_COMMENT ORIGIN_PREFIX "%s", keyid);
        error = mlreg_seckey_save(key_path, fresh, NULL, comment);
        if (error == 0) {
            key->sk = fresh;
            fresh = NULL;
        } else if (error == MLREG_EEXISTS) {
            mlreg_error_clear();
            error = load_key(&key->sk, key_path);
            if (error == MLREG_ENOTFOUND)
                error = mlreg_error_set(MLREG_EIO, "audit log key %s vanished", key_path);
        }
    }
    if (error < 0) goto done;

    mlreg_seckey_pubkey(&key->pub, key->sk);
    mlreg_keyid_format(keyid, &key->pub.id);
    snprintf(key->origin, sizeof(key->origin), ORIGIN_PREFIX "%s", keyid);
    snprintf(comment, sizeof(comment), PUB_COMMENT "%s", key->origin);
    if ((error = ensure_pub(pub_path, key, comment)) < 0) goto done;

    *out = key;
    key = NULL;

done:
    mlreg_seckey_free(fresh);
    mlreg_audit_key_free(key);
    free(key_path);
    free(pub_path);
    return error;
}

int mlreg_audit_key_load(mlreg_audit_key **out, const char *path)
{
    int error = 0;
    mlreg_audit_key *key = NULL;
    char keyid[MLREG_KEYID_HEXLEN + 1];

    if (path == NULL || path[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "audit log key file is missing");
    if ((key = calloc(1, sizeof(*key))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory opening the audit log key");
    if ((error = load_key(&key->sk, path)) < 0) {
        if (error == MLREG_ENOTFOUND)
            error = mlreg_error_set(MLREG_EIO,
                                    "audit log key %s does not exist (make one with `mlreg key "
                                    "generate --no-password --out PREFIX` and name PREFIX.key)",
                                    path);
        goto done;
    }
    mlreg_seckey_pubkey(&key->pub, key->sk);
    mlreg_keyid_format(keyid, &key->pub.id);
    snprintf(key->origin, sizeof(key->origin), ORIGIN_PREFIX "%s", keyid);
    *out = key;
    key = NULL;

done:
    mlreg_audit_key_free(key);
    return error;
}

void mlreg_audit_key_free(mlreg_audit_key *key)
{
    if (key == NULL) return;
    mlreg_seckey_free(key->sk);
    sodium_memzero(key, sizeof(*key));
    free(key);
}

const char *mlreg_audit_key_origin(const mlreg_audit_key *key)
{
    return key->origin;
}

const mlreg_seckey *mlreg_audit_key_seckey(const mlreg_audit_key *key)
{
    return key->sk;
}

void mlreg_audit_key_pubkey(mlreg_pubkey *out, const mlreg_audit_key *key)
{
    *out = key->pub;
}

int mlreg_audit_key_public_text(char **out, const mlreg_audit_key *key)
{
    char comment[sizeof(PUB_COMMENT) + sizeof(key->origin)];

    snprintf(comment, sizeof(comment), PUB_COMMENT "%s", key->origin);
    return mlreg_pubkey_format(out, &key->pub, comment);
}

int mlreg_audit_checkpoint(char **out, uint64_t *size_out, mlreg_meta *meta,
                           const mlreg_audit_key *key)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    mlreg_merkle_hash root;
    uint64_t size = 0;

    if ((error = mlreg_meta_txn_begin(&txn, meta, 0)) < 0) goto done;
    if ((error = size_read(&size, txn)) < 0 ||
        (error = mlreg_merkle_root_from(&root, size, tree_subtree, txn)) < 0)
        goto done;
    if ((error = mlreg_checkpoint_sign(out, key->origin, size, &root, key->sk)) < 0) goto done;
    if (size_out != NULL) *size_out = size;

done:
    mlreg_meta_txn_abort(txn);
    return error;
}
