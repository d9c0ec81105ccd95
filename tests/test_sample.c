/*
 * test_sample.c — the sampler: greedy, seeding, the distribution it draws
 * from, the exact kept sets of top-k / top-p / min-p (checked against a
 * brute-force reference on random logits), penalties and logit bias (read
 * back from the logits, which slm_sampler_sample leaves biased and
 * penalised), NaN/inf handling, bad parameters, out-of-memory, and speed on
 * a 150k vocabulary.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slm/slm.h"
#include "util/alloc.h"

/* Plain test-only generator (not the sampler's) for making logits. */
static uint64_t t_state = 88172645463325252ULL;
static double t_unif(void) {
    t_state ^= t_state << 13; t_state ^= t_state >> 7; t_state ^= t_state << 17;
    return (double)(t_state >> 11) * 0x1.0p-53;
}

static slm_sampler *mk(const slm_sample_params *p, int32_t n_vocab) {
    slm_sampler *s = NULL;
    int rc = slm_sampler_new(p, n_vocab, &s);
    cr_assert_eq(rc, 0, "slm_sampler_new: %d (%s)", rc, slm_strerror(rc));
    cr_assert_not_null(s);
    return s;
}

/* All filters off, temperature 1: draws straight from softmax(logits). */
static slm_sample_params plain(float temp) {
    slm_sample_params p = slm_sample_default_params();
    p.temp = temp; p.top_k = 0; p.top_p = 1.0f; p.min_p = 0.0f;
    return p;
}

static int32_t sample_copy(slm_sampler *s, const float *logits, int32_t n) {
    float buf[4096];
    cr_assert(n <= 4096);
    memcpy(buf, logits, (size_t)n * sizeof *buf);
    return slm_sampler_sample(s, buf);
}

/* Counts draws of each token over n_draws from the same logits. */
static void histogram(slm_sampler *s, const float *logits, int32_t n, int n_draws, int *hist) {
    memset(hist, 0, (size_t)n * sizeof *hist);
    for (int i = 0; i < n_draws; i++) {
        int32_t t = sample_copy(s, logits, n);
        cr_assert(t >= 0 && t < n, "token %d out of range", t);
        hist[t]++;
    }
}

/* ---- defaults and greedy --------------------------------------------------- */

Test(sample, default_params) {
    slm_sample_params p = slm_sample_default_params();
    cr_expect_float_eq(p.temp, 0.8f, 1e-7);
    cr_expect_eq(p.top_k, 40);
    cr_expect_float_eq(p.top_p, 0.95f, 1e-7);
    cr_expect_float_eq(p.min_p, 0.05f, 1e-7);
    cr_expect_float_eq(p.repeat_penalty, 1.0f, 1e-7);
    cr_expect_eq(p.repeat_last_n, 64);
    cr_expect_float_eq(p.frequency_penalty, 0.0f, 1e-7);
    cr_expect_float_eq(p.presence_penalty, 0.0f, 1e-7);
    cr_expect_eq(p.seed, 0);
    cr_expect_null(p.logit_bias);
    cr_expect_eq(p.n_logit_bias, 0);
}

Test(sample, greedy_picks_argmax) {
    slm_sample_params p = slm_sample_default_params();
    p.temp = 0.0f;
    slm_sampler *s = mk(&p, 6);
    float l1[6] = { 0.1f, -3.0f, 7.5f, 7.4f, 2.0f, -INFINITY };
    cr_assert_eq(sample_copy(s, l1, 6), 2);
    float l2[6] = { -1.0f, 4.0f, 3.0f, 4.0f, 4.0f, 0.0f };  /* ties: lowest id */
    cr_assert_eq(sample_copy(s, l2, 6), 1);
    p.temp = -1.0f;                                         /* negative: greedy too */
    slm_sampler *s2 = mk(&p, 6);
    cr_assert_eq(sample_copy(s2, l1, 6), 2);
    slm_sampler_free(s);
    slm_sampler_free(s2);
}

Test(sample, top_k_1_equals_greedy) {
    enum { N = 1000 };
    static float l[N];
    slm_sample_params p = slm_sample_default_params();
    p.top_k = 1; p.temp = 1.5f; p.seed = 7;
    slm_sample_params g = slm_sample_default_params();
    g.temp = 0.0f;
    slm_sampler *s = mk(&p, N), *sg = mk(&g, N);
    for (int row = 0; row < 50; row++) {
        for (int i = 0; i < N; i++) l[i] = (float)(t_unif() * 20.0 - 10.0);
        int32_t a = sample_copy(s, l, N), b = sample_copy(sg, l, N);
        cr_assert_eq(a, b, "row %d: top_k=1 gave %d, greedy %d", row, a, b);
    }
    slm_sampler_free(s);
    slm_sampler_free(sg);
}

