/* check_audit_hooks.c: every mutation of the registry, the signatures, the
 * keyring and the promotions appends exactly one audit entry in its own
 * transaction (docs/audit-api.md), a mutation that fails or changes nothing
 * appends none, and a move of a stage pointer stores a DSSE-signed in-toto
 * statement naming its entry. A real registry (fs backend, LMDB) in a
 * mkdtemp dir; the log is read back with mlreg_audit_entry_txn(). */
#include "mlreg/audit.h"
#include "mlreg/auth.h"
#include "mlreg/common.h"
#include "mlreg/dsse.h"
#include "mlreg/gates.h"
#include "mlreg/keyring.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"
#include "mlreg/sign.h"
#include "mlreg/signatures.h"

#include "helpers.h"

#include <check.h>
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
static mlreg_seckey *sk; /* in the keyring (config) as "release-bot" */
static mlreg_auth *auth; /* the token "ci" (push), see ci() */

/* The identity of the token "ci", which has the push role. */
static const mlreg_identity *ci(void)
{
    return th_identity(&auth, "ci", "[\"push\"]");
}

static void setup(void)
{
    th_registry_setup(&fx, "audit-hooks", NULL);
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

/* ---- reading the log -------------------------------------------------------------- */

static uint64_t log_size(void)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    mlreg_meta_txn_abort(txn);
    return n;
}

/* Entry @p seq parsed (caller decrefs). */
static json_t *entry(uint64_t seq)
{
    mlreg_meta_txn *txn = NULL;
    char *text = NULL;
    size_t len;
    json_t *e;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0), 0);
    ck_assert_msg(mlreg_audit_entry_txn(&text, &len, txn, seq) == 0, "%s", mlreg_error_last());
    mlreg_meta_txn_abort(txn);
    e = json_loadb(text, len, 0, NULL);
    ck_assert_ptr_nonnull(e);
    free(text);
    return e;
}

