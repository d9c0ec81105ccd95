/*
 * quantize.c — GGUF to GGUF quantization (quantize.h).
 *
 * Two passes over the input's tensor table. The plan pass decides every
 * tensor's output type (mix.c), checks what can be refused up front —
 * unknown mix, already-quantized input without allow_requantize, a type
 * slm cannot read, an imatrix entry of the wrong size — and so computes
 * every output offset before a byte of data is written. The write pass
 * then streams the tensors in input order: a tensor whose type stays is
 * copied from the mapping; one that changes is cut into chunks of rows
 * (about 4M elements each), and the pool's threads each take rows of the
 * chunk, dequantize a row to F32 with the type's to_float and quantize it
 * with the weighted quantizer (qweighted.h) into the chunk's output
 * buffer, which is then appended to the file. Memory is one chunk of
 * output plus one row of floats per thread, whatever the model's size;
 * the input's pages are released from the process as each tensor is done.
 *
 * The file: the GGUF writer writes the header and metadata (every input
 * key copied, general.file_type and general.quantization_version set,
 * quantize.imatrix.* added) to OUT.tmp-PID as a GGUF with no tensors;
 * this file then appends the tensor table and the data, sets the tensor
 * count in the header, and renames the file over OUT only when all of it
 * has been written. On any error the temporary file is removed.
 *
 * Importance: with an imatrix, a tensor that has an entry is quantized
 * minimising the error weighted by its columns' mean squared activation
 * (w = imatrix as is: blends with uniform weights, or llama.cpp-style
 * w * sqrt(sigma^2 + x^2), measured no better on stories260K); without
 * one, the plain squared error (qweighted.h, w = NULL).
 */
#include "quant/quantize.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "kernels/types.h"
#include "quant/imatrix.h"
#include "quant/mix.h"
#include "quant/qweighted.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/pool.h"
#include "util/progress.h"

#define CHUNK_ELEMS (4 << 20)   /* elements per chunk of rows             */
#define QNT_VERSION 2           /* general.quantization_version (ggml's)  */

/* ---- mix names ---------------------------------------------------------- */

static const struct { const char *name; int32_t ftype; } NAMES[] = {
    { "F32", SLM_FTYPE_F32 },       { "F16", SLM_FTYPE_F16 },       { "BF16", SLM_FTYPE_BF16 },
    { "Q8_0", SLM_FTYPE_Q8_0 },     { "Q4_0", SLM_FTYPE_Q4_0 },     { "Q4_1", SLM_FTYPE_Q4_1 },
    { "Q5_0", SLM_FTYPE_Q5_0 },     { "Q5_1", SLM_FTYPE_Q5_1 },     { "Q2_K", SLM_FTYPE_Q2_K },
    { "Q3_K_S", SLM_FTYPE_Q3_K_S }, { "Q3_K_M", SLM_FTYPE_Q3_K_M }, { "Q3_K_L", SLM_FTYPE_Q3_K_L },
    { "Q4_K_S", SLM_FTYPE_Q4_K_S }, { "Q4_K_M", SLM_FTYPE_Q4_K_M }, { "Q5_K_S", SLM_FTYPE_Q5_K_S },
    { "Q5_K_M", SLM_FTYPE_Q5_K_M }, { "Q6_K", SLM_FTYPE_Q6_K },
    /* aliases, as llama-quantize takes them */
    { "Q3_K", SLM_FTYPE_Q3_K_M },   { "Q4_K", SLM_FTYPE_Q4_K_M },   { "Q5_K", SLM_FTYPE_Q5_K_M },
};

int slm_quantize_ftype_parse(const char *name, int32_t *ftype) {
    for (size_t i = 0; name && i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (!strcasecmp(name, NAMES[i].name)) {
            *ftype = NAMES[i].ftype;
            return 0;
        }
    return SLM_EINVAL;
}

const char *slm_quantize_ftype_name(int32_t ftype) {
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].ftype == ftype) return NAMES[i].name;
    return NULL;
}

slm_quantize_params slm_quantize_default_params(void) {
    slm_quantize_params p = { .ftype = SLM_FTYPE_Q4_K_M, .n_threads = 0 };
    return p;
}

/* ---- plan --------------------------------------------------------------- */

