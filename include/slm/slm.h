/*
 * slm.h — the public contract of the slm engine library.
 *
 * The engine loads a GGUF model (mmapped read-only), tokenizes text with the
 * model's own vocabulary, runs the forward pass with a KV cache and samples
 * tokens. The CLI, the server, the evaluator and the trainer all use it
 * through this header. Everything under src/ is private.
 *
 * Conventions: functions return 0 or a negative SLM_E* code and write results
 * through out-parameters; an slm_err filled by the callee carries the human
 * message. Every *_free accepts NULL. Objects are opaque.
 */
#ifndef SLM_SLM_H
#define SLM_SLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes -------------------------------------------------------- */
enum {
    SLM_OK           =  0,
    SLM_EINVAL       = -1,  /* bad argument or bad input from a user            */
    SLM_ENOMEM       = -2,  /* allocation failed                                */
    SLM_EIO          = -3,  /* open/read/mmap/write failed                      */
    SLM_EFORMAT      = -4,  /* malformed or truncated file                      */
    SLM_EUNSUPPORTED = -5,  /* valid input that slm does not handle (yet)       */
    SLM_ERANGE       = -6,  /* a size or count out of range (context full, …)   */
    SLM_ENOTFOUND    = -7,  /* a named thing (key, tensor, template) is absent  */
    SLM_EBUSY        = -8,  /* a bounded queue or pool is full: try later      */
    SLM_ETIMEDOUT    = -9,  /* a deadline passed                               */
    SLM_ECANCELED    = -10, /* the caller cancelled                            */
};

/* Error context: the callee writes the code and one line of text. */
typedef struct slm_err {
    int  code;        /* last status, 0 when none                              */
    char msg[512];    /* one line naming what is wrong, "" when none            */
} slm_err;

const char *slm_strerror(int code);

/* ---- model --------------------------------------------------------------- */
typedef struct slm_model slm_model;
typedef struct slm_vocab slm_vocab;

typedef struct slm_model_params {
    bool vocab_only;          /* load the vocabulary, skip weights          */
    bool prefault;            /* touch every mapped page at load (warm-up)  */
    /* Where the matrix weights live: SLM_WEIGHTS_RESIDENT (the default)
     * copies them at load into anonymous huge-page memory (faster
     * generation, ~0.1-0.3 s/GB more load time); SLM_WEIGHTS_MMAP reads them
     * from the file mapping (pages shared with other processes). The
     * default params take SLM_WEIGHTS=mmap from the environment. */
    int  weights;
    int  load_threads;        /* threads for the copy; <= 0: all cores       */
} slm_model_params;

enum { SLM_WEIGHTS_RESIDENT = 0, SLM_WEIGHTS_MMAP = 1 };

slm_model_params slm_model_default_params(void);

/* Opens and validates a GGUF file. On success *out owns the mapping; free it
 * with slm_model_free. On failure err says what is wrong with the file. */
int  slm_model_load(const char *path, const slm_model_params *params,
                    slm_model **out, slm_err *err);
void slm_model_free(slm_model *model);

/* Describes the model in a few fields (valid while the model lives). */
typedef struct slm_model_info {
    const char *arch;          /* "llama", "qwen2", "qwen3", "phi3"          */
    const char *name;          /* general.name or ""                         */
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim;
    int32_t n_ctx_train;       /* context length from metadata               */
    int32_t n_rot;             /* rotary dimensions                          */
    float   rope_freq_base, rms_eps;
    bool    tied_output;       /* output projection shares token_embd        */
    uint64_t n_params;         /* weight elements                            */
    uint64_t file_size;        /* bytes                                      */
    uint64_t tensor_bytes;     /* bytes of tensor data                       */
    const char *chat_template; /* tokenizer.chat_template or NULL            */
    int32_t n_tensors;
    int32_t type_count[40];    /* tensors per GGUF type id                   */
} slm_model_info;

void slm_model_get_info(const slm_model *model, slm_model_info *info);
const slm_vocab *slm_model_vocab(const slm_model *model);
const char *slm_type_name(int type);  /* GGUF tensor type id to name ("q4_K") */

