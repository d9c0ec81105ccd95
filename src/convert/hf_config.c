/*
 * hf_config.c — config.json to hyper-parameters (see hf_config.h).
 *
 * The architecture comes from architectures[0] and decides what the GGUF
 * needs: llama (LlamaForCausalLM, MistralForCausalLM) has its Q/K rows
 * permuted, because Hugging Face rotates halves of each head while
 * llama.cpp's llama (and slm's) rotates adjacent pairs; qwen2 (Q/K/V biases),
 * qwen3 (per-head Q/K norms) and phi3 (fused qkv and gate/up) use the
 * rotate-halves ("NEOX") RoPE as stored and are copied as they are.
 *
 * RoPE settings are read from rope_scaling or, in newer files,
 * rope_parameters (which may also hold rope_theta): "linear" keeps its
 * factor, "llama3" its factor, frequency factors and original context (the
 * converter turns them into rope_freqs.weight); "default" or null is none;
 * anything else (yarn, dynamic, longrope) is refused by name, because slm
 * could not run it. Every number is checked to be an integer in a sane
 * range before it sizes anything.
 */
#include "convert/hf_config.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tokenizer/vocab.h"
#include "util/alloc.h"
#include "util/err.h"

static const struct { const char *hf, *arch; } ARCHS[] = {
    { "LlamaForCausalLM", "llama" }, { "MistralForCausalLM", "llama" }, { "Qwen2ForCausalLM", "qwen2" },
    { "Qwen3ForCausalLM", "qwen3" }, { "Phi3ForCausalLM", "phi3" },
};

char *slm_hf_path(const char *dir, const char *name) {
    size_t dl = strlen(dir), nl = strlen(name);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    char *p = slm_malloc(dl + nl + 2);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    return p;
}

/* A value that is absent or JSON null counts as absent. */
static const cJSON *field(const cJSON *obj, const char *key) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(e) ? NULL : e;
}

/* Integer key in [lo, hi]; dflt when absent (required: absence is an error). */
static int get_int(const cJSON *cfg, const char *key, bool required, int32_t dflt, int32_t lo, int32_t hi,
                   int32_t *out, slm_err *err) {
    const cJSON *e = field(cfg, key);
    if (!e) {
        if (required) return slm_err_set(err, SLM_EFORMAT, "config.json: '%s' is missing", key);
        *out = dflt;
        return 0;
    }
    double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return slm_err_set(err, SLM_EFORMAT, "config.json: '%s' must be an integer in %d..%d", key, (int)lo, (int)hi);
    *out = (int32_t)d;
    return 0;
}

static int get_float(const cJSON *obj, const char *where, const char *key, double dflt, double lo, double hi,
                     float *out, slm_err *err) {
    const cJSON *e = field(obj, key);
    if (!e) {
        *out = (float)dflt;
        return 0;
    }
    double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    if (!(d > lo && d < hi))
        return slm_err_set(err, SLM_EFORMAT, "config.json: '%s%s' must be a number in (%g, %g)", where, key, lo, hi);
    *out = (float)d;
    return 0;
}

