/* ref.h: the stage references that commands take on the command line
 * (resolve, pull, status, bundle): MODEL:STAGE, asking the registry what a
 * stage holds (cli_stage_resolve), and a release named either way.
 * Internal to cli/. MODEL@VERSION and MODEL@sha256:HEX are cli_ref_parse
 * (args.h).
 */
#ifndef MLREG_CLI_REF_H
#define MLREG_CLI_REF_H

#include <jansson.h>
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
