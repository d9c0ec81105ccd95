/*
 * quants_basic.c — scalar reference kernels for the float types (F32, F16,
 * BF16) and the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * Q8_1).
 *
 * The 32-element formats store one fp16 scale d (and, for the _1 kinds, an
 * fp16 offset m) per block. Element j of a 4-bit block lives in the low
 * nibble of qs[j] for j < 16 and the high nibble of qs[j-16] otherwise; the
 * 5-bit kinds add a 32-bit little-endian qh whose bit j is the 5th bit of
 * element j. Values: Q4_0 d*(q-8), Q5_0 d*(q-16), Q4_1/Q5_1 d*q + m, Q8_0
 * d*q. Q8_1 also keeps s = d * sum(q) so that a dot product with a _1 row
 * can add m*s instead of summing the activations again.
 *
 * The quantizers round to nearest exactly as ggml's *_ref functions do (the
 * scale is stored as fp16 but the quants are computed with the unrounded
 * inverse), so the bytes they write match ggml's for the same input.
 * Dot products multiply integers inside a block and accumulate floats across
 * blocks. Float rows accumulate in double.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/quants.h"
#include "util/fp16.h"

/* ---- float types ------------------------------------------------------ */

void slm_f32_to_float(const void *x, float *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

void slm_f32_from_float(const float *x, void *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

void slm_f32_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const float *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)a[i] * (double)b[i];
    *s = (float)sum;
}

void slm_f16_to_float(const void *x, float *y, int64_t n) {
    const slm_half *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = slm_fp16_to_f32(h[i]);
}

void slm_f16_from_float(const float *x, void *y, int64_t n) {
    slm_half *h = y;
    for (int64_t i = 0; i < n; i++) h[i] = slm_f32_to_fp16(x[i]);
}

void slm_f16_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const slm_half *a = x;
    const float *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)slm_fp16_to_f32(a[i]) * (double)b[i];
    *s = (float)sum;
}

void slm_bf16_to_float(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = slm_bf16_to_f32(h[i]);
}

void slm_bf16_from_float(const float *x, void *y, int64_t n) {
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++) h[i] = slm_f32_to_bf16(x[i]);
}

void slm_bf16_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const uint16_t *a = x;
    const float *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)slm_bf16_to_f32(a[i]) * (double)b[i];
    *s = (float)sum;
}

/* ---- helpers ---------------------------------------------------------- */

/* The element of largest magnitude (its sign kept), 0 for an all-zero block. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, vmax = 0.0f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); vmax = x[j]; }
    }
    return vmax;
}

static float absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

/* ggml's rounding for the offset formats: the caller adds offset + 0.5 in
 * one float addition and this truncates (round half up for t >= 0), capping
 * at hi. NaN and negatives give 0. */
static int trunc_clamp(float t, int hi) {
    if (!(t >= 0.0f)) return 0;
    if (t >= (float)hi) return hi;
    return (int)t;
}

/* Round half away from zero (C's roundf), clamped to [-127, 127]. */
static int8_t round_q8(float v) {
    if (!(v > -127.0f)) return v != v ? 0 : -127;
    if (v > 127.0f) return 127;
    return (int8_t)roundf(v);
}

/* Bit j (0..31) of a little-endian 32-bit field stored as 4 bytes. */
static inline int bit32(const uint8_t qh[4], int j) { return (qh[j >> 3] >> (j & 7)) & 1; }

/* ---- Q4_0 ------------------------------------------------------------- */

void slm_q4_0_to_float(const void *x, float *y, int64_t n) {
    const block_q4_0 *b = x;
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        float d = slm_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK4_0 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* The element of largest magnitude maps to -8, so the block uses the full
 * range -8..7 on that side. */
void slm_q4_0_from_float(const float *x, void *y, int64_t n) {
    block_q4_0 *b = y;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        float d = signed_absmax(x, QK4_0) / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = slm_f32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int lo = trunc_clamp(x[j] * id + 8.5f, 15);
            int hi = trunc_clamp(x[j + QK4_0 / 2] * id + 8.5f, 15);
            b[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void slm_q4_0_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q4_0 *a = x;
    const block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((a[i].qs[j] & 0x0f) - 8) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK4_0 / 2];
        }
        sum += (float)sumi * slm_fp16_to_f32(a[i].d) * slm_fp16_to_f32(b[i].d);
    }
    *s = sum;
}

