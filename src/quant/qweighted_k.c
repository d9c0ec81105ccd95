/*
 * qweighted_k.c — importance-weighted quantizers for Q2_K, Q3_K, Q4_K,
 * Q5_K and Q6_K.
 *
 * The search is the reference one of src/kernels/quants_k_search.c with
 * every squared error, every least-squares sum and every comparison
 * weighted by the column importances w (see qweighted.h):
 *
 * 1. per sub-block, a float fit: x ~ s*q (Q3_K, Q6_K) or x ~ s*q + b with
 *    b <= 0 (Q2_K, Q4_K, Q5_K). Trial inverse scales aim the extreme
 *    element at a fraction of the last level (some clip it), affine fits
 *    also anchor level 0 a little above the minimum; each trial's quants
 *    get the weighted least-squares s (and b); the best is polished by
 *    alternating rounding and least squares;
 * 2. the super-block scale d (and dmin) gives the largest sub-block scale
 *    (min) the full integer range, rounded to fp16; each sub-block picks
 *    its integer scale (min) among the floor/ceil neighbours of its float
 *    fit by the weighted error after re-rounding its quants;
 * 3. d (and dmin) are re-solved by weighted least squares over the whole
 *    super-block with the integers fixed and stage 2 is redone, while the
 *    weighted error drops.
 * With uniform weights this lands where the reference does (up to float
 * summation order). Two guards keep sparse importance (a few columns
 * carrying all the weight, as with massive-activation channels) from
 * degrading the columns that do matter: a sub-block whose weights are all
 * zero falls back to uniform weights, and the affine fits keep their
 * offset near the sub-block's values (else a two-point fit could ask for a
 * min far below the data, inflating dmin for the whole super-block).
 *
 * The pack_* functions write the bit layouts that quants_k.c reads; the
 * tests check them by dequantizing with the kernels' to_float.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/quants.h"
#include "kernels/types.h"
#include "quant/qweighted.h"
#include "util/fp16.h"

#define ANCHOR_STEP 0.04f
#define N_POLISH 8
#define N_GLOBAL 3
#define B_FLOOR 0.25f   /* affine offsets stay above min - B_FLOOR * range       */

typedef struct kformat {
    int32_t type;
    int nsub, sublen;    /* sub-blocks per super-block, elements each      */
    int qlo, qhi;        /* quant range                                    */
    int sclo, schi;      /* integer sub-block scale range                  */
    bool has_min;        /* y = d*sc*q - dmin*m                            */
    float trial_lo, trial_hi;
    int n_trial, n_anchor;
} kformat;

/* The trial ranges are the reference's (measured on Gaussian data there). */
static const kformat KFORMATS[] = {
    { SLM_TYPE_Q2_K, 16, 16, 0, 3, 0, 15, true, 0.6f, 1.2f, 16, 4 },
    { SLM_TYPE_Q3_K, 16, 16, -4, 3, -32, 31, false, 0.6f, 1.2f, 12, 1 },
    { SLM_TYPE_Q4_K, 8, 32, 0, 15, 0, 63, true, 0.75f, 1.05f, 16, 2 },
    { SLM_TYPE_Q5_K, 8, 32, 0, 31, 0, 63, true, 0.75f, 1.05f, 16, 1 },
    { SLM_TYPE_Q6_K, 16, 16, -32, 31, -128, 127, false, 0.75f, 1.05f, 16, 1 },
};

typedef struct kblock {
    float d, dmin;       /* fp16-exact                                     */
    int sc[16], m[16];
    int8_t L[QK_K];
} kblock;

static inline float fp16_round(float v) { return slm_fp16_to_f32(slm_f32_to_fp16(v)); }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static int floor_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)floorf(v);
}

static float trial_frac(const kformat *f, int t) {
    return f->trial_lo + (f->trial_hi - f->trial_lo) * (float)t / (float)(f->n_trial - 1);
}

/* ---- stage 1 ------------------------------------------------------------ */

/* slm_qw_trial with the sub-block length as a constant (16 or 32), which
 * is what lets -O2 vectorize its loops. */
static inline void ktrial(int n, const float *x, const float *w, const float *wx, float is, float off, float lo,
                          float hi, float *T, float s[3]) {
    if (n == 32) slm_qw_trial(32, x, w, wx, is, off, lo, hi, T, s);
    else slm_qw_trial(16, x, w, wx, is, off, lo, hi, T, s);
}

