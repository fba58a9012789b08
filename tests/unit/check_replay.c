/* check_replay.c: the audit log alone, with the blob store, rebuilds the
 * metadata (mlreg_registry_replay()). A rich history is made through the
 * public API on a real registry (fs backend, LMDB): releases with eval
 * reports and several files, plain OCI manifests with tags, tag and
 * manifest deletes, blob links, mounts and unlinks, a referrer, signatures
 * by two keys, key trust and revocations, config keys dropped and listed
 * again across restarts, approvals, passed and refused promotions over
 * dev/staging/production with gates, a rollback, withdrawals (one that
 * rolls a stage back) and their undoing, a purge that deleted a signed
 * release's files, image bindings and the
 * attestations of every move, a garbage collection, a scrub that found a
 * damaged blob, API tokens made and revoked at runtime. Its log is then replayed into a fresh LMDB
 * that shares the blob store, and every table is compared key by key and byte for byte. */
#include "mlreg/audit.h"
#include "mlreg/auth.h"
#include "mlreg/common.h"
#include "mlreg/dsse.h"
#include "mlreg/evaluations.h"
#include "mlreg/gc.h"
#include "mlreg/gates.h"
#include "mlreg/keyring.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"
#include "mlreg/scrub.h"
#include "mlreg/sign.h"
#include "mlreg/signatures.h"
#include "mlreg/sys/blob_backend.h"
#include "mlreg/tables.h"
#include "mlreg/tokens.h"

#include "helpers.h"

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MODEL "team/clf"
#define OTHER "team/other"

static th_registry fx; /* the source: src and bot are fx.reg and fx.sk */
static char dst_dir[TH_DIR_MAX];
static mlreg_registry *src, *dst;
static mlreg_policy *pol;
static mlreg_seckey *bot, *second; /* "release-bot" from the config; "second" at runtime */
static mlreg_auth *auth;

/* ---- set-up ------------------------------------------------------------------------ */

/* Reopens the source registry with @p n config keys (the release key named
 * @p name), after a test freed it. */
static void open_src(size_t n, const char *name)
{
    fx.keys[0].name = (char *)name;
    fx.n_keys = n;
    th_registry_open(&fx);
    src = fx.reg;
}

/* Opens the destination: its own LMDB and log key, no config keys, and the
 * source's blob store. */
static void open_dst(void)
{
    mlreg_registry_opts opts;
    mlreg_blob_backend *backend = NULL;

    ck_assert_int_eq(mlreg_blob_backend_fs_new(&backend, fx.dir), 0);
    memset(&opts, 0, sizeof(opts));
    opts.data_dir = dst_dir;
    opts.map_size = 64u * 1024 * 1024;
    opts.backend = backend;
    ck_assert_msg(mlreg_registry_open(&dst, &opts) == 0, "open: %s", mlreg_error_last());
}

static void setup(void)
{
    json_t *g;

    th_registry_setup(&fx, "replay-src", NULL);
    src = fx.reg;
    bot = fx.sk;
    th_tmpdir(dst_dir, sizeof(dst_dir), "replay-dst");
    ck_assert_int_eq(mlreg_seckey_generate(&second), 0);
    /* the slice and improvement rules always pass here: they put interval
     * bounds, slice rows and margins into the entries replayed */
    g = json_loads("{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85},"
                   "{\"metric\":\"slices.*.accuracy\",\"min\":0,\"bound\":\"ci_low\"}],"
                   "\"production\":[{\"metric\":\"accuracy\",\"max_drop\":0.05},"
                   "{\"metric\":\"f1\",\"min_improvement\":0},"
                   "{\"require\":\"signed\",\"min\":1},{\"require\":\"previous_stage\"},"
                   "{\"require\":\"approvals\",\"min\":1}]}",
                   0, NULL);
    ck_assert_ptr_nonnull(g);
    ck_assert_msg(mlreg_policy_parse(&pol, NULL, g, NULL) == 0, "%s", mlreg_error_last());
    json_decref(g);
}

static void teardown(void)
{
    mlreg_auth_free(auth);
    auth = NULL;
    mlreg_policy_free(pol);
    pol = NULL;
    mlreg_registry_free(dst);
    src = dst = NULL;
    mlreg_seckey_free(second);
    bot = second = NULL;
    th_registry_teardown(&fx);
    th_rm_rf(dst_dir);
}

/* The identity of the token "ci" (admin: it binds images to released stages). */
static const mlreg_identity *ci(void)
{
    return th_identity(&auth, "ci", "[\"admin\"]");
}

/* ---- building the history -------------------------------------------------------- */

/* One layer descriptor of @p text (stored and linked into MODEL). */
static json_t *layer(const char *text, const char *media_type, const char *title, const char *kind)
{
    mlreg_digest d;
    char ds[MLREG_DIGEST_STRLEN + 1];

    th_put_blob(&d, src, MODEL, "ci", text);
    mlreg_digest_format(ds, &d);
    return json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "mediaType", media_type, "digest", ds, "size",
                     (json_int_t)strlen(text), "annotations", MLREG_ANN_TITLE, title,
                     MLREG_ANN_KIND, kind);
}

/* The dataset digest the eval reports push() makes name (and an eval code
 * digest with it), or NULL for none. */
static const char *push_dataset_digest;
#define EVAL_CODE "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

/* Pushes MODEL@version (weights, tokenizer, eval report with accuracy
 * @p acc and a dataset) by @p pusher; its digest into @p digest. */
