/* bundle.c: `mlreg bundle REF -o DIR`, everything an auditor needs about one
 * release, in a directory that checks offline (docs/audit-api.md). The
 * layout (file names, directories, what each holds) is the MLREG_BUNDLE_*
 * description in mlreg/audit_verify.h, which the checker uses too.
 *
 * The registry is not trusted here either: the manifest must hash to the
 * digest (cli_release_fetch), every file is verified while it streams in
 * (cli_blob_fetch), signatures that do not verify with the key they name
 * are left out, and before the bundle becomes visible it is checked with
 * the same offline check as `mlreg audit verify --bundle` (using the log
 * key the registry presented), so a bundle that exists is one that
 * verifies.
 *
 * Everything is written into DIR.tmp-XXXXXX next to DIR and renamed to DIR
 * at the end: DIR never holds half a bundle. On failure the temp directory
 * is removed. A title may be a relative path: its directories are made
 * inside files/ one segment at a time without following links
 * (open_title(), cli/safepath.h), after the titles passed the set rule
 * (cli_release_parse()).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "files.h"
#include "mlreg/audit_verify.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/evaluations.h"
#include "mlreg/names.h"
#include "mlreg/registry.h"
#include "mlreg/release_sig.h"
#include "mlreg/sign.h"
#include "mlreg/text.h"
#include "mlreg/time.h"
#include "ref.h"
#include "release.h"
#include "safepath.h"

static const char bundle_usage[] =
    "usage: mlreg bundle MODEL@VERSION|MODEL@sha256:HEX|MODEL:STAGE -o DIR [--at TIME]\n"
    "                    [--registry URL] [--token-file FILE]\n"
    "\n"
    "Writes an audit bundle of the release into DIR (which must not exist or be\n"
    "empty): manifest.json as stored, its signatures (manifest.json.minisig is\n"
    "the first attached, preferring keys the registry counts; signatures/ holds\n"
    "all of them as <KEYID>.minisig, or <KEYID>-<KEYHEX>.minisig, KEYHEX the 64\n"
    "hex digits of the public key, for another key that carries the same key\n"
    "id), the release files under files/ by title, in subdirectories for a\n"
    "title such as tokenizer/vocab.json (verified while downloaded),\n"
    "SHA256SUMS, the promotion attestations, the evaluations (evaluations/<seq>\n"
    ".dsse.json, the DSSE envelopes as stored), and under audit/ the log key, a\n"
    "signed checkpoint and every audit entry about this release with its\n"
    "inclusion proof. The bundle is checked like `mlreg audit verify --bundle\n"
    "DIR` before it appears. In DIR,\n"
    "`sha256sum -c SHA256SUMS` and `minisign -V -H -p KEY.pub -m manifest.json`\n"
    "work with the stock tools.\n"
    "  -o, --output DIR  e.g. -o audit/clf-1.4\n"
    "  --at TIME         with MODEL:STAGE, the release the stage held then (RFC\n"
    "                    3339): e.g. mlreg bundle team/clf:production --at\n"
    "                    2026-11-26T10:00:00Z -o audit/prod-nov26\n"
    "  --registry URL    e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "  --token-file FILE e.g. --token-file ~/.mlreg-token (or MLREG_TOKEN)\n"
    "e.g. mlreg bundle team/clf@1.4 -o audit/clf-1.4\n";

static const char *const subdirs[] = MLREG_BUNDLE_DIRS;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* DIR must not exist, or be an empty directory. */
static int check_target(const char *dir)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    int empty = 1;

    if (lstat(dir, &st) < 0) {
        if (errno == ENOENT) return 0;
        return mlreg_error_set(MLREG_EIO, "%s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "%s exists and is not a directory", dir);
    if (!(d = opendir(dir))) return mlreg_error_set(MLREG_EIO, "%s: %s", dir, strerror(errno));
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) empty = 0;
    closedir(d);
    if (!empty) return mlreg_error_set(MLREG_EIO, "%s exists and is not empty", dir);
    return 0;
}

