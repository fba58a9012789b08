/* token.c: `mlreg token new --name NAME --role ROLE...`: a fresh API token
 * and the `tokens` entry of the server config that admits it; and the
 * tokens a registry makes at runtime, over its API (admin):
 * `mlreg token create|list|revoke` (include/mlreg/tokens.h).
 *
 * The token is "mlreg_" + base64url (no padding) of 32 bytes from
 * randombytes_buf(): 256 bits, so a hash of it cannot be brute-forced and
 * the config may hold the SHA-256 alone (docs/promotions-api.md). The token
 * is built in sodium_malloc memory and wiped before exit; it is printed
 * once, on stdout's first line, and the config entry on the second line:
 *
 *   TOKEN=$(mlreg token new --name ci --role push | sed -n 1p)
 *
 * `token new` talks to no registry. `token create` asks the registry to
 * make the token: the registry draws it, keeps its hash only and answers
 * it once; it is printed the same way, on stdout's first line, and the
 * bytes of the answer that held it are wiped.
 */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "mlreg/auth.h"
#include "mlreg/common.h"
#include "mlreg/json_out.h"
#include "mlreg/names.h"
#include "mlreg/text.h"
#include "mlreg/time.h"
#include "mlreg/tokens.h"

#define TOKEN_PREFIX "mlreg_"

static const char token_usage[] =
    "usage: mlreg token new --name NAME --role ROLE [--role ROLE]...\n"
    "       mlreg token create --name NAME --role ROLE [--role ROLE]... [--model-prefix P]\n"
    "                          [--expires DURATION|TIME] [--hf] [--registry URL]\n"
    "       mlreg token list [--json] [--registry URL]\n"
    "       mlreg token revoke NAME [--registry URL]\n"
    "\n"
    "create, list and revoke manage the tokens a registry keeps at runtime (admin\n"
    "token needed; the server must have tokens in its config). create prints the new\n"
    "token once, on the first line of stdout. --model-prefix P limits every role to\n"
    "the models under P (push becomes push@P; a role already carrying @PREFIX is\n"
    "refused). --expires takes a duration (90s, 30m, 12h, 7d, 2w, or sums such as\n"
    "1d12h) or an RFC 3339 time. --hf prints it as hf_TOKEN, the form the Hugging\n"
    "Face Hub clients want (HF_TOKEN), which the registry takes on its Hub routes\n"
    "only. list never shows a token nor its hash; its LAST USED is what the\n"
    "answering node saw.\n"
    "\n"
    "new makes a token offline for the config file:\n"
    "Prints a new random API token on the first line of stdout, and on the second\n"
    "the entry to add to the server config's \"tokens\" list:\n"
    "  {\"name\": NAME, \"sha256\": \"<hex SHA-256 of the token>\", \"roles\": [...]}\n"
    "Only the hash goes into the config; keep the token itself secret (give it to\n"
    "clients as MLREG_TOKEN or in a --token-file). NAME is recorded as the actor\n"
    "of every change made with the token.\n"
    "\n"
    "ROLE: read | push | admin | promote:STAGE | approve:STAGE | override:STAGE\n"
    "(break-glass promotions despite failing gates), optionally limited\n"
    "to the models under a prefix with @PREFIX, which is a model name:\n"
    "promote:production@vision grants the model vision and every model under\n"
    "vision/ (vision/det, ...), never visionary.\n"
    "\n"
    "examples: mlreg token new --name ci-push --role push --role promote:dev\n"
    "          mlreg token create --name vision-ci --role push --model-prefix vision --expires "
    "90d\n"
    "          mlreg token list --json --registry https://mlreg.example.com\n"
    "          mlreg token revoke vision-ci\n";

