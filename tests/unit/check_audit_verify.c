/* check_audit_verify.c: the offline checks of the audit log and of audit
 * bundles (registry/audit_verify.c, audit_bundle.c, mlreg/audit_verify.h),
 * over an in-memory log built with merkle.h and canonical JSON, no server:
 * an intact log verifies; an edited, deleted, reordered or truncated entry
 * is found at the right position by bisection with consistency proofs;
 * the log may grow while it is read; a remembered checkpoint catches a
 * shrunk or rewritten log and a changed key; a checkpoint signed by another
 * key fails; and a bundle directory checks offline, naming the file that
 * was tampered with.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/audit_verify.h"
#include "mlreg/canonical_json.h"
#include "mlreg/checkpoint.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/dsse.h"
#include "mlreg/merkle.h"
#include "mlreg/sign.h"

#include "helpers.h"

#define N     20
#define MODEL "team/clf"

static mlreg_seckey *sk, *other_sk;
static mlreg_pubkey pk, other_pk;
static char origin[64], other_origin[64];

/* The log as it was signed. */
static mlreg_audit_entries signed_log;
static mlreg_merkle_hash signed_leaves[N + 8];
static mlreg_merkle_leaves signed_tree;
static mlreg_checkpoint cp;
static char *cp_text;
static int proof_calls;

/* The manifest of the bundle tests, made by setup() (one layer,
 * files/model.bin holding weights) or by use_files() (any titles), and its
 * digest. A file whose data is NULL is in the manifest but not written. */
static const char weights[] = "weights bytes";
#define FILES_MAX 8
static const char *ftitle[FILES_MAX] = {"model.bin"};
static const char *fdata[FILES_MAX] = {weights};
static size_t nfiles = 1;
static char manifest[4096];
static char manifest_digest[MLREG_DIGEST_STRLEN + 1];
static char other_digest[] =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/* Entry @p seq after the entry @p prev (NULL for 0), canonical, malloc'd. */
static char *make_entry(uint64_t seq, const char *prev, const char *action, const char *digest,
                        const char *actor)
{
    char hash[MLREG_DIGEST_STRLEN + 1], time[64], *text = NULL;
    mlreg_digest d;
    json_t *j;

    snprintf(time, sizeof(time), "2026-01-02T03:04:%02d.123456789Z", (int)(seq % 60));
    if (prev) {
        ck_assert_int_eq(mlreg_digest_buffer(&d, prev, strlen(prev)), 0);
        mlreg_digest_format(hash, &d);
    }
    j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s}}", "seq", (json_int_t)seq,
                  "time", time, "actor", actor, "action", action, "result", "ok", "prev",
                  prev ? json_string(hash) : json_null(), "subject", "model", MODEL, "version",
                  "1.0", "digest", digest);
    ck_assert_ptr_nonnull(j);
    if (!strcmp(action, "promote") || !strcmp(action, "rollback"))
        json_object_set_new(json_object_get(j, "subject"), "stage", json_string("prod"));
    ck_assert_int_eq(mlreg_canonical_json(&text, NULL, j), 0);
    json_decref(j);
    return text;
}

/* The bundle tests' evaluation (use_evaluation()): when eval_env is set,
 * entry EVAL_SEQ is the evaluation.attest entry about the manifest that
 * names eval_entry_pk and the envelope eval_env, and the bundle holds
 * evaluations/<EVAL_SEQ>.dsse.json with eval_file (eval_env unless a test
 * puts other bytes there; NULL: left out). */
#define EVAL_SEQ 7
static const char *eval_env;
static const char *eval_file;
static const mlreg_pubkey *eval_entry_pk;

static char *make_eval_entry(uint64_t seq, const char *prev)
{
    char hash[MLREG_DIGEST_STRLEN + 1], envd[MLREG_DIGEST_STRLEN + 1], id[MLREG_KEYID_HEXLEN + 1],
        b64pk[MLREG_PUBKEY_B64LEN + 1], *text = NULL;
    mlreg_digest d;
    json_t *j;

    ck_assert_int_eq(mlreg_digest_buffer(&d, prev, strlen(prev)), 0);
    mlreg_digest_format(hash, &d);
    ck_assert_int_eq(mlreg_digest_buffer(&d, eval_env, strlen(eval_env)), 0);
    mlreg_digest_format(envd, &d);
    mlreg_keyid_format(id, &eval_entry_pk->id);
    mlreg_pubkey_base64(b64pk, eval_entry_pk);
    j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:b, "
                  "s:s, s:s}}",
                  "seq", (json_int_t)seq, "time", "2026-01-02T03:04:07.123456789Z", "actor", "ci",
                  "action", "evaluation.attest", "result", "ok", "prev", hash, "subject", "model",
                  MODEL, "version", "1.0", "digest", manifest_digest, "key_id", id, "details",
                  "public_key", b64pk, "envelope", envd, "trusted_at_attach", 1, "role",
                  "evaluator", "key_name", "nightly");
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(mlreg_canonical_json(&text, NULL, j), 0);
    json_decref(j);
    return text;
}

/* Which entries the bundle tests treat as being about the manifest. */
static const char *action_of(uint64_t i)
{
    return i == 5 ? "promote" : i == 9 ? "rollback" : i == 2 ? "push" : "blob.link";
}

static void build_log(mlreg_audit_entries *e, uint64_t n)
{
    char *prev = NULL;

    mlreg_audit_entries_init(e);
    for (uint64_t i = 0; i < n; i++) {
        int about = i == 2 || i == 5 || i == 9;
        char *t = eval_env && i == EVAL_SEQ
                      ? make_eval_entry(i, prev)
                      : make_entry(i, prev, action_of(i), about ? manifest_digest : other_digest,
                                   "local");
        ck_assert_int_eq(mlreg_audit_entries_add(e, t, strlen(t)), 0);
        free(t);
        prev = e->text[i];
    }
}

static void leaves_of(mlreg_merkle_hash *out, const mlreg_audit_entries *e, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        ck_assert_int_eq(mlreg_merkle_leaf_hash(&out[i], e->text[i], e->len[i]), 0);
}

/* The honest proof source: consistency proofs of the signed tree. */
static int signed_proofs(mlreg_merkle_hash *proof, size_t *len_out, void *ctx, uint64_t from,
                         uint64_t to)
{
    proof_calls++;
    return mlreg_merkle_prove_consistency(proof, len_out, from, to, mlreg_merkle_leaves_subtree,
                                          ctx);
}

/* manifest and manifest_digest for the files ftitle/fdata (a NULL data
 * stands for the file's bytes "gone"). */
static void make_manifest(void)
{
    json_t *m, *layers;
    char digest[MLREG_DIGEST_STRLEN + 1], *text;
    mlreg_digest d;

    m = json_pack("{s:s, s:[], s:i}", "artifactType", "x", "layers", "schemaVersion", 2);
    ck_assert_ptr_nonnull(m);
    layers = json_object_get(m, "layers");
    for (size_t i = 0; i < nfiles; i++) {
        const char *data = fdata[i] ? fdata[i] : "gone";
        ck_assert_int_eq(mlreg_digest_buffer(&d, data, strlen(data)), 0);
        mlreg_digest_format(digest, &d);
        json_array_append_new(layers,
                              json_pack("{s:{s:s}, s:s, s:I}", "annotations",
                                        "org.opencontainers.image.title", ftitle[i], "digest",
                                        digest, "size", (json_int_t)strlen(data)));
    }
    ck_assert_ptr_nonnull(text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS));
    ck_assert_uint_lt(strlen(text), sizeof(manifest));
    snprintf(manifest, sizeof(manifest), "%s", text);
    free(text);
    json_decref(m);
    ck_assert_int_eq(mlreg_digest_buffer(&d, manifest, strlen(manifest)), 0);
    mlreg_digest_format(manifest_digest, &d);
}