typedef struct {
    char hex[MLREG_DIGEST_HEXLEN + 1];
    char path[300];
} sum_line;

static int cmp_sum(const void *a, const void *b)
{
    return strcmp(((const sum_line *)a)->path, ((const sum_line *)b)->path);
}

/* One listed signature that verifies with the public key it names. */
typedef struct {
    const char *text;
    mlreg_pubkey pk;
    char id[MLREG_KEYID_HEXLEN + 1];
    int64_t sec; /* attach time; INT64_MAX - 1 when the registry gives none */
    int32_t nsec;
    int rank; /* 0 counts at the registry, 1 by its keyring key, 2 any other key */
} bundle_sig;

static int sig_before(const bundle_sig *a, const bundle_sig *b)
{
    if (a->rank != b->rank) return a->rank < b->rank;
    return a->sec < b->sec || (a->sec == b->sec && a->nsec < b->nsec);
}

/* Every signature that verifies with the key it names over the manifest,
 * as signatures/<KEYID>.minisig. A key id is 8 bytes anyone can put on a
 * fresh key, so several keys may share one: the first of them by the
 * registry's judgement (counting, then by its keyring key, then the rest;
 * earliest attached first) gets <KEYID>.minisig, the others
 * <KEYID>-<64 hex digits of the Ed25519 key>.minisig: the whole key, since
 * two keys sharing a prefix of it cost only a fraction of the work to make
 * and would collide on one name (the files are created O_EXCL, so bundle
 * would fail for that release for good). The first by the same order is
 * also manifest.json.minisig. The registry's word only picks
 * names: whoever checks the bundle checks the signatures with their own
 * keys. *count_out the number written. */
