/*
 * test_tokenizer.c — the tokenizer module.
 *
 * Conformance: llama.cpp's tokenizer test vectors (fixtures/vocab: .inp
 * strings, .out ids) through our loaders — the llama-spm, phi-3 and gpt-2
 * GGUF vocabularies, and Llama 3 / Qwen2 through their Hugging Face
 * tokenizer.json — tokenized as llama.cpp's test-tokenizer-0 does
 * (add_special false, parse_special false), plus a detokenize round trip and
 * a speed check (100 KB of English with GPT-2 well under a second). These
 * skip with "fixtures absent: skipped" when ../shared/fixtures is missing.
 *
 * Without fixtures: small SentencePiece and byte-level BPE vocabularies
 * built in memory (fuzz/fuzz_tokenizer.c makes them as GGUF bytes) check
 * merges, byte fallback, special-token splitting, the streaming
 * detokenizer, errors (invalid UTF-8, unknown model and pre-tokenizer,
 * malformed metadata), out-of-memory paths, and replay the fuzz corpus.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf/gguf.h"
#include "helpers.h"
#include "tokenizer/vocab.h"
#include "util/alloc.h"

#include "../fuzz/fuzz_tokenizer.c"   /* built-in vocabularies and fuzzer checks */

#define SKIP_NO_FIXTURE(var, rel)                                   \
    const char *var = th_fixture(rel);                              \
    if (!var) {                                                     \
        cr_skip_test("fixtures absent: skipped (%s)", rel);         \
        return;                                                     \
    }

/* ---- helpers ----------------------------------------------------------------- */

static slm_vocab *load_gguf_vocab(const char *path) {
    slm_gguf *g = NULL;
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    int rc = slm_gguf_open(path, &g, &err);
    cr_assert_eq(rc, 0, "open %s: %s", path, err.msg);
    rc = slm_vocab_load(g, &v, &err);
    cr_assert_eq(rc, 0, "vocab %s: %s", path, err.msg);
    slm_gguf_close(g);
    return v;
}

static slm_vocab *load_spm(void) {
    gb b = { 0 };
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    ft_spm_gguf(&b);
    int rc = ft_load_bytes(&b, &v, &err);
    gb_free(&b);
    cr_assert_eq(rc, 0, "built-in SPM vocabulary: %s", err.msg);
    return v;
}

static slm_vocab *load_bpe(void) {
    gb b = { 0 };
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    ft_bpe_gguf(&b, "gpt2", "gpt-2");
    int rc = ft_load_bytes(&b, &v, &err);
    gb_free(&b);
    cr_assert_eq(rc, 0, "built-in BPE vocabulary: %s", err.msg);
    return v;
}

/* Tokenizes s into ids (cap 256); returns the count. */
static int32_t tok(const slm_vocab *v, const char *s, bool add_bos, bool special, int32_t *ids) {
    slm_err err = { 0 };
    int32_t n = -1;
    int rc = slm_tokenize(v, s, strlen(s), add_bos, special, ids, 256, &n, &err);
    cr_assert_eq(rc, 0, "tokenize '%s': %s", s, err.msg);
    return n;
}

static void expect_ids(const slm_vocab *v, const char *s, bool add_bos, bool special,
                       const int32_t *want, int32_t n_want) {
    int32_t ids[256];
    int32_t n = tok(v, s, add_bos, special, ids);
    char got[1024] = "", exp[1024] = "";
    for (int32_t i = 0; i < n; i++) snprintf(got + strlen(got), sizeof got - strlen(got), " %d", ids[i]);
    for (int32_t i = 0; i < n_want; i++) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " %d", want[i]);
    cr_expect_str_eq(got, exp, "'%s' (special=%d): got [%s ] want [%s ]", s, special, got, exp);
}

#define EXPECT(v, s, bos, special, ...)                                          \
    do {                                                                         \
        const int32_t want_[] = { __VA_ARGS__ };                                 \
        expect_ids(v, s, bos, special, want_, (int32_t)(sizeof want_ / sizeof want_[0])); \
    } while (0)

/* Detokenizes with one push per token into a roomy buffer. */
static char *detok_all(const slm_vocab *v, const int32_t *ids, int32_t n) {
    size_t len;
    return ft_detok(v, ids, n, 256, &len);
}

/* ---- conformance vectors ------------------------------------------------------ */

