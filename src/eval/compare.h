/*
 * compare.h — two runs side by side (`slm eval compare A B`) and the
 * regression gate (`slm eval run … --baseline RUN --max-drop PTS`).
 *
 * Targets are paired by name (or, when each run has one target, with each
 * other); cases by id. For each pair: both headline scores, per-tag scores
 * and their deltas, McNemar's test on pass/fail and a paired bootstrap on
 * per-case scores (stats.h), and the cases that flipped either way. A case
 * whose call failed counts as a 0 / fail, as in the headline score.
 */
#ifndef SLM_EVAL_COMPARE_H
#define SLM_EVAL_COMPARE_H

#include <stdbool.h>

#include "eval/summary.h"

typedef struct slm_eval_cmp_tag {
    const char *tag;               /* borrowed from a summary                  */
    int    n_a, n_b;
    double a, b;                   /* mean score 0..1; NAN when n is 0         */
} slm_eval_cmp_tag;

typedef struct slm_eval_cmp_target {
    const slm_eval_target_sum *a, *b;
    slm_eval_stats_paired paired;  /* pass_to_fail: regressions, fail_to_pass: fixes */
    slm_eval_cmp_tag *tags; int n_tags;
} slm_eval_cmp_target;

typedef struct slm_eval_cmp {
    const slm_eval_summary *a, *b;
    slm_eval_cmp_target *ts; int n_ts;
    int n_unpaired;                /* targets of A with no counterpart in B    */
} slm_eval_cmp;

/* Compares every target of a with its counterpart in b (both summaries must
 * outlive out). SLM_EINVAL when no target pairs up. */
int  slm_eval_compare(const slm_eval_summary *a, const slm_eval_summary *b, slm_eval_cmp *out, slm_err *err);
void slm_eval_cmp_clear(slm_eval_cmp *c);
/* The comparison as a terminal table (md false) or Markdown; slm_free. */
char *slm_eval_cmp_render(const slm_eval_cmp *c, bool md);
/* The comparison as one JSON object; slm_free. */
char *slm_eval_cmp_json(const slm_eval_cmp *c);

typedef struct slm_eval_gate_row {
    const char *target, *base_target;
    double score, base;            /* percent                                  */
    double drop;                   /* base - score, percentage points          */
    bool   fail;                   /* drop > max_drop                          */
} slm_eval_gate_row;

typedef struct slm_eval_gate {
    double max_drop;
    const char *base_id;
    slm_eval_gate_row *rows; int n_rows;
    bool fail;                     /* any row failed, or nothing to compare    */
} slm_eval_gate;

/* Checks every target of cur against its baseline counterpart. A run with
 * no counterpart at all fails (there is nothing to vouch for it). */
int  slm_eval_gate_check(const slm_eval_summary *cur, const slm_eval_summary *base, double max_drop, slm_eval_gate *out,
                         slm_err *err);
void slm_eval_gate_clear(slm_eval_gate *g);
/* "gate: PASS …" / "gate: FAIL …" — one line, no newline; slm_free. */
char *slm_eval_gate_line(const slm_eval_gate *g);

#endif