static void setup(void)
{
    char id[MLREG_KEYID_HEXLEN + 1];

    ck_assert_int_ge(sodium_init(), 0);
    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    ck_assert_int_eq(mlreg_seckey_generate(&other_sk), 0);
    mlreg_seckey_pubkey(&pk, sk);
    mlreg_seckey_pubkey(&other_pk, other_sk);
    mlreg_keyid_format(id, &pk.id);
    snprintf(origin, sizeof(origin), "mlreg-audit/%s", id);
    mlreg_keyid_format(id, &other_pk.id);
    snprintf(other_origin, sizeof(other_origin), "mlreg-audit/%s", id);
    ftitle[0] = "model.bin";
    fdata[0] = weights;
    nfiles = 1;
    make_manifest();
    build_log(&signed_log, N);
    leaves_of(signed_leaves, &signed_log, N);
    signed_tree.leaves = signed_leaves;
    signed_tree.count = N;
    cp.size = N;
    ck_assert_int_eq(mlreg_merkle_root(&cp.root, signed_leaves, N), 0);
    ck_assert_int_eq(mlreg_checkpoint_sign(&cp_text, origin, N, &cp.root, sk), 0);
    proof_calls = 0;
}

static void teardown(void)
{
    mlreg_audit_entries_clear(&signed_log);
    free(cp_text);
    cp_text = NULL;
    mlreg_seckey_free(sk);
    mlreg_seckey_free(other_sk);
    sk = other_sk = NULL;
}

/* A copy of the signed log that a test may tamper with. */
static void copy_log(mlreg_audit_entries *out, const mlreg_audit_entries *in, uint64_t n)
{
    mlreg_audit_entries_init(out);
    for (uint64_t i = 0; i < n; i++)
        ck_assert_int_eq(mlreg_audit_entries_add(out, in->text[i], in->len[i]), 0);
}

static void replace(mlreg_audit_entries *e, uint64_t i, const char *text)
{
    free(e->text[i]);
    e->text[i] = strdup(text);
    e->len[i] = strlen(text);
}

/* Runs the log check and returns the message (static) or NULL when it passed. */
static const char *check_log(const mlreg_audit_entries *e)
{
    static char msg[1024];
    int rc = mlreg_audit_verify_log(e, &cp, signed_proofs, &signed_tree);
    if (rc == 0) return NULL;
    ck_assert_int_eq(rc, MLREG_EMISMATCH);
    snprintf(msg, sizeof(msg), "%s", mlreg_error_last());
    return msg;
}

static void assert_blames(const char *msg, uint64_t seq)
{
    char want[80];
    ck_assert_ptr_nonnull(msg);
    snprintf(want, sizeof(want), "audit entry %llu does not match the signed log",
             (unsigned long long)seq);
    if (!strstr(msg, want)) ck_abort_msg("want '%s' in '%s'", want, msg);
}

/* ---- the whole log ------------------------------------------------------------- */

START_TEST(test_audit_intact_log_verifies_without_asking_for_proofs)
{
    ck_assert_int_eq(mlreg_audit_verify_checkpoint(&cp, NULL, cp_text, strlen(cp_text), &pk), 0);
    ck_assert_ptr_null(check_log(&signed_log));
    ck_assert_int_eq(proof_calls, 0);
}
END_TEST

START_TEST(test_audit_entry_edited_in_place_is_found_at_its_position)
{
    mlreg_audit_entries e;
    uint64_t at[] = {0, 1, 7, 13, N - 1};

    for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
        char *t;
        copy_log(&e, &signed_log, N);
        /* Same seq and prev, another actor: canonical, only the bytes differ. */
        t = make_entry(at[k], at[k] ? e.text[at[k] - 1] : NULL, action_of(at[k]), other_digest,
                       "mallory");
        replace(&e, at[k], t);
        free(t);
        assert_blames(check_log(&e), at[k]);
        mlreg_audit_entries_clear(&e);
    }
    ck_assert_int_gt(proof_calls, 0);
}
END_TEST

START_TEST(test_audit_non_canonical_edit_names_the_reason)
{
    mlreg_audit_entries e;
    char *t;
    const char *msg;

    copy_log(&e, &signed_log, N);
    t = malloc(e.len[4] + 2);
    t[0] = ' ';
    memcpy(t + 1, e.text[4], e.len[4] + 1);
    replace(&e, 4, t);
    free(t);
    msg = check_log(&e);
    assert_blames(msg, 4);
    ck_assert_ptr_nonnull(strstr(msg, "not canonical"));
    mlreg_audit_entries_clear(&e);
}
END_TEST

START_TEST(test_audit_deleted_entry_is_found_where_it_is_missing)
{
    mlreg_audit_entries e;

    mlreg_audit_entries_init(&e);
    for (uint64_t i = 0; i < N; i++)
        if (i != 5)
            ck_assert_int_eq(mlreg_audit_entries_add(&e, signed_log.text[i], signed_log.len[i]), 0);
    assert_blames(check_log(&e), 5);
    mlreg_audit_entries_clear(&e);
}
END_TEST

START_TEST(test_audit_reordered_entries_are_found_at_the_first_swapped_one)
{
    mlreg_audit_entries e;
    char *t;
    size_t l;

    copy_log(&e, &signed_log, N);
    t = e.text[3];
    e.text[3] = e.text[4];
    e.text[4] = t;
    l = e.len[3];
    e.len[3] = e.len[4];
    e.len[4] = l;
    assert_blames(check_log(&e), 3);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "seq is 4, not 3"));
    mlreg_audit_entries_clear(&e);
}
END_TEST

START_TEST(test_audit_truncated_log_names_the_first_missing_entry)
{
    mlreg_audit_entries e;
    const char *msg;

    copy_log(&e, &signed_log, 12);
    msg = check_log(&e);
    assert_blames(msg, 12);
    ck_assert_ptr_nonnull(strstr(msg, "missing"));
    mlreg_audit_entries_clear(&e);
}
END_TEST

START_TEST(test_audit_truncated_log_with_an_earlier_edit_names_the_edit)
{
    mlreg_audit_entries e;
    char *t;

    copy_log(&e, &signed_log, 12);
    t = make_entry(6, e.text[5], "push", other_digest, "mallory");
    replace(&e, 6, t);
    free(t);
    assert_blames(check_log(&e), 6);
    mlreg_audit_entries_clear(&e);
}
END_TEST

