/*
 * hf_config.h — a Hugging Face model folder's config.json (and the chat
 * template from tokenizer_config.json) read into the hyper-parameters a
 * GGUF file carries.
 */
#ifndef SLM_CONVERT_HF_CONFIG_H
#define SLM_CONVERT_HF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "slm/slm.h"

typedef enum slm_hf_rope_scaling {
    SLM_HF_ROPE_NONE, SLM_HF_ROPE_LINEAR, SLM_HF_ROPE_LLAMA3,
} slm_hf_rope_scaling;

typedef struct slm_hf_config {
    char    hf_arch[96];          /* architectures[0]: "LlamaForCausalLM"              */
    const char *arch;             /* GGUF architecture: llama, qwen2, qwen3, phi3       */
    int32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    int32_t head_dim;             /* per head (config's head_dim, else n_embd/n_head) */
    bool    head_dim_given;       /* config.json names head_dim: write key_length     */
    int32_t n_rot;                /* rotary dimensions (phi3: partial_rotary_factor)  */
    float   rms_eps, rope_theta;
    int     tied;                 /* tie_word_embeddings: 1, 0, or -1 when absent     */
    bool    permute_qk;           /* llama: Q/K rows to GGUF's adjacent-pair RoPE     */
    bool    fused;                /* phi3: qkv_proj and gate_up_proj                 */
    bool    qk_norm;              /* qwen3: per-head q_norm / k_norm                 */
    bool    qkv_bias_required;    /* qwen2                                           */
    int32_t sliding_window;       /* phi3 (written as llama.cpp does), 0: none        */
    slm_hf_rope_scaling rope_scaling;
    float   rope_factor;          /* linear or llama3 factor                         */
    float   llama3_low, llama3_high;  /* llama3 low/high frequency factors           */
    int32_t llama3_orig_ctx;      /* llama3 original_max_position_embeddings         */
    char   *chat_template;        /* owned, NULL when none                           */
} slm_hf_config;

/* Reads dir/config.json (required) and the chat template (tokenizer_config's
 * chat_template — a string, or the "default" entry of a list — else
 * dir/chat_template.jinja). Architectures other than Llama, Mistral, Qwen2,
 * Qwen3 and Phi-3, and RoPE scalings other than linear and llama3, are
 * SLM_EUNSUPPORTED naming them; a missing or out-of-range field is
 * SLM_EFORMAT naming the field. Free with slm_hf_config_free. */
int  slm_hf_config_load(const char *dir, slm_hf_config *cfg, slm_err *err);
void slm_hf_config_free(slm_hf_config *cfg);

/* "dir/name" (slm_malloc'ed, NULL on OOM). */
char *slm_hf_path(const char *dir, const char *name);

#endif
