/*
 * avx512.c — AVX-512 (F/BW/VL/DQ + VNNI) kernels for the float types, the
 * 32-element formats and the activation quantizers. K-quants are in
 * avx512_k.c. Compiled with the AVX-512 flags; installed by dispatch.c only
 * on CPUs that have them.
 *
 * Activation quantizers (Q8_0, Q8_1, Q8_K) write the same bytes as the
 * reference: the same float operations in the same order per element, C's
 * roundf (half away from zero) emulated exactly for Q8_0/Q8_1, the
 * current rounding mode (nearest even) for Q8_K, and NaN handled as the
 * reference does (ignored by the block maximum; quantized to 0 for Q8_0/1
 * and to -127 for Q8_K).
 *
 * Integer dot products use VPDPBUSD, which multiplies unsigned bytes by
 * signed bytes. Weights are therefore unpacked to unsigned quants (Q4_0
 * q+8, Q5_0 q+16, Q8_0 q+128 by flipping the sign bit) and the offset is
 * taken off with a second VPDPBUSD of the offset against the activations:
 *   sum((q - o) * y) = sum(q * y) - sum(o * y).
 * Blocks are processed in pairs (64 bytes of quants per vector); the
 * pair's two fp16 scale products are spread over the lanes that hold each
 * block's partial sums, and the float accumulation happens per lane, with
 * one horizontal sum per row at the end.
 *
 * Tiles (vec_dot_tile) for many columns use the row-panel layout of
 * avx512_util.h: 16 rows' quads transposed so that a column's quad is
 * broadcast and one VPDPBUSD chain yields 16 rows' sums. Panels cover a
 * chunk of KB32 blocks of NP panels (64 rows), small enough for L1, and
 * every column of the tile is run against them before the next chunk;
 * partial sums go to s. Float types tile R x C rows and columns in
 * registers instead.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/x86/avx512_util.h"
#include "util/fp16.h"

/* ---- activation quantizers ------------------------------------------- */

/* The reference's round_q8: NaN -> 0, clamp to [-127, 127], then roundf
 * (half away from zero): truncate |v| and add one where the dropped
 * fraction is >= 0.5 (both steps exact in float). */
SLM_INLINE __m512i round_q8(__m512 v) {
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
    __m512 a = _mm512_abs_ps(v);
    __m512 t = _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(a, t), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    t = _mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0f));
    __m512i q = _mm512_cvttps_epi32(t);
    __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    q = _mm512_mask_sub_epi32(q, neg, _mm512_setzero_si512(), q);
    return _mm512_maskz_mov_epi32((__mmask16)~nan, q);
}

/* max |x| over 32 floats, NaN ignored as fmaxf does (VMAXPS returns its
 * second operand when either is NaN). */
SLM_INLINE float absmax32(const float *x) {
    __m512 m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x)), _mm512_setzero_ps());
    m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16)), m);
    return _mm512_reduce_max_ps(m);
}

/* Quantizes 32 floats with inverse scale id into q; returns sum(q). */
SLM_INLINE int quant32(const float *x, float id, int8_t *q) {
    __m512 vid = _mm512_set1_ps(id);
    __m512i q0 = round_q8(_mm512_mul_ps(_mm512_loadu_ps(x), vid));
    __m512i q1 = round_q8(_mm512_mul_ps(_mm512_loadu_ps(x + 16), vid));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(q1));
    return _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
}

static void q8_0_from_float(const float *x, void *vy, int64_t n) {
    block_q8_0 *b = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float d = absmax32(x) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = slm_f32_to_fp16(d);
        quant32(x, id, b[i].qs);
    }
}

static void q8_1_from_float(const float *x, void *vy, int64_t n) {
    block_q8_1 *b = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float d = absmax32(x) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = slm_f32_to_fp16(d);
        int sum = quant32(x, id, b[i].qs);
        b[i].s = slm_f32_to_fp16((float)sum * d);
    }
}

/* Q8_K: the element of largest magnitude (the first one, as the reference
 * scans) maps to -127; quants round to nearest even (VCVTPS2DQ in the
 * default rounding mode, as the reference's 1.5*2^23 trick); NaN -> -127
 * (VMAXPS returns the bound). */
static void q8_K_from_float(const float *x, void *vy, int64_t n) {
    block_q8_K *b = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < QK_K / 16; k++) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)), m);
        float amax = _mm512_reduce_max_ps(m);
        memset(b[i].bsums, 0, sizeof b[i].bsums);
        if (amax == 0.0f) {
            b[i].d = 0.0f;
            memset(b[i].qs, 0, sizeof b[i].qs);
            continue;
        }
        float vmax = 0.0f;
        for (int k = 0; k < QK_K / 16; k++) {
            __mmask16 eq = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (eq) {
                vmax = x[16 * k + __builtin_ctz(eq)];
                break;
            }
        }
        float iscale = -127.0f / vmax;
        __m512 vs = _mm512_set1_ps(iscale);
        for (int k = 0; k < QK_K / 16; k++) {
            __m512 v = _mm512_mul_ps(vs, _mm512_loadu_ps(x + 16 * k));
            v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
            __m512i q = _mm512_cvtps_epi32(v);
            _mm_storeu_si128((__m128i *)(b[i].qs + 16 * k), _mm512_cvtepi32_epi8(q));
            b[i].bsums[k] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        b[i].d = 1.0f / iscale;
    }
}

/* Software prefetch of the weight streams: distance in bytes ahead (rows
 * follow each other in memory, so this runs into the next rows) and cache
 * level. Measured on Zen 4: prefetching far ahead into L2 keeps the
 * streams fed better than the hardware prefetcher alone. */
#ifndef PF_DIST
#define PF_DIST 8192
#endif
#ifndef PF_HINT
#define PF_HINT _MM_HINT_T1
#endif

/* ---- float types: F32, F16, BF16 rows against F32 activations -------- */

