/*
 * ppl.c — windows, one window's forward pass, NLL accumulation (see ppl.h
 * for exactly which tokens are scored).
 *
 * A window is decoded as one slm_decode_batch call that asks logits only
 * for the rows that will be scored, so the output projection — the largest
 * matmul for small models with big vocabularies — runs on n_scored rows, not
 * n_ctx. The scoring itself is a log-softmax per row in double: the maximum
 * first, then Σ exp(x − max), so no row overflows whatever its scale.
 */
#include "quality/ppl.h"

#include <math.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/progress.h"

struct slm_ppl_eval {
    slm_ctx *ctx;           /* n_ctx positions, one sequence                       */
    slm_ppl_plan plan;      /* copy of the caller's plan                           */
    int32_t n_vocab;
    float   *rows;          /* n_scored × n_vocab logits of the last window        */
    int32_t *tok, *pos, *seq; /* the batch: n_ctx entries                          */
    int8_t  *want;          /* 1 for the scored rows                               */
};

slm_ppl_params slm_ppl_default_params(void) {
    return (slm_ppl_params){ .n_ctx = 512, .stride = 0, .n_chunks = 0, .n_threads = 0 };
}

int slm_ppl_plan_init(slm_ppl_plan *plan, const slm_ppl_params *p, int32_t n_tokens, int32_t bos, slm_err *err) {
    memset(plan, 0, sizeof *plan);
    if (p->n_ctx < 4 || p->n_ctx > (1 << 20))
        return slm_err_set(err, SLM_EINVAL, "context of %d tokens: a window needs 4 to 1048576", p->n_ctx);
    if (p->stride < 0 || p->stride > p->n_ctx)
        return slm_err_set(err, SLM_EINVAL, "stride %d: wants 1..%d (the context), or 0 for chunks", p->stride, p->n_ctx);
    if (p->n_chunks < 0) return slm_err_set(err, SLM_EINVAL, "chunk count %d is negative", p->n_chunks);
    if (n_tokens < 2 * p->n_ctx)
        return slm_err_set(err, SLM_ERANGE,
                           "the text has %d tokens; a context of %d needs at least %d (2 × context): use a longer "
                           "text or a smaller --ctx",
                           n_tokens, p->n_ctx, 2 * p->n_ctx);
    plan->n_ctx = p->n_ctx;
    plan->bos = bos;
    if (p->stride == 0 || p->stride == p->n_ctx) {
        plan->stride = p->n_ctx;
        plan->first = p->n_ctx / 2;
        plan->n_fit = n_tokens / p->n_ctx;
    } else {
        plan->stride = p->stride;
        plan->first = p->n_ctx - 1 - p->stride;
        plan->n_fit = (n_tokens - p->n_ctx) / p->stride + 1;
    }
    plan->n_scored = p->n_ctx - 1 - plan->first;
    plan->n_windows = p->n_chunks > 0 && p->n_chunks < plan->n_fit ? p->n_chunks : plan->n_fit;
    return 0;
}

int64_t slm_ppl_window_start(const slm_ppl_plan *plan, int32_t w) { return (int64_t)w * plan->stride; }

int32_t slm_ppl_model_bos(const slm_model *model) {
    const slm_vocab *v = slm_model_vocab(model);
    return slm_vocab_add_bos(v) ? slm_vocab_bos(v) : -1;
}

double slm_ppl_row_logsumexp(const float *logits, int32_t n_vocab, int32_t *argmax) {
    float mx = logits[0];
    int32_t am = 0;
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > mx) {
            mx = logits[i];
            am = i;
        }
    if (argmax) *argmax = am;
    double s = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) s += exp((double)logits[i] - (double)mx);
    return (double)mx + log(s);
}

double slm_ppl_row_nll(const float *logits, int32_t n_vocab, int32_t target, int32_t *argmax) {
    return slm_ppl_row_logsumexp(logits, n_vocab, argmax) - (double)logits[target];
}

int slm_ppl_eval_new(slm_model *model, const slm_ppl_plan *plan, int32_t n_threads, slm_ppl_eval **out,
                     slm_err *err) {
    *out = NULL;
    slm_model_info in;
    slm_model_get_info(model, &in);
    slm_ppl_eval *e = slm_calloc(1, sizeof *e);
    if (!e) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    e->plan = *plan;
    e->n_vocab = in.n_vocab;
    int rc;
    size_t n_rows;
    if (!slm_mul_ok((size_t)plan->n_scored, (size_t)in.n_vocab, &n_rows) || !slm_mul_ok(n_rows, sizeof(float), &n_rows)) {
        rc = slm_err_set(err, SLM_ENOMEM, "%d × %d logits overflow", plan->n_scored, in.n_vocab);
        goto fail;
    }
    size_t n = (size_t)plan->n_ctx;
    e->rows = slm_malloc(n_rows);
    e->tok = slm_malloc(n * sizeof *e->tok);
    e->pos = slm_malloc(n * sizeof *e->pos);
    e->seq = slm_calloc(n, sizeof *e->seq);
    e->want = slm_calloc(n, sizeof *e->want);
    if (!e->rows || !e->tok || !e->pos || !e->seq || !e->want) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory for a window of %d tokens (%d × %d logits)", plan->n_ctx,
                         plan->n_scored, in.n_vocab);
        goto fail;
    }
    for (int32_t i = 0; i < plan->n_ctx; i++) {
        e->pos[i] = i;
        e->want[i] = i >= plan->first && i <= plan->n_ctx - 2;
    }
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_ctx = plan->n_ctx;
    cp.n_threads = n_threads;
    cp.n_batch = plan->n_ctx < 512 ? plan->n_ctx : 512;
    if ((rc = slm_ctx_new(model, &cp, &e->ctx, err))) goto fail;
    *out = e;
    return 0;
