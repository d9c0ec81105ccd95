/*
 * imatrix.c — collecting, saving and loading importance matrices (see
 * imatrix.h for the file format).
 *
 * Collection rides on the forward pass's matmul observer (model/ctx.h):
 * before each weight product it is handed the weight and its n_tokens x
 * ne0 input, and adds x^2 column by column into that weight's entry
 * (double sums, so long texts do not lose small columns) and n_tokens to
 * its count. The observer learns a weight's name once, by finding the
 * tensor of the model's GGUF whose data the weight points to, and keeps
 * the answer in a small pointer-keyed table; weights other than "blk.*"
 * and output.weight (a tied output, i.e. token_embd, is not collected:
 * its rows are also looked up as embeddings) are remembered as ignored.
 * The observer runs on the decoding thread, so nothing here is locked.
 */
#include "quant/imatrix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "kernels/types.h"
#include "model/ctx.h"
#include "util/alloc.h"
#include "util/err.h"

typedef struct entry {
    char    *name;       /* weight name, e.g. "blk.0.attn_q.weight"          */
    int64_t  n;          /* columns                                          */
    double  *sum2;       /* [n] sum of squared activations                   */
    double   count;      /* activation rows summed                           */
} entry;

typedef struct slot {
    const slm_mat *w;    /* key; NULL: empty                                 */
    int32_t idx;         /* entry index, -1: not collected                   */
} slot;

struct slm_imatrix {
    entry   *e;
    int32_t  n_e, cap_e;
    char    *dataset;    /* "" when none                                     */
    int32_t  n_chunks, chunk_size;
    const slm_model *model;   /* while attached                              */
    slot    *map;        /* open addressing, cap_map a power of two          */
    size_t   n_map, cap_map;
    slm_err  status;     /* first error inside the observer                  */
};

slm_imatrix *slm_imatrix_new(void) {
    slm_imatrix *im = slm_calloc(1, sizeof *im);
    if (!im) return NULL;
    im->dataset = slm_strdup("");
    if (!im->dataset) {
        slm_free(im);
        return NULL;
    }
    return im;
}

void slm_imatrix_free(slm_imatrix *im) {
    if (!im) return;
    for (int32_t i = 0; i < im->n_e; i++) {
        slm_free(im->e[i].name);
        slm_free(im->e[i].sum2);
    }
    slm_free(im->e);
    slm_free(im->map);
    slm_free(im->dataset);
    slm_free(im);
}

static int32_t find_entry(const slm_imatrix *im, const char *name) {
    for (int32_t i = 0; i < im->n_e; i++)
        if (!strcmp(im->e[i].name, name)) return i;
    return -1;
}

/* Appends an entry of n zero columns; returns its index or -1 on OOM. */
static int32_t add_entry(slm_imatrix *im, const char *name, size_t name_len, int64_t n) {
    if (im->n_e == im->cap_e) {
        int32_t nc = im->cap_e ? im->cap_e * 2 : 64;
        entry *ne = slm_realloc(im->e, (size_t)nc * sizeof *ne);
        if (!ne) return -1;
        im->e = ne;
        im->cap_e = nc;
    }
    entry *e = &im->e[im->n_e];
    e->name = slm_strndup(name, name_len);
    e->sum2 = n > 0 ? slm_calloc((size_t)n, sizeof(double)) : NULL;
    if (!e->name || !e->sum2) {
        slm_free(e->name);
        slm_free(e->sum2);
        return -1;
    }
    e->n = n;
    e->count = 0;
    return im->n_e++;
}

/* ---- collection --------------------------------------------------------- */

