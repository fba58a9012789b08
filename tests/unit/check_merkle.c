/* check_merkle.c: RFC 6962 / 9162 hashing, proof generation and proof
 * verification, against every case of transparency-dev/merkle's testdata
 * (copied under tests/vectors/merkle/testdata, see its README.md) and the
 * proofs of tests/vectors/checkpoint/vectors.json.
 *
 * Vector files are found under $MLREG_ROOT (tests/run.sh sets it) or ".".
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mlreg/common.h"
#include "mlreg/merkle.h"

#include "helpers.h"

#define INCLUSION_CASES   98
#define CONSISTENCY_CASES 98

/* The vectors hold sizes up to 2^64 - 1, which jansson refuses (it keeps
 * integers in json_int_t). So the number after "key": is read here with
 * strtoull and then blanked to 0 in the text before jansson parses it. */
static uint64_t take_u64(char *text, const char *key)
{
    char pat[64];
    char *p, *end;
    unsigned long long v;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(text, pat);
    ck_assert_msg(p != NULL, "no %s", key);
    p += strlen(pat);
    while (*p == ' ')
        p++;
    errno = 0;
    v = strtoull(p, &end, 10);
    ck_assert_msg(errno == 0 && end > p, "bad %s", key);
    *p = '0';
    memset(p + 1, ' ', (size_t)(end - p - 1));
    return (uint64_t)v;
}

/* Decodes every hash of a vector through the library, as a verifier that
 * receives base64 would; the first failure is the result. */
static int decode_hash(mlreg_merkle_hash *out, json_t *v)
{
    ck_assert_msg(json_is_string(v), "hash is not a string");
    return mlreg_merkle_hash_from_base64(out, json_string_value(v), json_string_length(v));
}

static int decode_proof(mlreg_merkle_hash *proof, size_t *len, json_t *arr)
{
    size_t i;
    json_t *v;
    int error = 0;

    *len = 0;
    if (json_is_null(arr)) return 0;
    ck_assert(json_is_array(arr));
    ck_assert_uint_le(json_array_size(arr), MLREG_MERKLE_PROOF_MAX);
    json_array_foreach(arr, i, v)
    {
        if ((error = decode_hash(&proof[i], v)) < 0) return error;
    }
    *len = json_array_size(arr);
    return 0;
}

/* The leaves of the RFC 6962 reference tree that transparency-dev's
 * testdata is built from. */
