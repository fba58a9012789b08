/* check_tokens.c: API tokens made at runtime (include/mlreg/tokens.h) on a
 * real registry: create (the secret's form, its hash the only thing kept,
 * name and role rules, clashes with config and runtime tokens, the local
 * identity's refusal, expiry rounding), authentication through
 * mlreg_auth_authenticate_with() (config tokens first, then by hash;
 * expired, revoked, shadowed), list (no hash, last use), revoke (unknown,
 * config), the audit entries (no secret), the last uses written to the
 * node-local table (not for a token revoked elsewhere), and the replay of
 * token.create / token.revoke into a fresh registry, which refuses a
 * tampered entry. */
#include "mlreg/audit.h"
#include "mlreg/auth.h"
#include "mlreg/common.h"
#include "mlreg/registry.h"
#include "mlreg/tables.h"
#include "mlreg/time.h"
#include "mlreg/tokens.h"
#include "mlreg/sys/blob_backend.h"

#include "helpers.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stages[] = {"dev", "staging", "production"};
static th_registry fx;
static mlreg_auth *cfg;   /* the config: "root" (admin) with token "root-secret" */
static mlreg_auth *local; /* a config without tokens */

/* A fresh registry in fx (after th_registry_teardown()). */
static void setup_registry_only(void)
{
    th_registry_setup(&fx, "tokens", NULL);
}

static void setup(void)
{
    char hex[65], buf[256];
    json_t *t;

    setup_registry_only();
    ck_assert_int_eq(mlreg_auth_token_hash(hex, "root-secret"), 0);
    snprintf(buf, sizeof(buf), "[{\"name\":\"root\",\"sha256\":\"%s\",\"roles\":[\"admin\"]}]",
             hex);
    ck_assert_ptr_nonnull(t = json_loads(buf, 0, NULL));
    ck_assert_int_eq(mlreg_auth_new(&cfg, t, stages, 3), 0);
    json_decref(t);
    ck_assert_int_eq(mlreg_auth_new(&local, NULL, NULL, 0), 0);
}

static void teardown(void)
{
    mlreg_auth_free(cfg);
    mlreg_auth_free(local);
    cfg = local = NULL;
    th_registry_teardown(&fx);
}

static mlreg_tokens *toks(void)
{
    return mlreg_registry_tokens(fx.reg);
}

/* Creates token @p name with the JSON array @p roles and @p expires_in;
 * returns what mlreg_tokens_create() returns, the secret in *secret
 * (mlreg_tokens_secret_free) and the record in *rec (may be NULL). */
static int create(char **secret, json_t **rec, const mlreg_auth *auth, const char *name,
                  const char *roles, int64_t expires_in, const char *expires_at)
{
    json_t *r = json_loads(roles, 0, NULL), *out = NULL;
    mlreg_token_spec spec = {name, r, expires_in, expires_at, "root", auth, stages, 3};
    int error;

    ck_assert_ptr_nonnull(r);
    *secret = NULL;
    error = mlreg_tokens_create(&out, secret, toks(), &spec);
    json_decref(r);
    if (rec != NULL)
        *rec = out;
    else
        json_decref(out);
    return error;
}

/* Authenticates "Bearer @p secret" against @p auth and the runtime tokens:
 * the error, and the identity's name in @p name_out (64 bytes) on success. */
static int login(char name_out[64], const mlreg_auth *auth, const char *secret)
{
    const mlreg_identity *id = NULL;
    mlreg_identity *owned = NULL;
    char header[256];
    int error;

    snprintf(header, sizeof(header), "Bearer %s", secret);
    error = mlreg_auth_authenticate_with(&id, &owned, auth, header, mlreg_tokens_lookup, toks());
    if (error == 0) {
        snprintf(name_out, 64, "%s", mlreg_identity_name(id));
        ck_assert_ptr_eq(id, owned != NULL ? owned : id);
    }
    mlreg_identity_free(owned);
    return error;
}

/* The whole audit log as one string (entries joined). Caller frees. */
static char *audit_text(mlreg_registry *reg)
{
    json_t *page = NULL;
    char *all;

    ck_assert_int_eq(mlreg_audit_list(&page, mlreg_registry_meta(reg), 0, 1000), 0);
    all = json_dumps(json_object_get(page, "entries"), 0);
    json_decref(page);
    return all;
}

