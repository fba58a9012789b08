/* helpers.h: what the Check suites share (tests/unit/helpers.c, linked into
 * every suite): temp dirs and their removal, the test vector files, a real
 * registry in a temp dir with a fresh key trusted as "release-bot", and an
 * in-memory blob backend with call counters and fault switches.
 *
 * Every function fails the running test (ck_assert) instead of returning an
 * error: they are fixtures, not library code. */
#ifndef MLREG_TESTS_UNIT_HELPERS_H
#define MLREG_TESTS_UNIT_HELPERS_H

#include "mlreg/auth.h"
#include "mlreg/common.h"
#include "mlreg/config.h"
#include "mlreg/gates.h"
#include "mlreg/registry.h"
#include "mlreg/sign.h"
#include "mlreg/sys/blob_backend.h"

#include <stddef.h>

/* ---- files ----------------------------------------------------------------- */

/** Room for a th_tmpdir() name of a suite name up to 32 characters. */
#define TH_DIR_MAX 64

/**
 * Makes a new private directory "/tmp/mlreg-check-<suite>-XXXXXX" (mkdtemp)
 * and writes its name to @p dir (@p size bytes, TH_DIR_MAX is enough).
 * Remove it with th_rm_rf().
 */
void th_tmpdir(char *dir, size_t size, const char *suite);

/**
 * Removes the tree at @p path, giving each directory back its owner's
 * permissions first so that a test which chmod'ed one to 000 still cleans
 * up. A missing @p path is not an error; symlinks are removed, not followed.
 */
void th_rm_rf(const char *path);

/** The source tree: $MLREG_ROOT (tests/run.sh sets it) or ".". */
const char *th_root_dir(void);

/**
 * The path of tests/vectors/<rel> under th_root_dir(). The string lives in
 * one of 8 static buffers that later calls reuse: copy it to keep it past
 * the next 7 calls.
 */
const char *th_vector_path(const char *rel);

/**
 * Reads the whole file @p path into a NUL-terminated buffer the caller
 * frees; its length (without the NUL) goes to @p len_out unless NULL.
 * Fails the test, naming the file, when it cannot be read.
 */
char *th_slurp(size_t *len_out, const char *path);

/* ---- a registry in a temp dir ----------------------------------------------- */

/** How th_registry_setup() opens the registry; all zero is the default. */
typedef struct {
    size_t map_size;           /**< LMDB map size; 0 = 64 MiB */
    size_t max_manifest_bytes; /**< 0 = the registry's default */
    /** Blob backend for the first open; NULL = the fs backend in the dir.
     *  The registry takes it (freed with the registry, even on failure). */
    mlreg_blob_backend *backend;
    /** Minisign secret key file (unencrypted) to trust as "release-bot";
     *  NULL = a freshly generated key. */
    const char *key_file;
    int keyless; /**< nonzero: no release key and no trusted keys at all */
    /** More config keys to trust after "release-bot" (copied, at most
     *  TH_MAX_KEYS - 1; their strings must outlive the fixture). */
    const mlreg_config_key *extra_keys;
    size_t n_extra_keys;
} th_registry_opts;

/** Config keys a th_registry can trust. */
#define TH_MAX_KEYS 4

/**
 * A registry (fs metadata, LMDB) in its own temp dir. @c keys[0] is the
 * "release-bot" key (role "release", file "release.pub") whose secret half
 * is @c sk. A suite may change @c keys / @c n_keys, @c opts.backend or
 * @c opts.max_manifest_bytes and call th_registry_open() again after freeing
 * @c reg.
 */
typedef struct {
    char dir[TH_DIR_MAX];
    mlreg_registry *reg;                /**< owned; NULL after th_registry_teardown */
    mlreg_seckey *sk;                   /**< owned; NULL when keyless */
    mlreg_config_key keys[TH_MAX_KEYS]; /**< strings are static, not owned */
    size_t n_keys;
    th_registry_opts opts;
} th_registry;

/**
 * Initialises @p fx: sodium_init(), a temp dir named after @p suite, the
 * release key, then opens @c fx->reg with @p opts (NULL = defaults).
 */
void th_registry_setup(th_registry *fx, const char *suite, const th_registry_opts *opts);

/**
 * Opens @c fx->reg on @c fx->dir with @c fx->opts and the first
 * @c fx->n_keys of @c fx->keys. The old @c fx->reg is overwritten, not
 * freed: a test that reopens has freed it already. @c fx->opts.backend is handed to
 * the registry and reset to NULL, so a later open uses the fs backend
 * unless the suite sets another.
 */
void th_registry_open(th_registry *fx);

