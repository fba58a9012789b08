/* push.c: `mlreg push MODEL@VERSION --weights FILE ...`, the export step.
 *
 * Order of work, chosen so that a retried export step is always safe and a
 * new file is read once:
 *   1. check everything local (reference, kinds, files, titles, git sha);
 *      open every file and look it up in the digest cache (push_cache.h:
 *      device, inode, size, mtime, ctime): an unchanged file is never read
 *      again. Files under STREAM_MIN bytes that are not cached are hashed
 *      now (reading them twice costs nothing), and so are files the cache
 *      holds as unverified (written just before the push that hashed them:
 *      their stat cannot vouch for their bytes, but they are likely on the
 *      registry already, and hashing first lets HEAD spare the upload);
 *   2. look the version up: when it exists, every file is hashed (once,
 *      then cached) and compared: the same files (digest, kind, title) →
 *      the repair path below, print the existing digest and stop with 0;
 *      other files → exit 1, nothing sent;
 *   3. upload only the blobs the registry lacks. A file whose digest is
 *      known is checked with HEAD first. A large file whose digest is not
 *      known yet is hashed while it is uploaded: the HEAD check would need
 *      the digest, which costs a read of the whole file, so such a file is
 *      streamed into an upload session (one PATCH, PIECE, hashing the
 *      bytes as libcurl takes them, on two threads: push_reader.h) and
 *      closed with `PUT ?digest=`; a registry that holds the blob already
 *      keeps one copy. A registry that answers the session POST with
 *      `Mlreg-Digest-First: true` (s3: it writes the blob's final key only
 *      when it knows the digest up front) gets the file hashed first, the
 *      HEAD check, and then the body in the closing PUT. The session's
 *      location is remembered in the cache dir until the PUT ends (the
 *      registry keeps what arrived of a PATCH or PUT cut short): a push
 *      that was killed asks the registry for the session's offset next
 *      time and sends only the rest. --reupload sends every blob (a HEAD-less
 *      upload), which replaces a damaged stored copy. Step 3 also runs when
 *      step 2 found the same files: a blob a scrub quarantined answers 404,
 *      and uploading it again repairs the release. Files of at least
 *      MLREG_CHUNK_INDEX_THRESHOLD bytes also get their chunk index
 *      (chunk_index.h) uploaded as a blob and listed as a layer;
 *   4. PUT the manifest by the version tag and check the digest the registry
 *      reports against the sha256 of the bytes sent.
 * With --sign-key the secret key is loaded (and its password asked) before
 * anything else, so a wrong password costs no upload; the manifest bytes
 * are signed as soon as they are known and the key is wiped right away; the
 * signature is attached (POST .../signatures) after the manifest PUT. When
 * the version already exists with the same files, the existing manifest's
 * bytes are signed instead, unless this key signed them already.
 * Files stay open from the lookup to the upload, so a file renamed or
 * replaced in between cannot slip other bytes under a digest (a file
 * modified in place is caught by the registry's digest check, and its
 * digest is not cached: its timestamps changed).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "mlreg/chunk_index.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/file.h"
#include "mlreg/manifest.h"
#include "mlreg/names.h"
#include "mlreg/oci.h"
#include "mlreg/sign.h"
#include "mlreg/text.h"
#include "mlreg/time.h"
#include "push_cache.h"
#include "push_dir.h"
#include "push_reader.h"
#include "release.h"

static const char *const kinds[] = {MLREG_KINDS};
#define NKINDS       (sizeof(kinds) / sizeof(kinds[0]))
#define MANIFEST_MAX (16u * 1024 * 1024)
#define PROGRESS_MIN (1u << 20) /* smaller transfers draw no progress */
/* Files from this size on, when their digest is not cached, are hashed
 * while they are uploaded; smaller ones are hashed first (and HEAD-checked). */
#define STREAM_MIN ((uint64_t)8 << 20)
/* Bytes per PATCH of a session upload. One PATCH carries the whole file:
 * smaller pieces cost a drain of the registry's write pipeline each (64 MiB
 * pieces made a 1 GiB push about a quarter slower). mlreg serve keeps the
 * bytes of a PATCH cut short, so a killed push still resumes from where it
 * stopped; a registry that drops them reports a smaller offset, and the
 * push resumes from that. */
#define PIECE ((uint64_t)1 << 40)
/* Remembered upload sessions older than this are dropped unused: a
 * registry keeps an idle session for minutes (limits.upload_idle_seconds). */
#define UPLOAD_KEEP_SECONDS (7L * 24 * 3600)
/* How stale a cache entry's use time may get before a push refreshes it. */
#define USED_REFRESH_SECONDS (24 * 3600)
/* Seconds a resumed upload waits for a session the registry still holds
 * busy (416) before it starts over: a little over the registry's default
 * body timeout (limits.body_timeout_seconds, 60 s). */
#define BUSY_WAIT_MAX 75u

static const char usage_line[] =
    "usage: mlreg push MODEL@VERSION [DIR] [--weights FILE]... [--tokenizer FILE]\n"
    "                  [--config FILE] [--seeds FILE] [--eval-report FILE] [--file KIND=FILE]...\n"
    "                  [--dry-run] [--git-sha SHA] [--allow-dirty] [--sign-key KEYFILE]\n"
    "                  [--reupload] [--registry URL] [--limit-rate BYTES[K|M|G]]\n"
    "\n"
    "Pushes a release: every file of DIR and its subdirectories, and/or the files\n"
    "named by flags. The last line on stdout is the release digest.\n"
    "\n"
    "  DIR                    push the files of DIR, each titled by its path in DIR\n"
    "                         (tokenizer/vocab.json), kinds from their base names:\n"
    "                         *.safetensors *.bin *.gguf *.onnx *.pt and their\n"
    "                         *.index.json -> weights; tokenizer*.json *.model vocab*\n"
    "                         merges.txt special_tokens_map.json added_tokens.json ->\n"
    "                         tokenizer; config.json generation_config.json -> config;\n"
    "                         seeds.json seeds.txt -> seeds; eval*.json results*.json ->\n"
    "                         eval-report. DIR/mlreg.json (not pushed) maps other names\n"
    "                         and excludes some: "
    "{\"files\":{\"*.md\":\"docs\"},\"exclude\":[\"*.tmp\"]}.\n"
    "                         Globs without '/' match base names, with '/' paths.\n"
    "                         Other names, paths over 8 segments and links leaving DIR\n"
    "                         or leading to a directory are refused.\n"
    "                           mlreg push team/llm@1.2.0 export/\n"
    "  --weights FILE         a weights file (repeatable)   --weights out/model.safetensors\n"
    "  --tokenizer FILE       a tokenizer file (repeatable) --tokenizer out/tokenizer.json\n"
    "  --config FILE          a config file (repeatable)    --config out/config.json\n"
    "  --seeds FILE           the seeds file                --seeds out/seeds.json\n"
    "  --eval-report FILE     the eval report (also --eval) --eval-report out/eval.json\n"
    "                         checked before any upload: {\"metrics\":{...}}, an object of\n"
    "                         numbers or lm-evaluation-harness results (docs/eval-report.md)\n"
    "  --file KIND=FILE       any kind [a-z][a-z0-9-]{0,31}  --file generation-config=gen.json\n"
    "                         (a file given by a flag is not taken again from DIR)\n"
    "  --dry-run              print the plan (kind, size, title, path), upload nothing\n"
    "                           mlreg push team/llm@1.2.0 export/ --dry-run\n"
    "  --git-sha SHA          the commit built (7-64 lowercase hex); git is then not asked\n"
    "                           mlreg push team/llm@1.2.0 export/ --git-sha \"$GITHUB_SHA\"\n"
    "                         Without it: HEAD of the git checkout of the working\n"
    "                         directory, with a warning outside a checkout or when tracked\n"
    "                         files have uncommitted changes (the release is marked dirty)\n"
    "  --allow-dirty          a dirty tree is intended: no warning (still marked dirty)\n"
    "  --sign-key KEYFILE     sign the manifest and attach the signature (password from\n"
    "                         MLREG_KEY_PASSWORD or the terminal)  --sign-key ci.key\n"
    "  --reupload             upload every file even when the registry has it: the registry\n"
    "                         verifies the bytes and replaces its copy (repairs a damaged one)\n"
    "  --registry URL         the registry (default $MLREG_URL)  --registry https://reg:5000\n"
    "  --limit-rate RATE      cap the upload speed, bytes per second (K, M, G: powers of\n"
    "                         1024)                          --limit-rate 50M\n"
    "\n"
    "Files the registry already holds are skipped; pushing a release that exists with\n"
    "the same files uploads only those the registry lacks, which repairs it. Digests of\n"
    "unchanged files are cached ($MLREG_CACHE_DIR, else $XDG_CACHE_HOME/mlreg, else\n"
    "~/.cache/mlreg), and an interrupted upload resumes where the registry's copy ends.\n";