/* ---- seeding --------------------------------------------------------------- */

static void sequence(uint64_t seed, int32_t *out, int n) {
    float l[8] = { 1.0f, 1.1f, 0.9f, 1.2f, 0.8f, 1.0f, 1.05f, 0.95f };
    slm_sample_params p = plain(1.0f);
    p.seed = seed;
    slm_sampler *s = mk(&p, 8);
    for (int i = 0; i < n; i++) out[i] = sample_copy(s, l, 8);
    slm_sampler_free(s);
}

Test(sample, same_seed_same_sequence) {
    int32_t a[200], b[200], c[200];
    sequence(42, a, 200);
    sequence(42, b, 200);
    sequence(43, c, 200);
    cr_assert(memcmp(a, b, sizeof a) == 0, "seed 42 gave two different sequences");
    int diff = 0;
    for (int i = 0; i < 200; i++) diff += a[i] != c[i];
    cr_assert_gt(diff, 50, "seeds 42 and 43 differ in only %d of 200 draws", diff);
    int32_t z1[50], z2[50];                  /* seed 0 is a seed like any other */
    sequence(0, z1, 50);
    sequence(0, z2, 50);
    cr_assert(memcmp(z1, z2, sizeof z1) == 0);
}

/* ---- the distribution ------------------------------------------------------ */

/* Checks hist against expected probabilities within 5 standard errors. */
static void expect_dist(const int *hist, const double *prob, int n, int n_draws) {
    for (int i = 0; i < n; i++) {
        double f = (double)hist[i] / n_draws;
        double sd = sqrt(prob[i] * (1.0 - prob[i]) / n_draws);
        double tol = 5.0 * sd + 1e-3;
        cr_expect(fabs(f - prob[i]) <= tol, "token %d: frequency %.4f, softmax %.4f (tol %.4f)",
                  i, f, prob[i], tol);
    }
}

static void softmax(const float *l, int n, float temp, double *prob) {
    double mx = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++) if (l[i] > mx) mx = l[i];
    for (int i = 0; i < n; i++) sum += prob[i] = exp((l[i] - mx) / temp);
    for (int i = 0; i < n; i++) prob[i] /= sum;
}

Test(sample, frequencies_match_softmax) {
    enum { N = 6, DRAWS = 20000 };
    float l[N] = { 1.0f, 2.0f, 3.0f, 0.5f, -1.0f, 2.5f };
    double prob[N];
    int hist[N];
    slm_sample_params p = plain(1.0f);
    p.seed = 1234;
    slm_sampler *s = mk(&p, N);
    histogram(s, l, N, DRAWS, hist);
    softmax(l, N, 1.0f, prob);
    expect_dist(hist, prob, N, DRAWS);
    slm_sampler_free(s);
}

Test(sample, temperature_sharpens) {
    enum { N = 5, DRAWS = 20000 };
    float l[N] = { 0.0f, 0.5f, 1.0f, 1.5f, -0.5f };
    double prob[N];
    int hist[N];
    slm_sample_params p = plain(0.5f);
    p.seed = 99;
    slm_sampler *s = mk(&p, N);
    histogram(s, l, N, DRAWS, hist);
    softmax(l, N, 0.5f, prob);
    expect_dist(hist, prob, N, DRAWS);
    slm_sampler_free(s);
}

Test(sample, top_k_renormalises) {
    enum { N = 6, DRAWS = 20000 };
    float l[N] = { 1.0f, 2.0f, 3.0f, 0.5f, -1.0f, 2.5f };
    float kept[3] = { 2.0f, 3.0f, 2.5f };           /* tokens 1, 2, 5 */
    double pk[3], prob[N] = { 0 };
    int hist[N];
    slm_sample_params p = plain(1.0f);
    p.top_k = 3; p.seed = 5;
    slm_sampler *s = mk(&p, N);
    histogram(s, l, N, DRAWS, hist);
    softmax(kept, 3, 1.0f, pk);
    prob[1] = pk[0]; prob[2] = pk[1]; prob[5] = pk[2];
    expect_dist(hist, prob, N, DRAWS);
    cr_assert_eq(hist[0] + hist[3] + hist[4], 0, "drew outside the top 3");
    slm_sampler_free(s);
}

