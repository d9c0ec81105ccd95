/*
 * test_convert.c — `slm convert` (src/convert/) and the SentencePiece-style
 * tokenizer.json reader (src/tokenizer/hf_spm.c).
 *
 * Without fixtures: small Hugging Face folders are written on the spot —
 * config.json, a safetensors file of random F32/F16/BF16 weights of a llama,
 * qwen2, qwen3 or phi3 shape, a SentencePiece-style tokenizer.json — and
 * converted. The converted model's logits are compared with a GGUF the test
 * writes straight from the same weights. For llama that reference is an
 * independent check of the Q/K permutation: the unpermuted weights run with
 * rotate-halves (NEOX) RoPE, as Hugging Face computes, by writing them as a
 * qwen2 model with zero biases; the converted file runs llama's
 * adjacent-pair RoPE on permuted rows; both must give the same logits.
 * Shards, tied embeddings, llama3 and linear RoPE scaling, output types and
 * the F16 fallback, and malformed input (truncated files, header length
 * past the end, offsets out of range, bad dtypes, missing tensors, shapes
 * that disagree with config.json, unknown architectures) are covered; a
 * failed conversion leaves no file behind, also when any allocation fails.
 * Randomly damaged safetensors files open with an error or read in bounds.
 *
 * With ../shared/fixtures: TinyStories-656K (a real HF checkpoint) converts
 * to F32, F16, BF16 and Q8_0 and tells the story the fixtures README gives;
 * its tokenizer.json tokenizes like the converted GGUF and like Hugging
 * Face's BPE on sample strings; the Llama 3 and Qwen tokenizer.json files,
 * written to GGUF and read back, pass llama.cpp's tokenizer vectors.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/convert.h"
#include "convert/rope_freqs.h"
#include "convert/safetensors.h"
#include "convert/tensor_map.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "helpers.h"
#include "kernels/types.h"
#include "slm/slm.h"
#include "tokenizer/vocab.h"
#include "util/alloc.h"
#include "util/fp16.h"

/* ---- a Hugging Face model built in memory ----------------------------------- */

enum { DT_F32, DT_F16, DT_BF16 };
static const char *const DT_NAME[] = { "F32", "F16", "BF16" };

typedef struct hf_tensor {
    char name[96];
    int64_t rows, cols;     /* cols 0: a vector of rows elements */
    float *data;            /* values exactly representable in the file's dtype */
} hf_tensor;

typedef struct hf_model {
    const char *arch;       /* llama, qwen2, qwen3, phi3 */
    int dim, layers, heads, kv_heads, ff, vocab, head_dim;
    bool tied;
    int dtype;
    hf_tensor t[128];
    int n;
    uint64_t seed;
} hf_model;

static float rnd(hf_model *m) {
    m->seed = m->seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(m->seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float as_dtype(float x, int dt) {
    if (dt == DT_F16) return slm_fp16_to_f32(slm_f32_to_fp16(x));
    if (dt == DT_BF16) return slm_bf16_to_f32(slm_f32_to_bf16(x));
    return x;
}

static void add_t(hf_model *m, const char *name, int64_t rows, int64_t cols, float scale, float offset) {
    hf_tensor *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    int64_t n = rows * (cols ? cols : 1);
    t->data = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) t->data[i] = as_dtype(offset + scale * rnd(m), m->dtype);
}

static hf_tensor *find_t(hf_model *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}

static void model_free(hf_model *m) {
    for (int i = 0; i < m->n; i++) free(m->t[i].data);
    m->n = 0;
}

/* The tensors of the architecture, Hugging Face names and shapes. */
static void make_weights(hf_model *m) {
    int E = m->dim, hd = m->head_dim, Q = m->heads * hd, KV = m->kv_heads * hd, F = m->ff, V = m->vocab;
    bool phi3 = !strcmp(m->arch, "phi3"), qwen2 = !strcmp(m->arch, "qwen2"), qwen3 = !strcmp(m->arch, "qwen3");
    char n[96];
    add_t(m, "model.embed_tokens.weight", V, E, 1.0f, 0);
    add_t(m, "model.norm.weight", E, 0, 0.1f, 1.0f);
    if (!m->tied) add_t(m, "lm_head.weight", V, E, 0.2f, 0);
    for (int l = 0; l < m->layers; l++) {
#define N(s) (snprintf(n, sizeof n, "model.layers.%d." s, l), n)
        add_t(m, N("input_layernorm.weight"), E, 0, 0.1f, 1.0f);
        add_t(m, N("post_attention_layernorm.weight"), E, 0, 0.1f, 1.0f);
        add_t(m, N("self_attn.o_proj.weight"), E, Q, 0.2f, 0);
        add_t(m, N("mlp.down_proj.weight"), E, F, 0.2f, 0);
        if (phi3) {
            add_t(m, N("self_attn.qkv_proj.weight"), Q + 2 * KV, E, 0.3f, 0);
            add_t(m, N("mlp.gate_up_proj.weight"), 2 * F, E, 0.3f, 0);
        } else {
            add_t(m, N("self_attn.q_proj.weight"), Q, E, 0.3f, 0);
            add_t(m, N("self_attn.k_proj.weight"), KV, E, 0.3f, 0);
            add_t(m, N("self_attn.v_proj.weight"), KV, E, 0.3f, 0);
            add_t(m, N("mlp.gate_proj.weight"), F, E, 0.3f, 0);
            add_t(m, N("mlp.up_proj.weight"), F, E, 0.3f, 0);
        }
        if (qwen2) {
            add_t(m, N("self_attn.q_proj.bias"), Q, 0, 0.3f, 0);
            add_t(m, N("self_attn.k_proj.bias"), KV, 0, 0.3f, 0);
            add_t(m, N("self_attn.v_proj.bias"), KV, 0, 0.3f, 0);
        }
        if (qwen3) {
            add_t(m, N("self_attn.q_norm.weight"), hd, 0, 0.1f, 1.0f);
            add_t(m, N("self_attn.k_norm.weight"), hd, 0, 0.1f, 1.0f);
        }
#undef N
    }
}

static hf_model new_model(const char *arch, int dtype) {
    hf_model m = { .arch = arch, .dim = 64, .layers = 2, .heads = 4, .kv_heads = 2, .ff = 96, .vocab = 272,
                   .head_dim = 16, .dtype = dtype, .seed = 12345 };
    if (!strcmp(arch, "qwen3")) m.head_dim = 32;     /* head_dim != dim / heads: key_length */
    return m;
}

/* ---- writing the folder ------------------------------------------------------- */

static void put_dtype(unsigned char *p, float x, int dt) {
    if (dt == DT_F32) { memcpy(p, &x, 4); return; }
    uint16_t h = dt == DT_F16 ? slm_f32_to_fp16(x) : slm_f32_to_bf16(x);
    memcpy(p, &h, 2);
}

/* Writes tensors [first, last) of m as one safetensors file. */
static void write_st(const char *path, hf_model *m, int first, int last) {
    size_t es = m->dtype == DT_F32 ? 4 : 2, cap = 1 << 16, hl = 0, off = 0;
    char *hdr = malloc(cap);
    hl += (size_t)snprintf(hdr + hl, cap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = first; i < last; i++) {
        hf_tensor *t = &m->t[i];
        size_t nb = (size_t)(t->rows * (t->cols ? t->cols : 1)) * es;
        if (t->cols)
            hl += (size_t)snprintf(hdr + hl, cap - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                                   t->name, DT_NAME[m->dtype], (long long)t->rows, (long long)t->cols, off, off + nb);
        else
            hl += (size_t)snprintf(hdr + hl, cap - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                                   t->name, DT_NAME[m->dtype], (long long)t->rows, off, off + nb);
        off += nb;
    }
    hl += (size_t)snprintf(hdr + hl, cap - hl, "}");
    while (hl % 8) hdr[hl++] = ' ';
    size_t total = 8 + hl + off;
    unsigned char *buf = malloc(total), *p = buf + 8 + hl;
    uint64_t hlen = hl;
    memcpy(buf, &hlen, 8);
    memcpy(buf + 8, hdr, hl);
    for (int i = first; i < last; i++) {
        hf_tensor *t = &m->t[i];
        int64_t n = t->rows * (t->cols ? t->cols : 1);
        for (int64_t k = 0; k < n; k++, p += es) put_dtype(p, t->data[k], m->dtype);
    }
    cr_assert_eq(th_write_file(path, buf, total), 0);
    free(buf);
    free(hdr);
}

static const char *HF_ARCH(const char *arch) {
    return !strcmp(arch, "llama") ? "LlamaForCausalLM" : !strcmp(arch, "qwen2") ? "Qwen2ForCausalLM"
         : !strcmp(arch, "qwen3") ? "Qwen3ForCausalLM" : "Phi3ForCausalLM";
}

static char *path_in(const char *dir, const char *name) {
    static char bufs[8][600];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 600, "%s/%s", dir, name);
    return b;
}

