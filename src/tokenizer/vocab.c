/*
 * vocab.c — building a vocabulary and looking things up in it.
 *
 * Both loaders (GGUF below, tokenizer.json in hf.c) fill an empty slm_vocab
 * through tok_vocab_set_token / tok_vocab_add_merge / tok_vocab_set_pre and
 * then call tok_vocab_finish, which builds what tokenizing needs:
 *   - an open-addressing hash table token text → id (sized to twice the
 *     token count, linear probing, FNV-1a), duplicates are an error;
 *   - a second table (left, right) → merge rank for BPE (the first rank of a
 *     duplicated pair wins, as in llama.cpp's bpe_ranks.emplace);
 *   - the special-token cache: CONTROL, USER_DEFINED and UNKNOWN tokens,
 *     longest text first, which special.c splits the input on;
 *   - the end-of-generation set: EOS, EOT, EOM and the tokens llama.cpp
 *     recognises by text (<|eot_id|>, <|im_end|>, <|end|>, …), which it also
 *     marks as control tokens;
 *   - SPM byte-fallback ids (<0xXX>) and the GPT-2 byte ↔ unicode map;
 *   - the compiled pre-tokenizer regexes (pretok.c).
 * Token texts are copied into one buffer owned by the vocabulary, so a
 * vocabulary does not depend on the lifetime of what it was loaded from.
 */
#include "tokenizer/tok_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static uint64_t fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t pair_hash(const char *a, size_t alen, const char *b, size_t blen) {
    uint64_t h = fnv(FNV_OFFSET, a, alen);
    h = (h ^ 0x1f) * FNV_PRIME;          /* separator: ("ab","c") != ("a","bc") */
    return fnv(h, b, blen);
}

static uint64_t table_size(uint64_t n) {
    uint64_t size = 16;
    while (size < 2 * n) size *= 2;
    return size;
}

/* ---- building ------------------------------------------------------------ */

int tok_vocab_new(int kind, int32_t n_tokens, slm_vocab **out, slm_err *err) {
    *out = NULL;
    if (n_tokens <= 0) return slm_err_set(err, SLM_EFORMAT, "vocabulary has no tokens");
    slm_vocab *v = slm_calloc(1, sizeof *v);
    if (!v) goto oom;
    v->kind = kind;
    v->n_tokens = n_tokens;
    v->bos = v->eos = v->eot = v->eom = v->unk = v->pad = -1;
    v->add_bos = kind == TOK_SPM;
    v->add_space_prefix = kind == TOK_SPM;
    for (int i = 0; i < 256; i++) v->byte_tok[i] = -1;
    v->tok_off = slm_calloc((size_t)n_tokens, sizeof *v->tok_off);
    v->tok_len = slm_calloc((size_t)n_tokens, sizeof *v->tok_len);
    v->score   = slm_calloc((size_t)n_tokens, sizeof *v->score);
    v->type    = slm_calloc((size_t)n_tokens, sizeof *v->type);
    v->flags   = slm_calloc((size_t)n_tokens, sizeof *v->flags);
    if (!v->tok_off || !v->tok_len || !v->score || !v->type || !v->flags) goto oom;
    *out = v;
    return 0;
oom:
    slm_vocab_free(v);
    return slm_err_set(err, SLM_ENOMEM, "out of memory building the vocabulary");
}

