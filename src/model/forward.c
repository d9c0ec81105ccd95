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
 * A batch may mix tokens of several sequences (continuous batching): the
 * matrix products cover every token of a chunk of n_batch entries, so each
 * weight row is read once per chunk whatever the number of sequences;
 * attention is per entry, over its own sequence's cached positions (paged
 * KV blocks, kv.c), causal by position.
 */
#include <math.h>
#include <string.h>

#include "kernels/attn.h"
#include "kernels/ops.h"
#include "kernels/packed.h"
#include "kernels/types.h"
#include "model/ctx.h"
#include "util/alloc.h"
#include "util/err.h"

static void embed(const slm_model *m, const int32_t *tokens, int32_t n, float *x) {
    const slm_type_traits *tr = slm_type_traits_get(m->tok_embd.type);
    if (m->tok_embd.layout) {   /* tied to the output matrix, packed at load */
        for (int32_t i = 0; i < n; i++)
            slm_pack_row_to_float((slm_layout)m->tok_embd.layout, m->tok_embd.data, m->tok_embd.row_bytes, tokens[i],
                                  x + (size_t)i * m->hp.n_embd, m->hp.n_embd);
        return;
    }
    for (int32_t i = 0; i < n; i++)
        tr->to_float((const unsigned char *)m->tok_embd.data + (size_t)tokens[i] * m->tok_embd.row_bytes,
                     x + (size_t)i * m->hp.n_embd, m->hp.n_embd);
}

/* Products of the same input by several matrices (in the file's layout or
 * packed at load, resident.c), in one pool run. */
static void matmul_n(slm_ctx *c, const slm_mat *const *w, int k, const float *x, int32_t n, float *const *y,
                     const int64_t *y_stride) {
    slm_mm_op ops[SLM_MM_MAX_OPS];
    for (int i = 0; i < k; i++) {
        if (c->observer) c->observer(c->observer_ud, w[i], x, n);
        ops[i] = (slm_mm_op){ w[i]->type, w[i]->data, w[i]->row_bytes, w[i]->ne1, y[i], y_stride[i], w[i]->layout };
    }
    slm_matmul_multi(c->pool, ops, k, w[0]->ne0, x, n, c->wbuf);
}

static void matmul(slm_ctx *c, const slm_mat *w, const float *x, int32_t n, float *y, int64_t y_stride) {
    matmul_n(c, &w, 1, x, n, &y, &y_stride);
}

static void add_bias(float *y, const float *b, int32_t n, int64_t dim, int64_t stride) {
    if (!b) return;
    for (int32_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++) y[i * stride + j] += b[j];
}

/* cos/sin of every rotary pair's angle for each entry's position. */
static void rope_tables(slm_ctx *c, int32_t n) {
    const slm_hparams *hp = &c->model->hp;
    int32_t half = hp->n_rot / 2;
    for (int32_t i = 0; i < n; i++) {
        double p = (double)c->c_pos[i] * hp->rope_freq_scale;
        for (int32_t j = 0; j < half; j++) {
            double theta = p * pow((double)hp->rope_freq_base, -2.0 * j / hp->n_rot);
            if (c->model->rope_freqs) theta /= c->model->rope_freqs[j];
            c->rope_cos[(size_t)i * half + j] = (float)cos(theta);
            c->rope_sin[(size_t)i * half + j] = (float)sin(theta);
        }
    }
}

/* Attention, blockwise with an online softmax (flash-attention style).
 *
 * Work is split into tasks of (KV head, run of up to ATTN_TQ consecutive
 * batch entries of one sequence). A task walks the cached positions block
 * by block: it converts the KV head's slice of the block once into F32
 * tiles (K transposed, V position-major) and runs every query head of the
 * group, for every entry of the run, against them, keeping per (entry,
 * head) the running max, the running sum of exponentials and the unnormed
 * output; nothing larger than one block of scores exists at a time, so long
 * contexts cost no memory per position. An entry's result does not depend
 * on the other entries of its run (the arithmetic per entry is the same
 * whatever the batch), so batching changes no result. */
#define ATTN_TQ SLM_ATTN_TQ

typedef struct attn_job {
    slm_ctx *c;
    int32_t il, n;
    int32_t *run_start;   /* task runs: entries [run_start[r], run_start[r + 1]) */
    int32_t n_runs;
} attn_job;

/* n cached values as floats: F16 caches through the attention kernels'
 * converter (SIMD), F32 through the type's. */
static inline void kv_to_f32(const slm_attn_kernels *ak, const slm_kvp *kv, const unsigned char *src, float *dst,
                             int32_t n) {
    if (kv->type == SLM_TYPE_F16) ak->f16_to_f32((const uint16_t *)src, dst, n);
    else slm_type_traits_get(kv->type)->to_float(src, dst, n);
}

