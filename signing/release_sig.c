/* release_sig.c: the client's view of release signatures (release_sig.h):
 * the trusted comment that binds a signature to one release, a set of
 * trusted keys with their revocations, and the verdict on one signature.
 *
 * No JSON and no I/O here: cli/ reads keyring files and hands each entry to
 * mlreg_trustset_add_entry().
 *
 * The verdict only ever uses keys from the trusted set: the public key a
 * registry sends beside a signature is never looked at, so a registry can
 * not vouch for a key. Revocation times are compared with the registry's
 * attach time, the only time the contract defines for "attached before".
 */
#include "mlreg/release_sig.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/text.h"
#include "mlreg/time.h"

typedef struct {
    mlreg_pubkey pk;
    char *name;
    mlreg_revocation rev;
    int64_t revoked_sec;
    int32_t revoked_nsec;
    char revoked_at[40]; /* as given, for messages */
} trusted_key;

struct mlreg_trustset {
    trusted_key *keys;
    size_t n, cap;
};

/* ---- trusted comment ------------------------------------------------------ */

static int printable_token(const char *s)
{
    if (!s || !*s) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return 0;
    return 1;
}

int mlreg_release_comment_format(char **out, const char *model, const char *version,
                                 const char *digest, int64_t timestamp)
{
    size_t n;

    *out = NULL;
    if (!printable_token(model) || !printable_token(version) || !printable_token(digest))
        return mlreg_error_set(MLREG_EINVALID,
                               "release comment: model, version and digest must be non-empty "
                               "and hold no space or control character");
    n = strlen(MLREG_RELEASE_COMMENT_PREFIX) + strlen(model) + strlen(version) + strlen(digest) +
        64;
    if (!(*out = malloc(n))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    snprintf(*out, n,
             MLREG_RELEASE_COMMENT_PREFIX "model=%s version=%s digest=%s timestamp=%" PRId64, model,
             version, digest, timestamp);
    return 0;
}

/* Copies at most 80 bytes of @p s (up to @p len) into @p buf for a message,
 * with every character that breaks the text rule (text.h: C0, DEL, C1,
 * bytes that are not UTF-8) replaced by '?'; "..." marks a cut. */
static void quote(char *buf, size_t cap, const char *s, size_t len)
{
    size_t room = cap - 3 < 81 ? cap - 3 : 81;

    if (mlreg_text_sanitize(buf, room, s, len) < len) strcat(buf, "...");
}

/* Checks "<key>=<want>" at *p, followed by ' ' or the end; advances *p. */
static int field(const char **p, const char *key, const char *want, const char *comment)
{
    size_t klen = strlen(key), vlen;
    const char *v;
    char got[96], exp[96];

    if (strncmp(*p, key, klen) || (*p)[klen] != '=') {
        quote(got, sizeof(got), comment, strlen(comment));
        return mlreg_error_set(MLREG_EMISMATCH,
                               "trusted comment is not an mlreg release comment (no %s= where "
                               "expected): '%s'",
                               key, got);
    }
    v = *p + klen + 1;
    vlen = strcspn(v, " ");
    if (vlen != strlen(want) || memcmp(v, want, vlen)) {
        quote(got, sizeof(got), v, vlen);
        quote(exp, sizeof(exp), want, strlen(want));
        return mlreg_error_set(MLREG_EMISMATCH, "trusted comment names %s %s, not %s", key, got,
                               exp);
    }
    *p = v + vlen;
    return 0;
}

int mlreg_release_comment_check(const char *comment, const char *model, const char *version,
                                const char *digest)
{
    const char *p = comment;
    char got[96];
    int error;

    if (strncmp(p, MLREG_RELEASE_COMMENT_PREFIX, strlen(MLREG_RELEASE_COMMENT_PREFIX))) {
        quote(got, sizeof(got), comment, strlen(comment));
        return mlreg_error_set(MLREG_EMISMATCH,
                               "trusted comment is not an mlreg release comment: '%s'", got);
    }
    p += strlen(MLREG_RELEASE_COMMENT_PREFIX);
    if ((error = field(&p, "model", model, comment)) < 0) return error;
    if (*p++ != ' ')
        return mlreg_error_set(MLREG_EMISMATCH,
                               "trusted comment is not an mlreg release comment: no version");
    if ((error = field(&p, "version", version, comment)) < 0) return error;
    if (*p++ != ' ')
        return mlreg_error_set(MLREG_EMISMATCH,
                               "trusted comment is not an mlreg release comment: no digest");
    if ((error = field(&p, "digest", digest, comment)) < 0) return error;
    /* Then nothing, or " key=value" fields, single spaces, non-empty keys
     * and values. */
    while (*p) {
        size_t n;
        const char *eq;
        if (*p != ' ') goto bad;
        p++;
        n = strcspn(p, " ");
        eq = memchr(p, '=', n);
        if (!eq || eq == p || eq == p + n - 1) goto bad;
        if (mlreg_text_span(p, n) != n) goto bad;
        p += n;
    }
    return 0;
bad:
    return mlreg_error_set(MLREG_EMISMATCH,
                           "trusted comment has malformed fields after the digest");
}

/* ---- trust set ------------------------------------------------------------- */

int mlreg_trustset_new(mlreg_trustset **out)
{
    if (!(*out = calloc(1, sizeof(**out)))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

void mlreg_trustset_free(mlreg_trustset *ts)
{
    if (!ts) return;
    for (size_t i = 0; i < ts->n; i++)
        free(ts->keys[i].name);
    free(ts->keys);
    free(ts);
}

size_t mlreg_trustset_count(const mlreg_trustset *ts)
{
    return ts->n;
}

static trusted_key *find_key(const mlreg_trustset *ts, const mlreg_keyid *id)
{
    for (size_t i = 0; i < ts->n; i++)
        if (mlreg_keyid_equal(&ts->keys[i].pk.id, id)) return &ts->keys[i];
    return NULL;
}

/* 1 when (s1, n1) is strictly before (s2, n2). */
static int time_before(int64_t s1, int32_t n1, int64_t s2, int32_t n2)
{
    return s1 < s2 || (s1 == s2 && n1 < n2);
}

int mlreg_trustset_add(mlreg_trustset *ts, const mlreg_pubkey *pk, const char *name,
                       mlreg_revocation rev, const char *revoked_at)
{
    trusted_key k, *old;
    char id[MLREG_KEYID_HEXLEN + 1];
    int error;

    memset(&k, 0, sizeof(k));
    k.pk = *pk;
    k.rev = rev;
    mlreg_keyid_format(id, &pk->id);
    if (rev != MLREG_REVOKE_NONE) {
        if (rev != MLREG_REVOKE_RETIRED && rev != MLREG_REVOKE_COMPROMISED)
            return mlreg_error_set(MLREG_EINVALID, "key %s: unknown revocation", id);
        if (!revoked_at ||
            (error = mlreg_time_parse(&k.revoked_sec, &k.revoked_nsec, revoked_at)) < 0)
            return mlreg_error_set(MLREG_EINVALID, "key %s: revoked without a valid revoked_at",
                                   id);
        quote(k.revoked_at, sizeof(k.revoked_at), revoked_at, strlen(revoked_at));
    }
    if ((old = find_key(ts, &pk->id))) {
        if (!mlreg_pubkey_equal(&old->pk, pk))
            return mlreg_error_set(MLREG_EINVALID,
                                   "key id %s appears with two different public keys", id);
        /* The stricter revocation wins. */
        if (k.rev > old->rev ||
            (k.rev == MLREG_REVOKE_RETIRED && old->rev == MLREG_REVOKE_RETIRED &&
             time_before(k.revoked_sec, k.revoked_nsec, old->revoked_sec, old->revoked_nsec))) {
            old->rev = k.rev;
            old->revoked_sec = k.revoked_sec;
            old->revoked_nsec = k.revoked_nsec;
            memcpy(old->revoked_at, k.revoked_at, sizeof(k.revoked_at));
        }
        return 0;
    }
    if (!(k.name = strdup(name && *name ? name : id)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 4;
        trusted_key *p = realloc(ts->keys, cap * sizeof(*p));
        if (!p) {
            free(k.name);
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        }
        ts->keys = p;
        ts->cap = cap;
    }
    ts->keys[ts->n++] = k;
    return 0;
}

int mlreg_trustset_add_entry(mlreg_trustset *ts, const char *public_key, const char *key_id,
                             const char *name, const char *revocation, const char *revoked_at)
{
    mlreg_revocation rev = MLREG_REVOKE_NONE;
    mlreg_pubkey pk;
    mlreg_keyid kid;
    int error;

    if (!public_key) return mlreg_error_set(MLREG_EINVALID, "no public_key");
    if ((error = mlreg_pubkey_parse(&pk, public_key, strlen(public_key))) < 0) return error;
    if (key_id &&
        (mlreg_keyid_parse(&kid, key_id, strlen(key_id)) < 0 || !mlreg_keyid_equal(&kid, &pk.id)))
        return mlreg_error_set(MLREG_EINVALID, "key_id does not match its public_key");
    if (revocation) {
        if (!strcmp(revocation, "retired"))
            rev = MLREG_REVOKE_RETIRED;
        else if (!strcmp(revocation, "compromised"))
            rev = MLREG_REVOKE_COMPROMISED;
        else
            return mlreg_error_set(MLREG_EINVALID,
                                   "revocation must be null, \"retired\" or \"compromised\"");
    } else if (revoked_at) {
        /* A revocation time without a kind: refuse rather than guess. */
        return mlreg_error_set(MLREG_EINVALID, "revoked_at without revocation");
    }
    return mlreg_trustset_add(ts, &pk, name, rev, revoked_at);
}

/* ---- verdict ------------------------------------------------------------------ */

const char *mlreg_sigcheck_status_name(mlreg_sigcheck_status status)
{
    switch (status) {
    case MLREG_SIGCHECK_VALID: return "valid";
    case MLREG_SIGCHECK_UNTRUSTED: return "untrusted";
    case MLREG_SIGCHECK_REVOKED: return "revoked";
    default: return "invalid";
    }
}

static int verdict(mlreg_sigcheck *out, mlreg_sigcheck_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int verdict(mlreg_sigcheck *out, mlreg_sigcheck_status status, const char *fmt, ...)
{
    va_list ap;

    out->status = status;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
    return 0;
}

/* Whether @p sig is a valid signature by @p signer_key (the key the registry
 * says made it) and that key is not the trusted key @p k that shares its key
 * id. A key id is 8 bytes anyone can put on a fresh key, so such a signature
 * is someone else's: it is ignored, not taken for a tampered signature by
 * the trusted key (which would fail the whole release). The registry's word
 * is checked, so it can only ever take trust away from a signature that
 * would not have verified with the trusted key anyway. */
static int by_another_key(const mlreg_sig *sig, const trusted_key *k, const char *signer_key,
                          const void *manifest, size_t len)
{
    mlreg_pubkey signer;
    int other;

    if (!signer_key || mlreg_pubkey_parse(&signer, signer_key, strlen(signer_key)) < 0) {
        mlreg_error_clear();
        return 0;
    }
    other =
        !mlreg_pubkey_equal(&signer, &k->pk) && mlreg_sig_verify(sig, &signer, manifest, len) == 0;
    mlreg_error_clear();
    return other;
}

int mlreg_trustset_check(mlreg_sigcheck *out, const mlreg_trustset *ts, const char *sig_text,
                         size_t sig_len, const char *signer_key, const char *attached_at,
                         const void *manifest, size_t len, const char *model, const char *version,
                         const char *digest)
{
    int error = 0;
    mlreg_sig *sig = NULL;
    const trusted_key *k;
    const char *id;
    int64_t at_sec;
    int32_t at_nsec;
    char at[48];

    memset(out, 0, sizeof(*out));
    if ((error = mlreg_sig_parse(&sig, sig_text, sig_len)) < 0) {
        if (error == MLREG_ENOMEM) return error;
        error = verdict(out, MLREG_SIGCHECK_INVALID, "%s", mlreg_error_last());
        goto done;
    }
    mlreg_keyid_format(out->key_id, mlreg_sig_key_id(sig));
    id = out->key_id;
    if (!(k = find_key(ts, mlreg_sig_key_id(sig)))) {
        error = verdict(out, MLREG_SIGCHECK_UNTRUSTED, "key %s is not a trusted key", id);
        goto done;
    }
    if (by_another_key(sig, k, signer_key, manifest, len)) {
        error = verdict(out, MLREG_SIGCHECK_UNTRUSTED,
                        "signature by another key that carries the key id %s of the trusted "
                        "key %s",
                        id, k->name);
        goto done;
    }
    out->name = k->name;
    if (k->rev == MLREG_REVOKE_COMPROMISED) {
        error = verdict(out, MLREG_SIGCHECK_REVOKED,
                        "key %s was revoked as compromised at %s; none of its signatures count", id,
                        k->revoked_at);
        goto done;
    }
    if ((error = mlreg_sig_check_data(sig, &k->pk, manifest, len)) < 0) {
        if (error == MLREG_ENOMEM) goto done;
        if (error == MLREG_ESIGNATURE)
            error = verdict(out, MLREG_SIGCHECK_INVALID,
                            "signature by %s does not match the manifest", id);
        else
            error =
                verdict(out, MLREG_SIGCHECK_INVALID, "signature by %s: %s", id, mlreg_error_last());
        goto done;
    }
    if (mlreg_release_comment_check(mlreg_sig_trusted_comment(sig), model, version, digest) < 0) {
        error = verdict(out, MLREG_SIGCHECK_INVALID, "signature by %s: %s", id, mlreg_error_last());
        goto done;
    }
    if (k->rev == MLREG_REVOKE_RETIRED) {
        if (!attached_at || mlreg_time_parse(&at_sec, &at_nsec, attached_at) < 0) {
            error = verdict(out, MLREG_SIGCHECK_REVOKED,
                            "key %s was retired at %s and the registry gives no valid attach "
                            "time for this signature",
                            id, k->revoked_at);
            goto done;
        }
        quote(at, sizeof(at), attached_at, strlen(attached_at));
        if (!time_before(at_sec, at_nsec, k->revoked_sec, k->revoked_nsec)) {
            error = verdict(out, MLREG_SIGCHECK_REVOKED,
                            "key %s was retired at %s; this signature was attached at %s, "
                            "after the retirement",
                            id, k->revoked_at, at);
            goto done;
        }
        error = verdict(out, MLREG_SIGCHECK_VALID,
                        "valid (key retired at %s, signature attached before, at %s)",
                        k->revoked_at, at);
        goto done;
    }
    error = verdict(out, MLREG_SIGCHECK_VALID, "valid");
done:
    mlreg_sig_free(sig);
    return error;
}
