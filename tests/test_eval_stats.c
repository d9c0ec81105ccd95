/*
 * test_eval_stats.c — aggregate statistics of `slm eval` (src/eval/stats.c)
 * against answers worked out by hand (and matching scikit-learn, numpy and
 * scipy where they define the same quantity): percentiles, bootstrap
 * intervals, confusion matrix and macro-F1, per-field P/R/F1, McNemar,
 * paired comparison, cost per correct answer, out-of-memory paths.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/stats.h"
#include "util/alloc.h"

#define EPS 1e-9

Test(eval_stats, mean_and_empty_inputs) {
    double x[] = { 1, 2, 3, 4 };
    cr_assert_float_eq(slm_eval_stats_mean(x, 4), 2.5, EPS);
    cr_assert(isnan(slm_eval_stats_mean(x, 0)));
    cr_assert(isnan(slm_eval_stats_percentile_sorted(x, 0, 50)));
    slm_eval_stats_ci ci;
    cr_assert_eq(slm_eval_stats_bootstrap_mean_ci(x, 0, 0, 0, 1, &ci), 0);
    cr_assert(isnan(ci.mean) && isnan(ci.lo) && isnan(ci.hi));
    cr_assert_eq(slm_eval_stats_bootstrap_mean_ci(x, 1, 0, 0, 1, &ci), 0);
    cr_assert(ci.mean == 1 && ci.lo == 1 && ci.hi == 1);
}

/* numpy.percentile([15, 20, 35, 40, 50], [0, 25, 40, 50, 95, 100]) =
 * [15, 20, 29, 35, 48, 50]: rank = p/100 * 4, e.g. p95: 3.8 -> 40 + 0.8*10. */
Test(eval_stats, percentiles_interpolate_linearly) {
    double lat[] = { 50, 15, 40, 20, 35 };
    double ps[] = { 0, 25, 40, 50, 95, 100 }, want[] = { 15, 20, 29, 35, 48, 50 }, got[6];
    cr_assert_eq(slm_eval_stats_percentiles(lat, 5, ps, 6, got), 0);
    for (int i = 0; i < 6; i++) cr_assert_float_eq(got[i], want[i], EPS, "p%g: %g, want %g", ps[i], got[i], want[i]);
    cr_assert_eq(lat[0], 50, "the input is not reordered");
    double one = 7;
    cr_assert_float_eq(slm_eval_stats_percentile_sorted(&one, 1, 95), 7, EPS);
}

Test(eval_stats, bootstrap_ci_contains_the_mean_and_is_deterministic) {
    double x[20];
    for (int i = 0; i < 20; i++) x[i] = i < 12 ? 1 : 0;          /* mean 0.6, se ~0.11 */
    slm_eval_stats_ci a, b, c;
    cr_assert_eq(slm_eval_stats_bootstrap_mean_ci(x, 20, 0, 0, 42, &a), 0);
    cr_assert_eq(slm_eval_stats_bootstrap_mean_ci(x, 20, 1000, 0.95, 42, &b), 0);
    cr_assert_eq(slm_eval_stats_bootstrap_mean_ci(x, 20, 1000, 0.95, 7, &c), 0);
    cr_assert_float_eq(a.mean, 0.6, EPS);
    cr_assert(a.lo <= a.mean && a.mean <= a.hi, "[%g, %g] holds %g", a.lo, a.hi, a.mean);
    cr_assert(a.lo > 0.3 && a.lo < 0.5 && a.hi > 0.7 && a.hi < 0.9, "[%g, %g]", a.lo, a.hi);
    cr_assert(a.lo == b.lo && a.hi == b.hi, "same seed, same interval (defaults are B=1000, 95%%)");
    cr_assert(c.lo <= 0.6 && c.hi >= 0.6);
    /* A narrower level gives a narrower interval. */
    slm_eval_stats_ci d;
    cr_assert_eq(slm_eval_stats_bootstrap_mean_ci(x, 20, 1000, 0.5, 42, &d), 0);
    cr_assert(d.lo >= a.lo && d.hi <= a.hi);
}