static void push(const char *version, double acc, const char *pusher,
                 char digest[MLREG_DIGEST_STRLEN + 1])
{
    mlreg_manifest_put_result res;
    mlreg_digest cfgd;
    char weights[64], tok[64], report[512], digests[256] = "";
    json_t *doc;
    char *body;

    th_put_blob(&cfgd, src, MODEL, "ci", "{}");
    snprintf(weights, sizeof(weights), "weights of %s", version);
    snprintf(tok, sizeof(tok), "tokenizer of %s", version);
    if (push_dataset_digest != NULL)
        snprintf(digests, sizeof(digests), ",\"dataset_digest\":\"%s\",\"eval_code_digest\":\"%s\"",
                 push_dataset_digest, EVAL_CODE);
    snprintf(report, sizeof(report),
             "{\"dataset\":\"holdout\",\"metrics\":{\"accuracy\":%.6f,\"f1\":0.8125,"
             "\"slices\":{\"en\":{\"accuracy\":{\"value\":%.6f,\"ci_low\":0,\"ci_high\":1}}}}%s}",
             acc, acc, digests);
    doc = json_pack(
        "{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[o, o, o], s:{s:s, s:s, s:s, s:s}}", "schemaVersion",
        2, "mediaType", MLREG_MT_OCI_MANIFEST, "artifactType", MLREG_ARTIFACT_RELEASE, "config",
        "mediaType", MLREG_MT_OCI_EMPTY, "digest", MLREG_EMPTY_CONFIG_DIGEST, "size", 2, "layers",
        layer(weights, "application/vnd.mlreg.weights.v1", "model.bin", "weights"),
        layer(tok, "application/vnd.mlreg.tokenizer.v1", "tokenizer.json", "tokenizer"),
        layer(report, MLREG_MT_EVAL_REPORT, "eval.json", "eval-report"), "annotations",
        MLREG_ANN_MODEL, MODEL, MLREG_ANN_VERSION, version, MLREG_ANN_CREATED,
        "2026-01-02T03:04:05.25Z", MLREG_ANN_GIT_SHA, "0123456789abcdef0123456789abcdef01234567");
    ck_assert_ptr_nonnull(doc);
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    ck_assert_msg(mlreg_registry_manifest_put_as(&res, src, MODEL, version, MLREG_MT_OCI_MANIFEST,
                                                 body, strlen(body), pusher) == 0,
                  "push %s: %s", version, mlreg_error_last());
    mlreg_digest_format(digest, &res.digest);
    free(body);
}

/* Pushes a plain OCI image manifest into OTHER by @p reference (a tag, or
 * NULL for by digest), with a subject when @p subject is not NULL; its
 * digest into @p digest. */
static void push_plain(const char *layer_text, const char *reference, const char *subject,
                       const char *artifact_type, char digest[MLREG_DIGEST_STRLEN + 1])
{
    mlreg_manifest_put_result res;
    mlreg_digest cfgd, l;
    char cs[MLREG_DIGEST_STRLEN + 1], ls[MLREG_DIGEST_STRLEN + 1];
    json_t *doc;
    char *body;

    th_put_blob(&cfgd, src, OTHER, "ci", "{\"architecture\":\"amd64\"}");
    th_put_blob(&l, src, OTHER, "ci", layer_text);
    mlreg_digest_format(cs, &cfgd);
    mlreg_digest_format(ls, &l);
    doc = json_pack("{s:i, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:I}]}", "schemaVersion", 2,
                    "mediaType", MLREG_MT_OCI_MANIFEST, "config", "mediaType",
                    "application/vnd.oci.image.config.v1+json", "digest", cs, "size",
                    (int)strlen("{\"architecture\":\"amd64\"}"), "layers", "mediaType",
                    "application/vnd.oci.image.layer.v1.tar", "digest", ls, "size",
                    (json_int_t)strlen(layer_text));
    ck_assert_ptr_nonnull(doc);
    if (artifact_type != NULL)
        ck_assert_int_eq(json_object_set_new(doc, "artifactType", json_string(artifact_type)), 0);
    if (subject != NULL)
        ck_assert_int_eq(
            json_object_set_new(doc, "subject",
                                json_pack("{s:s, s:s, s:i}", "mediaType", MLREG_MT_OCI_MANIFEST,
                                          "digest", subject, "size", 300)),
            0);
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    mlreg_digest_buffer(&l, body, strlen(body));
    mlreg_digest_format(digest, &l);
    ck_assert_msg(mlreg_registry_manifest_put_as(&res, src, OTHER, reference ? reference : digest,
                                                 MLREG_MT_OCI_MANIFEST, body, strlen(body),
                                                 "ci") == 0,
                  "push plain: %s", mlreg_error_last());
    free(body);
}

static void sign(const char *version, const char *digest, const mlreg_seckey *key)
{
    char comment[512], b64[MLREG_PUBKEY_B64LEN + 1], *sig = NULL;
    mlreg_manifest_data *m = NULL;
    mlreg_pubkey pk;
    json_t *res = NULL;
    int created = 0;

    ck_assert_int_eq(mlreg_registry_manifest_get(&m, src, MODEL, digest), 0);
    snprintf(comment, sizeof(comment), "mlreg release model=%s version=%s digest=%s", MODEL,
             version, digest);
    ck_assert_int_eq(mlreg_sign(&sig, key, m->body, m->len, comment, NULL), 0);
    mlreg_seckey_pubkey(&pk, key);
    mlreg_pubkey_base64(b64, &pk);
    ck_assert_msg(mlreg_signature_attach(&res, &created, src, MODEL, version, sig, strlen(sig), b64,
                                         strlen(b64), "signer") == 0,
                  "attach: %s", mlreg_error_last());
    ck_assert_int_eq(created, 1);
    json_decref(res);
    free(sig);
    mlreg_manifest_data_free(m);
}

/* Promotes and checks the outcome: 0 passed, MLREG_EGATE refused. */
static void promote(const char *version, const char *stage, const char *reason, int want)
{
    mlreg_promote_req req = {MODEL, version, stage, reason, 0, "deployer"};
    json_t *res = NULL;
    int rc = mlreg_promote(&res, src, pol, &req);

    ck_assert_msg(rc == want, "promote %s to %s: %d %s %s", version, stage, rc, mlreg_error_last(),
                  json_dumps(json_object_get(res, "rules"), 0));
    json_decref(res);
}

/* A break-glass promotion by "deployer", checked as promote(). */
static void promote_override(const char *version, const char *stage, const char *reason, int want)
{
    mlreg_promote_req req = {MODEL, version, stage, reason, 0, "deployer"};
    json_t *res = NULL;
    int rc = mlreg_promote_override(&res, src, pol, &req);

    ck_assert_msg(rc == want, "override %s to %s: %d %s", version, stage, rc, mlreg_error_last());
    ck_assert(json_is_true(json_object_get(res, "override")) == (want == 0));
    json_decref(res);
}

