/* metrics.c: the process-wide registry of counters and gauges, and the
 * writer of the Prometheus text exposition format 0.0.4 (metrics.h).
 *
 * The registry is a fixed array filled in order under a mutex; `published`
 * counts the series whose fields are complete and is stored with release
 * order after a series is filled, so writers of the exposition read the
 * first `published` series without the lock. A series is never removed
 * or moved, so a handle stays valid until exit and a bump is one atomic
 * add on it. Gauges keep their value as the two's complement of a signed
 * number in the same 64-bit cell.
 */
#include "mlreg/metrics.h"

#include "mlreg/common.h"
#include "mlreg/json_out.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN  96
#define HELP_MAX_LEN  256
#define LNAME_MAX_LEN 48
#define LVALUE_MAX    128

enum { KIND_COUNTER = 1, KIND_GAUGE = 2 };

struct mlreg_metrics_series {
    int kind;
    char name[NAME_MAX_LEN + 1];
    char help[HELP_MAX_LEN + 1];
    size_t npairs;
    char lname[MLREG_METRICS_LABELS_MAX][LNAME_MAX_LEN + 1];
    char lvalue[MLREG_METRICS_LABELS_MAX][LVALUE_MAX + 1];
    _Atomic uint64_t value;
};

static mlreg_metrics_series series[MLREG_METRICS_MAX];
static _Atomic size_t published;
static pthread_mutex_t register_lock = PTHREAD_MUTEX_INITIALIZER;

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; label names have no ':' and
 * may not start with "__" (reserved for Prometheus itself). */
static int name_ok(const char *s, int label, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max) return 0;
    if (label && n >= 2 && s[0] == '_' && s[1] == '_') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return 0;
    }
    return 1;
}

static int same_labels(const mlreg_metrics_series *m, size_t npairs, const char *const *pairs)
{
    if (m->npairs != npairs) return 0;
    for (size_t i = 0; i < npairs; i++)
        if (strcmp(m->lname[i], pairs[2 * i]) || strcmp(m->lvalue[i], pairs[2 * i + 1])) return 0;
    return 1;
}

/* Finds or adds a series; the caller holds register_lock. */
static mlreg_metrics_series *register_locked(int kind, const char *name, const char *help,
                                             size_t npairs, const char *const *pairs)
{
    size_t n = atomic_load_explicit(&published, memory_order_relaxed);
    mlreg_metrics_series *m;

    for (size_t i = 0; i < n; i++) {
        m = &series[i];
        if (strcmp(m->name, name)) continue;
        if (m->kind != kind || strcmp(m->help, help)) {
            mlreg_error_set(MLREG_EINVALID,
                            "metric %s is registered already with another type or help text", name);
            return NULL;
        }
        if (same_labels(m, npairs, pairs)) return m;
    }
    if (n == MLREG_METRICS_MAX) {
        mlreg_error_set(MLREG_ENOSPACE, "metrics registry full (%d series): %s not registered",
                        MLREG_METRICS_MAX, name);
        return NULL;
    }
    m = &series[n];
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->help, sizeof(m->help), "%s", help);
    m->npairs = npairs;
    for (size_t i = 0; i < npairs; i++) {
        snprintf(m->lname[i], sizeof(m->lname[i]), "%s", pairs[2 * i]);
        snprintf(m->lvalue[i], sizeof(m->lvalue[i]), "%s", pairs[2 * i + 1]);
    }
    atomic_store_explicit(&published, n + 1, memory_order_release);
    return m;
}

static mlreg_metrics_series *register_series(int kind, const char *name, const char *help,
                                             const char *const *pairs, size_t npairs)
{
    mlreg_metrics_series *m;

    if (name == NULL || !name_ok(name, 0, NAME_MAX_LEN)) {
        mlreg_error_set(MLREG_EINVALID, "metric name '%.96s' is not valid", name ? name : "");
        return NULL;
    }
    if (help == NULL || strlen(help) > HELP_MAX_LEN) {
        mlreg_error_set(MLREG_EINVALID, "metric %s: help text missing or too long", name);
        return NULL;
    }
    if (npairs > MLREG_METRICS_LABELS_MAX) {
        mlreg_error_set(MLREG_EINVALID, "metric %s: more than %d labels", name,
                        MLREG_METRICS_LABELS_MAX);
        return NULL;
    }
    for (size_t i = 0; i < npairs; i++) {
        const char *l = pairs[2 * i], *v = pairs[2 * i + 1];
        if (l == NULL || !name_ok(l, 1, LNAME_MAX_LEN) || v == NULL || strlen(v) > LVALUE_MAX) {
            mlreg_error_set(MLREG_EINVALID, "metric %s: label '%.48s' or its value is not valid",
                            name, l ? l : "");
            return NULL;
        }
    }
    pthread_mutex_lock(&register_lock);
    m = register_locked(kind, name, help, npairs, pairs);
    pthread_mutex_unlock(&register_lock);
    return m;
}

