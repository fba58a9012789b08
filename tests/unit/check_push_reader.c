/* check_push_reader.c: the read-once hashing reader of `mlreg push`
 * (cli/push_reader.h): the digest and chunk index it computes equal a
 * one-shot hash of the file, whatever the read sizes; a rewound read hands
 * the same bytes out again without hashing them twice; a file that shrinks
 * is an error; finishing before the end is refused.
 */
#include "../../cli/push_reader.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlreg/common.h"

static char path[] = "/tmp/check_push_reader.XXXXXX";
static int fd = -1;
static unsigned char *data;
#define SIZE  ((size_t)(5 << 20) + 12345) /* not a multiple of the block or chunk size */
#define CHUNK ((size_t)MLREG_CHUNK_SIZE_DEFAULT)

static void setup(void)
{
    strcpy(path, "/tmp/check_push_reader.XXXXXX");
    ck_assert_int_ge(fd = mkstemp(path), 0);
    ck_assert_ptr_nonnull(data = malloc(SIZE));
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    ck_assert_int_eq(write(fd, data, SIZE), (ssize_t)SIZE);
}

static void teardown(void)
{
    close(fd);
    unlink(path);
    free(data);
}

/* Reads everything in pieces of @p piece bytes, comparing with the data. */
static void read_all(push_reader *r, size_t piece)
{
    unsigned char *buf = malloc(piece);
    size_t at = 0;
    int64_t n;

    ck_assert_ptr_nonnull(buf);
    while ((n = push_reader_read(r, buf, piece)) > 0) {
        ck_assert_int_eq(memcmp(buf, data + at, (size_t)n), 0);
        at += (size_t)n;
    }
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(at, SIZE);
    free(buf);
}

START_TEST(test_reader_digest_equals_one_shot_hash_for_any_read_size)
{
    size_t pieces[] = {1 << 10, 65536 + 7, 1 << 20, 3 << 20};
    mlreg_digest want, got;

    ck_assert_int_eq(mlreg_digest_buffer(&want, data, SIZE), 0);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        push_reader *r = NULL;
        ck_assert_int_eq(push_reader_new(&r, fd, SIZE, PUSH_HASH_FILE, "f"), 0);
        read_all(r, pieces[i]);
        ck_assert_int_eq(push_reader_finish(&got, NULL, r), 0);
        ck_assert(mlreg_digest_equal(&want, &got));
        push_reader_free(r);
    }
}
END_TEST

START_TEST(test_reader_chunk_index_has_every_chunk_digest)
{
    push_reader *r = NULL;
    mlreg_chunk_index ix = {0};
    mlreg_digest got, want;

    ck_assert_int_eq(push_reader_new(&r, fd, SIZE, PUSH_HASH_FILE | PUSH_HASH_CHUNKS, "f"), 0);
    ck_assert_int_eq(push_reader_skip(r, SIZE), 0);
    ck_assert_int_eq(push_reader_finish(&got, &ix, r), 0);
    ck_assert_uint_eq(ix.size, SIZE);
    ck_assert_uint_eq(ix.nchunks, (SIZE + CHUNK - 1) / CHUNK);
    for (size_t i = 0; i < ix.nchunks; i++) {
        size_t off = i * CHUNK, len = SIZE - off < CHUNK ? SIZE - off : CHUNK;
        ck_assert_int_eq(mlreg_digest_buffer(&want, data + off, len), 0);
        ck_assert(mlreg_digest_equal(&want, &ix.chunks[i]));
    }
    ck_assert(mlreg_digest_equal(&got, &ix.file));
    mlreg_chunk_index_clear(&ix);
    push_reader_free(r);
}
END_TEST

START_TEST(test_reader_rewind_hands_bytes_out_again_hashing_them_once)
{
    push_reader *r = NULL;
    unsigned char buf[100000];
    mlreg_digest want, got;

    ck_assert_int_eq(mlreg_digest_buffer(&want, data, SIZE), 0);
    ck_assert_int_eq(push_reader_new(&r, fd, SIZE, PUSH_HASH_FILE, "f"), 0);
    /* 3 MiB + a bit in, then back to 1000 (another block) and to 2 MiB + 5 */
    ck_assert_int_eq(push_reader_skip(r, (3 << 20) + 77), 0);
    ck_assert_int_eq(push_reader_seek(r, 1000), 0);
    ck_assert_int_eq(push_reader_read(r, buf, sizeof(buf)), (int64_t)sizeof(buf));
    ck_assert_int_eq(memcmp(buf, data + 1000, sizeof(buf)), 0);
    ck_assert_int_eq(push_reader_seek(r, (2 << 20) + 5), 0);
    ck_assert_int_eq(push_reader_read(r, buf, 10), 10);
    ck_assert_int_eq(memcmp(buf, data + (2 << 20) + 5, 10), 0);
    ck_assert_uint_eq(push_reader_hashed(r), 4 << 20); /* two blocks of 2 MiB */
    ck_assert_int_eq(push_reader_skip(r, SIZE), 0);
    ck_assert_int_eq(push_reader_finish(&got, NULL, r), 0);
    ck_assert(mlreg_digest_equal(&want, &got));
    push_reader_free(r);
}
END_TEST

START_TEST(test_reader_finish_before_the_end_is_refused)
{
    push_reader *r = NULL;
    mlreg_digest got;

    ck_assert_int_eq(push_reader_new(&r, fd, SIZE, PUSH_HASH_FILE, "f"), 0);
    ck_assert_int_eq(push_reader_skip(r, SIZE / 2), 0);
    ck_assert_int_eq(push_reader_finish(&got, NULL, r), MLREG_EINVALID);
    push_reader_free(r);
}
END_TEST

START_TEST(test_reader_of_a_file_that_shrank_fails)
{
    push_reader *r = NULL;

    ck_assert_int_eq(push_reader_new(&r, fd, SIZE, PUSH_HASH_FILE | PUSH_HASH_CHUNKS, "f"), 0);
    ck_assert_int_eq(ftruncate(fd, SIZE / 3), 0);
    ck_assert_int_eq(push_reader_skip(r, SIZE), MLREG_EIO);
    ck_assert_ptr_nonnull(strstr(mlreg_error_last(), "shrank"));
    push_reader_free(r);
}
END_TEST

START_TEST(test_reader_seek_past_the_end_is_refused)
{
    push_reader *r = NULL;

    ck_assert_int_eq(push_reader_new(&r, fd, SIZE, PUSH_HASH_NONE, "f"), 0);
    ck_assert_int_eq(push_reader_seek(r, SIZE + 1), MLREG_EINVALID);
    ck_assert_int_eq(push_reader_skip(r, SIZE + 1), MLREG_EINVALID);
    push_reader_free(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("push_reader");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_reader_digest_equals_one_shot_hash_for_any_read_size);
    tcase_add_test(tc, test_reader_chunk_index_has_every_chunk_digest);
    tcase_add_test(tc, test_reader_rewind_hands_bytes_out_again_hashing_them_once);
    tcase_add_test(tc, test_reader_finish_before_the_end_is_refused);
    tcase_add_test(tc, test_reader_of_a_file_that_shrank_fails);
    tcase_add_test(tc, test_reader_seek_past_the_end_is_refused);
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
