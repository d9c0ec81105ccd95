/*
 * types.h — tensor types: block layouts and the per-type kernel table.
 *
 * Type ids are GGUF's (= ggml's). Block structs are pinned with
 * _Static_assert so that they match the bytes in files. The table gives, per
 * type, the kernels. types.c holds the scalar reference table; dispatch.c
 * copies it once (on first use) and installs the SIMD kernels of the best
 * instruction set the CPU has (src/kernels/x86/), which is the table that
 * slm_type_traits_get returns.
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
/* A tile of dot products: s[c*bs + r] = dot(x_r, y_c) for r < nr, c < nc,
 * where row x_r starts at x + r*bx (row type) and column y_c at y + c*by
 * (the vec_dot_type); n elements each, nr, nc >= 1. Each weight block is
 * loaded once for several columns and each activation block once for
 * several rows; the result equals nr*nc vec_dot calls up to float
 * rounding (the summation order differs). */
typedef void (*slm_vec_dot_tile_fn)(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                                    size_t by, int nr, int nc);

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
    slm_vec_dot_tile_fn vec_dot_tile; /* rows × columns; NULL: use vec_dot   */
} slm_type_traits;

/* Traits of a type id with the kernels chosen for this CPU (see
 * dispatch.c; SLM_ISA=scalar|avx2|avx512 in the environment caps the
 * choice), or NULL when slm cannot compute with the type. The first call
 * detects the CPU; every call is thread-safe. */
const slm_type_traits *slm_type_traits_get(int32_t type);
/* The scalar reference entry (types.c), NULL as above. */
const slm_type_traits *slm_type_traits_ref(int32_t type);
/* The entry of one instruction set ("scalar", "avx2", "avx512"), whatever
 * SLM_ISA says; NULL if the CPU or the build lacks it, or as above. Tests
 * and benchmarks compare the sets with this. */
const slm_type_traits *slm_type_traits_isa(int32_t type, const char *isa);
/* The instruction set slm_type_traits_get uses: "avx512-vnni", "avx2" or
 * "scalar". */
const char *slm_kernels_isa(void);
/* Bytes of a row of n elements; 0 if n is negative or not a multiple of
 * the block size, the type is unknown, or the size overflows size_t. */
size_t slm_row_size(int32_t type, int64_t n);
/* True if the id has a known block layout (size computable), even if slm
 * has no kernels for it. */
bool slm_type_known(int32_t type);
int64_t slm_type_blck_size(int32_t type);  /* 0 if unknown */
size_t  slm_type_size(int32_t type);       /* bytes per block, 0 if unknown */

#endif
