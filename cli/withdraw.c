/* withdraw.c: `mlreg withdraw` and `mlreg unwithdraw` (docs/promotions-api.md,
 * "Withdrawn releases").
 *
 * Each sends one request; the registry decides the roles (they depend on
 * the stages holding the release), refuses a release that stages hold
 * unless --rollback is given, and records everything. The answer is
 * printed for a person (one line, then one per stage rolled back) or, with
 * --json, as the server sent it. Registry text is printed only through the
 * text rule (mlreg_text_printable, cli_print_json).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "client.h"
#include "mlreg/common.h"
#include "mlreg/text.h"
#include "ref.h"

static const char withdraw_usage[] =
    "usage: mlreg withdraw REF --reason TEXT [--rollback] [--json]\n"
    "                      [--registry URL] [--token-file FILE]\n"
    "\n" CLI_REF_HELP "\n"
    "Withdraws (yanks) a release: it stays stored and verifiable, but is no\n"
    "longer promoted, approved or rolled back to, and `mlreg pull` refuses it\n"
    "unless given --allow-withdrawn. A release that stages hold is refused\n"
    "unless --rollback is given: each of those stages is then first rolled back\n"
    "to its previous release, all in one change (a stage that cannot roll back\n"
    "refuses the whole withdrawal). Needs promote:STAGE for every stage holding\n"
    "the release (promote to some stage when none holds it), or admin.\n"
    "Exit 0 withdrawn, 1 refused or forbidden, 2 usage, 3 registry unreachable.\n"
    "  --reason TEXT   required, e.g. --reason \"data leak in eval set\"\n"
    "  --rollback      e.g. mlreg withdraw team/clf:production --reason R --rollback\n"
    "  --json          the registry's answer as JSON\n"
    "  --registry URL  e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "e.g. mlreg withdraw vision/det@2.1.0 --reason 'label leak' --rollback --json\n";

static const char unwithdraw_usage[] =
    "usage: mlreg unwithdraw REF --reason TEXT [--json]\n"
    "                        [--registry URL] [--token-file FILE]\n"
    "\n" CLI_REF_HELP "\n"
    "Takes back the withdrawal of a release, so it may be promoted and pulled\n"
    "again. Stages the withdrawal rolled back stay where they are. Needs admin.\n"
    "  --reason TEXT   required, e.g. --reason \"false alarm\"\n"
    "  --json          the registry's answer as JSON\n"
    "  --registry URL  e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "e.g. mlreg unwithdraw team/clf@1.4 --reason \"false alarm\"\n";

static const char *pr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? mlreg_text_printable(s) : "-";
}

/* One command: @p undo 0 withdraw, 1 unwithdraw. */
static int run(int argc, char **argv, int undo)
{
    const char *cmd = undo ? "unwithdraw" : "withdraw";
    const char *usage = undo ? unwithdraw_usage : withdraw_usage;
    const char *refstr = NULL, *reason = NULL, *registry = NULL;
    int rollback = 0, as_json = 0, error = 0, m;
    cli_release_ref rr;
    cli_client *c = NULL;
    cli_response resp;
    json_t *body = NULL, *ans = NULL, *r;
    char path[700];
    size_t i;

    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "-h") || !strcmp(argv[k], "--help")) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (!undo && !strcmp(argv[k], "--rollback")) {
            rollback = 1;
        } else if (!strcmp(argv[k], "--json")) {
            as_json = 1;
        } else if ((m = cli_opt(&reason, &k, argc, argv, "--reason")) != 0 ||
                   (m = cli_opt(&registry, &k, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&refstr, argv[k]) < 0) {
            goto usage;
        }
    }
    if (!refstr) {
        mlreg_error_set(MLREG_EINVALID, "missing REF");
        goto usage;
    }
    if (cli_release_ref_parse(&rr, refstr) < 0) goto usage;
    if (cli_reason_check(reason) < 0) goto usage;

    cli_response_init(&resp);
    if ((error = cli_client_new(&c, registry)) < 0 || (error = cli_release_ref_pin(&rr, c)) < 0)
        goto done;
    if (!(body = undo ? json_pack("{s:s}", "reason", reason)
                      : json_pack("{s:s, s:b}", "reason", reason, "rollback", rollback))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/%s", rr.ref.model, rr.ref.version,
             cmd);
    if ((error = cli_api_expect(&ans, &resp, c, "POST", path, body,
                                undo ? "taking back the withdrawal" : "withdrawing")) < 0)
        goto done;
    if (as_json) {
        cli_print_json(resp.body ? resp.body : "", resp.body_len);
    } else if (undo) {
        printf("%s@%s (%s) is no longer withdrawn\n", rr.ref.model, rr.ref.version,
               pr(ans, "digest"));
    } else {
        json_t *w = json_object_get(ans, "withdrawn");
        printf("withdrew %s@%s (%s) as %s at %s: %s\n", rr.ref.model, rr.ref.version,
               pr(ans, "digest"), pr(w, "by"), pr(w, "time"), pr(w, "reason"));
        json_array_foreach(json_object_get(ans, "rolled_back"), i, r)
        {
            printf("  rolled back %s from %s to %s (audit entry %lld)\n", pr(r, "stage"),
                   pr(r, "from_version"), pr(r, "to_version"),
                   (long long)json_integer_value(json_object_get(r, "seq")));
        }
    }
    error = cli_flush_stdout();
done:
    error = cli_release_ref_hint(error, c, &rr);
    json_decref(ans);
    json_decref(body);
    cli_response_clear(&resp);
    cli_client_free(c);
    return error < 0 ? cli_fail(cmd, error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg %s: %s\n%s", cmd, mlreg_error_last(), usage);
    return CLI_EXIT_USAGE;
}

int cmd_withdraw(int argc, char **argv)
{
    return run(argc, argv, 0);
}

int cmd_unwithdraw(int argc, char **argv)
{
    return run(argc, argv, 1);
}
