/*
 * score_text.c — the scorers that compare text: exact, contains, regex,
 * label, numeric and rouge_l (their options and semantics are in score.h).
 *
 * Each normalises the output once per call (normalize.h) and compares it
 * with the expected text normalised the same way. regex compiles its pattern
 * once at scorer creation (PCRE2, UTF + UCP) and makes match data per call,
 * so concurrent calls share only the read-only compiled code. rouge_l is the
 * textbook LCS dynamic programme over word tokens in one row of
 * min(n, m) + 1 counters.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/normalize.h"
#include "eval/score_internal.h"
#include "util/alloc.h"
#include "util/err.h"

#define DETAIL_MAX 80      /* bytes of output/expected quoted in details */
#define LCS_MAX_CELLS 50000000ull

/* Length of a prefix of s of at most DETAIL_MAX bytes that ends on a UTF-8
 * boundary, for quoting. */
static int qlen(const char *s) {
    size_t n = strlen(s);
    if (n <= DETAIL_MAX) return (int)n;
    n = DETAIL_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return (int)n;
}

static int init_norm(slm_eval_scorer *s, const cJSON *opts, unsigned dflt, slm_err *err) {
    const cJSON *v = opts ? cJSON_GetObjectItemCaseSensitive(opts, "normalize") : NULL;
    if (!v) { s->norm = dflt; return 0; }
    int rc = slm_eval_norm_parse(v, &s->norm, err);
    if (rc) return slm_err_set(err, rc, "scorer '%s': %s", s->ops->name, err ? err->msg : "normalize");
    return 0;
}

static int init_plain(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    return init_norm(s, opts, 0, err);
}

static char *norm(const slm_eval_scorer *s, const char *t) {
    return slm_eval_normalize(t, strlen(t), s->norm);
}

/* ---- exact ---------------------------------------------------------------- */

static int exact_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                       slm_eval_score *res) {
    const cJSON *e = c->expected;
    bool is_arr = cJSON_IsArray(e);
    int total = is_arr ? cJSON_GetArraySize(e) : 1;
    if (!e || total == 0) return slm_eval_score_fail(res, SLM_EINVAL, "expected: missing or empty");
    char *no = norm(s, out);
    if (!no) return SLM_ENOMEM;
    char *first = NULL;                      /* the first answer, normalised, for the detail */
    bool hit = false;
    int rc = 0;
    for (const cJSON *it = is_arr ? e->child : e; it && !hit; it = is_arr ? it->next : NULL) {
        bool oom;
        char *et = slm_eval_expected_text(it, &oom);
        if (!et) {
            rc = oom ? SLM_ENOMEM
                     : slm_eval_score_fail(res, SLM_EINVAL, "expected: a string, a number or an array of them");
            goto done;
        }
        char *ne = norm(s, et);
        slm_free(et);
        if (!ne) { rc = SLM_ENOMEM; goto done; }
        hit = strcmp(no, ne) == 0;
        if (!first) first = ne;
        else slm_free(ne);
    }
    res->pass = hit;
    res->score = hit ? 1 : 0;
    if (!hit) {
        if (total == 1) rc = slm_eval_score_detail(res, "got \"%.*s\", expected \"%.*s\"", qlen(no), no,
                                                  qlen(first), first);
        else rc = slm_eval_score_detail(res, "got \"%.*s\", none of %d answers (first \"%.*s\")", qlen(no), no,
                                        total, qlen(first), first);
    }
done:
    slm_free(first);
    slm_free(no);
    return rc;
}

/* ---- contains ------------------------------------------------------------- */

static int contains_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                          slm_eval_score *res) {
    const cJSON *e = c->expected;
    int total = cJSON_IsArray(e) ? cJSON_GetArraySize(e) : 1;
    if (!e || total == 0) return slm_eval_score_fail(res, SLM_EINVAL, "expected: missing or empty");
    char *no = norm(s, out);
    if (!no) return SLM_ENOMEM;
    int found = 0;
    const char *first_missing = NULL;
    char *missing_buf = NULL;
    const cJSON *it = cJSON_IsArray(e) ? e->child : e;
    for (int i = 0; i < total && it; i++, it = it->next) {
        bool oom;
        char *et = slm_eval_expected_text(it, &oom);
        if (!et) {
            slm_free(no);
            slm_free(missing_buf);
            if (oom) return SLM_ENOMEM;
            return slm_eval_score_fail(res, SLM_EINVAL, "expected: a string or an array of strings");
        }
        char *ne = norm(s, et);
        slm_free(et);
        if (!ne) { slm_free(no); slm_free(missing_buf); return SLM_ENOMEM; }
        if (strstr(no, ne)) found++;
        else if (!first_missing) { missing_buf = ne; first_missing = ne; ne = NULL; }
        slm_free(ne);
        if (!cJSON_IsArray(e)) break;
    }
    slm_free(no);
    res->score = (double)found / total;
    res->pass = found == total;
    int rc = 0;
    if (!res->pass)
        rc = slm_eval_score_detail(res, "%d of %d found; missing \"%.*s\"", found, total,
                                   qlen(first_missing), first_missing);
    slm_free(missing_buf);
    return rc;
}

