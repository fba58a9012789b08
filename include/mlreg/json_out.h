/**
 * @file json_out.h
 * @brief JSON for people and clients to read: API answers and CLI output.
 *
 * jansson 2.14 writes every real with "%.17g", so 0.912 comes out as
 * 0.91200000000000003. The functions here write exactly what json_dumps()
 * writes for the same flags, byte for byte, except that each real is
 * written with the fewest significant digits (1..17) that strtod() reads
 * back to the same double: 0.912, 100.0, 1e21, 5e-324, and
 * 0.30000000000000004 for 0.1 + 0.2 (which is not the double 0.3).
 *
 * The notation stays jansson's: plain decimal for a decimal exponent from
 * -4 to 16, else "<digits>e<exponent>" with no '+' and no leading zeros in
 * the exponent; a real always holds a '.' or an 'e' so that it reads back
 * as a real ("1.0", not "1").
 *
 * Not for anything hashed or signed (audit entries, checkpoints,
 * manifests, attestations, DSSE payloads, canonical JSON): those keep the
 * bytes they were made with, and their own serializers.
 */
#ifndef MLREG_JSON_OUT_H
#define MLREG_JSON_OUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/** Room for any real mlreg_json_real_text() writes, the NUL included. */
#define MLREG_JSON_REAL_MAX 32

/**
 * json_dumps(@p j, @p flags) with reals written as above. Every flag of
 * json_dumps() is honoured except JSON_REAL_PRECISION(n), which is
 * ignored: the precision is always the shortest that round-trips.
 * @return a malloc'd NUL-terminated string the caller frees, or NULL
 *         where json_dumps() returns NULL (out of memory; @p j not an
 *         object or array without JSON_ENCODE_ANY; NULL @p j).
 */
char *mlreg_json_dumps(const json_t *j, size_t flags);

/**
 * mlreg_json_dumps() written to @p f (no newline added).
 * @return 0, or -1 when the text cannot be made or not all of it was
 *         written (as json_dumpf()).
 */
int mlreg_json_dumpf(const json_t *j, FILE *f, size_t flags);

/**
 * Writes the finite double @p v into @p out (@p len bytes; at least
 * MLREG_JSON_REAL_MAX is always enough) as mlreg_json_dumps() writes a
 * real: "0.912", "100.0", "-0.0", "1e21". For tables printing a number
 * of a JSON answer as the answer itself shows it.
 * @return the length written (NUL not counted), or -1 when @p v is NaN or
 *         infinite (JSON has no text for them) or @p len is too small;
 *         @p out is then "" when @p len > 0.
 */
int mlreg_json_real_text(char *out, size_t len, double v);

/**
 * The fewest significant digits, 1 to 17, with which "%.*g" of the finite
 * double @p v reads back (strtod()) as exactly @p v: the one rule behind
 * every real mlreg prints (JSON answers, audit entries' reals kept as
 * strings, metrics samples). At most 5 formatting tries.
 */
int mlreg_real_precision(double v);

/**
 * The text of the JSON number @p n as mlreg_json_dumps() writes it:
 * integers in decimal, reals by mlreg_json_real_text(); "-" when @p n is
 * NULL or not a number. Same contract for @p out and @p len.
 * @return the length written, or -1 when @p len is too small.
 */
int mlreg_json_number_text(char *out, size_t len, const json_t *n);

#endif
