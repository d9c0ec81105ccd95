/*
 * test_kernels.c — the tensor-type module: the type table (names, block and
 * row sizes, including types slm only measures), the block structs, the
 * reference quantizers (quantize -> dequantize error on Gaussian data, per
 * type, against bounds about 1.3x what they measure), exact dequantization
 * of blocks built by hand from the format description, the dot products
 * (against float dots of the dequantized values, with tolerances derived
 * from the formats), and the fp16/bf16 conversions (exhaustive over all
 * 65536 halves, and against a nearest-value oracle for rounding).
 *
 * The hand-built blocks are packed here element by element from the layout
 * description (ggml-common.h), independently of how src/kernels unpacks
 * them sub-block by sub-block.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/types.h"
#include "slm/slm.h"
#include "util/alloc.h"
#include "util/fp16.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s * 0x9E3779B97F4A7C15ULL + 1; }
static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double rng_unif(void) { return (double)(rng_u64() >> 11) * 0x1.0p-53; }
static float rng_gauss(void) {
    double u = rng_unif(), v = rng_unif();
    if (u < 1e-300) u = 1e-300;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void *xalloc(size_t n) {
    void *p = slm_malloc(n ? n : 1);
    cr_assert(p != NULL, "slm_malloc(%zu) failed", n);
    return p;
}

/* The 15 types with kernels. */
static const int32_t SUPPORTED[] = {
    SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_BF16, SLM_TYPE_Q4_0, SLM_TYPE_Q4_1,
    SLM_TYPE_Q5_0, SLM_TYPE_Q5_1, SLM_TYPE_Q8_0, SLM_TYPE_Q8_1, SLM_TYPE_Q2_K,
    SLM_TYPE_Q3_K, SLM_TYPE_Q4_K, SLM_TYPE_Q5_K, SLM_TYPE_Q6_K, SLM_TYPE_Q8_K,
};
#define N_SUPPORTED ((int)(sizeof SUPPORTED / sizeof SUPPORTED[0]))

static const slm_type_traits *traits(int32_t type) {
    const slm_type_traits *tr = slm_type_traits_get(type);
    cr_assert(tr != NULL, "no traits for type %d", type);
    return tr;
}

/* ---- the type table ------------------------------------------------------ */

/* Every id below SLM_TYPE_COUNT, with ggml's name and layout (blck 0 where
 * ggml has no layout for the id: removed types). Sizes are ggml-common.h's
 * block structs with QK_K = 256. */
static const struct { int id; const char *name; int64_t blck; size_t size; } TABLE[] = {
    { 0, "f32", 1, 4 }, { 1, "f16", 1, 2 }, { 2, "q4_0", 32, 18 }, { 3, "q4_1", 32, 20 },
    { 4, "q4_2", 0, 0 }, { 5, "q4_3", 0, 0 }, { 6, "q5_0", 32, 22 }, { 7, "q5_1", 32, 24 },
    { 8, "q8_0", 32, 34 }, { 9, "q8_1", 32, 36 }, { 10, "q2_K", 256, 84 },
    { 11, "q3_K", 256, 110 }, { 12, "q4_K", 256, 144 }, { 13, "q5_K", 256, 176 },
    { 14, "q6_K", 256, 210 }, { 15, "q8_K", 256, 292 }, { 16, "iq2_xxs", 256, 66 },
    { 17, "iq2_xs", 256, 74 }, { 18, "iq3_xxs", 256, 98 }, { 19, "iq1_s", 256, 50 },
    { 20, "iq4_nl", 32, 18 }, { 21, "iq3_s", 256, 110 }, { 22, "iq2_s", 256, 82 },
    { 23, "iq4_xs", 256, 136 }, { 24, "i8", 1, 1 }, { 25, "i16", 1, 2 }, { 26, "i32", 1, 4 },
    { 27, "i64", 1, 8 }, { 28, "f64", 1, 8 }, { 29, "iq1_m", 256, 56 }, { 30, "bf16", 1, 2 },
    { 31, "q4_0_4_4", 0, 0 }, { 32, "q4_0_4_8", 0, 0 }, { 33, "q4_0_8_8", 0, 0 },
    { 34, "tq1_0", 256, 54 }, { 35, "tq2_0", 256, 66 }, { 36, "iq4_nl_4_4", 0, 0 },
    { 37, "iq4_nl_4_8", 0, 0 }, { 38, "iq4_nl_8_8", 0, 0 }, { 39, "mxfp4", 32, 17 },
};

Test(types, names_and_sizes_of_every_id) {
    cr_assert_eq(sizeof TABLE / sizeof TABLE[0], (size_t)SLM_TYPE_COUNT);
    for (int k = 0; k < SLM_TYPE_COUNT; k++) {
        int id = TABLE[k].id;
        cr_assert_eq(id, k);
        cr_assert_str_eq(slm_type_name(id), TABLE[k].name, "name of type %d", id);
        cr_assert_eq(slm_type_known(id), TABLE[k].blck > 0, "known(%d) [%s]", id, TABLE[k].name);
        cr_assert_eq(slm_type_blck_size(id), TABLE[k].blck, "blck_size(%s): %lld, want %lld",
                     TABLE[k].name, (long long)slm_type_blck_size(id), (long long)TABLE[k].blck);
        cr_assert_eq(slm_type_size(id), TABLE[k].size, "type_size(%s): %zu, want %zu",
                     TABLE[k].name, slm_type_size(id), TABLE[k].size);
    }
}

Test(types, a_few_names) {
    cr_assert_str_eq(slm_type_name(0), "f32");
    cr_assert_str_eq(slm_type_name(12), "q4_K");
    cr_assert_str_eq(slm_type_name(16), "iq2_xxs");
    cr_assert_str_eq(slm_type_name(30), "bf16");
    cr_assert_str_eq(slm_type_name(39), "mxfp4");
    cr_assert_str_eq(slm_type_name(-1), "unknown");
    cr_assert_str_eq(slm_type_name(40), "unknown");
    cr_assert_str_eq(slm_type_name(1000), "unknown");
}

Test(types, unknown_ids_have_no_size) {
    const int ids[] = { -1, 4, 5, 31, 33, 36, 38, 40, 41, 255, 1 << 30 };
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        cr_assert(!slm_type_known(ids[k]), "type %d should be unknown", ids[k]);
        cr_assert_eq(slm_type_blck_size(ids[k]), 0);
        cr_assert_eq(slm_type_size(ids[k]), 0);
        cr_assert_eq(slm_row_size(ids[k], 256), 0);
        cr_assert_null(slm_type_traits_get(ids[k]), "traits for type %d", ids[k]);
    }
}

Test(types, row_size) {
    cr_assert_eq(slm_row_size(SLM_TYPE_F32, 7), 28);
    cr_assert_eq(slm_row_size(SLM_TYPE_F16, 0), 0);
    cr_assert_eq(slm_row_size(SLM_TYPE_Q4_0, 64), 36);
    cr_assert_eq(slm_row_size(SLM_TYPE_Q4_0, 33), 0, "not a multiple of the block");
    cr_assert_eq(slm_row_size(SLM_TYPE_Q4_0, -32), 0, "negative");
    cr_assert_eq(slm_row_size(SLM_TYPE_Q6_K, 4096), 16 * 210);
    cr_assert_eq(slm_row_size(SLM_TYPE_Q4_K, 128), 0);
    cr_assert_eq(slm_row_size(16, 512), 2 * 66, "iq2_xxs is measured");
    cr_assert_eq(slm_row_size(34, 256), 54, "tq1_0 is measured");
    cr_assert_eq(slm_row_size(39, 64), 34, "mxfp4 is measured");
    cr_assert_eq(slm_row_size(28, 3), 24, "f64 is measured");
    cr_assert_eq(slm_row_size(SLM_TYPE_F32, INT64_MAX), 0, "overflow");
    cr_assert_eq(slm_row_size(27, INT64_MAX / 2), 0, "i64 overflow");
}