static const struct {
    const char *data;
    size_t len;
} rfc_leaves[] = {
    {"", 0},
    {"\x00", 1},
    {"\x10", 1},
    {"\x20\x21", 2},
    {"\x30\x31", 2},
    {"\x40\x41\x42\x43", 4},
    {"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
    {"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
};
#define RFC_LEAVES 8

static void rfc_leaf_hashes(mlreg_merkle_hash *out)
{
    for (size_t i = 0; i < RFC_LEAVES; i++)
        ck_assert_int_eq(mlreg_merkle_leaf_hash(&out[i], rfc_leaves[i].data, rfc_leaves[i].len), 0);
}

/* See run_consistency. */
#define OPAQUE_ROOTS_CASE "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"

typedef struct {
    int opaque;
    int ran;
    int happy;
    int generated;
} tally;

static void run_inclusion(const char *path, tally *t)
{
    char *text = th_slurp(NULL, path);
    uint64_t index = take_u64(text, "leafIdx");
    uint64_t size = take_u64(text, "treeSize");
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], leaf, root;
    size_t proof_len = 0;
    int want_err, rc;

    ck_assert_msg(j != NULL, "%s: %s", path, jerr.text);
    want_err = json_is_true(json_object_get(j, "wantErr"));
    ck_assert(json_is_boolean(json_object_get(j, "wantErr")));
    rc = decode_proof(proof, &proof_len, json_object_get(j, "proof"));
    if (rc == 0) rc = decode_hash(&leaf, json_object_get(j, "leafHash"));
    if (rc == 0) rc = decode_hash(&root, json_object_get(j, "root"));
    if (rc == 0) rc = mlreg_merkle_verify_inclusion(index, size, proof, proof_len, &leaf, &root);
    ck_assert_msg((rc == 0) == !want_err, "%s (%s): got %d (%s), wantErr %d", path,
                  json_string_value(json_object_get(j, "desc")), rc, mlreg_error_last(), want_err);
    if (rc != 0) ck_assert_int_lt(rc, 0);

    /* A happy path over the reference leaves is also regenerated. */
    if (!want_err) {
        mlreg_merkle_hash leaves[RFC_LEAVES], gen[MLREG_MERKLE_PROOF_MAX], groot;
        mlreg_merkle_leaves src;
        size_t gen_len = 0;

        t->happy++;
        rfc_leaf_hashes(leaves);
        if (size <= RFC_LEAVES && mlreg_merkle_hash_equal(&leaves[index], &leaf)) {
            src.leaves = leaves;
            src.count = size;
            ck_assert_int_eq(mlreg_merkle_root(&groot, leaves, size), 0);
            ck_assert(mlreg_merkle_hash_equal(&groot, &root));
            ck_assert_int_eq(
                mlreg_merkle_root_from(&groot, size, mlreg_merkle_leaves_subtree, &src), 0);
            ck_assert(mlreg_merkle_hash_equal(&groot, &root));
            ck_assert_int_eq(mlreg_merkle_prove_inclusion(gen, &gen_len, index, size,
                                                          mlreg_merkle_leaves_subtree, &src),
                             0);
            ck_assert_uint_eq(gen_len, proof_len);
            ck_assert(memcmp(gen, proof, proof_len * sizeof(proof[0])) == 0);
            t->generated++;
        }
    }
    t->ran++;
    json_decref(j);
    free(text);
}

static void run_consistency(const char *path, tally *t)
{
    char *text = th_slurp(NULL, path);
    uint64_t size1 = take_u64(text, "size1");
    uint64_t size2 = take_u64(text, "size2");
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], root1, root2;
    size_t proof_len = 0;
    int want_err, rc;

    ck_assert_msg(j != NULL, "%s: %s", path, jerr.text);
    ck_assert(json_is_boolean(json_object_get(j, "wantErr")));
    want_err = json_is_true(json_object_get(j, "wantErr"));
    rc = decode_proof(proof, &proof_len, json_object_get(j, "proof"));
    if (rc == 0) rc = decode_hash(&root1, json_object_get(j, "root1"));
    if (rc == 0) rc = decode_hash(&root2, json_object_get(j, "root2"));
    if (rc == 0)
        rc = mlreg_merkle_verify_consistency(size1, size2, proof, proof_len, &root1, &root2);
    if (strstr(path, OPAQUE_ROOTS_CASE) != NULL) {
        /* The one deliberate difference from the Go verifier: this case's
         * "roots" are the 12 bytes "don't care 2", which mlreg refuses as
         * no SHA-256 hash at all. What the case is about (equal sizes and
         * an empty proof hold when the roots are equal) is checked with a
         * real hash instead. */
        ck_assert_int_eq(rc, MLREG_EINVALID);
        ck_assert(!want_err);
        ck_assert_int_eq(mlreg_merkle_empty_root(&root1), 0);
        ck_assert_int_eq(mlreg_merkle_verify_consistency(size1, size2, NULL, 0, &root1, &root1), 0);
        t->opaque++;
        want_err = 1;
    }
    ck_assert_msg((rc == 0) == !want_err, "%s (%s): got %d (%s), wantErr %d", path,
                  json_string_value(json_object_get(j, "desc")), rc, mlreg_error_last(), want_err);
    if (rc != 0) ck_assert_int_lt(rc, 0);

    if (!want_err) {
        mlreg_merkle_hash leaves[RFC_LEAVES], gen[MLREG_MERKLE_PROOF_MAX], r1, r2;
        mlreg_merkle_leaves src;
        size_t gen_len = 0;

        t->happy++;
        rfc_leaf_hashes(leaves);
        ck_assert_int_eq(mlreg_merkle_root(&r1, leaves, size1 <= RFC_LEAVES ? size1 : 0), 0);
        ck_assert_int_eq(mlreg_merkle_root(&r2, leaves, size2 <= RFC_LEAVES ? size2 : 0), 0);
        if (size2 <= RFC_LEAVES && mlreg_merkle_hash_equal(&r1, &root1) &&
            mlreg_merkle_hash_equal(&r2, &root2)) {
            src.leaves = leaves;
            src.count = size2;
            ck_assert_int_eq(mlreg_merkle_prove_consistency(gen, &gen_len, size1, size2,
                                                            mlreg_merkle_leaves_subtree, &src),
                             0);
            ck_assert_uint_eq(gen_len, proof_len);
            ck_assert(memcmp(gen, proof, proof_len * sizeof(proof[0])) == 0);
            t->generated++;
        }
    }
    t->ran++;
    json_decref(j);
    free(text);
}