static void approve_override(const char *version, const char *stage, const char *reason,
                             const char *who)
{
    json_t *res = NULL;
    int created = 0;

    ck_assert_msg(
        mlreg_approve_override(&res, &created, src, pol, MODEL, version, stage, reason, who) == 0,
        "%s", mlreg_error_last());
    ck_assert_int_eq(created, 1);
    json_decref(res);
}

static void approve(const char *version, const char *stage, const char *comment, const char *who)
{
    json_t *res = NULL;
    int created = 0;

    ck_assert_msg(mlreg_approve(&res, &created, src, pol, MODEL, version, stage, comment, who) == 0,
                  "%s", mlreg_error_last());
    ck_assert_int_eq(created, 1);
    json_decref(res);
}

static void bind_image(const char *version, const char *image, const char *digest)
{
    json_t *res = NULL;
    int created = 0;

    ck_assert_msg(mlreg_image_bind(&res, &created, src, ci(), MODEL, version, image, digest) == 0,
                  "%s", mlreg_error_last());
    ck_assert_int_eq(created, 1);
    json_decref(res);
}

static uint64_t log_size(mlreg_registry *reg)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    mlreg_meta_txn_abort(txn);
    return n;
}

/* Everything that appends an entry, each kind at least once. */
/* An evaluation of MODEL@version (digest @p d) signed by @p sk. */
/* Attests @p report about MODEL@version (digest @p d) with @p sk, as
 * evaluated at @p at_ns. */
static void attest_report(const char *version, const char *d, const mlreg_seckey *sk,
                          const char *report, int64_t at_ns)
{
    char *st = NULL, *env = NULL;
    size_t len = 0;
    json_t *res = NULL;
    int created = 0;

    ck_assert_int_eq(
        mlreg_evaluation_statement(&st, &len, MODEL, version, d, report, strlen(report), at_ns), 0);
    ck_assert_int_eq(mlreg_dsse_sign(&env, MLREG_DSSE_INTOTO_TYPE, st, len, sk), 0);
    ck_assert_msg(mlreg_evaluation_attest(&res, &created, src, MODEL, version, env, strlen(env),
                                          "nightly") == 0,
                  "attest: %s", mlreg_error_last());
    json_decref(res);
    free(st);
    free(env);
}

static void attest_eval(const char *version, const char *d, const mlreg_seckey *sk)
{
    static const char report[] = "{\"metrics\":{\"accuracy\":0.97}}";
    char *st = NULL, *env = NULL;
    size_t len = 0;
    json_t *res = NULL;
    int created = 0;

    ck_assert_int_eq(mlreg_evaluation_statement(&st, &len, MODEL, version, d, report,
                                                strlen(report), 1700000000000000000LL),
                     0);
    ck_assert_int_eq(mlreg_dsse_sign(&env, MLREG_DSSE_INTOTO_TYPE, st, len, sk), 0);
    ck_assert_msg(mlreg_evaluation_attest(&res, &created, src, MODEL, version, env, strlen(env),
                                          "nightly") == 0,
                  "attest: %s", mlreg_error_last());
    json_decref(res);
    free(st);
    free(env);
}

