/*
 * sched.h — the continuous-batching scheduler: the one thread that owns the
 * inference context. Requests are queued (bounded), admitted between decode
 * steps, prefilled in chunks under a per-step token budget, and every active
 * sequence's next token goes through one batched forward pass. KV memory is
 * a pool of fixed-size blocks shared by all sequences; requests sharing a
 * prompt prefix reuse its blocks. When blocks run out the newest sequence is
 * paused and resumed later (its tokens recomputed), never silently cut.
 *
 * The HTTP side submits a request, then pulls events from its handle (a
 * thread-safe queue filled by the scheduler thread): one per generated token
 * (complete UTF-8 text, stop strings already held back and removed), prompt
 * token log-probabilities when asked, then DONE or ERROR.
 */
#ifndef SLM_SERVE_SCHED_H
#define SLM_SERVE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample/constraint.h"
#include "serve/metrics.h"
#include "slm/slm.h"

typedef struct slm_sched slm_sched;
typedef struct sched_handle sched_handle;

typedef struct sched_params {
    int32_t n_parallel;     /* sequences decoding at once (default 4)              */
    int32_t max_queue;      /* requests waiting beyond those; more → SLM_EBUSY (64) */
    int32_t n_ctx;          /* max tokens per sequence (0: the model's)            */
    size_t  kv_mem;         /* KV pool budget in bytes (0: n_parallel × n_ctx)     */
    int32_t n_threads;      /* compute threads (0: all cores)                      */
    int32_t step_tokens;    /* tokens per forward step: decode + prefill chunks (512) */
    slm_metrics *metrics;   /* may be NULL; not owned                              */
} sched_params;

sched_params sched_default_params(void);

/* Starts the scheduler thread on a loaded model (not owned; must outlive the
 * scheduler). Runs one warm-up forward pass before returning. */
int  sched_new(slm_model *m, const sched_params *p, slm_sched **out, slm_err *err);
/* Stops admitting, cancels what is queued, finishes nothing: callers drain
 * first with sched_idle. Joins the thread. */
void sched_free(slm_sched *s);

typedef struct sched_req {
    const int32_t *prompt;  int32_t n_prompt;   /* copied                          */
    slm_sample_params sample;                   /* logit_bias copied               */
    int32_t max_tokens;                         /* < 0: until the context is full  */
    const char *const *stops; int32_t n_stops;  /* copied                          */
    int32_t top_logprobs;                       /* < 0: no logprobs; 0..20 alternatives */
    bool    echo_logprobs;                      /* log-probabilities of prompt tokens */
    slm_constraint *constraint;                 /* owned by the scheduler from submit on
                                                 * (freed even when submit fails) */
    double  deadline_s;                         /* monotonic seconds; 0: none       */
    double  arrival_s;                          /* monotonic seconds when received  */
} sched_req;

/* Queues a request. SLM_EBUSY when the queue is full (→ 429), SLM_ERANGE when
 * the prompt cannot fit the context (→ 400), SLM_EINVAL for bad fields. */
int sched_submit(slm_sched *s, const sched_req *r, sched_handle **out, slm_err *err);

typedef struct sched_logprob { int32_t token; float logprob; } sched_logprob;

typedef enum sched_ev_kind {
    SCHED_EV_PROMPT,        /* one prompt token (echo_logprobs): token, text, logprob (NaN for the first) */
    SCHED_EV_TOKEN,         /* one generated token: token, text (may be "" while
                             * UTF-8 or a possible stop string is pending), logprob */
    SCHED_EV_DONE,          /* finish ("stop" | "length"), usage                  */
    SCHED_EV_ERROR,         /* error message; code (SLM_ETIMEDOUT, SLM_ENOMEM, …)  */
} sched_ev_kind;

typedef struct sched_event {
    sched_ev_kind kind;
    int32_t token;
    const char *text; size_t text_len;          /* valid until the next sched_next  */
    float   logprob;
    int32_t n_top; const sched_logprob *top;    /* top alternatives, best first     */
    const char *finish;                         /* DONE: "stop" or "length"         */
    int32_t n_prompt, n_cached, n_gen;          /* DONE: usage                      */
    int     code; const char *error;            /* ERROR                            */
} sched_event;

/* Waits up to timeout_ms for the next event: 0 with *ev filled, or
 * SLM_ETIMEDOUT. After DONE or ERROR there are no more events. */
int  sched_next(sched_handle *h, int timeout_ms, sched_event *ev);
/* Stops the request's generation and frees its KV blocks at the next step
 * (client disconnected). Events already queued may still be read. */
void sched_cancel(sched_handle *h);
/* The caller is done with the handle (cancels if unfinished). */
void sched_release(sched_handle *h);

typedef struct sched_stats {
    int32_t queued, active, kv_blocks_used, kv_blocks_total, block_tokens;
    int32_t n_ctx, n_parallel;
} sched_stats;
void sched_get_stats(slm_sched *s, sched_stats *st);
/* True when nothing is queued or active (drain on SIGTERM). */
bool sched_idle(slm_sched *s);

#endif