/* x ~ s*q over n elements; writes the quants to L and returns s (0 with L
 * all 0 for an all-zero input). wx = w*x. */
static float fit_scale(const kformat *f, int n, const float *x, const float *w, const float *wx, int8_t *L) {
    float amax = 0.0f, vmax = 0.0f, lo = (float)f->qlo, hi = (float)f->qhi;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); vmax = x[i]; }
    for (int i = 0; i < n; i++) L[i] = 0;
    if (amax < 1e-30f) return 0.0f;
    float best_num = 0.0f, best_den = 1.0f, best_s = 0.0f, sm[3], T[32], B[32];
    for (int side = 0; side < 2; side++) {
        float end = side == 0 ? lo : hi;
        for (int t = 0; t < f->n_trial; t++) {
            ktrial(n, x, w, wx, end * trial_frac(f, t) / vmax, 0.0f, lo, hi, T, sm);
            float sxl = sm[2], sll = sm[1];
            if (sll > 0.0f && sxl * sxl * best_den > best_num * best_num * sll) {
                best_num = sxl;
                best_den = sll;
                best_s = sxl / sll;
                memcpy(B, T, (size_t)n * sizeof(float));
            }
        }
    }
    if (best_s == 0.0f) return 0.0f;   /* L is still all zero */
    for (int it = 0; it < N_POLISH; it++) {
        ktrial(n, x, w, wx, 1.0f / best_s, 0.0f, lo, hi, T, sm);
        float sxl = sm[2], sll = sm[1];
        if (!memcmp(T, B, (size_t)n * sizeof(float)) || !(sll > 0.0f) ||
            !(sxl * sxl * best_den > best_num * best_num * sll))
            break;
        best_num = sxl;
        best_den = sll;
        best_s = sxl / sll;
        memcpy(B, T, (size_t)n * sizeof(float));
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)B[i];
    return best_s;
}

/* Weighted least squares for x ~ s*L + b with lo <= b <= 0: the layouts
 * cannot add, and a b far below every value — which a fit to a few heavily
 * weighted elements can ask for — would inflate the super-block's dmin for
 * all sub-blocks. The caller's lo is a quarter of the sub-block's range
 * below its minimum: with uniform weights the search then lands exactly
 * where the reference does (measured on Gaussian data), with a single hot
 * column in 16 the hot columns' error stays 0.02-0.09 of the plain one
 * (a floor at the minimum itself costs 0.2% on uniform weights; none lets
 * Q2_K-Q5_K miss the hot columns by 2-60x). Returns the error or -1. */
static float solve_affine(float sw, float sx, float sxx, float sl, float sll, float sxl, float lo, float *s, float *b) {
    float det = sw * sll - sl * sl;
    if (!(sll > 0.0f)) return -1.0f;
    float ss = det > 0.0f ? (sw * sxl - sx * sl) / det : 0.0f, bb = det > 0.0f ? (sll * sx - sl * sxl) / det : lo;
    if (!(det > 0.0f) || bb > 0.0f || bb < lo) {
        bb = !(det > 0.0f) || bb < lo ? lo : 0.0f;
        ss = (sxl - bb * sl) / sll;   /* least-squares s for that b */
    }
    if (!(ss > 0.0f)) return -1.0f;
    *s = ss;
    *b = bb;
    /* sum w (x - s L - b)^2, expanded */
    float err = sxx - 2.0f * bb * sx + bb * bb * sw - ss * (sxl - bb * sl);
    return err > 0.0f ? err : 0.0f;
}

/* x ~ s*q + b, q in [0, qmax], s >= 0, b <= 0. Writes quants to L and b to
 * *bout, returns s. A constant block gets s = 0 and b = min(x, 0). */
