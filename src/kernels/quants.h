/*
 * quants.h — the scalar reference kernels behind the traits table in
 * types.c (private to src/kernels).
 *
 * Each supported type has three entry points with the signatures of
 * slm_to_float_fn, slm_from_float_fn and slm_vec_dot_fn:
 *   slm_<type>_to_float    dequantize n elements (n a multiple of the block)
 *   slm_<type>_from_float  reference quantizer (n a multiple of the block)
 *   slm_<type>_vec_dot     s = row · activations, the activations being of
 *                          the type's vec_dot_type (see types.c)
 * The files split by job: quants_basic.c (float types and the 32-element
 * formats), quants_k.c (K-quant layouts: dequantization, dot products,
 * Q8_K), quants_k_search.c (K-quant scale search and quantizers).
 */
#ifndef SLM_KERNELS_QUANTS_H
#define SLM_KERNELS_QUANTS_H

#include <stdint.h>

#include "kernels/types.h"

#define SLM_DECLARE_KERNELS(t)                                              \
    void slm_##t##_to_float(const void *x, float *y, int64_t n);           \
    void slm_##t##_from_float(const float *x, void *y, int64_t n);         \
    void slm_##t##_vec_dot(int64_t n, float *s, const void *x, const void *y);

SLM_DECLARE_KERNELS(f32)
SLM_DECLARE_KERNELS(f16)
SLM_DECLARE_KERNELS(bf16)
SLM_DECLARE_KERNELS(q4_0)
SLM_DECLARE_KERNELS(q4_1)
SLM_DECLARE_KERNELS(q5_0)
SLM_DECLARE_KERNELS(q5_1)
SLM_DECLARE_KERNELS(q8_0)
SLM_DECLARE_KERNELS(q8_1)  /* vec_dot: Q8_1 · Q8_1 */
SLM_DECLARE_KERNELS(q2_K)
SLM_DECLARE_KERNELS(q3_K)
SLM_DECLARE_KERNELS(q4_K)
SLM_DECLARE_KERNELS(q5_K)
SLM_DECLARE_KERNELS(q6_K)
SLM_DECLARE_KERNELS(q8_K)  /* vec_dot: Q8_K · Q8_K */

#undef SLM_DECLARE_KERNELS

/* Round to nearest (ties to even) after clamping to [lo, hi]; NaN gives lo.
 * Clamping first keeps the float->int conversion defined for any input.
 * For |v| < 2^22, adding 1.5*2^23 leaves no fraction bits, so the FPU's
 * round-to-nearest-even does the rounding; subtracting gives it back
 * exactly (C11 without -ffast-math keeps the two operations). This avoids
 * a libm call to lrintf in the quantizers' inner loops. lo and hi must be
 * within +-2^22. */
static inline int slm_round_clamp(float v, int lo, int hi) {
    v = v >= (float)lo ? v : (float)lo;   /* NaN fails the test: lo      */
    v = v <= (float)hi ? v : (float)hi;   /* (both compile to max/min)   */
    float t = v + 0x1.8p23f;   /* assignments round to float even where */
    t = t - 0x1.8p23f;         /* the FPU keeps excess precision (C11)  */
    return (int)t;
}

/* Q4_K/Q5_K: 8 six-bit scales and 8 six-bit mins packed into 12 bytes.
 * Sub-blocks 0..3 keep their low 6 bits in bytes 0..3 (scale) and 4..7
 * (min); sub-blocks 4..7 keep their low 4 bits in the nibbles of bytes
 * 8..11 and their top 2 bits in the top 2 bits of bytes 0..7. */
static inline void slm_k4_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q3_K: sixteen 6-bit scales (stored +32) in 12 bytes: low nibbles of bytes
 * 0..7 hold scales 0..7, high nibbles hold scales 8..15, and byte 8+(j%4)
 * holds the top 2 bits of scale j at bit 2*(j/4). Returns the signed scale. */
static inline int slm_k3_scale(int j, const uint8_t *q) {
    int lo = j < 8 ? (q[j] & 0x0f) : (q[j - 8] >> 4);
    int hi = (q[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
}

#endif