static void walk(const char *dir, void (*run)(const char *, tally *), tally *t)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    struct stat st;

    ck_assert_msg(d != NULL, "missing vector directory %s", dir);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ck_assert_int_eq(stat(path, &st), 0);
        if (S_ISDIR(st.st_mode))
            walk(path, run, t);
        else if (strlen(e->d_name) > 5 && strcmp(e->d_name + strlen(e->d_name) - 5, ".json") == 0)
            run(path, t);
    }
    closedir(d);
}

START_TEST(test_merkle_every_inclusion_vector_is_accepted_or_refused_as_expected)
{
    char dir[4096];
    tally t = {0, 0, 0, 0};

    snprintf(dir, sizeof(dir), "%s/tests/vectors/merkle/testdata/inclusion", th_root_dir());
    walk(dir, run_inclusion, &t);
    ck_assert_int_eq(t.ran, INCLUSION_CASES);
    ck_assert_int_gt(t.happy, 0);
    /* every happy path over the reference leaves was regenerated: all but
     * single-entry/matching-root-and-leaf, whose leaf is not among them */
    ck_assert_int_eq(t.happy, 6);
    ck_assert_int_eq(t.generated, 5);
}
END_TEST

START_TEST(test_merkle_every_consistency_vector_is_accepted_or_refused_as_expected)
{
    char dir[4096];
    tally t = {0, 0, 0, 0};

    snprintf(dir, sizeof(dir), "%s/tests/vectors/merkle/testdata/consistency", th_root_dir());
    walk(dir, run_consistency, &t);
    ck_assert_int_eq(t.ran, CONSISTENCY_CASES);
    ck_assert_int_eq(t.opaque, 1);
    ck_assert_int_gt(t.happy, 0);
    ck_assert_int_gt(t.generated, 0);
}
END_TEST

static void hex_hash(mlreg_merkle_hash *out, const char *hex)
{
    for (size_t i = 0; i < MLREG_MERKLE_HASH_BYTES; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out->raw[i] = (unsigned char)v;
    }
}

static json_t *checkpoint_vectors(void)
{
    char path[4096];
    json_error_t jerr;
    json_t *j;

    snprintf(path, sizeof(path), "%s/tests/vectors/checkpoint/vectors.json", th_root_dir());
    j = json_load_file(path, 0, &jerr);
    ck_assert_msg(j != NULL, "%s: %s", path, jerr.text);
    return j;
}

static size_t b64_proof(mlreg_merkle_hash *proof, json_t *arr)
{
    size_t len = 0;
    ck_assert_int_eq(decode_proof(proof, &len, arr), 0);
    return len;
}

