/* main.c: the `mlreg` binary dispatches to one command per verb.
 *
 * The API token is taken here, for every command but `serve`, before the
 * command parses its options: `--token-file FILE` or `--token TOKEN` (one
 * of them; both is a usage error) is removed from argv, else $MLREG_TOKEN
 * is read. The token is copied into wiped-on-exit memory (client.c), the
 * argv string or the bytes read from FILE are zeroed and MLREG_TOKEN is
 * wiped and unset, so no command has to know about the token, none can
 * print it, and child processes (push runs git) do not inherit it.
 * MLREG_TOKEN or --token-file is the way to pass it: an argument is
 * visible to other users in ps(1) until it is zeroed here. The TLS options
 * (--cacert, --cert, --key, --insecure-http) are taken out of argv the same
 * way, by client.c's cli_tls_take(). `--quiet` (or MLREG_QUIET=1) is taken
 * out of argv here too and turns the progress display off (progress.h).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "client.h"
#include "mlreg/common.h"
#include "progress.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"serve", cmd_serve, "run the registry server in the foreground"},
    {"reindex", cmd_reindex, "rebuild a node's index from the log in the object store"},
    {"backup", cmd_backup,
     "online backup of an fs-backend registry: mlreg backup --to DIR [--data DIR]"},
    {"push", cmd_push,
     "upload a release: mlreg push MODEL@VERSION [DIR/] [--weights FILE ...] [--sign-key KEYFILE]"},
    {"pull", cmd_pull,
     "download and verify a release: mlreg pull REF -o DIR [--trusted-key PUBFILE]..."},
    {"show", cmd_show, "describe one release: mlreg show REF [--at TIME] [--json]"},
    {"status", cmd_status,
     "a model's stages, promotions and releases: mlreg status MODEL [--json]"},
    {"key", cmd_key, "signing keys: mlreg key generate|trust|revoke|list (see mlreg key --help)"},
    {"sign", cmd_sign, "sign a release in the registry: mlreg sign REF --key KEYFILE"},
    {"attest", cmd_attest,
     "attach a signed evaluation: mlreg attest REF --eval-report FILE --key EVALKEY"},
    {"verify", cmd_verify,
     "check a release's signature and files: mlreg verify REF --trusted-key PUBFILE"},
    {"token", cmd_token,
     "API tokens: mlreg token new (for the config) | create | list | revoke (at runtime, admin)"},
    {"promote", cmd_promote,
     "move a stage through its gates: mlreg promote REF --to STAGE [--dry-run]"},
    {"approve", cmd_approve, "approve a release for a stage: mlreg approve REF --for STAGE"},
    {"rollback", cmd_rollback,
     "move a stage back: mlreg rollback MODEL --stage STAGE [--to VERSION]"},
    {"withdraw", cmd_withdraw,
     "withdraw (yank) a release: mlreg withdraw REF --reason TEXT [--rollback]"},
    {"unwithdraw", cmd_unwithdraw, "take a withdrawal back: mlreg unwithdraw REF --reason TEXT"},
    {"purge", cmd_purge,
     "delete a release's files for good (takedowns): mlreg purge MODEL@VERSION --reason TEXT"},
    {"resolve", cmd_resolve,
     "what a stage holds: mlreg resolve MODEL:STAGE [--at TIME] [--image] [--json]"},
    {"image-tag", cmd_image_tag,
     "container image tag of a release: mlreg image-tag REF --repo REPO [--record]"},
    {"bundle", cmd_bundle, "offline-checkable audit bundle of a release: mlreg bundle REF -o DIR"},
    {"gc", cmd_gc, "delete the blobs nothing references: mlreg gc [--dry-run] (admin)"},
    {"audit", cmd_audit,
     "the audit log: mlreg audit log [--model M] [--since TIME] | audit verify [--log-key PUB]"},
    {"scrub", cmd_scrub,
     "re-hash stored blobs, quarantine damaged ones: mlreg scrub [--model M] [--dry-run]"},
    {"version", cmd_version, "print the version and the commit mlreg was built from"},
    {"ls", cmd_ls, "models and what their stages hold: mlreg ls [PREFIX] [--json]"},
    {"versions", cmd_versions,
     "a model's releases, newest first: mlreg versions MODEL [--limit N] [--after VERSION]"},
    {"search", cmd_search,
     "releases whose metrics meet conditions: mlreg search --metric 'NAME>VALUE' [--stage S]"},
    {"diff", cmd_diff, "files, metrics and gates of two releases: mlreg diff REF REF [--stage S]"},
    {"completion", cmd_completion, "shell completion: source <(mlreg completion bash)"},
    {"check", cmd_check,
     "check a pulled directory against its lock, offline: mlreg check DIR [--trusted-key PUB]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: mlreg <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nREF:          a release: MODEL@VERSION, MODEL@sha256:HEX, or MODEL:STAGE (what\n"
               "              the stage holds now; --at TIME for then where a command has it)\n");
    fprintf(f, "registry URL: --registry URL or MLREG_URL (default http://127.0.0.1:5080)\n"
               "API token:    MLREG_TOKEN, or --token-file FILE or MLREG_TOKEN_FILE (the token\n"
               "              on one line), sent as Authorization: Bearer; --token TOKEN works\n"
               "              too, but other users can see a command line in ps\n"
               "TLS:          --cacert FILE or MLREG_CACERT (PEM CAs that verify an https://\n"
               "              registry; default the system's); --cert FILE --key FILE or\n"
               "              MLREG_CLIENT_CERT, MLREG_CLIENT_KEY (mutual TLS); a token is\n"
               "              sent over plain http:// only to loopback, unless --insecure-http\n"
               "              or MLREG_INSECURE_HTTP=1\n"
               "output:       --quiet or MLREG_QUIET=1: no transfer progress and no per-file or\n"
               "              summary lines from push and pull on stderr (errors and\n"
               "              warnings are still printed)\n");
}

/* Removes every "--quiet" from argv (argc updated) and turns quiet mode on
 * (progress.h) for it or for MLREG_QUIET=1: no progress display; a command
 * may also leave out its informational stderr lines (cli_quiet()), never
 * its errors and warnings. */
