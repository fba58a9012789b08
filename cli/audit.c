/* audit.c: `mlreg audit log` and `mlreg audit verify` (docs/audit-api.md).
 *
 * The registry is not trusted. `audit verify` takes the log key from the
 * user (--log-key) or, saying so, from the registry; checks the signed
 * checkpoint; downloads every entry the checkpoint covers; checks each one
 * (canonical JSON, seq = position, prev = hash of the previous entry's
 * bytes) and recomputes the Merkle root. When the root differs, or entries
 * are missing, the first entry that differs from the signed tree is found
 * by bisection: the prefix of m entries agrees with the signed tree exactly
 * when the consistency proof from m to the checkpoint size verifies with
 * our root of those m entries and the checkpoint root. The registry can
 * refuse or garble proofs, which only moves the blame earlier; it cannot
 * make a tampered log pass, because the root is ours and the checkpoint is
 * signed.
 *
 * With --remember FILE the previous checkpoint is kept between runs, so a
 * log that was rewritten from scratch and re-signed with the same key
 * (or truncated) is caught: the new checkpoint must extend the old one.
 *
 * `audit verify --bundle DIR` checks a `mlreg bundle` directory with no
 * network at all: the checkpoint, the inclusion proof of every entry, that
 * every entry and attestation is about this manifest, the attestations'
 * signatures and SHA256SUMS.
 *
 * The checks are pure functions (cli.h) with the downloads kept apart, so
 * tests/unit/check_audit_verify.c runs them over an in-memory log.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "mlreg/audit.h"
#include "mlreg/canonical_json.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/dsse.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"
#include "mlreg/release_sig.h"
#include "mlreg/text.h"
#include "mlreg/time.h"
#include "release.h"

/* A log or bundle that does not verify: exit 1. */
#define BAD(...) mlreg_error_set(MLREG_EMISMATCH, __VA_ARGS__)

#define CHECKPOINT_MAX (64u * 1024)
#define KEY_MAX        4096u
#define PAGE_LIMIT     1000u /* entries per page; the server also ends a page at 4 MiB */
#define SUMS_MAX       (16u * 1024 * 1024)
#define ENVELOPE_MAX   (16u * 1024 * 1024)
#define PROOF_FILE_MAX (64u * 1024)

static const char audit_usage[] =
    "usage: mlreg audit log [--model M] [--since TIME] [--json] [--registry URL]\n"
    "       mlreg audit verify [--log-key PUBFILE] [--remember FILE] [--registry URL]\n"
    "       mlreg audit verify --bundle DIR [--log-key PUBFILE]\n"
    "\n"
    "log     prints the audit log, one line per entry: seq, time, actor, action,\n"
    "        subject, result, reason. --model keeps the entries about model M,\n"
    "        --since the entries at or after TIME (RFC 3339); --json prints the\n"
    "        entries as a JSON array.\n"
    "verify  checks the registry's audit log: the signed checkpoint (with the\n"
    "        log key from --log-key, a minisign .pub file, else the key the\n"
    "        registry presents, which is said on stderr), every entry up to the\n"
    "        checkpoint size (canonical, seq, prev chain) and the Merkle root;\n"
    "        names the first entry that differs from the signed log.\n"
    "        --remember FILE keeps the checkpoint between runs and checks that\n"
    "        the log only grew since (consistency proof); FILE is replaced\n"
    "        atomically on success.\n"
    "        --bundle DIR checks a `mlreg bundle` directory offline: checkpoint,\n"
    "        entries against their inclusion proofs, attestations, SHA256SUMS\n"
    "        (log key from --log-key, else DIR/audit/log.pub, which is said).\n"
    "Exit 0 verified, 1 a mismatch (first bad entry or file named), 2 usage or\n"
    "local I/O, 3 registry unreachable or failing.\n";

/* ---- small helpers ------------------------------------------------------------------ */

void cli_audit_entries_init(cli_audit_entries *e)
{
    memset(e, 0, sizeof(*e));
}

void cli_audit_entries_clear(cli_audit_entries *e)
{
    for (uint64_t i = 0; i < e->n; i++)
        free(e->text[i]);
    free(e->text);
    free(e->len);
    cli_audit_entries_init(e);
}

int cli_audit_entries_add(cli_audit_entries *e, const char *text, size_t len)
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

/* Copies the current message, so it can be part of a new one; it may quote
 * registry text, so it is held to the text rule (text.h). */
static void last_message(char *buf, size_t len)
{
    mlreg_text_sanitize(buf, len, mlreg_error_last(), strlen(mlreg_error_last()));
}

static void hash_base64(char out[64], const mlreg_merkle_hash *h)
{
    sodium_bin2base64(out, 64, h->raw, sizeof(h->raw), sodium_base64_VARIANT_ORIGINAL);
}

/* Reads the regular file open on @p fd (at most @p max bytes) into *out
 * (free(), NUL-terminated). MLREG_EIO naming @p name otherwise. Does not
 * close @p fd. */
static int read_fd(char **out, size_t *len_out, int fd, const char *name, size_t max)
{
    int error = 0;
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    *out = NULL;
    *len_out = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "%s: not a regular file", name);
    if ((uint64_t)st.st_size > max)
        return mlreg_error_set(MLREG_EIO, "%s: larger than %zu bytes", name, max);
    if (!(buf = malloc((size_t)st.st_size + 1)))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = mlreg_error_set(MLREG_EIO, "%s: %s", name, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *len_out = got;
    buf = NULL;
done:
    free(buf);
    return error;
}

/* Reads the regular file @p path (at most @p max bytes) into *out (free(),
 * NUL-terminated). MLREG_ENOTFOUND when it does not exist, MLREG_EIO
 * otherwise (message names @p name). */
static int read_file(char **out, size_t *len_out, const char *path, const char *name, size_t max)
{
    int error, fd;

    *out = NULL;
    *len_out = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
        if (errno == ENOENT) return mlreg_error_set(MLREG_ENOTFOUND, "%s: missing", name);
        return mlreg_error_set(MLREG_EIO, "%s: %s", name, strerror(errno));
    }
    error = read_fd(out, len_out, fd, name, max);
    close(fd);
    return error;
}

