/* check_signatures.c: release signatures on the server (registry/signatures.c)
 * over a real registry (fs backend, LMDB) in a temp dir, signed with the
 * signing library and the minisign test key in tests/vectors/minisign/ (a
 * config key of the keyring), plus hand-forged signatures made with
 * libsodium directly for the hostile cases the library refuses to write. */
#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/keyring.h"
#include "mlreg/oci.h"
#include "mlreg/registry.h"
#include "mlreg/release_sig.h"
#include "mlreg/sign.h"
#include "mlreg/signatures.h"
#include "mlreg/tables.h"

#include "helpers.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL "team/clf"

static th_registry fx; /* reg and vec_sk are fx.reg and fx.sk */
static mlreg_registry *reg;
static mlreg_seckey *vec_sk; /* the vector key: in the keyring as "release-bot" */
static mlreg_pubkey vec_pk;
static mlreg_seckey *other_sk; /* a fresh key outside the keyring */
static mlreg_pubkey other_pk;

/* Reopens the registry on the same dir and keys, after a test freed it. */
static void open_registry(void)
{
    th_registry_open(&fx);
    reg = fx.reg;
}

static void setup(void)
{
    th_registry_opts opts = {.key_file = th_vector_path("minisign/minisign.key")};

    th_registry_setup(&fx, "signatures", &opts);
    reg = fx.reg;
    vec_sk = fx.sk;
    vec_pk = fx.keys[0].pubkey;
    ck_assert_int_eq(mlreg_seckey_generate(&other_sk), 0);
    mlreg_seckey_pubkey(&other_pk, other_sk);
}

static void teardown(void)
{
    mlreg_seckey_free(other_sk);
    reg = NULL;
    vec_sk = other_sk = NULL;
    th_registry_teardown(&fx);
}

/* ---- helpers ------------------------------------------------------------- */

typedef struct {
    char *body; /* manifest bytes as stored */
    char digest[MLREG_DIGEST_STRLEN + 1];
} release;

/* Pushes MODEL@version with one weights file; fills *r (body owned by the caller). */
static void push_release(release *r, const char *version)
{
    mlreg_manifest_put_result res;

    r->body = th_release_body(reg, MODEL, version, NULL, NULL);
    ck_assert_msg(mlreg_registry_manifest_put(&res, reg, MODEL, version, MLREG_MT_OCI_MANIFEST,
                                              r->body, strlen(r->body)) == 0,
                  "push: %s", mlreg_error_last());
    mlreg_digest_format(r->digest, &res.digest);
}

static char *comment_for(const char *version, const char *digest)
{
    static char c[512];
    snprintf(c, sizeof(c), "mlreg release model=%s version=%s digest=%s timestamp=1700000000",
             MODEL, version, digest);
    return c;
}

/* A library-made signature of @p data; caller frees. */
static char *sign_with(const mlreg_seckey *sk, const char *data, const char *comment)
{
    char *sig = NULL;
    ck_assert_int_eq(mlreg_sign(&sig, sk, data, strlen(data), comment, NULL), 0);
    return sig;
}

static char *sign_release(const mlreg_seckey *sk, const release *r, const char *version)
{
    return sign_with(sk, r->body, comment_for(version, r->digest));
}

static const char *pub_b64(const mlreg_pubkey *pk)
{
    static char b[2][MLREG_PUBKEY_B64LEN + 1];
    static int i;
    i = !i;
    mlreg_pubkey_base64(b[i], pk);
    return b[i];
}

static int attach(json_t **out, int *created, const char *version, const char *sig, const char *pub)
{
    json_t *res = NULL;
    int c = -1;
    int rc = mlreg_signature_attach(&res, &c, reg, MODEL, version, sig, strlen(sig), pub,
                                    strlen(pub), "tester");

    if (rc < 0) ck_assert_ptr_null(res);
    if (created) *created = c;
    if (out)
        *out = res;
    else
        json_decref(res);
    return rc;
}

/* Expects @p rc to be @p code with @p needle in the message. */
#define ck_refused(rc, code, needle)                                                               \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        ck_assert_msg(rc_ == (code), "got %d (%s), want %d", rc_, mlreg_error_last(), (code));     \
        ck_assert_msg(strstr(mlreg_error_last(), (needle)) != NULL, "message '%s' lacks '%s'",     \
                      mlreg_error_last(), (needle));                                               \
    } while (0)

static json_t *list_sigs(const char *version)
{
    json_t *l = NULL;
    ck_assert_msg(mlreg_signatures_list(&l, reg, MODEL, version) == 0, "list: %s",
                  mlreg_error_last());
    return l;
}

static size_t n_sigs(const char *version)
{
    json_t *l = list_sigs(version);
    size_t n = json_array_size(json_object_get(l, "signatures"));
    json_decref(l);
    return n;
}

static size_t n_referrers(const char *digest)
{
    json_t *idx = NULL;
    mlreg_digest d;
    size_t n;

    ck_assert_int_eq(mlreg_digest_parse(&d, digest), 0);
    ck_assert_int_eq(mlreg_registry_referrers(&idx, NULL, reg, MODEL, &d, NULL, NULL, 0), 0);
    n = json_array_size(json_object_get(idx, "manifests"));
    json_decref(idx);
    return n;
}

/* Nothing about a refused attach may be stored: no record, no referrer,
 * no blob with the signature's bytes. */
static void assert_nothing_stored(const release *r, const char *version, const char *sig)
{
    mlreg_digest d;
    char canon[4096];

    ck_assert_uint_eq(n_sigs(version), 0);
    ck_assert_uint_eq(n_referrers(r->digest), 0);
    snprintf(canon, sizeof(canon), "%s", sig);
    if (canon[0] && canon[strlen(canon) - 1] != '\n') strcat(canon, "\n");
    ck_assert_int_eq(mlreg_digest_buffer(&d, canon, strlen(canon)), 0);
    ck_assert_int_eq(mlreg_blobstore_exists(mlreg_registry_blobstore(reg), &d), 0);
}

