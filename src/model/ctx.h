/*
 * ctx.h — an inference context: the paged KV cache, scratch buffers and the
 * compute pool for one model. Private to src/model/.
 */
#ifndef SLM_MODEL_CTX_H
#define SLM_MODEL_CTX_H

#include "model/kv.h"
#include "model/model.h"
#include "util/pool.h"

/* Called before each weight matrix product with the weight and its input:
 * x holds n_tokens rows of w->ne0 floats (e.g. `slm imatrix` accumulates
 * per-column mean squares). Runs on the thread calling slm_decode*. */
typedef void (*slm_matmul_observer)(void *ud, const slm_mat *w, const float *x, int32_t n_tokens);

struct slm_ctx {
    slm_model *model;
    slm_pool  *pool;
    int32_t n_ctx, n_batch, n_seq;
    int32_t kv_dim;                 /* n_head_kv * head_dim                        */
    slm_kvp kv;                     /* paged KV cache                              */
    /* per chunk of up to n_batch entries */
    int32_t *c_tok, *c_pos, *c_seq; /* the chunk being computed                    */
    float *x, *xn, *q, *k, *v, *att, *gu, *h;
    float *rope_cos, *rope_sin;     /* [n_batch][n_rot/2]                          */
    float *attn_scratch;            /* per thread: K/V tiles, scores, run state    */
    size_t attn_scratch_stride;     /* floats per thread                           */
    int32_t *attn_runs;             /* [n_batch + 1] run starts (forward.c)        */
#define SLM_ATTN_TQ 16              /* entries per attention run (forward.c)       */
    void  *wbuf;                    /* activations converted for vec_dot           */
    slm_matmul_observer observer;   /* NULL: none (see above)                      */
    void  *observer_ud;             /* passed to observer                          */
};

/* Installs (fn != NULL) or removes (fn == NULL) the matmul observer. */
void slm_ctx_set_matmul_observer(slm_ctx *c, slm_matmul_observer fn, void *ud);

#endif
