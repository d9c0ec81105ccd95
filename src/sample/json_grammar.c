/*
 * json_grammar.c — the JSON recognizer: grammar storage and the pushdown
 * automaton that reads text one byte at a time (see json_grammar.h).
 *
 * Each thread is a stack: a ROOT frame, one frame per open object or array,
 * and on top the value being read (VALUE before its first byte, then STR,
 * NUM, LIT, or KEY for a declared property name). Every push sets the parent
 * to the phase it will be in once the child is done, so finishing a child is
 * just a pop. A byte that a finished-but-extendable child (a number, a
 * literal that is a prefix of a longer one) cannot take is handed to the
 * parent after the pop; in JSON no byte that may follow a value can also
 * extend it, so this never needs a second thread. Threads split only where a
 * VALUE of an anyOf node reads its first byte.
 *
 * Strings are checked as UTF-8 (shortest forms, no surrogates, at most
 * U+10FFFF) byte by byte, so a token may end or start inside a character;
 * \u escapes must pair surrogates correctly. Lengths count code points (an
 * escape is one, a surrogate pair one). Declared property keys are matched
 * as literal texts against the candidates allowed next: the properties from
 * the current one up to and including the next required one (at most 64).
 */
#include "sample/json_grammar.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

/* ---- grammar storage ------------------------------------------------------ */

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem, slm_err *err) {
    if (need <= *cap) return 0;
    if (need > UINT32_MAX / 2) return slm_err_set(err, SLM_ERANGE, "grammar too large");
    uint32_t ncap = *cap ? *cap : 16;
    while (ncap < need) ncap *= 2;
    size_t nbytes;
    if (!slm_mul_ok(ncap, elem, &nbytes)) return slm_err_set(err, SLM_ERANGE, "grammar too large");
    void *q = slm_realloc(*p, nbytes);
    if (!q) return slm_err_set(err, SLM_ENOMEM, "out of memory building the JSON grammar");
    *p = q;
    *cap = ncap;
    return 0;
}

int jg_add_node(jg_grammar *g, const jg_node *n, uint32_t *idx, slm_err *err) {
    if (g->n_nodes >= JG_MAX_NODES)
        return slm_err_set(err, SLM_ERANGE, "schema too large: more than %u grammar nodes", JG_MAX_NODES);
    int rc = grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes, err);
    if (rc) return rc;
    g->nodes[g->n_nodes] = *n;
    *idx = g->n_nodes++;
    return 0;
}

int jg_add_bytes(jg_grammar *g, const void *p, size_t len, uint32_t *off, slm_err *err) {
    if (len > (64u << 20) || g->n_bytes + len > (64u << 20))
        return slm_err_set(err, SLM_ERANGE, "schema too large: literal texts over 64 MiB");
    int rc = grow((void **)&g->bytes, &g->cap_bytes, g->n_bytes + (uint32_t)len, 1, err);
    if (rc) return rc;
    if (len) memcpy(g->bytes + g->n_bytes, p, len);
    *off = g->n_bytes;
    g->n_bytes += (uint32_t)len;
    return 0;
}

typedef struct lit_ref { const char *p; size_t len; } lit_ref;

static int cmp_lit(const void *x, const void *y) {
    const lit_ref *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

int jg_add_lits(jg_grammar *g, const char *const *texts, const size_t *lens, uint32_t n,
                uint32_t *first, uint32_t *count, slm_err *err) {
    lit_ref *tmp = slm_malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!tmp) return slm_err_set(err, SLM_ENOMEM, "out of memory building the JSON grammar");
    int rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (lens[i] > JG_MAX_LIT_LEN) {
            rc = slm_err_set(err, SLM_ERANGE, "literal of %zu bytes (limit %u)", lens[i], JG_MAX_LIT_LEN);
            goto done;
        }
        tmp[i] = (lit_ref){ texts[i], lens[i] };
    }
    qsort(tmp, n, sizeof *tmp, cmp_lit);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (m == 0 || cmp_lit(&tmp[m - 1], &tmp[i]) != 0) tmp[m++] = tmp[i];
    if ((rc = grow((void **)&g->lits, &g->cap_lits, g->n_lits + m, sizeof *g->lits, err))) goto done;
    *first = g->n_lits;
    for (uint32_t i = 0; i < m; i++) {
        uint32_t off;
        if ((rc = jg_add_bytes(g, tmp[i].p, tmp[i].len, &off, err))) goto done;
        g->lits[g->n_lits++] = (jg_lit){ off, (uint32_t)tmp[i].len };
    }
    *count = m;
