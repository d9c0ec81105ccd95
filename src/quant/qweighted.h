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
 * K-quants that is src/kernels' reference quantizer; for the 32-element
 * formats it beats ggml's round-to-nearest (kept as the kernels'
 * reference) by 6-12% RMS error on Gaussian data, and lowered the
 * logits' error of stories260K for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 alike. Float
 * types ignore w. Returns false for a type that has no quantizer. */
bool slm_quant_row(int32_t type, const float *x, void *y, int64_t n, const float *w);

/* The weighted quantizers by family (n a multiple of the block; basic: w
 * NULL means uniform weights). */
bool slm_quant_row_basic_w(int32_t type, const float *x, void *y, int64_t n, const float *w);
bool slm_quant_row_k_w(int32_t type, const float *x, void *y, int64_t n, const float *w);

/* Weighted squared error sum_j w_j (x_j - y_j)^2 of y (n elements of type)
 * against x; w NULL: unweighted. -1 for an unsupported type. Scratch: the
 * dequantized row goes through buf (n floats). Used by tests and -v. */
double slm_quant_row_error(int32_t type, const float *x, const void *y, int64_t n, const float *w, float *buf);

#endif
