/*
 * test_quantize.c — `slm quantize` and `slm imatrix`: the weighted
 * quantizers' error on Gaussian data (per-type bounds; importance weights
 * lower the weighted error), the mix rules (the per-tensor types llama.cpp
 * picks; compared with llama-quantize itself when its binary is around),
 * every type and mix written, loaded and run, metadata carried over, the
 * imatrix written, read back and used, the imatrix's effect on a real
 * model (stories260K fixture), and the errors: one line, exit 1, no OUT
 * and no temporary file left.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "helpers.h"
#include "kernels/types.h"
#include "quant/imatrix.h"
#include "quant/mix.h"
#include "quant/quantize.h"
#include "quant/qweighted.h"
#include "slm/slm.h"
#include "util/alloc.h"

/* 4 layers, GQA 2, rows of 256 (K-quants fit), separate output */
#define SYN "--dim 256 --layers 4 --heads 4 --kv-heads 2 --ff 256 --vocab-size 300"
/* ffn_down rows of 96: K-quants fall back */
#define SYN_ODD "--dim 256 --layers 2 --heads 4 --kv-heads 4 --ff 96 --vocab-size 300"

static void rm_tmpdir(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", th_tmpdir());
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", th_tmpdir());
}

TestSuite(quant_error);
TestSuite(mix);
TestSuite(quantize, .fini = rm_tmpdir);
TestSuite(imatrix, .fini = rm_tmpdir);

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

static bool exists(const char *p) { return access(p, F_OK) == 0; }

/* ---- Gaussian data ---------------------------------------------------------- */

static uint64_t rng_s = 1;
static double uniform01(void) {
    rng_s = rng_s * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(rng_s >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2.0 * log(uniform01())) * cos(6.283185307179586 * uniform01())); }

#define N_COL 4096
#define N_ROW 32

static const int32_t QTYPES[] = { SLM_TYPE_Q4_0, SLM_TYPE_Q4_1, SLM_TYPE_Q5_0, SLM_TYPE_Q5_1, SLM_TYPE_Q8_0,
                                  SLM_TYPE_Q2_K, SLM_TYPE_Q3_K, SLM_TYPE_Q4_K, SLM_TYPE_Q5_K, SLM_TYPE_Q6_K };
#define N_QTYPES (sizeof QTYPES / sizeof QTYPES[0])

/* Sum over rows of the (weighted) squared error of quantizing with
 * importance qw (NULL: plain); errors are measured with weights mw. */
static double total_error(int32_t type, const float *x, const float *qw, const float *mw, bool kernel_ref) {
    void *y = malloc(slm_row_size(type, N_COL));
    float *buf = malloc(N_COL * sizeof(float));
    double e = 0;
    for (int r = 0; r < N_ROW; r++) {
        const float *xr = x + (size_t)r * N_COL;
        if (kernel_ref) slm_type_traits_ref(type)->from_float(xr, y, N_COL);
        else cr_assert(slm_quant_row(type, xr, y, N_COL, qw), "%s", slm_type_name(type));
        e += slm_quant_row_error(type, xr, y, N_COL, mw, buf);
    }
    free(y);
    free(buf);
    return e;
}

static float *gauss_rows(uint64_t seed) {
    rng_s = seed;
    float *x = malloc(sizeof(float) * N_COL * N_ROW);
    for (int i = 0; i < N_COL * N_ROW; i++) x[i] = gauss();
    return x;
}

/* Relative RMS error bounds on N(0,1) data. A b-bit block format whose
 * scale puts the block's extreme (about 2.5 sigma for 32 values) on the
 * last level has a step of about 5 sigma / 2^b, hence an RMS rounding
 * error of step/sqrt(12): Q4 ~0.09, Q5 ~0.045, Q8 ~0.006; the _1 and K
 * formats fit an offset or smaller sub-blocks and do a little better;
 * Q3_K ~0.15, Q2_K ~0.26 (their searches clip the extremes). Each bound
 * is that estimate with ~25% headroom over what the quantizers measure
 * (given in the comments), so a regression in the search shows up. F16
 * and BF16: half an ulp of 11 and 8 significant bits. */
static const struct { int32_t type; double bound; } BOUNDS[] = {
    { SLM_TYPE_Q4_0, 0.105 },  /* measured 0.081 (ggml's round to nearest: 0.086) */
    { SLM_TYPE_Q4_1, 0.095 },  /* 0.070 (0.078)                                  */
    { SLM_TYPE_Q5_0, 0.052 },  /* 0.040 (0.043)                                  */
    { SLM_TYPE_Q5_1, 0.046 },  /* 0.034 (0.038)                                  */
    { SLM_TYPE_Q8_0, 0.0068 }, /* 0.0051 (0.0053)                                */
    { SLM_TYPE_Q2_K, 0.32 },   /* 0.259                                          */
    { SLM_TYPE_Q3_K, 0.18 },   /* 0.143                                          */
    { SLM_TYPE_Q4_K, 0.087 },  /* 0.069                                          */
    { SLM_TYPE_Q5_K, 0.043 },  /* 0.034                                          */
    { SLM_TYPE_Q6_K, 0.021 },  /* 0.016                                          */
    { SLM_TYPE_F16, 3.5e-4 },  /* 2^-11 / sqrt(3) = 2.8e-4 at most              */
    { SLM_TYPE_BF16, 2.8e-3 }, /* 2^-8 / sqrt(3) = 2.3e-3 at most               */
};

Test(quant_error, rms_error_per_type_within_bounds) {
    float *x = gauss_rows(1);
    double sxx = 0;
    for (int i = 0; i < N_COL * N_ROW; i++) sxx += (double)x[i] * x[i];
    for (size_t i = 0; i < sizeof BOUNDS / sizeof BOUNDS[0]; i++) {
        double rel = sqrt(total_error(BOUNDS[i].type, x, NULL, NULL, false) / sxx);
        cr_log_info("%-5s relative RMS error %.5f (bound %.5f)", slm_type_name(BOUNDS[i].type), rel, BOUNDS[i].bound);
        cr_expect(rel < BOUNDS[i].bound, "%s: relative RMS error %.5f >= bound %.5f", slm_type_name(BOUNDS[i].type), rel,
                  BOUNDS[i].bound);
    }
    free(x);
}

/* Importance spread over three orders of magnitude (log-normal). */
static float *lognormal_weights(void) {
    float *w = malloc(N_COL * sizeof(float));
    for (int j = 0; j < N_COL; j++) w[j] = expf(1.5f * gauss());
    return w;
}