done:
    slm_free(tmp);
    return rc;
}

int jg_add_alts(jg_grammar *g, const uint32_t *alts, uint32_t n, uint32_t *first, slm_err *err) {
    int rc = grow((void **)&g->alts, &g->cap_alts, g->n_alts + n, sizeof *g->alts, err);
    if (rc) return rc;
    if (n) memcpy(g->alts + g->n_alts, alts, (size_t)n * sizeof *alts);
    *first = g->n_alts;
    g->n_alts += n;
    return 0;
}

int jg_add_props(jg_grammar *g, const jg_prop *props, uint32_t n, uint32_t *first, slm_err *err) {
    int rc = grow((void **)&g->props, &g->cap_props, g->n_props + n, sizeof *g->props, err);
    if (rc) return rc;
    if (n) memcpy(g->props + g->n_props, props, (size_t)n * sizeof *props);
    *first = g->n_props;
    g->n_props += n;
    return 0;
}

void jg_grammar_free(jg_grammar *g) {
    if (!g) return;
    slm_free(g->nodes);
    slm_free(g->props);
    slm_free(g->lits);
    slm_free(g->alts);
    slm_free(g->bytes);
    slm_free(g);
}

int jg_grammar_new(jg_grammar **out, slm_err *err) {
    *out = NULL;
    jg_grammar *g = slm_calloc(1, sizeof *g);
    if (!g) return slm_err_set(err, SLM_ENOMEM, "out of memory building the JSON grammar");
    static const char *const bools[] = { "false", "true" };
    static const size_t bool_lens[] = { 5, 4 };
    static const char *const nul[] = { "null" };
    static const size_t nul_len[] = { 4 };
    uint32_t idx, first, count;
    int rc;
    jg_node n = { .kind = JG_ANY, .max = JG_UNBOUNDED, .last_req = -1 };
    if ((rc = jg_add_node(g, &n, &idx, err))) goto fail;                               /* ANY */
    n.kind = JG_STRING;
    if ((rc = jg_add_node(g, &n, &idx, err))) goto fail;                               /* STRING */
    n.kind = JG_NUMBER;
    if ((rc = jg_add_node(g, &n, &idx, err))) goto fail;                               /* NUMBER */
    if ((rc = jg_add_lits(g, bools, bool_lens, 2, &first, &count, err))) goto fail;
    n = (jg_node){ .kind = JG_LITS, .a = first, .n = count, .max = JG_UNBOUNDED, .last_req = -1 };
    if ((rc = jg_add_node(g, &n, &idx, err))) goto fail;                               /* BOOL */
    if ((rc = jg_add_lits(g, nul, nul_len, 1, &first, &count, err))) goto fail;
    n = (jg_node){ .kind = JG_LITS, .a = first, .n = count, .max = JG_UNBOUNDED, .last_req = -1 };
    if ((rc = jg_add_node(g, &n, &idx, err))) goto fail;                               /* NULL */
    n = (jg_node){ .kind = JG_MAP, .a = JG_NODE_ANY, .max = JG_UNBOUNDED, .last_req = -1 };
    if ((rc = jg_add_node(g, &n, &idx, err))) goto fail;                               /* ANY_MAP */
    n = (jg_node){ .kind = JG_ARRAY, .a = JG_NODE_ANY, .max = JG_UNBOUNDED, .last_req = -1 };
    if ((rc = jg_add_node(g, &n, &idx, err))) goto fail;                               /* ANY_ARRAY */
    g->root = JG_NODE_ANY;
    *out = g;
    return 0;
fail:
    jg_grammar_free(g);
    return rc;
}

