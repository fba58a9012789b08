/* ref.h: the references and times that the stage commands take on the
 * command line (resolve, pull, status): MODEL:STAGE and RFC 3339 times.
 * Internal to cli/. MODEL@VERSION and MODEL@sha256:HEX are cli_ref_parse
 * (args.h); asking the registry what a stage holds is cli_stage_resolve
 * (stage.h).
 */
#ifndef MLREG_CLI_REF_H
#define MLREG_CLI_REF_H

#include <stddef.h>

#include "client.h"
#include "release.h"

/** A parsed MODEL:STAGE; strings point into @p buf. */
typedef struct {
    char *model;
    char *stage;
    char buf[512];
} cli_stage_ref;

/**
 * Parses MODEL:STAGE (model in the OCI repository grammar, stage in the tag
 * grammar). MLREG_EINVALID with a message naming the wrong part.
 */
int cli_stage_ref_parse(cli_stage_ref *out, const char *str);

/** 1 when @p str has the MODEL:STAGE shape (a ':' and no '@'), else 0. */
int cli_is_stage_ref(const char *str);

/** Size of a buffer that holds any time cli_time_parse() writes. */
#define CLI_TIME_BUFSIZE 40

/**
 * Parses an RFC 3339 date-time (`2026-11-26T10:00:00Z`,
 * `2026-11-26T12:00:00.5+02:00`; 'T' may be 't' or ' ', 'Z' may be 'z')
 * and writes it into @p out (CLI_TIME_BUFSIZE bytes) normalised to UTC,
 * keeping fractional seconds: "2026-11-26T10:00:00.5Z". Checks every field's
 * range (days per month, leap years; a leap second is refused). 0 or
 * MLREG_EINVALID with a message.
 */
int cli_time_parse(char out[CLI_TIME_BUFSIZE], const char *str);

/** A release as a command takes it: MODEL@VERSION, MODEL@sha256:HEX or MODEL:STAGE. */
typedef struct {
    cli_ref ref;        /**< the release; for a stage, pinned by cli_release_ref_fetch() */
    cli_stage_ref sref; /**< the stage, when by_stage */
    int by_stage;       /**< 1 for MODEL:STAGE */
} cli_release_ref;

/** Parses @p str as any of the three forms. MLREG_EINVALID (a usage error). */
int cli_release_ref_parse(cli_release_ref *out, const char *str);

/**
 * Fetches the manifest of the release @p r names into @p rel
 * (cli_release_fetch). A stage is resolved once, first, to the digest it
 * holds now: r->ref is pinned to MODEL@DIGEST, "MODEL:STAGE is MODEL@VERSION
 * (DIGEST)" goes to stderr, and the manifest's version must be the one the
 * stage named (MLREG_EMISMATCH otherwise). Errors as cli_stage_resolve()
 * and cli_release_fetch().
 */
int cli_release_ref_fetch(cli_release *rel, cli_client *c, cli_release_ref *r);

#endif
