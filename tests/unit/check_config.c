/* check_config.c: the server config file (registry/config.c): defaults,
 * accepted keys (also stages, gates, models and tokens), keys refused by name, trusted_keys (key
 * files resolved against the config's directory, strict entries, duplicates), listen parsing, the
 * loopback rule. */
#include "mlreg/common.h"
#include "mlreg/config.h"
#include "mlreg/digest.h"
#include "mlreg/registry.h"
#include "mlreg/server.h"
#include "mlreg/sign.h"

#include "helpers.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[64];

static void write_config(const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    int fd;
    snprintf(path, sizeof(path), "/tmp/check_config.XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void teardown(void)
{
    unlink(path);
}

/* Loads @p text expecting failure @p code with @p needle in the message. */
static void assert_refused(const char *text, int code, const char *needle)
{
    mlreg_config *cfg = NULL;
    int error;

    write_config(text);
    error = mlreg_config_load(&cfg, path);
    ck_assert_int_eq(error, code);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(mlreg_error_last(), needle) != NULL, "message '%s' lacks '%s'",
                  mlreg_error_last(), needle);
}

START_TEST(test_config_without_file_gives_the_defaults)
{
    mlreg_config *cfg = NULL;

    ck_assert_int_eq(mlreg_config_load(&cfg, NULL), 0);
    ck_assert_str_eq(cfg->listen, "127.0.0.1:5080");
    ck_assert_str_eq(cfg->data_dir, "./mlreg-data");
    ck_assert_str_eq(cfg->storage_backend, "fs");
    ck_assert_uint_eq(cfg->max_manifest_bytes, MLREG_DEFAULT_MAX_MANIFEST_BYTES);
    ck_assert_uint_eq(cfg->map_size, 0);
    ck_assert_uint_eq(cfg->threads, MLREG_SERVER_DEFAULT_THREADS);
    /* 0: the server's defaults (mlreg_server_opts) */
    ck_assert_uint_eq(cfg->max_connections, 0);
    ck_assert_uint_eq(cfg->header_timeout, 0);
    ck_assert_uint_eq(cfg->uploads_per_identity, 0);
    ck_assert_uint_eq(cfg->max_upload_bytes, 0);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_config_reads_every_accepted_key)
{
    mlreg_config *cfg = NULL;

    write_config("{\"listen\":\"[::1]:0\",\"data_dir\":\"/srv/d\",\"storage\":{\"backend\":\"fs\"},"
                 "\"limits\":{\"max_manifest_bytes\":2048,\"map_size\":10485760},"
                 "\"server\":{\"threads\":8}}");
    ck_assert_int_eq(mlreg_config_load(&cfg, path), 0);
    ck_assert_str_eq(cfg->listen, "[::1]:0");
    ck_assert_str_eq(cfg->data_dir, "/srv/d");
    ck_assert_uint_eq(cfg->max_manifest_bytes, 2048);
    ck_assert_uint_eq(cfg->map_size, 10485760);
    ck_assert_uint_eq(cfg->threads, 8);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_config_reads_the_connection_and_upload_limits)
{
    mlreg_config *cfg = NULL;

    write_config("{\"limits\":{\"max_connections\":500,\"max_connections_per_address\":20,"
                 "\"header_timeout_seconds\":5,\"idle_timeout_seconds\":15,"
                 "\"body_timeout_seconds\":120,\"upload_sessions_per_identity\":8,"
                 "\"upload_sessions_per_repository\":12,\"upload_idle_seconds\":600,"
                 "\"max_upload_bytes\":1099511627776}}");
    ck_assert_int_eq(mlreg_config_load(&cfg, path), 0);
    ck_assert_uint_eq(cfg->max_connections, 500);
    ck_assert_uint_eq(cfg->max_connections_per_address, 20);
    ck_assert_uint_eq(cfg->header_timeout, 5);
    ck_assert_uint_eq(cfg->idle_timeout, 15);
    ck_assert_uint_eq(cfg->body_timeout, 120);
    ck_assert_uint_eq(cfg->uploads_per_identity, 8);
    ck_assert_uint_eq(cfg->uploads_per_repository, 12);
    ck_assert_uint_eq(cfg->upload_idle_timeout, 600);
    ck_assert_uint_eq(cfg->max_upload_bytes, 1099511627776ull);
    mlreg_config_free(cfg);
}
END_TEST

/* scrub.interval's value @p text (JSON) in seconds */
static uint64_t scrub_interval_of(const char *text)
{
    char buf[256];
    mlreg_config *cfg = NULL;
    uint64_t n;

    snprintf(buf, sizeof(buf), "{\"scrub\":{\"interval\":%s}}", text);
    write_config(buf);
    ck_assert_msg(mlreg_config_load(&cfg, path) == 0, "%s: %s", text, mlreg_error_last());
    n = cfg->scrub_interval;
    mlreg_config_free(cfg);
    return n;
}

START_TEST(test_config_reads_the_scheduled_scrub)
{
    mlreg_config *cfg = NULL;

    ck_assert_int_eq(mlreg_config_load(&cfg, NULL), 0);
    ck_assert_uint_eq(cfg->scrub_interval, 0); /* off unless configured */
    ck_assert_uint_eq(cfg->scrub_rate, 0);
    mlreg_config_free(cfg);
    write_config("{\"scrub\":{\"interval\":\"6h\",\"rate_bytes_per_second\":50000000}}");
    ck_assert_int_eq(mlreg_config_load(&cfg, path), 0);
    ck_assert_uint_eq(cfg->scrub_interval, 6 * 3600);
    ck_assert_uint_eq(cfg->scrub_rate, 50000000);
    mlreg_config_free(cfg);
    ck_assert_uint_eq(scrub_interval_of("\"90s\""), 90);
    ck_assert_uint_eq(scrub_interval_of("\"30m\""), 1800);
    ck_assert_uint_eq(scrub_interval_of("\"7d\""), 7 * 86400);
    ck_assert_uint_eq(scrub_interval_of("\"45\""), 45);
    ck_assert_uint_eq(scrub_interval_of("3600"), 3600);
    ck_assert_uint_eq(scrub_interval_of("0"), 0);
    ck_assert_uint_eq(scrub_interval_of("\"0s\""), 0);

    assert_refused("{\"scrub\":{\"interval\":\"6 h\"}}", MLREG_EINVALID,
                   "'scrub.interval' must be a duration");
    assert_refused("{\"scrub\":{\"interval\":\"6hours\"}}", MLREG_EINVALID, "'scrub.interval'");
    assert_refused("{\"scrub\":{\"interval\":\"h\"}}", MLREG_EINVALID, "'scrub.interval'");
    assert_refused("{\"scrub\":{\"interval\":\"\"}}", MLREG_EINVALID, "'scrub.interval'");
    assert_refused("{\"scrub\":{\"interval\":-1}}", MLREG_EINVALID, "'scrub.interval'");
    assert_refused("{\"scrub\":{\"interval\":1.5}}", MLREG_EINVALID, "'scrub.interval'");
    assert_refused("{\"scrub\":{\"interval\":\"367d\"}}", MLREG_EINVALID, "at most 366 days");
    assert_refused("{\"scrub\":{\"interval\":\"99999999999999999999999s\"}}", MLREG_EINVALID,
                   "at most 366 days");
    assert_refused("{\"scrub\":{\"rate_bytes_per_second\":-5}}", MLREG_EINVALID,
                   "'scrub.rate_bytes_per_second'");
    assert_refused("{\"scrub\":{\"rate\":5}}", MLREG_EINVALID, "unknown config key 'scrub.rate'");
    assert_refused("{\"scrub\":\"daily\"}", MLREG_EINVALID, "'scrub' must be an object");
}
END_TEST

START_TEST(test_config_reads_the_collection_durations)
{
    mlreg_config *cfg = NULL;

    write_config("{}");
    ck_assert_int_eq(mlreg_config_load(&cfg, path), 0);
    ck_assert_uint_eq(cfg->gc.grace_seconds, 86400);
    ck_assert_uint_eq(cfg->gc.interval_seconds, 0);
    ck_assert_uint_eq(cfg->gc.stale_upload_seconds, 86400);
    mlreg_config_free(cfg);
    write_config("{\"gc\":{\"grace\":\"2h\",\"interval\":\"6h\",\"stale_upload_age\":90}}");
    ck_assert_msg(mlreg_config_load(&cfg, path) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(cfg->gc.grace_seconds, 7200);
    ck_assert_uint_eq(cfg->gc.interval_seconds, 6 * 3600);
    ck_assert_uint_eq(cfg->gc.stale_upload_seconds, 90);
    mlreg_config_free(cfg);
    write_config("{\"gc\":{\"grace\":0}}");
    ck_assert_int_eq(mlreg_config_load(&cfg, path), 0);
    ck_assert_uint_eq(cfg->gc.grace_seconds, 0);
    mlreg_config_free(cfg);

    assert_refused("{\"gc\":{\"grace_seconds\":60}}", MLREG_EINVALID,
                   "'gc.grace_seconds' is now 'gc.grace', a duration");
    assert_refused("{\"gc\":{\"stale_upload_seconds\":60}}", MLREG_EINVALID,
                   "is now 'gc.stale_upload_age'");
    assert_refused("{\"gc\":{\"stale_upload_age\":\"0s\"}}", MLREG_EINVALID,
                   "'gc.stale_upload_age' must be at least 1 s");
    assert_refused("{\"gc\":{\"grace\":\"1 day\"}}", MLREG_EINVALID,
                   "'gc.grace' must be a duration");
    assert_refused("{\"gc\":{\"interval\":-1}}", MLREG_EINVALID, "'gc.interval'");
    assert_refused("{\"gc\":{\"grace\":\"400d\"}}", MLREG_EINVALID, "at most 366 days");
    assert_refused("{\"gc\":{\"period\":1}}", MLREG_EINVALID, "unknown config key 'gc.period'");
    assert_refused("{\"gc\":[]}", MLREG_EINVALID, "'gc' must be an object");
}
END_TEST

START_TEST(test_config_refuses_limits_out_of_range_naming_them)
{
    assert_refused("{\"limits\":{\"max_connections\":15}}", MLREG_EINVALID,
                   "'limits.max_connections' must be between 16 and 1000000 (got 15)");
    assert_refused("{\"limits\":{\"max_connections_per_address\":0}}", MLREG_EINVALID,
                   "'limits.max_connections_per_address'");
    assert_refused("{\"limits\":{\"header_timeout_seconds\":0}}", MLREG_EINVALID,
                   "'limits.header_timeout_seconds'");
    assert_refused("{\"limits\":{\"idle_timeout_seconds\":3601}}", MLREG_EINVALID,
                   "'limits.idle_timeout_seconds'");
    assert_refused("{\"limits\":{\"body_timeout_seconds\":\"60\"}}", MLREG_EINVALID,
                   "'limits.body_timeout_seconds' must be an integer");
    assert_refused("{\"limits\":{\"upload_sessions_per_identity\":4097}}", MLREG_EINVALID,
                   "'limits.upload_sessions_per_identity'");
    assert_refused("{\"limits\":{\"upload_sessions_per_repository\":-1}}", MLREG_EINVALID,
                   "'limits.upload_sessions_per_repository'");
    assert_refused("{\"limits\":{\"upload_idle_seconds\":0}}", MLREG_EINVALID,
                   "'limits.upload_idle_seconds'");
    assert_refused("{\"limits\":{\"max_upload_bytes\":0}}", MLREG_EINVALID,
                   "'limits.max_upload_bytes'");
    assert_refused("{\"limits\":{\"max_upload_bytes\":2251799813685248}}", MLREG_EINVALID,
                   "'limits.max_upload_bytes'");
}
END_TEST

START_TEST(test_config_tls_keys_resolve_against_the_config_directory)
{
    mlreg_config *cfg = NULL;
    char want[128];
    const char *slash = strrchr(path, '/');
    int dlen = (int)(slash - path);

    write_config("{\"tls\":{\"cert_file\":\"srv.crt\",\"key_file\":\"/etc/k/srv.key\","
                 "\"client_ca_file\":\"ca/clients.pem\"}}");
    ck_assert_msg(mlreg_config_load(&cfg, path) == 0, "%s", mlreg_error_last());
    snprintf(want, sizeof(want), "%.*s/srv.crt", dlen, path);
    ck_assert_str_eq(cfg->tls.cert_file, want);
    ck_assert_str_eq(cfg->tls.key_file, "/etc/k/srv.key");
    snprintf(want, sizeof(want), "%.*s/ca/clients.pem", dlen, path);
    ck_assert_str_eq(cfg->tls.client_ca_file, want);
    mlreg_config_free(cfg);

    cfg = NULL;
    ck_assert_int_eq(mlreg_config_load(&cfg, NULL), 0);
    ck_assert_ptr_null(cfg->tls.cert_file);
    ck_assert_ptr_null(cfg->tls.key_file);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_config_cluster_ca_file_resolves_against_the_config_directory)
{
    mlreg_config *cfg = NULL;
    char want[128];
    const char *slash = strrchr(path, '/');
    int dlen = (int)(slash - path);

    write_config("{\"cluster\":{\"ca_file\":\"pki/nodes.pem\"}}");
    ck_assert_msg(mlreg_config_load(&cfg, path) == 0, "%s", mlreg_error_last());
    snprintf(want, sizeof(want), "%.*s/pki/nodes.pem", dlen, path);
    ck_assert_str_eq(cfg->cluster.ca_file, want);
    mlreg_config_free(cfg);
    assert_refused("{\"cluster\":{\"ca_file\":7}}", MLREG_EINVALID,
                   "'cluster.ca_file' must be a string");
}
END_TEST

START_TEST(test_config_refuses_half_a_tls_setup)
{
    assert_refused("{\"tls\":{\"cert_file\":\"a.crt\"}}", MLREG_EINVALID,
                   "config key 'tls.key_file' is missing");
    assert_refused("{\"tls\":{\"key_file\":\"a.key\"}}", MLREG_EINVALID,
                   "config key 'tls.cert_file' is missing");
    assert_refused("{\"tls\":{\"client_ca_file\":\"ca.pem\"}}", MLREG_EINVALID,
                   "'tls.client_ca_file' needs tls.cert_file");
    assert_refused("{\"tls\":{\"cert\":\"a.crt\"}}", MLREG_EINVALID,
                   "unknown config key 'tls.cert'");
    assert_refused("{\"tls\":{\"cert_file\":\"\",\"key_file\":\"k\"}}", MLREG_EINVALID,
                   "'tls.cert_file' must be a non-empty string");
    assert_refused("{\"tls\":{\"cert_file\":5,\"key_file\":\"k\"}}", MLREG_EINVALID,
                   "'tls.cert_file' must be a string");
    assert_refused("{\"tls\":[]}", MLREG_EINVALID, "config key 'tls' must be an object");
}
END_TEST

START_TEST(test_config_loads_stages_gates_models_and_tokens)
{
    mlreg_config *cfg = NULL;
    const mlreg_rule *rules;
    size_t n;
    const mlreg_identity *id = NULL;

    write_config("{\"tokens\":[{\"name\":\"ci\",\"sha256\":"
                 "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\","
                 "\"roles\":[\"push\",\"promote:qa\"]}],"
                 "\"gates\":{\"qa\":[{\"metric\":\"f1\",\"min\":0.5}]},"
                 "\"models\":{\"rag\":{\"gates\":{\"prod\":[{\"require\":\"previous_stage\"}]}}},"
                 "\"stages\":[\"qa\",\"prod\"]}");
    ck_assert_msg(mlreg_config_load(&cfg, path) == 0, "%s", mlreg_error_last());
    ck_assert_int_eq(mlreg_policy_stage_count(cfg->policy), 2);
    ck_assert_int_eq(mlreg_policy_rules(&rules, &n, cfg->policy, "x", "qa"), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(mlreg_policy_rules(&rules, &n, cfg->policy, "rag", "prod"), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(mlreg_auth_token_count(cfg->auth), 1);
    ck_assert_int_eq(mlreg_auth_authenticate(&id, cfg->auth, "Bearer abc"), 0);
    ck_assert_str_eq(mlreg_identity_name(id), "ci");
    ck_assert_int_eq(mlreg_auth_check(id, MLREG_ROLE_PROMOTE, "qa", "x"), 0);
    mlreg_config_free(cfg);
    /* without a file: the default stages and no tokens */
    ck_assert_int_eq(mlreg_config_load(&cfg, NULL), 0);
    ck_assert_int_eq(mlreg_policy_stage_count(cfg->policy), 3);
    ck_assert_int_eq(mlreg_auth_token_count(cfg->auth), 0);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_config_refuses_bad_gates_and_tokens_naming_the_key)
{
    assert_refused("{\"gates\":{\"production\":[{\"metric\":\"a\",\"mni\":1}]}}", MLREG_EINVALID,
                   "config key 'gates.production[0].mni': unknown rule key");
    assert_refused("{\"stages\":[\"a\"],\"gates\":{\"staging\":[]}}", MLREG_EINVALID,
                   "config key 'gates.staging'");
    assert_refused("{\"tokens\":[{\"name\":\"a\",\"sha256\":\"x\",\"roles\":[\"push\"]}]}",
                   MLREG_EINVALID, "config key 'tokens[0].sha256'");
    assert_refused("{\"models\":[]}", MLREG_EINVALID, "config key 'models' must be an object");
}
END_TEST

START_TEST(test_config_loads_the_s3_keys_and_names_bad_ones)
{
    mlreg_config *cfg = NULL;

    assert_refused("{\"storage\":{\"backend\":\"s3\"}}", MLREG_EINVALID,
                   "'storage.endpoint' is required for the s3 backend");
    assert_refused("{\"storage\":{\"backend\":\"s3\",\"endpoint\":\"http://h\"}}", MLREG_EINVALID,
                   "'storage.bucket' is required");
    assert_refused("{\"storage\":{\"backend\":\"s3\",\"endpoint\":\"ftp://h\",\"bucket\":\"b\"}}",
                   MLREG_EINVALID, "'storage.endpoint' must start with http");
    assert_refused("{\"storage\":{\"backend\":\"s3\",\"endpoint\":\"http://h\",\"bucket\":\"b\","
                   "\"secret_key\":\"s\"}}",
                   MLREG_EINVALID, "'storage.access_key' and 'storage.secret_key' go together");
    assert_refused("{\"storage\":{\"backend\":\"s3\",\"endpoint\":\"http://h\",\"bucket\":\"b\","
                   "\"parts_in_flight\":0}}",
                   MLREG_EINVALID, "'storage.parts_in_flight'");
    assert_refused("{\"storage\":{\"backend\":\"s3\",\"endpoint\":\"http://h\",\"bucket\":\"b\","
                   "\"presign_seconds\":604801}}",
                   MLREG_EINVALID, "'storage.presign_seconds'");
    assert_refused("{\"storage\":{\"backend\":\"s3\",\"endpoint\":\"http://h\",\"bucket\":\"b\","
                   "\"prefix\":\"no-slash\"}}",
                   MLREG_EINVALID, "'storage.prefix'");
    assert_refused("{\"storage\":{\"backend\":\"s3\",\"endpoint\":\"http://h\",\"bucket\":\"b\","
                   "\"bukket\":\"b\"}}",
                   MLREG_EINVALID, "unknown config key 'storage.bukket' for the s3 backend");

    write_config("{\"storage\":{\"backend\":\"s3\",\"endpoint\":\"https://s3.example\","
                 "\"bucket\":\"models\",\"region\":\"eu-west-1\",\"prefix\":\"prod/\","
                 "\"path_style\":false,\"redirect_downloads\":true,\"access_key\":\"AK\","
                 "\"secret_key\":\"SK\",\"ca_file\":\"/etc/ca.pem\",\"parts_in_flight\":8,"
                 "\"max_attempts\":3,\"retry_base_ms\":50,\"retry_max_ms\":2000,"
                 "\"retry_total_ms\":30000,\"presign_seconds\":120}}");
    ck_assert_int_eq(mlreg_config_load(&cfg, path), 0);
    ck_assert_str_eq(cfg->storage_backend, "s3");
    ck_assert_str_eq(cfg->s3.endpoint, "https://s3.example");
    ck_assert_str_eq(cfg->s3.bucket, "models");
    ck_assert_str_eq(cfg->s3.region, "eu-west-1");
    ck_assert_str_eq(cfg->s3.prefix, "prod/");
    ck_assert_int_eq(cfg->s3.path_style, 0);
    ck_assert_int_eq(cfg->s3.redirect_downloads, 1);
    ck_assert_str_eq(cfg->s3.access_key, "AK");
    ck_assert_str_eq(cfg->s3.secret_key, "SK");
    ck_assert_str_eq(cfg->s3.ca_file, "/etc/ca.pem");
    ck_assert_uint_eq(cfg->s3.parts_in_flight, 8);
    ck_assert_uint_eq(cfg->s3.max_attempts, 3);
    ck_assert_uint_eq(cfg->s3.retry_base_ms, 50);
    ck_assert_uint_eq(cfg->s3.retry_max_ms, 2000);
    ck_assert_uint_eq(cfg->s3.retry_total_ms, 30000);
    ck_assert_uint_eq(cfg->s3.presign_seconds, 120);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_config_names_unknown_keys)
{
    assert_refused("{\"lsiten\":\"127.0.0.1:1\"}", MLREG_EINVALID, "'lsiten'");
    assert_refused("{\"limits\":{\"max_blob\":1}}", MLREG_EINVALID, "'limits.max_blob'");
    assert_refused("{\"server\":{\"workers\":1}}", MLREG_EINVALID, "'server.workers'");
    assert_refused("{\"storage\":{\"backend\":\"fs\",\"bucket\":\"x\"}}", MLREG_EINVALID,
                   "'storage.bucket'");
}
END_TEST

START_TEST(test_config_names_bad_values)
{
    assert_refused("{\"listen\":5080}", MLREG_EINVALID, "'listen'");
    assert_refused("{\"listen\":\"localhost\"}", MLREG_EINVALID, "'listen'");
    assert_refused("{\"data_dir\":\"\"}", MLREG_EINVALID, "'data_dir'");
    assert_refused("{\"limits\":{\"max_manifest_bytes\":1.5}}", MLREG_EINVALID,
                   "'limits.max_manifest_bytes'");
    assert_refused("{\"limits\":{\"max_manifest_bytes\":1}}", MLREG_EINVALID,
                   "'limits.max_manifest_bytes'");
    assert_refused("{\"limits\":{\"map_size\":-5}}", MLREG_EINVALID, "'limits.map_size'");
    assert_refused("{\"server\":{\"threads\":0}}", MLREG_EINVALID, "'server.threads'");
    assert_refused("{\"server\":{\"threads\":100000}}", MLREG_EINVALID, "'server.threads'");
    assert_refused("{\"storage\":{\"backend\":\"tape\"}}", MLREG_EINVALID, "'storage.backend'");
    assert_refused("{\"limits\":[]}", MLREG_EINVALID, "'limits'");
}
END_TEST

START_TEST(test_config_refuses_malformed_json_with_its_position)
{
    assert_refused("{\n\"listen\": ,\n}", MLREG_EINVALID, ":2:");
    assert_refused("[1]", MLREG_EINVALID, "JSON object");
    assert_refused("{\"listen\":\"127.0.0.1:1\",\"listen\":\"127.0.0.1:2\"}", MLREG_EINVALID,
                   "duplicate");
}
END_TEST

START_TEST(test_config_missing_file_is_an_io_error)
{
    mlreg_config *cfg = NULL;
    ck_assert_int_eq(mlreg_config_load(&cfg, "/nonexistent/mlreg.json"), MLREG_EIO);
    ck_assert_ptr_null(cfg);
}
END_TEST

/* ---- what a reload compares ----------------------------------------------- */

static mlreg_config *load_text(const char *text)
{
    mlreg_config *cfg = NULL;

    write_config(text);
    ck_assert_msg(mlreg_config_load(&cfg, path) == 0, "%s", mlreg_error_last());
    return cfg;
}

static char *changed_between(const char *a, const char *b)
{
    mlreg_config *ca = load_text(a), *cb = load_text(b);
    json_t *keys = mlreg_config_changed_keys(ca, cb);
    char *text;

    ck_assert_ptr_nonnull(keys);
    text = json_dumps(keys, JSON_COMPACT);
    json_decref(keys);
    mlreg_config_free(ca);
    mlreg_config_free(cb);
    return text;
}

START_TEST(test_config_records_the_sha256_of_the_file_bytes)
{
    const char *text = "{ \"listen\": \"127.0.0.1:5080\" }\n";
    mlreg_config *cfg = load_text(text);
    mlreg_digest d;
    char hex[MLREG_DIGEST_HEXLEN + 1];

    ck_assert_int_eq(mlreg_digest_buffer(&d, text, strlen(text)), 0);
    mlreg_digest_hex(hex, &d);
    ck_assert_str_eq(cfg->sha256, hex);
    mlreg_config_free(cfg);
    ck_assert_int_eq(mlreg_config_load(&cfg, NULL), 0);
    ck_assert_str_eq(cfg->sha256, "");
    ck_assert_uint_eq(json_object_size(cfg->fingerprints), 0);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_config_changed_keys_name_each_changed_key_once_sorted)
{
    char *c;

    /* layout and key order are not changes */
    c = changed_between(
        "{\"limits\":{\"max_upload_bytes\":5,\"idle_timeout_seconds\":9}}",
        "{ \"limits\": { \"idle_timeout_seconds\": 9,\n \"max_upload_bytes\": 5 } }");
    ck_assert_str_eq(c, "[]");
    free(c);
    /* a changed member, an added and a removed top-level key */
    c = changed_between("{\"listen\":\"127.0.0.1:1\",\"limits\":{\"max_upload_bytes\":5}}",
                        "{\"limits\":{\"max_upload_bytes\":6},\"data_dir\":\"/x\","
                        "\"gates\":{\"staging\":[{\"metric\":\"a\",\"min\":1}]}}");
    ck_assert_str_eq(c, "[\"data_dir\",\"gates.staging\",\"limits.max_upload_bytes\",\"listen\"]");
    free(c);
    /* an array value is one key */
    c = changed_between("{\"stages\":[\"dev\",\"prod\"]}",
                        "{\"stages\":[\"dev\",\"qa\",\"prod\"]}");
    ck_assert_str_eq(c, "[\"stages\"]");
    free(c);
}
END_TEST

/* ---- trusted_keys ------------------------------------------------------ */

/* The minisign test vector's public key (tests/vectors/minisign/minisign.pub). */
#define VECTOR_PUB                                                                                 \
    "untrusted comment: minisign public key 135F655E9F290E69\n"                                    \
    "RWRpDimfXmVfE2asCOfEJVR+ZzWfAK4k5v5zMcNEFIOGEO8F30hQ9qFT\n"
#define VECTOR_KEYID "135F655E9F290E69"

static char kdir[64];
static char kpath[128];

/* A temp dir holding keys/a.pub (the vector key), keys/b.pub (a fresh key),
 * keys/bad.pub (garbage) and the config at kdir/cfg.json. */
static void key_setup(void)
{
    char p[160];
    FILE *f;
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pk;

    th_tmpdir(kdir, sizeof(kdir), "config-keys");
    snprintf(p, sizeof(p), "%s/keys", kdir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/keys/a.pub", kdir);
    ck_assert_ptr_nonnull(f = fopen(p, "w"));
    fputs(VECTOR_PUB, f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/keys/bad.pub", kdir);
    ck_assert_ptr_nonnull(f = fopen(p, "w"));
    fputs("untrusted comment: x\nnot base64 at all\n", f);
    fclose(f);
    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(&pk, sk);
    mlreg_seckey_free(sk);
    snprintf(p, sizeof(p), "%s/keys/b.pub", kdir);
    ck_assert_int_eq(mlreg_pubkey_save(p, &pk, NULL), 0);
    /* b's key bytes under another key id */
    pk.id.raw[0] ^= 0x5a;
    snprintf(p, sizeof(p), "%s/keys/b-relabeled.pub", kdir);
    ck_assert_int_eq(mlreg_pubkey_save(p, &pk, NULL), 0);
    snprintf(kpath, sizeof(kpath), "%s/cfg.json", kdir);
}

static void key_teardown(void)
{
    th_rm_rf(kdir);
}

/* Loads @p text from kdir/cfg.json: returns the load result, *out the config. */
static int load_key_config(mlreg_config **out, const char *text)
{
    FILE *f = fopen(kpath, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return mlreg_config_load(out, kpath);
}

static void assert_key_config_refused(const char *text, const char *needle)
{
    mlreg_config *cfg = NULL;
    ck_assert_int_eq(load_key_config(&cfg, text), MLREG_EINVALID);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(mlreg_error_last(), needle) != NULL, "message '%s' lacks '%s'",
                  mlreg_error_last(), needle);
}

START_TEST(test_config_loads_trusted_keys_relative_to_the_config_directory)
{
    mlreg_config *cfg = NULL;
    char want[160], id[MLREG_KEYID_HEXLEN + 1];

    ck_assert_int_eq(
        load_key_config(&cfg,
                        "{\"trusted_keys\":[{\"name\":\"release-bot\",\"file\":\"keys/a.pub\","
                        "\"role\":\"release\"},{\"name\":\"Jo Approver\",\"file\":\"keys/b.pub\","
                        "\"role\":\"approver\"}]}"),
        0);
    ck_assert_uint_eq(cfg->n_trusted_keys, 2);
    ck_assert_str_eq(cfg->trusted_keys[0].name, "release-bot");
    ck_assert_str_eq(cfg->trusted_keys[0].role, "release");
    snprintf(want, sizeof(want), "%s/keys/a.pub", kdir);
    ck_assert_str_eq(cfg->trusted_keys[0].file, want);
    mlreg_keyid_format(id, &cfg->trusted_keys[0].pubkey.id);
    ck_assert_str_eq(id, VECTOR_KEYID);
    ck_assert_str_eq(cfg->trusted_keys[1].name, "Jo Approver");
    ck_assert_str_eq(cfg->trusted_keys[1].role, "approver");
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_config_takes_an_absolute_key_file_as_is)
{
    mlreg_config *cfg = NULL;
    char text[512], file[160];

    snprintf(file, sizeof(file), "%s/keys/b.pub", kdir);
    snprintf(text, sizeof(text),
             "{\"trusted_keys\":[{\"name\":\"k\",\"file\":\"%s\",\"role\":\"release\"}]}", file);
    ck_assert_int_eq(load_key_config(&cfg, text), 0);
    ck_assert_str_eq(cfg->trusted_keys[0].file, file);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_config_refuses_bad_trusted_key_entries_naming_them)
{
    assert_key_config_refused("{\"trusted_keys\":{}}", "'trusted_keys' must be an array");
    assert_key_config_refused("{\"trusted_keys\":[\"keys/a.pub\"]}", "'trusted_keys[0]'");
    assert_key_config_refused("{\"trusted_keys\":[{\"name\":\"k\",\"file\":\"keys/a.pub\","
                              "\"role\":\"release\",\"expires\":1}]}",
                              "unknown config key 'trusted_keys[0].expires'");
    assert_key_config_refused("{\"trusted_keys\":[{\"file\":\"keys/a.pub\",\"role\":\"release\"}]}",
                              "lacks \"name\"");
    assert_key_config_refused("{\"trusted_keys\":[{\"name\":\"k\",\"role\":\"release\"}]}",
                              "(key 'k') lacks \"file\"");
    assert_key_config_refused("{\"trusted_keys\":[{\"name\":\"k\",\"file\":\"keys/a.pub\"}]}",
                              "(key 'k') lacks \"role\"");
    assert_key_config_refused("{\"trusted_keys\":[{\"name\":\"\",\"file\":\"keys/a.pub\","
                              "\"role\":\"release\"}]}",
                              "'trusted_keys[0].name'");
    assert_key_config_refused("{\"trusted_keys\":[{\"name\":\"k\\n\",\"file\":\"keys/a.pub\","
                              "\"role\":\"release\"}]}",
                              "'trusted_keys[0].name'");
    assert_key_config_refused("{\"trusted_keys\":[{\"name\":\"k\",\"file\":\"keys/a.pub\","
                              "\"role\":\"Release\"}]}",
                              "'trusted_keys[0].role' (key 'k')");
    assert_key_config_refused(
        "{\"trusted_keys\":[{\"name\":\"k\",\"file\":5,\"role\":\"release\"}]}",
        "'trusted_keys[0].file' (key 'k')");
}
END_TEST

START_TEST(test_config_refuses_missing_or_malformed_key_files_naming_key_and_file)
{
    char needle[200];

    snprintf(needle, sizeof(needle), "trusted key 'k': cannot load public key file %s/keys/no.pub",
             kdir);
    assert_key_config_refused("{\"trusted_keys\":[{\"name\":\"k\",\"file\":\"keys/no.pub\","
                              "\"role\":\"release\"}]}",
                              needle);
    snprintf(needle, sizeof(needle), "trusted key 'k': cannot load public key file %s/keys/bad.pub",
             kdir);
    assert_key_config_refused("{\"trusted_keys\":[{\"name\":\"k\",\"file\":\"keys/bad.pub\","
                              "\"role\":\"release\"}]}",
                              needle);
    assert_key_config_refused("{\"trusted_keys\":[{\"name\":\"k\",\"file\":\"keys\","
                              "\"role\":\"release\"}]}",
                              "trusted key 'k'");
}
END_TEST

START_TEST(test_config_refuses_duplicate_trusted_key_names_and_ids)
{
    assert_key_config_refused(
        "{\"trusted_keys\":[{\"name\":\"k\",\"file\":\"keys/a.pub\",\"role\":\"release\"},"
        "{\"name\":\"k\",\"file\":\"keys/b.pub\",\"role\":\"approver\"}]}",
        "duplicate key name 'k'");
    assert_key_config_refused(
        "{\"trusted_keys\":[{\"name\":\"one\",\"file\":\"keys/a.pub\",\"role\":\"release\"},"
        "{\"name\":\"two\",\"file\":\"keys/a.pub\",\"role\":\"approver\"}]}",
        "key 'two'");
    assert_key_config_refused(
        "{\"trusted_keys\":[{\"name\":\"one\",\"file\":\"keys/a.pub\",\"role\":\"release\"},"
        "{\"name\":\"two\",\"file\":\"keys/a.pub\",\"role\":\"approver\"}]}",
        "same key id " VECTOR_KEYID " as key 'one'");
    assert_key_config_refused(
        "{\"trusted_keys\":[{\"name\":\"one\",\"file\":\"keys/b.pub\",\"role\":\"release\"},"
        "{\"name\":\"two\",\"file\":\"keys/b-relabeled.pub\",\"role\":\"release\"}]}",
        "b-relabeled.pub) is the same public key as key 'one' under another key id");
}
END_TEST

START_TEST(test_listen_parsing_splits_host_and_port)
{
    char host[64];
    unsigned int port = 1;

    ck_assert_int_eq(mlreg_config_parse_listen(host, sizeof(host), &port, "127.0.0.1:5080"), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_uint_eq(port, 5080);
    ck_assert_int_eq(mlreg_config_parse_listen(host, sizeof(host), &port, "[::1]:0"), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_uint_eq(port, 0);
    ck_assert_int_eq(mlreg_config_parse_listen(host, sizeof(host), &port, "localhost:65535"), 0);
    ck_assert_str_eq(host, "localhost");
    ck_assert_uint_eq(port, 65535);
    ck_assert_int_eq(mlreg_config_parse_listen(host, sizeof(host), &port, "127.0.0.1:65536"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_config_parse_listen(host, sizeof(host), &port, "127.0.0.1:"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_config_parse_listen(host, sizeof(host), &port, ":80"), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_config_parse_listen(host, sizeof(host), &port, "::1:80"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_config_parse_listen(host, sizeof(host), &port, "[::1]80"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_config_parse_listen(host, sizeof(host), &port, "127.0.0.1:8o"),
                     MLREG_EINVALID);
    ck_assert_int_eq(mlreg_config_parse_listen(host, 4, &port, "127.0.0.1:80"), MLREG_EINVALID);
}
END_TEST

START_TEST(test_only_loopback_hosts_count_as_loopback)
{
    ck_assert_int_eq(mlreg_config_host_is_loopback("127.0.0.1"), 1);
    ck_assert_int_eq(mlreg_config_host_is_loopback("127.255.0.9"), 1);
    ck_assert_int_eq(mlreg_config_host_is_loopback("::1"), 1);
    ck_assert_int_eq(mlreg_config_host_is_loopback("localhost"), 1);
    ck_assert_int_eq(mlreg_config_host_is_loopback("0.0.0.0"), 0);
    ck_assert_int_eq(mlreg_config_host_is_loopback("128.0.0.1"), 0);
    ck_assert_int_eq(mlreg_config_host_is_loopback("::"), 0);
    ck_assert_int_eq(mlreg_config_host_is_loopback("::ffff:10.0.0.1"), 0);
    ck_assert_int_eq(mlreg_config_host_is_loopback("example.com"), 0);
    ck_assert_int_eq(mlreg_config_host_is_loopback("localhost.evil.com"), 0);
}
END_TEST

START_TEST(test_config_reads_retention_rules)
{
    mlreg_config *cfg = NULL;
    const mlreg_config_retention *r;

    write_config("{\"stages\":[\"dev\",\"prod\"],\"retention\":["
                 "{\"models\":\"team-a/*\",\"keep_last\":10,\"held_within\":\"30d\","
                 "\"withdrawn_for\":604800,\"protected_stages\":[\"prod\"]},"
                 "{\"models\":\"[a-c]?/x\",\"keep_last\":0}]}");
    ck_assert_msg(mlreg_config_load(&cfg, path) == 0, "%s", mlreg_error_last());
    ck_assert_uint_eq(cfg->n_retention, 2);
    r = &cfg->retention[0];
    ck_assert_str_eq(r->models, "team-a/*");
    ck_assert_uint_eq(r->keep_last, 10);
    ck_assert_uint_eq(r->held_within, 30 * 86400);
    ck_assert_uint_eq(r->withdrawn_for, 7 * 86400);
    ck_assert_uint_eq(r->n_protected_stages, 1);
    ck_assert_str_eq(r->protected_stages[0], "prod");
    r = &cfg->retention[1];
    ck_assert_uint_eq(r->keep_last, 0);
    ck_assert_uint_eq(r->held_within, 0);
    ck_assert_uint_eq(r->n_protected_stages, 0);
    mlreg_config_free(cfg);
    cfg = NULL;
    write_config("{\"retention\":[]}");
    ck_assert_int_eq(mlreg_config_load(&cfg, path), 0);
    ck_assert_uint_eq(cfg->n_retention, 0);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_config_refuses_bad_retention_rules_naming_the_key)
{
    assert_refused("{\"retention\":{}}", MLREG_EINVALID, "'retention' must be an array");
    assert_refused("{\"retention\":[3]}", MLREG_EINVALID, "'retention[0]' must be an object");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":1,\"keep\":2}]}",
                   MLREG_EINVALID, "unknown config key 'retention[0].keep'");
    assert_refused("{\"retention\":[{\"keep_last\":1}]}", MLREG_EINVALID,
                   "'retention[0]' lacks \"models\"");
    assert_refused("{\"retention\":[{\"models\":\"a/*\"}]}", MLREG_EINVALID,
                   "'retention[0]' lacks \"keep_last\"");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":-1}]}", MLREG_EINVALID,
                   "'retention[0].keep_last' must be between 0 and 1000000 (got -1)");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":\"10\"}]}", MLREG_EINVALID,
                   "'retention[0].keep_last' must be an integer");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":1},"
                   "{\"models\":\"b\",\"keep_last\":1,\"held_within\":-5}]}",
                   MLREG_EINVALID, "'retention[1].held_within' must be between 0");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":1,"
                   "\"withdrawn_for\":\"7w\"}]}",
                   MLREG_EINVALID, "'retention[0].withdrawn_for' must be a duration");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":1,"
                   "\"held_within\":\"-3d\"}]}",
                   MLREG_EINVALID, "'retention[0].held_within' must be a duration");
    assert_refused("{\"retention\":[{\"models\":\"\",\"keep_last\":1}]}", MLREG_EINVALID,
                   "'retention[0].models' must be a non-empty string");
    assert_refused("{\"retention\":[{\"models\":\"team-[ab/*\",\"keep_last\":1}]}", MLREG_EINVALID,
                   "has a '[' without its ']'");
    assert_refused("{\"retention\":[{\"models\":\"Team/*\",\"keep_last\":1}]}", MLREG_EINVALID,
                   "has a character no model name holds");
    assert_refused("{\"retention\":[{\"models\":\"a\\\\\",\"keep_last\":1}]}", MLREG_EINVALID,
                   "ends in a lone backslash");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":1,"
                   "\"protected_stages\":\"production\"}]}",
                   MLREG_EINVALID, "'retention[0].protected_stages' must be an array");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":1,"
                   "\"protected_stages\":[\"production\",\"production\"]}]}",
                   MLREG_EINVALID, "names stage 'production' twice");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":1,"
                   "\"protected_stages\":[7]}]}",
                   MLREG_EINVALID, "'retention[0].protected_stages[0]' must be a stage name");
    /* a stage that is not configured (the defaults, or the config's list) */
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":1,"
                   "\"protected_stages\":[\"prod\"]}]}",
                   MLREG_EINVALID,
                   "'retention[0].protected_stages[0]': unknown stage 'prod' (not in 'stages')");
    assert_refused("{\"retention\":[{\"models\":\"a\",\"keep_last\":1,"
                   "\"protected_stages\":[\"production\"]}],\"stages\":[\"dev\",\"live\"]}",
                   MLREG_EINVALID, "unknown stage 'production'");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_config_without_file_gives_the_defaults);
    tcase_add_test(tc, test_config_records_the_sha256_of_the_file_bytes);
    tcase_add_test(tc, test_config_changed_keys_name_each_changed_key_once_sorted);
    tcase_add_test(tc, test_config_reads_every_accepted_key);
    tcase_add_test(tc, test_config_reads_the_connection_and_upload_limits);
    tcase_add_test(tc, test_config_refuses_limits_out_of_range_naming_them);
    tcase_add_test(tc, test_config_reads_the_scheduled_scrub);
    tcase_add_test(tc, test_config_reads_the_collection_durations);
    tcase_add_test(tc, test_config_reads_retention_rules);
    tcase_add_test(tc, test_config_refuses_bad_retention_rules_naming_the_key);
    tcase_add_test(tc, test_config_tls_keys_resolve_against_the_config_directory);
    tcase_add_test(tc, test_config_refuses_half_a_tls_setup);
    tcase_add_test(tc, test_config_cluster_ca_file_resolves_against_the_config_directory);
    tcase_add_test(tc, test_config_loads_stages_gates_models_and_tokens);
    tcase_add_test(tc, test_config_refuses_bad_gates_and_tokens_naming_the_key);
    tcase_add_test(tc, test_config_loads_the_s3_keys_and_names_bad_ones);
    tcase_add_test(tc, test_config_names_unknown_keys);
    tcase_add_test(tc, test_config_names_bad_values);
    tcase_add_test(tc, test_config_refuses_malformed_json_with_its_position);
    tcase_add_test(tc, test_config_missing_file_is_an_io_error);
    tcase_add_test(tc, test_listen_parsing_splits_host_and_port);
    tcase_add_test(tc, test_only_loopback_hosts_count_as_loopback);
    suite_add_tcase(s, tc);

    tc = tcase_create("trusted_keys");
    tcase_add_checked_fixture(tc, key_setup, key_teardown);
    tcase_add_test(tc, test_config_loads_trusted_keys_relative_to_the_config_directory);
    tcase_add_test(tc, test_config_takes_an_absolute_key_file_as_is);
    tcase_add_test(tc, test_config_refuses_bad_trusted_key_entries_naming_them);
    tcase_add_test(tc, test_config_refuses_missing_or_malformed_key_files_naming_key_and_file);
    tcase_add_test(tc, test_config_refuses_duplicate_trusted_key_names_and_ids);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed;
    SRunner *sr = srunner_create(config_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
