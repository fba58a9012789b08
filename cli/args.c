/* args.c: the command line as every client command reads it: options
 * ("--name VALUE", "--name=VALUE"), the one positional argument, and
 * MODEL@VERSION / MODEL@sha256:HEX references (args.h).
 *
 * Names and versions are checked with the registry's own grammars
 * (mlreg_name_validate, mlreg_tag_validate in mlreg/registry.h), so the
 * client refuses exactly what the registry would; the messages here say
 * which part of the reference is wrong.
 */
#include "args.h"

#include <stdio.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/registry.h"
#include "mlreg/text.h"

int cli_ref_parse(cli_ref *out, const char *str, int allow_digest)
{
    char *at;
    mlreg_digest d;

    memset(out, 0, sizeof(*out));
    if (strlen(str) >= sizeof(out->buf))
        return mlreg_error_set(MLREG_EINVALID, "reference too long");
    strcpy(out->buf, str);
    if (!(at = strchr(out->buf, '@')))
        return mlreg_error_set(MLREG_EINVALID, "'%s': expected MODEL@VERSION%s", str,
                               allow_digest ? " or MODEL@sha256:HEX" : "");
    *at = '\0';
    out->model = out->buf;
    if (mlreg_name_validate(out->model) < 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "'%s': model name must match the OCI repository grammar "
                               "(lowercase [a-z0-9], separators . _ __ -, '/' between parts)",
                               out->model);
    if (strchr(at + 1, ':')) {
        if (!allow_digest)
            return mlreg_error_set(MLREG_EINVALID, "'%s': expected a version, not a digest",
                                   at + 1);
        if (mlreg_digest_parse(&d, at + 1) < 0)
            return mlreg_error_set(MLREG_EINVALID, "'%s': digest must be sha256:<64 lowercase hex>",
                                   at + 1);
        out->digest = at + 1;
        return 0;
    }
    if (mlreg_tag_validate(at + 1) < 0)
        return mlreg_error_set(
            MLREG_EINVALID, "'%s': version must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}", at + 1);
    out->version = at + 1;
    return 0;
}

int cli_opt(const char **value, int *i, int argc, char **argv, const char *name)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);

    if (strncmp(arg, name, n)) return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        mlreg_error_set(MLREG_EINVALID, "%s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int cli_positional(const char **slot, const char *arg)
{
    if (arg[0] == '-' && arg[1] != '\0')
        return mlreg_error_set(MLREG_EINVALID, "unknown option '%s'", arg);
    if (*slot) return mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", arg);
    *slot = arg;
    return 0;
}

int cli_reason_check(const char *reason)
{
    if (!reason || reason[strspn(reason, " ")] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "--reason TEXT is required: say why");
    if (strlen(reason) > 1024)
        return mlreg_error_set(MLREG_EINVALID, "--reason is longer than 1024 bytes");
    return mlreg_text_validate(reason, "--reason");
}
