/*
 * qweighted.c — importance-weighted quantizers for the 32-element formats
 * (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), and the row dispatcher (qweighted.h).
 *
 * Each block of 32 minimises sum_j w_j (x_j - y_j)^2:
 *   - symmetric formats (Q4_0: d*(q-8), Q5_0: d*(q-16), Q8_0: d*q) try
 *     eight inverse scales per end that put the block's largest element at a
 *     fraction of either end of the level range (below 1 clips it, which
 *     pays when that element matters little), keep the one whose weighted
 *     least-squares scale sum(w x q) / sum(w q^2) leaves the least error,
 *     then polish it by alternating "round the quants for this scale" with
 *     "least-squares scale for these quants";
 *   - affine formats (Q4_1/Q5_1: d*q + m) do the same with level 0 anchored
 *     at, or a little above, the block minimum and a two-parameter weighted
 *     least-squares fit of d and m;
 * the scale (and offset) is then rounded to fp16 as stored and the quants
 * rounded again for the stored values. Finally the reference quantizer's
 * block (round to nearest from the extremes, as ggml writes it) is scored
 * with the same weights and kept if it is better, so a weighted block is
 * never worse than the reference one under the weights it was given.
 * The trial counts are where more stopped paying: 12 trials, 4 anchors
 * and 6 polish rounds lower the RMS error on Gaussian data by under 0.5%
 * at half the speed (20-35 M weights/s per thread here). No
 * weights (w NULL), or a block whose weights are all zero, means uniform
 * weights: the plain squared error.
 */
#include "quant/qweighted.h"

#include <math.h>
#include <string.h>

#include "kernels/quants.h"
#include "kernels/types.h"
#include "util/fp16.h"

#define QB 32            /* elements per block                              */
#define N_TRIAL 8        /* trial scales per side                           */
#define TRIAL_LO 0.70f   /* the extreme lands at TRIAL_LO..TRIAL_HI of the   */
#define TRIAL_HI 1.05f   /* last level                                      */
#define N_ANCHOR 3       /* affine: level-0 anchors, ANCHOR_STEP apart       */
#define ANCHOR_STEP 0.03f
#define N_POLISH 4       /* rounds of the polish                            */

/* One format as the search sees it: y = d*q + m with q in [qlo, qhi]
 * (affine) or y = d*q (symmetric, m = 0). */
typedef struct bformat {
    int32_t type;
    int qlo, qhi;
    bool affine;
} bformat;

static const bformat FORMATS[] = {
    { SLM_TYPE_Q4_0, -8, 7, false },   { SLM_TYPE_Q5_0, -16, 15, false },
    { SLM_TYPE_Q8_0, -127, 127, false }, { SLM_TYPE_Q4_1, 0, 15, true },
    { SLM_TYPE_Q5_1, 0, 31, true },
};

static const bformat *format_of(int32_t type) {
    for (size_t i = 0; i < sizeof FORMATS / sizeof FORMATS[0]; i++)
        if (FORMATS[i].type == type) return &FORMATS[i];
    return NULL;
}

static inline float fp16_round(float v) { return slm_fp16_to_f32(slm_f32_to_fp16(v)); }

/* Trial fraction t of N_TRIAL. */
static float frac(int t) { return TRIAL_LO + (TRIAL_HI - TRIAL_LO) * (float)t / (float)(N_TRIAL - 1); }

/* Symmetric weighted fit: returns d (float), quants (as floats) in L. */
static float fit_sym(const bformat *f, const float *x, const float *w, const float *wx, float *L) {
    float amax = 0.0f, vmax = 0.0f, lo = (float)f->qlo, hi = (float)f->qhi;
    for (int i = 0; i < QB; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); vmax = x[i]; }
    memset(L, 0, QB * sizeof *L);
    if (amax < 1e-30f) return 0.0f;
    float best_num = 0.0f, best_den = 1.0f, best = 0.0f, sm[3]; /* maximise num^2/den */
    float T[QB];
    for (int side = 0; side < 2; side++) {
        float end = side ? hi : lo;
        for (int t = 0; t < N_TRIAL; t++) {
            slm_qw_trial(QB, x, w, wx, end * frac(t) / vmax, 0.0f, lo, hi, T, sm);
            float sxl = sm[2], sll = sm[1];
            if (sll > 0.0f && sxl * sxl * best_den > best_num * best_num * sll) {
                best_num = sxl;
                best_den = sll;
                best = sxl / sll;
                memcpy(L, T, sizeof T);
            }
        }
    }
    for (int it = 0; it < N_POLISH && best != 0.0f; it++) {
        slm_qw_trial(QB, x, w, wx, 1.0f / best, 0.0f, lo, hi, T, sm);
        float sxl = sm[2], sll = sm[1];
        if (!memcmp(T, L, sizeof T) || !(sll > 0.0f) || !(sxl * sxl * best_den > best_num * best_num * sll)) break;
        best_num = sxl;
        best_den = sll;
        best = sxl / sll;
        memcpy(L, T, sizeof T);
    }
    return best;
}

