/*
 * test_quality.c — perplexity and KL divergence (src/quality/ and the
 * `perplexity` / `kld` commands): known answers for the statistics (KL of
 * hand-computed distributions, percentiles, standard error, the PPL of a
 * uniform model), the window plan, and the commands end to end on synth
 * models (same model: KLD 0; Q8_0 and Q4_0 against F32: small, ordered),
 * quant-report's three outputs, and stories260K (fixture). Timings are printed by the commands, never
 * asserted.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "quality/kld.h"
#include "quality/ppl.h"
#include "quality/stats.h"

#define SMALL "--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 96 --vocab-size 300"

/* ---- statistics ---------------------------------------------------------- */

Test(quality, stats_mean_sd_stderr_of_a_known_sample) {
    const double x[] = { 2, 4, 4, 4, 5, 5, 7, 9 };   /* mean 5, Σ(x−m)² = 32 */
    slm_stats s;
    slm_stats_init(&s);
    for (int i = 0; i < 8; i++) slm_stats_add(&s, x[i]);
    cr_assert_eq(s.n, 8);
    cr_assert_float_eq(slm_stats_mean(&s), 5.0, 1e-12);
    cr_assert_float_eq(slm_stats_sd(&s), sqrt(32.0 / 7.0), 1e-12, "sd %.12f", slm_stats_sd(&s));
    cr_assert_float_eq(slm_stats_stderr(&s), sqrt(32.0 / 7.0) / sqrt(8.0), 1e-12);
    cr_assert_float_eq(s.min, 2.0, 0);
    cr_assert_float_eq(s.max, 9.0, 0);
    slm_stats one;
    slm_stats_init(&one);
    slm_stats_add(&one, 3.0);
    cr_assert_float_eq(slm_stats_stderr(&one), 0.0, 0, "one value has no spread");
}

Test(quality, stats_keep_precision_with_a_large_mean) {
    slm_stats s;
    slm_stats_init(&s);
    for (int i = 0; i < 100000; i++) slm_stats_add(&s, 1e9 + (i % 2 ? 1.0 : -1.0));
    cr_assert_float_eq(slm_stats_mean(&s), 1e9, 1e-6);
    cr_assert_float_eq(slm_stats_sd(&s), sqrt(100000.0 / 99999.0), 1e-6, "sd %.9f", slm_stats_sd(&s));
}

Test(quality, percentile_of_a_known_array) {
    float v[] = { 5, 1, 4, 2, 3 };
    slm_stats_sort_f32(v, 5);
    for (int i = 0; i < 5; i++) cr_assert_float_eq(v[i], (float)(i + 1), 0);
    cr_assert_float_eq(slm_stats_percentile(v, 5, 0.5), 3.0, 1e-12);
    cr_assert_float_eq(slm_stats_percentile(v, 5, 0.25), 2.0, 1e-12);
    cr_assert_float_eq(slm_stats_percentile(v, 5, 0.99), 4.96, 1e-6);   /* rank 3.96 */
    cr_assert_float_eq(slm_stats_percentile(v, 5, 0.0), 1.0, 0);
    cr_assert_float_eq(slm_stats_percentile(v, 5, 1.0), 5.0, 0);
    float even[] = { 1, 2, 3, 4 };
    cr_assert_float_eq(slm_stats_percentile(even, 4, 0.5), 2.5, 1e-12, "median of an even sample");
    float one[] = { 7 };
    cr_assert_float_eq(slm_stats_percentile(one, 1, 0.99), 7.0, 0);
    cr_assert_float_eq(slm_stats_percentile(NULL, 0, 0.5), 0.0, 0);
}

/* ---- per-row log-softmax and KL ----------------------------------------- */

Test(quality, uniform_logits_give_nll_log_v_and_ppl_v) {
    enum { V = 1000 };
    static float zeros[V];
    int32_t top = -1;
    double nll = slm_ppl_row_nll(zeros, V, 123, &top);
    cr_assert_float_eq(nll, log((double)V), 1e-9, "nll %.12f", nll);
    cr_assert_eq(top, 0, "ties go to the first token");
    slm_stats s;
    slm_stats_init(&s);
    for (int i = 0; i < 50; i++) slm_stats_add(&s, nll);
    slm_ppl_result r;
    slm_ppl_result_set(&r, &s);
    cr_assert_float_eq(r.ppl, (double)V, 1e-6, "ppl %.9f", r.ppl);
    cr_assert_float_eq(r.ppl_stderr, 0.0, 1e-9);
    cr_assert_float_eq(r.ppl_ci95[0], (double)V, 1e-6);
    cr_assert_float_eq(r.ppl_ci95[1], (double)V, 1e-6);
}

