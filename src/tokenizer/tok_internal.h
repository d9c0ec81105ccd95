/*
 * tok_internal.h — what the tokenizer's files share: the full struct
 * slm_vocab, the growable scratch buffers, and the functions each file
 * exports to the others (vocab.c builds and looks up, pretok.c splits with
 * the pre-tokenizer regexes, spm.c and bpe.c turn a text fragment into ids,
 * special.c drives slm_tokenize, detok.c turns ids back into bytes).
 *
 * Nothing here is visible outside src/tokenizer/.
 */
#ifndef SLM_TOKENIZER_TOK_INTERNAL_H
#define SLM_TOKENIZER_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/vocab.h"

enum tok_kind { TOK_SPM = 1, TOK_BPE = 2 };

/* Per-token flags besides the token type. */
enum {
    TOKF_LSTRIP = 1,   /* special token eats ASCII whitespace on its left   */
    TOKF_RSTRIP = 2,   /* … and on its right                                */
    TOKF_EOG    = 4,   /* ends generation                                   */
    TOKF_UNUSED = 8,   /* control token marked unused ("…unused…")          */
};

#define TOK_MAX_REGEX 8

/* A growable byte buffer (offsets into it stay valid when it grows). */
typedef struct tok_buf {
    char  *p;      /* storage (slm_malloc), NULL when empty   */
    size_t len;    /* bytes used                              */
    size_t cap;    /* bytes allocated                         */
} tok_buf;

int  tok_buf_reserve(tok_buf *b, size_t extra);          /* 0 or SLM_ENOMEM */
int  tok_buf_put(tok_buf *b, const void *s, size_t n);   /* 0 or SLM_ENOMEM */
void tok_buf_free(tok_buf *b);

/* One BPE merge "a b" with its rank; a and b live in slm_vocab.merge_text. */
typedef struct tok_merge {
    uint32_t a_off, a_len;   /* left part                          */
    uint32_t b_off, b_len;   /* right part                         */
    uint64_t hash;           /* hash of (a, b)                     */
} tok_merge;                 /* rank = index in slm_vocab.merges  */

/* A pre-tokenizer: the regexes applied one after the other (llama.cpp's
 * regex_exprs) and the settings llama.cpp ties to it. */
typedef struct tok_pretok_def {
    const char *const *names;   /* NULL-terminated aliases ("llama3", …)      */
    const char *const *regexes; /* NULL-terminated, PCRE2 syntax              */
    bool ignore_merges;         /* a word that is a whole token skips merges  */
    bool add_bos;               /* default for add_bos_token                  */
} tok_pretok_def;

struct slm_vocab {
    int      kind;              /* TOK_SPM or TOK_BPE                          */
    char    *pre;               /* pre-tokenizer name (owned)                  */
    int32_t  n_tokens;
    tok_buf  text;              /* token texts, each followed by a NUL         */
    uint32_t *tok_off;          /* [n_tokens] offset of the text in text.p     */
    uint32_t *tok_len;          /* [n_tokens] text length in bytes             */
    float    *score;            /* [n_tokens] SentencePiece scores (0 for BPE) */
    uint8_t  *type;             /* [n_tokens] enum slm_token_type              */
    uint8_t  *flags;            /* [n_tokens] TOKF_*                           */

    int32_t  *tok_slots;        /* open-addressing table text → id, -1 empty   */
    uint64_t  tok_mask;         /* table size - 1 (power of two)               */

    tok_buf    merge_text;      /* bytes of every merge part                   */
    tok_merge *merges;          /* [n_merges], index = rank                    */
    int32_t    n_merges, cap_merges;
    int32_t   *merge_slots;     /* open-addressing table (a, b) → rank         */
    uint64_t   merge_mask;

    int32_t bos, eos, eot, eom, unk, pad;   /* -1 when none                    */
    bool add_bos, add_eos;      /* tokenize adds BOS / EOS when asked          */
    bool add_space_prefix;      /* SPM: a space before the first fragment      */
    bool ignore_merges;         /* BPE: whole-word token lookup first          */

    int32_t *special;           /* CONTROL/USER_DEFINED/UNKNOWN ids, longest   */
    int32_t  n_special;         /*   text first (llama.cpp's special cache)    */
    int32_t  byte_tok[256];     /* SPM byte fallback token per byte, -1 none   */

    /* byte-level BPE (GPT-2) byte ↔ unicode mapping */
    char     byte_enc[256][2];  /* UTF-8 of the code point for each byte       */
    uint8_t  byte_enc_len[256]; /* 1 or 2                                      */
    int16_t  cp_to_byte[324];   /* code point → byte, -1 when unmapped          */

    const tok_pretok_def *pre_def;          /* BPE pre-tokenizer               */
    pcre2_general_context *pcre_gctx;       /* routes PCRE2 memory to slm_malloc */
    pcre2_code *re[TOK_MAX_REGEX];          /* compiled pre_def->regexes       */
    int n_re;
};

/* ---- vocab.c: building ---------------------------------------------------- */
/* A fresh empty vocabulary of the given kind with n_tokens slots. */
int  tok_vocab_new(int kind, int32_t n_tokens, slm_vocab **out, slm_err *err);
/* Stores token id's text (copied), score and type. */
int  tok_vocab_set_token(slm_vocab *v, int32_t id, const char *text, size_t len,
                         float score, int type, slm_err *err);
/* Appends a merge (rank = merges so far). */
int  tok_vocab_add_merge(slm_vocab *v, const char *a, size_t alen, const char *b,
                         size_t blen, slm_err *err);