START_TEST(test_a_created_token_is_mlreg_and_256_random_bits_and_only_its_hash_is_kept)
{
    char *s1 = NULL, *s2 = NULL, hex[65], *log;
    json_t *rec = NULL;

    ck_assert_msg(create(&s1, &rec, cfg, "ci", "[\"push\",\"read\",\"push\"]", 0, NULL) == 0, "%s",
                  mlreg_error_last());
    ck_assert_int_eq(create(&s2, NULL, cfg, "ci2", "[\"read\"]", 0, NULL), 0);
    ck_assert_uint_eq(strlen(s1), 6 + 43);
    ck_assert_int_eq(strncmp(s1, "mlreg_", 6), 0);
    ck_assert_str_ne(s1, s2);
    ck_assert_str_eq(json_string_value(json_object_get(rec, "name")), "ci");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "created_by")), "root");
    ck_assert(json_is_null(json_object_get(rec, "expires")));
    ck_assert_ptr_null(json_object_get(rec, "sha256"));
    ck_assert_ptr_null(json_object_get(rec, "token"));
    ck_assert_uint_eq(json_array_size(json_object_get(rec, "roles")), 2); /* duplicate dropped */
    /* the log holds the hash, never the token */
    ck_assert_int_eq(mlreg_auth_token_hash(hex, s1), 0);
    log = audit_text(fx.reg);
    ck_assert_ptr_nonnull(strstr(log, hex));
    ck_assert_ptr_null(strstr(log, s1));
    ck_assert_ptr_null(strstr(log, s1 + 6));
    ck_assert_ptr_nonnull(strstr(log, "token.create"));
    free(log);
    json_decref(rec);
    mlreg_tokens_secret_free(s1);
    mlreg_tokens_secret_free(s2);
}
END_TEST

START_TEST(test_a_runtime_token_authenticates_after_the_config_and_holds_its_roles)
{
    char *s = NULL, who[64];
    const mlreg_identity *id = NULL;
    mlreg_identity *owned = NULL;
    char header[128];

    ck_assert_int_eq(create(&s, NULL, cfg, "vision-ci", "[\"push@vision\"]", 0, NULL), 0);
    ck_assert_int_eq(login(who, cfg, s), 0);
    ck_assert_str_eq(who, "vision-ci");
    ck_assert_int_eq(login(who, cfg, "root-secret"), 0);
    ck_assert_str_eq(who, "root");
    snprintf(header, sizeof(header), "Bearer %s", s);
    ck_assert_int_eq(
        mlreg_auth_authenticate_with(&id, &owned, cfg, header, mlreg_tokens_lookup, toks()), 0);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PUSH, NULL, "vision/det"), 0);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PUSH, NULL, "visionary"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_ADMIN, NULL, NULL), MLREG_EFORBIDDEN);
    mlreg_identity_free(owned);
    /* without the lookup, a runtime token is unknown */
    ck_assert_int_eq(mlreg_auth_authenticate(&id, cfg, header), MLREG_EAUTH);
    ck_assert_int_eq(login(who, cfg, "mlreg_not-a-token"), MLREG_EAUTH);
    ck_assert_str_eq(mlreg_error_last(), "invalid token");
    mlreg_tokens_secret_free(s);
}
END_TEST

/* Authenticates @p header as the Hub routes do (mlreg_auth_authenticate_hub()). */
static int login_hub(char name_out[64], const mlreg_auth *auth, const char *header)
{
    const mlreg_identity *id = NULL;
    mlreg_identity *owned = NULL;
    int error = mlreg_auth_authenticate_hub(&id, &owned, auth, header, mlreg_tokens_lookup, toks());

    if (error == 0) snprintf(name_out, 64, "%s", mlreg_identity_name(id));
    mlreg_identity_free(owned);
    return error;
}