Test(quant_error, importance_lowers_the_weighted_error) {
    float *x = gauss_rows(2), *w = lognormal_weights();
    for (size_t t = 0; t < N_QTYPES; t++) {
        double plain = total_error(QTYPES[t], x, NULL, w, false);
        double ref = total_error(QTYPES[t], x, NULL, w, true);
        double weighted = total_error(QTYPES[t], x, w, w, false);
        cr_log_info("%-5s weighted error: importance %.4g, plain %.4g, kernel reference %.4g (x%.3f)",
                    slm_type_name(QTYPES[t]), weighted, plain, ref, weighted / ref);
        /* measured 0.3-0.55 of the unweighted error; 0.8 leaves room */
        cr_expect(weighted < 0.8 * plain && weighted < 0.8 * ref, "%s: weighted %.4g vs plain %.4g, reference %.4g",
                  slm_type_name(QTYPES[t]), weighted, plain, ref);
    }
    free(x);
    free(w);
}

Test(quant_error, uniform_importance_is_never_worse_than_the_reference) {
    /* Uniform weights: the 32-element formats keep the reference's block
     * whenever it is better (so <= 1.0 exactly); the K-quants run the
     * reference's own search (equal up to float summation order). */
    float *x = gauss_rows(3), *ones = malloc(N_COL * sizeof(float));
    for (int j = 0; j < N_COL; j++) ones[j] = 1.0f;
    for (size_t t = 0; t < N_QTYPES; t++) {
        double ref = total_error(QTYPES[t], x, NULL, NULL, true);
        double uni = total_error(QTYPES[t], x, ones, NULL, false);
        double plain = total_error(QTYPES[t], x, NULL, NULL, false);
        cr_expect(uni <= 1.001 * ref, "%s: uniform weights %.6g vs reference %.6g", slm_type_name(QTYPES[t]), uni, ref);
        cr_expect(plain <= 1.001 * ref, "%s: plain %.6g vs reference %.6g", slm_type_name(QTYPES[t]), plain, ref);
    }
    free(x);
    free(ones);
}

Test(quant_error, zero_and_sparse_importance_stay_sane) {
    /* all-zero importance (columns never activated) means "no
     * preference": the plain quantization, not an arbitrary one */
    float *x = gauss_rows(4), *zero = calloc(N_COL, sizeof(float)), *hot = calloc(N_COL, sizeof(float));
    for (int j = 0; j < N_COL; j += 16) hot[j] = 1.0f; /* one column in 16 matters */
    for (size_t t = 0; t < N_QTYPES; t++) {
        double plain = total_error(QTYPES[t], x, NULL, NULL, false);
        double zeros = total_error(QTYPES[t], x, zero, NULL, false);
        cr_expect(zeros <= 1.001 * plain, "%s: all-zero importance %.5g vs plain %.5g", slm_type_name(QTYPES[t]), zeros, plain);
        /* sparse: the hot columns come out much closer than plainly */
        double hot_w = total_error(QTYPES[t], x, hot, hot, false), hot_plain = total_error(QTYPES[t], x, NULL, hot, false);
        cr_expect(isfinite(hot_w) && hot_w < 0.5 * hot_plain, "%s: hot columns' error %.5g vs %.5g plain",
                  slm_type_name(QTYPES[t]), hot_w, hot_plain);
    }
    free(x);
    free(zero);
    free(hot);
}

Test(quant_error, weighted_blocks_decode_the_same_with_every_kernel_set) {
    /* the packers write the layouts the SIMD kernels read too */
    float *x = gauss_rows(5), *w = lognormal_weights();
    float *a = malloc(N_COL * sizeof(float)), *b = malloc(N_COL * sizeof(float));
    for (size_t t = 0; t < N_QTYPES; t++) {
        void *y = malloc(slm_row_size(QTYPES[t], N_COL));
        slm_quant_row(QTYPES[t], x, y, N_COL, w);
        slm_type_traits_ref(QTYPES[t])->to_float(y, a, N_COL);
        slm_type_traits_get(QTYPES[t])->to_float(y, b, N_COL);
        cr_expect(memcmp(a, b, N_COL * sizeof(float)) == 0, "%s: dispatched to_float differs", slm_type_name(QTYPES[t]));
        free(y);
    }
    free(a);
    free(b);
    free(x);
    free(w);
}

/* ---- names and mix rules ---------------------------------------------------- */

Test(mix, type_names_parse_and_print) {
    const char *names[] = { "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M",
                            "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int32_t ft = -1;
        cr_assert_eq(slm_quantize_ftype_parse(names[i], &ft), 0, "%s", names[i]);
        cr_assert_str_eq(slm_quantize_ftype_name(ft), names[i]);
        cr_assert_geq(slm_mix_base_type(ft), 0, "%s has no base type", names[i]);
    }
    int32_t ft;
    cr_assert_eq(slm_quantize_ftype_parse("q4_k_m", &ft), 0);
    cr_assert_eq(ft, SLM_FTYPE_Q4_K_M);
    cr_assert_eq(slm_quantize_ftype_parse("Q4_K", &ft), 0);
    cr_assert_eq(ft, SLM_FTYPE_Q4_K_M, "Q4_K means Q4_K_M");
    cr_assert_eq(slm_quantize_ftype_parse("q5_k", &ft), 0);
    cr_assert_eq(ft, SLM_FTYPE_Q5_K_M);
    cr_assert_eq(slm_quantize_ftype_parse("Q3_K", &ft), 0);
    cr_assert_eq(ft, SLM_FTYPE_Q3_K_M);
    cr_assert_eq(slm_quantize_ftype_parse("Q7_K", &ft), SLM_EINVAL);
    cr_assert_eq(slm_quantize_ftype_parse("", &ft), SLM_EINVAL);
    cr_assert_null(slm_quantize_ftype_name(999));
}

static int32_t pick(int32_t ftype, const slm_mix_model *mm, const char *name, int64_t ne0) {
    return slm_mix_tensor_type(ftype, mm, name, ne0, NULL);
}