/* ---- top-p and min-p: exact kept sets --------------------------------------- */

/* Probabilities 0.5, 0.3, 0.15, 0.05 (logits are their logs). */
static const double P4[4] = { 0.5, 0.3, 0.15, 0.05 };

static void draw_set(const slm_sample_params *p, const float *l, int n, int draws, int *hist) {
    slm_sampler *s = mk(p, n);
    histogram(s, l, n, draws, hist);
    slm_sampler_free(s);
}

Test(sample, top_p_cuts_tail_exactly) {
    float l[4];
    int hist[4];
    for (int i = 0; i < 4; i++) l[i] = logf((float)P4[i]);
    slm_sample_params p = plain(1.0f);
    p.top_p = 0.75f;                           /* 0.5 < 0.75 <= 0.8: keeps {0,1} */
    draw_set(&p, l, 4, 5000, hist);
    cr_assert(hist[0] > 0 && hist[1] > 0, "kept tokens not drawn: %d %d", hist[0], hist[1]);
    cr_assert_eq(hist[2] + hist[3], 0, "drew outside top-p 0.75: %d %d", hist[2], hist[3]);
    p.top_p = 0.9f;                            /* 0.8 < 0.9 <= 0.95: keeps {0,1,2} */
    draw_set(&p, l, 4, 5000, hist);
    cr_assert(hist[2] > 0);
    cr_assert_eq(hist[3], 0, "drew token 3 with top-p 0.9");
    p.top_p = 0.0f;                            /* always keeps the best one */
    draw_set(&p, l, 4, 1000, hist);
    cr_assert_eq(hist[0], 1000);
}

Test(sample, min_p_cuts_tail_exactly) {
    float l[4];
    int hist[4];
    for (int i = 0; i < 4; i++) l[i] = logf((float)P4[i]);
    slm_sample_params p = plain(1.0f);
    p.min_p = 0.2f;                            /* threshold 0.1: keeps {0,1,2} */
    draw_set(&p, l, 4, 5000, hist);
    cr_assert(hist[0] > 0 && hist[1] > 0 && hist[2] > 0);
    cr_assert_eq(hist[3], 0, "drew token 3 with min-p 0.2");
    p.min_p = 0.4f;                            /* threshold 0.2: keeps {0,1} */
    draw_set(&p, l, 4, 5000, hist);
    cr_assert(hist[1] > 0);
    cr_assert_eq(hist[2] + hist[3], 0, "drew outside min-p 0.4");
}

/* Brute-force kept set of llama.cpp's top-k → top-p → min-p on logits l,
 * written as plainly as possible: sort everything, then cut. */
static const float *rank_l;
static int rank_cmp(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (rank_l[i] != rank_l[j]) return rank_l[i] > rank_l[j] ? -1 : 1;
    return i - j;
}
static int reference_kept(const float *l, int n, int top_k, float top_p, float min_p, char *kept) {
    int idx[4096];
    for (int i = 0; i < n; i++) idx[i] = i;
    rank_l = l;
    qsort(idx, (size_t)n, sizeof idx[0], rank_cmp);
    int m = (top_k > 0 && top_k < n) ? top_k : n;
    double mx = l[idx[0]], sum = 0.0;
    for (int i = 0; i < m; i++) sum += exp((double)l[idx[i]] - mx);
    if (top_p < 1.0f) {
        double cum = 0.0;
        int cut = m;
        for (int i = 0; i < m; i++) {
            cum += exp((double)l[idx[i]] - mx) / sum;
            if (cum >= top_p) { cut = i + 1; break; }
        }
        m = cut;
    }
    if (min_p > 0.0f) {
        float min_logit = (float)mx + logf(min_p);
        int cut = 1;
        while (cut < m && l[idx[cut]] >= min_logit) cut++;
        m = cut;
    }
    memset(kept, 0, (size_t)n);
    for (int i = 0; i < m; i++) kept[idx[i]] = 1;
    return m;
}

/* At a huge temperature the draw is nearly uniform over the kept set, so a
 * few thousand draws visit every kept token: the visited set must be it. */
