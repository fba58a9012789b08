/* check_checkpoint.c: signed-note checkpoints against
 * tests/vectors/checkpoint (made with golang.org/x/mod/sumdb/note; keys,
 * leaves and expected notes in vectors.json), byte for byte, and the ways
 * a note must be refused.
 *
 * Vector files are found under $MLREG_ROOT (tests/run.sh sets it) or ".".
 */
#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/checkpoint.h"
#include "mlreg/common.h"
#include "mlreg/merkle.h"
#include "mlreg/sign.h"

#include "helpers.h"

static json_t *vec;
static const char *origin;
static unsigned char seed_sk[crypto_sign_SECRETKEYBYTES]; /* test key, published */
static unsigned char pk[crypto_sign_PUBLICKEYBYTES];
static mlreg_seckey *sk;

/* Turns the note package's "PRIVATE+KEY+<name>+<hash>+base64(0x01 ‖ seed)"
 * into an Ed25519 key pair, and that into a mlreg_seckey by way of an
 * unencrypted minisign key file (the only way in through the public API). */
static void load_keys(void)
{
    const char *skey = json_string_value(json_object_get(vec, "test_signer_key"));
    const char *b64 = skey;
    unsigned char raw[33], blob[158];
    char text[512], line[256];
    size_t got = 0;

    ck_assert_int_eq(sodium_init() >= 0, 1);
    for (int plus = 0; plus < 4; plus++) /* the key itself may hold '+' */
        b64 = strchr(b64, '+') + 1;
    ck_assert_int_eq(sodium_base642bin(raw, sizeof(raw), b64, strlen(b64), NULL, &got, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    ck_assert_uint_eq(got, 33);
    ck_assert_uint_eq(raw[0], 0x01);
    crypto_sign_seed_keypair(pk, seed_sk, raw + 1);

    memset(blob, 0, sizeof(blob));
    memcpy(blob, "Ed\0\0B2", 6);
    memcpy(blob + 6 + 32 + 16, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    memcpy(blob + 6 + 32 + 16 + 8, seed_sk, 64);
    sodium_bin2base64(line, sizeof(line), blob, sizeof(blob), sodium_base64_VARIANT_ORIGINAL);
    snprintf(text, sizeof(text), "untrusted comment: checkpoint test key\n%s\n", line);
    ck_assert_int_eq(mlreg_seckey_parse(&sk, text, strlen(text), NULL), 0);
}

static void setup(void)
{
    size_t len;
    char *text = th_slurp(&len, th_vector_path("checkpoint/vectors.json"));
    json_error_t jerr;

    vec = json_loadb(text, len, 0, &jerr);
    ck_assert_msg(vec != NULL, "vectors.json: %s", jerr.text);
    free(text);
    origin = json_string_value(json_object_get(vec, "origin"));
    load_keys();
}

static void teardown(void)
{
    mlreg_seckey_free(sk);
    sk = NULL;
    json_decref(vec);
}

static const char *vector_note(const char *size)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(vec, "checkpoints"), size), "signed_note"));
}

static void vector_root(mlreg_merkle_hash *out, const char *size)
{
    const char *hex = json_string_value(
        json_object_get(json_object_get(json_object_get(vec, "checkpoints"), size), "root_hex"));
    ck_assert_int_eq(sodium_hex2bin(out->raw, 32, hex, strlen(hex), NULL, NULL, NULL), 0);
}

/* Builds a note over @p body signed by the test key with key hash @p hash,
 * for bodies the API would never write. Caller frees. */
static char *note_with(const char *body, uint32_t hash, const char *name)
{
    unsigned char sig[68];
    char b64[128], *out = malloc(1024);

    ck_assert_ptr_nonnull(out);
    sig[0] = (unsigned char)(hash >> 24);
    sig[1] = (unsigned char)(hash >> 16);
    sig[2] = (unsigned char)(hash >> 8);
    sig[3] = (unsigned char)hash;
    crypto_sign_detached(sig + 4, NULL, (const unsigned char *)body, strlen(body), seed_sk);
    sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, 1024, "%s\n\xe2\x80\x94 %s %s\n", body, name, b64);
    return out;
}

