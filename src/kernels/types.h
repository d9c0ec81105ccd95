/*
 * types.h — tensor types: block layouts and the per-type kernel table.
 *
 * Type ids are GGUF's (= ggml's). Block structs are pinned with
 * _Static_assert so that they match the bytes in files. The table gives, per
 * type, the scalar reference kernels; SIMD versions (a later step) install
 * faster function pointers into a copy of this table chosen once from CPUID.
 */
#ifndef SLM_KERNELS_TYPES_H
#define SLM_KERNELS_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum slm_type {
    SLM_TYPE_F32 = 0, SLM_TYPE_F16 = 1, SLM_TYPE_Q4_0 = 2, SLM_TYPE_Q4_1 = 3,
    SLM_TYPE_Q5_0 = 6, SLM_TYPE_Q5_1 = 7, SLM_TYPE_Q8_0 = 8, SLM_TYPE_Q8_1 = 9,
    SLM_TYPE_Q2_K = 10, SLM_TYPE_Q3_K = 11, SLM_TYPE_Q4_K = 12, SLM_TYPE_Q5_K = 13,
    SLM_TYPE_Q6_K = 14, SLM_TYPE_Q8_K = 15, SLM_TYPE_BF16 = 30,
    SLM_TYPE_COUNT = 40   /* ids below this have a name (see slm_type_name) */
};

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef uint16_t slm_half;   /* IEEE binary16 bits */

typedef struct { slm_half d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { slm_half d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { slm_half d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { slm_half d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { slm_half d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { slm_half d, s; int8_t qs[QK8_1]; } block_q8_1;
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; slm_half d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; slm_half d; } block_q3_K;
typedef struct { slm_half d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { slm_half d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; slm_half d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

/* n is always a multiple of the type's block size. */
typedef void (*slm_to_float_fn)(const void *x, float *y, int64_t n);
typedef void (*slm_from_float_fn)(const float *x, void *y, int64_t n);
/* s = dot(x, y) over n elements; x of the row type, y of its vec_dot_type. */
typedef void (*slm_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

typedef struct slm_type_traits {
    const char *name;            /* "q4_K" as ggml spells it                 */
    int64_t blck_size;           /* elements per block                       */
    size_t  type_size;           /* bytes per block                          */
    bool    is_quantized;
    slm_to_float_fn   to_float;  /* dequantize (NULL: type not supported)    */
    slm_from_float_fn from_float;/* reference quantizer (round to nearest,   *
                                  * K-quants with their scale search)        */
    int32_t vec_dot_type;        /* type the activations are converted to    */
    slm_vec_dot_fn vec_dot;      /* row · activations                         */
} slm_type_traits;

/* Traits of a type id, or NULL when slm cannot compute with it. */
const slm_type_traits *slm_type_traits_get(int32_t type);
/* Bytes of a row of n elements; 0 if n is negative or not a multiple of
 * the block size, the type is unknown, or the size overflows size_t. */
size_t slm_row_size(int32_t type, int64_t n);
/* True if the id has a known block layout (size computable), even if slm
 * has no kernels for it. */
bool slm_type_known(int32_t type);
int64_t slm_type_blck_size(int32_t type);  /* 0 if unknown */
size_t  slm_type_size(int32_t type);       /* bytes per block, 0 if unknown */

#endif
