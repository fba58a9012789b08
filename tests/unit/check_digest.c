/* check_digest.c: SHA-256 vectors, streaming, and the strict digest grammar. */
#include "mlreg/common.h"
#include "mlreg/digest.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EMPTY_SHA256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA256   "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/* FIPS 180-2 long vector: one million 'a'. */
#define MILLION_A_SHA256 "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
#define VALID_HEX        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void assert_digest_str(const mlreg_digest *d, const char *want)
{
    char got[MLREG_DIGEST_STRLEN + 1];

    mlreg_digest_format(got, d);
    ck_assert_str_eq(got, want);
}

/* Feeds @p len bytes in pieces whose sizes cycle through odd values, so
 * chunk boundaries fall everywhere relative to SHA-256's 64-byte blocks. */
static void stream_in_odd_pieces(mlreg_digest *out, const unsigned char *buf, size_t len)
{
    static const size_t pieces[] = {1, 63, 65, 7, 4093, 127, 65537, 3, 262147};
    mlreg_hasher *h = NULL;
    size_t off = 0, i = 0;

    ck_assert_int_eq(mlreg_hasher_new(&h), 0);
    while (off < len) {
        size_t n = pieces[i++ % (sizeof(pieces) / sizeof(pieces[0]))];
        if (n > len - off) n = len - off;
        ck_assert_int_eq(mlreg_hasher_update(h, buf + off, n), 0);
        off += n;
    }
    ck_assert_int_eq(mlreg_hasher_final(out, h), 0);
    mlreg_hasher_free(h);
}

START_TEST(test_digest_of_empty_input_is_the_known_vector)
{
    mlreg_digest d;
    mlreg_hasher *h = NULL;

    ck_assert_int_eq(mlreg_digest_buffer(&d, "", 0), 0);
    assert_digest_str(&d, EMPTY_SHA256);
    ck_assert_int_eq(mlreg_digest_buffer(&d, NULL, 0), 0);
    assert_digest_str(&d, EMPTY_SHA256);

    ck_assert_int_eq(mlreg_hasher_new(&h), 0);
    ck_assert_int_eq(mlreg_hasher_final(&d, h), 0);
    mlreg_hasher_free(h);
    assert_digest_str(&d, EMPTY_SHA256);
}
END_TEST

START_TEST(test_digest_of_abc_is_the_known_vector)
{
    mlreg_digest d;

    ck_assert_int_eq(mlreg_digest_buffer(&d, "abc", 3), 0);
    assert_digest_str(&d, ABC_SHA256);
}
END_TEST

START_TEST(test_digest_of_a_million_a_streamed_in_odd_pieces_is_the_known_vector)
{
    size_t len = 1000000;
    unsigned char *buf = malloc(len);
    mlreg_digest d;

    ck_assert_ptr_nonnull(buf);
    memset(buf, 'a', len);
    stream_in_odd_pieces(&d, buf, len);
    assert_digest_str(&d, MILLION_A_SHA256);
    free(buf);
}
END_TEST

