/* check_keyring.c: the trusted keyring (registry/keyring.c) over a real LMDB
 * environment in a temp dir: config keys, runtime trust and revocation,
 * their persistence across reopen, key events, and the counting rule. */
#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/keyring.h"
#include "mlreg/meta.h"
#include "mlreg/sign.h"
#include "mlreg/tables.h"

#include "helpers.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[TH_DIR_MAX];
static char meta_dir[128];
static mlreg_meta *meta;
static mlreg_keyring *kr;

/* Two generated key pairs' public halves, and a third with A's key id. */
static mlreg_pubkey pk_a, pk_b, pk_a_twin;
static char b64_a[MLREG_PUBKEY_B64LEN + 1], b64_b[MLREG_PUBKEY_B64LEN + 1];
static char id_a[MLREG_KEYID_HEXLEN + 1], id_b[MLREG_KEYID_HEXLEN + 1];

static void make_key(mlreg_pubkey *pk, char b64[MLREG_PUBKEY_B64LEN + 1],
                     char id[MLREG_KEYID_HEXLEN + 1])
{
    mlreg_seckey *sk = NULL;

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(pk, sk);
    mlreg_seckey_free(sk);
    if (b64) mlreg_pubkey_base64(b64, pk);
    if (id) mlreg_keyid_format(id, &pk->id);
}

static void setup(void)
{
    th_tmpdir(dir, sizeof(dir), "keyring");
    snprintf(meta_dir, sizeof(meta_dir), "%s/meta", dir);
    ck_assert_int_eq(mlreg_tables_open(&meta, meta_dir, 16u * 1024 * 1024), 0);
    make_key(&pk_a, b64_a, id_a);
    make_key(&pk_b, b64_b, id_b);
    make_key(&pk_a_twin, NULL, NULL);
    pk_a_twin.id = pk_a.id; /* same key id, another Ed25519 key */
    kr = NULL;
}

static void teardown(void)
{
    mlreg_keyring_free(kr);
    kr = NULL;
    mlreg_meta_close(meta);
    meta = NULL;
    th_rm_rf(dir);
}

static mlreg_config_key cfg_key(const char *name, const char *role, const mlreg_pubkey *pk)
{
    mlreg_config_key k;

    memset(&k, 0, sizeof(k));
    k.name = (char *)name;
    k.role = (char *)role;
    k.file = (char *)"/etc/mlreg/keys/test.pub";
    k.pubkey = *pk;
    return k;
}

/* Closes and reopens meta and keyring with the given config keys. */
static int reopen(const mlreg_config_key *keys, size_t n)
{
    mlreg_keyring_free(kr);
    kr = NULL;
    mlreg_meta_close(meta);
    ck_assert_int_eq(mlreg_tables_open(&meta, meta_dir, 16u * 1024 * 1024), 0);
    return mlreg_keyring_open(&kr, meta, keys, n);
}

/* The key object of @p id in mlreg_keyring_list(), or NULL (a new reference). */
static json_t *listed(const char *id)
{
    json_t *list = NULL, *k, *found = NULL;
    size_t i;

    ck_assert_int_eq(mlreg_keyring_list(&list, kr), 0);
    json_array_foreach(json_object_get(list, "keys"), i, k)
    {
        if (!strcmp(json_string_value(json_object_get(k, "key_id")), id)) found = json_incref(k);
    }
    json_decref(list);
    return found;
}

static size_t n_listed(void)
{
    json_t *list = NULL;
    size_t n;

    ck_assert_int_eq(mlreg_keyring_list(&list, kr), 0);
    n = json_array_size(json_object_get(list, "keys"));
    json_decref(list);
    return n;
}

static json_t *events(void)
{
    json_t *ev = NULL, *arr;

    ck_assert_int_eq(mlreg_keyring_events(&ev, kr), 0);
    arr = json_incref(json_object_get(ev, "events"));
    json_decref(ev);
    return arr;
}

static int trust(int *created, const char *name, const char *role, const char *b64)
{
    json_t *obj = NULL;
    int rc = mlreg_keyring_trust(&obj, created, kr, name, role, b64, strlen(b64), "alice");

    if (rc == 0) {
        ck_assert_ptr_nonnull(obj);
        json_decref(obj);
    } else {
        ck_assert_ptr_null(obj);
    }
    return rc;
}