/* Runs fixtures/vocab/<name>.inp/.out against v; returns failures. */
static int run_vectors(const slm_vocab *v, const char *name, bool round_trip) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/%s.inp", name);
    const char *p = th_fixture(rel);
    cr_assert(p, "%s missing", rel);
    size_t inp_len, out_len;
    char *inp = th_read_file(p, &inp_len);
    snprintf(rel, sizeof rel, "vocab/%s.out", name);
    p = th_fixture(rel);
    cr_assert(p, "%s missing", rel);
    char *outs = th_read_file(p, &out_len);
    cr_assert(inp && outs);

    static const char sep[] = "\n__ggml_vocab_test__\n";
    int failures = 0, n_tests = 0;
    char *ip = inp, *op = outs;
    int32_t *ids = malloc(65536 * sizeof *ids);
    cr_assert(ids);
    while (ip < inp + inp_len) {
        char *next = strstr(ip, sep);
        size_t slen = next ? (size_t)(next - ip) : strlen(ip);
        char *eol = strchr(op, '\n');
        cr_assert(eol, "%s: fewer .out lines than tests", name);
        *eol = 0;

        int32_t want[4096], n_want = 0;
        for (char *t = strtok(op, " "); t; t = strtok(NULL, " ")) want[n_want++] = atoi(t);
        op = eol + 1;

        slm_err err = { 0 };
        int32_t n = -1;
        int rc = slm_tokenize(v, ip, slen, false, false, ids, 65536, &n, &err);
        cr_expect_eq(rc, 0, "%s test %d: %s", name, n_tests, err.msg);
        bool same = rc == 0 && n == n_want;
        for (int32_t i = 0; same && i < n; i++) same = ids[i] == want[i];
        if (!same) {
            failures++;
            char got[2048] = "", exp[2048] = "";
            for (int32_t i = 0; i < n && strlen(got) < 2000; i++) snprintf(got + strlen(got), 2048 - strlen(got), " %d", ids[i]);
            for (int32_t i = 0; i < n_want && strlen(exp) < 2000; i++) snprintf(exp + strlen(exp), 2048 - strlen(exp), " %d", want[i]);
            cr_log_error("%s test %d '%.*s':\n  got [%s ]\n want [%s ]", name, n_tests, (int)slen, ip, got, exp);
        } else if (round_trip) {
            char *back = detok_all(v, ids, n);
            cr_expect(strlen(back) == slen && memcmp(back, ip, slen) == 0,
                      "%s test %d: detokenized '%s', expected '%.*s'", name, n_tests, back, (int)slen, ip);
            free(back);
        }
        n_tests++;
        if (!next) break;
        ip = next + strlen(sep);
    }
    cr_expect_geq(n_tests, 40, "%s: only %d tests read", name, n_tests);
    free(ids);
    free(inp);
    free(outs);
    return failures;
}

Test(tokenizer, vectors_llama_spm) {
    SKIP_NO_FIXTURE(path, "vocab/ggml-vocab-llama-spm.gguf");
    slm_vocab *v = load_gguf_vocab(path);
    cr_expect_str_eq(slm_vocab_kind(v), "llama");
    cr_expect_eq(slm_vocab_n_tokens(v), 32000);
    cr_expect_eq(slm_vocab_bos(v), 1);
    cr_expect_eq(slm_vocab_eos(v), 2);
    cr_expect(slm_vocab_add_bos(v));
    cr_expect(slm_vocab_is_eog(v, 2));
    int failures = run_vectors(v, "ggml-vocab-llama-spm.gguf", false);
    cr_expect_eq(failures, 0, "%d llama-spm vectors failed", failures);
    slm_vocab_free(v);
}

Test(tokenizer, vectors_phi3) {
    SKIP_NO_FIXTURE(path, "vocab/ggml-vocab-phi-3.gguf");
    slm_vocab *v = load_gguf_vocab(path);
    cr_expect_eq(slm_vocab_eos(v), 32000);
    cr_expect(slm_vocab_is_eog(v, 32007), "<|end|> ends generation");
    cr_expect_eq(slm_vocab_eot(v), 32007);
    int failures = run_vectors(v, "ggml-vocab-phi-3.gguf", false);
    cr_expect_eq(failures, 0, "%d phi-3 vectors failed", failures);
    /* Phi-3: special tokens strip the whitespace on their right */
    EXPECT(v, "<|user|>\nHi<|end|>", false, true, 32010, 6324, 32007);
    slm_vocab_free(v);
}

Test(tokenizer, vectors_gpt2) {
    SKIP_NO_FIXTURE(path, "vocab/ggml-vocab-gpt-2.gguf");
    slm_vocab *v = load_gguf_vocab(path);
    cr_expect_str_eq(slm_vocab_kind(v), "gpt2");
    cr_expect_str_eq(slm_vocab_pre(v), "gpt-2");
    cr_expect(!slm_vocab_add_bos(v));
    int failures = run_vectors(v, "ggml-vocab-gpt-2.gguf", true);
    cr_expect_eq(failures, 0, "%d gpt-2 vectors failed", failures);
    slm_vocab_free(v);
}