static float fit_affine(const kformat *f, int n, const float *x, const float *w, const float *wx, int8_t *L,
                        float *bout) {
    const float qmax = (float)f->qhi;
    float xmin = x[0], xmax = x[0], sw = 0.0f, sx = 0.0f, sxx = 0.0f;
    for (int i = 0; i < n; i++) {
        xmin = fminf(xmin, x[i]);
        xmax = fmaxf(xmax, x[i]);
        sw += w[i];
        sx += wx[i];
        sxx += wx[i] * x[i];
    }
    float lo = xmin < 0.0f ? xmin : 0.0f;
    for (int i = 0; i < n; i++) L[i] = 0;
    *bout = lo;
    if (!(xmax - lo > 1e-30f)) return 0.0f;
    float best_err = INFINITY, best_s = 0.0f, best_b = lo, sm[3], T[32], B[32];
    float b_floor = lo - B_FLOOR * (xmax - lo);   /* see solve_affine */
    for (int o = 0; o < f->n_anchor; o++) {
        float anchor = lo + (xmax - lo) * ANCHOR_STEP * (float)o;
        for (int t = 0; t < f->n_trial; t++) {
            ktrial(n, x, w, wx, qmax * trial_frac(f, t) / (xmax - anchor), anchor, 0.0f, qmax, T, sm);
            float s, b, err = solve_affine(sw, sx, sxx, sm[0], sm[1], sm[2], b_floor, &s, &b);
            if (err >= 0.0f && err < best_err) {
                best_err = err;
                best_s = s;
                best_b = b;
                memcpy(B, T, (size_t)n * sizeof(float));
            }
        }
    }
    if (best_s == 0.0f) return 0.0f;
    for (int it = 0; it < N_POLISH; it++) {
        ktrial(n, x, w, wx, 1.0f / best_s, best_b, 0.0f, qmax, T, sm);
        float s, b, err = memcmp(T, B, (size_t)n * sizeof(float))
                              ? solve_affine(sw, sx, sxx, sm[0], sm[1], sm[2], b_floor, &s, &b) : -1.0f;
        if (!(err >= 0.0f && err < best_err)) break;
        best_err = err;
        best_s = s;
        best_b = b;
        memcpy(B, T, (size_t)n * sizeof(float));
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)B[i];
    *bout = best_b;
    return best_s;
}

/* ---- stages 2 and 3 ----------------------------------------------------- */

/* Rounds n quants for scale dl and min ml into T (as floats) and returns
 * the weighted error, computing y as the dequantizer does. */
static inline float requant_n(int n, const float *restrict x, const float *restrict w, float dl, float ml, float lo,
                              float hi, float *restrict T) {
    float idl = dl != 0.0f ? 1.0f / dl : 0.0f, e4[4] = { 0 };
    for (int i = 0; i < n; i++) T[i] = slm_qw_round((x[i] + ml) * idl, lo, hi);
    for (int i = 0; i < n; i += 4) {
        for (int k = 0; k < 4; k++) {
            float e = dl * T[i + k] - ml - x[i + k];
            e4[k] += w[i + k] * e * e;
        }
    }
    return (e4[0] + e4[1]) + (e4[2] + e4[3]);
}

/* One sub-block with integer scale sc (and min m): quants into T, returns
 * the weighted error (vectorized like ktrial). */
static float requant_sub(const kformat *f, const float *x, const float *w, float d, float dmin, int sc, int m,
                         float *T) {
    float dl = d * (float)sc, ml = dmin * (float)m, lo = (float)f->qlo, hi = (float)f->qhi;
    return f->sublen == 32 ? requant_n(32, x, w, dl, ml, lo, hi, T) : requant_n(16, x, w, dl, ml, lo, hi, T);
}

static float pick_ints(const kformat *f, const float *x, const float *w, float d, float dmin, float s, float mn,
                       int *sc_out, int *m_out, int8_t *L) {
    int sc0 = d != 0.0f ? floor_clamp(s / d, f->sclo, f->schi) : 0;
    int m0 = f->has_min && dmin != 0.0f ? floor_clamp(mn / dmin, 0, f->schi) : 0;
    int n_m = f->has_min ? 2 : 1;
    float best = INFINITY, T[32], B[32];
    for (int a = 0; a < 2; a++) {
        int sc = clampi(sc0 + a, f->sclo, f->schi);
        for (int c = 0; c < n_m; c++) {
            int m = clampi(m0 + c, 0, f->schi);
            float err = requant_sub(f, x, w, d, dmin, sc, m, T);
            if (err < best) {
                best = err;
                *sc_out = sc;
                *m_out = m;
                memcpy(B, T, (size_t)f->sublen * sizeof(float));
            }
        }
    }
    for (int i = 0; i < f->sublen; i++) L[i] = (int8_t)B[i];
    return best;
}

