/* check_events.c: events (registry/events.c): the `webhooks` config key,
 * parsed strictly (unknown keys, bad URLs, unknown or repeated event names,
 * secret files that are missing, too open, too short or hold a NUL, and
 * duplicate URLs are refused naming the key); the CloudEvent built from
 * audit entries (push, promote, refused promotion, entries that are no
 * event, garbage); the HMAC-SHA256 signature against RFC 4231; the
 * registry's commit listeners. */
#include "mlreg/audit.h"
#include "mlreg/common.h"
#include "mlreg/config.h"
#include "mlreg/events.h"
#include "mlreg/registry.h"

#include "helpers.h"

#include <check.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[TH_DIR_MAX];
static char cfg_path[TH_DIR_MAX + 32];

static void write_file(const char *name, const char *text, mode_t mode)
{
    char p[TH_DIR_MAX + 64];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    unlink(p);
    f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(p, mode), 0);
}

static void setup(void)
{
    ck_assert_int_ge(sodium_init(), 0);
    th_tmpdir(dir, sizeof(dir), "events");
    snprintf(cfg_path, sizeof(cfg_path), "%s/mlreg.json", dir);
    write_file("secret", "0123456789abcdef0123456789abcdef\n", 0600);
}

static void teardown(void)
{
    th_rm_rf(dir);
}

static void assert_refused(const char *webhooks, const char *needle)
{
    char text[4096];
    mlreg_config *cfg = NULL;
    int error;

    snprintf(text, sizeof(text), "{\"webhooks\": %s}", webhooks);
    write_file("mlreg.json", text, 0600);
    error = mlreg_config_load(&cfg, cfg_path);
    ck_assert_msg(error == MLREG_EINVALID || error == MLREG_EIO, "%s: got %d", webhooks, error);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(mlreg_error_last(), needle) != NULL, "message '%s' lacks '%s'",
                  mlreg_error_last(), needle);
}

START_TEST(test_webhooks_config_reads_every_key_and_the_secret_without_its_newline)
{
    mlreg_config *cfg = NULL;
    const mlreg_webhook *h;

    write_file("mlreg.json",
               "{\"webhooks\":[{\"url\":\"https://hooks.example/a?x=1\",\"secret_file\":\"secret\","
               "\"events\":[\"promote\",\"refuse\"],\"models\":\"vision\",\"timeout_seconds\":3,"
               "\"retry_max_seconds\":7,\"give_up_after\":2},"
               "{\"url\":\"http://127.0.0.1:9/b\",\"secret_file\":\"secret\"}]}",
               0600);
    ck_assert_int_eq(mlreg_config_load(&cfg, cfg_path), 0);
    ck_assert_ptr_nonnull(cfg->webhooks);
    ck_assert_uint_eq(cfg->webhooks->n, 2);
    h = &cfg->webhooks->hooks[0];
    ck_assert_str_eq(h->url, "https://hooks.example/a?x=1");
    ck_assert_uint_eq(h->events, MLREG_EVENT_PROMOTE | MLREG_EVENT_REFUSE);
    ck_assert_str_eq(h->models, "vision");
    ck_assert_uint_eq(h->timeout_s, 3);
    ck_assert_uint_eq(h->retry_max_s, 7);
    ck_assert_uint_eq(h->refused_tries, 2);
    ck_assert_uint_eq(h->secret_len, 32);
    ck_assert_int_eq(memcmp(h->secret, "0123456789abcdef0123456789abcdef", 32), 0);
    ck_assert_ptr_nonnull(strstr(h->secret_file, dir)); /* resolved against the config's dir */
    h = &cfg->webhooks->hooks[1];
    ck_assert_uint_eq(h->events, MLREG_EVENT_ALL);
    ck_assert_ptr_null(h->models);
    ck_assert_uint_eq(h->timeout_s, 10);
    ck_assert_uint_eq(h->retry_max_s, 60);
    ck_assert_uint_eq(h->refused_tries, 5);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_webhooks_config_without_the_key_has_no_webhooks)
{
    mlreg_config *cfg = NULL;

    ck_assert_int_eq(mlreg_config_load(&cfg, NULL), 0);
    ck_assert_ptr_null(cfg->webhooks);
    mlreg_config_free(cfg);
}
END_TEST

