/* release.c: one release on a registry as the client commands see it
 * (release.h): the manifest (fetched, hashed, checked), its blobs (streamed
 * through SHA-256), and its signatures (signed, attached, judged).
 *
 * The registry is not trusted: the manifest bytes are hashed and checked
 * against the pinned digest (or the Docker-Content-Digest the registry
 * claims), the manifest must be a release of the model asked for, and every
 * title is checked here with the registry's own rules (mlreg_title_validate:
 * a relative path of up to 8 segments, none empty or starting with '.', not
 * pull's lock file, no control characters; mlreg_titles_check: unique
 * ignoring ASCII case, no directory spelt two ways, no file where another
 * title needs a directory), so a hostile registry cannot make pull or
 * bundle write outside DIR, plant a hidden file in it, or have two files
 * (or a file and the lock file) land on one name on a case-insensitive
 * filesystem. Pull still reaches every title one segment at a time
 * (safepath.h): what DIR holds is not trusted either. Signatures are judged only
 * with keys the user trusts locally.
 */
#include "release.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "mlreg/chunk_index.h"
#include "mlreg/common.h"
#include "mlreg/file.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"
#include "mlreg/registry.h"
#include "mlreg/text.h"

/* A release we cannot trust is a verification failure (exit 1). */
#define BAD(...) mlreg_error_set(MLREG_EMISMATCH, __VA_ARGS__)

void cli_release_init(cli_release *r)
{
    memset(r, 0, sizeof(*r));
}

void cli_release_clear(cli_release *r)
{
    free(r->bytes);
    free(r->layers);
    json_decref(r->json);
    cli_release_init(r);
}

/* Any kind of the registry's grammar (names.h): kinds are open. */
static int kind_known(const char *kind)
{
    return mlreg_kind_valid(kind);
}

/* Checks that r->json is a release of @p ref's model and fills r->layers and
 * r->version (pointing into r->json). */