Test(types, traits_of_supported_types) {
    static const struct { int32_t type, vdt; bool quant; } want[] = {
        { SLM_TYPE_F32, SLM_TYPE_F32, false }, { SLM_TYPE_F16, SLM_TYPE_F32, false },
        { SLM_TYPE_BF16, SLM_TYPE_F32, false }, { SLM_TYPE_Q4_0, SLM_TYPE_Q8_0, true },
        { SLM_TYPE_Q4_1, SLM_TYPE_Q8_1, true }, { SLM_TYPE_Q5_0, SLM_TYPE_Q8_0, true },
        { SLM_TYPE_Q5_1, SLM_TYPE_Q8_1, true }, { SLM_TYPE_Q8_0, SLM_TYPE_Q8_0, true },
        { SLM_TYPE_Q8_1, SLM_TYPE_Q8_1, true }, { SLM_TYPE_Q2_K, SLM_TYPE_Q8_K, true },
        { SLM_TYPE_Q3_K, SLM_TYPE_Q8_K, true }, { SLM_TYPE_Q4_K, SLM_TYPE_Q8_K, true },
        { SLM_TYPE_Q5_K, SLM_TYPE_Q8_K, true }, { SLM_TYPE_Q6_K, SLM_TYPE_Q8_K, true },
        { SLM_TYPE_Q8_K, SLM_TYPE_Q8_K, true },
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        const slm_type_traits *tr = traits(want[k].type);
        cr_assert_str_eq(tr->name, slm_type_name(want[k].type));
        cr_assert_eq(tr->blck_size, slm_type_blck_size(want[k].type), "%s blck", tr->name);
        cr_assert_eq(tr->type_size, slm_type_size(want[k].type), "%s size", tr->name);
        cr_assert_eq(tr->is_quantized, want[k].quant, "%s is_quantized", tr->name);
        cr_assert_eq(tr->vec_dot_type, want[k].vdt, "%s vec_dot_type %d, want %d", tr->name,
                     tr->vec_dot_type, want[k].vdt);
        cr_assert(tr->to_float && tr->from_float && tr->vec_dot, "%s kernels", tr->name);
    }
    for (int id = 16; id <= 29; id++) cr_assert_null(slm_type_traits_get(id), "%s", slm_type_name(id));
    cr_assert_null(slm_type_traits_get(34));
    cr_assert_null(slm_type_traits_get(39));
}

Test(types, block_struct_sizes) {
    cr_assert_eq(sizeof(block_q4_0), 18);
    cr_assert_eq(sizeof(block_q4_1), 20);
    cr_assert_eq(sizeof(block_q5_0), 22);
    cr_assert_eq(sizeof(block_q5_1), 24);
    cr_assert_eq(sizeof(block_q8_0), 34);
    cr_assert_eq(sizeof(block_q8_1), 36);
    cr_assert_eq(sizeof(block_q2_K), 84);
    cr_assert_eq(sizeof(block_q3_K), 110);
    cr_assert_eq(sizeof(block_q4_K), 144);
    cr_assert_eq(sizeof(block_q5_K), 176);
    cr_assert_eq(sizeof(block_q6_K), 210);
    cr_assert_eq(sizeof(block_q8_K), 292);
    /* field offsets that files depend on */
    cr_assert_eq(offsetof(block_q2_K, d), 80);
    cr_assert_eq(offsetof(block_q3_K, d), 108);
    cr_assert_eq(offsetof(block_q4_K, qs), 16);
    cr_assert_eq(offsetof(block_q5_K, qs), 48);
    cr_assert_eq(offsetof(block_q6_K, scales), 192);
    cr_assert_eq(offsetof(block_q8_K, bsums), 260);
}

/* ---- quantize -> dequantize error ---------------------------------------- */

/* RMS(x - dequant(quant(x))) / RMS(x) over n Gaussian values. */
static double roundtrip_error(int32_t type, int64_t n, uint64_t seed) {
    const slm_type_traits *tr = traits(type);
    float *x = xalloc((size_t)n * sizeof *x), *y = xalloc((size_t)n * sizeof *y);
    void *q = xalloc(slm_row_size(type, n));
    rng_seed(seed);
    for (int64_t i = 0; i < n; i++) x[i] = rng_gauss();
    tr->from_float(x, q, n);
    tr->to_float(q, y, n);
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; i++) {
        se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        sx += (double)x[i] * x[i];
    }
    slm_free(x);
    slm_free(y);
    slm_free(q);
    return sqrt(se / sx);
}

/* Measured RMS error relative to RMS(x) on 65536 Gaussian values (the
 * third length below): f16 2.1e-4, bf16 1.68e-3, q8_0 0.00536, q8_1
 * 0.00536, q8_K 0.00695, q6_K 0.01645, q5_K 0.03435, q5_1 0.03781, q5_0
 * 0.04271, q4_K 0.06969, q4_1 0.07831, q4_0 0.08617, q3_K 0.14379, q2_K
 * 0.25867. (ggml's reference quantizers give the same for the 32-element
 * formats, and 0.0178, 0.0361, 0.0715, 0.151, 0.297 for q6_K..q2_K.) The
 * bounds for 8 blocks and for 65536 values are 1.3x these; a single block
 * is one draw of a spread-out statistic, so its bound is 1.6x. */
static void check_roundtrip(int32_t type, double measured) {
    const slm_type_traits *tr = traits(type);
    const int64_t blck = tr->blck_size == 1 ? 32 : tr->blck_size;
    const int64_t lens[] = { blck, 8 * blck, 65536 };
    for (int k = 0; k < 3; k++) {
        double bound = measured * (k == 0 ? 1.6 : 1.3);
        double err = roundtrip_error(type, lens[k], 3 + (uint64_t)k);
        cr_log_info("%s n=%lld: rel rms error %.5f (bound %.5f)", tr->name, (long long)lens[k], err, bound);
        cr_expect(err < bound, "%s n=%lld: rel rms error %.5f >= bound %.5f", tr->name,
                  (long long)lens[k], err, bound);
    }
}

Test(roundtrip, f32) { cr_assert_eq(roundtrip_error(SLM_TYPE_F32, 1000, 1), 0.0); }
Test(roundtrip, f16) { check_roundtrip(SLM_TYPE_F16, 2.1e-4); }
Test(roundtrip, bf16) { check_roundtrip(SLM_TYPE_BF16, 1.68e-3); }
Test(roundtrip, q8_0) { check_roundtrip(SLM_TYPE_Q8_0, 0.00536); }
Test(roundtrip, q8_1) { check_roundtrip(SLM_TYPE_Q8_1, 0.00536); }
Test(roundtrip, q8_K) { check_roundtrip(SLM_TYPE_Q8_K, 0.00695); }
Test(roundtrip, q6_K) { check_roundtrip(SLM_TYPE_Q6_K, 0.01645); }
Test(roundtrip, q5_K) { check_roundtrip(SLM_TYPE_Q5_K, 0.03435); }
Test(roundtrip, q5_1) { check_roundtrip(SLM_TYPE_Q5_1, 0.03781); }
Test(roundtrip, q5_0) { check_roundtrip(SLM_TYPE_Q5_0, 0.04271); }
Test(roundtrip, q4_K) { check_roundtrip(SLM_TYPE_Q4_K, 0.06969); }
Test(roundtrip, q4_1) { check_roundtrip(SLM_TYPE_Q4_1, 0.07831); }
Test(roundtrip, q4_0) { check_roundtrip(SLM_TYPE_Q4_0, 0.08617); }
Test(roundtrip, q3_K) { check_roundtrip(SLM_TYPE_Q3_K, 0.14379); }
Test(roundtrip, q2_K) { check_roundtrip(SLM_TYPE_Q2_K, 0.25867); }

/* Zeros stay exactly zero; a constant row comes back close; huge and tiny
 * magnitudes keep their relative error (scales are relative). */
Test(roundtrip, zeros_constants_and_scale) {
    const int64_t n = 512;
    float *x = xalloc(n * sizeof *x), *y = xalloc(n * sizeof *y);
    void *q = xalloc((size_t)n * 4);
    for (int k = 0; k < N_SUPPORTED; k++) {
        const slm_type_traits *tr = traits(SUPPORTED[k]);
        memset(x, 0, n * sizeof *x);
        memset(q, 0xA5, (size_t)n * 4);
        tr->from_float(x, q, n);
        tr->to_float(q, y, n);
        for (int64_t i = 0; i < n; i++) cr_assert(y[i] == 0.0f, "%s zeros: y[%lld] = %g", tr->name, (long long)i, y[i]);

        for (int64_t i = 0; i < n; i++) x[i] = -0.75f;
        tr->from_float(x, q, n);
        tr->to_float(q, y, n);
        for (int64_t i = 0; i < n; i++)
            cr_assert(fabsf(y[i] + 0.75f) <= 0.01f, "%s constant: y[%lld] = %g, want -0.75", tr->name, (long long)i, y[i]);

        /* the same Gaussian row at scales 1e-3 and 1e3 */
        for (int s = 0; s < 2; s++) {
            float scale = s ? 1e3f : 1e-3f;
            rng_seed(11);
            for (int64_t i = 0; i < n; i++) x[i] = scale * rng_gauss();
            tr->from_float(x, q, n);
            tr->to_float(q, y, n);
            double se = 0, sx = 0;
            for (int64_t i = 0; i < n; i++) {
                se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                sx += (double)x[i] * x[i];
            }
            cr_assert(sqrt(se / sx) < 0.35, "%s at scale %g: rel error %g", tr->name, scale, sqrt(se / sx));
        }
    }
    slm_free(x);
    slm_free(y);
    slm_free(q);
}

