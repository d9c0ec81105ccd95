/*
 * stats.h — aggregate statistics for `slm eval`: pure functions over arrays,
 * no I/O, no globals; the same inputs and seed give the same numbers on every
 * platform (resampling uses sample/rng.h's xoshiro256**).
 *
 * Names are slm_eval_stats_* (not slm_stats_*): src/quality/stats.h already
 * owns the slm_stats_ prefix (slm_stats_mean over its running slm_stats), and
 * both objects link into libslm.a.
 *
 * Conventions (documented once here):
 *  - An empty input gives NAN for a mean, percentile or interval.
 *  - Percentiles interpolate linearly between order statistics (numpy's
 *    default, Hyndman-Fan type 7): rank = p/100 * (n-1).
 *  - Bootstrap intervals use the percentile method over B resamples
 *    (default 1000) of the per-case values, drawn with a seeded generator.
 *  - Precision, recall, F1 follow scikit-learn with zero_division=0: a ratio
 *    whose denominator is 0 is 0 (a label with no support has recall 0 and
 *    F1 0; a label never predicted has precision 0).
 *  - Ratios with nothing to divide by that are not P/R/F1 are NAN (cost per
 *    correct answer with no correct answer); the JSON writer prints NAN as
 *    null and reports print "n/a".
 */
#ifndef SLM_EVAL_STATS_H
#define SLM_EVAL_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slm/slm.h"

#define SLM_EVAL_STATS_DEFAULT_BOOT 1000

/* ---- scores and latencies ---------------------------------------------- */

double slm_eval_stats_mean(const double *x, size_t n);          /* NAN when n == 0 */

/* p-th percentile (0..100) of sorted[0..n) (ascending), linear interpolation.
 * NAN when n == 0. */
double slm_eval_stats_percentile_sorted(const double *sorted, size_t n, double p);

/* Percentiles ps[0..n_ps) of unsorted x[0..n) into out[0..n_ps) (x is not
 * changed; a sorted copy is made). SLM_ENOMEM, else 0. */
int slm_eval_stats_percentiles(const double *x, size_t n, const double *ps, size_t n_ps, double *out);

typedef struct slm_eval_stats_ci {
    double mean;          /* the statistic on the whole sample               */
    double lo, hi;        /* percentile bootstrap interval                   */
} slm_eval_stats_ci;

/* Bootstrap CI of the mean of x[0..n). n_boot <= 0: 1000; level <= 0 or >= 1:
 * 0.95. Deterministic for a seed. n == 0: all NAN; n == 1: lo = hi = mean.
 * SLM_ENOMEM, else 0. */
int slm_eval_stats_bootstrap_mean_ci(const double *x, size_t n, int n_boot, double level,
                                uint64_t seed, slm_eval_stats_ci *out);

/* ---- precision / recall / F1 -------------------------------------------- */

typedef struct slm_eval_stats_prf {
    long   tp, fp, fn;                 /* summed counts                       */
    double precision, recall, f1;      /* zero_division=0                     */
} slm_eval_stats_prf;

/* Fills out from counts (P = tp/(tp+fp), R = tp/(tp+fn), F1 = 2PR/(P+R)). */
void slm_eval_stats_prf_from_counts(long tp, long fp, long fn, slm_eval_stats_prf *out);

/* ---- labels (classification) -------------------------------------------- */

typedef struct slm_eval_stats_labels {
    size_t  n_labels;        /* rows/columns of the confusion matrix          */
    char  **labels;          /* names: label_set order, then other labels seen
                                sorted bytewise, "(none)" last when seen       */
    long   *confusion;       /* [gold * n_labels + pred] counts                */
    slm_eval_stats_prf *per_label;/* per label, one-vs-rest; tp/fp/fn filled        */
    long   *support;         /* gold count per label                           */
    size_t  n;               /* cases                                          */
    double  accuracy;        /* diagonal / n (NAN when n == 0)                 */
    double  macro_f1;        /* mean F1 over the gold label set: labels with
                                support > 0 (sklearn f1_score(labels=
                                sorted(set(y_true)), average="macro",
                                zero_division=0)); NAN when n == 0             */
    double  macro_f1_all;    /* mean F1 over every label in the matrix
                                (sklearn's default: union of gold and predicted,
                                plus label_set): zero-support labels count 0   */
    double  macro_precision, macro_recall; /* over the gold label set          */
} slm_eval_stats_labels;

