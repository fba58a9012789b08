/* metric_filter.c: the grammar of `mlreg search --metric` conditions
 * (metric_filter.h). The value is read with strtod() in the C locale the
 * CLI runs in; what strtod() accepts beyond a plain number ("nan", "inf",
 * hex floats) is refused except hex floats, which are finite numbers.
 */
#include "metric_filter.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"

static int is_op_char(char c)
{
    return c == '<' || c == '>' || c == '=';
}

const char *cli_cmp_op_text(cli_cmp_op op)
{
    switch (op) {
    case CLI_CMP_GT: return ">";
    case CLI_CMP_GE: return ">=";
    case CLI_CMP_LT: return "<";
    case CLI_CMP_LE: return "<=";
    case CLI_CMP_EQ: return "=";
    }
    return "?";
}

int cli_metric_filter_parse(cli_metric_filter *out, const char *s)
{
    size_t len = strlen(s), op_at, op_len = 1, i;
    const char *v;
    char *end;
    double d;

    memset(out, 0, sizeof(*out));
    if (len > CLI_METRIC_FILTER_MAX)
        return mlreg_error_set(MLREG_EINVALID, "--metric: a condition is at most %d bytes",
                               CLI_METRIC_FILTER_MAX);
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return mlreg_error_set(MLREG_EINVALID,
                                   "--metric: a control character in the condition");
    for (op_at = len; op_at > 0 && !is_op_char(s[op_at - 1]); op_at--)
        ;
    if (op_at == 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "--metric '%s': no operator; write NAME>VALUE, NAME>=VALUE, "
                               "NAME<VALUE, NAME<=VALUE or NAME=VALUE",
                               s);
    op_at--;
    if (s[op_at] == '=' && op_at > 0 && (s[op_at - 1] == '<' || s[op_at - 1] == '>')) {
        op_at--;
        op_len = 2;
    }
    if (op_at > 0 && is_op_char(s[op_at - 1]))
        return mlreg_error_set(MLREG_EINVALID,
                               "--metric '%s': unknown operator '%.*s' (use > >= < <= =)", s,
                               (int)(op_len + 1), s + op_at - 1);
    if (op_at == 0) return mlreg_error_set(MLREG_EINVALID, "--metric '%s': no metric name", s);
    if (op_at > MLREG_MAX_METRIC_NAME_BYTES)
        return mlreg_error_set(MLREG_EINVALID, "--metric: a metric name is at most %d bytes",
                               MLREG_MAX_METRIC_NAME_BYTES);
    memcpy(out->name, s, op_at);
    out->name[op_at] = '\0';
    if (op_len == 2)
        out->op = s[op_at] == '>' ? CLI_CMP_GE : CLI_CMP_LE;
    else
        out->op = s[op_at] == '>' ? CLI_CMP_GT : s[op_at] == '<' ? CLI_CMP_LT : CLI_CMP_EQ;
    v = s + op_at + op_len;
    if (*v == '\0')
        return mlreg_error_set(MLREG_EINVALID, "--metric '%s': no value after '%s'", s,
                               cli_cmp_op_text(out->op));
    errno = 0;
    d = strtod(v, &end);
    if (end == v || *end != '\0' || (v[0] == ' ' || v[0] == '\t'))
        return mlreg_error_set(MLREG_EINVALID, "--metric '%s': '%s' is not a number", s, v);
    if (isnan(d) || isinf(d))
        return mlreg_error_set(MLREG_EINVALID, "--metric '%s': the value must be a finite number",
                               s);
    if (errno == ERANGE && fabs(d) > 1.0)
        return mlreg_error_set(MLREG_EINVALID, "--metric '%s': '%s' is out of range", s, v);
    out->value = d;
    return 0;
}

int cli_metric_filter_match(const cli_metric_filter *f, const json_t *metrics)
{
    json_t *v = json_object_get(metrics, f->name);
    double d;

    if (!json_is_number(v)) return 0;
    d = json_number_value(v);
    switch (f->op) {
    case CLI_CMP_GT: return d > f->value;
    case CLI_CMP_GE: return d >= f->value;
    case CLI_CMP_LT: return d < f->value;
    case CLI_CMP_LE: return d <= f->value;
    case CLI_CMP_EQ: return d == f->value;
    }
    return 0;
}