static void make_history(void)
{
    char d10[MLREG_DIGEST_STRLEN + 1], d11[MLREG_DIGEST_STRLEN + 1];
    char d12[MLREG_DIGEST_STRLEN + 1], d13[MLREG_DIGEST_STRLEN + 1], img[MLREG_DIGEST_STRLEN + 1];
    char d14[MLREG_DIGEST_STRLEN + 1];
    char other[MLREG_DIGEST_STRLEN + 1], sbom[MLREG_DIGEST_STRLEN + 1];
    char b64[MLREG_PUBKEY_B64LEN + 1], id[MLREG_KEYID_HEXLEN + 1];
    mlreg_digest spare, weights;
    mlreg_pubkey pk;
    json_t *obj = NULL, *res = NULL;
    int created = 0;

    /* releases */
    push("1.0", 0.91, "ci", d10);
    push("1.1", 0.93, "ci", d11);
    push("1.2", 0.70, NULL, d12); /* the local identity */

    /* plain OCI content: tags, a referrer, deletes, mount and unlink */
    push_plain("layer one", "latest", NULL, NULL, img);
    push_plain("layer one", "stable", NULL, NULL, img); /* a second tag, same manifest */
    push_plain("an sbom", NULL, img, "application/example.sbom", sbom);
    push_plain("layer two", NULL, NULL, NULL, other);
    ck_assert_msg(mlreg_registry_manifest_delete(src, OTHER, "stable", "ci") == 0, "%s",
                  mlreg_error_last());
    ck_assert_msg(mlreg_registry_manifest_delete(src, OTHER, other, "ci") == 0, "%s",
                  mlreg_error_last());
    ck_assert_int_eq(mlreg_digest_buffer(&weights, "weights of 1.0", strlen("weights of 1.0")), 0);
    ck_assert_msg(mlreg_registry_blob_mount(src, OTHER, MODEL, &weights, "ci") == 0, "%s",
                  mlreg_error_last());
    th_put_blob(&spare, src, OTHER, "ci", "a blob nobody references");
    ck_assert_msg(mlreg_registry_blob_unlink(src, OTHER, &spare, "ci") == 0, "%s",
                  mlreg_error_last());
    /* a collection takes the unlinked blob once its bytes are old, and a
     * later upload of the same bytes links it again */
    {
        char path[TH_DIR_MAX + 128], hex[MLREG_DIGEST_HEXLEN + 1];
        struct timespec old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
        mlreg_gc_opts go = {.grace_seconds = 60, .stale_upload_seconds = 3600, .actor = "ops"};
        json_t *report = NULL;

        mlreg_digest_hex(hex, &spare);
        snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", fx.dir, hex, hex);
        ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
        ck_assert_msg(mlreg_registry_gc(&report, src, &go) == 0, "%s", mlreg_error_last());
        ck_assert_int_eq(json_integer_value(json_object_get(report, "deleted_blobs")), 1);
        json_decref(report);
        th_put_blob(&spare, src, OTHER, "ci", "a blob nobody references");
    }

    /* a second signing key trusted at runtime; signatures by both */
    mlreg_seckey_pubkey(&pk, second);
    mlreg_pubkey_base64(b64, &pk);
    ck_assert_msg(mlreg_keyring_trust(&obj, &created, mlreg_registry_keyring(src), "second",
                                      "release", b64, strlen(b64), "admin") == 0,
                  "%s", mlreg_error_last());
    json_decref(obj);
    sign("1.0", d10, bot);
    sign("1.0", d10, second);
    sign("1.1", d11, bot);
    /* evaluations attested by those keys (stored; not an evaluator's) */
    attest_eval("1.0", d10, second);
    attest_eval("1.1", d11, bot);

    /* approvals, promotions passed and refused, a rollback */
    approve("1.0", "production", "looks good", "bob");
    approve("1.1", "production", NULL, "carol");
    promote("1.0", "dev", "first", 0);
    promote("1.0", "staging", "eval passed", 0);
    promote("1.0", "production", NULL, 0);
    promote("1.2", "dev", "try it", 0);
    promote("1.2", "staging", "hope", MLREG_EGATE);    /* accuracy below 0.85 */
    promote("1.1", "production", "skip", MLREG_EGATE); /* not through staging */
    promote("1.1", "staging", NULL, 0);
    promote("1.1", "production", "better model", 0);
    ck_assert_msg(mlreg_rollback(&res, src, pol, MODEL, "production", NULL, "incident 7", "ops") ==
                      0,
                  "%s", mlreg_error_last());
    json_decref(res);

    /* a withdrawal that rolls dev back from 1.2 (two entries in one change),
     * a promotion it refuses, its undoing, and a withdrawal that stays */
    ck_assert_msg(mlreg_release_withdraw(&res, src, pol, ci(), MODEL, "1.2", "bad labels", 1) == 0,
                  "%s", mlreg_error_last());
    json_decref(res);
    promote("1.2", "dev", "again", MLREG_EGATE);
    ck_assert_msg(mlreg_release_unwithdraw(&res, src, ci(), MODEL, "1.2", "labels fixed") == 0,
                  "%s", mlreg_error_last());
    json_decref(res);
    ck_assert_msg(mlreg_release_withdraw(&res, src, pol, ci(), MODEL, "1.2", "superseded", 0) == 0,
                  "%s", mlreg_error_last());
    json_decref(res);

    /* a purge of a signed, approved release: its weights and tokenizer
     * leave the shared blob store, so the replay rebuilds its push, its
     * signature and its approval from the manifest and eval report alone */
    push("1.3", 0.95, "ci", d13);
    sign("1.3", d13, bot);
    approve("1.3", "production", NULL, "bob");
    ck_assert_msg(mlreg_release_purge(&res, src, pol, ci(), MODEL, "1.3", "licence takedown") == 0,
                  "%s", mlreg_error_last());
    ck_assert_int_eq(json_integer_value(json_object_get(res, "deleted_blobs")), 2);
    json_decref(res);

    /* image bindings: by tag, by digest, and a re-bind of the first */
    bind_image("1.0", "acme/clf:1.0-abc1234", NULL);
    bind_image("1.0", "acme/clf:1.0-abc1234",
               "sha256:1111111111111111111111111111111111111111111111111111111111111111");
    bind_image("1.0", "acme/clf:1.0-abc1234", NULL);

    /* retention: a collection purges 1.2, withdrawn and held by no stage,
     * and keeps the two newest (release.purge inside the collection) */
    {
        mlreg_config_retention keep2 = {.models = MODEL, .keep_last = 2};
        mlreg_gc_opts go = {.grace_seconds = 60,
                            .stale_upload_seconds = 3600,
                            .actor = "admin",
                            .retention = &keep2,
                            .n_retention = 1,
                            .policy = pol,
                            .who = ci()};
        json_t *report = NULL, *purged;

        ck_assert_msg(mlreg_registry_gc(&report, src, &go) == 0, "%s", mlreg_error_last());
        purged = json_object_get(json_object_get(report, "retention"), "purged");
        ck_assert_int_eq(json_array_size(purged), 1);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(purged, 0), "version")),
                         "1.2");
        json_decref(report);
    }

    /* a scrub finds the unreferenced blob damaged on disk and moves it aside */
    th_fs_damage_blob(fx.dir, &spare, 0);
    ck_assert_msg(mlreg_registry_scrub(&res, src, &(mlreg_scrub_opts){.actor = "ops"}) == 0, "%s",
                  mlreg_error_last());
    ck_assert_int_eq(json_array_size(json_object_get(res, "corrupt")), 1);
    json_decref(res);

    /* break-glass: 1.4 fails staging's accuracy rule; an override refused
     * without an approval, approvals of the override by the promoter
     * (not counted) and by dave, the override that moves, and one refused
     * because production's `signed` rule is never overridden */
    push("1.4", 0.60, "ci", d14);
    promote("1.4", "dev", NULL, 0);
    promote_override("1.4", "staging", "incident 9", MLREG_EGATE);
    approve_override("1.4", "staging", "mine", "deployer");
    approve_override("1.4", "staging", "seen incident 9", "dave");
    promote_override("1.4", "staging", "incident 9", 0);
    approve_override("1.4", "production", "seen incident 9", "dave");
    promote_override("1.4", "production", "incident 9", MLREG_EGATE);

    /* API tokens made at runtime: one with an expiry, one revoked */
    {
        json_t *roles = json_pack("[s, s]", "push@team", "promote:staging");
        mlreg_token_spec spec = {"deployer",
                                 roles,
                                 3600,
                                 NULL,
                                 "ci",
                                 auth,
                                 mlreg_policy_stages(pol),
                                 mlreg_policy_stage_count(pol)};
        char *secret = NULL;

        (void)ci(); /* makes auth: the config has a token, so tokens may be made */
        spec.auth = auth;
        ck_assert_msg(mlreg_tokens_create(&res, &secret, mlreg_registry_tokens(src), &spec) == 0,
                      "%s", mlreg_error_last());
        json_decref(res);
        mlreg_tokens_secret_free(secret);
        spec.name = "short-lived";
        spec.expires_in = 0;
        ck_assert_int_eq(mlreg_tokens_create(&res, &secret, mlreg_registry_tokens(src), &spec), 0);
        json_decref(res);
        mlreg_tokens_secret_free(secret);
        ck_assert_int_eq(
            mlreg_tokens_revoke(&res, mlreg_registry_tokens(src), auth, "short-lived", "ci"), 0);
        json_decref(res);
        json_decref(roles);
    }

    /* revocations: retired, then compromised */
    mlreg_keyid_format(id, &pk.id);
    ck_assert_int_eq(
        mlreg_keyring_revoke(&obj, mlreg_registry_keyring(src), id, "retired", "rotated", "admin"),
        0);
    json_decref(obj);
    ck_assert_int_eq(
        mlreg_keyring_revoke(&obj, mlreg_registry_keyring(src), id, "compromised", NULL, "admin"),
        0);
    json_decref(obj);

    /* restarts: the config key dropped (key.untrust), then listed again
     * under another name (two key.trust entries in one change) */
    mlreg_registry_free(src);
    open_src(0, "release-bot");
    mlreg_registry_free(src);
    open_src(1, "release-bot-2");
}