START_TEST(test_merkle_checkpoint_leaves_give_the_vector_hashes_roots_and_proofs)
{
    json_t *j = checkpoint_vectors();
    json_t *leaves_j = json_object_get(j, "leaves_utf8");
    json_t *cps = json_object_get(j, "checkpoints");
    mlreg_merkle_hash leaves[5], want, root3, root5, proof[MLREG_MERKLE_PROOF_MAX],
        gen[MLREG_MERKLE_PROOF_MAX];
    mlreg_merkle_leaves src;
    size_t i, len, gen_len;

    ck_assert_uint_eq(json_array_size(leaves_j), 5);
    for (i = 0; i < 5; i++) {
        json_t *l = json_array_get(leaves_j, i);
        ck_assert_int_eq(
            mlreg_merkle_leaf_hash(&leaves[i], json_string_value(l), json_string_length(l)), 0);
        hex_hash(&want,
                 json_string_value(json_array_get(json_object_get(j, "leaf_hashes_hex"), i)));
        ck_assert(mlreg_merkle_hash_equal(&leaves[i], &want));
    }
    hex_hash(&root3, json_string_value(json_object_get(json_object_get(cps, "3"), "root_hex")));
    hex_hash(&root5, json_string_value(json_object_get(json_object_get(cps, "5"), "root_hex")));
    ck_assert_int_eq(mlreg_merkle_root(&want, leaves, 3), 0);
    ck_assert(mlreg_merkle_hash_equal(&want, &root3));
    ck_assert_int_eq(mlreg_merkle_root(&want, leaves, 5), 0);
    ck_assert(mlreg_merkle_hash_equal(&want, &root5));

    src.leaves = leaves;
    src.count = 5;
    len = b64_proof(proof, json_object_get(json_object_get(j, "inclusion_proof"), "path_b64"));
    ck_assert_int_eq(
        mlreg_merkle_prove_inclusion(gen, &gen_len, 2, 5, mlreg_merkle_leaves_subtree, &src), 0);
    ck_assert_uint_eq(gen_len, len);
    ck_assert(memcmp(gen, proof, len * sizeof(proof[0])) == 0);
    ck_assert_int_eq(mlreg_merkle_verify_inclusion(2, 5, proof, len, &leaves[2], &root5), 0);
    ck_assert_int_eq(mlreg_merkle_verify_inclusion(2, 5, proof, len, &leaves[3], &root5),
                     MLREG_EMISMATCH);

    len = b64_proof(proof, json_object_get(json_object_get(j, "consistency_proof"), "path_b64"));
    ck_assert_int_eq(
        mlreg_merkle_prove_consistency(gen, &gen_len, 3, 5, mlreg_merkle_leaves_subtree, &src), 0);
    ck_assert_uint_eq(gen_len, len);
    ck_assert(memcmp(gen, proof, len * sizeof(proof[0])) == 0);
    ck_assert_int_eq(mlreg_merkle_verify_consistency(3, 5, proof, len, &root3, &root5), 0);
    ck_assert_int_eq(mlreg_merkle_verify_consistency(3, 5, proof, len, &root5, &root3),
                     MLREG_EMISMATCH);
    json_decref(j);
}
END_TEST

/* Every (index, size) and (size1, size2) pair up to 70 leaves: generated
 * proofs verify, and flipping one bit of any proof hash breaks them. */
START_TEST(test_merkle_generated_proofs_verify_for_every_size_up_to_seventy)
{
    enum { N = 70 };
    mlreg_merkle_hash leaves[N], roots[N + 1], proof[MLREG_MERKLE_PROOF_MAX];
    mlreg_merkle_leaves src = {leaves, N};
    size_t len;
    uint64_t i, n, m;

    for (i = 0; i < N; i++) {
        unsigned char b[2] = {(unsigned char)i, 0xA5};
        ck_assert_int_eq(mlreg_merkle_leaf_hash(&leaves[i], b, sizeof(b)), 0);
    }
    for (n = 0; n <= N; n++) {
        ck_assert_int_eq(mlreg_merkle_root(&roots[n], leaves, n), 0);
        ck_assert_int_eq(mlreg_merkle_root_from(&proof[0], n, mlreg_merkle_leaves_subtree, &src),
                         0);
        ck_assert(mlreg_merkle_hash_equal(&proof[0], &roots[n]));
    }
    for (n = 1; n <= N; n++) {
        for (i = 0; i < n; i++) {
            ck_assert_int_eq(
                mlreg_merkle_prove_inclusion(proof, &len, i, n, mlreg_merkle_leaves_subtree, &src),
                0);
            ck_assert_int_eq(mlreg_merkle_verify_inclusion(i, n, proof, len, &leaves[i], &roots[n]),
                             0);
            if (len > 0) {
                proof[len - 1].raw[7] ^= 0x10;
                ck_assert_int_eq(
                    mlreg_merkle_verify_inclusion(i, n, proof, len, &leaves[i], &roots[n]),
                    MLREG_EMISMATCH);
            }
        }
        for (m = 1; m <= n; m++) {
            ck_assert_int_eq(mlreg_merkle_prove_consistency(proof, &len, m, n,
                                                            mlreg_merkle_leaves_subtree, &src),
                             0);
            ck_assert_int_eq(
                mlreg_merkle_verify_consistency(m, n, proof, len, &roots[m], &roots[n]), 0);
            if (len > 0) {
                proof[0].raw[31] ^= 0x01;
                ck_assert_int_eq(
                    mlreg_merkle_verify_consistency(m, n, proof, len, &roots[m], &roots[n]),
                    MLREG_EMISMATCH);
            }
        }
    }
}
END_TEST

