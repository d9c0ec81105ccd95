/*
 * ppl_opts.h — the window options that perplexity, kld and quant-report
 * share (--ctx/-c, --stride, --chunks, -t), parsed in one place.
 */
#ifndef SLM_CLI_PPL_OPTS_H
#define SLM_CLI_PPL_OPTS_H

#include <stdbool.h>

#include "quality/ppl.h"

/* If `a` is one of the shared options, parses its value v into pp (setting
 * *ctx_given for --ctx) and returns true; *rc is then 0, or the usage
 * status (2) already printed for a bad value. Returns false for any other
 * option. stride: whether --stride is accepted. */
bool cli_ppl_option(const char *cmd, const char *a, const char *v, bool stride, slm_ppl_params *pp, bool *ctx_given,
                    int *rc);

#endif
