/* check_sigv4.c: SigV4 signing against the AWS vectors copied under
 * tests/vectors/sigv4 (see its README.txt for provenance and licence).
 *
 * - s3-examples/: every S3 worked example, header and presigned forms, with
 *   S3 rules (path encoded once, never normalised, x-amz-content-sha256).
 *   put-object-streaming-chunked: its seed signature is an ordinary header
 *   signature over the STREAMING-AWS4-HMAC-SHA256-PAYLOAD canonical request
 *   and is checked; the per-chunk signatures are NOT checked, because mlreg
 *   does not implement aws-chunked uploads (it signs each part with the
 *   part's own SHA-256 instead), so there is no chunk signer to test.
 * - v4/: all 38 cases, header and query forms. Cases whose context.json says
 *   "normalize": false run with S3 rules. Cases with "normalize": true run
 *   in the signer's non-S3 mode, which implements RFC 3986 path
 *   normalisation (dot segments, duplicate slashes) the way other AWS
 *   services do; S3 never uses that mode.
 *
 * Vector files are found under $MLREG_ROOT (tests/run.sh sets it) or ".". */
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/sigv4.h"

#include "helpers.h"

#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_HDRS   16
#define MAX_PARAMS 16

static char *vec_path(const char *sub, const char *c, const char *file)
{
    static char buf[4][4096];
    static int i;
    const char *base = getenv("MLREG_ROOT");
    char *b = buf[i++ % 4];

    snprintf(b, 4096, "%s/tests/vectors/sigv4/%s/%s/%s", base ? base : ".", sub, c, file);
    return b;
}

