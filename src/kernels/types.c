/*
 * types.c — the tensor-type table: names, block sizes and the scalar
 * reference kernels per GGUF type id.
 *
 * Three tables, all indexed by type id:
 *   - names: every id below SLM_TYPE_COUNT has ggml's spelling (ids that
 *     ggml retired keep their historical names), so messages can name any
 *     type a file may carry;
 *   - layouts: block size and bytes per block for every id whose layout is
 *     fixed, including types slm cannot compute with (IQ*, TQ*, I*, F64,
 *     MXFP4), so that a file holding them is measured correctly and can
 *     then be refused by name;
 *   - traits: the types slm computes with, with their kernels (quants*.c).
 * The tables are const: the scalar reference never changes at run time;
 * dispatch.c copies the traits and swaps in SIMD function pointers
 * (slm_type_traits_get is defined there).
 */
#include "kernels/types.h"

#include "kernels/quants.h"
#include "slm/slm.h"
#include "util/alloc.h"

static const char *const type_names[SLM_TYPE_COUNT] = {
    [0] = "f32", [1] = "f16", [2] = "q4_0", [3] = "q4_1",
    [4] = "q4_2", [5] = "q4_3",                           /* removed from ggml */
    [6] = "q5_0", [7] = "q5_1", [8] = "q8_0", [9] = "q8_1",
    [10] = "q2_K", [11] = "q3_K", [12] = "q4_K", [13] = "q5_K",
    [14] = "q6_K", [15] = "q8_K",
    [16] = "iq2_xxs", [17] = "iq2_xs", [18] = "iq3_xxs", [19] = "iq1_s",
    [20] = "iq4_nl", [21] = "iq3_s", [22] = "iq2_s", [23] = "iq4_xs",
    [24] = "i8", [25] = "i16", [26] = "i32", [27] = "i64", [28] = "f64",
    [29] = "iq1_m", [30] = "bf16",
    [31] = "q4_0_4_4", [32] = "q4_0_4_8", [33] = "q4_0_8_8", /* removed */
    [34] = "tq1_0", [35] = "tq2_0",
    [36] = "iq4_nl_4_4", [37] = "iq4_nl_4_8", [38] = "iq4_nl_8_8", /* removed */
    [39] = "mxfp4",
};

typedef struct layout {
    int64_t blck_size;   /* elements per block; 0: no fixed layout          */
    size_t type_size;    /* bytes per block                                 */
} layout;

/* Sizes of the types without kernels follow ggml-common.h's block structs
 * (QK_K = 256): e.g. iq2_xxs = fp16 d + 32 uint16 = 66 bytes. */
static const layout layouts[SLM_TYPE_COUNT] = {
    [SLM_TYPE_F32] = { 1, 4 },
    [SLM_TYPE_F16] = { 1, 2 },
    [SLM_TYPE_Q4_0] = { QK4_0, sizeof(block_q4_0) },
    [SLM_TYPE_Q4_1] = { QK4_1, sizeof(block_q4_1) },
    [SLM_TYPE_Q5_0] = { QK5_0, sizeof(block_q5_0) },
    [SLM_TYPE_Q5_1] = { QK5_1, sizeof(block_q5_1) },
    [SLM_TYPE_Q8_0] = { QK8_0, sizeof(block_q8_0) },
    [SLM_TYPE_Q8_1] = { QK8_1, sizeof(block_q8_1) },
    [SLM_TYPE_Q2_K] = { QK_K, sizeof(block_q2_K) },
    [SLM_TYPE_Q3_K] = { QK_K, sizeof(block_q3_K) },
    [SLM_TYPE_Q4_K] = { QK_K, sizeof(block_q4_K) },
    [SLM_TYPE_Q5_K] = { QK_K, sizeof(block_q5_K) },
    [SLM_TYPE_Q6_K] = { QK_K, sizeof(block_q6_K) },
    [SLM_TYPE_Q8_K] = { QK_K, sizeof(block_q8_K) },
    [16] = { QK_K, 2 + QK_K / 8 * 2 },                 /* iq2_xxs:  66 */
    [17] = { QK_K, 2 + QK_K / 8 * 2 + QK_K / 32 },     /* iq2_xs:   74 */
    [18] = { QK_K, 2 + 3 * (QK_K / 8) },               /* iq3_xxs:  98 */
    [19] = { QK_K, 2 + QK_K / 8 + QK_K / 16 },         /* iq1_s:    50 */
    [20] = { 32, 2 + 32 / 2 },                         /* iq4_nl:   18 */
    [21] = { QK_K, 2 + 13 * (QK_K / 32) + QK_K / 64 }, /* iq3_s:   110 */
    [22] = { QK_K, 2 + QK_K / 4 + QK_K / 16 },         /* iq2_s:    82 */
    [23] = { QK_K, 2 + 2 + QK_K / 64 + QK_K / 2 },     /* iq4_xs:  136 */
    [24] = { 1, 1 },                                   /* i8           */
    [25] = { 1, 2 },                                   /* i16          */
    [26] = { 1, 4 },                                   /* i32          */
    [27] = { 1, 8 },                                   /* i64          */
    [28] = { 1, 8 },                                   /* f64          */
    [29] = { QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32 }, /* iq1_m:    56 */
    [SLM_TYPE_BF16] = { 1, 2 },
    [34] = { QK_K, 2 + QK_K / 64 + (QK_K - 4 * QK_K / 64) / 5 }, /* tq1_0: 54 */
    [35] = { QK_K, 2 + QK_K / 4 },                     /* tq2_0:    66 */
    [39] = { 32, 1 + 32 / 2 },                         /* mxfp4:    17 */
};

