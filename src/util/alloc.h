/*
 * alloc.h — the one allocation wrapper. Every byte slm allocates goes through
 * here so that memory use is a real number (slm_mem_used, /metrics, budgets)
 * and tests can make the N-th allocation fail to prove that running out of
 * memory is an error, not a crash.
 */
#ifndef SLM_UTIL_ALLOC_H
#define SLM_UTIL_ALLOC_H

#include <stddef.h>
#include "slm/slm.h"

void *slm_malloc(size_t n);               /* NULL on failure or n == 0 overflow */
void *slm_calloc(size_t count, size_t n); /* zeroed; NULL on overflow         */
void *slm_realloc(void *p, size_t n);
char *slm_strdup(const char *s);
char *slm_strndup(const char *s, size_t n);
/* slm_free is declared in slm.h */

/* Test hook: the n-th allocation from now fails (n >= 1); 0 disables. */
void slm_alloc_fail_after(long n);

/* Overflow-checked a*b; returns false on overflow. */
static inline int slm_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

#endif
