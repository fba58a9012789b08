/* server_dashboard.c: the read-only web dashboard's static files, built
 * into the binary from web/ (scripts/embed_web.sh generates the table).
 *
 *   GET|HEAD /            web/index.html
 *   GET|HEAD /ui/{id}     the asset named {id} (app.js, app.css...); 404 else
 *
 * Both are open to everyone: they are the same bytes for every caller and
 * hold no data. The page reads everything it shows from /api/v1 with the
 * token the user pastes into it, so the API's roles still decide what a
 * browser sees. Every answer carries a strict Content-Security-Policy (no
 * inline script or style, no other origin: a name or reason from the
 * registry that slipped into markup still could not run), nosniff and a
 * strong ETag (the SHA-256 of the bytes); a matching If-None-Match is a
 * 304. Cache-Control is no-cache: browsers revalidate, so a new binary's
 * assets are seen at the next load.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "mlreg/common.h"
#include "server_routes.h"

typedef struct {
    const char *name;
    const char *type;
    const unsigned char *data;
    size_t len;
} web_asset;

/* generated into $(BUILD)/gen, on the include path of this object alone */
#include <web_assets.h>

#define NASSETS (sizeof(web_assets) / sizeof(web_assets[0]))
/* "sha256-" and 64 hex digits, quoted */
#define ETAG_MAX 80

static const char dashboard_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

static const web_asset *asset_find(const char *name)
{
    for (size_t i = 0; i < NASSETS; i++)
        if (!strcmp(web_assets[i].name, name)) return &web_assets[i];
    return NULL;
}

static void asset_etag(char out[ETAG_MAX], const web_asset *a)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];

    crypto_hash_sha256(h, a->data, a->len);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(out, ETAG_MAX, "\"sha256-%s\"", hex);
}

/* Whether the If-None-Match value @p inm names @p etag: "*", or one of its
 * comma-separated entries equal to it (a weak W/ prefix compares the same,
 * as RFC 9110 asks of If-None-Match). */
static int etag_listed(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = inm;

    while (*p) {
        const char *end;
        size_t len;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) break;
        end = strchr(p, ',');
        len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 1 && p[0] == '*') return 1;
        if (len > 2 && !strncmp(p, "W/", 2)) p += 2, len -= 2;
        if (len == elen && !memcmp(p, etag, len)) return 1;
        p += len;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

/* Queues @p a (200, or 304 when the client holds it already) with the
 * dashboard's headers. HEAD gets the same headers; libmicrohttpd sends no
 * body for it. */
static enum MHD_Result asset_reply(request *rq, const web_asset *a)
{
    char etag[ETAG_MAX];
    const char *inm = mlreg_server__req_header(rq, "If-None-Match");
    int not_modified;
    struct MHD_Response *resp;

    asset_etag(etag, a);
    not_modified = inm != NULL && etag_listed(inm, etag);
    if (not_modified)
        resp = mlreg_server__resp_empty();
    else
        resp = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) return MHD_NO;
    if ((!not_modified && mlreg_server__resp_header(resp, "Content-Type", a->type) < 0) ||
        mlreg_server__resp_header(resp, "ETag", etag) < 0 ||
        mlreg_server__resp_header(resp, "Cache-Control", "no-cache") < 0 ||
        mlreg_server__resp_header(resp, "Content-Security-Policy", dashboard_csp) < 0 ||
        mlreg_server__resp_header(resp, "X-Content-Type-Options", "nosniff") < 0 ||
        mlreg_server__resp_header(resp, "X-Frame-Options", "DENY") < 0 ||
        mlreg_server__resp_header(resp, "Referrer-Policy", "no-referrer") < 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return mlreg_server__req_queue(rq, not_modified ? 304 : 200, resp,
                                   not_modified ? 0 : (uint64_t)a->len);
}

static enum MHD_Result dashboard_index(request *rq)
{
    const web_asset *a = asset_find("index.html");

    if (a == NULL) {
        mlreg_error_set(MLREG_ENOTFOUND, "the dashboard is not built into this binary");
        return mlreg_server__reply_error(rq, MLREG_ENOTFOUND, ERR_CTX_ANY);
    }
    return asset_reply(rq, a);
}

static enum MHD_Result dashboard_asset(request *rq)
{
    const web_asset *a = asset_find(rq->arg);

    /* index.html has one address, "/" */
    if (a == NULL || !strcmp(a->name, "index.html")) {
        mlreg_error_set(MLREG_ENOTFOUND, "no dashboard asset of that name");
        return mlreg_server__reply_error(rq, MLREG_ENOTFOUND, ERR_CTX_ANY);
    }
    return asset_reply(rq, a);
}

static const route_row dashboard_rows[] = {
    /* methods, pattern, role, body, error context, begin, on_body, finish */
    {ROUTE_GET_HEAD, "/", ROUTE_ACCESS_PUBLIC, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL, NULL,
     dashboard_index},
    {ROUTE_GET_HEAD, "/ui/{id}", ROUTE_ACCESS_PUBLIC, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL, NULL,
     dashboard_asset},
};

const route_table mlreg_server__dashboard_routes = {dashboard_rows, sizeof(dashboard_rows) /
                                                                        sizeof(dashboard_rows[0])};