/* ---- comparing the tables -------------------------------------------------------- */

typedef struct {
    json_t *pairs; /* [[key b64, value b64], ...] */
} table_walk;

static int collect_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    table_walk *w = payload;
    json_t *pair =
        json_pack("[s#, s#]", (const char *)key, (int)klen, (const char *)val, (int)vlen);

    /* keys and values may hold NULs and big-endian integers: compare raw
     * bytes, kept as JSON strings only when they are valid UTF-8 */
    if (pair == NULL) {
        char *k = malloc(klen * 2 + 1), *v = malloc(vlen * 2 + 1);
        sodium_bin2hex(k, klen * 2 + 1, key, klen);
        sodium_bin2hex(v, vlen * 2 + 1, val, vlen);
        pair = json_pack("[s, s]", k, v);
        free(k);
        free(v);
    }
    ck_assert_ptr_nonnull(pair);
    json_array_append_new(w->pairs, pair);
    return 0;
}

static json_t *table(mlreg_registry *reg, mlreg_db db)
{
    mlreg_meta_txn *txn = NULL;
    table_walk w = {json_array()};

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_ge(mlreg_meta_iter(txn, db, NULL, 0, NULL, 0, collect_cb, &w), 0);
    mlreg_meta_txn_abort(txn);
    return w.pairs;
}

/* Every table of @p a equals @p b's ("meta" and each of tables.h), key by
 * key, byte for byte. Upload sessions in progress are not history: they
 * live in the server's memory, in no table. */
static void assert_same_tables(mlreg_registry *a, mlreg_registry *b)
{
    for (int db = 0; db < MLREG_DB_END; db++) {
        json_t *ta, *tb;
        size_t i;

        ta = table(a, (mlreg_db)db);
        tb = table(b, (mlreg_db)db);
        for (i = 0; i < json_array_size(ta) && i < json_array_size(tb); i++) {
            char *x = json_dumps(json_array_get(ta, i), JSON_ENCODE_ANY);
            char *y = json_dumps(json_array_get(tb, i), JSON_ENCODE_ANY);
            ck_assert_msg(!strcmp(x, y), "table %d, record %zu:\n  live   %s\n  replay %s", db, i,
                          x, y);
            free(x);
            free(y);
        }
        ck_assert_msg(json_array_size(ta) == json_array_size(tb),
                      "table %d has %zu records live, %zu replayed", db, json_array_size(ta),
                      json_array_size(tb));
        json_decref(ta);
        json_decref(tb);
    }
}

/* ---- tests ------------------------------------------------------------------------- */

START_TEST(test_replaying_the_log_rebuilds_every_table_byte_for_byte)
{
    json_t *t;
    uint64_t n;

    make_history();
    n = log_size(src);
    ck_assert_uint_gt(n, 40);
    /* the history holds every kind of entry */
    t = table(src, MLREG_DB_AUDIT);
    {
        static const char *const actions[] = {MLREG_AUDIT_PUSH,
                                              MLREG_AUDIT_MANIFEST_PUT,
                                              MLREG_AUDIT_MANIFEST_DELETE,
                                              MLREG_AUDIT_TAG_DELETE,
                                              MLREG_AUDIT_BLOB_LINK,
                                              MLREG_AUDIT_BLOB_DELETE,
                                              MLREG_AUDIT_SIGNATURE_ATTACH,
                                              MLREG_AUDIT_PROMOTE,
                                              MLREG_AUDIT_ROLLBACK,
                                              MLREG_AUDIT_APPROVE,
                                              MLREG_AUDIT_IMAGE_BIND,
                                              MLREG_AUDIT_KEY_TRUST,
                                              MLREG_AUDIT_KEY_REVOKE,
                                              MLREG_AUDIT_KEY_UNTRUST,
                                              MLREG_AUDIT_GC_COLLECT,
                                              MLREG_AUDIT_GC_DONE,
                                              MLREG_AUDIT_RELEASE_WITHDRAW,
                                              MLREG_AUDIT_RELEASE_UNWITHDRAW,
                                              MLREG_AUDIT_RELEASE_PURGE,
                                              MLREG_AUDIT_SCRUB,
                                              MLREG_AUDIT_TOKEN_CREATE,
                                              MLREG_AUDIT_TOKEN_REVOKE,
                                              MLREG_AUDIT_EVALUATION_ATTEST};
        char *all = json_dumps(t, 0);
        for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
            char needle[64];
            snprintf(needle, sizeof(needle), "\\\"action\\\":\\\"%s\\\"", actions[i]);
            ck_assert_msg(strstr(all, needle) != NULL, "no %s entry in the history", actions[i]);
        }
        ck_assert_ptr_nonnull(strstr(all, "\\\"result\\\":\\\"refused\\\""));
        free(all);
    }
    json_decref(t);

    open_dst();
    ck_assert_uint_eq(log_size(dst), 0);
    ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(src)) == 0, "replay: %s",
                  mlreg_error_last());
    ck_assert_uint_eq(log_size(dst), n);
    assert_same_tables(src, dst);
}
END_TEST

START_TEST(test_a_replay_into_a_registry_with_a_log_is_refused)
{
    char d[MLREG_DIGEST_STRLEN + 1];

    push("1.0", 0.9, "ci", d);
    ck_assert_int_eq(mlreg_registry_replay(src, mlreg_registry_meta(src)), MLREG_EINVALID);
    open_dst();
    ck_assert_int_eq(mlreg_registry_replay(dst, mlreg_registry_meta(src)), 0);
    /* dst has entries now: a second replay would double them */
    ck_assert_int_eq(mlreg_registry_replay(dst, mlreg_registry_meta(src)), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "must be empty"));
}
END_TEST