typedef struct tplan {
    const slm_gguf_tensor *t;
    char    *name;        /* NUL-terminated copy                             */
    int32_t  to_type;
    int64_t  nrows;       /* rows of ne[0] elements                          */
    uint64_t nbytes;      /* output bytes                                    */
    bool     convert;     /* type changes                                    */
    bool     weighted;    /* an imatrix entry applies                        */
} tplan;

typedef struct job {
    const slm_gguf *in;
    const char *in_path;
    const slm_quantize_params *p;
    slm_imatrix *imat;
    tplan *plan;
    int64_t n;
    uint64_t alignment;
    slm_pool *pool;
} job;

static int64_t n_rows_of(const slm_gguf_tensor *t) {
    int64_t r = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) r *= t->ne[d];
    return r;
}

/* hparams the mix rules need, from the input's metadata */
static void mix_model(const slm_gguf *in, const job *j, slm_mix_model *mm) {
    memset(mm, 0, sizeof *mm);
    char arch[64] = "llama", key[128];
    slm_gguf_str a;
    if (slm_gguf_get_str(in, "general.architecture", &a, NULL) == 0 && a.len < sizeof arch) {
        memcpy(arch, a.ptr, a.len);
        arch[a.len] = 0;
    }
    uint32_t v = 0, heads = 1, kv_heads = 1;
    snprintf(key, sizeof key, "%s.block_count", arch);
    if (slm_gguf_get_u32(in, key, &v, NULL) == 0) mm->n_layer = (int32_t)(v > 1 << 20 ? 1 << 20 : v);
    snprintf(key, sizeof key, "%s.attention.head_count", arch);
    if (slm_gguf_get_u32(in, key, &v, NULL) == 0 && v > 0) heads = v;
    kv_heads = heads;
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    if (slm_gguf_get_u32(in, key, &v, NULL) == 0 && v > 0) kv_heads = v;
    mm->n_gqa = (int32_t)(heads / kv_heads);
    mm->is_70b = !strcmp(arch, "llama") && mm->n_layer == 80;
    mm->has_imatrix = j->imat != NULL;
    mm->tied_output = true;
    for (int64_t i = 0; i < j->n; i++) {
        const char *nm = j->plan[i].name;
        if (!strcmp(nm, "output.weight")) mm->tied_output = false;
        if (strstr(nm, "attn_v.weight") || strstr(nm, "attn_qkv.weight")) mm->n_attn_v++;
    }
}

static bool is_float_type(int32_t type) {
    return type == SLM_TYPE_F32 || type == SLM_TYPE_F16 || type == SLM_TYPE_BF16;
}

static int make_plan(job *j, slm_err *err) {
    const slm_gguf *in = j->in;
    j->n = slm_gguf_n_tensors(in);
    j->plan = slm_calloc(j->n ? (size_t)j->n : 1, sizeof *j->plan);
    if (!j->plan) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (int64_t i = 0; i < j->n; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(in, i);
        j->plan[i].t = t;
        if (!(j->plan[i].name = slm_strndup(t->name.ptr, (size_t)t->name.len)))
            return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    slm_mix_model mm;
    mix_model(in, j, &mm);
    int rc = 0;
    for (int64_t i = 0; i < j->n && !rc; i++) {
        tplan *tp = &j->plan[i];
        const slm_gguf_tensor *t = tp->t;
        tp->nrows = n_rows_of(t);
        tp->to_type = t->type;
        if (slm_mix_quantizable(tp->name, t->n_dims) && t->ne[0] > 0 && tp->nrows > 0)
            tp->to_type = slm_mix_tensor_type(j->p->ftype, &mm, tp->name, t->ne[0], NULL);
        tp->convert = tp->to_type != t->type;
        tp->nbytes = tp->convert ? (uint64_t)slm_row_size(tp->to_type, t->ne[0]) * (uint64_t)tp->nrows : t->nbytes;
        if (!tp->convert) continue;
        const slm_type_traits *src = slm_type_traits_get(t->type);
        if (!src || !src->to_float)
            rc = slm_err_set(err, SLM_EUNSUPPORTED, "%s: tensor '%s' has type %s, which slm cannot read", j->in_path, tp->name,
                             slm_type_name(t->type));
        else if (!is_float_type(t->type) && !j->p->allow_requantize)
            rc = slm_err_set(err, SLM_EINVAL,
                             "%s is already quantized (tensor '%s' is %s); requantizing adds error: pass --allow-requantize "
                             "to do it anyway", j->in_path, tp->name, slm_type_name(t->type));
        else if (j->imat && slm_type_traits_ref(tp->to_type)->is_quantized) {
            int r = slm_imatrix_get(j->imat, tp->name, t->ne[0], NULL, err);
            if (r == 0) tp->weighted = true;
            else if (r != SLM_ENOTFOUND) rc = r;
        }
    }
    return rc;
}

/* ---- converting one tensor ---------------------------------------------- */

typedef struct conv {
    const unsigned char *src;   /* first row of the chunk                  */
    size_t src_rb, dst_rb;
    slm_to_float_fn to_float;
    unsigned char *dst;         /* the chunk's output                      */
    int32_t dst_type;
    int64_t ne0, nrows, row0;   /* rows in the chunk, index of the first   */
    const float *w;             /* importance or NULL                      */
    float *scratch;             /* nth rows of ne0 floats                  */
    int64_t *bad;               /* per thread: first non-finite row or -1  */
} conv;

static void conv_worker(void *arg, int ith, int nth) {
    conv *c = arg;
    float *row = c->scratch + (size_t)ith * (size_t)c->ne0;
    long lo, hi;
    slm_split((long)c->nrows, ith, nth, &lo, &hi);
    c->bad[ith] = -1;
    for (long r = lo; r < hi; r++) {
        c->to_float(c->src + (size_t)r * c->src_rb, row, c->ne0);
        for (int64_t k = 0; k < c->ne0; k++)
            if (!isfinite(row[k])) {
                c->bad[ith] = c->row0 + r;
                return;
            }
        slm_quant_row(c->dst_type, row, c->dst + (size_t)r * c->dst_rb, c->ne0, c->w);
    }
}

static int fwrite_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1; }

