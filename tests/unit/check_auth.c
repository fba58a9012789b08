/* check_auth.c: tokens of the config (strict parsing), Bearer and Basic
 * authentication against the stored hashes, roles with stages and @prefix,
 * admin, and the local identity of a server without tokens. */
#include "mlreg/auth.h"
#include "mlreg/common.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stages[] = {"dev", "staging", "production"};

static mlreg_auth *auth_of(const char *tokens_json)
{
    json_t *t = tokens_json ? json_loads(tokens_json, 0, NULL) : NULL;
    mlreg_auth *a = NULL;
    int rc;

    ck_assert(tokens_json == NULL || t != NULL);
    rc = mlreg_auth_new(&a, t, stages, 3);
    json_decref(t);
    if (rc < 0) ck_assert_ptr_null(a);
    return a;
}

/* A tokens array with one entry for token @p token. Static buffer. */
static const char *one_token(const char *name, const char *token, const char *roles_json)
{
    static char buf[1024];
    char hex[65];

    ck_assert_int_eq(mlreg_auth_token_hash(hex, token), 0);
    snprintf(buf, sizeof(buf), "[{\"name\":\"%s\",\"sha256\":\"%s\",\"roles\":%s}]", name, hex,
             roles_json);
    return buf;
}

static void refused(const char *tokens_json, const char *needle)
{
    mlreg_auth *a = auth_of(tokens_json);

    ck_assert_msg(a == NULL, "accepted %s", tokens_json);
    ck_assert_msg(strstr(mlreg_error_last(), needle) != NULL, "message '%s' lacks '%s'",
                  mlreg_error_last(), needle);
}

static void setup(void)
{
    ck_assert_int_ge(sodium_init(), 0);
}

START_TEST(test_token_hash_is_the_hex_sha256_of_the_token)
{
    char hex[65];

    ck_assert_int_eq(mlreg_auth_token_hash(hex, "abc"), 0);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_without_tokens_every_request_is_local_with_every_role)
{
    mlreg_auth *a = auth_of(NULL);
    const mlreg_identity *id = NULL;

    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(mlreg_auth_token_count(a), 0);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, NULL), 0);
    ck_assert_str_eq(mlreg_identity_name(id), "local");
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Bearer whatever"), 0);
    ck_assert_str_eq(mlreg_identity_name(id), "local");
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PROMOTE, "production", "m"), 0);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_ADMIN, NULL, NULL), 0);
    mlreg_auth_free(a);
}
END_TEST

START_TEST(test_bearer_token_authenticates_and_wrong_or_missing_is_eauth)
{
    mlreg_auth *a = auth_of(one_token("ci", "s3cret-token", "[\"push\"]"));
    const mlreg_identity *id = NULL;

    ck_assert_msg(a != NULL, "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_auth_token_count(a), 1);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Bearer s3cret-token"), 0);
    ck_assert_str_eq(mlreg_identity_name(id), "ci");
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "bearer   s3cret-token"), 0);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, NULL), MLREG_EAUTH);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, ""), MLREG_EAUTH);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Bearer s3cret-tokeN"), MLREG_EAUTH);
    ck_assert_ptr_null(strstr(mlreg_error_last(), "s3cret"));
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Bearer s3cret-token2"), MLREG_EAUTH);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Bearer "), MLREG_EAUTH);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Token s3cret-token"), MLREG_EAUTH);
    /* the hash itself is not a token */
    {
        char hex[65], h[80];
        mlreg_auth_token_hash(hex, "s3cret-token");
        snprintf(h, sizeof(h), "Bearer %s", hex);
        ck_assert_int_eq(mlreg_auth_authenticate(&id, a, h), MLREG_EAUTH);
    }
    mlreg_auth_free(a);
}
END_TEST

START_TEST(test_basic_credentials_carry_the_token_as_password)
{
    mlreg_auth *a = auth_of(one_token("deploy", "tok-123", "[\"read\"]"));
    const mlreg_identity *id = NULL;
    char b64[128], hdr[160];
    const char *cred = "anyone:tok-123";

    ck_assert_ptr_nonnull(a);
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)cred, strlen(cred),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(hdr, sizeof(hdr), "Basic %s", b64);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, hdr), 0);
    ck_assert_str_eq(mlreg_identity_name(id), "deploy");
    cred = "anyone:tok-124";
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)cred, strlen(cred),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(hdr, sizeof(hdr), "Basic %s", b64);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, hdr), MLREG_EAUTH);
    cred = "tok-123"; /* no colon */
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)cred, strlen(cred),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(hdr, sizeof(hdr), "Basic %s", b64);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, hdr), MLREG_EAUTH);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Basic !!!not-base64"), MLREG_EAUTH);
    mlreg_auth_free(a);
}
END_TEST