Test(mix, rules_of_the_named_mixes) {
    /* TinyLlama-1.1B's shape: 22 layers, 32 heads over 4 KV heads */
    slm_mix_model mm = { .n_layer = 22, .n_gqa = 8, .n_attn_v = 22 };
    /* use_more_bits(i, 22): i < 2, i >= 19, (i - 2) % 3 == 2 */
    const int more[] = { 0, 1, 4, 7, 10, 13, 16, 19, 20, 21 };
    char name[64];
    for (int i = 0; i < 22; i++) {
        bool mb = false;
        for (size_t k = 0; k < sizeof more / sizeof more[0]; k++) mb |= more[k] == i;
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", i);
        cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &mm, name, 2048), mb ? SLM_TYPE_Q6_K : SLM_TYPE_Q4_K, "%s", name);
        cr_assert_eq(pick(SLM_FTYPE_Q5_K_M, &mm, name, 2048), mb ? SLM_TYPE_Q6_K : SLM_TYPE_Q5_K, "%s", name);
        cr_assert_eq(pick(SLM_FTYPE_Q4_K_S, &mm, name, 2048), i < 4 ? SLM_TYPE_Q5_K : SLM_TYPE_Q4_K, "%s", name);
        cr_assert_eq(pick(SLM_FTYPE_Q3_K_M, &mm, name, 2048), i < 2 ? SLM_TYPE_Q5_K : SLM_TYPE_Q4_K, "%s", name);
        cr_assert_eq(pick(SLM_FTYPE_Q2_K, &mm, name, 2048), SLM_TYPE_Q4_K, "%s: GQA 8", name);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", i);
        cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &mm, name, 5632), mb ? SLM_TYPE_Q6_K : SLM_TYPE_Q4_K, "%s", name);
        cr_assert_eq(pick(SLM_FTYPE_Q3_K_M, &mm, name, 5632), i < 1 ? SLM_TYPE_Q5_K : SLM_TYPE_Q4_K, "%s", name);
        cr_assert_eq(pick(SLM_FTYPE_Q4_K_S, &mm, name, 5632), i < 2 ? SLM_TYPE_Q5_K : SLM_TYPE_Q4_K, "%s", name);
        cr_assert_eq(pick(SLM_FTYPE_Q2_K, &mm, name, 5632), SLM_TYPE_Q3_K, "%s", name);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", i);
        cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &mm, name, 2048), SLM_TYPE_Q4_K, "%s", name);
        cr_assert_eq(pick(SLM_FTYPE_Q3_K_S, &mm, name, 2048), SLM_TYPE_Q3_K, "%s", name);
        snprintf(name, sizeof name, "blk.%d.attn_output.weight", i);
        cr_assert_eq(pick(SLM_FTYPE_Q2_K, &mm, name, 2048), SLM_TYPE_Q3_K, "%s", name);
        cr_assert_eq(pick(SLM_FTYPE_Q3_K_L, &mm, name, 2048), SLM_TYPE_Q5_K, "%s", name);
    }
    /* output projection */
    const int32_t q_ftypes[] = { SLM_FTYPE_Q4_0, SLM_FTYPE_Q5_1, SLM_FTYPE_Q2_K, SLM_FTYPE_Q3_K_S, SLM_FTYPE_Q4_K_M, SLM_FTYPE_Q6_K };
    for (size_t i = 0; i < sizeof q_ftypes / sizeof q_ftypes[0]; i++)
        cr_assert_eq(pick(q_ftypes[i], &mm, "output.weight", 2048), SLM_TYPE_Q6_K, "%s", slm_quantize_ftype_name(q_ftypes[i]));
    cr_assert_eq(pick(SLM_FTYPE_Q8_0, &mm, "output.weight", 2048), SLM_TYPE_Q8_0);
    cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &mm, "token_embd.weight", 2048), SLM_TYPE_Q4_K, "untied embeddings keep the base");
    mm.tied_output = true;
    cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &mm, "token_embd.weight", 2048), SLM_TYPE_Q6_K, "tied: token_embd is the output");
    mm.tied_output = false;
    /* GQA below 4: Q2_K's attn_v is Q3_K */
    mm.n_gqa = 2;
    cr_assert_eq(pick(SLM_FTYPE_Q2_K, &mm, "blk.3.attn_v.weight", 2048), SLM_TYPE_Q3_K);
    /* imatrix: Q4_0's first eighth of ffn_down gets Q4_1 */
    cr_assert_eq(pick(SLM_FTYPE_Q4_0, &mm, "blk.1.ffn_down.weight", 5632), SLM_TYPE_Q4_0);
    mm.has_imatrix = true;
    cr_assert_eq(pick(SLM_FTYPE_Q4_0, &mm, "blk.1.ffn_down.weight", 5632), SLM_TYPE_Q4_1);
    cr_assert_eq(pick(SLM_FTYPE_Q5_0, &mm, "blk.2.ffn_down.weight", 5632), SLM_TYPE_Q5_0, "2 >= 22/8");
    /* a 70B llama: Q3_K/Q4_K attn_v go to Q5_K */
    slm_mix_model big = { .n_layer = 80, .n_gqa = 8, .n_attn_v = 80, .is_70b = true };
    cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &big, "blk.11.attn_v.weight", 8192), SLM_TYPE_Q5_K);
    cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &big, "blk.12.attn_v.weight", 8192), SLM_TYPE_Q6_K, "more bits wins");
    /* float mixes convert every quantizable tensor to their type */
    cr_assert_eq(pick(SLM_FTYPE_F16, &mm, "output.weight", 2048), SLM_TYPE_F16);
    cr_assert_eq(pick(SLM_FTYPE_BF16, &mm, "blk.0.attn_v.weight", 100), SLM_TYPE_BF16);
}

Test(mix, rows_that_fit_no_block_fall_back) {
    slm_mix_model mm = { .n_layer = 4, .n_gqa = 1, .n_attn_v = 4 };
    const char *why = NULL;
    cr_assert_eq(slm_mix_tensor_type(SLM_FTYPE_Q4_K_M, &mm, "blk.1.ffn_up.weight", 96, &why), SLM_TYPE_Q5_0);
    cr_assert_not_null(why);
    cr_assert_eq(pick(SLM_FTYPE_Q3_K_S, &mm, "blk.1.ffn_up.weight", 96), SLM_TYPE_Q4_0);
    cr_assert_eq(pick(SLM_FTYPE_Q2_K, &mm, "blk.1.ffn_up.weight", 96), SLM_TYPE_Q4_0);
    cr_assert_eq(pick(SLM_FTYPE_Q5_K_S, &mm, "blk.1.ffn_up.weight", 96), SLM_TYPE_Q5_1);
    cr_assert_eq(pick(SLM_FTYPE_Q6_K, &mm, "blk.1.ffn_up.weight", 96), SLM_TYPE_Q8_0);
    cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &mm, "output.weight", 96), SLM_TYPE_Q8_0, "output rows of 96: Q8_0");
    cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &mm, "blk.1.ffn_up.weight", 100), SLM_TYPE_F16, "100 fits no block");
    cr_assert_eq(pick(SLM_FTYPE_Q4_0, &mm, "blk.1.ffn_up.weight", 100), SLM_TYPE_F16);
    cr_assert_eq(pick(SLM_FTYPE_Q4_K_M, &mm, "output.weight", 100), SLM_TYPE_F16);
    cr_assert(slm_mix_quantizable("blk.0.attn_q.weight", 2));
    cr_assert(!slm_mix_quantizable("blk.0.attn_norm.weight", 1));
    cr_assert(!slm_mix_quantizable("blk.0.attn_q_norm.weight", 2), "norms stay");
    cr_assert(!slm_mix_quantizable("blk.0.attn_q.bias", 2));
    cr_assert(!slm_mix_quantizable("rope_freqs.weight", 1));
}