enum { FK_F32, FK_F16, FK_BF16 };

/* 16 elements of a float-type row from element i on, as floats; k masks
 * the tail (elements past it read as 0 and are never touched). */
SLM_INLINE __m512 fload(int kind, const void *x, int64_t i, __mmask16 k) {
    if (kind == FK_F32) return _mm512_maskz_loadu_ps(k, (const float *)x + i);
    __m256i h = _mm256_maskz_loadu_epi16(k, (const uint16_t *)x + i);
    if (kind == FK_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

SLM_INLINE __m512 fload_full(int kind, const void *x, int64_t i) {
    if (kind == FK_F32) return _mm512_loadu_ps((const float *)x + i);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)x + i));
    if (kind == FK_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __mmask16 tail_mask(int64_t left) { return (__mmask16)((1u << left) - 1); }


/* R rows x C columns held in R*C accumulators; each x vector is converted
 * once for C columns and each y vector loaded once for R rows. Every dot
 * product is summed in the same order whatever R and C are (one
 * accumulator, 16 elements a step, the masked tail, one horizontal sum),
 * so a tile, a row at a time and vec_dot give identical results: a batch
 * of tokens and the same tokens one by one agree to the last bit. With one
 * column (generation), rows stream in pairs and are prefetched. */
SLM_INLINE void ftile_rc(int kind, int R, int C, int64_t n, float *s, size_t bs, const uint8_t *x, size_t bx,
                         const uint8_t *y, size_t by) {
    __m512 acc[4][6];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    int64_t i = 0;
    const size_t esize = kind == FK_F32 ? 4 : 2;
    for (; i + 16 <= n; i += 16) {
        __m512 xv[4];
        if (C == 1 && i % 32 == 0)
            UNROLL for (int r = 0; r < R; r++)
                _mm_prefetch((const char *)(x + r * bx) + (size_t)i * esize + PF_DIST, PF_HINT);
        UNROLL for (int r = 0; r < R; r++) xv[r] = fload_full(kind, x + r * bx, i);
        UNROLL for (int c = 0; c < C; c++) {
            __m512 yv = _mm512_loadu_ps((const float *)(y + c * by) + i);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(xv[r], yv, acc[r][c]);
        }
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 xv[4];
        UNROLL for (int r = 0; r < R; r++) xv[r] = fload(kind, x + r * bx, i, k);
        UNROLL for (int c = 0; c < C; c++) {
            __m512 yv = _mm512_maskz_loadu_ps(k, (const float *)(y + c * by) + i);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(xv[r], yv, acc[r][c]);
        }
    }
    UNROLL for (int c = 0; c < C; c++)
        UNROLL for (int r = 0; r < R; r++) s[c * bs + r] = _mm512_reduce_add_ps(acc[r][c]);
}

/* Dispatches a ragged edge (R in 1..4, C in 1..6) to an instantiation. */
SLM_INLINE void ftile_edge(int kind, int R, int C, int64_t n, float *s, size_t bs, const uint8_t *x, size_t bx,
                           const uint8_t *y, size_t by) {
#define FT(r, c) case (r) * 8 + (c): ftile_rc(kind, r, c, n, s, bs, x, bx, y, by); break;
    switch (R * 8 + C) {
        FT(1, 1) FT(1, 2) FT(1, 3) FT(1, 4) FT(1, 5) FT(1, 6) FT(2, 1) FT(2, 2) FT(2, 3) FT(2, 4) FT(2, 5) FT(2, 6)
        FT(3, 1) FT(3, 2) FT(3, 3) FT(3, 4) FT(3, 5) FT(3, 6) FT(4, 1) FT(4, 2) FT(4, 3) FT(4, 4) FT(4, 5) FT(4, 6)
    }
#undef FT
}

SLM_INLINE void fdot(int kind, int64_t n, float *s, const void *x, const void *y) {
    ftile_rc(kind, 1, 1, n, s, 0, x, 0, y, 0);
}

static void f32_vec_dot(int64_t n, float *s, const void *x, const void *y) { fdot(FK_F32, n, s, x, y); }
static void f16_vec_dot(int64_t n, float *s, const void *x, const void *y) { fdot(FK_F16, n, s, x, y); }
static void bf16_vec_dot(int64_t n, float *s, const void *x, const void *y) { fdot(FK_BF16, n, s, x, y); }

SLM_INLINE void ftile(int kind, int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by,
                      int nr, int nc) {
    const uint8_t *x = vx, *y = vy;
    if (nc < 4) {   /* few columns: rows in pairs, two memory streams */
        for (int c = 0; c < nc; c++) {
            int r = 0;
            for (; r + 2 <= nr; r += 2)
                ftile_rc(kind, 2, 1, n, s + (size_t)c * bs + r, bs, x + (size_t)r * bx, bx, y + (size_t)c * by, by);
            if (r < nr) ftile_rc(kind, 1, 1, n, s + (size_t)c * bs + r, bs, x + (size_t)r * bx, bx, y + (size_t)c * by, by);
        }
        return;
    }
    for (int r = 0; r < nr; r += 4)
        for (int c = 0; c < nc; c += 6) {   /* 4 x 6 accumulators: 10 loads per 24 FMAs */
            int R = nr - r < 4 ? nr - r : 4, C = nc - c < 6 ? nc - c : 6;
            ftile_edge(kind, R, C, n, s + (size_t)c * bs + r, bs, x + (size_t)r * bx, bx, y + (size_t)c * by, by);
        }
}

static void f32_tile(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nr, int nc) {
    ftile(FK_F32, n, s, bs, x, bx, y, by, nr, nc);
}
static void f16_tile(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nr, int nc) {
    ftile(FK_F16, n, s, bs, x, bx, y, by, nr, nc);
}
static void bf16_tile(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nr,
                      int nc) {
    ftile(FK_BF16, n, s, bs, x, bx, y, by, nr, nc);
}

/* ---- 32-element formats: one row · one column ------------------------ */

/* The formats, as template parameters of the always-inline kernels. */
enum { K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q8_0 };

/* Bytes per block of the row type and of its activation type, where the
 * activation quants start, and the offset the unsigned weight quants
 * carry (0: none; the _1 formats add m * s instead). */
static inline size_t xsize(int kind) {
    return kind == K_Q4_0 ? sizeof(block_q4_0) : kind == K_Q4_1 ? sizeof(block_q4_1)
         : kind == K_Q5_0 ? sizeof(block_q5_0) : kind == K_Q5_1 ? sizeof(block_q5_1) : sizeof(block_q8_0);
}
static inline int is_1(int kind) { return kind == K_Q4_1 || kind == K_Q5_1; }
static inline size_t ysize(int kind) { return is_1(kind) ? sizeof(block_q8_1) : sizeof(block_q8_0); }
static inline size_t yqs(int kind) { return is_1(kind) ? 4 : 2; }
static inline int offset(int kind) { return kind == K_Q4_0 ? 8 : kind == K_Q5_0 ? 16 : kind == K_Q8_0 ? 128 : 0; }
/* where the 16 bytes of nibbles (or the 32 quants of Q8_0) start */
static inline size_t xqs(int kind) {
    return kind == K_Q4_0 ? 2 : kind == K_Q4_1 ? 4 : kind == K_Q5_0 ? 6 : kind == K_Q5_1 ? 8 : 2;
}

/* One block's integer sum (the last blocks of a row, fewer than 4). */
SLM_INLINE int block_isum(int kind, const uint8_t *xb, const uint8_t *yb) {
    __m256i yv = _mm256_loadu_si256((const __m256i *)(yb + yqs(kind))), xv;
    if (kind == K_Q8_0) {
        xv = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(xb + 2)), _mm256_set1_epi8((char)0x80));
    } else {
        __m128i q = _mm_loadu_si128((const __m128i *)(xb + xqs(kind)));
        __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
        xv = _mm256_and_si256(t, _mm256_set1_epi8(0x0f));
        if (kind == K_Q5_0 || kind == K_Q5_1)
            xv = _mm256_mask_add_epi8(xv, (__mmask32)(uint32_t)ld32(xb + xqs(kind) - 4), xv, _mm256_set1_epi8(16));
    }
    __m256i z = _mm256_setzero_si256();
    __m256i d = _mm256_dpbusd_epi32(z, xv, yv);
    if (offset(kind)) d = _mm256_sub_epi32(d, _mm256_dpbusd_epi32(z, _mm256_set1_epi8((char)offset(kind)), yv));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s4);
}

