/*
 * avx2_k.c — AVX2 dot products of the K-quants (Q2_K, Q3_K, Q4_K, Q5_K,
 * Q6_K) with Q8_K activations. Compiled with the AVX2 flags; installed by
 * dispatch.c.
 *
 * A super-block is taken in 8 chunks of 32 elements. Each chunk's quants
 * are unpacked to unsigned bytes (Q3_K q+4, Q6_K q+32: the offsets come
 * back through Q8_K's per-16 sums, as the mins do), multiplied with the
 * activations by VPMADDUBSW (no pair can saturate for these ranges) and
 * scaled by the sub-block scales with VPMADDWD into int32 lanes:
 *   d*dy * sum_j sc_j * sum(q*y)  +  dmin' * dy * sum_i coef_i * bsums[i]
 * with coef and dmin' per format as in avx512_k.c (Q2_K m_j and -dmin,
 * Q3_K sc_j and -4d, Q4_K/Q5_K m_j and -dmin, Q6_K sc_j and -32d).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/quants.h"

#define SLM_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

enum { K_Q2_K, K_Q3_K, K_Q4_K, K_Q5_K, K_Q6_K };

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline size_t kq_size(int kind) {
    return kind == K_Q2_K ? sizeof(block_q2_K) : kind == K_Q3_K ? sizeof(block_q3_K)
         : kind == K_Q4_K ? sizeof(block_q4_K) : kind == K_Q5_K ? sizeof(block_q5_K) : sizeof(block_q6_K);
}

/* Q4_K/Q5_K scales and mins as bytes [sc 0..7 | m 0..7] (see quants.h). */
SLM_INLINE __m128i k4_scales(const uint8_t *q) {
    uint32_t w[3];
    memcpy(w, q, 12);
    __m128i t = _mm_setr_epi32((int)w[0], (int)w[1], (int)w[2], (int)w[2]);
    __m128i lo = _mm_and_si128(t, _mm_set1_epi32(0x3f3f3f3f));
    __m128i nib = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(t, _MM_SHUFFLE(3, 2, 3, 2)), _mm_setr_epi32(0, 4, 0, 4)),
                                _mm_set1_epi32(0x0f0f0f0f));
    __m128i top = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(t, 6), _mm_set1_epi32(0x03030303)), 4);
    return _mm_unpacklo_epi32(lo, _mm_or_si128(nib, top));
}

/* Q3_K: sixteen signed 6-bit scales (see quants.h). */
SLM_INLINE __m128i k3_scales(const uint8_t *q) {
    uint32_t w[3];
    memcpy(w, q, 12);
    __m128i a = _mm_setr_epi32((int)w[0], (int)w[1], (int)w[0], (int)w[1]);
    __m128i lo = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 4, 4)), _mm_set1_epi32(0x0f0f0f0f));
    __m128i h = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)w[2]), _mm_setr_epi32(0, 2, 4, 6)),
                              _mm_set1_epi32(0x03030303));
    return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi32(h, 4)), _mm_set1_epi8(32));
}

/* Shuffle mask putting int16 lane `lo` of a 128-bit lane in all 8 int16s
 * of the low half and lane `hi` in all of the high half. */
SLM_INLINE __m256i bcast16_mask(int lo, int hi) {
    return _mm256_setr_epi8((char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo),
                            (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1),
                            (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo),
                            (char)(2 * lo + 1), (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1),
                            (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi),
                            (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1),
                            (char)(2 * hi), (char)(2 * hi + 1));
}

/* Chunk i (elements 32i .. 32i+31) of a super-block as unsigned bytes. */
SLM_INLINE __m256i kq_chunk(int kind, const uint8_t *blk, int i) {
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(0x0f);
    if (kind == K_Q2_K || kind == K_Q3_K) {
        int h = i / 4, k = i % 4;
        const uint8_t *qs = kind == K_Q2_K ? ((const block_q2_K *)blk)->qs : ((const block_q3_K *)blk)->qs;
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
        v = _mm256_and_si256(_mm256_srli_epi16(v, 2 * k), m3);
        if (kind == K_Q3_K) {
            __m256i hm = _mm256_loadu_si256((const __m256i *)((const block_q3_K *)blk)->hmask);
            __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + k)));
            v = _mm256_add_epi8(v, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), _mm256_set1_epi8(4)));
        }
        return v;
    }
    if (kind == K_Q4_K || kind == K_Q5_K) {
        const uint8_t *qs = kind == K_Q4_K ? ((const block_q4_K *)blk)->qs : ((const block_q5_K *)blk)->qs;
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * (i / 2)));
        v = _mm256_and_si256(i % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
        if (kind == K_Q5_K) {
            __m256i qh = _mm256_loadu_si256((const __m256i *)((const block_q5_K *)blk)->qh);
            __m256i bit = _mm256_set1_epi8((char)(1 << i));
            v = _mm256_add_epi8(v, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), _mm256_set1_epi8(16)));
        }
        return v;
    }
    const block_q6_K *b = (const block_q6_K *)blk;
    int h = i / 4, k = i % 4;
    __m256i l = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (k % 2)));
    __m256i hb = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    l = _mm256_and_si256(k >= 2 ? _mm256_srli_epi16(l, 4) : l, m4);
    hb = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * k), m3), 4);
    return _mm256_or_si256(l, hb);
}

