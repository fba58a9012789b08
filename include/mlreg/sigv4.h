/**
 * @file sigv4.h
 * @brief AWS Signature Version 4 (HMAC-SHA256), written here because the
 *        curl 7.88 of Debian 12 signs some S3 requests wrongly.
 *
 * Two forms: header auth (an Authorization header) and presigned query auth
 * (X-Amz-* query parameters). S3 rules by default: the path is URI-encoded
 * once and never normalised; query parameters are encoded and sorted; header
 * names are lowercased and sorted, values trimmed with inner whitespace runs
 * collapsed, repeated headers joined with ','. A non-S3 mode applies RFC 3986
 * path normalisation (dot segments, duplicate slashes) as other AWS services
 * do; S3 must never use it.
 */
#ifndef MLREG_SIGV4_H
#define MLREG_SIGV4_H

#include <stddef.h>
#include <time.h>

/** The payload hash of S3 requests whose body is verified by other means. */
#define MLREG_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/** The longest X-Amz-Expires AWS accepts (7 days). */
#define MLREG_SIGV4_MAX_EXPIRES 604800

/** One request header, as sent (any case, untrimmed). */
typedef struct {
    const char *name;
    const char *value;
} mlreg_sigv4_header;

/** One query parameter, decoded (raw bytes; the signer encodes them). */
typedef struct {
    const char *key;
    const char *value; /**< "" for a key without '=' */
} mlreg_sigv4_param;

/** Who signs, and for which scope. Strings are borrowed. */
typedef struct {
    const char *access_key;
    const char *secret_key;
    const char *session_token; /**< NULL when none */
    const char *region;        /**< e.g. "us-east-1" */
    const char *service;       /**< "s3" */
} mlreg_sigv4_credentials;

/** The request to sign. Strings and arrays are borrowed. */
typedef struct {
    const char *method;             /**< "GET", "PUT", ... */
    const char *path;               /**< raw (not encoded) path, starting with '/' */
    const mlreg_sigv4_param *query; /**< decoded parameters, any order */
    size_t nquery;
    const mlreg_sigv4_header *headers; /**< headers to sign; must include Host */
    size_t nheaders;
    const char *payload_hash; /**< 64 lowercase hex or UNSIGNED-PAYLOAD */
    time_t when;              /**< signing time (UTC seconds) */
    int normalize_path;       /**< non-S3 mode only: RFC 3986 normalisation */
    int sign_content_sha256;  /**< add and sign x-amz-content-sha256 (S3: always) */
    int omit_session_token;   /**< leave the token out of the signature (it is
                                   still returned, to be sent afterwards) */
} mlreg_sigv4_request;

/** What signing produces. Free with mlreg_sigv4_result_free(). */
typedef struct {
    char *canonical_request; /**< malloc'd */
    char *string_to_sign;    /**< malloc'd */
    char signature[65];      /**< lowercase hex */
    char amz_date[17];       /**< "YYYYMMDDTHHMMSSZ": send as x-amz-date (header form) */
    /** Header form: the Authorization value. Query form: NULL. malloc'd. */
    char *authorization;
    /**
     * Query form: the complete encoded query string to put after '?' (the
     * request's own parameters, the X-Amz-* ones and X-Amz-Signature; the
     * session token appended last when it was omitted from signing).
     * Header form: NULL. malloc'd.
     */
    char *query;
} mlreg_sigv4_result;

/**
 * Signs @p req in the header form. The caller must send, besides the headers
 * it passed, `x-amz-date: out->amz_date`, `x-amz-content-sha256:
 * req->payload_hash` when sign_content_sha256 is set, `x-amz-security-token`
 * when a token is set, and `Authorization: out->authorization`.
 * @return 0, MLREG_EINVALID (missing field, bad time), MLREG_ENOMEM or
 *         MLREG_EIO (crypto failure). On error *out holds nothing to free.
 */
int mlreg_sigv4_sign_header(mlreg_sigv4_result *out, const mlreg_sigv4_credentials *cred,
                            const mlreg_sigv4_request *req);

/**
 * Signs @p req in the presigned query form, valid for @p expires seconds
 * (1..MLREG_SIGV4_MAX_EXPIRES). sign_content_sha256 is ignored.
 * @return as mlreg_sigv4_sign_header; MLREG_EINVALID for an out-of-range expiry.
 */
int mlreg_sigv4_presign(mlreg_sigv4_result *out, const mlreg_sigv4_credentials *cred,
                        const mlreg_sigv4_request *req, unsigned int expires);

/** Frees the strings of @p r (not @p r itself) and wipes it; NULL is a no-op. */
void mlreg_sigv4_result_free(mlreg_sigv4_result *r);

/**
 * SigV4 URI encoding of @p len bytes of @p s into a new malloc'd string
 * (*out, caller frees): unreserved bytes (A-Z a-z 0-9 - . _ ~) pass, '/'
 * passes when @p keep_slash, everything else becomes %XX (upper case).
 * 0 or MLREG_ENOMEM.
 */
int mlreg_sigv4_uri_encode(char **out, const char *s, size_t len, int keep_slash);

#endif
