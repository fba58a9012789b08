/* args.h: the command line of the client commands (args.c): options, the
 * positional argument, MODEL@VERSION and MODEL@sha256:HEX references.
 * Internal to cli/. MODEL:STAGE is ref.h.
 */
#ifndef MLREG_CLI_ARGS_H
#define MLREG_CLI_ARGS_H

/** A parsed MODEL@VERSION or MODEL@sha256:HEX; strings point into @p buf. */
typedef struct {
    char *model;
    char *version; /**< NULL when pinned by digest */
    char *digest;  /**< NULL when given a version */
    char buf[512];
} cli_ref;

/**
 * Parses @p str into @p out. MLREG_EINVALID with a message saying which part
 * is wrong. With @p allow_digest 0, only MODEL@VERSION is accepted.
 */
int cli_ref_parse(cli_ref *out, const char *str, int allow_digest);

/**
 * Option matching for "--name VALUE" and "--name=VALUE" at argv[*i].
 * Returns 1 and sets *value (advancing *i past a separate value), 0 when
 * argv[*i] is not this option, -1 when the value is missing (message set).
 */
int cli_opt(const char **value, int *i, int argc, char **argv, const char *name);

/**
 * Takes @p arg, an argument no option matched, as the command's one
 * positional argument in *slot. Something that looks like an option ("-x",
 * not a lone "-") or a second positional argument is a usage error.
 * Returns 0, or MLREG_EINVALID with the message set.
 */
int cli_positional(const char **slot, const char *arg);

/**
 * The registry's rule for the required --reason of a withdrawal or a purge,
 * checked before anything is sent: present, not blank, at most 1024 bytes of
 * text (text.h). Returns 0, or MLREG_EINVALID with the message set.
 */
int cli_reason_check(const char *reason);

#endif