/* ---- files ------------------------------------------------------------------ */

static void check_ok(int rc, const slm_err *err, const char *what) {
    cr_assert_eq(rc, 0, "%s: %s", what, err->msg);
}

static int32_t tensor_type(const slm_gguf *g, const char *name) {
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, name);
    cr_assert_not_null(t, "tensor %s missing", name);
    return t->type;
}

static slm_gguf *open_gguf(const char *path) {
    slm_gguf *g = NULL;
    slm_err err = { 0 };
    check_ok(slm_gguf_open(path, &g, &err), &err, path);
    return g;
}

/* logits of a fixed token sequence (n x n_vocab, caller frees) */
static float *logits_of(const char *path, const int32_t *toks, int32_t n, int32_t *n_vocab) {
    slm_model *m = NULL;
    slm_err err = { 0 };
    check_ok(slm_model_load(path, NULL, &m, &err), &err, path);
    slm_model_info in;
    slm_model_get_info(m, &in);
    *n_vocab = in.n_vocab;
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_ctx = n;
    cp.n_threads = 1;
    slm_ctx *c = NULL;
    check_ok(slm_ctx_new(m, &cp, &c, &err), &err, "ctx");
    float *l = malloc(sizeof(float) * (size_t)n * (size_t)in.n_vocab);
    check_ok(slm_decode(c, 0, toks, n, 0, true, l, &err), &err, path);
    slm_ctx_free(c);
    slm_model_free(m);
    return l;
}

static double rel_rms(const float *a, const float *b, size_t n) {
    double se = 0, sa = 0;
    for (size_t i = 0; i < n; i++) {
        se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        sa += (double)a[i] * a[i];
    }
    return sqrt(se / sa);
}

static const struct { const char *name; double bound; } ROUNDTRIP[] = {
    /* relative RMS difference of the logits from the F32 model's on a
     * random-weight synth (random weights are the worst case: no
     * structure for the scales to exploit); bounds ~2x what is measured */
    { "F32", 1e-6 },    { "F16", 2e-3 },    { "BF16", 1.5e-2 }, { "Q8_0", 2e-2 },   { "Q6_K", 4e-2 },
    { "Q5_1", 8e-2 },   { "Q5_0", 8e-2 },   { "Q5_K_S", 8e-2 }, { "Q5_K_M", 8e-2 }, { "Q4_1", 0.16 },
    { "Q4_0", 0.16 },   { "Q4_K_S", 0.16 }, { "Q4_K_M", 0.16 }, { "Q3_K_L", 0.3 },  { "Q3_K_M", 0.3 },
    { "Q3_K_S", 0.35 }, { "Q2_K", 0.6 },
};

Test(quantize, every_type_and_mix_loads_and_runs) {
    const char *in = th_synth("llama", "f32", SYN);
    cr_assert_not_null(in);
    const int32_t toks[] = { 1, 17, 42, 99, 7, 250, 3, 64, 128, 5, 33, 200 };
    int32_t n = sizeof toks / sizeof toks[0], nv;
    float *base = logits_of(in, toks, n, &nv);
    for (size_t i = 0; i < sizeof ROUNDTRIP / sizeof ROUNDTRIP[0]; i++) {
        slm_quantize_params p = slm_quantize_default_params();
        cr_assert_eq(slm_quantize_ftype_parse(ROUNDTRIP[i].name, &p.ftype), 0);
        p.n_threads = 2;
        const char *out = th_tmp("q.gguf");
        slm_quantize_stats st;
        slm_err err = { 0 };
        check_ok(slm_quantize_file(in, out, &p, &st, &err), &err, ROUNDTRIP[i].name);
        cr_assert_eq(st.n_tensors, 39);
        cr_assert(st.bytes_out > 0 && st.n_elements > 0);
        slm_gguf *g = open_gguf(out);
        uint32_t ft = 0, qv = 0;
        cr_assert_eq(slm_gguf_get_u32(g, "general.file_type", &ft, NULL), 0);
        cr_assert_eq((int32_t)ft, p.ftype, "%s: general.file_type %u", ROUNDTRIP[i].name, ft);
        cr_assert_eq(slm_gguf_get_u32(g, "general.quantization_version", &qv, NULL), 0);
        cr_assert_eq(tensor_type(g, "blk.0.attn_norm.weight"), SLM_TYPE_F32, "norms stay F32");
        cr_assert_eq(slm_gguf_file_size(g) % 32, 0, "data padded to the alignment");
        slm_gguf_close(g);
        float *l = logits_of(out, toks, n, &nv);
        double rel = rel_rms(base, l, (size_t)n * (size_t)nv);
        cr_log_info("%-6s %.2f bits per weight, logits relative RMS difference %.4f", ROUNDTRIP[i].name,
                    8.0 * (double)st.bytes_out / (double)st.n_elements, rel);
        cr_expect(rel < ROUNDTRIP[i].bound, "%s: logits differ by %.4f (bound %.4f)", ROUNDTRIP[i].name, rel,
                  ROUNDTRIP[i].bound);
        free(l);
    }
    free(base);
}

