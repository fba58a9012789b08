/* ref.c: MODEL:STAGE and MODEL@VERSION references (ref.h). */
#include "ref.h"

#include <stdio.h>
#include <string.h>

#include "client.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/registry.h"

int cli_is_stage_ref(const char *str)
{
    return strchr(str, ':') && !strchr(str, '@');
}

int cli_stage_ref_parse(cli_stage_ref *out, const char *str)
{
    char *colon;

    memset(out, 0, sizeof(*out));
    if (strlen(str) >= sizeof(out->buf))
        return mlreg_error_set(MLREG_EINVALID, "reference too long");
    strcpy(out->buf, str);
    if (strchr(out->buf, '@') || !(colon = strchr(out->buf, ':')))
        return mlreg_error_set(MLREG_EINVALID, "'%s': expected MODEL:STAGE", str);
    *colon = '\0';
    out->model = out->buf;
    out->stage = colon + 1;
    if (mlreg_name_validate(out->model) < 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "'%s': model name must match the OCI repository grammar "
                               "(lowercase [a-z0-9], separators . _ __ -, '/' between parts)",
                               out->model);
    if (mlreg_tag_validate(out->stage) < 0)
        return mlreg_error_set(
            MLREG_EINVALID, "'%s': stage must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}", out->stage);
    return 0;
}

int cli_release_ref_parse(cli_release_ref *out, const char *str)
{
    memset(out, 0, sizeof(*out));
    if (cli_is_stage_ref(str)) {
        out->by_stage = 1;
        return cli_stage_ref_parse(&out->sref, str);
    }
    return cli_ref_parse(&out->ref, str, 1);
}

int cli_release_ref_fetch(cli_release *rel, cli_client *c, cli_release_ref *r)
{
    int error = 0;
    json_t *resolved = NULL;
    cli_response resp;
    const char *version = NULL;
    char pinned[sizeof(r->ref.buf)];

    cli_response_init(&resp);
    if (r->by_stage) {
        if ((error = cli_stage_resolve(&resolved, &resp, c, r->sref.model, r->sref.stage, NULL)) <
            0)
            goto done;
        version = json_string_value(json_object_get(resolved, "version"));
        snprintf(pinned, sizeof(pinned), "%s@%s", r->sref.model,
                 json_string_value(json_object_get(resolved, "digest")));
        if ((error = cli_ref_parse(&r->ref, pinned, 1)) < 0) goto done;
        fprintf(stderr, "%s:%s is %s@%s (%s)\n", r->sref.model, r->sref.stage, r->sref.model,
                version, r->ref.digest);
    }
    if ((error = cli_release_fetch(rel, c, &r->ref)) < 0) goto done;
    if (version && strcmp(rel->version, version))
        error = mlreg_error_set(MLREG_EMISMATCH,
                                "%s:%s resolved to version %s, but its manifest is version %s",
                                r->sref.model, r->sref.stage, version, rel->version);
done:
    json_decref(resolved);
    cli_response_clear(&resp);
    return error;
}

int cli_stage_resolve(json_t **out, cli_response *resp, cli_client *c, const char *model,
                      const char *stage, const char *at)
{
    int error;
    json_t *ans = NULL;
    const char *version, *digest;
    mlreg_digest d;
    char path[700];

    *out = NULL;
    if (at)
        snprintf(path, sizeof(path), "/api/v1/models/%s/stages/%s?at=%s", model, stage, at);
    else
        snprintf(path, sizeof(path), "/api/v1/models/%s/stages/%s", model, stage);
    if ((error = cli_api_do(&ans, resp, c, "GET", path, NULL)) < 0) return error;
    if (resp->status == 404) {
        const char *code = cli_api_error_code(ans);
        if (code && !strcmp(code, "STAGE_EMPTY"))
            error = mlreg_error_set(MLREG_ENOTFOUND, "%s:%s is empty%s%s", model, stage,
                                    at ? " at " : "", at ? at : "");
        else
            error = cli_http_error(resp, "resolving the stage");
        goto done;
    }
    if (resp->status != 200) {
        error = cli_http_error(resp, "resolving the stage");
        goto done;
    }
    version = json_string_value(json_object_get(ans, "version"));
    digest = json_string_value(json_object_get(ans, "digest"));
    if (!version || mlreg_tag_validate(version) < 0 || !digest ||
        mlreg_digest_parse(&d, digest) < 0) {
        error = mlreg_error_set(MLREG_ESERVER,
                                "resolving the stage: registry sent no valid version and digest");
        goto done;
    }
    *out = ans;
    ans = NULL;
done:
    json_decref(ans);
    return error;
}