int tok_vocab_set_token(slm_vocab *v, int32_t id, const char *text, size_t len,
                        float score, int type, slm_err *err) {
    char empty[32];
    if (id < 0 || id >= v->n_tokens)
        return slm_err_set(err, SLM_EFORMAT, "token id %d is out of range (%d tokens)", id, v->n_tokens);
    if (len == 0) {                       /* llama.cpp: "[EMPTY_<id>]" */
        len = (size_t)snprintf(empty, sizeof empty, "[EMPTY_%d]", id);
        text = empty;
    }
    if (len > UINT32_MAX - 1 || v->text.len > UINT32_MAX - len - 1)
        return slm_err_set(err, SLM_EFORMAT, "token %d: token texts exceed 4 GiB", id);
    v->tok_off[id] = (uint32_t)v->text.len;
    v->tok_len[id] = (uint32_t)len;
    if (tok_buf_put(&v->text, text, len) || tok_buf_put(&v->text, "", 1))
        return slm_err_set(err, SLM_ENOMEM, "out of memory storing token texts");
    v->score[id] = score;
    v->type[id] = (uint8_t)(type >= SLM_TOKTYPE_UNDEFINED && type <= SLM_TOKTYPE_BYTE
                            ? type : SLM_TOKTYPE_UNDEFINED);
    return 0;
}

int tok_vocab_add_merge(slm_vocab *v, const char *a, size_t alen, const char *b,
                        size_t blen, slm_err *err) {
    if (v->n_merges == INT32_MAX)
        return slm_err_set(err, SLM_EFORMAT, "too many merges");
    if (alen > UINT32_MAX / 2 || blen > UINT32_MAX / 2 ||
        v->merge_text.len > UINT32_MAX - alen - blen)
        return slm_err_set(err, SLM_EFORMAT, "merge %d: merge texts exceed 4 GiB", v->n_merges);
    if (v->n_merges == v->cap_merges) {
        int32_t ncap = v->cap_merges ? (v->cap_merges > INT32_MAX / 2 ? INT32_MAX : v->cap_merges * 2) : 1024;
        tok_merge *nm = slm_realloc(v->merges, (size_t)ncap * sizeof *nm);
        if (!nm) return slm_err_set(err, SLM_ENOMEM, "out of memory storing merges");
        v->merges = nm;
        v->cap_merges = ncap;
    }
    tok_merge *m = &v->merges[v->n_merges];
    m->a_off = (uint32_t)v->merge_text.len;
    m->a_len = (uint32_t)alen;
    m->b_off = (uint32_t)(v->merge_text.len + alen);
    m->b_len = (uint32_t)blen;
    m->hash = pair_hash(a, alen, b, blen);
    if (tok_buf_put(&v->merge_text, a, alen) || tok_buf_put(&v->merge_text, b, blen))
        return slm_err_set(err, SLM_ENOMEM, "out of memory storing merges");
    v->n_merges++;
    return 0;
}

int tok_vocab_set_pre(slm_vocab *v, const char *name, size_t len, slm_err *err) {
    slm_free(v->pre);
    v->pre = slm_strndup(name, len);
    if (!v->pre) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    if (v->kind != TOK_BPE) return 0;
    v->pre_def = tok_pretok_find(name, len);
    if (!v->pre_def)
        return slm_err_set(err, SLM_EUNSUPPORTED, "pre-tokenizer '%.*s' (tokenizer.ggml.pre) is not supported",
                           (int)(len > 200 ? 200 : len), name);
    v->ignore_merges = v->pre_def->ignore_merges;
    v->add_bos = v->pre_def->add_bos;
    return 0;
}

/* ---- lookups ------------------------------------------------------------- */

int32_t tok_vocab_find(const slm_vocab *v, const char *text, size_t len) {
    uint64_t i = fnv(FNV_OFFSET, text, len) & v->tok_mask;
    for (;;) {
        int32_t id = v->tok_slots[i];
        if (id < 0) return -1;
        if (v->tok_len[id] == len && memcmp(tok_text(v, id), text, len) == 0) return id;
        i = (i + 1) & v->tok_mask;
    }
}

int32_t tok_merge_rank(const slm_vocab *v, const char *a, size_t alen,
                       const char *b, size_t blen) {
    if (!v->merge_slots) return -1;
    uint64_t h = pair_hash(a, alen, b, blen);
    uint64_t i = h & v->merge_mask;
    for (;;) {
        int32_t r = v->merge_slots[i];
        if (r < 0) return -1;
        const tok_merge *m = &v->merges[r];
        if (m->hash == h && m->a_len == alen && m->b_len == blen &&
            memcmp(v->merge_text.p + m->a_off, a, alen) == 0 &&
            memcmp(v->merge_text.p + m->b_off, b, blen) == 0)
            return r;
        i = (i + 1) & v->merge_mask;
    }
}