static int revoke_key(const char *id, const char *kind, const char *reason)
{
    json_t *obj = NULL;
    int rc = mlreg_keyring_revoke(&obj, kr, id, kind, reason, "bob");

    json_decref(obj);
    return rc;
}

static const char *str(json_t *obj, const char *field)
{
    return json_string_value(json_object_get(obj, field));
}

/* ---- config keys ----------------------------------------------------------- */

START_TEST(test_keyring_config_key_is_listed_with_source_config_and_one_trust_event)
{
    mlreg_config_key k = cfg_key("release-bot", "release", &pk_a);
    json_t *obj, *ev;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, &k, 1), 0);
    obj = listed(id_a);
    ck_assert_ptr_nonnull(obj);
    ck_assert_str_eq(str(obj, "name"), "release-bot");
    ck_assert_str_eq(str(obj, "role"), "release");
    ck_assert_str_eq(str(obj, "source"), "config");
    ck_assert_str_eq(str(obj, "public_key"), b64_a);
    ck_assert(json_is_null(json_object_get(obj, "revoked_at")));
    ck_assert(json_is_null(json_object_get(obj, "revocation")));
    json_decref(obj);

    ck_assert_int_eq(reopen(&k, 1), 0); /* a restart records nothing new */
    ev = events();
    ck_assert_uint_eq(json_array_size(ev), 1);
    ck_assert_str_eq(str(json_array_get(ev, 0), "action"), "trust");
    ck_assert_str_eq(str(json_array_get(ev, 0), "actor"), MLREG_KEYRING_ACTOR_CONFIG);
    ck_assert_str_eq(str(json_array_get(ev, 0), "key_id"), id_a);
    json_decref(ev);
}
END_TEST

START_TEST(test_keyring_drops_a_config_key_removed_from_the_config)
{
    mlreg_config_key k = cfg_key("release-bot", "release", &pk_a);
    mlreg_keyring_key found;
    mlreg_meta_txn *txn = NULL;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, &k, 1), 0);
    ck_assert_int_eq(reopen(NULL, 0), 0);
    ck_assert_uint_eq(n_listed(), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_int_eq(mlreg_keyring_find(&found, kr, txn, &pk_a.id), MLREG_ENOTFOUND);
    mlreg_meta_txn_abort(txn);
}
END_TEST

/* The last audit entry (parsed) and the log size. */
static json_t *last_entry(uint64_t *size_out)
{
    mlreg_meta_txn *txn = NULL;
    uint64_t n = 0;
    char *text = NULL;
    json_t *e = NULL;

    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_int_eq(mlreg_audit_size_txn(&n, txn), 0);
    if (n > 0) {
        ck_assert_int_eq(mlreg_audit_entry_txn(&text, NULL, txn, n - 1), 0);
        e = json_loads(text, 0, NULL);
        free(text);
    }
    mlreg_meta_txn_abort(txn);
    *size_out = n;
    return e;
}

START_TEST(test_keyring_config_key_removed_renamed_and_listed_again_each_leave_one_audit_entry)
{
    mlreg_config_key k = cfg_key("release-bot", "release", &pk_a);
    mlreg_config_key renamed = cfg_key("release-bot-2", "release", &pk_a);
    uint64_t n0, n;
    json_t *e;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, &k, 1), 0);
    json_decref(last_entry(&n0));
    /* dropped from the config: one key.untrust, and only once */
    ck_assert_int_eq(reopen(NULL, 0), 0);
    e = last_entry(&n);
    ck_assert_uint_eq(n, n0 + 1);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_KEY_UNTRUST);
    ck_assert_str_eq(str(e, "actor"), MLREG_KEYRING_ACTOR_CONFIG);
    ck_assert_str_eq(str(e, "reason"), "removed from the config");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "subject"), "key_id")),
                     id_a);
    json_decref(e);
    ck_assert_int_eq(reopen(NULL, 0), 0);
    json_decref(last_entry(&n));
    ck_assert_uint_eq(n, n0 + 1);
    /* listed again: key.trust */
    ck_assert_int_eq(reopen(&k, 1), 0);
    e = last_entry(&n);
    ck_assert_uint_eq(n, n0 + 2);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_KEY_TRUST);
    ck_assert_str_eq(str(e, "reason"), "listed in the config again");
    json_decref(e);
    ck_assert_int_eq(reopen(&k, 1), 0);
    json_decref(last_entry(&n));
    ck_assert_uint_eq(n, n0 + 2);
    /* renamed in the config: key.trust with the new name */
    ck_assert_int_eq(reopen(&renamed, 1), 0);
    e = last_entry(&n);
    ck_assert_uint_eq(n, n0 + 3);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_KEY_TRUST);
    ck_assert_str_eq(str(e, "reason"), "name or role changed in the config");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "details"), "name")),
                     "release-bot-2");
    json_decref(e);
}
END_TEST

