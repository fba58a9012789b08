/* audit_verify.c: the offline checks of the audit log: one entry, the whole
 * log against a signed checkpoint, a remembered checkpoint against a newer
 * one (include/mlreg/audit_verify.h, docs/audit-api.md). Bundles are checked
 * in audit_bundle.c, with these functions.
 *
 * The registry is not trusted. Entries are checked one by one (canonical
 * JSON, seq = position, prev = hash of the previous entry's bytes) and the
 * Merkle root is recomputed. When the root differs, or entries are missing,
 * the first entry that differs from the signed tree is found by bisection:
 * the prefix of m entries agrees with the signed tree exactly when the
 * consistency proof from m to the checkpoint size verifies with our root of
 * those m entries and the checkpoint root. A registry can refuse or garble
 * proofs, which only moves the blame earlier; it cannot make a tampered log
 * pass, because the root is ours and the checkpoint is signed.
 *
 * This module lives in registry/, not signing/: besides the Merkle,
 * checkpoint and DSSE code of signing/ it needs the registry's own rules for
 * what it checks, the audit entry hash (mlreg_audit_entry_hash, audit.c)
 * and the release-title rules (mlreg_title_validate, mlreg_titles_check,
 * core/names.c). It uses
 * no server and no metadata store, never prints and never exits.
 */
#include "mlreg/audit_verify.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/canonical_json.h"
#include "mlreg/common.h"
#include "mlreg/text.h"

#include "audit_verify_internal.h"

/* ---- small helpers ------------------------------------------------------------------ */

void mlreg_audit_entries_init(mlreg_audit_entries *e)
{
    memset(e, 0, sizeof(*e));
}

void mlreg_audit_entries_clear(mlreg_audit_entries *e)
{
    for (uint64_t i = 0; i < e->n; i++)
        free(e->text[i]);
    free(e->text);
    free(e->len);
    mlreg_audit_entries_init(e);
}

int mlreg_audit_entries_add(mlreg_audit_entries *e, const char *text, size_t len)
{
    char *copy;

    if (e->n == e->cap) {
        uint64_t cap = e->cap ? e->cap * 2 : 64;
        char **t;
        size_t *l;
        if (cap > SIZE_MAX / sizeof(*t)) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        if (!(t = realloc(e->text, (size_t)cap * sizeof(*t))))
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        e->text = t;
        if (!(l = realloc(e->len, (size_t)cap * sizeof(*l))))
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        e->len = l;
        e->cap = cap;
    }
    if (!(copy = malloc(len + 1))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (len) memcpy(copy, text, len);
    copy[len] = '\0';
    e->text[e->n] = copy;
    e->len[e->n] = len;
    e->n++;
    return 0;
}

void mlreg_audit_verify__last_message(char *buf, size_t len)
{
    mlreg_text_sanitize(buf, len, mlreg_error_last(), strlen(mlreg_error_last()));
}

/* ---- one entry ---------------------------------------------------------------------- */

/* mlreg_audit_verify_entry, also saying whether the failure was the prev link
 * (*prev_bad), which points at the entry before. */
static int entry_check(const char *text, size_t len, uint64_t seq, const char *prev,
                       size_t prev_len, int *prev_bad)
{
    int error = 0;
    json_t *j = NULL, *s, *p;
    json_error_t jerr;
    char *canon = NULL, want[MLREG_AUDIT_HASH_STRLEN + 1];
    size_t clen = 0;

    *prev_bad = 0;
    if (!(j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr))) {
        error = BAD("not valid JSON: %s", jerr.text);
        goto done;
    }
    if (!json_is_object(j)) {
        error = BAD("not a JSON object");
        goto done;
    }
    if (mlreg_canonical_json(&canon, &clen, j) < 0 || clen != len || memcmp(canon, text, len)) {
        error = BAD("not canonical JSON");
        goto done;
    }
    s = json_object_get(j, "seq");
    if (!json_is_integer(s)) {
        error = BAD("seq is missing or not an integer");
        goto done;
    }
    if (json_integer_value(s) < 0 || (uint64_t)json_integer_value(s) != seq) {
        error = BAD("seq is %" JSON_INTEGER_FORMAT ", not %" PRIu64, json_integer_value(s), seq);
        goto done;
    }
    p = json_object_get(j, "prev");
    if (seq == 0) {
        if (!json_is_null(p)) {
            *prev_bad = 1;
            error = BAD("prev of entry 0 is not null");
        }
        goto done;
    }
    if ((error = mlreg_audit_entry_hash(want, prev, prev_len)) < 0) goto done;
    if (!json_is_string(p) || strcmp(json_string_value(p), want)) {
        *prev_bad = 1;
        error = BAD("prev is not the hash of entry %" PRIu64, seq - 1);
    }
done:
    free(canon);
    json_decref(j);
    return error;
}

