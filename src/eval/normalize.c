/*
 * normalize.c — text normalisation for scoring; see normalize.h for the
 * steps and the characters each one touches. The input is copied once,
 * case-folded in place (every fold handled keeps the UTF-8 length), then one
 * pass drops punctuation and collapses white space, and an optional word
 * pass drops articles. Nothing here allocates besides the result.
 */
#include "eval/normalize.h"

#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

static const char *const k_steps[] = { "case", "whitespace", "punctuation", "articles", NULL };
static const unsigned k_step_bits[] = { SLM_NORM_CASE, SLM_NORM_WHITESPACE, SLM_NORM_PUNCT,
                                        SLM_NORM_ARTICLES };

const char *const *slm_eval_norm_names(void) { return k_steps; }

static int step_bit(const char *name, unsigned *bit) {
    for (int i = 0; k_steps[i]; i++)
        if (strcmp(k_steps[i], name) == 0) { *bit = k_step_bits[i]; return 0; }
    if (strcmp(name, "punct") == 0) { *bit = SLM_NORM_PUNCT; return 0; }
    if (strcmp(name, "lower") == 0 || strcmp(name, "lowercase") == 0) { *bit = SLM_NORM_CASE; return 0; }
    return SLM_EINVAL;
}

int slm_eval_norm_parse(const cJSON *opt, unsigned *flags, slm_err *err) {
    *flags = 0;
    if (!opt || cJSON_IsNull(opt) || cJSON_IsFalse(opt)) return 0;
    if (cJSON_IsTrue(opt)) {
        *flags = SLM_NORM_CASE | SLM_NORM_WHITESPACE | SLM_NORM_PUNCT | SLM_NORM_ARTICLES;
        return 0;
    }
    if (cJSON_IsString(opt)) {
        unsigned bit;
        if (step_bit(opt->valuestring, &bit))
            return slm_err_set(err, SLM_EINVAL, "normalize: unknown step '%s' (known: case, whitespace, "
                               "punctuation, articles)", opt->valuestring);
        *flags = bit;
        return 0;
    }
    if (!cJSON_IsArray(opt))
        return slm_err_set(err, SLM_EINVAL, "normalize: expected a step name or an array of them");
    const cJSON *it;
    cJSON_ArrayForEach(it, opt) {
        unsigned bit;
        if (!cJSON_IsString(it))
            return slm_err_set(err, SLM_EINVAL, "normalize: array entries must be step names");
        if (step_bit(it->valuestring, &bit))
            return slm_err_set(err, SLM_EINVAL, "normalize: unknown step '%s' (known: case, whitespace, "
                               "punctuation, articles)", it->valuestring);
        *flags |= bit;
    }
    return 0;
}

/* Decodes one UTF-8 code point of s[0..n); returns its length, 1 with
 * *cp = -1 for an invalid byte. Overlong forms and surrogates count as invalid. */
static size_t utf8_dec(const unsigned char *s, size_t n, long *cp) {
    unsigned c = s[0];
    *cp = -1;
    if (c < 0x80) { *cp = c; return 1; }
    size_t k;
    long v;
    if (c >= 0xC2 && c <= 0xDF) { k = 2; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 3; v = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 4; v = c & 0x07; }
    else return 1;
    if (k > n) return 1;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((k == 3 && v < 0x800) || (k == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF))
        return 1;
    *cp = v;
    return k;
}

/* Simple lower case of a two-byte code point (0x80..0x7FF), or cp itself. */
static long lower2(long cp) {
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;             /* Latin-1      */
    if (cp >= 0x100 && cp <= 0x137 && cp != 0x130 && cp != 0x131) return cp | 1; /* Ext-A pairs  */
    if (cp >= 0x139 && cp <= 0x148 && (cp & 1)) return cp + 1;
    if (cp >= 0x14A && cp <= 0x177) return cp | 1;
    if (cp == 0x178) return 0xFF;                                               /* Ÿ -> ÿ       */
    if (cp >= 0x179 && cp <= 0x17E && (cp & 1)) return cp + 1;
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 0x20;           /* Greek        */
    if (cp == 0x386) return 0x3AC;
    if (cp >= 0x388 && cp <= 0x38A) return cp + 0x25;
    if (cp == 0x38C) return 0x3CC;
    if (cp == 0x38E || cp == 0x38F) return cp + 0x3F;
    if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;                          /* Cyrillic     */
    if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
    return cp;
}

size_t slm_eval_fold_char(unsigned char *p, size_t n) {
    if (p[0] < 0x80) {
        if (p[0] >= 'A' && p[0] <= 'Z') p[0] = (unsigned char)(p[0] + 32);
        return 1;
    }
    long cp;
    size_t k = utf8_dec(p, n, &cp);
    if (k == 2) {
        long lc = lower2(cp);
        p[0] = (unsigned char)(0xC0 | (lc >> 6));
        p[1] = (unsigned char)(0x80 | (lc & 0x3F));
    }
    return k;
}

