/*
 * adapter.h — upstream adapters: how a request in OpenAI's format becomes a
 * request to one kind of provider, and how its answer comes back in
 * OpenAI's format. One struct of function pointers per provider kind
 * ("openai" for slm serve and OpenAI-compatible providers, "anthropic" for
 * the Messages API), picked by the upstream's `adapter` setting.
 */
#ifndef SLM_GATEWAY_ADAPTER_H
#define SLM_GATEWAY_ADAPTER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include "gateway/config.h"
#include "util/json.h"

#define SLM_GW_MAX_HEADERS 6

typedef struct slm_gw_up_request {
    char url[1024];
    char *body; size_t len;                  /* cJSON-allocated (cJSON_free)   */
    char hdr_buf[SLM_GW_MAX_HEADERS][512];
    const char *headers[SLM_GW_MAX_HEADERS];
    int n_headers;
} slm_gw_up_request;

/* Per-stream state of a translating adapter. */
typedef struct slm_gw_sse_state {
    char id[96], model[128];
    long tokens_in, tokens_out;   /* -1 until the upstream says              */
    bool role_sent, done;
} slm_gw_sse_state;

typedef struct slm_gw_adapter {
    const char *name;
    /* Builds the upstream request for endpoint ("/chat/completions" or
     * "/completions") from req (the client's JSON, model already set). */
    int (*build)(const slm_gw_upstream_cfg *u, const char *endpoint, const cJSON *req, slm_gw_up_request *out);
    /* Turns a 2xx upstream body into an OpenAI-format body. *out is NULL
     * when body can be passed through unchanged, else cJSON-allocated. */
    int (*translate)(const slm_gw_upstream_cfg *u, const char *body, size_t len, char **out, size_t *out_len);
    /* The adapter can stream: the upstream's SSE stream is OpenAI's (passed
     * through as it is) or stream_event translates it. */
    bool streams;
    /* NULL: pass through. Else: translates one upstream SSE `data:` payload
     * into OpenAI chunks ("data: {…}\n\n" frames, "data: [DONE]\n\n" at the
     * end) appended to out; st carries what later events need. Returns 0,
     * or SLM_ENOMEM. */
    int (*stream_event)(const slm_gw_upstream_cfg *u, const char *data, size_t n, struct slm_gw_sse_state *st,
                        struct slm_jw *out);
} slm_gw_adapter;


/* The adapter named name, or NULL. */
const slm_gw_adapter *slm_gw_adapter_find(const char *name);

/* Reads usage.prompt_tokens/completion_tokens from an OpenAI-format body;
 * -1 for what is absent. */
void slm_gw_usage(const char *body, size_t len, long *in, long *out);

void slm_gw_up_request_clear(slm_gw_up_request *r);

#endif
