/* pull.c: `mlreg pull REF -o DIR`, the deploy step.
 *
 * The registry is not trusted: the manifest bytes are hashed and checked
 * against the pinned digest (or the Docker-Content-Digest the registry
 * claims), the manifest must be a release of the model asked for, and every
 * title is checked again here, so a hostile registry cannot make us write
 * outside DIR (no '/', not "." or "..", unique, not our own lock file).
 *
 * Files are downloaded into temp files inside DIR (same filesystem, so the
 * final rename is atomic), hashed while streaming. Nothing is renamed into
 * place until every file is verified; on any failure every temp file is
 * removed, so DIR gains nothing. A SIGINT/SIGTERM/SIGHUP during the pull also
 * removes the temp files before the process dies.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/oci.h"

#define MANIFEST_MAX (16u * 1024 * 1024)
#define PROGRESS_MIN (1u << 20) /* smaller transfers draw no progress */
#define LOCK_NAME    "mlreg.lock.json"
#define TMP_PREFIX   ".mlreg-tmp-"

static const char *const kinds[] = {MLREG_KINDS};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char usage_line[] =
    "usage: mlreg pull MODEL@VERSION|MODEL@sha256:HEX -o DIR [--registry URL]\n";

typedef struct {
    const char *title; /* these point into the parsed manifest */
    const char *kind;
    const char *digest_str;
    mlreg_digest digest;
    uint64_t size;
    char tmp[PATH_MAX]; /* temp file path, "" when none exists */
    int fd;
} pull_file;

/* Temp files to remove if a signal ends the pull (see on_signal). */
static pull_file *volatile sig_files;
static volatile sig_atomic_t sig_nfiles;
static char sig_lock_tmp[PATH_MAX];

static void on_signal(int sig)
{
    pull_file *files = sig_files;

    for (sig_atomic_t i = 0; files && i < sig_nfiles; i++)
        if (files[i].tmp[0]) unlink(files[i].tmp);
    if (sig_lock_tmp[0]) unlink(sig_lock_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int caught[] = {SIGINT, SIGTERM, SIGHUP};
#define NCAUGHT (sizeof(caught) / sizeof(caught[0]))

/* Installs on_signal for the signals that are not ignored (a background job
 * of a shell ignores SIGINT and must keep doing so); @p old receives the
 * dispositions to restore. */
static void signals_catch(struct sigaction old[NCAUGHT])
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NCAUGHT; i++) {
        sigaction(caught[i], NULL, &old[i]);
        if (old[i].sa_handler != SIG_IGN) sigaction(caught[i], &sa, NULL);
    }
}

static void signals_restore(const struct sigaction old[NCAUGHT])
{
    for (size_t i = 0; i < NCAUGHT; i++)
        sigaction(caught[i], &old[i], NULL);
}

/* A release manifest we cannot trust is a verification failure (exit 1). */
#define BAD(...) mlreg_error_set(MLREG_EMISMATCH, __VA_ARGS__)

static int kind_known(const char *kind)
{
    for (size_t k = 0; k < NKINDS; k++)
        if (!strcmp(kinds[k], kind)) return 1;
    return 0;
}

/* Checks that @p m is a release of @p ref's model and fills @p files (one per
 * layer, pointing into @p m) and *version_out. */