static int write_pad(FILE *f, uint64_t n, uint64_t align) {
    static const unsigned char zeros[64];
    uint64_t pad = (align - n % align) % align;
    while (pad) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        if (fwrite_all(f, zeros, k)) return -1;
        pad -= k;
    }
    return 0;
}

/* The input is mmapped: once a tensor is done, its pages are dropped from
 * this process (they stay in the page cache), so the resident size stays
 * at one tensor's worth of input whatever the model's size. */
static void release_input(const slm_gguf_tensor *t) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)t->data + page - 1) / page * page, hi = ((uintptr_t)t->data + t->nbytes) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Writes tensor tp's data (converted as planned) at the file's position. */
static int write_tensor(job *j, tplan *tp, FILE *f, const char *out_path, slm_progress *pr, uint64_t *done_in,
                        slm_err *err) {
    const slm_gguf_tensor *t = tp->t;
    if (!tp->convert) {
        if (fwrite_all(f, t->data, (size_t)t->nbytes))
            return slm_err_set(err, SLM_EIO, "cannot write '%s': %s", out_path, strerror(errno));
        *done_in += t->nbytes;
        if (j->p->progress) slm_progress_set(pr, (int64_t)(*done_in >> 20));
        return 0;
    }
    int nth = slm_pool_size(j->pool);
    int64_t ne0 = t->ne[0];
    int64_t chunk_rows = CHUNK_ELEMS / ne0 > 0 ? CHUNK_ELEMS / ne0 : 1;
    if (chunk_rows > tp->nrows) chunk_rows = tp->nrows;
    conv c = { .src_rb = (size_t)(t->nbytes / (uint64_t)tp->nrows), .dst_rb = slm_row_size(tp->to_type, ne0),
               .to_float = slm_type_traits_get(t->type)->to_float, .dst_type = tp->to_type, .ne0 = ne0 };
    int rc = 0;
    float *w = tp->weighted ? slm_malloc((size_t)ne0 * sizeof(float)) : NULL;
    c.dst = slm_malloc((size_t)chunk_rows * c.dst_rb);
    c.scratch = slm_malloc((size_t)nth * (size_t)ne0 * sizeof(float));
    c.bad = slm_malloc((size_t)nth * sizeof(int64_t));
    if ((tp->weighted && !w) || !c.dst || !c.scratch || !c.bad) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory quantizing '%s'", tp->name);
        goto done;
    }
    if (w && (rc = slm_imatrix_get(j->imat, tp->name, ne0, w, err))) goto done;
    c.w = w;
    for (int64_t r0 = 0; r0 < tp->nrows; r0 += chunk_rows) {
        c.row0 = r0;
        c.nrows = tp->nrows - r0 < chunk_rows ? tp->nrows - r0 : chunk_rows;
        c.src = (const unsigned char *)t->data + (size_t)r0 * c.src_rb;
        slm_pool_run(j->pool, conv_worker, &c);
        for (int i = 0; i < nth; i++)
            if (c.bad[i] >= 0) {
                rc = slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s' row %lld holds a non-finite value", j->in_path,
                                 tp->name, (long long)c.bad[i]);
                goto done;
            }
        if (fwrite_all(f, c.dst, (size_t)c.nrows * c.dst_rb)) {
            rc = slm_err_set(err, SLM_EIO, "cannot write '%s': %s", out_path, strerror(errno));
            goto done;
        }
        *done_in += (uint64_t)c.nrows * c.src_rb;
        if (j->p->progress) slm_progress_set(pr, (int64_t)(*done_in >> 20));
    }
