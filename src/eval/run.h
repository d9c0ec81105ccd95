/*
 * run.h — one evaluation run: every case of a suite against every target,
 * the targets side by side. Each target has its own worker threads (its
 * concurrency), pulling case indices from a shared counter; a worker asks
 * its target (rate limit, retries: target.h), scores the answer with the
 * case's scorer (score.h; the judge scorer calls back into a target named
 * in the run), and queues the result. The calling thread is the only one
 * that touches the database: it takes results off the queue, writes them
 * (a transaction per batch) and reports progress through a callback, so the
 * CLI's progress line has one owner.
 *
 * Every (target, case) ends as one result row: an answer with its score, or
 * the error that stopped it (after retries), or "cancelled" when the run was
 * interrupted. Nothing is dropped.
 */
#ifndef SLM_EVAL_RUN_H
#define SLM_EVAL_RUN_H

#include <stdint.h>

#include "eval/db.h"
#include "eval/suite.h"
#include "eval/target.h"

typedef struct slm_eval_run_opts {
    const slm_eval_suite *suite;          /* the cases, already filtered     */
    slm_eval_target *const *targets; int n_targets; /* evaluated, in order   */
    slm_eval_target *const *judges;  int n_judges;  /* extra judge targets   */
    slm_eval_db *db;
    const char *baseline;                 /* recorded with the run, or NULL  */
    const char *run_params;               /* JSON object stored with the run
                                             (filters, command), or NULL     */
    const volatile sig_atomic_t *cancel;           /* set (e.g. by SIGINT) to stop    */
    /* Called on the calling thread after each result and about 10 times a
     * second: done/total for target ti. May be NULL. */
    void (*progress)(void *ud, int ti, int64_t done, int64_t total);
    void *progress_ud;
} slm_eval_run_opts;

/* Runs the evaluation and records it; id receives the run id as soon as the
 * run row exists (also on a later failure). Returns 0 when every result was
 * recorded (cases that failed are results too), else SLM_EIO/SLM_ENOMEM
 * (the database) with err set. */
int slm_eval_run(const slm_eval_run_opts *o, char id[SLM_EVAL_RUN_ID_LEN + 1], slm_err *err);

#endif
