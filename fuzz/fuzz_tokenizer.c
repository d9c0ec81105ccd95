/*
 * fuzz_tokenizer.c — libFuzzer harness for the tokenizer.
 *
 * The vocabulary is loaded once: from $SLM_FUZZ_VOCAB (a .gguf, or a
 * Hugging Face tokenizer.json when the name ends in .json) or, when unset,
 * two small built-in vocabularies made here as GGUF bytes — a SentencePiece
 * one (byte fallback, a control and a user-defined token) and a byte-level
 * BPE one (all 256 bytes, a few merges, the same special tokens). Each input
 * is tokenized with parse_special off and on, then detokenized with the
 * streaming detokenizer in small and large buffers. Promises checked (a
 * broken one aborts, which libFuzzer reports): invalid UTF-8 input is
 * SLM_EINVAL with a message and every other input succeeds; a too-small
 * output gives SLM_ERANGE with the same count; ids are in range; the
 * detokenizer emits only valid UTF-8; with the built-in byte-level BPE
 * vocabulary and parse_special off, detokenizing gives the input back.
 *
 * Build with `make fuzz`, or alone with clang -fsanitize=fuzzer,address,
 * undefined over this file and the library sources (PCRE2, cJSON); run as
 *   build/fuzz/fuzz_tokenizer -max_total_time=60 fuzz/out/tokenizer fuzz/corpus/tokenizer
 *
 * tests/test_tokenizer.c includes this file: its in-memory vocabularies are
 * the ones built here, and it replays fuzz/corpus/tokenizer through
 * fuzz_tokenizer_check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "slm/slm.h"
#include "tokenizer/vocab.h"
#include "util/alloc.h"

#include "gguf_bytes.h"

#define FT_CHECK(cond)                                                                  \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* ---- built-in vocabularies (also used by tests/test_tokenizer.c) ---------- */

/* Ids of the built-in SentencePiece vocabulary. */
enum {
    FT_SPM_UNK = 0, FT_SPM_BOS = 1, FT_SPM_EOS = 2, FT_SPM_BYTE0 = 3,   /* <0x00> … <0xFF>: 3 … 258 */
    FT_SPM_SPACE = 259, FT_SPM_H, FT_SPM_E, FT_SPM_L, FT_SPM_O, FT_SPM_W, FT_SPM_R, FT_SPM_D,
    FT_SPM_LL, FT_SPM_LLO, FT_SPM__H, FT_SPM__HE, FT_SPM__HELLO,
    FT_SPM__W, FT_SPM_OR, FT_SPM__WOR, FT_SPM_LD, FT_SPM__WORLD,
    FT_SPM_IM_START, FT_SPM_TAG, FT_SPM_N
};

/* Ids of the built-in byte-level BPE vocabulary: byte b is token b. */
enum {
    FT_BPE_HE = 256, FT_BPE_LL, FT_BPE_HELL, FT_BPE_HELLO, FT_BPE_GW, FT_BPE_OR, FT_BPE_GWOR,
    FT_BPE_LD, FT_BPE_GWORLD, FT_BPE_EOT, FT_BPE_TAG, FT_BPE_N
};

#define FT_SP "\xe2\x96\x81"   /* ▁ */

static void ft_kv_str(gb *b, const char *key, const char *val) { gb_key(b, key, SLM_GGUF_STR); gb_str(b, val); }
static void ft_kv_u32(gb *b, const char *key, uint32_t val) { gb_key(b, key, SLM_GGUF_U32); gb_u32(b, val); }
static void ft_kv_bool(gb *b, const char *key, bool val) { gb_key(b, key, SLM_GGUF_BOOL); gb_u8(b, val); }

static void ft_kv_strs(gb *b, const char *key, const char *const *s, const size_t *lens, uint64_t n) {
    gb_key(b, key, SLM_GGUF_ARR);
    gb_arr(b, SLM_GGUF_STR, n);
    for (uint64_t i = 0; i < n; i++) gb_strn(b, s[i], lens ? lens[i] : strlen(s[i]));
}