typedef struct {
    size_t kind; /* index into kinds[], NKINDS for any other kind */
    char kind_name[MLREG_KIND_MAX + 1];
    size_t order; /* position on the command line */
    const char *path;
    const char *title; /* base name (points into path), or the path in DIR */
    int in_dir;        /* from the directory walk (push_dir.h) */
    int fd;
    uint64_t size;
    char digest[MLREG_DIGEST_STRLEN + 1];
    int uploaded;
    push_file_id id;   /* identity at open (the cache key) */
    int64_t opened_ns; /* CLOCK_REALTIME right after the fstat */
    int known;         /* digest (and chunk index) known */
    int hinted;        /* an unverified cache entry matches: hash before uploading */
    int indexed;       /* size >= MLREG_CHUNK_INDEX_THRESHOLD: has a chunk index */
    char *ix_bytes;    /* the serialized chunk index, when indexed and known */
    size_t ix_len;
    char ix_digest[MLREG_DIGEST_STRLEN + 1];
    char ix_title[300];
    int ix_listed; /* the existing release lists this index (repair path) */
} push_file;

/* What the command line says besides the reference and the files. */
typedef struct {
    const char *git_sha, *registry, *sign_key, *dir;
    int reupload, dry_run, allow_dirty;
    uint64_t rate;
} push_opts;

/* --limit-rate: bytes per second every upload request of this push may
 * send (0: no cap), set once by cmd_push(). */
static uint64_t send_limit;

/* What the upload steps share. */
typedef struct {
    cli_client *c;
    const cli_ref *ref;
    push_cache cache;
    char cache_dir[4096]; /* "" when there is none */
    int reupload;
} push_ctx;

typedef struct {
    push_file *files;
    size_t nfiles;
    size_t cap;
} file_list;

static void file_list_free(file_list *l)
{
    for (size_t i = 0; i < l->nfiles; i++) {
        if (l->files[i].fd >= 0) close(l->files[i].fd);
        free(l->files[i].ix_bytes);
    }
    free(l->files);
    l->files = NULL;
    l->nfiles = l->cap = 0;
}

/* The rank of kind @p kind (@p len bytes) for the layer order: its index in
 * kinds[], or NKINDS for any other kind of the grammar (mlreg_kind_valid()).
 * "chunk-index" is refused: push makes those layers itself. */
static int kind_index(size_t *out, const char *kind, size_t len)
{
    char name[MLREG_KIND_MAX + 1];

    for (size_t k = 0; k < NKINDS; k++)
        if (strlen(kinds[k]) == len && !strncmp(kinds[k], kind, len)) {
            *out = k;
            return 0;
        }
    snprintf(name, sizeof(name), "%.*s", (int)(len > MLREG_KIND_MAX ? MLREG_KIND_MAX : len), kind);
    if (len > MLREG_KIND_MAX || strlen(name) != len || !mlreg_kind_valid(name))
        return mlreg_error_set(MLREG_EINVALID,
                               "kind '%s' is not a kind: a lowercase letter, then up to 31 "
                               "lowercase letters, digits or '-' (weights, tokenizer, config, "
                               "seeds, eval-report, other, generation-config, ...)",
                               mlreg_text_printable(name));
    if (!strcmp(name, MLREG_KIND_CHUNK_INDEX))
        return mlreg_error_set(MLREG_EINVALID, "kind '%s' is made by mlreg push itself", name);
    *out = NKINDS;
    return 0;
}

/* Adds @p path as a file of kind @p kind_name (rank @p kind) titled
 * @p title, or by its base name when @p title is NULL. @p path and @p title
 * must outlive the list. */
static int file_add(file_list *l, size_t kind, const char *kind_name, const char *path,
                    const char *title)
{
    push_file *f;
    const char *slash;

    if (!*path) return mlreg_error_set(MLREG_EINVALID, "empty file name for kind %s", kind_name);
    if (l->nfiles == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        push_file *p = realloc(l->files, cap * sizeof(*p));
        if (!p) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        l->files = p;
        l->cap = cap;
    }
    f = &l->files[l->nfiles];
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->kind = kind;
    snprintf(f->kind_name, sizeof(f->kind_name), "%s", kind_name);
    f->order = l->nfiles;
    f->path = path;
    slash = strrchr(path, '/');
    f->title = title ? title : slash ? slash + 1 : path;
    l->nfiles++;
    return 0;
}

/* Stable order of the layers: kind order of MLREG_KINDS, any other kind
 * after them, then command line. */
static int file_cmp(const void *a, const void *b)
{
    const push_file *x = a, *y = b;

    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* The titles of the push (and, with @p with_indexes, those of the chunk
 * index layers: known once the files are open) against the registry's set
 * rule, mlreg_titles_check(): no two name one file ignoring ASCII case, no
 * directory spelt in two cases, no file where another title needs a
 * directory. Checked before anything is uploaded, so that the registry
 * never refuses the manifest after every blob was sent. */
static int check_title_set(const file_list *l, int with_indexes)
{
    const char **titles = NULL;
    size_t n = 0;
    int error = 0;

    if (l->nfiles == 0) return 0;
    if (!(titles = malloc(2 * l->nfiles * sizeof(*titles))))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->nfiles; i++) {
        titles[n++] = l->files[i].title;
        if (with_indexes && l->files[i].indexed) titles[n++] = l->files[i].ix_title;
    }
    if (mlreg_titles_check(titles, n) < 0) {
        /* the pair of files behind a twin, by their paths */
        for (size_t i = 0; i < l->nfiles && error == 0; i++)
            for (size_t j = 0; j < i && error == 0; j++)
                if (!mlreg_title_cmp(l->files[j].title, l->files[i].title))
                    error = mlreg_error_set(
                        MLREG_EINVALID,
                        "'%s' and '%s' have the same title '%s'%s; titles must be unique "
                        "within a release",
                        mlreg_text_printable(l->files[j].path),
                        mlreg_text_printable(l->files[i].path),
                        mlreg_text_printable(l->files[i].title),
                        strcmp(l->files[j].title, l->files[i].title) ? " but for letter case" : "");
        if (error == 0)
            error = cli_error_wrap(MLREG_EINVALID, "the release's titles cannot all be written "
                                                   "into one directory");
    }
    free(titles);
    return error;
}

static int check_titles(const file_list *l)
{
    size_t evals = 0;

    for (size_t i = 0; i < l->nfiles; i++) {
        const push_file *f = &l->files[i];
        /* The registry's rule, applied before anything is uploaded. */
        if (mlreg_title_validate(f->title) < 0)
            return cli_error_wrap(MLREG_EINVALID, "'%s': %s the file's title",
                                  mlreg_text_printable(f->path),
                                  f->in_dir ? "its path in DIR is" : "its base name is");
        if (!strcmp(f->kind_name, "eval-report")) evals++;
    }
    if (evals > 1) return mlreg_error_set(MLREG_EINVALID, "at most one eval-report per release");
    return check_title_set(l, 0);
}

/* The digest of @p f (and its chunk index @p ix when it is indexed) are
 * now known: keeps the digest and the index's bytes and digest. */
static int file_known(push_file *f, const mlreg_digest *d, const mlreg_chunk_index *ix)
{
    mlreg_digest id;
    int error;

    mlreg_digest_format(f->digest, d);
    if (f->indexed) {
        if (!ix) return mlreg_error_set(MLREG_EINVALID, "%s: no chunk index", f->path);
        free(f->ix_bytes);
        f->ix_bytes = NULL;
        if ((error = mlreg_chunk_index_serialize(&f->ix_bytes, &f->ix_len, ix)) < 0 ||
            (error = mlreg_digest_buffer(&id, f->ix_bytes, f->ix_len)) < 0)
            return cli_error_wrap(error, "%s: chunk index", f->path);
        mlreg_digest_format(f->ix_digest, &id);
    }
    f->known = 1;
    return 0;
}

/* Keeps the digest of @p f in the cache, unless the file changed since it
 * was opened. A file changed too recently to be trusted (racily clean: a
 * write in the same clock tick would leave its stat unchanged) is kept as
 * unverified: the next push hashes it first instead of streaming it into
 * an upload, so that an unchanged file is not sent twice. */
static void remember(push_ctx *x, const push_file *f, const mlreg_digest *d,
                     const mlreg_chunk_index *ix)
{
    struct stat st;
    push_file_id now;

    if (!x->cache_dir[0] || fstat(f->fd, &st) < 0) return;
    push_file_id_from_stat(&now, &st);
    if (memcmp(&now, &f->id, sizeof(now))) return;
    if (push_cache_put(&x->cache, &f->id, d, f->indexed ? ix : NULL, (int64_t)time(NULL),
                       !push_file_id_cacheable(&f->id, f->opened_ns)) < 0)
        mlreg_error_clear();
}

