/* server_routes.c: the list of route tables, path matching and the role
 * rules of rows (server_routes.h describes patterns and the order rows are
 * tried in). Nothing here knows an endpoint: the rows are the handler
 * files'.
 */
#include "server_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"

/* The tables, in matching order. The uploads come before the rest of /v2/,
 * whose blobs/{digest} would take blobs/uploads; the audit table before the
 * API table, whose release row (.../versions/{version*}) takes every path
 * under a release that no earlier row matched, and the attestations of a
 * release are server_audit.c's. The probes (/healthz, /readyz) share no
 * path with the others, nor does /metrics, nor the dashboard (/ and /ui/).
 * The Hugging Face-compatible reads come last: their downloads are
 * /{name}/resolve/..., which would take any path of the others holding a
 * "resolve" segment; the table reserves the others' first segments. */
static const route_table *const tables[] = {
    &mlreg_server__oci_upload_routes, &mlreg_server__oci_routes,   &mlreg_server__audit_routes,
    &mlreg_server__api_routes,        &mlreg_server__probe_routes, &mlreg_server__token_routes,
    &mlreg_server__metrics_routes,    &mlreg_server__event_routes, &mlreg_server__reload_routes,
    &mlreg_server__dashboard_routes,  &mlreg_server__hf_routes,
};

#define NTABLES (sizeof(tables) / sizeof(tables[0]))
/* Segments one pattern may have; the patterns are ours, so this is a bound
 * on the tables, not on requests. */
#define MAX_PATTERN_SEGMENTS 16

static const struct {
    unsigned int bit;
    const char *name;
} methods[] = {
    {ROUTE_GET, "GET"},     {ROUTE_HEAD, "HEAD"}, {ROUTE_POST, "POST"},
    {ROUTE_PATCH, "PATCH"}, {ROUTE_PUT, "PUT"},   {ROUTE_DELETE, "DELETE"},
};

static unsigned int method_bit(const char *method)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (!strcmp(methods[i].name, method)) return methods[i].bit;
    return 0;
}

void mlreg_server__route_allow(char *out, size_t outlen, unsigned int mask)
{
    size_t used = 0;

    if (outlen == 0) return;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        int n;
        if (!(mask & methods[i].bit)) continue;
        n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", methods[i].name);
        if (n < 0 || (size_t)n >= outlen - used) return;
        used += (size_t)n;
    }
}

/* Splits @p s at '/' into at most @p max spans (an empty string is one
 * empty segment). Returns how many segments @p s has, which may be more
 * than @p max (then only the first @p max are filled). */
static size_t split(route_span *out, size_t max, const char *s)
{
    size_t n = 0;

    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (n < max) out[n] = (route_span){s, len};
        n++;
        if (!slash) return n;
        s = slash + 1;
    }
}

static int is(const route_span *seg, const char *text)
{
    return seg->len == strlen(text) && !memcmp(seg->p, text, seg->len);
}

static int is_tail(const route_span *seg)
{
    return is(seg, "{*}") || is(seg, "{version*}") || is(seg, "{path*}");
}

/* The text from the start of @p first to the end of @p last. */
static route_span join(const route_span *first, const route_span *last)
{
    return (route_span){first->p, (size_t)(last->p + last->len - first->p)};
}

/* Matches one single-segment pattern element against @p seg. */
static int segment_matches(route_match *m, const route_span *pat, const route_span *seg)
{
    if (pat->len < 2 || pat->p[0] != '{')
        return pat->len == seg->len && !memcmp(pat->p, seg->p, seg->len);
    if (is(pat, "{digest}") || is(pat, "{reference}") || is(pat, "{uuid}")) {
        m->arg = *seg;
        return 1;
    }
    if (seg->len == 0) return 0;
    if (is(pat, "{id}")) {
        m->arg = *seg;
        return 1;
    }
    if (is(pat, "{stage}")) {
        m->stage = *seg;
        return 1;
    }
    return 0; /* unknown element: matches nothing (the unit suite checks the tables) */
}

static int segments_match(route_match *m, const route_span *pat, const route_span *seg, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!segment_matches(m, &pat[i], &seg[i])) return 0;
    return 1;
}

/* Sets the multi-segment capture of @p m from segments @p seg[0..n). */
static void take_rest(route_match *m, const route_span *pat, const route_span *seg, size_t n)
{
    if (is(pat, "{version*}")) {
        m->arg = join(&seg[0], &seg[n - 1]);
        m->arg_is_version = 1;
    }
    if (is(pat, "{path*}")) m->path = join(&seg[0], &seg[n - 1]);
}

