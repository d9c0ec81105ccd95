/*
 * avx512_k.c — AVX-512 (F/BW/VL/DQ + VNNI) dot products of the K-quants
 * (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) with Q8_K activations, row by row and as
 * tiles. Compiled with the AVX-512 flags; installed by dispatch.c.
 *
 * Each format has one unpacker (kq_unpack) that turns a super-block into
 * four vectors of 64 unsigned quants in element order, plus the integer
 * sub-block scales and the coefficients of Q8_K's per-16 sums (bsums):
 *   Q2_K  q 0..3               scales 4-bit   bsum coefficient m_j, -dmin
 *   Q3_K  q+4 0..7             scales 6-bit   bsum coefficient sc_j, -4d
 *   Q4_K  q 0..15              scales 6-bit   m_j (per 32), -dmin
 *   Q5_K  q 0..31              scales 6-bit   m_j (per 32), -dmin
 *   Q6_K  q+32 0..63           scales int8    sc_j, -32d
 * so that every dot product is
 *   d*dy * sum_j sc_j * sum(q*y)  +  dmin' * dy * sum_j coef_j * bsum_j.
 * Row kernels multiply bytes with VPMADDUBSW (u8 x s8 -> pairs of s16,
 * which cannot saturate for these ranges) and scale and accumulate with
 * VPDPWSSD against the sub-block scales spread over the lanes. Tiles
 * transpose 16 rows' unpacked super-blocks into the row-panel layout of
 * avx512_util.h and run every column against them with VPDPBUSD chains.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/quants.h"
#include "kernels/x86/avx512_util.h"

enum { K_Q2_K, K_Q3_K, K_Q4_K, K_Q5_K, K_Q6_K };

static inline size_t kq_size(int kind) {
    return kind == K_Q2_K ? sizeof(block_q2_K) : kind == K_Q3_K ? sizeof(block_q3_K)
         : kind == K_Q4_K ? sizeof(block_q4_K) : kind == K_Q5_K ? sizeof(block_q5_K) : sizeof(block_q6_K);
}
/* sub-blocks per super-block: 8 of 32 or 16 of 16 elements */
static inline int kq_nsub(int kind) { return kind == K_Q4_K || kind == K_Q5_K ? 8 : 16; }

/* A super-block, unpacked (all in registers). */
typedef struct kq_unpacked {
    __m512i q[4];    /* 4 x 64 unsigned quants, order: see kq_unpack        */
    __m256i sc;      /* int16 sub-block scales (8 or 16 used)               */
    __m256i coef;    /* int16 coefficient of bsums[i], i = 0..15            */
    float d;         /* multiplies sum_j sc_j * sum(q*y)                    */
    float dmin;      /* multiplies sum_i coef_i * bsums[i]                  */
} kq_unpacked;

/* Bytes of 64 where bit b of src (bytes 0..31 repeated) is set: b0 for the
 * first 32, b1 for the second. */
SLM_INLINE __mmask64 bits2(__m512i src, int b0, int b1) {
    __m512i pat = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << b0)), _mm256_set1_epi8((char)(1 << b1)), 1);
    return _mm512_test_epi8_mask(src, pat);
}

SLM_INLINE __m512i dup256(const uint8_t *p) {
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_inserti64x4(_mm512_castsi256_si512(v), v, 1);
}

/* Two planes of 2-bit fields of 32 bytes: [ (v >> s0) & 3 | (v >> s1) & 3 ]. */
SLM_INLINE __m512i planes2(__m256i v, int s0, int s1) {
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(v, s0)), _mm256_srli_epi16(v, s1), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(3));
}

/* Q4_K/Q5_K scales and mins (see quants.h) as bytes [sc 0..7 | m 0..7],
 * computed on the three 32-bit words of the 12 packed bytes. */