static int32_t find_str(const slm_vocab *v, const char *s) {
    return tok_vocab_find(v, s, strlen(s));
}

/* ---- finishing ----------------------------------------------------------- */

static int build_token_table(slm_vocab *v, slm_err *err) {
    uint64_t size = table_size((uint64_t)v->n_tokens);
    v->tok_slots = slm_malloc(size * sizeof *v->tok_slots);
    if (!v->tok_slots) return slm_err_set(err, SLM_ENOMEM, "out of memory building the token table");
    memset(v->tok_slots, 0xff, size * sizeof *v->tok_slots);
    v->tok_mask = size - 1;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        const char *t = tok_text(v, id);
        uint64_t i = fnv(FNV_OFFSET, t, v->tok_len[id]) & v->tok_mask;
        while (v->tok_slots[i] >= 0) {
            int32_t o = v->tok_slots[i];
            if (v->tok_len[o] == v->tok_len[id] && memcmp(tok_text(v, o), t, v->tok_len[id]) == 0)
                return slm_err_set(err, SLM_EFORMAT, "duplicate token in vocabulary: '%.*s' has ids %d and %d",
                                   (int)(v->tok_len[id] > 100 ? 100 : v->tok_len[id]), t, o, id);
            i = (i + 1) & v->tok_mask;
        }
        v->tok_slots[i] = id;
    }
    return 0;
}

static int build_merge_table(slm_vocab *v, slm_err *err) {
    if (v->n_merges == 0) return 0;
    uint64_t size = table_size((uint64_t)v->n_merges);
    v->merge_slots = slm_malloc(size * sizeof *v->merge_slots);
    if (!v->merge_slots) return slm_err_set(err, SLM_ENOMEM, "out of memory building the merge table");
    memset(v->merge_slots, 0xff, size * sizeof *v->merge_slots);
    v->merge_mask = size - 1;
    for (int32_t r = 0; r < v->n_merges; r++) {
        const tok_merge *m = &v->merges[r];
        const char *a = v->merge_text.p + m->a_off, *b = v->merge_text.p + m->b_off;
        if (tok_merge_rank(v, a, m->a_len, b, m->b_len) >= 0) continue; /* keep the first */
        uint64_t i = m->hash & v->merge_mask;
        while (v->merge_slots[i] >= 0) i = (i + 1) & v->merge_mask;
        v->merge_slots[i] = r;
    }
    return 0;
}

static bool is_control(const slm_vocab *v, int32_t id) {
    return v->type[id] == SLM_TOKTYPE_CONTROL;
}

/* Marks a token found by its text as control (llama.cpp overrides the type
 * of "control-looking" tokens the same way). */
static void make_control(slm_vocab *v, int32_t id) {
    v->type[id] = SLM_TOKTYPE_CONTROL;
}

static int32_t first_present(const slm_vocab *v, const char *const *texts) {
    for (int i = 0; texts[i]; i++) {
        int32_t id = find_str(v, texts[i]);
        if (id >= 0) return id;
    }
    return -1;
}

static const char *const k_eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<end_of_utterance>", NULL,
};
static const char *const k_eom_texts[] = { "<|eom_id|>", NULL };
static const char *const k_fim_eog_texts[] = {     /* FIM pad/repo/sep: EOG */
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
    "<|file_sep|>", NULL,
};
static const char *const k_fim_ctl_texts[] = {     /* FIM pre/suf/mid: control */
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "\xe2\x96\x81<PRE>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "\xe2\x96\x81<SUF>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "\xe2\x96\x81<MID>", NULL,
};
static const char *const k_eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL,
};