/* NaN, infinities and extreme magnitudes in the input must not crash or
 * hit undefined behaviour (the sanitizer build checks the float-to-int
 * conversions); blocks of ordinary values next to them stay accurate. */
Test(roundtrip, non_finite_input_is_contained) {
    const int64_t n = 1024;   /* four super-blocks; the bad values are all in the first */
    const float bad[] = { NAN, INFINITY, -INFINITY, 3e38f, -3e38f, 1e-42f };
    float *x = xalloc(n * sizeof *x), *y = xalloc(n * sizeof *y);
    void *q = xalloc((size_t)n * 4);
    for (int k = 0; k < N_SUPPORTED; k++) {
        const slm_type_traits *tr = traits(SUPPORTED[k]);
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            rng_seed(21);
            for (int64_t i = 0; i < n; i++) x[i] = rng_gauss();
            x[3] = bad[b];
            tr->from_float(x, q, n);
            tr->to_float(q, y, n);
            for (int64_t i = 256; i < n; i++)
                cr_assert(fabsf(y[i] - x[i]) < 1.5f, "%s with %g in block 0: y[%lld] = %g, x = %g",
                          tr->name, bad[b], (long long)i, y[i], x[i]);
        }
    }
    slm_free(x);
    slm_free(y);
    slm_free(q);
}

/* ---- exact dequantization of hand-built blocks --------------------------- */

#define H_1_0 0x3c00   /* fp16 1.0   */
#define H_0_5 0x3800   /* fp16 0.5   */
#define H_0_25 0x3400  /* fp16 0.25  */
#define H_0_125 0x3000 /* fp16 0.125 */
#define H_M2_0 0xc000  /* fp16 -2.0  */

/* Dequantizes one block with the library and compares with want[]; all
 * values involved are small integers times powers of two, so exact. */
static void expect_dequant(int32_t type, const void *block, const double *want, int n) {
    float y[256];
    traits(type)->to_float(block, y, n);
    for (int i = 0; i < n; i++)
        cr_assert(y[i] == (float)want[i], "%s element %d: got %.9g, want %.9g", slm_type_name(type), i, y[i], want[i]);
}

Test(dequant, q4_0_known_block) {
    /* d = -2.0; element i < 16 is the low nibble of byte i, element 16+i the
     * high nibble; value d*(q-8). */
    uint8_t bytes[18] = { 0x00, 0xc0 };  /* little-endian fp16 -2.0 */
    double want[32];
    for (int i = 0; i < 16; i++) bytes[2 + i] = (uint8_t)(i | ((15 - i) << 4));
    for (int i = 0; i < 16; i++) {
        want[i] = -2.0 * (i - 8);
        want[16 + i] = -2.0 * ((15 - i) - 8);
    }
    cr_assert_eq(want[0], 16.0);
    cr_assert_eq(want[16], -14.0);
    block_q4_0 b;
    memcpy(&b, bytes, sizeof b);
    cr_assert_eq(b.d, H_M2_0);
    expect_dequant(SLM_TYPE_Q4_0, &b, want, 32);
}

Test(dequant, q8_0_known_block) {
    uint8_t bytes[34] = { 0x00, 0x34 };  /* fp16 0.25 */
    double want[32];
    for (int i = 0; i < 32; i++) {
        int v = i * 8 - 128;             /* -128 .. 120 */
        bytes[2 + i] = (uint8_t)(int8_t)v;
        want[i] = 0.25 * v;
    }
    block_q8_0 b;
    memcpy(&b, bytes, sizeof b);
    expect_dequant(SLM_TYPE_Q8_0, &b, want, 32);
}

Test(dequant, q4_1_q5_0_q5_1_known_blocks) {
    /* q5_0: element e has low 4 bits in nibble (e<16 ? low of qs[e] : high
     * of qs[e-16]) and its 5th bit at bit e of the 32-bit qh. */
    block_q5_0 b0;
    block_q5_1 b1;
    block_q4_1 b4;
    memset(&b0, 0, sizeof b0);
    memset(&b1, 0, sizeof b1);
    memset(&b4, 0, sizeof b4);
    b0.d = H_0_5;
    b1.d = H_0_25;
    b1.m = H_M2_0;
    b4.d = H_0_125;
    b4.m = H_1_0;
    double w0[32], w1[32], w4[32];
    for (int e = 0; e < 32; e++) {
        int q = (e * 11 + 5) % 32;
        int nib = e < 16 ? 0 : 4, byte = e % 16;
        b0.qs[byte] |= (uint8_t)((q & 15) << nib);
        b1.qs[byte] |= (uint8_t)((q & 15) << nib);
        b0.qh[e / 8] |= (uint8_t)((q >> 4) << (e % 8));
        b1.qh[e / 8] |= (uint8_t)((q >> 4) << (e % 8));
        b4.qs[byte] |= (uint8_t)((q & 15) << nib);
        w0[e] = 0.5 * (q - 16);
        w1[e] = 0.25 * q - 2.0;
        w4[e] = 0.125 * (q & 15) + 1.0;
    }
    expect_dequant(SLM_TYPE_Q5_0, &b0, w0, 32);
    expect_dequant(SLM_TYPE_Q5_1, &b1, w1, 32);
    expect_dequant(SLM_TYPE_Q4_1, &b4, w4, 32);
}

/* Q4_K/Q5_K 6-bit scale and min of sub-block j, packed as in ggml-common:
 * j < 4: scale in bits 0-5 of byte j, min in bits 0-5 of byte j+4;
 * j >= 4: low 4 bits of scale/min in the low/high nibble of byte j+4, top
 * 2 bits of the scale in bits 6-7 of byte j-4, of the min in byte j. */
static void put_k4_scales(uint8_t s[12], const int sc[8], const int m[8]) {
    memset(s, 0, 12);
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

static const int K4_SC[8] = { 1, 2, 63, 17, 33, 48, 5, 60 };
static const int K4_M[8] = { 0, 63, 1, 40, 16, 7, 31, 50 };

Test(dequant, q4_K_known_block) {
    block_q4_K b;
    memset(&b, 0, sizeof b);
    b.d = H_0_5;
    b.dmin = H_0_25;
    put_k4_scales(b.scales, K4_SC, K4_M);
    double want[256];
    for (int e = 0; e < 256; e++) {
        int j = e / 32, q = (e * 7 + 3) % 16;
        /* sub-blocks 2c and 2c+1 share bytes 32c..32c+31: low, high nibble */
        b.qs[32 * (j / 2) + e % 32] |= (uint8_t)(q << (4 * (j % 2)));
        want[e] = 0.5 * K4_SC[j] * q - 0.25 * K4_M[j];
    }
    expect_dequant(SLM_TYPE_Q4_K, &b, want, 256);
}

Test(dequant, q5_K_known_block) {
    block_q5_K b;
    memset(&b, 0, sizeof b);
    b.d = H_0_125;
    b.dmin = H_0_5;
    put_k4_scales(b.scales, K4_SC, K4_M);
    double want[256];
    for (int e = 0; e < 256; e++) {
        int j = e / 32, l = e % 32, q = (e * 13 + 1) % 32;
        b.qs[32 * (j / 2) + l] |= (uint8_t)((q & 15) << (4 * (j % 2)));
        b.qh[l] |= (uint8_t)((q >> 4) << j);       /* 5th bit: bit j of qh[l] */
        want[e] = 0.125 * K4_SC[j] * q - 0.5 * K4_M[j];
    }
    expect_dequant(SLM_TYPE_Q5_K, &b, want, 256);
}

Test(dequant, q6_K_known_block) {
    /* Element e: half h = e/128, r = e%128, quarter k = r/32, l = r%32. The
     * low 4 bits are in ql[64h + 32*(k%2) + l] (low nibble for k < 2, high
     * for k >= 2), the top 2 bits in bits 2k..2k+1 of qh[32h + l]; the
     * quant is that 6-bit value minus 32; the int8 scale is scales[e/16]. */
    static const int8_t sc[16] = { -128, 127, 1, -1, 2, 64, -64, 33, 0, 5, -7, 100, -100, 3, 50, -3 };
    block_q6_K b;
    memset(&b, 0, sizeof b);
    b.d = H_0_125;
    memcpy(b.scales, sc, sizeof sc);
    double want[256];
    for (int e = 0; e < 256; e++) {
        int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
        int q = (e * 13 + 7) % 64 - 32;
        int u = q + 32;
        b.ql[64 * h + 32 * (k % 2) + l] |= (uint8_t)((u & 15) << (k < 2 ? 0 : 4));
        b.qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * k));
        want[e] = 0.125 * sc[e / 16] * q;
    }
    expect_dequant(SLM_TYPE_Q6_K, &b, want, 256);
}

