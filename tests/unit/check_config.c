/* check_config.c: the server config file (registry/config.c): defaults,
 * accepted keys, keys refused by name, listen parsing, the loopback rule. */
#include "mlreg/common.h"
#include "mlreg/config.h"
#include "mlreg/registry.h"
#include "mlreg/server.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

START_TEST(test_config_refuses_keys_of_later_features_by_name)
{
    static const char *const keys[] = {"stages", "gates",        "models",
                                       "tokens", "trusted_keys", "tls"};
    char text[128], msg[128];

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        snprintf(text, sizeof(text), "{\"%s\": []}", keys[i]);
        snprintf(msg, sizeof(msg), "config key '%s' is not supported by this version of mlreg",
                 keys[i]);
        assert_refused(text, MLREG_EUNSUPPORTED, msg);
    }
}
END_TEST

START_TEST(test_config_refuses_s3_with_a_clear_message)
{
    assert_refused("{\"storage\":{\"backend\":\"s3\"}}", MLREG_EUNSUPPORTED,
                   "storage backend s3 is not available in this build yet");
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

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_config_without_file_gives_the_defaults);
    tcase_add_test(tc, test_config_reads_every_accepted_key);
    tcase_add_test(tc, test_config_refuses_keys_of_later_features_by_name);
    tcase_add_test(tc, test_config_refuses_s3_with_a_clear_message);
    tcase_add_test(tc, test_config_names_unknown_keys);
    tcase_add_test(tc, test_config_names_bad_values);
    tcase_add_test(tc, test_config_refuses_malformed_json_with_its_position);
    tcase_add_test(tc, test_config_missing_file_is_an_io_error);
    tcase_add_test(tc, test_listen_parsing_splits_host_and_port);
    tcase_add_test(tc, test_only_loopback_hosts_count_as_loopback);
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
