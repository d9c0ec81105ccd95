/*
 * sched.c — the continuous-batching loop.
 *
 * One thread owns the inference context. Each step it (1) admits queued
 * requests into free slots, giving each a KV sequence that starts from the
 * longest cached prefix of its prompt, (2) builds one batch: a token for
 * every decoding sequence first, then prompt chunks of prefilling ones
 * under the per-step token budget, oldest first, (3) runs the forward pass,
 * (4) samples, streams and finishes. When KV blocks run out, cached
 * prefixes are evicted, then the newest active request is paused (its
 * blocks freed, its tokens so far recomputed later) — never cut short.
 *
 * Sequence slots: n_parallel for active requests plus as many again that
 * keep finished requests' tokens as a prefix cache (LRU).
 *
 * Lock order: s->mu, then a handle's mu (req_emit never takes s->mu).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "serve/sched_internal.h"
#include "tokenizer/vocab.h"
#include "util/alloc.h"
#include "util/err.h"

typedef struct slot {
    sched_handle *req;        /* active request, or NULL                          */
    int32_t *tokens;          /* what the sequence's KV holds (cache slots)       */
    int32_t n_tokens, cap;
    double  used_s;           /* last use, for LRU eviction                        */
} slot;

struct slm_sched {
    slm_model *model;
    const slm_vocab *vocab;
    slm_ctx *ctx;
    sched_params p;
    int32_t n_vocab, n_seq;
    slot *slots;               /* [n_seq]                                          */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sched_handle *q_head, *q_tail; int32_t n_queued;  /* under mu                  */
    _Atomic int32_t n_active;                          /* changed by the loop only  */
    _Atomic int32_t kv_used, kv_total;                 /* published by the loop     */
    bool quit;
    int32_t n_ctx, block_tokens, pool_tokens;          /* fixed at start            */
    /* step buffers */
    int32_t *b_tok, *b_pos, *b_seq; int8_t *b_want; sched_handle **b_req; int32_t *b_row;
    float *logits, *lp;        /* [step_tokens][n_vocab], [n_vocab]                */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

sched_params sched_default_params(void) {
    sched_params p = { .n_parallel = 4, .max_queue = 64, .n_ctx = 0, .kv_mem = 0, .n_threads = 0,
                       .step_tokens = 512, .metrics = NULL };
    return p;
}

static void metric_add(slm_sched *s, slm_counter c, uint64_t n) { if (s->p.metrics) slm_metrics_add(s->p.metrics, c, n); }
static void metric_obs(slm_sched *s, slm_hist h, double v) { if (s->p.metrics) slm_metrics_observe(s->p.metrics, h, v); }

static void update_gauges(slm_sched *s) {
    slm_kv_stats st;
    slm_kv_get_stats(s->ctx, &st);
    atomic_store(&s->kv_used, st.blocks_total - st.blocks_free);
    atomic_store(&s->kv_total, st.blocks_total);
    if (!s->p.metrics) return;
    slm_metrics_set(s->p.metrics, SLM_GAUGE_QUEUE, s->n_queued);
    slm_metrics_set(s->p.metrics, SLM_GAUGE_ACTIVE, s->n_active);
    slm_metrics_set(s->p.metrics, SLM_GAUGE_KV_USED, st.blocks_total - st.blocks_free);
    slm_metrics_set(s->p.metrics, SLM_GAUGE_KV_TOTAL, st.blocks_total);
}

/* ---- slots and the prefix cache ---------------------------------------- */

static int slot_set_tokens(slot *sl, const int32_t *t, int32_t n) {
    if (n > sl->cap) {
        int32_t *nt = slm_realloc(sl->tokens, (size_t)n * sizeof *nt);
        if (!nt) return SLM_ENOMEM;
        sl->tokens = nt;
        sl->cap = n;
    }
    memcpy(sl->tokens, t, (size_t)n * sizeof *t);
    sl->n_tokens = n;
    return 0;
}

/* The least recently used cache slot (no request) other than `except`
 * that holds tokens if `holding`, or any such slot otherwise; -1 if none. */
static int32_t lru_slot(const slm_sched *s, int32_t except, bool holding) {
    int32_t best = -1;
    for (int32_t i = 0; i < s->n_seq; i++) {
        const slot *sl = &s->slots[i];
        if (sl->req || i == except || (holding && sl->n_tokens == 0)) continue;
        if (best < 0 || sl->used_s < s->slots[best].used_s) best = i;
    }
    return best;
}

/* Frees the least recently used cache slot's blocks; false if none holds any. */
static bool evict_one(slm_sched *s) {
    int32_t best = lru_slot(s, -1, true);
    if (best < 0) return false;
    slm_kv_truncate(s->ctx, best, 0);
    s->slots[best].n_tokens = 0;
    return true;
}

static int32_t common_prefix(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
    int32_t n = 0;
    while (n < na && n < nb && a[n] == b[n]) n++;
    return n;
}

/* Gives h a sequence slot holding the longest cached prefix of its tokens
 * (at least one token is left to compute, all of them when echoing). */
static void assign_slot(slm_sched *s, sched_handle *h) {
    int32_t limit = h->echo ? 0 : h->n_tokens - 1;
    int32_t best = -1, best_len = 0, free_slot = -1;
    for (int32_t i = 0; i < s->n_seq; i++) {
        slot *sl = &s->slots[i];
        const int32_t *t = sl->req ? sl->req->tokens : sl->tokens;
        int32_t n = sl->req ? sl->req->n_past : sl->n_tokens;
        if (!sl->req && free_slot < 0 && sl->n_tokens == 0) free_slot = i;
        int32_t l = common_prefix(t, n, h->tokens, limit);
        if (l > best_len) { best = i; best_len = l; }
    }
    int32_t seq;
    if (best >= 0 && !s->slots[best].req) { /* take over the cached sequence */
        seq = best;
        slm_kv_truncate(s->ctx, seq, best_len);
    } else {
        if (free_slot < 0) free_slot = lru_slot(s, best, false); /* not the one we share from */
        seq = free_slot;
        slm_kv_truncate(s->ctx, seq, 0);
        if (best >= 0 && best_len > 0) slm_kv_share(s->ctx, seq, best, best_len);
        else best_len = 0;
    }
    s->slots[seq].req = h;
    s->slots[seq].n_tokens = 0;
    h->seq = seq;
    h->n_past = best_len;
    if (!h->started) h->n_cached = best_len;
    h->state = REQ_PREFILL;
}

/* A finished (or paused) request leaves its slot; the KV it built stays
 * as a prefix cache entry. */
static void release_slot(slm_sched *s, sched_handle *h, bool keep_cache) {
    if (h->seq < 0) return;
    slot *sl = &s->slots[h->seq];
    sl->req = NULL;
    sl->used_s = now_s();
    if (!keep_cache || slot_set_tokens(sl, h->tokens, h->n_past)) {
        slm_kv_truncate(s->ctx, h->seq, 0);
        sl->n_tokens = 0;
    } else {
        slm_kv_truncate(s->ctx, h->seq, h->n_past);
    }
    h->seq = -1;
}

/* ---- finishing ---------------------------------------------------------- */

static void finish(slm_sched *s, sched_handle *h, const char *reason) {
    const char *t;
    size_t n;
    if (!slm_stopper_hit(h->stopper)) {
        char piece[64];
        int k = slm_detok_flush(h->detok, piece, sizeof piece);
        if (k > 0) slm_stopper_push(h->stopper, piece, (size_t)k);
    }
    slm_stopper_take(h->stopper, true, &t, &n);
    if (n) { /* held-back text released at the end */
        sched_event ev = { .kind = SCHED_EV_TOKEN, .token = -1, .text = t, .text_len = n, .logprob = NAN };
        req_emit(h, &ev);
    }
    sched_event done = { .kind = SCHED_EV_DONE, .finish = reason, .n_prompt = h->n_prompt, .n_cached = h->n_cached,
                         .n_gen = h->n_gen, .logprob = NAN, .text = "" };
    req_emit(h, &done);
    metric_obs(s, SLM_HIST_E2E, now_s() - h->arrival_s);
    h->state = REQ_DONE;
    release_slot(s, h, true);
    s->n_active--;
    req_unref(h);
}

static void fail(slm_sched *s, sched_handle *h, int code, const char *msg) {
    req_emit_error(h, code, msg);
    h->state = REQ_DONE;
    release_slot(s, h, true); /* what it computed stays a valid prefix */
    s->n_active--;
    req_unref(h);
}

/* ---- sampling ------------------------------------------------------------ */

static void log_softmax(const float *x, float *y, int32_t n) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    float lse = mx + (float)log(sum);
    for (int32_t i = 0; i < n; i++) y[i] = x[i] - lse;
}

