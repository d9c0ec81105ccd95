/*
 * imatrix.h — importance matrices: per weight matrix, the mean square of
 * each input column's activation over some text (`slm imatrix` collects
 * them; `slm quantize --imatrix` weights its error by them).
 *
 * Files are llama.cpp's GGUF imatrix format, so they go both ways with
 * llama-imatrix / llama-quantize --imatrix: general.type = "imatrix",
 * imatrix.datasets (strings), imatrix.chunk_count and imatrix.chunk_size
 * (u32), and per weight NAME two F32 tensors: NAME.in_sum2 (the sum of
 * squared activations per column) and NAME.counts (the number of
 * activation rows summed). Mixture-of-experts entries (several counts)
 * are refused. The older llama.cpp binary .dat format is not read.
 */
#ifndef SLM_QUANT_IMATRIX_H
#define SLM_QUANT_IMATRIX_H

#include <stdint.h>

#include "slm/slm.h"

typedef struct slm_imatrix slm_imatrix;

/* An empty matrix (to collect into or load). NULL on OOM. */
slm_imatrix *slm_imatrix_new(void);
void slm_imatrix_free(slm_imatrix *im);

/* Collecting: installs a matmul observer on ctx (whose model must outlive
 * the collection) that adds each 2-D weight's input activations — every
 * "blk.*" weight and output.weight — to im. Call with im NULL to detach.
 * Errors inside the observer (out of memory) are kept for
 * slm_imatrix_status. */
void slm_imatrix_attach(slm_imatrix *im, slm_ctx *ctx);
int  slm_imatrix_status(const slm_imatrix *im, slm_err *err);

/* Metadata kept with the matrix. dataset is copied. */
int  slm_imatrix_set_info(slm_imatrix *im, const char *dataset, int32_t n_chunks, int32_t chunk_size);
int32_t slm_imatrix_n_entries(const slm_imatrix *im);
int32_t slm_imatrix_n_chunks(const slm_imatrix *im);
const char *slm_imatrix_dataset(const slm_imatrix *im);   /* "" when none */

/* Writes im to path (temporary file renamed into place). */
int slm_imatrix_save(const slm_imatrix *im, const char *path, slm_err *err);
/* Reads a GGUF imatrix file; the error names what is wrong with it. */
int slm_imatrix_load(const char *path, slm_imatrix **out, slm_err *err);

/* Mean squared activation per column of weight `name` into out (n
 * floats). SLM_ENOTFOUND when there is no entry, SLM_EFORMAT (err names
 * the entry) when it has another column count. Columns never seen get 1.
 * out NULL: only checks. */
int slm_imatrix_get(const slm_imatrix *im, const char *name, int64_t n, float *out, slm_err *err);

#endif
