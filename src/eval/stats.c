/*
 * stats.c — aggregate statistics for `slm eval`; the conventions (empty
 * inputs, interpolation, zero_division) are in stats.h.
 *
 * Everything is a pure function of its arguments. Resampling draws indices
 * with sample/rng.h (xoshiro256** seeded through splitmix64) as
 * floor(u * n) from a 53-bit uniform, so a seed gives the same intervals on
 * every platform. Label and pair matching sort small index records and
 * binary-search them, so large suites stay O(n log n).
 */
#include "eval/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/score.h"
#include "sample/rng.h"
#include "util/alloc.h"
#include "util/err.h"

/* ---- scores and latencies ------------------------------------------------ */

double slm_eval_stats_mean(const double *x, size_t n) {
    if (!n) return NAN;
    double s = 0, comp = 0;                 /* Kahan summation */
    for (size_t i = 0; i < n; i++) {
        double y = x[i] - comp, t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    return s / (double)n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double slm_eval_stats_percentile_sorted(const double *sorted, size_t n, double p) {
    if (!n || isnan(p)) return NAN;
    if (p < 0) p = 0;
    if (p > 100) p = 100;
    double rank = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)floor(rank);
    if (lo >= n - 1) return sorted[n - 1];
    double frac = rank - (double)lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

int slm_eval_stats_percentiles(const double *x, size_t n, const double *ps, size_t n_ps, double *out) {
    double *c = NULL;
    if (n) {
        c = slm_malloc(n * sizeof *c);
        if (!c) return SLM_ENOMEM;
        memcpy(c, x, n * sizeof *c);
        qsort(c, n, sizeof *c, cmp_double);
    }
    for (size_t i = 0; i < n_ps; i++) out[i] = slm_eval_stats_percentile_sorted(c, n, ps[i]);
    slm_free(c);
    return 0;
}

/* B bootstrap means of x[0..n) into means[0..B), sorted. */
static void boot_means(const double *x, size_t n, int B, uint64_t seed, double *means) {
    slm_rng r;
    slm_rng_seed(&r, seed);
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) {
            size_t k = (size_t)(slm_rng_uniform(&r) * (double)n);
            s += x[k < n ? k : n - 1];
        }
        means[b] = s / (double)n;
    }
    qsort(means, (size_t)B, sizeof *means, cmp_double);
}

int slm_eval_stats_bootstrap_mean_ci(const double *x, size_t n, int n_boot, double level, uint64_t seed,
                                slm_eval_stats_ci *out) {
    if (n_boot <= 0) n_boot = SLM_EVAL_STATS_DEFAULT_BOOT;
    if (!(level > 0 && level < 1)) level = 0.95;
    out->mean = slm_eval_stats_mean(x, n);
    out->lo = out->hi = out->mean;
    if (n < 2) return 0;
    double *means = slm_malloc((size_t)n_boot * sizeof *means);
    if (!means) return SLM_ENOMEM;
    boot_means(x, n, n_boot, seed, means);
    double alpha = (1 - level) / 2 * 100;
    out->lo = slm_eval_stats_percentile_sorted(means, (size_t)n_boot, alpha);
    out->hi = slm_eval_stats_percentile_sorted(means, (size_t)n_boot, 100 - alpha);
    slm_free(means);
    return 0;
}

/* ---- P/R/F1 ---------------------------------------------------------------- */

void slm_eval_stats_prf_from_counts(long tp, long fp, long fn, slm_eval_stats_prf *out) {
    out->tp = tp;
    out->fp = fp;
    out->fn = fn;
    out->precision = tp + fp > 0 ? (double)tp / (double)(tp + fp) : 0;
    out->recall = tp + fn > 0 ? (double)tp / (double)(tp + fn) : 0;
    long d = 2 * tp + fp + fn;
    out->f1 = d > 0 ? 2.0 * (double)tp / (double)d : 0;
}