START_TEST(test_audit_entries_past_the_checkpoint_are_ignored)
{
    mlreg_audit_entries e;
    char *t;

    copy_log(&e, &signed_log, N);
    /* The log grew while it was read: entries N.. are not signed yet. */
    t = make_entry(N, e.text[N - 1], "push", other_digest, "local");
    ck_assert_int_eq(mlreg_audit_entries_add(&e, t, strlen(t)), 0);
    free(t);
    ck_assert_int_eq(mlreg_audit_entries_add(&e, "garbage", 7), 0);
    ck_assert_ptr_null(check_log(&e));
    mlreg_audit_entries_clear(&e);
}
END_TEST

START_TEST(test_audit_signed_but_malformed_entry_is_refused)
{
    mlreg_audit_entries e;
    mlreg_merkle_hash leaves[N];
    const char *msg;

    /* The log signed what it holds, but entry 8 breaks the prev chain. */
    copy_log(&e, &signed_log, N);
    replace(&e, 8, e.text[7]);
    leaves_of(leaves, &e, N);
    ck_assert_int_eq(mlreg_merkle_root(&cp.root, leaves, N), 0);
    msg = check_log(&e);
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_nonnull(strstr(msg, "audit entry 8"));
    mlreg_audit_entries_clear(&e);
}
END_TEST

START_TEST(test_audit_bisect_finds_every_position)
{
    mlreg_merkle_hash leaves[N];
    uint64_t m;

    for (uint64_t bad = 0; bad < N; bad++) {
        memcpy(leaves, signed_leaves, sizeof(leaves));
        leaves[bad].raw[0] ^= 1;
        ck_assert_int_eq(mlreg_audit_verify_bisect(&m, leaves, N, &cp, signed_proofs, &signed_tree),
                         0);
        ck_assert_uint_eq(m, bad);
    }
    ck_assert_int_eq(
        mlreg_audit_verify_bisect(&m, signed_leaves, N, &cp, signed_proofs, &signed_tree), 0);
    ck_assert_uint_eq(m, N);
}
END_TEST

/* ---- single entries ------------------------------------------------------------- */

START_TEST(test_audit_entry_check_reports_seq_and_prev)
{
    const char *e0 = signed_log.text[0], *e1 = signed_log.text[1];

    ck_assert_int_eq(mlreg_audit_verify_entry(e0, strlen(e0), 0, NULL, 0), 0);
    ck_assert_int_eq(mlreg_audit_verify_entry(e1, strlen(e1), 1, e0, strlen(e0)), 0);
    ck_assert_int_eq(mlreg_audit_verify_entry(e1, strlen(e1), 2, e0, strlen(e0)), MLREG_EMISMATCH);
    ck_assert_str_eq(mlreg_error_last(), "seq is 1, not 2");
    ck_assert_int_eq(mlreg_audit_verify_entry(e1, strlen(e1), 1, e1, strlen(e1)), MLREG_EMISMATCH);
    ck_assert_str_eq(mlreg_error_last(), "prev is not the hash of entry 0");
    ck_assert_int_eq(mlreg_audit_verify_entry("{\"seq\":0,\"prev\":null}", 21, 0, NULL, 0),
                     MLREG_EMISMATCH);
    ck_assert_str_eq(mlreg_error_last(), "not canonical JSON");
    ck_assert_int_eq(mlreg_audit_verify_entry("{\"prev\":null,\"seq\":0.5}", 23, 0, NULL, 0),
                     MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_audit_verify_entry("[1]", 3, 0, NULL, 0), MLREG_EMISMATCH);
    ck_assert_int_eq(mlreg_audit_verify_entry("{", 1, 0, NULL, 0), MLREG_EMISMATCH);
}
END_TEST

/* ---- checkpoints ---------------------------------------------------------------- */

START_TEST(test_audit_checkpoint_by_another_key_fails)
{
    char *note = NULL;
    mlreg_checkpoint got;

    ck_assert_int_eq(mlreg_audit_verify_checkpoint(&got, NULL, cp_text, strlen(cp_text), &other_pk),
                     MLREG_EMISMATCH);
    /* Another key signing under our origin's name. */
    ck_assert_int_eq(mlreg_checkpoint_sign(&note, origin, N, &cp.root, other_sk), 0);
    ck_assert_int_eq(mlreg_audit_verify_checkpoint(&got, NULL, note, strlen(note), &pk),
                     MLREG_EMISMATCH);
    free(note);
}
END_TEST

START_TEST(test_audit_checkpoint_with_an_altered_size_fails_its_signature)
{
    char *note = strdup(cp_text), *nl = strchr(note, '\n');
    mlreg_checkpoint got;

    nl[1] = '3'; /* "20" -> "30" */
    ck_assert_int_eq(mlreg_audit_verify_checkpoint(&got, NULL, note, strlen(note), &pk),
                     MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "signature"));
    free(note);
    ck_assert_int_eq(mlreg_audit_verify_checkpoint(&got, NULL, "", 0, &pk), MLREG_EMISMATCH);
}
END_TEST

/* ---- remembered checkpoints ------------------------------------------------------- */

static char *sign_prefix(uint64_t size, const mlreg_merkle_hash *leaves, mlreg_seckey *key,
                         const char *name)
{
    mlreg_merkle_hash root;
    char *note = NULL;
    ck_assert_int_eq(mlreg_merkle_root(&root, leaves, size), 0);
    ck_assert_int_eq(mlreg_checkpoint_sign(&note, name, size, &root, key), 0);
    return note;
}

START_TEST(test_audit_remembered_checkpoint_of_a_prefix_is_consistent)
{
    mlreg_checkpoint old;
    uint64_t sizes[] = {0, 1, 7, 12, N};

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        char *note = sign_prefix(sizes[k], signed_leaves, sk, origin);
        ck_assert_int_eq(mlreg_audit_verify_remembered(&old, note, strlen(note), origin, &pk, &cp,
                                                       signed_proofs, &signed_tree),
                         0);
        ck_assert_uint_eq(old.size, sizes[k]);
        free(note);
    }
}
END_TEST

START_TEST(test_audit_remembered_larger_checkpoint_says_the_log_shrank)
{
    mlreg_audit_entries longer;
    mlreg_merkle_hash leaves[N + 8];
    char *note;

    build_log(&longer, N + 8);
    leaves_of(leaves, &longer, N + 8);
    note = sign_prefix(N + 8, leaves, sk, origin);
    ck_assert_int_eq(mlreg_audit_verify_remembered(NULL, note, strlen(note), origin, &pk, &cp,
                                                   signed_proofs, &signed_tree),
                     MLREG_EMISMATCH);
    ck_assert_str_eq(mlreg_error_last(), "log shrank from 28 to 20 entries: entry 20 is gone");
    free(note);
    mlreg_audit_entries_clear(&longer);
}
END_TEST

START_TEST(test_audit_remembered_checkpoint_of_another_history_says_rewritten)
{
    mlreg_merkle_hash leaves[N];
    char *note;

    memcpy(leaves, signed_leaves, sizeof(leaves));
    leaves[3].raw[5] ^= 0x40;
    note = sign_prefix(10, leaves, sk, origin);
    ck_assert_int_eq(mlreg_audit_verify_remembered(NULL, note, strlen(note), origin, &pk, &cp,
                                                   signed_proofs, &signed_tree),
                     MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(
        strstr(mlreg_error_last(), "the log was rewritten: the first 10 entries"));
    free(note);
    /* Same size, another root. */
    note = sign_prefix(N, leaves, sk, origin);
    ck_assert_int_eq(mlreg_audit_verify_remembered(NULL, note, strlen(note), origin, &pk, &cp,
                                                   signed_proofs, &signed_tree),
                     MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "rewritten"));
    free(note);
}
END_TEST