/* An entry that does not say what its change did stops the replay at its
 * seq: here a push entry altered to count a file the manifest lacks. */
START_TEST(test_an_entry_that_does_not_match_its_change_stops_the_replay_at_its_seq)
{
    char d[MLREG_DIGEST_STRLEN + 1], *text = NULL, *fixed, *at, want[64];
    size_t len;
    mlreg_meta_txn *txn = NULL;
    unsigned char key[8];
    uint64_t seq;

    push("1.0", 0.9, "ci", d);
    sign("1.0", d, bot);
    seq = log_size(src) - 2; /* the push */
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(src), 1), 0);
    ck_assert_int_eq(mlreg_audit_entry_txn(&text, &len, txn, seq), 0);
    ck_assert_ptr_nonnull(at = strstr(text, "\"files\":3"));
    fixed = malloc(len + 2);
    memcpy(fixed, text, (size_t)(at - text));
    strcpy(fixed + (at - text), "\"files\":4");
    strcat(fixed, at + strlen("\"files\":3"));
    for (int i = 0; i < 8; i++)
        key[i] = (unsigned char)(seq >> ((7 - i) * 8));
    ck_assert_int_eq(mlreg_meta_put(txn, MLREG_DB_AUDIT, key, sizeof(key), fixed, strlen(fixed), 0),
                     0);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);

    open_dst();
    ck_assert_int_eq(mlreg_registry_replay(dst, mlreg_registry_meta(src)), MLREG_EMISMATCH);
    snprintf(want, sizeof(want), "replaying audit entry %llu", (unsigned long long)seq);
    ck_assert_msg(strstr(mlreg_error_last(), want) != NULL, "%s", mlreg_error_last());
    /* the entries before it are rebuilt, it is not */
    ck_assert_uint_eq(log_size(dst), seq);
    free(text);
    free(fixed);
}
END_TEST

/* A log written before approve refused the pusher's own approval may hold
 * one: a replay applies it as recorded (it still never counts), while a new
 * one is refused. The entry is made by rewriting an approval's actor to the
 * pusher, as an older registry would have written it (the last entry, so no
 * later prev names its hash). */
START_TEST(test_an_older_log_with_the_pushers_own_approval_still_replays)
{
    char d[MLREG_DIGEST_STRLEN + 1], *text = NULL, *fixed, *at;
    size_t len;
    mlreg_meta_txn *txn = NULL;
    unsigned char key[8];
    uint64_t seq;
    json_t *l = NULL, *res = NULL;
    int created = -1;

    push("1.0", 0.9, "ci", d);
    approve("1.0", "production", "lgtm", "bob");
    seq = log_size(src) - 1;
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(src), 1), 0);
    ck_assert_int_eq(mlreg_audit_entry_txn(&text, &len, txn, seq), 0);
    ck_assert_ptr_nonnull(at = strstr(text, "\"actor\":\"bob\""));
    fixed = malloc(len + 1);
    memcpy(fixed, text, (size_t)(at - text));
    strcpy(fixed + (at - text), "\"actor\":\"ci\"");
    strcat(fixed, at + strlen("\"actor\":\"bob\""));
    for (int i = 0; i < 8; i++)
        key[i] = (unsigned char)(seq >> ((7 - i) * 8));
    ck_assert_int_eq(mlreg_meta_put(txn, MLREG_DB_AUDIT, key, sizeof(key), fixed, strlen(fixed), 0),
                     0);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);

    open_dst();
    ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(src)) == 0, "replay: %s",
                  mlreg_error_last());
    ck_assert_uint_eq(log_size(dst), seq + 1);
    ck_assert_int_eq(mlreg_approvals_list(&l, dst, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "approvals")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(l, "approvals"), 0), "approver")),
                     "ci");
    json_decref(l);
    /* a new one by the pusher is refused on the rebuilt registry too */
    ck_assert_int_eq(mlreg_approve(&res, &created, dst, pol, MODEL, "1.0", "staging", NULL, "ci"),
                     MLREG_EDENIED);
    ck_assert_ptr_null(res);
    ck_assert_uint_eq(log_size(dst), seq + 1);
    free(text);
    free(fixed);
}
END_TEST

START_TEST(test_a_runtime_trust_of_a_key_the_config_dropped_replays_as_a_runtime_record)
{
    char b64[MLREG_PUBKEY_B64LEN + 1];
    mlreg_pubkey pk;
    json_t *obj = NULL;
    int created = 0;

    mlreg_registry_free(src);
    open_src(0, "release-bot"); /* the config no longer lists the bot: key.untrust */
    mlreg_seckey_pubkey(&pk, bot);
    mlreg_pubkey_base64(b64, &pk);
    ck_assert_msg(mlreg_keyring_trust(&obj, &created, mlreg_registry_keyring(src), "bot-rt",
                                      "release", b64, strlen(b64), "admin") == 0,
                  "%s", mlreg_error_last());
    ck_assert_int_eq(created, 1);
    json_decref(obj);
    open_dst();
    ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(src)) == 0, "replay: %s",
                  mlreg_error_last());
    assert_same_tables(src, dst);
}
END_TEST

START_TEST(test_a_config_reload_replays_as_recorded_and_changes_no_table)
{
    json_t *changed = json_pack("[s, s]", "gates", "trusted_keys");
    char hex[65];
    int keys_changed = -1;
    uint64_t n;

    memset(hex, 'a', 64);
    hex[64] = '\0';
    /* the reload drops the bot (key.untrust), then records config.reload */
    ck_assert_int_eq(
        mlreg_keyring_reload_config(&keys_changed, mlreg_registry_keyring(src), NULL, 0), 0);
    ck_assert_int_eq(keys_changed, 1);
    n = log_size(src);
    ck_assert_msg(mlreg_registry_record_reload(NULL, src, "sighup", hex, changed) == 0, "%s",
                  mlreg_error_last());
    ck_assert_uint_eq(log_size(src), n + 1);
    /* bad input is refused and records nothing */
    ck_assert_int_eq(mlreg_registry_record_reload(NULL, src, "sighup", "abc", changed),
                     MLREG_EINVALID);
    {
        json_t *empty = json_array();
        ck_assert_int_eq(mlreg_registry_record_reload(NULL, src, "sighup", hex, empty),
                         MLREG_EINVALID);
        json_decref(empty);
    }
    ck_assert_uint_eq(log_size(src), n + 1);
    open_dst();
    ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(src)) == 0, "replay: %s",
                  mlreg_error_last());
    ck_assert_uint_eq(log_size(dst), n + 1);
    assert_same_tables(src, dst);
    json_decref(changed);
}
END_TEST