START_TEST(test_the_hub_routes_take_a_runtime_token_after_hf_and_nothing_else_does)
{
    char *s = NULL, who[64], header[256], hex[65], buf[256], b64[128];
    mlreg_auth *hfcfg = NULL;
    json_t *t, *rev = NULL;

    ck_assert_int_eq(create(&s, NULL, cfg, "hf-reader", "[\"read\"]", 0, NULL), 0);
    snprintf(header, sizeof(header), "Bearer hf_%s", s);
    ck_assert_int_eq(login_hub(who, cfg, header), 0);
    ck_assert_str_eq(who, "hf-reader");
    /* elsewhere the hf_ form is no token */
    ck_assert_int_eq(login(who, cfg, header + 7), MLREG_EAUTH);
    /* the token as is, and the config's, on the Hub routes too */
    snprintf(header, sizeof(header), "Bearer %s", s);
    ck_assert_int_eq(login_hub(who, cfg, header), 0);
    ck_assert_str_eq(who, "hf-reader");
    ck_assert_int_eq(login_hub(who, cfg, "Bearer root-secret"), 0);
    ck_assert_str_eq(who, "root");
    /* over Basic (user:hf_token) */
    snprintf(buf, sizeof(buf), "x:hf_%s", s);
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)buf, strlen(buf),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(header, sizeof(header), "Basic %s", b64);
    ck_assert_int_eq(login_hub(who, cfg, header), 0);
    ck_assert_str_eq(who, "hf-reader");
    /* the prefix is dropped once, and only before mlreg_ */
    snprintf(header, sizeof(header), "Bearer hf_hf_%s", s);
    ck_assert_int_eq(login_hub(who, cfg, header), MLREG_EAUTH);
    ck_assert_str_eq(mlreg_error_last(), "invalid token");
    snprintf(header, sizeof(header), "Bearer hf_%s", s + 6);
    ck_assert_int_eq(login_hub(who, cfg, header), MLREG_EAUTH);
    ck_assert_int_eq(login_hub(who, cfg, "Bearer hf_mlreg_"), MLREG_EAUTH);
    ck_assert_int_eq(login_hub(who, cfg, "Bearer hf_"), MLREG_EAUTH);
    /* a config token that starts with hf_mlreg_ is matched as presented */
    ck_assert_int_eq(mlreg_auth_token_hash(hex, "hf_mlreg_config"), 0);
    snprintf(buf, sizeof(buf), "[{\"name\":\"cfg-hf\",\"sha256\":\"%s\",\"roles\":[\"read\"]}]",
             hex);
    ck_assert_ptr_nonnull(t = json_loads(buf, 0, NULL));
    ck_assert_int_eq(mlreg_auth_new(&hfcfg, t, stages, 3), 0);
    json_decref(t);
    ck_assert_int_eq(login_hub(who, hfcfg, "Bearer hf_mlreg_config"), 0);
    ck_assert_str_eq(who, "cfg-hf");
    mlreg_auth_free(hfcfg);
    /* a revoked token is unknown in either form */
    ck_assert_int_eq(mlreg_tokens_revoke(&rev, toks(), cfg, "hf-reader", "root"), 0);
    json_decref(rev);
    snprintf(header, sizeof(header), "Bearer hf_%s", s);
    ck_assert_int_eq(login_hub(who, cfg, header), MLREG_EAUTH);
    mlreg_tokens_secret_free(s);
}
END_TEST

START_TEST(test_names_roles_and_expiries_are_checked_before_anything_is_recorded)
{
    char *s = NULL, long_name[80];
    uint64_t before = 0, after = 0;
    mlreg_meta_txn *txn = NULL;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&before, txn), 0);
    mlreg_meta_txn_abort(txn);
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    ck_assert_int_eq(create(&s, NULL, cfg, "a/b", "[\"read\"]", 0, NULL), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "", "[\"read\"]", 0, NULL), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, ".x", "[\"read\"]", 0, NULL), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, long_name, "[\"read\"]", 0, NULL), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[]", 0, NULL), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[\"root\"]", 0, NULL), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[\"promote:prod\"]", 0, NULL), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "unknown stage 'prod'"));
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[\"push@a/\"]", 0, NULL), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[1]", 0, NULL), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[\"read\"]", -1, NULL), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[\"read\"]", MLREG_TOKENS_EXPIRES_MAX + 1, NULL),
                     MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[\"read\"]", 0, "yesterday"), MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[\"read\"]", 0, "2001-01-01T00:00:00Z"),
                     MLREG_EINVALID);
    ck_assert_int_eq(create(&s, NULL, cfg, "x", "[\"read\"]", 60, "2099-01-01T00:00:00Z"),
                     MLREG_EINVALID);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&after, txn), 0);
    mlreg_meta_txn_abort(txn);
    ck_assert_uint_eq(after, before);
}
END_TEST

