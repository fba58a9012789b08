/* key.c: `mlreg key generate`: a new Ed25519 key pair in minisign's formats
 * (signing/, include/mlreg/sign.h), so `minisign -V -p PREFIX.pub` checks
 * what the key signs; `key trust|revoke|list`: the registry's trusted
 * keyring (docs/signatures-api.md, /api/v1/keys).
 *
 * Everything that can go wrong in `generate` is local (usage, files, the
 * terminal), so every failure exits CLI_EXIT_USAGE (2), including an
 * existing key file, which cli_exit_code() would count as a refusal. The
 * keyring commands map registry answers with cli_exit_code().
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "mlreg/common.h"
#include "mlreg/sign.h"
#include "mlreg/text.h"
#include "release.h"

static const char key_usage[] =
    "usage: mlreg key generate --out PREFIX [--no-password] [--comment TEXT]\n"
    "       mlreg key trust PUBFILE --name NAME [--role ROLE] [--json] [--registry URL]\n"
    "       mlreg key revoke KEYID --kind retired|compromised [--reason TEXT] [--json]\n"
    "                        [--registry URL]\n"
    "       mlreg key list [--json] [--registry URL]\n"
    "\n"
    "generate writes PREFIX.pub (the public key: share it) and PREFIX.key (the\n"
    "secret key, mode 0600) in minisign's formats, and prints the key id. The\n"
    "secret key is encrypted with a password taken from MLREG_KEY_PASSWORD or asked\n"
    "twice on the terminal, unless --no-password is given. --comment sets the\n"
    "public key's untrusted comment. Existing files are never replaced.\n"
    "\n"
    "trust adds the minisign public key PUBFILE to the registry's trusted keyring\n"
    "under NAME with ROLE (default release; [a-z][a-z0-9_-]*). Only keys of role\n"
    "release sign releases: their signatures count toward `signed` gates; keys of\n"
    "any other role (approver, ...) are kept and listed, but their signatures\n"
    "never count. Keys of role evaluator sign evaluations (mlreg attest) that gates\n"
    "may read. revoke revokes a key: retired (signatures attached before keep\n"
    "counting) or compromised (none of its signatures count). list prints the\n"
    "keyring; its --json output is a keyring file for `mlreg verify --keyring` and\n"
    "`mlreg pull --keyring`.\n"
    "\n"
    "examples: mlreg key generate --out release-bot --comment 'CI release key'\n"
    "          mlreg key trust release-bot.pub --name release-bot --role release\n"
    "          mlreg key revoke E5F1C2A3B4D5E6F7 --kind "
    "retired \\\n"
    "              --reason 'rotated' --json\n"
    "          mlreg key list --json --registry https://mlreg.example.com\n";

static int fail(const char *what, int error)
{
    const char *msg = mlreg_error_last();

    fprintf(stderr, "mlreg key %s: %s\n", what, *msg ? msg : mlreg_strerror(error));
    return CLI_EXIT_USAGE;
}

/* PREFIX + suffix, malloc'd. */
static int path_with(char **out, const char *prefix, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(suffix) + 1;

    if (!(*out = malloc(n))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    snprintf(*out, n, "%s%s", prefix, suffix);
    return 0;
}

/* Refuses early, before a password prompt and seconds of scrypt, when a
 * file is already there; creating the files with O_EXCL still decides. */
static int must_not_exist(const char *path)
{
    struct stat st;

    if (lstat(path, &st) == 0)
        return mlreg_error_set(MLREG_EEXISTS, "%s already exists; key files are never replaced",
                               path);
    if (errno != ENOENT)
        return mlreg_error_set(MLREG_EIO, "cannot check %s: %s", path, strerror(errno));
    return 0;
}

typedef struct {
    const char *prefix;
    const char *comment;
    int no_password;
    int help;
} generate_opts;

static int parse_generate(generate_opts *o, int argc, char **argv)
{
    int m;

    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            o->help = 1;
        } else if (!strcmp(argv[i], "--no-password")) {
            o->no_password = 1;
        } else if ((m = cli_opt(&o->prefix, &i, argc, argv, "--out")) != 0 ||
                   (m = cli_opt(&o->comment, &i, argc, argv, "--comment")) != 0) {
            if (m < 0) return MLREG_EINVALID;
        } else {
            return mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!o->help && (!o->prefix || !*o->prefix))
        return mlreg_error_set(MLREG_EINVALID, "--out PREFIX is required");
    return 0;
}

