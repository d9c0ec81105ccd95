/*
 * hf.c — loading a vocabulary from a Hugging Face tokenizer.json (and the
 * tokenizer_config.json beside it, if any), and writing a vocabulary as
 * GGUF tokenizer.ggml.* keys (for `slm convert`).
 *
 * Read: model.vocab {text: id}, model.merges (either "a b" strings or
 * ["a", "b"] pairs, in rank order), model.ignore_merges, added_tokens
 * (special ones — and ones that look special, <|…|>, as llama.cpp's
 * converter decides — become CONTROL, the others USER_DEFINED; lstrip and
 * rstrip are kept). Two kinds of BPE file are told apart by how they treat
 * spaces:
 *   - byte-level BPE (Llama 3, Qwen, SmolLM, GPT-2): a ByteLevel step; the
 *     pre_tokenizer's Split regex is matched against the regexes slm knows
 *     (Llama 3's → "llama-bpe", Qwen2's → "qwen2", GPT-2's → "gpt-2"; a
 *     plain ByteLevel with use_regex is "gpt-2", after a Digits step with
 *     individual_digits — SmolLM — "smollm");
 *   - SentencePiece-style BPE (Llama 2, TinyLlama, Mistral, Phi-3): spaces
 *     become "▁", bytes fall back to <0xXX>; read as a SentencePiece vocabulary
 *     whose scores come from the merge ranks (hf_spm.c).
 * Ids missing from both lists become unused "[PAD<id>]" tokens, as the GGUF
 * converter writes them. From tokenizer_config.json: bos_token, eos_token,
 * pad_token (a string or {"content": …}), add_bos_token, add_eos_token,
 * add_prefix_space; a BOS or EOS it does not name is taken from the ids in
 * config.json or generation_config.json beside it (the first of a list).
 *
 * Normalizers other than the SentencePiece space handling are not applied
 * (llama.cpp does not apply Qwen's NFC either); Unigram and WordPiece
 * models are SLM_EUNSUPPORTED. cJSON allocates its parse tree with its own
 * allocator; it is freed before returning.
 */
#include "tokenizer/hf.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

#define HF_MAX_FILE ((size_t)1 << 30)

/* Reads a whole file; *out is slm_malloc'ed and NUL-terminated. SLM_ENOTFOUND
 * when it does not exist (so optional files can be skipped). */
static int read_file(const char *path, char **out, size_t *len, slm_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return slm_err_set(err, SLM_ENOTFOUND, "%s: cannot open", path);
    int rc = 0;
    char *buf = NULL;
    long size;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = slm_err_set(err, SLM_EIO, "%s: cannot read", path);
        goto done;
    }
    if ((size_t)size > HF_MAX_FILE) {
        rc = slm_err_set(err, SLM_ERANGE, "%s: %ld bytes is too large", path, size);
        goto done;
    }
    buf = slm_malloc((size_t)size + 1);
    if (!buf) { rc = slm_err_set(err, SLM_ENOMEM, "%s: out of memory", path); goto done; }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = slm_err_set(err, SLM_EIO, "%s: short read", path);
        goto done;
    }
    buf[size] = 0;
    *out = buf;
    *len = (size_t)size;
    buf = NULL;
done:
    slm_free(buf);
    fclose(f);
    return rc;
}

int slm_hf_json_load(const char *path, cJSON **out, slm_err *err) {
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err);
    if (rc) return rc;
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!*out)
        rc = slm_err_set(err, SLM_EFORMAT, "%s: not valid JSON (near byte %zu)", path,
                         end ? (size_t)(end - buf) : (size_t)0);
    slm_free(buf);
    return rc;
}

/* A JSON number that is an integer id in [0, INT32_MAX - 1]. */
static bool json_id(const cJSON *item, int32_t *id) {
    if (!cJSON_IsNumber(item)) return false;
    double d = item->valuedouble;
    if (!(d >= 0 && d < (double)INT32_MAX) || d != (double)(int32_t)d) return false;
    *id = (int32_t)d;
    return true;
}

static bool json_true(const cJSON *obj, const char *key) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static bool looks_special(const char *t) {
    size_t n = strlen(t);
    if (n >= 4 && memcmp(t, "<|", 2) == 0 && memcmp(t + n - 2, "|>", 2) == 0) return true;
    static const char fl[] = "<\xef\xbd\x9c", fr[] = "\xef\xbd\x9c>";   /* <｜ … ｜> */
    return n >= 8 && memcmp(t, fl, 4) == 0 && memcmp(t + n - 4, fr, 4) == 0;
}