START_TEST(test_a_name_taken_by_the_config_or_a_runtime_token_is_refused)
{
    char *s = NULL, *t = NULL;

    ck_assert_int_eq(create(&s, NULL, cfg, "root", "[\"read\"]", 0, NULL), MLREG_EEXISTS);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "config"));
    ck_assert_int_eq(create(&s, NULL, cfg, "ci", "[\"read\"]", 0, NULL), 0);
    ck_assert_int_eq(create(&t, NULL, cfg, "ci", "[\"admin\"]", 0, NULL), MLREG_EEXISTS);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "exists already"));
    ck_assert_ptr_null(t);
    mlreg_tokens_secret_free(s);
}
END_TEST

START_TEST(test_a_server_without_config_tokens_makes_none_and_stays_the_local_identity)
{
    char *s = NULL, who[64];

    ck_assert_int_eq(create(&s, NULL, local, "ci", "[\"read\"]", 0, NULL), MLREG_EDENIED);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "no tokens in its config"));
    /* one made while the config had tokens means nothing without them */
    ck_assert_int_eq(create(&s, NULL, cfg, "ci", "[\"read\"]", 0, NULL), 0);
    ck_assert_int_eq(login(who, local, s), 0);
    ck_assert_str_eq(who, MLREG_AUTH_LOCAL);
    mlreg_tokens_secret_free(s);
}
END_TEST

START_TEST(test_an_expired_token_is_refused_naming_its_expiry)
{
    char *s = NULL, who[64];
    json_t *rec = NULL, *list = NULL;
    const char *exp;
    int64_t sec = 0;

    ck_assert_int_eq(create(&s, &rec, cfg, "short", "[\"read\"]", 2, NULL), 0);
    exp = json_string_value(json_object_get(rec, "expires"));
    ck_assert_ptr_nonnull(exp);
    /* whole seconds, rounded up: never shorter than asked */
    ck_assert_ptr_null(strchr(exp, '.'));
    ck_assert_int_eq(mlreg_time_parse(&sec, NULL, exp), 0);
    ck_assert_int_ge(sec * 1000000000LL, mlreg_time_now_ns() + 1000000000LL);
    ck_assert_int_eq(login(who, cfg, s), 0);
    mlreg_time_advance(sec * 1000000000LL); /* the clock passes the expiry */
    ck_assert_int_eq(login(who, cfg, s), MLREG_EAUTH);
    ck_assert_msg(strstr(mlreg_error_last(), "token 'short' expired at ") != NULL &&
                      strstr(mlreg_error_last(), exp) != NULL,
                  "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_tokens_list(&list, toks(), cfg), 0);
    ck_assert(json_is_true(
        json_object_get(json_array_get(json_object_get(list, "tokens"), 0), "expired")));
    json_decref(list);
    json_decref(rec);
    mlreg_tokens_secret_free(s);
}
END_TEST

START_TEST(test_an_expiry_time_is_kept_rounded_up_to_a_second)
{
    char *s = NULL, at[MLREG_TIME_STRLEN];
    json_t *rec = NULL;
    int64_t sec = mlreg_time_now_ns() / 1000000000LL + 3600;

    mlreg_time_format_sec(at, sec, 5);
    ck_assert_int_eq(create(&s, &rec, cfg, "later", "[\"read\"]", 0, at), 0);
    mlreg_time_format_sec(at, sec + 1, 0);
    strcpy(strchr(at, '.'), "Z"); /* "...:SS.000000000Z" -> "...:SSZ" */
    ck_assert_str_eq(json_string_value(json_object_get(rec, "expires")), at);
    json_decref(rec);
    mlreg_tokens_secret_free(s);
}
END_TEST

START_TEST(test_a_revoked_token_is_unknown_and_its_name_free_again)
{
    char *s = NULL, *s2 = NULL, who[64], *log;
    json_t *out = NULL, *list = NULL;

    ck_assert_int_eq(create(&s, NULL, cfg, "ci", "[\"read\"]", 0, NULL), 0);
    ck_assert_int_eq(login(who, cfg, s), 0);
    ck_assert_int_eq(mlreg_tokens_revoke(&out, toks(), cfg, "ci", "root"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(out, "revoked_by")), "root");
    ck_assert_ptr_null(json_object_get(out, "sha256"));
    json_decref(out);
    ck_assert_int_eq(login(who, cfg, s), MLREG_EAUTH);
    ck_assert_str_eq(mlreg_error_last(), "invalid token");
    ck_assert_int_eq(mlreg_tokens_revoke(&out, toks(), cfg, "ci", "root"), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_tokens_revoke(&out, toks(), cfg, "root", "root"), MLREG_EDENIED);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "config"));
    ck_assert_int_eq(mlreg_tokens_revoke(&out, toks(), cfg, "../x", "root"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_tokens_list(&list, toks(), cfg), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(list, "tokens")), 1); /* root only */
    json_decref(list);
    ck_assert_int_eq(create(&s2, NULL, cfg, "ci", "[\"read\"]", 0, NULL), 0);
    ck_assert_int_eq(login(who, cfg, s), MLREG_EAUTH); /* the old secret stays dead */
    ck_assert_int_eq(login(who, cfg, s2), 0);
    log = audit_text(fx.reg);
    ck_assert_ptr_nonnull(strstr(log, "token.revoke"));
    ck_assert_ptr_null(strstr(log, s));
    ck_assert_ptr_null(strstr(log, s2));
    free(log);
    mlreg_tokens_secret_free(s);
    mlreg_tokens_secret_free(s2);
}
END_TEST