/* The last entry (caller decrefs). */
static json_t *last_entry(void)
{
    uint64_t n = log_size();

    ck_assert_uint_gt(n, 0);
    return entry(n - 1);
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static const char *subj(const json_t *e, const char *key)
{
    return str(json_object_get(e, "subject"), key);
}

static const char *detail(const json_t *e, const char *key)
{
    return str(json_object_get(e, "details"), key);
}

/* Asserts that the last entry is @p action / @p result by @p actor and
 * returns it (caller decrefs). */
static json_t *expect_last(const char *action, const char *result, const char *actor)
{
    json_t *e = last_entry();

    ck_assert_str_eq(str(e, "action"), action);
    ck_assert_str_eq(str(e, "result"), result);
    ck_assert_str_eq(str(e, "actor"), actor);
    return e;
}

/* ---- building content ----------------------------------------------------------- */

static void store_blob(mlreg_digest *out, const char *text)
{
    mlreg_blob_writer *w = NULL;
    size_t len = strlen(text);

    ck_assert_int_eq(mlreg_blobstore_open_write(&w, mlreg_registry_blobstore(reg), (int64_t)len),
                     0);
    ck_assert_int_eq(mlreg_blob_writer_write(w, text, len), 0);
    ck_assert_int_eq(mlreg_blob_writer_commit(out, w, NULL, (int64_t)len), 0);
}

/* The release manifest of MODEL@version with weights and an eval report of
 * accuracy @p acc (blobs stored and linked). Caller frees. */
static char *release_body(const char *version, double acc)
{
    char report[128];

    snprintf(report, sizeof(report), "{\"metrics\":{\"accuracy\":%.6f}}", acc);
    return th_release_body(reg, MODEL, version, "ci", report);
}

/* Pushes MODEL@version by @p pusher; returns the body (caller frees) and the
 * digest in @p digest. */
static char *push(const char *version, double acc, const char *pusher,
                  char digest[MLREG_DIGEST_STRLEN + 1])
{
    mlreg_manifest_put_result res;
    char *body = release_body(version, acc);

    ck_assert_msg(mlreg_registry_manifest_put_as(&res, reg, MODEL, version, MLREG_MT_OCI_MANIFEST,
                                                 body, strlen(body), pusher) == 0,
                  "push: %s", mlreg_error_last());
    ck_assert_int_eq(res.created, 1);
    if (digest) mlreg_digest_format(digest, &res.digest);
    return body;
}

static char *sign_text(const char *version, const char *body, const char *digest)
{
    char comment[512], *sig = NULL;

    snprintf(comment, sizeof(comment), "mlreg release model=%s version=%s digest=%s", MODEL,
             version, digest);
    ck_assert_int_eq(mlreg_sign(&sig, sk, body, strlen(body), comment, NULL), 0);
    return sig;
}

static int attach(const char *sig, int *created)
{
    char b64[MLREG_PUBKEY_B64LEN + 1];
    json_t *res = NULL;
    int rc;

    mlreg_pubkey_base64(b64, &fx.keys[0].pubkey);
    rc = mlreg_signature_attach(&res, created, reg, MODEL, "1.0", sig, strlen(sig), b64,
                                strlen(b64), "signer");
    json_decref(res);
    return rc;
}

static int promote(const char *version, const char *stage, int dry_run, const char *actor)
{
    mlreg_promote_req req = {MODEL, version, stage, "ship it", dry_run, actor};
    json_t *res = NULL;
    int rc = mlreg_promote(&res, reg, pol, &req);

    json_decref(res);
    return rc;
}

static const char *holder(const char *stage)
{
    static char v[256];
    json_t *s = NULL;
    int rc = mlreg_stage_get(&s, reg, pol, MODEL, stage, -1);

    if (rc == MLREG_ENOTFOUND) return "";
    ck_assert_msg(rc == 0, "%s", mlreg_error_last());
    snprintf(v, sizeof(v), "%s", json_string_value(json_object_get(s, "version")));
    json_decref(s);
    return v;
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(test_config_keys_are_trusted_in_the_log_by_actor_config_at_open)
{
    json_t *e;
    char id[MLREG_KEYID_HEXLEN + 1];

    ck_assert_uint_eq(log_size(), 1);
    e = entry(0);
    mlreg_keyid_format(id, &fx.keys[0].pubkey.id);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_KEY_TRUST);
    ck_assert_str_eq(str(e, "actor"), MLREG_KEYRING_ACTOR_CONFIG);
    ck_assert_str_eq(subj(e, "key_id"), id);
    ck_assert_str_eq(detail(e, "name"), "release-bot");
    ck_assert_str_eq(detail(e, "role"), "release");
    ck_assert(json_is_null(json_object_get(e, "prev")));
    json_decref(e);
    ck_assert_ptr_nonnull(mlreg_registry_audit_key(reg));
    ck_assert_ptr_nonnull(
        strstr(mlreg_audit_key_origin(mlreg_registry_audit_key(reg)), "mlreg-audit/"));
}
END_TEST

START_TEST(test_blob_links_mounts_and_unlinks_append_one_entry_each_and_repeats_none)
{
    mlreg_digest d;
    char ds[MLREG_DIGEST_STRLEN + 1];
    uint64_t n;
    json_t *e;

    store_blob(&d, "some bytes");
    mlreg_digest_format(ds, &d);
    n = log_size();
    ck_assert_int_eq(mlreg_registry_blob_link(reg, MODEL, &d, "alice"), 0);
    ck_assert_uint_eq(log_size(), n + 1);
    e = expect_last(MLREG_AUDIT_BLOB_LINK, MLREG_AUDIT_OK, "alice");
    ck_assert_str_eq(subj(e, "model"), MODEL);
    ck_assert_str_eq(subj(e, "digest"), ds);
    ck_assert_ptr_null(json_object_get(e, "details"));
    json_decref(e);
    /* linking it again changes nothing */
    ck_assert_int_eq(mlreg_registry_blob_link(reg, MODEL, &d, "alice"), 0);
    ck_assert_uint_eq(log_size(), n + 1);

    ck_assert_int_eq(mlreg_registry_blob_mount(reg, "team/other", MODEL, &d, "bob"), 0);
    ck_assert_uint_eq(log_size(), n + 2);
    e = expect_last(MLREG_AUDIT_BLOB_LINK, MLREG_AUDIT_OK, "bob");
    ck_assert_str_eq(subj(e, "model"), "team/other");
    ck_assert_str_eq(subj(e, "digest"), ds);
    ck_assert_str_eq(detail(e, "from"), MODEL);
    json_decref(e);
    ck_assert_int_eq(mlreg_registry_blob_mount(reg, "team/other", MODEL, &d, "bob"), 0);
    ck_assert_int_eq(mlreg_registry_blob_mount(reg, "team/third", "team/none", &d, "bob"),
                     MLREG_ENOTFOUND);
    ck_assert_uint_eq(log_size(), n + 2);

    ck_assert_int_eq(mlreg_registry_blob_unlink(reg, "team/other", &d, "carol"), 0);
    ck_assert_uint_eq(log_size(), n + 3);
    e = expect_last(MLREG_AUDIT_BLOB_DELETE, MLREG_AUDIT_OK, "carol");
    ck_assert_str_eq(subj(e, "model"), "team/other");
    ck_assert_str_eq(subj(e, "digest"), ds);
    json_decref(e);
    ck_assert_int_eq(mlreg_registry_blob_unlink(reg, "team/other", &d, "carol"), MLREG_ENOTFOUND);
    ck_assert_uint_eq(log_size(), n + 3);

    /* no actor: the local identity */
    ck_assert_int_eq(mlreg_registry_blob_link(reg, "team/other", &d, NULL), 0);
    e = expect_last(MLREG_AUDIT_BLOB_LINK, MLREG_AUDIT_OK, MLREG_KEYRING_ACTOR_LOCAL);
    json_decref(e);
}
END_TEST

START_TEST(test_manifest_puts_and_deletes_append_their_entries_and_no_ops_none)
{
    char d1[MLREG_DIGEST_STRLEN + 1], ds[MLREG_DIGEST_STRLEN + 1];
    char *body, *other;
    mlreg_manifest_put_result res;
    mlreg_digest cfgd, w;
    uint64_t n;
    json_t *e, *doc;

    body = push("1.0", 0.9, "ci", d1);
    e = expect_last(MLREG_AUDIT_PUSH, MLREG_AUDIT_OK, "ci");
    ck_assert_str_eq(subj(e, "model"), MODEL);
    ck_assert_str_eq(subj(e, "version"), "1.0");
    ck_assert_str_eq(subj(e, "digest"), d1);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(e, "details"), "files")),
                     2);
    json_decref(e);
    n = log_size();
    /* an idempotent re-push, by tag and by digest: nothing */
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&res, reg, MODEL, "1.0", MLREG_MT_OCI_MANIFEST,
                                                    body, strlen(body), "ci"),
                     0);
    ck_assert_int_eq(res.created, 0);
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&res, reg, MODEL, d1, MLREG_MT_OCI_MANIFEST,
                                                    body, strlen(body), "ci"),
                     0);
    ck_assert_uint_eq(log_size(), n);
    /* a refused push (other content under the version tag): nothing */
    other = release_body("1.0", 0.5);
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&res, reg, MODEL, "1.0", MLREG_MT_OCI_MANIFEST,
                                                    other, strlen(other), "mallory"),
                     MLREG_EDENIED);
    free(other);
    n = log_size(); /* release_body linked blobs (entries of their own) */
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&res, reg, MODEL, "bad tag!",
                                                    MLREG_MT_OCI_MANIFEST, body, strlen(body),
                                                    "mallory"),
                     MLREG_EINVALID);
    ck_assert_uint_eq(log_size(), n);

    /* a plain artifact by tag: manifest.put with the tag and artifact type */
    th_put_blob(&cfgd, reg, MODEL, "ci", "{}");
    th_put_blob(&w, reg, MODEL, "ci", "plain layer");
    mlreg_digest_format(ds, &w);
    doc = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:i}]}", "schemaVersion", 2,
                    "mediaType", MLREG_MT_OCI_MANIFEST, "artifactType", "application/x-notes",
                    "config", "mediaType", MLREG_MT_OCI_EMPTY, "digest", MLREG_EMPTY_CONFIG_DIGEST,
                    "size", 2, "layers", "mediaType", "application/octet-stream", "digest", ds,
                    "size", (int)strlen("plain layer"));
    other = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    n = log_size();
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&res, reg, MODEL, "notes",
                                                    MLREG_MT_OCI_MANIFEST, other, strlen(other),
                                                    "dana"),
                     0);
    ck_assert_uint_eq(log_size(), n + 1);
    mlreg_digest_format(ds, &res.digest);
    e = expect_last(MLREG_AUDIT_MANIFEST_PUT, MLREG_AUDIT_OK, "dana");
    ck_assert_str_eq(subj(e, "model"), MODEL);
    ck_assert_str_eq(subj(e, "digest"), ds);
    ck_assert_str_eq(subj(e, "tag"), "notes");
    ck_assert_ptr_null(subj(e, "version"));
    ck_assert_str_eq(detail(e, "artifact_type"), "application/x-notes");
    json_decref(e);
    /* the same content under a second tag is a change: one more entry */
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&res, reg, MODEL, "notes2",
                                                    MLREG_MT_OCI_MANIFEST, other, strlen(other),
                                                    "dana"),
                     0);
    ck_assert_uint_eq(log_size(), n + 2);

    /* deletes: a tag, then the manifest by digest; releases refuse */
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, MODEL, "notes2", "erin"), 0);
    ck_assert_uint_eq(log_size(), n + 3);
    e = expect_last(MLREG_AUDIT_TAG_DELETE, MLREG_AUDIT_OK, "erin");
    ck_assert_str_eq(subj(e, "model"), MODEL);
    ck_assert_str_eq(subj(e, "tag"), "notes2");
    ck_assert_ptr_null(subj(e, "digest"));
    json_decref(e);
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, MODEL, ds, "erin"), 0);
    ck_assert_uint_eq(log_size(), n + 4);
    e = expect_last(MLREG_AUDIT_MANIFEST_DELETE, MLREG_AUDIT_OK, "erin");
    ck_assert_str_eq(subj(e, "digest"), ds);
    json_decref(e);
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, MODEL, ds, "erin"), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, MODEL, "1.0", "erin"), MLREG_EDENIED);
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, MODEL, d1, "erin"), MLREG_EDENIED);
    ck_assert_uint_eq(log_size(), n + 4);
    free(other);
    free(body);
}
END_TEST

