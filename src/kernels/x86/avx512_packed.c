/*
 * avx512_packed.c — AVX-512 VNNI product of the packed Q4_0 layout
 * (packed.h, SLM_LAYOUT_Q4_0_P16) with Q8_0 activations.
 *
 * A panel block is 288 contiguous bytes: 16 scales, then four vectors of
 * nibbles whose dword lanes are the panel's rows. Per block the four
 * vectors are split into eight quad vectors (low nibbles: quads 0..3, high
 * nibbles: quads 4..7) once, and every column of the call is dotted with
 * them: eight VPDPBUSD with the column's quads broadcast from memory, the
 * chain started from the column's offset correction (-8 × the sum of its
 * 32 quants, computed once per call), then one convert and one FMA per
 * column give 16 rows' partial sums. Against the file layout this drops
 * the per-group permutes and the horizontal sums, and the unpacking is
 * shared by all columns (continuous batching's decode steps).
 *
 * Loop order: columns in groups of up to GROUP_COLS whose corrections and
 * scales are prepared for a range of blocks; per panel, the columns in
 * register groups of up to 8 walk the range; so a panel is read from
 * memory once for up to 16 columns and stays in L1/L2 for the rest. The
 * sums follow packed.h's definition exactly (chunks of SLM_PACK_KB
 * blocks, each FMA-accumulated from zero, chunks added in order), so the
 * result equals the scalar reference bit for bit.
 */
#include <immintrin.h>

#include "kernels/dispatch.h"
#include "kernels/packed.h"
#include "kernels/x86/avx512_util.h"

#define PB 288                 /* bytes per panel block                        */
#define PREP_CELLS 8192        /* (column, block) pairs prepared at a time     */
#define PF_AHEAD (PB * 24)     /* prefetch distance in the panel stream        */

typedef struct colprep {
    int32_t corr[PREP_CELLS];  /* -8 * sum of a block's activation quants      */
    float dy[PREP_CELLS];      /* the block's activation scale                 */
} colprep;

/* C columns (register group) against one panel over blocks [0, nblk) of a
 * prepared range. yq[c]: column c's block 0 of the range; cp/stride: its
 * prepared values; s[c*bs + r] receives row r's sum, added to when `cont`
 * (the range continues a row whose earlier chunks are in s). */
SLM_INLINE void panel_range(const int C, const uint8_t *P, int nblk, const uint8_t *const *yq, const int32_t *corr,
                            const float *dy, int stride, float *s, size_t bs, bool cont) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 tot[8];
    UNROLL for (int c = 0; c < C; c++) tot[c] = cont ? _mm512_loadu_ps(s + (size_t)c * bs) : _mm512_setzero_ps();
    for (int k0 = 0; k0 < nblk; k0 += SLM_PACK_KB) {
        const int k1 = nblk - k0 < SLM_PACK_KB ? nblk : k0 + SLM_PACK_KB;
        __m512 acc[8];
        UNROLL for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
        for (int b = k0; b < k1; b++) {
            const uint8_t *pb = P + (size_t)b * PB;
            UNROLL for (int l = 0; l < 5; l++) _mm_prefetch((const char *)pb + PF_AHEAD + 64 * l, _MM_HINT_T0);
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
                __m512i is = _mm512_set1_epi32(corr[c * stride + b]), is1 = _mm512_setzero_si512();
                UNROLL for (int j = 0; j < 8; j += 2) {
                    is = _mm512_dpbusd_epi32(is, q[j], bcast32(yb + 4 * j));
                    is1 = _mm512_dpbusd_epi32(is1, q[j + 1], bcast32(yb + 4 * j + 4));
                }
                is = _mm512_add_epi32(is, is1);
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(d, _mm512_set1_ps(dy[c * stride + b])),
                                         acc[c]);
            }
        }
        /* chunk 0 of a row is its sum so far; later chunks add in order */
        UNROLL for (int c = 0; c < C; c++) tot[c] = (k0 == 0 && !cont) ? acc[c] : _mm512_add_ps(tot[c], acc[c]);
    }
    UNROLL for (int c = 0; c < C; c++) _mm512_storeu_ps(s + (size_t)c * bs, tot[c]);
}

void slm_x86_avx512_q4_0_p16_tile(int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by,
                                  int nr, int nc) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK4_0;
    const int np = nr / SLM_PACK_ROWS;
    const size_t pbytes = (size_t)SLM_PACK_ROWS * bx;
    /* decode steps (few columns): every block of a row at once, so each
     * panel streams from memory once; prompts: 128 columns x 64 blocks */
    const int gcols = nc <= 16 ? 16 : 128;
    const int gblk = PREP_CELLS / gcols;   /* a multiple of SLM_PACK_KB */
    static __thread colprep cp;
    for (int c0 = 0; c0 < nc; c0 += gcols) {
        const int ncc = nc - c0 < gcols ? nc - c0 : gcols;
        for (int64_t b0 = 0; b0 < nb; b0 += gblk) {
            const int nblk = nb - b0 < gblk ? (int)(nb - b0) : gblk;
            for (int c = 0; c < ncc; c++) {
                const uint8_t *yc = y + (size_t)(c0 + c) * by + (size_t)b0 * sizeof(block_q8_0);
                for (int b = 0; b < nblk; b++) {
                    const uint8_t *yb = yc + (size_t)b * sizeof(block_q8_0);
                    cp.corr[c * gblk + b] = -8 * sum_i8x32(yb + 2);
                    cp.dy[c * gblk + b] = h2f(ld16(yb));
                }
            }
            for (int p = 0; p < np; p++) {
                const uint8_t *P = x + (size_t)p * pbytes + (size_t)b0 * PB;
                for (int c1 = 0; c1 < ncc; c1 += 8) {
                    const int k = ncc - c1 < 8 ? ncc - c1 : 8;
                    const uint8_t *yq[8];
                    for (int c = 0; c < k; c++) yq[c] = y + (size_t)(c0 + c1 + c) * by + (size_t)b0 * sizeof(block_q8_0);
                    const int32_t *corr = cp.corr + c1 * gblk;
                    const float *dy = cp.dy + c1 * gblk;
                    float *sc = s + (size_t)(c0 + c1) * bs + (size_t)p * SLM_PACK_ROWS;
                    const bool cont = b0 > 0;
                    switch (k) {   /* constant column counts: registers, not memory */
                    case 1: panel_range(1, P, nblk, yq, corr, dy, gblk, sc, bs, cont); break;
                    case 2: panel_range(2, P, nblk, yq, corr, dy, gblk, sc, bs, cont); break;
                    case 3: panel_range(3, P, nblk, yq, corr, dy, gblk, sc, bs, cont); break;
                    case 4: panel_range(4, P, nblk, yq, corr, dy, gblk, sc, bs, cont); break;
                    case 5: panel_range(5, P, nblk, yq, corr, dy, gblk, sc, bs, cont); break;
                    case 6: panel_range(6, P, nblk, yq, corr, dy, gblk, sc, bs, cont); break;
                    case 7: panel_range(7, P, nblk, yq, corr, dy, gblk, sc, bs, cont); break;
                    default: panel_range(8, P, nblk, yq, corr, dy, gblk, sc, bs, cont); break;
                    }
                }
            }
        }
    }
}