/* ---- 32-element formats: rows against one column ---------------------
 *
 * Groups of 4 blocks. A group of nibble blocks is read with two loads
 * (64 bytes, then the rest of the group under a mask) and VPERMT2W packs
 * its quants into one vector [b0 | b1 | b2 | b3] (16 bytes each; every
 * field of these formats starts at an even offset) and spreads the four
 * fp16 scales over the lanes that will hold each block's sums. The low
 * nibbles (elements 0..15 of each block) and high nibbles (16..31) are
 * chained into one VPDPBUSD accumulator, so lanes 4k..4k+3 belong to block
 * k. Q8_0 groups are two vectors [b0 | b1], [b2 | b3] (8 lanes a block).
 *
 * The column is arranged once per strip (ycol: per group the quants in the
 * same order, the offset correction, the scales spread the same way) and
 * then every row is streamed against it, one row after the other, which is
 * the order the hardware prefetcher follows best.
 */

typedef struct ygroup {
    __m512i v[2];    /* the column's quants, arranged as the rows'           */
    __m512i neg[2];  /* -offset * sum of the 4 activations under each lane   */
    __m512 dy[2];    /* the column's d spread like the rows' lanes           */
    __m512 s;        /* _1 formats: s of block k in lane 4k, 0 elsewhere     */
} ygroup;

/* Word indices of the group fields for VPERMT2W over (A = bytes 0..63,
 * B = bytes 64.. of the group). */
typedef struct xidx {
    __m512i qs;        /* 4 x 16 bytes of packed quants (nibble formats) */
    __m512i d[2], m;   /* fp16 scales to lanes (words 0..15)             */
    __m512i qh[2];     /* Q5: low and high words of each block's qh      */
} xidx;

static inline int words(int kind) { return (int)xsize(kind) / 2; }

SLM_INLINE void xidx_init(int kind, xidx *ix) {
    int16_t q[32], d0[32], d1[32], m[32], h0[32], h1[32];
    const int W = words(kind), qw = (int)xqs(kind) / 2;
    for (int j = 0; j < 32; j++) {
        q[j] = (int16_t)(W * (j / 8) + qw + j % 8);
        int per = kind == K_Q8_0 ? 8 : 4;   /* lanes per block */
        d0[j] = (int16_t)(j < 16 ? W * (j / per) : 0);
        d1[j] = (int16_t)(j < 16 ? W * (2 + j / per) : 0);
        m[j] = (int16_t)(j < 16 ? W * (j / 4) + 1 : 0);
        h0[j] = (int16_t)(j < 4 ? W * j + qw - 2 : 0);
        h1[j] = (int16_t)(j < 4 ? W * j + qw - 1 : 0);
    }
    ix->qs = _mm512_loadu_si512(q);
    ix->d[0] = _mm512_loadu_si512(d0);
    ix->d[1] = _mm512_loadu_si512(d1);
    ix->m = _mm512_loadu_si512(m);
    ix->qh[0] = _mm512_loadu_si512(h0);
    ix->qh[1] = _mm512_loadu_si512(h1);
}

SLM_INLINE __m512 halves_to_lanes(__m512i a, __m512i idx, __m512i b) {
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(a, idx, b)));
}