/* Matches the part of a pattern from its multi-segment capture @p pat[0]
 * on: the capture takes @p seg[0..ns-(np-1)), at least one segment, and the
 * @p np - 1 fixed segments after it the rest. A capture followed by more
 * pattern must not be empty text. */
static int rest_matches(route_match *m, const route_span *pat, size_t np, const route_span *seg,
                        size_t ns)
{
    size_t count = ns >= np ? ns - (np - 1) : 0;

    if (count == 0 || !segments_match(m, &pat[1], &seg[count], np - 1)) return 0;
    if (np > 1 && seg[count - 1].p + seg[count - 1].len == seg[0].p) return 0;
    take_rest(m, &pat[0], seg, count);
    return 1;
}

/* Matches pattern segments @p pat[0..np) against path segments
 * @p seg[0..ns): at most one {name} and at most one multi-segment capture
 * after it. Without a multi-segment capture, {name} takes what the fixed
 * segments after it leave. With one, {name} ends at the rightmost place
 * where the fixed segments between the two match with a segment after
 * them, as a search for the rightmost "/versions/" would, and the row
 * matches only if the rest matches from there. */
static int pattern_matches(route_match *out, const route_span *pat, size_t np,
                           const route_span *seg, size_t ns)
{
    size_t name_at = np, multi_at = np, between;
    route_match m;

    for (size_t i = 0; i < np; i++) {
        if (is(&pat[i], "{name}")) name_at = i;
        if (is_tail(&pat[i])) multi_at = i;
    }
    memset(&m, 0, sizeof(m));
    if (name_at == np) {
        if (multi_at == np) {
            if (ns != np || !segments_match(&m, pat, seg, np)) return 0;
        } else if (ns < multi_at || !segments_match(&m, pat, seg, multi_at) ||
                   !rest_matches(&m, &pat[multi_at], np - multi_at, &seg[multi_at],
                                 ns - multi_at)) {
            return 0;
        }
        *out = m;
        return 1;
    }
    if (ns < np || !segments_match(&m, pat, seg, name_at)) return 0;
    if (multi_at == np) {
        size_t count = ns - (np - 1);
        if (!segments_match(&m, &pat[name_at + 1], &seg[name_at + count], np - name_at - 1))
            return 0;
        m.name = join(&seg[name_at], &seg[name_at + count - 1]);
        *out = m;
        return 1;
    }
    between = multi_at - name_at - 1;
    if (ns < name_at + between + 2) return 0;
    for (size_t k = 0; k + name_at + between + 1 < ns; k++) {
        /* {path*}: the leftmost split (the path after it may hold any
         * segment); otherwise the rightmost */
        size_t end = is(&pat[multi_at], "{path*}") ? name_at + 1 + k : ns - between - 1 - k;
        route_match t = m;
        if (!segments_match(&t, &pat[name_at + 1], &seg[end], between)) continue;
        if (!rest_matches(&t, &pat[multi_at], np - multi_at, &seg[end + between],
                          ns - end - between))
            return 0;
        t.name = join(&seg[name_at], &seg[end - 1]);
        *out = t;
        return 1;
    }
    return 0;
}

/* Matches @p row's pattern against the path segments. */
static int row_matches(route_match *out, const route_row *row, const route_span *seg, size_t ns)
{
    route_span pat[MAX_PATTERN_SEGMENTS];
    size_t np = split(pat, MAX_PATTERN_SEGMENTS, row->pattern);

    if (np > MAX_PATTERN_SEGMENTS) return 0;
    if (is(&pat[np - 1], "?")) {
        /* an optional final '/': the path without it, or with it */
        if (pattern_matches(out, pat, np - 1, seg, ns)) return 1;
        return ns > 0 && seg[ns - 1].len == 0 && pattern_matches(out, pat, np - 1, seg, ns - 1);
    }
    return pattern_matches(out, pat, np, seg, ns);
}