int jg_grammar_any_object(jg_grammar **out, slm_err *err) {
    int rc = jg_grammar_new(out, err);
    if (rc == 0) (*out)->root = JG_NODE_ANY_MAP;
    return rc;
}

/* ---- the automaton --------------------------------------------------------- */

enum { F_ROOT, F_VALUE, F_OBJ, F_MAP, F_ARR, F_STR, F_KEY, F_NUM, F_LIT };
enum { P_OPEN, P_KEY, P_VALUE, P_COMMA };                       /* OBJ, MAP, ARR */
enum { E_NONE, E_BS, E_U0, E_U4 = E_U0 + 4, E_PBS, E_PU, E_L0, E_L4 = E_L0 + 4 }; /* STR */
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };   /* NUM */
enum { OK, FAIL, SPLIT };

/* STR frames keep the pending UTF-8 continuation bytes in x's low 2 bits and
 * the allowed range of the next one in bits 2-4. */
enum { U_ANY = 0, U_A0_BF, U_80_9F, U_90_BF, U_80_8F };

static inline size_t thread_size(const jg_thread *t) {
    return sizeof(jg_thread) + (size_t)t->depth * sizeof(jg_frame);
}

static inline const jg_thread *thread_at(const jg_state *s, uint32_t off) {
    return (const jg_thread *)(const void *)(s->buf + off);
}

static inline bool is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static inline int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline int push(jg_thread *t, uint32_t node, uint8_t kind) {
    if (t->depth >= JG_MAX_FRAMES) return FAIL;
    t->f[t->depth++] = (jg_frame){ .node = node, .kind = kind };
    return OK;
}

static inline int take_ws(jg_thread *t) {
    if (t->ws >= JG_WS_MAX) return FAIL;
    t->ws++;
    return OK;
}

/* Turns the VALUE frame f into an open container of kind. */
static inline int open_container(jg_thread *t, jg_frame *f, uint8_t kind) {
    if (t->nest >= JG_MAX_DEPTH) return FAIL;
    t->nest++;
    f->kind = kind;
    f->phase = P_OPEN;
    f->a = f->b = 0;
    return OK;
}

static inline void close_container(jg_thread *t) { t->depth--; t->nest--; }

/* The object's key candidates starting at property `from`: a bit mask over
 * from .. the next required property (inclusive), at most 64 of them. */
static uint64_t key_candidates(const jg_grammar *g, const jg_node *n, uint32_t from) {
    if (from >= n->n) return 0;
    uint32_t last = g->props[n->a + from].next_req;
    if (last >= n->n) last = n->n - 1;
    uint32_t count = last - from + 1;
    return count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1);
}