SLM_INLINE void group_y(int kind, const uint8_t *y0, size_t ys, ygroup *g) {
    const size_t o = yqs(kind);
    const __m512i z = _mm512_setzero_si512();
    float d[4], sv[16];
    for (int k = 0; k < 4; k++) d[k] = h2f(ld16(y0 + (size_t)k * ys));
    if (kind == K_Q8_0) {
        for (int h = 0; h < 2; h++) {
            __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(y0 + 2 * h * ys + o)));
            g->v[h] = _mm512_inserti64x4(v, _mm256_loadu_si256((const __m256i *)(y0 + (2 * h + 1) * ys + o)), 1);
            g->neg[h] = _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, _mm512_set1_epi8((char)0x80), g->v[h]));
            g->dy[h] = _mm512_insertf32x8(_mm512_set1_ps(d[2 * h]), _mm256_set1_ps(d[2 * h + 1]), 1);
        }
        return;
    }
    for (int h = 0; h < 2; h++) {
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(y0 + o + 16 * h)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(y0 + ys + o + 16 * h)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(y0 + 2 * ys + o + 16 * h)), 2);
        g->v[h] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(y0 + 3 * ys + o + 16 * h)), 3);
    }
    g->neg[0] = z;
    if (offset(kind)) {
        const __m512i off = _mm512_set1_epi8((char)offset(kind));
        g->neg[0] = _mm512_sub_epi32(z, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, off, g->v[0]), off, g->v[1]));
    }
    g->dy[0] = _mm512_setr_ps(d[0], d[0], d[0], d[0], d[1], d[1], d[1], d[1], d[2], d[2], d[2], d[2], d[3], d[3], d[3], d[3]);
    if (is_1(kind)) {
        for (int j = 0; j < 16; j++) sv[j] = j % 4 ? 0.0f : h2f(ld16(y0 + (size_t)(j / 4) * ys + 2));
        g->s = _mm512_loadu_ps(sv);
    }
}

/* A row's group of 4 blocks, unpacked once so that several columns can be
 * dotted with it (group_dot_u). Q8_0: the two 256-bit halves' quants
 * (flipped to unsigned) and their scales; nibble formats: the low and high
 * quants and the scales (and mins) spread over the block lanes. */
typedef struct xgroup {
    __m512i q[2];
    __m512 d[2];
    __m512 m;
} xgroup;

SLM_INLINE void group_unpack(int kind, const uint8_t *x0, const xidx *ix, xgroup *u) {
    const size_t gb = 4 * xsize(kind);   /* bytes in a group */
    __m512i A = _mm512_loadu_si512(x0);
    if (kind == K_Q8_0) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        __m512i B = _mm512_loadu_si512(x0 + 64);
        for (int h = 0; h < 2; h++) {
            __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(x0 + 68 * h + 2)));
            v = _mm512_inserti64x4(v, _mm256_loadu_si256((const __m256i *)(x0 + 68 * h + 36)), 1);
            u->q[h] = _mm512_xor_si512(v, flip);
            u->d[h] = halves_to_lanes(A, ix->d[h], B);
        }
        return;
    }
    __m512i B;   /* the group's bytes past 64: 8, 16, 24 or 32 */
    if (gb - 64 == 8) B = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(x0 + 64)));
    else if (gb - 64 == 16) B = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(x0 + 64)));
    else if (gb - 64 == 32) B = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(x0 + 64)));
    else B = _mm512_maskz_loadu_epi8(((__mmask64)1 << (gb - 64)) - 1, x0 + 64);
    __m512i v = _mm512_permutex2var_epi16(A, ix->qs, B);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    if (kind == K_Q5_0 || kind == K_Q5_1) {
        const __m512i sixteen = _mm512_set1_epi8(16);
        uint64_t ml = (uint64_t)_mm_cvtsi128_si64(_mm512_castsi512_si128(_mm512_permutex2var_epi16(A, ix->qh[0], B)));
        uint64_t mh = (uint64_t)_mm_cvtsi128_si64(_mm512_castsi512_si128(_mm512_permutex2var_epi16(A, ix->qh[1], B)));
        lo = _mm512_mask_add_epi8(lo, _cvtu64_mask64(ml), lo, sixteen);
        hi = _mm512_mask_add_epi8(hi, _cvtu64_mask64(mh), hi, sixteen);
    }
    u->q[0] = lo;
    u->q[1] = hi;
    /* the scales of Q4_0/Q4_1 groups all lie in the first 64 bytes */
    u->d[0] = kind == K_Q4_0 || kind == K_Q4_1 ? _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(ix->d[0], A)))
                                               : halves_to_lanes(A, ix->d[0], B);
    if (is_1(kind))
        u->m = kind == K_Q4_1 ? _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(ix->m, A)))
                              : halves_to_lanes(A, ix->m, B);
}

/* acc += an unpacked row group against the column group yg. */
SLM_INLINE __m512 group_dot_u(int kind, const xgroup *u, const ygroup *yg, __m512 acc) {
    if (kind == K_Q8_0) {
        for (int h = 0; h < 2; h++) {
            __m512i is = _mm512_dpbusd_epi32(yg->neg[h], u->q[h], yg->v[h]);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(u->d[h], yg->dy[h]), acc);
        }
        return acc;
    }
    __m512i is = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(yg->neg[0], u->q[0], yg->v[0]), u->q[1], yg->v[1]);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(u->d[0], yg->dy[0]), acc);
    if (is_1(kind)) acc = _mm512_fmadd_ps(u->m, yg->s, acc);
    return acc;
}

/* acc += a row's group of 4 blocks from x0 against the column group yg. */
SLM_INLINE __m512 group_dot(int kind, const uint8_t *x0, const xidx *ix, const ygroup *yg, __m512 acc) {
    xgroup u;
    group_unpack(kind, x0, ix, &u);
    return group_dot_u(kind, &u, yg, acc);
}

