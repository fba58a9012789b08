/* check_cli_trust.c: the client's checks of release signatures
 * (include/mlreg/release_sig.h): the release trusted comment, the trusted
 * key set and keyring files, revocations, and the verdict on hostile
 * signatures (untrusted key, tampered manifest, edited comment, replay onto
 * another release, truncated base64, wrong algorithm bytes).
 */
#include "mlreg/common.h"
#include "mlreg/release_sig.h"
#include "mlreg/sign.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL   "team/clf"
#define VERSION "1.0.0"
#define DIGEST  "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST2 "sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define COMMENT                                                                                    \
    "mlreg release model=" MODEL " version=" VERSION " digest=" DIGEST " timestamp=1700000000"

static const char manifest[] = "{\"schemaVersion\":2,\"layers\":[]}";

static mlreg_seckey *sk;
static mlreg_pubkey pk;
static char id[MLREG_KEYID_HEXLEN + 1];

static void setup(void)
{
    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(&pk, sk);
    mlreg_keyid_format(id, &pk.id);
}

static void teardown(void)
{
    mlreg_seckey_free(sk);
    sk = NULL;
}

/* A signature of @p data with @p comment by the fixture's key (free()). */
static char *sign_with(const char *data, const char *comment)
{
    char *sig = NULL;
    ck_assert_int_eq(mlreg_sign(&sig, sk, data, strlen(data), comment, NULL), 0);
    return sig;
}

static mlreg_trustset *trust_fixture_key(mlreg_revocation rev, const char *revoked_at)
{
    mlreg_trustset *ts = NULL;
    ck_assert_int_eq(mlreg_trustset_new(&ts), 0);
    ck_assert_int_eq(mlreg_trustset_add(ts, &pk, "release-bot", rev, revoked_at), 0);
    return ts;
}

/* The verdict on @p sig, which the registry says @p signer made (NULL: it does not say). */
static mlreg_sigcheck check_sig_by(const mlreg_trustset *ts, const char *sig, const char *signer,
                                   const char *attached_at, const char *data)
{
    mlreg_sigcheck out;
    ck_assert_int_eq(mlreg_trustset_check(&out, ts, sig, strlen(sig), signer, attached_at, data,
                                          strlen(data), MODEL, VERSION, DIGEST),
                     0);
    return out;
}

static mlreg_sigcheck check_sig(const mlreg_trustset *ts, const char *sig, const char *attached_at,
                                const char *data)
{
    return check_sig_by(ts, sig, NULL, attached_at, data);
}

/* ---- trusted comment ------------------------------------------------------- */

START_TEST(test_release_comment_has_the_contract_format)
{
    char *c = NULL;
    ck_assert_int_eq(mlreg_release_comment_format(&c, MODEL, VERSION, DIGEST, 1700000000), 0);
    ck_assert_str_eq(c, COMMENT);
    free(c);
}
END_TEST

START_TEST(test_release_comment_refuses_values_with_spaces)
{
    char *c = NULL;
    ck_assert_int_eq(mlreg_release_comment_format(&c, "a b", VERSION, DIGEST, 1), MLREG_EINVALID);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(mlreg_release_comment_format(&c, MODEL, "", DIGEST, 1), MLREG_EINVALID);
}
END_TEST

START_TEST(test_release_comment_check_accepts_this_release_with_or_without_more_fields)
{
    ck_assert_int_eq(mlreg_release_comment_check(COMMENT, MODEL, VERSION, DIGEST), 0);
    ck_assert_int_eq(mlreg_release_comment_check("mlreg release model=" MODEL " version=" VERSION
                                                 " digest=" DIGEST,
                                                 MODEL, VERSION, DIGEST),
                     0);
    ck_assert_int_eq(
        mlreg_release_comment_check(COMMENT " host=ci-7 job=42", MODEL, VERSION, DIGEST), 0);
}
END_TEST

