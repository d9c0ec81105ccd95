/*
 * pool.c — persistent worker threads woken per job.
 *
 * Workers wait on a condition variable for the job generation to change,
 * spin briefly first (a decode step issues many short jobs back to back),
 * run their share, and count down `pending`; the caller runs share 0 and
 * waits for pending to reach zero. Lock order: only p->mu exists.
 */
#include "util/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "util/alloc.h"

/* Iterations a worker spins for the next job before it sleeps (0.1-0.15
 * ms per 100k on the machine this was tuned on): long enough to cover the sequential work between the
 * jobs of a decode step (norms, RoPE, sampling, the server's bookkeeping),
 * so that waking a sleeping worker (a futex call and a reschedule) stays
 * rare while tokens are being generated. */
#ifndef POOL_SPINS
#define POOL_SPINS 400000
#endif

struct slm_pool {
    int n;                        /* threads including the caller          */
    pthread_t *threads;           /* n - 1 workers                         */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    _Atomic unsigned gen;         /* job generation                         */
    _Atomic int pending;          /* workers still running the job         */
    slm_pool_fn fn;               /* current job                           */
    void *arg;
    _Atomic int quit;
};

typedef struct worker_arg { slm_pool *p; int ith; } worker_arg;

static void *worker(void *a) {
    slm_pool *p = ((worker_arg *)a)->p;
    int ith = ((worker_arg *)a)->ith;
    slm_free(a);
    unsigned seen = 0;
    for (;;) {
        /* spin a little, then sleep */
        int spins = 0;
        while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit) && spins < POOL_SPINS) spins++;
        if (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = atomic_load(&p->gen);
        p->fn(p->arg, ith, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

slm_pool *slm_pool_new(int n_threads) {
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 512) n_threads = 512;
    slm_pool *p = slm_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = slm_calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) goto fail;
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = slm_malloc(sizeof *wa);
            if (!wa) { p->n = i; goto fail; }
            wa->p = p;
            wa->ith = i;
            if (pthread_create(&p->threads[i - 1], NULL, worker, wa)) { slm_free(wa); p->n = i; goto fail; }
        }
    }
    return p;
fail:
    slm_pool_free(p);
    return NULL;
}

void slm_pool_free(slm_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n && p->threads; i++) pthread_join(p->threads[i - 1], NULL);
    slm_free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    slm_free(p);
}

int slm_pool_size(const slm_pool *p) { return p->n; }

void slm_pool_run(slm_pool *p, slm_pool_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    if (atomic_load(&p->pending) > 0) {
        int spins = 0;
        while (atomic_load(&p->pending) > 0 && spins < 200000) spins++;
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
