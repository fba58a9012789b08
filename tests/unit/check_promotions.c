/* check_promotions.c: stages, promotions, approvals, rollback, image
 * bindings and resolution at a time (registry/promotions.c) over a real
 * registry (fs backend, LMDB) in a mkdtemp dir, with releases pushed through
 * mlreg_registry_manifest_put_as() and signatures made with the signing
 * library by a key of the keyring. */
#include "../../registry/promotions_internal.h"
#include "../../registry/registry_internal.h"
#include "mlreg/audit.h"
#include "mlreg/auth.h"
#include "mlreg/common.h"
#include "mlreg/gates.h"
#include "mlreg/keyring.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"
#include "mlreg/sign.h"
#include "mlreg/signatures.h"

#include "helpers.h"

#include <check.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL "team/clf"

static th_registry fx; /* reg and sk are fx.reg and fx.sk */
static mlreg_registry *reg;
static mlreg_policy *pol;
static mlreg_seckey *sk; /* in the keyring as "release-bot" */
static mlreg_auth *auth; /* tokens named after their token string: see as() */

/* The tokens of the image-binding tests: each token string is its name. */
static const char *const token_roles[][2] = {
    {"ci", "[\"push\"]"},
    {"prod", "[\"promote:production\"]"},
    {"stager", "[\"promote:staging\"]"},
    {"both", "[\"promote:staging\",\"promote:production\"]"},
    {"other", "[\"promote:production@team/clf2\",\"push@team/clf2\"]"},
    {"root", "[\"admin\"]"},
    {"glass", "[\"promote:production\",\"override:production@team\"]"},
};

static void auth_setup(void)
{
    char buf[2048], hex[65];
    size_t n = 0;
    json_t *t;

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

/* The identity of token @p name. */
static const mlreg_identity *as(const char *name)
{
    const mlreg_identity *id = NULL;
    char hdr[64];

    if (auth == NULL) auth_setup();
    snprintf(hdr, sizeof(hdr), "Bearer %s", name);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, auth, hdr), 0);
    return id;
}

static void setup(void)
{
    th_registry_setup(&fx, "promotions", NULL);
    reg = fx.reg;
    sk = fx.sk;
    pol = NULL;
}

static void teardown(void)
{
    mlreg_auth_free(auth);
    auth = NULL;
    mlreg_policy_free(pol);
    pol = NULL;
    reg = NULL;
    sk = NULL;
    th_registry_teardown(&fx);
}

/* Pushes MODEL@version by @p pusher with an eval report {"metrics":{"accuracy":acc},
 * "dataset":dataset} (acc < 0: no eval report). Returns the manifest body
 * (caller frees) and its digest in @p digest. */
static char *push(const char *version, double acc, const char *dataset, const char *pusher,
                  char digest[MLREG_DIGEST_STRLEN + 1])
{
    mlreg_manifest_put_result res;
    char report[256];
    char *body;

    if (dataset)
        snprintf(report, sizeof(report), "{\"metrics\":{\"accuracy\":%.6f},\"dataset\":\"%s\"}",
                 acc, dataset);
    else
        snprintf(report, sizeof(report), "{\"metrics\":{\"accuracy\":%.6f}}", acc);
    body = th_release_body(reg, MODEL, version, NULL, acc >= 0 ? report : NULL);
    ck_assert_msg(mlreg_registry_manifest_put_as(&res, reg, MODEL, version, MLREG_MT_OCI_MANIFEST,
                                                 body, strlen(body), pusher) == 0,
                  "push: %s", mlreg_error_last());
    if (digest) mlreg_digest_format(digest, &res.digest);
    return body;
}

static void push_simple(const char *version, double acc)
{
    free(push(version, acc, "val", "ci", NULL));
}

/* Signs MODEL@version (manifest @p body, digest @p digest) with @p key,
 * whose public key is @p pub, and attaches the signature. */
static void sign_release_with(mlreg_seckey *key, const mlreg_pubkey *pub, const char *version,
                              const char *body, const char *digest)
{
    char comment[512], *sig = NULL, b64[MLREG_PUBKEY_B64LEN + 1];
    json_t *res = NULL;
    int created;

    snprintf(comment, sizeof(comment), "mlreg release model=%s version=%s digest=%s", MODEL,
             version, digest);
    ck_assert_int_eq(mlreg_sign(&sig, key, body, strlen(body), comment, NULL), 0);
    mlreg_pubkey_base64(b64, pub);
    ck_assert_msg(mlreg_signature_attach(&res, &created, reg, MODEL, version, sig, strlen(sig), b64,
                                         strlen(b64), "ci") == 0,
                  "attach: %s", mlreg_error_last());
    json_decref(res);
    free(sig);
}

static void sign_release(const char *version, const char *body, const char *digest)
{
    sign_release_with(sk, &fx.keys[0].pubkey, version, body, digest);
}

/* Promotes and returns the error code; *out (may be NULL) gets the body. */
static int promote(json_t **out, const char *version, const char *stage, int dry_run,
                   const char *actor)
{
    mlreg_promote_req req = {MODEL, version, stage, "test", dry_run, actor};
    json_t *res = NULL;
    int rc = mlreg_promote(&res, reg, pol, &req);

    if (rc < 0 && rc != MLREG_EGATE) ck_assert_ptr_null(res);
    if (rc == 0 || rc == MLREG_EGATE) ck_assert_ptr_nonnull(res);
    if (out)
        *out = res;
    else
        json_decref(res);
    return rc;
}

/* What @p stage holds now (th_stage_now(): the kept text checked too). */
static int stage_now(json_t **out, const char *stage)
{
    return th_stage_now(out, reg, pol, MODEL, stage);
}

/* The version stage holds now, or "" when empty. Static buffer. */
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

static size_t n_promotions(void)
{
    json_t *l = NULL;
    size_t n;

    ck_assert_int_eq(mlreg_promotions_list(&l, reg, MODEL, 0, 0), 0);
    n = json_array_size(json_object_get(l, "promotions"));
    json_decref(l);
    return n;
}

static const char *row_detail(json_t *res, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(res, "rules"), i), "detail"));
}

#define ck_code(rc, code, needle)                                                                  \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        ck_assert_msg(rc_ == (code), "got %d (%s), want %d", rc_, mlreg_error_last(), (code));     \
        ck_assert_msg(strstr(mlreg_error_last(), (needle)) != NULL, "message '%s' lacks '%s'",     \
                      mlreg_error_last(), (needle));                                               \
    } while (0)

/* ---- tests ----------------------------------------------------------------------- */

/* The names of mlreg_stage_tags_list(MODEL, n, last) joined by ','; *more
 * gets the flag. Static buffer. */
static const char *stage_tags(int n, const char *last, int *more)
{
    static char got[512];
    json_t *res = NULL, *t;
    size_t i, len = 0;

    got[0] = '\0';
    *more = -1;
    ck_assert_msg(mlreg_stage_tags_list(&res, more, reg, pol, MODEL, n, last) == 0, "%s",
                  mlreg_error_last());
    ck_assert_str_eq(json_string_value(json_object_get(res, "name")), MODEL);
    json_array_foreach(json_object_get(res, "tags"), i, t) len +=
        (size_t)snprintf(got + len, sizeof(got) - len, "%s%s", i ? "," : "", json_string_value(t));
    json_decref(res);
    return got;
}