static int check_manifest(cli_release *r, const cli_ref *ref)
{
    json_t *m = r->json, *ann, *layers;
    const char *s, *model, *version;
    cli_layer *files = NULL;
    size_t n;
    int error = 0;

    if (!json_is_object(m)) return BAD("manifest is not a JSON object");
    if (json_integer_value(json_object_get(m, "schemaVersion")) != 2)
        return BAD("manifest schemaVersion is not 2");
    s = json_string_value(json_object_get(m, "mediaType"));
    if (s && strcmp(s, MLREG_MT_OCI_MANIFEST))
        return BAD("manifest media type is %s, not an OCI image manifest", s);
    s = json_string_value(json_object_get(m, "artifactType"));
    if (!s || strcmp(s, MLREG_ARTIFACT_RELEASE))
        return BAD("%s is not an mlreg release (artifactType %s)", ref->model, s ? s : "missing");
    ann = json_object_get(m, "annotations");
    model = json_string_value(json_object_get(ann, MLREG_ANN_MODEL));
    version = json_string_value(json_object_get(ann, MLREG_ANN_VERSION));
    if (!model || strcmp(model, ref->model))
        return BAD("manifest is a release of '%s', not of '%s'",
                   model ? mlreg_text_printable(model) : "(none)", ref->model);
    if (!version || mlreg_tag_validate(version) < 0)
        return BAD("manifest has no valid %s annotation", MLREG_ANN_VERSION);
    if (ref->version && strcmp(version, ref->version))
        return BAD("manifest is version '%s', not '%s'", version, ref->version);
    layers = json_object_get(m, "layers");
    if (!json_is_array(layers)) return BAD("manifest has no layers array");
    n = json_array_size(layers);
    if (n && !(files = calloc(n, sizeof(*files))))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *layer = json_array_get(layers, i), *lann = json_object_get(layer, "annotations");
        json_t *size = json_object_get(layer, "size");
        cli_layer *f = &files[i];
        char mt[128];

        f->title = json_string_value(json_object_get(lann, MLREG_ANN_TITLE));
        f->kind = json_string_value(json_object_get(lann, MLREG_ANN_KIND));
        f->digest_str = json_string_value(json_object_get(layer, "digest"));
        s = json_string_value(json_object_get(layer, "mediaType"));
        if (!f->title || mlreg_title_validate(f->title) < 0) {
            error = BAD("layer %zu: %s; refusing to write it", i,
                        f->title ? mlreg_error_last() : "no title");
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (!mlreg_title_cmp(files[j].title, f->title)) {
                if (!strcmp(files[j].title, f->title))
                    error = BAD("title '%s' appears twice in the manifest", f->title);
                else
                    error = BAD("titles '%s' and '%s' differ only in letter case (one file on "
                                "a case-insensitive filesystem)",
                                files[j].title, f->title);
                goto done;
            }
        f->chunk_index = json_string_value(json_object_get(lann, MLREG_ANN_CHUNK_INDEX));
        f->chunks_of = json_string_value(json_object_get(lann, MLREG_ANN_CHUNKS_OF));
        f->is_chunk_index = f->kind && !strcmp(f->kind, MLREG_KIND_CHUNK_INDEX);
        if (!f->kind || (!f->is_chunk_index && !kind_known(f->kind))) {
            error = BAD("%s: unknown kind '%s'", f->title,
                        f->kind ? mlreg_text_printable(f->kind) : "");
            goto done;
        }
        if (f->is_chunk_index)
            snprintf(mt, sizeof(mt), "%s", MLREG_MT_CHUNK_INDEX);
        else if (!strcmp(f->kind, "eval-report"))
            snprintf(mt, sizeof(mt), "%s", MLREG_MT_EVAL_REPORT);
        else
            snprintf(mt, sizeof(mt), MLREG_MT_LAYER_PREFIX "%s.v1", f->kind);
        if (!s || strcmp(s, mt)) {
            error = BAD("%s: media type '%s' does not match kind %s", f->title,
                        s ? mlreg_text_printable(s) : "", f->kind);
            goto done;
        }
        if (!f->digest_str || mlreg_digest_parse(&f->digest, f->digest_str) < 0) {
            error = BAD("%s: bad digest in the manifest", f->title);
            goto done;
        }
        if (!json_is_integer(size) || json_integer_value(size) < 0) {
            error = BAD("%s: bad size in the manifest", f->title);
            goto done;
        }
        f->size = (uint64_t)json_integer_value(size);
    }
    /* The set rule on top (no directory spelt two ways, no file where
     * another title needs a directory): every title can be written into
     * one directory, and no file lands where another's directory is. */
    if (n) {
        const char **titles = malloc(n * sizeof(*titles));
        if (!titles) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            titles[i] = files[i].title;
        error = mlreg_titles_check(titles, n);
        free(titles);
        if (error == MLREG_EINVALID) {
            error = BAD("%s; refusing to write the release", mlreg_error_last());
            goto done;
        }
        if (error < 0) goto done;
    }
    r->layers = files;
    r->nlayers = n;
    r->version = version;
    files = NULL;
done:
    free(files);
    return error;
}

/* GETs the manifest at @p path (the OCI API's, or the release API's for a
 * purged release) and checks it as cli_release_fetch() says. */
static int fetch_from(cli_release *r, cli_client *c, const cli_ref *ref, const char *path)
{
    int error = 0;
    cli_response resp;
    mlreg_digest d;
    json_error_t jerr;

    cli_release_clear(r);
    cli_response_init(&resp);
    cli_request req = {.method = "GET",
                       .url = path,
                       .accept = MLREG_MT_OCI_MANIFEST,
                       .body_fd = -1,
                       .max_body = CLI_MANIFEST_MAX};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status != 200) {
        error =
            cli_http_error(&resp, ref->version ? "fetching the release" : "fetching the manifest");
        if (resp.status == 404)
            error = mlreg_error_set(MLREG_ENOTFOUND, "%s@%s: no such release (HTTP 404)",
                                    ref->model, ref->version ? ref->version : ref->digest);
        goto done;
    }
    if ((error = mlreg_digest_buffer(&d, resp.body ? resp.body : "", resp.body_len)) < 0) goto done;
    mlreg_digest_format(r->digest, &d);
    if (ref->digest && strcmp(ref->digest, r->digest)) {
        error = BAD("manifest bytes hash to %s, not the pinned %s", r->digest, ref->digest);
        goto done;
    }
    if (resp.content_digest && strcmp(resp.content_digest, r->digest)) {
        error = BAD("manifest bytes hash to %s, but the registry says %s", r->digest,
                    mlreg_text_printable(resp.content_digest));
        goto done;
    }
    if (!(r->json = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, &jerr))) {
        error = BAD("manifest is not valid JSON: %s", jerr.text);
        goto done;
    }
    if ((error = check_manifest(r, ref)) < 0) goto done;
    /* Keep the bytes (they are what a signature covers): take the body. */
    if (!resp.body && !(resp.body = calloc(1, 1))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    r->bytes = resp.body;
    r->len = resp.body_len;
    resp.body = NULL;
    resp.body_len = 0;
done:
    cli_response_clear(&resp);
    if (error < 0) cli_release_clear(r);
    return error;
}

