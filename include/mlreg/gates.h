/**
 * @file gates.h
 * @brief Stages and promotion gates: the `stages`, `gates` and `models` keys
 *        of the config, parsed strictly, and the evaluation of a rule list
 *        against a candidate release, the baseline it would replace, and its
 *        signatures, stage history and approvals.
 *
 * The wire contract is docs/promotions-api.md ("Config", "Promotion").
 * Pure functions: no I/O, no metadata. registry/promotions.c gathers the
 * inputs inside its write transaction and calls mlreg_gates_evaluate().
 *
 * Rules (exact keys):
 *   {"metric":M,"min":X}            candidate >= X
 *   {"metric":M,"max":X}            candidate <= X
 *   {"metric":M,"max_drop":X}       baseline - candidate <= X   (X >= 0)
 *   {"metric":M,"max_drop_pct":P}   (baseline - candidate)/|baseline|*100 <= P (P >= 0);
 *                                   a zero baseline passes only when candidate >= baseline
 *   {"require":"signed","min":N}    N distinct trusted keys whose signatures count (N >= 1):
 *                                   keys of role `release` only (keyring.h)
 *   {"require":"previous_stage"}    in, or once promoted into, the stage before the target
 *   {"require":"approvals","min":N} N distinct approvers, the pusher not counted (N >= 1)
 *   {"metric":M,"min_improvement":X}      improvement >= X (X >= 0), where improvement is
 *                                         candidate - baseline, or baseline - candidate with
 *                                         "lower_is_better": true on the rule
 *   {"metric":M,"min_improvement_pct":P}  improvement/|baseline|*100 >= P (P >= 0); a zero
 *                                         baseline passes only when improvement > 0 (>= 0
 *                                         when P is 0)
 *   {"require":"min_interval","seconds":N} the last promotion into the target stage (of
 *                                         this model; rollbacks are not promotions) was at
 *                                         least N seconds ago (1 <= N <= 31536000); passes
 *                                         when there was none
 * A missing metric, a non-finite value, or a release without an eval report
 * fails its rule. Rules against the baseline (max_drop, max_drop_pct,
 * min_improvement, min_improvement_pct) pass without a baseline ("no
 * baseline"); when neither side's numbers name digests they fail when the
 * two eval reports name different datasets.
 *
 * Source ("source" on a metric rule): "pusher" (default) reads the
 * candidate's pushed report (mlreg_gate_input.candidate); "evaluator" reads
 * candidate_evaluation, the newest evaluation by a trusted evaluator key,
 * and fails "no evaluation by a trusted evaluator key" without one.
 * Comparable numbers: a rule against the baseline compares only numbers
 * naming the same dataset_digest and eval_code_digest (NULL equal to NULL).
 * Its baseline numbers are, for source pusher, the baseline's pushed report
 * when comparable, else baseline_evaluation_pusher; for source evaluator,
 * baseline_evaluation_evaluator (baseline_evaluation when the candidate's
 * evaluation names no digests). None comparable: the row's outcome is
 * "hold" (passed false) naming the digests; a failing candidate (missing
 * metric, no evaluation) fails instead. min/max never hold.
 * Their difference counts as equal to the threshold when it is within the
 * rounding error of the doubles it comes from (2 DBL_EPSILON times the sum
 * of their magnitudes, and of the threshold's).
 *
 * Confidence intervals ("bound" on a metric rule; the metric must carry an
 * interval [lo, hi] from its eval report, else the rule fails):
 *   min  with "bound":"ci_low"   lo >= X
 *   max  with "bound":"ci_high"  hi <= X
 *   max_drop / max_drop_pct with "bound":"ci": the largest drop both
 *     intervals allow, worst = baseline.hi - candidate.lo, is <= X
 *     (worst/|baseline value|*100 <= P)
 *   min_improvement / min_improvement_pct with "bound":"ci": the smallest
 *     improvement both intervals allow, candidate.lo - baseline.hi (with
 *     lower_is_better: baseline.lo - candidate.hi), is >= X (its percent of
 *     |baseline value| >= P)
 * Any other pairing of bound and rule is refused by the parser.
 *
 * Slices: a metric name with one segment "*" ("slices.*.accuracy"; segments
 * are separated by '.', the '*' segment is not the last one) applies the rule
 * to every metric that matches with one segment (no '.') in its place.
 * Each match is a row of the table (its metric the concrete name). No match
 * in the candidate fails (one row, the pattern). For rules against the
 * baseline: a slice of the baseline missing from the candidate fails, a
 * slice only in the candidate passes ("new slice"), one in both is judged.
 * The slice rows of one table are at most MLREG_MAX_SLICE_ROWS in all: a
 * slice rule whose rows would pass that fails in one row.
 */