/* GPT-2's bytes_to_unicode for one byte, as UTF-8 (at most 2 bytes + NUL). */
static void ft_gpt2_byte(unsigned b, char out[3]) {
    unsigned cp = b, next = 256;
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    if (!printable) {
        for (unsigned c = 0; c < b; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE))) next++;
        cp = next;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

/* The built-in SentencePiece vocabulary as GGUF bytes (b must be empty).
 * Scores make "hello" → ▁hello and "world" → ▁world through several merges. */
static void ft_spm_gguf(gb *b) {
    static char bytes[256][7];
    const char *toks[FT_SPM_N];
    float scores[FT_SPM_N];
    int32_t types[FT_SPM_N];
    toks[0] = "<unk>"; toks[1] = "<s>"; toks[2] = "</s>";
    types[0] = 2; types[1] = 3; types[2] = 3;
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        toks[FT_SPM_BYTE0 + i] = bytes[i];
        types[FT_SPM_BYTE0 + i] = 6;
    }
    static const struct { const char *t; float s; } normal[] = {
        { FT_SP, -5 }, { "h", -6 }, { "e", -6 }, { "l", -6 }, { "o", -6 }, { "w", -6 }, { "r", -6 }, { "d", -6 },
        { "ll", -1 }, { "llo", -2 }, { FT_SP "h", -3 }, { FT_SP "he", -2.5f }, { FT_SP "hello", -1.5f },
        { FT_SP "w", -3 }, { "or", -2 }, { FT_SP "wor", -2.2f }, { "ld", -2.1f }, { FT_SP "world", -1.6f },
    };
    for (int i = 0; i < FT_SPM_N; i++) scores[i] = 0;
    for (size_t i = 0; i < sizeof normal / sizeof normal[0]; i++) {
        toks[FT_SPM_SPACE + i] = normal[i].t;
        scores[FT_SPM_SPACE + i] = normal[i].s;
        types[FT_SPM_SPACE + i] = 1;
    }
    toks[FT_SPM_IM_START] = "<|im_start|>"; types[FT_SPM_IM_START] = 3;
    toks[FT_SPM_TAG] = "<tag>"; types[FT_SPM_TAG] = 4;

    gb_hdr(b, 3, 0, 10);
    ft_kv_str(b, "general.architecture", "llama");
    ft_kv_str(b, "general.name", "fuzz-spm");
    ft_kv_str(b, "tokenizer.ggml.model", "llama");
    ft_kv_strs(b, "tokenizer.ggml.tokens", toks, NULL, FT_SPM_N);
    gb_key(b, "tokenizer.ggml.scores", SLM_GGUF_ARR);
    gb_arr(b, SLM_GGUF_F32, FT_SPM_N);
    for (int i = 0; i < FT_SPM_N; i++) gb_f32(b, scores[i]);
    gb_key(b, "tokenizer.ggml.token_type", SLM_GGUF_ARR);
    gb_arr(b, SLM_GGUF_I32, FT_SPM_N);
    for (int i = 0; i < FT_SPM_N; i++) gb_u32(b, (uint32_t)types[i]);
    ft_kv_u32(b, "tokenizer.ggml.bos_token_id", FT_SPM_BOS);
    ft_kv_u32(b, "tokenizer.ggml.eos_token_id", FT_SPM_EOS);
    ft_kv_u32(b, "tokenizer.ggml.unknown_token_id", FT_SPM_UNK);
    ft_kv_bool(b, "tokenizer.ggml.add_bos_token", true);
}

/* The built-in byte-level BPE vocabulary as GGUF bytes, with pre-tokenizer
 * pre (NULL: no tokenizer.ggml.pre key) and model name model. */