/* Writes PREFIX.key, then PREFIX.pub, and prints where they are. */
static int generate(const generate_opts *o)
{
    int error = 0, key_written = 0;
    char *pub_path = NULL, *key_path = NULL, *password = NULL, *pub_text = NULL;
    char id[MLREG_KEYID_HEXLEN + 1];
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pk;

    if ((error = path_with(&pub_path, o->prefix, ".pub")) < 0 ||
        (error = path_with(&key_path, o->prefix, ".key")) < 0 ||
        (error = must_not_exist(pub_path)) < 0 || (error = must_not_exist(key_path)) < 0)
        goto done;
    if ((error = mlreg_seckey_generate(&sk)) < 0) goto done;
    mlreg_seckey_pubkey(&pk, sk);
    /* Formatting checks --comment now, not after the secret key is written. */
    if ((error = mlreg_pubkey_format(&pub_text, &pk, o->comment)) < 0) goto done;
    if (!o->no_password) {
        if ((error = mlreg_password_read(
                 &password, "Password for the new secret key: ", MLREG_PASSWORD_CONFIRM)) < 0)
            goto done;
        if (!*password) {
            error = mlreg_error_set(MLREG_EINVALID,
                                    "empty password; use --no-password for an unencrypted key");
            goto done;
        }
        if (isatty(STDERR_FILENO))
            fputs("Encrypting the secret key (scrypt, a few seconds)...\n", stderr);
    }
    if ((error = mlreg_seckey_save(key_path, sk, password, NULL)) < 0) goto done;
    key_written = 1;
    if ((error = mlreg_pubkey_save(pub_path, &pk, o->comment)) < 0) goto done;

    mlreg_keyid_format(id, &pk.id);
    printf("key id      %s\n", id);
    printf("public key  %s\n", pub_path);
    printf("secret key  %s (%s)\n", key_path,
           password ? "encrypted with the password" : "NOT encrypted: keep this file private");
done:
    /* Half a key pair is worse than none: a secret key without its public
     * half would be left for the next attempt to trip on. */
    if (error < 0 && key_written) unlink(key_path);
    mlreg_password_free(password);
    mlreg_seckey_free(sk);
    free(pub_text);
    free(pub_path);
    free(key_path);
    return error;
}

static int key_generate(int argc, char **argv)
{
    generate_opts o;
    int error;

    mlreg_error_clear();
    if ((error = parse_generate(&o, argc, argv)) < 0) {
        fprintf(stderr, "mlreg key generate: %s\n%s", mlreg_error_last(), key_usage);
        return CLI_EXIT_USAGE;
    }
    if (o.help) {
        fputs(key_usage, stdout);
        return CLI_EXIT_OK;
    }
    if ((error = generate(&o)) < 0) return fail("generate", error);
    return CLI_EXIT_OK;
}

/* ---- the registry's keyring ---------------------------------------------- */