#ifndef MLREG_GATES_H
#define MLREG_GATES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/** Most stages a config may declare. */
#define MLREG_MAX_STAGES 32

typedef enum {
    MLREG_RULE_MIN = 0,
    MLREG_RULE_MAX,
    MLREG_RULE_MAX_DROP,
    MLREG_RULE_MAX_DROP_PCT,
    MLREG_RULE_SIGNED,
    MLREG_RULE_PREVIOUS_STAGE,
    MLREG_RULE_APPROVALS,
    MLREG_RULE_MIN_IMPROVEMENT,
    MLREG_RULE_MIN_IMPROVEMENT_PCT,
    MLREG_RULE_MIN_INTERVAL
} mlreg_rule_type;

/** Which number of a metric a rule reads ("bound" on the rule). */
typedef enum {
    MLREG_BOUND_VALUE = 0, /**< the value (no "bound") */
    MLREG_BOUND_CI_LOW,    /**< "ci_low": min rules */
    MLREG_BOUND_CI_HIGH,   /**< "ci_high": max rules */
    MLREG_BOUND_CI         /**< "ci": rules against the baseline, worst case of both intervals */
} mlreg_bound;

/** Whose numbers a metric rule reads ("source" on the rule). */
typedef enum {
    MLREG_SOURCE_PUSHER = 0, /**< "pusher" (default): the eval report pushed with the release */
    MLREG_SOURCE_EVALUATOR   /**< "evaluator": the newest evaluation by a trusted evaluator key */
} mlreg_source;

/** Most slice rows one gate table holds, over all its slice rules; a rule
 *  that would pass it fails in one row (every row goes into the promotion's
 *  audit entry, which is bounded). */
#define MLREG_MAX_SLICE_ROWS 100

/** Most seconds a min_interval rule may ask for (365 days). */
#define MLREG_MAX_INTERVAL_SECONDS 31536000L

/** One rule. Owned by the policy it belongs to. */
typedef struct {
    mlreg_rule_type type;
    char *metric;        /**< metric rules: the (flattened) metric name; NULL otherwise */
    double threshold;    /**< metric rules: X or P */
    long min_count;      /**< signed / approvals: N; min_interval: seconds */
    mlreg_bound bound;   /**< metric rules: which number is judged */
    int lower_is_better; /**< min_improvement rules: 1 when lower values are better */
    mlreg_source source; /**< metric rules: whose numbers are judged ("source") */
} mlreg_rule;

/** 1 when @p t is a metric rule (it has a metric and a threshold). */
int mlreg_rule_is_metric(mlreg_rule_type t);

typedef struct mlreg_policy mlreg_policy;

/**
 * Parses the config keys `stages` (array of distinct tag-grammar names; NULL
 * = ["dev","staging","production"]), `gates` ({stage: [RULE...]}, NULL =
 * none) and `models` ({model: {"gates": {stage: [RULE...]}}}, NULL = none;
 * a model's list for a stage replaces the global one) into *out (owned by
 * the caller, mlreg_policy_free()). An unknown or missing key, a wrong type,
 * a stage not in `stages`, a non-finite threshold, a negative drop
 * threshold, a count below 1, or `previous_stage` on the first stage is
 * MLREG_EINVALID naming the key path:
 * `config key 'gates.production[1].mni': unknown rule key`.
 */
int mlreg_policy_parse(mlreg_policy **out, const json_t *stages, const json_t *gates,
                       const json_t *models);

/** Frees @p p; NULL is a no-op. */
void mlreg_policy_free(mlreg_policy *p);

/** Number of stages (at least 1). */
size_t mlreg_policy_stage_count(const mlreg_policy *p);

/** The stage names in config order (borrowed from @p p). */
const char *const *mlreg_policy_stages(const mlreg_policy *p);

/** Index of @p stage in config order, or -1 when it is not a stage. */
int mlreg_policy_stage_index(const mlreg_policy *p, const char *stage);

/**
 * The rules of @p stage for @p model (the model's own list when it has
 * one, else the global list; possibly empty). Borrowed from @p p.
 * @return 0 or MLREG_EINVALID ("unknown stage 'x'").
 */
int mlreg_policy_rules(const mlreg_rule **rules_out, size_t *n_out, const mlreg_policy *p,
                       const char *model, const char *stage);

/** A metric value of a release (non-finite values are possible inputs). */
typedef struct {
    const char *name;
    double value;
    int has_ci;     /**< 1: the eval report gave a confidence interval */
    double ci_low;  /**< when has_ci */
    double ci_high; /**< when has_ci */
} mlreg_metric;