Test(quality, nll_is_stable_for_huge_logits) {
    float row[3] = { 1000.0f, 999.0f, -1000.0f };
    double nll = slm_ppl_row_nll(row, 3, 1, NULL);
    double want = log(1.0 + exp(-1.0)) + 1.0;   /* −log(e^999 / (e^1000 + e^999)) */
    cr_assert(isfinite(nll));
    cr_assert_float_eq(nll, want, 1e-9, "nll %.12f want %.12f", nll, want);
}

Test(quality, ppl_stderr_and_interval_from_a_known_sample) {
    const double x[] = { 1.0, 2.0, 3.0, 4.0 };   /* mean 2.5, sd √(5/3), se √(5/12) */
    slm_stats s;
    slm_stats_init(&s);
    for (int i = 0; i < 4; i++) slm_stats_add(&s, x[i]);
    slm_ppl_result r;
    slm_ppl_result_set(&r, &s);
    double se = sqrt(5.0 / 12.0);
    cr_assert_float_eq(r.nll_mean, 2.5, 1e-12);
    cr_assert_float_eq(r.nll_stderr, se, 1e-12);
    cr_assert_float_eq(r.ppl, exp(2.5), 1e-9);
    cr_assert_float_eq(r.ppl_stderr, exp(2.5) * se, 1e-9);
    cr_assert_float_eq(r.ppl_ci95[0], exp(2.5 - 1.96 * se), 1e-9);
    cr_assert_float_eq(r.ppl_ci95[1], exp(2.5 + 1.96 * se), 1e-9);
}

Test(quality, kl_of_identical_distributions_is_zero) {
    float a[5] = { 0.3f, -1.0f, 2.5f, 0.0f, 7.0f };
    slm_kld_row r;
    slm_kld_row_compute(a, a, 5, 2, &r);
    cr_assert_eq(r.kld, 0.0, "KL %.3g", r.kld);
    cr_assert_eq(r.top, r.top_base);
    cr_assert_float_eq(r.nll, r.nll_base, 0);
    cr_assert_float_eq(r.p, r.p_base, 0);
}

Test(quality, kl_of_hand_computed_distributions) {
    /* p = (1/2, 1/4, 1/4), q = (1/4, 1/2, 1/4): KL(p‖q) = ½ln2 − ¼ln2 = ¼ln2.
     * Logits are log-probabilities plus different constants (softmax ignores
     * the shift). */
    float base[3] = { logf(0.5f) + 3.0f, logf(0.25f) + 3.0f, logf(0.25f) + 3.0f };
    float quant[3] = { logf(0.25f) - 2.0f, logf(0.5f) - 2.0f, logf(0.25f) - 2.0f };
    slm_kld_row r;
    slm_kld_row_compute(base, quant, 3, 1, &r);
    cr_assert_float_eq(r.kld, 0.25 * log(2.0), 1e-6, "KL %.9f want %.9f", r.kld, 0.25 * log(2.0));
    cr_assert_float_eq(r.nll_base, log(4.0), 1e-6);
    cr_assert_float_eq(r.nll, log(2.0), 1e-6);
    cr_assert_float_eq(r.p - r.p_base, 0.25, 1e-6);
    cr_assert_eq(r.top_base, 0);
    cr_assert_eq(r.top, 1);
    /* and the other direction: KL(q‖p) = ¼ln(1/2) + ½ln2 = ¼ln2 as well here;
     * a lopsided pair is not symmetric: */
    float b2[2] = { logf(0.9f), logf(0.1f) }, q2[2] = { logf(0.5f), logf(0.5f) };
    slm_kld_row_compute(b2, q2, 2, 0, &r);
    double want = 0.9 * log(0.9 / 0.5) + 0.1 * log(0.1 / 0.5);
    cr_assert_float_eq(r.kld, want, 1e-6, "KL %.9f want %.9f", r.kld, want);
}