int mlreg_server__route_match(route_match *out, const char *path, const char *method)
{
    size_t ns = split(NULL, 0, path);
    route_span *seg = malloc(ns * sizeof(*seg));
    const route_row *first = NULL;
    unsigned int bit = method_bit(method);
    route_match m;

    if (seg == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    split(seg, ns, path);
    memset(&m, 0, sizeof(m));
    for (size_t t = 0; t < NTABLES && !first; t++)
        for (size_t r = 0; r < tables[t]->count && !first; r++)
            if (row_matches(&m, &tables[t]->rows[r], seg, ns)) first = &tables[t]->rows[r];
    free(seg);
    if (first == NULL || first->methods == 0) return 0;
    /* every row with the same pattern is a method of the same resource */
    for (size_t t = 0; t < NTABLES; t++)
        for (size_t r = 0; r < tables[t]->count; r++) {
            const route_row *row = &tables[t]->rows[r];
            if (strcmp(row->pattern, first->pattern)) continue;
            m.allow |= row->methods;
            if (!m.row && (row->methods & bit)) m.row = row;
        }
    *out = m;
    return 1;
}

size_t mlreg_server__route_count(void)
{
    size_t n = 0;

    for (size_t t = 0; t < NTABLES; t++)
        n += tables[t]->count;
    return n;
}

size_t mlreg_server__route_index(const route_row *row)
{
    size_t base = 0;

    for (size_t t = 0; t < NTABLES; t++) {
        if (row >= tables[t]->rows && row < tables[t]->rows + tables[t]->count)
            return base + (size_t)(row - tables[t]->rows);
        base += tables[t]->count;
    }
    return base;
}

void mlreg_server__route_foreach(void (*fn)(const route_row *row, void *cls), void *cls)
{
    for (size_t t = 0; t < NTABLES; t++)
        for (size_t r = 0; r < tables[t]->count; r++)
            fn(&tables[t]->rows[r], cls);
}

/* Whether @p who may bind images to some release of @p model: push (the
 * releases no stage ever held), or promote to at least one stage. */
static int may_bind_images(const mlreg_identity *who, const mlreg_policy *policy, const char *model)
{
    const char *const *stages = mlreg_policy_stages(policy);

    if (mlreg_auth_check(who, MLREG_ROLE_PUSH, NULL, model) == 0) return 1;
    for (size_t i = 0; i < mlreg_policy_stage_count(policy); i++)
        if (mlreg_auth_check(who, MLREG_ROLE_PROMOTE, stages[i], model) == 0) {
            mlreg_error_clear();
            return 1;
        }
    return 0;
}

/* Whether @p who may promote to some stage of @p model (admin implies it). */
static int may_promote_some(const mlreg_identity *who, const mlreg_policy *policy,
                            const char *model)
{
    const char *const *stages = mlreg_policy_stages(policy);

    for (size_t i = 0; i < mlreg_policy_stage_count(policy); i++)
        if (mlreg_auth_check(who, MLREG_ROLE_PROMOTE, stages[i], model) == 0) {
            mlreg_error_clear();
            return 1;
        }
    return 0;
}

int mlreg_server__route_access(const route_row *row, const mlreg_identity *who,
                               const mlreg_policy *policy, const char *name, const char *stage)
{
    switch (row->access) {
    case ROUTE_ACCESS_PUBLIC:
    case ROUTE_ACCESS_TOKEN:
    case ROUTE_ACCESS_IN_BODY: return 0;
    case ROUTE_ACCESS_READ: return mlreg_auth_check(who, MLREG_ROLE_READ, NULL, name);
    case ROUTE_ACCESS_READ_ALL:
    case ROUTE_ACCESS_METRICS: return mlreg_auth_check(who, MLREG_ROLE_READ, NULL, NULL);
    case ROUTE_ACCESS_PUSH: return mlreg_auth_check(who, MLREG_ROLE_PUSH, NULL, name);
    case ROUTE_ACCESS_PROMOTE: return mlreg_auth_check(who, MLREG_ROLE_PROMOTE, stage, name);
    case ROUTE_ACCESS_ADMIN: return mlreg_auth_check(who, MLREG_ROLE_ADMIN, NULL, NULL);
    case ROUTE_ACCESS_IMAGES:
        if (may_bind_images(who, policy, name)) return 0;
        return mlreg_auth_check(who, MLREG_ROLE_PUSH, NULL, name);
    case ROUTE_ACCESS_WITHDRAW:
        if (may_promote_some(who, policy, name)) return 0;
        return mlreg_error_set(MLREG_EFORBIDDEN,
                               "token '%s' may not withdraw releases of '%s': that needs role "
                               "promote:STAGE for the stages holding the release (or admin)",
                               mlreg_identity_name(who), name ? name : "");
    case ROUTE_ACCESS_ADMIN_MODEL: return mlreg_auth_check(who, MLREG_ROLE_ADMIN, NULL, name);
    case ROUTE_ACCESS_READ_SOME: return mlreg_auth_check_some(who, MLREG_ROLE_READ);
    case ROUTE_ACCESS_UNSET: break;
    }
    return mlreg_error_set(MLREG_EFORBIDDEN, "route %s has no role rule", row->pattern);
}
