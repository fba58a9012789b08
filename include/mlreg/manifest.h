/**
 * @file manifest.h
 * @brief Parsing and validation of manifests, releases and eval reports.
 *
 * Pure functions over bytes: no I/O, no metadata. The registry (registry.c)
 * calls them on manifest PUT; the CLI may call them to check what it builds.
 *
 * Accepted manifests: OCI image manifest, OCI image index, Docker v2 manifest
 * and Docker manifest list, schemaVersion 2. Every rejection is
 * MLREG_EINVALID with a message that names the offending field.
 *
 * A release is an OCI image manifest with artifactType
 * MLREG_ARTIFACT_RELEASE; mlreg_release_validate() applies its rules:
 *  - config is the empty config (MLREG_MT_OCI_EMPTY, digest of "{}", size 2);
 *  - every layer has media type "application/vnd.mlreg.<kind>.v1" (kind one
 *    of the grammar of mlreg_kind_valid(): the well-known weights, tokenizer,
 *    config, seeds, other, or any other) or MLREG_MT_EVAL_REPORT
 *    (kind eval-report), an org.mlreg.kind annotation that agrees with it, and
 *    an org.opencontainers.image.title that passes mlreg_title_validate() and
 *    is unique by mlreg_title_cmp() (ignoring ASCII case);
 *  - at most one eval-report layer;
 *  - manifest annotations org.mlreg.model (equal to the repository name),
 *    org.mlreg.version (tag grammar), org.mlreg.git-sha (optional, 7-64
 *    lowercase hex), org.mlreg.git-dirty (optional, "true" or "false"),
 *    org.opencontainers.image.created (RFC 3339).
 */
#ifndef MLREG_MANIFEST_H
#define MLREG_MANIFEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/digest.h"
#include "mlreg/names.h"

/** What a manifest lists: blobs (image) or other manifests (index). */
typedef enum {
    MLREG_MANIFEST_IMAGE = 1, /**< OCI image manifest or Docker v2 manifest */
    MLREG_MANIFEST_INDEX = 2  /**< OCI image index or Docker manifest list */
} mlreg_manifest_kind;

/**
 * A validated descriptor. String pointers and @c annotations point into the
 * owning mlreg_manifest's JSON tree and stay valid until mlreg_manifest_free().
 */
typedef struct {
    const char *media_type;    /**< never NULL */
    const char *digest_str;    /**< "sha256:<hex>" as written */
    mlreg_digest digest;       /**< parsed digest_str */
    uint64_t size;             /**< non-negative "size" */
    const char *artifact_type; /**< NULL when absent */
    json_t *annotations;       /**< borrowed object of strings, NULL when absent */
} mlreg_descriptor;

/** A parsed manifest; see mlreg_manifest_parse(). */
typedef struct {
    mlreg_manifest_kind kind;
    /** The effective media type: the body's mediaType, else the Content-Type's. */
    const char *media_type;
    const char *artifact_type; /**< top-level artifactType, NULL when absent */
    int has_config;            /**< 1 for image manifests */
    mlreg_descriptor config;
    /** Image: the layers. Index: the child manifests. */
    mlreg_descriptor *layers;
    size_t nlayers;
    int has_subject;
    mlreg_descriptor subject;
    json_t *annotations; /**< borrowed object of strings, NULL when absent */
    json_t *root;        /**< the whole parsed document (owned) */
} mlreg_manifest;

/**
 * Parses and validates @p len bytes of manifest JSON pushed with
 * @p content_type (NULL or "" when the client sent none; parameters such as
 * "; charset=utf-8" are ignored). The body's mediaType, when present, must
 * equal the content type; an unknown media type is refused. Descriptors need
 * a mediaType, a sha256 digest and a non-negative integer size; annotations
 * must be objects of strings; duplicate JSON keys are refused.
 * On success *out is owned by the caller (mlreg_manifest_free()).
 * @return 0 or MLREG_EINVALID (message set), MLREG_ENOMEM.
 */
int mlreg_manifest_parse(mlreg_manifest **out, const char *content_type, const char *body,
                         size_t len);

/** Frees a parsed manifest; NULL is a no-op. */
void mlreg_manifest_free(mlreg_manifest *m);

/** 1 when @p m declares artifactType MLREG_ARTIFACT_RELEASE, else 0. */
int mlreg_manifest_is_release(const mlreg_manifest *m);

/** The string annotation @p key of a descriptor, or NULL. Borrowed from @p d. */
const char *mlreg_descriptor_annotation(const mlreg_descriptor *d, const char *key);

/** What mlreg_release_validate() extracts; strings borrowed from the manifest. */
typedef struct {
    const char *model;   /**< org.mlreg.model */
    const char *version; /**< org.mlreg.version */
    const char *git_sha; /**< org.mlreg.git-sha, NULL when absent */
    const char *created; /**< org.opencontainers.image.created as pushed */
    int64_t created_sec; /**< created as seconds since the Unix epoch (UTC) */
    int32_t created_nsec;
    int has_eval_report;      /**< 1 when a layer has kind eval-report */
    size_t eval_report_index; /**< its index in m->layers */
    int git_dirty;            /**< 1 when org.mlreg.git-dirty is "true" */
} mlreg_release_info;

/**
 * Applies the release rules (see the file comment) to @p m, which must be a
 * release (mlreg_manifest_is_release()), pushed to repository @p repo.
 * @return 0 (filling *out) or MLREG_EINVALID naming the field.
 */