mlreg_metrics_series *mlreg_metrics_counter(const char *name, const char *help,
                                            const char *const *labels, size_t npairs)
{
    return register_series(KIND_COUNTER, name, help, labels, npairs);
}

mlreg_metrics_series *mlreg_metrics_gauge(const char *name, const char *help,
                                          const char *const *labels, size_t npairs)
{
    return register_series(KIND_GAUGE, name, help, labels, npairs);
}

void mlreg_metrics_add(mlreg_metrics_series *m, uint64_t n)
{
    if (m != NULL) atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
}

void mlreg_metrics_sub(mlreg_metrics_series *m, uint64_t n)
{
    if (m != NULL && m->kind == KIND_GAUGE)
        atomic_fetch_sub_explicit(&m->value, n, memory_order_relaxed);
}

void mlreg_metrics_set(mlreg_metrics_series *m, int64_t v)
{
    if (m != NULL && m->kind == KIND_GAUGE)
        atomic_store_explicit(&m->value, (uint64_t)v, memory_order_relaxed);
}

int64_t mlreg_metrics_value(const mlreg_metrics_series *m)
{
    if (m == NULL) return 0;
    return (int64_t)atomic_load_explicit(&((mlreg_metrics_series *)(uintptr_t)m)->value,
                                         memory_order_relaxed);
}

/* ---- the text format ----------------------------------------------------------- */

static int add_str(mlreg_buf *b, const char *s)
{
    return mlreg_buf_add(b, s, strlen(s));
}

/* Escapes @p s for a HELP line (@p quoted 0: '\\' and newline) or a label
 * value (@p quoted 1: also '"'), as the format asks. */
static int add_escaped(mlreg_buf *b, const char *s, int quoted)
{
    int error = 0;

    for (const char *run = s;; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quoted)
            esc = "\\\"";
        else if (*s != '\0')
            continue;
        if ((error = mlreg_buf_add(b, run, (size_t)(s - run))) < 0) return error;
        if (esc == NULL) return 0;
        if ((error = add_str(b, esc)) < 0) return error;
        run = s + 1;
    }
}

int mlreg_metrics_write_family(mlreg_buf *b, const char *name, const char *type, const char *help)
{
    int error;

    if ((error = add_str(b, "# HELP ")) < 0 || (error = add_str(b, name)) < 0 ||
        (error = add_str(b, " ")) < 0 || (error = add_escaped(b, help, 0)) < 0 ||
        (error = add_str(b, "\n# TYPE ")) < 0 || (error = add_str(b, name)) < 0 ||
        (error = add_str(b, " ")) < 0 || (error = add_str(b, type)) < 0 ||
        (error = add_str(b, "\n")) < 0)
        return error;
    return 0;
}

/* `name{labels[,extra_name="extra_value"]} ` up to the value. */
static int add_series(mlreg_buf *b, const char *name, const char *suffix, const char *const *labels,
                      size_t npairs, const char *extra_name, const char *extra_value)
{
    int error;

    if ((error = add_str(b, name)) < 0 || (error = add_str(b, suffix)) < 0) return error;
    if (npairs > 0 || extra_name != NULL) {
        if ((error = add_str(b, "{")) < 0) return error;
        for (size_t i = 0; i < npairs; i++)
            if ((error = add_str(b, i ? "," : "")) < 0 || (error = add_str(b, labels[2 * i])) < 0 ||
                (error = add_str(b, "=\"")) < 0 ||
                (error = add_escaped(b, labels[2 * i + 1], 1)) < 0 ||
                (error = add_str(b, "\"")) < 0)
                return error;
        if (extra_name != NULL &&
            ((error = add_str(b, npairs ? "," : "")) < 0 || (error = add_str(b, extra_name)) < 0 ||
             (error = add_str(b, "=\"")) < 0 || (error = add_str(b, extra_value)) < 0 ||
             (error = add_str(b, "\"")) < 0))
            return error;
        if ((error = add_str(b, "}")) < 0) return error;
    }
    return add_str(b, " ");
}

