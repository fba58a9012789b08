/* diff.c: `mlreg diff REF REF`: what changed from one release to another.
 * Files are matched by title: added, removed, changed (digest or size);
 * metrics side by side with the delta (second minus first); and which gate
 * rules of a stage the second release would pass, from the registry's own
 * promotion dry run (POST /api/v1/models/M/promotions {"dry_run": true}),
 * so the answer is the one a promotion would get now: the baseline is what
 * that stage holds now, not the first release. Without the promote role
 * for that stage the gates are reported as not evaluated, with the reason.
 * Nothing is changed. Exit 0 whatever the differences.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "find.h"
#include "mlreg/common.h"
#include "mlreg/json_out.h"
#include "mlreg/names.h"
#include "mlreg/text.h"
#include "ref.h"
#include "release.h"

static const char diff_usage[] =
    "usage: mlreg diff REF REF [--stage STAGE] [--json] [--registry URL] [--token-file FILE]\n"
    "\n"
    "Compares two releases. REF is MODEL@VERSION, MODEL@sha256:HEX or MODEL:STAGE\n"
    "(what the stage holds now); the two may be of different models. Prints the\n"
    "files added, removed and changed (matched by title: digest or size differ),\n"
    "the metrics of both side by side with the delta (second minus first), and\n"
    "which gate rules of a stage the second release would pass: the registry's\n"
    "promotion dry run (nothing moves), against what that stage holds now.\n"
    "  --stage STAGE     the stage whose gates are evaluated (default: the stage\n"
    "                    after the last one holding the second release, or the\n"
    "                    first stage when none holds it); needs promote:STAGE,\n"
    "                    else the gates are reported as not evaluated\n"
    "  --json            print {\"from\",\"to\",\"files\",\"metrics\",\"gates\"}\n"
    "  --registry URL    the registry (default $MLREG_URL, else http://127.0.0.1:5080)\n"
    "  --token-file FILE the API token (or $MLREG_TOKEN)\n"
    "Exit 0 when both releases were read, whatever the differences.\n"
    "\n"
    "example: mlreg diff vision/det:production vision/det@2.1.0\n"
    "         mlreg diff vision/det@2.0.0 vision/det@2.1.0 --stage staging --json\n";

/* One side: the reference as given, its model and the release JSON. */
typedef struct {
    const char *arg;
    char model[256];
    json_t *rel; /* GET /api/v1/models/M/versions/V */
} side;

/* Reads the release @p s->arg names. */
static int side_load(side *s, cli_client *c)
{
    cli_release_ref rr;
    cli_release rel;
    char path[600];
    int error;

    cli_release_init(&rel);
    if ((error = cli_release_ref_parse(&rr, s->arg)) < 0) goto done;
    snprintf(s->model, sizeof(s->model), "%s", rr.by_stage ? rr.sref.model : rr.ref.model);
    if ((error = cli_release_ref_fetch(&rel, c, &rr)) < 0) goto done;
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s", s->model, rel.version);
    error = find_get(&s->rel, c, path, "reading the release");
done:
    cli_release_clear(&rel);
    return error;
}

static json_t *file_by_title(json_t *files, const char *title)
{
    json_t *f;
    size_t i;

    json_array_foreach(files, i, f)
    {
        const char *t = json_string_value(json_object_get(f, "title"));
        if (t && !strcmp(t, title)) return f;
    }
    return NULL;
}

/* {"added":[file],"removed":[file],"changed":[{"title","from","to"}],"unchanged":N} */
static json_t *files_diff(json_t *a, json_t *b)
{
    json_t *added = json_array(), *removed = json_array(), *changed = json_array(), *f, *o;
    json_t *res;
    size_t i, same = 0;

    json_array_foreach(a, i, f)
    {
        const char *t = json_string_value(json_object_get(f, "title"));
        if (!t) continue;
        if (!(o = file_by_title(b, t))) {
            json_array_append(removed, f);
            continue;
        }
        if (json_equal(json_object_get(f, "digest"), json_object_get(o, "digest")) &&
            json_equal(json_object_get(f, "size"), json_object_get(o, "size")) &&
            json_equal(json_object_get(f, "kind"), json_object_get(o, "kind")))
            same++;
        else
            json_array_append_new(changed,
                                  json_pack("{s:s, s:O, s:O}", "title", t, "from", f, "to", o));
    }
    json_array_foreach(b, i, f)
    {
        const char *t = json_string_value(json_object_get(f, "title"));
        if (t && !file_by_title(a, t)) json_array_append(added, f);
    }
    res = json_pack("{s:o, s:o, s:o, s:I}", "added", added, "removed", removed, "changed", changed,
                    "unchanged", (json_int_t)same);
    return res;
}