/* Finds the pre-tokenizer name; *byte_level tells whether a ByteLevel step
 * is present, *digits whether one splits digits one by one (SmolLM: Digits
 * then GPT-2's ByteLevel regex, llama.cpp's "smollm"). */
static void scan_pretok(const cJSON *pt, const char **name, bool *byte_level, bool *digits, const char **unknown) {
    if (!cJSON_IsObject(pt)) return;
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pt, "type"));
    if (!type) return;
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers"))
            scan_pretok(e, name, byte_level, digits, unknown);
    } else if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const char *re = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pat, "Regex"));
        const char *n = re ? tok_pretok_from_hf_regex(re) : NULL;
        if (n && !*name) *name = n;
        else if (!n) *unknown = re ? re : "(a non-regex Split)";
    } else if (strcmp(type, "ByteLevel") == 0) {
        *byte_level = true;
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(pt, "use_regex");
        if (!*name && (!ur || cJSON_IsTrue(ur))) *name = *digits ? "smollm" : "gpt-2";
    } else if (strcmp(type, "Digits") == 0 && json_true(pt, "individual_digits")) {
        *digits = true;
    }
}

/* bos_token / eos_token: a string, or an object with "content". */
static const char *config_token(const cJSON *cfg, const char *key) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(t)) t = cJSON_GetObjectItemCaseSensitive(t, "content");
    return cJSON_GetStringValue(t);
}

static int32_t find_linear(const slm_vocab *v, const char *text) {
    size_t n = strlen(text);
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->tok_len[id] == n && memcmp(tok_text(v, id), text, n) == 0) return id;
    return -1;
}

/* The path of a file in json_path's folder (slm_malloc'ed; NULL on OOM). */
static char *sibling(const char *json_path, const char *name) {
    const char *slash = strrchr(json_path, '/');
    size_t dir_len = slash ? (size_t)(slash - json_path) + 1 : 0, n = strlen(name);
    char *path = slm_malloc(dir_len + n + 1);
    if (!path) return NULL;
    memcpy(path, json_path, dir_len);
    memcpy(path + dir_len, name, n + 1);
    return path;
}

/* A token id in config.json / generation_config.json: an integer, or the
 * first of a list; -1 when absent or out of range. */
static int32_t config_id(const cJSON *cfg, const char *key, int32_t n_tokens) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsArray(e)) e = cJSON_GetArrayItem(e, 0);
    int32_t id;
    return json_id(e, &id) && id < n_tokens ? id : -1;
}

/* BOS/EOS that tokenizer_config.json did not name: from the model's
 * config.json, then generation_config.json. These files are optional here
 * (`slm convert` reads and checks config.json itself). */
static int read_model_ids(const char *json_path, slm_vocab *v, bool want_bos, bool want_eos, slm_err *err) {
    static const char *const names[] = { "config.json", "generation_config.json" };
    for (int k = 0; k < 2 && (want_bos || want_eos); k++) {
        char *path = sibling(json_path, names[k]);
        if (!path) return slm_err_set(err, SLM_ENOMEM, "out of memory");
        cJSON *cfg = NULL;
        slm_err ignored = { 0 };
        int rc = slm_hf_json_load(path, &cfg, &ignored);   /* absent or malformed: skipped */
        if (rc == SLM_ENOMEM) {
            slm_free(path);
            return slm_err_set(err, SLM_ENOMEM, "out of memory");
        }
        if (rc == 0) {
            int32_t id;
            if (want_bos && (id = config_id(cfg, "bos_token_id", v->n_tokens)) >= 0) { v->bos = id; want_bos = false; }
            if (want_eos && (id = config_id(cfg, "eos_token_id", v->n_tokens)) >= 0) { v->eos = id; want_eos = false; }
        }
        cJSON_Delete(cfg);
        slm_free(path);
    }
    return 0;
}