/* Opens every file and takes the digests of unchanged ones from the cache. */
static int open_files(push_ctx *x, file_list *l)
{
    for (size_t i = 0; i < l->nfiles; i++) {
        push_file *f = &l->files[i];
        push_cache_entry *e;
        struct stat st;
        int error;

        /* a file of the directory walk is open already (push_dir.h) */
        if (f->fd < 0 && (f->fd = open(f->path, O_RDONLY | O_CLOEXEC)) < 0)
            return mlreg_error_set(MLREG_EIO, "%s: %s", f->path, strerror(errno));
        if (fstat(f->fd, &st) < 0)
            return mlreg_error_set(MLREG_EIO, "%s: %s", f->path, strerror(errno));
        if (!S_ISREG(st.st_mode))
            return mlreg_error_set(MLREG_EIO, "%s: not a regular file", f->path);
        f->opened_ns = mlreg_time_now_ns();
        push_file_id_from_stat(&f->id, &st);
        f->size = (uint64_t)st.st_size;
        f->indexed = f->size >= MLREG_CHUNK_INDEX_THRESHOLD;
        if (f->indexed) {
            /* the index layer's title follows the registry's rule too */
            snprintf(f->ix_title, sizeof(f->ix_title), "%s%s", f->title, MLREG_CHUNK_TITLE_SUFFIX);
            if (mlreg_title_validate(f->ix_title) < 0)
                return cli_error_wrap(
                    MLREG_EINVALID, "'%s': the title of its chunk index, '%s', is not valid",
                    mlreg_text_printable(f->path), mlreg_text_printable(f->ix_title));
            for (size_t j = 0; j < l->nfiles; j++)
                if (!mlreg_title_cmp(l->files[j].title, f->ix_title))
                    return mlreg_error_set(MLREG_EINVALID,
                                           "'%s' has the title of the chunk index of '%s'",
                                           l->files[j].path, f->path);
        }
        if ((e = push_cache_find(&x->cache, &f->id)) && e->unverified) {
            f->hinted = 1;
        } else if (e && (!f->indexed || e->nchunks)) {
            mlreg_chunk_index ix = {.file = e->digest,
                                    .size = f->size,
                                    .chunk_size = e->chunk_size,
                                    .nchunks = e->nchunks,
                                    .chunks = e->chunks};
            if ((error = file_known(f, &e->digest, f->indexed ? &ix : NULL)) < 0) {
                /* an entry whose index does not serialize: hash again */
                mlreg_error_clear();
                f->known = 0;
                continue;
            }
            /* the use time orders eviction; refreshed daily, so that a
             * push of unchanged files writes no cache file */
            if ((int64_t)time(NULL) - e->used > USED_REFRESH_SECONDS) {
                e->used = (int64_t)time(NULL);
                x->cache.dirty = 1;
            }
        }
    }
    return 0;
}

/* Checks the eval report (the file open on @p f->fd) with the registry's
 * own parser (mlreg_eval_report_parse(), manifest.h) before anything is
 * uploaded: a report the registry would refuse costs no upload. Values that
 * are kept but not indexed as metrics are named in a warning. */
static int check_eval_report(const push_file *f)
{
    char *body = NULL, printable[300];
    size_t len = 0, i;
    mlreg_eval_report *r = NULL;
    json_t *v;
    int error = 0;

    if (f->size > MLREG_MAX_EVAL_REPORT_BYTES)
        return mlreg_error_set(MLREG_ETOOBIG, "eval report %s is %" PRIu64 " bytes, at most %u",
                               mlreg_text_printable(f->path), f->size, MLREG_MAX_EVAL_REPORT_BYTES);
    if (lseek(f->fd, 0, SEEK_SET) < 0 ||
        (error = mlreg_file_read_fd(&body, &len, f->fd, f->path, MLREG_MAX_EVAL_REPORT_BYTES)) <
            0 ||
        lseek(f->fd, 0, SEEK_SET) < 0) {
        if (!error) error = mlreg_error_set(MLREG_EIO, "%s: %s", f->path, strerror(errno));
        goto done;
    }
    if ((error = mlreg_eval_report_parse(&r, body, len)) < 0) {
        error = cli_error_wrap(error, "eval report %s refused before any upload",
                               mlreg_text_printable(f->path));
        goto done;
    }
    if (!cli_quiet())
        fprintf(stderr, "eval report %s: %s layout, %zu metric%s\n", mlreg_text_printable(f->path),
                mlreg_eval_format_name(r->format), json_object_size(r->metrics),
                json_object_size(r->metrics) == 1 ? "" : "s");
    json_array_foreach(r->skipped, i, v)
    {
        mlreg_text_sanitize(printable, sizeof(printable),
                            json_string_value(json_object_get(v, "name")),
                            strlen(json_string_value(json_object_get(v, "name"))));
        fprintf(stderr,
                "mlreg push: warning: eval report: '%s' is %s: kept in the report, not a "
                "metric\n",
                printable, json_string_value(json_object_get(v, "type")));
    }
    if (r->nskipped > json_array_size(r->skipped))
        fprintf(stderr, "mlreg push: warning: eval report: %zu more values are not metrics\n",
                r->nskipped - json_array_size(r->skipped));
done:
    mlreg_eval_report_free(r);
    free(body);
    return error;
}

/* Reads @p f once to hash it (and build its chunk index). */
static int hash_file(push_ctx *x, push_file *f)
{
    push_reader *r = NULL;
    mlreg_chunk_index ix = {0};
    mlreg_digest d;
    int error;

    if ((error = push_reader_new(&r, f->fd, f->size,
                                 PUSH_HASH_FILE | (f->indexed ? PUSH_HASH_CHUNKS : 0), f->path)) <
            0 ||
        (error = push_reader_skip(r, f->size)) < 0 ||
        (error = push_reader_finish(&d, f->indexed ? &ix : NULL, r)) < 0 ||
        (error = file_known(f, &d, f->indexed ? &ix : NULL)) < 0)
        goto done;
    remember(x, f, &d, &ix);
done:
    push_reader_free(r);
    mlreg_chunk_index_clear(&ix);
    return error;
}

/* Hashes every file whose digest is unknown (all, or only the small ones
 * and those an unverified cache entry names). */
static int hash_unknown(push_ctx *x, file_list *l, int small_only)
{
    int error;

    for (size_t i = 0; i < l->nfiles; i++) {
        push_file *f = &l->files[i];
        if (f->known || (small_only && f->size >= STREAM_MIN && !f->hinted)) continue;
        if ((error = hash_file(x, f)) < 0) return error;
    }
    return 0;
}

static int hex_sha_valid(const char *s)
{
    size_t n = strlen(s);

    if (n < 7 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* The first line @p cmd prints into @p line (@p cap bytes, newline cut);
 * 0 when it ran and exited 0, -1 otherwise. */
static int run_line(char *line, size_t cap, const char *cmd)
{
    FILE *p;
    int ok;

    line[0] = '\0';
    fflush(NULL);
    if (!(p = popen(cmd, "r"))) return -1;
    if (!fgets(line, (int)cap, p)) line[0] = '\0';
    /* drain the rest: git must not die of SIGPIPE, its status decides */
    while (fgetc(p) != EOF) {
    }
    ok = pclose(p) == 0;
    line[strcspn(line, "\r\n")] = '\0';
    return ok ? 0 : -1;
}

/* The git state of the working directory: its HEAD commit into @p sha
 * ("" when it is not a git checkout with a commit, or git is missing) and
 * *dirty_out = 1 when tracked files have uncommitted changes (untracked
 * files do not count: exports are often written inside the checkout). */
static void git_state(char sha[65], int *dirty_out)
{
    char line[128];

    sha[0] = '\0';
    *dirty_out = 0;
    if (run_line(line, sizeof(line), "git rev-parse HEAD 2>/dev/null") < 0 || !hex_sha_valid(line))
        return;
    memcpy(sha, line, strlen(line) + 1);
    if (run_line(line, sizeof(line), "git status --porcelain --untracked-files=no 2>/dev/null") ==
            0 &&
        line[0])
        *dirty_out = 1;
}

/* What the release records about its source: --git-sha as given (git is not
 * asked: CI says what it built), else the checkout's HEAD, with a warning
 * when there is none or the tree is dirty (--allow-dirty: intended, no
 * warning; the release says dirty all the same). */
static void git_record(char sha[65], int *dirty_out, const push_opts *o)
{
    *dirty_out = 0;
    if (o->git_sha) {
        snprintf(sha, 65, "%s", o->git_sha);
        return;
    }
    git_state(sha, dirty_out);
    if (!sha[0])
        fprintf(stderr, "mlreg push: warning: not in a git checkout (or git is missing): the "
                        "release records no git sha, and `mlreg image-tag` will need one; pass "
                        "--git-sha SHA\n");
    else if (*dirty_out && !o->allow_dirty)
        fprintf(stderr,
                "mlreg push: warning: the git tree has uncommitted changes: %.12s does not "
                "describe what is pushed; the release is marked dirty (--allow-dirty when this "
                "is intended)\n",
                sha);
}

/* The creation time as RFC 3339 UTC; SOURCE_DATE_EPOCH pins it for
 * reproducible exports. */
static void created_now(char out[32])
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    time_t now = time(NULL);
    struct tm tm;

    if (sde && *sde) {
        char *end;
        long long v = strtoll(sde, &end, 10);
        if (!*end && v >= 0) now = (time_t)v;
    }
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void layer_media_type(char *buf, size_t len, const char *kind)
{
    if (!strcmp(kind, "eval-report"))
        snprintf(buf, len, "%s", MLREG_MT_EVAL_REPORT);
    else
        snprintf(buf, len, MLREG_MT_LAYER_PREFIX "%s.v1", kind);
}

/* Builds the release manifest; *out is malloc'd, compact, keys sorted. */
static int build_manifest(char **out, const cli_ref *ref, const file_list *l, const char *git_sha,
                          int git_dirty)
{
    int error = 0;
    json_t *m = NULL, *layers, *ann;
    char created[32], mt[128];

    *out = NULL;
    created_now(created);
    m = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[], s:{s:s, s:s, s:s}}", "schemaVersion", 2,
                  "mediaType", MLREG_MT_OCI_MANIFEST, "artifactType", MLREG_ARTIFACT_RELEASE,
                  "config", "mediaType", MLREG_MT_OCI_EMPTY, "digest", MLREG_EMPTY_CONFIG_DIGEST,
                  "size", 2, "layers", "annotations", MLREG_ANN_MODEL, ref->model,
                  MLREG_ANN_VERSION, ref->version, MLREG_ANN_CREATED, created);
    if (!m) goto nomem;
    ann = json_object_get(m, "annotations");
    if (*git_sha && json_object_set_new(ann, MLREG_ANN_GIT_SHA, json_string(git_sha)) < 0)
        goto nomem;
    if (git_dirty && json_object_set_new(ann, MLREG_ANN_GIT_DIRTY, json_string("true")) < 0)
        goto nomem;
    layers = json_object_get(m, "layers");
    for (size_t i = 0; i < l->nfiles; i++) {
        const push_file *f = &l->files[i];
        layer_media_type(mt, sizeof(mt), f->kind_name);
        json_t *layer = json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "mediaType", mt, "digest",
                                  f->digest, "size", (json_int_t)f->size, "annotations",
                                  MLREG_ANN_TITLE, f->title, MLREG_ANN_KIND, f->kind_name);
        if (!layer || json_array_append_new(layers, layer) < 0) goto nomem;
        if (f->indexed && json_object_set_new(json_object_get(layer, "annotations"),
                                              MLREG_ANN_CHUNK_INDEX, json_string(f->ix_digest)) < 0)
            goto nomem;
    }
    /* the chunk indexes after the files, in the files' order */
    for (size_t i = 0; i < l->nfiles; i++) {
        const push_file *f = &l->files[i];
        if (!f->indexed) continue;
        json_t *layer = json_pack(
            "{s:s, s:s, s:I, s:{s:s, s:s, s:s}}", "mediaType", MLREG_MT_CHUNK_INDEX, "digest",
            f->ix_digest, "size", (json_int_t)f->ix_len, "annotations", MLREG_ANN_TITLE,
            f->ix_title, MLREG_ANN_KIND, MLREG_KIND_CHUNK_INDEX, MLREG_ANN_CHUNKS_OF, f->digest);
        if (!layer || json_array_append_new(layers, layer) < 0) goto nomem;
    }
    if (!(*out = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS))) goto nomem;
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    json_decref(m);
    return error;
}