/* Digits after the point in the shortest text of @p v, or -1 for an
 * exponent form. */
static int frac_digits(double v)
{
    char buf[MLREG_JSON_REAL_MAX];
    const char *dot;

    if (mlreg_json_real_text(buf, sizeof(buf), v) < 0 || strpbrk(buf, "eE")) return -1;
    dot = strchr(buf, '.');
    if (!dot) return 0;
    if (!strcmp(dot, ".0")) return 0;
    return (int)strlen(dot + 1);
}

/* The delta b - a, rounded to the decimals of its operands so that
 * 0.95 - 0.9 reads 0.05 and not 0.04999999999999993. */
static double delta_of(double a, double b)
{
    int da = frac_digits(a), db = frac_digits(b), d = da > db ? da : db;
    char buf[64];

    if (da < 0 || db < 0 || d > 17) return b - a;
    snprintf(buf, sizeof(buf), "%.*f", d, b - a);
    return strtod(buf, NULL);
}

/* [{"name","from","to","delta"}], names of @p a first, then those only in @p b. */
static json_t *metrics_diff(json_t *a, json_t *b)
{
    json_t *list = json_array(), *va, *vb;
    const char *k;

    json_object_foreach(a, k, va)
    {
        vb = json_object_get(b, k);
        json_array_append_new(
            list, json_pack("{s:s, s:O, s:O, s:o}", "name", k, "from", va, "to",
                            vb ? vb : json_null(), "delta",
                            json_is_number(va) && json_is_number(vb)
                                ? json_real(delta_of(json_number_value(va), json_number_value(vb)))
                                : json_null()));
    }
    json_object_foreach(b, k, vb)
    {
        if (json_object_get(a, k)) continue;
        json_array_append_new(
            list, json_pack("{s:s, s:n, s:O, s:n}", "name", k, "from", "to", vb, "delta"));
    }
    return list;
}

/* The stage whose gates are evaluated: @p given, else the one after the
 * last stage (config order) holding @p version, else the first; NULL when
 * the last stage holds it (message in *why). */
static const char *pick_stage(json_t *stages, const char *given, const char *version,
                              const char **why)
{
    json_t *st;
    size_t i, n = json_array_size(stages);
    long held = -1;

    if (given) return given;
    json_array_foreach(stages, i, st)
    {
        const char *v = json_string_value(json_object_get(st, "version"));
        if (v && !strcmp(v, version)) held = (long)i;
    }
    if (n == 0) {
        *why = "the registry has no stages";
        return NULL;
    }
    if ((size_t)(held + 1) >= n) {
        *why = "the release is in the last stage already (choose one with --stage)";
        return NULL;
    }
    return json_string_value(json_object_get(json_array_get(stages, (size_t)(held + 1)), "stage"));
}

/* {"stage","evaluated","passed","baseline","rules","error"} (and "held": true
 * when rules hold) for @p to. */
static int gates_eval(json_t **out, cli_client *c, side *to, const char *given)
{
    json_t *stages = NULL, *ans = NULL, *body = NULL, *res = NULL;
    const char *stage, *why = NULL,
                       *version = json_string_value(json_object_get(to->rel, "version"));
    cli_response resp;
    char path[600];
    int error = 0;

    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/models/%s/stages", to->model);
    if ((error = find_get(&stages, c, path, "fetching the stages")) < 0) goto done;
    stage = pick_stage(json_object_get(stages, "stages"), given, version ? version : "", &why);
    if (stage == NULL) {
        res = json_pack("{s:n, s:b, s:n, s:n, s:n, s:s}", "stage", "evaluated", 0, "passed",
                        "baseline", "rules", "error", why);
        goto done;
    }
    body = json_pack("{s:s?, s:s, s:b}", "version", version, "to", stage, "dry_run", 1);
    snprintf(path, sizeof(path), "/api/v1/models/%s/promotions", to->model);
    if ((error = cli_api_do(&ans, &resp, c, "POST", path, body)) < 0) goto done;
    if ((resp.status == 200 || resp.status == 409) &&
        json_is_array(json_object_get(ans, "rules"))) {
        res = json_pack(
            "{s:s, s:b, s:O, s:O, s:O, s:n}", "stage", stage, "evaluated", 1, "passed",
            json_object_get(ans, "passed") ? json_object_get(ans, "passed") : json_false(),
            "baseline",
            json_object_get(ans, "baseline") ? json_object_get(ans, "baseline") : json_null(),
            "rules", json_object_get(ans, "rules"), "error");
        /* rules that hold (none failing): refused until the baseline is
         * re-evaluated on the candidate's dataset */
        if (res != NULL && json_is_true(json_object_get(ans, "held")) &&
            json_object_set_new(res, "held", json_true()) < 0) {
            json_decref(res);
            res = NULL;
        }
    } else if (resp.status >= 400 && resp.status < 500) {
        /* forbidden, withdrawn, already in that stage, unknown stage: said, not fatal */
        cli_http_error(&resp, "");
        res = json_pack(
            "{s:s, s:b, s:n, s:n, s:n, s:s}", "stage", stage, "evaluated", 0, "passed", "baseline",
            "rules", "error",
            mlreg_text_printable(mlreg_error_last() + (mlreg_error_last()[0] == ':' ? 2 : 0)));
        mlreg_error_clear();
    } else {
        error = cli_http_error(&resp, "evaluating the gates");
        goto done;
    }
done:
    if (error == 0 && res == NULL) error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (error == 0)
        *out = res;
    else
        json_decref(res);
    json_decref(ans);
    json_decref(body);
    json_decref(stages);
    cli_response_clear(&resp);
    return error;
}

