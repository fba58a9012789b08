/* fuzz_merkle.c: Merkle proof verification (merkle.h) from hostile sizes,
 * indices and proofs; it must never crash. Two input forms:
 *  - '{' first: a transparency-dev testdata case as in tests/vectors/merkle
 *    (leafIdx, treeSize, leafHash, root, proof; or size1, size2, root1,
 *    root2, proof), hashes in base64, so the seed corpus is those files;
 *  - anything else, binary: one byte selecting inclusion (even) or
 *    consistency (odd), two little-endian uint64 (index and size, or size1
 *    and size2), two hashes (leaf and root, or root1 and root2), then the
 *    proof, 32 bytes a hash. Short input is padded with zeros.
 * Both forms also check a round trip on a real tree of up to 64 leaves: a
 * proof the library generates verifies, and one with a flipped bit does
 * not; abort() otherwise. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mlreg/merkle.h"

#define TREE_MAX       64
#define JSON_PROOF_MAX 256

static mlreg_merkle_hash tree[TREE_MAX];

static void init(void)
{
    static int done;

    if (done) return;
    for (uint64_t i = 0; i < TREE_MAX; i++) {
        unsigned char le[8];
        for (int b = 0; b < 8; b++)
            le[b] = (unsigned char)(i >> (8 * b));
        if (mlreg_merkle_leaf_hash(&tree[i], le, sizeof(le)) < 0) abort();
    }
    done = 1;
}

/* Proofs of the library's own making for leaf a % n in the tree of
 * n = b % (TREE_MAX + 1) leaves, and between sizes (a >> 8) % (n + 1) and n. */
static void round_trip(uint64_t a, uint64_t b)
{
    mlreg_merkle_leaves leaves = {tree, TREE_MAX};
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], root, root1;
    size_t len = 0;
    uint64_t n = b % (TREE_MAX + 1), idx, m;

    if (n == 0) return;
    idx = a % n;
    if (mlreg_merkle_root(&root, tree, n) < 0) abort();
    if (mlreg_merkle_prove_inclusion(proof, &len, idx, n, mlreg_merkle_leaves_subtree, &leaves) < 0)
        abort();
    if (mlreg_merkle_verify_inclusion(idx, n, proof, len, &tree[idx], &root) != 0) abort();
    if (len > 0) {
        proof[len - 1].raw[a % MLREG_MERKLE_HASH_BYTES] ^= 1;
        if (mlreg_merkle_verify_inclusion(idx, n, proof, len, &tree[idx], &root) == 0) abort();
    }

    m = (a >> 8) % (n + 1);
    if (m == 0) return;
    if (mlreg_merkle_root(&root1, tree, m) < 0) abort();
    if (mlreg_merkle_prove_consistency(proof, &len, m, n, mlreg_merkle_leaves_subtree, &leaves) < 0)
        abort();
    if (mlreg_merkle_verify_consistency(m, n, proof, len, &root1, &root) != 0) abort();
    if (len > 0) {
        proof[0].raw[b % MLREG_MERKLE_HASH_BYTES] ^= 0x80;
        if (mlreg_merkle_verify_consistency(m, n, proof, len, &root1, &root) == 0) abort();
    }
}

/* A hash from a JSON base64 string; a missing or malformed one stays zero. */
static void json_hash(mlreg_merkle_hash *out, json_t *v)
{
    memset(out, 0, sizeof(*out));
    if (json_is_string(v))
        (void)mlreg_merkle_hash_from_base64(out, json_string_value(v), json_string_length(v));
}

static uint64_t json_u64(json_t *v)
{
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static void from_json(const uint8_t *data, size_t size)
{
    json_t *root = NULL, *p, *incl;
    json_error_t jerr;
    mlreg_merkle_hash *proof = NULL, h1, h2;
    size_t n = 0;
    uint64_t a, b;

    if (!(root = json_loadb((const char *)data, size, 0, &jerr)) || !json_is_object(root))
        goto done;
    p = json_object_get(root, "proof");
    if (json_is_array(p)) {
        n = json_array_size(p);
        if (n > JSON_PROOF_MAX) n = JSON_PROOF_MAX;
        if (n > 0 && !(proof = calloc(n, sizeof(*proof)))) goto done;
        for (size_t i = 0; i < n; i++)
            json_hash(&proof[i], json_array_get(p, i));
    }
    incl = json_object_get(root, "treeSize");
    if (incl) {
        a = json_u64(json_object_get(root, "leafIdx"));
        b = json_u64(incl);
        json_hash(&h1, json_object_get(root, "leafHash"));
        json_hash(&h2, json_object_get(root, "root"));
        (void)mlreg_merkle_verify_inclusion(a, b, proof, n, &h1, &h2);
    } else {
        a = json_u64(json_object_get(root, "size1"));
        b = json_u64(json_object_get(root, "size2"));
        json_hash(&h1, json_object_get(root, "root1"));
        json_hash(&h2, json_object_get(root, "root2"));
        (void)mlreg_merkle_verify_consistency(a, b, proof, n, &h1, &h2);
    }
    round_trip(a, b);
done:
    free(proof);
    json_decref(root);
}

static void from_binary(const uint8_t *data, size_t size)
{
    unsigned char head[1 + 8 + 8 + 2 * MLREG_MERKLE_HASH_BYTES];
    mlreg_merkle_hash *proof = NULL, h1, h2;
    size_t n = 0, hlen = size < sizeof(head) ? size : sizeof(head);
    uint64_t a = 0, b = 0;

    memset(head, 0, sizeof(head));
    memcpy(head, data, hlen);
    for (int i = 7; i >= 0; i--) {
        a = (a << 8) | head[1 + i];
        b = (b << 8) | head[9 + i];
    }
    memcpy(h1.raw, head + 17, MLREG_MERKLE_HASH_BYTES);
    memcpy(h2.raw, head + 17 + MLREG_MERKLE_HASH_BYTES, MLREG_MERKLE_HASH_BYTES);
    if (size > sizeof(head)) {
        n = (size - sizeof(head)) / MLREG_MERKLE_HASH_BYTES;
        /* an exact-size heap copy, so ASan sees any read past the proof */
        if (n > 0 && !(proof = malloc(n * sizeof(*proof)))) return;
        if (n > 0) memcpy(proof, data + sizeof(head), n * sizeof(*proof));
    }
    if (head[0] & 1)
        (void)mlreg_merkle_verify_consistency(a, b, proof, n, &h1, &h2);
    else
        (void)mlreg_merkle_verify_inclusion(a, b, proof, n, &h1, &h2);
    round_trip(a, b);
    free(proof);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size > 0 && data[0] == '{')
        from_json(data, size);
    else
        from_binary(data, size);
    return 0;
}
