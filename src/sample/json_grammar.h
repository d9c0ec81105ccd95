/*
 * json_grammar.h — the byte-level JSON recognizer behind constrained decoding
 * (private to src/sample).
 *
 * A grammar is a graph of nodes, one per kind of JSON value a position may
 * hold: any value, an object with declared properties (in declaration order),
 * a free-form object (string keys, values of one node), an array, a string,
 * a number, an integer, a set of literal texts (true/false/null, enum and
 * const values) or a choice between nodes (anyOf). json_schema.c compiles a
 * JSON Schema into one; jg_grammar_any_object makes the "any JSON object"
 * grammar of response_format json_object.
 *
 * A state is a small set of threads; a thread is a stack of frames, one per
 * open container plus the value being read on top. Stepping a state by one
 * byte steps every thread (a thread entering an anyOf splits into one per
 * alternative; identical threads merge; a thread that cannot take the byte
 * dies). States are plain bytes: copying one is a memcpy of what it holds,
 * which is what the vocabulary walk in constraint.c does at every trie node.
 *
 * Limits: objects and arrays nest at most JG_MAX_DEPTH deep; whitespace runs
 * (space, tab, CR, LF — between tokens only, never inside literals) are at
 * most JG_WS_MAX bytes, so a model cannot loop on whitespace; numbers have at
 * most JG_INT_DIGITS integer digits, JG_FRAC_DIGITS fraction digits and
 * JG_EXP_DIGITS exponent digits; a state keeps at most JG_MAX_THREADS threads
 * in JG_STATE_CAP bytes (more — only from pathological nested anyOf, or
 * ambiguous alternatives nested very deep — are dropped, which can only
 * narrow what is accepted).
 */
#ifndef SLM_SAMPLE_JSON_GRAMMAR_H
#define SLM_SAMPLE_JSON_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slm/slm.h"

#define JG_MAX_DEPTH    64
#define JG_MAX_FRAMES   (JG_MAX_DEPTH + 3)
#define JG_MAX_THREADS  32
#define JG_WS_MAX       32
#define JG_INT_DIGITS   18
#define JG_FRAC_DIGITS  18
#define JG_EXP_DIGITS   3
#define JG_UNBOUNDED    UINT32_MAX
#define JG_MAX_LIT_LEN  65535u   /* bytes of one literal or property key    */
#define JG_MAX_NODES    100000u  /* compiled nodes in one grammar           */

/* ---- grammar ------------------------------------------------------------- */

typedef enum jg_kind {
    JG_ANY,      /* any JSON value                                           */
    JG_OBJECT,   /* declared properties: props[a .. a+n), no others          */
    JG_MAP,      /* any string keys, values of node a                        */
    JG_ARRAY,    /* items of node a, min..max of them                        */
    JG_STRING,   /* min..max characters (code points)                        */
    JG_NUMBER,   /* JSON number                                              */
    JG_INTEGER,  /* JSON number without fraction or exponent                 */
    JG_LITS,     /* one of the texts lits[a .. a+n), sorted bytewise         */
    JG_ANYOF,    /* one of the nodes alts[a .. a+n)                          */
    JG_REF,      /* the same as node a (schema $ref; resolved away at finish) */
} jg_kind;

typedef struct jg_node {
    uint32_t kind;       /* jg_kind                                          */
    uint32_t a;          /* first prop/lit/alt, or the child node            */
    uint32_t n;          /* count of props/lits/alts                         */
    uint32_t min, max;   /* ARRAY items, STRING characters (max JG_UNBOUNDED) */
    int32_t  last_req;   /* OBJECT: index of the last required property, -1  */
} jg_node;

typedef struct jg_prop {
    uint32_t key, key_len; /* the key as JSON text, quotes included, in bytes */
    uint32_t node;         /* the value's node                               */
    uint32_t next_req;     /* index (within the object) of the first required
                            * property at or after this one; n when none     */
    bool     required;
} jg_prop;

typedef struct jg_lit { uint32_t off, len; } jg_lit;  /* text in bytes        */

typedef struct jg_grammar {
    jg_node  *nodes;  uint32_t n_nodes, cap_nodes;
    jg_prop  *props;  uint32_t n_props, cap_props;
    jg_lit   *lits;   uint32_t n_lits,  cap_lits;
    uint32_t *alts;   uint32_t n_alts,  cap_alts;
    uint8_t  *bytes;  uint32_t n_bytes, cap_bytes;
    uint32_t root;    /* the node the whole text must match                 */
} jg_grammar;

