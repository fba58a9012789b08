/* check_evaluations.c: independent evaluations (registry/evaluations.c) over a
 * real registry (fs backend, LMDB) in a temp dir: the envelope checks
 * (forged signature, wrong subject, wrong predicate or payload type, a key
 * outside the keyring, truncated, oversized and malformed bodies), storage
 * with the key's role, the lookup the gates call (newest evaluation by a
 * valid evaluator key), the eval report's digests, and the replay of the
 * log rebuilding the evaluations table byte for byte. */
#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/dsse.h"
#include "mlreg/evaluations.h"
#include "mlreg/keyring.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"
#include "mlreg/sign.h"
#include "mlreg/sys/blob_backend.h"
#include "mlreg/tables.h"
#include "mlreg/time.h"

#include "../../registry/evaluations_internal.h"
#include "helpers.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL "team/clf"
#define DS    "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define CODE  "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define REPORT                                                                                     \
    "{\"metrics\":{\"accuracy\":0.93,\"slices\":{\"en\":{\"f1\":0.8}}},\"dataset\":\"holdout\","   \
    "\"dataset_digest\":\"" DS "\",\"eval_code_digest\":\"" CODE "\"}"

static th_registry fx;
static mlreg_registry *reg;
static mlreg_seckey *ev_sk, *appr_sk, *stranger_sk;
static char d1[MLREG_DIGEST_STRLEN + 1], d2[MLREG_DIGEST_STRLEN + 1];
static char dst_dir[TH_DIR_MAX];

static void trust(const mlreg_seckey *sk, const char *name, const char *role)
{
    mlreg_pubkey pk;
    char b64[MLREG_PUBKEY_B64LEN + 1];
    json_t *obj = NULL;
    int created = 0;

    mlreg_seckey_pubkey(&pk, sk);
    mlreg_pubkey_base64(b64, &pk);
    ck_assert_msg(mlreg_keyring_trust(&obj, &created, mlreg_registry_keyring(reg), name, role, b64,
                                      strlen(b64), "tester") == 0,
                  "trust: %s", mlreg_error_last());
    json_decref(obj);
}

static void push(char digest[MLREG_DIGEST_STRLEN + 1], const char *version)
{
    mlreg_manifest_put_result res;
    char *body = th_release_body(reg, MODEL, version, NULL, "{\"metrics\":{\"accuracy\":0.9}}");

    ck_assert_msg(mlreg_registry_manifest_put(&res, reg, MODEL, version, MLREG_MT_OCI_MANIFEST,
                                              body, strlen(body)) == 0,
                  "push: %s", mlreg_error_last());
    mlreg_digest_format(digest, &res.digest);
    free(body);
}

static void setup(void)
{
    th_registry_setup(&fx, "evaluations", NULL);
    reg = fx.reg;
    ck_assert_int_eq(mlreg_seckey_generate(&ev_sk), 0);
    ck_assert_int_eq(mlreg_seckey_generate(&appr_sk), 0);
    ck_assert_int_eq(mlreg_seckey_generate(&stranger_sk), 0);
    trust(ev_sk, "nightly", MLREG_KEY_ROLE_EVALUATOR);
    trust(appr_sk, "approver-1", "approver");
    push(d1, "1.0");
    push(d2, "2.0");
    dst_dir[0] = '\0';
}

static void teardown(void)
{
    mlreg_seckey_free(ev_sk);
    mlreg_seckey_free(appr_sk);
    mlreg_seckey_free(stranger_sk);
    ev_sk = appr_sk = stranger_sk = NULL;
    reg = NULL;
    th_registry_teardown(&fx);
    if (dst_dir[0]) th_rm_rf(dst_dir);
}

/* ---- envelopes -------------------------------------------------------------- */

/* The envelope of a genuine statement about MODEL@version (digest @p d)
 * with @p report, signed by @p sk at @p when ns; caller frees. */