int mlreg_audit_verify_entry(const char *text, size_t len, uint64_t seq, const char *prev,
                             size_t prev_len)
{
    int prev_bad;
    return entry_check(text, len, seq, prev, prev_len, &prev_bad);
}

/* ---- bisection ---------------------------------------------------------------------- */

/* Whether the first @p m local leaves are the first m leaves of the signed tree. */
static int prefix_agrees(int *agree, const mlreg_merkle_hash *leaves, uint64_t m,
                         const mlreg_checkpoint *cp, mlreg_audit_proof_fn fn, void *ctx)
{
    int error;
    mlreg_merkle_hash root, proof[MLREG_MERKLE_PROOF_MAX];
    size_t plen = 0;

    *agree = 0;
    if (m == 0) {
        *agree = 1;
        return 0;
    }
    if ((error = mlreg_merkle_root(&root, leaves, m)) < 0) return error;
    if (m == cp->size) {
        *agree = mlreg_merkle_hash_equal(&root, &cp->root);
        return 0;
    }
    if ((error = fn(proof, &plen, ctx, m, cp->size)) < 0) return error;
    error = mlreg_merkle_verify_consistency(m, cp->size, proof, plen, &root, &cp->root);
    if (error == 0) *agree = 1;
    if (error == 0 || error == MLREG_EMISMATCH || error == MLREG_EINVALID) {
        mlreg_error_clear();
        return 0;
    }
    return error;
}

int mlreg_audit_verify_bisect(uint64_t *out, const mlreg_merkle_hash *leaves, uint64_t n,
                              const mlreg_checkpoint *cp, mlreg_audit_proof_fn fn, void *ctx)
{
    int error, agree;
    uint64_t lo = 0, hi = n < cp->size ? n : cp->size;

    /* Agreement is monotone: a prefix of an agreeing prefix agrees. Keep
     * lo agreeing and hi not, and close in. */
    if ((error = prefix_agrees(&agree, leaves, hi, cp, fn, ctx)) < 0) return error;
    if (agree) {
        *out = hi;
        return 0;
    }
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if ((error = prefix_agrees(&agree, leaves, mid, cp, fn, ctx)) < 0) return error;
        if (agree)
            lo = mid;
        else
            hi = mid;
    }
    *out = lo;
    return 0;
}

/* ---- checkpoints ---------------------------------------------------------------------- */

int mlreg_audit_verify_checkpoint(mlreg_checkpoint *cp_out, char *origin_out, const char *text,
                                  size_t len, const mlreg_pubkey *pk)
{
    char origin[MLREG_CHECKPOINT_ORIGIN_MAX + 1], keyid[MLREG_KEYID_HEXLEN + 1], msg[512];
    int error;

    /* The origin is a function of the key (docs/audit-api.md), so a note by
     * another key is reported against the key the user trusts, not against
     * the name the note gives itself. */
    mlreg_keyid_format(keyid, &pk->id);
    snprintf(origin, sizeof(origin), "mlreg-audit/%s", keyid);
    if ((error = mlreg_checkpoint_verify(cp_out, text, len, origin, pk->pk)) < 0) {
        if (error != MLREG_EINVALID && error != MLREG_EMISMATCH) return error;
        mlreg_audit_verify__last_message(msg, sizeof(msg));
        return BAD("%s", msg);
    }
    if (origin_out) memcpy(origin_out, origin, strlen(origin) + 1);
    return 0;
}

/* The tree size of a checkpoint note, read without checking its signature:
 * for the remembered file, which is the user's own copy, so that a log cut
 * short is reported as such even when the key changed too. */
static int note_size(uint64_t *out, const char *text, size_t len)
{
    const char *p = memchr(text, '\n', len), *end = text + len;
    uint64_t v = 0;

    if (!p || ++p >= end || *p < '0' || *p > '9') return -1;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p >= end || *p != '\n') return -1;
    *out = v;
    return 0;
}