START_TEST(test_roles_grant_exactly_their_stage_and_prefix)
{
    mlreg_auth *a = auth_of(
        one_token("rel", "t", "[\"read\",\"promote:staging\",\"approve:production@vision\"]"));
    const mlreg_identity *id = NULL;

    ck_assert_msg(a != NULL, "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Bearer t"), 0);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_READ, NULL, "any"), 0);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PUSH, NULL, "any"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PROMOTE, "staging", "m"), 0);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PROMOTE, "production", "m"), MLREG_EFORBIDDEN);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "lacks role promote:production"));
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_APPROVE, "production", "vision/det"), 0);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_APPROVE, "production", "nlp/qa"),
                     MLREG_EFORBIDDEN);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_APPROVE, "staging", "vision/det"),
                     MLREG_EFORBIDDEN);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_ADMIN, NULL, NULL), MLREG_EFORBIDDEN);
    mlreg_auth_free(a);
}
END_TEST

START_TEST(test_admin_implies_every_role_but_a_prefix_limits_it_to_models)
{
    mlreg_auth *a = auth_of("[]");
    const mlreg_identity *id = NULL;
    char hex1[65], hex2[65], buf[512];

    mlreg_auth_free(a); /* an empty array is allowed (no tokens) */
    mlreg_auth_token_hash(hex1, "root");
    mlreg_auth_token_hash(hex2, "team");
    snprintf(buf, sizeof(buf),
             "[{\"name\":\"root\",\"sha256\":\"%s\",\"roles\":[\"admin\"]},"
             "{\"name\":\"team\",\"sha256\":\"%s\",\"roles\":[\"admin@vision\"]}]",
             hex1, hex2);
    a = auth_of(buf);
    ck_assert_msg(a != NULL, "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Bearer root"), 0);
    ck_assert_str_eq(mlreg_identity_name(id), "root");
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PROMOTE, "production", "x"), 0);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_ADMIN, NULL, NULL), 0);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, "Bearer team"), 0);
    ck_assert_str_eq(mlreg_identity_name(id), "team");
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PUSH, NULL, "vision/a"), 0);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PUSH, NULL, "nlp/a"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_ADMIN, NULL, NULL), MLREG_EFORBIDDEN);
    mlreg_auth_free(a);
}
END_TEST

START_TEST(test_bad_token_configs_are_refused_naming_the_key)
{
    char hex[65], buf[512];

    mlreg_auth_token_hash(hex, "x");
    refused("{}", "'tokens' must be an array");
    refused("[1]", "tokens[0]");
    refused(one_token("ci", "x", "[\"promte:staging\"]"),
            "config key 'tokens[0].roles[0]': unknown role 'promte:staging'");
    refused(one_token("ci", "x", "[\"promote:qa\"]"), "unknown stage 'qa'");
    refused(one_token("ci", "x", "[\"promote\"]"), "needs a stage");
    refused(one_token("ci", "x", "[\"push:dev\"]"), "takes no stage");
    refused(one_token("ci", "x", "[]"), "tokens[0].roles");
    refused(one_token("ci", "x", "[\"push@\"]"),
            "config key 'tokens[0].roles[0]': role 'push@' has an empty model prefix");
    refused(one_token("", "x", "[\"push\"]"), "tokens[0].name");
    snprintf(buf, sizeof(buf), "[{\"name\":\"a\",\"sha256\":\"%.63s\",\"roles\":[\"push\"]}]", hex);
    refused(buf, "tokens[0].sha256");
    snprintf(buf, sizeof(buf), "[{\"name\":\"a\",\"sha256\":\"%s\",\"roles\":[\"push\"],\"x\":1}]",
             hex);
    refused(buf, "unknown config key 'tokens[0].x'");
    snprintf(buf, sizeof(buf),
             "[{\"name\":\"a\",\"sha256\":\"%s\",\"roles\":[\"push\"]},"
             "{\"name\":\"a\",\"sha256\":\"%064d\",\"roles\":[\"push\"]}]",
             hex, 0);
    refused(buf, "duplicate token name 'a'");
    snprintf(buf, sizeof(buf),
             "[{\"name\":\"a\",\"sha256\":\"%s\",\"roles\":[\"push\"]},"
             "{\"name\":\"b\",\"sha256\":\"%s\",\"roles\":[\"read\"]}]",
             hex, hex);
    refused(buf, "same hash");
}
END_TEST

/* One token per role kind, each limited to @a/b: token "t<i>" holds
 * prefixed_roles[i]. */
