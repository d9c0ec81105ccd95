/*
 * bpe.c — byte-level BPE (GPT-2 style) tokenization of one text fragment, as
 * llama.cpp's llm_tokenizer_bpe_session does it.
 *
 * The fragment is split into words by the pre-tokenizer (pretok.c). Each
 * word's bytes are written in GPT-2's byte alphabet (bytes_to_unicode), so
 * every byte is one symbol. If the vocabulary ignores merges (llama3) and the
 * whole word is a token, that token is the answer. Otherwise adjacent
 * symbol pairs that have a merge rank go into a priority queue (lowest rank
 * first, leftmost on ties); popping a pair still current merges it and
 * queues the new neighbours. Each final symbol is its token; a symbol that
 * is not one (malformed vocabularies) falls back to its single bytes where
 * those are tokens, as llama.cpp does.
 *
 * Merges never cross word boundaries, so the cost is O(w log w) per word.
 */
#include "tokenizer/tok_internal.h"

#include "util/err.h"

static int try_add(const slm_vocab *v, tok_work *w, const char *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return 0;
    const tok_sym *l = &w->syms[left], *r = &w->syms[right];
    int32_t rank = tok_merge_rank(v, s + l->start, l->n, s + r->start, r->n);
    if (rank < 0) return 0;
    tok_bigram b = { (double)rank, left, right, l->n + r->n };
    return tok_heap_push(w, b);
}

static void emit_symbol(const slm_vocab *v, const char *s, const tok_sym *sym, tok_out *out) {
    int32_t id = tok_vocab_find(v, s + sym->start, sym->n);
    if (id >= 0) {
        tok_out_push(out, id);
        return;
    }
    for (uint32_t j = 0; j < sym->n; j++) {
        int32_t b = tok_vocab_find(v, s + sym->start + j, 1);
        if (b >= 0) tok_out_push(out, b);
    }
}

/* Merges one byte-encoded word s[0..n) and emits its tokens. */
static int merge_word(const slm_vocab *v, tok_work *w, const char *s, size_t n, tok_out *out) {
    if (v->ignore_merges) {
        int32_t id = tok_vocab_find(v, s, n);
        if (id >= 0) {
            tok_out_push(out, id);
            return 0;
        }
    }
    if (tok_syms_init(w, s, n)) return SLM_ENOMEM;
    for (size_t i = 1; i < w->n_syms; i++)
        if (try_add(v, w, s, (int32_t)i - 1, (int32_t)i)) return SLM_ENOMEM;
    while (w->n_heap > 0) {
        tok_bigram b = tok_heap_pop(w);
        tok_sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;   /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->syms[r->next].prev = b.left;
        if (try_add(v, w, s, l->prev, b.left) || try_add(v, w, s, b.left, l->next)) return SLM_ENOMEM;
    }
    for (int32_t i = 0; i != -1; i = w->syms[i].next) emit_symbol(v, s, &w->syms[i], out);
    return 0;
}

int tok_bpe_fragment(const slm_vocab *v, tok_work *w, const char *text, size_t len,
                     tok_out *out, slm_err *err) {
    int rc = tok_pretok_split(v, w, text, len, err);
    if (rc) return rc;
    for (size_t k = 0; k < w->spans.n; k++) {
        size_t s = w->spans.se[2 * k], e = w->spans.se[2 * k + 1];
        if (e <= s) continue;
        if (e - s > UINT32_MAX / 2) return slm_err_set(err, SLM_ERANGE, "pre-tokenized word too long");
        w->buf.len = 0;
        if (tok_buf_reserve(&w->buf, 2 * (e - s))) goto oom;
        for (size_t i = s; i < e; i++) {
            unsigned char b = (unsigned char)text[i];
            w->buf.p[w->buf.len++] = v->byte_enc[b][0];
            if (v->byte_enc_len[b] > 1) w->buf.p[w->buf.len++] = v->byte_enc[b][1];
        }
        if (merge_word(v, w, w->buf.p, w->buf.len, out)) goto oom;
    }
    return 0;
oom:
    return slm_err_set(err, SLM_ENOMEM, "out of memory tokenizing");
}
