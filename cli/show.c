/* show.c: `mlreg show REF` (one release) and `mlreg status MODEL` (a model's
 * stages, last promotions and releases), read from the registry's /api/v1
 * JSON (shapes in registry.h and docs/promotions-api.md). Tables for people;
 * --json prints the server's JSON for machines (status merges its three
 * answers into one object).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "find.h"
#include "mlreg/common.h"
#include "mlreg/json_out.h"
#include "mlreg/registry.h"
#include "mlreg/text.h"
#include "ref.h"

#define API_MAX (64u * 1024 * 1024)

static const char show_usage[] =
    "usage: mlreg show MODEL@VERSION|MODEL@sha256:HEX|MODEL:STAGE [--at TIME] [--json]\n"
    "                  [--registry URL] [--token-file FILE]\n"
    "\n"
    "Describes one release: digest, who pushed it and when, git sha, files,\n"
    "metrics (with their confidence intervals), the eval report's dataset and code\n"
    "digests, the evaluations attached by evaluators (how many, and the newest by\n"
    "a trusted evaluator key), withdrawal. MODEL:STAGE shows the release the\n"
    "stage holds now, or held at --at TIME (RFC 3339).\n"
    "  --at TIME    with MODEL:STAGE only: e.g. --at 2026-11-26T10:00:00Z\n"
    "  --json       the registry's JSON of the release plus \"evaluations\" (its\n"
    "               evaluations list, left out when the registry has no such list),\n"
    "               e.g. mlreg show team/clf@1.4 --json\n"
    "  --registry   e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "e.g. mlreg show team/clf:production\n"
    "     mlreg show team/clf@sha256:4f2a...\n";
static const char status_usage[] =
    "usage: mlreg status MODEL [--json] [--registry URL] [--token-file FILE]\n"
    "\n"
    "Prints every stage of MODEL (release, since when, by whom, recorded image),\n"
    "the last promotions and rollbacks (passed or refused), then the releases.\n"
    "--json prints {\"model\", \"stages\", \"promotions\", \"releases\"}.\n"
    "\n"
    "example: mlreg status vision/det --json --registry https://mlreg.example.com\n";

/* How many of the most recent promotions status prints. */
#define STATUS_PROMOTIONS 10

/* GETs @p path; *out is the parsed JSON, @p resp keeps the raw body. */
static int api_get(json_t **out, cli_response *resp, cli_client *c, const char *path,
                   const char *what)
{
    json_error_t jerr;
    int error;

    *out = NULL;
    cli_request req = {.method = "GET",
                       .url = path,
                       .accept = "application/json",
                       .body_fd = -1,
                       .max_body = API_MAX};
    if ((error = cli_request_do(resp, c, &req)) < 0) return error;
    if (resp->status != 200) return cli_http_error(resp, what);
    if (!(*out = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, &jerr)))
        return mlreg_error_set(MLREG_ESERVER, "%s: registry sent invalid JSON: %s", what,
                               jerr.text);
    return 0;
}

