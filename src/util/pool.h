/*
 * pool.h — a persistent compute pool. slm_pool_run(pool, fn, arg) calls
 * fn(arg, ith, nth) once on each of nth threads (the caller is thread 0) and
 * returns when all have finished; no threads are created per call. Work is
 * split by the callee from (ith, nth), as ggml's compute params do.
 */
#ifndef SLM_UTIL_POOL_H
#define SLM_UTIL_POOL_H

typedef struct slm_pool slm_pool;
typedef void (*slm_pool_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: the number of online cores. NULL on failure. */
slm_pool *slm_pool_new(int n_threads);
void slm_pool_free(slm_pool *p);
int  slm_pool_size(const slm_pool *p);
void slm_pool_run(slm_pool *p, slm_pool_fn fn, void *arg);

/* Splits [0, n) into nth near-equal ranges; range ith is [*lo, *hi). */
static inline void slm_split(long n, int ith, int nth, long *lo, long *hi) {
    long per = (n + nth - 1) / nth;
    *lo = per * ith < n ? per * ith : n;
    *hi = *lo + per < n ? *lo + per : n;
}

#endif