/* Opens @p name (a relative path of '/'-separated components) inside the
 * bundle directory @p dir for reading, one component at a time with
 * O_NOFOLLOW: a bundle is data from elsewhere, so nothing in it may lead
 * out of it (files/x -> /etc/passwd, audit -> /somewhere) or block the
 * reader (a FIFO). *fd_out is the open file, a regular file unless
 * @p want_dir, then a directory. MLREG_ENOTFOUND when missing,
 * MLREG_EMISMATCH for a symbolic link, a name with "", "." or ".."
 * components, or a file of the wrong type, MLREG_EIO otherwise. */
static int bundle_open(int *fd_out, const char *dir, const char *name, int want_dir)
{
    int error = 0, dfd = -1, fd = -1;
    char part[PATH_MAX];
    const char *p = name, *slash;
    struct stat st;

    *fd_out = -1;
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return mlreg_error_set(MLREG_EIO, "%s: %s", dir, strerror(errno));
    for (;;) {
        size_t len;
        int last, flags;
        slash = strchr(p, '/');
        len = slash ? (size_t)(slash - p) : strlen(p);
        last = !slash;
        if (len == 0 || len >= sizeof(part) || (len == 1 && p[0] == '.') ||
            (len == 2 && p[0] == '.' && p[1] == '.')) {
            error = BAD("%s: not a plain path inside the bundle", name);
            goto done;
        }
        memcpy(part, p, len);
        part[len] = '\0';
        flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
        if (!last || want_dir) flags |= O_DIRECTORY;
        if ((fd = openat(dfd, part, flags)) < 0) {
            if (errno == ENOENT)
                error = mlreg_error_set(MLREG_ENOTFOUND, "%s: missing", name);
            else if (errno == ELOOP || errno == ENOTDIR)
                error = BAD("%s: a symbolic link or not a %s", name,
                            last && !want_dir ? "regular file" : "directory");
            else
                error = mlreg_error_set(MLREG_EIO, "%s: %s", name, strerror(errno));
            goto done;
        }
        close(dfd);
        dfd = fd;
        fd = -1;
        if (last) break;
        p = slash + 1;
    }
    if (fstat(dfd, &st) < 0) {
        error = mlreg_error_set(MLREG_EIO, "%s: %s", name, strerror(errno));
        goto done;
    }
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        error = BAD("%s: not a %s", name, want_dir ? "directory" : "regular file");
        goto done;
    }
    *fd_out = dfd;
    dfd = -1;
done:
    if (fd >= 0) close(fd);
    if (dfd >= 0) close(dfd);
    return error;
}

/* "sha256:<hex>" of the bundle file @p name into @p out (bundle_open's errors). */
static int bundle_digest(char out[MLREG_DIGEST_STRLEN + 1], const char *dir, const char *name)
{
    int fd, error;
    mlreg_digest d;

    if ((error = bundle_open(&fd, dir, name, 0)) < 0) return error;
    error = mlreg_digest_fd(&d, NULL, fd);
    close(fd);
    if (error < 0) return error;
    mlreg_digest_format(out, &d);
    return 0;
}

/* ---- one entry ---------------------------------------------------------------------- */

/* cli_audit_entry_check, also saying whether the failure was the prev link
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

int cli_audit_entry_check(const char *text, size_t len, uint64_t seq, const char *prev,
                          size_t prev_len)
{
    int prev_bad;
    return entry_check(text, len, seq, prev, prev_len, &prev_bad);
}

/* ---- bisection ---------------------------------------------------------------------- */

/* Whether the first @p m local leaves are the first m leaves of the signed tree. */
static int prefix_agrees(int *agree, const mlreg_merkle_hash *leaves, uint64_t m,
                         const mlreg_checkpoint *cp, cli_audit_proof_fn fn, void *ctx)
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

int cli_audit_bisect(uint64_t *out, const mlreg_merkle_hash *leaves, uint64_t n,
                     const mlreg_checkpoint *cp, cli_audit_proof_fn fn, void *ctx)
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

