/**
 * @file retention.h
 * @brief Retention: which releases a garbage collection purges
 *        (docs/lifecycle.md, "Retention"; the rules are the config's
 *        `retention`, conf/README.md).
 *
 * The first rule whose `models` pattern matches a model's name decides for
 * every release of that model; a model no rule matches keeps everything. A
 * release is kept when any of these holds, checked in this order (the
 * first one is its reason):
 *
 * - it is among the newest `keep_last` releases that are not withdrawn (by
 *   created time, then version in natural order): "newest 10";
 * - a stage holds it now: "held by staging";
 * - a stage held it within `held_within` of now: "held by production within 30d";
 * - a stage of `protected_stages` holds it or ever held it: "protected stage production";
 * - it was withdrawn less than `withdrawn_for` ago: "withdrawn 2d ago, kept 7d".
 *
 * Otherwise it is purged. A release purged already is not looked at.
 * The decision (mlreg_retention_decide()) is pure: the facts and "now" in,
 * the verdicts out; mlreg_retention_plan() reads the facts of every release
 * in one read transaction and decides.
 */
#ifndef MLREG_RETENTION_H
#define MLREG_RETENTION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/config.h"
#include "mlreg/registry.h"

/** Longest stage name (the tag grammar's limit). */
#define MLREG_RETENTION_STAGE_MAX 128
/** Room for a verdict's reason. */
#define MLREG_RETENTION_WHY_MAX 320

/** One stage's hold on a release. */
typedef struct {
    char stage[MLREG_RETENTION_STAGE_MAX + 1];
    int now;          /**< the stage holds the release now */
    int64_t until_ns; /**< when not now: the last time the stage held it */
} mlreg_retention_hold;

/** The facts of one release of a model, and the verdict. */
typedef struct {
    const char *version;               /**< borrowed */
    int64_t created_ns;                /**< the release's created time */
    int withdrawn;                     /**< nonzero: withdrawn */
    int64_t withdrawn_ns;              /**< when it was withdrawn */
    const mlreg_retention_hold *holds; /**< every stage that holds or held it (borrowed) */
    size_t nholds;
    /* set by mlreg_retention_decide() */
    int purge;                         /**< 1: purge it; 0: keep it */
    char why[MLREG_RETENTION_WHY_MAX]; /**< the reason, as listed in the file comment */
} mlreg_retention_release;

/**
 * The first of the @p n @p rules whose pattern matches @p model, or NULL.
 */
const mlreg_config_retention *mlreg_retention_rule_for(const mlreg_config_retention *rules,
                                                       size_t n, const char *model);

/**
 * Decides, for each of the @p n releases @p rels of one model (none of
 * them purged already), whether @p rule keeps it at time @p now_ns, and
 * why: sets each one's @c purge and @c why. The order of @p rels does not
 * matter. 0 or MLREG_ENOMEM.
 */
int mlreg_retention_decide(mlreg_retention_release *rels, size_t n,
                           const mlreg_config_retention *rule, int64_t now_ns);

/**
 * The plan of @p rules at @p now_ns (nanoseconds): every release of every
 * model a rule matches, but those purged already, read in one read
 * transaction. *out (caller owns) = {"purge": [ITEM...], "kept": [ITEM...]},
 * ITEM = {"model","version","digest","purge": bool,"why"}, by model name
 * then newest first. No rules: both empty.
 * @return 0, MLREG_EIO (a corrupt record, naming it), MLREG_ENOMEM, or the
 *         store's error.
 */
int mlreg_retention_plan(json_t **out, mlreg_registry *reg, const mlreg_config_retention *rules,
                         size_t nrules, int64_t now_ns);

#endif
