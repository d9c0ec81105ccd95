/*
 * resident.c — the matmul weights in anonymous huge-page memory.
 *
 * Generation reads every weight once per token, so its speed is the memory
 * bandwidth the kernels get. Reading them through the file mapping costs
 * ~10-20 % of it on Linux: page-cache pages are 4 KiB (file-backed
 * transparent huge pages are not available on common file systems), and the
 * TLB misses of a 600 MB stream show. So, by default, the 2-D weights that
 * the matrix products read are copied at load into one anonymous region,
 * 2 MiB aligned and madvise(MADV_HUGEPAGE)d, and their slm_mat.data is
 * pointed there. The copy is pread() from the file (the kernel copies from
 * the page cache; the mapping itself is never faulted in, so resident
 * memory stays one copy of the weights), on several threads, each into its
 * own slice. Norms, the token embeddings (one row per token; unless they
 * are also the output matrix) and the vocabulary stay in the mapping. The
 * mapping is kept (metadata and the rest point into it); slm_model_free
 * unmaps the region.
 *
 * Once copied, matrices for which the active kernels have a faster layout
 * (kernels/packed.h: Q4_0 in 16-row panels on AVX-512) are rewritten into
 * it in place, panels shared out to the same threads; slm_mat.layout says
 * so. The mapping (slm_mat.mapped) keeps the file's layout.
 *
 * The cost is load time (a page-cache read of the weights, ~0.1-0.3 s per GB
 * warm) and that two processes on one file no longer share its pages:
 * SLM_WEIGHTS_MMAP keeps the old behaviour.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/packed.h"
#include "model/model.h"
#include "util/alloc.h"
#include "util/err.h"

#define HUGE_PAGE (2u << 20)
#define MAX_MATS 8192
#define MAX_COPY_THREADS 16

typedef struct copy_item {
    slm_mat *m;
    int64_t file_off;
    size_t nbytes;
    unsigned char *dst;
    slm_layout layout;          /* the packed layout it gets, or ROWS      */
} copy_item;

/* Thread ith's share [*lo, *hi) of total bytes split over nth threads. */
static void share(size_t total, int ith, int nth, size_t *lo, size_t *hi) {
    *lo = total / (size_t)nth * (size_t)ith;
    *hi = ith == nth - 1 ? total : total / (size_t)nth * (size_t)(ith + 1);
}

/* Runs fn on nth argument structs (stride bytes apart): 1..nth-1 on new
 * threads, 0 here, and any whose thread could not start here as well. */
static void run_threads(void *(*fn)(void *), void *args, size_t stride, int nth) {
    pthread_t th[MAX_COPY_THREADS];
    bool started[MAX_COPY_THREADS] = { false };
    for (int t = 1; t < nth; t++) started[t] = pthread_create(&th[t], NULL, fn, (char *)args + (size_t)t * stride) == 0;
    fn(args);
    for (int t = 1; t < nth; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else fn((char *)args + (size_t)t * stride);
    }
}

typedef struct copy_job {
    int fd;
    copy_item *items; int n;
    size_t total;
    int nth;
    int failed_errno;           /* first error (any thread), 0 if none      */
    pthread_mutex_t mu;         /* guards failed_errno                      */
} copy_job;

typedef struct copy_arg { copy_job *j; int ith; } copy_arg;

/* Thread ith copies the bytes [total*ith/nth, total*(ith+1)/nth) of the
 * concatenated items, so the threads share the work evenly whatever the
 * tensor sizes. */
static void *copy_main(void *a) {
    copy_job *j = ((copy_arg *)a)->j;
    int ith = ((copy_arg *)a)->ith;
    size_t lo, hi;
    share(j->total, ith, j->nth, &lo, &hi);
    size_t pos = 0;
    for (int i = 0; i < j->n && pos < hi; i++) {
        size_t a0 = pos, a1 = pos + j->items[i].nbytes;
        pos = a1;
        size_t s = a0 > lo ? a0 : lo, e = a1 < hi ? a1 : hi;
        while (s < e) {
            ssize_t k = pread(j->fd, j->items[i].dst + (s - a0), e - s, j->items[i].file_off + (off_t)(s - a0));
            if (k <= 0) {
                if (k < 0 && errno == EINTR) continue;
                pthread_mutex_lock(&j->mu);
                if (!j->failed_errno) j->failed_errno = k < 0 ? errno : EIO;
                pthread_mutex_unlock(&j->mu);
                return NULL;
            }
            s += (size_t)k;
        }
    }
    return NULL;
}

/* The pack phase: thread ith packs the panels of the items to be packed
 * whose first byte lies in its share of their concatenation. */
typedef struct pack_arg { copy_item *items; int n, ith, nth; size_t total; int failed; } pack_arg;

