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
#include "kernels/quants.h"
#include "util/alloc.h"
#include "util/fp16.h"

/* Both layouts share one shape: a row's block is H half-words (scales)
 * followed by D dwords; in a panel block, half-word h of row r sits at
 * 32h + 2r and dword k at 32H + 64k + 4r, so every field is one 32- or
 * 64-byte vector whose lanes are the 16 rows. */
typedef struct shape { int32_t type; int64_t qk; size_t blk; int H, D; } shape;

static const shape SHAPES[] = {
    [SLM_LAYOUT_Q4_0_P16] = { SLM_TYPE_Q4_0, QK4_0, sizeof(block_q4_0), 1, 4 },   /* d | 16 nibble bytes      */
    [SLM_LAYOUT_Q4_K_P16] = { SLM_TYPE_Q4_K, QK_K, sizeof(block_q4_K), 2, 35 },   /* d dmin | scales[12] qs[128] */
};
_Static_assert(sizeof(block_q4_0) == 2 * 1 + 4 * 4 && sizeof(block_q4_K) == 2 * 2 + 4 * 35, "block = H halves + D dwords");

static const shape *shape_of(slm_layout l) {
    return l > SLM_LAYOUT_ROWS && l < (int)(sizeof SHAPES / sizeof SHAPES[0]) ? &SHAPES[l] : NULL;
}

static uint16_t ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* The packed layout of a type, or SLM_LAYOUT_ROWS. */
static slm_layout layout_of(int32_t type) {
    return type == SLM_TYPE_Q4_0 ? SLM_LAYOUT_Q4_0_P16 : type == SLM_TYPE_Q4_K ? SLM_LAYOUT_Q4_K_P16 : SLM_LAYOUT_ROWS;
}

slm_layout slm_pack_choose(int32_t type, int64_t n_rows, int64_t n_cols) {
    const char *env = getenv("SLM_PACK");
    if (env && !strcmp(env, "0")) return SLM_LAYOUT_ROWS;
    slm_layout l = layout_of(type);
    if (l == SLM_LAYOUT_ROWS || n_rows <= 0 || n_rows % SLM_PACK_ROWS || n_cols <= 0 || n_cols % shape_of(l)->qk)
        return SLM_LAYOUT_ROWS;
    /* only where a SIMD kernel reads the layout: the scalar reference is
     * for tests, and no faster than the rows' scalar kernel */
    if (!strcmp(slm_kernels_isa(), "scalar") || !slm_pack_tile(l, NULL)) return SLM_LAYOUT_ROWS;
    return l;
}

/* One panel: rows (file layout, row_bytes apart) -> panel blocks, or back. */
static void panel_xform(const shape *sh, uint8_t *rows, uint8_t *panel, size_t row_bytes, int to_panel) {
    const size_t nb = row_bytes / sh->blk, pblk = SLM_PACK_ROWS * sh->blk;
    for (size_t b = 0; b < nb; b++) {
        uint8_t *pb = panel + b * pblk;
        for (int r = 0; r < SLM_PACK_ROWS; r++) {
            uint8_t *rb = rows + (size_t)r * row_bytes + b * sh->blk;
            for (int h = 0; h < sh->H; h++) {
                if (to_panel) memcpy(pb + 32 * h + 2 * r, rb + 2 * h, 2);
                else memcpy(rb + 2 * h, pb + 32 * h + 2 * r, 2);
            }
            for (int k = 0; k < sh->D; k++) {
                uint8_t *pk = pb + 32 * sh->H + 64 * k + 4 * r, *rk = rb + 2 * sh->H + 4 * k;
                if (to_panel) memcpy(pk, rk, 4);
                else memcpy(rk, pk, 4);
            }
        }
    }
}