Test(tokenizer, vectors_llama_bpe_hf) {
    SKIP_NO_FIXTURE(path, "vocab/hf-llama3/tokenizer.json");
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    int rc = slm_vocab_load_hf(path, &v, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_expect_str_eq(slm_vocab_pre(v), "llama-bpe");
    cr_expect_eq(slm_vocab_bos(v), 128000);
    cr_expect_eq(slm_vocab_eos(v), 128001);
    cr_expect(slm_vocab_add_bos(v));
    cr_expect(slm_vocab_is_eog(v, 128009), "<|eot_id|> ends generation");
    int failures = run_vectors(v, "ggml-vocab-llama-bpe.gguf", true);
    cr_expect_eq(failures, 0, "%d llama-bpe vectors failed", failures);
    EXPECT(v, "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true, true,
           128000, 128006, 882, 128007, 271, 13347, 128009);
    slm_vocab_free(v);
}

Test(tokenizer, vectors_qwen2_hf) {
    SKIP_NO_FIXTURE(path, "vocab/hf-qwen3/tokenizer.json");
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    int rc = slm_vocab_load_hf(path, &v, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_expect_str_eq(slm_vocab_pre(v), "qwen2");
    cr_expect(!slm_vocab_add_bos(v));
    cr_expect_eq(slm_vocab_bos(v), -1);
    cr_expect_eq(slm_vocab_eos(v), 151645);
    cr_expect(slm_vocab_is_eog(v, 151643) && slm_vocab_is_eog(v, 151645));
    int failures = run_vectors(v, "ggml-vocab-qwen2.gguf", true);
    cr_expect_eq(failures, 0, "%d qwen2 vectors failed", failures);
    EXPECT(v, "<|im_start|>user\nHi<|im_end|>", true, true, 151644, 872, 198, 13048, 151645);
    slm_vocab_free(v);
}

/* 100 KB of English-like text with the GPT-2 vocabulary. */
Test(tokenizer, speed_gpt2_100k) {
    SKIP_NO_FIXTURE(path, "vocab/ggml-vocab-gpt-2.gguf");
    slm_vocab *v = load_gguf_vocab(path);
    static const char *const words[] = {
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "then", "it",
        "was", "a", "time", "when", "everything", "seemed", "possible,", "people", "said.",
        "However", "nobody", "knew", "what", "would", "happen", "next;", "tokenizers", "are",
        "fun", "(really)", "1234", "don't", "they're", "Hello!", "\n"
    };
    size_t cap = 100 * 1024, len = 0;
    char *text = malloc(cap + 64);
    unsigned seed = 1;
    while (len < cap) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % (sizeof words / sizeof words[0])];
        len += (size_t)sprintf(text + len, "%s%s", len ? " " : "", w);
    }
    int32_t *ids = malloc(len * sizeof *ids);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    slm_err err = { 0 };
    int32_t n = 0;
    int rc = slm_tokenize(v, text, len, false, false, ids, (int32_t)len, &n, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_expect_gt(n, 20000, "%d tokens", n);
#if defined(__SANITIZE_ADDRESS__)
    double limit = 10.0;
#else
    double limit = 1.0;
#endif
    cr_log_info("tokenized %zu bytes into %d tokens in %.3f s", len, n, secs);
    cr_expect_lt(secs, limit, "100 KB took %.3f s", secs);
    char *back = detok_all(v, ids, n);
    cr_expect(strlen(back) == len && memcmp(back, text, len) == 0, "round trip");
    free(back);
    free(ids);
    free(text);
    slm_vocab_free(v);
}

/* ---- SentencePiece in memory --------------------------------------------------- */

Test(tokenizer, spm_merges_by_score) {
    slm_vocab *v = load_spm();
    cr_expect_str_eq(slm_vocab_kind(v), "llama");
    cr_expect_eq(slm_vocab_n_tokens(v), FT_SPM_N);
    EXPECT(v, "hello", false, false, FT_SPM__HELLO);
    EXPECT(v, "hello world", true, false, FT_SPM_BOS, FT_SPM__HELLO, FT_SPM__WORLD);
    EXPECT(v, "hello  world", false, false, FT_SPM__HELLO, FT_SPM_SPACE, FT_SPM__WORLD);
    EXPECT(v, " hello", false, false, FT_SPM_SPACE, FT_SPM__HELLO);
    EXPECT(v, "", true, false, FT_SPM_BOS);
    int32_t ids[4];
    slm_err err = { 0 };
    int32_t n = -1;
    cr_expect_eq(slm_tokenize(v, "", 0, false, false, ids, 4, &n, &err), 0);
    cr_expect_eq(n, 0);
    slm_vocab_free(v);
}

Test(tokenizer, spm_byte_fallback) {
    slm_vocab *v = load_spm();
    /* é is not a piece: its two bytes become <0xC3> <0xA9> */
    EXPECT(v, "h\xc3\xa9llo", false, false, FT_SPM__H, FT_SPM_BYTE0 + 0xC3, FT_SPM_BYTE0 + 0xA9, FT_SPM_LLO);
    EXPECT(v, "\n", false, false, FT_SPM_SPACE, FT_SPM_BYTE0 + '\n');
    slm_vocab_free(v);
}

Test(tokenizer, spm_unknown_without_byte_fallback) {
    static const char *const toks[] = { "<unk>", "<s>", "</s>", FT_SP, "a" };
    gb b = { 0 };
    gb_hdr(&b, 3, 0, 3);
    ft_kv_str(&b, "tokenizer.ggml.model", "llama");
    ft_kv_strs(&b, "tokenizer.ggml.tokens", toks, NULL, 5);
    gb_key(&b, "tokenizer.ggml.token_type", SLM_GGUF_ARR);
    gb_arr(&b, SLM_GGUF_I32, 5);
    static const uint32_t types[] = { 2, 3, 3, 1, 1 };
    for (int i = 0; i < 5; i++) gb_u32(&b, types[i]);
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    cr_assert_eq(ft_load_bytes(&b, &v, &err), 0, "%s", err.msg);
    gb_free(&b);
    /* one <unk> per unknown character, not per byte */
    EXPECT(v, "a\xc3\xa9" "b", false, false, 3, 4, 0, 0);
    slm_vocab_free(v);
}

Test(tokenizer, spm_special_splitting) {
    slm_vocab *v = load_spm();
    /* control tokens only with parse_special; the fragment after one gets a space prefix */
    EXPECT(v, "<|im_start|>hello", false, true, FT_SPM_IM_START, FT_SPM__HELLO);
    EXPECT(v, "hello<|im_start|>world", false, true, FT_SPM__HELLO, FT_SPM_IM_START, FT_SPM__WORLD);
    int32_t ids[256];
    int32_t n = tok(v, "<|im_start|>hello", false, false, ids);
    for (int32_t i = 0; i < n; i++) cr_expect_neq(ids[i], FT_SPM_IM_START);
    cr_expect_eq(ids[n - 1], FT_SPM_LLO, "text ends in 'llo' pieces");
    /* user-defined tokens split even without parse_special; <s> with it */
    EXPECT(v, "<tag>hello", false, false, FT_SPM_TAG, FT_SPM__HELLO);
    EXPECT(v, "<s>hello</s>", false, true, FT_SPM_BOS, FT_SPM__HELLO, FT_SPM_EOS);
    slm_vocab_free(v);
}

Test(tokenizer, spm_token_to_bytes) {
    slm_vocab *v = load_spm();
    char buf[32];
    cr_expect_eq(slm_token_to_bytes(v, FT_SPM__HELLO, buf, sizeof buf), 6);
    cr_expect(memcmp(buf, " hello", 6) == 0);
    cr_expect_eq(slm_token_to_bytes(v, FT_SPM_BYTE0 + 0x41, buf, sizeof buf), 1);
    cr_expect_eq(buf[0], 'A');
    cr_expect_eq(slm_token_to_bytes(v, FT_SPM_BOS, buf, sizeof buf), 0, "control tokens are empty");
    cr_expect_eq(slm_token_to_bytes(v, FT_SPM_UNK, buf, sizeof buf), 0);
    cr_expect_eq(slm_token_to_bytes(v, FT_SPM_TAG, buf, sizeof buf), 5);
    cr_expect(memcmp(buf, "<tag>", 5) == 0);
    cr_expect_eq(slm_token_to_bytes(v, FT_SPM__HELLO, buf, 5), SLM_ERANGE, "6 bytes do not fit in 5");
    cr_expect_eq(slm_token_to_bytes(v, FT_SPM__HELLO, NULL, 0), 6, "size query");
    cr_expect_eq(slm_token_to_bytes(v, FT_SPM_N, buf, sizeof buf), SLM_EINVAL);
    cr_expect_eq(slm_token_to_bytes(v, -1, buf, sizeof buf), SLM_EINVAL);
    size_t len;
    cr_expect_str_eq(slm_vocab_token_text(v, FT_SPM__HELLO, &len), FT_SP "hello");
    cr_expect_eq(slm_vocab_token_type(v, FT_SPM_TAG), SLM_TOKTYPE_USER_DEFINED);
    slm_vocab_free(v);
}

/* ---- byte-level BPE in memory --------------------------------------------------- */

Test(tokenizer, bpe_merges_by_rank) {
    slm_vocab *v = load_bpe();
    cr_expect_str_eq(slm_vocab_kind(v), "gpt2");
    cr_expect(!slm_vocab_add_bos(v));
    EXPECT(v, "hello world", false, false, FT_BPE_HELLO, FT_BPE_GWORLD);
    /* \s+(?!\S): the first of two spaces stands alone, the second joins "world" */
    EXPECT(v, "hello  world", false, false, FT_BPE_HELLO, ' ', FT_BPE_GWORLD);
    EXPECT(v, "hell", false, false, FT_BPE_HELL);
    EXPECT(v, "helloworld", false, false, FT_BPE_HELLO, 'w', FT_BPE_OR, FT_BPE_LD);
    EXPECT(v, "h\xc3\xa9", false, false, 'h', 0xC3, 0xA9);
    slm_vocab_free(v);
}

Test(tokenizer, bpe_special_splitting) {
    slm_vocab *v = load_bpe();
    EXPECT(v, "hello<|endoftext|> world", false, true, FT_BPE_HELLO, FT_BPE_EOT, FT_BPE_GWORLD);
    int32_t ids[256];
    int32_t n = tok(v, "hello<|endoftext|>", false, false, ids);
    cr_expect_gt(n, 2);
    for (int32_t i = 0; i < n; i++) cr_expect_neq(ids[i], FT_BPE_EOT);
    EXPECT(v, "<tag><tag>hello", false, false, FT_BPE_TAG, FT_BPE_TAG, FT_BPE_HELLO);
    cr_expect(slm_vocab_is_eog(v, FT_BPE_EOT));
    cr_expect(!slm_vocab_is_eog(v, FT_BPE_HELLO));
    char buf[16];
    cr_expect_eq(slm_token_to_bytes(v, FT_BPE_GWORLD, buf, sizeof buf), 6);
    cr_expect(memcmp(buf, " world", 6) == 0);
    cr_expect_eq(slm_token_to_bytes(v, 0xC3, buf, sizeof buf), 1);
    cr_expect_eq((unsigned char)buf[0], 0xC3);
    slm_vocab_free(v);
}

/* ---- detokenizer ----------------------------------------------------------------- */

Test(tokenizer, detok_drops_spm_leading_space) {
    slm_vocab *v = load_spm();
    slm_detok *d = NULL;
    char buf[64];
    cr_assert_eq(slm_detok_new(v, &d), 0);
    cr_expect_eq(slm_detok_push(d, FT_SPM_BOS, buf, sizeof buf), 0);
    cr_expect_eq(slm_detok_push(d, FT_SPM__HELLO, buf, sizeof buf), 5);
    cr_expect_str_eq(buf, "hello");
    cr_expect_eq(slm_detok_push(d, FT_SPM__WORLD, buf, sizeof buf), 6);
    cr_expect_str_eq(buf, " world");
    slm_detok_free(d);
    /* a continuation keeps its space */
    cr_assert_eq(slm_detok_new(v, &d), 0);
    slm_detok_set_at_start(d, false);
    cr_expect_eq(slm_detok_push(d, FT_SPM__HELLO, buf, sizeof buf), 6);
    cr_expect_str_eq(buf, " hello");
    slm_detok_free(d);
    slm_vocab_free(v);
}

Test(tokenizer, detok_multibyte_across_tokens) {
    slm_vocab *v = load_spm();
    slm_detok *d = NULL;
    char buf[64];
    cr_assert_eq(slm_detok_new(v, &d), 0);
    cr_expect_eq(slm_detok_push(d, FT_SPM__H, buf, sizeof buf), 1);
    cr_expect_str_eq(buf, "h");
    cr_expect_eq(slm_detok_push(d, FT_SPM_BYTE0 + 0xC3, buf, sizeof buf), 0, "half of é waits");
    cr_expect_str_eq(buf, "");
    cr_expect_eq(slm_detok_push(d, FT_SPM_BYTE0 + 0xA9, buf, sizeof buf), 2);
    cr_expect_str_eq(buf, "\xc3\xa9");
    /* a 4-byte emoji in single bytes */
    static const unsigned char rocket[] = { 0xF0, 0x9F, 0x9A, 0x80 };
    for (int i = 0; i < 3; i++) cr_expect_eq(slm_detok_push(d, FT_SPM_BYTE0 + rocket[i], buf, sizeof buf), 0);
    cr_expect_eq(slm_detok_push(d, FT_SPM_BYTE0 + rocket[3], buf, sizeof buf), 4);
    cr_expect(memcmp(buf, rocket, 4) == 0);
    /* a lead byte followed by ASCII can never complete: U+FFFD, then the text */
    cr_expect_eq(slm_detok_push(d, FT_SPM_BYTE0 + 0xE2, buf, sizeof buf), 0);
    cr_expect_eq(slm_detok_push(d, FT_SPM_LLO, buf, sizeof buf), 6);
    cr_expect_str_eq(buf, "\xef\xbf\xbdllo");
    /* a stray continuation byte alone */
    cr_expect_eq(slm_detok_push(d, FT_SPM_BYTE0 + 0x80, buf, sizeof buf), 3);
    cr_expect_str_eq(buf, "\xef\xbf\xbd");
    /* incomplete at the end: flush gives U+FFFD */
    cr_expect_eq(slm_detok_push(d, FT_SPM_BYTE0 + 0xF0, buf, sizeof buf), 0);
    cr_expect_eq(slm_detok_flush(d, buf, sizeof buf), 3);
    cr_expect_str_eq(buf, "\xef\xbf\xbd");
    cr_expect_eq(slm_detok_flush(d, buf, sizeof buf), 0);
    slm_detok_free(d);
    slm_detok_free(NULL);
    slm_vocab_free(v);
}

Test(tokenizer, detok_small_buffer_keeps_characters_whole) {
    slm_vocab *v = load_bpe();
    int32_t ids[256];
    const char *s = "hello w\xc3\xb6rld \xe2\x82\xac\xe2\x82\xac!";
    int32_t n = tok(v, s, false, false, ids);
    size_t len;
    char *back = ft_detok(v, ids, n, 5, &len);     /* checks every chunk is valid UTF-8 */
    cr_expect_str_eq(back, s);
    free(back);
    slm_vocab_free(v);
}

/* ---- errors ------------------------------------------------------------------------ */

Test(tokenizer, invalid_utf8_is_einval_with_offset) {
    slm_vocab *v = load_bpe();
    slm_err err = { 0 };
    int32_t ids[16], n = -1;
    int rc = slm_tokenize(v, "ab\xff" "cd", 5, false, false, ids, 16, &n, &err);
    cr_expect_eq(rc, SLM_EINVAL);
    cr_expect(strstr(err.msg, "offset 2"), "message: %s", err.msg);
    rc = slm_tokenize(v, "abc\xe2\x82", 5, false, false, ids, 16, &n, &err);   /* truncated € */
    cr_expect_eq(rc, SLM_EINVAL);
    cr_expect(strstr(err.msg, "offset 3"), "message: %s", err.msg);
    rc = slm_tokenize(v, "\xed\xa0\x80", 3, false, false, ids, 16, &n, &err);   /* surrogate */
    cr_expect_eq(rc, SLM_EINVAL);
    rc = slm_tokenize(v, "\xc0\xaf", 2, false, false, ids, 16, &n, &err);       /* overlong */
    cr_expect_eq(rc, SLM_EINVAL);
    slm_vocab_free(v);
}

Test(tokenizer, small_output_is_erange_with_count) {
    slm_vocab *v = load_bpe();
    slm_err err = { 0 };
    int32_t ids[2], n = -1;
    int rc = slm_tokenize(v, "hello world hello", 17, false, false, ids, 2, &n, &err);
    cr_expect_eq(rc, SLM_ERANGE);
    cr_expect_eq(n, 4);   /* hello Ġworld Ġ hello */
    cr_expect_eq(ids[0], FT_BPE_HELLO);
    cr_expect_eq(ids[1], FT_BPE_GWORLD);
    rc = slm_tokenize(v, "hello", 5, false, false, NULL, 0, &n, &err);
    cr_expect_eq(rc, SLM_ERANGE);
    cr_expect_eq(n, 1);
    slm_vocab_free(v);
}

static int load_err(gb *b, slm_err *err) {
    slm_vocab *v = NULL;
    int rc = ft_load_bytes(b, &v, err);
    slm_vocab_free(v);
    gb_free(b);
    return rc;
}

Test(tokenizer, unknown_pre_tokenizer_is_unsupported) {
    gb b = { 0 };
    slm_err err = { 0 };
    ft_bpe_gguf(&b, "gpt2", "no-such-pre");
    cr_expect_eq(load_err(&b, &err), SLM_EUNSUPPORTED);
    cr_expect(strstr(err.msg, "no-such-pre"), "message: %s", err.msg);
}

Test(tokenizer, unknown_model_is_unsupported) {
    gb b = { 0 };
    slm_err err = { 0 };
    ft_bpe_gguf(&b, "t5", "gpt-2");
    cr_expect_eq(load_err(&b, &err), SLM_EUNSUPPORTED);
    cr_expect(strstr(err.msg, "t5"), "message: %s", err.msg);
}

Test(tokenizer, every_known_pre_tokenizer_compiles) {
    static const char *const pres[] = {
        "default", "gpt-2", "gpt-neox", "mpt", "llama-bpe", "llama3", "qwen2", "smollm", "deepseek-llm",
        "deepseek-coder", "deepseek-v3", "falcon", "starcoder", "refact", "command-r", "dbrx", "poro-chat",
        "viking", "gpt-4o", "tekken", "seed-coder", "bailingmoe", "stablelm2", "olmo", "phi-2",
    };
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        gb b = { 0 };
        slm_vocab *v = NULL;
        slm_err err = { 0 };
        ft_bpe_gguf(&b, "gpt2", pres[i]);
        int rc = ft_load_bytes(&b, &v, &err);
        gb_free(&b);
        cr_expect_eq(rc, 0, "pre '%s': %s", pres[i], err.msg);
        if (rc) continue;
        cr_expect_str_eq(slm_vocab_pre(v), pres[i]);
        /* every pre-tokenizer keeps all the bytes: the round trip is exact */
        static const char text[] = "Hello, y'all! 12345 \xe4\xbd\xa0\xe5\xa5\xbd  world\n\n\tx \xc3\xa9t\xc3\xa9  ";
        fuzz_tokenizer_check(v, (const uint8_t *)text, sizeof text - 1, true);
        slm_vocab_free(v);
    }
}

