/* stage.h: what the stage commands (stage.c) share with the other client
 * commands: asking the registry what a stage holds. Internal to cli/.
 */
#ifndef MLREG_CLI_STAGE_H
#define MLREG_CLI_STAGE_H

#include <jansson.h>

#include "client.h"

/**
 * Asks the registry what stage @p stage of @p model holds now (@p at NULL)
 * or held at time @p at (a cli_time_parse() result): GET
 * /api/v1/models/MODEL/stages/STAGE[?at=AT]. *out is the answer
 * ({"model","stage","version","digest","since","by","image"}, json_decref())
 * with "version" checked against the tag grammar and "digest" against
 * sha256:HEX; @p resp keeps the raw body. MLREG_ENOTFOUND "MODEL:STAGE is
 * empty" when the stage held nothing (STAGE_EMPTY), other registry answers
 * as cli_http_error(), MLREG_ESERVER for a malformed answer.
 */
int cli_stage_resolve(json_t **out, cli_response *resp, cli_client *c, const char *model,
                      const char *stage, const char *at);

#endif