static int write_signatures(size_t *count_out, const char *tmp, cli_client *c, const char *model,
                            const cli_release *rel)
{
    int error = 0;
    json_t *sigs = NULL, *arr, *s;
    bundle_sig *v = NULL;
    size_t i, j, n = 0, first = 0;
    char name[128], pkhex[2 * MLREG_PUBKEY_BYTES + 1];

    *count_out = 0;
    if ((error = cli_sigs_get(&sigs, c, model, rel->version)) < 0) goto done;
    arr = json_object_get(sigs, "signatures");
    if (json_array_size(arr) && !(v = calloc(json_array_size(arr), sizeof(*v)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    json_array_foreach(arr, i, s)
    {
        const char *text = json_string_value(json_object_get(s, "signature"));
        const char *pub = json_string_value(json_object_get(s, "public_key"));
        const char *at = json_string_value(json_object_get(s, "attached_at"));
        const char *status = json_string_value(json_object_get(s, "status"));
        bundle_sig *e = &v[n];
        mlreg_keyid kid;

        if (!text || !pub || mlreg_pubkey_parse(&e->pk, pub, strlen(pub)) < 0 ||
            mlreg_sign_verify(NULL, &kid, text, strlen(text), rel->bytes, rel->len, &e->pk) < 0) {
            char why[512];
            mlreg_text_sanitize(why, sizeof(why), mlreg_error_last(), strlen(mlreg_error_last()));
            fprintf(stderr, "mlreg bundle: leaving out signature %zu: %s\n", i,
                    text && pub ? why : "no signature or public key");
            mlreg_error_clear();
            continue;
        }
        for (j = 0; j < n && !mlreg_pubkey_equal(&v[j].pk, &e->pk); j++)
            ;
        if (j < n) continue; /* one signature per key */
        e->text = text;
        mlreg_keyid_format(e->id, &kid);
        if (!at || mlreg_time_parse(&e->sec, &e->nsec, at) < 0) {
            mlreg_error_clear();
            e->sec = INT64_MAX - 1;
            e->nsec = 0;
        }
        if (json_is_true(json_object_get(s, "counts")))
            e->rank = 0;
        else
            e->rank = status && strcmp(status, "untrusted") != 0 ? 1 : 2;
        if (n > 0 && sig_before(e, &v[first])) first = n;
        n++;
    }
    for (i = 0; i < n; i++) {
        /* the first of its key id gets the plain name */
        for (j = 0; j < n; j++)
            if (j != i && !strcmp(v[j].id, v[i].id) &&
                (sig_before(&v[j], &v[i]) || (!sig_before(&v[i], &v[j]) && j < i)))
                break;
        if (j == n) {
            snprintf(name, sizeof(name), MLREG_BUNDLE_SIGNATURES "/%s" MLREG_BUNDLE_SIG_SUFFIX,
                     v[i].id);
        } else {
            sodium_bin2hex(pkhex, sizeof(pkhex), v[i].pk.pk, MLREG_PUBKEY_BYTES);
            snprintf(name, sizeof(name), MLREG_BUNDLE_SIGNATURES "/%s-%s" MLREG_BUNDLE_SIG_SUFFIX,
                     v[i].id, pkhex);
        }
        if ((error = cli_file_write_new(tmp, name, v[i].text, strlen(v[i].text))) < 0) goto done;
        (*count_out)++;
    }
    if (n)
        error = cli_file_write_new(tmp, MLREG_BUNDLE_MANIFEST_SIG, v[first].text,
                                   strlen(v[first].text));
done:
    free(v);
    json_decref(sigs);
    return error;
}

/* attestations/<seq>-<stage>.dsse.json, the envelopes as the registry gives them. */
static int write_attestations(size_t *count_out, const char *tmp, cli_client *c, const char *model,
                              const char *version)
{
    int error = 0;
    cli_response resp;
    json_t *ans = NULL, *arr, *a;
    char path[600], name[200], *text = NULL;
    size_t i;

    *count_out = 0;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/attestations", model, version);
    if ((error = cli_api_expect(&ans, &resp, c, "GET", path, NULL, "fetching the attestations")) <
        0)
        goto done;
    arr = json_object_get(ans, "attestations");
    if (!json_is_array(arr)) {
        error = mlreg_error_set(MLREG_ESERVER,
                                "fetching the attestations: registry sent no attestations list");
        goto done;
    }
    json_array_foreach(arr, i, a)
    {
        json_t *seq = json_object_get(a, "seq"), *env = json_object_get(a, "envelope");
        const char *stage = json_string_value(json_object_get(a, "stage"));
        if (!json_is_integer(seq) || json_integer_value(seq) < 0 || !stage ||
            mlreg_tag_validate(stage) < 0 || (!json_is_object(env) && !json_is_string(env))) {
            error = mlreg_error_set(MLREG_ESERVER,
                                    "fetching the attestations: attestation %zu is malformed", i);
            goto done;
        }
        free(text);
        text = NULL;
        if (json_is_object(env)) {
            if (!(text = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS))) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
                goto done;
            }
        } else if (!(text = strdup(json_string_value(env)))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(name, sizeof(name),
                 MLREG_BUNDLE_ATTESTATIONS "/%" JSON_INTEGER_FORMAT "-%s" MLREG_BUNDLE_DSSE_SUFFIX,
                 json_integer_value(seq), stage);
        if ((error = cli_file_write_new(tmp, name, text, strlen(text))) < 0) goto done;
        (*count_out)++;
    }
done:
    free(text);
    json_decref(ans);
    cli_response_clear(&resp);
    return error;
}

/* evaluations/<seq>.dsse.json: the envelope of every evaluation of the
 * release, byte for byte as the registry stores it (the blob its listing
 * names, checked against that digest), *lines_out their SHA256SUMS lines
 * (free()). The offline check ties each to its evaluation.attest entry. */
static int write_evaluations(sum_line **lines_out, size_t *count_out, const char *tmp,
                             cli_client *c, const char *model, const char *version)
{
    int error = 0;
    cli_response resp, blob;
    json_t *ans = NULL, *arr, *a;
    char path[700], name[200];
    sum_line *lines = NULL;
    size_t i;
    mlreg_digest want, got;

    *lines_out = NULL;
    *count_out = 0;
    cli_response_init(&resp);
    cli_response_init(&blob);
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/evaluations", model, version);
    if ((error = cli_api_do(&ans, &resp, c, "GET", path, NULL)) < 0) goto done;
    /* a registry that predates evaluations has none to give; one that hides
     * them fails the offline check below, which wants the envelope of every
     * evaluation.attest entry about the release */
    if (resp.status == 404) goto done;
    if (resp.status != 200) {
        error = cli_http_error(&resp, "fetching the evaluations");
        goto done;
    }
    arr = json_object_get(ans, "evaluations");
    if (!json_is_array(arr)) {
        error = mlreg_error_set(MLREG_ESERVER,
                                "fetching the evaluations: registry sent no evaluations list");
        goto done;
    }
    if (json_array_size(arr) && !(lines = calloc(json_array_size(arr), sizeof(*lines)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    json_array_foreach(arr, i, a)
    {
        json_t *seq = json_object_get(a, "seq");
        const char *envd = json_string_value(json_object_get(a, "envelope"));
        if (!json_is_integer(seq) || json_integer_value(seq) < 0 || !envd ||
            mlreg_digest_parse(&want, envd) < 0) {
            mlreg_error_clear();
            error = mlreg_error_set(MLREG_ESERVER,
                                    "fetching the evaluations: evaluation %zu is malformed", i);
            goto done;
        }
        snprintf(path, sizeof(path), "/v2/%s/blobs/%s", model, envd);
        cli_request req = {.method = "GET",
                           .url = path,
                           .body_fd = -1,
                           .max_body = MLREG_EVALUATION_MAX_BYTES,
                           .follow_redirects = 1};
        cli_response_clear(&blob);
        cli_response_init(&blob);
        if ((error = cli_request_do(&blob, c, &req)) < 0) goto done;
        if (blob.status != 200) {
            error = cli_http_error(&blob, "fetching an evaluation envelope");
            goto done;
        }
        if ((error = mlreg_digest_buffer(&got, blob.body ? blob.body : "", blob.body_len)) < 0)
            goto done;
        if (!mlreg_digest_equal(&got, &want)) {
            error = mlreg_error_set(MLREG_EMISMATCH,
                                    "the evaluation envelope %s the registry sent does not match "
                                    "its digest",
                                    envd);
            goto done;
        }
        snprintf(name, sizeof(name),
                 MLREG_BUNDLE_EVALUATIONS "/%" JSON_INTEGER_FORMAT MLREG_BUNDLE_DSSE_SUFFIX,
                 json_integer_value(seq));
        if ((error = cli_file_write_new(tmp, name, blob.body ? blob.body : "", blob.body_len)) < 0)
            goto done;
        snprintf(lines[*count_out].path, sizeof(lines[*count_out].path), "%s", name);
        mlreg_digest_hex(lines[*count_out].hex, &got);
        (*count_out)++;
    }
    *lines_out = lines;
    lines = NULL;
done:
    free(lines);
    json_decref(ans);
    cli_response_clear(&resp);
    cli_response_clear(&blob);
    return error;
}

/* audit/log.pub, audit/checkpoint, and every entry about @p digest with its
 * inclusion proof against that checkpoint. */
static int write_audit(size_t *count_out, mlreg_checkpoint *cp, char *origin, mlreg_pubkey *pk,
                       const char *tmp, cli_client *c, const char *digest)
{
    int error = 0;
    char *key_text = NULL, *cp_text = NULL, *proof = NULL, path[128];
    char name[MLREG_BUNDLE_ENTRY_PATH_MAX];
    size_t key_len = 0, cp_len = 0, proof_len = 0;
    mlreg_audit_entries e;
    json_t *entry = NULL;
    char id[MLREG_KEYID_HEXLEN + 1];

    *count_out = 0;
    mlreg_audit_entries_init(&e);
    if ((error = cli_audit_key_get(pk, &key_text, &key_len, c)) < 0 ||
        (error = cli_file_write_new(tmp, MLREG_BUNDLE_LOG_KEY, key_text, key_len)) < 0 ||
        (error = cli_audit_checkpoint_get(&cp_text, &cp_len, c)) < 0)
        goto done;
    if ((error = mlreg_audit_verify_checkpoint(cp, origin, cp_text, cp_len, pk)) < 0) {
        mlreg_keyid_format(id, &pk->id);
        error = cli_error_wrap(error, "the registry's checkpoint with its own log key %s", id);
        goto done;
    }
    if ((error = cli_file_write_new(tmp, MLREG_BUNDLE_CHECKPOINT, cp_text, cp_len)) < 0 ||
        (error = cli_audit_entries_get(&e, c, cp->size, 0)) < 0)
        goto done;
    if (e.n < cp->size) {
        error = mlreg_error_set(MLREG_ESERVER,
                                "the registry served %" PRIu64 " of the %" PRIu64
                                " audit entries its checkpoint covers",
                                e.n, cp->size);
        goto done;
    }
    /* The entries are picked from what the registry served, so check all of
     * them against the checkpoint first: otherwise a registry could leave an
     * entry about this release out of the bundle (say a rollback) by serving
     * it with another subject, and nothing offline could tell. */
    if ((error = mlreg_audit_verify_log(&e, cp, cli_audit_consistency_get, c)) < 0) {
        error = cli_error_wrap(error, "the registry's audit log");
        goto done;
    }
    for (uint64_t i = 0; i < e.n; i++) {
        const char *d;
        json_decref(entry);
        entry = json_loadb(e.text[i], e.len[i], 0, NULL);
        d = json_string_value(json_object_get(json_object_get(entry, "subject"), "digest"));
        if (!d || strcmp(d, digest)) continue;
        mlreg_bundle_entry_path(name, i, 0);
        if ((error = cli_file_write_new(tmp, name, e.text[i], e.len[i])) < 0) goto done;
        snprintf(path, sizeof(path), "/api/v1/audit/proof/inclusion?seq=%" PRIu64 "&size=%" PRIu64,
                 i, cp->size);
        free(proof);
        proof = NULL;
        if ((error = cli_get_bytes(&proof, &proof_len, c, path, MLREG_BUNDLE_PROOF_MAX,
                                   "fetching an inclusion proof")) < 0)
            goto done;
        mlreg_bundle_entry_path(name, i, 1);
        if ((error = cli_file_write_new(tmp, name, proof, proof_len)) < 0) goto done;
        (*count_out)++;
    }
done:
    json_decref(entry);
    mlreg_audit_entries_clear(&e);
    free(proof);
    free(key_text);
    free(cp_text);
    return error;
}

/* Creates the release file files/<@p title> for writing, inside the
 * bundle's files/ directory @p files_fd: the title's directories are made
 * or entered one segment at a time, never through a symbolic link
 * (cli_safepath_parent), and the file itself is created
 * O_EXCL|O_NOFOLLOW, so nothing can make bundle write outside the bundle
 * or into a file it did not create. Each directory made here is recorded
 * in its parent (fsync) at once. *fd_out is the file, *dir_out the
 * directory holding it (for its fsync and for unlinkat), both the caller's
 * to close; *base_out points into @p title at its last segment. The
 * release's titles passed the set rule when it was fetched
 * (cli_release_parse). 0, MLREG_EIO or MLREG_EDENIED. */
static int open_title(int *fd_out, int *dir_out, const char **base_out, int files_fd,
                      const char *title)
{
    int error, dfd = -1;
    cli_safepath_made made = {0};

    *fd_out = *dir_out = -1;
    *base_out = title;
    error = cli_safepath_parent(&dfd, base_out, NULL, files_fd, title, CLI_SAFEPATH_CREATE, &made);
    for (size_t i = 0; !error && i < made.n; i++) {
        int pfd;
        const char *leaf;
        if ((error = cli_safepath_parent(&pfd, &leaf, NULL, files_fd, made.dirs[i], 0, NULL)) < 0)
            break;
        if (fsync(pfd) < 0)
            error = mlreg_error_set(MLREG_EIO, "fsync of the directory of files/%s: %s",
                                    made.dirs[i], strerror(errno));
        close(pfd);
    }
    cli_safepath_made_free(&made);
    if (error < 0) goto done;
    if ((*fd_out = openat(dfd, *base_out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          0666)) < 0) {
        error = mlreg_error_set(MLREG_EIO, "creating files/%s: %s", title, strerror(errno));
        goto done;
    }
    *dir_out = dfd;
    dfd = -1;
done:
    if (dfd >= 0) close(dfd);
    return error;
}

/* SHA256SUMS of manifest.json, the files written (@p gone[i] set for a
 * file a purge deleted, which the bundle lacks) and the @p nextra files
 * @p extra (the evaluations). */
static int write_sums(const char *tmp, const cli_release *rel, const unsigned char *gone,
                      const sum_line *extra, size_t nextra)
{
    int error = 0;
    size_t n = 1, off = 0, cap = 0;
    sum_line *lines = NULL;
    char *text = NULL;

    if (!(lines = calloc(rel->nlayers + nextra + 1, sizeof(*lines))))
        return mlreg_error_set(MLREG_ENOMEM, "oom");
    for (size_t i = 0; i < nextra; i++)
        lines[n++] = extra[i];
    snprintf(lines[0].path, sizeof(lines[0].path), MLREG_BUNDLE_MANIFEST);
    snprintf(lines[0].hex, sizeof(lines[0].hex), "%s", rel->digest + 7);
    for (size_t i = 0; i < rel->nlayers; i++) {
        if (gone[i]) continue;
        snprintf(lines[n].path, sizeof(lines[n].path), MLREG_BUNDLE_FILES "/%s",
                 rel->layers[i].title);
        mlreg_digest_hex(lines[n].hex, &rel->layers[i].digest);
        n++;
    }
    qsort(lines, n, sizeof(*lines), cmp_sum);
    for (size_t i = 0; i < n; i++)
        cap += MLREG_DIGEST_HEXLEN + 3 + strlen(lines[i].path);
    if (!(text = malloc(cap + 1))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        off += (size_t)sprintf(text + off, "%s  %s\n", lines[i].hex, lines[i].path);
    error = cli_file_write_new(tmp, MLREG_BUNDLE_SUMS, text, off);
done:
    free(text);
    free(lines);
    return error;
}

int cmd_bundle(int argc, char **argv)
{
    int error = 0, m;
    const char *refstr = NULL, *registry = NULL, *v, *at = NULL;
    char dir[PATH_MAX], tmp[PATH_MAX], parent[PATH_MAX], size_str[32], sub[PATH_MAX];
    char origin[MLREG_CHECKPOINT_ORIGIN_MAX + 1];
    cli_release_ref rr;
    cli_client *c = NULL;
    cli_release rel;
    mlreg_checkpoint cp = {0};
    mlreg_pubkey logpk;
    mlreg_bundle_report rep;
    size_t nsigs = 0, natt = 0, nentries = 0, len, ngone = 0, nevals = 0;
    sum_line *evals = NULL;
    uint64_t total = 0;
    int made_tmp = 0, purged = 0, files_fd = -1;
    unsigned char *gone = NULL;
    mode_t mask;

    dir[0] = tmp[0] = '\0';
    cli_release_init(&rel);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(bundle_usage, stdout);
            return CLI_EXIT_OK;
        }
        if ((m = cli_opt(&v, &i, argc, argv, "-o")) != 0 ||
            (m = cli_opt(&v, &i, argc, argv, "--output")) != 0) {
            if (m < 0) goto usage;
            if (strlen(v) >= sizeof(dir) - 16) {
                mlreg_error_set(MLREG_EINVALID, "output directory path too long");
                goto usage;
            }
            snprintf(dir, sizeof(dir), "%s", v);
        } else if ((m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0 ||
                   (m = cli_opt(&at, &i, argc, argv, "--at")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&refstr, argv[i]) < 0) {
            goto usage;
        }
    }
    if (!refstr) {
        mlreg_error_set(MLREG_EINVALID, "missing REF");
        goto usage;
    }
    if (cli_release_ref_parse(&rr, refstr) < 0 || (at && cli_release_ref_at(&rr, at) < 0))
        goto usage;
    len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = '\0';
    if (!len) {
        mlreg_error_set(MLREG_EINVALID, "missing -o DIR");
        goto usage;
    }
    if ((error = check_target(dir)) < 0) goto done;

    if ((error = cli_client_new(&c, registry)) < 0) goto done;
    /* Each title is checked there with the registry's rule
     * (mlreg_title_validate): a relative path for files/ of plain
     * segments; the set rule is checked below, before anything is written. */
    if ((error = cli_release_ref_fetch(&rel, c, &rr)) == MLREG_EGONE && !rr.by_stage) {
        /* what a purge left: the manifest, its audit trail, the files
         * other releases share; the offline check accepts a missing file
         * only when the bundle's release.purge entry names it */
        fprintf(stderr, "%s\n", mlreg_error_last());
        purged = 1;
        error = cli_release_fetch_purged(&rel, c, &rr.ref);
    }
    if (error < 0) goto done;
    if (!(gone = calloc(rel.nlayers + 1, 1))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", dir) >= sizeof(tmp)) {
        tmp[0] = '\0';
        error = mlreg_error_set(MLREG_EIO, "%s: path too long", dir);
        goto done;
    }
    if (!mkdtemp(tmp)) {
        error = mlreg_error_set(MLREG_EIO, "cannot create a directory next to %s: %s", dir,
                                strerror(errno));
        tmp[0] = '\0';
        goto done;
    }
    made_tmp = 1;
    /* mkdtemp made it 0700; give DIR the mode a plain mkdir would. */
    mask = umask(0);
    umask(mask);
    if (chmod(tmp, 0777 & ~mask) < 0) {
        error = mlreg_error_set(MLREG_EIO, "chmod %s: %s", tmp, strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        if ((error = cli_path_join(sub, sizeof(sub), tmp, subdirs[i])) < 0) goto done;
        if (mkdir(sub, 0777) < 0) {
            error = mlreg_error_set(MLREG_EIO, "mkdir %s: %s", sub, strerror(errno));
            goto done;
        }
    }
    if ((error = cli_file_write_new(tmp, MLREG_BUNDLE_MANIFEST, rel.bytes, rel.len)) < 0 ||
        (error = write_signatures(&nsigs, tmp, c, rr.ref.model, &rel)) < 0)
        goto done;
    if ((error = cli_path_join(sub, sizeof(sub), tmp, MLREG_BUNDLE_FILES)) < 0) goto done;
    if ((files_fd = open(sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        error = mlreg_error_set(MLREG_EIO, "%s: %s", sub, strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < rel.nlayers; i++) {
        const cli_layer *l = &rel.layers[i];
        const char *base = NULL;
        int fd, ldir;
        if ((error = open_title(&fd, &ldir, &base, files_fd, l->title)) < 0) goto done;
        error = cli_blob_fetch(c, rr.ref.model, l, fd);
        if (!error && fsync(fd) < 0)
            error = mlreg_error_set(MLREG_EIO, "fsync files/%s: %s", l->title, strerror(errno));
        close(fd);
        if (!error && fsync(ldir) < 0)
            error = mlreg_error_set(MLREG_EIO, "fsync of the directory of files/%s: %s", l->title,
                                    strerror(errno));
        cli_format_size(size_str, sizeof(size_str), l->size);
        if (error == MLREG_ENOTFOUND && purged) {
            /* A directory made only for this file stays, empty: the
             * offline check accepts the directories of every title. */
            error = unlinkat(ldir, base, 0) < 0 ? mlreg_error_set(MLREG_EIO, "unlink files/%s: %s",
                                                                  l->title, strerror(errno))
                                                : 0;
            close(ldir);
            if (error < 0) goto done;
            fprintf(stderr, "  %-11s %-30s %10s  purged\n", l->kind, l->title, size_str);
            gone[i] = 1;
            ngone++;
            continue;
        }
        close(ldir);
        if (error < 0) goto done;
        fprintf(stderr, "  %-11s %-30s %10s  verified\n", l->kind, l->title, size_str);
        total += l->size;
    }
    if ((error = write_evaluations(&evals, &nevals, tmp, c, rr.ref.model, rel.version)) < 0 ||
        (error = write_sums(tmp, &rel, gone, evals, nevals)) < 0 ||
        (error = write_attestations(&natt, tmp, c, rr.ref.model, rel.version)) < 0 ||
        (error = write_audit(&nentries, &cp, origin, &logpk, tmp, c, rel.digest)) < 0)
        goto done;
    /* The bundle as an auditor will check it, before it becomes visible. */
    if ((error = mlreg_audit_verify_bundle(&rep, tmp, &logpk)) < 0) {
        error = cli_error_wrap(error, "the bundle does not verify");
        goto done;
    }
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        if ((error = cli_path_join(sub, sizeof(sub), tmp, subdirs[i])) < 0 ||
            (error = cli_sync_dir(sub)) < 0)
            goto done;
    }
    if ((error = cli_sync_dir(tmp)) < 0) goto done;
    if (rename(tmp, dir) < 0) {
        error = mlreg_error_set(MLREG_EIO, "rename %s to %s: %s", tmp, dir, strerror(errno));
        goto done;
    }
    made_tmp = 0;
    memcpy(parent, dir, strlen(dir) + 1);
    if ((error = cli_sync_dir(dirname(parent))) < 0) goto done;

    cli_format_size(size_str, sizeof(size_str), total);
    printf("bundle of %s@%s (%s) written to %s:\n", rr.ref.model, rel.version, rel.digest, dir);
    printf("  manifest.json          the manifest as stored\n");
    if (nsigs)
        printf("  manifest.json.minisig  the first signature; signatures/ holds %zu\n", nsigs);
    else
        printf("  signatures/            none: the release is not signed\n");
    printf("  files/                 %zu file%s, %s, verified\n", rel.nlayers - ngone,
           rel.nlayers - ngone == 1 ? "" : "s", size_str);
    if (ngone)
        printf("                         %zu file%s deleted by the purge, not included\n", ngone,
               ngone == 1 ? "" : "s");
    printf("  SHA256SUMS             manifest.json, every file under files/ and evaluations/\n");
    printf("  attestations/          %zu promotion statement%s\n", natt, natt == 1 ? "" : "s");
    printf("  evaluations/           %zu evaluation%s (DSSE envelopes as stored)\n", nevals,
           nevals == 1 ? "" : "s");
    printf("  audit/                 log key, checkpoint of %" PRIu64 " entries signed by %s,\n"
           "                         %zu entr%s about this release with inclusion proofs\n",
           cp.size, origin, nentries, nentries == 1 ? "y" : "ies");
    if (rep.purged)
        printf("PURGED: audit entry %" PRIu64 " by %s at %s: %s\n", rep.purged_seq, rep.purged_by,
               rep.purged_time, rep.purged_reason);
    if (rep.withdrawn)
        printf("WITHDRAWN: audit entry %" PRIu64 " by %s at %s: %s\n", rep.withdrawn_seq,
               rep.withdrawn_by, rep.withdrawn_time, rep.withdrawn_reason);
    printf("check it offline with: mlreg audit verify --bundle %s --log-key KEY.pub\n", dir);
    error = cli_flush_stdout();
done:
    if (files_fd >= 0) close(files_fd);
    if (made_tmp) nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(gone);
    free(evals);
    cli_release_clear(&rel);
    cli_client_free(c);
    return error < 0 ? cli_fail("bundle", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg bundle: %s\n%s", mlreg_error_last(), bundle_usage);
    return CLI_EXIT_USAGE;
}
