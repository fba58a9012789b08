/* merkle.c: RFC 6962 / 9162 Merkle tree hashing, proof generation and
 * proof verification.
 *
 * Hashes are SHA-256 through libsodium, with the state on the stack, so
 * hashing never allocates. Proof generation walks the RFC's recursive
 * definitions (PATH and SUBPROOF) over leaf ranges [start, start + n); a
 * range that is not a complete subtree (the right edge of the tree) is
 * rebuilt from the complete subtrees it splits into, so a store that keeps
 * one hash per complete subtree answers every proof in O(log n) reads.
 */
#include "mlreg/merkle.h"

#include <sodium.h>
#include <string.h>

#include "mlreg/common.h"
#include "sign_internal.h"

int mlreg_merkle_leaf_hash(mlreg_merkle_hash *out, const void *data, size_t len)
{
    static const unsigned char prefix = 0x00;
    crypto_hash_sha256_state st;
    int error = 0;

    if ((error = mlreg_signing__init()) < 0) return error;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    if (len > 0) crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out->raw);
    return 0;
}

int mlreg_merkle_node_hash(mlreg_merkle_hash *out, const mlreg_merkle_hash *left,
                           const mlreg_merkle_hash *right)
{
    unsigned char buf[1 + 2 * MLREG_MERKLE_HASH_BYTES];
    int error = 0;

    if ((error = mlreg_signing__init()) < 0) return error;
    buf[0] = 0x01;
    memcpy(buf + 1, left->raw, MLREG_MERKLE_HASH_BYTES);
    memcpy(buf + 1 + MLREG_MERKLE_HASH_BYTES, right->raw, MLREG_MERKLE_HASH_BYTES);
    crypto_hash_sha256(out->raw, buf, sizeof(buf));
    return 0;
}

int mlreg_merkle_empty_root(mlreg_merkle_hash *out)
{
    int error = 0;

    if ((error = mlreg_signing__init()) < 0) return error;
    crypto_hash_sha256(out->raw, (const unsigned char *)"", 0);
    return 0;
}