/* 1 when the stored manifest @p body is a release with exactly our files
 * (same digest, kind and title for each, nothing more), 0 otherwise. */
static int same_release(const char *body, size_t len, file_list *l)
{
    json_t *m = json_loadb(body, len, 0, NULL), *layers;
    int same = 0;
    size_t nlayers = 0;

    layers = json_object_get(m, "layers");
    if (!json_is_array(layers)) goto done;
    /* the files only: chunk index layers follow from them */
    for (size_t j = 0; j < json_array_size(layers); j++) {
        const char *kind = json_string_value(json_object_get(
            json_object_get(json_array_get(layers, j), "annotations"), MLREG_ANN_KIND));
        if (!kind || strcmp(kind, MLREG_KIND_CHUNK_INDEX)) nlayers++;
    }
    if (nlayers != l->nfiles) goto done;
    if (!json_is_string(json_object_get(m, "artifactType")) ||
        strcmp(json_string_value(json_object_get(m, "artifactType")), MLREG_ARTIFACT_RELEASE))
        goto done;
    for (size_t i = 0; i < l->nfiles; i++) {
        push_file *f = &l->files[i];
        int found = 0;
        for (size_t j = 0; j < json_array_size(layers) && !found; j++) {
            json_t *layer = json_array_get(layers, j), *ann = json_object_get(layer, "annotations");
            const char *title = json_string_value(json_object_get(ann, MLREG_ANN_TITLE));
            const char *kind = json_string_value(json_object_get(ann, MLREG_ANN_KIND));
            const char *digest = json_string_value(json_object_get(layer, "digest"));
            const char *ix = json_string_value(json_object_get(ann, MLREG_ANN_CHUNK_INDEX));
            if (title && !strcmp(title, f->title))
                found = kind && digest && !strcmp(kind, f->kind_name) && !strcmp(digest, f->digest);
            if (title && !strcmp(title, f->title) && !found) goto done;
            /* the stored release lists our index: a repair may upload it */
            if (found) f->ix_listed = f->indexed && ix && !strcmp(ix, f->ix_digest);
        }
        if (!found) goto done;
    }
    same = 1;
done:
    json_decref(m);
    return same;
}

/* Looks the version up. *exists_out = 1 and @p digest_out filled when the tag
 * exists with the same files; MLREG_EDENIED when it exists with others. */
static int check_existing(int *exists_out, char digest_out[MLREG_DIGEST_STRLEN + 1],
                          char **body_out, size_t *len_out, push_ctx *x, file_list *l)
{
    cli_client *c = x->c;
    const cli_ref *ref = x->ref;
    int error = 0;
    cli_response resp;
    char path[600];
    mlreg_digest d;

    *exists_out = 0;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", ref->model, ref->version);
    cli_request req = {.method = "GET",
                       .url = path,
                       .accept = MLREG_MT_OCI_MANIFEST,
                       .body_fd = -1,
                       .max_body = MANIFEST_MAX};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status == 404) goto done;
    if (resp.status != 200) {
        error = cli_http_error(&resp, "looking up the version");
        goto done;
    }
    if ((error = mlreg_digest_buffer(&d, resp.body ? resp.body : "", resp.body_len)) < 0) goto done;
    mlreg_digest_format(digest_out, &d);
    if (resp.content_digest && strcmp(resp.content_digest, digest_out)) {
        error =
            mlreg_error_set(MLREG_EMISMATCH, "registry says %s@%s is %s but its bytes hash to %s",
                            ref->model, ref->version, resp.content_digest, digest_out);
        goto done;
    }
    /* the comparison needs every digest: the files are read now (and
     * cached), before anything is sent */
    if ((error = hash_unknown(x, l, 0)) < 0) goto done;
    if (!same_release(resp.body ? resp.body : "", resp.body_len, l)) {
        error = mlreg_error_set(MLREG_EDENIED,
                                "%s@%s already exists (%s) with other files; releases are "
                                "immutable, push a new version",
                                ref->model, ref->version, digest_out);
        goto done;
    }
    if (body_out) {
        /* The caller signs these exact bytes: hand the body over. */
        free(*body_out);
        *body_out = resp.body ? resp.body : strdup("");
        *len_out = resp.body_len;
        resp.body = NULL;
        if (!*body_out) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
    }
    *exists_out = 1;
done:
    cli_response_clear(&resp);
    return error;
}

/* 1 present, 0 absent, or a negative code. */
static int blob_present(cli_client *c, const char *model, const char *digest)
{
    cli_response resp;
    char path[600];
    int rc;

    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", model, digest);
    cli_request req = {.method = "HEAD", .url = path, .body_fd = -1};
    if ((rc = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status == 200)
        rc = 1;
    else if (resp.status == 404)
        rc = 0;
    else
        rc = cli_http_error(&resp, "checking a blob");
done:
    cli_response_clear(&resp);
    return rc;
}

/* Uploads one blob monolithically: POST ?digest= with the body. A registry
 * that answers 202 (no single-request upload) opened a session instead and
 * gets the body again in a PUT to the session's Location. */
static int upload_blob_once(int *busy_out, cli_client *c, const char *model, const char *digest,
                            const char *title, int fd, const void *mem, uint64_t size)
{
    int error = 0;
    cli_response resp;
    char path[600], query[MLREG_DIGEST_STRLEN + 16], what[400];
    char *put_url = NULL;

    *busy_out = 0;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/?digest=%s", model, digest);
    snprintf(query, sizeof(query), "digest=%s", digest);
    snprintf(what, sizeof(what), "uploading %s", title);
    if (fd >= 0 && lseek(fd, 0, SEEK_SET) < 0) {
        error = mlreg_error_set(MLREG_EIO, "%s: %s", title, strerror(errno));
        goto done;
    }
    cli_request req = {.method = "POST",
                       .url = path,
                       .content_type = "application/octet-stream",
                       .body = mem,
                       .body_len = mem ? size : 0,
                       .body_fd = fd,
                       .body_size = size,
                       .max_body = 64 * 1024,
                       .max_send = send_limit,
                       .progress = size >= PROGRESS_MIN ? title : NULL};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status == 202) {
        if (!resp.location) {
            error = mlreg_error_set(MLREG_ESERVER, "%s: 202 without a Location", what);
            goto done;
        }
        if ((error = cli_client_resolve(&put_url, c, resp.location, query)) < 0) goto done;
        if (fd >= 0 && lseek(fd, 0, SEEK_SET) < 0) {
            error = mlreg_error_set(MLREG_EIO, "%s: %s", title, strerror(errno));
            goto done;
        }
        req.method = "PUT";
        req.url = put_url;
        if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    }
    *busy_out = resp.status == 503;
    if (resp.status != 201) {
        error = cli_http_error(&resp, what);
        goto done;
    }
    if (resp.content_digest && strcmp(resp.content_digest, digest))
        error = mlreg_error_set(MLREG_EMISMATCH, "%s: registry stored %s, expected %s", what,
                                resp.content_digest, digest);
done:
    free(put_url);
    cli_response_clear(&resp);
    return error;
}

