/*
 * err.h — filling an slm_err. slm_err_set formats one line into the error
 * context (which may be NULL) and returns the code, so callers write
 * `return slm_err_set(err, SLM_EFORMAT, "tensor '%s' …", name);`.
 */
#ifndef SLM_UTIL_ERR_H
#define SLM_UTIL_ERR_H

#include "slm/slm.h"

int slm_err_set(slm_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void slm_err_clear(slm_err *err);

#endif
