/* manifest.c: parsing and validation of manifests, releases and eval reports
 * (pure functions, no I/O; see include/mlreg/manifest.h).
 *
 * Everything here runs on bytes from the network, so every field is checked
 * for type as well as value, duplicate JSON keys are refused (two parsers
 * could otherwise disagree on which "layers" a signed manifest has), and each
 * message names the field so a client can fix what it sent. */
#include "mlreg/manifest.h"

#include "mlreg/chunk_index.h"
#include "mlreg/common.h"
#include "mlreg/names.h"
#include "mlreg/oci.h"
#include "mlreg/text.h"
#include "mlreg/time.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const known_types[] = {MLREG_MT_OCI_MANIFEST, MLREG_MT_OCI_INDEX,
                                          MLREG_MT_DOCKER_MANIFEST, MLREG_MT_DOCKER_LIST};

/* Maps a media type (without parameters, any case) to our constant, or NULL. */
static const char *known_type(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(known_types) / sizeof(known_types[0]); i++) {
        if (strlen(known_types[i]) == len && strncasecmp(known_types[i], s, len) == 0)
            return known_types[i];
    }
    return NULL;
}

/* Content-Type values may carry parameters ("; charset=utf-8") and spaces;
 * only the bare type decides; it is returned as a start and a length. */
static void bare_media_type(const char **start, size_t *len, const char *ct)
{
    const char *end;

    while (*ct == ' ' || *ct == '\t')
        ct++;
    end = ct + strcspn(ct, ";");
    while (end > ct && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *start = ct;
    *len = (size_t)(end - ct);
}

/* Checks that @p v, when present, is an object whose values are strings. */
static int check_annotations(json_t **out, json_t *v, const char *field)
{
    const char *key;
    json_t *val;

    *out = NULL;
    if (v == NULL) return 0;
    if (!json_is_object(v)) return mlreg_error_set(MLREG_EINVALID, "%s must be an object", field);
    json_object_foreach(v, key, val)
    {
        if (!json_is_string(val))
            return mlreg_error_set(MLREG_EINVALID, "%s['%s'] must be a string", field, key);
    }
    *out = v;
    return 0;
}

static int optional_string(const char **out, json_t *obj, const char *key, const char *field)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL) return 0;
    if (!json_is_string(v))
        return mlreg_error_set(MLREG_EINVALID, "%s.%s must be a string", field, key);
    *out = json_string_value(v);
    return 0;
}

/* Validates one descriptor; @p field names it in messages ("layers[2]"). */
static int parse_descriptor(mlreg_descriptor *out, json_t *v, const char *field)
{
    int error = 0;
    json_t *mt, *dg, *sz;
    char sub[96];

    memset(out, 0, sizeof(*out));
    if (!json_is_object(v)) return mlreg_error_set(MLREG_EINVALID, "%s must be an object", field);

    mt = json_object_get(v, "mediaType");
    if (!json_is_string(mt) || json_string_length(mt) == 0)
        return mlreg_error_set(MLREG_EINVALID, "%s.mediaType must be a non-empty string", field);
    out->media_type = json_string_value(mt);

    dg = json_object_get(v, "digest");
    if (!json_is_string(dg))
        return mlreg_error_set(MLREG_EINVALID, "%s.digest must be a string", field);
    out->digest_str = json_string_value(dg);
    if (mlreg_digest_parse(&out->digest, out->digest_str) < 0)
        return mlreg_error_set(MLREG_EINVALID, "%s.digest is not a valid sha256 digest: '%.80s'",
                               field, out->digest_str);

    sz = json_object_get(v, "size");
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return mlreg_error_set(MLREG_EINVALID, "%s.size must be a non-negative integer", field);
    out->size = (uint64_t)json_integer_value(sz);

    if ((error = optional_string(&out->artifact_type, v, "artifactType", field)) < 0) return error;
    snprintf(sub, sizeof(sub), "%s.annotations", field);
    return check_annotations(&out->annotations, json_object_get(v, "annotations"), sub);
}