static char *envelope(const mlreg_seckey *sk, const char *version, const char *d,
                      const char *report, int64_t when)
{
    char *st = NULL, *env = NULL;
    size_t len = 0;

    ck_assert_msg(
        mlreg_evaluation_statement(&st, &len, MODEL, version, d, report, strlen(report), when) == 0,
        "statement: %s", mlreg_error_last());
    ck_assert_int_eq(mlreg_dsse_sign(&env, MLREG_DSSE_INTOTO_TYPE, st, len, sk), 0);
    free(st);
    return env;
}

/* The envelope of the statement @p st (any JSON) with payload type @p type. */
static char *envelope_of(const mlreg_seckey *sk, const char *type, json_t *st)
{
    char *text = json_dumps(st, JSON_COMPACT), *env = NULL;

    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(mlreg_dsse_sign(&env, type, text, strlen(text), sk), 0);
    free(text);
    json_decref(st);
    return env;
}

/* A statement about MODEL@1.0 (digest d1) with these parts (new reference). */
static json_t *statement(const char *type, const char *predicate_type, const char *name,
                         const char *sha, json_t *report)
{
    return json_pack("{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:o, s:s}}", "_type", type, "subject",
                     "name", name, "digest", "sha256", sha, "predicateType", predicate_type,
                     "predicate", "report", report, "evaluated_at", "2026-12-01T00:00:00Z");
}

static json_t *report_json(void)
{
    json_t *r = json_loads(REPORT, 0, NULL);
    ck_assert_ptr_nonnull(r);
    return r;
}

static int attest(json_t **out, int *created, const char *version, const char *env, size_t len)
{
    json_t *res = NULL;
    int c = -1, rc = mlreg_evaluation_attest(&res, &c, reg, MODEL, version, env, len, "tester");

    if (rc < 0) ck_assert_ptr_null(res);
    if (created) *created = c;
    if (out)
        *out = res;
    else
        json_decref(res);
    return rc;
}

static size_t count(const char *version)
{
    json_t *l = NULL;
    size_t n;

    ck_assert_msg(mlreg_evaluations_list(&l, reg, MODEL, version) == 0, "%s", mlreg_error_last());
    n = json_array_size(json_object_get(l, "evaluations"));
    json_decref(l);
    return n;
}

static uint64_t log_size(mlreg_registry *r)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(r), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    mlreg_meta_txn_abort(txn);
    return n;
}

/* The refusal of @p env for @p version: its code, nothing stored, no entry. */
static void refused(const char *version, const char *env, size_t len, int code, const char *says)
{
    uint64_t before = log_size(reg);
    size_t n = count(version);

    ck_assert_int_eq(attest(NULL, NULL, version, env, len), code);
    ck_assert_msg(strstr(mlreg_error_last(), says) != NULL, "message '%s' lacks '%s'",
                  mlreg_error_last(), says);
    ck_assert_uint_eq(count(version), n);
    ck_assert_uint_eq(log_size(reg), before);
}

/* The newest evaluation of @p d that counts with these digests (NULL:
 * any), or NULL. */
static mlreg_evaluation *newest_on(mlreg_registry *r, const char *d, const char *ds,
                                   const char *code)
{
    mlreg_meta_txn *txn = NULL;
    mlreg_evaluation *e = NULL;
    int rc;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(r), 0), 0);
    rc = mlreg_registry__evaluation_newest(&e, mlreg_registry_keyring(r), txn, d + 7, ds, code);
    mlreg_meta_txn_abort(txn);
    ck_assert_msg(rc == 0 || rc == MLREG_ENOTFOUND, "newest: %d %s", rc, mlreg_error_last());
    return rc == 0 ? e : NULL;
}

static mlreg_evaluation *newest(mlreg_registry *r, const char *d)
{
    return newest_on(r, d, NULL, NULL);
}

static double metric(const mlreg_evaluation *e, const char *name)
{
    for (size_t i = 0; i < e->n_metrics; i++)
        if (!strcmp(e->metrics[i].name, name)) return e->metrics[i].value;
    ck_abort_msg("no metric %s", name);
    return 0;
}

/* ---- tests ------------------------------------------------------------------- */