static void take_quiet(int *argc, char **argv)
{
    int out = 0;
    const char *env = getenv("MLREG_QUIET");

    if (env && !strcmp(env, "1")) cli_quiet_set(1);
    for (int i = 0; i < *argc; i++) {
        if (!strcmp(argv[i], "--quiet")) {
            cli_quiet_set(1);
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
}

/* Removes every "--token TOKEN" / "--token=TOKEN" and "--token-file FILE" /
 * "--token-file=FILE" from argv (argc updated), handing the value to
 * cli_token_take() or cli_token_take_file(); without either, takes
 * $MLREG_TOKEN, else the file $MLREG_TOKEN_FILE names (both set is a usage
 * error, as both options are). Either way MLREG_TOKEN is wiped and unset. 0, or an error
 * (message set, naming where the bad token came from but never quoting
 * it): a usage error for both options at once or --token-file twice.
 * After the first error the pass goes on to the end of argv, taking
 * nothing more but zeroing every later --token value, so no token stays
 * visible in ps(1) because an earlier argument was wrong. */
static int take_token(int *argc, char **argv)
{
    int out = 0, error = 0, given = 0;
    const char *file = NULL;
    char *env = getenv("MLREG_TOKEN");
    const char *env_file = getenv("MLREG_TOKEN_FILE");

    for (int i = 0; i < *argc; i++) {
        char *v = NULL;
        if (!strcmp(argv[i], "--token-file") || !strncmp(argv[i], "--token-file=", 13)) {
            if (file && !error) error = mlreg_error_set(MLREG_EINVALID, "--token-file given twice");
            if (argv[i][12] == '=') {
                file = argv[i] + 13;
            } else if (i + 1 >= *argc) {
                if (!error) error = mlreg_error_set(MLREG_EINVALID, "--token-file needs a value");
            } else {
                file = argv[++i];
            }
            continue;
        }
        if (!strcmp(argv[i], "--token")) {
            if (i + 1 >= *argc) {
                if (!error) error = mlreg_error_set(MLREG_EINVALID, "--token needs a value");
                continue;
            }
            v = argv[++i];
        } else if (!strncmp(argv[i], "--token=", 8)) {
            v = argv[i] + 8;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        given = 1;
        if (error < 0) {
            sodium_memzero(v, strlen(v));
            continue;
        }
        if ((error = cli_token_take(v)) < 0 && error == MLREG_EINVALID)
            mlreg_error_set(error, "--token is not a usable token (printable ASCII without "
                                   "spaces, at most 4096 characters)");
    }
    if (error < 0) goto done;
    *argc = out;
    argv[out] = NULL;
    if (given && file) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "--token and --token-file: give the token one way (prefer "
                                "--token-file or MLREG_TOKEN)");
        goto done;
    }
    if (file) {
        error = cli_token_take_file(file);
        goto done;
    }
    if (!given && env && *env && env_file && *env_file) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "MLREG_TOKEN and MLREG_TOKEN_FILE are both set: give the token "
                                "one way");
        goto done;
    }
    if (!given && env && *env && (error = cli_token_take(env)) < 0) {
        if (error == MLREG_EINVALID)
            mlreg_error_set(error, "MLREG_TOKEN is not a usable token (printable ASCII "
                                   "without spaces, at most 4096 characters)");
        goto done;
    }
    if (!given && !(env && *env) && env_file && *env_file &&
        (error = cli_token_take_file(env_file)) < 0) {
        char why[512];
        snprintf(why, sizeof(why), "%s", mlreg_error_last());
        mlreg_error_set(error, "MLREG_TOKEN_FILE: %s", why);
        goto done;
    }
done:
    if (env) sodium_memzero(env, strlen(env));
    unsetenv("MLREG_TOKEN");
    return error;
}

/* A push holds every file of its plan open from the walk to the upload (the
 * bytes checked are the bytes sent) and a pull every temp file until the
 * renames: one descriptor per release file. The soft limit on open files
 * (often 1024) is raised to the hard one, so a release of thousands of
 * files is not refused for it. The clients poll(), never select(). */
static void raise_open_files_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    int rc;

    /* `mlreg --quiet COMMAND ...`: the global option before the command too */
    while (argc > 2 && !strcmp(argv[1], "--quiet")) {
        cli_quiet_set(1);
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        int n = argc - 1;
        if (strcmp(argv[1], commands[i].name)) continue;
        int client = strcmp(commands[i].name, "serve") && strcmp(commands[i].name, "reindex") &&
                     strcmp(commands[i].name, "backup") && strcmp(commands[i].name, "version");
        if (client) {
            take_quiet(&n, argv + 1);
            raise_open_files_limit();
        }
        if (client &&
            (take_token(&n, argv + 1) < 0 || cli_tls_take(&n, argv + 1, commands[i].name) < 0)) {
            fprintf(stderr, "mlreg %s: %s\n", commands[i].name, mlreg_error_last());
            cli_token_clear();
            return CLI_EXIT_USAGE;
        }
        rc = commands[i].run(n, argv + 1);
        cli_token_clear();
        return rc;
    }
    fprintf(stderr, "mlreg: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
