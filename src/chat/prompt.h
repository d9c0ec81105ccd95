/*
 * prompt.h — from text or chat messages to the token ids of a prompt, with
 * the errors in an slm_err instead of on stderr, so the CLI and the server
 * share one path: the CLI prints the message, the server answers with it.
 */
#ifndef SLM_CHAT_PROMPT_H
#define SLM_CHAT_PROMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "slm/slm.h"

/* Tokenizes len bytes of text into a new array (*ids, caller frees with
 * slm_free; *n_ids tokens). SLM_EINVAL for invalid UTF-8, SLM_ENOMEM. */
int slm_prompt_tokenize(const slm_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special,
                        int32_t **ids, int32_t *n_ids, slm_err *err);

/* Renders msgs with family fam (the vocabulary's BOS/EOS texts) and
 * tokenizes the text with special tokens parsed and BOS added unless the
 * rendered text already starts with it. *ids: caller frees (slm_free).
 * If text is not NULL, *text receives the rendered prompt (slm_free). */
int slm_prompt_chat(const slm_model *m, slm_chat_family fam, const slm_chat_msg *msgs, int32_t n,
                    int32_t **ids, int32_t *n_ids, char **text, slm_err *err);

#endif