static bool solve_super(const kformat *f, const float *x, const float *w, const kblock *r, float *d, float *dmin) {
    double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
    for (int j = 0; j < f->nsub; j++) {
        for (int i = 0; i < f->sublen; i++) {
            int e = j * f->sublen + i;
            double a = (double)(r->sc[j] * r->L[e]), bm = -(double)r->m[j], we = w[e];
            saa += we * a * a;
            sab += we * a * bm;
            sbb += we * bm * bm;
            sxa += we * x[e] * a;
            sxb += we * x[e] * bm;
        }
    }
    if (!(saa > 0)) return false;
    double dd = sxa / saa, dm = 0;
    double det = saa * sbb - sab * sab;
    if (f->has_min && det > 1e-12 * saa * sbb) {
        dd = (sxa * sbb - sxb * sab) / det;
        dm = (saa * sxb - sab * sxa) / det;
        if (dm < 0) {
            dm = 0;
            dd = sxa / saa;
        }
    }
    *d = fp16_round((float)dd);
    *dmin = fp16_round((float)dm);
    return isfinite(*d) && isfinite(*dmin);
}

static float pick_all(const kformat *f, const float *x, const float *w, const float *s, const float *mn,
                      kblock *r) {
    float err = 0.0f;
    for (int j = 0; j < f->nsub; j++) {
        int off = j * f->sublen;
        err += pick_ints(f, x + off, w + off, r->d, r->dmin, s[j], mn[j], &r->sc[j], &r->m[j], r->L + off);
    }
    return err;
}

/* One super-block; w0 are the caller's weights (QK_K of them), NULL for
 * uniform ones. */
static void kq_search_w(const kformat *f, const float *x, const float *w0, kblock *r) {
    float w[QK_K], wx[QK_K], s[16], mn[16];
    for (int j = 0; j < f->nsub; j++) { /* an all-zero sub-block falls back to uniform weights */
        int off = j * f->sublen;
        float sum = 0.0f;
        for (int i = 0; w0 && i < f->sublen; i++) sum += w0[off + i];
        for (int i = 0; i < f->sublen; i++) w[off + i] = sum > 0.0f ? w0[off + i] : 1.0f;
    }
    for (int i = 0; i < QK_K; i++) wx[i] = w[i] * x[i];
    memset(r, 0, sizeof *r);
    for (int j = 0; j < f->nsub; j++) {
        int off = j * f->sublen;
        if (f->has_min) {
            float b;
            s[j] = fit_affine(f, f->sublen, x + off, w + off, wx + off, r->L + off, &b);
            mn[j] = -b;
        } else {
            s[j] = fit_scale(f, f->sublen, x + off, w + off, wx + off, r->L + off);
            mn[j] = 0.0f;
        }
    }
    float smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < f->nsub; j++) {
        if (fabsf(s[j]) > fabsf(smax)) smax = s[j];
        mmax = fmaxf(mmax, mn[j]);
    }
    r->d = fp16_round(f->sclo < 0 ? smax / (float)f->sclo : smax / (float)f->schi);
    r->dmin = fp16_round(mmax / (float)f->schi);
    float best_err = pick_all(f, x, w, s, mn, r);
    kblock trial;
    for (int round = 0; round < N_GLOBAL; round++) {
        trial = *r;
        if (!solve_super(f, x, w, r, &trial.d, &trial.dmin)) break;
        float err = pick_all(f, x, w, s, mn, &trial);
        if (!(err < best_err)) break;
        best_err = err;
        *r = trial;
    }
}

/* ---- packing (inverse of quants_k.c's unpacking) ------------------------ */

static void pack_q2_K(const kblock *r, block_q2_K *b) {
    memset(b, 0, sizeof *b);
    b->d = slm_f32_to_fp16(r->d);
    b->dmin = slm_f32_to_fp16(r->dmin);
    for (int j = 0; j < 16; j++) {
        b->scales[j] = (uint8_t)(r->sc[j] | (r->m[j] << 4));
        uint8_t *qs = b->qs + 32 * (j >> 3) + 16 * (j & 1);
        int shift = 2 * ((j & 7) >> 1);
        for (int l = 0; l < 16; l++) qs[l] |= (uint8_t)(r->L[16 * j + l] << shift);
    }
}

