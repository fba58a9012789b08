/* find.c: the helpers of the commands that find things (find.h). */
#include "find.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/json_out.h"
#include "mlreg/text.h"

int find_get(json_t **out, cli_client *c, const char *path, const char *what)
{
    cli_response resp;
    int error;

    cli_response_init(&resp);
    error = cli_api_expect(out, &resp, c, "GET", path, NULL, what);
    cli_response_clear(&resp);
    return error;
}

int find_model_under(const char *name, const char *prefix)
{
    size_t n;

    if (prefix == NULL || *prefix == '\0') return 1;
    n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        n--;
    if (n == 0) return 1;
    return strncmp(name, prefix, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

/* The models entry ({"name","releases","latest"}) of model @p name, from
 * its release list, as GET /api/v1/models builds it: "latest" is the newest
 * release not purged (the newest when all are). *out is NULL for a
 * repository without releases (a plain OCI image). */
static int model_entry(json_t **out, cli_client *c, const char *name)
{
    json_t *m = NULL, *rels, *r, *latest = NULL;
    cli_response resp;
    char path[600];
    size_t i;
    int error;

    *out = NULL;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/models/%s", name);
    if ((error = cli_api_do(&m, &resp, c, "GET", path, NULL)) < 0) goto done;
    if (resp.status == 404) goto done; /* no releases */
    if (resp.status != 200 || m == NULL) {
        error = cli_http_error(&resp, "listing the releases");
        goto done;
    }
    rels = json_object_get(m, "releases");
    json_array_foreach(rels, i, r)
    {
        if (latest == NULL || !json_is_object(json_object_get(r, "purged")) ||
            json_is_object(json_object_get(latest, "purged")))
            latest = r;
    }
    *out = json_pack(
        "{s:s, s:I, s:{s:O, s:O, s:O, s:O}}", "name", name, "releases",
        (json_int_t)json_array_size(rels), "latest", "version", json_object_get(latest, "version"),
        "digest", json_object_get(latest, "digest"), "created", json_object_get(latest, "created"),
        "withdrawn",
        json_object_get(latest, "withdrawn") ? json_object_get(latest, "withdrawn") : json_null());
    if (*out == NULL) error = mlreg_error_set(MLREG_ESERVER, "listing the releases: a bad answer");
done:
    json_decref(m);
    cli_response_clear(&resp);
    return error;
}

/* A token limited to some models may not list them all (GET /api/v1/models
 * needs read on every model), but /v2/_catalog lists the repositories it
 * may read: their entries are built one model at a time. */
static int models_by_catalog(json_t **out, cli_client *c, const char *prefix)
{
    json_t *list = NULL, *page = NULL, *name, *entry = NULL;
    char path[600], last[300] = "";
    size_t i, got;
    int error = 0;

    if (!(list = json_array())) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    for (;;) {
        snprintf(path, sizeof(path), "/v2/_catalog?n=1000%s%s", *last ? "&last=" : "", last);
        if ((error = find_get(&page, c, path, "listing the repositories")) < 0) goto done;
        got = json_array_size(json_object_get(page, "repositories"));
        json_array_foreach(json_object_get(page, "repositories"), i, name)
        {
            const char *n = json_string_value(name);
            if (n == NULL || strlen(n) >= sizeof(last)) {
                error = mlreg_error_set(MLREG_ESERVER, "listing the repositories: a bad name");
                goto done;
            }
            snprintf(last, sizeof(last), "%s", n);
            if (!find_model_under(n, prefix)) continue;
            if ((error = model_entry(&entry, c, n)) < 0) goto done;
            if (entry && json_array_append_new(list, entry) < 0) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
                goto done;
            }
            entry = NULL;
        }
        json_decref(page);
        page = NULL;
        if (got < 1000) break;
    }
    *out = list;
    list = NULL;
done:
    json_decref(page);
    json_decref(list);
    return error;
}

int find_models(json_t **out, cli_client *c, const char *prefix)
{
    json_t *all = NULL, *list = NULL, *m;
    size_t i;
    int error = 0;

    if ((error = find_get(&all, c, "/api/v1/models", "listing the models")) == MLREG_EFORBIDDEN) {
        mlreg_error_clear();
        return models_by_catalog(out, c, prefix);
    }
    if (error < 0) goto done;
    if (!(list = json_array())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    json_array_foreach(json_object_get(all, "models"), i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        if (name == NULL) {
            error = mlreg_error_set(MLREG_ESERVER, "listing the models: an entry without a name");
            goto done;
        }
        if (find_model_under(name, prefix) && json_array_append(list, m) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
    }
    *out = list;
    list = NULL;
done:
    json_decref(all);
    json_decref(list);
    return error;
}

int find_releases(json_t **out, int *more_out, cli_client *c, const char *model, int newest,
                  const char *after, size_t limit, size_t page_size)
{
    json_t *acc = NULL, *page = NULL, *r;
    char path[1024], last[160];
    size_t i, got, want;
    int error = 0, more = 0;

    if (!(acc = json_array())) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    snprintf(last, sizeof(last), "%s", after ? after : "");
    for (;;) {
        /* one more than needed tells whether releases remain after the limit */
        want = limit ? limit - json_array_size(acc) + 1 : page_size;
        if (want > page_size) want = page_size;
        snprintf(path, sizeof(path), "/api/v1/models/%s?order=%s&n=%zu%s%s", model,
                 newest ? "newest" : "oldest", want, *last ? "&last=" : "", last);
        if ((error = find_get(&page, c, path, "listing the releases")) < 0) goto done;
        got = json_array_size(json_object_get(page, "releases"));
        json_array_foreach(json_object_get(page, "releases"), i, r)
        {
            const char *v = json_string_value(json_object_get(r, "version"));
            if (v == NULL || strlen(v) >= sizeof(last)) {
                error = mlreg_error_set(MLREG_ESERVER, "listing the releases: a bad version");
                goto done;
            }
            if (limit && json_array_size(acc) == limit) {
                more = 1;
                break;
            }
            if (json_array_append(acc, r) < 0) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
                goto done;
            }
            snprintf(last, sizeof(last), "%s", v);
        }
        json_decref(page);
        page = NULL;
        if (more || got < want || got == 0) break;
    }
    *out = acc;
    acc = NULL;
    if (more_out) *more_out = more;
done:
    json_decref(acc);
    json_decref(page);
    return error;
}

const char *find_str(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));

    if (!s || !*s) return dflt;
    return mlreg_text_printable(s);
}

const char *find_time(char buf[24], const json_t *obj, const char *key)
{
    const char *t = find_str(obj, key, "-");
    size_t n = strlen(t);

    if (n <= 20 || t[19] != '.' || t[n - 1] != 'Z') return t;
    memcpy(buf, t, 19);
    buf[19] = 'Z';
    buf[20] = '\0';
    return buf;
}

const char *find_num(char *buf, size_t len, const json_t *n)
{
    if (mlreg_json_number_text(buf, len, n) < 0) snprintf(buf, len, "-");
    return buf;
}

int find_print_json(const json_t *j)
{
    char *text = mlreg_json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    if (text == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    cli_print_json(text, strlen(text));
    free(text);
    return cli_flush_stdout();
}

void find_usage_error(const char *cmd, const char *usage)
{
    const char *msg = mlreg_error_last();
    char safe[1024];

    mlreg_text_sanitize(safe, sizeof(safe), msg, strlen(msg));
    fprintf(stderr, "mlreg %s: %s\n%s", cmd, safe, usage);
}