static int step_str(const jg_grammar *g, jg_thread *t, jg_frame *f, uint8_t c) {
    const jg_node *n = &g->nodes[f->node];
    if (f->x & 3) {                                   /* inside a UTF-8 sequence */
        uint8_t lo = 0x80, hi = 0xBF;
        switch (f->x >> 2) {
        case U_A0_BF: lo = 0xA0; break;
        case U_80_9F: hi = 0x9F; break;
        case U_90_BF: lo = 0x90; break;
        case U_80_8F: hi = 0x8F; break;
        default: break;
        }
        if (c < lo || c > hi) return FAIL;
        f->x = (uint16_t)((f->x & 3) - 1);
        return OK;
    }
    int h;
    switch (f->phase) {
    case E_NONE:
        if (c == '"') {
            if (f->a < n->min) return FAIL;
            t->depth--;
            return OK;
        }
        if (c < 0x20) return FAIL;
        if (f->a >= n->max) return FAIL;
        if (c == '\\') { f->phase = E_BS; f->a++; return OK; }
        if (c < 0x80) { f->a++; return OK; }
        if (c >= 0xC2 && c <= 0xDF) f->x = 1;
        else if (c == 0xE0) f->x = 2 | (U_A0_BF << 2);
        else if (c == 0xED) f->x = 2 | (U_80_9F << 2);
        else if (c >= 0xE1 && c <= 0xEF) f->x = 2;
        else if (c == 0xF0) f->x = 3 | (U_90_BF << 2);
        else if (c >= 0xF1 && c <= 0xF3) f->x = 3;
        else if (c == 0xF4) f->x = 3 | (U_80_8F << 2);
        else return FAIL;
        f->a++;
        return OK;
    case E_BS:
        if (c == 'u') { f->phase = E_U0; f->b = 0; return OK; }
        if (!strchr("\"\\/bfnrt", c) || c == 0) return FAIL;
        f->phase = E_NONE;
        return OK;
    case E_PBS:
        if (c != '\\') return FAIL;
        f->phase = E_PU;
        return OK;
    case E_PU:
        if (c != 'u') return FAIL;
        f->phase = E_L0;
        f->b = 0;
        return OK;
    default:
        if ((h = hexval(c)) < 0) return FAIL;
        f->b = f->b * 16 + (uint32_t)h;
        f->phase++;
        if (f->phase == E_U0 + 2 && f->b >= 0xDC && f->b <= 0xDF) return FAIL;  /* lone low surrogate */
        if (f->phase == E_U4) f->phase = (f->b >= 0xD800 && f->b <= 0xDBFF) ? E_PBS : E_NONE;
        else if (f->phase == E_L0 + 1 && f->b != 0xD) return FAIL;             /* need DC00-DFFF */
        else if (f->phase == E_L0 + 2 && (f->b < 0xDC || f->b > 0xDF)) return FAIL;
        else if (f->phase == E_L4) f->phase = E_NONE;
        return OK;
    }
}

/* Returns OK, FAIL, or SPLIT (the thread branched: its successors have been
 * appended to out by recursive steps). t is modified in place. */
static int run(const jg_grammar *g, jg_thread *t, uint8_t c, jg_state *out);

/* One byte grows a thread by at most two frames: a push, and one more when
 * that push reaches an anyOf whose alternative pushes again. */
static void step_thread(const jg_grammar *g, const jg_thread *in, uint8_t c, jg_state *out) {
    if (out->n_threads >= JG_MAX_THREADS ||
        out->used + thread_size(in) + 2 * sizeof(jg_frame) > JG_STATE_CAP) return;
    jg_thread *t = (jg_thread *)(void *)(out->buf + out->used);
    memcpy(t, in, thread_size(in));
    if (run(g, t, c, out) != OK) return;
    size_t size = thread_size(t);
    for (uint32_t i = 0, off = 0; i < out->n_threads; i++) {   /* merge duplicates */
        const jg_thread *o = thread_at(out, off);
        size_t osize = thread_size(o);
        if (osize == size && memcmp(o, t, size) == 0) return;
        off += (uint32_t)osize;
    }
    out->used += (uint32_t)size;
    out->n_threads++;
}

static int split(const jg_grammar *g, jg_thread *t, const jg_node *n, uint8_t c, jg_state *out) {
    _Alignas(8) uint8_t tmp_buf[JG_THREAD_MAX_BYTES];
    jg_thread *tmp = (jg_thread *)(void *)tmp_buf;
    memcpy(tmp, t, thread_size(t));
    for (uint32_t i = 0; i < n->n; i++) {
        tmp->f[tmp->depth - 1].node = g->alts[n->a + i];
        step_thread(g, tmp, c, out);
    }
    return SPLIT;
}

