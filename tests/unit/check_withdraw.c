/* check_withdraw.c: withdrawing a release and taking it back
 * (registry/withdraw.c) over a real registry (fs backend, LMDB) in a
 * mkdtemp dir: the state in the release record and in every answer that
 * shows a release, the refusals it causes (promotion, approval, rollback to
 * it), the stages a held release is rolled back from in one change, the
 * roles, and hostile reasons. */
#include "mlreg/audit.h"
#include "mlreg/auth.h"
#include "mlreg/common.h"
#include "mlreg/json_out.h"
#include "mlreg/gates.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"
#include "mlreg/time.h"

#include "helpers.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL "team/clf"

static th_registry fx;
static mlreg_registry *reg;
static mlreg_policy *pol;
static mlreg_auth *auth;

/* Each token string is its name. */
static const char *const token_roles[][2] = {
    {"ci", "[\"push\"]"},
    {"stager", "[\"promote:staging\"]"},
    {"both", "[\"promote:staging\",\"promote:production\"]"},
    {"other", "[\"promote:staging@team/clf2\",\"admin@team/clf2\"]"},
    {"approver", "[\"approve:production\"]"},
    {"root", "[\"admin\"]"},
};

static void setup(void)
{
    char buf[2048], hex[65];
    size_t n = 0;
    json_t *t;

    th_registry_setup(&fx, "withdraw", NULL);
    reg = fx.reg;
    th_use_gates(&pol, "{}");
    n += (size_t)snprintf(buf, sizeof(buf), "[");
    for (size_t i = 0; i < sizeof(token_roles) / sizeof(token_roles[0]); i++) {
        ck_assert_int_eq(mlreg_auth_token_hash(hex, token_roles[i][0]), 0);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                              "%s{\"name\":\"%s\",\"sha256\":\"%s\",\"roles\":%s}", i ? "," : "",
                              token_roles[i][0], hex, token_roles[i][1]);
    }
    snprintf(buf + n, sizeof(buf) - n, "]");
    ck_assert_ptr_nonnull(t = json_loads(buf, 0, NULL));
    ck_assert_msg(
        mlreg_auth_new(&auth, t, mlreg_policy_stages(pol), mlreg_policy_stage_count(pol)) == 0,
        "%s", mlreg_error_last());
    json_decref(t);
}

static void teardown(void)
{
    mlreg_auth_free(auth);
    auth = NULL;
    mlreg_policy_free(pol);
    pol = NULL;
    reg = NULL;
    th_registry_teardown(&fx);
}

static const mlreg_identity *as(const char *name)
{
    const mlreg_identity *id = NULL;
    char hdr[64];

    snprintf(hdr, sizeof(hdr), "Bearer %s", name);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, auth, hdr), 0);
    return id;
}

static void push(const char *version)
{
    mlreg_manifest_put_result res;
    char *body = th_release_body(reg, MODEL, version, NULL, "{\"metrics\":{\"accuracy\":0.9}}");

    ck_assert_msg(mlreg_registry_manifest_put_as(&res, reg, MODEL, version, MLREG_MT_OCI_MANIFEST,
                                                 body, strlen(body), "ci") == 0,
                  "push: %s", mlreg_error_last());
    free(body);
}

static int promote(json_t **out, const char *version, const char *stage, int dry_run)
{
    mlreg_promote_req req = {MODEL, version, stage, "test", dry_run, "ci"};
    json_t *res = NULL;
    int rc = mlreg_promote(&res, reg, pol, &req);

    if (out)
        *out = res;
    else
        json_decref(res);
    return rc;
}

static int withdraw(json_t **out, const char *who, const char *version, const char *reason,
                    int rollback)
{
    json_t *res = NULL;
    int rc = mlreg_release_withdraw(&res, reg, pol, as(who), MODEL, version, reason, rollback);

    if (rc < 0) ck_assert_ptr_null(res);
    if (out)
        *out = res;
    else
        json_decref(res);
    return rc;
}

static int unwithdraw(const char *who, const char *version, const char *reason)
{
    json_t *res = NULL;
    int rc = mlreg_release_unwithdraw(&res, reg, as(who), MODEL, version, reason);

    if (rc == 0) ck_assert(json_is_null(json_object_get(res, "withdrawn")));
    json_decref(res);
    return rc;
}

/* The "withdrawn" member of the release's API answer (a new reference). */
static json_t *withdrawn_of(const char *version)
{
    json_t *r = NULL, *w;

    ck_assert_msg(mlreg_registry_release_get(&r, reg, MODEL, version) == 0, "%s",
                  mlreg_error_last());
    w = json_incref(json_object_get(r, "withdrawn"));
    ck_assert_ptr_nonnull(w);
    json_decref(r);
    return w;
}

