/*
 * job.c — one API request in flight. A request with P prompts and n
 * choices becomes P × n scheduler requests (choice index p·n + j, as
 * OpenAI numbers them; seed + j when a seed is given, so choices differ yet
 * repeat); the scheduler's prefix cache shares each prompt between them.
 *
 * Events from the handles are multiplexed by polling: every handle without
 * waiting, then a short wait on the first unfinished one. Non-streaming
 * jobs collect text and log-probabilities per choice and render the body at
 * the end; streaming jobs render each event as an SSE chunk into an output
 * buffer that the HTTP content reader drains. Between waits the client's
 * socket is peeked: a peer that closed its end gets its generation
 * cancelled at once, not when the next write fails.
 *
 * A job is reference-counted: the HTTP request and, when streaming, the
 * response each hold one, because libmicrohttpd may free them in either
 * order. The last reference cancels and releases the handles.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sample/constraint.h"
#include "serve/srv.h"
#include "util/alloc.h"

#define POLL_MS 50

struct job {
    srv *s;
    api_request r;                  /* the parsed request (owned)                      */
    char id[48];
    api_meta meta;
    api_choice *ch; int32_t n_ch;   /* one per scheduler request                       */
    sched_handle **h;               /* NULL once released                              */
    bool *done;                     /* DONE or ERROR seen                              */
    bool *started;                  /* streaming: role / echo chunk sent               */
    int32_t *lp_sent;               /* streaming: log-probabilities already sent       */
    int32_t n_done, rr;             /* finished choices, round-robin start             */
    double arrival_s, first_s;      /* first_s: first generated token, 0 before        */
    bool failed, ended;             /* an error ended it; the stream is complete       */
    api_error err;
    slm_jw out; size_t out_sent;    /* streaming output not yet handed to HTTP         */
    atomic_int refs;
};

static int sched_error(api_error *e, int code, const char *msg) {
    switch (code) {
    case SLM_EBUSY:
        api_fail(e, 429, NULL, "the server is busy (queue full); retry shortly");
        e->type = "rate_limit_error";
        e->code = "rate_limit_exceeded";
        e->retry_after = 1;
        return -1;
    case SLM_ETIMEDOUT:
        api_fail(e, 504, NULL, "the request ran past its deadline (--request-timeout)");
        e->code = "timeout";
        return -1;
    case SLM_ERANGE: api_fail(e, 400, NULL, "%s", msg && *msg ? msg : "the prompt does not fit the context"); e->code = "context_length_exceeded"; return -1;
    case SLM_EINVAL: return api_fail(e, 400, NULL, "%s", msg && *msg ? msg : "invalid request");
    case SLM_ECANCELED: return api_fail(e, 503, NULL, "the request was cancelled (the server is shutting down)");
    case SLM_ENOMEM: return api_fail(e, 503, NULL, "the server ran out of memory for this request; retry later");
    default: return api_fail(e, 500, NULL, "generation failed: %s", msg && *msg ? msg : slm_strerror(code));
    }
}

static void job_free(job *j) {
    for (int32_t i = 0; i < j->n_ch; i++) {
        if (j->h && j->h[i]) sched_release(j->h[i]);
        if (j->ch) {
            slm_free(j->ch[i].text);
            slm_free(j->ch[i].lps);
        }
    }
    slm_free(j->h);
    slm_free(j->ch);
    slm_free(j->done);
    slm_free(j->started);
    slm_free(j->lp_sent);
    slm_jw_free(&j->out);
    api_request_free(&j->r);
    slm_free(j);
}

void job_ref(job *j) { atomic_fetch_add(&j->refs, 1); }

void job_unref(job *j) {
    if (j && atomic_fetch_sub(&j->refs, 1) == 1) job_free(j);
}

void job_cancel(job *j) {
    for (int32_t i = 0; i < j->n_ch; i++)
        if (j->h[i] && !j->done[i]) sched_cancel(j->h[i]);
}

bool job_streaming(const job *j) { return j->r.stream; }
const api_request *job_request(const job *j) { return &j->r; }

