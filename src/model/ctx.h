/*
 * ctx.h — an inference context: the paged KV cache, scratch buffers and the
 * compute pool for one model. Private to src/model/.
 */
#ifndef SLM_MODEL_CTX_H
#define SLM_MODEL_CTX_H

#include "model/kv.h"
#include "model/model.h"
#include "util/pool.h"

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
    float *scores;                  /* [n_threads][n_ctx]                          */
    void  *wbuf;                    /* activations converted for vec_dot           */
};

#endif