static void write_text(const char *path, const char *s) { cr_assert_eq(th_write_file(path, s, strlen(s)), 0); }

static void write_config(const char *dir, const hf_model *m, const char *extra) {
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"%s\"], \"hidden_size\": %d, \"num_hidden_layers\": %d,"
             " \"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"intermediate_size\": %d,"
             " \"vocab_size\": %d, \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-05,"
             " \"rope_theta\": 10000.0, \"hidden_act\": \"silu\", \"tie_word_embeddings\": %s,"
             " \"torch_dtype\": \"float32\"%s%s%s}",
             HF_ARCH(m->arch), m->dim, m->layers, m->heads, m->kv_heads, m->ff, m->vocab, m->tied ? "true" : "false",
             !strcmp(m->arch, "qwen3") ? ", \"head_dim\": 32" : "", extra ? ", " : "", extra ? extra : "");
    write_text(path_in(dir, "config.json"), cfg);
}

/* A SentencePiece-style tokenizer.json: <unk> <s> </s>, 256 byte tokens,
 * "▁" a b c and four merges; 267 tokens (the models have 272 rows). */
static void write_tokenizer(const char *dir) {
    char *s = malloc(1 << 16);
    size_t n = 0;
    n += (size_t)sprintf(s + n,
                         "{\"version\": \"1.0\", \"added_tokens\": ["
                         "{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
                         "{\"id\": 1, \"content\": \"<s>\", \"special\": true},"
                         "{\"id\": 2, \"content\": \"</s>\", \"special\": true}],"
                         " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
                         "{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
                         "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
                         " \"pre_tokenizer\": null,"
                         " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true,"
                         " \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
    for (int b = 0; b < 256; b++) n += (size_t)sprintf(s + n, ", \"<0x%02X>\": %d", b, 3 + b);
    n += (size_t)sprintf(s + n, ", \"\\u2581\": 259, \"a\": 260, \"b\": 261, \"c\": 262, \"\\u2581a\": 263,"
                                " \"ab\": 264, \"\\u2581ab\": 265, \"bc\": 266},"
                                " \"merges\": [\"\\u2581 a\", \"a b\", \"\\u2581a b\", \"b c\"]}}");
    write_text(path_in(dir, "tokenizer.json"), s);
    write_text(path_in(dir, "tokenizer_config.json"),
               "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_bos_token\": true, \"add_eos_token\": false,"
               " \"chat_template\": \"{% for m in messages %}{{ m['content'] }}{% endfor %}\"}");
    free(s);
}

/* A fresh folder holding m (one safetensors file). */
static const char *write_folder(const char *name, hf_model *m, const char *extra_config) {
    const char *dir = th_tmp(name);
    static char keep[8][512];
    static int k;
    char *d = keep[k++ & 7];
    snprintf(d, 512, "%s", dir);
    mkdir(d, 0755);
    write_config(d, m, extra_config);
    write_tokenizer(d);
    write_st(path_in(d, "model.safetensors"), m, 0, m->n);
    return d;
}

static int convert(const char *dir, const char *out, int32_t type, slm_convert_stats *st, slm_err *err) {
    slm_convert_params p = slm_convert_default_params();
    p.type = type;
    return slm_convert_hf(dir, out, &p, st, err);
}

/* ---- the reference GGUF, written straight from the weights ------------------ */

typedef struct map_row { const char *hf, *gguf; } map_row;
static const map_row LAYER_MAP[] = {
    { "input_layernorm.weight", "attn_norm.weight" }, { "post_attention_layernorm.weight", "ffn_norm.weight" },
    { "self_attn.q_proj.weight", "attn_q.weight" },   { "self_attn.k_proj.weight", "attn_k.weight" },
    { "self_attn.v_proj.weight", "attn_v.weight" },   { "self_attn.o_proj.weight", "attn_output.weight" },
    { "self_attn.q_proj.bias", "attn_q.bias" },       { "self_attn.k_proj.bias", "attn_k.bias" },
    { "self_attn.v_proj.bias", "attn_v.bias" },       { "self_attn.q_norm.weight", "attn_q_norm.weight" },
    { "self_attn.k_norm.weight", "attn_k_norm.weight" }, { "self_attn.qkv_proj.weight", "attn_qkv.weight" },
    { "mlp.gate_proj.weight", "ffn_gate.weight" },    { "mlp.up_proj.weight", "ffn_up.weight" },
    { "mlp.gate_up_proj.weight", "ffn_up.weight" },   { "mlp.down_proj.weight", "ffn_down.weight" },
};

/* Writes m as GGUF of architecture ref_arch with F32 tensors as stored (no
 * permutation). llama weights are written as qwen2 with zero biases: the
 * same network with Hugging Face's rotate-halves RoPE. */
static void write_reference(const char *path, hf_model *m, const char *dir) {
    bool as_qwen2 = !strcmp(m->arch, "llama");
    const char *A = as_qwen2 ? "qwen2" : m->arch;
    slm_gguf_writer *w = slm_gguf_writer_new();
    char key[128];
#define KEY(s) (snprintf(key, sizeof key, "%s." s, A), key)
    slm_gguf_set_str(w, "general.architecture", A);
    slm_gguf_set_u32(w, KEY("context_length"), 256);
    slm_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)m->dim);
    slm_gguf_set_u32(w, KEY("block_count"), (uint32_t)m->layers);
    slm_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)m->ff);
    slm_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)m->heads);
    slm_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)m->kv_heads);
    slm_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)m->head_dim);
    slm_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)m->head_dim);
    slm_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    slm_gguf_set_f32(w, KEY("rope.freq_base"), 10000.0f);