static int run(const jg_grammar *g, jg_thread *t, uint8_t c, jg_state *out) {
    bool ws = is_ws(c);
    if (!ws) t->ws = 0;
    for (;;) {
        jg_frame *f = &t->f[t->depth - 1];
        const jg_node *n = &g->nodes[f->node];
        switch (f->kind) {
        case F_ROOT:
            return FAIL;                          /* the value is complete */

        case F_VALUE:
            if (ws) return take_ws(t);
            switch (n->kind) {
            case JG_ANYOF:
                return split(g, t, n, c, out);
            case JG_ANY:
                if (c == '{') f->node = JG_NODE_ANY_MAP;
                else if (c == '[') f->node = JG_NODE_ANY_ARRAY;
                else if (c == '"') f->node = JG_NODE_STRING;
                else if (c == '-' || (c >= '0' && c <= '9')) f->node = JG_NODE_NUMBER;
                else if (c == 't' || c == 'f') f->node = JG_NODE_BOOL;
                else if (c == 'n') f->node = JG_NODE_NULL;
                else return FAIL;
                continue;
            case JG_OBJECT: return c == '{' ? open_container(t, f, F_OBJ) : FAIL;
            case JG_MAP:    return c == '{' ? open_container(t, f, F_MAP) : FAIL;
            case JG_ARRAY:  return c == '[' ? open_container(t, f, F_ARR) : FAIL;
            case JG_STRING:
                if (c != '"') return FAIL;
                *f = (jg_frame){ .node = f->node, .kind = F_STR, .phase = E_NONE };
                return OK;
            case JG_NUMBER:
            case JG_INTEGER:
                if (c != '-' && !(c >= '0' && c <= '9')) return FAIL;
                *f = (jg_frame){ .node = f->node, .kind = F_NUM, .phase = N_START };
                continue;
            case JG_LITS:
                *f = (jg_frame){ .node = f->node, .kind = F_LIT, .a = 0, .b = n->n };
                continue;
            default:
                return FAIL;                      /* REF: resolved at finish */
            }

        case F_OBJ:
            if (ws) return take_ws(t);
            if (c == '"' && (f->phase == P_OPEN || f->phase == P_COMMA)) {
                uint64_t mask = key_candidates(g, n, f->a);
                if (!mask) return FAIL;
                f->phase = P_KEY;
                if (push(t, f->node, F_KEY)) return FAIL;
                jg_frame *k = &t->f[t->depth - 1];
                k->x = 1;
                k->a = (uint32_t)mask;
                k->b = (uint32_t)(mask >> 32);
                return OK;
            }
            if (c == ':' && f->phase == P_KEY) {
                f->phase = P_VALUE;
                return push(t, g->props[n->a + f->b].node, F_VALUE);
            }
            if (c == ',' && f->phase == P_VALUE) {
                if (f->a >= n->n) return FAIL;
                f->phase = P_COMMA;
                return OK;
            }
            if (c == '}' && (f->phase == P_VALUE || f->phase == P_OPEN)) {
                if ((int64_t)f->a <= (int64_t)n->last_req) return FAIL;
                close_container(t);
                return OK;
            }
            return FAIL;

        case F_KEY: {
            const jg_frame *p = f - 1;                /* the object */
            const jg_node *on = &g->nodes[p->node];
            uint64_t mask = f->a | ((uint64_t)f->b << 32), keep = 0;
            uint32_t pos = f->x, hit = 0;
            for (uint64_t m = mask; m; m &= m - 1) {
                uint32_t i = (uint32_t)__builtin_ctzll(m);
                const jg_prop *pr = &g->props[on->a + p->a + i];
                if (pos < pr->key_len && g->bytes[pr->key + pos] == c) {
                    keep |= (uint64_t)1 << i;
                    hit = i;
                }
            }
            if (!keep) return FAIL;
            f->x++;
            if ((keep & (keep - 1)) == 0 && g->props[on->a + p->a + hit].key_len == f->x) {
                jg_frame *obj = f - 1;
                obj->b = obj->a + hit;
                obj->a = obj->b + 1;
                t->depth--;
                return OK;
            }
            f->a = (uint32_t)keep;
            f->b = (uint32_t)(keep >> 32);
            return OK;
        }

        case F_MAP:
            if (ws) return take_ws(t);
            if (c == '"' && (f->phase == P_OPEN || f->phase == P_COMMA)) {
                f->phase = P_KEY;
                if (push(t, JG_NODE_STRING, F_STR)) return FAIL;
                return OK;
            }
            if (c == ':' && f->phase == P_KEY) {
                f->phase = P_VALUE;
                return push(t, n->a, F_VALUE);
            }
            if (c == ',' && f->phase == P_VALUE) { f->phase = P_COMMA; return OK; }
            if (c == '}' && (f->phase == P_VALUE || f->phase == P_OPEN)) {
                close_container(t);
                return OK;
            }
            return FAIL;

        case F_ARR:
            if (ws) return take_ws(t);
            if (f->phase == P_OPEN) {
                if (c == ']') {
                    if (n->min > 0) return FAIL;
                    close_container(t);
                    return OK;
                }
                if (n->max == 0) return FAIL;
                f->a = 1;
                f->phase = P_VALUE;
                if (push(t, n->a, F_VALUE)) return FAIL;
                continue;                              /* the byte starts the item */
            }
            if (c == ',') {
                if (f->a >= n->max) return FAIL;
                f->a++;
                return push(t, n->a, F_VALUE);
            }
            if (c == ']') {
                if (f->a < n->min) return FAIL;
                close_container(t);
                return OK;
            }
            return FAIL;

        case F_STR:
            return step_str(g, t, f, c);

        case F_NUM: {
            bool digit = c >= '0' && c <= '9';
            bool frac_ok = n->kind == JG_NUMBER;
            switch (f->phase) {
            case N_START:
                if (c == '-') { f->phase = N_MINUS; return OK; }
                /* fall through */
            case N_MINUS:
                if (!digit) return FAIL;
                f->phase = c == '0' ? N_ZERO : N_INT;
                f->x = 1;
                return OK;
            case N_INT:
                if (digit) {
                    if (f->x >= JG_INT_DIGITS) return FAIL;
                    f->x++;
                    return OK;
                }
                /* fall through */
            case N_ZERO:
                if (frac_ok && c == '.') { f->phase = N_DOT; return OK; }
                if (frac_ok && (c == 'e' || c == 'E')) { f->phase = N_E; return OK; }
                break;                                 /* complete: pop */
            case N_DOT:
                if (!digit) return FAIL;
                f->phase = N_FRAC;
                f->x = 1;
                return OK;
            case N_FRAC:
                if (digit) {
                    if (f->x >= JG_FRAC_DIGITS) return FAIL;
                    f->x++;
                    return OK;
                }
                if (c == 'e' || c == 'E') { f->phase = N_E; return OK; }
                break;
            case N_E:
                if (c == '+' || c == '-') { f->phase = N_ESIGN; return OK; }
                /* fall through */
            case N_ESIGN:
                if (!digit) return FAIL;
                f->phase = N_EXP;
                f->x = 1;
                return OK;
            case N_EXP:
                if (digit) {
                    if (f->x >= JG_EXP_DIGITS) return FAIL;
                    f->x++;
                    return OK;
                }
                break;
            default:
                return FAIL;
            }
            t->depth--;                                /* the number ended before c */
            continue;
        }

        case F_LIT: {
            const jg_lit *l = &g->lits[n->a];
            const uint8_t *bytes = g->bytes;
            uint32_t pos = f->x, lo = f->a, hi = f->b;
            /* Literals in [lo, hi) share their first pos bytes and are sorted,
             * so those with byte c at pos form one run: binary-search it. */
            uint32_t a = lo, b = hi;
            while (a < b) {                            /* first with key >= c */
                uint32_t m = a + (b - a) / 2;
                int key = l[m].len > pos ? bytes[l[m].off + pos] : -1;
                if (key < c) a = m + 1; else b = m;
            }
            uint32_t first = a;
            b = hi;
            while (a < b) {                            /* first with key > c */
                uint32_t m = a + (b - a) / 2;
                int key = l[m].len > pos ? bytes[l[m].off + pos] : -1;
                if (key <= c) a = m + 1; else b = m;
            }
            if (first == a) {
                if (l[lo].len != pos) return FAIL;
                t->depth--;                            /* the literal ended before c */
                continue;
            }
            f->a = first;
            f->b = a;
            f->x++;
            if (a - first == 1 && l[first].len == f->x) t->depth--;  /* nothing can extend it */
            return OK;
        }

        default:
            return FAIL;
        }
    }
}