START_TEST(test_a_mutation_whose_entry_cannot_be_appended_commits_nothing)
{
    mlreg_digest d;
    uint64_t size, n;
    char *body;
    mlreg_manifest_put_result res;
    json_t *rel = NULL;

    /* an actor that is not UTF-8 cannot be logged: the mutation fails whole */
    store_blob(&d, "orphan");
    n = log_size();
    ck_assert_int_lt(mlreg_registry_blob_link(reg, MODEL, &d, "\xff\xfe"), 0);
    ck_assert_uint_eq(log_size(), n);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, MODEL, &d), MLREG_ENOTFOUND);

    body = release_body("1.0", 0.9);
    n = log_size();
    ck_assert_int_lt(mlreg_registry_manifest_put_as(&res, reg, MODEL, "1.0", MLREG_MT_OCI_MANIFEST,
                                                    body, strlen(body), "\xff\xfe"),
                     0);
    ck_assert_uint_eq(log_size(), n);
    ck_assert_int_eq(mlreg_registry_release_get(&rel, reg, MODEL, "1.0"), MLREG_ENOTFOUND);
    free(body);
}
END_TEST

START_TEST(test_signature_attach_appends_one_entry_and_refused_or_repeated_attaches_none)
{
    char d[MLREG_DIGEST_STRLEN + 1], id[MLREG_KEYID_HEXLEN + 1];
    char *body, *sig, *bad;
    uint64_t n;
    int created;
    json_t *e;

    body = push("1.0", 0.9, "ci", d);
    sig = sign_text("1.0", body, d);
    n = log_size();
    ck_assert_msg(attach(sig, &created) == 0, "%s", mlreg_error_last());
    ck_assert_int_eq(created, 1);
    ck_assert_uint_eq(log_size(), n + 1);
    e = expect_last(MLREG_AUDIT_SIGNATURE_ATTACH, MLREG_AUDIT_OK, "signer");
    mlreg_keyid_format(id, &fx.keys[0].pubkey.id);
    ck_assert_str_eq(subj(e, "model"), MODEL);
    ck_assert_str_eq(subj(e, "version"), "1.0");
    ck_assert_str_eq(subj(e, "digest"), d);
    ck_assert_str_eq(subj(e, "key_id"), id);
    json_decref(e);
    /* the same signature again: a no-op */
    ck_assert_int_eq(attach(sig, &created), 0);
    ck_assert_int_eq(created, 0);
    ck_assert_uint_eq(log_size(), n + 1);
    /* a signature over other bytes: refused, nothing logged */
    bad = sign_text("1.0", "other bytes", d);
    ck_assert_int_eq(attach(bad, &created), MLREG_EMISMATCH);
    ck_assert_uint_eq(log_size(), n + 1);
    free(bad);
    free(sig);
    free(body);
}
END_TEST