Test(quality, kld_accumulator_figures) {
    slm_kld_acc a;
    cr_assert_eq(slm_kld_acc_init(&a, 4, NULL), 0);
    const double kl[4] = { 0.4, 0.1, 0.3, 0.2 };
    for (int i = 0; i < 4; i++) {
        slm_kld_row r = { .kld = kl[i], .nll_base = 1.0, .nll = 1.0 + 0.1 * i, .p_base = 0.5, .p = 0.4,
                          .top_base = 1, .top = i < 3 ? 1 : 2 };
        cr_assert_eq(slm_kld_acc_add(&a, &r, NULL), 0);
    }
    slm_kld_row extra = { 0 };
    slm_err err = { 0 };
    cr_assert_eq(slm_kld_acc_add(&a, &extra, &err), SLM_ERANGE, "past the capacity");
    slm_kld_result res = { 0 };
    slm_kld_acc_finish(&a, &res);
    cr_assert_eq(res.n_tokens, 4);
    cr_assert_float_eq(res.kld_mean, 0.25, 1e-9);
    cr_assert_float_eq(res.kld_median, 0.25, 1e-6);
    cr_assert_float_eq(res.kld_max, 0.4, 1e-9);
    cr_assert_float_eq(res.kld_p99, 0.397, 1e-6, "p99 %.9f", res.kld_p99);  /* rank 2.97 of .1 .2 .3 .4 */
    cr_assert_float_eq(res.top1_agreement, 0.75, 1e-12);
    cr_assert_float_eq(res.ppl_ratio, exp(0.15), 1e-9, "mean NLL difference is 0.15");
    cr_assert_float_eq(res.base.ppl, exp(1.0), 1e-9);
    cr_assert_float_eq(res.dp_mean, -0.1, 1e-9);
    slm_kld_acc_free(&a);
}

/* ---- windows ------------------------------------------------------------- */

Test(quality, plan_chunks_score_the_second_half) {
    slm_ppl_params p = slm_ppl_default_params();
    p.n_ctx = 100;
    slm_ppl_plan pl;
    cr_assert_eq(slm_ppl_plan_init(&pl, &p, 1050, 1, NULL), 0);
    cr_assert_eq(pl.n_windows, 10);
    cr_assert_eq(pl.stride, 100);
    cr_assert_eq(pl.first, 50);
    cr_assert_eq(pl.n_scored, 49, "positions 51..99 of each window");
    cr_assert_eq(slm_ppl_window_start(&pl, 3), 300);
    p.n_chunks = 4;
    cr_assert_eq(slm_ppl_plan_init(&pl, &p, 1050, 1, NULL), 0);
    cr_assert_eq(pl.n_windows, 4);
    cr_assert_eq(pl.n_fit, 10);
    /* 512 like llama-perplexity: 255 scored per chunk */
    p = slm_ppl_default_params();
    cr_assert_eq(slm_ppl_plan_init(&pl, &p, 2048, 1, NULL), 0);
    cr_assert_eq(pl.n_scored, 255);
    cr_assert_eq(pl.n_windows, 4);
}

Test(quality, plan_sliding_scores_the_new_tokens) {
    slm_ppl_params p = slm_ppl_default_params();
    p.n_ctx = 100;
    p.stride = 25;
    slm_ppl_plan pl;
    cr_assert_eq(slm_ppl_plan_init(&pl, &p, 1000, -1, NULL), 0);
    cr_assert_eq(pl.first, 74);
    cr_assert_eq(pl.n_scored, 25);
    cr_assert_eq(pl.n_windows, 37, "windows at 0, 25, …, 900");
    cr_assert_eq(slm_ppl_window_start(&pl, 36) + pl.n_ctx, 1000, "the last window ends at the text's end");
}

Test(quality, plan_rejects_short_text_and_bad_parameters) {
    slm_ppl_params p = slm_ppl_default_params();
    p.n_ctx = 100;
    slm_ppl_plan pl;
    slm_err err = { 0 };
    cr_assert_eq(slm_ppl_plan_init(&pl, &p, 199, 1, &err), SLM_ERANGE);
    cr_assert(strstr(err.msg, "199 tokens") && strstr(err.msg, "at least 200"), "%s", err.msg);
    cr_assert_eq(slm_ppl_plan_init(&pl, &p, 200, 1, &err), 0);
    p.stride = 101;
    cr_assert_eq(slm_ppl_plan_init(&pl, &p, 1000, 1, &err), SLM_EINVAL);
    p.stride = 0;
    p.n_ctx = 2;
    cr_assert_eq(slm_ppl_plan_init(&pl, &p, 1000, 1, &err), SLM_EINVAL);
}

