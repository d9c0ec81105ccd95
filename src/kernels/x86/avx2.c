/*
 * avx2.c — AVX2 + FMA + F16C kernels for the float types, the 32-element
 * formats and the activation quantizers (K-quants: avx2_k.c). Compiled
 * with the AVX2 flags; installed by dispatch.c on CPUs that have them.
 *
 * Activation quantizers write the reference's bytes, as in avx512.c:
 * same float operations per element, roundf emulated exactly (truncate
 * |v|, add one where the dropped fraction is >= 0.5), NaN as the reference
 * treats it (VMAXPS returns its second operand when either is NaN).
 *
 * Integer dot products use VPMADDUBSW (u8 x s8 -> s16 pairs) and VPMADDWD.
 * Formats with signed quants (Q4_0 q-8, Q5_0 q-16, Q8_0) multiply |x| by
 * y with x's sign moved onto it (VPSIGNB), so that no pair can saturate
 * (|x| <= 128, |y| <= 127); the _1 formats have unsigned quants and use
 * VPMADDUBSW directly. One block (32 elements) is one vector; its 8 int32
 * partial sums are scaled by the block's dx*dy and accumulated per lane.
 *
 * Tiles hold a block of rows and columns in registers (float types 4 x 2,
 * 32-element formats 2 x 4), so that each row block is unpacked once for
 * several columns and each column block loaded once for several rows.
 * K-quants have no tile at this level; slm_matmul then calls vec_dot per
 * row and token over small row groups.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "util/fp16.h"

#define SLM_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline uint16_t ld16(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline uint32_t ld32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

static inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

/* ---- activation quantizers ------------------------------------------- */

/* The reference's round_q8: NaN -> 0, clamp to [-127, 127], roundf. */
SLM_INLINE __m256i round_q8(__m256 v) {
    __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    __m256 a = abs8(v);
    __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 up = _mm256_cmp_ps(_mm256_sub_ps(a, t), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    t = _mm256_add_ps(t, _mm256_and_ps(up, _mm256_set1_ps(1.0f)));
    t = _mm256_or_ps(t, _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));   /* sign of v */
    return _mm256_andnot_si256(_mm256_castps_si256(nan), _mm256_cvttps_epi32(t));
}

/* Four vectors of 8 int32 (each in [-127, 127]) to 32 bytes in order. */
SLM_INLINE __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i q = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* max |x| over 32 floats, NaN ignored. */
SLM_INLINE float absmax32(const float *x) {
    __m256 m = _mm256_setzero_ps();
    UNROLL for (int k = 0; k < 4; k++) m = _mm256_max_ps(abs8(_mm256_loadu_ps(x + 8 * k)), m);
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Quantizes 32 floats with inverse scale id into q; returns sum(q). */
SLM_INLINE int quant32(const float *x, float id, int8_t *q) {
    __m256 vid = _mm256_set1_ps(id);
    __m256i v[4];
    UNROLL for (int k = 0; k < 4; k++) v[k] = round_q8(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid));
    _mm256_storeu_si256((__m256i *)q, pack32(v[0], v[1], v[2], v[3]));
    return hsum8i(_mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3])));
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

/* Q8_K as the reference: first element of largest magnitude -> -127,
 * round to nearest even, NaN -> -127. */
static void q8_K_from_float(const float *x, void *vy, int64_t n) {
    block_q8_K *b = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < QK_K / 8; k++) m = _mm256_max_ps(abs8(_mm256_loadu_ps(x + 8 * k)), m);
        __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        s = _mm_max_ss(s, _mm_movehdup_ps(s));
        float amax = _mm_cvtss_f32(s);
        memset(b[i].bsums, 0, sizeof b[i].bsums);
        if (amax == 0.0f) {
            b[i].d = 0.0f;
            memset(b[i].qs, 0, sizeof b[i].qs);
            continue;
        }
        float vmax = 0.0f;
        for (int k = 0; k < QK_K / 8; k++) {
            int eq = _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(x + 8 * k)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (eq) {
                vmax = x[8 * k + __builtin_ctz((unsigned)eq)];
                break;
            }
        }
        float iscale = -127.0f / vmax;
        __m256 vs = _mm256_set1_ps(iscale);
        for (int k = 0; k < QK_K / 32; k++) {
            __m256i v[4];
            UNROLL for (int j = 0; j < 4; j++) {
                __m256 t = _mm256_mul_ps(vs, _mm256_loadu_ps(x + 32 * k + 8 * j));
                t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
                v[j] = _mm256_cvtps_epi32(t);
            }
            _mm256_storeu_si256((__m256i *)(b[i].qs + 32 * k), pack32(v[0], v[1], v[2], v[3]));
            b[i].bsums[2 * k] = (int16_t)hsum8i(_mm256_add_epi32(v[0], v[1]));
            b[i].bsums[2 * k + 1] = (int16_t)hsum8i(_mm256_add_epi32(v[2], v[3]));
        }
        b[i].d = 1.0f / iscale;
    }
}

