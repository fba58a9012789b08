/* release.h: what pull, verify, sign and push share about one release on a
 * registry: fetching and checking its manifest, streaming its blobs through
 * SHA-256, loading a signing key, signing and attaching, and judging the
 * release's signatures against trusted keys. Internal to cli/.
 *
 * Functions return 0 or a negative MLREG_E* code with the message set.
 * Verification failures are MLREG_EMISMATCH (exit 1).
 */
#ifndef MLREG_CLI_RELEASE_H
#define MLREG_CLI_RELEASE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "args.h"
#include "client.h"
#include "mlreg/digest.h"
#include "mlreg/oci.h"
#include "mlreg/release_sig.h"
#include "mlreg/sign.h"

#define CLI_MANIFEST_MAX (16u * 1024 * 1024)
#define CLI_API_MAX      (64u * 1024 * 1024)
#define CLI_PROGRESS_MIN (1u << 20) /* smaller transfers draw no progress */
/* Names pull writes in DIR besides the release's files; no title may take
 * them (mlreg_title_validate refuses both). */
#define CLI_LOCK_NAME  MLREG_LOCK_FILE_NAME
#define CLI_TMP_PREFIX MLREG_PULL_TMP_PREFIX

/** One file of a release; strings point into the parsed manifest. */
typedef struct {
    const char *title;
    const char *kind;
    const char *digest_str;
    mlreg_digest digest;
    uint64_t size;
    /** A chunk index layer (kind MLREG_KIND_CHUNK_INDEX, mlreg/chunk_index.h):
     *  not a file of the release; pull never writes it. */
    int is_chunk_index;
    /** MLREG_ANN_CHUNK_INDEX of a file layer, MLREG_ANN_CHUNKS_OF of an
     *  index layer; NULL when absent. Not checked beyond being a string. */
    const char *chunk_index;
    const char *chunks_of;
} cli_layer;

/** A release manifest fetched from the registry and checked. */
typedef struct {
    char *bytes; /**< the manifest bytes exactly as served (their sha256 is digest) */
    size_t len;
    char digest[MLREG_DIGEST_STRLEN + 1];
    json_t *json;
    const char *version; /**< org.mlreg.version, points into json */
    cli_layer *layers;
    size_t nlayers;
} cli_release;

void cli_release_init(cli_release *r);
void cli_release_clear(cli_release *r);

/**
 * GETs the manifest of @p ref, checks its bytes against the pinned digest
 * and the Docker-Content-Digest header, and that it is a release of
 * @p ref's model (and version) whose titles are safe file names, kinds
 * known, digests and sizes well-formed. Fills @p r (cleared first).
 * MLREG_ENOTFOUND (no such release), MLREG_EMISMATCH (a manifest we cannot
 * trust), transport errors.
 */
int cli_release_fetch(cli_release *r, cli_client *c, const cli_ref *ref);

/**
 * Checks manifest bytes held locally (a lock file's copy) as
 * cli_release_fetch() checks fetched ones: @p len bytes at @p bytes must hash
 * to @p ref's pinned digest and be a release of its model and version.
 * Fills @p r (cleared first) with a copy of the bytes. MLREG_EMISMATCH
 * naming what is wrong, MLREG_ENOMEM.
 */
int cli_release_parse(cli_release *r, const cli_ref *ref, const char *bytes, size_t len);

/**
 * As cli_release_fetch(), for a release the registry answered 410 (purged)
 * for: the manifest bytes it keeps as the evidence of its audit entries,
 * from the release API. @p ref must name a version (MLREG_EGONE otherwise).
 */
int cli_release_fetch_purged(cli_release *r, cli_client *c, const cli_ref *ref);

/**
 * GETs one blob of @p model and checks its size and SHA-256 against @p l,
 * streaming: with @p fd >= 0 the bytes are also written there, otherwise
 * only hashed (nothing kept). MLREG_EMISMATCH names the file.
 */
int cli_blob_fetch(cli_client *c, const char *model, const cli_layer *l, int fd);

/* ---- signing ----------------------------------------------------------------- */

/**
 * Loads the secret key at @p path, asking for its password (MLREG_KEY_PASSWORD
 * or the terminal) only when it is encrypted. MLREG_EAUTH for a wrong or
 * missing password; MLREG_EIO when the file is missing or unreadable;
 * MLREG_EINVALID. *out is freed with mlreg_seckey_free().
 */
int cli_seckey_load(mlreg_seckey **out, const char *path);