START_TEST(test_tag_listing_adds_the_stages_holding_a_release_and_pages_the_merged_list)
{
    json_t *stages = json_pack("[s,s,s]", "dev", "staging", "production");
    int more;

    th_use_gates(&pol, "{}");
    push_simple("1.0", 0.9);
    push_simple("2.0", 0.9);
    ck_assert_str_eq(stage_tags(-1, NULL, &more), "1.0,2.0");
    ck_assert_int_eq(more, 0);
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0, "ci"), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "production", 0, "ci"), 0);
    /* dev is empty: not a tag anyone can pull, not listed */
    ck_assert_str_eq(stage_tags(-1, NULL, &more), "1.0,2.0,production,staging");
    ck_assert_int_eq(more, 0);
    /* pages of 1 and 3 cross the boundary between tags and stage names */
    ck_assert_str_eq(stage_tags(3, NULL, &more), "1.0,2.0,production");
    ck_assert_int_eq(more, 1);
    ck_assert_str_eq(stage_tags(3, "production", &more), "staging");
    ck_assert_int_eq(more, 0);
    ck_assert_str_eq(stage_tags(1, "2.0", &more), "production");
    ck_assert_int_eq(more, 1);
    ck_assert_str_eq(stage_tags(2, "2.0", &more), "production,staging");
    ck_assert_int_eq(more, 0);
    ck_assert_str_eq(stage_tags(0, NULL, &more), "");
    ck_assert_int_eq(more, 1);
    /* a name between the stage names that is neither still pages */
    ck_assert_str_eq(stage_tags(-1, "qa", &more), "staging");
    ck_assert_int_eq(more, 0);
    ck_assert_str_eq(stage_tags(-1, "zzz", &more), "");
    ck_assert_int_eq(more, 0);
    /* a tag pushed under a name that is a stage of a later config is listed
     * once: release "qa" is pushed while the stages are dev, staging,
     * production; the policy below has a stage "qa" */
    push_simple("qa", 0.9);
    json_decref(stages);
    mlreg_policy_free(pol);
    pol = NULL;
    stages = json_pack("[s,s,s]", "qa", "staging", "production");
    ck_assert_int_eq(mlreg_policy_parse(&pol, stages, NULL, NULL), 0);
    /* "dev" held nothing anyway; "qa" is a tag and now a stage that holds nothing */
    ck_assert_str_eq(stage_tags(-1, NULL, &more), "1.0,2.0,production,qa,staging");
    ck_assert_int_eq(promote(NULL, "1.0", "qa", 0, "ci"), 0);
    ck_assert_str_eq(stage_tags(-1, NULL, &more), "1.0,2.0,production,qa,staging");
    ck_assert_str_eq(stage_tags(1, "production", &more), "qa");
    ck_assert_int_eq(more, 1);
    ck_assert_str_eq(stage_tags(1, "qa", &more), "staging");
    ck_assert_int_eq(more, 0);
    /* a policy without staging: its pointer stays stored, but it is no tag */
    json_decref(stages);
    stages = json_pack("[s,s]", "qa", "production");
    mlreg_policy_free(pol);
    pol = NULL;
    ck_assert_int_eq(mlreg_policy_parse(&pol, stages, NULL, NULL), 0);
    ck_assert_str_eq(stage_tags(-1, NULL, &more), "1.0,2.0,production,qa");
    json_decref(stages);
    /* hostile input */
    {
        json_t *out = NULL;
        ck_assert_int_eq(mlreg_stage_tags_list(&out, &more, reg, pol, "no/such", -1, NULL),
                         MLREG_ENOTFOUND);
        ck_assert_int_eq(mlreg_stage_tags_list(&out, &more, reg, pol, "Bad Name", -1, NULL),
                         MLREG_EINVALID);
        ck_assert_int_eq(mlreg_stage_tags_list(&out, &more, reg, pol, MODEL, -1, "a/b"),
                         MLREG_EINVALID);
        ck_assert_ptr_null(out);
    }
}
END_TEST

START_TEST(test_a_passing_promotion_moves_the_stage_and_is_recorded)
{
    json_t *res = NULL, *h = NULL, *l = NULL;

    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85}]}");
    push_simple("1.0", 0.9);
    ck_assert_int_eq(promote(&res, "1.0", "staging", 0, "alice"), 0);
    ck_assert(json_is_true(json_object_get(res, "passed")));
    ck_assert(json_is_true(json_object_get(res, "moved")));
    ck_assert(json_is_null(json_object_get(res, "baseline")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(res, "promotion"), "actor")),
                     "alice");
    ck_assert_str_eq(row_detail(res, 0), "0.9 >= 0.85");
    json_decref(res);
    ck_assert_str_eq(holder("staging"), "1.0");
    ck_assert_str_eq(holder("production"), "");
    ck_assert_int_eq(mlreg_stage_history(&h, reg, pol, MODEL, "staging", 0, 0), 0);
    ck_assert_int_eq(json_array_size(json_object_get(h, "history")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(h, "history"), 0), "actor")),
                     "alice");
    json_decref(h);
    ck_assert_int_eq(mlreg_promotions_list(&l, reg, MODEL, 0, 0), 0);
    ck_assert(json_is_true(
        json_object_get(json_array_get(json_object_get(l, "promotions"), 0), "passed")));
    json_decref(l);
}
END_TEST

/* Walks every page of promotions (page size @p limit) from 0, checking that
 * seqs only grow; appends to @p seqs. Calls @p between after the first page. */
static void walk_promotions(json_t *seqs, size_t limit, void (*between)(void))
{
    uint64_t since = 0;
    json_t *l = NULL, *p, *next;
    size_t i;

    for (int page = 0;; page++) {
        ck_assert_int_eq(mlreg_promotions_list(&l, reg, MODEL, since, limit), 0);
        ck_assert_uint_le(json_array_size(json_object_get(l, "promotions")), limit);
        json_array_foreach(json_object_get(l, "promotions"), i, p)
        {
            json_int_t seq = json_integer_value(json_object_get(p, "seq"));
            ck_assert_int_ge(seq, (json_int_t)since);
            json_array_append_new(seqs, json_integer(seq));
        }
        next = json_object_get(l, "next");
        if (json_is_null(next)) {
            json_decref(l);
            break;
        }
        ck_assert(json_is_integer(next));
        ck_assert_uint_gt((uint64_t)json_integer_value(next), since);
        since = (uint64_t)json_integer_value(next);
        json_decref(l);
        if (page == 0 && between) between();
    }
}

static void two_more_refusals(void)
{
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0, "ci"), MLREG_EGATE);
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0, "ci"), MLREG_EGATE);
}

START_TEST(test_promotions_are_paged_by_seq_and_a_walk_sees_each_once_while_more_arrive)
{
    json_t *seqs = json_array(), *all = NULL, *p, *l = NULL;
    size_t i;

    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85}]}");
    push_simple("2.0", 0.8);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(promote(NULL, "2.0", "staging", 0, "ci"), MLREG_EGATE);
    walk_promotions(seqs, 2, two_more_refusals);
    ck_assert_uint_eq(json_array_size(seqs), 7);
    ck_assert_int_eq(mlreg_promotions_list(&all, reg, MODEL, 0, MLREG_PAGE_LIMIT_MAX + 1), 0);
    ck_assert(json_is_null(json_object_get(all, "next")));
    ck_assert_uint_eq(json_array_size(json_object_get(all, "promotions")), 7);
    json_array_foreach(json_object_get(all, "promotions"), i, p)
    {
        ck_assert_int_eq(json_integer_value(json_object_get(p, "seq")),
                         json_integer_value(json_array_get(seqs, i)));
        if (i > 0)
            ck_assert_int_gt(json_integer_value(json_object_get(p, "seq")),
                             json_integer_value(json_array_get(seqs, i - 1)));
    }
    /* limit 0 is the default page; a since past the end is an empty last page */
    ck_assert_int_eq(mlreg_promotions_list(&l, reg, MODEL, 0, 0), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "promotions")), 7);
    json_decref(l);
    ck_assert_int_eq(mlreg_promotions_list(&l, reg, MODEL, 1000000, 5), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "promotions")), 0);
    ck_assert(json_is_null(json_object_get(l, "next")));
    json_decref(l);
    ck_code(mlreg_promotions_list(&l, reg, MODEL, (uint64_t)INT64_MAX + 1, 5), MLREG_EINVALID,
            "out of range");
    json_decref(all);
    json_decref(seqs);
}
END_TEST

START_TEST(test_stage_history_is_paged_by_its_seq_oldest_first)
{
    json_t *h = NULL, *e, *all = json_array();
    uint64_t since = 0;
    size_t pages = 0, i;

    th_use_gates(&pol, "{}");
    push_simple("1.0", 0.9);
    push_simple("2.0", 0.9);
    push_simple("3.0", 0.9);
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0, "ci"), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0, "ci"), 0);
    ck_assert_int_eq(promote(NULL, "3.0", "staging", 0, "ci"), 0);
    for (;;) {
        ck_assert_int_eq(mlreg_stage_history(&h, reg, pol, MODEL, "staging", since, 2), 0);
        pages++;
        json_array_foreach(json_object_get(h, "history"), i, e)
        {
            ck_assert_int_ge(json_integer_value(json_object_get(e, "seq")), (json_int_t)since);
            json_array_append(all, json_object_get(e, "version"));
        }
        if (json_is_null(json_object_get(h, "next"))) break;
        since = (uint64_t)json_integer_value(json_object_get(h, "next"));
        json_decref(h);
    }
    json_decref(h);
    ck_assert_uint_eq(pages, 2);
    ck_assert_uint_eq(json_array_size(all), 3);
    ck_assert_str_eq(json_string_value(json_array_get(all, 0)), "1.0");
    ck_assert_str_eq(json_string_value(json_array_get(all, 2)), "3.0");
    ck_code(mlreg_stage_history(&h, reg, pol, MODEL, "staging", UINT64_MAX, 2), MLREG_EINVALID,
            "out of range");
    json_decref(all);
}
END_TEST

