/*
 * stats.c — running mean/variance and percentiles (see stats.h). Welford's
 * update keeps the variance accurate when the mean is large next to the
 * spread (NLL values around 2.5 differing in the third decimal); the
 * percentile uses the closest-ranks interpolation most tools agree on, so a
 * median of an even sample is the mean of its two middle values.
 */
#include "quality/stats.h"

#include <math.h>
#include <stdlib.h>

void slm_stats_init(slm_stats *s) { *s = (slm_stats){ 0 }; }

void slm_stats_add(slm_stats *s, double x) {
    s->n++;
    if (s->n == 1) {
        s->min = s->max = x;
    } else {
        if (x < s->min) s->min = x;
        if (x > s->max) s->max = x;
    }
    double d = x - s->mean;
    s->mean += d / (double)s->n;
    s->m2 += d * (x - s->mean);
}

double slm_stats_mean(const slm_stats *s) { return s->n > 0 ? s->mean : 0.0; }

double slm_stats_sd(const slm_stats *s) {
    if (s->n < 2 || !(s->m2 > 0)) return 0.0;
    return sqrt(s->m2 / (double)(s->n - 1));
}

double slm_stats_stderr(const slm_stats *s) {
    return s->n < 2 ? 0.0 : slm_stats_sd(s) / sqrt((double)s->n);
}

static int cmp_f32(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    if (isnan(x)) return isnan(y) ? 0 : 1;
    if (isnan(y)) return -1;
    return (x > y) - (x < y);
}

void slm_stats_sort_f32(float *v, size_t n) {
    if (n > 1) qsort(v, n, sizeof *v, cmp_f32);
}

double slm_stats_percentile(const float *sorted, size_t n, double fraction) {
    if (n == 0) return 0.0;
    if (!(fraction > 0)) return sorted[0];
    if (fraction >= 1) return sorted[n - 1];
    double rank = fraction * (double)(n - 1);
    size_t lo = (size_t)rank;
    double t = rank - (double)lo;
    if (lo + 1 >= n) return sorted[n - 1];
    return (1.0 - t) * sorted[lo] + t * sorted[lo + 1];
}