int cli_audit_checkpoint_check(mlreg_checkpoint *cp_out, char *origin_out, const char *text,
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
        last_message(msg, sizeof(msg));
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

int cli_audit_remembered_check(mlreg_checkpoint *old_out, const char *old_text, size_t old_len,
                               const char *origin, const mlreg_pubkey *pk,
                               const mlreg_checkpoint *cur, cli_audit_proof_fn fn, void *ctx)
{
    int error;
    mlreg_checkpoint old;
    mlreg_merkle_hash proof[MLREG_MERKLE_PROOF_MAX], empty;
    size_t plen = 0;
    char msg[512];

    if ((error = mlreg_checkpoint_verify(&old, old_text, old_len, origin, pk->pk)) < 0) {
        uint64_t old_size;
        if (error != MLREG_EMISMATCH && error != MLREG_EINVALID) return error;
        last_message(msg, sizeof(msg));
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

int cli_audit_log_check(const cli_audit_entries *e, const mlreg_checkpoint *cp,
                        cli_audit_proof_fn fn, void *ctx)
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
    if ((error = cli_audit_bisect(&m, leaves, n, cp, fn, ctx)) < 0) {
        if (error == MLREG_ENOMEM) goto done;
        last_message(reason, sizeof(reason));
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

/* ---- bundles ------------------------------------------------------------------------- */

static int path_join(char *out, size_t len, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
        return mlreg_error_set(MLREG_EIO, "%s/%s: path too long", dir, name);
    return 0;
}

/* A missing bundle file is a bad bundle (exit 1), not a local error. */
static int bundle_read(char **out, size_t *len_out, const char *dir, const char *name, size_t max)
{
    int error, fd;

    *out = NULL;
    *len_out = 0;
    if ((error = bundle_open(&fd, dir, name, 0)) < 0) {
        if (error == MLREG_ENOTFOUND) return BAD("%s is missing", name);
        return error;
    }
    error = read_fd(out, len_out, fd, name, max);
    close(fd);
    return error;
}

/* Parses a seq in file-name form: decimal, no sign, no leading zeros. */
static int parse_seq(uint64_t *out, const char *s, size_t len)
{
    uint64_t v = 0;

    if (len == 0 || len > 19 || (len > 1 && s[0] == '0')) return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in @p dir (relative name @p name) into *out (each and the
 * array free()), sorted; a missing directory is empty. */
static int list_dir(char ***out, size_t *n_out, const char *dir, const char *name)
{
    DIR *d = NULL;
    struct dirent *de;
    char **names = NULL, **grown;
    size_t n = 0, cap = 0;
    int error = 0, fd;

    *out = NULL;
    *n_out = 0;
    if ((error = bundle_open(&fd, dir, name, 1)) < 0) {
        if (error != MLREG_ENOTFOUND) return error;
        mlreg_error_clear();
        return 0;
    }
    if (!(d = fdopendir(fd))) {
        close(fd);
        return mlreg_error_set(MLREG_EIO, "%s: %s", name, strerror(errno));
    }
    while ((de = readdir(d))) {
        /* Hidden names count too: nothing in a bundle goes unchecked. */
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if (!(grown = realloc(names, cap * sizeof(*names)))) goto nomem;
            names = grown;
        }
        if (!(names[n] = strdup(de->d_name))) goto nomem;
        n++;
    }
    if (n) qsort(names, n, sizeof(*names), cmp_str);
    *out = names;
    *n_out = n;
    names = NULL;
    n = 0;
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (d) closedir(d);
    return error;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The files of the release manifest.json describes must be what files/
 * holds, byte for byte: SHA256SUMS alone proves nothing, as whoever edits a
 * file can edit SHA256SUMS too, while manifest.json is bound to the signed
 * log by the entries' subject.digest. @p listed maps every SHA256SUMS path
 * to its (checked) hex digest; @p files are the names in files/. */
static int check_layers(const char *dir, json_t *listed, char **files, size_t nfiles)
{
    int error = 0;
    char *text = NULL, path[300];
    size_t len = 0, i;
    json_t *m = NULL, *layers, *layer, *titles = NULL;
    json_error_t jerr;
    mlreg_digest d;

    if ((error = bundle_read(&text, &len, dir, "manifest.json", CLI_MANIFEST_MAX)) < 0) goto done;
    if (!(m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(m) ||
        !json_is_array(layers = json_object_get(m, "layers"))) {
        error = BAD("manifest.json is not a manifest with a layers array");
        goto done;
    }
    if (!(titles = json_object())) goto nomem;
    json_array_foreach(layers, i, layer)
    {
        const char *title = json_string_value(
            json_object_get(json_object_get(layer, "annotations"), MLREG_ANN_TITLE));
        const char *digest = json_string_value(json_object_get(layer, "digest"));
        const char *hex;
        char want[MLREG_DIGEST_HEXLEN + 1];
        if (!title || mlreg_title_validate(title) < 0 || json_object_get(titles, title)) {
            error = BAD("manifest.json: layer %zu has a missing, unsafe or repeated title", i);
            goto done;
        }
        if (!digest || mlreg_digest_parse(&d, digest) < 0) {
            error = BAD("manifest.json: layer %zu (%s) has no valid digest", i, title);
            goto done;
        }
        if (json_object_set_new(titles, title, json_true()) < 0) goto nomem;
        mlreg_digest_hex(want, &d);
        snprintf(path, sizeof(path), "files/%s", title);
        if (!(hex = json_string_value(json_object_get(listed, path)))) {
            error = BAD("SHA256SUMS does not list %s, a file of the release", path);
            goto done;
        }
        if (strcmp(hex, want)) {
            error = BAD("%s does not match manifest.json (its SHA-256 is %s, the manifest says %s)",
                        path, hex, digest);
            goto done;
        }
    }
    for (i = 0; i < nfiles; i++)
        if (!json_object_get(titles, files[i])) {
            error = BAD("files/%s is not a file of the release in manifest.json",
                        cli_printable(files[i]));
            goto done;
        }
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    json_decref(titles);
    json_decref(m);
    free(text);
    return error;
}

/* SHA256SUMS in sha256sum's format: every line "<64 hex>  <path>" (or
 * " *<path>", binary mode) must name a file of the bundle whose SHA-256
 * matches; manifest.json and every file under files/ must be listed, and
 * files/ must hold exactly the release's files (check_layers). */
static int check_sums(size_t *count_out, const char *dir)
{
    int error = 0;
    char *text = NULL, *line, *end, path[PATH_MAX], got[MLREG_DIGEST_STRLEN + 1];
    size_t len = 0, lineno = 0, nfiles = 0;
    char **files = NULL;
    json_t *listed = NULL;

    *count_out = 0;
    if ((error = bundle_read(&text, &len, dir, "SHA256SUMS", SUMS_MAX)) < 0) goto done;
    if (strlen(text) != len) {
        error = BAD("SHA256SUMS holds a NUL byte");
        goto done;
    }
    if (!(listed = json_object())) goto nomem;
    for (line = text; *line; line = end) {
        char *name, hex[MLREG_DIGEST_HEXLEN + 1];
        int bad_name = 0;
        lineno++;
        if (!(end = strchr(line, '\n'))) {
            error = BAD("SHA256SUMS line %zu: no newline at the end", lineno);
            goto done;
        }
        *end++ = '\0';
        if (strlen(line) < MLREG_DIGEST_HEXLEN + 3 || line[MLREG_DIGEST_HEXLEN] != ' ' ||
            (line[MLREG_DIGEST_HEXLEN + 1] != ' ' && line[MLREG_DIGEST_HEXLEN + 1] != '*')) {
            error = BAD("SHA256SUMS line %zu is not '<sha256 hex>  <path>'", lineno);
            goto done;
        }
        for (size_t i = 0; i < MLREG_DIGEST_HEXLEN; i++)
            hex[i] = (line[i] >= 'A' && line[i] <= 'F') ? (char)(line[i] - 'A' + 'a') : line[i];
        hex[MLREG_DIGEST_HEXLEN] = '\0';
        name = line + MLREG_DIGEST_HEXLEN + 2;
        /* Names stay inside the bundle. */
        if (name[0] == '/' || name[0] == '\\' || !strcmp(name, "..") || !strncmp(name, "../", 3) ||
            strstr(name, "/../") || (strlen(name) >= 3 && !strcmp(name + strlen(name) - 3, "/..")))
            bad_name = 1;
        if (mlreg_text_span(name, strlen(name)) != strlen(name)) bad_name = 1;
        if (bad_name) {
            error = BAD("SHA256SUMS line %zu: path outside the bundle", lineno);
            goto done;
        }
        if ((error = bundle_digest(got, dir, name)) < 0) {
            if (error == MLREG_ENOTFOUND) error = BAD("SHA256SUMS: %s is missing", name);
            goto done;
        }
        if (strcmp(got + 7, hex)) {
            error = BAD("SHA256SUMS: %s does not match (its SHA-256 is %s)", name, got + 7);
            goto done;
        }
        if (json_object_set_new(listed, name, json_string(hex)) < 0) goto nomem;
        (*count_out)++;
    }
    if (!json_object_get(listed, "manifest.json")) {
        error = BAD("SHA256SUMS does not list manifest.json");
        goto done;
    }
    if ((error = list_dir(&files, &nfiles, dir, "files")) < 0) goto done;
    for (size_t i = 0; i < nfiles; i++) {
        snprintf(path, sizeof(path), "files/%s", files[i]);
        if (!json_object_get(listed, path)) {
            error = BAD("SHA256SUMS does not list %s", cli_printable(path));
            goto done;
        }
    }
    error = check_layers(dir, listed, files, nfiles);
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    free_names(files, nfiles);
    json_decref(listed);
    free(text);
    return error;
}

/* One audit/entries/<seq>.json with its proof: in the signed tree and about
 * this manifest. @p actions maps "<seq>" to the entry for the attestations. */
static int check_bundle_entry(json_t *actions, const char *dir, uint64_t seq,
                              const cli_bundle_report *rep)
{
    int error = 0;
    char name[64], pname[64], key[24], *text = NULL, *ptext = NULL;
    size_t len = 0, plen = 0, nproof;
    json_t *entry = NULL, *proof = NULL, *arr, *v;
    json_error_t jerr;
    const char *digest;
    mlreg_merkle_hash leaf, hashes[MLREG_MERKLE_PROOF_MAX];
    char msg[512];

    snprintf(name, sizeof(name), "audit/entries/%" PRIu64 ".json", seq);
    snprintf(pname, sizeof(pname), "audit/entries/%" PRIu64 ".proof.json", seq);
    if ((error = bundle_read(&text, &len, dir, name, MLREG_AUDIT_ENTRY_MAX)) < 0 ||
        (error = bundle_read(&ptext, &plen, dir, pname, PROOF_FILE_MAX)) < 0)
        goto done;
    if (!(entry = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(entry)) {
        error = BAD("%s is not a JSON object", name);
        goto done;
    }
    v = json_object_get(entry, "seq");
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) != seq) {
        error = BAD("%s: its seq is not %" PRIu64, name, seq);
        goto done;
    }
    digest = json_string_value(json_object_get(json_object_get(entry, "subject"), "digest"));
    if (!digest || strcmp(digest, rep->digest)) {
        error = BAD("%s: its subject.digest is %s, not the manifest's %s", name,
                    digest ? cli_printable(digest) : "missing", rep->digest);
        goto done;
    }
    if (!(proof = json_loadb(ptext, plen, 0, &jerr)) || !json_is_object(proof)) {
        error = BAD("%s is not a JSON object", pname);
        goto done;
    }
    v = json_object_get(proof, "seq");
    if (!json_is_integer(v) || (uint64_t)json_integer_value(v) != seq) {
        error = BAD("%s: its seq is not %" PRIu64, pname, seq);
        goto done;
    }
    v = json_object_get(proof, "size");
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) != rep->cp.size) {
        error = BAD("%s: the proof is not for the checkpoint's tree of %" PRIu64 " entries", pname,
                    rep->cp.size);
        goto done;
    }
    arr = json_object_get(proof, "proof");
    if (!json_is_array(arr) || (nproof = json_array_size(arr)) > MLREG_MERKLE_PROOF_MAX) {
        error = BAD("%s: no proof array", pname);
        goto done;
    }
    for (size_t i = 0; i < nproof; i++) {
        v = json_array_get(arr, i);
        if (!json_is_string(v) || mlreg_merkle_hash_from_base64(&hashes[i], json_string_value(v),
                                                                json_string_length(v)) < 0) {
            error = BAD("%s: proof hash %zu is not base64 of 32 bytes", pname, i);
            goto done;
        }
    }
    if ((error = mlreg_merkle_leaf_hash(&leaf, text, len)) < 0) goto done;
    if ((error = mlreg_merkle_verify_inclusion(seq, rep->cp.size, hashes, nproof, &leaf,
                                               &rep->cp.root)) < 0) {
        if (error != MLREG_EMISMATCH && error != MLREG_EINVALID) goto done;
        last_message(msg, sizeof(msg));
        error = BAD("%s is not in the signed log: %s", name, msg);
        goto done;
    }
    snprintf(key, sizeof(key), "%" PRIu64, seq);
    if (json_object_set(actions, key, entry) < 0) error = mlreg_error_set(MLREG_ENOMEM, "oom");
done:
    json_decref(entry);
    json_decref(proof);
    free(text);
    free(ptext);
    return error;
}

static int check_bundle_entries(json_t *actions, size_t *count_out, const char *dir,
                                const cli_bundle_report *rep)
{
    int error = 0;
    char **names = NULL;
    size_t n = 0, nseq = 0, nproofs = 0;
    uint64_t *seqs = NULL, s;

    *count_out = 0;
    if ((error = list_dir(&names, &n, dir, "audit/entries")) < 0) goto done;
    if (n && !(seqs = calloc(n, sizeof(*seqs)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len > 11 && !strcmp(names[i] + len - 11, ".proof.json") &&
            parse_seq(&s, names[i], len - 11)) {
            nproofs++;
        } else if (len > 5 && !strcmp(names[i] + len - 5, ".json") &&
                   parse_seq(&s, names[i], len - 5)) {
            seqs[nseq++] = s;
        } else {
            error = BAD("audit/entries/%s: not an entry or a proof", cli_printable(names[i]));
            goto done;
        }
    }
    if (nseq) qsort(seqs, nseq, sizeof(*seqs), cmp_u64);
    for (size_t i = 0; i < nseq; i++)
        if ((error = check_bundle_entry(actions, dir, seqs[i], rep)) < 0) goto done;
    if (nproofs != nseq) {
        error = BAD("audit/entries holds a proof without its entry");
        goto done;
    }
    *count_out = nseq;
done:
    free(seqs);
    free_names(names, n);
    return error;
}

/* One attestations/<name>: signed by the log key, about this manifest, and
 * its audit entry (a promote or rollback) is in the bundle. */
static int check_attestation(const char *dir, const char *file, json_t *entries,
                             const mlreg_pubkey *pk, const cli_bundle_report *rep)
{
    int error = 0;
    char name[PATH_MAX], *text = NULL, *type = NULL, msg[512], key[24];
    unsigned char *payload = NULL;
    size_t len = 0, plen = 0, i;
    json_t *st = NULL, *subjects, *sub, *pred, *audit, *seq, *entry;
    const char *v, *action, *stage;

    snprintf(name, sizeof(name), "attestations/%s", file);
    if ((error = bundle_read(&text, &len, dir, name, ENVELOPE_MAX)) < 0) goto done;
    if ((error = mlreg_dsse_verify(&type, &payload, &plen, text, len, pk)) < 0) {
        if (error != MLREG_EMISMATCH && error != MLREG_EINVALID) goto done;
        last_message(msg, sizeof(msg));
        error = BAD("%s: %s", name, msg);
        goto done;
    }
    if (strcmp(type, MLREG_DSSE_INTOTO_TYPE)) {
        error = BAD("%s: payload type is %s, not %s", name, cli_printable(type),
                    MLREG_DSSE_INTOTO_TYPE);
        goto done;
    }
    if (!(st = json_loadb((const char *)payload, plen, 0, NULL)) || !json_is_object(st)) {
        error = BAD("%s: the statement is not a JSON object", name);
        goto done;
    }
    v = json_string_value(json_object_get(st, "predicateType"));
    if (!v || strcmp(v, "urn:mlreg:promotion:v1")) {
        error = BAD("%s: not an mlreg promotion statement", name);
        goto done;
    }
    subjects = json_object_get(st, "subject");
    if (!json_is_array(subjects) || json_array_size(subjects) == 0) {
        error = BAD("%s: the statement has no subject", name);
        goto done;
    }
    json_array_foreach(subjects, i, sub)
    {
        v = json_string_value(json_object_get(json_object_get(sub, "digest"), "sha256"));
        if (!v || strcmp(v, rep->digest + 7)) {
            error = BAD("%s: its subject is not the manifest %s", name, rep->digest);
            goto done;
        }
    }
    pred = json_object_get(st, "predicate");
    audit = json_object_get(pred, "audit");
    seq = json_object_get(audit, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 0) {
        error = BAD("%s: the statement names no audit entry", name);
        goto done;
    }
    v = json_string_value(json_object_get(audit, "origin"));
    if (!v || strcmp(v, rep->origin)) {
        error =
            BAD("%s: its audit entry is in log %s, not %s", name, cli_printable(v), rep->origin);
        goto done;
    }
    snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, json_integer_value(seq));
    if (!(entry = json_object_get(entries, key))) {
        error = BAD("%s: its audit entry %s is not in the bundle", name, key);
        goto done;
    }
    action = json_string_value(json_object_get(entry, "action"));
    if (!action || (strcmp(action, "promote") && strcmp(action, "rollback"))) {
        error = BAD("%s: audit entry %s is a %s, not a promote or rollback", name, key,
                    cli_printable(action));
        goto done;
    }
    v = json_string_value(json_object_get(pred, "action"));
    if (!v || strcmp(v, action)) {
        error = BAD("%s: the statement says %s, audit entry %s says %s", name, cli_printable(v),
                    key, action);
        goto done;
    }
    v = json_string_value(json_object_get(pred, "stage"));
    stage = json_string_value(json_object_get(json_object_get(entry, "subject"), "stage"));
    if (!v || !stage || strcmp(v, stage)) {
        error = BAD("%s: the statement names stage %s, audit entry %s stage %s", name,
                    cli_printable(v), key, cli_printable(stage));
        goto done;
    }
done:
    json_decref(st);
    free(type);
    free(payload);
    free(text);
    return error;
}

/* Without the entry that records the push, nothing in the signed log ties
 * manifest.json to this bundle: an emptied audit/entries/ with a swapped
 * manifest and files would otherwise verify. */
static int require_push_entry(json_t *entries)
{
    const char *key;
    json_t *entry;

    json_object_foreach(entries, key, entry)
    {
        const char *action = json_string_value(json_object_get(entry, "action"));
        (void)key;
        if (action && !strcmp(action, "push")) return 0;
    }
    return BAD("audit/entries/ holds no entry recording the push of manifest.json, so nothing in "
               "the signed log vouches for it");
}

int cli_audit_bundle_check(cli_bundle_report *rep, const char *dir, const mlreg_pubkey *pk)
{
    int error = 0;
    char *cp_text = NULL, msg[512];
    size_t cp_len = 0, n = 0;
    char **names = NULL;
    json_t *entries = NULL;
    struct stat st;

    memset(rep, 0, sizeof(*rep));
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "%s is not a directory", dir);
    if ((error = bundle_read(&cp_text, &cp_len, dir, "audit/checkpoint", CHECKPOINT_MAX)) < 0)
        goto done;
    if ((error = cli_audit_checkpoint_check(&rep->cp, rep->origin, cp_text, cp_len, pk)) < 0) {
        last_message(msg, sizeof(msg));
        error = BAD("audit/checkpoint: %s", msg);
        goto done;
    }
    if ((error = bundle_digest(rep->digest, dir, "manifest.json")) < 0) {
        if (error == MLREG_ENOTFOUND) error = BAD("manifest.json is missing");
        goto done;
    }
    if ((error = check_sums(&rep->sums, dir)) < 0) goto done;
    if (!(entries = json_object())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = check_bundle_entries(entries, &rep->entries, dir, rep)) < 0) goto done;
    if ((error = require_push_entry(entries)) < 0) goto done;
    if ((error = list_dir(&names, &n, dir, "attestations")) < 0) goto done;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len <= 10 || strcmp(names[i] + len - 10, ".dsse.json")) {
            error = BAD("attestations/%s: not a .dsse.json statement", cli_printable(names[i]));
            goto done;
        }
        if ((error = check_attestation(dir, names[i], entries, pk, rep)) < 0) goto done;
        rep->attestations++;
    }