static char *b64(const unsigned char *bin, size_t len)
{
    size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(n);
    ck_assert_ptr_nonnull(out);
    sodium_bin2base64(out, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

/* A .minisig built by hand with libsodium: any algorithm bytes, any key id. */
static char *forge(const char alg[2], const mlreg_keyid *id, const unsigned char sk[64],
                   const void *data, size_t len, const char *comment)
{
    unsigned char raw[2 + MLREG_KEYID_BYTES + 64], prehash[64], global[64];
    unsigned char *gmsg;
    size_t clen = strlen(comment);
    char *l1, *l2, *text;
    size_t n;

    memcpy(raw, alg, 2);
    memcpy(raw + 2, id->raw, MLREG_KEYID_BYTES);
    if (alg[1] == 'D') {
        crypto_generichash(prehash, sizeof(prehash), data, len, NULL, 0);
        crypto_sign_detached(raw + 10, NULL, prehash, sizeof(prehash), sk);
    } else {
        crypto_sign_detached(raw + 10, NULL, data, len, sk);
    }
    gmsg = malloc(64 + clen);
    memcpy(gmsg, raw + 10, 64);
    memcpy(gmsg + 64, comment, clen);
    crypto_sign_detached(global, NULL, gmsg, 64 + clen, sk);
    free(gmsg);
    l1 = b64(raw, sizeof(raw));
    l2 = b64(global, sizeof(global));
    n = strlen(l1) + strlen(l2) + clen + 100;
    text = malloc(n);
    snprintf(text, n, "untrusted comment: forged\n%s\ntrusted comment: %s\n%s\n", l1, comment, l2);
    free(l1);
    free(l2);
    return text;
}

/* ---- attach -------------------------------------------------------------- */

START_TEST(test_attach_stores_record_referrer_and_blob)
{
    release r;
    json_t *res = NULL, *l, *s, *idx = NULL, *ref, *layer;
    int created = 0;
    char *sig;
    mlreg_manifest_data *m = NULL;
    mlreg_digest subject, layer_d;
    mlreg_blob_reader *rd = NULL;
    uint64_t size = 0;
    char buf[4096];
    ssize_t got;
    char id[MLREG_KEYID_HEXLEN + 1];

    push_release(&r, "1.0");
    sig = sign_release(vec_sk, &r, "1.0");
    mlreg_keyid_format(id, &vec_pk.id);
    ck_assert_msg(attach(&res, &created, "1.0", sig, pub_b64(&vec_pk)) == 0, "attach: %s",
                  mlreg_error_last());
    ck_assert_int_eq(created, 1);
    ck_assert_str_eq(json_string_value(json_object_get(res, "key_id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(res, "digest")), r.digest);
    ck_assert(json_is_true(json_object_get(res, "trusted")));
    ck_assert_str_eq(json_string_value(json_object_get(res, "key_name")), "release-bot");

    /* the listing */
    l = list_sigs("1.0");
    ck_assert_str_eq(json_string_value(json_object_get(l, "digest")), r.digest);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "signatures")), 1);
    s = json_array_get(json_object_get(l, "signatures"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(s, "signature")), sig);
    ck_assert_str_eq(json_string_value(json_object_get(s, "public_key")), pub_b64(&vec_pk));
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")), "trusted");
    ck_assert(json_is_true(json_object_get(s, "counts")));
    ck_assert(json_is_true(json_object_get(s, "trusted_at_attach")));
    ck_assert_str_eq(json_string_value(json_object_get(s, "role")), "release");
    ck_assert_str_eq(json_string_value(json_object_get(s, "attached_by")), "tester");
    json_decref(l);

    /* the OCI referrer, and its layer is the .minisig */
    ck_assert_int_eq(mlreg_digest_parse(&subject, r.digest), 0);
    ck_assert_int_eq(mlreg_registry_referrers(&idx, NULL, reg, MODEL, &subject,
                                              MLREG_ARTIFACT_SIGNATURE, NULL, 0),
                     0);
    ck_assert_uint_eq(json_array_size(json_object_get(idx, "manifests")), 1);
    ref = json_array_get(json_object_get(idx, "manifests"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(ref, "digest")),
                     json_string_value(json_object_get(res, "referrer")));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(ref, "annotations"), MLREG_ANN_KEY_ID)),
        id);
    ck_assert_int_eq(mlreg_registry_manifest_get(&m, reg, MODEL,
                                                 json_string_value(json_object_get(ref, "digest"))),
                     0);
    {
        json_t *doc = json_loadb(m->body, m->len, 0, NULL);
        ck_assert_ptr_nonnull(doc);
        ck_assert_str_eq(json_string_value(json_object_get(doc, "artifactType")),
                         MLREG_ARTIFACT_SIGNATURE);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(doc, "subject"), "digest")),
            r.digest);
        layer = json_array_get(json_object_get(doc, "layers"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(layer, "mediaType")),
                         MLREG_ARTIFACT_SIGNATURE);
        ck_assert_int_eq(
            mlreg_digest_parse(&layer_d, json_string_value(json_object_get(layer, "digest"))), 0);
        json_decref(doc);
    }
    /* the referrer belongs to the signature: not deletable on its own */
    ck_assert_int_eq(mlreg_registry_manifest_delete(
                         reg, MODEL, json_string_value(json_object_get(ref, "digest")), NULL),
                     MLREG_EDENIED);
    ck_assert_uint_eq(n_referrers(r.digest), 1);
    ck_assert_int_eq(mlreg_registry_blob_open(&rd, &size, reg, MODEL, &layer_d), 0);
    ck_assert_uint_eq(size, strlen(sig));
    got = mlreg_blob_reader_read(rd, buf, sizeof(buf));
    ck_assert_int_eq(got, (ssize_t)strlen(sig));
    ck_assert_int_eq(memcmp(buf, sig, strlen(sig)), 0);
    mlreg_blob_reader_free(rd);
    mlreg_manifest_data_free(m);
    json_decref(idx);
    json_decref(res);
    free(sig);
    free(r.body);
}
END_TEST