static void mark_eog(slm_vocab *v) {
    if (v->eot < 0 && (v->eot = first_present(v, k_eot_texts)) >= 0) make_control(v, v->eot);
    if (v->eom < 0 && (v->eom = first_present(v, k_eom_texts)) >= 0) make_control(v, v->eom);
    for (int i = 0; k_fim_ctl_texts[i]; i++) {
        int32_t id = find_str(v, k_fim_ctl_texts[i]);
        if (id >= 0) make_control(v, id);
    }
    for (int i = 0; k_fim_eog_texts[i]; i++) {
        int32_t id = find_str(v, k_fim_eog_texts[i]);
        if (id >= 0) { make_control(v, id); v->flags[id] |= TOKF_EOG; }
    }
    for (int i = 0; k_eog_texts[i]; i++) {
        int32_t id = find_str(v, k_eog_texts[i]);
        if (id >= 0) { make_control(v, id); v->flags[id] |= TOKF_EOG; }
    }
    if (v->eos >= 0) v->flags[v->eos] |= TOKF_EOG;
    if (v->eot >= 0) v->flags[v->eot] |= TOKF_EOG;
    if (v->eom >= 0) v->flags[v->eom] |= TOKF_EOG;
    /* o200k_harmony: with <|return|> and <|call|>, <|end|> does not end generation */
    int32_t ret = find_str(v, "<|return|>"), call = find_str(v, "<|call|>"), end = find_str(v, "<|end|>");
    if (ret >= 0 && call >= 0 && end >= 0 && end != v->eos) {
        v->flags[end] &= (uint8_t)~TOKF_EOG;
        v->type[end] = SLM_TOKTYPE_USER_DEFINED;
    }
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (is_control(v, id) && strstr(tok_text(v, id), "unused")) v->flags[id] |= TOKF_UNUSED;
}

typedef struct len_id { uint32_t len; int32_t id; } len_id;

static int cmp_len_id(const void *pa, const void *pb) {
    const len_id *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int build_special_cache(slm_vocab *v, slm_err *err) {
    int32_t n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        int t = v->type[id];
        if (t == SLM_TOKTYPE_CONTROL || t == SLM_TOKTYPE_USER_DEFINED || t == SLM_TOKTYPE_UNKNOWN) n++;
    }
    len_id *tmp = slm_malloc((size_t)(n ? n : 1) * sizeof *tmp);
    v->special = slm_malloc((size_t)(n ? n : 1) * sizeof *v->special);
    if (!tmp || !v->special) {
        slm_free(tmp);
        return slm_err_set(err, SLM_ENOMEM, "out of memory building the special-token cache");
    }
    int32_t k = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        int t = v->type[id];
        if (t != SLM_TOKTYPE_CONTROL && t != SLM_TOKTYPE_USER_DEFINED && t != SLM_TOKTYPE_UNKNOWN) continue;
        /* a text that is not valid UTF-8 could split a character: never match it */
        if (!tok_utf8_valid(tok_text(v, id), v->tok_len[id], NULL)) continue;
        tmp[k].len = v->tok_len[id];
        tmp[k].id = id;
        k++;
    }
    qsort(tmp, (size_t)k, sizeof *tmp, cmp_len_id);
    for (int32_t i = 0; i < k; i++) v->special[i] = tmp[i].id;
    v->n_special = k;
    slm_free(tmp);
    return 0;
}

static void build_byte_tokens(slm_vocab *v) {
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char name[7] = { '<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0 };
        int32_t id = tok_vocab_find(v, name, 6);
        if (id < 0) {
            char c = (char)b;
            id = tok_vocab_find(v, &c, 1);
        }
        v->byte_tok[b] = id;
    }
}