/* The OCI error code of an error answer ("MANIFEST_BLOB_UNKNOWN"), or "". */
static const char *error_code(char *buf, size_t cap, const cli_response *resp)
{
    json_t *root = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    const char *code = json_string_value(
        json_object_get(json_array_get(json_object_get(root, "errors"), 0), "code"));

    snprintf(buf, cap, "%s", code ? code : "");
    json_decref(root);
    return buf;
}

/* upload_blob_once(), again after 1, 2 and 4 s while the registry answers
 * 503: a garbage collection deleting the same bytes right now, or a log
 * too busy to take the change. */
static int upload_blob(cli_client *c, const char *model, const char *digest, const char *title,
                       int fd, const void *mem, uint64_t size)
{
    int error, busy = 0;

    for (unsigned int k = 0;; k++) {
        error = upload_blob_once(&busy, c, model, digest, title, fd, mem, size);
        if (error == 0 || !busy || k == 3) return error;
        fprintf(stderr, "mlreg push: %s\n  trying again in %u s\n", mlreg_error_last(), 1u << k);
        sleep(1u << k);
    }
}

/* ---- session uploads: hashed while sent, resumable ---------------------------- */

/* libcurl takes the body of one PATCH (or of the closing PUT) from the
 * reader, which hashes what it has not hashed yet. */
typedef struct {
    push_reader *r;
    uint64_t start; /* file offset of the body's first byte */
} piece_source;

static int64_t piece_read(void *ctx, void *buf, size_t len)
{
    return push_reader_read(((piece_source *)ctx)->r, buf, len);
}

static int piece_seek(void *ctx, uint64_t offset)
{
    piece_source *p = ctx;
    return push_reader_seek(p->r, p->start + offset);
}

/* The offset an upload status answer reports ("Range: 0-<last>"), or -1.
 * "0-0" is taken as nothing received: the registry says so for an empty
 * session, and a chunk sent from 0 to a session that has one byte is
 * refused (416), which starts a new session. */
static int64_t range_end(const char *range)
{
    unsigned long long last;
    char *end;

    if (!range || strncmp(range, "0-", 2)) return -1;
    errno = 0;
    last = strtoull(range + 2, &end, 10);
    if (errno || *end || range[2] < '0' || range[2] > '9' || last >= (1ULL << 62)) return -1;
    return last == 0 ? 0 : (int64_t)last + 1;
}

/* GET of a remembered session: its offset, or -1 when the registry no
 * longer knows it (or answers anything else: then a new session), and
 * whether the registry wants the digest first (NULL: not asked). */
static int session_offset(int64_t *out, int *digest_first_out, cli_client *c, const char *url)
{
    cli_response resp;
    int error;

    *out = -1;
    cli_response_init(&resp);
    cli_request req = {.method = "GET", .url = url, .body_fd = -1, .max_body = 64 * 1024};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status == 204) *out = range_end(resp.range);
    if (digest_first_out) *digest_first_out = resp.digest_first;
done:
    cli_response_clear(&resp);
    return error;
}

/* POST blobs/uploads/: a new session. *url_out the absolute Location. */
static int session_open(char **url_out, int *digest_first_out, cli_client *c, const char *model,
                        const char *title)
{
    cli_response resp;
    char path[600], what[400];
    int error = 0;

    *url_out = NULL;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/", model);
    snprintf(what, sizeof(what), "starting the upload of %s", title);
    cli_request req = {.method = "POST", .url = path, .body_fd = -1, .max_body = 64 * 1024};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status != 202) {
        error = cli_http_error(&resp, what);
        goto done;
    }
    if (!resp.location) {
        error = mlreg_error_set(MLREG_ESERVER, "%s: 202 without a Location", what);
        goto done;
    }
    *digest_first_out = resp.digest_first;
    error = cli_client_resolve(url_out, c, resp.location, NULL);
done:
    cli_response_clear(&resp);
    return error;
}

static void session_cancel(cli_client *c, const char *url)
{
    cli_response resp;

    cli_response_init(&resp);
    cli_request req = {.method = "DELETE", .url = url, .body_fd = -1, .max_body = 64 * 1024};
    if (cli_request_do(&resp, c, &req) < 0) mlreg_error_clear();
    cli_response_clear(&resp);
}

/* One PATCH of [@p start, @p start + @p len) from the reader (positioned
 * at @p start). *url is replaced by the Location the answer gives. */
static int session_patch(char **url, int *refused_out, cli_client *c, push_reader *r,
                         uint64_t start, uint64_t len, const char *title)
{
    cli_response resp;
    char range[80], what[400], *next = NULL;
    const char *headers[] = {range, NULL};
    piece_source ps = {r, start};
    cli_body_source src = {piece_read, piece_seek, &ps};
    int error = 0;
    int64_t end;

    *refused_out = 0;
    cli_response_init(&resp);
    snprintf(range, sizeof(range), "Content-Range: %" PRIu64 "-%" PRIu64, start, start + len - 1);
    snprintf(what, sizeof(what), "uploading %s", title);
    cli_request req = {.method = "PATCH",
                       .url = *url,
                       .content_type = "application/octet-stream",
                       .body_fd = -1,
                       .body_size = len,
                       .source = &src,
                       .headers = headers,
                       .max_body = 64 * 1024,
                       .max_send = send_limit,
                       .progress = len >= PROGRESS_MIN ? title : NULL};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status != 202) {
        /* 404: the session is gone; 416: it is not where we thought */
        *refused_out = resp.status == 404 || resp.status == 416 ? (int)resp.status : 0;
        error = cli_http_error(&resp, what);
        goto done;
    }
    end = range_end(resp.range);
    if (resp.range && end != (int64_t)(start + len)) {
        error = mlreg_error_set(MLREG_ESERVER,
                                "%s: the registry holds %lld bytes after a chunk "
                                "ending at %" PRIu64,
                                what, (long long)end, start + len);
        goto done;
    }
    if (resp.location) {
        if ((error = cli_client_resolve(&next, c, resp.location, NULL)) < 0) goto done;
        free(*url);
        *url = next;
    }
done:
    cli_response_clear(&resp);
    return error;
}

/* The closing PUT ?digest= of a session, with the whole body from the
 * reader (digest-first registries) or with none. *busy_out on a 503. */
static int session_close(int *busy_out, int *refused_out, cli_client *c, const char *url,
                         const push_file *f, push_reader *body)
{
    cli_response resp;
    char query[MLREG_DIGEST_STRLEN + 16], what[400], *put_url = NULL;
    piece_source ps = {body, 0};
    cli_body_source src = {piece_read, piece_seek, &ps};
    int error = 0;

    *busy_out = 0;
    cli_response_init(&resp);
    snprintf(query, sizeof(query), "digest=%s", f->digest);
    snprintf(what, sizeof(what), "uploading %s", f->title);
    if ((error = cli_client_resolve(&put_url, c, url, query)) < 0) goto done;
    cli_request req = {.method = "PUT",
                       .url = put_url,
                       .content_type = "application/octet-stream",
                       .body_fd = -1,
                       .body_size = body ? f->size : 0,
                       .source = body ? &src : NULL,
                       .commit_size = body ? 0 : f->size,
                       .max_body = 64 * 1024,
                       .max_send = send_limit,
                       .progress = body && f->size >= PROGRESS_MIN ? f->title : NULL};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    *busy_out = resp.status == 503;
    /* 400: the bytes do not hash to the digest; 404: the session is gone */
    if (refused_out) *refused_out = resp.status == 400 || resp.status == 404;
    if (resp.status != 201) {
        error = cli_http_error(&resp, what);
        goto done;
    }
    if (resp.content_digest && strcmp(resp.content_digest, f->digest))
        error = mlreg_error_set(MLREG_EMISMATCH, "%s: registry stored %s, expected %s", what,
                                resp.content_digest, f->digest);
done:
    free(put_url);
    cli_response_clear(&resp);
    return error;
}

/* Saves @p url as the upload session of @p f in the cache dir, so that a
 * push killed from now on resumes it; a failure only costs that. */
static void remember_session(push_ctx *x, const push_file *f, const char *url)
{
    if (!x->cache_dir[0] ||
        push_upload_save(x->cache_dir, cli_client_url(x->c), x->ref->model, &f->id, url) == 0)
        return;
    fprintf(stderr, "mlreg push: warning: %s (the upload cannot resume)\n", mlreg_error_last());
    mlreg_error_clear();
}

/* A digest-first registry: the file is hashed (unless known), checked with
 * HEAD, and sent whole in the closing PUT. The session is remembered
 * before the PUT: a push killed during it resumes from the registry's
 * offset (a PUT cut short keeps what arrived, as a PATCH does). */