/**
 * Signs @p len bytes of @p manifest (the release @p model / @p version /
 * @p digest) with the release trusted comment and the time now. *out is the
 * `.minisig` text (free()).
 */
int cli_release_sign(char **out, const mlreg_seckey *sk, const char *model, const char *version,
                     const char *digest, const void *manifest, size_t len);

/**
 * POSTs @p sig_text with the public key @p pk to the release's signatures.
 * *trusted_out (may be NULL) receives the answer's "trusted". 201 and 200
 * (already attached) are success; *created_out (may be NULL) says which.
 */
int cli_sig_attach(int *created_out, int *trusted_out, cli_client *c, const char *model,
                   const char *version, const char *sig_text, const mlreg_pubkey *pk);

/**
 * GETs the signatures of @p model / @p version (the JSON of the contract)
 * into *out (json_decref()).
 */
int cli_sigs_get(json_t **out, cli_client *c, const char *model, const char *version);

/* 1 when @p sigs (the registry's list) holds a signature that verifies
 * with @p pk over @p bytes (the manifest) and whose trusted comment names
 * model, version and digest; 0 otherwise (clears the error message). */
int cli_sigs_signed_by(json_t *sigs, const mlreg_pubkey *pk, const char *model, const char *version,
                       const char *digest, const char *bytes, size_t len);

/* ---- checking signatures ------------------------------------------------------- */

/** The verdict on every signature of one release. */
typedef struct {
    mlreg_sigcheck *checks;
    size_t n;
    size_t valid; /**< how many count */
    /** The registry's answer the checks judge: checks[i] is the verdict on
     *  its "signatures"[i] ({"signature", "public_key", "attached_at", ...});
     *  NULL before a check. Freed by cli_sigreport_free(). */
    json_t *list;
} cli_sigreport;

void cli_sigreport_free(cli_sigreport *rep);

/**
 * Fetches the signatures of @p r (a release of @p model) and judges each one
 * against @p ts (mlreg_trustset_check, told the `public_key` the registry
 * lists for it, so that a signature by another key that carries a trusted
 * key id is ignored, not taken for tampering). A key the registry itself reports
 * as revoked and not counting does not count either: a registry may
 * withhold trust, never grant it. Transport and server errors are returned;
 * the verdicts go to @p rep (cleared first).
 */
int cli_sigs_check(cli_sigreport *rep, cli_client *c, const char *model, const cli_release *r,
                   const mlreg_trustset *ts);

/**
 * The overall answer for @p rep: 0 when at least one signature counts and
 * none is INVALID; otherwise MLREG_EMISMATCH with the reason ("no signature
 * by a trusted key", "signature by X does not match the manifest", ...).
 */
int cli_sigreport_verdict(const cli_sigreport *rep);

/* ---- trusted-key options ------------------------------------------------------- */

/**
 * --trusted-key FILE (repeatable) and --keyring FILE, as parsed. Set up with
 * cli_trust_opts_init(), filled by cli_trust_opt(), released with
 * cli_trust_opts_clear(); the strings are argv's.
 */
typedef struct {
    const char **keys;
    size_t nkeys, cap;
    const char *keyring;
} cli_trust_opts;

/** Empties @p o: no key, no keyring, nothing allocated. */
void cli_trust_opts_init(cli_trust_opts *o);

/** Frees what cli_trust_opt() allocated and empties @p o again. */
void cli_trust_opts_clear(cli_trust_opts *o);

/** 1 when @p o names a trusted key or a keyring, 0 otherwise. */
int cli_trust_opts_given(const cli_trust_opts *o);

/**
 * Consumes --trusted-key / --keyring at argv[*i] into @p o. 1 consumed,
 * 0 not ours, -1 with the message set (missing value, --keyring twice, out
 * of memory): a usage error.
 */
int cli_trust_opt(cli_trust_opts *o, int *i, int argc, char **argv);

/**
 * Builds the trust set from @p o's files into *out (mlreg_trustset_free()).
 * Every failure is a local one, an unreadable, malformed or empty key file,
 * and its code is one cli_fail() turns into exit 2: MLREG_EIO or
 * MLREG_EINVALID naming the file, MLREG_ENOMEM.
 */
int cli_trust_load(mlreg_trustset **out, const cli_trust_opts *o);

/**
 * Sets the message to "<fmt...>: <the current message>" and returns @p code.
 * (mlreg_error_set may not be given mlreg_error_last() itself: both are the
 * same buffer.)
 */
int cli_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
