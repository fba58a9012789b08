/* purge.c: `mlreg purge` (docs/lifecycle.md, "Purge").
 *
 * One request; the registry checks the role (admin) and that no stage holds
 * the release, records the purge and deletes the files no other release
 * shares. The answer is printed for a person or, with --json, as the server
 * sent it. Registry text is printed only through the text rule
 * (mlreg_text_printable, cli_print_json).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "client.h"
#include "mlreg/common.h"
#include "mlreg/text.h"

static const char usage[] =
    "usage: mlreg purge MODEL@VERSION --reason TEXT [--json]\n"
    "                   [--registry URL] [--token-file FILE]\n"
    "\n"
    "Purges a release, for takedowns: its files that no other release shares\n"
    "are deleted from the store now, its manifest leaves the registry (reading\n"
    "the release or its manifest answers 410 Gone, naming the purge's audit\n"
    "entry) and the version can never be pushed again. The audit log keeps\n"
    "every entry; the manifest's own bytes and the eval report stay as their\n"
    "evidence, so `mlreg audit verify` still passes. A release a stage holds\n"
    "is refused: withdraw it with --rollback first. Needs admin.\n"
    "Exit 0 purged, 1 refused or forbidden, 2 usage, 3 registry unreachable.\n"
    "\n"
    "example: mlreg purge vision/det@2.1.0 --reason 'takedown request T-123' --json\n";

static const char *pr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? mlreg_text_printable(s) : "-";
}

int cmd_purge(int argc, char **argv)
{
    const char *refstr = NULL, *reason = NULL, *registry = NULL;
    int as_json = 0, error = 0, m;
    cli_ref ref;
    cli_client *c = NULL;
    cli_response resp;
    json_t *body = NULL, *ans = NULL, *b, *p;
    char path[700];
    size_t i;

    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "-h") || !strcmp(argv[k], "--help")) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[k], "--json")) {
            as_json = 1;
        } else if ((m = cli_opt(&reason, &k, argc, argv, "--reason")) != 0 ||
                   (m = cli_opt(&registry, &k, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&refstr, argv[k]) < 0) {
            goto usage;
        }
    }
    if (!refstr) {
        mlreg_error_set(MLREG_EINVALID, "missing MODEL@VERSION");
        goto usage;
    }
    if (cli_ref_parse(&ref, refstr, 0) < 0) goto usage;
    if (cli_reason_check(reason) < 0) goto usage;

    cli_response_init(&resp);
    if (!(body = json_pack("{s:s}", "reason", reason))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s/purge", ref.model, ref.version);
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&ans, &resp, c, "POST", path, body, "purging")) < 0)
        goto done;
    if (as_json) {
        cli_print_json(resp.body ? resp.body : "", resp.body_len);
    } else {
        p = json_object_get(ans, "purged");
        printf("purged %s@%s (%s) as %s at %s (audit entry %lld): %s\n", ref.model, ref.version,
               pr(ans, "digest"), pr(p, "by"), pr(p, "time"),
               (long long)json_integer_value(json_object_get(p, "seq")), pr(p, "reason"));
        json_array_foreach(json_object_get(ans, "deleted"), i, b)
        {
            printf("  deleted %s (%lld bytes)\n", pr(b, "digest"),
                   (long long)json_integer_value(json_object_get(b, "size")));
        }
        json_array_foreach(json_object_get(ans, "not_deleted"), i, b)
        {
            printf("  not deleted %s: %s (the next `mlreg gc` deletes it)\n", pr(b, "digest"),
                   pr(b, "error"));
        }
        printf("%lld files deleted, %lld bytes reclaimed; files other releases share stay\n",
               (long long)json_integer_value(json_object_get(ans, "deleted_blobs")),
               (long long)json_integer_value(json_object_get(ans, "bytes_reclaimed")));
    }
    error = cli_flush_stdout();
done:
    json_decref(ans);
    json_decref(body);
    cli_response_clear(&resp);
    cli_client_free(c);
    return error < 0 ? cli_fail("purge", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg purge: %s\n%s", mlreg_error_last(), usage);
    return CLI_EXIT_USAGE;
}
