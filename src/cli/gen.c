/* gen.c — see gen.h. */
#include "cli/gen.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "sample/stop.h"
#include "util/alloc.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void gen_state_free(gen_state *st) {
    slm_free(st->tokens);
    memset(st, 0, sizeof *st);
}

static int push_tok(gen_state *st, int32_t t) {
    if (st->n_tokens == st->cap) {
        int32_t nc = st->cap ? st->cap * 2 : 256;
        int32_t *n = slm_realloc(st->tokens, (size_t)nc * sizeof *n);
        if (!n) return -1;
        st->tokens = n;
        st->cap = nc;
    }
    st->tokens[st->n_tokens++] = t;
    return 0;
}

static void emit(slm_stopper *sp, FILE *out, bool final) {
    const char *t;
    size_t n;
    slm_stopper_take(sp, final, &t, &n);
    if (out && n) {
        fwrite(t, 1, n, out);
        fflush(out);
    }
}

int gen_run(slm_ctx *ctx, const slm_vocab *v, gen_state *st, const int32_t *prompt, int32_t n_prompt,
            const gen_opts *o, FILE *out, gen_result *res) {
    memset(res, 0, sizeof *res);
    res->finish = "stop";
    int32_t n_ctx = slm_ctx_n_ctx(ctx), n_vocab = slm_vocab_n_tokens(v);
    if (n_prompt <= 0) return cli_fail("the prompt is empty");
    if (n_prompt >= n_ctx)
        return cli_fail("the prompt has %d tokens but the context holds %d; shorten it or raise --ctx", n_prompt, n_ctx);
    /* reuse the cached prefix; at least the last prompt token is recomputed */
    int32_t keep = 0;
    while (keep < st->n_tokens && keep < n_prompt - 1 && st->tokens[keep] == prompt[keep]) keep++;
    slm_kv_truncate(ctx, 0, keep);
    st->n_tokens = keep;
    float *logits = slm_malloc((size_t)n_vocab * sizeof *logits);
    slm_sampler *smp = NULL;
    slm_detok *dt = NULL;
    slm_stopper *sp = slm_stopper_new(o->stops, o->n_stops);
    int rc = 1;
    slm_err err = { 0 };
    if (!logits || !sp || slm_sampler_new(&o->sample, n_vocab, &smp) || slm_detok_new(v, &dt)) {
        cli_fail("out of memory");
        goto done;
    }
    /* generated text continues the prompt, unless the prompt holds no text */
    slm_detok_set_at_start(dt, n_prompt == 1 && prompt[0] == slm_vocab_bos(v));
    for (int32_t i = 0; i < n_prompt; i++) slm_sampler_accept(smp, prompt[i]);
    double t0 = now_s();
    if (slm_decode(ctx, 0, prompt + keep, n_prompt - keep, keep, false, logits, &err)) {
        cli_fail("%s", err.msg);
        goto done;
    }
    for (int32_t i = keep; i < n_prompt; i++)
        if (push_tok(st, prompt[i])) { cli_fail("out of memory"); goto done; }
    res->n_prompt = n_prompt;
    res->n_reused = keep;
    double t1 = now_s();
    res->t_prompt_s = t1 - t0;
    char piece[512];
    bool stopped = false;   /* a stop string ended the text: nothing follows it */
    for (;;) {
        if (o->n_predict >= 0 && res->n_gen >= o->n_predict) { res->finish = "length"; break; }
        int32_t tok = slm_sampler_sample(smp, logits);
        if (slm_vocab_is_eog(v, tok)) break;
        slm_sampler_accept(smp, tok);
        res->n_gen++;
        int n = slm_detok_push(dt, tok, piece, sizeof piece);
        int hit = n > 0 ? slm_stopper_push(sp, piece, (size_t)n) : 0;
        if (hit < 0) { cli_fail("out of memory"); goto done; }
        emit(sp, out, false);
        if (hit) { stopped = true; break; }
        if (o->n_predict >= 0 && res->n_gen >= o->n_predict) { res->finish = "length"; break; }
        if (st->n_tokens >= n_ctx) { res->finish = "context"; break; }
        /* the cache and st->tokens advance together */
        if (slm_decode(ctx, 0, &tok, 1, st->n_tokens, false, logits, &err)) {
            cli_fail("%s", err.msg);
            goto done;
        }
        if (push_tok(st, tok)) { cli_fail("out of memory"); goto done; }
    }
    if (!stopped) {
        int n = slm_detok_flush(dt, piece, sizeof piece);
        if (n > 0) slm_stopper_push(sp, piece, (size_t)n);
    }
    emit(sp, out, true);
    res->t_gen_s = now_s() - t1;
    res->text = slm_strdup(slm_stopper_text(sp, NULL));
    if (!res->text) { cli_fail("out of memory"); goto done; }
    rc = 0;
done:
    slm_stopper_free(sp);
    slm_free(logits);
    slm_sampler_free(smp);
    slm_detok_free(dt);
    return rc;
}