static size_t hash_ptr(const void *p, size_t cap) { return ((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull & (cap - 1); }

static bool map_grow(slm_imatrix *im) {
    size_t nc = im->cap_map ? im->cap_map * 2 : 256;
    slot *nm = slm_calloc(nc, sizeof *nm);
    if (!nm) return false;
    for (size_t i = 0; i < im->cap_map; i++) {
        if (!im->map[i].w) continue;
        size_t h = hash_ptr(im->map[i].w, nc);
        while (nm[h].w) h = (h + 1) & (nc - 1);
        nm[h] = im->map[i];
    }
    slm_free(im->map);
    im->map = nm;
    im->cap_map = nc;
    return true;
}

/* The entry of weight w: looked up once by data pointer in the model's
 * GGUF, then cached. Returns -1 for weights not collected, -2 on error. */
static int32_t resolve(slm_imatrix *im, const slm_mat *w) {
    if (im->cap_map) {
        for (size_t h = hash_ptr(w, im->cap_map); im->map[h].w; h = (h + 1) & (im->cap_map - 1))
            if (im->map[h].w == w) return im->map[h].idx;
    }
    if ((im->n_map + 1) * 2 > im->cap_map && !map_grow(im)) {
        slm_err_set(&im->status, SLM_ENOMEM, "out of memory collecting the imatrix");
        return -2;
    }
    int32_t idx = -1;
    const slm_gguf *g = im->model->gguf;
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        if (t->data != (w->mapped ? w->mapped : w->data)) continue;   /* resident weights: their file place */
        char name[512];
        size_t len = t->name.len < sizeof name - 1 ? (size_t)t->name.len : sizeof name - 1;
        memcpy(name, t->name.ptr, len);
        name[len] = 0;
        if (strncmp(name, "blk.", 4) != 0 && strcmp(name, "output.weight") != 0) break;
        idx = find_entry(im, name);
        if (idx >= 0 && im->e[idx].n != w->ne0) {
            slm_err_set(&im->status, SLM_EFORMAT, "imatrix entry '%s' has %lld columns, the weight %lld", name,
                        (long long)im->e[idx].n, (long long)w->ne0);
            return -2;
        }
        if (idx < 0 && (idx = add_entry(im, name, len, w->ne0)) < 0) {
            slm_err_set(&im->status, SLM_ENOMEM, "out of memory collecting the imatrix");
            return -2;
        }
        break;
    }
    size_t h = hash_ptr(w, im->cap_map);
    while (im->map[h].w) h = (h + 1) & (im->cap_map - 1);
    im->map[h].w = w;
    im->map[h].idx = idx;
    im->n_map++;
    return idx;
}

static void observe(void *ud, const slm_mat *w, const float *x, int32_t n_tokens) {
    slm_imatrix *im = ud;
    if (im->status.code) return;
    int32_t idx = resolve(im, w);
    if (idx < 0) return;
    entry *e = &im->e[idx];
    for (int32_t t = 0; t < n_tokens; t++) {
        const float *row = x + (size_t)t * (size_t)e->n;
        for (int64_t j = 0; j < e->n; j++) e->sum2[j] += (double)row[j] * (double)row[j];
    }
    e->count += n_tokens;
}

void slm_imatrix_attach(slm_imatrix *im, slm_ctx *ctx) {
    if (!im) {
        slm_ctx_set_matmul_observer(ctx, NULL, NULL);
        return;
    }
    if (im->model != ctx->model) { /* another model: forget the pointer cache */
        slm_free(im->map);
        im->map = NULL;
        im->n_map = im->cap_map = 0;
    }
    im->model = ctx->model;
    slm_ctx_set_matmul_observer(ctx, observe, im);
}

int slm_imatrix_status(const slm_imatrix *im, slm_err *err) {
    if (!im->status.code) return 0;
    return slm_err_set(err, im->status.code, "%s", im->status.msg);
}

int slm_imatrix_set_info(slm_imatrix *im, const char *dataset, int32_t n_chunks, int32_t chunk_size) {
    char *d = slm_strdup(dataset ? dataset : "");
    if (!d) return SLM_ENOMEM;
    slm_free(im->dataset);
    im->dataset = d;
    im->n_chunks = n_chunks;
    im->chunk_size = chunk_size;
    return 0;
}

int32_t slm_imatrix_n_entries(const slm_imatrix *im) { return im->n_e; }
int32_t slm_imatrix_n_chunks(const slm_imatrix *im) { return im->n_chunks; }
const char *slm_imatrix_dataset(const slm_imatrix *im) { return im->dataset; }

int slm_imatrix_get(const slm_imatrix *im, const char *name, int64_t n, float *out, slm_err *err) {
    int32_t idx = find_entry(im, name);
    if (idx < 0) return SLM_ENOTFOUND;
    const entry *e = &im->e[idx];
    if (e->n != n)
        return slm_err_set(err, SLM_EFORMAT, "imatrix entry '%s' has %lld values, but the tensor's rows have %lld", name,
                           (long long)e->n, (long long)n);
    for (int64_t j = 0; out && j < n; j++) out[j] = e->count > 0 ? (float)(e->sum2[j] / e->count) : 1.0f;
    return 0;
}

/* ---- files -------------------------------------------------------------- */

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp((*(const entry *const *)a)->name, (*(const entry *const *)b)->name);
}

