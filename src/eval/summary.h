/*
 * summary.h — the numbers of one run, per target, computed from what the
 * database holds (db.h), so `slm eval run` and a later `slm eval report`
 * print the same thing.
 *
 * The headline score of a target is the mean per-case score over every case
 * of the run, in percent, with a failed call counting 0 (a target that
 * times out has not answered); its 95% interval is a percentile bootstrap
 * over cases (stats.h, fixed seed: the same run gives the same interval).
 * Latency percentiles are over the calls that answered. Cost is tokens times
 * the target's price; cost per correct answer divides it by the passes.
 */
#ifndef SLM_EVAL_SUMMARY_H
#define SLM_EVAL_SUMMARY_H

#include <stdbool.h>

#include "eval/db.h"
#include "eval/score.h"
#include "eval/stats.h"

#define SLM_EVAL_BOOT_SEED 20240601u

typedef struct slm_eval_tag_sum {
    int    n, n_pass, n_errors;
    slm_eval_stats_ci score;            /* 0..1, errors count 0                    */
} slm_eval_tag_sum;

typedef struct slm_eval_target_sum {
    const slm_eval_db_target *t;   /* borrowed from the run data              */
    int    n;                      /* results                                  */
    int    n_scored, n_errors;     /* answered and scored / the call failed    */
    int    n_score_errors;         /* answered, but the scorer reported an error */
    int    n_pass, n_retried;      /* passes; results that took > 1 attempt   */
    long   attempts;               /* over all results                         */
    slm_eval_stats_ci score;            /* 0..1                                     */
    double pass_rate;              /* 0..1                                     */
    double p50_ms, p95_ms, mean_ms;/* answered calls; NAN when none            */
    long   tokens_in, tokens_out;  /* known counts summed                      */
    double cost;                   /* dollars; NAN without a price             */
    double cost_per_correct;       /* NAN without a price or a pass            */
    bool   has_labels;             /* every scored result used a label scorer  */
    slm_eval_stats_labels labels;
    bool   has_fields;             /* … a fields scorer                        */
    slm_eval_stats_fields fields;
    slm_eval_tag_sum *tags;        /* [n_tags] of the summary, same order     */
    char  *first_error;            /* one error message, for the report       */
} slm_eval_target_sum;

typedef struct slm_eval_summary {
    const slm_eval_rundata *d;     /* borrowed                                 */
    char **tags; int n_tags;       /* every tag, in order of first appearance  */
    slm_eval_target_sum *ts; int n_ts; /* one per target of the run            */
    double duration_s;             /* finished - started, 0 while running      */
} slm_eval_summary;

/* Computes the summary of d (which must outlive it). */
int  slm_eval_summary_compute(const slm_eval_rundata *d, slm_eval_summary *out, slm_err *err);
void slm_eval_summary_clear(slm_eval_summary *s);

/* The target summary named name, else NULL. */
const slm_eval_target_sum *slm_eval_summary_find(const slm_eval_summary *s, const char *name);

/* Pairs target i of a with its counterpart in b: the same name, else the
 * only target of each run. -1 when none. */
int  slm_eval_summary_pair(const slm_eval_summary *a, int i, const slm_eval_summary *b);

#endif
