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
 * own slice. Norms, the token embeddings (one row per token) and the
 * vocabulary stay in the mapping. The mapping is kept (metadata and the rest
 * point into it); slm_model_free unmaps the region.
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
#include "model/model.h"
#include "util/alloc.h"
#include "util/err.h"

#define HUGE_PAGE (2u << 20)
#define MAX_MATS 8192
#define MAX_COPY_THREADS 16

typedef struct copy_item { slm_mat *m; int64_t file_off; size_t nbytes; unsigned char *dst; } copy_item;

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
    size_t lo = j->total / (size_t)j->nth * (size_t)ith;
    size_t hi = ith == j->nth - 1 ? j->total : j->total / (size_t)j->nth * (size_t)(ith + 1);
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
    if (!m->tied_output && m->output.data != m->tok_embd.data) add(it, &n, &m->output);
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
    pthread_t th[MAX_COPY_THREADS];
    copy_arg args[MAX_COPY_THREADS];
    bool started[MAX_COPY_THREADS] = { false };
    for (int t = 0; t < j.nth; t++) args[t] = (copy_arg){ &j, t };
    for (int t = 1; t < j.nth; t++) started[t] = pthread_create(&th[t], NULL, copy_main, &args[t]) == 0;
    copy_main(&args[0]);
    for (int t = 1; t < j.nth; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else copy_main(&args[t]);   /* no thread for this slice: copy it here */
    }
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
    m->resident = raw;
    m->resident_len = len;
out:
    if (fd >= 0) close(fd);
    slm_free(it);
    return rc;
}
