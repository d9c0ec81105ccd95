/*
 * score.c — the scorer table and what every scorer shares: making a scorer
 * from a name and options (unknown option keys are rejected against the
 * kind's list, so a typo in a suite file is an error, not a silent default),
 * dispatching a case to the kind's score function, result bookkeeping, and
 * the helpers several kinds use (expected as text, option readers, finding
 * the JSON in a model's output, the first number in a text).
 *
 * A scorer is immutable once made; every per-call buffer is local to the
 * call, so one scorer scores cases from many threads at once.
 */
#include "eval/score_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/normalize.h"
#include "util/alloc.h"
#include "util/err.h"

static const scorer_ops *const k_kinds[] = {
    &slm_eval_ops_exact, &slm_eval_ops_contains, &slm_eval_ops_regex, &slm_eval_ops_label,
    &slm_eval_ops_json_valid, &slm_eval_ops_json_schema, &slm_eval_ops_fields,
    &slm_eval_ops_numeric, &slm_eval_ops_rouge_l, &slm_eval_ops_judge, &slm_eval_ops_cmd,
};
#define N_KINDS (sizeof k_kinds / sizeof k_kinds[0])

/* The same names in the same order (test_eval_score checks they agree). */
static const char *const k_names[] = {
    "exact", "contains", "regex", "label", "json_valid", "json_schema", "fields",
    "numeric", "rouge_l", "judge", "cmd", NULL
};
_Static_assert(sizeof k_names / sizeof k_names[0] == N_KINDS + 1, "k_names matches k_kinds");

const char *const *slm_eval_scorer_names(void) { return k_names; }

static const scorer_ops *find_kind(const char *name) {
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(k_kinds[i]->name, name) == 0) return k_kinds[i];
    return NULL;
}

const char *slm_eval_scorer_help(const char *name) {
    const scorer_ops *k = name ? find_kind(name) : NULL;
    return k ? k->help : NULL;
}

static void free_strs(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) slm_free(v[i]);
    slm_free(v);
}

void slm_eval_scorer_free(slm_eval_scorer *s) {
    if (!s) return;
    if (s->ops && s->ops->fini) s->ops->fini(s);
    free_strs(s->labels, s->n_labels);
    free_strs(s->norm_labels, s->n_labels);
    free_strs(s->fields, s->n_fields);
    for (size_t i = 0; i < sizeof s->str / sizeof s->str[0]; i++) slm_free(s->str[i]);
    cJSON_Delete(s->json);
    slm_free(s);
}

int slm_eval_scorer_new(const char *name, const cJSON *opts, slm_eval_scorer **out, slm_err *err) {
    *out = NULL;
    if (!name) return slm_err_set(err, SLM_EINVAL, "scorer: no name");
    const scorer_ops *k = find_kind(name);
    if (!k) {
        char known[256] = "";
        for (size_t i = 0; i < N_KINDS; i++) {
            if (i) strncat(known, ", ", sizeof known - strlen(known) - 1);
            strncat(known, k_kinds[i]->name, sizeof known - strlen(known) - 1);
        }
        return slm_err_set(err, SLM_ENOTFOUND, "unknown scorer '%s' (known: %s)", name, known);
    }
    if (opts && !cJSON_IsNull(opts) && !cJSON_IsObject(opts))
        return slm_err_set(err, SLM_EINVAL, "scorer '%s': options must be an object", name);
    if (opts && cJSON_IsObject(opts)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, opts) {
            bool ok = it->string && strcmp(it->string, "name") == 0;
            for (const char *const *kk = k->opt_keys; !ok && kk && *kk; kk++)
                ok = it->string && strcmp(*kk, it->string) == 0;
            if (!ok) {
                char allowed[256] = "";
                for (const char *const *kk = k->opt_keys; kk && *kk; kk++) {
                    if (allowed[0]) strncat(allowed, ", ", sizeof allowed - strlen(allowed) - 1);
                    strncat(allowed, *kk, sizeof allowed - strlen(allowed) - 1);
                }
                return slm_err_set(err, SLM_EINVAL, "scorer '%s': unknown option '%s' (allowed: %s)", name,
                                   it->string ? it->string : "?", allowed[0] ? allowed : "none");
            }
        }
    }
    slm_eval_scorer *s = slm_calloc(1, sizeof *s);
    if (!s) return slm_err_set(err, SLM_ENOMEM, "scorer '%s': out of memory", name);
    s->ops = k;
    int rc = k->init ? k->init(s, cJSON_IsObject(opts) ? opts : NULL, err) : 0;
    if (rc) { slm_eval_scorer_free(s); return rc; }
    *out = s;
    return 0;
}

