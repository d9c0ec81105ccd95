/*
 * score.h — per-case scoring for `slm eval`.
 *
 * A scorer is made once from a name and an options object (the suite file's
 * `scorer:` entry) and then scores any number of cases, from any number of
 * threads at once: a scorer is immutable after slm_eval_scorer_new (regexes
 * are compiled there, match data is made per call). Each kind of scorer is a
 * table of function pointers (score.c holds the table), so adding one is one
 * file and one table row.
 *
 * Scorers, their options (unknown option keys are rejected) and what they
 * expect in the case's `expected`:
 *   exact       {normalize}                    expected: string (or number),
 *               or an array of accepted answers. Output and expected are
 *               normalised (see normalize.h; trimmed always) and compared.
 *   contains    {normalize}                    expected: string, or an array
 *               of strings that must all appear (score = fraction found).
 *   regex       {pattern, flags}               PCRE2, UTF-8 + UCP; flags any of
 *               "imsx"; without pattern, expected (a string) is the pattern.
 *               Pass when the pattern matches anywhere in the output.
 *   label       {labels, normalize}            expected: the gold label. The
 *               predicted label is the allowed label equal to the whole
 *               normalised output, else the allowed label found as a whole
 *               word earliest in the output (longest on ties), else "(none)".
 *               normalize defaults to ["case","whitespace","punctuation"];
 *               labels defaults to [expected].
 *   json_valid  {extract}                      the output (trimmed, a ``` or
 *               ```json fence removed) parses as JSON; with extract: true the
 *               first balanced {...} or [...] anywhere in it also counts.
 *   json_schema {schema, extract}              the parsed output conforms to
 *               schema (subset: see jsonschema_check.h); detail names the
 *               first violation by JSON pointer.
 *   fields      {fields, normalize}            expected: an object of fields.
 *               The output's JSON object is found (whole, fenced, or the first
 *               balanced {...}); per field: right value tp, wrong value fp+fn,
 *               missing fn; a predicted non-null field that expected lacks (or
 *               holds null) is fp only when listed in `fields`. Strings compare
 *               after normalize (default ["case","whitespace"]), numbers by
 *               value, a string and a number by text; others structurally.
 *               score = 2tp/(2tp+fp+fn) (1 when all are 0); pass = no fp, fn.
 *   numeric     {tolerance, relative}          expected: number (or numeric
 *               string). The first number in the output (sign, 1,234 groups,
 *               decimals, exponent) is within tolerance (default 1e-6;
 *               relative: tolerance * |expected|).
 *   rouge_l     {threshold}                    expected: string. ROUGE-L F1
 *               (beta 1) of lower-cased alphanumeric tokens, LCS-based;
 *               pass when F >= threshold (default 0.5).
 *   judge       {target, rubric, pass_score, scale}   the judge prompt is built
 *               from rubric, input, expected, output and sent through the case's
 *               judge callback; the reply's score ("Score: N", {"score": N},
 *               else the first number) gives score = N/scale (default 10),
 *               pass = N >= pass_score (default 7).
 *   cmd         {command, timeout, threshold, cwd}   /bin/sh -c command with
 *               the case as one JSON line on stdin {"id","input","expected",
 *               "output"}; it prints a number in 0..1 (pass = score >=
 *               threshold, default 0.5) or {"score":x,"pass":b,"detail":"…"};
 *               killed (with its process group) after timeout seconds
 *               (default 30).
 *
 * Errors while scoring one case (a command that times out, exits non-zero or
 * prints garbage; a judge call that fails or a reply with no score; expected
 * of the wrong shape) are recorded in the result (res->error, res->detail),
 * never a crash and never fatal to the run.
 */
#ifndef SLM_EVAL_SCORE_H
#define SLM_EVAL_SCORE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "slm/slm.h"

#define SLM_EVAL_NO_LABEL "(none)"   /* predicted label when none is found */

typedef struct slm_eval_scorer slm_eval_scorer;

/* The LLM judge: sends prompt to the target named `target` and puts the reply
 * in *reply, allocated with slm_malloc (the scorer frees it with slm_free).
 * Returns 0, or a negative SLM_E* code with err filled (recorded as the
 * case's scoring error). Called concurrently from several threads. */