START_TEST(test_a_failing_promotion_is_refused_recorded_and_moves_nothing)
{
    json_t *res = NULL, *l = NULL;

    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85}]}");
    push_simple("1.0", 0.9);
    push_simple("2.0", 0.8);
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0, "ci"), 0);
    ck_code(promote(&res, "2.0", "staging", 0, "ci"), MLREG_EGATE, "1 of 1 gate rules failed");
    ck_assert(json_is_false(json_object_get(res, "passed")));
    ck_assert(json_is_false(json_object_get(res, "moved")));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(res, "baseline"), "version")), "1.0");
    json_decref(res);
    ck_assert_str_eq(holder("staging"), "1.0");
    ck_assert_int_eq(mlreg_promotions_list(&l, reg, MODEL, 0, 0), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "promotions")), 2);
    ck_assert(json_is_false(
        json_object_get(json_array_get(json_object_get(l, "promotions"), 1), "passed")));
    ck_assert_int_eq(json_array_size(json_object_get(
                         json_array_get(json_object_get(l, "promotions"), 1), "rules")),
                     1);
    json_decref(l);
}
END_TEST

START_TEST(test_a_dry_run_evaluates_but_records_and_moves_nothing)
{
    json_t *res = NULL;

    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85}]}");
    push_simple("1.0", 0.9);
    ck_assert_int_eq(promote(&res, "1.0", "staging", 1, "ci"), 0);
    ck_assert(json_is_true(json_object_get(res, "passed")));
    ck_assert(json_is_false(json_object_get(res, "moved")));
    ck_assert(json_is_null(json_object_get(res, "promotion")));
    json_decref(res);
    ck_assert_str_eq(holder("staging"), "");
    ck_assert_int_eq(n_promotions(), 0);
}
END_TEST

START_TEST(test_hostile_promotions_are_clear_errors_and_move_nothing)
{
    json_t *res = NULL;

    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85}]}");
    push_simple("1.0", 0.9);
    free(push("3.0", -1, NULL, "ci", NULL)); /* no eval report */
    ck_code(promote(NULL, "9.9", "staging", 0, "ci"), MLREG_ENOTFOUND, "release team/clf@9.9");
    ck_code(promote(NULL, "1.0", "qa", 0, "ci"), MLREG_EINVALID, "unknown stage 'qa'");
    ck_code(promote(NULL, "bad version!", "staging", 0, "ci"), MLREG_EINVALID, "");
    ck_code(promote(&res, "3.0", "staging", 0, "ci"), MLREG_EGATE, "refused");
    ck_assert_str_eq(row_detail(res, 0), "release has no eval report");
    json_decref(res);
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0, "ci"), 0);
    ck_code(promote(NULL, "1.0", "staging", 0, "ci"), MLREG_EDENIED, "already in stage staging");
    ck_assert_str_eq(holder("staging"), "1.0");
    ck_assert_int_eq(n_promotions(), 2); /* the refused 3.0 and the passed 1.0 */
    {
        mlreg_promote_req req = {MODEL, "1.0", "production", NULL, 0, "ci"};
        char *long_reason = malloc(MLREG_REASON_MAX + 2);
        memset(long_reason, 'x', MLREG_REASON_MAX + 1);
        long_reason[MLREG_REASON_MAX + 1] = '\0';
        req.reason = long_reason;
        res = NULL;
        ck_code(mlreg_promote(&res, reg, pol, &req), MLREG_EINVALID, "reason");
        ck_assert_ptr_null(res);
        free(long_reason);
    }
    ck_assert_str_eq(holder("production"), "");
}
END_TEST

START_TEST(test_max_drop_uses_the_release_in_the_target_stage_as_baseline)
{
    json_t *res = NULL;

    th_use_gates(&pol, "{\"production\":[{\"metric\":\"accuracy\",\"max_drop\":0.01}]}");
    push_simple("1.0", 0.90);
    push_simple("2.0", 0.85);
    push_simple("3.0", 0.895);
    free(push("4.0", 0.99, "other-set", "ci", NULL));
    ck_assert_int_eq(promote(&res, "1.0", "production", 0, "ci"), 0);
    ck_assert_str_eq(row_detail(res, 0), "no baseline");
    json_decref(res);
    ck_code(promote(&res, "2.0", "production", 0, "ci"), MLREG_EGATE, "refused");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(res, "rules"), 0), "baseline_version")),
                     "1.0");
    json_decref(res);
    ck_code(promote(&res, "4.0", "production", 0, "ci"), MLREG_EGATE, "refused");
    ck_assert_ptr_nonnull(strstr(row_detail(res, 0), "baseline evaluated on a different dataset"));
    json_decref(res);
    ck_assert_int_eq(promote(NULL, "3.0", "production", 0, "ci"), 0);
    ck_assert_str_eq(holder("production"), "3.0");
}
END_TEST

START_TEST(test_previous_stage_needs_the_release_to_have_been_in_the_stage_before)
{
    th_use_gates(&pol, "{\"production\":[{\"require\":\"previous_stage\"}]}");
    push_simple("1.0", 0.9);
    push_simple("2.0", 0.9);
    ck_code(promote(NULL, "1.0", "production", 0, "ci"), MLREG_EGATE, "refused");
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0, "ci"), 0);
    /* staging moves on: 1.0 was promoted through it, which is enough */
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0, "ci"), 0);
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0, "ci"), 0);
    ck_assert_str_eq(holder("production"), "1.0");
}
END_TEST

START_TEST(test_signed_counts_trusted_keys_and_approvals_exclude_the_pusher)
{
    char d[MLREG_DIGEST_STRLEN + 1];
    char *body;
    json_t *res = NULL, *l = NULL;
    int created = -1;
    mlreg_meta_txn *txn = NULL;
    uint64_t n0 = 0, n1 = 0;

    th_use_gates(&pol, "{\"production\":[{\"require\":\"signed\",\"min\":1},"
                       "{\"require\":\"approvals\",\"min\":1}]}");
    body = push("1.0", 0.9, "val", "ci", d);
    ck_code(promote(&res, "1.0", "production", 0, "ci"), MLREG_EGATE, "2 of 2");
    json_decref(res);
    sign_release("1.0", body, d);
    free(body);
    /* the pusher's own approval would not count: refused, nothing recorded */
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n0, txn), 0);
    mlreg_meta_txn_abort(txn);
    res = NULL;
    ck_code(mlreg_approve(&res, &created, reg, pol, MODEL, "1.0", "production", "lgtm", "ci"),
            MLREG_EDENIED, "you pushed team/clf@1.0; an approval must come from someone else");
    ck_assert_ptr_null(res);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n1, txn), 0);
    mlreg_meta_txn_abort(txn);
    ck_assert_uint_eq(n1, n0);
    ck_assert_int_eq(mlreg_approvals_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "approvals")), 0);
    json_decref(l);
    ck_code(promote(&res, "1.0", "production", 0, "ci"), MLREG_EGATE, "1 of 2");
    ck_assert_str_eq(row_detail(res, 0), "1 signature by trusted release keys");
    ck_assert_str_eq(row_detail(res, 1), "approvals: 0 of 1");
    json_decref(res);
    /* an approval for another stage does not count either */
    ck_assert_int_eq(mlreg_approve(&res, &created, reg, pol, MODEL, "1.0", "staging", NULL, "bob"),
                     0);
    json_decref(res);
    ck_code(promote(NULL, "1.0", "production", 0, "ci"), MLREG_EGATE, "1 of 2");
    ck_assert_int_eq(
        mlreg_approve(&res, &created, reg, pol, MODEL, "1.0", "production", NULL, "bob"), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_str_eq(json_string_value(json_object_get(res, "approver")), "bob");
    json_decref(res);
    ck_assert_int_eq(
        mlreg_approve(&res, &created, reg, pol, MODEL, "1.0", "production", NULL, "bob"), 0);
    ck_assert_int_eq(created, 0);
    json_decref(res);
    ck_assert_int_eq(mlreg_approvals_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "approvals")), 2);
    json_decref(l);
    ck_code(mlreg_approve(&res, &created, reg, pol, MODEL, "1.0", "qa", NULL, "bob"),
            MLREG_EINVALID, "unknown stage");
    ck_code(mlreg_approve(&res, &created, reg, pol, MODEL, "7.0", "production", NULL, "bob"),
            MLREG_ENOTFOUND, "not found");
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0, "ci"), 0);
    ck_assert_str_eq(holder("production"), "1.0");
}
END_TEST

