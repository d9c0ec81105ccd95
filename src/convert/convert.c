/*
 * convert.c — Hugging Face checkpoint → GGUF (see convert.h).
 *
 * Steps: read config.json (hf_config.c) and the tokenizer (tokenizer.json
 * through slm_vocab_load_hf, so the converted vocabulary is exactly what
 * slm tokenizes with when it reads the JSON directly); map the safetensors
 * file or shards (safetensors.c); make the tensor plan for the architecture
 * (tensor_map.c) and check every planned tensor against the checkpoint —
 * present, shape implied by config.json, a dtype slm reads — and every
 * checkpoint tensor against the plan, so nothing is silently dropped.
 *
 * Writing: the GGUF writer lays out metadata and the tensor table and
 * writes the file. Tensors whose bytes are already right (same type as the
 * output, no permutation: an F32 norm, a BF16 matrix kept BF16) point at the
 * checkpoint mapping and are copied by the writer; the others point at a
 * zero-page mapping as placeholders. The file is then reopened to read back
 * each tensor's offset, and every placeholder is filled: rows are read as
 * F32 (permuted for llama's Q/K), converted with the type's reference
 * from_float (F16, BF16, Q8_0) a few MiB at a time, and pwritten in place.
 * All of this goes to OUT.convert-PID.tmp, renamed over OUT at the end and
 * removed on any failure.
 *
 * Output types: matrices take params->type; a matrix whose rows do not
 * split into the type's blocks falls back to F16 (as llama.cpp's converter
 * does); vectors (norms, biases) and rope_freqs stay F32.
 */
#include "convert/convert.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "convert/hf_config.h"
#include "convert/rope_freqs.h"
#include "convert/safetensors.h"
#include "convert/tensor_map.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "kernels/types.h"
#include "tokenizer/vocab.h"
#include "util/alloc.h"
#include "util/err.h"

#define CHUNK_BYTES ((size_t)4 << 20)

/* One tensor of the output file. */
typedef struct job {
    const slm_cv_tensor *plan;    /* NULL for rope_freqs                        */
    const slm_st_tensor *src;     /* NULL for rope_freqs                        */
    int32_t  type;                /* output type                                */
    int64_t  rows, row_len;       /* as converted: rows of row_len elements    */
    int64_t  head_dim;            /* > 0: rows permuted with this head size     */
    uint64_t nbytes;
    uint64_t offset;              /* absolute file offset, once laid out        */
    bool     in_place;            /* the writer copied the checkpoint bytes     */
} job;

typedef struct conv {
    const slm_convert_params *p;
    slm_hf_config cfg;
    slm_st *st;
    slm_vocab *vocab;
    slm_cv_tensor *plan; int32_t n_plan;
    job *jobs; int32_t n_jobs;
    float *rope_freqs;
    void *zeros; size_t zeros_size;
    slm_gguf_writer *w;
} conv;

slm_convert_params slm_convert_default_params(void) {
    return (slm_convert_params){ .type = SLM_TYPE_F16 };
}

static uint32_t file_type(int32_t type) {
    switch (type) {
    case SLM_TYPE_F32: return 0;
    case SLM_TYPE_F16: return 1;
    case SLM_TYPE_Q8_0: return 7;
    default: return 32;   /* BF16 */
    }
}

/* ---- reading the checkpoint ---------------------------------------------- */

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

