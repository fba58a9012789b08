/* check_retention.c: which releases retention purges and why
 * (registry/retention.c), and what a garbage collection reports of it
 * (registry/gc.c). The decision alone on given facts; then the plan of a
 * real registry (fs backend, LMDB) holding a model with 20 releases whose
 * stages moved at chosen times (the process clock is pushed forward with
 * mlreg_time_advance() before each move), judged at several "now"s and
 * under several rules. */
#include "../../registry/registry_internal.h"
#include "mlreg/audit.h"
#include "mlreg/blob.h"
#include "mlreg/common.h"
#include "mlreg/config.h"
#include "mlreg/gc.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"
#include "mlreg/retention.h"
#include "mlreg/time.h"

#include "helpers.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL  "team-a/clf"
#define DAY    (86400LL * 1000000000LL)
#define MINUTE (60LL * 1000000000LL)

static mlreg_config_retention rule(const char *models, unsigned int keep, uint64_t within_s,
                                   uint64_t withdrawn_s, char **prot, size_t nprot)
{
    mlreg_config_retention r;

    memset(&r, 0, sizeof(r));
    r.models = (char *)models;
    r.keep_last = keep;
    r.held_within = within_s;
    r.withdrawn_for = withdrawn_s;
    r.protected_stages = prot;
    r.n_protected_stages = nprot;
    return r;
}

/* ---- the decision alone ------------------------------------------------------- */

START_TEST(test_the_first_matching_rule_applies_and_no_rule_keeps_everything)
{
    mlreg_config_retention rules[2] = {rule("team-a/special", 100, 0, 0, NULL, 0),
                                       rule("team-a/*", 1, 0, 0, NULL, 0)};

    ck_assert_ptr_eq(mlreg_retention_rule_for(rules, 2, "team-a/special"), &rules[0]);
    ck_assert_ptr_eq(mlreg_retention_rule_for(rules, 2, "team-a/clf"), &rules[1]);
    ck_assert_ptr_eq(mlreg_retention_rule_for(rules, 2, "team-a/x/y"), &rules[1]);
    ck_assert_ptr_null(mlreg_retention_rule_for(rules, 2, "team-b/clf"));
    ck_assert_ptr_null(mlreg_retention_rule_for(rules, 2, "team-a"));
}
END_TEST

