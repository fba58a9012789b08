/* ls.c: `mlreg ls [PREFIX]` (the models and what their stages hold) and
 * `mlreg versions MODEL` (a model's releases, newest first, paged through
 * GET /api/v1/models/MODEL?order=&n=&last=). Tables for people; --json for
 * scripts. Everything printed from the registry follows the text rule.
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
#include "mlreg/names.h"
#include "mlreg/text.h"

static const char ls_usage[] =
    "usage: mlreg ls [PREFIX] [--json] [--registry URL] [--token-file FILE]\n"
    "\n"
    "Lists the models (those under PREFIX: the model PREFIX and the models\n"
    "PREFIX/...), each with its number of releases, the latest one, and what\n"
    "each stage holds (STAGE=VERSION; '-' for an empty stage).\n"
    "  --json            print {\"models\":[{\"name\",\"releases\",\"latest\",\"stages\"}]}\n"
    "  --registry URL    the registry (default $MLREG_URL, else http://127.0.0.1:5080)\n"
    "  --token-file FILE the API token (or $MLREG_TOKEN); needs read on every model\n"
    "\n"
    "example: mlreg ls vision\n"
    "         mlreg ls --json | jq -r '.models[].name'\n";

static const char versions_usage[] =
    "usage: mlreg versions MODEL [--limit N] [--after VERSION] [--oldest-first] [--json]\n"
    "                      [--registry URL] [--token-file FILE]\n"
    "\n"
    "Lists the releases of MODEL, newest first (push order reversed), with when\n"
    "each was pushed, its git commit, size, how many signatures count (trusted\n"
    "release keys) of those attached, the stages holding it, and whether it is\n"
    "withdrawn or purged. The registry is asked in pages.\n"
    "  --limit N         at most N releases (default: all); when more remain,\n"
    "                    stderr says how to ask for the next ones\n"
    "  --after VERSION   start after VERSION (in the order shown)\n"
    "  --oldest-first    push order instead\n"
    "  --json            print {\"model\",\"releases\":[...],\"more\"}\n"
    "  --registry URL    the registry (default $MLREG_URL, else http://127.0.0.1:5080)\n"
    "  --token-file FILE the API token (or $MLREG_TOKEN)\n"
    "\n"
    "example: mlreg versions vision/det --limit 10\n"
    "         mlreg versions vision/det --limit 10 --after 1.4.0\n";

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

/* "dev=1.0 staging=- production=2.1" of a stages answer into @p buf. */
static void stages_line(char *buf, size_t len, const json_t *stages)
{
    const json_t *st;
    size_t i, used = 0;

    buf[0] = '\0';
    json_array_foreach(stages, i, st)
    {
        int w = snprintf(buf + used, len - used, "%s%s=%s", used ? " " : "",
                         find_str(st, "stage", "?"), find_str(st, "version", "-"));
        if (w < 0 || (size_t)w >= len - used) return;
        used += (size_t)w;
    }
    if (!used) snprintf(buf, len, "-");
}