static int upload_digest_first(int *present_out, int *busy_out, push_ctx *x, push_file *f,
                               const char *url)
{
    const char *reg = cli_client_url(x->c), *repo = x->ref->model;
    push_reader *r = NULL;
    int error;

    if (!f->known && (error = hash_file(x, f)) < 0) goto fail;
    if (!x->reupload && (*present_out = blob_present(x->c, x->ref->model, f->digest)) != 0) {
        error = *present_out < 0 ? *present_out : 0;
        if (*present_out < 0) *present_out = 0;
        goto fail; /* present (or HEAD failed): the session is not needed */
    }
    if ((error = push_reader_new(&r, f->fd, f->size, PUSH_HASH_NONE, f->path)) < 0) goto fail;
    remember_session(x, f, url);
    error = session_close(busy_out, NULL, x->c, url, f, r);
    push_reader_free(r);
    /* the closing PUT ends the session whatever its outcome, except when
     * it never got an answer */
    if (error != MLREG_EUNREACHABLE) push_upload_forget(x->cache_dir, reg, repo, &f->id);
    return error;
fail:
    session_cancel(x->c, url);
    push_upload_forget(x->cache_dir, reg, repo, &f->id);
    return error;
}

/* Moves the reader to @p offset; bytes up to it it has not hashed yet
 * (the registry holds them from an earlier attempt) are read and hashed
 * unless the digest is known. */
static int reposition(push_reader *r, uint64_t offset, int known)
{
    int error;

    if (known || offset <= push_reader_hashed(r)) return push_reader_seek(r, offset);
    if ((error = push_reader_seek(r, push_reader_hashed(r))) < 0) return error;
    return push_reader_skip(r, offset);
}

/* A remembered session was refused (gone, elsewhere, or holding other
 * bytes): it is forgotten, and MLREG_ERANGE with *busy_out set tells
 * session_upload_retried() to upload again in a new session, once. */
static int start_over(int *busy_out, push_ctx *x, const push_file *f)
{
    fprintf(stderr, "mlreg push: %s\n  starting the upload of %s again\n", mlreg_error_last(),
            f->title);
    push_upload_forget(x->cache_dir, cli_client_url(x->c), x->ref->model, &f->id);
    *busy_out = 1;
    return MLREG_ERANGE;
}

/* Uploads @p f through a session: resumed from the registry's offset when
 * this file's session of an earlier push is remembered, else a new one.
 * Hashes the bytes as they go when the digest is not known. *present_out
 * = 1 when a digest-first registry had the blob. */
static int session_upload(int *present_out, int *busy_out, push_ctx *x, push_file *f)
{
    const char *reg = cli_client_url(x->c), *repo = x->ref->model;
    char *url = NULL, *saved = NULL;
    push_reader *r = NULL;
    mlreg_chunk_index ix = {0};
    mlreg_digest d;
    int64_t offset = -1;
    int error = 0, digest_first = 0, refused = 0, remembered = 0;
    unsigned int waited = 0;
    uint64_t pos;

    *present_out = *busy_out = 0;
    if (x->cache_dir[0] && (error = push_upload_load(&url, x->cache_dir, reg, repo, &f->id)) < 0)
        goto done;
    if (url) {
        if ((error = session_offset(&offset, &digest_first, x->c, url)) < 0) goto done;
        if (offset < 0 || (uint64_t)offset > f->size) {
            push_upload_forget(x->cache_dir, reg, repo, &f->id);
            free(url);
            url = NULL;
            offset = -1;
        } else if (offset == 0 && digest_first) {
            /* nothing arrived: the whole body in the closing PUT again */
            error = upload_digest_first(present_out, busy_out, x, f, url);
            goto done;
        } else {
            remembered = 1;
        }
    }
    if (!url) {
        if ((error = session_open(&url, &digest_first, x->c, repo, f->title)) < 0) goto done;
        if (digest_first) {
            error = upload_digest_first(present_out, busy_out, x, f, url);
            goto done;
        }
        offset = 0;
        /* remembered before the first byte goes: a kill from here on resumes */
        remember_session(x, f, url);
    }
    if (!(saved = strdup(url))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = push_reader_new(&r, f->fd, f->size,
                                 f->known ? PUSH_HASH_NONE
                                          : PUSH_HASH_FILE | (f->indexed ? PUSH_HASH_CHUNKS : 0),
                                 f->path)) < 0)
        goto done;
    if (offset > 0) {
        char a[32], b[32];
        cli_format_size(a, sizeof(a), (uint64_t)offset);
        cli_format_size(b, sizeof(b), f->size);
        fprintf(stderr, "  resuming the upload of %s: the registry has %s of %s\n", f->title, a, b);
        /* the bytes the registry has are hashed again from the file, not sent */
        if ((error = reposition(r, (uint64_t)offset, f->known)) < 0) goto done;
    }
    for (pos = (uint64_t)offset; pos < f->size;) {
        uint64_t len = f->size - pos < PIECE ? f->size - pos : PIECE;
        if ((error = session_patch(&url, &refused, x->c, r, pos, len, f->title)) < 0) {
            if (refused == 416 && waited < BUSY_WAIT_MAX) {
                /* The session is elsewhere or busy: the registry is still
                 * taking in (or has not yet seen the end of) the PATCH of
                 * the push that was killed, until it notices the broken
                 * connection (up to its body timeout). Wait for that
                 * request to end and go on from the offset it left. */
                unsigned int pause = waited < 4 ? 1 : 4;
                if (waited == 0)
                    fprintf(stderr,
                            "  the registry is still busy with the interrupted upload "
                            "of %s; waiting\n",
                            f->title);
                mlreg_error_clear();
                sleep(pause);
                waited += pause;
                if ((error = session_offset(&offset, NULL, x->c, url)) < 0) goto done;
                if (offset >= 0 && (uint64_t)offset <= f->size) {
                    pos = (uint64_t)offset;
                    if ((error = reposition(r, pos, f->known)) < 0) goto done;
                    continue;
                }
                error = mlreg_error_set(MLREG_ESERVER,
                                        "uploading %s: the registry lost track "
                                        "of the upload",
                                        f->title);
                refused = 404;
            }
            if (refused && remembered) error = start_over(busy_out, x, f);
            goto done;
        }
        pos += len;
        if (strcmp(url, saved ? saved : "")) {
            /* the registry moved the session (a new Location): follow it */
            if (x->cache_dir[0] && push_upload_save(x->cache_dir, reg, repo, &f->id, url) < 0)
                mlreg_error_clear();
            free(saved);
            if (!(saved = strdup(url))) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
                goto done;
            }
        }
    }
    if (!f->known) {
        if ((error = push_reader_finish(&d, f->indexed ? &ix : NULL, r)) < 0 ||
            (error = file_known(f, &d, f->indexed ? &ix : NULL)) < 0)
            goto done;
        remember(x, f, &d, &ix);
    }
    error = session_close(busy_out, &refused, x->c, url, f, NULL);
    /* the closing PUT ends the session whatever its outcome, except when
     * it never got an answer */
    if (error != MLREG_EUNREACHABLE) push_upload_forget(x->cache_dir, reg, repo, &f->id);
    /* a resumed session whose bytes were not this file's after all */
    if (error < 0 && refused && remembered) error = start_over(busy_out, x, f);
done:
    push_reader_free(r);
    mlreg_chunk_index_clear(&ix);
    free(url);
    free(saved);
    return error;
}

/* session_upload(), again after 1, 2 and 4 s while the registry answers
 * 503 (as upload_blob()), and once at once when a remembered session was
 * refused. */
static int session_upload_retried(int *present_out, push_ctx *x, push_file *f)
{
    int error, busy = 0;

    for (unsigned int k = 0;; k++) {
        error = session_upload(present_out, &busy, x, f);
        if (error == MLREG_ERANGE && busy) {
            mlreg_error_clear();
            continue; /* a fresh session, not counted */
        }
        if (error == 0 || !busy || k == 3) return error;
        fprintf(stderr, "mlreg push: %s\n  trying again in %u s\n", mlreg_error_last(), 1u << k);
        sleep(1u << k);
    }
}

/* PUTs the manifest by the version tag. *conflict_out = 1 when the registry
 * answered 409: another push created the version since we looked;
 * *lost_out = 1 when it answered MANIFEST_BLOB_UNKNOWN: a file found
 * present was deleted since (garbage collection), so uploading what it
 * lacks again and retrying succeeds. */
static int put_manifest(int *conflict_out, int *lost_out, cli_client *c, const cli_ref *ref,
                        const char *body, const char *expected_digest)
{
    char code[64];
    int error = 0;
    cli_response resp;
    char path[600];

    *conflict_out = *lost_out = 0;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", ref->model, ref->version);
    cli_request req = {.method = "PUT",
                       .url = path,
                       .content_type = MLREG_MT_OCI_MANIFEST,
                       .body = body,
                       .body_len = strlen(body),
                       .body_fd = -1,
                       .max_body = 64 * 1024};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    *conflict_out = resp.status == 409;
    *lost_out = resp.status == 400 &&
                !strcmp(error_code(code, sizeof(code), &resp), "MANIFEST_BLOB_UNKNOWN");
    if (resp.status < 200 || resp.status > 299) {
        error = cli_http_error(&resp, "storing the manifest");
        goto done;
    }
    if (!resp.content_digest)
        fprintf(stderr, "mlreg push: warning: registry sent no Docker-Content-Digest\n");
    else if (strcmp(resp.content_digest, expected_digest))
        error = mlreg_error_set(MLREG_EMISMATCH,
                                "registry stored the manifest as %s, but the bytes sent hash to %s",
                                mlreg_text_printable(resp.content_digest), expected_digest);
done:
    cli_response_clear(&resp);
    return error;
}

