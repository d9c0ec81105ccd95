/*
 * avx512_packed.c — AVX-512 VNNI products of the packed layouts
 * (packed.h): Q4_0 panels with Q8_0 activations (below), Q4_K panels with
 * Q8_K activations (at the end: the same scheme per 32-element sub-block,
 * the 6-bit scales and mins decoded lane-wise once per super-block).
 *
 * A panel block is 288 contiguous bytes: 16 scales, then four vectors of
 * nibbles whose dword lanes are the panel's rows. Per block the four
 * vectors are split into eight quad vectors (low nibbles: quads 0..3, high
 * nibbles: quads 4..7) once, and every column of the call is dotted with
 * them: eight VPDPBUSD with the column's quads broadcast from memory, the
 * chain started from the column's offset correction (-8 × the sum of its
 * 32 quants, computed with the activations), then one convert and one FMA per
 * column give 16 rows' partial sums. Against the file layout this drops
 * the per-group permutes and the horizontal sums, and the unpacking is
 * shared by all columns (continuous batching's decode steps).
 *
 * The activations come with their blocks' corrections and scales
 * (slm_pack_act), so a call needs no preparation and threads can take
 * rows in small chunks. Loop order: per panel, the columns in register
 * groups of up to 8 walk all its blocks; the panel is read from memory
 * once and from cache by the later groups. The sums follow packed.h's definition exactly (chunks of SLM_PACK_KB
 * blocks, each FMA-accumulated from zero, chunks added in order), so the
 * result equals the scalar reference bit for bit.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/packed.h"
#include "kernels/x86/avx512_util.h"

#define PB 288                 /* bytes per panel block                        */
#define PREP_CELLS 8192        /* (column, block) pairs prepared at a time     */
#ifndef PF_AHEAD
#define PF_AHEAD (PB * 24)     /* prefetch distance in the panel stream        */
#endif
#ifndef PF_LINES
#define PF_LINES 5             /* lines prefetched per block (0: none)         */
#endif

static inline float ldf(const uint8_t *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}

/* C columns (a register group) against one panel P over its nblk blocks.
 * yq[c]: column c as slm_pack_act wrote it (Q8_0 blocks, then the blocks'
 * corrections and scales, not aligned); s[c*bs + r] receives row r's sum. */
SLM_INLINE void panel_cols(const int C, const uint8_t *P, int nblk, const uint8_t *const *yq, float *s, size_t bs) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const size_t corr = (size_t)nblk * sizeof(block_q8_0), dy = corr + (size_t)nblk * 4;
    __m512 tot[8];
    UNROLL for (int c = 0; c < C; c++) tot[c] = _mm512_setzero_ps();   /* set by chunk 0 */
    for (int k0 = 0; k0 < nblk; k0 += SLM_PACK_KB) {
        const int k1 = nblk - k0 < SLM_PACK_KB ? nblk : k0 + SLM_PACK_KB;
        __m512 acc[8];
        UNROLL for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
        for (int b = k0; b < k1; b++) {
            const uint8_t *pb = P + (size_t)b * PB;
            UNROLL for (int l = 0; l < PF_LINES; l++) _mm_prefetch((const char *)pb + PF_AHEAD + 64 * l, _MM_HINT_T0);
            const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pb));
            __m512i q[8];
            UNROLL for (int k = 0; k < 4; k++) {
                __m512i w = _mm512_loadu_si512(pb + 32 + 64 * k);
                q[k] = _mm512_and_si512(w, m4);
                q[4 + k] = _mm512_and_si512(_mm512_srli_epi16(w, 4), m4);
            }
            UNROLL for (int c = 0; c < C; c++) {
                const uint8_t *yb = yq[c] + (size_t)b * sizeof(block_q8_0) + 2;
                /* two chains of four: half the latency of one chain of eight */
                __m512i is = _mm512_set1_epi32(ld32(yq[c] + corr + 4 * b)), is1 = _mm512_setzero_si512();
                UNROLL for (int j = 0; j < 8; j += 2) {
                    is = _mm512_dpbusd_epi32(is, q[j], bcast32(yb + 4 * j));
                    is1 = _mm512_dpbusd_epi32(is1, q[j + 1], bcast32(yb + 4 * j + 4));
                }
                is = _mm512_add_epi32(is, is1);
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(d, _mm512_set1_ps(ldf(yq[c] + dy + 4 * b))),
                                         acc[c]);
            }
        }
        /* chunk 0 of a row is its sum so far; later chunks add in order */
        UNROLL for (int c = 0; c < C; c++) tot[c] = k0 == 0 ? acc[c] : _mm512_add_ps(tot[c], acc[c]);
    }
    UNROLL for (int c = 0; c < C; c++) _mm512_storeu_ps(s + (size_t)c * bs, tot[c]);
}

/* ---- Q4_K panels ------------------------------------------------------- */

#define PBK (SLM_PACK_ROWS * 144)   /* bytes per panel super-block */

/* The 16 rows' 6-bit scale (mins = 0) or min (mins = 1) of sub-block j,
 * from the three dword vectors of their packed scales (ggml's
 * get_scale_min_k4, lane-wise). */