void jg_state_init(const jg_grammar *g, jg_state *s) {
    jg_thread *t = (jg_thread *)(void *)s->buf;
    t->depth = 2;
    t->ws = t->nest = t->pad = 0;
    t->f[0] = (jg_frame){ .node = g->root, .kind = F_ROOT };
    t->f[1] = (jg_frame){ .node = g->root, .kind = F_VALUE };
    s->n_threads = 1;
    s->used = (uint32_t)thread_size(t);
}

void jg_state_copy(jg_state *dst, const jg_state *src) {
    dst->n_threads = src->n_threads;
    dst->used = src->used;
    memcpy(dst->buf, src->buf, src->used);
}

void jg_step(const jg_grammar *g, const jg_state *in, uint8_t c, jg_state *out) {
    out->n_threads = 0;
    out->used = 0;
    for (uint32_t i = 0, off = 0; i < in->n_threads; i++) {
        const jg_thread *t = thread_at(in, off);
        off += (uint32_t)thread_size(t);
        step_thread(g, t, c, out);
    }
}

static bool thread_done(const jg_grammar *g, const jg_thread *t) {
    const jg_frame *f = &t->f[t->depth - 1];
    if (f->kind == F_ROOT) return true;
    if (t->depth != 2) return false;
    if (f->kind == F_NUM)
        return f->phase == N_ZERO || f->phase == N_INT || f->phase == N_FRAC || f->phase == N_EXP;
    if (f->kind == F_LIT) return g->lits[g->nodes[f->node].a + f->a].len == f->x;
    return false;
}

