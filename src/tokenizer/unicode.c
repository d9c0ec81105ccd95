/*
 * unicode.c — the little Unicode the tokenizer needs: UTF-8 validation (with
 * the offset of the first bad byte, for error messages), checking one
 * sequence at a time (the streaming detokenizer), encoding a code point, and
 * GPT-2's bytes_to_unicode table that byte-level BPE vocabularies are
 * written in (printable Latin-1 bytes map to themselves, the other 68 bytes
 * to U+0100…U+0143 in byte order).
 *
 * Validity follows RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF. Letter/number/whitespace classes are PCRE2's business (pretok.c).
 */
#include "tokenizer/tok_internal.h"

int tok_utf8_check(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)      need = 1;
    else if (c == 0xE0)              { need = 2; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) need = 2;
    else if (c == 0xED)              { need = 2; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) need = 2;
    else if (c == 0xF0)              { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4)              { need = 3; hi = 0x8F; }
    else return -1;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return 0;
        unsigned b = s[i];
        if (b < lo || b > hi) return -i;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

bool tok_utf8_valid(const char *s, size_t len, size_t *bad) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) { i++; continue; }
        int k = tok_utf8_check(p + i, len - i);
        if (k <= 0) {
            if (bad) *bad = i;
            return false;
        }
        i += (size_t)k;
    }
    return true;
}

int tok_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool gpt2_printable(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

void tok_byte_map_init(slm_vocab *v) {
    for (size_t i = 0; i < sizeof v->cp_to_byte / sizeof v->cp_to_byte[0]; i++) v->cp_to_byte[i] = -1;
    unsigned next = 256;
    for (unsigned b = 0; b < 256; b++) {
        unsigned cp = gpt2_printable(b) ? b : next++;
        char tmp[4];
        int n = tok_utf8_encode(cp, tmp);
        v->byte_enc[b][0] = tmp[0];
        v->byte_enc[b][1] = n > 1 ? tmp[1] : 0;
        v->byte_enc_len[b] = (uint8_t)n;
        v->cp_to_byte[cp] = (int16_t)b;
    }
}
