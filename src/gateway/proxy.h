/*
 * proxy.h — one request's state as it moves through the gateway, shared by
 * proxy.c (analysis, routing, fallback, cost, ledger), stream.c (a live
 * stream read through to the client), cascade.c (the checks that escalate a
 * local answer) and shadow.c (the asynchronous copy to a candidate tier).
 *
 * A call lives on the heap from slm_gw_proxy until slm_gw_call_finish: for
 * a plain request both happen inside slm_gw_proxy; for a stream the HTTP
 * front reads it with slm_gw_call_pull and ends it with slm_gw_call_done
 * (from the connection's thread), which finishes it.
 */
#ifndef SLM_GATEWAY_PROXY_H
#define SLM_GATEWAY_PROXY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "gateway/gw.h"

/* A partial SSE line (stream.c). */
typedef struct slm_gw_linebuf { char *p; size_t len, cap; } slm_gw_linebuf;

struct slm_gw_call {
    slm_gw *gw;
    slm_gw_snap *snap;
    const slm_gw_config *cfg;
    const slm_gw_request *rq;      /* valid until the handler returns (not for streams' later reads) */
    char endpoint[32];             /* copy of rq->endpoint                       */
    slm_gw_reply *rp;              /* the reply being built (streams: owned copy) */
    slm_gw_reply own_rp;           /* streams keep their reply here              */
    double t0;
    const slm_gw_team_cfg *team;
    const slm_gw_route_cfg *route;
    char task[64];
    char model[128];
    cJSON *json;                   /* the request as sent upstream (redacted)    */
    char *text; size_t text_len, text_cap;  /* the prompt text, joined           */
    unsigned pd_mask;
    long prompt_est;
    bool local_only;               /* restricted to local tiers                  */
    const char *restrict_reason;   /* "private_data" or "budget"                 */
    int up_index;                  /* upstream that answered, or -1              */
    long tok_in, tok_out;
    double cost, cf_cost;
    int load_at_start;             /* outstanding at the upstream when sent      */
    char error[256];
    char cascade[48];              /* "", "accepted", "escalated:low_logprob"…   */
    /* streaming */
    bool stream;                   /* the client asked for stream: true          */
    slm_gw_stream *up;             /* the live upstream stream                   */
    slm_gw_linebuf out_line;       /* SSE line going to the client, being assembled */
    long s_chunks, s_in, s_out;    /* content events; usage when the stream has it */
    char *answer; size_t answer_len, answer_cap; /* answer text (bounded)       */
    bool s_failed, s_done;         /* upstream broke mid-stream; [DONE] seen     */
    bool s_err_sent;               /* the error event went out                   */
    bool client_gone;
    char *s_pending; size_t s_pending_len, s_pending_pos; /* error event bytes   */
    /* a translating adapter's stream (Anthropic): its events, turned into
     * OpenAI chunks one by one */
    const struct slm_gw_adapter *tr;   /* NULL: the bytes pass through       */
    struct slm_gw_sse_state *sse;
    slm_gw_linebuf up_line;            /* upstream SSE line being read        */
    struct slm_jw *t_w;                /* chunks being translated (stream.c)  */
    char *t_out; size_t t_out_len, t_out_pos;   /* translated bytes to send  */
    bool t_eof;                        /* the upstream ended cleanly          */
};

/* What an answer cost on tier t: frontier tiers by tokens (0 when either
 * count is unknown), local tiers by the replica's time over `sharing`
 * requests served at once. */
double slm_gw_tier_cost(const slm_gw_tier_cfg *t, long in, long out, double seconds, int sharing);

/* Upstreams of tier t that may take a request now (healthy, breaker not
 * open), least outstanding first, ties rotated by `rot`; returns how many
 * were written to out. */
int slm_gw_candidates(slm_gw_snap *snap, int t, unsigned rot, int *out);

/* Answer text of a 2xx OpenAI-format body (choices[0].message.content or
 * choices[0].text), slm_malloc'd; NULL when absent. */
char *slm_gw_answer_text(const char *body, size_t len);

/* Streams (stream.c). Counts a chunk of SSE bytes passing through. */
void slm_gw_stream_account(slm_gw_call *c, const char *p, size_t n);

/* Cascade checks (cascade.c). Returns NULL when the first tier's 2xx body
 * passes the route's checks, else the reason ("low_logprob",
 * "invalid_json", "refusal"). mean_lp receives the mean token logprob
 * (NAN when the body has none). */
const char *slm_gw_cascade_check(const slm_gw_route_cfg *r, const cJSON *req, const char *body, size_t len,
                                 double *mean_lp);
/* Removes choices[].logprobs from an OpenAI-format body in place (when the
 * gateway asked for them and the client did not). */
int slm_gw_strip_logprobs(char **body, size_t *len);

/* One shadow comparison, as the ledger stores it (table "shadow"). */
typedef struct slm_gw_shadow_row {
    double time;                 /* unix seconds                              */
    const char *request_id, *route, *task;
    const char *primary_tier, *primary_upstream, *candidate_tier, *candidate_upstream;
    const char *primary_output, *candidate_output;  /* candidate NULL on error */
    double exact, normalized, json_fields;           /* 0..1; NAN: not computed */
    long tokens_in, tokens_out;  /* the candidate's usage; -1 unknown          */
    double latency_ms, cost;     /* the candidate's                            */
    int status;                  /* the candidate's HTTP status (0: none)      */
    const char *error;           /* NULL or why the candidate gave no answer   */
} slm_gw_shadow_row;

/* Shadow traffic (shadow.c). */
int  slm_gw_shadow_start(slm_gw *gw, slm_err *err);
void slm_gw_shadow_stop(slm_gw *gw);
/* Queues a copy of c's request for the route's shadow tier when the sample
 * says so; never blocks (a full queue drops it and counts the drop). */
void slm_gw_shadow_offer(slm_gw_call *c, const char *primary_answer);
/* Agreement of two answers: exact, after normalisation (case, spacing,
 * trailing punctuation), and JSON field-level (share of the top-level keys
 * of either object whose values are equal; NAN when either is not a JSON
 * object). */
void slm_gw_agreement(const char *a, const char *b, double *exact, double *normalized, double *json_fields);

#endif
