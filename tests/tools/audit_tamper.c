/* audit_tamper.c: the attacker of the audit log tests. It edits the LMDB
 * file of a stopped server directly, with liblmdb and nothing of libmlreg,
 * the way someone with write access to DATA_DIR/meta would:
 *
 *   audit_tamper DATA_DIR/meta edit SEQ FROM TO   replace the first FROM in entry SEQ by TO
 *   audit_tamper DATA_DIR/meta delete SEQ         delete entry SEQ's key (nothing else)
 *   audit_tamper DATA_DIR/meta swap A B           swap the values of entries A and B
 *   audit_tamper DATA_DIR/meta truncate N         drop entries >= N and every stored
 *                                                 subtree reaching past N; audit_size = N
 *   audit_tamper DATA_DIR/meta size               print audit_size
 *   audit_tamper DATA_DIR/meta get SEQ            print entry SEQ's bytes
 *
 * The layout is the one of include/mlreg/audit.h: "audit" maps be64 seq to
 * the entry bytes, "audit_tree" maps level byte ‖ be64 index to a subtree
 * hash, "meta" maps "audit_size" to a be64 count. The databases are opened
 * without MDB_CREATE: a data dir without an audit log is an error here.
 * Exit 0 done, 1 failure (missing entry, FROM not found, LMDB error),
 * 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE_KEY "audit_size"

static const char usage_text[] =
    "usage: audit_tamper META_DIR edit SEQ FROM TO | delete SEQ | swap A B |\n"
    "                             truncate N | size | get SEQ\n";

static void be64_put(unsigned char out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t be64_get(const unsigned char in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

/* Parses a decimal uint64; 0 or -1 when @p s is not one. */
static int parse_u64(uint64_t *out, const char *s)
{
    char *end = NULL;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9') return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') return -1;
    *out = (uint64_t)v;
    return 0;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "audit_tamper: %s: %s\n", what, rc ? mdb_strerror(rc) : "failed");
    return 1;
}

typedef struct {
    MDB_txn *txn;
    MDB_dbi audit, tree, meta;
} tamper;

/* Entry @p seq as a malloc'd copy in *out (caller frees); 1 when missing. */
static int entry_get(unsigned char **out, size_t *len_out, tamper *t, uint64_t seq)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    be64_put(kb, seq);
    if ((rc = mdb_get(t->txn, t->audit, &k, &v)) != 0) {
        fprintf(stderr, "audit_tamper: entry %" PRIu64 ": %s\n", seq, mdb_strerror(rc));
        return 1;
    }
    if ((*out = malloc(v.mv_size + 1)) == NULL) return fail("out of memory", 0);
    memcpy(*out, v.mv_data, v.mv_size);
    (*out)[v.mv_size] = '\0';
    *len_out = v.mv_size;
    return 0;
}

static int entry_put(tamper *t, uint64_t seq, const void *val, size_t len)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v = {len, (void *)val};
    int rc;

    be64_put(kb, seq);
    if ((rc = mdb_put(t->txn, t->audit, &k, &v, 0)) != 0) return fail("put entry", rc);
    return 0;
}

static int cmd_edit(tamper *t, uint64_t seq, const char *from, const char *to)
{
    unsigned char *val = NULL, *nv = NULL, *hit = NULL;
    size_t len = 0, fl = strlen(from), tl = strlen(to), off;
    int error = 0;

    if ((error = entry_get(&val, &len, t, seq)) != 0) goto done;
    if (fl > 0 && fl <= len) hit = memmem(val, len, from, fl);
    if (hit == NULL) {
        fprintf(stderr, "audit_tamper: '%s' not in entry %" PRIu64 "\n", from, seq);
        error = 1;
        goto done;
    }
    off = (size_t)(hit - val);
    if ((nv = malloc(len - fl + tl + 1)) == NULL) {
        error = fail("out of memory", 0);
        goto done;
    }
    memcpy(nv, val, off);
    memcpy(nv + off, to, tl);
    memcpy(nv + off + tl, val + off + fl, len - off - fl);
    error = entry_put(t, seq, nv, len - fl + tl);
done:
    free(val);
    free(nv);
    return error;
}

