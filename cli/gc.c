/* gc.c: `mlreg gc [--dry-run] [--json]`: asks the registry for one garbage
 * collection (POST /api/v1/admin/gc, admin): first the releases the
 * server's retention rules do not keep are purged, then the blobs nothing
 * references are deleted. Prints what it purged and deleted, or with
 * --dry-run what a real run would. The grace period and the rules are the
 * server's (gc.grace, retention).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "client.h"
#include "mlreg/common.h"
#include "mlreg/text.h"

static const char gc_usage[] =
    "usage: mlreg gc [--dry-run] [--json] [--registry URL]\n"
    "\n"
    "First purges the releases that the server's retention rules (config\n"
    "retention) do not keep, then deletes the blobs that no release, manifest,\n"
    "signature or attestation references and that were written or linked\n"
    "longer ago than the server's grace period (config gc.grace,\n"
    "default a day), and removes uploads abandoned longer ago than\n"
    "gc.stale_upload_age. Needs an admin token.\n"
    "\n"
    "  --dry-run  print exactly what a real run would purge and delete; change nothing\n"
    "  --json     print the registry's report as JSON\n"
    "  --registry URL the registry (default $MLREG_URL, else http://127.0.0.1:5080)\n"
    "\n"
    "example: mlreg gc --dry-run --json --registry https://mlreg.example.com\n";

static long long jint(const json_t *j, const char *key)
{
    return (long long)json_integer_value(json_object_get(j, key));
}

/* A string of the report, or "?" when it is missing or not printable. */
static const char *jtext(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));

    return s && mlreg_text_printable(s) ? s : "?";
}

/* The retention part of the report (null without rules): each release
 * purged (or that would be) with why, each refused purge, and how many
 * were kept for which reason. */
static void print_retention(const json_t *ret, int dry_run)
{
    static const char *const kinds[] = {"newest", "held by a stage", "held recently",
                                        "protected stage", "withdrawn recently"};
    const json_t *b;
    size_t i, k, counts[5] = {0};
    int any = 0;

    if (!json_is_object(ret)) return;
    json_array_foreach(json_object_get(ret, dry_run ? "purge" : "purged"), i, b)
    {
        if (dry_run)
            printf("retention would purge %s@%s: %s\n", jtext(b, "model"), jtext(b, "version"),
                   jtext(b, "why"));
        else
            printf("purged %s@%s (entry %lld): %s\n", jtext(b, "model"), jtext(b, "version"),
                   jint(b, "seq"), jtext(b, "why"));
    }
    json_array_foreach(json_object_get(ret, "not_purged"), i, b)
    {
        printf("not purged %s@%s: %s\n", jtext(b, "model"), jtext(b, "version"), jtext(b, "error"));
    }
    json_array_foreach(json_object_get(ret, "kept"), i, b)
    {
        const char *why = jtext(b, "why");
        k = !strncmp(why, "newest", 6)      ? 0
            : !strncmp(why, "held by", 7)   ? (strstr(why, " within ") ? 2 : 1)
            : !strncmp(why, "protected", 9) ? 3
            : !strncmp(why, "withdrawn", 9) ? 4
                                            : 0;
        counts[k]++;
    }
    printf("retention %s %zu release(s), kept %zu", dry_run ? "would purge" : "purged",
           json_array_size(json_object_get(ret, dry_run ? "purge" : "purged")),
           json_array_size(json_object_get(ret, "kept")));
    for (k = 0; k < 5; k++) {
        if (counts[k] == 0) continue;
        printf("%s%zu %s", any ? ", " : " (", counts[k], kinds[k]);
        any = 1;
    }
    printf("%s", any ? ")" : "");
    if (!dry_run && json_array_size(json_object_get(ret, "not_purged")) > 0)
        printf("; %zu not purged", json_array_size(json_object_get(ret, "not_purged")));
    printf("\n");
}

/* The report lists at most 1000 blobs of each kind; the rest of a real
 * run's are in its gc.collect entries, whose seqs are in "entries". */
static void print_more(const json_t *r, long long more)
{
    const json_t *entries = json_object_get(r, "entries");
    size_t n = json_array_size(entries);

    if (more <= 0) return;
    if (n == 0) {
        printf("... and %lld more\n", more);
        return;
    }
    printf("... and %lld more (audit entries %lld..%lld)\n", more,
           (long long)json_integer_value(json_array_get(entries, 0)),
           (long long)json_integer_value(json_array_get(entries, n - 1)));
}

static void print_report(const json_t *r, int dry_run)
{
    const json_t *list = json_object_get(r, "deleted"), *b;
    char size[32];
    size_t i;

    print_retention(json_object_get(r, "retention"), dry_run);
    json_array_foreach(list, i, b)
    {
        const char *d = json_string_value(json_object_get(b, "digest"));
        cli_format_size(size, sizeof(size), (uint64_t)jint(b, "size"));
        printf("%s %s (%s)\n", dry_run ? "would delete" : "deleted",
               d && mlreg_text_printable(d) ? d : "?", size);
    }
    print_more(r, jint(r, "deleted_blobs") - (long long)json_array_size(list));
    list = json_object_get(r, "not_deleted");
    json_array_foreach(list, i, b)
    {
        const char *d = json_string_value(json_object_get(b, "digest"));
        const char *e = json_string_value(json_object_get(b, "error"));
        printf("not deleted %s: %s\n", d && mlreg_text_printable(d) ? d : "?",
               e && mlreg_text_printable(e) ? e : "?");
    }
    print_more(r, jint(r, "not_deleted_blobs") - (long long)json_array_size(list));
    cli_format_size(size, sizeof(size), (uint64_t)jint(r, "bytes_reclaimed"));
    printf("%s %lld blob(s), %s; kept %lld referenced, %lld in the %llds grace period, "
           "%lld being collected elsewhere; %lld stale upload(s) %s\n",
           dry_run ? "would delete" : "deleted", jint(r, "deleted_blobs"), size,
           jint(r, "blobs_referenced"), jint(r, "blobs_young"), jint(r, "grace_seconds"),
           jint(r, "blobs_busy"), jint(r, "stale_uploads"),
           dry_run ? "would be removed" : "removed");
}

int cmd_gc(int argc, char **argv)
{
    int error = 0, dry_run = 0, as_json = 0, i, rc;
    const char *registry = NULL, *none = NULL;
    cli_client *c = NULL;
    cli_response resp;
    json_t *body = NULL, *ans = NULL;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(gc_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--dry-run")) {
            dry_run = 1;
            continue;
        }
        if (!strcmp(argv[i], "--json")) {
            as_json = 1;
            continue;
        }
        if ((rc = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (rc < 0) goto usage;
            continue;
        }
        if (cli_positional(&none, argv[i]) < 0 || none != NULL) {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", argv[i]);
            goto usage;
        }
    }
    cli_response_init(&resp);
    if ((body = json_pack("{s:b}", "dry_run", dry_run)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&ans, &resp, c, "POST", "/api/v1/admin/gc", body,
                                "garbage collection")) < 0)
        goto done;
    if (as_json)
        cli_print_json(resp.body ? resp.body : "", resp.body_len);
    else
        print_report(ans, dry_run);
    error = cli_flush_stdout();

done:
    json_decref(ans);
    json_decref(body);
    cli_response_clear(&resp);
    cli_client_free(c);
    return error < 0 ? cli_fail("gc", error) : CLI_EXIT_OK;

usage:
    fprintf(stderr, "mlreg gc: %s\n%s", mlreg_error_last(), gc_usage);
    return CLI_EXIT_USAGE;
}