/* model.safetensors, or the shards model.safetensors.index.json names. */
static int open_checkpoint(conv *c, const char *dir, slm_err *err) {
    int rc = slm_st_new(&c->st, err);
    if (rc) return rc;
    char *single = slm_hf_path(dir, "model.safetensors"), *index = slm_hf_path(dir, "model.safetensors.index.json");
    cJSON *root = NULL;
    if (!single || !index) { rc = slm_err_set(err, SLM_ENOMEM, "out of memory"); goto done; }
    if (file_exists(single)) { rc = slm_st_add_file(c->st, single, err); goto done; }
    if (!file_exists(index)) {
        rc = slm_err_set(err, SLM_ENOTFOUND, "%s: no model.safetensors or model.safetensors.index.json "
                         "(slm convert reads safetensors checkpoints)", dir);
        goto done;
    }
    if ((rc = slm_hf_json_load(index, &root, err))) goto done;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map"), *e, *f;
    if (!cJSON_IsObject(map)) {
        rc = slm_err_set(err, SLM_EFORMAT, "%s: no \"weight_map\" object", index);
        goto done;
    }
    cJSON_ArrayForEach(e, map) {             /* each shard once, in first-mention order */
        const char *file = cJSON_GetStringValue(e);
        if (!file || !file[0] || strchr(file, '/') || !strcmp(file, "..")) {
            rc = slm_err_set(err, SLM_EFORMAT, "%s: weight_map['%.100s'] is not a file name in the folder", index,
                             e->string);
            goto done;
        }
        bool seen = false;
        for (f = map->child; f != e && !seen; f = f->next) seen = !strcmp(cJSON_GetStringValue(f), file);
        if (seen) continue;
        char *path = slm_hf_path(dir, file);
        if (!path) { rc = slm_err_set(err, SLM_ENOMEM, "out of memory"); goto done; }
        rc = slm_st_add_file(c->st, path, err);
        slm_free(path);
        if (rc) goto done;
    }
    cJSON_ArrayForEach(e, map) {
        const slm_st_tensor *t = slm_st_find(c->st, e->string);
        if (!t || strcmp(strrchr(slm_st_file_path(c->st, t->file), '/') + 1, e->valuestring) != 0) {
            rc = slm_err_set(err, SLM_EFORMAT, "%s: tensor '%.100s' is not in %s, where weight_map puts it", index,
                             e->string, e->valuestring);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    slm_free(single);
    slm_free(index);
    return rc;
}

static bool skippable(const char *name) {
    size_t n = strlen(name);
    static const char inv[] = ".rotary_emb.inv_freq";   /* recomputed from rope_theta */
    return n >= sizeof inv - 1 && !strcmp(name + n - (sizeof inv - 1), inv);
}

static int check_shape(const slm_st_tensor *t, const slm_cv_tensor *p, slm_err *err) {
    bool ok = p->ne1 ? t->n_dims == 2 && t->shape[0] == p->ne1 && t->shape[1] == p->ne0
                     : t->n_dims == 1 && t->shape[0] == p->ne0;
    if (ok) return 0;
    char got[96] = "[", want[48];
    for (uint32_t d = 0; d < t->n_dims; d++) {
        size_t k = strlen(got);
        snprintf(got + k, sizeof got - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    }
    strcat(got, "]");
    if (p->ne1) snprintf(want, sizeof want, "[%lld, %lld]", (long long)p->ne1, (long long)p->ne0);
    else snprintf(want, sizeof want, "[%lld]", (long long)p->ne0);
    return slm_err_set(err, SLM_EFORMAT, "tensor '%s' has shape %s, but config.json implies %s", t->name, got, want);
}

static int32_t out_type(const conv *c, const slm_cv_tensor *p, int32_t *n_fallback) {
    if (!p->ne1) return SLM_TYPE_F32;
    if (p->ne0 % slm_type_blck_size(c->p->type) == 0) return c->p->type;
    (*n_fallback)++;
    return SLM_TYPE_F16;
}

static int32_t st_gguf_type(slm_st_dtype t) {
    return t == SLM_ST_F32 ? SLM_TYPE_F32 : t == SLM_ST_F16 ? SLM_TYPE_F16 : t == SLM_ST_BF16 ? SLM_TYPE_BF16 : -1;
}

/* Matches plan and checkpoint; fills c->jobs. */
static int make_jobs(conv *c, bool tied, slm_convert_stats *stats, slm_err *err) {
    int rc = slm_cv_plan(&c->cfg, tied, &c->plan, &c->n_plan, err);
    if (rc) return rc;
    if (!(c->jobs = slm_calloc((size_t)c->n_plan + 1, sizeof *c->jobs))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    bool *used = slm_calloc((size_t)slm_st_n_tensors(c->st) + 1, sizeof *used);
    if (!used) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (int32_t i = 0; i < c->n_plan; i++) {
        const slm_cv_tensor *p = &c->plan[i];
        const slm_st_tensor *t = slm_st_find(c->st, p->src);
        if (!t && tied && i == 0) t = slm_st_find(c->st, "lm_head.weight");   /* tied, saved as the output */
        if (!t) {
            if (p->optional) continue;
            rc = slm_err_set(err, SLM_EFORMAT, "tensor '%s' (for %s) is missing from the checkpoint", p->src, p->name);
            goto done;
        }
        used[t - slm_st_tensor_at(c->st, 0)] = true;
        if ((rc = check_shape(t, p, err))) goto done;
        if (!slm_st_dtype_readable(t->dtype)) {
            rc = slm_err_set(err, SLM_EUNSUPPORTED, "tensor '%s' has dtype %s (slm convert reads F32, F16 and BF16)",
                             t->name, slm_st_dtype_name(t->dtype));
            goto done;
        }
        job *j = &c->jobs[c->n_jobs++];
        j->plan = p;
        j->src = t;
        j->type = out_type(c, p, &stats->n_fallback);
        if (p->ne1) { j->rows = p->ne1; j->row_len = p->ne0; }
        else if (p->rope_heads) { j->rows = p->ne0; j->row_len = 1; }     /* a bias: permute elements */
        else { j->rows = 1; j->row_len = p->ne0; }
        j->head_dim = p->rope_heads ? j->rows / p->rope_heads : 0;
        j->nbytes = slm_row_size(j->type, j->row_len) * (uint64_t)j->rows;
        j->in_place = !p->rope_heads && st_gguf_type(t->dtype) == j->type;
        stats->n_params += (uint64_t)t->n_elems;
    }
    for (int32_t i = 0; i < slm_st_n_tensors(c->st); i++) {
        const slm_st_tensor *t = slm_st_tensor_at(c->st, i);
        if (used[i] || skippable(t->name) || (tied && !strcmp(t->name, "lm_head.weight"))) continue;
        rc = slm_err_set(err, SLM_EUNSUPPORTED, "checkpoint tensor '%s' has no place in a %s model (%s); slm convert "
                         "will not drop it silently", t->name, c->cfg.arch, c->cfg.hf_arch);
        goto done;
    }
done:
    slm_free(used);
    return rc;
}

/* ---- metadata ------------------------------------------------------------- */

static int write_meta(conv *c, const char *dir, slm_err *err) {
    const slm_hf_config *h = &c->cfg;
    slm_gguf_writer *w = c->w;
    char key[96], name[128];
    const char *A = h->arch;
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    const char *base = dir + dl;
    while (base > dir && base[-1] != '/') base--;
    snprintf(name, sizeof name, "%.*s", (int)(dir + dl - base), base);
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, A), key)
    if (slm_gguf_set_str(w, "general.architecture", A) || slm_gguf_set_str(w, "general.name", name) ||
        slm_gguf_set_u32(w, "general.file_type", file_type(c->p->type)) ||
        slm_gguf_set_u32(w, "general.quantization_version", 2) ||
        slm_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)h->n_vocab) ||
        slm_gguf_set_u32(w, KEY("context_length"), (uint32_t)h->n_ctx) ||
        slm_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)h->n_embd) ||
        slm_gguf_set_u32(w, KEY("block_count"), (uint32_t)h->n_layer) ||
        slm_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)h->n_ff) ||
        slm_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)h->n_head) ||
        slm_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)h->n_head_kv) ||
        slm_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), h->rms_eps) ||
        slm_gguf_set_f32(w, KEY("rope.freq_base"), h->rope_theta) ||
        slm_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)h->n_rot) ||
        (h->head_dim_given && slm_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)h->head_dim)) ||
        (h->head_dim_given && slm_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)h->head_dim)) ||
        (h->fused && slm_gguf_set_u32(w, KEY("attention.sliding_window"), (uint32_t)h->sliding_window)) ||
        (h->rope_scaling == SLM_HF_ROPE_LINEAR && slm_gguf_set_str(w, KEY("rope.scaling.type"), "linear")) ||
        (h->rope_scaling == SLM_HF_ROPE_LINEAR && slm_gguf_set_f32(w, KEY("rope.scaling.factor"), h->rope_factor)) ||
        (h->chat_template && slm_gguf_set_str(w, "tokenizer.chat_template", h->chat_template)))
        return slm_err_set(err, SLM_ENOMEM, "out of memory writing metadata");