int tok_vocab_finish(slm_vocab *v, slm_err *err) {
    int rc;
    if (!v->pre && (rc = tok_vocab_set_pre(v, "default", 7, err))) return rc;
    if ((rc = build_token_table(v, err))) return rc;
    if ((rc = build_merge_table(v, err))) return rc;
    mark_eog(v);
    if ((rc = build_special_cache(v, err))) return rc;
    build_byte_tokens(v);
    tok_byte_map_init(v);
    if (v->add_bos && v->bos < 0)
        return slm_err_set(err, SLM_EFORMAT, "add_bos_token is true, but bos_token_id is not set");
    if (v->add_eos && v->eos < 0)
        return slm_err_set(err, SLM_EFORMAT, "add_eos_token is true, but eos_token_id is not set");
    if (v->kind == TOK_BPE && (rc = tok_pretok_compile(v, err))) return rc;
    return 0;
}

/* ---- loading from GGUF --------------------------------------------------- */

/* Optional array key: returns its index (-1 if absent) after checking the
 * element type and that it has at least n_min elements. */
static int opt_array(const slm_gguf *g, const char *key, slm_gguf_vtype want1, slm_gguf_vtype want2,
                     uint64_t n_min, int64_t *idx, slm_err *err) {
    *idx = slm_gguf_find_key(g, key);
    if (*idx < 0) return 0;
    if (slm_gguf_kv_type(g, *idx) != SLM_GGUF_ARR)
        return slm_err_set(err, SLM_EFORMAT, "key '%s' has type %s, expected an array", key,
                           slm_gguf_vtype_name(slm_gguf_kv_type(g, *idx)));
    slm_gguf_vtype et = slm_gguf_kv_arr_type(g, *idx);
    if (et != want1 && et != want2)
        return slm_err_set(err, SLM_EFORMAT, "key '%s' is an array of %s, expected %s", key,
                           slm_gguf_vtype_name(et), slm_gguf_vtype_name(want1));
    uint64_t n = slm_gguf_kv_arr_n(g, *idx);
    if (n < n_min)
        return slm_err_set(err, SLM_EFORMAT, "key '%s' has %llu elements, expected %llu (one per token)",
                           key, (unsigned long long)n, (unsigned long long)n_min);
    return 0;
}

/* Optional token id key; -1 (or 0xFFFFFFFF) means "none". */
static int opt_id(const slm_gguf *g, const char *key, int32_t n_tokens, int32_t *id, slm_err *err) {
    if (slm_gguf_find_key(g, key) < 0) return 0;
    int64_t val;
    int rc = slm_gguf_get_i64(g, key, &val, err);
    if (rc) return rc;
    if (val == -1 || val == (int64_t)UINT32_MAX) { *id = -1; return 0; }
    if (val < 0 || val >= n_tokens)
        return slm_err_set(err, SLM_EFORMAT, "key '%s' = %lld is out of range (vocabulary has %d tokens)",
                           key, (long long)val, n_tokens);
    *id = (int32_t)val;
    return 0;
}

static int opt_bool(const slm_gguf *g, const char *key, bool *out, slm_err *err) {
    if (slm_gguf_find_key(g, key) < 0) return 0;
    return slm_gguf_get_bool(g, key, out, err);
}

static bool name_has(const slm_gguf *g, const char *needle) {
    slm_gguf_str s;
    if (slm_gguf_find_key(g, "general.name") < 0 || slm_gguf_get_str(g, "general.name", &s, NULL)) return false;
    size_t n = strlen(needle);
    for (uint64_t i = 0; i + n <= s.len; i++) {
        size_t j = 0;
        while (j < n && tolower((unsigned char)s.ptr[i + j]) == needle[j]) j++;
        if (j == n) return true;
    }
    return false;
}

/* llama.cpp sets RSTRIP on Phi-3's special tokens by model name. */
static void phi3_strip_flags(slm_vocab *v) {
    for (int32_t i = 0; i < v->n_special; i++) v->flags[v->special[i]] |= TOKF_RSTRIP;
    int32_t id = find_str(v, "</s>");
    if (id >= 0) v->flags[id] |= TOKF_RSTRIP;
    static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>" };
    for (int i = 0; i < 3; i++)
        if ((id = find_str(v, keep[i])) >= 0) v->flags[id] &= (uint8_t)~TOKF_RSTRIP;
}

