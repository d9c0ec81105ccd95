/*
 * detok.c — from token ids back to bytes.
 *
 * slm_token_to_bytes gives one token's raw bytes as llama.cpp's
 * token_to_piece does with special=false: control and unknown tokens are
 * empty; user-defined tokens are their text; SentencePiece pieces turn
 * U+2581 into spaces and <0xXX> byte tokens into that byte; byte-level BPE
 * tokens map each character back through GPT-2's bytes_to_unicode.
 *
 * The streaming detokenizer (slm_detok) never hands out invalid UTF-8:
 * token bytes go through a UTF-8 checker, a sequence still incomplete at
 * the end of a token waits (at most 3 bytes) for the next one, and a
 * sequence that can never complete becomes U+FFFD (one per maximal invalid
 * subpart, as the Unicode standard recommends). Checked text waits in a
 * queue until the caller's buffer has room; it is handed out in whole
 * characters. For SentencePiece vocabularies that add a space prefix, the
 * first piece of text (after BOS or other control tokens, which are empty)
 * loses one leading space, like Hugging Face's decoder and llama.cpp's
 * detokenize. No clean-up of spaces before punctuation is done.
 */
#include "tokenizer/tok_internal.h"

#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

/* Copies what fits of s[0..n) to buf at *pos; *pos counts everything. */
static void put(char *buf, size_t cap, size_t *pos, const char *s, size_t n) {
    if (*pos < cap) {
        size_t k = cap - *pos < n ? cap - *pos : n;
        memcpy(buf + *pos, s, k);
    }
    *pos += n;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* <0xXX> → the byte, or -1. */
static int byte_token_value(const char *t, size_t n) {
    if (n != 6 || memcmp(t, "<0x", 3) != 0 || t[5] != '>') return -1;
    int hi = hexval(t[3]), lo = hexval(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static void spm_unescape(const char *t, size_t n, char *buf, size_t cap, size_t *pos) {
    size_t i = 0;
    while (i < n) {
        if (i + 3 <= n && memcmp(t + i, "\xe2\x96\x81", 3) == 0) {
            put(buf, cap, pos, " ", 1);
            i += 3;
            continue;
        }
        size_t j = i + 1;                                  /* copy a run up to the next ▁ */
        while (j < n && !(j + 3 <= n && memcmp(t + j, "\xe2\x96\x81", 3) == 0)) j++;
        put(buf, cap, pos, t + i, j - i);
        i = j;
    }
}

static void bpe_decode(const slm_vocab *v, const char *t, size_t n, char *buf, size_t cap, size_t *pos) {
    size_t i = 0;
    while (i < n) {
        const unsigned char *p = (const unsigned char *)t + i;
        int k = tok_utf8_check(p, n - i);
        uint32_t cp = 0x7fffffff;
        if (k == 1) cp = p[0];
        else if (k == 2) cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        if (k <= 0) k = 1;
        if (cp < sizeof v->cp_to_byte / sizeof v->cp_to_byte[0] && v->cp_to_byte[cp] >= 0) {
            char b = (char)v->cp_to_byte[cp];
            put(buf, cap, pos, &b, 1);
        } else {
            put(buf, cap, pos, t + i, (size_t)k);          /* outside the byte alphabet: as is */
        }
        i += (size_t)k;
    }
}

/* Returns the byte count when it fits in cap; SLM_ERANGE when it does not
 * (what was written is then unspecified). buf NULL with cap 0 asks for the
 * size: the byte count is returned and nothing written. */
int slm_token_to_bytes(const slm_vocab *v, int32_t token, char *buf, size_t cap) {
    if (!v || token < 0 || token >= v->n_tokens || (!buf && cap)) return SLM_EINVAL;
    const char *t = tok_text(v, token);
    size_t n = v->tok_len[token], pos = 0;
    switch (v->type[token]) {
    case SLM_TOKTYPE_USER_DEFINED:
        put(buf, cap, &pos, t, n);
        break;
    case SLM_TOKTYPE_NORMAL:
        if (v->kind == TOK_SPM) spm_unescape(t, n, buf, cap, &pos);
        else bpe_decode(v, t, n, buf, cap, &pos);
        break;
    case SLM_TOKTYPE_BYTE: {
        int b = byte_token_value(t, n);
        if (b >= 0) { char c = (char)b; put(buf, cap, &pos, &c, 1); }
        else put(buf, cap, &pos, t, n);
        break;
    }
    default:                      /* control, unknown, unused, undefined: nothing */
        break;
    }
    if (pos > INT32_MAX || (buf && pos > cap)) return SLM_ERANGE;
    return (int)pos;
}

/* ---- streaming ------------------------------------------------------------ */

struct slm_detok {
    const slm_vocab *v;
    bool at_start;            /* no text yet: drop SentencePiece's leading space  */
    unsigned char pend[4];    /* an incomplete UTF-8 sequence waiting for bytes   */
    size_t n_pend;
    tok_buf queue;            /* checked text not yet handed out                  */
    size_t q_head;            /* bytes of queue already handed out                */
    tok_buf work;             /* pending bytes + the new token's bytes            */
};

int slm_detok_new(const slm_vocab *v, slm_detok **out) {
    if (!out) return SLM_EINVAL;
    *out = NULL;
    if (!v) return SLM_EINVAL;
    slm_detok *d = slm_calloc(1, sizeof *d);
    if (!d) return SLM_ENOMEM;
    d->v = v;
    d->at_start = true;
    *out = d;
    return 0;
}

void slm_detok_set_at_start(slm_detok *d, bool at_start) {
    if (d) d->at_start = at_start;
}

void slm_detok_free(slm_detok *d) {
    if (!d) return;
    tok_buf_free(&d->queue);
    tok_buf_free(&d->work);
    slm_free(d);
}

static const char k_replacement[3] = { '\xef', '\xbf', '\xbd' };   /* U+FFFD */

/* Checks s[0..n): complete sequences and U+FFFD go to the queue, an
 * incomplete tail to pend. */
static int feed(slm_detok *d, const unsigned char *s, size_t n) {
    size_t i = 0;
    if (tok_buf_reserve(&d->queue, n + 3)) return SLM_ENOMEM;
    while (i < n) {
        int k = tok_utf8_check(s + i, n - i);
        if (k > 0) {
            size_t run = (size_t)k;                       /* take a run of ASCII at once */
            while (i + run < n && s[i + run] < 0x80) run++;
            if (tok_buf_put(&d->queue, s + i, run)) return SLM_ENOMEM;
            i += run;
        } else if (k == 0) {
            memcpy(d->pend, s + i, n - i);
            d->n_pend = n - i;
            return 0;
        } else {
            if (tok_buf_put(&d->queue, k_replacement, 3)) return SLM_ENOMEM;
            i += (size_t)-k;
        }
    }
    d->n_pend = 0;
    return 0;
}

/* Hands out queued text in whole characters, NUL-terminated. */
static int drain(slm_detok *d, char *buf, size_t cap) {
    size_t avail = d->queue.len - d->q_head, n = 0;
    if (cap > 0) {
        n = avail < cap - 1 ? avail : cap - 1;
        if (n < avail)                                    /* do not split a character */
            while (n > 0 && ((unsigned char)d->queue.p[d->q_head + n] & 0xC0) == 0x80) n--;
        if (n) memcpy(buf, d->queue.p + d->q_head, n);
        buf[n] = 0;
    }
    d->q_head += n;
    if (d->q_head == d->queue.len) d->q_head = d->queue.len = 0;
    else if (d->q_head > 4096 && d->q_head > d->queue.len / 2) {
        memmove(d->queue.p, d->queue.p + d->q_head, d->queue.len - d->q_head);
        d->queue.len -= d->q_head;
        d->q_head = 0;
    }
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int slm_detok_push(slm_detok *d, int32_t token, char *buf, size_t cap) {
    if (!d || (!buf && cap)) return SLM_EINVAL;
    int len = slm_token_to_bytes(d->v, token, NULL, 0);
    if (len < 0) return len;
    d->work.len = 0;
    if (tok_buf_reserve(&d->work, d->n_pend + (size_t)len + 1)) return SLM_ENOMEM;
    memcpy(d->work.p, d->pend, d->n_pend);
    slm_token_to_bytes(d->v, token, d->work.p + d->n_pend, (size_t)len);
    const unsigned char *piece = (const unsigned char *)d->work.p + d->n_pend;
    size_t n = (size_t)len;
    if (d->at_start && n > 0) {
        d->at_start = false;
        if (d->v->kind == TOK_SPM && d->v->add_space_prefix && piece[0] == ' ') {
            memmove(d->work.p + d->n_pend, d->work.p + d->n_pend + 1, n - 1);
            n--;
        }
    }
    if (feed(d, (const unsigned char *)d->work.p, d->n_pend + n)) return SLM_ENOMEM;
    return drain(d, buf, cap);
}

int slm_detok_flush(slm_detok *d, char *buf, size_t cap) {
    if (!d || (!buf && cap)) return SLM_EINVAL;
    if (d->n_pend) {
        if (tok_buf_put(&d->queue, k_replacement, 3)) return SLM_ENOMEM;
        d->n_pend = 0;
    }
    return drain(d, buf, cap);
}