Test(quantize, mixes_pick_llama_cpp_tensor_types) {
    const char *in = th_synth("llama", "f16", SYN);
    const char *out = th_tmp("mix.gguf");
    char *o = NULL;
    /* 4 layers: use_more_bits(i, 4) holds for layers 2 and 3 */
    cr_assert_eq(run(&o, "quantize %s %s Q4_K_M 2>&1", in, out), 0, "%s", o);
    free(o);
    slm_gguf *g = open_gguf(out);
    cr_assert_eq(tensor_type(g, "output.weight"), SLM_TYPE_Q6_K);
    cr_assert_eq(tensor_type(g, "token_embd.weight"), SLM_TYPE_Q4_K);
    cr_assert_eq(tensor_type(g, "blk.0.attn_v.weight"), SLM_TYPE_Q4_K);
    cr_assert_eq(tensor_type(g, "blk.2.attn_v.weight"), SLM_TYPE_Q6_K);
    cr_assert_eq(tensor_type(g, "blk.3.ffn_down.weight"), SLM_TYPE_Q6_K);
    cr_assert_eq(tensor_type(g, "blk.1.ffn_down.weight"), SLM_TYPE_Q4_K);
    cr_assert_eq(tensor_type(g, "blk.1.attn_q.weight"), SLM_TYPE_Q4_K);
    cr_assert_eq(tensor_type(g, "output_norm.weight"), SLM_TYPE_F32);
    slm_gguf_close(g);
    cr_assert_eq(run(&o, "quantize %s %s Q2_K 2>&1", in, out), 0, "%s", o);
    free(o);
    g = open_gguf(out);
    cr_assert_eq(tensor_type(g, "blk.0.attn_v.weight"), SLM_TYPE_Q3_K, "GQA 2: Q3_K");
    cr_assert_eq(tensor_type(g, "blk.0.ffn_down.weight"), SLM_TYPE_Q3_K);
    cr_assert_eq(tensor_type(g, "blk.0.attn_output.weight"), SLM_TYPE_Q3_K);
    cr_assert_eq(tensor_type(g, "blk.0.attn_k.weight"), SLM_TYPE_Q2_K);
    cr_assert_eq(tensor_type(g, "output.weight"), SLM_TYPE_Q6_K);
    slm_gguf_close(g);
    cr_assert_eq(run(&o, "quantize %s %s Q3_K_M 2>&1", in, out), 0, "%s", o);
    free(o);
    g = open_gguf(out);
    cr_assert_eq(tensor_type(g, "blk.1.attn_v.weight"), SLM_TYPE_Q5_K);
    cr_assert_eq(tensor_type(g, "blk.2.attn_v.weight"), SLM_TYPE_Q4_K);
    cr_assert_eq(tensor_type(g, "blk.2.attn_output.weight"), SLM_TYPE_Q4_K);
    cr_assert_eq(tensor_type(g, "blk.2.ffn_up.weight"), SLM_TYPE_Q3_K);
    slm_gguf_close(g);
    /* rows of 96: Q4_K falls back to Q5_0, Q6_K to Q8_0 */
    const char *odd = th_synth("llama", "f32", SYN_ODD);
    cr_assert_eq(run(&o, "quantize %s %s q4_k 2>&1", odd, out), 0, "%s", o);
    free(o);
    g = open_gguf(out);
    cr_assert_eq(tensor_type(g, "blk.0.ffn_down.weight"), SLM_TYPE_Q5_0, "Q4_K -> Q5_0");
    cr_assert_eq(tensor_type(g, "blk.1.ffn_down.weight"), SLM_TYPE_Q8_0, "more bits (Q6_K) -> Q8_0");
    cr_assert_eq(tensor_type(g, "blk.0.ffn_up.weight"), SLM_TYPE_Q4_K, "ffn_up rows are 256");
    slm_gguf_close(g);
}

/* When llama.cpp's llama-quantize is around ($LLAMA_QUANTIZE or
 * ../llama/build/bin/llama-quantize), the two must pick the same type for
 * every tensor of every mix. */
Test(quantize, same_tensor_types_as_llama_quantize) {
    const char *lq = getenv("LLAMA_QUANTIZE");
    if (!lq) lq = "../llama/build/bin/llama-quantize";
    if (!exists(lq)) {
        cr_skip_test("llama-quantize not found (set LLAMA_QUANTIZE): skipped");
        return;
    }
    const char *specs[] = { "--arch llama " SYN, "--arch llama " SYN_ODD " --tied",
                            "--arch phi3 --dim 256 --layers 8 --heads 4 --kv-heads 4 --ff 512 --vocab-size 300" };
    const char *mixes[] = { "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S",
                            "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K" };
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        const char *in = th_tmp("lq-in.gguf"), *a = th_tmp("lq-a.gguf"), *b = th_tmp("lq-b.gguf");
        char *o = NULL;
        cr_assert_eq(run(&o, "synth %s --type f16 -o %s 2>&1", specs[s], in), 0, "%s", o);
        free(o);
        for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; m++) {
            cr_assert_eq(run(&o, "quantize %s %s %s 2>&1", in, a, mixes[m]), 0, "%s", o);
            free(o);
            char cmd[4096];
            snprintf(cmd, sizeof cmd, "%s %s %s %s 1 2>&1", lq, in, b, mixes[m]);
            cr_assert_eq(th_run(cmd, &o), 0, "%s", o);
            free(o);
            slm_gguf *ga = open_gguf(a), *gb = open_gguf(b);
            cr_assert_eq(slm_gguf_n_tensors(ga), slm_gguf_n_tensors(gb));
            for (int64_t i = 0; i < slm_gguf_n_tensors(ga); i++) {
                const slm_gguf_tensor *t = slm_gguf_tensor_at(ga, i);
                char name[128];
                snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
                cr_expect_eq(t->type, tensor_type(gb, name), "%s %s: slm %s, llama.cpp %s", specs[s], name,
                             slm_type_name(t->type), slm_type_name(tensor_type(gb, name)));
            }
            slm_gguf_close(ga);
            slm_gguf_close(gb);
        }
    }
}

