/* scrub.c: `mlreg scrub [--model M] [--rate BYTES_PER_SECOND] [--dry-run]
 * [--json]`: asks the registry to re-hash its blob store
 * (POST /api/v1/admin/scrub, admin) and prints the report.
 *
 * Exit 1 when the scrub found a corrupt or missing blob, 0 when clean:
 * a cron job or a CI step can act on it. The request waits for the whole
 * scrub (no client-side timeout besides the connection's); a scrub over a
 * large store is best rate-limited and run in the background, or scheduled
 * in the server (scrub.interval, conf/README.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "client.h"
#include "mlreg/common.h"
#include "mlreg/json_out.h"
#include "mlreg/names.h"
#include "mlreg/text.h"

static const char usage_line[] =
    "usage: mlreg scrub [--model MODEL] [--rate BYTES_PER_SECOND] [--dry-run] [--json]\n"
    "                   [--registry URL]\n"
    "\n"
    "Has the registry read back every stored blob (or every blob MODEL's\n"
    "releases use) and compare it with its digest. A damaged blob is moved to\n"
    "quarantine, so the registry stops serving it and the next `mlreg push` of\n"
    "the file uploads it again; --dry-run only reports. Missing blobs are\n"
    "reported. --rate limits the reading (0 = unlimited). Needs an admin token.\n"
    "Exit 1 when a damaged or missing blob was found, 0 when all is well.\n"
    "\n"
    "example: mlreg scrub --model vision/det --rate 50000000 --dry-run --json\n";

/* Prints one corrupt or missing item: digest, what, releases. */
static void print_item(json_t *it, const char *what)
{
    json_t *r;
    size_t i;

    printf("%-9s %s", what, mlreg_text_printable(json_string_value(json_object_get(it, "digest"))));
    if (json_is_true(json_object_get(it, "quarantined")))
        printf(" (quarantined: %s)",
               mlreg_text_printable(json_string_value(json_object_get(it, "quarantine"))));
    if (json_is_string(json_object_get(it, "error")))
        printf(" (%s)", mlreg_text_printable(json_string_value(json_object_get(it, "error"))));
    printf("\n");
    if (json_array_size(json_object_get(it, "releases")) == 0) {
        printf("          used by no release\n");
        return;
    }
    json_array_foreach(json_object_get(it, "releases"), i, r)
    {
        printf("          used by %s\n", mlreg_text_printable(json_string_value(r)));
    }
    if (json_integer_value(json_object_get(it, "more_releases")) > 0)
        printf("          and %" JSON_INTEGER_FORMAT " more releases\n",
               json_integer_value(json_object_get(it, "more_releases")));
}

static void print_report(json_t *rep, const char *model)
{
    json_t *it;
    size_t i, nc = json_array_size(json_object_get(rep, "corrupt"));
    size_t nm = json_array_size(json_object_get(rep, "missing"));
    char size[32];
    double secs = json_number_value(json_object_get(rep, "seconds"));

    cli_format_size(size, sizeof(size),
                    (uint64_t)json_integer_value(json_object_get(rep, "bytes")));
    json_array_foreach(json_object_get(rep, "corrupt"), i, it)
    {
        print_item(it, "corrupt");
    }
    json_array_foreach(json_object_get(rep, "missing"), i, it)
    {
        print_item(it, "missing");
    }
    printf("scrub%s%s: %" JSON_INTEGER_FORMAT " blobs, %s read in %.1f s: %zu corrupt, %zu missing,"
           " %" JSON_INTEGER_FORMAT " quarantined%s%s\n",
           model ? " of " : "", model ? model : "",
           json_integer_value(json_object_get(rep, "checked")), size, secs, nc, nm,
           json_integer_value(json_object_get(rep, "quarantined")),
           json_is_true(json_object_get(rep, "dry_run")) ? " (dry run)" : "",
           json_is_true(json_object_get(rep, "stopped")) ? " (stopped early)" : "");
    if (nc > 0 && !json_is_true(json_object_get(rep, "dry_run")))
        printf("push the releases' files again (mlreg push) to repair them\n");
}

int cmd_scrub(int argc, char **argv)
{
    int error = 0, m, as_json = 0, dry_run = 0, found = 0;
    const char *model = NULL, *rate = NULL, *registry = NULL;
    uint64_t rate_n = 0;
    cli_client *c = NULL;
    cli_response resp;
    json_t *body = NULL, *rep = NULL;
    char *text = NULL;

    cli_response_init(&resp);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_line, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if (!strcmp(argv[i], "--dry-run")) {
            dry_run = 1;
        } else if ((m = cli_opt(&model, &i, argc, argv, "--model")) != 0 ||
                   (m = cli_opt(&rate, &i, argc, argv, "--rate")) != 0 ||
                   (m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'",
                            mlreg_text_printable(argv[i]));
            goto usage;
        }
    }
    if (model != NULL && mlreg_name_validate(model) < 0) goto usage;
    if (rate != NULL) {
        char *end = NULL;
        errno = 0;
        rate_n = strtoull(rate, &end, 10);
        if (errno != 0 || end == rate || *end != '\0' || rate[0] == '-' || rate_n > (1ull << 50)) {
            mlreg_error_set(MLREG_EINVALID, "--rate takes bytes per second, 0 to 2^50");
            goto usage;
        }
    }

    body = json_pack("{s:s?, s:I, s:b}", "model", model, "rate_bytes_per_second",
                     (json_int_t)rate_n, "dry_run", dry_run);
    if (body == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&rep, &resp, c, "POST", "/api/v1/admin/scrub", body, "scrub")) < 0)
        goto done;
    if (!json_is_array(json_object_get(rep, "corrupt")) ||
        !json_is_array(json_object_get(rep, "missing"))) {
        error = mlreg_error_set(MLREG_ESERVER, "scrub: the registry's report has no corrupt or "
                                               "missing list");
        goto done;
    }
    found = json_array_size(json_object_get(rep, "corrupt")) > 0 ||
            json_array_size(json_object_get(rep, "missing")) > 0;
    if (as_json) {
        if ((text = mlreg_json_dumps(rep, JSON_COMPACT)) == NULL) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        cli_print_json(text, strlen(text));
    } else {
        print_report(rep, model);
    }
    error = cli_flush_stdout();

done:
    free(text);
    json_decref(body);
    json_decref(rep);
    cli_response_clear(&resp);
    cli_client_free(c);
    if (error < 0) return cli_fail("scrub", error);
    return found ? CLI_EXIT_REFUSED : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg scrub: %s\n%s", mlreg_error_last(), usage_line);
    return CLI_EXIT_USAGE;
}
