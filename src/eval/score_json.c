/*
 * score_json.c — the scorers that read JSON out of a model's output:
 * json_valid, json_schema and fields (options and semantics in score.h).
 *
 * All three find the JSON with slm_eval_find_json (whole output, a ```
 * fence, or the first balanced {...} that parses). json_schema verifies its
 * schema once at creation (jsonschema_check.c) and checks each output
 * against it. fields walks the union of the expected object's keys and the
 * listed `fields` in that order and counts tp/fp/fn per field; values
 * compare recursively with strings normalised, numbers by value (also a
 * number written as a string), so {"amount": "42.0"} matches 42.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/jsonschema_check.h"
#include "eval/normalize.h"
#include "eval/score_internal.h"
#include "util/alloc.h"
#include "util/err.h"

#define SCHEMA_MSG_MAX 256

/* ---- json_valid / json_schema ---------------------------------------------- */

static int valid_init(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    return slm_eval_opt_bool(s, opts, "extract", &s->flag, err);
}

static int valid_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                       slm_eval_score *res) {
    cJSON *j = slm_eval_find_json(out, s->flag, true);
    res->pass = j != NULL;
    res->score = j ? 1 : 0;
    cJSON_Delete(j);
    return j ? 0 : slm_eval_score_detail(res, "the output is not JSON");
}

static int schema_init(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    int rc = slm_eval_opt_bool(s, opts, "extract", &s->flag, err);
    if (rc) return rc;
    const cJSON *sc = opts ? cJSON_GetObjectItemCaseSensitive(opts, "schema") : NULL;
    if (!sc) return slm_err_set(err, SLM_EINVAL, "scorer 'json_schema': option 'schema' is required");
    if ((rc = slm_eval_schema_verify(sc, err)))
        return slm_err_set(err, rc, "scorer 'json_schema': %s", err ? err->msg : "bad schema");
    if (!(s->json = cJSON_Duplicate(sc, true)))
        return slm_err_set(err, SLM_ENOMEM, "scorer 'json_schema': out of memory");
    return 0;
}

static int schema_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                        slm_eval_score *res) {
    cJSON *j = slm_eval_find_json(out, s->flag, true);
    if (!j) return slm_eval_score_detail(res, "the output is not JSON");
    char msg[SCHEMA_MSG_MAX];
    bool ok = false;
    slm_err e = { 0 };
    int rc = slm_eval_schema_check(s->json, j, &ok, msg, sizeof msg, &e);
    cJSON_Delete(j);
    if (rc == SLM_ENOMEM) return rc;
    if (rc) return slm_eval_score_fail(res, rc, "%s", e.msg);
    res->pass = ok;
    res->score = ok ? 1 : 0;
    return ok ? 0 : slm_eval_score_detail(res, "schema violation at %s", msg);
}

/* ---- fields -------------------------------------------------------------- */

static int fields_init(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    const cJSON *v = opts ? cJSON_GetObjectItemCaseSensitive(opts, "normalize") : NULL;
    s->norm = SLM_NORM_CASE | SLM_NORM_WHITESPACE;
    int rc;
    if (v && (rc = slm_eval_norm_parse(v, &s->norm, err)))
        return slm_err_set(err, rc, "scorer 'fields': %s", err ? err->msg : "normalize");
    return slm_eval_opt_strs(s, opts, "fields", &s->fields, &s->n_fields, err);
}

/* A string that is exactly one number (white space around allowed). */
static bool str_number(const char *t, double *x) {
    char *end;
    while (*t == ' ' || *t == '\t' || *t == '\n') t++;
    if (!*t) return false;
    *x = strtod(t, &end);
    if (end == t) return false;
    while (*end == ' ' || *end == '\t' || *end == '\n') end++;
    return *end == 0 && isfinite(*x);
}

static bool num_eq(double a, double b) {
    double m = fmax(1.0, fmax(fabs(a), fabs(b)));
    return fabs(a - b) <= 1e-9 * m;
}

/* Equality of an expected and a predicted value; *oom on allocation failure. */
static bool values_equal(const slm_eval_scorer *s, const cJSON *e, const cJSON *p, bool *oom) {
    if (*oom) return false;
    if (cJSON_IsNumber(e) && cJSON_IsNumber(p)) return num_eq(e->valuedouble, p->valuedouble);
    if (cJSON_IsArray(e) || cJSON_IsObject(e)) {
        if (cJSON_IsArray(e) != cJSON_IsArray(p) || cJSON_IsObject(e) != cJSON_IsObject(p)) return false;
        if (cJSON_GetArraySize(e) != cJSON_GetArraySize(p)) return false;
        if (cJSON_IsArray(e)) {
            for (const cJSON *a = e->child, *b = p->child; a && b; a = a->next, b = b->next)
                if (!values_equal(s, a, b, oom)) return false;
            return true;
        }
        const cJSON *a;
        cJSON_ArrayForEach(a, e) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, a->string);
            if (!b || !values_equal(s, a, b, oom)) return false;
        }
        return true;
    }
    if (cJSON_IsNull(e) || cJSON_IsNull(p)) return cJSON_IsNull(e) && cJSON_IsNull(p);
    /* Scalars: a number against a numeric string compares by value; the rest as normalised text. */
    double x, y;
    if (cJSON_IsNumber(e) && cJSON_IsString(p) && str_number(p->valuestring, &y)) return num_eq(e->valuedouble, y);
    if (cJSON_IsNumber(p) && cJSON_IsString(e) && str_number(e->valuestring, &x)) return num_eq(x, p->valuedouble);
    char *et = slm_eval_expected_text(e, oom);
    char *pt = *oom ? NULL : slm_eval_expected_text(p, oom);
    bool eq = false;
    if (et && pt) {
        char *ne = slm_eval_normalize(et, strlen(et), s->norm);
        char *np = slm_eval_normalize(pt, strlen(pt), s->norm);
        if (ne && np) eq = strcmp(ne, np) == 0;
        else *oom = true;
        slm_free(ne);
        slm_free(np);
    }
    slm_free(et);
    slm_free(pt);
    return eq;
}

