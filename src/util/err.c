/* err.c — status codes to text and error-context formatting. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *slm_strerror(int code) {
    switch (code) {
    case SLM_OK:           return "ok";
    case SLM_EINVAL:       return "invalid argument";
    case SLM_ENOMEM:       return "out of memory";
    case SLM_EIO:          return "input/output error";
    case SLM_EFORMAT:      return "malformed file";
    case SLM_EUNSUPPORTED: return "unsupported";
    case SLM_ERANGE:       return "out of range";
    case SLM_ENOTFOUND:    return "not found";
    case SLM_EBUSY:        return "busy";
    case SLM_ETIMEDOUT:    return "timed out";
    case SLM_ECANCELED:    return "cancelled";
    default:               return "unknown error";
    }
}

int slm_err_set(slm_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void slm_err_clear(slm_err *err) {
    if (err) { err->code = 0; err->msg[0] = 0; }
}
