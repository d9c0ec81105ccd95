/*
 * speed.c — prompt and generation speed for the quantization report (see
 * speed.h). The tokens are a fixed pseudo-random sequence over the whole
 * vocabulary, so every quantization of a model sees the same input.
 */
#include "quality/speed.h"

#include <string.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/progress.h"

#define N_TIMED 3   /* timed runs per test; the fastest is reported */

static int timed(slm_ctx *ctx, const int32_t *toks, int32_t n, bool batch, float *logits, double *secs, slm_err *err) {
    slm_kv_truncate(ctx, 0, 0);
    double t0 = slm_now();
    int rc = 0;
    if (batch)
        rc = slm_decode(ctx, 0, toks, n, 0, false, logits, err);
    else
        for (int32_t i = 0; i < n && !rc; i++) rc = slm_decode(ctx, 0, &toks[i], 1, i, false, logits, err);
    *secs = slm_now() - t0;
    return rc;
}

int slm_speed_measure(slm_model *model, int32_t n_pp, int32_t n_tg, int32_t n_threads, slm_speed *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    if (n_pp < 0 || n_tg < 0 || n_pp > 65536 || n_tg > 65536)
        return slm_err_set(err, SLM_EINVAL, "speed test of %d prompt and %d generated tokens", n_pp, n_tg);
    slm_model_info in;
    slm_model_get_info(model, &in);
    int32_t n_max = n_pp > n_tg ? n_pp : n_tg;
    if (n_max == 0) return 0;
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_threads = n_threads;
    cp.n_ctx = n_max;
    cp.n_batch = n_pp > 0 ? n_pp : 1;
    slm_ctx *ctx = NULL;
    int32_t *toks = slm_malloc((size_t)n_max * sizeof *toks);
    float *logits = slm_malloc((size_t)in.n_vocab * sizeof *logits);
    int rc;
    if (!toks || !logits) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t s = 12345;
    for (int32_t i = 0; i < n_max; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((s >> 33) % (uint64_t)in.n_vocab);
    }
    if ((rc = slm_ctx_new(model, &cp, &ctx, err))) goto done;
    double secs;
    if (n_pp > 0) {
        if ((rc = timed(ctx, toks, n_pp, true, logits, &secs, err))) goto done;   /* warm-up */
        for (int r = 0; r < N_TIMED; r++) {
            if ((rc = timed(ctx, toks, n_pp, true, logits, &secs, err))) goto done;
            if (secs > 0 && n_pp / secs > out->pp_tps) out->pp_tps = n_pp / secs;
        }
        out->n_pp = n_pp;
    }
    if (n_tg > 0) {
        int32_t warm = n_tg < 8 ? n_tg : 8;
        if ((rc = timed(ctx, toks, warm, false, logits, &secs, err))) goto done;
        for (int r = 0; r < N_TIMED; r++) {
            if ((rc = timed(ctx, toks, n_tg, false, logits, &secs, err))) goto done;
            if (secs > 0 && n_tg / secs > out->tg_tps) out->tg_tps = n_tg / secs;
        }
        out->n_tg = n_tg;
    }
done:
    slm_ctx_free(ctx);
    slm_free(toks);
    slm_free(logits);
    return rc;
}