/* ---- vocabulary ---------------------------------------------------------- */
int32_t slm_vocab_n_tokens(const slm_vocab *v);
int32_t slm_vocab_bos(const slm_vocab *v);   /* -1 when none */
int32_t slm_vocab_eos(const slm_vocab *v);   /* -1 when none */
bool    slm_vocab_add_bos(const slm_vocab *v);
bool    slm_vocab_is_eog(const slm_vocab *v, int32_t token); /* EOS, EOT, … */
const char *slm_vocab_kind(const slm_vocab *v); /* "llama" (SPM) or "gpt2" (BPE) */
const char *slm_vocab_pre(const slm_vocab *v);  /* pre-tokenizer name        */

/* Tokenizes len bytes of UTF-8 text. add_bos: prepend BOS if the vocabulary
 * uses one. parse_special: match special/added tokens as whole tokens.
 * Writes at most cap ids to out and the count needed to *n_out; returns
 * SLM_ERANGE (with *n_out set) when cap is too small, SLM_EINVAL for invalid
 * UTF-8. */
int slm_tokenize(const slm_vocab *v, const char *text, size_t len,
                 bool add_bos, bool parse_special,
                 int32_t *out, int32_t cap, int32_t *n_out, slm_err *err);

/* The raw bytes of one token (byte-fallback tokens decoded, SentencePiece
 * word marks turned into spaces, byte-level BPE mapped back to bytes).
 * Returns the byte count, or a negative code; writes at most cap bytes. */
int slm_token_to_bytes(const slm_vocab *v, int32_t token, char *buf, size_t cap);

/* Token text as stored in the vocabulary (not decoded: "<s>", "▁the",
 * "<0x0A>"); NULL if out of range. Valid while the vocabulary lives. */
const char *slm_vocab_token_text(const slm_vocab *v, int32_t id, size_t *len);

/* Streaming detokenizer: feeds tokens, emits only complete UTF-8 sequences,
 * drops the leading space SentencePiece adds after BOS. */
typedef struct slm_detok slm_detok;
int  slm_detok_new(const slm_vocab *v, slm_detok **out);
/* Appends the text that token completes to buf (NUL-terminated, at most cap
 * bytes incl. NUL); returns bytes written. */
int  slm_detok_push(slm_detok *d, int32_t token, char *buf, size_t cap);
int  slm_detok_flush(slm_detok *d, char *buf, size_t cap); /* pending bytes */
void slm_detok_free(slm_detok *d);
/* at_start true (the default): the next piece starts a text, so a
 * SentencePiece leading space is dropped; false: what follows continues a
 * text (streaming only the generated tokens after a prompt). */
void slm_detok_set_at_start(slm_detok *d, bool at_start);

/* ---- inference context --------------------------------------------------- */
typedef struct slm_ctx slm_ctx;

typedef struct slm_ctx_params {
    int32_t n_ctx;       /* max positions per sequence, 0: the model's training context */
    int32_t n_threads;   /* 0: all online cores                                   */
    int32_t n_batch;     /* tokens per forward chunk, 0: 512                      */
    int32_t n_seq;       /* sequence slots in the KV cache, 0: 1                  */
    bool    kv_f32;      /* keep K/V in F32 (default F16: half the memory)        */
    int32_t kv_block;    /* positions per KV block, 0: 32                         */
    size_t  kv_mem;      /* KV pool budget in bytes, 0: room for every sequence
                          * at full context (n_seq × n_ctx positions)             */
} slm_ctx_params;

slm_ctx_params slm_ctx_default_params(void);
int  slm_ctx_new(slm_model *model, const slm_ctx_params *params, slm_ctx **out, slm_err *err);
void slm_ctx_free(slm_ctx *ctx);
int32_t slm_ctx_n_ctx(const slm_ctx *ctx);
int32_t slm_ctx_n_seq(const slm_ctx *ctx);

/* One forward pass over tokens of one or more sequences (continuous
 * batching). Entry i is token[i] at position pos[i] of sequence seq[i]; a
 * sequence's entries must be consecutive positions in order, the first at
 * most the sequence's current length (earlier positions stay cached, later
 * ones are overwritten). logits[i] != 0 asks for entry i's logits (NULL:
 * only the last entry); they are written as rows of n_vocab in entry order.
 * KV blocks are reserved for the whole batch first: SLM_EBUSY (nothing
 * changed) when the pool cannot hold it, SLM_ERANGE when a sequence would
 * pass n_ctx. */
typedef struct slm_batch {
    int32_t n_tokens;
    const int32_t *token, *pos, *seq;
    const int8_t  *logits;
} slm_batch;
int slm_decode_batch(slm_ctx *ctx, const slm_batch *batch, float *logits, slm_err *err);