START_TEST(test_the_decision_names_the_first_reason_that_keeps_a_release)
{
    /* now = day 100; the rule keeps 1, 10 days of stage history, 7 days
     * after a withdrawal, and what production ever held */
    int64_t now = 100 * DAY;
    char *prot[] = {"production"};
    mlreg_config_retention r = rule("*", 1, 10 * 86400, 7 * 86400, prot, 1);
    mlreg_retention_hold staging_now = {"staging", 1, now};
    mlreg_retention_hold dev_recent = {"dev", 0, 95 * DAY};
    mlreg_retention_hold dev_old = {"dev", 0, 80 * DAY};
    mlreg_retention_hold prod_old = {"production", 0, 20 * DAY};
    mlreg_retention_release rels[7];
    const char *const versions[] = {"7", "6", "5", "4", "3", "2", "1"};

    memset(rels, 0, sizeof(rels));
    for (int i = 0; i < 7; i++) {
        rels[i].version = versions[i];
        rels[i].created_ns = (int64_t)(7 - i) * DAY;
    }
    rels[0].withdrawn = 1; /* "7", newest, withdrawn 2 days ago: not counted, kept */
    rels[0].withdrawn_ns = 98 * DAY;
    rels[2].holds = &staging_now; /* "5" */
    rels[2].nholds = 1;
    rels[3].holds = &dev_recent; /* "4" */
    rels[3].nholds = 1;
    rels[4].holds = &prod_old; /* "3" */
    rels[4].nholds = 1;
    rels[5].holds = &dev_old; /* "2" */
    rels[5].nholds = 1;
    rels[6].withdrawn = 1; /* "1", withdrawn 30 days ago */
    rels[6].withdrawn_ns = 70 * DAY;
    ck_assert_int_eq(mlreg_retention_decide(rels, 7, &r, now), 0);
    ck_assert_int_eq(rels[0].purge, 0);
    ck_assert_str_eq(rels[0].why, "withdrawn 2d ago, kept 7d");
    ck_assert_int_eq(rels[1].purge, 0);
    ck_assert_str_eq(rels[1].why, "newest 1");
    ck_assert_int_eq(rels[2].purge, 0);
    ck_assert_str_eq(rels[2].why, "held by staging");
    ck_assert_int_eq(rels[3].purge, 0);
    ck_assert_str_eq(rels[3].why, "held by dev within 10d");
    ck_assert_int_eq(rels[4].purge, 0);
    ck_assert_str_eq(rels[4].why, "protected stage production");
    ck_assert_int_eq(rels[5].purge, 1);
    ck_assert_str_eq(rels[5].why, "older than the newest 1, last held by dev 20d ago");
    ck_assert_int_eq(rels[6].purge, 1);
    ck_assert_str_eq(rels[6].why, "withdrawn 30d ago, kept only 7d, never held by a stage");

    /* five days later dev's hold is at the edge of its window, still kept;
     * the withdrawal is exactly 7 days old: its time is up */
    ck_assert_int_eq(mlreg_retention_decide(rels, 7, &r, now + 5 * DAY), 0);
    ck_assert_int_eq(rels[3].purge, 0);
    ck_assert_int_eq(rels[0].purge, 1);
    ck_assert_str_eq(rels[0].why, "withdrawn 7d ago, kept only 7d, never held by a stage");
    /* six days later the withdrawal and dev's hold are past their windows */
    ck_assert_int_eq(mlreg_retention_decide(rels, 7, &r, now + 6 * DAY), 0);
    ck_assert_int_eq(rels[0].purge, 1);
    ck_assert_str_eq(rels[0].why, "withdrawn 8d ago, kept only 7d, never held by a stage");
    ck_assert_int_eq(rels[3].purge, 1);
    ck_assert_str_eq(rels[3].why, "older than the newest 1, last held by dev 11d ago");
    ck_assert_int_eq(rels[4].purge, 0); /* protected forever */
}
END_TEST