START_TEST(test_signed_counts_only_keys_whose_role_signs_releases)
{
    char d[MLREG_DIGEST_STRLEN + 1], b64[MLREG_PUBKEY_B64LEN + 1], *body;
    mlreg_seckey *approver_sk = NULL;
    mlreg_pubkey approver_pk;
    json_t *res = NULL;
    int created = -1;

    th_use_gates(&pol, "{\"production\":[{\"require\":\"signed\",\"min\":1}]}");
    ck_assert_int_eq(mlreg_seckey_generate(&approver_sk), 0);
    mlreg_seckey_pubkey(&approver_pk, approver_sk);
    mlreg_pubkey_base64(b64, &approver_pk);
    ck_assert_int_eq(mlreg_keyring_trust(&res, &created, mlreg_registry_keyring(reg), "alice",
                                         "approver", b64, strlen(b64), "admin"),
                     0);
    json_decref(res);
    body = push("1.0", 0.9, "val", "ci", d);
    sign_release_with(approver_sk, &approver_pk, "1.0", body, d);
    /* a trusted key, a valid signature, and still not a release signature */
    ck_code(promote(&res, "1.0", "production", 0, "ops"), MLREG_EGATE, "1 of 1");
    ck_assert_str_eq(row_detail(res, 0),
                     "0 signatures by trusted release keys (not enough); 1 more by trusted key of "
                     "role approver, which does not count: only keys of role release sign "
                     "releases");
    json_decref(res);
    ck_assert_str_eq(holder("production"), "");
    sign_release("1.0", body, d);
    ck_assert_int_eq(promote(&res, "1.0", "production", 0, "ops"), 0);
    ck_assert_str_eq(row_detail(res, 0),
                     "1 signature by trusted release keys; 1 more by trusted key of role "
                     "approver, which does not count: only keys of role release sign releases");
    json_decref(res);
    ck_assert_str_eq(holder("production"), "1.0");
    free(body);
    mlreg_seckey_free(approver_sk);
}
END_TEST

START_TEST(test_rollback_restores_the_previous_holder_and_checks_signatures_again)
{
    char d1[MLREG_DIGEST_STRLEN + 1], d2[MLREG_DIGEST_STRLEN + 1], id[MLREG_KEYID_HEXLEN + 1];
    char *b1, *b2;
    json_t *res = NULL;

    th_use_gates(&pol, "{\"production\":[{\"require\":\"signed\",\"min\":1}]}");
    ck_code(mlreg_rollback(&res, reg, pol, MODEL, "production", NULL, NULL, "ci"), MLREG_ENOTFOUND,
            "empty");
    b1 = push("1.0", 0.9, "val", "ci", d1);
    b2 = push("2.0", 0.9, "val", "ci", d2);
    push_simple("3.0", 0.9);
    sign_release("1.0", b1, d1);
    sign_release("2.0", b2, d2);
    free(b1);
    free(b2);
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0, "ci"), 0);
    ck_code(mlreg_rollback(&res, reg, pol, MODEL, "production", NULL, NULL, "ci"), MLREG_EDENIED,
            "no earlier release");
    ck_assert_int_eq(promote(NULL, "2.0", "production", 0, "ci"), 0);
    ck_code(mlreg_rollback(&res, reg, pol, MODEL, "production", "3.0", NULL, "ci"), MLREG_EDENIED,
            "never held stage production");
    ck_code(mlreg_rollback(&res, reg, pol, MODEL, "production", "2.0", NULL, "ci"), MLREG_EDENIED,
            "holds stage production now");
    ck_code(mlreg_rollback(&res, reg, pol, MODEL, "production", "8.0", NULL, "ci"), MLREG_EDENIED,
            "is not a release");
    ck_assert_int_eq(mlreg_rollback(&res, reg, pol, MODEL, "production", NULL, "bad", "ops"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(res, "version")), "1.0");
    ck_assert_str_eq(json_string_value(json_object_get(res, "previous_version")), "2.0");
    json_decref(res);
    ck_assert_str_eq(holder("production"), "1.0");
    /* roll forward to 2.0 by name; then the key is compromised: 1.0 cannot come back */
    ck_assert_int_eq(mlreg_rollback(&res, reg, pol, MODEL, "production", "2.0", NULL, "ops"), 0);
    json_decref(res);
    ck_assert_str_eq(holder("production"), "2.0");
    mlreg_keyid_format(id, &fx.keys[0].pubkey.id);
    ck_assert_int_eq(
        mlreg_keyring_revoke(&res, mlreg_registry_keyring(reg), id, "compromised", NULL, "admin"),
        0);
    json_decref(res);
    res = NULL;
    ck_code(mlreg_rollback(&res, reg, pol, MODEL, "production", "1.0", NULL, "ops"), MLREG_EGATE,
            "0 signatures by trusted release keys");
    ck_assert_ptr_null(res);
    ck_assert_str_eq(holder("production"), "2.0");
    /* the promotions log has: 2 promotes, 2 rollbacks, 1 refused rollback */
    {
        json_t *l = NULL, *last;
        ck_assert_int_eq(mlreg_promotions_list(&l, reg, MODEL, 0, 0), 0);
        ck_assert_int_eq(json_array_size(json_object_get(l, "promotions")), 5);
        last = json_array_get(json_object_get(l, "promotions"), 4);
        ck_assert_str_eq(json_string_value(json_object_get(last, "action")), "rollback");
        ck_assert(json_is_false(json_object_get(last, "passed")));
        json_decref(l);
    }
}
END_TEST

START_TEST(test_resolve_at_a_time_returns_what_held_the_stage_then)
{
    json_t *res = NULL, *h = NULL;
    int64_t t0, t1, t2;
    const char *since;

    th_use_gates(&pol, "{}");
    push_simple("1.0", 0.9);
    push_simple("2.0", 0.9);
    t0 = mlreg_time_now_ns();
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0, "ci"), 0);
    t1 = mlreg_time_now_ns();
    ck_assert_int_eq(promote(NULL, "2.0", "production", 0, "ci"), 0);
    t2 = mlreg_time_now_ns();
    ck_code(mlreg_stage_get(&res, reg, pol, MODEL, "production", t0), MLREG_ENOTFOUND,
            "was empty at");
    ck_assert_int_eq(mlreg_stage_get(&res, reg, pol, MODEL, "production", t1), 0);
    ck_assert_str_eq(json_string_value(json_object_get(res, "version")), "1.0");
    json_decref(res);
    ck_assert_int_eq(mlreg_stage_get(&res, reg, pol, MODEL, "production", t2), 0);
    ck_assert_str_eq(json_string_value(json_object_get(res, "version")), "2.0");
    since = json_string_value(json_object_get(res, "since"));
    ck_assert_ptr_nonnull(since);
    ck_assert_int_eq(since[strlen(since) - 1], 'Z');
    json_decref(res);
    ck_assert_int_eq(mlreg_stage_history(&h, reg, pol, MODEL, "production", 0, 0), 0);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(h, "history"), 1), "previous_version")),
                     "1.0");
    json_decref(h);
}
END_TEST

START_TEST(test_the_stage_list_carries_each_stages_rules_as_configured)
{
    json_t *l = NULL, *want = NULL, *got;
    json_error_t jerr;

    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85},"
                       "{\"metric\":\"f1\",\"max_drop_pct\":2.5}],"
                       "\"production\":[{\"require\":\"signed\",\"min\":1},"
                       "{\"require\":\"previous_stage\"},"
                       "{\"require\":\"approvals\",\"min\":2}]}");
    ck_assert_int_eq(mlreg_stages_list(&l, reg, pol, MODEL), 0);
    want = json_loads("[[],"
                      "[{\"type\":\"min\",\"metric\":\"accuracy\",\"threshold\":0.85},"
                      "{\"type\":\"max_drop_pct\",\"metric\":\"f1\",\"threshold\":2.5}],"
                      "[{\"type\":\"signed\",\"min\":1},{\"type\":\"previous_stage\"},"
                      "{\"type\":\"approvals\",\"min\":2}]]",
                      0, &jerr);
    ck_assert_ptr_nonnull(want);
    for (size_t i = 0; i < 3; i++) {
        got = json_object_get(json_array_get(json_object_get(l, "stages"), i), "gates");
        ck_assert_msg(json_equal(got, json_array_get(want, i)), "stage %zu", i);
    }
    json_decref(want);
    json_decref(l);
}
END_TEST