Test(quantize, metadata_is_carried_over) {
    const char *in = th_synth("qwen2", "f16", SYN);
    const char *out = th_tmp("meta.gguf");
    char *o = NULL;
    cr_assert_eq(run(&o, "quantize %s %s Q8_0 2>&1", in, out), 0, "%s", o);
    free(o);
    slm_gguf *gi = open_gguf(in), *go = open_gguf(out);
    for (int64_t i = 0; i < slm_gguf_n_kv(gi); i++) {
        slm_gguf_str k = slm_gguf_key(gi, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)k.len, k.ptr);
        int64_t j = slm_gguf_find_key(go, key);
        cr_assert_geq(j, 0, "key %s lost", key);
        cr_assert_eq(slm_gguf_kv_type(gi, i), slm_gguf_kv_type(go, j), "key %s changed type", key);
        if (slm_gguf_kv_type(gi, i) == SLM_GGUF_ARR)
            cr_assert_eq(slm_gguf_kv_arr_n(gi, i), slm_gguf_kv_arr_n(go, j), "array %s changed length", key);
        else if (slm_gguf_kv_type(gi, i) == SLM_GGUF_STR) {
            slm_gguf_str a = slm_gguf_kv_str(gi, i), b = slm_gguf_kv_str(go, j);
            cr_assert(a.len == b.len && !memcmp(a.ptr, b.ptr, a.len), "string %s changed", key);
        } else if (strcmp(key, "general.file_type") != 0)
            cr_assert_eq(slm_gguf_kv_number(gi, i), slm_gguf_kv_number(go, j), "value of %s changed", key);
    }
    uint32_t ft;
    cr_assert_eq(slm_gguf_get_u32(go, "general.file_type", &ft, NULL), 0);
    cr_assert_eq(ft, SLM_FTYPE_Q8_0);
    cr_assert_lt(slm_gguf_find_key(go, "quantize.imatrix.file"), 0, "no imatrix keys without an imatrix");
    slm_gguf_close(gi);
    slm_gguf_close(go);
    /* the tokenizer still works: same ids from both */
    cr_assert_eq(run(&o, "tokenize -m %s 'Hello world' 2>&1", in), 0);
    char *o2 = NULL;
    cr_assert_eq(run(&o2, "tokenize -m %s 'Hello world' 2>&1", out), 0);
    cr_assert_str_eq(o, o2);
    free(o);
    free(o2);
}

Test(quantize, cli_prints_a_summary_and_verbose_lines) {
    const char *in = th_synth("llama", "f32", SYN);
    const char *out = th_tmp("cli.gguf");
    char *o = NULL;
    cr_assert_eq(run(&o, "quantize %s %s q5_k_s 2>/dev/null", in, out), 0);
    cr_assert_str_eq(o, "", "nothing on stdout");
    free(o);
    cr_assert_eq(run(&o, "quantize %s %s Q5_K_S -t 1 2>&1 >/dev/null", in, out), 0);
    cr_assert(strstr(o, "Q5_K_S") && strstr(o, "bits per weight") && strstr(o, "MiB/s"), "%s", o);
    int lines = 0;
    for (char *c = o; *c; c++) lines += *c == '\n';
    cr_assert_eq(lines, 1, "one summary line without -v: %s", o);
    free(o);
    cr_assert_eq(run(&o, "quantize -v %s %s Q5_K_S 2>&1", in, out), 0);
    cr_assert(strstr(o, "blk.3.ffn_down.weight") && strstr(o, "f32 -> q6_K"), "%s", o);
    free(o);
}

/* ---- errors ----------------------------------------------------------------- */

/* No file in the temp dir whose name has ".tmp" in it. */
static void assert_no_tmp_left(void) {
    DIR *d = opendir(th_tmpdir());
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        cr_assert_null(strstr(e->d_name, ".tmp"), "temporary file left: %s", e->d_name);
    closedir(d);
}

static void expect_one_line_error(const char *cmd_fmt, const char *in, const char *out, const char *extra,
                                  const char *needle) {
    char *o = NULL;
    char args[4096];
    snprintf(args, sizeof args, cmd_fmt, in, out, extra);
    int rc = run(&o, "%s 2>&1", args);
    cr_assert_eq(rc, 1, "`%s` exited %d: %s", args, rc, o);
    int lines = 0;
    for (char *c = o; *c; c++) lines += *c == '\n';
    cr_assert_eq(lines, 1, "`%s`: not one line: %s", args, o);
    cr_assert(!strncmp(o, "slm: error: ", 12), "%s", o);
    cr_assert(strstr(o, needle), "`%s`: '%s' not in: %s", args, needle, o);
    free(o);
    if (out) cr_assert(!exists(out), "`%s` left %s", args, out);
    assert_no_tmp_left();
}

Test(quantize, errors_are_one_line_and_leave_no_file) {
    const char *in = th_synth("llama", "f32", SYN);
    const char *out = th_tmp("never.gguf");
    expect_one_line_error("quantize %s %s %s", in, out, "Q9_K", "unknown type 'Q9_K'");
    expect_one_line_error("quantize %s %s %s", th_tmp("missing.gguf"), out, "Q4_0", "missing.gguf");
    expect_one_line_error("quantize %s %s %s", in, "/nonexistent-dir/x.gguf", "Q4_0", "cannot create '/nonexistent-dir/x.gguf'");
    /* a text file is not a GGUF */
    const char *txt = th_tmp("notes.txt");
    cr_assert_eq(th_write_file(txt, "hello\n", 6), 0);
    expect_one_line_error("quantize %s %s %s", txt, out, "Q4_0", "notes.txt");
    /* already quantized: refused without --allow-requantize */
    const char *q8 = th_synth("llama", "q8_0", SYN);
    expect_one_line_error("quantize %s %s %s", q8, out, "Q4_K_M", "--allow-requantize");
    char *o = NULL;
    cr_assert_eq(run(&o, "quantize --allow-requantize %s %s Q4_K_M 2>&1", q8, out), 0, "%s", o);
    free(o);
    cr_assert(exists(out));
    unlink(out);
    /* usage errors exit 2 */
    cr_assert_eq(run(&o, "quantize %s 2>&1", in), 2);
    free(o);
    cr_assert_eq(run(&o, "quantize %s %s Q4_0 --bogus 2>&1", in, out), 2);
    free(o);
}

/* Writes an imatrix file with one entry of n values (and optionally a
 * broken counts tensor). */
static void write_imatrix(const char *path, const char *entry, int64_t n, bool counts) {
    slm_gguf_writer *w = slm_gguf_writer_new();
    float *s = malloc((size_t)n * sizeof(float)), c = 10;
    for (int64_t i = 0; i < n; i++) s[i] = 1.0f + (float)i;
    char name[256];
    slm_gguf_set_str(w, "general.type", "imatrix");
    snprintf(name, sizeof name, "%s.in_sum2", entry);
    slm_gguf_add_tensor(w, name, SLM_TYPE_F32, 1, &n, s, (uint64_t)n * 4);
    int64_t one = 1;
    snprintf(name, sizeof name, "%s.counts", entry);
    if (counts) slm_gguf_add_tensor(w, name, SLM_TYPE_F32, 1, &one, &c, 4);
    slm_err err = { 0 };
    check_ok(slm_gguf_writer_write(w, path, &err), &err, path);
    slm_gguf_writer_free(w);
    free(s);
}

