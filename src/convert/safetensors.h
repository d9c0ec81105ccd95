/*
 * safetensors.h — reading Hugging Face .safetensors checkpoints (one file or
 * the shards of one model) for `slm convert`.
 *
 * A set holds the files added to it, each mmapped read-only, and the table
 * of every tensor in them. Shapes are as PyTorch writes them, outermost
 * dimension first ([rows, columns] for a weight matrix), unlike GGUF's ne[].
 */
#ifndef SLM_CONVERT_SAFETENSORS_H
#define SLM_CONVERT_SAFETENSORS_H

#include <stdbool.h>
#include <stdint.h>

#include "slm/slm.h"

#define SLM_ST_MAX_DIMS 4

/* Element types; only F32, F16 and BF16 can be read as numbers. */
typedef enum slm_st_dtype {
    SLM_ST_F32, SLM_ST_F16, SLM_ST_BF16, SLM_ST_F64, SLM_ST_I64, SLM_ST_I32, SLM_ST_I16,
    SLM_ST_I8, SLM_ST_U64, SLM_ST_U32, SLM_ST_U16, SLM_ST_U8, SLM_ST_BOOL, SLM_ST_F8_E4M3,
    SLM_ST_F8_E5M2, SLM_ST_NDTYPES
} slm_st_dtype;

typedef struct slm_st_tensor {
    char        *name;                    /* owned, NUL-terminated                  */
    slm_st_dtype dtype;
    uint32_t     n_dims;                  /* 0 for a scalar                         */
    int64_t      shape[SLM_ST_MAX_DIMS];  /* outermost first                        */
    int64_t      n_elems;                 /* product of the shape                   */
    const void  *data;                    /* in the mapping, possibly unaligned     */
    uint64_t     nbytes;                  /* checked: inside the file               */
    int32_t      file;                    /* index of the file that holds it        */
} slm_st_tensor;

typedef struct slm_st slm_st;

/* An empty set (SLM_ENOMEM on failure). Free with slm_st_close. */
int  slm_st_new(slm_st **out, slm_err *err);
/* Maps one .safetensors file and reads its header: an 8-byte little-endian
 * length, then that many bytes of JSON, name -> {dtype, shape,
 * data_offsets}. Every offset and length is checked against the file size
 * and against overflow; a name already in the set is an error. Errors name
 * the file and, where one is at fault, the tensor. */
int  slm_st_add_file(slm_st *st, const char *path, slm_err *err);
void slm_st_close(slm_st *st);

int32_t slm_st_n_tensors(const slm_st *st);
const slm_st_tensor *slm_st_tensor_at(const slm_st *st, int32_t i);
const slm_st_tensor *slm_st_find(const slm_st *st, const char *name);   /* NULL: absent */
const char *slm_st_file_path(const slm_st *st, int32_t file);

const char *slm_st_dtype_name(slm_st_dtype t);    /* "BF16" as the format spells it */
/* True for the types slm_st_read_f32 reads (F32, F16, BF16). */
bool slm_st_dtype_readable(slm_st_dtype t);

/* Elements [first, first + n) of t in row-major order, as F32, into out.
 * SLM_EUNSUPPORTED names the tensor and its dtype when it is not F32, F16
 * or BF16; SLM_ERANGE when the range is outside the tensor. */
int slm_st_read_f32(const slm_st_tensor *t, int64_t first, int64_t n, float *out, slm_err *err);

#endif
