/* completion.c: `mlreg completion bash` prints a bash completion script
 * made from one table: every command, its subcommands, and its flags with
 * what their value is (a file, a directory, one of some words, free text,
 * or none). The client commands also take the connection flags main.c and
 * client.c handle (--registry, --token, --token-file, --cacert, --cert,
 * --key, --insecure-http) and --quiet.
 *
 * The table must follow the commands: tests/integration/test_completion.sh
 * checks that every flag each command's --help lists is completed for it.
 * A flag spec is "--name" (no value), "--name:f" (a file), "--name:d" (a
 * directory), "--name:v" (free text, nothing offered) or "--name:=a,b"
 * (one of the words a and b).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mlreg/common.h"

/* The connection flags of every command that talks to a registry. */
static const char client_flags[] =
    "--registry:v --token:v --token-file:f --cacert:f --cert:f --key:f --insecure-http --quiet";

static const struct {
    const char *name;
    int client; /* takes client_flags */
    const char *subs;
    const char *flags;
} table[] = {
    {"serve", 0, "",
     "--config:f --data:d --listen:v --ready-file:f --insecure-http --log-format:=text,json"},
    {"reindex", 0, "", "--from-store --config:f --data:d"},
    {"backup", 0, "", "--to:d --config:f --data:d --link --json"},
    {"push", 1, "",
     "--weights:f --tokenizer:f --config:f --seeds:f --eval-report:f --eval:f --file:v "
     "--git-sha:v --allow-dirty --dry-run --sign-key:f --reupload --limit-rate:v"},
    {"pull", 1, "",
     "-o:d --output:d --at:v --force --trusted-key:f --keyring:f --allow-withdrawn --parallel:v "
     "--limit-rate:v"},
    {"show", 1, "", "--at:v --json"},
    {"status", 1, "", "--json"},
    {"key", 1, "generate trust revoke list",
     "--out:f --no-password --comment:v --name:v --role:v --kind:=retired,compromised "
     "--reason:v --json"},
    {"sign", 1, "", "--key:f"},
    {"attest", 1, "", "--eval-report:f --key:f --json"},
    {"verify", 1, "", "--trusted-key:f --keyring:f --json"},
    {"token", 1, "new create list revoke",
     "--name:v --role:v --model-prefix:v --expires:v --json --hf"},
    {"promote", 1, "", "--to:v --reason:v --dry-run --json --override"},
    {"approve", 1, "", "--for:v --comment:v --json --override --reason:v"},
    {"rollback", 1, "", "--stage:v --to:v --reason:v --json"},
    {"withdraw", 1, "", "--reason:v --rollback --json"},
    {"unwithdraw", 1, "", "--reason:v --json"},
    {"purge", 1, "", "--reason:v --json"},
    {"resolve", 1, "", "--at:v --image --json"},
    {"image-tag", 1, "", "--repo:v --record --digest:v"},
    {"bundle", 1, "", "-o:d --output:d --at:v"},
    {"check", 0, "", "--trusted-key:f --keyring:f --strict --json"},
    {"gc", 1, "", "--dry-run --json"},
    {"audit", 1, "log verify",
     "--model:v --since:v --all --json --log-key:f --remember:f --bundle:d --overrides"},
    {"scrub", 1, "", "--model:v --rate:v --dry-run --json"},
    {"version", 0, "", ""},
    {"ls", 1, "", "--json"},
    {"versions", 1, "", "--limit:v --after:v --oldest-first --json"},
    {"search", 1, "", "--metric:v --stage:v --model:v --json"},
    {"diff", 1, "", "--stage:v --json"},
    {"completion", 0, "bash", ""},
};

static const char completion_usage[] =
    "usage: mlreg completion bash\n"
    "\n"
    "Prints a bash completion script for mlreg: commands, subcommands, every\n"
    "flag of each command, file and directory names where a flag takes one.\n"
    "\n"
    "examples: source <(mlreg completion bash)\n"
    "          mlreg completion bash >/etc/bash_completion.d/mlreg\n";

/* 1 when the flag spec list @p spec has a flag named @p name (@p len bytes). */
static int has_flag(const char *spec, const char *name, size_t len)
{
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, " "), k = strcspn(p, ":");
        if (k > n) k = n;
        if (k == len && !strncmp(p, name, len)) return 1;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

/* Prints, separated by @p sep, the names of the flags of @p spec that are
 * not in @p skip (may be NULL) and whose kind is @p kind ("f", "d", "v";
 * NULL: any kind). *count counts what was printed, over several calls. */