SLM_INLINE __m128i k4_scales(const uint8_t *q) {
    uint32_t w[3];
    memcpy(w, q, 12);
    __m128i t = _mm_setr_epi32((int)w[0], (int)w[1], (int)w[2], (int)w[2]);
    __m128i lo = _mm_and_si128(t, _mm_set1_epi32(0x3f3f3f3f));                      /* sc 0..3, m 0..3 */
    __m128i nib = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(t, _MM_SHUFFLE(3, 2, 3, 2)), _mm_setr_epi32(0, 4, 0, 4)),
                                _mm_set1_epi32(0x0f0f0f0f));                         /* w2 & f, w2 >> 4 & f */
    __m128i top = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(t, 6), _mm_set1_epi32(0x03030303)), 4);
    __m128i hi = _mm_or_si128(nib, top);                                                /* sc 4..7, m 4..7 */
    __m128i v = _mm_unpacklo_epi32(lo, hi);                                             /* sc0-3 sc4-7 m0-3 m4-7 */
    return v;
}

/* Q3_K: sixteen 6-bit signed scales from 12 bytes (see quants.h). */
SLM_INLINE __m128i k3_scales(const uint8_t *q) {
    uint32_t w[3];
    memcpy(w, q, 12);
    __m128i a = _mm_setr_epi32((int)w[0], (int)w[1], (int)w[0], (int)w[1]);
    __m128i lo = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 4, 4)), _mm_set1_epi32(0x0f0f0f0f));
    __m128i h = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)w[2]), _mm_setr_epi32(0, 2, 4, 6)),
                              _mm_set1_epi32(0x03030303));
    return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi32(h, 4)), _mm_set1_epi8(32));
}

/* Unpacks a super-block. With natural = 1 the quant vectors hold elements
 * 64v .. 64v+63 in order (what the tiles transpose). Otherwise Q4_K/Q5_K
 * come straight from two 64-byte loads as [sub-blocks 0|2], [1|3], [4|6],
 * [5|7] (k_prep arranges the activations to match); the other formats are
 * always in order. */