#undef KEY
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_vocab_load_hf(path_in(dir, "tokenizer.json"), &v, &err), 0, "%s", err.msg);
    cr_assert_eq(slm_vocab_write_gguf(v, w, m->vocab, &err), 0, "%s", err.msg);
    slm_vocab_free(v);
    float *zeros = calloc((size_t)(m->heads + 2 * m->kv_heads) * (size_t)m->head_dim, sizeof(float));
    for (int i = 0; i < m->n; i++) {
        hf_tensor *t = &m->t[i];
        char name[96];
        int layer;
        char rest[96];
        if (!strcmp(t->name, "model.embed_tokens.weight")) strcpy(name, "token_embd.weight");
        else if (!strcmp(t->name, "model.norm.weight")) strcpy(name, "output_norm.weight");
        else if (!strcmp(t->name, "lm_head.weight")) strcpy(name, "output.weight");
        else {
            cr_assert_eq(sscanf(t->name, "model.layers.%d.%95s", &layer, rest), 2);
            const char *g = NULL;
            for (size_t k = 0; k < sizeof LAYER_MAP / sizeof LAYER_MAP[0]; k++)
                if (!strcmp(rest, LAYER_MAP[k].hf)) g = LAYER_MAP[k].gguf;
            cr_assert(g, "no GGUF name for %s", t->name);
            snprintf(name, sizeof name, "blk.%d.%s", layer, g);
        }
        int64_t ne[2] = { t->cols ? t->cols : t->rows, t->cols ? t->rows : 0 };
        uint64_t nb = (uint64_t)(t->rows * (t->cols ? t->cols : 1)) * 4;
        cr_assert_eq(slm_gguf_add_tensor(w, name, SLM_TYPE_F32, t->cols ? 2 : 1, ne, t->data, nb), 0, "%s", name);
    }
    char bn[3][64];
    for (int l = 0; as_qwen2 && l < m->layers; l++) {
        static const char *const b[3] = { "attn_q.bias", "attn_k.bias", "attn_v.bias" };
        for (int k = 0; k < 3; k++) {
            int64_t ne[1] = { (int64_t)(k ? m->kv_heads : m->heads) * m->head_dim };
            snprintf(bn[k], sizeof bn[k], "blk.%d.%s", l, b[k]);
            cr_assert_eq(slm_gguf_add_tensor(w, bn[k], SLM_TYPE_F32, 1, ne, zeros, (uint64_t)ne[0] * 4), 0);
        }
    }
    cr_assert_eq(slm_gguf_writer_write(w, path, &err), 0, "%s", err.msg);
    slm_gguf_writer_free(w);
    free(zeros);
}

static const int32_t PROMPT[] = { 1, 260, 263, 100, 5, 265, 7, 262, 259, 40, 200, 3 };
#define N_PROMPT ((int32_t)(sizeof PROMPT / sizeof PROMPT[0]))

static float *logits_of(const char *path, int32_t *n_vocab) {
    slm_model *m = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_model_load(path, NULL, &m, &err), 0, "load %s: %s", path, err.msg);
    slm_model_info in;
    slm_model_get_info(m, &in);
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    cp.kv_f32 = true;
    slm_ctx *c = NULL;
    cr_assert_eq(slm_ctx_new(m, &cp, &c, &err), 0, "%s", err.msg);
    float *out = malloc(sizeof(float) * (size_t)N_PROMPT * (size_t)in.n_vocab);
    cr_assert_eq(slm_decode(c, 0, PROMPT, N_PROMPT, 0, true, out, &err), 0, "%s", err.msg);
    *n_vocab = in.n_vocab;
    slm_ctx_free(c);
    slm_model_free(m);
    return out;
}

/* Converts m (written to folder `name`) to F32 and checks its logits
 * against the reference GGUF. */
static void check_logits(const char *name, hf_model *m, const char *extra_config) {
    const char *dir = write_folder(name, m, extra_config);
    char out[600], ref[600];
    snprintf(out, sizeof out, "%s.gguf", dir);
    snprintf(ref, sizeof ref, "%s.ref.gguf", dir);
    slm_err err = { 0 };
    slm_convert_stats st;
    cr_assert_eq(convert(dir, out, SLM_TYPE_F32, &st, &err), 0, "%s", err.msg);
    cr_expect_str_eq(st.arch, m->arch);
    cr_expect_str_eq(st.tokenizer, "llama");
    write_reference(ref, m, dir);
    int32_t nv1, nv2;
    float *a = logits_of(out, &nv1), *b = logits_of(ref, &nv2);
    cr_assert_eq(nv1, m->vocab);
    cr_assert_eq(nv2, m->vocab);
    float dmax = 0, amax = 0;
    for (size_t i = 0; i < (size_t)N_PROMPT * (size_t)nv1; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= dmax)) dmax = d;
        if (fabsf(b[i]) > amax) amax = fabsf(b[i]);
    }
    cr_expect(amax > 0.1f, "reference logits are degenerate (max %g)", amax);
    cr_expect(dmax <= 1e-4f * (amax > 1 ? amax : 1), "%s (%s weights): converted logits differ from the reference by %g (max |logit| %g)",
              m->arch, DT_NAME[m->dtype], dmax, amax);
    free(a);
    free(b);
}

/* ---- the Q/K permutation ------------------------------------------------------ */

Test(convert, permute_rows_round_trip) {
    /* head_dim 4: GGUF rows (0, 1, 2, 3) come from HF rows (0, 2, 1, 3) */
    cr_expect_eq(slm_cv_rope_src_row(0, 4), 0);
    cr_expect_eq(slm_cv_rope_src_row(1, 4), 2);
    cr_expect_eq(slm_cv_rope_src_row(2, 4), 1);
    cr_expect_eq(slm_cv_rope_src_row(3, 4), 3);
    cr_expect_eq(slm_cv_rope_src_row(5, 4), 6);     /* second head */
    int64_t rows = 3 * 16, len = 5;
    float *x = malloc(sizeof(float) * (size_t)(rows * len)), *y = malloc(sizeof(float) * (size_t)(rows * len)),
          *z = malloc(sizeof(float) * (size_t)(rows * len));
    for (int64_t i = 0; i < rows * len; i++) x[i] = (float)i;
    slm_cv_permute_rows(x, y, rows, len, 16, false);
    slm_cv_permute_rows(y, z, rows, len, 16, true);
    cr_expect(memcmp(x, z, sizeof(float) * (size_t)(rows * len)) == 0, "unpermute(permute(x)) != x");
    /* it is llama.cpp's reshape(n_head, 2, hd/2, -1).swapaxes(1, 2): GGUF row 2j+h is HF row h*hd/2+j */
    for (int64_t head = 0; head < 3; head++)
        for (int64_t j = 0; j < 8; j++)
            for (int64_t h = 0; h < 2; h++)
                cr_expect_eq(y[(head * 16 + 2 * j + h) * len], x[(head * 16 + h * 8 + j) * len]);
    free(x);
    free(y);
    free(z);
}

