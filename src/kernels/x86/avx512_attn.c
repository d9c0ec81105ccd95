/*
 * avx512_attn.c — AVX-512 attention kernels (see kernels/attn.h): 16
 * positions (scores) or 16 dimensions (accum) per vector, no horizontal
 * sums in the inner loops; exp by range reduction to [-ln2/2, ln2/2] and a
 * degree-6 polynomial (relative error ~2e-7, below float rounding of the
 * sums it feeds), inputs below -87 flush to 0 as expf's underflow does.
 */
#include <immintrin.h>
#include <math.h>

#include "kernels/attn.h"

static inline __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3f), hi = _mm512_set1_ps(88.3f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512 e = _mm512_scalef_ps(p, n);
    return _mm512_maskz_mov_ps((__mmask16)~under, e);
}

static float scores(const float *kt, int ld, int hd, int cnt, const float *q, float scale, float *s) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    const __m512 sc = _mm512_set1_ps(scale);
    for (int t0 = 0; t0 < cnt; t0 += 32) {
        int left = cnt - t0;
        __mmask16 m0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __mmask16 m1 = left >= 32 ? (__mmask16)0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
        int d = 0;
        for (; d + 2 <= hd; d += 2) {
            const float *r0 = kt + (size_t)d * ld + t0, *r1 = r0 + ld;
            __m512 q0 = _mm512_set1_ps(q[d]), q1 = _mm512_set1_ps(q[d + 1]);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, r0), q0, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, r0 + 16), q0, a1);
            b0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, r1), q1, b0);
            b1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, r1 + 16), q1, b1);
        }
        for (; d < hd; d++) {
            const float *r0 = kt + (size_t)d * ld + t0;
            __m512 q0 = _mm512_set1_ps(q[d]);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, r0), q0, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, r0 + 16), q0, a1);
        }
        a0 = _mm512_mul_ps(_mm512_add_ps(a0, b0), sc);
        a1 = _mm512_mul_ps(_mm512_add_ps(a1, b1), sc);
        _mm512_mask_storeu_ps(s + t0, m0, a0);
        _mm512_mask_storeu_ps(s + t0 + 16, m1, a1);
        mx = _mm512_mask_max_ps(mx, m0, mx, a0);
        mx = _mm512_mask_max_ps(mx, m1, mx, a1);
    }
    return _mm512_reduce_max_ps(mx);
}

static float exp_sum(float *s, int cnt, float m) {
    __m512 sum = _mm512_setzero_ps();
    const __m512 mv = _mm512_set1_ps(m);
    for (int t = 0; t < cnt; t += 16) {
        int left = cnt - t;
        __mmask16 k = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + t), mv));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(s + t, k, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

static void accum(const float *vt, int hd, int cnt, const float *p, float corr, float *o) {
    const __m512 c = _mm512_set1_ps(corr);
    for (int d0 = 0; d0 < hd; d0 += 64) {
        int left = hd - d0;
        __mmask16 k[4];
        for (int j = 0; j < 4; j++) {
            int l = left - 16 * j;
            k[j] = l >= 16 ? (__mmask16)0xffff : l > 0 ? (__mmask16)((1u << l) - 1) : 0;
        }
        __m512 acc[4];
        for (int j = 0; j < 4; j++) acc[j] = _mm512_mul_ps(_mm512_maskz_loadu_ps(k[j], o + d0 + 16 * j), c);
        for (int t = 0; t < cnt; t++) {
            const float *row = vt + (size_t)t * hd + d0;
            __m512 pt = _mm512_set1_ps(p[t]);
            for (int j = 0; j < 4; j++) acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k[j], row + 16 * j), pt, acc[j]);
        }
        for (int j = 0; j < 4; j++) _mm512_mask_storeu_ps(o + d0 + 16 * j, k[j], acc[j]);
    }
}

static void f16_to_f32(const uint16_t *x, float *y, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, x + i)));
    }
}

static const slm_attn_kernels AVX512 = { "avx512", scores, exp_sum, accum, f16_to_f32 };

const slm_attn_kernels *slm_x86_avx512_attn(void);
const slm_attn_kernels *slm_x86_avx512_attn(void) { return &AVX512; }