Test(tokenizer, missing_pre_means_default) {
    gb b = { 0 };
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    ft_bpe_gguf(&b, "gpt2", NULL);
    cr_assert_eq(ft_load_bytes(&b, &v, &err), 0, "%s", err.msg);
    gb_free(&b);
    cr_expect_str_eq(slm_vocab_pre(v), "default");
    slm_vocab_free(v);
}

/* Small hand-made GGUFs with one thing wrong each. */
static int load_kvs(void (*add)(gb *), int n_kv, slm_err *err) {
    gb b = { 0 };
    gb_hdr(&b, 3, 0, (uint64_t)n_kv + 1);
    ft_kv_str(&b, "tokenizer.ggml.model", "llama");
    add(&b);
    return load_err(&b, err);
}

static const char *const k_three[] = { "<unk>", "<s>", "</s>" };
static void kv_tokens3(gb *b) { ft_kv_strs(b, "tokenizer.ggml.tokens", k_three, NULL, 3); }
static void add_no_tokens(gb *b) { ft_kv_u32(b, "tokenizer.ggml.bos_token_id", 1); }
static void add_short_scores(gb *b) {
    kv_tokens3(b);
    gb_key(b, "tokenizer.ggml.scores", SLM_GGUF_ARR);
    gb_arr(b, SLM_GGUF_F32, 2);
    gb_f32(b, 0);
    gb_f32(b, 0);
}
static void add_bad_types(gb *b) {
    kv_tokens3(b);
    gb_key(b, "tokenizer.ggml.token_type", SLM_GGUF_ARR);
    gb_arr(b, SLM_GGUF_F32, 3);
    for (int i = 0; i < 3; i++) gb_f32(b, 1);
}
static void add_bos_out_of_range(gb *b) { kv_tokens3(b); ft_kv_u32(b, "tokenizer.ggml.bos_token_id", 7); }
static void add_tokens_not_array(gb *b) { ft_kv_str(b, "tokenizer.ggml.tokens", "x"); }
static void add_duplicate(gb *b) {
    static const char *const dup[] = { "<unk>", "a", "a" };
    ft_kv_strs(b, "tokenizer.ggml.tokens", dup, NULL, 3);
}
static void add_bool_wrong(gb *b) { kv_tokens3(b); ft_kv_u32(b, "tokenizer.ggml.add_bos_token", 1); }

