/*
 * test_packed.c — load-time weight layouts (kernels/packed.h): packing and
 * unpacking in place, the scalar reference product against the file
 * layout's reference dot product, the SIMD product against the scalar one
 * bit for bit on awkward shapes (one block, chunk edges, preparation-range
 * edges, many columns), a column's result independent of the other columns
 * in the call, the layout choice, the matrix product through ops.h, and a
 * model whose Q4_0 weights are packed at load against the same file read
 * through the mapping.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "kernels/ops.h"
#include "kernels/packed.h"
#include "kernels/types.h"
#include "model/model.h"
#include "slm/slm.h"
#include "util/fp16.h"
#include "util/pool.h"

static uint64_t rs;
static uint32_t rnd(void) {
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rs >> 33);
}
static float frnd(void) { return (float)rnd() / 2147483648.0f - 1.0f; }

/* A Q4_0 matrix of random nibbles and scales (n_rows x n cols). */
static uint8_t *rand_q4_0(int64_t n_rows, int64_t n, size_t *row_bytes) {
    *row_bytes = slm_row_size(SLM_TYPE_Q4_0, n);
    uint8_t *w = malloc(*row_bytes * (size_t)n_rows);
    cr_assert_not_null(w);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b = 0; b < n / 32; b++) {
            block_q4_0 *blk = (block_q4_0 *)(w + (size_t)r * *row_bytes) + b;
            blk->d = slm_f32_to_fp16(0.001f + 0.05f * (float)(rnd() % 1000) / 1000.0f * (rnd() & 1 ? 1 : -1));
            for (int i = 0; i < 16; i++) blk->qs[i] = (uint8_t)rnd();
        }
    return w;
}

/* A Q4_K matrix: random d, dmin, 6-bit scales and nibbles. */
static uint8_t *rand_q4_K(int64_t n_rows, int64_t n, size_t *row_bytes) {
    *row_bytes = slm_row_size(SLM_TYPE_Q4_K, n);
    uint8_t *w = malloc(*row_bytes * (size_t)n_rows);
    cr_assert_not_null(w);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b = 0; b < n / 256; b++) {
            block_q4_K *blk = (block_q4_K *)(w + (size_t)r * *row_bytes) + b;
            blk->d = slm_f32_to_fp16(0.0005f + 0.01f * (float)(rnd() % 1000) / 1000.0f);
            blk->dmin = slm_f32_to_fp16(0.0005f + 0.01f * (float)(rnd() % 1000) / 1000.0f);
            for (int i = 0; i < 12; i++) blk->scales[i] = (uint8_t)rnd();
            for (int i = 0; i < 128; i++) blk->qs[i] = (uint8_t)rnd();
        }
    return w;
}

static uint8_t *rand_w(slm_layout l, int64_t n_rows, int64_t n, size_t *row_bytes) {
    return l == SLM_LAYOUT_Q4_K_P16 ? rand_q4_K(n_rows, n, row_bytes) : rand_q4_0(n_rows, n, row_bytes);
}

static uint8_t *rand_act(int64_t n, int nc, size_t *by);

/* Q8_K activations (what the Q4_K layout multiplies), from random floats. */
static uint8_t *rand_act_k(int64_t n, int nc, size_t *by) {
    *by = slm_pack_act_size(SLM_LAYOUT_Q4_K_P16, n);
    cr_assert_eq(*by, slm_row_size(SLM_TYPE_Q8_K, n));
    uint8_t *y = malloc(*by * (size_t)nc);
    float *f = malloc(sizeof(float) * (size_t)n);
    for (int c = 0; c < nc; c++) {
        for (int64_t i = 0; i < n; i++) f[i] = frnd() * (i / 256 % 3 == 1 ? 100.0f : 1.0f);
        slm_pack_act(SLM_LAYOUT_Q4_K_P16, f, y + (size_t)c * *by, n);
    }
    free(f);
    return y;
}

static uint8_t *rand_y(slm_layout l, int64_t n, int nc, size_t *by) {
    return l == SLM_LAYOUT_Q4_K_P16 ? rand_act_k(n, nc, by) : rand_act(n, nc, by);
}