int mlreg_audit_verify_remembered(mlreg_checkpoint *old_out, const char *old_text, size_t old_len,
                                  const char *origin, const mlreg_pubkey *pk,
                                  const mlreg_checkpoint *cur, mlreg_audit_proof_fn fn, void *ctx)
{
    int error;
    mlreg_checkpoint old;
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], empty;
    size_t plen = 0;
    char msg[512];

    if ((error = mlreg_checkpoint_verify(&old, old_text, old_len, origin, pk->pk)) < 0) {
        uint64_t old_size;
        if (error != MLREG_EMISMATCH && error != MLREG_EINVALID) return error;
        mlreg_audit_verify__last_message(msg, sizeof(msg));
        if (error == MLREG_EINVALID)
            return mlreg_error_set(MLREG_EINVALID, "remembered checkpoint: %s", msg);
        if (note_size(&old_size, old_text, old_len) == 0 && old_size > cur->size)
            return BAD("log shrank from %" PRIu64 " to %" PRIu64 " entries: entry %" PRIu64
                       " is gone, and the log key changed (%s)",
                       old_size, cur->size, cur->size, msg);
        return BAD("remembered checkpoint does not verify with this log key: the log key "
                   "changed (%s)",
                   msg);
    }
    if (old_out) *old_out = old;
    if (old.size > cur->size)
        return BAD("log shrank from %" PRIu64 " to %" PRIu64 " entries: entry %" PRIu64 " is gone",
                   old.size, cur->size, cur->size);
    if (old.size == 0) {
        if ((error = mlreg_merkle_empty_root(&empty)) < 0) return error;
        if (mlreg_merkle_hash_equal(&empty, &old.root)) return 0;
    } else if (old.size == cur->size) {
        if (mlreg_merkle_hash_equal(&old.root, &cur->root)) return 0;
    } else {
        if ((error = fn(proof, &plen, ctx, old.size, cur->size)) < 0) return error;
        error = mlreg_merkle_verify_consistency(old.size, cur->size, proof, plen, &old.root,
                                                &cur->root);
        if (error == 0) return 0;
        if (error != MLREG_EMISMATCH && error != MLREG_EINVALID) return error;
    }
    return BAD("the log was rewritten: the first %" PRIu64
               " entries no longer match the remembered checkpoint",
               old.size);
}

/* ---- the whole log ---------------------------------------------------------------------- */

int mlreg_audit_verify_log(const mlreg_audit_entries *e, const mlreg_checkpoint *cp,
                           mlreg_audit_proof_fn fn, void *ctx)
{
    int error = 0, prev_bad = 0;
    uint64_t n = e->n < cp->size ? e->n : cp->size, first_bad = UINT64_MAX, m;
    mlreg_merkle_hash *leaves = NULL, root;
    char **reasons = NULL, reason[700];
    unsigned char *prev_broken = NULL;

    if (n && (!(leaves = calloc((size_t)n, sizeof(*leaves))) ||
              !(reasons = calloc((size_t)n, sizeof(*reasons))) ||
              !(prev_broken = calloc((size_t)n, 1)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        if ((error = mlreg_merkle_leaf_hash(&leaves[i], e->text[i], e->len[i])) < 0) goto done;
        if (entry_check(e->text[i], e->len[i], i, i ? e->text[i - 1] : NULL, i ? e->len[i - 1] : 0,
                        &prev_bad) < 0) {
            if (!(reasons[i] = strdup(mlreg_error_last()))) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
                goto done;
            }
            prev_broken[i] = (unsigned char)prev_bad;
            if (first_bad == UINT64_MAX) first_bad = i;
        }
    }
    mlreg_error_clear();
    if ((error = mlreg_merkle_root(&root, leaves, n)) < 0) goto done;
    if (n == cp->size && mlreg_merkle_hash_equal(&root, &cp->root)) {
        /* The signed log itself holds an entry that breaks the rules. */
        if (first_bad != UINT64_MAX)
            error = BAD("audit entry %" PRIu64 " is signed but not a valid entry: %s", first_bad,
                        reasons[first_bad]);
        goto done;
    }
    /* The log already fails here; a registry that will not answer for the
     * proofs must not turn that into "registry failing" (exit 3), which a
     * pipeline may retry or ignore. */
    if ((error = mlreg_audit_verify_bisect(&m, leaves, n, cp, fn, ctx)) < 0) {
        if (error == MLREG_ENOMEM) goto done;
        mlreg_audit_verify__last_message(reason, sizeof(reason));
        error = BAD("the audit log does not match the signed checkpoint (%" PRIu64 " of %" PRIu64
                    " entries served, root differs), and the registry gave no proof of where: %s",
                    n, cp->size, reason);
        goto done;
    }
    if (m >= cp->size) {
        error = BAD("the audit log's root differs from the checkpoint's");
        goto done;
    }
    if (m >= n)
        snprintf(reason, sizeof(reason),
                 "missing (the registry served %" PRIu64 " of the %" PRIu64 " signed entries)", n,
                 cp->size);
    else if (reasons[m] && !prev_broken[m])
        snprintf(reason, sizeof(reason), "%s", reasons[m]);
    else if (m + 1 < n && prev_broken[m + 1])
        snprintf(reason, sizeof(reason),
                 "its bytes differ from the signed leaf, and entry %" PRIu64
                 "'s prev does not match them",
                 m + 1);
    else if (reasons[m])
        snprintf(reason, sizeof(reason), "%s", reasons[m]);
    else
        snprintf(reason, sizeof(reason), "its bytes differ from the signed leaf");
    error = BAD("audit entry %" PRIu64 " does not match the signed log: %s", m, reason);
done:
    for (uint64_t i = 0; reasons && i < n; i++)
        free(reasons[i]);
    free(reasons);
    free(prev_broken);
    free(leaves);
    return error;
}