Test(tokenizer, malformed_metadata_names_the_key) {
    slm_err err = { 0 };
    cr_expect_eq(load_kvs(add_no_tokens, 1, &err), SLM_ENOTFOUND);
    cr_expect(strstr(err.msg, "tokenizer.ggml.tokens"), "%s", err.msg);
    cr_expect_eq(load_kvs(add_short_scores, 2, &err), SLM_EFORMAT);
    cr_expect(strstr(err.msg, "tokenizer.ggml.scores"), "%s", err.msg);
    cr_expect_eq(load_kvs(add_bad_types, 2, &err), SLM_EFORMAT);
    cr_expect(strstr(err.msg, "tokenizer.ggml.token_type"), "%s", err.msg);
    cr_expect_eq(load_kvs(add_bos_out_of_range, 2, &err), SLM_EFORMAT);
    cr_expect(strstr(err.msg, "tokenizer.ggml.bos_token_id"), "%s", err.msg);
    cr_expect_eq(load_kvs(add_tokens_not_array, 1, &err), SLM_EFORMAT);
    cr_expect(strstr(err.msg, "tokenizer.ggml.tokens"), "%s", err.msg);
    cr_expect_eq(load_kvs(add_duplicate, 1, &err), SLM_EFORMAT);
    cr_expect(strstr(err.msg, "duplicate"), "%s", err.msg);
    cr_expect_eq(load_kvs(add_bool_wrong, 2, &err), SLM_EFORMAT);
    cr_expect(strstr(err.msg, "tokenizer.ggml.add_bos_token"), "%s", err.msg);
}

