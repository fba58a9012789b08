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

int mlreg_title_validate(const char *title)
{
    int error;
    size_t n;

    if (title == NULL || title[0] == '\0') return mlreg_error_set(MLREG_EINVALID, "title is empty");
    n = strlen(title);
    if (n > MLREG_TITLE_MAX)
        return mlreg_error_set(MLREG_EINVALID, "title is longer than %d bytes", MLREG_TITLE_MAX);
    if ((error = mlreg_text_validate(title, "title")) < 0) return error;
    if (strchr(title, '/') != NULL)
        return mlreg_error_set(MLREG_EINVALID, "title '%.64s' contains '/'", title);
    /* Also "." and "..", and pull's own temp files (MLREG_PULL_TMP_PREFIX). */
    if (title[0] == '.')
        return mlreg_error_set(MLREG_EINVALID, "title '%.64s' may not start with '.'", title);
    /* `mlreg pull` writes the lock file itself, so a release carrying such a
     * title could be pushed (and, being immutable, never replaced) but
     * never pulled; on a case-insensitive filesystem MLREG.LOCK.JSON is
     * that file too. */
    if (mlreg_title_cmp(title, MLREG_LOCK_FILE_NAME) == 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "title '%s' is reserved for the lock file mlreg pull writes", title);
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
