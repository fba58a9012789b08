/* metric_filter.h: the `--metric NAMEOPVALUE` conditions of `mlreg search`
 * (metric_filter.c). Internal to cli/; no registry access, so that a unit
 * suite tests the grammar alone.
 */
#ifndef MLREG_CLI_METRIC_FILTER_H
#define MLREG_CLI_METRIC_FILTER_H

#include <jansson.h>

#include "mlreg/manifest.h"

/** The comparison of a condition. */
typedef enum {
    CLI_CMP_GT, /**< > */
    CLI_CMP_GE, /**< >= */
    CLI_CMP_LT, /**< < */
    CLI_CMP_LE, /**< <= */
    CLI_CMP_EQ  /**< = (the same double) */
} cli_cmp_op;

/** One condition: metric NAME compared with VALUE. */
typedef struct {
    char name[MLREG_MAX_METRIC_NAME_BYTES + 1];
    cli_cmp_op op;
    double value;
} cli_metric_filter;

/** The longest condition accepted, in bytes. */
#define CLI_METRIC_FILTER_MAX 512

/**
 * Parses @p s, "NAME>VALUE", "NAME>=VALUE", "NAME<VALUE", "NAME<=VALUE" or
 * "NAME=VALUE", into @p out. The operator is the last one in @p s (metric
 * names may hold '.', '/', spaces...; a name ending in '<', '>' or '=' cannot
 * be searched for). VALUE is a finite decimal or exponent number as
 * strtod() reads it, nothing after it. MLREG_EINVALID with a message saying
 * what is wrong: no operator, "==" or another doubled operator, an empty
 * or over-long name, a control character, an empty, non-numeric, NaN,
 * infinite or out-of-range value, @p s longer than CLI_METRIC_FILTER_MAX.
 */
int cli_metric_filter_parse(cli_metric_filter *out, const char *s);

/**
 * 1 when the metrics object @p metrics ({"name": number}) has @p f's metric
 * and its value satisfies @p f, else 0 (a missing or non-numeric metric
 * never matches).
 */
int cli_metric_filter_match(const cli_metric_filter *f, const json_t *metrics);

/** The operator as written: ">", ">=", "<", "<=", "=". */
const char *cli_cmp_op_text(cli_cmp_op op);

#endif