/* ---- reload (mlreg_keyring_reload_config) ---------------------------------- */

START_TEST(test_keyring_reload_adds_and_drops_config_keys_with_one_entry_each)
{
    mlreg_config_key a = cfg_key("release-bot", "release", &pk_a);
    mlreg_config_key b = cfg_key("second-bot", "release", &pk_b);
    mlreg_config_key both[2] = {a, b};
    mlreg_keyring_key found;
    mlreg_meta_txn *txn = NULL;
    uint64_t n0, n;
    int changed = -1;
    json_t *e;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, &a, 1), 0);
    json_decref(last_entry(&n0));
    /* the same keys again, in another order of fields: nothing written */
    ck_assert_int_eq(mlreg_keyring_reload_config(&changed, kr, &a, 1), 0);
    ck_assert_int_eq(changed, 0);
    json_decref(last_entry(&n));
    ck_assert_uint_eq(n, n0);
    /* one key added: one key.trust by "config", the key is found */
    ck_assert_int_eq(mlreg_keyring_reload_config(&changed, kr, both, 2), 0);
    ck_assert_int_eq(changed, 1);
    e = last_entry(&n);
    ck_assert_uint_eq(n, n0 + 1);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_KEY_TRUST);
    ck_assert_str_eq(str(e, "actor"), MLREG_KEYRING_ACTOR_CONFIG);
    json_decref(e);
    ck_assert_uint_eq(n_listed(), 2);
    /* the first one dropped: one key.untrust, it is not found any more */
    ck_assert_int_eq(mlreg_keyring_reload_config(&changed, kr, &b, 1), 0);
    ck_assert_int_eq(changed, 1);
    e = last_entry(&n);
    ck_assert_uint_eq(n, n0 + 2);
    ck_assert_str_eq(str(e, "action"), MLREG_AUDIT_KEY_UNTRUST);
    json_decref(e);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_int_eq(mlreg_keyring_find(&found, kr, txn, &pk_a.id), MLREG_ENOTFOUND);
    ck_assert_int_eq(mlreg_keyring_find(&found, kr, txn, &pk_b.id), 0);
    ck_assert_str_eq(found.name, "second-bot");
    mlreg_meta_txn_abort(txn);
}
END_TEST

START_TEST(test_keyring_reload_refused_keeps_the_keys_in_force)
{
    mlreg_config_key a = cfg_key("release-bot", "release", &pk_a);
    mlreg_config_key clash = cfg_key("shared-name", "release", &pk_a);
    mlreg_keyring_key found;
    mlreg_meta_txn *txn = NULL;
    uint64_t n0, n;
    int created = 0, changed = -1;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, &a, 1), 0);
    ck_assert_int_eq(trust(&created, "shared-name", "release", b64_b), 0);
    json_decref(last_entry(&n0));
    /* a config name a runtime key holds: refused, nothing written */
    ck_assert_int_eq(mlreg_keyring_reload_config(&changed, kr, &clash, 1), MLREG_EINVALID);
    ck_assert_int_eq(changed, 0);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "trusted key 'shared-name'"));
    json_decref(last_entry(&n));
    ck_assert_uint_eq(n, n0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_int_eq(mlreg_keyring_find(&found, kr, txn, &pk_a.id), 0);
    ck_assert_str_eq(found.name, "release-bot");
    mlreg_meta_txn_abort(txn);
    /* a duplicate in the new keys: refused before anything */
    {
        mlreg_config_key dup[2] = {a, cfg_key("again", "release", &pk_a)};
        ck_assert_int_eq(mlreg_keyring_reload_config(&changed, kr, dup, 2), MLREG_EINVALID);
    }
}
END_TEST

