/*
 * test_sched.c — the continuous-batching scheduler without HTTP: batching
 * changes no result, prefix caching, echo log-probabilities, stop strings,
 * limits, cancellation, a full queue, and pausing when KV memory runs out.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "serve/sched.h"

#define SHAPE "--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 96 --vocab-size 300 --scale 0.3"

static slm_model *load(const char *path) {
    slm_model *m = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_model_load(path, NULL, &m, &err), 0, "%s", err.msg);
    return m;
}

static slm_sched *start(slm_model *m, int32_t parallel, int32_t queue, size_t kv_mem, int32_t step) {
    sched_params p = sched_default_params();
    p.n_parallel = parallel;
    p.max_queue = queue;
    p.n_ctx = 128;
    p.kv_mem = kv_mem;
    p.n_threads = 2;
    if (step) p.step_tokens = step;
    slm_sched *s = NULL;
    slm_err err = { 0 };
    cr_assert_eq(sched_new(m, &p, &s, &err), 0, "%s", err.msg);
    return s;
}

typedef struct result {
    int32_t toks[256]; int32_t n;
    char text[4096]; size_t len;
    const char *finish;
    int32_t n_prompt, n_cached, n_gen, n_prompt_ev, err_code;
    float prompt_lp[256];
} result;

/* the synth vocabulary's end-of-text and <|im_end|> are banned so that
 * random weights generate to the limit */
static const slm_logit_bias NO_EOG[2] = { { 256, -INFINITY }, { 258, -INFINITY } };

static sched_req greedy_req(const int32_t *prompt, int32_t n, int32_t max_tokens) {
    sched_req r = { 0 };
    r.prompt = prompt;
    r.n_prompt = n;
    r.sample = slm_sample_default_params();
    r.sample.temp = 0;
    r.sample.logit_bias = NO_EOG;
    r.sample.n_logit_bias = 2;
    r.max_tokens = max_tokens;
    r.top_logprobs = -1;
    return r;
}

static void drain(sched_handle *h, result *res) {
    memset(res, 0, sizeof *res);
    for (;;) {
        sched_event ev;
        int rc = sched_next(h, 5000, &ev);
        cr_assert_eq(rc, 0, "no event within 5 s");
        if (ev.kind == SCHED_EV_PROMPT) {
            res->prompt_lp[res->n_prompt_ev++] = ev.logprob;
        } else if (ev.kind == SCHED_EV_TOKEN) {
            if (ev.token >= 0) res->toks[res->n++] = ev.token;
            memcpy(res->text + res->len, ev.text, ev.text_len);
            res->len += ev.text_len;
        } else if (ev.kind == SCHED_EV_DONE) {
            res->finish = ev.finish;
            res->n_prompt = ev.n_prompt;
            res->n_cached = ev.n_cached;
            res->n_gen = ev.n_gen;
            break;
        } else {
            res->err_code = ev.code;
            break;
        }
    }
    sched_release(h);
}

static void run_one(slm_sched *s, const sched_req *r, result *res) {
    sched_handle *h = NULL;
    slm_err err = { 0 };
    cr_assert_eq(sched_submit(s, r, &h, &err), 0, "%s", err.msg);
    drain(h, res);
}

static int32_t PROMPTS[8][12] = {
    { 256, 72, 101, 108, 108, 111 }, { 256, 84, 104, 101, 32, 113, 117 }, { 256, 65, 66 }, { 256, 1, 2, 3, 4, 5, 6, 7, 8 },
    { 256, 200, 201 }, { 256, 72, 101, 108, 108, 111, 33 }, { 256, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42 }, { 256, 9 },
};
static int32_t PLEN[8] = { 6, 7, 3, 9, 3, 7, 11, 2 };

typedef struct thread_arg { slm_sched *s; int i; result res; } thread_arg;

