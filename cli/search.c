/* search.c: `mlreg search`: the releases whose metrics meet conditions,
 * optionally only those a stage holds and only under a model prefix.
 *
 * The search runs in the client over the list endpoints: GET
 * /api/v1/models, then each matching model's releases (paged, as `mlreg
 * versions` reads them), so it costs one request per model plus one per
 * 100 releases; the registry needs no index of metrics for it. A release
 * matches when every condition holds (a missing metric fails its
 * condition). Purged releases are never listed (their metrics are gone
 * with them).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "find.h"
#include "metric_filter.h"
#include "mlreg/common.h"
#include "mlreg/names.h"
#include "mlreg/text.h"

/* More conditions than anyone types; bounds the work a script can ask for. */
#define SEARCH_MAX_FILTERS 32

static const char search_usage[] =
    "usage: mlreg search [--metric NAME>VALUE]... [--stage STAGE] [--model PREFIX]\n"
    "                    [--json] [--registry URL] [--token-file FILE]\n"
    "\n"
    "Lists the releases, newest first per model, whose metrics meet every\n"
    "condition. A condition is NAME OP VALUE with OP one of > >= < <= = (quote\n"
    "it: > and < are shell redirections) and VALUE a finite number; a release\n"
    "without the metric does not match. The search runs in the client over the\n"
    "registry's list endpoints (one request per model).\n"
    "  --metric COND     a condition (repeatable, at most 32; all must hold)\n"
    "  --stage STAGE     only the release STAGE holds now, per model\n"
    "  --model PREFIX    only the models PREFIX and PREFIX/...\n"
    "  --json            print {\"results\":[{\"model\",...release...}],\"models\",\"releases\"}\n"
    "  --registry URL    the registry (default $MLREG_URL, else http://127.0.0.1:5080)\n"
    "  --token-file FILE the API token (or $MLREG_TOKEN); needs read on every model\n"
    "Exit 0 when some release matches, 1 when none does, 2 usage, 3 registry.\n"
    "\n"
    "example: mlreg search --metric 'accuracy>0.9' --stage production\n"
    "         mlreg search --model vision --metric 'f1>=0.8' --metric 'latency_ms<20' --json\n";

/* "name=value ..." of the metrics the conditions name (all when none). */
static void metrics_cols(char *buf, size_t len, const json_t *metrics, const cli_metric_filter *f,
                         size_t nf)
{
    size_t used = 0;
    const char *k;
    json_t *v;

    buf[0] = '\0';
    json_object_foreach((json_t *)metrics, k, v)
    {
        char num[64];
        size_t i;
        int w;
        for (i = 0; i < nf && strcmp(f[i].name, k); i++)
            ;
        if (nf && i == nf) continue;
        w = snprintf(buf + used, len - used, "%s%s=%s", used ? " " : "", mlreg_text_printable(k),
                     find_num(num, sizeof(num), v));
        if (w < 0 || (size_t)w >= len - used) return;
        used += (size_t)w;
    }
    if (!used) snprintf(buf, len, "-");
}

/* 1 when @p r, a release summary, is kept. */
static int matches(const json_t *r, const cli_metric_filter *f, size_t nf, const char *stage)
{
    const json_t *s;
    size_t i;
    int in_stage = stage == NULL;

    if (!json_is_null(json_object_get(r, "purged")) && json_object_get(r, "purged")) return 0;
    json_array_foreach(json_object_get(r, "stages"), i, s)
    {
        if (stage && json_is_string(s) && !strcmp(json_string_value(s), stage)) in_stage = 1;
    }
    if (!in_stage) return 0;
    for (i = 0; i < nf; i++)
        if (!cli_metric_filter_match(&f[i], json_object_get(r, "metrics"))) return 0;
    return 1;
}