START_TEST(test_an_evaluator_key_attests_and_the_evaluation_is_stored_listed_and_referred)
{
    char *env = envelope(ev_sk, "1.0", d1, REPORT, 1000);
    json_t *res = NULL, *l = NULL, *item;
    int created = 0;

    ck_assert_msg(attest(&res, &created, "1.0", env, strlen(env)) == 0, "%s", mlreg_error_last());
    ck_assert_int_eq(created, 1);
    ck_assert(json_is_true(json_object_get(res, "counts")));
    ck_assert_str_eq(json_string_value(json_object_get(res, "role")), "evaluator");
    ck_assert_str_eq(json_string_value(json_object_get(res, "digest")), d1);
    ck_assert_int_eq(mlreg_evaluations_list(&l, reg, MODEL, "1.0"), 0);
    item = json_array_get(json_object_get(l, "evaluations"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(item, "key_name")), "nightly");
    ck_assert_str_eq(json_string_value(json_object_get(item, "dataset_digest")), DS);
    ck_assert_str_eq(json_string_value(json_object_get(item, "eval_code_digest")), CODE);
    ck_assert(json_real_value(json_object_get(json_object_get(item, "metrics"), "accuracy")) ==
              0.93);
    ck_assert(json_is_real(json_object_get(json_object_get(item, "metrics"), "slices.en.f1")));
    ck_assert_str_eq(json_string_value(json_object_get(item, "referrer")),
                     json_string_value(json_object_get(res, "referrer")));
    /* the referrer is a stored manifest naming the release */
    {
        mlreg_manifest_data *m = NULL;
        const char *ref = json_string_value(json_object_get(res, "referrer"));
        json_t *root;

        ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, MODEL, ref), 0);
        root = json_loadb(m->body, m->len, 0, NULL);
        ck_assert_str_eq(json_string_value(json_object_get(root, "artifactType")),
                         MLREG_ARTIFACT_EVALUATION);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(root, "subject"), "digest")), d1);
        json_decref(root);
        mlreg_manifest_data_free(m);
    }
    ck_assert_uint_eq(count("2.0"), 0);
    json_decref(res);
    json_decref(l);
    free(env);
}
END_TEST

START_TEST(test_the_same_envelope_twice_stores_nothing_new)
{
    char *env = envelope(ev_sk, "1.0", d1, REPORT, 1000);
    int created = -1;
    uint64_t n;

    ck_assert_int_eq(attest(NULL, &created, "1.0", env, strlen(env)), 0);
    n = log_size(reg);
    ck_assert_int_eq(attest(NULL, &created, "1.0", env, strlen(env)), 0);
    ck_assert_int_eq(created, 0);
    ck_assert_uint_eq(count("1.0"), 1);
    ck_assert_uint_eq(log_size(reg), n);
    free(env);
}
END_TEST

START_TEST(test_a_forged_payload_is_refused)
{
    char *env = envelope(ev_sk, "1.0", d1, REPORT, 1000), *forged, *text;
    json_t *j = json_loads(env, 0, NULL), *st;
    char b64[8192];

    /* the statement with a better accuracy, under the genuine signature */
    {
        char *p = NULL;
        size_t n = 0;
        mlreg_pubkey pk;

        mlreg_seckey_pubkey(&pk, ev_sk);
        ck_assert_int_eq(mlreg_dsse_verify(NULL, (unsigned char **)&p, &n, env, strlen(env), &pk),
                         0);
        st = json_loadb(p, n, 0, NULL);
        free(p);
    }
    json_object_set_new(json_object_get(json_object_get(st, "predicate"), "report"), "metrics",
                        json_pack("{s:f}", "accuracy", 0.99));
    text = json_dumps(st, JSON_COMPACT);
    sodium_bin2base64(b64, sizeof(b64), (unsigned char *)text, strlen(text),
                      sodium_base64_VARIANT_ORIGINAL);
    json_object_set_new(j, "payload", json_string(b64));
    forged = json_dumps(j, JSON_COMPACT);
    refused("1.0", forged, strlen(forged), MLREG_EMISMATCH, "no valid signature by key");
    json_decref(j);
    json_decref(st);
    free(text);
    free(forged);
    free(env);
}
END_TEST