static int token_new(int argc, char **argv)
{
    int error = 0, m;
    const char *name = NULL, *v, **roles = NULL;
    size_t nroles = 0;
    char *token = NULL, hex[65], *text = NULL;
    json_t *entry = NULL, *arr;

    if (!(roles = calloc((size_t)argc, sizeof(*roles)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(token_usage, stdout);
            goto done;
        }
        if ((m = cli_opt(&name, &i, argc, argv, "--name")) != 0) {
            if (m < 0) goto usage;
        } else if ((m = cli_opt(&v, &i, argc, argv, "--role")) != 0) {
            if (m < 0) goto usage;
            if (mlreg_auth_role_validate(v) < 0) goto usage;
            roles[nroles++] = v;
        } else {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", argv[i]);
            goto usage;
        }
    }
    if (!name) {
        mlreg_error_set(MLREG_EINVALID, "missing --name NAME");
        goto usage;
    }
    if (!mlreg_auth_token_name_valid(name)) {
        mlreg_error_set(MLREG_EINVALID,
                        "token name '%s' must be 1 to 64 of [A-Za-z0-9._-], starting with a "
                        "letter or digit",
                        name);
        goto usage;
    }
    if (!nroles) {
        mlreg_error_set(MLREG_EINVALID, "give at least one --role");
        goto usage;
    }

    if ((error = mlreg_tokens_secret_new(&token, hex)) < 0) goto done;

    if (!(entry = json_pack("{s:s, s:s, s:[]}", "name", name, "sha256", hex, "roles"))) goto nomem;
    arr = json_object_get(entry, "roles");
    for (size_t i = 0; i < nroles; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            dup |= !strcmp(roles[i], roles[j]);
        if (!dup && json_array_append_new(arr, json_string(roles[i])) < 0) goto nomem;
    }
    if (!(text = mlreg_json_dumps(entry, JSON_PRESERVE_ORDER))) goto nomem;
    printf("%s\n%s\n", token, text);
    if ((error = cli_flush_stdout()) < 0) goto done;
    fprintf(stderr,
            "token for '%s': line 1 is the token (shown once; keep it secret, give it to "
            "clients as MLREG_TOKEN or in a --token-file); line 2 goes into the server config's "
            "\"tokens\" "
            "list\n",
            name);
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    mlreg_tokens_secret_free(token);
    free(text);
    json_decref(entry);
    free(roles);
    return error < 0 ? cli_fail("token new", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg token new: %s\n%s", mlreg_error_last(), token_usage);
    free(roles);
    return CLI_EXIT_USAGE;
}

/* ---- tokens kept by a registry ---------------------------------------------- */

/* Parses a duration such as "90s", "12h", "7d" or "1d12h" into seconds.
 * 0, or -1 when @p s is not one or the sum passes MLREG_TOKENS_EXPIRES_MAX. */
static int duration_parse(int64_t *out, const char *s)
{
    int64_t total = 0;

    if (*s == '\0') return -1;
    while (*s) {
        int64_t n = 0, unit;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            n = n * 10 + (*s++ - '0');
            if (++digits > 12) return -1;
        }
        switch (*s++) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return -1;
        }
        if (digits == 0) return -1;
        total += n * unit;
        if (total > MLREG_TOKENS_EXPIRES_MAX) return -1;
    }
    if (total <= 0) return -1;
    *out = total;
    return 0;
}

/* The roles of `token create`: each checked, and with @p prefix each
 * limited to it (a role carrying its own @PREFIX is a usage error: the
 * two would not say the same thing). *out owned. */
