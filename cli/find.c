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

int find_models(json_t **out, cli_client *c, const char *prefix)
{
    json_t *all = NULL, *list = NULL, *m;
    size_t i;
    int error = 0;

    if ((error = find_get(&all, c, "/api/v1/models", "listing the models")) < 0) goto done;
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
