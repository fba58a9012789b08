/* helpers.c: fixtures shared by the Check suites (see helpers.h). */
#include "../../registry/registry_internal.h"
#include "helpers.h"

#include "mlreg/blob.h"
#include "mlreg/json_out.h"
#include "mlreg/oci.h"
#include "mlreg/promotions.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files ----------------------------------------------------------------- */

void th_tmpdir(char *dir, size_t size, const char *suite)
{
    int n = snprintf(dir, size, "/tmp/mlreg-check-%s-XXXXXX", suite);

    ck_assert_msg(n > 0 && (size_t)n < size, "temp dir name too long for %s", suite);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

void th_rm_rf(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;

    if (lstat(path, &st) < 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    chmod(path, 0700);
    if ((d = opendir(path)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            char child[4096];

            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
            th_rm_rf(child);
        }
        closedir(d);
    }
    rmdir(path);
}

const char *th_root_dir(void)
{
    const char *base = getenv("MLREG_ROOT");

    return base ? base : ".";
}

const char *th_vector_path(const char *rel)
{
    static char bufs[8][4096];
    static unsigned int next;
    char *b = bufs[next++ % 8];

    snprintf(b, sizeof(bufs[0]), "%s/tests/vectors/%s", th_root_dir(), rel);
    return b;
}

char *th_slurp(size_t *len_out, const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    ck_assert_msg(f != NULL, "missing vector file %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len_out) *len_out = (size_t)n;
    return buf;
}

/* ---- a registry in a temp dir ----------------------------------------------- */

void th_registry_setup(th_registry *fx, const char *suite, const th_registry_opts *opts)
{
    memset(fx, 0, sizeof(*fx));
    if (opts) fx->opts = *opts;
    ck_assert_int_ge(sodium_init(), 0);
    /* MLREG_TEST_REHEARSE=1: every change runs twice, the first run thrown
     * away, as a change that loses its log seq to another node does */
    mlreg_registry__rehearse_changes(getenv("MLREG_TEST_REHEARSE") != NULL);
    th_tmpdir(fx->dir, sizeof(fx->dir), suite);
    if (!fx->opts.keyless) {
        if (fx->opts.key_file)
            ck_assert_msg(mlreg_seckey_load(&fx->sk, fx->opts.key_file, NULL) == 0, "key: %s",
                          mlreg_error_last());
        else
            ck_assert_int_eq(mlreg_seckey_generate(&fx->sk), 0);
        fx->keys[0].name = (char *)"release-bot";
        fx->keys[0].role = (char *)"release";
        fx->keys[0].file = (char *)"release.pub";
        mlreg_seckey_pubkey(&fx->keys[0].pubkey, fx->sk);
        ck_assert_uint_lt(fx->opts.n_extra_keys, TH_MAX_KEYS);
        for (size_t i = 0; i < fx->opts.n_extra_keys; i++)
            fx->keys[1 + i] = fx->opts.extra_keys[i];
        fx->n_keys = 1 + fx->opts.n_extra_keys;
    }
    th_registry_open(fx);
}

void th_registry_open(th_registry *fx)
{
    mlreg_registry_opts opts;

    memset(&opts, 0, sizeof(opts));
    opts.data_dir = fx->dir;
    opts.map_size = fx->opts.map_size ? fx->opts.map_size : 64u * 1024 * 1024;
    opts.max_manifest_bytes = fx->opts.max_manifest_bytes;
    opts.backend = fx->opts.backend;
    opts.trusted_keys = fx->n_keys ? fx->keys : NULL;
    opts.n_trusted_keys = fx->n_keys;
    fx->opts.backend = NULL;
    ck_assert_msg(mlreg_registry_open(&fx->reg, &opts) == 0, "open: %s", mlreg_error_last());
}

void th_registry_teardown(th_registry *fx)
{
    mlreg_registry_free(fx->reg);
    mlreg_seckey_free(fx->sk);
    if (fx->dir[0]) th_rm_rf(fx->dir);
    memset(fx, 0, sizeof(*fx));
}

/* ---- content and callers -------------------------------------------------- */

void th_put_blob_n(mlreg_digest *out, mlreg_registry *reg, const char *repo, const char *who,
                   const void *data, size_t len)
{
    mlreg_blob_writer *w = NULL;

    ck_assert_int_eq(mlreg_blobstore_open_write(&w, mlreg_registry_blobstore(reg), (int64_t)len),
                     0);
    ck_assert_int_eq(mlreg_blob_writer_write(w, data, len), 0);
    ck_assert_int_eq(mlreg_blob_writer_commit(out, w, NULL, (int64_t)len), 0);
    ck_assert_msg(mlreg_registry_blob_link(reg, repo, out, who) == 0, "link: %s",
                  mlreg_error_last());
}

void th_put_blob(mlreg_digest *out, mlreg_registry *reg, const char *repo, const char *who,
                 const char *text)
{
    th_put_blob_n(out, reg, repo, who, text, strlen(text));
}

void th_fs_damage_blob(const char *dir, const mlreg_digest *d, long offset)
{
    char hex[MLREG_DIGEST_HEXLEN + 1], path[4096];
    unsigned char c;
    FILE *f;

    mlreg_digest_hex(hex, d);
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", dir, hex, hex);
    if (offset < 0) {
        ck_assert_msg(unlink(path) == 0, "remove %s", path);
        return;
    }
    ck_assert_msg((f = fopen(path, "r+b")) != NULL, "open %s", path);
    ck_assert_int_eq(fseek(f, offset, SEEK_SET), 0);
    ck_assert_int_eq(fread(&c, 1, 1, f), 1);
    c ^= 0xff;
    ck_assert_int_eq(fseek(f, offset, SEEK_SET), 0);
    ck_assert_int_eq(fwrite(&c, 1, 1, f), 1);
    ck_assert_int_eq(fclose(f), 0);
}

char *th_release_body(mlreg_registry *reg, const char *model, const char *version, const char *who,
                      const char *report)
{
    mlreg_digest cfgd, w, ev;
    char weights[64], wd[MLREG_DIGEST_STRLEN + 1], ed[MLREG_DIGEST_STRLEN + 1];
    json_t *doc, *layers;
    char *body;

    th_put_blob(&cfgd, reg, model, who, "{}");
    snprintf(weights, sizeof(weights), "weights of %s", version);
    th_put_blob(&w, reg, model, who, weights);
    mlreg_digest_format(wd, &w);
    layers = json_pack("[{s:s, s:s, s:I, s:{s:s, s:s}}]", "mediaType",
                       "application/vnd.mlreg.weights.v1", "digest", wd, "size",
                       (json_int_t)strlen(weights), "annotations", MLREG_ANN_TITLE, "model.bin",
                       MLREG_ANN_KIND, "weights");
    ck_assert_ptr_nonnull(layers);
    if (report != NULL) {
        th_put_blob(&ev, reg, model, who, report);
        mlreg_digest_format(ed, &ev);
        json_array_append_new(
            layers, json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "mediaType", MLREG_MT_EVAL_REPORT,
                              "digest", ed, "size", (json_int_t)strlen(report), "annotations",
                              MLREG_ANN_TITLE, "eval.json", MLREG_ANN_KIND, "eval-report"));
    }
    doc = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:o, s:{s:s, s:s, s:s}}", "schemaVersion",
                    2, "mediaType", MLREG_MT_OCI_MANIFEST, "artifactType", MLREG_ARTIFACT_RELEASE,
                    "config", "mediaType", MLREG_MT_OCI_EMPTY, "digest", MLREG_EMPTY_CONFIG_DIGEST,
                    "size", 2, "layers", layers, "annotations", MLREG_ANN_MODEL, model,
                    MLREG_ANN_VERSION, version, MLREG_ANN_CREATED, "2026-01-02T03:04:05Z");
    ck_assert_ptr_nonnull(doc);
    body = json_dumps(doc, JSON_COMPACT);
    ck_assert_ptr_nonnull(body);
    json_decref(doc);
    return body;
}

