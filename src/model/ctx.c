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
    slm_ctx_params p = { .n_ctx = 0, .n_threads = 0, .n_batch = 512, .n_seq = 1, .kv_f32 = false, .kv_block = 32, .kv_mem = 0 };
    return p;
}

void slm_ctx_free(slm_ctx *c) {
    if (!c) return;
    slm_pool_free(c->pool);
    slm_kvp_destroy(&c->kv);
    void *bufs[] = { c->c_tok, c->c_pos, c->c_seq, c->x, c->xn, c->q, c->k, c->v, c->att, c->gu, c->h,
                     c->rope_cos, c->rope_sin, c->attn_scratch, c->attn_runs, c->wbuf };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) slm_free(bufs[i]);
    slm_free(c);
}

static float *fbuf(size_t a, size_t b, int *bad) {
    size_t n;
    if (!slm_mul_ok(a, b, &n) || !slm_mul_ok(n, sizeof(float), &n)) {
        *bad = 1;
        return NULL;
    }
    float *p = slm_malloc(n ? n : 1);
    if (!p) *bad = 1;
    return p;
}

int32_t slm_ctx_n_ctx(const slm_ctx *c) { return c->n_ctx; }
int32_t slm_ctx_n_seq(const slm_ctx *c) { return c->n_seq; }

void slm_ctx_set_matmul_observer(slm_ctx *c, slm_matmul_observer fn, void *ud) {
    c->observer = fn;
    c->observer_ud = ud;
}