Test(dequant, q2_K_known_block) {
    /* Element e: half h, plane k, byte l as in q6_K; 2 bits at bits 2k of
     * qs[32h + l]; scales[e/16] holds the scale (low nibble) and min. */
    block_q2_K b;
    memset(&b, 0, sizeof b);
    b.d = H_0_5;
    b.dmin = H_0_125;
    double want[256];
    for (int j = 0; j < 16; j++) b.scales[j] = (uint8_t)(((j * 5) % 16) | (((15 - j) % 16) << 4));
    for (int e = 0; e < 256; e++) {
        int h = e / 128, r = e % 128, k = r / 32, l = r % 32, q = (e * 3 + e / 7) % 4;
        b.qs[32 * h + l] |= (uint8_t)(q << (2 * k));
        int j = e / 16;
        want[e] = 0.5 * ((j * 5) % 16) * q - 0.125 * (15 - j);
    }
    expect_dequant(SLM_TYPE_Q2_K, &b, want, 256);
}

Test(dequant, q3_K_known_block) {
    /* As q2_K for the low 2 bits; the 3rd bit of element (h, k, l) is bit
     * 4h+k of hmask[l], and a clear bit subtracts 4. Scale j (6 bits, +32):
     * low 4 bits in the low nibble of byte j (j < 8) or the high nibble of
     * byte j-8, top 2 bits at bits 2*(j/4) of byte 8 + j%4. */
    static const int sc[16] = { -32, 31, 0, 1, -1, 17, -17, 5, 9, -9, 30, -30, 12, -12, 2, -2 };
    block_q3_K b;
    memset(&b, 0, sizeof b);
    b.d = H_0_25;
    for (int j = 0; j < 16; j++) {
        int v = sc[j] + 32;
        b.scales[j % 8] |= (uint8_t)((v & 15) << (j < 8 ? 0 : 4));
        b.scales[8 + j % 4] |= (uint8_t)((v >> 4) << (2 * (j / 4)));
    }
    double want[256];
    for (int e = 0; e < 256; e++) {
        int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
        int q = (e * 5 + 3) % 8 - 4;          /* -4 .. 3 */
        int u = q + 4;
        b.qs[32 * h + l] |= (uint8_t)((u & 3) << (2 * k));
        b.hmask[l] |= (uint8_t)((u >> 2) << (4 * h + k));
        want[e] = 0.25 * sc[e / 16] * q;
    }
    expect_dequant(SLM_TYPE_Q3_K, &b, want, 256);
}

Test(dequant, q8_K_known_block) {
    block_q8_K b;
    memset(&b, 0, sizeof b);
    b.d = 0.0625f;
    double want[256];
    for (int e = 0; e < 256; e++) {
        b.qs[e] = (int8_t)(e - 128);
        want[e] = 0.0625 * (e - 128);
    }
    expect_dequant(SLM_TYPE_Q8_K, &b, want, 256);
}

/* Quantizing exactly representable data gives it back exactly. */
Test(dequant, exact_grid_survives_quantization) {
    float x[256], y[256];
    for (int i = 0; i < 32; i++) x[i] = (float)((i * 7) % 16 - 8) * 0.5f;  /* includes -8*0.5 */
    uint8_t q[64];
    traits(SLM_TYPE_Q4_0)->from_float(x, q, 32);
    traits(SLM_TYPE_Q4_0)->to_float(q, y, 32);
    for (int i = 0; i < 32; i++) cr_assert(y[i] == x[i], "q4_0[%d]: %g vs %g", i, y[i], x[i]);
    for (int i = 0; i < 32; i++) x[i] = (float)(i * 8 - 127) * 0.25f;
    traits(SLM_TYPE_Q8_0)->from_float(x, q, 32);
    traits(SLM_TYPE_Q8_0)->to_float(q, y, 32);
    for (int i = 0; i < 32; i++) cr_assert(y[i] == x[i], "q8_0[%d]: %g vs %g", i, y[i], x[i]);
}

/* Q8_K's bsums are the sums of each run of 16 quants. */
Test(dequant, q8_K_bsums) {
    float x[512];
    block_q8_K b[2];
    rng_seed(5);
    for (int i = 0; i < 512; i++) x[i] = rng_gauss();
    traits(SLM_TYPE_Q8_K)->from_float(x, b, 512);
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += b[k].qs[16 * j + l];
            cr_assert_eq(b[k].bsums[j], s, "block %d bsums[%d]: %d, want %d", k, j, b[k].bsums[j], s);
        }
    }
}


/* ---- dot products -------------------------------------------------------- */

/* Largest |y| in the activation block that holds element i. */
static double block_amax(const float *y, int64_t i, int64_t blck) {
    int64_t b0 = i / blck * blck;
    double a = 0;
    for (int64_t k = b0; k < b0 + blck; k++) a = fmax(a, fabs((double)y[k]));
    return a;
}

/* vec_dot(quant(x), quant_vdt(y)) against
 *  (a) the double dot of the two dequantized rows: they differ only by
 *      float rounding, plus, for Q4_1/Q5_1, Q8_1's s = d*sum(q) being a
 *      separately rounded fp16 (the m*s term may move by |m*s| * 2^-10);
 *  (b) the double dot of dequantized x with the float y: additionally the
 *      activation quantization error e_i, at most E_i = amax_block *
 *      (1/254 + 1/2048) per element (half a step plus the fp16 rounding of
 *      d). The e_i behave as independent and roughly uniform, so
 *      sum xd_i*e_i has a standard deviation of about
 *      sqrt(sum xd_i^2 E_i^2 / 3); the tolerance is 6 of those (the seeds
 *      are fixed, so the test is deterministic; measured gaps are ~1).
 */
static void check_vec_dot(int32_t type, int64_t n, uint64_t seed) {
    const slm_type_traits *tr = traits(type), *ty = traits(tr->vec_dot_type);
    float *x = xalloc((size_t)n * sizeof *x), *y = xalloc((size_t)n * sizeof *y);
    float *xd = xalloc((size_t)n * sizeof *xd), *yd = xalloc((size_t)n * sizeof *yd);
    void *qx = xalloc(slm_row_size(type, n)), *qy = xalloc(slm_row_size(tr->vec_dot_type, n));
    rng_seed(seed);
    for (int64_t i = 0; i < n; i++) {
        x[i] = rng_gauss() + 0.5f;   /* an offset, so that the min terms matter */
        y[i] = rng_gauss();
    }
    tr->from_float(x, qx, n);
    tr->to_float(qx, xd, n);
    ty->from_float(y, qy, n);
    ty->to_float(qy, yd, n);
    float s = NAN;
    tr->vec_dot(n, &s, qx, qy);

    double ref_a = 0, mag = 0, ref_b = 0, yerr = 0;
    for (int64_t i = 0; i < n; i++) {
        ref_a += (double)xd[i] * yd[i];
        mag += fabs((double)xd[i] * yd[i]);
        ref_b += (double)xd[i] * y[i];
        if (tr->vec_dot_type != SLM_TYPE_F32)
        {
            double e = block_amax(y, i, ty->blck_size) * (1.0 / 254 + 1.0 / 2048);
            yerr += (double)xd[i] * xd[i] * e * e;
        }
    }
    double s_term = 0;
    if (type == SLM_TYPE_Q4_1 || type == SLM_TYPE_Q5_1) {
        const block_q8_1 *by = qy;
        for (int64_t b = 0; b < n / QK8_1; b++) {
            slm_half m = type == SLM_TYPE_Q4_1 ? ((const block_q4_1 *)qx)[b].m : ((const block_q5_1 *)qx)[b].m;
            s_term += fabs((double)slm_fp16_to_f32(m) * slm_fp16_to_f32(by[b].s));
        }
    }
    /* float sums: one per block for the quantized types (float types sum
     * in double), plus the rounding inside blocks and of the result */
    int64_t n_float_adds = tr->is_quantized ? n / tr->blck_size : 0;
    double tol_a = (double)(n_float_adds + 64) * 0x1.0p-23 * mag + s_term * 0x1.0p-9 + 1e-30;
    double tol_b = tol_a + 6.0 * sqrt(yerr / 3.0);
    cr_log_info("%s n=%lld: dot %.6g, dequant dot %.6g (tol %.3g), float dot %.6g (tol %.3g)", tr->name,
                (long long)n, s, ref_a, tol_a, ref_b, tol_b);
    cr_assert(fabs(s - ref_a) <= tol_a, "%s n=%lld: vec_dot %.9g vs dot of dequantized %.9g: diff %.3g > tol %.3g",
              tr->name, (long long)n, s, ref_a, fabs(s - ref_a), tol_a);
    cr_assert(fabs(s - ref_b) <= tol_b, "%s n=%lld: vec_dot %.9g vs float dot %.9g: diff %.3g > tol %.3g",
              tr->name, (long long)n, s, ref_b, fabs(s - ref_b), tol_b);

    /* zeros give exactly zero */
    memset(x, 0, (size_t)n * sizeof *x);
    tr->from_float(x, qx, n);
    tr->vec_dot(n, &s, qx, qy);
    cr_assert(s == 0.0f, "%s: zero row dot = %g", tr->name, s);
    slm_free(x);
    slm_free(y);
    slm_free(xd);
    slm_free(yd);
    slm_free(qx);
    slm_free(qy);
}

