/*
 * vocab.h — the tokenizer module's private contract (the public part is in
 * slm.h: slm_tokenize, slm_token_to_bytes, slm_detok_*, slm_vocab_*).
 *
 * A vocabulary is built from GGUF metadata (tokenizer.ggml.*): SentencePiece
 * ("llama") or byte-level BPE ("gpt2") with the pre-tokenizer named by
 * tokenizer.ggml.pre. Token strings point into the GGUF mapping or into the
 * vocabulary's own storage; token texts are copied, so the vocabulary does
 * not depend on the slm_gguf it was loaded from.
 */
#ifndef SLM_TOKENIZER_VOCAB_H
#define SLM_TOKENIZER_VOCAB_H

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "slm/slm.h"

/* Token attribute bits, from tokenizer.ggml.token_type. */
enum slm_token_type {
    SLM_TOKTYPE_UNDEFINED = 0, SLM_TOKTYPE_NORMAL = 1, SLM_TOKTYPE_UNKNOWN = 2,
    SLM_TOKTYPE_CONTROL = 3, SLM_TOKTYPE_USER_DEFINED = 4, SLM_TOKTYPE_UNUSED = 5,
    SLM_TOKTYPE_BYTE = 6,
};

/* Loads the vocabulary of g. Errors name the key that is missing or wrong
 * (SLM_EUNSUPPORTED names an unknown tokenizer model or pre-tokenizer). */
int  slm_vocab_load(const slm_gguf *g, slm_vocab **out, slm_err *err);
void slm_vocab_free(slm_vocab *v);

int32_t slm_vocab_token_type(const slm_vocab *v, int32_t id);
int32_t slm_vocab_eot(const slm_vocab *v);  /* -1 when none */

/* Loads a Hugging Face tokenizer.json — byte-level BPE (model.vocab,
 * model.merges, added_tokens, the pre_tokenizer's Split regex) or
 * SentencePiece-style BPE ("▁" for spaces, byte fallback; read as a
 * SentencePiece vocabulary scored by merge rank) — and, when they lie beside
 * it, tokenizer_config.json (bos/eos/pad tokens, add_bos/add_eos_token,
 * add_prefix_space) and config.json / generation_config.json (BOS and EOS
 * ids the former does not name). The vocabulary owns all its data; free it
 * with slm_vocab_free. */
int  slm_vocab_load_hf(const char *tokenizer_json_path, slm_vocab **out, slm_err *err);

/* Reads and parses a JSON file (up to 1 GiB) into a cJSON tree the caller
 * frees with cJSON_Delete. SLM_ENOTFOUND when the file cannot be opened (so
 * optional files can be skipped), SLM_EFORMAT naming the byte where the JSON
 * goes wrong. Shared with src/convert (config.json and friends). */
struct cJSON;
int  slm_hf_json_load(const char *path, struct cJSON **out, slm_err *err);

/* Writes v as GGUF tokenizer.ggml.* keys — model ("llama" or "gpt2"), pre,
 * tokens, token_type, scores (SentencePiece) or merges (BPE), BOS/EOS/UNK/PAD
 * ids, add_bos/add_eos_token, add_space_prefix — padded with unused
 * "[PAD<id>]" tokens up to n_tokens (the model's embedding rows).
 * SLM_EFORMAT when v has more than n_tokens tokens. */
int  slm_vocab_write_gguf(const slm_vocab *v, slm_gguf_writer *w, int32_t n_tokens, slm_err *err);


#endif
