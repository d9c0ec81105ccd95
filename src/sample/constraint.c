/*
 * constraint.c — constrained decoding: which tokens the JSON recognizer
 * (json_grammar.c) can take next, as a mask over the logits.
 *
 * At creation the vocabulary is indexed once: every token's bytes
 * (slm_token_to_bytes) go into a trie stored in preorder, each node with its
 * byte, its depth and the index just past its subtree, so the trie is walked
 * with a loop instead of recursion and a dead branch is skipped in one step.
 * End-of-generation tokens are kept apart; tokens without bytes (control,
 * unknown, unused) are in no list and so always masked; user-defined tokens
 * count as their text.
 *
 * apply() walks the trie with the automaton: the state for a node is the
 * parent's state stepped by the node's byte (one scratch state per depth),
 * and a node whose state has no thread left prunes its subtree. A token is
 * allowed when its whole byte string leaves a live state, which is exactly
 * "consumable from here". Inside a string (the common case, and the one
 * where most of a large vocabulary is allowed) a shortcut applies: tokens
 * that are plain string content — complete UTF-8, no quote, backslash or
 * control byte — are accepted exactly when their character count fits
 * (json_grammar.h: jg_split_strings). So the threads inside strings take the
 * plain tokens by a list scan; only the remaining "special" tokens are
 * walked, in a second trie, with the whole state; and threads elsewhere
 * (if any: an anyOf of a string and an enum, say) walk the full trie, where
 * little survives the first bytes. EOG tokens are allowed when the value is
 * complete; if nothing at all can follow (a vocabulary missing the bytes a
 * schema needs), EOG is allowed too so generation stops instead of running
 * on a fully masked row — and accepting that EOG reports the dead end.
 */
#include "sample/constraint.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sample/json_grammar.h"
#include "sample/json_schema.h"
#include "util/alloc.h"
#include "util/err.h"

#define MAX_TOKEN_BYTES 65535u    /* longer tokens (none in practice) stay masked */

typedef struct trie_node {
    uint32_t skip;       /* index just past this node's subtree              */
    uint32_t tok_first;  /* its tokens are toks[tok_first .. next node's)    */
    uint16_t depth;      /* bytes from the root                              */
    uint8_t  byte;       /* the byte on the edge into this node              */
    uint8_t  pad;
} trie_node;

typedef struct trie {
    trie_node *nodes;    /* preorder; nodes[0] is the root, nodes[n_nodes] a sentinel */
    uint32_t n_nodes;    /* nodes, root included                             */
    int32_t *toks;       /* token ids, grouped by node                       */
    uint32_t max_depth;  /* longest token in bytes                           */
} trie;

struct slm_constraint_vocab {
    atomic_int refs;       /* holders: the creator and every constraint      */
    const slm_vocab *v;    /* the vocabulary indexed (not owned)             */
    int32_t   n_vocab;     /* its token count                                */
    uint8_t  *bytes;       /* every token's bytes, back to back              */
    uint32_t *off, *len;   /* token t is bytes[off[t] .. off[t]+len[t])       */
    trie      all;         /* tokens with bytes, except EOG                  */
    trie      special;     /* those that are not plain string content        */
    int32_t  *plain;       /* plain string content tokens ...                */
    uint32_t *plain_chars; /* ... and their lengths in code points           */
    int32_t   n_plain;
    int32_t  *eog;         /* end-of-generation tokens                       */
    int32_t   n_eog;
};

struct slm_constraint {
    const slm_vocab *v;     /* the vocabulary (not owned)                     */
    jg_grammar  *g;         /* the compiled schema (owned)                    */
    slm_constraint_vocab *idx; /* the vocabulary index (one reference held)   */
    jg_state    *state;     /* after the accepted tokens                      */
    jg_state   **level;     /* walk scratch: level[d] after d bytes of a token
                             * (d >= 1; one per byte of the longest token)    */
    jg_state    *str_part;  /* apply: the threads inside strings ...          */
    jg_state    *rest_part; /* ... and the others                             */
    uint32_t     n_levels;  /* entries of level                               */
    uint64_t    *allowed;   /* bitmap over the vocabulary, filled by apply    */
    bool         finished;  /* an EOG token was accepted                      */
    bool         eog_fallback; /* the last apply allowed EOG because nothing else fit */
};

