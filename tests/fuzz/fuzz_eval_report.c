/* fuzz_eval_report.c: eval report parsing (manifest.h,
 * mlreg_eval_report_parse), which reads the report layer a client pushed.
 * What it accepts must keep the documented limits. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mlreg/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mlreg_eval_report *r = NULL;
    const char *name;
    json_t *v;

    if (mlreg_eval_report_parse(&r, (const char *)data, size) == 0) {
        if (!json_is_object(r->metrics) || json_object_size(r->metrics) > MLREG_MAX_METRICS)
            abort();
        json_object_foreach(r->metrics, name, v)
        {
            if (name[0] == '\0' || strlen(name) > MLREG_MAX_METRIC_NAME_BYTES || !json_is_number(v))
                abort();
        }
    }
    mlreg_eval_report_free(r);
    return 0;
}
