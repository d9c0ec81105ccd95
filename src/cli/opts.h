/*
 * opts.h — options shared by `run` and `chat`: model, threads, context,
 * sampling, chat template, stop strings.
 */
#ifndef SLM_CLI_OPTS_H
#define SLM_CLI_OPTS_H

#include "cli/gen.h"

#define MAX_STOPS 16

typedef struct run_opts {
    const char *model, *prompt, *file, *system, *tmpl;
    int32_t threads, n_ctx;
    bool chat, stats, seed_given;
    gen_opts gen;
    const char *stops[MAX_STOPS];
} run_opts;

void run_opts_init(run_opts *o);
/* Consumes argv[*i] (and its value); returns 1 if taken, 0 if not ours,
 * 2 after printing a usage error. */
int run_opts_parse(const char *cmd, run_opts *o, int argc, char **argv, int *i);

/* Picks the chat family: --chat-template NAME, else the model's template;
 * prints an error and returns SLM_CHAT_UNKNOWN when neither works. */
slm_chat_family run_opts_family(const run_opts *o, const slm_model *m);
/* Renders msgs and tokenizes them (special tokens parsed, BOS added unless
 * the rendered text already starts with it). Returns 0 or 1 (printed). */
int render_and_tokenize(const slm_model *m, slm_chat_family fam, const slm_chat_msg *msgs, int32_t n,
                        int32_t **ids, int32_t *n_ids);
/* Creates the context for o (threads, ctx); prints errors. */
slm_ctx *run_opts_ctx(const run_opts *o, slm_model *m);

#endif