/* The arranged activations of the columns being processed: YBUF_BLOCKS
 * blocks shared by all of them, so that one column (generation) gets
 * strips of 512 blocks (16384 elements: every row of common models in one
 * pass, one unbroken stream per row) and 16 columns get 32 blocks each. */
#define YBUF_BLOCKS 512
typedef struct ybuf {
    ygroup g[YBUF_BLOCKS / 4];
    float dy[YBUF_BLOCKS];
    float sy[YBUF_BLOCKS];
} ybuf;

/* One column's strip inside a ybuf. */
typedef struct ycol {
    ygroup *g;         /* the strip's groups                    */
    float *dy, *sy;    /* scales of the last 1..3 blocks of a row */
} ycol;

SLM_INLINE void ycol_fill(int kind, ycol *c, const uint8_t *y, int nblk) {
    const size_t ys = ysize(kind);
    for (int g = 0; 4 * g + 4 <= nblk; g++) group_y(kind, y + (size_t)(4 * g) * ys, ys, &c->g[g]);
    for (int j = nblk / 4 * 4; j < nblk; j++) {
        c->dy[j] = h2f(ld16(y + (size_t)j * ys));
        if (is_1(kind)) c->sy[j] = h2f(ld16(y + (size_t)j * ys + 2));
    }
}

/* One row's strip (nblk blocks from x) against a filled column strip. */
SLM_INLINE float row_dot(int kind, const uint8_t *x, const xidx *ix, const ycol *c, const uint8_t *y, int nblk) {
    const size_t xs = xsize(kind), ys = ysize(kind);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int g = 0;
    for (; 4 * g + 8 <= nblk; g += 2) {
        UNROLL for (int l = 0; l < (int)(8 * xs + 63) / 64; l++)
            _mm_prefetch((const char *)(x + (size_t)(4 * g) * xs + PF_DIST + 64 * l), PF_HINT);
        acc0 = group_dot(kind, x + (size_t)(4 * g) * xs, ix, &c->g[g], acc0);
        acc1 = group_dot(kind, x + (size_t)(4 * g + 4) * xs, ix, &c->g[g + 1], acc1);
    }
    if (4 * g + 4 <= nblk) {
        acc0 = group_dot(kind, x + (size_t)(4 * g) * xs, ix, &c->g[g], acc0);
        g++;
    }
    float tail = 0.0f;
    for (int j = 4 * g; j < nblk; j++) {
        const uint8_t *xj = x + (size_t)j * xs;
        tail += (float)block_isum(kind, xj, y + (size_t)j * ys) * h2f(ld16(xj)) * c->dy[j];
        if (is_1(kind)) tail += h2f(ld16(xj + 2)) * c->sy[j];
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + tail;
}

/* Horizontal sums of four vectors: lane i of the result sums v[i]. */
SLM_INLINE __m128 hsum4(const __m512 v[4]) {
    __m512 t01 = _mm512_add_ps(_mm512_unpacklo_ps(v[0], v[1]), _mm512_unpackhi_ps(v[0], v[1]));
    __m512 t23 = _mm512_add_ps(_mm512_unpacklo_ps(v[2], v[3]), _mm512_unpackhi_ps(v[2], v[3]));
    __m512 u = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t01), _mm512_castps_pd(t23))),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t01), _mm512_castps_pd(t23))));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u), _mm512_extractf32x8_ps(u, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* Four consecutive rows (bx apart), each streamed whole as row_dot does,
 * with one joint horizontal sum (interleaving the rows instead would make
 * four memory streams, which the prefetchers follow much worse). */
SLM_INLINE __m128 rows4_dot(int kind, const uint8_t *x, size_t bx, const xidx *ix, const ycol *c, const uint8_t *y,
                            int nblk) {
    const size_t xs = xsize(kind), ys = ysize(kind);
    __m512 acc[4];
    float tail[4] = { 0, 0, 0, 0 };
    UNROLL for (int r = 0; r < 4; r++) {
        const uint8_t *xr = x + (size_t)r * bx;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
        int g = 0;
        for (; 4 * g + 8 <= nblk; g += 2) {
            UNROLL for (int l = 0; l < (int)(8 * xs + 63) / 64; l++)
                _mm_prefetch((const char *)(xr + (size_t)(4 * g) * xs + PF_DIST + 64 * l), PF_HINT);
            acc0 = group_dot(kind, xr + (size_t)(4 * g) * xs, ix, &c->g[g], acc0);
            acc1 = group_dot(kind, xr + (size_t)(4 * g + 4) * xs, ix, &c->g[g + 1], acc1);
        }
        if (4 * g + 4 <= nblk) {
            acc0 = group_dot(kind, xr + (size_t)(4 * g) * xs, ix, &c->g[g], acc0);
            g++;
        }
        acc[r] = _mm512_add_ps(acc0, acc1);
        for (int j = 4 * g; j < nblk; j++) {
            const uint8_t *xj = xr + (size_t)j * xs;
            tail[r] += (float)block_isum(kind, xj, y + (size_t)j * ys) * h2f(ld16(xj)) * c->dy[j];
            if (is_1(kind)) tail[r] += h2f(ld16(xj + 2)) * c->sy[j];
        }
    }
    return _mm_add_ps(hsum4(acc), _mm_loadu_ps(tail));
}

/* R rows' strips (bx apart) against C filled column strips (R*C <= 16
 * accumulators, compile-time constants after inlining): each row group is
 * unpacked once and dotted with every column, so the unpacking is shared by
 * the columns (decode steps of several sequences). out[c*R + r] gets the
 * sum for row r, column c; the per-column arithmetic is row_dot's. */
#define GEMV_MULTI 8
SLM_INLINE void rows_cols_dot(int kind, const uint8_t *x, size_t bx, const xidx *ix, const ycol *col, const uint8_t *y,
                              size_t by, const int R, const int C, int nblk, float *out) {
    const size_t xs = xsize(kind), ys = ysize(kind);
    __m512 acc[4][GEMV_MULTI];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    int g = 0;
    for (; 4 * g + 4 <= nblk; g++) {
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *xg = x + (size_t)r * bx + (size_t)(4 * g) * xs;
            if ((g & 1) == 0)
                UNROLL for (int l = 0; l < (int)(8 * xs + 63) / 64; l++)
                    _mm_prefetch((const char *)(xg + PF_DIST + 64 * l), PF_HINT);
            xgroup u;
            group_unpack(kind, xg, ix, &u);
            UNROLL for (int c = 0; c < C; c++) acc[r][c] = group_dot_u(kind, &u, &col[c].g[g], acc[r][c]);
        }
    }
    UNROLL for (int c = 0; c < C; c++) {
        const uint8_t *yc = y + (size_t)c * by;
        UNROLL for (int r = 0; r < R; r++) {
            float tail = 0.0f;
            for (int j = 4 * g; j < nblk; j++) {
                const uint8_t *xj = x + (size_t)r * bx + (size_t)j * xs;
                tail += (float)block_isum(kind, xj, yc + (size_t)j * ys) * h2f(ld16(xj)) * col[c].dy[j];
                if (is_1(kind)) tail += h2f(ld16(xj + 2)) * col[c].sy[j];
            }
            out[c * R + r] = _mm512_reduce_add_ps(acc[r][c]) + tail;
        }
    }
}