void job_stats(const job *j, int64_t *prompt_tokens, int64_t *completion_tokens, double *ttft_s) {
    int64_t p = 0, c = 0;
    for (int32_t i = 0; i < j->r.n_prompts; i++) p += j->r.prompts[i].n_ids;
    for (int32_t i = 0; i < j->n_ch; i++) c += j->ch[i].n_gen;
    *prompt_tokens = p;
    *completion_tokens = c;
    *ttft_s = j->first_s > 0 ? j->first_s - j->arrival_s : -1;
}

int job_start(srv *s, api_request *r, const char *id, double arrival_s, job **out, api_error *e) {
    *out = NULL;
    job *j = slm_calloc(1, sizeof *j);
    if (!j) {
        api_request_free(r);
        return api_fail(e, 500, NULL, "out of memory");
    }
    j->r = *r;
    memset(r, 0, sizeof *r);
    j->s = s;
    atomic_init(&j->refs, 1);
    snprintf(j->id, sizeof j->id, "%s", id);
    j->meta = (api_meta){ j->id, (int64_t)time(NULL), s->served, s->fingerprint };
    j->arrival_s = arrival_s;
    j->n_ch = j->r.n * j->r.n_prompts;
    j->ch = slm_calloc((size_t)j->n_ch, sizeof *j->ch);
    j->h = slm_calloc((size_t)j->n_ch, sizeof *j->h);
    j->done = slm_calloc((size_t)j->n_ch, sizeof *j->done);
    j->started = slm_calloc((size_t)j->n_ch, sizeof *j->started);
    j->lp_sent = slm_calloc((size_t)j->n_ch, sizeof *j->lp_sent);
    if (!j->ch || !j->h || !j->done || !j->started || !j->lp_sent) {
        job_free(j);
        return api_fail(e, 500, NULL, "out of memory");
    }
    uint64_t base_seed = j->r.seed_given ? j->r.sample.seed : srv_random(s);
    for (int32_t i = 0; i < j->n_ch; i++) {
        int32_t p = i / j->r.n, k = i % j->r.n;
        j->ch[i].index = i;
        j->ch[i].prompt_index = p;
        slm_constraint *c = NULL;
        slm_err err = { 0 };
        if (j->r.format != API_FMT_TEXT &&
            slm_constraint_new_json_with(s->cvocab, j->r.format == API_FMT_JSON_SCHEMA ? j->r.schema : NULL, &c, &err)) {
            if (err.code == SLM_ENOMEM) api_fail(e, 500, NULL, "out of memory");
            else api_fail(e, 400, "response_format", "unusable JSON schema: %s", err.msg[0] ? err.msg : slm_strerror(err.code));
            goto fail;
        }
        sched_req q = {
            .prompt = j->r.prompts[p].ids, .n_prompt = j->r.prompts[p].n_ids,
            .sample = j->r.sample, .max_tokens = j->r.max_tokens,
            .stops = (const char *const *)j->r.stops, .n_stops = j->r.n_stops,
            .top_logprobs = j->r.top_logprobs,
            .echo_logprobs = j->r.echo && j->r.top_logprobs >= 0,
            .constraint = c,
            .deadline_s = s->p.request_timeout_s > 0 ? arrival_s + s->p.request_timeout_s : 0,
            .arrival_s = arrival_s,
        };
        q.sample.seed = base_seed + (uint64_t)k;
        int rc = sched_submit(s->sched, &q, &j->h[i], &err);
        if (rc) {
            sched_error(e, rc, err.msg);
            if (rc == SLM_ERANGE || rc == SLM_EINVAL) snprintf(e->param, sizeof e->param, "%s", j->r.kind == API_CHAT ? "messages" : "prompt");
            goto fail;
        }
    }
    *out = j;
    return 0;
fail:
    job_cancel(j);
    job_free(j);
    return -1;
}

static int add_text(api_choice *c, const char *t, size_t n) {
    if (!n) return 0;
    if (c->text_len + n + 1 > c->text_cap) {
        size_t nc = c->text_cap ? c->text_cap * 2 : 256;
        while (nc < c->text_len + n + 1) nc *= 2;
        char *p = slm_realloc(c->text, nc);
        if (!p) return -1;
        c->text = p;
        c->text_cap = nc;
    }
    memcpy(c->text + c->text_len, t, n);
    c->text_len += n;
    c->text[c->text_len] = 0;
    return 0;
}

