/*
 * score_internal.h — what the scorer files share (private to src/eval): the
 * scorer vtable, the scorer object, and small helpers for results. score.c
 * owns the table of kinds; score_text.c, score_json.c and score_ext.c each
 * define the ops of their kinds.
 */
#ifndef SLM_EVAL_SCORE_INTERNAL_H
#define SLM_EVAL_SCORE_INTERNAL_H

#include "eval/score.h"

typedef struct scorer_ops {
    const char  *name;                    /* "exact", …                      */
    const char  *help;                    /* one line for --help             */
    const char *const *opt_keys;          /* allowed option keys, NULL-ended */
    slm_eval_agg agg;                     /* aggregate its results feed      */
    /* Reads options into s (s->ops and s->norm preset); error with err. */
    int  (*init)(slm_eval_scorer *s, const cJSON *opts, slm_err *err);
    /* Fills res (zeroed on entry). Returns 0 with a result (scoring errors
     * through score_fail), or SLM_ENOMEM. */
    int  (*score)(const slm_eval_scorer *s, const slm_eval_case_view *c,
                  const char *out, slm_eval_score *res);
    void (*fini)(slm_eval_scorer *s);     /* frees priv; may be NULL         */
} scorer_ops;

struct slm_eval_scorer {
    const scorer_ops *ops;       /* the kind                                   */
    unsigned norm;               /* SLM_NORM_* flags                           */
    char   **labels;             /* label: declared labels (owned), or NULL    */
    char   **norm_labels;        /* label: the same normalised                 */
    size_t   n_labels;
    char   **fields;             /* fields: listed fields (owned), or NULL     */
    size_t   n_fields;
    double   num[3];             /* numeric options (per kind)                 */
    bool     flag;               /* boolean option (relative, extract)         */
    char    *str[3];             /* string options (owned; per kind)           */
    cJSON   *json;               /* JSON option (schema), owned                */
    void    *priv;               /* compiled state (regex code)                */
};

extern const scorer_ops slm_eval_ops_exact, slm_eval_ops_contains, slm_eval_ops_regex,
    slm_eval_ops_label, slm_eval_ops_numeric, slm_eval_ops_rouge_l,
    slm_eval_ops_json_valid, slm_eval_ops_json_schema, slm_eval_ops_fields,
    slm_eval_ops_judge, slm_eval_ops_cmd;

/* Records a scoring error in res (score 0, pass false, detail the message);
 * returns 0 so scorers can `return score_fail(res, SLM_EINVAL, …)`. */
int slm_eval_score_fail(slm_eval_score *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets res->detail to a printf-formatted copy (replacing any); SLM_ENOMEM. */
int slm_eval_score_detail(slm_eval_score *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* expected as text: a string as is, a number printed ("%.17g" trimmed as
 * cJSON does), true/false; NULL for anything else. Caller frees (slm_free);
 * *oom set when allocation failed. */
char *slm_eval_expected_text(const cJSON *expected, bool *oom);

/* Reads an option that must be a string / number / bool / array of strings;
 * absent leaves *out unchanged. SLM_EINVAL naming "scorer 'x': option 'k'". */
int slm_eval_opt_str(const slm_eval_scorer *s, const cJSON *opts, const char *key, char **out, slm_err *err);
int slm_eval_opt_num(const slm_eval_scorer *s, const cJSON *opts, const char *key, double *out, slm_err *err);
int slm_eval_opt_bool(const slm_eval_scorer *s, const cJSON *opts, const char *key, bool *out, slm_err *err);
int slm_eval_opt_strs(const slm_eval_scorer *s, const cJSON *opts, const char *key,
                      char ***out, size_t *n, slm_err *err);

/* Finds the JSON value in a model's output: the whole trimmed text, else
 * inside a ``` fence, else (when extract) the first balanced {...} (or [...]
 * when arrays) that parses. Returns a cJSON tree (cJSON_Delete) or NULL. */
cJSON *slm_eval_find_json(const char *out, bool extract, bool arrays);

/* Parses the first number in s (see score.h numeric); false when none.
 * *end (may be NULL) gets the offset just past it. */
bool slm_eval_first_number(const char *s, double *v, size_t *end);

#endif
