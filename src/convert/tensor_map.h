/*
 * tensor_map.h — which Hugging Face tensor becomes which GGUF tensor, with
 * what shape and transformation, for each architecture `slm convert` knows.
 */
#ifndef SLM_CONVERT_TENSOR_MAP_H
#define SLM_CONVERT_TENSOR_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "convert/hf_config.h"

typedef struct slm_cv_tensor {
    char    name[64];       /* GGUF name: "blk.3.attn_q.weight"                         */
    char    src[96];        /* checkpoint name: "model.layers.3.self_attn.q_proj.weight" */
    int64_t ne0, ne1;       /* GGUF shape: ne1 rows of ne0; ne1 == 0 for a vector        */
    int32_t rope_heads;     /* > 0: rows reordered for RoPE, heads of rows/rope_heads    */
    bool    optional;       /* left out when the checkpoint lacks it                    */
} slm_cv_tensor;

/* The tensors cfg's architecture needs (tied: no output.weight), in the
 * order they are written. *out is slm_malloc'ed; the caller frees it. */
int slm_cv_plan(const slm_hf_config *cfg, bool tied, slm_cv_tensor **out, int32_t *n_out, slm_err *err);

/* The Q/K permutation. Hugging Face's RoPE rotates the two halves of a
 * head against each other (dimension j with j + head_dim/2); llama.cpp's
 * llama RoPE rotates adjacent pairs (2j with 2j+1). Reordering the rows of
 * q_proj and k_proj within each head — GGUF row 2j+h takes HF row
 * h*head_dim/2 + j — makes the two compute the same attention. Returns the
 * HF row of GGUF row `row` (head_dim even, row anywhere in the tensor). */
static inline int64_t slm_cv_rope_src_row(int64_t row, int64_t head_dim) {
    int64_t head = row / head_dim, r = row % head_dim;
    return head * head_dim + (r % 2) * (head_dim / 2) + r / 2;
}

/* Applies the permutation to a whole [n_rows x row_len] matrix (inverse:
 * GGUF order back to Hugging Face order). in and out must not overlap. */
void slm_cv_permute_rows(const float *in, float *out, int64_t n_rows, int64_t row_len, int64_t head_dim,
                         bool inverse);

#endif