START_TEST(test_audit_remembered_checkpoint_by_another_key_says_the_key_changed)
{
    char *note = sign_prefix(10, signed_leaves, other_sk, other_origin);

    ck_assert_int_eq(mlreg_audit_verify_remembered(NULL, note, strlen(note), origin, &pk, &cp,
                                                   signed_proofs, &signed_tree),
                     MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "remembered checkpoint does not verify with "
                                                     "this log key: the log key changed"));
    free(note);
}
END_TEST

START_TEST(test_audit_remembered_larger_checkpoint_by_another_key_still_names_the_first_gone_entry)
{
    /* The log was cut short and the server re-keyed: the remembered note
     * no longer verifies, but its size is the user's own record. */
    mlreg_audit_entries longer;
    mlreg_merkle_hash leaves[N + 3];
    char *note;

    build_log(&longer, N + 3);
    leaves_of(leaves, &longer, N + 3);
    note = sign_prefix(N + 3, leaves, other_sk, other_origin);
    ck_assert_int_eq(mlreg_audit_verify_remembered(NULL, note, strlen(note), origin, &pk, &cp,
                                                   signed_proofs, &signed_tree),
                     MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "log shrank from 23 to 20 entries: entry 20 "
                                                     "is gone, and the log key changed"));
    free(note);
    mlreg_audit_entries_clear(&longer);
}
END_TEST

/* A registry that fails to serve proofs while the log is wrong. */
static int failing_proofs(mlreg_merkle_hash *proof, size_t *len_out, void *ctx, uint64_t from,
                          uint64_t to)
{
    (void)proof;
    (void)len_out;
    (void)ctx;
    (void)from;
    (void)to;
    return mlreg_error_set(MLREG_ESERVER, "consistency proof: HTTP 500");
}

START_TEST(test_audit_tampered_log_fails_as_a_mismatch_when_the_registry_refuses_proofs)
{
    mlreg_audit_entries e;
    char *t;

    copy_log(&e, &signed_log, N);
    t = make_entry(7, signed_log.text[6], action_of(7), other_digest, "mallory");
    replace(&e, 7, t);
    free(t);
    ck_assert_int_eq(mlreg_audit_verify_log(&e, &cp, failing_proofs, NULL), MLREG_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "does not match the signed checkpoint"));
    mlreg_audit_entries_clear(&e);
}
END_TEST

/* ---- bundles ------------------------------------------------------------------------ */

static char bdir[64];
/* How many lines SHA256SUMS of an intact bundle has. */
static size_t sums_want = 2;

static void put(const char *name, const void *data, size_t len)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", bdir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void put_str(const char *name, const char *text)
{
    put(name, text, strlen(text));
}

static void b64(char out[64], const mlreg_merkle_hash *h)
{
    sodium_bin2base64(out, 64, h->raw, 32, sodium_base64_VARIANT_ORIGINAL);
}

static void put_entry(uint64_t seq)
{
    char name[64], s[64], *text;
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX];
    size_t plen = 0;
    json_t *j, *arr;

    snprintf(name, sizeof(name), "audit/entries/%llu.json", (unsigned long long)seq);
    put(name, signed_log.text[seq], signed_log.len[seq]);
    ck_assert_int_eq(mlreg_merkle_prove_inclusion(proof, &plen, seq, N, mlreg_merkle_leaves_subtree,
                                                  &signed_tree),
                     0);
    j = json_pack("{s:I, s:I, s:[]}", "seq", (json_int_t)seq, "size", (json_int_t)N, "proof");
    arr = json_object_get(j, "proof");
    for (size_t i = 0; i < plen; i++) {
        b64(s, &proof[i]);
        json_array_append_new(arr, json_string(s));
    }
    b64(s, &signed_leaves[seq]);
    json_object_set_new(j, "leaf_hash", json_string(s));
    b64(s, &cp.root);
    json_object_set_new(j, "root", json_string(s));
    text = json_dumps(j, JSON_COMPACT);
    snprintf(name, sizeof(name), "audit/entries/%llu.proof.json", (unsigned long long)seq);
    put_str(name, text);
    free(text);
    json_decref(j);
}

static void put_attestation_stage(const char *name, uint64_t seq, const char *action,
                                  const char *digest_hex, mlreg_seckey *key, const char *stage)
{
    json_t *st;
    char *payload = NULL, *env = NULL;

    st = json_pack("{s:s, s:s, s:[{s:s, s:{s:s}}], s:{s:s, s:s, s:s, s:{s:s, s:I}}}", "_type",
                   "https://in-toto.io/Statement/v1", "predicateType", "urn:mlreg:promotion:v1",
                   "subject", "name", MODEL "@1.0", "digest", "sha256", digest_hex, "predicate",
                   "action", action, "model", MODEL, "stage", stage, "audit", "origin", origin,
                   "seq", (json_int_t)seq);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(mlreg_canonical_json(&payload, NULL, st), 0);
    ck_assert_int_eq(mlreg_dsse_sign(&env, MLREG_DSSE_INTOTO_TYPE, payload, strlen(payload), key),
                     0);
    put_str(name, env);
    free(env);
    free(payload);
    json_decref(st);
}

static void put_attestation(const char *name, uint64_t seq, const char *action,
                            const char *digest_hex, mlreg_seckey *key)
{
    put_attestation_stage(name, seq, action, digest_hex, key, "prod");
}

/* mkdir -p of the directories of bundle path @p name. */
static void make_parents(const char *name)
{
    char p[512];
    for (const char *slash = strchr(name, '/'); slash; slash = strchr(slash + 1, '/')) {
        snprintf(p, sizeof(p), "%s/%.*s", bdir, (int)(slash - name), name);
        ck_assert(mkdir(p, 0755) == 0 || errno == EEXIST);
    }
}