int cmd_search(int argc, char **argv)
{
    const char *registry = NULL, *stage = NULL, *prefix = NULL, *cond;
    cli_metric_filter f[SEARCH_MAX_FILTERS];
    size_t nf = 0, i, j, nrel = 0;
    json_t *models = NULL, *m, *rels = NULL, *r, *results = NULL, *out = NULL;
    cli_client *c = NULL;
    int error = 0, as_json = 0, o;

    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            fputs(search_usage, stdout);
            return CLI_EXIT_OK;
        }
    }
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--json")) {
            as_json = 1;
            continue;
        }
        if ((o = cli_opt(&cond, &a, argc, argv, "--metric")) != 0) {
            if (o < 0) goto usage;
            if (nf == SEARCH_MAX_FILTERS) {
                mlreg_error_set(MLREG_EINVALID, "at most %d --metric conditions",
                                SEARCH_MAX_FILTERS);
                goto usage;
            }
            if (cli_metric_filter_parse(&f[nf++], cond) < 0) goto usage;
            continue;
        }
        if ((o = cli_opt(&registry, &a, argc, argv, "--registry")) != 0 ||
            (o = cli_opt(&stage, &a, argc, argv, "--stage")) != 0 ||
            (o = cli_opt(&prefix, &a, argc, argv, "--model")) != 0) {
            if (o < 0) goto usage;
            continue;
        }
        mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", mlreg_text_printable(argv[a]));
        goto usage;
    }
    if (stage && mlreg_tag_validate(stage) < 0) {
        mlreg_error_set(MLREG_EINVALID, "--stage '%s' is not a stage name",
                        mlreg_text_printable(stage));
        goto usage;
    }
    if (prefix && mlreg_name_validate(prefix) < 0) {
        mlreg_error_set(MLREG_EINVALID, "--model '%s' is not a model name or prefix",
                        mlreg_text_printable(prefix));
        goto usage;
    }
    if (!(results = json_array())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = cli_client_new(&c, registry)) < 0) goto done;
    if ((error = find_models(&models, c, prefix)) < 0) goto done;
    json_array_foreach(models, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        if ((error = find_releases(&rels, NULL, c, name, 1, NULL, 0, 100)) < 0) goto done;
        nrel += json_array_size(rels);
        json_array_foreach(rels, j, r)
        {
            if (!matches(r, f, nf, stage)) continue;
            if (json_object_set_new(r, "model", json_string(name)) < 0 ||
                json_array_append(results, r) < 0) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
                goto done;
            }
        }
        json_decref(rels);
        rels = NULL;
    }
    if (as_json) {
        if (!(out = json_pack("{s:O, s:I, s:I}", "results", results, "models",
                              (json_int_t)json_array_size(models), "releases", (json_int_t)nrel))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        if ((error = find_print_json(out)) < 0) goto done;
    } else {
        size_t w = 5;
        json_array_foreach(results, i, r)
        {
            char mv[600];
            snprintf(mv, sizeof(mv), "%s@%s", find_str(r, "model", "?"),
                     find_str(r, "version", "?"));
            if (strlen(mv) > w) w = strlen(mv);
        }
        if (json_array_size(results))
            printf("%-*s  %-20s  %-16s  %s\n", (int)w, "RELEASE", "PUSHED", "STAGES", "METRICS");
        json_array_foreach(results, i, r)
        {
            char mv[600], t[24], st[256], met[1024];
            const json_t *s;
            size_t used = 0, k;
            snprintf(mv, sizeof(mv), "%s@%s", find_str(r, "model", "?"),
                     find_str(r, "version", "?"));
            st[0] = '\0';
            json_array_foreach(json_object_get(r, "stages"), k, s)
            {
                int n = snprintf(st + used, sizeof(st) - used, "%s%s", used ? "," : "",
                                 mlreg_text_printable(json_string_value(s)));
                if (n < 0 || (size_t)n >= sizeof(st) - used) break;
                used += (size_t)n;
            }
            if (!used) snprintf(st, sizeof(st), "-");
            metrics_cols(met, sizeof(met), json_object_get(r, "metrics"), f, nf);
            printf("%-*s  %-20s  %-16s  %s%s\n", (int)w, mv, find_time(t, r, "created"), st, met,
                   json_is_object(json_object_get(r, "withdrawn")) ? "  (withdrawn)" : "");
        }
        if ((error = cli_flush_stdout()) < 0) goto done;
    }
    if (json_array_size(results) == 0)
        fprintf(stderr, "no release matches (%zu models, %zu releases searched)\n",
                json_array_size(models), nrel);
done:
    json_decref(out);
    json_decref(rels);
    json_decref(models);
    {
        size_t found = json_array_size(results);
        json_decref(results);
        cli_client_free(c);
        if (error < 0) return cli_fail("search", error);
        return found ? CLI_EXIT_OK : CLI_EXIT_REFUSED;
    }
usage:
    find_usage_error("search", search_usage);
    return CLI_EXIT_USAGE;
}