typedef int (*slm_eval_judge_fn)(void *ud, const char *target, const char *prompt,
                                 char **reply, slm_err *err);

/* One case as a scorer sees it; everything is borrowed for the call. */
typedef struct slm_eval_case_view {
    const char       *id;        /* case id (cmd's stdin), may be NULL         */
    const char       *input;     /* rendered prompt/messages as text, or NULL  */
    const cJSON      *expected;  /* string, number, object, array, or NULL     */
    slm_eval_judge_fn judge;     /* for the judge scorer; NULL: scoring error  */
    void             *judge_ud;  /* passed to judge                           */
} slm_eval_case_view;

/* Per-field counts of the fields scorer. */
typedef struct slm_eval_field_result {
    char *name;                  /* field name (owned)                          */
    int   tp, fp, fn;            /* this case's counts for the field            */
} slm_eval_field_result;

/* One case's result. Owned strings are freed by slm_eval_score_clear. */
typedef struct slm_eval_score {
    double score;                /* 0..1                                        */
    bool   pass;                 /* the case counts as correct                  */
    int    error;                /* 0, or the SLM_E* code of a scoring error:
                                    then score 0, pass false, detail says why  */
    char  *pred_label;           /* label scorer: predicted label, else NULL    */
    char  *gold_label;           /* label scorer: gold label, else NULL         */
    int    tp, fp, fn;           /* fields scorer: sums over fields, else 0     */
    slm_eval_field_result *fields; /* fields scorer: per field, else NULL      */
    size_t n_fields;             /* entries in fields                           */
    char  *detail;               /* short human text, or NULL                   */
} slm_eval_score;

/* What kind of aggregate a scorer's results feed (see stats.h). */
typedef enum slm_eval_agg {
    SLM_EVAL_AGG_SCORE  = 0,     /* mean score and pass rate                    */
    SLM_EVAL_AGG_LABEL  = 1,     /* plus confusion matrix, per-label P/R/F1     */
    SLM_EVAL_AGG_FIELDS = 2,     /* plus micro and per-field P/R/F1             */
} slm_eval_agg;

/* Makes a scorer. opts may be NULL (defaults) and is not kept; a key "name"
 * in it is ignored. SLM_ENOTFOUND for an unknown name, SLM_EINVAL naming the
 * bad option (unknown key, wrong type, regex that does not compile with its
 * offset), SLM_ENOMEM. *out is freed with slm_eval_scorer_free. */
int slm_eval_scorer_new(const char *name, const cJSON *opts, slm_eval_scorer **out, slm_err *err);

/* Same from a suite entry: a string (the name) or an object {"name": …,
 * options…}. */
int slm_eval_scorer_from_json(const cJSON *spec, slm_eval_scorer **out, slm_err *err);

void slm_eval_scorer_free(slm_eval_scorer *s);   /* accepts NULL */

/* Scores one output. res is overwritten (call slm_eval_score_clear on it
 * afterwards, also after an error). Returns 0 when *res holds a result,
 * including a recorded scoring error (res->error != 0); a negative code only
 * when no result could be made: SLM_EINVAL for NULL arguments, SLM_ENOMEM.
 * output NULL is scored as "". Thread-safe for one scorer. */
int slm_eval_scorer_score(const slm_eval_scorer *s, const slm_eval_case_view *c,
                          const char *output, slm_eval_score *res, slm_err *err);

void slm_eval_score_clear(slm_eval_score *res);  /* frees owned strings, zeroes */

const char  *slm_eval_scorer_name(const slm_eval_scorer *s);  /* "exact", … */
slm_eval_agg slm_eval_scorer_agg(const slm_eval_scorer *s);
/* label scorer: the declared labels (NULL when taken from expected), else
 * NULL; *n gets the count. Borrowed from the scorer. */
const char *const *slm_eval_scorer_labels(const slm_eval_scorer *s, size_t *n);
/* judge scorer: the judge target's name, else NULL. Borrowed. */
const char *slm_eval_scorer_judge_target(const slm_eval_scorer *s);

/* Known scorer names, NULL-terminated, and a one-line description of each
 * (same order), for --help. */
const char *const *slm_eval_scorer_names(void);
const char *slm_eval_scorer_help(const char *name);  /* NULL when unknown */

#endif