START_TEST(test_keyring_refuses_a_config_key_whose_id_is_stored_with_another_key)
{
    mlreg_config_key twin = cfg_key("impostor", "release", &pk_a_twin);
    int created = 0;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, NULL, 0), 0);
    ck_assert_int_eq(trust(&created, "a", "release", b64_a), 0);
    ck_assert_int_eq(reopen(&twin, 1), MLREG_EINVALID);
    ck_assert_ptr_null(kr);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "trusted key 'impostor'"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "different public key"));
}
END_TEST

START_TEST(test_keyring_refuses_a_config_name_used_by_a_runtime_key)
{
    mlreg_config_key k = cfg_key("shared-name", "release", &pk_b);
    int created = 0;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, NULL, 0), 0);
    ck_assert_int_eq(trust(&created, "shared-name", "release", b64_a), 0);
    ck_assert_int_eq(reopen(&k, 1), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "trusted key 'shared-name'"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), id_a));
}
END_TEST

START_TEST(test_keyring_refuses_duplicate_config_keys)
{
    mlreg_config_key k[2] = {cfg_key("one", "release", &pk_a), cfg_key("two", "release", &pk_a)};

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, k, 2), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "'two'"));
}
END_TEST

/* ---- runtime trust --------------------------------------------------------- */

START_TEST(test_keyring_trust_adds_then_is_a_no_op_for_the_same_key)
{
    int created = -1;
    json_t *obj, *ev;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, NULL, 0), 0);
    ck_assert_int_eq(trust(&created, "ci", "release", b64_a), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(trust(&created, "ci", "release", b64_a), 0);
    ck_assert_int_eq(created, 0);
    obj = listed(id_a);
    ck_assert_ptr_nonnull(obj);
    ck_assert_str_eq(str(obj, "source"), "runtime");
    ck_assert_ptr_nonnull(str(obj, "added_at"));
    json_decref(obj);
    ev = events();
    ck_assert_uint_eq(json_array_size(ev), 1);
    ck_assert_str_eq(str(json_array_get(ev, 0), "actor"), "alice");
    json_decref(ev);
    /* the .pub text works as well as its base64 line */
    {
        char *pub = NULL;
        ck_assert_int_eq(mlreg_pubkey_format(&pub, &pk_b, NULL), 0);
        ck_assert_int_eq(trust(&created, "other", "approver", pub), 0);
        ck_assert_int_eq(created, 1);
        free(pub);
    }
}
END_TEST

START_TEST(test_keyring_trust_refuses_conflicts_and_bad_input)
{
    int created = 0;
    char twin_b64[MLREG_PUBKEY_B64LEN + 1];

    mlreg_pubkey_base64(twin_b64, &pk_a_twin);
    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, NULL, 0), 0);
    ck_assert_int_eq(trust(&created, "ci", "release", b64_a), 0);
    ck_assert_int_eq(trust(&created, "ci2", "release", twin_b64), MLREG_EDENIED);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "different public key"));
    ck_assert_int_eq(trust(&created, "ci", "release", b64_b), MLREG_EDENIED);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "key name 'ci'"));
    ck_assert_int_eq(trust(&created, "x", "Release", b64_b), MLREG_EINVALID);
    ck_assert_int_eq(trust(&created, "", "release", b64_b), MLREG_EINVALID);
    ck_assert_int_eq(trust(&created, "x\ty", "release", b64_b), MLREG_EINVALID);
    ck_assert_int_eq(trust(&created, "x", "release", "not a key"), MLREG_EINVALID);
    ck_assert_uint_eq(n_listed(), 1);
}
END_TEST