START_TEST(test_webhooks_config_refuses_bad_entries_naming_the_key)
{
    assert_refused("{}", "'webhooks' must be an array");
    assert_refused("[1]", "'webhooks[0]' must be an object");
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"secret\",\"sekret\":1}]",
                   "unknown config key 'webhooks[0].sekret'");
    assert_refused("[{\"secret_file\":\"secret\"}]", "'webhooks[0]' lacks \"url\"");
    assert_refused("[{\"url\":\"http://a/\"}]", "'webhooks[0]' lacks \"secret_file\"");
    assert_refused("[{\"url\":\"ftp://a/\",\"secret_file\":\"secret\"}]", "'webhooks[0].url'");
    assert_refused("[{\"url\":\"http://\",\"secret_file\":\"secret\"}]", "'webhooks[0].url'");
    assert_refused("[{\"url\":\"http://a/ b\",\"secret_file\":\"secret\"}]", "'webhooks[0].url'");
    assert_refused("[{\"url\":\"\",\"secret_file\":\"secret\"}]",
                   "'webhooks[0].url' must be a non-empty string");
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"secret\",\"events\":[]}]",
                   "'webhooks[0].events' must be a non-empty array");
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"secret\",\"events\":[\"pushh\"]}]",
                   "'webhooks[0].events[0]': unknown event");
    assert_refused(
        "[{\"url\":\"http://a/\",\"secret_file\":\"secret\",\"events\":[\"push\",\"push\"]}]",
        "'webhooks[0].events[1]': 'push' is listed twice");
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"secret\",\"models\":\"Bad Name\"}]",
                   "'webhooks[0].models'");
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"secret\",\"timeout_seconds\":0}]",
                   "'webhooks[0].timeout_seconds' must be between 1 and 300");
    assert_refused(
        "[{\"url\":\"http://a/\",\"secret_file\":\"secret\",\"retry_max_seconds\":\"9\"}]",
        "'webhooks[0].retry_max_seconds' must be an integer");
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"secret\"},"
                   "{\"url\":\"http://a/\",\"secret_file\":\"secret\"}]",
                   "'webhooks[1].url': the same URL as webhooks[0]");
}
END_TEST

START_TEST(test_webhooks_config_refuses_bad_secret_files)
{
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"nope\"}]",
                   "'webhooks[0].secret_file'");
    write_file("open", "0123456789abcdef0123456789abcdef", 0644);
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"open\"}]",
                   "has mode 0644; want 0600");
    write_file("short", "too short\n", 0600);
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"short\"}]", "must hold 16 to 1024");
    write_file("empty", "", 0600);
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"empty\"}]", "must hold 16 to 1024");
    {
        char p[TH_DIR_MAX + 16];
        int fd;
        snprintf(p, sizeof(p), "%s/nul", dir);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "0123456789\0abcdef0123", 21), 21);
        close(fd);
    }
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\"nul\"}]", "no NUL byte");
    assert_refused("[{\"url\":\"http://a/\",\"secret_file\":\".\"}]", "is not a regular file");
}
END_TEST

/* ---- the CloudEvent of an entry ---------------------------------------------------- */

#define PUSH_ENTRY                                                                                 \
    "{\"action\":\"push\",\"actor\":\"ci\",\"details\":{\"files\":2},\"prev\":null,"               \
    "\"result\":\"ok\",\"seq\":7,\"subject\":{\"digest\":\"sha256:aa\",\"model\":\"demo\","        \
    "\"version\":\"1.0\"},\"time\":\"2026-01-02T03:04:05.000000006Z\"}"

