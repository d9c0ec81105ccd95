/*
 * ctx.h — an inference context: KV cache, scratch buffers and the compute
 * pool for one model. Private to src/model/.
 */
#ifndef SLM_MODEL_CTX_H
#define SLM_MODEL_CTX_H

#include "model/model.h"
#include "util/pool.h"

struct slm_ctx {
    slm_model *model;
    slm_pool  *pool;
    int32_t n_ctx, n_batch, n_seq;
    int32_t kv_dim;                 /* n_head_kv * head_dim                     */
    int32_t kv_type;                /* SLM_TYPE_F16 or SLM_TYPE_F32             */
    size_t  kv_esize;               /* bytes per cached element                 */
    void   *k_cache;                /* [n_layer][n_seq][n_ctx][kv_dim]          */
    void   *v_cache;                /* transposed: [n_layer][n_seq][kv_dim][n_ctx],
                                     * so o[d] = Σ_t w_t·V[d][t] is one dot product */
    int32_t *seq_len;               /* positions held per sequence             */
    /* scratch, sized for n_batch tokens */
    float *x, *xn, *q, *k, *v, *att, *gu, *h, *logit_rows;
    float *rope_cos, *rope_sin;     /* [n_batch][n_rot/2]                      */
    float *scores;                  /* [n_threads][n_ctx]                      */
    void  *wbuf;                    /* quantized activations                   */
};

#endif