/* ---- labels ------------------------------------------------------------------ */

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *lab(const char *s) { return s ? s : SLM_EVAL_NO_LABEL; }

void slm_eval_stats_labels_clear(slm_eval_stats_labels *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_labels && s->labels; i++) slm_free(s->labels[i]);
    slm_free(s->labels);
    slm_free(s->confusion);
    slm_free(s->per_label);
    slm_free(s->support);
    memset(s, 0, sizeof *s);
}

/* Index of name among the labels: the first n_set in order, then
 * extras[0..n_extra) sorted; -1 when absent. */
static long label_index(const char *const *set, size_t n_set, const char *const *extras, size_t n_extra,
                        const char *name) {
    for (size_t i = 0; i < n_set; i++) if (strcmp(set[i], name) == 0) return (long)i;
    const char *const *hit = n_extra ? bsearch(&name, extras, n_extra, sizeof *extras, cmp_str_ptr) : NULL;
    return hit ? (long)(n_set + (size_t)(hit - extras)) : -1;
}

int slm_eval_stats_labels_compute(const char *const *gold, const char *const *pred, size_t n,
                             const char *const *label_set, size_t n_label_set, slm_eval_stats_labels *out,
                             slm_err *err) {
    memset(out, 0, sizeof *out);
    int rc = SLM_ENOMEM;
    const char **set = NULL, **extras = NULL;
    size_t n_set = 0, n_extra = 0;
    /* The declared labels, without repeats and without "(none)" (it goes last). */
    if (n_label_set && !(set = slm_malloc(n_label_set * sizeof *set))) goto fail;
    for (size_t i = 0; i < n_label_set; i++) {
        const char *l = lab(label_set[i]);
        if (strcmp(l, SLM_EVAL_NO_LABEL) == 0 || label_index(set, n_set, NULL, 0, l) >= 0) continue;
        set[n_set++] = l;
    }
    /* Everything else seen, sorted and unique; "(none)" moved to the end. */
    if (n && !(extras = slm_malloc(2 * n * sizeof *extras))) goto fail;
    bool saw_none = false;
    for (size_t i = 0; i < 2 * n; i++) {
        const char *l = lab(i < n ? gold[i] : pred[i - n]);
        if (strcmp(l, SLM_EVAL_NO_LABEL) == 0) { saw_none = true; continue; }
        if (label_index(set, n_set, NULL, 0, l) < 0) extras[n_extra++] = l;
    }
    if (n_extra) qsort(extras, n_extra, sizeof *extras, cmp_str_ptr);
    size_t u = 0;
    for (size_t i = 0; i < n_extra; i++)
        if (u == 0 || strcmp(extras[u - 1], extras[i]) != 0) extras[u++] = extras[i];
    n_extra = u;

    size_t L = n_set + n_extra + (saw_none ? 1 : 0);
    out->n_labels = L;
    out->n = n;
    size_t cells;
    if (!slm_mul_ok(L, L, &cells)) goto fail;
    if (L) {
        if (!(out->labels = slm_calloc(L, sizeof *out->labels)) ||
            !(out->confusion = slm_calloc(cells, sizeof *out->confusion)) ||
            !(out->per_label = slm_calloc(L, sizeof *out->per_label)) ||
            !(out->support = slm_calloc(L, sizeof *out->support)))
            goto fail;
    }
    for (size_t i = 0; i < L; i++) {
        const char *nm = i < n_set ? set[i] : i < n_set + n_extra ? extras[i - n_set] : SLM_EVAL_NO_LABEL;
        if (!(out->labels[i] = slm_strdup(nm))) goto fail;
    }
    long trace = 0;
    for (size_t i = 0; i < n; i++) {
        const char *g = lab(gold[i]), *p = lab(pred[i]);
        long gi = strcmp(g, SLM_EVAL_NO_LABEL) == 0 ? (long)L - 1 : label_index(set, n_set, extras, n_extra, g);
        long pi = strcmp(p, SLM_EVAL_NO_LABEL) == 0 ? (long)L - 1 : label_index(set, n_set, extras, n_extra, p);
        out->confusion[(size_t)gi * L + (size_t)pi]++;
        trace += gi == pi;
    }
    double f1_gold = 0, p_gold = 0, r_gold = 0, f1_all = 0;
    size_t n_gold = 0;
    for (size_t i = 0; i < L; i++) {
        long row = 0, col = 0, tp = out->confusion[i * L + i];
        for (size_t j = 0; j < L; j++) {
            row += out->confusion[i * L + j];
            col += out->confusion[j * L + i];
        }
        out->support[i] = row;
        slm_eval_stats_prf_from_counts(tp, col - tp, row - tp, &out->per_label[i]);
        f1_all += out->per_label[i].f1;
        if (row > 0) {
            n_gold++;
            f1_gold += out->per_label[i].f1;
            p_gold += out->per_label[i].precision;
            r_gold += out->per_label[i].recall;
        }
    }
    out->accuracy = n ? (double)trace / (double)n : NAN;
    out->macro_f1 = n_gold ? f1_gold / (double)n_gold : NAN;
    out->macro_precision = n_gold ? p_gold / (double)n_gold : NAN;
    out->macro_recall = n_gold ? r_gold / (double)n_gold : NAN;
    out->macro_f1_all = L ? f1_all / (double)L : NAN;
    rc = 0;
fail:
    slm_free(set);
    slm_free(extras);
    if (rc) {
        slm_eval_stats_labels_clear(out);
        return slm_err_set(err, rc, "label metrics: out of memory");
    }
    return 0;
}

