/* version.c: the build's version and commit. The one file that includes
 * the generated build_info.h (scripts/build_info.sh), so that moving HEAD
 * rebuilds this object and relinks, nothing else.
 */
#include "mlreg/version.h"

/* generated into $(BUILD)/gen, on the include path of this object alone */
#include <build_info.h>

const char *mlreg_version(void)
{
    return MLREG_BUILD_VERSION;
}

const char *mlreg_version_commit(void)
{
    return MLREG_BUILD_COMMIT;
}