START_TEST(test_digest_streamed_over_one_mebibyte_equals_one_shot_digest)
{
    size_t len = (1u << 20) + 4099, i;
    unsigned char *buf = malloc(len);
    uint32_t x = 2463534242u;
    mlreg_digest streamed, oneshot;

    ck_assert_ptr_nonnull(buf);
    for (i = 0; i < len; i++) { /* xorshift: deterministic, not constant */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
    stream_in_odd_pieces(&streamed, buf, len);
    ck_assert_int_eq(mlreg_digest_buffer(&oneshot, buf, len), 0);
    ck_assert(mlreg_digest_equal(&streamed, &oneshot));
    /* and a one-byte change changes the digest */
    buf[len / 2] ^= 1;
    ck_assert_int_eq(mlreg_digest_buffer(&oneshot, buf, len), 0);
    ck_assert(!mlreg_digest_equal(&streamed, &oneshot));
    free(buf);
}
END_TEST

START_TEST(test_digest_fd_hashes_a_file_larger_than_its_buffer)
{
    char path[] = "/tmp/mlreg-digest-XXXXXX";
    size_t len = 3 * 256 * 1024 + 17, i;
    unsigned char *buf = malloc(len);
    mlreg_digest from_fd, oneshot;
    uint64_t size = 0;
    int fd;

    ck_assert_ptr_nonnull(buf);
    for (i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 31 + (i >> 9));
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);

    ck_assert_int_eq(mlreg_digest_fd(&from_fd, &size, fd), 0);
    ck_assert_uint_eq(size, len);
    ck_assert_int_eq(mlreg_digest_buffer(&oneshot, buf, len), 0);
    ck_assert(mlreg_digest_equal(&from_fd, &oneshot));

    /* size_out may be NULL; at end of file the digest is of nothing */
    ck_assert_int_eq(mlreg_digest_fd(&from_fd, NULL, fd), 0);
    assert_digest_str(&from_fd, EMPTY_SHA256);
    close(fd);
    free(buf);
}
END_TEST

START_TEST(test_digest_fd_on_a_bad_descriptor_returns_eio)
{
    mlreg_digest d;

    ck_assert_int_eq(mlreg_digest_fd(&d, NULL, -1), MLREG_EIO);
    ck_assert_str_ne(mlreg_error_last(), "");
}
END_TEST

START_TEST(test_hasher_refuses_update_after_final)
{
    mlreg_hasher *h = NULL;
    mlreg_digest d;

    ck_assert_int_eq(mlreg_hasher_new(&h), 0);
    ck_assert_int_eq(mlreg_hasher_update(h, "abc", 3), 0);
    ck_assert_int_eq(mlreg_hasher_final(&d, h), 0);
    assert_digest_str(&d, ABC_SHA256);
    ck_assert_int_lt(mlreg_hasher_update(h, "x", 1), 0);
    ck_assert_int_lt(mlreg_hasher_final(&d, h), 0);
    mlreg_hasher_free(h);
    mlreg_hasher_free(NULL);
}
END_TEST

START_TEST(test_digest_parse_accepts_a_valid_digest_and_formats_it_back)
{
    mlreg_digest d, e;
    char hex[MLREG_DIGEST_HEXLEN + 1];

    ck_assert_int_eq(mlreg_digest_parse(&d, ABC_SHA256), 0);
    ck_assert_int_eq(mlreg_digest_buffer(&e, "abc", 3), 0);
    ck_assert(mlreg_digest_equal(&d, &e));
    assert_digest_str(&d, ABC_SHA256);
    mlreg_digest_hex(hex, &d);
    ck_assert_str_eq(hex, VALID_HEX);
    ck_assert_int_eq(mlreg_digest_parse_hex(&e, VALID_HEX, MLREG_DIGEST_HEXLEN), 0);
    ck_assert(mlreg_digest_equal(&d, &e));
}
END_TEST

START_TEST(test_digest_parse_n_reads_exactly_len_bytes_of_an_unterminated_buffer)
{
    char buf[MLREG_DIGEST_STRLEN + 8];
    mlreg_digest d;

    memcpy(buf, ABC_SHA256, MLREG_DIGEST_STRLEN);
    memcpy(buf + MLREG_DIGEST_STRLEN, "trailer", 7); /* no NUL anywhere */
    ck_assert_int_eq(mlreg_digest_parse_n(&d, buf, MLREG_DIGEST_STRLEN), 0);
    assert_digest_str(&d, ABC_SHA256);
    ck_assert_int_eq(mlreg_digest_parse_n(&d, buf, MLREG_DIGEST_STRLEN + 7), MLREG_EINVALID);
}
END_TEST