static int repack(slm_layout layout, void *data, size_t row_bytes, int64_t n_rows, int to_panel) {
    const shape *sh = shape_of(layout);
    if (!sh || n_rows % SLM_PACK_ROWS || row_bytes % sh->blk) return -1;
    const size_t pbytes = SLM_PACK_ROWS * row_bytes;
    uint8_t *tmp = slm_malloc(pbytes);
    if (!tmp) return -1;
    for (int64_t p = 0; p < n_rows / SLM_PACK_ROWS; p++) {
        uint8_t *at = (uint8_t *)data + (size_t)p * pbytes;
        memcpy(tmp, at, pbytes);
        if (to_panel) panel_xform(sh, tmp, at, row_bytes, 1);
        else panel_xform(sh, at, tmp, row_bytes, 0);
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
    const shape *sh = shape_of(layout);
    const uint8_t *panel = (const uint8_t *)data + (size_t)(row / SLM_PACK_ROWS) * SLM_PACK_ROWS * row_bytes;
    const int l = (int)(row % SLM_PACK_ROWS);
    const slm_type_traits *tr = slm_type_traits_ref(sh->type);
    uint8_t blk[sizeof(block_q4_K)];
    for (int64_t b = 0; b < n / sh->qk; b++) {
        const uint8_t *pb = panel + (size_t)b * SLM_PACK_ROWS * sh->blk;
        for (int h = 0; h < sh->H; h++) memcpy(blk + 2 * h, pb + 32 * h + 2 * l, 2);
        for (int k = 0; k < sh->D; k++) memcpy(blk + 2 * sh->H + 4 * k, pb + 32 * sh->H + 64 * k + 4 * l, 4);
        tr->to_float(blk, y + b * sh->qk, sh->qk);
    }
}

size_t slm_pack_act_size(slm_layout layout, int64_t n) {
    if (layout == SLM_LAYOUT_Q4_K_P16) return slm_row_size(SLM_TYPE_Q8_K, n);   /* Q8_K as it is: it has bsums */
    if (layout != SLM_LAYOUT_Q4_0_P16 || n <= 0 || n % QK8_0) return 0;
    return (size_t)(n / QK8_0) * (sizeof(block_q8_0) + 2 * sizeof(int32_t));
}

size_t slm_pack_act_max(int32_t type, int64_t n) { return slm_pack_act_size(layout_of(type), n); }

bool slm_pack_act_plain(slm_layout layout) { return layout == SLM_LAYOUT_Q4_K_P16; }

void slm_pack_act(slm_layout layout, const float *x, void *vy, int64_t n) {
    if (layout == SLM_LAYOUT_Q4_K_P16) {
        slm_type_traits_get(SLM_TYPE_Q8_K)->from_float(x, vy, n);
        return;
    }
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
                        const uint8_t *pb = panel + (size_t)b * 288;
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

/* Q4_K panels (packed.h's definition of the result). */
static void q4_K_p16_tile_ref(int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by,
                              int nr, int nc) {
    const int64_t nb = n / QK_K;
    const size_t pblk = SLM_PACK_ROWS * sizeof(block_q4_K);
    const uint8_t *x = vx, *y = vy;
    for (int p = 0; p < nr / SLM_PACK_ROWS; p++) {
        const uint8_t *panel = x + (size_t)p * SLM_PACK_ROWS * bx;
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < SLM_PACK_ROWS; r++) {
                float tot = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *pb = panel + (size_t)b * pblk;
                    block_q8_K yb;
                    memcpy(&yb, y + (size_t)c * by + (size_t)b * sizeof(block_q8_K), sizeof yb);
                    uint8_t scales[12], qs[128];
                    for (int k = 0; k < 3; k++) memcpy(scales + 4 * k, pb + 64 + 64 * k + 4 * r, 4);
                    for (int k = 0; k < 32; k++) memcpy(qs + 4 * k, pb + 256 + 64 * k + 4 * r, 4);
                    const float d = slm_fp16_to_f32(ld16(pb + 2 * r)), dmin = slm_fp16_to_f32(ld16(pb + 32 + 2 * r));
                    float a = 0.0f;
                    int32_t mi = 0;
                    for (int sb = 0; sb < 8; sb++) {
                        int sc, m;
                        slm_k4_scale_min(sb, scales, &sc, &m);
                        int32_t is = 0;
                        for (int i = 0; i < 32; i++) {
                            int q = sb % 2 ? qs[32 * (sb / 2) + i] >> 4 : qs[32 * (sb / 2) + i] & 15;
                            is += q * yb.qs[32 * sb + i];
                        }
                        a = fmaf((float)is, d * (float)sc, a);
                        mi += m * (yb.bsums[2 * sb] + yb.bsums[2 * sb + 1]);
                    }
                    float v = fmaf(-(yb.d * dmin), (float)mi, yb.d * a);
                    tot = b ? tot + v : v;
                }
                s[(size_t)c * bs + (size_t)p * SLM_PACK_ROWS + (size_t)r] = tot;
            }
    }
}

slm_vec_dot_tile_fn slm_pack_tile(slm_layout layout, const char *isa) {
    if (!shape_of(layout)) return NULL;
    const bool k = layout == SLM_LAYOUT_Q4_K_P16;
    if (!isa) isa = strncmp(slm_kernels_isa(), "avx512", 6) ? slm_kernels_isa() : "avx512";
    if (!strcmp(isa, "scalar")) return k ? q4_K_p16_tile_ref : q4_0_p16_tile_ref;
#if defined(SLM_X86_KERNELS)
    if (!strcmp(isa, "avx512") && slm_type_traits_isa(SLM_TYPE_Q4_0, "avx512"))
        return k ? slm_x86_avx512_q4_K_p16_tile : slm_x86_avx512_q4_0_p16_tile;
#endif
    return NULL;
}
