/* server_errors.c: the one table that maps MLREG_E* codes to HTTP statuses
 * and OCI distribution error codes (plus mlreg's own SIGNATURE_INVALID and
 * KEY_UNKNOWN of docs/signatures-api.md, and GATE_FAILED, STAGE_EMPTY of
 * docs/promotions-api.md; STAGE_UNKNOWN is answered by the routes, which
 * check a stage name against the config before anything else).
 *
 * The same code means different things depending on what was asked for
 * (ENOTFOUND on a blob route is BLOB_UNKNOWN, on a manifest route
 * MANIFEST_UNKNOWN), so rows are keyed by (code, context); a row with
 * ERR_CTX_ANY is the fallback for its code. Anything not in the table is an
 * internal error: 500 UNKNOWN.
 *
 * A 5xx is the server's trouble, not the client's, and its message is
 * written for the operator: it may name files under the data directory
 * (a blob that is not a regular file, a temp file the disk had no room
 * for), the S3 endpoint, LMDB internals. So for every 5xx the server logs
 * the full message (mlreg_server__req_fail() in server_http.c: one
 * "mlreg: error:" line with the request) and the client gets the generic
 * text of mlreg_server__error_public_message(). A 4xx message is about the
 * client's own input and is sent as it is.
 */
#include "server_internal.h"

#include "mlreg/common.h"

static const struct {
    int code;
    err_ctx ctx;
    unsigned int status;
    const char *oci;
} error_table[] = {
    {MLREG_ENOTFOUND, ERR_CTX_BLOB, 404, "BLOB_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_UPLOAD, 404, "BLOB_UPLOAD_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_MANIFEST, 404, "MANIFEST_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_TAGS, 404, "NAME_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_NAME, 404, "NAME_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_MODEL, 404, "NAME_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_RELEASE, 404, "MANIFEST_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_SIGNATURE, 404, "MANIFEST_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_KEY, 404, "KEY_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_STAGE, 404, "STAGE_EMPTY"},
    {MLREG_ENOTFOUND, ERR_CTX_PROMOTION, 404, "MANIFEST_UNKNOWN"},
    {MLREG_ENOTFOUND, ERR_CTX_ANY, 404, "NAME_UNKNOWN"},

    {MLREG_EINVALID, ERR_CTX_NAME, 400, "NAME_INVALID"},
    {MLREG_EINVALID, ERR_CTX_DIGEST, 400, "DIGEST_INVALID"},
    {MLREG_EINVALID, ERR_CTX_BLOB, 400, "DIGEST_INVALID"},
    {MLREG_EINVALID, ERR_CTX_UPLOAD, 400, "BLOB_UPLOAD_INVALID"},
    {MLREG_EINVALID, ERR_CTX_MANIFEST, 400, "MANIFEST_INVALID"},
    {MLREG_EINVALID, ERR_CTX_RELEASE, 400, "MANIFEST_INVALID"},
    {MLREG_EINVALID, ERR_CTX_SIGNATURE, 400, "SIGNATURE_INVALID"},
    {MLREG_EINVALID, ERR_CTX_ANY, 400, "UNSUPPORTED"},

    {MLREG_EMISMATCH, ERR_CTX_SIGNATURE, 400, "SIGNATURE_INVALID"},
    {MLREG_EMISMATCH, ERR_CTX_ANY, 400, "DIGEST_INVALID"},
    {MLREG_EBLOBUNKNOWN, ERR_CTX_ANY, 400, "MANIFEST_BLOB_UNKNOWN"},
    {MLREG_ETOOBIG, ERR_CTX_ANY, 413, "SIZE_INVALID"},
    {MLREG_ERANGE, ERR_CTX_BLOB, 416, "SIZE_INVALID"},
    {MLREG_ERANGE, ERR_CTX_ANY, 416, "BLOB_UPLOAD_INVALID"},
    {MLREG_EEXISTS, ERR_CTX_ANY, 409, "DENIED"},
    {MLREG_EDENIED, ERR_CTX_ANY, 409, "DENIED"},
    {MLREG_EGATE, ERR_CTX_ANY, 409, "GATE_FAILED"},
    {MLREG_EAUTH, ERR_CTX_ANY, 401, "UNAUTHORIZED"},
    {MLREG_EFORBIDDEN, ERR_CTX_ANY, 403, "DENIED"},
    {MLREG_EUNSUPPORTED, ERR_CTX_ANY, 400, "UNSUPPORTED"},
    {MLREG_ENOSPACE, ERR_CTX_ANY, 507, "UNKNOWN"},
    {MLREG_EQUOTA, ERR_CTX_ANY, 429, "TOOMANYREQUESTS"},
    {MLREG_ESERVER, ERR_CTX_ANY, 503, "UNAVAILABLE"},
    {MLREG_EUNAVAILABLE, ERR_CTX_ANY, 503, "UNAVAILABLE"},
    {MLREG_EGONE, ERR_CTX_MANIFEST, 410, "MANIFEST_UNKNOWN"},
    {MLREG_EGONE, ERR_CTX_ANY, 410, "RELEASE_PURGED"},
};

void mlreg_server__error_map(unsigned int *status_out, const char **oci_code_out, int code,
                             err_ctx ctx)
{
    size_t n = sizeof(error_table) / sizeof(error_table[0]);
    size_t i;

    for (i = 0; i < n; i++)
        if (error_table[i].code == code && error_table[i].ctx == ctx) break;
    if (i == n)
        for (i = 0; i < n; i++)
            if (error_table[i].code == code && error_table[i].ctx == ERR_CTX_ANY) break;
    if (i == n) {
        *status_out = 500;
        *oci_code_out = "UNKNOWN";
        return;
    }
    *status_out = error_table[i].status;
    *oci_code_out = error_table[i].oci;
}

const char *mlreg_server__error_public_message(unsigned int status)
{
    if (status == 507)
        return "the registry is out of storage space; its operator finds the details in the "
               "server log";
    if (status == 503)
        return "the registry cannot serve this now: its log in the object store, or the node "
               "holding the upload, is unreachable, broken or too busy; retry later (its "
               "operator finds the details in the server log)";
    if (status >= 500)
        return "internal error in the registry; its operator finds the details in the server log";
    return NULL;
}