fail:
    slm_ppl_eval_free(e);
    return rc;
}

int slm_ppl_eval_window(slm_ppl_eval *e, const int32_t *tokens, int32_t w, const float **rows, slm_err *err) {
    const slm_ppl_plan *pl = &e->plan;
    if (w < 0 || w >= pl->n_fit) return slm_err_set(err, SLM_EINVAL, "window %d of %d", w, pl->n_fit);
    const int32_t *src = tokens + slm_ppl_window_start(pl, w);
    memcpy(e->tok, src, (size_t)pl->n_ctx * sizeof *e->tok);
    if (pl->bos >= 0) e->tok[0] = pl->bos;
    slm_kv_truncate(e->ctx, 0, 0);
    slm_batch b = { .n_tokens = pl->n_ctx, .token = e->tok, .pos = e->pos, .seq = e->seq, .logits = e->want };
    int rc = slm_decode_batch(e->ctx, &b, e->rows, err);
    if (rc) return rc;
    *rows = e->rows;
    return 0;
}

int32_t slm_ppl_eval_n_vocab(const slm_ppl_eval *e) { return e->n_vocab; }

void slm_ppl_eval_free(slm_ppl_eval *e) {
    if (!e) return;
    slm_ctx_free(e->ctx);
    slm_free(e->rows);
    slm_free(e->tok);
    slm_free(e->pos);
    slm_free(e->seq);
    slm_free(e->want);
    slm_free(e);
}

void slm_ppl_result_set(slm_ppl_result *r, const slm_stats *nll) {
    double m = slm_stats_mean(nll), se = slm_stats_stderr(nll);
    r->n_tokens = nll->n;
    r->nll_mean = m;
    r->nll_stderr = se;
    r->ppl = exp(m);
    r->ppl_stderr = r->ppl * se;
    r->ppl_ci95[0] = exp(m - 1.96 * se);
    r->ppl_ci95[1] = exp(m + 1.96 * se);
}

void slm_ppl_result_json(slm_jw *w, const slm_ppl_result *r) {
    slm_jw_key(w, "ppl");
    slm_jw_num(w, r->ppl);
    slm_jw_key(w, "ppl_stderr");
    slm_jw_num(w, r->ppl_stderr);
    slm_jw_key(w, "ppl_ci95");
    slm_jw_arr_open(w);
    slm_jw_num(w, r->ppl_ci95[0]);
    slm_jw_num(w, r->ppl_ci95[1]);
    slm_jw_arr_close(w);
    slm_jw_key(w, "nll_mean");
    slm_jw_num(w, r->nll_mean);
    slm_jw_key(w, "nll_stderr");
    slm_jw_num(w, r->nll_stderr);
    slm_jw_key(w, "n_tokens");
    slm_jw_int(w, r->n_tokens);
}

int slm_ppl_run(slm_model *model, const int32_t *tokens, int32_t n_tokens, const slm_ppl_params *p,
                slm_ppl_window_fn fn, void *ud, slm_ppl_result *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    slm_ppl_plan plan;
    int rc = slm_ppl_plan_init(&plan, p, n_tokens, slm_ppl_model_bos(model), err);
    if (rc) return rc;
    slm_model_info in;
    slm_model_get_info(model, &in);
    for (int32_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= in.n_vocab)
            return slm_err_set(err, SLM_EINVAL, "token %d at %d is outside the vocabulary of %d", tokens[i], i,
                               in.n_vocab);
    slm_ppl_eval *e = NULL;
    if ((rc = slm_ppl_eval_new(model, &plan, p->n_threads, &e, err))) return rc;
    slm_stats nll;
    slm_stats_init(&nll);
    double t0 = slm_now();
    for (int32_t w = 0; w < plan.n_windows; w++) {
        const float *rows;
        if ((rc = slm_ppl_eval_window(e, tokens, w, &rows, err))) goto done;
        int64_t tgt0 = slm_ppl_window_start(&plan, w) + plan.first + 1;
        for (int32_t i = 0; i < plan.n_scored; i++) {
            double v = slm_ppl_row_nll(rows + (size_t)i * (size_t)in.n_vocab, in.n_vocab, tokens[tgt0 + i], NULL);
            if (!isfinite(v)) {
                rc = slm_err_set(err, SLM_ERANGE, "non-finite logits predicting token %lld (window %d)",
                                 (long long)(tgt0 + i), w + 1);
                goto done;
            }
            slm_stats_add(&nll, v);
        }
        slm_ppl_result_set(out, &nll);
        out->n_windows = w + 1;
        out->n_evaluated = (int64_t)(w + 1) * plan.n_ctx;
        out->seconds = slm_now() - t0;
        if (fn && fn(ud, w + 1, plan.n_windows, out)) {
            rc = slm_err_set(err, SLM_ECANCELED, "cancelled after %d of %d windows", w + 1, plan.n_windows);
            goto done;
        }
    }
done:
    slm_ppl_eval_free(e);
    return rc;
}