SLM_INLINE void kq_unpack(int kind, const uint8_t *blk, kq_unpacked *u, int natural) {
    if (kind == K_Q2_K) {
        const block_q2_K *b = (const block_q2_K *)blk;
        UNROLL for (int h = 0; h < 2; h++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
            u->q[2 * h] = planes2(v, 0, 2);
            u->q[2 * h + 1] = planes2(v, 4, 6);
        }
        __m128i sc = _mm_loadu_si128((const __m128i *)b->scales);
        u->sc = _mm256_cvtepu8_epi16(_mm_and_si128(sc, _mm_set1_epi8(0x0f)));
        u->coef = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(0x0f)));
        u->d = h2f(b->d);
        u->dmin = -h2f(b->dmin);
    } else if (kind == K_Q3_K) {
        const block_q3_K *b = (const block_q3_K *)blk;
        __m512i hm = dup256(b->hmask);
        const __m512i four = _mm512_set1_epi8(4);
        UNROLL for (int h = 0; h < 2; h++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
            __m512i z0 = planes2(v, 0, 2), z1 = planes2(v, 4, 6);
            u->q[2 * h] = _mm512_mask_add_epi8(z0, bits2(hm, 4 * h, 4 * h + 1), z0, four);
            u->q[2 * h + 1] = _mm512_mask_add_epi8(z1, bits2(hm, 4 * h + 2, 4 * h + 3), z1, four);
        }
        u->sc = u->coef = _mm256_cvtepi8_epi16(k3_scales(b->scales));
        u->d = h2f(b->d);
        u->dmin = -4.0f * u->d;
    } else if (kind == K_Q4_K || kind == K_Q5_K) {
        const uint8_t *qs = kind == K_Q4_K ? ((const block_q4_K *)blk)->qs : ((const block_q5_K *)blk)->qs;
        const uint8_t *scales = kind == K_Q4_K ? ((const block_q4_K *)blk)->scales : ((const block_q5_K *)blk)->scales;
        slm_half d = kind == K_Q4_K ? ((const block_q4_K *)blk)->d : ((const block_q5_K *)blk)->d;
        slm_half dmin = kind == K_Q4_K ? ((const block_q4_K *)blk)->dmin : ((const block_q5_K *)blk)->dmin;
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        /* sub-block pairs (low, high nibble) of each vector */
        int sb[4][2];
        if (natural) {
            UNROLL for (int c = 0; c < 4; c++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
                __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
                u->q[c] = _mm512_and_si512(z, m4);
                sb[c][0] = 2 * c;
                sb[c][1] = 2 * c + 1;
            }
        } else {
            UNROLL for (int h = 0; h < 2; h++) {
                __m512i v = _mm512_loadu_si512(qs + 64 * h);
                u->q[2 * h] = _mm512_and_si512(v, m4);
                u->q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                sb[2 * h][0] = 4 * h;
                sb[2 * h][1] = 4 * h + 2;
                sb[2 * h + 1][0] = 4 * h + 1;
                sb[2 * h + 1][1] = 4 * h + 3;
            }
        }
        if (kind == K_Q5_K) {
            __m512i qh = dup256(((const block_q5_K *)blk)->qh);
            const __m512i sixteen = _mm512_set1_epi8(16);
            UNROLL for (int c = 0; c < 4; c++)
                u->q[c] = _mm512_mask_add_epi8(u->q[c], bits2(qh, sb[c][0], sb[c][1]), u->q[c], sixteen);
        }
        __m128i sm = k4_scales(scales);   /* sc 0..7 | m 0..7 */
        u->sc = _mm256_cvtepu8_epi16(sm);
        u->coef = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));  /* m0 m0 m1 m1 ... */
        u->d = h2f(d);
        u->dmin = -h2f(dmin);
    } else {
        const block_q6_K *b = (const block_q6_K *)blk;
        const __m512i lo = _mm512_set1_epi8(0x0f), hi2 = _mm512_set1_epi8(0x30);
        UNROLL for (int h = 0; h < 2; h++) {
            __m512i l = _mm512_loadu_si512(b->ql + 64 * h);
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            __m512i H = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
            u->q[2 * h] = _mm512_or_si512(_mm512_and_si512(l, lo), _mm512_and_si512(_mm512_slli_epi16(H, 4), hi2));
            u->q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), lo), _mm512_and_si512(H, hi2));
        }
        u->sc = u->coef = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
        u->d = h2f(b->d);
        u->dmin = -32.0f * u->d;
    }
}

/* For the row kernels: index vectors spreading the int16 scales over the
 * 32 int16 lanes VPMADDUBSW leaves for quant vector v (lane t covers two
 * elements), in the order kq_unpack produces with natural = 0. */
SLM_INLINE __m512i scale_idx(int kind, int v) {
    int16_t idx[32];
    for (int t = 0; t < 32; t++) {
        int sub;
        if (kq_nsub(kind) == 8) {
            static const int pairs[4][2] = { { 0, 2 }, { 1, 3 }, { 4, 6 }, { 5, 7 } };
            sub = pairs[v][t / 16];
        } else {
            sub = 4 * v + t / 8;
        }
        idx[t] = (int16_t)sub;
    }
    return _mm512_loadu_si512(idx);
}

/* The activations of one super-block arranged for kq_unpack(natural = 0):
 * Q4_K/Q5_K take the 32-element runs in the order 0 2 1 3 4 6 5 7. */
SLM_INLINE void k_prep(int kind, const block_q8_K *y, __m512i yq[4]) {
    if (kq_nsub(kind) == 8) {
        static const int order[8] = { 0, 2, 1, 3, 4, 6, 5, 7 };
        UNROLL for (int v = 0; v < 4; v++) {
            __m512i t = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(y->qs + 32 * order[2 * v])));
            yq[v] = _mm512_inserti64x4(t, _mm256_loadu_si256((const __m256i *)(y->qs + 32 * order[2 * v + 1])), 1);
        }
    } else {
        UNROLL for (int v = 0; v < 4; v++) yq[v] = _mm512_loadu_si512(y->qs + 64 * v);
    }
}