START_TEST(test_a_statement_about_another_release_is_refused)
{
    char *env = envelope(ev_sk, "1.0", d1, REPORT, 1000), *renamed;

    refused("2.0", env, strlen(env), MLREG_EMISMATCH, "not release team/clf@2.0");
    /* the right digest under another name is refused too */
    renamed = envelope_of(ev_sk, MLREG_DSSE_INTOTO_TYPE,
                          statement(MLREG_INTOTO_STATEMENT_TYPE, MLREG_EVALUATION_PREDICATE,
                                    MODEL "@9.9", d1 + 7, report_json()));
    refused("1.0", renamed, strlen(renamed), MLREG_EMISMATCH, "names subject");
    free(renamed);
    free(env);
}
END_TEST

START_TEST(test_wrong_predicate_statement_or_payload_types_are_refused)
{
    char *a = envelope_of(ev_sk, MLREG_DSSE_INTOTO_TYPE,
                          statement(MLREG_INTOTO_STATEMENT_TYPE, MLREG_PROMOTION_PREDICATE,
                                    MODEL "@1.0", d1 + 7, report_json()));
    char *b = envelope_of(ev_sk, MLREG_DSSE_INTOTO_TYPE,
                          statement("https://in-toto.io/Statement/v0.1", MLREG_EVALUATION_PREDICATE,
                                    MODEL "@1.0", d1 + 7, report_json()));
    char *c = envelope_of(ev_sk, "application/json",
                          statement(MLREG_INTOTO_STATEMENT_TYPE, MLREG_EVALUATION_PREDICATE,
                                    MODEL "@1.0", d1 + 7, report_json()));
    char *d = envelope_of(ev_sk, MLREG_DSSE_INTOTO_TYPE,
                          statement(MLREG_INTOTO_STATEMENT_TYPE, MLREG_EVALUATION_PREDICATE,
                                    MODEL "@1.0", d1 + 7, json_pack("{s:s}", "note", "x")));

    refused("1.0", a, strlen(a), MLREG_EINVALID, "predicateType must be");
    refused("1.0", b, strlen(b), MLREG_EINVALID, "_type must be");
    refused("1.0", c, strlen(c), MLREG_EINVALID, "payloadType must be");
    refused("1.0", d, strlen(d), MLREG_EINVALID, "has no metric");
    free(a);
    free(b);
    free(c);
    free(d);
}
END_TEST

START_TEST(test_a_key_outside_the_keyring_is_refused)
{
    char *env = envelope(stranger_sk, "1.0", d1, REPORT, 1000);

    refused("1.0", env, strlen(env), MLREG_EINVALID, "not in the registry's keyring");
    free(env);
}
END_TEST

START_TEST(test_truncated_oversized_and_malformed_envelopes_are_refused)
{
    char *env = envelope(ev_sk, "1.0", d1, REPORT, 1000), *big, *two;
    size_t bigsz = MLREG_EVALUATION_MAX_BYTES + 1;
    json_t *j;

    refused("1.0", env, strlen(env) / 2, MLREG_EINVALID, "malformed dsse envelope");
    refused("1.0", env, 0, MLREG_EINVALID, "empty");
    refused("1.0", "[]", 2, MLREG_EINVALID, "not a JSON object");
    {
        const char *none = "{\"payload\":\"\",\"payloadType\":\"x\",\"signatures\":[]}";

        refused("1.0", none, strlen(none), MLREG_EINVALID, "exactly one");
    }
    big = malloc(bigsz);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', bigsz);
    refused("1.0", big, bigsz, MLREG_ETOOBIG, "at most");
    /* two signatures, and a key id that is not one */
    j = json_loads(env, 0, NULL);
    json_array_append(json_object_get(j, "signatures"),
                      json_array_get(json_object_get(j, "signatures"), 0));
    two = json_dumps(j, JSON_COMPACT);
    refused("1.0", two, strlen(two), MLREG_EINVALID, "exactly one");
    free(two);
    json_array_remove(json_object_get(j, "signatures"), 1);
    json_object_set_new(json_array_get(json_object_get(j, "signatures"), 0), "keyid",
                        json_string("nope"));
    two = json_dumps(j, JSON_COMPACT);
    refused("1.0", two, strlen(two), MLREG_EINVALID, "keyid");
    free(two);
    json_decref(j);
    ck_assert_int_eq(attest(NULL, NULL, "9.9", env, strlen(env)), MLREG_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "release team/clf@9.9 not found"));
    free(big);
    free(env);
}
END_TEST

