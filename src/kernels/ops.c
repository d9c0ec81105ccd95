/*
 * ops.c — scalar reference implementations of ops.h. Reductions accumulate
 * in double where it is cheap (norms, softmax sums) to stay close to exact
 * arithmetic. The matrix product converts the activations once per call
 * (the vec_dot_type's from_float, or a packed layout's slm_pack_act),
 * lets the threads take the rows in chunks, and hands each chunk with all
 * tokens to the type's (or the layout's) tile kernel (which reuses every
 * weight block for several tokens and every activation block for several
 * rows), or, for types
 * without one, calls vec_dot per row and token, rows in small groups.
 */
#include "kernels/ops.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "kernels/packed.h"
#include "kernels/types.h"

void slm_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    if (w)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
}

void slm_softmax(float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void slm_swiglu(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void slm_rope(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot, const float *cs, const float *sn, int neox) {
    int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int32_t i = 0; i < half; i++) {
            int32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

size_t slm_matmul_wsize(int32_t type, int64_t n_cols, int64_t n_tok) {
    const slm_type_traits *tr = slm_type_traits_get(type);
    if (!tr) return 0;
    if (tr->vec_dot_type == SLM_TYPE_F32) return 0;
    size_t row = slm_row_size(tr->vec_dot_type, n_cols);
    /* a packed layout's activations carry more per block */
    size_t packed = slm_pack_act_max(type, n_cols);
    return (packed > row ? packed : row) * (size_t)n_tok;
}

typedef struct mm_job {
    const slm_type_traits *tr;
    slm_vec_dot_tile_fn tile;        /* the type's, or the packed layout's   */
    const unsigned char *w;          /* weight rows, row_bytes apart         */
    size_t row_bytes, x_row_bytes;   /* x_row_bytes: one converted token     */
    int64_t n_rows, n_cols, n_tok, y_stride;
    const unsigned char *xq;         /* activations in the vec_dot_type      */
    float *y;
    long chunk;                      /* rows per chunk, a multiple of MM_ROW_UNIT */
    atomic_long next;                /* first row of the next chunk to take  */
} mm_job;

/* Threads take chunks of rows from a shared counter: each chunk is a
 * contiguous range (one weight stream), and a thread that a noisy machine
 * slows down takes fewer of them instead of holding the others at the
 * barrier. Chunks start at multiples of MM_ROW_UNIT rows (the tile kernels'
 * panel height and the packed layouts' panels), so every row is computed
 * the same way whichever thread takes it: results do not depend on the
 * number of threads or on timing. */
#define MM_ROW_UNIT 16
#define MM_CHUNKS_PER_THREAD 4
_Static_assert(MM_ROW_UNIT % SLM_PACK_ROWS == 0, "chunks start at panel boundaries");

static void mm_rows(const mm_job *j, long lo, long hi) {
    if (j->tile) {
        /* the kernel blocks rows and tokens itself */
        j->tile(j->n_cols, j->y + lo, (size_t)j->y_stride, j->w + (size_t)lo * j->row_bytes, j->row_bytes, j->xq,
                j->x_row_bytes, (int)(hi - lo), (int)j->n_tok);
        return;
    }
    /* rows in small groups, so that a group stays in cache for all tokens */
    for (long r0 = lo; r0 < hi; r0 += MM_ROW_UNIT) {
        long r1 = r0 + MM_ROW_UNIT < hi ? r0 + MM_ROW_UNIT : hi;
        for (int64_t b = 0; b < j->n_tok; b++)
            for (long r = r0; r < r1; r++)
                j->tr->vec_dot(j->n_cols, &j->y[b * j->y_stride + r], j->w + (size_t)r * j->row_bytes,
                               j->xq + (size_t)b * j->x_row_bytes);
    }
}

/* Every thread takes chunks until none is left (ith, nth: unused). */
static void mm_worker(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    mm_job *j = arg;
    for (;;) {
        long lo = atomic_fetch_add_explicit(&j->next, j->chunk, memory_order_relaxed);
        if (lo >= j->n_rows) return;
        long hi = lo + j->chunk < j->n_rows ? lo + j->chunk : (long)j->n_rows;
        mm_rows(j, lo, hi);
    }
}

static void mm_job_init(mm_job *j, const slm_type_traits *tr, slm_vec_dot_tile_fn tile, const void *w,
                        size_t row_bytes, int64_t n_rows, int64_t n_cols, int64_t n_tok, float *y, int64_t y_stride,
                        int nth) {
    *j = (mm_job){ .tr = tr, .tile = tile, .w = w, .row_bytes = row_bytes, .n_rows = n_rows, .n_cols = n_cols,
                   .n_tok = n_tok, .y_stride = y_stride, .y = y };
    long units = (long)((n_rows + MM_ROW_UNIT - 1) / MM_ROW_UNIT);
    long per = (units + (long)nth * MM_CHUNKS_PER_THREAD - 1) / ((long)nth * MM_CHUNKS_PER_THREAD);
    j->chunk = (per > 0 ? per : 1) * MM_ROW_UNIT;
    atomic_init(&j->next, 0);
}

void slm_matmul(slm_pool *pool, int32_t type, const void *w, size_t row_bytes, int64_t n_rows, int64_t n_cols,
                const float *x, int64_t n_tok, float *y, int64_t y_stride, void *wbuf) {
    slm_mm_op op = { type, w, row_bytes, n_rows, y, y_stride, SLM_LAYOUT_ROWS };
    slm_matmul_multi(pool, &op, 1, n_cols, x, n_tok, wbuf);
}

typedef struct mm_multi {
    mm_job job[SLM_MM_MAX_OPS];
    int n;
} mm_multi;

static void mm_multi_worker(void *arg, int ith, int nth) {
    mm_multi *m = arg;
    for (int k = 0; k < m->n; k++) mm_worker(&m->job[k], ith, nth);
}

void slm_matmul_multi(slm_pool *pool, const slm_mm_op *ops, int n_ops, int64_t n_cols, const float *x, int64_t n_tok,
                      void *wbuf) {
    mm_multi m = { .n = n_ops };
    int32_t done_key[SLM_MM_MAX_OPS];   /* vec_dot_type, or -layout for a packed layout's own format */
    const unsigned char *done_buf[SLM_MM_MAX_OPS];
    size_t done_bytes[SLM_MM_MAX_OPS];
    int n_done = 0;
    unsigned char *next = wbuf;
    const int nth = slm_pool_size(pool);
    for (int k = 0; k < n_ops; k++) {
        const slm_type_traits *tr = slm_type_traits_get(ops[k].type);
        slm_vec_dot_tile_fn tile = tr->vec_dot_tile;
        if (ops[k].layout) {   /* packed for the active kernels; the reference if SLM_ISA changed since */
            tile = slm_pack_tile((slm_layout)ops[k].layout, NULL);
            if (!tile) tile = slm_pack_tile((slm_layout)ops[k].layout, "scalar");
        }
        mm_job *j = &m.job[k];
        mm_job_init(j, tr, tile, ops[k].w, ops[k].row_bytes, ops[k].n_rows, n_cols, n_tok, ops[k].y, ops[k].y_stride,
                    nth);
        if (tr->vec_dot_type == SLM_TYPE_F32) {
            j->xq = (const unsigned char *)x;
            j->x_row_bytes = (size_t)n_cols * sizeof(float);
            continue;
        }
        const bool own = ops[k].layout && !slm_pack_act_plain((slm_layout)ops[k].layout);
        int32_t key = own ? -ops[k].layout : tr->vec_dot_type;
        for (int d = 0; d < n_done && !j->xq; d++)   /* converted already for an earlier op */
            if (done_key[d] == key) {
                j->xq = done_buf[d];
                j->x_row_bytes = done_bytes[d];
            }
        if (j->xq) continue;
        if (own) {
            j->x_row_bytes = slm_pack_act_size((slm_layout)ops[k].layout, n_cols);
            for (int64_t b = 0; b < n_tok; b++)
                slm_pack_act((slm_layout)ops[k].layout, x + b * n_cols, next + (size_t)b * j->x_row_bytes, n_cols);
        } else {
            const slm_type_traits *qt = slm_type_traits_get(tr->vec_dot_type);
            j->x_row_bytes = slm_row_size(tr->vec_dot_type, n_cols);
            for (int64_t b = 0; b < n_tok; b++) qt->from_float(x + b * n_cols, next + (size_t)b * j->x_row_bytes, n_cols);
        }
        j->xq = next;
        done_key[n_done] = key;
        done_bytes[n_done] = j->x_row_bytes;
        done_buf[n_done++] = next;
        next += j->x_row_bytes * (size_t)n_tok;
    }
    slm_pool_run(pool, mm_multi_worker, &m);
}
