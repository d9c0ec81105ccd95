/*
 * model.c — loading and describing a model: opens the GGUF, recognises the
 * architecture, loads the vocabulary, binds the weights (arch.c).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/types.h"
#include "model/model.h"
#include "tokenizer/vocab.h"
#include "util/alloc.h"
#include "util/err.h"

static const struct { const char *name; slm_arch arch; } ARCHS[] = {
    { "llama", SLM_ARCH_LLAMA }, { "mistral", SLM_ARCH_LLAMA }, { "qwen2", SLM_ARCH_QWEN2 },
    { "qwen3", SLM_ARCH_QWEN3 }, { "phi3", SLM_ARCH_PHI3 },
};

slm_model_params slm_model_default_params(void) {
    slm_model_params p = { .vocab_only = false, .prefault = false, .weights = SLM_WEIGHTS_RESIDENT,
                           .load_threads = 0 };
    const char *w = getenv("SLM_WEIGHTS");   /* like SLM_ISA: an operator's override */
    if (w && !strcmp(w, "mmap")) p.weights = SLM_WEIGHTS_MMAP;
    return p;
}

void slm_model_free(slm_model *m) {
    if (!m) return;
    for (int32_t i = 0; i < m->n_owned; i++) slm_free(m->owned[i]);
    slm_free(m->owned);
    slm_free(m->layers);
    slm_free(m->name);
    slm_free(m->chat_template);
    slm_vocab_free(m->vocab);
    slm_gguf_close(m->gguf);
    if (m->resident) munmap(m->resident, m->resident_len);
    slm_free(m);
}

static void prefault(const slm_gguf *g) {
    volatile unsigned char sink = 0;
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        const unsigned char *p = t->data;
        for (uint64_t off = 0; off < t->nbytes; off += 4096) sink ^= p[off];
    }
    (void)sink;
}

int slm_model_load(const char *path, const slm_model_params *params, slm_model **out, slm_err *err) {
    slm_model_params dp = slm_model_default_params();
    if (!params) params = &dp;
    *out = NULL;
    slm_model *m = slm_calloc(1, sizeof *m);
    if (!m) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    int rc = slm_gguf_open(path, &m->gguf, err);
    if (rc) goto fail;
    m->vocab_only = params->vocab_only;
    slm_gguf_str arch = { "", 0 };
    rc = slm_gguf_get_str(m->gguf, "general.architecture", &arch, err);
    if (rc && !(rc == SLM_ENOTFOUND && params->vocab_only)) {
        if (rc == SLM_ENOTFOUND) rc = slm_err_set(err, SLM_EFORMAT, "key 'general.architecture' is missing");
        goto fail;
    }
    slm_err_clear(err);
    m->arch_name = NULL;
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (slm_gguf_str_eq(arch, ARCHS[i].name)) {
            m->arch = ARCHS[i].arch;
            m->arch_name = ARCHS[i].name;
        }
    if (!m->arch_name && !params->vocab_only) {
        char a[64];
        size_t n = arch.len < sizeof a - 1 ? (size_t)arch.len : sizeof a - 1;
        memcpy(a, arch.ptr, n);
        a[n] = 0;
        rc = slm_err_set(err, SLM_EUNSUPPORTED, "architecture '%s' is not supported (llama, mistral, qwen2, qwen3, phi3 are)", a);
        goto fail;
    }
    if (!m->arch_name) m->arch_name = "";
    if ((rc = slm_vocab_load(m->gguf, &m->vocab, err))) goto fail;
    if (slm_gguf_get_str_dup(m->gguf, "general.name", &m->name, NULL)) m->name = slm_strdup("");
    if (slm_gguf_get_str_dup(m->gguf, "tokenizer.chat_template", &m->chat_template, NULL)) m->chat_template = NULL;
    if (!m->name) { rc = slm_err_set(err, SLM_ENOMEM, "out of memory"); goto fail; }
    if (!params->vocab_only) {
        if ((rc = slm_model_bind(m, err))) goto fail;
        if (params->weights == SLM_WEIGHTS_RESIDENT) {
            int nt = params->load_threads;
            if (nt <= 0) {
                long c = sysconf(_SC_NPROCESSORS_ONLN);
                nt = c > 0 ? (int)c : 1;
            }
            if ((rc = slm_model_make_resident(m, path, nt, err))) goto fail;
        }
        if (params->prefault) prefault(m->gguf);
    }
    *out = m;
    return 0;
fail:
    slm_model_free(m);
    return rc;
}

const slm_vocab *slm_model_vocab(const slm_model *m) { return m->vocab; }

void slm_model_get_info(const slm_model *m, slm_model_info *info) {
    memset(info, 0, sizeof *info);
    const slm_hparams *hp = &m->hp;
    info->arch = m->arch_name;
    info->name = m->name;
    info->n_vocab = m->vocab_only ? slm_vocab_n_tokens(m->vocab) : hp->n_vocab;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->n_ff = hp->n_ff;
    info->head_dim = hp->head_dim;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_rot = hp->n_rot;
    info->rope_freq_base = hp->rope_freq_base;
    info->rms_eps = hp->rms_eps;
    info->tied_output = m->tied_output;
    info->file_size = slm_gguf_file_size(m->gguf);
    info->chat_template = m->chat_template;
    info->n_tensors = (int32_t)slm_gguf_n_tensors(m->gguf);
    for (int64_t i = 0; i < slm_gguf_n_tensors(m->gguf); i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(m->gguf, i);
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
        info->n_params += n;
        info->tensor_bytes += t->nbytes;
        if (t->type >= 0 && t->type < 40) info->type_count[t->type]++;
    }
}
