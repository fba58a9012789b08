/**
 * @file merkle.h
 * @brief RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their checks.
 *
 * Leaf hash = SHA-256(0x00 ‖ data), node hash = SHA-256(0x01 ‖ left ‖ right),
 * the root of the empty tree is SHA-256(""). The tree over n leaves splits at
 * the largest power of two below n (RFC 9162 section 2.1.1).
 *
 * Proofs are generated from a callback that answers the hash of a complete
 * subtree, so a store can keep one hash per complete subtree and serve any
 * root or proof in O(log n) reads. Verification follows RFC 9162 sections
 * 2.1.3.2 and 2.1.4.2. Every function returns 0 or a negative MLREG_E* code
 * and sets the message (mlreg_error_set) where the failure is found.
 */
#ifndef MLREG_MERKLE_H
#define MLREG_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MLREG_MERKLE_HASH_BYTES 32

/** One tree hash (leaf, node or root). Plain value. */
typedef struct {
    unsigned char raw[MLREG_MERKLE_HASH_BYTES];
} mlreg_merkle_hash;

/** Leaf hash SHA-256(0x00 ‖ @p data). @p data may be NULL when @p len is 0. 0 or MLREG_EIO. */
int mlreg_merkle_leaf_hash(mlreg_merkle_hash *out, const void *data, size_t len);

/** Node hash SHA-256(0x01 ‖ @p left ‖ @p right). 0 or MLREG_EIO. */
int mlreg_merkle_node_hash(mlreg_merkle_hash *out, const mlreg_merkle_hash *left,
                           const mlreg_merkle_hash *right);

/** Root of the empty tree, SHA-256 of no bytes. 0 or MLREG_EIO. */
int mlreg_merkle_empty_root(mlreg_merkle_hash *out);

/**
 * Decodes standard padded base64 of exactly 32 bytes (@p len bytes of
 * @p b64, need not be NUL-terminated). 0 or MLREG_EINVALID ("malformed
 * merkle hash: ...") for bad base64 or any other decoded length.
 */
int mlreg_merkle_hash_from_base64(mlreg_merkle_hash *out, const char *b64, size_t len);

/** 1 when equal, 0 otherwise (constant time). */
int mlreg_merkle_hash_equal(const mlreg_merkle_hash *a, const mlreg_merkle_hash *b);

/**
 * Root of the tree whose leaf hashes are @p leaves[0..n-1] (n may be 0:
 * the empty root). Uses O(log n) stack, no allocation. 0 or MLREG_EIO.
 */
int mlreg_merkle_root(mlreg_merkle_hash *out, const mlreg_merkle_hash *leaves, uint64_t n);

/**
 * Callback answering the hash of the complete subtree over leaves
 * [@p start, @p end): end - start is a power of two 2^k and start a
 * multiple of it; for k = 0 that is the leaf hash of leaf @p start.
 * Returns 0 or a negative MLREG_E* code (with its message set), which the
 * proof functions pass up unchanged.
 */
typedef int (*mlreg_merkle_subtree_fn)(mlreg_merkle_hash *out, void *ctx, uint64_t start,
                                       uint64_t end);

/** Longest proof (inclusion or consistency) for a tree of up to 2^64 - 1 leaves. */
#define MLREG_MERKLE_PROOF_MAX 65

/**
 * Root of the tree of @p size leaves, from complete-subtree hashes answered
 * by @p fn (at most one call per set bit of @p size). 0 or what @p fn
 * returned, or MLREG_EIO.
 */
int mlreg_merkle_root_from(mlreg_merkle_hash *out, uint64_t size, mlreg_merkle_subtree_fn fn,
                           void *ctx);

/**
 * Inclusion proof (RFC 9162 section 2.1.3.1, PATH) for leaf @p index in the
 * tree of @p size leaves, written to @p proof (room for
 * MLREG_MERKLE_PROOF_MAX hashes, the caller's memory), deepest first;
 * *proof_len_out receives the count. O(log² size) calls of @p fn at most.
 * 0, MLREG_EINVALID (index >= size), what @p fn returned, or MLREG_EIO.
 */
int mlreg_merkle_prove_inclusion(mlreg_merkle_hash *proof, size_t *proof_len_out, uint64_t index,
                                 uint64_t size, mlreg_merkle_subtree_fn fn, void *ctx);

/**
 * Consistency proof (RFC 9162 section 2.1.4.1, PROOF) between the trees of
 * @p size1 and @p size2 leaves, into @p proof (room for
 * MLREG_MERKLE_PROOF_MAX hashes); *proof_len_out receives the count. The
 * proof is empty when size1 is 0 or equal to size2.
 * 0, MLREG_EINVALID (size1 > size2), what @p fn returned, or MLREG_EIO.
 */
int mlreg_merkle_prove_consistency(mlreg_merkle_hash *proof, size_t *proof_len_out, uint64_t size1,
                                   uint64_t size2, mlreg_merkle_subtree_fn fn, void *ctx);

/**
 * A ready-made mlreg_merkle_subtree_fn over an in-memory array of leaf
 * hashes: @p ctx points to a mlreg_merkle_leaves. It recomputes each
 * subtree from its leaves (fine for tests and small trees).
 */
typedef struct {
    const mlreg_merkle_hash *leaves;
    uint64_t count;
} mlreg_merkle_leaves;

/** The callback for mlreg_merkle_leaves (MLREG_EINVALID beyond count). */
int mlreg_merkle_leaves_subtree(mlreg_merkle_hash *out, void *ctx, uint64_t start, uint64_t end);

/**
 * Checks that @p leaf is leaf @p index of the tree of @p size leaves whose
 * root is @p root, given the @p proof_len hashes of @p proof (RFC 9162
 * section 2.1.3.2). 0; MLREG_EMISMATCH ("inclusion proof does not match
 * the root" or "... has the wrong length"); MLREG_EINVALID (index >= size);
 * MLREG_EIO.
 */
int mlreg_merkle_verify_inclusion(uint64_t index, uint64_t size, const mlreg_merkle_hash *proof,
                                  size_t proof_len, const mlreg_merkle_hash *leaf,
                                  const mlreg_merkle_hash *root);

/**
 * Checks that the tree of @p size2 leaves with root @p root2 extends the
 * tree of @p size1 leaves with root @p root1 (RFC 9162 section 2.1.4.2).
 * The cases the RFC algorithm leaves to the caller are settled as
 * transparency-dev/merkle does: size1 == size2 needs an empty proof and
 * equal roots; size1 == 0 < size2 proves nothing and is refused.
 * 0; MLREG_EMISMATCH (a root does not match, wrong proof length);
 * MLREG_EINVALID (size1 > size2, size1 == 0 < size2); MLREG_EIO.
 */
int mlreg_merkle_verify_consistency(uint64_t size1, uint64_t size2, const mlreg_merkle_hash *proof,
                                    size_t proof_len, const mlreg_merkle_hash *root1,
                                    const mlreg_merkle_hash *root2);

#endif