void th_use_gates(mlreg_policy **pol, const char *gates)
{
    json_t *g = json_loads(gates, 0, NULL);

    ck_assert_msg(g != NULL, "gates are not JSON: %s", gates);
    mlreg_policy_free(*pol);
    *pol = NULL;
    ck_assert_msg(mlreg_policy_parse(pol, NULL, g, NULL) == 0, "%s", mlreg_error_last());
    json_decref(g);
}

int th_stage_now(json_t **out, mlreg_registry *reg, const mlreg_policy *pol, const char *model,
                 const char *stage)
{
    char *text = NULL, *again = NULL, *want;
    size_t len = 0, len2 = 0;
    int rc = mlreg_stage_get(out, reg, pol, model, stage, -1);

    ck_assert_int_eq(mlreg_stage_get_text(&text, &len, reg, pol, model, stage), rc);
    ck_assert_int_eq(mlreg_stage_get_text(&again, &len2, reg, pol, model, stage), rc);
    if (rc == 0) {
        ck_assert_ptr_nonnull(want = mlreg_json_dumps(*out, JSON_COMPACT));
        ck_assert_str_eq(text, want);
        ck_assert_str_eq(again, want);
        ck_assert_uint_eq(len, strlen(want));
        ck_assert_uint_eq(len2, len);
        free(want);
    } else {
        ck_assert_ptr_null(text);
    }
    free(text);
    free(again);
    return rc;
}