START_TEST(test_release_comment_check_names_the_field_that_differs)
{
    ck_assert_int_eq(mlreg_release_comment_check(COMMENT, MODEL, "1.0.1", DIGEST), MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "names version 1.0.0, not 1.0.1"));
    ck_assert_int_eq(mlreg_release_comment_check(COMMENT, "team/other", VERSION, DIGEST),
                     MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "names model team/clf, not team/other"));
    ck_assert_int_eq(mlreg_release_comment_check(COMMENT, MODEL, VERSION, DIGEST2),
                     MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "names digest"));
}
END_TEST

START_TEST(test_release_comment_check_refuses_prefixes_and_odd_spacing)
{
    /* A value that merely starts with the expected one is another release. */
    ck_assert_int_eq(mlreg_release_comment_check("mlreg release model=team/clf2 version=1.0.0 "
                                                 "digest=" DIGEST,
                                                 MODEL, VERSION, DIGEST),
                     MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_release_comment_check("mlreg release model=team/clf version=1.0.0x "
                                                 "digest=" DIGEST,
                                                 MODEL, VERSION, DIGEST),
                     MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_release_comment_check("mlreg release model=team/clf  version=1.0.0 "
                                                 "digest=" DIGEST,
                                                 MODEL, VERSION, DIGEST),
                     MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_release_comment_check(COMMENT " ", MODEL, VERSION, DIGEST),
                     MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_release_comment_check(COMMENT "  x=1", MODEL, VERSION, DIGEST),
                     MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_release_comment_check(COMMENT " novalue", MODEL, VERSION, DIGEST),
                     MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_release_comment_check("timestamp:1700000000\tfile:manifest.json", MODEL,
                                                 VERSION, DIGEST),
                     MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "not an mlreg release comment"));
    ck_assert_int_eq(mlreg_release_comment_check("mlreg release version=1.0.0 model=team/clf "
                                                 "digest=" DIGEST,
                                                 MODEL, VERSION, DIGEST),
                     MLREG_EMISMATCH);
}
END_TEST

START_TEST(test_release_comment_check_refuses_control_characters_and_never_echoes_them)
{
    /* U+009B (CSI) as UTF-8, a lone 8-bit CSI byte, DEL, ESC: all break the
     * text rule in the fields after the digest. */
    static const char *const extra[] = {" note=\xc2\x9b"
                                        "31m",
                                        " note=\x9b"
                                        "31m",
                                        " note=a\x7f", " note=\x1b[2J"};

    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        char comment[300];
        snprintf(comment, sizeof(comment), "%s%s", COMMENT, extra[i]);
        ck_assert_int_eq(mlreg_release_comment_check(comment, MODEL, VERSION, DIGEST),
                         MLREG_EMISMATCH);
    }
    /* A comment naming another release is quoted in the message, with
     * U+009B replaced. */
    ck_assert_int_eq(mlreg_release_comment_check("mlreg release model=team/\xc2\x9b"
                                                 "31m version=1.0.0 digest=" DIGEST,
                                                 MODEL, VERSION, DIGEST),
                     MLREG_EMISMATCH);
    ck_assert_ptr_null(strstr(mlreg_error_last(), "\xc2\x9b"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "team/?31m"));
    /* Other UTF-8 stays valid. */
    ck_assert_int_eq(
        mlreg_release_comment_check(COMMENT " host=mod\xc3\xa8le", MODEL, VERSION, DIGEST), 0);
}
END_TEST

/* ---- trust sets and keyring files ------------------------------------------- */

