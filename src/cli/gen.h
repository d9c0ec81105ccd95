/*
 * gen.h — the CLI's generation loop shared by `run` and `chat`: feeds a
 * prompt (reusing the KV cache's common prefix), samples until an
 * end-of-generation token, a stop string, the token limit or a full
 * context, and streams complete UTF-8 text as it goes. Stop strings are
 * held back until they can no longer match, so they never reach the output.
 */
#ifndef SLM_CLI_GEN_H
#define SLM_CLI_GEN_H

#include <stdio.h>
#include "slm/slm.h"

typedef struct gen_opts {
    int32_t n_predict;            /* < 0: until EOG or a full context        */
    slm_sample_params sample;
    const char *const *stops; int32_t n_stops;
} gen_opts;

typedef struct gen_state {
    int32_t *tokens; int32_t n_tokens, cap;  /* what the KV cache holds (seq 0) */
} gen_state;

typedef struct gen_result {
    int32_t n_prompt, n_reused, n_gen;
    double t_prompt_s, t_gen_s;
    const char *finish;           /* "stop", "length", "context"             */
    char *text;                   /* generated text (slm_free)               */
} gen_result;

/* Runs prompt → completion; output is streamed to out (may be NULL).
 * Returns 0, or 1 after printing an error. */
int gen_run(slm_ctx *ctx, const slm_vocab *v, gen_state *st, const int32_t *prompt, int32_t n_prompt,
            const gen_opts *o, FILE *out, gen_result *res);
void gen_state_free(gen_state *st);

#endif