done:
    slm_free(w);
    slm_free(c.dst);
    slm_free(c.scratch);
    slm_free(c.bad);
    return rc;
}

/* ---- the file ----------------------------------------------------------- */

/* Header and metadata, through the GGUF writer, as a file with no tensors. */
static int write_meta(job *j, const char *tmp, slm_err *err) {
    const slm_gguf *in = j->in;
    slm_gguf_writer *w = slm_gguf_writer_new();
    int rc = w ? 0 : SLM_ENOMEM;
    for (int64_t i = 0; !rc && i < slm_gguf_n_kv(in); i++) rc = slm_gguf_copy_kv(w, in, i);
    if (!rc && slm_gguf_find_key(in, "general.alignment") >= 0)
        rc = slm_gguf_writer_set_alignment(w, (uint32_t)j->alignment);
    if (!rc) rc = slm_gguf_set_u32(w, "general.quantization_version", QNT_VERSION);
    if (!rc) rc = slm_gguf_set_u32(w, "general.file_type", (uint32_t)j->p->ftype);
    if (!rc && j->imat) {
        rc = slm_gguf_set_str(w, "quantize.imatrix.file", j->p->imatrix_path);
        if (!rc && slm_imatrix_dataset(j->imat)[0])
            rc = slm_gguf_set_str(w, "quantize.imatrix.dataset", slm_imatrix_dataset(j->imat));
        if (!rc) rc = slm_gguf_set_u32(w, "quantize.imatrix.entries_count", (uint32_t)slm_imatrix_n_entries(j->imat));
        if (!rc) rc = slm_gguf_set_u32(w, "quantize.imatrix.chunks_count", (uint32_t)slm_imatrix_n_chunks(j->imat));
    }
    if (rc) rc = slm_err_set(err, rc, "cannot copy the metadata of '%s': %s", j->in_path, slm_strerror(rc));
    else rc = slm_gguf_writer_write(w, tmp, err);
    slm_gguf_writer_free(w);
    return rc;
}