/* ---- regex ------------------------------------------------------------------ */

static int compile_re(const char *pattern, uint32_t opts, pcre2_code **out, char *msg, size_t cap) {
    int ec;
    PCRE2_SIZE off;
    *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts | PCRE2_UTF | PCRE2_UCP, &ec, &off, NULL);
    if (*out) return 0;
    PCRE2_UCHAR buf[160];
    pcre2_get_error_message(ec, buf, sizeof buf);
    snprintf(msg, cap, "pattern does not compile at offset %zu: %s", (size_t)off, (const char *)buf);
    return SLM_EINVAL;
}

static int regex_init(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    int rc;
    if ((rc = slm_eval_opt_str(s, opts, "pattern", &s->str[0], err))) return rc;
    if ((rc = slm_eval_opt_str(s, opts, "flags", &s->str[1], err))) return rc;
    uint32_t f = 0;
    for (const char *p = s->str[1]; p && *p; p++) {
        switch (*p) {
        case 'i': f |= PCRE2_CASELESS; break;
        case 'm': f |= PCRE2_MULTILINE; break;
        case 's': f |= PCRE2_DOTALL; break;
        case 'x': f |= PCRE2_EXTENDED; break;
        default:
            return slm_err_set(err, SLM_EINVAL, "scorer 'regex': unknown flag '%c' (known: i, m, s, x)", *p);
        }
    }
    s->num[0] = f;
    if (s->str[0]) {
        char msg[256];
        pcre2_code *code;
        if (compile_re(s->str[0], f, &code, msg, sizeof msg))
            return slm_err_set(err, SLM_EINVAL, "scorer 'regex': %s", msg);
        s->priv = code;
    }
    return 0;
}

static void regex_fini(slm_eval_scorer *s) { pcre2_code_free(s->priv); }

static int regex_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                       slm_eval_score *res) {
    pcre2_code *own = NULL;
    const pcre2_code *code = s->priv;
    if (!code) {
        if (!cJSON_IsString(c->expected))
            return slm_eval_score_fail(res, SLM_EINVAL, "expected: a pattern string (no 'pattern' option)");
        char msg[256];
        if (compile_re(c->expected->valuestring, (uint32_t)s->num[0], &own, msg, sizeof msg))
            return slm_eval_score_fail(res, SLM_EINVAL, "expected: %s", msg);
        code = own;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!md) { pcre2_code_free(own); return SLM_ENOMEM; }
    int rc = pcre2_match(code, (PCRE2_SPTR)out, strlen(out), 0, 0, md, NULL);
    int ret = 0;
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        const char *m = out + ov[0];
        size_t mlen = ov[1] > ov[0] ? ov[1] - ov[0] : 0;
        if (mlen > DETAIL_MAX) mlen = (size_t)qlen(m);
        res->pass = true;
        res->score = 1;
        ret = slm_eval_score_detail(res, "matched \"%.*s\"", (int)mlen, m);
    } else if (rc == PCRE2_ERROR_NOMATCH) {
        ret = slm_eval_score_detail(res, "no match for /%.*s/", qlen(s->str[0] ? s->str[0] : c->expected->valuestring),
                                    s->str[0] ? s->str[0] : c->expected->valuestring);
    } else {
        PCRE2_UCHAR buf[160];
        pcre2_get_error_message(rc, buf, sizeof buf);
        slm_eval_score_fail(res, SLM_EINVAL, "regex match failed: %s", (const char *)buf);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(own);
    return ret;
}

/* ---- label ------------------------------------------------------------------ */

static int label_init(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    int rc = init_norm(s, opts, SLM_NORM_CASE | SLM_NORM_WHITESPACE | SLM_NORM_PUNCT, err);
    if (rc) return rc;
    if ((rc = slm_eval_opt_strs(s, opts, "labels", &s->labels, &s->n_labels, err))) return rc;
    if (!s->labels) return 0;
    s->norm_labels = slm_calloc(s->n_labels, sizeof *s->norm_labels);
    if (!s->norm_labels) return slm_err_set(err, SLM_ENOMEM, "scorer 'label': out of memory");
    for (size_t i = 0; i < s->n_labels; i++) {
        if (!(s->norm_labels[i] = norm(s, s->labels[i])))
            return slm_err_set(err, SLM_ENOMEM, "scorer 'label': out of memory");
        if (!s->norm_labels[i][0])
            return slm_err_set(err, SLM_EINVAL, "scorer 'label': label \"%s\" is empty once normalised",
                               s->labels[i]);
        if (strcmp(s->labels[i], SLM_EVAL_NO_LABEL) == 0)
            return slm_err_set(err, SLM_EINVAL, "scorer 'label': \"%s\" is reserved", SLM_EVAL_NO_LABEL);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->norm_labels[i], s->norm_labels[j]) == 0)
                return slm_err_set(err, SLM_EINVAL, "scorer 'label': labels \"%s\" and \"%s\" are the same "
                                   "once normalised", s->labels[j], s->labels[i]);
    }
    return 0;
}