/* ---- fields ------------------------------------------------------------------- */

void slm_eval_stats_fields_clear(slm_eval_stats_fields *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_fields && s->names; i++) slm_free(s->names[i]);
    slm_free(s->names);
    slm_free(s->per_field);
    memset(s, 0, sizeof *s);
}

typedef struct name_ix { const char *name; size_t first; size_t slot; } name_ix;

static int cmp_name_ix(const void *a, const void *b) {
    const name_ix *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->first > y->first) - (x->first < y->first);
}

static int cmp_first(const void *a, const void *b) {
    const name_ix *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

int slm_eval_stats_fields_compute(const slm_eval_stats_field_obs *obs, size_t n, slm_eval_stats_fields *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    name_ix *ix = n ? slm_malloc(n * sizeof *ix) : NULL;
    long *sums = NULL;
    if (n && !ix) goto oom;
    /* Unique names in first-appearance order: sort by (name, position), keep
     * the first of each name, then sort those by position. */
    for (size_t i = 0; i < n; i++) ix[i] = (name_ix){ obs[i].field ? obs[i].field : "", i, 0 };
    if (n) qsort(ix, n, sizeof *ix, cmp_name_ix);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(ix[u - 1].name, ix[i].name) != 0) ix[u++] = ix[i];
    if (u) qsort(ix, u, sizeof *ix, cmp_first);
    for (size_t i = 0; i < u; i++) ix[i].slot = i;
    out->n_fields = u;
    if (u && (!(out->names = slm_calloc(u, sizeof *out->names)) ||
              !(out->per_field = slm_calloc(u, sizeof *out->per_field)) ||
              !(sums = slm_calloc(3 * u, sizeof *sums))))
        goto oom;
    for (size_t i = 0; i < u; i++) if (!(out->names[i] = slm_strdup(ix[i].name))) goto oom;
    /* Back to name order for lookups. */
    if (u) qsort(ix, u, sizeof *ix, cmp_name_ix);
    long tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        name_ix key = { obs[i].field ? obs[i].field : "", 0, 0 };
        /* Several entries never share a name now, so compare by name only. */
        size_t lo = 0, hi = u;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int c = strcmp(ix[mid].name, key.name);
            if (c < 0) lo = mid + 1;
            else hi = mid;
        }
        size_t slot = ix[lo].slot;
        sums[3 * slot] += obs[i].tp;
        sums[3 * slot + 1] += obs[i].fp;
        sums[3 * slot + 2] += obs[i].fn;
        tp += obs[i].tp;
        fp += obs[i].fp;
        fn += obs[i].fn;
    }
    slm_eval_stats_prf_from_counts(tp, fp, fn, &out->micro);
    double f1 = 0;
    size_t n_seen = 0;
    for (size_t i = 0; i < u; i++) {
        slm_eval_stats_prf_from_counts(sums[3 * i], sums[3 * i + 1], sums[3 * i + 2], &out->per_field[i]);
        if (sums[3 * i] + sums[3 * i + 1] + sums[3 * i + 2] > 0) { f1 += out->per_field[i].f1; n_seen++; }
    }
    out->macro_f1 = n_seen ? f1 / (double)n_seen : NAN;
    slm_free(ix);
    slm_free(sums);
    return 0;