/* nr rows against C columns: rows in fours (C <= 4) or twos, then one by
 * one; s[c*bs + r] (added to when add). */
SLM_INLINE void gemv_multi(int kind, const uint8_t *x, size_t bx, const xidx *ix, const ycol *col, const uint8_t *y,
                           size_t by, const int C, int nr, int nblk, float *s, size_t bs, bool add) {
    const int R = C <= 4 ? 4 : 2;
    float v[4 * GEMV_MULTI];
    int r = 0;
    for (; r + R <= nr; r += R) {
        rows_cols_dot(kind, x + (size_t)r * bx, bx, ix, col, y, by, R, C, nblk, v);
        for (int c = 0; c < C; c++)
            for (int i = 0; i < R; i++) s[(size_t)c * bs + r + i] = add ? s[(size_t)c * bs + r + i] + v[c * R + i] : v[c * R + i];
    }
    for (; r < nr; r++) {
        rows_cols_dot(kind, x + (size_t)r * bx, bx, ix, col, y, by, 1, C, nblk, v);
        for (int c = 0; c < C; c++) s[(size_t)c * bs + r] = add ? s[(size_t)c * bs + r] + v[c] : v[c];
    }
}

/* s[c*bs + r] = row r · column c, for a few columns (GEMV_MAX_COLS): per
 * strip of blocks every column strip is arranged once, then four rows at a
 * time are dotted with all the columns while those rows' strip is in L1, so
 * the weights are read from memory once whatever the number of columns
 * (continuous batching's decode steps). */
#define GEMV_MAX_COLS 16
SLM_INLINE void gemv32(int kind, int64_t n, float *s, size_t bs, const uint8_t *x, size_t bx, const uint8_t *y, size_t by,
                       int nr, int nc) {
    const int64_t nb = n / 32;
    xidx ix;
    xidx_init(kind, &ix);
    ybuf buf;
    ycol col[GEMV_MAX_COLS];
    for (int c0 = 0; c0 < nc; c0 += GEMV_MAX_COLS) {
        int ncc = nc - c0 < GEMV_MAX_COLS ? nc - c0 : GEMV_MAX_COLS;
        const int strip = YBUF_BLOCKS / ncc / 4 * 4;   /* blocks per column strip, >= 32 */
        for (int c = 0; c < ncc; c++) col[c] = (ycol){ buf.g + c * strip / 4, buf.dy + c * strip, buf.sy + c * strip };
        for (int64_t b0 = 0; b0 < nb; b0 += strip) {
            int nblk = nb - b0 < strip ? (int)(nb - b0) : strip;
            for (int c = 0; c < ncc; c++)
                ycol_fill(kind, &col[c], y + (size_t)(c0 + c) * by + (size_t)b0 * ysize(kind), nblk);
            int r = 0;
            if (ncc > 1) {   /* several columns: unpack each row group once */
                for (int c1 = 0; c1 < ncc; c1 += GEMV_MULTI) {
                    int k = ncc - c1 < GEMV_MULTI ? ncc - c1 : GEMV_MULTI;
                    const uint8_t *xs0 = x + (size_t)b0 * xsize(kind);
                    const uint8_t *yc = y + (size_t)(c0 + c1) * by + (size_t)b0 * ysize(kind);
                    float *sc = s + (size_t)(c0 + c1) * bs;
                    switch (k) {   /* constant column counts: registers, not memory */
                    case 1: gemv_multi(kind, xs0, bx, &ix, &col[c1], yc, by, 1, nr, nblk, sc, bs, b0 > 0); break;
                    case 2: gemv_multi(kind, xs0, bx, &ix, &col[c1], yc, by, 2, nr, nblk, sc, bs, b0 > 0); break;
                    case 3: gemv_multi(kind, xs0, bx, &ix, &col[c1], yc, by, 3, nr, nblk, sc, bs, b0 > 0); break;
                    case 4: gemv_multi(kind, xs0, bx, &ix, &col[c1], yc, by, 4, nr, nblk, sc, bs, b0 > 0); break;
                    case 5: gemv_multi(kind, xs0, bx, &ix, &col[c1], yc, by, 5, nr, nblk, sc, bs, b0 > 0); break;
                    case 6: gemv_multi(kind, xs0, bx, &ix, &col[c1], yc, by, 6, nr, nblk, sc, bs, b0 > 0); break;
                    case 7: gemv_multi(kind, xs0, bx, &ix, &col[c1], yc, by, 7, nr, nblk, sc, bs, b0 > 0); break;
                    default: gemv_multi(kind, xs0, bx, &ix, &col[c1], yc, by, 8, nr, nblk, sc, bs, b0 > 0); break;
                    }
                }
                continue;
            }
            for (; r + 4 <= nr; r += 4) {
                const uint8_t *xr = x + (size_t)r * bx + (size_t)b0 * xsize(kind);
                for (int c = 0; c < ncc; c++) {
                    const uint8_t *yc = y + (size_t)(c0 + c) * by + (size_t)b0 * ysize(kind);
                    float *sc = s + (size_t)(c0 + c) * bs;
                    __m128 v = rows4_dot(kind, xr, bx, &ix, &col[c], yc, nblk);
                    _mm_storeu_ps(sc + r, b0 ? _mm_add_ps(_mm_loadu_ps(sc + r), v) : v);
                }
            }
            for (; r < nr; r++)
                for (int c = 0; c < ncc; c++) {
                    const uint8_t *yc = y + (size_t)(c0 + c) * by + (size_t)b0 * ysize(kind);
                    float *sc = s + (size_t)(c0 + c) * bs;
                    float v = row_dot(kind, x + (size_t)r * bx + (size_t)b0 * xsize(kind), &ix, &col[c], yc, nblk);
                    sc[r] = b0 ? sc[r] + v : v;
                }
        }
    }
}

