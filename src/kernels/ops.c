/*
 * ops.c — scalar reference implementations of ops.h. Reductions accumulate
 * in double where it is cheap (norms, softmax sums) to stay close to exact
 * arithmetic. The matrix product converts the activations once per call
 * (the vec_dot_type's from_float), splits the rows into one contiguous
 * range per thread, and hands each range with all tokens to the type's
 * tile kernel (vec_dot_tile, which reuses every weight block for several
 * tokens and every activation block for several rows), or, for types
 * without one, calls vec_dot per row and token, rows in small groups.
 */
#include "kernels/ops.h"

#include <math.h>
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
    return slm_row_size(tr->vec_dot_type, n_cols) * (size_t)n_tok;
}

typedef struct mm_job {
    const slm_type_traits *tr;
    slm_vec_dot_tile_fn tile;        /* the type's, or the packed layout's   */
    const unsigned char *w;          /* weight rows, row_bytes apart         */
    size_t row_bytes, x_row_bytes;   /* x_row_bytes: one converted token     */
    int64_t n_rows, n_cols, n_tok, y_stride;
    const unsigned char *xq;         /* activations in the vec_dot_type      */
    float *y;
} mm_job;

/* Threads take contiguous row ranges in units of MM_ROW_UNIT rows (the
 * tile kernels' panel height), so each thread streams its own part of the
 * weights once. */
#define MM_ROW_UNIT 16
_Static_assert(MM_ROW_UNIT % SLM_PACK_ROWS == 0, "threads' row ranges start at panel boundaries");

static void mm_worker(void *arg, int ith, int nth) {
    const mm_job *j = arg;
    long lo, hi;
    slm_split((long)((j->n_rows + MM_ROW_UNIT - 1) / MM_ROW_UNIT), ith, nth, &lo, &hi);
    lo *= MM_ROW_UNIT;
    hi = hi * MM_ROW_UNIT < j->n_rows ? hi * MM_ROW_UNIT : (long)j->n_rows;
    if (lo >= hi) return;
    if (j->tile) {
        /* the kernel blocks rows and tokens itself */
        j->tile(j->n_cols, j->y + lo, (size_t)j->y_stride, j->w + (size_t)lo * j->row_bytes, j->row_bytes,
                            j->xq, j->x_row_bytes, (int)(hi - lo), (int)j->n_tok);
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

void slm_matmul(slm_pool *pool, int32_t type, const void *w, size_t row_bytes, int64_t n_rows, int64_t n_cols,
                const float *x, int64_t n_tok, float *y, int64_t y_stride, void *wbuf) {
    const slm_type_traits *tr = slm_type_traits_get(type);
    mm_job j = { tr, tr->vec_dot_tile, w, row_bytes, 0, n_rows, n_cols, n_tok, y_stride, NULL, y };
    if (tr->vec_dot_type == SLM_TYPE_F32) {
        j.xq = (const unsigned char *)x;
        j.x_row_bytes = (size_t)n_cols * sizeof(float);
    } else {
        const slm_type_traits *qt = slm_type_traits_get(tr->vec_dot_type);
        j.x_row_bytes = slm_row_size(tr->vec_dot_type, n_cols);
        for (int64_t b = 0; b < n_tok; b++)
            qt->from_float(x + b * n_cols, (unsigned char *)wbuf + (size_t)b * j.x_row_bytes, n_cols);
        j.xq = wbuf;
    }
    slm_pool_run(pool, mm_worker, &j);
}

typedef struct mm_multi {
    mm_job job[SLM_MM_MAX_OPS];
    int n;
} mm_multi;

static void mm_multi_worker(void *arg, int ith, int nth) {
    const mm_multi *m = arg;
    for (int k = 0; k < m->n; k++) mm_worker((void *)&m->job[k], ith, nth);
}

void slm_matmul_multi(slm_pool *pool, const slm_mm_op *ops, int n_ops, int64_t n_cols, const float *x, int64_t n_tok,
                      void *wbuf) {
    mm_multi m = { .n = n_ops };
    int32_t done_type[SLM_MM_MAX_OPS];
    const unsigned char *done_buf[SLM_MM_MAX_OPS];
    int n_done = 0;
    unsigned char *next = wbuf;
    for (int k = 0; k < n_ops; k++) {
        const slm_type_traits *tr = slm_type_traits_get(ops[k].type);
        mm_job *j = &m.job[k];
        slm_vec_dot_tile_fn tile = tr->vec_dot_tile;
        if (ops[k].layout) {   /* packed for the active kernels; the reference if SLM_ISA changed since */
            tile = slm_pack_tile((slm_layout)ops[k].layout, NULL);
            if (!tile) tile = slm_pack_tile((slm_layout)ops[k].layout, "scalar");
        }
        *j = (mm_job){ tr, tile, ops[k].w, ops[k].row_bytes, 0, ops[k].n_rows, n_cols, n_tok, ops[k].y_stride, NULL,
                       ops[k].y };
        if (tr->vec_dot_type == SLM_TYPE_F32) {
            j->xq = (const unsigned char *)x;
            j->x_row_bytes = (size_t)n_cols * sizeof(float);
            continue;
        }
        j->x_row_bytes = slm_row_size(tr->vec_dot_type, n_cols);
        for (int d = 0; d < n_done && !j->xq; d++)   /* converted already for an earlier op */
            if (done_type[d] == tr->vec_dot_type) j->xq = done_buf[d];
        if (j->xq) continue;
        const slm_type_traits *qt = slm_type_traits_get(tr->vec_dot_type);
        for (int64_t b = 0; b < n_tok; b++) qt->from_float(x + b * n_cols, next + (size_t)b * j->x_row_bytes, n_cols);
        j->xq = next;
        done_type[n_done] = tr->vec_dot_type;
        done_buf[n_done++] = next;
        next += j->x_row_bytes * (size_t)n_tok;
    }
    slm_pool_run(pool, mm_multi_worker, &m);
}