static void check_kept_sets(int top_k, float top_p, float min_p) {
    enum { N = 3000, ROWS = 6 };
    static float l[N];
    static int hist[N];
    static char kept[N];
    for (int row = 0; row < ROWS; row++) {
        for (int i = 0; i < N; i++) l[i] = (float)(t_unif() * t_unif() * 12.0);
        l[row * 7] = l[row * 7 + 1];               /* a tie somewhere */
        int m = reference_kept(l, N, top_k, top_p, min_p, kept);
        slm_sample_params p = plain(1e4f);
        p.top_k = top_k; p.top_p = top_p; p.min_p = min_p; p.seed = (uint64_t)row;
        int draws = m * 60 + 100;
        slm_sampler *s = mk(&p, N);
        histogram(s, l, N, draws, hist);
        slm_sampler_free(s);
        for (int i = 0; i < N; i++) {
            cr_assert(!(hist[i] > 0 && !kept[i]), "k=%d p=%.2f min_p=%.2f row %d: token %d "
                      "(logit %f) drawn but outside the kept set of %d", top_k, top_p, min_p,
                      row, i, l[i], m);
            cr_assert(!(hist[i] == 0 && kept[i]), "k=%d p=%.2f min_p=%.2f row %d: token %d "
                      "kept but never drawn in %d draws (kept %d)", top_k, top_p, min_p,
                      row, i, draws, m);
        }
    }
}

Test(sample, kept_sets_match_reference) {
    check_kept_sets(0, 0.5f, 0.0f);      /* unsorted: heap top-p */
    check_kept_sets(0, 0.9f, 0.2f);      /* unsorted: min-p then top-p */
    check_kept_sets(0, 1.0f, 0.3f);      /* min-p alone */
    check_kept_sets(40, 0.95f, 0.05f);   /* the defaults: sorted path */
    check_kept_sets(25, 0.6f, 0.0f);
    check_kept_sets(30, 1.0f, 0.0f);     /* top-k alone */
}

/* ---- penalties and bias ---------------------------------------------------- */

Test(sample, repeat_penalty_divides_and_multiplies) {
    slm_sample_params p = slm_sample_default_params();
    p.temp = 0.0f; p.repeat_penalty = 2.0f;
    slm_sampler *s = mk(&p, 5);
    slm_sampler_accept(s, 0);
    slm_sampler_accept(s, 1);
    slm_sampler_accept(s, 0);                 /* repeats are penalised once */
    slm_sampler_accept(s, 3);
    float l[5] = { 3.0f, -2.0f, 1.0f, 0.0f, 2.0f };
    int32_t t = slm_sampler_sample(s, l);
    cr_expect_float_eq(l[0], 1.5f, 1e-6, "positive logit divided: %f", l[0]);
    cr_expect_float_eq(l[1], -4.0f, 1e-6, "negative logit multiplied: %f", l[1]);
    cr_expect_float_eq(l[2], 1.0f, 1e-6);
    cr_expect_float_eq(l[3], 0.0f, 1e-6);
    cr_expect_float_eq(l[4], 2.0f, 1e-6);
    cr_assert_eq(t, 4, "penalised argmax should move to token 4, got %d", t);
    slm_sampler_free(s);
}

Test(sample, frequency_and_presence_penalties) {
    slm_sample_params p = slm_sample_default_params();
    p.temp = 0.0f; p.frequency_penalty = 0.5f; p.presence_penalty = 0.25f;
    slm_sampler *s = mk(&p, 4);
    slm_sampler_accept(s, 2);
    slm_sampler_accept(s, 2);
    slm_sampler_accept(s, 2);
    slm_sampler_accept(s, 1);
    slm_sampler_accept(s, -5);                /* ignored: out of range */
    slm_sampler_accept(s, 4);
    float l[4] = { 1.0f, 1.0f, 3.0f, -1.0f };
    (void)slm_sampler_sample(s, l);
    cr_expect_float_eq(l[0], 1.0f, 1e-6);
    cr_expect_float_eq(l[1], 1.0f - 0.5f - 0.25f, 1e-6, "token 1: %f", l[1]);
    cr_expect_float_eq(l[2], 3.0f - 1.5f - 0.25f, 1e-6, "token 2: %f", l[2]);
    cr_expect_float_eq(l[3], -1.0f, 1e-6);
    float l2[4] = { 1.0f, 1.0f, 3.0f, -1.0f };  /* counts are not consumed */
    (void)slm_sampler_sample(s, l2);
    cr_expect_float_eq(l2[2], 1.25f, 1e-6);
    slm_sampler_free(s);
}