SLM_INLINE void dot32(int kind, int64_t n, float *s, const void *x, const void *y) {
    gemv32(kind, n, s, 0, x, 0, y, 0, 1, 1);
}

static void q4_0_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q4_0, n, s, x, y); }
static void q4_1_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q4_1, n, s, x, y); }
static void q5_0_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q5_0, n, s, x, y); }
static void q5_1_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q5_1, n, s, x, y); }
static void q8_0_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q8_0, n, s, x, y); }

/* ---- 32-element formats: tiles ---------------------------------------- */

#define KB32 8          /* blocks per K-chunk                        */
#define NP 4            /* panels per row group (64 rows)            */
#define PANEL_MIN_COLS 16 /* fewer columns: gemv32, weights read once for all columns */

typedef struct panel32 {
    __m512i q[KB32][8];  /* quad j of block b, lane r = row r        */
    __m512 d[KB32];      /* the rows' d                              */
    __m512 m[KB32];      /* the rows' m (_1 formats)                 */
} panel32;

/* 16 halves at rows[r] + off as floats, lane r = row r. */
SLM_INLINE __m512 rows_f16(const uint8_t *const rows[16], size_t off) {
    uint16_t h[16];
    for (int r = 0; r < 16; r++) h[r] = ld16(rows[r] + off);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h));
}

/* Bytes b of dword lanes: 0x10 where bit b of the lane's index is set. */
SLM_INLINE __m512i bit_spread16(void) {
    return _mm512_setr_epi32(0x00000000, 0x00000010, 0x00001000, 0x00001010, 0x00100000, 0x00100010, 0x00101000,
                             0x00101010, 0x10000000, 0x10000010, 0x10001000, 0x10001010, 0x10100000, 0x10100010,
                             0x10101000, 0x10101010);
}

SLM_INLINE void panel_block(int kind, const uint8_t *const rows[16], size_t boff, __m512i q[8], __m512 *d, __m512 *m,
                            __mmask16 live) {
    __m512i w[4];
    if (kind == K_Q8_0) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        load_t16x4(rows, boff + 2, w);
        UNROLL for (int k = 0; k < 4; k++) q[k] = _mm512_xor_si512(w[k], flip);
        load_t16x4(rows, boff + 18, w);
        UNROLL for (int k = 0; k < 4; k++) q[4 + k] = _mm512_xor_si512(w[k], flip);
    } else {
        const __m512i lo = _mm512_set1_epi8(0x0f);
        load_t16x4(rows, boff + xqs(kind), w);
        UNROLL for (int k = 0; k < 4; k++) {
            q[k] = _mm512_and_si512(w[k], lo);
            q[4 + k] = _mm512_and_si512(_mm512_srli_epi32(w[k], 4), lo);
        }
        if (kind == K_Q5_0 || kind == K_Q5_1) {
            int32_t hv[16];
            for (int r = 0; r < 16; r++) hv[r] = ld32(rows[r] + boff + xqs(kind) - 4);
            __m512i hq = _mm512_loadu_si512(hv), lut = bit_spread16();
            UNROLL for (int k = 0; k < 8; k++)
                q[k] = _mm512_or_si512(q[k], _mm512_permutexvar_epi32(_mm512_srli_epi32(hq, 4 * k), lut));
        }
    }
    *d = _mm512_maskz_mov_ps(live, rows_f16(rows, boff));
    if (is_1(kind)) *m = _mm512_maskz_mov_ps(live, rows_f16(rows, boff + 2));
}

SLM_INLINE void panel_fill(int kind, panel32 *P, const uint8_t *x, size_t bx, int n_rows, int64_t b0, int kb) {
    const uint8_t *rows[16];
    panel_rows(rows, x, bx, n_rows);
    __mmask16 live = (__mmask16)(n_rows >= 16 ? 0xffff : (1u << n_rows) - 1);
    for (int b = 0; b < kb; b++) panel_block(kind, rows, (size_t)(b0 + b) * xsize(kind), P->q[b], &P->d[b], &P->m[b], live);
}

/* C columns (from yc, by bytes apart, already at block b0) against np
 * filled panels over kb blocks. A panel block's 8 quads are loaded once
 * and used for all C columns, whose quads are broadcast from memory; the
 * columns' offset corrections and scales are computed once for all panels. */
