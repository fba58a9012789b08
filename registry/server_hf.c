/* server_hf.c: read-only routes in the shape the Hugging Face Hub clients
 * call (huggingface_hub, @huggingface/hub, transformers through them), so
 * that HF_ENDPOINT pointing at mlreg downloads a release
 * (docs/huggingface.md):
 *
 *   GET /api/models/{name}[/revision/{rev}]       model info of a release
 *   GET /api/models/{name}/tree/{rev}[/{path}]    its files and directories
 *   GET, HEAD /{name}/resolve/{rev}/{path}        one file (Range, ETag)
 *   POST /api/models/{name}/paths-info/{rev}      the tree entries of paths
 *
 * A revision is a version, a stage (what it holds now), a release digest
 * (its 64 hex digits, as the answers' "sha" and X-Repo-Commit give it, or
 * sha256:HEX, its ':' as is or encoded: the server lets percent-encoding
 * through in these routes' revision and file path only, decoded here), or
 * "main"/"HEAD": the last stage of the config, the one closest to
 * production. A withdrawn release is refused (403, as the Hub answers a
 * disabled repository). The reads need role read on the model, as every
 * other read. Errors are the Hub's: {"error": ...} with X-Error-Code
 * (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo), which the
 * clients turn into their own exceptions.
 *
 * The download route begins with the model name, so it would take any path
 * of another table holding a "resolve" segment: its table is tried last,
 * and reserves the first segments of the others (and the Hub's datasets/
 * and spaces/, which mlreg does not serve). {path*} splits the name at the
 * first "/resolve/" (and "/tree/"), so a file path may hold any segment.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlreg/chunk_index.h"
#include "mlreg/common.h"
#include "mlreg/names.h"
#include "mlreg/promotions.h"
#include "mlreg/time.h"
#include "server_routes.h"

/* Files larger than this are described as LFS files (lfs {oid, size}), as
 * the Hub's default .gitattributes does; weights always are. */
#define HF_LFS_THRESHOLD (10u * 1024 * 1024)
/* The size of a git-lfs pointer file of a sha256 and a size, which the
 * Hub's answers carry as lfs.pointerSize (huggingface_hub requires it). */
#define HF_LFS_POINTER_SIZE 134
/* Entries of one page of a tree listing, as the Hub pages them. */
#define HF_TREE_PAGE 1000u
/* The longest revision text we look at (a tag is at most 128). */
#define HF_REV_MAX 128
/* A ranged GET of at most this many bytes is answered by the server even
 * where downloads are redirected: the clients' probe of a file
 * (fileDownloadInfo: "bytes=0-0") then reads the sha256 as ETag and the
 * size in Content-Range, not the object store's, and a redirect would cost
 * more than the bytes. */
#define HF_SMALL_RANGE (64u * 1024)

/* The release a revision names. */
typedef struct {
    json_t *rel;         /* mlreg_registry_release_get()'s answer (owned) */
    const char *version; /* in rel */
    char commit[65];     /* the release digest's hex: the Hub's commit sha */
    char digest[72];     /* sha256:<hex> */
    char modified[32];   /* its creation time as the Hub writes times */
} hf_release;

static void release_clear(hf_release *r)
{
    json_decref(r->rel);
    memset(r, 0, sizeof(*r));
}

/* The value of hex digit @p c, or -1. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int is_hex64(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return i == 64;
}

/* The revision of the route as captured ({reference}: one segment, maybe
 * empty, which names nothing); "main" for the row without one. */
static const char *rev_of(const request *rq)
{
    return rq->arg ? rq->arg : "main";
}

/* The releases of the route's model (mlreg_registry_model_get(), *out
 * owned by the caller): 0, or -1 with the error recorded on @p rq, 404
 * RepoNotFound for a model that has no release. */
