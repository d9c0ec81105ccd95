/*
 * mix.c — the per-tensor type rules of the quantization mixes.
 *
 * A mix has a base type for most 2-D weights; a few tensors that hurt the
 * output most when coarse get more bits. The choices are llama.cpp's
 * (llama_tensor_get_type in src/llama-quant.cpp, read as a reference), so
 * an slm Q4_K_M has the tensor types users expect of a Q4_K_M; only the
 * dense llama-family cases are kept (no MoE, Falcon or IQ rules). They are
 * applied in this order:
 *
 * 1. Output projection (output.weight, or token_embd.weight when the model
 *    ties the two): Q6_K for every quantized mix except Q8_0, which keeps
 *    Q8_0; Q8_0 when the rows are not a multiple of the base type's block.
 *    The logits are read straight off this matrix, so its error is not
 *    averaged away by later layers.
 * 2. The rule table RULES below, per mix and tensor category; the first
 *    row whose condition holds wins. Conditions index layers: for attn_v
 *    by its ordinal among the attn_v tensors (= the layer), for ffn_down by
 *    the layer of n_layer. "more bits" is llama.cpp's use_more_bits: the
 *    first and last eighth of the layers and every third layer between.
 *    Note: llama.cpp's attn_v branch also catches fused attn_qkv tensors
 *    (phi3) before its own attn_qkv branch, so here too attn_qkv follows
 *    the attn_v rules.
 * 3. A llama with 80 layers (a 70B, whose attn_v is 8x smaller than attn_q
 *    under GQA) moves Q3_K/Q4_K attn_v up to Q5_K.
 * 4. Rows that are not a multiple of the chosen type's block fall back:
 *    Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0 (block 32,
 *    about the same bits), and F16 if even that does not fit.
 * Float mixes (F32, F16, BF16) convert every quantizable tensor to their
 * type with no rules.
 */
#include "quant/mix.h"

#include <stdio.h>
#include <string.h>

#include "kernels/types.h"
#include "quant/quantize.h"

typedef enum tcat {
    CAT_OTHER, CAT_OUTPUT, CAT_TOKEN_EMBD, CAT_ATTN_V, CAT_ATTN_K, CAT_ATTN_Q, CAT_ATTN_OUTPUT,
    CAT_FFN_UP, CAT_FFN_GATE, CAT_FFN_DOWN,
} tcat;

typedef enum cond {
    ALWAYS,        /* every tensor of the category                          */
    MORE_BITS,     /* use_more_bits(i, n)                                   */
    FIRST_8TH,     /* i < n/8                                               */
    FIRST_16TH,    /* i < n/16                                              */
    FIRST_2,       /* i < 2                                                 */
    FIRST_4,       /* i < 4                                                 */
    GQA_4,         /* at least 4 query heads share each KV head             */
    IMAT_8TH,      /* an imatrix is in use and i < n/8                      */
} cond;

typedef struct rule {
    int32_t ftype;
    tcat cat;
    cond when;
    int32_t type;
    const char *why;
} rule;