START_TEST(test_the_newest_are_ordered_by_created_time_then_version)
{
    mlreg_config_retention r = rule("*", 2, 0, 0, NULL, 0);
    mlreg_retention_release rels[4];
    const char *const versions[] = {"1.9", "1.10", "1.2", "2.0"};

    memset(rels, 0, sizeof(rels));
    for (int i = 0; i < 4; i++) {
        rels[i].version = versions[i];
        rels[i].created_ns = 5 * DAY; /* all the same time: version decides */
    }
    rels[3].created_ns = 4 * DAY; /* "2.0" is older */
    ck_assert_int_eq(mlreg_retention_decide(rels, 4, &r, 10 * DAY), 0);
    ck_assert_int_eq(rels[0].purge, 0); /* 1.9 */
    ck_assert_int_eq(rels[1].purge, 0); /* 1.10 follows 1.9 */
    ck_assert_int_eq(rels[2].purge, 1); /* 1.2 */
    ck_assert_int_eq(rels[3].purge, 1); /* 2.0, created before */
    ck_assert_str_eq(rels[2].why, "older than the newest 2, never held by a stage");
    /* keep_last 0 keeps nothing by count; nothing at all is needed */
    r.keep_last = 0;
    ck_assert_int_eq(mlreg_retention_decide(rels, 4, &r, 10 * DAY), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(rels[i].purge, 1);
    ck_assert_int_eq(mlreg_retention_decide(NULL, 0, &r, 10 * DAY), 0);
}
END_TEST

/* ---- the plan of a registry ------------------------------------------------------ */

static th_registry fx;
static mlreg_policy *pol;
static mlreg_auth *auth;
static int64_t t0; /* the clock when the releases were pushed */

/* Pushes MODEL@1.N created on day N of 2026 (1.17 and 1.18 on the same day). */
static void push(const char *model, int n)
{
    mlreg_manifest_put_result res;
    char version[16], created[32], *body;
    json_t *doc;

    snprintf(version, sizeof(version), "1.%d", n);
    snprintf(created, sizeof(created), "2026-01-%02dT00:00:00Z", n == 18 ? 17 : n);
    body = th_release_body(fx.reg, model, version, "ci", "{\"metrics\":{\"accuracy\":0.9}}");
    doc = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    free(body);
    json_object_set_new(json_object_get(doc, "annotations"), MLREG_ANN_CREATED,
                        json_string(created));
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    ck_assert_msg(mlreg_registry_manifest_put_as(&res, fx.reg, model, version,
                                                 MLREG_MT_OCI_MANIFEST, body, strlen(body),
                                                 "ci") == 0,
                  "push %s: %s", version, mlreg_error_last());
    free(body);
}

/* From now on the registry's clock reads t0 + @p day days. */
static void at_day(int day)
{
    mlreg_time_advance(t0 + day * DAY);
}

static void promote(const char *version, const char *stage)
{
    mlreg_promote_req req = {MODEL, version, stage, "test", 0, "ci"};
    json_t *res = NULL;

    ck_assert_msg(mlreg_promote(&res, fx.reg, pol, &req) == 0, "promote %s to %s: %s", version,
                  stage, mlreg_error_last());
    json_decref(res);
}

static void withdraw(const char *version)
{
    json_t *res = NULL;

    ck_assert_msg(mlreg_release_withdraw(&res, fx.reg, pol,
                                         th_identity(&auth, "root", "[\"admin\"]"), MODEL, version,
                                         "bad weights", 0) == 0,
                  "withdraw %s: %s", version, mlreg_error_last());
    json_decref(res);
}

/* The history the plan tests share (days after t0):
 *   1  1.10 -> dev, staging, production      2  withdraw 1.5
 *   5  1.14 -> dev, staging                 10  1.14 -> production
 *  12  1.16 -> dev, staging                 15  1.16 -> production
 *  16  production rolled back (to 1.14)     17  1.18 -> dev
 *  18  1.18 -> staging                      19  withdraw 1.19
 * so at the end dev and staging hold 1.18 and production 1.14. */
static void setup(void)
{
    json_t *res = NULL;

    th_registry_setup(&fx, "retention", NULL);
    th_use_gates(&pol, "{}");
    for (int n = 1; n <= 20; n++)
        push(MODEL, n);
    push("team-b/other", 1);
    push("team-b/other", 2);
    t0 = mlreg_time_now_ns();
    at_day(1);
    promote("1.10", "dev");
    promote("1.10", "staging");
    promote("1.10", "production");
    at_day(2);
    withdraw("1.5");
    at_day(5);
    promote("1.14", "dev");
    promote("1.14", "staging");
    at_day(10);
    promote("1.14", "production");
    at_day(12);
    promote("1.16", "dev");
    promote("1.16", "staging");
    at_day(15);
    promote("1.16", "production");
    at_day(16);
    ck_assert_msg(
        mlreg_rollback(&res, fx.reg, pol, MODEL, "production", NULL, "regression", "ci") == 0,
        "rollback: %s", mlreg_error_last());
    json_decref(res);
    at_day(17);
    promote("1.18", "dev");
    at_day(18);
    promote("1.18", "staging");
    at_day(19);
    withdraw("1.19");
}

static void teardown(void)
{
    mlreg_auth_free(auth);
    auth = NULL;
    mlreg_policy_free(pol);
    pol = NULL;
    th_registry_teardown(&fx);
}

/* The plan of @p r at t0 + @p day days and a minute (each move happened a
 * moment after its day began), as one line per release "VERSION
 * purge|keep: WHY", newest first, the purged then the kept. */
static char *plan_text(const mlreg_config_retention *r, size_t nr, int day)
{
    json_t *plan = NULL, *item;
    static char buf[8192];
    size_t n = 0, i;
    const char *lists[] = {"purge", "kept"};

    ck_assert_msg(mlreg_retention_plan(&plan, fx.reg, r, nr, t0 + day * DAY + MINUTE) == 0,
                  "plan: %s", mlreg_error_last());
    buf[0] = '\0';
    for (int l = 0; l < 2; l++) {
        json_array_foreach(json_object_get(plan, lists[l]), i, item)
        {
            ck_assert_str_eq(json_string_value(json_object_get(item, "model")), MODEL);
            ck_assert_int_eq(json_is_true(json_object_get(item, "purge")), l == 0);
            ck_assert_ptr_nonnull(json_string_value(json_object_get(item, "digest")));
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s %s: %s\n",
                                  json_string_value(json_object_get(item, "version")),
                                  l == 0 ? "purge" : "keep",
                                  json_string_value(json_object_get(item, "why")));
        }
    }
    json_decref(plan);
    return buf;
}