#define TRAITS(id, t, blck, tsize, quant, vdt)                              \
    [id] = { .name = #t, .blck_size = (blck), .type_size = (tsize),       \
             .is_quantized = (quant), .to_float = slm_##t##_to_float,       \
             .from_float = slm_##t##_from_float, .vec_dot_type = (vdt),     \
             .vec_dot = slm_##t##_vec_dot }

static const slm_type_traits traits[SLM_TYPE_BF16 + 1] = {
    TRAITS(SLM_TYPE_F32, f32, 1, 4, false, SLM_TYPE_F32),
    TRAITS(SLM_TYPE_F16, f16, 1, 2, false, SLM_TYPE_F32),
    TRAITS(SLM_TYPE_Q4_0, q4_0, QK4_0, sizeof(block_q4_0), true, SLM_TYPE_Q8_0),
    TRAITS(SLM_TYPE_Q4_1, q4_1, QK4_1, sizeof(block_q4_1), true, SLM_TYPE_Q8_1),
    TRAITS(SLM_TYPE_Q5_0, q5_0, QK5_0, sizeof(block_q5_0), true, SLM_TYPE_Q8_0),
    TRAITS(SLM_TYPE_Q5_1, q5_1, QK5_1, sizeof(block_q5_1), true, SLM_TYPE_Q8_1),
    TRAITS(SLM_TYPE_Q8_0, q8_0, QK8_0, sizeof(block_q8_0), true, SLM_TYPE_Q8_0),
    TRAITS(SLM_TYPE_Q8_1, q8_1, QK8_1, sizeof(block_q8_1), true, SLM_TYPE_Q8_1),
    TRAITS(SLM_TYPE_Q2_K, q2_K, QK_K, sizeof(block_q2_K), true, SLM_TYPE_Q8_K),
    TRAITS(SLM_TYPE_Q3_K, q3_K, QK_K, sizeof(block_q3_K), true, SLM_TYPE_Q8_K),
    TRAITS(SLM_TYPE_Q4_K, q4_K, QK_K, sizeof(block_q4_K), true, SLM_TYPE_Q8_K),
    TRAITS(SLM_TYPE_Q5_K, q5_K, QK_K, sizeof(block_q5_K), true, SLM_TYPE_Q8_K),
    TRAITS(SLM_TYPE_Q6_K, q6_K, QK_K, sizeof(block_q6_K), true, SLM_TYPE_Q8_K),
    TRAITS(SLM_TYPE_Q8_K, q8_K, QK_K, sizeof(block_q8_K), true, SLM_TYPE_Q8_K),
    TRAITS(SLM_TYPE_BF16, bf16, 1, 2, false, SLM_TYPE_F32),
};

const char *slm_type_name(int type) {
    if (type < 0 || type >= SLM_TYPE_COUNT || !type_names[type]) return "unknown";
    return type_names[type];
}

const slm_type_traits *slm_type_traits_ref(int32_t type) {
    if (type < 0 || type > SLM_TYPE_BF16 || !traits[type].to_float) return NULL;
    return &traits[type];
}

bool slm_type_known(int32_t type) {
    return type >= 0 && type < SLM_TYPE_COUNT && layouts[type].blck_size > 0;
}

int64_t slm_type_blck_size(int32_t type) {
    return slm_type_known(type) ? layouts[type].blck_size : 0;
}

size_t slm_type_size(int32_t type) {
    return slm_type_known(type) ? layouts[type].type_size : 0;
}

size_t slm_row_size(int32_t type, int64_t n) {
    if (!slm_type_known(type) || n < 0 || n % layouts[type].blck_size != 0) return 0;
    size_t bytes;
    if (!slm_mul_ok((size_t)(n / layouts[type].blck_size), layouts[type].type_size, &bytes)) return 0;
    return bytes;
}