static int verify(const char *text, mlreg_checkpoint *cp)
{
    return mlreg_checkpoint_verify(cp, text, strlen(text), origin, pk);
}

START_TEST(test_checkpoint_signing_the_vector_trees_gives_the_vector_notes_byte_for_byte)
{
    const char *sizes[] = {"3", "5"};
    const char *files[] = {"checkpoint/checkpoint.3.txt", "checkpoint/checkpoint.5.txt"};

    for (int i = 0; i < 2; i++) {
        mlreg_merkle_hash root;
        char *note = NULL, *file;
        size_t flen;

        vector_root(&root, sizes[i]);
        ck_assert_int_eq(mlreg_checkpoint_sign(&note, origin, (uint64_t)atoi(sizes[i]), &root, sk),
                         0);
        ck_assert_str_eq(note, vector_note(sizes[i]));
        file = th_slurp(&flen, th_vector_path(files[i]));
        ck_assert_uint_eq(flen, strlen(note));
        ck_assert(memcmp(file, note, flen) == 0);
        free(file);
        free(note);
    }
}
END_TEST

START_TEST(test_checkpoint_vector_notes_verify_and_give_their_size_and_root)
{
    mlreg_checkpoint cp;
    mlreg_merkle_hash root;

    ck_assert_int_eq(verify(vector_note("3"), &cp), 0);
    vector_root(&root, "3");
    ck_assert_uint_eq(cp.size, 3);
    ck_assert(mlreg_merkle_hash_equal(&cp.root, &root));
    ck_assert_int_eq(verify(vector_note("5"), &cp), 0);
    vector_root(&root, "5");
    ck_assert_uint_eq(cp.size, 5);
    ck_assert(mlreg_merkle_hash_equal(&cp.root, &root));
}
END_TEST

START_TEST(test_checkpoint_verifier_key_round_trips_the_vector_key)
{
    const char *vkey = json_string_value(json_object_get(vec, "verifier_key"));
    unsigned char got_pk[32];
    char *name = NULL, *text = NULL;
    uint32_t h = 0;

    ck_assert_int_eq(mlreg_checkpoint_key_hash(&h, origin, pk), 0);
    ck_assert_uint_eq(h, 0xccd49e47u);
    ck_assert_int_eq(mlreg_checkpoint_verifier_key(&text, origin, pk), 0);
    ck_assert_str_eq(text, vkey);
    ck_assert_int_eq(mlreg_checkpoint_verifier_parse(&name, got_pk, vkey, strlen(vkey)), 0);
    ck_assert_str_eq(name, origin);
    ck_assert(memcmp(got_pk, pk, 32) == 0);
    free(name);
    free(text);
}
END_TEST

START_TEST(test_checkpoint_key_names_with_c1_controls_or_bad_utf8_are_refused)
{
    uint32_t h = 0;

    ck_assert_int_eq(mlreg_checkpoint_key_hash(&h,
                                               "log\xc2\x9b"
                                               "31m",
                                               pk),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_checkpoint_key_hash(&h, "log\x9b", pk), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_checkpoint_key_hash(&h, "log\x7f", pk), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_checkpoint_key_hash(&h, "journal-\xc3\xa9", pk), 0);
}
END_TEST

START_TEST(test_checkpoint_verifier_key_with_a_wrong_hash_or_garbage_is_refused)
{
    unsigned char got_pk[32];
    char *name = NULL;
    const char *bad_hash = "registry.example.com/audit-log+ccd49e48+"
                           "AV2mxgnX3KDgmjBqtdy/VgxeKURRRya/P6rDub84d0Rx";
    const char *bad_alg = "registry.example.com/audit-log+ccd49e47+"
                          "Al2mxgnX3KDgmjBqtdy/VgxeKURRRya/P6rDub84d0Rx";

    ck_assert_int_eq(mlreg_checkpoint_verifier_parse(&name, got_pk, bad_hash, strlen(bad_hash)),
                     MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_checkpoint_verifier_parse(&name, got_pk, bad_alg, strlen(bad_alg)),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_checkpoint_verifier_parse(&name, got_pk, "x+y", 3), MLREG_EINVALID);
    ck_assert_ptr_null(name);
}
END_TEST