START_TEST(test_a_refused_rollback_replays_as_recorded)
{
    char d10[MLREG_DIGEST_STRLEN + 1], d11[MLREG_DIGEST_STRLEN + 1], id[MLREG_KEYID_HEXLEN + 1];
    json_t *res = NULL, *obj = NULL;
    mlreg_pubkey pk;

    push("1.0", 0.91, "ci", d10);
    push("1.1", 0.93, "ci", d11);
    sign("1.0", d10, bot);
    sign("1.1", d11, bot);
    approve("1.0", "production", NULL, "bob");
    approve("1.1", "production", NULL, "bob");
    promote("1.0", "dev", NULL, 0);
    promote("1.0", "staging", NULL, 0);
    promote("1.0", "production", NULL, 0);
    promote("1.1", "dev", NULL, 0);
    promote("1.1", "staging", NULL, 0);
    promote("1.1", "production", NULL, 0);
    mlreg_seckey_pubkey(&pk, bot);
    mlreg_keyid_format(id, &pk.id);
    ck_assert_int_eq(
        mlreg_keyring_revoke(&obj, mlreg_registry_keyring(src), id, "compromised", NULL, "admin"),
        0);
    json_decref(obj);
    /* 1.0's only signature is now by a compromised key: the gate refuses */
    ck_assert_int_eq(mlreg_rollback(&res, src, pol, MODEL, "production", NULL, "why", "ops"),
                     MLREG_EGATE);
    json_decref(res);
    open_dst();
    ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(src)) == 0, "replay: %s",
                  mlreg_error_last());
    assert_same_tables(src, dst);
}
END_TEST

/* Rules on an evaluator's numbers, a promotion held because the baseline
 * was evaluated on another dataset, and the one an evaluation of the
 * baseline on that dataset lets through: their rows (outcome, source,
 * evaluation, baseline_evaluation, digests) and "held" replay byte for
 * byte. */
START_TEST(test_held_and_evaluator_sourced_promotions_replay_byte_for_byte)
{
#define DS1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define DS2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
    char d10[MLREG_DIGEST_STRLEN + 1], d20[MLREG_DIGEST_STRLEN + 1];
    char b64[MLREG_PUBKEY_B64LEN + 1];
    json_t *g, *obj = NULL, *res = NULL;
    mlreg_pubkey pk;
    int created = 0;
    mlreg_promote_req req = {MODEL, "2.0", "production", "new holdout", 0, "deployer"};
    const char *r1 =
        "{\"metrics\":{\"accuracy\":{\"value\":0.9,\"ci_low\":0.88,\"ci_high\":"
        "0.92}},\"dataset_digest\":\"" DS1 "\",\"eval_code_digest\":\"" EVAL_CODE "\"}";
    const char *r2 = "{\"metrics\":{\"accuracy\":0.89},\"dataset_digest\":\"" DS2
                     "\",\"eval_code_digest\":\"" EVAL_CODE "\"}";

    mlreg_policy_free(pol);
    g = json_loads("{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85,\"bound\":\"ci_low\","
                   "\"source\":\"evaluator\"}],\"production\":[{\"metric\":\"accuracy\","
                   "\"max_drop\":0.05},{\"metric\":\"accuracy\",\"max_drop\":0.05,\"source\":"
                   "\"evaluator\"}]}",
                   0, NULL);
    ck_assert_ptr_nonnull(g);
    ck_assert_msg(mlreg_policy_parse(&pol, NULL, g, NULL) == 0, "%s", mlreg_error_last());
    json_decref(g);
    push_dataset_digest = DS1;
    push("1.0", 0.91, "ci", d10);
    push_dataset_digest = DS2;
    push("2.0", 0.90, "ci", d20);
    push_dataset_digest = NULL;
    mlreg_seckey_pubkey(&pk, second);
    mlreg_pubkey_base64(b64, &pk);
    ck_assert_msg(mlreg_keyring_trust(&obj, &created, mlreg_registry_keyring(src), "nightly",
                                      "evaluator", b64, strlen(b64), "admin") == 0,
                  "%s", mlreg_error_last());
    json_decref(obj);

    promote("1.0", "staging", NULL, MLREG_EGATE); /* no evaluation yet */
    attest_report("1.0", d10, second, r1, 1700000000000000000LL);
    promote("1.0", "staging", NULL, 0);
    promote("1.0", "production", NULL, 0);
    attest_report("2.0", d20, second, r2, 1700000000000000000LL);
    /* 2.0 on DS2 against 1.0 on DS1: both rules hold */
    ck_assert_int_eq(mlreg_promote(&res, src, pol, &req), MLREG_EGATE);
    ck_assert(json_is_true(json_object_get(res, "held")));
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(res, "rules"), 1), "outcome")),
                     "hold");
    json_decref(res);
    /* the baseline re-evaluated on DS2: both compare with that evaluation */
    attest_report("1.0", d10, second, r2, 1700000001000000000LL);
    ck_assert_msg(mlreg_promote(&res, src, pol, &req) == 0, "%s", mlreg_error_last());
    ck_assert(json_is_object(
        json_object_get(json_array_get(json_object_get(res, "rules"), 0), "baseline_evaluation")));
    json_decref(res);

    open_dst();
    ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(src)) == 0, "replay: %s",
                  mlreg_error_last());
    assert_same_tables(src, dst);
#undef DS1
#undef DS2
}
END_TEST

