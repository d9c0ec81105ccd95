/*
 * metrics.h — the server's Prometheus metrics: counters, gauges and
 * latency histograms, updated from any thread (atomics, no locks on the
 * hot path) and rendered as Prometheus text for GET /metrics.
 */
#ifndef SLM_SERVE_METRICS_H
#define SLM_SERVE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct slm_metrics slm_metrics;

typedef enum slm_hist {
    SLM_HIST_TTFT,          /* seconds from arrival to the first generated token */
    SLM_HIST_ITL,           /* seconds between consecutive generated tokens      */
    SLM_HIST_QUEUE,         /* seconds waiting before the first prefill step     */
    SLM_HIST_E2E,           /* seconds from arrival to the last byte             */
    SLM_HIST_COUNT
} slm_hist;

typedef enum slm_counter {
    SLM_CTR_PROMPT_TOKENS,  /* prompt tokens processed (cached ones excluded)    */
    SLM_CTR_CACHED_TOKENS,  /* prompt tokens served from the prefix cache        */
    SLM_CTR_GEN_TOKENS,     /* tokens generated                                  */
    SLM_CTR_PREEMPTIONS,    /* sequences paused because KV blocks ran out        */
    SLM_CTR_COUNT
} slm_counter;

typedef enum slm_gauge {
    SLM_GAUGE_QUEUE,        /* requests waiting                                  */
    SLM_GAUGE_ACTIVE,       /* sequences decoding                                */
    SLM_GAUGE_KV_USED,      /* KV blocks in use                                  */
    SLM_GAUGE_KV_TOTAL,     /* KV blocks in the pool                             */
    SLM_GAUGE_COUNT
} slm_gauge;

slm_metrics *slm_metrics_new(void);
void slm_metrics_free(slm_metrics *m);
void slm_metrics_observe(slm_metrics *m, slm_hist h, double seconds);
void slm_metrics_add(slm_metrics *m, slm_counter c, uint64_t n);
void slm_metrics_set(slm_metrics *m, slm_gauge g, int64_t v);
/* Counts a finished HTTP request by endpoint and status code. */
void slm_metrics_request(slm_metrics *m, const char *endpoint, int status);
/* Renders Prometheus text format into *out (slm_free). */
int  slm_metrics_render(slm_metrics *m, char **out, size_t *len);

#endif
