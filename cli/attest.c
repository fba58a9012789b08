/* attest.c: `mlreg attest REF --eval-report FILE --key EVALKEY`: an
 * evaluator attaches an evaluation made after the push (docs/evaluations.md).
 *
 * The key is loaded first (a wrong password fails before any network
 * traffic), then the report is checked with the registry's own parser
 * (mlreg_eval_report_parse) before anything is sent. The release's manifest
 * is fetched and must hash to the pinned digest or the registry's
 * Docker-Content-Digest (cli_release_ref_fetch): that digest is the
 * statement's subject, so an evaluation can never be about bytes the
 * evaluator did not name. The statement (mlreg_evaluation_statement) is
 * signed as a DSSE envelope with the evaluator's key, the secret key is
 * wiped at once, and the envelope goes to POST .../evaluations. Sending the
 * same envelope again stores nothing new (exit 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "find.h"
#include "mlreg/common.h"
#include "mlreg/dsse.h"
#include "mlreg/evaluations.h"
#include "mlreg/file.h"
#include "mlreg/manifest.h"
#include "mlreg/sign.h"
#include "mlreg/text.h"
#include "mlreg/time.h"
#include "ref.h"
#include "release.h"

static const char usage_line[] =
    "usage: mlreg attest REF --eval-report FILE --key EVALKEY [--json] [--registry URL]\n"
    "                    [--token-file FILE]\n"
    "\n" CLI_REF_HELP "\n"
    "Signs an evaluation of the release (the eval report FILE, in any layout\n"
    "`mlreg push` takes) with the evaluator's secret key EVALKEY (mlreg or minisign\n"
    "format; password from MLREG_KEY_PASSWORD or the terminal when encrypted) as a\n"
    "DSSE-signed in-toto statement about the release's manifest digest, and stores\n"
    "it in the registry. Gates read it only when the key is in the registry's\n"
    "keyring with role 'evaluator'.\n"
    "  --eval-report FILE  e.g. --eval-report nightly/eval.json\n"
    "  --key EVALKEY       e.g. --key ~/.mlreg/evaluator.key\n"
    "  --json              print the registry's answer as JSON\n"
    "  --registry URL      e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "e.g. mlreg attest team/clf@1.4 --eval-report eval.json --key evaluator.key\n";

/* POSTs @p env to the evaluations of @p model@@p version: *ans_out the
 * registry's answer, *created_out 1 when it stored it now. */
static int attest_send(json_t **ans_out, int *created_out, cli_client *c, const char *model,
                       const char *version, const char *env)
{
    int error = 0;
    cli_response resp;
    char path[600];

    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/evaluations", model, version);
    cli_request req = {.method = "POST",
                       .url = path,
                       .accept = "application/json",
                       .content_type = "application/json",
                       .body = env,
                       .body_len = strlen(env),
                       .body_fd = -1,
                       .max_body = 4 * 1024 * 1024};
    if ((error = cli_request_do(&resp, c, &req)) < 0) goto done;
    if (resp.status != 200 && resp.status != 201) {
        error = cli_http_error(&resp, "attaching the evaluation");
        goto done;
    }
    *ans_out = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
    if (!json_is_object(*ans_out)) {
        json_decref(*ans_out);
        *ans_out = NULL;
        error = mlreg_error_set(MLREG_ESERVER, "attaching the evaluation: registry sent invalid "
                                               "JSON");
        goto done;
    }
    *created_out = resp.status == 201;
done:
    cli_response_clear(&resp);
    return error;
}

int cmd_attest(int argc, char **argv)
{
    int error = 0, m, created = 0, json = 0;
    const char *refstr = NULL, *keyfile = NULL, *registry = NULL, *report_path = NULL;
    cli_release_ref rr;
    cli_client *c = NULL;
    cli_release rel;
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pk;
    mlreg_eval_report *r = NULL;
    json_t *ans = NULL;
    char *report = NULL, *statement = NULL, *env = NULL;
    size_t report_len = 0, slen = 0;
    char id[MLREG_KEYID_HEXLEN + 1];

    cli_release_init(&rel);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_line, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if ((m = cli_opt(&keyfile, &i, argc, argv, "--key")) != 0 ||
                   (m = cli_opt(&report_path, &i, argc, argv, "--eval-report")) != 0 ||
                   (m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&refstr, argv[i]) < 0) {
            goto usage;
        }
    }
    if (!refstr) {
        mlreg_error_set(MLREG_EINVALID, "missing REF");
        goto usage;
    }
    if (cli_release_ref_parse(&rr, refstr) < 0) goto usage;
    if (!report_path || !*report_path) {
        mlreg_error_set(MLREG_EINVALID, "missing --eval-report FILE");
        goto usage;
    }
    if (!keyfile || !*keyfile) {
        mlreg_error_set(MLREG_EINVALID, "missing --key EVALKEY");
        goto usage;
    }

    if ((error = cli_seckey_load(&sk, keyfile)) < 0) goto done;
    mlreg_seckey_pubkey(&pk, sk);
    mlreg_keyid_format(id, &pk.id);
    if ((error = mlreg_file_read(&report, &report_len, report_path, MLREG_MAX_EVAL_REPORT_BYTES)) <
        0)
        goto done;
    if ((error = mlreg_eval_report_parse(&r, report, report_len)) < 0) {
        error = cli_error_wrap(error, "eval report %s refused before anything was sent",
                               mlreg_text_printable(report_path));
        goto done;
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_release_ref_fetch(&rel, c, &rr)) < 0)
        goto done;
    if ((error = mlreg_evaluation_statement(&statement, &slen, rr.ref.model, rel.version,
                                            rel.digest, report, report_len, mlreg_time_now_ns())) <
        0)
        goto done;
    error = mlreg_dsse_sign(&env, MLREG_DSSE_INTOTO_TYPE, statement, slen, sk);
    /* The secret key is not needed any more: wipe it before the upload. */
    mlreg_seckey_free(sk);
    sk = NULL;
    if (error < 0) goto done;
    if ((error = attest_send(&ans, &created, c, rr.ref.model, rel.version, env)) < 0) goto done;
    if (json) {
        if ((error = find_print_json(ans)) < 0) goto done;
    } else {
        fprintf(stderr, "evaluation of %s@%s (%s) signed with key %s: %s; %s\n", rr.ref.model,
                rel.version, rel.digest, id, created ? "stored" : "already stored",
                json_is_true(json_object_get(ans, "counts"))
                    ? "a trusted evaluator key of the registry: gates may use it"
                    : "not a trusted evaluator key of the registry: gates do not use it");
        printf("%s\n", json_string_value(json_object_get(ans, "referrer"))
                           ? json_string_value(json_object_get(ans, "referrer"))
                           : id);
    }
    error = cli_flush_stdout();
done:
    mlreg_seckey_free(sk);
    mlreg_eval_report_free(r);
    free(report);
    free(statement);
    free(env);
    json_decref(ans);
    cli_release_clear(&rel);
    cli_client_free(c);
    return error < 0 ? cli_fail("attest", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg attest: %s\n%s", mlreg_error_last(), usage_line);
    return CLI_EXIT_USAGE;
}