static int create_roles(json_t **out, const char *const *roles, size_t n, const char *prefix)
{
    json_t *arr = json_array();
    char buf[MLREG_AUTH_ROLE_MAX + 1];
    int error = 0;

    if (arr == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    if (prefix != NULL && mlreg_name_validate(prefix) < 0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "--model-prefix '%s' is not a model name (lowercase [a-z0-9] "
                                "components joined by '.', '_' or '-', separated by '/')",
                                prefix);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const char *r = roles[i];
        if (prefix != NULL) {
            if (strchr(r, '@') != NULL) {
                error = mlreg_error_set(MLREG_EINVALID,
                                        "role '%s' has its own @PREFIX; with --model-prefix give "
                                        "roles without one",
                                        r);
                goto done;
            }
            if ((size_t)snprintf(buf, sizeof(buf), "%s@%s", r, prefix) >= sizeof(buf)) {
                error = mlreg_error_set(MLREG_EINVALID, "role '%s@%s' is too long", r, prefix);
                goto done;
            }
            r = buf;
        }
        if ((error = mlreg_auth_role_validate(r)) < 0) goto done;
        if (json_array_append_new(arr, json_string(r)) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
    }
    *out = arr;
    arr = NULL;
done:
    json_decref(arr);
    return error;
}

/* Zeroes the bytes of an answer that held a token. */
static void wipe_answer(cli_response *raw, json_t *ans)
{
    json_t *tok = json_object_get(ans, "token");

    if (json_is_string(tok))
        sodium_memzero((char *)json_string_value(tok), json_string_length(tok));
    if (raw->body != NULL) sodium_memzero(raw->body, raw->body_len);
}

static int token_create(int argc, char **argv)
{
    int error = 0, m;
    const char *name = NULL, *v, **roles = NULL, *prefix = NULL, *expires = NULL;
    const char *registry = NULL, *tok;
    size_t nroles = 0;
    int hf = 0;
    int64_t secs = 0;
    json_t *body = NULL, *arr = NULL, *ans = NULL;
    cli_client *c = NULL;
    cli_response raw;

    cli_response_init(&raw);
    if (!(roles = calloc((size_t)argc, sizeof(*roles)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(token_usage, stdout);
            goto done;
        }
        if ((m = cli_opt(&name, &i, argc, argv, "--name")) != 0 ||
            (m = cli_opt(&prefix, &i, argc, argv, "--model-prefix")) != 0 ||
            (m = cli_opt(&expires, &i, argc, argv, "--expires")) != 0 ||
            (m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if ((m = cli_opt(&v, &i, argc, argv, "--role")) != 0) {
            if (m < 0) goto usage;
            roles[nroles++] = v;
        } else if (!strcmp(argv[i], "--hf")) {
            hf = 1;
        } else {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", argv[i]);
            goto usage;
        }
    }
    if (!name || !mlreg_auth_token_name_valid(name)) {
        mlreg_error_set(MLREG_EINVALID,
                        "give --name NAME: 1 to %d of [A-Za-z0-9._-], starting with a letter or "
                        "digit",
                        MLREG_AUTH_TOKEN_NAME_MAX);
        goto usage;
    }
    if (!nroles) {
        mlreg_error_set(MLREG_EINVALID, "give at least one --role");
        goto usage;
    }
    if (create_roles(&arr, roles, nroles, prefix) < 0) goto usage;
    if (!(body = json_pack("{s:s, s:O}", "name", name, "roles", arr))) goto nomem;
    if (expires != NULL) {
        if (duration_parse(&secs, expires) == 0) {
            if (json_object_set_new(body, "expires_in", json_integer(secs)) < 0) goto nomem;
        } else if (mlreg_time_parse(NULL, NULL, expires) == 0) {
            if (json_object_set_new(body, "expires_at", json_string(expires)) < 0) goto nomem;
        } else {
            mlreg_error_set(MLREG_EINVALID,
                            "--expires '%s' is neither a duration (90s, 30m, 12h, 7d, 2w, 1d12h; "
                            "at most ten years) nor an RFC 3339 time",
                            expires);
            goto usage;
        }
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&ans, &raw, c, "POST", "/api/v1/tokens", body,
                                "creating the token")) < 0)
        goto done;
    tok = json_string_value(json_object_get(ans, "token"));
    if (tok == NULL || strncmp(tok, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1) != 0 ||
        mlreg_text_printable(tok) != tok) {
        error = mlreg_error_set(MLREG_ESERVER, "creating the token: registry sent no token");
        goto done;
    }
    printf("%s%s\n", hf ? "hf_" : "", tok);
    if ((error = cli_flush_stdout()) < 0) goto done;
    {
        const char *exp = json_string_value(json_object_get(ans, "expires"));
        char *roles_text = mlreg_json_dumps(json_object_get(ans, "roles"), JSON_COMPACT);
        fprintf(stderr,
                "token '%s' created with roles %s, %s%s: it is shown once (above); keep it "
                "secret and give it to %s\n",
                mlreg_text_printable(name), roles_text ? mlreg_text_printable(roles_text) : "?",
                exp ? "expires " : "never expires", exp ? mlreg_text_printable(exp) : "",
                hf ? "Hugging Face Hub clients as HF_TOKEN (mlreg takes this form on its Hub "
                     "routes only; drop the hf_ for MLREG_TOKEN)"
                   : "clients as MLREG_TOKEN or in a --token-file");
        free(roles_text);
    }
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    wipe_answer(&raw, ans);
    json_decref(ans);
    cli_response_clear(&raw);
    cli_client_free(c);
    json_decref(body);
    json_decref(arr);
    free(roles);
    return error < 0 ? cli_fail("token create", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg token create: %s\n%s", mlreg_error_last(), token_usage);
    json_decref(body);
    json_decref(arr);
    free(roles);
    return CLI_EXIT_USAGE;
}

/* @p time (RFC 3339 from the registry, or "-") cut to whole seconds for a
 * table: "2026-12-04T18:47:44.123456789Z" -> "2026-12-04T18:47:44Z". */
static void seconds(char out[MLREG_TIME_STRLEN], const char *time)
{
    const char *dot = strchr(time, '.');

    if (dot != NULL && (size_t)(dot - time) < MLREG_TIME_STRLEN - 2)
        snprintf(out, MLREG_TIME_STRLEN, "%.*sZ", (int)(dot - time), time);
    else
        snprintf(out, MLREG_TIME_STRLEN, "%s", time);
}

static const char *str_or(const json_t *obj, const char *field, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, field));
    return s ? mlreg_text_printable(s) : dflt;
}

static int token_list(int argc, char **argv)
{
    const char *registry = NULL;
    int error = 0, json = 0, m;
    cli_client *c = NULL;
    cli_response raw;
    json_t *ans = NULL, *list, *t;
    size_t i;

    cli_response_init(&raw);
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--json")) {
            json = 1;
        } else if ((m = cli_opt(&registry, &k, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", argv[k]);
            goto usage;
        }
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&ans, &raw, c, "GET", "/api/v1/tokens", NULL,
                                "listing the tokens")) < 0)
        goto done;
    list = json_object_get(ans, "tokens");
    if (!json_is_array(list)) {
        error = mlreg_error_set(MLREG_ESERVER, "listing the tokens: registry sent no tokens array");
        goto done;
    }
    if (json) {
        cli_print_json(raw.body, raw.body_len);
    } else {
        printf("%-20s  %-7s  %-20s  %-20s  %-12s  %-30s  %s\n", "NAME", "SOURCE", "CREATED",
               "LAST USED", "CREATED BY", "EXPIRES", "ROLES");
        json_array_foreach(list, i, t)
        {
            int runtime = !strcmp(str_or(t, "source", ""), "runtime");
            char created[MLREG_TIME_STRLEN], used[MLREG_TIME_STRLEN], expires[64];
            size_t j;
            json_t *roles;

            seconds(created, str_or(t, "created", "-"));
            seconds(used, str_or(t, "last_used", "-"));
            snprintf(expires, sizeof(expires), "%s%s",
                     str_or(t, "expires", runtime ? "never" : "-"),
                     json_is_true(json_object_get(t, "expired")) ? " (expired)" : "");
            printf("%-20s  %-7s  %-20s  %-20s  %-12s  %-30s  ", str_or(t, "name", "?"),
                   str_or(t, "source", "?"), created, used, str_or(t, "created_by", "-"), expires);
            roles = json_object_get(t, "roles");
            for (j = 0; j < json_array_size(roles); j++)
                printf("%s%s", j ? "," : "",
                       mlreg_text_printable(json_string_value(json_array_get(roles, j))));
            printf("\n");
        }
    }
    error = cli_flush_stdout();
