/*
 * arch.c — binding a GGUF file to an architecture: hyper-parameters from
 * "<arch>.*" metadata and weights from the tensor table, each tensor checked
 * for presence, shape and a type slm can compute with. Tensor names follow
 * llama.cpp's (token_embd, blk.N.attn_q, …).
 *
 *   llama  Llama 2/3/3.x, Mistral, TinyLlama, SmolLM: NORM RoPE, optional
 *          rope_freqs (llama3 scaling), tied or separate output
 *   qwen2  Q/K/V biases, NEOX RoPE
 *   qwen3  per-head RMSNorm of Q and K, NEOX RoPE
 *   phi3   fused attn_qkv and gate/up (ffn_up holds both), NEOX RoPE
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/types.h"
#include "model/model.h"
#include "util/alloc.h"
#include "util/err.h"

static void tname(const slm_gguf_tensor *t, char *buf, size_t cap) {
    size_t n = t->name.len < cap - 1 ? (size_t)t->name.len : cap - 1;
    memcpy(buf, t->name.ptr, n);
    buf[n] = 0;
}

static int own(slm_model *m, float *p) {
    if (m->n_owned == m->cap_owned) {
        int32_t nc = m->cap_owned ? m->cap_owned * 2 : 64;
        float **n = slm_realloc(m->owned, (size_t)nc * sizeof *n);
        if (!n) return SLM_ENOMEM;
        m->owned = n;
        m->cap_owned = nc;
    }
    m->owned[m->n_owned++] = p;
    return 0;
}

static int check_shape(const slm_gguf_tensor *t, int64_t ne0, int64_t ne1, slm_err *err) {
    char name[160];
    tname(t, name, sizeof name);
    int64_t n1 = t->ne[1] * t->ne[2] * t->ne[3];
    bool ok = ne1 < 0 ? (t->n_dims == 1 && t->ne[0] == ne0) : (t->ne[0] == ne0 && n1 == ne1 && t->ne[2] == 1 && t->ne[3] == 1);
    if (!ok) {
        if (ne1 < 0)
            return slm_err_set(err, SLM_EFORMAT, "tensor '%s' has shape [%lld, %lld], expected [%lld]", name,
                               (long long)t->ne[0], (long long)n1, (long long)ne0);
        return slm_err_set(err, SLM_EFORMAT, "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                           (long long)t->ne[0], (long long)n1, (long long)ne0, (long long)ne1);
    }
    return 0;
}

static int unsupported_type(const slm_gguf_tensor *t, slm_err *err) {
    char name[160];
    tname(t, name, sizeof name);
    return slm_err_set(err, SLM_EUNSUPPORTED, "tensor '%s' has type %s, which slm does not support", name,
                       slm_type_name(t->type));
}

/* A matrix [ne0 x ne1]; optional tensors leave *out zeroed when absent. */
static int get_mat(slm_model *m, const char *name, int64_t ne0, int64_t ne1, bool required, slm_mat *out,
                   slm_err *err) {
    memset(out, 0, sizeof *out);
    const slm_gguf_tensor *t = slm_gguf_find_tensor(m->gguf, name);
    if (!t) return required ? slm_err_set(err, SLM_EFORMAT, "tensor '%s' is missing", name) : 0;
    int rc = check_shape(t, ne0, ne1, err);
    if (rc) return rc;
    const slm_type_traits *tr = slm_type_traits_get(t->type);
    if (!tr || !tr->vec_dot || !tr->to_float) return unsupported_type(t, err);
    out->name = t->name.ptr;
    out->type = t->type;
    out->ne0 = ne0;
    out->ne1 = ne1;
    out->row_bytes = slm_row_size(t->type, ne0);
    out->data = t->data;
    return 0;
}

/* A vector of n elements converted to an owned F32 array; NULL if absent and optional. */
static int get_vec(slm_model *m, const char *name, int64_t n, bool required, float **out, slm_err *err) {
    *out = NULL;
    const slm_gguf_tensor *t = slm_gguf_find_tensor(m->gguf, name);
    if (!t) return required ? slm_err_set(err, SLM_EFORMAT, "tensor '%s' is missing", name) : 0;
    int rc = check_shape(t, n, -1, err);
    if (rc) return rc;
    const slm_type_traits *tr = slm_type_traits_get(t->type);
    if (!tr || !tr->to_float || n % tr->blck_size) return unsupported_type(t, err);
    float *v = slm_malloc((size_t)n * sizeof *v);
    if (!v || own(m, v)) {
        slm_free(v);
        return slm_err_set(err, SLM_ENOMEM, "out of memory loading '%s'", name);
    }
    tr->to_float(t->data, v, n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return slm_err_set(err, SLM_EFORMAT, "tensor '%s' holds a non-finite value at %lld", name, (long long)i);
    *out = v;
    return 0;
}

static int get_u32(slm_model *m, const char *suffix, uint32_t *out, bool required, uint32_t dflt, slm_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch_name, suffix);
    int rc = slm_gguf_get_u32(m->gguf, key, out, err);
    if (rc == SLM_ENOTFOUND && !required) {
        *out = dflt;
        slm_err_clear(err);
        return 0;
    }
    return rc;
}

