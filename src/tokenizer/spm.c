/*
 * spm.c — SentencePiece (BPE-by-score) tokenization of one text fragment, as
 * llama.cpp's llm_tokenizer_spm_session does it.
 *
 * The fragment gets a leading space when asked (the first fragment, and
 * each one after a special token), spaces become U+2581 "▁", and the text
 * is cut into UTF-8 characters linked in a chain. Every adjacent pair whose
 * concatenation is a vocabulary token goes into a priority queue keyed by
 * that token's score (highest first, leftmost on ties); popping a pair that
 * is still current merges the right symbol into the left one and queues the
 * new pairs on both sides. Finally each symbol is its token, or — when a
 * single character is not in the vocabulary — one byte-fallback token
 * <0xXX> per byte (the unknown token when there is none).
 *
 * Cost: O(n log n) in the fragment's characters.
 */
#include "tokenizer/tok_internal.h"

#include "util/err.h"

static int try_add(const slm_vocab *v, tok_work *w, const char *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return 0;
    const tok_sym *l = &w->syms[left], *r = &w->syms[right];
    size_t n = (size_t)l->n + r->n;
    int32_t id = tok_vocab_find(v, s + l->start, n);
    if (id < 0) return 0;
    tok_bigram b = { -(double)v->score[id], left, right, (uint32_t)n };
    return tok_heap_push(w, b);
}

static void emit_symbol(const slm_vocab *v, const char *s, const tok_sym *sym, tok_out *out) {
    int32_t id = tok_vocab_find(v, s + sym->start, sym->n);
    if (id >= 0) {
        tok_out_push(out, id);
        return;
    }
    /* an unmerged symbol is one character: its bytes, or one unknown token
     * when the vocabulary has no byte fallback for them */
    bool bytes = true;
    for (uint32_t j = 0; j < sym->n && bytes; j++) bytes = v->byte_tok[(unsigned char)s[sym->start + j]] >= 0;
    if (!bytes) {
        if (v->unk >= 0) tok_out_push(out, v->unk);
        return;
    }
    for (uint32_t j = 0; j < sym->n; j++) tok_out_push(out, v->byte_tok[(unsigned char)s[sym->start + j]]);
}

int tok_spm_fragment(const slm_vocab *v, tok_work *w, const char *text, size_t len,
                     bool add_prefix, tok_out *out, slm_err *err) {
    static const char esc[3] = { '\xe2', '\x96', '\x81' };   /* U+2581 */
    w->buf.len = 0;
    if (len > (SIZE_MAX - 3) / 3 || tok_buf_reserve(&w->buf, 3 * len + 3)) goto oom;
    if (add_prefix) tok_buf_put(&w->buf, esc, 3);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') tok_buf_put(&w->buf, esc, 3);
        else w->buf.p[w->buf.len++] = text[i];
    }
    const char *s = w->buf.p;
    size_t n = w->buf.len;
    if (n == 0) return 0;
    if (n > UINT32_MAX) return slm_err_set(err, SLM_ERANGE, "text fragment too long");

    if (tok_syms_init(w, s, n)) goto oom;
    for (size_t i = 1; i < w->n_syms; i++)
        if (try_add(v, w, s, (int32_t)i - 1, (int32_t)i)) goto oom;

    while (w->n_heap > 0) {
        tok_bigram b = tok_heap_pop(w);
        tok_sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || (size_t)l->n + r->n != b.size) continue;   /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->syms[r->next].prev = b.left;
        if (try_add(v, w, s, l->prev, b.left) || try_add(v, w, s, b.left, l->next)) goto oom;
    }

    for (int32_t i = 0; i != -1; i = w->syms[i].next) emit_symbol(v, s, &w->syms[i], out);
    return 0;
oom:
    return slm_err_set(err, SLM_ENOMEM, "out of memory tokenizing");
}