/* ---- conversions checked against the reference ---------------------------------- */

Test(convert, llama_f32_matches_rotate_half_reference) {
    hf_model m = new_model("llama", DT_F32);
    make_weights(&m);
    check_logits("llama-f32", &m, NULL);
    model_free(&m);
}

Test(convert, llama_f16_and_bf16_sources) {
    for (int dt = DT_F16; dt <= DT_BF16; dt++) {
        hf_model m = new_model("llama", dt);
        make_weights(&m);
        check_logits(dt == DT_F16 ? "llama-f16src" : "llama-bf16src", &m, NULL);
        model_free(&m);
    }
}

Test(convert, llama_tied_embeddings) {
    hf_model m = new_model("llama", DT_F32);
    m.tied = true;
    make_weights(&m);
    check_logits("llama-tied", &m, NULL);
    char out[600];
    snprintf(out, sizeof out, "%s/llama-tied.gguf", th_tmpdir());
    slm_gguf *g = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_open(out, &g, &err), 0, "%s", err.msg);
    cr_expect(!slm_gguf_find_tensor(g, "output.weight"), "tied: no output.weight");
    slm_gguf_close(g);
    model_free(&m);
}

Test(convert, qwen2_qwen3_phi3_match_reference) {
    static const char *const archs[] = { "qwen2", "qwen3", "phi3" };
    for (int k = 0; k < 3; k++) {
        hf_model m = new_model(archs[k], k == 1 ? DT_BF16 : DT_F32);
        make_weights(&m);
        check_logits(archs[k], &m, NULL);
        model_free(&m);
    }
}

Test(convert, sharded_checkpoint) {
    hf_model m = new_model("llama", DT_F32);
    make_weights(&m);
    const char *dir = write_folder("sharded", &m, NULL);
    remove(path_in(dir, "model.safetensors"));
    int half = m.n / 2;
    write_st(path_in(dir, "model-00001-of-00002.safetensors"), &m, 0, half);
    write_st(path_in(dir, "model-00002-of-00002.safetensors"), &m, half, m.n);
    char *idx = malloc(1 << 16);
    size_t n = (size_t)sprintf(idx, "{\"metadata\": {}, \"weight_map\": {");
    for (int i = 0; i < m.n; i++)
        n += (size_t)sprintf(idx + n, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", m.t[i].name,
                             i < half ? 1 : 2);
    sprintf(idx + n, "}}");
    write_text(path_in(dir, "model.safetensors.index.json"), idx);
    free(idx);
    char out[600], ref[600];
    snprintf(out, sizeof out, "%s.gguf", dir);
    snprintf(ref, sizeof ref, "%s.ref.gguf", dir);
    slm_err err = { 0 };
    cr_assert_eq(convert(dir, out, SLM_TYPE_F32, NULL, &err), 0, "%s", err.msg);
    write_reference(ref, &m, dir);
    int32_t nv;
    float *a = logits_of(out, &nv), *b = logits_of(ref, &nv);
    float dmax = 0;
    for (size_t i = 0; i < (size_t)N_PROMPT * (size_t)nv; i++) dmax = fmaxf(dmax, fabsf(a[i] - b[i]));
    cr_expect(dmax < 1e-3f, "sharded: logits differ by %g", dmax);
    free(a);
    free(b);
    /* an index that puts a tensor in the wrong shard */
    write_text(path_in(dir, "model.safetensors.index.json"),
               "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\","
               " \"lm_head.weight\": \"model-00002-of-00002.safetensors\"}}");
    cr_expect_neq(convert(dir, out, SLM_TYPE_F32, NULL, &err), 0);
    cr_expect(strstr(err.msg, "weight_map"), "%s", err.msg);
    model_free(&m);
}

/* ---- metadata, types, RoPE scaling ------------------------------------------------ */

static slm_gguf *open_gguf(const char *path) {
    slm_gguf *g = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_open(path, &g, &err), 0, "%s", err.msg);
    return g;
}

Test(convert, metadata_and_output_types) {
    hf_model m = new_model("llama", DT_BF16);
    m.ff = 40;                               /* ffn_down rows of 40: not a multiple of 32 */
    make_weights(&m);
    const char *dir = write_folder("types", &m, NULL);
    char out[600];
    snprintf(out, sizeof out, "%s.gguf", dir);
    slm_err err = { 0 };
    slm_convert_stats st;
    cr_assert_eq(convert(dir, out, SLM_TYPE_Q8_0, &st, &err), 0, "%s", err.msg);
    cr_expect_eq(st.n_fallback, 2, "ffn_down of both layers falls back to F16");
    slm_gguf *g = open_gguf(out);
    cr_expect_eq(slm_gguf_find_tensor(g, "blk.0.attn_q.weight")->type, SLM_TYPE_Q8_0);
    cr_expect_eq(slm_gguf_find_tensor(g, "token_embd.weight")->type, SLM_TYPE_Q8_0);
    cr_expect_eq(slm_gguf_find_tensor(g, "blk.1.ffn_down.weight")->type, SLM_TYPE_F16);
    cr_expect_eq(slm_gguf_find_tensor(g, "blk.0.attn_norm.weight")->type, SLM_TYPE_F32);
    uint32_t u = 0;
    float f = 0;
    cr_expect_eq(slm_gguf_get_u32(g, "general.file_type", &u, NULL), 0);
    cr_expect_eq(u, 7);
    cr_expect_eq(slm_gguf_get_u32(g, "llama.rope.dimension_count", &u, NULL), 0);
    cr_expect_eq(u, 16);
    cr_expect_eq(slm_gguf_get_u32(g, "llama.context_length", &u, NULL), 0);
    cr_expect_eq(u, 256);
    cr_expect_eq(slm_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f, NULL), 0);
    cr_expect_float_eq(f, 1e-5f, 1e-12f);
    slm_gguf_str s;
    cr_expect_eq(slm_gguf_get_str(g, "tokenizer.ggml.model", &s, NULL), 0);
    cr_expect(slm_gguf_str_eq(s, "llama"));
    cr_expect_eq(slm_gguf_get_str(g, "tokenizer.chat_template", &s, NULL), 0);
    uint64_t n_tok = 0;
    slm_gguf_vtype et;
    cr_expect_eq(slm_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n_tok, NULL), 0);
    cr_expect_eq(n_tok, 272, "padded to the embedding rows");
    slm_gguf_close(g);
    /* q8_0 and bf16 load and run */
    int32_t nv;
    free(logits_of(out, &nv));
    cr_assert_eq(convert(dir, out, SLM_TYPE_BF16, &st, &err), 0, "%s", err.msg);
    g = open_gguf(out);
    cr_expect_eq(slm_gguf_find_tensor(g, "blk.0.attn_q.weight")->type, SLM_TYPE_BF16);
    slm_gguf_close(g);
    free(logits_of(out, &nv));
    model_free(&m);
}