START_TEST(test_report_digests_are_checked_where_the_report_is_parsed)
{
    mlreg_eval_report *r = NULL;
    const char *bad[] = {
        "{\"metrics\":{\"a\":1},\"dataset_digest\":\"sha256:ABC\"}",
        "{\"metrics\":{\"a\":1},\"dataset_digest\":\"sha256:" DS "\"}",
        "{\"metrics\":{\"a\":1},\"eval_code_digest\":\"SHA256:"
        "2222222222222222222222222222222222222222222222222222222222222222\"}",
        "{\"metrics\":{\"a\":1},\"eval_code_digest\":\"sha256:"
        "222222222222222222222222222222222222222222222222222222222222222A\"}",
        "{\"metrics\":{\"a\":1},\"dataset_digest\":7}",
    };
    char *env;
    json_t *rep;

    ck_assert_int_eq(mlreg_eval_report_parse(&r, REPORT, strlen(REPORT)), 0);
    ck_assert_str_eq(r->dataset_digest, DS);
    ck_assert_str_eq(r->eval_code_digest, CODE);
    mlreg_eval_report_free(r);
    r = NULL;
    ck_assert_int_eq(mlreg_eval_report_parse(&r, "{\"a\":1}", 7), 0);
    ck_assert_ptr_null(r->dataset_digest);
    ck_assert_ptr_null(r->eval_code_digest);
    mlreg_eval_report_free(r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = NULL;
        ck_assert_int_eq(mlreg_eval_report_parse(&r, bad[i], strlen(bad[i])), MLREG_EINVALID);
        ck_assert_msg(strstr(mlreg_error_last(), "must be a string \"sha256:") != NULL, "%s",
                      mlreg_error_last());
        ck_assert_ptr_null(r);
    }
    /* a predicate naming another dataset digest than its report */
    rep = report_json();
    {
        json_t *st = statement(MLREG_INTOTO_STATEMENT_TYPE, MLREG_EVALUATION_PREDICATE,
                               MODEL "@1.0", d1 + 7, rep);
        json_object_set_new(json_object_get(st, "predicate"), "dataset_digest", json_string(CODE));
        env = envelope_of(ev_sk, MLREG_DSSE_INTOTO_TYPE, st);
    }
    refused("1.0", env, strlen(env), MLREG_EINVALID, "differs from the report's");
    free(env);
}
END_TEST