static int32_t top_k_of(const float *lp, int32_t n, int32_t k, sched_logprob *out) {
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        if (m < k || lp[i] > out[m - 1].logprob) {
            int32_t j = m < k ? m++ : k - 1;
            while (j > 0 && out[j - 1].logprob < lp[i]) { out[j] = out[j - 1]; j--; }
            out[j] = (sched_logprob){ i, lp[i] };
        }
    }
    return m;
}

/* Log-probabilities of the prompt tokens after positions [from, to); rows
 * holds one logits row per position from `from` on. */
static void emit_prompt_logprobs(slm_sched *s, sched_handle *h, const float *rows, int32_t from, int32_t to) {
    sched_logprob top[20];
    char piece[256];
    for (int32_t p = from; p < to; p++) {
        sched_event ev = { .kind = SCHED_EV_PROMPT, .logprob = NAN };
        if (p == 0) { /* the first token has no logprob */
            ev.token = h->tokens[0];
            int n = slm_token_to_bytes(s->vocab, ev.token, piece, sizeof piece);
            ev.text = piece;
            ev.text_len = n > 0 ? (size_t)n : 0;
            req_emit(h, &ev);
        }
        if (p + 1 >= h->n_prompt) break;
        log_softmax(rows + (size_t)(p - from) * s->n_vocab, s->lp, s->n_vocab);
        ev.token = h->tokens[p + 1];
        ev.logprob = s->lp[ev.token];
        if (h->top_logprobs > 0) {
            ev.n_top = top_k_of(s->lp, s->n_vocab, h->top_logprobs, top);
            ev.top = top;
        }
        int n = slm_token_to_bytes(s->vocab, ev.token, piece, sizeof piece);
        ev.text = piece;
        ev.text_len = n > 0 ? (size_t)n : 0;
        req_emit(h, &ev);
    }
}