static void pack_q3_K(const kblock *r, block_q3_K *b) {
    memset(b, 0, sizeof *b);
    b->d = slm_f32_to_fp16(r->d);
    for (int j = 0; j < 16; j++) {
        int v = r->sc[j] + 32;
        if (j < 8) b->scales[j] |= (uint8_t)(v & 0x0f);
        else b->scales[j - 8] |= (uint8_t)((v & 0x0f) << 4);
        b->scales[8 + (j & 3)] |= (uint8_t)((v >> 4) << (2 * (j >> 2)));
        int h = j >> 3, k = (j & 7) >> 1, off = 16 * (j & 1);
        uint8_t *qs = b->qs + 32 * h + off, *hm = b->hmask + off;
        for (int l = 0; l < 16; l++) {
            int u = r->L[16 * j + l] + 4;
            qs[l] |= (uint8_t)((u & 3) << (2 * k));
            hm[l] |= (uint8_t)((u >> 2) << (4 * h + k));
        }
    }
}

/* Q4_K/Q5_K scale bytes (see slm_k4_scale_min). */
static void pack_k4_scales(const kblock *r, uint8_t q[K_SCALE_SIZE]) {
    memset(q, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        int sc = r->sc[j], m = r->m[j];
        if (j < 4) {
            q[j] |= (uint8_t)sc;
            q[j + 4] |= (uint8_t)m;
        } else {
            q[j + 4] = (uint8_t)((sc & 0x0f) | ((m & 0x0f) << 4));
            q[j - 4] |= (uint8_t)((sc >> 4) << 6);
            q[j] |= (uint8_t)((m >> 4) << 6);
        }
    }
}

static void pack_q4_K(const kblock *r, block_q4_K *b) {
    memset(b, 0, sizeof *b);
    b->d = slm_f32_to_fp16(r->d);
    b->dmin = slm_f32_to_fp16(r->dmin);
    pack_k4_scales(r, b->scales);
    for (int j = 0; j < 8; j++) {
        uint8_t *qs = b->qs + 32 * (j >> 1);
        for (int l = 0; l < 32; l++) qs[l] |= (uint8_t)(r->L[32 * j + l] << (4 * (j & 1)));
    }
}

static void pack_q5_K(const kblock *r, block_q5_K *b) {
    memset(b, 0, sizeof *b);
    b->d = slm_f32_to_fp16(r->d);
    b->dmin = slm_f32_to_fp16(r->dmin);
    pack_k4_scales(r, b->scales);
    for (int j = 0; j < 8; j++) {
        uint8_t *qs = b->qs + 32 * (j >> 1);
        for (int l = 0; l < 32; l++) {
            int u = r->L[32 * j + l];
            qs[l] |= (uint8_t)((u & 0x0f) << (4 * (j & 1)));
            b->qh[l] |= (uint8_t)((u >> 4) << j);
        }
    }
}

static void pack_q6_K(const kblock *r, block_q6_K *b) {
    memset(b, 0, sizeof *b);
    b->d = slm_f32_to_fp16(r->d);
    for (int j = 0; j < 16; j++) {
        b->scales[j] = (int8_t)r->sc[j];
        int h = j >> 3, k = (j & 7) >> 1, off = 16 * (j & 1);
        uint8_t *ql = b->ql + 64 * h + 32 * (k & 1) + off, *qh = b->qh + 32 * h + off;
        for (int l = 0; l < 16; l++) {
            int u = r->L[16 * j + l] + 32;
            ql[l] |= (uint8_t)((u & 0x0f) << (4 * (k >> 1)));
            qh[l] |= (uint8_t)((u >> 4) << (2 * k));
        }
    }
}

bool slm_quant_row_k_w(int32_t type, const float *x, void *y, int64_t n, const float *w) {
    const kformat *f = NULL;
    for (size_t i = 0; i < sizeof KFORMATS / sizeof KFORMATS[0]; i++)
        if (KFORMATS[i].type == type) f = &KFORMATS[i];
    if (!f || n % QK_K) return false;
    kblock r;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        kq_search_w(f, x, w ? w + i * QK_K : NULL, &r);
        switch (type) {
        case SLM_TYPE_Q2_K: pack_q2_K(&r, (block_q2_K *)y + i); break;
        case SLM_TYPE_Q3_K: pack_q3_K(&r, (block_q3_K *)y + i); break;
        case SLM_TYPE_Q4_K: pack_q4_K(&r, (block_q4_K *)y + i); break;
        case SLM_TYPE_Q5_K: pack_q5_K(&r, (block_q5_K *)y + i); break;
        default: pack_q6_K(&r, (block_q6_K *)y + i); break;
        }
    }
    return true;
}