START_TEST(test_other_roles_are_stored_but_only_the_newest_valid_evaluator_counts)
{
    char *e1 = envelope(ev_sk, "1.0", d1, REPORT, 1000);
    char *e2 = envelope(ev_sk, "1.0", d1, "{\"metrics\":{\"accuracy\":0.95}}", 2000);
    char *ea = envelope(appr_sk, "1.0", d1, "{\"metrics\":{\"accuracy\":0.99}}", 3000);
    json_t *res = NULL, *obj = NULL;
    mlreg_evaluation *e;
    mlreg_pubkey pk;
    char id[MLREG_KEYID_HEXLEN + 1];

    ck_assert_ptr_null(newest(reg, d1));
    ck_assert_int_eq(attest(&res, NULL, "1.0", ea, strlen(ea)), 0);
    /* stored, with its role, trusted, but not counting */
    ck_assert(!json_is_true(json_object_get(res, "counts")));
    ck_assert(json_is_true(json_object_get(res, "trusted_at_attach")));
    ck_assert_str_eq(json_string_value(json_object_get(res, "role")), "approver");
    json_decref(res);
    ck_assert_ptr_null(newest(reg, d1));

    ck_assert_int_eq(attest(NULL, NULL, "1.0", e1, strlen(e1)), 0);
    e = newest(reg, d1);
    ck_assert_ptr_nonnull(e);
    ck_assert(metric(e, "accuracy") == 0.93);
    ck_assert(metric(e, "slices.en.f1") == 0.8);
    ck_assert_str_eq(e->dataset_digest, DS);
    ck_assert_str_eq(e->eval_code_digest, CODE);
    ck_assert_str_eq(e->dataset, "holdout");
    ck_assert_str_eq(e->key_name, "nightly");
    mlreg_seckey_pubkey(&pk, ev_sk);
    mlreg_keyid_format(id, &pk.id);
    ck_assert_str_eq(e->key_id, id);
    {
        char when[MLREG_TIME_STRLEN];

        mlreg_time_format(when, 1000);
        ck_assert_str_eq(e->evaluated_at, when);
    }
    mlreg_registry__evaluation_free(e);

    ck_assert_int_eq(attest(NULL, NULL, "1.0", e2, strlen(e2)), 0);
    e = newest(reg, d1);
    ck_assert(metric(e, "accuracy") == 0.95); /* the newest, not the approver's 0.99 */
    ck_assert_str_eq(e->dataset_digest, "");  /* that report names none */
    ck_assert_uint_eq(e->n_metrics, 1);
    mlreg_registry__evaluation_free(e);
    ck_assert_ptr_null(newest(reg, d2));
    /* on the dataset of the first: that one, not the newest */
    e = newest_on(reg, d1, DS, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert(metric(e, "accuracy") == 0.93);
    mlreg_registry__evaluation_free(e);
    e = newest_on(reg, d1, DS, CODE);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->n_metrics, 2);
    mlreg_registry__evaluation_free(e);
    ck_assert_ptr_null(newest_on(reg, d1, CODE, NULL));
    ck_assert_ptr_null(newest_on(reg, d1, DS, DS));
    /* "" is "names none": the newest (no digests) matches it, the first
     * (DS, CODE) matches neither "" for the dataset nor for the code */
    e = newest_on(reg, d1, "", "");
    ck_assert_ptr_nonnull(e);
    ck_assert(metric(e, "accuracy") == 0.95);
    mlreg_registry__evaluation_free(e);
    ck_assert_ptr_null(newest_on(reg, d1, DS, ""));

    /* retired: evaluations attached before keep counting */
    ck_assert_int_eq(
        mlreg_keyring_revoke(&obj, mlreg_registry_keyring(reg), id, "retired", NULL, "tester"), 0);
    json_decref(obj);
    e = newest(reg, d1);
    ck_assert_ptr_nonnull(e);
    mlreg_registry__evaluation_free(e);
    /* compromised: none counts any more, the listing says why */
    ck_assert_int_eq(
        mlreg_keyring_revoke(&obj, mlreg_registry_keyring(reg), id, "compromised", NULL, "tester"),
        0);
    json_decref(obj);
    ck_assert_ptr_null(newest(reg, d1));
    ck_assert_int_eq(mlreg_evaluations_list(&res, reg, MODEL, "1.0"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(res, "evaluations"), 2), "status")),
                     "compromised");
    json_decref(res);
    /* a compromised key's new envelope is stored as not trusted */
    {
        char *e3 = envelope(ev_sk, "1.0", d1, REPORT, 4000);

        ck_assert_int_eq(attest(&res, NULL, "1.0", e3, strlen(e3)), 0);
        ck_assert(!json_is_true(json_object_get(res, "trusted_at_attach")));
        ck_assert(!json_is_true(json_object_get(res, "counts")));
        json_decref(res);
        free(e3);
    }
    free(e1);
    free(e2);
    free(ea);
}
END_TEST

