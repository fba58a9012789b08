/* ref.c: MODEL:STAGE and MODEL@VERSION references (ref.h).
 *
 * The hints: a stage and a version are both tag-grammar words, so
 * "M@production" parses as a version and "M:2024-02-09-01" as a stage. Which
 * one was meant is only known to the registry (the policy's stages, the
 * model's versions), so the hint is given where the registry says no: a
 * version it does not know that is one of its stages (cli_release_ref_hint),
 * a stage its policy does not have that looks like a version (a digit in it,
 * cli_stage_resolve).
 */
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
    if ((colon = strchr(out->buf, '@')) && !strchr(colon, ':'))
        return mlreg_error_set(MLREG_EINVALID, "'%s': expected MODEL:STAGE; did you mean %.*s:%s?",
                               str, (int)(colon - out->buf), out->buf, colon + 1);
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

static const char forms[] =
    "a release is MODEL@VERSION (team/clf@1.4), MODEL@sha256:HEX or MODEL:STAGE "
    "(team/clf:production)";

int cli_release_ref_parse(cli_release_ref *out, const char *str)
{
    size_t len = strlen(str);

    memset(out, 0, sizeof(*out));
    if (len >= sizeof(out->given)) return mlreg_error_set(MLREG_EINVALID, "reference too long");
    memcpy(out->given, str, len + 1);
    if (!strchr(str, '@') && !strchr(str, ':'))
        return mlreg_error_set(MLREG_EINVALID, "'%s' names no release: %s", str, forms);
    if (len && (str[len - 1] == '@' || str[len - 1] == ':'))
        return mlreg_error_set(MLREG_EINVALID, "'%s': nothing after '%c': %s", str, str[len - 1],
                               forms);
    if (cli_is_stage_ref(str)) {
        out->by_stage = 1;
        return cli_stage_ref_parse(&out->sref, str);
    }
    return cli_ref_parse(&out->ref, str, 1);
}

int cli_at_parse(char out[MLREG_TIME_STRLEN], const char *text)
{
    int64_t sec;
    int32_t nsec;
    size_t nfrac = 0;
    char utc[MLREG_TIME_STRLEN];

    if (mlreg_time_parse(&sec, &nsec, text) < 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "time '%s' is not RFC 3339 (e.g. 2026-11-26T10:00:00Z or "
                               "2026-11-26T12:00:00+02:00)",
                               text);
    mlreg_time_format_sec(utc, sec, nsec);
    /* valid RFC 3339: "YYYY-MM-DDTHH:MM:SS" is 19 bytes, a fraction follows */
    if (text[19] == '.') nfrac = strspn(text + 20, "0123456789");
    if (nfrac > 0)
        snprintf(out, MLREG_TIME_STRLEN, "%.19s.%.*sZ", utc, (int)nfrac, text + 20);
    else
        snprintf(out, MLREG_TIME_STRLEN, "%.19sZ", utc);
    return 0;
}

int cli_release_ref_at(cli_release_ref *r, const char *text)
{
    int error;

    if (!r->by_stage)
        return mlreg_error_set(MLREG_EINVALID,
                               "--at goes with MODEL:STAGE (what the stage held then); '%s' "
                               "names one release whatever the time",
                               r->given);
    if ((error = cli_at_parse(r->at_buf, text)) < 0) return error;
    r->at = r->at_buf;
    return 0;
}

/* Resolves the stage of @p r into *out (the registry's answer) and says on
 * stderr which release it is. */
static int stage_pin(json_t **out, cli_client *c, cli_release_ref *r)
{
    int error;
    cli_response resp;

    cli_response_init(&resp);
    error = cli_stage_resolve(out, &resp, c, r->sref.model, r->sref.stage, r->at);
    cli_response_clear(&resp);
    if (error < 0) return error;
    snprintf(r->digest, sizeof(r->digest), "%s",
             json_string_value(json_object_get(*out, "digest")));
    fprintf(stderr, "%s:%s %s %s@%s (%s)\n", r->sref.model, r->sref.stage, r->at ? "held" : "is",
            r->sref.model, json_string_value(json_object_get(*out, "version")), r->digest);
    if (r->at) fprintf(stderr, "  at %s\n", r->at);
    return 0;
}

/* The version of the release of @p model whose digest is @p digest, from
 * the model's release list, into *out (a new reference, json_decref()). */
