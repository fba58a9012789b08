/**
 * @file text.h
 * @brief The one rule for free text that mlreg accepts from a client and
 *        shows to people: release titles, metric names, promotion and
 *        rollback reasons, approval comments, revocation reasons, key names.
 *
 * Text is safe when it is valid UTF-8 (no overlong forms, no surrogates, no
 * code point past U+10FFFF) and holds no control character: no C0
 * (U+0000..U+001F, tab and newline included), no DEL (U+007F) and no C1
 * (U+0080..U+009F, in UTF-8 the bytes C2 80..C2 9F). Terminals act on all
 * three: xterm, for one, takes U+009B as CSI, so "\u009b31m" recolours it
 * just as ESC [ 31m does. Other non-ASCII text ("modèle", CJK) is safe.
 *
 * The server refuses text that breaks the rule (mlreg_text_validate()); the
 * CLI never prints registry text that breaks it. Pure functions, no I/O; this
 * module lives in core/, beside the error message, so that every other module
 * may use it.
 */
#ifndef MLREG_TEXT_H
#define MLREG_TEXT_H

#include <stddef.h>

/**
 * The rule itself: how many leading bytes of the @p len bytes at @p s are
 * safe text. Equal to @p len when all of them are; otherwise the offset of
 * the first character that is a control character or not valid UTF-8 (a
 * UTF-8 sequence cut off by @p len counts as invalid). NUL bytes count as
 * control characters.
 */
size_t mlreg_text_span(const char *s, size_t len);

/**
 * How many leading bytes of the @p len bytes at @p s are well-formed UTF-8
 * (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF; a sequence
 * cut off by @p len counts as invalid). Control characters pass: this is
 * the encoding alone, for formats with their own rule on them (canonical
 * JSON, signed notes).
 */
size_t mlreg_utf8_span(const char *s, size_t len);

/**
 * Checks the NUL-terminated @p s (NULL counts as absent and passes) against
 * the rule, for text received from a client.
 * @param what names the field in the message ("reason", "comment")
 * @return 0, or MLREG_EINVALID with "WHAT contains a control character" or
 *         "WHAT is not valid UTF-8" (the text itself is never quoted).
 */
int mlreg_text_validate(const char *s, const char *what);

/**
 * Copies the @p len bytes at @p s into @p buf (@p cap bytes, at least 1) for
 * a message or a terminal, each control character and each byte that is
 * not part of valid UTF-8 replaced by '?'. The copy is always
 * NUL-terminated and, when @p buf is too small, cut before a whole
 * character, never inside one.
 * @return how many bytes of @p s were consumed: @p len unless the copy was
 *         cut short.
 */
size_t mlreg_text_sanitize(char *buf, size_t cap, const char *s, size_t len);

/**
 * Registry or bundle text for a message or a terminal, all or nothing:
 * @p s itself when it follows the rule, "(unprintable)" when it does not,
 * "-" for NULL or "". The result is @p s or a static string: it lives as
 * long as @p s.
 */
const char *mlreg_text_printable(const char *s);

#endif
