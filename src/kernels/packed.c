/*
 * packed.c — load-time layouts (packed.h): the choice, packing and
 * unpacking in place, and the scalar reference product that the SIMD
 * kernels (x86/avx512_packed.c) are tested against bit for bit.
 */
#include "kernels/packed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "util/alloc.h"
#include "util/fp16.h"

#define P16_BLOCK 288   /* bytes of one panel block: 16 scales + 256 nibble bytes */

_Static_assert(P16_BLOCK == SLM_PACK_ROWS * sizeof(block_q4_0), "a panel block holds 16 rows' blocks");

static uint16_t ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

slm_layout slm_pack_choose(int32_t type, int64_t n_rows, int64_t n_cols) {
    const char *env = getenv("SLM_PACK");
    if (env && !strcmp(env, "0")) return SLM_LAYOUT_ROWS;
    if (type != SLM_TYPE_Q4_0 || n_rows <= 0 || n_rows % SLM_PACK_ROWS || n_cols <= 0 || n_cols % QK4_0)
        return SLM_LAYOUT_ROWS;
    /* only where a SIMD kernel reads the layout: the scalar reference is
     * for tests, and no faster than the rows' scalar kernel */
    if (!strcmp(slm_kernels_isa(), "scalar") || !slm_pack_tile(SLM_LAYOUT_Q4_0_P16, NULL)) return SLM_LAYOUT_ROWS;
    return SLM_LAYOUT_Q4_0_P16;
}

/* One panel: rows (file layout, row_bytes apart) -> panel blocks, or back. */
static void p16_panel(uint8_t *rows, uint8_t *panel, size_t row_bytes, int to_panel) {
    const size_t nb = row_bytes / sizeof(block_q4_0);
    for (size_t b = 0; b < nb; b++) {
        uint8_t *pb = panel + b * P16_BLOCK;
        for (int r = 0; r < SLM_PACK_ROWS; r++) {
            uint8_t *rb = rows + (size_t)r * row_bytes + b * sizeof(block_q4_0);
            if (to_panel) memcpy(pb + 2 * r, rb, 2);
            else memcpy(rb, pb + 2 * r, 2);
            for (int k = 0; k < 4; k++) {
                if (to_panel) memcpy(pb + 32 + 64 * k + 4 * r, rb + 2 + 4 * k, 4);
                else memcpy(rb + 2 + 4 * k, pb + 32 + 64 * k + 4 * r, 4);
            }
        }
    }
}

static int repack(slm_layout layout, void *data, size_t row_bytes, int64_t n_rows, int to_panel) {
    if (layout != SLM_LAYOUT_Q4_0_P16 || n_rows % SLM_PACK_ROWS || row_bytes % sizeof(block_q4_0)) return -1;
    const size_t pbytes = SLM_PACK_ROWS * row_bytes;
    uint8_t *tmp = slm_malloc(pbytes);
    if (!tmp) return -1;
    for (int64_t p = 0; p < n_rows / SLM_PACK_ROWS; p++) {
        uint8_t *at = (uint8_t *)data + (size_t)p * pbytes;
        memcpy(tmp, at, pbytes);
        if (to_panel) p16_panel(tmp, at, row_bytes, 1);
        else p16_panel(at, tmp, row_bytes, 0);
    }
    slm_free(tmp);
    return 0;
}

int slm_pack(slm_layout layout, void *data, size_t row_bytes, int64_t n_rows) {
    return repack(layout, data, row_bytes, n_rows, 1);
}

int slm_unpack(slm_layout layout, void *data, size_t row_bytes, int64_t n_rows) {
    return repack(layout, data, row_bytes, n_rows, 0);
}

void slm_pack_row_to_float(slm_layout layout, const void *data, size_t row_bytes, int64_t row, float *y, int64_t n) {
    (void)layout;
    const uint8_t *panel = (const uint8_t *)data + (size_t)(row / SLM_PACK_ROWS) * SLM_PACK_ROWS * row_bytes;
    const int l = (int)(row % SLM_PACK_ROWS);
    const slm_type_traits *tr = slm_type_traits_ref(SLM_TYPE_Q4_0);
    for (int64_t b = 0; b < n / QK4_0; b++) {
        const uint8_t *pb = panel + (size_t)b * P16_BLOCK;
        block_q4_0 blk;
        memcpy(&blk.d, pb + 2 * l, 2);
        for (int k = 0; k < 4; k++) memcpy(blk.qs + 4 * k, pb + 32 + 64 * k + 4 * l, 4);
        tr->to_float(&blk, y + b * QK4_0, QK4_0);
    }
}