SLM_INLINE __m512i k4_field(const __m512i v[3], int j, int mins) {
    const __m512i m63 = _mm512_set1_epi32(63), m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3);
    if (j < 4) return _mm512_and_si512(_mm512_srli_epi32(v[mins], 8 * j), m63);
    const int jj = j - 4;
    __m512i lo = _mm512_and_si512(_mm512_srli_epi32(v[2], 8 * jj + 4 * mins), m15);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi32(v[mins], 8 * jj + 6), m3);
    return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 4));
}

/* C columns against one Q4_K panel over nb super-blocks; yc[c]: column c's
 * Q8_K blocks. Per super-block: the 8 sub-blocks' scaled sums (FMA in
 * order), the mins' integer sum (exact in float), then packed.h's value. */
SLM_INLINE void k4_panel_cols(const int C, const uint8_t *P, int nb, const uint8_t *const *yc, float *s, size_t bs) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 tot[8];
    UNROLL for (int c = 0; c < C; c++) tot[c] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *pb = P + (size_t)b * PBK;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pb));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pb + 32)));
        __m512i sv[3];
        UNROLL for (int k = 0; k < 3; k++) sv[k] = _mm512_loadu_si512(pb + 64 + 64 * k);
        __m512 dsc[8];
        UNROLL for (int j = 0; j < 8; j++) dsc[j] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(k4_field(sv, j, 0)));
        __m512 a[8];
        UNROLL for (int c = 0; c < C; c++) a[c] = _mm512_setzero_ps();
        UNROLL for (int j = 0; j < 4; j++) {
            UNROLL for (int half = 0; half < 2; half++) {   /* sub-block 2j (low nibbles), 2j + 1 (high) */
                __m512i q[8];
                UNROLL for (int i = 0; i < 8; i++) {
                    __m512i w = _mm512_loadu_si512(pb + 256 + 64 * (8 * j + i));
                    q[i] = _mm512_and_si512(half ? _mm512_srli_epi16(w, 4) : w, m4);
                }
                UNROLL for (int c = 0; c < C; c++) {
                    const uint8_t *yq = yc[c] + (size_t)b * sizeof(block_q8_K) + 4 + 64 * j + 32 * half;
                    __m512i is = _mm512_setzero_si512(), is1 = _mm512_setzero_si512();
                    UNROLL for (int i = 0; i < 8; i += 2) {
                        is = _mm512_dpbusd_epi32(is, q[i], bcast32(yq + 4 * i));
                        is1 = _mm512_dpbusd_epi32(is1, q[i + 1], bcast32(yq + 4 * i + 4));
                    }
                    a[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(is, is1)), dsc[2 * j + half], a[c]);
                }
            }
        }
        UNROLL for (int c = 0; c < C; c++) {
            const uint8_t *yb = yc[c] + (size_t)b * sizeof(block_q8_K);
            float yd;
            memcpy(&yd, yb, 4);
            int16_t bs16[16];
            memcpy(bs16, yb + 260, sizeof bs16);
            __m512 msum = _mm512_setzero_ps();
            UNROLL for (int j = 0; j < 8; j++)
                msum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(k4_field(sv, j, 1)),
                                       _mm512_set1_ps((float)(bs16[2 * j] + bs16[2 * j + 1])), msum);
            const __m512 vyd = _mm512_set1_ps(yd);
            __m512 v = _mm512_fnmadd_ps(_mm512_mul_ps(vyd, dmin), msum, _mm512_mul_ps(vyd, a[c]));
            tot[c] = b == 0 ? v : _mm512_add_ps(tot[c], v);
        }
    }
    UNROLL for (int c = 0; c < C; c++) _mm512_storeu_ps(s + (size_t)c * bs, tot[c]);
}

/* Both layouts: per panel, the columns in register groups of up to 8 (the
 * panel is read from memory once and from cache by the later groups). */
SLM_INLINE void p16_tile(const bool k4, int64_t n, float *s, size_t bs, const uint8_t *x, size_t bx, const uint8_t *y,
                         size_t by, int nr, int nc) {
    const int nb = (int)(n / (k4 ? QK_K : QK4_0));
    const size_t pbytes = (size_t)SLM_PACK_ROWS * bx;
    for (int p = 0; p < nr / SLM_PACK_ROWS; p++) {
        const uint8_t *P = x + (size_t)p * pbytes;
        for (int c1 = 0; c1 < nc; c1 += 8) {
            const int k = nc - c1 < 8 ? nc - c1 : 8;
            const uint8_t *yc[8];
            for (int c = 0; c < k; c++) yc[c] = y + (size_t)(c1 + c) * by;
            float *sc = s + (size_t)c1 * bs + (size_t)p * SLM_PACK_ROWS;
#define COLS(C) (k4 ? k4_panel_cols(C, P, nb, yc, sc, bs) : panel_cols(C, P, nb, yc, sc, bs))
            switch (k) {   /* constant column counts: registers, not memory */
            case 1: COLS(1); break;
            case 2: COLS(2); break;
            case 3: COLS(3); break;
            case 4: COLS(4); break;
            case 5: COLS(5); break;
            case 6: COLS(6); break;
            case 7: COLS(7); break;
            default: COLS(8); break;
            }
#undef COLS
        }
    }
}

void slm_x86_avx512_q4_0_p16_tile(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                                  int nr, int nc) {
    p16_tile(false, n, s, bs, x, bx, y, by, nr, nc);
}

void slm_x86_avx512_q4_K_p16_tile(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                                  int nr, int nc) {
    p16_tile(true, n, s, bs, x, bx, y, by, nr, nc);
}