static json_t *side_json(const side *s)
{
    return json_pack("{s:s, s:O, s:O}", "model", s->model, "version",
                     json_object_get(s->rel, "version"), "digest",
                     json_object_get(s->rel, "digest"));
}

static void print_file(char mark, const json_t *f)
{
    char size[32];
    json_int_t n = json_integer_value(json_object_get(f, "size"));

    cli_format_size(size, sizeof(size), n > 0 ? (uint64_t)n : 0);
    printf("  %c %-12s %-32s %10s  %.19s\n", mark, find_str(f, "kind", "?"),
           find_str(f, "title", "?"), size, find_str(f, "digest", "-"));
}

static void print_text(const side *a, const side *b, json_t *files, json_t *metrics, json_t *gates)
{
    json_t *f, *m, *r;
    size_t i, w = 6;
    char na[300], nb[300];

    snprintf(na, sizeof(na), "%s@%s", a->model, find_str(a->rel, "version", "?"));
    snprintf(nb, sizeof(nb), "%s@%s", b->model, find_str(b->rel, "version", "?"));
    printf("diff %s (%.19s) -> %s (%.19s)\n", mlreg_text_printable(na),
           find_str(a->rel, "digest", "-"), mlreg_text_printable(nb),
           find_str(b->rel, "digest", "-"));
    printf("files: %zu added, %zu removed, %zu changed, %" PRId64 " unchanged\n",
           json_array_size(json_object_get(files, "added")),
           json_array_size(json_object_get(files, "removed")),
           json_array_size(json_object_get(files, "changed")),
           (int64_t)json_integer_value(json_object_get(files, "unchanged")));
    json_array_foreach(json_object_get(files, "added"), i, f)
    {
        print_file('+', f);
    }
    json_array_foreach(json_object_get(files, "removed"), i, f)
    {
        print_file('-', f);
    }
    json_array_foreach(json_object_get(files, "changed"), i, f)
    {
        print_file('<', json_object_get(f, "from"));
        print_file('>', json_object_get(f, "to"));
    }
    json_array_foreach(metrics, i, m)
    {
        size_t n = strlen(find_str(m, "name", "?"));
        if (n > w) w = n;
    }
    if (json_array_size(metrics) == 0)
        printf("metrics: none in either release\n");
    else
        printf("metrics:\n  %-*s  %-12s  %-12s  %s\n", (int)w, "METRIC", "FIRST", "SECOND",
               "DELTA");
    json_array_foreach(metrics, i, m)
    {
        char x[MLREG_JSON_REAL_MAX], y[MLREG_JSON_REAL_MAX], d[MLREG_JSON_REAL_MAX + 1];
        json_t *dv = json_object_get(m, "delta");
        find_num(x, sizeof(x), json_object_get(m, "from"));
        find_num(y, sizeof(y), json_object_get(m, "to"));
        if (json_is_number(dv) && json_number_value(dv) > 0) {
            d[0] = '+';
            find_num(d + 1, sizeof(d) - 1, dv);
        } else if (json_is_number(dv) && json_number_value(dv) == 0) {
            snprintf(d, sizeof(d), "0"); /* no change: not "0.0", nor "-0.0" */
        } else {
            find_num(d, sizeof(d), dv);
        }
        printf("  %-*s  %-12s  %-12s  %s\n", (int)w, find_str(m, "name", "?"), x, y, d);
    }
    if (!json_is_true(json_object_get(gates, "evaluated"))) {
        printf("gates%s%s: not evaluated: %s\n",
               json_is_string(json_object_get(gates, "stage")) ? " of " : "",
               find_str(gates, "stage", ""), find_str(gates, "error", "?"));
        return;
    }
    printf("gates of %s for %s (dry run against what %s holds now: %s): %s\n",
           find_str(gates, "stage", "?"), mlreg_text_printable(nb), find_str(gates, "stage", "?"),
           find_str(json_object_get(gates, "baseline"), "version", "nothing"),
           json_is_true(json_object_get(gates, "passed")) ? "WOULD PASS"
           : json_is_true(json_object_get(gates, "held"))
               ? "WOULD BE HELD: re-evaluate the baseline"
               : "WOULD BE REFUSED");
    if (json_array_size(json_object_get(gates, "rules")) == 0) printf("  (no gate rules)\n");
    json_array_foreach(json_object_get(gates, "rules"), i, r)
    {
        const char *oc = find_str(r, "outcome", "");
        printf("  %-4s  %-32s  %s\n",
               !strcmp(oc, "hold")                          ? "HOLD"
               : json_is_true(json_object_get(r, "passed")) ? "PASS"
                                                            : "FAIL",
               find_str(r, "rule", "?"), find_str(r, "detail", ""));
    }
}