Test(quantize, malformed_imatrix_is_refused) {
    const char *in = th_synth("llama", "f32", SYN);
    const char *out = th_tmp("never.gguf"), *im = th_tmp("bad-imatrix.gguf");
    char extra[600];
    snprintf(extra, sizeof extra, "Q4_K_M --imatrix %s", im);
    write_imatrix(im, "blk.0.attn_q.weight", 100, true); /* rows are 256 */
    expect_one_line_error("quantize %s %s %s", in, out, extra, "blk.0.attn_q.weight");
    write_imatrix(im, "blk.0.attn_q.weight", 256, false);
    expect_one_line_error("quantize %s %s %s", in, out, extra, "no counts");
    expect_one_line_error("quantize %s %s %s", in, out, "Q4_0 --imatrix /nonexistent/imatrix.gguf", "imatrix");
    /* a model is not an imatrix */
    snprintf(extra, sizeof extra, "Q4_K_M --imatrix %s", in);
    expect_one_line_error("quantize %s %s %s", in, out, extra, "imatrix");
}

Test(quantize, out_of_memory_is_an_error_not_a_crash) {
    const char *in = th_synth("llama", "f32", "--dim 64 --layers 1 --heads 2 --kv-heads 1 --ff 64 --vocab-size 260");
    const char *out = th_tmp("oom.gguf");
    slm_quantize_params p = slm_quantize_default_params();
    p.ftype = SLM_FTYPE_Q4_0;
    p.n_threads = 1;
    int failures = 0;
    for (long n = 1; n < 400; n++) {
        slm_err err = { 0 };
        slm_alloc_fail_after(n);
        int rc = slm_quantize_file(in, out, &p, NULL, &err);
        slm_alloc_fail_after(0);
        if (rc == 0) break;
        failures++;
        cr_assert_neq(err.msg[0], 0, "failure %ld has no message", n);
        cr_assert(!exists(out), "failure %ld left OUT", n);
        assert_no_tmp_left();
    }
    cr_assert_gt(failures, 0);
    cr_assert(exists(out), "never succeeded");
}

/* ---- imatrix ---------------------------------------------------------------- */

