/*
 * stats.h — the small statistics that quality measurements report: a running
 * mean and variance (Welford's update, in double, so a million NLL values
 * lose no precision to cancellation), the standard error of the mean, and
 * percentiles of a sorted sample by linear interpolation between closest
 * ranks (numpy's default: the p-quantile of n sorted values sits at rank
 * p·(n−1)). Plain value types, no allocation.
 */
#ifndef SLM_QUALITY_STATS_H
#define SLM_QUALITY_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct slm_stats {
    int64_t n;          /* values added                                     */
    double  mean;       /* running mean                                     */
    double  m2;         /* sum of squared deviations from the mean          */
    double  min, max;   /* extremes (0 while n == 0)                        */
} slm_stats;

void   slm_stats_init(slm_stats *s);
void   slm_stats_add(slm_stats *s, double x);
/* Mean; 0 when empty. */
double slm_stats_mean(const slm_stats *s);
/* Sample standard deviation (n−1 in the denominator); 0 when n < 2. */
double slm_stats_sd(const slm_stats *s);
/* Standard error of the mean, sd/√n; 0 when n < 2. */
double slm_stats_stderr(const slm_stats *s);

/* Sorts n floats ascending (NaNs last). */
void   slm_stats_sort_f32(float *v, size_t n);
/* The fraction-quantile (0..1, clamped) of n ascending values, linearly
 * interpolated; 0 when n == 0. */
double slm_stats_percentile(const float *sorted, size_t n, double fraction);

#endif
