/*
 * forward.c — the transformer forward pass (slm_decode).
 *
 * One readable pass in llama2.c's spirit, shared by every architecture:
 *   x = embed(tokens)
 *   per layer: h = rmsnorm(x)·attn_norm; q,k,v = h·Wq,Wk,Wv (+bias) or
 *              split(h·Wqkv); qwen3: per-head rmsnorm of q,k; RoPE(q,k);
 *              append k,v to the cache; x += softmax(q·Kᵀ/√d)·V · Wo
 *              h = rmsnorm(x)·ffn_norm; x += (silu(h·Wg) * h·Wu)·Wd
 *   logits = rmsnorm(x)·out_norm · Woutᵀ
 * A call processes the tokens in chunks of n_batch; every matrix product
 * covers the whole chunk, so each weight row is read once per chunk.
 * Attention is causal within the chunk and over the cached positions.
 */
#include <math.h>
#include <string.h>

#include "kernels/ops.h"
#include "kernels/types.h"
#include "model/ctx.h"
#include "util/err.h"

static void embed(const slm_model *m, const int32_t *tokens, int32_t n, float *x) {
    const slm_type_traits *tr = slm_type_traits_get(m->tok_embd.type);
    for (int32_t i = 0; i < n; i++)
        tr->to_float((const unsigned char *)m->tok_embd.data + (size_t)tokens[i] * m->tok_embd.row_bytes,
                     x + (size_t)i * m->hp.n_embd, m->hp.n_embd);
}

static void matmul(slm_ctx *c, const slm_mat *w, const float *x, int32_t n, float *y, int64_t y_stride) {
    slm_matmul(c->pool, w->type, w->data, w->row_bytes, w->ne1, w->ne0, x, n, y, y_stride, c->wbuf);
}

static void add_bias(float *y, const float *b, int32_t n, int64_t dim, int64_t stride) {
    if (!b) return;
    for (int32_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++) y[i * stride + j] += b[j];
}

/* cos/sin of every rotary pair's angle for each token position. */
static void rope_tables(slm_ctx *c, int32_t pos0, int32_t n) {
    const slm_hparams *hp = &c->model->hp;
    int32_t half = hp->n_rot / 2;
    for (int32_t i = 0; i < n; i++) {
        double p = (double)(pos0 + i) * hp->rope_freq_scale;
        for (int32_t j = 0; j < half; j++) {
            double theta = p * pow((double)hp->rope_freq_base, -2.0 * j / hp->n_rot);
            if (c->model->rope_freqs) theta /= c->model->rope_freqs[j];
            c->rope_cos[(size_t)i * half + j] = (float)cos(theta);
            c->rope_sin[(size_t)i * half + j] = (float)sin(theta);
        }
    }
}

typedef struct attn_job {
    slm_ctx *c;
    int32_t il, seq, pos0, n;
} attn_job;

static void attn_worker(void *arg, int ith, int nth) {
    const attn_job *j = arg;
    slm_ctx *c = j->c;
    const slm_hparams *hp = &c->model->hp;
    const slm_type_traits *kt = slm_type_traits_get(c->kv_type);
    int32_t hd = hp->head_dim, n_head = hp->n_head, group = hp->n_head / hp->n_head_kv;
    size_t Q = (size_t)n_head * hd, es = c->kv_esize;
    size_t layer_off = ((size_t)j->il * c->n_seq + (size_t)j->seq) * (size_t)c->n_ctx * (size_t)c->kv_dim * es;
    const unsigned char *K = (const unsigned char *)c->k_cache + layer_off;
    const unsigned char *Vt = (const unsigned char *)c->v_cache + layer_off;
    float *scores = c->scores + (size_t)ith * c->n_ctx;
    float scale = 1.0f / sqrtf((float)hd);
    long lo, hi;
    slm_split((long)j->n * n_head, ith, nth, &lo, &hi);
    for (long task = lo; task < hi; task++) {
        int32_t i = (int32_t)(task / n_head), h = (int32_t)(task % n_head);
        int32_t n_kv = j->pos0 + i + 1;
        const float *q = c->q + i * Q + (size_t)h * hd;
        size_t koff = (size_t)(h / group) * hd;
        for (int32_t t = 0; t < n_kv; t++) {
            kt->vec_dot(hd, &scores[t], K + ((size_t)t * c->kv_dim + koff) * es, q);
            scores[t] *= scale;
        }
        slm_softmax(scores, n_kv);
        float *o = c->att + i * Q + (size_t)h * hd;
        for (int32_t d = 0; d < hd; d++)
            kt->vec_dot(n_kv, &o[d], Vt + ((koff + (size_t)d) * (size_t)c->n_ctx) * es, scores);
    }
}