static void *pack_main(void *a) {
    pack_arg *pa = a;
    size_t lo, hi, pos = 0;
    share(pa->total, pa->ith, pa->nth, &lo, &hi);
    for (int i = 0; i < pa->n; i++) {
        const copy_item *c = &pa->items[i];
        if (c->layout == SLM_LAYOUT_ROWS) continue;
        const size_t pbytes = (size_t)SLM_PACK_ROWS * c->m->row_bytes, np = c->nbytes / pbytes;
        /* panels p with lo <= pos + p * pbytes < hi */
        size_t p0 = lo > pos ? (lo - pos + pbytes - 1) / pbytes : 0, p1 = hi > pos ? (hi - pos + pbytes - 1) / pbytes : 0;
        if (p1 > np) p1 = np;
        pos += c->nbytes;
        if (p0 < p1 && slm_pack(c->layout, c->dst + p0 * pbytes, c->m->row_bytes, (int64_t)(p1 - p0) * SLM_PACK_ROWS))
            pa->failed = 1;
    }
    return NULL;
}

/* Packs every item the active kernels have a layout for, on nth threads;
 * on success marks their slm_mat.layout. Returns 0 or -1 (out of memory
 * for a panel's scratch: the matrices are then in an unknown state). */
static int pack_items(copy_item *it, int n, int nth) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        it[i].layout = slm_pack_choose(it[i].m->type, it[i].m->ne1, it[i].m->ne0);
        if (it[i].layout != SLM_LAYOUT_ROWS) total += it[i].nbytes;
    }
    if (!total) return 0;
    pack_arg args[MAX_COPY_THREADS];
    for (int t = 0; t < nth; t++) args[t] = (pack_arg){ it, n, t, nth, total, 0 };
    run_threads(pack_main, args, sizeof args[0], nth);
    for (int t = 0; t < nth; t++)
        if (args[t].failed) return -1;
    for (int i = 0; i < n; i++) it[i].m->layout = (int32_t)it[i].layout;
    return 0;
}

static void add(copy_item *items, int *n, slm_mat *m) {
    if (m->data && *n < MAX_MATS) items[(*n)++] = (copy_item){ .m = m, .nbytes = (size_t)m->ne1 * m->row_bytes };
}

int slm_model_make_resident(slm_model *m, const char *path, int n_threads, slm_err *err) {
    int n = 0, rc = 0, fd = -1;
    size_t cap = (size_t)m->hp.n_layer * 8 + 1;
    if (cap > MAX_MATS) cap = MAX_MATS;
    copy_item *it = slm_calloc(cap, sizeof *it);
    if (!it) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        slm_layer *L = &m->layers[il];
        slm_mat *lm[] = { &L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int i = 0; i < 8; i++) add(it, &n, lm[i]);
    }
    /* tied: the output matrix is the embeddings; made resident (and packed)
     * as the output, and the embedding lookup then reads that copy */
    add(it, &n, &m->output);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        it[i].file_off = slm_gguf_file_offset(m->gguf, it[i].m->data);
        if (it[i].file_off < 0) goto out;   /* not file-backed: nothing to do */
        total += (it[i].nbytes + 63) & ~(size_t)63;
    }
    if (!total) goto out;
    size_t len = (total + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE + HUGE_PAGE;
    unsigned char *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        rc = slm_err_set(err, SLM_ENOMEM, "cannot allocate %zu MiB for the weights", total >> 20);
        goto out;
    }
    unsigned char *base = (unsigned char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    madvise(base, len - (size_t)(base - raw), MADV_HUGEPAGE);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        it[i].dst = base + off;
        off += (it[i].nbytes + 63) & ~(size_t)63;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        munmap(raw, len);
        rc = slm_err_set(err, SLM_EIO, "%s: cannot reopen to read the weights: %s", path, strerror(errno));
        goto out;
    }
    copy_job j = { .fd = fd, .items = it, .n = n, .nth = n_threads > 0 ? n_threads : 1 };
    for (int i = 0; i < n; i++) j.total += it[i].nbytes;
    if (j.nth > MAX_COPY_THREADS) j.nth = MAX_COPY_THREADS;
    pthread_mutex_init(&j.mu, NULL);
    copy_arg args[MAX_COPY_THREADS];
    for (int t = 0; t < j.nth; t++) args[t] = (copy_arg){ &j, t };
    run_threads(copy_main, args, sizeof args[0], j.nth);
    pthread_mutex_destroy(&j.mu);
    if (j.failed_errno) {
        munmap(raw, len);
        rc = slm_err_set(err, SLM_EIO, "%s: reading the weights: %s", path, strerror(j.failed_errno));
        goto out;
    }
    for (int i = 0; i < n; i++) {
        it[i].m->mapped = it[i].m->data;   /* tools match tensors by their place in the file */
        it[i].m->data = it[i].dst;
    }
    if (pack_items(it, n, j.nth)) {
        munmap(raw, len);
        for (int i = 0; i < n; i++) it[i].m->data = it[i].m->mapped;
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory packing the weights");
        goto out;
    }
    if (m->tied_output) {
        m->tok_embd.data = m->output.data;
        m->tok_embd.layout = m->output.layout;
    }
    m->resident = raw;
    m->resident_len = len;
out:
    if (fd >= 0) close(fd);
    slm_free(it);
    return rc;
}