/* nc columns of activations in the packed layout's format, quantized from
 * random floats (some blocks all zero, some extreme). */
static uint8_t *rand_act(int64_t n, int nc, size_t *by) {
    *by = slm_pack_act_size(SLM_LAYOUT_Q4_0_P16, n);
    cr_assert_gt(*by, slm_row_size(SLM_TYPE_Q8_0, n), "the Q8_0 blocks and per block a correction and a scale");
    uint8_t *y = malloc(*by * (size_t)nc);
    float *f = malloc(sizeof(float) * (size_t)n);
    cr_assert(y && f);
    for (int c = 0; c < nc; c++) {
        for (int64_t i = 0; i < n; i++) f[i] = frnd() * (i / 32 % 7 == 3 ? 1000.0f : 1.0f);
        if (n >= 64)
            for (int i = 32; i < 64; i++) f[i] = 0.0f;
        slm_pack_act(SLM_LAYOUT_Q4_0_P16, f, y + (size_t)c * *by, n);
        /* the leading bytes are exactly the Q8_0 reference's */
        uint8_t *q = malloc(slm_row_size(SLM_TYPE_Q8_0, n));
        slm_type_traits_ref(SLM_TYPE_Q8_0)->from_float(f, q, n);
        cr_assert(memcmp(q, y + (size_t)c * *by, slm_row_size(SLM_TYPE_Q8_0, n)) == 0);
        free(q);
    }
    free(f);
    return y;
}

Test(packed, pack_unpack_round_trip_in_place) {
    rs = 1;
    static const int64_t shapes[][2] = { { 16, 32 }, { 32, 480 }, { 48, 2048 }, { 16, 4128 } };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        size_t rb;
        uint8_t *w = rand_q4_0(shapes[k][0], shapes[k][1], &rb);
        size_t bytes = rb * (size_t)shapes[k][0];
        uint8_t *orig = malloc(bytes);
        memcpy(orig, w, bytes);
        cr_assert_eq(slm_pack(SLM_LAYOUT_Q4_0_P16, w, rb, shapes[k][0]), 0);
        cr_assert(memcmp(orig, w, bytes) != 0, "packing changed nothing");
        /* the first panel block: 16 scales, then row r's nibble bytes 4k.. in lane r of vector k */
        for (int r = 0; r < 16; r++) {
            const block_q4_0 *b0 = (const block_q4_0 *)(orig + (size_t)r * rb);
            cr_assert(memcmp(w + 2 * r, &b0->d, 2) == 0, "scale of row %d", r);
            for (int k2 = 0; k2 < 4; k2++) cr_assert(memcmp(w + 32 + 64 * k2 + 4 * r, b0->qs + 4 * k2, 4) == 0);
        }
        /* any row read back from the panels equals the file row's dequantization */
        float *a = malloc(sizeof(float) * (size_t)shapes[k][1]), *b = malloc(sizeof(float) * (size_t)shapes[k][1]);
        for (int64_t r = 0; r < shapes[k][0]; r += 7) {
            slm_type_traits_ref(SLM_TYPE_Q4_0)->to_float(orig + (size_t)r * rb, a, shapes[k][1]);
            slm_pack_row_to_float(SLM_LAYOUT_Q4_0_P16, w, rb, r, b, shapes[k][1]);
            cr_assert(memcmp(a, b, sizeof(float) * (size_t)shapes[k][1]) == 0, "row %lld read from the panels", (long long)r);
        }
        free(a);
        free(b);
        cr_assert_eq(slm_unpack(SLM_LAYOUT_Q4_0_P16, w, rb, shapes[k][0]), 0);
        cr_assert(memcmp(orig, w, bytes) == 0, "shape %lld x %lld: unpack(pack(w)) != w", (long long)shapes[k][0],
                  (long long)shapes[k][1]);
        free(orig);
        free(w);
    }
    uint8_t junk[18 * 17];
    cr_assert_eq(slm_pack(SLM_LAYOUT_Q4_0_P16, junk, 18, 17), -1, "17 rows are not whole panels");
    cr_assert_eq(slm_pack(SLM_LAYOUT_ROWS, junk, 18, 16), -1, "the file layout is not a packed layout");
}