/* ---- vocabulary index ----------------------------------------------------------- */

typedef struct entry {
    const uint8_t *p;    /* the token's bytes                                */
    uint32_t len;        /* their count                                      */
    int32_t  id;         /* the token                                        */
    bool     plain;      /* plain string content (see plain_text)            */
} entry;

static int cmp_entry(const void *x, const void *y) {
    const entry *a = x, *b = y;
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c) return c;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Sorts e[0..n) by bytes (then id), all sharing their first `depth` bytes:
 * MSD radix sort (stable counting passes, so equal texts keep id order),
 * qsort for small buckets and past depth 32. tmp holds n entries. */
static void sort_entries(entry *e, entry *tmp, uint32_t n, uint32_t depth) {
    if (n < 48 || depth >= 32) {
        qsort(e, n, sizeof *e, cmp_entry);
        return;
    }
    uint32_t count[257] = { 0 }, start[258];
    for (uint32_t i = 0; i < n; i++) count[e[i].len > depth ? e[i].p[depth] + 1u : 0]++;
    start[0] = 0;
    for (int k = 0; k < 257; k++) start[k + 1] = start[k] + count[k];
    uint32_t pos[257];
    memcpy(pos, start, sizeof pos);
    for (uint32_t i = 0; i < n; i++) tmp[pos[e[i].len > depth ? e[i].p[depth] + 1u : 0]++] = e[i];
    memcpy(e, tmp, (size_t)n * sizeof *e);
    for (int k = 1; k < 257; k++)
        if (count[k] > 1) sort_entries(e + start[k], tmp, count[k], depth + 1);
}

/* Plain string content: valid, complete UTF-8 without '"', '\\' or bytes
 * below 0x20. Writes the code point count. */
static bool plain_text(const uint8_t *p, uint32_t n, uint32_t *chars) {
    uint32_t count = 0;
    for (uint32_t i = 0; i < n;) {
        uint8_t c = p[i];
        uint32_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || i + k > n || c < 0x20 || c == '"' || c == '\\') return false;
        for (uint32_t j = 1; j < k; j++) if ((p[i + j] & 0xC0) != 0x80) return false;
        if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F) ||
            (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F)) return false;
        i += k;
        count++;
    }
    *chars = count;
    return true;
}

static void trie_free(trie *t) {
    slm_free(t->nodes);
    slm_free(t->toks);
}

/* Builds a trie over the sorted entries (only the non-plain ones when
 * special_only). */
static int trie_build(trie *t, const entry *e, uint32_t n_e, bool special_only, slm_err *err) {
    size_t n_bytes = 0;
    uint32_t n_tok = 0, max_len = 0;
    for (uint32_t i = 0; i < n_e; i++) {
        if (special_only && e[i].plain) continue;
        n_bytes += e[i].len;
        n_tok++;
        if (e[i].len > max_len) max_len = e[i].len;
    }
    if (n_bytes + 2 > UINT32_MAX) return slm_err_set(err, SLM_ERANGE, "vocabulary too large to index");
    t->nodes = slm_malloc((n_bytes + 2) * sizeof *t->nodes);
    t->toks = slm_malloc((size_t)(n_tok ? n_tok : 1) * sizeof *t->toks);
    uint32_t *path = slm_malloc(((size_t)max_len + 1) * sizeof *path);
    if (!t->nodes || !t->toks || !path) {
        slm_free(path);
        return slm_err_set(err, SLM_ENOMEM, "out of memory indexing the vocabulary");
    }
    trie_node *nd = t->nodes;
    uint32_t n = 1, cur = 0, k = 0;
    nd[0] = (trie_node){ .tok_first = 0 };
    path[0] = 0;
    const entry *prev = NULL;
    for (uint32_t i = 0; i < n_e; i++) {
        if (special_only && e[i].plain) continue;
        uint32_t l = 0;
        if (prev) {
            uint32_t m = prev->len < e[i].len ? prev->len : e[i].len;
            while (l < m && prev->p[l] == e[i].p[l]) l++;
        }
        for (uint32_t d = cur; d > l; d--) nd[path[d]].skip = n;
        for (uint32_t d = l + 1; d <= e[i].len; d++) {
            nd[n] = (trie_node){ .depth = (uint16_t)d, .byte = e[i].p[d - 1], .tok_first = k };
            path[d] = n++;
        }
        cur = e[i].len;
        t->toks[k++] = e[i].id;
        prev = &e[i];
    }
    for (uint32_t d = cur; d > 0; d--) nd[path[d]].skip = n;
    nd[0].skip = n;
    nd[n] = (trie_node){ .skip = n + 1, .tok_first = k };
    t->n_nodes = n;
    t->max_depth = max_len;
    slm_free(path);
    return 0;
}

