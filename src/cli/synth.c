/*
 * synth.c — `slm synth`: writes a random-weight model of any shape as a GGUF
 * that slm and llama.cpp both load. Its text is noise; it exists so that the
 * suite, `make run` and the benchmarks need no download. The vocabulary is a
 * built-in byte-level one (256 byte tokens in GPT-2's byte-to-unicode
 * spelling, <|endoftext|>, ChatML's <|im_start|>/<|im_end|>, padded with
 * unused tokens up to the vocabulary size) or copied from --vocab FILE.
 * Weights come from a seeded Gaussian, quantized row by row to --type.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "convert/rope_freqs.h"
#include "gguf/gguf_write.h"
#include "kernels/types.h"
#include "util/alloc.h"

typedef struct shape {
    const char *name, *arch;
    int32_t dim, layers, heads, kv_heads, ff, vocab, ctx;
    float rope_base;
    bool tied;
    bool llama3_rope;   /* write rope_freqs.weight (Llama 3.1/3.2 frequency scaling) */
} shape;

static const shape PRESETS[] = {
    { "tiny", "llama", 256, 4, 4, 2, 512, 512, 2048, 10000.0f, false, false },
    { "tinyllama-1.1b", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, false, false },
    { "llama-3.2-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 500000.0f, true, true },
    { "qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.0f, true, false },
    { "smollm2-360m", "llama", 960, 32, 15, 5, 2560, 49152, 8192, 100000.0f, true, false },
};

static const struct { const char *name; int32_t type; uint32_t ftype; } TYPES[] = {
    { "f32", SLM_TYPE_F32, 0 },   { "f16", SLM_TYPE_F16, 1 },   { "bf16", SLM_TYPE_BF16, 32 },
    { "q8_0", SLM_TYPE_Q8_0, 7 }, { "q4_0", SLM_TYPE_Q4_0, 2 }, { "q4_1", SLM_TYPE_Q4_1, 3 },
    { "q5_0", SLM_TYPE_Q5_0, 8 }, { "q5_1", SLM_TYPE_Q5_1, 9 }, { "q2_k", SLM_TYPE_Q2_K, 10 },
    { "q3_k", SLM_TYPE_Q3_K, 11 }, { "q4_k", SLM_TYPE_Q4_K, 14 }, { "q5_k", SLM_TYPE_Q5_K, 16 },
    { "q6_k", SLM_TYPE_Q6_K, 18 },
};

typedef struct rng { uint64_t s; } rng;
static uint64_t next_u64(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double uniform(rng *r) { return ((next_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static float gauss(rng *r) { return (float)(sqrt(-2.0 * log(uniform(r))) * cos(6.283185307179586 * uniform(r))); }

typedef struct synth {
    slm_gguf_writer *w;
    rng r;
    float scale;
    void **bufs; int32_t n_bufs, cap_bufs;   /* tensor data kept until the write */
} synth;

static int keep(synth *s, void *p) {
    if (s->n_bufs == s->cap_bufs) {
        int32_t nc = s->cap_bufs ? s->cap_bufs * 2 : 64;
        void **n = slm_realloc(s->bufs, (size_t)nc * sizeof *n);
        if (!n) return -1;
        s->bufs = n;
        s->cap_bufs = nc;
    }
    s->bufs[s->n_bufs++] = p;
    return 0;
}

/* Adds a tensor [ne0, ne1] (ne1 = 0: a vector) of `type`, Gaussian values
 * times scale plus offset. */
static int add(synth *s, const char *name, int32_t type, int64_t ne0, int64_t ne1, float scale, float offset) {
    int64_t rows = ne1 ? ne1 : 1;
    const slm_type_traits *tr = slm_type_traits_get(type);
    if (!tr || !tr->from_float) return cli_fail("type %s cannot be written", slm_type_name(type));
    if (ne0 % tr->blck_size)
        return cli_fail("tensor '%s': row length %lld is not a multiple of the %s block size %lld; pick another --dim/--ff or type",
                        name, (long long)ne0, tr->name, (long long)tr->blck_size);
    size_t row = slm_row_size(type, ne0);
    unsigned char *data = slm_malloc(row * (size_t)rows);
    float *tmp = slm_malloc((size_t)ne0 * sizeof *tmp);
    if (!data || !tmp || keep(s, data)) {
        slm_free(data);
        slm_free(tmp);
        return cli_fail("out of memory for tensor '%s'", name);
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < ne0; i++) tmp[i] = offset + scale * gauss(&s->r);
        tr->from_float(tmp, data + (size_t)r * row, ne0);
    }
    slm_free(tmp);
    int64_t ne[2] = { ne0, ne1 };
    if (slm_gguf_add_tensor(s->w, name, type, ne1 ? 2 : 1, ne, data, row * (size_t)rows))
        return cli_fail("cannot add tensor '%s'", name);
    return 0;
}

/* Llama 3.1/3.2 RoPE frequency factors (factor 32, low 1, high 4, original
 * context 8192): long wavelengths are slowed by the factor, short ones kept,
 * the band between interpolated. The model divides each angle by these. */
static int add_llama3_rope_freqs(synth *s, int32_t head_dim, float base) {
    int32_t half = head_dim / 2;
    float *f = slm_malloc((size_t)half * sizeof *f);
    if (!f || keep(s, f)) { slm_free(f); return cli_fail("out of memory"); }
    slm_rope_llama3_factors(f, head_dim, base, 32, 1, 4, 8192);   /* Llama 3.2's settings */
    int64_t ne[1] = { half };
    if (slm_gguf_add_tensor(s->w, "rope_freqs.weight", SLM_TYPE_F32, 1, ne, f, (uint64_t)half * 4))
        return cli_fail("cannot add rope_freqs.weight");
    return 0;
}

static void byte_token(int b, char *out) {
    /* GPT-2 byte-to-unicode: printable bytes keep their code point, the rest
     * map to 256 + k in byte order. */
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
        cp = b;
    } else {
        int k = 0;
        for (int c = 0; c < b; c++)
            if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

static const char CHATML_TEMPLATE[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static int builtin_vocab(synth *s, int32_t n_vocab) {
    if (n_vocab < 259) return cli_fail("the built-in vocabulary needs --vocab-size >= 259");
    char **toks = slm_calloc((size_t)n_vocab, sizeof *toks);
    int32_t *types = slm_calloc((size_t)n_vocab, sizeof *types);
    int rc = 1;
    if (!toks || !types) goto done;
    for (int32_t i = 0; i < n_vocab; i++) {
        char buf[32];
        if (i < 256) byte_token(i, buf);
        else if (i == 256) strcpy(buf, "<|endoftext|>");
        else if (i == 257) strcpy(buf, "<|im_start|>");
        else if (i == 258) strcpy(buf, "<|im_end|>");
        else snprintf(buf, sizeof buf, "<|unused_%d|>", (int)i);
        toks[i] = slm_strdup(buf);
        if (!toks[i]) goto done;
        types[i] = i < 256 ? 1 : i < 259 ? 3 : 5; /* normal, control, unused */
    }
    const char *no_merges[1] = { NULL };
    if (slm_gguf_set_str(s->w, "tokenizer.ggml.model", "gpt2") || slm_gguf_set_str(s->w, "tokenizer.ggml.pre", "gpt-2") ||
        slm_gguf_set_arr_str(s->w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, (uint64_t)n_vocab) ||
        slm_gguf_set_arr(s->w, "tokenizer.ggml.token_type", SLM_GGUF_I32, types, (uint64_t)n_vocab) ||
        slm_gguf_set_arr_str(s->w, "tokenizer.ggml.merges", no_merges, NULL, 0) ||
        slm_gguf_set_u32(s->w, "tokenizer.ggml.bos_token_id", 256) ||
        slm_gguf_set_u32(s->w, "tokenizer.ggml.eos_token_id", 256) ||
        slm_gguf_set_u32(s->w, "tokenizer.ggml.eot_token_id", 258) ||
        slm_gguf_set_u32(s->w, "tokenizer.ggml.padding_token_id", 256) ||
        slm_gguf_set_bool(s->w, "tokenizer.ggml.add_bos_token", false) ||
        slm_gguf_set_str(s->w, "tokenizer.chat_template", CHATML_TEMPLATE))
        goto done;
    rc = 0;
done:
    for (int32_t i = 0; toks && i < n_vocab; i++) slm_free(toks[i]);
    slm_free(toks);
    slm_free(types);
    if (rc) cli_fail("out of memory building the vocabulary");
    return rc;
}

/* Copies tokenizer.* keys from a GGUF file; returns its vocabulary size. */
static int copy_vocab(synth *s, const char *path, int32_t *n_vocab) {
    slm_gguf *g = NULL;
    slm_err err = { 0 };
    if (slm_gguf_open(path, &g, &err)) return cli_fail("%s: %s", path, err.msg);
    int rc = 0;
    int64_t ti = slm_gguf_find_key(g, "tokenizer.ggml.tokens");
    if (ti < 0 || slm_gguf_kv_arr_type(g, ti) != SLM_GGUF_STR || slm_gguf_kv_arr_n(g, ti) == 0 ||
        slm_gguf_kv_arr_n(g, ti) > (1u << 22)) {
        rc = cli_fail("%s: no usable tokenizer.ggml.tokens array", path);
    } else {
        *n_vocab = (int32_t)slm_gguf_kv_arr_n(g, ti);
        for (int64_t i = 0; !rc && i < slm_gguf_n_kv(g); i++) {
            slm_gguf_str k = slm_gguf_key(g, i);
            if (k.len > 10 && !memcmp(k.ptr, "tokenizer.", 10) && slm_gguf_copy_kv(s->w, g, i))
                rc = cli_fail("cannot copy '%.*s'", (int)k.len, k.ptr);
        }
    }
    slm_gguf_close(g);
    return rc;
}

int cmd_synth(int argc, char **argv) {
    shape sh = PRESETS[0];
    const char *arch = NULL, *out = NULL, *vocab = NULL, *type_name = NULL, *preset = NULL;
    int32_t dim = 0, layers = 0, heads = 0, kv_heads = 0, ff = 0, nvocab = 0, ctx = 0;
    float rope_base = 0, scale = 0.02f;
    bool tied = false, llama3_rope = false;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define I32(flag, var, lo, hi)                                                                          \
    if (!strcmp(a, flag)) {                                                                             \
        if (!cli_parse_i32(v, lo, hi, &var)) return cli_usage("synth", "%s wants %d..%d", flag, lo, hi); \
        i++;                                                                                            \
        continue;                                                                                       \
    }
        I32("--dim", dim, 1, 65536);
        I32("--layers", layers, 1, 1024);
        I32("--heads", heads, 1, 1024);
        I32("--kv-heads", kv_heads, 1, 1024);
        I32("--ff", ff, 1, 1 << 20);
        I32("--vocab-size", nvocab, 1, 1 << 22);
        I32("--ctx", ctx, 1, 1 << 24);
#undef I32
        if (!strcmp(a, "--tied")) { tied = true; continue; }
        if (!strcmp(a, "--llama3-rope")) { llama3_rope = true; continue; }
        if (!v) return cli_usage("synth", "unknown or incomplete option '%s'", a);
        i++;
        if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "--type")) type_name = v;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "--seed")) { if (!cli_parse_u64(v, &seed)) return cli_usage("synth", "--seed wants an integer"); }
        else if (!strcmp(a, "--scale")) { if (!cli_parse_f32(v, 1e-6f, 100, &scale)) return cli_usage("synth", "--scale wants 1e-6..100"); }
        else if (!strcmp(a, "--rope-base")) { if (!cli_parse_f32(v, 1, 1e9f, &rope_base)) return cli_usage("synth", "--rope-base wants 1..1e9"); }
        else return cli_usage("synth", "unknown option '%s'", a);
    }
    if (!out) return cli_usage("synth", "-o OUT.gguf is required");
    if (preset) {
        size_t k;
        for (k = 0; k < sizeof PRESETS / sizeof PRESETS[0]; k++)
            if (!strcmp(preset, PRESETS[k].name)) break;
        if (k == sizeof PRESETS / sizeof PRESETS[0])
            return cli_usage("synth", "unknown preset '%s' (tiny, tinyllama-1.1b, llama-3.2-1b, qwen2.5-0.5b, smollm2-360m)", preset);
        sh = PRESETS[k];
    }
    if (arch) sh.arch = arch;
    if (strcmp(sh.arch, "llama") && strcmp(sh.arch, "qwen2") && strcmp(sh.arch, "qwen3") && strcmp(sh.arch, "phi3"))
        return cli_usage("synth", "--arch wants llama, qwen2, qwen3 or phi3");
    if (dim) sh.dim = dim;
    if (layers) sh.layers = layers;
    if (heads) sh.heads = heads;
    if (kv_heads) sh.kv_heads = kv_heads;
    else if (heads) sh.kv_heads = heads;
    if (ff) sh.ff = ff;
    if (nvocab) sh.vocab = nvocab;
    if (ctx) sh.ctx = ctx;
    if (rope_base) sh.rope_base = rope_base;
    if (tied) sh.tied = true;
    if (llama3_rope) sh.llama3_rope = true;
    if (sh.llama3_rope && strcmp(sh.arch, "llama")) return cli_usage("synth", "--llama3-rope is for --arch llama");
    if (sh.dim % sh.heads || sh.heads % sh.kv_heads || (sh.dim / sh.heads) % 2)
        return cli_usage("synth", "--dim %d must split into %d heads of even size, and heads into %d KV heads", sh.dim,
                         sh.heads, sh.kv_heads);
    int32_t type = -1;
    uint32_t ftype = 0;
    for (size_t k = 0; type_name && k < sizeof TYPES / sizeof TYPES[0]; k++)
        if (!strcasecmp(type_name, TYPES[k].name)) { type = TYPES[k].type; ftype = TYPES[k].ftype; }
    if (type < 0) return cli_usage("synth", "--type wants one of f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k");

    synth s = { slm_gguf_writer_new(), { seed }, scale, NULL, 0, 0 };
    int rc = 1;
    if (!s.w) { cli_fail("out of memory"); goto done; }
    int32_t n_vocab = sh.vocab;
    if (vocab ? copy_vocab(&s, vocab, &n_vocab) : builtin_vocab(&s, n_vocab)) goto done;
    char key[128], name[128];
    const char *A = sh.arch;
    int32_t hd = sh.dim / sh.heads, Q = sh.dim, KV = sh.kv_heads * hd;
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, A), key)
    snprintf(name, sizeof name, "slm-synth-%s-%s", preset ? preset : "custom", type_name);
    if (slm_gguf_set_str(s.w, "general.architecture", A) || slm_gguf_set_str(s.w, "general.name", name) ||
        slm_gguf_set_u32(s.w, "general.file_type", ftype) ||
        slm_gguf_set_u32(s.w, KEY("context_length"), (uint32_t)sh.ctx) ||
        slm_gguf_set_u32(s.w, KEY("embedding_length"), (uint32_t)sh.dim) ||
        slm_gguf_set_u32(s.w, KEY("block_count"), (uint32_t)sh.layers) ||
        slm_gguf_set_u32(s.w, KEY("feed_forward_length"), (uint32_t)sh.ff) ||
        slm_gguf_set_u32(s.w, KEY("attention.head_count"), (uint32_t)sh.heads) ||
        slm_gguf_set_u32(s.w, KEY("attention.head_count_kv"), (uint32_t)sh.kv_heads) ||
        slm_gguf_set_u32(s.w, KEY("rope.dimension_count"), (uint32_t)hd) ||
        slm_gguf_set_f32(s.w, KEY("rope.freq_base"), sh.rope_base) ||
        slm_gguf_set_f32(s.w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f) ||
        (!strcmp(A, "qwen3") && slm_gguf_set_u32(s.w, KEY("attention.key_length"), (uint32_t)hd)) ||
        (!strcmp(A, "qwen3") && slm_gguf_set_u32(s.w, KEY("attention.value_length"), (uint32_t)hd))) {
        cli_fail("out of memory");
        goto done;
    }
#undef KEY
    bool phi3 = !strcmp(A, "phi3"), qwen2 = !strcmp(A, "qwen2"), qwen3 = !strcmp(A, "qwen3");
    float ws = s.scale;
    if (add(&s, "token_embd.weight", type, sh.dim, n_vocab, 1.0f, 0) ||
        add(&s, "output_norm.weight", SLM_TYPE_F32, sh.dim, 0, 0.1f, 1.0f) ||
        (!sh.tied && add(&s, "output.weight", type, sh.dim, n_vocab, ws, 0)) ||
        (sh.llama3_rope && add_llama3_rope_freqs(&s, hd, sh.rope_base)))
        goto done;
    for (int32_t l = 0; l < sh.layers; l++) {
        char t[128];
#define N(suffix) (snprintf(t, sizeof t, "blk.%d." suffix, (int)l), t)
        if (add(&s, N("attn_norm.weight"), SLM_TYPE_F32, sh.dim, 0, 0.1f, 1.0f) ||
            add(&s, N("ffn_norm.weight"), SLM_TYPE_F32, sh.dim, 0, 0.1f, 1.0f) ||
            add(&s, N("attn_output.weight"), type, Q, sh.dim, ws, 0) ||
            add(&s, N("ffn_down.weight"), type, sh.ff, sh.dim, ws, 0))
            goto done;
        if (phi3) {
            if (add(&s, N("attn_qkv.weight"), type, sh.dim, Q + 2 * KV, ws, 0) ||
                add(&s, N("ffn_up.weight"), type, sh.dim, 2 * sh.ff, ws, 0))
                goto done;
        } else {
            if (add(&s, N("attn_q.weight"), type, sh.dim, Q, ws, 0) ||
                add(&s, N("attn_k.weight"), type, sh.dim, KV, ws, 0) ||
                add(&s, N("attn_v.weight"), type, sh.dim, KV, ws, 0) ||
                add(&s, N("ffn_gate.weight"), type, sh.dim, sh.ff, ws, 0) ||
                add(&s, N("ffn_up.weight"), type, sh.dim, sh.ff, ws, 0))
                goto done;
        }
        if (qwen2 && (add(&s, N("attn_q.bias"), SLM_TYPE_F32, Q, 0, ws, 0) ||
                      add(&s, N("attn_k.bias"), SLM_TYPE_F32, KV, 0, ws, 0) ||
                      add(&s, N("attn_v.bias"), SLM_TYPE_F32, KV, 0, ws, 0)))
            goto done;
        if (qwen3 && (add(&s, N("attn_q_norm.weight"), SLM_TYPE_F32, hd, 0, 0.1f, 1.0f) ||
                      add(&s, N("attn_k_norm.weight"), SLM_TYPE_F32, hd, 0, 0.1f, 1.0f)))
            goto done;
#undef N
    }
    slm_err err = { 0 };
    if (slm_gguf_writer_write(s.w, out, &err)) { cli_fail("%s", err.msg); goto done; }
    rc = 0;
done:
    for (int32_t i = 0; i < s.n_bufs; i++) slm_free(s.bufs[i]);
    slm_free(s.bufs);
    slm_gguf_writer_free(s.w);
    return rc;
}