/* The packed reference against the file layout's reference dot product:
 * the same integer sums, only the float summation order differs. */
Test(packed, reference_matches_rows_reference) {
    rs = 2;
    const int64_t n = 1056, nr = 32;
    const int nc = 3;
    size_t rb, by;
    uint8_t *w = rand_q4_0(nr, n, &rb), *y = rand_act(n, nc, &by);
    const slm_type_traits *tr = slm_type_traits_ref(SLM_TYPE_Q4_0);
    float want[32 * 3], got[32 * 3];
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) tr->vec_dot(n, &want[c * nr + r], w + (size_t)r * rb, y + (size_t)c * by);
    cr_assert_eq(slm_pack(SLM_LAYOUT_Q4_0_P16, w, rb, nr), 0);
    slm_vec_dot_tile_fn ref = slm_pack_tile(SLM_LAYOUT_Q4_0_P16, "scalar");
    cr_assert_not_null(ref);
    ref(n, got, nr, w, rb, y, by, (int)nr, nc);
    for (int i = 0; i < nr * nc; i++)
        cr_assert(fabsf(got[i] - want[i]) <= 1e-4f * (1.0f + fabsf(want[i])), "entry %d: %g vs %g", i, got[i], want[i]);
    free(w);
    free(y);
}

static void check_simd_exact_l(slm_layout l, const char *isa, int64_t n, int nr, int nc) {
    slm_vec_dot_tile_fn fast = slm_pack_tile(l, isa), ref = slm_pack_tile(l, "scalar");
    size_t rb, by;
    uint8_t *w = rand_w(l, nr, n, &rb), *y = rand_y(l, n, nc, &by);
    cr_assert_eq(slm_pack(l, w, rb, nr), 0);
    const size_t bs = (size_t)nr + 5;   /* an output stride wider than the rows */
    float *a = calloc(bs * (size_t)nc, sizeof(float)), *b = calloc(bs * (size_t)nc, sizeof(float));
    ref(n, a, bs, w, rb, y, by, nr, nc);
    fast(n, b, bs, w, rb, y, by, nr, nc);
    for (int c = 0; c < nc; c++)
        cr_assert(memcmp(a + (size_t)c * bs, b + (size_t)c * bs, sizeof(float) * (size_t)nr) == 0,
                  "%s n=%lld rows=%d cols=%d: column %d differs from the reference", isa, (long long)n, nr, nc, c);
    /* each column alone gives the same bits as in the batch */
    for (int c = 0; c < nc; c += nc > 9 ? 7 : 1) {
        float *one = calloc((size_t)nr, sizeof(float));
        fast(n, one, 0, w, rb, y + (size_t)c * by, by, nr, 1);
        cr_assert(memcmp(one, b + (size_t)c * bs, sizeof(float) * (size_t)nr) == 0,
                  "%s n=%lld: column %d alone differs from it among %d columns", isa, (long long)n, c, nc);
        free(one);
    }
    free(a);
    free(b);
    free(w);
    free(y);
}

static void check_simd_exact(const char *isa, int64_t n, int nr, int nc) {
    check_simd_exact_l(SLM_LAYOUT_Q4_0_P16, isa, n, nr, nc);
}

Test(packed, simd_equals_reference_bit_for_bit) {
    if (!slm_pack_tile(SLM_LAYOUT_Q4_0_P16, "avx512")) {
        cr_skip_test("no AVX-512 VNNI on this CPU: only the reference runs here");
        return;
    }
    rs = 3;
    /* blocks: 1, 15, 16, 17 (chunk edges), 33, 64, 65 (the prompt path's
     * preparation range), 129, 513 (the decode path's range) */
    static const int64_t ns[] = { 32, 480, 512, 544, 1056, 2048, 2080, 4128, 16416 };
    static const int cols[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17 };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (size_t j = 0; j < sizeof cols / sizeof cols[0]; j++)
            check_simd_exact("avx512", ns[i], ns[i] > 4200 ? 16 : 48, cols[j]);
    check_simd_exact("avx512", 2080, 32, 130);   /* more than one prompt column group */
}

