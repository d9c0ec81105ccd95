/*
 * kld.c — `slm kld`: what quantization changed in a model's predictions.
 *
 * Both models (--base and -m) are loaded in this process and run over the
 * same windows of the same tokenized text (the base's tokenizer; the two
 * vocabularies must be identical), window by window, so memory holds two
 * models, two contexts and two windows of logits. Windows and scored tokens
 * are perplexity's (see perplexity.c / quality/ppl.h: by default the second
 * half of each --ctx window, as llama-perplexity --kl-divergence scores).
 * Per scored token: KL(base ‖ quant) from full softmaxes, top-1 agreement,
 * NLL under each; reported as mean KLD ± its standard error, median, 99th
 * percentile and maximum, top-1 agreement, each model's PPL and their
 * ratio, and the mean change of the correct token's probability. The
 * computation lives in quality/kld.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/ppl_opts.h"
#include "quality/kld.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/progress.h"

typedef struct kld_view {
    slm_progress bar;
    bool json;
    int32_t n_ctx;
} kld_view;

static int on_window(void *ud, int32_t n_done, int32_t n_windows, const slm_kld_result *r) {
    kld_view *v = ud;
    if (!v->json) {
        slm_progress_end(&v->bar);
        printf("[%d/%d] PPL %.4f  base %.4f  ratio %.5f  KLD %.6f  top-1 %.2f%%\n", n_done, n_windows, r->quant.ppl,
               r->base.ppl, r->ppl_ratio, r->kld_mean, 100.0 * r->top1_agreement);
        fflush(stdout);
    }
    slm_progress_set(&v->bar, (int64_t)n_done * v->n_ctx);
    return 0;
}

int cmd_kld(int argc, char **argv) {
    const char *base_path = NULL, *path = NULL, *file = NULL;
    slm_ppl_params pp = slm_ppl_default_params();
    bool json = false, ctx_given = false;
    int orc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!v) return cli_usage("kld", "unknown or incomplete option '%s'", a);
        i++;
        if (!strcmp(a, "--base")) base_path = v;
        else if (!strcmp(a, "-m")) path = v;
        else if (!strcmp(a, "-f")) file = v;
        else if (cli_ppl_option("kld", a, v, true, &pp, &ctx_given, &orc)) {
            if (orc) return orc;
        } else return cli_usage("kld", "unknown option '%s'", a);
    }
    if (!base_path || !path || !file) return cli_usage("kld", "--base BASE, -m MODEL and -f TEXT are required");
    if (pp.stride > pp.n_ctx) return cli_usage("kld", "--stride %d is longer than --ctx %d", pp.stride, pp.n_ctx);
    char *text = NULL;
    int32_t *ids = NULL, n_ids = 0;
    slm_model *mb = NULL, *mq = NULL;
    int rc = 1;
    slm_err err = { 0 };
    if (!(text = cli_read_file(file, NULL))) goto done;
    if (!(mb = cli_load_model(base_path, false)) || !(mq = cli_load_model(path, false))) goto done;
    if (slm_kld_vocab_check(mb, mq, &err)) {
        cli_fail("%s and %s: %s", base_path, path, err.msg);
        goto done;
    }
    slm_model_info in;
    slm_model_get_info(mb, &in);
    if (!ctx_given && in.n_ctx_train > 0 && in.n_ctx_train < pp.n_ctx) pp.n_ctx = in.n_ctx_train;
    if (pp.n_ctx > in.n_ctx_train && in.n_ctx_train > 0)
        fprintf(stderr, "slm: warning: --ctx %d is longer than the model's training context of %d\n", pp.n_ctx,
                in.n_ctx_train);
    if (cli_tokenize(slm_model_vocab(mb), text, true, false, &ids, &n_ids)) goto done;
    slm_ppl_plan plan;
    if (slm_ppl_plan_init(&plan, &pp, n_ids, slm_ppl_model_bos(mb), &err)) {
        cli_fail("%s: %s", file, err.msg);
        goto done;
    }
    if (!json)
        printf("kld of %s against %s on %s: %d tokens; %d windows of %d, scoring the last %d tokens of each\n", path,
               base_path, file, n_ids, plan.n_windows, plan.n_ctx, plan.n_scored);
    kld_view view = { .json = json, .n_ctx = plan.n_ctx };
    slm_progress_begin(&view.bar, "kld", "tok", (int64_t)plan.n_windows * plan.n_ctx);
    slm_kld_result r;
    int st = slm_kld_run(mb, mq, ids, n_ids, &pp, on_window, &view, &r, &err);
    slm_progress_end(&view.bar);
    if (st) {
        cli_fail("%s", err.msg);
        goto done;
    }
    if (json) {
        slm_jw w = { 0 };
        slm_jw_obj_open(&w);
        slm_kld_result_json(&w, &r);
        slm_jw_key(&w, "ctx");
        slm_jw_int(&w, plan.n_ctx);
        slm_jw_key(&w, "n_chunks");
        slm_jw_int(&w, r.n_windows);
        slm_jw_key(&w, "base");
        slm_jw_str(&w, base_path);
        slm_jw_key(&w, "model");
        slm_jw_str(&w, path);
        slm_jw_key(&w, "seconds");
        slm_jw_num(&w, r.seconds);
        slm_jw_obj_close(&w);
        char *s = slm_jw_take(&w, NULL);
        if (!s) {
            cli_fail("out of memory");
            goto done;
        }
        printf("%s\n", s);
        slm_free(s);
    } else {
        printf("PPL(base)   = %.4f ± %.4f\n", r.base.ppl, r.base.ppl_stderr);
        printf("PPL         = %.4f ± %.4f\n", r.quant.ppl, r.quant.ppl_stderr);
        printf("PPL ratio   = %.5f ± %.5f\n", r.ppl_ratio, r.ppl_ratio_stderr);
        printf("KLD         = %.6f ± %.6f   median %.6f  p99 %.6f  max %.6f\n", r.kld_mean, r.kld_stderr, r.kld_median,
               r.kld_p99, r.kld_max);
        printf("top-1 agree = %.3f%% ± %.3f%%\n", 100.0 * r.top1_agreement, 100.0 * r.top1_stderr);
        printf("mean Δp     = %+.4f%% ± %.4f%% (probability of the correct token, quant − base)\n", 100.0 * r.dp_mean,
               100.0 * r.dp_stderr);
        printf("%lld tokens scored in %.2f s\n", (long long)r.n_tokens, r.seconds);
    }
    rc = 0;
done:
    slm_free(text);
    slm_free(ids);
    slm_model_free(mq);
    slm_model_free(mb);
    return rc;
}