static int read_rope(const cJSON *root, slm_hf_config *c, slm_err *err) {
    const cJSON *rp = field(root, "rope_parameters");
    const char *where = "rope_parameters.";
    if (!rp) { rp = field(root, "rope_scaling"); where = "rope_scaling."; }
    if (rp && !cJSON_IsObject(rp)) return slm_err_set(err, SLM_EFORMAT, "config.json: '%.*s' is not an object",
                                                      (int)strlen(where) - 1, where);
    int rc;
    const cJSON *theta_src = field(root, "rope_theta") ? root : rp;
    if ((rc = get_float(theta_src, theta_src == root ? "" : where, "rope_theta", 10000.0, 0, 1e12, &c->rope_theta, err)))
        return rc;
    c->rope_scaling = SLM_HF_ROPE_NONE;
    if (!rp) return 0;
    const char *type = cJSON_GetStringValue(field(rp, "rope_type"));
    if (!type) type = cJSON_GetStringValue(field(rp, "type"));
    if (!type || !strcmp(type, "default")) return 0;
    if (!strcmp(type, "linear")) {
        c->rope_scaling = SLM_HF_ROPE_LINEAR;
        if (!field(rp, "factor")) return slm_err_set(err, SLM_EFORMAT, "config.json: linear RoPE scaling without a factor");
        float f;
        if ((rc = get_float(rp, where, "factor", 1, 0.999, 1024, &f, err))) return rc;
        c->rope_factor = f;
        return 0;
    }
    if (!strcmp(type, "llama3")) {
        if (strcmp(c->arch, "llama") != 0)
            return slm_err_set(err, SLM_EUNSUPPORTED, "config.json: llama3 RoPE scaling on a %s model is not supported",
                               c->hf_arch);
        c->rope_scaling = SLM_HF_ROPE_LLAMA3;
        int32_t orig;
        if ((rc = get_float(rp, where, "factor", 8, 0, 1e6, &c->rope_factor, err)) ||
            (rc = get_float(rp, where, "low_freq_factor", 1, 0, 1e6, &c->llama3_low, err)) ||
            (rc = get_float(rp, where, "high_freq_factor", 4, 0, 1e6, &c->llama3_high, err)) ||
            (rc = get_int(rp, "original_max_position_embeddings", false, 8192, 1, 1 << 24, &orig, err)))
            return rc;
        if (!(c->llama3_high > c->llama3_low))
            return slm_err_set(err, SLM_EFORMAT, "config.json: llama3 RoPE high_freq_factor must exceed low_freq_factor");
        c->llama3_orig_ctx = orig;
        return 0;
    }
    return slm_err_set(err, SLM_EUNSUPPORTED, "config.json: RoPE scaling type '%.40s' is not supported (slm runs linear and llama3)",
                       type);
}

/* tokenizer_config.json's chat_template (a string, or a list of {name,
 * template} of which "default" or else the first is taken), else the file
 * chat_template.jinja. Both optional. */
static int read_chat_template(const char *dir, slm_hf_config *c, slm_err *err) {
    char *path = slm_hf_path(dir, "tokenizer_config.json");
    if (!path) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    cJSON *tc = NULL;
    int rc = slm_hf_json_load(path, &tc, err);
    slm_free(path);
    if (rc == SLM_ENOTFOUND) { slm_err_clear(err); rc = 0; }
    if (rc) return rc;
    const cJSON *t = field(tc, "chat_template");
    const char *tmpl = cJSON_GetStringValue(t);
    if (cJSON_IsArray(t)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, t) {
            const char *name = cJSON_GetStringValue(field(e, "name"));
            const char *s = cJSON_GetStringValue(field(e, "template"));
            if (s && (!tmpl || (name && !strcmp(name, "default")))) tmpl = s;
        }
    }
    if (tmpl && !(c->chat_template = slm_strdup(tmpl))) rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
    cJSON_Delete(tc);
    if (rc || c->chat_template) return rc;
    if (!(path = slm_hf_path(dir, "chat_template.jinja"))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    FILE *f = fopen(path, "rb");
    slm_free(path);
    if (!f) return 0;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1 << 24) && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = slm_malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        c->chat_template = buf;
        buf = NULL;
    } else {
        rc = slm_err_set(err, SLM_EIO, "%s/chat_template.jinja: cannot read", dir);
    }
    slm_free(buf);
    fclose(f);
    return rc;
}

