/* stage.c: the release-promotion commands (docs/promotions-api.md):
 * `promote`, `approve`, `rollback`, `resolve` and `image-tag`.
 *
 * The server decides everything (gates, roles, the pointer move); these
 * commands send one request each and print the answer for the two readers
 * that matter: a person reading a CI log (a header line that says what
 * happened, then one line per gate rule with candidate, baseline, delta and
 * PASS/FAIL) and a script (--json prints the server's JSON unchanged, and
 * the exit status says pass/refuse as cli.h describes). Strings from the
 * registry are printed only when they follow the text rule (cli_printable,
 * cli_print_json), so a registry cannot write escape sequences to a
 * terminal.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "find.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/imagetag.h"
#include "mlreg/json_out.h"
#include "mlreg/registry.h"
#include "mlreg/text.h"
#include "mlreg/time.h"
#include "ref.h"
#include "release.h"

/* ---- option parsing shared by the commands ----------------------------------- */

typedef struct {
    const char *name;   /* "--to" */
    const char **value; /* option with a value, or NULL */
    int *flag;          /* flag without a value, or NULL */
} opt_spec;

/* Parses argv[1..] against @p specs (terminated by a NULL name) plus
 * --registry; the single positional argument goes to *pos. 1 for -h/--help,
 * 0 ok, MLREG_EINVALID (message set). */