/* The mixes' rules (step 2 above). */
static const rule RULES[] = {
    /* attn_v: one value row feeds every head of its group; Q2_K/Q3_K
     * mixes lift all of them, the _M mixes the "more bits" layers. */
    { SLM_FTYPE_Q2_K, CAT_ATTN_V, GQA_4, SLM_TYPE_Q4_K, "Q2_K: attn_v with GQA >= 4" },
    { SLM_FTYPE_Q2_K, CAT_ATTN_V, ALWAYS, SLM_TYPE_Q3_K, "Q2_K: attn_v" },
    { SLM_FTYPE_Q3_K_M, CAT_ATTN_V, FIRST_2, SLM_TYPE_Q5_K, "Q3_K_M: first two attn_v" },
    { SLM_FTYPE_Q3_K_M, CAT_ATTN_V, ALWAYS, SLM_TYPE_Q4_K, "Q3_K_M: attn_v" },
    { SLM_FTYPE_Q3_K_L, CAT_ATTN_V, ALWAYS, SLM_TYPE_Q5_K, "Q3_K_L: attn_v" },
    { SLM_FTYPE_Q4_K_S, CAT_ATTN_V, FIRST_4, SLM_TYPE_Q5_K, "Q4_K_S: first four attn_v" },
    { SLM_FTYPE_Q4_K_M, CAT_ATTN_V, MORE_BITS, SLM_TYPE_Q6_K, "Q4_K_M: attn_v, more-bits layer" },
    { SLM_FTYPE_Q5_K_M, CAT_ATTN_V, MORE_BITS, SLM_TYPE_Q6_K, "Q5_K_M: attn_v, more-bits layer" },
    /* ffn_down: the widest input and the least smooth weights */
    { SLM_FTYPE_Q2_K, CAT_FFN_DOWN, ALWAYS, SLM_TYPE_Q3_K, "Q2_K: ffn_down" },
    { SLM_FTYPE_Q3_K_M, CAT_FFN_DOWN, FIRST_16TH, SLM_TYPE_Q5_K, "Q3_K_M: ffn_down, first 16th of layers" },
    { SLM_FTYPE_Q3_K_M, CAT_FFN_DOWN, ALWAYS, SLM_TYPE_Q4_K, "Q3_K_M: ffn_down" },
    { SLM_FTYPE_Q3_K_L, CAT_FFN_DOWN, ALWAYS, SLM_TYPE_Q5_K, "Q3_K_L: ffn_down" },
    { SLM_FTYPE_Q4_K_S, CAT_FFN_DOWN, FIRST_8TH, SLM_TYPE_Q5_K, "Q4_K_S: ffn_down, first 8th of layers" },
    { SLM_FTYPE_Q4_K_M, CAT_FFN_DOWN, MORE_BITS, SLM_TYPE_Q6_K, "Q4_K_M: ffn_down, more-bits layer" },
    { SLM_FTYPE_Q5_K_M, CAT_FFN_DOWN, MORE_BITS, SLM_TYPE_Q6_K, "Q5_K_M: ffn_down, more-bits layer" },
    /* with an imatrix, the first ffn_down layers of Q4_0/Q5_0 get an
     * offset (guards against outliers there, as llama.cpp does) */
    { SLM_FTYPE_Q4_0, CAT_FFN_DOWN, IMAT_8TH, SLM_TYPE_Q4_1, "Q4_0 + imatrix: ffn_down, first 8th" },
    { SLM_FTYPE_Q5_0, CAT_FFN_DOWN, IMAT_8TH, SLM_TYPE_Q5_1, "Q5_0 + imatrix: ffn_down, first 8th" },
    /* attn_output in the low-bit mixes */
    { SLM_FTYPE_Q2_K, CAT_ATTN_OUTPUT, ALWAYS, SLM_TYPE_Q3_K, "Q2_K: attn_output" },
    { SLM_FTYPE_Q3_K_M, CAT_ATTN_OUTPUT, ALWAYS, SLM_TYPE_Q4_K, "Q3_K_M: attn_output" },
    { SLM_FTYPE_Q3_K_L, CAT_ATTN_OUTPUT, ALWAYS, SLM_TYPE_Q5_K, "Q3_K_L: attn_output" },
};

static const struct { int32_t ftype, base; } BASES[] = {
    { SLM_FTYPE_F32, SLM_TYPE_F32 },     { SLM_FTYPE_F16, SLM_TYPE_F16 },     { SLM_FTYPE_BF16, SLM_TYPE_BF16 },
    { SLM_FTYPE_Q8_0, SLM_TYPE_Q8_0 },   { SLM_FTYPE_Q4_0, SLM_TYPE_Q4_0 },   { SLM_FTYPE_Q4_1, SLM_TYPE_Q4_1 },
    { SLM_FTYPE_Q5_0, SLM_TYPE_Q5_0 },   { SLM_FTYPE_Q5_1, SLM_TYPE_Q5_1 },   { SLM_FTYPE_Q2_K, SLM_TYPE_Q2_K },
    { SLM_FTYPE_Q3_K_S, SLM_TYPE_Q3_K }, { SLM_FTYPE_Q3_K_M, SLM_TYPE_Q3_K }, { SLM_FTYPE_Q3_K_L, SLM_TYPE_Q3_K },
    { SLM_FTYPE_Q4_K_S, SLM_TYPE_Q4_K }, { SLM_FTYPE_Q4_K_M, SLM_TYPE_Q4_K }, { SLM_FTYPE_Q5_K_S, SLM_TYPE_Q5_K },
    { SLM_FTYPE_Q5_K_M, SLM_TYPE_Q5_K }, { SLM_FTYPE_Q6_K, SLM_TYPE_Q6_K },
};

/* Step 4: block-32 types of about the same size for rows that are not a
 * multiple of 256. */
static const struct { int32_t from, to; } FALLBACK[] = {
    { SLM_TYPE_Q2_K, SLM_TYPE_Q4_0 }, { SLM_TYPE_Q3_K, SLM_TYPE_Q4_0 }, { SLM_TYPE_Q4_K, SLM_TYPE_Q5_0 },
    { SLM_TYPE_Q5_K, SLM_TYPE_Q5_1 }, { SLM_TYPE_Q6_K, SLM_TYPE_Q8_0 },
};

