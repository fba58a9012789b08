/**
 * @file names.h
 * @brief The grammars of names mlreg accepts: OCI repository names and
 *        tags, release file titles, and the names and roles of keys and
 *        tokens. One function per grammar; every module checks with these.
 *
 * Pure functions, no I/O; the validators set a one-line message.
 */
#ifndef MLREG_NAMES_H
#define MLREG_NAMES_H

#include <stddef.h>

/* ---- OCI distribution spec --------------------------------------------- */

/** Repository name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*,
 *  at most 255 bytes. 0 or MLREG_EINVALID (message set). */
int mlreg_name_validate(const char *name);
/** Tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. 0 or MLREG_EINVALID. */
int mlreg_tag_validate(const char *tag);
/** 1 when @p ref looks like a digest ("algo:..."), 0 when it should be a tag. */
int mlreg_reference_is_digest(const char *ref);
/**
 * Whether model name @p name is @p prefix itself or a name below it
 * (@p prefix, then '/', then more). Names match as whole components: the
 * prefix "a/b" covers "a/b" and "a/b/c", never "a/bc" or "a/b-x". This is
 * the one comparison behind every model prefix (token roles limited with
 * `@PREFIX`); @p prefix is expected to be a valid name itself.
 * @return 1 or 0 (also when either is NULL).
 */
int mlreg_name_under(const char *name, const char *prefix);

/* ---- release file kinds -------------------------------------------------- */

/** Longest release file kind, in bytes. */
#define MLREG_KIND_MAX 32

/**
 * The grammar of the kind of a release file (annotation org.mlreg.kind):
 * `[a-z][a-z0-9-]{0,31}`, a lowercase letter, then up to 31 lowercase
 * letters, digits and '-'. The well-known kinds (MLREG_KINDS in oci.h,
 * "chunk-index") match it; so may any other ("generation-config"), whose
 * layer media type is "application/vnd.mlreg.<kind>.v1". Pure, no I/O.
 * @return 1 when @p kind matches, 0 otherwise (also for NULL).
 */
int mlreg_kind_valid(const char *kind);

/* ---- release file titles ------------------------------------------------- */

/** Longest release file title, in bytes (all its path segments). */
#define MLREG_TITLE_MAX 255
/** Most path segments in a release file title ("a/b/c" has 3). */
#define MLREG_TITLE_DEPTH_MAX 8

/**
 * The one rule for the title of a release file (annotation
 * org.opencontainers.image.title), which `mlreg pull` and `mlreg bundle`
 * use as a path relative to the directory they write: the server applies
 * it on manifest PUT, `mlreg push` before uploading anything, pull and
 * bundle before writing anything. A title is non-empty, at most
 * MLREG_TITLE_MAX bytes, text by the rule of text.h (UTF-8 without C0,
 * DEL or C1 controls), and 1 to MLREG_TITLE_DEPTH_MAX path segments joined
 * by single '/' ("tokenizer/vocab.json"): no leading, trailing or doubled
 * '/'. No segment starts with '.' (no hidden files such as .bashrc in a
 * deploy directory; this also rules out "." and ".." anywhere, and pull's
 * temp files, MLREG_PULL_TMP_PREFIX), and the first segment is not
 * MLREG_LOCK_FILE_NAME in any ASCII case (mlreg_title_cmp). A backslash is
 * an ordinary byte. Pure, no I/O.
 * @return 0, or MLREG_EINVALID with a message saying which part of the rule
 *         is broken ("title '.bashrc' may not start with '.'"); the title is
 *         quoted only when it is safe to print.
 */
int mlreg_title_validate(const char *title);

/**
 * Compares two titles as file names on a case-insensitive filesystem
 * (macOS, SMB shares, ext4 with casefold) would, as far as ASCII goes:
 * byte by byte with 'A'..'Z' folded to 'a'..'z', so "A.bin" and "a.bin"
 * are one name. Bytes beyond ASCII compare as they are, whatever the
 * locale. The titles of one release must be unique by this comparison,
 * checked by the server, `mlreg push`, pull and bundle. Pure.
 * @return less than, equal to or greater than 0, as strcmp(); 0 when the
 *         titles name the same file there.
 */
int mlreg_title_cmp(const char *a, const char *b);

/** mlreg_title_cmp() of at most the @p n first bytes, as strncmp(). */
int mlreg_title_ncmp(const char *a, const char *b, size_t n);

/**
 * The rule for the set of titles of one release, on top of
 * mlreg_title_validate() for each: no two name one file ignoring ASCII case
 * (mlreg_title_cmp), no directory is spelt in two letter cases ("A/x" and
 * "a/y"), and no title is a file where another needs a directory ("a" and
 * "a/b"), in any case. So every title of a release can be written into one
 * directory on any filesystem, and no file ever replaces another's
 * directory. O(n log n); allocates a copy of the pointer array.
 * @return 0, MLREG_EINVALID naming the first title (or pair) that breaks
 *         the rule, or MLREG_ENOMEM.
 */
int mlreg_titles_check(const char *const *titles, size_t n);

/* ---- key and token names and roles --------------------------------------- */

/**
 * The grammar of a label people read in listings and messages (the name of
 * a trusted key or of a token): 1 to @p max bytes of printable ASCII, space
 * included, no control byte. The @p len bytes at @p s are checked, and a
 * NUL byte among them breaks the rule (a JSON string may carry one).
 * @return 1 when the label follows the rule, 0 when not (no message set).
 */
int mlreg_label_valid(const char *s, size_t len, size_t max);

/**
 * The grammar of a key role ("release", "ci-bot"): [a-z][a-z0-9_-]*, at
 * most @p max bytes, NUL-terminated @p s.
 * @return 1 when the role follows the rule, 0 when not (no message set).
 */
int mlreg_key_role_valid(const char *s, size_t max);

#endif