START_TEST(test_the_plan_keeps_the_newest_the_held_and_the_recently_held)
{
    mlreg_config_retention r[2] = {rule("team-c/*", 0, 0, 0, NULL, 0),
                                   rule("team-a/*", 3, 7 * 86400, 5 * 86400, NULL, 0)};

    /* a day after the last move: staging dropped 1.16 two days ago */
    ck_assert_str_eq(plan_text(r, 2, 20),
                     "1.15 purge: older than the newest 3, never held by a stage\n"
                     "1.13 purge: older than the newest 3, never held by a stage\n"
                     "1.12 purge: older than the newest 3, never held by a stage\n"
                     "1.11 purge: older than the newest 3, never held by a stage\n"
                     "1.10 purge: older than the newest 3, last held by production 10d ago\n"
                     "1.9 purge: older than the newest 3, never held by a stage\n"
                     "1.8 purge: older than the newest 3, never held by a stage\n"
                     "1.7 purge: older than the newest 3, never held by a stage\n"
                     "1.6 purge: older than the newest 3, never held by a stage\n"
                     "1.5 purge: withdrawn 18d ago, kept only 5d, never held by a stage\n"
                     "1.4 purge: older than the newest 3, never held by a stage\n"
                     "1.3 purge: older than the newest 3, never held by a stage\n"
                     "1.2 purge: older than the newest 3, never held by a stage\n"
                     "1.1 purge: older than the newest 3, never held by a stage\n"
                     "1.20 keep: newest 3\n"
                     "1.19 keep: withdrawn 1d ago, kept 5d\n"
                     "1.18 keep: newest 3\n"
                     "1.17 keep: newest 3\n"
                     "1.16 keep: held by staging within 7d\n"
                     "1.14 keep: held by production\n");
}
END_TEST

/* The number of audit entries. */
static uint64_t audit_size(void)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    mlreg_meta_txn_abort(txn);
    return n;
}

