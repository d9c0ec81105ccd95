/*
 * sched_internal.h — the scheduler's private types, shared by sched.c (the
 * loop, admission, batching) and sched_req.c (per-request state: sampling,
 * stop strings, events).
 */
#ifndef SLM_SERVE_SCHED_INTERNAL_H
#define SLM_SERVE_SCHED_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "sample/stop.h"
#include "serve/sched.h"

typedef enum req_state { REQ_QUEUED, REQ_PREFILL, REQ_DECODE, REQ_DONE } req_state;

typedef struct owned_event {
    sched_event ev;                  /* text/top point into the owned copies */
    char *text;
    sched_logprob *top;
} owned_event;

struct sched_handle {
    /* immutable after submit */
    int32_t *tokens; int32_t n_tokens, cap_tokens; /* prompt, then generated     */
    int32_t n_prompt;
    slm_sample_params sample;
    slm_logit_bias *bias;
    int32_t max_tokens, top_logprobs;
    bool echo;
    double deadline_s, arrival_s;
    /* scheduler-thread state */
    req_state state;
    int32_t seq;                     /* KV sequence slot, -1 when none          */
    int32_t n_past;                  /* positions in the KV cache               */
    int32_t n_cached;                /* prompt tokens reused from the cache     */
    int32_t n_gen;
    int32_t echo_next;               /* next prompt position whose logprob is due */
    bool    started;                 /* first prefill step happened             */
    double  last_token_s;
    slm_sampler *sampler;
    slm_detok *detok;
    slm_stopper *stopper;
    slm_constraint *constraint;
    struct sched_handle *next;       /* queue link                              */
    /* shared with the reader */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    owned_event *events; int32_t n_events, head, cap_events;
    owned_event current;             /* last one handed out                     */
    bool finished;                   /* DONE or ERROR queued                    */
    _Atomic int cancelled;
    _Atomic int refs;                /* scheduler + caller                      */
};

/* sched_req.c */
int  req_init(sched_handle *h, const slm_vocab *v, const sched_req *r, slm_err *err);
void req_unref(sched_handle *h);
int  req_push_tokens(sched_handle *h, const int32_t *t, int32_t n);
void req_emit(sched_handle *h, const sched_event *ev);
void req_emit_error(sched_handle *h, int code, const char *msg);

#endif