static void make_bundle(void)
{
    char sums[4096], *pub = NULL, name[512];
    size_t off = 0;
    mlreg_digest d;
    char hex[MLREG_DIGEST_HEXLEN + 1];

    th_tmpdir(bdir, sizeof(bdir), "audit-verify");
    const char *dirs[] = {"files", "attestations", "audit", "audit/entries", "signatures"};
    for (size_t i = 0; i < 5; i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", bdir, dirs[i]);
        ck_assert_int_eq(mkdir(p, 0755), 0);
    }
    put_str("manifest.json", manifest);
    /* in sha256sum's own order of listing: as given, paths from the root */
    for (size_t i = 0; i < nfiles; i++) {
        if (!fdata[i]) continue;
        snprintf(name, sizeof(name), "files/%s", ftitle[i]);
        make_parents(name);
        put_str(name, fdata[i]);
        ck_assert_int_eq(mlreg_digest_buffer(&d, fdata[i], strlen(fdata[i])), 0);
        mlreg_digest_hex(hex, &d);
        off += (size_t)snprintf(sums + off, sizeof(sums) - off, "%s  %s\n", hex, name);
    }
    if (eval_env) {
        char p[512];
        snprintf(p, sizeof(p), "%s/evaluations", bdir);
        ck_assert_int_eq(mkdir(p, 0755), 0);
    }
    if (eval_env && eval_file) {
        snprintf(name, sizeof(name), "evaluations/%d.dsse.json", EVAL_SEQ);
        put_str(name, eval_file);
        ck_assert_int_eq(mlreg_digest_buffer(&d, eval_file, strlen(eval_file)), 0);
        mlreg_digest_hex(hex, &d);
        off += (size_t)snprintf(sums + off, sizeof(sums) - off, "%s  %s\n", hex, name);
    }
    snprintf(sums + off, sizeof(sums) - off, "%s  manifest.json\n", manifest_digest + 7);
    put_str("SHA256SUMS", sums);
    ck_assert_int_eq(mlreg_pubkey_format(&pub, &pk, NULL), 0);
    put_str("audit/log.pub", pub);
    free(pub);
    put_str("audit/checkpoint", cp_text);
    put_entry(2);
    put_entry(5);
    put_entry(9);
    if (eval_env) put_entry(EVAL_SEQ);
    put_attestation("attestations/5-prod.dsse.json", 5, "promote", manifest_digest + 7, sk);
    put_attestation("attestations/9-prod.dsse.json", 9, "rollback", manifest_digest + 7, sk);
}

static void bundle_teardown(void)
{
    eval_env = eval_file = NULL;
    eval_entry_pk = NULL;
    if (bdir[0]) th_rm_rf(bdir);
    bdir[0] = '\0';
    teardown();
}

static void bundle_setup(void)
{
    sums_want = 2;
    setup();
    make_bundle();
}

/* Rebuilds the bundle (and the signed log about its manifest) for the @p n
 * files @p titles with @p data (NULL: in the manifest, not in the bundle). */
static void use_files(const char *const *titles, const char *const *data, size_t n)
{
    ck_assert_uint_le(n, FILES_MAX);
    nfiles = n;
    sums_want = 1;
    for (size_t i = 0; i < n; i++) {
        ftitle[i] = titles[i];
        fdata[i] = data[i];
        sums_want += data[i] != NULL;
    }
    make_manifest();
    mlreg_audit_entries_clear(&signed_log);
    build_log(&signed_log, N);
    leaves_of(signed_leaves, &signed_log, N);
    ck_assert_int_eq(mlreg_merkle_root(&cp.root, signed_leaves, N), 0);
    free(cp_text);
    cp_text = NULL;
    ck_assert_int_eq(mlreg_checkpoint_sign(&cp_text, origin, N, &cp.root, sk), 0);
    th_rm_rf(bdir);
    make_bundle();
}

static const char *check_bundle(void)
{
    static char msg[1024];
    mlreg_bundle_report rep;
    int rc = mlreg_audit_verify_bundle(&rep, bdir, &pk);
    if (rc == 0) {
        ck_assert_uint_eq(rep.entries, eval_env ? 4 : 3);
        ck_assert_uint_eq(rep.evaluations, eval_env && eval_file ? 1 : 0);
        ck_assert_uint_eq(rep.attestations, 2);
        ck_assert_uint_eq(rep.sums, sums_want);
        ck_assert_uint_eq(rep.cp.size, N);
        ck_assert_str_eq(rep.digest, manifest_digest);
        return NULL;
    }
    ck_assert_int_eq(rc, MLREG_EMISMATCH);
    snprintf(msg, sizeof(msg), "%s", mlreg_error_last());
    return msg;
}

static void assert_has(const char *msg, const char *want)
{
    ck_assert_ptr_nonnull(msg);
    if (!strstr(msg, want)) ck_abort_msg("want '%s' in '%s'", want, msg);
}

/* An evaluation envelope: an in-toto statement of @p predicate about the
 * manifest of hex @p subject_hex, signed by @p key (malloc'd). */
static char *make_eval_env(const char *predicate, const char *subject_hex, mlreg_seckey *key)
{
    json_t *st;
    char *payload = NULL, *env = NULL;

    st = json_pack("{s:s, s:s, s:[{s:s, s:{s:s}}], s:{s:{s:{s:f}}, s:s}}", "_type",
                   "https://in-toto.io/Statement/v1", "predicateType", predicate, "subject", "name",
                   MODEL "@1.0", "digest", "sha256", subject_hex, "predicate", "report", "metrics",
                   "accuracy", 0.9, "evaluated_at", "2026-01-02T00:00:00Z");
    ck_assert_ptr_nonnull(st);
    ck_assert_ptr_nonnull(payload = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS));
    ck_assert_int_eq(mlreg_dsse_sign(&env, MLREG_DSSE_INTOTO_TYPE, payload, strlen(payload), key),
                     0);
    free(payload);
    json_decref(st);
    return env;
}

/* Rebuilds the signed log and the bundle with entry EVAL_SEQ recording
 * the evaluation @p env by the key @p entry_pk, and @p file (NULL: none)
 * as its file in evaluations/. */
static void use_evaluation(const char *env, const mlreg_pubkey *entry_pk, const char *file)
{
    eval_env = env;
    eval_entry_pk = entry_pk;
    eval_file = file;
    sums_want = 2 + (file != NULL);
    mlreg_audit_entries_clear(&signed_log);
    build_log(&signed_log, N);
    leaves_of(signed_leaves, &signed_log, N);
    ck_assert_int_eq(mlreg_merkle_root(&cp.root, signed_leaves, N), 0);
    free(cp_text);
    cp_text = NULL;
    ck_assert_int_eq(mlreg_checkpoint_sign(&cp_text, origin, N, &cp.root, sk), 0);
    th_rm_rf(bdir);
    make_bundle();
}

START_TEST(test_bundle_evaluation_verifies_offline)
{
    char *env = make_eval_env("urn:mlreg:evaluation:v1", manifest_digest + 7, other_sk);
    use_evaluation(env, &other_pk, env);
    ck_assert_ptr_null(check_bundle());
    free(env);
}
END_TEST

START_TEST(test_bundle_evaluation_by_another_key_than_its_entry_names_is_refused)
{
    /* signed by the log key, recorded as by other_pk */
    char *env = make_eval_env("urn:mlreg:evaluation:v1", manifest_digest + 7, sk);
    use_evaluation(env, &other_pk, env);
    assert_has(check_bundle(), "evaluations/7.dsse.json: no valid signature by key");
    free(env);
}
END_TEST

START_TEST(test_bundle_evaluation_about_another_manifest_is_refused)
{
    char *env = make_eval_env("urn:mlreg:evaluation:v1", other_digest + 7, other_sk);
    use_evaluation(env, &other_pk, env);
    assert_has(check_bundle(), "evaluations/7.dsse.json: its subject is not the manifest");
    free(env);
}
END_TEST

START_TEST(test_bundle_evaluation_of_another_predicate_is_refused)
{
    char *env = make_eval_env("urn:mlreg:promotion:v1", manifest_digest + 7, other_sk);
    use_evaluation(env, &other_pk, env);
    assert_has(check_bundle(), "evaluations/7.dsse.json: not an mlreg evaluation statement");
    free(env);
}
END_TEST