static int count(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

START_TEST(test_the_plan_changes_as_time_passes)
{
    mlreg_config_retention r = rule("team-a/*", 3, 7 * 86400, 5 * 86400, NULL, 0);
    const char *text;

    /* 24 days: staging dropped 1.16 six days ago; 1.19 was withdrawn five
     * days ago, a minute over its five days */
    text = plan_text(&r, 1, 24);
    ck_assert_ptr_nonnull(strstr(text, "1.16 keep: held by staging within 7d\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "1.19 purge: withdrawn 5d ago, kept only 5d, never held by a stage\n"));
    ck_assert_int_eq(count(text, " keep: "), 5);
    /* a day later 1.16 goes too: four are kept, 1.20, 1.18, 1.17 and 1.14 */
    text = plan_text(&r, 1, 25);
    ck_assert_ptr_nonnull(
        strstr(text, "1.16 purge: older than the newest 3, last held by staging 7d ago\n"));
    ck_assert_ptr_nonnull(strstr(text, "1.14 keep: held by production\n"));
    ck_assert_ptr_nonnull(strstr(text, "1.20 keep: newest 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "1.18 keep: newest 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "1.17 keep: newest 3\n"));
    ck_assert_int_eq(count(text, " keep: "), 4);
    ck_assert_int_eq(count(text, " purge: "), 16);
}
END_TEST

START_TEST(test_a_protected_stage_keeps_everything_it_ever_held)
{
    char *prot[] = {"production"};
    mlreg_config_retention r = rule("team-a/clf", 1, 0, 0, prot, 1);
    const char *text = plan_text(&r, 1, 40);

    /* 1.10 and 1.16 left production long ago; 1.18 is held by two stages */
    ck_assert_ptr_nonnull(strstr(text, "1.10 keep: protected stage production\n"));
    ck_assert_ptr_nonnull(strstr(text, "1.16 keep: protected stage production\n"));
    ck_assert_ptr_nonnull(strstr(text, "1.14 keep: held by production\n"));
    ck_assert_ptr_nonnull(strstr(text, "1.18 keep: held by dev, staging\n"));
    ck_assert_ptr_nonnull(strstr(text, "1.20 keep: newest 1\n"));
    /* 1.17 shares 1.18's created time and sorts before it */
    ck_assert_ptr_nonnull(
        strstr(text, "1.17 purge: older than the newest 1, never held by a stage\n"));
    ck_assert_ptr_nonnull(strstr(
        text, "1.19 purge: withdrawn 21d ago, never held by a stage\n")); /* withdrawn_for 0 */
}
END_TEST

START_TEST(test_purged_releases_and_models_no_rule_matches_are_not_looked_at)
{
    mlreg_config_retention r = rule("team-a/*", 0, 0, 0, NULL, 0);
    mlreg_meta_txn *txn = NULL;
    json_t *rec = NULL;
    const char *text;

    /* mark 1.3 purged as the purge change does */
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 1), 0);
    ck_assert_int_eq(mlreg_registry__release_record_get(&rec, txn, MODEL, "1.3"), 0);
    json_object_set_new(rec, "purged", json_pack("{s:s}", "reason", "takedown"));
    ck_assert_int_eq(mlreg_registry__release_record_put(txn, MODEL, "1.3", rec), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    json_decref(rec);
    text = plan_text(&r, 1, 30);
    ck_assert_ptr_null(strstr(text, "1.3 "));
    ck_assert_ptr_nonnull(strstr(text, "1.18 keep: held by dev, staging\n"));
    ck_assert_ptr_nonnull(strstr(text, "1.14 keep: held by production\n"));
    ck_assert_int_eq(count(text, " purge: "), 17); /* 20, less 1.3, 1.18 and 1.14 */
    /* no rule: an empty plan */
    text = plan_text(NULL, 0, 30);
    ck_assert_str_eq(text, "");
}
END_TEST

START_TEST(test_a_dry_run_of_gc_reports_the_plan_and_changes_nothing)
{
    mlreg_config_retention r = rule("team-*", 17, 0, 0, NULL, 0);
    mlreg_gc_opts o = {.grace_seconds = 60,
                       .stale_upload_seconds = 3600,
                       .dry_run = 1,
                       .actor = "ops",
                       .retention = &r,
                       .n_retention = 1};
    json_t *rep = NULL, *ret, *purge, *rec = NULL;
    mlreg_meta_txn *txn = NULL;
    uint64_t before = audit_size();

    ck_assert_msg(mlreg_registry_gc(&rep, fx.reg, &o) == 0, "%s", mlreg_error_last());
    ret = json_object_get(rep, "retention");
    /* the 17 newest of the 18 not withdrawn and team-b/other's two
     * releases (it matches too) are kept; the two withdrawn ones and 1.1 go */
    purge = json_object_get(ret, "purge");
    ck_assert_int_eq(json_array_size(purge), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(purge, 0), "version")),
                     "1.19");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(purge, 1), "version")),
                     "1.5");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(purge, 2), "version")),
                     "1.1");
    ck_assert_int_eq(json_array_size(json_object_get(ret, "kept")), 19);
    ck_assert_int_eq(audit_size(), before);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_registry__release_record_get(&rec, txn, MODEL, "1.1"), 0);
    ck_assert_ptr_null(json_object_get(rec, "purged"));
    mlreg_meta_txn_abort(txn);
    json_decref(rec);
    json_decref(rep);
    /* without rules the report says so */
    o.n_retention = 0;
    ck_assert_int_eq(mlreg_registry_gc(&rep, fx.reg, &o), 0);
    ck_assert(json_is_null(json_object_get(rep, "retention")));
    json_decref(rep);
}
END_TEST