static const char *const prefixed_roles[] = {"read@a/b", "push@a/b", "promote:production@a/b",
                                             "approve:production@a/b", "admin@a/b"};
static const mlreg_role_kind prefixed_kinds[] = {
    MLREG_ROLE_READ, MLREG_ROLE_PUSH, MLREG_ROLE_PROMOTE, MLREG_ROLE_APPROVE, MLREG_ROLE_ADMIN};
#define N_PREFIXED (sizeof(prefixed_roles) / sizeof(prefixed_roles[0]))

static mlreg_auth *prefixed_auth(void)
{
    char buf[2048], hex[65], tok[8];
    size_t n = 0;
    mlreg_auth *a;

    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[");
    for (size_t i = 0; i < N_PREFIXED; i++) {
        snprintf(tok, sizeof(tok), "t%zu", i);
        mlreg_auth_token_hash(hex, tok);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                              "%s{\"name\":\"%s\",\"sha256\":\"%s\",\"roles\":[\"%s\"]}",
                              i ? "," : "", tok, hex, prefixed_roles[i]);
    }
    snprintf(buf + n, sizeof(buf) - n, "]");
    a = auth_of(buf);
    ck_assert_msg(a != NULL, "%s", mlreg_error_last());
    return a;
}

static int check_as(mlreg_auth *a, size_t i, mlreg_role_kind kind, const char *model)
{
    const mlreg_identity *id = NULL;
    char hdr[16];
    const char *stage =
        kind == MLREG_ROLE_PROMOTE || kind == MLREG_ROLE_APPROVE ? "production" : NULL;

    snprintf(hdr, sizeof(hdr), "Bearer t%zu", i);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, hdr), 0);
    return mlreg_auth_check(id, kind, stage, model);
}

START_TEST(test_a_prefix_grants_its_model_and_the_models_below_it_for_every_role)
{
    mlreg_auth *a = prefixed_auth();
    static const char *const granted[] = {"a/b", "a/b/c", "a/b/c/d"};
    static const char *const refused_models[] = {"a/bc", "a/b-x", "a/b.x", "a/b_x", "a", "b/a/b"};

    for (size_t i = 0; i < N_PREFIXED; i++) {
        mlreg_role_kind kind = prefixed_kinds[i];
        for (size_t j = 0; j < sizeof(granted) / sizeof(granted[0]); j++)
            ck_assert_msg(check_as(a, i, kind, granted[j]) == 0, "%s should grant %s: %s",
                          prefixed_roles[i], granted[j], mlreg_error_last());
        for (size_t j = 0; j < sizeof(refused_models) / sizeof(refused_models[0]); j++) {
            ck_assert_msg(check_as(a, i, kind, refused_models[j]) == MLREG_EFORBIDDEN,
                          "%s granted %s", prefixed_roles[i], refused_models[j]);
            ck_assert_ptr_nonnull(strstr(mlreg_error_last(), refused_models[j]));
        }
        /* an action about no one model (key management, the whole audit log) */
        ck_assert_int_eq(check_as(a, i, kind, NULL), MLREG_EFORBIDDEN);
    }
    mlreg_auth_free(a);
}
END_TEST

START_TEST(test_a_prefixed_admin_grants_every_role_below_its_prefix_only)
{
    mlreg_auth *a = prefixed_auth();
    size_t admin = N_PREFIXED - 1;

    ck_assert_int_eq(check_as(a, admin, MLREG_ROLE_PUSH, "a/b/c"), 0);
    ck_assert_int_eq(check_as(a, admin, MLREG_ROLE_PROMOTE, "a/b"), 0);
    ck_assert_int_eq(check_as(a, admin, MLREG_ROLE_APPROVE, "a/bc"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(check_as(a, admin, MLREG_ROLE_READ, "a/b-x"), MLREG_EFORBIDDEN);
    /* read@a/b does not grant push on a/b */
    ck_assert_int_eq(check_as(a, 0, MLREG_ROLE_PUSH, "a/b"), MLREG_EFORBIDDEN);
    mlreg_auth_free(a);
}
END_TEST

/* mlreg_auth_check_some(): a role of the kind (or admin) for some model,
 * limited to a prefix or not; no other role stands in for it. */
START_TEST(test_check_some_grants_a_prefixed_role_of_the_kind_and_nothing_else)
{
    mlreg_auth *a = prefixed_auth();
    mlreg_auth *none = NULL;
    const mlreg_identity *id = NULL;
    char hdr[16];

    for (size_t i = 0; i < N_PREFIXED; i++) {
        snprintf(hdr, sizeof(hdr), "Bearer t%zu", i);
        ck_assert_int_eq(mlreg_auth_authenticate(&id, a, hdr), 0);
        for (size_t k = 0; k < N_PREFIXED; k++) {
            int want =
                prefixed_kinds[i] == prefixed_kinds[k] || prefixed_kinds[i] == MLREG_ROLE_ADMIN;
            ck_assert_msg((mlreg_auth_check_some(id, prefixed_kinds[k]) == 0) == want,
                          "%s and kind %zu", prefixed_roles[i], k);
        }
    }
    snprintf(hdr, sizeof(hdr), "Bearer t%d", 1);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, a, hdr), 0);
    ck_assert_int_eq(mlreg_auth_check_some(id, MLREG_ROLE_READ), MLREG_EFORBIDDEN);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "lacks role read for any model"));
    /* without tokens the local identity has every role */
    ck_assert_int_eq(mlreg_auth_new(&none, NULL, NULL, 0), 0);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, none, NULL), 0);
    ck_assert_int_eq(mlreg_auth_check_some(id, MLREG_ROLE_READ), 0);
    mlreg_auth_free(none);
    mlreg_auth_free(a);
}
END_TEST