static int parse_args(cli_ref *ref, file_list *l, push_opts *o, int argc, char **argv)
{
    const char *refstr = NULL, *v;
    int error, m;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        size_t k;
        int matched = 0;

        for (k = 0; k < NKINDS - 1 && !matched; k++) {
            char opt[32];
            snprintf(opt, sizeof(opt), "--%s", kinds[k]);
            if ((m = cli_opt(&v, &i, argc, argv, opt)) < 0) return MLREG_EINVALID;
            if (m) {
                matched = 1;
                if ((error = file_add(l, k, kinds[k], v, NULL)) < 0) return error;
            }
        }
        if (matched) continue;
        if ((m = cli_opt(&v, &i, argc, argv, "--eval")) != 0) {
            if (m < 0) return MLREG_EINVALID;
            if ((error = kind_index(&k, "eval-report", 11)) < 0 ||
                (error = file_add(l, k, "eval-report", v, NULL)) < 0)
                return error;
        } else if (!strcmp(arg, "--reupload")) {
            o->reupload = 1;
        } else if (!strcmp(arg, "--dry-run")) {
            o->dry_run = 1;
        } else if (!strcmp(arg, "--allow-dirty")) {
            o->allow_dirty = 1;
        } else if ((m = cli_opt(&v, &i, argc, argv, "--file")) != 0) {
            const char *eq;
            if (m < 0) return MLREG_EINVALID;
            if (!(eq = strchr(v, '=')))
                return mlreg_error_set(MLREG_EINVALID, "--file wants KIND=FILE, got '%s'", v);
            if ((error = kind_index(&k, v, (size_t)(eq - v))) < 0) return error;
            {
                char name[MLREG_KIND_MAX + 1];
                snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
                if ((error = file_add(l, k, name, eq + 1, NULL)) < 0) return error;
            }
        } else if ((m = cli_opt(&o->git_sha, &i, argc, argv, "--git-sha")) != 0) {
            if (m < 0) return MLREG_EINVALID;
            if (!hex_sha_valid(o->git_sha))
                return mlreg_error_set(MLREG_EINVALID,
                                       "--git-sha '%s': want 7 to 64 lowercase hex digits",
                                       mlreg_text_printable(o->git_sha));
        } else if ((m = cli_opt(&v, &i, argc, argv, "--limit-rate")) != 0) {
            if (m < 0) return MLREG_EINVALID;
            if ((error = cli_rate_parse(&o->rate, v, "--limit-rate")) < 0) return error;
        } else if ((m = cli_opt(&o->registry, &i, argc, argv, "--registry")) != 0 ||
                   (m = cli_opt(&o->sign_key, &i, argc, argv, "--sign-key")) != 0) {
            if (m < 0) return MLREG_EINVALID;
        } else if ((error = cli_positional(refstr ? &o->dir : &refstr, arg)) < 0) {
            return error;
        }
    }
    if (!refstr) return mlreg_error_set(MLREG_EINVALID, "missing MODEL@VERSION");
    if ((error = cli_ref_parse(ref, refstr, 0)) < 0) return error;
    if (l->nfiles == 0 && !o->dir)
        return mlreg_error_set(MLREG_EINVALID, "no files: give a DIR, or at least one --weights, "
                                               "--tokenizer, --config, --seeds, --eval-report "
                                               "or --file KIND=FILE");
    return 0;
}

/* Adds the files of directory o->dir (push_dir.h) to @p l, those given by
 * an explicit flag excepted, and says what each is. */
static int add_dir(file_list *l, push_dir_plan *plan, const push_opts *o)
{
    const char **taken = NULL;
    int error = 0;
    size_t k;

    if (l->nfiles && !(taken = malloc(l->nfiles * sizeof(*taken))))
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->nfiles; i++)
        taken[i] = l->files[i].path;
    error = push_dir_plan_build(plan, o->dir, taken, l->nfiles);
    free(taken);
    if (error < 0) return error;
    for (size_t i = 0; i < plan->nfiles; i++) {
        push_dir_file *f = &plan->files[i];
        if ((error = kind_index(&k, f->kind, strlen(f->kind))) < 0 ||
            (error = file_add(l, k, f->kind, f->path, f->name)) < 0)
            return error;
        /* the walk's descriptor moves to the list: what is hashed and
         * sent is what the walk checked */
        l->files[l->nfiles - 1].fd = f->fd;
        l->files[l->nfiles - 1].in_dir = 1;
        f->fd = -1;
        if (!cli_quiet())
            fprintf(stderr, "  %-11s %-30s (%s)\n", f->kind, mlreg_text_printable(f->name),
                    f->rule);
    }
    return 0;
}

/* --dry-run: the plan on stdout, one file a line: KIND SIZE TITLE PATH. */
static int print_plan(const file_list *l)
{
    uint64_t total = 0;
    char size_str[32];

    printf("%-17s %10s  %-40s %s\n", "KIND", "SIZE", "TITLE", "PATH");
    for (size_t i = 0; i < l->nfiles; i++) {
        const push_file *f = &l->files[i];
        cli_format_size(size_str, sizeof(size_str), f->size);
        printf("%-17s %10s  %-40s %s\n", f->kind_name, size_str, mlreg_text_printable(f->title),
               mlreg_text_printable(f->path));
        total += f->size;
    }
    cli_format_size(size_str, sizeof(size_str), total);
    printf("%zu file%s, %s; nothing uploaded (--dry-run)\n", l->nfiles, l->nfiles == 1 ? "" : "s",
           size_str);
    return cli_flush_stdout();
}

/* Signs the existing release @p body (its digest @p digest) with @p sk and
 * attaches it, unless the key signed it already. Wipes *sk. */
static int sign_existing(mlreg_seckey **sk, cli_client *c, const cli_ref *ref, const char *digest,
                         const char *body, size_t len)
{
    int error = 0, trusted = 0;
    json_t *sigs = NULL;
    mlreg_pubkey pk;
    char *sig = NULL, id[MLREG_KEYID_HEXLEN + 1];

    mlreg_seckey_pubkey(&pk, *sk);
    mlreg_keyid_format(id, &pk.id);
    if ((error = cli_sigs_get(&sigs, c, ref->model, ref->version)) < 0) goto done;
    if (cli_sigs_signed_by(sigs, &pk, ref->model, ref->version, digest, body, len)) {
        fprintf(stderr, "%s@%s is already signed by key %s\n", ref->model, ref->version, id);
        goto done;
    }
    error = cli_release_sign(&sig, *sk, ref->model, ref->version, digest, body, len);
    mlreg_seckey_free(*sk);
    *sk = NULL;
    if (error < 0 ||
        (error = cli_sig_attach(NULL, &trusted, c, ref->model, ref->version, sig, &pk)) < 0)
        goto done;
    fprintf(stderr, "signed %s@%s with key %s (%s)\n", ref->model, ref->version, id,
            trusted ? "a trusted release key of the registry"
                    : "not a trusted release key of the registry: the signature does not count");
done:
    mlreg_seckey_free(*sk);
    *sk = NULL;
    free(sig);
    json_decref(sigs);
    return error;
}

/* Step 3: the empty config, every file and every chunk index, each unless
 * the registry has it (HEAD; a file whose digest is not known yet is
 * streamed instead, see session_upload()), or every one with reupload.
 * *uploaded_out counts the files sent, *total_out their bytes. With
 * @p listed_only (the repair of an existing release), only the chunk
 * indexes that release lists are considered. */
static int upload_files(size_t *uploaded_out, uint64_t *total_out, push_ctx *x, file_list *files,
                        int listed_only)
{
    cli_client *c = x->c;
    const cli_ref *ref = x->ref;
    int error = 0, present = 0, reupload = x->reupload;
    char size_str[32];

    *uploaded_out = 0;
    *total_out = 0;
    if (!reupload && (present = blob_present(c, ref->model, MLREG_EMPTY_CONFIG_DIGEST)) < 0)
        return present;
    if (!present && (error = upload_blob(c, ref->model, MLREG_EMPTY_CONFIG_DIGEST, "the config", -1,
                                         MLREG_EMPTY_CONFIG, 2)) < 0)
        return error;
    for (size_t i = 0; i < files->nfiles; i++) {
        push_file *f = &files->files[i];
        cli_format_size(size_str, sizeof(size_str), f->size);
        *total_out += f->size;
        present = 0;
        if (f->known && !reupload && (present = blob_present(c, ref->model, f->digest)) < 0)
            return present;
        if (!present) {
            if (f->known && f->size < STREAM_MIN)
                error = upload_blob(c, ref->model, f->digest, f->title, f->fd, NULL, f->size);
            else
                error = session_upload_retried(&present, x, f);
            if (error < 0) return error;
        }
        if (present) {
            if (!cli_quiet())
                fprintf(stderr, "  %-11s %-30s %10s  already in the registry, skipped\n",
                        f->kind_name, f->title, size_str);
            continue;
        }
        f->uploaded = 1;
        (*uploaded_out)++;
        if (!cli_quiet())
            fprintf(stderr, "  %-11s %-30s %10s  uploaded\n", f->kind_name, f->title, size_str);
    }
    for (size_t i = 0; i < files->nfiles; i++) {
        push_file *f = &files->files[i];
        if (!f->indexed || (listed_only && !f->ix_listed)) continue;
        if (!reupload && (present = blob_present(c, ref->model, f->ix_digest)) < 0) return present;
        if (present && !reupload) continue;
        if ((error = upload_blob(c, ref->model, f->ix_digest, f->ix_title, -1, f->ix_bytes,
                                 f->ix_len)) < 0)
            return error;
    }
    return 0;
}

