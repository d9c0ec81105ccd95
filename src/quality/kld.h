/*
 * kld.h — how far a quantized model's next-token distributions are from its
 * base model's, over the same text and the same windows as perplexity
 * (quality/ppl.h: same tokenization, same BOS rule, same scored tokens).
 *
 * Per scored token both models' logits rows give full softmaxes (log-sum-exp
 * stabilised, double precision) and the figures llama.cpp's --kl-divergence
 * reports:
 *   KL(base ‖ quant) = Σ_i p_base(i) · (log p_base(i) − log p_quant(i)),
 *   top-1 agreement (both rows' argmax equal), NLL of the correct token under
 *   each (so PPL of each and ppl_ratio = exp(mean(NLL_q − NLL_base)), with the
 *   standard error of that mean difference — it accounts for the strong
 *   correlation of the two NLLs), and Δp = p_quant(correct) − p_base(correct).
 * A rounding-level negative KL (identical rows give exactly 0) is clamped to
 * 0. The KL values are kept, one float per scored token, for the median,
 * 99th percentile and maximum; logits are not kept past their window.
 *
 * The two models are run in one process, window by window: two contexts and
 * two windows of logits in memory at a time.
 */
#ifndef SLM_QUALITY_KLD_H
#define SLM_QUALITY_KLD_H

#include <stddef.h>
#include <stdint.h>

#include "quality/ppl.h"
#include "quality/stats.h"
#include "slm/slm.h"

/* One scored position. */
typedef struct slm_kld_row {
    double  kld;              /* KL(base ‖ quant), nats, >= 0                       */
    double  nll_base, nll;    /* −log p of the correct token under base / quant     */
    double  p_base, p;        /* probability of the correct token                   */
    int32_t top_base, top;    /* argmax of each row                                 */
} slm_kld_row;

/* Compares two rows of n_vocab logits; target is the correct next token. */
void slm_kld_row_compute(const float *base, const float *quant, int32_t n_vocab, int32_t target, slm_kld_row *out);

typedef struct slm_kld_result {
    int64_t n_tokens;           /* tokens scored                                     */
    int32_t n_windows;          /* windows evaluated                                 */
    double  kld_mean, kld_stderr;
    double  kld_median, kld_p99, kld_max;   /* 0 in running results; set at the end */
    double  top1_agreement;     /* fraction 0..1 of rows whose argmax agree          */
    double  top1_stderr;        /* binomial standard error of that fraction          */
    slm_ppl_result base, quant; /* perplexity of each over the scored tokens         */
    double  ppl_ratio;          /* ppl(quant) / ppl(base)                            */
    double  ppl_ratio_stderr;   /* ratio · se(mean of NLL_q − NLL_base)              */
    double  dp_mean, dp_stderr; /* mean Δp of the correct token (quant − base)       */
    double  seconds;            /* wall time of both models' decoding and scoring    */
} slm_kld_result;

/* Accumulates rows; keeps one float KL value per row for percentiles. */
typedef struct slm_kld_acc {
    slm_stats kld, nll_base, nll, nll_diff, dp;
    int64_t   n_same_top;
    float    *values;           /* KL values in arrival order (sorted by _finish)    */
    size_t    n_values, cap_values;
} slm_kld_acc;

/* Room for cap rows (the plan says how many: n_windows × n_scored). */
int  slm_kld_acc_init(slm_kld_acc *a, size_t cap, slm_err *err);
/* Adds a row; SLM_ERANGE past the capacity given to _init. */
int  slm_kld_acc_add(slm_kld_acc *a, const slm_kld_row *r, slm_err *err);
/* Means, errors, ratio (no percentiles): cheap, for per-window lines. */
void slm_kld_acc_summary(const slm_kld_acc *a, slm_kld_result *r);
/* Everything, percentiles included; sorts the stored values. */
void slm_kld_acc_finish(slm_kld_acc *a, slm_kld_result *r);
void slm_kld_acc_free(slm_kld_acc *a);

/* Writes r's figures as keys of the object open in w: kld_mean, kld_stderr,
 * kld_median, kld_p99, kld_max, top1_agreement, top1_stderr, ppl_base,
 * ppl_base_stderr, ppl, ppl_stderr, ppl_ratio, ppl_ratio_stderr, dp_mean,
 * dp_stderr, n_tokens. */
void slm_kld_result_json(slm_jw *w, const slm_kld_result *r);

/* SLM_EINVAL naming the first difference when the two models do not share
 * a vocabulary (size, kind, BOS/EOS ids, BOS rule or any token's text). */
int slm_kld_vocab_check(const slm_model *base, const slm_model *quant, slm_err *err);

typedef int (*slm_kld_window_fn)(void *ud, int32_t n_done, int32_t n_windows, const slm_kld_result *running);

/* Runs both models over the windows of tokens (tokenized with the base's
 * vocabulary, BOS included) and fills out. Checks the vocabularies first.
 * fn (may be NULL) sees running figures after each window; nonzero cancels
 * (SLM_ECANCELED). */
int slm_kld_run(slm_model *base, slm_model *quant, const int32_t *tokens, int32_t n_tokens, const slm_ppl_params *p,
                slm_kld_window_fn fn, void *ud, slm_kld_result *out, slm_err *err);

#endif