/* Built-in nodes every grammar starts with. */
enum {
    JG_NODE_ANY = 0, JG_NODE_STRING, JG_NODE_NUMBER, JG_NODE_BOOL, JG_NODE_NULL,
    JG_NODE_ANY_MAP, JG_NODE_ANY_ARRAY, JG_N_BUILTIN
};

/* A grammar holding only the built-in nodes, root JG_NODE_ANY. Free with
 * jg_grammar_free. */
int  jg_grammar_new(jg_grammar **out, slm_err *err);
void jg_grammar_free(jg_grammar *g);
/* The "any JSON object" grammar (root JG_NODE_ANY_MAP). */
int  jg_grammar_any_object(jg_grammar **out, slm_err *err);

/* Builders (json_schema.c). Each returns 0 or SLM_ENOMEM / SLM_ERANGE with
 * err set, and writes the new index. */
int jg_add_node(jg_grammar *g, const jg_node *n, uint32_t *idx, slm_err *err);
int jg_add_bytes(jg_grammar *g, const void *p, size_t len, uint32_t *off, slm_err *err);
/* Appends texts[0..n) (lens[i] bytes each) as one sorted, deduplicated block
 * of literals; *first and *count describe it. */
int jg_add_lits(jg_grammar *g, const char *const *texts, const size_t *lens, uint32_t n,
                uint32_t *first, uint32_t *count, slm_err *err);
int jg_add_alts(jg_grammar *g, const uint32_t *alts, uint32_t n, uint32_t *first, slm_err *err);
int jg_add_props(jg_grammar *g, const jg_prop *props, uint32_t n, uint32_t *first, slm_err *err);

/* ---- states -------------------------------------------------------------- */

typedef struct jg_frame {
    uint32_t node;    /* grammar node this frame reads                       */
    uint8_t  kind;    /* frame kind (json_grammar.c)                         */
    uint8_t  phase;   /* where in that kind of value we are                  */
    uint16_t x;       /* small counter: digits, key/literal position, UTF-8  */
    uint32_t a, b;    /* per kind: counts, candidate sets, ranges            */
} jg_frame;

typedef struct jg_thread {
    uint8_t depth;    /* frames in use                                       */
    uint8_t ws;       /* length of the whitespace run just read              */
    uint8_t nest;     /* open objects and arrays                             */
    uint8_t pad;
    jg_frame f[];     /* f[0] is the root frame, f[depth-1] the top          */
} jg_thread;

#define JG_THREAD_MAX_BYTES (sizeof(jg_thread) + JG_MAX_FRAMES * sizeof(jg_frame))
/* Bytes of threads a state holds: 32 threads up to ~28 open containers deep,
 * fewer when deeper (a step drops a thread that would not fit). */
#define JG_STATE_CAP        16384
_Static_assert(JG_STATE_CAP >= 2 * JG_THREAD_MAX_BYTES, "a state must hold a thread at full depth");

typedef struct jg_state {
    uint32_t n_threads;  /* live threads; 0: the text read is not a prefix   */
    uint32_t used;       /* bytes of buf they occupy                         */
    _Alignas(8) uint8_t buf[JG_STATE_CAP];
} jg_state;

/* The state before any byte: one thread expecting g->root. */
void jg_state_init(const jg_grammar *g, jg_state *s);
void jg_state_copy(jg_state *dst, const jg_state *src);
/* out = in after byte c (in and out must differ). out->n_threads is 0 when
 * no thread could take c. */
void jg_step(const jg_grammar *g, const jg_state *in, uint8_t c, jg_state *out);
/* True when some thread has read a complete value. */
bool jg_done(const jg_grammar *g, const jg_state *s);
/* Splits s into the threads that sit inside a string between characters (no
 * escape or UTF-8 sequence pending) — into str, with *room the most
 * characters any of them may still add (JG_UNBOUNDED when unlimited, -1 when
 * str is empty) — and the others, into rest. Any run of characters that is
 * valid UTF-8 without '"', '\\' or control bytes is accepted by str exactly
 * when it fits in *room. */
void jg_split_strings(const jg_grammar *g, const jg_state *s, jg_state *str, jg_state *rest, int64_t *room);

#endif
