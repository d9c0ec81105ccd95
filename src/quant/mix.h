/*
 * mix.h — which type each tensor gets in a quantization mix (Q4_K_M, …):
 * the per-tensor rules llama.cpp's users know by name, as a table
 * (mix.c documents each rule). Private to src/quant.
 */
#ifndef SLM_QUANT_MIX_H
#define SLM_QUANT_MIX_H

#include <stdbool.h>
#include <stdint.h>

/* What the rules need to know about the model being quantized. */
typedef struct slm_mix_model {
    int32_t n_layer;      /* {arch}.block_count                              */
    int32_t n_gqa;        /* query heads per KV head (1 without GQA)          */
    int32_t n_attn_v;     /* attn_v (or fused attn_qkv) tensors in the file   */
    bool    tied_output;  /* no output.weight: token_embd is also the output  */
    bool    is_70b;       /* llama with 80 layers (llama.cpp's 70B bump)      */
    bool    has_imatrix;  /* an importance matrix is in use                   */
} slm_mix_model;

/* The type most 2-D weights get in the mix, or -1 if slm does not make
 * this mix. */
int32_t slm_mix_base_type(int32_t ftype);

/* True for the tensors a mix converts: 2-D and up, named "*weight", not a
 * norm. Everything else (norms, biases, RoPE factors) is copied as is. */
bool slm_mix_quantizable(const char *name, uint32_t n_dims);

/* The type of quantizable tensor `name` with rows of ne0 elements. *why
 * (may be NULL) receives a static phrase naming the rule or fallback that
 * chose it, or NULL when the base type stands. */
int32_t slm_mix_tensor_type(int32_t ftype, const slm_mix_model *mm, const char *name, int64_t ne0,
                            const char **why);

#endif