int cmd_diff(int argc, char **argv)
{
    const char *registry = NULL, *stage = NULL, *pos[2] = {NULL, NULL};
    side s[2];
    json_t *files = NULL, *metrics = NULL, *gates = NULL, *out = NULL;
    cli_client *c = NULL;
    int error = 0, as_json = 0, npos = 0, r;

    memset(s, 0, sizeof(s));
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            fputs(diff_usage, stdout);
            return CLI_EXIT_OK;
        }
    }
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--json")) {
            as_json = 1;
            continue;
        }
        if ((r = cli_opt(&registry, &a, argc, argv, "--registry")) != 0 ||
            (r = cli_opt(&stage, &a, argc, argv, "--stage")) != 0) {
            if (r < 0) goto usage;
            continue;
        }
        if (argv[a][0] == '-' && argv[a][1] != '\0') {
            mlreg_error_set(MLREG_EINVALID, "unknown option '%s'", mlreg_text_printable(argv[a]));
            goto usage;
        }
        if (npos == 2) {
            mlreg_error_set(MLREG_EINVALID, "more than two references");
            goto usage;
        }
        pos[npos++] = argv[a];
    }
    if (npos != 2) {
        mlreg_error_set(MLREG_EINVALID, "two references needed: REF REF");
        goto usage;
    }
    if (stage && mlreg_tag_validate(stage) < 0) {
        mlreg_error_set(MLREG_EINVALID, "--stage '%s' is not a stage name",
                        mlreg_text_printable(stage));
        goto usage;
    }
    for (int i = 0; i < 2; i++) {
        cli_release_ref rr;
        s[i].arg = pos[i];
        if (cli_release_ref_parse(&rr, pos[i]) < 0) goto usage;
    }
    if ((error = cli_client_new(&c, registry)) < 0) goto done;
    if ((error = side_load(&s[0], c)) < 0 || (error = side_load(&s[1], c)) < 0) goto done;
    files = files_diff(json_object_get(s[0].rel, "files"), json_object_get(s[1].rel, "files"));
    metrics =
        metrics_diff(json_object_get(s[0].rel, "metrics"), json_object_get(s[1].rel, "metrics"));
    if (!files || !metrics) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = gates_eval(&gates, c, &s[1], stage)) < 0) goto done;
    if (as_json) {
        if (!(out = json_pack("{s:o, s:o, s:O, s:O, s:O}", "from", side_json(&s[0]), "to",
                              side_json(&s[1]), "files", files, "metrics", metrics, "gates",
                              gates))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        error = find_print_json(out);
    } else {
        print_text(&s[0], &s[1], files, metrics, gates);
        error = cli_flush_stdout();
    }
done:
    json_decref(out);
    json_decref(files);
    json_decref(metrics);
    json_decref(gates);
    json_decref(s[0].rel);
    json_decref(s[1].rel);
    cli_client_free(c);
    return error < 0 ? cli_fail("diff", error) : CLI_EXIT_OK;
usage:
    find_usage_error("diff", diff_usage);
    return CLI_EXIT_USAGE;
}
