/*
 * model.h — the model module's private contract: hyper-parameters and
 * weights bound from a GGUF file, per architecture.
 *
 * Weights point into the read-only mapping (no copies) except the small
 * vectors (norms, biases, RoPE frequency factors), which are converted to
 * F32 at load and owned by the model.
 */
#ifndef SLM_MODEL_MODEL_H
#define SLM_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "slm/slm.h"

typedef enum slm_arch {
    SLM_ARCH_LLAMA, SLM_ARCH_QWEN2, SLM_ARCH_QWEN3, SLM_ARCH_PHI3,
} slm_arch;

typedef enum slm_rope_kind {
    SLM_ROPE_NORM,  /* rotate adjacent pairs (2i, 2i+1): llama           */
    SLM_ROPE_NEOX,  /* rotate halves (i, i + n_rot/2): qwen2/3, phi3     */
} slm_rope_kind;

/* A 2-D weight matrix: rows of ne0 elements, ne1 rows. */
typedef struct slm_mat {
    const char *name;      /* tensor name (in the mapping, not NUL-safe: use for messages via name_buf) */
    int32_t type;
    int64_t ne0, ne1;
    size_t  row_bytes;
    const void *data;      /* in the mapping, or in the resident copy (resident.c) */
    const void *mapped;    /* in the mapping, whichever data is                     */
    int32_t layout;        /* slm_layout of data (kernels/packed.h): 0 = the file's rows */
} slm_mat;

typedef struct slm_layer {
    float  *attn_norm;             /* [n_embd]                                */
    slm_mat wq, wk, wv, wqkv;      /* separate, or fused (phi3) in wqkv        */
    float  *bq, *bk, *bv;          /* optional biases                         */
    float  *q_norm, *k_norm;       /* qwen3: [head_dim]                       */
    slm_mat wo;
    float  *bo;
    float  *ffn_norm;              /* [n_embd]                                */
    slm_mat w_gate, w_up, w_down;  /* phi3: gate is the first half of w_up   */
    bool    fused_qkv, fused_gate_up;
} slm_layer;

typedef struct slm_hparams {
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int32_t head_dim;              /* key/value length per head              */
    int32_t n_rot;
    int32_t n_ctx_train;
    float   rms_eps, rope_freq_base, rope_freq_scale;
    slm_rope_kind rope_kind;
} slm_hparams;

struct slm_model {
    slm_gguf  *gguf;               /* owns the mapping                         */
    slm_vocab *vocab;
    slm_arch   arch;
    const char *arch_name;
    char      *name;               /* general.name or ""                      */
    char      *chat_template;      /* NULL when absent                        */
    slm_hparams hp;
    bool       vocab_only;
    slm_mat    tok_embd, output;
    float     *output_norm;
    float     *rope_freqs;         /* [n_rot/2] llama3 frequency factors or NULL */
    bool       tied_output;
    slm_layer *layers;
    void      *resident;           /* anonymous copy of the matmul weights (resident.c) or NULL */
    size_t     resident_len;       /* its mapping length                       */
    /* every owned float vector, freed together */
    float    **owned; int32_t n_owned, cap_owned;
};

/* Copies the 2-D matmul weights into anonymous huge-page memory and points
 * their slm_mat.data there (resident.c); n_threads read in parallel. A
 * model whose tensors are not in a file mapping is left as it is. */
int slm_model_make_resident(slm_model *m, const char *path, int n_threads, slm_err *err);

/* Binds hparams and tensors for the model's architecture (arch.c). */
int slm_model_bind(slm_model *m, slm_err *err);

#endif