static int cmd_delete(tamper *t, uint64_t seq)
{
    unsigned char kb[8];
    MDB_val k = {8, kb};
    int rc;

    be64_put(kb, seq);
    if ((rc = mdb_del(t->txn, t->audit, &k, NULL)) != 0) return fail("delete entry", rc);
    return 0;
}

static int cmd_swap(tamper *t, uint64_t a, uint64_t b)
{
    unsigned char *va = NULL, *vb = NULL;
    size_t la = 0, lb = 0;
    int error = 0;

    if ((error = entry_get(&va, &la, t, a)) != 0 || (error = entry_get(&vb, &lb, t, b)) != 0 ||
        (error = entry_put(t, a, vb, lb)) != 0 || (error = entry_put(t, b, va, la)) != 0)
        goto done;
done:
    free(va);
    free(vb);
    return error;
}

/* Collects the keys of @p dbi that @p doomed picks (the cursor only reads),
 * then deletes them with mdb_del: no reliance on where a cursor stands
 * after mdb_cursor_del. *count_out receives how many went. */
static int drop_keys(uint64_t *count_out, tamper *t, MDB_dbi dbi, uint64_t n,
                     int (*doomed)(const MDB_val *key, uint64_t n))
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    unsigned char(*keys)[16] = NULL;
    size_t nkeys = 0, cap = 0;
    int rc, error = 0;

    if ((rc = mdb_cursor_open(t->txn, dbi, &cur)) != 0) {
        error = fail("cursor", rc);
        goto done;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size > 15 || !doomed(&k, n)) continue;
        if (nkeys == cap) {
            void *grown = realloc(keys, (cap = cap ? 2 * cap : 64) * sizeof(*keys));
            if (grown == NULL) {
                error = fail("out of memory", 0);
                goto done;
            }
            keys = grown;
        }
        keys[nkeys][0] = (unsigned char)k.mv_size;
        memcpy(keys[nkeys] + 1, k.mv_data, k.mv_size);
        nkeys++;
    }
    if (rc != MDB_NOTFOUND) {
        error = fail("walk", rc);
        goto done;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    for (size_t i = 0; i < nkeys; i++) {
        MDB_val dk = {keys[i][0], keys[i] + 1};
        if ((rc = mdb_del(t->txn, dbi, &dk, NULL)) != 0) {
            error = fail("delete", rc);
            goto done;
        }
    }
    *count_out = nkeys;
done:
    if (cur != NULL) mdb_cursor_close(cur);
    free(keys);
    return error;
}

static int entry_doomed(const MDB_val *key, uint64_t n)
{
    return key->mv_size == 8 && be64_get(key->mv_data) >= n;
}

/* Node (level L, index i) covers leaves [i·2^L, (i+1)·2^L): it reaches past
 * n when (i+1)·2^L > n, that is when i >= floor(n / 2^L). */
static int node_doomed(const MDB_val *key, uint64_t n)
{
    const unsigned char *p = key->mv_data;

    if (key->mv_size != 9 || p[0] >= 64) return 0;
    return be64_get(p + 1) >= (n >> p[0]);
}

/* Deletes every entry >= n and every audit_tree node reaching past n, then
 * sets audit_size to n. */
static int cmd_truncate(tamper *t, uint64_t n)
{
    MDB_val k = {sizeof(SIZE_KEY) - 1, (void *)SIZE_KEY}, v;
    unsigned char sb[8];
    uint64_t dropped = 0, nodes = 0;
    int rc, error = 0;

    if ((error = drop_keys(&dropped, t, t->audit, n, entry_doomed)) != 0 ||
        (error = drop_keys(&nodes, t, t->tree, n, node_doomed)) != 0)
        return error;
    be64_put(sb, n);
    v.mv_size = 8;
    v.mv_data = sb;
    if ((rc = mdb_put(t->txn, t->meta, &k, &v, 0)) != 0) return fail("put audit_size", rc);
    fprintf(stderr, "audit_tamper: dropped %" PRIu64 " entries and %" PRIu64 " tree nodes\n",
            dropped, nodes);
    return 0;
}

