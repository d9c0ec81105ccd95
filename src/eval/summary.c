/*
 * summary.c — see summary.h. One pass over a target's results collects the
 * per-case scores (errors as 0), answered latencies, tokens and cost, and
 * per tag the scores of the cases carrying it; stats.h turns them into
 * means, intervals and percentiles. Label and field metrics are computed
 * only when every answered case of the target used that kind of scorer.
 */
#include "eval/summary.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

static const slm_eval_db_case *case_of(const slm_eval_rundata *d, const slm_eval_db_result *r) {
    if (r->idx >= 0 && r->idx < d->n_cases && d->cases[r->idx].idx == r->idx) return &d->cases[r->idx];
    for (int i = 0; i < d->n_cases; i++)
        if (!strcmp(d->cases[i].case_id, r->case_id)) return &d->cases[i];
    return NULL;
}

static int tag_index(const slm_eval_summary *s, const char *tag) {
    for (int i = 0; i < s->n_tags; i++)
        if (!strcmp(s->tags[i], tag)) return i;
    return -1;
}

static int collect_tags(const slm_eval_rundata *d, slm_eval_summary *s) {
    for (int i = 0; i < d->n_cases; i++)
        for (int k = 0; k < d->cases[i].n_tags; k++) {
            if (tag_index(s, d->cases[i].tags[k]) >= 0) continue;
            char **nt = slm_realloc(s->tags, (size_t)(s->n_tags + 1) * sizeof *nt);
            if (!nt) return SLM_ENOMEM;
            s->tags = nt;
            if (!(s->tags[s->n_tags] = slm_strdup(d->cases[i].tags[k]))) return SLM_ENOMEM;
            s->n_tags++;
        }
    return 0;
}

/* The label set declared by a case's scorer spec ({"labels": [...]}); borrowed from spec. */
static const char **spec_labels(const cJSON *spec, size_t *n) {
    *n = 0;
    const cJSON *labels = cJSON_IsObject(spec) ? cJSON_GetObjectItemCaseSensitive(spec, "labels") : NULL;
    int k = cJSON_IsArray(labels) ? cJSON_GetArraySize(labels) : 0;
    if (!k) return NULL;
    const char **out = slm_calloc((size_t)k, sizeof *out);
    if (!out) return NULL;
    for (const cJSON *l = labels->child; l; l = l->next)
        if (cJSON_IsString(l)) out[(*n)++] = l->valuestring;
    return out;
}

static int fields_obs(const slm_eval_db_result *r, slm_eval_stats_field_obs **obs, size_t *n, size_t *cap, cJSON **keep,
                      int *n_keep) {
    cJSON *a = r->fields ? cJSON_Parse(r->fields) : NULL;
    if (!a) return 0;
    keep[(*n_keep)++] = a;
    for (const cJSON *f = a->child; f; f = f->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (!cJSON_IsString(name)) continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            slm_eval_stats_field_obs *no = slm_realloc(*obs, nc * sizeof *no);
            if (!no) return SLM_ENOMEM;
            *obs = no;
            *cap = nc;
        }
        const cJSON *tp = cJSON_GetObjectItemCaseSensitive(f, "tp"), *fp = cJSON_GetObjectItemCaseSensitive(f, "fp"),
                    *fn = cJSON_GetObjectItemCaseSensitive(f, "fn");
        (*obs)[(*n)++] = (slm_eval_stats_field_obs){ name->valuestring, cJSON_IsNumber(tp) ? tp->valueint : 0,
                                                cJSON_IsNumber(fp) ? fp->valueint : 0, cJSON_IsNumber(fn) ? fn->valueint : 0 };
    }
    return 0;
}