/* ---- Q4_1 ------------------------------------------------------------- */

void slm_q4_1_to_float(const void *x, float *y, int64_t n) {
    const block_q4_1 *b = x;
    for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
        float d = slm_fp16_to_f32(b[i].d), m = slm_fp16_to_f32(b[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (float)(b[i].qs[j] & 0x0f) * d + m;
            y[j + QK4_1 / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

/* Block min and max map to 0 and 15. */
void slm_q4_1_from_float(const float *x, void *y, int64_t n) {
    block_q4_1 *b = y;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float vmin = FLT_MAX, vmax = -FLT_MAX;
        for (int j = 0; j < QK4_1; j++) {
            vmin = fminf(vmin, x[j]);
            vmax = fmaxf(vmax, x[j]);
        }
        float d = (vmax - vmin) / 15.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = slm_f32_to_fp16(d);
        b[i].m = slm_f32_to_fp16(vmin);
        for (int j = 0; j < QK4_1 / 2; j++) {
            int lo = trunc_clamp((x[j] - vmin) * id + 0.5f, 15);
            int hi = trunc_clamp((x[j + QK4_1 / 2] - vmin) * id + 0.5f, 15);
            b[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void slm_q4_1_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q4_1 *a = x;
    const block_q8_1 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sumi += (a[i].qs[j] & 0x0f) * b[i].qs[j];
            sumi += (a[i].qs[j] >> 4) * b[i].qs[j + QK4_1 / 2];
        }
        sum += (float)sumi * slm_fp16_to_f32(a[i].d) * slm_fp16_to_f32(b[i].d)
             + slm_fp16_to_f32(a[i].m) * slm_fp16_to_f32(b[i].s);
    }
    *s = sum;
}

/* ---- Q5_0 ------------------------------------------------------------- */

void slm_q5_0_to_float(const void *x, float *y, int64_t n) {
    const block_q5_0 *b = x;
    for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
        float d = slm_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK5_0 / 2; j++) {
            int lo = (b[i].qs[j] & 0x0f) | (bit32(b[i].qh, j) << 4);
            int hi = (b[i].qs[j] >> 4) | (bit32(b[i].qh, j + QK5_0 / 2) << 4);
            y[j] = (float)(lo - 16) * d;
            y[j + QK5_0 / 2] = (float)(hi - 16) * d;
        }
    }
}

void slm_q5_0_from_float(const float *x, void *y, int64_t n) {
    block_q5_0 *b = y;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        float d = signed_absmax(x, QK5_0) / -16.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = slm_f32_to_fp16(d);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            int lo = trunc_clamp(x[j] * id + 16.5f, 31);
            int hi = trunc_clamp(x[j + QK5_0 / 2] * id + 16.5f, 31);
            b[i].qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
            b[i].qh[j >> 3] |= (uint8_t)((lo >> 4) << (j & 7));
            b[i].qh[(j + QK5_0 / 2) >> 3] |= (uint8_t)((hi >> 4) << (j & 7));
        }
    }
}

void slm_q5_0_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q5_0 *a = x;
    const block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int lo = (a[i].qs[j] & 0x0f) | (bit32(a[i].qh, j) << 4);
            int hi = (a[i].qs[j] >> 4) | (bit32(a[i].qh, j + QK5_0 / 2) << 4);
            sumi += (lo - 16) * b[i].qs[j] + (hi - 16) * b[i].qs[j + QK5_0 / 2];
        }
        sum += (float)sumi * slm_fp16_to_f32(a[i].d) * slm_fp16_to_f32(b[i].d);
    }
    *s = sum;
}

/* ---- Q5_1 ------------------------------------------------------------- */