START_TEST(test_bundle_evaluation_left_out_is_refused)
{
    char *env = make_eval_env("urn:mlreg:evaluation:v1", manifest_digest + 7, other_sk);
    use_evaluation(env, &other_pk, NULL);
    assert_has(check_bundle(), "audit entry 7 records an evaluation whose envelope "
                               "evaluations/7.dsse.json is not in the bundle");
    free(env);
}
END_TEST

START_TEST(test_bundle_evaluation_other_bytes_than_its_entry_names_is_refused)
{
    char *env = make_eval_env("urn:mlreg:evaluation:v1", manifest_digest + 7, other_sk);
    char *again = make_eval_env("urn:mlreg:evaluation:v1", manifest_digest + 7, other_sk);
    /* a valid envelope of the same key, but the entry names @p env: only a
     * re-signed statement differs, so change a byte of the JSON layout */
    size_t n = strlen(again);
    char *spaced = malloc(n + 2);
    ck_assert_ptr_nonnull(spaced);
    spaced[0] = ' ';
    memcpy(spaced + 1, again, n + 1);
    use_evaluation(env, &other_pk, spaced);
    assert_has(check_bundle(), "evaluations/7.dsse.json is not the envelope audit entry 7 names");
    free(spaced);
    free(again);
    free(env);
}
END_TEST

START_TEST(test_bundle_intact_verifies_offline)
{
    ck_assert_ptr_null(check_bundle());
}
END_TEST

START_TEST(test_bundle_without_the_push_entry_is_refused)
{
    /* Emptying audit/entries/ would otherwise leave manifest.json vouched
     * for by nothing in the signed log. */
    char p[600];
    snprintf(p, sizeof(p), "%s/audit/entries/2.json", bdir);
    ck_assert_int_eq(unlink(p), 0);
    snprintf(p, sizeof(p), "%s/audit/entries/2.proof.json", bdir);
    ck_assert_int_eq(unlink(p), 0);
    assert_has(check_bundle(), "holds no entry recording the push");
}
END_TEST

START_TEST(test_bundle_attestation_naming_another_stage_is_refused)
{
    put_attestation("attestations/5-prod.dsse.json", 5, "promote", manifest_digest + 7, sk);
    /* same entry, statement says another stage */
    put_attestation_stage("attestations/5-prod.dsse.json", 5, "promote", manifest_digest + 7, sk,
                          "staging");
    assert_has(check_bundle(), "names stage staging, audit entry 5 stage prod");
}
END_TEST

START_TEST(test_bundle_stray_file_in_attestations_is_refused)
{
    put_str("attestations/notes.txt", "x");
    assert_has(check_bundle(), "attestations/notes.txt: not a .dsse.json statement");
}
END_TEST

START_TEST(test_bundle_tampered_file_is_named_by_sha256sums)
{
    put_str("files/model.bin", "weights bytez");
    assert_has(check_bundle(), "SHA256SUMS: files/model.bin does not match");
}
END_TEST

START_TEST(test_bundle_unlisted_file_is_refused)
{
    put_str("files/extra.bin", "x");
    assert_has(check_bundle(), "SHA256SUMS does not list files/extra.bin");
}
END_TEST

START_TEST(test_bundle_edited_entry_is_not_in_the_signed_log)
{
    char *t = make_entry(5, signed_log.text[4], "promote", manifest_digest, "mallory");
    put_str("audit/entries/5.json", t);
    free(t);
    assert_has(check_bundle(), "audit/entries/5.json is not in the signed log");
}
END_TEST

START_TEST(test_bundle_entry_about_another_release_is_refused)
{
    put_entry(3);
    assert_has(check_bundle(), "audit/entries/3.json: its subject.digest");
}
END_TEST

START_TEST(test_bundle_attestation_by_another_key_is_refused)
{
    put_attestation("attestations/5-prod.dsse.json", 5, "promote", manifest_digest + 7, other_sk);
    assert_has(check_bundle(), "attestations/5-prod.dsse.json");
}
END_TEST

START_TEST(test_bundle_attestation_whose_entry_is_missing_is_refused)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/audit/entries/9.json", bdir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/audit/entries/9.proof.json", bdir);
    unlink(p);
    assert_has(check_bundle(), "attestations/9-prod.dsse.json: its audit entry 9 is not in");
}
END_TEST

START_TEST(test_bundle_attestation_pointing_at_a_push_is_refused)
{
    put_attestation("attestations/2-prod.dsse.json", 2, "promote", manifest_digest + 7, sk);
    assert_has(check_bundle(), "audit entry 2 is a push");
}
END_TEST

START_TEST(test_bundle_attestation_about_another_manifest_is_refused)
{
    put_attestation("attestations/5-prod.dsse.json", 5, "promote", other_digest + 7, sk);
    assert_has(check_bundle(), "its subject is not the manifest");
}
END_TEST

START_TEST(test_bundle_checkpoint_by_another_key_is_refused)
{
    char *note = NULL;
    ck_assert_int_eq(mlreg_checkpoint_sign(&note, origin, N, &cp.root, other_sk), 0);
    put_str("audit/checkpoint", note);
    free(note);
    assert_has(check_bundle(), "audit/checkpoint:");
}
END_TEST

START_TEST(test_bundle_proof_for_another_tree_size_is_refused)
{
    put_str("audit/entries/2.proof.json", "{\"seq\":2,\"size\":19,\"proof\":[]}");
    assert_has(check_bundle(), "audit/entries/2.proof.json: the proof is not for");
}
END_TEST

/* SHA256SUMS is written by whoever wrote the bundle: the files must match
 * manifest.json, which the signed entries are about. */
static void put_sums(const char *file_hex)
{
    char sums[512];
    snprintf(sums, sizeof(sums), "%s  files/model.bin\n%s  manifest.json\n", file_hex,
             manifest_digest + 7);
    put_str("SHA256SUMS", sums);
}

START_TEST(test_bundle_file_replaced_with_sha256sums_updated_is_refused)
{
    mlreg_digest d;
    char hex[MLREG_DIGEST_HEXLEN + 1];

    put_str("files/model.bin", "evil weights");
    ck_assert_int_eq(mlreg_digest_buffer(&d, "evil weights", 12), 0);
    mlreg_digest_hex(hex, &d);
    put_sums(hex);
    assert_has(check_bundle(), "files/model.bin does not match manifest.json");
}
END_TEST

START_TEST(test_bundle_release_file_left_out_is_refused)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/files/model.bin", bdir);
    ck_assert_int_eq(unlink(p), 0);
    snprintf(p, sizeof(p), "%s  manifest.json\n", manifest_digest + 7);
    put_str("SHA256SUMS", p);
    assert_has(check_bundle(), "SHA256SUMS does not list files/model.bin, a file of the release");
}
END_TEST

