/* token.c: `mlreg token new --name NAME --role ROLE...`: a fresh API token
 * and the `tokens` entry of the server config that admits it.
 *
 * The token is "mlreg_" + base64url (no padding) of 32 bytes from
 * randombytes_buf(): 256 bits, so a hash of it cannot be brute-forced and
 * the config may hold the SHA-256 alone (docs/promotions-api.md). The token
 * is built in sodium_malloc memory and wiped before exit; it is printed
 * once, on stdout's first line, and the config entry on the second line:
 *
 *   TOKEN=$(mlreg token new --name ci --role push | sed -n 1p)
 *
 * Nothing here talks to a registry.
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

#define TOKEN_BYTES  32
#define TOKEN_PREFIX "mlreg_"

static const char token_usage[] =
    "usage: mlreg token new --name NAME --role ROLE [--role ROLE]...\n"
    "\n"
    "Prints a new random API token on the first line of stdout, and on the second\n"
    "the entry to add to the server config's \"tokens\" list:\n"
    "  {\"name\": NAME, \"sha256\": \"<hex SHA-256 of the token>\", \"roles\": [...]}\n"
    "Only the hash goes into the config; keep the token itself secret (give it to\n"
    "clients as MLREG_TOKEN or in a --token-file). NAME is recorded as the actor\n"
    "of every change made with the token.\n"
    "\n"
    "ROLE: read | push | admin | promote:STAGE | approve:STAGE, optionally limited\n"
    "to the models under a prefix with @PREFIX, which is a model name:\n"
    "promote:production@vision grants the model vision and every model under\n"
    "vision/ (vision/det, ...), never visionary.\n";

/* A token name: 1..64 of [A-Za-z0-9._-], starting with an alphanumeric. */
static int name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-'))) return 0;
    }
    return 1;
}

static int token_new(int argc, char **argv)
{
    int error = 0, m;
    const char *name = NULL, *v, **roles = NULL;
    size_t nroles = 0;
    unsigned char raw[TOKEN_BYTES], hash[crypto_hash_sha256_BYTES];
    const size_t b64len =
        sodium_base64_ENCODED_LEN(TOKEN_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    const size_t toklen = sizeof(TOKEN_PREFIX) - 1 + b64len;
    char *token = NULL, hex[2 * crypto_hash_sha256_BYTES + 1], *text = NULL;
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
    if (!name_valid(name)) {
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

    if (sodium_init() < 0 || !(token = sodium_malloc(toklen))) {
        error = mlreg_error_set(MLREG_ENOMEM, "cannot initialise libsodium");
        goto done;
    }
    randombytes_buf(raw, sizeof(raw));
    memcpy(token, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
    sodium_bin2base64(token + sizeof(TOKEN_PREFIX) - 1, b64len, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    crypto_hash_sha256(hash, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));

    if (!(entry = json_pack("{s:s, s:s, s:[]}", "name", name, "sha256", hex, "roles"))) goto nomem;
    arr = json_object_get(entry, "roles");
    for (size_t i = 0; i < nroles; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            dup |= !strcmp(roles[i], roles[j]);
        if (!dup && json_array_append_new(arr, json_string(roles[i])) < 0) goto nomem;
    }
    if (!(text = json_dumps(entry, JSON_PRESERVE_ORDER))) goto nomem;
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
    if (token) {
        sodium_memzero(token, toklen);
        sodium_free(token);
    }
    free(text);
    json_decref(entry);
    free(roles);
    return error < 0 ? cli_fail("token new", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg token new: %s\n%s", mlreg_error_last(), token_usage);
    free(roles);
    return CLI_EXIT_USAGE;
}

int cmd_token(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "new")) return token_new(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(token_usage, stdout);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "mlreg token: expected 'new'\n%s", token_usage);
    return CLI_EXIT_USAGE;
}
