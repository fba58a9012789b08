/* key.c: `mlreg key generate`: a new Ed25519 key pair in minisign's formats
 * (signing/, include/mlreg/sign.h), so `minisign -V -p PREFIX.pub` checks
 * what the key signs. `key trust|revoke` (the server's keyring) will join
 * here.
 *
 * Everything that can go wrong in `generate` is local (usage, files, the
 * terminal), so every failure exits CLI_EXIT_USAGE (2), including an
 * existing key file, which cli_exit_code() would count as a refusal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "mlreg/common.h"
#include "mlreg/sign.h"

static const char key_usage[] =
    "usage: mlreg key generate --out PREFIX [--no-password] [--comment TEXT]\n"
    "\n"
    "Writes PREFIX.pub (the public key: share it) and PREFIX.key (the secret key,\n"
    "mode 0600) in minisign's formats, and prints the key id. The secret key is\n"
    "encrypted with a password taken from MLREG_KEY_PASSWORD or asked twice on the\n"
    "terminal, unless --no-password is given. --comment sets the public key's\n"
    "untrusted comment. Existing files are never replaced.\n";

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
    fprintf(stderr, "mlreg key: unknown subcommand '%s'\n%s", argv[1], key_usage);
    return CLI_EXIT_USAGE;
}