START_TEST(test_trustset_refuses_one_key_id_with_two_keys)
{
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_NONE, NULL);
    mlreg_pubkey other = pk;
    other.pk[0] ^= 1;
    ck_assert_int_eq(mlreg_trustset_add(ts, &other, "x", MLREG_REVOKE_NONE, NULL), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "two different public keys"));
    ck_assert_int_eq(mlreg_trustset_add(ts, &pk, "again", MLREG_REVOKE_NONE, NULL), 0);
    ck_assert_uint_eq(mlreg_trustset_count(ts), 1);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_trustset_keeps_the_stricter_revocation_of_a_key_given_twice)
{
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_NONE, NULL);
    char *sig = sign_with(manifest, COMMENT);
    mlreg_sigcheck r;

    ck_assert_int_eq(
        mlreg_trustset_add(ts, &pk, NULL, MLREG_REVOKE_COMPROMISED, "2020-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(mlreg_trustset_add(ts, &pk, NULL, MLREG_REVOKE_NONE, NULL), 0);
    r = check_sig(ts, sig, "2019-01-01T00:00:00Z", manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_REVOKED);
    ck_assert_ptr_nonnull(strstr(r.reason, "compromised"));
    free(sig);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_keyring_entry_in_the_api_shape_loads_with_revocations)
{
    char b64[MLREG_PUBKEY_B64LEN + 1];
    mlreg_trustset *ts = NULL;
    char *sig = sign_with(manifest, COMMENT);
    mlreg_sigcheck r;

    mlreg_pubkey_base64(b64, &pk);
    ck_assert_int_eq(mlreg_trustset_new(&ts), 0);
    ck_assert_int_eq(
        mlreg_trustset_add_entry(ts, b64, id, "bot", "retired", "2026-02-01T00:00:00Z"), 0);
    ck_assert_uint_eq(mlreg_trustset_count(ts), 1);
    r = check_sig(ts, sig, "2026-01-15T00:00:00Z", manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_VALID);
    ck_assert_str_eq(r.name, "bot");
    r = check_sig(ts, sig, "2026-02-01T00:00:00.5Z", manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_REVOKED);
    ck_assert_ptr_nonnull(strstr(r.reason, "after the retirement"));
    r = check_sig(ts, sig, NULL, manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_REVOKED);
    free(sig);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_keyring_entry_with_pub_file_text_loads)
{
    char *pub = NULL;
    mlreg_trustset *ts = NULL;

    ck_assert_int_eq(mlreg_pubkey_format(&pub, &pk, NULL), 0);
    ck_assert_int_eq(mlreg_trustset_new(&ts), 0);
    ck_assert_int_eq(mlreg_trustset_add_entry(ts, pub, NULL, "hand", NULL, NULL), 0);
    ck_assert_uint_eq(mlreg_trustset_count(ts), 1);
    mlreg_trustset_free(ts);
    free(pub);
}
END_TEST

START_TEST(test_keyring_entries_that_are_refused)
{
    char b64[MLREG_PUBKEY_B64LEN + 1];
    mlreg_trustset *ts = NULL;
    const char *at = "2026-01-01T00:00:00Z";

    mlreg_pubkey_base64(b64, &pk);
    ck_assert_int_eq(mlreg_trustset_new(&ts), 0);
    ck_assert_int_eq(mlreg_trustset_add_entry(ts, NULL, NULL, "x", NULL, NULL), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_trustset_add_entry(ts, "AAAA", NULL, "x", NULL, NULL), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_trustset_add_entry(ts, b64, NULL, "x", "lost", at), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "revocation must be"));
    ck_assert_int_eq(mlreg_trustset_add_entry(ts, b64, NULL, "x", "retired", NULL), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_trustset_add_entry(ts, b64, NULL, "x", "compromised", "last week"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_trustset_add_entry(ts, b64, NULL, "x", NULL, at), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "revoked_at without revocation"));
    ck_assert_int_eq(mlreg_trustset_add_entry(ts, b64, "0000000000000000", "x", NULL, NULL),
                     MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "key_id does not match"));
    ck_assert_int_eq(mlreg_trustset_add_entry(ts, b64, "nothex", "x", NULL, NULL), MLREG_EINVALID);
    ck_assert_uint_eq(mlreg_trustset_count(ts), 0);
    mlreg_trustset_free(ts);
}
END_TEST

/* ---- verdicts ------------------------------------------------------------------ */