/** Frees the registry and the key and removes the dir; @p fx is zeroed. */
void th_registry_teardown(th_registry *fx);

/* ---- content and callers -------------------------------------------------- */

/**
 * Stores @p len bytes of @p data in @p reg's blob store and links the blob
 * into @p repo on behalf of @p who (NULL: no caller named in the audit
 * entry); its digest goes to @p out.
 */
void th_put_blob_n(mlreg_digest *out, mlreg_registry *reg, const char *repo, const char *who,
                   const void *data, size_t len);

/** th_put_blob_n() of the string @p text without its NUL. */
void th_put_blob(mlreg_digest *out, mlreg_registry *reg, const char *repo, const char *who,
                 const char *text);

/**
 * The release manifest of @p model @p version (compact JSON, caller frees),
 * not pushed: the empty config, a weights layer "weights of <version>"
 * (model.bin) and, unless @p report is NULL, an eval report layer
 * (eval.json) holding the JSON text @p report. Its blobs are stored in
 * @p reg and linked into @p model on behalf of @p who.
 */
char *th_release_body(mlreg_registry *reg, const char *model, const char *version, const char *who,
                      const char *report);

/**
 * Damages blob @p d of the fs backend rooted at @p dir in place, as a disk
 * would: flips the bits of its byte at @p offset, or with @p offset -1
 * removes the file. Fails the test when the file is not there.
 */
void th_fs_damage_blob(const char *dir, const mlreg_digest *d, long offset);

/**
 * Replaces @p *pol (freed first; may be NULL) with the policy whose gates
 * are the JSON object @p gates, e.g. {"staging":[{"metric":"accuracy",
 * "min":0.85}]}. The caller frees it with mlreg_policy_free().
 */
void th_use_gates(mlreg_policy **pol, const char *gates);

/**
 * mlreg_stage_get() of what @p stage of @p model holds now, checked against
 * the rendered answer the server sends (mlreg_stage_get_text(), kept
 * between commits): asked twice, the second time from the kept answer,
 * both must be the JSON answer's bytes, whatever commit came before.
 * Returns mlreg_stage_get()'s code; *out as it leaves it.
 */
int th_stage_now(json_t **out, mlreg_registry *reg, const mlreg_policy *pol, const char *model,
                 const char *stage);

/**
 * The identity of the bearer token @p token. On the first call (@p *auth
 * NULL) makes @p *auth, owned by the caller (mlreg_auth_free), with that
 * one token, named after itself, holding the JSON array @p roles such as
 * ["push"]; later calls only authenticate. The identity lives as long as
 * @p *auth.
 */
const mlreg_identity *th_identity(mlreg_auth **auth, const char *token, const char *roles);

/* ---- an in-memory blob backend ------------------------------------------ */

/** Blobs a th_fake holds; a commit past this returns MLREG_ENOSPACE. */
#define TH_FAKE_MAX_BLOBS 64

/** A blob the fake holds; tests may edit @c data in place. */
typedef struct {
    mlreg_digest digest;
    unsigned char *data;
    size_t size;
    int64_t modified; /**< Unix seconds of the commit; tests may change it */
} th_fake_blob;

/**
 * A blob backend that keeps blobs in memory, counts every call and fails on
 * demand. It trusts the digest the front end passes to commit (the front end
 * checks it). Call counters are plain ints that tests read and reset.
 */
typedef struct {
    mlreg_blob_backend parent;
    th_fake_blob blobs[TH_FAKE_MAX_BLOBS];
    size_t nblobs;
    /* calls, each counted on entry */
    int n_exists, n_stat, n_open_read, n_open_write, n_write, n_commit, n_abort, n_remove;
    int n_quarantine; /**< quarantine calls; the bytes are dropped, not kept */
    int fail_writes;  /**< nonzero: writer writes return MLREG_ENOSPACE */
    int fail_commits; /**< nonzero: commits store nothing and return MLREG_EIO */
    int *freed_flag;  /**< set to 1 by the backend's free, unless NULL */
} th_fake;

/**
 * A new empty fake whose @c parent.version is @p version
 * (MLREG_BLOB_BACKEND_VERSION, or another value to test the version check). Ownership passes to
 * whoever frees @c parent (a blob store or a registry); @p freed_flag,
 * unless NULL, tells the test it happened.
 */
th_fake *th_fake_new(unsigned int version, int *freed_flag);

/** The blob of @p f with digest @p d, or NULL; valid until it is removed. */
th_fake_blob *th_fake_find(th_fake *f, const mlreg_digest *d);

/** Sets every call counter of @p f to 0. */
void th_fake_reset_counters(th_fake *f);

#endif