int cli_release_parse(cli_release *r, const cli_ref *ref, const char *bytes, size_t len)
{
    int error = 0;
    mlreg_digest d;
    json_error_t jerr;

    cli_release_clear(r);
    if ((error = mlreg_digest_buffer(&d, bytes, len)) < 0) goto done;
    mlreg_digest_format(r->digest, &d);
    if (ref->digest && strcmp(ref->digest, r->digest)) {
        error = BAD("manifest bytes hash to %s, not %s", r->digest, ref->digest);
        goto done;
    }
    if (!(r->json = json_loadb(bytes, len, 0, &jerr))) {
        error = BAD("manifest is not valid JSON: %s", jerr.text);
        goto done;
    }
    if ((error = check_manifest(r, ref)) < 0) goto done;
    if (!(r->bytes = malloc(len + 1))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(r->bytes, bytes, len);
    r->bytes[len] = '\0';
    r->len = len;
done:
    if (error < 0) cli_release_clear(r);
    return error;
}

int cli_release_fetch(cli_release *r, cli_client *c, const cli_ref *ref)
{
    char path[600];

    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", ref->model,
             ref->version ? ref->version : ref->digest);
    return fetch_from(r, c, ref, path);
}

int cli_release_fetch_purged(cli_release *r, cli_client *c, const cli_ref *ref)
{
    char path[600];

    if (!ref->version)
        return mlreg_error_set(MLREG_EGONE,
                               "%s@%s was purged: name it by MODEL@VERSION to bundle what stays",
                               ref->model, ref->digest);
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/manifest", ref->model,
             ref->version);
    return fetch_from(r, c, ref, path);
}

/* ---- blobs ----------------------------------------------------------------------- */

/* libcurl hands a body over in pieces of at most 16 KiB. They are hashed as
 * they come but gathered into WRITE_BUFFER bytes per write(), and every
 * WRITE_BEHIND bytes written the kernel is asked to start writing them to
 * disk (sync_file_range, no wait), so the caller's one fsync at the end has
 * little left to do: the disk works while the network does. */
#define WRITE_BUFFER ((size_t)1 << 20)
#define WRITE_BEHIND ((uint64_t)16 << 20)

typedef struct {
    const cli_layer *l;
    mlreg_hasher *h;
    int fd;
    uint64_t got;
    unsigned char *buf; /* WRITE_BUFFER bytes when fd >= 0 */
    size_t buffered;
    uint64_t written, synced; /* bytes written to fd; of them, handed to write-back */
} download;

static int download_flush(download *d)
{
    int error;

    if (d->buffered == 0) return 0;
    if ((error = cli_write_all(d->fd, d->buf, d->buffered, d->l->title)) < 0) return error;
    d->written += d->buffered;
    d->buffered = 0;
    if (d->written - d->synced >= WRITE_BEHIND) {
        sync_file_range(d->fd, (off_t)d->synced, (off_t)(d->written - d->synced),
                        SYNC_FILE_RANGE_WRITE);
        d->synced = d->written;
    }
    return 0;
}