START_TEST(test_bundle_file_that_is_a_symlink_is_refused)
{
    char p[512], outside[512];

    /* Same bytes, so only the link itself is wrong: it points out of the bundle. */
    snprintf(outside, sizeof(outside), "%s.outside", bdir);
    FILE *f = fopen(outside, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(weights, f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/files/model.bin", bdir);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(symlink(outside, p), 0);
    const char *msg = check_bundle();
    unlink(outside);
    assert_has(msg, "files/model.bin: a symbolic link");
}
END_TEST

START_TEST(test_bundle_directory_that_is_a_symlink_is_refused)
{
    char from[512], to[512];

    snprintf(from, sizeof(from), "%s/audit", bdir);
    snprintf(to, sizeof(to), "%s/audit-real", bdir);
    ck_assert_int_eq(rename(from, to), 0);
    ck_assert_int_eq(symlink("audit-real", from), 0);
    assert_has(check_bundle(), "audit/checkpoint: a symbolic link");
}
END_TEST

START_TEST(test_bundle_fifo_is_refused_without_blocking)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/files/model.bin", bdir);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    assert_has(check_bundle(), "files/model.bin: not a regular file");
}
END_TEST

START_TEST(test_bundle_sha256sums_naming_a_directory_is_a_bad_bundle)
{
    char sums[512];
    snprintf(sums, sizeof(sums), "%s  files\n", manifest_digest + 7);
    put_str("SHA256SUMS", sums);
    assert_has(check_bundle(), "files: ");
}
END_TEST

START_TEST(test_bundle_sha256sums_with_an_absolute_path_is_refused)
{
    char sums[512];
    snprintf(sums, sizeof(sums), "%s  /etc/hostname\n", manifest_digest + 7);
    put_str("SHA256SUMS", sums);
    assert_has(check_bundle(), "SHA256SUMS line 1: path outside the bundle");
}
END_TEST

START_TEST(test_bundle_hidden_file_in_files_is_refused)
{
    put_str("files/.extra", "x");
    assert_has(check_bundle(), "SHA256SUMS does not list files/.extra");
}
END_TEST

/* ---- bundles of releases whose titles are paths ------------------------------------ */

static const char *const nested_titles[] = {"model.bin", "tokenizer/vocab.json",
                                            "tokenizer/merges/en.txt"};
static const char *const nested_data[] = {weights, "vocab bytes", "merges bytes"};

static void use_nested(void)
{
    use_files(nested_titles, nested_data, 3);
}

START_TEST(test_bundle_with_nested_titles_verifies)
{
    use_nested();
    ck_assert_ptr_null(check_bundle());
}
END_TEST

START_TEST(test_bundle_with_a_title_as_deep_as_allowed_verifies)
{
    static const char *const titles[] = {"1/2/3/4/5/6/7/deepest.bin"};
    static const char *const data[] = {weights};
    use_files(titles, data, 1);
    ck_assert_ptr_null(check_bundle());
}
END_TEST

START_TEST(test_bundle_nested_file_that_is_a_symlink_inside_the_bundle_is_refused)
{
    char p[512];

    /* The link points at a file of the bundle with the very same bytes. */
    use_nested();
    put_str("files/tokenizer/vocab.json", weights);
    snprintf(p, sizeof(p), "%s/files/tokenizer/vocab.json", bdir);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(symlink("../model.bin", p), 0);
    assert_has(check_bundle(), "files/tokenizer/vocab.json: a symbolic link");
}
END_TEST

START_TEST(test_bundle_nested_directory_that_is_a_symlink_out_of_the_bundle_is_refused)
{
    char from[512], to[512];

    use_nested();
    snprintf(from, sizeof(from), "%s/files/tokenizer", bdir);
    snprintf(to, sizeof(to), "%s.outside", bdir);
    ck_assert_int_eq(rename(from, to), 0);
    ck_assert_int_eq(symlink(to, from), 0);
    const char *msg = check_bundle();
    th_rm_rf(to);
    assert_has(msg, "files/tokenizer/vocab.json: a symbolic link");
}
END_TEST

START_TEST(test_bundle_unlisted_symlink_in_a_nested_directory_is_refused)
{
    char p[512];

    /* Not in SHA256SUMS, so only the walk of files/ can find it. */
    use_nested();
    snprintf(p, sizeof(p), "%s/files/tokenizer/merges/link", bdir);
    ck_assert_int_eq(symlink("/etc/hostname", p), 0);
    assert_has(check_bundle(), "files/tokenizer/merges/link: a symbolic link");
}
END_TEST

START_TEST(test_bundle_unlisted_file_in_a_nested_directory_is_refused)
{
    use_nested();
    put_str("files/tokenizer/merges/extra.txt", "x");
    assert_has(check_bundle(), "SHA256SUMS does not list files/tokenizer/merges/extra.txt");
}
END_TEST

START_TEST(test_bundle_listed_nested_file_not_in_the_manifest_is_refused)
{
    char sums[4096], hex[MLREG_DIGEST_HEXLEN + 1], p[512];
    mlreg_digest d;
    FILE *f;

    use_nested();
    put_str("files/tokenizer/extra.txt", "x");
    ck_assert_int_eq(mlreg_digest_buffer(&d, "x", 1), 0);
    mlreg_digest_hex(hex, &d);
    snprintf(p, sizeof(p), "%s/SHA256SUMS", bdir);
    ck_assert_ptr_nonnull(f = fopen(p, "rb"));
    size_t n = fread(sums, 1, sizeof(sums) - 1, f);
    fclose(f);
    sums[n] = '\0';
    snprintf(sums + n, sizeof(sums) - n, "%s  files/tokenizer/extra.txt\n", hex);
    put_str("SHA256SUMS", sums);
    assert_has(check_bundle(),
               "files/tokenizer/extra.txt is not a file of the release in manifest.json");
}
END_TEST

START_TEST(test_bundle_stray_empty_directory_in_files_is_refused)
{
    char p[512];

    use_nested();
    snprintf(p, sizeof(p), "%s/files/tokenizer/empty", bdir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    assert_has(check_bundle(),
               "files/tokenizer/empty/ is not a directory of a file of the release");
}
END_TEST

START_TEST(test_bundle_directory_deeper_than_any_title_is_refused)
{
    use_nested();
    make_parents("files/1/2/3/4/5/6/7/8/9/x");
    assert_has(check_bundle(), "files/1/2/3/4/5/6/7/8: a directory deeper than any release file");
}
END_TEST

START_TEST(test_bundle_nested_fifo_is_refused_without_blocking)
{
    char p[512];

    use_nested();
    snprintf(p, sizeof(p), "%s/files/tokenizer/pipe", bdir);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    assert_has(check_bundle(), "files/tokenizer/pipe: not a regular file or a directory");
}
END_TEST

START_TEST(test_bundle_file_whose_name_is_not_utf8_is_a_bad_bundle)
{
    use_nested();
    put_str("files/tokenizer/\xff\xfe.bin", "x");
    assert_has(check_bundle(), "files/tokenizer holds a name that is not text");
}
END_TEST

START_TEST(test_bundle_manifest_with_a_traversal_title_is_refused)
{
    /* As if a registry had signed the push of such a manifest: the log
     * vouches for it, the title rule still holds. */
    static const char *const titles[] = {"model.bin", "../outside.bin"};
    static const char *const data[] = {weights, NULL};
    use_files(titles, data, 2);
    assert_has(check_bundle(), "manifest.json: layer 1 has an unsafe title");
}
END_TEST

START_TEST(test_bundle_manifest_with_a_hidden_nested_title_is_refused)
{
    static const char *const titles[] = {"model.bin", "tokenizer/.hidden"};
    static const char *const data[] = {weights, "x"};
    use_files(titles, data, 2);
    assert_has(check_bundle(), "may not start with '.'");
}
END_TEST

START_TEST(test_bundle_manifest_with_titles_differing_in_case_is_refused)
{
    /* Both files exist and are listed on a case-sensitive filesystem; only
     * the set rule finds that they are one file elsewhere. */
    static const char *const titles[] = {"Tokenizer/vocab.json", "tokenizer/merges.txt"};
    static const char *const data[] = {"vocab bytes", "merges bytes"};
    use_files(titles, data, 2);
    assert_has(check_bundle(), "name one directory in two letter cases");
}
END_TEST

START_TEST(test_bundle_manifest_with_a_file_where_a_directory_is_needed_is_refused)
{
    static const char *const titles[] = {"tokenizer", "tokenizer/vocab.json"};
    static const char *const data[] = {NULL, NULL};
    use_files(titles, data, 2);
    assert_has(check_bundle(), "manifest.json: title 'tokenizer' is a file, but");
}
END_TEST

static Suite *audit_verify_suite(void)
{
    Suite *s = suite_create("audit_verify");
    TCase *t = tcase_create("log");
    TCase *b = tcase_create("bundle");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_audit_intact_log_verifies_without_asking_for_proofs);
    tcase_add_test(t, test_audit_entry_edited_in_place_is_found_at_its_position);
    tcase_add_test(t, test_audit_non_canonical_edit_names_the_reason);
    tcase_add_test(t, test_audit_deleted_entry_is_found_where_it_is_missing);
    tcase_add_test(t, test_audit_reordered_entries_are_found_at_the_first_swapped_one);
    tcase_add_test(t, test_audit_truncated_log_names_the_first_missing_entry);
    tcase_add_test(t, test_audit_truncated_log_with_an_earlier_edit_names_the_edit);
    tcase_add_test(t, test_audit_entries_past_the_checkpoint_are_ignored);
    tcase_add_test(t, test_audit_signed_but_malformed_entry_is_refused);
    tcase_add_test(t, test_audit_bisect_finds_every_position);
    tcase_add_test(t, test_audit_entry_check_reports_seq_and_prev);
    tcase_add_test(t, test_audit_checkpoint_by_another_key_fails);
    tcase_add_test(t, test_audit_tampered_log_fails_as_a_mismatch_when_the_registry_refuses_proofs);
    tcase_add_test(t, test_audit_checkpoint_with_an_altered_size_fails_its_signature);
    tcase_add_test(t, test_audit_remembered_checkpoint_of_a_prefix_is_consistent);
    tcase_add_test(t, test_audit_remembered_larger_checkpoint_says_the_log_shrank);
    tcase_add_test(t, test_audit_remembered_checkpoint_of_another_history_says_rewritten);
    tcase_add_test(t, test_audit_remembered_checkpoint_by_another_key_says_the_key_changed);
    tcase_add_test(
        t, test_audit_remembered_larger_checkpoint_by_another_key_still_names_the_first_gone_entry);
    suite_add_tcase(s, t);

    tcase_add_checked_fixture(b, bundle_setup, bundle_teardown);
    tcase_add_test(b, test_bundle_intact_verifies_offline);
    tcase_add_test(b, test_bundle_tampered_file_is_named_by_sha256sums);
    tcase_add_test(b, test_bundle_unlisted_file_is_refused);
    tcase_add_test(b, test_bundle_edited_entry_is_not_in_the_signed_log);
    tcase_add_test(b, test_bundle_entry_about_another_release_is_refused);
    tcase_add_test(b, test_bundle_without_the_push_entry_is_refused);
    tcase_add_test(b, test_bundle_attestation_naming_another_stage_is_refused);
    tcase_add_test(b, test_bundle_stray_file_in_attestations_is_refused);
    tcase_add_test(b, test_bundle_attestation_by_another_key_is_refused);
    tcase_add_test(b, test_bundle_evaluation_verifies_offline);
    tcase_add_test(b, test_bundle_evaluation_by_another_key_than_its_entry_names_is_refused);
    tcase_add_test(b, test_bundle_evaluation_about_another_manifest_is_refused);
    tcase_add_test(b, test_bundle_evaluation_of_another_predicate_is_refused);
    tcase_add_test(b, test_bundle_evaluation_left_out_is_refused);
    tcase_add_test(b, test_bundle_evaluation_other_bytes_than_its_entry_names_is_refused);
    tcase_add_test(b, test_bundle_attestation_whose_entry_is_missing_is_refused);
    tcase_add_test(b, test_bundle_attestation_pointing_at_a_push_is_refused);
    tcase_add_test(b, test_bundle_attestation_about_another_manifest_is_refused);
    tcase_add_test(b, test_bundle_checkpoint_by_another_key_is_refused);
    tcase_add_test(b, test_bundle_proof_for_another_tree_size_is_refused);
    tcase_add_test(b, test_bundle_file_replaced_with_sha256sums_updated_is_refused);
    tcase_add_test(b, test_bundle_release_file_left_out_is_refused);
    tcase_add_test(b, test_bundle_file_that_is_a_symlink_is_refused);
    tcase_add_test(b, test_bundle_directory_that_is_a_symlink_is_refused);
    tcase_add_test(b, test_bundle_fifo_is_refused_without_blocking);
    tcase_add_test(b, test_bundle_sha256sums_naming_a_directory_is_a_bad_bundle);
    tcase_add_test(b, test_bundle_sha256sums_with_an_absolute_path_is_refused);
    tcase_add_test(b, test_bundle_hidden_file_in_files_is_refused);
    tcase_add_test(b, test_bundle_with_nested_titles_verifies);
    tcase_add_test(b, test_bundle_with_a_title_as_deep_as_allowed_verifies);
    tcase_add_test(b, test_bundle_nested_file_that_is_a_symlink_inside_the_bundle_is_refused);
    tcase_add_test(b, test_bundle_nested_directory_that_is_a_symlink_out_of_the_bundle_is_refused);
    tcase_add_test(b, test_bundle_unlisted_symlink_in_a_nested_directory_is_refused);
    tcase_add_test(b, test_bundle_unlisted_file_in_a_nested_directory_is_refused);
    tcase_add_test(b, test_bundle_listed_nested_file_not_in_the_manifest_is_refused);
    tcase_add_test(b, test_bundle_stray_empty_directory_in_files_is_refused);
    tcase_add_test(b, test_bundle_directory_deeper_than_any_title_is_refused);
    tcase_add_test(b, test_bundle_nested_fifo_is_refused_without_blocking);
    tcase_add_test(b, test_bundle_file_whose_name_is_not_utf8_is_a_bad_bundle);
    tcase_add_test(b, test_bundle_manifest_with_a_traversal_title_is_refused);
    tcase_add_test(b, test_bundle_manifest_with_a_hidden_nested_title_is_refused);
    tcase_add_test(b, test_bundle_manifest_with_titles_differing_in_case_is_refused);
    tcase_add_test(b, test_bundle_manifest_with_a_file_where_a_directory_is_needed_is_refused);
    suite_add_tcase(s, b);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(audit_verify_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
