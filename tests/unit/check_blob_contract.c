/* check_blob_contract.c: the backend contract (blob_contract.inc) against the
 * fs backend. check_s3_backend.c runs the same tests against s3. */
#include "mlreg/blob.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/sys/blob_backend.h"

#include "helpers.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static mlreg_blob_backend *contract_backend_new(void)
{
    mlreg_blob_backend *b = NULL;

    th_tmpdir(root, sizeof(root), "blob-contract");
    ck_assert_int_eq(mlreg_blob_backend_fs_new(&b, root), 0);
    ck_assert(b->presign == NULL); /* fs has no URLs of its own */
    return b;
}

static void contract_backend_destroy(void)
{
    th_rm_rf(root);
}

/* Files left in blobs/tmp. */
static int contract_leftovers(void)
{
    char path[4096];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof(path), "%s/blobs/tmp", root);
    ck_assert_ptr_nonnull(d = opendir(path));
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void contract_damage(const mlreg_digest *d, const void *data, size_t len)
{
    char hex[MLREG_DIGEST_HEXLEN + 1], path[4096];
    FILE *f;

    mlreg_digest_hex(hex, d);
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", root, hex, hex);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

#include "blob_contract.inc"

/* fs keeps the quarantined bytes in the blob root, private like the blobs */
START_TEST(fs_quarantine_keeps_the_bytes_private_in_the_blob_root)
{
    mlreg_digest d;
    char name[MLREG_BLOB_QUARANTINE_NAME_MAX], path[4096], buf[16];
    struct stat st;
    FILE *f;

    ck_assert_int_eq(put_bytes(&d, "kept aside", 10), 0);
    ck_assert_int_eq(mlreg_blobstore_quarantine(name, store, &d, 42), 0);
    snprintf(path, sizeof(path), "%s/blobs/quarantine", root);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/%s", root, name);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_ptr_nonnull(f = fopen(path, "rb"));
    ck_assert_uint_eq(fread(buf, 1, sizeof(buf), f), 10);
    fclose(f);
    ck_assert(memcmp(buf, "kept aside", 10) == 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("blob_contract");
    TCase *tc = tcase_create("fs");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 120);
    contract_add_tests(tc);
    tcase_add_test(tc, fs_quarantine_keeps_the_bytes_private_in_the_blob_root);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