/* Q4_K panels: one super-block, a few, TinyLlama's ffn width. */
Test(packed, q4_K_simd_equals_reference_bit_for_bit) {
    if (!slm_pack_tile(SLM_LAYOUT_Q4_K_P16, "avx512")) {
        cr_skip_test("no AVX-512 VNNI on this CPU: only the reference runs here");
        return;
    }
    rs = 5;
    static const int64_t ns[] = { 256, 768, 2048, 5632 };
    static const int cols[] = { 1, 2, 3, 4, 5, 8, 9, 17 };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (size_t j = 0; j < sizeof cols / sizeof cols[0]; j++)
            check_simd_exact_l(SLM_LAYOUT_Q4_K_P16, "avx512", ns[i], 32, cols[j]);
}

/* The Q4_K reference against the file layout's reference dot product, and
 * the panel layout byte by byte, and rows read back. */
Test(packed, q4_K_layout_and_reference) {
    rs = 6;
    const int64_t n = 768, nr = 32;
    const int nc = 3;
    size_t rb, by;
    uint8_t *w = rand_q4_K(nr, n, &rb), *y = rand_act_k(n, nc, &by);
    const size_t bytes = rb * (size_t)nr;
    uint8_t *orig = malloc(bytes);
    memcpy(orig, w, bytes);
    const slm_type_traits *tr = slm_type_traits_ref(SLM_TYPE_Q4_K);
    float want[32 * 3], got[32 * 3];
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) tr->vec_dot(n, &want[c * nr + r], w + (size_t)r * rb, y + (size_t)c * by);
    cr_assert_eq(slm_pack(SLM_LAYOUT_Q4_K_P16, w, rb, nr), 0);
    for (int r = 0; r < 16; r++) {   /* super-block 1 of panel 0 */
        const block_q4_K *ob = (const block_q4_K *)(orig + (size_t)r * rb) + 1;
        const uint8_t *pb = w + 16 * 144;
        cr_assert(memcmp(pb + 2 * r, &ob->d, 2) == 0 && memcmp(pb + 32 + 2 * r, &ob->dmin, 2) == 0);
        for (int k = 0; k < 3; k++) cr_assert(memcmp(pb + 64 + 64 * k + 4 * r, ob->scales + 4 * k, 4) == 0);
        for (int k = 0; k < 32; k++) cr_assert(memcmp(pb + 256 + 64 * k + 4 * r, ob->qs + 4 * k, 4) == 0);
    }
    float a[768], b[768];
    for (int r = 0; r < nr; r += 5) {
        tr->to_float(orig + (size_t)r * rb, a, n);
        slm_pack_row_to_float(SLM_LAYOUT_Q4_K_P16, w, rb, r, b, n);
        cr_assert(memcmp(a, b, sizeof a) == 0, "row %d read from the panels", r);
    }
    slm_pack_tile(SLM_LAYOUT_Q4_K_P16, "scalar")(n, got, nr, w, rb, y, by, (int)nr, nc);
    for (int i = 0; i < nr * nc; i++)
        cr_assert(fabsf(got[i] - want[i]) <= 1e-4f * (1.0f + fabsf(want[i])), "entry %d: %g vs %g", i, got[i], want[i]);
    cr_assert_eq(slm_unpack(SLM_LAYOUT_Q4_K_P16, w, rb, nr), 0);
    cr_assert(memcmp(orig, w, bytes) == 0, "unpack(pack(w)) != w");
    free(orig);
    free(w);
    free(y);
}

