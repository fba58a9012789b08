/* main.c: the `mlreg` binary dispatches to one command per verb. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"serve", cmd_serve, "run the registry server in the foreground"},
    {"push", cmd_push,
     "upload a release: mlreg push MODEL@VERSION --weights FILE ... [--sign-key KEYFILE]"},
    {"pull", cmd_pull,
     "download and verify a release: mlreg pull REF -o DIR [--trusted-key PUBFILE]..."},
    {"show", cmd_show, "describe one release: mlreg show REF [--json]"},
    {"status", cmd_status, "list a model's releases: mlreg status MODEL [--json]"},
    {"key", cmd_key, "signing keys: mlreg key generate|trust|revoke|list (see mlreg key --help)"},
    {"sign", cmd_sign, "sign a release in the registry: mlreg sign REF --key KEYFILE"},
    {"verify", cmd_verify,
     "check a release's signature and files: mlreg verify REF --trusted-key PUBFILE"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: mlreg <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nregistry URL: --registry URL or MLREG_URL (default http://127.0.0.1:5080)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mlreg: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
