/*
 * avx512_util.h — helpers shared by the AVX-512 kernel files (only ever
 * included by files compiled with the AVX-512 flags; everything here is
 * static inline, so no AVX-512 code leaks into other objects).
 *
 * The row-panel layout used by the tile kernels ("lanes are rows"): for a
 * panel of 16 weight rows, quad k of a block (bytes 4k..4k+3 of its
 * unpacked quants) is stored as one 64-byte vector whose dword lane r holds
 * that quad of row r. A dot product with one activation column is then a
 * chain of VPDPBUSD with the column's quad broadcast from memory, and gives
 * the 16 rows' sums in the 16 lanes, with no horizontal reduction.
 */
#ifndef SLM_KERNELS_X86_AVX512_UTIL_H
#define SLM_KERNELS_X86_AVX512_UTIL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define SLM_INLINE static inline __attribute__((always_inline))
/* Unrolls a loop of constant trip count completely, so that the vector
 * arrays it indexes live in registers. */
#define UNROLL _Pragma("GCC unroll 16")

/* Rows per panel, and panels per row group in the tile kernels. */
#define PANEL_ROWS 16

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline uint16_t ld16(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline int32_t ld32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline __m512i bcast32(const void *p) { return _mm512_set1_epi32(ld32(p)); }

/* The 16-byte chunks at rows[r] + off for r = 0..15, transposed: w[k] dword
 * lane r = dword k of row r's chunk. Lane r of the 4 source vectors z[i]
 * comes from row 4*(r%4) + i: after the two unpack stages the lanes are in
 * row order. */
SLM_INLINE void load_t16x4(const uint8_t *const rows[16], size_t off, __m512i w[4]) {
    __m512i z[4];
    UNROLL for (int i = 0; i < 4; i++) {
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rows[i] + off)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[4 + i] + off)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[8 + i] + off)), 2);
        z[i] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[12 + i] + off)), 3);
    }
    __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpacklo_epi32(z[2], z[3]);
    __m512i t2 = _mm512_unpackhi_epi32(z[0], z[1]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    w[0] = _mm512_unpacklo_epi64(t0, t1);
    w[1] = _mm512_unpackhi_epi64(t0, t1);
    w[2] = _mm512_unpacklo_epi64(t2, t3);
    w[3] = _mm512_unpackhi_epi64(t2, t3);
}

/* Row pointers of a panel: rows r0.. of x (bx bytes apart); rows past the
 * last (n_rows) repeat row 0 so that every load stays inside the matrix
 * (their results are masked off). */
static inline void panel_rows(const uint8_t *rows[16], const uint8_t *x, size_t bx, int n_rows) {
    for (int r = 0; r < PANEL_ROWS; r++) rows[r] = x + (size_t)(r < n_rows ? r : 0) * bx;
}

/* s[0..n_rows) (+)= v, lanes in row order. */
static inline void panel_store(float *s, __m512 v, int n_rows, int add) {
    __mmask16 k = (__mmask16)(n_rows >= 16 ? 0xffff : (1u << n_rows) - 1);
    if (add) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, s));
    _mm512_mask_storeu_ps(s, k, v);
}

/* Sum of 32 signed bytes. */
SLM_INLINE int sum_i8x32(const uint8_t *p) {
    __m256i v = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), _mm256_loadu_si256((const __m256i *)p));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s4);
}

#endif
