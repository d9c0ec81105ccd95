/*
 * convert.h — `slm convert`: a Hugging Face checkpoint folder (config.json,
 * safetensors, tokenizer.json) to a GGUF file that slm and llama.cpp load.
 */
#ifndef SLM_CONVERT_CONVERT_H
#define SLM_CONVERT_CONVERT_H

#include <stdint.h>

#include "slm/slm.h"

/* Called once before the first tensor and after each one: tensors and
 * bytes of tensor data written so far, the totals, and the tensor just
 * written (or about to be, when i_tensor is 0). */
typedef void (*slm_convert_progress_fn)(void *ud, int32_t i_tensor, int32_t n_tensors, uint64_t bytes_done,
                                        uint64_t bytes_total, const char *name);

typedef struct slm_convert_params {
    int32_t type;                      /* 2-D weights: SLM_TYPE_F32, F16, BF16 or Q8_0 */
    slm_convert_progress_fn progress;  /* NULL: none                                   */
    void   *progress_ud;
} slm_convert_params;

typedef struct slm_convert_stats {
    char     arch[16];          /* GGUF architecture written                         */
    char     tokenizer[8];      /* "llama" (SentencePiece) or "gpt2" (byte-level BPE) */
    int32_t  n_tensors;
    int32_t  n_vocab;
    int32_t  n_fallback;        /* matrices written as F16 because their rows do not
                                 * split into blocks of the requested type          */
    uint64_t n_params;          /* weight elements                                   */
    uint64_t file_bytes;
} slm_convert_stats;

/* type F16, no progress */
slm_convert_params slm_convert_default_params(void);

/* Converts the checkpoint in hf_dir to out_path. The file is written as a
 * temporary beside out_path and renamed over it only when complete; on
 * failure nothing is left behind. Memory stays near the largest tensor's
 * converted rows (a few MiB), not the model: the GGUF header and layout are
 * written first, then each tensor is converted and written in place.
 * stats may be NULL. Errors name the file, tensor, key or architecture at
 * fault. */
int slm_convert_hf(const char *hf_dir, const char *out_path, const slm_convert_params *params,
                   slm_convert_stats *stats, slm_err *err);

#endif
