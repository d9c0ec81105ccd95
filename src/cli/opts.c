/* opts.c — see opts.h. */
#include "cli/opts.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat/prompt.h"
#include "cli/cli.h"
#include "util/alloc.h"

void run_opts_init(run_opts *o) {
    memset(o, 0, sizeof *o);
    o->stats = true;
    o->gen.n_predict = 128;
    o->gen.sample = slm_sample_default_params();
    o->gen.sample.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    o->gen.stops = o->stops;
}

#define NEED_VALUE()                                                              \
    do {                                                                          \
        if (*i + 1 >= argc) return cli_usage(cmd, "%s needs a value", a), 2;      \
        v = argv[++*i];                                                           \
    } while (0)

int run_opts_parse(const char *cmd, run_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v = NULL;
    slm_sample_params *sp = &o->gen.sample;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED_VALUE(); o->model = v; }
    else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { NEED_VALUE(); o->prompt = v; }
    else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { NEED_VALUE(); o->file = v; }
    else if (!strcmp(a, "--system")) { NEED_VALUE(); o->system = v; }
    else if (!strcmp(a, "--chat-template")) { NEED_VALUE(); o->tmpl = v; }
    else if (!strcmp(a, "--chat")) o->chat = true;
    else if (!strcmp(a, "--no-stats")) o->stats = false;
    else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
        NEED_VALUE();
        if (!cli_parse_i32(v, -1, 1 << 24, &o->gen.n_predict)) return cli_usage(cmd, "-n wants -1 or a count"), 2;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        NEED_VALUE();
        if (!cli_parse_i32(v, 1, 512, &o->threads)) return cli_usage(cmd, "-t wants 1..512"), 2;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
        NEED_VALUE();
        if (!cli_parse_i32(v, 1, 1 << 24, &o->n_ctx)) return cli_usage(cmd, "--ctx wants a positive count"), 2;
    } else if (!strcmp(a, "--temp")) {
        NEED_VALUE();
        if (!cli_parse_f32(v, 0, 100, &sp->temp)) return cli_usage(cmd, "--temp wants 0..100"), 2;
    } else if (!strcmp(a, "--top-k")) {
        NEED_VALUE();
        if (!cli_parse_i32(v, 0, 1 << 24, &sp->top_k)) return cli_usage(cmd, "--top-k wants a count >= 0"), 2;
    } else if (!strcmp(a, "--top-p")) {
        NEED_VALUE();
        if (!cli_parse_f32(v, 0, 1, &sp->top_p)) return cli_usage(cmd, "--top-p wants 0..1"), 2;
    } else if (!strcmp(a, "--min-p")) {
        NEED_VALUE();
        if (!cli_parse_f32(v, 0, 1, &sp->min_p)) return cli_usage(cmd, "--min-p wants 0..1"), 2;
    } else if (!strcmp(a, "--repeat-penalty")) {
        NEED_VALUE();
        if (!cli_parse_f32(v, 0, 10, &sp->repeat_penalty)) return cli_usage(cmd, "--repeat-penalty wants 0..10"), 2;
    } else if (!strcmp(a, "--repeat-last-n")) {
        NEED_VALUE();
        if (!cli_parse_i32(v, 0, 1 << 20, &sp->repeat_last_n)) return cli_usage(cmd, "--repeat-last-n wants a count"), 2;
    } else if (!strcmp(a, "--frequency-penalty")) {
        NEED_VALUE();
        if (!cli_parse_f32(v, -2, 2, &sp->frequency_penalty)) return cli_usage(cmd, "--frequency-penalty wants -2..2"), 2;
    } else if (!strcmp(a, "--presence-penalty")) {
        NEED_VALUE();
        if (!cli_parse_f32(v, -2, 2, &sp->presence_penalty)) return cli_usage(cmd, "--presence-penalty wants -2..2"), 2;
    } else if (!strcmp(a, "--seed")) {
        NEED_VALUE();
        if (!cli_parse_u64(v, &sp->seed)) return cli_usage(cmd, "--seed wants an unsigned integer"), 2;
        o->seed_given = true;
    } else if (!strcmp(a, "--stop")) {
        NEED_VALUE();
        if (o->gen.n_stops >= MAX_STOPS) return cli_usage(cmd, "at most %d --stop strings", MAX_STOPS), 2;
        if (!*v) return cli_usage(cmd, "--stop wants a non-empty string"), 2;
        o->stops[o->gen.n_stops++] = v;
    } else {
        return 0;
    }
    return 1;
}

slm_chat_family run_opts_family(const run_opts *o, const slm_model *m) {
    if (o->tmpl) {
        slm_chat_family f = slm_chat_family_from_name(o->tmpl);
        if (!f) cli_fail("unknown chat template '%s' (llama2, llama3, chatml, phi3, mistral, gemma, zephyr)", o->tmpl);
        return f;
    }
    slm_model_info in;
    slm_model_get_info(m, &in);
    if (!in.chat_template) {
        cli_fail("the model has no chat template; name one with --chat-template NAME");
        return SLM_CHAT_UNKNOWN;
    }
    slm_chat_family f = slm_chat_detect(in.chat_template);
    if (!f) cli_fail("the model's chat template is not one slm recognises; name one with --chat-template NAME");
    return f;
}

int render_and_tokenize(const slm_model *m, slm_chat_family fam, const slm_chat_msg *msgs, int32_t n,
                        int32_t **ids, int32_t *n_ids) {
    slm_err err = { 0 };
    if (slm_prompt_chat(m, fam, msgs, n, ids, n_ids, NULL, &err))
        return cli_fail("cannot render or tokenize the chat: %s", err.msg[0] ? err.msg : slm_strerror(err.code));
    return 0;
}

/* Without --ctx, run and chat take the model's trained context up to
 * RUN_DEFAULT_CTX (as llama-cli does): the KV cache of a 128k-context model
 * would otherwise cost gigabytes and seconds before the first token. */
#define RUN_DEFAULT_CTX 4096

slm_ctx *run_opts_ctx(const run_opts *o, slm_model *m) {
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_threads = o->threads;
    cp.n_ctx = o->n_ctx;
    if (!cp.n_ctx) {
        slm_model_info in;
        slm_model_get_info(m, &in);
        cp.n_ctx = in.n_ctx_train > 0 && in.n_ctx_train < RUN_DEFAULT_CTX ? in.n_ctx_train : RUN_DEFAULT_CTX;
    }
    slm_ctx *ctx = NULL;
    slm_err err = { 0 };
    if (slm_ctx_new(m, &cp, &ctx, &err)) {
        cli_fail("%s", err.msg);
        return NULL;
    }
    return ctx;
}
