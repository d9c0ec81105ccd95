/*
 * kv.c — see kv.h. Blocks are handed out from a free stack; a block's
 * reference count says how many sequence tables point at it. Reserving is
 * all-or-nothing: the blocks a step needs are counted first, so a failed
 * reservation leaves every table as it was.
 */
#include "model/kv.h"

#include <string.h>

#include "kernels/types.h"
#include "util/alloc.h"
#include "util/err.h"

int slm_kvp_init(slm_kvp *kv, int32_t n_layer, int32_t kv_dim, int32_t n_ctx, int32_t n_seq, int32_t block,
                int32_t n_blocks, bool f32, slm_err *err) {
    memset(kv, 0, sizeof *kv);
    kv->n_layer = n_layer;
    kv->kv_dim = kv_dim;
    kv->block = block;
    kv->n_ctx = n_ctx;
    kv->n_seq = n_seq;
    kv->n_blocks = n_blocks;
    kv->type = f32 ? SLM_TYPE_F32 : SLM_TYPE_F16;
    kv->esize = f32 ? 4 : 2;
    kv->layer_bytes = (size_t)block * (size_t)kv_dim * kv->esize;
    kv->max_blocks = (n_ctx + block - 1) / block;
    size_t pool;
    if (!slm_mul_ok(kv->layer_bytes, (size_t)n_layer, &pool) || !slm_mul_ok(pool, (size_t)n_blocks, &pool))
        return slm_err_set(err, SLM_ENOMEM, "KV pool size overflows");
    kv->k = slm_malloc(pool ? pool : 1);
    kv->v = kv->k ? slm_calloc(1, pool ? pool : 1) : NULL;
    kv->refs = slm_calloc((size_t)n_blocks, sizeof *kv->refs);
    kv->free_list = slm_malloc((size_t)n_blocks * sizeof *kv->free_list);
    kv->tables = slm_malloc((size_t)n_seq * (size_t)kv->max_blocks * sizeof *kv->tables);
    kv->len = slm_calloc((size_t)n_seq, sizeof *kv->len);
    if (!kv->k || !kv->v || !kv->refs || !kv->free_list || !kv->tables || !kv->len) {
        double mib = 2.0 * (double)pool / (1 << 20);
        slm_kvp_destroy(kv);
        return slm_err_set(err, SLM_ENOMEM, "cannot allocate the KV cache (%.0f MiB); lower the context or the KV memory", mib);
    }
    for (int32_t i = 0; i < n_blocks; i++) kv->free_list[i] = n_blocks - 1 - i;
    kv->n_free = n_blocks;
    for (size_t i = 0; i < (size_t)n_seq * (size_t)kv->max_blocks; i++) kv->tables[i] = -1;
    return 0;
}

void slm_kvp_destroy(slm_kvp *kv) {
    slm_free(kv->k);
    slm_free(kv->v);
    slm_free(kv->refs);
    slm_free(kv->free_list);
    slm_free(kv->tables);
    slm_free(kv->len);
    memset(kv, 0, sizeof *kv);
}

static int32_t *table(const slm_kvp *kv, int32_t seq) { return kv->tables + (size_t)seq * (size_t)kv->max_blocks; }

static size_t block_bytes(const slm_kvp *kv) { return kv->layer_bytes * (size_t)kv->n_layer; }

int32_t slm_kvp_blocks_needed(const slm_kvp *kv, int32_t seq, int32_t pos_end) {
    int32_t len = kv->len[seq], need = 0;
    if (pos_end <= len) return 0;
    const int32_t *t = table(kv, seq);
    for (int32_t b = len / kv->block; b <= (pos_end - 1) / kv->block; b++)
        if (t[b] < 0 || kv->refs[t[b]] > 1) need++;
    return need;
}

static int32_t take_block(slm_kvp *kv) {
    int32_t b = kv->free_list[--kv->n_free];
    kv->refs[b] = 1;
    return b;
}

static void put_block(slm_kvp *kv, int32_t b) {
    if (--kv->refs[b] == 0) kv->free_list[kv->n_free++] = b;
}

int slm_kvp_reserve(slm_kvp *kv, int32_t seq, int32_t pos_end) {
    if (slm_kvp_blocks_needed(kv, seq, pos_end) > kv->n_free) return SLM_EBUSY;
    int32_t *t = table(kv, seq);
    int32_t len = kv->len[seq];
    for (int32_t b = len / kv->block; pos_end > len && b <= (pos_end - 1) / kv->block; b++) {
        if (t[b] < 0) {
            t[b] = take_block(kv);
        } else if (kv->refs[t[b]] > 1) { /* copy on write */
            int32_t nb = take_block(kv);
            memcpy(kv->k + (size_t)nb * block_bytes(kv), kv->k + (size_t)t[b] * block_bytes(kv), block_bytes(kv));
            memcpy(kv->v + (size_t)nb * block_bytes(kv), kv->v + (size_t)t[b] * block_bytes(kv), block_bytes(kv));
            put_block(kv, t[b]);
            t[b] = nb;
        }
    }
    return 0;
}

unsigned char *slm_kvp_k_row(const slm_kvp *kv, int32_t seq, int32_t il, int32_t pos) {
    int32_t b = table(kv, seq)[pos / kv->block];
    return kv->k + (size_t)b * block_bytes(kv) + (size_t)il * kv->layer_bytes +
           (size_t)(pos % kv->block) * (size_t)kv->kv_dim * kv->esize;
}

unsigned char *slm_kvp_v_base(const slm_kvp *kv, int32_t seq, int32_t il, int32_t pos) {
    int32_t b = table(kv, seq)[pos / kv->block];
    return kv->v + (size_t)b * block_bytes(kv) + (size_t)il * kv->layer_bytes + (size_t)(pos % kv->block) * kv->esize;
}

void slm_kvp_truncate(slm_kvp *kv, int32_t seq, int32_t pos) {
    if (pos < 0) pos = 0;
    if (pos > kv->len[seq]) pos = kv->len[seq]; /* also drops blocks reserved past len */
    int32_t *t = table(kv, seq);
    for (int32_t b = (pos + kv->block - 1) / kv->block; b < kv->max_blocks; b++) {
        if (t[b] >= 0) put_block(kv, t[b]);
        t[b] = -1;
    }
    kv->len[seq] = pos;
}

void slm_kvp_share(slm_kvp *kv, int32_t dst, int32_t src, int32_t n_pos) {
    slm_kvp_truncate(kv, dst, 0);
    if (n_pos > kv->len[src]) n_pos = kv->len[src];
    const int32_t *ts = table(kv, src);
    int32_t *td = table(kv, dst);
    for (int32_t b = 0; b < (n_pos + kv->block - 1) / kv->block; b++) {
        td[b] = ts[b];
        kv->refs[ts[b]]++;
    }
    kv->len[dst] = n_pos;
}