/** The evaluator attestation a release's numbers came from (borrowed). */
typedef struct {
    const char *key_id;       /**< 64 hex */
    const char *key_name;     /**< the keyring's name now ("" when unknown) */
    uint64_t seq;             /**< the audit seq of its evaluation.attest entry */
    const char *evaluated_at; /**< as the statement says it */
} mlreg_gate_attestation;

/** What the gates know about one release. Everything borrowed. */
typedef struct {
    const char *version;
    int has_eval_report;         /**< 0: every metric rule fails "release has no eval report" */
    const mlreg_metric *metrics; /**< n_metrics entries */
    size_t n_metrics;
    const char *dataset;          /**< the eval report's dataset, NULL when it names none */
    const char *dataset_digest;   /**< "sha256:<hex>" the report names, or NULL */
    const char *eval_code_digest; /**< likewise */
    /** Non-NULL: these numbers are an evaluator's attestation, this one. */
    const mlreg_gate_attestation *evaluation;
} mlreg_gate_release;

/** Inputs of one evaluation. Everything borrowed. */
typedef struct {
    const mlreg_gate_release *candidate;
    const mlreg_gate_release *baseline; /**< the release in the target stage; NULL: none */
    long signed_count;                  /**< distinct trusted keys whose signatures count now */
    long signed_other_count;            /**< distinct trusted keys with valid signatures that do
                                             not count because their role does not sign releases */
    const char *signed_other_roles;     /**< those keys' roles ("approver, ops"); NULL: none */
    const char *previous_stage;         /**< the stage before the target; NULL for the first */
    int in_previous_stage;              /**< 1: in, or once promoted into, previous_stage */
    long approvals;                     /**< distinct approvers other than the pusher */
    int pusher_approved;                /**< 1: the pusher approved too (not counted) */
    int64_t now_ns;                     /**< the time of the evaluation (min_interval) */
    int64_t last_promotion_ns;          /**< the last promotion of this model into the target
                                             stage; 0: none */
    /* Evaluator attestations (each has .evaluation set; NULL: none counts): */
    const mlreg_gate_release *candidate_evaluation; /**< the candidate's newest */
    const mlreg_gate_release *baseline_evaluation;  /**< the baseline's newest, any digests */
    /** The baseline's newest naming exactly the digests of the candidate's
     *  pushed report (looked up only when that report names some). */
    const mlreg_gate_release *baseline_evaluation_pusher;
    /** The baseline's newest naming exactly the digests of
     *  candidate_evaluation (looked up only when it names some). */
    const mlreg_gate_release *baseline_evaluation_evaluator;
} mlreg_gate_input;

/**
 * Evaluates @p n @p rules on @p in. *table_out receives the rule table
 * (owned by the caller): [{"rule","type","metric","threshold","candidate",
 * "baseline_version","baseline","delta","passed","detail","margin","bound",
 * "outcome"}] plus, on metric rows, "source", "evaluation" and
 * "baseline_evaluation" ({"evaluated_at","key_id","key_name","seq"} of the
 * attestation whose numbers the candidate / baseline column holds, or
 * null) and, on rows against the baseline, "digests" ({"baseline":
 * {"dataset","eval_code"},"candidate":{...}}, strings or null)
 * with null for what does not apply (and for non-finite numbers, which JSON
 * cannot hold). "margin" is how far a metric rule's judged number is on the
 * passing side of its threshold (negative: by how much it fails); "bound"
 * is "ci_low", "ci_high" or "ci" when the rule reads an interval. A slice
 * rule gives one row per slice.
 * Rows of a promotion are stored in its audit entry; registry/promotions.c
 * restores their member order on replay and must list new members too.
 *
 * *passed_out is 1 when every rule passed (also when there are none); a
 * row that holds did not pass (the caller tells holds from fails by
 * "outcome").
 * @return 0 or MLREG_ENOMEM.
 */
int mlreg_gates_evaluate(json_t **table_out, int *passed_out, const mlreg_rule *rules, size_t n,
                         const mlreg_gate_input *in);

/** The rule's type as on the wire: "min", "max", "max_drop", ... */
const char *mlreg_rule_type_name(mlreg_rule_type t);

/**
 * The rules @p rules as configured, for clients that show them (owned by the
 * caller): [{"type","metric","threshold"}] for a metric rule (the type as
 * mlreg_rule_type_name() writes it, plus "bound" and "lower_is_better"
 * when the rule has them), [{"type","min"}] for `signed` and `approvals`,
 * [{"type","seconds"}] for `min_interval`, [{"type"}] for `previous_stage`.
 * NULL when out of memory.
 */
json_t *mlreg_rules_json(const mlreg_rule *rules, size_t n);

#endif