/* Samples the next token of h from its logits row; emits it or finishes. */
static void sample_next(slm_sched *s, sched_handle *h, float *row) {
    double t = now_s();
    if (h->constraint) slm_constraint_apply(h->constraint, row);
    sched_logprob top[20];
    int32_t n_top = 0;
    if (h->top_logprobs >= 0) log_softmax(row, s->lp, s->n_vocab);
    int32_t tok = slm_sampler_sample(h->sampler, row);
    if (h->top_logprobs > 0) n_top = top_k_of(s->lp, s->n_vocab, h->top_logprobs, top);
    if (h->n_gen == 0) metric_obs(s, SLM_HIST_TTFT, t - h->arrival_s);
    else metric_obs(s, SLM_HIST_ITL, t - h->last_token_s);
    h->last_token_s = t;
    if (slm_vocab_is_eog(s->vocab, tok) && !(h->constraint && !slm_constraint_done(h->constraint))) {
        finish(s, h, "stop");
        return;
    }
    if (h->constraint && slm_constraint_accept(h->constraint, tok)) {
        fail(s, h, SLM_EINVAL, "constrained decoding reached a dead end");
        return;
    }
    slm_sampler_accept(h->sampler, tok);
    h->n_gen++;
    metric_add(s, SLM_CTR_GEN_TOKENS, 1);
    if (req_push_tokens(h, &tok, 1)) {
        fail(s, h, SLM_ENOMEM, "out of memory");
        return;
    }
    char piece[256];
    int n = slm_detok_push(h->detok, tok, piece, sizeof piece);
    int hit = n > 0 ? slm_stopper_push(h->stopper, piece, (size_t)n) : 0;
    const char *txt;
    size_t len;
    slm_stopper_take(h->stopper, false, &txt, &len);
    sched_event ev = { .kind = SCHED_EV_TOKEN, .token = tok, .text = txt, .text_len = len,
                       .logprob = h->top_logprobs >= 0 ? s->lp[tok] : NAN, .n_top = n_top, .top = top };
    req_emit(h, &ev);
    if (hit) {
        finish(s, h, "stop");
    } else if (h->max_tokens >= 0 && h->n_gen >= h->max_tokens) {
        finish(s, h, "length");
    } else if (h->n_tokens >= slm_ctx_n_ctx(s->ctx)) {
        finish(s, h, "length");
    } else {
        h->state = REQ_DECODE;
    }
}

/* ---- the step ------------------------------------------------------------ */

/* Pauses the newest active request: its blocks go back to the pool and it
 * returns to the front of the queue with its tokens so far as its prompt. */