START_TEST(test_signature_by_a_trusted_key_over_this_release_is_valid)
{
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_NONE, NULL);
    char *sig = sign_with(manifest, COMMENT);
    mlreg_sigcheck r = check_sig(ts, sig, "2026-01-01T00:00:00Z", manifest);

    ck_assert_int_eq(r.status, MLREG_SIGCHECK_VALID);
    ck_assert_str_eq(r.key_id, id);
    ck_assert_str_eq(r.name, "release-bot");
    free(sig);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_signature_by_another_key_is_untrusted)
{
    mlreg_trustset *ts = NULL;
    mlreg_seckey *other = NULL;
    mlreg_pubkey opk;
    char *sig = sign_with(manifest, COMMENT);
    mlreg_sigcheck r;

    ck_assert_int_eq(mlreg_seckey_generate(&other), 0);
    mlreg_seckey_pubkey(&opk, other);
    ck_assert_int_eq(mlreg_trustset_new(&ts), 0);
    ck_assert_int_eq(mlreg_trustset_add(ts, &opk, "other", MLREG_REVOKE_NONE, NULL), 0);
    r = check_sig(ts, sig, NULL, manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_UNTRUSTED);
    ck_assert_ptr_null(r.name);
    ck_assert_ptr_nonnull(strstr(r.reason, "not a trusted key"));
    free(sig);
    mlreg_seckey_free(other);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_signature_over_a_manifest_changed_by_one_byte_is_invalid)
{
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_NONE, NULL);
    char *sig = sign_with(manifest, COMMENT), changed[sizeof(manifest)];
    mlreg_sigcheck r;

    memcpy(changed, manifest, sizeof(manifest));
    changed[5] ^= 0x01;
    r = check_sig(ts, sig, NULL, changed);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_INVALID);
    ck_assert_ptr_nonnull(strstr(r.reason, "does not match the manifest"));
    ck_assert_ptr_nonnull(strstr(r.reason, id));
    free(sig);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_signature_with_an_edited_trusted_comment_is_invalid)
{
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_NONE, NULL);
    char *sig = sign_with(manifest, COMMENT);
    char *p = strstr(sig, "version=1.0.0");
    mlreg_sigcheck r;

    ck_assert_ptr_nonnull(p);
    p[strlen("version=1.0.")] = '1'; /* the comment now names 1.0.1 */
    r = check_sig(ts, sig, NULL, manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_INVALID);
    ck_assert_ptr_nonnull(strstr(r.reason, "trusted comment was altered"));
    free(sig);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_signature_of_another_release_replayed_here_is_invalid)
{
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_NONE, NULL);
    /* A genuine signature of these bytes, but made for version 0.9.0. */
    char *sig = sign_with(manifest, "mlreg release model=" MODEL " version=0.9.0 digest=" DIGEST
                                    " timestamp=1");
    mlreg_sigcheck r = check_sig(ts, sig, NULL, manifest);

    ck_assert_int_eq(r.status, MLREG_SIGCHECK_INVALID);
    ck_assert_ptr_nonnull(strstr(r.reason, "names version 0.9.0, not 1.0.0"));
    free(sig);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_truncated_and_wrong_algorithm_signatures_are_invalid)
{
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_NONE, NULL);
    char *sig = sign_with(manifest, COMMENT), *line2, *nl, b64[200];
    unsigned char raw[74];
    size_t rawlen;
    mlreg_sigcheck r;

    /* Truncated base64 in the signature line. */
    char *cut = strdup(sig);
    line2 = strchr(cut, '\n') + 1;
    nl = strchr(line2, '\n');
    memmove(nl - 4, nl, strlen(nl) + 1);
    r = check_sig(ts, cut, NULL, manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_INVALID);
    ck_assert_ptr_nonnull(strstr(r.reason, "malformed signature"));
    ck_assert_str_eq(r.key_id, "");
    free(cut);

    /* "Ex" instead of "ED": an unknown algorithm. */
    line2 = strchr(sig, '\n') + 1;
    nl = strchr(line2, '\n');
    ck_assert_int_eq(sodium_base642bin(raw, sizeof(raw), line2, (size_t)(nl - line2), NULL, &rawlen,
                                       NULL, sodium_base64_VARIANT_ORIGINAL),
                     0);
    ck_assert_uint_eq(rawlen, 74);
    raw[1] = 'x';
    sodium_bin2base64(b64, sizeof(b64), raw, rawlen, sodium_base64_VARIANT_ORIGINAL);
    ck_assert_uint_eq(strlen(b64), (size_t)(nl - line2));
    memcpy(line2, b64, strlen(b64));
    r = check_sig(ts, sig, NULL, manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_INVALID);
    ck_assert_ptr_nonnull(strstr(r.reason, "malformed signature"));
    free(sig);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_compromised_key_never_counts_and_retired_counts_only_before)
{
    char *sig = sign_with(manifest, COMMENT);
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_COMPROMISED, "2026-06-01T00:00:00Z");
    mlreg_sigcheck r = check_sig(ts, sig, "2026-01-01T00:00:00Z", manifest);

    ck_assert_int_eq(r.status, MLREG_SIGCHECK_REVOKED);
    ck_assert_ptr_nonnull(strstr(r.reason, "compromised"));
    mlreg_trustset_free(ts);

    ts = trust_fixture_key(MLREG_REVOKE_RETIRED, "2026-06-01T00:00:00Z");
    r = check_sig(ts, sig, "2026-05-31T23:59:59.999Z", manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_VALID);
    r = check_sig(ts, sig, "2026-06-01T00:00:00Z", manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_REVOKED);
    r = check_sig(ts, sig, "yesterday", manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_REVOKED);
    /* A retired key's signature must still be over this release. */
    r = check_sig(ts, sig, "2026-01-01T00:00:00Z", "{}");
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_INVALID);
    mlreg_trustset_free(ts);
    free(sig);
}
END_TEST