/* mlreg_stage_get() of what @p stage holds now, checked against the
 * rendered answer the server sends (mlreg_stage_get_text(), kept between
 * commits): asked twice, the second time from the kept answer, both must
 * be the JSON answer's bytes, whatever commit came before. */
static int stage_now(json_t **out, const char *stage)
{
    char *text = NULL, *again = NULL, *want;
    size_t len = 0, len2 = 0;
    int rc = mlreg_stage_get(out, reg, pol, MODEL, stage, -1);

    ck_assert_int_eq(mlreg_stage_get_text(&text, &len, reg, pol, MODEL, stage), rc);
    ck_assert_int_eq(mlreg_stage_get_text(&again, &len2, reg, pol, MODEL, stage), rc);
    if (rc == 0) {
        ck_assert_ptr_nonnull(want = mlreg_json_dumps(*out, JSON_COMPACT));
        ck_assert_str_eq(text, want);
        ck_assert_str_eq(again, want);
        ck_assert_uint_eq(len, strlen(want));
        ck_assert_uint_eq(len2, len);
        free(want);
    } else {
        ck_assert_ptr_null(text);
    }
    free(text);
    free(again);
    return rc;
}

static const char *holder(const char *stage)
{
    static char v[256];
    json_t *s = NULL;
    int rc = stage_now(&s, stage);

    if (rc == MLREG_ENOTFOUND) return "";
    ck_assert_msg(rc == 0, "%s", mlreg_error_last());
    snprintf(v, sizeof(v), "%s", json_string_value(json_object_get(s, "version")));
    json_decref(s);
    return v;
}

static uint64_t audit_size(void)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    mlreg_meta_txn_abort(txn);
    return n;
}

/* Audit entry @p seq, parsed (a new reference). */
static json_t *entry(uint64_t seq)
{
    mlreg_meta_txn *txn = NULL;
    char *text = NULL;
    size_t len = 0;
    json_t *e;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_entry_txn(&text, &len, txn, seq), 0);
    mlreg_meta_txn_abort(txn);
    ck_assert_ptr_nonnull(e = json_loadb(text, len, 0, NULL));
    free(text);
    return e;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

#define ck_code(rc, code, needle)                                                                  \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        ck_assert_msg(rc_ == (code), "got %d (%s), want %d", rc_, mlreg_error_last(), (code));     \
        ck_assert_msg(strstr(mlreg_error_last(), (needle)) != NULL, "message '%s' lacks '%s'",     \
                      mlreg_error_last(), (needle));                                               \
    } while (0)

START_TEST(test_withdraw_records_its_state_and_unwithdraw_takes_it_back)
{
    json_t *res = NULL, *w, *e;
    uint64_t n;

    push("1.0");
    w = withdrawn_of("1.0");
    ck_assert(json_is_null(w));
    json_decref(w);
    ck_assert_int_eq(withdraw(&res, "stager", "1.0", "trained on the wrong split", 0), 0);
    n = audit_size();
    w = json_object_get(res, "withdrawn");
    ck_assert_str_eq(str(w, "reason"), "trained on the wrong split");
    ck_assert_str_eq(str(w, "by"), "stager");
    ck_assert_int_eq(json_integer_value(json_object_get(w, "seq")), (json_int_t)(n - 1));
    ck_assert_uint_eq(json_array_size(json_object_get(res, "rolled_back")), 0);
    json_decref(res);
    w = withdrawn_of("1.0");
    ck_assert_str_eq(str(w, "reason"), "trained on the wrong split");
    ck_assert_ptr_nonnull(str(w, "time"));
    json_decref(w);
    e = entry(n - 1);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_RELEASE_WITHDRAW);
    ck_assert_str_eq(str(e, "actor"), "stager");
    ck_assert_str_eq(str(e, "reason"), "trained on the wrong split");
    ck_assert_str_eq(str(json_object_get(e, "subject"), "version"), "1.0");
    json_decref(e);

    /* twice is a conflict naming who withdrew it; nothing is recorded */
    ck_code(withdraw(NULL, "root", "1.0", "again", 0), MLREG_EDENIED, "withdrawn by stager");
    ck_assert_uint_eq(audit_size(), n);
    /* only admin takes it back */
    ck_code(unwithdraw("stager", "1.0", "fixed"), MLREG_EFORBIDDEN, "admin");
    ck_code(unwithdraw("other", "1.0", "fixed"), MLREG_EFORBIDDEN, "admin");
    ck_assert_int_eq(unwithdraw("root", "1.0", "the split was right after all"), 0);
    w = withdrawn_of("1.0");
    ck_assert(json_is_null(w));
    json_decref(w);
    e = entry(n);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_RELEASE_UNWITHDRAW);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(e, "details"), "withdrawn_seq")),
        (json_int_t)(n - 1));
    json_decref(e);
    ck_code(unwithdraw("root", "1.0", "again"), MLREG_EDENIED, "is not withdrawn");
    ck_assert_uint_eq(audit_size(), n + 1);
}
END_TEST