START_TEST(test_a_withdrawn_release_takes_evaluations)
{
    char *env = envelope(ev_sk, "1.0", d1, REPORT, 1000);
    json_t *obj = NULL;
    mlreg_policy *pol = NULL;
    mlreg_auth *auth = NULL;

    th_use_gates(&pol, "{}");
    ck_assert_msg(mlreg_release_withdraw(&obj, reg, pol, th_identity(&auth, "ci", "[\"admin\"]"),
                                         MODEL, "1.0", "bad data", 0) == 0,
                  "%s", mlreg_error_last());
    json_decref(obj);
    mlreg_policy_free(pol);
    mlreg_auth_free(auth);
    ck_assert_int_eq(attest(NULL, NULL, "1.0", env, strlen(env)), 0);
    ck_assert_uint_eq(count("1.0"), 1);
    free(env);
}
END_TEST

static char *rows(mlreg_registry *r, mlreg_db db);

START_TEST(test_a_purged_release_keeps_its_evaluations_listed_and_takes_no_more)
{
    char *e1 = envelope(ev_sk, "1.0", d1, REPORT, 1000);
    char *e2 = envelope(ev_sk, "1.0", d1, REPORT, 2000);
    json_t *obj = NULL;
    mlreg_policy *pol = NULL;
    mlreg_auth *auth = NULL;
    mlreg_evaluation *e;

    ck_assert_int_eq(attest(NULL, NULL, "1.0", e1, strlen(e1)), 0);
    th_use_gates(&pol, "{}");
    ck_assert_msg(mlreg_release_purge(&obj, reg, pol, th_identity(&auth, "ci", "[\"admin\"]"),
                                      MODEL, "1.0", "bad data") == 0,
                  "%s", mlreg_error_last());
    json_decref(obj);
    ck_assert_uint_eq(count("1.0"), 1);
    ck_assert_int_eq(attest(NULL, NULL, "1.0", e2, strlen(e2)), MLREG_EGONE);
    ck_assert_uint_eq(count("1.0"), 1);
    /* the envelope stays in the store: the evaluation is still the gates' */
    e = newest(reg, d1);
    ck_assert_ptr_nonnull(e);
    mlreg_registry__evaluation_free(e);
    /* and the log, purge and collection included, replays */
    {
        mlreg_registry *dst = NULL;
        mlreg_registry_opts opts;
        mlreg_blob_backend *backend = NULL;
        char *a, *b;

        th_tmpdir(dst_dir, sizeof(dst_dir), "evaluations-dst");
        ck_assert_int_eq(mlreg_blob_backend_fs_new(&backend, fx.dir), 0);
        memset(&opts, 0, sizeof(opts));
        opts.data_dir = dst_dir;
        opts.map_size = 64u * 1024 * 1024;
        opts.backend = backend;
        ck_assert_msg(mlreg_registry_open(&dst, &opts) == 0, "open: %s", mlreg_error_last());
        ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(reg)) == 0, "replay: %s",
                      mlreg_error_last());
        a = rows(reg, MLREG_DB_EVALUATIONS);
        b = rows(dst, MLREG_DB_EVALUATIONS);
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
        mlreg_registry_free(dst);
    }
    mlreg_policy_free(pol);
    mlreg_auth_free(auth);
    free(e1);
    free(e2);
}
END_TEST

/* the rows of table @p db as one JSON text (caller frees) */
static int rows_cb(const void *k, size_t klen, const void *v, size_t vlen, void *payload)
{
    json_t *a = payload;
    char *kh = malloc(2 * klen + 1);

    sodium_bin2hex(kh, 2 * klen + 1, k, klen);
    json_array_append_new(a, json_pack("[s, s%]", kh, (const char *)v, vlen));
    free(kh);
    return 0;
}

static char *rows(mlreg_registry *r, mlreg_db db)
{
    mlreg_meta_txn *txn = NULL;
    json_t *a = json_array();
    char *text;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(r), 0), 0);
    ck_assert_int_ge(mlreg_meta_iter(txn, db, NULL, 0, NULL, 0, rows_cb, a), 0);
    mlreg_meta_txn_abort(txn);
    text = json_dumps(a, 0);
    json_decref(a);
    return text;
}

