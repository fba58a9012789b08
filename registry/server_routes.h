/* server_routes.h: the server's routes as data. Each handler file exports a
 * table of rows (server_oci_uploads.c: /v2/ uploads, server_oci.c: the rest
 * of /v2/, server_api.c: /api/v1/, server_audit.c: the audit log and
 * attestations, server_probes.c: /healthz and /readyz,
 * server_reload.c: /api/v1/admin/reload, server_hf.c: the Hugging Face
 * Hub reads /api/models/ and /{name}/resolve/); server_routes.c
 * lists the tables, matches
 * a path against them and decides what a row's role rule asks of an
 * identity. The core (server.c) applies a row: method (405 with Allow), role,
 * body framing and limits, then the row's callbacks. Adding a route is one
 * row and its function(s) in one handler file.
 *
 * Patterns are '/'-separated segments, matched whole:
 *   literal      the same text
 *   {name}       one or more segments: a repository / model name (names
 *                hold '/'), checked with mlreg_name_validate() (400
 *                NAME_INVALID before anything else). It takes what the
 *                fixed segments after it leave, so the rightmost split wins
 *   {digest} {reference} {uuid}
 *                one segment, maybe empty, into rq->arg; the route checks it
 *   {id}         one non-empty segment into rq->arg
 *   {stage}      one non-empty segment into rq->stage, which must be a
 *                configured stage (400 STAGE_UNKNOWN after the role check)
 *   {version*}   one or more segments into rq->arg (not empty text when more
 *                pattern follows); a bad tag (a version never holds '/') is
 *                a 400 MANIFEST_INVALID answered after the method check
 *   {*}          like {version*}, not captured
 *   {path*}      like {*}, captured into path (a file path under a
 *                release); with {name} before it, {name} ends at the
 *                LEFTMOST place where the fixed segments between them
 *                match, so the path may hold any segment and the name
 *                may not hold those fixed segments
 *   ?            last: the path may end with one more '/' (".../models/")
 * A pattern has at most one {name} and at most one multi-segment capture
 * after it. With both, {name} ends at the rightmost place where the fixed
 * segments between them match with a segment after them (the rightmost
 * "/versions/"), and the row matches only if the rest matches from there.
 * Rows are tried in the order of the tables (server_routes.c) and of the rows
 * in each; the first row whose pattern matches names the resource, and every
 * row with that same pattern is a method of it. A row with no methods and
 * no callbacks reserves its paths: they are no route (404), never a
 * shorter resource's name.
 */
#ifndef MLREG_SERVER_ROUTES_H
#define MLREG_SERVER_ROUTES_H

#include <stddef.h>

#include "server_http.h"

/** Methods of a row (bit mask). */
enum {
    ROUTE_GET = 1u << 0,
    ROUTE_HEAD = 1u << 1,
    ROUTE_POST = 1u << 2,
    ROUTE_PATCH = 1u << 3,
    ROUTE_PUT = 1u << 4,
    ROUTE_DELETE = 1u << 5
};
/** The methods of a read. */
#define ROUTE_GET_HEAD (ROUTE_GET | ROUTE_HEAD)

/** The role a row's request needs (docs/promotions-api.md). */
typedef enum {
    ROUTE_ACCESS_UNSET = 0, /* a row without a rule: refused to everyone */
    ROUTE_ACCESS_PUBLIC,    /* no token needed (health) */
    ROUTE_ACCESS_TOKEN,     /* any valid token (the /v2/ base) */
    ROUTE_ACCESS_READ,      /* read on {name} */
    ROUTE_ACCESS_READ_ALL,  /* read of no one model: a role limited to a model
                               prefix does not grant it (listings, the audit log) */
    ROUTE_ACCESS_PUSH,      /* push on {name} */
    ROUTE_ACCESS_PROMOTE,   /* promote:<{stage}> on {name} */
    ROUTE_ACCESS_ADMIN,     /* admin */
    ROUTE_ACCESS_IMAGES,    /* push, or promote:<S> for some stage S, on {name}: the
                               exact one depends on the release's stages and is
                               checked by mlreg_image_bind() in its transaction */
    ROUTE_ACCESS_IN_BODY,   /* the body names the stage: the route checks
                               promote:<stage> / approve:<stage> after reading it,
                               before anything is evaluated or stored */
    /* promote:<S> for some stage S on {name}: the exact roles depend on the
     * stages holding the release and are checked by mlreg_release_withdraw()
     * in its transaction */
    ROUTE_ACCESS_WITHDRAW,
    /* admin on {name} (an admin role limited to a prefix holding {name}
     * grants it) */
    ROUTE_ACCESS_ADMIN_MODEL,
    /* read of no one model, like READ_ALL, or no token at all when the
     * server's metrics.public is set (GET /metrics) */
    ROUTE_ACCESS_METRICS,
    /* read on some model, a role limited to a prefix included: the route
     * shows each identity only the models it may read (GET /v2/_catalog) */
    ROUTE_ACCESS_READ_SOME
} route_access;