START_TEST(test_an_entry_without_its_actor_stops_the_replay_naming_its_seq)
{
    char *text = NULL, *fixed, *at;
    size_t len;
    mlreg_meta_txn *txn = NULL;
    unsigned char key[8] = {0}; /* seq 0 */

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(src), 1), 0);
    ck_assert_int_eq(mlreg_audit_entry_txn(&text, &len, txn, 0), 0);
    ck_assert_ptr_nonnull(at = strstr(text, "\"actor\":\"config\","));
    ck_assert_ptr_nonnull(fixed = malloc(len + 1));
    memcpy(fixed, text, (size_t)(at - text));
    strcpy(fixed + (at - text), at + strlen("\"actor\":\"config\","));
    ck_assert_int_eq(mlreg_meta_put(txn, MLREG_DB_AUDIT, key, sizeof(key), fixed, strlen(fixed), 0),
                     0);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    free(text);
    free(fixed);
    open_dst();
    ck_assert_int_eq(mlreg_registry_replay(dst, mlreg_registry_meta(src)), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "replaying audit entry 0"));
}
END_TEST

START_TEST(test_a_manifest_content_type_that_is_not_text_is_refused_before_anything_is_stored)
{
    mlreg_manifest_put_result res;
    mlreg_digest cfgd, l;
    char cs[MLREG_DIGEST_STRLEN + 1], ls[MLREG_DIGEST_STRLEN + 1];
    char *body;
    json_t *doc;
    uint64_t before, after;

    th_put_blob(&cfgd, src, OTHER, "ci", "{\"architecture\":\"amd64\"}");
    th_put_blob(&l, src, OTHER, "ci", "x");
    mlreg_digest_format(cs, &cfgd);
    mlreg_digest_format(ls, &l);
    doc = json_pack("{s:i, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:i}]}", "schemaVersion", 2,
                    "mediaType", MLREG_MT_OCI_MANIFEST, "config", "mediaType",
                    "application/vnd.oci.image.config.v1+json", "digest", cs, "size",
                    (int)strlen("{\"architecture\":\"amd64\"}"), "layers", "mediaType",
                    "application/vnd.oci.image.layer.v1.tar", "digest", ls, "size", 1);
    ck_assert_ptr_nonnull(body = json_dumps(doc, JSON_COMPACT));
    before = log_size(src);
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&res, src, OTHER, "t1",
                                                    MLREG_MT_OCI_MANIFEST "; charset=\xe9", body,
                                                    strlen(body), "ci"),
                     MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "manifest content type"));
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&res, src, OTHER, "t2",
                                                    MLREG_MT_OCI_MANIFEST "; x=\x01", body,
                                                    strlen(body), "ci"),
                     MLREG_EINVALID);
    after = log_size(src);
    ck_assert_uint_eq(after, before);
    ck_assert_msg(mlreg_registry_manifest_put_as(&res, src, OTHER, "t3", MLREG_MT_OCI_MANIFEST,
                                                 body, strlen(body), "ci") == 0,
                  "%s", mlreg_error_last());
    free(body);
    json_decref(doc);
}
END_TEST

/* One thread's promotion of version @p arg to staging. */
static void *promote_thread(void *arg)
{
    mlreg_promote_req req = {MODEL, arg, "staging", "together", 0, "deployer"};
    json_t *res = NULL;
    intptr_t rc = mlreg_promote(&res, src, pol, &req);

    json_decref(res);
    return (void *)rc;
}

/* Promotions made at the same time share commits (mutate.c): each still
 * gets its own entry, statement and envelope, refused ones and failing ones
 * (an unknown version) answer alone, and the log replays byte for byte. */
START_TEST(test_promotions_that_shared_commits_replay_byte_for_byte)
{
    enum { N = 12 };
    pthread_t th[N];
    char versions[N][16], d[MLREG_DIGEST_STRLEN + 1];
    void *rc;
    size_t i, passed = 0, refused = 0, unknown = 0;
    uint64_t before, n;

    for (i = 0; i < N; i++) {
        snprintf(versions[i], sizeof(versions[i]), "%s%zu.0", i == N - 1 ? "no-" : "", i + 1);
        /* every third one below the staging gate (min 0.85) */
        if (i < N - 1) push(versions[i], i % 3 == 0 ? 0.5 : 0.9, "ci", d);
    }
    before = log_size(src);
    for (i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, promote_thread, versions[i]), 0);
    for (i = 0; i < N; i++) {
        ck_assert_int_eq(pthread_join(th[i], &rc), 0);
        if ((intptr_t)rc == 0) passed++;
        if ((intptr_t)rc == MLREG_EGATE) refused++;
        if ((intptr_t)rc == MLREG_ENOTFOUND) unknown++;
    }
    ck_assert_uint_eq(passed, 7);
    ck_assert_uint_eq(refused, 4);
    ck_assert_uint_eq(unknown, 1);
    /* one entry per promotion evaluated, the unknown version none */
    ck_assert_uint_eq(log_size(src) - before, N - 1);
    n = log_size(src);

    open_dst();
    ck_assert_msg(mlreg_registry_replay(dst, mlreg_registry_meta(src)) == 0, "replay: %s",
                  mlreg_error_last());
    ck_assert_uint_eq(log_size(dst), n);
    assert_same_tables(src, dst);
}
END_TEST

static Suite *replay_suite(void)
{
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("replay");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_replaying_the_log_rebuilds_every_table_byte_for_byte);
    tcase_add_test(tc, test_a_replay_into_a_registry_with_a_log_is_refused);
    tcase_add_test(tc, test_promotions_that_shared_commits_replay_byte_for_byte);
    tcase_add_test(tc, test_an_entry_that_does_not_match_its_change_stops_the_replay_at_its_seq);
    tcase_add_test(tc,
                   test_a_runtime_trust_of_a_key_the_config_dropped_replays_as_a_runtime_record);
    tcase_add_test(tc, test_a_refused_rollback_replays_as_recorded);
    tcase_add_test(tc, test_held_and_evaluator_sourced_promotions_replay_byte_for_byte);
    tcase_add_test(tc, test_an_older_log_with_the_pushers_own_approval_still_replays);
    tcase_add_test(tc, test_a_config_reload_replays_as_recorded_and_changes_no_table);
    tcase_add_test(tc, test_an_entry_without_its_actor_stops_the_replay_naming_its_seq);
    tcase_add_test(
        tc, test_a_manifest_content_type_that_is_not_text_is_refused_before_anything_is_stored);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(replay_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