void slm_q5_1_to_float(const void *x, float *y, int64_t n) {
    const block_q5_1 *b = x;
    for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
        float d = slm_fp16_to_f32(b[i].d), m = slm_fp16_to_f32(b[i].m);
        for (int j = 0; j < QK5_1 / 2; j++) {
            int lo = (b[i].qs[j] & 0x0f) | (bit32(b[i].qh, j) << 4);
            int hi = (b[i].qs[j] >> 4) | (bit32(b[i].qh, j + QK5_1 / 2) << 4);
            y[j] = (float)lo * d + m;
            y[j + QK5_1 / 2] = (float)hi * d + m;
        }
    }
}

void slm_q5_1_from_float(const float *x, void *y, int64_t n) {
    block_q5_1 *b = y;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float vmin = FLT_MAX, vmax = -FLT_MAX;
        for (int j = 0; j < QK5_1; j++) {
            vmin = fminf(vmin, x[j]);
            vmax = fmaxf(vmax, x[j]);
        }
        float d = (vmax - vmin) / 31.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = slm_f32_to_fp16(d);
        b[i].m = slm_f32_to_fp16(vmin);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            int lo = trunc_clamp((x[j] - vmin) * id + 0.5f, 31);
            int hi = trunc_clamp((x[j + QK5_1 / 2] - vmin) * id + 0.5f, 31);
            b[i].qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
            b[i].qh[j >> 3] |= (uint8_t)((lo >> 4) << (j & 7));
            b[i].qh[(j + QK5_1 / 2) >> 3] |= (uint8_t)((hi >> 4) << (j & 7));
        }
    }
}

void slm_q5_1_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q5_1 *a = x;
    const block_q8_1 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int lo = (a[i].qs[j] & 0x0f) | (bit32(a[i].qh, j) << 4);
            int hi = (a[i].qs[j] >> 4) | (bit32(a[i].qh, j + QK5_1 / 2) << 4);
            sumi += lo * b[i].qs[j] + hi * b[i].qs[j + QK5_1 / 2];
        }
        sum += (float)sumi * slm_fp16_to_f32(a[i].d) * slm_fp16_to_f32(b[i].d)
             + slm_fp16_to_f32(a[i].m) * slm_fp16_to_f32(b[i].s);
    }
    *s = sum;
}

/* ---- Q8_0 ------------------------------------------------------------- */

void slm_q8_0_to_float(const void *x, float *y, int64_t n) {
    const block_q8_0 *b = x;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        float d = slm_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = (float)b[i].qs[j] * d;
    }
}

/* d = absmax / 127; quants round half away from zero. */
void slm_q8_0_from_float(const float *x, void *y, int64_t n) {
    block_q8_0 *b = y;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float d = absmax(x, QK8_0) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = slm_f32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) b[i].qs[j] = round_q8(x[j] * id);
    }
}

void slm_q8_0_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q8_0 *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += a[i].qs[j] * b[i].qs[j];
        sum += (float)sumi * slm_fp16_to_f32(a[i].d) * slm_fp16_to_f32(b[i].d);
    }
    *s = sum;
}

/* ---- Q8_1 ------------------------------------------------------------- */

void slm_q8_1_to_float(const void *x, float *y, int64_t n) {
    const block_q8_1 *b = x;
    for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
        float d = slm_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK8_1; j++) y[j] = (float)b[i].qs[j] * d;
    }
}

/* As Q8_0, plus s = d * sum(q) with the unrounded d. */
void slm_q8_1_from_float(const float *x, void *y, int64_t n) {
    block_q8_1 *b = y;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float d = absmax(x, QK8_1) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        b[i].d = slm_f32_to_fp16(d);
        for (int j = 0; j < QK8_1; j++) {
            b[i].qs[j] = round_q8(x[j] * id);
            sum += b[i].qs[j];
        }
        b[i].s = slm_f32_to_fp16((float)sum * d);
    }
}

void slm_q8_1_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const block_q8_1 *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_1; j++) sumi += a[i].qs[j] * b[i].qs[j];
        sum += (float)sumi * slm_fp16_to_f32(a[i].d) * slm_fp16_to_f32(b[i].d);
    }
    *s = sum;
}