/* Single-sequence convenience: n tokens of seq at pos0 … pos0+n-1. If
 * logits_all, writes n × n_vocab logits; otherwise the last position's. */
int slm_decode(slm_ctx *ctx, int32_t seq, const int32_t *tokens, int32_t n,
               int32_t pos0, bool logits_all, float *logits, slm_err *err);

/* Forgets positions >= pos of sequence seq (pos 0 clears it, freeing its
 * blocks). */
void slm_kv_truncate(slm_ctx *ctx, int32_t seq, int32_t pos);
/* Positions sequence seq holds. */
int32_t slm_kv_seq_len(const slm_ctx *ctx, int32_t seq);
/* Sequence dst forgets its positions and shares the first n_pos of src
 * (prefix caching: the blocks are shared, copied only when written). */
void slm_kv_share(slm_ctx *ctx, int32_t dst, int32_t src, int32_t n_pos);
/* Blocks needed to grow seq to pos_end positions, and the pool's state. */
int32_t slm_kv_blocks_needed(const slm_ctx *ctx, int32_t seq, int32_t pos_end);
typedef struct slm_kv_stats { int32_t block_tokens, blocks_total, blocks_free; size_t bytes; } slm_kv_stats;
void slm_kv_get_stats(const slm_ctx *ctx, slm_kv_stats *st);

/* ---- sampling ------------------------------------------------------------ */
typedef struct slm_logit_bias { int32_t token; float bias; } slm_logit_bias;

typedef struct slm_sample_params {
    float    temp;              /* 0: greedy (argmax)                        */
    int32_t  top_k;             /* 0: off                                    */
    float    top_p;             /* 1: off                                    */
    float    min_p;             /* 0: off                                    */
    float    repeat_penalty;    /* 1: off (llama.cpp style, divides logits)  */
    int32_t  repeat_last_n;     /* window for the penalties, 64 default      */
    float    frequency_penalty; /* 0: off (OpenAI style)                     */
    float    presence_penalty;  /* 0: off                                    */
    uint64_t seed;              /* same seed, same tokens                    */
    const slm_logit_bias *logit_bias; int32_t n_logit_bias;
} slm_sample_params;

typedef struct slm_sampler slm_sampler;
slm_sample_params slm_sample_default_params(void);
int  slm_sampler_new(const slm_sample_params *p, int32_t n_vocab, slm_sampler **out);
/* Records an accepted token (prompt or generated) for the penalties. */
void slm_sampler_accept(slm_sampler *s, int32_t token);
/* Picks a token from n_vocab logits (modified in place). */
int32_t slm_sampler_sample(slm_sampler *s, float *logits);
void slm_sampler_free(slm_sampler *s);

/* ---- chat templates ------------------------------------------------------ */
typedef struct slm_chat_msg { const char *role; const char *content; } slm_chat_msg;

/* Template families slm renders. */
typedef enum slm_chat_family {
    SLM_CHAT_UNKNOWN = 0, SLM_CHAT_LLAMA2, SLM_CHAT_LLAMA3, SLM_CHAT_CHATML,
    SLM_CHAT_PHI3, SLM_CHAT_MISTRAL, SLM_CHAT_GEMMA, SLM_CHAT_ZEPHYR,
} slm_chat_family;

/* Recognises a Jinja chat template string; SLM_CHAT_UNKNOWN if none fits. */
slm_chat_family slm_chat_detect(const char *tmpl);
/* Family by name ("llama2", "llama3", "chatml", "phi3", "mistral", "gemma",
 * "zephyr"); SLM_CHAT_UNKNOWN for other names. */
slm_chat_family slm_chat_family_from_name(const char *name);
const char *slm_chat_family_name(slm_chat_family f);
/* Renders messages into *out (caller frees it with slm_free).
 * add_assistant: end with the assistant turn's opening. bos/eos are the
 * vocabulary's BOS/EOS text, used by templates that spell them out. */
int slm_chat_render(slm_chat_family f, const slm_chat_msg *msgs, int32_t n_msgs,
                    bool add_assistant, const char *bos, const char *eos,
                    char **out, slm_err *err);

/* ---- memory accounting --------------------------------------------------- */
size_t slm_mem_used(void);  /* bytes currently allocated through slm */
void   slm_free(void *p);    /* frees what slm handed out as "caller frees" */

#ifdef __cplusplus
}
#endif
#endif