START_TEST(test_image_bindings_are_idempotent_validated_and_shown_on_stages)
{
    json_t *res = NULL, *l = NULL, *st;
    int created = -1;
    const char *dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    th_use_gates(&pol, "{}");
    push_simple("1.0", 0.9);
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0, "ci"), 0);
    ck_assert_int_eq(stage_now(&res, "production"), 0); /* kept, without an image */
    ck_assert(json_is_null(json_object_get(res, "image")));
    json_decref(res);
    ck_assert_int_eq(mlreg_stages_list(&l, reg, pol, MODEL), 0);
    st = json_array_get(json_object_get(l, "stages"), 2);
    ck_assert(json_is_null(json_object_get(st, "image")));
    ck_assert(
        json_is_null(json_object_get(json_array_get(json_object_get(l, "stages"), 0), "version")));
    json_decref(l);
    ck_assert_int_eq(mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0",
                                      "ghcr.io/acme/clf:1.0-abcdef1", NULL),
                     0);
    ck_assert_int_eq(created, 1);
    json_decref(res);
    ck_assert_int_eq(mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0",
                                      "ghcr.io/acme/clf:1.0-abcdef1", NULL),
                     0);
    ck_assert_int_eq(created, 0);
    json_decref(res);
    ck_assert_int_eq(mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0",
                                      "localhost:5000/acme/clf:1.0-abcdef1", dg),
                     0);
    ck_assert_int_eq(created, 1);
    json_decref(res);
    ck_code(mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0", "acme/clf", NULL),
            MLREG_EINVALID, "REPO:TAG");
    ck_code(mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0", "Acme/clf:1", NULL),
            MLREG_EINVALID, "lowercase");
    ck_code(mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0", "acme/clf:-x", NULL),
            MLREG_EINVALID, "tag grammar");
    ck_code(
        mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0", "acme/clf:1", "sha256:zz"),
        MLREG_EINVALID, "");
    ck_code(mlreg_image_bind(&res, &created, reg, as("ci"), MODEL, "5.0", "acme/clf:1", NULL),
            MLREG_ENOTFOUND, "not found");
    /* without push, a missing release is not told apart from a forbidden one */
    ck_code(mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "5.0", "acme/clf:1", NULL),
            MLREG_EFORBIDDEN, "lacks role push");
    ck_assert_int_eq(mlreg_images_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "images")), 2);
    json_decref(l);
    ck_assert_int_eq(stage_now(&res, "production"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(res, "image")),
                     "localhost:5000/acme/clf:1.0-abcdef1@sha256:0123456789abcdef0123456789abcdef0"
                     "123456789abcdef0123456789abcdef");
    json_decref(res);
}
END_TEST

/* The image production answers now ("" when none). Static buffer. */
static const char *stage_image(const char *stage)
{
    static char img[1024];
    json_t *res = NULL;

    ck_assert_int_eq(stage_now(&res, stage), 0);
    snprintf(img, sizeof(img), "%s",
             json_is_string(json_object_get(res, "image"))
                 ? json_string_value(json_object_get(res, "image"))
                 : "");
    json_decref(res);
    return img;
}

/* The "image" of what production held at @p at_ns ("" when none). Static buffer. */
static const char *stage_image_at(int64_t at_ns)
{
    static char img[1024];
    json_t *res = NULL;

    ck_assert_msg(mlreg_stage_get(&res, reg, pol, MODEL, "production", at_ns) == 0, "%s",
                  mlreg_error_last());
    snprintf(img, sizeof(img), "%s",
             json_is_string(json_object_get(res, "image"))
                 ? json_string_value(json_object_get(res, "image"))
                 : "");
    json_decref(res);
    return img;
}

START_TEST(test_resolve_at_a_time_answers_the_image_bound_by_then)
{
    json_t *res = NULL;
    int created = -1;
    int64_t t0, t1, t2;

    th_use_gates(&pol, "{}");
    push_simple("1.0", 0.9);
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0, "ci"), 0);
    t0 = mlreg_time_now_ns();
    ck_assert_int_eq(
        mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0", "acme/clf:a", NULL), 0);
    json_decref(res);
    t1 = mlreg_time_now_ns();
    ck_assert_int_eq(
        mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0", "acme/clf:b", NULL), 0);
    json_decref(res);
    t2 = mlreg_time_now_ns();
    /* no binding recorded yet at t0: null, not today's */
    ck_assert_str_eq(stage_image_at(t0), "");
    /* A was in force between the two bindings, B after */
    ck_assert_str_eq(stage_image_at(t1), "acme/clf:a");
    ck_assert_str_eq(stage_image_at(t2), "acme/clf:b");
    /* an earlier binding made current again counts from its re-bind */
    ck_assert_int_eq(
        mlreg_image_bind(&res, &created, reg, as("prod"), MODEL, "1.0", "acme/clf:a", NULL), 0);
    ck_assert_int_eq(created, 1);
    json_decref(res);
    ck_assert_str_eq(stage_image_at(t2), "acme/clf:b");
    ck_assert_str_eq(stage_image_at(mlreg_time_now_ns()), "acme/clf:a");
    /* without a time: the current binding, and the rendered answer agrees */
    ck_assert_str_eq(stage_image("production"), "acme/clf:a");
}
END_TEST

/* mlreg_image_bind() as token @p who; *created_out (may be NULL) set. */
static int bind(const char *who, const char *version, const char *image, int *created_out)
{
    json_t *res = NULL;
    int created = -1,
        rc = mlreg_image_bind(&res, &created, reg, as(who), MODEL, version, image, NULL);

    if (rc == 0) ck_assert_ptr_nonnull(res);
    json_decref(res);
    if (created_out) *created_out = created;
    return rc;
}

START_TEST(test_binding_to_a_release_a_stage_holds_needs_promote_for_that_stage)
{
    int created = -1;

    th_use_gates(&pol, "{}");
    push_simple("1.0", 0.9);
    push_simple("2.0", 0.9);
    /* no stage has held 1.0 yet: push is enough */
    ck_assert_int_eq(bind("ci", "1.0", "acme/clf:good", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0, "ops"), 0);
    ck_assert_str_eq(stage_image("production"), "acme/clf:good");

    /* now it decides what production deploys */
    ck_code(bind("ci", "1.0", "evil/clf:x", NULL), MLREG_EFORBIDDEN,
            "token 'ci' may not bind an image to team/clf@1.0: the release holds or has held "
            "stage production, so binding needs role promote:production (or admin)");
    ck_code(bind("stager", "1.0", "evil/clf:x", NULL), MLREG_EFORBIDDEN, "promote:production");
    ck_code(bind("other", "1.0", "evil/clf:x", NULL), MLREG_EFORBIDDEN, "promote:production");
    ck_assert_str_eq(stage_image("production"), "acme/clf:good");
    ck_assert_int_eq(bind("prod", "1.0", "acme/clf:good2", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(bind("root", "1.0", "acme/clf:good3", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_str_eq(stage_image("production"), "acme/clf:good3");

    /* a release no stage has held still takes push, and promote alone is not push */
    ck_assert_int_eq(bind("ci", "2.0", "acme/clf:two", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_code(bind("prod", "2.0", "acme/clf:two-b", NULL), MLREG_EFORBIDDEN, "lacks role push");
}
END_TEST

START_TEST(test_binding_to_a_release_that_held_stages_needs_promote_for_each_of_them)
{
    int created = -1;
    json_t *l = NULL;

    th_use_gates(&pol, "{}");
    push_simple("1.0", 0.9);
    push_simple("2.0", 0.9);
    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0, "ops"), 0);
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0, "ops"), 0);
    /* 1.0 held staging and no longer does: a rollback would bring it back */
    ck_code(bind("ci", "1.0", "evil/clf:x", NULL), MLREG_EFORBIDDEN,
            "holds or has held stage staging, so binding needs role promote:staging");
    ck_code(bind("prod", "1.0", "evil/clf:x", NULL), MLREG_EFORBIDDEN, "promote:staging");
    ck_assert_int_eq(bind("stager", "1.0", "acme/clf:one", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0, "ops"), 0);
    /* the message names only the stages whose role is missing */
    ck_code(bind("stager", "1.0", "evil/clf:x", NULL), MLREG_EFORBIDDEN,
            "stage production, so binding needs role promote:production (or admin)");
    ck_code(bind("ci", "1.0", "evil/clf:x", NULL), MLREG_EFORBIDDEN,
            "stages production, staging, so binding needs roles promote:production, "
            "promote:staging (or admin)");
    ck_assert_int_eq(bind("both", "1.0", "acme/clf:one-b", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(mlreg_images_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "images")), 2);
    json_decref(l);
}
END_TEST

START_TEST(test_rebinding_an_earlier_image_makes_it_current_again_and_is_audited)
{
    int created = -1;
    uint64_t n0 = 0, n1 = 0;
    mlreg_meta_txn *txn = NULL;
    char *text = NULL;
    size_t len = 0;
    json_t *e, *l = NULL;

    th_use_gates(&pol, "{}");
    push_simple("1.0", 0.9);
    ck_assert_int_eq(promote(NULL, "1.0", "production", 0, "ops"), 0);
    ck_assert_int_eq(bind("prod", "1.0", "acme/clf:good", &created), 0);
    ck_assert_int_eq(bind("prod", "1.0", "acme/clf:bad", &created), 0);
    ck_assert_str_eq(stage_image("production"), "acme/clf:bad");

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n0, txn), 0);
    mlreg_meta_txn_abort(txn);
    ck_assert_int_eq(bind("prod", "1.0", "acme/clf:good", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_str_eq(stage_image("production"), "acme/clf:good");

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n1, txn), 0);
    ck_assert_uint_eq(n1, n0 + 1);
    ck_assert_int_eq(mlreg_audit_entry_txn(&text, &len, txn, n1 - 1), 0);
    mlreg_meta_txn_abort(txn);
    ck_assert_ptr_nonnull(e = json_loadb(text, len, 0, NULL));
    free(text);
    ck_assert_str_eq(json_string_value(json_object_get(e, "action")), MLREG_AUDIT_IMAGE_BIND);
    ck_assert_str_eq(json_string_value(json_object_get(e, "actor")), "prod");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "subject"), "image")),
                     "acme/clf:good");
    ck_assert(json_is_true(json_object_get(json_object_get(e, "details"), "rebind")));
    json_decref(e);

    /* binding what is current already changes nothing and records nothing */
    ck_assert_int_eq(bind("prod", "1.0", "acme/clf:good", &created), 0);
    ck_assert_int_eq(created, 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n0, txn), 0);
    mlreg_meta_txn_abort(txn);
    ck_assert_uint_eq(n0, n1);
    ck_assert_int_eq(mlreg_images_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "images")), 3);
    json_decref(l);
}
END_TEST