static bool preempt_newest(slm_sched *s, sched_handle *except) {
    sched_handle *victim = NULL;
    for (int32_t i = 0; i < s->n_seq; i++) {
        sched_handle *h = s->slots[i].req;
        if (h && h != except && (!victim || h->arrival_s > victim->arrival_s)) victim = h;
    }
    if (!victim) return false;
    release_slot(s, victim, false);
    victim->state = REQ_QUEUED;
    victim->n_past = 0;
    pthread_mutex_lock(&s->mu);
    victim->next = s->q_head;
    s->q_head = victim;
    if (!s->q_tail) s->q_tail = victim;
    s->n_queued++;
    pthread_mutex_unlock(&s->mu);
    s->n_active--;
    metric_add(s, SLM_CTR_PREEMPTIONS, 1);
    return true;
}

static void admit(slm_sched *s) {
    while (s->q_head && s->n_active < s->p.n_parallel) {
        sched_handle *h = s->q_head;
        s->q_head = h->next;
        if (!s->q_head) s->q_tail = NULL;
        s->n_queued--;
        h->next = NULL;
        s->n_active++;
        assign_slot(s, h);
        if (!h->started) {
            metric_obs(s, SLM_HIST_QUEUE, now_s() - h->arrival_s);
            metric_add(s, SLM_CTR_CACHED_TOKENS, (uint64_t)h->n_cached);
        }
    }
}

/* Ends requests that were cancelled or ran out of time. */
static void reap(slm_sched *s) {
    double t = now_s();
    for (int32_t i = 0; i < s->n_seq; i++) {
        sched_handle *h = s->slots[i].req;
        if (!h) continue;
        if (atomic_load(&h->cancelled)) fail(s, h, SLM_ECANCELED, "cancelled");
        else if (h->deadline_s > 0 && t > h->deadline_s) fail(s, h, SLM_ETIMEDOUT, "the request deadline passed");
    }
}

/* Builds the batch: decode tokens first, then prefill chunks; returns its size. */
static int32_t build_batch(slm_sched *s) {
    int32_t n = 0, budget = s->p.step_tokens;
    for (int32_t i = 0; i < s->n_seq && n < budget; i++) {
        sched_handle *h = s->slots[i].req;
        if (!h || h->state != REQ_DECODE) continue;
        s->b_tok[n] = h->tokens[h->n_past];
        s->b_pos[n] = h->n_past;
        s->b_seq[n] = h->seq;
        s->b_want[n] = 1;
        s->b_req[n] = h;
        n++;
    }
    for (;;) { /* prefill: oldest request first */
        sched_handle *h = NULL;
        for (int32_t i = 0; i < s->n_seq; i++) {
            sched_handle *c = s->slots[i].req;
            bool queued_here = false;
            for (int32_t k = 0; k < n; k++) queued_here |= s->b_req[k] == c;
            if (c && c->state == REQ_PREFILL && !queued_here && (!h || c->arrival_s < h->arrival_s)) h = c;
        }
        if (!h || n >= budget) break;
        int32_t k = h->n_tokens - h->n_past;
        if (k > budget - n) k = budget - n;
        for (int32_t j = 0; j < k; j++, n++) {
            int32_t p = h->n_past + j;
            s->b_tok[n] = h->tokens[p];
            s->b_pos[n] = p;
            s->b_seq[n] = h->seq;
            s->b_want[n] = (h->echo && p < h->n_prompt) || p == h->n_tokens - 1;
            s->b_req[n] = h;
        }
    }
    return n;
}

static void process_outputs(slm_sched *s, int32_t n) {
    int32_t row = 0;
    for (int32_t i = 0; i < n; i++) s->b_row[i] = s->b_want[i] ? row++ : -1;
    for (int32_t i = 0; i < n;) {
        sched_handle *h = s->b_req[i];
        int32_t j = i;
        while (j < n && s->b_req[j] == h) j++; /* entries i..j-1 belong to h */
        int32_t first = s->b_pos[i], last = s->b_pos[j - 1];
        bool prefill = h->state == REQ_PREFILL;
        if (prefill) h->started = true;
        if (prefill) metric_add(s, SLM_CTR_PROMPT_TOKENS, (uint64_t)(last - first + 1));
        h->n_past = last + 1;
        if (prefill && h->echo) { /* each prompt position once, also after a pause */
            int32_t from = first > h->echo_next ? first : h->echo_next;
            int32_t to = last + 1 < h->n_prompt ? last + 1 : h->n_prompt;
            if (from < to) {
                emit_prompt_logprobs(s, h, s->logits + (size_t)s->b_row[i + (from - first)] * s->n_vocab, from, to);
                h->echo_next = to;
            }
        }
        if (h->n_past == h->n_tokens) { /* caught up: the last row predicts the next token */
            if (h->n_gen == 0 && h->max_tokens == 0) finish(s, h, "length");
            else sample_next(s, h, s->logits + (size_t)s->b_row[j - 1] * s->n_vocab);
        }
        i = j;
    }
}