done:
    free_names(names, n);
    json_decref(entries);
    free(cp_text);
    return error;
}

/* ---- talking to the registry ------------------------------------------------------------ */

int cli_audit_key_get(mlreg_pubkey *out, char **text_out, size_t *len_out, cli_client *c)
{
    int error;
    char *text = NULL, msg[512];
    size_t len = 0;

    if (text_out) *text_out = NULL;
    if ((error = cli_get_bytes(&text, &len, c, "/api/v1/audit/key", KEY_MAX,
                               "fetching the audit log key")) < 0)
        return error;
    if ((error = mlreg_pubkey_parse(out, text, len)) < 0) {
        last_message(msg, sizeof(msg));
        free(text);
        return mlreg_error_set(MLREG_ESERVER, "the registry's audit log key: %s", msg);
    }
    if (text_out) {
        *text_out = text;
        *len_out = len;
    } else {
        free(text);
    }
    return 0;
}

int cli_audit_checkpoint_get(char **out, size_t *len_out, cli_client *c)
{
    return cli_get_bytes(out, len_out, c, "/api/v1/audit/checkpoint", CHECKPOINT_MAX,
                         "fetching the audit checkpoint");
}

int cli_audit_entries_get(cli_audit_entries *e, cli_client *c, uint64_t want, int stop_at_gap)
{
    int error = 0, single = 0;
    cli_response resp;
    json_t *page = NULL, *arr, *v, *next;
    char path[128], msg[512];

    cli_audit_entries_clear(e);
    cli_response_init(&resp);
    while (e->n < want) {
        uint64_t since = e->n, limit = want - e->n < PAGE_LIMIT ? want - e->n : PAGE_LIMIT;
        size_t i;
        if (single) limit = 1;
        json_decref(page);
        page = NULL;
        snprintf(path, sizeof(path), "/api/v1/audit?since=%" PRIu64 "&limit=%" PRIu64, since,
                 limit);
        error = cli_api_expect(&page, &resp, c, "GET", path, NULL, "reading the audit log");
        if (error == MLREG_ESERVER && stop_at_gap) {
            /* An entry the registry cannot read: find which, one at a time,
             * and stop before it; the caller names it as missing. */
            if (!single) {
                single = 1;
                continue;
            }
            last_message(msg, sizeof(msg));
            fprintf(stderr, "mlreg: the registry cannot serve audit entry %" PRIu64 ": %s\n", since,
                    msg);
            mlreg_error_clear();
            error = 0;
            break;
        }
        if (error < 0) goto done;
        arr = json_object_get(page, "entries");
        v = json_object_get(page, "since");
        if (!json_is_array(arr) ||
            (v && (!json_is_integer(v) || (uint64_t)json_integer_value(v) != since))) {
            error = mlreg_error_set(MLREG_ESERVER,
                                    "reading the audit log: registry sent a malformed page");
            goto done;
        }
        json_array_foreach(arr, i, v)
        {
            if (!json_is_string(v)) {
                error = mlreg_error_set(
                    MLREG_ESERVER, "reading the audit log: entry %" PRIu64 " is not a JSON string",
                    since + i);
                goto done;
            }
            if (e->n >= want) break;
            if ((error = cli_audit_entries_add(e, json_string_value(v), json_string_length(v))) < 0)
                goto done;
        }
        next = json_object_get(page, "next");
        if (json_array_size(arr) == 0 || !json_is_integer(next)) break;
    }
done:
    json_decref(page);
    cli_response_clear(&resp);
    return error;
}