const mlreg_identity *th_identity(mlreg_auth **auth, const char *token, const char *roles)
{
    const mlreg_identity *id = NULL;
    char hex[65], buf[512];
    json_t *t;

    if (*auth == NULL) {
        ck_assert_int_eq(mlreg_auth_token_hash(hex, token), 0);
        snprintf(buf, sizeof(buf), "[{\"name\":\"%s\",\"sha256\":\"%s\",\"roles\":%s}]", token, hex,
                 roles);
        ck_assert_ptr_nonnull(t = json_loads(buf, 0, NULL));
        ck_assert_int_eq(mlreg_auth_new(auth, t, NULL, 0), 0);
        json_decref(t);
    }
    snprintf(buf, sizeof(buf), "Bearer %s", token);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, *auth, buf), 0);
    return id;
}

/* ---- an in-memory blob backend ------------------------------------------ */

typedef struct {
    mlreg_blob_backend_writer parent;
    th_fake *f;
    unsigned char *data;
    size_t size;
} fake_writer;

typedef struct {
    mlreg_blob_backend_reader parent;
    const th_fake_blob *blob;
    size_t off;
} fake_reader;

th_fake_blob *th_fake_find(th_fake *f, const mlreg_digest *d)
{
    for (size_t i = 0; i < f->nblobs; i++) {
        if (mlreg_digest_equal(&f->blobs[i].digest, d)) return &f->blobs[i];
    }
    return NULL;
}

void th_fake_reset_counters(th_fake *f)
{
    f->n_exists = f->n_stat = f->n_open_read = f->n_open_write = 0;
    f->n_write = f->n_commit = f->n_abort = f->n_remove = 0;
    f->n_quarantine = 0;
}

static int fake_backend__exists(mlreg_blob_backend *b, const mlreg_digest *d)
{
    th_fake *f = (th_fake *)b;

    f->n_exists++;
    return th_fake_find(f, d) != NULL;
}

static int fake_backend__stat(uint64_t *size_out, mlreg_blob_backend *b, const mlreg_digest *d)
{
    th_fake *f = (th_fake *)b;
    th_fake_blob *blob = th_fake_find(f, d);

    f->n_stat++;
    if (blob == NULL) return MLREG_ENOTFOUND;
    *size_out = blob->size;
    return 0;
}

static ssize_t fake_reader__read(mlreg_blob_backend_reader *r, void *buf, size_t len)
{
    fake_reader *fr = (fake_reader *)r;
    size_t left = fr->blob->size - fr->off;

    if (len > left) len = left;
    if (len > 0) memcpy(buf, fr->blob->data + fr->off, len);
    fr->off += len;
    return (ssize_t)len;
}

static int fake_reader__fd(mlreg_blob_backend_reader *r)
{
    (void)r;
    return -1;
}

static void fake_reader__free(mlreg_blob_backend_reader *r)
{
    free(r);
}

static int fake_backend__open_read(mlreg_blob_backend_reader **out, uint64_t *size_out,
                                   mlreg_blob_backend *b, const mlreg_digest *d)
{
    th_fake *f = (th_fake *)b;
    th_fake_blob *blob = th_fake_find(f, d);
    fake_reader *r;

    f->n_open_read++;
    if (blob == NULL) return MLREG_ENOTFOUND;
    if ((r = calloc(1, sizeof(*r))) == NULL) return MLREG_ENOMEM;
    r->parent.read = fake_reader__read;
    r->parent.fd = fake_reader__fd;
    r->parent.free = fake_reader__free;
    r->blob = blob;
    *out = &r->parent;
    if (size_out) *size_out = blob->size;
    return 0;
}

static int fake_writer__write(mlreg_blob_backend_writer *w, const void *data, size_t len)
{
    fake_writer *fw = (fake_writer *)w;
    unsigned char *grown;

    fw->f->n_write++;
    if (fw->f->fail_writes) return mlreg_error_set(MLREG_ENOSPACE, "fake disk full");
    if ((grown = realloc(fw->data, fw->size + len + 1)) == NULL) return MLREG_ENOMEM;
    fw->data = grown;
    if (len > 0) memcpy(fw->data + fw->size, data, len);
    fw->size += len;
    return 0;
}