/* Weighted least squares d, m for x ~ d*L + m; returns the error or -1. */
static float solve_affine(float sw, float sx, float sxx, float sl, float sll, float sxl, float *d, float *m) {
    float det = sw * sll - sl * sl;
    if (!(det > 0.0f)) return -1.0f;
    float dd = (sw * sxl - sx * sl) / det, mm = (sll * sx - sl * sxl) / det;
    if (!(dd > 0.0f)) return -1.0f;
    *d = dd;
    *m = mm;
    float err = sxx - dd * sxl - mm * sx;
    return err > 0.0f ? err : 0.0f;
}

/* Affine weighted fit: returns d, writes m and the quants (as floats). */
static float fit_affine(const bformat *f, const float *x, const float *w, const float *wx, float *L, float *m_out) {
    float xmin = x[0], xmax = x[0], sw = 0.0f, sx = 0.0f, sxx = 0.0f, sm[3], hi = (float)f->qhi;
    for (int i = 0; i < QB; i++) {
        xmin = fminf(xmin, x[i]);
        xmax = fmaxf(xmax, x[i]);
        sw += w[i];
        sx += wx[i];
        sxx += wx[i] * x[i];
    }
    memset(L, 0, QB * sizeof *L);
    *m_out = xmin;
    if (!(xmax - xmin > 1e-30f)) return 0.0f;
    float best_err = INFINITY, best_d = 0.0f, best_m = xmin;
    float T[QB];
    for (int a = 0; a < N_ANCHOR; a++) {
        float anchor = xmin + (xmax - xmin) * ANCHOR_STEP * (float)a;
        for (int t = 0; t < N_TRIAL; t++) {
            slm_qw_trial(QB, x, w, wx, hi * frac(t) / (xmax - anchor), anchor, 0.0f, hi, T, sm);
            float d, m, err = solve_affine(sw, sx, sxx, sm[0], sm[1], sm[2], &d, &m);
            if (err >= 0.0f && err < best_err) {
                best_err = err;
                best_d = d;
                best_m = m;
                memcpy(L, T, sizeof T);
            }
        }
    }
    for (int it = 0; it < N_POLISH && best_d != 0.0f; it++) {
        slm_qw_trial(QB, x, w, wx, 1.0f / best_d, best_m, 0.0f, hi, T, sm);
        float d, m, err = memcmp(T, L, sizeof T) ? solve_affine(sw, sx, sxx, sm[0], sm[1], sm[2], &d, &m) : -1.0f;
        if (!(err >= 0.0f && err < best_err)) break;
        best_err = err;
        best_d = d;
        best_m = m;
        memcpy(L, T, sizeof T);
    }
    *m_out = best_m;
    return best_d;
}

/* Packs quants L (in qlo..qhi) with fp16 d (and m) into one block. */
static void pack(const bformat *f, const int8_t *L, float d, float m, void *blk) {
    switch (f->type) {
    case SLM_TYPE_Q4_0: {
        block_q4_0 *b = blk;
        b->d = slm_f32_to_fp16(d);
        for (int j = 0; j < QB / 2; j++) b->qs[j] = (uint8_t)((L[j] + 8) | ((L[j + QB / 2] + 8) << 4));
        break;
    }
    case SLM_TYPE_Q4_1: {
        block_q4_1 *b = blk;
        b->d = slm_f32_to_fp16(d);
        b->m = slm_f32_to_fp16(m);
        for (int j = 0; j < QB / 2; j++) b->qs[j] = (uint8_t)(L[j] | (L[j + QB / 2] << 4));
        break;
    }
    case SLM_TYPE_Q5_0:
    case SLM_TYPE_Q5_1: {
        uint8_t *qs, *qh;
        int off = f->type == SLM_TYPE_Q5_0 ? 16 : 0;
        if (f->type == SLM_TYPE_Q5_0) {
            block_q5_0 *b = blk;
            b->d = slm_f32_to_fp16(d);
            qs = b->qs;
            qh = b->qh;
        } else {
            block_q5_1 *b = blk;
            b->d = slm_f32_to_fp16(d);
            b->m = slm_f32_to_fp16(m);
            qs = b->qs;
            qh = b->qh;
        }
        memset(qh, 0, 4);
        for (int j = 0; j < QB / 2; j++) {
            int lo = L[j] + off, hi = L[j + QB / 2] + off;
            qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
            qh[j >> 3] |= (uint8_t)((lo >> 4) << (j & 7));
            qh[(j + QB / 2) >> 3] |= (uint8_t)((hi >> 4) << (j & 7));
        }
        break;
    }
    default: { /* Q8_0 */
        block_q8_0 *b = blk;
        b->d = slm_f32_to_fp16(d);
        memcpy(b->qs, L, QB);
        break;
    }
    }
}

