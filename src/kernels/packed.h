/*
 * packed.h — weight layouts chosen at load time ("packed"), in which the
 * product kernels of this CPU read a matrix with fewer instructions than
 * in the file's row-by-row layout.
 *
 * A packed matrix occupies exactly the bytes of its rows (same size, same
 * place), so a loader packs in place after reading the weights. Rows are
 * grouped in panels of SLM_PACK_ROWS; panel p starts at byte
 * p * SLM_PACK_ROWS * row_bytes, which is where row p * SLM_PACK_ROWS
 * starts in the file layout, so a row range that starts at a panel
 * boundary starts at the same address in both layouts.
 *
 * SLM_LAYOUT_Q4_0_P16 (Q4_0 weights, n_rows a multiple of 16): per panel,
 * per block b of 32 columns, 288 bytes =
 *   16 fp16 scales d (row r at bytes 2r), then
 *   4 × 64 bytes: vector k holds, in its dword lane r, bytes 4k..4k+3 of
 *   row r's 16 nibble bytes,
 * so that a vector's low nibbles are elements 4k..4k+3 of the 16 rows and
 * its high nibbles elements 16+4k..16+4k+3 ("lanes are rows"): one integer
 * dot-product chain against a broadcast activation quad yields 16 rows'
 * sums, with no horizontal reduction and no per-call transposition.
 *
 * SLM_LAYOUT_Q4_K_P16 (Q4_K weights, n_rows a multiple of 16): per panel,
 * per super-block of 256 columns, 2304 bytes = 16 fp16 d, 16 fp16 dmin,
 * then 35 × 64 bytes whose vector k holds in lane r the dword k of row r's
 * scales[12] and qs[128] (k = 0..2: the packed 6-bit scales and mins;
 * k = 3 + 8j + i: nibble bytes 32j + 4i.. of row r, low nibbles in
 * sub-block 2j, high nibbles in sub-block 2j + 1).
 *
 * Results. The product of a packed matrix is defined per row and column,
 * exactly, so that every kernel of a layout (scalar reference, AVX-512)
 * computes it to the bit, whatever the number of columns in the call: a
 * token's result does not depend on which other tokens share its batch
 * (continuous batching changes no bit).
 *   Q4_0: blocks are summed in chunks of SLM_PACK_KB blocks, each chunk from
 *   zero with fmaf(float(isum_b), d_row_b * d_col_b, acc) in block order,
 *   and the chunks' sums added in order.
 *   Q4_K: per super-block, a = fmaf(float(isum_s), d * float(sc_s), a) over
 *   the sub-blocks s in order from zero, mi = Σ m_s × (the column's two
 *   bsums of s) in integers, value = fmaf(-(d_col * dmin), float(mi),
 *   d_col * a); super-blocks added in order.
 */
#ifndef SLM_KERNELS_PACKED_H
#define SLM_KERNELS_PACKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

#define SLM_PACK_ROWS 16
#define SLM_PACK_KB 16

typedef enum slm_layout {
    SLM_LAYOUT_ROWS = 0,      /* the file's layout: row after row          */
    SLM_LAYOUT_Q4_0_P16 = 1,  /* Q4_0 in 16-row panels, see above          */
    SLM_LAYOUT_Q4_K_P16 = 2,  /* Q4_K in 16-row panels, see above          */
} slm_layout;

/* The layout the active kernels (slm_kernels_isa) want for a matrix of
 * this type and shape: SLM_LAYOUT_ROWS when no packed kernel fits (other
 * types, n_rows not a multiple of SLM_PACK_ROWS, a CPU without the
 * instructions) or when SLM_PACK=0 is set in the environment. */
slm_layout slm_pack_choose(int32_t type, int64_t n_rows, int64_t n_cols);

/* Rewrites a matrix of n_rows rows (row_bytes apart) from the file layout
 * into `layout`, in place. Rows may be split between callers at panel
 * boundaries (threads packing parts of one matrix). Returns 0, or -1 when
 * the scratch for one panel cannot be allocated (data unchanged then). */
int slm_pack(slm_layout layout, void *data, size_t row_bytes, int64_t n_rows);
/* The inverse: back to the file layout, in place (tests, tools). */
int slm_unpack(slm_layout layout, void *data, size_t row_bytes, int64_t n_rows);

/* Row `row` of a packed matrix (n elements, row_bytes per row in the file
 * layout) as floats: the same values the file layout's to_float gives
 * (token embeddings tied to a packed output matrix). */
void slm_pack_row_to_float(slm_layout layout, const void *data, size_t row_bytes, int64_t row, float *y, int64_t n);

/* The activations of a packed product, one column of n elements: the
 * Q8_0 blocks (as the Q8_0 reference quantizer writes them), then per
 * block the int32 offset correction (-8 × the sum of its 32 quants) and
 * the block's scale as a float, so the kernels, split over threads in
 * chunks of rows, need no per-call preparation. slm_pack_act_size: bytes
 * per column (0 if n is not a multiple of 32); slm_pack_act writes one. */
size_t slm_pack_act_size(slm_layout layout, int64_t n);
void slm_pack_act(slm_layout layout, const float *x, void *y, int64_t n);
/* The largest slm_pack_act_size of any layout of the type (0: none), for
 * sizing scratch before the layout is known. */
size_t slm_pack_act_max(int32_t type, int64_t n);
/* True when the layout's activations are exactly the type's vec_dot_type
 * rows (Q4_K: Q8_K, whose bsums it uses), so a product can share them with
 * file-layout matrices of the same vec_dot_type. */
bool slm_pack_act_plain(slm_layout layout);

/* The tile kernel of a layout: the slm_vec_dot_tile_fn contract with x at
 * a panel boundary of a packed matrix, bx its row_bytes and nr a multiple
 * of SLM_PACK_ROWS; y columns by bytes apart, each written by
 * slm_pack_act. isa: "scalar", "avx512", or NULL for the active set; NULL
 * when that set has no kernel for the layout. */
slm_vec_dot_tile_fn slm_pack_tile(slm_layout layout, const char *isa);

#endif
