/*
 * special.c — slm_tokenize: validation, special-token splitting, and the
 * hand-off of each text fragment to SentencePiece or BPE.
 *
 * Splitting follows llama.cpp's tokenizer_st_partition: for every special
 * token, longest text first, every remaining raw-text fragment is cut at
 * each occurrence of the token's text, so a longer special token wins over
 * a shorter one inside it. CONTROL and UNKNOWN tokens are matched only when
 * parse_special is true; USER_DEFINED tokens always are (as Hugging Face
 * does for added tokens). A token flagged LSTRIP / RSTRIP swallows the ASCII
 * whitespace on that side.
 *
 * SentencePiece adds its leading space to the first fragment and to each
 * fragment that follows a special token (llama.cpp's is_prev_special).
 * The text is checked for valid UTF-8 first; the whole call allocates
 * only scratch space that is freed before it returns.
 */
#include "tokenizer/tok_internal.h"

#include <ctype.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

typedef struct frag {
    int32_t tok;     /* token id, or -1 for raw text   */
    size_t  off;     /* raw text: offset in the input  */
    size_t  len;     /* raw text: length               */
} frag;

typedef struct frag_list {
    frag  *f;
    size_t n, cap;
} frag_list;

static int frag_push(frag_list *l, int32_t tok, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 16;
        frag *nf = slm_realloc(l->f, ncap * sizeof *nf);
        if (!nf) return SLM_ENOMEM;
        l->f = nf;
        l->cap = ncap;
    }
    l->f[l->n++] = (frag){ tok, off, len };
    return 0;
}

static bool is_space(char c) { return isspace((unsigned char)c) != 0; }

/* Cuts one raw fragment [off, off+len) at every occurrence of token id. */
static int split_fragment(const slm_vocab *v, const char *text, size_t off, size_t len, int32_t id,
                          frag_list *out) {
    const char *t = tok_text(v, id);
    size_t tl = v->tok_len[id];
    size_t base = off, end = off + len;
    for (;;) {
        const char *m = end > base ? memmem(text + base, end - base, t, tl) : NULL;
        if (!m) {
            if (end > base && frag_push(out, -1, base, end - base)) return SLM_ENOMEM;
            return 0;
        }
        size_t mpos = (size_t)(m - text), left_end = mpos;
        if (v->flags[id] & TOKF_LSTRIP)
            while (left_end > base && is_space(text[left_end - 1])) left_end--;
        if (left_end > base && frag_push(out, -1, base, left_end - base)) return SLM_ENOMEM;
        if (frag_push(out, id, 0, 0)) return SLM_ENOMEM;
        base = mpos + tl;
        if (v->flags[id] & TOKF_RSTRIP)
            while (base < end && is_space(text[base])) base++;
    }
}

static int partition(const slm_vocab *v, const char *text, size_t len, bool parse_special,
                     frag_list *cur, frag_list *next) {
    if (len == 0) return 0;
    if (frag_push(cur, -1, 0, len)) return SLM_ENOMEM;
    for (int32_t k = 0; k < v->n_special; k++) {
        int32_t id = v->special[k];
        int type = v->type[id];
        if (!parse_special && (type == SLM_TOKTYPE_CONTROL || type == SLM_TOKTYPE_UNKNOWN)) continue;
        size_t tl = v->tok_len[id];
        if (tl > len || !memmem(text, len, tok_text(v, id), tl)) continue;   /* cheap reject */
        next->n = 0;
        for (size_t i = 0; i < cur->n; i++) {
            const frag *f = &cur->f[i];
            int rc = f->tok >= 0 ? frag_push(next, f->tok, 0, 0)
                                 : split_fragment(v, text, f->off, f->len, id, next);
            if (rc) return rc;
        }
        frag_list t = *cur;
        *cur = *next;
        *next = t;
    }
    return 0;
}

int slm_tokenize(const slm_vocab *v, const char *text, size_t len,
                 bool add_bos, bool parse_special,
                 int32_t *out, int32_t cap, int32_t *n_out, slm_err *err) {
    if (n_out) *n_out = 0;
    if (!v || !n_out || (!text && len) || cap < 0 || (cap > 0 && !out))
        return slm_err_set(err, SLM_EINVAL, "slm_tokenize: bad arguments");
    if (len > INT32_MAX)
        return slm_err_set(err, SLM_ERANGE, "text of %zu bytes is too long to tokenize", len);
    size_t bad;
    if (!tok_utf8_valid(text, len, &bad))
        return slm_err_set(err, SLM_EINVAL, "invalid UTF-8 at byte offset %zu (byte 0x%02x)", bad,
                           (unsigned)(unsigned char)text[bad]);

    frag_list cur = { 0 }, next = { 0 };
    tok_work w = { 0 };
    tok_out o = { out, cap, 0 };
    int rc = partition(v, text, len, parse_special, &cur, &next);
    if (rc) { rc = slm_err_set(err, rc, "out of memory splitting special tokens"); goto done; }

    if (add_bos && v->add_bos && v->bos >= 0) tok_out_push(&o, v->bos);
    bool prev_special = true;             /* SPM: space prefix on the first fragment */
    for (size_t i = 0; i < cur.n; i++) {
        const frag *f = &cur.f[i];
        if (f->tok >= 0) {
            tok_out_push(&o, f->tok);
            prev_special = true;
            continue;
        }
        if (v->kind == TOK_SPM)
            rc = tok_spm_fragment(v, &w, text + f->off, f->len, v->add_space_prefix && prev_special, &o, err);
        else
            rc = tok_bpe_fragment(v, &w, text + f->off, f->len, &o, err);
        if (rc) goto done;
        prev_special = false;
    }
    if (add_bos && v->add_eos && v->eos >= 0) tok_out_push(&o, v->eos);

    if (o.n > INT32_MAX) {
        rc = slm_err_set(err, SLM_ERANGE, "text gives more than INT32_MAX tokens");
        goto done;
    }
    *n_out = (int32_t)o.n;
    if (o.n > cap)
        rc = slm_err_set(err, SLM_ERANGE, "text needs %lld tokens, room for %d", (long long)o.n, cap);
done:
    slm_free(cur.f);
    slm_free(next.f);
    tok_work_free(&w);
    return rc;
}