START_TEST(test_replaying_the_log_rebuilds_the_evaluations_byte_for_byte)
{
    char *e1 = envelope(ev_sk, "1.0", d1, REPORT, 1000);
    char *ea = envelope(appr_sk, "2.0", d2, REPORT, 2000);
    mlreg_registry *dst = NULL;
    mlreg_registry_opts opts;
    mlreg_blob_backend *backend = NULL;
    static const mlreg_db dbs[] = {MLREG_DB_EVALUATIONS, MLREG_DB_MANIFESTS, MLREG_DB_REFERRERS,
                                   MLREG_DB_REPO_BLOBS, MLREG_DB_AUDIT};
    mlreg_evaluation *e;
    json_t *obj = NULL;
    char id[MLREG_KEYID_HEXLEN + 1];
    mlreg_pubkey pk;

    ck_assert_int_eq(attest(NULL, NULL, "1.0", e1, strlen(e1)), 0);
    ck_assert_int_eq(attest(NULL, NULL, "2.0", ea, strlen(ea)), 0);
    /* the evaluator key leaves the keyring after attesting: the replay
     * takes the key from the entry, not from the keyring */
    mlreg_seckey_pubkey(&pk, ev_sk);
    mlreg_keyid_format(id, &pk.id);
    ck_assert_int_eq(
        mlreg_keyring_revoke(&obj, mlreg_registry_keyring(reg), id, "retired", NULL, "tester"), 0);
    json_decref(obj);

    th_tmpdir(dst_dir, sizeof(dst_dir), "evaluations-dst");
    ck_assert_int_eq(mlreg_blob_backend_fs_new(&backend, fx.dir), 0);
    memset(&opts, 0, sizeof(opts));
    opts.data_dir = dst_dir;
    opts.map_size = 64u * 1024 * 1024;
    opts.backend = backend;
    ck_assert_msg(mlreg_registry_open(&dst, &opts) == 0, "open: %s", mlreg_error_last());
    ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(reg)) == 0, "replay: %s",
                  mlreg_error_last());
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        char *a = rows(reg, dbs[i]), *b = rows(dst, dbs[i]);

        ck_assert_msg(!strcmp(a, b), "table %u differs:\n  live   %.600s\n  replay %.600s", dbs[i],
                      a, b);
        free(a);
        free(b);
    }
    {
        char *t = rows(dst, MLREG_DB_EVALUATIONS);

        ck_assert_ptr_nonnull(strstr(t, "approver"));
        free(t);
    }
    e = newest(dst, d1);
    ck_assert_ptr_nonnull(e); /* retired after it was attached: it counts */
    ck_assert(metric(e, "accuracy") == 0.93);
    mlreg_registry__evaluation_free(e);
    ck_assert_ptr_null(newest(dst, d2));
    mlreg_registry_free(dst);
    free(e1);
    free(ea);
}
END_TEST

static Suite *evaluations_suite(void)
{
    Suite *s = suite_create("evaluations");
    TCase *tc = tcase_create("evaluations");

    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc,
                   test_an_evaluator_key_attests_and_the_evaluation_is_stored_listed_and_referred);
    tcase_add_test(tc, test_the_same_envelope_twice_stores_nothing_new);
    tcase_add_test(tc, test_a_forged_payload_is_refused);
    tcase_add_test(tc, test_a_statement_about_another_release_is_refused);
    tcase_add_test(tc, test_wrong_predicate_statement_or_payload_types_are_refused);
    tcase_add_test(tc, test_a_key_outside_the_keyring_is_refused);
    tcase_add_test(tc, test_truncated_oversized_and_malformed_envelopes_are_refused);
    tcase_add_test(tc, test_report_digests_are_checked_where_the_report_is_parsed);
    tcase_add_test(tc, test_other_roles_are_stored_but_only_the_newest_valid_evaluator_counts);
    tcase_add_test(tc, test_a_withdrawn_release_takes_evaluations);
    tcase_add_test(tc, test_a_purged_release_keeps_its_evaluations_listed_and_takes_no_more);
    tcase_add_test(tc, test_replaying_the_log_rebuilds_the_evaluations_byte_for_byte);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed;
    SRunner *sr = srunner_create(evaluations_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