/* Manifest PUTs before a push gives up on a registry that keeps losing
 * files found present (each retry uploads them again). */
#define PUSH_ATTEMPTS 3

/* Keeps the digests learnt by this push; a cache that cannot be written
 * costs the next push a re-hash, nothing more. */
static void cache_save(push_ctx *x)
{
    if (!x->cache_dir[0] || !x->cache.dirty) return;
    if (push_cache_save(&x->cache, x->cache_dir) < 0) {
        fprintf(stderr, "mlreg push: warning: digest cache not saved: %s\n", mlreg_error_last());
        mlreg_error_clear();
    }
}

int cmd_push(int argc, char **argv)
{
    int error = 0, exists = 0, conflict = 0, lost = 0;
    cli_ref ref;
    file_list files = {0};
    push_opts o = {0};
    push_dir_plan plan = {0};
    int git_dirty = 0;
    char git_sha[65], digest[MLREG_DIGEST_STRLEN + 1], existing[MLREG_DIGEST_STRLEN + 1];
    char size_str[32];
    char *manifest = NULL, *existing_body = NULL, *sig = NULL, keyid[MLREG_KEYID_HEXLEN + 1];
    size_t existing_len = 0;
    cli_client *c = NULL;
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pk;
    int trusted = 0;
    mlreg_digest md;
    uint64_t total = 0, rate = 0;
    size_t uploaded = 0;
    push_ctx x;

    memset(&x, 0, sizeof(x));
    x.ref = &ref;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_line, stdout);
            return CLI_EXIT_OK;
        }
    if ((error = parse_args(&ref, &files, &o, argc, argv)) < 0) {
        fprintf(stderr, "mlreg push: %s\n%s", mlreg_error_last(), usage_line);
        file_list_free(&files);
        return CLI_EXIT_USAGE;
    }
    x.reupload = o.reupload;
    rate = o.rate;
    if (o.dir && (error = add_dir(&files, &plan, &o)) < 0) goto done;
    qsort(files.files, files.nfiles, sizeof(*files.files), file_cmp);
    if ((error = check_titles(&files)) < 0) goto done;
    /* The key first: a wrong password must cost no hashing and no upload. */
    if (o.sign_key && !o.dry_run) {
        if ((error = cli_seckey_load(&sk, o.sign_key)) < 0) goto done;
        mlreg_seckey_pubkey(&pk, sk);
        mlreg_keyid_format(keyid, &pk.id);
    }
    if (push_cache_dir(x.cache_dir, sizeof(x.cache_dir)) < 0) {
        x.cache_dir[0] = '\0'; /* no cache: every file is hashed */
        mlreg_error_clear();
    } else if ((error = push_cache_load(&x.cache, x.cache_dir)) < 0) {
        goto done;
    } else {
        push_upload_prune(x.cache_dir, UPLOAD_KEEP_SECONDS);
    }
    if ((error = open_files(&x, &files)) < 0 || (error = check_title_set(&files, 1)) < 0) goto done;
    for (size_t i = 0; i < files.nfiles; i++)
        if (!strcmp(files.files[i].kind_name, "eval-report") &&
            (error = check_eval_report(&files.files[i])) < 0)
            goto done;
    if (o.dry_run) {
        error = print_plan(&files);
        goto done;
    }
    if ((error = hash_unknown(&x, &files, 1)) < 0) goto done;
    git_record(git_sha, &git_dirty, &o);

    if ((error = cli_client_new(&c, o.registry)) < 0) goto done;
    send_limit = rate;
    x.c = c;
    if ((error = check_existing(&exists, existing, sk ? &existing_body : NULL, &existing_len, &x,
                                &files)) < 0)
        goto done;
    if (exists) {
        /* nothing to create, but each file the registry lacks (or every
         * file, --reupload) is sent again: that repairs the release */
        if (!cli_quiet())
            fprintf(stderr, "%s@%s already exists with the same files\n", ref.model, ref.version);
        if ((error = upload_files(&uploaded, &total, &x, &files, 1)) < 0) goto done;
        if (uploaded > 0)
            fprintf(stderr, "re-uploaded %zu file%s of %s@%s\n", uploaded, uploaded == 1 ? "" : "s",
                    ref.model, ref.version);
        else
            fprintf(stderr, "the registry has every file; nothing to upload\n");
        memcpy(digest, existing, sizeof(digest));
        if (sk && (error = sign_existing(&sk, c, &ref, digest, existing_body, existing_len)) < 0)
            goto done;
        goto print;
    }

    /* a file found present may be collected before the manifest lands (it
     * was unreferenced: an earlier push that never finished): the registry
     * then names it, and sending what it lacks again repairs that */
    for (int attempt = 1;; attempt++) {
        size_t sent = 0;
        if ((error = upload_files(&sent, &total, &x, &files, 0)) < 0) goto done;
        uploaded += sent;
        if (!manifest) {
            /* every digest is known now: the manifest, and its signature
             * (the key is wiped at once) */
            if ((error = build_manifest(&manifest, &ref, &files, git_sha, git_dirty)) < 0 ||
                (error = mlreg_digest_buffer(&md, manifest, strlen(manifest))) < 0)
                goto done;
            mlreg_digest_format(digest, &md);
            if (sk) {
                error = cli_release_sign(&sig, sk, ref.model, ref.version, digest, manifest,
                                         strlen(manifest));
                mlreg_seckey_free(sk);
                sk = NULL;
                if (error < 0) goto done;
            }
        }
        error = put_manifest(&conflict, &lost, c, &ref, manifest, digest);
        if (error == 0 || !lost || attempt == PUSH_ATTEMPTS) break;
        fprintf(stderr,
                "mlreg push: %s\n  a file was deleted from the registry since it was "
                "found there (garbage collection); uploading what it lacks again\n",
                mlreg_error_last());
    }
    if (error < 0) {
        /* A concurrent push of the same version won the race: fine when it
         * holds the same files (the manifests differ only in their created
         * time), a refusal otherwise. */
        if (!conflict || check_existing(&exists, existing, NULL, NULL, &x, &files) < 0 || !exists)
            goto done;
        fprintf(stderr, "%s@%s was pushed concurrently with the same files\n", ref.model,
                ref.version);
        memcpy(digest, existing, sizeof(digest));
        if (sig) {
            /* Our signature covers our manifest, which lost the race, and
             * the key is wiped already. */
            printf("%s\n", digest);
            error = mlreg_error_set(MLREG_EDENIED,
                                    "%s@%s was pushed concurrently by someone else, so the "
                                    "signature made here does not cover it; sign it with "
                                    "`mlreg sign %s@%s --key %s`",
                                    ref.model, ref.version, ref.model, ref.version, o.sign_key);
            goto done;
        }
        error = 0;
        goto print;
    }
    if (sig) {
        if ((error = cli_sig_attach(NULL, &trusted, c, ref.model, ref.version, sig, &pk)) < 0) {
            printf("%s\n", digest);
            error =
                cli_error_wrap(error, "%s@%s was pushed as %s, but its signature was not attached",
                               ref.model, ref.version, digest);
            goto done;
        }
        fprintf(stderr, "signed %s@%s with key %s (%s)\n", ref.model, ref.version, keyid,
                trusted
                    ? "a trusted release key of the registry"
                    : "not a trusted release key of the registry: the signature does not count");
    }
    cli_format_size(size_str, sizeof(size_str), total);
    if (!cli_quiet())
        fprintf(stderr, "pushed %s@%s: %zu file%s, %s (%zu uploaded, %zu already present)\n",
                ref.model, ref.version, files.nfiles, files.nfiles == 1 ? "" : "s", size_str,
                uploaded, files.nfiles - uploaded);
print:
    printf("%s\n", digest);
    error = cli_flush_stdout();
done:
    cache_save(&x);
    push_cache_clear(&x.cache);
    mlreg_seckey_free(sk);
    free(sig);
    free(existing_body);
    free(manifest);
    cli_client_free(c);
    file_list_free(&files);
    push_dir_plan_clear(&plan);
    return error < 0 ? cli_fail("push", error) : CLI_EXIT_OK;
}