START_TEST(test_event_of_a_push_has_the_cloudevents_attributes_and_the_release)
{
    json_t *ev = NULL, *data;
    unsigned int kind = 0;

    ck_assert_int_eq(mlreg_event_from_entry(&ev, &kind, PUSH_ENTRY, strlen(PUSH_ENTRY),
                                            "mlreg://host", "ABCDEF"),
                     0);
    ck_assert_uint_eq(kind, MLREG_EVENT_PUSH);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "specversion")), "1.0");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "id")), "ABCDEF-7");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "source")), "mlreg://host");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), "dev.mlreg.push");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "subject")), "demo@1.0");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "time")),
                     "2026-01-02T03:04:05.000000006Z");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "datacontenttype")), "application/json");
    data = json_object_get(ev, "data");
    ck_assert_str_eq(json_string_value(json_object_get(data, "model")), "demo");
    ck_assert_str_eq(json_string_value(json_object_get(data, "version")), "1.0");
    ck_assert_str_eq(json_string_value(json_object_get(data, "digest")), "sha256:aa");
    ck_assert_str_eq(json_string_value(json_object_get(data, "actor")), "ci");
    ck_assert_int_eq(json_integer_value(json_object_get(data, "seq")), 7);
    ck_assert(json_is_null(json_object_get(data, "stage")));
    ck_assert(json_is_null(json_object_get(data, "from_stage")));
    ck_assert_ptr_null(json_object_get(data, "gates"));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(data, "details"), "files")),
                     2);
    ck_assert_str_eq(mlreg_event_model(ev), "demo");
    json_decref(ev);
}
END_TEST

#define PROMOTE_ENTRY(result)                                                                      \
    "{\"action\":\"promote\",\"actor\":\"rel\",\"approvers\":[],\"details\":{\"baseline\":null,"   \
    "\"from_stage\":\"dev\"},\"gates\":[{\"rule\":\"accuracy >= 0.85\",\"candidate\":\"0.8\","     \
    "\"passed\":false}],\"prev\":\"sha256:00\",\"reason\":\"why\",\"result\":\"" result "\","      \
    "\"seq\":12,\"subject\":{\"digest\":\"sha256:bb\",\"model\":\"demo\",\"stage\":\"staging\","   \
    "\"version\":\"2.0\"},\"time\":\"2026-01-02T03:04:05Z\"}"

START_TEST(test_event_of_a_promotion_carries_stages_and_the_gate_table)
{
    const char *ok = PROMOTE_ENTRY("ok"), *refused = PROMOTE_ENTRY("refused");
    json_t *ev = NULL, *data;
    unsigned int kind = 0;

    ck_assert_int_eq(mlreg_event_from_entry(&ev, &kind, ok, strlen(ok), "s", "L"), 0);
    ck_assert_uint_eq(kind, MLREG_EVENT_PROMOTE);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), "dev.mlreg.promote");
    data = json_object_get(ev, "data");
    ck_assert_str_eq(json_string_value(json_object_get(data, "stage")), "staging");
    ck_assert_str_eq(json_string_value(json_object_get(data, "from_stage")), "dev");
    ck_assert_str_eq(json_string_value(json_object_get(data, "reason")), "why");
    ck_assert_uint_eq(json_array_size(json_object_get(data, "gates")), 1);
    ck_assert(json_is_array(json_object_get(data, "approvers")));
    json_decref(ev);

    ck_assert_int_eq(mlreg_event_from_entry(&ev, &kind, refused, strlen(refused), "s", "L"), 0);
    ck_assert_uint_eq(kind, MLREG_EVENT_REFUSE);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), "dev.mlreg.refuse");
    data = json_object_get(ev, "data");
    ck_assert_str_eq(json_string_value(json_object_get(data, "result")), "refused");
    ck_assert_str_eq(json_string_value(json_object_get(data, "action")), "promote");
    ck_assert(json_is_false(
        json_object_get(json_array_get(json_object_get(data, "gates"), 0), "passed")));
    json_decref(ev);
}
END_TEST

