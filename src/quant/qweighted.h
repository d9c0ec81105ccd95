/*
 * qweighted.h — importance-weighted quantizers (private to src/quant).
 *
 * A weight row W_r multiplies activations x; the error it adds to the
 * output is sum_j dW_rj * x_j. Averaged over the activations a model sees,
 * with columns roughly uncorrelated, its square is sum_j E[x_j^2] dW_rj^2:
 * the squared error weighted per column by the mean squared activation,
 * which is what `slm imatrix` measures. The quantizers here minimise
 *     sum_j w_j (x_j - y_j)^2
 * over each block's parameters (scales, mins, integer quants) for a given
 * non-negative importance vector w, with the same search shapes as the
 * reference quantizers in src/kernels (qweighted.c: the 32-element
 * formats; qweighted_k.c: the K-quants), so that on uniform weights they
 * land where the reference lands.
 */
#ifndef SLM_QUANT_QWEIGHTED_H
#define SLM_QUANT_QWEIGHTED_H

#include <stdbool.h>
#include <stdint.h>

/* Quantizes one row x of n elements (a multiple of the type's block size)
 * into y. w: n importances, one per column (>= 0, finite), or NULL for the
 * plain squared error: the same search with uniform weights — for the
 * K-quants that is src/kernels' reference search (vectorized here: same
 * results up to float rounding, several times faster); for the 32-element
 * formats it beats ggml's round-to-nearest (kept as the kernels'
 * reference) by 5-12% RMS error on Gaussian data, and lowered the
 * logits' error of stories260K for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 alike. Float
 * types ignore w. Returns false for a type that has no quantizer. */
bool slm_quant_row(int32_t type, const float *x, void *y, int64_t n, const float *w);

/* The weighted quantizers by family (n a multiple of the block; w NULL
 * means uniform weights). */
bool slm_quant_row_basic_w(int32_t type, const float *x, void *y, int64_t n, const float *w);
bool slm_quant_row_k_w(int32_t type, const float *x, void *y, int64_t n, const float *w);

/* ---- the searches' inner loop (shared by qweighted.c and qweighted_k.c) -- */

/* round(v) after clamping to [lo, hi], as a float (slm_round_clamp's
 * trick without the conversion to int, so that loops of it vectorize). */
static inline float slm_qw_round(float v, float lo, float hi) {
    v = v >= lo ? v : lo;
    v = v <= hi ? v : hi;
    float t = v + 0x1.8p23f;
    return t - 0x1.8p23f;
}

/* One trial of a scale search over n elements (n a multiple of 4): quants
 * T = round(is * (x - off)) clamped to [lo, hi], kept as floats, and the
 * weighted sums sum w*T, sum w*T^2, sum w*x*T (wx = w*x) into s[0..2].
 * Both loops vectorize; the sums run in four lanes added in a fixed order,
 * so results do not depend on the instruction set (4-5x faster than one
 * scalar dependency chain). */
static inline void slm_qw_trial(int n, const float *restrict x, const float *restrict w, const float *restrict wx,
                                float is, float off, float lo, float hi, float *restrict T, float s[3]) {
    for (int i = 0; i < n; i++) T[i] = slm_qw_round(is * (x[i] - off), lo, hi);
    float a[4] = { 0 }, b[4] = { 0 }, c[4] = { 0 };
    for (int i = 0; i < n; i += 4) {
        for (int k = 0; k < 4; k++) {
            float u = w[i + k] * T[i + k];
            a[k] += u;
            b[k] += u * T[i + k];
            c[k] += wx[i + k] * T[i + k];
        }
    }
    s[0] = (a[0] + a[1]) + (a[2] + a[3]);
    s[1] = (b[0] + b[1]) + (b[2] + b[3]);
    s[2] = (c[0] + c[1]) + (c[2] + c[3]);
}

/* Weighted squared error sum_j w_j (x_j - y_j)^2 of y (n elements of type)
 * against x; w NULL: unweighted. -1 for an unsupported type. Scratch: the
 * dequantized row goes through buf (n floats). Used by tests and -v. */
double slm_quant_row_error(int32_t type, const float *x, const void *y, int64_t n, const float *w, float *buf);

#endif
