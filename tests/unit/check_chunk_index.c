/* check_chunk_index.c: the chunk index of a large file
 * (include/mlreg/chunk_index.h): the builder against per-chunk SHA-256
 * computed directly, at every boundary case and fed in odd pieces; the exact
 * serialized bytes; parse(serialize(x)) == x; and the parser's refusals of
 * malformed, inconsistent and hostile indexes. */
#include "mlreg/chunk_index.h"
#include "mlreg/common.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CS    ((uint64_t)64 << 10) /* the smallest chunk size keeps buffers small */
#define HEX_A "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
#define HEX_B "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
#define D_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static unsigned char *pattern(size_t len)
{
    unsigned char *b = malloc(len ? len : 1);
    uint32_t x = 2463534242u;
    size_t i;

    ck_assert_ptr_nonnull(b);
    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    return b;
}

/* Builds the index of @p len pattern bytes fed in odd pieces and checks every
 * chunk against a one-shot digest of its range. */
static void check_build(size_t len)
{
    static const size_t pieces[] = {1, 63, 65537, 7, 4093, 131072, 3, 262147};
    unsigned char *buf = pattern(len);
    mlreg_chunk_builder *b = NULL;
    mlreg_chunk_index ix;
    mlreg_digest file, want;
    size_t off = 0, i = 0;

    ck_assert_int_eq(mlreg_digest_buffer(&file, buf, len), 0);
    ck_assert_int_eq(mlreg_chunk_builder_new(&b, CS), 0);
    while (off < len) {
        size_t n = pieces[i++ % (sizeof(pieces) / sizeof(pieces[0]))];
        if (n > len - off) n = len - off;
        ck_assert_int_eq(mlreg_chunk_builder_update(b, buf + off, n), 0);
        off += n;
    }
    ck_assert_int_eq(mlreg_chunk_builder_finish(&ix, b, &file), 0);
    mlreg_chunk_builder_free(b);
    ck_assert_uint_eq(ix.size, len);
    ck_assert_uint_eq(ix.chunk_size, CS);
    ck_assert_uint_eq(ix.nchunks, (len + CS - 1) / CS);
    ck_assert(mlreg_digest_equal(&ix.file, &file));
    for (i = 0; i < ix.nchunks; i++) {
        uint64_t o = mlreg_chunk_index_offset(&ix, i), n = mlreg_chunk_index_len(&ix, i);

        ck_assert_uint_eq(o, i * CS);
        ck_assert_uint_le(o + n, len);
        ck_assert_uint_gt(n, 0);
        ck_assert_int_eq(mlreg_digest_buffer(&want, buf + o, (size_t)n), 0);
        ck_assert_msg(mlreg_digest_equal(&ix.chunks[i], &want), "chunk %zu of %zu bytes", i, len);
    }
    if (ix.nchunks > 0)
        ck_assert_uint_eq(mlreg_chunk_index_offset(&ix, ix.nchunks - 1) +
                              mlreg_chunk_index_len(&ix, ix.nchunks - 1),
                          len);
    mlreg_chunk_index_clear(&ix);
    free(buf);
}

START_TEST(test_builder_matches_direct_chunk_digests_at_every_boundary)
{
    check_build(0);
    check_build(1);
    check_build(CS - 1);
    check_build(CS);
    check_build(CS + 1);
    check_build(3 * CS + 5);
    check_build(4 * CS);
}
END_TEST

START_TEST(test_builder_refuses_bad_chunk_sizes_and_use_after_finish)
{
    mlreg_chunk_builder *b = NULL;
    mlreg_chunk_index ix;
    mlreg_digest d;

    ck_assert_int_eq(mlreg_chunk_builder_new(&b, 0), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_chunk_builder_new(&b, CS + 1), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_chunk_builder_new(&b, CS / 2), MLREG_EINVALID);
    ck_assert_int_eq(mlreg_chunk_builder_new(&b, MLREG_CHUNK_SIZE_MAX * 2), MLREG_EINVALID);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(mlreg_chunk_builder_new(&b, MLREG_CHUNK_SIZE_DEFAULT), 0);
    ck_assert_int_eq(mlreg_digest_parse(&d, D_ABC), 0);
    ck_assert_int_eq(mlreg_chunk_builder_update(b, "abc", 3), 0);
    ck_assert_int_eq(mlreg_chunk_builder_finish(&ix, b, &d), 0);
    ck_assert_uint_eq(ix.nchunks, 1);
    ck_assert_int_eq(mlreg_chunk_builder_update(b, "x", 1), MLREG_EINVALID);
    mlreg_chunk_index_clear(&ix);
    ck_assert_int_eq(mlreg_chunk_builder_finish(&ix, b, &d), MLREG_EINVALID);
    mlreg_chunk_builder_free(b);
    mlreg_chunk_builder_free(NULL);
    mlreg_chunk_index_clear(NULL);
}
END_TEST