START_TEST(test_a_real_run_with_rules_needs_the_stages_and_who_purges)
{
    mlreg_config_retention r = rule("team-a/*", 3, 0, 0, NULL, 0);
    mlreg_gc_opts o = {.grace_seconds = 60,
                       .stale_upload_seconds = 3600,
                       .actor = "ops",
                       .retention = &r,
                       .n_retention = 1};
    json_t *rep = NULL;

    ck_assert_int_eq(mlreg_registry_gc(&rep, fx.reg, &o), MLREG_EINVALID);
    ck_assert_ptr_null(rep);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "retention needs"));
}
END_TEST

/* The release record of MODEL@@p version (the caller decrefs). */
static json_t *record(const char *version)
{
    mlreg_meta_txn *txn = NULL;
    json_t *rec = NULL;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(fx.reg), 0), 0);
    ck_assert_int_eq(mlreg_registry__release_record_get(&rec, txn, MODEL, version), 0);
    mlreg_meta_txn_abort(txn);
    return rec;
}

/* Whether the store holds the weights file of release record @p rec. */
static int weights_stored(const json_t *rec)
{
    const json_t *f;
    size_t i;
    mlreg_digest d;

    json_array_foreach(json_object_get(rec, "files"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "kind")), "weights")) continue;
        ck_assert_int_eq(mlreg_digest_parse(&d, json_string_value(json_object_get(f, "digest"))),
                         0);
        return mlreg_blobstore_exists(mlreg_registry_blobstore(fx.reg), &d);
    }
    ck_abort_msg("no weights file");
    return -1;
}

START_TEST(test_a_real_run_purges_exactly_the_plan_and_collects_its_files)
{
    mlreg_config_retention r = rule("team-a/*", 3, 7 * 86400, 5 * 86400, NULL, 0);
    mlreg_gc_opts o = {.grace_seconds = 0,
                       .stale_upload_seconds = 3600,
                       .actor = "root",
                       .retention = &r,
                       .n_retention = 1,
                       .policy = pol,
                       .who = th_identity(&auth, "root", "[\"admin\"]")};
    json_t *dry = NULL, *rep = NULL, *ret, *item, *rec;
    size_t i;

    /* grace 0, but a blob written in the current second counts as just
     * written (write times have whole seconds): let the setup's age */
    sleep(1);
    o.dry_run = 1;
    ck_assert_int_eq(mlreg_registry_gc(&dry, fx.reg, &o), 0);
    rec = record("1.3");
    ck_assert_int_eq(weights_stored(rec), 1);
    json_decref(rec);
    o.dry_run = 0;
    ck_assert_msg(mlreg_registry_gc(&rep, fx.reg, &o) == 0, "%s", mlreg_error_last());
    ret = json_object_get(rep, "retention");
    ck_assert_int_eq(json_array_size(json_object_get(ret, "not_purged")), 0);
    /* the clock reads day 19 now: the plan of the dry run, item for item */
    ck_assert_int_eq(json_array_size(json_object_get(ret, "purged")),
                     json_array_size(json_object_get(json_object_get(dry, "retention"), "purge")));
    ck_assert_int_eq(json_array_size(json_object_get(ret, "purged")), 14);
    json_array_foreach(json_object_get(ret, "purged"), i, item)
    {
        json_t *want =
            json_array_get(json_object_get(json_object_get(dry, "retention"), "purge"), i);
        const char *v = json_string_value(json_object_get(item, "version"));
        ck_assert_str_eq(v, json_string_value(json_object_get(want, "version")));
        ck_assert_str_eq(json_string_value(json_object_get(item, "why")),
                         json_string_value(json_object_get(want, "why")));
        rec = record(v);
        ck_assert_msg(json_object_get(rec, "purged") != NULL, "%s not purged", v);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(rec, "purged"), "seq")),
                         json_integer_value(json_object_get(item, "seq")));
        ck_assert_int_eq(
            strncmp(json_string_value(json_object_get(json_object_get(rec, "purged"), "reason")),
                    "retention: ", 11),
            0);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(rec, "purged"), "reason")) + 11,
            json_string_value(json_object_get(item, "why")));
        /* collected by the same run, but for the files of 1.1 and 1.2,
         * which team-b/other's 1.1 and 1.2 share (the same bytes) */
        ck_assert_msg(weights_stored(rec) == (!strcmp(v, "1.1") || !strcmp(v, "1.2")),
                      "weights of %s", v);
        json_decref(rec);
    }
    ck_assert_int_eq(json_array_size(json_object_get(ret, "kept")), 6);
    /* the dry run listed the blobs the purges it planned would free: the
     * very blobs the real run deleted */
    ck_assert_int_gt(json_array_size(json_object_get(rep, "deleted")), 0);
    ck_assert_int_eq(json_array_size(json_object_get(dry, "deleted")),
                     json_array_size(json_object_get(rep, "deleted")));
    json_array_foreach(json_object_get(rep, "deleted"), i, item)
    {
        size_t k;
        json_t *d;
        int found = 0;
        json_array_foreach(json_object_get(dry, "deleted"), k, d)
        {
            if (json_equal(json_object_get(d, "digest"), json_object_get(item, "digest")))
                found = 1;
        }
        ck_assert_msg(found, "%s deleted, not in the dry run",
                      json_string_value(json_object_get(item, "digest")));
    }
    rec = record("1.14"); /* production */
    ck_assert_ptr_null(json_object_get(rec, "purged"));
    ck_assert_int_eq(weights_stored(rec), 1);
    json_decref(rec);
    json_decref(rep);
    json_decref(dry);
    /* a second run finds nothing more to purge */
    ck_assert_int_eq(mlreg_registry_gc(&rep, fx.reg, &o), 0);
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(rep, "retention"), "purged")),
                     0);
    json_decref(rep);
}
END_TEST