static uint64_t uint_or0(json_t *obj, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(obj, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* "sha256:" plus the first 12 hex digits, as people quote digests. */
static void short_digest(char *buf, size_t len, const char *digest)
{
    snprintf(buf, len, "%.19s", digest ? digest : "-");
}

/* Writes "name=value name=value" of up to @p max metrics into @p buf. */
static void metrics_line(char *buf, size_t len, json_t *metrics, size_t max)
{
    const char *key;
    json_t *val;
    size_t used = 0, n = 0;

    buf[0] = '\0';
    json_object_foreach(metrics, key, val)
    {
        char num[MLREG_JSON_REAL_MAX];

        if (n == max) {
            snprintf(buf + used, len - used, "%s...", used ? " " : "");
            return;
        }
        mlreg_json_number_text(num, sizeof(num), val);
        int w = snprintf(buf + used, len - used, "%s%s=%s", used ? " " : "",
                         mlreg_text_printable(key), num);
        if (w < 0 || (size_t)w >= len - used) return;
        used += (size_t)w;
        n++;
    }
    if (!used) snprintf(buf, len, "-");
}

/* " [ci_low, ci_high]" of the interval @p ci, or "" when it is not one. */
static void interval_text(char *buf, size_t len, json_t *ci)
{
    json_t *lo = json_object_get(ci, "ci_low"), *hi = json_object_get(ci, "ci_high");
    char a[MLREG_JSON_REAL_MAX], b[MLREG_JSON_REAL_MAX];

    buf[0] = '\0';
    if (!json_is_number(lo) || !json_is_number(hi)) return;
    mlreg_json_number_text(a, sizeof(a), lo);
    mlreg_json_number_text(b, sizeof(b), hi);
    snprintf(buf, len, " [%s, %s]", a, b);
}

/* "              metrics  name=value ..." of an evaluation. */
static void metrics_line_print(json_t *metrics)
{
    char line[512];

    metrics_line(line, sizeof(line), metrics, 8);
    printf("              metrics %s\n", line);
}

/* The evaluation gates would use now: the newest (highest seq) whose key
 * counts (docs/evaluations.md), or NULL. */
static json_t *newest_trusted(json_t *evals)
{
    json_t *e, *best = NULL;
    size_t i;

    json_array_foreach(evals, i, e)
    {
        if (!json_is_true(json_object_get(e, "counts"))) continue;
        if (best == NULL || uint_or0(e, "seq") > uint_or0(best, "seq")) best = e;
    }
    return best;
}

/* The evaluations line(s): how many, and the one in force. @p evals NULL:
 * the registry lists none (it predates evaluations). */
static void print_evaluations(json_t *evals)
{
    json_t *best = newest_trusted(evals);
    size_t n = json_array_size(evals);
    char when[24];

    if (evals == NULL) {
        printf("evaluations   - (the registry does not list evaluations)\n");
        return;
    }
    if (n == 0) {
        printf("evaluations   none\n");
        return;
    }
    printf("evaluations   %zu", n);
    if (best == NULL) {
        printf(", none by a trusted evaluator key\n");
        return;
    }
    printf(", newest by a trusted evaluator: %s (%s) evaluated at %s, audit entry %" PRIu64 "\n",
           find_str(best, "key_name", "-"), find_str(best, "key_id", "-"),
           find_time(when, best, "evaluated_at"), uint_or0(best, "seq"));
    if (json_is_string(json_object_get(best, "dataset_digest")) ||
        json_is_string(json_object_get(best, "eval_code_digest")))
        printf("              on dataset %s, eval code %s\n", find_str(best, "dataset_digest", "-"),
               find_str(best, "eval_code_digest", "-"));
    metrics_line_print(json_object_get(best, "metrics"));
}

static void print_release(json_t *r, json_t *evals)
{
    json_t *metrics = json_object_get(r, "metrics"), *files = json_object_get(r, "files"), *f;
    json_t *intervals = json_object_get(r, "metric_intervals");
    const char *key;
    json_t *val;
    size_t i, width = 0;
    uint64_t total = 0;
    char size_str[32], dig[32];

    printf("release       %s@%s\n", find_str(r, "model", "?"), find_str(r, "version", "?"));
    if (json_is_object(json_object_get(r, "withdrawn"))) {
        json_t *w = json_object_get(r, "withdrawn");
        printf("WITHDRAWN     by %s at %s: %s\n", find_str(w, "by", "?"), find_str(w, "time", "?"),
               find_str(w, "reason", "?"));
    }
    printf("digest        %s\n", find_str(r, "digest", "-"));
    printf("created       %s\n", find_str(r, "created", "-"));
    printf("git sha       %s%s\n", find_str(r, "git_sha", "-"),
           json_is_true(json_object_get(r, "git_dirty")) ? " (dirty: uncommitted changes)" : "");
    printf("eval dataset  %s\n", find_str(r, "eval_dataset", "-"));
    if (json_is_string(json_object_get(r, "eval_dataset_digest")))
        printf("  digest      %s\n", find_str(r, "eval_dataset_digest", "-"));
    if (json_is_string(json_object_get(r, "eval_code_digest")))
        printf("eval code     %s\n", find_str(r, "eval_code_digest", "-"));
    json_object_foreach(metrics, key, val)
    {
        if (strlen(mlreg_text_printable(key)) > width) width = strlen(mlreg_text_printable(key));
    }
    if (json_object_size(metrics) == 0) printf("metrics       -\n");
    i = 0;
    json_object_foreach(metrics, key, val)
    {
        char num[MLREG_JSON_REAL_MAX], ci[2 * MLREG_JSON_REAL_MAX + 8];

        mlreg_json_number_text(num, sizeof(num), val);
        interval_text(ci, sizeof(ci), json_object_get(intervals, key));
        printf("%-14s%-*s  %s%s\n", i++ ? "" : "metrics", (int)width, mlreg_text_printable(key),
               num, ci);
    }
    print_evaluations(evals);
    json_array_foreach(files, i, f)
    {
        total += uint_or0(f, "size");
    }
    cli_format_size(size_str, sizeof(size_str), total);
    printf("files         %zu, %s\n", json_array_size(files), size_str);
    if (json_array_size(files))
        printf("  %-11s  %10s  %-19s  %s\n", "KIND", "SIZE", "DIGEST", "TITLE");
    json_array_foreach(files, i, f)
    {
        cli_format_size(size_str, sizeof(size_str), uint_or0(f, "size"));
        short_digest(dig, sizeof(dig), find_str(f, "digest", "-"));
        printf("  %-11s  %10s  %-19s  %s\n", find_str(f, "kind", "-"), size_str, dig,
               find_str(f, "title", "-"));
    }
}

/* The stages section: one line per stage in config order. */
static void print_stages(json_t *stages)
{
    json_t *st;
    size_t i, sw = 5, vw = 7;

    if (!json_array_size(stages)) return;
    json_array_foreach(stages, i, st)
    {
        size_t n = strlen(find_str(st, "stage", "?")), v = strlen(find_str(st, "version", "-"));
        if (n > sw) sw = n;
        if (v > vw) vw = v;
    }
    printf("stages:\n");
    printf("  %-*s  %-*s  %-19s  %-24s  %-16s  %s\n", (int)sw, "STAGE", (int)vw, "VERSION",
           "DIGEST", "SINCE", "BY", "IMAGE");
    json_array_foreach(stages, i, st)
    {
        char dig[32], since[24];
        short_digest(dig, sizeof(dig), find_str(st, "digest", "-"));
        printf("  %-*s  %-*s  %-19s  %-24s  %-16s  %s\n", (int)sw, find_str(st, "stage", "?"),
               (int)vw, find_str(st, "version", "-"), dig, find_time(since, st, "since"),
               find_str(st, "by", "-"), find_str(st, "image", "-"));
    }
}

/* The last STATUS_PROMOTIONS promotions and rollbacks, oldest first. */
static void print_promotions(json_t *promotions)
{
    json_t *p;
    size_t n = json_array_size(promotions),
           first = n > STATUS_PROMOTIONS ? n - STATUS_PROMOTIONS : 0;

    if (!n) {
        printf("promotions: none\n");
        return;
    }
    printf("last promotions (%zu of %zu):\n", n - first, n);
    printf("  %5s  %-24s  %-8s  %-12s  %-16s  %-16s  %-8s  %s\n", "SEQ", "TIME", "ACTION", "TO",
           "VERSION", "BY", "RESULT", "REASON");
    for (size_t i = first; i < n; i++) {
        char when[24];
        p = json_array_get(promotions, i);
        printf("  %5lld  %-24s  %-8s  %-12s  %-16s  %-16s  %-8s  %s\n",
               (long long)json_integer_value(json_object_get(p, "seq")), find_time(when, p, "time"),
               find_str(p, "action", "-"), find_str(p, "to", "-"), find_str(p, "version", "-"),
               find_str(p, "actor", "-"),
               json_is_true(json_object_get(p, "passed")) ? "passed" : "refused",
               find_str(p, "reason", "-"));
    }
}

/* The withdrawn, then the purged releases, one line each, after the
 * releases table. */
static void print_withdrawn(json_t *releases)
{
    static const char *const what[] = {"withdrawn", "purged"};
    json_t *r, *w;
    size_t i, k, n;

    for (k = 0; k < 2; k++) {
        n = 0;
        json_array_foreach(releases, i, r)
        {
            if (!json_is_object(w = json_object_get(r, what[k]))) continue;
            if (n++ == 0) printf("%s:\n", what[k]);
            printf("  %s  %s by %s at %s (audit entry %lld): %s\n", find_str(r, "version", "-"),
                   k ? "PURGED" : "WITHDRAWN", find_str(w, "by", "?"), find_str(w, "time", "?"),
                   (long long)json_integer_value(json_object_get(w, "seq")),
                   find_str(w, "reason", "?"));
        }
    }
}

static void print_model(json_t *model, json_t *stages, json_t *promotions)
{
    json_t *releases = json_object_get(model, "releases"), *r;
    size_t i, vw = 7;
    char size_str[32], dig[32], metrics[256], git[16];

    printf("model %s: %zu release%s\n", find_str(model, "name", "?"), json_array_size(releases),
           json_array_size(releases) == 1 ? "" : "s");
    print_stages(stages);
    if (promotions) print_promotions(promotions);
    if (!json_array_size(releases)) return;
    if (stages || promotions) printf("releases:\n");
    json_array_foreach(releases, i, r)
    {
        size_t n = strlen(find_str(r, "version", "-"));
        if (n > vw) vw = n;
    }
    printf("%-*s  %-19s  %-20s  %-7s  %5s  %10s  %s\n", (int)vw, "VERSION", "DIGEST", "CREATED",
           "GIT", "FILES", "SIZE", "METRICS");
    json_array_foreach(releases, i, r)
    {
        cli_format_size(size_str, sizeof(size_str), uint_or0(r, "size"));
        short_digest(dig, sizeof(dig), find_str(r, "digest", "-"));
        snprintf(git, sizeof(git), "%.7s", find_str(r, "git_sha", "-"));
        metrics_line(metrics, sizeof(metrics), json_object_get(r, "metrics"), 4);
        printf("%-*s  %-19s  %-20s  %-7s  %5" PRIu64 "  %10s  %s\n", (int)vw,
               find_str(r, "version", "-"), dig, find_str(r, "created", "-"), git,
               uint_or0(r, "files"), size_str, metrics);
    }
    print_withdrawn(releases);
}

static int list_get(json_t **out, json_t **next_out, size_t *bytes_out, cli_client *c,
                    const char *path, const char *key, const char *what);

/* The evaluations of @p model@@p version into *out (a new reference), NULL
 * when the registry answers 404 (it predates evaluations). */
static int evaluations_get(json_t **out, cli_client *c, const char *model, const char *version,
                           const char *what)
{
    char path[600], msg[450];

    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/evaluations", model, version);
    snprintf(msg, sizeof(msg), "%s: fetching the evaluations", what);
    return list_get(out, NULL, NULL, c, path, "evaluations", msg);
}

/* Shared option parsing: one positional argument, --json, --registry. */
static int parse(const char **arg_out, int *json_out, const char **registry, const char **at,
                 int argc, char **argv)
{
    int m;

    *arg_out = NULL;
    *json_out = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            *json_out = 1;
        } else if ((m = cli_opt(registry, &i, argc, argv, "--registry")) != 0 ||
                   (at && (m = cli_opt(at, &i, argc, argv, "--at")) != 0)) {
            if (m < 0) return MLREG_EINVALID;
        } else if ((m = cli_positional(arg_out, argv[i])) < 0) {
            return m;
        }
    }
    if (!*arg_out) return mlreg_error_set(MLREG_EINVALID, "missing argument");
    return 0;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

int cmd_show(int argc, char **argv)
{
    int error = 0, as_json;
    const char *refstr, *registry = NULL, *at = NULL;
    cli_release_ref rr;
    cli_client *c = NULL;
    cli_response resp;
    json_t *rel = NULL, *evals = NULL;
    char path[600], what[400];

    if (wants_help(argc, argv)) {
        fputs(show_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (parse(&refstr, &as_json, &registry, &at, argc, argv) < 0 ||
        cli_release_ref_parse(&rr, refstr) < 0 || (at && cli_release_ref_at(&rr, at) < 0)) {
        fprintf(stderr, "mlreg show: %s\n%s", mlreg_error_last(), show_usage);
        return CLI_EXIT_USAGE;
    }
    cli_response_init(&resp);
    if ((error = cli_client_new(&c, registry)) < 0 || (error = cli_release_ref_pin(&rr, c)) < 0)
        goto done;
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s", rr.ref.model, rr.ref.version);
    snprintf(what, sizeof(what), "%s@%s", rr.ref.model, rr.ref.version);
    if ((error = api_get(&rel, &resp, c, path, what)) < 0) goto done;
    if (rr.digest[0] && strcmp(find_str(rel, "digest", ""), rr.digest)) {
        error = mlreg_error_set(MLREG_EMISMATCH, "%s is %s, not %s", what,
                                find_str(rel, "digest", "-"), rr.digest);
        goto done;
    }
    if ((error = evaluations_get(&evals, c, rr.ref.model, rr.ref.version, what)) < 0) goto done;
    if (as_json) {
        /* the release as the registry sent it, plus "evaluations" (not
         * when the registry predates them) */
        char *text;
        if ((evals && json_object_set(rel, "evaluations", evals) < 0) ||
            !(text = mlreg_json_dumps(rel, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        cli_print_json(text, strlen(text));
        free(text);
    } else {
        print_release(rel, evals);
    }
done:
    error = cli_release_ref_hint(error, c, &rr);
    json_decref(evals);
    json_decref(rel);
    cli_response_clear(&resp);
    cli_client_free(c);
    return error < 0 ? cli_fail("show", error) : CLI_EXIT_OK;
}

/* GETs the list @p key of @p path (an /api/v1 answer {"KEY": [...]}) into
 * *out (a new reference), and into *next_out (may be NULL) its "next"
 * member (a new reference, NULL when absent). A 404 leaves *out NULL: the
 * model exists (its record was just read), so the registry predates stages
 * and there is nothing to show. */
static int list_get(json_t **out, json_t **next_out, size_t *bytes_out, cli_client *c,
                    const char *path, const char *key, const char *what)
{
    int error;
    cli_response resp;
    json_t *j = NULL, *arr;

    *out = NULL;
    if (next_out) *next_out = NULL;
    cli_response_init(&resp);
    if ((error = cli_api_do(&j, &resp, c, "GET", path, NULL)) < 0) goto done;
    if (bytes_out) *bytes_out = resp.body_len;
    if (resp.status == 404) goto done;
    if (resp.status != 200) {
        error = cli_http_error(&resp, what);
        goto done;
    }
    if (!json_is_array(arr = json_object_get(j, key))) {
        error = mlreg_error_set(MLREG_ESERVER, "%s: registry sent no \"%s\" list", what, key);
        goto done;
    }
    *out = json_incref(arr);
    if (next_out && json_object_get(j, "next")) *next_out = json_incref(json_object_get(j, "next"));
done:
    json_decref(j);
    cli_response_clear(&resp);
    return error;
}

/* Most bytes of pages status reads: a registry that keeps sending pages
 * must not make the CLI grow without end. */
#define LIST_MAX_BYTES (256u * 1024 * 1024)

/* Like list_get() for a paged list (docs/promotions-api.md: ?since=SEQ,
 * {"KEY":[...],"next":SEQ|null}): follows "next" from 0 until it is null
 * or absent (a registry without pages answers with everything at once)
 * and concatenates the pages in order. A hostile or broken registry must
 * not keep the CLI asking for ever: a "next" that is not a number beyond
 * the page's start and its last entry's "seq", a "next" after an empty
 * page, or more than LIST_MAX_BYTES in all is a registry error. */
static int list_get_all(json_t **out, cli_client *c, const char *path, const char *key,
                        const char *what)
{
    int error = 0;
    json_t *all = NULL, *page = NULL, *next = NULL, *last;
    uint64_t since = 0;
    size_t bytes, total = 0, n;
    char url[700];

    *out = NULL;
    for (;;) {
        snprintf(url, sizeof(url), "%s?since=%" PRIu64, path, since);
        bytes = 0;
        if ((error = list_get(&page, &next, &bytes, c, url, key, what)) < 0) goto done;
        if (page == NULL) { /* 404 */
            if (all == NULL) goto done;
            error =
                mlreg_error_set(MLREG_ESERVER, "%s: the page at %" PRIu64 " is gone", what, since);
            goto done;
        }
        total += bytes;
        if (total > LIST_MAX_BYTES) {
            error = mlreg_error_set(MLREG_ESERVER, "%s: registry sent more than %u MiB", what,
                                    LIST_MAX_BYTES >> 20);
            goto done;
        }
        n = json_array_size(page);
        last = n ? json_object_get(json_array_get(page, n - 1), "seq") : NULL;
        if (next != NULL && !json_is_null(next) &&
            (n == 0 || !json_is_integer(next) || json_integer_value(next) <= 0 ||
             (uint64_t)json_integer_value(next) <= since ||
             (json_is_integer(last) && json_integer_value(next) <= json_integer_value(last)))) {
            error = mlreg_error_set(MLREG_ESERVER, "%s: registry sent a bad \"next\" page", what);
            goto done;
        }
        if (all == NULL) {
            all = page;
            page = NULL;
        } else if (json_array_extend(all, page) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        json_decref(page);
        page = NULL;
        if (next == NULL || json_is_null(next)) break;
        since = (uint64_t)json_integer_value(next);
        json_decref(next);
        next = NULL;
    }
    *out = all;
    all = NULL;
done:
    json_decref(all);
    json_decref(page);
    json_decref(next);
    return error;
}

int cmd_status(int argc, char **argv)
{
    int error = 0, as_json;
    const char *model, *registry = NULL;
    cli_client *c = NULL;
    cli_response resp;
    json_t *m = NULL, *stages = NULL, *promotions = NULL;
    char path[600];

    if (wants_help(argc, argv)) {
        fputs(status_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (parse(&model, &as_json, &registry, NULL, argc, argv) < 0) {
        fprintf(stderr, "mlreg status: %s\n%s", mlreg_error_last(), status_usage);
        return CLI_EXIT_USAGE;
    }
    if (mlreg_name_validate(model) < 0) {
        fprintf(stderr, "mlreg status: '%s' is not a valid model name\n%s", model, status_usage);
        return CLI_EXIT_USAGE;
    }
    cli_response_init(&resp);
    if ((error = cli_client_new(&c, registry)) < 0) goto done;
    snprintf(path, sizeof(path), "/api/v1/models/%s", model);
    if ((error = api_get(&m, &resp, c, path, model)) < 0) goto done;
    snprintf(path, sizeof(path), "/api/v1/models/%s/stages", model);
    if ((error = list_get(&stages, NULL, NULL, c, path, "stages", "fetching the stages")) < 0)
        goto done;
    snprintf(path, sizeof(path), "/api/v1/models/%s/promotions", model);
    if ((error = list_get_all(&promotions, c, path, "promotions", "fetching the promotions")) < 0)
        goto done;
    if (as_json) {
        /* The model record (its "name" and "releases" included) plus
         * "model", "stages" and "promotions". */
        char *text;
        if (json_object_set_new(m, "model", json_string(model)) < 0 ||
            json_object_set_new(m, "stages", stages ? json_incref(stages) : json_array()) < 0 ||
            json_object_set_new(m, "promotions",
                                promotions ? json_incref(promotions) : json_array()) < 0 ||
            !(text = mlreg_json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        cli_print_json(text, strlen(text));
        free(text);
    } else {
        print_model(m, stages, promotions);
    }
    error = cli_flush_stdout();
done:
    json_decref(stages);
    json_decref(promotions);
    json_decref(m);
    cli_response_clear(&resp);
    cli_client_free(c);
    return error < 0 ? cli_fail("status", error) : CLI_EXIT_OK;
}