/* A two-chunk index of CS + 1 bytes with chunk digests sha256("a"), sha256("b")
 * (values, not the real chunks: the parser checks shape, not content). */
static void two_chunks(mlreg_chunk_index *ix, mlreg_digest c[2])
{
    memset(ix, 0, sizeof(*ix));
    ck_assert_int_eq(mlreg_digest_parse(&ix->file, D_ABC), 0);
    ck_assert_int_eq(mlreg_digest_parse_hex(&c[0], HEX_A, 64), 0);
    ck_assert_int_eq(mlreg_digest_parse_hex(&c[1], HEX_B, 64), 0);
    ix->size = CS + 1;
    ix->chunk_size = CS;
    ix->nchunks = 2;
    ix->chunks = c;
}

START_TEST(test_serialize_writes_the_documented_bytes_and_parses_back)
{
    static const char want[] =
        "{\"mediaType\":\"application/vnd.mlreg.chunk-index.v1+json\",\"digest\":\"" D_ABC
        "\",\"size\":65537,\"chunkSize\":65536,\"chunks\":[\"" HEX_A "\",\"" HEX_B "\"]}";
    mlreg_digest c[2];
    mlreg_chunk_index ix, back;
    char *out = NULL;
    size_t len = 0, i;

    two_chunks(&ix, c);
    ck_assert_int_eq(mlreg_chunk_index_serialize(&out, &len, &ix), 0);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert(memcmp(out, want, len) == 0);
    ck_assert_int_eq(mlreg_chunk_index_parse(&back, out, len), 0);
    ck_assert(mlreg_digest_equal(&back.file, &ix.file));
    ck_assert_uint_eq(back.size, ix.size);
    ck_assert_uint_eq(back.chunk_size, ix.chunk_size);
    ck_assert_uint_eq(back.nchunks, 2);
    for (i = 0; i < 2; i++)
        ck_assert(mlreg_digest_equal(&back.chunks[i], &c[i]));
    mlreg_chunk_index_clear(&back);
    free(out);

    /* an empty file: no chunks */
    ix.size = 0;
    ix.nchunks = 0;
    ix.chunks = NULL;
    ck_assert_int_eq(mlreg_chunk_index_serialize(&out, &len, &ix), 0);
    ck_assert_int_eq(mlreg_chunk_index_parse(&back, out, len), 0);
    ck_assert_uint_eq(back.nchunks, 0);
    ck_assert_ptr_null(back.chunks);
    mlreg_chunk_index_clear(&back);
    free(out);
}
END_TEST

START_TEST(test_serialize_refuses_an_index_whose_chunks_do_not_cover_the_size)
{
    mlreg_digest c[2];
    mlreg_chunk_index ix;
    char *out = NULL;
    size_t len = 0;

    two_chunks(&ix, c);
    ix.size = 2 * CS + 1;
    ck_assert_int_eq(mlreg_chunk_index_serialize(&out, &len, &ix), MLREG_EINVALID);
    ck_assert_ptr_null(out);
    two_chunks(&ix, c);
    ix.chunk_size = 3000;
    ck_assert_int_eq(mlreg_chunk_index_serialize(&out, &len, &ix), MLREG_EINVALID);
}
END_TEST

static void refused(const char *body, int code, const char *what)
{
    mlreg_chunk_index ix;
    int rc = mlreg_chunk_index_parse(&ix, body, strlen(body));

    ck_assert_msg(rc == code, "%s: got %d, want %d (%s)", what, rc, code, mlreg_error_last());
    ck_assert_ptr_null(ix.chunks);
    ck_assert_uint_eq(ix.nchunks, 0);
    ck_assert_msg(strstr(mlreg_error_last(), "chunk index") != NULL, "%s: message '%s'", what,
                  mlreg_error_last());
}

