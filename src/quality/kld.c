/*
 * kld.c — per-position divergence between two models and its accumulation
 * (see kld.h). Each row pair costs three passes over the vocabulary: the
 * log-sum-exp of each row (max, then Σ exp in double), then one pass adding
 * p_base·(log p_base − log p_quant). The exp of the base row is recomputed
 * in the last pass instead of being stored: no n_vocab scratch per row.
 */
#include "quality/kld.h"

#include <math.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/progress.h"

void slm_kld_row_compute(const float *base, const float *quant, int32_t n_vocab, int32_t target, slm_kld_row *out) {
    int32_t top_b, top_q;
    double lse_b = slm_ppl_row_logsumexp(base, n_vocab, &top_b);
    double lse_q = slm_ppl_row_logsumexp(quant, n_vocab, &top_q);
    double kl = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) {
        double lp = (double)base[i] - lse_b, lq = (double)quant[i] - lse_q;
        kl += exp(lp) * (lp - lq);
    }
    out->kld = kl < 0 ? 0.0 : kl;   /* rounding below 0 clamped; NaN passes through */
    out->nll_base = lse_b - (double)base[target];
    out->nll = lse_q - (double)quant[target];
    out->p_base = exp(-out->nll_base);
    out->p = exp(-out->nll);
    out->top_base = top_b;
    out->top = top_q;
}

int slm_kld_acc_init(slm_kld_acc *a, size_t cap, slm_err *err) {
    memset(a, 0, sizeof *a);
    slm_stats_init(&a->kld);
    slm_stats_init(&a->nll_base);
    slm_stats_init(&a->nll);
    slm_stats_init(&a->nll_diff);
    slm_stats_init(&a->dp);
    if (cap) {
        a->values = slm_calloc(cap, sizeof *a->values);
        if (!a->values) return slm_err_set(err, SLM_ENOMEM, "out of memory for %zu KL values", cap);
    }
    a->cap_values = cap;
    return 0;
}

int slm_kld_acc_add(slm_kld_acc *a, const slm_kld_row *r, slm_err *err) {
    if (a->n_values >= a->cap_values)
        return slm_err_set(err, SLM_ERANGE, "more than the %zu KL values planned", a->cap_values);
    a->values[a->n_values++] = (float)r->kld;
    slm_stats_add(&a->kld, r->kld);
    slm_stats_add(&a->nll_base, r->nll_base);
    slm_stats_add(&a->nll, r->nll);
    slm_stats_add(&a->nll_diff, r->nll - r->nll_base);
    slm_stats_add(&a->dp, r->p - r->p_base);
    a->n_same_top += r->top == r->top_base;
    return 0;
}

void slm_kld_acc_summary(const slm_kld_acc *a, slm_kld_result *r) {
    int64_t n = a->kld.n;
    r->n_tokens = n;
    r->kld_mean = slm_stats_mean(&a->kld);
    r->kld_stderr = slm_stats_stderr(&a->kld);
    r->kld_max = a->kld.max;
    r->kld_median = r->kld_p99 = 0;
    r->top1_agreement = n ? (double)a->n_same_top / (double)n : 0.0;
    r->top1_stderr = n > 1 ? sqrt(r->top1_agreement * (1.0 - r->top1_agreement) / (double)(n - 1)) : 0.0;
    int32_t nw = r->base.n_windows;
    int64_t ne = r->base.n_evaluated;
    double secs = r->base.seconds;
    slm_ppl_result_set(&r->base, &a->nll_base);
    slm_ppl_result_set(&r->quant, &a->nll);
    r->base.n_windows = r->quant.n_windows = nw;
    r->base.n_evaluated = r->quant.n_evaluated = ne;
    r->base.seconds = r->quant.seconds = secs;
    double d = slm_stats_mean(&a->nll_diff);
    r->ppl_ratio = exp(d);
    r->ppl_ratio_stderr = r->ppl_ratio * slm_stats_stderr(&a->nll_diff);
    r->dp_mean = slm_stats_mean(&a->dp);
    r->dp_stderr = slm_stats_stderr(&a->dp);
}

void slm_kld_acc_finish(slm_kld_acc *a, slm_kld_result *r) {
    slm_kld_acc_summary(a, r);
    slm_stats_sort_f32(a->values, a->n_values);
    r->kld_median = slm_stats_percentile(a->values, a->n_values, 0.5);
    r->kld_p99 = slm_stats_percentile(a->values, a->n_values, 0.99);
}

void slm_kld_acc_free(slm_kld_acc *a) {
    if (!a) return;
    slm_free(a->values);
    a->values = NULL;
    a->n_values = a->cap_values = 0;
}

static void num(slm_jw *w, const char *key, double v) {
    slm_jw_key(w, key);
    slm_jw_num(w, v);
}

void slm_kld_result_json(slm_jw *w, const slm_kld_result *r) {
    num(w, "kld_mean", r->kld_mean);
    num(w, "kld_stderr", r->kld_stderr);
    num(w, "kld_median", r->kld_median);
    num(w, "kld_p99", r->kld_p99);
    num(w, "kld_max", r->kld_max);
    num(w, "top1_agreement", r->top1_agreement);
    num(w, "top1_stderr", r->top1_stderr);
    num(w, "ppl_base", r->base.ppl);
    num(w, "ppl_base_stderr", r->base.ppl_stderr);
    num(w, "ppl", r->quant.ppl);
    num(w, "ppl_stderr", r->quant.ppl_stderr);
    num(w, "ppl_ratio", r->ppl_ratio);
    num(w, "ppl_ratio_stderr", r->ppl_ratio_stderr);
    num(w, "dp_mean", r->dp_mean);
    num(w, "dp_stderr", r->dp_stderr);
    slm_jw_key(w, "n_tokens");
    slm_jw_int(w, r->n_tokens);
}