/* A sample value: exact for integers below 2^53, else the shortest "%g"
 * that reads back as the same double ("0.005", not "0.0050000000000000001"). */
static void format_value(char *out, size_t len, double v)
{
    if (v != v)
        snprintf(out, len, "NaN");
    else if (v > 1.7976931348623157e308)
        snprintf(out, len, "+Inf");
    else if (v < -1.7976931348623157e308)
        snprintf(out, len, "-Inf");
    else if (v > -9007199254740992.0 && v < 9007199254740992.0 && (double)(int64_t)v == v)
        snprintf(out, len, "%lld", (long long)(int64_t)v);
    else
        snprintf(out, len, "%.*g", mlreg_real_precision(v), v);
}

static int add_line_end(mlreg_buf *b, const char *value)
{
    int error;

    if ((error = add_str(b, value)) < 0) return error;
    return add_str(b, "\n");
}

int mlreg_metrics_write_sample(mlreg_buf *b, const char *name, const char *const *labels,
                               size_t npairs, double value)
{
    char v[40];
    int error;

    format_value(v, sizeof(v), value);
    if ((error = add_series(b, name, "", labels, npairs, NULL, NULL)) < 0) return error;
    return add_line_end(b, v);
}

int mlreg_metrics_write_sample_u64(mlreg_buf *b, const char *name, const char *const *labels,
                                   size_t npairs, uint64_t value)
{
    char v[24];
    int error;

    snprintf(v, sizeof(v), "%llu", (unsigned long long)value);
    if ((error = add_series(b, name, "", labels, npairs, NULL, NULL)) < 0) return error;
    return add_line_end(b, v);
}

int mlreg_metrics_write_histogram(mlreg_buf *b, const char *name, const char *const *labels,
                                  size_t npairs, const double *bounds, const uint64_t *counts,
                                  size_t nbounds, double sum)
{
    uint64_t total = 0;
    char le[40], v[40];
    int error;

    for (size_t i = 1; i < nbounds; i++)
        if (!(bounds[i] > bounds[i - 1]))
            return mlreg_error_set(MLREG_EINVALID, "histogram %s: bounds not increasing", name);
    for (size_t i = 0; i <= nbounds; i++) {
        total += counts[i];
        if (i < nbounds)
            format_value(le, sizeof(le), bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        snprintf(v, sizeof(v), "%llu", (unsigned long long)total);
        if ((error = add_series(b, name, "_bucket", labels, npairs, "le", le)) < 0 ||
            (error = add_line_end(b, v)) < 0)
            return error;
    }
    format_value(v, sizeof(v), sum);
    if ((error = add_series(b, name, "_sum", labels, npairs, NULL, NULL)) < 0 ||
        (error = add_line_end(b, v)) < 0)
        return error;
    snprintf(v, sizeof(v), "%llu", (unsigned long long)total);
    if ((error = add_series(b, name, "_count", labels, npairs, NULL, NULL)) < 0 ||
        (error = add_line_end(b, v)) < 0)
        return error;
    return 0;
}

static int write_one(mlreg_buf *b, const mlreg_metrics_series *m)
{
    const char *pairs[2 * MLREG_METRICS_LABELS_MAX];
    int64_t v = mlreg_metrics_value(m);

    for (size_t i = 0; i < m->npairs; i++) {
        pairs[2 * i] = m->lname[i];
        pairs[2 * i + 1] = m->lvalue[i];
    }
    if (m->kind == KIND_COUNTER)
        return mlreg_metrics_write_sample_u64(b, m->name, pairs, m->npairs, (uint64_t)v);
    return mlreg_metrics_write_sample(b, m->name, pairs, m->npairs, (double)v);
}

int mlreg_metrics_write_registered(mlreg_buf *b)
{
    size_t n = atomic_load_explicit(&published, memory_order_acquire);
    int error;

    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(series[j].name, series[i].name);
        if (seen) continue;
        if ((error = mlreg_metrics_write_family(
                 b, series[i].name, series[i].kind == KIND_COUNTER ? "counter" : "gauge",
                 series[i].help)) < 0)
            return error;
        for (size_t k = i; k < n; k++)
            if (!strcmp(series[k].name, series[i].name) && (error = write_one(b, &series[k])) < 0)
                return error;
    }
    return 0;
}
