/*
 * ppl.h — perplexity of a model over a tokenized text, scored the way
 * llama.cpp's llama-perplexity scores it so the two can be compared.
 *
 * The text is tokenized once, whole (BOS first when the vocabulary adds
 * one) and cut into windows of n_ctx tokens. Each window is decoded from an
 * empty KV cache with its first token replaced by BOS (when the vocabulary
 * adds BOS), as llama-perplexity does. Logits row j of a window (window
 * position j) predicts the token at position j+1; only rows first..n_ctx−2
 * are scored, so each window scores n_ctx−1−first tokens:
 *
 *   chunks (stride 0 or n_ctx, the default): window w is tokens
 *     [w·n_ctx, (w+1)·n_ctx); first = n_ctx/2, i.e. the tokens at window
 *     positions n_ctx/2+1 … n_ctx−1 are scored (255 per window for n_ctx
 *     512, every token with at least n_ctx/2 tokens of context). There are
 *     n_tokens / n_ctx windows. Identical to llama-perplexity -c n_ctx.
 *   sliding (0 < stride < n_ctx): window w starts at token w·stride and
 *     scores its last `stride` tokens (first = n_ctx−1−stride), i.e. the
 *     tokens the slide brought in; floor((n_tokens−n_ctx)/stride)+1 windows.
 *     llama-perplexity --ppl-stride S -c C scores the same tokens with a
 *     window of C+S/2 and does not put BOS in (it replaces the token only
 *     after decoding): compare with --ctx C+S/2 on a vocabulary without BOS.
 *
 * Both modes need at least 2·n_ctx tokens (llama-perplexity's rule). NLL is
 * the negative natural log-probability of the next token from a full
 * log-softmax in double; PPL = exp(mean NLL); its ± is the standard error
 * of the mean NLL carried through exp (PPL·se, what llama.cpp prints), and
 * the 95% interval is exp(mean ± 1.96·se).
 *
 * Memory: one context of n_ctx positions and one window's scored logits
 * (n_scored × n_vocab floats); nothing is kept across windows.
 */
#ifndef SLM_QUALITY_PPL_H
#define SLM_QUALITY_PPL_H

#include <stdint.h>

#include "quality/stats.h"
#include "slm/slm.h"
#include "util/json.h"

typedef struct slm_ppl_params {
    int32_t n_ctx;      /* tokens per window, BOS included (default 512)          */
    int32_t stride;     /* 0 or n_ctx: chunks; 1..n_ctx−1: sliding windows         */
    int32_t n_chunks;   /* windows to evaluate, 0: every window that fits          */
    int32_t n_threads;  /* compute threads, 0: all online cores                    */
} slm_ppl_params;

slm_ppl_params slm_ppl_default_params(void);

/* Where the windows fall and which rows are scored (a pure function of the
 * parameters and the token count). */
typedef struct slm_ppl_plan {
    int32_t n_ctx;       /* window length                                         */
    int32_t stride;      /* tokens between window starts                          */
    int32_t n_windows;   /* windows evaluated (n_chunks applied)                   */
    int32_t n_fit;       /* windows the text holds                                */
    int32_t first;       /* first scored logits row (window position)              */
    int32_t n_scored;    /* tokens scored per window: n_ctx − 1 − first            */
    int32_t bos;         /* token put at each window's start, −1: none             */
} slm_ppl_plan;

/* Plans the windows over n_tokens tokens. SLM_EINVAL for bad parameters,
 * SLM_ERANGE (message names both counts) when the text is shorter than
 * 2·n_ctx tokens. */
int slm_ppl_plan_init(slm_ppl_plan *plan, const slm_ppl_params *p, int32_t n_tokens, int32_t bos, slm_err *err);
/* Index of window w's first token in the text. */
int64_t slm_ppl_window_start(const slm_ppl_plan *plan, int32_t w);
/* The BOS a window starts with for this model: its BOS id when the
 * vocabulary adds BOS, else −1. */
int32_t slm_ppl_model_bos(const slm_model *model);

/* NLL of target under one row of logits: logsumexp(logits) − logits[target],
 * in double. *argmax (may be NULL) gets the row's top token. Non-finite
 * logits give a non-finite result. */
double slm_ppl_row_nll(const float *logits, int32_t n_vocab, int32_t target, int32_t *argmax);
/* log Σ exp(logits), stabilised by the maximum, in double. */
double slm_ppl_row_logsumexp(const float *logits, int32_t n_vocab, int32_t *argmax);

/* One model's evaluator: a context of plan->n_ctx positions and the buffer
 * for one window's scored logits. */
typedef struct slm_ppl_eval slm_ppl_eval;
int  slm_ppl_eval_new(slm_model *model, const slm_ppl_plan *plan, int32_t n_threads, slm_ppl_eval **out,
                      slm_err *err);
/* Decodes window w of tokens (the text the plan was made for) from an empty
 * cache; *rows points at n_scored × n_vocab logits (row i predicts token
 * start + first + 1 + i), owned by e and valid until the next call. */
int  slm_ppl_eval_window(slm_ppl_eval *e, const int32_t *tokens, int32_t w, const float **rows, slm_err *err);
int32_t slm_ppl_eval_n_vocab(const slm_ppl_eval *e);
void slm_ppl_eval_free(slm_ppl_eval *e);

typedef struct slm_ppl_result {
    int64_t n_tokens;        /* tokens scored                                       */
    int32_t n_windows;       /* windows evaluated so far                            */
    double  nll_mean;        /* mean NLL (nats)                                     */
    double  nll_stderr;      /* standard error of the mean NLL                      */
    double  ppl;             /* exp(nll_mean)                                       */
    double  ppl_stderr;      /* ppl · nll_stderr                                    */
    double  ppl_ci95[2];     /* exp(nll_mean ∓ 1.96 · nll_stderr)                   */
    int64_t n_evaluated;     /* tokens run through the model (windows × n_ctx)      */
    double  seconds;         /* wall time of decoding and scoring                   */
} slm_ppl_result;

/* Fills the PPL figures of r from the NLL sample. */
void slm_ppl_result_set(slm_ppl_result *r, const slm_stats *nll);

/* Writes r's figures as keys of the object open in w: ppl, ppl_stderr,
 * ppl_ci95 [lo, hi], nll_mean, nll_stderr, n_tokens. */
void slm_ppl_result_json(slm_jw *w, const slm_ppl_result *r);

/* Called after each window with the running figures; a nonzero return
 * stops the run with SLM_ECANCELED. */
typedef int (*slm_ppl_window_fn)(void *ud, int32_t n_done, int32_t n_windows, const slm_ppl_result *running);

/* Perplexity of model over tokens (the whole text, tokenized with BOS).
 * fn may be NULL. Non-finite logits are an SLM_ERANGE error naming the
 * token. */
int slm_ppl_run(slm_model *model, const int32_t *tokens, int32_t n_tokens, const slm_ppl_params *p,
                slm_ppl_window_fn fn, void *ud, slm_ppl_result *out, slm_err *err);

#endif
