/* ref.h: the one grammar every command that takes a release reads:
 * MODEL@VERSION, MODEL@sha256:HEX or MODEL:STAGE (the release the stage
 * holds now, or at --at TIME), asking the registry what a stage holds
 * (cli_stage_resolve), and the "did you mean" hints for a mistyped form.
 * Internal to cli/. The MODEL@... half is cli_ref_parse (args.h).
 */
#ifndef MLREG_CLI_REF_H
#define MLREG_CLI_REF_H

#include <jansson.h>
#include <stddef.h>

#include "client.h"
#include "mlreg/time.h"
#include "release.h"

/** The REF paragraph of every --help that takes a release (string literal). */
#define CLI_REF_HELP                                                                               \
    "REF names a release: MODEL@VERSION (team/clf@1.4), MODEL@sha256:HEX (the\n"                   \
    "manifest digest), or MODEL:STAGE (team/clf:production, the release the stage\n"               \
    "holds now; resolved once, first, and printed on stderr).\n"

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

/**
 * Asks the registry what stage @p stage of @p model holds now (@p at NULL)
 * or held at time @p at (RFC 3339 UTC, as mlreg_time_format_sec() writes): GET
 * /api/v1/models/MODEL/stages/STAGE[?at=AT]. *out is the answer
 * ({"model","stage","version","digest","since","by","image"}, json_decref())
 * with "version" checked against the tag grammar and "digest" against
 * sha256:HEX; @p resp keeps the raw body. MLREG_ENOTFOUND "MODEL:STAGE is
 * empty" when the stage held nothing (STAGE_EMPTY), other registry answers
 * as cli_http_error(), MLREG_ESERVER for a malformed answer.
 */
int cli_stage_resolve(json_t **out, cli_response *resp, cli_client *c, const char *model,
                      const char *stage, const char *at);

/** A release as a command takes it: MODEL@VERSION, MODEL@sha256:HEX or MODEL:STAGE. */
typedef struct {
    cli_ref ref;        /**< the release; for a stage, pinned by cli_release_ref_fetch()
                             or cli_release_ref_pin() */
    cli_stage_ref sref; /**< the stage, when by_stage */
    int by_stage;       /**< 1 for MODEL:STAGE */
    const char *at;     /**< resolve the stage as of this time (RFC 3339 UTC), NULL: now */
    char at_buf[MLREG_TIME_STRLEN];
    /** The digest the reference named (the stage's, or the one given), once
     *  pinned by cli_release_ref_pin(); "" before. */
    char digest[80];
    char given[512]; /**< the reference as typed, for messages */
} cli_release_ref;

/**
 * Parses @p str as any of the three forms. MLREG_EINVALID (a usage error)
 * with a hint: a bare MODEL lists the forms; MODEL@ or MODEL: with nothing
 * after says which part is missing.
 */
int cli_release_ref_parse(cli_release_ref *out, const char *str);

/**
 * Takes --at TIME for @p r: @p text in RFC 3339 (any offset) is kept as UTC
 * in r->at. Only a stage reference has a time: --at with MODEL@VERSION is a
 * usage error (a version names one release for ever). MLREG_EINVALID.
 */
int cli_release_ref_at(cli_release_ref *r, const char *text);

/**
 * For the commands that act on a version (promote, approve, image-tag,
 * withdraw, show): afterwards r->ref is MODEL@VERSION. A stage is resolved
 * once (as of r->at when set) to the release it holds, r->digest its
 * digest, and "MODEL:STAGE is MODEL@VERSION (DIGEST)" goes to stderr. A
 * digest is looked up in the model's release list (GET /api/v1/models/M),
 * r->digest is it; MLREG_ENOTFOUND when no release has it. A version is
 * left as it is (r->digest ""). Errors as cli_stage_resolve().
 */
int cli_release_ref_pin(cli_release_ref *r, cli_client *c);

/**
 * Adds the "did you mean" hint to a failure of a command that used @p r:
 * when @p error is MLREG_ENOTFOUND for MODEL@WORD and WORD is a stage of
 * the registry's policy (its stage answers 200 or STAGE_EMPTY), the message
 * gains "; did you mean MODEL:WORD?". Returns @p error unchanged otherwise
 * (the message too). Makes one request; its own failures are ignored.
 */
int cli_release_ref_hint(int error, cli_client *c, const cli_release_ref *r);

/**
 * Parses an --at TIME argument (RFC 3339, any offset) into UTC text as the
 * registry's ?at= takes it, keeping the fraction as given. MLREG_EINVALID.
 */
int cli_at_parse(char out[MLREG_TIME_STRLEN], const char *text);

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