/* A key pair of its own whose key id is the fixture key's: the key id is
 * 8 bytes in the files, which anyone can set. *sig_out is @p data signed with
 * @p comment by it (free()), *pub_out its public key's base64 line. */
static void same_id_signer(char **sig_out, char pub_out[MLREG_PUBKEY_B64LEN + 1], const char *data,
                           const char *comment)
{
    mlreg_seckey *other = NULL;
    mlreg_pubkey opk;
    char *sig = NULL, *line2, *nl, b64[200];
    unsigned char raw[74];
    size_t rawlen;

    ck_assert_int_eq(mlreg_seckey_generate(&other), 0);
    mlreg_seckey_pubkey(&opk, other);
    ck_assert_int_eq(mlreg_sign(&sig, other, data, strlen(data), comment, NULL), 0);
    mlreg_seckey_free(other);
    /* the signature line carries the key id outside of what is signed */
    line2 = strchr(sig, '\n') + 1;
    nl = strchr(line2, '\n');
    ck_assert_int_eq(sodium_base642bin(raw, sizeof(raw), line2, (size_t)(nl - line2), NULL, &rawlen,
                                       NULL, sodium_base64_VARIANT_ORIGINAL),
                     0);
    memcpy(raw + 2, pk.id.raw, MLREG_KEYID_BYTES);
    sodium_bin2base64(b64, sizeof(b64), raw, rawlen, sodium_base64_VARIANT_ORIGINAL);
    memcpy(line2, b64, strlen(b64));
    opk.id = pk.id;
    mlreg_pubkey_base64(pub_out, &opk);
    *sig_out = sig;
}

START_TEST(test_signature_by_another_key_with_the_trusted_key_id_is_untrusted_not_invalid)
{
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_NONE, NULL);
    char *forged = NULL, *genuine = sign_with(manifest, COMMENT),
         forged_pub[MLREG_PUBKEY_B64LEN + 1];
    char genuine_pub[MLREG_PUBKEY_B64LEN + 1];
    mlreg_sigcheck r;

    same_id_signer(&forged, forged_pub, manifest, COMMENT);
    mlreg_pubkey_base64(genuine_pub, &pk);
    r = check_sig_by(ts, forged, forged_pub, "2026-01-01T00:00:00Z", manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_UNTRUSTED);
    ck_assert_str_eq(r.key_id, id);
    ck_assert_ptr_null(r.name);
    ck_assert_ptr_nonnull(strstr(r.reason, "another key"));
    /* the genuine signature beside it is valid */
    r = check_sig_by(ts, genuine, genuine_pub, "2026-01-01T00:00:00Z", manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_VALID);
    /* also when the trusted key is compromised, the other key's signature is not "revoked" */
    mlreg_trustset_free(ts);
    ts = trust_fixture_key(MLREG_REVOKE_COMPROMISED, "2026-06-01T00:00:00Z");
    r = check_sig_by(ts, forged, forged_pub, "2026-01-01T00:00:00Z", manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_UNTRUSTED);
    free(forged);
    free(genuine);
    mlreg_trustset_free(ts);
}
END_TEST