Test(convert, rope_scaling_llama3_and_linear) {
    hf_model m = new_model("llama", DT_F32);
    make_weights(&m);
    const char *dir = write_folder("llama3rope", &m,
                                   "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 32.0, \"low_freq_factor\": 1.0,"
                                   " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}");
    char out[600];
    snprintf(out, sizeof out, "%s.gguf", dir);
    slm_err err = { 0 };
    cr_assert_eq(convert(dir, out, SLM_TYPE_F32, NULL, &err), 0, "%s", err.msg);
    slm_gguf *g = open_gguf(out);
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, "rope_freqs.weight");
    cr_assert(t, "rope_freqs.weight written");
    cr_assert_eq(t->ne[0], 8);
    float want[8], got[8];
    slm_rope_llama3_factors(want, 16, 10000.0f, 32, 1, 4, 64);
    memcpy(got, t->data, sizeof got);
    for (int i = 0; i < 8; i++) cr_expect_float_eq(got[i], want[i], 1e-6f, "factor %d", i);
    cr_expect_float_eq(got[0], 1.0f, 1e-6f, "the fastest frequency is kept");
    cr_expect_float_eq(got[7], 32.0f, 1e-6f, "the slowest is slowed by the factor");
    slm_gguf_close(g);
    int32_t nv;
    free(logits_of(out, &nv));

    write_config(dir, &m, "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}");
    cr_assert_eq(convert(dir, out, SLM_TYPE_F32, NULL, &err), 0, "%s", err.msg);
    g = open_gguf(out);
    slm_gguf_str s;
    float f = 0;
    cr_expect_eq(slm_gguf_get_str(g, "llama.rope.scaling.type", &s, NULL), 0);
    cr_expect(slm_gguf_str_eq(s, "linear"));
    cr_expect_eq(slm_gguf_get_f32(g, "llama.rope.scaling.factor", &f, NULL), 0);
    cr_expect_float_eq(f, 2.0f, 1e-6f);
    slm_gguf_close(g);

    write_config(dir, &m, "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}");
    cr_expect_eq(convert(dir, out, SLM_TYPE_F32, NULL, &err), SLM_EUNSUPPORTED);
    cr_expect(strstr(err.msg, "yarn"), "%s", err.msg);
    model_free(&m);
}

/* ---- errors ---------------------------------------------------------------------- */

static int count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    if (d) closedir(d);
    return n;
}

/* Converting dir must fail with code (0: any) and a message holding want;
 * nothing named out* may be left. */
static void expect_fail(const char *dir, int code, const char *want) {
    char out[600];
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    slm_err err = { 0 };
    int rc = convert(dir, out, SLM_TYPE_F16, NULL, &err);
    cr_expect_neq(rc, 0, "conversion should fail (%s)", want);
    if (code) cr_expect_eq(rc, code, "rc %d, message: %s", rc, err.msg);
    cr_expect(strstr(err.msg, want), "message '%s' should mention '%s'", err.msg, want);
    cr_expect(!strchr(err.msg, '\n'), "one line: %s", err.msg);
    cr_expect_eq(count_entries(dir, "out."), 0, "a failed conversion leaves nothing behind");
}

/* Writes a safetensors file: header text, then data_bytes bytes of zeros;
 * hlen_override != 0 replaces the length field. */
static void write_raw_st(const char *path, const char *header, size_t data_bytes, uint64_t hlen_override) {
    size_t hl = strlen(header), total = 8 + hl + data_bytes;
    unsigned char *b = calloc(1, total);
    uint64_t h = hlen_override ? hlen_override : hl;
    memcpy(b, &h, 8);
    memcpy(b + 8, header, hl);
    cr_assert_eq(th_write_file(path, b, total), 0);
    free(b);
}

Test(convert, malformed_safetensors) {
    hf_model m = new_model("llama", DT_F32);
    make_weights(&m);
    const char *dir = write_folder("malformed", &m, NULL);
    const char *st = path_in(dir, "model.safetensors");
    size_t len = 0;
    char *good = th_read_file(st, &len);

    th_write_file(st, good, len - 100);                                  /* truncated */
    expect_fail(dir, SLM_EFORMAT, "outside");
    th_write_file(st, good, 5);                                          /* shorter than the length */
    expect_fail(dir, SLM_EFORMAT, "too short");
    write_raw_st(st, "{}", 0, 1u << 30);                                 /* header length past EOF */
    expect_fail(dir, SLM_EFORMAT, "header length");
    write_raw_st(st, "{\"a\": [1, 2", 0, 0);                             /* not JSON */
    expect_fail(dir, SLM_EFORMAT, "JSON");
    write_raw_st(st, "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": [0, 256]}}", 100, 0);
    expect_fail(dir, SLM_EFORMAT, "outside");                            /* offsets out of range */
    write_raw_st(st, "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": [0, 200]}}", 256, 0);
    expect_fail(dir, SLM_EFORMAT, "need 256");                           /* size disagrees with shape */
    write_raw_st(st, "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [-64], \"data_offsets\": [0, 256]}}", 256, 0);
    expect_fail(dir, SLM_EFORMAT, "shape[0]");
    write_raw_st(st, "{\"x\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 4]}}", 4, 0);
    expect_fail(dir, SLM_EFORMAT, "overflows");
    write_raw_st(st, "{\"model.norm.weight\": {\"dtype\": \"Q9\", \"shape\": [64], \"data_offsets\": [0, 256]}}", 256, 0);
    expect_fail(dir, SLM_EFORMAT, "unknown dtype 'Q9'");

    /* valid files with the wrong content: re-write the whole model with one change */
    hf_tensor *norm = find_t(&m, "model.norm.weight");
    norm->rows = 63;                                                     /* shape vs config */
    write_st(st, &m, 0, m.n);
    expect_fail(dir, SLM_EFORMAT, "model.norm.weight' has shape [63], but config.json implies [64]");
    norm->rows = 64;
    snprintf(norm->name, sizeof norm->name, "model.norm_renamed.weight");  /* missing, and an unknown one */
    write_st(st, &m, 0, m.n);
    expect_fail(dir, SLM_EFORMAT, "'model.norm.weight' (for output_norm.weight) is missing");
    snprintf(norm->name, sizeof norm->name, "model.norm.weight");
    m.t[m.n] = (hf_tensor){ .rows = 4, .cols = 0, .data = calloc(4, sizeof(float)) };
    snprintf(m.t[m.n].name, sizeof m.t[m.n].name, "model.extra_thing");
    m.n++;
    write_st(st, &m, 0, m.n);
    expect_fail(dir, SLM_EUNSUPPORTED, "model.extra_thing");
    m.n--;
    free(m.t[m.n].data);

    /* a dtype slm does not read, named with its tensor */
    char *bad = malloc(len);
    memcpy(bad, good, len);
    char *dt = strstr(bad + 8, "\"model.norm.weight\":{\"dtype\":\"F32\"");
    cr_assert(dt);
    memcpy(strstr(dt, "F32"), "I32", 3);                                 /* same size, other dtype */
    th_write_file(st, bad, len);
    expect_fail(dir, SLM_EUNSUPPORTED, "'model.norm.weight' has dtype I32");
    free(bad);
    th_write_file(st, good, len);
    free(good);
    model_free(&m);
}