Test(tokenizer, merges_missing_or_malformed) {
    gb b = { 0 };
    slm_err err = { 0 };
    static const char *const toks[] = { "a", "b", "ab" };
    static const char *const merges[] = { "a b", "ab" };
    gb_hdr(&b, 3, 0, 3);
    ft_kv_str(&b, "tokenizer.ggml.model", "gpt2");
    ft_kv_strs(&b, "tokenizer.ggml.tokens", toks, NULL, 3);
    ft_kv_strs(&b, "tokenizer.ggml.merges", merges, NULL, 2);
    cr_expect_eq(load_err(&b, &err), SLM_EFORMAT);
    cr_expect(strstr(err.msg, "tokenizer.ggml.merges[1]"), "%s", err.msg);
    gb_hdr(&b, 3, 0, 2);
    ft_kv_str(&b, "tokenizer.ggml.model", "gpt2");
    ft_kv_strs(&b, "tokenizer.ggml.tokens", toks, NULL, 3);
    cr_expect_eq(load_err(&b, &err), SLM_ENOTFOUND);
    cr_expect(strstr(err.msg, "tokenizer.ggml.merges"), "%s", err.msg);
}

Test(tokenizer, hf_errors) {
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    cr_expect_eq(slm_vocab_load_hf("/nonexistent/tokenizer.json", &v, &err), SLM_EIO);
    cr_expect(v == NULL);
    const char *p = th_tmp("bad-tokenizer.json");
    th_write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": ", 35);
    cr_expect_eq(slm_vocab_load_hf(p, &v, &err), SLM_EFORMAT, "%s", err.msg);
    const char *spm = "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}";
    th_write_file(p, spm, strlen(spm));
    cr_expect_eq(slm_vocab_load_hf(p, &v, &err), SLM_EUNSUPPORTED, "%s", err.msg);
    const char *ok =
        "{\"added_tokens\": [{\"id\": 4, \"content\": \"<|end|>\", \"special\": true}],"
        " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
        " \"merges\": [[\"a\", \"b\"]]}}";
    th_write_file(p, ok, strlen(ok));
    cr_assert_eq(slm_vocab_load_hf(p, &v, &err), 0, "%s", err.msg);
    cr_expect_eq(slm_vocab_n_tokens(v), 5);
    cr_expect_str_eq(slm_vocab_token_text(v, 3, NULL), "[PAD3]");
    cr_expect(slm_vocab_is_eog(v, 4));
    EXPECT(v, "ab<|end|>", false, true, 2, 4);
    slm_vocab_free(v);
}