static int check_manifest(pull_file **files_out, size_t *nfiles_out, const char **version_out,
                          json_t *m, const cli_ref *ref)
{
    json_t *ann, *layers;
    const char *s, *model, *version;
    pull_file *files = NULL;
    size_t n;
    int error = 0;

    *files_out = NULL;
    *nfiles_out = 0;
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
        return BAD("manifest is a release of '%s', not of '%s'", model ? model : "(none)",
                   ref->model);
    if (!version || !cli_tag_valid(version))
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
        pull_file *f = &files[i];
        char mt[128];

        f->fd = -1;
        f->title = json_string_value(json_object_get(lann, MLREG_ANN_TITLE));
        f->kind = json_string_value(json_object_get(lann, MLREG_ANN_KIND));
        f->digest_str = json_string_value(json_object_get(layer, "digest"));
        s = json_string_value(json_object_get(layer, "mediaType"));
        if (!f->title || !cli_title_valid(f->title) || !strcmp(f->title, LOCK_NAME) ||
            !strncmp(f->title, TMP_PREFIX, strlen(TMP_PREFIX))) {
            error = BAD("layer %zu: unsafe or missing title '%s'; refusing to write it", i,
                        f->title ? f->title : "");
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(files[j].title, f->title)) {
                error = BAD("title '%s' appears twice in the manifest", f->title);
                goto done;
            }
        if (!f->kind || !kind_known(f->kind)) {
            error = BAD("%s: unknown kind '%s'", f->title, f->kind ? f->kind : "");
            goto done;
        }
        if (!strcmp(f->kind, "eval-report"))
            snprintf(mt, sizeof(mt), "%s", MLREG_MT_EVAL_REPORT);
        else
            snprintf(mt, sizeof(mt), MLREG_MT_LAYER_PREFIX "%s.v1", f->kind);
        if (!s || strcmp(s, mt)) {
            error =
                BAD("%s: media type '%s' does not match kind %s", f->title, s ? s : "", f->kind);
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
    *files_out = files;
    *nfiles_out = n;
    *version_out = version;
    files = NULL;
done:
    free(files);
    return error;
}

/* GETs the manifest and checks its bytes against the reference. *out owns
 * the parsed manifest; @p digest_out receives its digest. */
static int fetch_manifest(json_t **out, char digest_out[MLREG_DIGEST_STRLEN + 1], cli_client *c,
                          const cli_ref *ref)
{
    int error = 0;
    cli_response resp;
    char path[600];
    mlreg_digest d;
    json_error_t jerr;

    *out = NULL;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", ref->model,
             ref->version ? ref->version : ref->digest);
    cli_request req = {.method = "GET",
                       .url = path,
                       .accept = MLREG_MT_OCI_MANIFEST,
                       .body_fd = -1,
                       .max_body = MANIFEST_MAX};
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
    mlreg_digest_format(digest_out, &d);
    if (ref->digest && strcmp(ref->digest, digest_out)) {
        error = BAD("manifest bytes hash to %s, not the pinned %s", digest_out, ref->digest);
        goto done;
    }
    if (resp.content_digest && strcmp(resp.content_digest, digest_out)) {
        error = BAD("manifest bytes hash to %s, but the registry says %s", digest_out,
                    resp.content_digest);
        goto done;
    }
    if (!(*out = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, &jerr)))
        error = BAD("manifest is not valid JSON: %s", jerr.text);
done:
    cli_response_clear(&resp);
    return error;
}

static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return mlreg_error_set(MLREG_EINVALID, "bad output directory '%s'", dir);
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0777) < 0 && errno != EEXIST)
            return mlreg_error_set(MLREG_EIO, "mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) < 0 && errno != EEXIST)
        return mlreg_error_set(MLREG_EIO, "mkdir %s: %s", path, strerror(errno));
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "%s is not a directory", dir);
    return 0;
}

static int make_temp(int *fd_out, char *path, size_t len, const char *dir)
{
    if ((size_t)snprintf(path, len, "%s/" TMP_PREFIX "XXXXXX", dir) >= len)
        return mlreg_error_set(MLREG_EINVALID, "output directory path too long");
    if ((*fd_out = mkostemp(path, O_CLOEXEC)) < 0) {
        int e = errno;
        path[0] = '\0';
        return mlreg_error_set(MLREG_EIO, "cannot create a file in %s: %s", dir, strerror(e));
    }
    return 0;
}