static int read_config(const char *json_path, slm_vocab *v, slm_err *err) {
    char *path = sibling(json_path, "tokenizer_config.json");
    if (!path) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    cJSON *cfg = NULL;
    const char *bos = NULL, *eos = NULL, *pad = NULL;
    int rc = slm_hf_json_load(path, &cfg, err);
    if (rc == SLM_ENOTFOUND) { slm_err_clear(err); rc = 0; goto ids; }
    if (rc) goto done;
    bos = config_token(cfg, "bos_token");
    eos = config_token(cfg, "eos_token");
    pad = config_token(cfg, "pad_token");
    if (bos && (v->bos = find_linear(v, bos)) < 0) {
        rc = slm_err_set(err, SLM_EFORMAT, "%s: bos_token '%.100s' is not in the vocabulary", path, bos);
        goto done;
    }
    if (eos && (v->eos = find_linear(v, eos)) < 0) {
        rc = slm_err_set(err, SLM_EFORMAT, "%s: eos_token '%.100s' is not in the vocabulary", path, eos);
        goto done;
    }
    if (pad) v->pad = find_linear(v, pad);       /* a pad token outside the vocabulary: none */
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(cfg, "add_prefix_space");
    if (cJSON_IsBool(ab)) v->add_bos = cJSON_IsTrue(ab);
    if (cJSON_IsBool(ae)) v->add_eos = cJSON_IsTrue(ae);
    if (cJSON_IsBool(ap) && v->kind == TOK_SPM) v->add_space_prefix = cJSON_IsTrue(ap);
ids:
    rc = read_model_ids(json_path, v, !bos, !eos, err);
done:
    cJSON_Delete(cfg);
    slm_free(path);
    return rc;
}

bool tok_hf_merge_parts(const cJSON *m, const char **a, size_t *alen, const char **b, size_t *blen) {
    *a = *b = NULL;
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring;
        const char *sp = s[0] ? strchr(s + 1, ' ') : NULL;
        if (!sp) return false;
        *a = s;
        *alen = (size_t)(sp - s);
        *b = sp + 1;
        *blen = strlen(*b);
        return true;
    }
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2) return false;
    *a = cJSON_GetStringValue(cJSON_GetArrayItem(m, 0));
    *b = cJSON_GetStringValue(cJSON_GetArrayItem(m, 1));
    if (!*a || !*b) return false;
    *alen = strlen(*a);
    *blen = strlen(*b);
    return true;
}

static int load_merges(const cJSON *merges, slm_vocab *v, slm_err *err) {
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a, *b;
        size_t alen, blen;
        if (!tok_hf_merge_parts(m, &a, &alen, &b, &blen))
            return slm_err_set(err, SLM_EFORMAT, "model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", i);
        int rc = tok_vocab_add_merge(v, a, alen, b, blen, err);
        if (rc) return rc;
        i++;
    }
    return 0;
}