#define MT "\"mediaType\":\"application/vnd.mlreg.chunk-index.v1+json\""
#define DG "\"digest\":\"" D_ABC "\""

START_TEST(test_parse_refuses_malformed_and_hostile_indexes)
{
    char *big;
    mlreg_chunk_index ix;

    refused("", MLREG_EINVALID, "empty");
    refused("[]", MLREG_EINVALID, "array");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":65536,\"chunks\":[\"" HEX_A "\"]",
            MLREG_EINVALID, "truncated");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":65536,\"chunks\":[\"" HEX_A "\"],\"x\":1}",
            MLREG_EINVALID, "unknown key");
    refused("{" MT "," MT "," DG ",\"size\":1,\"chunkSize\":65536,\"chunks\":[\"" HEX_A "\"]}",
            MLREG_EINVALID, "duplicate key");
    refused("{" DG ",\"size\":1,\"chunkSize\":65536,\"chunks\":[\"" HEX_A "\"]}", MLREG_EINVALID,
            "no mediaType");
    refused("{\"mediaType\":\"application/json\"," DG
            ",\"size\":1,\"chunkSize\":65536,\"chunks\":[\"" HEX_A "\"]}",
            MLREG_EINVALID, "wrong mediaType");
    refused("{" MT ",\"digest\":\"sha256:ABC\",\"size\":1,\"chunkSize\":65536,\"chunks\":[\"" HEX_A
            "\"]}",
            MLREG_EINVALID, "bad digest");
    refused("{" MT "," DG ",\"size\":-1,\"chunkSize\":65536,\"chunks\":[]}", MLREG_EINVALID,
            "negative size");
    refused("{" MT "," DG ",\"size\":\"1\",\"chunkSize\":65536,\"chunks\":[\"" HEX_A "\"]}",
            MLREG_EINVALID, "size as a string");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":1,\"chunks\":[\"" HEX_A "\"]}", MLREG_EINVALID,
            "chunkSize 1");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":100000,\"chunks\":[\"" HEX_A "\"]}",
            MLREG_EINVALID, "chunkSize not a power of two");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":2147483648,\"chunks\":[\"" HEX_A "\"]}",
            MLREG_EINVALID, "chunkSize over the maximum");
    refused("{" MT "," DG ",\"size\":65537,\"chunkSize\":65536,\"chunks\":[\"" HEX_A "\"]}",
            MLREG_EINVALID, "one chunk short");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":65536,\"chunks\":[\"" HEX_A "\",\"" HEX_B
            "\"]}",
            MLREG_EINVALID, "one chunk too many");
    refused("{" MT "," DG ",\"size\":9223372036854775807,\"chunkSize\":65536,\"chunks\":[]}",
            MLREG_EINVALID, "huge size, no chunks");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":65536,\"chunks\":[\"" HEX_A "0\"]}",
            MLREG_EINVALID, "65 hex digits");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":65536,\"chunks\":["
            "\"CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB\"]}",
            MLREG_EINVALID, "uppercase hex");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":65536,\"chunks\":[7]}", MLREG_EINVALID,
            "a number for a chunk");
    refused("{" MT "," DG ",\"size\":1,\"chunkSize\":65536,\"chunks\":{}}", MLREG_EINVALID,
            "chunks an object");

    big = calloc(1, MLREG_CHUNK_INDEX_MAX_BYTES + 2);
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(mlreg_chunk_index_parse(&ix, big, MLREG_CHUNK_INDEX_MAX_BYTES + 1),
                     MLREG_ETOOBIG);
    ck_assert_ptr_null(ix.chunks);
    free(big);
}
END_TEST

static Suite *chunk_index_suite(void)
{
    Suite *s = suite_create("chunk_index");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_builder_matches_direct_chunk_digests_at_every_boundary);
    tcase_add_test(tc, test_builder_refuses_bad_chunk_sizes_and_use_after_finish);
    tcase_add_test(tc, test_serialize_writes_the_documented_bytes_and_parses_back);
    tcase_add_test(tc, test_serialize_refuses_an_index_whose_chunks_do_not_cover_the_size);
    tcase_add_test(tc, test_parse_refuses_malformed_and_hostile_indexes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(chunk_index_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