START_TEST(test_a_withdrawn_release_is_neither_promoted_nor_approved)
{
    json_t *res = NULL, *ap = NULL;
    int created = 0;
    uint64_t n;

    push("1.0");
    ck_assert_int_eq(withdraw(NULL, "root", "1.0", "leaks test data", 0), 0);
    /* a dry run shows the refusal and records nothing */
    n = audit_size();
    ck_code(promote(&res, "1.0", "staging", 1), MLREG_EGATE, "withdrawn by root");
    ck_assert(json_is_false(json_object_get(res, "passed")));
    ck_assert_str_eq(str(json_object_get(res, "withdrawn"), "reason"), "leaks test data");
    json_decref(res);
    ck_assert_uint_eq(audit_size(), n);
    /* a promotion is a recorded refusal that moves nothing */
    ck_code(promote(&res, "1.0", "staging", 0), MLREG_EGATE, "leaks test data");
    json_decref(res);
    ck_assert_str_eq(holder("staging"), "");
    {
        json_t *e = entry(n);
        ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_PROMOTE);
        ck_assert_str_eq(str(e, "result"), MLREG_AUDIT_REFUSED);
        ck_assert_ptr_nonnull(strstr(str(e, "reason"), "withdrawn by root"));
        json_decref(e);
    }
    ck_code(mlreg_approve(&ap, &created, reg, pol, MODEL, "1.0", "production", NULL, "approver"),
            MLREG_EDENIED, "cannot be approved");
    ck_assert_ptr_null(ap);
    /* taken back, it is promoted again */
    ck_assert_int_eq(unwithdraw("root", "1.0", "cleaned"), 0);
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0), 0);
    ck_assert_str_eq(holder("staging"), "1.0");
}
END_TEST

START_TEST(test_a_held_release_is_refused_naming_its_stages_unless_rolled_back)
{
    json_t *res = NULL, *r, *e;
    uint64_t n;

    push("1.0");
    push("2.0");
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0), 0);
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "production", 0), 0);
    n = audit_size();
    ck_code(withdraw(NULL, "both", "2.0", "regression", 0), MLREG_EDENIED,
            "holds stages staging, production");
    ck_assert_uint_eq(audit_size(), n);
    ck_assert_int_eq(withdraw(&res, "both", "2.0", "regression", 1), 0);
    ck_assert_str_eq(holder("staging"), "1.0");
    ck_assert_str_eq(holder("production"), "1.0");
    r = json_object_get(res, "rolled_back");
    ck_assert_uint_eq(json_array_size(r), 2);
    ck_assert_str_eq(str(json_array_get(r, 0), "stage"), "staging");
    ck_assert_str_eq(str(json_array_get(r, 0), "to_version"), "1.0");
    ck_assert_str_eq(str(json_array_get(r, 1), "from_version"), "2.0");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(r, 1), "seq")),
                     (json_int_t)(n + 1));
    json_decref(res);
    /* one change: two rollback entries, then the withdrawal naming them */
    ck_assert_uint_eq(audit_size(), n + 3);
    for (uint64_t s = n; s < n + 2; s++) {
        e = entry(s);
        ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_ROLLBACK);
        ck_assert_str_eq(str(e, "reason"), "regression");
        ck_assert_str_eq(str(e, "actor"), "both");
        json_decref(e);
    }
    e = entry(n + 2);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_RELEASE_WITHDRAW);
    ck_assert_uint_eq(
        json_array_size(json_object_get(json_object_get(e, "details"), "rolled_back")), 2);
    json_decref(e);
    /* the stage answers of a past time show what held it was withdrawn */
    {
        json_t *h = NULL, *st = NULL;
        ck_assert_int_eq(mlreg_stage_history(&h, reg, pol, MODEL, "production", 0, 0), 0);
        json_t *third = json_array_get(json_object_get(h, "history"), 1); /* 2.0 moved in */
        const char *t = str(third, "time");
        int64_t sec = 0;
        int32_t nsec = 0;
        ck_assert_int_eq(mlreg_time_parse(&sec, &nsec, t), 0);
        ck_assert_int_eq(
            mlreg_stage_get(&st, reg, pol, MODEL, "production", sec * 1000000000 + nsec), 0);
        ck_assert_str_eq(str(st, "version"), "2.0");
        ck_assert_str_eq(str(json_object_get(st, "withdrawn"), "reason"), "regression");
        json_decref(st);
        json_decref(h);
    }
}
END_TEST