static int build(const cJSON *root, const char *path, slm_vocab **out, slm_err *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return slm_err_set(err, SLM_EFORMAT, "%s: no \"model\" object", path);
    const char *mtype = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(model, "type"));
    if (mtype && strcmp(mtype, "BPE") != 0)
        return slm_err_set(err, SLM_EUNSUPPORTED, "%s: model.type '%.50s' is not supported (slm reads BPE)",
                           path, mtype);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) return slm_err_set(err, SLM_EFORMAT, "%s: model.vocab is not an object", path);
    if (!cJSON_IsArray(merges)) return slm_err_set(err, SLM_EFORMAT, "%s: model.merges is not an array", path);
    if (added && !cJSON_IsArray(added))
        return slm_err_set(err, SLM_EFORMAT, "%s: added_tokens is not an array", path);

    const char *pre = NULL, *unknown = NULL;
    bool byte_level = false, digits = false, space_prefix = false;
    scan_pretok(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &pre, &byte_level, &digits, &unknown);
    int kind = byte_level ? TOK_BPE : tok_hf_spm_style(root, &space_prefix) ? TOK_SPM : 0;
    if (!kind)
        return slm_err_set(err, SLM_EUNSUPPORTED,
                           "%s: neither byte-level BPE (a ByteLevel pre-tokenizer) nor SentencePiece-style BPE "
                           "(spaces replaced by U+2581)", path);
    if (kind == TOK_BPE && !pre)
        return slm_err_set(err, SLM_EUNSUPPORTED, "%s: pre_tokenizer regex '%.200s' is not supported", path,
                           unknown ? unknown : "(none)");

    int32_t max_id = -1, id;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!json_id(e, &id))
            return slm_err_set(err, SLM_EFORMAT, "%s: model.vocab['%.100s'] is not a token id", path, e->string);
        if (id > max_id) max_id = id;
    }
    int k = 0;
    cJSON_ArrayForEach(e, added) {
        if (!json_id(cJSON_GetObjectItemCaseSensitive(e, "id"), &id) ||
            !cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "content")))
            return slm_err_set(err, SLM_EFORMAT, "%s: added_tokens[%d] needs an id and a content", path, k);
        if (id > max_id) max_id = id;
        k++;
    }
    if (max_id < 0) return slm_err_set(err, SLM_EFORMAT, "%s: model.vocab is empty", path);

    slm_vocab *v = NULL;
    uint8_t *seen = NULL;
    int rc = tok_vocab_new(kind, max_id + 1, &v, err);
    if (rc) return rc;
    seen = slm_calloc((size_t)max_id + 1, 1);
    if (!seen) { rc = slm_err_set(err, SLM_ENOMEM, "out of memory"); goto fail; }
    cJSON_ArrayForEach(e, vocab) {
        json_id(e, &id);
        if (seen[id]) {
            rc = slm_err_set(err, SLM_EFORMAT, "%s: model.vocab has id %d twice", path, id);
            goto fail;
        }
        seen[id] = 1;
        if ((rc = tok_vocab_set_token(v, id, e->string, strlen(e->string), 0.0f, SLM_TOKTYPE_NORMAL, err)))
            goto fail;
    }
    k = 0;
    cJSON_ArrayForEach(e, added) {
        json_id(cJSON_GetObjectItemCaseSensitive(e, "id"), &id);
        const char *content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "content"));
        size_t n = strlen(content);
        if (seen[id] && (v->tok_len[id] != n || memcmp(tok_text(v, id), content, n) != 0)) {
            rc = slm_err_set(err, SLM_EFORMAT, "%s: added_tokens[%d] ('%.100s') reuses id %d of another token",
                             path, k, content, id);
            goto fail;
        }
        int type = json_true(e, "special") || looks_special(content) ? SLM_TOKTYPE_CONTROL
                                                                      : SLM_TOKTYPE_USER_DEFINED;
        if (!seen[id] && (rc = tok_vocab_set_token(v, id, content, n, 0.0f, type, err))) goto fail;
        seen[id] = 1;
        v->type[id] = (uint8_t)type;
        if (json_true(e, "lstrip")) v->flags[id] |= TOKF_LSTRIP;
        if (json_true(e, "rstrip")) v->flags[id] |= TOKF_RSTRIP;
        k++;
    }
    for (id = 0; id <= max_id; id++) {
        if (seen[id]) continue;
        char pad[32];
        int n = snprintf(pad, sizeof pad, "[PAD%d]", id);
        if ((rc = tok_vocab_set_token(v, id, pad, (size_t)n, 0.0f, SLM_TOKTYPE_UNUSED, err))) goto fail;
    }
    if (kind == TOK_BPE) {
        if ((rc = load_merges(merges, v, err))) goto fail;
        if ((rc = tok_vocab_set_pre(v, pre, strlen(pre), err))) goto fail;
        const cJSON *im = cJSON_GetObjectItemCaseSensitive(model, "ignore_merges");
        if (cJSON_IsBool(im)) v->ignore_merges = cJSON_IsTrue(im);
    } else {
        v->add_space_prefix = space_prefix;
        if ((rc = tok_hf_spm_prepare(v, model, path, err))) goto fail;
    }
    if ((rc = read_config(path, v, err))) goto fail;
    if (v->add_bos && v->bos < 0) v->add_bos = false;      /* no BOS named: none to add */
    if (v->add_eos && v->eos < 0) v->add_eos = false;
    if ((rc = tok_vocab_finish(v, err))) goto fail;
    if (kind == TOK_SPM && (rc = tok_hf_spm_scores(v, merges, path, err))) goto fail;
    slm_free(seen);
    *out = v;
    return 0;
fail:
    slm_free(seen);
    slm_vocab_free(v);
    return rc;
}