int cli_audit_consistency_get(mlreg_merkle_hash *proof, size_t *len_out, void *ctx, uint64_t from,
                              uint64_t to)
{
    cli_client *c = ctx;
    cli_response resp;
    json_t *ans = NULL, *arr, *v;
    char path[128];
    size_t i;
    int error;

    *len_out = 0;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/audit/proof/consistency?from=%" PRIu64 "&to=%" PRIu64,
             from, to);
    if ((error =
             cli_api_expect(&ans, &resp, c, "GET", path, NULL, "fetching a consistency proof")) < 0)
        goto done;
    arr = json_object_get(ans, "proof");
    if (!json_is_array(arr) || json_array_size(arr) > MLREG_MERKLE_PROOF_MAX) {
        error = mlreg_error_set(
            MLREG_ESERVER,
            "consistency proof %" PRIu64 "..%" PRIu64 ": registry sent no proof array", from, to);
        goto done;
    }
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || mlreg_merkle_hash_from_base64(&proof[i], json_string_value(v),
                                                                json_string_length(v)) < 0) {
            error = mlreg_error_set(MLREG_ESERVER,
                                    "consistency proof %" PRIu64 "..%" PRIu64
                                    ": hash %zu is not base64 of 32 bytes",
                                    from, to, i);
            goto done;
        }
    }
    *len_out = json_array_size(arr);