Test(vec_dot, every_type_one_and_many_blocks) {
    for (int k = 0; k < N_SUPPORTED; k++) {
        const slm_type_traits *tr = traits(SUPPORTED[k]);
        int64_t blck = tr->blck_size == 1 ? 37 : tr->blck_size;
        check_vec_dot(SUPPORTED[k], blck, 100 + (uint64_t)k);
        check_vec_dot(SUPPORTED[k], 16 * (tr->blck_size == 1 ? 64 : blck), 200 + (uint64_t)k);
    }
}

/* Extreme quants (every quant at an end of its range, scales at their
 * largest) still sum in int without overflow: compare with doubles. */
Test(vec_dot, extreme_blocks) {
    const int64_t n = 1024;
    float *x = xalloc(n * sizeof *x), *y = xalloc(n * sizeof *y), *xd = xalloc(n * sizeof *xd),
          *yd = xalloc(n * sizeof *yd);
    void *qx = xalloc(n * sizeof(float)), *qy = xalloc(n * sizeof(float));  /* >= any row */
    for (int k = 0; k < N_SUPPORTED; k++) {
        const slm_type_traits *tr = traits(SUPPORTED[k]), *ty = traits(tr->vec_dot_type);
        for (int64_t i = 0; i < n; i++) {
            x[i] = (i % 3 == 0) ? -100.0f : 100.0f;
            y[i] = (i % 3 == 0) ? -7.0f : 7.0f;
        }
        tr->from_float(x, qx, n);
        tr->to_float(qx, xd, n);
        ty->from_float(y, qy, n);
        ty->to_float(qy, yd, n);
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; i++) {
            ref += (double)xd[i] * yd[i];
            mag += fabs((double)xd[i] * yd[i]);
        }
        float s;
        tr->vec_dot(n, &s, qx, qy);
        cr_assert(fabs(s - ref) <= 1e-3 * mag, "%s extreme: %.9g vs %.9g", tr->name, s, ref);
    }
    slm_free(x);
    slm_free(y);
    slm_free(xd);
    slm_free(yd);
    slm_free(qx);
    slm_free(qy);
}

/* ---- fp16 and bf16 -------------------------------------------------------- */

/* Value of a finite half, decoded from the IEEE definition. */
static double half_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Nearest half to f, ties to even, found by search over the ordered
 * positive halves (not by bit manipulation). NaN in, 0x7e00 out. */
