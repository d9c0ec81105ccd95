/*
 * work.c — the tokenizer's scratch space: growable byte buffers, the symbol
 * array of a word being merged, the bigram priority queue (a binary heap:
 * lowest key first, then leftmost, as llama.cpp's comparators order them)
 * and span lists. One tok_work lives for one slm_tokenize call and is reused
 * across fragments and words, so the steady state allocates nothing.
 */
#include "tokenizer/tok_internal.h"

#include <string.h>

#include "util/alloc.h"

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) return SLM_ENOMEM;
        ncap *= 2;
    }
    size_t bytes;
    if (!slm_mul_ok(ncap, elem, &bytes)) return SLM_ENOMEM;
    void *np = slm_realloc(*p, bytes);
    if (!np) return SLM_ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

int tok_buf_reserve(tok_buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len) return SLM_ENOMEM;
    return grow((void **)&b->p, &b->cap, b->len + extra, 1);
}

int tok_buf_put(tok_buf *b, const void *s, size_t n) {
    int rc = tok_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

void tok_buf_free(tok_buf *b) {
    slm_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int tok_syms_reserve(tok_work *w, size_t n) {
    return grow((void **)&w->syms, &w->cap_syms, n, sizeof *w->syms);
}

int tok_syms_init(tok_work *w, const char *s, size_t n) {
    w->n_syms = 0;
    w->n_heap = 0;
    if (tok_syms_reserve(w, n)) return SLM_ENOMEM;
    for (size_t off = 0; off < n;) {
        size_t cl = tok_utf8_len((unsigned char)s[off]);
        if (cl > n - off) cl = n - off;
        tok_sym *sym = &w->syms[w->n_syms];
        sym->start = (uint32_t)off;
        sym->n = (uint32_t)cl;
        sym->prev = (int32_t)w->n_syms - 1;
        off += cl;
        sym->next = off == n ? -1 : (int32_t)w->n_syms + 1;
        w->n_syms++;
    }
    return 0;
}

static bool before(const tok_bigram *a, const tok_bigram *b) {
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

int tok_heap_push(tok_work *w, tok_bigram b) {
    int rc = grow((void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof *w->heap);
    if (rc) return rc;
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&b, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = b;
    return 0;
}

tok_bigram tok_heap_pop(tok_work *w) {
    tok_bigram top = w->heap[0];
    tok_bigram last = w->heap[--w->n_heap];
    size_t n = w->n_heap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

int tok_spans_push(tok_spans *s, size_t start, size_t end) {
    int rc = grow((void **)&s->se, &s->cap, 2 * (s->n + 1), sizeof *s->se);
    if (rc) return rc;
    s->se[2 * s->n] = start;
    s->se[2 * s->n + 1] = end;
    s->n++;
    return 0;
}

void tok_work_free(tok_work *w) {
    tok_buf_free(&w->buf);
    slm_free(w->syms);
    slm_free(w->heap);
    slm_free(w->spans.se);
    slm_free(w->spans2.se);
    if (w->md) pcre2_match_data_free(w->md);
    memset(w, 0, sizeof *w);
}