START_TEST(test_attach_is_idempotent_and_refuses_a_second_signature_by_the_same_key)
{
    release r;
    json_t *a = NULL, *b = NULL;
    int created = -1;
    char *sig, *sig2, *trimmed;

    push_release(&r, "1.0");
    sig = sign_release(vec_sk, &r, "1.0");
    ck_assert_int_eq(attach(&a, &created, "1.0", sig, pub_b64(&vec_pk)), 0);
    ck_assert_int_eq(created, 1);
    /* the same signature again, also without its final newline: a no-op */
    trimmed = strdup(sig);
    trimmed[strlen(trimmed) - 1] = '\0';
    ck_assert_int_eq(attach(&b, &created, "1.0", trimmed, pub_b64(&vec_pk)), 0);
    ck_assert_int_eq(created, 0);
    ck_assert_str_eq(json_string_value(json_object_get(a, "referrer")),
                     json_string_value(json_object_get(b, "referrer")));
    ck_assert_uint_eq(n_sigs("1.0"), 1);
    ck_assert_uint_eq(n_referrers(r.digest), 1);

    /* another signature by the same key on the same release */
    {
        char c[512];
        snprintf(c, sizeof(c), "mlreg release model=%s version=1.0 digest=%s timestamp=2", MODEL,
                 r.digest);
        sig2 = sign_with(vec_sk, r.body, c);
    }
    ck_refused(attach(NULL, NULL, "1.0", sig2, pub_b64(&vec_pk)), MLREG_EDENIED,
               "already has a different signature by key");
    ck_assert_uint_eq(n_sigs("1.0"), 1);
    ck_assert_uint_eq(n_referrers(r.digest), 1);
    {
        json_t *l = list_sigs("1.0");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(l, "signatures"), 0), "signature")),
                         sig);
        json_decref(l);
    }
    /* a second signer is welcome */
    free(sig2);
    sig2 = sign_release(other_sk, &r, "1.0");
    ck_assert_int_eq(attach(NULL, &created, "1.0", sig2, pub_b64(&other_pk)), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_uint_eq(n_sigs("1.0"), 2);
    ck_assert_uint_eq(n_referrers(r.digest), 2);
    json_decref(a);
    json_decref(b);
    free(trimmed);
    free(sig);
    free(sig2);
    free(r.body);
}
END_TEST