/* Takes the writer's bytes as the blob @p d; the writer is gone afterwards
 * whatever the result, as the backend contract says. */
static int fake_writer__commit(mlreg_blob_backend_writer *w, const mlreg_digest *d)
{
    fake_writer *fw = (fake_writer *)w;
    th_fake *f = fw->f;
    th_fake_blob *held;
    int error = 0;

    f->n_commit++;
    if (f->fail_commits) {
        error = mlreg_error_set(MLREG_EIO, "fake commit failed");
    } else if ((held = th_fake_find(f, d)) != NULL) {
        /* already held: replaced, as the real backends do (a held copy may
         * have been damaged, and the new bytes were just verified) */
        free(held->data);
        held->data = fw->data;
        held->size = fw->size;
        held->modified = (int64_t)time(NULL);
        fw->data = NULL;
    } else if (f->nblobs == TH_FAKE_MAX_BLOBS) {
        error = mlreg_error_set(MLREG_ENOSPACE, "fake store full");
    } else {
        f->blobs[f->nblobs].digest = *d;
        f->blobs[f->nblobs].data = fw->data;
        f->blobs[f->nblobs].size = fw->size;
        f->blobs[f->nblobs].modified = (int64_t)time(NULL);
        f->nblobs++;
        fw->data = NULL;
    }
    free(fw->data);
    free(fw);
    return error;
}

static void fake_writer__abort(mlreg_blob_backend_writer *w)
{
    fake_writer *fw = (fake_writer *)w;

    fw->f->n_abort++;
    free(fw->data);
    free(fw);
}

static int fake_backend__open_write(mlreg_blob_backend_writer **out, mlreg_blob_backend *b,
                                    int64_t size_hint)
{
    th_fake *f = (th_fake *)b;
    fake_writer *w;

    (void)size_hint;
    f->n_open_write++;
    if ((w = calloc(1, sizeof(*w))) == NULL) return MLREG_ENOMEM;
    w->parent.write = fake_writer__write;
    w->parent.commit = fake_writer__commit;
    w->parent.abort = fake_writer__abort;
    w->f = f;
    *out = &w->parent;
    return 0;
}

static int fake_backend__remove(mlreg_blob_backend *b, const mlreg_digest *d)
{
    th_fake *f = (th_fake *)b;
    th_fake_blob *blob = th_fake_find(f, d);

    f->n_remove++;
    if (blob == NULL) return MLREG_ENOTFOUND;
    free(blob->data);
    *blob = f->blobs[--f->nblobs];
    return 0;
}

static int fake_backend__quarantine(char *name_out, size_t name_len, mlreg_blob_backend *b,
                                    const mlreg_digest *d, int64_t when)
{
    th_fake *f = (th_fake *)b;
    th_fake_blob *blob = th_fake_find(f, d);
    char hex[MLREG_DIGEST_HEXLEN + 1];

    f->n_quarantine++;
    if (blob == NULL) return mlreg_error_set(MLREG_ENOTFOUND, "fake blob not found");
    mlreg_digest_hex(hex, d);
    snprintf(name_out, name_len, "quarantine/%s.%lld", hex, (long long)when);
    free(blob->data);
    *blob = f->blobs[--f->nblobs];
    return 0;
}

static int fake_backend__foreach(mlreg_blob_backend *b, mlreg_blob_foreach_cb cb, void *payload)
{
    th_fake *f = (th_fake *)b;
    int rc;

    for (size_t i = 0; i < f->nblobs; i++) {
        if ((rc = cb(&f->blobs[i].digest, f->blobs[i].size, f->blobs[i].modified, payload)) != 0)
            return rc;
    }
    return 0;
}

static void fake_backend__free(mlreg_blob_backend *b)
{
    th_fake *f = (th_fake *)b;

    for (size_t i = 0; i < f->nblobs; i++)
        free(f->blobs[i].data);
    if (f->freed_flag != NULL) *f->freed_flag = 1;
    free(f);
}

th_fake *th_fake_new(unsigned int version, int *freed_flag)
{
    th_fake *f = calloc(1, sizeof(*f));

    ck_assert_ptr_nonnull(f);
    f->parent.version = version;
    f->parent.exists = fake_backend__exists;
    f->parent.stat = fake_backend__stat;
    f->parent.open_read = fake_backend__open_read;
    f->parent.open_write = fake_backend__open_write;
    f->parent.remove = fake_backend__remove;
    f->parent.foreach = fake_backend__foreach;
    f->parent.free = fake_backend__free;
    f->parent.quarantine = fake_backend__quarantine;
    f->freed_flag = freed_flag;
    return f;
}