static int add_lp(api_choice *c, const sched_event *ev, bool prompt) {
    if (c->n_lps == c->cap_lps) {
        int32_t nc = c->cap_lps ? c->cap_lps * 2 : 32;
        api_lp *p = slm_realloc(c->lps, (size_t)nc * sizeof *p);
        if (!p) return -1;
        c->lps = p;
        c->cap_lps = nc;
    }
    api_lp *lp = &c->lps[c->n_lps++];
    lp->token = ev->token;
    lp->logprob = ev->logprob;
    lp->prompt = prompt;
    lp->n_top = ev->n_top < 0 ? 0 : ev->n_top > API_MAX_TOP_LOGPROBS ? API_MAX_TOP_LOGPROBS : ev->n_top;
    if (lp->n_top) memcpy(lp->top, ev->top, (size_t)lp->n_top * sizeof *lp->top);
    return 0;
}

/* Next event of any unfinished choice within timeout_ms: 0, or SLM_ETIMEDOUT. */
static int poll_any(job *j, int timeout_ms, int32_t *idx, sched_event *ev) {
    for (int32_t k = 0; k < j->n_ch; k++) {
        int32_t i = (j->rr + k) % j->n_ch;
        if (!j->done[i] && sched_next(j->h[i], 0, ev) == 0) {
            j->rr = i + 1;
            *idx = i;
            return 0;
        }
    }
    if (j->n_ch > 1 && timeout_ms > 10) timeout_ms = 10;
    for (int32_t i = 0; i < j->n_ch; i++)
        if (!j->done[i]) {
            if (sched_next(j->h[i], timeout_ms, ev) == 0) {
                *idx = i;
                return 0;
            }
            return SLM_ETIMEDOUT;
        }
    return SLM_ETIMEDOUT;
}