START_TEST(test_attach_stores_an_untrusted_key_with_trusted_false)
{
    release r;
    json_t *res = NULL, *l, *s;
    char *sig;

    push_release(&r, "1.0");
    sig = sign_release(other_sk, &r, "1.0");
    ck_assert_int_eq(attach(&res, NULL, "1.0", sig, pub_b64(&other_pk)), 0);
    ck_assert(json_is_false(json_object_get(res, "trusted")));
    ck_assert(json_is_null(json_object_get(res, "key_name")));
    l = list_sigs("1.0");
    s = json_array_get(json_object_get(l, "signatures"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")), "untrusted");
    ck_assert(json_is_false(json_object_get(s, "counts")));
    ck_assert(json_is_false(json_object_get(s, "trusted_at_attach")));
    ck_assert(json_is_null(json_object_get(s, "key_name")));
    json_decref(l);
    json_decref(res);
    free(sig);
    free(r.body);
}
END_TEST

START_TEST(test_attach_refuses_a_forged_signature)
{
    release r;
    char *sig;

    push_release(&r, "1.0");
    /* the right comment, but a signature over other bytes */
    sig = sign_with(vec_sk, "not the manifest", comment_for("1.0", r.digest));
    ck_refused(attach(NULL, NULL, "1.0", sig, pub_b64(&vec_pk)), MLREG_EMISMATCH,
               "signature does not match the manifest of " MODEL "@1.0");
    assert_nothing_stored(&r, "1.0", sig);
    free(sig);
    free(r.body);
}
END_TEST

START_TEST(test_attach_refuses_a_public_key_with_another_key_id)
{
    release r;
    char *sig;

    push_release(&r, "1.0");
    sig = sign_release(other_sk, &r, "1.0");
    ck_refused(attach(NULL, NULL, "1.0", sig, pub_b64(&vec_pk)), MLREG_EINVALID,
               "signature made by key ID");
    assert_nothing_stored(&r, "1.0", sig);
    free(sig);
    free(r.body);
}
END_TEST

START_TEST(test_attach_refuses_a_signature_replayed_from_another_release)
{
    release r1, r2;
    char *sig;

    push_release(&r1, "1.0");
    push_release(&r2, "2.0");
    /* 1.0's valid signature offered for 2.0: over other bytes */
    sig = sign_release(vec_sk, &r1, "1.0");
    ck_refused(attach(NULL, NULL, "2.0", sig, pub_b64(&vec_pk)), MLREG_EMISMATCH,
               "signature does not match the manifest");
    assert_nothing_stored(&r2, "2.0", sig);
    free(sig);
    /* 2.0's bytes, but the comment names 1.0 (version and digest) */
    sig = sign_with(vec_sk, r2.body, comment_for("1.0", r1.digest));
    ck_refused(attach(NULL, NULL, "2.0", sig, pub_b64(&vec_pk)), MLREG_EMISMATCH,
               "trusted comment names version 1.0, not 2.0");
    assert_nothing_stored(&r2, "2.0", sig);
    free(sig);
    /* right version, wrong digest */
    sig = sign_with(vec_sk, r2.body, comment_for("2.0", r1.digest));
    ck_refused(attach(NULL, NULL, "2.0", sig, pub_b64(&vec_pk)), MLREG_EMISMATCH,
               "trusted comment names digest");
    assert_nothing_stored(&r2, "2.0", sig);
    free(sig);
    /* another model */
    {
        char c[512];
        snprintf(c, sizeof(c), "mlreg release model=other version=2.0 digest=%s", r2.digest);
        sig = sign_with(vec_sk, r2.body, c);
        ck_refused(attach(NULL, NULL, "2.0", sig, pub_b64(&vec_pk)), MLREG_EMISMATCH,
                   "trusted comment names model other, not " MODEL);
        free(sig);
        snprintf(c, sizeof(c), "minisign says hi");
        sig = sign_with(vec_sk, r2.body, c);
        ck_refused(attach(NULL, NULL, "2.0", sig, pub_b64(&vec_pk)), MLREG_EMISMATCH,
                   "not an mlreg release comment");
        free(sig);
        snprintf(c, sizeof(c), "mlreg release model=%s version=2.0 digest=%s  x=1", MODEL,
                 r2.digest);
        sig = sign_with(vec_sk, r2.body, c);
        ck_refused(attach(NULL, NULL, "2.0", sig, pub_b64(&vec_pk)), MLREG_EMISMATCH,
                   "malformed fields after the digest");
        free(sig);
        snprintf(c, sizeof(c), "mlreg release model=%s version=2.0 digest=%s", MODEL, r2.digest);
        sig = sign_with(vec_sk, r2.body, c); /* exactly the four fields: fine */
        ck_assert_int_eq(attach(NULL, NULL, "2.0", sig, pub_b64(&vec_pk)), 0);
        free(sig);
    }
    free(r1.body);
    free(r2.body);
}
END_TEST

/* The server accepts exactly the comments `mlreg verify` accepts: one it
 * stored but the client refused would make every verify of the release fail. */
START_TEST(test_attach_refuses_extra_fields_that_verify_would_refuse)
{
    static const char *const tails[] = {" x=", " x=a\tb", " x=\x01", " x=1 =2"};
    release r;
    char c[512], *sig;

    push_release(&r, "1.0");
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        snprintf(c, sizeof(c), "mlreg release model=%s version=1.0 digest=%s%s", MODEL, r.digest,
                 tails[i]);
        ck_assert_int_lt(mlreg_release_comment_check(c, MODEL, "1.0", r.digest), 0);
        sig = sign_with(vec_sk, r.body, c);
        ck_refused(attach(NULL, NULL, "1.0", sig, pub_b64(&vec_pk)), MLREG_EMISMATCH,
                   "malformed fields after the digest");
        assert_nothing_stored(&r, "1.0", sig);
        free(sig);
    }
    free(r.body);
}
END_TEST

START_TEST(test_attach_refuses_an_edited_trusted_comment)
{
    release r;
    char *sig, *p;

    push_release(&r, "1.0");
    sig = sign_release(vec_sk, &r, "1.0");
    p = strstr(sig, "timestamp=1700000000");
    ck_assert_ptr_nonnull(p);
    p[strlen("timestamp=")] = '2';
    ck_refused(attach(NULL, NULL, "1.0", sig, pub_b64(&vec_pk)), MLREG_EMISMATCH,
               "trusted comment was altered");
    assert_nothing_stored(&r, "1.0", sig);
    free(sig);
    free(r.body);
}
END_TEST

START_TEST(test_attach_refuses_truncated_base64_and_wrong_algorithm_bytes)
{
    release r;
    char *sig, *line, *cut;
    unsigned char sk[64];

    push_release(&r, "1.0");
    sig = sign_release(vec_sk, &r, "1.0");
    /* drop 4 base64 characters from the signature line */
    line = strchr(sig, '\n') + 1;
    cut = malloc(strlen(sig) + 1);
    memcpy(cut, sig, (size_t)(line - sig) + 20);
    strcpy(cut + (line - sig) + 20, line + 24);
    ck_refused(attach(NULL, NULL, "1.0", cut, pub_b64(&vec_pk)), MLREG_EINVALID,
               "malformed signature");
    assert_nothing_stored(&r, "1.0", cut);
    free(cut);
    free(sig);

    /* algorithm bytes "XD", and the legacy "Ed" (valid, but not prehashed) */
    {
        unsigned char pk[32];
        mlreg_pubkey fpk;
        char pub[MLREG_PUBKEY_B64LEN + 1];
        crypto_sign_keypair(pk, sk);
        fpk.id = other_pk.id;
        memcpy(fpk.pk, pk, 32);
        mlreg_pubkey_base64(pub, &fpk);
        sig = forge("XD", &fpk.id, sk, r.body, strlen(r.body), comment_for("1.0", r.digest));
        ck_refused(attach(NULL, NULL, "1.0", sig, pub), MLREG_EINVALID, "malformed signature");
        assert_nothing_stored(&r, "1.0", sig);
        free(sig);
        sig = forge("Ed", &fpk.id, sk, r.body, strlen(r.body), comment_for("1.0", r.digest));
        ck_refused(attach(NULL, NULL, "1.0", sig, pub), MLREG_EINVALID, "legacy");
        assert_nothing_stored(&r, "1.0", sig);
        free(sig);
        /* the forging helper itself makes signatures the server accepts */
        sig = forge("ED", &fpk.id, sk, r.body, strlen(r.body), comment_for("1.0", r.digest));
        ck_assert_msg(attach(NULL, NULL, "1.0", sig, pub) == 0, "forge: %s", mlreg_error_last());
        free(sig);
    }
    ck_refused(attach(NULL, NULL, "1.0", "", pub_b64(&vec_pk)), MLREG_EINVALID,
               "malformed signature");
    free(r.body);
}
END_TEST

START_TEST(test_attach_refuses_a_key_that_differs_from_the_keyring_key)
{
    release r;
    unsigned char pk[32], sk[64];
    mlreg_pubkey fpk;
    char pub[MLREG_PUBKEY_B64LEN + 1], *sig;

    push_release(&r, "1.0");
    /* a key pair that claims the trusted key's id */
    crypto_sign_keypair(pk, sk);
    fpk.id = vec_pk.id;
    memcpy(fpk.pk, pk, 32);
    mlreg_pubkey_base64(pub, &fpk);
    sig = forge("ED", &fpk.id, sk, r.body, strlen(r.body), comment_for("1.0", r.digest));
    ck_refused(attach(NULL, NULL, "1.0", sig, pub), MLREG_EINVALID,
               "public key differs from the trusted key 135F655E9F290E69");
    assert_nothing_stored(&r, "1.0", sig);
    free(sig);
    free(r.body);
}
END_TEST

START_TEST(test_attach_refuses_unknown_versions_and_non_releases)
{
    release r;
    mlreg_digest d;
    mlreg_manifest_put_result res;
    char *sig, body[512], dd[MLREG_DIGEST_STRLEN + 1];

    push_release(&r, "1.0");
    sig = sign_release(vec_sk, &r, "1.0");
    ck_refused(attach(NULL, NULL, "9.9", sig, pub_b64(&vec_pk)), MLREG_ENOTFOUND, "not found");
    {
        json_t *out = NULL;
        int created = -1;
        ck_assert_int_eq(mlreg_signature_attach(&out, &created, reg, "nobody", "1.0", sig,
                                                strlen(sig), pub_b64(&vec_pk), MLREG_PUBKEY_B64LEN,
                                                "t"),
                         MLREG_ENOTFOUND);
        ck_assert_ptr_null(out);
    }
    /* a plain OCI image under a tag */
    th_put_blob(&d, reg, MODEL, NULL, "plain layer");
    mlreg_digest_format(dd, &d);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":2},\"layers\":[{\"mediaType\":\"application/"
             "octet-stream\",\"digest\":\"%s\",\"size\":11}]}",
             MLREG_MT_OCI_MANIFEST, MLREG_MT_OCI_EMPTY, MLREG_EMPTY_CONFIG_DIGEST, dd);
    ck_assert_int_eq(mlreg_registry_manifest_put(&res, reg, MODEL, "plain", MLREG_MT_OCI_MANIFEST,
                                                 body, strlen(body)),
                     0);
    ck_refused(attach(NULL, NULL, "plain", sig, pub_b64(&vec_pk)), MLREG_EUNSUPPORTED,
               "not a release");
    {
        json_t *out = NULL;
        ck_assert_int_eq(mlreg_signatures_list(&out, reg, MODEL, "plain"), MLREG_ENOTFOUND);
        ck_assert_ptr_null(out);
    }
    ck_assert_uint_eq(n_sigs("1.0"), 0);
    free(sig);
    free(r.body);
}
END_TEST