Test(eval_stats, prf_zero_division_is_zero) {
    slm_eval_stats_prf p;
    slm_eval_stats_prf_from_counts(0, 0, 0, &p);
    cr_assert(p.precision == 0 && p.recall == 0 && p.f1 == 0);
    slm_eval_stats_prf_from_counts(3, 1, 2, &p);
    cr_assert_float_eq(p.precision, 0.75, EPS);
    cr_assert_float_eq(p.recall, 0.6, EPS);
    cr_assert_float_eq(p.f1, 2 * 0.75 * 0.6 / 1.35, EPS);
}

/*
 * Ten cases, labels cat / dog / bird, one output with no label ("(none)").
 *   gold: cat cat cat cat    dog dog dog  bird bird bird
 *   pred: cat cat dog (none) dog dog cat  bird bird dog
 * Confusion (rows gold, columns pred; cat dog bird (none)):
 *   cat  2 1 0 1   support 4
 *   dog  1 2 0 0   support 3
 *   bird 0 1 2 0   support 3
 *   none 0 0 0 0   support 0
 * column sums 3 4 2 1.
 *   cat:  tp 2 fp 1 fn 2  P 2/3  R 1/2  F1 = 2*2/(4+1+2) = 4/7
 *   dog:  tp 2 fp 2 fn 1  P 1/2  R 2/3  F1 = 4/7
 *   bird: tp 2 fp 0 fn 1  P 1    R 2/3  F1 = 4/5
 *   none: tp 0 fp 1 fn 0  P 0    R 0 (no support: zero_division=0)  F1 0
 * accuracy 6/10. macro-F1 over the gold labels = (4/7 + 4/7 + 4/5) / 3 =
 * 0.647619047619 = sklearn f1_score(y, p, labels=["bird","cat","dog"],
 * average="macro", zero_division=0). Over every label (sklearn's default,
 * which includes "(none)"): (8/7 + 4/5) / 4 = 0.485714285714.
 * macro precision (2/3 + 1/2 + 1)/3 = 0.7222…, macro recall (1/2 + 2/3 + 2/3)/3
 * = 0.6111….
 */