START_TEST(test_entries_that_are_no_event_give_none_and_garbage_is_refused)
{
    const char *link =
        "{\"action\":\"blob.link\",\"actor\":\"ci\",\"prev\":null,\"result\":\"ok\","
        "\"seq\":0,\"subject\":{\"model\":\"demo\"},\"time\":\"2026-01-02T03:04:05Z\"}";
    const char *bad[] = {"", "[]", "{\"action\":\"push\"}",
                         "{\"action\":\"push\",\"actor\":\"a\","
                         "\"result\":\"ok\",\"seq\":-1,\"subject\":{},\"time\":\"t\"}",
                         "{\"action\":\"push\",\"actor\":\"a\",\"result\":\"ok\",\"seq\":1,"
                         "\"subject\":[],\"time\":\"t\"}"};
    json_t *ev = (json_t *)1;
    unsigned int kind = 0;

    ck_assert_int_eq(mlreg_event_from_entry(&ev, &kind, link, strlen(link), "s", "L"), 1);
    ck_assert_ptr_null(ev);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(mlreg_event_from_entry(&ev, &kind, bad[i], strlen(bad[i]), "s", "L"),
                         MLREG_EINVALID);
        ck_assert_ptr_null(ev);
    }
}
END_TEST

START_TEST(test_event_kinds_map_names_both_ways)
{
    ck_assert_uint_eq(mlreg_event_kind("refuse", 6), MLREG_EVENT_REFUSE);
    ck_assert_uint_eq(mlreg_event_kind("push,", 5), 0);
    ck_assert_uint_eq(mlreg_event_kind("pus", 3), 0);
    ck_assert_uint_eq(mlreg_event_kind("", 0), 0);
    ck_assert_str_eq(mlreg_event_kind_name(MLREG_EVENT_IMAGE), "image");
    ck_assert_ptr_null(mlreg_event_kind_name(MLREG_EVENT_PUSH | MLREG_EVENT_SIGN));
}
END_TEST

/* RFC 4231, test case 2. */
START_TEST(test_signature_is_hmac_sha256_hex_of_the_body)
{
    char sig[7 + 64 + 1];
    const char *data = "what do ya want for nothing?";

    mlreg_event_sign(sig, (const unsigned char *)"Jefe", 4, data, strlen(data));
    ck_assert_str_eq(sig,
                     "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
END_TEST

/* ---- commit listeners ------------------------------------------------------------- */

static int calls;
static void count_call(void *arg)
{
    (void)arg;
    calls++;
}

START_TEST(test_commit_listeners_hear_each_commit_until_removed)
{
    th_registry fx;
    mlreg_digest d;

    th_registry_setup(&fx, "events-listen", NULL);
    calls = 0;
    ck_assert_int_eq(mlreg_registry_commit_listen(fx.reg, count_call, NULL), 0);
    th_put_blob(&d, fx.reg, "demo", "ci", "one");
    ck_assert_int_eq(calls, 1);
    th_put_blob(&d, fx.reg, "demo", "ci", "two");
    ck_assert_int_eq(calls, 2);
    mlreg_registry_commit_unlisten(fx.reg, count_call, NULL);
    th_put_blob(&d, fx.reg, "demo", "ci", "three");
    ck_assert_int_eq(calls, 2);
    for (int i = 0; i < MLREG_REGISTRY_LISTENERS_MAX; i++)
        ck_assert_int_eq(mlreg_registry_commit_listen(fx.reg, count_call, &calls + i), 0);
    ck_assert_int_eq(mlreg_registry_commit_listen(fx.reg, count_call, NULL), MLREG_ENOSPACE);
    th_registry_teardown(&fx);
}
END_TEST

static Suite *events_suite(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("config");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_webhooks_config_reads_every_key_and_the_secret_without_its_newline);
    tcase_add_test(tc, test_webhooks_config_without_the_key_has_no_webhooks);
    tcase_add_test(tc, test_webhooks_config_refuses_bad_entries_naming_the_key);
    tcase_add_test(tc, test_webhooks_config_refuses_bad_secret_files);
    suite_add_tcase(s, tc);

    tc = tcase_create("cloudevents");
    tcase_add_test(tc, test_event_of_a_push_has_the_cloudevents_attributes_and_the_release);
    tcase_add_test(tc, test_event_of_a_promotion_carries_stages_and_the_gate_table);
    tcase_add_test(tc, test_entries_that_are_no_event_give_none_and_garbage_is_refused);
    tcase_add_test(tc, test_event_kinds_map_names_both_ways);
    tcase_add_test(tc, test_signature_is_hmac_sha256_hex_of_the_body);
    tcase_add_test(tc, test_commit_listeners_hear_each_commit_until_removed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed;
    SRunner *sr = srunner_create(events_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