START_TEST(test_the_release_record_names_its_pusher)
{
    json_t *rel = NULL;

    th_use_gates(&pol, "{}");
    free(push("1.0", 0.9, NULL, "export-bot", NULL));
    ck_assert_int_eq(mlreg_registry_release_get(&rel, reg, MODEL, "1.0"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(rel, "pushed_by")), "export-bot");
    json_decref(rel);
}
END_TEST

typedef struct {
    const char *version;
    int rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    mlreg_promote_req req = {MODEL, r->version, "production", NULL, 0, "ci"};
    json_t *res = NULL;

    r->rc = mlreg_promote(&res, reg, pol, &req);
    json_decref(res);
    return NULL;
}

START_TEST(test_racing_promotions_serialise_with_the_right_baseline)
{
    enum { N = 8 };
    pthread_t th[N];
    racer r[N];
    char versions[N][8];
    json_t *h = NULL, *e;
    size_t i, passed = 0;
    const char *prev = NULL;

    /* each promotion must not drop more than 0.001 below the baseline it
     * replaces; versions alternate high/low, so which ones pass depends on
     * the order, but the history must always chain */
    th_use_gates(&pol, "{\"production\":[{\"metric\":\"accuracy\",\"max_drop\":0.001}]}");
    for (i = 0; i < N; i++) {
        snprintf(versions[i], sizeof(versions[i]), "%zu.0", i + 1);
        push_simple(versions[i], 0.5 + 0.01 * (double)((i * 5) % N));
        r[i].version = versions[i];
    }
    for (i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
    for (i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < N; i++) {
        ck_assert_msg(r[i].rc == 0 || r[i].rc == MLREG_EGATE, "rc %d", r[i].rc);
        if (r[i].rc == 0) passed++;
    }
    ck_assert_int_ge(passed, 1);
    ck_assert_int_eq(n_promotions(), N);
    ck_assert_int_eq(mlreg_stage_history(&h, reg, pol, MODEL, "production", 0, 0), 0);
    ck_assert_int_eq(json_array_size(json_object_get(h, "history")), passed);
    json_array_foreach(json_object_get(h, "history"), i, e)
    {
        const char *pv = json_string_value(json_object_get(e, "previous_version"));
        if (prev == NULL)
            ck_assert_ptr_null(pv);
        else
            ck_assert_str_eq(pv, prev);
        prev = json_string_value(json_object_get(e, "version"));
    }
    ck_assert_str_eq(holder("production"), prev);
    json_decref(h);
}
END_TEST

/* The empty config every attestation referrer names is written once, not
 * at each promotion (registry.c), unless the stored copy changed or a
 * blob was deleted since; the envelope, new each time, is always written. */
START_TEST(test_promotions_write_the_empty_config_once_unless_it_changed_or_blobs_were_deleted)
{
    th_registry_opts o;
    th_fake *f = th_fake_new(MLREG_BLOB_BACKEND_VERSION, NULL);
    th_fake_blob *b;
    mlreg_digest empty;

    th_registry_teardown(&fx);
    memset(&o, 0, sizeof(o));
    o.backend = &f->parent;
    th_registry_setup(&fx, "promotions", &o);
    reg = fx.reg;
    sk = fx.sk;
    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.5}]}");
    for (int i = 1; i <= 5; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d.0", i);
        push_simple(v, 0.9);
    }
    ck_assert_int_eq(mlreg_digest_buffer(&empty, MLREG_EMPTY_CONFIG, 2), 0);

    ck_assert_int_eq(promote(NULL, "1.0", "staging", 0, "ci"), 0);
    ck_assert_ptr_nonnull(b = th_fake_find(f, &empty));
    th_fake_reset_counters(f);
    ck_assert_int_eq(promote(NULL, "2.0", "staging", 0, "ci"), 0);
    ck_assert_int_eq(f->n_commit, 1); /* the envelope alone */

    /* a copy that rotted is replaced, as a write would */
    b->data[0] = 'X';
    th_fake_reset_counters(f);
    ck_assert_int_eq(promote(NULL, "3.0", "staging", 0, "ci"), 0);
    ck_assert_int_eq(f->n_commit, 2);
    ck_assert_ptr_nonnull(b = th_fake_find(f, &empty));
    ck_assert_mem_eq(b->data, MLREG_EMPTY_CONFIG, 2);
    th_fake_reset_counters(f);
    ck_assert_int_eq(promote(NULL, "4.0", "staging", 0, "ci"), 0);
    ck_assert_int_eq(f->n_commit, 1);

    /* after a deletion (gc.c, scrub.c say so) it is written once again */
    mlreg_registry__blob_forget(reg);
    th_fake_reset_counters(f);
    ck_assert_int_eq(promote(NULL, "5.0", "staging", 0, "ci"), 0);
    ck_assert_int_eq(f->n_commit, 2);
    ck_assert_str_eq(holder("staging"), "5.0");
}
END_TEST

/* ---- break-glass (override) ------------------------------------------------------- */

/* A break-glass promotion of MODEL@version into @p stage by @p actor with
 * @p reason (dry run when @p dry_run); *out (may be NULL) gets the body. */
static int promote_override(json_t **out, const char *version, const char *stage,
                            const char *reason, int dry_run, const char *actor)
{
    mlreg_promote_req req = {MODEL, version, stage, reason, dry_run, actor};
    json_t *res = NULL;
    int rc = mlreg_promote_override(&res, reg, pol, &req);

    if (out)
        *out = res;
    else
        json_decref(res);
    return rc;
}

/* Approves the override of MODEL@version into @p stage as @p who; *created. */
static int approve_override(const char *version, const char *stage, const char *reason,
                            const char *who, int *created)
{
    json_t *res = NULL;
    int c = -1, rc = mlreg_approve_override(&res, &c, reg, pol, MODEL, version, stage, reason, who);

    if (rc == 0) {
        ck_assert(json_is_true(json_object_get(res, "override")));
        if (c) ck_assert_str_eq(json_string_value(json_object_get(res, "reason")), reason);
        ck_assert_str_eq(json_string_value(json_object_get(res, "approver")), who);
    } else {
        ck_assert_ptr_null(res);
    }
    if (created) *created = c;
    json_decref(res);
    return rc;
}