void slm_constraint_vocab_free(slm_constraint_vocab *x) {
    if (!x || atomic_fetch_sub(&x->refs, 1) != 1) return;
    slm_free(x->bytes);
    slm_free(x->off);
    slm_free(x->len);
    trie_free(&x->all);
    trie_free(&x->special);
    slm_free(x->plain);
    slm_free(x->plain_chars);
    slm_free(x->eog);
    slm_free(x);
}

int slm_constraint_vocab_new(const slm_vocab *v, slm_constraint_vocab **out, slm_err *err) {
    if (!out) return slm_err_set(err, SLM_EINVAL, "constraint: out is NULL");
    *out = NULL;
    if (!v) return slm_err_set(err, SLM_EINVAL, "constraint: no vocabulary");
    int32_t n = slm_vocab_n_tokens(v);
    int rc = 0;
    entry *e = NULL, *tmp = NULL;
    slm_constraint_vocab *x = slm_calloc(1, sizeof *x);
    if (!x || n <= 0) { rc = n <= 0 ? slm_err_set(err, SLM_EINVAL, "empty vocabulary") : SLM_ENOMEM; goto fail; }
    atomic_init(&x->refs, 1);
    x->v = v;
    x->n_vocab = n;
    x->off = slm_calloc((size_t)n, sizeof *x->off);
    x->len = slm_calloc((size_t)n, sizeof *x->len);
    x->eog = slm_malloc((size_t)n * sizeof *x->eog);
    if (!x->off || !x->len || !x->eog) { rc = SLM_ENOMEM; goto fail; }
    size_t total = 0, cap = (size_t)n * 8;
    if (!(x->bytes = slm_malloc(cap))) { rc = SLM_ENOMEM; goto fail; }
    for (int32_t t = 0; t < n; t++) {          /* every token's bytes, in one pass */
        if (slm_vocab_is_eog(v, t)) { x->eog[x->n_eog++] = t; continue; }
        int k = slm_token_to_bytes(v, t, (char *)x->bytes + total, cap - total);
        if (k == SLM_ERANGE || (k > 0 && (size_t)k > cap - total)) {
            k = slm_token_to_bytes(v, t, NULL, 0);
            if (k <= 0 || (uint32_t)k > MAX_TOKEN_BYTES) continue;
            while (cap - total < (size_t)k) cap *= 2;
            uint8_t *nb = slm_realloc(x->bytes, cap);
            if (!nb) { rc = SLM_ENOMEM; goto fail; }
            x->bytes = nb;
            k = slm_token_to_bytes(v, t, (char *)x->bytes + total, cap - total);
        }
        if (k <= 0 || (uint32_t)k > MAX_TOKEN_BYTES) continue;
        x->off[t] = (uint32_t)total;
        x->len[t] = (uint32_t)k;
        total += (size_t)k;
        if (total > UINT32_MAX) { rc = slm_err_set(err, SLM_ERANGE, "vocabulary too large to index"); goto fail; }
    }
    e = slm_malloc((size_t)n * sizeof *e);
    x->plain = slm_malloc((size_t)n * sizeof *x->plain);
    x->plain_chars = slm_malloc((size_t)n * sizeof *x->plain_chars);
    if (!e || !x->plain || !x->plain_chars) { rc = SLM_ENOMEM; goto fail; }
    uint32_t n_e = 0;
    for (int32_t t = 0; t < n; t++) {
        if (!x->len[t]) continue;
        const uint8_t *p = x->bytes + x->off[t];
        uint32_t chars;
        bool plain = plain_text(p, x->len[t], &chars);
        if (plain) { x->plain[x->n_plain] = t; x->plain_chars[x->n_plain++] = chars; }
        e[n_e++] = (entry){ p, x->len[t], t, plain };
    }
    if (!(tmp = slm_malloc((size_t)(n_e ? n_e : 1) * sizeof *tmp))) { rc = SLM_ENOMEM; goto fail; }
    sort_entries(e, tmp, n_e, 0);
    slm_free(tmp);
    tmp = NULL;
    if ((rc = trie_build(&x->all, e, n_e, false, err)) || (rc = trie_build(&x->special, e, n_e, true, err)))
        goto fail;
    slm_free(e);
    *out = x;
    return 0;
fail:
    if (rc == SLM_ENOMEM) slm_err_set(err, SLM_ENOMEM, "out of memory indexing the vocabulary");
    slm_free(e);
    slm_free(tmp);
    slm_constraint_vocab_free(x);
    return rc;
}

