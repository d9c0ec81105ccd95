/* gen.c — see gen.h. */
#include "cli/gen.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
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

typedef struct textbuf { char *p; size_t len, cap, sent; } textbuf;

static int tb_add(textbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        while (nc < b->len + n + 1) nc *= 2;
        char *np = slm_realloc(b->p, nc);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* Emits what can no longer be part of a stop string; returns 1 if a stop
 * string was found (text is cut there). */
static int flush_text(textbuf *b, const gen_opts *o, FILE *out, int final) {
    size_t safe = b->len;
    for (int32_t i = 0; i < o->n_stops; i++) {
        const char *s = o->stops[i];
        size_t sl = strlen(s);
        if (!sl) continue;
        char *hit = memmem(b->p + (b->sent > sl ? b->sent - sl : 0), b->len - (b->sent > sl ? b->sent - sl : 0), s, sl);
        if (hit) {
            size_t cut = (size_t)(hit - b->p);
            if (cut > b->sent && out) fwrite(b->p + b->sent, 1, cut - b->sent, out);
            b->len = cut;
            b->p[cut] = 0;
            b->sent = cut;
            if (out) fflush(out);
            return 1;
        }
        if (!final) /* hold back the longest suffix that is a prefix of s */
            for (size_t k = sl - 1; k > 0; k--)
                if (k <= b->len && !memcmp(b->p + b->len - k, s, k)) {
                    if (b->len - k < safe) safe = b->len - k;
                    break;
                }
    }
    if (safe > b->sent) {
        if (out) {
            fwrite(b->p + b->sent, 1, safe - b->sent, out);
            fflush(out);
        }
        b->sent = safe;
    }
    return 0;
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
    textbuf tb = { 0 };
    int rc = 1;
    slm_err err = { 0 };
    if (!logits || slm_sampler_new(&o->sample, n_vocab, &smp) || slm_detok_new(v, &dt)) {
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
        if (n > 0 && tb_add(&tb, piece, (size_t)n)) { cli_fail("out of memory"); goto done; }
        if (flush_text(&tb, o, out, 0)) { stopped = true; break; }
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
        if (n > 0) tb_add(&tb, piece, (size_t)n);
        flush_text(&tb, o, out, 1);
    }
    res->t_gen_s = now_s() - t1;
    res->text = tb.p ? tb.p : slm_strdup("");
    tb.p = NULL;
    rc = 0;
done:
    slm_free(tb.p);
    slm_free(logits);
    slm_sampler_free(smp);
    slm_detok_free(dt);
    return rc;
}