static int download_sink(void *ctx, const void *data, size_t len)
{
    download *d = ctx;
    const unsigned char *p = data;
    int error;

    if (d->got + len > d->l->size)
        return BAD("%s: registry sent more than the %" PRIu64 " bytes the manifest declares",
                   d->l->title, d->l->size);
    if ((error = mlreg_hasher_update(d->h, data, len)) < 0) return error;
    d->got += len;
    while (d->fd >= 0 && len) {
        size_t n = WRITE_BUFFER - d->buffered < len ? WRITE_BUFFER - d->buffered : len;
        memcpy(d->buf + d->buffered, p, n);
        d->buffered += n;
        p += n;
        len -= n;
        if (d->buffered == WRITE_BUFFER && (error = download_flush(d)) < 0) return error;
    }
    return 0;
}

#define DAMAGED_HINT                                                                               \
    "the registry's copy may be damaged: an admin can run `mlreg scrub --model %s`; pushing the "  \
    "file again repairs it"

int cli_blob_fetch(cli_client *c, const char *model, const cli_layer *l, int fd)
{
    int error = 0;
    cli_response resp;
    download d = {.l = l, .fd = fd};
    mlreg_digest got;
    char path[600], got_str[MLREG_DIGEST_STRLEN + 1], what[400];

    cli_response_init(&resp);
    if ((error = mlreg_hasher_new(&d.h)) < 0) goto done;
    if (fd >= 0 && !(d.buf = malloc(WRITE_BUFFER))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", model, l->digest_str);
    snprintf(what, sizeof(what), "downloading %s", l->title);
    cli_request req = {.method = "GET",
                       .url = path,
                       .body_fd = -1,
                       .sink = download_sink,
                       .sink_ctx = &d,
                       .follow_redirects = 1,
                       .progress = l->size >= CLI_PROGRESS_MIN ? l->title : NULL};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status != 200) {
        error = cli_http_error(&resp, what);
        goto done;
    }
    if (fd >= 0 && (error = download_flush(&d)) < 0) goto done;
    /* The bytes came back whole (a cut transfer is a transport error), so
     * a mismatch is most likely the registry's stored copy: say what
     * repairs it. */
    if (d.got != l->size) {
        error = BAD("%s: size mismatch: received %" PRIu64 " bytes, the release says %" PRIu64
                    "; " DAMAGED_HINT,
                    l->title, d.got, l->size, model);
        goto done;
    }
    if ((error = mlreg_hasher_final(&got, d.h)) < 0) goto done;
    if (!mlreg_digest_equal(&got, &l->digest)) {
        mlreg_digest_format(got_str, &got);
        error = BAD("%s: digest mismatch: received %s, the release says %s; " DAMAGED_HINT,
                    l->title, got_str, l->digest_str, model);
    }
done:
    free(d.buf);
    mlreg_hasher_free(d.h);
    cli_response_clear(&resp);
    return error;
}

/* ---- signing ------------------------------------------------------------------------ */

int cli_seckey_load(mlreg_seckey **out, const char *path)
{
    int error = 0, encrypted = 0;
    char *password = NULL, prompt[600];

    *out = NULL;
    if ((error = mlreg_seckey_needs_password(&encrypted, path)) < 0) {
        /* A missing key file is a local error (exit 2), not a refusal; the
         * message already names the file. */
        return error == MLREG_ENOTFOUND ? MLREG_EIO : error;
    }
    if (encrypted) {
        snprintf(prompt, sizeof(prompt), "Password for %.500s: ", path);
        if ((error = mlreg_password_read(&password, prompt, 0)) < 0) goto done;
    }
    if ((error = mlreg_seckey_load(out, path, password)) < 0) {
        if (error == MLREG_ENOTFOUND)
            error = MLREG_EIO;
        else if (error == MLREG_EAUTH)
            error = cli_error_wrap(MLREG_EAUTH, "%s", path);
    }
done:
    mlreg_password_free(password);
    return error;
}

int cli_release_sign(char **out, const mlreg_seckey *sk, const char *model, const char *version,
                     const char *digest, const void *manifest, size_t len)
{
    char *comment = NULL;
    int error;

    *out = NULL;
    if ((error = mlreg_release_comment_format(&comment, model, version, digest,
                                              (int64_t)time(NULL))) < 0)
        return error;
    error = mlreg_sign(out, sk, manifest, len, comment, NULL);
    free(comment);
    return error;
}