/* ---- the commands -------------------------------------------------------- */

static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof cmd, "%s ", th_slm_bin());
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    return th_run(cmd, out);
}

/* A text of pseudo-random English words (same every time), nbytes long. */
static const char *text_file(size_t nbytes) {
    static const char *words[] = { "the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park",
                                   "with", "ball", "little", "girl", "said", "happy", "tree", "big", "red" };
    char name[64];
    snprintf(name, sizeof name, "text-%zu.txt", nbytes);
    const char *path = th_tmp(name);
    char *buf = malloc(nbytes + 16);
    size_t n = 0;
    uint64_t s = 7;
    while (n < nbytes) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const char *w = words[(s >> 33) % 20];
        n += (size_t)snprintf(buf + n, nbytes + 16 - n, "%s%s", w, (s >> 20) % 9 == 0 ? ". " : " ");
    }
    cr_assert_eq(th_write_file(path, buf, n), 0);
    free(buf);
    return path;
}

static cJSON *parse_one_object(const char *out) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(out, &end, 0);
    cr_assert(j && cJSON_IsObject(j), "not one JSON object: %s", out);
    while (end && (*end == '\n' || *end == ' ')) end++;
    cr_assert(end && *end == 0, "more than one JSON object on stdout: %s", out);
    return j;
}

static double num(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    cr_assert(cJSON_IsNumber(v), "key %s missing or not a number", key);
    return v->valuedouble;
}

Test(quality, perplexity_json_on_a_synth_model) {
    const char *m = th_synth("llama", "f32", SMALL);
    cr_assert(m);
    const char *txt = text_file(1200);
    char *out;
    cr_assert_eq(run(&out, "perplexity -m %s -f %s --ctx 64 -t 2 --json 2>/dev/null", m, txt), 0, "%s", out);
    cJSON *j = parse_one_object(out);
    double ppl = num(j, "ppl");
    cr_assert(isfinite(ppl) && ppl > 1.0 && ppl < 1000.0, "ppl %g", ppl);
    cr_assert(num(j, "ppl_stderr") >= 0);
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(j, "ppl_ci95");
    cr_assert(cJSON_IsArray(ci) && cJSON_GetArraySize(ci) == 2);
    double lo = cJSON_GetArrayItem(ci, 0)->valuedouble, hi = cJSON_GetArrayItem(ci, 1)->valuedouble;
    cr_assert(lo <= ppl && ppl <= hi, "%g not in [%g, %g]", ppl, lo, hi);
    cr_assert_float_eq(num(j, "nll_mean"), log(ppl), 1e-6);
    cr_assert_eq((int)num(j, "ctx"), 64);
    /* 1200 byte tokens: 18 windows of 64, 31 scored in each */
    cr_assert_eq((int)num(j, "n_tokens"), 18 * 31, "n_tokens %g", num(j, "n_tokens"));
    cr_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "model")));
    cJSON_Delete(j);
    free(out);

    /* the text output: a line per window and the final estimate */
    cr_assert_eq(run(&out, "perplexity -m %s -f %s --ctx 64 --chunks 3 -t 2 2>&1", m, txt), 0, "%s", out);
    cr_assert(strstr(out, "[1/3]") && strstr(out, "[3/3]") && !strstr(out, "[4/"), "%s", out);
    cr_assert(strstr(out, "PPL = ") && strstr(out, " ± ") && strstr(out, "95% CI"), "%s", out);
    free(out);

    /* sliding windows score more tokens with more context each */
    cr_assert_eq(run(&out, "perplexity -m %s -f %s --ctx 64 --stride 16 --chunks 5 -t 2 --json 2>/dev/null", m, txt),
                 0, "%s", out);
    j = parse_one_object(out);
    cr_assert_eq((int)num(j, "n_tokens"), 5 * 16);
    cr_assert(isfinite(num(j, "ppl")));
    cJSON_Delete(j);
    free(out);
}

