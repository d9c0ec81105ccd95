/*
 * imatrix.c — `slm imatrix -m MODEL -f TEXT -o FILE`: runs the model over
 * the text in chunks of --ctx tokens (each chunk a fresh sequence starting
 * with BOS when the vocabulary uses one) and writes, for every weight
 * matrix, the mean squared input activation per column (src/quant/
 * imatrix.c collects them through the forward pass's matmul observer).
 * Also reports the text's perplexity, a check that the model and text fit.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "quant/imatrix.h"
#include "util/alloc.h"
#include "util/progress.h"

/* Adds the negative log-likelihoods of tokens[1..n) under logits[0..n-1). */
static double chunk_nll(const float *logits, const int32_t *tokens, int32_t n, int32_t n_vocab) {
    double nll = 0;
    for (int32_t i = 0; i + 1 < n; i++) {
        const float *l = logits + (size_t)i * (size_t)n_vocab;
        float mx = l[0];
        for (int32_t v = 1; v < n_vocab; v++) mx = l[v] > mx ? l[v] : mx;
        double s = 0;
        for (int32_t v = 0; v < n_vocab; v++) s += exp((double)(l[v] - mx));
        nll += log(s) + mx - l[tokens[i + 1]];
    }
    return nll;
}

int cmd_imatrix(int argc, char **argv) {
    const char *model_path = NULL, *text_path = NULL, *out_path = NULL;
    int32_t n_ctx = 512, max_chunks = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-m") && has) model_path = argv[++i];
        else if (!strcmp(a, "-f") && has) text_path = argv[++i];
        else if (!strcmp(a, "-o") && has) out_path = argv[++i];
        else if ((!strcmp(a, "--ctx") || !strcmp(a, "-c")) && has) {
            if (!cli_parse_i32(argv[++i], 2, 1 << 20, &n_ctx)) return cli_usage("imatrix", "--ctx wants 2..1048576");
        } else if (!strcmp(a, "--chunks") && has) {
            if (!cli_parse_i32(argv[++i], 1, 1 << 30, &max_chunks)) return cli_usage("imatrix", "--chunks wants a positive count");
        } else if (!strcmp(a, "-t") && has) {
            if (!cli_parse_i32(argv[++i], 1, 512, &threads)) return cli_usage("imatrix", "-t wants 1..512");
        } else return cli_usage("imatrix", "unknown or incomplete option '%s'", a);
    }
    if (!model_path || !text_path || !out_path) return cli_usage("imatrix", "-m MODEL, -f TEXT and -o FILE are required");

    int rc = 1;
    char *text = NULL;
    slm_model *m = NULL;
    slm_ctx *ctx = NULL;
    slm_imatrix *im = NULL;
    int32_t *ids = NULL, *chunk = NULL, n_ids = 0;
    float *logits = NULL;
    slm_err err = { 0 };
    double t0 = slm_now();
    if (!(text = cli_read_file(text_path, NULL))) goto done;
    if (!(m = cli_load_model(model_path, false))) goto done;
    const slm_vocab *v = slm_model_vocab(m);
    if (cli_tokenize(v, text, false, false, &ids, &n_ids)) goto done;
    bool bos = slm_vocab_add_bos(v) && slm_vocab_bos(v) >= 0;
    int32_t per = bos ? n_ctx - 1 : n_ctx; /* text tokens per chunk */
    if (n_ids == 0) {
        cli_fail("%s: the text has no tokens", text_path);
        goto done;
    }
    int32_t n_chunks = (n_ids + per - 1) / per;
    if (max_chunks && n_chunks > max_chunks) n_chunks = max_chunks;
    slm_model_info info;
    slm_model_get_info(m, &info);
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_threads = threads;
    if (slm_ctx_new(m, &cp, &ctx, &err)) {
        cli_fail("%s", err.msg);
        goto done;
    }
    im = slm_imatrix_new();
    chunk = slm_malloc((size_t)n_ctx * sizeof *chunk);
    logits = slm_malloc((size_t)n_ctx * (size_t)info.n_vocab * sizeof *logits);
    if (!im || !chunk || !logits) {
        cli_fail("out of memory for %d × %d logits", n_ctx, info.n_vocab);
        goto done;
    }
    slm_imatrix_attach(im, ctx);
    slm_progress pr;
    slm_progress_begin(&pr, "imatrix", "chunks", n_chunks);
    double nll = 0;
    int64_t n_pred = 0;
    for (int32_t c = 0; c < n_chunks; c++) {
        int32_t start = c * per, n_text = n_ids - start < per ? n_ids - start : per, n = 0;
        if (bos) chunk[n++] = slm_vocab_bos(v);
        memcpy(chunk + n, ids + start, (size_t)n_text * sizeof *chunk);
        n += n_text;
        slm_kv_truncate(ctx, 0, 0);
        if (slm_decode(ctx, 0, chunk, n, 0, true, logits, &err) || slm_imatrix_status(im, &err)) {
            slm_progress_end(&pr);
            cli_fail("%s", err.msg);
            goto done;
        }
        nll += chunk_nll(logits, chunk, n, info.n_vocab);
        n_pred += n - 1;
        slm_progress_add(&pr, 1);
    }
    slm_progress_end(&pr);
    slm_imatrix_attach(NULL, ctx);
    if (slm_imatrix_set_info(im, text_path, n_chunks, n_ctx) || slm_imatrix_save(im, out_path, &err)) {
        cli_fail("%s", err.msg[0] ? err.msg : "out of memory");
        goto done;
    }
    fprintf(stderr, "slm imatrix: %d entries from %d chunks of up to %d tokens (%lld tokens), perplexity %.3f, %.1f s -> %s\n",
            slm_imatrix_n_entries(im), n_chunks, n_ctx, (long long)(n_pred + n_chunks), n_pred ? exp(nll / (double)n_pred) : 0.0,
            slm_now() - t0, out_path);
    rc = 0;
done:
    slm_imatrix_free(im);
    slm_free(logits);
    slm_free(chunk);
    slm_free(ids);
    slm_free(text);
    slm_ctx_free(ctx);
    slm_model_free(m);
    return rc;
}