int slm_vocab_load_hf(const char *tokenizer_json_path, slm_vocab **out, slm_err *err) {
    if (!out) return slm_err_set(err, SLM_EINVAL, "slm_vocab_load_hf: out is NULL");
    *out = NULL;
    if (!tokenizer_json_path) return slm_err_set(err, SLM_EINVAL, "slm_vocab_load_hf: path is NULL");
    cJSON *root = NULL;
    int rc = slm_hf_json_load(tokenizer_json_path, &root, err);
    if (rc == SLM_ENOTFOUND) return slm_err_set(err, SLM_EIO, "%s: cannot open", tokenizer_json_path);
    if (rc) return rc;
    rc = build(root, tokenizer_json_path, out, err);
    cJSON_Delete(root);
    return rc;
}

/* ---- writing a vocabulary as GGUF metadata -------------------------------- */

int slm_vocab_write_gguf(const slm_vocab *v, slm_gguf_writer *w, int32_t n_tokens, slm_err *err) {
    if (n_tokens < v->n_tokens)
        return slm_err_set(err, SLM_EFORMAT, "the tokenizer has %d tokens but the model only %d embedding rows",
                           v->n_tokens, n_tokens);
    const char **texts = slm_calloc((size_t)n_tokens, sizeof *texts);
    uint64_t *lens = slm_calloc((size_t)n_tokens, sizeof *lens);
    int32_t *types = slm_calloc((size_t)n_tokens, sizeof *types);
    float *scores = slm_calloc((size_t)n_tokens, sizeof *scores);
    char *pads = NULL, *mtext = NULL;
    const char **mstrs = NULL;
    int rc = SLM_ENOMEM;
    size_t n_pad = (size_t)(n_tokens - v->n_tokens);
    if (!texts || !lens || !types || !scores || (n_pad && !(pads = slm_malloc(n_pad * 16)))) goto done;
    for (int32_t id = 0; id < n_tokens; id++) {
        if (id < v->n_tokens) {
            texts[id] = tok_text(v, id);
            lens[id] = v->tok_len[id];
            types[id] = v->type[id];
            scores[id] = v->score[id];
        } else {                                 /* embedding rows past the tokenizer */
            char *p = pads + (size_t)(id - v->n_tokens) * 16;
            lens[id] = (uint64_t)snprintf(p, 16, "[PAD%d]", (int)id);
            texts[id] = p;
            types[id] = SLM_TOKTYPE_UNUSED;
            scores[id] = v->kind == TOK_SPM ? -(float)INT32_MAX : 0.0f;
        }
    }
    bool spm = v->kind == TOK_SPM;
    if (slm_gguf_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2") ||
        slm_gguf_set_str(w, "tokenizer.ggml.pre", v->pre ? v->pre : "default") ||
        slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", texts, lens, (uint64_t)n_tokens) ||
        slm_gguf_set_arr(w, "tokenizer.ggml.token_type", SLM_GGUF_I32, types, (uint64_t)n_tokens) ||
        (spm && slm_gguf_set_arr(w, "tokenizer.ggml.scores", SLM_GGUF_F32, scores, (uint64_t)n_tokens)))
        goto done;
    if (!spm) {          /* merges as "a b", in rank order */
        mstrs = slm_calloc((size_t)v->n_merges + 1, sizeof *mstrs);
        if (!mstrs || !(mtext = slm_malloc(v->merge_text.len + 2 * (size_t)v->n_merges + 1))) goto done;
        char *p = mtext;
        for (int32_t r = 0; r < v->n_merges; r++) {
            const tok_merge *m = &v->merges[r];
            mstrs[r] = p;
            memcpy(p, v->merge_text.p + m->a_off, m->a_len);
            p += m->a_len;
            *p++ = ' ';
            memcpy(p, v->merge_text.p + m->b_off, m->b_len);
            p += m->b_len;
            *p++ = 0;
        }
        if (slm_gguf_set_arr_str(w, "tokenizer.ggml.merges", mstrs, NULL, (uint64_t)v->n_merges)) goto done;
    }
    if ((v->bos >= 0 && slm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos)) ||
        (v->eos >= 0 && slm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos)) ||
        (v->unk >= 0 && slm_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk)) ||
        (v->pad >= 0 && slm_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad)) ||
        slm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos) ||
        slm_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos) ||
        (spm && slm_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix)))
        goto done;
    rc = 0;
done:
    slm_free(texts);
    slm_free(lens);
    slm_free(types);
    slm_free(scores);
    slm_free(pads);
    slm_free(mstrs);
    slm_free(mtext);
    return rc ? slm_err_set(err, rc, "out of memory writing the vocabulary") : 0;
}
