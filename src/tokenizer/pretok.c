/*
 * pretok.c — byte-level BPE pre-tokenizers: splitting a text fragment into
 * words before merges, with the regexes llama.cpp uses per
 * tokenizer.ggml.pre (src/llama-vocab.cpp, regex_exprs).
 *
 * The regexes are applied one after the other, as llama.cpp's
 * unicode_regex_split does: each regex runs over each current word on its
 * own (lookaheads do not see past the word), and both the matches and the
 * text between them become the next words. They run under PCRE2 with
 * PCRE2_UTF | PCRE2_UCP, so \p{L}, \p{N}, \p{P} are Unicode classes, and
 * PCRE2_DOLLAR_ENDONLY, so '$' means end of word as in std::regex.
 *
 * \s and \S are rewritten before compiling into explicit classes holding
 * exactly Unicode's White_Space set (what llama.cpp's unicode tables call
 * whitespace, U+0085 included), so the split does not depend on the PCRE2
 * version. The case-insensitive contractions (?i:'s|'t…) are written as
 * '[sS]|'[tT]… as llama.cpp adapted them (no Unicode case folding).
 *
 * PCRE2's memory goes through slm_malloc via a general context. Compiled
 * patterns are read-only and shared; match data is per call (tok_work).
 */
#include "tokenizer/tok_internal.h"

#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