int slm_ctx_new(slm_model *m, const slm_ctx_params *params, slm_ctx **out, slm_err *err) {
    *out = NULL;
    if (m->vocab_only) return slm_err_set(err, SLM_EINVAL, "model was loaded vocabulary-only");
    slm_ctx_params dp = slm_ctx_default_params();
    if (!params) params = &dp;
    const slm_hparams *hp = &m->hp;
    int32_t n_ctx = params->n_ctx > 0 ? params->n_ctx : hp->n_ctx_train;
    int32_t n_batch = params->n_batch > 0 ? params->n_batch : 512;
    int32_t n_seq = params->n_seq > 0 ? params->n_seq : 1;
    int32_t block = params->kv_block > 0 ? params->kv_block : 32;
    if (params->n_ctx < 0 || n_ctx > (1 << 24) || n_seq > 4096 || params->n_threads < 0 || params->n_threads > 512 ||
        block > 4096)
        return slm_err_set(err, SLM_EINVAL, "invalid context parameters: n_ctx %d, n_seq %d, threads %d, kv block %d",
                           params->n_ctx, params->n_seq, params->n_threads, params->kv_block);
    if (n_batch > n_ctx * n_seq) n_batch = n_ctx * n_seq < 4096 ? n_ctx * n_seq : 4096;
    slm_ctx *c = slm_calloc(1, sizeof *c);
    if (!c) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    c->model = m;
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    c->n_seq = n_seq;
    c->kv_dim = hp->n_head_kv * hp->head_dim;
    /* the pool: the budget's worth of blocks, or every sequence at full context */
    size_t esize = params->kv_f32 ? 4 : 2;
    double block_bytes = 2.0 * block * (double)c->kv_dim * esize * hp->n_layer;
    double full = (double)n_seq * ((n_ctx + block - 1) / block);
    double n_blocks = params->kv_mem ? (double)params->kv_mem / block_bytes : full;
    if (n_blocks > full) n_blocks = full;
    if (n_blocks < 1 || n_blocks > INT32_MAX) {
        slm_ctx_free(c);
        return slm_err_set(err, SLM_EINVAL, "KV memory of %zu bytes holds %.0f blocks of %d positions (%.0f bytes each)",
                           params->kv_mem, n_blocks, block, block_bytes);
    }
    int rc = slm_kvp_init(&c->kv, hp->n_layer, c->kv_dim, n_ctx, n_seq, block, (int32_t)n_blocks, params->kv_f32, err);
    if (rc) {
        slm_ctx_free(c);
        return rc;
    }
    c->pool = slm_pool_new(params->n_threads);
    int bad = 0;
    size_t B = (size_t)n_batch, E = (size_t)hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim;
    size_t F = (size_t)hp->n_ff, half = (size_t)hp->n_rot / 2;
    size_t QKV = Q + 2 * (size_t)c->kv_dim;
    c->c_tok = slm_malloc(B * sizeof(int32_t));
    c->c_pos = slm_malloc(B * sizeof(int32_t));
    c->c_seq = slm_malloc(B * sizeof(int32_t));
    c->x = fbuf(B, E, &bad);
    c->xn = fbuf(B, E, &bad);
    c->q = fbuf(B, QKV, &bad);   /* phi3 writes fused q|k|v rows here */
    c->k = fbuf(B, (size_t)c->kv_dim, &bad);
    c->v = fbuf(B, (size_t)c->kv_dim, &bad);
    c->att = fbuf(B, Q, &bad);
    c->gu = fbuf(B, 2 * F, &bad);
    c->h = fbuf(B, F, &bad);
    c->rope_cos = fbuf(B, half, &bad);
    c->rope_sin = fbuf(B, half, &bad);
    int nth = c->pool ? slm_pool_size(c->pool) : 1;
    {   /* attention scratch per thread: K and V tiles, a row, one block of
         * scores, and (m, l, o[head_dim]) per entry and head of a run of 16 */
        size_t hd = (size_t)hp->head_dim, blk = (size_t)block, group = (size_t)(hp->n_head / hp->n_head_kv);
        c->attn_scratch_stride = 2 * hd * blk + (hd > blk ? hd : blk) + blk + SLM_ATTN_TQ * group * (hd + 2) + 16;
        c->attn_scratch = fbuf((size_t)nth, c->attn_scratch_stride, &bad);
        c->attn_runs = slm_malloc((B + 1) * sizeof(int32_t));
        if (!c->attn_runs) bad = 1;
    }
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
    wmax *= SLM_MM_MAX_OPS;   /* slm_matmul_multi converts once per vec_dot_type */
    c->wbuf = slm_malloc(wmax ? wmax : 1);
    if (bad || !c->pool || !c->c_tok || !c->c_pos || !c->c_seq || !c->wbuf) {
        slm_ctx_free(c);
        return slm_err_set(err, SLM_ENOMEM, "out of memory creating the inference context");
    }
    *out = c;
    return 0;
}

void slm_kv_truncate(slm_ctx *c, int32_t seq, int32_t pos) {
    if (seq < 0 || seq >= c->n_seq) return;
    slm_kvp_truncate(&c->kv, seq, pos);
}

int32_t slm_kv_seq_len(const slm_ctx *c, int32_t seq) { return seq >= 0 && seq < c->n_seq ? c->kv.len[seq] : 0; }

void slm_kv_share(slm_ctx *c, int32_t dst, int32_t src, int32_t n_pos) {
    if (dst < 0 || dst >= c->n_seq || src < 0 || src >= c->n_seq || dst == src) return;
    slm_kvp_share(&c->kv, dst, src, n_pos);
}

int32_t slm_kv_blocks_needed(const slm_ctx *c, int32_t seq, int32_t pos_end) {
    if (seq < 0 || seq >= c->n_seq) return 0;
    return slm_kvp_blocks_needed(&c->kv, seq, pos_end > c->n_ctx ? c->n_ctx : pos_end);
}

void slm_kv_get_stats(const slm_ctx *c, slm_kv_stats *st) {
    st->block_tokens = c->kv.block;
    st->blocks_total = c->kv.n_blocks;
    st->blocks_free = c->kv.n_free;
    st->bytes = 2 * c->kv.layer_bytes * (size_t)c->kv.n_layer * (size_t)c->kv.n_blocks;
}