int cmd_ls(int argc, char **argv)
{
    const char *prefix = NULL, *registry = NULL;
    json_t *models = NULL, *m, *stages = NULL, *out = NULL;
    cli_client *c = NULL;
    int error = 0, as_json = 0, r;
    size_t i, w = 5;
    char path[600];

    if (wants_help(argc, argv)) {
        fputs(ls_usage, stdout);
        return CLI_EXIT_OK;
    }
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--json")) {
            as_json = 1;
            continue;
        }
        if ((r = cli_opt(&registry, &a, argc, argv, "--registry")) != 0) {
            if (r < 0) goto usage;
            continue;
        }
        if (cli_positional(&prefix, argv[a]) < 0) goto usage;
    }
    if (prefix && *prefix && strcmp(prefix, "/")) {
        char tmp[512];
        size_t n = strlen(prefix);
        if (n >= sizeof(tmp)) {
            mlreg_error_set(MLREG_EINVALID, "PREFIX is too long");
            goto usage;
        }
        memcpy(tmp, prefix, n + 1);
        while (n > 0 && tmp[n - 1] == '/')
            tmp[--n] = '\0';
        if (mlreg_name_validate(tmp) < 0) {
            mlreg_error_set(MLREG_EINVALID, "'%s' is not a model name or prefix",
                            mlreg_text_printable(prefix));
            goto usage;
        }
    }
    if ((error = cli_client_new(&c, registry)) < 0) goto done;
    if ((error = find_models(&models, c, prefix)) < 0) goto done;
    json_array_foreach(models, i, m)
    {
        snprintf(path, sizeof(path), "/api/v1/models/%s/stages",
                 json_string_value(json_object_get(m, "name")));
        if ((error = find_get(&stages, c, path, "fetching the stages")) < 0) goto done;
        if (json_object_set(m, "stages", json_object_get(stages, "stages")) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        json_decref(stages);
        stages = NULL;
        if (strlen(find_str(m, "name", "?")) > w) w = strlen(find_str(m, "name", "?"));
    }
    if (as_json) {
        if (!(out = json_pack("{s:O}", "models", models))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        error = find_print_json(out);
        goto done;
    }
    if (json_array_size(models) == 0) {
        fprintf(stderr, "no models%s%s\n", prefix ? " under " : "",
                prefix ? mlreg_text_printable(prefix) : "");
    } else {
        printf("%-*s  %8s  %-12s  %s\n", (int)w, "MODEL", "RELEASES", "LATEST", "STAGES");
    }
    json_array_foreach(models, i, m)
    {
        char line[1024];
        json_t *latest = json_object_get(m, "latest");
        stages_line(line, sizeof(line), json_object_get(m, "stages"));
        printf("%-*s  %8" PRId64 "  %-12s  %s\n", (int)w, find_str(m, "name", "?"),
               (int64_t)json_integer_value(json_object_get(m, "releases")),
               find_str(latest, "version", "-"), line);
    }
    error = cli_flush_stdout();
done:
    json_decref(out);
    json_decref(stages);
    json_decref(models);
    cli_client_free(c);
    return error < 0 ? cli_fail("ls", error) : CLI_EXIT_OK;
usage:
    find_usage_error("ls", ls_usage);
    return CLI_EXIT_USAGE;
}

/* The SIGNED column: "yes (N)" when N signatures count, "no" when none
 * does (with how many are attached, if any). */
static void signed_col(char *buf, size_t len, const json_t *r)
{
    json_int_t n = json_integer_value(json_object_get(r, "signed"));
    json_int_t all = json_integer_value(json_object_get(r, "signatures"));

    if (n > 0)
        snprintf(buf, len, "yes (%" PRId64 ")", (int64_t)n);
    else if (all > 0)
        snprintf(buf, len, "no (%" PRId64 " untrusted)", (int64_t)all);
    else
        snprintf(buf, len, "no");
}

/* Comma-separated stage names of a release summary, "-" for none. */
static void stage_names(char *buf, size_t len, const json_t *r)
{
    const json_t *s;
    size_t i, used = 0;

    buf[0] = '\0';
    json_array_foreach(json_object_get(r, "stages"), i, s)
    {
        const char *name = json_string_value(s);
        int w =
            snprintf(buf + used, len - used, "%s%s", used ? "," : "", mlreg_text_printable(name));
        if (w < 0 || (size_t)w >= len - used) return;
        used += (size_t)w;
    }
    if (!used) snprintf(buf, len, "-");
}

static void print_versions(const json_t *releases)
{
    const json_t *r;
    size_t i, vw = 7;

    json_array_foreach(releases, i, r)
    {
        size_t n = strlen(find_str(r, "version", "?"));
        if (n > vw) vw = n;
    }
    printf("%-*s  %-20s  %-7s  %10s  %-8s  %-16s  %s\n", (int)vw, "VERSION", "PUSHED", "GIT",
           "SIZE", "SIGNED", "STAGES", "WITHDRAWN");
    json_array_foreach(releases, i, r)
    {
        char t[24], size[32], sig[40], st[256], git[16];
        const json_t *wd = json_object_get(r, "withdrawn");
        json_int_t bytes = json_integer_value(json_object_get(r, "size"));
        cli_format_size(size, sizeof(size), bytes > 0 ? (uint64_t)bytes : 0);
        signed_col(sig, sizeof(sig), r);
        stage_names(st, sizeof(st), r);
        snprintf(git, sizeof(git), "%.7s", find_str(r, "git_sha", "-"));
        printf("%-*s  %-20s  %-7s  %10s  %-8s  %-16s  %s\n", (int)vw, find_str(r, "version", "?"),
               find_time(t, r, "created"), git, size, sig, st,
               json_is_object(json_object_get(r, "purged")) ? "purged"
               : json_is_object(wd)                         ? "yes"
                                                            : "-");
    }
}

int cmd_versions(int argc, char **argv)
{
    const char *model = NULL, *registry = NULL, *limit_s = NULL, *after = NULL;
    json_t *releases = NULL, *out = NULL;
    cli_client *c = NULL;
    int error = 0, as_json = 0, oldest = 0, more = 0, r;
    unsigned long long limit = 0;

    if (wants_help(argc, argv)) {
        fputs(versions_usage, stdout);
        return CLI_EXIT_OK;
    }
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--json")) {
            as_json = 1;
            continue;
        }
        if (!strcmp(argv[a], "--oldest-first")) {
            oldest = 1;
            continue;
        }
        if ((r = cli_opt(&registry, &a, argc, argv, "--registry")) != 0 ||
            (r = cli_opt(&limit_s, &a, argc, argv, "--limit")) != 0 ||
            (r = cli_opt(&after, &a, argc, argv, "--after")) != 0) {
            if (r < 0) goto usage;
            continue;
        }
        if (cli_positional(&model, argv[a]) < 0) goto usage;
    }
    if (model == NULL) {
        mlreg_error_set(MLREG_EINVALID, "missing MODEL");
        goto usage;
    }
    if (mlreg_name_validate(model) < 0) {
        mlreg_error_set(MLREG_EINVALID, "'%s' is not a valid model name",
                        mlreg_text_printable(model));
        goto usage;
    }
    if (limit_s != NULL) {
        char *end;
        errno = 0;
        limit = strtoull(limit_s, &end, 10);
        if (!*limit_s || *end || errno || limit_s[0] == '-' || limit < 1 || limit > 1000000) {
            mlreg_error_set(MLREG_EINVALID, "--limit must be a number from 1 to 1000000");
            goto usage;
        }
    }
    if (after != NULL && mlreg_tag_validate(after) < 0) {
        mlreg_error_set(MLREG_EINVALID, "--after '%s' is not a version",
                        mlreg_text_printable(after));
        goto usage;
    }
    if ((error = cli_client_new(&c, registry)) < 0) goto done;
    if ((error = find_releases(&releases, &more, c, model, !oldest, after, (size_t)limit, 100)) < 0)
        goto done;
    if (as_json) {
        if (!(out = json_pack("{s:s, s:O, s:b}", "model", model, "releases", releases, "more",
                              more))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        error = find_print_json(out);
    } else {
        print_versions(releases);
        error = cli_flush_stdout();
    }
    if (error == 0 && more) {
        const json_t *lastr = json_array_get(releases, json_array_size(releases) - 1);
        fprintf(stderr, "more releases: mlreg versions %s --limit %llu --after %s%s\n", model,
                limit, find_str(lastr, "version", "?"), oldest ? " --oldest-first" : "");
    }
done:
    json_decref(out);
    json_decref(releases);
    cli_client_free(c);
    return error < 0 ? cli_fail("versions", error) : CLI_EXIT_OK;
usage:
    find_usage_error("versions", versions_usage);
    return CLI_EXIT_USAGE;
}