/* ---- counting and revocation ---------------------------------------------- */

static json_t *sig_of(json_t *list, size_t i)
{
    return json_array_get(json_object_get(list, "signatures"), i);
}

START_TEST(test_retired_keys_keep_earlier_signatures_compromised_keys_none)
{
    release r1, r2;
    json_t *res = NULL, *l1, *l2, *obj = NULL;
    char *sig1, *sig2, id[MLREG_KEYID_HEXLEN + 1];

    mlreg_keyid_format(id, &vec_pk.id);
    push_release(&r1, "1.0");
    push_release(&r2, "2.0");
    sig1 = sign_release(vec_sk, &r1, "1.0");
    ck_assert_int_eq(attach(NULL, NULL, "1.0", sig1, pub_b64(&vec_pk)), 0);
    ck_assert_int_eq(mlreg_keyring_revoke(&obj, mlreg_registry_keyring(reg), id, "retired",
                                          "rotation", "tester"),
                     0);
    json_decref(obj);
    obj = NULL;
    sig2 = sign_release(vec_sk, &r2, "2.0");
    ck_assert_int_eq(attach(&res, NULL, "2.0", sig2, pub_b64(&vec_pk)), 0);
    ck_assert(json_is_false(json_object_get(res, "trusted")));
    json_decref(res);

    l1 = list_sigs("1.0");
    l2 = list_sigs("2.0");
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l1, 0), "status")), "retired");
    ck_assert(json_is_true(json_object_get(sig_of(l1, 0), "counts")));
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l2, 0), "status")), "retired");
    ck_assert(json_is_false(json_object_get(sig_of(l2, 0), "counts")));
    ck_assert(json_is_false(json_object_get(sig_of(l2, 0), "trusted_at_attach")));
    json_decref(l1);
    json_decref(l2);

    ck_assert_int_eq(
        mlreg_keyring_revoke(&obj, mlreg_registry_keyring(reg), id, "compromised", NULL, "tester"),
        0);
    json_decref(obj);
    l1 = list_sigs("1.0");
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l1, 0), "status")), "compromised");
    ck_assert(json_is_false(json_object_get(sig_of(l1, 0), "counts")));
    ck_assert(json_is_true(json_object_get(sig_of(l1, 0), "trusted_at_attach")));
    json_decref(l1);
    free(sig1);
    free(sig2);
    free(r1.body);
    free(r2.body);
}
END_TEST

START_TEST(test_revocation_persists_across_reopen_with_the_config_still_listing_the_key)
{
    release r;
    json_t *obj = NULL, *l;
    char *sig, id[MLREG_KEYID_HEXLEN + 1];

    mlreg_keyid_format(id, &vec_pk.id);
    push_release(&r, "1.0");
    sig = sign_release(vec_sk, &r, "1.0");
    ck_assert_int_eq(attach(NULL, NULL, "1.0", sig, pub_b64(&vec_pk)), 0);
    ck_assert_int_eq(mlreg_keyring_revoke(&obj, mlreg_registry_keyring(reg), id, "compromised",
                                          "leaked", "tester"),
                     0);
    json_decref(obj);
    mlreg_registry_free(reg);
    reg = NULL;
    open_registry(); /* cfg still lists the key */
    l = list_sigs("1.0");
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l, 0), "status")), "compromised");
    ck_assert(json_is_false(json_object_get(sig_of(l, 0), "counts")));
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l, 0), "key_name")), "release-bot");
    json_decref(l);
    /* and the stored signature itself survived */
    ck_assert_uint_eq(n_referrers(r.digest), 1);
    free(sig);
    free(r.body);
}
END_TEST

/* The server's wall clock may be behind a revocation time stored by an
 * earlier run (clock stepped back, restart on another host). An attach that
 * comes after the retirement must still be judged "after" it. */