/* Rows stream against one column strip prepared once (KSTRIP super-blocks). */
#define KSTRIP 32

#ifndef PF_DIST_K
#define PF_DIST_K 8192
#endif
#ifndef PF_HINT_K
#define PF_HINT_K _MM_HINT_T1
#endif

/* One row's super-blocks [0, nblk) against the prepared activations. */
SLM_INLINE float k_row(int kind, const uint8_t *x, const __m512i *yq, const block_q8_K *y, int nblk,
                       const __m512i idx[4]) {
    const size_t xs = kq_size(kind);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int i = 0; i < nblk; i++) {
        const uint8_t *xb = x + (size_t)i * xs;
        UNROLL for (int l = 0; l < (int)((xs + 63) / 64); l++) _mm_prefetch((const char *)(xb + PF_DIST_K + 64 * l), PF_HINT_K);
        kq_unpacked u;
        kq_unpack(kind, xb, &u, 0);
        __m512i sc = _mm512_castsi256_si512(u.sc);
        __m512i isum = _mm512_setzero_si512();
        UNROLL for (int v = 0; v < 4; v++) {
            __m512i p = _mm512_maddubs_epi16(u.q[v], yq[4 * i + v]);
            isum = _mm512_dpwssd_epi32(isum, p, _mm512_permutexvar_epi16(idx[v], sc));
        }
        __m256i mins = _mm256_madd_epi16(u.coef, _mm256_loadu_si256((const __m256i *)y[i].bsums));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(u.d * y[i].d), acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(u.dmin * y[i].d), accm);
    }
    __m128 m4 = _mm_add_ps(_mm256_castps256_ps128(accm), _mm256_extractf128_ps(accm, 1));
    m4 = _mm_add_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_add_ss(m4, _mm_movehdup_ps(m4));
    return _mm512_reduce_add_ps(acc) + _mm_cvtss_f32(m4);
}

/* s[c*bs + r] = row r · column c, rows streamed one after the other. */
SLM_INLINE void kgemv(int kind, int64_t n, float *s, size_t bs, const uint8_t *x, size_t bx, const uint8_t *y, size_t by,
                      int nr, int nc) {
    const int64_t nb = n / QK_K;
    __m512i idx[4];
    UNROLL for (int v = 0; v < 4; v++) idx[v] = scale_idx(kind, v);
    __m512i yq[4 * KSTRIP];
    for (int c = 0; c < nc; c++)
        for (int64_t b0 = 0; b0 < nb; b0 += KSTRIP) {
            int nblk = nb - b0 < KSTRIP ? (int)(nb - b0) : KSTRIP;
            const block_q8_K *yc = (const block_q8_K *)(y + (size_t)c * by) + b0;
            for (int i = 0; i < nblk; i++) k_prep(kind, yc + i, yq + 4 * i);
            for (int r = 0; r < nr; r++) {
                float v = k_row(kind, x + (size_t)r * bx + (size_t)b0 * kq_size(kind), yq, yc, nblk, idx);
                s[(size_t)c * bs + r] = b0 ? s[(size_t)c * bs + r] + v : v;
            }
        }
}

SLM_INLINE void kdot(int kind, int64_t n, float *s, const void *x, const void *y) {
    kgemv(kind, n, s, 0, x, 0, y, 0, 1, 1);
}

static void q2_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q2_K, n, s, x, y); }
static void q3_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q3_K, n, s, x, y); }
static void q4_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q4_K, n, s, x, y); }
static void q5_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q5_K, n, s, x, y); }
static void q6_K_vec_dot(int64_t n, float *s, const void *x, const void *y) { kdot(K_Q6_K, n, s, x, y); }

/* ---- tiles ------------------------------------------------------------ */

#define NPK 4                /* panels per row group (64 rows)            */
#define PANEL_MIN_COLS_K 4   /* fewer columns: one row · column at a time */

