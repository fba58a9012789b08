/* version.c: `mlreg version` (and `mlreg --version`): the release version
 * and the commit the binary was built from, as GET /api/v1/health reports
 * them for a server.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mlreg/version.h"

int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: mlreg version (or mlreg --version)\n"
               "\n"
               "Prints the version and the commit the binary was built from.\n"
               "example: mlreg version\n");
        return CLI_EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "mlreg version: unknown argument '%s'\nusage: mlreg version\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    printf("mlreg %s (commit %s)\n", mlreg_version(), mlreg_version_commit());
    return CLI_EXIT_OK;
}