START_TEST(test_keyring_refuses_one_public_key_under_a_second_key_id)
{
    int created = 0;
    mlreg_pubkey relabeled = pk_a;
    char b64[MLREG_PUBKEY_B64LEN + 1];
    mlreg_config_key k;
    mlreg_config_key both[2] = {cfg_key("one", "release", &pk_b), cfg_key("two", "release", &pk_b)};

    /* the key id is not signed: anyone can put the bytes of a key under
     * another id, and that would be one signer counted twice */
    relabeled.id.raw[0] ^= 0x5a;
    mlreg_pubkey_base64(b64, &relabeled);
    k = cfg_key("relabeled", "release", &relabeled);
    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, NULL, 0), 0);
    ck_assert_int_eq(trust(&created, "a", "release", b64_a), 0);
    ck_assert_int_eq(trust(&created, "a2", "release", b64), MLREG_EDENIED);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "already recorded as key"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), id_a));
    /* nor does revoking the first id open the way for a second */
    ck_assert_int_eq(revoke_key(id_a, "compromised", "leaked"), 0);
    ck_assert_int_eq(trust(&created, "a3", "release", b64), MLREG_EDENIED);
    ck_assert_uint_eq(n_listed(), 1);
    /* the config can't either */
    ck_assert_int_eq(reopen(&k, 1), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "trusted key 'relabeled'"));
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "the same public key is recorded"));
    both[1].pubkey.id.raw[0] ^= 0x5a;
    ck_assert_int_eq(reopen(both, 2), MLREG_EINVALID);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "'two'"));
}
END_TEST

/* ---- revocation ------------------------------------------------------------ */

START_TEST(test_keyring_revoke_retired_escalates_to_compromised_never_back)
{
    int created = 0;
    json_t *obj, *ev;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, NULL, 0), 0);
    ck_assert_int_eq(trust(&created, "ci", "release", b64_a), 0);
    ck_assert_int_eq(revoke_key(id_a, "retired", "rotated"), 0);
    obj = listed(id_a);
    ck_assert_str_eq(str(obj, "revocation"), "retired");
    ck_assert_str_eq(str(obj, "reason"), "rotated");
    ck_assert_ptr_nonnull(str(obj, "revoked_at"));
    json_decref(obj);
    ck_assert_int_eq(revoke_key(id_a, "retired", NULL), 0); /* no-op */
    ck_assert_int_eq(revoke_key(id_a, "compromised", "leaked"), 0);
    ck_assert_int_eq(revoke_key(id_a, "retired", NULL), MLREG_EDENIED);
    ck_assert_int_eq(revoke_key(id_a, "compromised", NULL), 0); /* no-op */
    obj = listed(id_a);
    ck_assert_str_eq(str(obj, "revocation"), "compromised");
    json_decref(obj);
    ev = events();
    ck_assert_uint_eq(json_array_size(ev), 3);
    ck_assert_str_eq(str(json_array_get(ev, 1), "kind"), "retired");
    ck_assert_str_eq(str(json_array_get(ev, 1), "actor"), "bob");
    ck_assert_str_eq(str(json_array_get(ev, 2), "kind"), "compromised");
    ck_assert_str_eq(str(json_array_get(ev, 2), "reason"), "leaked");
    ck_assert_int_lt(strcmp(str(json_array_get(ev, 0), "time"), str(json_array_get(ev, 2), "time")),
                     0);
    json_decref(ev);
    /* a revoked key cannot come back */
    ck_assert_int_eq(trust(&created, "ci", "release", b64_a), MLREG_EDENIED);
}
END_TEST

START_TEST(test_keyring_revoke_refuses_unknown_keys_and_bad_input)
{
    int created = 0;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, NULL, 0), 0);
    ck_assert_int_eq(revoke_key(id_b, "retired", NULL), MLREG_ENOTFOUND);
    ck_assert_int_eq(trust(&created, "ci", "release", b64_a), 0);
    ck_assert_int_eq(revoke_key(id_a, "lost", NULL), MLREG_EINVALID);
    ck_assert_int_eq(revoke_key("12", "retired", NULL), MLREG_EINVALID);
    ck_assert_int_eq(revoke_key(id_a, "retired", "line\nbreak"), MLREG_EINVALID);
    {
        char lower[MLREG_KEYID_HEXLEN + 1];
        for (size_t i = 0; i <= MLREG_KEYID_HEXLEN; i++)
            lower[i] = (char)((id_a[i] >= 'A' && id_a[i] <= 'F') ? id_a[i] + 32 : id_a[i]);
        ck_assert_int_eq(revoke_key(lower, "retired", NULL), 0); /* either case names the key */
    }
}
END_TEST

