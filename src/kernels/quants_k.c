/*
 * quants_k.c — K-quant layouts: dequantization and dot products for Q2_K,
 * Q3_K, Q4_K, Q5_K and Q6_K, and the whole of Q8_K (the activation format
 * they are multiplied with). The quantizers are in quants_k_search.c.
 *
 * A K-quant super-block holds 256 elements in sub-blocks (16 of 16, or 8 of
 * 32 for Q4_K/Q5_K), each with its own small integer scale (and min) that
 * a per-super-block fp16 d (and dmin) scales again:
 *   Q2_K  y = d*sc*q - dmin*m   q 0..3,   sc,m 4-bit     16 x 16
 *   Q3_K  y = d*sc*q            q -4..3,  sc 6-bit signed 16 x 16
 *   Q4_K  y = d*sc*q - dmin*m   q 0..15,  sc,m 6-bit      8 x 32
 *   Q5_K  y = d*sc*q - dmin*m   q 0..31,  sc,m 6-bit      8 x 32
 *   Q6_K  y = d*sc*q            q -32..31, sc int8       16 x 16
 * The quant bits are interleaved for SIMD; each format has one function
 * here that unpacks the quants of sub-block j into plain ints, and both the
 * dequantizer and the dot product are written on top of it, so the layout
 * is described exactly once. Where the layouts split a super-block in two
 * halves of 128, the 2-bit planes of a half share 32 bytes: plane k (bits
 * 2k, 2k+1 of each byte) holds elements 32k..32k+31 of that half.
 *
 * Dot products with Q8_K sum q*q8 in integers per sub-block, multiply by the
 * integer sub-block scale in integers, and only then go to float; the min
 * terms use Q8_K's per-16 sums (bsums), as ggml does.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kernels/quants.h"
#include "util/fp16.h"

/* ---- unpacking: quants of sub-block j as ints ------------------------- */

/* Q2_K: 16 sub-blocks of 16; sub-block j is in half j/8, plane (j%8)/2,
 * bytes (j%2)*16 .. +15 of that half's 32. */
static void q2_K_quants(const block_q2_K *b, int j, int q[16]) {
    const uint8_t *qs = b->qs + 32 * (j >> 3) + 16 * (j & 1);
    int shift = 2 * ((j & 7) >> 1);
    for (int l = 0; l < 16; l++) q[l] = (qs[l] >> shift) & 3;
}

/* Q3_K: as Q2_K for the low 2 bits; the high bit of element l of half h,
 * plane k is bit 4h+k of hmask[l] (l over the 32 bytes), and a clear high
 * bit means "subtract 4". */
static void q3_K_quants(const block_q3_K *b, int j, int q[16]) {
    int h = j >> 3, k = (j & 7) >> 1, off = 16 * (j & 1);
    const uint8_t *qs = b->qs + 32 * h + off;
    const uint8_t *hm = b->hmask + off;
    for (int l = 0; l < 16; l++) {
        int lo = (qs[l] >> (2 * k)) & 3;
        int hi = (hm[l] >> (4 * h + k)) & 1;
        q[l] = lo - (hi ? 0 : 4);
    }
}

/* Q4_K: 8 sub-blocks of 32; pair c = j/2 shares qs[32c .. 32c+31], the even
 * sub-block in the low nibbles, the odd one in the high nibbles. */
static void q4_K_quants(const block_q4_K *b, int j, int q[32]) {
    const uint8_t *qs = b->qs + 32 * (j >> 1);
    int shift = 4 * (j & 1);
    for (int l = 0; l < 32; l++) q[l] = (qs[l] >> shift) & 0x0f;
}

/* Q5_K: as Q4_K, plus the 5th bit of element l of sub-block j in bit j of
 * qh[l]. */
static void q5_K_quants(const block_q5_K *b, int j, int q[32]) {
    const uint8_t *qs = b->qs + 32 * (j >> 1);
    int shift = 4 * (j & 1);
    for (int l = 0; l < 32; l++)
        q[l] = ((qs[l] >> shift) & 0x0f) | (((b->qh[l] >> j) & 1) << 4);
}