int slm_eval_scorer_from_json(const cJSON *spec, slm_eval_scorer **out, slm_err *err) {
    *out = NULL;
    if (cJSON_IsString(spec)) return slm_eval_scorer_new(spec->valuestring, NULL, out, err);
    if (cJSON_IsObject(spec)) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(spec, "name");
        if (!cJSON_IsString(nm)) return slm_err_set(err, SLM_EINVAL, "scorer: \"name\" must be a string");
        return slm_eval_scorer_new(nm->valuestring, spec, out, err);
    }
    return slm_err_set(err, SLM_EINVAL, "scorer: expected a name or an object with \"name\"");
}

const char *slm_eval_scorer_name(const slm_eval_scorer *s) { return s ? s->ops->name : NULL; }
slm_eval_agg slm_eval_scorer_agg(const slm_eval_scorer *s) { return s ? s->ops->agg : SLM_EVAL_AGG_SCORE; }

const char *const *slm_eval_scorer_labels(const slm_eval_scorer *s, size_t *n) {
    if (n) *n = 0;
    if (!s || s->ops != &slm_eval_ops_label || !s->labels) return NULL;
    if (n) *n = s->n_labels;
    return (const char *const *)s->labels;
}

const char *slm_eval_scorer_judge_target(const slm_eval_scorer *s) {
    return s && s->ops == &slm_eval_ops_judge ? s->str[0] : NULL;
}

void slm_eval_score_clear(slm_eval_score *res) {
    if (!res) return;
    slm_free(res->pred_label);
    slm_free(res->gold_label);
    slm_free(res->detail);
    for (size_t i = 0; i < res->n_fields; i++) slm_free(res->fields[i].name);
    slm_free(res->fields);
    memset(res, 0, sizeof *res);
}

int slm_eval_scorer_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *output,
                          slm_eval_score *res, slm_err *err) {
    if (!res) return slm_err_set(err, SLM_EINVAL, "score: no result");
    memset(res, 0, sizeof *res);
    if (!s || !c) return slm_err_set(err, SLM_EINVAL, "score: no scorer or case");
    int rc = s->ops->score(s, c, output ? output : "", res);
    if (rc) {
        slm_eval_score_clear(res);
        return slm_err_set(err, rc, "scorer '%s', case '%s': %s", s->ops->name, c->id ? c->id : "?",
                           rc == SLM_ENOMEM ? "out of memory" : "failed");
    }
    if (res->error) { res->score = 0; res->pass = false; }
    if (!(res->score >= 0)) res->score = 0;          /* NAN too */
    if (res->score > 1) res->score = 1;
    return 0;
}

static char *vfmt(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return NULL;
    char *p = slm_malloc((size_t)n + 1);
    if (p) vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

int slm_eval_score_fail(slm_eval_score *res, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *d = vfmt(fmt, ap);
    va_end(ap);
    slm_free(res->detail);
    res->detail = d;
    res->error = code ? code : SLM_EINVAL;
    res->score = 0;
    res->pass = false;
    return 0;
}

int slm_eval_score_detail(slm_eval_score *res, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *d = vfmt(fmt, ap);
    va_end(ap);
    if (!d) return SLM_ENOMEM;
    slm_free(res->detail);
    res->detail = d;
    return 0;
}

/* Prints a double as cJSON does: 15 significant digits when that reads back
 * exactly, else 17; integers without a fraction. */
static void fmt_num(double v, char *buf, size_t cap) {
    if (v == floor(v) && fabs(v) < 1e15) { snprintf(buf, cap, "%.0f", v); return; }
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, cap, "%.17g", v);
}