/* ---- the regexes (llama.cpp's text) --------------------------------------- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_CONTRACT "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3 RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2  RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CJK "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

static const char *const re_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL };
static const char *const re_gpt2[] = { RE_GPT2, NULL };
static const char *const re_llama3[] = { RE_LLAMA3, NULL };
static const char *const re_qwen2[] = { RE_QWEN2, NULL };
static const char *const re_starcoder[] = { "\\p{N}", RE_GPT2, NULL };
static const char *const re_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]", NULL };
static const char *const re_deepseek_llm[] = {
    "[\\r\\n]",
    "\\s?[\\x{41}-\\x{5A}\\x{61}-\\x{7A}\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}"
    "\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}"
    "\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}"
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"
    "\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}"
    "\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}"
    "\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}"
    "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}"
    "\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}"
    "\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
    "\\s+$",
    RE_CJK,
    "\\p{N}+",
    NULL };
static const char *const re_deepseek_coder[] = {
    "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}", NULL };
static const char *const re_deepseek_v3[] = {
    "\\p{N}{1,3}",
    "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL };
static const char *const re_bloom[] = {
    " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+", NULL };
static const char *const re_viking[] = {
    " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+", "\\p{N}", NULL };
static const char *const re_gpt4o[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" RE_CONTRACT "?"
    "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" RE_CONTRACT "?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL };
static const char *const re_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
    "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL };
static const char *const re_seed_coder[] = {
    RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL };
static const char *const re_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL };

#define NAMES(...) (const char *const[]){ __VA_ARGS__, NULL }

static const tok_pretok_def k_pretoks[] = {
    { NAMES("default"), re_default, false, false },
    { NAMES("gpt-2", "gpt2", "gpt-neox", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de",
            "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "gigachat",
            "exaone4", "trillion", "granite-docling", "a.x-4.0", "mellum", "modern-bert"),
      re_gpt2, false, false },
    { NAMES("llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"),
      re_llama3, true, true },
    { NAMES("dbrx", "smaug-bpe", "chatglm-bpe", "glm4"), re_llama3, false, false },
    { NAMES("qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "kormo"), re_qwen2, false, false },
    { NAMES("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"),
      re_starcoder, false, false },
    { NAMES("falcon"), re_falcon, false, false },
    { NAMES("deepseek-llm"), re_deepseek_llm, false, false },
    { NAMES("deepseek-coder"), re_deepseek_coder, false, false },
    { NAMES("deepseek-v3", "hunyuan-dense"), re_deepseek_v3, false, false },
    { NAMES("poro-chat", "bloom", "gpt3-finnish"), re_bloom, false, false },
    { NAMES("viking"), re_viking, false, false },
    { NAMES("gpt-4o", "llama4", "minimax-m2"), re_gpt4o, false, false },
    { NAMES("tekken"), re_tekken, true, true },
    { NAMES("seed-coder"), re_seed_coder, false, false },
    { NAMES("bailingmoe", "bailingmoe2", "llada-moe"), re_bailingmoe, false, false },
};

const tok_pretok_def *tok_pretok_find(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof k_pretoks / sizeof k_pretoks[0]; i++)
        for (const char *const *n = k_pretoks[i].names; *n; n++)
            if (strlen(*n) == len && memcmp(*n, name, len) == 0) return &k_pretoks[i];
    return NULL;
}

/* Hugging Face Split patterns (tokenizer.json text) → pre-tokenizer name. */
static const struct { const char *pattern; const char *name; } k_hf_patterns[] = {
    { "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
      "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "llama-bpe" },
    { "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
      "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "qwen2" },
    { "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", "gpt-2" },
    { RE_GPT2, "gpt-2" },
};

const char *tok_pretok_from_hf_regex(const char *pattern) {
    for (size_t i = 0; i < sizeof k_hf_patterns / sizeof k_hf_patterns[0]; i++)
        if (strcmp(k_hf_patterns[i].pattern, pattern) == 0) return k_hf_patterns[i].name;
    return NULL;
}

/* ---- compiling ------------------------------------------------------------ */

/* Unicode White_Space, the set llama.cpp's tables call whitespace. */
#define WS_SET "\\x{09}-\\x{0D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
               "\\x{202F}\\x{205F}\\x{3000}"

/* Rewrites \s and \S into explicit White_Space classes. */
static int rewrite_ws(const char *re, tok_buf *out) {
    bool in_class = false;
    int rc = 0;
    for (size_t i = 0; re[i] && !rc; i++) {
        char c = re[i];
        if (c == '\\' && re[i + 1]) {
            char e = re[++i];
            if (e == 's') rc = tok_buf_put(out, in_class ? WS_SET : "[" WS_SET "]",
                                           strlen(in_class ? WS_SET : "[" WS_SET "]"));
            else if (e == 'S' && !in_class) rc = tok_buf_put(out, "[^" WS_SET "]", strlen("[^" WS_SET "]"));
            else { char pair[2] = { c, e }; rc = tok_buf_put(out, pair, 2); }
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            rc = tok_buf_put(out, &c, 1);
            if (!rc && re[i + 1] == '^') { i++; rc = tok_buf_put(out, "^", 1); }
            if (!rc && re[i + 1] == ']') { i++; rc = tok_buf_put(out, "]", 1); }  /* literal ] */
            continue;
        }
        if (c == ']' && in_class) in_class = false;
        rc = tok_buf_put(out, &c, 1);
    }
    if (!rc) rc = tok_buf_put(out, "", 1);
    return rc;
}

static void *pcre_alloc(size_t n, void *data) { (void)data; return slm_malloc(n); }
static void  pcre_dealloc(void *p, void *data) { (void)data; slm_free(p); }

int tok_pretok_compile(slm_vocab *v, slm_err *err) {
    tok_pretok_free(v);
    if (!v->pre_def) return slm_err_set(err, SLM_EUNSUPPORTED, "no pre-tokenizer set");
    v->pcre_gctx = pcre2_general_context_create(pcre_alloc, pcre_dealloc, NULL);
    if (!v->pcre_gctx) return slm_err_set(err, SLM_ENOMEM, "out of memory creating the PCRE2 context");
    pcre2_compile_context *cctx = pcre2_compile_context_create(v->pcre_gctx);
    if (!cctx) return slm_err_set(err, SLM_ENOMEM, "out of memory creating the PCRE2 context");
    tok_buf pat = { 0 };
    int rc = 0;
    for (int i = 0; v->pre_def->regexes[i]; i++) {
        if (i >= TOK_MAX_REGEX) { rc = slm_err_set(err, SLM_EUNSUPPORTED, "too many regexes"); break; }
        pat.len = 0;
        if (rewrite_ws(v->pre_def->regexes[i], &pat)) { rc = slm_err_set(err, SLM_ENOMEM, "out of memory"); break; }
        int ecode;
        PCRE2_SIZE eoff;
        v->re[i] = pcre2_compile((PCRE2_SPTR)pat.p, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ecode, &eoff, cctx);
        if (!v->re[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            rc = slm_err_set(err, ecode == PCRE2_ERROR_HEAP_FAILED ? SLM_ENOMEM : SLM_EUNSUPPORTED,
                             "pre-tokenizer '%s' regex %d: %s at offset %zu", v->pre, i, (char *)msg,
                             (size_t)eoff);
            break;
        }
        v->n_re = i + 1;
        pcre2_jit_compile(v->re[i], PCRE2_JIT_COMPLETE);   /* the interpreter is the fallback */
    }
    tok_buf_free(&pat);
    pcre2_compile_context_free(cctx);
    return rc;
}

void tok_pretok_free(slm_vocab *v) {
    for (int i = 0; i < TOK_MAX_REGEX; i++) {
        if (v->re[i]) pcre2_code_free(v->re[i]);
        v->re[i] = NULL;
    }
    v->n_re = 0;
    if (v->pcre_gctx) pcre2_general_context_free(v->pcre_gctx);
    v->pcre_gctx = NULL;
}

/* ---- splitting ------------------------------------------------------------ */

static int match_at(const pcre2_code *re, const char *subj, size_t len, size_t off,
                    pcre2_match_data *md) {
    int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, off, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)subj, len, off, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    return rc;
}

/* Appends to out the words of text[s, e) under one regex: matches and the
 * gaps between them. */
static int split_one(const pcre2_code *re, pcre2_match_data *md, const char *text, size_t s, size_t e,
                     tok_spans *out, slm_err *err) {
    const char *subj = text + s;
    size_t len = e - s, pos = 0, off = 0;
    while (off <= len) {
        int rc = match_at(re, subj, len, off, md);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return slm_err_set(err, rc == PCRE2_ERROR_NOMEMORY ? SLM_ENOMEM : SLM_EINVAL,
                               "pre-tokenizer regex failed: %s", (char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t m0 = ov[0], m1 = ov[1];
        if (m1 < m0 || m1 > len) break;                  /* \K tricks: not ours */
        if (m0 > pos && tok_spans_push(out, s + pos, s + m0)) goto oom;
        if (m1 > m0) {
            if (tok_spans_push(out, s + m0, s + m1)) goto oom;
            pos = off = m1;
        } else {                                         /* empty match: step one character */
            if (m0 >= len) break;
            pos = m0;
            off = m0 + tok_utf8_len((unsigned char)subj[m0]);
        }
    }
    if (pos < len && tok_spans_push(out, s + pos, e)) goto oom;
    return 0;
oom:
    return slm_err_set(err, SLM_ENOMEM, "out of memory pre-tokenizing");
}

int tok_pretok_split(const slm_vocab *v, tok_work *w, const char *text, size_t len, slm_err *err) {
    w->spans.n = 0;
    if (len == 0) return 0;
    if (tok_spans_push(&w->spans, 0, len)) return slm_err_set(err, SLM_ENOMEM, "out of memory pre-tokenizing");
    if (!w->md) {
        w->md = pcre2_match_data_create(1, v->pcre_gctx);
        if (!w->md) return slm_err_set(err, SLM_ENOMEM, "out of memory pre-tokenizing");
    }
    for (int r = 0; r < v->n_re; r++) {
        w->spans2.n = 0;
        for (size_t k = 0; k < w->spans.n; k++) {
            int rc = split_one(v->re[r], w->md, text, w->spans.se[2 * k], w->spans.se[2 * k + 1],
                               &w->spans2, err);
            if (rc) return rc;
        }
        tok_spans t = w->spans;
        w->spans = w->spans2;
        w->spans2 = t;
    }
    return 0;
}
