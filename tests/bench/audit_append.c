/* audit_append.c: the C half of tests/bench/audit.sh.
 *
 *   audit_append commit PLAIN_DIR AUDIT_DIR N
 *       times N durable write transactions on a fresh meta env in each
 *       directory (which must not exist yet): in AUDIT_DIR one
 *       mlreg_audit_append_txn of a promote entry, then in PLAIN_DIR one
 *       mlreg_meta_put under a be64 key into "images" of a value as long as
 *       that entry (the reference: a plain LMDB write of the same size).
 *       Each transaction is committed on its own, so every one pays LMDB's
 *       fsyncs. Prints one line: "PLAIN_SECONDS AUDIT_SECONDS ENTRY_BYTES".
 *
 *   audit_append fill META_DIR N
 *       appends N promote entries to the log in META_DIR (DATA/meta of a
 *       data dir `mlreg serve --data DATA` opens), many per transaction,
 *       for the read-side measurements.
 *
 * Exit 0 done, 1 failure (message on stderr), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlreg/audit.h"
#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/meta.h"
#include "mlreg/tables.h"

#define FILL_BATCH 5000 /* entries per transaction when filling */

static const char usage_text[] = "usage: audit_append commit PLAIN_DIR AUDIT_DIR N\n"
                                 "       audit_append fill META_DIR N\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_u64(uint64_t *out, const char *s)
{
    char *end = NULL;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9') return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* The gate table of a typical promotion to production, as the promotion API
 * answers it (two metric rules, reals already strings). New reference. */
static json_t *sample_gates(void)
{
    return json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s},"
                     " {s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}]",
                     "rule", "accuracy >= 0.9", "type", "min", "metric", "accuracy", "threshold",
                     "0.9", "candidate", "0.931", "baseline_version", "1.4.1", "baseline", "0.925",
                     "delta", "0.006", "passed", 1, "detail", "0.931 >= 0.9", "rule",
                     "latency_p99_ms <= baseline + 5", "type", "max_regression", "metric",
                     "latency_p99_ms", "threshold", "5", "candidate", "41.2", "baseline_version",
                     "1.4.1", "baseline", "39.8", "delta", "1.4", "passed", 1, "detail",
                     "1.4 <= 5");
}

/* Fills @p ev with a promote of release 1.5.@p i, writing the version into
 * @p version; everything @p ev points to must outlive the append. */
static void sample_event(mlreg_audit_event *ev, char *version, size_t vcap, uint64_t i,
                         const json_t *gates, const json_t *approvers, const json_t *details)
{
    memset(ev, 0, sizeof(*ev));
    snprintf(version, vcap, "1.5.%" PRIu64, i);
    ev->actor = "ci-release";
    ev->action = MLREG_AUDIT_PROMOTE;
    ev->result = MLREG_AUDIT_OK;
    ev->model = "team/fraud-detector";
    ev->version = version;
    ev->digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    ev->stage = "production";
    ev->approvers = approvers;
    ev->gates = gates;
    ev->details = details;
}

static int fail(const char *what, int error)
{
    const char *msg = mlreg_error_last();

    fprintf(stderr, "audit_append: %s: %s\n", what, msg[0] ? msg : mlreg_strerror(error));
    return 1;
}

/* N commits of one @p vlen-byte put each into a fresh env in @p dir. */
static int time_plain(double *out, const char *dir, uint64_t n, size_t vlen)
{
    int error = 0;
    mlreg_meta *meta = NULL;
    mlreg_meta_txn *txn = NULL;
    unsigned char key[8], *value = malloc(vlen < sizeof(key) ? sizeof(key) : vlen);
    double t0;

    if (value == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    memset(value, 'x', vlen);
    if ((error = mlreg_tables_open(&meta, dir, 0)) < 0) goto done;
    t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        mlreg_be64_put(key, i);
        memcpy(value, key, sizeof(key));
        if ((error = mlreg_meta_txn_begin(&txn, meta, 1)) < 0 ||
            (error = mlreg_meta_put(txn, MLREG_DB_IMAGES, key, sizeof(key), value, vlen, 1)) < 0)
            goto done;
        error = mlreg_meta_txn_commit(txn);
        txn = NULL;
        if (error < 0) goto done;
    }
    *out = now_s() - t0;

done:
    mlreg_meta_txn_abort(txn);
    mlreg_meta_close(meta);
    free(value);
    return error;
}

/* Appends @p n promote entries into a fresh or existing env in @p dir,
 * @p batch per transaction; *secs_out (may be NULL) the time taken,
 * *entry_len_out (may be NULL) the length of entry 0. */
static int append_entries(double *secs_out, size_t *entry_len_out, const char *dir, uint64_t n,
                          uint64_t batch)
{
    int error = 0;
    mlreg_meta *meta = NULL;
    mlreg_meta_txn *txn = NULL;
    json_t *gates = sample_gates();
    json_t *approvers = json_pack("[s, s]", "alice", "bob");
    json_t *details = json_pack("{s:s, s:{s:s, s:s}}", "from_stage", "staging", "baseline",
                                "version", "1.4.1", "digest",
                                "sha256:"
                                "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752");
    mlreg_audit_event ev;
    char version[32], *entry = NULL;
    size_t entry_len = 0;
    double t0;

    if (gates == NULL || approvers == NULL || details == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building the sample event");
        goto done;
    }
    if ((error = mlreg_tables_open(&meta, dir, 0)) < 0) goto done;
    t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        if (txn == NULL && (error = mlreg_meta_txn_begin(&txn, meta, 1)) < 0) goto done;
        sample_event(&ev, version, sizeof(version), i, gates, approvers, details);
        if ((error = mlreg_audit_append_txn(NULL, txn, &ev)) < 0) goto done;
        if ((i + 1) % batch == 0 || i + 1 == n) {
            error = mlreg_meta_txn_commit(txn);
            txn = NULL;
            if (error < 0) goto done;
        }
    }
    if (secs_out) *secs_out = now_s() - t0;
    if (entry_len_out) {
        if ((error = mlreg_meta_txn_begin(&txn, meta, 0)) < 0 ||
            (error = mlreg_audit_entry_txn(&entry, &entry_len, txn, 0)) < 0)
            goto done;
        *entry_len_out = entry_len;
    }

done:
    mlreg_meta_txn_abort(txn);
    mlreg_meta_close(meta);
    free(entry);
    json_decref(gates);
    json_decref(approvers);
    json_decref(details);
    return error;
}

int main(int argc, char **argv)
{
    uint64_t n = 0;
    double plain = 0, audit = 0;
    size_t entry_len = 0;
    int error;

    if (argc == 5 && !strcmp(argv[1], "commit") && parse_u64(&n, argv[4]) == 0) {
        if ((error = append_entries(&audit, &entry_len, argv[3], n, 1)) < 0)
            return fail("audit appends", error);
        if ((error = time_plain(&plain, argv[2], n, entry_len)) < 0)
            return fail("plain puts", error);
        printf("%.6f %.6f %zu\n", plain, audit, entry_len);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "fill") && parse_u64(&n, argv[3]) == 0) {
        if ((error = append_entries(NULL, NULL, argv[2], n, FILL_BATCH)) < 0)
            return fail("filling the log", error);
        return 0;
    }
    fputs(usage_text, stderr);
    return 2;
}
