/*
 * perplexity.c — `slm perplexity`: how well a model predicts a text.
 *
 * The text is tokenized whole (BOS first when the vocabulary adds it) and
 * cut into windows of --ctx tokens, each decoded from an empty cache with
 * BOS at its start. With the default stride (= ctx) the second half of each
 * window is scored — window positions ctx/2+1 … ctx−1, i.e. 255 tokens per
 * 512-token window — exactly the tokens llama-perplexity -c CTX scores, so
 * the two programs' numbers compare. --stride S < ctx slides the window by S
 * tokens and scores its last S tokens (llama-perplexity --ppl-stride S -c C
 * uses windows of C+S/2). The computation lives in quality/ppl.c; this file
 * parses options, prints the running PPL per window and the result:
 * `PPL = x ± y` (± the standard error of the mean NLL carried to PPL, as
 * llama.cpp prints) with a 95% confidence interval, or one JSON object.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/ppl_opts.h"
#include "quality/ppl.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/progress.h"

typedef struct ppl_view {
    slm_progress bar;
    bool json;
    int32_t n_ctx;
} ppl_view;

static int on_window(void *ud, int32_t n_done, int32_t n_windows, const slm_ppl_result *r) {
    ppl_view *v = ud;
    if (!v->json) {
        slm_progress_end(&v->bar);  /* clears the bar so the line starts clean */
        printf("[%d/%d] PPL %.4f\n", n_done, n_windows, r->ppl);
        fflush(stdout);
    }
    slm_progress_set(&v->bar, (int64_t)n_done * v->n_ctx);
    return 0;
}

int cmd_perplexity(int argc, char **argv) {
    const char *path = NULL, *file = NULL;
    slm_ppl_params pp = slm_ppl_default_params();
    bool json = false, ctx_given = false;
    int orc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!v) return cli_usage("perplexity", "unknown or incomplete option '%s'", a);
        i++;
        if (!strcmp(a, "-m")) path = v;
        else if (!strcmp(a, "-f")) file = v;
        else if (cli_ppl_option("perplexity", a, v, true, &pp, &ctx_given, &orc)) {
            if (orc) return orc;
        } else return cli_usage("perplexity", "unknown option '%s'", a);
    }
    if (!path || !file) return cli_usage("perplexity", "-m MODEL and -f TEXT are required");
    if (pp.stride > pp.n_ctx) return cli_usage("perplexity", "--stride %d is longer than --ctx %d", pp.stride, pp.n_ctx);
    char *text = NULL;
    int32_t *ids = NULL, n_ids = 0;
    slm_model *m = NULL;
    int rc = 1;
    if (!(text = cli_read_file(file, NULL))) goto done;
    if (!(m = cli_load_model(path, false))) goto done;
    slm_model_info in;
    slm_model_get_info(m, &in);
    if (!ctx_given && in.n_ctx_train > 0 && in.n_ctx_train < pp.n_ctx) pp.n_ctx = in.n_ctx_train;
    if (pp.n_ctx > in.n_ctx_train && in.n_ctx_train > 0)
        fprintf(stderr, "slm: warning: --ctx %d is longer than the model's training context of %d\n", pp.n_ctx,
                in.n_ctx_train);
    if (cli_tokenize(slm_model_vocab(m), text, true, false, &ids, &n_ids)) goto done;
    slm_ppl_plan plan;
    slm_err err = { 0 };
    if (slm_ppl_plan_init(&plan, &pp, n_ids, slm_ppl_model_bos(m), &err)) {
        cli_fail("%s: %s", file, err.msg);
        goto done;
    }
    if (!json)
        printf("perplexity of %s on %s: %d tokens; %d windows of %d, stride %d, scoring the last %d tokens of each%s\n",
               path, file, n_ids, plan.n_windows, plan.n_ctx, plan.stride, plan.n_scored,
               plan.bos >= 0 ? " (BOS first)" : "");
    ppl_view view = { .json = json, .n_ctx = plan.n_ctx };
    slm_progress_begin(&view.bar, "perplexity", "tok", (int64_t)plan.n_windows * plan.n_ctx);
    slm_ppl_result r;
    int st = slm_ppl_run(m, ids, n_ids, &pp, on_window, &view, &r, &err);
    slm_progress_end(&view.bar);
    if (st) {
        cli_fail("%s", err.msg);
        goto done;
    }
    double tps = r.seconds > 0 ? (double)r.n_evaluated / r.seconds : 0;
    if (json) {
        slm_jw w = { 0 };
        slm_jw_obj_open(&w);
        slm_ppl_result_json(&w, &r);
        slm_jw_key(&w, "ctx");
        slm_jw_int(&w, plan.n_ctx);
        slm_jw_key(&w, "stride");
        slm_jw_int(&w, plan.stride);
        slm_jw_key(&w, "n_chunks");
        slm_jw_int(&w, r.n_windows);
        slm_jw_key(&w, "model");
        slm_jw_str(&w, path);
        slm_jw_key(&w, "seconds");
        slm_jw_num(&w, r.seconds);
        slm_jw_key(&w, "tokens_per_s");
        slm_jw_num(&w, tps);
        slm_jw_obj_close(&w);
        char *s = slm_jw_take(&w, NULL);
        if (!s) {
            cli_fail("out of memory");
            goto done;
        }
        printf("%s\n", s);
        slm_free(s);
    } else {
        printf("PPL = %.4f ± %.4f   95%% CI [%.4f, %.4f]\n", r.ppl, r.ppl_stderr, r.ppl_ci95[0], r.ppl_ci95[1]);
        printf("mean NLL %.5f ± %.5f nats over %lld tokens; %lld tokens evaluated in %.2f s (%.1f tok/s)\n", r.nll_mean,
               r.nll_stderr, (long long)r.n_tokens, (long long)r.n_evaluated, r.seconds, tps);
    }
    rc = 0;
done:
    slm_free(text);
    slm_free(ids);
    slm_model_free(m);
    return rc;
}

bool cli_ppl_option(const char *cmd, const char *a, const char *v, bool stride, slm_ppl_params *pp, bool *ctx_given,
                    int *rc) {
    *rc = 0;
    if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
        if (!cli_parse_i32(v, 4, 1 << 20, &pp->n_ctx)) *rc = cli_usage(cmd, "--ctx wants 4..1048576");
        *ctx_given = true;
    } else if (stride && !strcmp(a, "--stride")) {
        if (!cli_parse_i32(v, 1, 1 << 20, &pp->stride)) *rc = cli_usage(cmd, "--stride wants a positive number");
    } else if (!strcmp(a, "--chunks")) {
        if (!cli_parse_i32(v, 1, 1 << 30, &pp->n_chunks)) *rc = cli_usage(cmd, "--chunks wants a positive number");
    } else if (!strcmp(a, "-t")) {
        if (!cli_parse_i32(v, 1, 512, &pp->n_threads)) *rc = cli_usage(cmd, "-t wants 1..512");
    } else {
        return false;
    }
    return true;
}