/* Q6_K: 16 sub-blocks of 16; half h = j/8 owns ql[64h .. 64h+63] and
 * qh[32h .. 32h+31]. Within a half, quarter k = (j%8)/2 takes its low 4
 * bits from ql[64h + 32*(k%2) + l] (low nibble for k < 2, high for k >= 2)
 * and its top 2 bits from plane k of qh[32h + l], l = (j%2)*16 + 0..15. */
static void q6_K_quants(const block_q6_K *b, int j, int q[16]) {
    int h = j >> 3, k = (j & 7) >> 1, off = 16 * (j & 1);
    const uint8_t *ql = b->ql + 64 * h + 32 * (k & 1) + off;
    const uint8_t *qh = b->qh + 32 * h + off;
    for (int l = 0; l < 16; l++) {
        int lo = (ql[l] >> (4 * (k >> 1))) & 0x0f;
        int hi = (qh[l] >> (2 * k)) & 3;
        q[l] = (lo | (hi << 4)) - 32;
    }
}

static int idot(const int *q, const int8_t *q8, int n) {
    int sum = 0;
    for (int l = 0; l < n; l++) sum += q[l] * q8[l];
    return sum;
}

/* ---- Q2_K ------------------------------------------------------------- */

void slm_q2_K_to_float(const void *x, float *y, int64_t n) {
    const block_q2_K *b = x;
    int q[16];
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = slm_fp16_to_f32(b[i].d), dmin = slm_fp16_to_f32(b[i].dmin);
        for (int j = 0; j < QK_K / 16; j++, y += 16) {
            float dl = d * (float)(b[i].scales[j] & 0x0f);
            float ml = dmin * (float)(b[i].scales[j] >> 4);
            q2_K_quants(&b[i], j, q);
            for (int l = 0; l < 16; l++) y[l] = dl * (float)q[l] - ml;
        }
    }
}

void slm_q2_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q2_K *a = x;
    const block_q8_K *b = y;
    int q[16];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0, summs = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            q2_K_quants(&a[i], j, q);
            isum += (a[i].scales[j] & 0x0f) * idot(q, b[i].qs + 16 * j, 16);
            summs += (a[i].scales[j] >> 4) * b[i].bsums[j];
        }
        float dall = b[i].d * slm_fp16_to_f32(a[i].d);
        float dmin = b[i].d * slm_fp16_to_f32(a[i].dmin);
        sum += dall * (float)isum - dmin * (float)summs;
    }
    *s = sum;
}

/* ---- Q3_K ------------------------------------------------------------- */

void slm_q3_K_to_float(const void *x, float *y, int64_t n) {
    const block_q3_K *b = x;
    int q[16];
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = slm_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK_K / 16; j++, y += 16) {
            float dl = d * (float)slm_k3_scale(j, b[i].scales);
            q3_K_quants(&b[i], j, q);
            for (int l = 0; l < 16; l++) y[l] = dl * (float)q[l];
        }
    }
}

void slm_q3_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q3_K *a = x;
    const block_q8_K *b = y;
    int q[16];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            q3_K_quants(&a[i], j, q);
            isum += slm_k3_scale(j, a[i].scales) * idot(q, b[i].qs + 16 * j, 16);
        }
        sum += slm_fp16_to_f32(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}

/* ---- Q4_K and Q5_K ---------------------------------------------------- */
/* Both start with the same header (d, dmin, packed 6-bit scales and mins)
 * and differ only in how a 32-element sub-block's quants are stored, so one
 * dequantizer and one dot product serve both, given the block size and the
 * sub-block unpacker. */

typedef struct { slm_half d, dmin; uint8_t scales[K_SCALE_SIZE]; } k4_head;
_Static_assert(offsetof(block_q4_K, scales) == offsetof(k4_head, scales), "q4_K header");
_Static_assert(offsetof(block_q5_K, scales) == offsetof(k4_head, scales), "q5_K header");

typedef void (*k4_unpack_fn)(const void *blk, int j, int q[32]);
static void unpack_q4_K(const void *blk, int j, int q[32]) { q4_K_quants(blk, j, q); }
static void unpack_q5_K(const void *blk, int j, int q[32]) { q5_K_quants(blk, j, q); }