/* The stage answer the server keeps rendered follows a withdrawal that
 * rolls its holder back at once. */
START_TEST(test_the_stage_answer_follows_a_withdrawal_at_once)
{
    json_t *st = NULL;
    char *text = NULL;
    size_t len = 0;

    push("1.0");
    push("2.0");
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0), 0);
    ck_assert_int_eq(stage_now(&st, "staging"), 0);
    ck_assert_str_eq(str(st, "version"), "2.0");
    json_decref(st);
    ck_assert_int_eq(withdraw(NULL, "root", "2.0", "label leak", 1), 0);
    ck_assert_int_eq(stage_now(&st, "staging"), 0);
    ck_assert_str_eq(str(st, "version"), "1.0");
    ck_assert(json_is_null(json_object_get(st, "withdrawn")));
    json_decref(st);
    /* an unknown stage is refused, with nothing answered */
    ck_code(mlreg_stage_get_text(&text, &len, reg, pol, MODEL, "nope"), MLREG_EINVALID, "");
    ck_assert_ptr_null(text);
}
END_TEST

START_TEST(test_withdrawing_a_held_release_needs_promote_for_every_stage_holding_it)
{
    push("1.0");
    push("2.0");
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0), 0);
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "production", 0), 0);
    ck_code(withdraw(NULL, "stager", "2.0", "x", 1), MLREG_EFORBIDDEN, "role promote:production");
    ck_code(withdraw(NULL, "ci", "2.0", "x", 1), MLREG_EFORBIDDEN,
            "needs roles promote:staging, promote:production");
    ck_code(withdraw(NULL, "other", "2.0", "x", 1), MLREG_EFORBIDDEN, "may not withdraw");
    ck_assert_str_eq(holder("production"), "2.0");
    /* a release no stage holds: promote to some stage of the model */
    push("3.0");
    ck_code(withdraw(NULL, "ci", "3.0", "x", 0), MLREG_EFORBIDDEN, "no stage holds it");
    ck_code(withdraw(NULL, "other", "3.0", "x", 0), MLREG_EFORBIDDEN, "no stage holds it");
    ck_code(withdraw(NULL, "approver", "3.0", "x", 0), MLREG_EFORBIDDEN, "no stage holds it");
    ck_assert_int_eq(withdraw(NULL, "stager", "3.0", "x", 0), 0);
    /* admin implies every stage */
    ck_assert_int_eq(withdraw(NULL, "root", "2.0", "x", 1), 0);
}
END_TEST

START_TEST(test_a_stage_that_cannot_roll_back_refuses_the_whole_withdrawal)
{
    json_t *res = NULL, *w;
    uint64_t n;

    push("1.0");
    push("2.0");
    /* staging: 1.0 then 2.0; production: 2.0 only (nothing to go back to) */
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "production", 0), 0);
    n = audit_size();
    ck_code(withdraw(NULL, "root", "2.0", "bad", 1), MLREG_EDENIED,
            "stage production cannot roll back");
    /* staging rolled back first, in the same change: undone with it */
    ck_assert_str_eq(holder("staging"), "2.0");
    ck_assert_str_eq(holder("production"), "2.0");
    ck_assert_uint_eq(audit_size(), n);
    w = withdrawn_of("2.0");
    ck_assert(json_is_null(w));
    json_decref(w);
    /* a stage is never rolled back to a withdrawn release */
    ck_assert_int_eq(withdraw(NULL, "root", "1.0", "older problem", 0), 0);
    ck_code(mlreg_rollback(&res, reg, pol, MODEL, "staging", NULL, NULL, "root"), MLREG_EDENIED,
            "1.0 was withdrawn by root");
    ck_assert_ptr_null(res);
    ck_code(withdraw(NULL, "root", "2.0", "bad", 1), MLREG_EDENIED,
            "stage staging cannot roll back");
    ck_assert_str_eq(holder("staging"), "2.0");
}
END_TEST