oom:
    slm_free(ix);
    slm_free(sums);
    slm_eval_stats_fields_clear(out);
    return slm_err_set(err, SLM_ENOMEM, "field metrics: out of memory");
}

/* ---- paired comparison --------------------------------------------------------- */

double slm_eval_stats_mcnemar_p(long b, long c, bool *exact) {
    long n = b + c;
    bool ex = n <= 25;
    if (exact) *exact = ex;
    if (n <= 0) return 1;
    if (ex) {
        long k = b < c ? b : c;
        double coef = 1, tail = 0;                 /* C(n, i), summed for i <= k */
        for (long i = 0; i <= k; i++) {
            tail += coef;
            coef = coef * (double)(n - i) / (double)(i + 1);
        }
        double p = 2 * tail / ldexp(1.0, (int)n);
        return p < 1 ? p : 1;
    }
    double d = fabs((double)(b - c)) - 1;          /* continuity correction, clamped at 0 */
    if (d < 0) d = 0;
    double chi2 = d * d / (double)n;
    return erfc(sqrt(chi2 / 2));                   /* chi-square, 1 df, upper tail */
}

void slm_eval_stats_paired_clear(slm_eval_stats_paired *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_pass_to_fail; i++) slm_free(p->pass_to_fail[i]);
    for (size_t i = 0; i < p->n_fail_to_pass; i++) slm_free(p->fail_to_pass[i]);
    slm_free(p->pass_to_fail);
    slm_free(p->fail_to_pass);
    memset(p, 0, sizeof *p);
}

typedef struct id_ix { const char *id; size_t i; } id_ix;

static int cmp_id_ix(const void *a, const void *b) {
    return strcmp(((const id_ix *)a)->id, ((const id_ix *)b)->id);
}

/* Sorted (id, index) records of items; SLM_EINVAL for a NULL or repeated id. */
static int sort_ids(const slm_eval_stats_item *it, size_t n, const char *run, id_ix **out, slm_err *err) {
    *out = NULL;
    if (!n) return 0;
    id_ix *v = slm_malloc(n * sizeof *v);
    if (!v) return slm_err_set(err, SLM_ENOMEM, "paired comparison: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!it[i].id) { slm_free(v); return slm_err_set(err, SLM_EINVAL, "run %s: case %zu has no id", run, i); }
        v[i] = (id_ix){ it[i].id, i };
    }
    qsort(v, n, sizeof *v, cmp_id_ix);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1].id, v[i].id) == 0) {
            int rc = slm_err_set(err, SLM_EINVAL, "run %s: case id '%s' appears more than once", run, v[i].id);
            slm_free(v);
            return rc;
        }
    *out = v;
    return 0;
}

typedef struct pair_ix { size_t ia, ib; } pair_ix;

static int cmp_pair_a(const void *x, const void *y) {
    const pair_ix *a = x, *b = y;
    return (a->ia > b->ia) - (a->ia < b->ia);
}