static void ft_bpe_gguf(gb *b, const char *model, const char *pre) {
    static char bytes[256][3];
    const char *toks[FT_BPE_N];
    int32_t types[FT_BPE_N];
    for (unsigned i = 0; i < 256; i++) {
        ft_gpt2_byte(i, bytes[i]);
        toks[i] = bytes[i];
        types[i] = 1;
    }
    static const char *const merged[] = { "he", "ll", "hell", "hello", "\xc4\xa0w", "or", "\xc4\xa0wor",
                                          "ld", "\xc4\xa0world" };
    static const char *const merges[] = { "h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "o r",
                                          "\xc4\xa0w or", "l d", "\xc4\xa0wor ld" };
    for (int i = 0; i < 9; i++) { toks[FT_BPE_HE + i] = merged[i]; types[FT_BPE_HE + i] = 1; }
    toks[FT_BPE_EOT] = "<|endoftext|>"; types[FT_BPE_EOT] = 3;
    toks[FT_BPE_TAG] = "<tag>"; types[FT_BPE_TAG] = 4;

    gb_hdr(b, 3, 0, pre ? 8 : 7);
    ft_kv_str(b, "general.architecture", "qwen2");
    ft_kv_str(b, "tokenizer.ggml.model", model);
    if (pre) ft_kv_str(b, "tokenizer.ggml.pre", pre);
    ft_kv_strs(b, "tokenizer.ggml.tokens", toks, NULL, FT_BPE_N);
    gb_key(b, "tokenizer.ggml.token_type", SLM_GGUF_ARR);
    gb_arr(b, SLM_GGUF_I32, FT_BPE_N);
    for (int i = 0; i < FT_BPE_N; i++) gb_u32(b, (uint32_t)types[i]);
    ft_kv_strs(b, "tokenizer.ggml.merges", merges, NULL, 9);
    ft_kv_u32(b, "tokenizer.ggml.bos_token_id", FT_BPE_EOT);
    ft_kv_u32(b, "tokenizer.ggml.eos_token_id", FT_BPE_EOT);
}

/* Opens GGUF bytes and loads their vocabulary (the gguf is closed again:
 * the vocabulary keeps its own copies). */
static int ft_load_bytes(const gb *b, slm_vocab **v, slm_err *err) {
    slm_gguf *g = NULL;
    *v = NULL;
    int rc = slm_gguf_open_mem(b->p, b->len, &g, err);
    if (rc) return rc;
    rc = slm_vocab_load(g, v, err);
    slm_gguf_close(g);
    return rc;
}

/* ---- the checks ------------------------------------------------------------ */

static bool ft_utf8_ok(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || i + k > n) return false;
        for (size_t j = 1; j < k; j++) if ((p[i + j] & 0xC0) != 0x80) return false;
        if (c == 0xE0 && p[i + 1] < 0xA0) return false;
        if (c == 0xED && p[i + 1] > 0x9F) return false;
        if (c == 0xF0 && p[i + 1] < 0x90) return false;
        if (c == 0xF4 && p[i + 1] > 0x8F) return false;
        i += k;
    }
    return true;
}

typedef struct ft_text { char *p; size_t len, cap; } ft_text;

/* Checks one detokenizer result (k bytes in buf) and appends it. */
static void ft_take(ft_text *t, int k, const char *buf, size_t cap) {
    FT_CHECK(k >= 0 && (size_t)k < cap && buf[k] == 0);
    FT_CHECK(ft_utf8_ok(buf, (size_t)k));
    while (t->len + (size_t)k + 1 > t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->p = realloc(t->p, t->cap);
        FT_CHECK(t->p);
    }
    memcpy(t->p + t->len, buf, (size_t)k);
    t->len += (size_t)k;
    t->p[t->len] = 0;
}

/* Detokenizes ids through buffers of cap bytes (>= 5: one character and
 * the NUL); returns the text (malloc). A push may leave text queued; the
 * flushes at the end drain it (0 once empty). */