START_TEST(test_key_trust_and_revocation_append_entries_and_no_ops_none)
{
    mlreg_seckey *k2 = NULL;
    mlreg_pubkey pk2;
    char b64[MLREG_PUBKEY_B64LEN + 1], id[MLREG_KEYID_HEXLEN + 1];
    mlreg_keyring *kr = mlreg_registry_keyring(reg);
    json_t *obj = NULL, *e;
    int created;
    uint64_t n = log_size();

    ck_assert_int_eq(mlreg_seckey_generate(&k2), 0);
    mlreg_seckey_pubkey(&pk2, k2);
    mlreg_pubkey_base64(b64, &pk2);
    mlreg_keyid_format(id, &pk2.id);
    ck_assert_int_eq(
        mlreg_keyring_trust(&obj, &created, kr, "second", "qa", b64, strlen(b64), "alice"), 0);
    json_decref(obj);
    ck_assert_uint_eq(log_size(), n + 1);
    e = expect_last(MLREG_AUDIT_KEY_TRUST, MLREG_AUDIT_OK, "alice");
    ck_assert_str_eq(subj(e, "key_id"), id);
    ck_assert_str_eq(detail(e, "name"), "second");
    ck_assert_str_eq(detail(e, "role"), "qa");
    json_decref(e);
    ck_assert_int_eq(
        mlreg_keyring_trust(&obj, &created, kr, "second", "qa", b64, strlen(b64), "alice"), 0);
    ck_assert_int_eq(created, 0);
    json_decref(obj);
    ck_assert_int_eq(
        mlreg_keyring_trust(&obj, &created, kr, "release-bot", "qa", b64, strlen(b64), "alice"),
        0); /* the same key again: a retry even under another name */
    json_decref(obj);
    ck_assert_uint_eq(log_size(), n + 1);

    ck_assert_int_eq(mlreg_keyring_revoke(&obj, kr, id, "retired", "rotated", "bob"), 0);
    json_decref(obj);
    ck_assert_uint_eq(log_size(), n + 2);
    e = expect_last(MLREG_AUDIT_KEY_REVOKE, MLREG_AUDIT_OK, "bob");
    ck_assert_str_eq(subj(e, "key_id"), id);
    ck_assert_str_eq(detail(e, "kind"), "retired");
    ck_assert_str_eq(str(e, "reason"), "rotated");
    json_decref(e);
    ck_assert_int_eq(mlreg_keyring_revoke(&obj, kr, id, "retired", NULL, "bob"), 0);
    json_decref(obj);
    ck_assert_int_eq(mlreg_keyring_revoke(&obj, kr, id, "lost", NULL, "bob"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_keyring_revoke(&obj, kr, "0000000000000000", "retired", NULL, "bob"),
                     MLREG_ENOTFOUND);
    ck_assert_uint_eq(log_size(), n + 2);
    /* escalation is a change */
    ck_assert_int_eq(mlreg_keyring_revoke(&obj, kr, id, "compromised", NULL, "bob"), 0);
    json_decref(obj);
    ck_assert_uint_eq(log_size(), n + 3);
    e = last_entry();
    ck_assert_str_eq(detail(e, "kind"), "compromised");
    ck_assert_ptr_null(json_object_get(e, "reason"));
    json_decref(e);
    mlreg_seckey_free(k2);
}
END_TEST

START_TEST(test_promotions_append_ok_refused_and_nothing_for_dry_runs)
{
    char d1[MLREG_DIGEST_STRLEN + 1], d2[MLREG_DIGEST_STRLEN + 1];
    uint64_t n;
    json_t *e, *gates;

    th_use_gates(&pol, "{\"staging\":[{\"metric\":\"accuracy\",\"min\":0.85}],"
                       "\"production\":[{\"metric\":\"accuracy\",\"min\":0.85},"
                       "{\"require\":\"previous_stage\"}]}");
    free(push("1.0", 0.9, "ci", d1));
    free(push("2.0", 0.8, "ci", d2));
    n = log_size();
    ck_assert_int_eq(promote("1.0", "staging", 1, "alice"), 0); /* dry run */
    ck_assert_int_eq(promote("2.0", "staging", 1, "alice"), MLREG_EGATE);
    ck_assert_uint_eq(log_size(), n);

    ck_assert_int_eq(promote("1.0", "staging", 0, "alice"), 0);
    ck_assert_uint_eq(log_size(), n + 1);
    e = expect_last(MLREG_AUDIT_PROMOTE, MLREG_AUDIT_OK, "alice");
    ck_assert_str_eq(subj(e, "model"), MODEL);
    ck_assert_str_eq(subj(e, "version"), "1.0");
    ck_assert_str_eq(subj(e, "digest"), d1);
    ck_assert_str_eq(subj(e, "stage"), "staging");
    ck_assert(json_is_null(json_object_get(json_object_get(e, "details"), "from_stage")));
    ck_assert(json_is_null(json_object_get(json_object_get(e, "details"), "baseline")));
    ck_assert_int_eq(json_array_size(json_object_get(e, "gates")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(e, "approvers")), 0);
    json_decref(e);
    /* already there: refused before anything is decided, nothing logged */
    ck_assert_int_eq(promote("1.0", "staging", 0, "alice"), MLREG_EDENIED);
    ck_assert_uint_eq(log_size(), n + 1);

    /* a gate failure: one "refused" entry with the reason and the gate table */
    ck_assert_int_eq(promote("2.0", "production", 0, "bob"), MLREG_EGATE);
    ck_assert_uint_eq(log_size(), n + 2);
    e = expect_last(MLREG_AUDIT_PROMOTE, MLREG_AUDIT_REFUSED, "bob");
    ck_assert_str_eq(subj(e, "version"), "2.0");
    ck_assert_str_eq(subj(e, "digest"), d2);
    ck_assert_str_eq(subj(e, "stage"), "production");
    ck_assert_ptr_nonnull(strstr(str(e, "reason"), "2 of 2 gate rules failed"));
    gates = json_object_get(e, "gates");
    ck_assert_int_eq(json_array_size(gates), 2);
    ck_assert(json_is_false(json_object_get(json_array_get(gates, 0), "passed")));
    json_decref(e);
    ck_assert_str_eq(holder("production"), "");

    /* from staging to production: from_stage and the baseline */
    ck_assert_int_eq(promote("1.0", "production", 0, "carol"), 0);
    e = expect_last(MLREG_AUDIT_PROMOTE, MLREG_AUDIT_OK, "carol");
    ck_assert_str_eq(detail(e, "from_stage"), "staging");
    ck_assert_str_eq(str(e, "reason"), "ship it");
    json_decref(e);
}
END_TEST

START_TEST(test_rollback_approval_and_image_binding_append_entries_only_when_new)
{
    char d1[MLREG_DIGEST_STRLEN + 1], d2[MLREG_DIGEST_STRLEN + 1];
    json_t *res = NULL, *e, *prev;
    int created;
    uint64_t n;

    th_use_gates(&pol, "{\"production\":[{\"metric\":\"accuracy\",\"min\":0.5}]}");
    free(push("1.0", 0.9, "ci", d1));
    free(push("2.0", 0.9, "ci", d2));

    n = log_size();
    ck_assert_int_eq(
        mlreg_approve(&res, &created, reg, pol, MODEL, "1.0", "production", "lgtm", "bob"), 0);
    json_decref(res);
    ck_assert_uint_eq(log_size(), n + 1);
    e = expect_last(MLREG_AUDIT_APPROVE, MLREG_AUDIT_OK, "bob");
    ck_assert_str_eq(subj(e, "version"), "1.0");
    ck_assert_str_eq(subj(e, "digest"), d1);
    ck_assert_str_eq(subj(e, "stage"), "production");
    ck_assert_str_eq(detail(e, "comment"), "lgtm");
    json_decref(e);
    ck_assert_int_eq(
        mlreg_approve(&res, &created, reg, pol, MODEL, "1.0", "production", "again", "bob"), 0);
    ck_assert_int_eq(created, 0);
    json_decref(res);
    ck_assert_uint_eq(log_size(), n + 1);

    ck_assert_int_eq(mlreg_image_bind(&res, &created, reg, ci(), MODEL, "1.0", "acme/clf:1", NULL),
                     0);
    json_decref(res);
    ck_assert_uint_eq(log_size(), n + 2);
    e = expect_last(MLREG_AUDIT_IMAGE_BIND, MLREG_AUDIT_OK, "ci");
    ck_assert_str_eq(subj(e, "image"), "acme/clf:1");
    ck_assert_str_eq(subj(e, "digest"), d1);
    ck_assert_str_eq(subj(e, "version"), "1.0");
    json_decref(e);
    ck_assert_int_eq(mlreg_image_bind(&res, &created, reg, ci(), MODEL, "1.0", "acme/clf:1", NULL),
                     0);
    ck_assert_int_eq(created, 0);
    json_decref(res);
    ck_assert_int_eq(mlreg_image_bind(&res, &created, reg, ci(), MODEL, "1.0", "Acme:1", NULL),
                     MLREG_EINVALID);
    ck_assert_uint_eq(log_size(), n + 2);

    ck_assert_int_eq(promote("1.0", "production", 0, "ci"), 0);
    ck_assert_int_eq(promote("2.0", "production", 0, "ci"), 0);
    ck_assert_int_eq(mlreg_rollback(&res, reg, pol, MODEL, "production", NULL, NULL, "ops"), 0);
    json_decref(res);
    e = expect_last(MLREG_AUDIT_ROLLBACK, MLREG_AUDIT_OK, "ops");
    ck_assert_str_eq(subj(e, "version"), "1.0");
    ck_assert_str_eq(subj(e, "digest"), d1);
    ck_assert_str_eq(subj(e, "stage"), "production");
    prev = json_object_get(json_object_get(e, "details"), "previous");
    ck_assert_str_eq(str(prev, "version"), "2.0");
    ck_assert_str_eq(str(prev, "digest"), d2);
    json_decref(e);
    n = log_size();
    ck_assert_int_eq(mlreg_rollback(&res, reg, pol, MODEL, "production", "1.0", NULL, "ops"),
                     MLREG_EDENIED);
    ck_assert_uint_eq(log_size(), n);
}
END_TEST

/* The statement inside attestation @p att, verified with the log key
 * (caller decrefs). */
static json_t *verified_statement(const json_t *att)
{
    mlreg_pubkey pk;
    char *env = json_dumps(json_object_get(att, "envelope"), JSON_COMPACT), *type = NULL;
    unsigned char *payload = NULL;
    size_t plen;
    json_t *st;

    ck_assert_ptr_nonnull(env);
    mlreg_audit_key_pubkey(&pk, mlreg_registry_audit_key(reg));
    ck_assert_msg(mlreg_dsse_verify(&type, &payload, &plen, env, strlen(env), &pk) == 0, "%s",
                  mlreg_error_last());
    ck_assert_str_eq(type, MLREG_DSSE_INTOTO_TYPE);
    st = json_loadb((const char *)payload, plen, 0, NULL);
    ck_assert_ptr_nonnull(st);
    free(env);
    free(type);
    free(payload);
    return st;
}

START_TEST(test_a_move_stores_a_signed_statement_naming_its_audit_entry)
{
    char d1[MLREG_DIGEST_STRLEN + 1], d2[MLREG_DIGEST_STRLEN + 1], seqs[24];
    char ref_digest[MLREG_DIGEST_STRLEN + 1];
    json_t *l = NULL, *att, *st, *pred, *e, *refs = NULL, *desc, *res = NULL;
    mlreg_digest rd;
    mlreg_manifest_data *m = NULL;
    mlreg_manifest_put_result put;
    uint64_t seq;
    size_t i, found = 0;

    th_use_gates(&pol, "{\"production\":[{\"metric\":\"accuracy\",\"min\":0.85}]}");
    free(push("1.0", 0.9, "ci", d1));
    free(push("2.0", 0.9, "ci", d2));
    ck_assert_int_eq(mlreg_attestations_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "attestations")), 0);
    json_decref(l);
    ck_assert_int_eq(mlreg_attestations_list(&l, reg, MODEL, "9.9"), MLREG_ENOTFOUND);

    ck_assert_int_eq(promote("1.0", "production", 0, "alice"), 0);
    seq = log_size() - 1;
    e = entry(seq);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_PROMOTE);

    ck_assert_int_eq(mlreg_attestations_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "attestations")), 1);
    att = json_array_get(json_object_get(l, "attestations"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(att, "seq")), (json_int_t)seq);
    ck_assert_str_eq(str(att, "stage"), "production");
    ck_assert_str_eq(str(att, "action"), "promote");
    st = verified_statement(att);
    ck_assert_str_eq(str(st, "_type"), "https://in-toto.io/Statement/v1");
    ck_assert_str_eq(str(st, "predicateType"), "urn:mlreg:promotion:v1");
    ck_assert_str_eq(str(json_array_get(json_object_get(st, "subject"), 0), "name"), MODEL "@1.0");
    ck_assert_str_eq(
        str(json_object_get(json_array_get(json_object_get(st, "subject"), 0), "digest"), "sha256"),
        d1 + 7);
    pred = json_object_get(st, "predicate");
    ck_assert_str_eq(str(pred, "action"), "promote");
    ck_assert_str_eq(str(pred, "model"), MODEL);
    ck_assert_str_eq(str(pred, "version"), "1.0");
    ck_assert_str_eq(str(pred, "stage"), "production");
    ck_assert_str_eq(str(pred, "actor"), "alice");
    ck_assert_str_eq(str(pred, "time"), str(e, "time"));
    ck_assert(json_is_null(json_object_get(pred, "from_stage")));
    ck_assert(json_is_null(json_object_get(pred, "baseline")));
    ck_assert_int_eq(json_array_size(json_object_get(pred, "gates")), 1);
    ck_assert(json_is_array(json_object_get(pred, "approvers")));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(pred, "audit"), "seq")),
                     (json_int_t)seq);
    ck_assert_str_eq(str(json_object_get(pred, "audit"), "origin"),
                     mlreg_audit_key_origin(mlreg_registry_audit_key(reg)));
    json_decref(st);
    json_decref(e);

    /* the referrer of the release */
    snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
    ck_assert_int_eq(mlreg_digest_parse(&rd, d1), 0);
    ck_assert_int_eq(
        mlreg_registry_referrers(&refs, NULL, reg, MODEL, &rd, MLREG_ARTIFACT_ATTESTATION, NULL, 0),
        0);
    json_array_foreach(json_object_get(refs, "manifests"), i, desc)
    {
        if (!strcmp(str(json_object_get(desc, "annotations"), MLREG_ANN_AUDIT_SEQ), seqs)) {
            found++;
            ck_assert_str_eq(str(json_object_get(desc, "annotations"), MLREG_ANN_STAGE),
                             "production");
            ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, MODEL, str(desc, "digest")), 0);
        }
    }
    ck_assert_int_eq(found, 1);
    json_decref(refs);
    {
        /* its one layer is the envelope, stored as a blob of the repository */
        json_t *doc = json_loadb(m->body, m->len, 0, NULL), *layer;
        mlreg_digest ld;
        mlreg_blob_reader *r = NULL;
        uint64_t size;
        char *env = json_dumps(json_object_get(att, "envelope"), JSON_COMPACT);

        ck_assert_ptr_nonnull(doc);
        layer = json_array_get(json_object_get(doc, "layers"), 0);
        ck_assert_str_eq(str(layer, "mediaType"), MLREG_MT_DSSE_ENVELOPE);
        ck_assert_str_eq(str(json_object_get(doc, "subject"), "digest"), d1);
        ck_assert_str_eq(str(json_object_get(doc, "config"), "digest"), MLREG_EMPTY_CONFIG_DIGEST);
        ck_assert_int_eq(mlreg_digest_parse(&ld, str(layer, "digest")), 0);
        ck_assert_int_eq(mlreg_registry_blob_open(&r, &size, reg, MODEL, &ld), 0);
        ck_assert_uint_eq(size, strlen(env)); /* canonical JSON: the same bytes */
        mlreg_blob_reader_free(r);
        free(env);
        json_decref(doc);
    }
    json_decref(l);

    /* the registry made it: it cannot be deleted or pushed by a client */
    mlreg_digest_format(ref_digest, &m->digest);
    ck_assert_int_eq(mlreg_registry_manifest_delete(reg, MODEL, ref_digest, "mallory"),
                     MLREG_EDENIED);
    ck_assert_int_eq(mlreg_registry_manifest_put_as(&put, reg, MODEL, "att", MLREG_MT_OCI_MANIFEST,
                                                    m->body, m->len, "mallory"),
                     MLREG_EDENIED);
    mlreg_manifest_data_free(m);

    /* a refused promotion and a dry run store none; a rollback does */
    th_use_gates(&pol, "{\"production\":[{\"metric\":\"accuracy\",\"min\":0.95}]}");
    ck_assert_int_eq(promote("2.0", "production", 0, "alice"), MLREG_EGATE);
    ck_assert_int_eq(promote("2.0", "production", 1, "alice"), MLREG_EGATE);
    ck_assert_int_eq(mlreg_attestations_list(&l, reg, MODEL, "2.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "attestations")), 0);
    json_decref(l);
    th_use_gates(&pol, "{\"production\":[{\"metric\":\"accuracy\",\"min\":0.5}]}");
    ck_assert_int_eq(promote("2.0", "production", 0, "alice"), 0);
    ck_assert_int_eq(mlreg_rollback(&res, reg, pol, MODEL, "production", NULL, "bad", "ops"), 0);
    json_decref(res);
    seq = log_size() - 1;
    ck_assert_int_eq(mlreg_attestations_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "attestations")), 2);
    att = json_array_get(json_object_get(l, "attestations"), 1);
    ck_assert_str_eq(str(att, "action"), "rollback");
    ck_assert_int_eq(json_integer_value(json_object_get(att, "seq")), (json_int_t)seq);
    st = verified_statement(att);
    pred = json_object_get(st, "predicate");
    ck_assert_str_eq(str(pred, "action"), "rollback");
    ck_assert_str_eq(str(pred, "actor"), "ops");
    ck_assert_str_eq(str(json_object_get(pred, "baseline"), "version"), "2.0");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(pred, "audit"), "seq")),
                     (json_int_t)seq);
    json_decref(st);
    json_decref(l);
    ck_assert_int_eq(mlreg_attestations_list(&l, reg, MODEL, "2.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "attestations")), 1);
    json_decref(l);
}
END_TEST

/* The one layer of the release's referrer of @p artifact_type. */
static void referrer_layer(mlreg_digest *out, const char *release_digest, const char *artifact_type)
{
    mlreg_digest rd;
    mlreg_manifest_data *m = NULL;
    json_t *refs = NULL, *doc;

    ck_assert_int_eq(mlreg_digest_parse(&rd, release_digest), 0);
    ck_assert_int_eq(mlreg_registry_referrers(&refs, NULL, reg, MODEL, &rd, artifact_type, NULL, 0),
                     0);
    ck_assert_int_eq(json_array_size(json_object_get(refs, "manifests")), 1);
    ck_assert_int_eq(
        mlreg_registry_manifest_get(
            &m, reg, MODEL, str(json_array_get(json_object_get(refs, "manifests"), 0), "digest")),
        0);
    doc = json_loadb(m->body, m->len, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(
        mlreg_digest_parse(out, str(json_array_get(json_object_get(doc, "layers"), 0), "digest")),
        0);
    json_decref(doc);
    json_decref(refs);
    mlreg_manifest_data_free(m);
}

START_TEST(test_the_layers_of_signature_and_attestation_referrers_cannot_be_unlinked)
{
    char d[MLREG_DIGEST_STRLEN + 1];
    char *body, *sig;
    mlreg_digest env, minisig, other;
    uint64_t size, n;
    int created;

    th_use_gates(&pol, "{\"production\":[{\"metric\":\"accuracy\",\"min\":0.5}]}");
    body = push("1.0", 0.9, "ci", d);
    sig = sign_text("1.0", body, d);
    ck_assert_msg(attach(sig, &created) == 0, "%s", mlreg_error_last());
    ck_assert_int_eq(promote("1.0", "production", 0, "alice"), 0);
    referrer_layer(&env, d, MLREG_ARTIFACT_ATTESTATION);
    referrer_layer(&minisig, d, MLREG_ARTIFACT_SIGNATURE);

    /* unlinking either would leave an immutable referrer naming a blob the
     * repository no longer serves: refused, and nothing is logged */
    n = log_size();
    ck_assert_int_eq(mlreg_registry_blob_unlink(reg, MODEL, &env, "mallory"), MLREG_EDENIED);
    ck_assert_msg(strstr(mlreg_error_last(), "attestation envelope of release " MODEL "@1.0"), "%s",
                  mlreg_error_last());
    ck_assert_int_eq(mlreg_registry_blob_unlink(reg, MODEL, &minisig, "mallory"), MLREG_EDENIED);
    ck_assert_msg(strstr(mlreg_error_last(), "signature of release " MODEL "@1.0"), "%s",
                  mlreg_error_last());
    ck_assert_uint_eq(log_size(), n);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, MODEL, &env), 0);
    ck_assert_int_eq(mlreg_registry_blob_stat(&size, reg, MODEL, &minisig), 0);

    /* a blob no release holds still goes */
    th_put_blob(&other, reg, MODEL, "ci", "loose");
    n = log_size();
    ck_assert_int_eq(mlreg_registry_blob_unlink(reg, MODEL, &other, "carol"), 0);
    ck_assert_uint_eq(log_size(), n + 1);
    free(sig);
    free(body);
}
END_TEST