int mlreg_release_validate(mlreg_release_info *out, const mlreg_manifest *m, const char *repo);

/** The kind of a release layer ("weights", ...), or NULL if it has none. */
const char *mlreg_release_layer_kind(const mlreg_descriptor *layer);

/** Largest eval report (the eval-report layer), in bytes. */
#define MLREG_MAX_EVAL_REPORT_BYTES (1u * 1024 * 1024)

/** Longest flattened metric name ("retrieval.hit_rate") in bytes. */
#define MLREG_MAX_METRIC_NAME_BYTES 255
/** Most metrics one eval report may carry after flattening. */
#define MLREG_MAX_METRICS 10000

/** The layout an eval report was recognised as (docs/eval-report.md). */
typedef enum {
    MLREG_EVAL_METRICS = 1, /**< {"metrics":{...}, "dataset":"..."} */
    MLREG_EVAL_FLAT = 2,    /**< a top-level object of numbers (and nested objects) */
    MLREG_EVAL_LM_EVAL = 3  /**< lm-evaluation-harness output: {"results":{task:{...}}} */
} mlreg_eval_format;

/** Most values a parsed eval report lists in @c skipped (the count goes on). */
#define MLREG_EVAL_SKIPPED_LISTED 50

/** A parsed eval report: flattened metrics and the optional dataset. */
typedef struct {
    /** Object of flattened metric name -> JSON real, in document order. Owned. */
    json_t *metrics;
    /** Object of metric name -> {"ci_low","ci_high"} (reals) for the metrics
     *  given as {"value","ci_low","ci_high"}, in document order. Owned. */
    json_t *intervals;
    /** The top-level "dataset" string (malloc'd), NULL when absent. */
    char *dataset;
    mlreg_eval_format format;
    /** Values kept in the report but not indexed as metrics (strings,
     *  booleans, null, arrays): an array of {"name":flattened name,
     *  "type":"an array"|...}, the first MLREG_EVAL_SKIPPED_LISTED of them,
     *  in document order. Owned. */
    json_t *skipped;
    size_t nskipped; /**< how many there were in all */
    /** The top-level "dataset_digest" ("sha256:<64 lowercase hex>", malloc'd):
     *  the digest of the data set evaluated on; NULL when absent. */
    char *dataset_digest;
    /** The top-level "eval_code_digest" (same form, malloc'd): the digest of
     *  the evaluation code that produced the numbers; NULL when absent. */
    char *eval_code_digest;
} mlreg_eval_report;

/**
 * Parses an eval report: at most MLREG_MAX_EVAL_REPORT_BYTES bytes
 * (else MLREG_ETOOBIG), a JSON object (duplicate keys refused) in one of
 * three layouts, chosen in this order:
 *  - a "metrics" member: must be an object; its leaves are the metrics;
 *  - a "results" member that is an object of objects (lm-evaluation-harness):
 *    each task's members are metrics named "<task>.<metric>", where the
 *    harness's filter suffix ",none" is dropped and any other filter
 *    ",<f>" becomes ".<f>" ("acc_norm,none" -> "hellaswag.acc_norm",
 *    "exact_match,strict-match" -> "gsm8k.exact_match.strict-match"); the
 *    task's "alias" string is ignored, and so is everything outside
 *    "results" (config, versions, n-shot, ...);
 *  - otherwise the object itself is the metrics (a flat report).
 * Nested objects flatten to dotted names ({"retrieval":{"hit_rate":0.9}} ->
 * "retrieval.hit_rate"). Numbers are metrics (integers of any size are read
 * as reals; NaN, Infinity and reals out of range are not JSON and refused).
 * An object with a "value" and a "ci_low" or "ci_high" member is one metric
 * with a confidence interval: exactly {"value": v, "ci_low": l, "ci_high": h},
 * numbers with l <= v <= h; its value v is the metric and [l, h] goes to
 * @c intervals. A malformed one (a member missing or extra, not a number,
 * the order broken) is not a metric: it is listed in @c skipped.
 * Strings, booleans, null and arrays are not metrics: they are listed in
 * @c skipped, never refused. An optional top-level "dataset" must be a
 * string without control characters (in the metrics and flat layouts).
 * Optional top-level "dataset_digest" and "eval_code_digest" (every
 * layout) must be strings "sha256:" followed by 64 lowercase hex digits
 * (MLREG_EINVALID naming the member otherwise); in the flat layout they
 * are not metrics and are listed in @c skipped like any other string.
 * Refused (MLREG_EINVALID naming the metric): not JSON, not an object, no
 * metric at all (except the explicit `{"metrics":{}}`, which says so on
 * purpose), empty keys, names that collide after flattening, flattened names
 * (or nested prefixes) longer than MLREG_MAX_METRIC_NAME_BYTES, more than
 * MLREG_MAX_METRICS metrics, and names with a control character (C0, DEL,
 * or C1 as UTF-8: `mlreg show` prints them).
 * The same function runs in `mlreg push` before any upload and in the
 * registry on manifest PUT. On success *out is owned by the caller
 * (mlreg_eval_report_free()).
 */
int mlreg_eval_report_parse(mlreg_eval_report **out, const char *body, size_t len);

/** The name of a layout ("metrics", "flat", "lm-evaluation-harness"). */
const char *mlreg_eval_format_name(mlreg_eval_format f);

/** Frees a parsed eval report; NULL is a no-op. */
void mlreg_eval_report_free(mlreg_eval_report *r);

#endif