Test(convert, unsupported_and_missing_inputs) {
    hf_model m = new_model("llama", DT_F32);
    make_weights(&m);
    const char *dir = write_folder("unsupported", &m, NULL);
    char cfg[600];
    snprintf(cfg, sizeof cfg, "{\"architectures\": [\"GPT2LMHeadModel\"], \"hidden_size\": 64}");
    write_text(path_in(dir, "config.json"), cfg);
    expect_fail(dir, SLM_EUNSUPPORTED, "architecture 'GPT2LMHeadModel' is not supported");
    write_config(dir, &m, NULL);
    char *text = th_read_file(path_in(dir, "config.json"), NULL);
    memcpy(strstr(text, "\"silu\""), "\"gelu\"", 6);
    write_text(path_in(dir, "config.json"), text);
    free(text);
    expect_fail(dir, SLM_EUNSUPPORTED, "gelu");
    write_text(path_in(dir, "config.json"), "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64}");
    expect_fail(dir, SLM_EFORMAT, "'num_hidden_layers' is missing");
    write_config(dir, &m, NULL);
    remove(path_in(dir, "tokenizer.json"));
    expect_fail(dir, 0, "tokenizer.json");
    write_tokenizer(dir);
    remove(path_in(dir, "model.safetensors"));
    expect_fail(dir, SLM_ENOTFOUND, "model.safetensors");
    remove(path_in(dir, "config.json"));
    expect_fail(dir, SLM_EIO, "config.json");
    expect_fail("/nonexistent-slm-dir", SLM_EIO, "config.json");
    model_free(&m);
}

Test(convert, cli) {
    hf_model m = new_model("llama", DT_F32);
    make_weights(&m);
    const char *dir = write_folder("cli", &m, NULL);
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s convert %s -o %s/cli.gguf --type q8_0 2>&1", th_slm_bin(), dir, th_tmpdir());
    int rc = th_run(cmd, &out);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "wrote"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s run -m %s/cli.gguf -p 'ab c' -n 4 --temp 0 2>/dev/null", th_slm_bin(), th_tmpdir());
    cr_expect_eq(th_run(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd, "%s convert %s -o %s/cli.gguf --type q4_k 2>&1", th_slm_bin(), dir, th_tmpdir());
    cr_expect_eq(th_run(cmd, NULL), 2, "an unknown --type is a usage error");
    remove(path_in(dir, "model.safetensors"));
    snprintf(cmd, sizeof cmd, "%s convert %s -o %s/cli2.gguf 2>&1", th_slm_bin(), dir, th_tmpdir());
    rc = th_run(cmd, &out);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(!strncmp(out, "slm: error: ", 12) && strchr(out, '\n') == out + strlen(out) - 1, "one error line: %s", out);
    free(out);
    model_free(&m);
}

/* ---- the SentencePiece-style tokenizer.json ------------------------------------------ */

static int32_t tokenize(const slm_vocab *v, const char *s, bool bos, int32_t *ids) {
    int32_t n = 0;
    slm_err err = { 0 };
    cr_assert_eq(slm_tokenize(v, s, strlen(s), bos, false, ids, 512, &n, &err), 0, "%s", err.msg);
    return n;
}

/* The vocabulary read from tokenizer.json and the one in the converted
 * GGUF tokenize every string alike. */
static void expect_same_tokens(const char *tok_json, const char *gguf, const char *const *strs, int n_strs) {
    slm_vocab *a = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_vocab_load_hf(tok_json, &a, &err), 0, "%s", err.msg);
    slm_model_params mp = slm_model_default_params();
    mp.vocab_only = true;
    slm_model *m = NULL;
    cr_assert_eq(slm_model_load(gguf, &mp, &m, &err), 0, "%s", err.msg);
    const slm_vocab *b = slm_model_vocab(m);
    cr_expect_str_eq(slm_vocab_kind(a), "llama");
    cr_expect_eq(slm_vocab_bos(a), slm_vocab_bos(b));
    cr_expect_eq(slm_vocab_eos(a), slm_vocab_eos(b));
    cr_expect_eq(slm_vocab_add_bos(a), slm_vocab_add_bos(b));
    int32_t ia[512], ib[512];
    for (int i = 0; i < n_strs; i++) {
        int32_t na = tokenize(a, strs[i], true, ia), nb = tokenize(b, strs[i], true, ib);
        cr_expect(na == nb && !memcmp(ia, ib, (size_t)na * sizeof *ia), "'%s': %d vs %d tokens", strs[i], na, nb);
    }
    slm_model_free(m);
    slm_vocab_free(a);
}

static const char *const SAMPLES[] = {
    "", "ab c", "abc abab  cab", "Once upon a time, there was a little girl named Lily.",
    "Hello world! 123 + 456 = 579; naïve café — done.", "  leading and trailing  ", "tab\tnew\nline",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xa6\x99 emoji", "<s>not special</s>", "\x01\x7f bytes",
};
#define N_SAMPLES ((int)(sizeof SAMPLES / sizeof SAMPLES[0]))

Test(convert, spm_tokenizer_json_without_fixture) {
    hf_model m = new_model("llama", DT_F32);
    make_weights(&m);
    const char *dir = write_folder("spmtok", &m, NULL);
    char out[600];
    snprintf(out, sizeof out, "%s.gguf", dir);
    slm_err err = { 0 };
    cr_assert_eq(convert(dir, out, SLM_TYPE_F16, NULL, &err), 0, "%s", err.msg);
    expect_same_tokens(path_in(dir, "tokenizer.json"), out, SAMPLES, N_SAMPLES);
    slm_vocab *v = NULL;
    cr_assert_eq(slm_vocab_load_hf(path_in(dir, "tokenizer.json"), &v, &err), 0, "%s", err.msg);
    int32_t ids[512];
    /* "▁ab▁c": merges ▁+a, then ▁a+b; "c" has no merge with "▁" */
    int32_t n = tokenize(v, "ab c", true, ids);
    cr_expect(n == 4 && ids[0] == 1 && ids[1] == 265 && ids[2] == 259 && ids[3] == 262, "ab c -> %d tokens", n);
    /* "é" is not in the vocabulary: byte fallback <0xC3> <0xA9> */
    n = tokenize(v, "\xc3\xa9", false, ids);
    cr_expect(n == 3 && ids[0] == 259 && ids[1] == 3 + 0xC3 && ids[2] == 3 + 0xA9, "é -> %d tokens", n);
    cr_expect_eq(slm_vocab_token_type(v, 3), SLM_TOKTYPE_BYTE);
    cr_expect_eq(slm_vocab_token_type(v, 0), SLM_TOKTYPE_UNKNOWN);
    slm_vocab_free(v);
    model_free(&m);
}