START_TEST(test_a_promotion_whose_entry_cannot_be_appended_moves_nothing)
{
    json_t *l = NULL;
    uint64_t n;

    th_use_gates(&pol, "{\"production\":[{\"metric\":\"accuracy\",\"min\":0.5}]}");
    free(push("1.0", 0.9, "ci", NULL));
    n = log_size();
    ck_assert_int_lt(promote("1.0", "production", 0, "\xff\xfe"), 0);
    ck_assert_uint_eq(log_size(), n);
    ck_assert_str_eq(holder("production"), "");
    ck_assert_int_eq(mlreg_attestations_list(&l, reg, MODEL, "1.0"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "attestations")), 0);
    json_decref(l);
    ck_assert_int_eq(mlreg_promotions_list(&l, reg, MODEL, 0, 0), 0);
    ck_assert_int_eq(json_array_size(json_object_get(l, "promotions")), 0);
    json_decref(l);
}
END_TEST

static Suite *audit_hooks_suite(void)
{
    Suite *s = suite_create("audit_hooks");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_config_keys_are_trusted_in_the_log_by_actor_config_at_open);
    tcase_add_test(tc, test_blob_links_mounts_and_unlinks_append_one_entry_each_and_repeats_none);
    tcase_add_test(tc, test_manifest_puts_and_deletes_append_their_entries_and_no_ops_none);
    tcase_add_test(tc, test_a_mutation_whose_entry_cannot_be_appended_commits_nothing);
    tcase_add_test(tc,
                   test_signature_attach_appends_one_entry_and_refused_or_repeated_attaches_none);
    tcase_add_test(tc, test_key_trust_and_revocation_append_entries_and_no_ops_none);
    tcase_add_test(tc, test_promotions_append_ok_refused_and_nothing_for_dry_runs);
    tcase_add_test(tc, test_rollback_approval_and_image_binding_append_entries_only_when_new);
    tcase_add_test(tc, test_a_move_stores_a_signed_statement_naming_its_audit_entry);
    tcase_add_test(tc, test_a_promotion_whose_entry_cannot_be_appended_moves_nothing);
    tcase_add_test(tc, test_the_layers_of_signature_and_attestation_referrers_cannot_be_unlinked);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(audit_hooks_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