static char *slurp_trimmed(const char *path)
{
    size_t n = 0;
    char *s = th_slurp(&n, path);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes in place. */
static void pct_decode(char *s)
{
    char *w = s;

    for (; *s; s++) {
        if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *w++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
}

/* A request.txt parsed into the signer's terms; all strings point into text. */
struct parsed {
    char *text;
    char method[16];
    char *path;
    mlreg_sigv4_param params[MAX_PARAMS];
    size_t nparams;
    mlreg_sigv4_header hdrs[MAX_HDRS];
    size_t nhdrs;
    char *values[MAX_HDRS]; /* malloc'd values (continuations joined) */
    const char *body;
    size_t body_len;
};

static void parse_request(struct parsed *p, const char *file)
{
    char *s, *eol, *sp, *q, *target;
    size_t len = 0;

    memset(p, 0, sizeof(*p));
    p->text = th_slurp(&len, file);
    s = p->text;
    eol = strchr(s, '\n');
    ck_assert_ptr_nonnull(eol);
    *eol = '\0';
    sp = strchr(s, ' ');
    ck_assert_ptr_nonnull(sp);
    *sp = '\0';
    snprintf(p->method, sizeof(p->method), "%s", s);
    target = sp + 1;
    sp = strrchr(target, ' '); /* " HTTP/1.1"; the path may hold spaces */
    ck_assert_ptr_nonnull(sp);
    *sp = '\0';
    if ((q = strchr(target, '?')) != NULL) {
        char *tok, *save = NULL;
        *q++ = '\0';
        for (tok = strtok_r(q, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(tok, '=');
            ck_assert_uint_lt(p->nparams, MAX_PARAMS);
            if (eq) *eq = '\0';
            pct_decode(tok);
            if (eq) pct_decode(eq + 1);
            p->params[p->nparams].key = tok;
            p->params[p->nparams].value = eq ? eq + 1 : "";
            p->nparams++;
        }
    }
    p->path = target;
    s = eol + 1;
    while (*s && *s != '\n') {
        char *line = s, *colon;
        eol = strchr(s, '\n');
        if (eol) *eol = '\0';
        s = eol ? eol + 1 : s + strlen(s);
        if ((line[0] == ' ' || line[0] == '\t') && p->nhdrs > 0) {
            /* folded continuation line */
            char *prev = p->values[p->nhdrs - 1], *joined;
            ck_assert_int_ge(asprintf(&joined, "%s\n%s", prev, line), 0);
            free(prev);
            p->values[p->nhdrs - 1] = joined;
            p->hdrs[p->nhdrs - 1].value = joined;
            continue;
        }
        if ((colon = strchr(line, ':')) == NULL) continue; /* an informal note */
        *colon = '\0';
        ck_assert_uint_lt(p->nhdrs, MAX_HDRS);
        p->hdrs[p->nhdrs].name = line;
        p->values[p->nhdrs] = strdup(colon + 1);
        ck_assert_ptr_nonnull(p->values[p->nhdrs]);
        p->hdrs[p->nhdrs].value = p->values[p->nhdrs];
        p->nhdrs++;
    }
    if (*s == '\n') s++;
    p->body = s;
    p->body_len = len - (size_t)(s - p->text);
}

static void parsed_free(struct parsed *p)
{
    size_t i;

    for (i = 0; i < p->nhdrs; i++)
        free(p->values[i]);
    free(p->text);
}

/* Removes header @p name (any case) and returns its trimmed value (malloc'd) or NULL. */
static char *take_header(struct parsed *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->nhdrs; i++) {
        if (strcasecmp(p->hdrs[i].name, name) == 0) {
            char *v = p->values[i], *t = v;
            while (*t == ' ')
                t++;
            memmove(v, t, strlen(t) + 1);
            memmove(&p->hdrs[i], &p->hdrs[i + 1], (p->nhdrs - i - 1) * sizeof(p->hdrs[0]));
            memmove(&p->values[i], &p->values[i + 1], (p->nhdrs - i - 1) * sizeof(p->values[0]));
            p->nhdrs--;
            return v;
        }
    }
    return NULL;
}

static time_t parse_iso(const char *s)
{
    struct tm tm = {0};

    ck_assert_ptr_nonnull(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return timegm(&tm);
}

static void check_eq_file(const char *got, const char *path)
{
    char *want = slurp_trimmed(path);

    ck_assert_msg(strcmp(got, want) == 0, "%s differs:\n--- want\n%s\n--- got\n%s", path, want,
                  got);
    free(want);
}

/* ---- s3-examples ---- */

static const char *const s3_cases[] = {"get-object-range",     "put-object",
                                       "get-bucket-lifecycle", "list-objects",
                                       "presigned-get-object", "put-object-streaming-chunked"};

START_TEST(test_sigv4_s3_worked_examples_match)
{
    const char *c = s3_cases[_i];
    json_t *ctx = json_load_file(vec_path("s3-examples", c, "context.json"), 0, NULL);
    struct parsed p;
    mlreg_sigv4_credentials cred = {0};
    mlreg_sigv4_request req = {0};
    mlreg_sigv4_result res;
    const char *type;
    char *sha = NULL, *date = NULL, *want;

    ck_assert_ptr_nonnull(ctx);
    parse_request(&p, vec_path("s3-examples", c, "request.txt"));
    cred.access_key =
        json_string_value(json_object_get(json_object_get(ctx, "credentials"), "access_key_id"));
    cred.secret_key = json_string_value(
        json_object_get(json_object_get(ctx, "credentials"), "secret_access_key"));
    cred.region = json_string_value(json_object_get(ctx, "region"));
    cred.service = json_string_value(json_object_get(ctx, "service"));
    ck_assert_str_eq(cred.service, "s3");
    ck_assert(json_is_false(json_object_get(ctx, "normalize")));
    type = json_string_value(json_object_get(ctx, "signature_type"));

    /* the signer adds these itself; the example lists them as sent */
    sha = take_header(&p, "x-amz-content-sha256");
    date = take_header(&p, "x-amz-date");
    req.method = p.method;
    req.path = p.path;
    req.query = p.params;
    req.nquery = p.nparams;
    req.headers = p.hdrs;
    req.nheaders = p.nhdrs;
    req.when = parse_iso(json_string_value(json_object_get(ctx, "timestamp")));
    req.normalize_path = 0; /* S3 rules */
    req.sign_content_sha256 = 1;

    if (strcmp(type, "query") == 0) {
        req.payload_hash = json_string_value(json_object_get(ctx, "payload"));
        ck_assert_str_eq(req.payload_hash, MLREG_SIGV4_UNSIGNED_PAYLOAD);
        ck_assert_int_eq(mlreg_sigv4_presign(&res, &cred, &req,
                                             (unsigned)json_integer_value(
                                                 json_object_get(ctx, "expiration_in_seconds"))),
                         0);
        check_eq_file(res.canonical_request, vec_path("s3-examples", c, "canonical-request.txt"));
        check_eq_file(res.string_to_sign, vec_path("s3-examples", c, "string-to-sign.txt"));
        check_eq_file(res.signature, vec_path("s3-examples", c, "signature.txt"));
        want = slurp_trimmed(vec_path("s3-examples", c, "presigned-url.txt"));
        ck_assert_ptr_nonnull(strstr(want, "?"));
        ck_assert_str_eq(strchr(want, '?') + 1, res.query);
        free(want);
    } else {
        ck_assert_ptr_nonnull(sha);
        ck_assert_ptr_nonnull(date);
        req.payload_hash = sha;
        ck_assert_int_eq(mlreg_sigv4_sign_header(&res, &cred, &req), 0);
        ck_assert_str_eq(res.amz_date, date);
        check_eq_file(res.canonical_request, vec_path("s3-examples", c, "canonical-request.txt"));
        check_eq_file(res.string_to_sign, vec_path("s3-examples", c, "string-to-sign.txt"));
        if (strcmp(type, "header-streaming") == 0) {
            /* the seed signature only; chunk signatures: see the file comment */
            check_eq_file(res.signature, vec_path("s3-examples", c, "seed-signature.txt"));
        } else {
            mlreg_digest d;
            char hex[MLREG_DIGEST_HEXLEN + 1];
            check_eq_file(res.signature, vec_path("s3-examples", c, "signature.txt"));
            /* the declared payload hash is the body's */
            ck_assert_int_eq(mlreg_digest_buffer(&d, p.body, p.body_len), 0);
            mlreg_digest_hex(hex, &d);
            if (strcmp(p.method, "PUT") == 0) {
                /* request.txt ends the body with a newline the example did not sign */
                ck_assert_int_eq(mlreg_digest_buffer(&d, p.body, strcspn(p.body, "\n")), 0);
                mlreg_digest_hex(hex, &d);
            }
            ck_assert_str_eq(hex, sha);
        }
        check_eq_file(res.authorization, vec_path("s3-examples", c, "authorization.txt"));
    }
    mlreg_sigv4_result_free(&res);
    free(sha);
    free(date);
    parsed_free(&p);
    json_decref(ctx);
}
END_TEST

/* ---- v4/ ---- */

static void run_v4_case(const char *c, int *normalized_runs)
{
    json_t *ctx = json_load_file(vec_path("v4", c, "context.json"), 0, NULL);
    json_t *creds;
    struct parsed p;
    mlreg_sigv4_credentials cred = {0};
    mlreg_sigv4_request req = {0};
    mlreg_sigv4_result res;
    mlreg_digest d;
    char hex[MLREG_DIGEST_HEXLEN + 1], needle[128], *signed_req;
    int normalize;

    ck_assert_msg(ctx != NULL, "context.json of %s", c);
    creds = json_object_get(ctx, "credentials");
    parse_request(&p, vec_path("v4", c, "request.txt"));
    cred.access_key = json_string_value(json_object_get(creds, "access_key_id"));
    cred.secret_key = json_string_value(json_object_get(creds, "secret_access_key"));
    cred.session_token = json_string_value(json_object_get(creds, "token"));
    cred.region = json_string_value(json_object_get(ctx, "region"));
    cred.service = json_string_value(json_object_get(ctx, "service"));
    normalize = json_is_true(json_object_get(ctx, "normalize"));
    if (normalize) ++*normalized_runs;

    ck_assert_int_eq(mlreg_digest_buffer(&d, p.body, p.body_len), 0);
    mlreg_digest_hex(hex, &d);
    req.method = p.method;
    req.path = p.path;
    req.query = p.params;
    req.nquery = p.nparams;
    req.headers = p.hdrs;
    req.nheaders = p.nhdrs;
    req.payload_hash = hex;
    req.when = parse_iso(json_string_value(json_object_get(ctx, "timestamp")));
    req.normalize_path = normalize; /* false: S3 rules; true: the non-S3 mode */
    req.sign_content_sha256 = json_is_true(json_object_get(ctx, "sign_body"));
    req.omit_session_token = json_is_true(json_object_get(ctx, "omit_session_token"));

    ck_assert_int_eq(mlreg_sigv4_sign_header(&res, &cred, &req), 0);
    check_eq_file(res.canonical_request, vec_path("v4", c, "header-canonical-request.txt"));
    check_eq_file(res.string_to_sign, vec_path("v4", c, "header-string-to-sign.txt"));
    check_eq_file(res.signature, vec_path("v4", c, "header-signature.txt"));
    signed_req = slurp_trimmed(vec_path("v4", c, "header-signed-request.txt"));
    snprintf(needle, sizeof(needle), "\nX-Amz-Date:%s\n", res.amz_date);
    ck_assert_ptr_nonnull(strstr(signed_req, needle));
    ck_assert_msg(strstr(signed_req, res.authorization) != NULL, "%s: authorization %s not in %s",
                  c, res.authorization, signed_req);
    free(signed_req);
    mlreg_sigv4_result_free(&res);

    ck_assert_int_eq(mlreg_sigv4_presign(&res, &cred, &req,
                                         (unsigned)json_integer_value(
                                             json_object_get(ctx, "expiration_in_seconds"))),
                     0);
    check_eq_file(res.canonical_request, vec_path("v4", c, "query-canonical-request.txt"));
    check_eq_file(res.string_to_sign, vec_path("v4", c, "query-string-to-sign.txt"));
    check_eq_file(res.signature, vec_path("v4", c, "query-signature.txt"));
    signed_req = slurp_trimmed(vec_path("v4", c, "query-signed-request.txt"));
    snprintf(needle, sizeof(needle), "X-Amz-Signature=%s", res.signature);
    ck_assert_ptr_nonnull(strstr(signed_req, needle));
    ck_assert_ptr_nonnull(strstr(res.query, needle));
    if (cred.session_token != NULL) {
        /* sent either way, signed or not */
        char *enc = NULL;
        ck_assert_int_eq(
            mlreg_sigv4_uri_encode(&enc, cred.session_token, strlen(cred.session_token), 0), 0);
        ck_assert_ptr_nonnull(strstr(res.query, enc));
        ck_assert_ptr_nonnull(strstr(signed_req, enc));
        free(enc);
    }
    free(signed_req);
    mlreg_sigv4_result_free(&res);
    parsed_free(&p);
    json_decref(ctx);
}

START_TEST(test_sigv4_every_v4_case_matches_in_header_and_query_form)
{
    char dir[4096];
    const char *base = getenv("MLREG_ROOT");
    DIR *d;
    struct dirent *e;
    int n = 0, normalized = 0;

    snprintf(dir, sizeof(dir), "%s/tests/vectors/sigv4/v4", base ? base : ".");
    d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        run_v4_case(e->d_name, &normalized);
        n++;
    }
    closedir(d);
    ck_assert_int_eq(n, 38);
    ck_assert_int_eq(n - normalized, 7); /* the "normalize": false ones, S3 rules */
}
END_TEST

/* ---- S3 rules the vectors do not pin down ---- */

static const mlreg_sigv4_credentials s3cred = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL, "us-east-1", "s3"};

START_TEST(test_sigv4_s3_path_is_encoded_once_and_never_normalised)
{
    mlreg_sigv4_header h[] = {{"Host", "b.example"}};
    mlreg_sigv4_request req = {0};
    mlreg_sigv4_result res;

    req.method = "GET";
    req.path = "/bucket//a/./b/../c%2Fd e+f";
    req.headers = h;
    req.nheaders = 1;
    req.payload_hash = MLREG_SIGV4_UNSIGNED_PAYLOAD;
    req.when = 1369353600;
    req.sign_content_sha256 = 1;
    ck_assert_int_eq(mlreg_sigv4_sign_header(&res, &s3cred, &req), 0);
    ck_assert_ptr_nonnull(strstr(res.canonical_request, "\n/bucket//a/./b/../c%252Fd%20e%2Bf\n"));
    ck_assert_ptr_nonnull(strstr(res.canonical_request, "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"));
    mlreg_sigv4_result_free(&res);
}
END_TEST

START_TEST(test_sigv4_session_token_is_signed_as_a_header)
{
    mlreg_sigv4_credentials c = s3cred;
    mlreg_sigv4_header h[] = {{"Host", "b.example"}};
    mlreg_sigv4_request req = {0};
    mlreg_sigv4_result res;

    c.session_token = "tok/en+";
    req.method = "HEAD";
    req.path = "/k";
    req.headers = h;
    req.nheaders = 1;
    req.payload_hash = MLREG_SIGV4_UNSIGNED_PAYLOAD;
    req.when = 1369353600;
    req.sign_content_sha256 = 1;
    ck_assert_int_eq(mlreg_sigv4_sign_header(&res, &c, &req), 0);
    ck_assert_ptr_nonnull(strstr(res.canonical_request, "\nx-amz-security-token:tok/en+\n"));
    ck_assert_ptr_nonnull(strstr(res.authorization,
                                 "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                                 "x-amz-security-token,"));
    mlreg_sigv4_result_free(&res);
    ck_assert_int_eq(mlreg_sigv4_presign(&res, &c, &req, 60), 0);
    ck_assert_ptr_nonnull(strstr(res.query, "X-Amz-Security-Token=tok%2Fen%2B&"));
    mlreg_sigv4_result_free(&res);
}
END_TEST

START_TEST(test_sigv4_presign_refuses_expiry_beyond_seven_days)
{
    mlreg_sigv4_header h[] = {{"Host", "b.example"}};
    mlreg_sigv4_request req = {0};
    mlreg_sigv4_result res;

    req.method = "GET";
    req.path = "/k";
    req.headers = h;
    req.nheaders = 1;
    req.payload_hash = MLREG_SIGV4_UNSIGNED_PAYLOAD;
    req.when = time(NULL);
    ck_assert_int_eq(mlreg_sigv4_presign(&res, &s3cred, &req, MLREG_SIGV4_MAX_EXPIRES + 1),
                     MLREG_EINVALID);
    ck_assert_ptr_null(res.query);
    ck_assert_int_eq(mlreg_sigv4_presign(&res, &s3cred, &req, 0), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_sigv4_presign(&res, &s3cred, &req, MLREG_SIGV4_MAX_EXPIRES), 0);
    ck_assert_ptr_nonnull(strstr(res.query, "X-Amz-Expires=604800&"));
    mlreg_sigv4_result_free(&res);
    mlreg_sigv4_result_free(NULL);
}
END_TEST

static Suite *sigv4_suite(void)
{
    Suite *s = suite_create("sigv4");
    TCase *t = tcase_create("vectors");

    tcase_add_loop_test(t, test_sigv4_s3_worked_examples_match, 0,
                        (int)(sizeof(s3_cases) / sizeof(s3_cases[0])));
    tcase_add_test(t, test_sigv4_every_v4_case_matches_in_header_and_query_form);
    tcase_add_test(t, test_sigv4_s3_path_is_encoded_once_and_never_normalised);
    tcase_add_test(t, test_sigv4_session_token_is_signed_as_a_header);
    tcase_add_test(t, test_sigv4_presign_refuses_expiry_beyond_seven_days);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sigv4_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