int32_t slm_mix_base_type(int32_t ftype) {
    for (size_t i = 0; i < sizeof BASES / sizeof BASES[0]; i++)
        if (BASES[i].ftype == ftype) return BASES[i].base;
    return -1;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

bool slm_mix_quantizable(const char *name, uint32_t n_dims) {
    return n_dims >= 2 && ends_with(name, "weight") && !strstr(name, "_norm.weight") &&
           !strstr(name, "ffn_gate_inp.weight") && !strstr(name, "position_embd") && !strstr(name, "token_types");
}

static tcat category(const char *name) {
    if (!strcmp(name, "output.weight")) return CAT_OUTPUT;
    if (!strcmp(name, "token_embd.weight")) return CAT_TOKEN_EMBD;
    if (strstr(name, "attn_qkv.weight") || strstr(name, "attn_v.weight")) return CAT_ATTN_V;
    if (strstr(name, "attn_k.weight")) return CAT_ATTN_K;
    if (strstr(name, "attn_q.weight")) return CAT_ATTN_Q;
    if (strstr(name, "attn_output.weight")) return CAT_ATTN_OUTPUT;
    if (strstr(name, "ffn_up")) return CAT_FFN_UP;
    if (strstr(name, "ffn_gate")) return CAT_FFN_GATE;
    if (strstr(name, "ffn_down")) return CAT_FFN_DOWN;
    return CAT_OTHER;
}

static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static bool holds(cond c, int i, int n, const slm_mix_model *mm) {
    switch (c) {
    case ALWAYS: return true;
    case MORE_BITS: return i >= 0 && more_bits(i, n);
    case FIRST_8TH: return i >= 0 && i < n / 8;
    case FIRST_16TH: return i >= 0 && i < n / 16;
    case FIRST_2: return i >= 0 && i < 2;
    case FIRST_4: return i >= 0 && i < 4;
    case GQA_4: return mm->n_gqa >= 4;
    case IMAT_8TH: return mm->has_imatrix && i >= 0 && i < n / 8;
    }
    return false;
}

static int32_t fallback(int32_t type, int64_t ne0, const char **why) {
    if (ne0 % slm_type_blck_size(type) == 0) return type;
    int32_t to = SLM_TYPE_F16;
    for (size_t i = 0; i < sizeof FALLBACK / sizeof FALLBACK[0]; i++)
        if (FALLBACK[i].from == type) to = FALLBACK[i].to;
    if (ne0 % slm_type_blck_size(to) != 0) to = SLM_TYPE_F16;
    if (why) *why = to == SLM_TYPE_F16 ? "rows fit no block: F16" : "rows not a multiple of 256: block-32 fallback";
    return to;
}

int32_t slm_mix_tensor_type(int32_t ftype, const slm_mix_model *mm, const char *name, int64_t ne0,
                            const char **why) {
    int32_t base = slm_mix_base_type(ftype);
    if (why) *why = NULL;
    if (base < 0) return -1;
    if (!slm_type_traits_ref(base)->is_quantized) return base;
    tcat cat = category(name);
    if (cat == CAT_OUTPUT || (cat == CAT_TOKEN_EMBD && mm->tied_output)) {
        if (ne0 % slm_type_blck_size(base) != 0) {
            if (why) *why = "output: rows not a multiple of the block";
            return fallback(SLM_TYPE_Q8_0, ne0, why);
        }
        if (base == SLM_TYPE_Q8_0) return base;
        if (why) *why = "output projection: Q6_K";
        return fallback(SLM_TYPE_Q6_K, ne0, why);
    }
    int layer = -1;
    if (sscanf(name, "blk.%d.", &layer) != 1) layer = -1;
    int n = cat == CAT_ATTN_V ? mm->n_attn_v : mm->n_layer;
    int32_t type = base;
    for (size_t r = 0; r < sizeof RULES / sizeof RULES[0]; r++) {
        const rule *ru = &RULES[r];
        if (ru->ftype == ftype && ru->cat == cat && holds(ru->when, layer, n, mm)) {
            type = ru->type;
            if (why) *why = ru->why;
            break;
        }
    }
    if (cat == CAT_ATTN_V && mm->is_70b && (type == SLM_TYPE_Q3_K || type == SLM_TYPE_Q4_K)) {
        type = SLM_TYPE_Q5_K;
        if (why) *why = "70B: attn_v Q5_K";
    }
    return fallback(type, ne0, why);
}