static bool listed(const slm_eval_scorer *s, const char *name) {
    for (size_t i = 0; i < s->n_fields; i++) if (strcmp(s->fields[i], name) == 0) return true;
    return false;
}

/* Appends "name" to a "; "-separated list in buf (bounded, marks truncation). */
static void note(char *buf, size_t cap, const char *what, const char *name) {
    size_t n = strlen(buf);
    if (n + 8 >= cap) return;
    snprintf(buf + n, cap - n, "%s%s %s", n ? "; " : "", what, name);
    if (strlen(buf) + 4 >= cap) strcpy(buf + cap - 5, "...");
}

static int fields_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                        slm_eval_score *res) {
    const cJSON *e = c->expected;
    if (!cJSON_IsObject(e)) return slm_eval_score_fail(res, SLM_EINVAL, "expected: an object of fields");
    cJSON *pred = slm_eval_find_json(out, true, false);
    if (pred && !cJSON_IsObject(pred)) { cJSON_Delete(pred); pred = NULL; }

    size_t cap = (size_t)cJSON_GetArraySize(e) + s->n_fields;
    res->fields = cap ? slm_calloc(cap, sizeof *res->fields) : NULL;
    if (cap && !res->fields) { cJSON_Delete(pred); return SLM_ENOMEM; }
    char detail[256] = "";
    bool oom = false;
    size_t nf = 0;
    /* Expected keys first, then listed fields that expected lacks. */
    const cJSON *ek = e->child;
    for (size_t li = 0; ek || li < s->n_fields;) {
        const char *name;
        const cJSON *ev;
        if (ek) { name = ek->string; ev = ek; ek = ek->next; }
        else {
            name = s->fields[li++];
            if (cJSON_GetObjectItemCaseSensitive(e, name)) continue;
            ev = NULL;
        }
        if (!name) continue;
        const cJSON *pv = pred ? cJSON_GetObjectItemCaseSensitive(pred, name) : NULL;
        bool e_null = !ev || cJSON_IsNull(ev), p_null = !pv || cJSON_IsNull(pv);
        slm_eval_field_result *fr = &res->fields[nf];
        if (!(fr->name = slm_strdup(name))) { oom = true; break; }
        nf++;
        if (!e_null) {
            if (p_null) { fr->fn = 1; note(detail, sizeof detail, "missing", name); }
            else if (values_equal(s, ev, pv, &oom)) fr->tp = 1;
            else { fr->fp = fr->fn = 1; note(detail, sizeof detail, "wrong", name); }
        } else if (!p_null && (ev || listed(s, name))) {
            fr->fp = 1;                                   /* a value where none is expected */
            note(detail, sizeof detail, "unexpected", name);
        }
        if (oom) break;
        res->tp += fr->tp;
        res->fp += fr->fp;
        res->fn += fr->fn;
    }
    res->n_fields = nf;
    bool had_json = pred != NULL;
    cJSON_Delete(pred);
    if (oom) return SLM_ENOMEM;
    int denom = 2 * res->tp + res->fp + res->fn;
    res->score = denom ? 2.0 * res->tp / denom : 1.0;
    res->pass = res->fp == 0 && res->fn == 0;
    if (!had_json && !res->pass)
        return slm_eval_score_detail(res, "no JSON object in the output");
    return detail[0] ? slm_eval_score_detail(res, "%s", detail) : 0;
}

const scorer_ops slm_eval_ops_json_valid = {
    "json_valid", "the output (or its ``` fence; with extract, the first {...}) parses as JSON",
    (const char *const[]){ "extract", NULL }, SLM_EVAL_AGG_SCORE, valid_init, valid_score, NULL,
};
const scorer_ops slm_eval_ops_json_schema = {
    "json_schema", "the output's JSON conforms to a JSON Schema (subset)",
    (const char *const[]){ "schema", "extract", NULL }, SLM_EVAL_AGG_SCORE, schema_init, schema_score, NULL,
};
const scorer_ops slm_eval_ops_fields = {
    "fields", "extraction: per-field tp/fp/fn of the output's JSON object against expected",
    (const char *const[]){ "fields", "normalize", NULL }, SLM_EVAL_AGG_FIELDS, fields_init, fields_score, NULL,
};