/* True when the peer closed its end of the connection (or it broke). */
static bool client_gone(int fd) {
    if (fd < 0) return false;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static void usage_of(const job *j, api_usage *u) {
    memset(u, 0, sizeof *u);
    for (int32_t p = 0; p < j->r.n_prompts; p++) {
        u->prompt += j->r.prompts[p].n_ids;
        int32_t cached = INT32_MAX;
        for (int32_t k = 0; k < j->r.n; k++) {
            const api_choice *c = &j->ch[p * j->r.n + k];
            if (c->n_cached < cached) cached = c->n_cached;
        }
        u->cached += cached == INT32_MAX ? 0 : cached;
    }
    for (int32_t i = 0; i < j->n_ch; i++) u->completion += j->ch[i].n_gen;
}

/* Streaming: the first chunk of choice i (chat: the role; completions with
 * echo: the prompt text and its log-probabilities). */
static void stream_start(job *j, int32_t i) {
    if (j->started[i]) return;
    j->started[i] = true;
    api_choice *c = &j->ch[i];
    if (j->r.kind == API_CHAT) {
        api_render_chunk(&j->out, &j->r, &j->meta, j->s->vocab, i, true, "", 0, NULL, 0, NULL);
    } else if (j->r.echo) {
        const char *t = j->r.prompts[c->prompt_index].text;
        api_render_chunk(&j->out, &j->r, &j->meta, j->s->vocab, i, false, t, t ? strlen(t) : 0, c->lps, c->n_lps, NULL);
        j->lp_sent[i] = c->n_lps;
    }
}

/* Takes one event of choice i: 0, or -1 when the job failed (j->err). */
static int take(job *j, int32_t i, const sched_event *ev) {
    api_choice *c = &j->ch[i];
    bool want_lp = j->r.top_logprobs >= 0;
    switch (ev->kind) {
    case SCHED_EV_PROMPT:
        if (want_lp && j->r.echo && add_lp(c, ev, true)) goto oom;
        return 0;
    case SCHED_EV_TOKEN:
        if (ev->token >= 0 && j->first_s == 0) j->first_s = srv_now();
        if (ev->token >= 0) c->n_gen++;
        if (want_lp && ev->token >= 0 && add_lp(c, ev, false)) goto oom;
        if (!j->r.stream) return add_text(c, ev->text, ev->text_len) ? (api_fail(&j->err, 500, NULL, "out of memory"), -1) : 0;
        stream_start(j, i);
        if (ev->text_len || c->n_lps > j->lp_sent[i]) {
            api_render_chunk(&j->out, &j->r, &j->meta, j->s->vocab, i, false, ev->text, ev->text_len,
                             c->lps + j->lp_sent[i], c->n_lps - j->lp_sent[i], NULL);
            j->lp_sent[i] = c->n_lps;
        }
        return 0;
    case SCHED_EV_DONE:
        j->done[i] = true;
        j->n_done++;
        c->finish = ev->finish && !strcmp(ev->finish, "length") ? "length" : "stop";
        c->n_prompt = ev->n_prompt;
        c->n_cached = ev->n_cached;
        if (ev->n_gen > c->n_gen) c->n_gen = ev->n_gen;
        if (j->r.stream) {
            stream_start(j, i);
            api_render_chunk(&j->out, &j->r, &j->meta, j->s->vocab, i, false, "", 0, c->lps + j->lp_sent[i],
                             c->n_lps - j->lp_sent[i], c->finish);
            j->lp_sent[i] = c->n_lps;
        }
        return 0;
    case SCHED_EV_ERROR:
        j->done[i] = true;
        j->n_done++;
        sched_error(&j->err, ev->code, ev->error);
        j->failed = true;
        job_cancel(j);
        return -1;
    }
    return 0;
oom:
    api_fail(&j->err, 500, NULL, "out of memory");
    j->failed = true;
    job_cancel(j);
    return -1;
}

int job_wait(job *j, int fd, api_error *e) {
    double checked = srv_now();
    while (j->n_done < j->n_ch) {
        int32_t i;
        sched_event ev;
        if (poll_any(j, POLL_MS, &i, &ev) == 0) {
            if (take(j, i, &ev)) {
                *e = j->err;
                return -1;
            }
        }
        /* every 100 ms: is anyone still listening? */
        if (srv_now() - checked < 0.1) continue;
        checked = srv_now();
        if (client_gone(fd)) {
            job_cancel(j);
            api_fail(e, 499, NULL, "the client closed the connection");
            return -1;
        }
        if (atomic_load(&j->s->give_up)) {
            job_cancel(j);
            return api_fail(e, 503, NULL, "the server is shutting down");
        }
    }
    return 0;
}

char *job_body(job *j, size_t *len) {
    api_usage u;
    usage_of(j, &u);
    return api_render_response(&j->r, &j->meta, j->s->vocab, j->ch, j->n_ch, &u, len);
}

/* Ends the stream: the usage chunk when asked, then [DONE]; or the error. */
static void stream_end(job *j) {
    if (j->failed) {
        char *body = api_render_error(&j->err, NULL);
        slm_jw_text(&j->out, "data: ", 6);
        if (body) slm_jw_text(&j->out, body, strlen(body));
        slm_jw_text(&j->out, "\n\n", 2);
        slm_free(body);
    } else {
        if (j->r.include_usage) {
            api_usage u;
            usage_of(j, &u);
            api_render_usage_chunk(&j->out, &j->r, &j->meta, &u);
        }
    }
    slm_jw_text(&j->out, "data: [DONE]\n\n", 14);
    j->ended = true;
}

ssize_t job_stream(job *j, int fd, char *buf, size_t max) {
    int waited = 0;
    if (j->r.kind == API_CHAT && j->out.len == 0 && !j->ended)
        for (int32_t i = 0; i < j->n_ch; i++) stream_start(j, i); /* the role chunks go out at once */
    for (;;) {
        if (j->out.oom) return -2;
        if (j->out_sent < j->out.len) {
            size_t n = j->out.len - j->out_sent;
            if (n > max) n = max;
            memcpy(buf, j->out.p + j->out_sent, n);
            j->out_sent += n;
            if (j->out_sent == j->out.len) {
                j->out.len = 0;
                j->out_sent = 0;
            }
            return (ssize_t)n;
        }
        if (j->ended) return -1;
        if (j->n_done == j->n_ch) {
            stream_end(j);
            continue;
        }
        int32_t i;
        sched_event ev;
        if (poll_any(j, POLL_MS, &i, &ev) == 0) {
            if (take(j, i, &ev)) stream_end(j);
            continue;
        }
        if (++waited % 2 == 0 && client_gone(fd)) {
            job_cancel(j);
            return -2;
        }
        if (atomic_load(&j->s->give_up)) {
            job_cancel(j);
            api_fail(&j->err, 503, NULL, "the server is shutting down");
            j->failed = true;
            stream_end(j);
        }
    }
}