int slm_imatrix_save(const slm_imatrix *im, const char *path, slm_err *err) {
    int rc = 0;
    size_t n = (size_t)im->n_e;
    slm_gguf_writer *w = slm_gguf_writer_new();
    const entry **order = slm_calloc(n ? n : 1, sizeof *order);
    float **bufs = slm_calloc(n ? 2 * n : 1, sizeof *bufs);
    if (!w || !order || !bufs) {
        rc = SLM_ENOMEM;
        goto build_fail;
    }
    for (size_t i = 0; i < n; i++) order[i] = &im->e[i];
    qsort(order, n, sizeof *order, cmp_entry_name); /* the same bytes for the same input */
    const char *ds[1] = { im->dataset };
    if (slm_gguf_set_str(w, "general.type", "imatrix") ||
        slm_gguf_set_arr_str(w, "imatrix.datasets", ds, NULL, im->dataset[0] ? 1 : 0) ||
        slm_gguf_set_u32(w, "imatrix.chunk_count", (uint32_t)im->n_chunks) ||
        slm_gguf_set_u32(w, "imatrix.chunk_size", (uint32_t)im->chunk_size)) {
        rc = SLM_ENOMEM;
        goto build_fail;
    }
    for (size_t i = 0; i < n; i++) {
        const entry *e = order[i];
        float *s = bufs[2 * i] = slm_malloc((size_t)e->n * sizeof(float));
        float *c = bufs[2 * i + 1] = slm_malloc(sizeof(float));
        if (!s || !c) {
            rc = SLM_ENOMEM;
            goto build_fail;
        }
        for (int64_t j = 0; j < e->n; j++) s[j] = (float)e->sum2[j];
        *c = (float)e->count;
        char name[600];
        int64_t ne_s[1] = { e->n }, ne_c[1] = { 1 };
        snprintf(name, sizeof name, "%s.in_sum2", e->name);
        if ((rc = slm_gguf_add_tensor(w, name, SLM_TYPE_F32, 1, ne_s, s, (uint64_t)e->n * 4))) goto build_fail;
        snprintf(name, sizeof name, "%s.counts", e->name);
        if ((rc = slm_gguf_add_tensor(w, name, SLM_TYPE_F32, 1, ne_c, c, 4))) goto build_fail;
    }
    rc = slm_gguf_writer_write(w, path, err);
    goto out;
build_fail:
    rc = slm_err_set(err, rc, "cannot build the imatrix file '%s': %s", path, slm_strerror(rc));
out:
    if (bufs)
        for (size_t i = 0; i < 2 * n; i++) slm_free(bufs[i]);
    slm_free(bufs);
    slm_free(order);
    slm_gguf_writer_free(w);
    return rc;
}

static int64_t n_elements(const slm_gguf_tensor *t) {
    int64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= t->ne[d];
    return n;
}

static bool has_suffix(slm_gguf_str s, const char *suffix, size_t *base_len) {
    size_t k = strlen(suffix);
    if (s.len <= k || memcmp(s.ptr + s.len - k, suffix, k) != 0) return false;
    *base_len = (size_t)s.len - k;
    return true;
}