static char *ft_detok(const slm_vocab *v, const int32_t *ids, int32_t n, size_t cap, size_t *len) {
    slm_detok *d = NULL;
    FT_CHECK(slm_detok_new(v, &d) == 0);
    ft_text t = { 0 };
    char *buf = malloc(cap);
    FT_CHECK(buf);
    ft_take(&t, 0, "", 1);
    for (int32_t i = 0; i < n; i++) ft_take(&t, slm_detok_push(d, ids[i], buf, cap), buf, cap);
    int k;
    do {
        k = slm_detok_flush(d, buf, cap);
        ft_take(&t, k, buf, cap);
    } while (k > 0);
    slm_detok_free(d);
    free(buf);
    *len = t.len;
    return t.p;
}

/* Tokenizes and detokenizes one input; round_trip: detok must give it back. */
static void fuzz_tokenizer_check(const slm_vocab *v, const uint8_t *data, size_t size, bool round_trip) {
    const char *text = (const char *)data;
    bool valid = ft_utf8_ok(text, size);
    int32_t n_vocab = slm_vocab_n_tokens(v);
    for (int special = 0; special < 2; special++) {
        slm_err err = { 0 };
        int32_t n = -1;
        int rc = slm_tokenize(v, text, size, special, special, NULL, 0, &n, &err);
        if (!valid) {
            FT_CHECK(rc == SLM_EINVAL && err.msg[0] && strstr(err.msg, "offset"));
            continue;
        }
        FT_CHECK(rc == 0 || rc == SLM_ERANGE);
        FT_CHECK(n >= 0);
        if (n > 0) FT_CHECK(rc == SLM_ERANGE);
        int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
        FT_CHECK(ids);
        int32_t n2 = -1;
        FT_CHECK(slm_tokenize(v, text, size, special, special, ids, n, &n2, &err) == 0 && n2 == n);
        for (int32_t i = 0; i < n; i++) FT_CHECK(ids[i] >= 0 && ids[i] < n_vocab);
        size_t len_small, len_big;
        char *small = ft_detok(v, ids, n, 5, &len_small);   /* 4 bytes + NUL: one character */
        char *big = ft_detok(v, ids, n, 4096, &len_big);
        FT_CHECK(len_small == len_big && memcmp(small, big, len_big) == 0);
        if (round_trip && !special) FT_CHECK(len_big == size && memcmp(big, text, size) == 0);
        free(small);
        free(big);
        free(ids);
    }
}

/* ---- libFuzzer entry ------------------------------------------------------- */

static slm_vocab *ft_vocabs[2];
static bool ft_round_trip[2];
static int ft_n_vocabs = -1;

static void ft_init(void) {
    slm_err err = { 0 };
    const char *path = getenv("SLM_FUZZ_VOCAB");
    ft_n_vocabs = 0;
    if (path && *path) {
        size_t n = strlen(path);
        int rc;
        if (n > 5 && strcmp(path + n - 5, ".json") == 0) {
            rc = slm_vocab_load_hf(path, &ft_vocabs[0], &err);
        } else {
            slm_gguf *g = NULL;
            rc = slm_gguf_open(path, &g, &err);
            if (!rc) rc = slm_vocab_load(g, &ft_vocabs[0], &err);
            slm_gguf_close(g);
        }
        if (rc) {
            fprintf(stderr, "SLM_FUZZ_VOCAB=%s: %s\n", path, err.msg);
            abort();
        }
        ft_n_vocabs = 1;
        return;
    }
    gb b = { 0 };
    ft_spm_gguf(&b);
    FT_CHECK(ft_load_bytes(&b, &ft_vocabs[0], &err) == 0);
    gb_free(&b);
    ft_bpe_gguf(&b, "gpt2", "gpt-2");
    FT_CHECK(ft_load_bytes(&b, &ft_vocabs[1], &err) == 0);
    gb_free(&b);
    ft_round_trip[1] = true;
    ft_n_vocabs = 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (ft_n_vocabs < 0) ft_init();
    for (int i = 0; i < ft_n_vocabs; i++) fuzz_tokenizer_check(ft_vocabs[i], data, size, ft_round_trip[i]);
    return 0;
}