/** What a row's request may carry. */
typedef enum {
    ROUTE_BODY_UNSET = 0, /* a row without a rule: takes no body */
    ROUTE_BODY_NONE,      /* nothing: a body is a 400 */
    ROUTE_BODY_JSON,      /* a JSON object of at most API_JSON_MAX bytes, buffered */
    ROUTE_BODY_MANIFEST,  /* at most the registry's manifest limit, buffered */
    ROUTE_BODY_STREAM     /* streamed to on_body, once begin set rq->body = BODY_STREAM */
} route_body;

/** Largest body of a ROUTE_BODY_JSON row; a larger one is 413. */
#define API_JSON_MAX (64u * 1024)

typedef struct route_row {
    unsigned int methods; /* ROUTE_GET | ... */
    const char *pattern;
    route_access access;
    route_body body;
    err_ctx ctx; /* what the route is about: the context of its errors */
    /* Step 2, after the role check (may be NULL): validate, set up the body. */
    void (*begin)(request *rq);
    /* Step 3 of a ROUTE_BODY_STREAM row: one piece of the body; MHD_NO
     * closes the connection. */
    enum MHD_Result (*on_body)(request *rq, const char *data, size_t len);
    /* Step 4: the reply (reached only when no error was recorded). */
    enum MHD_Result (*finish)(request *rq);
} route_row;

typedef struct {
    const route_row *rows;
    size_t count;
} route_table;

/** The handler files' tables. */
extern const route_table mlreg_server__oci_upload_routes;
extern const route_table mlreg_server__oci_routes;
extern const route_table mlreg_server__api_routes;
extern const route_table mlreg_server__audit_routes;
extern const route_table mlreg_server__probe_routes;
extern const route_table mlreg_server__token_routes;
extern const route_table mlreg_server__metrics_routes;
extern const route_table mlreg_server__event_routes;
extern const route_table mlreg_server__reload_routes;
extern const route_table mlreg_server__dashboard_routes;
extern const route_table mlreg_server__hf_routes;

/** A span of the matched path. */
typedef struct {
    const char *p; /* NULL: not captured */
    size_t len;
} route_span;

/** What matching a path found. */
typedef struct {
    const route_row *row; /* the row for the method; NULL: 405 */
    unsigned int allow;   /* the methods of the resource */
    route_span name, arg, stage;
    int arg_is_version; /* arg must be a valid tag */
    route_span path;    /* {path*} */
} route_match;

/** Matches @p path (raw, without the query) and @p method against the
 *  tables. 1: a resource matched (*out filled; out->row NULL when it has no
 *  row for @p method); 0: no route. The spans point into @p path. */
int mlreg_server__route_match(route_match *out, const char *path, const char *method);
/** Writes the methods of @p mask as an Allow value ("GET, HEAD, DELETE"). */
void mlreg_server__route_allow(char *out, size_t outlen, unsigned int mask);
/** Whether identity @p who may make a request of @p row on @p name (NULL:
 *  none) and @p stage (NULL: none) under @p policy: 0 or the error of
 *  mlreg_auth_check() (MLREG_EFORBIDDEN...). An IN_BODY row passes here. */
int mlreg_server__route_access(const route_row *row, const mlreg_identity *who,
                               const mlreg_policy *policy, const char *name, const char *stage);
/** Rows in all the tables. */
size_t mlreg_server__route_count(void);
/** The position of @p row among all rows (matching order), from 0 to
 *  mlreg_server__route_count() - 1; the count for a row of no table. */
size_t mlreg_server__route_index(const route_row *row);
/** Calls @p fn for every row of every table, in matching order. */
void mlreg_server__route_foreach(void (*fn)(const route_row *row, void *cls), void *cls);

#endif