/* Works out the effective media type from the Content-Type and the body. */
static int resolve_media_type(const char **out, const char *content_type, json_t *root)
{
    const char *ct = NULL, *body_type = NULL, *bare;
    size_t bare_len = 0;
    json_t *mt = json_object_get(root, "mediaType");

    if (mt != NULL) {
        if (!json_is_string(mt))
            return mlreg_error_set(MLREG_EINVALID, "mediaType must be a string");
        body_type = known_type(json_string_value(mt), json_string_length(mt));
        if (body_type == NULL)
            return mlreg_error_set(MLREG_EINVALID,
                                   "mediaType '%.100s' is not a supported manifest type",
                                   json_string_value(mt));
    }
    if (content_type != NULL) {
        bare_media_type(&bare, &bare_len, content_type);
        if (bare_len > 0) {
            ct = known_type(bare, bare_len);
            if (ct == NULL)
                return mlreg_error_set(MLREG_EINVALID,
                                       "content type '%.*s' is not a supported manifest type",
                                       (int)(bare_len > 100 ? 100 : bare_len), bare);
        }
    }
    if (ct != NULL && body_type != NULL && ct != body_type)
        return mlreg_error_set(MLREG_EINVALID, "mediaType '%s' contradicts content type '%s'",
                               body_type, ct);
    if (ct == NULL && body_type == NULL)
        return mlreg_error_set(MLREG_EINVALID, "mediaType missing and no content type given");
    *out = ct != NULL ? ct : body_type;
    return 0;
}

static int parse_descriptor_array(mlreg_manifest *m, json_t *arr, const char *field)
{
    size_t i;
    int error = 0;
    char sub[64];

    if (!json_is_array(arr)) return mlreg_error_set(MLREG_EINVALID, "%s must be an array", field);
    m->nlayers = json_array_size(arr);
    if (m->nlayers == 0) return 0;
    m->layers = calloc(m->nlayers, sizeof(*m->layers));
    if (m->layers == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory parsing %s", field);
    for (i = 0; i < m->nlayers; i++) {
        snprintf(sub, sizeof(sub), "%s[%zu]", field, i);
        if ((error = parse_descriptor(&m->layers[i], json_array_get(arr, i), sub)) < 0)
            return error;
    }
    return 0;
}

int mlreg_manifest_parse(mlreg_manifest **out, const char *content_type, const char *body,
                         size_t len)
{
    int error = 0;
    mlreg_manifest *m = NULL;
    json_error_t jerr;
    json_t *sv, *subject;

    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory parsing manifest");
        goto done;
    }
    m->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (m->root == NULL) {
        error = mlreg_error_set(MLREG_EINVALID, "manifest is not valid JSON: %s (line %d)",
                                jerr.text, jerr.line);
        goto done;
    }
    if (!json_is_object(m->root)) {
        error = mlreg_error_set(MLREG_EINVALID, "manifest must be a JSON object");
        goto done;
    }
    sv = json_object_get(m->root, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        error = mlreg_error_set(MLREG_EINVALID, "schemaVersion must be 2");
        goto done;
    }
    if ((error = resolve_media_type(&m->media_type, content_type, m->root)) < 0) goto done;

    if (strcmp(m->media_type, MLREG_MT_OCI_INDEX) == 0 ||
        strcmp(m->media_type, MLREG_MT_DOCKER_LIST) == 0) {
        m->kind = MLREG_MANIFEST_INDEX;
        /* An index that also carries image fields is ambiguous (CVE-2021-41190). */
        if (json_object_get(m->root, "config") != NULL ||
            json_object_get(m->root, "layers") != NULL) {
            error = mlreg_error_set(MLREG_EINVALID, "an index must not have config or layers");
            goto done;
        }
        if ((error =
                 parse_descriptor_array(m, json_object_get(m->root, "manifests"), "manifests")) < 0)
            goto done;
    } else {
        m->kind = MLREG_MANIFEST_IMAGE;
        if (json_object_get(m->root, "manifests") != NULL) {
            error = mlreg_error_set(MLREG_EINVALID, "an image manifest must not have manifests");
            goto done;
        }
        if (json_object_get(m->root, "config") == NULL) {
            error = mlreg_error_set(MLREG_EINVALID, "config is missing");
            goto done;
        }
        if ((error = parse_descriptor(&m->config, json_object_get(m->root, "config"), "config")) <
            0)
            goto done;
        m->has_config = 1;
        if ((error = parse_descriptor_array(m, json_object_get(m->root, "layers"), "layers")) < 0)
            goto done;
    }

    if ((error = optional_string(&m->artifact_type, m->root, "artifactType", "manifest")) < 0)
        goto done;
    subject = json_object_get(m->root, "subject");
    if (subject != NULL) {
        if ((error = parse_descriptor(&m->subject, subject, "subject")) < 0) goto done;
        m->has_subject = 1;
    }
    if ((error = check_annotations(&m->annotations, json_object_get(m->root, "annotations"),
                                   "annotations")) < 0)
        goto done;

    *out = m;
    m = NULL;

done:
    mlreg_manifest_free(m);
    return error;
}