Test(quality, kld_of_a_model_against_itself_is_zero) {
    const char *m = th_synth("llama", "f32", SMALL);
    const char *txt = text_file(1200);
    char *out;
    cr_assert_eq(run(&out, "kld --base %s -m %s -f %s --ctx 64 --chunks 6 -t 2 --json 2>/dev/null", m, m, txt), 0, "%s",
                 out);
    cJSON *j = parse_one_object(out);
    cr_assert(num(j, "kld_mean") <= 1e-6, "kld_mean %g", num(j, "kld_mean"));
    cr_assert(num(j, "kld_max") <= 1e-6, "kld_max %g", num(j, "kld_max"));
    cr_assert_float_eq(num(j, "top1_agreement"), 1.0, 0);
    cr_assert_float_eq(num(j, "ppl_ratio"), 1.0, 1e-9);
    cr_assert_float_eq(num(j, "ppl"), num(j, "ppl_base"), 1e-9);
    cr_assert_eq((int)num(j, "n_tokens"), 6 * 31);
    cJSON_Delete(j);
    free(out);
}

static double kld_mean(const char *base, const char *quant, const char *txt, double *top1, double *ratio) {
    char *out;
    cr_assert_eq(run(&out, "kld --base %s -m %s -f %s --ctx 64 --chunks 6 -t 2 --json 2>/dev/null", base, quant, txt), 0,
                 "%s", out);
    cJSON *j = parse_one_object(out);
    double k = num(j, "kld_mean");
    *top1 = num(j, "top1_agreement");
    *ratio = num(j, "ppl_ratio");
    cr_assert(num(j, "kld_median") <= num(j, "kld_p99") && num(j, "kld_p99") <= num(j, "kld_max") + 1e-9, "%s", out);
    cJSON_Delete(j);
    free(out);
    return k;
}

Test(quality, kld_grows_as_quantization_coarsens) {
    const char *f32 = th_synth("llama", "f32", SMALL), *q8 = th_synth("llama", "q8_0", SMALL),
               *q4 = th_synth("llama", "q4_0", SMALL);
    cr_assert(f32 && q8 && q4);
    const char *txt = text_file(1200);
    double t8, t4, r8, r4;
    double k8 = kld_mean(f32, q8, txt, &t8, &r8), k4 = kld_mean(f32, q4, txt, &t4, &r4);
    cr_log_info("KLD vs f32: q8_0 %.3g (top-1 %.4f, ppl ratio %.5f), q4_0 %.3g (top-1 %.4f, ppl ratio %.5f)", k8, t8, r8,
                k4, t4, r4);
    cr_assert(k8 > 0 && k8 < 0.05, "q8_0 KLD %g", k8);
    cr_assert(k4 > k8, "q4_0 KLD %g not above q8_0's %g", k4, k8);
    cr_assert(k4 < 1.0, "q4_0 KLD %g", k4);
    cr_assert(t8 > 0.8 && t8 <= 1.0, "q8_0 top-1 %g", t8);
}

Test(quality, clear_errors) {
    const char *m = th_synth("llama", "f32", SMALL);
    const char *other = th_synth("llama", "f32", "--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 96 --vocab-size 320");
    const char *txt = text_file(1200), *short_txt = text_file(100);
    char *out;
    cr_assert_eq(run(&out, "perplexity -m %s -f /nonexistent/text.txt 2>&1", m), 1);
    cr_assert(strstr(out, "slm: error: cannot open '/nonexistent/text.txt'"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "perplexity -m /nonexistent/model.gguf -f %s 2>&1", txt), 1);
    cr_assert(strstr(out, "slm: error: /nonexistent/model.gguf"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "perplexity -m %s -f %s --ctx 64 2>&1", m, short_txt), 1);
    cr_assert(strstr(out, "needs at least 128 (2 × context)"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "perplexity -m %s 2>&1", m), 2, "usage error");
    free(out);
    cr_assert_eq(run(&out, "perplexity -m %s -f %s --ctx 64 --stride 65 2>&1", m, txt), 2);
    free(out);
    cr_assert_eq(run(&out, "kld --base %s -m %s -f %s --ctx 64 2>&1", m, other, txt), 1);
    cr_assert(strstr(out, "vocabularies differ") && strstr(out, "300") && strstr(out, "320"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "kld --base %s -m %s -f %s --ctx 64 2>&1", m, m, short_txt), 1);
    cr_assert(strstr(out, "needs at least"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "kld --base %s -m /nonexistent/q.gguf -f %s 2>&1", m, txt), 1);
    cr_assert(strstr(out, "/nonexistent/q.gguf"), "%s", out);
    free(out);
}