START_TEST(test_keyring_revocation_outlives_restart_with_the_key_still_in_the_config)
{
    mlreg_config_key k = cfg_key("release-bot", "release", &pk_a);
    char logpath[160], buf[1024];
    int fd, saved;
    ssize_t n;
    json_t *obj;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, &k, 1), 0);
    ck_assert_int_eq(revoke_key(id_a, "compromised", "stolen laptop"), 0);

    snprintf(logpath, sizeof(logpath), "%s/stderr.log", dir);
    fd = open(logpath, O_CREAT | O_RDWR | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved = dup(2);
    dup2(fd, 2);
    ck_assert_int_eq(reopen(&k, 1), 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "warning: trusted key 'release-bot'"));
    ck_assert_ptr_nonnull(strstr(buf, "revocation stays in force"));

    obj = listed(id_a);
    ck_assert_ptr_nonnull(obj);
    ck_assert_str_eq(str(obj, "source"), "config");
    ck_assert_str_eq(str(obj, "revocation"), "compromised");
    ck_assert_str_eq(str(obj, "reason"), "stolen laptop");
    json_decref(obj);
}
END_TEST

/* ---- lookups and the counting rule ------------------------------------------ */

START_TEST(test_keyring_find_reports_state_and_revocation_time)
{
    mlreg_config_key k = cfg_key("release-bot", "release", &pk_a);
    mlreg_keyring_key found;
    mlreg_meta_txn *txn = NULL;
    int64_t before;

    ck_assert_int_eq(mlreg_keyring_open(&kr, meta, &k, 1), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_int_eq(mlreg_keyring_find(&found, kr, txn, &pk_a.id), 0);
    ck_assert_int_eq(found.state, MLREG_KEY_ACTIVE);
    ck_assert_str_eq(found.name, "release-bot");
    ck_assert_str_eq(found.role, "release");
    ck_assert_int_eq(mlreg_pubkey_equal(&found.pubkey, &pk_a), 1);
    ck_assert_int_eq(mlreg_keyring_find(&found, kr, txn, &pk_b.id), MLREG_ENOTFOUND);
    mlreg_meta_txn_abort(txn);

    before = mlreg_time_now_ns();
    ck_assert_int_eq(revoke_key(id_a, "retired", NULL), 0);
    ck_assert_int_eq(mlreg_meta_txn_begin(&txn, meta, 0), 0);
    ck_assert_int_eq(mlreg_keyring_find(&found, kr, txn, &pk_a.id), 0);
    mlreg_meta_txn_abort(txn);
    ck_assert_int_eq(found.state, MLREG_KEY_RETIRED);
    ck_assert_int_gt(found.revoked_ns, before);
    ck_assert_int_lt(found.revoked_ns, mlreg_time_now_ns());
}
END_TEST

START_TEST(test_keyring_judge_applies_the_counting_rule)
{
    mlreg_keyring_key k;
    int counts = -1;

    memset(&k, 0, sizeof(k));
    k.pubkey = pk_a;
    snprintf(k.role, sizeof(k.role), "release");
    ck_assert_int_eq(mlreg_keyring_judge(&counts, NULL, &pk_a, 5), MLREG_SIGSTATUS_UNTRUSTED);
    ck_assert_int_eq(counts, 0);
    k.state = MLREG_KEY_ACTIVE;
    ck_assert_int_eq(mlreg_keyring_judge(&counts, &k, &pk_a, 5), MLREG_SIGSTATUS_TRUSTED);
    ck_assert_int_eq(counts, 1);
    /* same key id, another public key: not this key's signature */
    ck_assert_int_eq(mlreg_keyring_judge(&counts, &k, &pk_a_twin, 5), MLREG_SIGSTATUS_UNTRUSTED);
    ck_assert_int_eq(counts, 0);
    k.state = MLREG_KEY_RETIRED;
    k.revoked_ns = 100;
    ck_assert_int_eq(mlreg_keyring_judge(&counts, &k, &pk_a, 99), MLREG_SIGSTATUS_RETIRED);
    ck_assert_int_eq(counts, 1);
    ck_assert_int_eq(mlreg_keyring_judge(&counts, &k, &pk_a, 100), MLREG_SIGSTATUS_RETIRED);
    ck_assert_int_eq(counts, 0);
    ck_assert_int_eq(mlreg_keyring_judge(&counts, &k, &pk_a, 101), MLREG_SIGSTATUS_RETIRED);
    ck_assert_int_eq(counts, 0);
    k.state = MLREG_KEY_COMPROMISED;
    ck_assert_int_eq(mlreg_keyring_judge(&counts, &k, &pk_a, 1), MLREG_SIGSTATUS_COMPROMISED);
    ck_assert_int_eq(counts, 0);
    ck_assert_str_eq(mlreg_sigstatus_name(MLREG_SIGSTATUS_RETIRED), "retired");
    ck_assert_str_eq(mlreg_sigstatus_name(MLREG_SIGSTATUS_UNTRUSTED), "untrusted");
}
END_TEST

START_TEST(test_keyring_judge_counts_only_keys_whose_role_signs_releases)
{
    static const char *const others[] = {"approver", "releases", "ops", "release-bot", ""};
    mlreg_keyring_key k;
    int counts = -1;

    ck_assert_int_eq(mlreg_key_role_signs_releases("release"), 1);
    ck_assert_int_eq(mlreg_key_role_signs_releases(NULL), 0);
    memset(&k, 0, sizeof(k));
    k.pubkey = pk_a;
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        ck_assert_int_eq(mlreg_key_role_signs_releases(others[i]), 0);
        snprintf(k.role, sizeof(k.role), "%s", others[i]);
        /* the key is trusted, its signature is valid, and it does not count */
        k.state = MLREG_KEY_ACTIVE;
        ck_assert_int_eq(mlreg_keyring_judge(&counts, &k, &pk_a, 5), MLREG_SIGSTATUS_TRUSTED);
        ck_assert_int_eq(counts, 0);
        k.state = MLREG_KEY_RETIRED;
        k.revoked_ns = 100;
        ck_assert_int_eq(mlreg_keyring_judge(&counts, &k, &pk_a, 99), MLREG_SIGSTATUS_RETIRED);
        ck_assert_int_eq(counts, 0);
    }
}
END_TEST