void mlreg_manifest_free(mlreg_manifest *m)
{
    if (m == NULL) return;
    free(m->layers);
    json_decref(m->root);
    free(m);
}

int mlreg_manifest_is_release(const mlreg_manifest *m)
{
    return m->artifact_type != NULL && strcmp(m->artifact_type, MLREG_ARTIFACT_RELEASE) == 0;
}

const char *mlreg_descriptor_annotation(const mlreg_descriptor *d, const char *key)
{
    return d->annotations ? json_string_value(json_object_get(d->annotations, key)) : NULL;
}

const char *mlreg_release_layer_kind(const mlreg_descriptor *layer)
{
    return mlreg_descriptor_annotation(layer, MLREG_ANN_KIND);
}

/* ---- releases ------------------------------------------------------------ */

/* Any kind of the grammar (mlreg_kind_valid()): the well-known ones keep
 * their media types, every other gets the generic one, so releases pushed
 * before kinds were open stay valid unchanged. */
static int is_known_kind(const char *kind)
{
    return mlreg_kind_valid(kind);
}

/* The layer media type a kind must have. */
static void kind_media_type(char *buf, size_t cap, const char *kind)
{
    if (strcmp(kind, "eval-report") == 0)
        snprintf(buf, cap, "%s", MLREG_MT_EVAL_REPORT);
    else if (strcmp(kind, MLREG_KIND_CHUNK_INDEX) == 0)
        snprintf(buf, cap, "%s", MLREG_MT_CHUNK_INDEX);
    else
        snprintf(buf, cap, "%s%s.v1", MLREG_MT_LAYER_PREFIX, kind);
}

/* 1 when @p s breaks the text rule (text.h): a C0 control, DEL, a C1
 * control in its UTF-8 form (U+0080..U+009F is C2 80..C2 9F; xterm, for one,
 * takes U+009B as CSI) or bytes that are not UTF-8. Strings checked here end
 * up printed by `mlreg show`. */
static int has_control_char(const char *s)
{
    return mlreg_text_span(s, strlen(s)) != strlen(s);
}