done:
    json_decref(ans);
    cli_response_clear(&resp);
    return error;
}

/* ---- audit log ---------------------------------------------------------------------------- */

/* "model@version stage=S" and the like, for one line of `audit log`. */
static void format_subject(char *buf, size_t len, json_t *subject)
{
    static const char *const extra[] = {"stage", "tag", "key_id", "image"};
    const char *model = json_string_value(json_object_get(subject, "model"));
    const char *version = json_string_value(json_object_get(subject, "version"));
    const char *digest = json_string_value(json_object_get(subject, "digest"));
    size_t off = 0;

    buf[0] = '\0';
#define APPEND(...)                                                                                \
    do {                                                                                           \
        int w_ = snprintf(buf + off, len - off, __VA_ARGS__);                                      \
        if (w_ > 0) off = off + (size_t)w_ < len ? off + (size_t)w_ : len - 1;                     \
    } while (0)
    if (model) APPEND("%s", cli_printable(model));
    if (version)
        APPEND("@%s", cli_printable(version));
    else if (digest)
        APPEND("%s%.19s", model ? "@" : "", cli_printable(digest));
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        const char *v = json_string_value(json_object_get(subject, extra[i]));
        if (v) APPEND("%s%s=%s", off ? " " : "", extra[i], cli_printable(v));
    }
    if (!off) APPEND("-");
#undef APPEND
}