Test(quality, quant_report_writes_a_table_markdown_and_json) {
    const char *m = th_synth("llama", "f32", "--dim 256 --layers 1 --heads 4 --kv-heads 2 --ff 512 --vocab-size 300");
    cr_assert(m);
    const char *txt = text_file(1200);
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s", th_tmp("qr"));
    char *out;
    cr_assert_eq(run(&out, "quant-report %s -f %s --types q4_0,q8_0 --ctx 64 --chunks 4 --pp 16 --tg 8 -t 2 -o %s --keep 2>&1",
                     m, txt, prefix),
                 0, "%s", out);
    cr_assert(strstr(out, "Q8_0") && strstr(out, "Q4_0") && strstr(out, "(base)"), "%s", out);
    cr_assert(strstr(out, "Q8_0") < strstr(out, "Q4_0"), "rows sorted by size, largest first:\n%s", out);
    free(out);
    char path[600];
    snprintf(path, sizeof path, "%s.md", prefix);
    char *md = th_read_file(path, NULL);
    cr_assert(md && strstr(md, "| type |") && strstr(md, "| Q4_0 |") && strstr(md, "| Q8_0 |"), "%s", md ? md : "(none)");
    free(md);
    snprintf(path, sizeof path, "%s-Q4_0.gguf", prefix);
    cr_assert_eq(access(path, F_OK), 0, "--keep keeps %s", path);
    snprintf(path, sizeof path, "%s.json", prefix);
    char *js = th_read_file(path, NULL);
    cr_assert(js, "no %s", path);
    cJSON *arr = cJSON_Parse(js);
    cr_assert(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 3, "%s", js);
    const cJSON *b = cJSON_GetArrayItem(arr, 0), *q8 = cJSON_GetArrayItem(arr, 1), *q4 = cJSON_GetArrayItem(arr, 2);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "base")), "%s", js);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(q8, "type")->valuestring, "Q8_0");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(q4, "type")->valuestring, "Q4_0");
    cr_assert_float_eq(num(b, "ppl_ratio"), 1.0, 0);
    cr_assert(num(b, "size") > num(q8, "size") && num(q8, "size") > num(q4, "size"), "%s", js);
    cr_assert(num(q8, "bpw") > 8.0 && num(q8, "bpw") < 9.0, "q8_0 bpw %g", num(q8, "bpw"));
    cr_assert(num(q4, "kld_mean") > num(q8, "kld_mean") && num(q8, "kld_mean") > 0, "%s", js);
    cr_assert(num(q8, "tg_tps") > 0 && num(q8, "pp_tps") > 0);
    cr_assert_float_eq(num(q8, "ppl_base"), num(b, "ppl"), 1e-9);
    cr_assert_eq((int)num(q4, "n_tokens"), 4 * 31);
    cJSON_Delete(arr);
    free(js);

    cr_assert_eq(run(&out, "quant-report %s -f %s --types q4_0,q9_9 2>&1", m, txt), 2);
    cr_assert(strstr(out, "unknown type 'q9_9'"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "quant-report %s -f %s --types q4_0 -o /nonexistent/dir/qr 2>&1", m, txt), 1);
    cr_assert(strstr(out, "cannot write the report as '/nonexistent/dir/qr.md'"), "%s", out);
    free(out);
}

Test(quality, perplexity_of_stories260k_is_plausible) {
    SKIP_WITHOUT_FIXTURE(model, "models/stories260K.gguf");
    char *out;
    cr_assert_eq(run(&out, "perplexity -m %s -f tests/data/tinystory.txt --ctx 128 -t 2 --json 2>/dev/null", model), 0,
                 "%s", out);
    cJSON *j = parse_one_object(out);
    double ppl = num(j, "ppl");
    cr_log_info("stories260K PPL on tests/data/tinystory.txt (ctx 128): %.4f ± %.4f over %g tokens", ppl,
                num(j, "ppl_stderr"), num(j, "n_tokens"));
    /* a 260K-parameter TinyStories model on a TinyStories-like text: far
     * better than uniform over its 512 tokens, far from perfect */
    cr_assert(isfinite(ppl) && ppl > 1.5 && ppl < 60, "ppl %g", ppl);
    cJSON_Delete(j);
    free(out);
}
