/* find.h: what the read-only commands that find things share (find.c):
 * `ls`, `versions` (ls.c), `diff` (diff.c) and `search` (search.c). All
 * read /api/v1 (registry.h and docs/promotions-api.md give the shapes).
 * Internal to cli/.
 */
#ifndef MLREG_CLI_FIND_H
#define MLREG_CLI_FIND_H

#include <jansson.h>
#include <stddef.h>

#include "client.h"

/**
 * GETs @p path (an /api/v1 path) and parses the 2xx answer into *out (a JSON
 * object, json_decref()). Errors as cli_api_expect() with @p what.
 */
int find_get(json_t **out, cli_client *c, const char *path, const char *what);

/**
 * 1 when model @p name is @p prefix or lies under it (@p prefix followed by
 * '/'), as token prefixes match: "vision" matches vision and vision/det,
 * never visionary. A NULL or empty @p prefix matches every name; a trailing
 * '/' of @p prefix is ignored.
 */
int find_model_under(const char *name, const char *prefix);

/**
 * The models of GET /api/v1/models under @p prefix (find_model_under), in
 * the registry's (name) order: *out is a new array of the entries
 * ({"name","releases","latest"}). A token the registry forbids to list
 * every model (one limited to some models) gets the models /v2/_catalog
 * shows it instead, each read with its own request. 0 or the error of a
 * request.
 */
int find_models(json_t **out, cli_client *c, const char *prefix);

/**
 * Every release of @p model (GET /api/v1/models/MODEL, paged by
 * @p page_size releases, newest first when @p newest, after release
 * @p after when non-NULL), at most @p limit of them (0: all): *out is a
 * new array of release summaries with "stages", "signatures" and "signed".
 * *more_out (may be NULL) is 1 when releases remain after the last one
 * taken. 0 or the error of a request.
 */
int find_releases(json_t **out, int *more_out, cli_client *c, const char *model, int newest,
                  const char *after, size_t limit, size_t page_size);

/** A string field for a table: the text rule of mlreg/text.h applies; @p dflt when absent. */
const char *find_str(const json_t *obj, const char *key, const char *dflt);

/** An RFC 3339 time cut to the second for a table column ("...T10:00:00Z"). */
const char *find_time(char buf[24], const json_t *obj, const char *key);

/** The number @p n as JSON writes it ("0.912"), "-" when not a number. */
const char *find_num(char *buf, size_t len, const json_t *n);

/**
 * Prints @p j (not consumed) as indented JSON on stdout (cli_print_json)
 * and checks that stdout took it. 0, MLREG_ENOMEM or MLREG_EIO.
 */
int find_print_json(const json_t *j);

/**
 * Prints "mlreg CMD: <last error message>" (characters that break the text
 * rule replaced by '?': the message may quote what the user typed) and
 * @p usage to stderr. The caller then exits with CLI_EXIT_USAGE.
 */
void find_usage_error(const char *cmd, const char *usage);

#endif