/* Weighted error of one packed block. */
static float block_error(int32_t type, const void *blk, const float *x, const float *w) {
    float y[QB], err = 0.0f;
    slm_type_traits_ref(type)->to_float(blk, y, QB);
    for (int i = 0; i < QB; i++) err += w[i] * (x[i] - y[i]) * (x[i] - y[i]);
    return err;
}

bool slm_quant_row_basic_w(int32_t type, const float *x, void *y, int64_t n, const float *w) {
    static const float ones[QB] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    const int64_t w_step = w ? QB : 0;
    if (!w) w = ones;
    const bformat *f = format_of(type);
    const slm_type_traits *ref = slm_type_traits_ref(type);
    if (!f || !ref) return false;
    size_t bs = ref->type_size;
    unsigned char *out = y;
    int8_t L[QB];
    float Lf[QB];   /* the fit's quants; the stored ones are re-rounded below */
    _Alignas(8) unsigned char cand[40]; /* the largest block here is 34 bytes */
    const float *w_row = w;
    for (int64_t ib = 0; ib < n / QB; ib++, x += QB, w_row += w_step, out += bs) {
        float d, m = 0.0f, wsum = 0.0f;
        for (int i = 0; i < QB; i++) wsum += w_row[i];
        w = wsum > 0.0f ? w_row : ones; /* a block nobody weighs: plain error */
        float wx[QB];
        for (int i = 0; i < QB; i++) wx[i] = w[i] * x[i];
        if (f->affine) {
            d = fit_affine(f, x, w, wx, Lf, &m);
            d = fp16_round(d);
            m = fp16_round(m);
            float id = d != 0.0f ? 1.0f / d : 0.0f;
            for (int i = 0; i < QB; i++) L[i] = (int8_t)slm_round_clamp((x[i] - m) * id, 0, f->qhi);
        } else {
            d = fp16_round(fit_sym(f, x, w, wx, Lf));
            float id = d != 0.0f ? 1.0f / d : 0.0f;
            for (int i = 0; i < QB; i++) L[i] = (int8_t)slm_round_clamp(x[i] * id, f->qlo, f->qhi);
        }
        pack(f, L, d, m, out);
        ref->from_float(x, cand, QB);
        if (block_error(type, cand, x, w) < block_error(type, out, x, w)) memcpy(out, cand, bs);
    }
    return true;
}

bool slm_quant_row(int32_t type, const float *x, void *y, int64_t n, const float *w) {
    const slm_type_traits *ref = slm_type_traits_ref(type);
    if (!ref || !ref->from_float || type == SLM_TYPE_Q8_1 || type == SLM_TYPE_Q8_K) return false;
    if (n % ref->blck_size) return false;
    if (ref->is_quantized && ref->blck_size == QK_K) return slm_quant_row_k_w(type, x, y, n, w);
    if (ref->is_quantized && ref->blck_size != QK_K) return slm_quant_row_basic_w(type, x, y, n, w);
    ref->from_float(x, y, n);
    return true;
}

double slm_quant_row_error(int32_t type, const float *x, const void *y, int64_t n, const float *w, float *buf) {
    const slm_type_traits *ref = slm_type_traits_ref(type);
    if (!ref || n % ref->blck_size) return -1;
    ref->to_float(y, buf, n);
    double err = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)x[i] - (double)buf[i];
        err += (w ? (double)w[i] : 1.0) * e * e;
    }
    return err;
}