/* ---- memory ------------------------------------------------------------------------- */

/* Every allocation may fail: loading and tokenizing must say SLM_ENOMEM and
 * give back everything they took. */
static void oom_sweep(void (*make)(gb *), const char *text) {
    gb b = { 0 };
    make(&b);
    size_t mem0 = slm_mem_used();
    int n_fail = 0;
    for (long k = 1; k < 100000; k++) {
        slm_vocab *v = NULL;
        slm_err err = { 0 };
        slm_alloc_fail_after(k);
        int rc = ft_load_bytes(&b, &v, &err);
        int32_t ids[64], n = 0;
        if (rc == 0) rc = slm_tokenize(v, text, strlen(text), true, true, ids, 64, &n, &err);
        slm_alloc_fail_after(0);
        slm_vocab_free(v);
        cr_assert_eq(slm_mem_used(), mem0, "leak after failing allocation %ld", k);
        if (rc == 0) break;
        cr_assert_eq(rc, SLM_ENOMEM, "allocation %ld: rc %d (%s)", k, rc, err.msg);
        n_fail++;
    }
    cr_expect_gt(n_fail, 5);
    gb_free(&b);
}

static void make_bpe(gb *b) { ft_bpe_gguf(b, "gpt2", "llama-bpe"); }

Test(tokenizer, out_of_memory_spm) { oom_sweep(ft_spm_gguf, "<|im_start|>hello w\xc3\xb6rld"); }
Test(tokenizer, out_of_memory_bpe) { oom_sweep(make_bpe, "<|endoftext|>hello w\xc3\xb6rld 123"); }