static int check_title(const char *title, size_t i)
{
    if (title == NULL || title[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "layers[%zu]: annotation %s missing or empty", i,
                               MLREG_ANN_TITLE);
    if (mlreg_title_validate(title) < 0)
        return mlreg_error_set(MLREG_EINVALID, "layers[%zu]: %s", i, mlreg_error_last());
    return 0;
}

static int is_chunk_index(const mlreg_descriptor *l)
{
    const char *kind = mlreg_release_layer_kind(l);

    return kind != NULL && strcmp(kind, MLREG_KIND_CHUNK_INDEX) == 0;
}

/* The layer of @p m whose digest is @p digest_str, or SIZE_MAX. */
static size_t layer_by_digest(const mlreg_manifest *m, const char *digest_str)
{
    size_t i;

    for (i = 0; i < m->nlayers; i++)
        if (strcmp(m->layers[i].digest_str, digest_str) == 0) return i;
    return SIZE_MAX;
}

/* Chunk indexes (chunk_index.h) pair with their files both ways: a file's
 * MLREG_ANN_CHUNK_INDEX names an index layer of this manifest whose
 * MLREG_ANN_CHUNKS_OF names the file back, and an index layer is the index
 * of exactly such a file, titled "<file title>.chunks". A pull then never
 * meets an index it cannot place, nor a file pointing at nothing. The index's
 * content is checked by the client that reads it. */
static int check_chunk_pair(const mlreg_manifest *m, size_t i)
{
    const mlreg_descriptor *l = &m->layers[i], *other;
    const char *want, *title, *other_title;
    size_t j, tlen;

    if (!is_chunk_index(l)) {
        want = mlreg_descriptor_annotation(l, MLREG_ANN_CHUNK_INDEX);
        if (want == NULL) return 0;
        j = layer_by_digest(m, want);
        if (j == SIZE_MAX || !is_chunk_index(&m->layers[j]))
            return mlreg_error_set(MLREG_EINVALID,
                                   "layers[%zu]: annotation %s names no %s layer of this release",
                                   i, MLREG_ANN_CHUNK_INDEX, MLREG_KIND_CHUNK_INDEX);
        return 0;
    }
    if (l->size > MLREG_CHUNK_INDEX_MAX_BYTES)
        return mlreg_error_set(MLREG_EINVALID,
                               "layers[%zu]: a chunk index of %" PRIu64
                               " bytes is over the limit of %zu",
                               i, l->size, MLREG_CHUNK_INDEX_MAX_BYTES);
    want = mlreg_descriptor_annotation(l, MLREG_ANN_CHUNKS_OF);
    j = want != NULL ? layer_by_digest(m, want) : SIZE_MAX;
    if (j == SIZE_MAX || is_chunk_index(&m->layers[j]))
        return mlreg_error_set(MLREG_EINVALID,
                               "layers[%zu]: a %s layer needs annotation %s naming a file of this "
                               "release",
                               i, MLREG_KIND_CHUNK_INDEX, MLREG_ANN_CHUNKS_OF);
    other = &m->layers[j];
    other_title = mlreg_descriptor_annotation(other, MLREG_ANN_CHUNK_INDEX);
    if (other_title == NULL || strcmp(other_title, l->digest_str) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "layers[%zu]: the file it indexes (layers[%zu]) does not name it "
                               "in annotation %s",
                               i, j, MLREG_ANN_CHUNK_INDEX);
    title = mlreg_descriptor_annotation(l, MLREG_ANN_TITLE);
    other_title = mlreg_descriptor_annotation(other, MLREG_ANN_TITLE);
    tlen = other_title != NULL ? strlen(other_title) : 0;
    if (title == NULL || other_title == NULL || strncmp(title, other_title, tlen) != 0 ||
        strcmp(title + tlen, MLREG_CHUNK_TITLE_SUFFIX) != 0)
        return mlreg_error_set(MLREG_EINVALID, "layers[%zu]: a %s layer's title must be '%.64s%s'",
                               i, MLREG_KIND_CHUNK_INDEX, other_title ? other_title : "",
                               MLREG_CHUNK_TITLE_SUFFIX);
    return 0;
}

static int check_layers(mlreg_release_info *info, const mlreg_manifest *m)
{
    int error = 0;
    const char **titles = NULL;
    size_t i;
    char want[128];

    if (m->nlayers > 0) {
        titles = malloc(m->nlayers * sizeof(*titles));
        if (titles == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory checking release layers");
            goto done;
        }
    }
    for (i = 0; i < m->nlayers; i++) {
        const mlreg_descriptor *l = &m->layers[i];
        const char *kind = mlreg_release_layer_kind(l);

        if (kind == NULL) {
            error = mlreg_error_set(MLREG_EINVALID, "layers[%zu]: annotation %s missing", i,
                                    MLREG_ANN_KIND);
            goto done;
        }
        if (!is_known_kind(kind)) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "layers[%zu]: %s '%.64s' is not a kind ([a-z][a-z0-9-]{0,31})",
                                    i, MLREG_ANN_KIND, kind);
            goto done;
        }
        kind_media_type(want, sizeof(want), kind);
        if (strcmp(l->media_type, want) != 0) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "layers[%zu]: mediaType '%.100s' does not match %s '%s' "
                                    "(expected '%s')",
                                    i, l->media_type, MLREG_ANN_KIND, kind, want);
            goto done;
        }
        if (strcmp(kind, "eval-report") == 0) {
            if (info->has_eval_report) {
                error = mlreg_error_set(MLREG_EINVALID,
                                        "layers[%zu]: a release has at most one eval-report "
                                        "(layers[%zu] is one already)",
                                        i, info->eval_report_index);
                goto done;
            }
            info->has_eval_report = 1;
            info->eval_report_index = i;
        }
        titles[i] = mlreg_descriptor_annotation(l, MLREG_ANN_TITLE);
        if ((error = check_title(titles[i], i)) < 0) goto done;
        if ((error = check_chunk_pair(m, i)) < 0) goto done;
    }
    /* Unique ignoring case, no directory spelt two ways, no file where
     * another title needs a directory: pull writes them all into one. */
    if ((error = mlreg_titles_check(titles, m->nlayers)) < 0)
        error = mlreg_error_set(MLREG_EINVALID, "%s: %s", MLREG_ANN_TITLE, mlreg_error_last());

