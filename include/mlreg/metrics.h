/**
 * @file metrics.h
 * @brief Process-wide counters and gauges any module may register and bump,
 *        and the writer of the Prometheus text exposition format (0.0.4)
 *        that GET /metrics answers with.
 *
 * A series is a metric name and a fixed set of label pairs, registered once
 * (mlreg_metrics_counter(), mlreg_metrics_gauge()) and then bumped through
 * its handle with one atomic operation, no lock. Handles live as long as
 * the process: keep them (a static, a field of a long-lived object) rather
 * than registering on every bump; registering the same name and labels
 * again returns the same handle. Label values must come from a bounded set
 * (backend names, operations, configured stages): never a model name, a
 * path or anything a client chooses. The registry holds at most
 * MLREG_METRICS_MAX series; past that registration returns NULL and the
 * bump functions take NULL as a no-op, so a full registry costs a series,
 * never a request.
 *
 * Example (a module's own counter):
 *     const char *ok[] = {"result", "ok"};
 *     hooks->sent = mlreg_metrics_counter("mlreg_events_sent_total",
 *                                         "Webhook deliveries sent.", ok, 1);
 *     ...
 *     mlreg_metrics_add(hooks->sent, 1);
 */
#ifndef MLREG_METRICS_H
#define MLREG_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "mlreg/buf.h"

/** Series the registry holds at most. */
#define MLREG_METRICS_MAX 512
/** Label pairs one series may have at most. */
#define MLREG_METRICS_LABELS_MAX 4

/** One registered series (owned by the registry, valid until exit). */
typedef struct mlreg_metrics_series mlreg_metrics_series;

/**
 * Registers the counter @p name with @p help and the @p npairs label pairs
 * of @p labels (labels[2*i] the name, labels[2*i+1] the value; NULL when
 * @p npairs is 0), or finds it when it exists. The strings are copied.
 * NULL, with the error set, when a name is not a valid metric or label
 * name, the name is registered already as a gauge or with another help
 * text, a label value is longer than 128 bytes, there are more than
 * MLREG_METRICS_LABELS_MAX pairs, or the registry is full (MLREG_EINVALID,
 * MLREG_ENOSPACE). Thread-safe.
 */
mlreg_metrics_series *mlreg_metrics_counter(const char *name, const char *help,
                                            const char *const *labels, size_t npairs);
/** mlreg_metrics_counter() for a gauge (a value that goes up and down). */
mlreg_metrics_series *mlreg_metrics_gauge(const char *name, const char *help,
                                          const char *const *labels, size_t npairs);
/** Adds @p n to counter or gauge @p m; NULL is a no-op. Lock-free. */
void mlreg_metrics_add(mlreg_metrics_series *m, uint64_t n);
/** Subtracts @p n from gauge @p m (a counter is left alone); NULL is a no-op. */
void mlreg_metrics_sub(mlreg_metrics_series *m, uint64_t n);
/** Sets gauge @p m to @p v (a counter is left alone); NULL is a no-op. */
void mlreg_metrics_set(mlreg_metrics_series *m, int64_t v);
/** The current value of @p m (a counter's as unsigned, cast); 0 for NULL. */
int64_t mlreg_metrics_value(const mlreg_metrics_series *m);

/* ---- the text exposition format (writer) ---------------------------------- */

/** Writes "# HELP name help\n# TYPE name type\n" (@p type: "counter",
 *  "gauge", "histogram"), escaping the help text ('\\' and newline).
 *  0 or MLREG_ENOMEM. */
int mlreg_metrics_write_family(mlreg_buf *b, const char *name, const char *type, const char *help);
/**
 * Writes one sample line `name{l1="v1",...} value`: @p labels holds
 * @p npairs name/value pairs (labels[2*i], labels[2*i+1]); values are
 * escaped ('\\', '"', newline). @p value is written exactly when it is an
 * integer below 2^53, else with the fewest significant digits (15 to 17)
 * that read back as the same double; NaN and infinities as "NaN", "+Inf",
 * "-Inf". 0 or MLREG_ENOMEM.
 */
int mlreg_metrics_write_sample(mlreg_buf *b, const char *name, const char *const *labels,
                               size_t npairs, double value);
/** mlreg_metrics_write_sample() of an unsigned count, written exactly. */
int mlreg_metrics_write_sample_u64(mlreg_buf *b, const char *name, const char *const *labels,
                                   size_t npairs, uint64_t value);
/**
 * Writes the samples of one histogram series: name_bucket{...,le="B"} for
 * each of the @p nbounds upper bounds (increasing) and le="+Inf", each the
 * cumulative count, then name_sum and name_count. @p counts holds
 * @p nbounds + 1 per-bucket (not cumulative) counts, the last one of the
 * observations above every bound. 0, MLREG_EINVALID (bounds not
 * increasing) or MLREG_ENOMEM.
 */
int mlreg_metrics_write_histogram(mlreg_buf *b, const char *name, const char *const *labels,
                                  size_t npairs, const double *bounds, const uint64_t *counts,
                                  size_t nbounds, double sum);
/** Writes every registered series, one HELP/TYPE block per name, in the
 *  order the names were first registered. 0 or MLREG_ENOMEM. */
int mlreg_metrics_write_registered(mlreg_buf *b);

#endif