/* The last audit entry (owned by the caller). */
static json_t *last_entry(void)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;
    char *text = NULL;
    size_t len = 0;
    json_t *e;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    ck_assert_int_eq(mlreg_audit_entry_txn(&text, &len, txn, n - 1), 0);
    mlreg_meta_txn_abort(txn);
    ck_assert_ptr_nonnull(e = json_loadb(text, len, 0, NULL));
    free(text);
    return e;
}

/* The row of type @p type in the table of @p res (borrowed). */
static json_t *row_of(json_t *res, const char *type)
{
    json_t *row;
    size_t i;

    json_array_foreach(json_object_get(res, "rules"), i, row)
    {
        if (!strcmp(json_string_value(json_object_get(row, "type")), type)) return row;
    }
    ck_abort_msg("no %s row", type);
    return NULL;
}

START_TEST(test_an_override_moves_only_with_another_identitys_approval_and_is_flagged_everywhere)
{
    json_t *res = NULL, *l = NULL, *p, *e, *a, *st;
    int created = -1;
    size_t n0;

    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85},"
                       "{\"require\":\"approvals\",\"min\":1}]}");
    push_simple("1.0", 0.70); /* pushed by ci */

    /* an override says why */
    ck_code(promote_override(NULL, "1.0", "staging", NULL, 0, "alice"), MLREG_EINVALID,
            "an override needs a reason");
    ck_code(promote_override(NULL, "1.0", "staging", "   ", 0, "alice"), MLREG_EINVALID,
            "an override needs a reason");

    /* without an approval of the override: a recorded refusal, nothing moves */
    n0 = n_promotions();
    ck_code(promote_override(&res, "1.0", "staging", "incident 42", 0, "alice"), MLREG_EGATE,
            "override refused: it needs an approval of the override by another identity");
    ck_assert(json_is_false(json_object_get(res, "override")));
    ck_assert(json_is_false(json_object_get(res, "moved")));
    json_decref(res);
    ck_assert_str_eq(holder("staging"), "");
    ck_assert_uint_eq(n_promotions(), n0 + 1);
    e = last_entry();
    ck_assert_str_eq(json_string_value(json_object_get(e, "result")), MLREG_AUDIT_REFUSED);
    ck_assert(json_is_true(json_object_get(json_object_get(e, "details"), "override_requested")));
    ck_assert_ptr_null(json_object_get(json_object_get(e, "details"), "override"));
    json_decref(e);

    /* the pusher may not approve it; a reason is required */
    ck_code(approve_override("1.0", "staging", "ship it", "ci", NULL), MLREG_EDENIED,
            "an override must be approved by someone else");
    ck_code(approve_override("1.0", "staging", NULL, "bob", NULL), MLREG_EINVALID,
            "a reason is required");
    ck_code(approve_override("1.0", "staging", "bad\nreason", "bob", NULL), MLREG_EINVALID, "");
    ck_code(approve_override("9.9", "staging", "ship it", "bob", NULL), MLREG_ENOTFOUND, "");
    ck_code(approve_override("1.0", "qa", "ship it", "bob", NULL), MLREG_EINVALID, "unknown stage");

    /* the promoting identity's own approval does not count */
    ck_assert_int_eq(approve_override("1.0", "staging", "I am sure", "alice", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_code(promote_override(NULL, "1.0", "staging", "incident 42", 0, "alice"), MLREG_EGATE,
            "your own approval does not count");
    ck_assert_str_eq(holder("staging"), "");

    /* bob's approval: once recorded, then returned as it is */
    ck_assert_int_eq(approve_override("1.0", "staging", "seen the incident", "bob", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(approve_override("1.0", "staging", "again", "bob", &created), 0);
    ck_assert_int_eq(created, 0);

    /* a dry run says it would move and records nothing */
    n0 = n_promotions();
    ck_assert_int_eq(promote_override(&res, "1.0", "staging", "incident 42", 1, "alice"), 0);
    ck_assert(json_is_true(json_object_get(res, "override")));
    ck_assert(json_is_false(json_object_get(res, "moved")));
    json_decref(res);
    ck_assert_uint_eq(n_promotions(), n0);

    /* it moves, with the failing rules in the table: an approval of the
     * override is no approval of the release */
    ck_assert_int_eq(promote_override(&res, "1.0", "staging", "incident 42", 0, "alice"), 0);
    ck_assert(json_is_true(json_object_get(res, "moved")));
    ck_assert(json_is_true(json_object_get(res, "passed")));
    ck_assert(json_is_true(json_object_get(res, "override")));
    ck_assert_str_eq(json_string_value(json_object_get(res, "override_reason")), "incident 42");
    ck_assert_int_eq(json_array_size(json_object_get(res, "override_approvers")), 1);
    ck_assert_str_eq(
        json_string_value(json_array_get(json_object_get(res, "override_approvers"), 0)), "bob");
    ck_assert(json_is_false(json_object_get(row_of(res, "min"), "passed")));
    ck_assert(json_is_false(json_object_get(row_of(res, "approvals"), "passed")));
    json_decref(res);
    ck_assert_str_eq(holder("staging"), "1.0");

    /* the promotions log and the stage history carry the flag */
    ck_assert_int_eq(mlreg_promotions_list(&l, reg, MODEL, 0, 0), 0);
    p = json_array_get(json_object_get(l, "promotions"),
                       json_array_size(json_object_get(l, "promotions")) - 1);
    ck_assert(json_is_true(json_object_get(p, "override")));
    ck_assert(json_is_true(json_object_get(p, "passed")));
    ck_assert_str_eq(json_string_value(json_object_get(p, "override_reason")), "incident 42");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(p, "override_approvers"), 0)),
                     "bob");
    ck_assert(json_is_false(
        json_object_get(json_array_get(json_object_get(l, "promotions"), 0), "override")));
    json_decref(l);
    ck_assert_int_eq(mlreg_stage_history(&l, reg, pol, MODEL, "staging", 0, 0), 0);
    p = json_array_get(json_object_get(l, "history"), 0);
    ck_assert(json_is_true(json_object_get(p, "override")));
    ck_assert_str_eq(json_string_value(json_object_get(p, "override_reason")), "incident 42");
    json_decref(l);

    /* the audit entry */
    e = last_entry();
    ck_assert_str_eq(json_string_value(json_object_get(e, "action")), MLREG_AUDIT_PROMOTE);
    ck_assert_str_eq(json_string_value(json_object_get(e, "result")), MLREG_AUDIT_OK);
    ck_assert_str_eq(json_string_value(json_object_get(e, "reason")), "incident 42");
    ck_assert(json_is_true(json_object_get(json_object_get(e, "details"), "override")));
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(e, "details"), "override_approvers"), 0)),
                     "bob");
    json_decref(e);

    /* the signed statement */
    ck_assert_int_eq(mlreg_attestations_list(&l, reg, MODEL, "1.0"), 0);
    a = json_array_get(json_object_get(l, "attestations"), 0);
    {
        const char *b64 =
            json_string_value(json_object_get(json_object_get(a, "envelope"), "payload"));
        unsigned char buf[16384];
        size_t blen = 0;
        ck_assert_ptr_nonnull(b64);
        ck_assert_int_eq(sodium_base642bin(buf, sizeof(buf), b64, strlen(b64), NULL, &blen, NULL,
                                           sodium_base64_VARIANT_ORIGINAL),
                         0);
        ck_assert_ptr_nonnull(st = json_loadb((const char *)buf, blen, 0, NULL));
    }
    p = json_object_get(json_object_get(st, "predicate"), "override");
    ck_assert(json_is_true(json_object_get(p, "overridden")));
    ck_assert_str_eq(json_string_value(json_object_get(p, "reason")), "incident 42");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(p, "approvers"), 0)), "bob");
    json_decref(st);
    json_decref(l);

    /* the plain approvals listing shows the override approvals as such */
    ck_assert_int_eq(mlreg_approvals_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "approvals")), 2);
    ck_assert(json_is_true(
        json_object_get(json_array_get(json_object_get(l, "approvals"), 0), "override")));
    json_decref(l);
}
END_TEST