static const char STORY[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. "
    "One day, she saw a big red ball under a tree. She ran to the ball and picked it up. It was soft and round. "
    "Lily wanted to share the ball with her friend Tom. Tom was sad because he lost his toy car. Lily said, \"Tom, "
    "do you want to play with my ball?\" Tom smiled and said, \"Yes, thank you, Lily!\" They played all day.\n";

Test(imatrix, collects_writes_and_feeds_quantize) {
    const char *in = th_synth("llama", "f32", SYN);
    const char *txt = th_tmp("story.txt"), *im = th_tmp("im.gguf"), *out = th_tmp("imq.gguf");
    cr_assert_eq(th_write_file(txt, STORY, strlen(STORY)), 0);
    char *o = NULL;
    cr_assert_eq(run(&o, "imatrix -m %s -f %s -o %s --ctx 64 -t 2 2>&1", in, txt, im), 0, "%s", o);
    cr_assert(strstr(o, "29 entries"), "4 layers x 7 weights + output: %s", o);
    free(o);
    /* llama.cpp's layout */
    slm_gguf *g = open_gguf(im);
    slm_gguf_str ty;
    cr_assert_eq(slm_gguf_get_str(g, "general.type", &ty, NULL), 0);
    cr_assert(slm_gguf_str_eq(ty, "imatrix"));
    uint32_t chunks = 0, csize = 0;
    cr_assert_eq(slm_gguf_get_u32(g, "imatrix.chunk_count", &chunks, NULL), 0);
    cr_assert_eq(slm_gguf_get_u32(g, "imatrix.chunk_size", &csize, NULL), 0);
    cr_assert_eq(csize, 64);
    cr_assert_geq(chunks, 2);
    slm_gguf_vtype et;
    uint64_t nd;
    cr_assert_eq(slm_gguf_get_arr(g, "imatrix.datasets", &et, &nd, NULL), 0);
    cr_assert_eq(nd, 1);
    const slm_gguf_tensor *s = slm_gguf_find_tensor(g, "blk.0.ffn_down.weight.in_sum2");
    const slm_gguf_tensor *c = slm_gguf_find_tensor(g, "blk.0.ffn_down.weight.counts");
    cr_assert(s && c && s->type == SLM_TYPE_F32 && s->ne[0] == 256 && c->ne[0] == 1);
    float cnt, cnt_out;
    memcpy(&cnt, c->data, 4);
    const slm_gguf_tensor *co = slm_gguf_find_tensor(g, "output.weight.counts");
    cr_assert_not_null(co, "output.weight collected");
    memcpy(&cnt_out, co->data, 4);
    cr_assert_gt(cnt, 2 * 32, "every token of every chunk is counted");
    cr_assert_eq(cnt, cnt_out, "logits of every position are computed");
    cr_assert_null(slm_gguf_find_tensor(g, "token_embd.weight.in_sum2"), "embeddings are looked up, not multiplied");
    slm_gguf_close(g);
    /* the library reads it back */
    slm_imatrix *m = NULL;
    slm_err err = { 0 };
    check_ok(slm_imatrix_load(im, &m, &err), &err, im);
    cr_assert_eq(slm_imatrix_n_entries(m), 29);
    float v[256];
    cr_assert_eq(slm_imatrix_get(m, "blk.1.attn_k.weight", 256, v, &err), 0);
    for (int j = 0; j < 256; j++) cr_assert(v[j] > 0 && isfinite(v[j]));
    cr_assert_eq(slm_imatrix_get(m, "blk.1.attn_k.weight", 255, v, &err), SLM_EFORMAT);
    cr_assert_eq(slm_imatrix_get(m, "token_embd.weight", 256, v, &err), SLM_ENOTFOUND);
    slm_imatrix_free(m);
    /* quantize reads it, records it, and the result runs */
    cr_assert_eq(run(&o, "quantize --imatrix %s %s %s Q3_K_M 2>&1", im, in, out), 0, "%s", o);
    cr_assert(strstr(o, "imatrix"), "%s", o);
    free(o);
    g = open_gguf(out);
    slm_gguf_str f;
    cr_assert_eq(slm_gguf_get_str(g, "quantize.imatrix.file", &f, NULL), 0);
    uint32_t ne = 0, nc = 0;
    cr_assert_eq(slm_gguf_get_u32(g, "quantize.imatrix.entries_count", &ne, NULL), 0);
    cr_assert_eq(slm_gguf_get_u32(g, "quantize.imatrix.chunks_count", &nc, NULL), 0);
    cr_assert_eq(ne, 29);
    cr_assert_eq(nc, chunks);
    cr_assert_eq(slm_gguf_get_str(g, "quantize.imatrix.dataset", &f, NULL), 0);
    slm_gguf_close(g);
    cr_assert_eq(run(&o, "run -m %s -p 'Hello' -n 4 --seed 1 2>&1", out), 0, "%s", o);
    free(o);
}

Test(imatrix, errors) {
    const char *in = th_synth("llama", "f32", SYN);
    char *o = NULL;
    cr_assert_eq(run(&o, "imatrix -m %s -o %s 2>&1", in, th_tmp("x.gguf")), 2, "%s", o);
    free(o);
    cr_assert_eq(run(&o, "imatrix -m %s -f %s -o %s 2>&1", in, th_tmp("missing.txt"), th_tmp("x.gguf")), 1, "%s", o);
    cr_assert(strstr(o, "missing.txt"), "%s", o);
    free(o);
    cr_assert(!exists(th_tmp("x.gguf")));
}

/* Tokens sampled from the model itself (in-distribution text). */
static void sample_tokens(slm_model *m, uint64_t seed, int32_t n_seq, int32_t len, int32_t *out) {
    slm_model_info in;
    slm_model_get_info(m, &in);
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_ctx = len;
    cp.n_threads = 1;
    slm_ctx *c = NULL;
    slm_err err = { 0 };
    check_ok(slm_ctx_new(m, &cp, &c, &err), &err, "ctx");
    float *l = malloc(sizeof(float) * (size_t)in.n_vocab);
    for (int32_t s = 0; s < n_seq; s++) {
        slm_sample_params sp = slm_sample_default_params();
        sp.temp = 1.0f;
        sp.seed = seed + (uint64_t)s;
        slm_sampler *sm = NULL;
        cr_assert_eq(slm_sampler_new(&sp, in.n_vocab, &sm), 0);
        int32_t *t = out + (size_t)s * (size_t)len;
        t[0] = slm_vocab_bos(slm_model_vocab(m));
        slm_kv_truncate(c, 0, 0);
        for (int32_t i = 0; i + 1 < len; i++) {
            check_ok(slm_decode(c, 0, t + i, 1, i, false, l, &err), &err, "decode");
            t[i + 1] = slm_sampler_sample(sm, l);
        }
        slm_sampler_free(sm);
    }
    free(l);
    slm_ctx_free(c);
}

/* Mean squared logit error and mean KL(base || q) over n_seq sequences. */
static void logit_error(const char *base_path, const char *q_path, const int32_t *toks, int32_t n_seq, int32_t len,
                        double *mse, double *kl) {
    double se = 0, k = 0;
    int32_t nv = 1;
    for (int32_t s = 0; s < n_seq; s++) {
        float *a = logits_of(base_path, toks + (size_t)s * len, len, &nv);
        float *b = logits_of(q_path, toks + (size_t)s * len, len, &nv);
        for (int32_t i = 0; i < len; i++) {
            const float *pa = a + (size_t)i * nv, *pb = b + (size_t)i * nv;
            double ma = pa[0], mb = pb[0], za = 0, zb = 0;
            for (int32_t v = 0; v < nv; v++) {
                ma = fmax(ma, pa[v]);
                mb = fmax(mb, pb[v]);
                se += ((double)pa[v] - pb[v]) * ((double)pa[v] - pb[v]);
            }
            for (int32_t v = 0; v < nv; v++) {
                za += exp(pa[v] - ma);
                zb += exp(pb[v] - mb);
            }
            for (int32_t v = 0; v < nv; v++)
                k += exp(pa[v] - ma) / za * ((pa[v] - ma - log(za)) - (pb[v] - mb - log(zb)));
        }
        free(a);
        free(b);
    }
    *mse = se / ((double)n_seq * len * nv);
    *kl = k / ((double)n_seq * len);
}

Test(imatrix, lowers_the_output_error_of_stories260K, .timeout = 300) {
    SKIP_WITHOUT_FIXTURE(model, "models/stories260K.gguf");
    enum { N_SEQ = 4, LEN = 256 };
    static int32_t train[N_SEQ * LEN], eval[N_SEQ * LEN];
    slm_model *m = NULL;
    slm_err err = { 0 };
    check_ok(slm_model_load(model, NULL, &m, &err), &err, model);
    sample_tokens(m, 100, N_SEQ, LEN, train);
    sample_tokens(m, 200, N_SEQ, LEN, eval);
    /* the training text for `slm imatrix`: the sampled tokens as text */
    const char *txt = th_tmp("train.txt"), *im = th_tmp("im.gguf"), *q = th_tmp("q.gguf");
    FILE *f = fopen(txt, "wb");
    for (int i = 0; i < N_SEQ * LEN; i++) {
        char buf[64];
        int k = i % LEN == 0 ? 0 : slm_token_to_bytes(slm_model_vocab(m), train[i], buf, sizeof buf);
        if (k > 0) fwrite(buf, 1, (size_t)k, f);
        if (i % LEN == LEN - 1) fputc('\n', f);
    }
    fclose(f);
    slm_model_free(m);
    char *o = NULL;
    cr_assert_eq(run(&o, "imatrix -m %s -f %s -o %s --ctx 256 2>&1", model, txt, im), 0, "%s", o);
    free(o);
    /* stories260K's rows are 64 (and 172): the K mixes fall back to the
     * block-32 types, Q4_K_M mostly to Q5_0, Q3_K_M to Q4_0/Q5_0 */
    const char *mixes[] = { "Q4_0", "Q4_K_M", "Q3_K_M" };
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++) {
        double mse[2], kl[2];
        for (int w = 0; w < 2; w++) {
            if (w) cr_assert_eq(run(&o, "quantize --imatrix %s %s %s %s 2>&1", im, model, q, mixes[i]), 0, "%s", o);
            else cr_assert_eq(run(&o, "quantize %s %s %s 2>&1", model, q, mixes[i]), 0, "%s", o);
            free(o);
            logit_error(model, q, eval, N_SEQ, LEN, &mse[w], &kl[w]);
        }
        cr_log_info("%s: logit MSE %.4f -> %.4f with the imatrix, KL %.5f -> %.5f", mixes[i], mse[0], mse[1], kl[0], kl[1]);
        cr_expect(mse[1] < mse[0], "%s: the imatrix did not lower the logits' error (%.4f -> %.4f)", mixes[i], mse[0], mse[1]);
    }
}