Test(packed, choice) {
    bool simd = slm_pack_tile(SLM_LAYOUT_Q4_0_P16, NULL) && strcmp(slm_kernels_isa(), "scalar");
    slm_layout want = simd ? SLM_LAYOUT_Q4_0_P16 : SLM_LAYOUT_ROWS;
    cr_assert_eq(slm_pack_choose(SLM_TYPE_Q4_0, 2048, 2048), want);
    cr_assert_eq(slm_pack_choose(SLM_TYPE_Q4_0, 2056, 2048), SLM_LAYOUT_ROWS, "rows not whole panels");
    cr_assert_eq(slm_pack_choose(SLM_TYPE_Q4_0, 2000, 2048), want);
    cr_assert_eq(slm_pack_choose(SLM_TYPE_Q8_0, 2048, 2048), SLM_LAYOUT_ROWS);
    cr_assert_eq(slm_pack_choose(SLM_TYPE_Q4_K, 2048, 2048), simd ? SLM_LAYOUT_Q4_K_P16 : SLM_LAYOUT_ROWS);
    cr_assert_eq(slm_pack_choose(SLM_TYPE_Q4_K, 2048, 2080), SLM_LAYOUT_ROWS, "rows not whole super-blocks");
    cr_assert_eq(slm_pack_choose(SLM_TYPE_Q4_0, 0, 2048), SLM_LAYOUT_ROWS);
    setenv("SLM_PACK", "0", 1);
    cr_assert_eq(slm_pack_choose(SLM_TYPE_Q4_0, 2048, 2048), SLM_LAYOUT_ROWS, "SLM_PACK=0 turns packing off");
    unsetenv("SLM_PACK");
}

/* ops.h: a packed op on a 2-thread pool equals the reference tile run
 * directly, and is close to the file layout's product. */
Test(packed, matmul_through_ops) {
    if (slm_pack_choose(SLM_TYPE_Q4_0, 64, 512) == SLM_LAYOUT_ROWS) {
        cr_skip_test("this CPU's kernels have no packed layout");
        return;
    }
    rs = 4;
    const int64_t n = 512, nr = 96;
    const int nt = 5;
    size_t rb, by;
    uint8_t *w = rand_q4_0(nr, n, &rb);
    float *x = malloc(sizeof(float) * (size_t)(n * nt)), *y0 = malloc(sizeof(float) * (size_t)(nr * nt)),
          *y1 = malloc(sizeof(float) * (size_t)(nr * nt)), *y2 = malloc(sizeof(float) * (size_t)(nr * nt));
    for (int64_t i = 0; i < n * nt; i++) x[i] = frnd();
    slm_pool *pool = slm_pool_new(2);
    cr_assert_not_null(pool);
    void *wbuf = malloc(SLM_MM_MAX_OPS * slm_matmul_wsize(SLM_TYPE_Q4_0, n, nt));
    cr_assert_geq(slm_matmul_wsize(SLM_TYPE_Q4_0, n, nt), slm_pack_act_size(SLM_LAYOUT_Q4_0_P16, n) * nt);
    slm_matmul(pool, SLM_TYPE_Q4_0, w, rb, nr, n, x, nt, y0, nr, wbuf);
    cr_assert_eq(slm_pack(SLM_LAYOUT_Q4_0_P16, w, rb, nr), 0);
    slm_mm_op op = { SLM_TYPE_Q4_0, w, rb, nr, y1, nr, SLM_LAYOUT_Q4_0_P16 };
    slm_matmul_multi(pool, &op, 1, n, x, nt, wbuf);
    by = slm_pack_act_size(SLM_LAYOUT_Q4_0_P16, n);   /* x as the kernels see it */
    uint8_t *yq = malloc(by * nt);
    for (int t = 0; t < nt; t++) slm_pack_act(SLM_LAYOUT_Q4_0_P16, x + t * n, yq + (size_t)t * by, n);
    slm_pack_tile(SLM_LAYOUT_Q4_0_P16, "scalar")(n, y2, nr, w, rb, yq, by, (int)nr, nt);
    cr_assert(memcmp(y1, y2, sizeof(float) * (size_t)(nr * nt)) == 0, "pool product differs from the reference");
    for (int64_t i = 0; i < nr * nt; i++)
        cr_assert(fabsf(y1[i] - y0[i]) <= 1e-4f * (1.0f + fabsf(y0[i])), "entry %lld: %g vs rows %g", (long long)i,
                  y1[i], y0[i]);
    slm_pool_free(pool);
    free(wbuf);
    free(yq);
    free(x);
    free(y0);
    free(y1);
    free(y2);
    free(w);
}