/* One super-block of 16 rows in the row-panel layout. */
typedef struct kpanel {
    __m512i q[64];       /* quad k (elements 4k..4k+3), lane r = row r */
    __m512 dsc[16];      /* d * sc_j per row                          */
    __m512i coef[8];     /* (coef[2p], coef[2p+1]) int16 pairs per row */
    __m512 dmin;         /* dmin' per row                             */
} kpanel;

/* A row's super-block unpacked to memory, to be transposed. */
typedef struct kq_row {
    uint8_t q[QK_K];
    float dsc[16];
    int16_t coef[16];
} kq_row;

SLM_INLINE void kpanel_fill(int kind, kpanel *P, const uint8_t *x, size_t bx, int n_rows, int64_t blk) {
    kq_row buf[PANEL_ROWS];
    float dmin[PANEL_ROWS];
    const uint8_t *rows[PANEL_ROWS];
    for (int r = 0; r < PANEL_ROWS; r++) {
        kq_unpacked u;
        if (r < n_rows) {
            kq_unpack(kind, x + (size_t)r * bx + (size_t)blk * kq_size(kind), &u, 1);
        } else {
            UNROLL for (int v = 0; v < 4; v++) u.q[v] = _mm512_setzero_si512();
            u.sc = u.coef = _mm256_setzero_si256();
            u.d = u.dmin = 0.0f;
        }
        UNROLL for (int v = 0; v < 4; v++) _mm512_storeu_si512(buf[r].q + 64 * v, u.q[v]);
        _mm512_storeu_ps(buf[r].dsc, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(u.sc)), _mm512_set1_ps(u.d)));
        _mm256_storeu_si256((__m256i *)buf[r].coef, u.coef);
        dmin[r] = u.dmin;
        rows[r] = (const uint8_t *)&buf[r];
    }
    UNROLL for (int k = 0; k < 16; k++) load_t16x4(rows, 16 * (size_t)k, &P->q[4 * k]);
    __m512i w[4];
    for (int k = 0; k < kq_nsub(kind) / 4; k++) {
        load_t16x4(rows, offsetof(kq_row, dsc) + 16 * (size_t)k, w);
        UNROLL for (int i = 0; i < 4; i++) P->dsc[4 * k + i] = _mm512_castsi512_ps(w[i]);
    }
    load_t16x4(rows, offsetof(kq_row, coef), &P->coef[0]);
    load_t16x4(rows, offsetof(kq_row, coef) + 16, &P->coef[4]);
    P->dmin = _mm512_loadu_ps(dmin);
}

/* C columns against np filled panels of super-block blk. A sub-block's
 * quads are loaded once for all C columns, whose quads and bsums are
 * broadcast from memory. */
SLM_INLINE void kpanel_cols(int kind, int C, int np, const kpanel *P, int64_t blk, const uint8_t *y, size_t by, float *s,
                            size_t bs, int n_rows, int add) {
    const int nsub = kq_nsub(kind), qps = 64 / nsub;   /* quads per sub-block */
    const block_q8_K *yb[8];
    UNROLL for (int c = 0; c < C; c++) yb[c] = (const block_q8_K *)(y + (size_t)c * by) + blk;
    for (int p = 0; p < np; p++) {
        __m512 fs[8];
        UNROLL for (int c = 0; c < C; c++) fs[c] = _mm512_setzero_ps();
        for (int j = 0; j < nsub; j++) {
            __m512i q[8];
            UNROLL for (int k = 0; k < qps; k++) q[k] = P[p].q[j * qps + k];
            const __m512 dsc = P[p].dsc[j];
            UNROLL for (int c = 0; c < C; c++) {
                const int8_t *yq = yb[c]->qs + 4 * j * qps;
                __m512i is = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], bcast32(yq));
                UNROLL for (int k = 1; k < qps; k++) is = _mm512_dpbusd_epi32(is, q[k], bcast32(yq + 4 * k));
                fs[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), dsc, fs[c]);
            }
        }
        __m512i mi[8];
        UNROLL for (int c = 0; c < C; c++) mi[c] = _mm512_setzero_si512();
        UNROLL for (int k = 0; k < 8; k++) {
            const __m512i coef = P[p].coef[k];
            UNROLL for (int c = 0; c < C; c++) mi[c] = _mm512_dpwssd_epi32(mi[c], coef, bcast32(yb[c]->bsums + 2 * k));
        }
        UNROLL for (int c = 0; c < C; c++) {
            __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mi[c]), P[p].dmin, fs[c]);
            panel_store(s + (size_t)c * bs + 16 * p, _mm512_mul_ps(v, _mm512_set1_ps(yb[c]->d)), n_rows - 16 * p, add);
        }
    }
}