static void *client(void *a) {
    thread_arg *t = a;
    sched_req r = greedy_req(PROMPTS[t->i], PLEN[t->i], 24);
    sched_handle *h = NULL;
    slm_err err = { 0 };
    if (sched_submit(t->s, &r, &h, &err)) {
        t->res.err_code = -100;
        return NULL;
    }
    drain(h, &t->res);
    return NULL;
}

/* Eight concurrent greedy requests on an F32 model return exactly what the
 * same requests return one at a time. */
Test(sched, batching_changes_no_result) {
    slm_model *m = load(th_synth("llama", "f32", SHAPE));
    slm_sched *s = start(m, 8, 16, 0, 0);
    result alone[8];
    for (int i = 0; i < 8; i++) {
        sched_req r = greedy_req(PROMPTS[i], PLEN[i], 24);
        run_one(s, &r, &alone[i]);
        cr_assert_str_eq(alone[i].finish, "length");
        cr_assert_eq(alone[i].n_gen, 24);
    }
    sched_free(s);
    s = start(m, 8, 16, 0, 0); /* a fresh scheduler: nothing cached */
    thread_arg args[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (thread_arg){ .s = s, .i = i };
        pthread_create(&th[i], NULL, client, &args[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(args[i].res.err_code, 0, "request %d failed", i);
        cr_assert_eq(args[i].res.n, alone[i].n, "request %d: %d tokens vs %d", i, args[i].res.n, alone[i].n);
        for (int32_t k = 0; k < alone[i].n; k++)
            cr_assert_eq(args[i].res.toks[k], alone[i].toks[k], "request %d token %d differs", i, k);
    }
    sched_free(s);
    slm_model_free(m);
}

Test(sched, prefix_cache_reuses_the_prompt) {
    slm_model *m = load(th_synth("llama", "f32", SHAPE));
    slm_sched *s = start(m, 2, 4, 0, 0);
    result a, b;
    int32_t p[40];
    for (int i = 0; i < 40; i++) p[i] = 10 + i;
    sched_req r = greedy_req(p, 40, 8);
    run_one(s, &r, &a);
    cr_assert_eq(a.n_cached, 0);
    run_one(s, &r, &b);
    cr_assert_eq(b.n_cached, 39, "the second identical prompt reused %d tokens", b.n_cached);
    cr_assert_eq(memcmp(a.toks, b.toks, sizeof(int32_t) * 8), 0, "cached prefix changed the result");
    /* a prompt sharing the first 30 tokens */
    int32_t q[35];
    memcpy(q, p, 30 * sizeof(int32_t));
    for (int i = 30; i < 35; i++) q[i] = 200 + i;
    r = greedy_req(q, 35, 4);
    run_one(s, &r, &b);
    cr_assert_eq(b.n_cached, 30);
    sched_free(s);
    slm_model_free(m);
}

Test(sched, echo_logprobs_match_the_model) {
    slm_model *m = load(th_synth("qwen2", "f32", SHAPE));
    slm_sched *s = start(m, 2, 4, 0, 3); /* a 3-token step budget: prompt logprobs across chunks */
    int32_t p[9] = { 256, 5, 6, 7, 8, 9, 10, 11, 12 };
    sched_req r = greedy_req(p, 9, 0);
    r.echo_logprobs = true;
    result res;
    run_one(s, &r, &res);
    cr_assert_eq(res.n_prompt_ev, 9);
    cr_assert(isnan(res.prompt_lp[0]), "the first prompt token has no logprob");
    cr_assert_str_eq(res.finish, "length");
    cr_assert_eq(res.n_gen, 0);
    /* compare with a direct forward pass */
    slm_ctx *c = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_ctx_new(m, NULL, &c, &err), 0);
    float *lg = malloc(sizeof(float) * 9 * 300);
    cr_assert_eq(slm_decode(c, 0, p, 9, 0, true, lg, &err), 0, "%s", err.msg);
    for (int i = 1; i < 9; i++) {
        const float *row = lg + (i - 1) * 300;
        double mx = -1e30, sum = 0;
        for (int j = 0; j < 300; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < 300; j++) sum += exp(row[j] - mx);
        double want = row[p[i]] - mx - log(sum);
        cr_assert(fabs(res.prompt_lp[i] - want) < 1e-3, "prompt token %d: logprob %g, want %g", i, res.prompt_lp[i], want);
    }
    free(lg);
    slm_ctx_free(c);
    sched_free(s);
    slm_model_free(m);
}

Test(sched, stop_strings_and_limits) {
    slm_model *m = load(th_synth("llama", "f32", SHAPE));
    slm_sched *s = start(m, 2, 4, 0, 0);
    int32_t p[3] = { 256, 65, 66 };
    result full;
    sched_req r = greedy_req(p, 3, 30);
    run_one(s, &r, &full);
    cr_assert_eq(full.n_gen, 30);
    /* stop at a string made of the 5th and 6th generated bytes */
    if (full.len > 8 && !memchr(full.text, 0, 8)) {
        char stop[3] = { full.text[4], full.text[5], 0 };
        const char *stops[1] = { stop };
        r.stops = stops;
        r.n_stops = 1;
        result st;
        run_one(s, &r, &st);
        cr_assert_str_eq(st.finish, "stop");
        char *hit = memmem(full.text, full.len, stop, 2);
        cr_assert_eq(st.len, (size_t)(hit - full.text), "text stops right before the stop string");
        cr_assert_eq(memcmp(st.text, full.text, st.len), 0);
    }
    sched_free(s);
    slm_model_free(m);
}

Test(sched, full_queue_is_busy_and_cancel_frees) {
    slm_model *m = load(th_synth("llama", "f32", SHAPE));
    slm_sched *s = start(m, 1, 1, 0, 0);
    int32_t p[3] = { 256, 65, 66 };
    sched_req r = greedy_req(p, 3, -1); /* until the context is full */
    sched_handle *h1, *h2, *h3;
    slm_err err = { 0 };
    cr_assert_eq(sched_submit(s, &r, &h1, &err), 0);
    cr_assert_eq(sched_submit(s, &r, &h2, &err), 0);
    int rc = sched_submit(s, &r, &h3, &err);
    cr_assert_eq(rc, SLM_EBUSY, "third request: %d (%s)", rc, err.msg);
    sched_event ev;
    cr_assert_eq(sched_next(h1, 5000, &ev), 0); /* it is generating */
    sched_cancel(h1);
    sched_cancel(h2);
    for (int i = 0; i < 200 && !sched_idle(s); i++) usleep(10000);
    cr_assert(sched_idle(s), "cancelled requests did not end");
    sched_release(h1);
    sched_release(h2);
    sched_stats st;
    sched_get_stats(s, &st);
    cr_assert_eq(st.active, 0);
    sched_free(s);
    slm_model_free(m);
}

/* A KV budget for about two sequences with four running: requests are
 * paused and resumed, and every one still returns what it returns alone. */
Test(sched, pausing_when_memory_runs_out_changes_no_result) {
    slm_model *m = load(th_synth("llama", "f32", SHAPE));
    /* per position: 2 layers × 32 dims × 2 bytes × 2 (K, V) = 256 bytes; 3 blocks of 32 */
    slm_sched *s = start(m, 4, 8, 256 * 96, 0);
    result alone[4];
    for (int i = 0; i < 4; i++) {
        sched_req r = greedy_req(PROMPTS[i], PLEN[i], 40);
        run_one(s, &r, &alone[i]);
    }
    thread_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){ .s = s, .i = i };
        pthread_create(&th[i], NULL, client, &args[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(args[i].res.err_code, 0, "request %d failed (%d)", i, args[i].res.err_code);
        cr_assert_eq(args[i].res.n, alone[i].n < 24 ? alone[i].n : 24, "request %d: %d tokens", i, args[i].res.n);
        for (int32_t k = 0; k < args[i].res.n && k < alone[i].n; k++)
            cr_assert_eq(args[i].res.toks[k], alone[i].toks[k], "request %d token %d differs after pausing", i, k);
    }
    sched_free(s);
    slm_model_free(m);
}