/* Sets the pre-tokenizer by name (BPE); SLM_EUNSUPPORTED names an unknown one. */
int  tok_vocab_set_pre(slm_vocab *v, const char *name, size_t len, slm_err *err);
/* After tokens/merges/special ids are set: builds the lookup tables, the
 * special-token cache, the EOG set and compiles the regexes. */
int  tok_vocab_finish(slm_vocab *v, slm_err *err);

/* ---- vocab.c: lookups ----------------------------------------------------- */
int32_t tok_vocab_find(const slm_vocab *v, const char *text, size_t len); /* -1 */
int32_t tok_merge_rank(const slm_vocab *v, const char *a, size_t alen,
                       const char *b, size_t blen);                      /* -1 */
static inline const char *tok_text(const slm_vocab *v, int32_t id) {
    return v->text.p + v->tok_off[id];
}

/* ---- unicode.c ------------------------------------------------------------ */
/* Length of the UTF-8 sequence a lead byte announces (1 for invalid bytes),
 * as llama.cpp's unicode_len_utf8. */
static inline size_t tok_utf8_len(unsigned char c) {
    static const unsigned char lookup[16] = { 1,1,1,1,1,1,1,1,1,1,1,1,2,2,3,4 };
    return lookup[c >> 4];
}
/* Checks that s[0..len) is valid UTF-8; on failure returns false and sets
 * *bad to the offset of the first byte of the invalid sequence. */
bool tok_utf8_valid(const char *s, size_t len, size_t *bad);
/* Length of the complete, valid UTF-8 sequence at s (n bytes available):
 * > 0 a valid sequence of that length, 0 a valid but incomplete prefix,
 * < 0 invalid: -k means the first k bytes form the maximal bad subpart. */
int  tok_utf8_check(const unsigned char *s, size_t n);
/* Encodes code point cp; returns the byte count (1..4). */
int  tok_utf8_encode(uint32_t cp, char out[4]);
/* Fills v->byte_enc/byte_enc_len/cp_to_byte with GPT-2's bytes_to_unicode. */
void tok_byte_map_init(slm_vocab *v);

/* ---- pretok.c ------------------------------------------------------------- */
const tok_pretok_def *tok_pretok_find(const char *name, size_t len);
/* Name of the pre-tokenizer whose regex is the given Hugging Face Split
 * pattern, or NULL. */
const char *tok_pretok_from_hf_regex(const char *pattern);
int  tok_pretok_compile(slm_vocab *v, slm_err *err);
void tok_pretok_free(slm_vocab *v);

/* A list of [start, end) byte spans (the words of a fragment). */
typedef struct tok_spans {
    size_t *se;     /* pairs: start0, end0, start1, end1, …   */
    size_t  n;      /* number of spans                         */
    size_t  cap;    /* size_t slots allocated (2 per span)     */
} tok_spans;

/* ---- work.c: per-call scratch ---------------------------------------------- */
typedef struct tok_sym {
    int32_t prev, next;   /* neighbours in the chain, -1 at the ends */
    uint32_t start;       /* byte offset in the word                  */
    uint32_t n;           /* bytes (0: merged into its left)          */
} tok_sym;

typedef struct tok_bigram {
    double   key;         /* lower pops first: -score (SPM) or rank (BPE) */
    int32_t  left, right; /* symbol indices                               */
    uint32_t size;        /* bytes of left + right when queued            */
} tok_bigram;

/* The output sink: counts every id, stores the first cap. */
typedef struct tok_out {
    int32_t *ids;
    int64_t  cap;
    int64_t  n;
} tok_out;

static inline void tok_out_push(tok_out *o, int32_t id) {
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

typedef struct tok_work {
    tok_buf    buf;       /* escaped / byte-encoded text of a fragment or word */
    tok_sym   *syms;   size_t n_syms, cap_syms;
    tok_bigram *heap;  size_t n_heap, cap_heap;
    tok_spans  spans, spans2;                 /* pre-tokenizer word lists      */
    pcre2_match_data *md;                     /* PCRE2 match data              */
} tok_work;

void tok_work_free(tok_work *w);
int  tok_syms_reserve(tok_work *w, size_t n);
/* Splits s[0, n) into one symbol per UTF-8 character, linked as a list
 * (the starting point of both SentencePiece and BPE merging); resets the
 * merge heap. SLM_ENOMEM on failure. */
int  tok_syms_init(tok_work *w, const char *s, size_t n);
int  tok_heap_push(tok_work *w, tok_bigram b);
tok_bigram tok_heap_pop(tok_work *w);
int  tok_spans_push(tok_spans *s, size_t start, size_t end);

/* ---- pretok.c: splitting ------------------------------------------------- */
/* Splits text[0..len) into words with v's regexes; result in w->spans. */
int  tok_pretok_split(const slm_vocab *v, tok_work *w, const char *text, size_t len,
                      slm_err *err);

/* ---- spm.c / bpe.c -------------------------------------------------------- */
/* SentencePiece: tokenizes one raw fragment (space prefix added when
 * add_prefix, spaces escaped to U+2581). */
int tok_spm_fragment(const slm_vocab *v, tok_work *w, const char *text, size_t len,
                     bool add_prefix, tok_out *out, slm_err *err);
/* Byte-level BPE: pre-tokenizes one raw fragment, byte-encodes each word and
 * merges by rank. */
int tok_bpe_fragment(const slm_vocab *v, tok_work *w, const char *text, size_t len,
                     tok_out *out, slm_err *err);

#endif
