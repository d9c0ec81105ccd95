/*
 * gw.h — the gateway's private state, shared by gateway.c (lifecycle,
 * health checks, reload), proxy.c (one request) and http.c (the front).
 *
 * Lock order: gw->mu, then an upstream's breaker mutex, the client pool
 * mutex, the ledger mutex, gw->audit_mu. Each is held briefly and never
 * across an upstream call; the snapshot is reference-counted so a request
 * keeps its config while a reload swaps in the next one.
 */
#ifndef SLM_GATEWAY_GW_H
#define SLM_GATEWAY_GW_H

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "gateway/breaker.h"
#include "gateway/client.h"
#include "gateway/config.h"
#include "gateway/detect.h"
#include "gateway/gateway.h"
#include "gateway/ledger.h"

/* Runtime state of one upstream; lives as long as the gateway and is
 * shared by every config generation that names the upstream. */
typedef struct slm_gw_upstate {
    char *name;
    _Atomic int outstanding;       /* requests in flight to it                  */
    _Atomic bool healthy;          /* last active health check (true at start)  */
    slm_gw_breaker breaker;
    _Atomic uint64_t n_requests, n_failures;
} slm_gw_upstate;

/* One config generation. */
typedef struct slm_gw_snap {
    slm_gw_config *cfg;
    slm_gw_upstate **ups;          /* per cfg->upstreams[i]                    */
    _Atomic int refs;
} slm_gw_snap;

/* Counters for /metrics. */
typedef struct slm_gw_metrics {
    _Atomic uint64_t requests, errors, fallbacks, retries, rejected_budget, private_local, private_redacted;
    _Atomic uint64_t streams, streams_broken, cascade_accepted, cascade_escalated;
    _Atomic uint64_t shadow_sent, shadow_dropped, shadow_failed;
    _Atomic uint64_t tokens_in, tokens_out;
    _Atomic uint64_t cost_micros, counterfactual_micros;     /* money × 1e6   */
    _Atomic uint64_t lat_buckets[12], lat_count, lat_sum_us;  /* histogram   */
} slm_gw_metrics;

/* Counters of one (route, tier) pair, for /metrics; created on first use
 * and never freed before the gateway (a fixed table: routes × tiers is
 * small). tier "" is a request no upstream answered. */
#define SLM_GW_MAX_RSTATS 512
typedef struct slm_gw_rstat {
    char route[64], tier[64];
    _Atomic uint64_t requests, errors, tokens_in, tokens_out, cost_micros;
    _Atomic uint64_t lat_buckets[12], lat_count, lat_sum_us;
} slm_gw_rstat;

struct slm_gw {
    pthread_mutex_t mu;            /* guards snap, reg, n_reg                  */
    slm_gw_snap *snap;
    slm_gw_upstate **reg; int n_reg;
    slm_gw_detector *det;
    slm_gw_client *client;
    slm_gw_ledger *ledger;         /* NULL when the config has none            */
    pthread_mutex_t audit_mu;      /* guards audit writes                      */
    FILE *audit;
    void *daemon;                  /* struct MHD_Daemon                        */
    int port;
    pthread_t health_thread; bool health_running;
    pthread_mutex_t stop_mu;       /* guards stopping; with stop_cv            */
    pthread_cond_t stop_cv;
    bool stopping;
    struct slm_gw_shadow *shadow;  /* shadow workers and their queue (shadow.c) */
    _Atomic uint64_t seq;          /* request ids                              */
    uint64_t id_salt;
    slm_gw_metrics m;
    pthread_mutex_t rstat_mu;      /* guards adding to rstats (reads are lock-free) */
    slm_gw_rstat *rstats;          /* SLM_GW_MAX_RSTATS entries               */
    _Atomic int n_rstats;
};

/* The counters of (route, tier), created if new; NULL when the table is
 * full or out of memory. */
slm_gw_rstat *slm_gw_rstat_get(slm_gw *gw, const char *route, const char *tier);

/* Takes a reference on the current snapshot / drops one. */
slm_gw_snap *slm_gw_snap_get(slm_gw *gw);
void slm_gw_snap_put(slm_gw_snap *s);

double slm_gw_now(void);           /* monotonic seconds                        */
double slm_gw_wall(void);          /* unix seconds                             */

/* One client request, as the front hands it over. */
typedef struct slm_gw_request {
    const char *endpoint;          /* "/chat/completions" or "/completions"    */
    const char *authorization;     /* the Authorization header or NULL         */
    const char *task;              /* X-SLM-Task or NULL                       */
    const char *body; size_t len;
} slm_gw_request;

typedef struct slm_gw_call slm_gw_call;

/* What goes back to the client. */
typedef struct slm_gw_reply {
    int status;
    char *body; size_t len;        /* slm_malloc'd                             */
    char content_type[128];
    char request_id[40];
    char route[64], tier[64], upstream[64];
    int retry_after;               /* seconds, 0: none                         */
    char cascade[48];              /* cascade outcome ("" when not a cascade)  */
    slm_gw_call *stream;           /* non-NULL: a live stream; the front reads it
                                    * with slm_gw_call_pull, then must call
                                    * slm_gw_call_done (body is then unused)   */
} slm_gw_reply;

/* Serves one request end to end (route, private data, budget, fallback,
 * ledger). Always fills rp; returns 0, or SLM_ENOMEM when even the error
 * reply could not be built. */
int slm_gw_proxy(slm_gw *gw, const slm_gw_request *rq, slm_gw_reply *rp);

/* A live stream: copies up to cap bytes for the client; 0 at the end.
 * Blocks until the upstream sends more, ends or stalls (an upstream that
 * breaks mid-stream ends with an error event). */
long slm_gw_call_pull(slm_gw_call *c, char *buf, size_t cap);
/* Ends a stream (client_gone: the client left before the end): aborts the
 * upstream if still running, writes the ledger row, frees the call. */
void slm_gw_call_done(slm_gw_call *c, bool client_gone);

/* The HTTP front (http.c). */
int  slm_gw_http_start(slm_gw *gw, const char *host, int port, slm_err *err);
void slm_gw_http_stop(slm_gw *gw);
/* /metrics text (slm_malloc'd). */
char *slm_gw_metrics_text(slm_gw *gw, size_t *len);

#endif