static Suite *keyring_suite(void)
{
    Suite *s = suite_create("keyring");
    TCase *tc = tcase_create("keyring");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_keyring_config_key_is_listed_with_source_config_and_one_trust_event);
    tcase_add_test(tc, test_keyring_drops_a_config_key_removed_from_the_config);
    tcase_add_test(
        tc, test_keyring_config_key_removed_renamed_and_listed_again_each_leave_one_audit_entry);
    tcase_add_test(tc, test_keyring_refuses_a_config_key_whose_id_is_stored_with_another_key);
    tcase_add_test(tc, test_keyring_refuses_a_config_name_used_by_a_runtime_key);
    tcase_add_test(tc, test_keyring_refuses_duplicate_config_keys);
    tcase_add_test(tc, test_keyring_trust_adds_then_is_a_no_op_for_the_same_key);
    tcase_add_test(tc, test_keyring_trust_refuses_conflicts_and_bad_input);
    tcase_add_test(tc, test_keyring_refuses_one_public_key_under_a_second_key_id);
    tcase_add_test(tc, test_keyring_revoke_retired_escalates_to_compromised_never_back);
    tcase_add_test(tc, test_keyring_revoke_refuses_unknown_keys_and_bad_input);
    tcase_add_test(tc, test_keyring_revocation_outlives_restart_with_the_key_still_in_the_config);
    tcase_add_test(tc, test_keyring_find_reports_state_and_revocation_time);
    tcase_add_test(tc, test_keyring_judge_applies_the_counting_rule);
    tcase_add_test(tc, test_keyring_judge_counts_only_keys_whose_role_signs_releases);
    tcase_add_test(tc, test_keyring_reload_adds_and_drops_config_keys_with_one_entry_each);
    tcase_add_test(tc, test_keyring_reload_refused_keeps_the_keys_in_force);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed;
    SRunner *sr = srunner_create(keyring_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