SLM_INLINE void panel_cols(int kind, int C, int np, const panel32 *P, int kb, const uint8_t *yc, size_t by, float *s,
                           size_t bs, int n_rows, int add) {
    const size_t ys = ysize(kind);
    int32_t corr[8][KB32];
    float dyv[8][KB32], syv[8][KB32];
    UNROLL for (int c = 0; c < C; c++)
        for (int b = 0; b < kb; b++) {
            const uint8_t *yb = yc + (size_t)c * by + (size_t)b * ys;
            dyv[c][b] = h2f(ld16(yb));
            corr[c][b] = offset(kind) ? -offset(kind) * sum_i8x32(yb + yqs(kind)) : 0;
            if (is_1(kind)) syv[c][b] = h2f(ld16(yb + 2));
        }
    for (int p = 0; p < np; p++) {
        __m512 acc[8];
        UNROLL for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
        for (int b = 0; b < kb; b++) {
            __m512i q[8];
            UNROLL for (int j = 0; j < 8; j++) q[j] = P[p].q[b][j];
            const __m512 dp = P[p].d[b];
            UNROLL for (int c = 0; c < C; c++) {
                const uint8_t *yq = yc + (size_t)c * by + (size_t)b * ys + yqs(kind);
                __m512i is = _mm512_set1_epi32(corr[c][b]);
                UNROLL for (int j = 0; j < 8; j++) is = _mm512_dpbusd_epi32(is, q[j], bcast32(yq + 4 * j));
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dp, _mm512_set1_ps(dyv[c][b])), acc[c]);
                if (is_1(kind)) acc[c] = _mm512_fmadd_ps(P[p].m[b], _mm512_set1_ps(syv[c][b]), acc[c]);
            }
        }
        UNROLL for (int c = 0; c < C; c++) panel_store(s + (size_t)c * bs + 16 * p, acc[c], n_rows - 16 * p, add);
    }
}

SLM_INLINE void tile32(int kind, int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by,
                       int nr, int nc) {
    const uint8_t *x = vx, *y = vy;
    if (nc < PANEL_MIN_COLS) {
        gemv32(kind, n, s, bs, x, bx, y, by, nr, nc);
        return;
    }
    const int64_t nb = n / 32;
    const size_t ys = ysize(kind);
    panel32 P[NP];
    for (int r0 = 0; r0 < nr; r0 += NP * PANEL_ROWS) {
        int rows = nr - r0 < NP * PANEL_ROWS ? nr - r0 : NP * PANEL_ROWS;
        int np = (rows + PANEL_ROWS - 1) / PANEL_ROWS;
        for (int64_t b0 = 0; b0 < nb; b0 += KB32) {
            int kb = nb - b0 < KB32 ? (int)(nb - b0) : KB32;
            for (int p = 0; p < np; p++)
                panel_fill(kind, &P[p], x + (size_t)(r0 + PANEL_ROWS * p) * bx, bx, rows - PANEL_ROWS * p, b0, kb);
            /* columns in groups of 8, then 4, 2, 1 */
            for (int c = 0; c < nc;) {
                const uint8_t *yc = y + (size_t)c * by + (size_t)b0 * ys;
                float *sc = s + (size_t)c * bs + r0;
                int left = nc - c, add = b0 > 0;
                if (left >= 8) { panel_cols(kind, 8, np, P, kb, yc, by, sc, bs, rows, add); c += 8; }
                else if (left >= 4) { panel_cols(kind, 4, np, P, kb, yc, by, sc, bs, rows, add); c += 4; }
                else if (left >= 2) { panel_cols(kind, 2, np, P, kb, yc, by, sc, bs, rows, add); c += 2; }
                else { panel_cols(kind, 1, np, P, kb, yc, by, sc, bs, rows, add); c += 1; }
            }
        }
    }
}

#define TILE32(t, K)                                                                                          \
    static void t##_tile(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, \
                         int nr, int nc) {                                                                    \
        tile32(K, n, s, bs, x, bx, y, by, nr, nc);                                                            \
    }
TILE32(q4_0, K_Q4_0)
TILE32(q4_1, K_Q4_1)
TILE32(q5_0, K_Q5_0)
TILE32(q5_1, K_Q5_1)
TILE32(q8_0, K_Q8_0)
#undef TILE32

/* ---- installation ------------------------------------------------------ */

void slm_x86_avx512_install(slm_type_traits t[SLM_N_TRAITS]) {
    t[SLM_TYPE_Q8_0].from_float = q8_0_from_float;
    t[SLM_TYPE_Q8_1].from_float = q8_1_from_float;
    t[SLM_TYPE_Q8_K].from_float = q8_K_from_float;

    t[SLM_TYPE_F32].vec_dot = f32_vec_dot;
    t[SLM_TYPE_F16].vec_dot = f16_vec_dot;
    t[SLM_TYPE_BF16].vec_dot = bf16_vec_dot;
    t[SLM_TYPE_F32].vec_dot_tile = f32_tile;
    t[SLM_TYPE_F16].vec_dot_tile = f16_tile;
    t[SLM_TYPE_BF16].vec_dot_tile = bf16_tile;

    t[SLM_TYPE_Q4_0].vec_dot = q4_0_vec_dot;
    t[SLM_TYPE_Q4_1].vec_dot = q4_1_vec_dot;
    t[SLM_TYPE_Q5_0].vec_dot = q5_0_vec_dot;
    t[SLM_TYPE_Q5_1].vec_dot = q5_1_vec_dot;
    t[SLM_TYPE_Q8_0].vec_dot = q8_0_vec_dot;
    t[SLM_TYPE_Q4_0].vec_dot_tile = q4_0_tile;
    t[SLM_TYPE_Q4_1].vec_dot_tile = q4_1_tile;
    t[SLM_TYPE_Q5_0].vec_dot_tile = q5_0_tile;
    t[SLM_TYPE_Q5_1].vec_dot_tile = q5_1_tile;
    t[SLM_TYPE_Q8_0].vec_dot_tile = q8_0_tile;
}