START_TEST(test_a_runtime_token_named_like_a_later_config_token_is_refused)
{
    char *s = NULL, who[64], hex[65], buf[256];
    mlreg_auth *later = NULL;
    json_t *t;

    ck_assert_int_eq(create(&s, NULL, cfg, "deploy", "[\"read\"]", 0, NULL), 0);
    ck_assert_int_eq(mlreg_auth_token_hash(hex, "other-secret"), 0);
    snprintf(buf, sizeof(buf), "[{\"name\":\"deploy\",\"sha256\":\"%s\",\"roles\":[\"admin\"]}]",
             hex);
    ck_assert_ptr_nonnull(t = json_loads(buf, 0, NULL));
    ck_assert_int_eq(mlreg_auth_new(&later, t, stages, 3), 0);
    json_decref(t);
    ck_assert_int_eq(login(who, later, s), MLREG_EAUTH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "has the name of a token in the config"));
    mlreg_auth_free(later);
    mlreg_tokens_secret_free(s);
}
END_TEST

START_TEST(test_list_shows_roles_and_last_use_but_no_hash_and_uses_reach_the_local_table)
{
    char *s = NULL, who[64], hex[65], *text;
    json_t *list = NULL, *ci;
    unsigned char raw[32];
    void *val = NULL;
    size_t vlen = 0;
    mlreg_meta_txn *txn = NULL;

    ck_assert_int_eq(create(&s, NULL, cfg, "ci", "[\"promote:staging\"]", 0, NULL), 0);
    ck_assert_int_eq(mlreg_tokens_list(&list, toks(), cfg), 0);
    ci = json_array_get(json_object_get(list, "tokens"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(ci, "name")), "ci");
    ck_assert(json_is_null(json_object_get(ci, "last_used")));
    json_decref(list);

    ck_assert_int_eq(login(who, cfg, s), 0);
    ck_assert_int_eq(mlreg_tokens_list(&list, toks(), cfg), 0);
    text = json_dumps(list, 0);
    ck_assert_int_eq(mlreg_auth_token_hash(hex, s), 0);
    ck_assert_ptr_null(strstr(text, hex));
    ck_assert_ptr_null(strstr(text, "sha256"));
    ck_assert_ptr_null(strstr(text, "mlreg_"));
    ck_assert_ptr_nonnull(strstr(text, "\"source\": \"config\""));
    ck_assert_ptr_nonnull(strstr(text, "[\"admin\"]"));
    free(text);
    ci = json_array_get(json_object_get(list, "tokens"), 0);
    ck_assert(json_is_string(json_object_get(ci, "last_used")));
    json_decref(list);

    /* the use is in memory only until a flush */
    ck_assert_int_eq(sodium_hex2bin(raw, 32, hex, 64, NULL, NULL, NULL), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_meta_get(&val, &vlen, txn, MLREG_DB_TOKEN_USAGE, raw, 32),
                     MLREG_ENOTFOUND);
    mlreg_meta_txn_abort(txn);
    ck_assert_int_eq(mlreg_tokens_flush_usage(toks(), 0), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_meta_get(&val, &vlen, txn, MLREG_DB_TOKEN_USAGE, raw, 32), 0);
    ck_assert_uint_eq(vlen, 8);
    free(val);
    mlreg_meta_txn_abort(txn);

    /* and it outlives the process: a reopened registry lists it */
    mlreg_registry_free(fx.reg);
    th_registry_open(&fx);
    ck_assert_int_eq(mlreg_tokens_list(&list, toks(), cfg), 0);
    ci = json_array_get(json_object_get(list, "tokens"), 0);
    ck_assert(json_is_string(json_object_get(ci, "last_used")));
    json_decref(list);
    ck_assert_int_eq(login(who, cfg, s), 0); /* and the token still works */
    mlreg_tokens_secret_free(s);
}
END_TEST

