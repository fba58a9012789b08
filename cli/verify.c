/* verify.c: `mlreg verify REF (--trusted-key PUBFILE... | --keyring FILE)`:
 * the auditor's and deploy step's check of a release, without writing
 * anything.
 *
 * 1. the manifest: its bytes must hash to the pinned digest or the one the
 *    registry announces, and it must be a release of this model/version;
 * 2. the signatures: at least one must verify with a TRUSTED key (never a
 *    key the registry sends) over those manifest bytes, with a trusted
 *    comment naming this model, version and digest, by a key that is not
 *    revoked for it; any signature that is malformed, or by a trusted key
 *    but not over this release, fails the verification (someone tampered);
 *    a signature by another key that merely carries a trusted key's id (key
 *    ids are no secret) is ignored, like any untrusted key's;
 * 3. every blob: streamed through SHA-256 and counted, nothing kept.
 * Everything is checked and reported, and the exit status is 0 only when
 * all of it passes; otherwise 1, with every reason on stderr.
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
#include "mlreg/text.h"
#include "ref.h"
#include "release.h"

static const char usage_line[] =
    "usage: mlreg verify REF (--trusted-key PUBFILE... | --keyring FILE) [--json]\n"
    "                    [--registry URL] [--token-file FILE]\n"
    "\n" CLI_REF_HELP "\n"
    "Checks that the release carries a valid signature by a trusted key over its\n"
    "manifest bytes (trusted comment naming this model, version and digest;\n"
    "revocations in the keyring file honoured) and that every file's bytes in the\n"
    "registry match the manifest (streamed, nothing written). --trusted-key takes a\n"
    "minisign .pub file and may repeat; --keyring takes the JSON of `mlreg key list\n"
    "--json` or {\"keys\":[{\"name\":N,\"public_key\":K}]}. Exit 0 only when all pass.\n"
    "  --trusted-key PUBFILE  e.g. --trusted-key release-ci.pub (repeatable)\n"
    "  --keyring FILE         e.g. --keyring keys.json (from mlreg key list --json)\n"
    "  --json                 one JSON object: files, signatures, passed, reasons\n"
    "  --registry URL         e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "e.g. mlreg verify team/clf:production --trusted-key release-ci.pub\n";

typedef struct {
    int ok;
    char reason[600];
} file_result;

/* Appends one reason to the list of failures (a JSON array of strings). */
static int add_reason(json_t *list, const char *reason)
{
    if (json_array_append_new(list, json_string(reason)) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    return 0;
}

/* Every reason, joined by "; ", into *out (free()). */
static int join_reasons(char **out, json_t *list)
{
    size_t n = 1, i;
    json_t *r;

    json_array_foreach(list, i, r) n += strlen(json_string_value(r)) + 2;
    if (!(*out = malloc(n))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    (*out)[0] = '\0';
    json_array_foreach(list, i, r)
    {
        if (i) strcat(*out, "; ");
        strcat(*out, json_string_value(r));
    }
    return 0;
}

static void print_table(const char *model, const cli_release *r, const cli_sigreport *sigs,
                        const file_result *res, int passed)
{
    char size_str[32];

    printf("release     %s@%s\n", model, r->version);
    printf("digest      %s\n", r->digest);
    printf("signatures  %zu (%zu by a trusted key that counts)\n", sigs->n, sigs->valid);
    if (sigs->n) printf("  %-16s  %-20s  %-9s  %s\n", "KEY ID", "NAME", "STATUS", "DETAIL");
    for (size_t i = 0; i < sigs->n; i++) {
        const mlreg_sigcheck *k = &sigs->checks[i];
        printf("  %-16s  %-20s  %-9s  %s\n", k->key_id[0] ? k->key_id : "?",
               mlreg_text_printable(k->name), mlreg_sigcheck_status_name(k->status),
               mlreg_text_printable(k->reason));
    }
    printf("files       %zu\n", r->nlayers);
    if (r->nlayers) printf("  %-11s  %-30s  %10s  %s\n", "KIND", "FILE", "SIZE", "STATUS");
    for (size_t i = 0; i < r->nlayers; i++) {
        const cli_layer *l = &r->layers[i];
        cli_format_size(size_str, sizeof(size_str), l->size);
        printf("  %-11s  %-30s  %10s  %s\n", l->kind, l->title, size_str,
               res[i].ok ? "ok" : mlreg_text_printable(res[i].reason));
    }
    printf("result      %s\n", passed ? "verified" : "FAILED");
}

static int print_json(const char *model, const cli_release *r, const cli_sigreport *sigs,
                      const file_result *res, int passed, json_t *reasons)
{
    int error = 0;
    json_t *o = NULL, *sa, *fa;

    o = json_pack("{s:s, s:s, s:s, s:b, s:O, s:[], s:[]}", "model", model, "version", r->version,
                  "digest", r->digest, "verified", passed, "reasons", reasons, "signatures",
                  "files");
    if (!o) goto nomem;
    sa = json_object_get(o, "signatures");
    for (size_t i = 0; i < sigs->n; i++) {
        const mlreg_sigcheck *k = &sigs->checks[i];
        json_t *s =
            json_pack("{s:s?, s:s?, s:s, s:b, s:s}", "key_id", k->key_id[0] ? k->key_id : NULL,
                      "name", k->name, "status", mlreg_sigcheck_status_name(k->status), "counts",
                      k->status == MLREG_SIGCHECK_VALID, "detail", k->reason);
        if (!s || json_array_append_new(sa, s) < 0) goto nomem;
    }
    fa = json_object_get(o, "files");
    for (size_t i = 0; i < r->nlayers; i++) {
        const cli_layer *l = &r->layers[i];
        json_t *f = json_pack("{s:s, s:s, s:s, s:I, s:b, s:s?}", "title", l->title, "kind", l->kind,
                              "digest", l->digest_str, "size", (json_int_t)l->size, "ok", res[i].ok,
                              "error", res[i].ok ? NULL : res[i].reason);
        if (!f || json_array_append_new(fa, f) < 0) goto nomem;
    }
    error = find_print_json(o);
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    json_decref(o);
    return error;
}

int cmd_verify(int argc, char **argv)
{
    int error = 0, m, json = 0, passed;
    const char *refstr = NULL, *registry = NULL;
    cli_release_ref rr;
    cli_trust_opts trust;
    mlreg_trustset *ts = NULL;
    cli_client *c = NULL;
    cli_release rel;
    cli_sigreport sigs = {0};
    file_result *res = NULL;
    json_t *reasons = NULL;
    char *joined = NULL;

    cli_release_init(&rel);
    cli_trust_opts_init(&trust);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_line, stdout);
            cli_trust_opts_clear(&trust);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if ((m = cli_trust_opt(&trust, &i, argc, argv)) != 0 ||
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
    if (!cli_trust_opts_given(&trust)) {
        mlreg_error_set(MLREG_EINVALID, "give --trusted-key PUBFILE or --keyring FILE");
        goto usage;
    }
    if ((error = cli_trust_load(&ts, &trust)) < 0) goto done;
    if (!(reasons = json_array())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_release_ref_fetch(&rel, c, &rr)) < 0 ||
        (error = cli_sigs_check(&sigs, c, rr.ref.model, &rel, ts)) < 0)
        goto done;
    if ((error = cli_sigreport_verdict(&sigs)) < 0 &&
        (error = add_reason(reasons, mlreg_error_last())) < 0)
        goto done;
    if (rel.nlayers && !(res = calloc(rel.nlayers, sizeof(*res)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < rel.nlayers; i++) {
        /* A file that is missing or differs is a finding; a registry that
         * cannot be reached or fails is not, and stops the check. */
        error = cli_blob_fetch(c, rr.ref.model, &rel.layers[i], -1);
        if (error == MLREG_EMISMATCH || error == MLREG_ENOTFOUND) {
            snprintf(res[i].reason, sizeof(res[i].reason), "%s", mlreg_error_last());
            if ((error = add_reason(reasons, res[i].reason)) < 0) goto done;
            continue;
        }
        if (error < 0) goto done;
        res[i].ok = 1;
    }
    passed = json_array_size(reasons) == 0;
    if (json)
        error = print_json(rr.ref.model, &rel, &sigs, res, passed, reasons);
    else
        print_table(rr.ref.model, &rel, &sigs, res, passed);
    if (error < 0) goto done;
    if ((error = cli_flush_stdout()) < 0) goto done;
    if (!passed) {
        if ((error = join_reasons(&joined, reasons)) < 0) goto done;
        error = mlreg_error_set(MLREG_EMISMATCH, "%s@%s: %s", rr.ref.model, rel.version, joined);
    }
done:
    free(joined);
    json_decref(reasons);
    free(res);
    cli_sigreport_free(&sigs);
    cli_release_clear(&rel);
    cli_client_free(c);
    mlreg_trustset_free(ts);
    cli_trust_opts_clear(&trust);
    return error < 0 ? cli_fail("verify", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg verify: %s\n%s", mlreg_error_last(), usage_line);
    cli_trust_opts_clear(&trust);
    return CLI_EXIT_USAGE;
}
