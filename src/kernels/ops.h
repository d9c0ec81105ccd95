/*
 * ops.h — the forward pass's numeric operations on F32 activations (scalar
 * reference versions; SIMD versions come with the speed work and are tested
 * against these).
 */
#ifndef SLM_KERNELS_OPS_H
#define SLM_KERNELS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "util/pool.h"

/* y = x / rms(x) * w over n elements (w may be NULL: no scaling). */
void slm_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
/* In-place softmax over n elements. */
void slm_softmax(float *x, int64_t n);
/* y[i] = silu(g[i]) * u[i] */
void slm_swiglu(float *y, const float *g, const float *u, int64_t n);
/* Rotates n_rot dims of each of n_heads heads (head_dim apart) by the
 * angles whose cos/sin are given (n_rot/2 each). neox: pairs (i, i+n_rot/2),
 * else adjacent pairs (2i, 2i+1). */
void slm_rope(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot, const float *cs, const float *sn, int neox);

/* Matrix × activations: y[b][r] = W_r · x_b for r < n_rows, b < n_tok.
 * W rows are `row_bytes` apart, of type `type` with n_cols elements each;
 * x is n_tok × n_cols F32 (row stride n_cols), y is n_tok rows with stride
 * y_stride. `wbuf` is scratch for the activations converted to the type's
 * vec_dot_type: at least slm_matmul_wsize(type, n_cols, n_tok) bytes.
 * Rows are split across the pool's threads. */
size_t slm_matmul_wsize(int32_t type, int64_t n_cols, int64_t n_tok);
void slm_matmul(slm_pool *pool, int32_t type, const void *w, size_t row_bytes, int64_t n_rows, int64_t n_cols,
                const float *x, int64_t n_tok, float *y, int64_t y_stride, void *wbuf);

/* Several products of the same activations in one pool run (and the
 * way to multiply by a matrix packed at load time: op.layout) (Q, K and V;
 * gate and up): one wake-up of the threads instead of one per matrix, and
 * x converted once per vec_dot_type. Each op is one weight matrix with its
 * output; every matrix has n_cols columns. wbuf: at least
 * SLM_MM_MAX_OPS × slm_matmul_wsize(largest, n_cols, n_tok) bytes. */
#define SLM_MM_MAX_OPS 4
typedef struct slm_mm_op {
    int32_t type;                /* weight type                            */
    const void *w;               /* rows, row_bytes apart                  */
    size_t row_bytes;
    int64_t n_rows;
    float *y;                    /* n_tok rows of y_stride                 */
    int64_t y_stride;
    int32_t layout;              /* slm_layout (packed.h): 0 = file rows    */
} slm_mm_op;
void slm_matmul_multi(slm_pool *pool, const slm_mm_op *ops, int n_ops, int64_t n_cols, const float *x, int64_t n_tok,
                      void *wbuf);

#endif