START_TEST(test_checkpoint_with_an_altered_body_fails_its_signature)
{
    mlreg_checkpoint cp = {77, {{0}}};
    char *note = strdup(vector_note("3"));
    char *line2 = strchr(note, '\n') + 1;

    *line2 = '4'; /* tree size 3 -> 4 */
    ck_assert_int_eq(verify(note, &cp), MLREG_EMISMATCH);
    ck_assert_str_eq(mlreg_error_last(), "checkpoint signature does not verify");
    ck_assert_uint_eq(cp.size, 77);
    *line2 = '3';
    line2[3] ^= 0x01; /* one root character */
    ck_assert_int_eq(verify(note, &cp), MLREG_EMISMATCH);
    line2[3] ^= 0x01;
    ck_assert_int_eq(verify(note, &cp), 0);
    free(note);
}
END_TEST

START_TEST(test_checkpoint_signed_under_another_key_hash_or_key_is_not_ours)
{
    mlreg_checkpoint cp;
    unsigned char other_pk[32];
    char *note = note_with("registry.example.com/audit-log\n3\n"
                           "Ic4RZYc0iIrbXv01WzeGKoo4Xm3TW1StuJ/ZNaSYcCM=\n",
                           0xccd49e48u, origin);

    ck_assert_int_eq(verify(note, &cp), MLREG_EMISMATCH);
    ck_assert_str_eq(mlreg_error_last(),
                     "checkpoint is not signed by registry.example.com/audit-log");
    memcpy(other_pk, pk, 32);
    other_pk[0] ^= 1;
    ck_assert_int_eq(
        mlreg_checkpoint_verify(&cp, vector_note("3"), strlen(vector_note("3")), origin, other_pk),
        MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_checkpoint_verify(&cp, vector_note("3"), strlen(vector_note("3")),
                                             "registry.example.com/other-log", pk),
                     MLREG_EMISMATCH);
    free(note);
}
END_TEST

START_TEST(test_checkpoint_cosignatures_by_unknown_keys_are_ignored_but_a_bad_one_of_ours_fails)
{
    mlreg_checkpoint cp;
    char buf[1024];
    const char *n3 = vector_note("3");

    /* a witness line (another name, a 76-byte timestamped cosignature) */
    snprintf(buf, sizeof(buf),
             "%s\xe2\x80\x94 witness.example.org "
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
             "AAAAAAAAAAAAAAAAAAAA\n",
             n3);
    ck_assert_int_eq(verify(buf, &cp), 0);
    ck_assert_uint_eq(cp.size, 3);
    /* our name and key hash with the size-5 signature: must fail */
    snprintf(buf, sizeof(buf), "%.*s%s", (int)(strstr(n3, "\n\n") + 2 - n3), n3,
             strstr(vector_note("5"), "\n\n") + 2);
    ck_assert_int_eq(verify(buf, &cp), MLREG_EMISMATCH);
    ck_assert_str_eq(mlreg_error_last(), "checkpoint signature does not verify");
}
END_TEST

