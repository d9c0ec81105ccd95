/*
 * alloc.c — counting allocator. Each block carries a 16-byte header holding
 * its size, so frees subtract exactly what was added. The counter and the
 * fault-injection countdown are process-wide atomics (like redis zmalloc's
 * used_memory): allocation accounting is the one global by design.
 */
#include "util/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HDR 16

static _Atomic size_t g_used;
static _Atomic long   g_fail_countdown;

void slm_alloc_fail_after(long n) { atomic_store(&g_fail_countdown, n); }

static int should_fail(void) {
    long c = atomic_load(&g_fail_countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&g_fail_countdown, &c, c - 1))
            return c == 1;
    }
    return 0;
}

void *slm_malloc(size_t n) {
    if (n > SIZE_MAX - HDR || should_fail()) return NULL;
    unsigned char *p = malloc(n + HDR);
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    atomic_fetch_add(&g_used, n);
    return p + HDR;
}

void *slm_calloc(size_t count, size_t n) {
    size_t total;
    if (!slm_mul_ok(count, n, &total)) return NULL;
    void *p = slm_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void *slm_realloc(void *ptr, size_t n) {
    if (!ptr) return slm_malloc(n);
    if (n > SIZE_MAX - HDR || should_fail()) return NULL;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    unsigned char *p = realloc(base, n + HDR);
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    atomic_fetch_sub(&g_used, old);
    atomic_fetch_add(&g_used, n);
    return p + HDR;
}

void slm_free(void *ptr) {
    if (!ptr) return;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t n;
    memcpy(&n, base, sizeof n);
    atomic_fetch_sub(&g_used, n);
    free(base);
}

char *slm_strndup(const char *s, size_t n) {
    char *d = slm_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *slm_strdup(const char *s) { return slm_strndup(s, strlen(s)); }

size_t slm_mem_used(void) { return atomic_load(&g_used); }
