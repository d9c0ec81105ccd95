/*
 * kv.h — the paged KV cache (private to src/model/).
 *
 * Memory is one pool of fixed-size blocks of `block` positions. A block
 * holds, for every layer, K rows [block][kv_dim] and V transposed
 * [kv_dim][block] (so attention's weighted sum over positions is a dot
 * product). Each sequence has a block table mapping position/block to a
 * pool block; blocks are reference-counted so that sequences can share a
 * prompt prefix (prefix caching). Writing into a shared block copies it
 * first (copy on write). Any sequence may grow to n_ctx positions while
 * blocks are free: parallelism never divides the context.
 */
#ifndef SLM_MODEL_KV_H
#define SLM_MODEL_KV_H

#include <stddef.h>
#include <stdint.h>

#include "slm/slm.h"

typedef struct slm_kvp {
    int32_t n_layer, kv_dim, block, n_ctx, n_seq;
    int32_t n_blocks, n_free;
    int32_t type;              /* SLM_TYPE_F16 or SLM_TYPE_F32                 */
    size_t  esize;             /* bytes per element                            */
    size_t  layer_bytes;       /* one layer's K (or V) part of a block         */
    unsigned char *k, *v;      /* [n_blocks][n_layer][layer_bytes]             */
    int32_t *refs;             /* per block; 0 = free                          */
    int32_t *free_list;        /* stack of free block ids                      */
    int32_t *tables;           /* [n_seq][max_blocks] block ids, -1 = none     */
    int32_t max_blocks;        /* ceil(n_ctx / block)                          */
    int32_t *len;              /* positions held per sequence                  */
} slm_kvp;

int  slm_kvp_init(slm_kvp *kv, int32_t n_layer, int32_t kv_dim, int32_t n_ctx, int32_t n_seq, int32_t block,
                 int32_t n_blocks, bool f32, slm_err *err);
void slm_kvp_destroy(slm_kvp *kv);

/* Blocks needed to extend seq from its length to pos_end (exclusive),
 * counting the copy a shared partial block needs. */
int32_t slm_kvp_blocks_needed(const slm_kvp *kv, int32_t seq, int32_t pos_end);
/* Makes positions [len, pos_end) of seq writable (allocating and copying
 * shared blocks); SLM_EBUSY when the pool cannot supply them (nothing
 * changed then). Does not change len. */
int  slm_kvp_reserve(slm_kvp *kv, int32_t seq, int32_t pos_end);
/* Pointer to the K row of (seq, layer, pos) / the V column block base:
 * V element d of position pos is at v_col(seq, il, pos) + d * block * esize. */
unsigned char *slm_kvp_k_row(const slm_kvp *kv, int32_t seq, int32_t il, int32_t pos);
unsigned char *slm_kvp_v_base(const slm_kvp *kv, int32_t seq, int32_t il, int32_t pos);
/* Drops positions >= pos of seq, releasing whole blocks past it. */
void slm_kvp_truncate(slm_kvp *kv, int32_t seq, int32_t pos);
/* dst forgets its positions and shares src's first n_pos (blocks referenced,
 * not copied). */
void slm_kvp_share(slm_kvp *kv, int32_t dst, int32_t src, int32_t n_pos);

#endif