#undef KEY
    return slm_vocab_write_gguf(c->vocab, w, h->n_vocab, err);
}

/* ---- tensor data ----------------------------------------------------------- */

static int add_tensors(conv *c, slm_err *err) {
    size_t max_bytes = 0;
    for (int32_t i = 0; i < c->n_jobs; i++)
        if (!c->jobs[i].in_place && c->jobs[i].nbytes > max_bytes) max_bytes = c->jobs[i].nbytes;
    if (max_bytes) {
        c->zeros = mmap(NULL, max_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (c->zeros == MAP_FAILED) {
            c->zeros = NULL;
            return slm_err_set(err, SLM_ENOMEM, "cannot map %zu bytes of placeholder: %s", max_bytes, strerror(errno));
        }
        c->zeros_size = max_bytes;
    }
    for (int32_t i = 0; i < c->n_jobs; i++) {
        job *j = &c->jobs[i];
        const slm_cv_tensor *p = j->plan;
        int64_t ne[2] = { p->ne0, p->ne1 };
        if (slm_gguf_add_tensor(c->w, p->name, j->type, p->ne1 ? 2 : 1, ne, j->in_place ? j->src->data : c->zeros,
                                j->nbytes))
            return slm_err_set(err, SLM_ENOMEM, "cannot add tensor '%s'", p->name);
    }
    if (c->cfg.rope_scaling == SLM_HF_ROPE_LLAMA3) {
        int32_t half = c->cfg.n_rot / 2;
        if (!(c->rope_freqs = slm_malloc((size_t)half * sizeof *c->rope_freqs)))
            return slm_err_set(err, SLM_ENOMEM, "out of memory");
        slm_rope_llama3_factors(c->rope_freqs, c->cfg.n_rot, c->cfg.rope_theta, c->cfg.rope_factor, c->cfg.llama3_low,
                                c->cfg.llama3_high, c->cfg.llama3_orig_ctx);
        int64_t ne[1] = { half };
        if (slm_gguf_add_tensor(c->w, "rope_freqs.weight", SLM_TYPE_F32, 1, ne, c->rope_freqs, (uint64_t)half * 4))
            return slm_err_set(err, SLM_ENOMEM, "cannot add tensor 'rope_freqs.weight'");
    }
    return 0;
}

/* Reads back where the writer put each tensor. */
static int locate(conv *c, const char *path, slm_err *err) {
    slm_gguf *g = NULL;
    int rc = slm_gguf_open(path, &g, err);
    if (rc) return rc;
    for (int32_t i = 0; i < c->n_jobs; i++) {
        const slm_gguf_tensor *t = slm_gguf_find_tensor(g, c->jobs[i].plan->name);
        if (!t || t->nbytes != c->jobs[i].nbytes) {
            rc = slm_err_set(err, SLM_EIO, "%s: tensor '%s' was not laid out as written", path, c->jobs[i].plan->name);
            break;
        }
        c->jobs[i].offset = slm_gguf_data_offset(g) + t->offset;
    }
    slm_gguf_close(g);
    return rc;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off) {
    const char *p = buf;
    while (n) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* Converts job j a chunk of rows at a time and writes it at its offset. */
static int fill(const job *j, int fd, const char *path, unsigned char *chunk, float *row, slm_err *err) {
    const slm_type_traits *tr = slm_type_traits_ref(j->type);
    size_t row_bytes = slm_row_size(j->type, j->row_len);
    int64_t per_chunk = (int64_t)(CHUNK_BYTES / row_bytes);
    if (per_chunk < 1) per_chunk = 1;
    for (int64_t r0 = 0; r0 < j->rows; r0 += per_chunk) {
        int64_t n = j->rows - r0 < per_chunk ? j->rows - r0 : per_chunk;
        for (int64_t k = 0; k < n; k++) {
            int64_t r = r0 + k, src = j->head_dim ? slm_cv_rope_src_row(r, j->head_dim) : r;
            int rc = slm_st_read_f32(j->src, src * j->row_len, j->row_len, row, err);
            if (rc) return rc;
            tr->from_float(row, chunk + (size_t)k * row_bytes, j->row_len);
        }
        if (pwrite_all(fd, chunk, (size_t)n * row_bytes, j->offset + (uint64_t)r0 * row_bytes))
            return slm_err_set(err, SLM_EIO, "cannot write '%s': %s", path, strerror(errno));
    }
    return 0;
}

static int fill_all(conv *c, const char *path, slm_err *err) {
    int64_t max_row = 1;
    uint64_t total = 0, done = 0;
    for (int32_t i = 0; i < c->n_jobs; i++) {
        if (c->jobs[i].row_len > max_row) max_row = c->jobs[i].row_len;
        total += c->jobs[i].nbytes;
    }
    size_t chunk_bytes = CHUNK_BYTES;
    for (int32_t i = 0; i < c->n_jobs; i++) {
        size_t rb = slm_row_size(c->jobs[i].type, c->jobs[i].row_len);
        if (rb > chunk_bytes) chunk_bytes = rb;
    }
    unsigned char *chunk = slm_malloc(chunk_bytes);
    float *row = slm_malloc((size_t)max_row * sizeof *row);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int rc = 0;
    if (!chunk || !row) rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
    else if (fd < 0) rc = slm_err_set(err, SLM_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (c->p->progress && !rc) c->p->progress(c->p->progress_ud, 0, c->n_jobs, 0, total, c->jobs[0].plan->name);
    for (int32_t i = 0; i < c->n_jobs && !rc; i++) {
        const job *j = &c->jobs[i];
        if (!j->in_place) rc = fill(j, fd, path, chunk, row, err);
        done += j->nbytes;
        if (c->p->progress && !rc) c->p->progress(c->p->progress_ud, i + 1, c->n_jobs, done, total, j->plan->name);
    }
    if (fd >= 0 && close(fd) != 0 && !rc) rc = slm_err_set(err, SLM_EIO, "cannot write '%s': %s", path, strerror(errno));
    slm_free(chunk);
    slm_free(row);
    return rc;
}

/* ---- the whole conversion --------------------------------------------------- */

static void conv_free(conv *c) {
    slm_hf_config_free(&c->cfg);
    slm_st_close(c->st);
    slm_vocab_free(c->vocab);
    slm_free(c->plan);
    slm_free(c->jobs);
    slm_free(c->rope_freqs);
    if (c->zeros) munmap(c->zeros, c->zeros_size);
    slm_gguf_writer_free(c->w);
}

int slm_convert_hf(const char *hf_dir, const char *out_path, const slm_convert_params *params,
                   slm_convert_stats *stats, slm_err *err) {
    slm_convert_params dflt = slm_convert_default_params();
    slm_convert_stats local;
    conv c = { .p = params ? params : &dflt };
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    int32_t t = c.p->type;
    if (t != SLM_TYPE_F32 && t != SLM_TYPE_F16 && t != SLM_TYPE_BF16 && t != SLM_TYPE_Q8_0)
        return slm_err_set(err, SLM_EINVAL, "output type %s is not one convert writes (f32, f16, bf16, q8_0)",
                           slm_type_name(t));
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.convert-%d.tmp", out_path, (int)getpid()) >= sizeof tmp)
        return slm_err_set(err, SLM_EINVAL, "output path too long");
    bool written = false;
    char *tok_path = NULL;
    int rc;
    if ((rc = slm_hf_config_load(hf_dir, &c.cfg, err))) goto done;
    if (!(tok_path = slm_hf_path(hf_dir, "tokenizer.json"))) { rc = slm_err_set(err, SLM_ENOMEM, "out of memory"); goto done; }
    if (!file_exists(tok_path)) {
        rc = slm_err_set(err, SLM_ENOTFOUND, "%s: missing (slm convert needs the Hugging Face tokenizer.json)", tok_path);
        goto done;
    }
    if ((rc = slm_vocab_load_hf(tok_path, &c.vocab, err))) goto done;
    if ((rc = open_checkpoint(&c, hf_dir, err))) goto done;
    bool tied = c.cfg.tied == 1 || (c.cfg.tied == -1 && !slm_st_find(c.st, "lm_head.weight"));
    if ((rc = make_jobs(&c, tied, stats, err))) goto done;
    if (!(c.w = slm_gguf_writer_new())) { rc = slm_err_set(err, SLM_ENOMEM, "out of memory"); goto done; }
    if ((rc = write_meta(&c, hf_dir, err)) || (rc = add_tensors(&c, err))) goto done;
    if ((rc = slm_gguf_writer_write(c.w, tmp, err))) goto done;
    written = true;
    if ((rc = locate(&c, tmp, err)) || (rc = fill_all(&c, tmp, err))) goto done;
    if (rename(tmp, out_path) != 0) {
        rc = slm_err_set(err, SLM_EIO, "cannot rename '%s' to '%s': %s", tmp, out_path, strerror(errno));
        goto done;
    }
    written = false;
    snprintf(stats->arch, sizeof stats->arch, "%s", c.cfg.arch);
    snprintf(stats->tokenizer, sizeof stats->tokenizer, "%s", slm_vocab_kind(c.vocab));
    stats->n_tensors = c.n_jobs + (c.rope_freqs != NULL);
    stats->n_vocab = c.cfg.n_vocab;
    FILE *f = fopen(out_path, "rb");
    if (f && fseek(f, 0, SEEK_END) == 0) stats->file_bytes = (uint64_t)ftell(f);
    if (f) fclose(f);
done:
    if (written) unlink(tmp);
    slm_free(tok_path);
    conv_free(&c);
    return rc;
}