static int write_all(int fd, const void *data, size_t len, const char *name)
{
    const char *p = data;

    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return mlreg_error_set(errno == ENOSPC ? MLREG_ENOSPACE : MLREG_EIO, "writing %s: %s",
                                   name, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

typedef struct {
    pull_file *f;
    mlreg_hasher *h;
    uint64_t got;
} download;

static int download_sink(void *ctx, const void *data, size_t len)
{
    download *d = ctx;
    int error;

    if (d->got + len > d->f->size)
        return BAD("%s: registry sent more than the %" PRIu64 " bytes the manifest declares",
                   d->f->title, d->f->size);
    if ((error = mlreg_hasher_update(d->h, data, len)) < 0) return error;
    if ((error = write_all(d->f->fd, data, len, d->f->title)) < 0) return error;
    d->got += len;
    return 0;
}

/* Downloads one blob into f->fd and verifies size and digest. */
static int download_file(cli_client *c, const char *model, pull_file *f)
{
    int error = 0;
    cli_response resp;
    download d = {.f = f};
    mlreg_digest got;
    char path[600], got_str[MLREG_DIGEST_STRLEN + 1], what[400];

    cli_response_init(&resp);
    if ((error = mlreg_hasher_new(&d.h)) < 0) goto done;
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", model, f->digest_str);
    snprintf(what, sizeof(what), "downloading %s", f->title);
    cli_request req = {.method = "GET",
                       .url = path,
                       .body_fd = -1,
                       .sink = download_sink,
                       .sink_ctx = &d,
                       .follow_redirects = 1,
                       .progress = f->size >= PROGRESS_MIN ? f->title : NULL};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status != 200) {
        error = cli_http_error(&resp, what);
        goto done;
    }
    if (d.got != f->size) {
        error = BAD("%s: size mismatch: received %" PRIu64 " bytes, the release says %" PRIu64,
                    f->title, d.got, f->size);
        goto done;
    }
    if ((error = mlreg_hasher_final(&got, d.h)) < 0) goto done;
    if (!mlreg_digest_equal(&got, &f->digest)) {
        mlreg_digest_format(got_str, &got);
        error = BAD("%s: digest mismatch: received %s, the release says %s", f->title, got_str,
                    f->digest_str);
    }
done:
    mlreg_hasher_free(d.h);
    cli_response_clear(&resp);
    return error;
}

/* fsync, set the mode a plain create would have given, close, rename. */
static int place(int *fd, char *tmp, const char *dir, const char *name, mode_t mode)
{
    char final[PATH_MAX];

    if ((size_t)snprintf(final, sizeof(final), "%s/%s", dir, name) >= sizeof(final))
        return mlreg_error_set(MLREG_EINVALID, "%s/%s: path too long", dir, name);
    if (fchmod(*fd, mode) < 0 || fsync(*fd) < 0)
        return mlreg_error_set(MLREG_EIO, "%s: %s", final, strerror(errno));
    if (close(*fd) < 0) {
        *fd = -1;
        return mlreg_error_set(MLREG_EIO, "%s: %s", final, strerror(errno));
    }
    *fd = -1;
    if (rename(tmp, final) < 0)
        return mlreg_error_set(MLREG_EIO, "rename to %s: %s", final, strerror(errno));
    tmp[0] = '\0';
    return 0;
}

static int write_lock(char *tmp, size_t tmplen, const char *dir, const cli_ref *ref,
                      const char *version, const char *digest, const pull_file *files, size_t n,
                      mode_t mode)
{
    int error = 0, fd = -1;
    json_t *lock = NULL, *arr;
    char *text = NULL;

    lock = json_pack("{s:s, s:s, s:s, s:[]}", "model", ref->model, "version", version, "digest",
                     digest, "files");
    if (!lock) goto nomem;
    arr = json_object_get(lock, "files");
    for (size_t i = 0; i < n; i++) {
        json_t *f =
            json_pack("{s:s, s:s, s:s, s:I}", "title", files[i].title, "kind", files[i].kind,
                      "digest", files[i].digest_str, "size", (json_int_t)files[i].size);
        if (!f || json_array_append_new(arr, f) < 0) goto nomem;
    }
    if (!(text = json_dumps(lock, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) goto nomem;
    if ((error = make_temp(&fd, tmp, tmplen, dir)) < 0 ||
        (error = write_all(fd, text, strlen(text), LOCK_NAME)) < 0 ||
        (error = write_all(fd, "\n", 1, LOCK_NAME)) < 0 ||
        (error = place(&fd, tmp, dir, LOCK_NAME, mode)) < 0)
        goto done;
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    if (fd >= 0) close(fd);
    free(text);
    json_decref(lock);
    return error;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return mlreg_error_set(MLREG_EIO, "fsync %s: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

int cmd_pull(int argc, char **argv)
{
    int error = 0, m;
    cli_ref ref;
    const char *refstr = NULL, *dir = NULL, *registry = NULL, *version = NULL, *v;
    char digest[MLREG_DIGEST_STRLEN + 1], size_str[32];
    cli_client *c = NULL;
    json_t *manifest = NULL;
    pull_file *files = NULL;
    size_t nfiles = 0;
    uint64_t total = 0;
    mode_t mask, mode;
    struct sigaction old_actions[NCAUGHT];
    int caught_set = 0;

    sig_lock_tmp[0] = '\0';
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_line, stdout);
            return CLI_EXIT_OK;
        }
        if ((m = cli_opt(&v, &i, argc, argv, "-o")) != 0 ||
            (m = cli_opt(&v, &i, argc, argv, "--output")) != 0) {
            if (m < 0) goto usage;
            dir = v;
        } else if ((m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            mlreg_error_set(MLREG_EINVALID, "unknown option '%s'", argv[i]);
            goto usage;
        } else if (refstr) {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", argv[i]);
            goto usage;
        } else {
            refstr = argv[i];
        }
    }
    if (!refstr) {
        mlreg_error_set(MLREG_EINVALID, "missing REF");
        goto usage;
    }
    if (cli_ref_parse(&ref, refstr, 1) < 0) goto usage;
    if (!dir || !*dir) {
        mlreg_error_set(MLREG_EINVALID, "missing -o DIR");
        goto usage;
    }

    mask = umask(0);
    umask(mask);
    mode = 0666 & ~mask;

    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = fetch_manifest(&manifest, digest, c, &ref)) < 0 ||
        (error = check_manifest(&files, &nfiles, &version, manifest, &ref)) < 0 ||
        (error = mkdir_p(dir)) < 0)
        goto done;

    sig_files = files;
    sig_nfiles = (sig_atomic_t)nfiles;
    signals_catch(old_actions);
    caught_set = 1;
    for (size_t i = 0; i < nfiles; i++) {
        pull_file *f = &files[i];
        if ((error = make_temp(&f->fd, f->tmp, sizeof(f->tmp), dir)) < 0 ||
            (error = download_file(c, ref.model, f)) < 0)
            goto done;
        cli_format_size(size_str, sizeof(size_str), f->size);
        fprintf(stderr, "  %-11s %-30s %10s  verified\n", f->kind, f->title, size_str);
        total += f->size;
    }
    /* Every file is verified: place them, then the lock file. */
    for (size_t i = 0; i < nfiles; i++)
        if ((error = place(&files[i].fd, files[i].tmp, dir, files[i].title, mode)) < 0) goto done;
    if ((error = write_lock(sig_lock_tmp, sizeof(sig_lock_tmp), dir, &ref, version, digest, files,
                            nfiles, mode)) < 0 ||
        (error = sync_dir(dir)) < 0)
        goto done;
    cli_format_size(size_str, sizeof(size_str), total);
    fprintf(stderr, "pulled %s@%s (%s) into %s: %zu file%s, %s, all verified\n", ref.model, version,
            digest, dir, nfiles, nfiles == 1 ? "" : "s", size_str);
    printf("%s\n", digest);
    if (fflush(stdout) != 0 || ferror(stdout))
        error = mlreg_error_set(MLREG_EIO, "writing to stdout: %s", strerror(errno));
done:
    for (size_t i = 0; i < nfiles; i++) {
        if (files[i].fd >= 0) close(files[i].fd);
        if (files[i].tmp[0]) unlink(files[i].tmp);
    }
    if (sig_lock_tmp[0]) unlink(sig_lock_tmp);
    if (caught_set) signals_restore(old_actions);
    sig_nfiles = 0;
    sig_files = NULL;
    free(files);
    json_decref(manifest);
    cli_client_free(c);
    return error < 0 ? cli_fail("pull", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg pull: %s\n%s", mlreg_error_last(), usage_line);
    return CLI_EXIT_USAGE;
}