done:
    json_decref(ans);
    cli_response_clear(&raw);
    cli_client_free(c);
    return error < 0 ? cli_fail("token list", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg token list: %s\n%s", mlreg_error_last(), token_usage);
    return CLI_EXIT_USAGE;
}

static int token_revoke(int argc, char **argv)
{
    const char *registry = NULL, *name = NULL;
    int error = 0, m;
    cli_client *c = NULL;
    cli_response raw;
    json_t *ans = NULL;
    char path[128];

    cli_response_init(&raw);
    for (int k = 1; k < argc; k++) {
        if ((m = cli_opt(&registry, &k, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&name, argv[k]) < 0) {
            goto usage;
        }
    }
    if (!name || !mlreg_auth_token_name_valid(name)) {
        mlreg_error_set(MLREG_EINVALID, "give the NAME of a token made with `mlreg token create`");
        goto usage;
    }
    snprintf(path, sizeof(path), "/api/v1/tokens/%s", name);
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&ans, &raw, c, "DELETE", path, NULL, "revoking the token")) < 0)
        goto done;
    printf("token '%s' revoked\n", name);
    error = cli_flush_stdout();
done:
    json_decref(ans);
    cli_response_clear(&raw);
    cli_client_free(c);
    return error < 0 ? cli_fail("token revoke", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg token revoke: %s\n%s", mlreg_error_last(), token_usage);
    return CLI_EXIT_USAGE;
}

int cmd_token(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "new")) return token_new(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "create")) return token_create(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "list")) return token_list(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "revoke")) return token_revoke(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(token_usage, stdout);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "mlreg token: expected new, create, list or revoke\n%s", token_usage);
    return CLI_EXIT_USAGE;
}