char *slm_eval_expected_text(const cJSON *e, bool *oom) {
    *oom = false;
    char buf[64];
    const char *t = NULL;
    if (cJSON_IsString(e)) t = e->valuestring;
    else if (cJSON_IsNumber(e)) { fmt_num(e->valuedouble, buf, sizeof buf); t = buf; }
    else if (cJSON_IsTrue(e)) t = "true";
    else if (cJSON_IsFalse(e)) t = "false";
    if (!t) return NULL;
    char *p = slm_strdup(t);
    if (!p) *oom = true;
    return p;
}

/* ---- options ------------------------------------------------------------- */

int slm_eval_opt_str(const slm_eval_scorer *s, const cJSON *opts, const char *key, char **out, slm_err *err) {
    const cJSON *v = opts ? cJSON_GetObjectItemCaseSensitive(opts, key) : NULL;
    if (!v) return 0;
    if (!cJSON_IsString(v))
        return slm_err_set(err, SLM_EINVAL, "scorer '%s': option '%s' must be a string", s->ops->name, key);
    char *p = slm_strdup(v->valuestring);
    if (!p) return slm_err_set(err, SLM_ENOMEM, "scorer '%s': out of memory", s->ops->name);
    slm_free(*out);
    *out = p;
    return 0;
}

int slm_eval_opt_num(const slm_eval_scorer *s, const cJSON *opts, const char *key, double *out, slm_err *err) {
    const cJSON *v = opts ? cJSON_GetObjectItemCaseSensitive(opts, key) : NULL;
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return slm_err_set(err, SLM_EINVAL, "scorer '%s': option '%s' must be a number", s->ops->name, key);
    *out = v->valuedouble;
    return 0;
}

int slm_eval_opt_bool(const slm_eval_scorer *s, const cJSON *opts, const char *key, bool *out, slm_err *err) {
    const cJSON *v = opts ? cJSON_GetObjectItemCaseSensitive(opts, key) : NULL;
    if (!v) return 0;
    if (!cJSON_IsBool(v))
        return slm_err_set(err, SLM_EINVAL, "scorer '%s': option '%s' must be true or false", s->ops->name, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

int slm_eval_opt_strs(const slm_eval_scorer *s, const cJSON *opts, const char *key, char ***out, size_t *n,
                      slm_err *err) {
    const cJSON *v = opts ? cJSON_GetObjectItemCaseSensitive(opts, key) : NULL;
    if (!v) return 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return slm_err_set(err, SLM_EINVAL, "scorer '%s': option '%s' must be a non-empty array of strings",
                           s->ops->name, key);
    size_t cnt = (size_t)cJSON_GetArraySize(v), i = 0;
    char **arr = slm_calloc(cnt, sizeof *arr);
    if (!arr) return slm_err_set(err, SLM_ENOMEM, "scorer '%s': out of memory", s->ops->name);
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it)) {
            free_strs(arr, cnt);
            return slm_err_set(err, SLM_EINVAL, "scorer '%s': option '%s' must be an array of strings",
                               s->ops->name, key);
        }
        if (!(arr[i++] = slm_strdup(it->valuestring))) {
            free_strs(arr, cnt);
            return slm_err_set(err, SLM_ENOMEM, "scorer '%s': out of memory", s->ops->name);
        }
    }
    *out = arr;
    *n = cnt;
    return 0;
}

/* ---- JSON in model output ------------------------------------------------ */