static int get_f32(slm_model *m, const char *suffix, float *out, float dflt, slm_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch_name, suffix);
    int rc = slm_gguf_get_f32(m->gguf, key, out, err);
    if (rc == SLM_ENOTFOUND) {
        *out = dflt;
        slm_err_clear(err);
        return 0;
    }
    return rc;
}

static int load_hparams(slm_model *m, slm_err *err) {
    slm_hparams *hp = &m->hp;
    uint32_t v_embd, v_layer, v_head, v_head_kv, v_ff, v_ctx, v_rot, v_klen, v_vlen;
    int rc;
    if ((rc = get_u32(m, "embedding_length", &v_embd, true, 0, err)) ||
        (rc = get_u32(m, "block_count", &v_layer, true, 0, err)) ||
        (rc = get_u32(m, "attention.head_count", &v_head, true, 0, err)) ||
        (rc = get_u32(m, "feed_forward_length", &v_ff, true, 0, err)) ||
        (rc = get_u32(m, "context_length", &v_ctx, false, 2048, err)))
        return rc == SLM_ENOTFOUND ? SLM_EFORMAT : rc;
    if ((rc = get_u32(m, "attention.head_count_kv", &v_head_kv, false, v_head, err))) return rc;
    if (v_embd == 0 || v_embd > 65536 || v_layer == 0 || v_layer > 1024 || v_head == 0 || v_head > 1024 ||
        v_head_kv == 0 || v_head_kv > v_head || v_head % v_head_kv || v_ff == 0 || v_ff > 1 << 20 ||
        v_ctx == 0 || v_ctx > 1 << 24)
        return slm_err_set(err, SLM_EFORMAT,
                           "implausible hyper-parameters: n_embd %u, n_layer %u, n_head %u, n_head_kv %u, n_ff %u, context %u",
                           v_embd, v_layer, v_head, v_head_kv, v_ff, v_ctx);
    uint32_t dflt_hd = v_embd % v_head ? 0 : v_embd / v_head;
    if ((rc = get_u32(m, "attention.key_length", &v_klen, false, dflt_hd, err)) ||
        (rc = get_u32(m, "attention.value_length", &v_vlen, false, v_klen, err)))
        return rc;
    if (v_klen == 0 || v_klen > 1024 || v_klen % 2 || v_vlen != v_klen)
        return slm_err_set(err, SLM_EUNSUPPORTED, "unsupported head size: key length %u, value length %u", v_klen, v_vlen);
    if ((rc = get_u32(m, "rope.dimension_count", &v_rot, false, v_klen, err))) return rc;
    if (v_rot == 0 || v_rot > v_klen || v_rot % 2)
        return slm_err_set(err, SLM_EFORMAT, "rope.dimension_count %u does not fit head size %u", v_rot, v_klen);
    hp->n_embd = (int32_t)v_embd;
    hp->n_layer = (int32_t)v_layer;
    hp->n_head = (int32_t)v_head;
    hp->n_head_kv = (int32_t)v_head_kv;
    hp->n_ff = (int32_t)v_ff;
    hp->n_ctx_train = (int32_t)v_ctx;
    hp->head_dim = (int32_t)v_klen;
    hp->n_rot = (int32_t)v_rot;
    if ((rc = get_f32(m, "attention.layer_norm_rms_epsilon", &hp->rms_eps, 1e-5f, err)) ||
        (rc = get_f32(m, "rope.freq_base", &hp->rope_freq_base, 10000.0f, err)))
        return rc;
    if (!(hp->rms_eps > 0 && hp->rms_eps < 1) || !(hp->rope_freq_base > 0) || !isfinite(hp->rope_freq_base))
        return slm_err_set(err, SLM_EFORMAT, "implausible rms epsilon %g or rope base %g", hp->rms_eps, hp->rope_freq_base);
    hp->rope_freq_scale = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
    slm_gguf_str st;
    if (slm_gguf_get_str(m->gguf, key, &st, NULL) == 0 && !slm_gguf_str_eq(st, "none")) {
        if (!slm_gguf_str_eq(st, "linear"))
            return slm_err_set(err, SLM_EUNSUPPORTED, "rope scaling type '%.*s' is not supported", (int)st.len, st.ptr);
        float factor;
        if ((rc = get_f32(m, "rope.scaling.factor", &factor, 1.0f, err))) return rc;
        if (!(factor >= 1.0f && factor < 1024)) return slm_err_set(err, SLM_EFORMAT, "rope scaling factor %g", factor);
        hp->rope_freq_scale = 1.0f / factor;
    }
    hp->rope_kind = m->arch == SLM_ARCH_LLAMA ? SLM_ROPE_NORM : SLM_ROPE_NEOX;
    return 0;
}