int cli_sig_attach(int *created_out, int *trusted_out, cli_client *c, const char *model,
                   const char *version, const char *sig_text, const mlreg_pubkey *pk)
{
    int error = 0;
    cli_response resp;
    char path[600], b64[MLREG_PUBKEY_B64LEN + 1];
    char *body = NULL;
    json_t *req_json = NULL, *ans = NULL;

    cli_response_init(&resp);
    mlreg_pubkey_base64(b64, pk);
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/signatures", model, version);
    if (!(req_json = json_pack("{s:s, s:s}", "signature", sig_text, "public_key", b64)) ||
        !(body = json_dumps(req_json, JSON_COMPACT))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    cli_request req = {.method = "POST",
                       .url = path,
                       .accept = "application/json",
                       .content_type = "application/json",
                       .body = body,
                       .body_len = strlen(body),
                       .body_fd = -1,
                       .max_body = 64 * 1024};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status != 200 && resp.status != 201) {
        error = cli_http_error(&resp, "attaching the signature");
        goto done;
    }
    ans = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
    if (created_out) *created_out = resp.status == 201;
    if (trusted_out) *trusted_out = json_is_true(json_object_get(ans, "trusted"));
done:
    json_decref(ans);
    json_decref(req_json);
    free(body);
    cli_response_clear(&resp);
    return error;
}

int cli_sigs_get(json_t **out, cli_client *c, const char *model, const char *version)
{
    int error = 0;
    cli_response resp;
    char path[600];
    json_error_t jerr;

    *out = NULL;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/signatures", model, version);
    cli_request req = {.method = "GET",
                       .url = path,
                       .accept = "application/json",
                       .body_fd = -1,
                       .max_body = CLI_API_MAX};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status != 200) {
        error = cli_http_error(&resp, "fetching the signatures");
        goto done;
    }
    if (!(*out = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, &jerr)) ||
        !json_is_array(json_object_get(*out, "signatures"))) {
        json_decref(*out);
        *out = NULL;
        error = mlreg_error_set(MLREG_ESERVER, "fetching the signatures: registry sent %s",
                                "no signatures list");
    }
done:
    cli_response_clear(&resp);
    return error;
}

/* The registry's word that some signature carries our key id is not
 * enough: anyone may attach a signature under any key id that is not in the
 * registry's keyring (made with another key), and "already signed, nothing
 * to do" would then leave the release without our signature while we
 * report success. So the signature itself is verified. */
int cli_sigs_signed_by(json_t *sigs, const mlreg_pubkey *pk, const char *model, const char *version,
                       const char *digest, const char *bytes, size_t len)
{
    json_t *arr = json_object_get(sigs, "signatures"), *e;
    size_t i;

    json_array_foreach(arr, i, e)
    {
        const char *text = json_string_value(json_object_get(e, "signature"));
        char *comment = NULL;
        int ok;

        if (!text) continue;
        ok = mlreg_sign_verify(&comment, NULL, text, strlen(text), bytes, len, pk) == 0 &&
             mlreg_release_comment_check(comment, model, version, digest) == 0;
        free(comment);
        if (ok) return 1;
    }
    mlreg_error_clear();
    return 0;
}

/* ---- judging signatures ------------------------------------------------------------------ */

void cli_sigreport_free(cli_sigreport *rep)
{
    free(rep->checks);
    json_decref(rep->list);
    memset(rep, 0, sizeof(*rep));
}

