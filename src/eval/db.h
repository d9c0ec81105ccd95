/*
 * db.h — the evaluation store (SQLite, WAL). Every run, its targets, the
 * cases it ran (a snapshot: the suite file may change later), and one result
 * row per (target, case) with the output, score, error, attempts, latency,
 * tokens and cost. Reports, comparisons and the regression gate read runs
 * back through slm_eval_db_load, so a report regenerated later shows the
 * same numbers.
 *
 * Schema version 1 (PRAGMA user_version); a newer file is refused, an older
 * one migrated in place. Run ids are git-like: 12 hex digits, and any unique
 * prefix (at least 4 digits) or "latest" names a run.
 */
#ifndef SLM_EVAL_DB_H
#define SLM_EVAL_DB_H

#include <stdbool.h>
#include "slm/slm.h"

#define SLM_EVAL_DB_SCHEMA 1
#define SLM_EVAL_RUN_ID_LEN 12

typedef struct slm_eval_db slm_eval_db;

typedef struct slm_eval_db_run {
    char   id[SLM_EVAL_RUN_ID_LEN + 1];
    char  *suite_name, *suite_path, *suite_hash;
    int    n_cases;
    char  *targets;           /* JSON array of target names                   */
    char  *params;            /* JSON object: suite params, filters, command  */
    double started, finished; /* unix seconds; finished 0 while running       */
    char  *status;            /* "running", "done", "interrupted", "failed"   */
    char  *baseline;          /* run id or NULL                               */
} slm_eval_db_run;

typedef struct slm_eval_db_target {
    char  *name, *kind, *endpoint, *model;
    bool   has_price;
    double price_in, price_out;   /* dollars per million tokens              */
    int    concurrency, retries;
    double timeout_s, rps;
} slm_eval_db_target;

typedef struct slm_eval_db_case {
    int    idx;               /* order in the suite                          */
    char  *case_id, *input, *messages, *expected, *scorer; /* JSON texts but input */
    char **tags; int n_tags;
} slm_eval_db_case;

typedef struct slm_eval_db_result {
    char  *target, *case_id;
    int    idx;               /* the case's idx                              */
    char  *output;            /* NULL when the call failed                   */
    bool   scored;            /* a score exists (the call succeeded)         */
    double score;             /* 0..1                                        */
    bool   pass;
    char  *scorer_name;       /* "exact", "label", …                         */
    int    agg;               /* slm_eval_agg of the scorer                  */
    char  *score_error;       /* the scorer's error detail, or NULL          */
    char  *detail;            /* the scorer's detail, or NULL                */
    char  *pred_label, *gold_label;
    char  *fields;            /* JSON [{"name","tp","fp","fn"}] or NULL      */
    char  *error;             /* the call's error, or NULL                   */
    int    http_status, attempts;
    double latency_ms;
    long   tokens_in, tokens_out; /* -1 unknown                              */
    double cost;              /* dollars; NAN when the target has no price   */
    double finished;          /* unix seconds                                */
} slm_eval_db_result;

/* Frees a result's strings and zeroes it. */
void slm_eval_db_result_clear(slm_eval_db_result *r);

/* A whole run read back. */
typedef struct slm_eval_rundata {
    slm_eval_db_run run;
    slm_eval_db_target *targets; int n_targets;
    slm_eval_db_case   *cases;   int n_cases;
    slm_eval_db_result *results; int n_results;   /* by target order, then idx */
} slm_eval_rundata;

/* Opens or creates the database (WAL, schema checked or created). */
int  slm_eval_db_open(const char *path, slm_eval_db **out, slm_err *err);
void slm_eval_db_close(slm_eval_db *db);

/* A fresh run id (unique in this database) from seed text and the clock. */
int  slm_eval_db_new_id(slm_eval_db *db, const char *seed, char id[SLM_EVAL_RUN_ID_LEN + 1], slm_err *err);

/* Writers. Each call is its own transaction unless inside begin/commit. */
int  slm_eval_db_begin(slm_eval_db *db, slm_err *err);
int  slm_eval_db_commit(slm_eval_db *db, slm_err *err);
void slm_eval_db_rollback(slm_eval_db *db);
int  slm_eval_db_add_run(slm_eval_db *db, const slm_eval_db_run *r, slm_err *err);
int  slm_eval_db_finish_run(slm_eval_db *db, const char *id, double finished, const char *status, slm_err *err);
int  slm_eval_db_add_target(slm_eval_db *db, const char *run_id, const slm_eval_db_target *t, slm_err *err);
int  slm_eval_db_add_case(slm_eval_db *db, const char *run_id, const slm_eval_db_case *c, slm_err *err);
int  slm_eval_db_add_result(slm_eval_db *db, const char *run_id, const slm_eval_db_result *r, slm_err *err);

/* "latest", a full id or a unique prefix -> the id. SLM_ENOTFOUND, or
 * SLM_EINVAL for an ambiguous prefix (the message lists candidates). */
int  slm_eval_db_resolve(slm_eval_db *db, const char *ref, char id[SLM_EVAL_RUN_ID_LEN + 1], slm_err *err);

/* The newest runs first, at most limit (<= 0: all). Free with _runs_free. */
int  slm_eval_db_list(slm_eval_db *db, int limit, slm_eval_db_run **runs, int *n, slm_err *err);
void slm_eval_db_runs_free(slm_eval_db_run *runs, int n);

/* Reads a whole run. Free with slm_eval_rundata_clear. */
int  slm_eval_db_load(slm_eval_db *db, const char *id, slm_eval_rundata *out, slm_err *err);
void slm_eval_rundata_clear(slm_eval_rundata *d);

#endif
