/* check_push_cache.c: the digest cache and upload session files of
 * `mlreg push` (cli/push_cache.h): round trips, and the parser against
 * malformed, truncated and hostile files (a checksum forged over lying
 * counts included), the racily-clean rule, eviction, and files that are
 * not ours.
 */
#include "../../cli/push_cache.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlreg/bytes.h"
#include "mlreg/common.h"

static char dir[] = "/tmp/check_push_cache.XXXXXX";

static void setup(void)
{
    strcpy(dir, "/tmp/check_push_cache.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static push_file_id make_id(uint64_t ino, uint64_t size)
{
    push_file_id id = {.dev = 2049,
                       .ino = ino,
                       .size = size,
                       .mtime_ns = 1700000000123456789LL,
                       .ctime_ns = 1700000000223456789LL};
    return id;
}

static mlreg_digest make_digest(unsigned char b)
{
    mlreg_digest d;
    memset(d.raw, b, sizeof(d.raw));
    return d;
}

/* A cache of two entries, the second with a 3-chunk index and unverified. */
static void two_entries(push_cache *c)
{
    push_file_id a = make_id(1, 10), b = make_id(2, 3 * MLREG_CHUNK_SIZE_MIN - 5);
    mlreg_digest da = make_digest(0xaa), db = make_digest(0xbb);
    mlreg_digest chunks[3] = {make_digest(1), make_digest(2), make_digest(3)};
    mlreg_chunk_index ix = {.file = db,
                            .size = b.size,
                            .chunk_size = MLREG_CHUNK_SIZE_MIN,
                            .nchunks = 3,
                            .chunks = chunks};

    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(push_cache_put(c, &a, &da, NULL, 100, 0), 0);
    ck_assert_int_eq(push_cache_put(c, &b, &db, &ix, 200, 1), 0);
}

/* Recomputes the trailing checksum after a test edited the bytes, so the
 * parser's other checks are the ones under test. */
static void reseal(unsigned char *p, size_t len)
{
    mlreg_digest d;
    ck_assert_int_eq(mlreg_digest_buffer(&d, p, len - MLREG_DIGEST_RAWLEN), 0);
    memcpy(p + len - MLREG_DIGEST_RAWLEN, d.raw, MLREG_DIGEST_RAWLEN);
}

START_TEST(test_cache_round_trip_keeps_digests_and_chunks)
{
    push_cache c, back;
    unsigned char *bytes = NULL;
    size_t len = 0;
    push_file_id a = make_id(1, 10), b = make_id(2, 3 * MLREG_CHUNK_SIZE_MIN - 5);
    push_cache_entry *e;

    two_entries(&c);
    ck_assert_int_eq(push_cache_serialize(&bytes, &len, &c), 0);
    ck_assert_int_eq(push_cache_parse(&back, bytes, len), 0);
    ck_assert_uint_eq(back.n, 2);
    ck_assert_ptr_nonnull(e = push_cache_find(&back, &b));
    ck_assert_uint_eq(e->nchunks, 3);
    ck_assert_uint_eq(e->chunk_size, MLREG_CHUNK_SIZE_MIN);
    ck_assert_int_eq(e->chunks[2].raw[0], 3);
    ck_assert_int_eq(e->digest.raw[0], 0xbb);
    ck_assert_int_eq(e->unverified, 1);
    ck_assert_ptr_nonnull(e = push_cache_find(&back, &a));
    ck_assert_int_eq(e->unverified, 0);
    free(bytes);
    push_cache_clear(&c);
    push_cache_clear(&back);
}
END_TEST

/* A version 1 file (no flags word) reads with every entry verified; a
 * flag this version does not know is refused. */
START_TEST(test_cache_reads_version_1_and_refuses_unknown_flags)
{
    push_file_id a = make_id(1, 10);
    unsigned char v1[16 + 96 + 32], *bytes = NULL;
    push_cache c, back;
    push_cache_entry *e;
    size_t len = 0;

    memset(v1, 0, sizeof(v1));
    memcpy(v1, "MLREGPC\x01", 8);
    v1[8] = 1;
    mlreg_le64_put(v1 + 16, a.dev);
    mlreg_le64_put(v1 + 24, a.ino);
    mlreg_le64_put(v1 + 32, a.size);
    mlreg_le64_put(v1 + 40, (uint64_t)a.mtime_ns);
    mlreg_le64_put(v1 + 48, (uint64_t)a.ctime_ns);
    mlreg_le64_put(v1 + 56, 100);
    memset(v1 + 80, 0xaa, 32);
    reseal(v1, sizeof(v1));
    ck_assert_int_eq(push_cache_parse(&back, v1, sizeof(v1)), 0);
    ck_assert_ptr_nonnull(e = push_cache_find(&back, &a));
    ck_assert_int_eq(e->digest.raw[31], 0xaa);
    ck_assert_int_eq(e->unverified, 0);
    ck_assert_int_eq((int)e->used, 100);
    push_cache_clear(&back);

    two_entries(&c);
    ck_assert_int_eq(push_cache_serialize(&bytes, &len, &c), 0);
    ck_assert_int_eq(bytes[7], 2);
    bytes[16 + 64] = 4; /* the first entry's flags: an unknown bit */
    reseal(bytes, len);
    ck_assert_int_eq(push_cache_parse(&back, bytes, len), MLREG_EINVALID);
    ck_assert_str_eq(mlreg_error_last(), "cache entry 0: unknown flags");
    mlreg_error_clear();
    free(bytes);
    push_cache_clear(&c);
}
END_TEST

START_TEST(test_cache_find_needs_every_part_of_the_identity)
{
    push_cache c;
    push_file_id id = make_id(1, 10);

    two_entries(&c);
    ck_assert_ptr_nonnull(push_cache_find(&c, &id));
    id.ctime_ns++; /* same size and mtime, other ctime: a changed file */
    ck_assert_ptr_null(push_cache_find(&c, &id));
    id = make_id(1, 10);
    id.mtime_ns--;
    ck_assert_ptr_null(push_cache_find(&c, &id));
    id = make_id(1, 10);
    id.dev++;
    ck_assert_ptr_null(push_cache_find(&c, &id));
    push_cache_clear(&c);
}
END_TEST

START_TEST(test_cache_parse_refuses_every_truncation)
{
    push_cache c, back;
    unsigned char *bytes = NULL;
    size_t len = 0;

    two_entries(&c);
    ck_assert_int_eq(push_cache_serialize(&bytes, &len, &c), 0);
    for (size_t n = 0; n < len; n++) {
        ck_assert_int_lt(push_cache_parse(&back, bytes, n), 0);
        ck_assert_uint_eq(back.n, 0);
        ck_assert_ptr_null(back.entries);
    }
    free(bytes);
    push_cache_clear(&c);
}
END_TEST

START_TEST(test_cache_parse_refuses_a_flipped_bit)
{
    push_cache c, back;
    unsigned char *bytes = NULL;
    size_t len = 0;

    two_entries(&c);
    ck_assert_int_eq(push_cache_serialize(&bytes, &len, &c), 0);
    for (size_t i = 0; i < len; i++) {
        bytes[i] ^= 0x10;
        ck_assert_int_eq(push_cache_parse(&back, bytes, len), MLREG_EINVALID);
        bytes[i] ^= 0x10;
    }
    free(bytes);
    push_cache_clear(&c);
}
END_TEST

/* Resealed files: the checksum is right, the counts lie. */
START_TEST(test_cache_parse_refuses_lying_counts_under_a_valid_checksum)
{
    push_cache c, back;
    unsigned char *bytes = NULL;
    size_t len = 0, e2 = 16 + 96; /* second entry's offset */

    two_entries(&c);
    ck_assert_int_eq(push_cache_serialize(&bytes, &len, &c), 0);
    /* entry count larger than the entries */
    bytes[8] = 3;
    reseal(bytes, len);
    ck_assert_int_eq(push_cache_parse(&back, bytes, len), MLREG_EINVALID);
    bytes[8] = 2;
    /* a huge chunk count */
    memset(bytes + e2 + 56, 0xff, 8);
    reseal(bytes, len);
    ck_assert_int_eq(push_cache_parse(&back, bytes, len), MLREG_EINVALID);
    /* a chunk count that disagrees with size / chunk size */
    memset(bytes + e2 + 56, 0, 8);
    bytes[e2 + 56] = 2;
    reseal(bytes, len);
    ck_assert_int_eq(push_cache_parse(&back, bytes, len), MLREG_EINVALID);
    bytes[e2 + 56] = 3;
    /* a chunk size that is not a power of two */
    bytes[e2 + 48] = 1;
    reseal(bytes, len);
    ck_assert_int_eq(push_cache_parse(&back, bytes, len), MLREG_EINVALID);
    bytes[e2 + 48] = 0;
    /* a repeated identity */
    memcpy(bytes + e2, bytes + 16, 40);
    reseal(bytes, len);
    ck_assert_int_eq(push_cache_parse(&back, bytes, len), MLREG_EINVALID);
    free(bytes);
    push_cache_clear(&c);
}
END_TEST

START_TEST(test_cache_parse_refuses_other_magic_trailing_bytes_and_huge_counts)
{
    unsigned char buf[16 + 32 + 1];
    push_cache back;

    memset(buf, 0, sizeof(buf));
    memcpy(buf, "MLREGPC\x03", 8); /* another version */
    reseal(buf, 48);
    ck_assert_int_eq(push_cache_parse(&back, buf, 48), MLREG_EINVALID);
    memcpy(buf, "MLREGPC\x02", 8);
    reseal(buf, 48);
    ck_assert_int_eq(push_cache_parse(&back, buf, 48), 0); /* empty, valid */
    push_cache_clear(&back);
    buf[8] = 0xff;
    buf[9] = 0xff; /* 65535 entries claimed */
    reseal(buf, 48);
    ck_assert_int_eq(push_cache_parse(&back, buf, 48), MLREG_EINVALID);
    buf[8] = buf[9] = 0;
    buf[12] = 1; /* reserved */
    reseal(buf, 48);
    ck_assert_int_eq(push_cache_parse(&back, buf, 48), MLREG_EINVALID);
    buf[12] = 0;
    /* one byte between the entries and the checksum */
    reseal(buf, 49);
    ck_assert_int_eq(push_cache_parse(&back, buf, 49), MLREG_EINVALID);
}
END_TEST

START_TEST(test_cache_load_of_missing_corrupt_or_foreign_file_is_empty)
{
    push_cache c, back;
    char path[512];
    int fd;

    ck_assert_int_eq(push_cache_load(&back, dir), 0);
    ck_assert_uint_eq(back.n, 0);
    two_entries(&c);
    ck_assert_int_eq(push_cache_save(&c, dir), 0);
    ck_assert_int_eq(push_cache_load(&back, dir), 0);
    ck_assert_uint_eq(back.n, 2);
    push_cache_clear(&back);
    /* garbage in place of the file */
    snprintf(path, sizeof(path), "%s/digests", dir);
    ck_assert_int_ge(fd = open(path, O_WRONLY | O_TRUNC), 0);
    ck_assert_int_eq(write(fd, "garbage", 7), 7);
    close(fd);
    ck_assert_int_eq(push_cache_load(&back, dir), 0);
    ck_assert_uint_eq(back.n, 0);
    /* a valid file anyone may write is not trusted */
    ck_assert_int_eq(push_cache_save(&c, dir), 0);
    ck_assert_int_eq(chmod(path, 0666), 0);
    ck_assert_int_eq(push_cache_load(&back, dir), 0);
    ck_assert_uint_eq(back.n, 0);
    /* nor a symbolic link to one */
    ck_assert_int_eq(chmod(path, 0644), 0);
    char moved[600];
    snprintf(moved, sizeof(moved), "%s/elsewhere", dir);
    ck_assert_int_eq(rename(path, moved), 0);
    ck_assert_int_eq(symlink(moved, path), 0);
    ck_assert_int_eq(push_cache_load(&back, dir), 0);
    ck_assert_uint_eq(back.n, 0);
    push_cache_clear(&c);
}
END_TEST

START_TEST(test_cache_save_keeps_the_most_recently_used)
{
    push_cache c, back;
    mlreg_digest d = make_digest(7);

    memset(&c, 0, sizeof(c));
    for (uint64_t i = 0; i < PUSH_CACHE_MAX_ENTRIES + 10; i++) {
        push_file_id id = make_id(i + 1, 5);
        ck_assert_int_eq(push_cache_put(&c, &id, &d, NULL, (int64_t)i, 0), 0);
    }
    ck_assert_int_eq(push_cache_save(&c, dir), 0);
    ck_assert_int_eq(push_cache_load(&back, dir), 0);
    ck_assert_uint_eq(back.n, PUSH_CACHE_MAX_ENTRIES);
    push_file_id oldest = make_id(1, 5), newest = make_id(PUSH_CACHE_MAX_ENTRIES + 10, 5);
    ck_assert_ptr_null(push_cache_find(&back, &oldest));
    ck_assert_ptr_nonnull(push_cache_find(&back, &newest));
    push_cache_clear(&c);
    push_cache_clear(&back);
}
END_TEST

START_TEST(test_racily_clean_files_are_not_cacheable)
{
    push_file_id id = make_id(1, 10);
    int64_t t = id.ctime_ns;

    ck_assert_int_eq(push_file_id_cacheable(&id, t), 0);
    ck_assert_int_eq(push_file_id_cacheable(&id, t + 1000000), 0); /* 1 ms later */
    ck_assert_int_eq(push_file_id_cacheable(&id, t + 1000000000), 1);
    /* whole-second timestamps: a coarse file system, two seconds apart */
    id.mtime_ns = id.ctime_ns = 1700000000LL * 1000000000;
    ck_assert_int_eq(push_file_id_cacheable(&id, id.ctime_ns + 1500000000), 0);
    ck_assert_int_eq(push_file_id_cacheable(&id, id.ctime_ns + 2500000000LL), 1);
    /* a file from the future (a clock set back) is not cached */
    id = make_id(1, 10);
    ck_assert_int_eq(push_file_id_cacheable(&id, t - 5000000000LL), 0);
}
END_TEST

START_TEST(test_upload_file_round_trip_and_refusals)
{
    push_file_id id = make_id(9, 1 << 20), other = make_id(10, 1 << 20);
    char *data = NULL, *loc = NULL;
    size_t len = 0;

    ck_assert_int_eq(push_upload_format(&data, &len, "http://r:5080", "team/m", &id,
                                        "http://r:5080/v2/team/m/blobs/uploads/u-1"),
                     0);
    ck_assert_int_eq(push_upload_parse(&loc, data, len, "http://r:5080", "team/m", &id), 0);
    ck_assert_str_eq(loc, "http://r:5080/v2/team/m/blobs/uploads/u-1");
    free(loc);
    /* another file, repository or registry: not ours */
    ck_assert_int_eq(push_upload_parse(&loc, data, len, "http://r:5080", "team/m", &other),
                     MLREG_EINVALID);
    ck_assert_int_eq(push_upload_parse(&loc, data, len, "http://r:5080", "team/n", &id),
                     MLREG_EINVALID);
    ck_assert_int_eq(push_upload_parse(&loc, data, len, "http://s:5080", "team/m", &id),
                     MLREG_EINVALID);
    /* truncated: every prefix refused */
    for (size_t n = 0; n < len; n++) {
        ck_assert_int_eq(push_upload_parse(&loc, data, n, "http://r:5080", "team/m", &id),
                         MLREG_EINVALID);
        ck_assert_ptr_null(loc);
    }
    free(data);
    /* a second location line, a control character, a NUL byte */
    const char *bad[] = {"http://r/x\nhttp://r/y", "http://r/\x1b[2Jx", "http://r/ x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[512];
        int n = snprintf(buf, sizeof(buf),
                         "mlreg-upload 1\nhttp://r:5080\nteam/m\n2049 9 %d "
                         "1700000000123456789 1700000000223456789\n%s\n",
                         1 << 20, bad[i]);
        ck_assert_int_eq(push_upload_parse(&loc, buf, (size_t)n, "http://r:5080", "team/m", &id),
                         MLREG_EINVALID);
    }
    char nul[] = "mlreg-upload 1\nhttp://r:5080\n\0";
    ck_assert_int_eq(push_upload_parse(&loc, nul, sizeof(nul), "http://r:5080", "team/m", &id),
                     MLREG_EINVALID);
    ck_assert_int_eq(push_upload_format(&data, &len, "http://r:5080", "team/m", &id, "a b"),
                     MLREG_EINVALID);
}
END_TEST

START_TEST(test_upload_save_load_forget)
{
    push_file_id id = make_id(9, 1 << 20);
    char *loc = NULL;

    ck_assert_int_eq(push_upload_load(&loc, dir, "http://r", "m", &id), 0);
    ck_assert_ptr_null(loc);
    ck_assert_int_eq(push_upload_save(dir, "http://r", "m", &id, "http://r/v2/m/blobs/uploads/x"),
                     0);
    ck_assert_int_eq(push_upload_load(&loc, dir, "http://r", "m", &id), 0);
    ck_assert_str_eq(loc, "http://r/v2/m/blobs/uploads/x");
    free(loc);
    push_upload_forget(dir, "http://r", "m", &id);
    ck_assert_int_eq(push_upload_load(&loc, dir, "http://r", "m", &id), 0);
    ck_assert_ptr_null(loc);
}
END_TEST

START_TEST(test_upload_prune_drops_old_sessions_only)
{
    push_file_id a = make_id(9, 1 << 20), b = make_id(10, 1 << 20);
    char *loc = NULL, path[600], key[MLREG_DIGEST_HEXLEN + 1];
    struct timespec old[2] = {{.tv_sec = 1000000}, {.tv_sec = 1000000}};

    ck_assert_int_eq(push_upload_save(dir, "http://r", "m", &a, "http://r/u/a"), 0);
    ck_assert_int_eq(push_upload_save(dir, "http://r", "m", &b, "http://r/u/b"), 0);
    push_upload_key(key, "http://r", "m", &a);
    snprintf(path, sizeof(path), "%s/uploads/%s", dir, key);
    ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
    push_upload_prune(dir, 3600);
    ck_assert_int_eq(push_upload_load(&loc, dir, "http://r", "m", &a), 0);
    ck_assert_ptr_null(loc);
    ck_assert_int_eq(push_upload_load(&loc, dir, "http://r", "m", &b), 0);
    ck_assert_str_eq(loc, "http://r/u/b");
    free(loc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("push_cache");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_cache_round_trip_keeps_digests_and_chunks);
    tcase_add_test(tc, test_cache_find_needs_every_part_of_the_identity);
    tcase_add_test(tc, test_cache_parse_refuses_every_truncation);
    tcase_add_test(tc, test_cache_parse_refuses_a_flipped_bit);
    tcase_add_test(tc, test_cache_parse_refuses_lying_counts_under_a_valid_checksum);
    tcase_add_test(tc, test_cache_parse_refuses_other_magic_trailing_bytes_and_huge_counts);
    tcase_add_test(tc, test_cache_reads_version_1_and_refuses_unknown_flags);
    tcase_add_test(tc, test_cache_load_of_missing_corrupt_or_foreign_file_is_empty);
    tcase_add_test(tc, test_cache_save_keeps_the_most_recently_used);
    tcase_add_test(tc, test_racily_clean_files_are_not_cacheable);
    tcase_add_test(tc, test_upload_file_round_trip_and_refusals);
    tcase_add_test(tc, test_upload_save_load_forget);
    tcase_add_test(tc, test_upload_prune_drops_old_sessions_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