static void k4_to_float(const void *x, size_t bsize, k4_unpack_fn unpack, float *y, int64_t n) {
    int q[32], sc, m;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const unsigned char *blk = (const unsigned char *)x + (size_t)i * bsize;
        const k4_head *h = (const k4_head *)blk;
        float d = slm_fp16_to_f32(h->d), dmin = slm_fp16_to_f32(h->dmin);
        for (int j = 0; j < QK_K / 32; j++, y += 32) {
            slm_k4_scale_min(j, h->scales, &sc, &m);
            float dl = d * (float)sc, ml = dmin * (float)m;
            unpack(blk, j, q);
            for (int l = 0; l < 32; l++) y[l] = dl * (float)q[l] - ml;
        }
    }
}

static void k4_vec_dot(int64_t n, float *s, const void *x, size_t bsize, k4_unpack_fn unpack, const void *y) {
    const block_q8_K *b = y;
    int q[32], sc, m;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const unsigned char *blk = (const unsigned char *)x + (size_t)i * bsize;
        const k4_head *h = (const k4_head *)blk;
        int isum = 0, summs = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            slm_k4_scale_min(j, h->scales, &sc, &m);
            unpack(blk, j, q);
            isum += sc * idot(q, b[i].qs + 32 * j, 32);
            summs += m * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        }
        float dall = b[i].d * slm_fp16_to_f32(h->d);
        float dmin = b[i].d * slm_fp16_to_f32(h->dmin);
        sum += dall * (float)isum - dmin * (float)summs;
    }
    *s = sum;
}

void slm_q4_K_to_float(const void *x, float *y, int64_t n) { k4_to_float(x, sizeof(block_q4_K), unpack_q4_K, y, n); }
void slm_q5_K_to_float(const void *x, float *y, int64_t n) { k4_to_float(x, sizeof(block_q5_K), unpack_q5_K, y, n); }
void slm_q4_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    k4_vec_dot(n, s, x, sizeof(block_q4_K), unpack_q4_K, y);
}
void slm_q5_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    k4_vec_dot(n, s, x, sizeof(block_q5_K), unpack_q5_K, y);
}

/* ---- Q6_K ------------------------------------------------------------- */

void slm_q6_K_to_float(const void *x, float *y, int64_t n) {
    const block_q6_K *b = x;
    int q[16];
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = slm_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK_K / 16; j++, y += 16) {
            float dl = d * (float)b[i].scales[j];
            q6_K_quants(&b[i], j, q);
            for (int l = 0; l < 16; l++) y[l] = dl * (float)q[l];
        }
    }
}

void slm_q6_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q6_K *a = x;
    const block_q8_K *b = y;
    int q[16];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            q6_K_quants(&a[i], j, q);
            isum += a[i].scales[j] * idot(q, b[i].qs + 16 * j, 16);
        }
        sum += slm_fp16_to_f32(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}

/* ---- Q8_K ------------------------------------------------------------- */

void slm_q8_K_to_float(const void *x, float *y, int64_t n) {
    const block_q8_K *b = x;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++) y[j] = b[i].d * (float)b[i].qs[j];
}

/* The element of largest magnitude maps to -127 (so the opposite sign
 * reaches at most +127); d is a float, the quants round to nearest even,
 * and bsums[j] is the sum of quants j*16 .. j*16+15. */
void slm_q8_K_from_float(const float *x, void *y, int64_t n) {
    block_q8_K *b = y;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0.0f, vmax = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); vmax = x[j]; }
        }
        memset(b[i].bsums, 0, sizeof b[i].bsums);
        if (amax == 0.0f) {
            b[i].d = 0.0f;
            memset(b[i].qs, 0, sizeof b[i].qs);
            continue;
        }
        float iscale = -127.0f / vmax;
        for (int j = 0; j < QK_K; j++) {
            b[i].qs[j] = (int8_t)slm_round_clamp(iscale * x[j], -127, 127);
            b[i].bsums[j / 16] = (int16_t)(b[i].bsums[j / 16] + b[i].qs[j]);
        }
        b[i].d = 1.0f / iscale;
    }
}

void slm_q8_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q8_K *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0;
        for (int j = 0; j < QK_K; j++) isum += a[i].qs[j] * b[i].qs[j];
        sum += a[i].d * b[i].d * (float)isum;
    }
    *s = sum;
}