Test(eval_stats, confusion_matrix_and_macro_f1_match_sklearn) {
    const char *gold[] = { "cat", "cat", "cat", "cat", "dog", "dog", "dog", "bird", "bird", "bird" };
    const char *pred[] = { "cat", "cat", "dog", NULL, "dog", "dog", "cat", "bird", "bird", "dog" };
    const char *set[] = { "cat", "dog", "bird" };
    slm_eval_stats_labels m;
    slm_err err = { 0 };
    cr_assert_eq(slm_eval_stats_labels_compute(gold, pred, 10, set, 3, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(m.n_labels, 4);
    cr_assert_str_eq(m.labels[0], "cat");
    cr_assert_str_eq(m.labels[1], "dog");
    cr_assert_str_eq(m.labels[2], "bird");
    cr_assert_str_eq(m.labels[3], "(none)");
    long want[16] = { 2, 1, 0, 1, 1, 2, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0 };
    for (int i = 0; i < 16; i++) cr_assert_eq(m.confusion[i], want[i], "cell %d: %ld, want %ld", i, m.confusion[i], want[i]);
    cr_assert_eq(m.support[0], 4);
    cr_assert_eq(m.support[3], 0);
    cr_assert_float_eq(m.per_label[0].precision, 2.0 / 3, EPS);
    cr_assert_float_eq(m.per_label[0].recall, 0.5, EPS);
    cr_assert_float_eq(m.per_label[0].f1, 4.0 / 7, EPS);
    cr_assert_float_eq(m.per_label[1].f1, 4.0 / 7, EPS);
    cr_assert_float_eq(m.per_label[2].precision, 1.0, EPS);
    cr_assert_float_eq(m.per_label[2].f1, 0.8, EPS);
    cr_assert_eq(m.per_label[3].fp, 1);
    cr_assert(m.per_label[3].precision == 0 && m.per_label[3].recall == 0 && m.per_label[3].f1 == 0);
    cr_assert_float_eq(m.accuracy, 0.6, EPS);
    cr_assert_float_eq(m.macro_f1, 0.647619047619047619, EPS, "macro-F1 %.12f", m.macro_f1);
    cr_assert_float_eq(m.macro_f1_all, 0.485714285714285714, EPS, "all %.12f", m.macro_f1_all);
    cr_assert_float_eq(m.macro_precision, (2.0 / 3 + 0.5 + 1) / 3, EPS);
    cr_assert_float_eq(m.macro_recall, (0.5 + 2.0 / 3 + 2.0 / 3) / 3, EPS);
    slm_eval_stats_labels_clear(&m);
    cr_assert_null(m.labels);
}

/* A declared label nobody used has support 0: F1 0, left out of macro_f1
 * (gold label set) but counted in macro_f1_all. Labels outside the set come
 * after it, sorted. */
Test(eval_stats, zero_support_and_undeclared_labels) {
    const char *gold[] = { "cat", "cat", "cat", "cat", "dog", "dog", "dog", "bird", "bird", "bird" };
    const char *pred[] = { "cat", "cat", "dog", "(none)", "dog", "dog", "cat", "bird", "bird", "dog" };
    const char *set[] = { "cat", "fish", "dog", "bird" };
    slm_eval_stats_labels m;
    cr_assert_eq(slm_eval_stats_labels_compute(gold, pred, 10, set, 4, &m, NULL), 0);
    cr_assert_eq(m.n_labels, 5);
    cr_assert_str_eq(m.labels[1], "fish");
    cr_assert_eq(m.support[1], 0);
    cr_assert_eq(m.per_label[1].f1, 0);
    cr_assert_float_eq(m.macro_f1, 0.647619047619047619, EPS);
    cr_assert_float_eq(m.macro_f1_all, (8.0 / 7 + 0.8) / 5, EPS);
    slm_eval_stats_labels_clear(&m);

    const char *g2[] = { "b", "a", "c" }, *p2[] = { "z", "a", "c" };
    cr_assert_eq(slm_eval_stats_labels_compute(g2, p2, 3, NULL, 0, &m, NULL), 0);
    cr_assert_eq(m.n_labels, 4);
    const char *order[] = { "a", "b", "c", "z" };
    for (int i = 0; i < 4; i++) cr_assert_str_eq(m.labels[i], order[i]);
    cr_assert_float_eq(m.accuracy, 2.0 / 3, EPS);
    cr_assert_float_eq(m.macro_f1, 2.0 / 3, EPS, "a and c are 1, b is 0");
    slm_eval_stats_labels_clear(&m);

    cr_assert_eq(slm_eval_stats_labels_compute(NULL, NULL, 0, NULL, 0, &m, NULL), 0);
    cr_assert(isnan(m.accuracy) && isnan(m.macro_f1));
    slm_eval_stats_labels_clear(&m);
}

/*
 * Three cases of an extraction task:
 *   case 1: sender tp, subject fp+fn (wrong), date fn (missing)
 *   case 2: sender tp, subject tp, date tp
 *   case 3: sender fn, subject tp, date fp (unexpected)
 * sender  tp 2 fp 0 fn 1: P 1    R 2/3 F1 4/5
 * subject tp 2 fp 1 fn 1: P 2/3  R 2/3 F1 2/3
 * date    tp 1 fp 1 fn 1: P 1/2  R 1/2 F1 1/2
 * micro   tp 5 fp 2 fn 3: P 5/7  R 5/8 F1 10/15; macro F1 (4/5+2/3+1/2)/3.
 */
Test(eval_stats, fields_micro_and_per_field) {
    slm_eval_stats_field_obs obs[] = {
        { "sender", 1, 0, 0 }, { "subject", 0, 1, 1 }, { "date", 0, 0, 1 },
        { "sender", 1, 0, 0 }, { "subject", 1, 0, 0 }, { "date", 1, 0, 0 },
        { "sender", 0, 0, 1 }, { "subject", 1, 0, 0 }, { "date", 0, 1, 0 },
        { "never", 0, 0, 0 },
    };
    slm_eval_stats_fields f;
    cr_assert_eq(slm_eval_stats_fields_compute(obs, 10, &f, NULL), 0);
    cr_assert_eq(f.n_fields, 4);
    cr_assert_str_eq(f.names[0], "sender");
    cr_assert_str_eq(f.names[1], "subject");
    cr_assert_str_eq(f.names[2], "date");
    cr_assert_str_eq(f.names[3], "never");
    cr_assert_float_eq(f.per_field[0].precision, 1, EPS);
    cr_assert_float_eq(f.per_field[0].recall, 2.0 / 3, EPS);
    cr_assert_float_eq(f.per_field[0].f1, 0.8, EPS);
    cr_assert_float_eq(f.per_field[1].f1, 2.0 / 3, EPS);
    cr_assert_float_eq(f.per_field[2].precision, 0.5, EPS);
    cr_assert_float_eq(f.per_field[2].f1, 0.5, EPS);
    cr_assert_eq(f.micro.tp, 5);
    cr_assert_eq(f.micro.fp, 2);
    cr_assert_eq(f.micro.fn, 3);
    cr_assert_float_eq(f.micro.precision, 5.0 / 7, EPS);
    cr_assert_float_eq(f.micro.recall, 5.0 / 8, EPS);
    cr_assert_float_eq(f.micro.f1, 10.0 / 15, EPS);
    cr_assert_float_eq(f.macro_f1, (0.8 + 2.0 / 3 + 0.5) / 3, EPS, "'never' has no counts: left out");
    slm_eval_stats_fields_clear(&f);
}

/* b=1, c=9: exact two-sided binomial p = 2 * (C(10,0)+C(10,1)) / 2^10 =
 * 22/1024 (scipy.stats.binomtest(1, 10).pvalue). b=30, c=10: chi-square with
 * continuity correction (|30-10|-1)^2/40 = 9.025, p = erfc(sqrt(9.025/2)) =
 * 0.002663119259 (statsmodels mcnemar(exact=False)). */
Test(eval_stats, mcnemar_known_tables) {
    bool exact;
    cr_assert_float_eq(slm_eval_stats_mcnemar_p(1, 9, &exact), 22.0 / 1024, 1e-12);
    cr_assert(exact);
    cr_assert_float_eq(slm_eval_stats_mcnemar_p(9, 1, NULL), 22.0 / 1024, 1e-12);
    cr_assert_float_eq(slm_eval_stats_mcnemar_p(30, 10, &exact), 0.002663119259138554, 1e-12);
    cr_assert(!exact);
    cr_assert_eq(slm_eval_stats_mcnemar_p(0, 0, &exact), 1.0);
    cr_assert_eq(slm_eval_stats_mcnemar_p(5, 5, NULL), 1.0, "capped at 1");
    cr_assert_eq(slm_eval_stats_mcnemar_p(20, 20, NULL), 1.0, "correction clamps at 0");
    /* 25 discordant pairs is still exact: b=5, c=20 -> 2*sum_{i<=5} C(25,i)/2^25. */
    double tail = 1 + 25 + 300 + 2300 + 12650 + 53130;
    cr_assert_float_eq(slm_eval_stats_mcnemar_p(5, 20, &exact), 2 * tail / 33554432.0, 1e-12);
    cr_assert(exact);
}

Test(eval_stats, paired_comparison_matches_by_id) {
    slm_eval_stats_item a[] = {
        { "q1", 1, true }, { "q2", 1, true }, { "q3", 0, false }, { "q4", 0, false },
        { "q5", 1, true }, { "only-a", 1, true },
    };
    slm_eval_stats_item b[] = {    /* another order, one id of its own */
        { "q5", 0, false }, { "q4", 1, true }, { "only-b", 0, false }, { "q3", 1, true },
        { "q2", 1, true }, { "q1", 0.5, false },
    };
    slm_eval_stats_paired p, p2;
    slm_err err = { 0 };
    cr_assert_eq(slm_eval_stats_paired_compare(a, 6, b, 6, 0, 3, &p, &err), 0, "%s", err.msg);
    cr_assert_eq(p.n_pairs, 5);
    cr_assert_eq(p.n_only_a, 1);
    cr_assert_eq(p.n_only_b, 1);
    cr_assert_eq(p.both_pass, 1);                /* q2 */
    cr_assert_eq(p.b_disc, 2);                   /* q1, q5 */
    cr_assert_eq(p.c_disc, 2);                   /* q3, q4 */
    cr_assert_eq(p.both_fail, 0);
    cr_assert(p.mcnemar_exact);
    cr_assert_eq(p.mcnemar_p, 1.0);
    cr_assert_eq(p.n_pass_to_fail, 2);
    cr_assert_str_eq(p.pass_to_fail[0], "q1");
    cr_assert_str_eq(p.pass_to_fail[1], "q5");
    cr_assert_eq(p.n_fail_to_pass, 2);
    cr_assert_str_eq(p.fail_to_pass[0], "q3");
    cr_assert_str_eq(p.fail_to_pass[1], "q4");
    cr_assert_float_eq(p.mean_a, 0.6, EPS);
    cr_assert_float_eq(p.mean_b, 3.5 / 5, EPS);
    cr_assert_float_eq(p.diff.mean, 0.1, EPS);   /* d = -0.5, 0, 1, 1, -1 */
    cr_assert(p.diff.lo <= 0.1 && 0.1 <= p.diff.hi);
    cr_assert(p.diff_p > 0.5 && p.diff_p <= 1, "p %g", p.diff_p);
    cr_assert_eq(slm_eval_stats_paired_compare(a, 6, b, 6, 0, 3, &p2, NULL), 0);
    cr_assert(p.diff.lo == p2.diff.lo && p.diff.hi == p2.diff.hi && p.diff_p == p2.diff_p, "deterministic");
    slm_eval_stats_paired_clear(&p);
    slm_eval_stats_paired_clear(&p2);
}

Test(eval_stats, paired_comparison_detects_a_clear_gain) {
    enum { N = 60 };
    slm_eval_stats_item a[N], b[N];
    char ids[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "c%d", i);
        a[i] = (slm_eval_stats_item){ ids[i], i < 20 ? 1 : 0, i < 20 };
        b[i] = (slm_eval_stats_item){ ids[i], i < 50 ? 1 : 0, i < 50 };
    }
    slm_eval_stats_paired p;
    cr_assert_eq(slm_eval_stats_paired_compare(a, N, b, N, 2000, 11, &p, NULL), 0);
    cr_assert_eq(p.c_disc, 30);
    cr_assert_eq(p.b_disc, 0);
    cr_assert(!p.mcnemar_exact);
    /* (30-1)^2/30 = 28.033: p = erfc(sqrt(14.0167)) ~ 1.2e-7 */
    cr_assert(p.mcnemar_p < 1e-6, "%g", p.mcnemar_p);
    cr_assert_float_eq(p.diff.mean, 0.5, EPS);
    cr_assert(p.diff.lo > 0.3 && p.diff.hi <= 0.7, "[%g, %g]", p.diff.lo, p.diff.hi);
    cr_assert_float_eq(p.diff_p, 1.0 / 2001, 1e-12, "no resample reaches 0: the smallest p");
    cr_assert_eq(p.n_fail_to_pass, 30);
    cr_assert_str_eq(p.fail_to_pass[0], "c20");
    slm_eval_stats_paired_clear(&p);
}

Test(eval_stats, paired_comparison_rejects_repeated_ids_and_handles_no_pairs) {
    slm_eval_stats_item a[] = { { "x", 1, true }, { "x", 0, false } }, b[] = { { "y", 1, true } };
    slm_eval_stats_paired p;
    slm_err err = { 0 };
    cr_assert_eq(slm_eval_stats_paired_compare(a, 2, b, 1, 0, 1, &p, &err), SLM_EINVAL);
    cr_assert(strstr(err.msg, "'x'"), "%s", err.msg);
    cr_assert_eq(slm_eval_stats_paired_compare(a, 1, b, 1, 0, 1, &p, &err), 0);
    cr_assert_eq(p.n_pairs, 0);
    cr_assert(isnan(p.diff.mean) && isnan(p.diff_p) && isnan(p.mean_a));
    cr_assert_eq(p.mcnemar_p, 1.0);
    slm_eval_stats_paired_clear(&p);
    slm_eval_stats_item c[] = { { NULL, 1, true } };
    cr_assert_eq(slm_eval_stats_paired_compare(c, 1, b, 1, 0, 1, &p, &err), SLM_EINVAL);
}

Test(eval_stats, cost_per_correct) {
    cr_assert_float_eq(slm_eval_stats_cost_per_correct(2.0, 4), 0.5, EPS);
    cr_assert(isnan(slm_eval_stats_cost_per_correct(1.0, 0)), "no correct answer: NAN (n/a)");
    cr_assert_eq(slm_eval_stats_cost_per_correct(0.0, 3), 0.0);
}

/* Every allocation failing in turn gives SLM_ENOMEM, never a crash or leak. */
Test(eval_stats, out_of_memory_is_an_error) {
    const char *gold[] = { "a", "b", "c", "a" }, *pred[] = { "a", "c", "(none)", "b" };
    slm_eval_stats_item a[] = { { "1", 1, true }, { "2", 0, false }, { "3", 1, true } };
    slm_eval_stats_item b[] = { { "3", 0, false }, { "2", 1, true }, { "1", 1, true } };
    slm_eval_stats_field_obs obs[] = { { "f", 1, 0, 0 }, { "g", 0, 1, 1 } };
    double x[] = { 1, 2, 3 }, ps[] = { 50 }, out[1];
    for (long k = 1; k < 40; k++) {
        slm_eval_stats_labels m;
        slm_eval_stats_fields f;
        slm_eval_stats_paired p;
        slm_eval_stats_ci ci;
        slm_alloc_fail_after(k);
        int r1 = slm_eval_stats_labels_compute(gold, pred, 4, NULL, 0, &m, NULL);
        slm_alloc_fail_after(k);
        int r2 = slm_eval_stats_fields_compute(obs, 2, &f, NULL);
        slm_alloc_fail_after(k);
        int r3 = slm_eval_stats_paired_compare(a, 3, b, 3, 50, 1, &p, NULL);
        slm_alloc_fail_after(k);
        int r4 = slm_eval_stats_bootstrap_mean_ci(x, 3, 50, 0, 1, &ci);
        slm_alloc_fail_after(k);
        int r5 = slm_eval_stats_percentiles(x, 3, ps, 1, out);
        slm_alloc_fail_after(0);
        cr_assert(r1 == 0 || r1 == SLM_ENOMEM);
        cr_assert(r2 == 0 || r2 == SLM_ENOMEM);
        cr_assert(r3 == 0 || r3 == SLM_ENOMEM);
        cr_assert(r4 == 0 || r4 == SLM_ENOMEM);
        cr_assert(r5 == 0 || r5 == SLM_ENOMEM);
        if (!r1) { cr_assert_eq(m.confusion[0], 1); slm_eval_stats_labels_clear(&m); }
        if (!r2) slm_eval_stats_fields_clear(&f);
        if (!r3) { cr_assert_eq(p.n_pairs, 3); slm_eval_stats_paired_clear(&p); }
    }
}