START_TEST(test_a_purge_that_is_refused_is_reported_and_the_run_goes_on)
{
    mlreg_config_retention r = rule("team-a/*", 18, 0, 0, NULL, 0);
    mlreg_gc_opts o = {.grace_seconds = 0,
                       .stale_upload_seconds = 3600,
                       .actor = "ops",
                       .retention = &r,
                       .n_retention = 1,
                       .policy = pol,
                       .who = th_identity(&auth, "root", "[\"admin\"]")};
    json_t *rep = NULL, *ret;
    mlreg_auth *other = NULL;

    /* a token that is not admin: both purges are refused, the blobs are
     * still collected */
    o.who = th_identity(&other, "pusher", "[\"push\"]");
    ck_assert_msg(mlreg_registry_gc(&rep, fx.reg, &o) == 0, "%s", mlreg_error_last());
    ret = json_object_get(rep, "retention");
    ck_assert_int_eq(json_array_size(json_object_get(ret, "purged")), 0);
    ck_assert_int_eq(json_array_size(json_object_get(ret, "not_purged")), 2);
    ck_assert_ptr_nonnull(
        strstr(json_string_value(
                   json_object_get(json_array_get(json_object_get(ret, "not_purged"), 0), "error")),
               "needs role admin"));
    ck_assert(json_is_array(json_object_get(rep, "deleted")));
    json_decref(rep);
    mlreg_auth_free(other);
}
END_TEST

static Suite *retention_suite(void)
{
    Suite *s = suite_create("retention");
    TCase *tc = tcase_create("decide");

    tcase_add_test(tc, test_the_first_matching_rule_applies_and_no_rule_keeps_everything);
    tcase_add_test(tc, test_the_decision_names_the_first_reason_that_keeps_a_release);
    tcase_add_test(tc, test_the_newest_are_ordered_by_created_time_then_version);
    suite_add_tcase(s, tc);

    tc = tcase_create("plan");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_the_plan_keeps_the_newest_the_held_and_the_recently_held);
    tcase_add_test(tc, test_the_plan_changes_as_time_passes);
    tcase_add_test(tc, test_a_protected_stage_keeps_everything_it_ever_held);
    tcase_add_test(tc, test_purged_releases_and_models_no_rule_matches_are_not_looked_at);
    tcase_add_test(tc, test_a_dry_run_of_gc_reports_the_plan_and_changes_nothing);
    tcase_add_test(tc, test_a_real_run_with_rules_needs_the_stages_and_who_purges);
    tcase_add_test(tc, test_a_real_run_purges_exactly_the_plan_and_collects_its_files);
    tcase_add_test(tc, test_a_purge_that_is_refused_is_reported_and_the_run_goes_on);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(retention_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