static bool is_sp(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Parses s[0..n) as exactly one JSON value (white space around allowed). */
static cJSON *parse_exact(const char *s, size_t n) {
    while (n && is_sp(*s)) { s++; n--; }
    while (n && is_sp(s[n - 1])) n--;
    if (!n) return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, false);
    if (!j) return NULL;
    if (end != s + n) { cJSON_Delete(j); return NULL; }
    return j;
}

/* End (one past) of the balanced {...} or [...] starting at s[i], or 0. */
static size_t balanced_end(const char *s, size_t n, size_t i) {
    int depth = 0;
    bool in_str = false;
    for (size_t k = i; k < n; k++) {
        char c = s[k];
        if (in_str) {
            if (c == '\\') k++;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') in_str = true;
        else if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) return k + 1;
            if (depth < 0) return 0;
        }
    }
    return 0;
}

cJSON *slm_eval_find_json(const char *out, bool extract, bool arrays) {
    size_t n = strlen(out);
    cJSON *j = parse_exact(out, n);
    if (j) return j;
    /* A ``` fence: the text from the end of the opening line to the next ```. */
    const char *f = strstr(out, "```");
    if (f) {
        const char *body = strchr(f + 3, '\n');
        const char *close = body ? strstr(body, "```") : NULL;
        if (body && close && (j = parse_exact(body + 1, (size_t)(close - body - 1)))) return j;
    }
    if (!extract) return NULL;
    int tries = 0;
    for (size_t i = 0; i < n && tries < 64; i++) {
        if (out[i] != '{' && !(arrays && out[i] == '[')) continue;
        tries++;
        size_t e = balanced_end(out, n, i);
        if (e && (j = parse_exact(out + i, e - i))) return j;
    }
    return NULL;
}

/* ---- numbers in text ----------------------------------------------------- */

static bool dig(char c) { return c >= '0' && c <= '9'; }

bool slm_eval_first_number(const char *s, double *v, size_t *endp) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        bool lead_dot = s[i] == '.' && i + 1 < n && dig(s[i + 1]) && !(i > 0 && dig(s[i - 1]));
        if (!dig(s[i]) && !lead_dot) continue;
        char buf[128];
        size_t b = 0, k = i;
        if (i > 0 && (s[i - 1] == '-' || s[i - 1] == '+') &&
            !(i > 1 && slm_eval_is_word_byte((unsigned char)s[i - 2])))
            buf[b++] = s[i - 1];
        /* integer part, with 1,234,567 groups */
        size_t int_start = k;
        while (k < n && dig(s[k]) && b < 100) buf[b++] = s[k++];
        while (k > int_start && k + 3 < n && s[k] == ',' && dig(s[k + 1]) && dig(s[k + 2]) && dig(s[k + 3]) &&
               (k + 4 >= n || !dig(s[k + 4])) && b < 100) {
            for (int d = 1; d <= 3; d++) buf[b++] = s[k + d];
            k += 4;
        }
        if (k < n && s[k] == '.' && k + 1 < n && dig(s[k + 1])) {
            buf[b++] = s[k++];
            while (k < n && dig(s[k]) && b < 110) buf[b++] = s[k++];
        }
        if (k < n && (s[k] == 'e' || s[k] == 'E')) {
            size_t e = k + 1;
            if (e < n && (s[e] == '+' || s[e] == '-')) e++;
            if (e < n && dig(s[e])) {
                size_t b0 = b;
                buf[b++] = 'e';
                for (size_t q = k + 1; q < e; q++) buf[b++] = s[q];
                while (e < n && dig(s[e]) && b < 126) buf[b++] = s[e++];
                if (b > b0) k = e;
            }
        }
        buf[b] = 0;
        char *end;
        double x = strtod(buf, &end);
        if (end == buf) continue;
        *v = x;
        if (endp) *endp = k;
        return true;
    }
    return false;
}