static int target_sum(const slm_eval_rundata *d, slm_eval_summary *s, const slm_eval_db_target *t, slm_eval_target_sum *out,
                      slm_err *err) {
    out->t = t;
    int n_all = 0;
    for (int i = 0; i < d->n_results; i++) n_all += !strcmp(d->results[i].target, t->name);
    size_t cap = n_all ? (size_t)n_all : 1;
    double *scores = slm_calloc(cap, sizeof *scores), *lat = slm_calloc(cap, sizeof *lat);
    double *tag_scores = slm_calloc(cap, sizeof *tag_scores);
    const char **gold = slm_calloc(cap, sizeof *gold), **pred = slm_calloc(cap, sizeof *pred);
    cJSON **keep = slm_calloc(cap, sizeof *keep);
    out->tags = slm_calloc((size_t)(s->n_tags ? s->n_tags : 1), sizeof *out->tags);
    slm_eval_stats_field_obs *obs = NULL;
    size_t n_obs = 0, cap_obs = 0;
    const char **label_set = NULL;
    size_t n_label_set = 0;
    cJSON *label_spec = NULL;
    int n_keep = 0, n_lat = 0, n_lab = 0, rc = SLM_ENOMEM;
    bool all_label = true, all_fields = true, any_price = t->has_price;
    if (!scores || !lat || !tag_scores || !gold || !pred || !keep || !out->tags) goto done;
    double cost = 0;
    for (int i = 0; i < d->n_results; i++) {
        const slm_eval_db_result *r = &d->results[i];
        if (strcmp(r->target, t->name)) continue;
        double sc = r->scored ? r->score : 0;
        scores[out->n++] = sc;
        out->attempts += r->attempts;
        out->n_retried += r->attempts > 1;
        if (!r->scored) {
            out->n_errors++;
            if (!out->first_error && r->error && !(out->first_error = slm_strdup(r->error))) goto done;
            continue;
        }
        out->n_scored++;
        out->n_score_errors += r->score_error != NULL;
        out->n_pass += r->pass;
        lat[n_lat++] = r->latency_ms;
        if (r->tokens_in > 0) out->tokens_in += r->tokens_in;
        if (r->tokens_out > 0) out->tokens_out += r->tokens_out;
        if (isfinite(r->cost)) cost += r->cost;
        all_label &= r->agg == SLM_EVAL_AGG_LABEL;
        all_fields &= r->agg == SLM_EVAL_AGG_FIELDS;
        if (r->agg == SLM_EVAL_AGG_LABEL) {
            gold[n_lab] = r->gold_label;
            pred[n_lab++] = r->pred_label;
            if (!label_spec) {
                const slm_eval_db_case *c = case_of(d, r);
                if (c && c->scorer && (label_spec = cJSON_Parse(c->scorer))) label_set = spec_labels(label_spec, &n_label_set);
            }
        }
        if (r->agg == SLM_EVAL_AGG_FIELDS && fields_obs(r, &obs, &n_obs, &cap_obs, keep, &n_keep)) goto done;
    }
    if (slm_eval_stats_bootstrap_mean_ci(scores, (size_t)out->n, 0, 0.95, SLM_EVAL_BOOT_SEED, &out->score)) goto done;
    out->pass_rate = out->n ? (double)out->n_pass / out->n : NAN;
    double ps[2] = { 50, 95 }, pv[2];
    if (slm_eval_stats_percentiles(lat, (size_t)n_lat, ps, 2, pv)) goto done;
    out->p50_ms = pv[0];
    out->p95_ms = pv[1];
    out->mean_ms = slm_eval_stats_mean(lat, (size_t)n_lat);
    out->cost = any_price ? cost : NAN;
    out->cost_per_correct = any_price ? slm_eval_stats_cost_per_correct(cost, (size_t)out->n_pass) : NAN;
    if (out->n_scored && all_label) {
        if ((rc = slm_eval_stats_labels_compute(gold, pred, (size_t)n_lab, label_set, n_label_set, &out->labels, err))) goto done;
        out->has_labels = true;
    }
    if (out->n_scored && all_fields) {
        if ((rc = slm_eval_stats_fields_compute(obs, n_obs, &out->fields, err))) goto done;
        out->has_fields = true;
    }
    rc = SLM_ENOMEM;
    for (int ti = 0; ti < s->n_tags; ti++) {
        slm_eval_tag_sum *ts = &out->tags[ti];
        int k = 0;
        for (int i = 0; i < d->n_results; i++) {
            const slm_eval_db_result *r = &d->results[i];
            if (strcmp(r->target, t->name)) continue;
            const slm_eval_db_case *c = case_of(d, r);
            bool has = false;
            for (int j = 0; c && j < c->n_tags && !has; j++) has = !strcmp(c->tags[j], s->tags[ti]);
            if (!has) continue;
            tag_scores[k++] = r->scored ? r->score : 0;
            ts->n_pass += r->scored && r->pass;
            ts->n_errors += !r->scored;
        }
        ts->n = k;
        if (slm_eval_stats_bootstrap_mean_ci(tag_scores, (size_t)k, 0, 0.95, SLM_EVAL_BOOT_SEED, &ts->score)) goto done;
    }
    rc = 0;
done:
    if (rc == SLM_ENOMEM) slm_err_set(err, rc, "out of memory");
    for (int i = 0; i < n_keep; i++) cJSON_Delete(keep[i]);
    cJSON_Delete(label_spec);
    slm_free(label_set);
    slm_free(obs);
    slm_free(keep);
    slm_free(gold);
    slm_free(pred);
    slm_free(tag_scores);
    slm_free(lat);
    slm_free(scores);
    return rc;
}

int slm_eval_summary_compute(const slm_eval_rundata *d, slm_eval_summary *s, slm_err *err) {
    memset(s, 0, sizeof *s);
    s->d = d;
    s->duration_s = d->run.finished > 0 ? d->run.finished - d->run.started : 0;
    if (collect_tags(d, s)) {
        slm_eval_summary_clear(s);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    s->ts = slm_calloc((size_t)(d->n_targets ? d->n_targets : 1), sizeof *s->ts);
    if (!s->ts) {
        slm_eval_summary_clear(s);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < d->n_targets; i++) {
        s->n_ts++;
        int rc = target_sum(d, s, &d->targets[i], &s->ts[i], err);
        if (rc) {
            slm_eval_summary_clear(s);
            return rc;
        }
    }
    return 0;
}

void slm_eval_summary_clear(slm_eval_summary *s) {
    if (!s) return;
    for (int i = 0; i < s->n_ts; i++) {
        slm_eval_target_sum *t = &s->ts[i];
        if (t->has_labels) slm_eval_stats_labels_clear(&t->labels);
        if (t->has_fields) slm_eval_stats_fields_clear(&t->fields);
        slm_free(t->tags);
        slm_free(t->first_error);
    }
    slm_free(s->ts);
    for (int i = 0; i < s->n_tags; i++) slm_free(s->tags[i]);
    slm_free(s->tags);
    memset(s, 0, sizeof *s);
}

const slm_eval_target_sum *slm_eval_summary_find(const slm_eval_summary *s, const char *name) {
    for (int i = 0; i < s->n_ts; i++)
        if (!strcmp(s->ts[i].t->name, name)) return &s->ts[i];
    return NULL;
}

int slm_eval_summary_pair(const slm_eval_summary *a, int i, const slm_eval_summary *b) {
    for (int k = 0; k < b->n_ts; k++)
        if (!strcmp(b->ts[k].t->name, a->ts[i].t->name)) return k;
    return a->n_ts == 1 && b->n_ts == 1 ? 0 : -1;
}