/* ---- constraint ---------------------------------------------------------------- */

void slm_constraint_free(slm_constraint *c) {
    if (!c) return;
    jg_grammar_free(c->g);
    slm_constraint_vocab_free(c->idx);
    if (c->level)
        for (uint32_t d = 1; d < c->n_levels; d++) slm_free(c->level[d]);
    slm_free(c->level);
    slm_free(c->state);
    slm_free(c->str_part);
    slm_free(c->rest_part);
    slm_free(c->allowed);
    slm_free(c);
}

int slm_constraint_new_json_with(slm_constraint_vocab *cv, const char *schema_json, slm_constraint **out,
                                 slm_err *err) {
    if (!out) return slm_err_set(err, SLM_EINVAL, "constraint: out is NULL");
    *out = NULL;
    if (!cv) return slm_err_set(err, SLM_EINVAL, "constraint: no vocabulary index");
    slm_constraint *c = slm_calloc(1, sizeof *c);
    if (!c) return slm_err_set(err, SLM_ENOMEM, "out of memory creating a constraint");
    atomic_fetch_add(&cv->refs, 1);
    c->idx = cv;
    c->v = cv->v;
    int rc = schema_json ? jg_schema_compile(schema_json, strlen(schema_json), &c->g, err)
                         : jg_grammar_any_object(&c->g, err);
    if (rc) goto fail;
    c->n_levels = (cv->all.max_depth > 2 ? cv->all.max_depth : 2) + 1;
    c->level = slm_calloc(c->n_levels, sizeof *c->level);
    c->state = slm_malloc(sizeof *c->state);
    c->str_part = slm_malloc(sizeof *c->str_part);
    c->rest_part = slm_malloc(sizeof *c->rest_part);
    c->allowed = slm_calloc(((size_t)cv->n_vocab + 63) / 64, sizeof *c->allowed);
    if (!c->level || !c->state || !c->str_part || !c->rest_part || !c->allowed) goto oom;
    for (uint32_t d = 1; d < c->n_levels; d++)
        if (!(c->level[d] = slm_malloc(sizeof(jg_state)))) goto oom;
    jg_state_init(c->g, c->state);
    *out = c;
    return 0;
oom:
    rc = slm_err_set(err, SLM_ENOMEM, "out of memory creating a constraint");
fail:
    slm_constraint_free(c);
    return rc;
}

int slm_constraint_new_json(const slm_vocab *v, const char *schema_json, slm_constraint **out, slm_err *err) {
    if (!out) return slm_err_set(err, SLM_EINVAL, "constraint: out is NULL");
    *out = NULL;
    slm_constraint_vocab *cv = NULL;
    int rc = slm_constraint_vocab_new(v, &cv, err);
    if (rc) return rc;
    rc = slm_constraint_new_json_with(cv, schema_json, out, err);
    slm_constraint_vocab_free(cv);            /* the constraint holds its own reference */
    return rc;
}