START_TEST(test_merkle_empty_tree_root_is_sha256_of_nothing_and_has_no_leaves)
{
    mlreg_merkle_hash r, want, proof[MLREG_MERKLE_PROOF_MAX];
    size_t len = 99;

    ck_assert_int_eq(mlreg_merkle_empty_root(&r), 0);
    hex_hash(&want, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert(mlreg_merkle_hash_equal(&r, &want));
    ck_assert_int_eq(mlreg_merkle_root(&r, NULL, 0), 0);
    ck_assert(mlreg_merkle_hash_equal(&r, &want));
    ck_assert_int_eq(mlreg_merkle_prove_inclusion(proof, &len, 0, 0, mlreg_merkle_leaves_subtree,
                                                  &(mlreg_merkle_leaves){NULL, 0}),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_merkle_prove_consistency(proof, &len, 4, 3, mlreg_merkle_leaves_subtree,
                                                    &(mlreg_merkle_leaves){NULL, 0}),
                     MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "consistency proof: size 4 is larger than size 3");
}
END_TEST

START_TEST(test_merkle_hash_from_base64_refuses_other_lengths_and_garbage)
{
    mlreg_merkle_hash h;

    ck_assert_int_eq(mlreg_merkle_hash_from_base64(&h, "", 0), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_merkle_hash_from_base64(&h, "ZG9uJ3QgY2FyZSAy", 16), MLREG_EINVALID);
    ck_assert_int_eq(
        mlreg_merkle_hash_from_base64(&h, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=!", 45),
        MLREG_EINVALID);
    ck_assert_int_eq(
        mlreg_merkle_hash_from_base64(&h, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", 44), 0);
    ck_assert_uint_eq(h.raw[0], 0xe3);
}
END_TEST

/* A store's callback error reaches the caller unchanged. */
static int failing_subtree(mlreg_merkle_hash *out, void *ctx, uint64_t start, uint64_t end)
{
    (void)out;
    (void)start;
    (void)end;
    (*(int *)ctx)++;
    return mlreg_error_set(MLREG_EIO, "disk on fire");
}

START_TEST(test_merkle_proof_generation_passes_the_store_error_up)
{
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX];
    size_t len = 0;
    int calls = 0;

    ck_assert_int_eq(mlreg_merkle_prove_inclusion(proof, &len, 3, 9, failing_subtree, &calls),
                     MLREG_EIO);
    ck_assert_int_eq(calls, 1);
    ck_assert_str_eq(mlreg_error_last(), "disk on fire");
}
END_TEST

static Suite *merkle_suite(void)
{
    Suite *s = suite_create("merkle");
    TCase *t = tcase_create("vectors");
    TCase *g = tcase_create("generation");

    tcase_add_test(t, test_merkle_every_inclusion_vector_is_accepted_or_refused_as_expected);
    tcase_add_test(t, test_merkle_every_consistency_vector_is_accepted_or_refused_as_expected);
    tcase_add_test(t, test_merkle_checkpoint_leaves_give_the_vector_hashes_roots_and_proofs);
    suite_add_tcase(s, t);
    tcase_set_timeout(g, 60);
    tcase_add_test(g, test_merkle_generated_proofs_verify_for_every_size_up_to_seventy);
    tcase_add_test(g, test_merkle_empty_tree_root_is_sha256_of_nothing_and_has_no_leaves);
    tcase_add_test(g, test_merkle_hash_from_base64_refuses_other_lengths_and_garbage);
    tcase_add_test(g, test_merkle_proof_generation_passes_the_store_error_up);
    suite_add_tcase(s, g);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(merkle_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