static int cmd_size(tamper *t)
{
    MDB_val k = {sizeof(SIZE_KEY) - 1, (void *)SIZE_KEY}, v;
    int rc;

    if ((rc = mdb_get(t->txn, t->meta, &k, &v)) != 0) return fail("audit_size", rc);
    if (v.mv_size != 8) return fail("audit_size is not 8 bytes", 0);
    printf("%" PRIu64 "\n", be64_get(v.mv_data));
    return 0;
}

static int cmd_get(tamper *t, uint64_t seq)
{
    unsigned char *val = NULL;
    size_t len = 0;
    int error;

    if ((error = entry_get(&val, &len, t, seq)) == 0) {
        fwrite(val, 1, len, stdout);
        putchar('\n');
    }
    free(val);
    return error;
}

int main(int argc, char **argv)
{
    MDB_env *env = NULL;
    tamper t = {0};
    uint64_t a = 0, b = 0;
    const char *cmd;
    int rc, error = 0, readonly;

    if (argc < 3) goto usage;
    cmd = argv[2];
    if ((!strcmp(cmd, "edit") && (argc != 6 || parse_u64(&a, argv[3]))) ||
        (!strcmp(cmd, "delete") && (argc != 4 || parse_u64(&a, argv[3]))) ||
        (!strcmp(cmd, "swap") && (argc != 5 || parse_u64(&a, argv[3]) || parse_u64(&b, argv[4]))) ||
        (!strcmp(cmd, "truncate") && (argc != 4 || parse_u64(&a, argv[3]))) ||
        (!strcmp(cmd, "get") && (argc != 4 || parse_u64(&a, argv[3]))) ||
        (!strcmp(cmd, "size") && argc != 3))
        goto usage;
    if (strcmp(cmd, "edit") && strcmp(cmd, "delete") && strcmp(cmd, "swap") &&
        strcmp(cmd, "truncate") && strcmp(cmd, "size") && strcmp(cmd, "get"))
        goto usage;
    readonly = !strcmp(cmd, "size") || !strcmp(cmd, "get");

    if ((rc = mdb_env_create(&env)) != 0) {
        env = NULL;
        error = fail("mdb_env_create", rc);
        goto done;
    }
    if ((rc = mdb_env_set_maxdbs(env, 64)) != 0 ||
        (rc = mdb_env_set_mapsize(env, (size_t)1 << 30)) != 0 ||
        (rc = mdb_env_open(env, argv[1], readonly ? MDB_RDONLY : 0, 0600)) != 0) {
        fprintf(stderr, "audit_tamper: open %s: %s\n", argv[1], mdb_strerror(rc));
        error = 1;
        goto done;
    }
    if ((rc = mdb_txn_begin(env, NULL, readonly ? MDB_RDONLY : 0, &t.txn)) != 0) {
        error = fail("begin", rc);
        goto done;
    }
    if ((rc = mdb_dbi_open(t.txn, "audit", 0, &t.audit)) != 0 ||
        (rc = mdb_dbi_open(t.txn, "audit_tree", 0, &t.tree)) != 0 ||
        (rc = mdb_dbi_open(t.txn, "meta", 0, &t.meta)) != 0) {
        error = fail("open the audit databases", rc);
        goto done;
    }

    if (!strcmp(cmd, "edit"))
        error = cmd_edit(&t, a, argv[4], argv[5]);
    else if (!strcmp(cmd, "delete"))
        error = cmd_delete(&t, a);
    else if (!strcmp(cmd, "swap"))
        error = cmd_swap(&t, a, b);
    else if (!strcmp(cmd, "truncate"))
        error = cmd_truncate(&t, a);
    else if (!strcmp(cmd, "size"))
        error = cmd_size(&t);
    else
        error = cmd_get(&t, a);
    if (error != 0) goto done;

    if (!readonly) {
        rc = mdb_txn_commit(t.txn);
        t.txn = NULL;
        if (rc != 0) {
            error = fail("commit", rc);
            goto done;
        }
    }
done:
    if (t.txn != NULL) mdb_txn_abort(t.txn);
    if (env != NULL) mdb_env_close(env);
    return error;

usage:
    fputs(usage_text, stderr);
    return 2;
}
