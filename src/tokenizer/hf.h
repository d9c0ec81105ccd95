/*
 * hf.h — what the two halves of the Hugging Face tokenizer.json reader
 * share: hf.c reads the file, the vocabulary, added tokens and
 * tokenizer_config.json and builds byte-level BPE; hf_spm.c recognises a
 * SentencePiece-style BPE file (Llama 2, TinyLlama, Mistral, Phi-3: "▁" for
 * spaces, byte fallback) and turns its merge list into SentencePiece scores.
 *
 * Nothing here is visible outside src/tokenizer/.
 */
#ifndef SLM_TOKENIZER_HF_H
#define SLM_TOKENIZER_HF_H

#include <cJSON.h>

#include "tokenizer/tok_internal.h"

/* One entry of model.merges, either "a b" or ["a", "b"]: its two parts
 * (pointing into the cJSON tree). False when it is neither. */
bool tok_hf_merge_parts(const cJSON *m, const char **a, size_t *alen, const char **b, size_t *blen);

/* True when the file is SentencePiece-style BPE: no ByteLevel step, and a
 * normalizer that replaces ' ' with U+2581 or a Metaspace pre-tokenizer.
 * *add_space_prefix: whether a "▁" is put before the text (a Prepend
 * normalizer, or Metaspace's prepend_scheme / add_prefix_space). */
bool tok_hf_spm_style(const cJSON *root, bool *add_space_prefix);

/* Before tok_vocab_finish: <0xXX> tokens become BYTE, model.unk_token
 * becomes the UNKNOWN token (v->unk). */
int tok_hf_spm_prepare(slm_vocab *v, const cJSON *model, const char *path, slm_err *err);

/* After tok_vocab_finish (token lookups work): scores from the merge list.
 * A token made by merge rank r scores -r (its first merge when several make
 * it), every other token -(n_merges + 1), so SentencePiece's
 * highest-score-first merging applies the merges in rank order. */
int tok_hf_spm_scores(slm_vocab *v, const cJSON *merges, const char *path, slm_err *err);

#endif