bool jg_done(const jg_grammar *g, const jg_state *s) {
    for (uint32_t i = 0, off = 0; i < s->n_threads; i++) {
        const jg_thread *t = thread_at(s, off);
        if (thread_done(g, t)) return true;
        off += (uint32_t)thread_size(t);
    }
    return false;
}

static void append(jg_state *s, const jg_thread *t) {
    size_t size = thread_size(t);
    memcpy(s->buf + s->used, t, size);
    s->used += (uint32_t)size;
    s->n_threads++;
}

void jg_split_strings(const jg_grammar *g, const jg_state *s, jg_state *str, jg_state *rest, int64_t *room) {
    str->n_threads = str->used = rest->n_threads = rest->used = 0;
    *room = -1;
    for (uint32_t i = 0, off = 0; i < s->n_threads; i++) {
        const jg_thread *t = thread_at(s, off);
        const jg_frame *f = &t->f[t->depth - 1];
        off += (uint32_t)thread_size(t);
        if (f->kind != F_STR || f->phase != E_NONE || (f->x & 3)) { append(rest, t); continue; }
        append(str, t);
        const jg_node *n = &g->nodes[f->node];
        int64_t r = n->max == JG_UNBOUNDED ? (int64_t)JG_UNBOUNDED : (int64_t)n->max - f->a;
        if (r > *room) *room = r;
    }
}