START_TEST(test_checkpoint_malformed_notes_are_refused)
{
    mlreg_checkpoint cp;
    char buf[1024];
    const char *n3 = vector_note("3");
    size_t len = strlen(n3);
    char *ext, *zeros, *short_body;

    /* no trailing newline after the signature line */
    ck_assert_int_eq(mlreg_checkpoint_verify(&cp, n3, len - 1, origin, pk), MLREG_EINVALID);
    /* a carriage return */
    snprintf(buf, sizeof(buf), "%.*s\r\n", (int)(len - 1), n3);
    ck_assert_int_eq(verify(buf, &cp), MLREG_EINVALID);
    /* no blank line before the signatures */
    ck_assert_int_eq(verify("registry.example.com/audit-log\n3\nabc\n", &cp), MLREG_EINVALID);
    /* a hyphen instead of the em dash */
    snprintf(buf, sizeof(buf), "%s", n3);
    memcpy(strstr(buf, "\xe2\x80\x94"), "--- ", 4);
    ck_assert_int_eq(verify(buf, &cp), MLREG_EINVALID);
    /* invalid UTF-8 */
    snprintf(buf, sizeof(buf), "%s", n3);
    buf[0] = (char)0xff;
    ck_assert_int_eq(verify(buf, &cp), MLREG_EINVALID);
    /* bad base64 in the signature line */
    snprintf(buf, sizeof(buf), "%.*s!\n", (int)(len - 1), n3);
    ck_assert_int_eq(verify(buf, &cp), MLREG_EINVALID);

    /* well signed, but bodies mlreg refuses */
    ext = note_with("registry.example.com/audit-log\n3\n"
                    "Ic4RZYc0iIrbXv01WzeGKoo4Xm3TW1StuJ/ZNaSYcCM=\nextension\n",
                    0xccd49e47u, origin);
    ck_assert_int_eq(verify(ext, &cp), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "malformed checkpoint: extension lines");
    zeros = note_with("registry.example.com/audit-log\n03\n"
                      "Ic4RZYc0iIrbXv01WzeGKoo4Xm3TW1StuJ/ZNaSYcCM=\n",
                      0xccd49e47u, origin);
    ck_assert_int_eq(verify(zeros, &cp), MLREG_EINVALID);
    short_body = note_with("registry.example.com/audit-log\n3\nIc4RZYc0iIrbXv01WzeGKoo4Xm3TW1St\n",
                           0xccd49e47u, origin);
    ck_assert_int_eq(verify(short_body, &cp), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "malformed checkpoint: bad root hash");
    free(ext);
    free(zeros);
    free(short_body);
}
END_TEST

START_TEST(test_checkpoint_sign_then_verify_round_trips_any_size)
{
    const uint64_t sizes[] = {0, 1, 1000000, UINT64_MAX};
    mlreg_merkle_hash root;
    mlreg_checkpoint cp;

    ck_assert_int_eq(mlreg_merkle_leaf_hash(&root, "x", 1), 0);
    for (size_t i = 0; i < 4; i++) {
        char *note = NULL;
        ck_assert_int_eq(mlreg_checkpoint_sign(&note, origin, sizes[i], &root, sk), 0);
        ck_assert_int_eq(verify(note, &cp), 0);
        ck_assert_uint_eq(cp.size, sizes[i]);
        ck_assert(mlreg_merkle_hash_equal(&cp.root, &root));
        free(note);
    }
    {
        char *note = NULL;
        ck_assert_int_eq(mlreg_checkpoint_sign(&note, "has space", 1, &root, sk), MLREG_EINVALID);
        ck_assert_int_eq(mlreg_checkpoint_sign(&note, "a+b", 1, &root, sk), MLREG_EINVALID);
        ck_assert_int_eq(mlreg_checkpoint_sign(&note, "", 1, &root, sk), MLREG_EINVALID);
        ck_assert_ptr_null(note);
    }
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *t = tcase_create("notes");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t,
                   test_checkpoint_signing_the_vector_trees_gives_the_vector_notes_byte_for_byte);
    tcase_add_test(t, test_checkpoint_vector_notes_verify_and_give_their_size_and_root);
    tcase_add_test(t, test_checkpoint_verifier_key_round_trips_the_vector_key);
    tcase_add_test(t, test_checkpoint_verifier_key_with_a_wrong_hash_or_garbage_is_refused);
    tcase_add_test(t, test_checkpoint_with_an_altered_body_fails_its_signature);
    tcase_add_test(t, test_checkpoint_signed_under_another_key_hash_or_key_is_not_ours);
    tcase_add_test(t, test_checkpoint_key_names_with_c1_controls_or_bad_utf8_are_refused);
    tcase_add_test(
        t, test_checkpoint_cosignatures_by_unknown_keys_are_ignored_but_a_bad_one_of_ours_fails);
    tcase_add_test(t, test_checkpoint_malformed_notes_are_refused);
    tcase_add_test(t, test_checkpoint_sign_then_verify_round_trips_any_size);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(checkpoint_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