int slm_kld_vocab_check(const slm_model *base, const slm_model *quant, slm_err *err) {
    const slm_vocab *vb = slm_model_vocab(base), *vq = slm_model_vocab(quant);
    int32_t nb = slm_vocab_n_tokens(vb), nq = slm_vocab_n_tokens(vq);
    if (nb != nq) return slm_err_set(err, SLM_EINVAL, "the vocabularies differ: %d tokens in the base, %d in the other model", nb, nq);
    if (strcmp(slm_vocab_kind(vb), slm_vocab_kind(vq)))
        return slm_err_set(err, SLM_EINVAL, "the vocabularies differ: %s tokenizer in the base, %s in the other model",
                           slm_vocab_kind(vb), slm_vocab_kind(vq));
    if (slm_vocab_bos(vb) != slm_vocab_bos(vq) || slm_vocab_eos(vb) != slm_vocab_eos(vq) ||
        slm_vocab_add_bos(vb) != slm_vocab_add_bos(vq))
        return slm_err_set(err, SLM_EINVAL, "the vocabularies differ in their BOS/EOS tokens (base bos %d eos %d, other bos %d eos %d)",
                           slm_vocab_bos(vb), slm_vocab_eos(vb), slm_vocab_bos(vq), slm_vocab_eos(vq));
    slm_model_info ib, iq;
    slm_model_get_info(base, &ib);
    slm_model_get_info(quant, &iq);
    if (ib.n_vocab != iq.n_vocab)
        return slm_err_set(err, SLM_EINVAL, "the output layers differ: %d logits in the base, %d in the other model",
                           ib.n_vocab, iq.n_vocab);
    for (int32_t i = 0; i < nb; i++) {
        size_t lb = 0, lq = 0;
        const char *tb = slm_vocab_token_text(vb, i, &lb), *tq = slm_vocab_token_text(vq, i, &lq);
        if (!tb || !tq || lb != lq || memcmp(tb, tq, lb))
            return slm_err_set(err, SLM_EINVAL, "the vocabularies differ at token %d ('%.*s' in the base, '%.*s' in the other model)",
                               i, tb ? (int)(lb < 40 ? lb : 40) : 0, tb ? tb : "", tq ? (int)(lq < 40 ? lq : 40) : 0,
                               tq ? tq : "");
    }
    return 0;
}

int slm_kld_run(slm_model *base, slm_model *quant, const int32_t *tokens, int32_t n_tokens, const slm_ppl_params *p,
                slm_kld_window_fn fn, void *ud, slm_kld_result *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    int rc = slm_kld_vocab_check(base, quant, err);
    if (rc) return rc;
    slm_ppl_plan plan;
    if ((rc = slm_ppl_plan_init(&plan, p, n_tokens, slm_ppl_model_bos(base), err))) return rc;
    slm_model_info in;
    slm_model_get_info(base, &in);
    for (int32_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= in.n_vocab)
            return slm_err_set(err, SLM_EINVAL, "token %d at %d is outside the vocabulary of %d", tokens[i], i, in.n_vocab);
    slm_ppl_eval *eb = NULL, *eq = NULL;
    slm_kld_acc acc;
    if ((rc = slm_kld_acc_init(&acc, (size_t)plan.n_windows * (size_t)plan.n_scored, err))) return rc;
    if ((rc = slm_ppl_eval_new(base, &plan, p->n_threads, &eb, err))) goto done;
    if ((rc = slm_ppl_eval_new(quant, &plan, p->n_threads, &eq, err))) goto done;
    double t0 = slm_now();
    for (int32_t w = 0; w < plan.n_windows; w++) {
        const float *rb, *rq;
        if ((rc = slm_ppl_eval_window(eb, tokens, w, &rb, err))) goto done;
        if ((rc = slm_ppl_eval_window(eq, tokens, w, &rq, err))) goto done;
        int64_t tgt0 = slm_ppl_window_start(&plan, w) + plan.first + 1;
        for (int32_t i = 0; i < plan.n_scored; i++) {
            slm_kld_row r;
            size_t off = (size_t)i * (size_t)in.n_vocab;
            slm_kld_row_compute(rb + off, rq + off, in.n_vocab, tokens[tgt0 + i], &r);
            if (!isfinite(r.kld) || !isfinite(r.nll_base) || !isfinite(r.nll)) {
                rc = slm_err_set(err, SLM_ERANGE, "non-finite logits from the %s model predicting token %lld (window %d)",
                                 isfinite(r.nll_base) ? "quantized" : "base", (long long)(tgt0 + i), w + 1);
                goto done;
            }
            if ((rc = slm_kld_acc_add(&acc, &r, err))) goto done;
        }
        out->n_windows = out->base.n_windows = w + 1;
        out->base.n_evaluated = (int64_t)(w + 1) * plan.n_ctx;
        out->seconds = out->base.seconds = slm_now() - t0;
        slm_kld_acc_summary(&acc, out);
        if (fn && fn(ud, w + 1, plan.n_windows, out)) {
            rc = slm_err_set(err, SLM_ECANCELED, "cancelled after %d of %d windows", w + 1, plan.n_windows);
            goto done;
        }
    }
    slm_kld_acc_finish(&acc, out);
done:
    slm_ppl_eval_free(eb);
    slm_ppl_eval_free(eq);
    slm_kld_acc_free(&acc);
    return rc;
}