done:
    free(titles);
    return error;
}

static int check_git_sha(const char *sha)
{
    size_t n = strlen(sha), i;

    if (n < 7 || n > 64)
        return mlreg_error_set(MLREG_EINVALID, "annotation %s must be 7 to 64 lowercase hex digits",
                               MLREG_ANN_GIT_SHA);
    for (i = 0; i < n; i++) {
        if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f')))
            return mlreg_error_set(MLREG_EINVALID,
                                   "annotation %s must be 7 to 64 lowercase hex digits",
                                   MLREG_ANN_GIT_SHA);
    }
    return 0;
}

int mlreg_release_validate(mlreg_release_info *out, const mlreg_manifest *m, const char *repo)
{
    int error = 0;
    mlreg_release_info info;
    json_t *ann = m->annotations;

    memset(&info, 0, sizeof(info));
    if (m->kind != MLREG_MANIFEST_IMAGE || strcmp(m->media_type, MLREG_MT_OCI_MANIFEST) != 0)
        return mlreg_error_set(MLREG_EINVALID, "a release must be an OCI image manifest (%s)",
                               MLREG_MT_OCI_MANIFEST);
    if (strcmp(m->config.media_type, MLREG_MT_OCI_EMPTY) != 0 ||
        strcmp(m->config.digest_str, MLREG_EMPTY_CONFIG_DIGEST) != 0 || m->config.size != 2)
        return mlreg_error_set(MLREG_EINVALID,
                               "config of a release must be the empty config (%s, %s, size 2)",
                               MLREG_MT_OCI_EMPTY, MLREG_EMPTY_CONFIG_DIGEST);
    if ((error = check_layers(&info, m)) < 0) return error;

    info.model = ann ? json_string_value(json_object_get(ann, MLREG_ANN_MODEL)) : NULL;
    info.version = ann ? json_string_value(json_object_get(ann, MLREG_ANN_VERSION)) : NULL;
    info.git_sha = ann ? json_string_value(json_object_get(ann, MLREG_ANN_GIT_SHA)) : NULL;
    info.created = ann ? json_string_value(json_object_get(ann, MLREG_ANN_CREATED)) : NULL;

    if (info.model == NULL)
        return mlreg_error_set(MLREG_EINVALID, "annotation %s missing", MLREG_ANN_MODEL);
    if (strcmp(info.model, repo) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "annotation %s '%.100s' does not match repository '%s'",
                               MLREG_ANN_MODEL, info.model, repo);
    if (info.version == NULL)
        return mlreg_error_set(MLREG_EINVALID, "annotation %s missing", MLREG_ANN_VERSION);
    if (mlreg_tag_validate(info.version) < 0)
        return mlreg_error_set(MLREG_EINVALID, "annotation %s '%.130s' is not a valid tag",
                               MLREG_ANN_VERSION, info.version);
    if (info.git_sha != NULL && (error = check_git_sha(info.git_sha)) < 0) return error;
    {
        const char *dirty =
            ann ? json_string_value(json_object_get(ann, MLREG_ANN_GIT_DIRTY)) : NULL;
        if (dirty != NULL && strcmp(dirty, "true") != 0 && strcmp(dirty, "false") != 0)
            return mlreg_error_set(MLREG_EINVALID, "annotation %s must be \"true\" or \"false\"",
                                   MLREG_ANN_GIT_DIRTY);
        info.git_dirty = dirty != NULL && strcmp(dirty, "true") == 0;
    }
    if (info.created == NULL)
        return mlreg_error_set(MLREG_EINVALID, "annotation %s missing", MLREG_ANN_CREATED);
    if (mlreg_time_parse_flags(&info.created_sec, &info.created_nsec, info.created,
                               MLREG_TIME_AS_PUSHED) < 0)
        return mlreg_error_set(MLREG_EINVALID, "annotation %s '%.64s' is not RFC 3339",
                               MLREG_ANN_CREATED, info.created);
    *out = info;
    return 0;
}

/* ---- eval reports -------------------------------------------------------- */

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    default: return "a number";
    }
}

/* What flattening one report shares: the metrics found, the values kept
 * but not indexed, and the layout (lm-evaluation-harness names its task
 * members "metric,filter"). */