/* A Q4_0 model: packed at load (when the CPU has the kernels) and read
 * through the mapping in the file layout give the same logits up to float
 * summation order; SLM_PACK=0 keeps the file layout. */
static void check_model_packed_t(const char *type, slm_layout want_l, const char *extra) {
    char shape[256];
    snprintf(shape, sizeof shape, "--dim 256 --layers 2 --heads 4 --kv-heads 2 --ff 512 --vocab-size 304 %s", extra);
    const char *p = th_synth("llama", type, shape);
    cr_assert_not_null(p);
    slm_err err = { 0 };
    slm_model_params mp = slm_model_default_params();
    slm_model *mr = NULL, *mm = NULL;
    cr_assert_eq(slm_model_load(p, &mp, &mr, &err), 0, "%s", err.msg);
    mp.weights = SLM_WEIGHTS_MMAP;
    cr_assert_eq(slm_model_load(p, &mp, &mm, &err), 0, "%s", err.msg);
    bool simd = slm_pack_choose(mr->layers[0].wq.type, 256, 256) != SLM_LAYOUT_ROWS;
    cr_assert_eq(mr->layers[0].wq.layout, simd ? want_l : SLM_LAYOUT_ROWS);
    cr_assert_eq(mr->layers[1].w_down.layout, simd ? want_l : SLM_LAYOUT_ROWS);
    cr_assert_eq(mm->layers[0].wq.layout, SLM_LAYOUT_ROWS, "the mapping is never rewritten");
    cr_assert_eq(mr->output.layout, simd ? want_l : SLM_LAYOUT_ROWS);
    cr_assert_eq(mr->tied_output, strstr(extra, "--tied") != NULL);
    if (mr->tied_output)   /* the embeddings are read from the packed output copy */
        cr_assert(mr->tok_embd.data == mr->output.data && mr->tok_embd.layout == mr->output.layout);
    static const int32_t toks[] = { 1, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114 };
    const int32_t nt = (int32_t)(sizeof toks / sizeof toks[0]);
    slm_model_info in;
    slm_model_get_info(mr, &in);
    float *a = malloc(sizeof(float) * (size_t)in.n_vocab * nt), *b = malloc(sizeof(float) * (size_t)in.n_vocab * nt);
    slm_model *ms[2] = { mr, mm };
    float *outs[2] = { a, b };
    for (int k = 0; k < 2; k++) {
        slm_ctx_params cp = slm_ctx_default_params();
        cp.n_ctx = 64;
        cp.n_threads = 2;
        slm_ctx *c = NULL;
        cr_assert_eq(slm_ctx_new(ms[k], &cp, &c, &err), 0, "%s", err.msg);
        cr_assert_eq(slm_decode(c, 0, toks, nt, 0, true, outs[k], &err), 0, "%s", err.msg);
        slm_ctx_free(c);
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < (size_t)in.n_vocab * nt; i++) {
        num += (double)(a[i] - b[i]) * (a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    cr_assert(sqrt(num / den) < 1e-3, "packed vs file layout: relative RMS logit difference %g", sqrt(num / den));
    free(a);
    free(b);
    slm_model_free(mr);
    slm_model_free(mm);
}

static void check_model_packed(const char *extra) { check_model_packed_t("q4_0", SLM_LAYOUT_Q4_0_P16, extra); }

Test(packed, model_packed_at_load_matches_mapped) { check_model_packed(""); }
Test(packed, q4_K_model_packed_at_load_matches_mapped) { check_model_packed_t("q4_k", SLM_LAYOUT_Q4_K_P16, ""); }
Test(packed, tied_embeddings_packed_with_the_output) { check_model_packed("--tied"); }