static int load_merges(const slm_gguf *g, slm_vocab *v, slm_err *err) {
    const char *key = "tokenizer.ggml.merges";
    int64_t idx;
    int rc = opt_array(g, key, SLM_GGUF_STR, SLM_GGUF_STR, 0, &idx, err);
    if (rc) return rc;
    if (idx < 0) return slm_err_set(err, SLM_ENOTFOUND, "key '%s' is missing (BPE vocabulary)", key);
    uint64_t n = slm_gguf_kv_arr_n(g, idx);
    for (uint64_t j = 0; j < n; j++) {
        slm_gguf_str s = slm_gguf_arr_str(g, idx, j);
        uint64_t sp = 1;
        while (sp < s.len && s.ptr[sp] != ' ') sp++;
        if (sp >= s.len)
            return slm_err_set(err, SLM_EFORMAT, "%s[%llu] has no space separating its two parts",
                               key, (unsigned long long)j);
        if ((rc = tok_vocab_add_merge(v, s.ptr, sp, s.ptr + sp + 1, s.len - sp - 1, err))) return rc;
    }
    return 0;
}

int slm_vocab_load(const slm_gguf *g, slm_vocab **out, slm_err *err) {
    slm_vocab *v = NULL;
    int rc;
    *out = NULL;

    slm_gguf_str model;
    if ((rc = slm_gguf_get_str(g, "tokenizer.ggml.model", &model, err))) return rc;
    int kind;
    if (slm_gguf_str_eq(model, "llama")) kind = TOK_SPM;
    else if (slm_gguf_str_eq(model, "gpt2")) kind = TOK_BPE;
    else
        return slm_err_set(err, SLM_EUNSUPPORTED,
                           "tokenizer.ggml.model '%.*s' is not supported (slm reads \"llama\" and \"gpt2\")",
                           (int)(model.len > 100 ? 100 : model.len), model.ptr);

    const char *tkey = "tokenizer.ggml.tokens";
    int64_t tidx, sidx, yidx;
    if ((rc = opt_array(g, tkey, SLM_GGUF_STR, SLM_GGUF_STR, 0, &tidx, err))) return rc;
    if (tidx < 0) return slm_err_set(err, SLM_ENOTFOUND, "key '%s' is missing", tkey);
    uint64_t n = slm_gguf_kv_arr_n(g, tidx);
    if (n == 0 || n > INT32_MAX)
        return slm_err_set(err, SLM_EFORMAT, "key '%s' has %llu tokens", tkey, (unsigned long long)n);
    if ((rc = opt_array(g, "tokenizer.ggml.scores", SLM_GGUF_F32, SLM_GGUF_I32, n, &sidx, err))) return rc;
    if ((rc = opt_array(g, "tokenizer.ggml.token_type", SLM_GGUF_I32, SLM_GGUF_I32, n, &yidx, err))) return rc;

    if ((rc = tok_vocab_new(kind, (int32_t)n, &v, err))) return rc;
    const unsigned char *scores = sidx >= 0 ? slm_gguf_arr_data(g, sidx) : NULL;
    bool iscores = sidx >= 0 && slm_gguf_kv_arr_type(g, sidx) == SLM_GGUF_I32;
    const unsigned char *types = yidx >= 0 ? slm_gguf_arr_data(g, yidx) : NULL;
    for (uint64_t i = 0; i < n; i++) {
        slm_gguf_str s = slm_gguf_arr_str(g, tidx, i);
        float score = 0.0f;
        int32_t type = SLM_TOKTYPE_NORMAL;
        if (scores && iscores) { int32_t t; memcpy(&t, scores + 4 * i, 4); score = (float)t; }
        else if (scores) memcpy(&score, scores + 4 * i, 4);
        if (types) memcpy(&type, types + 4 * i, 4);
        if ((rc = tok_vocab_set_token(v, (int32_t)i, s.ptr, s.len, score, type, err))) goto fail;
    }

    if (kind == TOK_BPE && (rc = load_merges(g, v, err))) goto fail;

    slm_gguf_str pre = { "default", 7 };
    if (slm_gguf_find_key(g, "tokenizer.ggml.pre") >= 0 &&
        (rc = slm_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err))) goto fail;
    if ((rc = tok_vocab_set_pre(v, pre.ptr, pre.len, err))) goto fail;

    if (kind == TOK_SPM) {                 /* llama.cpp's SentencePiece defaults */
        v->bos = n > 1 ? 1 : -1;
        v->eos = n > 2 ? 2 : -1;
        v->unk = 0;
    }
    if ((rc = opt_id(g, "tokenizer.ggml.bos_token_id", v->n_tokens, &v->bos, err)) ||
        (rc = opt_id(g, "tokenizer.ggml.eos_token_id", v->n_tokens, &v->eos, err)) ||
        (rc = opt_id(g, "tokenizer.ggml.eot_token_id", v->n_tokens, &v->eot, err)) ||
        (rc = opt_id(g, "tokenizer.ggml.eom_token_id", v->n_tokens, &v->eom, err)) ||
        (rc = opt_id(g, "tokenizer.ggml.unknown_token_id", v->n_tokens, &v->unk, err)) ||
        (rc = opt_id(g, "tokenizer.ggml.padding_token_id", v->n_tokens, &v->pad, err)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos, err)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos, err)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, err)))
        goto fail;

    if ((rc = tok_vocab_finish(v, err))) goto fail;
    if (name_has(g, "phi-3") || name_has(g, "phi3")) phi3_strip_flags(v);
    *out = v;
    return 0;