Test(tokenizer, no_leaks) {
    size_t mem0 = slm_mem_used();
    slm_vocab *v = load_bpe();
    int32_t ids[256];
    tok(v, "hello world <tag>", true, true, ids);
    slm_detok *d = NULL;
    slm_detok_new(v, &d);
    char buf[8];
    slm_detok_push(d, ids[0], buf, sizeof buf);
    slm_detok_free(d);
    slm_vocab_free(v);
    slm_vocab_free(NULL);
    cr_expect_eq(slm_mem_used(), mem0);
}

/* ---- fuzz corpus replay --------------------------------------------------------------- */

#define CORPUS_DIR "fuzz/corpus/tokenizer"

Test(tokenizer, fuzz_corpus_replay) {
    DIR *dir = opendir(CORPUS_DIR);
    if (!dir) {
        cr_skip_test(CORPUS_DIR " not found (run from the repository root): skipped");
        return;
    }
    slm_vocab *spm = load_spm(), *bpe = load_bpe();
    int n_files = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, e->d_name);
        size_t len;
        char *buf = th_read_file(path, &len);
        if (!buf) continue;
        fuzz_tokenizer_check(spm, (const uint8_t *)buf, len, false);   /* aborts on a broken promise */
        fuzz_tokenizer_check(bpe, (const uint8_t *)buf, len, true);
        free(buf);
        n_files++;
    }
    closedir(dir);
    cr_expect_geq(n_files, 8, "only %d corpus files", n_files);
    slm_vocab_free(spm);
    slm_vocab_free(bpe);
}