static void print_flags(int *count, const char *spec, const char *skip, const char *kind,
                        const char *sep)
{
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, " "), k = strcspn(p, ":");
        if (k > len) k = len;
        int kind_ok = kind == NULL || (k < len && len - k - 1 == strlen(kind) &&
                                       !strncmp(p + k + 1, kind, len - k - 1));
        if (kind_ok && !(skip && has_flag(skip, p, k))) {
            printf("%s%.*s", (*count)++ ? sep : "", (int)k, p);
        }
        p += len;
        while (*p == ' ')
            p++;
    }
}

/* How many flags print_flags() would print. */
static int count_flags(const char *spec, const char *skip, const char *kind)
{
    int n = 0;

    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, " "), k = strcspn(p, ":");
        if (k > len) k = len;
        if ((kind == NULL ||
             (k < len && len - k - 1 == strlen(kind) && !strncmp(p + k + 1, kind, len - k - 1))) &&
            !(skip && has_flag(skip, p, k)))
            n++;
        p += len;
        while (*p == ' ')
            p++;
    }
    return n;
}

/* The `case "$prev"` arms of one command: file, directory, free text, words.
 * A command's own flag wins over a connection flag of the same name (the
 * --key of `sign` is the signing key). */
static void print_value_cases(const char *flags, int client)
{
    static const struct {
        const char *kind, *action;
    } kinds[] = {{"f", "COMPREPLY=($(compgen -f -- \"$cur\"))"},
                 {"d", "COMPREPLY=($(compgen -d -- \"$cur\"))"},
                 {"v", "COMPREPLY=()"}};

    printf("            case \"$prev\" in\n");
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        int n = 0;
        if (count_flags(flags, NULL, kinds[i].kind) +
                (client ? count_flags(client_flags, flags, kinds[i].kind) : 0) ==
            0)
            continue;
        printf("                ");
        print_flags(&n, flags, NULL, kinds[i].kind, "|");
        if (client) print_flags(&n, client_flags, flags, kinds[i].kind, "|");
        printf(") %s; return 0 ;;\n", kinds[i].action);
    }
    /* one-of-some-words values */
    for (const char *p = flags; *p;) {
        size_t len = strcspn(p, " "), k = strcspn(p, ":");
        if (k + 1 < len && p[k + 1] == '=') {
            printf("                %.*s) COMPREPLY=($(compgen -W \"", (int)k, p);
            for (size_t j = k + 2; j < len; j++)
                putchar(p[j] == ',' ? ' ' : p[j]);
            printf("\" -- \"$cur\")); return 0 ;;\n");
        }
        p += len;
        while (*p == ' ')
            p++;
    }
    printf("            esac\n");
}

static void print_bash(void)
{
    size_t i;

    printf("# bash completion for mlreg: source <(mlreg completion bash)\n"
           "_mlreg() {\n"
           "    local cur prev cmd flags subs\n"
           "    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
           "    prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
           "    if [ \"$COMP_CWORD\" -le 1 ]; then\n"
           "        COMPREPLY=($(compgen -W \"");
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        printf("%s%s", i ? " " : "", table[i].name);
    printf(" --help --version\" -- \"$cur\"))\n"
           "        return 0\n"
           "    fi\n"
           "    cmd=\"${COMP_WORDS[1]}\"\n"
           "    case \"$cmd\" in\n");
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        printf("        %s)\n", table[i].name);
        print_value_cases(table[i].flags, table[i].client);
        int n = 0;
        printf("            flags=\"");
        print_flags(&n, table[i].flags, NULL, NULL, " ");
        if (table[i].client) print_flags(&n, client_flags, table[i].flags, NULL, " ");
        printf("%s--help\"\n", n ? " " : "");
        printf("            subs=\"%s\" ;;\n", table[i].subs);
    }
    printf("        *) return 0 ;;\n"
           "    esac\n"
           "    if [[ \"$cur\" == -* ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
           "    elif [ \"$COMP_CWORD\" -eq 2 ] && [ -n \"$subs\" ]; then\n"
           "        COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
           "    else\n"
           "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "    fi\n"
           "    return 0\n"
           "}\n"
           "complete -o filenames -F _mlreg mlreg\n");
}

int cmd_completion(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(completion_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (argc != 2 || strcmp(argv[1], "bash")) {
        fprintf(stderr, "mlreg completion: %s\n%s",
                argc < 2 ? "which shell? only bash is supported" : "only bash is supported",
                completion_usage);
        return CLI_EXIT_USAGE;
    }
    int error;

    print_bash();
    if ((error = cli_flush_stdout()) < 0) return cli_fail("completion", error);
    return CLI_EXIT_OK;
}
