/*
 * quantize.h — GGUF to GGUF quantization (the library behind
 * `slm quantize` and `slm quant-report`).
 *
 * A target is a "mix": one base type for most 2-D weight tensors plus the
 * per-tensor choices users know by name from llama.cpp (Q4_K_M keeps
 * output.weight and parts of attn_v / ffn_down at higher precision). Norms,
 * biases and other 1-D tensors stay F32. Tensors whose row length is not a
 * multiple of the chosen type's block fall back to a compatible type (said
 * in the per-tensor log). Metadata (tokenizer included) is carried over and
 * general.file_type is set to the mix's llama.cpp ftype number.
 *
 * The work runs tensor by tensor (bounded memory: one tensor's floats and
 * its output at a time) on n_threads threads, writing a temporary file that
 * is renamed over OUT only on success.
 */
#ifndef SLM_QUANT_QUANTIZE_H
#define SLM_QUANT_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "slm/slm.h"

/* Mix ids are llama.cpp's LLAMA_FTYPE_* numbers (general.file_type). */
enum slm_ftype {
    SLM_FTYPE_F32 = 0, SLM_FTYPE_F16 = 1, SLM_FTYPE_Q4_0 = 2, SLM_FTYPE_Q4_1 = 3,
    SLM_FTYPE_Q8_0 = 7, SLM_FTYPE_Q5_0 = 8, SLM_FTYPE_Q5_1 = 9, SLM_FTYPE_Q2_K = 10,
    SLM_FTYPE_Q3_K_S = 11, SLM_FTYPE_Q3_K_M = 12, SLM_FTYPE_Q3_K_L = 13,
    SLM_FTYPE_Q4_K_S = 14, SLM_FTYPE_Q4_K_M = 15, SLM_FTYPE_Q5_K_S = 16,
    SLM_FTYPE_Q5_K_M = 17, SLM_FTYPE_Q6_K = 18, SLM_FTYPE_BF16 = 32,
};

typedef struct slm_quantize_params {
    int32_t     ftype;          /* an slm_ftype                                   */
    const char *imatrix_path;   /* importance matrix (slm imatrix output) or NULL */
    int         n_threads;      /* <= 0: all cores                                */
    bool        progress;       /* draw a progress line (util/progress.h rules)   */
    bool        allow_requantize; /* accept already-quantized inputs              */
    /* Optional per-tensor report: called after each tensor is written. */
    void      (*on_tensor)(void *ud, const char *name, int32_t from_type, int32_t to_type,
                           uint64_t bytes_in, uint64_t bytes_out);
    void       *ud;
} slm_quantize_params;

typedef struct slm_quantize_stats {
    uint64_t bytes_in, bytes_out;   /* tensor data only                           */
    int64_t  n_tensors, n_quantized;
    double   seconds;
    uint64_t n_elements;            /* weights in all tensors (bits per weight)   */
} slm_quantize_stats;

slm_quantize_params slm_quantize_default_params(void);

/* "q4_k_m", "Q4_K_M", "q8_0", "f16", "bf16"… (case-insensitive) -> ftype.
 * Returns SLM_EINVAL for unknown names. */
int slm_quantize_ftype_parse(const char *name, int32_t *ftype);
/* Canonical upper-case name of a mix ("Q4_K_M"), or NULL if unknown. */
const char *slm_quantize_ftype_name(int32_t ftype);

/* Quantizes IN to OUT. stats may be NULL. Errors name the tensor. */
int slm_quantize_file(const char *in_path, const char *out_path, const slm_quantize_params *p,
                      slm_quantize_stats *stats, slm_err *err);

#endif