static int model_releases(json_t **out, request *rq)
{
    int error = mlreg_registry_model_get(out, rq->srv->reg, rq->name);

    if (error == MLREG_ENOTFOUND ||
        (error == 0 && json_array_size(json_object_get(*out, "releases")) == 0)) {
        mlreg_error_clear();
        mlreg_server__req_fail_raw(rq, 404, "RepoNotFound", "model %.256s not found", rq->name);
        error = -1;
    } else if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_HF);
    }
    if (error < 0) {
        json_decref(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* Records a 404 RevisionNotFound naming what a revision may be, or
 * RepoNotFound when the model itself has no release: the model is looked
 * up only then, so a download by version or stage reads one record. */
static void rev_not_found(request *rq, const char *why)
{
    json_t *model_j = NULL;

    if (model_releases(&model_j, rq) < 0) return;
    json_decref(model_j);
    mlreg_server__req_fail_raw(rq, 404, "RevisionNotFound",
                               "%s; a revision is a version, a stage, a release digest (64 hex "
                               "digits or sha256:HEX) or main (the last stage)",
                               why);
}

/* The version @p rev names in the route's model: *out points into @p rev
 * or into *hold (the stage answer or the model's releases, owned by the
 * caller). -1 with the error recorded on @p rq. */
static int rev_version(const char **out, json_t **hold, request *rq, const char *rev)
{
    const mlreg_policy *policy = rq->conf->policy;
    const char *stage = NULL, *hex = NULL;
    char why[512];
    int error;

    *out = NULL;
    if (strlen(rev) > HF_REV_MAX) {
        rev_not_found(rq, "revision longer than 128 characters");
        return -1;
    }
    if (!strcmp(rev, "main") || !strcmp(rev, "HEAD")) {
        size_t n = mlreg_policy_stage_count(policy);
        if (n == 0) {
            snprintf(why, sizeof(why),
                     "revision '%s' means the last stage, and no stage is configured", rev);
            rev_not_found(rq, why);
            return -1;
        }
        stage = mlreg_policy_stages(policy)[n - 1];
    } else if (mlreg_policy_stage_index(policy, rev) >= 0) {
        stage = rev;
    } else if (!strncmp(rev, "sha256:", 7) && is_hex64(rev + 7)) {
        hex = rev + 7;
    } else if (is_hex64(rev)) {
        hex = rev;
    }
    if (stage) {
        error = mlreg_stage_get(hold, rq->srv->reg, policy, rq->name, stage, -1);
        if (error == MLREG_ENOTFOUND) {
            snprintf(why, sizeof(why), "stage '%.128s'%s%s%s of %.256s holds no release", stage,
                     stage == rev ? "" : " (what ", stage == rev ? "" : rev,
                     stage == rev ? "" : " means)", rq->name);
            rev_not_found(rq, why);
            return -1;
        }
        if (error < 0) {
            mlreg_server__req_fail(rq, error, ERR_CTX_HF);
            return -1;
        }
        if (!(*out = json_string_value(json_object_get(*hold, "version")))) {
            mlreg_error_set(MLREG_EIO, "stage %s of %s: a record without a version", stage,
                            rq->name);
            mlreg_server__req_fail(rq, MLREG_EIO, ERR_CTX_HF);
            return -1;
        }
        return 0;
    }
    if (hex) {
        const json_t *rels;
        if (model_releases(hold, rq) < 0) return -1;
        rels = json_object_get(*hold, "releases");
        for (size_t i = 0; i < json_array_size(rels); i++) {
            const json_t *rel = json_array_get(rels, i);
            const char *d = json_string_value(json_object_get(rel, "digest"));
            const char *v = json_string_value(json_object_get(rel, "version"));
            if (d && v && !strncmp(d, "sha256:", 7) && !strcmp(d + 7, hex)) {
                *out = v;
                return 0;
            }
        }
        snprintf(why, sizeof(why), "no release of %.256s has digest sha256:%s", rq->name, hex);
        rev_not_found(rq, why);
        return -1;
    }
    if (mlreg_tag_validate(rev) < 0) {
        mlreg_error_clear();
        rev_not_found(rq, "revision is not a valid version");
        return -1;
    }
    *out = rev;
    return 0;
}

/* The Hub's time format ("2026-01-02T03:04:05.123Z") of an RFC 3339 time;
 * the text as is when it does not parse. */
static void hub_time(char *out, size_t cap, const char *created)
{
    int64_t sec;
    int32_t nsec;
    char full[MLREG_TIME_STRLEN];

    if (created == NULL || mlreg_time_parse(&sec, &nsec, created) < 0) {
        mlreg_error_clear();
        snprintf(out, cap, "%s", created ? created : "1970-01-01T00:00:00.000Z");
        return;
    }
    mlreg_time_format_sec(full, sec, nsec);
    snprintf(out, cap, "%.23sZ", full);
}

/* Resolves the route's model and revision to a release, refusing a
 * withdrawn one. 0, or -1 with the error recorded on @p rq. */
static int release_of(hf_release *out, request *rq)
{
    mlreg_registry *reg = rq->srv->reg;
    json_t *hold = NULL, *w;
    const char *version = NULL, *d;
    int error, ret = -1;

    memset(out, 0, sizeof(*out));
    if (rev_version(&version, &hold, rq, rev_of(rq)) < 0) goto done;
    error = mlreg_registry_release_get(&out->rel, reg, rq->name, version);
    if (error == MLREG_ENOTFOUND) {
        char why[512];
        snprintf(why, sizeof(why), "release %.256s@%.128s not found", rq->name, version);
        rev_not_found(rq, why);
        goto done;
    }
    if (error < 0) {
        mlreg_server__req_fail(rq, error, ERR_CTX_HF);
        goto done;
    }
    if (json_is_object(w = json_object_get(out->rel, "withdrawn"))) {
        const char *by = json_string_value(json_object_get(w, "by"));
        const char *when = json_string_value(json_object_get(w, "time"));
        const char *why = json_string_value(json_object_get(w, "reason"));
        mlreg_server__req_fail_raw(rq, 403, "DisabledRepo",
                                   "%.256s@%.128s was withdrawn by %s at %s: %s", rq->name, version,
                                   by ? by : "?", when ? when : "?", why ? why : "?");
        goto done;
    }
    d = json_string_value(json_object_get(out->rel, "digest"));
    if (d == NULL || strncmp(d, "sha256:", 7) || !is_hex64(d + 7)) {
        mlreg_error_set(MLREG_EIO, "release %s@%s has no valid digest", rq->name, version);
        mlreg_server__req_fail(rq, MLREG_EIO, ERR_CTX_HF);
        goto done;
    }
    snprintf(out->digest, sizeof(out->digest), "%s", d);
    snprintf(out->commit, sizeof(out->commit), "%s", d + 7);
    out->version = json_string_value(json_object_get(out->rel, "version"));
    hub_time(out->modified, sizeof(out->modified),
             json_string_value(json_object_get(out->rel, "created")));
    ret = 0;

done:
    if (ret < 0) release_clear(out);
    json_decref(hold);
    return ret;
}

/* The files of a release a client sees: every file but the chunk indexes
 * (mlreg pull's own). Calls @p fn for each with its record; stops at the
 * first negative answer and returns it. */
static int each_file(const hf_release *r, int (*fn)(const json_t *file, void *cls), void *cls)
{
    const json_t *files = json_object_get(r->rel, "files");

    for (size_t i = 0; i < json_array_size(files); i++) {
        const json_t *f = json_array_get(files, i);
        const char *kind = json_string_value(json_object_get(f, "kind"));
        int error;
        if (kind && !strcmp(kind, MLREG_KIND_CHUNK_INDEX)) continue;
        if (!json_string_value(json_object_get(f, "title"))) continue;
        if ((error = fn(f, cls)) < 0) return error;
    }
    return 0;
}

static int is_lfs(const json_t *f)
{
    const char *kind = json_string_value(json_object_get(f, "kind"));

    return (kind && !strcmp(kind, "weights")) ||
           json_integer_value(json_object_get(f, "size")) > (json_int_t)HF_LFS_THRESHOLD;
}

/* The sha256 hex of a file record's digest, or NULL. */
static const char *file_hex(const json_t *f)
{
    const char *d = json_string_value(json_object_get(f, "digest"));

    return d && !strncmp(d, "sha256:", 7) && is_hex64(d + 7) ? d + 7 : NULL;
}

/* ---- model info ------------------------------------------------------------ */

static int add_sibling(const json_t *f, void *cls)
{
    json_t *o = json_pack("{s:O, s:O}", "rfilename", json_object_get(f, "title"), "size",
                          json_object_get(f, "size"));
    const char *hex = file_hex(f);

    if (o && hex && is_lfs(f) &&
        json_object_set_new(o, "lfs",
                            json_pack("{s:s, s:O, s:i}", "sha256", hex, "size",
                                      json_object_get(f, "size"), "pointerSize",
                                      HF_LFS_POINTER_SIZE)) < 0) {
        json_decref(o);
        o = NULL;
    }
    if (o == NULL || json_array_append_new(cls, o) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

/* GET /api/models/{name}[/revision/{rev}]: the Hub's model info of the
 * release the revision names ("sha" its digest's hex, "siblings" its
 * files), plus "mlreg": {"version","digest"}. */
static enum MHD_Result finish_info(request *rq)
{
    hf_release r;
    json_t *j = NULL, *siblings = json_array();
    const char *slash = strchr(rq->name, '/');
    char author[256];
    int error;

    if (release_of(&r, rq) < 0) {
        json_decref(siblings);
        return mlreg_server__req_queue_error(rq);
    }
    snprintf(author, sizeof(author), "%.*s", slash ? (int)(slash - rq->name) : 0, rq->name);
    if (siblings == NULL || (error = each_file(&r, add_sibling, siblings)) < 0 ||
        !(j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:i, s:i, s:[s], "
                        "s:O, s:{s:s, s:s}}",
                        "_id", r.commit, "id", rq->name, "modelId", rq->name, "author", author,
                        "sha", r.commit, "lastModified", r.modified, "createdAt", r.modified,
                        "private", 1, "disabled", 0, "gated", 0, "downloads", 0, "likes", 0, "tags",
                        "mlreg", "siblings", siblings, "mlreg", "version", r.version, "digest",
                        r.digest))) {
        json_decref(siblings);
        release_clear(&r);
        mlreg_error_set(MLREG_ENOMEM, "out of memory");
        return mlreg_server__reply_error(rq, MLREG_ENOMEM, ERR_CTX_HF);
    }
    json_decref(siblings);
    release_clear(&r);
    return mlreg_server__reply_json(rq, 200, j);
}

/* ---- tree ---------------------------------------------------------------- */

typedef struct {
    const char *dir; /* "" (the root) or a directory path without a final '/' */
    uint64_t limit;  /* entries a page */
    size_t dirlen;
    int recursive;
    int expand;
    const hf_release *r;
    json_t *entries; /* the listing so far */
    json_t *dirs;    /* the directories in it, as keys: one lookup each */
    int is_file;     /* dir names a file */
} tree_walk;

static int add_commit(json_t *o, const tree_walk *w)
{
    char title[400];

    if (!w->expand) return 0;
    snprintf(title, sizeof(title), "%s@%s", json_string_value(json_object_get(w->r->rel, "model")),
             w->r->version);
    return json_object_set_new(
        o, "lastCommit",
        json_pack("{s:s, s:s, s:s}", "id", w->r->commit, "title", title, "date", w->r->modified));
}

static int add_dir(tree_walk *w, const char *path, size_t len)
{
    json_t *o;

    if (w->dirs == NULL && (w->dirs = json_object()) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (json_object_getn(w->dirs, path, len) != NULL) return 0;
    o = json_pack("{s:s, s:s, s:i, s:s%}", "type", "directory", "oid", w->r->commit, "size", 0,
                  "path", path, len);
    if (o == NULL || add_commit(o, w) < 0 || json_array_append_new(w->entries, o) < 0) {
        json_decref(o);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    if (json_object_setn_new(w->dirs, path, len, json_true()) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

static int add_tree_entry(const json_t *f, void *cls)
{
    tree_walk *w = cls;
    const char *title = json_string_value(json_object_get(f, "title")), *rel, *slash;
    const char *hex = file_hex(f);
    json_t *o;
    int error;

    if (w->dirlen) {
        if (!strcmp(title, w->dir)) w->is_file = 1;
        if (strncmp(title, w->dir, w->dirlen) || title[w->dirlen] != '/') return 0;
        rel = title + w->dirlen + 1;
    } else {
        rel = title;
    }
    /* the directories between the listed one and the file */
    for (slash = strchr(rel, '/'); slash; slash = strchr(slash + 1, '/')) {
        if ((error = add_dir(w, title, (size_t)(slash - title))) < 0) return error;
        if (!w->recursive) return 0;
    }
    o = json_pack("{s:s, s:s, s:O, s:s}", "type", "file", "oid", hex ? hex : "", "size",
                  json_object_get(f, "size"), "path", title);
    if (o && hex && is_lfs(f) &&
        json_object_set_new(o, "lfs",
                            json_pack("{s:s, s:O, s:i}", "oid", hex, "size",
                                      json_object_get(f, "size"), "pointerSize",
                                      HF_LFS_POINTER_SIZE)) < 0) {
        json_decref(o);
        o = NULL;
    }
    if (o == NULL || add_commit(o, w) < 0 || json_array_append_new(w->entries, o) < 0) {
        json_decref(o);
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

    return strcmp(json_string_value(json_object_get(x, "path")),
                  json_string_value(json_object_get(y, "path")));
}

/* ?recursive= and ?expand=: absent, "true"/"1" or "false"/"0"; -1 with a 400
 * recorded otherwise. */
static int flag_query(int *out, request *rq, const char *name)
{
    const char *v = mlreg_server__req_query(rq, name);

    *out = 0;
    if (v == NULL || !strcmp(v, "false") || !strcmp(v, "0") || !*v) return 0;
    if (!strcmp(v, "true") || !strcmp(v, "1")) {
        *out = 1;
        return 0;
    }
    mlreg_server__req_fail_raw(rq, 400, "BadRequest", "?%s= must be true or false", name);
    return -1;
}

/* Link: <next page>; rel="next", as an absolute URL: the clients follow
 * only those. 0 or MLREG_ENOMEM. */
static int tree_link(struct MHD_Response *resp, request *rq, const tree_walk *w, size_t next)
{
    const char *host = mlreg_server__req_header(rq, "Host");
    char *link;
    size_t cap;
    int error;

    if (host == NULL || !*host || strpbrk(host, " \t\"<>\\")) return 0; /* no usable base */
    cap = strlen(host) + strlen(rq->path) + 128;
    if ((link = malloc(cap)) == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    snprintf(link, cap,
             "<%s://%s%s?recursive=%s&expand=%s&limit=%" PRIu64 "&cursor=%zu>; rel=\"next\"",
             rq->srv->tls ? "https" : "http", host, rq->path, w->recursive ? "true" : "false",
             w->expand ? "true" : "false", w->limit, next);
    error = mlreg_server__resp_header(resp, "Link", link);
    free(link);
    return error;
}

/* GET /api/models/{name}/tree/{rev}[/{path}][?recursive=&expand=&limit=&cursor=]:
 * the files and directories under path (the root without one), sorted by
 * path, limit (at most and by default HF_TREE_PAGE) a page, a Link header to
 * the next page. The cursor is the offset of the page's first entry: a
 * release never changes, so the offsets stay true between pages. */
static enum MHD_Result finish_tree(request *rq)
{
    hf_release r;
    tree_walk w;
    json_t *page = NULL;
    struct MHD_Response *resp;
    uint64_t cursor = 0, len;
    size_t n, end;
    json_t **items = NULL;
    int error;

    memset(&w, 0, sizeof(w));
    if (flag_query(&w.recursive, rq, "recursive") < 0 || flag_query(&w.expand, rq, "expand") < 0)
        return mlreg_server__req_queue_error(rq);
    w.limit = HF_TREE_PAGE;
    if ((error = mlreg_server__req_query_u64(&cursor, NULL, rq, "cursor")) < 0 ||
        (error = mlreg_server__req_query_u64(&w.limit, NULL, rq, "limit")) < 0)
        return mlreg_server__reply_error(rq, error, ERR_CTX_HF);
    if (w.limit == 0 || w.limit > HF_TREE_PAGE) {
        mlreg_server__req_fail_raw(rq, 400, "BadRequest", "?limit= must be between 1 and %u",
                                   HF_TREE_PAGE);
        return mlreg_server__req_queue_error(rq);
    }
    if (release_of(&r, rq) < 0) return mlreg_server__req_queue_error(rq);
    w.dir = rq->file ? rq->file : "";
    w.dirlen = strlen(w.dir);
    w.r = &r;
    if (!(w.entries = json_array())) goto oom;
    if ((error = each_file(&r, add_tree_entry, &w)) < 0) goto fail;
    n = json_array_size(w.entries);
    if (w.dirlen && n == 0) {
        if (w.is_file)
            mlreg_server__req_fail_raw(rq, 404, "EntryNotFound",
                                       "'%.256s' is a file, not a directory", w.dir);
        else
            mlreg_server__req_fail_raw(rq, 404, "EntryNotFound",
                                       "no directory '%.256s' in %.256s@%s", w.dir, rq->name,
                                       r.version);
        json_decref(w.entries);
        json_decref(w.dirs);
        release_clear(&r);
        return mlreg_server__req_queue_error(rq);
    }
    if (n && !(items = malloc(n * sizeof(*items)))) goto oom;
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(w.entries, i);
    qsort(items, n, sizeof(*items), entry_cmp);
    if (!(page = json_array())) goto oom;
    end = cursor < n ? (size_t)cursor : n;
    end = n - end > w.limit ? end + (size_t)w.limit : n;
    for (size_t i = cursor < n ? (size_t)cursor : n; i < end; i++)
        if (json_array_append(page, items[i]) < 0) goto oom;
    free(items);
    items = NULL;
    if (!(resp = mlreg_server__resp_json(page, NULL, &len))) goto oom;
    if (end < n && tree_link(resp, rq, &w, end) < 0) {
        MHD_destroy_response(resp);
        goto oom;
    }
    json_decref(page);
    json_decref(w.entries);
    json_decref(w.dirs);
    release_clear(&r);
    return mlreg_server__req_queue(rq, 200, resp, !strcmp(rq->method, "HEAD") ? 0 : len);
oom:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
fail:
    free(items);
    json_decref(page);
    json_decref(w.entries);
    json_decref(w.dirs);
    release_clear(&r);
    return mlreg_server__reply_error(rq, error, ERR_CTX_HF);
}

/* ---- paths-info ------------------------------------------------------------ */

/* Decodes a form value in place: '+' is a space, %XX a byte. 0, or -1 for a
 * malformed escape or an encoded NUL. */
static int form_unescape(char *s)
{
    char *w = s;

    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '+') {
            *w++ = ' ';
            continue;
        }
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        hi = hex_value(r[1]);
        lo = hi < 0 ? -1 : hex_value(r[2]);
        if (lo < 0 || (hi == 0 && lo == 0)) return -1;
        *w++ = (char)(hi * 16 + lo);
        r += 2;
    }
    *w = '\0';
    return 0;
}

/* "True"/"true"/"1" (1), "False"/"false"/"0"/"" (0), else -1. */
static int form_bool(const char *v)
{
    if (!strcmp(v, "True") || !strcmp(v, "true") || !strcmp(v, "1")) return 1;
    if (!strcmp(v, "False") || !strcmp(v, "false") || !strcmp(v, "0") || !*v) return 0;
    return -1;
}

/* The paths and expand of a paths-info body: a form (paths=A&paths=B&expand=
 * True, as huggingface_hub sends it) or JSON ({"paths": [...], "expand":
 * bool}, as @huggingface/hub sends it). *paths a new array of strings. 0, or
 * -1 with a 400 recorded. */
static int paths_info_body(json_t **paths, int *expand, request *rq)
{
    const char *ct = mlreg_server__req_header(rq, "Content-Type");
    json_t *j = NULL, *v;
    char *body = NULL, *tok, *save = NULL;
    const char *why = NULL;
    size_t i;

    *expand = 0;
    if (!(*paths = json_array())) goto oom;
    if (ct && !strncasecmp(ct, "application/json", 16)) {
        json_error_t jerr;
        j = rq->mbuf ? json_loadb(rq->mbuf, rq->mlen, JSON_REJECT_DUPLICATES, &jerr) : NULL;
        v = json_object_get(j, "expand");
        if (!json_is_object(j))
            why = "the body is no JSON object";
        else if (!json_is_array(json_object_get(j, "paths")))
            why = "\"paths\" must be an array of file paths";
        else if (v && !json_is_boolean(v) && !json_is_null(v))
            why = "\"expand\" must be true or false";
        json_array_foreach(json_object_get(j, "paths"), i, v)
        {
            if (why) break;
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                why = "\"paths\" must hold strings without NUL";
            else if (json_array_append(*paths, v) < 0)
                goto oom;
        }
        *expand = json_is_true(json_object_get(j, "expand"));
    } else if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        if (!(body = strndup(rq->mbuf ? rq->mbuf : "", rq->mlen))) goto oom;
        for (tok = strtok_r(body, "&", &save); tok && !why; tok = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(tok, '='), *val = eq ? eq + 1 : tok + strlen(tok);
            if (eq) *eq = '\0';
            if (form_unescape(tok) < 0 || form_unescape(val) < 0) {
                why = "malformed percent-encoding (or an encoded NUL) in the form";
            } else if (!strcmp(tok, "paths")) {
                json_t *sv = json_string(val); /* NULL: not UTF-8 */
                if (sv == NULL)
                    why = "a path is not UTF-8";
                else if (json_array_append_new(*paths, sv) < 0)
                    goto oom;
            } else if (!strcmp(tok, "expand")) {
                if ((*expand = form_bool(val)) < 0) why = "expand= must be True or False";
            }
        }
    } else {
        why = "send the paths as application/x-www-form-urlencoded or application/json";
    }
    if (!why && json_array_size(*paths) == 0) why = "give at least one path (paths=...)";
    if (!why && json_array_size(*paths) > HF_TREE_PAGE) why = "at most 1000 paths a request";
    free(body);
    json_decref(j);
    if (why) {
        json_decref(*paths);
        *paths = NULL;
        mlreg_server__req_fail_raw(rq, 400, "BadRequest", "paths-info: %s", why);
        return -1;
    }
    return 0;
oom:
    free(body);
    json_decref(j);
    json_decref(*paths);
    *paths = NULL;
    mlreg_error_set(MLREG_ENOMEM, "out of memory");
    mlreg_server__req_fail(rq, MLREG_ENOMEM, ERR_CTX_HF);
    return -1;
}

/* POST /api/models/{name}/paths-info/{rev} with the paths (form or JSON):
 * the tree entries of those paths that are a file or a directory of the
 * release, in the order asked, each once; the others are left out, as the
 * Hub leaves them out. ?expand adds lastCommit, as in the tree. */
static enum MHD_Result finish_paths_info(request *rq)
{
    hf_release r;
    tree_walk w;
    json_t *paths = NULL, *out = NULL, *p;
    size_t i;
    int error;

    memset(&w, 0, sizeof(w));
    if (paths_info_body(&paths, &w.expand, rq) < 0) return mlreg_server__req_queue_error(rq);
    if (release_of(&r, rq) < 0) {
        json_decref(paths);
        return mlreg_server__req_queue_error(rq);
    }
    w.dir = "";
    w.recursive = 1;
    w.r = &r;
    if (!(w.entries = json_array()) || !(out = json_array())) goto oom;
    if ((error = each_file(&r, add_tree_entry, &w)) < 0) goto fail;
    json_array_foreach(paths, i, p)
    {
        const char *want = json_string_value(p);
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = !strcmp(want, json_string_value(json_array_get(paths, k)));
        for (size_t k = 0; !seen && k < json_array_size(w.entries); k++) {
            json_t *e = json_array_get(w.entries, k);
            if (strcmp(json_string_value(json_object_get(e, "path")), want)) continue;
            if (json_array_append(out, e) < 0) goto oom;
            break;
        }
    }
    json_decref(paths);
    json_decref(w.entries);
    json_decref(w.dirs);
    release_clear(&r);
    return mlreg_server__reply_json(rq, 200, out);
oom:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
fail:
    json_decref(paths);
    json_decref(out);
    json_decref(w.entries);
    json_decref(w.dirs);
    release_clear(&r);
    return mlreg_server__reply_error(rq, error, ERR_CTX_HF);
}

/* ---- resolve ------------------------------------------------------------- */

typedef struct {
    const char *path;
    const json_t *found;
} file_find;

static int find_file(const json_t *f, void *cls)
{
    file_find *ff = cls;

    if (!strcmp(json_string_value(json_object_get(f, "title")), ff->path)) {
        ff->found = f;
        return -1; /* stop */
    }
    return 0;
}

/* Whether @p range (a Range header, or NULL) asks for one span of at most
 * HF_SMALL_RANGE bytes whatever the file's size ("bytes=A-B", "bytes=-N").
 * Anything else, valid or not, is left to the blob answer. */
static int small_range(const char *range)
{
    uint64_t a, b;

    if (range == NULL || strncmp(range, "bytes=", 6)) return 0;
    range += 6;
    if (*range == '-') {
        range++;
        return mlreg_server__parse_u64(&range, &b) == 0 && !*range && b <= HF_SMALL_RANGE;
    }
    if (mlreg_server__parse_u64(&range, &a) < 0 || *range++ != '-' ||
        mlreg_server__parse_u64(&range, &b) < 0 || *range)
        return 0;
    return b >= a && b - a < HF_SMALL_RANGE;
}

/* GET/HEAD /{name}/resolve/{rev}/{path}: the file's bytes as /v2/ serves
 * blobs, with ETag the file's sha256 (quoted, as the Hub's LFS files),
 * X-Repo-Commit the release digest's hex, and on a redirect to the backend
 * X-Linked-Etag and X-Linked-Size, which the Hub clients read there. A HEAD
 * and a small range (small_range()) are answered by the server, never
 * redirected, so every client reads these headers on the first answer. */
static enum MHD_Result finish_resolve(request *rq)
{
    hf_release r;
    file_find ff = {rq->file, NULL};
    char etag[70], size[24];
    const char *hex;
    const char *extra[11];
    int error;
    enum MHD_Result ret;

    if (release_of(&r, rq) < 0) return mlreg_server__req_queue_error(rq);
    each_file(&r, find_file, &ff);
    mlreg_error_clear();
    if (ff.found == NULL || !(hex = file_hex(ff.found))) {
        mlreg_server__req_fail_raw(rq, 404, "EntryNotFound", "%.256s@%s has no file '%.256s'",
                                   rq->name, r.version, rq->file);
        release_clear(&r);
        return mlreg_server__req_queue_error(rq);
    }
    if ((error = mlreg_digest_parse(&rq->digest,
                                    json_string_value(json_object_get(ff.found, "digest")))) < 0) {
        release_clear(&r);
        return mlreg_server__reply_error(rq, error, ERR_CTX_HF);
    }
    rq->has_digest = 1;
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    snprintf(size, sizeof(size), "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(ff.found, "size")));
    extra[0] = "ETag";
    extra[1] = etag;
    extra[2] = "X-Repo-Commit";
    extra[3] = r.commit;
    extra[4] = "X-Linked-Etag";
    extra[5] = etag;
    extra[6] = "X-Linked-Size";
    extra[7] = size;
    extra[8] = NULL;
    if (!strcmp(rq->method, "HEAD"))
        ret = mlreg_server__blob_reply(rq, 1, extra);
    else if (small_range(mlreg_server__req_header(rq, "Range")))
        ret = mlreg_server__blob_reply_here(rq, extra);
    else
        ret = mlreg_server__blob_reply(rq, 0, extra);
    release_clear(&r);
    return ret;
}

/* ---- begin ---------------------------------------------------------------- */

/* Decodes the %XX escapes of @p s in place, as the Hub clients write a
 * revision (encodeURIComponent, quote) and a file path. 0, or -1 for a
 * malformed escape, an escaped NUL, or an escaped '/' (a path's segments
 * are its plain slashes; no title holds one inside a segment). */
static int unescape(char *s)
{
    char *w = s;

    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        hi = hex_value(r[1]);
        lo = hi < 0 ? -1 : hex_value(r[2]);
        if (lo < 0 || (hi == 0 && lo == 0) || (hi == 2 && lo == 15)) return -1;
        *w++ = (char)(hi * 16 + lo);
        r += 2;
    }
    *w = '\0';
    return 0;
}

/* Decodes the revision and the file path of the request (the server lets
 * escapes through only there, server.c). 0, or -1 with a 400 recorded. */
static int unescape_captures(request *rq)
{
    if ((rq->arg && unescape(rq->arg) < 0) || (rq->file && unescape(rq->file) < 0)) {
        mlreg_server__req_fail_raw(rq, 400, "BadRequest",
                                   "malformed percent-encoding in the path (or an encoded NUL "
                                   "or '/')");
        return -1;
    }
    return 0;
}

/* The {path*} capture (rq->file), checked by the one title rule
 * (mlreg_title_validate(): no empty segment, none starting with '.', so no
 * "." or "..", no control character, at most MLREG_TITLE_MAX bytes and
 * MLREG_TITLE_DEPTH_MAX segments): anything else names no file of any
 * release (404 EntryNotFound, the rule's message). A tree listing takes a
 * final '/' (".../tree/main/tokenizer/") and an empty path (the root). */
static void check_path(request *rq, int listing)
{
    char *p = rq->file ? rq->file : "";
    size_t len = strlen(p);

    if (listing && len && p[len - 1] == '/') p[--len] = '\0';
    if (len == 0 && listing) return;
    if (mlreg_title_validate(p) < 0) {
        mlreg_server__req_fail_raw(rq, 404, "EntryNotFound", "no such file: %s",
                                   mlreg_error_last());
        mlreg_error_clear();
    }
}

static void begin_info(request *rq)
{
    unescape_captures(rq);
}

static void begin_tree(request *rq)
{
    if (unescape_captures(rq) == 0) check_path(rq, 1);
}

static void begin_resolve(request *rq)
{
    if (unescape_captures(rq) == 0) check_path(rq, 0);
}

/* ---- errors ---------------------------------------------------------------- */

/* The Hub's X-Error-Code for a recorded error: the route's own codes as
 * they are, the core's (auth, lookups) translated; NULL for none. */
static const char *hub_code(const request *rq)
{
    static const struct {
        const char *ours, *hub;
    } map[] = {
        {"UNAUTHORIZED", "GatedRepo"},       {"DENIED", "GatedRepo"},
        {"NAME_UNKNOWN", "RepoNotFound"},    {"MANIFEST_UNKNOWN", "RevisionNotFound"},
        {"STAGE_EMPTY", "RevisionNotFound"}, {"BLOB_UNKNOWN", "EntryNotFound"},
        {"RepoNotFound", "RepoNotFound"},    {"RevisionNotFound", "RevisionNotFound"},
        {"EntryNotFound", "EntryNotFound"},  {"DisabledRepo", "DisabledRepo"},
    };

    for (size_t i = 0; rq->err_code && i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(rq->err_code, map[i].ours)) return map[i].hub;
    return NULL;
}

enum MHD_Result mlreg_server__hf_queue_error(request *rq)
{
    const char *code = hub_code(rq);
    json_t *body = json_pack("{s:s}", "error", rq->err_msg);
    struct MHD_Response *resp = NULL;
    uint64_t len = 0;
    char msg[sizeof(rq->err_msg)];

    /* a header value: no control characters */
    snprintf(msg, sizeof(msg), "%s", rq->err_msg);
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    if (body) resp = mlreg_server__resp_json(body, NULL, &len);
    json_decref(body);
    if (resp && code && mlreg_server__resp_header(resp, "X-Error-Code", code) < 0) goto fail;
    /* huggingface_hub recognises a disabled repository by this message */
    if (resp && mlreg_server__resp_header(resp, "X-Error-Message",
                                          code && !strcmp(code, "DisabledRepo")
                                              ? "Access to this resource is disabled."
                                              : msg) < 0)
        goto fail;
    for (size_t i = 0; resp && i < 2; i++)
        if (rq->err_hdr[i].name &&
            mlreg_server__resp_header(resp, rq->err_hdr[i].name, rq->err_hdr[i].value) < 0)
            goto fail;
    if (resp && rq->close_conn && mlreg_server__resp_header(resp, "Connection", "close") < 0)
        goto fail;
    return mlreg_server__req_queue(rq, rq->err_status, resp, len);
fail:
    MHD_destroy_response(resp);
    return mlreg_server__req_queue(rq, rq->err_status, NULL, 0);
}

/* ---- routes --------------------------------------------------------------- */

/* Every row reads: role read on the model. The reserved rows keep the
 * first segments of the other tables (and the Hub's other repository
 * types) from being read as a model name by the download row. */
static const route_row hf_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_GET_HEAD, "/api/models/{name}/revision/{reference}", ROUTE_ACCESS_READ, ROUTE_BODY_NONE,
     ERR_CTX_HF, begin_info, NULL, finish_info},
    {ROUTE_GET_HEAD, "/api/models/{name}/tree/{reference}/{path*}", ROUTE_ACCESS_READ,
     ROUTE_BODY_NONE, ERR_CTX_HF, begin_tree, NULL, finish_tree},
    {ROUTE_GET_HEAD, "/api/models/{name}/tree/{reference}", ROUTE_ACCESS_READ, ROUTE_BODY_NONE,
     ERR_CTX_HF, begin_info, NULL, finish_tree},
    {ROUTE_POST, "/api/models/{name}/paths-info/{reference}", ROUTE_ACCESS_READ, ROUTE_BODY_JSON,
     ERR_CTX_HF, begin_info, NULL, finish_paths_info},
    {ROUTE_GET_HEAD, "/api/models/{name}", ROUTE_ACCESS_READ, ROUTE_BODY_NONE, ERR_CTX_HF, NULL,
     NULL, finish_info},
    {0, "/api/{*}", ROUTE_ACCESS_UNSET, ROUTE_BODY_UNSET, ERR_CTX_ANY, NULL, NULL, NULL},
    {0, "/v2/{*}", ROUTE_ACCESS_UNSET, ROUTE_BODY_UNSET, ERR_CTX_ANY, NULL, NULL, NULL},
    {0, "/ui/{*}", ROUTE_ACCESS_UNSET, ROUTE_BODY_UNSET, ERR_CTX_ANY, NULL, NULL, NULL},
    {0, "/metrics/{*}", ROUTE_ACCESS_UNSET, ROUTE_BODY_UNSET, ERR_CTX_ANY, NULL, NULL, NULL},
    {0, "/healthz/{*}", ROUTE_ACCESS_UNSET, ROUTE_BODY_UNSET, ERR_CTX_ANY, NULL, NULL, NULL},
    {0, "/readyz/{*}", ROUTE_ACCESS_UNSET, ROUTE_BODY_UNSET, ERR_CTX_ANY, NULL, NULL, NULL},
    {0, "/datasets/{*}", ROUTE_ACCESS_UNSET, ROUTE_BODY_UNSET, ERR_CTX_ANY, NULL, NULL, NULL},
    {0, "/spaces/{*}", ROUTE_ACCESS_UNSET, ROUTE_BODY_UNSET, ERR_CTX_ANY, NULL, NULL, NULL},
    {ROUTE_GET_HEAD, "/{name}/resolve/{reference}/{path*}", ROUTE_ACCESS_READ, ROUTE_BODY_NONE,
     ERR_CTX_HF, begin_resolve, NULL, finish_resolve},
};

const route_table mlreg_server__hf_routes = {hf_rows, sizeof(hf_rows) / sizeof(hf_rows[0])};