typedef struct {
    json_t *metrics;
    json_t *intervals;
    json_t *skipped;
    size_t nskipped;
    int lm_eval;
} flatten_ctx;

/* The metric name of lm-evaluation-harness member @p key of a task, into
 * @p buf: "acc_norm,none" -> "acc_norm", "exact_match,strict-match" ->
 * "exact_match.strict-match"; other keys unchanged. Returns @p buf or
 * @p key. */
static const char *lm_eval_key(char *buf, size_t cap, const char *key)
{
    const char *comma = strrchr(key, ',');

    if (comma == NULL || comma == key || (size_t)(comma - key) >= cap) return key;
    if (strcmp(comma + 1, "none") == 0 || comma[1] == '\0') {
        snprintf(buf, cap, "%.*s", (int)(comma - key), key);
    } else if ((size_t)snprintf(buf, cap, "%.*s.%s", (int)(comma - key), key, comma + 1) >= cap) {
        return key;
    }
    return buf;
}

/* Lists a value kept in the report but not indexed as a metric, described
 * as @p what ("an array"). */
static int skip_value(flatten_ctx *c, const char *name, const char *what)
{
    c->nskipped++;
    if (json_array_size(c->skipped) >= MLREG_EVAL_SKIPPED_LISTED) return 0;
    if (json_array_append_new(c->skipped, json_pack("{s:s, s:s}", "name", name, "type", what)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing '%.200s'", name);
    return 0;
}

/* Whether object @p obj is a metric with a confidence interval: it has a
 * "value" and a "ci_low" or "ci_high" member. Returns 0 when it is not (it
 * flattens as any object), 1 when it is a well-formed one ({"value": v,
 * "ci_low": l, "ci_high": h}, nothing else, numbers with l <= v <= h; into
 * *v, *l, *h), -1 when it is malformed: *why then says how, and the
 * object is kept in the report but is not a metric (a warning, never a
 * refusal: a stored report must parse again when the index is rebuilt). */
static int interval_of(const json_t *obj, double *v, double *l, double *h, const char **why)
{
    json_t *jv = json_object_get(obj, "value"), *jl = json_object_get(obj, "ci_low"),
           *jh = json_object_get(obj, "ci_high");

    if (jv == NULL || (jl == NULL && jh == NULL)) return 0;
    *why = "an interval object without both ci_low and ci_high";
    if (jl == NULL || jh == NULL) return -1;
    *why = "an interval object with members other than value, ci_low and ci_high";
    if (json_object_size(obj) != 3) return -1;
    *why = "an interval object whose value, ci_low or ci_high is not a number";
    if (!json_is_number(jv) || !json_is_number(jl) || !json_is_number(jh)) return -1;
    *v = json_number_value(jv);
    *l = json_number_value(jl);
    *h = json_number_value(jh);
    *why = "an interval object whose numbers are not finite";
    if (!isfinite(*v) || !isfinite(*l) || !isfinite(*h)) return -1;
    *why = "an interval object without ci_low <= value <= ci_high";
    if (!(*l <= *v && *v <= *h)) return -1;
    return 1;
}

/* Flattens @p obj into c->metrics with names "<prefix>.<key>" (or "<key>" at
 * the top; @p depth counts the levels above). The trap is amplification:
 * every leaf repeats its whole prefix, so a 1 MiB report with one long key
 * over many leaves would flatten to gigabytes. Each name (prefixes
 * included, which also bounds the recursion and the names alive along it)
 * is capped at MLREG_MAX_METRIC_NAME_BYTES and the metric count at
 * MLREG_MAX_METRICS, before anything is allocated. @p skip_top names a
 * top-level member that is not a metric ("dataset"), or NULL. */
static int flatten_metrics(flatten_ctx *c, json_t *obj, const char *prefix, int depth,
                           const char *skip_top)
{
    int error = 0;
    const char *member, *key;
    json_t *val;
    char *name = NULL, lmbuf[MLREG_MAX_METRIC_NAME_BYTES + 2];

    /* json_object_foreach() finds the next member by @c member: never
     * reassign it */
    json_object_foreach(obj, member, val)
    {
        size_t n;
        double d, lo = 0, hi = 0;
        int has_ci = 0;

        free(name);
        name = NULL;
        key = member;
        if (depth == 0 && skip_top != NULL && strcmp(key, skip_top) == 0) continue;
        if (c->lm_eval && depth == 1) {
            /* a task's display name, not a result */
            if (strcmp(key, "alias") == 0 && json_is_string(val)) continue;
            key = lm_eval_key(lmbuf, sizeof(lmbuf), key);
        }
        if (key[0] == '\0') {
            error = mlreg_error_set(MLREG_EINVALID, "eval report: metric with an empty name%s%s",
                                    prefix ? " under " : "", prefix ? prefix : "");
            goto done;
        }
        if (has_control_char(key)) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "eval report: a metric name%s%s contains a control character",
                                    prefix ? " under " : "", prefix ? prefix : "");
            goto done;
        }
        n = (prefix ? strlen(prefix) + 1 : 0) + strlen(key) + 1;
        if (n - 1 > MLREG_MAX_METRIC_NAME_BYTES) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "eval report: metric name '%.64s%s%.64s...' is longer than "
                                    "%d bytes",
                                    prefix ? prefix : "", prefix ? "." : "", key,
                                    MLREG_MAX_METRIC_NAME_BYTES);
            goto done;
        }
        name = malloc(n);
        if (name == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory flattening metrics");
            goto done;
        }
        if (prefix) {
            size_t pl = strlen(prefix);
            memcpy(name, prefix, pl);
            name[pl] = '.';
            memcpy(name + pl + 1, key, n - pl - 1);
        } else {
            memcpy(name, key, n);
        }

        if (json_is_object(val)) {
            const char *why = NULL;
            int iv = interval_of(val, &d, &lo, &hi, &why);
            if (iv < 0) {
                if ((error = skip_value(c, name, why)) < 0) goto done;
                continue;
            }
            if (iv == 0) {
                if ((error = flatten_metrics(c, val, name, depth + 1, NULL)) < 0) goto done;
                continue;
            }
            has_ci = 1;
        } else if (!json_is_number(val)) {
            if ((error = skip_value(c, name, json_type_name(val))) < 0) goto done;
            continue;
        } else {
            d = json_number_value(val);
        }
        if (!isfinite(d)) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "eval report: metric '%.200s' must be a finite number", name);
            goto done;
        }
        if (json_object_size(c->metrics) >= MLREG_MAX_METRICS) {
            error = mlreg_error_set(MLREG_EINVALID, "eval report: more than %d metrics",
                                    MLREG_MAX_METRICS);
            goto done;
        }
        if (json_object_get(c->metrics, name) != NULL) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "eval report: metric '%.200s' appears twice after flattening",
                                    name);
            goto done;
        }
        if (json_object_set_new(c->metrics, name, json_real(d)) < 0 ||
            (has_ci &&
             json_object_set_new(c->intervals, name,
                                 json_pack("{s:f, s:f}", "ci_low", lo, "ci_high", hi)) < 0)) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory storing metric '%.200s'", name);
            goto done;
        }
    }

