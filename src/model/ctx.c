/*
 * ctx.c — creating and freeing inference contexts: sizes the KV cache from
 * the context length (the model's, or the caller's override) and the number
 * of sequences, and the scratch buffers from the batch size. Every size is
 * computed with overflow checks; failure to allocate is SLM_ENOMEM with the
 * byte count in the message.
 */
#include <string.h>

#include "kernels/ops.h"
#include "kernels/types.h"
#include "model/ctx.h"
#include "util/alloc.h"
#include "util/err.h"

slm_ctx_params slm_ctx_default_params(void) {
    slm_ctx_params p = { .n_ctx = 0, .n_threads = 0, .n_batch = 512, .n_seq = 1 };
    return p;
}

void slm_ctx_free(slm_ctx *c) {
    if (!c) return;
    slm_pool_free(c->pool);
    slm_free(c->k_cache);
    slm_free(c->v_cache);
    slm_free(c->seq_len);
    slm_free(c->x);
    slm_free(c->xn);
    slm_free(c->q);
    slm_free(c->k);
    slm_free(c->v);
    slm_free(c->att);
    slm_free(c->gu);
    slm_free(c->h);
    slm_free(c->logit_rows);
    slm_free(c->rope_cos);
    slm_free(c->rope_sin);
    slm_free(c->scores);
    slm_free(c->wbuf);
    slm_free(c);
}

static float *fbuf(size_t a, size_t b, size_t c, int *bad) {
    size_t n;
    if (!slm_mul_ok(a, b, &n) || !slm_mul_ok(n, c, &n) || !slm_mul_ok(n, sizeof(float), &n)) {
        *bad = 1;
        return NULL;
    }
    float *p = slm_malloc(n ? n : 1);
    if (!p) *bad = 1;
    return p;
}

int32_t slm_ctx_n_ctx(const slm_ctx *c) { return c->n_ctx; }

int slm_ctx_new(slm_model *m, const slm_ctx_params *params, slm_ctx **out, slm_err *err) {
    *out = NULL;
    if (m->vocab_only) return slm_err_set(err, SLM_EINVAL, "model was loaded vocabulary-only");
    slm_ctx_params dp = slm_ctx_default_params();
    if (!params) params = &dp;
    const slm_hparams *hp = &m->hp;
    int32_t n_ctx = params->n_ctx > 0 ? params->n_ctx : hp->n_ctx_train;
    int32_t n_batch = params->n_batch > 0 ? params->n_batch : 512;
    int32_t n_seq = params->n_seq > 0 ? params->n_seq : 1;
    if (params->n_ctx < 0 || n_ctx > (1 << 24) || n_seq > 4096 || params->n_threads < 0 || params->n_threads > 512)
        return slm_err_set(err, SLM_EINVAL, "invalid context parameters: n_ctx %d, n_seq %d, threads %d",
                           params->n_ctx, params->n_seq, params->n_threads);
    if (n_batch > n_ctx) n_batch = n_ctx;
    slm_ctx *c = slm_calloc(1, sizeof *c);
    if (!c) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    c->model = m;
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    c->n_seq = n_seq;
    c->kv_dim = hp->n_head_kv * hp->head_dim;
    int bad = 0;
    size_t per_layer = (size_t)n_seq * (size_t)n_ctx, kv_bytes;
    c->kv_type = params->kv_f32 ? SLM_TYPE_F32 : SLM_TYPE_F16;
    c->kv_esize = params->kv_f32 ? 4 : 2;
    if (slm_mul_ok((size_t)hp->n_layer, per_layer, &kv_bytes) && slm_mul_ok(kv_bytes, (size_t)c->kv_dim, &kv_bytes) &&
        slm_mul_ok(kv_bytes, c->kv_esize, &kv_bytes)) {
        c->k_cache = slm_malloc(kv_bytes ? kv_bytes : 1);
        c->v_cache = c->k_cache ? slm_calloc(1, kv_bytes ? kv_bytes : 1) : NULL;
    }
    if (!c->k_cache || !c->v_cache) {
        double mib = 2.0 * hp->n_layer * (double)per_layer * c->kv_dim * c->kv_esize / (1 << 20);
        slm_ctx_free(c);
        return slm_err_set(err, SLM_ENOMEM, "cannot allocate the KV cache (%.0f MiB for context %d); try a smaller --ctx",
                           mib, n_ctx);
    }
    c->pool = slm_pool_new(params->n_threads);
    c->seq_len = slm_calloc((size_t)n_seq, sizeof *c->seq_len);
    size_t B = (size_t)n_batch, E = (size_t)hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim;
    size_t F = (size_t)hp->n_ff, half = (size_t)hp->n_rot / 2;
    size_t QKV = Q + 2 * (size_t)c->kv_dim;
    c->x = fbuf(B, E, 1, &bad);
    c->xn = fbuf(B, E, 1, &bad);
    c->q = fbuf(B, QKV, 1, &bad);   /* phi3 writes fused q|k|v rows here */
    c->k = fbuf(B, (size_t)c->kv_dim, 1, &bad);
    c->v = fbuf(B, (size_t)c->kv_dim, 1, &bad);
    c->att = fbuf(B, Q, 1, &bad);
    c->gu = fbuf(B, 2 * F, 1, &bad);
    c->h = fbuf(B, F, 1, &bad);
    c->logit_rows = fbuf(1, (size_t)hp->n_vocab, 1, &bad);
    c->rope_cos = fbuf(B, half, 1, &bad);
    c->rope_sin = fbuf(B, half, 1, &bad);
    int nth = c->pool ? slm_pool_size(c->pool) : 1;
    c->scores = fbuf((size_t)nth, (size_t)n_ctx, 1, &bad);
    /* activations converted for the largest matmul input of any weight type */
    size_t wmax = 0;
    const slm_mat *mats[] = { &m->output, &m->tok_embd };
    for (int i = 0; i < 2; i++) {
        size_t s = slm_matmul_wsize(mats[i]->type, mats[i]->ne0, (int64_t)B);
        wmax = s > wmax ? s : wmax;
    }
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const slm_layer *L = &m->layers[il];
        const slm_mat *lm[] = { &L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int i = 0; i < 8; i++) {
            if (!lm[i]->data) continue;
            size_t s = slm_matmul_wsize(lm[i]->type, lm[i]->ne0, (int64_t)B);
            wmax = s > wmax ? s : wmax;
        }
    }
    c->wbuf = slm_malloc(wmax ? wmax : 1);
    if (bad || !c->pool || !c->seq_len || !c->wbuf) {
        slm_ctx_free(c);
        return slm_err_set(err, SLM_ENOMEM, "out of memory creating the inference context");
    }
    *out = c;
    return 0;
}

void slm_kv_truncate(slm_ctx *c, int32_t seq, int32_t pos) {
    if (seq < 0 || seq >= c->n_seq || pos < 0) return;
    if (pos < c->seq_len[seq]) c->seq_len[seq] = pos;
}
