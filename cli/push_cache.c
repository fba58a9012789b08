/* push_cache.c: the digest cache and the remembered upload sessions of
 * `mlreg push` (push_cache.h).
 *
 * The digest cache file, all integers little-endian:
 *   "MLREGPC" 0x02 | u32 count | u32 zero |
 *   count x (u64 dev, ino, size, mtime_ns, ctime_ns, used, chunk_size,
 *            nchunks, flags | 32 bytes digest | nchunks x 32 bytes) |
 *   32 bytes SHA-256 of everything before.
 * flags: bit 0, unverified (the file was racily clean when hashed); no
 * other bit may be set. Version 1 files, the same without flags, are read
 * with every entry verified and written back as version 2.
 * The checksum catches a torn or damaged file; the parser still checks
 * every count against the bytes that remain, so a file crafted with a
 * valid checksum cannot make it read out of bounds or allocate more than
 * the file's own size. A wrong entry would make push sign a digest the
 * file does not have (the registry then refuses the upload, but a blob it
 * already holds would be listed): hence the ownership check at load and
 * the racily-clean rule at insertion.
 */
#include "push_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "mlreg/bytes.h"
#include "mlreg/chunk_index.h"
#include "mlreg/common.h"
#include "mlreg/file.h"

static const unsigned char magic[8] = {'M', 'L', 'R', 'E', 'G', 'P', 'C', 2};
#define MAGIC_V1        1 /* the last byte of a version 1 file's magic */
#define HEADER_LEN      16
#define ENTRY_FIXED     (9 * 8 + MLREG_DIGEST_RAWLEN)
#define ENTRY_FIXED_V1  (8 * 8 + MLREG_DIGEST_RAWLEN)
#define FLAG_UNVERIFIED 1
#define CACHE_FILE      "digests"
#define UPLOADS_DIR     "uploads"
#define UPLOAD_MAGIC    "mlreg-upload 1"
#define LOCATION_MAX    2048