fail:
    slm_vocab_free(v);
    return rc;
}

void slm_vocab_free(slm_vocab *v) {
    if (!v) return;
    tok_pretok_free(v);
    slm_free(v->pre);
    tok_buf_free(&v->text);
    slm_free(v->tok_off);
    slm_free(v->tok_len);
    slm_free(v->score);
    slm_free(v->type);
    slm_free(v->flags);
    slm_free(v->tok_slots);
    tok_buf_free(&v->merge_text);
    slm_free(v->merges);
    slm_free(v->merge_slots);
    slm_free(v->special);
    slm_free(v);
}

/* ---- getters ------------------------------------------------------------- */

int32_t slm_vocab_n_tokens(const slm_vocab *v) { return v ? v->n_tokens : 0; }
int32_t slm_vocab_bos(const slm_vocab *v) { return v ? v->bos : -1; }
int32_t slm_vocab_eos(const slm_vocab *v) { return v ? v->eos : -1; }
int32_t slm_vocab_eot(const slm_vocab *v) { return v ? v->eot : -1; }
bool    slm_vocab_add_bos(const slm_vocab *v) { return v && v->add_bos; }

bool slm_vocab_is_eog(const slm_vocab *v, int32_t token) {
    return v && token >= 0 && token < v->n_tokens && (v->flags[token] & TOKF_EOG);
}

const char *slm_vocab_kind(const slm_vocab *v) {
    return v && v->kind == TOK_BPE ? "gpt2" : "llama";
}

const char *slm_vocab_pre(const slm_vocab *v) {
    return v && v->pre ? v->pre : "default";
}

const char *slm_vocab_token_text(const slm_vocab *v, int32_t id, size_t *len) {
    if (!v || id < 0 || id >= v->n_tokens) return NULL;
    if (len) *len = v->tok_len[id];
    return tok_text(v, id);
}

int32_t slm_vocab_token_type(const slm_vocab *v, int32_t id) {
    if (!v || id < 0 || id >= v->n_tokens) return SLM_TOKTYPE_UNDEFINED;
    return v->type[id];
}