done:
    free(name);
    return error;
}

/* 1 when @p v is lm-evaluation-harness "results": an object of task objects. */
static int is_lm_eval_results(json_t *v)
{
    const char *key;
    json_t *task;

    if (!json_is_object(v) || json_object_size(v) == 0) return 0;
    json_object_foreach(v, key, task)
    {
        if (!json_is_object(task)) return 0;
    }
    return 1;
}

const char *mlreg_eval_format_name(mlreg_eval_format f)
{
    switch (f) {
    case MLREG_EVAL_METRICS: return "metrics";
    case MLREG_EVAL_FLAT: return "flat";
    case MLREG_EVAL_LM_EVAL: return "lm-evaluation-harness";
    }
    return "unknown";
}

/* The optional top-level digest member @p field of a report into *out
 * (malloc'd, NULL when absent): "sha256:" and 64 lowercase hex digits, the
 * form the registry writes digests in, so two reports naming the same data
 * compare equal as strings. */
static int report_digest(char **out, const json_t *root, const char *field)
{
    const json_t *v = json_object_get(root, field);
    const char *s = json_string_value(v);
    mlreg_digest d;
    char canon[MLREG_DIGEST_STRLEN + 1];

    *out = NULL;
    if (v == NULL) return 0;
    if (s == NULL || strlen(s) != json_string_length(v) || mlreg_digest_parse(&d, s) < 0) {
        mlreg_error_clear();
        return mlreg_error_set(MLREG_EINVALID,
                               "eval report: '%s' must be a string \"sha256:<64 lowercase hex>\"",
                               field);
    }
    mlreg_digest_format(canon, &d);
    if (strcmp(canon, s) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "eval report: '%s' must be a string \"sha256:<64 lowercase hex>\"",
                               field);
    if ((*out = strdup(s)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory parsing eval report");
    return 0;
}

int mlreg_eval_report_parse(mlreg_eval_report **out, const char *body, size_t len)
{
    int error = 0;
    json_t *root = NULL, *metrics, *dataset = NULL, *results;
    json_error_t jerr;
    mlreg_eval_report *r = NULL;
    flatten_ctx c = {0};
    mlreg_eval_format format;

    if (len > MLREG_MAX_EVAL_REPORT_BYTES) {
        error = mlreg_error_set(MLREG_ETOOBIG, "eval report is %zu bytes, at most %u allowed", len,
                                MLREG_MAX_EVAL_REPORT_BYTES);
        goto done;
    }
    /* Integers as reals: a metric too large for int64 is still a number. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (root == NULL) {
        error = mlreg_error_set(MLREG_EINVALID, "eval report is not valid JSON: %s (line %d)",
                                jerr.text, jerr.line);
        goto done;
    }
    if (!json_is_object(root)) {
        error = mlreg_error_set(MLREG_EINVALID, "eval report must be a JSON object");
        goto done;
    }
    metrics = json_object_get(root, "metrics");
    results = json_object_get(root, "results");
    if (metrics != NULL) {
        if (!json_is_object(metrics)) {
            error = mlreg_error_set(MLREG_EINVALID, "eval report: 'metrics' must be an object");
            goto done;
        }
        format = MLREG_EVAL_METRICS;
    } else if (is_lm_eval_results(results)) {
        format = MLREG_EVAL_LM_EVAL;
        metrics = results;
        c.lm_eval = 1;
    } else {
        format = MLREG_EVAL_FLAT;
        metrics = root;
    }
    if (format != MLREG_EVAL_LM_EVAL) dataset = json_object_get(root, "dataset");
    if (dataset != NULL && !json_is_string(dataset)) {
        error = mlreg_error_set(MLREG_EINVALID, "eval report: 'dataset' must be a string");
        goto done;
    }
    if (dataset != NULL && has_control_char(json_string_value(dataset))) {
        error =
            mlreg_error_set(MLREG_EINVALID, "eval report: 'dataset' contains a control character");
        goto done;
    }

    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->metrics = json_object()) == NULL ||
        (r->intervals = json_object()) == NULL || (r->skipped = json_array()) == NULL ||
        (dataset && (r->dataset = strdup(json_string_value(dataset))) == NULL)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory parsing eval report");
        goto done;
    }
    r->format = format;
    if ((error = report_digest(&r->dataset_digest, root, "dataset_digest")) < 0 ||
        (error = report_digest(&r->eval_code_digest, root, "eval_code_digest")) < 0)
        goto done;
    c.metrics = r->metrics;
    c.intervals = r->intervals;
    c.skipped = r->skipped;
    if ((error = flatten_metrics(&c, metrics, NULL, 0,
                                 format == MLREG_EVAL_FLAT ? "dataset" : NULL)) < 0)
        goto done;
    r->nskipped = c.nskipped;
    /* `{"metrics":{}}` says "no metrics" on purpose; anything else without
     * a single number is a report nobody could gate on. */
    if (json_object_size(r->metrics) == 0 &&
        !(format == MLREG_EVAL_METRICS && json_object_size(metrics) == 0)) {
        error = mlreg_error_set(
            MLREG_EINVALID, "eval report (%s layout) has no metric: no value is a number%s",
            mlreg_eval_format_name(format),
            format == MLREG_EVAL_FLAT ? " (expected {\"metrics\":{...}}, an object of numbers or "
                                        "lm-evaluation-harness results)"
                                      : "");
        goto done;
    }
    *out = r;
    r = NULL;

done:
    mlreg_eval_report_free(r);
    json_decref(root);
    return error;
}

void mlreg_eval_report_free(mlreg_eval_report *r)
{
    if (r == NULL) return;
    json_decref(r->metrics);
    json_decref(r->intervals);
    json_decref(r->skipped);
    free(r->dataset_digest);
    free(r->eval_code_digest);
    free(r->dataset);
    free(r);
}
