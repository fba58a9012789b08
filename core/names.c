/* names.c: the grammars of names (names.h): OCI repository names, tags and
 * digest references as hand-written matchers (no regex library), release
 * file titles, and the labels and roles of keys and tokens.
 *
 * Names and tags end up in LMDB keys (separated by NUL bytes), in URLs and in
 * directory names the CLI creates, so they are checked byte by byte against
 * the spec's grammar before anything else touches them. */
#include "mlreg/names.h"

#include "mlreg/common.h"
#include "mlreg/oci.h"
#include "mlreg/text.h"

#include <stdlib.h>
#include <string.h>

#define MAX_NAME_BYTES 255
#define MAX_TAG_BYTES  128

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_tag_lead(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_';
}

/* Matches one path component, [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, starting at
 * s[*pos]; advances *pos past it. Returns 0 or MLREG_EINVALID with a message
 * naming the offending byte. */
static int match_component(const char *name, size_t *pos)
{
    const char *s = name;
    size_t i = *pos;

    if (!is_lower_alnum(s[i])) goto bad;
    for (;;) {
        while (is_lower_alnum(s[i]))
            i++;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (s[i] == '_') i++;
        } else if (s[i] == '-') {
            while (s[i] == '-')
                i++;
        } else {
            break; /* end of component: '/', NUL or a byte the caller rejects */
        }
        /* A separator must be followed by an alphanumeric run. */
        if (!is_lower_alnum(s[i])) goto bad;
    }
    *pos = i;
    return 0;

