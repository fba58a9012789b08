/* fuzz_manifest.c: manifest parsing and the release rules (manifest.h), the
 * checks a manifest PUT runs on the pushed bytes. The input is parsed
 * without a content type and as an OCI image manifest; what parses as a
 * release is validated for repository "resnet50", and every descriptor of
 * a parsed manifest is walked. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mlreg/manifest.h"
#include "mlreg/oci.h"

#define REPO "resnet50"

static void walk(const mlreg_manifest *m)
{
    mlreg_release_info info;

    if (!m->media_type) abort();
    for (size_t i = 0; i < m->nlayers; i++) {
        const mlreg_descriptor *d = &m->layers[i];
        if (!d->media_type || !d->digest_str) abort();
        (void)mlreg_release_layer_kind(d);
        (void)mlreg_descriptor_annotation(d, "org.opencontainers.image.title");
    }
    if (!mlreg_manifest_is_release(m)) return;
    if (mlreg_release_validate(&info, m, REPO) == 0) {
        if (!info.model || strcmp(info.model, REPO) != 0 || !info.version || !info.created) abort();
        if (info.has_eval_report && info.eval_report_index >= m->nlayers) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {NULL, MLREG_MT_OCI_MANIFEST};
    mlreg_manifest *m;

    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        m = NULL;
        if (mlreg_manifest_parse(&m, types[t], (const char *)data, size) == 0) walk(m);
        mlreg_manifest_free(m);
    }
    return 0;
}
