/* check_server_routes.c: the server's route tables without a running
 * server: every row has a role rule and a body rule, reads never take a
 * body, paths match the right row (names with slashes, the rightmost
 * split), unknown paths match nothing, method masks give the Allow header,
 * and each role rule refuses an identity that lacks the role. */
#include "../../registry/server_routes.h"

#include "mlreg/auth.h"
#include "mlreg/common.h"
#include "mlreg/gates.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stages[] = {"dev", "staging", "production"};
static mlreg_auth *auth;
static mlreg_policy *policy;

/* Tokens "reader" (read), "team-reader" (read on team/ only), "pusher"
 * (push), "stager" (promote:staging), "admin" (admin). */
static void setup(void)
{
    static const char *const names[] = {"reader", "team-reader", "pusher", "stager", "admin"};
    static const char *const roles[] = {"[\"read\"]", "[\"read@team\"]", "[\"push\"]",
                                        "[\"promote:staging\"]", "[\"admin\"]"};
    char buf[2048], hex[65];
    size_t used = 0;
    json_t *tokens;

    ck_assert_int_ge(sodium_init(), 0);
    used += (size_t)snprintf(buf + used, sizeof(buf) - used, "[");
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(mlreg_auth_token_hash(hex, names[i]), 0);
        used += (size_t)snprintf(buf + used, sizeof(buf) - used,
                                 "%s{\"name\":\"%s\",\"sha256\":\"%s\",\"roles\":%s}", i ? "," : "",
                                 names[i], hex, roles[i]);
    }
    snprintf(buf + used, sizeof(buf) - used, "]");
    tokens = json_loads(buf, 0, NULL);
    ck_assert_ptr_nonnull(tokens);
    ck_assert_int_eq(mlreg_auth_new(&auth, tokens, stages, 3), 0);
    json_decref(tokens);
    ck_assert_int_eq(mlreg_policy_parse(&policy, NULL, NULL, NULL), 0);
}

static void teardown(void)
{
    mlreg_auth_free(auth);
    mlreg_policy_free(policy);
    auth = NULL;
    policy = NULL;
}

/* The identity of token @p token (its name is the token, see setup()). */
static const mlreg_identity *who(const char *token)
{
    const mlreg_identity *id = NULL;
    char header[128];

    snprintf(header, sizeof(header), "Bearer %s", token);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, auth, header), 0);
    return id;
}

/* Matches @p method @p path; fails the test unless a resource matches. */
static route_match match(const char *method, const char *path)
{
    route_match m;

    ck_assert_msg(mlreg_server__route_match(&m, path, method) == 1, "no route for %s %s", method,
                  path);
    return m;
}

static int span_is(const route_span *s, const char *text)
{
    return s->p != NULL && s->len == strlen(text) && !memcmp(s->p, text, s->len);
}

/* The Allow value of @p path. Static buffer. */
static const char *allow_of(const char *path)
{
    static char buf[64];
    route_match m = match("GET", path);

    mlreg_server__route_allow(buf, sizeof(buf), m.allow);
    return buf;
}