bad:
    if (s[i] == '\0')
        return mlreg_error_set(MLREG_EINVALID,
                               "invalid repository name '%s': ends with a separator", name);
    return mlreg_error_set(MLREG_EINVALID,
                           "invalid repository name '%s': unexpected '%c' at offset %zu", name,
                           (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?', i);
}

int mlreg_name_validate(const char *name)
{
    int error = 0;
    size_t len, pos = 0;

    if (name == NULL || name[0] == '\0')
        return mlreg_error_set(MLREG_EINVALID, "invalid repository name: empty");
    len = strlen(name);
    if (len > MAX_NAME_BYTES)
        return mlreg_error_set(MLREG_EINVALID,
                               "invalid repository name: %zu bytes, at most %d allowed", len,
                               MAX_NAME_BYTES);
    for (;;) {
        if ((error = match_component(name, &pos)) < 0) return error;
        if (name[pos] == '\0') return 0;
        if (name[pos] != '/')
            return mlreg_error_set(MLREG_EINVALID,
                                   "invalid repository name '%s': unexpected byte at offset %zu",
                                   name, pos);
        pos++; /* the next component must start right here: no '//' or trailing '/' */
    }
}

int mlreg_tag_validate(const char *tag)
{
    size_t i;

    if (tag == NULL || tag[0] == '\0') return mlreg_error_set(MLREG_EINVALID, "invalid tag: empty");
    if (!is_tag_lead(tag[0]))
        return mlreg_error_set(MLREG_EINVALID,
                               "invalid tag '%s': must start with a letter, digit or '_'", tag);
    for (i = 1; tag[i] != '\0'; i++) {
        if (i >= MAX_TAG_BYTES)
            return mlreg_error_set(MLREG_EINVALID, "invalid tag: longer than %d bytes",
                                   MAX_TAG_BYTES);
        if (!is_tag_lead(tag[i]) && tag[i] != '.' && tag[i] != '-')
            return mlreg_error_set(MLREG_EINVALID,
                                   "invalid tag '%s': unexpected byte at offset %zu", tag, i);
    }
    return 0;
}

/* Tags cannot contain ':', digests always do ("algorithm:encoded"), so the
 * colon alone decides how a reference is resolved; the digest grammar itself
 * is enforced afterwards by mlreg_digest_parse. */
int mlreg_reference_is_digest(const char *ref)
{
    return ref != NULL && strchr(ref, ':') != NULL;
}

/* A prefix covers the name itself and everything below it at a '/'
 * boundary; a plain byte prefix would let "a/b" grant "a/bc" too. */
int mlreg_name_under(const char *name, const char *prefix)
{
    size_t n;

    if (name == NULL || prefix == NULL) return 0;
    n = strlen(prefix);
    return strncmp(name, prefix, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

/* ---- release file titles ------------------------------------------------- */

/* Titles become file names under the pull directory: they must name exactly
 * one entry inside it, never a path, a hidden file a shell or a tool would
 * read (.bashrc, .ssh, .env), or something a terminal interprets. The rule
 * is checked in this order so that a message quotes the title only once it
 * is known to be safe to print. */
int mlreg_kind_valid(const char *kind)
{
    size_t n;

    if (kind == NULL || kind[0] < 'a' || kind[0] > 'z') return 0;
    for (n = 1; kind[n]; n++) {
        char c = kind[n];
        if (n >= MLREG_KIND_MAX || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

/* One segment of a title, @p len bytes at @p seg (no '/'). */
static int title_segment_validate(const char *title, const char *seg, size_t len, int first)
{
    if (len == 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "title '%.64s' has an empty path segment (leading, trailing or "
                               "doubled '/')",
                               title);
    /* Also "." and "..", and pull's own temp files (MLREG_PULL_TMP_PREFIX). */
    if (seg[0] == '.') {
        if (first && strchr(title, '/') == NULL)
            return mlreg_error_set(MLREG_EINVALID, "title '%.64s' may not start with '.'", title);
        return mlreg_error_set(MLREG_EINVALID,
                               "title '%.64s': path segment '%.*s' may not start with '.'", title,
                               (int)(len > 64 ? 64 : len), seg);
    }
    /* `mlreg pull` writes the lock file itself, so a release carrying such a
     * title could be pushed (and, being immutable, never replaced) but
     * never pulled; on a case-insensitive filesystem MLREG.LOCK.JSON is
     * that file too. A directory of that name would be in its way just
     * the same. */
    if (first && len == strlen(MLREG_LOCK_FILE_NAME) &&
        mlreg_title_ncmp(seg, MLREG_LOCK_FILE_NAME, len) == 0)
        return mlreg_error_set(
            MLREG_EINVALID, "title '%.64s' is reserved for the lock file mlreg pull writes", title);
    return 0;
}

int mlreg_title_validate(const char *title)
{
    int error;
    size_t n, depth = 0;
    const char *seg, *slash;

    if (title == NULL || title[0] == '\0') return mlreg_error_set(MLREG_EINVALID, "title is empty");
    n = strlen(title);
    if (n > MLREG_TITLE_MAX)
        return mlreg_error_set(MLREG_EINVALID, "title is longer than %d bytes", MLREG_TITLE_MAX);
    if ((error = mlreg_text_validate(title, "title")) < 0) return error;
    for (seg = title;; seg = slash + 1) {
        slash = strchr(seg, '/');
        if (++depth > MLREG_TITLE_DEPTH_MAX)
            return mlreg_error_set(MLREG_EINVALID,
                                   "title '%.64s' is more than %d path segments deep", title,
                                   MLREG_TITLE_DEPTH_MAX);
        if ((error = title_segment_validate(title, seg, slash ? (size_t)(slash - seg) : strlen(seg),
                                            seg == title)) < 0)
            return error;
        if (slash == NULL) break;
    }
    return 0;
}

static int ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int mlreg_title_cmp(const char *a, const char *b)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

    while (*x && ascii_lower(*x) == ascii_lower(*y)) {
        x++;
        y++;
    }
    return ascii_lower(*x) - ascii_lower(*y);
}

int mlreg_title_ncmp(const char *a, const char *b, size_t n)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

    for (; n > 0; n--, x++, y++) {
        if (ascii_lower(*x) != ascii_lower(*y)) return ascii_lower(*x) - ascii_lower(*y);
        if (*x == '\0') break;
    }
    return 0;
}

static int cmp_title_ptr(const void *a, const void *b)
{
    return mlreg_title_cmp(*(const char *const *)a, *(const char *const *)b);
}

/* The title in sorted @p t (folded order) that is the @p len first bytes of
 * @p path ignoring case, or NULL. */
static const char *title_find_prefix(const char *const *t, size_t n, const char *path, size_t len)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mlreg_title_ncmp(t[mid], path, len);

        if (c == 0 && t[mid][len] != '\0') c = 1; /* longer: sorts after the prefix */
        if (c == 0) return t[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Checks a sorted pair of neighbours: the same file, or the same directory
 * spelt in two letter cases. */
static int title_pair_check(const char *a, const char *b)
{
    size_t i, dir_end = 0;

    if (mlreg_title_cmp(a, b) == 0) {
        if (strcmp(a, b) == 0)
            return mlreg_error_set(MLREG_EINVALID, "title '%.64s' appears twice in the release", a);
        return mlreg_error_set(MLREG_EINVALID,
                               "titles '%.64s' and '%.64s' differ only in letter case "
                               "(one file on a case-insensitive filesystem)",
                               a, b);
    }
    for (i = 0; a[i] && ascii_lower((unsigned char)a[i]) == ascii_lower((unsigned char)b[i]); i++)
        if (a[i] == '/') dir_end = i;
    if (dir_end > 0 && memcmp(a, b, dir_end) != 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "titles '%.64s' and '%.64s' name one directory in two letter cases "
                               "(one directory on a case-insensitive filesystem)",
                               a, b);
    return 0;
}

int mlreg_titles_check(const char *const *titles, size_t n)
{
    const char **t = NULL;
    int error = 0;
    size_t i;

    for (i = 0; i < n; i++)
        if ((error = mlreg_title_validate(titles[i])) < 0) return error;
    if (n < 2) return 0;
    if ((t = malloc(n * sizeof(*t))) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory checking %zu titles", n);
    memcpy(t, titles, n * sizeof(*t));
    qsort(t, n, sizeof(*t), cmp_title_ptr);
    /* A file where another title needs a directory ("a" and "a/b"). */
    for (i = 0; i < n; i++) {
        const char *s;

        for (s = strchr(t[i], '/'); s != NULL; s = strchr(s + 1, '/')) {
            const char *file = title_find_prefix(t, n, t[i], (size_t)(s - t[i]));

            if (file != NULL) {
                error = mlreg_error_set(MLREG_EINVALID,
                                        "title '%.64s' is a file, but '%.64s' needs a directory "
                                        "of that name",
                                        file, t[i]);
                goto done;
            }
        }
    }
    /* Sorted with ASCII case folded, titles that are one file or lie in one
     * directory are neighbours: checking each pair of neighbours is enough
     * for twins and for a directory spelt two ways. */
    for (i = 1; i < n; i++)
        if ((error = title_pair_check(t[i - 1], t[i])) < 0) goto done;

done:
    free(t);
    return error;
}

/* ---- key and token names and roles --------------------------------------- */

int mlreg_label_valid(const char *s, size_t len, size_t max)
{
    if (s == NULL || len == 0 || len > max) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
    return 1;
}

int mlreg_key_role_valid(const char *s, size_t max)
{
    size_t n;

    if (s == NULL) return 0;
    n = strlen(s);
    if (n == 0 || n > max || *s < 'a' || *s > 'z') return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}
