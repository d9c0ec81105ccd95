/*
 * target.h — what `slm eval` evaluates: an OpenAI-compatible endpoint over
 * HTTP, or a GGUF model run in-process. Both are one interface (a struct of
 * function pointers, target_http.c and target_local.c), so the scheduler
 * only asks a target to answer messages.
 *
 * A target is described on the command line as
 *   NAME=URL[,model=M][,key_env=VAR][,OPTION=V…]        (http:// or https://)
 *   NAME=path/to/model.gguf[,lora=FILE][,OPTION=V…]     (anything else)
 * with options concurrency=N, rps=R (requests per second), timeout=S (per
 * attempt), retries=N (extra attempts), backoff_ms=MS (first backoff),
 * in=PRICE, out=PRICE (dollars per million tokens), and for local models
 * threads=N, ctx=N, template=NAME.
 *
 * slm_eval_target_complete does the part common to every target: the rate
 * limit (one slot every 1/rps seconds, shared by the target's workers), the
 * attempts, and exponential backoff with jitter between them on what may
 * pass (connect errors, timeouts, broken connections, 429 — waiting at least
 * its Retry-After — and 5xx). A 4xx or a malformed answer is final.
 */
#ifndef SLM_EVAL_TARGET_H
#define SLM_EVAL_TARGET_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include "slm/slm.h"

typedef struct slm_eval_target_cfg {
    char  *name;
    char  *url;               /* http(s) URL; NULL for a local model          */
    char  *model;             /* http: model name sent (default: name);
                                 local: the GGUF path                         */
    char  *key_env;           /* http: env var holding the API key, or NULL   */
    char  *lora;              /* local: adapter path (refused: not yet)       */
    char  *chat_template;     /* local: family name, NULL: the model's        */
    int    concurrency;       /* workers; 0: http 4, local 1                  */
    double rps;               /* 0: unlimited                                 */
    double timeout_s;         /* per attempt; 0: 120                          */
    int    retries;           /* extra attempts; < 0: 3                       */
    int    backoff_ms;        /* first backoff; 0: 500                        */
    int    threads, n_ctx;    /* local: 0 = all cores / min(train ctx, 4096)  */
    bool   has_price;         /* in/out were given                            */
    double price_in, price_out; /* dollars per million tokens                 */
} slm_eval_target_cfg;

/* Parses a --target (or --judge) spec into cfg (cleared first; free with
 * slm_eval_target_cfg_clear). SLM_EINVAL naming the bad part. */
int  slm_eval_target_cfg_parse(const char *spec, slm_eval_target_cfg *cfg, slm_err *err);
void slm_eval_target_cfg_clear(slm_eval_target_cfg *cfg);

/* What one target call gave. */
typedef struct slm_eval_reply {
    char   *output;           /* text (slm_free); NULL when error != 0        */
    long    tokens_in, tokens_out; /* -1 when the target did not say          */
    double  latency_ms;       /* of the last attempt                          */
    int     attempts;         /* 1 + retries made                             */
    int     error;            /* 0, or SLM_E* when no answer came             */
    int     http_status;      /* last HTTP status (0: none or local)          */
    char    error_msg[256];   /* "HTTP 500: …", "timed out after 2 s", …       */
} slm_eval_reply;

void slm_eval_reply_clear(slm_eval_reply *r);

/* One attempt, as a target kind reports it. */
typedef struct slm_eval_attempt {
    char   *output;           /* slm_free                                     */
    long    tokens_in, tokens_out;
    int     http_status;
    int     error;            /* 0 or SLM_E*                                  */
    bool    retryable;        /* the error may pass on another attempt        */
    double  retry_after_s;    /* < 0: none                                    */
    char    msg[256];
} slm_eval_attempt;

typedef struct slm_eval_target slm_eval_target;

/* A kind of target. Workers each own a state (a connection, a KV cache). */
typedef struct slm_eval_target_ops {
    const char *kind;                                            /* "http", "local" */
    int  (*open)(slm_eval_target *t, slm_err *err);              /* sets t->impl   */
    int  (*worker_new)(slm_eval_target *t, void **ws, slm_err *err);
    void (*worker_free)(slm_eval_target *t, void *ws);
    void (*attempt)(slm_eval_target *t, void *ws, const cJSON *messages, const cJSON *params, int timeout_ms,
                    slm_eval_attempt *a);
    void (*close)(slm_eval_target *t);
} slm_eval_target_ops;

struct slm_eval_target {
    slm_eval_target_cfg cfg;
    const slm_eval_target_ops *ops;
    void *impl;                /* the kind's state                              */
    char endpoint[1024];       /* URL called, or the model path                 */
    pthread_mutex_t rate_mu;   /* guards next_slot; leaf lock                   */
    double next_slot;          /* monotonic seconds of the next free slot       */
    pthread_mutex_t judge_mu;  /* guards judge_ws: judge calls take turns       */
    void *judge_ws;            /* worker state for slm_eval_target_ask          */
};

extern const slm_eval_target_ops slm_eval_target_http_ops;
extern const slm_eval_target_ops slm_eval_target_local_ops;

/* Opens a target (loads a model, reads the API key). Takes cfg (zeroed on
 * return). SLM_EUNSUPPORTED for lora, SLM_EINVAL for a missing key. */
int  slm_eval_target_open(slm_eval_target_cfg *cfg, slm_eval_target **out, slm_err *err);
void slm_eval_target_free(slm_eval_target *t);

/* Answers messages with params, retrying as described above. cancel (may be
 * NULL) is polled between attempts and during waits. Always fills reply. */
void slm_eval_target_complete(slm_eval_target *t, void *ws, const cJSON *messages, const cJSON *params,
                              const volatile sig_atomic_t *cancel, slm_eval_reply *reply);

/* One user message, for the LLM judge: serialised per target, retried as
 * above. *text gets the reply (slm_free). */
int  slm_eval_target_ask(slm_eval_target *t, const char *prompt, const cJSON *params, char **text, slm_err *err);

#endif
