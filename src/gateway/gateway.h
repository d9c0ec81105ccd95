/*
 * gateway.h — `slm gateway`: an OpenAI-compatible router in front of local
 * slm replicas and frontier providers. It routes each request by model
 * alias, task and rules, keeps private data home, falls back across
 * upstreams and tiers, and writes one ledger row per request with what it
 * cost. This header is the lifecycle: create from a config, start the HTTP
 * front and the health checker, reload a new config, stop.
 */
#ifndef SLM_GATEWAY_GATEWAY_H
#define SLM_GATEWAY_GATEWAY_H

#include "gateway/config.h"

typedef struct slm_gw slm_gw;

/* Creates a gateway from cfg (ownership passes to the gateway, also on
 * failure): opens the ledger and the audit log, compiles the detector. */
int  slm_gw_new(slm_gw_config *cfg, slm_gw **out, slm_err *err);
/* Starts listening and health checking; slm_gw_port tells the port. */
int  slm_gw_start(slm_gw *gw, slm_err *err);
int  slm_gw_port(const slm_gw *gw);
/* Swaps in a new config (ownership passes, also on failure). Requests in
 * flight finish on the config they started with; upstream state (breakers,
 * health, outstanding counts) carries over by upstream name. The listen
 * address and the ledger path are fixed at start. */
int  slm_gw_reload(slm_gw *gw, slm_gw_config *cfg, slm_err *err);
/* Stops accepting, waits for requests in flight, stops the checker. */
void slm_gw_stop(slm_gw *gw);
void slm_gw_free(slm_gw *gw);

#endif
