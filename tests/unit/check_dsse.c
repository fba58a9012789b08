/* check_dsse.c: DSSE PAE, signing and verification against
 * tests/vectors/dsse (an in-toto promotion statement signed with the
 * published minisign test key of tests/vectors/minisign), byte for byte.
 *
 * Vector files are found under $MLREG_ROOT (tests/run.sh sets it) or ".".
 */
#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/dsse.h"
#include "mlreg/sign.h"

#include "helpers.h"

static json_t *env_vec;
static unsigned char *payload;
static size_t payload_len;
static mlreg_pubkey pub;

static void setup(void)
{
    size_t len, got = 0;
    char *text = th_slurp(&len, th_vector_path("dsse/promotion.intoto.json"));
    const char *p64;
    json_error_t jerr;

    env_vec = json_loadb(text, len, 0, &jerr);
    ck_assert_msg(env_vec != NULL, "promotion.intoto.json: %s", jerr.text);
    free(text);
    p64 = json_string_value(json_object_get(env_vec, "payload"));
    payload = malloc(strlen(p64));
    ck_assert_ptr_nonnull(payload);
    ck_assert_int_eq(sodium_base642bin(payload, strlen(p64), p64, strlen(p64), NULL, &got, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    payload_len = got;
    text = th_slurp(&len, th_vector_path("minisign/minisign.pub"));
    ck_assert_int_eq(mlreg_pubkey_parse(&pub, text, len), 0);
    free(text);
}

static void teardown(void)
{
    json_decref(env_vec);
    free(payload);
}

static const char *vec_type(void)
{
    return json_string_value(json_object_get(env_vec, "payloadType"));
}

START_TEST(test_dsse_pae_of_the_vector_statement_is_byte_identical)
{
    unsigned char *pae = NULL;
    size_t pae_len = 0, want_len;
    char *want = th_slurp(&want_len, th_vector_path("dsse/promotion.pae.bin"));

    ck_assert_str_eq(vec_type(), MLREG_DSSE_INTOTO_TYPE);
    ck_assert_int_eq(mlreg_dsse_pae(&pae, &pae_len, vec_type(), payload, payload_len), 0);
    ck_assert_uint_eq(pae_len, want_len);
    ck_assert(memcmp(pae, want, want_len) == 0);
    free(pae);
    free(want);
}
END_TEST

START_TEST(test_dsse_pae_matches_the_spec_example_and_handles_empty_bodies)
{
    unsigned char *pae = NULL;
    size_t len = 0;

    ck_assert_int_eq(mlreg_dsse_pae(&pae, &len, "http://example.com/HelloWorld", "hello world", 11),
                     0);
    ck_assert_uint_eq(len, strlen("DSSEv1 29 http://example.com/HelloWorld 11 hello world"));
    ck_assert_str_eq((char *)pae, "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
    free(pae);
    ck_assert_int_eq(mlreg_dsse_pae(&pae, &len, "t", NULL, 0), 0);
    ck_assert_str_eq((char *)pae, "DSSEv1 1 t 0 ");
    free(pae);
}
END_TEST

START_TEST(test_dsse_signing_with_the_test_key_reproduces_the_vector_envelope)
{
    size_t klen, sig_len, got = 0;
    char *ktext = th_slurp(&klen, th_vector_path("minisign/minisign.key"));
    char *want_sig = th_slurp(&sig_len, th_vector_path("dsse/promotion.sig.bin"));
    mlreg_seckey *sk = NULL;
    char *out = NULL;
    json_t *env;
    json_error_t jerr;
    unsigned char sig[64];
    const char *sig64;

    ck_assert_int_eq(mlreg_seckey_parse(&sk, ktext, klen, NULL), 0);
    ck_assert_int_eq(mlreg_dsse_sign(&out, vec_type(), payload, payload_len, sk), 0);
    env = json_loads(out, 0, &jerr);
    ck_assert_ptr_nonnull(env);
    /* the same fields and values as the vector (which is pretty-printed) */
    ck_assert(json_equal(env, env_vec));
    sig64 = json_string_value(
        json_object_get(json_array_get(json_object_get(env, "signatures"), 0), "sig"));
    ck_assert_int_eq(sodium_base642bin(sig, sizeof(sig), sig64, strlen(sig64), NULL, &got, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    ck_assert_uint_eq(got, sig_len);
    ck_assert(memcmp(sig, want_sig, sig_len) == 0);
    /* mlreg writes the envelope as canonical JSON */
    ck_assert(strncmp(out, "{\"payload\":\"eyJf", 16) == 0);
    ck_assert_ptr_null(strchr(out, ' '));
    json_decref(env);
    mlreg_seckey_free(sk);
    free(out);
    free(ktext);
    free(want_sig);
}
END_TEST

START_TEST(test_dsse_vector_envelope_verifies_with_the_pem_and_minisign_key)
{
    size_t len, der_len = 0;
    char *text = th_slurp(&len, th_vector_path("dsse/promotion.intoto.json"));
    char *pem = th_slurp(&der_len, th_vector_path("dsse/pub.pem"));
    char *b64 = strstr(pem, "\n") + 1;
    unsigned char der[64], *got = NULL;
    char *type = NULL;
    size_t got_len = 0;

    /* pub.pem is the SubjectPublicKeyInfo of the minisign test key */
    *strstr(b64, "\n") = '\0';
    ck_assert_int_eq(sodium_base642bin(der, sizeof(der), b64, strlen(b64), NULL, &der_len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    ck_assert_uint_eq(der_len, 44);
    ck_assert(memcmp(der, "\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00", 12) == 0);
    ck_assert(memcmp(der + 12, pub.pk, 32) == 0);

    ck_assert_int_eq(mlreg_dsse_verify(&type, &got, &got_len, text, len, &pub), 0);
    ck_assert_str_eq(type, MLREG_DSSE_INTOTO_TYPE);
    ck_assert_uint_eq(got_len, payload_len);
    ck_assert(memcmp(got, payload, payload_len) == 0);
    ck_assert_ptr_nonnull(strstr((char *)got, "\"toStage\":\"production\""));
    free(type);
    free(got);
    free(text);
    free(pem);
}
END_TEST

static int verify_modified(const char *field, const char *value)
{
    json_t *env = json_deep_copy(env_vec);
    char *text;
    int rc;

    if (strcmp(field, "keyid") == 0 || strcmp(field, "sig") == 0)
        json_object_set_new(json_array_get(json_object_get(env, "signatures"), 0), field,
                            json_string(value));
    else
        json_object_set_new(env, field, json_string(value));
    text = json_dumps(env, 0);
    rc = mlreg_dsse_verify(NULL, NULL, NULL, text, strlen(text), &pub);
    free(text);
    json_decref(env);
    return rc;
}

START_TEST(test_dsse_altered_type_payload_or_signature_is_refused)
{
    const char *p64 = json_string_value(json_object_get(env_vec, "payload"));
    char *alt = strdup(p64);
    unsigned char *again;
    size_t cap = sodium_base64_ENCODED_LEN(payload_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);

    ck_assert_int_eq(verify_modified("payloadType", "application/json"), MLREG_EMISMATCH);
    ck_assert_str_eq(mlreg_error_last(),
                     "dsse envelope has no valid signature by key 135F655E9F290E69");
    alt[10] = alt[10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify_modified("payload", alt), MLREG_EMISMATCH);
    ck_assert_int_eq(verify_modified("sig", "PzJozHQ2agPdPMMn3zC3f5FGrhjsww8WH72pU/"
                                            "8TBFgtofHPB0zSgXKIrW5fAYtSaL7tlRxsFEP68368C1xtAA=="),
                     MLREG_EMISMATCH);
    /* a signature claiming another key is not even tried */
    ck_assert_int_eq(verify_modified("keyid", "0000000000000000"), MLREG_EMISMATCH);
    /* an empty key id is tried */
    ck_assert_int_eq(verify_modified("keyid", ""), 0);
    /* URL-safe unpadded payload encoding of the same bytes is accepted */
    again = malloc(cap);
    sodium_bin2base64((char *)again, cap, payload, payload_len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    ck_assert_int_eq(verify_modified("payload", (char *)again), 0);
    free(again);
    free(alt);
}
END_TEST

START_TEST(test_dsse_malformed_envelopes_are_refused)
{
    const char *cases[] = {
        "not json",
        "[]",
        "{\"payloadType\":\"t\",\"payload\":\"aGk=\"}",
        "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[]}",
        "{\"payloadType\":\"\",\"payload\":\"aGk=\",\"signatures\":[{\"sig\":\"AA==\"}]}",
        "{\"payloadType\":\"t\",\"payload\":\"!!\",\"signatures\":[{\"sig\":\"AA==\"}]}",
        "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"sig\":7}]}",
        "{\"payloadType\":\"t\",\"payload\":\"aGk=\",\"signatures\":[{\"sig\":\"*\"}]}",
        "{\"payloadType\":\"t\",\"payloadType\":\"u\",\"payload\":\"aGk=\",\"signatures\":[]}",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(mlreg_dsse_verify(NULL, NULL, NULL, cases[i], strlen(cases[i]), &pub) ==
                          MLREG_EINVALID,
                      "case %zu accepted: %s", i, cases[i]);
}
END_TEST

START_TEST(test_dsse_sign_then_verify_round_trips_and_refuses_another_key)
{
    mlreg_seckey *sk = NULL, *other = NULL;
    mlreg_pubkey other_pub;
    char *env = NULL, *type = NULL;
    unsigned char *got = NULL;
    size_t got_len = 0;

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    ck_assert_int_eq(mlreg_seckey_generate(&other), 0);
    mlreg_seckey_pubkey(&other_pub, other);
    ck_assert_int_eq(mlreg_dsse_sign(&env, "text/plain", "", 0, sk), 0);
    ck_assert_int_eq(mlreg_dsse_verify(NULL, NULL, NULL, env, strlen(env), &other_pub),
                     MLREG_EMISMATCH);
    mlreg_seckey_pubkey(&other_pub, sk);
    ck_assert_int_eq(mlreg_dsse_verify(&type, &got, &got_len, env, strlen(env), &other_pub), 0);
    ck_assert_str_eq(type, "text/plain");
    ck_assert_uint_eq(got_len, 0);
    ck_assert_int_eq(mlreg_dsse_sign(&type, "", "x", 1, sk), MLREG_EINVALID);
    free(env);
    free(type);
    free(got);
    mlreg_seckey_free(sk);
    mlreg_seckey_free(other);
}
END_TEST

static Suite *dsse_suite(void)
{
    Suite *s = suite_create("dsse");
    TCase *t = tcase_create("envelopes");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_dsse_pae_of_the_vector_statement_is_byte_identical);
    tcase_add_test(t, test_dsse_pae_matches_the_spec_example_and_handles_empty_bodies);
    tcase_add_test(t, test_dsse_signing_with_the_test_key_reproduces_the_vector_envelope);
    tcase_add_test(t, test_dsse_vector_envelope_verifies_with_the_pem_and_minisign_key);
    tcase_add_test(t, test_dsse_altered_type_payload_or_signature_is_refused);
    tcase_add_test(t, test_dsse_malformed_envelopes_are_refused);
    tcase_add_test(t, test_dsse_sign_then_verify_round_trips_and_refuses_another_key);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dsse_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