START_TEST(test_digest_parse_rejects_malformed_strings)
{
    static const char *const bad[] = {
        "",
        "sha256:",
        "sha256",
        /* uppercase hex */
        "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
        "sha256:Ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        /* uppercase algorithm */
        "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        /* other algorithms */
        "sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "sha512:"
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff83"
        "18d2877eec2f63b931bd47417a81a538327af927da3e",
        "sha1:a9993e364706816aba3e25717850c26c9cd0d89d",
        /* 63 and 65 hex digits */
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
        /* whitespace */
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        " sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad ",
        "sha256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
        /* non-hex letter */
        "sha256:ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        /* bare hex without the algorithm */
        VALID_HEX,
        "sha256:sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mlreg_digest d;
        mlreg_error_clear();
        ck_assert_msg(mlreg_digest_parse(&d, bad[i]) == MLREG_EINVALID, "accepted \"%s\"", bad[i]);
        ck_assert_msg(mlreg_error_last()[0] != '\0', "no message for \"%s\"", bad[i]);
    }
    {
        mlreg_digest d;
        ck_assert_int_eq(mlreg_digest_parse(&d, NULL), MLREG_EINVALID);
    }
}
END_TEST

START_TEST(test_digest_parse_n_rejects_an_embedded_nul)
{
    char buf[MLREG_DIGEST_STRLEN + 1];
    mlreg_digest d;
    size_t pos[] = {3, 7, 20, MLREG_DIGEST_STRLEN - 1};
    size_t i;

    for (i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
        memcpy(buf, ABC_SHA256, MLREG_DIGEST_STRLEN + 1);
        buf[pos[i]] = '\0';
        ck_assert_msg(mlreg_digest_parse_n(&d, buf, MLREG_DIGEST_STRLEN) == MLREG_EINVALID,
                      "accepted NUL at %zu", pos[i]);
    }
}
END_TEST

START_TEST(test_digest_parse_hex_rejects_wrong_length_and_uppercase)
{
    mlreg_digest d;
    char up[MLREG_DIGEST_HEXLEN + 1];

    ck_assert_int_eq(mlreg_digest_parse_hex(&d, VALID_HEX, 63), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_digest_parse_hex(&d, VALID_HEX, 0), MLREG_EINVALID);
    memcpy(up, VALID_HEX, sizeof(up));
    up[10] = 'F';
    ck_assert_int_eq(mlreg_digest_parse_hex(&d, up, MLREG_DIGEST_HEXLEN), MLREG_EINVALID);
}
END_TEST

START_TEST(test_digest_equal_tells_different_digests_apart)
{
    mlreg_digest a, b;

    ck_assert_int_eq(mlreg_digest_buffer(&a, "abc", 3), 0);
    ck_assert_int_eq(mlreg_digest_buffer(&b, "abd", 3), 0);
    ck_assert(mlreg_digest_equal(&a, &a));
    ck_assert(!mlreg_digest_equal(&a, &b));
}
END_TEST

static Suite *digest_suite(void)
{
    Suite *s = suite_create("digest");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_digest_of_empty_input_is_the_known_vector);
    tcase_add_test(tc, test_digest_of_abc_is_the_known_vector);
    tcase_add_test(tc, test_digest_of_a_million_a_streamed_in_odd_pieces_is_the_known_vector);
    tcase_add_test(tc, test_digest_streamed_over_one_mebibyte_equals_one_shot_digest);
    tcase_add_test(tc, test_digest_fd_hashes_a_file_larger_than_its_buffer);
    tcase_add_test(tc, test_digest_fd_on_a_bad_descriptor_returns_eio);
    tcase_add_test(tc, test_hasher_refuses_update_after_final);
    tcase_add_test(tc, test_digest_parse_accepts_a_valid_digest_and_formats_it_back);
    tcase_add_test(tc, test_digest_parse_n_reads_exactly_len_bytes_of_an_unterminated_buffer);
    tcase_add_test(tc, test_digest_parse_rejects_malformed_strings);
    tcase_add_test(tc, test_digest_parse_n_rejects_an_embedded_nul);
    tcase_add_test(tc, test_digest_parse_hex_rejects_wrong_length_and_uppercase);
    tcase_add_test(tc, test_digest_equal_tells_different_digests_apart);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(digest_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