/* Adds the entry of one NAME.in_sum2 tensor (with its NAME.counts). */
static int load_entry(slm_imatrix *im, const slm_gguf *g, const slm_gguf_tensor *sums, size_t base_len,
                      const char *path, slm_err *err) {
    char name[600], cname[640];
    if (base_len >= 512) return slm_err_set(err, SLM_EFORMAT, "%s: imatrix tensor name too long", path);
    memcpy(name, sums->name.ptr, base_len);
    name[base_len] = 0;
    snprintf(cname, sizeof cname, "%s.counts", name);
    const slm_gguf_tensor *cnt = slm_gguf_find_tensor(g, cname);
    if (!cnt) return slm_err_set(err, SLM_EFORMAT, "%s: imatrix entry '%s' has sums but no counts", path, name);
    if (sums->type != SLM_TYPE_F32 || cnt->type != SLM_TYPE_F32)
        return slm_err_set(err, SLM_EFORMAT, "%s: imatrix entry '%s' is not F32", path, name);
    int64_t n = n_elements(sums), nc = n_elements(cnt);
    if (nc != 1)
        return slm_err_set(err, SLM_EUNSUPPORTED, "%s: imatrix entry '%s' has %lld counts (mixture of experts): not supported",
                           path, name, (long long)nc);
    if (n <= 0 || n > (1 << 24)) return slm_err_set(err, SLM_EFORMAT, "%s: imatrix entry '%s' has %lld values", path, name, (long long)n);
    if (find_entry(im, name) >= 0) return slm_err_set(err, SLM_EFORMAT, "%s: imatrix entry '%s' appears twice", path, name);
    float count;
    memcpy(&count, cnt->data, 4);
    if (!isfinite(count) || count < 0)
        return slm_err_set(err, SLM_EFORMAT, "%s: imatrix entry '%s' has a count of %g", path, name, (double)count);
    int32_t idx = add_entry(im, name, base_len, n);
    if (idx < 0) return slm_err_set(err, SLM_ENOMEM, "out of memory reading '%s'", path);
    entry *e = &im->e[idx];
    e->count = count;
    for (int64_t j = 0; j < n; j++) {
        float v;
        memcpy(&v, (const unsigned char *)sums->data + 4 * j, 4);
        if (!isfinite(v) || v < 0)
            return slm_err_set(err, SLM_EFORMAT, "%s: imatrix entry '%s' holds %g at column %lld", path, name, (double)v,
                               (long long)j);
        e->sum2[j] = v;
    }
    return 0;
}

int slm_imatrix_load(const char *path, slm_imatrix **out, slm_err *err) {
    *out = NULL;
    slm_gguf *g = NULL;
    slm_err gerr = { 0 };
    int rc = slm_gguf_open(path, &g, &gerr);
    if (rc) return slm_err_set(err, rc, "imatrix '%s': %s", path, gerr.msg);
    slm_imatrix *im = slm_imatrix_new();
    if (!im) {
        slm_gguf_close(g);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    slm_gguf_str type;
    if (slm_gguf_get_str(g, "general.type", &type, NULL) == 0 && !slm_gguf_str_eq(type, "imatrix")) {
        rc = slm_err_set(err, SLM_EFORMAT, "%s: not an imatrix file (general.type is '%.*s')", path, (int)type.len, type.ptr);
        goto fail;
    }
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        size_t base;
        if (has_suffix(t->name, ".in_sum2", &base)) {
            if ((rc = load_entry(im, g, t, base, path, err))) goto fail;
        } else if (has_suffix(t->name, ".counts", &base)) {
            char sname[640];
            if (base >= 512) continue; /* caught as an orphan below only if short enough to name */
            snprintf(sname, sizeof sname, "%.*s.in_sum2", (int)base, t->name.ptr);
            if (!slm_gguf_find_tensor(g, sname)) {
                rc = slm_err_set(err, SLM_EFORMAT, "%s: imatrix entry '%.*s' has counts but no sums", path, (int)base, t->name.ptr);
                goto fail;
            }
        }
    }
    if (im->n_e == 0) {
        rc = slm_err_set(err, SLM_EFORMAT, "%s: no imatrix entries (NAME.in_sum2 / NAME.counts tensors)", path);
        goto fail;
    }
    int64_t k = slm_gguf_find_key(g, "imatrix.datasets");
    if (k >= 0 && slm_gguf_kv_arr_type(g, k) == SLM_GGUF_STR && slm_gguf_kv_arr_n(g, k) > 0) {
        slm_gguf_str d = slm_gguf_arr_str(g, k, 0);
        char *ds = slm_strndup(d.ptr, (size_t)d.len);
        if (!ds) {
            rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
            goto fail;
        }
        slm_free(im->dataset);
        im->dataset = ds;
    }
    uint32_t v;
    if (slm_gguf_get_u32(g, "imatrix.chunk_count", &v, NULL) == 0) im->n_chunks = (int32_t)(v > INT32_MAX ? INT32_MAX : v);
    if (slm_gguf_get_u32(g, "imatrix.chunk_size", &v, NULL) == 0) im->chunk_size = (int32_t)(v > INT32_MAX ? INT32_MAX : v);
    slm_gguf_close(g);
    *out = im;
    return 0;
fail:
    slm_gguf_close(g);
    slm_imatrix_free(im);
    return rc;
}