static uint16_t half_oracle(float f) {
    if (isnan(f)) return 0x7e00;
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7c00;     /* 65504 + half an ulp: ties to inf */
    int lo = 0, hi = 0x7bff;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (half_value((uint16_t)mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    double next = lo == 0x7bff ? 65536.0 : half_value((uint16_t)(lo + 1));
    double mid = (half_value((uint16_t)lo) + next) / 2;
    if (a > mid || (a == mid && (lo & 1))) lo++;
    return (uint16_t)(sign | lo);
}

static double bf16_value(uint16_t h) {
    int e = (h >> 7) & 255, m = h & 127;
    double v = e == 0 ? ldexp(m, -133) : ldexp(128 + m, e - 134);
    return (h & 0x8000) ? -v : v;
}

static uint16_t bf16_oracle(float f) {
    if (isnan(f)) return 0x7fc0;
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= ldexp(255.5, 120)) return sign | 0x7f80;
    int lo = 0, hi = 0x7f7f;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (bf16_value((uint16_t)mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    double next = lo == 0x7f7f ? ldexp(1.0, 128) : bf16_value((uint16_t)(lo + 1));
    double mid = (bf16_value((uint16_t)lo) + next) / 2;
    if (a > mid || (a == mid && (lo & 1))) lo++;
    return (uint16_t)(sign | lo);
}

static bool half_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
static bool bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }

Test(fp16, decode_and_roundtrip_all_halves) {
    for (uint32_t u = 0; u < 65536; u++) {
        uint16_t h = (uint16_t)u;
        float f = slm_fp16_to_f32(h);
        if (half_is_nan(h)) {
            cr_assert(isnan(f), "half %#06x: %g, want NaN", h, f);
            uint16_t back = slm_f32_to_fp16(f);
            cr_assert(half_is_nan(back) && (back & 0x8000) == (h & 0x8000), "half NaN %#06x -> %#06x", h, back);
            continue;
        }
        if ((h & 0x7fff) == 0x7c00) cr_assert(isinf(f) && (signbit(f) != 0) == ((h & 0x8000) != 0), "half %#06x: %g", h, f);
        else cr_assert((double)f == half_value(h), "half %#06x: %.9g, want %.9g", h, f, half_value(h));
        cr_assert_eq(signbit(f) != 0, (h & 0x8000) != 0, "sign of half %#06x", h);
        uint16_t back = slm_f32_to_fp16(f);
        cr_assert_eq(back, h, "half %#06x -> %.9g -> %#06x", h, f, back);
    }
}

static void check_half_rounding(float f) {
    uint16_t got = slm_f32_to_fp16(f), want = half_oracle(f);
    if (isnan(f)) cr_assert(half_is_nan(got), "f32 NaN %#010x -> half %#06x, not NaN", slm_bits_from_f32(f), got);
    else cr_assert_eq(got, want, "f32 %.9g (%#010x) -> half %#06x, want %#06x", f, slm_bits_from_f32(f), got, want);
}

Test(fp16, rounding_matches_nearest_even_oracle) {
    const float edges[] = {
        0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.0f, 65519.996f, 65520.0f, -65520.0f, 65536.0f, 1e10f,
        INFINITY, -INFINITY, NAN, 0x1p-24f, 0x1p-25f, 0x1.000002p-25f, 0x1.fffffep-26f, 0x1.8p-24f,
        0x1.4p-23f, 1023.0f * 0x1p-24f, 1023.5f * 0x1p-24f, 0x1p-14f, 0x1.ffcp-15f, 1.0f + 0x1p-11f,
        1.0f + 0x1.8p-10f, 1e-40f, 0x1p-126f, 3.14159265f, -2.71828183f, 0x1.ffep15f,
    };
    for (size_t k = 0; k < sizeof edges / sizeof edges[0]; k++) check_half_rounding(edges[k]);
    cr_assert_eq(slm_f32_to_fp16(65520.0f), 0x7c00);
    cr_assert_eq(slm_f32_to_fp16(0x1p-25f), 0x0000, "tie at 2^-25 rounds to even (0)");
    cr_assert_eq(slm_f32_to_fp16(0x1.8p-24f), 0x0002, "tie at 1.5*2^-24 rounds to even (2)");
    cr_assert_eq(slm_f32_to_fp16(-0.0f), 0x8000);
    rng_seed(7);
    for (int k = 0; k < 300000; k++) {
        uint32_t bits = (uint32_t)rng_u64();
        if (k % 3 == 1) bits = (bits & 0x807fffffu) | ((uint32_t)(100 + rng_u64() % 44) << 23);
        float f = slm_f32_from_bits(bits);
        if (k % 3 == 2) {   /* an exact midpoint between two adjacent halves */
            uint16_t h = (uint16_t)(rng_u64() % 0x7bff);
            f = (float)((half_value(h) + half_value((uint16_t)(h + 1))) / 2);
            if (rng_u64() & 1) f = -f;
        }
        check_half_rounding(f);
    }
}

Test(bf16, decode_and_roundtrip_all) {
    for (uint32_t u = 0; u < 65536; u++) {
        uint16_t h = (uint16_t)u;
        float f = slm_bf16_to_f32(h);
        if (bf16_is_nan(h)) {
            cr_assert(isnan(f), "bf16 %#06x: %g, want NaN", h, f);
            cr_assert(bf16_is_nan(slm_f32_to_bf16(f)), "bf16 NaN %#06x round trip", h);
            continue;
        }
        if ((h & 0x7fff) == 0x7f80) cr_assert(isinf(f), "bf16 %#06x: %g", h, f);
        else cr_assert((double)f == bf16_value(h), "bf16 %#06x: %.9g, want %.9g", h, f, bf16_value(h));
        cr_assert_eq(slm_f32_to_bf16(f), h, "bf16 %#06x round trip -> %#06x", h, slm_f32_to_bf16(f));
    }
}

Test(bf16, rounding_and_nan) {
    /* NaNs whose payload sits only in the low bits must stay NaN, not
     * become inf (or, from 0x7fffffff, wrap to -0). */
    const uint32_t nans[] = { 0x7f800001u, 0xff800001u, 0x7fffffffu, 0xffffffffu, 0x7fc00000u, 0x7f80ffffu };
    for (size_t k = 0; k < sizeof nans / sizeof nans[0]; k++) {
        uint16_t got = slm_f32_to_bf16(slm_f32_from_bits(nans[k]));
        cr_assert(bf16_is_nan(got), "f32 %#010x -> bf16 %#06x, not NaN", nans[k], got);
        cr_assert_eq(got & 0x8000, (nans[k] >> 16) & 0x8000, "NaN sign of %#010x", nans[k]);
    }
    cr_assert_eq(slm_f32_to_bf16(INFINITY), 0x7f80);
    cr_assert_eq(slm_f32_to_bf16(-INFINITY), 0xff80);
    cr_assert_eq(slm_f32_to_bf16(0x1.ffp127f), 0x7f80, "rounds up to inf");
    cr_assert_eq(slm_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80, "tie to even (down)");
    cr_assert_eq(slm_f32_to_bf16(1.0f + 0x1.8p-7f), 0x3f82, "tie to even (up)");
    rng_seed(9);
    for (int k = 0; k < 300000; k++) {
        uint32_t bits = (uint32_t)rng_u64();
        if (k % 4 == 1) bits &= 0x807fffffu;            /* f32 subnormals */
        if (k % 4 == 2) bits = (bits & 0xffff0000u) | 0x8000u; /* exact ties */
        float f = slm_f32_from_bits(bits);
        uint16_t got = slm_f32_to_bf16(f);
        if (isnan(f)) cr_assert(bf16_is_nan(got), "f32 NaN %#010x -> %#06x", bits, got);
        else cr_assert_eq(got, bf16_oracle(f), "f32 %.9g (%#010x) -> bf16 %#06x, want %#06x", f, bits, got, bf16_oracle(f));
    }
}

/* ---- SIMD kernels against the scalar reference ------------------------- */

/* Every instruction set besides the reference; tests skip the ones this CPU
 * (or this build) lacks, saying so. Each SIMD kernel is compared with the
 * scalar entry of the same type:
 *   - activation quantizers (Q8_0, Q8_1, Q8_K): the same bytes, for random,
 *     tie-making and non-finite inputs;
 *   - vec_dot: within 1e-5 * M of the reference, where M bounds the
 *     magnitude of every partial sum either side forms (float accumulation
 *     order differs; the integer parts are exact):
 *       M = sum_i |yd_i| * (|xd_i| + 2 R_i),
 *     xd, yd the dequantized row and activations and R_i the largest |xd|
 *     in the block of element i (bounding the scale-and-min or offset terms
 *     that the formats subtract);
 *   - vec_dot_tile: every entry within the same bound of the same set's
 *     vec_dot, for ragged tile shapes, and nothing outside the tile
 *     written. */
static const char *const SIMD_ISAS[] = { "avx2", "avx512" };
#define N_SIMD ((int)(sizeof SIMD_ISAS / sizeof SIMD_ISAS[0]))
#define SIMD_REL_TOL 1e-5

static int simd_available(const char **names) {
    int n = 0;
    for (int k = 0; k < N_SIMD; k++)
        if (slm_type_traits_isa(SLM_TYPE_F32, SIMD_ISAS[k])) names[n++] = SIMD_ISAS[k];
    return n;
}

#define REQUIRE_SIMD(names, n)                                                                   \
    const char *names[N_SIMD];                                                                   \
    int n = simd_available(names);                                                               \
    if (n == 0) cr_skip_test("no SIMD instruction set on this CPU or build (kernels: %s)", slm_kernels_isa());

Test(dispatch, isa_and_tables) {
    const char *isa = slm_kernels_isa();
    cr_assert(!strcmp(isa, "scalar") || !strcmp(isa, "avx2") || !strcmp(isa, "avx512-vnni"), "isa %s", isa);
    cr_log_info("kernels: %s", isa);
    const char *all[] = { "scalar", "avx2", "avx512" };
    for (int k = 0; k < N_SUPPORTED; k++) {
        const slm_type_traits *ref = slm_type_traits_ref(SUPPORTED[k]);
        cr_assert_not_null(ref);
        cr_assert_not_null(slm_type_traits_get(SUPPORTED[k]));
        cr_assert_eq(slm_type_traits_isa(SUPPORTED[k], "scalar")->vec_dot, ref->vec_dot);
        for (int i = 0; i < 3; i++) {
            const slm_type_traits *t = slm_type_traits_isa(SUPPORTED[k], all[i]);
            if (!t) continue;
            cr_assert_str_eq(t->name, ref->name);
            cr_assert_eq(t->blck_size, ref->blck_size);
            cr_assert_eq(t->type_size, ref->type_size);
            cr_assert_eq(t->vec_dot_type, ref->vec_dot_type);
            cr_assert_eq(t->to_float, ref->to_float, "%s %s: dequantization is the reference's", all[i], ref->name);
            cr_assert(t->from_float && t->vec_dot, "%s %s kernels", all[i], ref->name);
        }
    }
    cr_assert_null(slm_type_traits_isa(SLM_TYPE_Q4_0, "sse9"));
    cr_assert_null(slm_type_traits_isa(16, "scalar"));
    cr_assert_null(slm_type_traits_ref(16));
}

/* Criterion runs each test in a fresh process, so the dispatcher has not
 * run here yet when the environment is set. */
Test(dispatch, slm_isa_caps_the_choice) {
    setenv("SLM_ISA", "scalar", 1);
    cr_assert_str_eq(slm_kernels_isa(), "scalar");
    for (int k = 0; k < N_SUPPORTED; k++)
        cr_assert_eq(slm_type_traits_get(SUPPORTED[k])->vec_dot, slm_type_traits_ref(SUPPORTED[k])->vec_dot);
}

/* Inputs for the quantizers: kind 0 Gaussian; 1 blocks scaled so that
 * the quants land on exact .5 ties (absmax 127 gives d = 1); 2 special
 * values (zeros, NaN, infinities, subnormals, equal magnitudes of both
 * signs, huge and tiny); 3 Gaussian with one large element per block. */
static void quant_input(float *x, int64_t n, int kind, int64_t blck) {
    for (int64_t i = 0; i < n; i++) {
        float g = rng_gauss();
        switch (kind) {
        case 0: x[i] = g; break;
        case 1: x[i] = (float)((int)(g * 40.0f)) + ((rng_u64() & 1) ? 0.5f : -0.5f); break;
        case 2: {
            static const float special[] = { 0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1e-40f, -1e-40f, 3.0f, -3.0f,
                                             1e30f, -1e-30f, 126.5f, -126.5f, 0.5f, -0.5f };
            x[i] = (rng_u64() % 3 == 0) ? special[rng_u64() % (sizeof special / sizeof special[0])] : g;
            break;
        }
        default: x[i] = (i % blck == (int64_t)(rng_u64() % (uint64_t)blck)) ? g * 1000.0f : g; break;
        }
    }
    if (kind == 1) /* one element per block at |x| = 127 (either sign) so that d = 1 */
        for (int64_t b = 0; b < n / blck; b++) x[b * blck + (int64_t)(rng_u64() % (uint64_t)blck)] = (rng_u64() & 1) ? 127.0f : -127.0f;
    if (kind == 2 && n >= blck) { /* a block that is all zeros, one with -m before +m */
        for (int64_t i = 0; i < blck; i++) x[i] = 0.0f;
        if (n >= 2 * blck) {
            x[blck + 3] = -50.0f;
            x[blck + 5] = 50.0f;
        }
    }
}

Test(simd, quantizers_write_the_reference_bytes) {
    REQUIRE_SIMD(isas, n_isa);
    const int32_t types[] = { SLM_TYPE_Q8_0, SLM_TYPE_Q8_1, SLM_TYPE_Q8_K };
    const int64_t n_blocks[] = { 1, 7, 33, 256 };
    for (int t = 0; t < 3; t++) {
        const slm_type_traits *ref = slm_type_traits_ref(types[t]);
        for (int nb = 0; nb < 4; nb++) {
            int64_t n = n_blocks[nb] * ref->blck_size;
            size_t bytes = slm_row_size(types[t], n);
            float *x = xalloc((size_t)n * sizeof *x);
            unsigned char *want = xalloc(bytes), *got = xalloc(bytes);
            for (int kind = 0; kind < 4; kind++) {
                rng_seed(1000 + 10 * (uint64_t)nb + (uint64_t)kind);
                quant_input(x, n, kind, ref->blck_size);
                memset(want, 0xa5, bytes);
                ref->from_float(x, want, n);
                for (int i = 0; i < n_isa; i++) {
                    memset(got, 0x5a, bytes);
                    slm_type_traits_isa(types[t], isas[i])->from_float(x, got, n);
                    size_t k = 0;
                    while (k < bytes && got[k] == want[k]) k++;
                    cr_assert_eq(k, bytes, "%s %s, %lld blocks, input kind %d: byte %zu (block %zu, offset %zu) is %#04x, want %#04x",
                                 isas[i], ref->name, (long long)n_blocks[nb], kind, k, k / ref->type_size,
                                 k % ref->type_size, k < bytes ? got[k] : 0, k < bytes ? want[k] : 0);
                }
            }
            slm_free(x);
            slm_free(want);
            slm_free(got);
        }
    }
}

/* A row of `type` with n elements: kind 0 the reference quantization of
 * Gaussian + 0.5; kind 1 random bytes with sane fp16 scales written over
 * the scale fields (every quant and sub-scale bit pattern occurs); kind 2
 * the extreme pattern of vec_dot.extreme_blocks. */
static void weight_row(int32_t type, int64_t n, int kind, void *q) {
    const slm_type_traits *ref = slm_type_traits_ref(type);
    if (kind == 1 && ref->is_quantized && type != SLM_TYPE_Q8_1 && type != SLM_TYPE_Q8_K) {
        static const struct { int32_t type; int off[2]; } scale_fields[] = {
            { SLM_TYPE_Q4_0, { 0, -1 } }, { SLM_TYPE_Q4_1, { 0, 2 } }, { SLM_TYPE_Q5_0, { 0, -1 } },
            { SLM_TYPE_Q5_1, { 0, 2 } },  { SLM_TYPE_Q8_0, { 0, -1 } }, { SLM_TYPE_Q2_K, { 80, 82 } },
            { SLM_TYPE_Q3_K, { 108, -1 } }, { SLM_TYPE_Q4_K, { 0, 2 } }, { SLM_TYPE_Q5_K, { 0, 2 } },
            { SLM_TYPE_Q6_K, { 208, -1 } },
        };
        unsigned char *b = q;
        size_t bytes = slm_row_size(type, n);
        for (size_t i = 0; i < bytes; i++) b[i] = (unsigned char)rng_u64();
        for (size_t k = 0; k < sizeof scale_fields / sizeof scale_fields[0]; k++) {
            if (scale_fields[k].type != type) continue;
            for (size_t blk = 0; blk < bytes / ref->type_size; blk++)
                for (int f = 0; f < 2; f++) {
                    if (scale_fields[k].off[f] < 0) continue;
                    slm_half h = slm_f32_to_fp16((float)(0.01 + rng_unif()) * ((rng_u64() & 1) ? 1.0f : -1.0f));
                    memcpy(b + blk * ref->type_size + (size_t)scale_fields[k].off[f], &h, sizeof h);
                }
        }
        return;
    }
    float *x = xalloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = kind == 2 ? ((i % 3 == 0) ? -100.0f : 100.0f) : rng_gauss() + 0.5f;
    ref->from_float(x, q, n);
    slm_free(x);
}

/* An activation row in the vec_dot_type (reference quantizer). */
static void act_row(int32_t vdt, int64_t n, int kind, void *q) {
    float *y = xalloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) y[i] = kind == 2 ? ((i % 3 == 0) ? -7.0f : 7.0f) : rng_gauss();
    slm_type_traits_ref(vdt)->from_float(y, q, n);
    slm_free(y);
}

/* M of the comment above for one row and one column. */
static double dot_magnitude(int32_t type, const void *qx, const void *qy, int64_t n) {
    const slm_type_traits *ref = slm_type_traits_ref(type), *ty = slm_type_traits_ref(ref->vec_dot_type);
    float *xd = xalloc((size_t)n * sizeof *xd), *yd = xalloc((size_t)n * sizeof *yd);
    ref->to_float(qx, xd, n);
    ty->to_float(qy, yd, n);
    double m = 0;
    for (int64_t b0 = 0; b0 < n; b0 += ref->blck_size) {
        double r = 0;
        for (int64_t i = b0; i < b0 + ref->blck_size; i++) r = fmax(r, fabs((double)xd[i]));
        for (int64_t i = b0; i < b0 + ref->blck_size; i++) m += fabs((double)yd[i]) * (fabs((double)xd[i]) + 2 * r);
    }
    slm_free(xd);
    slm_free(yd);
    return m;
}

Test(simd, vec_dot_matches_reference) {
    REQUIRE_SIMD(isas, n_isa);
    const int64_t n_blocks[] = { 1, 7, 33, 256 };
    const int64_t n_floats[] = { 1, 7, 33, 256, 1000, 4099 };
    for (int k = 0; k < N_SUPPORTED; k++) {
        int32_t type = SUPPORTED[k];
        const slm_type_traits *ref = slm_type_traits_ref(type);
        int n_sizes = ref->is_quantized ? 4 : 6;
        for (int si = 0; si < n_sizes; si++) {
            int64_t n = ref->is_quantized ? n_blocks[si] * ref->blck_size : n_floats[si];
            void *qx = xalloc(slm_row_size(type, n)), *qy = xalloc(slm_row_size(ref->vec_dot_type, n));
            for (int kind = 0; kind < 3; kind++) {
                rng_seed(5000 + 100 * (uint64_t)k + 10 * (uint64_t)si + (uint64_t)kind);
                weight_row(type, n, kind, qx);
                act_row(ref->vec_dot_type, n, kind, qy);
                float want = NAN;
                ref->vec_dot(n, &want, qx, qy);
                double tol = SIMD_REL_TOL * dot_magnitude(type, qx, qy, n) + 1e-30;
                for (int i = 0; i < n_isa; i++) {
                    float got = NAN;
                    slm_type_traits_isa(type, isas[i])->vec_dot(n, &got, qx, qy);
                    cr_assert(fabs((double)got - want) <= tol,
                              "%s %s n=%lld input kind %d: vec_dot %.9g, reference %.9g (diff %.3g > tol %.3g)", isas[i],
                              ref->name, (long long)n, kind, got, want, fabs((double)got - want), tol);
                }
            }
            slm_free(qx);
            slm_free(qy);
        }
    }
}

/* The tile kernel against the same set's vec_dot: nr x nc tiles of a
 * 70-row matrix and 11 columns, with a result stride larger than nr whose
 * extra entries must keep their canary; rows of three lengths, the
 * longest spanning several of the kernels' strips and K-chunks. */
Test(simd, tiles_match_vec_dot) {
    REQUIRE_SIMD(isas, n_isa);
    enum { NR = 70, NC = 11 };
    const int nrs[] = { 1, 2, 3, 5, 16, 17, 33, 64, 70 };
    const int ncs[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 11 };
    int n_checked = 0;
    for (int i = 0; i < n_isa; i++) {
        for (int k = 0; k < N_SUPPORTED; k++) {
            int32_t type = SUPPORTED[k];
            const slm_type_traits *tr = slm_type_traits_isa(type, isas[i]);
            if (!tr->vec_dot_tile) continue;
            /* the longest rows span several of the kernels' strips and chunks */
            const int64_t lens[3] = { tr->is_quantized ? (tr->blck_size == QK_K ? 1 : 7) * tr->blck_size : 37,
                                      tr->is_quantized ? (tr->blck_size == QK_K ? 3 : 33) * tr->blck_size : 300,
                                      tr->is_quantized ? (tr->blck_size == QK_K ? 33 : 97) * tr->blck_size : 1000 };
            for (int li = 0; li < 3; li++) {
                int64_t n = lens[li];
                size_t bx = slm_row_size(type, n), by = slm_row_size(tr->vec_dot_type, n);
                unsigned char *x = xalloc(bx * NR), *y = xalloc(by * NC);
                rng_seed(7000 + 10 * (uint64_t)k + (uint64_t)li);
                for (int r = 0; r < NR; r++) weight_row(type, n, r % 7 == 3 ? 1 : 0, x + r * bx);
                for (int c = 0; c < NC; c++) act_row(tr->vec_dot_type, n, 0, y + c * by);
                float want[NC][NR];
                double tol[NC][NR];
                for (int c = 0; c < NC; c++)
                    for (int r = 0; r < NR; r++) {
                        tr->vec_dot(n, &want[c][r], x + r * bx, y + c * by);
                        tol[c][r] = SIMD_REL_TOL * dot_magnitude(type, x + r * bx, y + c * by, n) + 1e-30;
                    }
                for (size_t a = 0; a < sizeof nrs / sizeof nrs[0]; a++)
                    for (size_t b = 0; b < sizeof ncs / sizeof ncs[0]; b++) {
                        int nr = nrs[a], nc = ncs[b];
                        size_t bs = (size_t)nr + 3;
                        float s[NC * (NR + 3)];
                        for (size_t e = 0; e < NC * (NR + 3); e++) s[e] = -12345.0f;
                        /* the tile starts at row NR - nr, column NC - nc */
                        int r0 = NR - nr, c0 = NC - nc;
                        tr->vec_dot_tile(n, s, bs, x + (size_t)r0 * bx, bx, y + (size_t)c0 * by, by, nr, nc);
                        for (int c = 0; c < nc; c++) {
                            for (int r = 0; r < nr; r++) {
                                float got = s[(size_t)c * bs + r], w = want[c0 + c][r0 + r];
                                cr_assert(fabs((double)got - w) <= tol[c0 + c][r0 + r],
                                          "%s %s n=%lld tile %dx%d: [%d][%d] = %.9g, vec_dot %.9g", isas[i], tr->name,
                                          (long long)n, nr, nc, r, c, got, w);
                            }
                            for (size_t r = (size_t)nr; r < bs; r++)
                                cr_assert(s[(size_t)c * bs + r] == -12345.0f, "%s %s tile %dx%d wrote past row %d (col %d)",
                                          isas[i], tr->name, nr, nc, nr, c);
                        }
                        n_checked++;
                    }
                slm_free(x);
                slm_free(y);
            }
        }
    }
    cr_log_info("%d tiles checked", n_checked);
}

/* ---- attention kernels --------------------------------------------------- */

#include "kernels/attn.h"

/* The AVX-512 attention kernels against the scalar reference on tiles of
 * awkward sizes: head dims that are not multiples of 16, partial blocks,
 * scores from -100 to +20 (exp underflow included), an accumulator scaled
 * by a correction factor. */
Test(simd, attention_kernels_match_reference) {
    const slm_attn_kernels *ref = slm_attn_kernels_ref(), *fast = slm_attn_kernels_isa("avx512");
    if (!fast) {
        cr_skip_test("no AVX-512 on this CPU or build: the attention kernels have no SIMD version to test");
        return;
    }
    const int hds[] = { 8, 24, 64, 80, 128, 256 };
    const int lds[] = { 16, 32, 64 };
    rng_seed(99);
    for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
        for (size_t b = 0; b < sizeof lds / sizeof lds[0]; b++) {
            int hd = hds[a], ld = lds[b];
            float *kt = xalloc(sizeof(float) * (size_t)hd * ld), *vt = xalloc(sizeof(float) * (size_t)ld * hd);
            float q[256], o1[256], o2[256], s1[64], s2[64];
            for (int i = 0; i < hd * ld; i++) { kt[i] = rng_gauss(); vt[i] = rng_gauss(); }
            for (int d = 0; d < hd; d++) q[d] = rng_gauss();
            for (int cnt = 1; cnt <= ld; cnt += cnt < 4 ? 1 : 7) {
                float m1 = ref->scores(kt, ld, hd, cnt, q, 0.125f, s1), m2 = fast->scores(kt, ld, hd, cnt, q, 0.125f, s2);
                cr_assert(fabsf(m1 - m2) <= 1e-4f * (1 + fabsf(m1)), "max hd=%d cnt=%d: %g vs %g", hd, cnt, m1, m2);
                for (int t = 0; t < cnt; t++)
                    cr_assert(fabsf(s1[t] - s2[t]) <= 1e-4f * (1 + fabsf(s1[t])), "score hd=%d t=%d: %g vs %g", hd, t, s1[t], s2[t]);
                for (int t = 0; t < cnt; t++) s1[t] = s2[t] = (float)(rng_unif() * 120.0 - 100.0);
                float e1 = ref->exp_sum(s1, cnt, 20.0f), e2 = fast->exp_sum(s2, cnt, 20.0f);
                cr_assert(fabsf(e1 - e2) <= 1e-5f * e1 + 1e-30f, "exp sum cnt=%d: %g vs %g", cnt, e1, e2);
                for (int t = 0; t < cnt; t++)
                    cr_assert(fabsf(s1[t] - s2[t]) <= 1e-6f * s1[t] + 1e-37f, "exp t=%d: %g vs %g", t, s1[t], s2[t]);
                for (int d = 0; d < hd; d++) o1[d] = o2[d] = rng_gauss();
                for (int t = 0; t < cnt; t++) s1[t] = s2[t] = (float)rng_unif();
                ref->accum(vt, hd, cnt, s1, 0.75f, o1);
                fast->accum(vt, hd, cnt, s2, 0.75f, o2);
                for (int d = 0; d < hd; d++)
                    cr_assert(fabsf(o1[d] - o2[d]) <= 1e-4f * (1 + fabsf(o1[d])), "accum hd=%d d=%d: %g vs %g", hd, d, o1[d], o2[d]);
            }
            slm_free(kt);
            slm_free(vt);
        }
}

/* The KV cache's half-to-float conversion: every half that is not a
 * signalling NaN (slm never writes one), at every length 0..40 (tails). */
Test(simd, attention_f16_conversion_exact) {
    const slm_attn_kernels *ref = slm_attn_kernels_ref(), *fast = slm_attn_kernels_isa("avx512");
    if (!fast) {
        cr_skip_test("no AVX-512 on this CPU or build");
        return;
    }
    uint16_t *h = xalloc(sizeof(uint16_t) * 65536);
    float *a = xalloc(sizeof(float) * 65536), *b = xalloc(sizeof(float) * 65536);
    int n = 0;
    for (uint32_t v = 0; v < 65536; v++) {
        bool snan = (v & 0x7c00) == 0x7c00 && (v & 0x3ff) && !(v & 0x200);
        if (!snan) h[n++] = (uint16_t)v;
    }
    ref->f16_to_f32(h, a, n);
    fast->f16_to_f32(h, b, n);
    cr_assert(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "conversion differs from the reference");
    for (int len = 0; len <= 40; len++) {
        for (int i = 0; i < 48; i++) b[i] = -1.0f;
        fast->f16_to_f32(h + 1000, b, len);
        cr_assert(memcmp(a + 1000, b, sizeof(float) * (size_t)len) == 0 && b[len] == -1.0f, "length %d", len);
    }
    slm_free(h);
    slm_free(a);
    slm_free(b);
}

/* Half-precision rows against many columns (more than tiles_match_vec_dot
 * covers): the 4 x 6 register tiles give vec_dot's result to the bit (the
 * same summation order), including ragged row groups and tails. */
Test(simd, half_tiles_with_many_columns_equal_vec_dot) {
    REQUIRE_SIMD(isas, n_isa);
    const int32_t types[] = { SLM_TYPE_F16, SLM_TYPE_BF16 };
    const int64_t lens[] = { 37, 300, 1000 };
    enum { NR = 7, NC = 20 };
    for (int i = 0; i < n_isa; i++)
        for (size_t t = 0; t < 2; t++)
            for (size_t l = 0; l < 3; l++) {
                const slm_type_traits *tr = slm_type_traits_isa(types[t], isas[i]);
                const int64_t n = lens[l];
                size_t bx = slm_row_size(types[t], n), by = (size_t)n * sizeof(float);
                unsigned char *x = xalloc(bx * NR), *y = xalloc(by * NC);
                rng_seed(8100 + 10 * t + l);
                for (int r = 0; r < NR; r++) weight_row(types[t], n, 0, x + r * bx);
                for (int c = 0; c < NC; c++) act_row(SLM_TYPE_F32, n, 0, y + c * by);
                for (int nc = 12; nc <= NC; nc += 8) {
                    float s[NC * NR];
                    tr->vec_dot_tile(n, s, NR, x, bx, y, by, NR, nc);
                    for (int c = 0; c < nc; c++)
                        for (int r = 0; r < NR; r++) {
                            float want;
                            tr->vec_dot(n, &want, x + r * bx, y + c * by);
                            cr_assert(memcmp(&want, &s[c * NR + r], sizeof want) == 0, "%s %s n=%lld cols=%d [%d][%d]: %.9g vs %.9g",
                                      isas[i], tr->name, (long long)n, nc, r, c, s[c * NR + r], want);
                        }
                }
                slm_free(x);
                slm_free(y);
            }
}