static int version_for_digest(json_t **out, cli_client *c, const char *model, const char *digest)
{
    int error;
    cli_response resp;
    json_t *m = NULL, *r;
    char path[600];
    size_t i;

    *out = NULL;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/models/%s", model);
    if ((error = cli_api_expect(&m, &resp, c, "GET", path, NULL, model)) < 0) goto done;
    error = mlreg_error_set(MLREG_ENOTFOUND, "%s has no release %s", model, digest);
    json_array_foreach(json_object_get(m, "releases"), i, r)
    {
        const char *d = json_string_value(json_object_get(r, "digest"));
        const char *v = json_string_value(json_object_get(r, "version"));
        if (d && v && !strcmp(d, digest) && mlreg_tag_validate(v) == 0) {
            *out = json_string(v);
            error = *out ? 0 : mlreg_error_set(MLREG_ENOMEM, "out of memory");
            break;
        }
    }
done:
    json_decref(m);
    cli_response_clear(&resp);
    return error;
}

int cli_release_ref_pin(cli_release_ref *r, cli_client *c)
{
    int error;
    json_t *resolved = NULL, *v = NULL;
    char pinned[sizeof(r->ref.buf)];

    if (r->by_stage) {
        if ((error = stage_pin(&resolved, c, r)) < 0) goto done;
        snprintf(pinned, sizeof(pinned), "%s@%s", r->sref.model,
                 json_string_value(json_object_get(resolved, "version")));
    } else if (r->ref.digest) {
        snprintf(r->digest, sizeof(r->digest), "%s", r->ref.digest);
        if ((error = version_for_digest(&v, c, r->ref.model, r->ref.digest)) < 0) goto done;
        snprintf(pinned, sizeof(pinned), "%s@%s", r->ref.model, json_string_value(v));
    } else {
        return 0;
    }
    error = cli_ref_parse(&r->ref, pinned, 0);
done:
    json_decref(resolved);
    json_decref(v);
    return error;
}

int cli_release_ref_hint(int error, cli_client *c, const cli_release_ref *r)
{
    cli_response resp;
    json_t *ans = NULL;
    char path[700], saved[1024];
    const char *code;
    int stage = 0;

    if (error != MLREG_ENOTFOUND || r->by_stage || r->digest[0] || !r->ref.version || !c)
        return error;
    snprintf(saved, sizeof(saved), "%s", mlreg_error_last());
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/models/%s/stages/%s", r->ref.model, r->ref.version);
    if (cli_api_do(&ans, &resp, c, "GET", path, NULL) == 0) {
        code = cli_api_error_code(ans);
        stage = resp.status == 200 || (resp.status == 404 && code && !strcmp(code, "STAGE_EMPTY"));
    }
    json_decref(ans);
    cli_response_clear(&resp);
    if (stage)
        return mlreg_error_set(error, "%s; %s is a stage: did you mean %s:%s?", saved,
                               r->ref.version, r->ref.model, r->ref.version);
    return mlreg_error_set(error, "%s", saved);
}

int cli_release_ref_fetch(cli_release *rel, cli_client *c, cli_release_ref *r)
{
    int error = 0;
    json_t *resolved = NULL;
    const char *version = NULL;
    char pinned[sizeof(r->ref.buf)];

    if (r->by_stage) {
        if ((error = stage_pin(&resolved, c, r)) < 0) goto done;
        version = json_string_value(json_object_get(resolved, "version"));
        snprintf(pinned, sizeof(pinned), "%s@%s", r->sref.model, r->digest);
        if ((error = cli_ref_parse(&r->ref, pinned, 1)) < 0) goto done;
    }
    if ((error = cli_release_fetch(rel, c, &r->ref)) < 0) goto done;
    if (version && strcmp(rel->version, version))
        error = mlreg_error_set(MLREG_EMISMATCH,
                                "%s:%s resolved to version %s, but its manifest is version %s",
                                r->sref.model, r->sref.stage, version, rel->version);
done:
    json_decref(resolved);
    return cli_release_ref_hint(error, c, r);
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
    if (resp->status == 400) {
        const char *code = cli_api_error_code(ans);
        if (code && !strcmp(code, "STAGE_UNKNOWN") && strpbrk(stage, "0123456789")) {
            error = mlreg_error_set(MLREG_ENOTFOUND,
                                    "the registry has no stage '%s'; it looks like a version: "
                                    "did you mean %s@%s?",
                                    stage, model, stage);
            goto done;
        }
    }
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
