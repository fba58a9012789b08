/* error.c: the per-thread error message and the code names. */
#include "mlreg/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[512];

/* Formats into a scratch buffer first: callers may pass mlreg_error_last()
 * itself as an argument to add context ("reading X: %s"), and vsnprintf into
 * the buffer it reads from is undefined behaviour. */
int mlreg_error_set(int code, const char *fmt, ...)
{
    char scratch[sizeof(last_message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(scratch, sizeof(scratch), fmt, ap);
    va_end(ap);
    memcpy(last_message, scratch, sizeof(last_message));
    return code;
}

const char *mlreg_error_last(void)
{
    return last_message;
}

void mlreg_error_clear(void)
{
    last_message[0] = '\0';
}

const char *mlreg_strerror(int code)
{
    switch (code) {
    case MLREG_OK: return "ok";
    case MLREG_ENOTFOUND: return "not found";
    case MLREG_EEXISTS: return "already exists";
    case MLREG_EINVALID: return "invalid input";
    case MLREG_EMISMATCH: return "digest or size mismatch";
    case MLREG_EAUTH: return "authentication required";
    case MLREG_EFORBIDDEN: return "forbidden";
    case MLREG_EGATE: return "gate failed";
    case MLREG_ENOSPACE: return "no space left";
    case MLREG_EIO: return "i/o error";
    case MLREG_ENOMEM: return "out of memory";
    case MLREG_ETOOBIG: return "too large";
    case MLREG_ERANGE: return "range not satisfiable";
    case MLREG_EDENIED: return "denied";
    case MLREG_EUNREACHABLE: return "unreachable";
    case MLREG_ESERVER: return "server error";
    case MLREG_EBLOBUNKNOWN: return "blob unknown";
    case MLREG_EUNSUPPORTED: return "unsupported";
    case MLREG_EQUOTA: return "over quota";
    case MLREG_ESIGNATURE: return "signature does not match";
    case MLREG_EUNAVAILABLE: return "the registry cannot take changes now";
    case MLREG_EGONE: return "purged";
    default: return "unknown error";
    }
}