static void attn_run(slm_ctx *c, int32_t il, int32_t i0, int32_t i1, int32_t g, float *scratch) {
    const slm_kvp *kv = &c->kv;
    const slm_hparams *hp = &c->model->hp;
    const slm_attn_kernels *ak = slm_attn_kernels_get();
    const int32_t hd = hp->head_dim, group = hp->n_head / hp->n_head_kv, B = kv->block;
    const size_t Q = (size_t)hp->n_head * hd, es = kv->esize, koff = (size_t)g * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *ktile = scratch, *vtile = ktile + (size_t)hd * B, *tmp = vtile + (size_t)B * hd;
    float *sc = tmp + (hd > B ? hd : B), *state = sc + B;   /* state: per (entry, head) m, l, o[hd] */
    const size_t SW = (size_t)hd + 2;
    const int32_t seq = c->c_seq[i0];
    int32_t max_kv = 0;
    for (int32_t i = i0; i < i1; i++) max_kv = c->c_pos[i] + 1 > max_kv ? c->c_pos[i] + 1 : max_kv;
    for (int32_t e = 0; e < (i1 - i0) * group; e++) {
        float *st = state + (size_t)e * SW;
        st[0] = -INFINITY;
        st[1] = 0.0f;
        memset(st + 2, 0, (size_t)hd * sizeof(float));
    }
    for (int32_t b0 = 0; b0 < max_kv; b0 += B) {
        int32_t cnt_blk = max_kv - b0 < B ? max_kv - b0 : B;
        for (int32_t t = 0; t < cnt_blk; t++) {   /* K rows -> kt[d*B + t] */
            kv_to_f32(ak, kv, slm_kvp_k_row(kv, seq, il, b0 + t) + koff * es, tmp, hd);
            for (int32_t d = 0; d < hd; d++) ktile[(size_t)d * B + t] = tmp[d];
        }
        const unsigned char *vb = slm_kvp_v_base(kv, seq, il, b0) + koff * (size_t)B * es;
        for (int32_t d = 0; d < hd; d++) {         /* V columns -> vt[t*hd + d] */
            kv_to_f32(ak, kv, vb + (size_t)d * B * es, tmp, cnt_blk);
            for (int32_t t = 0; t < cnt_blk; t++) vtile[(size_t)t * hd + d] = tmp[t];
        }
        for (int32_t i = i0; i < i1; i++) {
            int32_t n_kv = c->c_pos[i] + 1;
            if (n_kv <= b0) continue;
            int32_t cnt = n_kv - b0 < cnt_blk ? n_kv - b0 : cnt_blk;
            for (int32_t hh = 0; hh < group; hh++) {
                const float *q = c->q + (size_t)i * Q + (size_t)(g * group + hh) * hd;
                float *st = state + ((size_t)(i - i0) * group + hh) * SW;
                float mx = ak->scores(ktile, B, hd, cnt, q, scale, sc);
                float m_new = mx > st[0] ? mx : st[0];
                float corr = st[0] == -INFINITY ? 0.0f : expf(st[0] - m_new);
                float sum = ak->exp_sum(sc, cnt, m_new);
                st[1] = st[1] * corr + sum;
                ak->accum(vtile, hd, cnt, sc, corr, st + 2);
                st[0] = m_new;
            }
        }
    }
    for (int32_t i = i0; i < i1; i++)
        for (int32_t hh = 0; hh < group; hh++) {
            const float *st = state + ((size_t)(i - i0) * group + hh) * SW;
            float *o = c->att + (size_t)i * Q + (size_t)(g * group + hh) * hd;
            float inv = st[1] > 0 ? 1.0f / st[1] : 0.0f;
            for (int32_t d = 0; d < hd; d++) o[d] = st[2 + d] * inv;
        }
}

static void attn_worker(void *arg, int ith, int nth) {
    const attn_job *j = arg;
    slm_ctx *c = j->c;
    int32_t n_kv_head = c->model->hp.n_head_kv;
    long n_tasks = (long)j->n_runs * n_kv_head;
    float *scratch = c->attn_scratch + (size_t)ith * c->attn_scratch_stride;
    /* interleaved: later runs of a prompt attend more positions */
    for (long task = ith; task < n_tasks; task += nth) {
        int32_t r = (int32_t)(task / n_kv_head), g = (int32_t)(task % n_kv_head);
        attn_run(c, j->il, j->run_start[r], j->run_start[r + 1], g, scratch);
    }
}

/* Splits the batch into runs of consecutive entries of one sequence, at
 * most ATTN_TQ long; returns the number of runs (starts in c->attn_runs). */
