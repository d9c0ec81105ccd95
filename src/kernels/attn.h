/*
 * attn.h — the inner loops of attention, on F32 tiles of one KV block.
 *
 * The forward pass (model/forward.c) converts each block of cached
 * positions of one KV head once into two F32 tiles — K transposed
 * kt[d*ld + t] and V position-major vt[t*hd + d] — and runs every query
 * head of the group (and several query tokens) against them with an online
 * softmax, so no score matrix is ever materialized beyond one block. These
 * kernels are the per-query work on a tile; the scalar versions are the
 * reference, the AVX-512 ones (x86/avx512_attn.c) are chosen with the
 * matrix kernels' instruction set and tested against them.
 */
#ifndef SLM_KERNELS_ATTN_H
#define SLM_KERNELS_ATTN_H

#include <stdint.h>

typedef struct slm_attn_kernels {
    const char *isa;
    /* s[t] = scale * sum_d kt[d*ld + t] * q[d] for t < cnt (cnt <= ld);
     * returns max_t s[t]. */
    float (*scores)(const float *kt, int ld, int hd, int cnt, const float *q, float scale, float *s);
    /* p[t] = exp(s[t] - m) in place for t < cnt; returns the sum. */
    float (*exp_sum)(float *s, int cnt, float m);
    /* o[d] = o[d] * corr + sum_t p[t] * vt[t*hd + d] for d < hd. */
    void (*accum)(const float *vt, int hd, int cnt, const float *p, float corr, float *o);
    /* y[i] = x[i] for i < n: a half-precision KV cache's rows as floats
     * (exact; equals slm_fp16_to_f32 for every half but signalling NaNs,
     * which slm never writes). */
    void (*f16_to_f32)(const uint16_t *x, float *y, int n);
} slm_attn_kernels;

/* The kernels of the instruction set the matrix kernels use
 * (slm_kernels_isa, SLM_ISA caps both). */
const slm_attn_kernels *slm_attn_kernels_get(void);
/* The scalar reference. */
const slm_attn_kernels *slm_attn_kernels_ref(void);
/* By name ("scalar", "avx512"); NULL when the CPU or build lacks it. */
const slm_attn_kernels *slm_attn_kernels_isa(const char *isa);

#endif
