/*
 * quants_k_search.c — reference quantizers for Q2_K, Q3_K, Q4_K, Q5_K and
 * Q6_K: a least-squares search for the sub-block scales, then the
 * super-block scales, then the packing into each layout.
 *
 * The search has three stages, all minimising the plain squared error
 * sum (x - y)^2 of the dequantized values y:
 *
 * 1. Per sub-block, a float fit. Symmetric formats (Q3_K, Q6_K) fit
 *    x ~ s*q; formats with a min (Q2_K, Q4_K, Q5_K) fit x ~ s*q + b with
 *    s >= 0 and b <= 0 (the layouts store -b as an unsigned min). For a
 *    trial inverse scale the quants are rounded, then s (and b) are the
 *    least-squares solution for those quants. Two dozen trial scales
 *    around "the extreme element lands on the last level" are tried (some
 *    clip the extremes, which pays off at 2-3 bits), affine fits also try
 *    level 0 a little above the block minimum, and the best is then
 *    polished by alternating "round the quants for this s" with "least
 *    squares s for these quants" (each step can only lower the error).
 *
 * 2. The super-block scale d (and dmin) is chosen so that the largest
 *    sub-block scale (and min) uses the full integer range, rounded to
 *    fp16 as stored. Each sub-block then picks the integer scale (and
 *    min) among the floor/ceil neighbours of its float fit that gives the
 *    least error once its quants are rounded again.
 *
 * 3. With the integer sub-block scales and quants fixed, d (and dmin) are
 *    re-solved by least squares over the whole super-block, rounded to
 *    fp16, and stage 2's integer choice is redone; this alternation runs a
 *    few rounds and the best configuration seen is kept.
 *
 * The layouts themselves (bit positions) are described in quants_k.c; the
 * pack_* functions here are their inverses.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/quants.h"
#include "util/fp16.h"

#define ANCHOR_STEP 0.04f /* trial positions of level 0 (affine fits) are
                          * spaced by this fraction of the block's range  */
#define N_POLISH 8       /* max alternations in the sub-block polish       */
#define N_GLOBAL 3       /* rounds of stage 3                              */

/* The shape of one K-quant format, as the search sees it. */
typedef struct kq_format {
    int nsub;            /* sub-blocks per super-block (16 or 8)           */
    int sublen;          /* elements per sub-block (16 or 32)              */
    int qlo, qhi;        /* quant range, e.g. -32..31 or 0..15             */
    int sclo, schi;      /* integer sub-block scale range                  */
    bool has_min;        /* y = d*sc*q - dmin*m, m in 0..schi              */
    float trial_lo, trial_hi; /* trial scales put the extreme element at
                              * this fraction of the last level (below 1
                              * clips it: worth a wide range at 2-3 bits) */
    int n_trial;         /* trial scales per sub-block fit (>= 2)          */
    int n_anchor;        /* trial positions of level 0 (affine fits)       */
} kq_format;

/* A quantized super-block before packing. */
typedef struct kq_block {
    float d, dmin;       /* exactly representable in fp16                  */
    int sc[16], m[16];   /* integer sub-block scales and mins              */
    int8_t L[QK_K];      /* quants, in the format's qlo..qhi               */
} kq_block;

static inline float fp16_round(float v) { return slm_fp16_to_f32(slm_f32_to_fp16(v)); }

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* floor(v) clamped to [lo, hi], defined for any float. */
static int floor_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)floorf(v);
}

/* ---- stage 1: float fits for one sub-block ----------------------------- */

/* The fraction of the last level at which trial t aims the extreme. */
static float trial_frac(const kq_format *f, int t) {
    return f->trial_lo + (f->trial_hi - f->trial_lo) * (float)t / (float)(f->n_trial - 1);
}

/* x ~ s*q, q in [qlo, qhi] (qlo < 0 < qhi). Writes the quants to L and
 * returns s (0 with L all 0 for an all-zero input). */