/* ---- the TinyStories fixture ---------------------------------------------------------- */

static const char STORY[] = "Once upon a time, there was a little girl named Lily. She had a toy car that she loved very much.";

static void expect_story(const char *gguf) {
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s run -m %s -p '' --temp 0 -n 40 2>/dev/null", th_slm_bin(), gguf);
    cr_assert_eq(th_run(cmd, &out), 0, "%s", out ? out : "");
    cr_expect(!strncmp(out, STORY, strlen(STORY)), "%s tells:\n%s", gguf, out);
    free(out);
}

Test(convert, tinystories_story) {
    SKIP_WITHOUT_FIXTURE(dir, "models/tinystories-656k/config.json");
    char hf[4096];
    snprintf(hf, sizeof hf, "%s", dir);
    *strrchr(hf, '/') = 0;
    static const struct { int32_t type; const char *name; } types[] = {
        { SLM_TYPE_F32, "f32" }, { SLM_TYPE_F16, "f16" }, { SLM_TYPE_BF16, "bf16" }, { SLM_TYPE_Q8_0, "q8_0" },
    };
    for (int k = 0; k < 4; k++) {
        char out[600];
        snprintf(out, sizeof out, "%s/tinystories-%s.gguf", th_tmpdir(), types[k].name);
        slm_err err = { 0 };
        slm_convert_stats st;
        cr_assert_eq(convert(hf, out, types[k].type, &st, &err), 0, "%s", err.msg);
        cr_expect_eq(st.n_tensors, 20);
        cr_expect_eq(st.n_params, 656000);
        slm_model *m = NULL;
        cr_assert_eq(slm_model_load(out, NULL, &m, &err), 0, "%s", err.msg);
        slm_model_info in;
        slm_model_get_info(m, &in);
        cr_expect(in.tied_output);
        cr_expect_eq(in.n_head_kv, 4);
        cr_expect_eq(slm_vocab_bos(slm_model_vocab(m)), 1);
        cr_expect_eq(slm_vocab_eos(slm_model_vocab(m)), 2);
        slm_model_free(m);
        if (types[k].type != SLM_TYPE_Q8_0) expect_story(out);   /* Q8_0: loads; its story may drift */
    }
}

Test(convert, tinystories_tokenizer_json) {
    SKIP_WITHOUT_FIXTURE(tok, "models/tinystories-656k/tokenizer.json");
    char hf[4096], out[600];
    snprintf(hf, sizeof hf, "%s", tok);
    *strrchr(hf, '/') = 0;
    snprintf(out, sizeof out, "%s/tinystories-tok.gguf", th_tmpdir());
    slm_err err = { 0 };
    cr_assert_eq(convert(hf, out, SLM_TYPE_F16, NULL, &err), 0, "%s", err.msg);
    expect_same_tokens(tok, out, SAMPLES, N_SAMPLES);
    /* Hugging Face's BPE (and llama.cpp on the converted file) give these */
    slm_vocab *v = NULL;
    cr_assert_eq(slm_vocab_load_hf(tok, &v, &err), 0, "%s", err.msg);
    int32_t ids[512];
    static const int32_t want[] = { 80, 147, 201, 282, 215, 286, 598, 629, 10 };
    int32_t n = tokenize(v, "Once upon a time, there was a little girl named Lily.", false, ids);
    cr_expect(n == 9 && !memcmp(ids, want, sizeof want), "Lily sentence: %d tokens", n);
    static const int32_t want2[] = { 80, 1288, 139, 410, 555, 271, 12, 13, 14, 80, 0, 80, 15, 16, 17 };
    n = tokenize(v, "Hello world! 123 + 456", false, ids);
    cr_expect(n == 15 && !memcmp(ids, want2, sizeof want2), "Hello world: %d tokens", n);
    slm_vocab_free(v);
}

/* ---- byte-level BPE tokenizer.json through GGUF ------------------------------------------ */

/* Counts the llama.cpp test vectors (vocab/NAME.inp / .out) v gets wrong. */
static int vector_failures(const slm_vocab *v, const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/%s.inp", name);
    char *inp = th_read_file(th_fixture(rel), NULL);
    snprintf(rel, sizeof rel, "vocab/%s.out", name);
    char *outs = th_read_file(th_fixture(rel), NULL);
    cr_assert(inp && outs, "%s vectors missing", name);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int32_t *ids = malloc(65536 * sizeof *ids);
    int failures = 0, n_tests = 0;
    char *ip = inp, *op = outs;
    while (*ip) {
        char *next = strstr(ip, sep), *eol = strchr(op, '\n');
        size_t slen = next ? (size_t)(next - ip) : strlen(ip);
        cr_assert(eol, "%s: fewer .out lines than tests", name);
        *eol = 0;
        int32_t n = -1, n_want = 0;
        slm_err err = { 0 };
        int rc = slm_tokenize(v, ip, slen, false, false, ids, 65536, &n, &err);
        bool same = rc == 0;
        for (char *t = strtok(op, " "); t && same; t = strtok(NULL, " "), n_want++) same = n_want < n && ids[n_want] == atoi(t);
        same = same && n_want == n;
        failures += !same;
        n_tests++;
        op = eol + 1;
        ip = next ? next + strlen(sep) : ip + slen;
    }
    cr_expect(n_tests > 10, "%s: %d vectors", name, n_tests);
    free(ids);
    free(inp);
    free(outs);
    return failures;
}

/* tokenizer.json → slm_vocab_write_gguf → GGUF → the same vectors. */
static void bpe_round_trip(const char *json_rel, const char *vectors, const char *pre, int32_t pad_to) {
    const char *json = th_fixture(json_rel);
    if (!json) {
        cr_skip_test("fixture %s absent (../shared/fixtures not found): skipped", json_rel);
        return;
    }
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_vocab_load_hf(json, &v, &err), 0, "%s", err.msg);
    int32_t n = slm_vocab_n_tokens(v);
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert_eq(slm_vocab_write_gguf(v, w, n + pad_to, &err), 0, "%s", err.msg);
    char out[600];
    snprintf(out, sizeof out, "%s/vocab-%s.gguf", th_tmpdir(), pre);
    cr_assert_eq(slm_gguf_writer_write(w, out, &err), 0, "%s", err.msg);
    slm_gguf_writer_free(w);
    slm_gguf *g = open_gguf(out);
    slm_vocab *back = NULL;
    cr_assert_eq(slm_vocab_load(g, &back, &err), 0, "%s", err.msg);
    cr_expect_str_eq(slm_vocab_kind(back), "gpt2");
    cr_expect_str_eq(slm_vocab_pre(back), pre);
    cr_expect_eq(slm_vocab_n_tokens(back), n + pad_to);
    cr_expect_eq(slm_vocab_bos(back), slm_vocab_bos(v));
    cr_expect_eq(slm_vocab_eos(back), slm_vocab_eos(v));
    cr_expect_eq(slm_vocab_add_bos(back), slm_vocab_add_bos(v));
    int failures = vector_failures(back, vectors);
    cr_expect_eq(failures, 0, "%d %s vectors fail through GGUF", failures, vectors);
    slm_vocab_free(back);
    slm_gguf_close(g);
    slm_vocab_free(v);
}