START_TEST(test_a_use_of_a_token_revoked_elsewhere_is_not_written)
{
    char *s = NULL, who[64], hex[65];
    unsigned char raw[32];
    mlreg_tokens *other = NULL;
    json_t *out = NULL;
    void *val = NULL;
    size_t vlen = 0;
    mlreg_meta_txn *txn = NULL;

    ck_assert_int_eq(create(&s, NULL, cfg, "ci", "[\"read\"]", 0, NULL), 0);
    ck_assert_int_eq(login(who, cfg, s), 0); /* remembered by toks() */
    /* another handle on the same table stands for another node */
    ck_assert_int_eq(mlreg_tokens_new(&other, mlreg_registry_meta(fx.reg)), 0);
    ck_assert_int_eq(mlreg_tokens_revoke(&out, other, cfg, "ci", "root"), 0);
    json_decref(out);
    mlreg_tokens_free(other);
    ck_assert_int_eq(mlreg_tokens_flush_usage(toks(), 1), 0);
    ck_assert_int_eq(mlreg_auth_token_hash(hex, s), 0);
    ck_assert_int_eq(sodium_hex2bin(raw, 32, hex, 64, NULL, NULL, NULL), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_meta_get(&val, &vlen, txn, MLREG_DB_TOKEN_USAGE, raw, 32),
                     MLREG_ENOTFOUND);
    mlreg_meta_txn_abort(txn);
    mlreg_tokens_secret_free(s);
}
END_TEST

/* A fresh registry sharing fx's blob store, in @p dir; the caller frees it. */
static mlreg_registry *fresh_registry(char dir[TH_DIR_MAX])
{
    mlreg_registry *dst = NULL;
    mlreg_registry_opts opts;
    mlreg_blob_backend *backend = NULL;

    th_tmpdir(dir, TH_DIR_MAX, "tokens-dst");
    ck_assert_int_eq(mlreg_blob_backend_fs_new(&backend, fx.dir), 0);
    memset(&opts, 0, sizeof(opts));
    opts.data_dir = dir;
    opts.map_size = 64u * 1024 * 1024;
    opts.backend = backend;
    ck_assert_int_eq(mlreg_registry_open(&dst, &opts), 0);
    return dst;
}

START_TEST(test_a_token_create_entry_with_a_bad_role_or_hash_stops_the_replay)
{
    static const char *const bad[][2] = {{"\"roles\":[\"read\"]", "\"roles\":[\"root\"]"},
                                         {"\"roles\":[\"read\"]", "\"roles\":[7]     "},
                                         {"\"sha256\":\"", "\"sha256\":\"X"}};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        char *s = NULL, *text = NULL, *fixed, *at, dir[TH_DIR_MAX];
        size_t len;
        uint64_t size = 0;
        unsigned char key[8];
        mlreg_meta_txn *txn = NULL;
        mlreg_registry *dst;

        th_registry_teardown(&fx);
        setup_registry_only();
        ck_assert_int_eq(create(&s, NULL, cfg, "ci", "[\"read\"]", 0, NULL), 0);
        mlreg_tokens_secret_free(s);
        ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 1), 0);
        ck_assert_int_eq(mlreg_audit_size_txn(&size, txn), 0);
        ck_assert_int_eq(mlreg_audit_entry_txn(&text, &len, txn, size - 1), 0);
        ck_assert_ptr_nonnull(at = strstr(text, bad[k][0]));
        ck_assert_ptr_nonnull(fixed = malloc(len + 16));
        memcpy(fixed, text, (size_t)(at - text));
        strcpy(fixed + (at - text), bad[k][1]);
        strcat(fixed, at + strlen(bad[k][0]));
        for (int b = 0; b < 8; b++)
            key[b] = (unsigned char)((size - 1) >> (56 - 8 * b));
        ck_assert_int_eq(
            mlreg_meta_put(txn, MLREG_DB_AUDIT, key, sizeof(key), fixed, strlen(fixed), 0), 0);
        ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
        free(text);
        free(fixed);
        dst = fresh_registry(dir);
        ck_assert_int_eq(mlreg_registry_replay(dst, mlreg_registry_meta(fx.reg)), MLREG_EINVALID);
        ck_assert_msg(strstr(mlreg_error_last(), "token.create") != NULL, "%s", mlreg_error_last());
        mlreg_registry_free(dst);
        th_rm_rf(dir);
    }
}
END_TEST