START_TEST(test_an_attach_after_a_retirement_never_counts_even_when_the_clock_went_back)
{
    release r;
    json_t *obj = NULL, *res = NULL, *l, *rec;
    mlreg_meta_txn *txn = NULL;
    void *val = NULL;
    size_t vlen = 0;
    char *sig, *text, id[MLREG_KEYID_HEXLEN + 1];

    mlreg_keyid_format(id, &vec_pk.id);
    push_release(&r, "1.0");
    ck_assert_int_eq(mlreg_keyring_revoke(&obj, mlreg_registry_keyring(reg), id, "retired",
                                          "rotation", "tester"),
                     0);
    json_decref(obj);
    /* the revocation was recorded by a clock one hour ahead of ours */
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 1), 0);
    ck_assert_int_eq(mlreg_meta_get(&val, &vlen, txn, MLREG_DB_KEYS, id, MLREG_KEYID_HEXLEN), 0);
    rec = json_loadb(val, vlen, 0, NULL);
    free(val);
    ck_assert_ptr_nonnull(rec);
    ck_assert_int_eq(json_object_set_new(rec, "revoked_ns",
                                         json_integer((json_int_t)(mlreg_time_now_ns() +
                                                                   3600 * (int64_t)1000000000))),
                     0);
    text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    ck_assert_int_eq(
        mlreg_meta_put(txn, MLREG_DB_KEYS, id, MLREG_KEYID_HEXLEN, text, strlen(text), 0), 0);
    free(text);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    mlreg_registry_free(reg);
    reg = NULL;
    open_registry();

    sig = sign_release(vec_sk, &r, "1.0");
    ck_assert_msg(attach(&res, NULL, "1.0", sig, pub_b64(&vec_pk)) == 0, "attach: %s",
                  mlreg_error_last());
    ck_assert(json_is_false(json_object_get(res, "trusted")));
    json_decref(res);
    l = list_sigs("1.0");
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l, 0), "status")), "retired");
    ck_assert(json_is_false(json_object_get(sig_of(l, 0), "counts")));
    json_decref(l);
    free(sig);
    free(r.body);
}
END_TEST

START_TEST(test_runtime_trust_makes_an_earlier_untrusted_signature_count)
{
    release r;
    json_t *obj = NULL, *l;
    char *sig;
    int created = 0;

    push_release(&r, "1.0");
    sig = sign_release(other_sk, &r, "1.0");
    ck_assert_int_eq(attach(NULL, NULL, "1.0", sig, pub_b64(&other_pk)), 0);
    ck_assert_int_eq(mlreg_keyring_trust(&obj, &created, mlreg_registry_keyring(reg), "second",
                                         "release", pub_b64(&other_pk), MLREG_PUBKEY_B64LEN,
                                         "tester"),
                     0);
    json_decref(obj);
    l = list_sigs("1.0");
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l, 0), "status")), "trusted");
    ck_assert(json_is_true(json_object_get(sig_of(l, 0), "counts")));
    ck_assert(json_is_false(json_object_get(sig_of(l, 0), "trusted_at_attach")));
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l, 0), "role")), "release");
    json_decref(l);
    free(sig);
    free(r.body);
}
END_TEST

START_TEST(test_a_signature_by_a_key_whose_role_does_not_sign_releases_never_counts)
{
    release r;
    json_t *obj = NULL, *res = NULL, *l;
    char *sig;
    int created = 0;

    ck_assert_int_eq(mlreg_keyring_trust(&obj, &created, mlreg_registry_keyring(reg), "alice",
                                         "approver", pub_b64(&other_pk), MLREG_PUBKEY_B64LEN,
                                         "tester"),
                     0);
    json_decref(obj);
    push_release(&r, "1.0");
    sig = sign_release(other_sk, &r, "1.0");
    ck_assert_int_eq(attach(&res, &created, "1.0", sig, pub_b64(&other_pk)), 0);
    ck_assert_int_eq(created, 1);
    ck_assert(json_is_false(json_object_get(res, "trusted")));
    ck_assert_str_eq(json_string_value(json_object_get(res, "key_name")), "alice");
    json_decref(res);
    l = list_sigs("1.0");
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l, 0), "status")), "trusted");
    ck_assert_str_eq(json_string_value(json_object_get(sig_of(l, 0), "role")), "approver");
    ck_assert(json_is_false(json_object_get(sig_of(l, 0), "counts")));
    ck_assert(json_is_false(json_object_get(sig_of(l, 0), "trusted_at_attach")));
    json_decref(l);
    free(sig);
    free(r.body);
}
END_TEST

/* ---- keys that share a key id ------------------------------------------------ */

/* A key pair of its own that carries @p id (a key id is 8 bytes anyone can
 * put on a fresh key): *pub_out its public key's base64 line, sk its
 * libsodium secret key for forge(). */
static void same_id_key(char pub_out[MLREG_PUBKEY_B64LEN + 1], unsigned char sk[64],
                        const mlreg_keyid *id)
{
    mlreg_pubkey fpk;

    crypto_sign_keypair(fpk.pk, sk);
    fpk.id = *id;
    mlreg_pubkey_base64(pub_out, &fpk);
}

static json_t *sig_by_pub(json_t *list, const char *pub)
{
    json_t *e;
    size_t i;

    json_array_foreach(json_object_get(list, "signatures"), i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "public_key")), pub)) return e;
    }
    return NULL;
}

/* The last audit entry, parsed (owned by the caller). */
static json_t *last_audit_entry(void)
{
    json_t *page = NULL, *entries, *last;
    uint64_t since = 0;

    for (;;) {
        ck_assert_int_eq(mlreg_audit_list(&page, mlreg_registry_meta(reg), since, 1000), 0);
        entries = json_object_get(page, "entries");
        if (json_array_size(entries) < 1000) break;
        since += 1000;
        json_decref(page);
    }
    /* entries are the stored bytes, as strings */
    last = json_loads(json_string_value(json_array_get(entries, json_array_size(entries) - 1)), 0,
                      NULL);
    json_decref(page);
    ck_assert_ptr_nonnull(last);
    return last;
}