static void check_row(const route_row *row, void *cls)
{
    static const char *const elements[] = {"{name}", "{digest}", "{reference}", "{uuid}",
                                           "{id}",   "{stage}",  "{version*}",  "{*}",
                                           "?",      "{path*}"};
    const char *p = row->pattern;
    (void)cls;

    ck_assert_msg(p[0] == '/', "pattern %s is not a path", p);
    if (row->methods == 0) {
        /* a reserved path: no role, no body, no callbacks */
        ck_assert_msg(row->finish == NULL && row->begin == NULL && row->on_body == NULL,
                      "reserved %s has callbacks", p);
        return;
    }
    ck_assert_msg(row->access != ROUTE_ACCESS_UNSET, "%s has no role rule", p);
    ck_assert_msg(row->body != ROUTE_BODY_UNSET, "%s has no body rule", p);
    ck_assert_msg(row->finish != NULL, "%s has no finish", p);
    ck_assert_msg((row->body == ROUTE_BODY_STREAM) == (row->on_body != NULL),
                  "%s: on_body goes with a streamed body and only with it", p);
    ck_assert_msg(row->body != ROUTE_BODY_STREAM || row->begin != NULL,
                  "%s: a streamed body needs a begin that sets it up", p);
    if (row->methods & (ROUTE_GET | ROUTE_HEAD | ROUTE_DELETE))
        ck_assert_msg(row->body == ROUTE_BODY_NONE, "%s: a GET, HEAD or DELETE takes a body", p);
    if (row->body == ROUTE_BODY_NONE)
        ck_assert_msg(row->access != ROUTE_ACCESS_IN_BODY, "%s: its role is in a body it lacks", p);
    while ((p = strchr(p, '{')) != NULL) {
        size_t n = strcspn(p, "/"), known = 0;
        for (size_t i = 0; i < sizeof(elements) / sizeof(elements[0]); i++)
            if (strlen(elements[i]) == n && !strncmp(p, elements[i], n)) known = 1;
        ck_assert_msg(known, "%s: unknown element %.*s", row->pattern, (int)n, p);
        p += n;
    }
}

START_TEST(test_every_row_has_a_role_rule_and_a_body_rule_and_reads_take_no_body)
{
    mlreg_server__route_foreach(check_row, NULL);
}
END_TEST

START_TEST(test_upload_path_with_a_slashed_name_picks_the_upload_row)
{
    const char *uuid = "0f8a3c2e-5b1d-4e6f-9a7b-1c2d3e4f5a6b";
    char path[256];
    route_match m;

    snprintf(path, sizeof(path), "/v2/org/team/model/blobs/uploads/%s", uuid);
    m = match("PATCH", path);
    ck_assert_ptr_nonnull(m.row);
    ck_assert_str_eq(m.row->pattern, "/v2/{name}/blobs/uploads/{uuid}");
    ck_assert_int_eq(m.row->body, ROUTE_BODY_STREAM);
    ck_assert(span_is(&m.name, "org/team/model"));
    ck_assert(span_is(&m.arg, uuid));
    /* the status GET of the same session is another row of the same resource */
    m = match("GET", path);
    ck_assert_ptr_nonnull(m.row);
    ck_assert_int_eq(m.row->body, ROUTE_BODY_NONE);
    ck_assert_int_eq(m.row->access, ROUTE_ACCESS_PUSH);
}
END_TEST

START_TEST(test_upload_start_is_not_taken_for_a_blob_named_uploads)
{
    route_match m = match("POST", "/v2/a/b/blobs/uploads");

    ck_assert_ptr_nonnull(m.row);
    ck_assert_str_eq(m.row->pattern, "/v2/{name}/blobs/uploads/?");
    ck_assert(span_is(&m.name, "a/b"));
    m = match("POST", "/v2/a/b/blobs/uploads/");
    ck_assert_str_eq(m.row->pattern, "/v2/{name}/blobs/uploads/?");
    /* a GET there is no blob read: the resource answers POST only */
    m = match("GET", "/v2/a/b/blobs/uploads");
    ck_assert_ptr_null(m.row);
    ck_assert_str_eq(allow_of("/v2/a/b/blobs/uploads"), "POST");
}
END_TEST

START_TEST(test_name_is_the_rightmost_split)
{
    route_match m = match("GET", "/v2/a/blobs/b/manifests/latest");

    ck_assert_str_eq(m.row->pattern, "/v2/{name}/manifests/{reference}");
    ck_assert(span_is(&m.name, "a/blobs/b"));
    ck_assert(span_is(&m.arg, "latest"));
    m = match("GET", "/api/v1/models/a/versions/b/versions/1.0/signatures");
    ck_assert_str_eq(m.row->pattern, "/api/v1/models/{name}/versions/{version*}/signatures");
    ck_assert(span_is(&m.name, "a/versions/b"));
    ck_assert(span_is(&m.arg, "1.0"));
    ck_assert_int_eq(m.arg_is_version, 1);
}
END_TEST