int slm_model_bind(slm_model *m, slm_err *err) {
    int rc = load_hparams(m, err);
    if (rc) return rc;
    slm_hparams *hp = &m->hp;
    const slm_gguf_tensor *te = slm_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te) return slm_err_set(err, SLM_EFORMAT, "tensor 'token_embd.weight' is missing");
    if (te->n_dims != 2 || te->ne[0] != hp->n_embd || te->ne[1] <= 0 || te->ne[1] > INT32_MAX)
        return slm_err_set(err, SLM_EFORMAT, "tensor 'token_embd.weight' has shape [%lld, %lld], expected [%d, n_vocab]",
                           (long long)te->ne[0], (long long)te->ne[1], hp->n_embd);
    hp->n_vocab = (int32_t)te->ne[1];
    if (slm_vocab_n_tokens(m->vocab) != hp->n_vocab)
        return slm_err_set(err, SLM_EFORMAT, "vocabulary has %d tokens but token_embd.weight has %d rows",
                           slm_vocab_n_tokens(m->vocab), hp->n_vocab);
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t F = hp->n_ff, V = hp->n_vocab;
    if ((rc = get_mat(m, "token_embd.weight", E, V, true, &m->tok_embd, err))) return rc;
    if ((rc = get_vec(m, "output_norm.weight", E, true, &m->output_norm, err))) return rc;
    if ((rc = get_mat(m, "output.weight", E, V, false, &m->output, err))) return rc;
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    if ((rc = get_vec(m, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_freqs, err))) return rc;
    m->layers = slm_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (int32_t il = 0; il < hp->n_layer; il++) {
        slm_layer *L = &m->layers[il];
        char n[128];
#define T(suffix) (snprintf(n, sizeof n, "blk.%d." suffix, (int)il), n)
        if ((rc = get_vec(m, T("attn_norm.weight"), E, true, &L->attn_norm, err)) ||
            (rc = get_vec(m, T("ffn_norm.weight"), E, true, &L->ffn_norm, err)) ||
            (rc = get_mat(m, T("attn_output.weight"), Q, E, true, &L->wo, err)) ||
            (rc = get_vec(m, T("attn_output.bias"), E, false, &L->bo, err)) ||
            (rc = get_mat(m, T("ffn_down.weight"), F, E, true, &L->w_down, err)))
            return rc;
        if (m->arch == SLM_ARCH_PHI3) {
            L->fused_qkv = L->fused_gate_up = true;
            if ((rc = get_mat(m, T("attn_qkv.weight"), E, Q + 2 * KV, true, &L->wqkv, err)) ||
                (rc = get_mat(m, T("ffn_up.weight"), E, 2 * F, true, &L->w_up, err)))
                return rc;
        } else {
            if ((rc = get_mat(m, T("attn_q.weight"), E, Q, true, &L->wq, err)) ||
                (rc = get_mat(m, T("attn_k.weight"), E, KV, true, &L->wk, err)) ||
                (rc = get_mat(m, T("attn_v.weight"), E, KV, true, &L->wv, err)) ||
                (rc = get_mat(m, T("ffn_gate.weight"), E, F, true, &L->w_gate, err)) ||
                (rc = get_mat(m, T("ffn_up.weight"), E, F, true, &L->w_up, err)))
                return rc;
            bool need_bias = m->arch == SLM_ARCH_QWEN2;
            if ((rc = get_vec(m, T("attn_q.bias"), Q, need_bias, &L->bq, err)) ||
                (rc = get_vec(m, T("attn_k.bias"), KV, need_bias, &L->bk, err)) ||
                (rc = get_vec(m, T("attn_v.bias"), KV, need_bias, &L->bv, err)))
                return rc;
            if (m->arch == SLM_ARCH_QWEN3 &&
                ((rc = get_vec(m, T("attn_q_norm.weight"), hp->head_dim, true, &L->q_norm, err)) ||
                 (rc = get_vec(m, T("attn_k_norm.weight"), hp->head_dim, true, &L->k_norm, err))))
                return rc;
        }
#undef T
    }
    return 0;
}