/* Offset of the first whole-word occurrence of w in t, or -1. */
static long find_word(const char *t, const char *w) {
    size_t wl = strlen(w);
    if (!wl) return -1;
    for (const char *p = strstr(t, w); p; p = strstr(p + 1, w)) {
        bool before = p == t || !slm_eval_is_word_byte((unsigned char)p[-1]);
        bool after = !slm_eval_is_word_byte((unsigned char)p[wl]);
        /* Labels that begin or end with a non-word character need no boundary there. */
        if (!slm_eval_is_word_byte((unsigned char)w[0])) before = true;
        if (!slm_eval_is_word_byte((unsigned char)w[wl - 1])) after = true;
        if (before && after) return (long)(p - t);
    }
    return -1;
}

static int label_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                       slm_eval_score *res) {
    bool oom;
    char *gold = slm_eval_expected_text(c->expected, &oom);
    if (!gold) return oom ? SLM_ENOMEM : slm_eval_score_fail(res, SLM_EINVAL, "expected: a label string");
    char *ngold = norm(s, gold);
    char *no = norm(s, out);
    int rc = SLM_ENOMEM;
    if (!ngold || !no) goto done;
    const char *const *labels = s->labels ? (const char *const *)s->labels : (const char *const *)&gold;
    const char *const *nlabels = s->labels ? (const char *const *)s->norm_labels : (const char *const *)&ngold;
    size_t n = s->labels ? s->n_labels : 1;

    const char *pred = NULL, *gold_canon = gold;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(nlabels[i], ngold) == 0) gold_canon = labels[i];
        if (!pred && strcmp(nlabels[i], no) == 0) pred = labels[i];
    }
    if (!pred) {
        long best = -1;
        size_t best_len = 0;
        for (size_t i = 0; i < n; i++) {
            long at = find_word(no, nlabels[i]);
            size_t l = strlen(nlabels[i]);
            if (at >= 0 && (best < 0 || at < best || (at == best && l > best_len))) {
                best = at;
                best_len = l;
                pred = labels[i];
            }
        }
    }
    if (!pred) pred = SLM_EVAL_NO_LABEL;
    res->pred_label = slm_strdup(pred);
    res->gold_label = slm_strdup(gold_canon);
    if (!res->pred_label || !res->gold_label) goto done;
    res->pass = strcmp(res->pred_label, res->gold_label) == 0;
    res->score = res->pass ? 1 : 0;
    rc = 0;
    if (s->labels && gold_canon == gold)
        rc = slm_eval_score_detail(res, "gold label \"%.*s\" is not among the scorer's labels", qlen(gold), gold);
    else if (!res->pass)
        rc = slm_eval_score_detail(res, "predicted \"%s\", gold \"%s\"", res->pred_label, res->gold_label);
done:
    slm_free(gold);
    slm_free(ngold);
    slm_free(no);
    return rc;
}

/* ---- numeric ------------------------------------------------------------------ */

static int numeric_init(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    int rc;
    s->num[0] = 1e-6;
    if ((rc = slm_eval_opt_num(s, opts, "tolerance", &s->num[0], err))) return rc;
    if ((rc = slm_eval_opt_bool(s, opts, "relative", &s->flag, err))) return rc;
    if (s->num[0] < 0) return slm_err_set(err, SLM_EINVAL, "scorer 'numeric': tolerance must be >= 0");
    return 0;
}

static int numeric_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                         slm_eval_score *res) {
    double want;
    const cJSON *e = c->expected;
    if (cJSON_IsNumber(e)) want = e->valuedouble;
    else if (cJSON_IsString(e)) {
        size_t end;
        if (!slm_eval_first_number(e->valuestring, &want, &end))
            return slm_eval_score_fail(res, SLM_EINVAL, "expected: \"%.*s\" is not a number",
                                       qlen(e->valuestring), e->valuestring);
    } else return slm_eval_score_fail(res, SLM_EINVAL, "expected: a number");
    double got;
    if (!slm_eval_first_number(out, &got, NULL)) return slm_eval_score_detail(res, "no number in the output");
    double tol = s->flag ? s->num[0] * fabs(want) : s->num[0];
    res->pass = fabs(got - want) <= tol;
    res->score = res->pass ? 1 : 0;
    return res->pass ? 0 : slm_eval_score_detail(res, "got %.17g, expected %.17g (tolerance %g%s)", got, want,
                                                 s->num[0], s->flag ? ", relative" : "");
}