START_TEST(test_a_bad_version_still_matches_its_release_for_a_400)
{
    /* a version never holds '/': these match so that they are answered as
     * bad versions, not as a model named ".../versions/..." */
    route_match m = match("GET", "/api/v1/models/m/versions/1/x");

    ck_assert_str_eq(m.row->pattern, "/api/v1/models/{name}/versions/{version*}");
    ck_assert(span_is(&m.arg, "1/x"));
    ck_assert_int_eq(m.arg_is_version, 1);
    m = match("GET", "/api/v1/models/m/versions//signatures");
    ck_assert_str_eq(m.row->pattern, "/api/v1/models/{name}/versions/{version*}");
    ck_assert(span_is(&m.arg, "/signatures"));
}
END_TEST

START_TEST(test_unknown_paths_match_nothing)
{
    static const char *const paths[] = {"/nope",
                                        "",
                                        "*",
                                        "/v2/a",
                                        "/v2//",
                                        "/v2/a/manifests/b/c",
                                        "/v2/blobs/uploads/x",
                                        "/api/v1",
                                        "/api/v1/",
                                        "/api/v1/keys/x",
                                        "/api/v1/keys//revoke",
                                        "/api/v1/models/m/stages/",
                                        "/api/v1/models/m/stages/dev/other",
                                        "/api/v1/models/m/stages/dev/history/x"};
    route_match m;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        ck_assert_msg(mlreg_server__route_match(&m, paths[i], "GET") == 0, "%s matched", paths[i]);
}
END_TEST

START_TEST(test_method_masks_give_the_allow_header)
{
    ck_assert_str_eq(allow_of("/v2/"), "GET, HEAD");
    ck_assert_str_eq(allow_of("/v2"), "GET, HEAD");
    ck_assert_str_eq(allow_of("/v2/m/blobs/sha256:00"), "GET, HEAD, DELETE");
    ck_assert_str_eq(allow_of("/v2/m/manifests/v1"), "GET, HEAD, PUT, DELETE");
    ck_assert_str_eq(allow_of("/v2/m/blobs/uploads/u"), "GET, PATCH, PUT, DELETE");
    ck_assert_str_eq(allow_of("/api/v1/keys"), "GET, HEAD, POST");
    ck_assert_str_eq(allow_of("/api/v1/keys/k/revoke"), "POST");
    ck_assert_str_eq(allow_of("/api/v1/models/m/versions/1/signatures"), "GET, HEAD, POST");
    ck_assert_str_eq(allow_of("/api/v1/models/m/stages/dev/rollback"), "POST");
    ck_assert_str_eq(allow_of("/api/v1/audit/checkpoint"), "GET, HEAD");
}
END_TEST

START_TEST(test_an_unknown_method_finds_the_resource_but_no_row)
{
    route_match m = match("BREW", "/v2/m/manifests/v1");

    ck_assert_ptr_null(m.row);
    ck_assert_uint_ne(m.allow, 0);
    m = match("get", "/api/v1/health");
    ck_assert_ptr_null(m.row);
}
END_TEST

START_TEST(test_optional_trailing_slash)
{
    route_match a = match("GET", "/api/v1/models"), b = match("GET", "/api/v1/models/");

    ck_assert_ptr_eq(a.row, b.row);
    ck_assert_int_eq(a.row->access, ROUTE_ACCESS_READ_ALL);
}
END_TEST

/* The role check of the row @p method @p path for token @p token. */
static int access_of(const char *token, const char *method, const char *path)
{
    route_match m = match(method, path);
    char name[128] = "", stage[32] = "";

    ck_assert_ptr_nonnull(m.row);
    if (m.name.p) snprintf(name, sizeof(name), "%.*s", (int)m.name.len, m.name.p);
    if (m.stage.p) snprintf(stage, sizeof(stage), "%.*s", (int)m.stage.len, m.stage.p);
    return mlreg_server__route_access(m.row, who(token), policy, m.name.p ? name : NULL,
                                      m.stage.p ? stage : NULL);
}