START_TEST(test_replaying_the_log_rebuilds_the_tokens_and_their_revocations)
{
    char *a = NULL, *b = NULL, *c = NULL, who[64], dst_dir[TH_DIR_MAX];
    json_t *out = NULL, *l1 = NULL, *l2 = NULL;
    mlreg_registry *dst = NULL, *src;
    char *t1, *t2;

    ck_assert_int_eq(create(&a, NULL, cfg, "a", "[\"read\"]", 0, NULL), 0);
    ck_assert_int_eq(
        create(&b, NULL, cfg, "b", "[\"push@vision\",\"approve:staging\"]", 3600, NULL), 0);
    ck_assert_int_eq(mlreg_tokens_revoke(&out, toks(), cfg, "a", "root"), 0);
    json_decref(out);
    ck_assert_int_eq(create(&c, NULL, cfg, "a", "[\"admin\"]", 0, NULL), 0);

    dst = fresh_registry(dst_dir);
    ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(fx.reg)) == 0, "%s",
                  mlreg_error_last());

    ck_assert_int_eq(mlreg_tokens_list(&l1, toks(), cfg), 0);
    ck_assert_int_eq(mlreg_tokens_list(&l2, mlreg_registry_tokens(dst), cfg), 0);
    t1 = json_dumps(l1, JSON_SORT_KEYS);
    t2 = json_dumps(l2, JSON_SORT_KEYS);
    ck_assert_str_eq(t1, t2);
    free(t1);
    free(t2);
    json_decref(l1);
    json_decref(l2);

    /* authentication on the rebuilt registry: b and the new a work, the old a does not */
    src = fx.reg;
    fx.reg = dst;
    ck_assert_int_eq(login(who, cfg, b), 0);
    ck_assert_str_eq(who, "b");
    ck_assert_int_eq(login(who, cfg, c), 0);
    ck_assert_int_eq(login(who, cfg, a), MLREG_EAUTH);
    fx.reg = src;

    mlreg_registry_free(dst);
    th_rm_rf(dst_dir);
    mlreg_tokens_secret_free(a);
    mlreg_tokens_secret_free(b);
    mlreg_tokens_secret_free(c);
}
END_TEST

static Suite *tokens_suite(void)
{
    Suite *s = suite_create("tokens");
    TCase *tc = tcase_create("tokens");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_a_created_token_is_mlreg_and_256_random_bits_and_only_its_hash_is_kept);
    tcase_add_test(tc, test_a_runtime_token_authenticates_after_the_config_and_holds_its_roles);
    tcase_add_test(tc, test_the_hub_routes_take_a_runtime_token_after_hf_and_nothing_else_does);
    tcase_add_test(tc, test_names_roles_and_expiries_are_checked_before_anything_is_recorded);
    tcase_add_test(tc, test_a_name_taken_by_the_config_or_a_runtime_token_is_refused);
    tcase_add_test(tc, test_a_server_without_config_tokens_makes_none_and_stays_the_local_identity);
    tcase_add_test(tc, test_an_expired_token_is_refused_naming_its_expiry);
    tcase_add_test(tc, test_an_expiry_time_is_kept_rounded_up_to_a_second);
    tcase_add_test(tc, test_a_revoked_token_is_unknown_and_its_name_free_again);
    tcase_add_test(tc, test_a_runtime_token_named_like_a_later_config_token_is_refused);
    tcase_add_test(tc,
                   test_list_shows_roles_and_last_use_but_no_hash_and_uses_reach_the_local_table);
    tcase_add_test(tc, test_a_use_of_a_token_revoked_elsewhere_is_not_written);
    tcase_add_test(tc, test_replaying_the_log_rebuilds_the_tokens_and_their_revocations);
    tcase_add_test(tc, test_a_token_create_entry_with_a_bad_role_or_hash_stops_the_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tokens_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