static int32_t attn_runs(slm_ctx *c, int32_t n) {
    int32_t nr = 0;
    for (int32_t i = 0; i < n;) {
        int32_t e = i + 1;
        while (e < n && e - i < ATTN_TQ && c->c_seq[e] == c->c_seq[i]) e++;
        c->attn_runs[nr++] = i;
        i = e;
    }
    c->attn_runs[nr] = n;
    return nr;
}

/* Writes the chunk's K rows and V columns into the cache at their positions. */
static void kv_store(slm_ctx *c, int32_t il, int32_t n) {
    slm_kvp *kv = &c->kv;
    const slm_type_traits *kt = slm_type_traits_get(kv->type);
    size_t es = kv->esize, KV = (size_t)c->kv_dim, B = (size_t)kv->block;
    for (int32_t i = 0; i < n; i++) {
        kt->from_float(c->k + i * KV, slm_kvp_k_row(kv, c->c_seq[i], il, c->c_pos[i]), (int64_t)KV);
        unsigned char *vb = slm_kvp_v_base(kv, c->c_seq[i], il, c->c_pos[i]);
        for (size_t d = 0; d < KV; d++) kt->from_float(&c->v[i * KV + d], vb + d * B * es, 1);
    }
}

static void layer_forward(slm_ctx *c, int32_t il, int32_t n) {
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
        const slm_mat *w3[3] = { &L->wq, &L->wk, &L->wv };
        float *y3[3] = { c->q, c->k, c->v };
        int64_t s3[3] = { Q, KV, KV };
        matmul_n(c, w3, 3, c->xn, n, y3, s3);
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
    kv_store(c, il, n);
    attn_job aj = { c, il, n, c->attn_runs, attn_runs(c, n) };
    slm_pool_run(c->pool, attn_worker, &aj);
    matmul(c, &L->wo, c->att, n, c->xn, E);
    add_bias(c->xn, L->bo, n, E, E);
    for (int64_t i = 0; i < n * E; i++) c->x[i] += c->xn[i];

    for (int32_t i = 0; i < n; i++) slm_rmsnorm(c->xn + i * E, c->x + i * E, L->ffn_norm, E, hp->rms_eps);
    if (L->fused_gate_up) {
        matmul(c, &L->w_up, c->xn, n, c->gu, 2 * F);
        for (int32_t i = 0; i < n; i++) slm_swiglu(c->h + i * F, c->gu + i * 2 * F, c->gu + i * 2 * F + F, F);
    } else {
        const slm_mat *w2[2] = { &L->w_gate, &L->w_up };
        float *y2[2] = { c->gu, c->gu + (size_t)n * F };
        int64_t s2[2] = { F, F };
        matmul_n(c, w2, 2, c->xn, n, y2, s2);
        for (int32_t i = 0; i < n; i++) slm_swiglu(c->h + i * F, c->gu + i * F, c->gu + (size_t)n * F + i * F, F);
    }
    matmul(c, &L->w_down, c->h, n, c->xn, E);
    for (int64_t i = 0; i < n * E; i++) c->x[i] += c->xn[i];
}

/* Checks a batch and reserves its KV blocks (all or nothing). */
static int prepare(slm_ctx *c, const slm_batch *b, slm_err *err) {
    const slm_hparams *hp = &c->model->hp;
    if (b->n_tokens <= 0) return slm_err_set(err, SLM_EINVAL, "no tokens to decode");
    /* per sequence: first position, next expected position, end */
    int32_t need = 0;
    for (int32_t i = 0; i < b->n_tokens; i++) {
        int32_t s = b->seq[i], p = b->pos[i], t = b->token[i];
        if (s < 0 || s >= c->n_seq) return slm_err_set(err, SLM_EINVAL, "sequence %d out of range (0..%d)", s, c->n_seq - 1);
        if (t < 0 || t >= hp->n_vocab)
            return slm_err_set(err, SLM_EINVAL, "token id %d out of range (vocabulary of %d)", t, hp->n_vocab);
        if (p < 0 || p >= c->n_ctx)
            return slm_err_set(err, SLM_ERANGE, "context is full: position %d of sequence %d exceeds the context of %d", p, s,
                               c->n_ctx);
        int32_t prev = -1; /* the previous entry of the same sequence */
        for (int32_t k = i - 1; k >= 0; k--)
            if (b->seq[k] == s) { prev = k; break; }
        if (prev >= 0 ? p != b->pos[prev] + 1 : p > c->kv.len[s])
            return slm_err_set(err, SLM_EINVAL, "position %d of sequence %d leaves a gap (it holds %d)", p, s, c->kv.len[s]);
    }
    /* truncate to each sequence's first position, then count blocks */
    for (int32_t i = 0; i < b->n_tokens; i++) {
        bool first = true;
        for (int32_t k = 0; k < i; k++) first &= b->seq[k] != b->seq[i];
        if (first && b->pos[i] < c->kv.len[b->seq[i]]) slm_kvp_truncate(&c->kv, b->seq[i], b->pos[i]);
    }
    for (int32_t i = 0; i < b->n_tokens; i++) {
        bool last = true;
        for (int32_t k = i + 1; k < b->n_tokens; k++) last &= b->seq[k] != b->seq[i];
        if (last) need += slm_kvp_blocks_needed(&c->kv, b->seq[i], b->pos[i] + 1);
    }
    if (need > c->kv.n_free)
        return slm_err_set(err, SLM_EBUSY, "KV cache full: the batch needs %d blocks, %d are free", need, c->kv.n_free);
    for (int32_t i = 0; i < b->n_tokens; i++) {
        bool last = true;
        for (int32_t k = i + 1; k < b->n_tokens; k++) last &= b->seq[k] != b->seq[i];
        if (last && slm_kvp_reserve(&c->kv, b->seq[i], b->pos[i] + 1))
            return slm_err_set(err, SLM_EBUSY, "KV cache full");
    }
    return 0;
}