static int role_valid(const char *r)
{
    if (!(*r >= 'a' && *r <= 'z')) return 0;
    for (const char *p = r + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static const char *key_state(json_t *k)
{
    const char *rev = json_string_value(json_object_get(k, "revocation"));
    return rev ? rev : "trusted";
}

static void print_key(json_t *k)
{
    printf("key id      %s\n",
           mlreg_text_printable(json_string_value(json_object_get(k, "key_id"))));
    printf("name        %s\n", mlreg_text_printable(json_string_value(json_object_get(k, "name"))));
    printf("role        %s\n", mlreg_text_printable(json_string_value(json_object_get(k, "role"))));
    printf("state       %s\n", mlreg_text_printable(key_state(k)));
    printf("added at    %s\n",
           mlreg_text_printable(json_string_value(json_object_get(k, "added_at"))));
    if (json_string_value(json_object_get(k, "revoked_at"))) {
        printf("revoked at  %s\n",
               mlreg_text_printable(json_string_value(json_object_get(k, "revoked_at"))));
        printf("reason      %s\n",
               mlreg_text_printable(json_string_value(json_object_get(k, "reason"))));
    }
}

/* Parses the options shared by trust, revoke and list: --json, --registry,
 * and the ones named in @p names (their values go to @p values, in order).
 * Positional arguments go to *pos (at most one). */
static int keyring_args(const char **pos, int *json, const char **registry, const char **values,
                        const char *const *names, size_t nnames, int argc, char **argv)
{
    int m;

    for (int i = 1; i < argc; i++) {
        int matched = 0;
        if (!strcmp(argv[i], "--json")) {
            *json = 1;
            continue;
        }
        if ((m = cli_opt(registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) return MLREG_EINVALID;
            continue;
        }
        for (size_t k = 0; k < nnames && !matched; k++) {
            if ((m = cli_opt(&values[k], &i, argc, argv, names[k])) < 0) return MLREG_EINVALID;
            matched = m;
        }
        if (matched) continue;
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return mlreg_error_set(MLREG_EINVALID, "unknown option '%s'", argv[i]);
        if (!pos || *pos)
            return mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", argv[i]);
        *pos = argv[i];
    }
    return 0;
}

static int key_trust(int argc, char **argv)
{
    static const char *const names[] = {"--name", "--role"};
    const char *values[2] = {NULL, NULL}, *pubfile = NULL, *registry = NULL;
    int error = 0, json = 0;
    mlreg_pubkey pk;
    char b64[MLREG_PUBKEY_B64LEN + 1];
    cli_client *c = NULL;
    cli_response raw;
    json_t *body = NULL, *ans = NULL;

    cli_response_init(&raw);
    if ((error = keyring_args(&pubfile, &json, &registry, values, names, 2, argc, argv)) < 0)
        goto usage;
    if (!pubfile) {
        mlreg_error_set(MLREG_EINVALID, "missing PUBFILE");
        goto usage;
    }
    if (!values[0] || !*values[0]) {
        mlreg_error_set(MLREG_EINVALID, "--name NAME is required");
        goto usage;
    }
    if (!values[1]) values[1] = "release";
    if (!role_valid(values[1])) {
        mlreg_error_set(MLREG_EINVALID, "--role '%s': want [a-z][a-z0-9_-]*", values[1]);
        goto usage;
    }
    if ((error = mlreg_pubkey_load(&pk, pubfile)) < 0) {
        fprintf(stderr, "mlreg key trust: %s: %s\n", pubfile, mlreg_error_last());
        return CLI_EXIT_USAGE;
    }
    mlreg_pubkey_base64(b64, &pk);
    if (!(body = json_pack("{s:s, s:s, s:s}", "name", values[0], "role", values[1], "public_key",
                           b64))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&ans, &raw, c, "POST", "/api/v1/keys", body, "trusting the key")) <
            0)
        goto done;
    if (json) {
        cli_print_json(raw.body, raw.body_len);
    } else {
        print_key(ans);
        fprintf(stderr, "%s\n",
                raw.status == 201 ? "key added to the registry's trusted keyring"
                                  : "the key was already trusted; nothing changed");
    }
    error = cli_flush_stdout();
done:
    json_decref(ans);
    json_decref(body);
    cli_response_clear(&raw);
    cli_client_free(c);
    return error < 0 ? cli_fail("key trust", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg key trust: %s\n%s", mlreg_error_last(), key_usage);
    return CLI_EXIT_USAGE;
}

/* Key ids as people copy them: minisign prints a key id without its
 * leading zeros (one key in 16 shows 15 digits or fewer), so a shorter hex
 * string is zero-padded on the left before the strict parse. */
static int parse_keyid_arg(mlreg_keyid *out, const char *arg)
{
    char padded[MLREG_KEYID_HEXLEN + 1];
    size_t n = strlen(arg);

    if (n == 0 || n > MLREG_KEYID_HEXLEN)
        return mlreg_error_set(MLREG_EINVALID, "key id must have 1 to 16 hex digits");
    memset(padded, '0', MLREG_KEYID_HEXLEN - n);
    memcpy(padded + MLREG_KEYID_HEXLEN - n, arg, n + 1);
    return mlreg_keyid_parse(out, padded, MLREG_KEYID_HEXLEN);
}

static int key_revoke(int argc, char **argv)
{
    static const char *const names[] = {"--kind", "--reason"};
    const char *values[2] = {NULL, NULL}, *keyid = NULL, *registry = NULL;
    int error = 0, json = 0;
    mlreg_keyid id;
    char hex[MLREG_KEYID_HEXLEN + 1], path[128];
    cli_client *c = NULL;
    cli_response raw;
    json_t *body = NULL, *ans = NULL;

    cli_response_init(&raw);
    if ((error = keyring_args(&keyid, &json, &registry, values, names, 2, argc, argv)) < 0)
        goto usage;
    if (!keyid || parse_keyid_arg(&id, keyid) < 0) {
        mlreg_error_set(MLREG_EINVALID, "KEYID must be the hex digits of a key id (up to 16)");
        goto usage;
    }
    if (!values[0] || (strcmp(values[0], "retired") && strcmp(values[0], "compromised"))) {
        mlreg_error_set(MLREG_EINVALID, "--kind must be retired or compromised");
        goto usage;
    }
    if (mlreg_text_validate(values[1], "--reason") < 0) goto usage;
    mlreg_keyid_format(hex, &id);
    snprintf(path, sizeof(path), "/api/v1/keys/%s/revoke", hex);
    if (!(body =
              json_pack("{s:s, s:s}", "kind", values[0], "reason", values[1] ? values[1] : ""))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&ans, &raw, c, "POST", path, body, "revoking the key")) < 0)
        goto done;
    if (json) {
        cli_print_json(raw.body, raw.body_len);
    } else {
        print_key(ans);
    }
    error = cli_flush_stdout();
done:
    json_decref(ans);
    json_decref(body);
    cli_response_clear(&raw);
    cli_client_free(c);
    return error < 0 ? cli_fail("key revoke", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg key revoke: %s\n%s", mlreg_error_last(), key_usage);
    return CLI_EXIT_USAGE;
}

static int key_list(int argc, char **argv)
{
    const char *registry = NULL;
    int error = 0, json = 0;
    cli_client *c = NULL;
    cli_response raw;
    json_t *ans = NULL, *keys, *k;
    size_t i;

    cli_response_init(&raw);
    if ((error = keyring_args(NULL, &json, &registry, NULL, NULL, 0, argc, argv)) < 0) {
        fprintf(stderr, "mlreg key list: %s\n%s", mlreg_error_last(), key_usage);
        return CLI_EXIT_USAGE;
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_api_expect(&ans, &raw, c, "GET", "/api/v1/keys", NULL, "listing the keys")) <
            0)
        goto done;
    keys = json_object_get(ans, "keys");
    if (!json_is_array(keys)) {
        error = mlreg_error_set(MLREG_ESERVER, "listing the keys: registry sent no keys array");
        goto done;
    }
    if (json) {
        /* The registry's JSON value unchanged: it is a keyring file. */
        cli_print_json(raw.body, raw.body_len);
    } else if (json_array_size(keys) == 0) {
        printf("no trusted keys\n");
    } else {
        printf("%-16s  %-20s  %-10s  %-7s  %-11s  %s\n", "KEY ID", "NAME", "ROLE", "SOURCE",
               "STATE", "SINCE");
        json_array_foreach(keys, i, k)
        {
            const char *since = json_string_value(json_object_get(k, "revoked_at"));
            if (!since) since = json_string_value(json_object_get(k, "added_at"));
            printf("%-16s  %-20s  %-10s  %-7s  %-11s  %s\n",
                   mlreg_text_printable(json_string_value(json_object_get(k, "key_id"))),
                   mlreg_text_printable(json_string_value(json_object_get(k, "name"))),
                   mlreg_text_printable(json_string_value(json_object_get(k, "role"))),
                   mlreg_text_printable(json_string_value(json_object_get(k, "source"))),
                   mlreg_text_printable(key_state(k)), mlreg_text_printable(since));
        }
    }
    error = cli_flush_stdout();
done:
    json_decref(ans);
    cli_response_clear(&raw);
    cli_client_free(c);
    return error < 0 ? cli_fail("key list", error) : CLI_EXIT_OK;
}

int cmd_key(int argc, char **argv)
{
    if (argc < 2) {
        fputs(key_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(key_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "generate")) return key_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "trust")) return key_trust(argc - 1, argv + 1);
    if (!strcmp(argv[1], "revoke")) return key_revoke(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list")) return key_list(argc - 1, argv + 1);
    fprintf(stderr, "mlreg key: unknown subcommand '%s'\n%s", argv[1], key_usage);
    return CLI_EXIT_USAGE;
}