Test(sample, penalty_window_forgets_old_tokens) {
    slm_sample_params p = slm_sample_default_params();
    p.temp = 0.0f; p.repeat_penalty = 2.0f; p.frequency_penalty = 1.0f; p.repeat_last_n = 3;
    slm_sampler *s = mk(&p, 4);
    int32_t hist[] = { 0, 1, 1, 2 };            /* window now 1, 1, 2 */
    for (int i = 0; i < 4; i++) slm_sampler_accept(s, hist[i]);
    float l[4] = { 4.0f, 4.0f, 4.0f, 4.0f };
    (void)slm_sampler_sample(s, l);
    cr_expect_float_eq(l[0], 4.0f, 1e-6, "token 0 left the window but got %f", l[0]);
    cr_expect_float_eq(l[1], 4.0f / 2 - 2.0f, 1e-6, "token 1: %f", l[1]);
    cr_expect_float_eq(l[2], 4.0f / 2 - 1.0f, 1e-6, "token 2: %f", l[2]);
    cr_expect_float_eq(l[3], 4.0f, 1e-6);
    slm_sampler_free(s);

    p.repeat_last_n = 0;                         /* 0: penalties off */
    s = mk(&p, 4);
    slm_sampler_accept(s, 1);
    float l2[4] = { 1.0f, 2.0f, 0.0f, 0.0f };
    cr_assert_eq(slm_sampler_sample(s, l2), 1);
    cr_expect_float_eq(l2[1], 2.0f, 1e-6);
    slm_sampler_free(s);
}

Test(sample, logit_bias_bans_and_boosts) {
    enum { N = 5 };
    float l[N] = { 1.0f, 0.5f, 0.2f, 5.0f, 0.0f };
    slm_logit_bias ban[2] = { { 3, -INFINITY }, { 4, 2.0f } };
    slm_sample_params p = plain(1.0f);
    p.logit_bias = ban; p.n_logit_bias = 2; p.seed = 3;
    slm_sampler *s = mk(&p, N);
    ban[0].token = 0;                             /* the sampler keeps its own copy */
    int hist[N];
    histogram(s, l, N, 5000, hist);
    cr_assert_eq(hist[3], 0, "banned token drawn %d times", hist[3]);
    cr_assert_gt(hist[4], hist[0], "boosted token 4 (%d) should beat token 0 (%d)", hist[4], hist[0]);
    slm_sampler_free(s);

    ban[0].token = 3;
    p.temp = 0.0f;
    s = mk(&p, N);
    float g[N] = { 1.0f, 0.5f, 0.2f, 5.0f, 0.0f };
    cr_assert_eq(slm_sampler_sample(s, g), 4, "greedy with token 3 banned and 4 boosted");
    cr_expect(isinf(g[3]) && g[3] < 0, "banned logit is %f", g[3]);
    slm_sampler_free(s);
}

/* ---- bad numbers ----------------------------------------------------------- */

Test(sample, nan_and_inf_logits) {
    enum { N = 6 };
    slm_sample_params g = slm_sample_default_params();
    g.temp = 0.0f;
    slm_sample_params r = plain(1.0f);
    r.seed = 11;
    slm_sampler *sg = mk(&g, N), *sr = mk(&r, N);

    float all_nan[N] = { NAN, NAN, NAN, NAN, NAN, NAN };
    cr_assert_eq(sample_copy(sg, all_nan, N), 0);
    cr_assert_eq(sample_copy(sr, all_nan, N), 0);
    float all_ninf[N] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY };
    cr_assert_eq(sample_copy(sg, all_ninf, N), 0);
    cr_assert_eq(sample_copy(sr, all_ninf, N), 0);

    float some_nan[N] = { NAN, 1.0f, NAN, 0.5f, NAN, -INFINITY };
    cr_assert_eq(sample_copy(sg, some_nan, N), 1);
    int hist[N];
    histogram(sr, some_nan, N, 2000, hist);
    cr_assert_eq(hist[0] + hist[2] + hist[4] + hist[5], 0, "drew a NaN or -inf token");
    cr_assert(hist[1] > 0 && hist[3] > 0);
    float buf[N];
    memcpy(buf, some_nan, sizeof buf);
    (void)slm_sampler_sample(sr, buf);
    cr_expect(isinf(buf[0]) && buf[0] < 0, "NaN should read back as -inf, got %f", buf[0]);

    float pinf[N] = { 1.0f, INFINITY, NAN, INFINITY, 2.0f, 0.0f };
    cr_assert_eq(sample_copy(sg, pinf, N), 1);
    histogram(sr, pinf, N, 2000, hist);
    cr_assert_eq(hist[0] + hist[2] + hist[4] + hist[5], 0, "with +inf present only +inf tokens win");
    cr_assert(hist[1] > 0 && hist[3] > 0, "two +inf tokens should share the mass");

    float one[N] = { NAN, NAN, NAN, NAN, 3.0f, NAN };
    cr_assert_eq(sample_copy(sr, one, N), 4);
    slm_sampler_free(sg);
    slm_sampler_free(sr);
}