/* Appends n tokens' K rows and V columns at pos0 in the cache's type. */
static void kv_store(slm_ctx *c, int32_t il, int32_t seq, int32_t pos0, int32_t n) {
    const slm_type_traits *kt = slm_type_traits_get(c->kv_type);
    size_t es = c->kv_esize, KV = (size_t)c->kv_dim, N = (size_t)c->n_ctx;
    size_t layer_off = ((size_t)il * c->n_seq + (size_t)seq) * N * KV * es;
    unsigned char *K = (unsigned char *)c->k_cache + layer_off, *Vt = (unsigned char *)c->v_cache + layer_off;
    for (int32_t i = 0; i < n; i++) kt->from_float(c->k + i * KV, K + ((size_t)(pos0 + i) * KV) * es, (int64_t)KV);
    for (size_t d = 0; d < KV; d++) {
        unsigned char *row = Vt + (d * N + (size_t)pos0) * es;
        for (int32_t i = 0; i < n; i++) kt->from_float(&c->v[i * KV + d], row + (size_t)i * es, 1);
    }
}

static void layer_forward(slm_ctx *c, int32_t il, int32_t seq, int32_t pos0, int32_t n) {
    const slm_model *m = c->model;
    const slm_hparams *hp = &m->hp;
    const slm_layer *L = &m->layers[il];
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = c->kv_dim, F = hp->n_ff;
    int32_t hd = hp->head_dim;
    for (int32_t i = 0; i < n; i++) slm_rmsnorm(c->xn + i * E, c->x + i * E, L->attn_norm, E, hp->rms_eps);
    if (L->fused_qkv) {
        int64_t S = Q + 2 * KV;
        matmul(c, &L->wqkv, c->xn, n, c->q, S);
        for (int32_t i = 0; i < n; i++) { /* unpack q|k|v rows in place: q first keeps its place */
            memcpy(c->k + i * KV, c->q + i * S + Q, (size_t)KV * sizeof(float));
            memcpy(c->v + i * KV, c->q + i * S + Q + KV, (size_t)KV * sizeof(float));
        }
        for (int32_t i = 1; i < n; i++) memmove(c->q + i * Q, c->q + i * S, (size_t)Q * sizeof(float));
    } else {
        matmul(c, &L->wq, c->xn, n, c->q, Q);
        matmul(c, &L->wk, c->xn, n, c->k, KV);
        matmul(c, &L->wv, c->xn, n, c->v, KV);
    }
    add_bias(c->q, L->bq, n, Q, Q);
    add_bias(c->k, L->bk, n, KV, KV);
    add_bias(c->v, L->bv, n, KV, KV);
    int32_t half = hp->n_rot / 2;
    int neox = hp->rope_kind == SLM_ROPE_NEOX;
    for (int32_t i = 0; i < n; i++) {
        float *q = c->q + i * Q, *k = c->k + i * KV;
        if (L->q_norm)
            for (int32_t h = 0; h < hp->n_head; h++) slm_rmsnorm(q + h * hd, q + h * hd, L->q_norm, hd, hp->rms_eps);
        if (L->k_norm)
            for (int32_t h = 0; h < hp->n_head_kv; h++) slm_rmsnorm(k + h * hd, k + h * hd, L->k_norm, hd, hp->rms_eps);
        slm_rope(q, hp->n_head, hd, hp->n_rot, c->rope_cos + (size_t)i * half, c->rope_sin + (size_t)i * half, neox);
        slm_rope(k, hp->n_head_kv, hd, hp->n_rot, c->rope_cos + (size_t)i * half, c->rope_sin + (size_t)i * half, neox);
    }
    kv_store(c, il, seq, pos0, n);
    attn_job aj = { c, il, seq, pos0, n };
    slm_pool_run(c->pool, attn_worker, &aj);
    matmul(c, &L->wo, c->att, n, c->xn, E);
    add_bias(c->xn, L->bo, n, E, E);
    for (int64_t i = 0; i < n * E; i++) c->x[i] += c->xn[i];

    for (int32_t i = 0; i < n; i++) slm_rmsnorm(c->xn + i * E, c->x + i * E, L->ffn_norm, E, hp->rms_eps);
    if (L->fused_gate_up) {
        matmul(c, &L->w_up, c->xn, n, c->gu, 2 * F);
        for (int32_t i = 0; i < n; i++) slm_swiglu(c->h + i * F, c->gu + i * 2 * F, c->gu + i * 2 * F + F, F);
    } else {
        matmul(c, &L->w_gate, c->xn, n, c->gu, F);
        matmul(c, &L->w_up, c->xn, n, c->gu + (size_t)n * F, F);
        for (int32_t i = 0; i < n; i++) slm_swiglu(c->h + i * F, c->gu + i * F, c->gu + (size_t)n * F + i * F, F);
    }
    matmul(c, &L->w_down, c->h, n, c->xn, E);
    for (int64_t i = 0; i < n * E; i++) c->x[i] += c->xn[i];
}