static inline void allow(uint64_t *bits, int32_t t) { bits[t >> 6] |= (uint64_t)1 << (t & 63); }

/* Walks trie t from state root, marking the tokens it can consume. Returns
 * whether any was found. */
static bool walk(slm_constraint *c, const trie *t, const jg_state *root) {
    const trie_node *nd = t->nodes;
    jg_state **level = c->level;
    const jg_grammar *g = c->g;
    bool any = false;
    for (uint32_t i = 1; i < t->n_nodes;) {
        const trie_node *x = &nd[i];
        jg_state *to = level[x->depth];
        jg_step(g, x->depth == 1 ? root : level[x->depth - 1], x->byte, to);
        if (!to->n_threads) { i = x->skip; continue; }
        for (uint32_t k = x->tok_first; k < nd[i + 1].tok_first; k++) {
            allow(c->allowed, t->toks[k]);
            any = true;
        }
        i++;
    }
    return any;
}

void slm_constraint_apply(slm_constraint *c, float *logits) {
    const slm_constraint_vocab *x = c->idx;
    size_t words = ((size_t)x->n_vocab + 63) / 64;
    memset(c->allowed, 0, words * sizeof *c->allowed);
    bool any = false;
    if (!c->finished) {
        /* Threads inside strings take every plain token that fits; the
         * special tokens are walked for all threads, and the other threads
         * walk the whole trie (cheap: outside strings little survives). */
        int64_t room;
        jg_split_strings(c->g, c->state, c->str_part, c->rest_part, &room);
        if (room >= 0) {
            for (int32_t i = 0; i < x->n_plain; i++)
                if (x->plain_chars[i] <= room) { allow(c->allowed, x->plain[i]); any = true; }
            any |= walk(c, &x->special, c->state);
        }
        if (c->rest_part->n_threads) any |= walk(c, &x->all, c->rest_part);
    }
    c->eog_fallback = !c->finished && !any;
    if (c->finished || c->eog_fallback || jg_done(c->g, c->state))
        for (int32_t i = 0; i < x->n_eog; i++) allow(c->allowed, x->eog[i]);
    for (int32_t t = 0; t < x->n_vocab; t++)
        if (!(c->allowed[t >> 6] >> (t & 63) & 1)) logits[t] = -INFINITY;
}

/* Steps the state by token's bytes into scratch; returns the resulting
 * state, or NULL when the token cannot be consumed. */
static const jg_state *consume(slm_constraint *c, int32_t token) {
    const slm_constraint_vocab *x = c->idx;
    uint32_t len = x->len[token];
    if (!len) return NULL;
    const uint8_t *p = x->bytes + x->off[token];
    const jg_state *from = c->state;
    for (uint32_t i = 0; i < len; i++) {
        jg_state *to = c->level[1 + (i & 1)];
        jg_step(c->g, from, p[i], to);
        if (!to->n_threads) return NULL;
        from = to;
    }
    return from;
}

bool slm_constraint_allows(slm_constraint *c, int32_t token) {
    if (!c || token < 0 || token >= c->idx->n_vocab) return false;
    if (slm_vocab_is_eog(c->v, token))
        return c->finished || c->eog_fallback || jg_done(c->g, c->state);
    return !c->finished && consume(c, token) != NULL;
}

int slm_constraint_accept(slm_constraint *c, int32_t token) {
    if (!c || token < 0 || token >= c->idx->n_vocab) return SLM_EINVAL;
    if (slm_vocab_is_eog(c->v, token)) {
        if (c->finished || jg_done(c->g, c->state)) { c->finished = true; return 0; }
        return c->eog_fallback ? SLM_EUNSUPPORTED : SLM_EINVAL;
    }
    if (c->finished) return SLM_EINVAL;
    const jg_state *s = consume(c, token);
    if (!s) return SLM_EINVAL;
    jg_state_copy(c->state, s);
    c->eog_fallback = false;
    return 0;
}

bool slm_constraint_done(const slm_constraint *c) {
    return c && jg_done(c->g, c->state);
}