static int parse_opts(const char **pos, const char **registry, const opt_spec *specs, int argc,
                      char **argv)
{
    int m;

    *pos = NULL;
    for (int i = 1; i < argc; i++) {
        const opt_spec *s;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
        if ((m = cli_opt(registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) return MLREG_EINVALID;
            continue;
        }
        for (s = specs; s->name; s++) {
            if (s->flag && !strcmp(argv[i], s->name)) {
                *s->flag = 1;
                break;
            }
            if (s->value && (m = cli_opt(s->value, &i, argc, argv, s->name)) != 0) {
                if (m < 0) return MLREG_EINVALID;
                break;
            }
        }
        if (s->name) continue;
        if ((m = cli_positional(pos, argv[i])) < 0) return m;
    }
    if (!*pos) return mlreg_error_set(MLREG_EINVALID, "missing argument");
    return 0;
}

static int usage_error(const char *cmd, const char *usage)
{
    fprintf(stderr, "mlreg %s: %s\n%s", cmd, mlreg_error_last(), usage);
    return CLI_EXIT_USAGE;
}

static int need(const char *value, const char *what)
{
    if (!value || !*value) return mlreg_error_set(MLREG_EINVALID, "missing %s", what);
    return 0;
}

static int stage_valid(const char *stage)
{
    if (mlreg_tag_validate(stage) < 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "stage '%s' must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}", stage);
    return 0;
}

/* --reason and --comment follow the registry's rule (1024 bytes of text by
 * mlreg/text.h): refused here, before anything is sent. */
static int text_valid(const char *text, const char *what)
{
    if (text && strlen(text) > 1024)
        return mlreg_error_set(MLREG_EINVALID, "%s is longer than 1024 bytes", what);
    return mlreg_text_validate(text, what);
}

static int print_body(const cli_response *resp)
{
    cli_print_json(resp->body ? resp->body : "", resp->body_len);
    return 0;
}

static const char *jstr(json_t *obj, const char *key)
{
    return mlreg_text_printable(json_string_value(json_object_get(obj, key)));
}

/* A number of the rule table as the JSON answer writes it (shortest
 * round-trip text, mlreg/json_out.h), "+" before a positive one when
 * @p with_sign; "-" when absent. */
static void fmt_num(char *buf, size_t len, json_t *v, int with_sign)
{
    int plus = with_sign && json_is_number(v) && json_number_value(v) > 0;

    if (len < 2) return;
    if (plus) buf[0] = '+';
    if (mlreg_json_number_text(buf + plus, len - (size_t)plus, v) < 0) snprintf(buf, len, "?");
}

/* Decimal places of a number as fmt_num() wrote it ("0.912" 3, "1.5e-7" 8,
 * "100.0" 1, "12" 0). */
static int decimals_of(const char *t)
{
    const char *dot = strchr(t, '.'), *e = strchr(t, 'e');
    int frac = 0;

    if (dot != NULL) frac = (int)((e ? (size_t)(e - dot) : strlen(dot)) - 1);
    return e != NULL ? frac - atoi(e + 1) : frac;
}

/* The DELTA column: candidate minus baseline. The registry's delta is the
 * difference of two doubles (0.87 - 0.88 is -0.010000000000000009), so it
 * is written with as many decimals as the two numbers shown beside it
 * have (-0.01): that is their exact decimal difference, which the double
 * is within a few units of the 17th digit of. Without both numbers, or when
 * they need more than 17 decimals, the delta's own shortest text. */
static void fmt_delta(char *buf, size_t len, json_t *delta, const char *cand, const char *base)
{
    int dc = decimals_of(cand), db = decimals_of(base), d = dc > db ? dc : db, w = -1;
    char text[64];

    if (json_is_number(delta) && json_number_value(delta) == 0) {
        snprintf(buf, len, "0");
        return;
    }
    if (json_is_number(delta) && strcmp(cand, "-") && strcmp(base, "-") && d >= 0 && d <= 17 &&
        fabs(json_number_value(delta)) < 1e15)
        w = snprintf(text, sizeof(text), "%+.*f", d, json_number_value(delta));
    if (w > 0 && (size_t)w < len)
        memcpy(buf, text, (size_t)w + 1);
    else
        fmt_num(buf, len, delta, 1);
}

/* ---- promote ----------------------------------------------------------------------- */

static const char promote_usage[] =
    "usage: mlreg promote REF --to STAGE [--reason TEXT] [--dry-run] [--json]\n"
    "                     [--override --reason TEXT] [--registry URL] [--token-file FILE]\n"
    "\n" CLI_REF_HELP
    "With MODEL:STAGE the candidate is the release that stage holds, so moving a\n"
    "release along is `mlreg promote team/clf:staging --to production`.\n"
    "\n"
    "Asks the registry to move STAGE of MODEL to the release. The registry evaluates\n"
    "every gate rule of STAGE (against the release STAGE holds now, the baseline)\n"
    "and moves the stage only when all pass; refusals are recorded too. Prints one\n"
    "line per rule: candidate value, baseline version and value, delta, PASS/FAIL,\n"
    "or HOLD when a rule against the baseline has no numbers of the baseline on the\n"
    "candidate's dataset and eval code digests (HELD: re-evaluate the baseline, e.g.\n"
    "`mlreg attest` it on the new dataset), then which evaluator attestations and\n"
    "digests the rows used. --dry-run evaluates without moving or recording\n"
    "anything. Exit 0 when every rule passed, 1 when refused or held (or\n"
    "forbidden, or unknown), 2 usage, 3 registry unreachable or failing. Needs the\n"
    "promote:STAGE role.\n"
    "\n"
    "--override (break-glass) moves the stage although rules fail. It needs the\n"
    "override:STAGE role too, a --reason, and an approval of the override by\n"
    "another identity (neither you nor the pusher) recorded since STAGE last\n"
    "moved, within 24 hours: `mlreg approve REF --for STAGE --override --reason\n"
    "TEXT`. A failing `signed` rule and a withdrawn release are never\n"
    "overridden. The move is flagged as an override in the audit log (`mlreg\n"
    "audit log --overrides`), its attestation and the promotion history. When\n"
    "every rule passes, it is an ordinary promotion.\n"
    "  --to STAGE     e.g. --to production\n"
    "  --reason TEXT  recorded with the promotion, e.g. --reason \"weekly release\"\n"
    "  --dry-run      e.g. mlreg promote team/clf@1.4 --to staging --dry-run\n"
    "  --override     e.g. --override --reason \"hotfix for incident 42\"\n"
    "  --json         the registry's answer (rule table) as JSON\n"
    "  --registry URL e.g. --registry https://mlreg.example.com (or MLREG_URL)\n";

typedef struct {
    char rule[160], cand[32], base[200], delta[32], detail[300];
    const char *result;
} rule_row;

/* 1 when gate row @p r holds (no comparable baseline numbers). */
static int row_held(json_t *r)
{
    const char *o = jstr(r, "outcome");
    return o != NULL && !strcmp(o, "hold");
}

/* PASS, FAIL or HOLD for gate row @p r. */
static const char *row_result(json_t *r)
{
    if (row_held(r)) return "HOLD";
    return json_is_true(json_object_get(r, "passed")) ? "PASS" : "FAIL";
}

/* "key NAME (ID12) seq N, evaluated at T" of attestation @p a into @p buf. */
static void fmt_attestation(char *buf, size_t cap, json_t *a)
{
    const char *name = jstr(a, "key_name"), *id = jstr(a, "key_id");
    snprintf(buf, cap, "key %s (%.64s) #%lld, evaluated at %s",
             name && *name ? mlreg_text_printable(name) : "?", id ? id : "?",
             (long long)json_integer_value(json_object_get(a, "seq")),
             jstr(a, "evaluated_at") ? jstr(a, "evaluated_at") : "?");
}

/* Under the table: whose evaluation each row's numbers came from, and the
 * dataset and eval code digests a comparison compared. */
static void print_sources(json_t *rules)
{
    json_t *r, *ev, *bev, *dg;
    char a[256], b[256];
    size_t i;

    json_array_foreach(rules, i, r)
    {
        ev = json_object_get(r, "evaluation");
        bev = json_object_get(r, "baseline_evaluation");
        dg = json_object_get(r, "digests");
        if (json_is_object(ev)) {
            fmt_attestation(a, sizeof(a), ev);
            printf("  %s: candidate numbers from the evaluation by %s\n", jstr(r, "rule"), a);
        }
        if (json_is_object(bev)) {
            fmt_attestation(b, sizeof(b), bev);
            printf("  %s: baseline numbers from the evaluation by %s\n", jstr(r, "rule"), b);
        }
        if (json_is_object(dg)) {
            json_t *c = json_object_get(dg, "candidate"), *bd = json_object_get(dg, "baseline");
            if (!find_str(c, "dataset", NULL) && !find_str(c, "eval_code", NULL) &&
                !find_str(bd, "dataset", NULL) && !find_str(bd, "eval_code", NULL))
                continue;
            printf("  %s: digests: candidate dataset %s, eval code %s; baseline dataset %s, eval "
                   "code %s\n",
                   jstr(r, "rule"), find_str(c, "dataset", "none"),
                   find_str(c, "eval_code", "none"), find_str(bd, "dataset", "none"),
                   find_str(bd, "eval_code", "none"));
        }
    }
}

/* Prints the answer of a promotion (200 or 409 with the table). */
static void print_promotion(json_t *ans, const char *model, const char *version, const char *to)
{
    json_t *rules = json_object_get(ans, "rules"), *r, *baseline = json_object_get(ans, "baseline");
    json_t *rec = json_object_get(ans, "promotion");
    size_t i, n = json_array_size(rules), failed = 0, held = 0;
    int passed = json_is_true(json_object_get(ans, "passed"));
    int is_held = json_is_true(json_object_get(ans, "held"));
    int moved = json_is_true(json_object_get(ans, "moved"));
    int dry = json_is_true(json_object_get(ans, "dry_run"));
    int override = json_is_true(json_object_get(ans, "override"));
    rule_row *rows = NULL;
    int w_rule = 4, w_cand = 9, w_base = 8, w_delta = 5;
    char verdict[160];

    json_array_foreach(rules, i, r)
    {
        if (row_held(r))
            held++;
        else if (!json_is_true(json_object_get(r, "passed")))
            failed++;
    }
    if (json_is_object(json_object_get(ans, "withdrawn")))
        snprintf(verdict, sizeof(verdict), "%s (the release is withdrawn%s)",
                 dry ? "WOULD BE REFUSED" : "REFUSED", dry ? "; dry run" : "");
    else if (override && held > 0)
        snprintf(verdict, sizeof(verdict), "%s (%zu of %zu rule%s failed, %zu held)",
                 moved ? "PROMOTED BY OVERRIDE" : "WOULD BE PROMOTED BY OVERRIDE (dry run)", failed,
                 n, n == 1 ? "" : "s", held);
    else if (override)
        snprintf(verdict, sizeof(verdict), "%s (%zu of %zu rule%s failed)",
                 moved ? "PROMOTED BY OVERRIDE" : "WOULD BE PROMOTED BY OVERRIDE (dry run)", failed,
                 n, n == 1 ? "" : "s");
    else if (passed && moved)
        snprintf(verdict, sizeof(verdict), "PROMOTED (%s)",
                 n ? (n == 1 ? "1 rule passed" : "all rules passed") : "no gate rules");
    else if (passed && dry)
        snprintf(verdict, sizeof(verdict),
                 "WOULD PASS (dry run: %zu of %zu rules passed, nothing moved)", n, n);
    else if (passed)
        snprintf(verdict, sizeof(verdict), "PASSED (stage not moved)");
    else if (is_held)
        snprintf(verdict, sizeof(verdict), "%s (%s%zu of %zu rule%s hold)",
                 dry ? "WOULD BE HELD: re-evaluate the baseline" : "HELD: re-evaluate the baseline",
                 dry ? "dry run: " : "", held, n, n == 1 ? "" : "s");
    else if (dry)
        snprintf(verdict, sizeof(verdict), "WOULD BE REFUSED (dry run: %zu of %zu rules failed)",
                 failed, n);
    else
        snprintf(verdict, sizeof(verdict), "REFUSED (%zu of %zu rule%s failed)", failed, n,
                 n == 1 ? "" : "s");
    printf("promote %s@%s \u2192 %s: %s\n", model, version, to, verdict);
    if (override) {
        json_t *who = json_object_get(ans, "override_approvers");
        printf("override: %s; approved by ", mlreg_text_printable(jstr(ans, "override_reason")));
        for (i = 0; i < json_array_size(who); i++)
            printf("%s%s", i ? ", " : "",
                   mlreg_text_printable(json_string_value(json_array_get(who, i))));
        printf("\n");
    }
    if (json_is_string(json_object_get(ans, "note"))) printf("note: %s\n", jstr(ans, "note"));
    if (json_is_object(json_object_get(ans, "withdrawn"))) {
        json_t *w = json_object_get(ans, "withdrawn");
        printf("withdrawn by %s at %s: %s\n", jstr(w, "by"), jstr(w, "time"), jstr(w, "reason"));
    }
    if (json_is_object(baseline))
        printf("baseline: %s@%s (%s)\n", model, jstr(baseline, "version"),
               jstr(baseline, "digest"));
    else
        printf("baseline: none (%s holds no release)\n", to);
    if (n && (rows = calloc(n, sizeof(*rows)))) {
        json_array_foreach(rules, i, r)
        {
            rule_row *row = &rows[i];
            char bval[32];
            json_t *bv = json_object_get(r, "baseline_version");
            snprintf(row->rule, sizeof(row->rule), "%s", jstr(r, "rule"));
            fmt_num(row->cand, sizeof(row->cand), json_object_get(r, "candidate"), 0);
            fmt_num(bval, sizeof(bval), json_object_get(r, "baseline"), 0);
            if (json_is_string(bv))
                snprintf(row->base, sizeof(row->base), "%s (%s)", bval,
                         jstr(r, "baseline_version"));
            else
                snprintf(row->base, sizeof(row->base), "%s", bval);
            fmt_delta(row->delta, sizeof(row->delta), json_object_get(r, "delta"), row->cand, bval);
            snprintf(row->detail, sizeof(row->detail), "%s", jstr(r, "detail"));
            row->result = row_result(r);
            if ((int)strlen(row->rule) > w_rule) w_rule = (int)strlen(row->rule);
            if ((int)strlen(row->cand) > w_cand) w_cand = (int)strlen(row->cand);
            if ((int)strlen(row->base) > w_base) w_base = (int)strlen(row->base);
            if ((int)strlen(row->delta) > w_delta) w_delta = (int)strlen(row->delta);
        }
        printf("  %-*s  %-*s  %-*s  %-*s  %-6s  %s\n", w_rule, "RULE", w_cand, "CANDIDATE", w_base,
               "BASELINE", w_delta, "DELTA", "RESULT", "DETAIL");
        for (i = 0; i < n; i++)
            printf("  %-*s  %-*s  %-*s  %-*s  %-6s  %s\n", w_rule, rows[i].rule, w_cand,
                   rows[i].cand, w_base, rows[i].base, w_delta, rows[i].delta, rows[i].result,
                   rows[i].detail);
    } else if (n) {
        /* Out of memory for the aligned table: one line per rule instead. */
        json_array_foreach(rules, i, r)
        {
            printf("  %s  %s  %s\n", jstr(r, "rule"), row_result(r), jstr(r, "detail"));
        }
    }
    print_sources(rules);
    if (json_is_object(rec))
        printf("recorded as promotion #%lld by %s at %s\n",
               (long long)json_integer_value(json_object_get(rec, "seq")), jstr(rec, "actor"),
               jstr(rec, "time"));
    free(rows);
}

int cmd_promote(int argc, char **argv)
{
    int error = 0, dry = 0, as_json = 0, override = 0, rc;
    const char *refstr = NULL, *to = NULL, *reason = NULL, *registry = NULL;
    cli_release_ref rr;
    cli_client *c = NULL;
    cli_response resp;
    json_t *body = NULL, *ans = NULL;
    char path[600];
    opt_spec specs[] = {{"--to", &to, NULL},        {"--reason", &reason, NULL},
                        {"--dry-run", NULL, &dry},  {"--override", NULL, &override},
                        {"--json", NULL, &as_json}, {NULL, NULL, NULL}};

    if ((rc = parse_opts(&refstr, &registry, specs, argc, argv)) == 1) {
        fputs(promote_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (rc < 0 || cli_release_ref_parse(&rr, refstr) < 0 || need(to, "--to STAGE") < 0 ||
        stage_valid(to) < 0 || text_valid(reason, "--reason") < 0 ||
        (override && need(reason, "--reason TEXT (an override says why)") < 0))
        return usage_error("promote", promote_usage);

    cli_response_init(&resp);
    if ((error = cli_client_new(&c, registry)) < 0 || (error = cli_release_ref_pin(&rr, c)) < 0)
        goto done;
    if (!(body =
              json_pack("{s:s, s:s, s:b}", "version", rr.ref.version, "to", to, "dry_run", dry)) ||
        (reason && json_object_set_new(body, "reason", json_string(reason)) < 0) ||
        (override && json_object_set_new(body, "override", json_true()) < 0)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof(path), "/api/v1/models/%s/promotions", rr.ref.model);
    if ((error = cli_api_do(&ans, &resp, c, "POST", path, body)) < 0) goto done;
    /* 200 passed; 409 with a rule table refused. Any other answer (and a
     * 409 without a table, such as "already in stage") is an error. */
    if ((resp.status == 200 || resp.status == 409) &&
        json_is_array(json_object_get(ans, "rules"))) {
        int passed = json_is_true(json_object_get(ans, "passed"));
        if (as_json)
            print_body(&resp);
        else
            print_promotion(ans, rr.ref.model, rr.ref.version, to);
        if ((error = cli_flush_stdout()) < 0) goto done;
        if ((resp.status == 409 || !passed) && override) {
            /* the registry says which of the override's conditions failed */
            const char *why = jstr(json_array_get(json_object_get(ans, "errors"), 0), "message");
            error = mlreg_error_set(MLREG_EGATE, "%s@%s \u2192 %s refused: %s", rr.ref.model,
                                    rr.ref.version, to, mlreg_text_printable(why));
        } else if (json_is_true(json_object_get(ans, "held"))) {
            error = mlreg_error_set(MLREG_EGATE,
                                    "%s@%s \u2192 %s held by the gates: re-evaluate the baseline "
                                    "(mlreg attest on the baseline with the candidate's dataset)",
                                    rr.ref.model, rr.ref.version, to);
        } else if (resp.status == 409 || !passed) {
            error = mlreg_error_set(MLREG_EGATE, "%s@%s \u2192 %s refused by the gates",
                                    rr.ref.model, rr.ref.version, to);
        }
        goto done;
    }
    if (resp.status >= 200 && resp.status < 300)
        error = mlreg_error_set(MLREG_ESERVER, "promoting: registry sent no rule table");
    else
        error = cli_http_error(&resp, "promoting");
done:
    error = cli_release_ref_hint(error, c, &rr);
    json_decref(ans);
    json_decref(body);
    cli_response_clear(&resp);
    cli_client_free(c);
    /* A refusal was printed as the table; only say why on stderr. */
    return error < 0 ? cli_fail("promote", error) : CLI_EXIT_OK;
}

/* ---- approve ------------------------------------------------------------------------ */

static const char approve_usage[] =
    "usage: mlreg approve REF --for STAGE [--comment TEXT] [--json]\n"
    "                     [--override --reason TEXT] [--registry URL] [--token-file FILE]\n"
    "\n" CLI_REF_HELP "With MODEL:STAGE you approve the release that stage holds: e.g. `mlreg\n"
    "approve team/clf:staging --for production` before promoting it there.\n"
    "\n"
    "Records your approval of the release (bound to its digest) for STAGE; an\n"
    "`approvals` gate counts distinct approvers other than the release's pusher,\n"
    "so approving a release you pushed is refused (exit 1, nothing recorded).\n"
    "Needs the approve:STAGE role.\n"
    "\n"
    "--override approves a break-glass promotion (`mlreg promote REF --to STAGE\n"
    "--override`) by someone else instead: it needs the override:STAGE role and a\n"
    "--reason (no --comment), is not counted by the `approvals` gate, and counts\n"
    "for an override until STAGE next moves, at most 24 hours. The pusher of the\n"
    "release may not approve its override.\n"
    "  --for STAGE     e.g. --for production\n"
    "  --comment TEXT  e.g. --comment \"eval reviewed\"\n"
    "  --override      e.g. --override --reason \"incident 42: the fix must ship\"\n"
    "  --reason TEXT   why the override is approved (with --override only)\n"
    "  --json          the registry's answer as JSON\n"
    "  --registry URL  e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "e.g. mlreg approve team/clf@1.4 --for production --comment \"eval reviewed\"\n";

int cmd_approve(int argc, char **argv)
{
    int error = 0, as_json = 0, override = 0, rc;
    const char *refstr = NULL, *stage = NULL, *comment = NULL, *reason = NULL, *registry = NULL;
    cli_release_ref rr;
    cli_client *c = NULL;
    cli_response resp;
    json_t *body = NULL, *ans = NULL;
    char path[600];
    opt_spec specs[] = {{"--for", &stage, NULL},         {"--comment", &comment, NULL},
                        {"--override", NULL, &override}, {"--reason", &reason, NULL},
                        {"--json", NULL, &as_json},      {NULL, NULL, NULL}};

    if ((rc = parse_opts(&refstr, &registry, specs, argc, argv)) == 1) {
        fputs(approve_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (rc < 0 || cli_release_ref_parse(&rr, refstr) < 0 || need(stage, "--for STAGE") < 0 ||
        stage_valid(stage) < 0 || text_valid(comment, "--comment") < 0 ||
        text_valid(reason, "--reason") < 0)
        return usage_error("approve", approve_usage);
    if (override ? comment != NULL : reason != NULL) {
        mlreg_error_set(MLREG_EINVALID, override ? "--override takes --reason, not --comment"
                                                 : "--reason goes with --override (an approval "
                                                   "takes --comment)");
        return usage_error("approve", approve_usage);
    }
    if (override && need(reason, "--reason TEXT (an override approval says why)") < 0)
        return usage_error("approve", approve_usage);
    cli_response_init(&resp);
    if ((error = cli_client_new(&c, registry)) < 0 || (error = cli_release_ref_pin(&rr, c)) < 0)
        goto done;
    if (!(body = json_pack("{s:s}", "stage", stage)) ||
        (comment && json_object_set_new(body, "comment", json_string(comment)) < 0) ||
        (override && (json_object_set_new(body, "override", json_true()) < 0 ||
                      json_object_set_new(body, "reason", json_string(reason)) < 0))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/approvals", rr.ref.model,
             rr.ref.version);
    if ((error = cli_api_expect(&ans, &resp, c, "POST", path, body, "approving")) < 0) goto done;
    if (as_json)
        print_body(&resp);
    else
        printf("%s%s %s@%s (%s) for %s as %s\n",
               resp.status == 201 ? "approved" : "already approved",
               override ? " the override of" : "", rr.ref.model, rr.ref.version,
               jstr(ans, "digest"), stage, jstr(ans, "approver"));
    error = cli_flush_stdout();
done:
    error = cli_release_ref_hint(error, c, &rr);
    json_decref(ans);
    json_decref(body);
    cli_response_clear(&resp);
    cli_client_free(c);
    return error < 0 ? cli_fail("approve", error) : CLI_EXIT_OK;
}

/* ---- rollback ----------------------------------------------------------------------- */

static const char rollback_usage[] =
    "usage: mlreg rollback MODEL --stage STAGE [--to VERSION] [--reason TEXT] [--json]\n"
    "                      [--registry URL] [--token-file FILE]\n"
    "\n"
    "Moves STAGE back to the release that held it before the current one, or to\n"
    "VERSION, which must have held STAGE before. Gates are not re-run; the\n"
    "release's signatures are re-checked when STAGE requires signatures.\n"
    "Needs the promote:STAGE role.\n"
    "\n"
    "example: mlreg rollback vision/det --stage production --to 2.0.0 --reason 'latency' --json\n";

int cmd_rollback(int argc, char **argv)
{
    int error = 0, as_json = 0, rc;
    const char *model = NULL, *stage = NULL, *to = NULL, *reason = NULL, *registry = NULL;
    cli_client *c = NULL;
    cli_response resp;
    json_t *body = NULL, *ans = NULL;
    char path[600];
    opt_spec specs[] = {{"--stage", &stage, NULL},
                        {"--to", &to, NULL},
                        {"--reason", &reason, NULL},
                        {"--json", NULL, &as_json},
                        {NULL, NULL, NULL}};

    if ((rc = parse_opts(&model, &registry, specs, argc, argv)) == 1) {
        fputs(rollback_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (rc < 0) return usage_error("rollback", rollback_usage);
    if (mlreg_name_validate(model) < 0) {
        mlreg_error_set(MLREG_EINVALID, "'%s' is not a valid model name", model);
        return usage_error("rollback", rollback_usage);
    }
    if (need(stage, "--stage STAGE") < 0 || stage_valid(stage) < 0 ||
        text_valid(reason, "--reason") < 0)
        return usage_error("rollback", rollback_usage);
    if (to && mlreg_tag_validate(to) < 0) {
        mlreg_error_set(MLREG_EINVALID, "--to '%s' is not a valid version", to);
        return usage_error("rollback", rollback_usage);
    }
    cli_response_init(&resp);
    if (!(body = json_pack("{s:o, s:s}", "to_version", to ? json_string(to) : json_null(), "reason",
                           reason ? reason : ""))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof(path), "/api/v1/models/%s/stages/%s/rollback", model, stage);
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&ans, &resp, c, "POST", path, body, "rolling back")) < 0)
        goto done;
    if (as_json)
        print_body(&resp);
    else
        printf("rolled back %s:%s from %s to %s (%s)\n", model, stage,
               jstr(ans, "previous_version"), jstr(ans, "version"), jstr(ans, "digest"));
    error = cli_flush_stdout();
done:
    json_decref(ans);
    json_decref(body);
    cli_response_clear(&resp);
    cli_client_free(c);
    return error < 0 ? cli_fail("rollback", error) : CLI_EXIT_OK;
}

/* ---- resolve ------------------------------------------------------------------------ */

static const char resolve_usage[] =
    "usage: mlreg resolve MODEL:STAGE [--at TIME] [--image] [--json] [--registry URL]\n"
    "                     [--token-file FILE]\n"
    "\n"
    "Prints `VERSION DIGEST` of the release STAGE holds now, or held at TIME\n"
    "(RFC 3339, e.g. 2026-11-26T10:00:00Z). --image prints the container image\n"
    "reference recorded for that release instead (`mlreg image-tag --record`):\n"
    "with --at, the one recorded by TIME, not a later one.\n"
    "Exit 1 when the stage is empty (at TIME) or no image is recorded (by TIME).\n"
    "A release by version needs no resolving: `mlreg show MODEL@VERSION`.\n"
    "  --at TIME       e.g. --at 2026-11-26T10:00:00Z or 2026-11-26T12:00:00+02:00\n"
    "  --image         e.g. mlreg resolve team/clf:production --image\n"
    "  --json          the registry's answer as JSON\n"
    "  --registry URL  e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "\n"
    "examples: mlreg resolve vision/det:production\n"
    "          mlreg resolve vision/det:production --at 2026-11-26T10:00:00Z --image --json\n";

int cmd_resolve(int argc, char **argv)
{
    int error = 0, as_json = 0, image = 0, rc;
    const char *refstr = NULL, *at_arg = NULL, *registry = NULL, *img;
    char at[MLREG_TIME_STRLEN];
    cli_stage_ref ref;
    cli_client *c = NULL;
    cli_response resp;
    json_t *ans = NULL;
    opt_spec specs[] = {{"--at", &at_arg, NULL},
                        {"--image", NULL, &image},
                        {"--json", NULL, &as_json},
                        {NULL, NULL, NULL}};

    if ((rc = parse_opts(&refstr, &registry, specs, argc, argv)) == 1) {
        fputs(resolve_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (rc < 0 || cli_stage_ref_parse(&ref, refstr) < 0 || (at_arg && cli_at_parse(at, at_arg) < 0))
        return usage_error("resolve", resolve_usage);
    cli_response_init(&resp);
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_stage_resolve(&ans, &resp, c, ref.model, ref.stage, at_arg ? at : NULL)) < 0)
        goto done;
    if (as_json) {
        print_body(&resp);
    } else if (image) {
        img = json_string_value(json_object_get(ans, "image"));
        if (!img || !*img) {
            error = mlreg_error_set(MLREG_ENOTFOUND,
                                    "%s:%s holds %s@%s, which has no recorded image (record one "
                                    "with `mlreg image-tag %s@%s --repo REPO --record`)",
                                    ref.model, ref.stage, ref.model, jstr(ans, "version"),
                                    ref.model, jstr(ans, "version"));
            goto done;
        }
        printf("%s\n", mlreg_text_printable(img));
    } else {
        printf("%s %s\n", jstr(ans, "version"), jstr(ans, "digest"));
    }
    error = cli_flush_stdout();
done:
    json_decref(ans);
    cli_response_clear(&resp);
    cli_client_free(c);
    return error < 0 ? cli_fail("resolve", error) : CLI_EXIT_OK;
}

/* ---- image-tag ---------------------------------------------------------------------- */

static const char image_tag_usage[] =
    "usage: mlreg image-tag REF --repo REPO [--record [--digest sha256:HEX]]\n"
    "                       [--registry URL] [--token-file FILE]\n"
    "\n" CLI_REF_HELP "\n"
    "Prints the container image reference REPO:VERSION-GITSHA7 for the release\n"
    "(GITSHA7: the first 7 hex digits of the git sha recorded in the release).\n"
    "REPO is [HOST[:PORT]/]PATH in the OCI name grammar; the tag must fit the OCI\n"
    "tag grammar (128 characters). --record binds the reference (and the image\n"
    "digest, with --digest) to the release on the registry, so that\n"
    "`mlreg resolve MODEL:STAGE --image` finds it. --record needs the push role\n"
    "for a release no stage has held, else promote:STAGE for every stage that\n"
    "holds or has held it. Recording an image bound before makes it current again.\n"
    "  --repo REPO          e.g. --repo registry.example.com/serving/clf\n"
    "  --record             e.g. mlreg image-tag team/clf:staging --repo R --record\n"
    "  --digest sha256:HEX  the image's digest, with --record\n"
    "  --registry URL       e.g. --registry https://mlreg.example.com (or MLREG_URL)\n";

int cmd_image_tag(int argc, char **argv)
{
    int error = 0, record = 0, rc;
    const char *refstr = NULL, *repo = NULL, *digest = NULL, *registry = NULL, *git_sha;
    cli_release_ref rr;
    cli_client *c = NULL;
    cli_response resp;
    json_t *rel = NULL, *body = NULL, *ans = NULL;
    char path[600], what[400], image[MLREG_IMAGE_REF_BUFSIZE];
    mlreg_digest d;
    opt_spec specs[] = {{"--repo", &repo, NULL},
                        {"--record", NULL, &record},
                        {"--digest", &digest, NULL},
                        {NULL, NULL, NULL}};

    if ((rc = parse_opts(&refstr, &registry, specs, argc, argv)) == 1) {
        fputs(image_tag_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (rc < 0 || cli_release_ref_parse(&rr, refstr) < 0 || need(repo, "--repo REPO") < 0 ||
        mlreg_image_repo_validate(repo) < 0)
        return usage_error("image-tag", image_tag_usage);
    if (digest && !record) {
        mlreg_error_set(MLREG_EINVALID, "--digest goes with --record");
        return usage_error("image-tag", image_tag_usage);
    }
    if (digest && mlreg_digest_parse(&d, digest) < 0) {
        mlreg_error_set(MLREG_EINVALID, "--digest '%s' must be sha256:<64 lowercase hex>", digest);
        return usage_error("image-tag", image_tag_usage);
    }
    cli_response_init(&resp);
    if ((error = cli_client_new(&c, registry)) < 0 || (error = cli_release_ref_pin(&rr, c)) < 0)
        goto done;
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s", rr.ref.model, rr.ref.version);
    snprintf(what, sizeof(what), "%s@%s", rr.ref.model, rr.ref.version);
    if ((error = cli_api_expect(&rel, &resp, c, "GET", path, NULL, what)) < 0) goto done;
    git_sha = json_string_value(json_object_get(rel, "git_sha"));
    if (!git_sha || !*git_sha) {
        error = mlreg_error_set(MLREG_EDENIED,
                                "%s@%s records no git sha (push it with --git-sha or from a git "
                                "checkout); cannot derive an image tag",
                                rr.ref.model, rr.ref.version);
        goto done;
    }
    if ((error = mlreg_image_ref_derive(image, sizeof(image), repo, rr.ref.version, git_sha)) < 0) {
        /* The release's own version or sha does not make a valid tag: a
         * property of the release, not of the command line (exit 1). */
        error = cli_error_wrap(MLREG_EDENIED, "%s@%s", rr.ref.model, rr.ref.version);
        goto done;
    }
    if (record) {
        snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/images", rr.ref.model,
                 rr.ref.version);
        if (!(body = json_pack("{s:s, s:o}", "image", image, "digest",
                               digest ? json_string(digest) : json_null()))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        if ((error = cli_api_expect(&ans, &resp, c, "POST", path, body, "recording the image")) < 0)
            goto done;
        fprintf(stderr, "%s %s%s%s for %s@%s\n",
                resp.status == 201 ? "recorded" : "already recorded", image, digest ? "@" : "",
                digest ? digest : "", rr.ref.model, rr.ref.version);
    }
    printf("%s\n", image);
    error = cli_flush_stdout();
done:
    error = cli_release_ref_hint(error, c, &rr);
    json_decref(ans);
    json_decref(body);
    json_decref(rel);
    cli_response_clear(&resp);
    cli_client_free(c);
    return error < 0 ? cli_fail("image-tag", error) : CLI_EXIT_OK;
}