int mlreg_merkle_hash_from_base64(mlreg_merkle_hash *out, const char *b64, size_t len)
{
    unsigned char buf[MLREG_MERKLE_HASH_BYTES + 3];
    size_t got = 0;
    const char *end = NULL;
    int error = 0;

    if ((error = mlreg_signing__init()) < 0) return error;
    if (sodium_base642bin(buf, sizeof(buf), b64, len, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != b64 + len)
        return mlreg_error_set(MLREG_EINVALID, "malformed merkle hash: not base64");
    if (got != MLREG_MERKLE_HASH_BYTES)
        return mlreg_error_set(MLREG_EINVALID, "malformed merkle hash: %zu bytes, not 32", got);
    memcpy(out->raw, buf, MLREG_MERKLE_HASH_BYTES);
    return 0;
}

int mlreg_merkle_hash_equal(const mlreg_merkle_hash *a, const mlreg_merkle_hash *b)
{
    return sodium_memcmp(a->raw, b->raw, MLREG_MERKLE_HASH_BYTES) == 0;
}

/* Largest power of two strictly below n (n >= 2): the RFC's split point k. */
static uint64_t split_point(uint64_t n)
{
    uint64_t k = 1;

    while (k < n - k)
        k <<= 1;
    return k;
}

static int is_pow2(uint64_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static int root_of(mlreg_merkle_hash *out, const mlreg_merkle_hash *leaves, uint64_t n)
{
    mlreg_merkle_hash l, r;
    uint64_t k;
    int error = 0;

    if (n == 1) {
        *out = leaves[0];
        return 0;
    }
    k = split_point(n);
    if ((error = root_of(&l, leaves, k)) < 0 || (error = root_of(&r, leaves + k, n - k)) < 0)
        return error;
    return mlreg_merkle_node_hash(out, &l, &r);
}

int mlreg_merkle_root(mlreg_merkle_hash *out, const mlreg_merkle_hash *leaves, uint64_t n)
{
    if (n == 0) return mlreg_merkle_empty_root(out);
    return root_of(out, leaves, n);
}

/* MTH(D[start : start + n]) for n >= 1 from complete-subtree hashes. The
 * ranges the RFC recursion produces always start at a multiple of the
 * next power of two >= n, so every piece handed to @p fn is aligned. */
static int mth_from(mlreg_merkle_hash *out, uint64_t start, uint64_t n, mlreg_merkle_subtree_fn fn,
                    void *ctx)
{
    mlreg_merkle_hash l, r;
    uint64_t k;
    int error = 0;

    if (is_pow2(n)) return fn(out, ctx, start, start + n);
    k = split_point(n);
    if ((error = fn(&l, ctx, start, start + k)) < 0 ||
        (error = mth_from(&r, start + k, n - k, fn, ctx)) < 0)
        return error;
    return mlreg_merkle_node_hash(out, &l, &r);
}

int mlreg_merkle_root_from(mlreg_merkle_hash *out, uint64_t size, mlreg_merkle_subtree_fn fn,
                           void *ctx)
{
    if (size == 0) return mlreg_merkle_empty_root(out);
    return mth_from(out, 0, size, fn, ctx);
}

/* A proof under construction in the caller's array. */
typedef struct {
    mlreg_merkle_hash *hashes;
    size_t len;
    mlreg_merkle_subtree_fn fn;
    void *ctx;
} proof_builder;

static int append_mth(proof_builder *b, uint64_t start, uint64_t n)
{
    if (b->len >= MLREG_MERKLE_PROOF_MAX)
        return mlreg_error_set(MLREG_EINVALID, "merkle proof longer than %d hashes",
                               MLREG_MERKLE_PROOF_MAX);
    return mth_from(&b->hashes[b->len++], start, n, b->fn, b->ctx);
}

/* PATH(m, D[start : start + n]) of RFC 9162 section 2.1.3.1. */
static int path(proof_builder *b, uint64_t m, uint64_t start, uint64_t n)
{
    uint64_t k;
    int error = 0;

    if (n <= 1) return 0;
    k = split_point(n);
    if (m < k) {
        if ((error = path(b, m, start, k)) < 0) return error;
        return append_mth(b, start + k, n - k);
    }
    if ((error = path(b, m - k, start + k, n - k)) < 0) return error;
    return append_mth(b, start, k);
}

/* SUBPROOF(m, D[start : start + n], b) of RFC 9162 section 2.1.4.1. */
static int subproof(proof_builder *b, uint64_t m, uint64_t start, uint64_t n, int whole)
{
    uint64_t k;
    int error = 0;

    if (m == n) return whole ? 0 : append_mth(b, start, n);
    k = split_point(n);
    if (m <= k) {
        if ((error = subproof(b, m, start, k, whole)) < 0) return error;
        return append_mth(b, start + k, n - k);
    }
    if ((error = subproof(b, m - k, start + k, n - k, 0)) < 0) return error;
    return append_mth(b, start, k);
}

int mlreg_merkle_prove_inclusion(mlreg_merkle_hash *proof, size_t *proof_len_out, uint64_t index,
                                 uint64_t size, mlreg_merkle_subtree_fn fn, void *ctx)
{
    proof_builder b = {proof, 0, fn, ctx};
    int error = 0;

    if (index >= size)
        return mlreg_error_set(MLREG_EINVALID,
                               "inclusion proof: leaf %llu is not in a tree of %llu",
                               (unsigned long long)index, (unsigned long long)size);
    if ((error = path(&b, index, 0, size)) < 0) return error;
    *proof_len_out = b.len;
    return 0;
}

int mlreg_merkle_prove_consistency(mlreg_merkle_hash *proof, size_t *proof_len_out, uint64_t size1,
                                   uint64_t size2, mlreg_merkle_subtree_fn fn, void *ctx)
{
    proof_builder b = {proof, 0, fn, ctx};
    int error = 0;

    if (size1 > size2)
        return mlreg_error_set(MLREG_EINVALID,
                               "consistency proof: size %llu is larger than size %llu",
                               (unsigned long long)size1, (unsigned long long)size2);
    if (size1 > 0 && (error = subproof(&b, size1, 0, size2, 1)) < 0) return error;
    *proof_len_out = b.len;
    return 0;
}

int mlreg_merkle_leaves_subtree(mlreg_merkle_hash *out, void *ctx, uint64_t start, uint64_t end)
{
    const mlreg_merkle_leaves *l = ctx;

    if (start >= end || end > l->count || !is_pow2(end - start) || start % (end - start) != 0)
        return mlreg_error_set(MLREG_EINVALID, "no complete subtree [%llu, %llu) in %llu leaves",
                               (unsigned long long)start, (unsigned long long)end,
                               (unsigned long long)l->count);
    return root_of(out, l->leaves + start, end - start);
}

/* Right-shifts fn and sn together until fn's lowest bit is set or fn is 0. */
static void shift_to_set_bit(uint64_t *fn, uint64_t *sn)
{
    while ((*fn & 1) == 0 && *fn != 0) {
        *fn >>= 1;
        *sn >>= 1;
    }
}

int mlreg_merkle_verify_inclusion(uint64_t index, uint64_t size, const mlreg_merkle_hash *proof,
                                  size_t proof_len, const mlreg_merkle_hash *leaf,
                                  const mlreg_merkle_hash *root)
{
    mlreg_merkle_hash r = *leaf;
    uint64_t fn, sn;
    size_t i;
    int error = 0;

    if (index >= size)
        return mlreg_error_set(MLREG_EINVALID,
                               "inclusion proof: leaf %llu is not in a tree of %llu",
                               (unsigned long long)index, (unsigned long long)size);
    fn = index;
    sn = size - 1;
    for (i = 0; i < proof_len; i++) {
        if (sn == 0)
            return mlreg_error_set(MLREG_EMISMATCH, "inclusion proof has the wrong length");
        if ((fn & 1) || fn == sn) {
            if ((error = mlreg_merkle_node_hash(&r, &proof[i], &r)) < 0) return error;
            if ((fn & 1) == 0) shift_to_set_bit(&fn, &sn);
        } else if ((error = mlreg_merkle_node_hash(&r, &r, &proof[i])) < 0) {
            return error;
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0) return mlreg_error_set(MLREG_EMISMATCH, "inclusion proof has the wrong length");
    if (!mlreg_merkle_hash_equal(&r, root))
        return mlreg_error_set(MLREG_EMISMATCH, "inclusion proof does not match the root");
    return 0;
}

int mlreg_merkle_verify_consistency(uint64_t size1, uint64_t size2, const mlreg_merkle_hash *proof,
                                    size_t proof_len, const mlreg_merkle_hash *root1,
                                    const mlreg_merkle_hash *root2)
{
    mlreg_merkle_hash fr, sr;
    uint64_t fn, sn;
    size_t i;
    int error = 0;

    if (size1 > size2)
        return mlreg_error_set(MLREG_EINVALID,
                               "consistency proof: size %llu is larger than size %llu",
                               (unsigned long long)size1, (unsigned long long)size2);
    if (size1 == size2) {
        if (proof_len != 0)
            return mlreg_error_set(MLREG_EMISMATCH,
                                   "consistency proof between equal sizes must be empty");
        if (!mlreg_merkle_hash_equal(root1, root2))
            return mlreg_error_set(MLREG_EMISMATCH, "roots of equal-size trees differ");
        return 0;
    }
    if (size1 == 0)
        return mlreg_error_set(MLREG_EINVALID, "consistency with the empty tree proves nothing");
    if (proof_len == 0) return mlreg_error_set(MLREG_EMISMATCH, "consistency proof is empty");

    /* RFC 9162 2.1.4.2 step 2: when size1 is a power of two the old root is
     * itself the first element of the path; instead of prepending it we
     * start from it and take the whole proof as the rest. */
    i = 0;
    if (is_pow2(size1)) {
        fr = *root1;
    } else {
        fr = proof[0];
        i = 1;
    }
    sr = fr;
    fn = size1 - 1;
    sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < proof_len; i++) {
        if (sn == 0)
            return mlreg_error_set(MLREG_EMISMATCH, "consistency proof has the wrong length");
        if ((fn & 1) || fn == sn) {
            if ((error = mlreg_merkle_node_hash(&fr, &proof[i], &fr)) < 0 ||
                (error = mlreg_merkle_node_hash(&sr, &proof[i], &sr)) < 0)
                return error;
            if ((fn & 1) == 0) shift_to_set_bit(&fn, &sn);
        } else if ((error = mlreg_merkle_node_hash(&sr, &sr, &proof[i])) < 0) {
            return error;
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0) return mlreg_error_set(MLREG_EMISMATCH, "consistency proof has the wrong length");
    if (!mlreg_merkle_hash_equal(&fr, root1))
        return mlreg_error_set(MLREG_EMISMATCH, "consistency proof does not match the old root");
    if (!mlreg_merkle_hash_equal(&sr, root2))
        return mlreg_error_set(MLREG_EMISMATCH, "consistency proof does not match the new root");
    return 0;
}
