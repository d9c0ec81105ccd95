/*
 * suite.h — an evaluation suite: a header naming the suite, its default
 * scorer, sampling parameters, system prompt and prices, and a list of cases.
 *
 * On disk a suite is a JSONL file whose first line may be the header
 * ({"suite": {...}}; without it the suite is named after the file and scored
 * with "exact"), or a small JSON header file holding the same object plus
 * "cases": "relative/path.jsonl". Each case line is an object:
 *
 *   {"id": "c1",                        unique; default "line-N"
 *    "messages": [{"role","content"}…]  or "prompt": "text" (a user message)
 *    "expected": any JSON value,        what the scorer compares with
 *    "scorer": "exact" | {"name":…},    optional: overrides the header's
 *    "tags": ["a","b"],                 optional
 *    "params": {"max_tokens": 8, …},    optional: merged over the header's
 *    "system": "text"}                  optional: overrides the header's
 *
 * Header keys: name, description, scorer, system, params, prices
 * ({"target-or-model": [in_per_M, out_per_M]} in dollars per million tokens).
 * params keys: temperature, top_p, top_k, min_p, max_tokens, seed, stop,
 * presence_penalty, frequency_penalty, response_format ("json_object",
 * "text" or an OpenAI response_format object). Errors name the file, the
 * line and the field. Scorers are made once per distinct spec at load.
 */
#ifndef SLM_EVAL_SUITE_H
#define SLM_EVAL_SUITE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "eval/score.h"
#include "slm/slm.h"

typedef struct slm_eval_price {
    char  *name;               /* target or model name                        */
    double in_per_m, out_per_m;/* dollars per million prompt / output tokens  */
} slm_eval_price;

typedef struct slm_eval_case {
    char   *id;                /* unique within the suite                     */
    int     line;              /* 1-based line in the cases file              */
    cJSON  *messages;          /* [{role, content}], system prompt first      */
    char   *input;             /* messages as text ("user: …"), for scorers   */
    cJSON  *expected;          /* may be NULL                                 */
    cJSON  *params;            /* header params with the case's merged over   */
    const slm_eval_scorer *scorer; /* borrowed from the suite                 */
    char   *scorer_spec;       /* the scorer spec as JSON text (for the db)   */
    char  **tags; int n_tags;
} slm_eval_case;

typedef struct slm_eval_suite {
    char  *path;               /* the file given to load                      */
    char  *name, *description, *system; /* description/system may be NULL     */
    char   hash[17];           /* FNV-1a 64 of header and cases bytes, hex    */
    cJSON *params;             /* header params (object, maybe empty)         */
    slm_eval_price *prices; int n_prices;
    slm_eval_case  *cases;  int n_cases;
    slm_eval_scorer **scorers; char **scorer_keys; int n_scorers; /* distinct */
} slm_eval_suite;

/* Loads and validates a suite (header file or JSONL). *out is freed with
 * slm_eval_suite_free. SLM_EIO (cannot read), SLM_EFORMAT (bad JSON, with
 * file:line), SLM_EINVAL (a bad field, or a scorer that cannot be made). */
int  slm_eval_suite_load(const char *path, slm_eval_suite **out, slm_err *err);
void slm_eval_suite_free(slm_eval_suite *s);

/* Keeps the cases that carry any of tags (n_tags 0: all), then the first
 * limit of them (limit <= 0: all). Dropped cases are freed. */
void slm_eval_suite_filter(slm_eval_suite *s, const char *const *tags, int n_tags, int limit);

/* The suite's price for a target (its name, else its model); false if none. */
bool slm_eval_suite_price(const slm_eval_suite *s, const char *target, const char *model,
                          double *in_per_m, double *out_per_m);

/* Checks a params object (unknown keys and wrong types are errors naming
 * where, e.g. "suite.jsonl:3: params.max_tokens: must be an integer >= 1"). */
int  slm_eval_params_check(const cJSON *params, const char *where, slm_err *err);

/* Writes an example suite (DIR/example.jsonl, one case per common scorer)
 * for `slm eval init`; *path_out (if not NULL) gets the file's path
 * (slm_free). Refuses to overwrite an existing file (SLM_EINVAL). */
int  slm_eval_suite_write_example(const char *dir, char **path_out, slm_err *err);

/* FNV-1a 64 over bytes, continuing from h (start with SLM_FNV_BASIS). */
#define SLM_FNV_BASIS 0xcbf29ce484222325ULL
uint64_t slm_eval_fnv1a(uint64_t h, const void *p, size_t n);

#endif