int slm_decode(slm_ctx *c, int32_t seq, const int32_t *tokens, int32_t n, int32_t pos0, bool logits_all,
               float *logits, slm_err *err) {
    const slm_model *m = c->model;
    const slm_hparams *hp = &m->hp;
    if (seq < 0 || seq >= c->n_seq) return slm_err_set(err, SLM_EINVAL, "sequence %d out of range (0..%d)", seq, c->n_seq - 1);
    if (n <= 0) return slm_err_set(err, SLM_EINVAL, "no tokens to decode");
    if (pos0 < 0 || pos0 > c->seq_len[seq])
        return slm_err_set(err, SLM_EINVAL, "position %d leaves a gap (sequence %d holds %d)", pos0, seq, c->seq_len[seq]);
    if (n > c->n_ctx - pos0)
        return slm_err_set(err, SLM_ERANGE, "context is full: %d tokens at position %d exceed the context of %d", n, pos0,
                           c->n_ctx);
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return slm_err_set(err, SLM_EINVAL, "token id %d out of range (vocabulary of %d)", tokens[i], hp->n_vocab);
    int64_t E = hp->n_embd, NV = hp->n_vocab;
    for (int32_t done = 0; done < n;) {
        int32_t nb = n - done < c->n_batch ? n - done : c->n_batch;
        int32_t p = pos0 + done;
        c->seq_len[seq] = p; /* positions >= p are being rewritten */
        embed(m, tokens + done, nb, c->x);
        rope_tables(c, p, nb);
        for (int32_t il = 0; il < hp->n_layer; il++) layer_forward(c, il, seq, p, nb);
        c->seq_len[seq] = p + nb;
        bool last_chunk = done + nb == n;
        if (logits_all || last_chunk) {
            int32_t first = logits_all ? 0 : nb - 1;
            int32_t cnt = nb - first;
            for (int32_t i = first; i < nb; i++)
                slm_rmsnorm(c->xn + (i - first) * E, c->x + i * E, m->output_norm, E, hp->rms_eps);
            float *dst = logits_all ? logits + (size_t)done * NV : logits;
            matmul(c, &m->output, c->xn, cnt, dst, NV);
        }
        done += nb;
    }
    return 0;
}