START_TEST(test_a_key_carrying_the_signers_key_id_attached_first_does_not_lock_the_signer_out)
{
    release r;
    json_t *res = NULL, *l = NULL, *e, *obj = NULL;
    int created = -1;
    unsigned char fsk[64];
    char fpub[MLREG_PUBKEY_B64LEN + 1], id[MLREG_KEYID_HEXLEN + 1], *forged, *forged2, *genuine,
        *genuine2, c[512];

    /* the signer's key (other_pk) is not in the keyring yet, e.g. during a key rotation */
    mlreg_keyid_format(id, &other_pk.id);
    push_release(&r, "1.0");
    same_id_key(fpub, fsk, &other_pk.id);
    forged = forge("ED", &other_pk.id, fsk, r.body, strlen(r.body), comment_for("1.0", r.digest));
    ck_assert_msg(attach(NULL, &created, "1.0", forged, fpub) == 0, "forged: %s",
                  mlreg_error_last());
    ck_assert_int_eq(created, 1);

    genuine = sign_release(other_sk, &r, "1.0");
    ck_assert_msg(attach(&res, &created, "1.0", genuine, pub_b64(&other_pk)) == 0, "genuine: %s",
                  mlreg_error_last());
    ck_assert_int_eq(created, 1);
    ck_assert_str_eq(json_string_value(json_object_get(res, "key_id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(res, "public_key")), pub_b64(&other_pk));
    json_decref(res);
    ck_assert_uint_eq(n_sigs("1.0"), 2);
    ck_assert_uint_eq(n_referrers(r.digest), 2);
    {
        /* the audit entry names the full key, not just the id both share */
        json_t *entry = last_audit_entry();
        ck_assert_str_eq(json_string_value(json_object_get(entry, "action")), "signature.attach");
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(entry, "details"), "public_key")),
            pub_b64(&other_pk));
        json_decref(entry);
    }

    /* each key still has its one signature: retries are no-ops, others 409 */
    ck_assert_int_eq(attach(NULL, &created, "1.0", genuine, pub_b64(&other_pk)), 0);
    ck_assert_int_eq(created, 0);
    ck_assert_int_eq(attach(NULL, &created, "1.0", forged, fpub), 0);
    ck_assert_int_eq(created, 0);
    snprintf(c, sizeof(c), "mlreg release model=%s version=1.0 digest=%s timestamp=2", MODEL,
             r.digest);
    genuine2 = sign_with(other_sk, r.body, c);
    ck_refused(attach(NULL, NULL, "1.0", genuine2, pub_b64(&other_pk)), MLREG_EDENIED,
               "already has a different signature by key");
    forged2 = forge("ED", &other_pk.id, fsk, r.body, strlen(r.body), c);
    ck_refused(attach(NULL, NULL, "1.0", forged2, fpub), MLREG_EDENIED,
               "already has a different signature by key");
    ck_assert_uint_eq(n_sigs("1.0"), 2);
    ck_assert_uint_eq(n_referrers(r.digest), 2);

    /* the real key enters the keyring: its signature counts, the other never does */
    ck_assert_int_eq(mlreg_keyring_trust(&obj, &created, mlreg_registry_keyring(reg), "rotated",
                                         "release", pub_b64(&other_pk), MLREG_PUBKEY_B64LEN,
                                         "tester"),
                     0);
    json_decref(obj);
    l = list_sigs("1.0");
    e = sig_by_pub(l, pub_b64(&other_pk));
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(json_string_value(json_object_get(e, "signature")), genuine);
    ck_assert_str_eq(json_string_value(json_object_get(e, "status")), "trusted");
    ck_assert(json_is_true(json_object_get(e, "counts")));
    ck_assert_str_eq(json_string_value(json_object_get(e, "key_name")), "rotated");
    e = sig_by_pub(l, fpub);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(json_string_value(json_object_get(e, "key_id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(e, "status")), "untrusted");
    ck_assert(json_is_false(json_object_get(e, "counts")));
    ck_assert(json_is_null(json_object_get(e, "key_name")));
    json_decref(l);
    /* and now that the id is in the keyring, no other key may attach under it */
    free(forged2);
    {
        char c3[512];
        snprintf(c3, sizeof(c3), "mlreg release model=%s version=1.0 digest=%s timestamp=3", MODEL,
                 r.digest);
        same_id_key(fpub, fsk, &other_pk.id);
        forged2 = forge("ED", &other_pk.id, fsk, r.body, strlen(r.body), c3);
    }
    ck_refused(attach(NULL, NULL, "1.0", forged2, fpub), MLREG_EINVALID,
               "public key differs from the trusted key");
    ck_assert_uint_eq(n_sigs("1.0"), 2);
    free(forged);
    free(forged2);
    free(genuine);
    free(genuine2);
    free(r.body);
}
END_TEST

/* Moves the record of @p pub's signature on release @p digest to the key
 * layout of earlier versions (release digest hex \0 KEYID), as a data dir
 * written by them holds it. */
static void make_legacy(const char *digest, const char *pub)
{
    mlreg_meta_txn *txn = NULL;
    mlreg_pubkey pk;
    char key[64 + 1 + 16 + 1 + 64], pkhex[65];
    void *val = NULL;
    size_t vlen = 0;

    ck_assert_int_eq(mlreg_pubkey_parse(&pk, pub, strlen(pub)), 0);
    memcpy(key, digest + 7, 64);
    key[64] = '\0';
    mlreg_keyid_format(key + 65, &pk.id);
    sodium_bin2hex(pkhex, sizeof(pkhex), pk.pk, sizeof(pk.pk));
    memcpy(key + 65 + 16 + 1, pkhex, 64);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 1), 0);
    ck_assert_int_eq(mlreg_meta_get(&val, &vlen, txn, MLREG_DB_SIGNATURES, key, sizeof(key)), 0);
    ck_assert_int_eq(mlreg_meta_del(txn, MLREG_DB_SIGNATURES, key, sizeof(key)), 0);
    ck_assert_int_eq(mlreg_meta_put(txn, MLREG_DB_SIGNATURES, key, 64 + 1 + 16, val, vlen, 1), 0);
    ck_assert_int_eq(mlreg_meta_txn_commit(txn), 0);
    free(val);
}

START_TEST(test_records_keyed_by_key_id_alone_are_read_counted_and_kept_to_their_own_key)
{
    release r1, r2;
    json_t *l, *e, *res = NULL;
    int created = -1;
    unsigned char fsk[64];
    char fpub[MLREG_PUBKEY_B64LEN + 1], *sig1, *sig1b, *forged, *genuine, c[512];

    push_release(&r1, "1.0");
    push_release(&r2, "2.0");
    /* 1.0: the keyring key's signature, stored as earlier versions did */
    sig1 = sign_release(vec_sk, &r1, "1.0");
    ck_assert_int_eq(attach(&res, NULL, "1.0", sig1, pub_b64(&vec_pk)), 0);
    make_legacy(r1.digest, pub_b64(&vec_pk));
    mlreg_registry_free(reg);
    reg = NULL;
    open_registry();
    l = list_sigs("1.0");
    ck_assert_uint_eq(json_array_size(json_object_get(l, "signatures")), 1);
    e = sig_of(l, 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "signature")), sig1);
    ck_assert_str_eq(json_string_value(json_object_get(e, "status")), "trusted");
    ck_assert(json_is_true(json_object_get(e, "counts")));
    json_decref(l);
    /* still that key's one signature: a retry is a no-op, another is 409 */
    ck_assert_int_eq(attach(NULL, &created, "1.0", sig1, pub_b64(&vec_pk)), 0);
    ck_assert_int_eq(created, 0);
    snprintf(c, sizeof(c), "mlreg release model=%s version=1.0 digest=%s timestamp=2", MODEL,
             r1.digest);
    sig1b = sign_with(vec_sk, r1.body, c);
    ck_refused(attach(NULL, NULL, "1.0", sig1b, pub_b64(&vec_pk)), MLREG_EDENIED,
               "already has a different signature by key");
    ck_assert_uint_eq(n_sigs("1.0"), 1);
    /* its referrer is still the signature's own */
    ck_assert_int_eq(mlreg_registry_manifest_delete(
                         reg, MODEL, json_string_value(json_object_get(res, "referrer")), NULL),
                     MLREG_EDENIED);
    json_decref(res);

    /* 2.0: a legacy record by another key under the (not yet trusted) signer's id */
    same_id_key(fpub, fsk, &other_pk.id);
    forged =
        forge("ED", &other_pk.id, fsk, r2.body, strlen(r2.body), comment_for("2.0", r2.digest));
    ck_assert_int_eq(attach(NULL, NULL, "2.0", forged, fpub), 0);
    make_legacy(r2.digest, fpub);
    genuine = sign_release(other_sk, &r2, "2.0");
    ck_assert_msg(attach(NULL, &created, "2.0", genuine, pub_b64(&other_pk)) == 0, "genuine: %s",
                  mlreg_error_last());
    ck_assert_int_eq(created, 1);
    l = list_sigs("2.0");
    ck_assert_uint_eq(json_array_size(json_object_get(l, "signatures")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(sig_by_pub(l, fpub), "signature")), forged);
    ck_assert_str_eq(
        json_string_value(json_object_get(sig_by_pub(l, pub_b64(&other_pk)), "signature")),
        genuine);
    json_decref(l);
    ck_assert_int_eq(attach(NULL, &created, "2.0", forged, fpub), 0);
    ck_assert_int_eq(created, 0);
    ck_assert_uint_eq(n_referrers(r2.digest), 2);
    free(sig1);
    free(sig1b);
    free(forged);
    free(genuine);
    free(r1.body);
    free(r2.body);
}
END_TEST