static int audit_log(int argc, char **argv)
{
    int error = 0, m, as_json = 0;
    const char *model = NULL, *since = NULL, *registry = NULL, *pos = NULL;
    int64_t since_sec = 0;
    int32_t since_nsec = 0;
    cli_client *c = NULL;
    cli_audit_entries e;
    json_t *out = NULL, *entry = NULL;
    char *text = NULL, subject[400];

    cli_audit_entries_init(&e);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(audit_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if ((m = cli_opt(&model, &i, argc, argv, "--model")) != 0 ||
                   (m = cli_opt(&since, &i, argc, argv, "--since")) != 0 ||
                   (m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&pos, argv[i]) < 0) {
            goto usage;
        } else {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", pos);
            goto usage;
        }
    }
    if (model && !cli_name_valid(model)) {
        mlreg_error_set(MLREG_EINVALID, "--model '%s' is not a model name", model);
        goto usage;
    }
    if (since && mlreg_time_parse(&since_sec, &since_nsec, since) < 0) {
        mlreg_error_set(MLREG_EINVALID,
                        "--since '%s' is not an RFC 3339 time (e.g. 2026-11-26T10:00:00Z)", since);
        goto usage;
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_audit_entries_get(&e, c, UINT64_MAX, 0)) < 0)
        goto done;
    if (as_json && !(out = json_array())) goto nomem;
    for (uint64_t i = 0; i < e.n; i++) {
        json_t *subj;
        const char *t, *reason;
        json_decref(entry);
        if (!(entry = json_loadb(e.text[i], e.len[i], 0, NULL)) || !json_is_object(entry)) {
            error = mlreg_error_set(
                MLREG_ESERVER,
                "audit entry %" PRIu64 " is not a JSON object (run mlreg audit verify)", i);
            goto done;
        }
        subj = json_object_get(entry, "subject");
        t = json_string_value(json_object_get(entry, "time"));
        if (model && (!json_string_value(json_object_get(subj, "model")) ||
                      strcmp(json_string_value(json_object_get(subj, "model")), model)))
            continue;
        if (since) {
            int64_t sec;
            int32_t nsec;
            if (!t || mlreg_time_parse(&sec, &nsec, t) < 0) {
                mlreg_error_clear();
            } else if (sec < since_sec || (sec == since_sec && nsec < since_nsec)) {
                continue;
            }
        }
        if (as_json) {
            if (json_array_append(out, entry) < 0) goto nomem;
            continue;
        }
        format_subject(subject, sizeof(subject), subj);
        reason = json_string_value(json_object_get(entry, "reason"));
        printf("%-6" PRIu64 " %-30s  %-12s  %-16s  %-40s  %s%s%s\n", i, cli_printable(t),
               cli_printable(json_string_value(json_object_get(entry, "actor"))),
               cli_printable(json_string_value(json_object_get(entry, "action"))), subject,
               cli_printable(json_string_value(json_object_get(entry, "result"))),
               reason ? "  " : "", reason ? cli_printable(reason) : "");
    }
    if (as_json) {
        if (!(text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) goto nomem;
        cli_print_json(text, strlen(text));
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        error = mlreg_error_set(MLREG_EIO, "writing to stdout: %s", strerror(errno));
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    free(text);
    json_decref(entry);
    json_decref(out);
    cli_audit_entries_clear(&e);
    cli_client_free(c);
    return error < 0 ? cli_fail("audit log", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg audit log: %s\n%s", mlreg_error_last(), audit_usage);
    return CLI_EXIT_USAGE;
}

/* ---- audit verify ------------------------------------------------------------------------- */

/* Replaces @p path by @p len bytes of @p text: a fresh temp file next to it
 * (mkstemp: O_EXCL, never someone else's file), fsync, rename. */
static int write_atomic(const char *path, const char *text, size_t len)
{
    char tmp[PATH_MAX];
    int fd = -1, error = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
        return mlreg_error_set(MLREG_EIO, "%s: path too long", path);
    if ((fd = mkstemp(tmp)) < 0)
        return mlreg_error_set(MLREG_EIO, "creating a temp file for %s: %s", path, strerror(errno));
    if (fchmod(fd, 0644) < 0) {
        error = mlreg_error_set(MLREG_EIO, "chmod %s: %s", tmp, strerror(errno));
        goto done;
    }
    if ((error = cli_write_all(fd, text, len, tmp)) < 0) goto done;
    if (fsync(fd) < 0) {
        error = mlreg_error_set(MLREG_EIO, "fsync %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) < 0) {
        fd = -1;
        error = mlreg_error_set(MLREG_EIO, "closing %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        error = mlreg_error_set(MLREG_EIO, "rename %s to %s: %s", tmp, path, strerror(errno));
done:
    if (fd >= 0) close(fd);
    if (error < 0) unlink(tmp);
    return error;
}

/* The log key from --log-key (a local file: missing is exit 2). */
static int load_log_key(mlreg_pubkey *out, const char *path)
{
    int error = mlreg_pubkey_load(out, path);
    if (error == MLREG_ENOTFOUND || error == MLREG_EINVALID)
        return cli_error_wrap(MLREG_EIO, "--log-key %s", path);
    return error;
}

static int verify_bundle(const char *dir, const char *key_path)
{
    int error = 0;
    mlreg_pubkey pk;
    char path[PATH_MAX], id[MLREG_KEYID_HEXLEN + 1], root[64];
    cli_bundle_report rep;

    if (key_path) {
        if ((error = load_log_key(&pk, key_path)) < 0) goto done;
    } else {
        if ((error = path_join(path, sizeof(path), dir, "audit/log.pub")) < 0) goto done;
        if ((error = mlreg_pubkey_load(&pk, path)) < 0) {
            if (error == MLREG_ENOTFOUND || error == MLREG_EINVALID)
                error = cli_error_wrap(MLREG_EMISMATCH, "the bundle's log key");
            goto done;
        }
        mlreg_keyid_format(id, &pk.id);
        fprintf(stderr,
                "mlreg audit verify: trusting the log key in the bundle (%s, %s); pass "
                "--log-key to pin it\n",
                path, id);
    }
    if ((error = cli_audit_bundle_check(&rep, dir, &pk)) < 0) goto done;
    hash_base64(root, &rep.cp.root);
    printf("bundle %s verified: manifest.json %s, %zu SHA256SUMS line%s, %zu audit entr%s in the "
           "signed log of %" PRIu64 " entries (root %s, checkpoint signed by %s), "
           "%zu attestation%s\n",
           dir, rep.digest, rep.sums, rep.sums == 1 ? "" : "s", rep.entries,
           rep.entries == 1 ? "y" : "ies", rep.cp.size, root, rep.origin, rep.attestations,
           rep.attestations == 1 ? "" : "s");
    if (fflush(stdout) != 0 || ferror(stdout))
        error = mlreg_error_set(MLREG_EIO, "writing to stdout: %s", strerror(errno));
done:
    return error < 0 ? cli_fail("audit verify", error) : CLI_EXIT_OK;
}

/* cli_audit_proof_fn over the local, verified leaves (@p ctx a
 * mlreg_merkle_leaves): once every entry of the current checkpoint is
 * checked, whether the remembered tree is a prefix of it is a fact we can
 * compute, not something to ask the registry for, which could refuse to
 * answer (exit 3) instead of admitting a rewrite (exit 1). The subtrees of
 * one consistency proof are disjoint, so this hashes at most n leaves. */
static int local_consistency(mlreg_merkle_hash *proof, size_t *len_out, void *ctx, uint64_t from,
                             uint64_t to)
{
    return mlreg_merkle_prove_consistency(proof, len_out, from, to, mlreg_merkle_leaves_subtree,
                                          ctx);
}

static int audit_verify(int argc, char **argv)
{
    int error = 0, m, have_old = 0;
    const char *key_path = NULL, *remember = NULL, *bundle = NULL, *registry = NULL, *pos = NULL;
    cli_client *c = NULL;
    mlreg_pubkey pk;
    char *cp_text = NULL, *old_text = NULL, origin[MLREG_CHECKPOINT_ORIGIN_MAX + 1];
    char id[MLREG_KEYID_HEXLEN + 1], root[64];
    size_t cp_len = 0, old_len = 0;
    mlreg_checkpoint cp = {0}, old = {0};
    mlreg_merkle_hash *leaves = NULL;
    mlreg_merkle_leaves tree = {0};
    cli_audit_entries e;

    cli_audit_entries_init(&e);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(audit_usage, stdout);
            return CLI_EXIT_OK;
        }
        if ((m = cli_opt(&key_path, &i, argc, argv, "--log-key")) != 0 ||
            (m = cli_opt(&remember, &i, argc, argv, "--remember")) != 0 ||
            (m = cli_opt(&bundle, &i, argc, argv, "--bundle")) != 0 ||
            (m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&pos, argv[i]) < 0) {
            goto usage;
        } else {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", pos);
            goto usage;
        }
    }
    if (bundle && (remember || registry)) {
        mlreg_error_set(MLREG_EINVALID, "--bundle works offline: no --remember or --registry");
        goto usage;
    }
    if (bundle) return verify_bundle(bundle, key_path);

    if (key_path && (error = load_log_key(&pk, key_path)) < 0) goto done;
    if (remember) {
        error = read_file(&old_text, &old_len, remember, remember, CHECKPOINT_MAX);
        if (error == MLREG_ENOTFOUND) {
            mlreg_error_clear();
            error = 0;
        } else if (error < 0) {
            goto done;
        } else {
            have_old = 1;
        }
    }
    if ((error = cli_client_new(&c, registry)) < 0) goto done;
    if (!key_path) {
        if ((error = cli_audit_key_get(&pk, NULL, NULL, c)) < 0) goto done;
        mlreg_keyid_format(id, &pk.id);
        fprintf(stderr,
                "mlreg audit verify: trusting the log key the server presents (%s); pass "
                "--log-key to pin it\n",
                id);
    }
    if ((error = cli_audit_checkpoint_get(&cp_text, &cp_len, c)) < 0 ||
        (error = cli_audit_checkpoint_check(&cp, origin, cp_text, cp_len, &pk)) < 0 ||
        (error = cli_audit_entries_get(&e, c, cp.size, 1)) < 0 ||
        (error = cli_audit_log_check(&e, &cp, cli_audit_consistency_get, c)) < 0)
        goto done;
    if (have_old) {
        if (!(tree.leaves = leaves = calloc(e.n ? (size_t)e.n : 1, sizeof(*leaves)))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        tree.count = e.n;
        for (uint64_t i = 0; i < e.n; i++)
            if ((error = mlreg_merkle_leaf_hash(&leaves[i], e.text[i], e.len[i])) < 0) goto done;
        if ((error = cli_audit_remembered_check(&old, old_text, old_len, origin, &pk, &cp,
                                                local_consistency, &tree)) < 0) {
            if (error == MLREG_EINVALID)
                error = cli_error_wrap(MLREG_EIO, "--remember %s", remember);
            goto done;
        }
    }
    if (remember && (error = write_atomic(remember, cp_text, cp_len)) < 0) goto done;
    if (remember && !have_old)
        fprintf(stderr, "mlreg audit verify: remembered the checkpoint of size %" PRIu64 " in %s\n",
                cp.size, remember);
    hash_base64(root, &cp.root);
    printf("audit log verified: %" PRIu64 " entries, root %s, checkpoint signed by %s", cp.size,
           root, origin);
    if (have_old) printf("; consistent with the remembered checkpoint of size %" PRIu64, old.size);
    printf("\n");
    if (fflush(stdout) != 0 || ferror(stdout))
        error = mlreg_error_set(MLREG_EIO, "writing to stdout: %s", strerror(errno));
done:
    free(leaves);
    cli_audit_entries_clear(&e);
    free(cp_text);
    free(old_text);
    cli_client_free(c);
    return error < 0 ? cli_fail("audit verify", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg audit verify: %s\n%s", mlreg_error_last(), audit_usage);
    return CLI_EXIT_USAGE;
}

int cmd_audit(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "mlreg audit: missing subcommand (log or verify)\n%s", audit_usage);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(audit_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "log")) return audit_log(argc - 1, argv + 1);
    if (!strcmp(argv[1], "verify")) return audit_verify(argc - 1, argv + 1);
    fprintf(stderr, "mlreg audit: unknown subcommand '%s'\n%s", argv[1], audit_usage);
    return CLI_EXIT_USAGE;
}