/* ---- float types ------------------------------------------------------ */

enum { FK_F32, FK_F16, FK_BF16 };

SLM_INLINE __m256 fload(int kind, const void *x, int64_t i) {
    if (kind == FK_F32) return _mm256_loadu_ps((const float *)x + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)x + i));
    if (kind == FK_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline float fscalar(int kind, const void *x, int64_t i) {
    if (kind == FK_F32) return ((const float *)x)[i];
    uint16_t h = ((const uint16_t *)x)[i];
    return kind == FK_F16 ? h2f(h) : slm_bf16_to_f32(h);
}

/* R rows x C columns in registers (R <= 4, C <= 2). Every dot product is
 * summed in the same order whatever R and C are (one accumulator, 8
 * elements a step, then the tail in order), so tiles and vec_dot agree to
 * the last bit. */
SLM_INLINE void ftile_rc(int kind, int R, int C, int64_t n, float *s, size_t bs, const uint8_t *x, size_t bx,
                         const uint8_t *y, size_t by) {
    __m256 acc[4][2];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv[4];
        UNROLL for (int r = 0; r < R; r++) xv[r] = fload(kind, x + r * bx, i);
        UNROLL for (int c = 0; c < C; c++) {
            __m256 yv = _mm256_loadu_ps((const float *)(y + c * by) + i);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm256_fmadd_ps(xv[r], yv, acc[r][c]);
        }
    }
    UNROLL for (int c = 0; c < C; c++)
        UNROLL for (int r = 0; r < R; r++) {
            float sum = hsum8(acc[r][c]);
            for (int64_t k = i; k < n; k++) sum += fscalar(kind, x + r * bx, k) * ((const float *)(y + c * by))[k];
            s[c * bs + r] = sum;
        }
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
    for (int r = 0; r < nr; r += 4)
        for (int c = 0; c < nc; c += 2) {
            int R = nr - r < 4 ? nr - r : 4, C = nc - c < 2 ? nc - c : 2;
            float *sp = s + (size_t)c * bs + r;
            const uint8_t *xp = x + (size_t)r * bx, *yp = y + (size_t)c * by;
            switch (R * 4 + C) {
            case 4 * 4 + 2: ftile_rc(kind, 4, 2, n, sp, bs, xp, bx, yp, by); break;
            case 4 * 4 + 1: ftile_rc(kind, 4, 1, n, sp, bs, xp, bx, yp, by); break;
            case 3 * 4 + 2: ftile_rc(kind, 3, 2, n, sp, bs, xp, bx, yp, by); break;
            case 3 * 4 + 1: ftile_rc(kind, 3, 1, n, sp, bs, xp, bx, yp, by); break;
            case 2 * 4 + 2: ftile_rc(kind, 2, 2, n, sp, bs, xp, bx, yp, by); break;
            case 2 * 4 + 1: ftile_rc(kind, 2, 1, n, sp, bs, xp, bx, yp, by); break;
            case 1 * 4 + 2: ftile_rc(kind, 1, 2, n, sp, bs, xp, bx, yp, by); break;
            default: ftile_rc(kind, 1, 1, n, sp, bs, xp, bx, yp, by); break;
            }
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

/* ---- 32-element formats ------------------------------------------------ */

enum { K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q8_0 };

static inline size_t xsize(int kind) {
    return kind == K_Q4_0 ? sizeof(block_q4_0) : kind == K_Q4_1 ? sizeof(block_q4_1)
         : kind == K_Q5_0 ? sizeof(block_q5_0) : kind == K_Q5_1 ? sizeof(block_q5_1) : sizeof(block_q8_0);
}
static inline int is_1(int kind) { return kind == K_Q4_1 || kind == K_Q5_1; }
static inline size_t ysize(int kind) { return is_1(kind) ? sizeof(block_q8_1) : sizeof(block_q8_0); }
static inline size_t yqs(int kind) { return is_1(kind) ? 4 : 2; }
static inline size_t xqs(int kind) {
    return kind == K_Q4_0 ? 2 : kind == K_Q4_1 ? 4 : kind == K_Q5_0 ? 6 : kind == K_Q5_1 ? 8 : 2;
}

/* 0xff in byte i where bit i of the 32-bit value is set. */
SLM_INLINE __m256i bits_to_bytes(uint32_t bits) {
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                    _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                                       0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* A block's quants as bytes in element order: signed (q - offset) for
 * Q4_0, Q5_0, Q8_0; unsigned for Q4_1, Q5_1. */
SLM_INLINE __m256i block_x(int kind, const uint8_t *xb) {
    if (kind == K_Q8_0) return _mm256_loadu_si256((const __m256i *)(xb + 2));
    __m128i q = _mm_loadu_si128((const __m128i *)(xb + xqs(kind)));
    __m256i v = _mm256_and_si256(_mm256_insertf128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
                                 _mm256_set1_epi8(0x0f));
    if (kind == K_Q5_0 || kind == K_Q5_1)
        v = _mm256_or_si256(v, _mm256_and_si256(bits_to_bytes(ld32(xb + xqs(kind) - 4)), _mm256_set1_epi8(0x10)));
    if (kind == K_Q4_0) v = _mm256_sub_epi8(v, _mm256_set1_epi8(8));
    if (kind == K_Q5_0) v = _mm256_sub_epi8(v, _mm256_set1_epi8(16));
    return v;
}

/* The 8 int32 partial sums of x * y over a block, as floats. */
SLM_INLINE __m256 block_dot(int kind, __m256i xv, __m256i yv) {
    __m256i p;
    if (is_1(kind)) {
        p = _mm256_maddubs_epi16(xv, yv);
    } else {
        p = _mm256_maddubs_epi16(_mm256_sign_epi8(xv, xv), _mm256_sign_epi8(yv, xv));
    }
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

SLM_INLINE void dot32(int kind, int64_t n, float *s, const void *vx, const void *vy) {
    const uint8_t *x = vx, *y = vy;
    const size_t xs = xsize(kind), ys = ysize(kind);
    const int64_t nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    float ms = 0.0f;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const uint8_t *x0 = x + i * xs, *y0 = y + i * ys, *x1 = x0 + xs, *y1 = y0 + ys;
        __m256 p0 = block_dot(kind, block_x(kind, x0), _mm256_loadu_si256((const __m256i *)(y0 + yqs(kind))));
        __m256 p1 = block_dot(kind, block_x(kind, x1), _mm256_loadu_si256((const __m256i *)(y1 + yqs(kind))));
        acc0 = _mm256_fmadd_ps(p0, _mm256_set1_ps(h2f(ld16(x0)) * h2f(ld16(y0))), acc0);
        acc1 = _mm256_fmadd_ps(p1, _mm256_set1_ps(h2f(ld16(x1)) * h2f(ld16(y1))), acc1);
        if (is_1(kind)) ms += h2f(ld16(x0 + 2)) * h2f(ld16(y0 + 2)) + h2f(ld16(x1 + 2)) * h2f(ld16(y1 + 2));
    }
    if (i < nb) {
        const uint8_t *x0 = x + i * xs, *y0 = y + i * ys;
        __m256 p0 = block_dot(kind, block_x(kind, x0), _mm256_loadu_si256((const __m256i *)(y0 + yqs(kind))));
        acc0 = _mm256_fmadd_ps(p0, _mm256_set1_ps(h2f(ld16(x0)) * h2f(ld16(y0))), acc0);
        if (is_1(kind)) ms += h2f(ld16(x0 + 2)) * h2f(ld16(y0 + 2));
    }
    *s = hsum8(_mm256_add_ps(acc0, acc1)) + ms;
}

/* R rows x C columns (R <= 2, C <= 4) over all blocks: each row block is
 * unpacked once for C columns and each column block loaded once for R
 * rows. */
SLM_INLINE void tile32_rc(int kind, int R, int C, int64_t n, float *s, size_t bs, const uint8_t *x, size_t bx,
                          const uint8_t *y, size_t by) {
    const size_t xs = xsize(kind), ys = ysize(kind);
    const int64_t nb = n / 32;
    __m256 acc[2][4];
    float ms[2][4] = { { 0 } };
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i xv[2], ax[2];
        float dx[2];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *xb = x + (size_t)r * bx + (size_t)i * xs;
            xv[r] = block_x(kind, xb);
            ax[r] = is_1(kind) ? xv[r] : _mm256_sign_epi8(xv[r], xv[r]);
            dx[r] = h2f(ld16(xb));
        }
        UNROLL for (int c = 0; c < C; c++) {
            const uint8_t *yb = y + (size_t)c * by + (size_t)i * ys;
            __m256i yv = _mm256_loadu_si256((const __m256i *)(yb + yqs(kind)));
            float dy = h2f(ld16(yb));
            UNROLL for (int r = 0; r < R; r++) {
                __m256i p = _mm256_maddubs_epi16(ax[r], is_1(kind) ? yv : _mm256_sign_epi8(yv, xv[r]));
                __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
                acc[r][c] = _mm256_fmadd_ps(f, _mm256_set1_ps(dx[r] * dy), acc[r][c]);
                if (is_1(kind)) ms[r][c] += h2f(ld16(x + (size_t)r * bx + (size_t)i * xs + 2)) * h2f(ld16(yb + 2));
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++)
        UNROLL for (int r = 0; r < R; r++) s[(size_t)c * bs + r] = hsum8(acc[r][c]) + ms[r][c];
}

SLM_INLINE void tile32(int kind, int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by,
                       int nr, int nc) {
    const uint8_t *x = vx, *y = vy;
    if (nc < 2) {   /* generation: rows one after the other */
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < nr; r++) dot32(kind, n, s + (size_t)c * bs + r, x + (size_t)r * bx, y + (size_t)c * by);
        return;
    }
    for (int r = 0; r < nr; r += 2)
        for (int c = 0; c < nc; c += 4) {
            int R = nr - r < 2 ? nr - r : 2, C = nc - c < 4 ? nc - c : 4;
            float *sp = s + (size_t)c * bs + r;
            const uint8_t *xp = x + (size_t)r * bx, *yp = y + (size_t)c * by;
            switch (R * 8 + C) {
            case 2 * 8 + 4: tile32_rc(kind, 2, 4, n, sp, bs, xp, bx, yp, by); break;
            case 2 * 8 + 3: tile32_rc(kind, 2, 3, n, sp, bs, xp, bx, yp, by); break;
            case 2 * 8 + 2: tile32_rc(kind, 2, 2, n, sp, bs, xp, bx, yp, by); break;
            case 2 * 8 + 1: tile32_rc(kind, 2, 1, n, sp, bs, xp, bx, yp, by); break;
            case 1 * 8 + 4: tile32_rc(kind, 1, 4, n, sp, bs, xp, bx, yp, by); break;
            case 1 * 8 + 3: tile32_rc(kind, 1, 3, n, sp, bs, xp, bx, yp, by); break;
            case 1 * 8 + 2: tile32_rc(kind, 1, 2, n, sp, bs, xp, bx, yp, by); break;
            default: tile32_rc(kind, 1, 1, n, sp, bs, xp, bx, yp, by); break;
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

static void q4_0_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q4_0, n, s, x, y); }
static void q4_1_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q4_1, n, s, x, y); }
static void q5_0_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q5_0, n, s, x, y); }
static void q5_1_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q5_1, n, s, x, y); }
static void q8_0_vec_dot(int64_t n, float *s, const void *x, const void *y) { dot32(K_Q8_0, n, s, x, y); }

/* ---- installation ------------------------------------------------------ */

void slm_x86_avx2_install(slm_type_traits t[SLM_N_TRAITS]) {
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