/* ---- parameters and memory ------------------------------------------------- */

Test(sample, bad_params_rejected) {
    slm_sampler *s = (slm_sampler *)&s;          /* must be reset to NULL */
    slm_sample_params p = slm_sample_default_params();
    cr_assert_eq(slm_sampler_new(&p, 0, &s), SLM_EINVAL);
    cr_assert_null(s);
    cr_assert_eq(slm_sampler_new(&p, 10, NULL), SLM_EINVAL);
    slm_sample_params q;
    q = p; q.temp = NAN;           cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL);
    q = p; q.top_k = -1;           cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL);
    q = p; q.top_p = NAN;          cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL);
    q = p; q.top_p = -0.1f;        cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL);
    q = p; q.min_p = 1.5f;         cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL);
    q = p; q.repeat_penalty = 0;   cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL);
    q = p; q.repeat_last_n = -1;   cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL);
    q = p; q.presence_penalty = INFINITY; cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL);
    slm_logit_bias b = { 10, 1.0f };
    q = p; q.logit_bias = &b; q.n_logit_bias = 1;
    cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL, "bias token outside the vocabulary");
    b.token = 3; b.bias = NAN;
    cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL, "NaN bias");
    q = p; q.logit_bias = NULL; q.n_logit_bias = 2;
    cr_expect_eq(slm_sampler_new(&q, 10, &s), SLM_EINVAL);
    cr_assert_null(s);
    cr_assert_eq(slm_sampler_new(NULL, 10, &s), 0, "NULL params mean the defaults");
    slm_sampler_free(s);
    slm_sampler_free(NULL);
    cr_assert_eq(slm_sampler_sample(NULL, NULL), SLM_EINVAL);
    slm_sampler_accept(NULL, 1);
}

Test(sample, out_of_memory_is_an_error) {
    size_t base = slm_mem_used();
    slm_logit_bias b = { 1, 1.0f };
    slm_sample_params p = slm_sample_default_params();
    p.logit_bias = &b; p.n_logit_bias = 1;
    for (long n = 1; n <= 5; n++) {          /* sampler, candidates, bias, ring, counts */
        slm_sampler *s = (slm_sampler *)&base;
        slm_alloc_fail_after(n);
        int rc = slm_sampler_new(&p, 100, &s);
        slm_alloc_fail_after(0);
        cr_assert_eq(rc, SLM_ENOMEM, "allocation %ld failing gave %d", n, rc);
        cr_assert_null(s);
        cr_assert_eq(slm_mem_used(), base, "leak after failing allocation %ld", n);
    }
    slm_sampler *s = mk(&p, 100);
    slm_sampler_free(s);
    cr_assert_eq(slm_mem_used(), base);
}

/* 150k vocabulary through the default chain, the heap top-p path and
 * min-p + top-p: every draw is a valid id. (Speed is measured by benchmarks,
 * never asserted in a test.) */
Test(sample, large_vocab_draws_valid_tokens, .timeout = 120) {
    enum { N = 152064, ROWS = 50 };
    float *l = malloc(N * sizeof *l), *row = malloc(N * sizeof *row);
    cr_assert(l && row);
    for (int i = 0; i < N; i++) l[i] = (float)(t_unif() * 8.0 + (i % 97 == 0 ? 6.0 : 0.0));
    slm_sample_params variants[3];
    variants[0] = slm_sample_default_params();
    variants[1] = plain(0.9f); variants[1].top_p = 0.95f;           /* heap top-p on 150k */
    variants[2] = plain(0.7f); variants[2].min_p = 0.1f; variants[2].top_p = 0.9f;
    for (int v = 0; v < 3; v++) {
        slm_sampler *s = mk(&variants[v], N);
        for (int r = 0; r < ROWS; r++) {
            memcpy(row, l, N * sizeof *row);
            int32_t t = slm_sampler_sample(s, row);
            cr_assert(t >= 0 && t < N);
            slm_sampler_accept(s, t);
        }
        slm_sampler_free(s);
    }
    free(l);
    free(row);
}