START_TEST(test_a_prefix_that_is_not_a_model_name_is_refused_saying_what_to_write)
{
    static const char *const kinds[] = {"read", "push", "promote:production", "approve:production",
                                        "admin"};
    char roles[128];

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        snprintf(roles, sizeof(roles), "[\"read\",\"%s@a/b/\"]", kinds[i]);
        refused(one_token("ci", "x", roles), "config key 'tokens[0].roles[1]'");
        refused(one_token("ci", "x", roles),
                "model prefix 'a/b/' is not a model name; write 'a/b': a prefix grants the "
                "model a/b and every model under a/b/");
    }
    refused(one_token("ci", "x", "[\"push@vision/\"]"), "write 'vision'");
    refused(one_token("ci", "x", "[\"push@/a/b\"]"), "write 'a/b'");
    refused(one_token("ci", "x", "[\"push@a//b\"]"), "model prefix 'a//b' is not a model name");
    refused(one_token("ci", "x", "[\"push@Vision\"]"), "model prefix 'Vision' is not a model name");
    refused(one_token("ci", "x", "[\"push@a/b-\"]"), "model prefix 'a/b-' is not a model name");
    refused(one_token("ci", "x", "[\"push@/\"]"), "model prefix '/' is not a model name");
    refused(one_token("ci", "x", "[\"push@a@b\"]"), "more than one @prefix");
}
END_TEST

START_TEST(test_role_validate_checks_a_role_without_a_config)
{
    ck_assert_int_eq(mlreg_auth_role_validate("push"), 0);
    ck_assert_int_eq(mlreg_auth_role_validate("promote:qa@a/b"), 0); /* any tag-grammar stage */
    ck_assert_int_eq(mlreg_auth_role_validate("admin@a"), 0);
    ck_assert_int_eq(mlreg_auth_role_validate("push@a/b/"), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(),
                     "role 'push@a/b/': model prefix 'a/b/' is not a model name; write 'a/b': a "
                     "prefix grants the model a/b and every model under a/b/");
    ck_assert_int_eq(mlreg_auth_role_validate("read@Vision/"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_auth_role_validate("promote:"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_auth_role_validate("promote:-x"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_auth_role_validate("pusher"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_auth_role_validate("push:dev"), MLREG_EINVALID);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_token_hash_is_the_hex_sha256_of_the_token);
    tcase_add_test(tc, test_without_tokens_every_request_is_local_with_every_role);
    tcase_add_test(tc, test_bearer_token_authenticates_and_wrong_or_missing_is_eauth);
    tcase_add_test(tc, test_basic_credentials_carry_the_token_as_password);
    tcase_add_test(tc, test_roles_grant_exactly_their_stage_and_prefix);
    tcase_add_test(tc, test_admin_implies_every_role_but_a_prefix_limits_it_to_models);
    tcase_add_test(tc, test_bad_token_configs_are_refused_naming_the_key);
    tcase_add_test(tc, test_a_prefix_grants_its_model_and_the_models_below_it_for_every_role);
    tcase_add_test(tc, test_a_prefixed_admin_grants_every_role_below_its_prefix_only);
    tcase_add_test(tc, test_check_some_grants_a_prefixed_role_of_the_kind_and_nothing_else);
    tcase_add_test(tc, test_a_prefix_that_is_not_a_model_name_is_refused_saying_what_to_write);
    tcase_add_test(tc, test_role_validate_checks_a_role_without_a_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(auth_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