SLM_INLINE void kdot(int kind, int64_t n, float *s, const void *vx, const void *vy) {
    const uint8_t *x = vx;
    const block_q8_K *y = vy;
    const size_t xs = kq_size(kind);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int64_t ib = 0; ib < n / QK_K; ib++) {
        const uint8_t *blk = x + ib * xs;
        __m256i lo8, hi8, coef;   /* int16 scales of sub-blocks 0..7 / 8..15 in both lanes */
        float d, dmin;
        if (kind == K_Q4_K || kind == K_Q5_K) {
            const block_q4_K *b4 = (const block_q4_K *)blk;   /* d, dmin, scales: same place in Q5_K */
            __m128i sm = k4_scales(b4->scales);
            lo8 = hi8 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
            coef = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
            d = h2f(b4->d);
            dmin = -h2f(b4->dmin);
        } else {
            __m128i sc;
            if (kind == K_Q2_K) {
                const block_q2_K *b = (const block_q2_K *)blk;
                __m128i v = _mm_loadu_si128((const __m128i *)b->scales);
                sc = _mm_and_si128(v, _mm_set1_epi8(0x0f));
                coef = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0f)));
                d = h2f(b->d);
                dmin = -h2f(b->dmin);
            } else if (kind == K_Q3_K) {
                const block_q3_K *b = (const block_q3_K *)blk;
                sc = k3_scales(b->scales);
                coef = _mm256_cvtepi8_epi16(sc);
                d = h2f(b->d);
                dmin = -4.0f * d;
            } else {
                const block_q6_K *b = (const block_q6_K *)blk;
                sc = _mm_loadu_si128((const __m128i *)b->scales);
                coef = _mm256_cvtepi8_epi16(sc);
                d = h2f(b->d);
                dmin = -32.0f * d;
            }
            lo8 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc));
            hi8 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_srli_si128(sc, 8)));
        }
        __m256i isum = _mm256_setzero_si256();
        UNROLL for (int i = 0; i < 8; i++) {
            __m256i p = _mm256_maddubs_epi16(kq_chunk(kind, blk, i), _mm256_loadu_si256((const __m256i *)(y[ib].qs + 32 * i)));
            __m256i scale;
            if (kind == K_Q4_K || kind == K_Q5_K) scale = _mm256_shuffle_epi8(lo8, bcast16_mask(i, i));
            else scale = _mm256_shuffle_epi8(i < 4 ? lo8 : hi8, bcast16_mask((2 * i) % 8, (2 * i + 1) % 8));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scale));
        }
        __m256i mins = _mm256_madd_epi16(coef, _mm256_loadu_si256((const __m256i *)y[ib].bsums));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * y[ib].d), acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin * y[ib].d), accm);
    }
    acc = _mm256_add_ps(acc, accm);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    *s = _mm_cvtss_f32(s4);
}

static void q2_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q2_K, n, s, x, y); }
static void q3_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q3_K, n, s, x, y); }
static void q4_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q4_K, n, s, x, y); }
static void q5_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q5_K, n, s, x, y); }
static void q6_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q6_K, n, s, x, y); }

void slm_x86_avx2_install_k(slm_type_traits t[SLM_N_TRAITS]) {
    t[SLM_TYPE_Q2_K].vec_dot = q2_K_vec_dot;
    t[SLM_TYPE_Q3_K].vec_dot = q3_K_vec_dot;
    t[SLM_TYPE_Q4_K].vec_dot = q4_K_vec_dot;
    t[SLM_TYPE_Q5_K].vec_dot = q5_K_vec_dot;
    t[SLM_TYPE_Q6_K].vec_dot = q6_K_vec_dot;
}