Test(convert, llama3_tokenizer_json_through_gguf) {
    bpe_round_trip("vocab/hf-llama3/tokenizer.json", "ggml-vocab-llama-bpe.gguf", "llama-bpe", 0);
}

Test(convert, qwen_tokenizer_json_through_gguf) {
    bpe_round_trip("vocab/hf-qwen3/tokenizer.json", "ggml-vocab-qwen2.gguf", "qwen2", 271);   /* Qwen pads its embedding */
}

/* ---- out of memory ------------------------------------------------------------------------ */

/* Every allocation convert makes may fail: the answer is SLM_ENOMEM, memory
 * is given back and no file is left. */
Test(convert, out_of_memory) {
    hf_model m = new_model("qwen2", DT_F16);
    make_weights(&m);
    const char *dir = write_folder("oom", &m, NULL);
    char out[600];
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    size_t mem0 = slm_mem_used();
    int n_fail = 0;
    for (long k = 1; k < 100000; k++) {
        slm_err err = { 0 };
        slm_alloc_fail_after(k);
        int rc = convert(dir, out, SLM_TYPE_Q8_0, NULL, &err);
        slm_alloc_fail_after(0);
        cr_assert_eq(slm_mem_used(), mem0, "leak after failing allocation %ld", k);
        if (rc == 0) break;
        cr_assert_eq(rc, SLM_ENOMEM, "allocation %ld: rc %d (%s)", k, rc, err.msg);
        cr_assert_eq(count_entries(dir, "out."), 0, "allocation %ld left a file", k);
        n_fail++;
    }
    cr_expect_gt(n_fail, 20);
    int32_t nv;
    free(logits_of(out, &nv));
    model_free(&m);
}

/* SmolLM's pre-tokenizer (digits one by one, then GPT-2's ByteLevel regex)
 * is llama.cpp's "smollm"; a plain ByteLevel is "gpt-2". */
Test(convert, smollm_pre_tokenizer) {
    static const char *const pre[2] = {
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true},"
        " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}]}",
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}",
    };
    for (int k = 0; k < 2; k++) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"pre_tokenizer\": %s, \"model\": {\"type\": \"BPE\", \"vocab\": {\"1\": 0, \"2\": 1, \"3\": 2,"
                 " \"12\": 3, \"a\": 4}, \"merges\": [\"1 2\"]}}", pre[k]);
        const char *p = th_tmp("smollm-tokenizer.json");
        write_text(p, json);
        slm_vocab *v = NULL;
        slm_err err = { 0 };
        cr_assert_eq(slm_vocab_load_hf(p, &v, &err), 0, "%s", err.msg);
        cr_expect_str_eq(slm_vocab_pre(v), k ? "gpt-2" : "smollm");
        int32_t ids[16];
        int32_t n = tokenize(v, "123", false, ids);
        if (k == 0) cr_expect(n == 3 && ids[0] == 0 && ids[1] == 1 && ids[2] == 2, "smollm: %d tokens", n);
        else cr_expect(n == 2 && ids[0] == 3 && ids[1] == 2, "gpt-2: %d tokens", n);
        slm_vocab_free(v);
    }
}

/* Random damage to a small safetensors file — digits changed in the
 * header, bytes flipped, the end cut off — is answered with an error or
 * with tensors that read entirely inside the file (ASan checks the reads). */
Test(convert, safetensors_mutations) {
    static const int dts[3] = { DT_F32, DT_F16, DT_BF16 };
    const char *path = th_tmp("mutant.safetensors");
    int n_ok = 0, n_err = 0;
    uint64_t s = 99;
    for (int d = 0; d < 3; d++) {
        hf_model m = { .dtype = dts[d], .seed = 5 };
        add_t(&m, "a.weight", 4, 8, 1, 0);
        add_t(&m, "b.bias", 8, 0, 1, 0);
        add_t(&m, "c.weight", 3, 5, 1, 0);
        write_st(path, &m, 0, m.n);
        size_t len = 0;
        unsigned char *good = (unsigned char *)th_read_file(path, &len), *buf = malloc(len);
        uint64_t hl;
        memcpy(&hl, good, 8);
        for (int it = 0; it < 700; it++) {
            memcpy(buf, good, len);
            size_t n = len;
            for (int k = 0; k < 1 + it % 3; k++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = (size_t)(s >> 33) % (8 + hl);
                int what = (int)((s >> 20) % 4);
                if (what == 0 && buf[at] >= '0' && buf[at] <= '9') buf[at] = (unsigned char)('0' + (s >> 40) % 10);
                else if (what == 1) buf[at] ^= (unsigned char)(1u << ((s >> 45) % 8));
                else if (what == 2) n = (size_t)(s >> 13) % (len + 1);
                else buf[at] = (unsigned char)"0123456789,[]{}\" -e."[(s >> 50) % 20];
            }
            cr_assert_eq(th_write_file(path, buf, n), 0);
            slm_st *st = NULL;
            slm_err err = { 0 };
            cr_assert_eq(slm_st_new(&st, &err), 0);
            if (slm_st_add_file(st, path, &err) == 0) {
                n_ok++;
                for (int32_t i = 0; i < slm_st_n_tensors(st); i++) {
                    const slm_st_tensor *t = slm_st_tensor_at(st, i);
                    float row[64];
                    for (int64_t e = 0; slm_st_dtype_readable(t->dtype) && e < t->n_elems; e += 64) {
                        int64_t k = t->n_elems - e < 64 ? t->n_elems - e : 64;
                        cr_assert_eq(slm_st_read_f32(t, e, k, row, &err), 0, "%s", err.msg);
                    }
                    cr_expect_eq(slm_st_read_f32(t, t->n_elems, 1, row, &err), slm_st_dtype_readable(t->dtype) ? SLM_ERANGE : SLM_EUNSUPPORTED);
                }
            } else {
                n_err++;
                cr_expect(err.msg[0] && !strchr(err.msg, '\n'), "one-line error");
            }
            slm_st_close(st);
        }
        free(buf);
        free(good);
        model_free(&m);
    }
    cr_expect(n_ok > 50 && n_err > 500, "%d mutants opened, %d refused", n_ok, n_err);
}