static void step(slm_sched *s) {
    int32_t n = build_batch(s);
    if (n == 0) return;
    slm_err err = { 0 };
    slm_batch b = { n, s->b_tok, s->b_pos, s->b_seq, s->b_want };
    int rc;
    while ((rc = slm_decode_batch(s->ctx, &b, s->logits, &err)) == SLM_EBUSY) {
        if (evict_one(s)) continue;
        /* out of blocks with nothing cached: pause the newest request and rebuild */
        if (!preempt_newest(s, s->b_req[0])) break;
        n = build_batch(s);
        if (n == 0) return;
        b.n_tokens = n;
    }
    if (rc) {
        /* out of blocks with nobody left to pause: a generating sequence has
         * filled the KV memory, which ends it like a full context; anything
         * else (an engine error) fails the requests of the batch */
        for (int32_t i = 0; i < n; i++) {
            sched_handle *h = s->b_req[i];
            if (h->state == REQ_DONE) continue;
            if (rc == SLM_EBUSY && h->state == REQ_DECODE) finish(s, h, "length");
            else fail(s, h, rc == SLM_EBUSY ? SLM_ENOMEM : rc, err.msg);
        }
        return;
    }
    process_outputs(s, n);
}

static void *loop(void *arg) {
    slm_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->quit && !s->q_head && s->n_active == 0) pthread_cond_wait(&s->cv, &s->mu);
        if (s->quit) break;
        admit(s);
        reap(s);
        update_gauges(s);
        pthread_mutex_unlock(&s->mu);
        step(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- public -------------------------------------------------------------- */

int sched_new(slm_model *m, const sched_params *pp, slm_sched **out, slm_err *err) {
    *out = NULL;
    sched_params p = pp ? *pp : sched_default_params();
    if (p.n_parallel <= 0) p.n_parallel = 4;
    if (p.max_queue < 0) p.max_queue = 0;
    if (p.step_tokens <= 0) p.step_tokens = 512;
    if (p.n_parallel > 256 || p.step_tokens > 8192)
        return slm_err_set(err, SLM_EINVAL, "--parallel must be 1..256 and the step budget 1..8192");
    if (p.step_tokens < p.n_parallel) p.step_tokens = p.n_parallel;
    slm_sched *s = slm_calloc(1, sizeof *s);
    if (!s) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    s->model = m;
    s->vocab = slm_model_vocab(m);
    s->p = p;
    s->n_vocab = slm_vocab_n_tokens(s->vocab);
    s->n_seq = 2 * p.n_parallel;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_ctx = p.n_ctx;
    cp.n_threads = p.n_threads;
    cp.n_batch = p.step_tokens;
    cp.n_seq = s->n_seq;
    /* default pool: every active sequence at full context (cache slots use what is left) */
    slm_model_info in;
    slm_model_get_info(m, &in);
    int32_t n_ctx = p.n_ctx > 0 ? p.n_ctx : in.n_ctx_train;
    size_t per_pos = 2 * (size_t)in.n_layer * (size_t)in.n_head_kv * (size_t)in.head_dim * 2;
    cp.kv_mem = p.kv_mem ? p.kv_mem : per_pos * (size_t)n_ctx * (size_t)p.n_parallel;
    int rc = slm_ctx_new(m, &cp, &s->ctx, err);
    if (rc) goto fail;
    size_t T = (size_t)p.step_tokens;
    s->slots = slm_calloc((size_t)s->n_seq, sizeof *s->slots);
    s->b_tok = slm_malloc(T * sizeof(int32_t));
    s->b_pos = slm_malloc(T * sizeof(int32_t));
    s->b_seq = slm_malloc(T * sizeof(int32_t));
    s->b_row = slm_malloc(T * sizeof(int32_t));
    s->b_want = slm_malloc(T);
    s->b_req = slm_malloc(T * sizeof(sched_handle *));
    s->logits = slm_malloc(T * (size_t)s->n_vocab * sizeof(float));
    s->lp = slm_malloc((size_t)s->n_vocab * sizeof(float));
    if (!s->slots || !s->b_tok || !s->b_pos || !s->b_seq || !s->b_row || !s->b_want || !s->b_req || !s->logits || !s->lp) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory for the scheduler's buffers");
        goto fail;
    }
    slm_kv_stats kst;
    slm_kv_get_stats(s->ctx, &kst);
    s->n_ctx = slm_ctx_n_ctx(s->ctx);
    s->block_tokens = kst.block_tokens;
    s->pool_tokens = kst.blocks_total * kst.block_tokens;
    update_gauges(s);
    /* warm-up: one forward pass touches the weights and every code path */
    int32_t bos = slm_vocab_bos(s->vocab) >= 0 ? slm_vocab_bos(s->vocab) : 0;
    if ((rc = slm_decode(s->ctx, 0, &bos, 1, 0, false, s->logits, err))) goto fail;
    slm_kv_truncate(s->ctx, 0, 0);
    if (pthread_create(&s->thread, NULL, loop, s)) {
        rc = slm_err_set(err, SLM_ENOMEM, "cannot start the scheduler thread");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    s->thread = 0;
    sched_free(s);
    return rc;
}

void sched_free(slm_sched *s) {
    if (!s) return;
    if (s->thread) {
        pthread_mutex_lock(&s->mu);
        s->quit = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    while (s->q_head) {
        sched_handle *h = s->q_head;
        s->q_head = h->next;
        req_emit_error(h, SLM_ECANCELED, "the server is shutting down");
        req_unref(h);
    }
    for (int32_t i = 0; s->slots && i < s->n_seq; i++) {
        if (s->slots[i].req) {
            req_emit_error(s->slots[i].req, SLM_ECANCELED, "the server is shutting down");
            req_unref(s->slots[i].req);
        }
        slm_free(s->slots[i].tokens);
    }
    slm_free(s->slots);
    slm_free(s->b_tok);
    slm_free(s->b_pos);
    slm_free(s->b_seq);
    slm_free(s->b_row);
    slm_free(s->b_want);
    slm_free(s->b_req);
    slm_free(s->logits);
    slm_free(s->lp);
    slm_ctx_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    slm_free(s);
}

int sched_submit(slm_sched *s, const sched_req *r, sched_handle **out, slm_err *err) {
    *out = NULL;
    sched_handle *h = slm_malloc(sizeof *h);
    if (!h) {
        slm_constraint_free(r->constraint);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    int rc = req_init(h, s->vocab, r, err);
    if (!rc && r->n_prompt >= s->n_ctx)
        rc = slm_err_set(err, SLM_ERANGE, "the prompt has %d tokens but the context holds %d", r->n_prompt, s->n_ctx);
    if (!rc && s->pool_tokens < r->n_prompt + 1)
        rc = slm_err_set(err, SLM_ERANGE, "the prompt has %d tokens but the KV memory holds %d", r->n_prompt,
                         s->pool_tokens);
    if (rc) {
        atomic_store(&h->refs, 1);
        req_unref(h);
        return rc;
    }
    if (h->arrival_s == 0) h->arrival_s = now_s();
    pthread_mutex_lock(&s->mu);
    if (s->quit || s->n_queued >= s->p.max_queue + (s->p.n_parallel - atomic_load(&s->n_active))) {
        pthread_mutex_unlock(&s->mu);
        atomic_store(&h->refs, 1);
        req_unref(h);
        return slm_err_set(err, SLM_EBUSY, "the server is busy: %d requests are waiting", s->n_queued);
    }
    if (s->q_tail) s->q_tail->next = h;
    else s->q_head = h;
    s->q_tail = h;
    s->n_queued++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    *out = h;
    return 0;
}

void sched_cancel(sched_handle *h) { if (h) atomic_store(&h->cancelled, 1); }

void sched_release(sched_handle *h) {
    if (!h) return;
    atomic_store(&h->cancelled, 1);
    req_unref(h);
}

void sched_get_stats(slm_sched *s, sched_stats *st) {
    pthread_mutex_lock(&s->mu);
    st->queued = s->n_queued;
    st->active = atomic_load(&s->n_active);
    st->kv_blocks_used = atomic_load(&s->kv_used);
    st->kv_blocks_total = atomic_load(&s->kv_total);
    st->block_tokens = s->block_tokens;
    st->n_ctx = s->n_ctx;
    st->n_parallel = s->p.n_parallel;
    pthread_mutex_unlock(&s->mu);
}

bool sched_idle(slm_sched *s) {
    pthread_mutex_lock(&s->mu);
    bool idle = !s->q_head && s->n_active == 0;
    pthread_mutex_unlock(&s->mu);
    return idle;
}