void push_file_id_from_stat(push_file_id *out, const struct stat *st)
{
    memset(out, 0, sizeof(*out));
    out->dev = (uint64_t)st->st_dev;
    out->ino = (uint64_t)st->st_ino;
    out->size = (uint64_t)st->st_size;
    out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    out->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* The kernel stamps files from its coarse clock (one tick, 1 to 10 ms);
 * file systems that keep whole seconds (or two, FAT) show no nanoseconds:
 * both timestamps ending in 0 ns are taken as such a file system. */
int push_file_id_cacheable(const push_file_id *id, int64_t started_ns)
{
    int64_t newest = id->mtime_ns > id->ctime_ns ? id->mtime_ns : id->ctime_ns;
    int64_t granule = 20 * 1000000LL;

    if (id->mtime_ns % 1000000000 == 0 && id->ctime_ns % 1000000000 == 0)
        granule = 2 * 1000000000LL;
    return newest + granule < started_ns;
}

int push_cache_dir(char *out, size_t len)
{
    const char *v;
    int n;

    if ((v = getenv("MLREG_CACHE_DIR")) && *v)
        n = snprintf(out, len, "%s", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && *v == '/')
        n = snprintf(out, len, "%s/mlreg", v);
    else if ((v = getenv("HOME")) && *v)
        n = snprintf(out, len, "%s/.cache/mlreg", v);
    else
        return mlreg_error_set(MLREG_EINVALID, "no cache directory: set MLREG_CACHE_DIR or HOME");
    if (n < 0 || (size_t)n >= len) return mlreg_error_set(MLREG_EINVALID, "cache path too long");
    return 0;
}

static void entry_free(push_cache_entry *e)
{
    free(e->chunks);
    e->chunks = NULL;
    e->nchunks = 0;
    e->chunk_size = 0;
}

void push_cache_clear(push_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        entry_free(&c->entries[i]);
    free(c->entries);
    memset(c, 0, sizeof(*c));
}

static int id_equal(const push_file_id *a, const push_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

push_cache_entry *push_cache_find(push_cache *c, const push_file_id *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (id_equal(&c->entries[i].id, id)) return &c->entries[i];
    return NULL;
}

static int grow(push_cache *c)
{
    if (c->n < c->cap) return 0;
    size_t cap = c->cap ? c->cap * 2 : 16;
    push_cache_entry *p = realloc(c->entries, cap * sizeof(*p));
    if (!p) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    c->entries = p;
    c->cap = cap;
    return 0;
}

int push_cache_put(push_cache *c, const push_file_id *id, const mlreg_digest *digest,
                   const mlreg_chunk_index *ix, int64_t now, int unverified)
{
    push_cache_entry *e = push_cache_find(c, id);
    mlreg_digest *chunks = NULL;
    int error;

    if (ix && ix->nchunks) {
        if (!(chunks = malloc(ix->nchunks * sizeof(*chunks))))
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
        memcpy(chunks, ix->chunks, ix->nchunks * sizeof(*chunks));
    }
    if (!e) {
        if ((error = grow(c)) < 0) {
            free(chunks);
            return error;
        }
        e = &c->entries[c->n++];
        memset(e, 0, sizeof(*e));
    }
    entry_free(e);
    e->id = *id;
    e->used = now;
    e->unverified = unverified != 0;
    e->digest = *digest;
    e->chunk_size = ix && ix->nchunks ? ix->chunk_size : 0;
    e->nchunks = ix ? ix->nchunks : 0;
    e->chunks = chunks;
    c->dirty = 1;
    return 0;
}

/* A chunk size push_cache may hold: the index rules of chunk_index.h. */
static int chunk_shape_ok(uint64_t size, uint64_t chunk_size, uint64_t nchunks)
{
    if (chunk_size == 0) return nchunks == 0;
    return mlreg_chunk_index_shape_valid(size, chunk_size, nchunks);
}

int push_cache_parse(push_cache *out, const void *data, size_t len)
{
    const unsigned char *p = data, *end;
    uint32_t count;
    mlreg_digest sum;
    size_t fixed = ENTRY_FIXED;
    int error = 0;

    memset(out, 0, sizeof(*out));
    if (len > PUSH_CACHE_MAX_BYTES)
        return mlreg_error_set(MLREG_ETOOBIG, "cache file larger than %zu bytes",
                               PUSH_CACHE_MAX_BYTES);
    if (len < HEADER_LEN + MLREG_DIGEST_RAWLEN || memcmp(p, magic, sizeof(magic) - 1) ||
        (p[7] != magic[7] && p[7] != MAGIC_V1))
        return mlreg_error_set(MLREG_EINVALID, "not a cache file of this version");
    if (p[7] == MAGIC_V1) fixed = ENTRY_FIXED_V1;
    end = p + len - MLREG_DIGEST_RAWLEN;
    if ((error = mlreg_digest_buffer(&sum, p, len - MLREG_DIGEST_RAWLEN)) < 0) return error;
    if (memcmp(sum.raw, end, MLREG_DIGEST_RAWLEN))
        return mlreg_error_set(MLREG_EINVALID, "cache file checksum mismatch");
    count = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
    if (p[12] | p[13] | p[14] | p[15])
        return mlreg_error_set(MLREG_EINVALID, "cache file header reserved bytes set");
    if (count > PUSH_CACHE_MAX_ENTRIES)
        return mlreg_error_set(MLREG_EINVALID, "cache file holds %u entries, over %d", count,
                               PUSH_CACHE_MAX_ENTRIES);
    p += HEADER_LEN;
    for (uint32_t i = 0; i < count; i++) {
        push_cache_entry e;
        uint64_t nchunks, flags = 0;

        memset(&e, 0, sizeof(e));
        if ((size_t)(end - p) < fixed) {
            error = mlreg_error_set(MLREG_EINVALID, "cache entry %u truncated", i);
            goto fail;
        }
        e.id.dev = mlreg_le64_get(p);
        e.id.ino = mlreg_le64_get(p + 8);
        e.id.size = mlreg_le64_get(p + 16);
        e.id.mtime_ns = (int64_t)mlreg_le64_get(p + 24);
        e.id.ctime_ns = (int64_t)mlreg_le64_get(p + 32);
        e.used = (int64_t)mlreg_le64_get(p + 40);
        e.chunk_size = mlreg_le64_get(p + 48);
        nchunks = mlreg_le64_get(p + 56);
        if (fixed == ENTRY_FIXED) flags = mlreg_le64_get(p + 64);
        memcpy(e.digest.raw, p + fixed - MLREG_DIGEST_RAWLEN, MLREG_DIGEST_RAWLEN);
        p += fixed;
        if (flags & ~(uint64_t)FLAG_UNVERIFIED) {
            error = mlreg_error_set(MLREG_EINVALID, "cache entry %u: unknown flags", i);
            goto fail;
        }
        e.unverified = (flags & FLAG_UNVERIFIED) != 0;
        if (!chunk_shape_ok(e.id.size, e.chunk_size, nchunks) ||
            nchunks > (uint64_t)(end - p) / MLREG_DIGEST_RAWLEN) {
            error = mlreg_error_set(MLREG_EINVALID, "cache entry %u: bad chunk list", i);
            goto fail;
        }
        if (push_cache_find(out, &e.id)) {
            error = mlreg_error_set(MLREG_EINVALID, "cache entry %u repeats a file", i);
            goto fail;
        }
        if (nchunks) {
            if (!(e.chunks = malloc((size_t)nchunks * sizeof(*e.chunks)))) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
                goto fail;
            }
            memcpy(e.chunks, p, (size_t)nchunks * MLREG_DIGEST_RAWLEN);
            p += (size_t)nchunks * MLREG_DIGEST_RAWLEN;
        }
        e.nchunks = (size_t)nchunks;
        if ((error = grow(out)) < 0) {
            free(e.chunks);
            goto fail;
        }
        out->entries[out->n++] = e;
    }
    if (p != end) {
        error = mlreg_error_set(MLREG_EINVALID, "cache file has trailing bytes");
        goto fail;
    }
    return 0;
fail:
    push_cache_clear(out);
    return error;
}

static size_t entry_bytes(const push_cache_entry *e)
{
    return ENTRY_FIXED + e->nchunks * MLREG_DIGEST_RAWLEN;
}

int push_cache_serialize(unsigned char **out, size_t *len_out, const push_cache *c)
{
    size_t len = HEADER_LEN + MLREG_DIGEST_RAWLEN;
    unsigned char *buf, *p;
    mlreg_digest sum;
    int error;

    *out = NULL;
    *len_out = 0;
    for (size_t i = 0; i < c->n; i++)
        len += entry_bytes(&c->entries[i]);
    if (!(buf = calloc(1, len))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    memcpy(buf, magic, sizeof(magic));
    for (int i = 0; i < 4; i++)
        buf[8 + i] = (unsigned char)((uint32_t)c->n >> (8 * i));
    p = buf + HEADER_LEN;
    for (size_t i = 0; i < c->n; i++) {
        const push_cache_entry *e = &c->entries[i];
        mlreg_le64_put(p, e->id.dev);
        mlreg_le64_put(p + 8, e->id.ino);
        mlreg_le64_put(p + 16, e->id.size);
        mlreg_le64_put(p + 24, (uint64_t)e->id.mtime_ns);
        mlreg_le64_put(p + 32, (uint64_t)e->id.ctime_ns);
        mlreg_le64_put(p + 40, (uint64_t)e->used);
        mlreg_le64_put(p + 48, e->chunk_size);
        mlreg_le64_put(p + 56, e->nchunks);
        mlreg_le64_put(p + 64, e->unverified ? FLAG_UNVERIFIED : 0);
        memcpy(p + 72, e->digest.raw, MLREG_DIGEST_RAWLEN);
        p += ENTRY_FIXED;
        if (e->nchunks) memcpy(p, e->chunks, e->nchunks * MLREG_DIGEST_RAWLEN);
        p += e->nchunks * MLREG_DIGEST_RAWLEN;
    }
    if ((error = mlreg_digest_buffer(&sum, buf, len - MLREG_DIGEST_RAWLEN)) < 0) {
        free(buf);
        return error;
    }
    memcpy(p, sum.raw, MLREG_DIGEST_RAWLEN);
    *out = buf;
    *len_out = len;
    return 0;
}

/* Opens DIR/NAME for reading if it is a regular file of ours that nobody
 * else may write; -1 otherwise (errno ENOENT when it is missing). */
static int open_own(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & (S_IWGRP | S_IWOTH))) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

int push_cache_load(push_cache *out, const char *dir)
{
    char path[PATH_MAX], *data = NULL;
    size_t len = 0;
    int fd, error;

    memset(out, 0, sizeof(*out));
    if (cli_path_join(path, sizeof(path), dir, CACHE_FILE) < 0) return 0;
    if ((fd = open_own(path)) < 0) {
        if (errno != ENOENT)
            fprintf(stderr, "mlreg push: ignoring the digest cache %s: not a file of ours\n", path);
        mlreg_error_clear();
        return 0;
    }
    error = mlreg_file_read_fd(&data, &len, fd, path, PUSH_CACHE_MAX_BYTES);
    close(fd);
    if (error == 0) error = push_cache_parse(out, data, len);
    free(data);
    if (error == MLREG_ENOMEM) return error;
    if (error < 0) {
        fprintf(stderr, "mlreg push: ignoring the digest cache %s: %s\n", path, mlreg_error_last());
        mlreg_error_clear();
    }
    return 0;
}

static int used_cmp(const void *a, const void *b)
{
    const push_cache_entry *x = a, *y = b;

    return x->used > y->used ? -1 : x->used < y->used;
}

int push_cache_save(push_cache *c, const char *dir)
{
    char path[PATH_MAX];
    unsigned char *data = NULL;
    size_t len = 0, total = HEADER_LEN + MLREG_DIGEST_RAWLEN, keep = 0;
    int error;

    /* most recently used first; keep what fits */
    qsort(c->entries, c->n, sizeof(*c->entries), used_cmp);
    while (keep < c->n && keep < PUSH_CACHE_MAX_ENTRIES &&
           total + entry_bytes(&c->entries[keep]) <= PUSH_CACHE_MAX_BYTES)
        total += entry_bytes(&c->entries[keep++]);
    for (size_t i = keep; i < c->n; i++)
        entry_free(&c->entries[i]);
    c->n = keep;
    if ((error = mlreg_file_mkdirs(dir, "cache")) < 0 ||
        (error = cli_path_join(path, sizeof(path), dir, CACHE_FILE)) < 0 ||
        (error = push_cache_serialize(&data, &len, c)) < 0)
        goto done;
    if ((error = cli_file_write_atomic(path, data, len)) == 0) c->dirty = 0;
done:
    free(data);
    return error;
}

/* ---- upload sessions -------------------------------------------------------- */

static int id_format(char *out, size_t len, const push_file_id *id)
{
    return snprintf(out, len, "%llu %llu %llu %lld %lld", (unsigned long long)id->dev,
                    (unsigned long long)id->ino, (unsigned long long)id->size,
                    (long long)id->mtime_ns, (long long)id->ctime_ns);
}

void push_upload_key(char out[MLREG_DIGEST_HEXLEN + 1], const char *registry, const char *repo,
                     const push_file_id *id)
{
    char idstr[128];
    mlreg_hasher *h = NULL;
    mlreg_digest d;

    id_format(idstr, sizeof(idstr), id);
    memset(&d, 0, sizeof(d));
    /* NUL bytes separate the parts: no two triples hash alike */
    if (mlreg_hasher_new(&h) == 0 && mlreg_hasher_update(h, registry, strlen(registry) + 1) == 0 &&
        mlreg_hasher_update(h, repo, strlen(repo) + 1) == 0 &&
        mlreg_hasher_update(h, idstr, strlen(idstr) + 1) == 0)
        mlreg_hasher_final(&d, h);
    mlreg_hasher_free(h);
    mlreg_digest_hex(out, &d);
}

static int field_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

int push_upload_format(char **out, size_t *len_out, const char *registry, const char *repo,
                       const push_file_id *id, const char *location)
{
    char idstr[128];
    size_t cap;
    int n;

    *out = NULL;
    if (!field_ok(registry, LOCATION_MAX) || !field_ok(repo, LOCATION_MAX) ||
        !field_ok(location, LOCATION_MAX))
        return mlreg_error_set(MLREG_EINVALID, "upload session names an unusable location");
    id_format(idstr, sizeof(idstr), id);
    cap = strlen(UPLOAD_MAGIC) + strlen(registry) + strlen(repo) + strlen(idstr) +
          strlen(location) + 6;
    if (!(*out = malloc(cap))) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    n = snprintf(*out, cap, "%s\n%s\n%s\n%s\n%s\n", UPLOAD_MAGIC, registry, repo, idstr, location);
    *len_out = (size_t)n;
    return 0;
}

int push_upload_parse(char **location_out, const char *data, size_t len, const char *registry,
                      const char *repo, const push_file_id *id)
{
    char *want = NULL;
    size_t want_len = 0, head;
    const char *loc, *nl;
    int error;

    *location_out = NULL;
    if (len > PUSH_UPLOAD_MAX_BYTES || memchr(data, '\0', len))
        return mlreg_error_set(MLREG_EINVALID, "upload session file malformed");
    /* the file must start with exactly the lines we would write for this
     * registry, repository and file, and then hold one Location line */
    if ((error = push_upload_format(&want, &want_len, registry, repo, id, "x")) < 0) return error;
    head = want_len - 2;
    error = 0;
    if (len <= head || memcmp(data, want, head)) {
        error = mlreg_error_set(MLREG_EINVALID, "upload session of another file or registry");
        goto done;
    }
    loc = data + head;
    nl = memchr(loc, '\n', len - head);
    if (!nl || nl + 1 != data + len) {
        error = mlreg_error_set(MLREG_EINVALID, "upload session file malformed");
        goto done;
    }
    if (!(*location_out = strndup(loc, (size_t)(nl - loc)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if (!field_ok(*location_out, LOCATION_MAX)) {
        free(*location_out);
        *location_out = NULL;
        error = mlreg_error_set(MLREG_EINVALID, "upload session names an unusable location");
    }
done:
    free(want);
    return error;
}

static int upload_path(char *out, size_t len, const char *dir, const char *registry,
                       const char *repo, const push_file_id *id)
{
    char key[MLREG_DIGEST_HEXLEN + 1];

    push_upload_key(key, registry, repo, id);
    if ((size_t)snprintf(out, len, "%s/%s/%s", dir, UPLOADS_DIR, key) >= len)
        return mlreg_error_set(MLREG_EIO, "cache path too long");
    return 0;
}

int push_upload_load(char **location_out, const char *dir, const char *registry, const char *repo,
                     const push_file_id *id)
{
    char path[PATH_MAX], *data = NULL;
    size_t len = 0;
    int fd, error;

    *location_out = NULL;
    if (upload_path(path, sizeof(path), dir, registry, repo, id) < 0) goto ignore;
    if ((fd = open_own(path)) < 0) {
        if (errno != ENOENT) unlink(path);
        goto ignore;
    }
    error = mlreg_file_read_fd(&data, &len, fd, path, PUSH_UPLOAD_MAX_BYTES);
    close(fd);
    if (error == 0) error = push_upload_parse(location_out, data, len, registry, repo, id);
    free(data);
    if (error == MLREG_ENOMEM) return error;
    if (error < 0) unlink(path);
ignore:
    mlreg_error_clear();
    return 0;
}

int push_upload_save(const char *dir, const char *registry, const char *repo,
                     const push_file_id *id, const char *location)
{
    char path[PATH_MAX], sub[PATH_MAX], *data = NULL;
    size_t len = 0;
    int error;

    if ((error = cli_path_join(sub, sizeof(sub), dir, UPLOADS_DIR)) < 0 ||
        (error = mlreg_file_mkdirs(sub, "cache")) < 0 ||
        (error = upload_path(path, sizeof(path), dir, registry, repo, id)) < 0 ||
        (error = push_upload_format(&data, &len, registry, repo, id, location)) < 0)
        goto done;
    error = cli_file_write_atomic(path, data, len);
done:
    free(data);
    return error;
}

void push_upload_forget(const char *dir, const char *registry, const char *repo,
                        const push_file_id *id)
{
    char path[PATH_MAX];

    if (upload_path(path, sizeof(path), dir, registry, repo, id) == 0) unlink(path);
    mlreg_error_clear();
}

void push_upload_prune(const char *dir, long max_age)
{
    char sub[PATH_MAX];
    DIR *d;
    struct dirent *e;
    time_t now = time(NULL);

    if (cli_path_join(sub, sizeof(sub), dir, UPLOADS_DIR) < 0 || !(d = opendir(sub))) {
        mlreg_error_clear();
        return;
    }
    while ((e = readdir(d))) {
        struct stat st;
        /* only our names: 64 hex digits */
        if (strlen(e->d_name) != MLREG_DIGEST_HEXLEN ||
            strspn(e->d_name, "0123456789abcdef") != MLREG_DIGEST_HEXLEN)
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            now - st.st_mtime > max_age)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}