/* Appends the tensor table, then the data; sets the tensor count. */
static int write_tensors(job *j, const char *tmp, const char *out_path, slm_quantize_stats *st, slm_err *err) {
    FILE *f = fopen(tmp, "r+b");
    if (!f) return slm_err_set(err, SLM_EIO, "cannot open '%s': %s", tmp, strerror(errno));
    int rc = 0;
    slm_progress pr;
    uint64_t total_in = 0, done_in = 0, off = 0;
    for (int64_t i = 0; i < j->n; i++) total_in += j->plan[i].t->nbytes;
    if (fseeko(f, 0, SEEK_END) != 0) goto io;
    for (int64_t i = 0; i < j->n; i++) {
        const tplan *tp = &j->plan[i];
        uint64_t nl = strlen(tp->name);
        uint32_t nd = tp->t->n_dims, type = (uint32_t)tp->to_type;
        if (fwrite_all(f, &nl, 8) || fwrite_all(f, tp->name, nl) || fwrite_all(f, &nd, 4) ||
            fwrite_all(f, tp->t->ne, 8 * (size_t)nd) || fwrite_all(f, &type, 4) || fwrite_all(f, &off, 8))
            goto io;
        off += (tp->nbytes + j->alignment - 1) / j->alignment * j->alignment;
    }
    off_t pos = ftello(f);
    if (pos < 0 || (j->n && write_pad(f, (uint64_t)pos, j->alignment))) goto io;
    if (j->p->progress) slm_progress_begin(&pr, "quantize", "MiB", (int64_t)(total_in >> 20));
    for (int64_t i = 0; i < j->n && !rc; i++) {
        tplan *tp = &j->plan[i];
        if (j->p->progress) slm_progress_label(&pr, tp->name);
        rc = write_tensor(j, tp, f, out_path, &pr, &done_in, err);
        release_input(tp->t);
        if (!rc && write_pad(f, tp->nbytes, j->alignment)) rc = slm_err_set(err, SLM_EIO, "cannot write '%s': %s", out_path, strerror(errno));
        if (rc) break;
        st->bytes_in += tp->t->nbytes;
        st->bytes_out += tp->nbytes;
        st->n_tensors++;
        st->n_quantized += tp->convert;
        int64_t ne = 1;
        for (uint32_t d = 0; d < tp->t->n_dims; d++) ne *= tp->t->ne[d];
        st->n_elements += (uint64_t)ne;
        if (j->p->on_tensor) j->p->on_tensor(j->p->ud, tp->name, tp->t->type, tp->to_type, tp->t->nbytes, tp->nbytes);
    }
    if (j->p->progress) slm_progress_end(&pr);
    if (rc) {
        fclose(f);
        return rc;
    }
    uint64_t nt = (uint64_t)j->n;
    if (fseeko(f, 8, SEEK_SET) != 0 || fwrite_all(f, &nt, 8) || fflush(f) != 0 || fsync(fileno(f)) != 0) goto io;
    if (fclose(f) != 0) {
        f = NULL;
        goto io;
    }
    return 0;
io:
    rc = slm_err_set(err, SLM_EIO, "cannot write '%s': %s", out_path, strerror(errno));
    if (f) fclose(f);
    return rc;
}

int slm_quantize_file(const char *in_path, const char *out_path, const slm_quantize_params *p, slm_quantize_stats *stats,
                      slm_err *err) {
    slm_quantize_stats st;
    memset(&st, 0, sizeof st);
    double t0 = slm_now();
    if (slm_mix_base_type(p->ftype) < 0) return slm_err_set(err, SLM_EINVAL, "unknown quantization type %d", (int)p->ftype);
    job j = { .in_path = in_path, .p = p };
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%d", out_path, (int)getpid()) >= sizeof tmp)
        return slm_err_set(err, SLM_EINVAL, "output path too long");
    slm_gguf *in = NULL;
    slm_err e2 = { 0 };
    int rc = slm_gguf_open(in_path, &in, &e2);
    if (rc) return slm_err_set(err, rc, "%s: %s", in_path, e2.msg);
    j.in = in;
    j.alignment = slm_gguf_alignment(in);
    bool made_tmp = false;
    if (p->imatrix_path && (rc = slm_imatrix_load(p->imatrix_path, &j.imat, err))) goto done;
    if ((rc = make_plan(&j, err))) goto done;
    /* the output's folder must be writable: say so naming OUT */
    FILE *probe = fopen(tmp, "wb");
    if (!probe) {
        rc = slm_err_set(err, SLM_EIO, "cannot create '%s': %s", out_path, strerror(errno));
        goto done;
    }
    fclose(probe);
    made_tmp = true;
    if (!(j.pool = slm_pool_new(p->n_threads))) {
        rc = slm_err_set(err, SLM_ENOMEM, "cannot start %d threads", p->n_threads);
        goto done;
    }
    if ((rc = write_meta(&j, tmp, err))) goto done;
    if ((rc = write_tensors(&j, tmp, out_path, &st, err))) goto done;
    if (rename(tmp, out_path) != 0) {
        rc = slm_err_set(err, SLM_EIO, "cannot rename '%s' to '%s': %s", tmp, out_path, strerror(errno));
        goto done;
    }
    made_tmp = false;
    st.seconds = slm_now() - t0;
    if (stats) *stats = st;
done:
    if (made_tmp) unlink(tmp);
    slm_pool_free(j.pool);
    for (int64_t i = 0; j.plan && i < j.n; i++) slm_free(j.plan[i].name);
    slm_free(j.plan);
    slm_imatrix_free(j.imat);
    slm_gguf_close(in);
    return rc;
}