START_TEST(test_an_override_approval_is_spent_when_the_stage_moves_and_can_be_given_again)
{
    int created = -1;

    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85}]}");
    push_simple("1.0", 0.70);
    push_simple("1.1", 0.71);
    ck_assert_int_eq(approve_override("1.1", "staging", "early", "bob", NULL), 0);
    ck_assert_int_eq(approve_override("1.0", "staging", "go", "bob", NULL), 0);
    ck_assert_int_eq(promote_override(NULL, "1.0", "staging", "first fix", 0, "alice"), 0);
    /* bob approved 1.1 before staging moved: it no longer counts */
    ck_code(promote_override(NULL, "1.1", "staging", "second fix", 0, "alice"), MLREG_EGATE,
            "recorded since staging last moved");
    ck_assert_str_eq(holder("staging"), "1.0");
    /* approving again replaces the spent approval */
    ck_assert_int_eq(approve_override("1.1", "staging", "now", "bob", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(promote_override(NULL, "1.1", "staging", "second fix", 0, "alice"), 0);
    ck_assert_str_eq(holder("staging"), "1.1");
}
END_TEST

START_TEST(test_an_override_never_stands_in_for_signatures_and_is_not_needed_when_rules_pass)
{
    json_t *res = NULL;
    size_t n0;

    th_use_gates(&pol, "{\"production\":[{\"metric\":\"accuracy\",\"min\":0.85},"
                       "{\"require\":\"signed\",\"min\":1}]}");
    push_simple("1.0", 0.70);
    ck_assert_int_eq(approve_override("1.0", "production", "go", "bob", NULL), 0);
    ck_code(promote_override(&res, "1.0", "production", "fix", 0, "alice"), MLREG_EGATE,
            "a failing `signed` rule is never overridden");
    ck_assert(json_is_false(json_object_get(res, "override")));
    json_decref(res);
    ck_assert_str_eq(holder("production"), "");

    /* dev has no rules: an override there is an ordinary promotion */
    n0 = n_promotions();
    ck_assert_int_eq(promote_override(&res, "1.0", "dev", "fix", 0, "alice"), 0);
    ck_assert(json_is_false(json_object_get(res, "override")));
    ck_assert(json_is_true(json_object_get(res, "moved")));
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(res, "note")), "every gate rule passed"));
    json_decref(res);
    ck_assert_uint_eq(n_promotions(), n0 + 1);
    res = last_entry();
    ck_assert_ptr_null(json_object_get(json_object_get(res, "details"), "override"));
    ck_assert_ptr_null(json_object_get(json_object_get(res, "details"), "override_requested"));
    json_decref(res);
}
END_TEST

START_TEST(test_an_override_approval_counts_for_a_day_and_only_after_the_stages_last_move)
{
    const int64_t day = (int64_t)MLREG_OVERRIDE_APPROVAL_TTL_S * 1000000000;
    json_t *rec = json_pack("{s:b, s:I}", "override", 1, "time_ns", (json_int_t)5000);
    json_t *plain = json_pack("{s:I}", "time_ns", (json_int_t)5000);

    ck_assert_int_eq(MLREG_OVERRIDE_APPROVAL_TTL_S, 86400);
    ck_assert_int_eq(mlreg_promotions__override_live(rec, 0, 5000), 1);
    ck_assert_int_eq(mlreg_promotions__override_live(rec, 0, 5000 + day), 1);
    ck_assert_int_eq(mlreg_promotions__override_live(rec, 0, 5000 + day + 1), 0);
    ck_assert_int_eq(mlreg_promotions__override_live(rec, 4999, 6000), 1);
    ck_assert_int_eq(mlreg_promotions__override_live(rec, 5000, 6000), 0); /* moved since */
    ck_assert_int_eq(mlreg_promotions__override_live(rec, 0, 4999), 0);    /* from the future */
    ck_assert_int_eq(mlreg_promotions__override_live(plain, 0, 6000), 0);  /* not an override */
    json_decref(rec);
    json_decref(plain);
}
END_TEST

START_TEST(test_the_override_role_names_a_stage_and_only_admin_implies_it)
{
    th_use_gates(&pol, "{}");
    ck_assert_int_eq(mlreg_auth_role_validate("override:production"), 0);
    ck_assert_int_eq(mlreg_auth_role_validate("override:production@team"), 0);
    ck_code(mlreg_auth_role_validate("override"), MLREG_EINVALID, "needs a stage (override:STAGE)");
    ck_code(mlreg_auth_role_validate("override:"), MLREG_EINVALID, "needs a stage");
    ck_code(mlreg_auth_role_validate("overide:production"), MLREG_EINVALID, "override:STAGE");
    ck_assert_int_eq(mlreg_auth_check(as("glass"), MLREG_ROLE_OVERRIDE, "production", MODEL), 0);
    ck_code(mlreg_auth_check(as("glass"), MLREG_ROLE_OVERRIDE, "staging", MODEL), MLREG_EFORBIDDEN,
            "lacks role override:staging");
    ck_code(mlreg_auth_check(as("glass"), MLREG_ROLE_OVERRIDE, "production", "other/m"),
            MLREG_EFORBIDDEN, "lacks role override:production for model 'other/m'");
    ck_code(mlreg_auth_check(as("prod"), MLREG_ROLE_OVERRIDE, "production", MODEL),
            MLREG_EFORBIDDEN, "lacks role override:production");
    ck_assert_int_eq(mlreg_auth_check(as("root"), MLREG_ROLE_OVERRIDE, "production", MODEL), 0);
    /* override does not imply promote or approve */
    ck_code(mlreg_auth_check(as("glass"), MLREG_ROLE_APPROVE, "production", MODEL),
            MLREG_EFORBIDDEN, "lacks role approve:production");
    {
        json_t *roles = mlreg_identity_roles(as("glass"));
        ck_assert_str_eq(json_string_value(json_array_get(roles, 1)), "override:production@team");
        json_decref(roles);
    }
}
END_TEST

static Suite *promotions_suite(void)
{
    Suite *s = suite_create("promotions");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_a_passing_promotion_moves_the_stage_and_is_recorded);
    tcase_add_test(tc,
                   test_tag_listing_adds_the_stages_holding_a_release_and_pages_the_merged_list);
    tcase_add_test(tc, test_a_failing_promotion_is_refused_recorded_and_moves_nothing);
    tcase_add_test(tc,
                   test_promotions_are_paged_by_seq_and_a_walk_sees_each_once_while_more_arrive);
    tcase_add_test(tc, test_stage_history_is_paged_by_its_seq_oldest_first);
    tcase_add_test(tc, test_a_dry_run_evaluates_but_records_and_moves_nothing);
    tcase_add_test(tc, test_hostile_promotions_are_clear_errors_and_move_nothing);
    tcase_add_test(tc, test_max_drop_uses_the_release_in_the_target_stage_as_baseline);
    tcase_add_test(tc, test_previous_stage_needs_the_release_to_have_been_in_the_stage_before);
    tcase_add_test(tc, test_signed_counts_trusted_keys_and_approvals_exclude_the_pusher);
    tcase_add_test(tc, test_signed_counts_only_keys_whose_role_signs_releases);
    tcase_add_test(tc, test_rollback_restores_the_previous_holder_and_checks_signatures_again);
    tcase_add_test(tc, test_resolve_at_a_time_returns_what_held_the_stage_then);
    tcase_add_test(tc, test_image_bindings_are_idempotent_validated_and_shown_on_stages);
    tcase_add_test(tc, test_resolve_at_a_time_answers_the_image_bound_by_then);
    tcase_add_test(tc, test_binding_to_a_release_a_stage_holds_needs_promote_for_that_stage);
    tcase_add_test(tc, test_binding_to_a_release_that_held_stages_needs_promote_for_each_of_them);
    tcase_add_test(tc, test_rebinding_an_earlier_image_makes_it_current_again_and_is_audited);
    tcase_add_test(tc, test_the_release_record_names_its_pusher);
    tcase_add_test(tc, test_the_stage_list_carries_each_stages_rules_as_configured);
    tcase_add_test(tc, test_racing_promotions_serialise_with_the_right_baseline);
    tcase_add_test(
        tc, test_promotions_write_the_empty_config_once_unless_it_changed_or_blobs_were_deleted);
    tcase_add_test(
        tc, test_an_override_moves_only_with_another_identitys_approval_and_is_flagged_everywhere);
    tcase_add_test(tc,
                   test_an_override_approval_is_spent_when_the_stage_moves_and_can_be_given_again);
    tcase_add_test(
        tc, test_an_override_never_stands_in_for_signatures_and_is_not_needed_when_rules_pass);
    tcase_add_test(tc, test_the_override_role_names_a_stage_and_only_admin_implies_it);
    tcase_add_test(tc,
                   test_an_override_approval_counts_for_a_day_and_only_after_the_stages_last_move);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(promotions_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