int cli_sigs_check(cli_sigreport *rep, cli_client *c, const char *model, const cli_release *r,
                   const mlreg_trustset *ts)
{
    int error = 0;
    json_t *list = NULL, *arr, *e;
    const char *digest;
    size_t i;

    cli_sigreport_free(rep);
    if ((error = cli_sigs_get(&list, c, model, r->version)) < 0) goto done;
    digest = json_string_value(json_object_get(list, "digest"));
    if (digest && strcmp(digest, r->digest)) {
        error = BAD("the registry lists signatures of %s@%s for %s, but its manifest is %s", model,
                    r->version, mlreg_text_printable(digest), r->digest);
        goto done;
    }
    arr = json_object_get(list, "signatures");
    if (json_array_size(arr) &&
        !(rep->checks = calloc(json_array_size(arr), sizeof(*rep->checks)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    json_array_foreach(arr, i, e)
    {
        mlreg_sigcheck *chk = &rep->checks[rep->n++];
        const char *text = json_string_value(json_object_get(e, "signature"));
        const char *at = json_string_value(json_object_get(e, "attached_at"));
        const char *signer = json_string_value(json_object_get(e, "public_key"));
        const char *status = json_string_value(json_object_get(e, "status"));
        json_t *counts = json_object_get(e, "counts");

        if (!text) {
            memset(chk, 0, sizeof(*chk));
            chk->status = MLREG_SIGCHECK_INVALID;
            snprintf(chk->reason, sizeof(chk->reason),
                     "registry sent signature %zu without its .minisig text", i + 1);
            continue;
        }
        if ((error = mlreg_trustset_check(chk, ts, text, strlen(text), signer, at, r->bytes, r->len,
                                          model, r->version, r->digest)) < 0)
            goto done;
        /* The registry may withhold trust (a revocation we have not heard
         * of yet), never grant it. */
        if (chk->status == MLREG_SIGCHECK_VALID && json_is_false(counts) && status &&
            (!strcmp(status, "retired") || !strcmp(status, "compromised"))) {
            chk->status = MLREG_SIGCHECK_REVOKED;
            snprintf(chk->reason, sizeof(chk->reason),
                     "the registry reports key %s as %s and does not count this signature",
                     chk->key_id, status);
        }
        if (chk->status == MLREG_SIGCHECK_VALID) rep->valid++;
    }
done:
    rep->list = list;
    if (error < 0) cli_sigreport_free(rep);
    return error;
}

int cli_sigreport_verdict(const cli_sigreport *rep)
{
    const mlreg_sigcheck *revoked = NULL;
    char ids[200] = "";
    size_t untrusted = 0, used = 0;

    for (size_t i = 0; i < rep->n; i++)
        if (rep->checks[i].status == MLREG_SIGCHECK_INVALID)
            return BAD("%s", rep->checks[i].reason);
    if (rep->valid) return 0;
    if (rep->n == 0) return BAD("no signature by a trusted key: the release has no signatures");
    for (size_t i = 0; i < rep->n; i++) {
        const mlreg_sigcheck *k = &rep->checks[i];
        if (k->status == MLREG_SIGCHECK_REVOKED && !revoked) revoked = k;
        if (k->status == MLREG_SIGCHECK_UNTRUSTED) {
            int w =
                snprintf(ids + used, sizeof(ids) - used, "%s%s", untrusted ? ", " : "", k->key_id);
            if (w > 0 && (size_t)w < sizeof(ids) - used) used += (size_t)w;
            untrusted++;
        }
    }
    if (revoked) return BAD("no valid signature by a trusted key: %s", revoked->reason);
    return BAD("no signature by a trusted key (signed only by untrusted key%s %s)",
               untrusted == 1 ? "" : "s", ids);
}

/* ---- trusted-key options ------------------------------------------------------------ */

void cli_trust_opts_init(cli_trust_opts *o)
{
    memset(o, 0, sizeof(*o));
}

void cli_trust_opts_clear(cli_trust_opts *o)
{
    free(o->keys);
    cli_trust_opts_init(o);
}

int cli_trust_opts_given(const cli_trust_opts *o)
{
    return o->nkeys > 0 || o->keyring != NULL;
}

int cli_trust_opt(cli_trust_opts *o, int *i, int argc, char **argv)
{
    const char *v;
    int m;

    if ((m = cli_opt(&v, i, argc, argv, "--trusted-key")) != 0) {
        if (m > 0 && o->nkeys == o->cap) {
            size_t cap = o->cap ? o->cap * 2 : 4;
            const char **grown = realloc(o->keys, cap * sizeof(*grown));
            if (!grown) {
                mlreg_error_set(MLREG_ENOMEM, "out of memory");
                return -1;
            }
            o->keys = grown;
            o->cap = cap;
        }
        if (m > 0) o->keys[o->nkeys++] = v;
        return m;
    }
    if ((m = cli_opt(&v, i, argc, argv, "--keyring")) != 0) {
        if (m > 0) {
            if (o->keyring) {
                mlreg_error_set(MLREG_EINVALID, "--keyring given twice");
                return -1;
            }
            o->keyring = v;
        }
        return m;
    }
    return 0;
}

/* Reads the keys of a keyring file's JSON into @p ts (see
 * mlreg_trustset_add_entry for what each entry may say). Fields that must
 * be strings and are something else are refused, not ignored. */
static int keyring_load(mlreg_trustset *ts, const char *text, size_t len)
{
    static const char *const fields[] = {"public_key", "key_id", "name", "revocation",
                                         "revoked_at"};
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr), *keys, *e;
    const char *v[5];
    size_t i;
    int error = 0;

    if (!root) return mlreg_error_set(MLREG_EINVALID, "keyring: invalid JSON: %s", jerr.text);
    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        error = mlreg_error_set(MLREG_EINVALID, "keyring: no \"keys\" array");
        goto done;
    }
    json_array_foreach(keys, i, e)
    {
        if (!json_is_object(e)) {
            error = mlreg_error_set(MLREG_EINVALID, "keyring: key %zu is not an object", i + 1);
            goto done;
        }
        for (size_t f = 0; f < 5; f++) {
            json_t *j = json_object_get(e, fields[f]);
            if (j && !json_is_null(j) && !json_is_string(j)) {
                error = mlreg_error_set(MLREG_EINVALID, "keyring: key %zu: %s is not a string",
                                        i + 1, fields[f]);
                goto done;
            }
            v[f] = json_string_value(j);
        }
        if ((error = mlreg_trustset_add_entry(ts, v[0], v[1], v[2], v[3], v[4])) < 0) {
            error = cli_error_wrap(error, "keyring: key %zu", i + 1);
            goto done;
        }
    }
done:
    json_decref(root);
    return error;
}

int cli_trust_load(mlreg_trustset **out, const cli_trust_opts *o)
{
    int error = 0;
    mlreg_trustset *ts = NULL;
    char *text = NULL;
    size_t len = 0;
    mlreg_pubkey pk;

    *out = NULL;
    if ((error = mlreg_trustset_new(&ts)) < 0) goto done;
    for (size_t i = 0; i < o->nkeys; i++) {
        if ((error = mlreg_pubkey_load(&pk, o->keys[i])) < 0) {
            error =
                cli_error_wrap(error == MLREG_ENOMEM || error == MLREG_EINVALID ? error : MLREG_EIO,
                               "--trusted-key %s", o->keys[i]);
            goto done;
        }
        if ((error = mlreg_trustset_add(ts, &pk, o->keys[i], MLREG_REVOKE_NONE, NULL)) < 0) {
            error = cli_error_wrap(error, "--trusted-key %s", o->keys[i]);
            goto done;
        }
    }
    if (o->keyring) {
        /* A missing keyring file is a local error like any unreadable one. */
        if ((error = mlreg_file_read(&text, &len, o->keyring, CLI_API_MAX)) < 0) {
            if (error == MLREG_ENOTFOUND) error = MLREG_EIO;
            goto done;
        }
        if ((error = keyring_load(ts, text, len)) < 0) {
            error = cli_error_wrap(error, "%s", o->keyring);
            goto done;
        }
    }
    if (mlreg_trustset_count(ts) == 0) {
        if (o->keyring)
            error = mlreg_error_set(MLREG_EINVALID, "no trusted keys: %s lists none", o->keyring);
        else
            error = mlreg_error_set(MLREG_EINVALID,
                                    "no trusted keys: give --trusted-key FILE or --keyring FILE");
        goto done;
    }
    *out = ts;
    ts = NULL;
done:
    free(text);
    mlreg_trustset_free(ts);
    return error;
}

int cli_error_wrap(int code, const char *fmt, ...)
{
    char prev[512], prefix[512];
    va_list ap;

    snprintf(prev, sizeof(prev), "%s", mlreg_error_last());
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    return mlreg_error_set(code, "%s: %s", prefix, prev);
}
