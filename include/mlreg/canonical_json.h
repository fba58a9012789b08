/**
 * @file canonical_json.h
 * @brief Canonical JSON text of a jansson value, for hashing and signing.
 *
 * The same value always gives the same bytes:
 * - object members sorted by key, compared as raw UTF-8 bytes (that is, by
 *   Unicode code point; RFC 8785 sorts by UTF-16 code unit instead, which
 *   differs only between keys holding characters above U+FFFF and keys
 *   holding U+E000..U+FFFF at the same position);
 * - no whitespace outside strings;
 * - integers in plain decimal (jansson's json_int_t, 64 bits); reals are
 *   refused, because their text is not unique (audit entries hold no
 *   fractions: times are RFC 3339 strings, sizes integers);
 * - strings as UTF-8, escaping only what JSON requires, always the same
 *   way: `\"` and `\\`; `\b \f \n \r \t`; every other byte below 0x20 as
 *   `\u00XX` with lowercase hex; '/', DEL and all non-ASCII characters as
 *   themselves (the escaping of RFC 8785);
 * - true, false, null as such.
 * The text is valid JSON that json_loads() reads back to an equal value.
 */
#ifndef MLREG_CANONICAL_JSON_H
#define MLREG_CANONICAL_JSON_H

#include <jansson.h>
#include <stddef.h>

/** Deepest nesting of arrays and objects accepted. */
#define MLREG_CANONICAL_JSON_DEPTH_MAX 64

/**
 * Writes the canonical text of @p value into *out (malloc'd, NUL-terminated,
 * owned by the caller: free()) and its length, without the NUL, into
 * *len_out (may be NULL). Returns 0; MLREG_EINVALID ("canonical json: ...")
 * for a real number, a string that is not valid UTF-8, nesting deeper than
 * MLREG_CANONICAL_JSON_DEPTH_MAX or a NULL value; MLREG_ENOMEM. On failure
 * *out is untouched.
 */
int mlreg_canonical_json(char **out, size_t *len_out, const json_t *value);

#endif