int slm_decode_batch(slm_ctx *c, const slm_batch *b, float *logits, slm_err *err) {
    const slm_model *m = c->model;
    const slm_hparams *hp = &m->hp;
    int rc = prepare(c, b, err);
    if (rc) return rc;
    int64_t E = hp->n_embd, NV = hp->n_vocab;
    size_t out_row = 0;
    for (int32_t done = 0; done < b->n_tokens;) {
        int32_t nb = b->n_tokens - done < c->n_batch ? b->n_tokens - done : c->n_batch;
        memcpy(c->c_tok, b->token + done, (size_t)nb * sizeof(int32_t));
        memcpy(c->c_pos, b->pos + done, (size_t)nb * sizeof(int32_t));
        memcpy(c->c_seq, b->seq + done, (size_t)nb * sizeof(int32_t));
        embed(m, c->c_tok, nb, c->x);
        rope_tables(c, nb);
        for (int32_t il = 0; il < hp->n_layer; il++) layer_forward(c, il, nb);
        for (int32_t i = 0; i < nb; i++) /* positions written so far are now held */
            if (c->c_pos[i] + 1 > c->kv.len[c->c_seq[i]]) c->kv.len[c->c_seq[i]] = c->c_pos[i] + 1;
        /* final norm and output rows for the entries that want logits */
        int32_t cnt = 0;
        for (int32_t i = 0; i < nb; i++) {
            int32_t gi = done + i;
            bool want = b->logits ? b->logits[gi] != 0 : gi == b->n_tokens - 1;
            if (want) slm_rmsnorm(c->xn + (size_t)cnt++ * E, c->x + i * E, m->output_norm, E, hp->rms_eps);
        }
        if (cnt) matmul(c, &m->output, c->xn, cnt, logits + out_row * (size_t)NV, NV);
        out_row += (size_t)cnt;
        done += nb;
    }
    return 0;
}

int slm_decode(slm_ctx *c, int32_t seq, const int32_t *tokens, int32_t n, int32_t pos0, bool logits_all,
               float *logits, slm_err *err) {
    if (n <= 0) return slm_err_set(err, SLM_EINVAL, "no tokens to decode");
    if (seq < 0 || seq >= c->n_seq) return slm_err_set(err, SLM_EINVAL, "sequence %d out of range (0..%d)", seq, c->n_seq - 1);
    if (pos0 < 0 || pos0 > c->kv.len[seq])
        return slm_err_set(err, SLM_EINVAL, "position %d leaves a gap (sequence %d holds %d)", pos0, seq, c->kv.len[seq]);
    if (n > c->n_ctx - pos0)
        return slm_err_set(err, SLM_ERANGE, "context is full: %d tokens at position %d exceed the context of %d", n, pos0,
                           c->n_ctx);
    int32_t *pos = slm_malloc((size_t)n * sizeof *pos), *seqs = slm_malloc((size_t)n * sizeof *seqs);
    int8_t *want = logits_all ? slm_malloc((size_t)n) : NULL;
    int rc;
    if (!pos || !seqs || (logits_all && !want)) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
    } else {
        for (int32_t i = 0; i < n; i++) {
            pos[i] = pos0 + i;
            seqs[i] = seq;
            if (want) want[i] = 1;
        }
        slm_batch b = { n, tokens, pos, seqs, want };
        rc = slm_decode_batch(c, &b, logits, err);
    }
    slm_free(pos);
    slm_free(seqs);
    slm_free(want);
    return rc;
}