SLM_INLINE void ktile(int kind, int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by,
                      int nr, int nc) {
    const uint8_t *x = vx, *y = vy;
    if (nc < PANEL_MIN_COLS_K) {
        kgemv(kind, n, s, bs, x, bx, y, by, nr, nc);
        return;
    }
    kpanel P[NPK];
    for (int r0 = 0; r0 < nr; r0 += NPK * PANEL_ROWS) {
        int rows = nr - r0 < NPK * PANEL_ROWS ? nr - r0 : NPK * PANEL_ROWS;
        int np = (rows + PANEL_ROWS - 1) / PANEL_ROWS;
        for (int64_t blk = 0; blk < n / QK_K; blk++) {
            for (int p = 0; p < np; p++)
                kpanel_fill(kind, &P[p], x + (size_t)(r0 + PANEL_ROWS * p) * bx, bx, rows - PANEL_ROWS * p, blk);
            for (int c = 0; c < nc;) {
                const uint8_t *yc = y + (size_t)c * by;
                float *sc = s + (size_t)c * bs + r0;
                int left = nc - c, add = blk > 0;
                if (left >= 8) { kpanel_cols(kind, 8, np, P, blk, yc, by, sc, bs, rows, add); c += 8; }
                else if (left >= 4) { kpanel_cols(kind, 4, np, P, blk, yc, by, sc, bs, rows, add); c += 4; }
                else if (left >= 2) { kpanel_cols(kind, 2, np, P, blk, yc, by, sc, bs, rows, add); c += 2; }
                else { kpanel_cols(kind, 1, np, P, blk, yc, by, sc, bs, rows, add); c += 1; }
            }
        }
    }
}

#define KTILE(t, K)                                                                                           \
    static void t##_tile(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, \
                         int nr, int nc) {                                                                    \
        ktile(K, n, s, bs, x, bx, y, by, nr, nc);                                                             \
    }
KTILE(q2_K, K_Q2_K)
KTILE(q3_K, K_Q3_K)
KTILE(q4_K, K_Q4_K)
KTILE(q5_K, K_Q5_K)
KTILE(q6_K, K_Q6_K)
#undef KTILE

void slm_x86_avx512_install_k(slm_type_traits t[SLM_N_TRAITS]) {
    t[SLM_TYPE_Q2_K].vec_dot = q2_K_vec_dot;
    t[SLM_TYPE_Q3_K].vec_dot = q3_K_vec_dot;
    t[SLM_TYPE_Q4_K].vec_dot = q4_K_vec_dot;
    t[SLM_TYPE_Q5_K].vec_dot = q5_K_vec_dot;
    t[SLM_TYPE_Q6_K].vec_dot = q6_K_vec_dot;
    t[SLM_TYPE_Q2_K].vec_dot_tile = q2_K_tile;
    t[SLM_TYPE_Q3_K].vec_dot_tile = q3_K_tile;
    t[SLM_TYPE_Q4_K].vec_dot_tile = q4_K_tile;
    t[SLM_TYPE_Q5_K].vec_dot_tile = q5_K_tile;
    t[SLM_TYPE_Q6_K].vec_dot_tile = q6_K_tile;
}