int slm_eval_stats_paired_compare(const slm_eval_stats_item *a, size_t n_a, const slm_eval_stats_item *b, size_t n_b,
                             int n_boot, uint64_t seed, slm_eval_stats_paired *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    if (n_boot <= 0) n_boot = SLM_EVAL_STATS_DEFAULT_BOOT;
    id_ix *sa = NULL, *sb = NULL;
    pair_ix *pairs = NULL;
    double *d = NULL, *means = NULL;
    int rc = sort_ids(a, n_a, "A", &sa, err);
    if (!rc) rc = sort_ids(b, n_b, "B", &sb, err);
    if (rc) goto done;
    rc = SLM_ENOMEM;
    size_t cap = n_a < n_b ? n_a : n_b, np = 0;
    if (cap && !(pairs = slm_malloc(cap * sizeof *pairs))) goto oom;
    for (size_t i = 0, j = 0; i < n_a && j < n_b;) {
        int c = strcmp(sa[i].id, sb[j].id);
        if (c == 0) pairs[np++] = (pair_ix){ sa[i++].i, sb[j++].i };
        else if (c < 0) i++;
        else j++;
    }
    if (np) qsort(pairs, np, sizeof *pairs, cmp_pair_a);
    out->n_pairs = np;
    out->n_only_a = n_a - np;
    out->n_only_b = n_b - np;
    if (np && (!(d = slm_malloc(np * sizeof *d)) ||
               !(out->pass_to_fail = slm_calloc(np, sizeof *out->pass_to_fail)) ||
               !(out->fail_to_pass = slm_calloc(np, sizeof *out->fail_to_pass))))
        goto oom;
    double sum_a = 0, sum_b = 0;
    for (size_t k = 0; k < np; k++) {
        const slm_eval_stats_item *x = &a[pairs[k].ia], *y = &b[pairs[k].ib];
        sum_a += x->score;
        sum_b += y->score;
        d[k] = y->score - x->score;
        if (x->pass && y->pass) out->both_pass++;
        else if (!x->pass && !y->pass) out->both_fail++;
        else if (x->pass) {
            out->b_disc++;
            if (!(out->pass_to_fail[out->n_pass_to_fail++] = slm_strdup(x->id))) goto oom;
        } else {
            out->c_disc++;
            if (!(out->fail_to_pass[out->n_fail_to_pass++] = slm_strdup(x->id))) goto oom;
        }
    }
    out->mcnemar_p = slm_eval_stats_mcnemar_p(out->b_disc, out->c_disc, &out->mcnemar_exact);
    out->mean_a = np ? sum_a / (double)np : NAN;
    out->mean_b = np ? sum_b / (double)np : NAN;
    out->diff.mean = slm_eval_stats_mean(d, np);
    out->diff.lo = out->diff.hi = out->diff.mean;
    out->diff_p = NAN;
    if (np >= 2) {
        if (!(means = slm_malloc((size_t)n_boot * sizeof *means))) goto oom;
        boot_means(d, np, n_boot, seed, means);
        out->diff.lo = slm_eval_stats_percentile_sorted(means, (size_t)n_boot, 2.5);
        out->diff.hi = slm_eval_stats_percentile_sorted(means, (size_t)n_boot, 97.5);
        double obs = fabs(out->diff.mean);
        long extreme = 0;
        for (int k = 0; k < n_boot; k++) extreme += fabs(means[k] - out->diff.mean) >= obs;
        out->diff_p = (1.0 + (double)extreme) / (1.0 + (double)n_boot);
    }
    rc = 0;
    goto done;
oom:
    slm_eval_stats_paired_clear(out);
    rc = slm_err_set(err, SLM_ENOMEM, "paired comparison: out of memory");
done:
    slm_free(sa);
    slm_free(sb);
    slm_free(pairs);
    slm_free(d);
    slm_free(means);
    return rc;
}

/* ---- cost ------------------------------------------------------------------- */

double slm_eval_stats_cost_per_correct(double total_cost, size_t n_pass) {
    return n_pass ? total_cost / (double)n_pass : NAN;
}