static float fit_scale(const kq_format *f, int n, const float *x, int8_t *L) {
    const int qlo = f->qlo, qhi = f->qhi;
    float amax = 0.0f, vmax = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); vmax = x[i]; }
    }
    if (amax < 1e-30f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float best_num = 0.0f, best_den = 1.0f;  /* score = num^2 / den          */
    float best_s = 0.0f;
    int8_t T[32];
    /* The extreme element is aimed at level c, on either end of the range,
     * at a fraction trial_frac of that end. */
    for (int side = 0; side < 2; side++) {
        float end = side == 0 ? (float)qlo : (float)qhi;
        for (int t = 0; t < f->n_trial; t++) {
            float iscale = end * trial_frac(f, t) / vmax;
            float sxl = 0.0f, sll = 0.0f;
            for (int i = 0; i < n; i++) {
                T[i] = (int8_t)slm_round_clamp(iscale * x[i], qlo, qhi);
                sxl += x[i] * (float)T[i];
                sll += (float)(T[i] * T[i]);
            }
            /* error = sum x^2 - sxl^2/sll: maximise sxl^2/sll */
            if (sll > 0.0f && sxl * sxl * best_den > best_num * best_num * sll) {
                best_num = sxl;
                best_den = sll;
                best_s = sxl / sll;
                memcpy(L, T, (size_t)n);
            }
        }
    }
    if (best_s == 0.0f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    for (int it = 0; it < N_POLISH; it++) {
        float inv = 1.0f / best_s, sxl = 0.0f, sll = 0.0f;
        bool changed = false;
        for (int i = 0; i < n; i++) {
            T[i] = (int8_t)slm_round_clamp(x[i] * inv, qlo, qhi);
            changed |= T[i] != L[i];
            sxl += x[i] * (float)T[i];
            sll += (float)(T[i] * T[i]);
        }
        if (!changed || !(sll > 0.0f) || !(sxl * sxl * best_den > best_num * best_num * sll)) break;
        best_num = sxl;
        best_den = sll;
        best_s = sxl / sll;
        memcpy(L, T, (size_t)n);
    }
    return best_s;
}

/* Least-squares s, b for x ~ s*L + b with b <= 0, from sums over the n
 * elements: sx = sum x, sxx = sum x^2, sl = sum L, sll = sum L^2,
 * sxl = sum x*L. Returns the squared error, or -1 when the quants cannot
 * carry a positive scale. At the least-squares point the residual is
 * orthogonal to L and to 1, so the error is sxx - s*sxl - b*sx (no second
 * pass over the data). */
static float solve_affine(float n, float sx, float sxx, float sl, float sll, float sxl,
                          float *s, float *b) {
    float det = n * sll - sl * sl;
    if (!(det > 0.0f)) return -1.0f;
    float ss = (n * sxl - sx * sl) / det;
    float bb = (sll * sx - sl * sxl) / det;
    if (bb > 0.0f) {          /* the layouts cannot add: pin b at 0 */
        bb = 0.0f;
        ss = sxl / sll;
    }
    if (!(ss > 0.0f)) return -1.0f;
    *s = ss;
    *b = bb;
    float err = sxx - ss * sxl - bb * sx;
    return err > 0.0f ? err : 0.0f;
}

/* x ~ s*q + b, q in [0, qmax], s >= 0, b <= 0. Writes quants to L and b to
 * *bout, returns s. A constant block gets s = 0 and b = min(x, 0). */
static float fit_affine(const kq_format *f, int n, const float *x, int8_t *L, float *bout) {
    const int qmax = f->qhi;
    float xmin = x[0], xmax = x[0], sx = 0.0f, sxx = 0.0f;
    for (int i = 0; i < n; i++) {
        if (x[i] < xmin) xmin = x[i];
        if (x[i] > xmax) xmax = x[i];
        sx += x[i];
        sxx += x[i] * x[i];
    }
    float lo = xmin < 0.0f ? xmin : 0.0f;
    memset(L, 0, (size_t)n);
    *bout = lo;
    if (!(xmax - lo > 1e-30f)) return 0.0f;

    float best_err = INFINITY, best_s = 0.0f, best_b = lo;
    int8_t T[32];
    for (int o = 0; o < f->n_anchor; o++) {
        /* level 0 anchored at lo, or a little above it (clipping the lowest
         * elements, which least squares then partly undoes) */
        float anchor = lo + (xmax - lo) * ANCHOR_STEP * (float)o;
        for (int t = 0; t < f->n_trial; t++) {
            float iscale = (float)qmax * trial_frac(f, t) / (xmax - anchor);
            float sl = 0.0f, sll = 0.0f, sxl = 0.0f;
            for (int i = 0; i < n; i++) {
                int l = slm_round_clamp(iscale * (x[i] - anchor), 0, qmax);
                T[i] = (int8_t)l;
                sl += (float)l;
                sll += (float)(l * l);
                sxl += x[i] * (float)l;
            }
            float s, b, err = solve_affine((float)n, sx, sxx, sl, sll, sxl, &s, &b);
            if (err >= 0.0f && err < best_err) {
                best_err = err;
                best_s = s;
                best_b = b;
                memcpy(L, T, (size_t)n);
            }
        }
    }
    if (best_s == 0.0f) return 0.0f;   /* no trial could fit: all zero */
    for (int it = 0; it < N_POLISH; it++) {
        float inv = 1.0f / best_s, sl = 0.0f, sll = 0.0f, sxl = 0.0f;
        bool changed = false;
        for (int i = 0; i < n; i++) {
            int l = slm_round_clamp((x[i] - best_b) * inv, 0, qmax);
            changed |= l != L[i];
            T[i] = (int8_t)l;
            sl += (float)l;
            sll += (float)(l * l);
            sxl += x[i] * (float)l;
        }
        float s, b, err = changed ? solve_affine((float)n, sx, sxx, sl, sll, sxl, &s, &b) : -1.0f;
        if (!(err >= 0.0f && err < best_err)) break;
        best_err = err;
        best_s = s;
        best_b = b;
        memcpy(L, T, (size_t)n);
    }
    *bout = best_b;
    return best_s;
}

/* ---- stages 2 and 3 ---------------------------------------------------- */

/* Rounds the quants of one sub-block for integer scale sc (and min m) and
 * returns the squared error, computing y as the dequantizer does. */
static float requant_sub(const kq_format *f, const float *x, float d, float dmin,
                         int sc, int m, int8_t *L) {
    float dl = d * (float)sc, ml = dmin * (float)m, err = 0.0f;
    float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
    for (int i = 0; i < f->sublen; i++) {
        L[i] = (int8_t)slm_round_clamp((x[i] + ml) * idl, f->qlo, f->qhi);
        float e = dl * (float)L[i] - ml - x[i];
        err += e * e;
    }
    return err;
}

/* Stage 2 for one sub-block: the best of the floor/ceil integer scales
 * (and mins) around the float fit s, mn. Returns the error. */
static float pick_ints(const kq_format *f, const float *x, float d, float dmin,
                       float s, float mn, int *sc_out, int *m_out, int8_t *L) {
    int sc0 = d != 0.0f ? floor_clamp(s / d, f->sclo, f->schi) : 0;
    int m0 = f->has_min && dmin != 0.0f ? floor_clamp(mn / dmin, 0, f->schi) : 0;
    int n_m = f->has_min ? 2 : 1;
    float best = INFINITY;
    int8_t T[32];
    for (int a = 0; a < 2; a++) {
        int sc = clampi(sc0 + a, f->sclo, f->schi);
        for (int c = 0; c < n_m; c++) {
            int m = clampi(m0 + c, 0, f->schi);
            float err = requant_sub(f, x, d, dmin, sc, m, T);
            if (err < best) {
                best = err;
                *sc_out = sc;
                *m_out = m;
                memcpy(L, T, (size_t)f->sublen);
            }
        }
    }
    return best;
}

/* Least-squares d (and dmin >= 0) for x ~ d*(sc*L) - dmin*m with the
 * integers fixed; both rounded to fp16. Returns false when degenerate. */
static bool solve_super(const kq_format *f, const float *x, const kq_block *r,
                        float *d, float *dmin) {
    double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
    for (int j = 0; j < f->nsub; j++) {
        for (int i = 0; i < f->sublen; i++) {
            int e = j * f->sublen + i;
            double a = (double)(r->sc[j] * r->L[e]), bm = -(double)r->m[j];
            saa += a * a;
            sab += a * bm;
            sbb += bm * bm;
            sxa += x[e] * a;
            sxb += x[e] * bm;
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

/* Runs stage 2 for all sub-blocks with the given d, dmin; returns the
 * total error. */
static float pick_all(const kq_format *f, const float *x, const float *s, const float *mn,
                      kq_block *r) {
    float err = 0.0f;
    for (int j = 0; j < f->nsub; j++) {
        int off = j * f->sublen;
        err += pick_ints(f, x + off, r->d, r->dmin, s[j], mn[j], &r->sc[j], &r->m[j], r->L + off);
    }
    return err;
}

/* Quantizes one super-block of QK_K floats into r. */
static void kq_search(const kq_format *f, const float *x, kq_block *r) {
    float s[16], mn[16];
    memset(r, 0, sizeof *r);
    for (int j = 0; j < f->nsub; j++) {
        int off = j * f->sublen;
        if (f->has_min) {
            float b;
            s[j] = fit_affine(f, f->sublen, x + off, r->L + off, &b);
            mn[j] = -b;
        } else {
            s[j] = fit_scale(f, f->sublen, x + off, r->L + off);
            mn[j] = 0.0f;
        }
    }

    /* stage 2: d from the largest scale (sign kept, so that it lands on
     * the longer end sclo of a signed range), dmin from the largest min */
    float smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < f->nsub; j++) {
        if (fabsf(s[j]) > fabsf(smax)) smax = s[j];
        mmax = fmaxf(mmax, mn[j]);
    }
    r->d = fp16_round(f->sclo < 0 ? smax / (float)f->sclo : smax / (float)f->schi);
    r->dmin = fp16_round(mmax / (float)f->schi);
    float best_err = pick_all(f, x, s, mn, r);

    /* stage 3: alternate least-squares d, dmin with re-picking the ints */
    kq_block trial;
    for (int round = 0; round < N_GLOBAL; round++) {
        trial = *r;
        if (!solve_super(f, x, r, &trial.d, &trial.dmin)) break;
        float err = pick_all(f, x, s, mn, &trial);
        if (!(err < best_err)) break;
        best_err = err;
        *r = trial;
    }
}

/* ---- packing ----------------------------------------------------------- */

/* Trial ranges and counts measured on Gaussian data: wide ranges help 2-3
 * bits (clipping pays) and cost resolution at 4-6 bits; beyond these counts
 * the error no longer improves (q3_K's polish converges from 12 trials;
 * the anchor trials only help q2_K and, slightly, q4_K). */
static const kq_format FMT_Q2_K = { 16, 16, 0, 3, 0, 15, true, 0.6f, 1.2f, 16, 4 };
static const kq_format FMT_Q3_K = { 16, 16, -4, 3, -32, 31, false, 0.6f, 1.2f, 12, 1 };
static const kq_format FMT_Q4_K = { 8, 32, 0, 15, 0, 63, true, 0.75f, 1.05f, 16, 2 };
static const kq_format FMT_Q5_K = { 8, 32, 0, 31, 0, 63, true, 0.75f, 1.05f, 16, 1 };
static const kq_format FMT_Q6_K = { 16, 16, -32, 31, -128, 127, false, 0.75f, 1.05f, 16, 1 };

/* Q4_K/Q5_K scale bytes: inverse of slm_k4_scale_min. */
static void pack_k4_scales(const kq_block *r, uint8_t q[K_SCALE_SIZE]) {
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

void slm_q2_K_from_float(const float *x, void *y, int64_t n) {
    block_q2_K *b = y;
    kq_block r;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        kq_search(&FMT_Q2_K, x, &r);
        memset(&b[i], 0, sizeof b[i]);
        b[i].d = slm_f32_to_fp16(r.d);
        b[i].dmin = slm_f32_to_fp16(r.dmin);
        for (int j = 0; j < 16; j++) {
            b[i].scales[j] = (uint8_t)(r.sc[j] | (r.m[j] << 4));
            uint8_t *qs = b[i].qs + 32 * (j >> 3) + 16 * (j & 1);
            int shift = 2 * ((j & 7) >> 1);
            for (int l = 0; l < 16; l++) qs[l] |= (uint8_t)(r.L[16 * j + l] << shift);
        }
    }
}

void slm_q3_K_from_float(const float *x, void *y, int64_t n) {
    block_q3_K *b = y;
    kq_block r;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        kq_search(&FMT_Q3_K, x, &r);
        memset(&b[i], 0, sizeof b[i]);
        b[i].d = slm_f32_to_fp16(r.d);
        for (int j = 0; j < 16; j++) {
            int v = r.sc[j] + 32;
            if (j < 8) b[i].scales[j] |= (uint8_t)(v & 0x0f);
            else b[i].scales[j - 8] |= (uint8_t)((v & 0x0f) << 4);
            b[i].scales[8 + (j & 3)] |= (uint8_t)((v >> 4) << (2 * (j >> 2)));

            int h = j >> 3, k = (j & 7) >> 1, off = 16 * (j & 1);
            uint8_t *qs = b[i].qs + 32 * h + off, *hm = b[i].hmask + off;
            for (int l = 0; l < 16; l++) {
                int u = r.L[16 * j + l] + 4;               /* 0..7 */
                qs[l] |= (uint8_t)((u & 3) << (2 * k));
                hm[l] |= (uint8_t)((u >> 2) << (4 * h + k));
            }
        }
    }
}

void slm_q4_K_from_float(const float *x, void *y, int64_t n) {
    block_q4_K *b = y;
    kq_block r;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        kq_search(&FMT_Q4_K, x, &r);
        memset(&b[i], 0, sizeof b[i]);
        b[i].d = slm_f32_to_fp16(r.d);
        b[i].dmin = slm_f32_to_fp16(r.dmin);
        pack_k4_scales(&r, b[i].scales);
        for (int j = 0; j < 8; j++) {
            uint8_t *qs = b[i].qs + 32 * (j >> 1);
            for (int l = 0; l < 32; l++) qs[l] |= (uint8_t)(r.L[32 * j + l] << (4 * (j & 1)));
        }
    }
}

void slm_q5_K_from_float(const float *x, void *y, int64_t n) {
    block_q5_K *b = y;
    kq_block r;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        kq_search(&FMT_Q5_K, x, &r);
        memset(&b[i], 0, sizeof b[i]);
        b[i].d = slm_f32_to_fp16(r.d);
        b[i].dmin = slm_f32_to_fp16(r.dmin);
        pack_k4_scales(&r, b[i].scales);
        for (int j = 0; j < 8; j++) {
            uint8_t *qs = b[i].qs + 32 * (j >> 1);
            for (int l = 0; l < 32; l++) {
                int u = r.L[32 * j + l];                   /* 0..31 */
                qs[l] |= (uint8_t)((u & 0x0f) << (4 * (j & 1)));
                b[i].qh[l] |= (uint8_t)((u >> 4) << j);
            }
        }
    }
}

void slm_q6_K_from_float(const float *x, void *y, int64_t n) {
    block_q6_K *b = y;
    kq_block r;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        kq_search(&FMT_Q6_K, x, &r);
        memset(&b[i], 0, sizeof b[i]);
        b[i].d = slm_f32_to_fp16(r.d);
        for (int j = 0; j < 16; j++) {
            b[i].scales[j] = (int8_t)r.sc[j];
            int h = j >> 3, k = (j & 7) >> 1, off = 16 * (j & 1);
            uint8_t *ql = b[i].ql + 64 * h + 32 * (k & 1) + off;
            uint8_t *qh = b[i].qh + 32 * h + off;
            for (int l = 0; l < 16; l++) {
                int u = r.L[16 * j + l] + 32;              /* 0..63 */
                ql[l] |= (uint8_t)((u & 0x0f) << (4 * (k >> 1)));
                qh[l] |= (uint8_t)((u >> 4) << (2 * k));
            }
        }
    }
}