START_TEST(test_a_push_route_refuses_a_read_only_identity)
{
    ck_assert_int_eq(access_of("reader", "PUT", "/v2/m/manifests/v1"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("reader", "POST", "/v2/m/blobs/uploads/"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("reader", "DELETE", "/v2/m/blobs/sha256:00"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("reader", "POST", "/api/v1/models/m/versions/1/signatures"),
                     MLREG_EFORBIDDEN);
    /* an upload's status belongs to its pusher */
    ck_assert_int_eq(access_of("reader", "GET", "/v2/m/blobs/uploads/u"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("reader", "GET", "/v2/m/manifests/v1"), 0);
    ck_assert_int_eq(access_of("pusher", "PUT", "/v2/m/manifests/v1"), 0);
}
END_TEST

START_TEST(test_registry_wide_reads_refuse_a_read_role_limited_to_a_prefix)
{
    ck_assert_int_eq(access_of("team-reader", "GET", "/v2/team/m/manifests/v1"), 0);
    ck_assert_int_eq(access_of("team-reader", "GET", "/v2/other/manifests/v1"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("team-reader", "GET", "/api/v1/audit"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("team-reader", "GET", "/api/v1/models"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("reader", "GET", "/api/v1/audit"), 0);
}
END_TEST

START_TEST(test_stage_admin_and_body_rules)
{
    /* rollback of S needs promote:S */
    ck_assert_int_eq(access_of("stager", "POST", "/api/v1/models/m/stages/staging/rollback"), 0);
    ck_assert_int_eq(access_of("stager", "POST", "/api/v1/models/m/stages/production/rollback"),
                     MLREG_EFORBIDDEN);
    /* key management is admin's, whatever else a token holds */
    ck_assert_int_eq(access_of("pusher", "POST", "/api/v1/keys"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("admin", "POST", "/api/v1/keys/k/revoke"), 0);
    /* so is garbage collection */
    ck_assert_int_eq(access_of("pusher", "POST", "/api/v1/admin/gc"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("stager", "POST", "/api/v1/admin/gc"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("admin", "POST", "/api/v1/admin/gc"), 0);
    ck_assert_str_eq(allow_of("/api/v1/admin/gc"), "POST");
    /* a scrub reads the whole store and quarantines: admin's alone, with a small JSON body */
    ck_assert_int_eq(access_of("admin", "POST", "/api/v1/admin/scrub"), 0);
    ck_assert_int_eq(access_of("pusher", "POST", "/api/v1/admin/scrub"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("reader", "POST", "/api/v1/admin/scrub"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(match("POST", "/api/v1/admin/scrub").row->body, ROUTE_BODY_JSON);
    ck_assert_str_eq(allow_of("/api/v1/admin/scrub"), "POST");
    /* a promotion names its stage in the body: the route checks it later */
    ck_assert_int_eq(access_of("reader", "POST", "/api/v1/models/m/promotions"), 0);
    ck_assert_int_eq(match("POST", "/api/v1/models/m/promotions").row->access,
                     ROUTE_ACCESS_IN_BODY);
    /* image binding: push, or promote to some stage */
    ck_assert_int_eq(access_of("stager", "POST", "/api/v1/models/m/versions/1/images"), 0);
    ck_assert_int_eq(access_of("reader", "POST", "/api/v1/models/m/versions/1/images"),
                     MLREG_EFORBIDDEN);
    /* health needs no token at all, the /v2/ base any valid one */
    ck_assert_int_eq(match("GET", "/api/v1/health").row->access, ROUTE_ACCESS_PUBLIC);
    ck_assert_int_eq(match("GET", "/v2/").row->access, ROUTE_ACCESS_TOKEN);
}
END_TEST

START_TEST(test_probes_are_public_reads_and_nothing_under_them_matches)
{
    route_match m;

    m = match("GET", "/healthz");
    ck_assert_int_eq(m.row->access, ROUTE_ACCESS_PUBLIC);
    ck_assert_int_eq(m.row->body, ROUTE_BODY_NONE);
    ck_assert_uint_eq(m.allow, ROUTE_GET_HEAD);
    m = match("HEAD", "/readyz");
    ck_assert_int_eq(m.row->access, ROUTE_ACCESS_PUBLIC);
    ck_assert_int_eq(m.row->body, ROUTE_BODY_NONE);
    /* a write to a probe is a 405, not some other resource */
    m = match("POST", "/readyz");
    ck_assert_ptr_null(m.row);
    ck_assert_uint_eq(m.allow, ROUTE_GET_HEAD);
    ck_assert_int_eq(mlreg_server__route_match(&m, "/readyz/x", "GET"), 0);
    ck_assert_int_eq(mlreg_server__route_match(&m, "/healthz/", "GET"), 0);
    ck_assert_int_eq(mlreg_server__route_match(&m, "/v2/readyz", "GET"), 0);
}
END_TEST

START_TEST(test_dashboard_files_are_public_reads_of_one_segment)
{
    route_match m;

    m = match("GET", "/");
    ck_assert_int_eq(m.row->access, ROUTE_ACCESS_PUBLIC);
    ck_assert_int_eq(m.row->body, ROUTE_BODY_NONE);
    ck_assert_uint_eq(m.allow, ROUTE_GET_HEAD);
    m = match("HEAD", "/ui/app.js");
    ck_assert_int_eq(m.row->access, ROUTE_ACCESS_PUBLIC);
    ck_assert(span_is(&m.arg, "app.js"));
    /* a write is a 405, not some other resource */
    m = match("POST", "/ui/app.js");
    ck_assert_ptr_null(m.row);
    ck_assert_uint_eq(m.allow, ROUTE_GET_HEAD);
    ck_assert_int_eq(mlreg_server__route_match(&m, "/ui/", "GET"), 0);
    ck_assert_int_eq(mlreg_server__route_match(&m, "/ui", "GET"), 0);
    ck_assert_int_eq(mlreg_server__route_match(&m, "/ui/a/b", "GET"), 0);
    ck_assert_int_eq(mlreg_server__route_match(&m, "//", "GET"), 0);
    ck_assert_int_eq(mlreg_server__route_match(&m, "/index.html", "GET"), 0);
}
END_TEST

START_TEST(test_withdraw_needs_some_promote_role_and_unwithdraw_needs_admin)
{
    const char *w = "/api/v1/models/team/m/versions/1.0/withdraw";
    const char *u = "/api/v1/models/team/m/versions/1.0/unwithdraw";
    route_match m;

    /* both rows, not the release row that would take any path under it */
    m = match("POST", w);
    ck_assert_int_eq(m.row->access, ROUTE_ACCESS_WITHDRAW);
    ck_assert_int_eq(m.row->body, ROUTE_BODY_JSON);
    ck_assert_uint_eq(m.allow, ROUTE_POST);
    ck_assert(span_is(&m.name, "team/m"));
    ck_assert(span_is(&m.arg, "1.0"));
    m = match("POST", u);
    ck_assert_int_eq(m.row->access, ROUTE_ACCESS_ADMIN_MODEL);
    ck_assert_int_eq(m.row->body, ROUTE_BODY_JSON);
    ck_assert_ptr_null(match("GET", w).row);
    /* withdraw: promote to some stage (the exact stages are the library's) */
    ck_assert_int_eq(access_of("stager", "POST", w), 0);
    ck_assert_int_eq(access_of("admin", "POST", w), 0);
    ck_assert_int_eq(access_of("pusher", "POST", w), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("reader", "POST", w), MLREG_EFORBIDDEN);
    /* unwithdraw: admin only */
    ck_assert_int_eq(access_of("admin", "POST", u), 0);
    ck_assert_int_eq(access_of("stager", "POST", u), MLREG_EFORBIDDEN);
    ck_assert_int_eq(access_of("pusher", "POST", u), MLREG_EFORBIDDEN);
}
END_TEST

START_TEST(test_a_row_without_a_role_rule_is_refused_to_everyone)
{
    route_row row = {ROUTE_GET, "/x", ROUTE_ACCESS_UNSET, ROUTE_BODY_NONE, ERR_CTX_ANY, NULL,
                     NULL,      NULL};

    ck_assert_int_eq(mlreg_server__route_access(&row, who("admin"), policy, NULL, NULL),
                     MLREG_EFORBIDDEN);
}
END_TEST

START_TEST(test_metrics_needs_read_on_every_model)
{
    ck_assert_int_eq(access_of("reader", "GET", "/metrics"), 0);
    ck_assert_int_eq(access_of("team-reader", "GET", "/metrics"), MLREG_EFORBIDDEN);
    ck_assert_int_eq(match("GET", "/metrics").row->access, ROUTE_ACCESS_METRICS);
    ck_assert_str_eq(allow_of("/metrics"), "GET, HEAD");
}
END_TEST

START_TEST(test_catalog_needs_read_on_some_model_a_prefix_included)
{
    ck_assert_int_eq(match("GET", "/v2/_catalog").row->access, ROUTE_ACCESS_READ_SOME);
    ck_assert_str_eq(allow_of("/v2/_catalog"), "GET, HEAD");
    ck_assert_int_eq(access_of("reader", "GET", "/v2/_catalog"), 0);
    ck_assert_int_eq(access_of("team-reader", "GET", "/v2/_catalog"), 0);
    ck_assert_int_eq(access_of("admin", "GET", "/v2/_catalog"), 0);
    ck_assert_int_eq(access_of("pusher", "GET", "/v2/_catalog"), MLREG_EFORBIDDEN);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "lacks role read for any model"));
    ck_assert_int_eq(access_of("stager", "GET", "/v2/_catalog"), MLREG_EFORBIDDEN);
    /* the catalog is read-only: a DELETE is a 405 */
    ck_assert_ptr_null(match("DELETE", "/v2/_catalog").row);
}
END_TEST

typedef struct {
    size_t next;
} index_walk;

static void check_index(const route_row *row, void *cls)
{
    index_walk *w = cls;

    ck_assert_uint_eq(mlreg_server__route_index(row), w->next);
    w->next++;
}

START_TEST(test_route_index_counts_rows_in_matching_order)
{
    index_walk w = {0};
    route_row stray = {0};

    mlreg_server__route_foreach(check_index, &w);
    ck_assert_uint_eq(w.next, mlreg_server__route_count());
    ck_assert_uint_gt(w.next, 0);
    ck_assert_uint_eq(mlreg_server__route_index(&stray), mlreg_server__route_count());
}
END_TEST

START_TEST(test_hf_download_splits_at_the_first_resolve_and_captures_the_file_path)
{
    route_match m = match("GET", "/demo/llm/resolve/production/resolve/main/notes.txt");

    ck_assert_str_eq(m.row->pattern, "/{name}/resolve/{reference}/{path*}");
    ck_assert(span_is(&m.name, "demo/llm"));
    ck_assert(span_is(&m.arg, "production"));
    ck_assert(span_is(&m.path, "resolve/main/notes.txt"));
    ck_assert(m.row->access == ROUTE_ACCESS_READ);
    ck_assert_str_eq(allow_of("/demo/llm/resolve/1.0/config.json"), "GET, HEAD");

    m = match("GET", "/m/resolve/sha256:00/a");
    ck_assert(span_is(&m.name, "m"));
    ck_assert(span_is(&m.arg, "sha256:00"));
    ck_assert(span_is(&m.path, "a"));
}
END_TEST

START_TEST(test_hf_tree_and_model_info_rows)
{
    route_match m = match("GET", "/api/models/org/name/tree/main/tree/x");

    ck_assert_str_eq(m.row->pattern, "/api/models/{name}/tree/{reference}/{path*}");
    ck_assert(span_is(&m.name, "org/name"));
    ck_assert(span_is(&m.arg, "main"));
    ck_assert(span_is(&m.path, "tree/x"));
    m = match("GET", "/api/models/org/name/tree/main");
    ck_assert_str_eq(m.row->pattern, "/api/models/{name}/tree/{reference}");
    ck_assert(span_is(&m.name, "org/name"));
    m = match("GET", "/api/models/org/name/revision/1.0");
    ck_assert_str_eq(m.row->pattern, "/api/models/{name}/revision/{reference}");
    ck_assert(span_is(&m.name, "org/name"));
    ck_assert(span_is(&m.arg, "1.0"));
    m = match("GET", "/api/models/org/name");
    ck_assert_str_eq(m.row->pattern, "/api/models/{name}");
    ck_assert(span_is(&m.name, "org/name"));
    /* reads only: an upload through the Hub API finds no row (405) */
    m = match("POST", "/api/models/org/name/commit/main");
    ck_assert_ptr_null(m.row);
}
END_TEST

START_TEST(test_hf_download_never_takes_the_other_routes_paths)
{
    static const char *const paths[] = {"/v2/x/resolve/1/f",
                                        "/api/v1/x/resolve/1/f",
                                        "/ui/x/resolve/1/f",
                                        "/metrics/resolve/1/f",
                                        "/healthz/x/resolve/1/f",
                                        "/datasets/a/b/resolve/main/f",
                                        "/spaces/a/b/resolve/main/f",
                                        "/api/x/resolve/1/f",
                                        "/m/resolve/1",
                                        "/m/resolve"};
    route_match m;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        ck_assert_msg(mlreg_server__route_match(&m, paths[i], "GET") == 0, "%s matched", paths[i]);
    /* and the others still match theirs */
    m = match("GET", "/v2/m/blobs/sha256:00");
    ck_assert_str_eq(m.row->pattern, "/v2/{name}/blobs/{digest}");
    m = match("GET", "/api/v1/models/m/versions/1/resolve/x");
    ck_assert_str_eq(m.row->pattern, "/api/v1/models/{name}/versions/{version*}");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("server_routes");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_every_row_has_a_role_rule_and_a_body_rule_and_reads_take_no_body);
    tcase_add_test(tc, test_upload_path_with_a_slashed_name_picks_the_upload_row);
    tcase_add_test(tc, test_upload_start_is_not_taken_for_a_blob_named_uploads);
    tcase_add_test(tc, test_name_is_the_rightmost_split);
    tcase_add_test(tc, test_a_bad_version_still_matches_its_release_for_a_400);
    tcase_add_test(tc, test_unknown_paths_match_nothing);
    tcase_add_test(tc, test_method_masks_give_the_allow_header);
    tcase_add_test(tc, test_an_unknown_method_finds_the_resource_but_no_row);
    tcase_add_test(tc, test_optional_trailing_slash);
    tcase_add_test(tc, test_a_push_route_refuses_a_read_only_identity);
    tcase_add_test(tc, test_registry_wide_reads_refuse_a_read_role_limited_to_a_prefix);
    tcase_add_test(tc, test_stage_admin_and_body_rules);
    tcase_add_test(tc, test_withdraw_needs_some_promote_role_and_unwithdraw_needs_admin);
    tcase_add_test(tc, test_probes_are_public_reads_and_nothing_under_them_matches);
    tcase_add_test(tc, test_dashboard_files_are_public_reads_of_one_segment);
    tcase_add_test(tc, test_a_row_without_a_role_rule_is_refused_to_everyone);
    tcase_add_test(tc, test_metrics_needs_read_on_every_model);
    tcase_add_test(tc, test_catalog_needs_read_on_some_model_a_prefix_included);
    tcase_add_test(tc, test_route_index_counts_rows_in_matching_order);
    tcase_add_test(tc, test_hf_download_splits_at_the_first_resolve_and_captures_the_file_path);
    tcase_add_test(tc, test_hf_tree_and_model_info_rows);
    tcase_add_test(tc, test_hf_download_never_takes_the_other_routes_paths);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