static Suite *signatures_suite(void)
{
    Suite *s = suite_create("signatures");
    TCase *tc = tcase_create("signatures");

    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_attach_stores_record_referrer_and_blob);
    tcase_add_test(tc, test_attach_is_idempotent_and_refuses_a_second_signature_by_the_same_key);
    tcase_add_test(tc, test_attach_stores_an_untrusted_key_with_trusted_false);
    tcase_add_test(tc, test_attach_refuses_a_forged_signature);
    tcase_add_test(tc, test_attach_refuses_a_public_key_with_another_key_id);
    tcase_add_test(tc, test_attach_refuses_a_signature_replayed_from_another_release);
    tcase_add_test(tc, test_attach_refuses_an_edited_trusted_comment);
    tcase_add_test(tc, test_attach_refuses_extra_fields_that_verify_would_refuse);
    tcase_add_test(tc, test_attach_refuses_truncated_base64_and_wrong_algorithm_bytes);
    tcase_add_test(tc, test_attach_refuses_a_key_that_differs_from_the_keyring_key);
    tcase_add_test(tc, test_attach_refuses_unknown_versions_and_non_releases);
    tcase_add_test(tc, test_retired_keys_keep_earlier_signatures_compromised_keys_none);
    tcase_add_test(tc,
                   test_revocation_persists_across_reopen_with_the_config_still_listing_the_key);
    tcase_add_test(tc, test_runtime_trust_makes_an_earlier_untrusted_signature_count);
    tcase_add_test(tc, test_a_signature_by_a_key_whose_role_does_not_sign_releases_never_counts);
    tcase_add_test(tc,
                   test_an_attach_after_a_retirement_never_counts_even_when_the_clock_went_back);
    tcase_add_test(
        tc, test_a_key_carrying_the_signers_key_id_attached_first_does_not_lock_the_signer_out);
    tcase_add_test(tc,
                   test_records_keyed_by_key_id_alone_are_read_counted_and_kept_to_their_own_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed;
    SRunner *sr = srunner_create(signatures_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