/* Label metrics of n cases: gold[i] and pred[i] are label names (NULL counts
 * as "(none)"). label_set (may be NULL) fixes the first rows in its order.
 * *out is freed with slm_eval_stats_labels_clear. SLM_ENOMEM, else 0. */
int slm_eval_stats_labels_compute(const char *const *gold, const char *const *pred, size_t n,
                             const char *const *label_set, size_t n_label_set,
                             slm_eval_stats_labels *out, slm_err *err);
void slm_eval_stats_labels_clear(slm_eval_stats_labels *s);   /* frees, zeroes; NULL ok */

/* ---- extraction (fields) ------------------------------------------------ */

/* One observation: a case's counts for one field (from slm_eval_score's
 * fields[]; a runner flattens all cases' fields into one array). */
typedef struct slm_eval_stats_field_obs {
    const char *field;
    int tp, fp, fn;
} slm_eval_stats_field_obs;

typedef struct slm_eval_stats_fields {
    slm_eval_stats_prf  micro;     /* from the summed tp/fp/fn of every field      */
    size_t         n_fields;
    char         **names;     /* in order of first appearance                 */
    slm_eval_stats_prf *per_field; /* per field, from that field's sums            */
    double         macro_f1;  /* mean per-field F1 over fields with any tp, fp
                                 or fn (NAN when none has)                    */
} slm_eval_stats_fields;

int  slm_eval_stats_fields_compute(const slm_eval_stats_field_obs *obs, size_t n,
                              slm_eval_stats_fields *out, slm_err *err);
void slm_eval_stats_fields_clear(slm_eval_stats_fields *s);

/* ---- paired comparison of two runs --------------------------------------- */

typedef struct slm_eval_stats_item {
    const char *id;          /* case id (matched across runs)                 */
    double      score;       /* 0..1                                          */
    bool        pass;
} slm_eval_stats_item;

typedef struct slm_eval_stats_paired {
    size_t n_pairs;          /* ids present in both runs                       */
    size_t n_only_a, n_only_b; /* ids in one run only (ignored)               */
    long   both_pass;        /* A pass, B pass                                 */
    long   b_disc;           /* McNemar b: A pass, B fail (pass -> fail)       */
    long   c_disc;           /* McNemar c: A fail, B pass (fail -> pass)       */
    long   both_fail;
    double mcnemar_p;        /* two-sided; 1 when b + c == 0                   */
    bool   mcnemar_exact;    /* true: exact binomial (b + c <= 25); false:
                                chi-square, 1 df, continuity correction       */
    double mean_a, mean_b;   /* mean scores over the pairs                     */
    slm_eval_stats_ci diff;       /* mean of (B - A) and its paired bootstrap CI    */
    double diff_p;           /* two-sided bootstrap p for mean diff == 0       */
    char **pass_to_fail;     /* ids, in A's order (owned)                      */
    size_t n_pass_to_fail;
    char **fail_to_pass;     /* ids, in A's order (owned)                      */
    size_t n_fail_to_pass;
} slm_eval_stats_paired;

/* McNemar's test on the discordant counts b and c (see mcnemar_exact). */
double slm_eval_stats_mcnemar_p(long b, long c, bool *exact);

/* Pairs a[0..n_a) and b[0..n_b) by id and compares them. The bootstrap
 * resamples pairs (n_boot <= 0: 1000; 95% interval); diff_p is
 * (1 + #{|d* - d| >= |d|}) / (B + 1) with d the observed mean difference and
 * d* the resampled ones (the resampling distribution shifted to the null).
 * No pair: means and diff NAN, mcnemar_p 1, diff_p NAN. SLM_EINVAL when an id
 * is NULL or repeats within a run; SLM_ENOMEM. Free with
 * slm_eval_stats_paired_clear. */
int slm_eval_stats_paired_compare(const slm_eval_stats_item *a, size_t n_a,
                             const slm_eval_stats_item *b, size_t n_b,
                             int n_boot, uint64_t seed,
                             slm_eval_stats_paired *out, slm_err *err);
void slm_eval_stats_paired_clear(slm_eval_stats_paired *p);

/* ---- cost ---------------------------------------------------------------- */

/* total_cost / n_pass; NAN when n_pass == 0 (nothing correct: no number;
 * reports print "n/a", JSON null). */
double slm_eval_stats_cost_per_correct(double total_cost, size_t n_pass);

#endif