START_TEST(test_the_registry_naming_another_signer_cannot_hide_a_tampered_signature)
{
    mlreg_trustset *ts = trust_fixture_key(MLREG_REVOKE_NONE, NULL);
    char *genuine = sign_with(manifest, COMMENT), *forged = NULL;
    char forged_pub[MLREG_PUBKEY_B64LEN + 1], changed[sizeof(manifest)];
    mlreg_sigcheck r;

    same_id_signer(&forged, forged_pub, "other bytes", COMMENT);
    memcpy(changed, manifest, sizeof(manifest));
    changed[5] ^= 0x01;
    /* the trusted key's signature over other bytes, said to be by another key */
    r = check_sig_by(ts, genuine, forged_pub, NULL, changed);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_INVALID);
    ck_assert_ptr_nonnull(strstr(r.reason, "does not match the manifest"));
    /* a valid signature by the trusted key stays valid whoever the registry names */
    r = check_sig_by(ts, genuine, forged_pub, NULL, manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_VALID);
    r = check_sig_by(ts, genuine, "not a key", NULL, manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_VALID);
    /* the other key's signature over other bytes is no signature of it here */
    r = check_sig_by(ts, forged, forged_pub, NULL, manifest);
    ck_assert_int_eq(r.status, MLREG_SIGCHECK_INVALID);
    free(forged);
    free(genuine);
    mlreg_trustset_free(ts);
}
END_TEST

static Suite *trust_suite(void)
{
    Suite *s = suite_create("cli_trust");
    TCase *tc = tcase_create("release_signatures");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_release_comment_has_the_contract_format);
    tcase_add_test(tc, test_release_comment_refuses_values_with_spaces);
    tcase_add_test(tc, test_release_comment_check_accepts_this_release_with_or_without_more_fields);
    tcase_add_test(tc, test_release_comment_check_names_the_field_that_differs);
    tcase_add_test(tc, test_release_comment_check_refuses_prefixes_and_odd_spacing);
    tcase_add_test(tc, test_release_comment_check_refuses_control_characters_and_never_echoes_them);
    tcase_add_test(tc, test_trustset_refuses_one_key_id_with_two_keys);
    tcase_add_test(tc, test_trustset_keeps_the_stricter_revocation_of_a_key_given_twice);
    tcase_add_test(tc, test_keyring_entry_in_the_api_shape_loads_with_revocations);
    tcase_add_test(tc, test_keyring_entry_with_pub_file_text_loads);
    tcase_add_test(tc, test_keyring_entries_that_are_refused);
    tcase_add_test(tc, test_signature_by_a_trusted_key_over_this_release_is_valid);
    tcase_add_test(tc, test_signature_by_another_key_is_untrusted);
    tcase_add_test(tc, test_signature_over_a_manifest_changed_by_one_byte_is_invalid);
    tcase_add_test(tc, test_signature_with_an_edited_trusted_comment_is_invalid);
    tcase_add_test(tc, test_signature_of_another_release_replayed_here_is_invalid);
    tcase_add_test(tc, test_truncated_and_wrong_algorithm_signatures_are_invalid);
    tcase_add_test(tc, test_compromised_key_never_counts_and_retired_counts_only_before);
    tcase_add_test(tc,
                   test_signature_by_another_key_with_the_trusted_key_id_is_untrusted_not_invalid);
    tcase_add_test(tc, test_the_registry_naming_another_signer_cannot_hide_a_tampered_signature);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trust_suite());
    int failed;

    if (sodium_init() < 0) return EXIT_FAILURE;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