static bool is_ascii_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Length of the white-space character at s (0 when none). */
static size_t space_len(const unsigned char *s, size_t n) {
    if (is_ascii_space(s[0])) return 1;
    if (n >= 2 && s[0] == 0xC2 && s[1] == 0xA0) return 2;   /* U+00A0 */
    return 0;
}

static bool is_punct_cp(long cp) {
    if (cp < 0x80)
        return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
               (cp >= 0x7B && cp <= 0x7E);
    switch (cp) {
    case 0xA1: case 0xAB: case 0xB7: case 0xBB: case 0xBF:      /* ¡ « · » ¿        */
    case 0x2026: case 0x2022:                                   /* … •              */
    case 0x3001: case 0x3002: case 0xFF0C: case 0xFF01: case 0xFF1F: case 0xFF1A: case 0xFF1B:
        return true;
    default:
        return cp >= 0x2010 && cp <= 0x201F;                    /* dashes, quotes   */
    }
}

static bool is_article(const char *w, size_t n) {
    char b[4];
    if (n == 0 || n > 3) return false;
    for (size_t i = 0; i < n; i++) b[i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + 32 : w[i]);
    b[n] = 0;
    return strcmp(b, "a") == 0 || strcmp(b, "an") == 0 || strcmp(b, "the") == 0;
}

char *slm_eval_normalize(const char *s, size_t len, unsigned flags) {
    if (!s) len = 0;
    char *buf = slm_malloc(len + 1);
    if (!buf) return NULL;
    if (len) memcpy(buf, s, len);
    buf[len] = 0;
    unsigned char *u = (unsigned char *)buf;
    if (flags & SLM_NORM_CASE)
        for (size_t i = 0; i < len;) i += slm_eval_fold_char(u + i, len - i);

    /* Punctuation and white space, in place (the output never grows). */
    bool collapse = flags & (SLM_NORM_WHITESPACE | SLM_NORM_ARTICLES);
    size_t o = 0;
    bool pending_space = false;
    for (size_t i = 0; i < len;) {
        size_t sl = space_len(u + i, len - i);
        if (sl && collapse) { pending_space = true; i += sl; continue; }
        long cp;
        size_t k = utf8_dec(u + i, len - i, &cp);
        if ((flags & SLM_NORM_PUNCT) && cp >= 0 && is_punct_cp(cp)) { i += k; continue; }
        if (pending_space && o > 0) u[o++] = ' ';
        pending_space = false;
        memmove(u + o, u + i, k);
        o += k;
        i += k;
    }
    len = o;
    buf[len] = 0;

    if (flags & SLM_NORM_ARTICLES) {     /* words are single-space separated here */
        size_t w = 0;
        for (size_t i = 0; i < len;) {
            size_t j = i;
            while (j < len && u[j] != ' ') j++;
            if (!is_article(buf + i, j - i)) {
                if (w > 0) u[w++] = ' ';
                memmove(u + w, u + i, j - i);
                w += j - i;
            }
            i = j < len ? j + 1 : j;
        }
        len = w;
        buf[len] = 0;
    }

    /* Trim. */
    size_t a = 0, b = len;
    for (size_t sl; a < b && (sl = space_len(u + a, b - a)) > 0;) a += sl;
    while (b > a) {
        if (is_ascii_space(u[b - 1])) b--;
        else if (b - a >= 2 && u[b - 2] == 0xC2 && u[b - 1] == 0xA0) b -= 2;
        else break;
    }
    if (a) memmove(buf, buf + a, b - a);
    buf[b - a] = 0;
    return buf;
}

char *slm_eval_word_tokens(const char *s, size_t **starts, size_t *n) {
    *starts = NULL;
    *n = 0;
    size_t len = s ? strlen(s) : 0;
    char *buf = slm_malloc(len + 1);
    size_t *st = slm_malloc((len / 2 + 1) * sizeof *st);   /* tokens are separated: <= len/2+1 */
    if (!buf || !st) { slm_free(buf); slm_free(st); return NULL; }
    if (len) memcpy(buf, s, len);
    buf[len] = 0;
    unsigned char *u = (unsigned char *)buf;
    size_t cnt = 0;
    bool in_tok = false;
    for (size_t i = 0; i < len;) {
        long cp;
        size_t k = slm_eval_fold_char(u + i, len - i);
        utf8_dec(u + i, len - i, &cp);
        bool word = cp >= 0 && (cp < 0x80 ? slm_eval_is_word_byte((unsigned char)cp)
                                          : !is_punct_cp(cp) && cp != 0xA0);
        if (word && !in_tok) st[cnt++] = i;
        if (!word) memset(u + i, 0, k);
        in_tok = word;
        i += k;
    }
    *starts = st;
    *n = cnt;
    return buf;
}