/* ---- rouge_l -------------------------------------------------------------------- */

static int rouge_init(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    s->num[0] = 0.5;
    return slm_eval_opt_num(s, opts, "threshold", &s->num[0], err);
}

/* LCS length of token lists a[0..n) and b[0..m) (C strings), one row of
 * counters over the shorter list. *oom on allocation failure. */
static size_t lcs(const char *ab, const size_t *a, size_t n, const char *bb, const size_t *b, size_t m, bool *oom) {
    if (n < m) {   /* keep the row over the shorter list */
        const char *tb = ab; ab = bb; bb = tb;
        const size_t *t = a; a = b; b = t;
        size_t tn = n; n = m; m = tn;
    }
    *oom = false;
    uint32_t *row = slm_calloc(m + 1, sizeof *row);
    if (!row) { *oom = true; return 0; }
    for (size_t i = 0; i < n; i++) {
        uint32_t diag = 0;                        /* row[j] of the previous i, j-1 */
        for (size_t j = 1; j <= m; j++) {
            uint32_t up = row[j];
            if (strcmp(ab + a[i], bb + b[j - 1]) == 0) row[j] = diag + 1;
            else if (row[j - 1] > row[j]) row[j] = row[j - 1];
            diag = up;
        }
    }
    size_t r = row[m];
    slm_free(row);
    return r;
}

static int rouge_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                       slm_eval_score *res) {
    bool oom;
    char *ref = slm_eval_expected_text(c->expected, &oom);
    if (!ref) return oom ? SLM_ENOMEM : slm_eval_score_fail(res, SLM_EINVAL, "expected: a reference string");
    size_t *rs = NULL, *cs = NULL, nr = 0, nc = 0;
    char *rt = slm_eval_word_tokens(ref, &rs, &nr);
    char *ct = slm_eval_word_tokens(out, &cs, &nc);
    slm_free(ref);
    int rc = SLM_ENOMEM;
    if (!rt || !ct) goto done;
    if ((unsigned long long)nr * nc > LCS_MAX_CELLS) {
        rc = slm_eval_score_fail(res, SLM_ERANGE, "ROUGE-L: %zu x %zu tokens is too long to compare", nc, nr);
        goto done;
    }
    double f = 0, p = 0, r = 0;
    if (nr && nc) {
        size_t l = lcs(ct, cs, nc, rt, rs, nr, &oom);
        if (oom) goto done;
        p = (double)l / nc;
        r = (double)l / nr;
        f = l ? 2 * p * r / (p + r) : 0;
    }
    res->score = f;
    res->pass = f >= s->num[0];
    rc = slm_eval_score_detail(res, "ROUGE-L P=%.4f R=%.4f F=%.4f", p, r, f);
done:
    slm_free(rt); slm_free(rs);
    slm_free(ct); slm_free(cs);
    return rc;
}

/* ---- the ops -------------------------------------------------------------------- */

static const char *const k_norm_keys[] = { "normalize", NULL };

const scorer_ops slm_eval_ops_exact = {
    "exact", "output equals expected (or one of an array of answers) after normalisation",
    k_norm_keys, SLM_EVAL_AGG_SCORE, init_plain, exact_score, NULL,
};
const scorer_ops slm_eval_ops_contains = {
    "contains", "output contains expected (every string of an array) after normalisation",
    k_norm_keys, SLM_EVAL_AGG_SCORE, init_plain, contains_score, NULL,
};
const scorer_ops slm_eval_ops_regex = {
    "regex", "PCRE2 pattern (option or expected) matches the output; flags imsx",
    (const char *const[]){ "pattern", "flags", NULL }, SLM_EVAL_AGG_SCORE, regex_init, regex_score, regex_fini,
};
const scorer_ops slm_eval_ops_label = {
    "label", "label extracted from the output equals the gold label (confusion matrix, macro-F1)",
    (const char *const[]){ "labels", "normalize", NULL }, SLM_EVAL_AGG_LABEL, label_init, label_score, NULL,
};
const scorer_ops slm_eval_ops_numeric = {
    "numeric", "first number in the output within tolerance of expected",
    (const char *const[]){ "tolerance", "relative", NULL }, SLM_EVAL_AGG_SCORE, numeric_init, numeric_score, NULL,
};
const scorer_ops slm_eval_ops_rouge_l = {
    "rouge_l", "ROUGE-L F-measure against the reference; pass at threshold",
    (const char *const[]){ "threshold", NULL }, SLM_EVAL_AGG_SCORE, rouge_init, rouge_score, NULL,
};
