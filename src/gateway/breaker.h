/*
 * breaker.h — a circuit breaker per upstream. Closed: requests pass and
 * consecutive failures are counted; at `failures` it opens. Open: requests
 * are refused until `cooldown_ms` has passed, then one probe is let through
 * (half-open). The probe's success closes it; its failure opens it again for
 * another cooldown. Times are seconds on a monotonic clock, passed in so
 * tests can drive the clock.
 */
#ifndef SLM_GATEWAY_BREAKER_H
#define SLM_GATEWAY_BREAKER_H

#include <pthread.h>
#include <stdbool.h>

typedef enum slm_gw_bstate { SLM_GW_CLOSED, SLM_GW_OPEN, SLM_GW_HALF_OPEN } slm_gw_bstate;

typedef struct slm_gw_breaker {
    pthread_mutex_t mu;       /* guards the fields below; a leaf lock         */
    slm_gw_bstate state;
    int n_failed;             /* consecutive failures while closed            */
    double open_until;        /* open: when a probe may go                    */
    bool probing;             /* half-open: the probe is in flight            */
} slm_gw_breaker;

void slm_gw_breaker_init(slm_gw_breaker *b);
void slm_gw_breaker_destroy(slm_gw_breaker *b);
/* May a request go now? In half-open, true only for the one probe. */
bool slm_gw_breaker_allow(slm_gw_breaker *b, double now);
/* Whether the breaker would let a request through now, without claiming
 * the probe (for choosing among upstreams). */
bool slm_gw_breaker_peek(slm_gw_breaker *b, double now);
/* Records the outcome of a request that allow() let through. */
void slm_gw_breaker_record(slm_gw_breaker *b, bool ok, double now, int failures, int cooldown_ms);
slm_gw_bstate slm_gw_breaker_state(slm_gw_breaker *b);

#endif