START_TEST(test_bad_reasons_names_and_unknown_releases_are_clear_errors)
{
    char big[MLREG_REASON_MAX + 2];
    json_t *res = NULL;

    push("1.0");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_code(withdraw(NULL, "root", "1.0", NULL, 0), MLREG_EINVALID, "reason is required");
    ck_code(withdraw(NULL, "root", "1.0", "", 0), MLREG_EINVALID, "reason is required");
    ck_code(withdraw(NULL, "root", "1.0", "   ", 0), MLREG_EINVALID, "reason is required");
    ck_code(withdraw(NULL, "root", "1.0", big, 0), MLREG_EINVALID, "longer than 1024 bytes");
    ck_code(withdraw(NULL, "root", "1.0", "bad\x1b[31m", 0), MLREG_EINVALID, "control character");
    ck_code(withdraw(NULL, "root", "1.0", "two\nlines", 0), MLREG_EINVALID, "control character");
    ck_code(withdraw(NULL, "root", "1.0",
                     "\xc2\x9b"
                     "31m",
                     0),
            MLREG_EINVALID, "control character");
    ck_code(withdraw(NULL, "root", "1.0", "bad \xff utf-8", 0), MLREG_EINVALID, "UTF-8");
    ck_code(withdraw(NULL, "root", "9.9", "gone", 0), MLREG_ENOTFOUND, "release team/clf@9.9");
    ck_code(mlreg_release_withdraw(&res, reg, pol, as("root"), MODEL, "../x", "r", 0),
            MLREG_EINVALID, "");
    ck_code(mlreg_release_withdraw(&res, reg, pol, as("root"), "Bad Name", "1.0", "r", 0),
            MLREG_EINVALID, "");
    ck_code(mlreg_release_withdraw(&res, reg, pol, NULL, MODEL, "1.0", "r", 0), MLREG_EINVALID,
            "identity");
    ck_code(unwithdraw("root", "1.0", ""), MLREG_EINVALID, "reason is required");
    ck_code(unwithdraw("root", "9.9", "x"), MLREG_ENOTFOUND, "not found");
    ck_assert_ptr_null(res);
    /* 1024 bytes of non-ASCII text are fine */
    {
        char ok[MLREG_REASON_MAX + 1];
        for (size_t i = 0; i + 2 <= MLREG_REASON_MAX; i += 2)
            memcpy(ok + i, "\xc3\xa9", 2);
        ok[MLREG_REASON_MAX] = '\0';
        ck_assert_int_eq(withdraw(NULL, "root", "1.0", ok, 0), 0);
        /* and its refused promotion keeps every character of it */
        ck_code(promote(NULL, "1.0", "staging", 0), MLREG_EGATE, "withdrawn");
    }
}
END_TEST

START_TEST(test_listings_show_the_withdrawn_state)
{
    json_t *l = NULL, *m = NULL, *rels;

    push("1.0");
    push("2.0");
    ck_assert_int_eq(withdraw(NULL, "root", "2.0", "broken", 0), 0);
    ck_assert_int_eq(mlreg_registry_model_get(&m, reg, MODEL), 0);
    rels = json_object_get(m, "releases");
    ck_assert_uint_eq(json_array_size(rels), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *r = json_array_get(rels, i);
        if (!strcmp(str(r, "version"), "2.0"))
            ck_assert_str_eq(str(json_object_get(r, "withdrawn"), "reason"), "broken");
        else
            ck_assert(json_is_null(json_object_get(r, "withdrawn")));
    }
    json_decref(m);
    ck_assert_int_eq(mlreg_registry_models_list(&l, reg), 0);
    ck_assert_str_eq(
        str(json_object_get(
                json_object_get(json_array_get(json_object_get(l, "models"), 0), "latest"),
                "withdrawn"),
            "by"),
        "root");
    json_decref(l);
}
END_TEST

static Suite *withdraw_suite(void)
{
    Suite *s = suite_create("withdraw");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_withdraw_records_its_state_and_unwithdraw_takes_it_back);
    tcase_add_test(tc, test_a_withdrawn_release_is_neither_promoted_nor_approved);
    tcase_add_test(tc, test_a_held_release_is_refused_naming_its_stages_unless_rolled_back);
    tcase_add_test(tc, test_withdrawing_a_held_release_needs_promote_for_every_stage_holding_it);
    tcase_add_test(tc, test_the_stage_answer_follows_a_withdrawal_at_once);
    tcase_add_test(tc, test_a_stage_that_cannot_roll_back_refuses_the_whole_withdrawal);
    tcase_add_test(tc, test_bad_reasons_names_and_unknown_releases_are_clear_errors);
    tcase_add_test(tc, test_listings_show_the_withdrawn_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(withdraw_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