size_t slm_pack_act_size(slm_layout layout, int64_t n) {
    if (layout != SLM_LAYOUT_Q4_0_P16 || n <= 0 || n % QK8_0) return 0;
    return (size_t)(n / QK8_0) * (sizeof(block_q8_0) + 2 * sizeof(int32_t));
}

size_t slm_pack_act_max(int32_t type, int64_t n) {
    return type == SLM_TYPE_Q4_0 ? slm_pack_act_size(SLM_LAYOUT_Q4_0_P16, n) : 0;
}

void slm_pack_act(slm_layout layout, const float *x, void *vy, int64_t n) {
    (void)layout;
    const int64_t nb = n / QK8_0;
    uint8_t *y = vy;
    slm_type_traits_get(SLM_TYPE_Q8_0)->from_float(x, y, n);   /* the same bytes on every ISA */
    uint8_t *corr = y + (size_t)nb * sizeof(block_q8_0), *dy = corr + (size_t)nb * sizeof(int32_t);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *yb = y + (size_t)b * sizeof(block_q8_0);
        int32_t sum = 0;
        for (int i = 0; i < QK8_0; i++) sum += (int8_t)yb[2 + i];
        int32_t c = -8 * sum;
        float d = slm_fp16_to_f32(ld16(yb));
        memcpy(corr + (size_t)b * 4, &c, 4);
        memcpy(dy + (size_t)b * 4, &d, 4);
    }
}

/* The reference: packed.h's definition of the result, one row and column
 * at a time. */
static void q4_0_p16_tile_ref(int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by,
                              int nr, int nc) {
    const int64_t nb = n / QK4_0;
    const uint8_t *x = vx, *y = vy;
    for (int p = 0; p < nr / SLM_PACK_ROWS; p++) {
        const uint8_t *panel = x + (size_t)p * SLM_PACK_ROWS * bx;
        for (int c = 0; c < nc; c++) {
            const uint8_t *yc = y + (size_t)c * by;
            for (int r = 0; r < SLM_PACK_ROWS; r++) {
                float tot = 0.0f;
                for (int64_t b0 = 0; b0 < nb; b0 += SLM_PACK_KB) {
                    float acc = 0.0f;
                    for (int64_t b = b0; b < nb && b < b0 + SLM_PACK_KB; b++) {
                        const uint8_t *pb = panel + (size_t)b * P16_BLOCK;
                        const uint8_t *yb = yc + (size_t)b * sizeof(block_q8_0);
                        const int8_t *yq = (const int8_t *)(yb + 2);
                        int is = 0;
                        for (int k = 0; k < 4; k++)
                            for (int j = 0; j < 4; j++) {
                                int v = pb[32 + 64 * k + 4 * r + j];
                                is += ((v & 15) - 8) * yq[4 * k + j] + ((v >> 4) - 8) * yq[16 + 4 * k + j];
                            }
                        float d = slm_fp16_to_f32(ld16(pb + 2 * r)) * slm_fp16_to_f32(ld16(yb));
                        acc = fmaf((float)is, d, acc);
                    }
                    tot = b0 ? tot + acc : acc;
                }
                s[(size_t)c * bs + (size_t)p * SLM_PACK_ROWS + (size_t)r] = tot;
            }
        }
    }
}

slm_vec_dot_tile_fn slm_pack_tile(slm_layout layout, const char *isa) {
    if (layout != SLM_LAYOUT_Q4_0_P16) return NULL;
    if (!isa) isa = strncmp(slm_kernels_isa(), "avx512", 6) ? slm_kernels_isa() : "avx512";
    if (!strcmp(isa, "scalar")) return q4_0_p16_tile_ref;
#if defined(SLM_X86_KERNELS)
    if (!strcmp(isa, "avx512") && slm_type_traits_isa(SLM_TYPE_Q4_0, "avx512")) return slm_x86_avx512_q4_0_p16_tile;
#endif
    return NULL;
}