static int parse(const cJSON *root, const char *dir, slm_hf_config *c, slm_err *err) {
    const cJSON *archs = field(root, "architectures");
    const char *hf = cJSON_GetStringValue(cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL);
    if (!hf) return slm_err_set(err, SLM_EFORMAT, "config.json: 'architectures' is missing");
    snprintf(c->hf_arch, sizeof c->hf_arch, "%s", hf);
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (!strcmp(hf, ARCHS[i].hf)) c->arch = ARCHS[i].arch;
    if (!c->arch)
        return slm_err_set(err, SLM_EUNSUPPORTED,
                           "architecture '%.80s' is not supported (slm converts LlamaForCausalLM, MistralForCausalLM, "
                           "Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM)", hf);
    int rc;
    if ((rc = get_int(root, "hidden_size", true, 0, 1, 65536, &c->n_embd, err)) ||
        (rc = get_int(root, "num_hidden_layers", true, 0, 1, 1024, &c->n_layer, err)) ||
        (rc = get_int(root, "num_attention_heads", true, 0, 1, 1024, &c->n_head, err)) ||
        (rc = get_int(root, "num_key_value_heads", false, c->n_head, 1, c->n_head, &c->n_head_kv, err)) ||
        (rc = get_int(root, "intermediate_size", true, 0, 1, 1 << 20, &c->n_ff, err)) ||
        (rc = get_int(root, "vocab_size", true, 0, 1, 1 << 24, &c->n_vocab, err)) ||
        (rc = get_int(root, "max_position_embeddings", false, 2048, 1, 1 << 24, &c->n_ctx, err)))
        return rc;
    if (c->n_head % c->n_head_kv)
        return slm_err_set(err, SLM_EFORMAT, "config.json: %d attention heads do not split into %d key/value heads",
                           c->n_head, c->n_head_kv);
    c->head_dim_given = field(root, "head_dim") != NULL;
    if (c->head_dim_given) {
        if ((rc = get_int(root, "head_dim", true, 0, 2, 1024, &c->head_dim, err))) return rc;
    } else {
        if (c->n_embd % c->n_head)
            return slm_err_set(err, SLM_EFORMAT, "config.json: hidden_size %d does not split into %d heads", c->n_embd,
                               c->n_head);
        c->head_dim = c->n_embd / c->n_head;
    }
    if (c->head_dim % 2) return slm_err_set(err, SLM_EFORMAT, "config.json: head size %d is odd", c->head_dim);
    if ((rc = get_float(root, "", "rms_norm_eps", 1e-6, 0, 1, &c->rms_eps, err))) return rc;
    const char *act = cJSON_GetStringValue(field(root, "hidden_act"));
    if (act && strcmp(act, "silu") != 0)
        return slm_err_set(err, SLM_EUNSUPPORTED, "config.json: hidden_act '%.40s' is not supported (slm computes silu)", act);
    if (cJSON_IsTrue(field(root, "mlp_bias")))
        return slm_err_set(err, SLM_EUNSUPPORTED, "config.json: mlp_bias is true; slm has no feed-forward biases");
    const cJSON *tie = field(root, "tie_word_embeddings");
    c->tied = cJSON_IsBool(tie) ? cJSON_IsTrue(tie) : -1;
    c->permute_qk = !strcmp(c->arch, "llama");
    c->fused = !strcmp(c->arch, "phi3");
    c->qk_norm = !strcmp(c->arch, "qwen3");
    c->qkv_bias_required = !strcmp(c->arch, "qwen2");
    c->n_rot = c->head_dim;
    if (c->fused) {
        float pct;
        if ((rc = get_float(root, "", "partial_rotary_factor", 1.0, 0, 1.000001, &pct, err))) return rc;
        c->n_rot = (int32_t)((double)pct * c->n_embd) / c->n_head;
        if (c->n_rot < 2 || c->n_rot % 2 || c->n_rot > c->head_dim)
            return slm_err_set(err, SLM_EFORMAT, "config.json: partial_rotary_factor gives %d rotary dimensions", c->n_rot);
        if ((rc = get_int(root, "sliding_window", false, 0, 0, 1 << 24, &c->sliding_window, err))) return rc;
    }
    if ((rc = read_rope(root, c, err))) return rc;
    return read_chat_template(dir, c, err);
}

int slm_hf_config_load(const char *dir, slm_hf_config *cfg, slm_err *err) {
    memset(cfg, 0, sizeof *cfg);
    char *path = slm_hf_path(dir, "config.json");
    if (!path) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    cJSON *root = NULL;
    int rc = slm_hf_json_load(path, &root, err);
    if (rc == SLM_ENOTFOUND) rc = slm_err_set(err, SLM_EIO, "%s: cannot open (not a Hugging Face model folder?)", path);
    slm_free(path);
    if (rc) return rc;
    if (!cJSON_IsObject(root)) rc = slm_err_set(err, SLM_EFORMAT, "config.json is not a JSON object");
    else rc = parse(root, dir, cfg, err);
    cJSON_Delete(root);
    if (rc) slm_hf_config_free(cfg);
    return rc;
}

void slm_hf_config_free(slm_hf_config *cfg) {
    if (!cfg) return;
    slm_free(cfg->chat_template);
    cfg->chat_template = NULL;
}
