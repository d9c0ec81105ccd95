/*
 * tensor_map.c — the Hugging Face → GGUF tensor plan (see tensor_map.h).
 *
 * Names follow llama.cpp's GGUF conventions (token_embd, output_norm,
 * output, blk.N.attn_norm / attn_q / attn_k / attn_v / attn_qkv /
 * attn_output / attn_q_norm / attn_k_norm / ffn_norm / ffn_gate / ffn_up /
 * ffn_down), which is also what src/model/arch.c binds. Per architecture:
 *   llama  separate Q/K/V (optional biases, as attention_bias models have
 *          them) with Q and K rows permuted; gate, up, down
 *   qwen2  the same without permutation, Q/K/V biases required
 *   qwen3  as qwen2 without biases, plus per-head q_norm / k_norm
 *   phi3   fused qkv_proj → attn_qkv and gate_up_proj → ffn_up (2 × n_ff
 *          rows, gate first), kept fused as llama.cpp's phi3 does
 * Shapes come from config.json; convert.c checks the checkpoint against them.
 */
#include "convert/tensor_map.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

typedef struct plan {
    slm_cv_tensor *t;
    int32_t n, cap;
} plan;

static void add(plan *p, const char *name, const char *src, int64_t ne0, int64_t ne1, int32_t rope_heads,
                bool optional) {
    slm_cv_tensor *t = &p->t[p->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->src, sizeof t->src, "%s", src);
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->rope_heads = rope_heads;
    t->optional = optional;
}

int slm_cv_plan(const slm_hf_config *c, bool tied, slm_cv_tensor **out, int32_t *n_out, slm_err *err) {
    const int per_layer = 16;
    plan p = { NULL, 0, 3 + per_layer * c->n_layer };
    if (!(p.t = slm_calloc((size_t)p.cap, sizeof *p.t))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    int64_t E = c->n_embd, Q = (int64_t)c->n_head * c->head_dim, KV = (int64_t)c->n_head_kv * c->head_dim;
    int64_t F = c->n_ff, V = c->n_vocab;
    int32_t qh = c->permute_qk ? c->n_head : 0, kh = c->permute_qk ? c->n_head_kv : 0;
    add(&p, "token_embd.weight", "model.embed_tokens.weight", E, V, 0, false);
    add(&p, "output_norm.weight", "model.norm.weight", E, 0, 0, false);
    if (!tied) add(&p, "output.weight", "lm_head.weight", E, V, 0, false);
    for (int32_t l = 0; l < c->n_layer; l++) {
        char g[64], h[96];
#define G(s) (snprintf(g, sizeof g, "blk.%d." s, (int)l), g)
#define H(s) (snprintf(h, sizeof h, "model.layers.%d." s, (int)l), h)
        add(&p, G("attn_norm.weight"), H("input_layernorm.weight"), E, 0, 0, false);
        if (c->fused) {
            add(&p, G("attn_qkv.weight"), H("self_attn.qkv_proj.weight"), E, Q + 2 * KV, 0, false);
        } else {
            bool opt = !c->qkv_bias_required;
            add(&p, G("attn_q.weight"), H("self_attn.q_proj.weight"), E, Q, qh, false);
            add(&p, G("attn_k.weight"), H("self_attn.k_proj.weight"), E, KV, kh, false);
            add(&p, G("attn_v.weight"), H("self_attn.v_proj.weight"), E, KV, 0, false);
            add(&p, G("attn_q.bias"), H("self_attn.q_proj.bias"), Q, 0, qh, opt);
            add(&p, G("attn_k.bias"), H("self_attn.k_proj.bias"), KV, 0, kh, opt);
            add(&p, G("attn_v.bias"), H("self_attn.v_proj.bias"), KV, 0, 0, opt);
        }
        if (c->qk_norm) {
            add(&p, G("attn_q_norm.weight"), H("self_attn.q_norm.weight"), c->head_dim, 0, 0, false);
            add(&p, G("attn_k_norm.weight"), H("self_attn.k_norm.weight"), c->head_dim, 0, 0, false);
        }
        add(&p, G("attn_output.weight"), H("self_attn.o_proj.weight"), Q, E, 0, false);
        add(&p, G("attn_output.bias"), H("self_attn.o_proj.bias"), E, 0, 0, true);
        add(&p, G("ffn_norm.weight"), H("post_attention_layernorm.weight"), E, 0, 0, false);
        if (c->fused) {
            add(&p, G("ffn_up.weight"), H("mlp.gate_up_proj.weight"), E, 2 * F, 0, false);
        } else {
            add(&p, G("ffn_gate.weight"), H("mlp.gate_proj.weight"), E, F, 0, false);
            add(&p, G("ffn_up.weight"), H("mlp.up_proj.weight"), E, F, 0, false);
        }
        add(&p, G("ffn_down.weight"), H("mlp.down_proj.weight"), F, E, 0, false);
#undef G
#undef H
    }
    *out = p.t;
    *n_out = p.n;
    return 0;
}

void slm_cv_permute_rows(const float *in, float *out, int64_t n_rows, int64_t row_len, int64_t head_dim,
                         bool inverse) {
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t s = slm_cv_rope_src_row(r, head_dim);   /* GGUF row r holds HF row s */
        const float *from = inverse ? in + r * row_len : in + s * row_len;
        float *to = inverse ? out + s * row_len : out + r * row_len;
        memcpy(to, from, (size_t)row_len * sizeof *to);
    }
}
